//! The service end to end through its router (no socket), plus socket tests for the
//! slow-client protections and graceful shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use warden_core::{Classifier, Scores, Taxonomy};
use warden_policy::ThresholdPolicy;
use warden_serve::{app, AppState, ServeConfig};

/// A keyword classifier: each category fires on its own marker word. Deterministic, so the
/// tests know the right answer for every text.
struct Keywords {
    taxonomy: Taxonomy,
    delay: Duration,
    calls: AtomicUsize,
}

impl Keywords {
    fn new() -> Self {
        Self { taxonomy: Taxonomy::builtin(), delay: Duration::ZERO, calls: AtomicUsize::new(0) }
    }
    fn slow(delay: Duration) -> Self {
        Self { delay, ..Self::new() }
    }
}

impl Classifier for Keywords {
    fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }
    fn name(&self) -> &str {
        "keywords-test"
    }
    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        Ok(texts
            .iter()
            .map(|t| {
                let t = t.to_lowercase();
                self.taxonomy
                    .categories()
                    .iter()
                    .map(|c| {
                        let marker = format!("<{}>", c.code.to_lowercase());
                        if t.contains(&marker) {
                            0.9
                        } else if t.contains("<borderline>") {
                            0.45
                        } else {
                            0.05
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

fn state_with(cfg: ServeConfig, model: Keywords) -> AppState {
    let st = AppState::new(cfg).unwrap();
    let tax = model.taxonomy.clone();
    st.set_model(Arc::new(model), ThresholdPolicy::uniform("tuned", &tax, 0.5)).unwrap();
    st
}

fn state() -> AppState {
    state_with(ServeConfig::default(), Keywords::new())
}

async fn call(st: &AppState, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, v)
}

fn post(body: impl Into<Body>) -> Request<Body> {
    Request::post("/v1/moderations").header("content-type", "application/json").body(body.into()).unwrap()
}

fn post_json(v: Value) -> Request<Body> {
    post(v.to_string())
}

#[tokio::test]
async fn single_string_gets_openai_shaped_result() {
    let st = state();
    let (status, headers, v) = call(&st, post_json(json!({"input": "I will <v> you", "model": "omni-moderation-latest"}))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("modr-"));
    assert_eq!(v["model"], "keywords-test");
    assert_eq!(v["policy"], "default");
    assert_eq!(headers["x-warden-policy"], "default");
    assert!(headers.contains_key("x-request-id"));
    let r = &v["results"][0];
    assert_eq!(r["flagged"], true);
    assert_eq!(r["categories"]["violence"], true);
    assert_eq!(r["categories"]["hate"], false);
    assert!((r["category_scores"]["violence"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    // OpenAI's names, all eight.
    for name in ["sexual", "hate", "violence", "harassment", "self-harm", "sexual/minors", "hate/threatening", "violence/graphic"] {
        assert!(r["categories"].get(name).is_some(), "missing {name}");
        assert_eq!(r["category_applied_input_types"][name], json!(["text"]));
    }
}

#[tokio::test]
async fn arrays_keep_input_order_and_accept_typed_parts() {
    let st = state();
    let input = json!(["calm words", {"type": "text", "text": "pure <h> here"}, "more <sh>"]);
    let (status, _, v) = call(&st, post_json(json!({ "input": input }))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 3);
    assert_eq!(res[0]["flagged"], false);
    assert_eq!(res[1]["categories"]["hate"], true);
    assert_eq!(res[2]["categories"]["self-harm"], true);
    assert_eq!(res[2]["categories"]["hate"], false);
}

async fn expect_error(st: &AppState, req: Request<Body>, status: StatusCode, code: &str) {
    let (s, _, v) = call(st, req).await;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    assert!(v["error"]["type"].is_string());
}

#[tokio::test]
async fn abuse_is_answered_with_clear_4xx_and_the_server_stays_healthy() {
    let mut cfg = ServeConfig::default();
    cfg.limits.max_body_bytes = 1 << 20;
    let st = state_with(cfg, Keywords::new());
    expect_error(&st, post("{not json"), StatusCode::BAD_REQUEST, "invalid_json").await;
    expect_error(&st, post("[1, 2]"), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"input": 5})), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"input": ["ok", 7]})), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"input": "x", "model": 3})), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"text": "no input field"})), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"input": []})), StatusCode::BAD_REQUEST, "empty_input").await;
    expect_error(&st, post_json(json!({"input": ""})), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"input": ["fine", "   "]})), StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_error(&st, post_json(json!({"input": [{"type": "image_url", "image_url": {"url": "x"}}]})), StatusCode::BAD_REQUEST, "invalid_request").await;
    // Invalid UTF-8 inside a JSON string.
    let mut bad = b"{\"input\": \"abc ".to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(b"\"}");
    expect_error(&st, post(bad), StatusCode::BAD_REQUEST, "invalid_json").await;
    // 10 MB body, 5 MB single string: over the body limit.
    let big = "a".repeat(10 << 20);
    expect_error(&st, post(big), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    let five = json!({"input": "b".repeat(5 << 20)}).to_string();
    expect_error(&st, post(five), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    // Without Content-Length (streamed), the limit still holds.
    let chunks = futures_stream(vec![vec![b'['; 600 << 10], vec![b'['; 600 << 10]]);
    let req = Request::post("/v1/moderations").body(Body::from_stream(chunks)).unwrap();
    expect_error(&st, req, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    // 100,000-element array.
    let many: Vec<&str> = vec!["x"; 100_000];
    expect_error(&st, post_json(json!({ "input": many })), StatusCode::BAD_REQUEST, "too_many_inputs").await;
    // One input over the character limit but under the body limit.
    let long = json!({"input": "é".repeat(100_001)}).to_string();
    expect_error(&st, post(long), StatusCode::BAD_REQUEST, "input_too_long").await;
    expect_error(&st, post_json(json!({"input": "x", "model": "no-such-policy"})), StatusCode::BAD_REQUEST, "unknown_policy").await;
    let req = Request::get("/v1/moderations").body(Body::empty()).unwrap();
    expect_error(&st, req, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let req = Request::get("/v2/nothing").body(Body::empty()).unwrap();
    expect_error(&st, req, StatusCode::NOT_FOUND, "not_found").await;

    let (s, _, _) = call(&st, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) = call(&st, post_json(json!({"input": "still <s> working"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["results"][0]["categories"]["sexual"], true);
    // Rejections are counted by code.
    let (_, _, m) = call(&st, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let m = m.as_str().unwrap();
    assert!(m.contains("warden_rejected_total{code=\"body_too_large\"} 3"), "{m}");
    assert!(m.contains("warden_rejected_total{code=\"too_many_inputs\"} 1"));
}

fn futures_stream(chunks: Vec<Vec<u8>>) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    tokio_stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test]
async fn readyz_waits_for_the_model() {
    let st = AppState::new(ServeConfig::default()).unwrap();
    let (s, _, _) = call(&st, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _, v) = call(&st, post_json(json!({"input": "hello"}))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], "not_ready");
    let (s, _, _) = call(&st, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let m = Keywords::new();
    let tax = m.taxonomy.clone();
    st.set_model(Arc::new(m), ThresholdPolicy::uniform("t", &tax, 0.5)).unwrap();
    let (s, _, v) = call(&st, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["model"], "keywords-test");
}

fn write_policy(dir: &std::path::Path, name: &str, threshold: f32) {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!("format_version = 1\nname = \"{name}\"\ndescription = \"test\"\ndefault = {threshold}\n"),
    )
    .unwrap();
}

#[tokio::test]
async fn policies_are_chosen_per_request_and_reload_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path(), "strict", 0.3);
    let mut cfg = ServeConfig { policies: Some(dir.path().to_owned()), ..Default::default() };
    cfg.api_keys = None;
    std::env::remove_var("WARDEN_API_KEYS");
    std::env::remove_var("WARDEN_ADMIN_KEYS");
    let st = state_with(cfg, Keywords::new());
    let text = json!({"input": "a <borderline> remark"});
    // Default policy (0.5): 0.45 is not flagged.
    let (_, _, v) = call(&st, post_json(text.clone())).await;
    assert_eq!(v["results"][0]["flagged"], false);
    // strict via the model field, via warden-NAME, and via the header.
    let (_, _, v) = call(&st, post_json(json!({"input": "a <borderline> remark", "model": "strict"}))).await;
    assert_eq!(v["policy"], "strict");
    assert_eq!(v["results"][0]["flagged"], true);
    let (_, _, v) = call(&st, post_json(json!({"input": "a <borderline> remark", "model": "warden-strict"}))).await;
    assert_eq!(v["policy"], "strict");
    let req = Request::post("/v1/moderations").header("x-warden-policy", "strict").body(Body::from(text.to_string())).unwrap();
    let (_, _, v) = call(&st, req).await;
    assert_eq!(v["results"][0]["flagged"], true);
    // A new policy file appears; it is unknown until a reload.
    write_policy(dir.path(), "education", 0.4);
    let (s, _, _) = call(&st, post_json(json!({"input": "x", "model": "education"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // No keys configured: admin endpoints are closed.
    let (s, _, v) = call(&st, Request::post("/admin/reload").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(st.reload_policies().unwrap(), 3);
    let (s, _, v) = call(&st, post_json(json!({"input": "a <borderline> remark", "model": "education"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["results"][0]["flagged"], true);
    // A broken file: reload fails and the old policies stay.
    std::fs::write(dir.path().join("broken.toml"), "format_version = 1\nname = \"broken\"\n[thresholds]\nnonsense = 2\n").unwrap();
    assert!(st.reload_policies().is_err());
    let (s, _, _) = call(&st, post_json(json!({"input": "x", "model": "education"}))).await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, v) = call(&st, Request::get("/v1/policies").body(Body::empty()).unwrap()).await;
    let names: Vec<&str> = v["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "education", "strict"]);
    assert!((v["policies"][2]["thresholds"]["hate"].as_f64().unwrap() - 0.3).abs() < 1e-6);
}

#[tokio::test]
async fn api_keys_guard_moderation_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "format_version = 1\n[[keys]]\nname = \"app\"\nkey = \"wk_app_12345\"\n[[keys]]\nname = \"ops\"\nkey = \"wk_ops_12345\"\nadmin = true\n",
    )
    .unwrap();
    let st = state_with(ServeConfig { api_keys: Some(keys), ..Default::default() }, Keywords::new());
    expect_error(&st, post_json(json!({"input": "x"})), StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    let bearer = |k: &str| {
        Request::post("/v1/moderations").header("authorization", format!("Bearer {k}")).body(Body::from(json!({"input": "x"}).to_string())).unwrap()
    };
    expect_error(&st, bearer("wk_wrong_12345"), StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    let (s, _, _) = call(&st, bearer("wk_app_12345")).await;
    assert_eq!(s, StatusCode::OK);
    let admin = |k: &str| Request::post("/admin/reload").header("authorization", format!("Bearer {k}")).body(Body::empty()).unwrap();
    expect_error(&st, admin("wk_app_12345"), StatusCode::FORBIDDEN, "admin_key_required").await;
    let (s, _, v) = call(&st, admin("wk_ops_12345")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["reloaded"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_answered_429_with_retry_after_never_5xx() {
    let mut cfg = ServeConfig::default();
    cfg.batch.queue_texts = 16;
    cfg.batch.max_batch_texts = 8;
    let model = Keywords::slow(Duration::from_millis(40));
    let st = state_with(cfg, model);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let texts: Vec<String> = (0..4).map(|j| format!("text {i} {j}")).collect();
            let resp = app(st).oneshot(post_json(json!({ "input": texts }))).await.unwrap();
            (resp.status(), resp.headers().get("retry-after").cloned())
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let (s, retry) = t.await.unwrap();
        match s {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let secs: u64 = retry.expect("429 carries Retry-After").to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&secs));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 4, "some requests are served ({ok})");
    assert!(limited > 0, "a queue of 16 texts cannot hold 240 ({ok} ok)");
    // The service recovers once the burst is over.
    let (s, _, _) = call(&st, post_json(json!({"input": "after the burst"}))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_beyond_the_in_flight_limit_are_shed_at_once() {
    let mut cfg = ServeConfig::default();
    cfg.limits.max_in_flight = 2;
    let st = state_with(cfg, Keywords::slow(Duration::from_millis(300)));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let (s, _, v) = call(&st, post_json(json!({ "input": format!("t{i}") }))).await;
            (s, v)
        }));
    }
    let mut shed = 0;
    for t in tasks {
        let (s, v) = t.await.unwrap();
        if s == StatusCode::TOO_MANY_REQUESTS {
            // The queue holds 8192 texts, so only the in-flight limit can refuse these.
            shed += 1;
            assert_eq!(v["error"]["code"], "overloaded");
        } else {
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    assert!(shed >= 3, "at most 2 of 6 simultaneous requests fit, {shed} were shed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_batched_together() {
    let model = Arc::new(Keywords::slow(Duration::from_millis(30)));
    let st = AppState::new(ServeConfig::default()).unwrap();
    let tax = model.taxonomy.clone();
    st.set_model(model.clone(), ThresholdPolicy::uniform("t", &tax, 0.5)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let (s, _, v) = call(&st, post_json(json!({ "input": format!("n{i} <h>") }))).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v["results"][0]["categories"]["hate"], true);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let calls = model.calls.load(Ordering::SeqCst);
    assert!(calls < 40, "40 concurrent requests should share batches, got {calls} model calls");
}

#[tokio::test]
async fn metrics_count_requests_and_flags_per_policy() {
    let st = state();
    for _ in 0..3 {
        call(&st, post_json(json!({"input": ["<h> one", "<v> two", "fine"]}))).await;
    }
    let (s, h, m) = call(&st, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/plain"));
    let m = m.as_str().unwrap();
    assert!(m.contains("warden_flags_total{category=\"hate\",policy=\"default\"} 3"), "{m}");
    assert!(m.contains("warden_flags_total{category=\"violence\",policy=\"default\"} 3"));
    assert!(m.contains("warden_texts_total{policy=\"default\"} 9"));
    assert!(m.contains("warden_requests_total{route=\"/v1/moderations\",status=\"200\"} 3"));
    assert!(m.contains("warden_request_duration_seconds_bucket"));
    assert!(m.contains("warden_batch_texts_bucket"));
    assert!(m.contains("warden_model_info{model=\"keywords-test\"} 1"));
}

#[tokio::test]
async fn monitor_reports_rates_per_policy_and_category() {
    let st = state();
    call(&st, post_json(json!({"input": ["<h> one", "fine", "fine", "fine"]}))).await;
    let (s, _, v) = call(&st, Request::get("/v1/monitor").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let series = v["snapshot"]["series"].as_array().unwrap();
    let hate = series.iter().find(|s| s["policy"] == "default" && s["category"] == "hate").expect("hate series");
    assert_eq!(hate["current_texts"], 4);
    assert_eq!(hate["current_flagged"], 1);
    assert!((hate["current_rate"].as_f64().unwrap() - 0.25).abs() < 1e-9);
    assert!(v["snapshot"]["open_alerts"].as_array().unwrap().is_empty());
    assert_eq!(v["config"]["window_secs"], 60);
}

#[tokio::test]
async fn sampling_masks_pii_honours_opt_out_and_keeps_flagged_and_uncertain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("samples.sqlite");
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "format_version = 1\n[[keys]]\nname = \"app\"\nkey = \"wk_app_12345\"\n[[keys]]\nname = \"private\"\nkey = \"wk_private_1\"\nno_store = true\n",
    )
    .unwrap();
    let mut cfg = ServeConfig { api_keys: Some(keys), ..Default::default() };
    cfg.sampling.store = Some(db.clone());
    cfg.sampling.random_rate = 0.0;
    let st = state_with(cfg, Keywords::new());
    let req = |key: &str, body: Value, no_store: bool| {
        let mut r = Request::post("/v1/moderations").header("authorization", format!("Bearer {key}"));
        if no_store {
            r = r.header("x-warden-no-store", "1");
        }
        r.body(Body::from(body.to_string())).unwrap()
    };
    let body = json!({"input": [
        "<h> mail me at jane.doe@example.com or call +1-202-555-0143",
        "a <borderline> remark",
        "perfectly calm text",
    ]});
    let (s, _, _) = call(&st, req("wk_app_12345", body.clone(), false)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&st, req("wk_app_12345", json!({"input": "<v> opted out"}), true)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&st, req("wk_private_1", json!({"input": "<v> private key"}), false)).await;
    assert_eq!(s, StatusCode::OK);
    st.flush_samples();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String, String, String)> = conn
        .prepare("SELECT reason, text, api_key, flagged FROM samples ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "flagged");
    assert!(!rows[0].1.contains("jane.doe@example.com") && !rows[0].1.contains("555-0143"), "{}", rows[0].1);
    assert!(rows[0].1.contains("mail me at"));
    assert_eq!(rows[0].2, "app");
    assert_eq!(rows[0].3, "[\"hate\"]");
    assert_eq!(rows[1].0, "uncertain");
    assert!(rows.iter().all(|r| !r.1.contains("opted out") && !r.1.contains("private key")));
    let pii: String = conn.query_row("SELECT pii FROM samples WHERE reason = 'flagged'", [], |r| r.get(0)).unwrap();
    let pii: Value = serde_json::from_str(&pii).unwrap();
    assert_eq!(pii["email"], 1);
    assert_eq!(pii["phone"], 1);
    // Retention: a row 40 days old goes, a fresh one stays.
    let now = warden_serve::store::now_secs();
    conn.execute(
        "INSERT INTO samples(created_at, request_id, policy, model, reason, text, pii, scores, flagged) VALUES (?1, 'old', 'default', 'm', 'random', 't', '{}', '{}', '[]')",
        [now - 40.0 * 86_400.0],
    )
    .unwrap();
    assert_eq!(warden_serve::store::expire(&conn, 30.0, now).unwrap(), 1);
    let left: i64 = conn.query_row("SELECT count(*) FROM samples", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 2);
}

#[test]
fn store_refuses_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    drop(warden_serve::store::open(&db).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'", []).unwrap();
    drop(conn);
    let err = warden_serve::store::open(&db).err().expect("version 99 is refused").to_string();
    assert!(err.contains("99"), "{err}");
}

// ---- over a real socket ----

async fn start(cfg: ServeConfig, model: Keywords) -> (std::net::SocketAddr, AppState, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let st = state_with(cfg, model);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = st.clone();
    let h = tokio::spawn(async move {
        warden_serve::serve(listener, s, async { rx.await.ok(); }, Duration::from_secs(10)).await.unwrap();
    });
    (addr, st, tx, h)
}

async fn raw_request(addr: std::net::SocketAddr, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/moderations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = ServeConfig::default();
    cfg.limits.header_timeout_secs = 1;
    cfg.limits.body_timeout_secs = 1;
    let (addr, _st, stop, h) = start(cfg, Keywords::new()).await;
    // Headers that never finish: the connection is closed after the header timeout.
    let mut a = tokio::net::TcpStream::connect(addr).await.unwrap();
    a.write_all(b"POST /v1/moderations HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // A body that never finishes: 408 after the body timeout.
    let mut b = tokio::net::TcpStream::connect(addr).await.unwrap();
    b.write_all(b"POST /v1/moderations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"input\": ").await.unwrap();
    // Meanwhile a normal client is served.
    let ok = raw_request(addr, r#"{"input": "<h> hello"}"#).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), b.read_to_end(&mut buf)).await.expect("body timeout fires").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"));
    let mut buf = Vec::new();
    // The assertion is that the read ends (EOF or reset) within 5 s instead of hanging.
    let _ = tokio::time::timeout(Duration::from_secs(5), a.read_to_end(&mut buf)).await.expect("header timeout closes the connection");
    let _ = stop.send(());
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_requests_already_accepted() {
    let (addr, st, stop, h) = start(ServeConfig::default(), Keywords::slow(Duration::from_millis(500))).await;
    let pending = tokio::spawn(async move { raw_request(addr, r#"{"input": ["<v> one", "two"]}"#).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = stop.send(());
    let resp = pending.await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"violence\":true"));
    h.await.unwrap();
    // After shutdown the engine refuses new work instead of hanging.
    let (s, _, v) = call(&st, post_json(json!({"input": "late"}))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

#[test]
fn retention_keeps_samples_chosen_for_labeling() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let conn = warden_serve::store::open(&db).unwrap();
    let now = warden_serve::store::now_secs();
    for id in ["old-kept", "old-gone"] {
        conn.execute(
            "INSERT INTO samples(created_at, request_id, policy, model, reason, text, pii, scores, flagged) VALUES (?1, ?2, 'default', 'm', 'flagged', 't', '{}', '{}', '[]')",
            rusqlite::params![now - 40.0 * 86_400.0, id],
        )
        .unwrap();
    }
    // An old imported (non-traffic) sample is not the sweep's business either.
    conn.execute(
        "INSERT INTO samples(created_at, request_id, policy, model, reason, text, pii, scores, flagged, source) VALUES (?1, 'imp', '', '', 'import', 't2', '{}', '{}', '[]', 'crawl')",
        [now - 40.0 * 86_400.0],
    )
    .unwrap();
    conn.execute("INSERT INTO batches(name, kind, created_at) VALUES ('b', 'label', ?1)", [now]).unwrap();
    conn.execute(
        "INSERT INTO batch_items(batch_id, sample_id, position) SELECT 1, id, 0 FROM samples WHERE request_id = 'old-kept'",
        [],
    )
    .unwrap();
    assert_eq!(warden_serve::store::expire(&conn, 30.0, now).unwrap(), 1);
    let left: Vec<String> = conn
        .prepare("SELECT request_id FROM samples ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(left, vec!["old-kept", "imp"]);
}

#[test]
fn the_queue_is_sized_to_seconds_of_the_models_work() {
    // 32 texts per at least 100 ms: at most 320 texts/s, so 0.5 s of work is at most 160.
    let (n, rate) = warden_serve::size_queue(&Keywords::slow(Duration::from_millis(100)), 0.5, 8192);
    assert!(rate <= 321.0, "{rate}");
    assert!((64..=160).contains(&n), "{n}");
    // A fast model is capped by the text bound, and a bound under 64 is kept.
    assert_eq!(warden_serve::size_queue(&Keywords::new(), 1.0, 8192).0, 8192);
    assert_eq!(warden_serve::size_queue(&Keywords::slow(Duration::from_millis(50)), 0.001, 16).0, 16);
    // The server applies it when the model is set, and only when asked to.
    let mut cfg = ServeConfig::default();
    cfg.batch.queue_seconds = 0.01;
    assert_eq!(state_with(cfg, Keywords::slow(Duration::from_millis(50))).queue_capacity(), Some(64));
    assert_eq!(state().queue_capacity(), Some(8192));
}
