//! Upstreams: pre-rendered GraphQL requests sent over pooled HTTP clients or to resolver
//! plugins, with the upstream's policy hooks around each request.

mod cache;
pub(crate) mod data;
mod in_flight;
mod items;
mod resilience;
mod resolver;
mod shared_cache;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use serde::de::DeserializeSeed;
use tracing::Instrument;

use crate::config::{RetryConfig, Transport as TransportConfig, UpstreamConfig};
use crate::error_code::ErrorCode;
use crate::metrics::{Metrics, UpstreamMetrics};
use crate::plugin::{PluginError, Plugins, PolicyPlugin, ResponseDecision, UpstreamDecision};
use data::{Object, ResponseSeed};
use in_flight::InFlight;
pub(crate) use items::{ItemCache, ItemKey};
use resolver::PluginTransport;

/// What one client request brings to every upstream request it causes.
#[derive(Debug, Default)]
pub(crate) struct RequestContext {
    /// The client's headers (only `forward_headers` are copied), shared with the policies'
    /// calls, which read them without a copy.
    pub(crate) client_headers: std::sync::Arc<HeaderMap>,
    /// Headers policy plugins added for every upstream of this request.
    pub(crate) upstream_headers: Vec<(HeaderName, HeaderValue)>,
    /// The persisted operation's name, for upstream policy hooks.
    pub(crate) operation: String,
    /// Answers this request got from upstream caches, as they are added.
    pub(crate) cached: std::sync::Mutex<Vec<CachedAnswer>>,
}

/// An upstream answer served from the cache instead of the upstream.
#[derive(Debug, Clone)]
pub(crate) struct CachedAnswer {
    /// The upstream's namespace.
    pub(crate) upstream: String,
    /// When the upstream gave the answer.
    pub(crate) stored: std::time::SystemTime,
    /// Served past its freshness because the upstream failed (`stale_if_error`).
    pub(crate) stale: bool,
}

impl RequestContext {
    fn note_cached(&self, upstream: &str, stored: std::time::SystemTime, stale: bool) {
        self.cached
            .lock()
            .expect("never poisoned")
            .push(CachedAnswer {
                upstream: upstream.to_string(),
                stored,
                stale,
            });
    }
}

/// One GraphQL request to an upstream, as the executor rendered it: HTTP upstreams get it as
/// a JSON body, resolver plugins get the document and variables as they are (no JSON to read
/// back).
#[derive(Debug)]
pub(crate) struct UpstreamRequest<'a> {
    /// `operationName`.
    pub(crate) operation_name: Option<&'a str>,
    /// The upstream document.
    pub(crate) document: &'a str,
    /// The JSON body up to the variables (`{"operationName":…,"query":…,"variables":`), when
    /// the plan rendered it ahead.
    pub(crate) body_prefix: Option<&'a str>,
    /// The variables the document declares.
    pub(crate) variables: &'a apollo_compiler::response::JsonMap,
    /// A query (not a mutation): identical queries in flight at once may share one request.
    pub(crate) query: bool,
    /// The root fields, as the upstream names them (their `field_ttl` applies).
    pub(crate) fields: &'a [String],
    /// Whether the whole answer may be kept in (and served from) the cache; false when its
    /// parts are kept per key instead ([`ItemCache`]).
    pub(crate) keep_whole: bool,
}

impl UpstreamRequest<'_> {
    /// The GraphQL-over-HTTP JSON body.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut body =
            Vec::with_capacity(self.body_prefix.map_or(self.document.len() + 64, str::len) + 64);
        match self.body_prefix {
            Some(prefix) => body.extend_from_slice(prefix.as_bytes()),
            None => {
                body.extend_from_slice(b"{\"operationName\":");
                serde_json::to_writer(&mut body, &self.operation_name).expect("strings serialize");
                body.extend_from_slice(b",\"query\":");
                serde_json::to_writer(&mut body, self.document).expect("strings serialize");
                body.extend_from_slice(b",\"variables\":");
            }
        }
        serde_json::to_writer(&mut body, self.variables).expect("JSON values serialize");
        body.push(b'}');
        body
    }
}

