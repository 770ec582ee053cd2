//! The countries upstream, modelled on the public countries GraphQL API.

use std::{collections::HashMap, sync::RwLock};

use async_graphql::{
    Context, EmptySubscription, Enum, Error, ErrorExtensions, InputObject, Interface, Object,
    Result, Schema, SimpleObject, Union, ID,
};

use super::{
    data::{language_name, CountryData, CONTINENTS, COUNTRIES},
    server, Upstream,
};

type CountriesSchema = Schema<Query, Mutation, EmptySubscription>;

fn schema() -> CountriesSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(State::default())
        .finish()
}

/// Starts the countries upstream on `addr` (e.g. `127.0.0.1:0`), on the current tokio runtime.
pub async fn start_countries(addr: &str) -> std::io::Result<Upstream> {
    server::start(addr, schema()).await
}

/// The SDL of the countries upstream's schema.
/// The codes of the first `n` countries that have a capital, asked of `countries` directly
/// (its request count reset afterwards): the items of the benchmarks' joins.
pub async fn codes_with_capital(countries: &super::Upstream, n: usize) -> Vec<String> {
    let body: serde_json::Value = reqwest::Client::new()
        .post(countries.url())
        .json(&serde_json::json!({ "query": "{ countries { code capital } }" }))
        .send()
        .await
        .expect("the countries upstream answers")
        .json()
        .await
        .expect("JSON");
    countries.reset();
    let codes: Vec<String> = body["data"]["countries"]
        .as_array()
        .expect("countries")
        .iter()
        .filter(|c| c["capital"].is_string())
        .take(n)
        .map(|c| c["code"].as_str().expect("code").to_string())
        .collect();
    assert_eq!(
        codes.len(),
        n,
        "the countries upstream has {n} countries with a capital"
    );
    codes
}

pub fn countries_sdl() -> String {
    schema().sdl()
}

/// Per-server mutable state: countries renamed by the `renameCountry` mutation.
#[derive(Default)]
struct State {
    renamed: RwLock<HashMap<&'static str, String>>,
}

impl State {
    fn country(&self, data: &'static CountryData) -> Country {
        let renamed = self.renamed.read().unwrap_or_else(|e| e.into_inner());
        let name = renamed.get(data.code).map_or(data.name, String::as_str);
        Country {
            data,
            name: name.to_owned(),
        }
    }

    fn countries<'a>(
        &'a self,
        mut keep: impl FnMut(&CountryData) -> bool + 'a,
    ) -> impl Iterator<Item = Country> + 'a {
        COUNTRIES
            .iter()
            .filter(move |c| keep(c))
            .map(|c| self.country(c))
    }
}

fn continent(code: &str) -> Option<Continent> {
    CONTINENTS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|&(code, name)| Continent { code, name })
}

fn find_country(code: &str) -> Option<&'static CountryData> {
    COUNTRIES.iter().find(|c| c.code == code)
}

struct Query;

#[Object]
impl Query {
    /// All countries and territories, sorted by code, optionally filtered.
    async fn countries(
        &self,
        ctx: &Context<'_>,
        filter: Option<CountryFilterInput>,
    ) -> Vec<Country> {
        let filter = filter.unwrap_or_default();
        ctx.data_unchecked::<State>()
            .countries(|c| filter.matches(c))
            .collect()
    }

    /// A country by its ISO 3166-1 alpha-2 code, e.g. `FR`.
    async fn country(&self, ctx: &Context<'_>, code: ID) -> Option<Country> {
        find_country(&code).map(|c| ctx.data_unchecked::<State>().country(c))
    }

    /// All continents, sorted by code.
    async fn continents(&self) -> Vec<Continent> {
        CONTINENTS
            .iter()
            .map(|&(code, name)| Continent { code, name })
            .collect()
    }

    /// A continent by its two-letter code, e.g. `EU`.
    async fn continent(&self, code: ID) -> Option<Continent> {
        continent(&code)
    }

    /// Countries then continents whose name contains `term` (case-insensitive).
    async fn search(&self, ctx: &Context<'_>, term: String) -> Vec<SearchResult> {
        let term = term.to_lowercase();
        let countries = ctx
            .data_unchecked::<State>()
            .countries(|_| true)
            .filter(|c| c.name.to_lowercase().contains(&term))
            .map(SearchResult::Country);
        let continents = CONTINENTS
            .iter()
            .filter(|(_, name)| name.to_lowercase().contains(&term))
            .map(|&(code, name)| SearchResult::Continent(Continent { code, name }));
        countries.chain(continents).collect()
    }

    /// Any object by its global identifier, e.g. `Country:FR` or `Continent:EU`.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Option<Node> {
        match id.split_once(':')? {
            ("Country", code) => {
                find_country(code).map(|c| ctx.data_unchecked::<State>().country(c).into())
            }
            ("Continent", code) => continent(code).map(Node::Continent),
            _ => None,
        }
    }

    /// Always fails with a GraphQL error (extension code `COUNTRIES_BROKEN`).
    async fn failing(&self) -> Option<Result<String>> {
        // `Option<Result>` rather than `Result<Option>`: async-graphql nulls the nearest nullable
        // *parent* of a field whose resolver fails, but nulls the field itself for an inner error.
        Some(Err(broken()))
    }

    /// Always fails like `failing`, but is non-null, so the error nulls `data`.
    async fn non_null_failing(&self) -> Result<String> {
        Err(broken())
    }
}

