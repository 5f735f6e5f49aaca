//! End-to-end tests of the `warden` binary on a small model trained here from synthetic
//! data, so they need neither the shared datasets nor the committed default model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn warden() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.env_remove("WARDEN_MODEL").env("CI", "1").env("WARDEN_TIER", "fast");
    c
}

const VIOLENT: &[&str] = &[
    "i will kill you", "i am going to murder you tonight", "we will shoot them all",
    "kill them all", "i will stab you", "burn their houses and kill them",
];
const SEXUAL: &[&str] = &[
    "explicit porn video with naked bodies", "send me nude pics", "hot sex tonight naked",
    "porn and nude sex", "naked sex video", "nude porn",
];
const BENIGN: &[&str] = &[
    "the weather is nice today", "i love this recipe for bread", "the meeting is at noon",
    "our team won the match", "please review the document", "a quiet walk in the park",
    "the library opens at nine", "she plays the violin", "we planted tomatoes",
];

/// Writes labelled JSONL: violence rows label V (and leave S unknown for half of them),
/// sexual rows label S, benign rows label both negative.
fn write_set(path: &Path, repeat: usize, salt: &str) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in 0..repeat {
        for (j, t) in VIOLENT.iter().enumerate() {
            let labels = if (i + j) % 2 == 0 { r#"{"V": 1}"# } else { r#"{"V": 1, "S": 0}"# };
            writeln!(f, r#"{{"id": "v{i}-{j}{salt}", "text": "{t} {salt}{i}", "labels": {labels}, "source": "synthetic-v"}}"#).unwrap();
        }
        for (j, t) in SEXUAL.iter().enumerate() {
            writeln!(f, r#"{{"id": "s{i}-{j}{salt}", "text": "{t} {salt}{i}", "labels": {{"sexual": 1, "V": 0}}, "source": "synthetic-s"}}"#).unwrap();
        }
        for (j, t) in BENIGN.iter().enumerate() {
            writeln!(f, r#"{{"id": "b{i}-{j}{salt}", "text": "{t} {salt}{i}", "labels": {{"S": 0, "V": 0}}, "source": "synthetic-b"}}"#).unwrap();
        }
    }
}

/// A model trained once for all tests in this file.
fn model_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("warden-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_set(&dir.join("train.jsonl"), 20, "a");
        write_set(&dir.join("dev.jsonl"), 5, "b");
        let out = warden()
            .args(["train", "--bits", "14", "--max-epochs", "6", "--out"])
            .arg(dir.join("model"))
            .arg("--train-file")
            .arg(dir.join("train.jsonl"))
            .arg("--dev-file")
            .arg(dir.join("dev.jsonl"))
            .output()
            .unwrap();
        assert!(out.status.success(), "train failed: {}", String::from_utf8_lossy(&out.stderr));
        dir.join("model")
    })
}

fn score_stdin(input: &[u8], extra: &[&str]) -> (std::process::Output, Vec<Value>) {
    let mut child = warden()
        .arg("score")
        .arg("--model")
        .arg(model_dir())
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, lines)
}

#[test]
fn model_directory_has_versioned_manifest_policy_and_card() {
    let dir = model_dir();
    let m: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["kind"], "warden-fast");
    assert_eq!(m["training"]["data"]["train_sha256"].as_str().map(str::len), Some(64));
    assert!(m["metrics"]["dev"]["categories"]["V"]["auprc"].as_f64().unwrap() > 0.9);
    assert!(dir.join("policy.toml").is_file());
    assert!(std::fs::read_to_string(dir.join("datasheet.md")).unwrap().contains("## Policy"));
}

