//! Finding and loading a model (fast, encoder or cascade) and its policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use warden_core::Classifier;
use warden_fast::FastModel;
use warden_heads::{CascadeClassifier, CascadeManifest, EncoderClassifier, HeadsModel};
use warden_policy::ThresholdPolicy;

pub const POLICY_FILE: &str = "policy.toml";

/// A model with the policy that decides on its scores.
pub struct Loaded {
    pub model: Box<dyn Classifier>,
    pub policy: ThresholdPolicy,
    /// Where it came from, for messages (`embedded default` or a path).
    pub origin: String,
}

#[cfg(warden_embedded_model)]
mod embedded {
    pub const MANIFEST: &[u8] = include_bytes!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/manifest.json"));
    pub const WEIGHTS: &[u8] = include_bytes!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/weights.bin"));
    pub const POLICY: &str = include_str!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/policy.toml"));
}

#[cfg(warden_embedded_cascade)]
mod embedded_cascade {
    pub const HEADS_MANIFEST: &[u8] = include_bytes!(concat!(env!("WARDEN_EMBEDDED_ENCODER_DIR"), "/manifest.json"));
    pub const HEADS: &[u8] = include_bytes!(concat!(env!("WARDEN_EMBEDDED_ENCODER_DIR"), "/heads.safetensors"));
    pub const MANIFEST: &[u8] = include_bytes!(concat!(env!("WARDEN_EMBEDDED_CASCADE_DIR"), "/manifest.json"));
    pub const POLICY: &str = include_str!(concat!(env!("WARDEN_EMBEDDED_CASCADE_DIR"), "/policy.toml"));
}

pub(crate) fn manifest_kind(dir: &Path) -> Result<String> {
    let p = dir.join("manifest.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    Ok(v.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string())
}

/// Loads any model directory: its manifest's `kind` says which tier.
pub fn load_dir(dir: &Path) -> Result<Box<dyn Classifier>> {
    if !dir.is_dir() {
        bail!("model {} is not a directory (expected manifest.json and weights)", dir.display());
    }
    let kind = manifest_kind(dir)?;
    Ok(match kind.as_str() {
        warden_heads::model::ENCODER_KIND => {
            let enc = crate::cmd_train_encoder::encoder_dir(None)?;
            Box::new(EncoderClassifier::load(dir, &enc).with_context(|| format!("loading encoder-tier model {}", dir.display()))?)
        }
        warden_heads::cascade::CASCADE_KIND => Box::new(load_cascade(dir)?),
        _ => Box::new(FastModel::load(dir).with_context(|| format!("loading model {}", dir.display()))?),
    })
}

pub(crate) fn load_cascade(dir: &Path) -> Result<CascadeClassifier> {
    let p = dir.join("manifest.json");
    let m: CascadeManifest = serde_json::from_str(&std::fs::read_to_string(&p)?).with_context(|| format!("parsing {}", p.display()))?;
    let fast_dir = dir.join(&m.fast);
    let fast = FastModel::load(&fast_dir).with_context(|| format!("loading the cascade's fast model {}", fast_dir.display()))?;
    let heads_dir = dir.join(&m.encoder);
    let heads = HeadsModel::load(&heads_dir).with_context(|| format!("loading the cascade's encoder heads {}", heads_dir.display()))?;
    let enc = crate::cmd_train_encoder::encoder_dir(None)?;
    let clf = EncoderClassifier::new(heads, &enc)?;
    Ok(CascadeClassifier::new(m, fast, clf)?)
}

/// Which embedded model a command wants when no model is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultTier {
    /// The cascade when the binary embeds one and its encoder is available, else the fast
    /// tier (score, eval, serve, active learning).
    Best,
    /// The fast tier: corpus-scale jobs (`warden curate`), whose throughput and curation
    /// policy are the fast tier's.
    Fast,
}

/// Loads `model` (a model directory), or the default model: `$WARDEN_MODEL` if set, else
/// the one embedded in this binary. `policy` overrides the model's own `policy.toml`.
pub fn load(model: Option<&Path>, policy: Option<&Path>) -> Result<Loaded> {
    load_default_tier(model, policy, DefaultTier::Best)
}

