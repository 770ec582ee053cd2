//! The codes written to `extensions.code` of every error the gateway itself reports.

use serde::Serialize;

/// A client-visible error code; see the README's error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ErrorCode {
    /// The request is not a well-formed GraphQL-over-HTTP request (malformed JSON, wrong field types, missing id).
    BadRequest,
    /// The request body exceeds `server.max_request_bytes`.
    RequestTooLarge,
    /// The request body did not arrive within `server.body_timeout`.
    RequestTimeout,
    /// A POST whose content type is not `application/json`.
    UnsupportedMediaType,
    /// The `Accept` header admits no response type the gateway produces.
    NotAcceptable,
    /// A mutation sent with GET, or a method other than GET/POST.
    MethodNotAllowed,
    /// No registered document has the requested hash.
    PersistedQueryNotFound,
    /// Query text was sent whose hash is not registered: only persisted operations run.
    OperationNotPersisted,
    /// Both query text and a hash were sent, and they disagree.
    PersistedQueryHashMismatch,
    /// `documentId` is not of the form `sha256:<64 hex digits>`.
    InvalidDocumentId,
    /// The document holds several operations and `operationName` is missing.
    OperationNameRequired,
    /// The document holds no operation named `operationName`.
    OperationNotFound,
    /// A variable is missing, has the wrong type, or `variables` is not an object.
    InvalidVariables,
    /// An upstream did not answer within its timeout.
    UpstreamTimeout,
    /// An upstream could not be reached.
    UpstreamUnavailable,
    /// An upstream answered with something that is not a usable GraphQL response.
    UpstreamBadResponse,
    /// A `_join` would fan out to more objects than `server.max_join_fanout`.
    JoinFanoutExceeded,
    /// A value a join needs was exported as null, so the joined field cannot be fetched.
    JoinValueNull,
    /// A plugin trapped, exceeded its memory limit or answered badly.
    PluginFailed,
    /// A plugin call ran past its time limit.
    PluginTimeout,
    /// A policy plugin refused an upstream request (the plugin's own code is in the message).
    PolicyDenied,
}

impl ErrorCode {
    /// The code as written in responses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::OperationNotPersisted => "OPERATION_NOT_PERSISTED",
            Self::PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            Self::InvalidDocumentId => "INVALID_DOCUMENT_ID",
            Self::OperationNameRequired => "OPERATION_NAME_REQUIRED",
            Self::OperationNotFound => "OPERATION_NOT_FOUND",
            Self::InvalidVariables => "INVALID_VARIABLES",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Self::UpstreamBadResponse => "UPSTREAM_BAD_RESPONSE",
            Self::JoinFanoutExceeded => "JOIN_FANOUT_EXCEEDED",
            Self::JoinValueNull => "JOIN_VALUE_NULL",
            Self::PluginFailed => "PLUGIN_FAILED",
            Self::PluginTimeout => "PLUGIN_TIMEOUT",
            Self::PolicyDenied => "POLICY_DENIED",
        }
    }
}
