//! `[upstreams.<namespace>]`: the upstream APIs, how each is reached and how its answers are
//! retried, cached and costed.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use toml::Spanned;

use super::check::{check_header_name, parse_size, Check};
use super::plugins::{self, PluginConfig};
use super::raw::{RawCache, RawUpstream};
use crate::diagnostic::Position;

/// Default `max_response_bytes` of an upstream: far above any sane GraphQL answer, far below
/// what would hurt the gateway.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Largest `list_sizes` hint: far above any list a join could fan out to.
const MAX_LIST_SIZE: u64 = 1_000_000_000;

/// `[upstreams.<namespace>]`: one upstream GraphQL API, over HTTP or in a resolver plugin.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The namespace (the table's key): prefix of the upstream's root fields and types.
    pub(crate) namespace: String,
    /// How requests reach it.
    pub transport: Transport,
    /// Where the schema comes from.
    pub(crate) schema: SchemaSource,
    /// Per-request timeout. Default `10s`.
    pub timeout: Duration,
    /// Client request headers copied to this upstream's requests (lower-case names).
    pub forward_headers: Vec<String>,
    /// Fixed headers added to every request to this upstream (also used for introspection).
    pub(crate) headers: Vec<(String, String)>,
    /// Policy plugins whose upstream hook runs before each request to this upstream, in order.
    pub policies: Vec<String>,
    /// `[upstreams.<ns>.batch]`: root fields answered for many keys by another root field.
    pub(crate) batch: Vec<BatchConfig>,
    /// Largest answer read from this upstream; a longer one is `UPSTREAM_BAD_RESPONSE`.
    /// Default `16MiB`.
    pub max_response_bytes: usize,
    /// Whether identical queries in flight at once share one request. Default `true` for URL
    /// upstreams, `false` for resolver plugins.
    pub(crate) coalesce: bool,
    /// `[upstreams.<ns>.retry]`: queries retried after a failure that may pass. Default off.
    pub(crate) retry: Option<RetryConfig>,
    /// `[upstreams.<ns>.breaker]`: requests refused at once after repeated failures. Default
    /// off.
    pub(crate) breaker: Option<BreakerConfig>,
    /// `[upstreams.<ns>.cache]`: answers to queries kept in memory. Default off.
    pub(crate) cache: Option<CacheConfig>,
    /// Whether the upstream is an Apollo Federation subgraph: its schema is read from
    /// `_service { sdl }` (or `schema_file`), and its entities can be looked up by key. Default
    /// `false`, but an introspected upstream that answers `_service` is taken as one.
    pub(crate) federation: bool,
    /// `list_sizes`: most items of list fields, for the cost `joinery build` measures (they
    /// win over the upstream's `@listSize`). Checked against the schema at build. Default none.
    pub list_sizes: Vec<ListSizeHint>,
}

/// `[upstreams.<ns>.cache]`: answers to queries kept in memory for `ttl` (shorter when the
/// upstream's `Cache-Control` says `max-age`, not at all when it says `no-store`, `no-cache`
/// or `private`), in at most `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheConfig {
    /// How long an answer is served from memory.
    pub(crate) ttl: Duration,
    /// `[upstreams.<ns>.cache.field_ttl]`: a shorter or longer `ttl` for answers that hold a
    /// root field (the upstream's name for it); `0s` keeps them not at all. An answer with
    /// several root fields is kept for the shortest of their times.
    pub(crate) field_ttl: Vec<FieldTtl>,
    /// Memory for this upstream's answers (bodies and keys). Default `16MiB`.
    pub(crate) max_bytes: usize,
    /// How long past its freshness an answer may still be served when the upstream fails
    /// (no answer, a timeout, HTTP 5xx). Default none.
    pub(crate) stale_if_error: Option<Duration>,
}

/// One `[upstreams.<ns>.cache.field_ttl]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldTtl {
    /// The root query field, as the upstream names it.
    pub(crate) field: String,
    /// How long answers holding it are kept (zero: not kept).
    pub(crate) ttl: Duration,
    /// Where it is written.
    pub(crate) position: Position,
}

/// `[upstreams.<ns>.retry]`: how a query that failed in a way that may pass (the connection
/// failed, or HTTP 502, 503 or 504) is tried again. Mutations are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryConfig {
    /// Tries after the first, 1 to 5.
    pub(crate) attempts: u32,
    /// Wait before the first retry, doubled before each next one (with up to 50% added at
    /// random so that gateways do not retry in step). Default `50ms`.
    pub(crate) backoff: Duration,
}

/// `[upstreams.<ns>.breaker]`: after `failures` failed requests in a row the upstream is not
/// asked for `open_for`; then one request probes it: a success closes the breaker, a failure
/// opens it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BreakerConfig {
    /// Failed requests in a row that open the breaker, 1 to 1000.
    pub(crate) failures: u32,
    /// How long it stays open before a probe. Default `10s`.
    pub(crate) open_for: Duration,
}

