//! Finding and loading a model and its policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use warden_core::Classifier;
use warden_fast::FastModel;
use warden_policy::ThresholdPolicy;

pub const POLICY_FILE: &str = "policy.toml";

/// A model with the policy that decides on its scores.
pub struct Loaded {
    pub model: FastModel,
    pub policy: ThresholdPolicy,
    /// Where it came from, for messages (`embedded default` or a path).
    pub origin: String,
}

#[cfg(warden_embedded_model)]
mod embedded {
    pub const MANIFEST: &[u8] =
        include_bytes!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/manifest.json"));
    pub const WEIGHTS: &[u8] =
        include_bytes!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/weights.bin"));
    pub const POLICY: &str = include_str!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/policy.toml"));
}

/// Loads `model` (a model directory), or the default model: `$WARDEN_MODEL` if set, else
/// the one embedded in this binary. `policy` overrides the model's own `policy.toml`.
pub fn load(model: Option<&Path>, policy: Option<&Path>) -> Result<Loaded> {
    let env = std::env::var_os("WARDEN_MODEL").map(PathBuf::from);
    let (model, origin, own_policy) = match model.map(Path::to_owned).or(env) {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("model {} is not a directory (expected manifest.json and weights.bin)", dir.display());
            }
            let m = FastModel::load(&dir).with_context(|| format!("loading model {}", dir.display()))?;
            let p = dir.join(POLICY_FILE);
            let own = if p.is_file() {
                Some(ThresholdPolicy::load(&p, m.taxonomy())?)
            } else {
                None
            };
            (m, dir.display().to_string(), own)
        }
        None => embedded_default()?,
    };
    let policy = match policy {
        Some(p) => ThresholdPolicy::load(p, model.taxonomy())
            .with_context(|| format!("loading policy {}", p.display()))?,
        None => own_policy.unwrap_or_else(|| ThresholdPolicy::uniform("uniform-0.5", model.taxonomy(), 0.5)),
    };
    Ok(Loaded { model, policy, origin })
}

#[cfg(warden_embedded_model)]
fn embedded_default() -> Result<(FastModel, String, Option<ThresholdPolicy>)> {
    let m = FastModel::from_bytes(embedded::MANIFEST, embedded::WEIGHTS)
        .context("loading the embedded default model")?;
    let p = ThresholdPolicy::from_toml_str(embedded::POLICY, m.taxonomy())
        .context("loading the embedded default policy")?;
    Ok((m, "embedded default".into(), Some(p)))
}

#[cfg(not(warden_embedded_model))]
fn embedded_default() -> Result<(FastModel, String, Option<ThresholdPolicy>)> {
    bail!(
        "this binary was built without a default model (models/default/ was missing at build \
         time); pass --model DIR or train one with `warden train --out models/default`"
    )
}
