//! The labeling loop through the `warden` binary: import → accounts → batch → assign →
//! (labels written through the store, as the web UI does) → export → `warden train` on the
//! export.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use warden_store::{LabelStore, LabelValue, SqliteStore};

fn warden() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.env_remove("WARDEN_MODEL").env("CI", "1").env("WARDEN_TIER", "fast");
    c
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{:?} failed: {}", c, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

const VIOLENT: &[&str] = &["i will kill you", "we will shoot them all", "i will stab you", "burn their houses"];
const BENIGN: &[&str] = &["the weather is nice", "i love this bread", "the meeting is at noon", "we planted tomatoes"];

fn write_pool(path: &Path, n: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in 0..n {
        let t = if i % 2 == 0 { VIOLENT[i / 2 % VIOLENT.len()] } else { BENIGN[i / 2 % BENIGN.len()] };
        writeln!(f, r#"{{"id": "r{i}", "text": "{t} number {i}", "meta": {{"site": "s{}"}}}}"#, i % 3).unwrap();
    }
    writeln!(f, "{{broken").unwrap();
}

#[test]
fn import_assign_label_export_train() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("labels.db");
    let pool = dir.path().join("pool.jsonl");
    write_pool(&pool, 100);
    let db_s = db.to_str().unwrap();
    let msg = ok(warden().args(["label", "import", "--db", db_s, "--source", "web"]).arg(&pool));
    assert!(msg.contains("100 new samples") && msg.contains("1 bad lines") && msg.contains("line 101"), "{msg}");
    let again = ok(warden().args(["label", "import", "--db", db_s, "--source", "web"]).arg(&pool));
    assert!(again.contains("0 new samples, 100 already stored"), "{again}");
    for (u, role) in [("ann", "annotator"), ("ben", "annotator"), ("cat", "annotator"), ("aud", "auditor")] {
        ok(warden().args(["label", "user", "add", "--db", db_s, u, "--role", role]).env("WARDEN_PASSWORD", "long-enough-pw"));
    }
    let short = warden().args(["label", "user", "add", "--db", db_s, "x"]).env("WARDEN_PASSWORD", "short").output().unwrap();
    assert!(!short.status.success());
    ok(warden().args(["label", "batch", "create", "--db", db_s, "--name", "b1", "--unbatched", "80"]));
    ok(warden().args(["label", "assign", "--db", db_s, "--batch", "b1", "--users", "ann,ben,cat", "--per-sample", "3"]));
    // Active learning from the store: the 20 unbatched samples are the pool.
    let sel = ok(warden().args(["al", "select", "--store", db_s, "--batch", "al-1", "--size", "10", "--reweight-by", "site"]));
    assert!(sel.contains("20 pool rows") && sel.contains("batch al-1 with 10 samples"), "{sel}");
    {
        let store = SqliteStore::open(&db).unwrap();
        let b = store.batch_by_name("al-1").unwrap().unwrap();
        assert_eq!(b.samples, 10);
        let scored: i64 = store.connection().query_row("SELECT COUNT(*) FROM model_scores", [], |r| r.get(0)).unwrap();
        assert_eq!(scored, 20, "the model's scores of the whole pool are kept with its version");
        let overlap: i64 = store
            .connection()
            .query_row("SELECT COUNT(*) FROM batch_items a JOIN batch_items b ON a.sample_id = b.sample_id AND a.batch_id <> b.batch_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(overlap, 0, "only unbatched samples are selected");
    }
    let bad = warden().args(["label", "assign", "--db", db_s, "--batch", "b1", "--users", "nobody"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no user named nobody"));

    // Label as the UI would: everyone tells the truth about V, except that ben disagrees on
    // every 4th sample, and all three get every 10th sample wrong (planted label errors
    // for the mislabel hunt to find).
    let mut store = SqliteStore::open(&db).unwrap();
    for name in ["ann", "ben", "cat"] {
        let user = store.user_by_name(name).unwrap().unwrap();
        for a in store.queue(user.id).unwrap() {
            let text = store.sample(a.sample_id).unwrap().text;
            let violent = VIOLENT.iter().any(|v| text.starts_with(v));
            let n: usize = text.rsplit(' ').next().unwrap().parse().unwrap();
            let says = if n % 10 == 0 || (name == "ben" && n % 4 == 0) { !violent } else { violent };
            let v = if says { LabelValue::Positive } else { LabelValue::Negative };
            let labels = vec![("V".to_string(), v), ("S".to_string(), LabelValue::Negative), ("H".to_string(), LabelValue::Unsure)];
            store.submit_labels(a.id, &user, &labels).unwrap();
        }
    }
    drop(store);
    let status = ok(warden().args(["label", "status", "--db", db_s]));
    assert!(status.contains("720 labels on 80 samples"), "{status}");

    let soft = dir.path().join("soft.jsonl");
    ok(warden().args(["label", "export", "--db", db_s, "--out"]).arg(&soft));
    let rows: Vec<Value> =
        std::fs::read_to_string(&soft).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 80);
    let disputed = rows.iter().filter(|r| matches!(r["labels"]["V"].as_f64(), Some(x) if x > 0.3 && x < 0.7)).count();
    assert_eq!(disputed, 16, "every 4th sample of 80, except every 10th, has two votes to one");
    assert!(rows.iter().all(|r| r["labels"].get("H").is_none()), "unsure only is unknown, not negative");
    let r0 = &rows[0];
    assert_eq!(r0["source"], "web");
    assert_eq!(r0["meta"]["label_provenance"]["annotators"], 3);
    assert_eq!(r0["meta"]["label_provenance"]["sample"]["line"], 1);
    assert_eq!(r0["meta"]["site"], "s0");

    let majority = dir.path().join("majority.jsonl");
    ok(warden().args(["label", "export", "--db", db_s, "--labels", "majority", "--out"]).arg(&majority));
    let m: Vec<Value> =
        std::fs::read_to_string(&majority).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(m.iter().all(|r| matches!(r["labels"]["V"].as_i64(), Some(0 | 1))), "three votes never tie");

    // `warden train` accepts the export, and drops rows on the held-out list at load time.
    let heldout = dir.path().join("heldout.txt");
    let text0 = rows[0]["text"].as_str().unwrap();
    std::fs::write(&heldout, format!("# test list\n{}\n", hex::encode(warden_data::text_hash(text0)))).unwrap();
    let out = ok(warden()
        .env("WARDEN_DECONTAMINATION", &heldout)
        .args(["train", "--bits", "12", "--max-epochs", "2", "--out"])
        .arg(dir.path().join("model"))
        .arg("--train-file")
        .arg(&soft)
        .arg("--dev-file")
        .arg(&majority));
    assert!(dir.path().join("model").join("manifest.json").is_file(), "{out}");
    assert!(out.contains("dropped 1 train and 1 dev rows on the held-out decontamination list"), "{out}");
}

fn label_all(db: &Path, who: &str, truth: impl Fn(&str) -> bool) {
    let mut store = SqliteStore::open(db).unwrap();
    let user = store.user_by_name(who).unwrap().unwrap();
    for a in store.queue(user.id).unwrap() {
        let text = store.sample(a.sample_id).unwrap().text;
        let v = if truth(&text) { LabelValue::Positive } else { LabelValue::Negative };
        store.submit_labels(a.id, &user, &[("V".to_string(), v), ("S".to_string(), LabelValue::Negative)]).unwrap();
    }
}

#[test]
fn audit_report_hunt_and_relabel() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("labels.db");
    let db_s = db.to_str().unwrap();
    let pool = dir.path().join("pool.jsonl");
    write_pool(&pool, 160);
    ok(warden().args(["label", "import", "--db", db_s]).arg(&pool));
    for (u, role) in [("ann", "annotator"), ("ben", "annotator"), ("aud", "auditor")] {
        ok(warden().args(["label", "user", "add", "--db", db_s, u, "--role", role]).env("WARDEN_PASSWORD", "long-enough-pw"));
    }
    ok(warden().args(["label", "batch", "create", "--db", db_s, "--name", "b1", "--unbatched", "160"]));
    ok(warden().args(["label", "assign", "--db", db_s, "--batch", "b1", "--users", "ann,ben", "--per-sample", "2"]));
    let truth = |t: &str| VIOLENT.iter().any(|v| t.starts_with(v));
    let number = |t: &str| t.rsplit(' ').next().unwrap().parse::<usize>().unwrap();
    // ann is right; ben misses the violence of every 3rd violent sample; both get every 10th
    // sample wrong (each of the violent templates in turn, so the errors are learnable).
    label_all(&db, "ann", |t| truth(t) != (number(t) % 10 == 0));
    label_all(&db, "ben", |t| if number(t) % 10 == 0 { !truth(t) } else { truth(t) && number(t) % 3 != 0 });

    // Audit sample, labelled by a truthful auditor; the report then scores the annotators.
    ok(warden().args(["qc", "audit-sample", "--db", db_s, "--batch", "audit-1", "--auditors", "aud"]));
    label_all(&db, "aud", truth);
    let report: Value = serde_json::from_str(&ok(warden().args(["qc", "report", "--db", db_s, "--format", "json"])).lines().skip_while(|l| !l.starts_with('{')).collect::<Vec<_>>().join("\n")).unwrap();
    let v = &report["categories"]["V"];
    assert!(v["audited"].as_u64().unwrap() >= 10, "{v}");
    let alpha = v["krippendorff_alpha"].as_f64().unwrap();
    assert!(alpha > 0.3 && alpha < 0.95, "ben's extra positives lower agreement: {alpha}");
    assert_eq!(report["categories"]["S"]["krippendorff_alpha"], Value::Null, "no variation in S: alpha undefined");
    let f1 = |who: &str| v["per_annotator"][who]["f1"].as_f64().unwrap();
    assert!(f1("ann") > f1("ben"), "ann {} vs ben {}: {v:#}", f1("ann"), f1("ben"));
    let md = ok(warden().args(["qc", "report", "--db", db_s]));
    assert!(md.contains("Krippendorff") && md.contains("| V | ben |"), "{md}");

    // The hunt flags the planted errors; the truthful auditor confirms them; the rule sends
    // all flags back.
    let hunt = ok(warden().args(["qc", "hunt", "--db", db_s, "--batch", "hunt-1", "--auditors", "aud", "--audit-min", "10"]));
    assert!(hunt.contains("audit batch hunt-1"), "{hunt}");
    label_all(&db, "aud", truth);
    let decided = ok(warden().args([
        "qc", "decide", "--db", db_s, "--hunt-batch", "hunt-1", "--relabel-batch", "relabel-1", "--annotators", "ann",
    ]));
    assert!(decided.contains("relabel all flags") && decided.contains("relabel batch relabel-1"), "{decided}");
    let store = SqliteStore::open(&db).unwrap();
    let relabel = store.batch_by_name("relabel-1").unwrap().unwrap();
    let events = store.qc_events(Some("relabel_decision")).unwrap();
    let sent: Vec<i64> = events[0].3["relabel"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    assert_eq!(relabel.samples as usize, sent.len());
    let planted = sent.iter().filter(|&&s| number(&store.sample(s).unwrap().text) % 10 == 0).count();
    assert!(planted * 2 >= sent.len(), "most samples sent back are the planted errors: {planted} of {}", sent.len());
}
