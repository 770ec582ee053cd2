//! Per-key cache entries of batch-form joins: each key's result is kept on its own, so that a
//! later join with overlapping keys asks the upstream only for the keys it has not seen; and
//! `field_ttl`, the freshness of answers by root field.

use std::time::Duration;

use joinery::config::Config;
use joinery_tests::Fault;
use serde_json::{json, Value};

use crate::batch_forms::{config as batch_config, WEATHER_BY_CODES};
use crate::harness::{build_errors, default_config, write_project, Gateway};

/// The batch form of `getCityByName`, weather answers kept per key (`cache` is the table's
/// body), the `authorization` header forwarded to weather.
fn cached(cache: &'static str) -> impl Fn(&str, &str) -> String {
    move |countries, weather| {
        let config = batch_config(countries, weather).replace(
            "headers = { \"x-api-key\"",
            "forward_headers = [\"authorization\"]\nheaders = { \"x-api-key\"",
        );
        format!("{config}\n[upstreams.weather.cache]\n{cache}\n")
    }
}

/// The names sent in the one weather request since the last reset (none: no request).
fn asked(gw: &Gateway) -> Vec<String> {
    let received = gw.weather.received();
    assert!(received.len() <= 1, "{received:?}");
    let mut names: Vec<String> = received
        .iter()
        .flat_map(|r| r["variables"].as_object().unwrap().values())
        .flat_map(|v| v.as_array().unwrap().iter())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    gw.weather.reset();
    names
}

/// Each country's city, by code.
fn cities(reply: &crate::harness::Reply) -> Vec<(String, Value)> {
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    reply.body["data"]["countries_countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap().to_string(),
                c["weather"]["city"].clone(),
            )
        })
        .collect()
}

async fn capitals(gw: &Gateway) -> Vec<(String, String)> {
    let capitals = gw.capitals(6).await;
    gw.countries.reset();
    capitals
}

#[tokio::test]
async fn overlapping_joins_ask_only_for_the_keys_not_yet_kept() {
    let gw = Gateway::start_with(&[WEATHER_BY_CODES], cached("ttl = \"1m\"")).await;
    let capitals = capitals(&gw).await;
    let codes = |range: std::ops::Range<usize>| -> Value {
        capitals[range].iter().map(|(c, _)| c.as_str()).collect()
    };
    let names = |range: std::ops::Range<usize>| -> Vec<String> {
        let mut n: Vec<String> = capitals[range].iter().map(|(_, c)| c.clone()).collect();
        n.sort();
        n
    };

    let first = gw
        .run("WeatherByCodes", json!({ "codes": codes(0..4) }))
        .await;
    assert_eq!(asked(&gw), names(0..4));
    assert!(first.body.get("extensions").is_none(), "{}", first.body);

    // Two of these were seen: only the other two are asked for.
    let second = gw
        .run("WeatherByCodes", json!({ "codes": codes(2..6) }))
        .await;
    assert_eq!(asked(&gw), names(4..6));
    // Items from the cache are the items the upstream gave.
    assert_eq!(cities(&first)[2..], cities(&second)[..2]);
    assert_eq!(
        second.body["extensions"]["cache"]["weather"]["stale"], false,
        "{}",
        second.body
    );

    // All seen: no weather request at all, the same answer.
    let third = gw
        .run("WeatherByCodes", json!({ "codes": codes(0..6) }))
        .await;
    assert_eq!(asked(&gw), Vec::<String>::new());
    assert_eq!(cities(&third)[..4], cities(&first)[..]);
    assert_eq!(cities(&third)[2..], cities(&second)[..]);

    // Another user's items are not theirs: asked again under that token.
    gw.run_as(
        "Bearer other",
        "WeatherByCodes",
        json!({ "codes": codes(0..2) }),
    )
    .await;
    assert_eq!(asked(&gw), names(0..2));
}

#[tokio::test]
async fn a_key_without_a_result_is_kept_as_not_found() {
    let gw = Gateway::start_with(&[WEATHER_BY_CODES], cached("ttl = \"1m\"")).await;
    let capitals = capitals(&gw).await;
    let codes: Vec<&str> = capitals[..3].iter().map(|(c, _)| c.as_str()).collect();
    // The batch answer leaves two keys out.
    gw.weather.set_fault(Fault::TruncateLists(1));
    let first = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    let found =
        |r: &crate::harness::Reply| cities(r).iter().filter(|(_, city)| !city.is_null()).count();
    assert_eq!(found(&first), 1, "{}", first.body);
    assert_eq!(asked(&gw).len(), 3);
    gw.weather.set_fault(Fault::None);
    let again = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(asked(&gw), Vec::<String>::new(), "not found is an answer");
    assert_eq!(cities(&again), cities(&first));
}

