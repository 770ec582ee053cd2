//! Cross-API joins: `_join`, `@export`, `@internal` — order by dependency, per-item scopes,
//! one batched request per upstream and join level, failures confined to their items.

use std::time::Duration;

use joinery::config::Config;
use joinery_tests::Fault;
use serde_json::{json, Value};

use crate::harness::{build_errors, default_config, write_project, Gateway};

/// The weather of each country's capital, for the countries whose codes are given. `_join`
/// stands before the field it depends on, as graphql-codegen's sorting puts it.
const WEATHER_BY_CODES: (&str, &str) = (
    "weather.graphql",
    r#"query WeatherByCodes($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    weather: _join {
      __typename
      city: weather_getCityByName(name: $capital) { name }
    }
    code
    capital @export(as: "capital")
  }
}"#,
);

/// Countries joined with their continent by an exported enum-like code: many items share a value.
const CONTINENT_BY_COUNTRY: (&str, &str) = (
    "continent.graphql",
    r#"query ContinentByCountry($cont: ID! @internal) {
  countries_countries {
    code
    continent { code @export(as: "cont") }
    _join { countries_continent(code: $cont) { name } }
  }
}"#,
);

/// Two joins in one scope, to two upstreams, and a nested join inside one of them.
const NESTED: (&str, &str) = (
    "nested.graphql",
    r#"query Nested($code: ID!, $capital: String! @internal, $cc: ID! @internal) {
  countries_country(code: $code) {
    capital @export(as: "capital")
    w: _join {
      weather_getCityByName(name: $capital) {
        country @export(as: "cc")
        back: _join { countries_country(code: $cc) { name } }
      }
    }
    again: _join { countries_country(code: $code) { code } }
  }
}"#,
);

#[tokio::test]
async fn a_join_over_50_items_makes_one_upstream_request_and_maps_results_by_key() {
    let gw = Gateway::start(&[WEATHER_BY_CODES]).await;
    let expected = gw.capitals(50).await;
    assert_eq!(expected.len(), 50);
    let codes: Vec<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
    // The upstream answers with its fields in reverse order: results must still land right.
    gw.weather.set_fault(Fault::ReverseDataKeys);
    let r = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for item in items {
        let capital = &expected
            .iter()
            .find(|(c, _)| item["code"] == c.as_str())
            .unwrap()
            .1;
        assert_eq!(item["capital"], capital.as_str());
        assert_eq!(item["weather"]["city"]["name"], capital.as_str(), "{item}");
        assert_eq!(item["weather"]["__typename"], "Query");
        // The client's field order, with `_join` first as written.
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["weather", "code", "capital"]);
    }
    assert_eq!(gw.countries.requests(), 1);
    assert_eq!(
        gw.weather.requests(),
        1,
        "one batched request for all 50 items"
    );
    let sent = &gw.weather.received()[0];
    let query = sent["query"].as_str().unwrap();
    assert_eq!(query.matches("getCityByName(").count(), 50, "{query}");
    assert!(!query.contains("weather_"), "{query}");
    assert_eq!(sent["variables"].as_object().unwrap().len(), 50);
}

#[tokio::test]
async fn duplicate_values_are_sent_once() {
    let gw = Gateway::start(&[CONTINENT_BY_COUNTRY]).await;
    let r = gw.run("ContinentByCountry", json!({})).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert!(items.len() > 50);
    let france = items.iter().find(|i| i["code"] == "FR").unwrap();
    assert_eq!(france["_join"]["countries_continent"]["name"], "Europe");
    let japan = items.iter().find(|i| i["code"] == "JP").unwrap();
    assert_eq!(japan["_join"]["countries_continent"]["name"], "Asia");
    assert_eq!(
        gw.countries.requests(),
        2,
        "the root fetch and one join request"
    );
    let query = gw.countries.received()[1]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        query.matches("continent(").count(),
        7,
        "one per distinct continent: {query}"
    );
}

