//! Upstream transports: pooled HTTP clients that send pre-rendered GraphQL requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde::Deserialize;

use crate::config::UpstreamConfig;
use crate::error_code::ErrorCode;
use crate::plugin::{PluginError, Plugins, PolicyPlugin, UpstreamDecision};

/// What one client request brings to every upstream request it causes.
#[derive(Debug, Default)]
pub struct RequestContext {
    /// The client's headers (only `forward_headers` are copied).
    pub client_headers: HeaderMap,
    /// Headers policy plugins added for every upstream of this request.
    pub upstream_headers: Vec<(HeaderName, HeaderValue)>,
    /// The persisted operation's name, for upstream policy hooks.
    pub operation: String,
}

/// The HTTP clients of every upstream, by namespace.
#[derive(Debug, Clone)]
pub struct Upstreams {
    clients: IndexMap<String, HttpUpstream>,
}

/// One upstream GraphQL API over HTTP.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    namespace: String,
    url: reqwest::Url,
    timeout: Duration,
    forward_headers: Vec<HeaderName>,
    headers: HeaderMap,
    policies: Vec<Arc<PolicyPlugin>>,
    http: reqwest::Client,
}

/// A GraphQL response from an upstream.
#[derive(Debug, Default, Deserialize)]
pub struct UpstreamResponse {
    /// `data`, when present and an object.
    #[serde(default)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// `errors`, as sent.
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

/// Why an upstream request produced no GraphQL response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
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
}

impl FetchError {
    /// The client-visible code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout(..) => ErrorCode::UpstreamTimeout,
            Self::Unavailable(..) => ErrorCode::UpstreamUnavailable,
            Self::BadResponse(..) => ErrorCode::UpstreamBadResponse,
            Self::Denied(..) => ErrorCode::PolicyDenied,
            Self::Plugin(_, e) => e.code(),
        }
    }
}

impl Upstreams {
    /// Builds one pooled client shared by all upstreams; `plugins` holds the policy plugins
    /// upstreams name.
    pub fn new<'a>(
        configs: impl IntoIterator<Item = &'a UpstreamConfig>,
        plugins: &Plugins,
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
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(
                    ACCEPT,
                    HeaderValue::from_static("application/graphql-response+json, application/json"),
                );
                for (name, value) in &c.headers {
                    headers.insert(
                        HeaderName::from_bytes(name.as_bytes()).expect("validated by config"),
                        HeaderValue::from_str(value).expect("validated by config"),
                    );
                }
                let upstream = HttpUpstream {
                    namespace: c.namespace.clone(),
                    url: reqwest::Url::parse(&c.url).expect("validated by config"),
                    timeout: c.timeout,
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
                    http: http.clone(),
                };
                (c.namespace.clone(), upstream)
            })
            .collect();
        Upstreams { clients }
    }

    /// The upstream of `namespace`.
    pub fn get(&self, namespace: &str) -> Option<&HttpUpstream> {
        self.clients.get(namespace)
    }
}

impl HttpUpstream {
    /// Sends one GraphQL request body, copying the configured client headers and applying
    /// the upstream's policy plugins.
    pub async fn send(
        &self,
        body: Vec<u8>,
        context: &RequestContext,
    ) -> Result<UpstreamResponse, FetchError> {
        let mut headers = self.headers.clone();
        for name in &self.forward_headers {
            for value in context.client_headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &context.upstream_headers {
            headers.insert(name.clone(), value.clone());
        }
        for policy in &self.policies {
            self.apply_policy(policy, &context.operation, &mut headers)
                .await?;
        }
        let ns = || self.namespace.clone();
        let result = self
            .http
            .post(self.url.clone())
            .headers(headers)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        let response = result.map_err(|e| self.classify(e))?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes: Bytes = response.bytes().await.map_err(|e| self.classify(e))?;
        match serde_json::from_slice::<UpstreamResponse>(&bytes) {
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

    async fn apply_policy(
        &self,
        policy: &PolicyPlugin,
        operation: &str,
        headers: &mut HeaderMap,
    ) -> Result<(), FetchError> {
        let current = headers
            .iter()
            .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        match policy
            .on_upstream_request(&self.namespace, operation, current)
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

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.namespace.clone(), self.timeout)
        } else if e.is_connect() || e.is_request() {
            FetchError::Unavailable(self.namespace.clone(), root_cause(&e))
        } else {
            FetchError::BadResponse(self.namespace.clone(), root_cause(&e))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
