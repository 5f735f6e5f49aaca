//! Routes and handlers.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `POST /v1/moderations` | key if any configured | OpenAI-compatible moderation |
//! | `GET /v1/policies` | key if any configured | the policies and their thresholds |
//! | `GET /v1/monitor` | key if any configured | flag rates, baselines, alerts |
//! | `POST /admin/reload` | admin key, always | re-read the policy files |
//! | `GET /healthz` | none | the process is up |
//! | `GET /readyz` | none | the model is loaded |
//! | `GET /metrics` | none | Prometheus text format |

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use warden_core::Policy;

use crate::auth::KeyInfo;
use crate::engine::Refused;
use crate::error::ApiError;
use crate::store::Sample;
use crate::AppState;

/// Request header choosing a policy (wins over the `model` field).
pub const POLICY_HEADER: &str = "x-warden-policy";
/// Request header opting a request out of sampling (`1` or `true`).
pub const NO_STORE_HEADER: &str = "x-warden-no-store";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id of the current request, put in its extensions by the logging middleware.
#[derive(Clone)]
pub struct RequestId(pub String);

/// The service's router. Everything it needs is in `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/moderations", post(moderations))
        .route("/v1/policies", get(list_policies))
        .route("/v1/monitor", get(monitor))
        .route("/admin/reload", post(reload))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|req: Request| async move { ApiError::NotFound(req.uri().path().to_string()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Request id, access log line and request metrics for every request.
async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(|| state.next_id());
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let mut resp = next.run(req).await;
    let status = resp.status();
    let secs = t0.elapsed().as_secs_f64();
    let m = &state.inner.metrics;
    m.requests.with_label_values(&[&route, status.as_str()]).inc();
    m.latency.with_label_values(&[&route]).observe(secs);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if route != "/healthz" && route != "/readyz" && route != "/metrics" {
        tracing::info!(request_id = %id, %method, route = %route, status = status.as_u16(), latency_ms = secs * 1e3, "request");
    }
    resp
}

fn authorize(state: &AppState, headers: &HeaderMap, admin: bool) -> Result<Option<KeyInfo>, ApiError> {
    let keys = &state.inner.keys;
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if keys.is_empty() {
        // No keys: moderation is open, admin is closed (it changes behaviour).
        return if admin { Err(ApiError::Forbidden) } else { Ok(None) };
    }
    let info = keys.check(auth).ok_or(ApiError::Unauthorized)?;
    if admin && !info.admin {
        return Err(ApiError::Forbidden);
    }
    Ok(Some(info.clone()))
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Reads the body under the size limit and the body timeout.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, ApiError> {
    let limits = &state.inner.cfg.limits;
    let max = limits.max_body_bytes;
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        if len > max as u64 {
            return Err(ApiError::BodyTooLarge { max });
        }
    }
    match tokio::time::timeout(limits.body_timeout(), axum::body::to_bytes(body, max)).await {
        Err(_) => Err(ApiError::BodyTimeout { secs: limits.body_timeout_secs }),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            if inner.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Err(ApiError::BodyTooLarge { max })
            } else {
                Err(ApiError::InvalidRequest(format!("could not read the request body: {inner}")))
            }
        }
    }
}

/// The parsed request: texts and the requested model/policy name.
#[derive(Debug)]
pub struct ModerationRequest {
    pub inputs: Vec<String>,
    pub model: Option<String>,
}

