//! Execution against real upstreams: namespacing, fragments and aliases across namespaces,
//! parallel fetches, mutation order, upstream errors, timeouts and outages.

use std::time::{Duration, Instant};

use joinery_tests::Fault;
use serde_json::json;

use crate::harness::{default_config, Gateway, COUNTRY};

const MIXED: (&str, &str) = (
    "mixed.graphql",
    r#"query Mixed($code: ID!, $city: String!, $withWeather: Boolean!, $units: weather_Unit = IMPERIAL) {
  w: weather_getCityByName(name: $city, config: { units: $units }) @include(if: $withWeather) {
    ...CityName
    weather { temperature { actual } }
  }
  ...Root
  c: countries_country(code: $code) { code }
  __typename
}
fragment Root on Query {
  c: countries_country(code: $code) { name continent { ... on countries_Continent { code } } }
}
fragment CityName on weather_City { cityName: name }
"#,
);

const SEARCH: (&str, &str) = (
    "search.graphql",
    r#"query Search($term: String!) {
  countries_search(term: $term) {
    __typename
    ... on countries_Country { code capital }
    ... on countries_Continent { code countries { code } }
    ...Named
  }
  countries_node(id: "Country:FR") { __typename id ... on countries_Country { name } }
}
fragment Named on countries_Node { id }
"#,
);

const FAILING: (&str, &str) = (
    "failing.graphql",
    "query Failing { countries_failing countries_country(code: \"FR\") { name } weather_now }\nquery NonNull { countries_nonNullFailing weather_now }\n",
);

const BOTH: (&str, &str) = (
    "both.graphql",
    "query Both($code: ID!, $city: String!) { country: countries_country(code: $code) { name } weather: weather_getCityByName(name: $city) { name } }",
);

const MUTATIONS: (&str, &str) = (
    "mutations.graphql",
    r#"mutation Ordered {
  first: countries_renameCountry(code: "FR", name: "One") { name }
  temp: weather_setTemperature(city: "Paris", celsius: 30.5) { name }
  second: countries_renameCountry(code: "FR", name: "Two") { name }
}"#,
);

#[tokio::test]
async fn fragments_aliases_and_conditions_across_namespaces() {
    let gw = Gateway::start(&[MIXED]).await;
    let r = gw
        .run(
            "Mixed",
            json!({ "code": "FR", "city": "Paris", "withWeather": true }),
        )
        .await;
    let data = &r.body["data"];
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    // The client's field order and aliases, fields merged from the fragment.
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["w", "c", "__typename"]);
    assert_eq!(
        data["c"],
        json!({ "name": "France", "continent": { "code": "EU" }, "code": "FR" })
    );
    assert_eq!(data["w"]["cityName"], "Paris");
    assert!(data["w"]["weather"]["temperature"]["actual"].is_number());
    assert_eq!(data["__typename"], "Query");

    // Each upstream got one document without prefixes, and only its own variables.
    let sent = gw.weather.received();
    assert_eq!(sent.len(), 1);
    let query = sent[0]["query"].as_str().unwrap();
    assert!(
        query.contains("w: getCityByName(name: $city, config: {units: $units})"),
        "{query}"
    );
    assert!(query.contains("... on City"), "{query}");
    assert!(
        !query.contains("weather_") && !query.contains("countries"),
        "{query}"
    );
    assert_eq!(
        sent[0]["variables"],
        json!({ "city": "Paris", "withWeather": true, "units": "IMPERIAL" })
    );
    let sent = gw.countries.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["variables"], json!({ "code": "FR" }));
    assert!(!sent[0]["query"].as_str().unwrap().contains("countries_"));

    // @include(if: false) leaves the field out, and its upstream is not even called.
    gw.weather.reset();
    let r = gw
        .run(
            "Mixed",
            json!({ "code": "FR", "city": "Paris", "withWeather": false }),
        )
        .await;
    let keys: Vec<&String> = r.body["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["c", "__typename"]);
    assert_eq!(
        gw.weather.requests(),
        1,
        "the upstream applies @include itself"
    );
}

