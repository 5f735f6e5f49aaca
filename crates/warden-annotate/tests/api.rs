//! The annotation API driven through `app(state)` with `oneshot`, on a temporary store.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;
use warden_annotate::{app, AnnotateState, CSRF_HEADER};
use warden_core::Taxonomy;
use warden_store::{BatchItem, BatchKind, LabelStore, LabelValue, NewSample, Role, SqliteStore};

const PW: &str = "correct-horse-1";

struct Fixture {
    _dir: tempfile::TempDir,
    state: AnnotateState,
    /// Assignment ids per user, in queue order.
    ann: Vec<i64>,
    ben: Vec<i64>,
    aud: Vec<i64>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("labels.sqlite")).unwrap();
    let ann = store.create_user("ann", Role::Annotator, PW).unwrap();
    let ben = store.create_user("ben", Role::Annotator, PW).unwrap();
    let aud = store.create_user("aud", Role::Auditor, PW).unwrap();
    store.create_user("adm", Role::Admin, PW).unwrap();
    let texts = ["ann sample one", "BEN SECRET two", "ann sample three", "BEN SECRET four"];
    let mut it = texts.iter().enumerate().map(|(i, t)| NewSample {
        source: "test".into(),
        external_id: Some(format!("t{i}")),
        text: t.to_string(),
        ..Default::default()
    });
    store.import_samples("test", &mut it, 100, &mut |_| {}).unwrap();
    let items: Vec<BatchItem> =
        store.samples(false, None).unwrap().iter().map(|s| BatchItem { sample_id: s.id, ..Default::default() }).collect();
    let b = store.create_batch("b1", BatchKind::Label, &items, &json!({})).unwrap();
    store.assign(b, &[ann, ben], 1).unwrap();
    let a = store.create_batch("audit1", BatchKind::Audit, &items[..1], &json!({})).unwrap();
    store.assign(a, &[aud], 1).unwrap();
    let ids = |u| store.queue(u).unwrap().iter().map(|a| a.id).collect::<Vec<_>>();
    let (ann, ben, aud) = (ids(ann), ids(ben), ids(aud));
    assert_eq!((ann.len(), ben.len(), aud.len()), (2, 2, 1));
    Fixture { _dir: dir, state: AnnotateState::new(store, Taxonomy::builtin()), ann, ben, aud }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_string()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec();
    Resp { status, headers, body }
}

