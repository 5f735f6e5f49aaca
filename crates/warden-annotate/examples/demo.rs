//! Serves the annotation UI on a seeded store, for trying it out by hand:
//!
//! ```text
//! cargo run --release -p warden-annotate --example demo -- [--db FILE] [--addr 127.0.0.1:8080] [--jsonl FILE]
//! ```
//!
//! When the store has no users yet it is seeded: annotators `ann` and `ben`, auditor `aud`,
//! admin `adm`, all with the password in `WARDEN_PASSWORD` (default `demo-password`);
//! samples from `--jsonl` (rows `{"id", "text", "meta"}`) or a few built-in ones; a label
//! batch `demo` of every sample split between ann and ben, and an audit batch `demo-audit`
//! of the first two samples for aud. Without `--db` the store lives in a temporary folder.

use std::net::SocketAddr;

use serde_json::{json, Map, Value};
use warden_annotate::AnnotateState;
use warden_core::Taxonomy;
use warden_store::{BatchItem, BatchKind, LabelStore, NewSample, Role, SqliteStore};

const BUILTIN: &[&str] = &[
    "Markup stays text: <img src=x onerror=\"window.__xss = 1\"> <b>not bold</b>",
    "I will find you after school and make you regret it.",
    "Our biology class covered human reproduction today, with diagrams.",
    "The documentary showed archival footage of the battle, without gore.",
    "Anyone else think the new update is great? Works fine for me.",
    "Ugh, people like you should just disappear from the internet.",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = None;
    let mut addr: SocketAddr = "127.0.0.1:8080".parse()?;
    let mut jsonl = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--db" => db = args.next(),
            "--addr" => addr = args.next().ok_or("--addr needs a value")?.parse()?,
            "--jsonl" => jsonl = args.next(),
            other => return Err(format!("unknown argument {other}; see the example's doc comment").into()),
        }
    }
    let tmp = tempfile::tempdir()?;
    let db = db.map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().join("demo.sqlite"));
    let password = std::env::var("WARDEN_PASSWORD").unwrap_or_else(|_| "demo-password".into());

    let mut store = SqliteStore::open(&db)?;
    if store.users()?.is_empty() {
        seed(&mut store, &password, jsonl.as_deref())?;
        eprintln!("seeded {} (users ann, ben, aud, adm)", db.display());
    }

    let state = AnnotateState::new(store, Taxonomy::builtin());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("annotation UI on http://{}/", listener.local_addr()?);
        warden_annotate::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(())
}

fn seed(store: &mut SqliteStore, password: &str, jsonl: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let ann = store.create_user("ann", Role::Annotator, password)?;
    let ben = store.create_user("ben", Role::Annotator, password)?;
    let aud = store.create_user("aud", Role::Auditor, password)?;
    store.create_user("adm", Role::Admin, password)?;

    let mut samples = Vec::new();
    match jsonl {
        Some(path) => {
            for (i, line) in std::fs::read_to_string(path)?.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let row: Value = serde_json::from_str(line)?;
                samples.push(NewSample {
                    source: "demo".into(),
                    external_id: row.get("id").map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string())),
                    text: row["text"].as_str().ok_or(format!("line {}: no text", i + 1))?.to_string(),
                    metadata: row.get("meta").and_then(Value::as_object).cloned().unwrap_or_else(Map::new),
                    provenance: json!({"file": path, "line": i + 1}),
                    ..Default::default()
                });
            }
        }
        None => {
            for (i, t) in BUILTIN.iter().enumerate() {
                samples.push(NewSample {
                    source: "demo".into(),
                    external_id: Some(format!("demo-{i}")),
                    text: t.to_string(),
                    ..Default::default()
                });
            }
        }
    }
    store.import_samples("demo", &mut samples.into_iter(), 500, &mut |_| {})?;
    let items: Vec<BatchItem> =
        store.samples(true, None)?.iter().map(|s| BatchItem { sample_id: s.id, ..Default::default() }).collect();
    let b = store.create_batch("demo", BatchKind::Label, &items, &json!({}))?;
    store.assign(b, &[ann, ben], 1)?;
    let a = store.create_batch("demo-audit", BatchKind::Audit, &items[..items.len().min(2)], &json!({}))?;
    store.assign(a, &[aud], 1)?;
    Ok(())
}
