//! Federation subgraphs as upstreams: the subgraph's SDL read from `_service`, federation's
//! own fields kept from clients, and entities looked up by key — inside `_join`, one
//! `_entities` call for all items of a list, each distinct representation sent once, results
//! matched back by position.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use joinery_tests::{start_travel, Fault, Upstream, TRAVEL_V1_SDL};
use serde_json::{json, Value};

use crate::harness::{build_errors, default_config, Gateway};

/// The default config plus the travel subgraph, found by introspection (not marked).
fn config(travel: &str) -> impl Fn(&str, &str) -> String + '_ {
    move |countries, weather| {
        format!(
            "{}\n[upstreams.travel]\nurl = \"{travel}\"\ntimeout = \"2s\"\n",
            default_config(countries, weather)
        )
    }
}

const TRAVEL: (&str, &str) = (
    "travel.graphql",
    r#"query Travel($code: String! @internal, $continent: String! @internal) {
  countries_countries {
    code @export(as: "code")
    continent { code @export(as: "continent") }
    _join {
      travel_countryByCode(code: $code) { visa }
      region: travel_regionByCode(code: $continent) { code hubs }
    }
  }
}"#,
);

const KEYS: (&str, &str) = (
    "keys.graphql",
    r#"query Keys($iata: String!, $country: travel_AirportCountryKey!) {
  paris: travel_cityByNameAndCountryCode(name: "Paris", countryCode: "FR") { name tramLines }
  nowhere: travel_cityByNameAndCountryCode(name: "Atlantis", countryCode: "FR") { tramLines }
  airport: travel_airportByIataAndCountry(iata: $iata, country: { code: "FR" }) { name country { code } }
  tokyo: travel_airportByIataAndCountry(iata: "HND", country: $country) { name }
  travel_advisories { countryCode level }
}"#,
);

const CAPITALS: (&str, &str) = (
    "capitals.graphql",
    r#"query Capitals($codes: [String!], $capital: String! @internal, $cc: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code @export(as: "cc")
    capital @export(as: "capital")
    _join { travel_cityByNameAndCountryCode(name: $capital, countryCode: $cc) { tramLines } }
  }
}"#,
);

const SHIPPING: (&str, &str) = (
    "shipping.graphql",
    r#"query Shipping($codes: [String!], $code: String! @internal, $people: Int @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code @export(as: "code")
    population @export(as: "people")
    _join { travel_countryByCode(code: $code, population: $people) { shippingCost } }
  }
}"#,
);

async fn start(operations: &[(&str, &str)]) -> (Gateway, Upstream) {
    let travel = start_travel("127.0.0.1:0").await.unwrap();
    let url = travel.url();
    let gw = Gateway::start_with(operations, config(&url)).await;
    travel.reset();
    (gw, travel)
}

/// The representations of one `_entities` call the subgraph received, by `__typename`.
fn representations(request: &Value, typename: &str) -> Vec<Value> {
    let variables = request["variables"].as_object().unwrap();
    variables
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|r| r["__typename"] == typename)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_subgraph_is_found_and_only_its_own_types_and_lookups_are_shown() {
    let travel = start_travel("127.0.0.1:0").await.unwrap();
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = crate::harness::write_project(
        dir.path(),
        &config(&travel.url())(&countries.url(), "http://127.0.0.1:9/graphql"),
        &[],
    );
    let config = joinery::config::Config::load(&path).unwrap();
    let sdl = joinery::project::supergraph(&config).await.unwrap().sdl();
    for expected in [
        "travel_advisories: [travel_Advisory!]!",
        "travel_countryByCode(\n    code: String!,",
        "population: Int,\n  ): travel_Country",
        "travel_cityByNameAndCountryCode(name: String!, countryCode: String!): travel_City",
        "travel_airportByIataAndCountry(iata: String!, country: travel_AirportCountryKey!): travel_Airport",
        "input travel_AirportCountryKey {",
        "shippingCost: Float!",
        "type travel_Region",
    ] {
        assert!(sdl.contains(expected), "missing {expected:?} in\n{sdl}");
    }
    for hidden in [
        "_entities(",
        "_service",
        "_Any",
        "_Service",
        "_Entity",
        "link__",
        "FieldSet",
        "@key",
        "@external",
        "_joinery",
    ] {
        assert!(!sdl.contains(hidden), "{hidden:?} shown in\n{sdl}");
    }
    // `population` is the countries service's (`@external`): the subgraph cannot resolve it.
    let country = sdl.split("type travel_Country").nth(1).unwrap();
    let country = &country[..country.find('}').unwrap()];
    assert!(!country.contains("population: "), "{country}");
    assert!(country.contains("visa"), "{country}");
}

