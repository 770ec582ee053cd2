//! Runs the example project: starts the bundled countries and weather APIs and the travel
//! federation subgraph on 127.0.0.1:4001, :4002 and :4003, builds `joinery.toml`'s operations, and serves them on :4000 as
//! `joinery dev` does (rebuilt and served again on every change).

use std::path::PathBuf;

use anyhow::Context;
use joinery::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let config_path = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("joinery.toml"), PathBuf::from);
    let config = Config::load(&config_path)?;
    joinery::telemetry::init(&config.log);

    let countries = joinery_tests::start_countries("127.0.0.1:4001")
        .await
        .context("cannot start the example countries API on 127.0.0.1:4001")?;
    let weather = joinery_tests::start_weather("127.0.0.1:4002")
        .await
        .context("cannot start the example weather API on 127.0.0.1:4002")?;
    let travel = joinery_tests::start_travel("127.0.0.1:4003")
        .await
        .context("cannot start the example travel subgraph on 127.0.0.1:4003")?;
    eprintln!(
        "example upstreams: countries at {}, weather at {}, travel at {}",
        countries.url(),
        weather.url(),
        travel.url()
    );

    // As `joinery dev`: built now and again whenever operations/, joinery.toml or a schema
    // file changes; a failed build prints its errors and the last good one keeps serving.
    let first = std::sync::atomic::AtomicBool::new(true);
    joinery::dev::run(&config_path, joinery::cli::shutdown_signal(), |config, manifest, address| {
        if !first.swap(false, std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "rebuilt: {} persisted document(s) served",
                manifest.documents.len()
            );
            return;
        }
        eprintln!(
            "registered {} persisted document(s) in {}",
            manifest.documents.len(),
            config.operations.manifest.display()
        );
        println!("\nJoinery is serving the example project. Try:\n");
        for doc in &manifest.documents {
            let name = doc.operations[0].name.as_deref().unwrap_or("<anonymous>");
            let text = std::fs::read_to_string(root.join(&doc.origin)).unwrap_or_default();
            let variables = match joinery_tests::example_variables(&text) {
                Some(Ok(v)) => v,
                _ => serde_json::json!({}),
            };
            let body = serde_json::json!({ "documentId": format!("sha256:{}", doc.hash), "variables": variables });
            println!(
                "  # {name}\n  curl -s http://{address}/graphql -H 'content-type: application/json' -d '{body}'\n"
            );
        }
        println!(
            "Edit operations/ or joinery.toml and it rebuilds and serves the new build. Press Ctrl-C to stop."
        );
    })
    .await?;
    countries.stop().await;
    weather.stop().await;
    travel.stop().await;
    Ok(())
}
