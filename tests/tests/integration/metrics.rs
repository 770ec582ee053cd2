//! Prometheus metrics at `/metrics`: scraped from a real gateway in front of real upstreams
//! (one cached, one down) with a real policy plugin, and read with a Prometheus text-format
//! parser.

use joinery_tests::plugins::rust_plugin;
use joinery_tests::Fault;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::harness::{default_config, Gateway, COUNTRY};

const COUNTRY_WEATHER: (&str, &str) = (
    "country-weather.graphql",
    r#"query CountryWeather($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code
    capital @export(as: "capital")
    _join { weather_getCityByName(name: $capital) { name } }
  }
}"#,
);

/// Scrapes `url` and parses what it serves.
async fn scrape(url: &str) -> (String, Vec<Sample>) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    (text, scrape.samples)
}

/// The value of the sample named `metric` whose labels include `labels`, if there is one.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = samples.iter().find(|s| {
        s.metric == metric
            && labels
                .iter()
                .all(|(name, value)| s.labels.get(name) == Some(value))
    })?;
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        _ => panic!("{metric} is not a single value"),
    }
}

#[tokio::test]
async fn metrics_count_requests_upstreams_caches_joins_and_plugins() {
    let probe = rust_plugin("probe");
    let gw = Gateway::start_with(&[COUNTRY, COUNTRY_WEATHER], |countries, weather| {
        format!(
            "{}\n[upstreams.countries.cache]\nttl = \"1m\"\n\n[policy]\nplugins = [\"probe\"]\n\n[plugins.probe]\npath = \"{}\"\n",
            default_config(countries, weather),
            probe.display()
        )
    })
    .await;
    for _ in 0..2 {
        let reply = gw.run("Country", json!({ "code": "FR" })).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let reply = gw
        .run("CountryWeather", json!({ "codes": ["FR", "DE", "JP"] }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // An unknown document, and a plugin that fails the request.
    let unknown = gw
        .post(json!({ "documentId": format!("sha256:{}", "0".repeat(64)) }))
        .await;
    assert_eq!(unknown.code(), "PERSISTED_QUERY_NOT_FOUND");
    let failed = gw
        .send(
            gw.client
                .post(&gw.url)
                .header("x-probe", "trap")
                .json(&json!({ "documentId": format!("sha256:{}", gw.hash("Country")), "variables": { "code": "DE" } })),
        )
        .await;
    assert_eq!(failed.code(), "PLUGIN_FAILED");
    // The weather upstream fails: 503, then answers that are not JSON.
    gw.weather.set_fault(Fault::Status(503));
    let reply = gw.run("CountryWeather", json!({ "codes": ["FR"] })).await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["code"], "UPSTREAM_BAD_RESPONSE",
        "{}",
        reply.body
    );
    gw.weather.set_fault(Fault::InvalidJson);
    let reply = gw.run("CountryWeather", json!({ "codes": ["DE"] })).await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["code"], "UPSTREAM_BAD_RESPONSE",
        "{}",
        reply.body
    );

    let (text, samples) = scrape(&gw.running.metrics_url).await;
    let requests = |operation, status, code| {
        value(
            &samples,
            "joinery_requests_total",
            &[("operation", operation), ("status", status), ("code", code)],
        )
    };
    assert_eq!(requests("Country", "200", "ok"), Some(2.0), "{text}");
    assert_eq!(requests("CountryWeather", "200", "ok"), Some(1.0), "{text}");
    assert_eq!(
        requests("CountryWeather", "200", "errors"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        requests("(none)", "200", "PERSISTED_QUERY_NOT_FOUND"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests("Country", "500", "PLUGIN_FAILED"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "joinery_request_duration_seconds_count",
            &[("operation", "Country")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&samples, "joinery_requests_in_flight", &[]),
        Some(0.0),
        "{text}"
    );
    // The second `Country` was a cache hit: one request reached the upstream for it; the
    // join's list query was a miss and went out too.
    let upstream = |name, result| {
        value(
            &samples,
            "joinery_upstream_requests_total",
            &[("upstream", name), ("result", result)],
        )
    };
    assert_eq!(upstream("countries", "ok"), Some(4.0), "{text}");
    assert_eq!(upstream("weather", "ok"), Some(2.0), "{text}");
    assert_eq!(upstream("weather", "http_503"), Some(1.0), "{text}");
    let errors = |code: &str| {
        value(
            &samples,
            "joinery_upstream_errors_total",
            &[("upstream", "weather"), ("code", code)],
        )
    };
    // Both failures reached the weather fields, whatever the transport saw.
    assert_eq!(errors("UPSTREAM_BAD_RESPONSE"), Some(2.0), "{text}");
    let cache = |result| {
        value(
            &samples,
            "joinery_cache_lookups_total",
            &[("upstream", "countries"), ("result", result)],
        )
    };
    assert_eq!(cache("hit"), Some(1.0), "{text}");
    assert_eq!(cache("miss"), Some(4.0), "{text}");
    assert_eq!(
        value(&samples, "joinery_join_fanout_count", &[]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&samples, "joinery_join_fanout_sum", &[]),
        Some(5.0),
        "{text}"
    );
    let plugin = |result| {
        value(
            &samples,
            "joinery_plugin_calls_total",
            &[("plugin", "probe"), ("result", result)],
        )
    };
    // Every request that found its operation called the policy once.
    assert_eq!(plugin("ok"), Some(5.0), "{text}");
    assert_eq!(plugin("failed"), Some(1.0), "{text}");
    // Names from the configuration and the manifest only: no variable values, no hashes.
    for secret in ["\"FR\"", "\"DE\"", "Paris", &gw.hash("Country")] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Anything but GET /metrics is not found.
    let other = reqwest::get(gw.running.metrics_url.replace("/metrics", "/graphql"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}
