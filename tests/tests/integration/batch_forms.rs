//! Batch forms: a join over many items sends one call of the field's batch form with the
//! distinct keys, and results are matched back to items by their key field, never by position.

use joinery::config::Config;
use joinery::server::Registry;
use joinery_tests::Fault;
use serde_json::{json, Value};

use crate::harness::{build_errors, default_config, Gateway};

/// The weather API's `getCityByName(name:)` is answered for many names by
/// `getCitiesByNames(names:)`, matched by `name`.
pub(crate) fn config(countries: &str, weather: &str) -> String {
    format!(
        r#"{}
[upstreams.weather.batch.getCityByName]
field = "getCitiesByNames"
argument = "names"
key = "name"
"#,
        default_config(countries, weather)
    )
}

/// The key field (`name`) is not selected: the gateway fetches it but must not show it.
pub(crate) const WEATHER_BY_CODES: (&str, &str) = (
    "weather.graphql",
    r#"query WeatherByCodes($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code
    capital @export(as: "capital")
    weather: _join {
      city: weather_getCityByName(name: $capital) { country weather { temperature { actual } } }
    }
  }
}"#,
);

/// Cities named by the client (duplicates allowed), each joined with its own weather again.
const CITIES_AGAIN: (&str, &str) = (
    "again.graphql",
    r#"query CitiesAgain($names: [String!]!, $n: String! @internal) {
  weather_getCitiesByNames(names: $names) {
    name @export(as: "n")
    _join { weather_getCityByName(name: $n) { name country } }
  }
}"#,
);

/// A join into the batch form, and a join nested in its results back into countries.
const NESTED: (&str, &str) = (
    "nested.graphql",
    r#"query NestedBatch($codes: [String!], $capital: String! @internal, $cc: ID! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code
    capital @export(as: "capital")
    _join {
      weather_getCityByName(name: $capital) {
        name
        country @export(as: "cc")
        home: _join { countries_country(code: $cc) { name } }
      }
    }
  }
}"#,
);

/// The same join under `@include`: the batch form is not used, aliases are.
const CONDITIONAL: (&str, &str) = (
    "conditional.graphql",
    r#"query Conditional($codes: [String!], $capital: String! @internal, $w: Boolean!) {
  countries_countries(filter: { code: { in: $codes } }) {
    capital @export(as: "capital")
    _join { weather_getCityByName(name: $capital) @include(if: $w) { name } }
  }
}"#,
);

const ALL: [(&str, &str); 4] = [WEATHER_BY_CODES, CITIES_AGAIN, NESTED, CONDITIONAL];

