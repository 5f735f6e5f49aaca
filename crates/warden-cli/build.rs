//! Embeds the committed default model (`models/default/`) into the binary when it exists,
//! so `warden score` works from any directory with nothing else installed. A checkout
//! without it (a fresh fork before the first `warden train`) still builds; the binary then
//! asks for `--model`.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../models/default")
        .canonicalize()
        .ok();
    println!("cargo::rustc-check-cfg=cfg(warden_embedded_model)");
    println!("cargo::rustc-check-cfg=cfg(warden_embedded_cascade)");
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
        }
    }
}
