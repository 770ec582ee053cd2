//! Policy plugins: the `policy-plugin` world, a warm instance pool, and limits per call.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use wasmtime::component::Component;

use super::bindings::exports::joinery::plugin::policy as wit;
use super::bindings::{PolicyPlugin as Bindings, PolicyPluginPre};
use super::engine::Runtime;
use super::host::Grants;
use super::pool::{call, lending, Pool};
use super::PluginError;

/// Largest input (variables, an upstream's answer) or output a plugin call may have.
const MAX_IO_BYTES: usize = 1 << 20;

/// A refusal decided by a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status, 400..=599.
    pub(crate) status: u16,
    /// The error code for `extensions.code`.
    pub(crate) code: String,
    /// The message for the client.
    pub(crate) message: String,
}

/// What a request may go on with.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// `@internal` variables to fill.
    pub(crate) variables: Vec<(String, serde_json::Value)>,
    /// Headers for every upstream request of this client request.
    pub(crate) upstream_headers: Vec<(HeaderName, HeaderValue)>,
}

/// The request hook's answer.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Go on, with what the plugin granted.
    Allow(Grant),
    /// Refuse the request.
    Deny(Denial),
}

/// The upstream hook's answer.
#[derive(Debug, Clone)]
pub(crate) enum UpstreamDecision {
    /// Send the request with these headers set and these removed.
    Proceed {
        /// Headers set, replacing any of the same name.
        set: Vec<(HeaderName, HeaderValue)>,
        /// Header names removed.
        remove: Vec<String>,
    },
    /// Do not call the upstream.
    Deny(Denial),
}

/// The response hook's answer.
#[derive(Debug, Clone)]
pub(crate) enum ResponseDecision {
    /// Use the response as it is.
    Keep,
    /// Use this GraphQL response body instead.
    Replace(String),
    /// Drop the response.
    Deny(Denial),
}

/// One loaded policy plugin.
pub struct PolicyPlugin {
    pool: Pool<Bindings>,
}

impl std::fmt::Debug for PolicyPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPlugin")
            .field("name", &self.pool.name)
            .finish_non_exhaustive()
    }
}

super::pool::world!(Bindings, PolicyPluginPre, "policy");

impl PolicyPlugin {
    pub(crate) fn new(
        runtime: &Runtime,
        component: &Component,
        grants: Arc<Grants>,
        timeout: Duration,
        weight: u32,
    ) -> Result<Self, String> {
        Ok(Self {
            pool: Pool::new(runtime, component, grants, timeout, weight)?,
        })
    }

    /// The plugin's name.
    pub(crate) fn name(&self) -> &str {
        &self.pool.name
    }

    /// The largest linear memory an instance has grown to so far, and the limit, in bytes.
    pub(crate) fn memory(&self) -> (usize, usize) {
        self.pool.memory()
    }

    /// Instantiates `n` fresh instances and keeps them warm (up to the pool's size), so that
    /// first requests do not pay for instantiation and a plugin that cannot start is found
    /// before serving.
    pub async fn prewarm(&self, n: usize) -> Result<(), PluginError> {
        self.pool.prewarm(n).await
    }

    /// Counts the plugin's calls in `metrics`.
    pub(crate) fn observe(&self, metrics: &Arc<crate::metrics::Metrics>) {
        self.pool.observe(metrics);
    }

    /// Calls the request hook with the client's `headers` (the plugin reads those it is shown).
    pub async fn on_request(
        &self,
        operation_name: &str,
        operation_hash: &str,
        headers: Arc<HeaderMap>,
        variables_json: &str,
    ) -> Result<Decision, PluginError> {
        if variables_json.len() > MAX_IO_BYTES {
            return Err(self.failed(format!(
                "the request's variables ({} bytes) exceed the 1 MiB a plugin call may take",
                variables_json.len()
            )));
        }
        let decision = call!(self.pool, "on-request", |bindings, store| {
            lending(store, headers, async |store, headers| {
                let request = wit::IncomingRequest {
                    operation_name,
                    operation_hash,
                    headers,
                    variables: variables_json,
                };
                let policy = bindings.joinery_plugin_policy();
                policy.call_on_request(store, request).await
            })
        })?;
        match decision {
            wit::Decision::Deny(d) => Ok(Decision::Deny(self.denial(d)?)),
            wit::Decision::Allow(g) => {
                let size: usize = g
                    .variables
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
                    + g.upstream_headers
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum::<usize>();
                if size > MAX_IO_BYTES {
                    return Err(self.failed(format!(
                        "its answer ({size} bytes) exceeds the 1 MiB a plugin call may return"
                    )));
                }
                let mut variables = Vec::with_capacity(g.variables.len());
                for (name, json) in g.variables {
                    let value = serde_json::from_str(&json).map_err(|e| {
                        self.failed(format!("the value it set for `${name}` is not JSON: {e}"))
                    })?;
                    variables.push((name, value));
                }
                let upstream_headers = self.headers(g.upstream_headers)?;
                Ok(Decision::Allow(Grant {
                    variables,
                    upstream_headers,
                }))
            }
        }
    }

