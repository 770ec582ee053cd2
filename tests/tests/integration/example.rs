//! The repository's own example project builds and serves, and every operation in
//! `operations/` runs against the bundled upstreams.

use joinery::config::Config;
use serde_json::json;

use crate::harness::repo_root;

#[tokio::test]
async fn the_example_project_builds_and_every_operation_runs() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let weather = joinery_tests::start_weather("127.0.0.1:0").await.unwrap();
    let travel = joinery_tests::start_travel("127.0.0.1:0").await.unwrap();
    let mut config = Config::load(&repo_root().join("joinery.toml")).unwrap();
    config.upstreams["countries"].transport = joinery::config::Transport::Http(countries.url());
    config.upstreams["weather"].transport = joinery::config::Transport::Http(weather.url());
    config.upstreams["travel"].transport = joinery::config::Transport::Http(travel.url());
    let out = tempfile::tempdir().unwrap();
    config.operations.manifest = out.path().join("manifest.json");
    let built = joinery::project::build(&config, true).await.unwrap();
    let gateway = joinery::project::gateway(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(joinery::server::serve(
        gateway,
        listener,
        std::future::pending(),
        Default::default(),
    ));
    let client = reqwest::Client::new();
    // Every registered operation runs, with the variables its file gives as an example.
    let files = std::fs::read_dir(repo_root().join("operations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "graphql")
        })
        .count();
    assert_eq!(
        built.manifest.documents.len(),
        files,
        "one document per file"
    );
    for doc in &built.manifest.documents {
        let file = repo_root().join(&doc.origin);
        let text = std::fs::read_to_string(&file).unwrap();
        let vars = joinery_tests::example_variables(&text)
            .unwrap_or_else(|| panic!("{}: no `# Example variables: {{…}}` line", doc.origin))
            .unwrap_or_else(|e| panic!("{}: the example variables are not JSON: {e}", doc.origin));
        let name = doc.operations[0].name.as_deref().unwrap();
        let body: serde_json::Value = client
            .post(&url)
            .json(&json!({ "documentId": format!("sha256:{}", doc.hash), "operationName": name, "variables": vars }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{name}: {body}");
        let data = body["data"].as_object().unwrap();
        assert!(data.values().all(|v| !v.is_null()), "{name}: {body}");
    }
}

#[test]
fn the_example_weather_sdl_is_the_upstreams_own() {
    let file = std::fs::read_to_string(repo_root().join("schemas/weather.graphql")).unwrap();
    assert_eq!(file, joinery_tests::weather_sdl());
}
