//! Which model the binary uses when none is named. A build that embeds a cascade
//! (`models/default-cascade` + `models/default-encoder`) makes it the default where its
//! encoder is available and falls back to the embedded fast tier, saying so, where it is
//! not; `warden curate` always starts from the fast tier. These tests need no download:
//! the fallback is forced with an empty cache whose last fetch "failed" a moment ago.
#![cfg(all(warden_embedded_model, warden_embedded_cascade))]

use std::path::Path;
use std::process::Command;

fn warden(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.env_remove("WARDEN_MODEL")
        .env_remove("WARDEN_TIER")
        .env_remove("WARDEN_ENCODER")
        .env("WARDEN_CACHE", cache)
        .env("CI", "1");
    c
}

/// A cache with no encoder whose last fetch failed just now, so nothing is downloaded.
fn offline_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fetch-failed"), b"").unwrap();
    dir
}

const TEXTS: [&str; 2] = ["I will find you and hurt you", "Have a lovely day"];

#[test]
fn without_its_encoder_the_default_cascade_falls_back_to_the_fast_tier() {
    let cache = offline_cache();
    let out = warden(cache.path()).arg("score").args(TEXTS).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("using the fast tier") && err.contains("warden model fetch"), "{err}");

    let fast = warden(cache.path()).env("WARDEN_TIER", "fast").arg("score").args(TEXTS).output().unwrap();
    assert!(fast.status.success());
    assert_eq!(out.stdout, fast.stdout, "the fallback is the embedded fast tier");
    assert!(!String::from_utf8_lossy(&fast.stderr).contains("using the fast tier"), "WARDEN_TIER=fast is silent");

    // Asking for the cascade explicitly makes a missing encoder an error.
    let strict = warden(cache.path()).env("WARDEN_TIER", "cascade").arg("score").args(TEXTS).output().unwrap();
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("encoder"), "{}", String::from_utf8_lossy(&strict.stderr));
}

#[test]
fn curate_starts_from_the_fast_tier_without_looking_for_the_encoder() {
    let cache = offline_cache();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"Have a lovely day\"}\n{\"text\": \"I will find you and hurt you\"}\n").unwrap();
    let out = warden(cache.path())
        .args(["curate", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("using the fast tier"), "curate must not try the cascade: {err}");
}

/// Where this machine's real cache holds the default encoder (`warden model fetch`), the
/// default model is the cascade. Skipped, saying so, where it does not: CI downloads nothing.
#[test]
fn with_its_encoder_cached_the_default_is_the_cascade() {
    let real = warden_encoder::fetch::cache_root();
    let enc = warden_encoder::fetch::encoder_dir(&warden_encoder::fetch::DEFAULT_ENCODER);
    if !warden_encoder::fetch::is_fetched(&enc, &warden_encoder::fetch::DEFAULT_ENCODER) {
        eprintln!("skipped: the default encoder is not in {} (run `warden model fetch`)", real.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("eval.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"I will find you and hurt you\", \"labels\": {\"V\": 1, \"HR\": 1}}\n\
         {\"text\": \"Have a lovely day\", \"labels\": {\"V\": 0, \"HR\": 0}}\n",
    )
    .unwrap();
    let out = warden(&real).args(["eval", "--format", "json", "--data"]).arg(&data).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("using the fast tier"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fast = warden(&real).env("WARDEN_TIER", "fast").args(["eval", "--format", "json", "--data"]).arg(&data).output().unwrap();
    let f: serde_json::Value = serde_json::from_slice(&fast.stdout).unwrap();
    assert_ne!(v["model"], f["model"], "the default should be the cascade, not the fast tier");
    assert!(v["model"].as_str().unwrap().contains("cascade"), "{}", v["model"]);
}
