//! GraphQL-over-HTTP request parsing: POST JSON bodies and GET query strings, with the
//! persisted forms `documentId` and `extensions.persistedQuery.sha256Hash`.

use apollo_compiler::response::JsonValue;
use serde::Deserialize;

use super::RequestError;
use crate::error_code::ErrorCode;

/// A parsed GraphQL request.
// `pub` for the fuzzing API (`Fixture::request_for` and `run`), its only outside user.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLRequest {
    /// Query text, accepted only when its hash is registered.
    #[serde(default)]
    pub(crate) query: Option<String>,
    /// The operation to run.
    #[serde(default)]
    pub(crate) operation_name: Option<String>,
    /// Variable values.
    #[serde(default)]
    pub(crate) variables: Option<JsonValue>,
    /// Extensions, among them `persistedQuery`.
    #[serde(default)]
    pub(crate) extensions: Option<serde_json::Value>,
    /// `sha256:<hex>`.
    #[serde(default)]
    pub(crate) document_id: Option<String>,
}

/// Which registered document a request names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DocumentRef {
    /// By hash (documentId or APQ extension).
    Hash(String),
    /// By text; it runs only if its hash is registered.
    Text(String),
}

impl GraphQLRequest {
    /// Parses a POST body.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        serde_json::from_slice(body).map_err(|e| {
            let what = if e.is_data() {
                "the request body is not a GraphQL request"
            } else {
                "the request body is not valid JSON"
            };
            RequestError::bad_request(format!("{what}: {e}"))
        })
    }

    /// Parses a GET query string (`variables` and `extensions` are JSON-encoded).
    pub(crate) fn from_query_string(query: &str) -> Result<Self, RequestError> {
        let mut req = GraphQLRequest::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let bad = |name: &str, e: serde_json::Error| {
                RequestError::bad_request(format!("the `{name}` parameter is not valid JSON: {e}"))
            };
            // Like a JSON body with a duplicate key: which one counts would be a guess.
            if seen.iter().any(|s| *s == *key) {
                return Err(RequestError::bad_request(format!(
                    "the `{key}` parameter is given more than once"
                )));
            }
            seen.push(key.to_string());
            match &*key {
                "query" => req.query = Some(value.to_string()),
                "operationName" => req.operation_name = Some(value.to_string()),
                "documentId" => req.document_id = Some(value.to_string()),
                "variables" => {
                    req.variables =
                        Some(serde_json::from_str(&value).map_err(|e| bad("variables", e))?)
                }
                "extensions" => {
                    req.extensions =
                        Some(serde_json::from_str(&value).map_err(|e| bad("extensions", e))?)
                }
                _ => {}
            }
        }
        Ok(req)
    }

    /// The document the request names, by the first form present: `documentId`, the APQ
    /// extension, then query text. Text sent together with a hash must match it.
    pub(crate) fn document(&self) -> Result<DocumentRef, RequestError> {
        let apq = self
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .map(|pq| {
                pq.get("sha256Hash").and_then(|h| h.as_str()).ok_or_else(|| {
                    RequestError::bad_request(
                        "`extensions.persistedQuery` must hold `sha256Hash` (a string of 64 hex digits)",
                    )
                })
            })
            .transpose()?;
        let hash =
            match (&self.document_id, apq) {
                (Some(id), _) => {
                    let hex =
                        id.strip_prefix("sha256:")
                            .filter(|h| is_sha256(h))
                            .ok_or_else(|| {
                                RequestError::new(
                        ErrorCode::InvalidDocumentId,
                        format!("documentId {id:?} is not of the form `sha256:<64 hex digits>`"),
                    )
                            })?;
                    Some(hex.to_ascii_lowercase())
                }
                (None, Some(h)) if is_sha256(h) => Some(h.to_ascii_lowercase()),
                (None, Some(h)) => {
                    return Err(RequestError::bad_request(format!(
                        "`extensions.persistedQuery.sha256Hash` {h:?} is not 64 hex digits"
                    )))
                }
                (None, None) => None,
            };
        match (hash, &self.query) {
            (Some(hash), Some(text)) if !text.is_empty() => {
                if crate::operations::hash(text) != hash {
                    return Err(RequestError::new(
                        ErrorCode::PersistedQueryHashMismatch,
                        "the query text does not match the hash sent with it",
                    ));
                }
                Ok(DocumentRef::Hash(hash))
            }
            (Some(hash), _) => Ok(DocumentRef::Hash(hash)),
            (None, Some(text)) => Ok(DocumentRef::Text(text.clone())),
            (None, None) => Err(RequestError::bad_request(
                "the request names no operation: send `documentId` (\"sha256:<hex>\"), `extensions.persistedQuery.sha256Hash`, or registered `query` text",
            )),
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "5e3e0fd6ab9b2a4e9c6c6d67a1a9a3fdb1c5a2d0c5fb0c1b6f2b1a7e4d9c8b7a";

    #[test]
    fn get_parameters_are_decoded() {
        let r = GraphQLRequest::from_query_string(&format!(
            "documentId=sha256%3A{H}&operationName=Q&variables=%7B%22a%22%3A1%7D"
        ))
        .unwrap();
        assert_eq!(r.document().unwrap(), DocumentRef::Hash(H.into()));
        assert_eq!(r.operation_name.as_deref(), Some("Q"));
        assert_eq!(r.variables.unwrap()["a"], JsonValue::from(1));
    }

    #[test]
    fn repeated_get_parameters_are_refused() {
        let e = GraphQLRequest::from_query_string(&format!(
            "documentId=sha256%3A{H}&documentId=sha256%3A{H}"
        ))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e
            .message
            .contains("`documentId` parameter is given more than once"));
    }

    #[test]
    fn bad_ids_are_refused() {
        let r = GraphQLRequest {
            document_id: Some("md5:abc".into()),
            ..Default::default()
        };
        assert_eq!(r.document().unwrap_err().code, ErrorCode::InvalidDocumentId);
        let r = GraphQLRequest::from_json(br#"{"extensions":{"persistedQuery":{"version":1}}}"#)
            .unwrap();
        assert_eq!(r.document().unwrap_err().code, ErrorCode::BadRequest);
    }
}
