//! Routes, handlers, the session extractor and the security middleware.

use std::collections::HashMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warden_core::Taxonomy;
use warden_store::{Assignment, AssignmentStatus, LabelValue, Progress, User};

use crate::{AnnotateState, ApiError};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "warden_session";
/// The header every state-changing `/api` request must carry, with the value `1`.
pub const CSRF_HEADER: &str = "x-warden-ui";

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Largest request body accepted (labels are a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_NAME_LEN: usize = 64;
const MAX_PASSWORD_LEN: usize = 1024;

/// The annotation UI's router. Everything it needs is in `state`.
pub fn app(state: AnnotateState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/assets/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        // Browsers ask for it; there is none (and the CSP allows no data: URL in its place).
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/taxonomy", get(taxonomy))
        .route("/api/queue", get(queue))
        .route("/api/progress", get(progress))
        .route("/api/assignments/{id}", get(assignment))
        .route("/api/assignments/{id}/labels", post(submit_labels))
        .route("/api/assignments/{id}/skip", post(skip))
        .fallback(|req: Request| async move { ApiError::NotFound(req.uri().path().to_string()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(csrf_guard))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

// ---- middleware ----------------------------------------------------------------------------

/// Adds the security headers to every response, and `Cache-Control: no-store` to the API's.
async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let cache = if api { "no-store" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// Refuses state-changing `/api` requests without the custom header, or from another origin.
async fn csrf_guard(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && req.uri().path().starts_with("/api/") {
        let h = req.headers();
        if h.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::trim) != Some("1") {
            return ApiError::CsrfHeaderMissing.into_response();
        }
        if let Some(origin) = h.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let origin_host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
            if origin_host.is_none() || origin_host != host {
                return ApiError::CrossOrigin.into_response();
            }
        }
    }
    next.run(req).await
}

// ---- extractors ----------------------------------------------------------------------------

/// The signed-in caller: a valid, unexpired session cookie of an enabled account.
pub(crate) struct Session {
    pub user: User,
    pub token: String,
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl FromRequestParts<AnnotateState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AnnotateState) -> Result<Self, ApiError> {
        let token = session_token(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let t = token.clone();
        let user = state.with_store(move |s| s.session_user(&t)).await?.ok_or(ApiError::Unauthenticated)?;
        Ok(Session { user, token })
    }
}

/// A JSON body whose rejections are this API's typed errors.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::InvalidJson(e.body_text())),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::BodyTooLarge),
            Err(e) => Err(ApiError::InvalidRequest(e.body_text())),
        }
    }
}

fn assignment_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::InvalidRequest(format!("assignment id {raw:?} is not an integer")))
}

// ---- pages ---------------------------------------------------------------------------------

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

// ---- session -------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

fn user_json(u: &User) -> Value {
    json!({"user": u.name, "role": u.role.as_str(), "id": u.id})
}

fn cookie(state: &AnnotateState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let c = format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&c).expect("cookie header is ASCII")
}

async fn login(State(state): State<AnnotateState>, ApiJson(req): ApiJson<LoginRequest>) -> Result<Response, ApiError> {
    let name = req.username.trim().to_string();
    if name.is_empty() || name.len() > MAX_NAME_LEN || req.password.is_empty() || req.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::BadCredentials);
    }
    let ttl = state.session_ttl_secs;
    let found = state
        .with_store(move |s| match s.authenticate(&name, &req.password)? {
            Some(user) => {
                let token = s.create_session(user.id, ttl)?;
                Ok(Some((user, token)))
            }
            None => Ok(None),
        })
        .await?;
    let Some((user, token)) = found else {
        tracing::info!("annotate: failed sign-in");
        return Err(ApiError::BadCredentials);
    };
    tracing::info!(user = %user.name, "annotate: signed in");
    let mut resp = Json(user_json(&user)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie(&state, &token, ttl.max(0.0) as i64));
    Ok(resp)
}

async fn logout(State(state): State<AnnotateState>, session: Session) -> Result<Response, ApiError> {
    let token = session.token;
    state.with_store(move |s| s.delete_session(&token)).await?;
    let mut resp = Json(json!({"ok": true})).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie(&state, "", 0));
    Ok(resp)
}

async fn me(session: Session) -> Json<Value> {
    Json(user_json(&session.user))
}

// ---- reading -------------------------------------------------------------------------------

fn taxonomy_json(t: &Taxonomy) -> Value {
    let cats: Vec<Value> = t
        .categories()
        .iter()
        .map(|c| {
            json!({
                "code": c.code,
                "name": c.name,
                "parent": c.parent,
                "definition": c.definition,
                "undesired_subcategories": c.undesired_subcategories,
                "not_undesired": c.not_undesired,
            })
        })
        .collect();
    json!({"name": t.name(), "version": t.version(), "categories": cats})
}

async fn taxonomy(State(state): State<AnnotateState>, _session: Session) -> Json<Value> {
    Json(taxonomy_json(&state.taxonomy))
}

fn assignment_json(a: &Assignment) -> Value {
    json!({
        "id": a.id,
        "batch": a.batch,
        "batch_kind": a.batch_kind.as_str(),
        "sample_id": a.sample_id,
        "position": a.position,
        "status": a.status.as_str(),
    })
}

/// The first pending assignment of a queue (the store orders pending first).
fn next_pending(queue: &[Assignment]) -> Option<i64> {
    queue.iter().find(|a| a.status == AssignmentStatus::Pending).map(|a| a.id)
}

async fn queue_and_progress(state: &AnnotateState, user: i64) -> Result<(Vec<Assignment>, Progress), ApiError> {
    state.with_store(move |s| Ok((s.queue(user)?, s.progress(user)?))).await
}

