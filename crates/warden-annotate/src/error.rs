//! Typed API errors with stable codes, rendered as `{"error": {"code", "message", ...}}`.
//!
//! The `code` strings are the contract the browser app (and any script) branches on; they
//! never change meaning. Messages are for people and may change.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("sign in first: no valid session")]
    Unauthenticated,
    #[error("you may not see or change this assignment")]
    Forbidden,
    #[error("state-changing requests need the `X-Warden-UI: 1` header")]
    CsrfHeaderMissing,
    #[error("the request's Origin does not match this server")]
    CrossOrigin,
    #[error("request bodies must be `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("request body is too large")]
    BodyTooLarge,
    #[error("every category needs a label; missing: {}", .missing.join(", "))]
    IncompleteLabels { missing: Vec<String> },
    #[error("unknown categor{}: {}", if .codes.len() == 1 { "y" } else { "ies" }, .codes.join(", "))]
    UnknownCategory { codes: Vec<String> },
    #[error("label for {code} is {got}; use \"pos\", \"neg\" or \"unsure\"")]
    InvalidLabelValue { code: String, got: String },
    #[error("{child} is positive, so its parent category {parent} must be positive too (a positive subcategory implies its parent)")]
    HierarchyViolation { child: String, parent: String },
    #[error("{0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadCredentials | Unauthenticated => StatusCode::UNAUTHORIZED,
            Forbidden | CsrfHeaderMissing | CrossOrigin => StatusCode::FORBIDDEN,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InvalidJson(_)
            | InvalidRequest(_)
            | IncompleteLabels { .. }
            | UnknownCategory { .. }
            | InvalidLabelValue { .. }
            | HierarchyViolation { .. } => StatusCode::BAD_REQUEST,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Conflict(_) => StatusCode::CONFLICT,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadCredentials => "bad_credentials",
            Unauthenticated => "unauthenticated",
            Forbidden => "forbidden",
            CsrfHeaderMissing => "csrf_header_missing",
            CrossOrigin => "cross_origin",
            UnsupportedMediaType => "unsupported_media_type",
            InvalidJson(_) => "invalid_json",
            InvalidRequest(_) => "invalid_request",
            BodyTooLarge => "body_too_large",
            IncompleteLabels { .. } => "incomplete_labels",
            UnknownCategory { .. } => "unknown_category",
            InvalidLabelValue { .. } => "invalid_label_value",
            HierarchyViolation { .. } => "hierarchy_violation",
            Conflict(_) => "conflict",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Forbidden => ApiError::Forbidden,
            StoreError::NotFound { what, id } => ApiError::NotFound(format!("{what} {id}")),
            StoreError::Invalid(m) => ApiError::InvalidRequest(m),
            StoreError::Conflict(m) => ApiError::Conflict(format!("{m} already exists")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            // The detail (file paths, SQL errors) goes to the log, not to the browser.
            tracing::error!(error = %detail, "internal error");
        }
        let mut err = json!({"code": self.code(), "message": self.to_string()});
        match &self {
            ApiError::IncompleteLabels { missing } => err["missing"] = json!(missing),
            ApiError::UnknownCategory { codes } => err["unknown"] = json!(codes),
            ApiError::HierarchyViolation { child, parent } => {
                err["child"] = json!(child);
                err["parent"] = json!(parent);
            }
            ApiError::InvalidLabelValue { code, .. } => err["category"] = json!(code),
            _ => {}
        }
        (self.status(), axum::Json(json!({ "error": err }))).into_response()
    }
}