#[tokio::test]
async fn a_join_into_entities_sends_one_entities_call_with_each_representation_once() {
    let (gw, travel) = start(&[TRAVEL]).await;
    let reply = gw.run("Travel", json!({})).await;
    let countries = reply.body["data"]["countries_countries"]
        .as_array()
        .unwrap();
    assert!(countries.len() >= 50, "{} countries", countries.len());
    assert_eq!(travel.requests(), 1, "{:?}", travel.received());
    let request = &travel.received()[0];
    // Both lookups (two entity types) share one `_entities` call.
    let query = request["query"].as_str().unwrap();
    assert_eq!(query.matches("_entities(").count(), 1, "{query}");

    // Every country once; every continent once, however many countries share it.
    let sent = representations(request, "Country");
    assert_eq!(sent.len(), countries.len(), "{sent:?}");
    let regions = representations(request, "Region");
    let mut codes: Vec<&str> = regions
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    let listed = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), listed, "duplicates sent: {regions:?}");
    assert!(listed < countries.len() / 5, "{listed} regions");

    let by_code = |code: &str| {
        countries
            .iter()
            .find(|c| c["code"] == code)
            .unwrap_or_else(|| panic!("no {code}"))
    };
    assert_eq!(
        by_code("FR")["_join"]["travel_countryByCode"],
        json!({ "visa": "not required" })
    );
    assert_eq!(
        by_code("AR")["_join"]["travel_countryByCode"],
        json!({ "visa": "required" })
    );
    assert_eq!(by_code("FR")["_join"]["region"]["code"], "EU");
    assert_eq!(by_code("JP")["_join"]["region"]["code"], "AS");
    // A region the subgraph does not know: null at those items, no error.
    assert_eq!(by_code("AQ")["_join"]["region"], Value::Null);
    assert_eq!(by_code("BV")["_join"]["region"], Value::Null);
    // A subgraph error inside `_entities`: at that item's path only.
    let errors = reply.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let aq = countries.iter().position(|c| c["code"] == "AQ").unwrap();
    assert_eq!(
        errors[0]["path"],
        json!([
            "countries_countries",
            aq,
            "_join",
            "travel_countryByCode",
            "visa"
        ])
    );
    assert_eq!(errors[0]["message"], "travel data for AQ is unavailable");
    assert_eq!(errors[0]["extensions"]["upstream"], "travel");
    assert_eq!(countries[aq]["_join"]["travel_countryByCode"], Value::Null);
    assert_eq!(
        countries[aq + 1]["_join"]["travel_countryByCode"]["visa"],
        "required"
    );

    // The plan says how the lookups are sent.
    let config = joinery::config::Config::load(&gw.dir.path().join("joinery.toml")).unwrap();
    let registry = joinery::server::Registry::from_manifest(&gw.running.manifest, &config).unwrap();
    let plan = registry.find_operation("Travel").unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("fetch from `travel` → travel_countryByCode (one `_entities` call with every distinct `Country` representation, results matched by position)"),
        "{text}"
    );
    assert!(text.contains("      ... on Country { visa }\n"), "{text}");
    let json = plan.to_json();
    assert_eq!(
        json["joins"][0]["fetches"][0]["batching"],
        json!({ "kind": "entities", "entity": "Country", "key": ["code"] })
    );
}

#[tokio::test]
async fn compound_and_nested_keys_at_the_root_and_in_joins() {
    let (gw, travel) = start(&[KEYS, CAPITALS]).await;
    let reply = gw
        .run(
            "Keys",
            json!({ "iata": "CDG", "country": { "code": "JP" } }),
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": {
            "paris": { "name": "Paris", "tramLines": 5 },
            "nowhere": null,
            "airport": { "name": "Paris Charles de Gaulle", "country": { "code": "FR" } },
            "tokyo": { "name": "Tokyo Haneda" },
            "travel_advisories": [{ "countryCode": "AQ", "level": 3 }],
        } })
    );
    assert_eq!(travel.requests(), 1);

    travel.reset();
    let reply = gw
        .run("Capitals", json!({ "codes": ["FR", "JP", "DE"] }))
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let lines: Vec<&Value> = reply.body["data"]["countries_countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["_join"]["travel_cityByNameAndCountryCode"]["tramLines"])
        .collect();
    // "Berlin", "Paris", "Tokyo": name length modulo 7.
    assert_eq!(lines, [&json!(6), &json!(5), &json!(5)]);
    assert_eq!(travel.requests(), 1);
    let sent = representations(&travel.received()[0], "City");
    assert!(
        sent.contains(&json!({ "__typename": "City", "name": "Tokyo", "countryCode": "JP" })),
        "{sent:?}"
    );
}