    /// Calls the upstream hook for one request to `namespace`.
    pub(crate) async fn on_upstream_request(
        &self,
        namespace: &str,
        operation_name: &str,
        headers: HeaderMap,
    ) -> Result<UpstreamDecision, PluginError> {
        let decision = call!(self.pool, "on-upstream-request", |bindings, store| {
            lending(store, Arc::new(headers), async |store, headers| {
                let request = wit::UpstreamRequest {
                    namespace,
                    operation_name,
                    headers,
                };
                let policy = bindings.joinery_plugin_policy();
                policy.call_on_upstream_request(store, request).await
            })
        })?;
        match decision {
            wit::UpstreamDecision::Deny(d) => Ok(UpstreamDecision::Deny(self.denial(d)?)),
            wit::UpstreamDecision::Proceed(edit) => Ok(UpstreamDecision::Proceed {
                set: self.headers(edit.set_headers)?,
                remove: edit
                    .remove_headers
                    .into_iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
            }),
        }
    }

    /// Calls the response hook for one answer of `namespace`.
    pub(crate) async fn on_upstream_response(
        &self,
        namespace: &str,
        operation_name: &str,
        status: u16,
        headers: HeaderMap,
        body: String,
    ) -> Result<ResponseDecision, PluginError> {
        if body.len() > MAX_IO_BYTES {
            return Err(self.failed(format!(
                "the upstream's answer ({} bytes) exceeds the 1 MiB a plugin call may take",
                body.len()
            )));
        }
        let decision = call!(self.pool, "on-upstream-response", |bindings, store| {
            lending(store, Arc::new(headers), async |store, headers| {
                let response = wit::UpstreamResponse {
                    namespace,
                    operation_name,
                    status,
                    headers,
                    body: &body,
                };
                let policy = bindings.joinery_plugin_policy();
                policy.call_on_upstream_response(store, response).await
            })
        })?;
        match decision {
            wit::UpstreamResponseDecision::Keep => Ok(ResponseDecision::Keep),
            wit::UpstreamResponseDecision::Deny(d) => Ok(ResponseDecision::Deny(self.denial(d)?)),
            wit::UpstreamResponseDecision::Replace(body) if body.len() > MAX_IO_BYTES => {
                Err(self.failed(format!(
                    "its replacement response ({} bytes) exceeds the 1 MiB a plugin call may return",
                    body.len()
                )))
            }
            wit::UpstreamResponseDecision::Replace(body) => Ok(ResponseDecision::Replace(body)),
        }
    }

    fn denial(
        &self,
        d: crate::plugin::bindings::joinery::plugin::types::Denial,
    ) -> Result<Denial, PluginError> {
        if !(400..=599).contains(&d.status) {
            return Err(self.failed(format!(
                "it denied with HTTP status {}, which is not in 400..=599",
                d.status
            )));
        }
        if !super::valid_code(&d.code) {
            return Err(self.failed(format!(
                "it denied with the code {:?}; codes are 1-64 characters of A-Z, 0-9 and _",
                d.code
            )));
        }
        Ok(Denial {
            status: d.status,
            code: d.code,
            message: cap_message(d.message),
        })
    }

    /// Parses the plugin's headers once, here, so that callers use them as they are.
    fn headers(
        &self,
        headers: Vec<(String, String)>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, PluginError> {
        headers
            .into_iter()
            .map(|(n, v)| {
                // `HeaderName` lowers the name's case itself.
                match (
                    HeaderName::from_bytes(n.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    (Ok(name), Ok(_)) if crate::config::reserved_header(name.as_str()) => Err(self
                        .failed(format!(
                            "it set header `{name}`, which the gateway sets itself"
                        ))),
                    (Ok(name), Ok(value)) => Ok((name, value)),
                    _ => Err(self.failed(format!(
                        "it set an invalid header `{}`",
                        n.to_ascii_lowercase()
                    ))),
                }
            })
            .collect()
    }

    fn failed(&self, message: String) -> PluginError {
        self.pool.failed(message)
    }
}

/// Longest denial message passed on to clients.
const MAX_MESSAGE: usize = 1024;

/// A plugin's message as clients get it: at most [`MAX_MESSAGE`] bytes, cut at a character.
fn cap_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("… (cut)");
    }
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_messages_are_cut_at_a_character() {
        assert_eq!(super::cap_message("short".into()), "short");
        let cut = super::cap_message("é".repeat(2000));
        assert!(cut.len() <= super::MAX_MESSAGE + 12, "{}", cut.len());
        assert!(cut.ends_with("… (cut)"));
    }
}
