//! The request pipeline, between HTTP and execution: the persisted operation a request
//! names, the policy plugins, the rules of `@internal` variables, variable coercion, then the
//! plan's execution (or the schema's answer to an introspection operation).

mod error;
mod request;

use std::sync::Arc;

use apollo_compiler::executable::OperationType;
use apollo_compiler::response::JsonMap;
use hyper::{Method, StatusCode};

use crate::error_code::ErrorCode;
use crate::execute;
use crate::plan::Plan;
use crate::plugin::{Decision, PolicyPlugin};
use crate::registry::Registry;
use crate::upstream::{RequestContext, Upstreams};
pub(crate) use error::RequestError;
pub(crate) use request::{DocumentRef, GraphQLRequest};

/// What a request runs against: the registered operations, the upstreams, the policies.
pub(crate) struct Pipeline<'g> {
    pub(crate) registry: &'g Registry,
    pub(crate) upstreams: &'g Upstreams,
    pub(crate) policies: &'g [Arc<PolicyPlugin>],
}

impl Pipeline<'_> {
    /// Runs a parsed GraphQL request: finds its persisted operation, runs the policy plugins,
    /// coerces the variables and executes the plan; `operation` gets the name of the operation
    /// found (for metrics).
    pub(crate) async fn run(
        &self,
        method: &Method,
        headers: hyper::HeaderMap,
        request: GraphQLRequest,
        operation: &mut Option<String>,
    ) -> Result<execute::Response, RequestError> {
        let (hash, plan) = self.plan_for(&request)?;
        *operation = Some(plan.name.clone().unwrap_or_default());
        let span = tracing::Span::current();
        span.record("operation", plan.name.as_deref().unwrap_or(""));
        span.record("hash", hash.as_str());
        if method == Method::GET && plan.kind == OperationType::Mutation {
            return Err(RequestError::new(
                ErrorCode::MethodNotAllowed,
                "mutations cannot be sent with GET: use POST",
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED));
        }
        let mut context = RequestContext {
            operation: plan.name.clone().unwrap_or_default(),
            ..RequestContext::default()
        };
        let headers = Arc::new(headers);
        let filled = self
            .run_policies(
                &plan,
                &hash,
                &headers,
                request.variables.as_ref(),
                &mut context,
            )
            .await?;
        let variables = coerce_variables(
            &self.registry.supergraph.schema,
            &plan,
            request.variables,
            filled,
        )?;
        if plan.introspection {
            return Ok(execute::introspect(
                &self.registry.supergraph.schema,
                &self.registry.implementers,
                &plan,
                variables,
            ));
        }
        context.client_headers = headers;
        tracing::debug!(operation = plan.name.as_deref().unwrap_or(""), "executing");
        Ok(execute::execute(&plan, self.upstreams, &variables, &context).await)
    }

    /// Runs the request hook of every policy plugin in order, showing them `headers` (each
    /// reads what it is shown); returns the internal variables they filled, and adds their
    /// upstream headers to `context`.
    async fn run_policies(
        &self,
        plan: &Plan,
        hash: &str,
        headers: &Arc<hyper::HeaderMap>,
        variables: Option<&apollo_compiler::response::JsonValue>,
        context: &mut RequestContext,
    ) -> Result<Vec<(String, serde_json::Value)>, RequestError> {
        let mut filled = Vec::new();
        if self.policies.is_empty() {
            return Ok(filled);
        }
        let variables_json = match variables {
            Some(v) if !v.is_null() => serde_json::to_string(v).expect("JSON values serialize"),
            _ => "{}".to_string(),
        };
        let name = plan.name.as_deref().unwrap_or("");
        for policy in self.policies {
            let decision = policy
                .on_request(name, hash, headers.clone(), &variables_json)
                .await
                .map_err(|e| {
                    let status = StatusCode::from_u16(e.status()).expect("a valid status");
                    RequestError::new(e.code(), e.to_string()).with_status(status)
                })?;
            match decision {
                Decision::Deny(d) => {
                    tracing::info!(plugin = policy.name(), code = %d.code, "request denied by policy");
                    let mut error = RequestError::new(ErrorCode::PolicyDenied, d.message)
                        .with_status(
                            StatusCode::from_u16(d.status).unwrap_or(StatusCode::FORBIDDEN),
                        );
                    error.plugin_code = Some(d.code);
                    return Err(error);
                }
                Decision::Allow(grant) => {
                    for (name, value) in grant.variables {
                        // A global policy fills variables for every operation: those an
                        // operation does not declare (or that an `@export` fills) are not its
                        // concern; a client's variable it may never override.
                        let declared = plan
                            .policy_operation
                            .variables
                            .iter()
                            .any(|v| v.name == name.as_str());
                        if !declared {
                            continue;
                        }
                        if !plan.internal.contains(&name) {
                            return Err(RequestError::new(
                                ErrorCode::PluginFailed,
                                format!(
                                    "plugin `{}` set variable `${name}`, which operation `{}` takes from the client: policies fill only @internal variables",
                                    policy.name(),
                                    plan.name.as_deref().unwrap_or("<anonymous>")
                                ),
                            )
                            .with_status(StatusCode::INTERNAL_SERVER_ERROR));
                        }
                        filled.retain(|(n, _)| *n != name);
                        filled.push((name, value));
                    }
                    context.upstream_headers.extend(grant.upstream_headers);
                }
            }
        }
        Ok(filled)
    }

    fn plan_for(&self, request: &GraphQLRequest) -> Result<(String, Arc<Plan>), RequestError> {
        let (hash, entry) = match request.document()? {
            DocumentRef::Hash(hash) => {
                let entry = self.registry.get(&hash).ok_or_else(|| {
                    RequestError::new(
                        ErrorCode::PersistedQueryNotFound,
                        format!("no persisted operation has the hash {hash}"),
                    )
                })?;
                (hash, entry)
            }
            DocumentRef::Text(text) => {
                let hash = crate::operations::hash(&text);
                let entry = self.registry.get(&hash).ok_or_else(|| {
                RequestError::new(
                    ErrorCode::OperationNotPersisted,
                    "only persisted operations are accepted: add this document to the operations folder, run `joinery build`, and send its hash",
                )
            })?;
                (hash, entry)
            }
        };
        let plan = match &request.operation_name {
            Some(name) => entry
                .plans
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name.as_str()))
                .map(|(_, p)| p.clone())
                .ok_or_else(|| {
                    RequestError::new(
                        ErrorCode::OperationNotFound,
                        format!("the persisted document has no operation named `{name}`"),
                    )
                }),
            None if entry.plans.len() == 1 => Ok(entry.plans[0].1.clone()),
            None => Err(RequestError::new(
                ErrorCode::OperationNameRequired,
                "the persisted document holds several operations: set `operationName`",
            )),
        }?;
        Ok((hash, plan))
    }
}