fn broken() -> Error {
    Error::new("countries is failing on purpose")
        .extend_with(|_, e| e.set("code", "COUNTRIES_BROKEN"))
}

struct Mutation;

#[Object]
impl Mutation {
    /// Renames a country in this server's in-memory state; null if the code is unknown.
    async fn rename_country(&self, ctx: &Context<'_>, code: ID, name: String) -> Option<Country> {
        let data = find_country(&code)?;
        let state = ctx.data_unchecked::<State>();
        state
            .renamed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(data.code, name);
        Some(state.country(data))
    }
}

/// An object with a global identifier.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global identifier, `<Type>:<code>`."))]
enum Node {
    Country(Country),
    Continent(Continent),
}

/// A result of `search`.
#[derive(Union)]
enum SearchResult {
    Country(Country),
    Continent(Continent),
}

/// Whether a country is independent or a dependent territory.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum CountryStatus {
    /// A sovereign state.
    Independent,
    /// A dependent territory (or Antarctica).
    Territory,
}

/// A country or territory.
struct Country {
    data: &'static CountryData,
    name: String,
}

#[Object]
impl Country {
    /// Global identifier, `Country:<code>`.
    async fn id(&self) -> ID {
        ID(format!("Country:{}", self.data.code))
    }

    /// ISO 3166-1 alpha-2 code.
    async fn code(&self) -> ID {
        ID(self.data.code.to_owned())
    }

    /// English name.
    async fn name(&self) -> &str {
        &self.name
    }

    /// Name in the main native language.
    async fn native(&self) -> Option<&str> {
        Some(self.data.native)
    }

    /// Capital city, if any.
    async fn capital(&self) -> Option<&str> {
        self.data.capital.as_ref().map(|c| c.name)
    }

    /// ISO 4217 currency code.
    async fn currency(&self) -> Option<&str> {
        self.data.currency
    }

    /// Flag emoji.
    async fn emoji(&self) -> String {
        self.data
            .code
            .chars()
            .filter_map(|c| char::from_u32(0x1F1E6 + (c as u32).wrapping_sub('A' as u32)))
            .collect()
    }

    /// Approximate population.
    async fn population(&self) -> Option<i32> {
        self.data.population
    }

    /// The continent the country belongs to.
    async fn continent(&self) -> Continent {
        continent(self.data.continent).expect("every country has a known continent")
    }

    /// Official languages.
    async fn languages(&self) -> Vec<Language> {
        self.data
            .languages
            .iter()
            .map(|&code| Language {
                code: ID(code.to_owned()),
                name: language_name(code).to_owned(),
            })
            .collect()
    }

    /// Independent state or territory.
    async fn status(&self) -> CountryStatus {
        if self.data.territory {
            CountryStatus::Territory
        } else {
            CountryStatus::Independent
        }
    }

    /// The code, under its former name.
    #[graphql(deprecation = "Use `code`.")]
    async fn old_code(&self) -> Option<&str> {
        Some(self.data.code)
    }
}

/// A continent.
struct Continent {
    code: &'static str,
    name: &'static str,
}

#[Object]
impl Continent {
    /// Global identifier, `Continent:<code>`.
    async fn id(&self) -> ID {
        ID(format!("Continent:{}", self.code))
    }

    /// Two-letter code, e.g. `EU`.
    async fn code(&self) -> ID {
        ID(self.code.to_owned())
    }

    /// English name.
    async fn name(&self) -> &str {
        self.name
    }

    /// The countries of this continent, sorted by code.
    async fn countries(&self, ctx: &Context<'_>) -> Vec<Country> {
        ctx.data_unchecked::<State>()
            .countries(|c| c.continent == self.code)
            .collect()
    }
}

/// A language.
#[derive(SimpleObject)]
struct Language {
    /// ISO 639-1 code.
    code: ID,
    /// English name.
    name: String,
}

/// Filters on countries; all given conditions must hold.
#[derive(InputObject, Default)]
struct CountryFilterInput {
    /// Condition on the country code.
    code: Option<StringQueryOperatorInput>,
    /// Condition on the continent code.
    continent: Option<StringQueryOperatorInput>,
}

impl CountryFilterInput {
    fn matches(&self, country: &CountryData) -> bool {
        let holds = |op: &Option<StringQueryOperatorInput>, value| {
            op.as_ref().is_none_or(|op| op.matches(value))
        };
        holds(&self.code, country.code) && holds(&self.continent, country.continent)
    }
}

/// Conditions on a string; all given conditions must hold.
#[derive(InputObject)]
struct StringQueryOperatorInput {
    /// Equal to.
    eq: Option<String>,
    /// One of.
    #[graphql(name = "in")]
    in_: Option<Vec<String>>,
    /// Simplified regular expression: a substring, optionally anchored with `^` and `$`.
    regex: Option<String>,
}

