//! Policy plugins: the `policy-plugin` world, a warm instance pool, and limits per call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::exports::joinery::plugin::policy as wit;
use super::bindings::{PolicyPlugin as Bindings, PolicyPluginPre};
use super::host::{Grants, HostState};
use super::PluginError;

/// Largest input (headers and variables) or output a plugin call may have.
const MAX_IO_BYTES: usize = 1 << 20;
/// Warm instances kept per plugin.
const MAX_IDLE: usize = 32;

/// A refusal decided by a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status, 400..=599.
    pub status: u16,
    /// The error code for `extensions.code`.
    pub code: String,
    /// The message for the client.
    pub message: String,
}

/// What a request may go on with.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// `@internal` variables to fill.
    pub variables: Vec<(String, serde_json::Value)>,
    /// Headers for every upstream request of this client request.
    pub upstream_headers: Vec<(HeaderName, HeaderValue)>,
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
pub enum UpstreamDecision {
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

struct Instance {
    store: Store<HostState>,
    bindings: Bindings,
}

/// One loaded policy plugin.
pub struct PolicyPlugin {
    name: String,
    timeout: Duration,
    engine: Engine,
    pre: PolicyPluginPre<HostState>,
    grants: Arc<Grants>,
    idle: Mutex<Vec<Instance>>,
}

impl std::fmt::Debug for PolicyPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPlugin")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Raised by the epoch callback when a call's time is up.
#[derive(Debug)]
struct OutOfTime;

impl std::fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("time limit reached")
    }
}

impl std::error::Error for OutOfTime {}

impl PolicyPlugin {
    pub(crate) fn new(
        engine: &Engine,
        component: &Component,
        grants: Arc<Grants>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut linker = Linker::<HostState>::new(engine);
        let linked = wasmtime_wasi::p2::add_to_linker_async(&mut linker).and_then(|()| {
            Bindings::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(
                &mut linker,
                |s| s,
            )
        });
        linked.map_err(|e| format!("cannot prepare the host functions: {e:#}"))?;
        let pre = linker
            .instantiate_pre(component)
            .and_then(PolicyPluginPre::new)
            .map_err(|e| super::explain_mismatch(engine, component, "policy", &e))?;
        Ok(Self {
            name: grants.name.clone(),
            timeout,
            engine: engine.clone(),
            pre,
            grants,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls the request hook.
    pub async fn on_request(
        &self,
        operation_name: &str,
        operation_hash: &str,
        headers: &[(String, String)],
        variables_json: &str,
    ) -> Result<Decision, PluginError> {
        let size = variables_json.len()
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        if size > MAX_IO_BYTES {
            return Err(self.failed(format!("the request's headers and variables ({size} bytes) exceed the 1 MiB a plugin call may take")));
        }
        let request = wit::IncomingRequest {
            operation_name: operation_name.to_string(),
            operation_hash: operation_hash.to_string(),
            headers: headers.to_vec(),
            variables: variables_json.to_string(),
        };
        let mut instance = self.checkout().await?;
        let started = Instant::now();
        let call = instance
            .bindings
            .joinery_plugin_policy()
            .call_on_request(&mut instance.store, &request);
        let result = tokio::time::timeout(self.timeout + super::engine::TICK * 4, call).await;
        let decision = self.checkin(instance, result, started)?;
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
    pub async fn on_upstream_request(
        &self,
        namespace: &str,
        operation_name: &str,
        headers: Vec<(String, String)>,
    ) -> Result<UpstreamDecision, PluginError> {
        let request = wit::UpstreamRequest {
            namespace: namespace.to_string(),
            operation_name: operation_name.to_string(),
            headers,
        };
        let mut instance = self.checkout().await?;
        let started = Instant::now();
        let call = instance
            .bindings
            .joinery_plugin_policy()
            .call_on_upstream_request(&mut instance.store, &request);
        let result = tokio::time::timeout(self.timeout + super::engine::TICK * 4, call).await;
        match self.checkin(instance, result, started)? {
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
        let code_ok = !d.code.is_empty()
            && d.code.len() <= 64
            && d.code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !code_ok {
            return Err(self.failed(format!(
                "it denied with the code {:?}; codes are 1-64 characters of A-Z, 0-9 and _",
                d.code
            )));
        }
        Ok(Denial {
            status: d.status,
            code: d.code,
            message: d.message,
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
                let n = n.to_ascii_lowercase();
                match (
                    HeaderName::from_bytes(n.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    (Ok(name), Ok(value)) => Ok((name, value)),
                    _ => Err(self.failed(format!("it set an invalid header `{n}`"))),
                }
            })
            .collect()
    }

    fn failed(&self, message: String) -> PluginError {
        PluginError::Failed(self.name.clone(), message)
    }

    /// A warm instance, or a new one from the pre-linked component.
    async fn checkout(&self) -> Result<Instance, PluginError> {
        let idle = self
            .idle
            .lock()
            .expect("the pool lock is never poisoned")
            .pop();
        let mut instance = match idle {
            Some(i) => i,
            None => {
                let mut store = Store::new(&self.engine, HostState::new(self.grants.clone()));
                store.limiter(|s| &mut s.limits);
                self.arm(&mut store);
                let started = Instant::now();
                let made = tokio::time::timeout(
                    self.timeout + super::engine::TICK * 4,
                    self.pre.instantiate_async(&mut store),
                )
                .await;
                let bindings = self.classify(made, started)?;
                Instance { store, bindings }
            }
        };
        self.arm(&mut instance.store);
        Ok(instance)
    }

    /// Returns a healthy instance to the pool; a failed one is dropped with its store.
    fn checkin<R>(
        &self,
        instance: Instance,
        result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        started: Instant,
    ) -> Result<R, PluginError> {
        let value = self.classify(result, started)?;
        let mut idle = self.idle.lock().expect("the pool lock is never poisoned");
        if idle.len() < MAX_IDLE {
            idle.push(instance);
        }
        Ok(value)
    }

    fn classify<R>(
        &self,
        result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        started: Instant,
    ) -> Result<R, PluginError> {
        let error = match result {
            Ok(Ok(v)) => return Ok(v),
            Err(_) => PluginError::Timeout(self.name.clone(), self.timeout),
            Ok(Err(e)) if e.downcast_ref::<OutOfTime>().is_some() => {
                PluginError::Timeout(self.name.clone(), self.timeout)
            }
            Ok(Err(e)) => self.failed(describe_trap(&e)),
        };
        tracing::warn!(plugin = %self.name, elapsed_us = started.elapsed().as_micros() as u64, error = %error, "plugin call failed; its instance is discarded");
        Err(error)
    }

    /// Sets the time limit of the next call: the epoch callback yields to the async runtime
    /// every tick (so a looping plugin never holds a runtime thread) and traps once time is up.
    fn arm(&self, store: &mut Store<HostState>) {
        let deadline = Instant::now() + self.timeout;
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(OutOfTime.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
    }
}

fn describe_trap(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => "it overflowed its stack".into(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "it trapped (a panic or abort in the plugin)".into()
        }
        Some(trap) => format!("it trapped: {trap}"),
        None => {
            // The root cause, without the wasm backtrace the client has no use for.
            let text = e.root_cause().to_string();
            if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
                format!("it exceeded its memory limit ({text})")
            } else {
                text
            }
        }
    }
}
