//! `joinery plugin call`: one hook of one configured plugin, called with input from a JSON
//! file, without a gateway or upstreams, so that plugin authors iterate in seconds. The plugin
//! runs with the grants and limits its `[plugins.<name>]` table gives it, as under `serve`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::plugin::{Decision, Plugins, ResponseDecision, UpstreamDecision};

/// The hook to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    /// A policy's `on-request`: input `{operation_name, operation_hash, headers, variables}`.
    Request,
    /// A policy's `on-upstream-request`: input `{namespace, operation_name, headers}`.
    UpstreamRequest,
    /// A policy's `on-upstream-response`: input `{namespace, operation_name, status, headers,
    /// body}` (`body` as text or as JSON).
    UpstreamResponse,
    /// A resolver's `resolve`: input `{query, variables, operation_name, headers}`, the query
    /// written against the plugin's own schema (no namespace).
    Resolve,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    operation_name: Option<String>,
    operation_hash: String,
    namespace: Option<String>,
    headers: BTreeMap<String, String>,
    variables: Option<Value>,
    status: Option<u16>,
    body: Option<Value>,
    query: Option<String>,
}

/// What one call gave, for printing.
#[derive(Debug)]
pub struct Called {
    /// The hook's answer, as JSON.
    pub answer: Value,
    /// How long creating the instance took, in microseconds.
    pub(crate) instantiate_us: u128,
    /// How long the call took on the warm instance, in microseconds.
    pub(crate) call_us: u128,
    /// The largest linear memory the instance grew to, and the plugin's `max_memory`.
    pub memory: (usize, usize),
}

/// Calls `hook` of plugin `name` with `input` (JSON text).
pub async fn call(
    plugins: &Plugins,
    name: &str,
    hook: Hook,
    input: &str,
) -> anyhow::Result<Called> {
    let input: Input = serde_json::from_str(input).map_err(|e| {
        let hook = clap::ValueEnum::to_possible_value(&hook).map(|v| v.get_name().to_string());
        anyhow::anyhow!(
            "the input is not what `--hook {}` takes: {e}",
            hook.unwrap_or_default()
        )
    })?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &input.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| anyhow::anyhow!("`{name}` in the input's `headers` is no header name"))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            anyhow::anyhow!("the value of `{name}` in the input's `headers` is no header value")
        })?;
        headers.append(name, value);
    }
    let operation = input.operation_name.clone().unwrap_or_default();
    let namespace = input.namespace.clone().unwrap_or_else(|| name.to_string());
    if hook == Hook::Resolve {
        let plugin = plugins
            .resolver(name)
            .ok_or_else(|| anyhow::anyhow!("no resolver plugin named `{name}` is configured"))?;
        let ((), instantiate_us) = timed(plugin.prewarm(1)).await?;
        let query = input
            .query
            .ok_or_else(|| anyhow::anyhow!("`--hook resolve` takes a `query`"))?;
        let variables = match input.variables {
            Some(Value::Object(map)) => map,
            None | Some(Value::Null) => Default::default(),
            Some(_) => anyhow::bail!("`variables` must be an object"),
        };
        let operation = input.operation_name.as_deref();
        let call = crate::upstream::call_resolver(plugin, &query, operation, &variables, headers);
        let (answer, call_us) = timed(call).await?;
        return Ok(Called {
            answer,
            instantiate_us,
            call_us,
            memory: plugin.memory(),
        });
    }
    let plugin = plugins
        .policy(name)
        .ok_or_else(|| anyhow::anyhow!("no policy plugin named `{name}` is configured"))?;
    let ((), instantiate_us) = timed(plugin.prewarm(1)).await?;
    let started = Instant::now();
    let answer = match hook {
        Hook::Request => {
            let variables = input.variables.unwrap_or_else(|| json!({})).to_string();
            let hash = &input.operation_hash;
            match plugin
                .on_request(&operation, hash, headers.into(), &variables)
                .await?
            {
                Decision::Allow(grant) => json!({ "allow": {
                    "variables": grant.variables.into_iter().collect::<serde_json::Map<_, _>>(),
                    "upstream_headers": header_json(&grant.upstream_headers),
                }}),
                Decision::Deny(d) => denial(d),
            }
        }
        Hook::UpstreamRequest => {
            match plugin
                .on_upstream_request(&namespace, &operation, headers)
                .await?
            {
                UpstreamDecision::Proceed { set, remove } => json!({ "proceed": {
                    "set_headers": header_json(&set),
                    "remove_headers": remove,
                }}),
                UpstreamDecision::Deny(d) => denial(d),
            }
        }
        Hook::UpstreamResponse => {
            let body = match input.body {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let status = input.status.unwrap_or(200);
            match plugin
                .on_upstream_response(&namespace, &operation, status, headers, body)
                .await?
            {
                ResponseDecision::Keep => json!("keep"),
                ResponseDecision::Replace(body) => json!({ "replace": body }),
                ResponseDecision::Deny(d) => denial(d),
            }
        }
        Hook::Resolve => unreachable!("handled above"),
    };
    Ok(Called {
        answer,
        instantiate_us,
        call_us: started.elapsed().as_micros(),
        memory: plugin.memory(),
    })
}

/// `work`'s result and how long it took, in microseconds.
async fn timed<T, E>(
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<(T, u128), E> {
    let started = Instant::now();
    let value = work.await?;
    Ok((value, started.elapsed().as_micros()))
}

fn denial(d: crate::plugin::Denial) -> Value {
    json!({ "deny": { "status": d.status, "code": d.code, "message": d.message } })
}

fn header_json(headers: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)]) -> Value {
    headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.to_string(), Value::from(value))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