impl StringQueryOperatorInput {
    fn matches(&self, value: &str) -> bool {
        self.eq.as_ref().is_none_or(|eq| eq == value)
            && self
                .in_
                .as_ref()
                .is_none_or(|set| set.iter().any(|s| s == value))
            && self.regex.as_ref().is_none_or(|re| simple_regex(re, value))
    }
}

/// Substring match, honouring leading `^` and trailing `$` anchors.
fn simple_regex(pattern: &str, value: &str) -> bool {
    match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
        (Some(rest), _) => match rest.strip_suffix('$') {
            Some(exact) => value == exact,
            None => value.starts_with(rest),
        },
        (None, Some(suffix)) => value.ends_with(suffix),
        (None, None) => value.contains(pattern),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::post;
    use super::*;

    #[tokio::test]
    async fn countries_queries() {
        let upstream = start_countries("127.0.0.1:0").await.unwrap();
        let query = r#"query($code: ID!) {
            country(code: $code) { id name capital currency emoji status continent { code } languages { name } }
            countries(filter: { continent: { eq: "AN" } }) { code capital }
            search(term: "south") { __typename ... on Country { code } ... on Continent { code } }
            node(id: "Continent:OC") { id ... on Continent { name } }
        }"#;
        let (status, body) = post(
            &upstream,
            json!({ "query": query, "variables": { "code": "FR" } }),
        )
        .await;
        assert_eq!(status, 200);
        let data = &body["data"];
        assert_eq!(
            data["country"],
            json!({ "id": "Country:FR", "name": "France", "capital": "Paris", "currency": "EUR",
                "emoji": "🇫🇷", "status": "INDEPENDENT", "continent": { "code": "EU" },
                "languages": [{ "name": "French" }] })
        );
        let antarctic: Vec<_> = data["countries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["code"])
            .collect();
        assert_eq!(antarctic, ["AQ", "BV", "GS", "HM", "TF"]);
        assert_eq!(data["countries"][0]["capital"], json!(null));
        let found: Vec<_> = data["search"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["__typename"].as_str().unwrap(),
                    r["code"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                "Country:GS",
                "Country:KR",
                "Country:TF",
                "Country:ZA",
                "Continent:SA"
            ]
        );
        assert_eq!(
            data["node"],
            json!({ "id": "Continent:OC", "name": "Oceania" })
        );
        assert_eq!(upstream.requests(), 1);
        assert_eq!(upstream.received()[0]["variables"], json!({ "code": "FR" }));
    }

    #[tokio::test]
    async fn failing_fields() {
        let upstream = start_countries("127.0.0.1:0").await.unwrap();
        let (_, body) = post(
            &upstream,
            json!({ "query": "{ failing continent(code: \"AF\") { name } }" }),
        )
        .await;
        assert_eq!(
            body["data"],
            json!({ "failing": null, "continent": { "name": "Africa" } })
        );
        assert_eq!(
            body["errors"][0]["message"],
            "countries is failing on purpose"
        );
        assert_eq!(body["errors"][0]["extensions"]["code"], "COUNTRIES_BROKEN");
        let (_, body) = post(&upstream, json!({ "query": "{ nonNullFailing }" })).await;
        assert_eq!(body["data"], json!(null));
        assert_eq!(body["errors"][0]["path"], json!(["nonNullFailing"]));
    }

    #[tokio::test]
    async fn rename_country_changes_state() {
        let upstream = start_countries("127.0.0.1:0").await.unwrap();
        let rename = r#"mutation { renameCountry(code: "DE", name: "Germania") { name } }"#;
        let (_, body) = post(&upstream, json!({ "query": rename })).await;
        assert_eq!(
            body,
            json!({ "data": { "renameCountry": { "name": "Germania" } } })
        );
        let query =
            r#"{ country(code: "DE") { name } continent(code: "EU") { countries { name } } }"#;
        let (_, body) = post(&upstream, json!({ "query": query })).await;
        assert_eq!(body["data"]["country"]["name"], "Germania");
        let names = body["data"]["continent"]["countries"].as_array().unwrap();
        assert!(names.contains(&json!({ "name": "Germania" })));
        // Another server instance has its own state.
        let other = start_countries("127.0.0.1:0").await.unwrap();
        let (_, body) = post(&other, json!({ "query": query })).await;
        assert_eq!(body["data"]["country"]["name"], "Germany");
    }

    #[test]
    fn filters() {
        let op = |eq: Option<&str>, in_: Option<&[&str]>, regex: Option<&str>| {
            StringQueryOperatorInput {
                eq: eq.map(Into::into),
                in_: in_.map(|s| s.iter().map(|&s| s.into()).collect()),
                regex: regex.map(Into::into),
            }
        };
        assert!(op(Some("FR"), None, None).matches("FR"));
        assert!(!op(Some("FR"), Some(&["DE"]), None).matches("FR"));
        assert!(op(None, Some(&["DE", "FR"]), Some("^F")).matches("FR"));
        assert!(op(None, None, Some("R$")).matches("FR"));
        assert!(!op(None, None, Some("^R")).matches("FR"));
        assert!(op(None, None, Some("^FR$")).matches("FR"));
    }
}
