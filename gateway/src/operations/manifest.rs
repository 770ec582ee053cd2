//! The manifest `joinery build` writes and `joinery serve` loads: the upstream schemas the
//! operations were validated against, and every registered document by hash.

use std::path::Path;

use apollo_compiler::executable::OperationType;
use serde::{Deserialize, Serialize};

use super::Registered;
use crate::schema::UpstreamSdl;

/// Bumped whenever the manifest's shape changes incompatibly.
pub(crate) const MANIFEST_VERSION: u32 = 1;
const FORMAT: &str = "joinery-manifest";

/// The build output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `joinery-manifest`.
    pub format: String,
    /// `MANIFEST_VERSION` at the time of writing.
    pub version: u32,
    /// The upstream schemas as loaded at build time (so serving needs no introspection).
    pub upstreams: Vec<UpstreamSdl>,
    /// The registered documents.
    pub documents: Vec<ManifestDocument>,
}

/// One registered document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestDocument {
    /// sha256 of `document`, hex.
    pub hash: String,
    /// Where the document was read from.
    pub origin: String,
    /// The registered text.
    pub document: String,
    /// The operations it holds.
    pub operations: Vec<ManifestOperation>,
}

/// One operation of a registered document, as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestOperation {
    /// The operation name (`null` for an anonymous operation).
    pub name: Option<String>,
    /// `query` or `mutation`.
    pub kind: String,
    /// The variables a client may set (`@internal` ones are left out).
    pub variables: Vec<ManifestVariable>,
}

/// A variable of an operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestVariable {
    /// Name without `$`.
    pub name: String,
    /// GraphQL type, e.g. `[ID!]!`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether a client must provide it (non-null without default).
    pub required: bool,
}

/// Why a manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// I/O failure.
    #[error("cannot {action} manifest {path}: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The manifest path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest has not been built yet.
    #[error("manifest {path} does not exist: run `joinery build` first")]
    Missing {
        /// The manifest path.
        path: std::path::PathBuf,
    },
    /// Not a Joinery manifest, or from an incompatible version.
    #[error(
        "{path} is not a usable Joinery manifest: {message}; run `joinery build` to write it again"
    )]
    Invalid {
        /// The manifest path.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Manifest {
    /// Describes the registered documents.
    pub(crate) fn new(upstreams: Vec<UpstreamSdl>, registered: &[Registered]) -> Self {
        let documents = registered
            .iter()
            .map(|r| ManifestDocument {
                hash: r.hash.clone(),
                origin: r.source.origin.display().to_string(),
                document: r.source.text.clone(),
                operations: r
                    .document
                    .operations
                    .iter()
                    .map(|op| ManifestOperation {
                        name: op.name.as_ref().map(|n| n.to_string()),
                        kind: match op.operation_type {
                            OperationType::Query => "query",
                            OperationType::Mutation => "mutation",
                            OperationType::Subscription => "subscription",
                        }
                        .into(),
                        variables: op
                            .variables
                            .iter()
                            .filter(|v| !v.directives.has("internal"))
                            .map(|v| ManifestVariable {
                                name: v.name.to_string(),
                                ty: v.ty.to_string(),
                                required: v.ty.is_non_null() && v.default_value.is_none(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Manifest {
            format: FORMAT.into(),
            version: MANIFEST_VERSION,
            upstreams,
            documents,
        }
    }

    /// Writes the manifest atomically (a temporary file renamed into place), so a failed
    /// build never leaves a half-written manifest behind.
    pub(crate) fn write(&self, path: &Path) -> Result<(), ManifestError> {
        let io = |source| ManifestError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a manifest written by `joinery build`.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ManifestError::Missing {
                path: path.to_path_buf(),
            },
            _ => ManifestError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            },
        })?;
        let invalid = |message: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if manifest.format != FORMAT {
            return Err(invalid(format!("format is {:?}", manifest.format)));
        }
        if manifest.version != MANIFEST_VERSION {
            return Err(invalid(format!(
                "version {} (this gateway reads version {MANIFEST_VERSION})",
                manifest.version
            )));
        }
        Ok(manifest)
    }
}