#[tokio::test]
async fn required_fields_travel_in_the_representation() {
    let (gw, travel) = start(&[SHIPPING]).await;
    let reply = gw.run("Shipping", json!({ "codes": ["FR", "JP"] })).await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let sent = representations(&travel.received()[0], "Country");
    assert!(sent.iter().all(|r| r["population"].is_i64()), "{sent:?}");
    let costs = reply.body["data"]["countries_countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["_join"]["travel_countryByCode"]["shippingCost"].as_f64())
        .collect::<Vec<_>>();
    assert!(
        costs.iter().all(|c| c.is_some_and(|c| c >= 5.0)),
        "{costs:?}"
    );
}

#[tokio::test]
async fn an_answer_of_the_wrong_length_is_an_error_at_every_item() {
    let (gw, travel) = start(&[CAPITALS]).await;
    travel.set_fault(Fault::TruncateLists(1));
    let reply = gw
        .run("Capitals", json!({ "codes": ["FR", "JP", "DE"] }))
        .await;
    let errors = reply.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (i, error) in errors.iter().enumerate() {
        assert_eq!(error["extensions"]["code"], "UPSTREAM_BAD_RESPONSE");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("1 results for 3 representations"),
            "{error}"
        );
        assert_eq!(
            error["path"],
            json!([
                "countries_countries",
                i,
                "_join",
                "travel_cityByNameAndCountryCode"
            ])
        );
    }
    // No item got another's result.
    for c in reply.body["data"]["countries_countries"]
        .as_array()
        .unwrap()
    {
        assert_eq!(c["_join"]["travel_cityByNameAndCountryCode"], Value::Null);
    }
}

#[tokio::test]
async fn a_federation_v1_schema_file_works_like_the_subgraph_itself() {
    let travel = start_travel("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("travel-v1.graphql");
    std::fs::write(&file, TRAVEL_V1_SDL).unwrap();
    let url = travel.url();
    let gw = Gateway::start_with(
        &[(
            "v1.graphql",
            r#"query V1 { travel_countryByCode(code: "JP") { visa plugType } travel_advisories { level } }"#,
        )],
        |countries, weather| {
            format!(
                "{}\n[upstreams.travel]\nurl = \"{url}\"\nschema_file = \"{}\"\nfederation = true\n",
                default_config(countries, weather),
                file.display()
            )
        },
    )
    .await;
    let reply = gw.run("V1", json!({})).await;
    assert_eq!(
        reply.body,
        json!({ "data": {
            "travel_countryByCode": { "visa": "not required", "plugType": "A" },
            "travel_advisories": [{ "level": 3 }],
        } })
    );
    // The file was the schema: the subgraph was asked only to answer.
    assert_eq!(travel.requests(), 1);
}

#[tokio::test]
async fn an_upstream_marked_as_a_subgraph_that_is_not_one_is_refused_at_build() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[operations]\ndir = \"operations\"\n[upstreams.countries]\nurl = \"{}\"\nfederation = true\n",
        countries.url()
    );
    let path = crate::harness::write_project(dir.path(), &config, &[]);
    let config = joinery::config::Config::load(&path).unwrap();
    let err = joinery::project::build(&config, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("upstream `countries`: introspection of http://")
            && err.contains("reading the subgraph schema (`_service { sdl }`): no data; errors:"),
        "{err}"
    );
}

#[tokio::test]
async fn lookups_that_cannot_be_sent_are_refused_at_build_with_their_position() {
    let travel = start_travel("127.0.0.1:0").await.unwrap();
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = build_errors(
        dir.path(),
        &config(&travel.url())(&countries.url(), "http://127.0.0.1:9/graphql"),
        &[
            (
                "a.graphql",
                "query A {\n  travel_countryByCode(code: \"FR\") { visa shippingCost }\n}\n",
            ),
            (
                "b.graphql",
                "query B($code: String! @internal, $skip: Boolean!) {\n  countries_countries {\n    code @export(as: \"code\")\n    _join { travel_countryByCode(code: $code) @skip(if: $skip) { visa } }\n  }\n}\n",
            ),
            ("c.graphql", "query C { travel__entities { __typename } }\n"),
        ],
    )
    .await;
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/a.graphql:2:3: ")
                && l.contains("`shippingCost`")
                && l.contains("`population`")),
        "{err}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("operations/b.graphql:4:5: ") && l.contains("`@skip`/`@include`")
        ),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/c.graphql:1:11: ") && l.contains("travel__entities")),
        "{err}"
    );
}

