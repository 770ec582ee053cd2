//! Upstream data is checked, not trusted: built-in scalars and enums against their types, no
//! silent `null` for a field an upstream left out, no root field written by another upstream,
//! and no data of an upstream's under a join's key. Errors upstreams send are checked too: each
//! one reaches the client as an object with a string `message`, a `path` of keys and indices or
//! none, object `extensions` naming the upstream, in the spec's order and with no member the
//! spec does not define.

use joinery_tests::Fault;
use serde_json::{json, Value};

use crate::harness::Gateway;

const CHECKED: (&str, &str) = (
    "checked.graphql",
    r#"query Checked($code: ID!, $city: String!) {
  countries_country(code: $code) { code name capital }
  weather_getCityByName(name: $city) { name }
}"#,
);

const JOINED: (&str, &str) = (
    "joined.graphql",
    r#"query Joined($code: ID!, $capital: String! @internal) {
  countries_country(code: $code) {
    capital @export(as: "capital")
    w: _join { weather_getCityByName(name: $capital) { name } }
  }
}"#,
);

fn country(response: &mut Value) -> &mut Value {
    &mut response["data"]["countries_country"]
}

fn error_at(body: &Value, path: Value) -> &Value {
    body["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["path"] == path))
        .unwrap_or_else(|| panic!("no error at {path}: {body}"))
}

#[tokio::test]
async fn scalars_are_checked_against_their_types() {
    let gw = Gateway::start(&[CHECKED]).await;
    let vars = json!({ "code": "FR", "city": "Paris" });

    // A number where a `String!` is: an error at the field, null propagation to the country.
    gw.countries
        .set_fault(Fault::Rewrite(|r| country(r)["name"] = json!(12345)));
    let r = gw.run("Checked", vars.clone()).await;
    assert_eq!(
        r.body["data"]["countries_country"],
        Value::Null,
        "{}",
        r.body
    );
    let error = error_at(&r.body, json!(["countries_country", "name"]));
    assert_eq!(error["extensions"]["code"], "UPSTREAM_BAD_RESPONSE");
    assert!(
        error["message"].as_str().unwrap().contains("not a String"),
        "{error}"
    );
    assert_eq!(r.body["data"]["weather_getCityByName"]["name"], "Paris");

    // An object where an `ID!` is: refused; an integer ID is sent on as a string.
    gw.countries.set_fault(Fault::Rewrite(|r| {
        country(r)["code"] = json!({ "evil": true })
    }));
    let r = gw.run("Checked", vars.clone()).await;
    let error = error_at(&r.body, json!(["countries_country", "code"]));
    assert!(
        error["message"].as_str().unwrap().contains("not an ID"),
        "{error}"
    );
    gw.countries
        .set_fault(Fault::Rewrite(|r| country(r)["code"] = json!(250)));
    let r = gw.run("Checked", vars.clone()).await;
    assert_eq!(
        r.body["data"]["countries_country"]["code"], "250",
        "{}",
        r.body
    );
    assert!(r.body.get("errors").is_none(), "{}", r.body);
}

#[tokio::test]
async fn a_field_left_out_is_an_error_not_a_silent_null() {
    let gw = Gateway::start(&[CHECKED]).await;
    gw.countries.set_fault(Fault::Rewrite(|r| {
        country(r).as_object_mut().unwrap().remove("capital");
    }));
    let r = gw
        .run("Checked", json!({ "code": "FR", "city": "Paris" }))
        .await;
    assert_eq!(r.body["data"]["countries_country"]["capital"], Value::Null);
    assert_eq!(r.body["data"]["countries_country"]["name"], "France");
    let error = error_at(&r.body, json!(["countries_country", "capital"]));
    assert_eq!(error["extensions"]["code"], "UPSTREAM_BAD_RESPONSE");
    assert!(
        error["message"].as_str().unwrap().contains("leaves out"),
        "{error}"
    );
}

#[tokio::test]
async fn an_upstream_writes_only_its_own_root_fields() {
    let gw = Gateway::start(&[CHECKED]).await;
    // The weather API (whose answer is read after the countries API's) answers with the
    // countries API's field too.
    gw.weather.set_fault(Fault::Rewrite(|r| {
        r["data"]["countries_country"] =
            json!({ "code": "XX", "name": "Forged", "capital": "Nowhere" });
    }));
    let r = gw
        .run("Checked", json!({ "code": "FR", "city": "Paris" }))
        .await;
    assert_eq!(
        r.body["data"]["countries_country"],
        json!({ "code": "FR", "name": "France", "capital": "Paris" }),
        "{}",
        r.body
    );
    assert_eq!(r.body["data"]["weather_getCityByName"]["name"], "Paris");
    assert!(r.body.get("errors").is_none(), "{}", r.body);
}

#[tokio::test]
async fn a_join_key_holds_only_what_the_join_fetched() {
    let gw = Gateway::start(&[JOINED]).await;
    // The countries API puts its own object under the join's key, and the join fails.
    gw.countries.set_fault(Fault::Rewrite(|r| {
        country(r)["w"] = json!({ "weather_getCityByName": { "name": "Forged" } });
    }));
    gw.weather.set_fault(Fault::Status(500));
    let r = gw.run("Joined", json!({ "code": "FR" })).await;
    assert_eq!(
        r.body["data"]["countries_country"]["w"]["weather_getCityByName"],
        Value::Null,
        "{}",
        r.body
    );
    error_at(
        &r.body,
        json!(["countries_country", "w", "weather_getCityByName"]),
    );
    // When the join works, its own result is what the client sees.
    gw.weather.set_fault(Fault::None);
    let r = gw.run("Joined", json!({ "code": "FR" })).await;
    assert_eq!(
        r.body["data"]["countries_country"]["w"]["weather_getCityByName"]["name"], "Paris",
        "{}",
        r.body
    );
}

#[tokio::test]
async fn an_error_status_with_graphql_errors_fails_each_field_at_its_path() {
    let gw = Gateway::start(&[CHECKED, JOINED]).await;
    gw.countries.set_fault(Fault::ErrorStatus(500));
    let r = gw
        .run("Checked", json!({ "code": "FR", "city": "Paris" }))
        .await;
    let error = error_at(&r.body, json!(["countries_country"]));
    assert_eq!(error["message"], "injected: the server is down");
    assert_eq!(error["extensions"]["upstream"], "countries");
    assert_eq!(r.body["data"]["weather_getCityByName"]["name"], "Paris");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 1, "{}", r.body);

    gw.countries.set_fault(Fault::None);
    gw.weather.set_fault(Fault::ErrorStatus(503));
    let r = gw.run("Joined", json!({ "code": "FR" })).await;
    let error = error_at(
        &r.body,
        json!(["countries_country", "w", "weather_getCityByName"]),
    );
    assert_eq!(error["message"], "injected: the server is down");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 1, "{}", r.body);
}