/// Every upstream, by namespace.
#[derive(Debug, Clone)]
pub(crate) struct Upstreams {
    clients: IndexMap<String, Upstream>,
    metrics: Option<Arc<Metrics>>,
}

/// One upstream GraphQL API: its headers, its policies and how it is reached.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    namespace: String,
    forward_headers: Vec<HeaderName>,
    headers: HeaderMap,
    policies: Vec<Arc<PolicyPlugin>>,
    transport: Transport,
    /// Identical queries in flight, when coalescing is on.
    in_flight: Option<Arc<InFlight>>,
    /// Answers kept, when caching is on.
    cache: Option<Arc<cache::Cache>>,
    /// The cache all replicas share (`[cache] redis`), behind `cache`.
    shared: Option<Arc<shared_cache::SharedCache>>,
    /// Where requests and cache lookups are counted, when a gateway serves metrics.
    metrics: Option<Arc<UpstreamMetrics>>,
}

#[derive(Debug, Clone)]
enum Transport {
    Http(Arc<Http>),
    Plugin(Arc<PluginTransport>),
    /// Answers made in process (fuzzing feeds upstream answers through here).
    #[cfg(feature = "fuzzing")]
    InProcess(Arc<dyn Answerer>),
}

/// Answers an upstream's GraphQL requests in process: given the namespace and the JSON body an
/// HTTP upstream would receive, the body it answers with (read like an HTTP answer with status
/// 200 and a JSON type).
#[cfg(feature = "fuzzing")]
pub trait Answerer: std::fmt::Debug + Send + Sync {
    /// The answer to one request.
    fn answer(&self, namespace: &str, body: Vec<u8>) -> futures::future::BoxFuture<'static, Bytes>;
}

/// Where and how an HTTP upstream is asked.
#[derive(Debug)]
struct Http {
    namespace: String,
    url: reqwest::Url,
    timeout: Duration,
    max_response_bytes: usize,
    client: reqwest::Client,
    /// Whether response hooks need the answer's headers.
    keep_headers: bool,
    retry: Option<RetryConfig>,
    breaker: Option<resilience::Breaker>,
}

/// A GraphQL response from an upstream.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct UpstreamResponse {
    /// `data`, when present and an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Object>,
    /// `errors`, as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<serde_json::Value>,
    /// How long the answer may be kept, when the upstream keeps answers, the answer came from
    /// the upstream (not a cache) and it is complete.
    #[serde(skip)]
    pub(crate) fresh_for: Option<Duration>,
}

/// One upstream's metrics, movable into the futures that send its requests.
#[derive(Debug, Clone)]
pub(crate) struct Counted {
    metrics: Option<Arc<UpstreamMetrics>>,
}

impl Counted {
    /// Records a request sent at `started`: `ok`, the error code, or `http_<status>` for an
    /// answer that is not a success.
    fn record<T: Status>(&self, answer: Result<&T, &FetchError>, started: Instant) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let status;
        let result = match answer {
            Ok(a) => match a.status() {
                None => "ok",
                Some(code) => {
                    status = format!("http_{code}");
                    &status
                }
            },
            Err(e) => e.code().as_str(),
        };
        metrics.request(result, started.elapsed());
    }

    /// Records `n` cache lookups that ended as `result`.
    pub(crate) fn cache(&self, result: &str, n: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.cache(result, n);
        }
    }
}

/// What an answer's HTTP status says: `None` for a success.
trait Status {
    fn status(&self) -> Option<u16>;
}

impl Status for Answer {
    fn status(&self) -> Option<u16> {
        (!self.status.is_success()).then(|| self.status.as_u16())
    }
}

impl Status for () {
    fn status(&self) -> Option<u16> {
        None
    }
}

