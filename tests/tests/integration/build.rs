//! `joinery build`: operation and import errors with exact positions, all in one run.

use joinery::config::Config;
use serde_json::json;

use crate::harness::{default_config, write_project, Gateway, COUNTRY};

async fn build_errors(operations: &[(&str, &str)]) -> String {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = default_config(&countries.url(), "http://127.0.0.1:9/graphql");
    crate::harness::build_errors(dir.path(), &config, operations).await
}

#[tokio::test]
async fn every_invalid_operation_is_reported_with_its_position() {
    let err = build_errors(&[
        (
            "a.graphql",
            "query A {\n  countries_country(code: \"FR\") {\n    nme\n  }\n}\n",
        ),
        (
            "b.graphql",
            "query B($x: Int) {\n  countries_countries { code }\n}\n",
        ),
        ("c.graphql", "query C { weather_now }\n"),
        (
            "g.graphql",
            "query G { weather_now }\nquery C { weather_now }\n",
        ),
        (
            "d.graphql",
            "subscription D { countries_countries { code } }\n",
        ),
        (
            "e.graphql",
            "query E { __schema { types { name } } weather_now }\n",
        ),
        (
            "f.graphql",
            "query F { countries_country(code: \"FR\") { name \n",
        ),
    ])
    .await;
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/a.graphql:3:5: ") && l.contains("`nme`")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/b.graphql:1:9: ") && l.contains("$x")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("operations/g.graphql:2:7: operation name `C` is already used in")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/d.graphql:1:1: ") && l.contains("subscription")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/e.graphql:1:1: an operation that reads `__schema`")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("operations/f.graphql:1:49: syntax error")),
        "{err}"
    );
    assert!(
        err.ends_with("problem(s) found; nothing was written"),
        "{err}"
    );
}

#[tokio::test]
async fn client_manifests_are_imported_and_served() {
    let apollo_body = "query FromApollo { countries_country(code: \"JP\") { name } }";
    let codegen_body = "query FromCodegen { countries_country(code: \"BR\") { name } }";
    let apollo_hash = joinery::operations::hash(apollo_body);
    let codegen_hash = joinery::operations::hash(codegen_body);
    let apollo = json!({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": apollo_hash, "name": "FromApollo", "type": "query", "body": apollo_body }]
    })
    .to_string();
    let codegen = json!({ format!("sha256:{codegen_hash}"): codegen_body }).to_string();
    let gw = Gateway::start_with(&[COUNTRY], move |c, w| {
        let dir = std::env::temp_dir().join(format!("joinery-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("apollo.json"), &apollo).unwrap();
        std::fs::write(dir.join("codegen.json"), &codegen).unwrap();
        default_config(c, w).replace(
            "manifest = \"out/manifest.json\"",
            &format!(
                "manifest = \"out/manifest.json\"\nimport = [\"{}\", \"{}\"]",
                dir.join("apollo.json").display(),
                dir.join("codegen.json").display()
            ),
        )
    })
    .await;
    let r = gw
        .post(json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": apollo_hash } } }))
        .await;
    assert_eq!(
        r.body,
        json!({ "data": { "countries_country": { "name": "Japan" } } })
    );
    let r = gw
        .post(json!({ "documentId": format!("sha256:{codegen_hash}") }))
        .await;
    assert_eq!(
        r.body,
        json!({ "data": { "countries_country": { "name": "Brazil" } } })
    );
}

#[tokio::test]
async fn imported_entries_with_wrong_hashes_or_invalid_documents_are_refused() {
    let good = "query Ok { countries_country(code: \"FR\") { name } }";
    let bad = "query Bad { countries_country(code: \"FR\") { nope } }";
    let manifest = format!(
        "{{\n  \"{}\": {},\n  \"sha256:{}\": {}\n}}\n",
        "0".repeat(64),
        json!(good),
        joinery::operations::hash(bad),
        json!(bad)
    );
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("codegen.json"), &manifest).unwrap();
    let config = default_config(&countries.url(), "http://127.0.0.1:9/graphql").replace(
        "manifest = \"out/manifest.json\"",
        "manifest = \"out/manifest.json\"\nimport = [\"codegen.json\"]",
    );
    let path = write_project(dir.path(), &config, &[COUNTRY]);
    let config = Config::load(&path).unwrap();
    let err = joinery::project::build(&config, true)
        .await
        .unwrap_err()
        .to_string();
    let err = err.replace(&format!("{}/", dir.path().display()), "");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("codegen.json:2:3: hash 0000"), "{err}");
    assert!(lines[0].contains("does not match its document"), "{err}");
    assert!(
        lines.iter().any(
            |l| l.starts_with("codegen.json:3:3: in the entry's document at 1:45: ")
                && l.contains("`nope`")
        ),
        "{err}"
    );
}

#[tokio::test]
async fn serving_refuses_a_manifest_built_for_other_upstreams() {
    let gw = Gateway::start(&[COUNTRY]).await;
    let path = gw.dir.path().join("joinery.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("[upstreams.weather]", "[upstreams.forecast]"),
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let err = joinery::project::gateway(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("run `joinery build`"), "{err}");
}

/// A file or folder the config names that cannot be read is reported at the config line that
/// names it (schema files, client manifests, the operations folder, plugin components).
#[tokio::test]
async fn missing_files_are_reported_where_the_config_names_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("weather.graphql"),
        "type Query { now: Int }\n",
    )
    .unwrap();
    let cases = [
        (
            "[operations]\ndir = \"ops\"\n[upstreams.weather]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"missing.graphql\"\n",
            "joinery.toml:5:15: upstream `weather`: cannot read schema file",
        ),
        (
            "[operations]\ndir = \"ops\"\n[upstreams.weather]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"weather.graphql\"\n",
            "joinery.toml:2:7: the operations folder: cannot read",
        ),
        (
            "[upstreams.weather]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"weather.graphql\"\n",
            "joinery.toml: the operations folder (`[operations] dir`, by default \"operations\"): cannot read",
        ),
        (
            "[operations]\ndir = \".\"\nimport = [\"a.json\", \"gone.json\"]\n[upstreams.weather]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"weather.graphql\"\n",
            "joinery.toml:3:21: a manifest to import: cannot read gone.json",
        ),
        (
            "[operations]\ndir = \".\"\n[upstreams.weather]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"weather.graphql\"\n[plugins.auth]\npath = \"auth.wasm\"\n[policy]\nplugins = [\"auth\"]\n",
            "joinery.toml:7:8: plugin `auth` (",
        ),
    ];
    std::fs::write(dir.path().join("a.json"), "{}").unwrap();
    for (text, expected) in cases {
        let path = dir.path().join("joinery.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        let err = match joinery::project::build(&config, false).await {
            Ok(_) => panic!("{text}: the build passed"),
            Err(e) => e.to_string(),
        };
        let err = err.replace(&format!("{}/", dir.path().display()), "");
        assert!(err.starts_with(expected), "{text}\ngave: {err}");
    }
}
