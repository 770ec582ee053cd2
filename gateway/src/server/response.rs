//! GraphQL-over-HTTP responses: media type negotiation, status codes and encoding.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::Value;

use crate::error_code::ErrorCode;
use crate::pipeline::RequestError;

/// The two response media types of GraphQL-over-HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// `application/graphql-response+json`: status codes tell request errors apart.
    GraphQLResponse,
    /// `application/json`: the legacy type; well-formed requests always get 200.
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            Self::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }

    /// Picks the response type from `Accept`: no header or only wildcards mean
    /// `application/json` (what clients unaware of GraphQL-over-HTTP expect); among named
    /// types the higher quality wins, `application/graphql-response+json` on a tie.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Result<Self, RequestError> {
        let values: Vec<&str> = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Ok(Self::Json);
        }
        let (mut gql, mut json) = (0.0f32, 0.0f32);
        for range in values.iter().flat_map(|v| v.split(',')) {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .filter_map(|q| q.parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            match media.as_str() {
                "application/graphql-response+json" => gql = gql.max(q),
                "application/json" => json = json.max(q),
                "*/*" | "application/*" => json = json.max(q),
                _ => {}
            }
        }
        if gql > 0.0 && gql >= json {
            Ok(Self::GraphQLResponse)
        } else if json > 0.0 {
            Ok(Self::Json)
        } else {
            Err(RequestError::new(
                ErrorCode::NotAcceptable,
                "the Accept header admits neither application/graphql-response+json nor application/json",
            )
            .with_status(StatusCode::NOT_ACCEPTABLE))
        }
    }
}

impl RequestError {
    /// The HTTP response for this error.
    pub(crate) fn into_response(self, media: MediaType) -> Response<Full<Bytes>> {
        let status = self.fixed_status.unwrap_or(match media {
            MediaType::GraphQLResponse => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        });
        let code = self.plugin_code.as_deref().unwrap_or(self.code.as_str());
        let body = serde_json::json!({ "errors": [{ "message": self.message, "extensions": { "code": code } }] });
        let mut response = json_response(status, media, &body);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
        }
        response
    }
}

/// An executed response: 200 whenever `data` is present.
pub(super) fn graphql_response(
    media: MediaType,
    executed: &crate::execute::Response,
) -> Response<Full<Bytes>> {
    bytes_response(StatusCode::OK, media, executed.to_json())
}

/// A JSON response with the given status and media type.
pub(super) fn json_response(
    status: StatusCode,
    media: MediaType,
    body: &Value,
) -> Response<Full<Bytes>> {
    bytes_response(
        status,
        media,
        serde_json::to_vec(body).expect("JSON values serialize"),
    )
}

fn bytes_response(status: StatusCode, media: MediaType, bytes: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(media.as_str()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Result<MediaType, RequestError> {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        MediaType::negotiate(&h)
    }

    #[test]
    fn accept_header_is_negotiated() {
        assert_eq!(
            MediaType::negotiate(&HeaderMap::new()).unwrap(),
            MediaType::Json
        );
        assert_eq!(accept("application/json").unwrap(), MediaType::Json);
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9").unwrap(),
            MediaType::GraphQLResponse
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json").unwrap(),
            MediaType::Json
        );
        assert_eq!(accept("*/*").unwrap(), MediaType::Json);
        assert_eq!(
            accept("application/graphql-response+json, */*").unwrap(),
            MediaType::GraphQLResponse
        );
        assert_eq!(
            accept("text/html").unwrap_err().code,
            ErrorCode::NotAcceptable
        );
    }
}
