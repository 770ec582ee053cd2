//! Every persisted request form, and every request error with its status and code.

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
async fn post_with_apq_extension() {
    let gw = gateway().await;
    let r = gw
        .post(json!({
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": gw.hash("Country") } },
            "variables": { "code": "FR" }
        }))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, france());
    assert!(r.content_type().starts_with("application/json"));
}

#[tokio::test]
async fn post_with_document_id() {
    let gw = gateway().await;
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(r.body, france());
}

#[tokio::test]
async fn get_with_document_id_and_apq_extension() {
    let gw = gateway().await;
    let hash = gw.hash("Country");
    let r = gw
        .send(gw.client.get(&gw.url).query(&[
            ("documentId", format!("sha256:{hash}").as_str()),
            ("variables", r#"{"code":"FR"}"#),
        ]))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, france()));
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string();
    let r = gw
        .send(gw.client.get(&gw.url).query(&[
            ("extensions", ext.as_str()),
            ("variables", r#"{"code":"FR"}"#),
        ]))
        .await;
    assert_eq!((r.status, r.body), (200, france()));
}

#[tokio::test]
async fn registered_query_text_runs_and_other_text_is_refused() {
    let gw = gateway().await;
    let r = gw
        .post(json!({ "query": COUNTRY.1, "variables": { "code": "FR" } }))
        .await;
    assert_eq!(r.body, france());
    let r = gw
        .post(json!({ "query": "{ countries_countries { name } }" }))
        .await;
    assert_eq!(r.code(), "OPERATION_NOT_PERSISTED");
    assert!(r.body.get("data").is_none());
    assert_eq!(
        gw.countries.requests(),
        1,
        "refused text never reaches an upstream"
    );
}

#[tokio::test]
async fn unknown_hash_is_not_found_with_media_type_dependent_status() {
    let gw = gateway().await;
    let body = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } } });
    let r = gw.post(body.clone()).await;
    assert_eq!((r.status, r.code()), (200, "PERSISTED_QUERY_NOT_FOUND"));
    let r = gw
        .send(
            gw.client
                .post(&gw.url)
                .header("accept", "application/graphql-response+json")
                .json(&body),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "PERSISTED_QUERY_NOT_FOUND"));
    assert!(r
        .content_type()
        .starts_with("application/graphql-response+json"));
}

#[tokio::test]
async fn text_that_disagrees_with_its_hash_is_refused() {
    let gw = gateway().await;
    let r = gw
        .post(json!({
            "query": "{ countries_countries { name } }",
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": gw.hash("Country") } }
        }))
        .await;
    assert_eq!(r.code(), "PERSISTED_QUERY_HASH_MISMATCH");
}

#[tokio::test]
async fn malformed_document_ids_are_refused() {
    let gw = gateway().await;
    for id in ["abc", "sha256:xyz", "md5:0123"] {
        let r = gw.post(json!({ "documentId": id })).await;
        assert_eq!(r.code(), "INVALID_DOCUMENT_ID", "{id}");
    }
}

#[tokio::test]
async fn operation_name_selects_and_is_checked() {
    let gw = gateway().await;
    let id = format!("sha256:{}", gw.hash("A"));
    let r = gw
        .post(json!({ "documentId": id, "operationName": "B" }))
        .await;
    assert_eq!(
        r.body,
        json!({ "data": { "countries_country": { "name": "Germany" } } })
    );
    let r = gw.post(json!({ "documentId": id })).await;
    assert_eq!(r.code(), "OPERATION_NAME_REQUIRED");
    let r = gw
        .post(json!({ "documentId": id, "operationName": "C" }))
        .await;
    assert_eq!(r.code(), "OPERATION_NOT_FOUND");
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

#[tokio::test]
async fn malformed_bodies_are_bad_requests() {
    let gw = gateway().await;
    let r = gw
        .send(
            gw.client
                .post(&gw.url)
                .header("content-type", "application/json")
                .body("{\"documentId\": "),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"));
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{}",
        r.body
    );
    let r = gw.post(json!({ "documentId": 5 })).await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"));
    let r = gw.post(json!({})).await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"));
    let r = gw
        .send(
            gw.client
                .get(&gw.url)
                .query(&[("documentId", "sha256:0"), ("variables", "{")]),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"));
    // A repeated parameter is refused, as a duplicate key in a JSON body is.
    let id = format!("sha256:{}", gw.hash("Country"));
    let r = gw
        .send(gw.client.get(&gw.url).query(&[
            ("documentId", id.as_str()),
            ("documentId", id.as_str()),
            ("variables", r#"{"code":"FR"}"#),
        ]))
        .await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"), "{}", r.body);
}

#[tokio::test]
async fn http_level_refusals() {
    let gw = gateway().await;
    let big = json!({ "documentId": format!("sha256:{}", gw.hash("Country")), "variables": { "code": "x".repeat(2 << 20) } });
    let r = gw.post(big).await;
    assert_eq!((r.status, r.code()), (413, "REQUEST_TOO_LARGE"));
    let r = gw
        .send(
            gw.client
                .post(&gw.url)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!((r.status, r.code()), (415, "UNSUPPORTED_MEDIA_TYPE"));
    // No Content-Type at all: what a cross-site `fetch` with a Blob body sends.
    let r = gw
        .send(
            gw.client
                .post(&gw.url)
                .body(json!({ "documentId": format!("sha256:{}", gw.hash("Country")), "variables": { "code": "FR" } }).to_string()),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (415, "UNSUPPORTED_MEDIA_TYPE"),
        "{}",
        r.body
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no Content-Type"),
        "{}",
        r.body
    );
    let r = gw
        .send(
            gw.client
                .post(&gw.url)
                .header("accept", "text/html")
                .json(&json!({})),
        )
        .await;
    assert_eq!((r.status, r.code()), (406, "NOT_ACCEPTABLE"));
    let r = gw.send(gw.client.put(&gw.url).json(&json!({}))).await;
    assert_eq!((r.status, r.code()), (405, "METHOD_NOT_ALLOWED"));
    let r = gw
        .send(gw.client.get(gw.url.replace("/graphql", "/nope")))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn variables_are_coerced_and_errors_name_the_variable() {
    let gw = gateway().await;
    let r = gw.run("Country", json!({})).await;
    assert_eq!(r.code(), "INVALID_VARIABLES");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("code"),
        "{}",
        r.body
    );
    let r = gw.run("Country", json!({ "code": true })).await;
    assert_eq!(r.code(), "INVALID_VARIABLES");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("code"),
        "{}",
        r.body
    );
    let r = gw.run("Country", json!({ "code": "FR", "extra": 1 })).await;
    assert_eq!(r.code(), "INVALID_VARIABLES");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("$extra"),
        "{}",
        r.body
    );
    let r = gw
        .post(json!({ "documentId": format!("sha256:{}", gw.hash("Country")), "variables": [1] }))
        .await;
    assert_eq!(r.code(), "INVALID_VARIABLES");
    assert_eq!(
        gw.countries.requests(),
        0,
        "refused variables never reach an upstream"
    );
    // An Int is a valid ID.
    let r = gw.run("Country", json!({ "code": 7 })).await;
    assert_eq!(r.body, json!({ "data": { "countries_country": null } }));
}

#[tokio::test]
async fn health_and_request_ids() {
    let gw = gateway().await;
    let r = gw
        .send(gw.client.get(gw.url.replace("/graphql", "/health")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
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
