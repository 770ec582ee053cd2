//! The errors of an executed response: the gateway's own, the introspection's, and those
//! upstreams sent, checked and passed on to the client.

use apollo_compiler::parser::LineColumn;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error_code::ErrorCode;

/// What an upstream error without a usable `message` says.
const NO_MESSAGE: &str = "the upstream sent an error without a message";

/// One entry of a response's `errors`, written in the spec's order: `message`, `locations`,
/// `path`, `extensions`, and nothing else (the spec puts anything more in `extensions`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GraphQLError {
    message: String,
    /// Introspection errors only: an upstream error's locations point into the upstream's
    /// document, which the client never saw.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<LineColumn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Vec<PathSegment>>,
    /// `code` for the gateway's own errors, what an upstream sent for its errors, and
    /// `upstream` for both when an upstream is concerned.
    #[serde(skip_serializing_if = "Map::is_empty")]
    extensions: Map<String, Value>,
}

/// One step of an error's path.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum PathSegment {
    /// A response key.
    Key(String),
    /// A list index.
    Index(usize),
}

impl PathSegment {
    /// The response key, when the step is one.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            PathSegment::Key(key) => Some(key),
            PathSegment::Index(_) => None,
        }
    }

    /// The list index, when the step is one.
    pub(crate) fn index(&self) -> Option<usize> {
        match self {
            PathSegment::Index(i) => Some(*i),
            PathSegment::Key(_) => None,
        }
    }

    /// An upstream's path step: a string or an index, anything else is `None`.
    fn from_upstream(step: Value) -> Option<Self> {
        match step {
            Value::String(key) => Some(PathSegment::Key(key)),
            Value::Number(n) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .map(PathSegment::Index),
            _ => None,
        }
    }
}

impl GraphQLError {
    /// The gateway's own error: `message`, with `code` in `extensions`.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut extensions = Map::new();
        extensions.insert("code".into(), Value::from(code.as_str()));
        GraphQLError {
            message: message.into(),
            locations: Vec::new(),
            path: None,
            extensions,
        }
    }

    /// An error `upstream` sent, checked and named in `extensions.upstream`:
    ///
    /// - not an object: its JSON text is the message;
    /// - `message` missing or null: "the upstream sent an error without a message"; another
    ///   non-string: its JSON text;
    /// - `path` null: no path; not a list of keys and non-negative integer indices: dropped
    ///   (logged), so the error counts as one without a path;
    /// - `extensions` not an object: dropped;
    /// - `locations` (they point into the upstream's document, which the client never saw)
    ///   and any other member: dropped.
    pub(crate) fn from_upstream(error: Value, upstream: &str) -> Self {
        let mut members = match error {
            Value::Object(members) => members,
            other => Map::from_iter([("message".to_string(), Value::from(other.to_string()))]),
        };
        let message = match members.remove("message") {
            Some(Value::String(message)) => message,
            None | Some(Value::Null) => NO_MESSAGE.to_string(),
            Some(other) => other.to_string(),
        };
        let path = match members.remove("path") {
            None | Some(Value::Null) => None,
            Some(Value::Array(steps)) => {
                let path: Option<Vec<_>> =
                    steps.into_iter().map(PathSegment::from_upstream).collect();
                if path.is_none() {
                    tracing::debug!(
                        upstream,
                        "dropped an upstream error's path: a step is neither a key nor an index"
                    );
                }
                path
            }
            Some(_) => {
                tracing::debug!(upstream, "dropped an upstream error's path: not a list");
                None
            }
        };
        let extensions = match members.remove("extensions") {
            Some(Value::Object(extensions)) => extensions,
            _ => Map::new(),
        };
        GraphQLError {
            message,
            locations: Vec::new(),
            path,
            extensions,
        }
        .with_upstream(upstream)
    }

    /// Names `upstream` in `extensions.upstream`.
    pub(crate) fn with_upstream(mut self, upstream: &str) -> Self {
        self.extensions
            .insert("upstream".into(), Value::from(upstream));
        self
    }

    /// The path, when the error has one.
    pub(crate) fn path(&self) -> Option<&[PathSegment]> {
        self.path.as_deref()
    }

    /// The path to edit in place, when the error has one.
    pub(crate) fn path_mut(&mut self) -> Option<&mut Vec<PathSegment>> {
        self.path.as_mut()
    }

    /// Sets the path.
    pub(crate) fn set_path(&mut self, path: Vec<PathSegment>) {
        self.path = Some(path);
    }

    /// Removes the path.
    pub(crate) fn remove_path(&mut self) {
        self.path = None;
    }
}

