//! `joinery.toml`: the model, its defaults, loading and validation.
//!
//! Every problem is reported with `file:line:column`, all of them in one run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostics, Position};

/// The whole configuration of one Joinery project.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as given.
    pub path: PathBuf,
    /// Directory relative paths are resolved against (the config file's directory).
    pub base_dir: PathBuf,
    /// `[server]`
    pub server: ServerConfig,
    /// `[operations]`
    pub operations: OperationsConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[upstreams.<namespace>]`, in file order.
    pub upstreams: IndexMap<String, UpstreamConfig>,
    /// `[plugins.<name>]`, in file order.
    pub plugins: IndexMap<String, PluginConfig>,
    /// `[policy] plugins`: policy plugins whose request hook runs on every request, in order.
    pub policies: Vec<String>,
    /// `[cache]`: what the upstream caches share.
    pub cache: SharedCacheConfig,
    /// `[metrics]`: where Prometheus metrics are served.
    pub metrics: MetricsConfig,
    /// `[explorer]`: where the operations explorer is served.
    pub explorer: ExplorerConfig,
    /// `[traces]`: where OpenTelemetry traces go.
    pub traces: TracesConfig,
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

/// `[cache]`: a Redis server the answer caches of every replica share (a second layer behind
/// each upstream's in-process cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedCacheConfig {
    /// `redis://host:port[/db]` or `redis+unix:///path/to/socket`. Default none.
    pub redis: Option<String>,
    /// Longest a request waits for Redis before going on without it. Default `20ms`.
    pub redis_timeout: Duration,
}

/// `[plugins.<name>]`: one WebAssembly component and the capabilities granted to it.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The plugin's name (the table's key), used in logs, errors and references.
    pub name: String,
    /// The component file, resolved against the config's directory.
    pub path: PathBuf,
    /// Where `path` is written, for errors about the file.
    pub written: Position,
    /// Largest linear memory one instance may grow to. Default `16MiB`.
    pub max_memory: usize,
    /// Longest one call may run (CPU and waiting for outbound HTTP). Default `100ms`.
    pub timeout: Duration,
    /// Hosts (`host` or `host:port`) the plugin may send HTTP requests to. Default none.
    pub allowed_hosts: Vec<String>,
    /// Environment variables the plugin may read as secrets. Default none.
    pub secrets: Vec<String>,
    /// Headers the plugin is shown (lower-case): of the client's request in the request hook,
    /// of the upstream request and answer in the upstream hooks, of the upstream request in a
    /// resolver. `None` (the default): all of them.
    pub visible_headers: Option<Vec<String>>,
    /// The `[plugins.<name>.config]` table, passed to the plugin as JSON. Default `{}`.
    pub config: serde_json::Value,
}

/// `[server]`: where and how the gateway listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:4000`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes. Default 1 MiB.
    pub max_request_bytes: usize,
    /// How long shutdown waits for requests in flight. Default `30s`.
    pub shutdown_grace: Duration,
    /// Most objects (list items) one `_join` may fan out to in one request; more is an error
    /// (`JOIN_FANOUT_EXCEEDED`), never a silent truncation. Default 1000.
    pub max_join_fanout: usize,
    /// Limits that keep slow or idle clients from holding connections.
    pub connections: ConnectionLimits,
}

/// How many connections the server holds and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most open client connections; beyond it, new ones wait in the listen queue. Keep it
    /// below the process's open-file limit. Default 1000.
    pub max_connections: usize,
    /// Longest time to receive a request body once its headers are in (408 beyond). Default `10s`.
    pub body_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed (HTTP/1
    /// keep-alive and HTTP/2 alike). Default `60s`.
    pub idle_timeout: Duration,
    /// Most concurrent streams per HTTP/2 connection. Default 100.
    pub http2_max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1000,
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_max_streams: 100,
        }
    }
}

/// `[operations]`: where persisted operations come from and where the manifest goes.
#[derive(Debug, Clone)]
pub struct OperationsConfig {
    /// Folder of `*.graphql` operation documents. Default `operations`.
    pub dir: PathBuf,
    /// Where `dir` is written (none when it is the default), for errors about the folder.
    pub dir_written: Option<Position>,
    /// Manifest written by `joinery build` and read by `joinery serve`. Default `.joinery/manifest.json`.
    pub manifest: PathBuf,
    /// Client-generated manifests to register as well (Apollo persisted query manifest or
    /// graphql-codegen persisted documents), with where each is written. Default none.
    pub import: Vec<(PathBuf, Position)>,
    /// Per-operation overrides of `server.max_join_fanout`, by operation name, with where each
    /// is written (the build checks that the operation exists). Default none.
    pub max_join_fanout: IndexMap<String, (usize, Position)>,
    /// `[operations.budget]`: the most an operation may cost, checked by `joinery build`.
    pub budget: Budget,
}

/// `[operations.budget]`: limits on what `joinery build` measures of each operation; one above
/// a limit is refused with its position. Every limit is off by default: persisted operations
/// are written and reviewed by the API's owners, so a budget is a choice, not a guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// Deepest field nesting (`_join` counts as a level).
    pub max_depth: Option<Limit>,
    /// Most upstream requests one execution makes.
    pub max_upstream_requests: Option<Limit>,
    /// Most fields resolved in one execution, list items multiplied in.
    pub max_fields: Option<Limit>,
}

/// One budget limit and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The limit.
    pub value: u64,
    /// Where it is written.
    pub position: Position,
}

/// One `[upstreams.<ns>] list_sizes` entry: how many items a list field holds at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSizeHint {
    /// `field` (a root query field) or `Type.field`, as the upstream names them.
    pub name: String,
    /// Most items.
    pub size: u64,
    /// Where the entry is written.
    pub position: Position,
}

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