/// `[upstreams.<ns>.batch.<field>]`: the batch form of a root field that takes one key, so that
/// a join over many items sends one call with all keys instead of one aliased copy per key.
/// Checked against the upstream's schema when operations are planned.
#[derive(Debug, Clone)]
pub(crate) struct BatchConfig {
    /// The root field that takes one key (the table's key), e.g. `getCityByName`.
    pub(crate) single: String,
    /// The root field that takes many keys, e.g. `getCitiesByNames`.
    pub(crate) field: String,
    /// Its list argument that receives the keys, e.g. `names`.
    pub(crate) argument: String,
    /// The field of each result that holds its key, e.g. `name`.
    pub(crate) key: String,
    /// Where the table is written.
    pub(crate) position: Position,
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
pub(crate) enum SchemaSource {
    /// An SDL file (`schema_file = "..."`), resolved against the config's directory, with
    /// where it is written.
    File(PathBuf, Position),
    /// Introspection of the live upstream at build time; the result is saved in the manifest.
    Introspection,
    /// The resolver plugin's `schema` export, called at build time; saved in the manifest.
    Plugin(String),
}

/// One `[upstreams.<ns>] list_sizes` entry: how many items a list field holds at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSizeHint {
    /// `field` (a root query field) or `Type.field`, as the upstream names them.
    pub name: String,
    /// Most items.
    pub size: u64,
    /// Where the entry is written.
    pub(crate) position: Position,
}

pub(super) fn check(
    check: &mut Check,
    raw: IndexMap<Spanned<String>, RawUpstream>,
    plugins: &IndexMap<String, PluginConfig>,
) -> IndexMap<String, UpstreamConfig> {
    let mut upstreams = IndexMap::new();
    for (key, up) in raw {
        let upstream = upstream(check, &key, &up, plugins);
        upstreams.insert(upstream.namespace.clone(), upstream);
    }
    upstreams
}

fn upstream(
    check: &mut Check,
    key: &Spanned<String>,
    up: &RawUpstream,
    plugins: &IndexMap<String, PluginConfig>,
) -> UpstreamConfig {
    let namespace = key.get_ref().clone();
    if !valid_namespace(&namespace) {
        check.at(
            key.span(),
            format!(
                "invalid namespace `{namespace}`: use lower-case letters and digits, starting with a letter (for example `{}`); `_` is reserved to separate the namespace from names",
                suggest_namespace(&namespace)
            ),
        );
    }
    let transport = transport(check, key, up, plugins);
    let schema = match (&transport, &up.schema_file) {
        (Transport::Plugin(name), _) => SchemaSource::Plugin(name.clone()),
        (_, Some(f)) => SchemaSource::File(
            check.base_dir.join(f.get_ref()),
            check.position(f.span().start),
        ),
        (_, None) => SchemaSource::Introspection,
    };
    let timeout = check.duration(&up.timeout, Duration::from_secs(10));
    let max_response_bytes = match &up.max_response_bytes {
        None => DEFAULT_MAX_RESPONSE_BYTES,
        Some(m) => parse_size(m.get_ref())
            .filter(|n| (1 << 10..=1 << 30).contains(n))
            .unwrap_or_else(|| {
                check.at(
                    m.span(),
                    format!("`max_response_bytes` must be a size from \"1KiB\" to \"1GiB\" such as \"16MiB\", not {:?}", m.get_ref()),
                );
                DEFAULT_MAX_RESPONSE_BYTES
            }),
    };
    let (forward_headers, headers) = headers(check, up);
    let retry = up.retry.as_ref().map(|r| RetryConfig {
        attempts: check.within(&r.attempts, "attempts", 1..=5),
        backoff: check.duration(&r.backoff, Duration::from_millis(50)),
    });
    let breaker = up.breaker.as_ref().map(|b| BreakerConfig {
        failures: check.within(&b.failures, "failures", 1..=1000),
        open_for: check.duration(&b.open_for, Duration::from_secs(10)),
    });
    let cache = up.cache.as_ref().map(|c| cache(check, c));
    let list_sizes = list_sizes(check, up);
    let policies = plugins::refs(check, plugins, &up.policies);
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
                position: check.position(single.span().start),
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
            check.at(
                f.span(),
                "`federation` is for GraphQL endpoints (`url`); a resolver plugin supplies a plain schema".into(),
            );
            false
        }
        Some(f) => *f.get_ref(),
        None => false,
    };
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
    }
}

