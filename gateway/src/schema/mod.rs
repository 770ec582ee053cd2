//! Upstream schemas and the composed, namespaced supergraph.

mod compose;
pub(crate) mod federation;
pub(crate) mod introspect;

use std::path::PathBuf;

use apollo_compiler::validation::Valid;
use apollo_compiler::Schema;

use crate::config::{SchemaSource, Transport, UpstreamConfig};
use crate::diagnostic::{Diagnostic, Diagnostics, Position};
use crate::plugin::Plugins;

pub(crate) use compose::{compose, Supergraph, JOIN_FIELD};
pub(crate) use federation::{EntityLookup, ENTITIES_FIELD};

/// The schema of one upstream as it defines it (before namespacing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamSdl {
    /// The upstream's namespace.
    pub namespace: String,
    /// Where the SDL came from: a file path or `introspection of <url>`.
    pub origin: String,
    /// The SDL text.
    pub sdl: String,
    /// Whether the SDL is an Apollo Federation subgraph's (`@key`, `_entities`…).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub federation: bool,
}

/// Why a schema could not be loaded or composed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// An SDL file could not be read.
    #[error("{written}: upstream `{namespace}`: cannot read schema file {path}: {source}")]
    Read {
        /// The upstream.
        namespace: String,
        /// The file.
        path: PathBuf,
        /// Where the config names it.
        written: crate::diagnostic::Position,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Introspection of a live upstream failed.
    #[error("upstream `{namespace}`: introspection of {url} failed: {message}")]
    Introspection {
        /// The upstream.
        namespace: String,
        /// Its URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A resolver plugin did not give its schema.
    #[error("upstream `{namespace}`: resolver plugin `{plugin}` gave no schema: {message}")]
    Plugin {
        /// The upstream.
        namespace: String,
        /// The plugin.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// An upstream schema is not valid GraphQL, or composition failed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Loads an upstream's SDL from its file, by introspecting it, or from its resolver plugin.
pub(crate) async fn load(
    upstream: &UpstreamConfig,
    plugins: &Plugins,
) -> Result<UpstreamSdl, SchemaError> {
    match &upstream.schema {
        SchemaSource::Plugin(name) => {
            let fail = |message: String| SchemaError::Plugin {
                namespace: upstream.namespace.clone(),
                plugin: name.clone(),
                message,
            };
            let plugin = plugins
                .resolver(name)
                .ok_or_else(|| fail("it is not loaded as a resolver plugin".into()))?;
            let sdl = plugin.schema().await.map_err(|e| fail(e.to_string()))?;
            Ok(UpstreamSdl {
                namespace: upstream.namespace.clone(),
                origin: format!("schema of plugin `{name}`"),
                sdl,
                federation: false,
            })
        }
        SchemaSource::File(path, written) => {
            let sdl =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| SchemaError::Read {
                        namespace: upstream.namespace.clone(),
                        path: path.clone(),
                        written: written.clone(),
                        source,
                    })?;
            Ok(UpstreamSdl {
                namespace: upstream.namespace.clone(),
                origin: path.display().to_string(),
                sdl,
                federation: upstream.federation,
            })
        }
        SchemaSource::Introspection => introspect(upstream).await,
    }
}

async fn introspect(upstream: &UpstreamConfig) -> Result<UpstreamSdl, SchemaError> {
    let url = match &upstream.transport {
        Transport::Http(url) => url.as_str(),
        Transport::Plugin(_) => unreachable!("plugin upstreams take their schema from the plugin"),
    };
    let fail = |message: String| SchemaError::Introspection {
        namespace: upstream.namespace.clone(),
        url: url.to_string(),
        message,
    };
    let client = reqwest::Client::builder()
        .timeout(upstream.timeout)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let subgraph = |origin: String| async {
        // Introspection loses `@key` and the other federation directives; `_service` keeps them.
        #[derive(serde::Deserialize)]
        struct Service {
            sdl: String,
        }
        #[derive(serde::Deserialize)]
        struct Data {
            #[serde(rename = "_service")]
            service: Service,
        }
        let data: Data = ask(&client, upstream, "query SubgraphSdl { _service { sdl } }")
            .await
            .map_err(|m| {
                fail(format!(
                    "reading the subgraph schema (`_service {{ sdl }}`): {m}"
                ))
            })?;
        Ok(UpstreamSdl {
            namespace: upstream.namespace.clone(),
            origin,
            sdl: data.service.sdl,
            federation: true,
        })
    };
    if upstream.federation {
        return subgraph(format!("_service of {url}")).await;
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "__schema")]
        schema: introspect::IntrospectionSchema,
    }
    let data: Data = ask(&client, upstream, introspect::QUERY)
        .await
        .map_err(|m| fail(format!("the answer is not an introspection result: {m}")))?;
    if data.schema.is_subgraph() {
        return subgraph(format!("_service of {url} (a federation subgraph)")).await;
    }
    Ok(UpstreamSdl {
        namespace: upstream.namespace.clone(),
        origin: format!("introspection of {url}"),
        sdl: data.schema.to_sdl(),
        federation: false,
    })
}

/// Sends `query` to the upstream (with its configured headers) and reads the answer's `data`.
async fn ask<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    upstream: &UpstreamConfig,
    query: &str,
) -> Result<T, String> {
    let Transport::Http(url) = &upstream.transport else {
        unreachable!("only URL upstreams are asked for their schema")
    };
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    for (name, value) in &upstream.headers {
        request = request.header(name, value);
    }
    let response = request
        .body(serde_json::json!({ "query": query }).to_string())
        .send()
        .await
        .map_err(|e| format!("{e} (is the upstream running?)"))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    #[derive(serde::Deserialize)]
    struct Body<T> {
        data: Option<T>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let body: Body<T> = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    body.data
        .ok_or_else(|| format!("no data; errors: {}", serde_json::Value::from(body.errors)))
}

/// Parses and validates one upstream's SDL, reporting problems with positions in its origin.
pub(crate) fn parse_upstream(upstream: &UpstreamSdl) -> Result<Valid<Schema>, Diagnostics> {
    if upstream.federation {
        return federation::parse(upstream);
    }
    Schema::parse_and_validate(&upstream.sdl, &upstream.origin)
        .map_err(|with| diagnostics(upstream, &with.errors))
}

/// An upstream schema's problems, at their positions in its origin.
fn diagnostics(
    upstream: &UpstreamSdl,
    errors: &apollo_compiler::validation::DiagnosticList,
) -> Diagnostics {
    Diagnostics(
        errors
            .iter()
            .map(|d| {
                let (line, column) = crate::diagnostic::line_column(&d);
                Diagnostic {
                    position: Position {
                        path: upstream.origin.clone().into(),
                        line,
                        column,
                    },
                    message: format!("upstream `{}`: {}", upstream.namespace, d.error),
                }
            })
            .collect(),
    )
}