#[tokio::test]
async fn abstract_types_get_namespaced_typenames() {
    let gw = Gateway::start(&[SEARCH]).await;
    let r = gw.run("Search", json!({ "term": "fra" })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let results = r.body["data"]["countries_search"].as_array().unwrap();
    let france = results.iter().find(|x| x["code"] == "FR").unwrap();
    assert_eq!(
        france,
        &json!({ "__typename": "countries_Country", "code": "FR", "capital": "Paris", "id": "Country:FR" })
    );
    assert_eq!(
        r.body["data"]["countries_node"],
        json!({ "__typename": "countries_Country", "id": "Country:FR", "name": "France" })
    );
    let r = gw.run("Search", json!({ "term": "europe" })).await;
    let europe = &r.body["data"]["countries_search"][0];
    assert_eq!(europe["__typename"], "countries_Continent");
    assert!(europe["countries"].as_array().unwrap().len() > 5);
}

#[tokio::test]
async fn upstreams_are_fetched_in_parallel() {
    let gw = Gateway::start(&[BOTH]).await;
    gw.countries
        .set_fault(Fault::Delay(Duration::from_millis(800)));
    gw.weather
        .set_fault(Fault::Delay(Duration::from_millis(800)));
    let started = Instant::now();
    let r = gw
        .run("Both", json!({ "code": "FR", "city": "Paris" }))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(
        r.body["data"],
        json!({ "country": { "name": "France" }, "weather": { "name": "Paris" } })
    );
    // Sequential fetches would take at least 1.6 s.
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

#[tokio::test]
async fn mutation_root_fields_run_in_document_order() {
    let gw = Gateway::start(&[MUTATIONS]).await;
    let r = gw.run("Ordered", json!({})).await;
    assert_eq!(
        r.body,
        json!({ "data": { "first": { "name": "One" }, "temp": { "name": "Paris" }, "second": { "name": "Two" } } })
    );
    // One request per run of consecutive fields of one upstream: countries, weather, countries.
    assert_eq!(gw.countries.requests(), 2);
    assert_eq!(gw.weather.requests(), 1);
    let sent = gw.countries.received();
    assert!(sent[0]["query"].as_str().unwrap().contains("\"One\""));
    assert!(sent[1]["query"].as_str().unwrap().contains("\"Two\""));
}

#[tokio::test]
async fn upstream_errors_keep_their_code_and_get_the_client_path() {
    let gw = Gateway::start(&[FAILING]).await;
    let r = gw.run("Failing", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["countries_failing"], json!(null));
    assert_eq!(
        r.body["data"]["countries_country"],
        json!({ "name": "France" })
    );
    assert!(r.body["data"]["weather_now"].is_string());
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.body);
    assert_eq!(errors[0]["path"], json!(["countries_failing"]));
    assert_eq!(errors[0]["extensions"]["upstream"], "countries");
    assert_eq!(errors[0]["extensions"]["code"], "COUNTRIES_BROKEN");
    assert!(
        errors[0].get("locations").is_none(),
        "upstream document locations are dropped"
    );
}

#[tokio::test]
async fn a_failed_non_null_root_field_nulls_data() {
    let gw = Gateway::start(&[FAILING]).await;
    let r = gw.run("NonNull", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!(null));
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(
        errors.len(),
        1,
        "only the upstream's error, no duplicate: {}",
        r.body
    );
    assert_eq!(errors[0]["path"], json!(["countries_nonNullFailing"]));
}

#[tokio::test]
async fn a_slow_upstream_times_out_and_the_rest_is_served() {
    let gw = Gateway::start_with(&[BOTH], |c, w| {
        default_config(c, w).replace("timeout = \"2s\"\nheaders", "timeout = \"300ms\"\nheaders")
    })
    .await;
    gw.weather.set_fault(Fault::Delay(Duration::from_secs(3)));
    let r = gw
        .run("Both", json!({ "code": "FR", "city": "Paris" }))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["data"],
        json!({ "country": { "name": "France" }, "weather": null })
    );
    assert_eq!(r.code(), "UPSTREAM_TIMEOUT");
    assert_eq!(r.body["errors"][0]["path"], json!(["weather"]));
    assert_eq!(r.body["errors"][0]["extensions"]["upstream"], "weather");
}

#[tokio::test]
async fn broken_and_unreachable_upstreams_give_partial_data() {
    let gw = Gateway::start(&[BOTH]).await;
    let vars = json!({ "code": "FR", "city": "Paris" });
    for (fault, code) in [
        (Fault::Status(503), "UPSTREAM_BAD_RESPONSE"),
        (Fault::InvalidJson, "UPSTREAM_BAD_RESPONSE"),
        (Fault::CloseConnection, "UPSTREAM_UNAVAILABLE"),
    ] {
        gw.weather.set_fault(fault.clone());
        let r = gw.run("Both", vars.clone()).await;
        assert_eq!(
            r.body["data"],
            json!({ "country": { "name": "France" }, "weather": null }),
            "{fault:?}"
        );
        assert_eq!(r.code(), code, "{fault:?}: {}", r.body);
    }
    // Nothing listens on port 9: connections are refused.
    let gw3 = Gateway::start_with(&[BOTH], |c, _| {
        default_config(c, "http://127.0.0.1:9/graphql")
    })
    .await;
    let r = gw3.run("Both", vars).await;
    assert_eq!(r.body["data"]["country"], json!({ "name": "France" }));
    assert_eq!(r.code(), "UPSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn headers_are_forwarded_and_added_per_upstream() {
    let gw = Gateway::start(&[BOTH]).await;
    let id = format!("sha256:{}", gw.hash("Both"));
    gw.send(
        gw.client
            .post(&gw.url)
            .header("authorization", "Bearer abc")
            .header("x-other", "no")
            .json(&json!({ "documentId": id, "variables": { "code": "FR", "city": "Paris" } })),
    )
    .await;
    let countries = &gw.countries.received_headers()[0];
    assert_eq!(countries["authorization"], "Bearer abc");
    assert!(countries.get("x-other").is_none());
    assert!(countries.get("x-api-key").is_none());
    let weather = &gw.weather.received_headers()[0];
    assert!(
        weather.get("authorization").is_none(),
        "only forwarded where configured"
    );
    assert_eq!(weather["x-api-key"], "k-123");
}

#[tokio::test]
async fn the_plan_is_prepared_once_and_printable() {
    let gw = Gateway::start(&[COUNTRY, MUTATIONS]).await;
    let config = joinery::config::Config::load(&gw.dir.path().join("joinery.toml")).unwrap();
    let gateway = joinery::project::gateway(&config).await.unwrap();
    let plan = gateway.registry.find_operation("Ordered").unwrap();
    assert_eq!(plan.stages.len(), 3);
    let text = plan.to_string();
    assert!(
        text.contains("mutation Ordered — at most 3 upstream request(s)"),
        "{text}"
    );
    assert!(text.contains("fetch from `weather` → temp"), "{text}");
}