/// Why an upstream request produced no GraphQL response.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FetchError {
    /// No answer within the configured timeout.
    #[error("upstream `{0}` did not answer within {1:?}")]
    Timeout(String, Duration),
    /// Connection refused, reset, DNS failure…
    #[error("upstream `{0}` is unavailable: {1}")]
    Unavailable(String, String),
    /// An answer that is not a GraphQL response.
    #[error("upstream `{0}` sent an unusable response: {1}")]
    BadResponse(String, String),
    /// A policy plugin refused the request: (namespace, the plugin's code, its message).
    #[error("the request to upstream `{0}` was refused by policy ({1}): {2}")]
    Denied(String, String, String),
    /// A policy plugin attached to the upstream failed.
    #[error("the request to upstream `{0}` was not sent: {1}")]
    Plugin(String, PluginError),
    /// The resolver plugin serving the upstream ran and failed.
    #[error("the resolver plugin of upstream `{0}` failed: {1}")]
    Resolver(String, PluginError),
}

impl FetchError {
    /// Whether the upstream itself failed (no answer in time, unreachable, an unusable
    /// answer), as opposed to a policy refusing the request or a plugin failing.
    pub(crate) fn upstream_failed(&self) -> bool {
        matches!(
            self,
            Self::Timeout(..) | Self::Unavailable(..) | Self::BadResponse(..)
        )
    }

    /// The client-visible code.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout(..) => ErrorCode::UpstreamTimeout,
            Self::Unavailable(..) => ErrorCode::UpstreamUnavailable,
            Self::BadResponse(..) => ErrorCode::UpstreamBadResponse,
            Self::Denied(..) => ErrorCode::PolicyDenied,
            Self::Plugin(_, e) | Self::Resolver(_, e) => e.code(),
        }
    }
}

impl Upstreams {
    /// Builds one pooled HTTP client shared by all HTTP upstreams; `plugins` holds the plugins
    /// upstreams name, `schemas` the (un-namespaced) schemas of resolver-plugin upstreams.
    pub(crate) fn new<'a>(
        configs: impl IntoIterator<Item = &'a UpstreamConfig>,
        plugins: &Plugins,
        schemas: &std::collections::HashMap<
            String,
            apollo_compiler::validation::Valid<apollo_compiler::Schema>,
        >,
    ) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("the HTTP client builds with static settings");
        let clients = configs
            .into_iter()
            .map(|c| {
                let mut headers = HeaderMap::new();
                let transport = match &c.transport {
                    TransportConfig::Http(url) => {
                        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        headers.insert(
                            ACCEPT,
                            HeaderValue::from_static(
                                "application/graphql-response+json, application/json",
                            ),
                        );
                        Transport::Http(Arc::new(Http {
                            namespace: c.namespace.clone(),
                            url: reqwest::Url::parse(url).expect("validated by config"),
                            timeout: c.timeout,
                            max_response_bytes: c.max_response_bytes,
                            client: http.clone(),
                            keep_headers: !c.policies.is_empty(),
                            retry: c.retry,
                            breaker: c.breaker.map(|b| resilience::Breaker::new(&c.namespace, b)),
                        }))
                    }
                    TransportConfig::Plugin(name) => {
                        Transport::Plugin(Arc::new(PluginTransport::new(
                            plugins
                                .resolver(name)
                                .expect("resolver plugins named by upstreams are loaded")
                                .clone(),
                            schemas
                                .get(&c.namespace)
                                .expect("every plugin upstream has its schema")
                                .clone(),
                        )))
                    }
                };
                for (name, value) in &c.headers {
                    headers.insert(
                        HeaderName::from_bytes(name.as_bytes()).expect("validated by config"),
                        HeaderValue::from_str(value).expect("validated by config"),
                    );
                }
                let upstream = Upstream {
                    namespace: c.namespace.clone(),
                    forward_headers: c
                        .forward_headers
                        .iter()
                        .map(|h| HeaderName::from_bytes(h.as_bytes()).expect("validated by config"))
                        .collect(),
                    headers,
                    policies: c
                        .policies
                        .iter()
                        .map(|p| {
                            plugins
                                .policy(p)
                                .expect("plugins named by upstreams are loaded")
                                .clone()
                        })
                        .collect(),
                    transport,
                    in_flight: c.coalesce.then(Default::default),
                    cache: c
                        .cache
                        .clone()
                        .map(|config| Arc::new(cache::Cache::new(config))),
                    shared: None,
                    metrics: None,
                };
                (c.namespace.clone(), upstream)
            })
            .collect();
        Upstreams {
            clients,
            metrics: None,
        }
    }

    /// [`Upstreams::new`] for configurations whose upstreams are all answered by `answerer`
    /// (URLs and plugins are ignored; headers and policies apply as configured).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn in_process<'a>(
        configs: impl IntoIterator<Item = &'a UpstreamConfig>,
        plugins: &Plugins,
        answerer: Arc<dyn Answerer>,
    ) -> Self {
        let configs: Vec<UpstreamConfig> = configs
            .into_iter()
            .map(|c| UpstreamConfig {
                transport: TransportConfig::Http("http://127.0.0.1/".into()),
                ..c.clone()
            })
            .collect();
        let mut upstreams = Self::new(&configs, plugins, &Default::default());
        for upstream in upstreams.clients.values_mut() {
            upstream.transport = Transport::InProcess(answerer.clone());
        }
        upstreams
    }

    /// Counts every upstream's requests and cache lookups in `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: &Arc<Metrics>) -> Self {
        for upstream in self.clients.values_mut() {
            upstream.metrics = Some(Arc::new(metrics.upstream(&upstream.namespace)));
        }
        self.metrics = Some(metrics.clone());
        self
    }

    /// Records a `_join` over `items` items.
    pub(crate) fn count_join(&self, items: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.join(items);
        }
    }

    /// Shares the answer caches of upstreams that have one through the Redis server of
    /// `config`, if it names one.
    pub(crate) fn with_shared_cache(mut self, config: &crate::config::SharedCacheConfig) -> Self {
        if let Some(shared) = shared_cache::SharedCache::new(config) {
            for upstream in self.clients.values_mut() {
                if upstream.cache.is_some() {
                    upstream.shared = Some(shared.clone());
                }
            }
        }
        self
    }

    /// The upstream of `namespace`.
    pub(crate) fn get(&self, namespace: &str) -> Option<&Upstream> {
        self.clients.get(namespace)
    }
}

