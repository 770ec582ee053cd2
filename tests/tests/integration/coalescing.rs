//! Request coalescing: identical queries to an upstream in flight at the same moment are sent
//! once and share the answer; anything that makes two requests differ (variables, forwarded
//! headers) keeps them apart, mutations are always sent, and `coalesce = false` turns it off.
//! The upstreams answer after a delay, so that concurrent client requests overlap.

use std::time::Duration;

use futures::future::join_all;
use joinery_tests::Fault;
use serde_json::json;

use crate::harness::{default_config, Gateway, COUNTRY, RENAME};

const JOINED: (&str, &str) = (
    "joined.graphql",
    r#"query Joined($code: ID!, $capital: String! @internal) {
  countries_country(code: $code) {
    code
    capital @export(as: "capital")
    _join { weather_getCityByName(name: $capital) { name } }
  }
}"#,
);

fn slow(gw: &Gateway) {
    gw.countries
        .set_fault(Fault::Delay(Duration::from_millis(700)));
    gw.weather
        .set_fault(Fault::Delay(Duration::from_millis(700)));
}

#[tokio::test]
async fn identical_queries_in_flight_are_sent_once() {
    let gw = Gateway::start(&[COUNTRY, JOINED]).await;
    slow(&gw);

    let replies = join_all((0..100).map(|_| gw.run("Country", json!({ "code": "FR" })))).await;
    for r in &replies {
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({ "data": { "countries_country": { "code": "FR", "name": "France", "capital": "Paris" } } })
        );
    }
    assert_eq!(
        gw.countries.requests(),
        1,
        "100 identical requests, one sent"
    );

    // A join: the list fetch and the joined fetch are each sent once for all clients.
    gw.countries.reset();
    let replies = join_all((0..20).map(|_| gw.run("Joined", json!({ "code": "JP" })))).await;
    for r in &replies {
        assert_eq!(
            r.body["data"]["countries_country"]["_join"]["weather_getCityByName"]["name"], "Tokyo",
            "{}",
            r.body
        );
    }
    assert_eq!(gw.countries.requests(), 1);
    assert_eq!(gw.weather.requests(), 1);

    // Nothing stays in flight: the next request is sent again.
    gw.countries.reset();
    gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(gw.countries.requests(), 1);
}

#[tokio::test]
async fn requests_that_differ_are_each_sent() {
    let gw = Gateway::start(&[COUNTRY, RENAME]).await;
    let codes: Vec<String> = gw
        .ask_countries("code")
        .await
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_string())
        .collect();
    assert!(codes.len() >= 50, "{codes:?}");
    slow(&gw);

    // Every country at once, different variables: one request each, each with its own answer.
    let replies = join_all(
        codes
            .iter()
            .map(|code| gw.run("Country", json!({ "code": code }))),
    )
    .await;
    for (code, r) in codes.iter().zip(&replies) {
        assert_eq!(r.body["data"]["countries_country"]["code"], code.as_str());
    }
    assert_eq!(gw.countries.requests(), codes.len());

    // A forwarded header is part of the request: one request per distinct token, each client
    // answered from its own.
    gw.countries.reset();
    let replies = join_all((0..20).map(|i| {
        let token = if i % 2 == 0 { "Bearer a" } else { "Bearer b" };
        gw.run_as(token, "Country", json!({ "code": "FR" }))
    }))
    .await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(gw.countries.requests(), 2);
    let tokens: std::collections::BTreeSet<String> = gw
        .countries
        .received_headers()
        .iter()
        .map(|h| h["authorization"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens, ["Bearer a", "Bearer b"].map(String::from).into());

    // Mutations are never shared.
    gw.countries.reset();
    let replies =
        join_all((0..10).map(|_| gw.run("Rename", json!({ "code": "DE", "name": "Germania" }))))
            .await;
    for r in &replies {
        assert_eq!(
            r.body["data"]["countries_renameCountry"]["name"], "Germania",
            "{}",
            r.body
        );
    }
    assert_eq!(gw.countries.requests(), 10);
}

#[tokio::test]
async fn coalescing_can_be_turned_off_per_upstream() {
    let gw = Gateway::start_with(&[COUNTRY], |countries, weather| {
        default_config(countries, weather).replacen(
            "forward_headers = [\"authorization\"]",
            "forward_headers = [\"authorization\"]\ncoalesce = false",
            1,
        )
    })
    .await;
    slow(&gw);
    let replies = join_all((0..10).map(|_| gw.run("Country", json!({ "code": "FR" })))).await;
    assert!(replies
        .iter()
        .all(|r| r.body["data"]["countries_country"]["name"] == "France"));
    assert_eq!(gw.countries.requests(), 10);
}