async fn queue(State(state): State<AnnotateState>, session: Session) -> Result<Json<Value>, ApiError> {
    let (q, p) = queue_and_progress(&state, session.user.id).await?;
    Ok(Json(json!({
        "user": session.user.name,
        "role": session.user.role.as_str(),
        "progress": p,
        "next": next_pending(&q),
        "assignments": q.iter().map(assignment_json).collect::<Vec<_>>(),
    })))
}

async fn progress(State(state): State<AnnotateState>, session: Session) -> Result<Json<Progress>, ApiError> {
    let user = session.user.id;
    Ok(Json(state.with_store(move |s| s.progress(user)).await?))
}

async fn assignment(
    State(state): State<AnnotateState>,
    session: Session,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = assignment_id(&raw)?;
    let caller = session.user;
    let view = state.with_store(move |s| s.assignment(id, &caller)).await?;
    let labels: Map<String, Value> =
        view.labels.iter().map(|(c, v)| (c.clone(), Value::String(v.as_str().into()))).collect();
    let mut out = assignment_json(&view.assignment);
    out["sample"] = json!({
        "id": view.sample.id,
        "text": view.sample.text,
        "source": view.sample.source,
        "external_id": view.sample.external_id,
        "pii_masked": view.sample.pii_masked,
    });
    out["labels"] = Value::Object(labels);
    Ok(Json(out))
}

// ---- writing -------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LabelsRequest {
    labels: Map<String, Value>,
}

/// Checks a submission against the taxonomy: every category labelled, no unknown code, valid
/// values, and no positive subcategory under a parent that is not positive. Returns the
/// labels in taxonomy order.
pub(crate) fn validate_labels(t: &Taxonomy, given: &Map<String, Value>) -> Result<Vec<(String, LabelValue)>, ApiError> {
    let known: HashMap<&str, usize> = t.categories().iter().enumerate().map(|(i, c)| (c.code.as_str(), i)).collect();
    let mut unknown: Vec<String> = given.keys().filter(|k| !known.contains_key(k.as_str())).cloned().collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(ApiError::UnknownCategory { codes: unknown });
    }
    let mut values: Vec<Option<LabelValue>> = vec![None; t.len()];
    for (code, v) in given {
        let parsed = v.as_str().and_then(LabelValue::parse).ok_or_else(|| ApiError::InvalidLabelValue {
            code: code.clone(),
            got: v.to_string(),
        })?;
        values[known[code.as_str()]] = Some(parsed);
    }
    let missing: Vec<String> =
        t.categories().iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(c, _)| c.code.clone()).collect();
    if !missing.is_empty() {
        return Err(ApiError::IncompleteLabels { missing });
    }
    let values: Vec<LabelValue> = values.into_iter().flatten().collect();
    for i in 0..values.len() {
        if values[i] != LabelValue::Positive {
            continue;
        }
        let mut at = i;
        while let Some(p) = t.parent_of(at) {
            if values[p] != LabelValue::Positive {
                return Err(ApiError::HierarchyViolation {
                    child: t.categories()[i].code.clone(),
                    parent: t.categories()[p].code.clone(),
                });
            }
            at = p;
        }
    }
    Ok(t.categories().iter().map(|c| c.code.clone()).zip(values).collect())
}

async fn after_write(state: &AnnotateState, user: i64) -> Result<Json<Value>, ApiError> {
    let (q, p) = queue_and_progress(state, user).await?;
    Ok(Json(json!({"ok": true, "progress": p, "next": next_pending(&q)})))
}

async fn submit_labels(
    State(state): State<AnnotateState>,
    session: Session,
    Path(raw): Path<String>,
    ApiJson(req): ApiJson<LabelsRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = assignment_id(&raw)?;
    let labels = validate_labels(&state.taxonomy, &req.labels)?;
    let caller = session.user.clone();
    state.with_store(move |s| s.submit_labels(id, &caller, &labels)).await?;
    after_write(&state, session.user.id).await
}

async fn skip(State(state): State<AnnotateState>, session: Session, Path(raw): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = assignment_id(&raw)?;
    let caller = session.user.clone();
    state.with_store(move |s| s.skip(id, &caller)).await?;
    after_write(&state, session.user.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
    }

    #[test]
    fn validation() {
        let t = Taxonomy::builtin();
        let all_neg: Vec<(&str, &str)> = t.codes().map(|c| (c, "neg")).collect();
        assert_eq!(validate_labels(&t, &labels(&all_neg)).unwrap().len(), 8);

        let mut m = labels(&all_neg);
        m.remove("V2");
        assert!(matches!(validate_labels(&t, &m), Err(ApiError::IncompleteLabels { missing }) if missing == ["V2"]));

        let mut m = labels(&all_neg);
        m.insert("XX".into(), "pos".into());
        assert!(matches!(validate_labels(&t, &m), Err(ApiError::UnknownCategory { .. })));

        let mut m = labels(&all_neg);
        m.insert("S".into(), json!(1));
        assert!(matches!(validate_labels(&t, &m), Err(ApiError::InvalidLabelValue { .. })));

        let mut m = labels(&all_neg);
        m.insert("H2".into(), "pos".into());
        assert!(matches!(validate_labels(&t, &m), Err(ApiError::HierarchyViolation { child, parent }) if child == "H2" && parent == "H"));
        m.insert("H".into(), "pos".into());
        let ok = validate_labels(&t, &m).unwrap();
        assert_eq!(ok[1], ("H".to_string(), LabelValue::Positive));
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; warden_session=abc123 ; c=d"));
        assert_eq!(session_token(&h).as_deref(), Some("abc123"));
        h.insert(header::COOKIE, HeaderValue::from_static("warden_session=a\"b"));
        assert_eq!(session_token(&h), None);
    }
}