/// An answer to keep in the caches once it proves complete: the cache, its key, the answer.
type ToKeep = (Arc<cache::Cache>, Arc<in_flight::Key>, Answer);

/// Keeps `answer` under `key`, fresh for `fresh` from now, in the in-process cache and in the
/// shared one when there is one.
fn keep_in_layers(
    cache: &cache::Cache,
    shared: Option<&Arc<shared_cache::SharedCache>>,
    namespace: &str,
    key: Arc<in_flight::Key>,
    answer: &Answer,
    fresh: Duration,
) {
    let stored = std::time::SystemTime::now();
    if let Some(shared) = shared {
        shared.put(
            namespace,
            &key,
            answer,
            (stored, fresh, cache.stale_window()),
        );
    }
    cache.keep(key, answer, stored, fresh);
}

/// An [`UpstreamRequest`] that owns its parts, for a request shared by coalesced askers.
#[derive(Debug)]
struct OwnedRequest {
    operation_name: Option<String>,
    document: String,
    variables: apollo_compiler::response::JsonMap,
    query: bool,
    fields: Vec<String>,
}

impl OwnedRequest {
    fn new(request: &UpstreamRequest<'_>) -> Self {
        OwnedRequest {
            operation_name: request.operation_name.map(str::to_string),
            document: request.document.to_string(),
            variables: request.variables.clone(),
            query: request.query,
            fields: request.fields.to_vec(),
        }
    }

    fn borrow(&self) -> UpstreamRequest<'_> {
        UpstreamRequest {
            operation_name: self.operation_name.as_deref(),
            document: &self.document,
            body_prefix: None,
            variables: &self.variables,
            query: self.query,
            fields: &self.fields,
            keep_whole: true,
        }
    }
}

/// An answer before it is read as a GraphQL response.
#[derive(Debug, Clone)]
struct Answer {
    status: reqwest::StatusCode,
    is_json: bool,
    /// Kept only for response hooks (`keep_headers`).
    headers: HeaderMap,
    body: Bytes,
    /// Its `Cache-Control`, for the cache.
    cache_control: Option<HeaderValue>,
}

