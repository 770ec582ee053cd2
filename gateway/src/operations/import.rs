//! Importing manifests made by client tool chains: Apollo's persisted query manifest
//! (`apollo-persisted-query-manifest` version 1) and graphql-codegen's persisted documents
//! (`{ "<hash>": "<document>" }`, the key bare hex or `sha256:<hex>`).

use std::path::Path;

use serde::Deserialize;

use super::{hash, Source};
use crate::diagnostic::{read_text, Diagnostics, FileError, Position};

#[derive(Deserialize)]
struct ApolloManifest {
    format: String,
    version: u32,
    operations: Vec<ApolloOperation>,
}

#[derive(Deserialize)]
struct ApolloOperation {
    id: String,
    body: String,
}

/// Reads a client manifest and returns its documents, and the problems of entries that were
/// refused (a hash that does not match its document), each at the entry's position. An
/// unreadable file or an unknown format is an error of its own.
pub(crate) fn import_manifest(path: &Path) -> Result<(Vec<Source>, Diagnostics), FileError> {
    let text = read_text(path)?;
    let mut diags = Diagnostics::default();
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let offset = offset_of_line_col(&text, e.line(), e.column());
            diags.push(path, &text, offset, format!("invalid JSON: {e}"));
            return Err(FileError::Invalid(diags));
        }
    };
    let entries: Vec<(String, String)> = if value.get("format").is_some() {
        match serde_json::from_value::<ApolloManifest>(value) {
            Ok(m) if m.format == "apollo-persisted-query-manifest" && m.version == 1 => {
                m.operations.into_iter().map(|o| (o.id, o.body)).collect()
            }
            Ok(m) => {
                diags.push(path, &text, 0, format!(
                    "unsupported manifest format {:?} version {}: expected \"apollo-persisted-query-manifest\" version 1",
                    m.format, m.version
                ));
                return Err(FileError::Invalid(diags));
            }
            Err(e) => {
                diags.push(
                    path,
                    &text,
                    0,
                    format!("not an Apollo persisted query manifest: {e}"),
                );
                return Err(FileError::Invalid(diags));
            }
        }
    } else if let serde_json::Value::Object(map) = value {
        let mut entries = Vec::new();
        for (key, doc) in map {
            match doc {
                serde_json::Value::String(doc) => entries.push((key, doc)),
                _ => diags.push(
                    path,
                    &text,
                    find(&text, &key),
                    format!("entry {key:?} must map to the document text (a string)"),
                ),
            }
        }
        entries
    } else {
        diags.push(path, &text, 0,
            "expected an Apollo persisted query manifest or a graphql-codegen persisted documents object (`{\"<sha256>\": \"<document>\"}`)");
        return Err(FileError::Invalid(diags));
    };

    let mut sources = Vec::new();
    for (key, doc) in entries {
        let offset = find(&text, &key);
        let claimed = key
            .strip_prefix("sha256:")
            .unwrap_or(&key)
            .to_ascii_lowercase();
        let actual = hash(&doc);
        if claimed != actual {
            diags.push(path, &text, offset, format!(
                "hash {key} does not match its document (its sha256 is {actual}); regenerate the manifest"
            ));
            continue;
        }
        sources.push(Source {
            origin: path.to_path_buf(),
            text: doc,
            entry_position: Some(Position::at_offset(path, &text, offset)),
        });
    }
    Ok((sources, diags))
}

/// Byte offset of the first occurrence of `"needle"` in `text` (0 if absent).
fn find(text: &str, needle: &str) -> usize {
    text.find(&format!("\"{needle}\"")).unwrap_or(0)
}

fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}