#[tokio::test]
async fn answers_with_errors_keep_no_items() {
    let gw = Gateway::start_with(&[WEATHER_BY_CODES], cached("ttl = \"1m\"")).await;
    let capitals = capitals(&gw).await;
    let codes: Vec<&str> = capitals[..2].iter().map(|(c, _)| c.as_str()).collect();
    gw.weather.set_fault(Fault::Rewrite(|response| {
        response["errors"] = json!([{ "message": "partly down" }]);
    }));
    gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(asked(&gw).len(), 2);
    gw.weather.set_fault(Fault::None);
    gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(asked(&gw).len(), 2, "asked again");
    gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(asked(&gw).len(), 0, "the complete answer's items are kept");
}

#[tokio::test]
async fn stale_items_stand_in_for_a_failing_upstream() {
    let gw = Gateway::start_with(
        &[WEATHER_BY_CODES],
        cached("ttl = \"300ms\"\nstale_if_error = \"1m\""),
    )
    .await;
    let capitals = capitals(&gw).await;
    let codes: Vec<&str> = capitals[..3].iter().map(|(c, _)| c.as_str()).collect();
    let fresh = gw
        .run("WeatherByCodes", json!({ "codes": codes[..2] }))
        .await;
    asked(&gw);
    tokio::time::sleep(Duration::from_millis(400)).await;
    gw.weather.set_fault(Fault::Status(503));
    // Two items were kept, one was never seen: that one gets the error.
    let r = gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    let items = r.body["data"]["countries_countries"].as_array().unwrap();
    for (i, item) in items.iter().enumerate().take(2) {
        assert_eq!(
            item["weather"]["city"],
            fresh.body["data"]["countries_countries"][i]["weather"]["city"]
        );
    }
    assert!(items[2]["weather"]["city"].is_null(), "{}", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.body);
    assert_eq!(
        errors[0]["path"],
        json!(["countries_countries", 2, "weather", "city"])
    );
    assert_eq!(r.body["extensions"]["cache"]["weather"]["stale"], true);
}

#[tokio::test]
async fn field_ttl_shortens_lengthens_or_forbids_keeping() {
    // Not kept at all for this field.
    let gw = Gateway::start_with(
        &[WEATHER_BY_CODES],
        cached("ttl = \"1m\"\nfield_ttl = { getCityByName = \"0s\" }"),
    )
    .await;
    let capitals = capitals(&gw).await;
    let codes: Vec<&str> = capitals[..2].iter().map(|(c, _)| c.as_str()).collect();
    for _ in 0..2 {
        gw.run("WeatherByCodes", json!({ "codes": codes })).await;
        assert_eq!(asked(&gw).len(), 2);
    }

    // Kept longer than the upstream's ttl.
    let gw = Gateway::start_with(
        &[WEATHER_BY_CODES],
        cached("ttl = \"100ms\"\nfield_ttl = { getCityByName = \"1m\" }"),
    )
    .await;
    gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(asked(&gw).len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(asked(&gw).len(), 0);
}

#[tokio::test]
async fn field_ttl_must_name_root_query_fields() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[upstreams.countries.cache]\nttl = \"1m\"\n\n[upstreams.countries.cache.field_ttl]\ncountry = \"5m\"\ncountrys = \"1m\"\nlanguage = \"soon\"\n",
        default_config(&countries.url(), "http://127.0.0.1:9/graphql")
    );
    let path = write_project(dir.path(), &config, &[]);
    let err = match Config::load(&path) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an invalid duration is refused"),
    }
    .replace(&format!("{}/", dir.path().display()), "");
    assert!(
        err.contains("joinery.toml:23:12: expected a duration such as \"10s\", \"5m\" or \"0s\" (not kept), not \"soon\""),
        "{err}"
    );

    let err = build_errors(dir.path(), &config.replace("\"soon\"", "\"1h\""), &[]).await;
    assert!(
        err.contains("joinery.toml:22:1: `cache.field_ttl` of upstream `countries` names `countrys`, which is not one of its root query fields"),
        "{err}"
    );
    assert!(!err.contains("`country`"), "{err}");
}