impl Answer {
    /// A `200 OK` JSON answer made in process (a plugin's, or a fuzzer's).
    fn json(body: impl Into<Bytes>) -> Self {
        Answer {
            status: reqwest::StatusCode::OK,
            is_json: true,
            headers: HeaderMap::new(),
            body: body.into(),
            cache_control: None,
        }
    }
}

impl Upstream {
    /// Sends one GraphQL request, copying the configured client headers and applying the
    /// upstream's policy plugins before the request and after the response.
    pub(crate) async fn send(
        &self,
        request: &UpstreamRequest<'_>,
        context: &RequestContext,
    ) -> Result<UpstreamResponse, FetchError> {
        let span = crate::telemetry::traced(
            || tracing::info_span!("upstream", upstream = %self.namespace),
        );
        let result = self.exchange(request, context).instrument(span).await;
        if let (Err(e), Some(metrics)) = (&result, &self.metrics) {
            metrics.error(e.code().as_str());
        }
        result
    }

    /// [`Upstream::send`], uncounted.
    async fn exchange(
        &self,
        request: &UpstreamRequest<'_>,
        context: &RequestContext,
    ) -> Result<UpstreamResponse, FetchError> {
        let mut headers = self.request_headers(context);
        for policy in &self.policies {
            self.apply_policy(policy, &context.operation, &mut headers)
                .await?;
        }
        let (mut answer, cached) = match &self.transport {
            Transport::Http(http) => {
                let (http, query) = (http.clone(), request.query);
                let counted = self.counted();
                let send = move |mut headers, body| async move {
                    // After the cache and coalescing keys were made from the headers.
                    crate::telemetry::pass_trace_on(&mut headers);
                    let started = Instant::now();
                    let answer = http.send(headers, body, query).await;
                    counted.record(answer.as_ref(), started);
                    answer
                };
                self.fetch(headers, request, context, send).await?
            }
            // Through the caches and coalescing, a plugin's answer is handled as JSON text.
            Transport::Plugin(plugin) if self.cache.is_some() || self.in_flight.is_some() => {
                // Copied only when the request is sent (not on a cache hit).
                let send = |headers: HeaderMap, _body| {
                    let plugin = plugin.clone();
                    let owned = OwnedRequest::new(request);
                    let (namespace, operation) =
                        (self.namespace.clone(), context.operation.clone());
                    let counted = self.counted();
                    async move {
                        let started = Instant::now();
                        let answer = plugin
                            .send(&namespace, &owned.borrow(), headers, &operation)
                            .await
                            .map(|response| {
                                Answer::json(
                                    serde_json::to_vec(&response).expect("JSON values serialize"),
                                )
                            });
                        counted.record(answer.as_ref(), started);
                        answer
                    }
                };
                self.fetch(headers, request, context, send).await?
            }
            Transport::Plugin(plugin) => {
                let started = Instant::now();
                let response = plugin
                    .send(&self.namespace, request, headers, &context.operation)
                    .await;
                self.counted()
                    .record(response.as_ref().map(|_| &()), started);
                let response = response?;
                if self.policies.is_empty() {
                    return Ok(response);
                }
                let body = serde_json::to_vec(&response).expect("JSON values serialize");
                (Answer::json(body), None)
            }
            #[cfg(feature = "fuzzing")]
            Transport::InProcess(answerer) => {
                let body = answerer.answer(&self.namespace, request.to_json()).await;
                (Answer::json(body), None)
            }
        };
        for policy in &self.policies {
            self.apply_response_policy(policy, &context.operation, &mut answer)
                .await?;
        }
        let ok = answer.status == reqwest::StatusCode::OK;
        let mut response = self.interpret(answer)?;
        // Only complete answers are kept: an error may be passing.
        if let Some((cache, key, answer)) = cached {
            let fresh = cache.freshness_of(&answer, request.fields);
            if let (true, Some(fresh)) = (ok && response.errors.is_empty(), fresh) {
                response.fresh_for = Some(fresh);
                if request.keep_whole {
                    keep_in_layers(
                        &cache,
                        self.shared.as_ref(),
                        &self.namespace,
                        key,
                        &answer,
                        fresh,
                    );
                }
            }
        }
        Ok(response)
    }