#[tokio::test]
async fn joins_nest_and_independent_joins_run_in_one_wave() {
    let gw = Gateway::start(&[NESTED]).await;
    let r = gw.run("Nested", json!({ "code": "JP" })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let country = &r.body["data"]["countries_country"];
    assert_eq!(
        country["w"]["weather_getCityByName"]["back"]["countries_country"]["name"],
        "Japan"
    );
    assert_eq!(country["again"]["countries_country"]["code"], "JP");
    // Root fetch + wave 1 (`w` to weather and `again` to countries, in parallel) + wave 2 (`back`).
    assert_eq!(gw.weather.requests(), 1);
    assert_eq!(gw.countries.requests(), 3);
    let config = Config::load(&gw.dir.path().join("joinery.toml")).unwrap();
    let gateway = joinery::project::gateway(&config).await.unwrap();
    let plan = gateway.registry.find_operation("Nested").unwrap();
    assert_eq!(plan.waves.len(), 2);
    assert_eq!(plan.max_upstream_requests(), 4);
}

#[tokio::test]
async fn a_null_export_nulls_that_items_joined_field_with_an_error() {
    let gw = Gateway::start(&[WEATHER_BY_CODES]).await;
    // Antarctica has no capital.
    let r = gw
        .run("WeatherByCodes", json!({ "codes": ["AQ", "FR"] }))
        .await;
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items[0]["code"], "AQ");
    assert_eq!(items[0]["weather"]["city"], Value::Null);
    assert_eq!(items[1]["weather"]["city"]["name"], "Paris");
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.body);
    assert_eq!(
        errors[0]["path"],
        json!(["countries_countries", 0, "weather", "city"])
    );
    assert_eq!(errors[0]["extensions"]["code"], "JOIN_VALUE_NULL");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("`$capital`"));
    let query = gw.weather.received()[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        query.matches("getCityByName(").count(),
        1,
        "null values are not sent: {query}"
    );
}

#[tokio::test]
async fn a_failing_or_slow_joined_upstream_leaves_the_rest_intact() {
    let gw = Gateway::start_with(&[WEATHER_BY_CODES], |c, w| {
        default_config(c, w).replace("timeout = \"2s\"\nheaders", "timeout = \"300ms\"\nheaders")
    })
    .await;
    let vars = json!({ "codes": ["FR", "DE"] });
    for (fault, code) in [
        (Fault::Delay(Duration::from_secs(2)), "UPSTREAM_TIMEOUT"),
        (Fault::Status(500), "UPSTREAM_BAD_RESPONSE"),
        (Fault::CloseConnection, "UPSTREAM_UNAVAILABLE"),
    ] {
        gw.weather.set_fault(fault.clone());
        let r = gw.run("WeatherByCodes", vars.clone()).await;
        assert_eq!(r.status, 200);
        let items = r.body["data"]["countries_countries"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{fault:?}: {}", r.body);
        assert_eq!(items[0]["capital"], "Berlin");
        assert_eq!(items[1]["capital"], "Paris");
        assert_eq!(items[0]["weather"]["city"], Value::Null);
        let errors = r.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{fault:?}: {}", r.body);
        assert_eq!(
            errors[0]["path"],
            json!(["countries_countries", 0, "weather", "city"])
        );
        assert_eq!(
            errors[1]["path"],
            json!(["countries_countries", 1, "weather", "city"])
        );
        assert_eq!(errors[0]["extensions"]["code"], code);
        assert_eq!(errors[0]["extensions"]["upstream"], "weather");
    }
}

#[tokio::test]
async fn upstream_errors_inside_a_join_get_each_items_path() {
    const FAILING: (&str, &str) = (
        "failing.graphql",
        r#"query Failing($c: String! @internal) {
  countries_countries(filter: { code: { in: ["FR", "DE"] } }) {
    code @export(as: "c")
    _join { weather_failing weather_getCityByName(name: $c) { name } }
  }
}"#,
    );
    let gw = Gateway::start(&[FAILING]).await;
    let r = gw.run("Failing", json!({})).await;
    let errors = r.body["errors"].as_array().unwrap();
    let paths: Vec<&Value> = errors.iter().map(|e| &e["path"]).collect();
    assert!(
        paths.contains(&&json!([
            "countries_countries",
            0,
            "_join",
            "weather_failing"
        ])),
        "{}",
        r.body
    );
    assert!(
        paths.contains(&&json!([
            "countries_countries",
            1,
            "_join",
            "weather_failing"
        ])),
        "{}",
        r.body
    );
    assert!(errors
        .iter()
        .all(|e| e["extensions"]["upstream"] == "weather"));
    assert_eq!(
        r.body["data"]["countries_countries"][0]["_join"]["weather_failing"],
        Value::Null
    );
}

