//! Rewrites an encoder-heads model directory's `heads.safetensors` in the precision this
//! build stores (f16 heads and f16 fine-tuned encoder tensors; fine-tuned tensors were f32
//! before 2026-12-07), and its manifest's `heads_sha256` to match (only that value changes
//! in the manifest's text). The rounding changes scores slightly, so the manifest's
//! recorded dev metrics are those of the f32 model: re-measure with `warden eval`.
//!
//! ```sh
//! cargo run --release -p warden-heads --example repack-heads -- DIR
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os().nth(1).ok_or("usage: repack-heads MODEL_DIR")?.into();
    let file = dir.join("heads.safetensors");
    let before = std::fs::metadata(&file)?.len();
    let mut model = warden_heads::HeadsModel::load(&dir)?;
    let old_sha = model.manifest.heads_sha256.clone();
    let manifest = std::fs::read_to_string(dir.join("manifest.json"))?;
    if manifest.matches(&old_sha).count() != 1 {
        return Err("manifest.json does not hold its heads_sha256 exactly once; nothing written".into());
    }
    let tmp = tempfile::tempdir_in(dir.parent().unwrap_or(&dir))?;
    model.save(tmp.path())?;
    warden_heads::HeadsModel::load(tmp.path())?;
    std::fs::rename(tmp.path().join("heads.safetensors"), &file)?;
    std::fs::write(dir.join("manifest.json"), manifest.replace(&old_sha, &model.manifest.heads_sha256))?;
    let after = std::fs::metadata(&file)?.len();
    println!("{}: heads.safetensors {before} → {after} bytes", dir.display());
    Ok(())
}
