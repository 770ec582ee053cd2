//! Retries and circuit breaking: a query that failed in a way that may pass is tried again
//! (mutations never are), and an upstream that keeps failing is not asked until a probe finds
//! it answering again.

use std::time::{Duration, Instant};

use joinery_tests::Fault;
use serde_json::json;

use crate::harness::{default_config, Gateway, COUNTRY, RENAME};

fn with(table: &'static str) -> impl Fn(&str, &str) -> String {
    move |countries, weather| {
        // A sub-table of the countries upstream, after the whole config.
        format!("{}\n{table}\n", default_config(countries, weather))
    }
}

#[tokio::test]
async fn queries_are_retried_after_failures_that_may_pass_and_mutations_are_not() {
    let gw = Gateway::start_with(
        &[COUNTRY, RENAME],
        with("[upstreams.countries.retry]\nattempts = 2\nbackoff = \"10ms\""),
    )
    .await;

    // Two 503s, then an answer: the client never sees the failures.
    gw.countries.set_fault(Fault::StatusFor(503, 2));
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(
        r.body["data"]["countries_country"]["name"], "France",
        "{}",
        r.body
    );
    assert_eq!(gw.countries.requests(), 3);

    // Three 503s: two retries are not enough; the last failure is reported.
    gw.countries.reset();
    gw.countries.set_fault(Fault::StatusFor(503, 3));
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.code(), "UPSTREAM_BAD_RESPONSE", "{}", r.body);
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("503"));
    assert_eq!(gw.countries.requests(), 3);

    // A 500 is the upstream's answer, not a passing failure: not retried.
    gw.countries.reset();
    gw.countries.set_fault(Fault::StatusFor(500, 1));
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.code(), "UPSTREAM_BAD_RESPONSE", "{}", r.body);
    assert_eq!(gw.countries.requests(), 1);

    // Mutations are sent once, whatever happens.
    gw.countries.reset();
    gw.countries.set_fault(Fault::StatusFor(503, 1));
    let r = gw
        .run("Rename", json!({ "code": "DE", "name": "Germania" }))
        .await;
    assert_eq!(r.code(), "UPSTREAM_BAD_RESPONSE", "{}", r.body);
    assert_eq!(gw.countries.requests(), 1);
}

#[tokio::test]
async fn a_failing_upstream_is_not_asked_until_a_probe_finds_it_back() {
    let gw = Gateway::start_with(
        &[COUNTRY],
        with("[upstreams.countries.breaker]\nfailures = 3\nopen_for = \"400ms\""),
    )
    .await;
    gw.countries.set_fault(Fault::Status(500));
    for _ in 0..3 {
        let r = gw.run("Country", json!({ "code": "FR" })).await;
        assert_eq!(r.code(), "UPSTREAM_BAD_RESPONSE", "{}", r.body);
    }
    assert_eq!(gw.countries.requests(), 3);

    // Open: refused at once, the upstream is not asked.
    let started = Instant::now();
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.code(), "UPSTREAM_UNAVAILABLE", "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["path"], json!(["countries_country"]));
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(gw.countries.requests(), 3);

    // Still failing when the probe goes: open again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.code(), "UPSTREAM_BAD_RESPONSE", "{}", r.body);
    assert_eq!(gw.countries.requests(), 4);
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.code(), "UPSTREAM_UNAVAILABLE", "{}", r.body);
    assert_eq!(gw.countries.requests(), 4);

    // Back: the probe closes the breaker and requests flow again.
    gw.countries.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..3 {
        let r = gw.run("Country", json!({ "code": "FR" })).await;
        assert_eq!(
            r.body["data"]["countries_country"]["name"], "France",
            "{}",
            r.body
        );
    }
    assert_eq!(gw.countries.requests(), 7);
}