/// `[upstreams.<namespace>]`: one upstream GraphQL API, over HTTP or in a resolver plugin.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The namespace (the table's key): prefix of the upstream's root fields and types.
    pub namespace: String,
    /// How requests reach it.
    pub transport: Transport,
    /// Where the schema comes from.
    pub schema: SchemaSource,
    /// Per-request timeout. Default `10s`.
    pub timeout: Duration,
    /// Client request headers copied to this upstream's requests (lower-case names).
    pub forward_headers: Vec<String>,
    /// Fixed headers added to every request to this upstream (also used for introspection).
    pub headers: Vec<(String, String)>,
    /// Policy plugins whose upstream hook runs before each request to this upstream, in order.
    pub policies: Vec<String>,
    /// `[upstreams.<ns>.batch]`: root fields answered for many keys by another root field.
    pub batch: Vec<BatchConfig>,
    /// Largest answer read from this upstream; a longer one is `UPSTREAM_BAD_RESPONSE`.
    /// Default `16MiB`.
    pub max_response_bytes: usize,
    /// Whether identical queries in flight at once share one request. Default `true` for URL
    /// upstreams, `false` for resolver plugins.
    pub coalesce: bool,
    /// `[upstreams.<ns>.retry]`: queries retried after a failure that may pass. Default off.
    pub retry: Option<RetryConfig>,
    /// `[upstreams.<ns>.breaker]`: requests refused at once after repeated failures. Default
    /// off.
    pub breaker: Option<BreakerConfig>,
    /// `[upstreams.<ns>.cache]`: answers to queries kept in memory. Default off.
    pub cache: Option<CacheConfig>,
    /// Whether the upstream is an Apollo Federation subgraph: its schema is read from
    /// `_service { sdl }` (or `schema_file`), and its entities can be looked up by key. Default
    /// `false`, but an introspected upstream that answers `_service` is taken as one.
    pub federation: bool,
    /// `list_sizes`: most items of list fields, for the cost `joinery build` measures (they
    /// win over the upstream's `@listSize`). Checked against the schema at build. Default none.
    pub list_sizes: Vec<ListSizeHint>,
}

/// `[upstreams.<ns>.cache]`: answers to queries kept in memory for `ttl` (shorter when the
/// upstream's `Cache-Control` says `max-age`, not at all when it says `no-store`, `no-cache`
/// or `private`), in at most `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an answer is served from memory.
    pub ttl: Duration,
    /// `[upstreams.<ns>.cache.field_ttl]`: a shorter or longer `ttl` for answers that hold a
    /// root field (the upstream's name for it); `0s` keeps them not at all. An answer with
    /// several root fields is kept for the shortest of their times.
    pub field_ttl: Vec<FieldTtl>,
    /// Memory for this upstream's answers (bodies and keys). Default `16MiB`.
    pub max_bytes: usize,
    /// How long past its freshness an answer may still be served when the upstream fails
    /// (no answer, a timeout, HTTP 5xx). Default none.
    pub stale_if_error: Option<Duration>,
}

/// One `[upstreams.<ns>.cache.field_ttl]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTtl {
    /// The root query field, as the upstream names it.
    pub field: String,
    /// How long answers holding it are kept (zero: not kept).
    pub ttl: Duration,
    /// Where it is written.
    pub position: Position,
}

/// `[upstreams.<ns>.retry]`: how a query that failed in a way that may pass (the connection
/// failed, or HTTP 502, 503 or 504) is tried again. Mutations are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Tries after the first, 1 to 5.
    pub attempts: u32,
    /// Wait before the first retry, doubled before each next one (with up to 50% added at
    /// random so that gateways do not retry in step). Default `50ms`.
    pub backoff: Duration,
}

/// `[upstreams.<ns>.breaker]`: after `failures` failed requests in a row the upstream is not
/// asked for `open_for`; then one request probes it: a success closes the breaker, a failure
/// opens it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failed requests in a row that open the breaker, 1 to 1000.
    pub failures: u32,
    /// How long it stays open before a probe. Default `10s`.
    pub open_for: Duration,
}

/// `[upstreams.<ns>.batch.<field>]`: the batch form of a root field that takes one key, so that
/// a join over many items sends one call with all keys instead of one aliased copy per key.
/// Checked against the upstream's schema when operations are planned.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// The root field that takes one key (the table's key), e.g. `getCityByName`.
    pub single: String,
    /// The root field that takes many keys, e.g. `getCitiesByNames`.
    pub field: String,
    /// Its list argument that receives the keys, e.g. `names`.
    pub argument: String,
    /// The field of each result that holds its key, e.g. `name`.
    pub key: String,
    /// Where the table is written.
    pub position: Position,
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A GraphQL endpoint (`url = "..."`), `http://` or `https://`.
    Http(String),
    /// A resolver plugin (`plugin = "..."`), by name.
    Plugin(String),
}

