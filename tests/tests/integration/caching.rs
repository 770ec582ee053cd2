//! The in-process answer cache: a query's answer is kept for the upstream's `ttl`, keyed by
//! everything sent (so one user's answer never reaches another), shortened or refused by the
//! upstream's `Cache-Control`; mutations and answers with errors are never kept.

use std::time::Duration;

use joinery_tests::Fault;
use serde_json::{json, Value};

use crate::harness::{default_config, Gateway, COUNTRY, RENAME};

fn cached(countries: &str, weather: &str) -> String {
    format!(
        "{}\n[upstreams.countries.cache]\nttl = \"500ms\"\n",
        default_config(countries, weather)
    )
}

fn name(reply: &crate::harness::Reply) -> &Value {
    &reply.body["data"]["countries_country"]["name"]
}

#[tokio::test]
async fn answers_are_kept_for_their_ttl_per_request() {
    let gw = Gateway::start_with(&[COUNTRY, RENAME], cached).await;
    let fr = json!({ "code": "FR" });
    for _ in 0..3 {
        assert_eq!(name(&gw.run("Country", fr.clone()).await), "France");
    }
    assert_eq!(gw.countries.requests(), 1, "served from the cache");
    assert_eq!(
        name(&gw.run("Country", json!({ "code": "DE" })).await),
        "Germany"
    );
    assert_eq!(gw.countries.requests(), 2, "other variables, another entry");

    // Another forwarded token is another request, answered for that token.
    for token in ["Bearer a", "Bearer a", "Bearer b"] {
        gw.run_as(token, "Country", fr.clone()).await;
    }
    assert_eq!(gw.countries.requests(), 4);

    // Expired: asked again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    gw.run("Country", fr.clone()).await;
    assert_eq!(gw.countries.requests(), 5);

    // Expired and the upstream fails: without stale_if_error, the failure is reported.
    tokio::time::sleep(Duration::from_millis(600)).await;
    gw.countries.set_fault(Fault::Status(503));
    let r = gw.run("Country", fr.clone()).await;
    assert_eq!(r.code(), "UPSTREAM_BAD_RESPONSE", "{}", r.body);
    gw.countries.set_fault(Fault::None);

    // Mutations are never kept.
    gw.countries.reset();
    for _ in 0..2 {
        let r = gw
            .run("Rename", json!({ "code": "IT", "name": "Italia" }))
            .await;
        assert_eq!(r.body["data"]["countries_renameCountry"]["name"], "Italia");
    }
    assert_eq!(gw.countries.requests(), 2);
}

#[tokio::test]
async fn cache_control_and_errors_keep_answers_out() {
    let gw = Gateway::start_with(&[COUNTRY], cached).await;
    let ask = || gw.run("Country", json!({ "code": "JP" }));

    gw.countries.set_fault(Fault::CacheControl("no-store"));
    ask().await;
    ask().await;
    assert_eq!(gw.countries.requests(), 2, "no-store is honoured");

    gw.countries.reset();
    gw.countries
        .set_fault(Fault::CacheControl("private, max-age=60"));
    ask().await;
    ask().await;
    assert_eq!(
        gw.countries.requests(),
        2,
        "private is not for a shared cache"
    );

    // max-age shorter than the ttl wins: 0 keeps nothing.
    gw.countries.reset();
    gw.countries.set_fault(Fault::CacheControl("max-age=0"));
    ask().await;
    ask().await;
    assert_eq!(gw.countries.requests(), 2);

    // An answer with errors may be passing: not kept.
    gw.countries.reset();
    gw.countries.set_fault(Fault::Rewrite(|response| {
        response["errors"] = json!([{ "message": "partly down" }]);
    }));
    let r = ask().await;
    assert_eq!(r.body["errors"][0]["message"], "partly down", "{}", r.body);
    gw.countries.set_fault(Fault::None);
    let r = ask().await;
    assert!(r.body.get("errors").is_none(), "{}", r.body);
    assert_eq!(gw.countries.requests(), 2);
    ask().await;
    assert_eq!(gw.countries.requests(), 2, "the complete answer is kept");
}

#[tokio::test]
async fn cached_answers_say_their_age_and_stale_ones_replace_failures() {
    let gw = Gateway::start_with(&[COUNTRY], |countries, weather| {
        format!(
            "{}\n[upstreams.countries.cache]\nttl = \"300ms\"\nstale_if_error = \"1m\"\n",
            default_config(countries, weather)
        )
    })
    .await;
    let fr = json!({ "code": "FR" });
    let first = gw.run("Country", fr.clone()).await;
    assert!(first.body.get("extensions").is_none(), "{}", first.body);

    let hit = gw.run("Country", fr.clone()).await;
    assert_eq!(name(&hit), "France");
    let note = &hit.body["extensions"]["cache"]["countries"];
    assert_eq!(note["stale"], false, "{}", hit.body);
    assert_eq!(note["ageSeconds"], 0, "{}", hit.body);
    let as_of = note["dataAsOf"].as_str().unwrap();
    assert!(as_of.len() == 20 && as_of.ends_with('Z'), "{as_of}");

    // Past its ttl, the upstream down: the stale answer, flagged, instead of an error.
    tokio::time::sleep(Duration::from_millis(400)).await;
    gw.countries.set_fault(Fault::Status(503));
    let stale = gw.run("Country", fr.clone()).await;
    assert_eq!(name(&stale), "France", "{}", stale.body);
    assert!(stale.body.get("errors").is_none(), "{}", stale.body);
    assert_eq!(
        stale.body["extensions"]["cache"]["countries"]["stale"],
        true
    );
    assert_eq!(
        stale.body["extensions"]["cache"]["countries"]["dataAsOf"],
        as_of
    );
    // Nothing to fall back on for another request: the failure is reported.
    let other = gw.run("Country", json!({ "code": "DE" })).await;
    assert_eq!(other.code(), "UPSTREAM_BAD_RESPONSE", "{}", other.body);
    assert!(other.body.get("extensions").is_none());

    // Back: a fresh answer replaces the stale one.
    gw.countries.set_fault(Fault::None);
    let fresh = gw.run("Country", fr).await;
    assert!(fresh.body.get("extensions").is_none(), "{}", fresh.body);
}