/// `url` or `plugin`, exactly one of them.
fn transport(
    check: &mut Check,
    key: &Spanned<String>,
    up: &RawUpstream,
    plugins: &IndexMap<String, PluginConfig>,
) -> Transport {
    match (&up.url, &up.plugin) {
        (Some(url), None) => {
            let text = url.get_ref();
            let parsed = reqwest::Url::parse(text).ok();
            if !(text.starts_with("http://") || text.starts_with("https://")) || parsed.is_none() {
                check.at(
                    url.span(),
                    format!("`url` must be an absolute http:// or https:// URL such as \"http://127.0.0.1:4001/graphql\", not {text:?}"),
                );
            } else if parsed.is_some_and(|u| !u.username().is_empty() || u.password().is_some()) {
                // Credentials in a URL end up in logs and error messages.
                check.at(
                    url.span(),
                    "`url` must not hold credentials: send them in a header, e.g. `headers = { authorization = \"Basic ${UPSTREAM_AUTH}\" }`".into(),
                );
            }
            Transport::Http(text.clone())
        }
        (None, Some(plugin)) => {
            let found = plugins::refs(check, plugins, std::slice::from_ref(plugin));
            if let Some(f) = &up.schema_file {
                check.at(
                    f.span(),
                    "a resolver plugin supplies its own schema: remove `schema_file`".into(),
                );
            }
            Transport::Plugin(found.into_iter().next().unwrap_or_default())
        }
        (Some(_), Some(plugin)) => {
            check.at(
                plugin.span(),
                "`url` and `plugin` exclude each other: an upstream is either a GraphQL endpoint or a resolver plugin".into(),
            );
            Transport::Plugin(plugin.get_ref().clone())
        }
        (None, None) => {
            let namespace = key.get_ref();
            check.at(
                key.span(),
                format!("upstream `{namespace}` needs `url` (its GraphQL endpoint, such as \"http://127.0.0.1:4001/graphql\") or `plugin` (the name of a resolver plugin)"),
            );
            Transport::Http(String::new())
        }
    }
}

/// `forward_headers`, then `headers` with their `${NAME}` references filled in.
fn headers(check: &mut Check, up: &RawUpstream) -> (Vec<String>, Vec<(String, String)>) {
    let mut forward_headers = Vec::new();
    for h in &up.forward_headers {
        let name = h.get_ref().to_ascii_lowercase();
        match check_header_name(&name) {
            Ok(()) => forward_headers.push(name),
            Err(msg) => check.at(h.span(), msg),
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &up.headers {
        let lower = name.get_ref().to_ascii_lowercase();
        if let Err(msg) = check_header_name(&lower) {
            check.at(name.span(), msg);
            continue;
        }
        match check.interpolate(value.get_ref()) {
            Ok(v) if reqwest::header::HeaderValue::from_str(&v).is_ok() => headers.push((lower, v)),
            Ok(_) => check.at(
                value.span(),
                format!("header `{lower}` has a value that is not a valid HTTP header value"),
            ),
            Err(msg) => check.at(value.span(), msg),
        }
    }
    (forward_headers, headers)
}

fn cache(check: &mut Check, c: &RawCache) -> CacheConfig {
    CacheConfig {
        ttl: check.duration(&Some(c.ttl.clone()), Duration::from_secs(1)),
        field_ttl: c
            .field_ttl
            .iter()
            .map(|(field, ttl)| FieldTtl {
                field: field.get_ref().clone(),
                ttl: match humantime::parse_duration(ttl.get_ref()) {
                    Ok(d) => d,
                    Err(_) => {
                        check.at(ttl.span(), format!("expected a duration such as \"10s\", \"5m\" or \"0s\" (not kept), not {:?}", ttl.get_ref()));
                        Duration::ZERO
                    }
                },
                position: check.position(field.span().start),
            })
            .collect(),
        max_bytes: match &c.max_bytes {
            None => 16 << 20,
            Some(m) => parse_size(m.get_ref())
                .filter(|n| (1 << 10..=1 << 34).contains(n))
                .unwrap_or_else(|| {
                    check.at(
                        m.span(),
                        format!("`max_bytes` must be a size from \"1KiB\" to \"16GiB\" such as \"64MiB\", not {:?}", m.get_ref()),
                    );
                    16 << 20
                }),
        },
        stale_if_error: c
            .stale_if_error
            .as_ref()
            .map(|_| check.duration(&c.stale_if_error, Duration::from_secs(60))),
    }
}

fn list_sizes(check: &mut Check, up: &RawUpstream) -> Vec<ListSizeHint> {
    let mut list_sizes = Vec::new();
    for (name, size) in &up.list_sizes {
        if !(1..=MAX_LIST_SIZE as i64).contains(size.get_ref()) {
            check.at(
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
            position: check.position(name.span().start),
        });
    }
    list_sizes
}

/// Namespaces are lower-case letters and digits so that `<namespace>_<name>` splits unambiguously.
fn valid_namespace(ns: &str) -> bool {
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