/// [`load`], choosing the embedded tier when no model is named.
pub fn load_default_tier(model: Option<&Path>, policy: Option<&Path>, tier: DefaultTier) -> Result<Loaded> {
    let env = std::env::var_os("WARDEN_MODEL").map(PathBuf::from);
    let (model, origin, own_policy): (Box<dyn Classifier>, String, Option<ThresholdPolicy>) =
        match model.map(Path::to_owned).or(env) {
            Some(dir) => {
                let m = load_dir(&dir)?;
                let p = dir.join(POLICY_FILE);
                let own = if p.is_file() { Some(ThresholdPolicy::load(&p, m.taxonomy())?) } else { None };
                (m, dir.display().to_string(), own)
            }
            None => embedded_default(tier)?,
        };
    let policy = match policy {
        Some(p) => ThresholdPolicy::load(p, model.taxonomy()).with_context(|| format!("loading policy {}", p.display()))?,
        None => own_policy.unwrap_or_else(|| ThresholdPolicy::uniform("uniform-0.5", model.taxonomy(), 0.5)),
    };
    Ok(Loaded { model, policy, origin })
}

#[cfg(warden_embedded_model)]
fn embedded_fast() -> Result<(FastModel, ThresholdPolicy)> {
    let m = FastModel::from_bytes(embedded::MANIFEST, embedded::WEIGHTS).context("loading the embedded default model")?;
    let p = ThresholdPolicy::from_toml_str(embedded::POLICY, m.taxonomy()).context("loading the embedded default policy")?;
    Ok((m, p))
}

/// `WARDEN_TIER=fast` (or [`DefaultTier::Fast`]) keeps the default on the fast tier;
/// otherwise the default is the cascade when this binary embeds one and the encoder is (or
/// can be) fetched. `WARDEN_TIER=cascade` makes a missing encoder an error.
#[cfg(warden_embedded_model)]
fn embedded_default(want: DefaultTier) -> Result<(Box<dyn Classifier>, String, Option<ThresholdPolicy>)> {
    let (fast, fast_policy) = embedded_fast()?;
    #[cfg(warden_embedded_cascade)]
    {
        let tier = std::env::var("WARDEN_TIER").unwrap_or_default();
        if tier != "fast" && (want == DefaultTier::Best || tier == "cascade") {
            match embedded_cascade(fast.clone()) {
                Ok((c, p)) => return Ok((Box::new(c), "embedded default cascade".into(), Some(p))),
                Err(e) if tier == "cascade" => return Err(e),
                Err(e) => eprintln!(
                    "warden: using the fast tier ({e:#}). Run `warden model fetch` for the more accurate cascade, \
                     or set WARDEN_TIER=fast to silence this."
                ),
            }
        }
    }
    #[cfg(not(warden_embedded_cascade))]
    let _ = want;
    Ok((Box::new(fast), "embedded default".into(), Some(fast_policy)))
}

#[cfg(warden_embedded_cascade)]
fn embedded_cascade(fast: FastModel) -> Result<(CascadeClassifier, ThresholdPolicy)> {
    let m: CascadeManifest = serde_json::from_slice(embedded_cascade::MANIFEST).context("embedded cascade manifest")?;
    let heads = HeadsModel::from_bytes(embedded_cascade::HEADS_MANIFEST, embedded_cascade::HEADS)?;
    let enc = default_encoder_if_allowed()?;
    let clf = EncoderClassifier::new(heads, &enc)?;
    let p = ThresholdPolicy::from_toml_str(embedded_cascade::POLICY, &m.taxonomy)?;
    Ok((CascadeClassifier::new(m, fast, clf)?, p))
}

/// The encoder directory; fetches it on first use, but after a failed fetch waits an
/// hour before trying again so an offline machine is not slowed down on every run.
#[cfg(warden_embedded_cascade)]
fn default_encoder_if_allowed() -> Result<PathBuf> {
    use warden_encoder::fetch::{cache_root, encoder_dir, is_fetched, DEFAULT_ENCODER};
    if let Some(d) = std::env::var_os("WARDEN_ENCODER") {
        return Ok(PathBuf::from(d));
    }
    let dir = encoder_dir(&DEFAULT_ENCODER);
    if is_fetched(&dir, &DEFAULT_ENCODER) {
        return Ok(dir);
    }
    let stamp = cache_root().join("fetch-failed");
    if let Ok(meta) = std::fs::metadata(&stamp) {
        if meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|e| e.as_secs() < 3600) {
            bail!("the encoder is not fetched and the last attempt failed less than an hour ago");
        }
    }
    crate::cmd_model::default_encoder_dir().inspect_err(|_| {
        let _ = std::fs::create_dir_all(cache_root());
        let _ = std::fs::write(&stamp, b"");
    })
}

#[cfg(not(warden_embedded_model))]
fn embedded_default(_: DefaultTier) -> Result<(Box<dyn Classifier>, String, Option<ThresholdPolicy>)> {
    bail!(
        "this binary was built without a default model (models/default/ was missing at build \
         time); pass --model DIR or train one with `warden train --out models/default`"
    )
}
