//! The weather upstream: fake, deterministic weather for the capitals of the countries upstream.

use std::{collections::HashMap, sync::Mutex};

use async_graphql::{
    Context, EmptySubscription, Enum, Error, ErrorExtensions, InputObject, InputValueError,
    InputValueResult, Object, Result, Scalar, ScalarType, Schema, SimpleObject, Value, ID,
};

use super::{data::COUNTRIES, server, Upstream};

/// The fixed time of the server.
const NOW: &str = "2026-01-01T00:00:00Z";

type WeatherSchema = Schema<Query, Mutation, EmptySubscription>;

fn schema() -> WeatherSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(State::default())
        .finish()
}

/// Starts the weather upstream on `addr` (e.g. `127.0.0.1:0`), on the current tokio runtime.
pub async fn start_weather(addr: &str) -> std::io::Result<Upstream> {
    server::start(addr, schema()).await
}

/// The SDL of the weather upstream's schema (the content of `schemas/weather.graphql`).
pub fn weather_sdl() -> String {
    schema().sdl()
}

/// Per-server mutable state: temperatures (°C) set by `setTemperature`, by canonical city name.
#[derive(Default)]
struct State {
    temperatures: Mutex<HashMap<&'static str, f64>>,
}

impl State {
    fn city(&self, name: &str, units: Unit) -> Option<City> {
        let known = find_city(name)?;
        let temperatures = self.temperatures.lock().unwrap_or_else(|e| e.into_inner());
        Some(known.weather(temperatures.get(known.name).copied(), units))
    }
}

/// A capital known to the weather upstream.
struct KnownCity {
    name: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
}

fn find_city(name: &str) -> Option<KnownCity> {
    let name = name.trim().to_lowercase();
    COUNTRIES.iter().find_map(|country| {
        let capital = country.capital.as_ref()?;
        (capital.name.to_lowercase() == name).then_some(KnownCity {
            name: capital.name,
            country: country.code,
            lat: capital.lat,
            lon: capital.lon,
        })
    })
}

/// FNV-1a: a hash that is stable across runs, platforms and Rust versions.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `(title, description, icon)` of the possible weather summaries.
const SUMMARIES: &[(&str, &str, &str)] = &[
    ("Clear", "clear sky", "01d"),
    ("Clouds", "few clouds", "02d"),
    ("Clouds", "scattered clouds", "03d"),
    ("Clouds", "broken clouds", "04d"),
    ("Rain", "light rain", "10d"),
    ("Thunderstorm", "thunderstorm", "11d"),
    ("Mist", "mist", "50d"),
];

/// Rounds to two decimals.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A number below `modulo` taken from `hash` shifted right by `shift`.
fn bits(hash: u64, shift: u32, modulo: u64) -> u32 {
    u32::try_from((hash >> shift) % modulo).expect("modulo fits in u32")
}

impl KnownCity {
    fn weather(&self, celsius: Option<f64>, units: Unit) -> City {
        let h = fnv1a(&self.name.to_lowercase());
        let actual = celsius.unwrap_or_else(|| {
            let base = 28.0 - 0.45 * self.lat.abs() + f64::from(bits(h, 0, 100)) / 10.0 - 5.0;
            (base * 10.0).round() / 10.0
        });
        let wind = f64::from(bits(h, 8, 150)) / 10.0;
        let (mut title, mut description, mut icon) =
            SUMMARIES[bits(h, 16, SUMMARIES.len() as u64) as usize];
        if title == "Rain" && actual <= 0.0 {
            (title, description, icon) = ("Snow", "light snow", "13d");
        }
        let clouds = (title != "Clear").then(|| Clouds {
            all: bits(h, 24, 101) as i32,
            visibility: 10_000 - bits(h, 32, 9_000) as i32,
            humidity: 30 + bits(h, 40, 70) as i32,
        });
        let temperature = |c: f64| round(units.temperature(c));
        City {
            id: ID((1_000_000 + h % 9_000_000).to_string()),
            name: self.name.to_owned(),
            country: self.country.to_owned(),
            coord: Some(Coordinates {
                lon: self.lon,
                lat: self.lat,
            }),
            weather: Some(Weather {
                summary: Summary {
                    title: title.to_owned(),
                    description: description.to_owned(),
                    icon: icon.to_owned(),
                },
                temperature: Temperature {
                    actual: temperature(actual),
                    feels_like: temperature(actual - 0.3 * wind),
                    min: temperature(actual - f64::from(bits(h, 48, 40)) / 10.0),
                    max: temperature(actual + f64::from(bits(h, 56, 40)) / 10.0),
                },
                wind: Wind {
                    speed: round(units.speed(wind)),
                    deg: bits(h, 12, 360) as i32,
                },
                clouds,
                timestamp: DateTime(NOW.to_owned()),
            }),
        }
    }
}