/// Where an upstream's schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// An SDL file (`schema_file = "..."`), resolved against the config's directory, with
    /// where it is written.
    File(PathBuf, Position),
    /// Introspection of the live upstream at build time; the result is saved in the manifest.
    Introspection,
    /// The resolver plugin's `schema` export, called at build time; saved in the manifest.
    Plugin(String),
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has problems, each with its position.
    #[error("{0}")]
    Invalid(Diagnostics),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    operations: RawOperations,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    upstreams: IndexMap<Spanned<String>, RawUpstream>,
    #[serde(default)]
    plugins: IndexMap<Spanned<String>, RawPlugin>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    cache: RawSharedCache,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    explorer: RawMetrics,
    #[serde(default)]
    traces: RawTraces,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTraces {
    endpoint: Option<Spanned<String>>,
    service_name: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSharedCache {
    redis: Option<Spanned<String>>,
    redis_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    plugins: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    path: Spanned<String>,
    max_memory: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    allowed_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    secrets: Vec<Spanned<String>>,
    visible_headers: Option<Vec<Spanned<String>>>,
    config: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    max_request_bytes: Option<Spanned<i64>>,
    shutdown_grace: Option<Spanned<String>>,
    max_join_fanout: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    body_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    http2_max_streams: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOperations {
    dir: Option<Spanned<String>>,
    manifest: Option<String>,
    #[serde(default)]
    import: Vec<Spanned<String>>,
    #[serde(default)]
    max_join_fanout: IndexMap<Spanned<String>, Spanned<i64>>,
    #[serde(default)]
    budget: RawBudget,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_depth: Option<Spanned<i64>>,
    max_upstream_requests: Option<Spanned<i64>>,
    max_fields: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<Spanned<String>>,
    plugin: Option<Spanned<String>>,
    schema_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    forward_headers: Vec<Spanned<String>>,
    #[serde(default)]
    headers: IndexMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    policies: Vec<Spanned<String>>,
    #[serde(default)]
    batch: IndexMap<Spanned<String>, Spanned<RawBatch>>,
    max_response_bytes: Option<Spanned<String>>,
    coalesce: Option<bool>,
    retry: Option<RawRetry>,
    breaker: Option<RawBreaker>,
    cache: Option<RawCache>,
    federation: Option<Spanned<bool>>,
    #[serde(default)]
    list_sizes: IndexMap<Spanned<String>, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    ttl: Spanned<String>,
    #[serde(default)]
    field_ttl: IndexMap<Spanned<String>, Spanned<String>>,
    max_bytes: Option<Spanned<String>>,
    stale_if_error: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: Spanned<u32>,
    backoff: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    failures: Spanned<u32>,
    open_for: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    field: Spanned<String>,
    argument: Spanned<String>,
    key: Spanned<String>,
}

/// Default `max_response_bytes` of an upstream: far above any sane GraphQL answer, far below
/// what would hurt the gateway.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Largest `list_sizes` hint: far above any list a join could fan out to.
const MAX_LIST_SIZE: u64 = 1_000_000_000;

/// Headers that describe one hop or the body, which the gateway sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], for commands that work with plugins only (`joinery plugin call`
    /// and `test`): a plugin project's `joinery.toml` needs no upstreams.
    pub fn load_for_plugins(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_checked(path, &text, &|name| std::env::var(name).ok(), false)
    }

    /// Parses and validates config `text` that was read from `path`; `env` looks up
    /// `${NAME}` references in header values.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::parse_checked(path, text, env, true)
    }

    fn parse_checked(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        needs_upstreams: bool,
    ) -> Result<Self, ConfigError> {
        let mut diags = Diagnostics::default();
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                structure_problems(path, text, e, &mut diags);
                return Err(ConfigError::Invalid(diags));
            }
        };
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut at =
            |span: std::ops::Range<usize>, msg: String| diags.push(path, text, span.start, msg);

        let listen = match &raw.server.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 4000)),
            Some(s) => s.get_ref().parse().unwrap_or_else(|_| {
                at(
                    s.span(),
                    format!(
                        "`listen` must be an IP address and port such as \"127.0.0.1:4000\" or \"0.0.0.0:8080\", not {:?}",
                        s.get_ref()
                    ),
                );
                SocketAddr::from(([127, 0, 0, 1], 4000))
            }),
        };
        // An optional address of its own: `[metrics]` and `[explorer]`.
        let mut side_listen = |raw: &RawMetrics, example: &str| {
            raw.listen.as_ref().and_then(|s| {
                let parsed = s.get_ref().parse().ok();
                if parsed.is_none() {
                    at(
                        s.span(),
                        format!(
                            "`listen` must be an IP address and port such as \"{example}\", not {:?}",
                            s.get_ref()
                        ),
                    );
                }
                parsed
            })
        };
        let metrics = MetricsConfig {
            listen: side_listen(&raw.metrics, "127.0.0.1:9464"),
        };
        let explorer = ExplorerConfig {
            listen: side_listen(&raw.explorer, "127.0.0.1:4100"),
        };
        let traces = TracesConfig {
            endpoint: raw.traces.endpoint.as_ref().and_then(|e| {
                let url = reqwest::Url::parse(e.get_ref())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"));
                if url.is_none() {
                    at(
                        e.span(),
                        format!(
                            "`endpoint` must be an http:// or https:// URL such as \"http://127.0.0.1:4318/v1/traces\", not {:?}",
                            e.get_ref()
                        ),
                    );
                }
                url.map(|_| e.get_ref().clone())
            }),
            service_name: match &raw.traces.service_name {
                Some(name) if name.get_ref().trim().is_empty() => {
                    at(name.span(), "`service_name` must not be empty".into());
                    "joinery".into()
                }
                Some(name) => name.get_ref().clone(),
                None => "joinery".into(),
            },
        };
        let max_request_bytes = match &raw.server.max_request_bytes {
            None => 1 << 20,
            Some(n) if (256..=1 << 30).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                at(
                    n.span(),
                    "`max_request_bytes` must be from 256 to 1073741824 (1 GiB) (default 1048576)"
                        .into(),
                );
                1 << 20
            }
        };
        let shutdown_grace = duration(&raw.server.shutdown_grace, Duration::from_secs(30), &mut at);
        let level = match &raw.log.level {
            None => "info".to_string(),
            Some(l) => match tracing_subscriber::EnvFilter::try_new(l.get_ref()) {
                Ok(_) => l.get_ref().clone(),
                Err(e) => {
                    at(
                        l.span(),
                        format!("`level` is not a log filter ({e}): write e.g. \"info\", \"warn\" or \"info,joinery=debug\""),
                    );
                    "info".to_string()
                }
            },
        };
        let defaults = ConnectionLimits::default();
        let mut count =
            |raw: &Option<Spanned<i64>>, name: &str, default: usize, max: usize| match raw {
                None => default,
                Some(n) if (1..=max as i64).contains(n.get_ref()) => *n.get_ref() as usize,
                Some(n) => {
                    at(
                        n.span(),
                        format!("`{name}` must be from 1 to {max} (default {default})"),
                    );
                    default
                }
            };
        let max_connections = count(
            &raw.server.max_connections,
            "max_connections",
            defaults.max_connections,
            1_000_000,
        );
        let http2_max_streams = count(
            &raw.server.http2_max_streams,
            "http2_max_streams",
            defaults.http2_max_streams as usize,
            10_000,
        ) as u32;
        let connections = ConnectionLimits {
            max_connections,
            body_timeout: duration(&raw.server.body_timeout, defaults.body_timeout, &mut at),
            idle_timeout: duration(&raw.server.idle_timeout, defaults.idle_timeout, &mut at),
            http2_max_streams,
        };
        let max_join_fanout = match &raw.server.max_join_fanout {
            None => 1000,
            Some(n) if (1..=1_000_000).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                at(
                    n.span(),
                    "`max_join_fanout` must be from 1 to 1000000 (default 1000)".into(),
                );
                1000
            }
        };

        let mut plugins = IndexMap::new();
        for (key, p) in raw.plugins {
            let name = key.get_ref().clone();
            if !valid_plugin_name(&name) {
                at(
                    key.span(),
                    format!("invalid plugin name `{name}`: use lower-case letters, digits and `-`, starting with a letter (for example `auth` or `jwt-policy`)"),
                );
            }
            let max_memory = match &p.max_memory {
                None => 16 << 20,
                Some(m) => parse_size(m.get_ref()).filter(|n| *n >= 1 << 20 && *n <= 4 << 30).unwrap_or_else(|| {
                    at(
                        m.span(),
                        format!("`max_memory` must be a size from \"1MiB\" to \"4GiB\" such as \"16MiB\" or \"512KiB\", not {:?}", m.get_ref()),
                    );
                    16 << 20
                }),
            };
            let timeout = duration(&p.timeout, Duration::from_millis(100), &mut at);
            let mut allowed_hosts = Vec::new();
            for h in &p.allowed_hosts {
                let host = h.get_ref().to_ascii_lowercase();
                if host.is_empty() || host.contains(['/', ' ', '@', '?', '#']) {
                    at(
                        h.span(),
                        format!("`allowed_hosts` entries are a host or host:port such as \"api.example.com\" or \"127.0.0.1:9000\", not {:?}", h.get_ref()),
                    );
                } else {
                    allowed_hosts.push(host);
                }
            }
            let secrets = p.secrets.iter().map(|s| s.get_ref().clone()).collect();
            let visible_headers = p.visible_headers.as_ref().map(|names| {
                let mut visible = Vec::new();
                for h in names {
                    let name = h.get_ref().to_ascii_lowercase();
                    match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
                        Ok(_) => visible.push(name),
                        Err(_) => at(
                            h.span(),
                            format!("`{}` is not a valid HTTP header name", h.get_ref()),
                        ),
                    }
                }
                visible
            });
            let config = match p.config {
                None => serde_json::Value::Object(Default::default()),
                Some(t) => serde_json::to_value(t).unwrap_or_default(),
            };
            plugins.insert(
                name.clone(),
                PluginConfig {
                    name,
                    path: base_dir.join(p.path.get_ref()),
                    written: Position::at_offset(path, text, p.path.span().start),
                    max_memory,
                    timeout,
                    allowed_hosts,
                    secrets,
                    visible_headers,
                    config,
                },
            );
        }
        let plugin_refs =
            |list: &[Spanned<String>], at: &mut dyn FnMut(std::ops::Range<usize>, String)| {
                let mut names = Vec::new();
                for r in list {
                    if plugins.contains_key(r.get_ref()) {
                        names.push(r.get_ref().clone());
                    } else {
                        let known: Vec<&str> = plugins.keys().map(String::as_str).collect();
                        at(
                        r.span(),
                        format!(
                            "no plugin named `{}` is configured; add a [plugins.{}] table with its `path`{}",
                            r.get_ref(),
                            r.get_ref(),
                            if known.is_empty() { String::new() } else { format!(", or use one of: {}", known.join(", ")) }
                        ),
                    );
                    }
                }
                names
            };
        let policies = plugin_refs(&raw.policy.plugins, &mut at);
        let cache = SharedCacheConfig {
            redis: raw.cache.redis.as_ref().and_then(|url| {
                let text = url.get_ref();
                let known = ["redis://", "redis+unix://", "unix://"];
                if known.iter().any(|scheme| text.starts_with(scheme)) {
                    Some(text.clone())
                } else {
                    at(
                        url.span(),
                        format!("`redis` must be a redis:// or redis+unix:// URL, not {text:?}"),
                    );
                    None
                }
            }),
            redis_timeout: duration(&raw.cache.redis_timeout, Duration::from_millis(20), &mut at),
        };

        let mut upstreams = IndexMap::new();
        for (key, up) in raw.upstreams {
            let namespace = key.get_ref().clone();
            if !valid_namespace(&namespace) {
                at(
                    key.span(),
                    format!(
                        "invalid namespace `{namespace}`: use lower-case letters and digits, starting with a letter (for example `{}`); `_` is reserved to separate the namespace from names",
                        suggest_namespace(&namespace)
                    ),
                );
            }
            let transport = match (&up.url, &up.plugin) {
                (Some(url), None) => {
                    let text = url.get_ref();
                    let parsed = reqwest::Url::parse(text).ok();
                    if !(text.starts_with("http://") || text.starts_with("https://"))
                        || parsed.is_none()
                    {
                        at(
                            url.span(),
                            format!("`url` must be an absolute http:// or https:// URL such as \"http://127.0.0.1:4001/graphql\", not {text:?}"),
                        );
                    } else if parsed
                        .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
                    {
                        // Credentials in a URL end up in logs and error messages.
                        at(
                            url.span(),
                            "`url` must not hold credentials: send them in a header, e.g. `headers = { authorization = \"Basic ${UPSTREAM_AUTH}\" }`".into(),
                        );
                    }
                    Transport::Http(text.clone())
                }
                (None, Some(plugin)) => {
                    let found = plugin_refs(std::slice::from_ref(plugin), &mut at);
                    if let Some(f) = &up.schema_file {
                        at(
                            f.span(),
                            "a resolver plugin supplies its own schema: remove `schema_file`"
                                .into(),
                        );
                    }
                    Transport::Plugin(found.into_iter().next().unwrap_or_default())
                }
                (Some(_), Some(plugin)) => {
                    at(
                        plugin.span(),
                        "`url` and `plugin` exclude each other: an upstream is either a GraphQL endpoint or a resolver plugin".into(),
                    );
                    Transport::Plugin(plugin.get_ref().clone())
                }
                (None, None) => {
                    at(
                        key.span(),
                        format!("upstream `{namespace}` needs `url` (its GraphQL endpoint, such as \"http://127.0.0.1:4001/graphql\") or `plugin` (the name of a resolver plugin)"),
                    );
                    Transport::Http(String::new())
                }
            };
            let schema = match (&transport, &up.schema_file) {
                (Transport::Plugin(name), _) => SchemaSource::Plugin(name.clone()),
                (_, Some(f)) => SchemaSource::File(
                    base_dir.join(f.get_ref()),
                    Position::at_offset(path, text, f.span().start),
                ),
                (_, None) => SchemaSource::Introspection,
            };
            let timeout = duration(&up.timeout, Duration::from_secs(10), &mut at);
            let max_response_bytes = match &up.max_response_bytes {
                None => DEFAULT_MAX_RESPONSE_BYTES,
                Some(m) => parse_size(m.get_ref())
                    .filter(|n| (1 << 10..=1 << 30).contains(n))
                    .unwrap_or_else(|| {
                        at(
                            m.span(),
                            format!("`max_response_bytes` must be a size from \"1KiB\" to \"1GiB\" such as \"16MiB\", not {:?}", m.get_ref()),
                        );
                        DEFAULT_MAX_RESPONSE_BYTES
                    }),
            };
            let mut forward_headers = Vec::new();
            for h in &up.forward_headers {
                let name = h.get_ref().to_ascii_lowercase();
                match check_header_name(&name) {
                    Ok(()) => forward_headers.push(name),
                    Err(msg) => at(h.span(), msg),
                }
            }
            let mut headers = Vec::new();
            for (name, value) in &up.headers {
                let lower = name.get_ref().to_ascii_lowercase();
                if let Err(msg) = check_header_name(&lower) {
                    at(name.span(), msg);
                    continue;
                }
                match interpolate(value.get_ref(), env) {
                    Ok(v) if reqwest::header::HeaderValue::from_str(&v).is_ok() => {
                        headers.push((lower, v))
                    }
                    Ok(_) => at(
                        value.span(),
                        format!(
                            "header `{lower}` has a value that is not a valid HTTP header value"
                        ),
                    ),
                    Err(msg) => at(value.span(), msg),
                }
            }
            let retry = up.retry.as_ref().map(|r| RetryConfig {
                attempts: within(&r.attempts, "attempts", 1..=5, &mut at),
                backoff: duration(&r.backoff, Duration::from_millis(50), &mut at),
            });
            let breaker = up.breaker.as_ref().map(|b| BreakerConfig {
                failures: within(&b.failures, "failures", 1..=1000, &mut at),
                open_for: duration(&b.open_for, Duration::from_secs(10), &mut at),
            });
            let cache = up.cache.as_ref().map(|c| CacheConfig {
                ttl: duration(&Some(c.ttl.clone()), Duration::from_secs(1), &mut at),
                field_ttl: c
                    .field_ttl
                    .iter()
                    .map(|(field, ttl)| FieldTtl {
                        field: field.get_ref().clone(),
                        ttl: match humantime::parse_duration(ttl.get_ref()) {
                            Ok(d) => d,
                            Err(_) => {
                                at(ttl.span(), format!("expected a duration such as \"10s\", \"5m\" or \"0s\" (not kept), not {:?}", ttl.get_ref()));
                                Duration::ZERO
                            }
                        },
                        position: Position::at_offset(path, text, field.span().start),
                    })
                    .collect(),
                max_bytes: match &c.max_bytes {
                    None => 16 << 20,
                    Some(m) => parse_size(m.get_ref())
                        .filter(|n| (1 << 10..=1 << 34).contains(n))
                        .unwrap_or_else(|| {
                            at(
                                m.span(),
                                format!("`max_bytes` must be a size from \"1KiB\" to \"16GiB\" such as \"64MiB\", not {:?}", m.get_ref()),
                            );
                            16 << 20
                        }),
                },
                stale_if_error: c
                    .stale_if_error
                    .as_ref()
                    .map(|_| duration(&c.stale_if_error, Duration::from_secs(60), &mut at)),
            });
            let mut list_sizes = Vec::new();
            for (name, size) in &up.list_sizes {
                if !(1..=MAX_LIST_SIZE as i64).contains(size.get_ref()) {
                    at(
                        size.span(),
                        format!(
                            "the list size of `{}` must be from 1 to {MAX_LIST_SIZE}",
                            name.get_ref()
                        ),
                    );
                    continue;
                }
                list_sizes.push(ListSizeHint {
                    name: name.get_ref().clone(),
                    size: *size.get_ref() as u64,
                    position: Position::at_offset(path, text, name.span().start),
                });
            }
            let policies = plugin_refs(&up.policies, &mut at);
            let batch = up
                .batch
                .iter()
                .map(|(single, b)| {
                    let b = b.get_ref();
                    BatchConfig {
                        single: single.get_ref().clone(),
                        field: b.field.get_ref().clone(),
                        argument: b.argument.get_ref().clone(),
                        key: b.key.get_ref().clone(),
                        position: Position::at_offset(path, text, single.span().start),
                    }
                })
                .collect();
            // A plugin's shared answer costs a JSON round trip per request (measured in
            // `--bench resolvers`), so plugins share only when asked to.
            let coalesce = up
                .coalesce
                .unwrap_or(matches!(transport, Transport::Http(_)));
            let federation = match &up.federation {
                Some(f) if *f.get_ref() && matches!(transport, Transport::Plugin(_)) => {
                    at(
                        f.span(),
                        "`federation` is for GraphQL endpoints (`url`); a resolver plugin supplies a plain schema".into(),
                    );
                    false
                }
                Some(f) => *f.get_ref(),
                None => false,
            };
            upstreams.insert(
                namespace.clone(),
                UpstreamConfig {
                    namespace,
                    transport,
                    schema,
                    timeout,
                    forward_headers,
                    headers,
                    policies,
                    batch,
                    max_response_bytes,
                    coalesce,
                    retry,
                    breaker,
                    cache,
                    federation,
                    list_sizes,
                },
            );
        }
        let mut fanout_overrides = IndexMap::new();
        for (name, limit) in &raw.operations.max_join_fanout {
            if *limit.get_ref() < 1 {
                at(
                    limit.span(),
                    format!(
                        "the join fan-out limit of `{}` must be at least 1",
                        name.get_ref()
                    ),
                );
                continue;
            }
            fanout_overrides.insert(
                name.get_ref().clone(),
                (
                    *limit.get_ref() as usize,
                    Position::at_offset(path, text, name.span().start),
                ),
            );
        }
        let mut limit = |raw: &Option<Spanned<i64>>, name: &str| {
            let n = raw.as_ref()?;
            if *n.get_ref() < 1 {
                at(n.span(), format!("`{name}` must be at least 1"));
                return None;
            }
            Some(Limit {
                value: *n.get_ref() as u64,
                position: Position::at_offset(path, text, n.span().start),
            })
        };
        let budget = Budget {
            max_depth: limit(&raw.operations.budget.max_depth, "max_depth"),
            max_upstream_requests: limit(
                &raw.operations.budget.max_upstream_requests,
                "max_upstream_requests",
            ),
            max_fields: limit(&raw.operations.budget.max_fields, "max_fields"),
        };
        if needs_upstreams && upstreams.is_empty() {
            diags.push(
                path,
                text,
                0,
                "no upstreams are configured: add at least one table such as\n  [upstreams.countries]\n  url = \"http://127.0.0.1:4001/graphql\"",
            );
        }
        diags.into_result().map_err(ConfigError::Invalid)?;

        let operations = OperationsConfig {
            dir: base_dir.join(
                raw.operations
                    .dir
                    .as_ref()
                    .map_or("operations", |d| d.get_ref()),
            ),
            dir_written: raw
                .operations
                .dir
                .as_ref()
                .map(|d| Position::at_offset(path, text, d.span().start)),
            manifest: base_dir.join(
                raw.operations
                    .manifest
                    .as_deref()
                    .unwrap_or(".joinery/manifest.json"),
            ),
            import: raw
                .operations
                .import
                .iter()
                .map(|p| {
                    (
                        base_dir.join(p.get_ref()),
                        Position::at_offset(path, text, p.span().start),
                    )
                })
                .collect(),
            max_join_fanout: fanout_overrides,
            budget,
        };
        Ok(Config {
            path: path.to_path_buf(),
            base_dir,
            server: ServerConfig {
                listen,
                max_request_bytes,
                shutdown_grace,
                max_join_fanout,
                connections,
            },
            operations,
            log: LogConfig {
                format: raw.log.format.unwrap_or(LogFormat::Human),
                level,
            },
            upstreams,
            plugins,
            policies,
            cache,
            metrics,
            explorer,
            traces,
        })
    }
}

