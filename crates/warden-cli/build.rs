//! Embeds the committed default model (`models/default/`) into the binary when it exists,
//! so `warden score` works from any directory with nothing else installed. A checkout
//! without it (a fresh fork before the first `warden train`) still builds; the binary then
//! asks for `--model`.
use std::path::PathBuf;

/// The source revision for run manifests: `git describe`-like commit id, `-dirty` when the
/// tree has changes; `unknown` outside a git checkout.
fn revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        _ => "unknown".to_string(),
    }
}

fn main() {
    println!("cargo::rustc-env=WARDEN_REVISION={}", revision());
    for f in ["../../.git/HEAD", "../../.git/index"] {
        if std::path::Path::new(f).exists() {
            println!("cargo::rerun-if-changed={f}");
        }
    }
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../models/default")
        .canonicalize()
        .ok();
    println!("cargo::rustc-check-cfg=cfg(warden_embedded_model)");
    println!("cargo::rustc-check-cfg=cfg(warden_embedded_cascade)");
    println!("cargo::rustc-check-cfg=cfg(warden_embedded_static)");
    // The cascade (fast + encoder heads) is embedded too when committed; its encoder is
    // fetched at run time.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../models");
    println!("cargo::rerun-if-changed={}", root.display());
    let enc = root.join("default-encoder").canonicalize().ok();
    let cas = root.join("default-cascade").canonicalize().ok();
    if let (Some(enc), Some(cas)) = (enc, cas) {
        let files = [enc.join("manifest.json"), enc.join("heads.safetensors"), cas.join("manifest.json"), cas.join("policy.toml")];
        for f in &files {
            println!("cargo::rerun-if-changed={}", f.display());
        }
        if files.iter().all(|f| f.is_file()) {
            println!("cargo::rustc-cfg=warden_embedded_cascade");
            println!("cargo::rustc-env=WARDEN_EMBEDDED_ENCODER_DIR={}", enc.display());
            println!("cargo::rustc-env=WARDEN_EMBEDDED_CASCADE_DIR={}", cas.display());
        }
    }
    println!("cargo::rerun-if-changed=../../models/default");
    if let Some(dir) = dir {
        let files = ["manifest.json", "weights.bin", "policy.toml"];
        for f in files {
            println!("cargo::rerun-if-changed={}", dir.join(f).display());
        }
        if files.iter().all(|f| dir.join(f).is_file()) {
            println!("cargo::rustc-cfg=warden_embedded_model");
            println!("cargo::rustc-env=WARDEN_EMBEDDED_MODEL_DIR={}", dir.display());
            // A static-embedding probe and the n-gram heads' own thresholds.
            let extra = ["static-probe.bin", "policy-ngrams.toml"];
            for f in extra {
                println!("cargo::rerun-if-changed={}", dir.join(f).display());
            }
            if extra.iter().all(|f| dir.join(f).is_file()) {
                println!("cargo::rustc-cfg=warden_embedded_static");
            }
        }
    }
}
