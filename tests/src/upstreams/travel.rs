//! The travel upstream: an Apollo Federation subgraph (async-graphql's federation support)
//! whose entities are keyed by the countries upstream's codes and names. It answers
//! `_service { sdl }` (federation v2) and `_entities`, which is how a gateway reaches most of
//! what it knows.
//!
//! Entities: `Country @key(fields: "code")` (with `shippingCost @requires(fields:
//! "population")`), `Region @key(fields: "code")` (continent codes: many countries share one),
//! `City @key(fields: "name countryCode")` (a compound key) and `Airport @key(fields: "iata
//! country { code }")` (a nested key). The `visa` of country `AQ` fails with an error (a
//! failure inside one entity); the region `AN` and unknown keys resolve to null.

use async_graphql::{
    EmptyMutation, EmptySubscription, Error, InputObject, Object, Result, Schema, SimpleObject,
};

use super::{data::COUNTRIES, server, Upstream};

type TravelSchema = Schema<Query, EmptyMutation, EmptySubscription>;

fn schema() -> TravelSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// Starts the travel subgraph on `addr` (e.g. `127.0.0.1:0`), on the current tokio runtime.
pub async fn start_travel(addr: &str) -> std::io::Result<Upstream> {
    server::start(addr, schema()).await
}

/// The subgraph's SDL as it answers `_service { sdl }` (federation v2).
pub fn travel_sdl() -> String {
    schema().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    )
}

/// The federation v1 SDL of the same subgraph, as a `schema_file` would hold it: `extend
/// type`s, `@external` key fields, no `@link`.
pub const TRAVEL_V1_SDL: &str = r#"extend type Query {
  advisories: [Advisory!]!
}

type Advisory {
  countryCode: String!
  level: Int!
}

extend type Country @key(fields: "code") {
  code: String! @external
  visa: String!
  plugType: String!
}

extend type City @key(fields: "name countryCode") {
  name: String! @external
  countryCode: String! @external
  tramLines: Int!
}
"#;

struct Query;

#[Object]
impl Query {
    /// Travel advisories in force.
    async fn advisories(&self) -> Vec<Advisory> {
        vec![Advisory {
            country_code: "AQ".into(),
            level: 3,
        }]
    }

    #[graphql(entity)]
    async fn find_country(
        &self,
        #[graphql(key)] code: String,
        population: Option<i32>,
    ) -> Result<Option<Country>> {
        let known = COUNTRIES.iter().any(|c| c.code == code);
        Ok(known.then(|| Country {
            visa: if code.starts_with('A') {
                "required".into()
            } else {
                "not required".into()
            },
            plug_type: if code == "JP" { "A" } else { "C" }.into(),
            population,
            code,
        }))
    }

    #[graphql(entity)]
    async fn find_region(&self, #[graphql(key)] code: String) -> Option<Region> {
        // Nobody travels to Antarctica: its region is unknown here.
        let countries = COUNTRIES.iter().filter(|c| c.continent == code).count();
        (countries > 0 && code != "AN").then(|| Region {
            hubs: countries as i32 % 5 + 1,
            code,
        })
    }

    #[graphql(entity)]
    async fn find_city(
        &self,
        #[graphql(key)] name: String,
        #[graphql(key)] country_code: String,
    ) -> Option<City> {
        let known = COUNTRIES.iter().any(|c| {
            c.code == country_code && c.capital.as_ref().is_some_and(|cap| cap.name == name)
        });
        known.then_some(City {
            tram_lines: name.len() as i32 % 7,
            name,
            country_code,
        })
    }

    #[graphql(entity)]
    async fn find_airport(
        &self,
        #[graphql(key)] iata: String,
        #[graphql(key)] country: CountryRefInput,
    ) -> Option<Airport> {
        let name = match (iata.as_str(), country.code.as_str()) {
            ("CDG", "FR") => "Paris Charles de Gaulle",
            ("HND", "JP") => "Tokyo Haneda",
            _ => return None,
        };
        Some(Airport {
            iata,
            country: CountryRef { code: country.code },
            name: name.into(),
        })
    }
}

/// A travel advisory.
#[derive(SimpleObject)]
struct Advisory {
    country_code: String,
    level: i32,
}

/// A country, as travellers see it.
struct Country {
    code: String,
    visa: String,
    plug_type: String,
    population: Option<i32>,
}

#[Object]
impl Country {
    /// ISO 3166-1 alpha-2 code (owned by the countries service).
    #[graphql(external)]
    async fn code(&self) -> &str {
        &self.code
    }

    /// Whether a tourist visa is needed.
    async fn visa(&self) -> Result<&str> {
        if self.code == "AQ" {
            return Err(Error::new("travel data for AQ is unavailable"));
        }
        Ok(&self.visa)
    }

    /// The usual plug type.
    async fn plug_type(&self) -> &str {
        &self.plug_type
    }

    /// Population (owned by the countries service).
    #[graphql(external)]
    async fn population(&self) -> Option<i32> {
        self.population
    }

    /// Cost of shipping a parcel there: needs the population from the countries service.
    #[graphql(requires = "population")]
    async fn shipping_cost(&self) -> Result<f64> {
        let population = self
            .population
            .ok_or_else(|| Error::new("shippingCost needs the population"))?;
        Ok(5.0 + f64::from(population / 100_000) / 100.0)
    }
}

/// A continent, as travellers see it.
#[derive(SimpleObject)]
struct Region {
    code: String,
    hubs: i32,
}

/// A city, known by its name and its country.
#[derive(SimpleObject)]
struct City {
    name: String,
    country_code: String,
    tram_lines: i32,
}

/// A country, by code only.
#[derive(SimpleObject)]
struct CountryRef {
    code: String,
}

/// The country part of an airport's key.
#[derive(InputObject)]
struct CountryRefInput {
    code: String,
}

/// An airport, known by its IATA code and its country.
#[derive(SimpleObject)]
struct Airport {
    iata: String,
    country: CountryRef,
    name: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn it_is_a_federation_v2_subgraph() {
        let travel = start_travel("127.0.0.1:0").await.unwrap();
        let (_, body) =
            crate::upstreams::tests::post(&travel, json!({ "query": "{ _service { sdl } }" }))
                .await;
        let sdl = body["data"]["_service"]["sdl"].as_str().unwrap();
        assert_eq!(sdl, travel_sdl());
        assert!(sdl.contains("specs.apollo.dev/federation/v2"), "{sdl}");
        assert!(
            sdl.contains(r#"@key(fields: "iata country { code }")"#),
            "{sdl}"
        );
        let (_, body) = crate::upstreams::tests::post(
            &travel,
            json!({ "query": r#"{ _entities(representations: [{__typename: "Country", code: "FR", population: 68000000}, {__typename: "Country", code: "ZZ"}]) { ... on Country { visa shippingCost } } }"# }),
        )
        .await;
        assert_eq!(
            body["data"]["_entities"],
            json!([{ "visa": "not required", "shippingCost": 11.8 }, null]),
            "{body}"
        );
    }
}