#[tokio::test]
async fn fan_out_beyond_the_limit_is_an_error_not_a_truncation() {
    let gw = Gateway::start_with(&[WEATHER_BY_CODES], |c, w| {
        format!("[server]\nmax_join_fanout = 3\n{}", default_config(c, w))
    })
    .await;
    let r = gw
        .run(
            "WeatherByCodes",
            json!({ "codes": ["FR", "DE", "JP", "BR"] }),
        )
        .await;
    assert_eq!(r.code(), "JOIN_FANOUT_EXCEEDED", "{}", r.body);
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("4 items; the limit is 3"));
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 1);
    assert_eq!(gw.weather.requests(), 0);
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 4, "the list itself is intact");
    let r = gw
        .run("WeatherByCodes", json!({ "codes": ["FR", "DE", "JP"] }))
        .await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
}

#[tokio::test]
async fn clients_cannot_set_internal_variables_and_never_see_them() {
    let gw = Gateway::start(&[WEATHER_BY_CODES]).await;
    let r = gw
        .run(
            "WeatherByCodes",
            json!({ "codes": ["FR"], "capital": "Oslo" }),
        )
        .await;
    assert_eq!(r.code(), "INVALID_VARIABLES");
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("`$capital` is internal"));
    assert_eq!(gw.countries.requests() + gw.weather.requests(), 0);
    let doc = &gw.running.manifest.documents[0];
    assert_eq!(
        doc.operations[0].variables.len(),
        1,
        "only `codes` is published"
    );
    assert_eq!(doc.operations[0].variables[0].name, "codes");
}

async fn build_error(operation: &str) -> String {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = default_config(&countries.url(), "http://127.0.0.1:9/graphql");
    build_errors(dir.path(), &config, &[("op.graphql", operation)]).await
}

#[tokio::test]
async fn build_time_join_checks_report_positions() {
    let cases = [
        (
            "query A($c: String! @internal) {\n  countries_country(code: \"FR\") {\n    _join { weather_getCityByName(name: $c) { name } }\n  }\n}",
            "operations/op.graphql:3:5: this join reads `$c`, but no field in a scope it can see exports it",
        ),
        (
            "query A($c: String! @internal) {\n  countries_country(code: \"FR\") {\n    _join { weather_getCityByName(name: $c) { name } }\n  }\n}",
            "operations/op.graphql:1:9: internal variable `$c` is never filled",
        ),
        (
            "query A($c: Boolean! @internal) {\n  countries_country(code: \"FR\") {\n    capital @export(as: \"c\")\n    _join { weather_now @include(if: $c) }\n  }\n}",
            "operations/op.graphql:4:5: `capital` of type `String` cannot fill `$c` of type `Boolean!`",
        ),
        (
            "query A($c: String!) {\n  countries_country(code: \"FR\") {\n    capital @export(as: \"c\")\n    _join { weather_getCityByName(name: $c) { name } }\n  }\n}",
            "operations/op.graphql:3:13: variable `$c` receives an export, so it must be declared `@internal`",
        ),
        (
            "query A($c: String! @internal) {\n  countries_country(code: \"FR\") {\n    capital @export(as: \"c\")\n    name @export(as: \"c\")\n    _join { weather_getCityByName(name: $c) { name } }\n  }\n}",
            "operations/op.graphql:4:10: `c` is exported twice in the same scope",
        ),
        (
            "query A($c: String! @internal) {\n  countries_country(code: \"FR\") {\n    _join { weather_getCityByName(name: $c) { name @export(as: \"c\") } }\n  }\n}",
            "operations/op.graphql:3:5: cycle: this join reads `$c`, which is exported inside the join itself",
        ),
        (
            "query A($c: String! @internal) {\n  countries_country(code: \"FR\") {\n    continent @export(as: \"c\") { name }\n    _join { weather_getCityByName(name: $c) { name } }\n  }\n}",
            "operations/op.graphql:3:15: only scalars, enums and lists of them can be exported",
        ),
        (
            "query A($c: String! @internal) {\n  countries_countries {\n    capital @export(as: \"c\")\n  }\n  countries_country(code: \"FR\") {\n    _join { weather_getCityByName(name: $c) { name } }\n  }\n}",
            "operations/op.graphql:6:5: `capital` of type `String` cannot fill `$c` of type `String!` (the export sits inside a list, so its values are collected: the variable must be a list)",
        ),
        (
            "query A($c: String! @internal) {\n  weather_getCityByName(name: $c) { name }\n  countries_country(code: \"FR\") { capital @export(as: \"c\") }\n}",
            "operations/op.graphql:1:1: internal variable `$c` is used by `weather_getCityByName` outside any `_join`",
        ),
    ];
    for (operation, expected) in cases {
        let err = build_error(operation).await;
        assert!(
            err.lines().any(|l| l.starts_with(expected)),
            "expected {expected:?} in\n{err}"
        );
    }
}