fn sent_names(gw: &Gateway) -> Vec<String> {
    let received = gw.weather.received();
    assert_eq!(received.len(), 1, "one weather request: {received:?}");
    let query = received[0]["query"].as_str().unwrap();
    assert_eq!(query.matches("getCitiesByNames(").count(), 1, "{query}");
    assert!(!query.contains("getCityByName"), "{query}");
    let variables = received[0]["variables"].as_object().unwrap();
    assert_eq!(variables.len(), 1, "{variables:?}");
    variables
        .values()
        .next()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn fifty_items_are_one_field_call_matched_by_key_whatever_the_order() {
    let gw = Gateway::start_with(&ALL, config).await;
    let expected = gw.capitals(50).await;
    assert_eq!(expected.len(), 50);
    let codes: Vec<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
    // The batch answer comes back in reverse order: items must still get their own city.
    gw.weather.set_fault(Fault::ReverseLists);
    let r = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for item in items {
        let code = item["code"].as_str().unwrap();
        let city = &item["weather"]["city"];
        // `country` of the city is the code of the country whose capital it is.
        assert_eq!(city["country"], code, "{item}");
        assert!(city["weather"]["temperature"]["actual"].is_number());
        // The key field was fetched to match results, but the client did not select it.
        assert_eq!(
            city.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["country", "weather"],
            "{city}"
        );
    }
    let mut names = sent_names(&gw);
    names.sort();
    let mut capitals: Vec<String> = expected.into_iter().map(|(_, c)| c).collect();
    capitals.sort();
    assert_eq!(names, capitals, "every key once");
}

#[tokio::test]
async fn duplicate_keys_are_sent_once_and_every_item_gets_its_result() {
    let gw = Gateway::start_with(&ALL, config).await;
    let mut names: Vec<&str> = Vec::new();
    for _ in 0..10 {
        names.extend(["Paris", "Tokyo", "Lima", "Paris", "Oslo"]);
    }
    let r = gw.run("CitiesAgain", json!({ "names": names })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = r.body["data"]["weather_getCitiesByNames"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 50);
    for (item, name) in items.iter().zip(&names) {
        assert_eq!(item["name"], *name);
        assert_eq!(item["_join"]["weather_getCityByName"]["name"], *name);
    }
    let received = gw.weather.received();
    assert_eq!(received.len(), 2, "the root fetch and one join call");
    let keys = received[1]["variables"].as_object().unwrap();
    assert_eq!(
        keys.values().next().unwrap(),
        &json!(["Paris", "Tokyo", "Lima", "Oslo"])
    );
}

#[tokio::test]
async fn keys_without_a_result_give_null_and_null_keys_are_not_sent() {
    let gw = Gateway::start_with(&ALL, config).await;
    let expected = gw.capitals(20).await;
    let mut codes: Vec<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
    // Antarctica has no capital: its key is null.
    codes.push("AQ");
    // The upstream answers only the first 5 keys; the others get null, as `getCityByName`
    // answers an unknown city, without an error.
    gw.weather.set_fault(Fault::TruncateLists(5));
    let r = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 21, "{}", r.body);
    let sent = sent_names(&gw);
    assert_eq!(sent.len(), 20, "the null key is not sent: {sent:?}");
    let answered = &sent[..5];
    for item in items {
        let city = &item["weather"]["city"];
        match item["capital"].as_str() {
            Some(capital) if answered.iter().any(|a| a == capital) => {
                assert_eq!(city["country"], item["code"], "{item}")
            }
            _ => assert_eq!(city, &Value::Null, "{item}"),
        }
    }
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "only the null key is an error: {errors:?}");
    assert_eq!(errors[0]["extensions"]["code"], "JOIN_VALUE_NULL");
    let aq = items.iter().position(|i| i["code"] == "AQ").unwrap();
    assert_eq!(
        errors[0]["path"],
        json!(["countries_countries", aq, "weather", "city"])
    );
}

#[tokio::test]
async fn a_failing_batch_call_nulls_every_items_field_with_an_error_at_its_path() {
    let gw = Gateway::start_with(&ALL, config).await;
    let expected = gw.capitals(8).await;
    let codes: Vec<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
    gw.weather.set_fault(Fault::Status(500));
    let r = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 8, "{}", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 8, "{errors:?}");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["weather"]["city"], Value::Null);
        assert!(item["capital"].is_string(), "the rest of the item stays");
        let error = errors
            .iter()
            .find(|e| e["path"] == json!(["countries_countries", i, "weather", "city"]))
            .unwrap_or_else(|| panic!("no error for item {i}: {errors:?}"));
        assert_eq!(error["extensions"]["code"], "UPSTREAM_BAD_RESPONSE");
        assert_eq!(error["extensions"]["upstream"], "weather");
    }
    assert_eq!(gw.weather.requests(), 1);
}

