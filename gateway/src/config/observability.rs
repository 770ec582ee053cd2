//! `[log]`, `[metrics]`, `[traces]` and `[explorer]`: what the gateway tells its operators and
//! developers, and where.

use std::net::SocketAddr;

use serde::Deserialize;

use super::check::Check;
use super::raw::{RawLog, RawMetrics, RawTraces};

/// `[log]`: how the gateway logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `human` (default) or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `joinery=debug`. Default `info`; `RUST_LOG` wins.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// `[traces]`: OpenTelemetry traces, exported over OTLP/HTTP (protobuf). Off by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracesConfig {
    /// The collector's traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. Default none.
    pub endpoint: Option<String>,
    /// `service.name` of the spans. Default `joinery`.
    pub service_name: String,
}

/// `[explorer]`: the operations explorer, a web page that lists the registered operations and
/// runs them, on an address of its own (none by default: it is for developers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplorerConfig {
    /// Address to serve the explorer on, e.g. `127.0.0.1:4100`. Default none (not served).
    pub listen: Option<SocketAddr>,
}

/// `[metrics]`: Prometheus metrics, served at `/metrics` on an address of their own (none by
/// default: what the gateway counts is for its operators, not its clients).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address to serve `/metrics` on, e.g. `127.0.0.1:9464`. Default none (not served).
    pub listen: Option<SocketAddr>,
}

pub(super) fn log(check: &mut Check, raw: &RawLog) -> LogConfig {
    let level = match &raw.level {
        None => "info".to_string(),
        Some(l) => match tracing_subscriber::EnvFilter::try_new(l.get_ref()) {
            Ok(_) => l.get_ref().clone(),
            Err(e) => {
                check.at(
                    l.span(),
                    format!("`level` is not a log filter ({e}): write e.g. \"info\", \"warn\" or \"info,joinery=debug\""),
                );
                "info".to_string()
            }
        },
    };
    LogConfig {
        format: raw.format.unwrap_or(LogFormat::Human),
        level,
    }
}

pub(super) fn metrics(check: &mut Check, raw: &RawMetrics) -> MetricsConfig {
    MetricsConfig {
        listen: side_listen(check, raw, "127.0.0.1:9464"),
    }
}

pub(super) fn explorer(check: &mut Check, raw: &RawMetrics) -> ExplorerConfig {
    ExplorerConfig {
        listen: side_listen(check, raw, "127.0.0.1:4100"),
    }
}

/// An optional address of its own: `[metrics]` and `[explorer]`.
fn side_listen(check: &mut Check, raw: &RawMetrics, example: &str) -> Option<SocketAddr> {
    raw.listen.as_ref().and_then(|s| {
        let parsed = s.get_ref().parse().ok();
        if parsed.is_none() {
            check.at(
                s.span(),
                format!(
                    "`listen` must be an IP address and port such as \"{example}\", not {:?}",
                    s.get_ref()
                ),
            );
        }
        parsed
    })
}

pub(super) fn traces(check: &mut Check, raw: &RawTraces) -> TracesConfig {
    TracesConfig {
        endpoint: raw.endpoint.as_ref().and_then(|e| {
            let url = reqwest::Url::parse(e.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            if url.is_none() {
                check.at(
                    e.span(),
                    format!(
                        "`endpoint` must be an http:// or https:// URL such as \"http://127.0.0.1:4318/v1/traces\", not {:?}",
                        e.get_ref()
                    ),
                );
            }
            url.map(|_| e.get_ref().clone())
        }),
        service_name: match &raw.service_name {
            Some(name) if name.get_ref().trim().is_empty() => {
                check.at(name.span(), "`service_name` must not be empty".into());
                "joinery".into()
            }
            Some(name) => name.get_ref().clone(),
            None => "joinery".into(),
        },
    }
}
