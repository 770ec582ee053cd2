//! A real Apollo Client (`@apollo/client` from npm, run by Node) against the gateway: joins
//! through its normalized cache, with persisted queries sent by hash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

use crate::harness::{default_config, repo_root, Gateway};

const OPERATION: &str = r#"query CapitalWeather($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code
    capital @export(as: "capital")
    _join {
      weather_getCityByName(name: $capital) { name }
    }
  }
}
"#;

pub(crate) fn apollo_dir() -> PathBuf {
    repo_root().join("tests/apollo")
}

/// Installs the npm packages of `tests/apollo` once (from the committed lock file).
pub(crate) fn install() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut done = INSTALLED.lock().unwrap();
    let installed = ["@apollo/client", "@apollo/subgraph"]
        .iter()
        .all(|p| apollo_dir().join("node_modules").join(p).exists());
    if !*done && !installed {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(apollo_dir())
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci failed in tests/apollo");
    }
    *done = true;
}

fn node(args: &[&str]) -> String {
    let out = Command::new("node")
        .arg(apollo_dir().join("client.mjs"))
        .args(args)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn apollo_client_gets_each_items_join_with_the_documented_cache_configuration() {
    install();
    let work = tempfile::tempdir().unwrap();
    let op = work.path().join("op.graphql");
    std::fs::write(&op, OPERATION).unwrap();
    let manifest = work.path().join("apollo-manifest.json");
    node(&["manifest", path(&op), path(&manifest)]);
    let manifest_path = manifest.display().to_string();
    let gw = Gateway::start_with(&[], move |c, w| {
        default_config(c, w).replace(
            "manifest = \"out/manifest.json\"",
            &format!("manifest = \"out/manifest.json\"\nimport = [\"{manifest_path}\"]"),
        )
    })
    .await;
    let url = gw.url.clone();
    let run = |mode: &'static str| {
        let (url, op) = (url.clone(), op.clone());
        tokio::task::spawn_blocking(move || {
            let out = node(&[
                "query",
                &url,
                path(&op),
                r#"{"codes":["DE","FR","JP"]}"#,
                mode,
            ]);
            serde_json::from_str::<Value>(&out).unwrap()
        })
    };

    let configured = run("configured").await.unwrap();
    assert_eq!(configured["errors"], Value::Null, "{configured}");
    let items = configured["data"]["countries_countries"]
        .as_array()
        .unwrap();
    let cities: Vec<&str> = items
        .iter()
        .map(|i| {
            i["_join"]["weather_getCityByName"]["name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(cities, ["Berlin", "Paris", "Tokyo"], "{configured}");
    assert_eq!(items[0]["_join"]["__typename"], "Query");

    // With the default cache, every item's `_join` is filed under the cache's root, so the
    // items overwrite each other: why the README documents the configuration above.
    let default = run("default").await.unwrap();
    let items = default["data"]["countries_countries"].as_array().unwrap();
    let cities: Vec<&str> = items
        .iter()
        .map(|i| {
            i["_join"]["weather_getCityByName"]["name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_ne!(cities, ["Berlin", "Paris", "Tokyo"], "{default}");
    // The gateway answered by hash every time: Apollo Client never had to send the text.
    assert!(gw.countries.requests() >= 2);
}
