//! The repository's own example project builds and serves, and every operation in
//! `operations/` runs against the bundled upstreams.

use joinery::config::Config;
use serde_json::json;

use crate::harness::repo_root;

#[tokio::test]
async fn the_example_project_builds_and_every_operation_runs() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let weather = joinery_tests::start_weather("127.0.0.1:0").await.unwrap();
    let mut config = Config::load(&repo_root().join("joinery.toml")).unwrap();
    config.upstreams["countries"].transport = joinery::config::Transport::Http(countries.url());
    config.upstreams["weather"].transport = joinery::config::Transport::Http(weather.url());
    let out = tempfile::tempdir().unwrap();
    config.operations.manifest = out.path().join("manifest.json");
    let built = joinery::project::build(&config, true).await.unwrap();
    let names: Vec<&str> = built
        .manifest
        .documents
        .iter()
        .flat_map(|d| d.operations.iter().filter_map(|o| o.name.as_deref()))
        .collect();
    for expected in [
        "Country",
        "Countries",
        "CityWeather",
        "CountryAndWeather",
        "Search",
        "RenameCountry",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
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
    let variables = [
        ("Country", json!({ "code": "FR" })),
        ("Countries", json!({ "continent": "OC" })),
        ("CityWeather", json!({ "city": "Tokyo" })),
        (
            "CountryAndWeather",
            json!({ "code": "JP", "city": "Tokyo" }),
        ),
        ("Search", json!({ "term": "an" })),
        ("RenameCountry", json!({ "code": "FR", "name": "France!" })),
        ("CountriesWithWeather", json!({ "continent": "EU" })),
        ("CapitalChain", json!({ "code": "JP" })),
        ("ContinentCapitals", json!({ "code": "SA" })),
    ];
    for (name, vars) in variables {
        let doc = built
            .manifest
            .documents
            .iter()
            .find(|d| d.operations.iter().any(|o| o.name.as_deref() == Some(name)))
            .unwrap();
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