/// Coerces the client's variables with the spec's rules against the operation's definitions.
fn coerce_variables(
    schema: &apollo_compiler::validation::Valid<apollo_compiler::Schema>,
    plan: &Plan,
    variables: Option<apollo_compiler::response::JsonValue>,
    filled: Vec<(String, serde_json::Value)>,
) -> Result<JsonMap, RequestError> {
    let invalid = |m: String| RequestError::new(ErrorCode::InvalidVariables, m).quoting_values();
    let values = match variables {
        None | Some(apollo_compiler::response::JsonValue::Null) => JsonMap::new(),
        Some(apollo_compiler::response::JsonValue::Object(map)) => map,
        Some(_) => return Err(invalid("`variables` must be a JSON object".into())),
    };
    let operation = &plan.client_operation;
    for name in values.keys() {
        if plan.internal.iter().any(|v| v == name.as_str()) {
            return Err(invalid(format!(
                "variable `${}` is internal: the gateway fills it from `@export`, and clients cannot set it",
                name.as_str()
            )));
        }
        if !operation.variables.iter().any(|v| v.name == name.as_str()) {
            return Err(invalid(format!(
                "variable `${}` is not defined by operation `{}`",
                name.as_str(),
                plan.name.as_deref().unwrap_or("<anonymous>")
            )));
        }
    }
    let mut values = values;
    let operation =
        if filled.is_empty() && !plan.internal.iter().any(|v| !plan.exported.contains(v)) {
            operation
        } else {
            // Variables policies fill are coerced with the client's, against their declared types.
            for (name, value) in filled {
                values.insert(
                    name.as_str(),
                    serde_json::from_value(value).expect("JSON values convert"),
                );
            }
            &plan.policy_operation
        };
    apollo_compiler::request::coerce_variable_values(schema, operation, &values)
        .map(|valid| valid.into_inner())
        .map_err(|e| invalid(e.message().to_string()))
}