#[tokio::test]
async fn joins_nest_inside_batch_form_results() {
    let gw = Gateway::start_with(&ALL, config).await;
    let expected = gw.capitals(12).await;
    let codes: Vec<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
    let names = countries_of(&gw, &expected).await;
    gw.weather.set_fault(Fault::ReverseLists);
    let r = gw.run("NestedBatch", json!({ "codes": codes })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    for item in items {
        let city = &item["_join"]["weather_getCityByName"];
        assert_eq!(city["name"], item["capital"], "{item}");
        assert_eq!(city["country"], item["code"]);
        assert_eq!(
            city["home"]["countries_country"]["name"],
            names[item["code"].as_str().unwrap()],
            "{item}"
        );
    }
    assert_eq!(gw.weather.requests(), 1);
    assert_eq!(gw.countries.requests(), 2, "root fetch and one nested join");
}

#[tokio::test]
async fn plans_say_which_batching_a_join_uses_and_why() {
    let gw = Gateway::start_with(&ALL, config).await;
    let config = Config::load(&gw.dir.path().join("joinery.toml")).unwrap();
    let registry = Registry::from_manifest(&gw.running.manifest, &config).unwrap();
    let plan = registry
        .find_operation("WeatherByCodes")
        .unwrap()
        .to_string();
    assert!(
        plan.contains(
            "one call of `getCitiesByNames` with every distinct key in `names`, results matched by `name`"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("city: getCitiesByNames(names: $capital) { _joinery_key: name country"),
        "{plan}"
    );
    let plan = registry.find_operation("Conditional").unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("one aliased copy per distinct set of values"),
        "{text}"
    );
    assert!(
        text.contains(
            "(batch form of `weather_getCityByName` not used: it is selected under `@skip`/`@include`)"
        ),
        "{text}"
    );
    let json = plan.to_json();
    assert_eq!(
        json["joins"][0]["fetches"][0]["batching"]["kind"],
        "aliases"
    );

    // The fallback still answers correctly.
    let expected = gw.capitals(3).await;
    let codes: Vec<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
    let r = gw
        .run("Conditional", json!({ "codes": codes, "w": true }))
        .await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    for item in r.body["data"]["countries_countries"].as_array().unwrap() {
        assert_eq!(
            item["_join"]["weather_getCityByName"]["name"],
            item["capital"]
        );
    }
    let query = gw.weather.received()[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(query.matches("getCityByName(").count(), 3, "{query}");
}

#[tokio::test]
async fn batch_forms_that_do_not_fit_the_schema_are_refused_with_their_position() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{}
[upstreams.weather.batch.getCityByName]
field = "getCitiesByName"
argument = "names"
key = "name"

[upstreams.weather.batch.getCitiesByNames]
field = "getCitiesByNames"
argument = "names"
key = "name"

[upstreams.countries.batch.country]
field = "countries"
argument = "filter"
key = "code"

[upstreams.countries.batch.continent]
field = "countries"
argument = "filter"
key = "code"
"#,
        default_config(&countries.url(), "http://127.0.0.1:9/graphql")
    );
    let err = build_errors(dir.path(), &config, &[WEATHER_BY_CODES]).await;
    let expect = [
        "joinery.toml:17:26: batch form of `getCityByName` in upstream `weather`: upstream `weather` has no root query field `getCitiesByName`",
        "joinery.toml:22:26: batch form of `getCitiesByNames` in upstream `weather`: `getCitiesByNames` returns a list; a batch form is for fields that answer one key with one result",
        "joinery.toml:27:28: batch form of `country` in upstream `countries`: argument `filter` of `countries` must be a list to take many keys, but is `CountryFilterInput`",
        "joinery.toml:32:28: batch form of `continent` in upstream `countries`: `countries` must return a list of `Continent` (as `continent` returns one), but returns `[Country!]!`",
    ];
    for line in expect {
        assert!(
            err.lines().any(|l| l.starts_with(line)),
            "{line}\nnot in\n{err}"
        );
    }
}

/// The names of the countries with these codes, by code.
async fn countries_of(gw: &Gateway, codes: &[(String, String)]) -> serde_json::Map<String, Value> {
    gw.ask_countries("code name")
        .await
        .iter()
        .filter(|c| codes.iter().any(|(code, _)| c["code"] == code.as_str()))
        .map(|c| (c["code"].as_str().unwrap().to_string(), c["name"].clone()))
        .collect()
}
