//! Persisted operations: reading `operations/`, validating against the supergraph, hashing,
//! and the manifest that `joinery serve` loads.

mod import;
mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apollo_compiler::executable::OperationType;
use apollo_compiler::validation::Valid;
use apollo_compiler::ExecutableDocument;
use sha2::{Digest, Sha256};

use crate::diagnostic::{read_text, Diagnostic, Diagnostics, FileError, Position};
use crate::schema::Supergraph;

pub(crate) use import::import_manifest;
pub use manifest::{
    Manifest, ManifestDocument, ManifestError, ManifestOperation, ManifestVariable,
};

/// The sha256 of a document's text as lower-case hex: the id clients send.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A document read from the operations folder or an imported client manifest.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Where it came from: a file, or `manifest.json` plus the entry.
    pub(crate) origin: PathBuf,
    /// The exact registered text (the hash is computed over it).
    pub(crate) text: String,
    /// Where in `origin` the document text starts, for imported entries whose errors are
    /// reported at the entry (their body has no lines of its own in the file).
    pub(crate) entry_position: Option<Position>,
}

/// A validated document with its hash.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    /// sha256 of `source.text`, hex.
    pub(crate) hash: String,
    /// The document as read.
    pub(crate) source: Source,
    /// The parsed and validated document.
    pub(crate) document: Arc<Valid<ExecutableDocument>>,
}

/// Reads every `*.graphql` file below `dir` (sorted, so builds are reproducible).
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<Source>, FileError> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = read_text(&path)?;
            Ok(Source {
                origin: path,
                text,
                entry_position: None,
            })
        })
        .collect()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileError> {
    let read_err = |source| FileError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "graphql" || e == "gql")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Validates every source against the supergraph and returns the valid documents with the
/// problems of the others: GraphQL validation errors, subscriptions, and operation names used
/// by two different documents. Identical documents (same hash) are registered once.
pub(crate) fn register(
    supergraph: &Supergraph,
    sources: Vec<Source>,
) -> (Vec<Registered>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut registered: Vec<Registered> = Vec::new();
    let mut by_hash: HashMap<String, usize> = HashMap::new();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for source in sources {
        let hash = hash(&source.text);
        if by_hash.contains_key(&hash) {
            continue;
        }
        let document = match validate(supergraph, &source) {
            Ok(doc) => doc,
            Err(d) => {
                diags.0.extend(d);
                continue;
            }
        };
        let mut ok = true;
        for op in document.operations.iter() {
            let at = |node_loc: Option<apollo_compiler::parser::SourceSpan>| {
                position(&source, &document, node_loc)
            };
            if op.operation_type == OperationType::Subscription {
                diags.0.push(Diagnostic {
                    position: at(op.location()),
                    message:
                        "subscriptions are not supported by Joinery; use a query or a mutation"
                            .into(),
                });
                ok = false;
            }
            if let Some(name) = &op.name {
                if let Some(first) = names.get(name.as_str()) {
                    diags.0.push(Diagnostic {
                        position: at(name.location().or(op.location())),
                        message: format!(
                            "operation name `{name}` is already used in {}; operation names must be unique",
                            first.display()
                        ),
                    });
                    ok = false;
                } else {
                    names.insert(name.to_string(), source.origin.clone());
                }
            }
        }
        if ok {
            by_hash.insert(hash.clone(), registered.len());
            registered.push(Registered {
                hash,
                source,
                document: Arc::new(document),
            });
        }
    }
    (registered, diags)
}

/// Parses and validates one document with the full set of GraphQL validation rules.
pub(crate) fn validate(
    supergraph: &Supergraph,
    source: &Source,
) -> Result<Valid<ExecutableDocument>, Vec<Diagnostic>> {
    let document = ExecutableDocument::parse_and_validate(
        &supergraph.schema,
        source.text.as_str(),
        &source.origin,
    )
    .map_err(|with| {
        with.errors
            .iter()
            .map(|d| {
                let (line, column) = crate::diagnostic::line_column(&d);
                located(source, line, column, d.error.to_string())
            })
            .collect::<Vec<_>>()
    })?;
    if document.operations.is_empty() {
        return Err(vec![located(
            source,
            1,
            1,
            "the document has no operation; persisted documents hold at least one query or mutation".into(),
        )]);
    }
    Ok(document)
}

fn located(source: &Source, line: usize, column: usize, message: String) -> Diagnostic {
    match &source.entry_position {
        None => Diagnostic {
            position: Position {
                path: source.origin.clone(),
                line,
                column,
            },
            message,
        },
        Some(entry) => Diagnostic {
            position: entry.clone(),
            message: format!("in the entry's document at {line}:{column}: {message}"),
        },
    }
}

fn position(
    source: &Source,
    document: &ExecutableDocument,
    span: Option<apollo_compiler::parser::SourceSpan>,
) -> Position {
    let (line, column) = span
        .and_then(|s| s.line_column_range(&document.sources))
        .map_or((1, 1), |r| (r.start.line, r.start.column));
    located(source, line, column, String::new()).position
}