#[test]
fn score_arguments_use_openai_names_and_flag_the_obvious() {
    let out = warden()
        .args(["score", "--model"])
        .arg(model_dir())
        .args(["i will kill you all", "the weather is nice today"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(v.len(), 2);
    for key in ["sexual", "hate", "violence", "harassment", "self-harm", "sexual/minors", "hate/threatening", "violence/graphic"] {
        assert!(v[0]["category_scores"][key].is_number(), "missing {key}");
        assert!(v[0]["categories"][key].is_boolean(), "missing {key}");
    }
    assert_eq!(v[0]["categories"]["violence"], true);
    assert_eq!(v[0]["flagged"], true);
    assert_eq!(v[1]["flagged"], false);
    let s0 = v[0]["category_scores"]["violence"].as_f64().unwrap();
    let s1 = v[1]["category_scores"]["violence"].as_f64().unwrap();
    assert!(s0 > s1);
}

#[test]
fn score_stream_keeps_order_passes_fields_and_reports_bad_lines() {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"id\": 1, \"text\": \"i will stab you\"}\n");
    input.extend_from_slice(b"not json\n");
    input.extend_from_slice(b"{\"id\": 3}\n");
    input.extend_from_slice(b"{\"id\": 4, \"text\": \"bad \xff utf8\"}\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"id\": 6, \"text\": \"we planted tomatoes\", \"lang\": \"en\"}");
    let (out, lines) = score_stdin(&input, &["--batch-size", "2"]);
    assert!(out.status.success());
    assert_eq!(lines.len(), 5, "blank line skipped, every other line answered");
    assert_eq!(lines[0]["id"], 1);
    assert!(lines[0]["text"].is_null(), "text is not echoed");
    assert_eq!(lines[1]["error"]["line"], 2);
    assert_eq!(lines[2]["error"]["line"], 3);
    assert!(lines[3]["error"]["message"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(lines[4]["id"], 6);
    assert_eq!(lines[4]["lang"], "en");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("3 bad"), "{stderr}");
}

#[test]
fn strict_mode_stops_at_the_first_bad_line() {
    let (out, _) = score_stdin(b"{\"text\": \"ok\"}\n{\"text\": 5}\n", &["--strict"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

#[test]
fn eval_json_has_the_documented_shape() {
    let dir = model_dir();
    let plots = dir.parent().unwrap().join("plots");
    let out = warden()
        .args(["eval", "--format", "json", "--model"])
        .arg(dir)
        .arg("--data")
        .arg(dir.parent().unwrap().join("dev.jsonl"))
        .arg("--plots")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 5 * 21);
    let v_rep = &v["categories"]["V"];
    assert_eq!(v_rep["n"], 5 * 21);
    assert_eq!(v_rep["positives"], 30);
    // S is unknown on half of the violent rows: those rows are left out of S.
    assert_eq!(v["categories"]["S"]["n"], 5 * 21 - 15);
    assert_eq!(v["categories"]["H"]["n"], 0);
    assert!(v_rep["auprc"].as_f64().unwrap() > 0.9);
    assert!(v["any"]["auprc"].is_number());
    assert!(plots.join("pr-V.svg").is_file() && plots.join("pr-any.svg").is_file());
}

#[test]
fn helpful_errors() {
    let out = warden().args(["score", "--model", "/nonexistent/model", "x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model"));
    let out = warden().args(["eval", "--data", "/nonexistent.jsonl", "--model"]).arg(model_dir()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.jsonl"));
}

#[test]
fn encoder_only_options_outside_the_encoder_tier_are_refused() {
    // Measured for the fast tier and not kept; the cascade takes trained heads. Refused
    // before any data is read, rather than silently ignored.
    for tier in ["fast", "cascade"] {
        let out = warden().args(["train", "--tier", tier, "--source-offsets", "--out", "/nonexistent/out"]).output().unwrap();
        assert!(!out.status.success(), "{tier}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--tier encoder"), "{tier}: {}", String::from_utf8_lossy(&out.stderr));
        // So is the in-domain probe, which reads encoder vectors.
        let out = warden()
            .args(["train", "--tier", tier, "--domain-probe", "openai-moderation", "--out", "/nonexistent/out"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{tier}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--domain-probe") && err.contains("--tier encoder"), "{tier}: {err}");
    }
}

/// `train.jsonl` (240 rows) and `dev.jsonl` (90) in `dir`, over the tiny BERT's words: words
/// w1..w4 make a text violent; half the rows come from source "dom" (the domain), half
/// from "pub" (public data); S is labelled and always negative.
fn write_two_source_split(dir: &Path) {
    let write = |name: &str, n: usize, salt: usize| {
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        for i in 0..n {
            let violent = i % 3 == 0;
            let lead = if violent { 1 + i % 4 } else { 10 + i % 20 };
            let text = format!("w{lead} w{} w{} w{}", (i * 7 + salt) % 40, (i * 13 + salt) % 40, 5 + i % 30);
            let source = if i % 2 == 0 { "dom" } else { "pub" };
            let v = u8::from(violent);
            writeln!(f, r#"{{"id": "{name}{i}", "text": "{text}", "labels": {{"V": {v}, "S": 0}}, "source": "{source}"}}"#).unwrap();
        }
    };
    write("train.jsonl", 240, 0);
    write("dev.jsonl", 90, 5);
}

/// `warden train --tier encoder` end to end on the tiny random BERT (no download): heads on
/// every source plus an in-domain probe on one source's train rows (on the encoder's layer
/// means by default, or on the pooled vector), a format 3 artifact that records the probe,
/// and `warden score` and `warden eval` loading it; eval's live scores agree with the dev
/// metrics the trainer computed from the embedding cache. A probe source with no train rows
/// is refused with the sources that exist.
#[test]
fn encoder_tier_trains_with_an_in_domain_probe_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("tiny-bert");
    std::fs::create_dir_all(&enc).unwrap();
    warden_encoder::testing::write_tiny_bert(&enc, 3).unwrap();
    write_two_source_split(tmp.path());
    let train = |probe: &str, out: &str, features: &str| {
        warden()
            .args(["train", "--tier", "encoder", "--head-epochs", "3", "--domain-probe", probe, "--probe-features", features])
            .arg("--out")
            .arg(tmp.path().join(out))
            .arg("--encoder")
            .arg(&enc)
            .arg("--embedding-cache")
            .arg(tmp.path().join("emb.sqlite"))
            .arg("--train-file")
            .arg(tmp.path().join("train.jsonl"))
            .arg("--dev-file")
            .arg(tmp.path().join("dev.jsonl"))
            .output()
            .unwrap()
    };
    let out = train("dom", "m", "layer-means");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("m/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["format_version"], 3);
    assert_eq!(m["probe"]["features"], serde_json::json!({"layer-means": {"layers": 2}}), "the tiny BERT has 2 layers");
    assert_eq!(m["probe"]["source"], "dom");
    assert_eq!(m["probe"]["rows"], 120);
    // V and S are labelled, V has both classes; S is all negative, so it is not fitted.
    let fitted: Vec<bool> = m["probe"]["fitted"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
    assert_eq!(fitted, [false, false, true, false, false, false, false, false]);
    assert!(std::fs::read_to_string(tmp.path().join("m/datasheet.md")).unwrap().contains("In-domain probe"));
    let scored = warden()
        .env("WARDEN_ENCODER", &enc)
        .args(["score", "--model"])
        .arg(tmp.path().join("m"))
        .args(["w1 w9 w20 w7", "w15 w9 w20 w7"])
        .output()
        .unwrap();
    assert!(scored.status.success(), "{}", String::from_utf8_lossy(&scored.stderr));
    let v: Vec<Value> = String::from_utf8(scored.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(v.len(), 2);
    assert!(v[0]["category_scores"]["violence"].is_number());
    // The live encoder (layer means computed in the forward pass) scores dev as the trainer
    // did from the cache (f16 vectors, hence the tolerance).
    let eval = warden()
        .env("WARDEN_ENCODER", &enc)
        .args(["eval", "--format", "json", "--model"])
        .arg(tmp.path().join("m"))
        .arg("--data")
        .arg(tmp.path().join("dev.jsonl"))
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let e: Value = serde_json::from_slice(&eval.stdout).unwrap();
    let (live, trained) = (e["categories"]["V"]["auprc"].as_f64().unwrap(), m["metrics"]["dev"]["categories"]["V"]["auprc"].as_f64().unwrap());
    assert!((live - trained).abs() < 0.02, "eval {live} against the trainer's {trained}");

    let out = train("dom", "m-pooled", "pooled");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("m-pooled/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["probe"]["features"], "pooled");

    let bad = train("nosuch", "m2", "layer-means");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--domain-probe nosuch") && err.contains("dom, pub"), "{err}");
}

/// `warden train --static-probe` on the tiny random BERT (no download): a format 2 fast
/// model with its probe file and the n-gram heads' own thresholds, which scores with the
/// encoder's table and refuses another encoder's; the option is refused outside the fast
/// tier.
#[test]
fn fast_tier_trains_with_a_static_probe_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("tiny-bert");
    std::fs::create_dir_all(&enc).unwrap();
    warden_encoder::testing::write_tiny_bert(&enc, 3).unwrap();
    write_two_source_split(tmp.path());
    let out = warden()
        .args(["train", "--static-probe", "dom", "--out"])
        .arg(tmp.path().join("m"))
        .arg("--encoder")
        .arg(&enc)
        .arg("--train-file")
        .arg(tmp.path().join("train.jsonl"))
        .arg("--dev-file")
        .arg(tmp.path().join("dev.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("m/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["format_version"], 2);
    assert_eq!(m["static_probe"]["source"], "dom");
    assert_eq!(m["static_probe"]["rows"], 120);
    let fitted: Vec<bool> = m["static_probe"]["fitted"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
    assert_eq!(fitted, [false, false, true, false, false, false, false, false], "V only: S is all negative");
    assert!(m["metrics"]["dev_ngram_heads_alone"]["any"].is_object());
    for f in ["static-probe.bin", "policy-ngrams.toml", "policy.toml"] {
        assert!(tmp.path().join("m").join(f).is_file(), "{f}");
    }
    assert!(std::fs::read_to_string(tmp.path().join("m/datasheet.md")).unwrap().contains("Static-embedding probe"));
    let score = |encoder: &Path| {
        warden().env("WARDEN_ENCODER", encoder).args(["score", "--model"]).arg(tmp.path().join("m")).args(["w1 w9", "w15 w9"]).output().unwrap()
    };
    let scored = score(&enc);
    assert!(scored.status.success(), "{}", String::from_utf8_lossy(&scored.stderr));
    let v: Vec<Value> = String::from_utf8(scored.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(v[0]["category_scores"]["violence"].as_f64().unwrap() > v[1]["category_scores"]["violence"].as_f64().unwrap());
    // Another encoder's table is refused, naming the checksum.
    let other = tmp.path().join("other-bert");
    std::fs::create_dir_all(&other).unwrap();
    warden_encoder::testing::write_tiny_bert(&other, 4).unwrap();
    let bad = score(&other);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SHA-256"), "{}", String::from_utf8_lossy(&bad.stderr));
    // A fetch marker vouches for the weights' hash while the file keeps the recorded size
    // (the file is then not hashed at start-up): a marker naming another hash is believed
    // and the table refused; once the size no longer matches, the file is hashed again.
    let size = std::fs::metadata(enc.join("model.safetensors")).unwrap().len();
    let marker = |size: u64| {
        let m = serde_json::json!({"format_version": 1, "safetensors_sha256": "ab".repeat(32), "size": size});
        std::fs::write(enc.join("warden-fetch.json"), m.to_string()).unwrap();
    };
    marker(size);
    let vouched = score(&enc);
    assert!(!vouched.status.success());
    assert!(String::from_utf8_lossy(&vouched.stderr).contains(&"ab".repeat(32)), "{}", String::from_utf8_lossy(&vouched.stderr));
    marker(size + 1);
    let rehashed = score(&enc);
    assert!(rehashed.status.success(), "{}", String::from_utf8_lossy(&rehashed.stderr));
    std::fs::remove_file(enc.join("warden-fetch.json")).unwrap();
    // Only the fast tier has it.
    let out = warden().args(["train", "--tier", "encoder", "--static-probe", "dom", "--out", "/nonexistent/out"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tier fast"));
}