/// The client's `data` for [`CHECKED`] when both upstreams answer.
fn checked_data() -> Value {
    json!({
        "countries_country": { "code": "FR", "name": "France", "capital": "Paris" },
        "weather_getCityByName": { "name": "Paris" }
    })
}

/// Every malformed shape, sent with the data: each becomes a valid error, those whose path is
/// malformed without one.
#[tokio::test]
async fn malformed_errors_sent_with_data_become_valid_errors() {
    let gw = Gateway::start(&[CHECKED]).await;
    gw.countries.set_fault(Fault::Rewrite(|r| {
        r["errors"] = json!([
            "not an object",
            { "path": ["countries_country", "name"] },
            { "message": null },
            { "message": 42 },
            { "message": "path null", "path": null },
            { "message": "path not a list", "path": "countries_country" },
            { "message": "negative step", "path": ["countries_country", -1] },
            { "message": "fractional step", "path": ["countries_country", 1.5] },
            { "message": "null step", "path": ["countries_country", null] },
            { "message": "object step", "path": ["countries_country", { "i": 0 }] },
            { "message": "extensions not an object", "extensions": ["x"] },
            {
                "extra": true,
                "extensions": { "code": "E", "upstream": "forged" },
                "data": { "countries_country": null },
                "locations": [{ "line": 1, "column": 2 }],
                "path": ["countries_country", "code"],
                "message": "spec members only, in the spec's order"
            }
        ]);
    }));
    let r = gw
        .run("Checked", json!({ "code": "FR", "city": "Paris" }))
        .await;
    let up = json!({ "upstream": "countries" });
    assert_eq!(
        r.body,
        json!({
            "errors": [
                { "message": "\"not an object\"", "extensions": up },
                {
                    "message": "the upstream sent an error without a message",
                    "path": ["countries_country", "name"],
                    "extensions": up
                },
                { "message": "the upstream sent an error without a message", "extensions": up },
                { "message": "42", "extensions": up },
                { "message": "path null", "extensions": up },
                { "message": "path not a list", "extensions": up },
                { "message": "negative step", "extensions": up },
                { "message": "fractional step", "extensions": up },
                { "message": "null step", "extensions": up },
                { "message": "object step", "extensions": up },
                { "message": "extensions not an object", "extensions": up },
                {
                    "message": "spec members only, in the spec's order",
                    "path": ["countries_country", "code"],
                    "extensions": { "code": "E", "upstream": "countries" }
                }
            ],
            "data": checked_data()
        })
    );
    // Tests compare JSON as data: the order is checked on the text.
    let last = serde_json::to_string(&r.body["errors"][11]).unwrap();
    assert!(
        last.starts_with(r#"{"message":"spec members only"#) && last.contains(r#"],"extensions""#),
        "{last}"
    );
}

/// Without data, an error whose path was dropped is one without a path: the whole request
/// failed, so it is the error of each of the upstream's root fields.
#[tokio::test]
async fn without_data_an_error_with_a_malformed_path_fails_each_root_field() {
    let gw = Gateway::start(&[CHECKED]).await;
    gw.countries.set_fault(Fault::Rewrite(|r| {
        *r = json!({
            "data": null,
            "errors": [{ "message": "m", "path": ["countries_country", -1], "code": 1 }]
        });
    }));
    let r = gw
        .run("Checked", json!({ "code": "FR", "city": "Paris" }))
        .await;
    assert_eq!(
        r.body,
        json!({
            "errors": [{
                "message": "m",
                "path": ["countries_country"],
                "extensions": { "upstream": "countries" }
            }],
            "data": { "countries_country": null, "weather_getCityByName": { "name": "Paris" } }
        })
    );
}

/// Inside a join, a well-formed path is moved to the item's place in the client's response; a
/// malformed one is dropped (it was once moved there with its bad steps appended).
#[tokio::test]
async fn inside_a_join_malformed_paths_are_dropped() {
    let gw = Gateway::start(&[JOINED]).await;
    gw.weather.set_fault(Fault::Rewrite(|r| {
        let alias = r["data"]
            .as_object()
            .and_then(|data| data.keys().next().cloned())
            .expect("one joined field");
        r["errors"] = json!([
            { "message": "well formed", "path": [alias, "name"] },
            { "message": "fractional step", "path": [alias, 1.5, "name"] },
            { "message": "null step", "path": [alias, null] },
            { "message": 7, "path": [alias] }
        ]);
    }));
    let r = gw.run("Joined", json!({ "code": "FR" })).await;
    let up = json!({ "upstream": "weather" });
    assert_eq!(
        r.body,
        json!({
            "errors": [
                {
                    "message": "well formed",
                    "path": ["countries_country", "w", "weather_getCityByName", "name"],
                    "extensions": up
                },
                { "message": "fractional step", "extensions": up },
                { "message": "null step", "extensions": up },
                {
                    "message": "7",
                    "path": ["countries_country", "w", "weather_getCityByName"],
                    "extensions": up
                }
            ],
            "data": {
                "countries_country": {
                    "capital": "Paris",
                    "w": { "weather_getCityByName": { "name": "Paris" } }
                }
            }
        })
    );
}