/// Parses and validates a request body against `limits`, with a message that says exactly
/// what is wrong.
pub fn parse_request(body: &[u8], limits: &crate::Limits) -> Result<ModerationRequest, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        if std::str::from_utf8(body).is_err() {
            ApiError::InvalidJson(format!("the body is not valid UTF-8 ({msg})"))
        } else {
            ApiError::InvalidJson(msg)
        }
    })?;
    let Value::Object(mut obj) = v else {
        return Err(ApiError::InvalidRequest("the body must be a JSON object with an `input` field".into()));
    };
    let model = match obj.remove("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => return Err(ApiError::InvalidRequest(format!("`model` must be a string, not {}", type_name(&other)))),
    };
    let items = match obj.remove("input") {
        None | Some(Value::Null) => return Err(ApiError::InvalidRequest("missing required field `input`".into())),
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "`input` must be a string or an array of strings or {{\"type\": \"text\", \"text\": ...}} objects, not {}",
                type_name(&other)
            )))
        }
    };
    if items.is_empty() {
        return Err(ApiError::EmptyInput);
    }
    if items.len() > limits.max_inputs {
        return Err(ApiError::TooManyInputs { got: items.len(), max: limits.max_inputs });
    }
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let text = match item {
            Value::String(s) => s,
            Value::Object(mut o) => match (o.remove("type"), o.remove("text")) {
                (Some(Value::String(t)), Some(Value::String(s))) if t == "text" => s,
                (Some(Value::String(t)), _) if t == "image_url" => {
                    return Err(ApiError::InvalidRequest(format!("input {i} is an image; this model moderates text only")))
                }
                _ => {
                    return Err(ApiError::InvalidRequest(format!(
                        "input {i} must be a string or {{\"type\": \"text\", \"text\": \"...\"}}"
                    )))
                }
            },
            other => return Err(ApiError::InvalidRequest(format!("input {i} must be a string, not {}", type_name(&other)))),
        };
        if text.trim().is_empty() {
            return Err(ApiError::InvalidRequest(format!("input {i} is empty or whitespace only")));
        }
        let chars = text.chars().count();
        if chars > limits.max_input_chars {
            return Err(ApiError::InputTooLong { index: i, got: chars, max: limits.max_input_chars });
        }
        inputs.push(text);
    }
    Ok(ModerationRequest { inputs, model })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn moderations(State(state): State<AppState>, headers: HeaderMap, req: Request) -> Result<Response, ApiError> {
    let result = moderate(&state, &headers, req).await;
    if let Err(e) = &result {
        state.inner.metrics.rejected.with_label_values(&[e.code()]).inc();
    }
    result
}

async fn moderate(state: &AppState, headers: &HeaderMap, req: Request) -> Result<Response, ApiError> {
    let key = authorize(state, headers, false)?;
    // Shed load before reading the body: under overload, work per refused request stays tiny.
    let _permit = state.inner.in_flight.try_acquire().map_err(|_| ApiError::Overloaded {
        queued: state.inner.ready.get().map(|r| r.engine.queued_texts()).unwrap_or(0),
        retry_after: 1,
    })?;
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let body = read_body(state, headers, req.into_body()).await?;
    let parsed = parse_request(&body, &state.inner.cfg.limits)?;
    drop(body);
    let ready = state.inner.ready.get().ok_or(ApiError::NotReady)?;
    let registry = state.inner.policies.read().unwrap().clone().ok_or(ApiError::NotReady)?;
    let requested = headers.get(POLICY_HEADER).and_then(|v| v.to_str().ok()).map(String::from).or(parsed.model.clone());
    let policy = registry.resolve(requested.as_deref(), &ready.model_name).ok_or_else(|| ApiError::UnknownPolicy {
        name: requested.clone().unwrap_or_default(),
        available: registry.names().collect::<Vec<_>>().join(", "),
    })?;
    let no_store = headers
        .get(NO_STORE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        || key.as_ref().is_some_and(|k| k.no_store);
    let n = parsed.inputs.len();
    // Keep the texts for sampling only when they may be stored.
    let keep_texts = !no_store && state.inner.store.lock().unwrap().is_some();
    let texts_for_store = if keep_texts { Some(parsed.inputs.clone()) } else { None };
    let rx = ready.engine.submit(parsed.inputs).map_err(|r| match r {
        Refused::Full { queued, retry_after } => ApiError::Overloaded { queued, retry_after },
        Refused::ShuttingDown => ApiError::ShuttingDown,
    })?;
    state.inner.metrics.queue_texts.set(ready.engine.queued_texts() as i64);
    let scores = rx.await.map_err(|_| ApiError::ShuttingDown)?.map_err(ApiError::Internal)?;
    debug_assert_eq!(scores.len(), n);

    let names: Vec<&str> = ready.taxonomy.names().collect();
    let m = &state.inner.metrics;
    m.texts.with_label_values(&[&policy.name]).inc_by(n as u64);
    let mut results = Vec::with_capacity(n);
    let mut all_flags = Vec::with_capacity(n);
    for s in &scores {
        let d = policy.decide(s);
        let mut cats = Map::new();
        let mut cat_scores = Map::new();
        let mut types = Map::new();
        for (i, name) in names.iter().enumerate() {
            cats.insert((*name).into(), Value::Bool(d.categories[i]));
            cat_scores.insert((*name).into(), json!(s[i]));
            types.insert((*name).into(), json!(["text"]));
            if d.categories[i] {
                m.flags.with_label_values(&[policy.name.as_str(), name]).inc();
            }
        }
        results.push(json!({
            "flagged": d.flagged,
            "categories": cats,
            "category_scores": cat_scores,
            "category_applied_input_types": types,
        }));
        all_flags.push(d.categories);
    }

    // Monitoring: one observation per text, alerts logged and counted.
    state.observe_flags(&policy.name, &all_flags);

    // Consented sampling.
    if let Some(texts) = texts_for_store {
        let cfg = &state.inner.cfg.sampling;
        let store = state.inner.store.lock().unwrap();
        if let Some(store) = store.as_ref() {
            for ((text, s), flags) in texts.into_iter().zip(&scores).zip(&all_flags) {
                let flagged = flags.iter().any(|&f| f);
                let uncertain = s.iter().zip(policy.thresholds()).any(|(x, t)| (x - t).abs() < cfg.uncertain_margin);
                let reason = if flagged && cfg.flagged {
                    "flagged"
                } else if uncertain {
                    "uncertain"
                } else if state.uniform() < cfg.random_rate {
                    "random"
                } else {
                    continue;
                };
                store.offer(Sample {
                    request_id: request_id.clone(),
                    api_key: key.as_ref().map(|k| k.name.clone()),
                    policy: policy.name.clone(),
                    model: ready.model_name.clone(),
                    reason,
                    text,
                    scores: names.iter().map(|n| n.to_string()).zip(s.iter().copied()).collect(),
                    flagged: names.iter().zip(flags).filter(|(_, &f)| f).map(|(n, _)| n.to_string()).collect(),
                });
            }
        }
    }

    let body = json!({
        "id": format!("modr-{request_id}"),
        "model": ready.model_name,
        "policy": policy.name,
        "results": results,
    });
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&policy.name) {
        resp.headers_mut().insert(POLICY_HEADER, v);
    }
    Ok(resp)
}

