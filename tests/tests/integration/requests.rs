//! Requests whose checks need more than a request and its answer: upstream request counts,
//! response headers, sizes made at run time, shutdown. The request forms and request errors
//! themselves are data: `tests/cases/requests/` (run by `cases.rs`).

use serde_json::json;

use crate::harness::{Gateway, COUNTRY, RENAME};

const TWO_OPS: (&str, &str) = (
    "two.graphql",
    "query A { countries_country(code: \"FR\") { name } }\nquery B { countries_country(code: \"DE\") { name } }\n",
);
async fn gateway() -> Gateway {
    Gateway::start(&[COUNTRY, TWO_OPS, RENAME]).await
}

fn france() -> serde_json::Value {
    json!({ "data": { "countries_country": { "code": "FR", "name": "France", "capital": "Paris" } } })
}

#[tokio::test]
async fn refused_requests_never_reach_an_upstream() {
    let gw = gateway().await;
    let r = gw
        .post(json!({ "query": "{ countries_countries { name } }" }))
        .await;
    assert_eq!(r.code(), "OPERATION_NOT_PERSISTED");
    let r = gw.run("Country", json!({ "code": true })).await;
    assert_eq!(r.code(), "INVALID_VARIABLES");
    assert_eq!(gw.countries.requests(), 0);
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.body, france());
    assert_eq!(gw.countries.requests(), 1);
}

#[tokio::test]
async fn mutations_over_get_are_refused_with_405() {
    let gw = gateway().await;
    let id = format!("sha256:{}", gw.hash("Rename"));
    let r = gw
        .send(gw.client.get(&gw.url).query(&[
            ("documentId", id.as_str()),
            ("variables", r#"{"code":"FR","name":"X"}"#),
        ]))
        .await;
    assert_eq!((r.status, r.code()), (405, "METHOD_NOT_ALLOWED"));
    assert_eq!(r.headers["allow"], "GET, POST");
    assert_eq!(gw.countries.requests(), 0);
    let r = gw
        .run("Rename", json!({ "code": "FR", "name": "République" }))
        .await;
    assert_eq!(
        r.body["data"]["countries_renameCountry"]["name"],
        "République"
    );
}

/// A body over the size limit (made at run time); the other HTTP-level refusals are cases
/// (`tests/cases/requests/http.json`).
#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let gw = gateway().await;
    let big = json!({ "documentId": format!("sha256:{}", gw.hash("Country")), "variables": { "code": "x".repeat(2 << 20) } });
    let r = gw.post(big).await;
    assert_eq!((r.status, r.code()), (413, "REQUEST_TOO_LARGE"));
    assert_eq!(gw.countries.requests(), 0);
}

#[tokio::test]
async fn health_and_request_ids() {
    let gw = gateway().await;
    let r = gw
        .send(gw.client.get(gw.url.replace("/graphql", "/health")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-request-id"].len(), 16);
    let r = gw
        .send(
            gw.client
                .get(gw.url.replace("/graphql", "/health"))
                .header("x-request-id", "abc-1"),
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "abc-1");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let mut gw = gateway().await;
    gw.countries.set_fault(joinery_tests::Fault::Delay(
        std::time::Duration::from_millis(400),
    ));
    let client = gw.client.clone();
    let url = gw.url.clone();
    let id = format!("sha256:{}", gw.hash("Country"));
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({ "documentId": id, "variables": { "code": "FR" } }))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    gw.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), france());
    assert!(
        gw.client
            .post(&gw.url)
            .json(&json!({}))
            .send()
            .await
            .is_err(),
        "no longer accepting"
    );
}
