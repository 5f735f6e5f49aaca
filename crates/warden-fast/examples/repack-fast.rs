//! Rewrites a fast model directory's `weights.bin` in the smallest encoding this build
//! writes (sparse f16 when most weights are zero; see `encode_weights`), and its
//! manifest's `weights_sha256` to match (only that value changes in the manifest's text).
//! Lossless: the weights, and so every score, are unchanged, which this checks before
//! writing (on the n-gram heads' scores: a static-embedding probe is not touched).
//!
//! ```sh
//! cargo run --release -p warden-fast --example repack-fast -- models/default
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os().nth(1).ok_or("usage: repack-fast MODEL_DIR")?.into();
    let before = std::fs::metadata(dir.join("weights.bin"))?.len();
    let mut model = warden_fast::FastModel::load(&dir)?;
    let old_sha = model.manifest().weights_sha256.clone();
    let probe = ["I will hurt you", "a perfectly ordinary sentence", "k1ll them all"];
    // The n-gram heads alone: a static probe's table is not attached here, and repacking
    // does not touch the probe.
    let ngrams = model.without_static_probe();
    let want: Vec<_> = probe.iter().map(|t| ngrams.score_one(t)).collect();
    let tmp = tempfile::tempdir_in(dir.parent().unwrap_or(&dir))?;
    model.save(tmp.path())?;
    let back = warden_fast::FastModel::load(tmp.path())?.without_static_probe();
    for (t, w) in probe.iter().zip(&want) {
        if &back.score_one(t) != w {
            return Err(format!("repacked model scores {t:?} differently; nothing written").into());
        }
    }
    let manifest = std::fs::read_to_string(dir.join("manifest.json"))?;
    if manifest.matches(&old_sha).count() != 1 {
        return Err("manifest.json does not hold its weights_sha256 exactly once; nothing written".into());
    }
    let manifest = manifest.replace(&old_sha, &back.manifest().weights_sha256);
    std::fs::rename(tmp.path().join("weights.bin"), dir.join("weights.bin"))?;
    std::fs::write(dir.join("manifest.json"), manifest)?;
    let after = std::fs::metadata(dir.join("weights.bin"))?.len();
    println!("{}: weights.bin {before} → {after} bytes", dir.display());
    Ok(())
}
