//! The README's configuration reference is a configuration: it parses, every key in it is one
//! the gateway knows (unknown keys are refused), and the values it shows are the ones read.

use std::path::Path;
use std::time::Duration;

use joinery::config::{Config, LogFormat};

use crate::harness::repo_root;

/// The first TOML block under the README's "Configuration reference" heading.
fn reference() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("## Configuration reference")
        .nth(1)
        .expect("the README has a configuration reference");
    let block = section
        .split("```toml\n")
        .nth(1)
        .expect("with a TOML block");
    block.split("```").next().unwrap().to_string()
}

#[test]
fn the_readme_configuration_reference_parses_and_means_what_it_says() {
    let text = reference();
    let config = Config::parse(Path::new("joinery.toml"), &text, &|name| {
        (name == "COUNTRIES_KEY").then(|| "k".to_string())
    })
    .unwrap_or_else(|e| panic!("the README's configuration reference does not parse:\n{e}"));

    assert_eq!(config.server.listen.to_string(), "127.0.0.1:4000");
    assert_eq!(config.server.max_request_bytes, 1 << 20);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(config.server.max_join_fanout, 1000);
    assert_eq!(config.log.format, LogFormat::Human);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.metrics.listen.unwrap().to_string(), "127.0.0.1:9464");
    assert_eq!(
        config.explorer.listen.unwrap().to_string(),
        "127.0.0.1:4100"
    );
    assert_eq!(
        config.traces.endpoint.as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    assert_eq!(config.traces.service_name, "joinery");
    let countries = &config.upstreams["countries"];
    assert_eq!(countries.timeout, Duration::from_secs(10));
    assert_eq!(countries.max_response_bytes, 16 << 20);
    assert_eq!(countries.forward_headers, vec!["authorization".to_string()]);
    assert_eq!(countries.policies, vec!["auth".to_string()]);
    assert_eq!(config.policies, vec!["auth".to_string()]);
    let auth = &config.plugins["auth"];
    assert_eq!(auth.timeout, Duration::from_millis(100));
    assert_eq!(auth.max_memory, 16 << 20);
    assert!(config.upstreams.contains_key("shop"));
    let budget = &config.operations.budget;
    assert_eq!(budget.max_depth.as_ref().map(|l| l.value), Some(12));
    assert_eq!(
        budget.max_upstream_requests.as_ref().map(|l| l.value),
        Some(8)
    );
    assert_eq!(budget.max_fields.as_ref().map(|l| l.value), Some(100_000));
    let sizes: Vec<(&str, u64)> = countries
        .list_sizes
        .iter()
        .map(|h| (h.name.as_str(), h.size))
        .collect();
    assert_eq!(sizes, [("countries", 250), ("Country.languages", 10)]);
}