impl From<apollo_compiler::response::GraphQLError> for GraphQLError {
    fn from(error: apollo_compiler::response::GraphQLError) -> Self {
        use apollo_compiler::response::ResponseDataPathSegment as Step;
        let path = (!error.path.is_empty()).then(|| {
            error
                .path
                .into_iter()
                .map(|step| match step {
                    Step::Field(name) => PathSegment::Key(name.as_str().to_string()),
                    Step::ListIndex(i) => PathSegment::Index(i),
                })
                .collect()
        });
        let extensions = match serde_json::to_value(error.extensions) {
            Ok(Value::Object(extensions)) => extensions,
            _ => Map::new(),
        };
        GraphQLError {
            message: error.message,
            locations: error.locations,
            path,
            extensions,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn upstream(error: Value) -> GraphQLError {
        GraphQLError::from_upstream(error, "up")
    }

    fn text(error: &GraphQLError) -> String {
        serde_json::to_string(error).unwrap()
    }

    #[test]
    fn own_errors_are_written_in_the_specs_order() {
        let mut error = GraphQLError::new(ErrorCode::JoinValueNull, "m").with_upstream("u");
        error.set_path(vec![PathSegment::Key("a".into()), PathSegment::Index(2)]);
        assert_eq!(
            text(&error),
            r#"{"message":"m","path":["a",2],"extensions":{"code":"JOIN_VALUE_NULL","upstream":"u"}}"#
        );
    }

    /// Whatever order an upstream writes its members in, they come out in the spec's, less
    /// its locations and any member the spec does not define.
    #[test]
    fn upstream_errors_are_written_in_the_specs_order_less_locations_and_extras() {
        let error = upstream(json!({
            "extensions": {"code": "X", "upstream": "spoofed"}, "path": ["a", 0],
            "locations": [{"line": 1, "column": 1}], "extra": true, "message": "m"
        }));
        assert_eq!(
            text(&error),
            r#"{"message":"m","path":["a",0],"extensions":{"code":"X","upstream":"up"}}"#
        );
        let mut error = upstream(json!({"path": ["a"], "message": "m"}));
        error.remove_path();
        assert_eq!(
            text(&error),
            r#"{"message":"m","extensions":{"upstream":"up"}}"#
        );
    }

    #[test]
    fn malformed_upstream_errors_are_made_valid() {
        let cases = [
            (
                json!("boom"),
                r#"{"message":"\"boom\"","extensions":{"upstream":"up"}}"#,
            ),
            (
                json!({}),
                r#"{"message":"the upstream sent an error without a message","extensions":{"upstream":"up"}}"#,
            ),
            (
                json!({"message": null}),
                r#"{"message":"the upstream sent an error without a message","extensions":{"upstream":"up"}}"#,
            ),
            (
                json!({"message": 5}),
                r#"{"message":"5","extensions":{"upstream":"up"}}"#,
            ),
            (
                json!({"message": "m", "extensions": []}),
                r#"{"message":"m","extensions":{"upstream":"up"}}"#,
            ),
        ];
        for (sent, written) in cases {
            assert_eq!(text(&upstream(sent.clone())), written, "{sent}");
        }
    }

    /// A path that is not a list of keys and indices is dropped whole: a step that cannot be
    /// placed makes the rest meaningless.
    #[test]
    fn malformed_upstream_paths_are_dropped() {
        for path in [
            json!(null),
            json!("a"),
            json!({"a": 0}),
            json!(["a", -1]),
            json!(["a", 1.5]),
            json!(["a", 1.0]),
            json!(["a", null]),
            json!(["a", {"i": 0}]),
            json!(["a", 1e20]),
        ] {
            let error = upstream(json!({"message": "m", "path": path}));
            assert_eq!(error.path(), None, "{path}");
        }
        let error = upstream(json!({"message": "m", "path": ["a", 0, "b"]}));
        assert_eq!(
            error.path().unwrap(),
            [
                PathSegment::Key("a".into()),
                PathSegment::Index(0),
                PathSegment::Key("b".into())
            ]
        );
    }

    #[test]
    fn introspection_errors_are_written_in_apollo_compilers_order() {
        use apollo_compiler::response::{GraphQLError as Apollo, ResponseDataPathSegment as Step};
        let mut error = Apollo::new("m", None, &Default::default());
        error.locations = vec![LineColumn { line: 2, column: 3 }];
        error.path = vec![Step::Field(apollo_compiler::name!("a")), Step::ListIndex(1)];
        let before = serde_json::to_string(&error).unwrap();
        assert_eq!(text(&GraphQLError::from(error)), before);
        assert_eq!(
            before,
            r#"{"message":"m","locations":[{"line":2,"column":3}],"path":["a",1]}"#
        );
    }
}
