//! Persisted operations that read the schema (`__schema`, `__type`, `__typename`), as code
//! generators and Apollo Client's `possibleTypes` set-up persist them: answered by the gateway
//! from the composed schema, without asking an upstream.

use serde_json::{json, Value};

use crate::harness::{build_errors, default_config, Gateway};

const TYPES: (&str, &str) = (
    "types.graphql",
    "query Types { __schema { queryType { name } mutationType { name } types { kind name } } }",
);
const FIELDS: (&str, &str) = (
    "fields.graphql",
    "query Fields($name: String!) { __typename __type(name: $name) { name kind fields { name } } }",
);
const POSSIBLE_TYPES: (&str, &str) = (
    "possible-types.graphql",
    "query PossibleTypes { __schema { types { kind name possibleTypes { name } } } }",
);

#[tokio::test]
async fn introspection_operations_are_answered_from_the_composed_schema() {
    let gw = Gateway::start(&[TYPES, FIELDS, POSSIBLE_TYPES]).await;
    let types = gw.run("Types", json!({})).await;
    assert_eq!(types.status, 200, "{}", types.body);
    let schema = &types.body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    let names: Vec<&str> = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for expected in ["countries_Country", "weather_City", "String", "__Schema"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let fields = gw
        .run("Fields", json!({ "name": "countries_Country" }))
        .await;
    assert_eq!(fields.body["data"]["__typename"], "Query");
    let country = &fields.body["data"]["__type"];
    assert_eq!(country["kind"], "OBJECT");
    let field_names: Vec<&str> = country["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        field_names.contains(&"code") && field_names.contains(&"_join"),
        "{field_names:?}"
    );
    // An unknown type is null, as GraphQL says.
    let missing = gw.run("Fields", json!({ "name": "Nope" })).await;
    assert_eq!(missing.body["data"]["__type"], Value::Null);
    // Variables are checked like any operation's.
    let invalid = gw.run("Fields", json!({})).await;
    assert_eq!(invalid.code(), "INVALID_VARIABLES");

    let possible = gw.run("PossibleTypes", json!({})).await;
    for t in possible.body["data"]["__schema"]["types"]
        .as_array()
        .unwrap()
    {
        match t["kind"].as_str().unwrap() {
            "UNION" | "INTERFACE" => assert!(t["possibleTypes"].is_array(), "{t}"),
            _ => assert!(t["possibleTypes"].is_null(), "{t}"),
        }
    }
    // No upstream was asked.
    assert_eq!(gw.countries.requests() + gw.weather.requests(), 0);
}

#[tokio::test]
async fn an_operation_mixing_introspection_and_upstream_fields_is_refused_at_build() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let errors = build_errors(
        dir.path(),
        &default_config(&countries.url(), "http://127.0.0.1:9/graphql"),
        &[(
            "mixed.graphql",
            "query Mixed {\n  __schema { queryType { name } }\n  countries_country(code: \"FR\") { name }\n}\n",
        )],
    )
    .await;
    assert!(
        errors.contains("operations/mixed.graphql:1:1: an operation that reads `__schema` or `__type` can select nothing else at its root (it selects `countries_country`)"),
        "{errors}"
    );
}
