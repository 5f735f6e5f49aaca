//! Typed API errors with stable codes, rendered as OpenAI-style error bodies.
//!
//! Clients written for OpenAI's API parse `{"error": {"message", "type", "code"}}`; keeping
//! that shape means their existing error handling works. The `code` strings are part of the
//! API contract: clients branch on them, so they never change meaning.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every way a request can fail, each with one HTTP status and one stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("`input` is empty: send a non-empty string or a non-empty array of non-empty strings")]
    EmptyInput,
    #[error("`input` has {got} items; at most {max} are accepted per request")]
    TooManyInputs { got: usize, max: usize },
    #[error("input {index} has {got} characters; at most {max} are accepted per input")]
    InputTooLong { index: usize, got: usize, max: usize },
    #[error("request body exceeds {max} bytes")]
    BodyTooLarge { max: usize },
    #[error("request body was not received within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("unknown policy {name:?}; available: {available}")]
    UnknownPolicy { name: String, available: String },
    #[error("the server is at capacity ({queued} texts queued); retry after {retry_after} s")]
    Overloaded { queued: usize, retry_after: u64 },
    #[error("missing or invalid API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("this endpoint needs an admin API key")]
    Forbidden,
    #[error("the model is still loading")]
    NotReady,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidJson(_) | InvalidRequest(_) | EmptyInput | TooManyInputs { .. } | InputTooLong { .. } | UnknownPolicy { .. } => {
                StatusCode::BAD_REQUEST
            }
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            NotReady | ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidJson(_) => "invalid_json",
            InvalidRequest(_) => "invalid_request",
            EmptyInput => "empty_input",
            TooManyInputs { .. } => "too_many_inputs",
            InputTooLong { .. } => "input_too_long",
            BodyTooLarge { .. } => "body_too_large",
            BodyTimeout { .. } => "body_timeout",
            UnknownPolicy { .. } => "unknown_policy",
            Overloaded { .. } => "overloaded",
            Unauthorized => "invalid_api_key",
            Forbidden => "admin_key_required",
            NotReady => "not_ready",
            ShuttingDown => "shutting_down",
            Internal(_) => "internal_error",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
        }
    }

    /// OpenAI's `type` field: the broad class of error.
    pub fn kind(&self) -> &'static str {
        use ApiError::*;
        match self {
            Unauthorized | Forbidden => "authentication_error",
            Overloaded { .. } => "rate_limit_error",
            NotReady | ShuttingDown | Internal(_) => "server_error",
            _ => "invalid_request_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({"error": {"message": self.to_string(), "type": self.kind(), "code": self.code(), "param": null}});
        let mut resp = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::Overloaded { retry_after, .. } => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::NotReady | ApiError::ShuttingDown => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            ApiError::Unauthorized => {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}
