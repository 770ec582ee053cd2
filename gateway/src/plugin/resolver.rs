//! Resolver plugins: the `resolver-plugin` world, an upstream implemented in WebAssembly.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use wasmtime::component::Component;

use super::engine::Runtime;
use super::host::Grants;
use super::pool::{call, lending, Pool};
use super::resolver_bindings::exports::joinery::plugin::resolver as wit;
use super::resolver_bindings::{ResolverPlugin as Bindings, ResolverPluginPre};
use super::PluginError;

/// Largest request (selection and arguments) a resolver call may take.
const MAX_INPUT_BYTES: usize = 1 << 20;
/// Largest answer (all root values together) a resolver call may return.
const MAX_OUTPUT_BYTES: usize = 8 << 20;
/// Largest schema a resolver may give.
const MAX_SCHEMA_BYTES: usize = 1 << 20;

/// One upstream request for a resolver plugin.
#[derive(Debug, Clone)]
pub struct ResolverRequest {
    /// Whether the operation is a mutation.
    pub mutation: bool,
    /// The persisted operation's name.
    pub operation_name: String,
    /// Headers for the upstream.
    pub headers: reqwest::header::HeaderMap,
    /// The selection, flattened in document order.
    pub fields: Vec<SelectedField>,
}

/// One selected field.
#[derive(Debug, Clone)]
pub struct SelectedField {
    /// Index of the enclosing field; `None` for root fields.
    pub parent: Option<u32>,
    /// Response key.
    pub key: String,
    /// Field name.
    pub name: String,
    /// Arguments as a JSON object.
    pub arguments: String,
}

/// An error the plugin reported for one root field.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// For the client.
    pub(crate) message: String,
    /// For `extensions.code`.
    pub(crate) code: Option<String>,
    /// Below the root field: keys and indexes.
    pub(crate) path: Vec<Value>,
}

/// The answer for one root field.
pub(crate) type RootResult = Result<Value, FieldError>;

/// One loaded resolver plugin.
pub struct ResolverPlugin {
    pool: Pool<Bindings>,
}

impl std::fmt::Debug for ResolverPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverPlugin")
            .field("name", &self.pool.name)
            .finish_non_exhaustive()
    }
}

super::pool::world!(Bindings, ResolverPluginPre, "resolver");

impl ResolverPlugin {
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

    /// The largest linear memory an instance has grown to so far, and the limit, in bytes.
    pub(crate) fn memory(&self) -> (usize, usize) {
        self.pool.memory()
    }

    /// The plugin's name.
    pub(crate) fn name(&self) -> &str {
        &self.pool.name
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

    /// The plugin's SDL, as it gives it.
    pub(crate) async fn schema(&self) -> Result<String, PluginError> {
        let sdl = call!(self.pool, "schema", |bindings, store| bindings
            .joinery_plugin_resolver()
            .call_schema(store))?;
        if sdl.len() > MAX_SCHEMA_BYTES {
            return Err(self.pool.failed(format!(
                "its schema ({} bytes) exceeds the 1 MiB a schema may have",
                sdl.len()
            )));
        }
        Ok(sdl)
    }

    /// Resolves the root fields of `request`: one result per root field, in order.
    pub async fn resolve(&self, request: ResolverRequest) -> Result<Vec<RootResult>, PluginError> {
        let size: usize = request
            .fields
            .iter()
            .map(|f| f.key.len() + f.name.len() + f.arguments.len() + 8)
            .sum::<usize>();
        if size > MAX_INPUT_BYTES {
            return Err(self.pool.failed(format!(
                "the request ({size} bytes) exceeds the 1 MiB a resolver call may take"
            )));
        }
        let roots = request.fields.iter().filter(|f| f.parent.is_none()).count();
        let kind = if request.mutation {
            wit::OperationKind::Mutation
        } else {
            wit::OperationKind::Query
        };
        let fields: Vec<wit::Field> = request
            .fields
            .iter()
            .map(|f| wit::Field {
                parent: f.parent,
                key: &f.key,
                name: &f.name,
                arguments: &f.arguments,
            })
            .collect();
        let answers = call!(self.pool, "resolve", |bindings, store| {
            lending(store, Arc::new(request.headers), async |store, headers| {
                let request = wit::Request {
                    kind,
                    operation_name: &request.operation_name,
                    headers,
                    fields: &fields,
                };
                let resolver = bindings.joinery_plugin_resolver();
                resolver.call_resolve(store, request).await
            })
        })?;
        if answers.len() != roots {
            return Err(self.pool.failed(format!(
                "it answered {} result(s) for {roots} root field(s)",
                answers.len()
            )));
        }
        let size: usize = answers
            .iter()
            .map(|a| match a {
                Ok(json) => json.len(),
                Err(e) => e.message.len(),
            })
            .sum();
        if size > MAX_OUTPUT_BYTES {
            return Err(self.pool.failed(format!(
                "its answer ({size} bytes) exceeds the 8 MiB a resolver call may return"
            )));
        }
        let keys: Vec<&str> = request
            .fields
            .iter()
            .filter(|f| f.parent.is_none())
            .map(|f| f.key.as_str())
            .collect();
        answers
            .into_iter()
            .zip(keys)
            .map(|(answer, key)| match answer {
                Ok(json) => serde_json::from_str(&json).map(Ok).map_err(|e| {
                    self.pool
                        .failed(format!("its value for `{key}` is not JSON: {e}"))
                }),
                Err(e) => Ok(Err(self.field_error(e)?)),
            })
            .collect()
    }

    fn field_error(&self, e: wit::FieldError) -> Result<FieldError, PluginError> {
        if let Some(code) = &e.code {
            if !super::valid_code(code) {
                return Err(self.pool.failed(format!(
                    "it reported an error with the code {code:?}; codes are 1-64 characters of A-Z, 0-9 and _"
                )));
            }
        }
        Ok(FieldError {
            message: e.message,
            code: e.code,
            path: e
                .path
                .into_iter()
                .map(|s| match s {
                    wit::PathSegment::Key(k) => Value::from(k),
                    wit::PathSegment::Index(i) => Value::from(i),
                })
                .collect(),
        })
    }
}
