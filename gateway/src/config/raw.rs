//! The shape of `joinery.toml` as serde reads it, before any value is checked.
//!
//! The struct names appear in serde's messages ("expected struct RawRetry"), so renaming one
//! changes what users read.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::LogFormat;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) operations: RawOperations,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) upstreams: IndexMap<Spanned<String>, RawUpstream>,
    #[serde(default)]
    pub(super) plugins: IndexMap<Spanned<String>, RawPlugin>,
    #[serde(default)]
    pub(super) policy: RawPolicy,
    #[serde(default)]
    pub(super) cache: RawSharedCache,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    #[serde(default)]
    pub(super) explorer: RawMetrics,
    #[serde(default)]
    pub(super) traces: RawTraces,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraces {
    pub(super) endpoint: Option<Spanned<String>>,
    pub(super) service_name: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSharedCache {
    pub(super) redis: Option<Spanned<String>>,
    pub(super) redis_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default)]
    pub(super) plugins: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlugin {
    pub(super) path: Spanned<String>,
    pub(super) max_memory: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) secrets: Vec<Spanned<String>>,
    pub(super) visible_headers: Option<Vec<Spanned<String>>>,
    pub(super) config: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) max_request_bytes: Option<Spanned<i64>>,
    pub(super) shutdown_grace: Option<Spanned<String>>,
    pub(super) max_join_fanout: Option<Spanned<i64>>,
    pub(super) max_connections: Option<Spanned<i64>>,
    pub(super) body_timeout: Option<Spanned<String>>,
    pub(super) idle_timeout: Option<Spanned<String>>,
    pub(super) http2_max_streams: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperations {
    pub(super) dir: Option<Spanned<String>>,
    pub(super) manifest: Option<String>,
    #[serde(default)]
    pub(super) import: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) max_join_fanout: IndexMap<Spanned<String>, Spanned<i64>>,
    #[serde(default)]
    pub(super) budget: RawBudget,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) max_depth: Option<Spanned<i64>>,
    pub(super) max_upstream_requests: Option<Spanned<i64>>,
    pub(super) max_fields: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<LogFormat>,
    pub(super) level: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) url: Option<Spanned<String>>,
    pub(super) plugin: Option<Spanned<String>>,
    pub(super) schema_file: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) forward_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) headers: IndexMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub(super) policies: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) batch: IndexMap<Spanned<String>, Spanned<RawBatch>>,
    pub(super) max_response_bytes: Option<Spanned<String>>,
    pub(super) coalesce: Option<bool>,
    pub(super) retry: Option<RawRetry>,
    pub(super) breaker: Option<RawBreaker>,
    pub(super) cache: Option<RawCache>,
    pub(super) federation: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) list_sizes: IndexMap<Spanned<String>, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) ttl: Spanned<String>,
    #[serde(default)]
    pub(super) field_ttl: IndexMap<Spanned<String>, Spanned<String>>,
    pub(super) max_bytes: Option<Spanned<String>>,
    pub(super) stale_if_error: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) attempts: Spanned<u32>,
    pub(super) backoff: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) failures: Spanned<u32>,
    pub(super) open_for: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBatch {
    pub(super) field: Spanned<String>,
    pub(super) argument: Spanned<String>,
    pub(super) key: Spanned<String>,
}
