//! Why a request is refused before execution.

use hyper::StatusCode;

use crate::error_code::ErrorCode;

/// A request that fails before execution: the response has `errors` and no `data`.
#[derive(Debug, Clone)]
pub(crate) struct RequestError {
    /// The error code.
    pub(crate) code: ErrorCode,
    /// The message.
    pub(crate) message: String,
    /// A status that applies whatever the media type (405, 406, 413, 415).
    pub(crate) fixed_status: Option<StatusCode>,
    /// A policy plugin's own code, written instead of `code`.
    pub(crate) plugin_code: Option<String>,
    /// Whether the message quotes values the client sent (variables): those are answered to
    /// the client but never written to the logs.
    pub(crate) quotes_values: bool,
}

impl RequestError {
    /// A request error with `code`.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fixed_status: None,
            plugin_code: None,
            quotes_values: false,
        }
    }

    /// Marks the message as quoting values the client sent, so that it is never logged.
    pub(crate) fn quoting_values(mut self) -> Self {
        self.quotes_values = true;
        self
    }

    /// A malformed request (400 whatever the media type).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message).with_status(StatusCode::BAD_REQUEST)
    }

    /// Sets an HTTP status that applies whatever the media type.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.fixed_status = Some(status);
        self
    }
}