/// The subgraph of `tests/apollo/subgraph.mjs` (`@apollo/subgraph`), run by Node.
struct ApolloSubgraph {
    child: Child,
    base: String,
}

impl ApolloSubgraph {
    fn start() -> Self {
        crate::apollo::install();
        let mut child = Command::new("node")
            .arg(crate::apollo::apollo_dir().join("subgraph.mjs"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        ApolloSubgraph {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    async fn received(&self) -> Vec<Value> {
        reqwest::get(format!("{}/received", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for ApolloSubgraph {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apollo_subgraph_error_lands_at_the_entity_it_names() {
    let subgraph = tokio::task::block_in_place(ApolloSubgraph::start);
    let url = subgraph.url();
    let gw = Gateway::start_with(
        &[(
            "greetings.graphql",
            r#"query Greetings($code: String! @internal) {
  countries_countries {
    code @export(as: "code")
    _join { greetings_countryByCode(code: $code) { greeting } }
  }
  greetings_hellos(language: "fr")
}"#,
        )],
        |countries, weather| {
            format!(
                "{}\n[upstreams.greetings]\nurl = \"{url}\"\nfederation = true\n",
                default_config(countries, weather)
            )
        },
    )
    .await;
    let before = subgraph.received().await.len();
    let reply = gw.run("Greetings", json!({})).await;
    let received = subgraph.received().await;
    // One root request (`hellos`) and one `_entities` call for every country.
    assert_eq!(received.len() - before, 2, "{received:?}");
    let entities = &received[before..]
        .iter()
        .find(|r| r["query"].as_str().unwrap().contains("_entities"))
        .unwrap();
    let countries = reply.body["data"]["countries_countries"]
        .as_array()
        .unwrap();
    assert_eq!(representations(entities, "Country").len(), countries.len());
    assert_eq!(
        reply.body["data"]["greetings_hellos"],
        json!(["bonjour", "salut"])
    );
    let at = |code: &str| countries.iter().position(|c| c["code"] == code).unwrap();
    assert_eq!(
        countries[at("FR")]["_join"]["greetings_countryByCode"],
        json!({ "greeting": "welcome to FR" })
    );
    // Not found: null, no error. Failed: null, with the subgraph's error at that item only.
    assert_eq!(
        countries[at("BV")]["_join"]["greetings_countryByCode"],
        Value::Null
    );
    assert_eq!(
        countries[at("AQ")]["_join"]["greetings_countryByCode"],
        Value::Null
    );
    assert_eq!(
        reply.body["errors"],
        json!([{
            "message": "nobody greets in AQ",
            "path": ["countries_countries", at("AQ"), "_join", "greetings_countryByCode", "greeting"],
            "extensions": { "upstream": "greetings" },
        }])
    );
}

#[tokio::test]
async fn lookups_of_one_type_share_a_call_when_they_select_alike() {
    let (gw, travel) = start(&[(
        "twice.graphql",
        r#"query Twice($codes: [String!], $code: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code @export(as: "code")
    a: _join { travel_countryByCode(code: $code) { visa } }
    b: _join { travel_countryByCode(code: $code) { visa } }
    c: _join { travel_countryByCode(code: $code) { visa: plugType } }
  }
}"#,
    )])
    .await;
    let reply = gw.run("Twice", json!({ "codes": ["FR", "JP"] })).await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let jp = &reply.body["data"]["countries_countries"][1];
    assert_eq!(jp["a"]["travel_countryByCode"]["visa"], "not required");
    assert_eq!(jp["b"]["travel_countryByCode"]["visa"], "not required");
    assert_eq!(jp["c"]["travel_countryByCode"]["visa"], "A");
    // One request: `a` and `b` share a call (each country sent once); `c` selects `visa`
    // differently, so it has a call of its own.
    assert_eq!(travel.requests(), 1);
    let request = &travel.received()[0];
    let query = request["query"].as_str().unwrap();
    assert_eq!(query.matches("_entities(").count(), 2, "{query}");
    assert_eq!(representations(request, "Country").len(), 4, "{request}");
}