#[tokio::test]
async fn exports_inside_a_list_are_collected_for_one_join() {
    const COLLECT: (&str, &str) = (
        "collect.graphql",
        r#"query Collect($names: [String!]! @internal) {
  countries_continent(code: "SA") {
    _join { weather_getCitiesByNames(names: $names) { name } }
    countries { capital @export(as: "names") }
  }
}"#,
    );
    let gw = Gateway::start(&[COLLECT]).await;
    let r = gw.run("Collect", json!({})).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let continent = &r.body["data"]["countries_continent"];
    let capitals: Vec<&Value> = continent["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["capital"])
        .collect();
    let cities: Vec<&Value> = continent["_join"]["weather_getCitiesByNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert!(capitals.len() > 5);
    assert_eq!(cities, capitals, "every capital, in order, in one call");
    assert_eq!(gw.weather.requests(), 1);
    let sent = &gw.weather.received()[0];
    let names = sent["variables"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(names.as_array().unwrap().len(), capitals.len());

    // A collected list counts against the fan-out limit like items do.
    let limited = Gateway::start_with(&[COLLECT], |c, w| {
        format!("[server]\nmax_join_fanout = 5\n{}", default_config(c, w))
    })
    .await;
    let r = limited.run("Collect", json!({})).await;
    assert_eq!(r.code(), "JOIN_FANOUT_EXCEEDED", "{}", r.body);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "send a list of {} exported values; the limit is 5",
            capitals.len()
        )),
        "{message}"
    );
    assert_eq!(limited.weather.requests(), 0);
}

#[tokio::test]
async fn a_join_without_variables_is_sent_once_for_all_items() {
    const PLAIN: (&str, &str) = (
        "plain.graphql",
        r#"query Plain { countries_countries(filter: { code: { in: ["FR", "DE", "JP"] } }) { code _join { weather_now } } }"#,
    );
    let gw = Gateway::start(&[PLAIN]).await;
    let r = gw.run("Plain", json!({})).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i["_join"]["weather_now"].is_string()));
    let query = gw.weather.received()[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(query.matches(": now").count(), 1, "{query}");
    assert!(query.starts_with("query Plain__join1 {"), "{query}");
}

#[tokio::test]
async fn an_operation_can_have_its_own_fan_out_limit() {
    let gw = Gateway::start_with(&[WEATHER_BY_CODES], |c, w| {
        format!("[server]\nmax_join_fanout = 3\n{}", default_config(c, w)).replace(
            "manifest = \"out/manifest.json\"",
            "manifest = \"out/manifest.json\"\nmax_join_fanout = { WeatherByCodes = 4 }",
        )
    })
    .await;
    let r = gw
        .run(
            "WeatherByCodes",
            json!({ "codes": ["FR", "DE", "JP", "BR"] }),
        )
        .await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let r = gw
        .run(
            "WeatherByCodes",
            json!({ "codes": ["FR", "DE", "JP", "BR", "CA"] }),
        )
        .await;
    assert_eq!(r.code(), "JOIN_FANOUT_EXCEEDED");

    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = default_config(&countries.url(), "http://127.0.0.1:9/graphql").replace(
        "manifest = \"out/manifest.json\"",
        "manifest = \"out/manifest.json\"\nmax_join_fanout = { Nope = 4 }",
    );
    let path = write_project(dir.path(), &config, &[WEATHER_BY_CODES]);
    let err = joinery::project::build(&Config::load(&path).unwrap(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("joinery.toml:5:21: `max_join_fanout` names `Nope`, but no registered operation has that name"),
        "{err}"
    );
}