async fn get(app: &Router, uri: &str, cookie: Option<&str>) -> Resp {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(app, b.body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, uri: &str, cookie: Option<&str>, body: Value) -> Resp {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json").header(CSRF_HEADER, "1");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(app, b.body(Body::from(body.to_string())).unwrap()).await
}

/// Signs in and returns the `name=value` cookie pair.
async fn login(app: &Router, user: &str) -> String {
    let r = post(app, "/api/login", None, json!({"username": user, "password": PW})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let set = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

fn all(value: &str) -> Value {
    let t = Taxonomy::builtin();
    Value::Object(t.codes().map(|c| (c.to_string(), json!(value))).collect())
}

#[tokio::test]
async fn login_good_and_bad() {
    let f = fixture();
    let app = app(f.state.clone());

    let r = post(&app, "/api/login", None, json!({"username": "ann", "password": PW})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["user"], "ann");
    assert_eq!(r.json()["role"], "annotator");
    let cookie = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
    for part in ["warden_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Secure"), "plain-HTTP state sets no Secure flag: {cookie}");
    let pair = cookie.split(';').next().unwrap();
    let me = get(&app, "/api/me", Some(pair)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user"], "ann");

    for (user, pw) in [("ann", "wrong-password"), ("nobody", PW), ("", PW), ("ann", "")] {
        let r = post(&app, "/api/login", None, json!({"username": user, "password": pw})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}/{pw}");
        assert_eq!(r.code(), "bad_credentials");
        assert!(r.headers.get(header::SET_COOKIE).is_none());
    }

    // Secure cookies when configured.
    let secure = app_secure(&f);
    let r = post(&secure, "/api/login", None, json!({"username": "ben", "password": PW})).await;
    assert!(r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("; Secure"));

    // Logout ends the session.
    let r = post(&app, "/api/logout", Some(pair), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(get(&app, "/api/me", Some(pair)).await.status, StatusCode::UNAUTHORIZED);
}

fn app_secure(f: &Fixture) -> Router {
    app(f.state.clone().with_secure_cookies(true))
}

#[tokio::test]
async fn csrf_and_content_type_are_enforced() {
    let f = fixture();
    let app = app(f.state.clone());
    let body = json!({"username": "ann", "password": PW}).to_string();

    let no_header = Request::post("/api/login").header(header::CONTENT_TYPE, "application/json").body(Body::from(body.clone()));
    let r = send(&app, no_header.unwrap()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "csrf_header_missing");

    let form = Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(CSRF_HEADER, "1")
        .body(Body::from("username=ann&password=x"));
    let r = send(&app, form.unwrap()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.code(), "unsupported_media_type");

    let cross = Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header(CSRF_HEADER, "1")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://evil.example")
        .body(Body::from(body.clone()));
    let r = send(&app, cross.unwrap()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "cross_origin");

    let same = Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header(CSRF_HEADER, "1")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .body(Body::from(body));
    assert_eq!(send(&app, same.unwrap()).await.status, StatusCode::OK);

    let bad_json = Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header(CSRF_HEADER, "1")
        .body(Body::from("{\"username\": "));
    let r = send(&app, bad_json.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_json");

    // A write with a valid session but without the header is refused too.
    let cookie = login(&app, "ann").await;
    let req = Request::post(format!("/api/assignments/{}/skip", f.ann[0]))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &cookie)
        .body(Body::from("{}"));
    assert_eq!(send(&app, req.unwrap()).await.code(), "csrf_header_missing");
}

#[tokio::test]
async fn api_needs_a_session() {
    let f = fixture();
    let app = app(f.state.clone());
    let id = f.ann[0];
    for cookie in [None, Some("warden_session=0123abcd"), Some("warden_session=<script>"), Some("other=1")] {
        for uri in ["/api/me", "/api/taxonomy", "/api/queue", "/api/progress", &format!("/api/assignments/{id}")] {
            let r = get(&app, uri, cookie).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri} {cookie:?}");
            assert_eq!(r.code(), "unauthenticated");
        }
        for uri in [format!("/api/assignments/{id}/labels"), format!("/api/assignments/{id}/skip"), "/api/logout".into()] {
            let r = post(&app, &uri, cookie, json!({"labels": all("neg")})).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri} {cookie:?}");
            assert_eq!(r.code(), "unauthenticated");
        }
    }
    let labels = f.state.store.lock().unwrap().labels().unwrap();
    assert!(labels.is_empty());
}

#[tokio::test]
async fn annotators_cannot_touch_each_others_assignments() {
    let f = fixture();
    let app = app(f.state.clone());
    let ann = login(&app, "ann").await;
    let bens = f.ben[0];

    let r = get(&app, &format!("/api/assignments/{bens}"), Some(&ann)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "forbidden");
    assert!(!r.text().contains("BEN SECRET"));

    let r = post(&app, &format!("/api/assignments/{bens}/labels"), Some(&ann), json!({"labels": all("neg")})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "forbidden");

    let r = post(&app, &format!("/api/assignments/{bens}/skip"), Some(&ann), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // An id that does not exist looks the same (ids cannot be probed).
    let r = get(&app, "/api/assignments/999999", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&app, "/api/assignments/abc", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Nothing was written; ben's assignment is still pending.
    {
        let s = f.state.store.lock().unwrap();
        assert!(s.labels().unwrap().is_empty());
        let ben = s.user_by_name("ben").unwrap().unwrap();
        assert_eq!(s.progress(ben.id).unwrap().pending, 2);
    }

    // Ben reads his own; the admin may read any.
    let ben = login(&app, "ben").await;
    let r = get(&app, &format!("/api/assignments/{bens}"), Some(&ben)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["sample"]["text"].as_str().unwrap().starts_with("BEN SECRET"));
    let adm = login(&app, "adm").await;
    assert_eq!(get(&app, &format!("/api/assignments/{bens}"), Some(&adm)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn labels_land_in_the_store() {
    let f = fixture();
    let app = app(f.state.clone());
    let ann = login(&app, "ann").await;

    let q = get(&app, "/api/queue", Some(&ann)).await.json();
    assert_eq!(q["progress"], json!({"total": 2, "done": 0, "skipped": 0, "pending": 2}));
    assert_eq!(q["next"], json!(f.ann[0]));
    assert_eq!(q["assignments"][0]["batch_kind"], "label");

    let id = f.ann[0];
    let a = get(&app, &format!("/api/assignments/{id}"), Some(&ann)).await.json();
    assert_eq!(a["sample"]["text"], "ann sample one");
    assert_eq!(a["batch"], "b1");
    assert_eq!(a["sample"]["source"], "test");
    assert_eq!(a["labels"], json!({}));

    let mut labels = all("neg");
    labels["V"] = json!("pos");
    labels["V2"] = json!("pos");
    labels["HR"] = json!("unsure");
    let r = post(&app, &format!("/api/assignments/{id}/labels"), Some(&ann), json!({ "labels": labels })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["next"], json!(f.ann[1]));
    assert_eq!(r.json()["progress"]["done"], 1);

    let rows = f.state.store.lock().unwrap().labels().unwrap();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        assert_eq!(row.user, "ann");
        let want = match row.category.as_str() {
            "V" | "V2" => LabelValue::Positive,
            "HR" => LabelValue::Unsure,
            _ => LabelValue::Negative,
        };
        assert_eq!(row.value, want, "{}", row.category);
    }

    // Revisiting shows the labels; resubmitting replaces them.
    let a = get(&app, &format!("/api/assignments/{id}"), Some(&ann)).await.json();
    assert_eq!(a["status"], "done");
    assert_eq!(a["labels"]["V2"], "pos");
    let r = post(&app, &format!("/api/assignments/{id}/labels"), Some(&ann), json!({ "labels": all("neg") })).await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = f.state.store.lock().unwrap().labels().unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.value == LabelValue::Negative));

    // Skip the other one: nothing pending any more.
    let r = post(&app, &format!("/api/assignments/{}/skip", f.ann[1]), Some(&ann), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["next"], Value::Null);
    let p = get(&app, "/api/progress", Some(&ann)).await.json();
    assert_eq!(p, json!({"total": 2, "done": 1, "skipped": 1, "pending": 0}));
}

#[tokio::test]
async fn bad_label_sets_are_rejected() {
    let f = fixture();
    let app = app(f.state.clone());
    let ann = login(&app, "ann").await;
    let uri = format!("/api/assignments/{}/labels", f.ann[0]);

    let mut partial = all("neg");
    partial.as_object_mut().unwrap().remove("SH");
    partial.as_object_mut().unwrap().remove("V2");
    let r = post(&app, &uri, Some(&ann), json!({ "labels": partial })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "incomplete_labels");
    assert_eq!(r.json()["error"]["missing"], json!(["SH", "V2"]));

    let r = post(&app, &uri, Some(&ann), json!({ "labels": {} })).await;
    assert_eq!(r.code(), "incomplete_labels");

    let mut unknown = all("neg");
    unknown["XX"] = json!("pos");
    let r = post(&app, &uri, Some(&ann), json!({ "labels": unknown })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "unknown_category");

    let mut bad = all("neg");
    bad["S"] = json!("yes");
    let r = post(&app, &uri, Some(&ann), json!({ "labels": bad })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_label_value");

    let mut orphan = all("neg");
    orphan["S3"] = json!("pos");
    let r = post(&app, &uri, Some(&ann), json!({ "labels": orphan })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "hierarchy_violation");
    assert_eq!(r.json()["error"]["parent"], "S");

    let r = post(&app, &uri, Some(&ann), json!({ "nope": 1 })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    assert!(f.state.store.lock().unwrap().labels().unwrap().is_empty());
    let s = f.state.store.lock().unwrap();
    let ann_id = s.user_by_name("ann").unwrap().unwrap().id;
    assert_eq!(s.progress(ann_id).unwrap().done, 0);
}

#[tokio::test]
async fn auditors_see_their_audit_batch() {
    let f = fixture();
    let app = app(f.state.clone());
    let aud = login(&app, "aud").await;
    let q = get(&app, "/api/queue", Some(&aud)).await.json();
    assert_eq!(q["role"], "auditor");
    assert_eq!(q["assignments"][0]["batch_kind"], "audit");
    assert_eq!(q["assignments"][0]["batch"], "audit1");
    let id = f.aud[0];
    let r = post(&app, &format!("/api/assignments/{id}/labels"), Some(&aud), json!({ "labels": all("neg") })).await;
    assert_eq!(r.status, StatusCode::OK);
    let s = f.state.store.lock().unwrap();
    assert_eq!(s.audits().unwrap().len(), 8);
    assert!(s.labels().unwrap().is_empty());
}

#[tokio::test]
async fn taxonomy_has_definitions_and_subcategories() {
    let f = fixture();
    let app = app(f.state.clone());
    let ann = login(&app, "ann").await;
    let t = get(&app, "/api/taxonomy", Some(&ann)).await.json();
    let cats = t["categories"].as_array().unwrap();
    let codes: Vec<&str> = cats.iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]);
    assert!(cats[0]["definition"].as_str().unwrap().contains("sexual"));
    assert!(cats[0]["not_undesired"][0].as_str().unwrap().starts_with("[S0]"));
    assert_eq!(cats[1]["not_undesired"].as_array().unwrap().len(), 2);
    assert!(!cats[2]["undesired_subcategories"].as_array().unwrap().is_empty());
    assert_eq!(cats[5]["parent"], "S");
    assert_eq!(cats[3]["not_undesired"], json!([]));
}

#[tokio::test]
async fn security_headers() {
    let f = fixture();
    let app = app(f.state.clone());
    let ann = login(&app, "ann").await;
    for (uri, cookie) in
        [("/", None), ("/assets/app.js", None), ("/assets/app.css", None), ("/api/me", Some(ann.as_str())), ("/api/me", None)]
    {
        let r = get(&app, uri, cookie).await;
        let csp = r.headers.get(header::CONTENT_SECURITY_POLICY).unwrap_or_else(|| panic!("{uri}: no CSP")).to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{uri}: {csp}");
        assert!(!csp.contains("unsafe"), "{uri}: {csp}");
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        if uri.starts_with("/api/") {
            assert_eq!(r.headers[header::CACHE_CONTROL], "no-store", "{uri}");
        }
    }
    let r = get(&app, "/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    let r = send(&app, Request::delete("/api/me").header(CSRF_HEADER, "1").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn assets_are_served_self_contained() {
    let f = fixture();
    let app = app(f.state.clone());
    let html = get(&app, "/", None).await;
    let js = get(&app, "/assets/app.js", None).await;
    let css = get(&app, "/assets/app.css", None).await;
    for (r, ct) in [(&html, "text/html"), (&js, "text/javascript"), (&css, "text/css")] {
        assert_eq!(r.status, StatusCode::OK);
        let got = r.headers[header::CONTENT_TYPE].to_str().unwrap();
        assert!(got.starts_with(ct), "{got} is not {ct}");
        let text = r.text().to_lowercase();
        assert!(!text.contains("http://") && !text.contains("https://"), "an external reference in a {ct} asset");
        assert!(!text.contains("@import") && !text.contains("fonts.googleapis"), "{ct}");
    }
    let page = html.text();
    assert!(page.contains("src=\"/assets/app.js\""));
    assert!(page.contains("href=\"/assets/app.css\""));
    // No inline script, handlers or styles (the CSP would block them anyway).
    assert_eq!(page.matches("<script").count(), page.matches("<script src=").count());
    for bad in [" onclick=", " onload=", " style=", "<style"] {
        assert!(!page.contains(bad), "inline {bad} in index.html");
    }
    // Stable ids the browser test drives.
    for id in ["username", "password", "login", "error", "progress", "submit", "skip", "sample-text", "categories", "shortcuts"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "index.html lacks #{id}");
    }
    for label in ["for=\"username\"", "for=\"password\""] {
        assert!(page.contains(label), "inputs need labels: {label}");
    }
    let js = js.text();
    assert!(!js.contains("innerHTML") && !js.contains("eval("), "the app never renders HTML from strings");
    assert!(js.contains("X-Warden-UI"));
}