impl Config {
    /// Whether policy plugins may fill `@internal` variables that no `@export` fills.
    pub fn policies_fill(&self) -> bool {
        !self.policies.is_empty()
    }
}

fn duration(
    raw: &Option<Spanned<String>>,
    default: Duration,
    at: &mut impl FnMut(std::ops::Range<usize>, String),
) -> Duration {
    let Some(raw) = raw else { return default };
    match humantime::parse_duration(raw.get_ref()) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            at(
                raw.span(),
                format!(
                    "expected a positive duration such as \"500ms\", \"10s\" or \"1m\", not {:?}",
                    raw.get_ref()
                ),
            );
            default
        }
    }
}

/// A count that must lie in `range`, reported under `key` when it does not.
fn within(
    raw: &Spanned<u32>,
    key: &str,
    range: std::ops::RangeInclusive<u32>,
    at: &mut impl FnMut(std::ops::Range<usize>, String),
) -> u32 {
    let value = *raw.get_ref();
    if !range.contains(&value) {
        at(
            raw.span(),
            format!(
                "`{key}` must be from {} to {}, not {value}",
                range.start(),
                range.end()
            ),
        );
    }
    value
}

/// Plugin names: lower-case letters, digits and `-`, starting with a letter.
pub(crate) fn valid_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `"16MiB"`, `"512KiB"`, `"1GiB"` or a plain number of bytes.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Namespaces are lower-case letters and digits so that `<namespace>_<name>` splits unambiguously.
pub fn valid_namespace(ns: &str) -> bool {
    let mut chars = ns.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn suggest_namespace(ns: &str) -> String {
    let s: String = ns
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .skip_while(|c| c.is_ascii_digit())
        .collect();
    if s.is_empty() {
        "api".into()
    } else {
        s
    }
}

fn check_header_name(name: &str) -> Result<(), String> {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("`{name}` is not a valid HTTP header name"));
    }
    if reserved_header(name) {
        return Err(format!(
            "header `{name}` is set by the gateway itself and cannot be configured"
        ));
    }
    Ok(())
}