    /// What this upstream's requests and cache lookups are counted in.
    pub(crate) fn counted(&self) -> Counted {
        Counted {
            metrics: self.metrics.clone(),
        }
    }

    /// The headers every request to this upstream sends before its policy plugins run: the
    /// configured ones, the forwarded client headers and those request policies set.
    fn request_headers(&self, context: &RequestContext) -> HeaderMap {
        let mut headers = self.headers.clone();
        for name in &self.forward_headers {
            for value in context.client_headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &context.upstream_headers {
            headers.insert(name.clone(), value.clone());
        }
        headers
    }

    /// Asks the upstream through `send`, via the in-process cache, the shared cache and
    /// coalescing as configured; a stale answer replaces a failure where `stale_if_error`
    /// allows. Also gives what to keep once the answer proves complete.
    async fn fetch<F>(
        &self,
        headers: HeaderMap,
        request: &UpstreamRequest<'_>,
        context: &RequestContext,
        send: impl FnOnce(HeaderMap, Bytes) -> F,
    ) -> Result<(Answer, Option<ToKeep>), FetchError>
    where
        F: std::future::Future<Output = Result<Answer, FetchError>> + Send + 'static,
    {
        let query = request.query;
        let body = Bytes::from(request.to_json());
        let Some(cache) = self.cache.as_ref().filter(|_| query) else {
            let answer = match &self.in_flight {
                Some(in_flight) if query => in_flight.join(headers, body, send).await?,
                _ => send(headers, body).await?,
            };
            return Ok((answer, None));
        };
        let key = Arc::new(in_flight::Key::new(&headers, &body));
        let whole = request.keep_whole;
        let counted = self.counted();
        if let Some((answer, stored)) = cache.get(&key).filter(|_| whole) {
            context.note_cached(&self.namespace, stored, false);
            counted.cache("hit", 1);
            return Ok((answer, None));
        }
        let mut shared_stale = None;
        if let Some(shared) = self.shared.as_ref().filter(|_| whole) {
            if let Some(found) = shared.get(&self.namespace, &key).await {
                match found.fresh_for {
                    Some(fresh) => {
                        cache.keep(key.clone(), &found.answer, found.stored, fresh);
                        context.note_cached(&self.namespace, found.stored, false);
                        counted.cache("hit", 1);
                        return Ok((found.answer, None));
                    }
                    None => shared_stale = Some((found.answer, found.stored)),
                }
            }
        }
        if whole {
            counted.cache("miss", 1);
        }
        let result = match &self.in_flight {
            Some(in_flight) => in_flight.join_keyed(key.clone(), headers, body, send).await,
            None => send(headers, body).await,
        };
        let failed = match &result {
            Ok(answer) => answer.status.is_server_error(),
            Err(e) => matches!(e, FetchError::Timeout(..) | FetchError::Unavailable(..)),
        };
        if failed && !cache.stale_window().is_zero() {
            if let Some((answer, stored)) = cache.stale(&key).or(shared_stale) {
                tracing::warn!(upstream = %self.namespace, "upstream failed; serving a stale cached answer");
                context.note_cached(&self.namespace, stored, true);
                counted.cache("stale", 1);
                return Ok((answer, None));
            }
        }
        let answer = result?;
        Ok((answer.clone(), Some((cache.clone(), key, answer))))
    }

    /// Reads an answer as a GraphQL response.
    fn interpret(&self, answer: Answer) -> Result<UpstreamResponse, FetchError> {
        let ns = || self.namespace.clone();
        let Answer {
            status,
            is_json,
            body,
            ..
        } = answer;
        match parse_response(&body) {
            Ok(r) if r.data.is_none() && r.errors.is_empty() => Err(FetchError::BadResponse(
                ns(),
                format!("HTTP status {status} with neither `data` nor `errors`"),
            )),
            Ok(r) if status.is_success() => Ok(r),
            // GraphQL-over-HTTP allows error statuses with a GraphQL body: use the body.
            Ok(r) if is_json => Ok(r),
            Ok(_) => Err(FetchError::BadResponse(
                ns(),
                format!("HTTP status {status}"),
            )),
            Err(_) if !status.is_success() => Err(FetchError::BadResponse(
                ns(),
                format!("HTTP status {status}"),
            )),
            Err(e) => Err(FetchError::BadResponse(
                ns(),
                format!("the answer is not a GraphQL response: {e}"),
            )),
        }
    }

    async fn apply_response_policy(
        &self,
        policy: &PolicyPlugin,
        operation: &str,
        answer: &mut Answer,
    ) -> Result<(), FetchError> {
        let decision = policy
            .on_upstream_response(
                &self.namespace,
                operation,
                answer.status.as_u16(),
                answer.headers.clone(),
                String::from_utf8_lossy(&answer.body).into_owned(),
            )
            .await
            .map_err(|e| FetchError::Plugin(self.namespace.clone(), e))?;
        match decision {
            ResponseDecision::Keep => Ok(()),
            ResponseDecision::Replace(body) => {
                answer.body = Bytes::from(body);
                answer.is_json = true;
                Ok(())
            }
            ResponseDecision::Deny(d) => Err(FetchError::Denied(
                self.namespace.clone(),
                d.code,
                d.message,
            )),
        }
    }

    async fn apply_policy(
        &self,
        policy: &PolicyPlugin,
        operation: &str,
        headers: &mut HeaderMap,
    ) -> Result<(), FetchError> {
        match policy
            .on_upstream_request(&self.namespace, operation, headers.clone())
            .await
            .map_err(|e| FetchError::Plugin(self.namespace.clone(), e))?
        {
            UpstreamDecision::Deny(d) => Err(FetchError::Denied(
                self.namespace.clone(),
                d.code,
                d.message,
            )),
            UpstreamDecision::Proceed { set, remove } => {
                for name in remove {
                    headers.remove(name.as_str());
                }
                for (name, value) in set {
                    headers.insert(name, value);
                }
                Ok(())
            }
        }
    }
}

impl Http {
    /// Sends one request through the circuit breaker, retrying a query as configured.
    async fn send(
        self: Arc<Self>,
        headers: HeaderMap,
        body: Bytes,
        query: bool,
    ) -> Result<Answer, FetchError> {
        let ticket = match &self.breaker {
            None => None,
            Some(breaker) => Some(breaker.admit().map_err(|wait| {
                FetchError::Unavailable(
                    self.namespace.clone(),
                    format!(
                        "it failed too often in a row and is not asked again for {} ms (circuit breaker)",
                        wait.as_millis()
                    ),
                )
            })?),
        };
        let result = match &self.retry {
            Some(retry) if query => self.with_retries(retry, headers, body).await,
            _ => self.attempt(headers, body).await,
        };
        if let Some(ticket) = ticket {
            let failed = match &result {
                Ok(answer) => answer.status.is_server_error(),
                Err(_) => true,
            };
            ticket.record(failed);
        }
        result
    }