async fn list_policies(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, false)?;
    let ready = state.inner.ready.get().ok_or(ApiError::NotReady)?;
    let registry = state.inner.policies.read().unwrap().clone().ok_or(ApiError::NotReady)?;
    let names: Vec<&str> = ready.taxonomy.names().collect();
    let list: Vec<Value> = registry
        .iter()
        .map(|(name, p, origin)| {
            let th: Map<String, Value> = names.iter().zip(p.thresholds()).map(|(n, t)| ((*n).to_string(), json!(t))).collect();
            json!({"name": name, "description": p.description, "source": origin, "thresholds": th})
        })
        .collect();
    Ok(Json(json!({"model": ready.model_name, "default": crate::policies::DEFAULT_POLICY, "policies": list})))
}

async fn monitor(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, false)?;
    // Close windows that ended without traffic, so "current" really is current.
    state.tick_monitor();
    let mon = state.inner.monitor.lock().unwrap();
    let mon = mon.as_ref().ok_or(ApiError::NotReady)?;
    let snap = serde_json::to_value(mon.snapshot(now_ms())).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"config": mon.config(), "alerts_total": mon.alerts_total(), "snapshot": snap})))
}

async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, true)?;
    if !state.is_ready() {
        return Err(ApiError::NotReady);
    }
    let s = state.clone();
    let n = tokio::task::spawn_blocking(move || s.reload_policies())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::InvalidRequest(format!("reload failed, current policies kept: {e}")))?;
    let names: Vec<String> = state.inner.policies.read().unwrap().as_ref().map(|r| r.names().map(String::from).collect()).unwrap_or_default();
    Ok(Json(json!({"reloaded": n, "policies": names})))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.inner.ready.get() {
        Some(r) => Json(json!({
            "status": "ready",
            "model": r.model_name,
            "queued_texts": r.engine.queued_texts(),
            "queue_capacity": r.engine.capacity(),
        }))
        .into_response(),
        None => ApiError::NotReady.into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(r) = state.inner.ready.get() {
        state.inner.metrics.queue_texts.set(r.engine.queued_texts() as i64);
    }
    let body = state.inner.metrics.render();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

