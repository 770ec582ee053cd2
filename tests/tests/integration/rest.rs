//! Persisted operations as REST endpoints (`/operations/<Name>`) and their OpenAPI document,
//! against real upstreams; the document is checked by a real OpenAPI 3.1 validator.

use serde_json::{json, Value};

use crate::harness::{Gateway, Reply, COUNTRY, RENAME};

const COUNTRIES: (&str, &str) = (
    "countries.graphql",
    "query Countries($codes: [String!]) { countries_countries(filter: { code: { in: $codes } }) { code } }",
);
const FILTERED: (&str, &str) = (
    "filtered.graphql",
    "query Filtered($filter: countries_CountryFilterInput, $first: Boolean = false) { countries_countries(filter: $filter) { code name @include(if: $first) } }",
);
const WARM: (&str, &str) = (
    "warm.graphql",
    "mutation Warm($celsius: Float!) { weather_setTemperature(city: \"Paris\", celsius: $celsius) { name } }",
);

async fn start() -> Gateway {
    Gateway::start(&[COUNTRY, COUNTRIES, FILTERED, RENAME, WARM]).await
}

fn endpoint(gw: &Gateway, path: &str) -> String {
    gw.url.replace("/graphql", &format!("/operations/{path}"))
}

async fn get(gw: &Gateway, path: &str) -> Reply {
    gw.send(gw.client.get(endpoint(gw, path))).await
}

async fn post(gw: &Gateway, name: &str, body: &str) -> Reply {
    gw.send(
        gw.client
            .post(endpoint(gw, name))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn operations_answer_as_rest_endpoints_like_graphql() {
    let gw = start().await;
    let graphql = gw.run("Country", json!({ "code": "FR" })).await;
    let by_get = get(&gw, "Country?code=FR").await;
    assert_eq!(by_get.status, 200);
    assert_eq!(by_get.body, graphql.body);
    assert_eq!(by_get.body["data"]["countries_country"]["capital"], "Paris");
    let by_post = post(&gw, "Country", r#"{"code": "DE"}"#).await;
    assert_eq!(by_post.body["data"]["countries_country"]["code"], "DE");

    // A list variable takes its parameter once per item; an input object is JSON.
    let list = get(&gw, "Countries?codes=FR&codes=JP").await;
    assert_eq!(
        list.body["data"]["countries_countries"],
        json!([{ "code": "FR" }, { "code": "JP" }])
    );
    let filter = urlencode(r#"{"code": {"eq": "DE"}}"#);
    let filtered = get(&gw, &format!("Filtered?filter={filter}&first=true")).await;
    assert_eq!(
        filtered.body["data"]["countries_countries"],
        json!([{ "code": "DE", "name": "Germany" }]),
        "{}",
        filtered.body
    );
    // Mutations by POST only; Float variables typed from the text.
    let warm = post(&gw, "Warm", r#"{"celsius": 31.5}"#).await;
    assert_eq!(
        warm.body["data"]["weather_setTemperature"]["name"], "Paris",
        "{}",
        warm.body
    );
    let renamed = post(&gw, "Rename", r#"{"code": "FR", "name": "Gaule"}"#).await;
    assert_eq!(
        renamed.body["data"]["countries_renameCountry"]["name"],
        "Gaule"
    );
}

#[tokio::test]
async fn rest_endpoints_refuse_what_graphql_refuses_and_say_why() {
    let gw = start().await;
    let cases: Vec<(Reply, u16, &str, &str)> = vec![
        (
            get(&gw, "Nope").await,
            404,
            "OPERATION_NOT_FOUND",
            "no registered operation is named `Nope`",
        ),
        (get(&gw, "Country").await, 200, "INVALID_VARIABLES", "code"),
        (
            get(&gw, "Country?code=FR&code=DE").await,
            200,
            "INVALID_VARIABLES",
            "query parameter `code` is given 2 times, but `$code` is not a list",
        ),
        (
            get(&gw, "Country?code=FR&capital=Paris").await,
            200,
            "INVALID_VARIABLES",
            "query parameter `capital` is not a variable of operation `Country`",
        ),
        (
            get(&gw, "Filtered?first=yes").await,
            200,
            "INVALID_VARIABLES",
            "query parameter `first` must be true or false, not \"yes\"",
        ),
        (
            get(&gw, "Filtered?filter=%7Bcode").await,
            200,
            "INVALID_VARIABLES",
            "query parameter `filter` must be a JSON object",
        ),
        (
            get(&gw, "Warm?celsius=30").await,
            405,
            "METHOD_NOT_ALLOWED",
            "mutations cannot be sent with GET: use POST",
        ),
        (
            post(&gw, "Country", "[1]").await,
            200,
            "INVALID_VARIABLES",
            "`variables` must be a JSON object",
        ),
        (
            post(&gw, "Country", "{").await,
            400,
            "BAD_REQUEST",
            "the request body is not a JSON object of variables",
        ),
        (
            gw.send(
                gw.client
                    .post(endpoint(&gw, "Country"))
                    .header("content-type", "text/plain")
                    .body("code=FR"),
            )
            .await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST bodies must be application/json",
        ),
        (
            gw.send(gw.client.delete(endpoint(&gw, "Country"))).await,
            405,
            "METHOD_NOT_ALLOWED",
            "method DELETE is not allowed",
        ),
    ];
    for (reply, status, code, message) in cases {
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(reply.code(), code, "{}", reply.body);
        let text = reply.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(text.contains(message), "{text}");
        assert!(reply.body.get("data").is_none_or(Value::is_null));
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_operation_and_validates() {
    let gw = start().await;
    let reply = gw.send(gw.client.get(endpoint(&gw, "openapi.json"))).await;
    assert_eq!(reply.status, 200);
    let doc = reply.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let country = &doc["paths"]["/operations/Country"];
    assert_eq!(
        country["get"]["parameters"],
        json!([{ "name": "code", "in": "query", "required": true, "schema": { "type": "string" } }])
    );
    assert_eq!(
        country["post"]["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["code"])
    );
    // Mutations have no GET; an input object is a component, sent as JSON in its parameter.
    assert!(doc["paths"]["/operations/Rename"]["get"].is_null());
    assert!(doc["paths"]["/operations/Rename"]["post"].is_object());
    let filter = &doc["paths"]["/operations/Filtered"]["get"]["parameters"][0];
    assert_eq!(filter["required"], false);
    assert_eq!(
        filter["content"]["application/json"]["schema"]["anyOf"][0]["$ref"],
        "#/components/schemas/countries_CountryFilterInput"
    );
    assert!(doc["components"]["schemas"]["countries_StringQueryOperatorInput"].is_object());

    // A real validator (openapi-spec-validator, from PyPI) accepts it.
    let python = joinery_tests::plugins::python_tool("openapi", "openapi-spec-validator==0.7.1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stdout.starts_with(b"valid"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
