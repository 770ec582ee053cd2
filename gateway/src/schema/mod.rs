//! Upstream schemas and the composed, namespaced supergraph.

mod compose;
pub(crate) mod introspect;

use std::path::PathBuf;

use apollo_compiler::validation::Valid;
use apollo_compiler::Schema;

use crate::config::{SchemaSource, Transport, UpstreamConfig};
use crate::diagnostic::{Diagnostic, Diagnostics, Position};
use crate::plugin::Plugins;

pub use compose::{compose, Supergraph, JOIN_FIELD};

/// The schema of one upstream as it defines it (before namespacing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamSdl {
    /// The upstream's namespace.
    pub namespace: String,
    /// Where the SDL came from: a file path or `introspection of <url>`.
    pub origin: String,
    /// The SDL text.
    pub sdl: String,
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
pub async fn load(
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
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    for (name, value) in &upstream.headers {
        request = request.header(name, value);
    }
    let body =
        serde_json::json!({ "query": introspect::QUERY, "operationName": "IntrospectionQuery" });
    let response = request
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| fail(format!("{e} (is the upstream running?)")))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("HTTP status {status}")));
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "__schema")]
        schema: introspect::IntrospectionSchema,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        data: Option<Data>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let body: Body = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("the answer is not an introspection result: {e}")))?;
    let data = body.data.ok_or_else(|| {
        fail(format!(
            "no data; errors: {}",
            serde_json::Value::from(body.errors)
        ))
    })?;
    Ok(UpstreamSdl {
        namespace: upstream.namespace.clone(),
        origin: format!("introspection of {url}"),
        sdl: data.schema.to_sdl(),
    })
}

/// Parses and validates one upstream's SDL, reporting problems with positions in its origin.
pub(crate) fn parse_upstream(upstream: &UpstreamSdl) -> Result<Valid<Schema>, Diagnostics> {
    Schema::parse_and_validate(&upstream.sdl, &upstream.origin).map_err(|with| {
        Diagnostics(
            with.errors
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
    })
}