    /// Tries again while the failure may pass, the attempts last and the next try can start
    /// within the upstream's timeout (counted from the first).
    async fn with_retries(
        &self,
        retry: &RetryConfig,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, FetchError> {
        let started = std::time::Instant::now();
        let mut retries = 0;
        loop {
            let result = self.attempt(headers.clone(), body.clone()).await;
            let passing = match &result {
                Ok(answer) => resilience::may_pass(false, Some(answer.status.as_u16())),
                Err(e) => resilience::may_pass(matches!(e, FetchError::Unavailable(..)), None),
            };
            if !passing || retries >= retry.attempts {
                return result;
            }
            let wait = resilience::backoff(retry, retries);
            if started.elapsed() + wait >= self.timeout {
                return result;
            }
            tracing::debug!(upstream = %self.namespace, retry = retries + 1, ?wait, "retrying a failed upstream query");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// Sends one request and reads its answer, up to `max_response_bytes`.
    async fn attempt(&self, headers: HeaderMap, body: Bytes) -> Result<Answer, FetchError> {
        let (timeout, max_bytes) = (self.timeout, self.max_response_bytes);
        let result = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let mut response = result.map_err(|e| self.classify(e, timeout))?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let cache_control = response.headers().get(CACHE_CONTROL).cloned();
        // Moved out, not cloned: nothing reads the response's headers after this.
        let headers = if self.keep_headers {
            std::mem::take(response.headers_mut())
        } else {
            HeaderMap::new()
        };
        let too_long = || {
            FetchError::BadResponse(
                self.namespace.clone(),
                format!("the answer is longer than max_response_bytes ({max_bytes} bytes)"),
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > max_bytes as u64)
        {
            return Err(too_long());
        }
        // Read chunk by chunk so that an endless or oversized answer stops at the limit, and
        // join the chunks once at the end: growing one buffer as they come would leave freed
        // buffers of every size up to twice the answer behind.
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut read = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(e, timeout))?
        {
            read += chunk.len();
            if read > max_bytes {
                return Err(too_long());
            }
            chunks.push(chunk);
        }
        let body = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().expect("one chunk"),
            _ => {
                let mut joined = Vec::with_capacity(read);
                chunks.iter().for_each(|c| joined.extend_from_slice(c));
                Bytes::from(joined)
            }
        };
        Ok(Answer {
            status,
            is_json,
            headers,
            body,
            cache_control,
        })
    }

    fn classify(&self, e: reqwest::Error, timeout: Duration) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.namespace.clone(), timeout)
        } else if e.is_connect() || e.is_request() {
            FetchError::Unavailable(self.namespace.clone(), root_cause(&e))
        } else {
            FetchError::BadResponse(self.namespace.clone(), root_cause(&e))
        }
    }
}