/// Reports `first` and every further syntax, type or unknown-key problem: the lines of each
/// problem are blanked out (positions stay put) and the file is read again. Stops at a problem
/// without a line of its own (a missing key, which blanking may itself have caused) or in a
/// table header, and after 50 problems. Value checks run once the structure is right.
fn structure_problems(path: &Path, text: &str, first: toml::de::Error, diags: &mut Diagnostics) {
    let mut blanked = text.as_bytes().to_vec();
    let mut error = first;
    let mut last_start = None;
    for _ in 0..50 {
        let span = error.span();
        let at = span.as_ref().map_or(0, |s| s.start);
        let message = match error.message().trim() {
            // The parser says nothing of some characters it refuses (control characters).
            "" => unexpected_character(text, at),
            m => m.to_string(),
        };
        diags.push(path, text, at, message);
        let Some(span) = span else { break };
        if last_start == Some(span.start) {
            break;
        }
        last_start = Some(span.start);
        let start = blanked[..span.start]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = blanked[span.end.min(blanked.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(blanked.len(), |i| span.end + i);
        if blanked[start..end]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            == Some(&b'[')
        {
            break;
        }
        // Bytes become spaces (still valid UTF-8), newlines stay: every position keeps its place.
        for b in &mut blanked[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        let again = String::from_utf8(blanked.clone()).expect("ASCII spaces keep UTF-8 valid");
        match toml::from_str::<RawConfig>(&again) {
            Ok(_) => break,
            Err(e) if e.message().starts_with("missing field") => break,
            Err(e) => error = e,
        }
    }
}

/// What is wrong at byte `at` of `text` when the TOML parser gives no message.
fn unexpected_character(text: &str, at: usize) -> String {
    match text.get(at..).and_then(|rest| rest.chars().next()) {
        Some(c) if c.is_control() => format!(
            "the control character U+{:04X} is not allowed in TOML (tabs and line breaks are)",
            u32::from(c)
        ),
        Some(c) => format!("unexpected character {c:?}"),
        None => "unexpected end of the file".to_string(),
    }
}

/// Whether the gateway sets header `name` (lower-case) itself: neither the config nor a plugin
/// may set it on an upstream request (a forged `content-length` or `host` would change what
/// the upstream receives).
pub(crate) fn reserved_header(name: &str) -> bool {
    RESERVED_HEADERS.contains(&name)
}

/// Replaces `${NAME}` with the environment variable `NAME`, so secrets stay out of the file.
fn interpolate(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unclosed `${` in header value: write `${NAME}`".to_string())?;
        let name = &after[..end];
        out.push_str(&env(name).ok_or_else(|| {
            format!("environment variable `{name}` named in this header value is not set")
        })?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("joinery.toml"), text, &|n| {
            (n == "TOKEN").then(|| "s3cret".to_string())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_apply() {
        let c = parse("[upstreams.countries]\nurl = \"http://127.0.0.1:4001/graphql\"\n").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:4000");
        assert_eq!(c.server.max_request_bytes, 1 << 20);
        let up = &c.upstreams["countries"];
        assert_eq!(up.timeout, Duration::from_secs(10));
        assert_eq!(up.schema, SchemaSource::Introspection);
        assert_eq!(c.operations.dir, Path::new("operations"));
    }

    /// Found by fuzzing: the TOML parser refuses control characters without a message.
    #[test]
    fn control_characters_are_named() {
        let err = parse("# a \u{1} b\n[upstreams.a]\nurl = \"http://x/graphql\"\n").unwrap_err();
        assert_eq!(
            err,
            "joinery.toml:1:5: the control character U+0001 is not allowed in TOML (tabs and line breaks are)"
        );
    }

    #[test]
    fn visible_headers_are_header_names() {
        let base = "[upstreams.a]\nurl = \"http://x/graphql\"\n[plugins.p]\npath = \"p.wasm\"\n";
        let ok = parse(base).unwrap();
        assert_eq!(ok.plugins["p"].visible_headers, None, "all by default");
        let ok = parse(&format!("{base}visible_headers = [\"Authorization\"]\n")).unwrap();
        assert_eq!(
            ok.plugins["p"].visible_headers,
            Some(vec!["authorization".to_string()])
        );
        let err = parse(&format!("{base}visible_headers = [\"x ok\"]\n")).unwrap_err();
        assert_eq!(
            err,
            "joinery.toml:5:20: `x ok` is not a valid HTTP header name"
        );
    }

    #[test]
    fn resolver_plugin_upstreams() {
        let ok =
            parse("[plugins.shop]\npath = \"shop.wasm\"\n[upstreams.shop]\nplugin = \"shop\"\n")
                .unwrap();
        assert_eq!(
            ok.upstreams["shop"].transport,
            Transport::Plugin("shop".into())
        );
        assert_eq!(
            ok.upstreams["shop"].schema,
            SchemaSource::Plugin("shop".into())
        );

        let err = parse(
            "[plugins.shop]\npath = \"shop.wasm\"\n[upstreams.a]\nurl = \"http://x/graphql\"\nplugin = \"shop\"\n[upstreams.b]\ntimeout = \"1s\"\n[upstreams.c]\nplugin = \"shop\"\nschema_file = \"c.graphql\"\n[upstreams.d]\nplugin = \"shopp\"\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(
            lines[0].starts_with("joinery.toml:5:10: `url` and `plugin` exclude each other"),
            "{err}"
        );
        assert!(lines[1].starts_with("joinery.toml:6:1"), "{err}");
        assert!(
            lines[1].contains("needs `url`") && lines[1].contains("or `plugin`"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("joinery.toml:10:15: a resolver plugin supplies its own schema"),
            "{err}"
        );
        assert!(
            lines[3].starts_with("joinery.toml:12:10: no plugin named `shopp`"),
            "{err}"
        );
        assert!(lines[3].contains("use one of: shop"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_position_and_alternatives() {
        let err = parse("[upstreams.countries]\nurl = \"http://x/graphql\"\ntimeot = \"1s\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("joinery.toml:3:1: unknown field `timeot`, expected one of"),
            "{err}"
        );
        assert!(err.contains("`timeout`"), "{err}");
    }

    #[test]
    fn every_unknown_key_and_type_error_is_reported_in_one_run() {
        let err = parse(
            "[server]\nlisten = 4000\nmax_conections = 5\n[upstreams.a]\nurl = \"http://x/graphql\"\ntimeot = \"1s\"\nforward_headers = \"authorization\"\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(
            lines[0].starts_with("joinery.toml:2:10: invalid type"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("joinery.toml:3:1: unknown field `max_conections`"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("joinery.toml:6:1: unknown field `timeot`"),
            "{err}"
        );
        assert!(
            lines[3].starts_with("joinery.toml:7:19: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_all_reported() {
        let err = parse(
            "[server]\nlisten = \"localhost\"\n[upstreams.my_api]\nurl = \"ftp://x\"\ntimeout = \"soon\"\nforward_headers = [\"Host\"]\nheaders = { \"x-key\" = \"${MISSING}\", \"x-ok\" = \"${TOKEN}\" }\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("joinery.toml:2:10: `listen` must be"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("joinery.toml:3:12: invalid namespace `my_api`"),
            "{err}"
        );
        assert!(lines[1].contains("`myapi`"), "{err}");
        assert!(
            lines[2].starts_with("joinery.toml:4:7: `url` must be"),
            "{err}"
        );
        assert!(
            lines[3].starts_with("joinery.toml:5:11: expected a positive duration"),
            "{err}"
        );
        assert!(
            lines[4].starts_with("joinery.toml:6:20: header `host` is set by the gateway"),
            "{err}"
        );
        assert!(
            lines[5].starts_with("joinery.toml:7:23: environment variable `MISSING`"),
            "{err}"
        );
        assert_eq!(lines.len(), 6, "{err}");
    }

    #[test]
    fn budgets_and_list_sizes_below_one_are_refused_where_written() {
        let err = parse("[operations.budget]\nmax_depth = 0\nmax_fields = 10\n[upstreams.a]\nurl = \"http://127.0.0.1:1/graphql\"\nlist_sizes = { items = 0 }\n")
            .unwrap_err();
        assert_eq!(
            err,
            "joinery.toml:6:24: the list size of `items` must be from 1 to 1000000000\njoinery.toml:2:13: `max_depth` must be at least 1"
        );
        let config = parse("[operations.budget]\nmax_fields = 10\n[upstreams.a]\nurl = \"http://127.0.0.1:1/graphql\"\nlist_sizes = { items = 7 }\n").unwrap();
        assert_eq!(config.operations.budget.max_fields.unwrap().value, 10);
        assert_eq!(config.operations.budget.max_depth, None);
        assert_eq!(config.upstreams["a"].list_sizes[0].size, 7);
    }

    #[test]
    fn absurd_limits_and_url_credentials_are_refused() {
        let err = parse("[server]\nmax_request_bytes = 9223372036854775807\nmax_join_fanout = 99999999\n[upstreams.a]\nurl = \"https://user:secret@api.example.com/graphql\"\n")
            .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("joinery.toml:2:21: `max_request_bytes` must be from 256"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("joinery.toml:3:19: `max_join_fanout` must be from 1"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("joinery.toml:5:7: `url` must not hold credentials"),
            "{err}"
        );
        assert!(
            !err.contains("secret"),
            "the error does not repeat the password: {err}"
        );
    }

    #[test]
    fn an_invalid_log_level_is_a_config_error() {
        let err = parse(
            "[log]\nlevel = \"info,joinery=loud\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("joinery.toml:2:9: `level` is not a log filter"),
            "{err}"
        );
        let ok = parse(
            "[log]\nlevel = \"warn,joinery=debug\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n",
        )
        .unwrap();
        assert_eq!(ok.log.level, "warn,joinery=debug");
    }

    #[test]
    fn retry_and_breaker_tables_are_checked() {
        let config = |table: &str| {
            parse(&format!(
                "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n{table}\n"
            ))
        };
        let ok = config("[upstreams.a.retry]\nattempts = 2\n[upstreams.a.breaker]\nfailures = 5\nopen_for = \"2s\"").unwrap();
        let a = &ok.upstreams["a"];
        assert_eq!(a.retry.unwrap().attempts, 2);
        assert_eq!(a.retry.unwrap().backoff, Duration::from_millis(50));
        assert_eq!(a.breaker.unwrap().failures, 5);
        assert_eq!(a.breaker.unwrap().open_for, Duration::from_secs(2));
        let none = config("").unwrap();
        assert!(none.upstreams["a"].retry.is_none() && none.upstreams["a"].breaker.is_none());
        let err = config("[upstreams.a.retry]\nattempts = 9").unwrap_err();
        assert!(
            err.starts_with("joinery.toml:4:12: `attempts` must be from 1 to 5"),
            "{err}"
        );
        let err = config("[upstreams.a.breaker]\nfailures = 0\nopen_for = \"soon\"").unwrap_err();
        assert!(
            err.contains("joinery.toml:4:12: `failures` must be from 1 to 1000"),
            "{err}"
        );
        assert!(
            err.contains("joinery.toml:5:12: expected a positive duration"),
            "{err}"
        );
        let err = config("[upstreams.a.retry]\nattempts = 1\ntimes = 3").unwrap_err();
        assert!(err.starts_with("joinery.toml:5:1:"), "{err}");
    }

    #[test]
    fn shared_cache_is_a_redis_url() {
        let base = "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n[cache]\n";
        let ok = parse(&format!("{base}redis = \"redis+unix:///tmp/r.sock\"\n")).unwrap();
        assert_eq!(ok.cache.redis.as_deref(), Some("redis+unix:///tmp/r.sock"));
        assert_eq!(ok.cache.redis_timeout, Duration::from_millis(20));
        let err = parse(&format!(
            "{base}redis = \"http://x\"\nredis_timeout = \"-1\"\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("joinery.toml:4:9: `redis` must be a redis://"),
            "{err}"
        );
        assert!(
            err.contains("joinery.toml:5:17: expected a positive duration"),
            "{err}"
        );
    }

    #[test]
    fn cache_tables_are_checked() {
        let config = |table: &str| {
            parse(&format!(
                "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n[upstreams.a.cache]\n{table}\n"
            ))
        };
        let ok = config("ttl = \"30s\"").unwrap();
        let cache = ok.upstreams["a"].cache.clone().unwrap();
        assert_eq!(cache.ttl, Duration::from_secs(30));
        assert_eq!(cache.max_bytes, 16 << 20);
        assert_eq!(cache.stale_if_error, None);
        let ok = config("ttl = \"30s\"\nstale_if_error = \"5m\"").unwrap();
        let stale = ok.upstreams["a"].cache.clone().unwrap().stale_if_error;
        assert_eq!(stale, Some(Duration::from_secs(300)));
        let err = config("ttl = \"0s\"\nmax_bytes = \"12\"").unwrap_err();
        assert!(
            err.contains("joinery.toml:4:7: expected a positive duration"),
            "{err}"
        );
        assert!(
            err.contains("joinery.toml:5:13: `max_bytes` must be a size"),
            "{err}"
        );
        let err = config("max_bytes = \"1MiB\"").unwrap_err();
        assert!(err.contains("ttl"), "{err}");
    }

    #[test]
    fn coalescing_is_on_unless_turned_off() {
        let config = |line: &str| {
            parse(&format!(
                "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n{line}\n"
            ))
        };
        assert!(config("").unwrap().upstreams["a"].coalesce);
        assert!(!config("coalesce = false").unwrap().upstreams["a"].coalesce);
        let err = config("coalesce = \"no\"").unwrap_err();
        assert!(err.starts_with("joinery.toml:3:12:"), "{err}");
    }

    #[test]
    fn federation_is_for_url_upstreams() {
        let ok =
            parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\nfederation = true\n").unwrap();
        assert!(ok.upstreams["a"].federation);
        let plain = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
        assert!(!plain.upstreams["a"].federation);
        let err = parse(
            "[plugins.shop]\npath = \"shop.wasm\"\n[upstreams.shop]\nplugin = \"shop\"\nfederation = true\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("joinery.toml:5:14: `federation` is for GraphQL endpoints"),
            "{err}"
        );
    }

    #[test]
    fn max_response_bytes_is_a_bounded_size() {
        let config = |value: &str| {
            parse(&format!(
                "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\nmax_response_bytes = {value}\n"
            ))
        };
        assert_eq!(
            config("\"2MiB\"").unwrap().upstreams["a"].max_response_bytes,
            2 << 20
        );
        let defaults = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
        assert_eq!(defaults.upstreams["a"].max_response_bytes, 16 << 20);
        for bad in ["\"2GiB\"", "\"12\"", "\"lots\""] {
            let err = config(bad).unwrap_err();
            assert!(
                err.starts_with("joinery.toml:3:22: `max_response_bytes` must be a size"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn secrets_are_interpolated_from_the_environment() {
        let c = parse("[upstreams.a]\nurl = \"https://api.example.com/graphql\"\nheaders = { Authorization = \"Bearer ${TOKEN}\" }\n").unwrap();
        assert_eq!(
            c.upstreams["a"].headers,
            vec![("authorization".to_string(), "Bearer s3cret".to_string())]
        );
    }

    #[test]
    fn metrics_are_served_only_where_the_config_says() {
        let none = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
        assert_eq!(none.metrics.listen, None);
        let set = parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
        assert_eq!(set.metrics.listen, Some(([127, 0, 0, 1], 9464).into()));
        let err =
            parse("[metrics]\nlisten = \"9464\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n")
                .unwrap_err();
        assert!(
            err.starts_with("joinery.toml:2:10: `listen` must be an IP address and port such as \"127.0.0.1:9464\", not \"9464\""),
            "{err}"
        );
    }

    #[test]
    fn a_config_without_upstreams_is_refused() {
        let err = parse("").unwrap_err();
        assert!(
            err.starts_with("joinery.toml:1:1: no upstreams are configured"),
            "{err}"
        );
    }
}