struct Query;

#[Object]
impl Query {
    /// The weather of a city by name (case-insensitive); null if the city is unknown.
    async fn get_city_by_name(
        &self,
        ctx: &Context<'_>,
        name: String,
        config: Option<ConfigInput>,
    ) -> Option<City> {
        ctx.data_unchecked::<State>()
            .city(&name, ConfigInput::units(config.as_ref()))
    }

    /// The weather of several cities: one entry per name, in order, null where unknown.
    async fn get_cities_by_names(
        &self,
        ctx: &Context<'_>,
        names: Vec<String>,
        config: Option<ConfigInput>,
    ) -> Vec<Option<City>> {
        let state = ctx.data_unchecked::<State>();
        let units = ConfigInput::units(config.as_ref());
        names.iter().map(|name| state.city(name, units)).collect()
    }

    /// Time of the server, a custom scalar.
    async fn now(&self) -> DateTime {
        DateTime(NOW.to_owned())
    }

    /// Always fails with a GraphQL error (extension code `WEATHER_BROKEN`).
    async fn failing(&self) -> Option<Result<String>> {
        // `Option<Result>` so that only this field is nulled (see the countries upstream).
        Some(Err(Error::new("weather is failing on purpose")
            .extend_with(|_, e| e.set("code", "WEATHER_BROKEN"))))
    }
}

struct Mutation;

#[Object]
impl Mutation {
    /// Overrides the actual temperature of a city (in °C); null if the city is unknown.
    async fn set_temperature(&self, ctx: &Context<'_>, city: String, celsius: f64) -> Option<City> {
        let known = find_city(&city)?;
        let state = ctx.data_unchecked::<State>();
        state
            .temperatures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(known.name, celsius);
        Some(known.weather(Some(celsius), Unit::Metric))
    }
}

/// A date and time, as an RFC 3339 string such as `2026-01-01T00:00:00Z`.
struct DateTime(String);

/// A date and time, as an RFC 3339 string such as `2026-01-01T00:00:00Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Self(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// Units of measurement.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
enum Unit {
    /// Celsius and metres per second.
    #[default]
    Metric,
    /// Fahrenheit and miles per hour.
    Imperial,
    /// Kelvin and metres per second.
    Kelvin,
}

impl Unit {
    fn temperature(self, celsius: f64) -> f64 {
        match self {
            Self::Metric => celsius,
            Self::Imperial => celsius * 9.0 / 5.0 + 32.0,
            Self::Kelvin => celsius + 273.15,
        }
    }

    fn speed(self, metres_per_second: f64) -> f64 {
        match self {
            Self::Imperial => metres_per_second * 2.236_936,
            Self::Metric | Self::Kelvin => metres_per_second,
        }
    }
}

/// Options of a weather query.
#[derive(InputObject)]
struct ConfigInput {
    /// Units of the temperatures and wind speed.
    #[graphql(default_with = "Some(Unit::Metric)")]
    units: Option<Unit>,
    /// Language of the descriptions (only English is available; other values are ignored).
    lang: Option<String>,
}

impl ConfigInput {
    fn units(config: Option<&Self>) -> Unit {
        config.and_then(|c| c.units).unwrap_or_default()
    }
}

/// A city and its current weather.
#[derive(SimpleObject)]
struct City {
    /// Identifier of the city.
    id: ID,
    /// Canonical name.
    name: String,
    /// ISO 3166-1 alpha-2 code of the country.
    country: String,
    /// Geographic coordinates.
    coord: Option<Coordinates>,
    /// Current weather.
    weather: Option<Weather>,
}

/// Geographic coordinates, in degrees.
#[derive(SimpleObject)]
struct Coordinates {
    /// Longitude.
    lon: f64,
    /// Latitude.
    lat: f64,
}

/// Current weather.
#[derive(SimpleObject)]
struct Weather {
    /// Summary of the conditions.
    summary: Summary,
    /// Temperatures, in the requested units.
    temperature: Temperature,
    /// Wind.
    wind: Wind,
    /// Clouds; null under a clear sky.
    clouds: Option<Clouds>,
    /// Time of the observation.
    timestamp: DateTime,
}