/// Sends `query` (written against the plugin's own schema, no namespace) to resolver plugin
/// `plugin` as an upstream request, and gives its GraphQL response (`joinery plugin call`).
pub(crate) async fn call_resolver(
    plugin: &Arc<crate::plugin::ResolverPlugin>,
    query: &str,
    operation_name: Option<&str>,
    variables: &serde_json::Map<String, serde_json::Value>,
    headers: HeaderMap,
) -> anyhow::Result<serde_json::Value> {
    let sdl = plugin.schema().await?;
    let schema = apollo_compiler::Schema::parse_and_validate(&sdl, plugin.name())
        .map_err(|e| anyhow::anyhow!("the plugin's schema is not valid: {}", e.errors))?;
    let transport = PluginTransport::new(plugin.clone(), schema);
    let variables: apollo_compiler::response::JsonMap =
        serde_json::from_value(serde_json::Value::Object(variables.clone()))?;
    let request = UpstreamRequest {
        operation_name,
        document: query,
        body_prefix: None,
        variables: &variables,
        query: true,
        fields: &[],
        keep_whole: false,
    };
    let response = transport
        .send(
            plugin.name(),
            &request,
            headers,
            operation_name.unwrap_or(""),
        )
        .await?;
    Ok(serde_json::to_value(&response)?)
}

/// Reads a GraphQL response body, `data` as [`data::Data`] sliced from the body.
fn parse_response(body: &Bytes) -> Result<UpstreamResponse, serde_json::Error> {
    // One UTF-8 check of the whole body (fast) instead of one per string.
    let text = std::str::from_utf8(body).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format!("the answer is not UTF-8: {e}"))
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let (data, errors) = ResponseSeed { body }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(UpstreamResponse {
        data,
        errors,
        fresh_for: None,
    })
}

/// Headers as (lower-case name, value) pairs, for storing; values that are not text are left
/// out.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// Stored (name, value) pairs as headers again; pairs that are no valid header are left out.
fn header_map(pairs: Vec<(String, String)>) -> HeaderMap {
    pairs
        .into_iter()
        .filter_map(|(n, v)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(&v).ok()?,
            ))
        })
        .collect()
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