/// Summary of the conditions.
#[derive(SimpleObject)]
struct Summary {
    /// Group of conditions, e.g. `Rain`.
    title: String,
    /// Description, e.g. `light rain`.
    description: String,
    /// Icon identifier.
    icon: String,
}

/// Temperatures.
#[derive(SimpleObject)]
struct Temperature {
    /// Measured temperature.
    actual: f64,
    /// Perceived temperature.
    feels_like: f64,
    /// Minimum of the day.
    min: f64,
    /// Maximum of the day.
    max: f64,
}

/// Wind.
#[derive(SimpleObject)]
struct Wind {
    /// Speed, in metres per second (miles per hour in imperial units).
    speed: f64,
    /// Direction, in degrees.
    deg: i32,
}

/// Clouds and visibility.
#[derive(SimpleObject)]
struct Clouds {
    /// Cloudiness, in percent.
    all: i32,
    /// Visibility, in metres.
    visibility: i32,
    /// Humidity, in percent.
    humidity: i32,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::post;
    use super::*;

    #[test]
    fn every_capital_is_known() {
        for country in COUNTRIES {
            if let Some(capital) = &country.capital {
                let city = find_city(&capital.name.to_uppercase()).expect(capital.name);
                assert_eq!((city.name, city.country), (capital.name, country.code));
            }
        }
        assert!(find_city("Atlantis").is_none());
    }

    #[test]
    fn sdl_file_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/weather.graphql");
        if std::env::var_os("JOINERY_UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, weather_sdl()).unwrap();
        }
        let file = std::fs::read_to_string(path).unwrap();
        assert!(
            file == weather_sdl(),
            "schemas/weather.graphql is stale: rerun with JOINERY_UPDATE_SCHEMAS=1"
        );
    }

    #[tokio::test]
    async fn weather_queries() {
        let upstream = start_weather("127.0.0.1:0").await.unwrap();
        let query = r#"query($units: Unit) {
            paris: getCityByName(name: "paris", config: { units: $units }) {
                name country coord { lat } weather { temperature { actual } timestamp }
            }
            many: getCitiesByNames(names: ["Tokyo", "Atlantis", "Lima"]) { name }
            now
        }"#;
        let (status, metric) = post(&upstream, json!({ "query": query })).await;
        assert_eq!(status, 200);
        let paris = &metric["data"]["paris"];
        assert_eq!(paris["name"], "Paris");
        assert_eq!(paris["country"], "FR");
        assert_eq!(paris["coord"]["lat"], 48.86);
        assert_eq!(paris["weather"]["timestamp"], NOW);
        let many = &metric["data"]["many"];
        assert_eq!(
            many,
            &json!([{ "name": "Tokyo" }, null, { "name": "Lima" }])
        );
        assert_eq!(metric["data"]["now"], NOW);

        // Deterministic, and converted per unit.
        let (_, again) = post(&upstream, json!({ "query": query })).await;
        assert_eq!(again, metric);
        let variables = json!({ "units": "KELVIN" });
        let (_, kelvin) = post(&upstream, json!({ "query": query, "variables": variables })).await;
        let celsius = paris["weather"]["temperature"]["actual"].as_f64().unwrap();
        let k = kelvin["data"]["paris"]["weather"]["temperature"]["actual"]
            .as_f64()
            .unwrap();
        assert!((k - celsius - 273.15).abs() < 0.01, "{k} K vs {celsius} °C");
        assert_eq!(upstream.requests(), 3);
    }

    #[tokio::test]
    async fn set_temperature_overrides_state() {
        let upstream = start_weather("127.0.0.1:0").await.unwrap();
        let mutation = r#"mutation { setTemperature(city: "OSLO", celsius: -12.5) { name } }"#;
        let (_, body) = post(&upstream, json!({ "query": mutation })).await;
        assert_eq!(
            body,
            json!({ "data": { "setTemperature": { "name": "Oslo" } } })
        );
        let query = r#"{ getCityByName(name: "Oslo", config: { units: IMPERIAL }) {
            weather { temperature { actual } } } }"#;
        let (_, body) = post(&upstream, json!({ "query": query })).await;
        let actual = &body["data"]["getCityByName"]["weather"]["temperature"]["actual"];
        assert_eq!(actual, 9.5);
    }
}
