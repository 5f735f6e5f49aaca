//! Finding and loading a model (fast, encoder or cascade) and its policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use warden_core::Classifier;
use warden_fast::static_probe::StaticTable;
use warden_fast::FastModel;
use warden_heads::{CascadeClassifier, CascadeManifest, EncoderClassifier, HeadsModel};
use warden_policy::ThresholdPolicy;

pub const POLICY_FILE: &str = "policy.toml";
/// A fast model with a static probe also carries the thresholds tuned for its n-gram heads
/// alone, used when the encoder's files are not available.
pub const NGRAM_POLICY_FILE: &str = "policy-ngrams.toml";

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
    /// The static-embedding probe and the n-gram heads' own thresholds, when the default
    /// model has a probe.
    #[cfg(warden_embedded_static)]
    pub const STATIC: Option<(&[u8], &str)> = Some((
        include_bytes!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/static-probe.bin")),
        include_str!(concat!(env!("WARDEN_EMBEDDED_MODEL_DIR"), "/policy-ngrams.toml")),
    ));
    #[cfg(not(warden_embedded_static))]
    pub const STATIC: Option<(&[u8], &str)> = None;
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
        _ => Box::new(load_fast(dir, None)?),
    })
}

/// Loads a fast model directory and, when it has a static-embedding probe, attaches the
/// embedding table of `encoder` (default: `$WARDEN_ENCODER`, else the default encoder,
/// fetched on first use).
pub(crate) fn load_fast(dir: &Path, encoder: Option<&Path>) -> Result<FastModel> {
    let mut m = FastModel::load(dir).with_context(|| format!("loading model {}", dir.display()))?;
    attach_static(&mut m, encoder)?;
    Ok(m)
}

/// Attaches the encoder's embedding table to a fast model's static probe (a no-op for a
/// model without one).
pub(crate) fn attach_static(m: &mut FastModel, encoder: Option<&Path>) -> Result<()> {
    if !m.needs_static_table() {
        return Ok(());
    }
    let why = "the fast model's static-embedding probe reads its encoder's token embeddings";
    let dir = crate::cmd_train_encoder::encoder_dir(encoder).context(why)?;
    // The fetch marker's hash when the weights still have the fetched size, as the encoder
    // tier trusts it; hashing the 90 MB file at every start takes 0.10 s instead of 0.04 s.
    let sha = warden_encoder::encoder::weights_sha256(&dir).with_context(|| format!("{why}: {}", dir.display()))?;
    let table = StaticTable::load_with_sha256(&dir, Some(sha))
        .with_context(|| format!("{why}: loading them from {}", dir.display()))?;
    m.attach_static_table(Arc::new(table)).with_context(|| format!("{why}: {}", dir.display()))?;
    Ok(())
}

pub(crate) fn load_cascade(dir: &Path) -> Result<CascadeClassifier> {
    let p = dir.join("manifest.json");
    let m: CascadeManifest = serde_json::from_str(&std::fs::read_to_string(&p)?).with_context(|| format!("parsing {}", p.display()))?;
    let fast_dir = dir.join(&m.fast);
    let fast = load_fast(&fast_dir, None).with_context(|| format!("loading the cascade's fast model {}", fast_dir.display()))?;
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

/// The embedded fast model. With a static probe it reads the encoder's embedding table
/// from `encoder`; without it (not fetched, offline) it runs on its n-gram heads alone, with
/// the thresholds tuned for them, and says so.
#[cfg(warden_embedded_model)]
fn embedded_fast(encoder: Result<&Path, &anyhow::Error>) -> Result<(FastModel, ThresholdPolicy)> {
    let mut m = FastModel::from_files(embedded::MANIFEST, embedded::WEIGHTS, embedded::STATIC.map(|(b, _)| b))
        .context("loading the embedded default model")?;
    let mut policy = embedded::POLICY;
    if m.needs_static_table() {
        let attached = match encoder {
            Ok(dir) => attach_static(&mut m, Some(dir)),
            Err(e) => Err(anyhow::anyhow!("{e:#}")),
        };
        if let Err(e) = attached {
            eprintln!(
                "warden: the fast tier runs on its n-gram heads alone, without its static-embedding probe ({e:#}). \
                 Run `warden model fetch` for the full model."
            );
            m = m.without_static_probe();
            policy = embedded::STATIC.map_or(embedded::POLICY, |(_, p)| p);
        }
    }
    let p = ThresholdPolicy::from_toml_str(policy, m.taxonomy()).context("loading the embedded default policy")?;
    Ok((m, p))
}

/// The default encoder's directory if it is already here (`$WARDEN_ENCODER`, or fetched):
/// the fast tier reads its embedding table but never fetches it.
#[cfg(warden_embedded_model)]
fn cached_encoder() -> Result<PathBuf> {
    use warden_encoder::fetch::{encoder_dir, is_fetched, DEFAULT_ENCODER};
    if let Some(d) = std::env::var_os("WARDEN_ENCODER") {
        return Ok(PathBuf::from(d));
    }
    let dir = encoder_dir(&DEFAULT_ENCODER);
    if is_fetched(&dir, &DEFAULT_ENCODER) {
        Ok(dir)
    } else {
        bail!("the encoder all-MiniLM-L6-v2 is not fetched")
    }
}

/// `WARDEN_TIER=fast` (or [`DefaultTier::Fast`]) keeps the default on the fast tier;
/// otherwise the default is the cascade when this binary embeds one and the encoder is (or
/// can be) fetched. `WARDEN_TIER=cascade` makes a missing encoder an error.
#[cfg(warden_embedded_model)]
fn embedded_default(want: DefaultTier) -> Result<(Box<dyn Classifier>, String, Option<ThresholdPolicy>)> {
    let tier = std::env::var("WARDEN_TIER").unwrap_or_default();
    let cascade = cfg!(warden_embedded_cascade) && tier != "fast" && (want == DefaultTier::Best || tier == "cascade");
    // Only the cascade fetches the encoder; the fast tier uses it when it is here.
    let encoder = if cascade { default_encoder_if_allowed() } else { cached_encoder() };
    let (fast, fast_policy) = embedded_fast(encoder.as_deref())?;
    #[cfg(warden_embedded_cascade)]
    if cascade {
        match encoder.and_then(|enc| embedded_cascade(fast.clone(), &enc)) {
            Ok((c, p)) => return Ok((Box::new(c), "embedded default cascade".into(), Some(p))),
            Err(e) if tier == "cascade" => return Err(e),
            Err(e) => eprintln!(
                "warden: using the fast tier ({e:#}). Run `warden model fetch` for the more accurate cascade, \
                 or set WARDEN_TIER=fast to silence this."
            ),
        }
    }
    Ok((Box::new(fast), "embedded default".into(), Some(fast_policy)))
}

#[cfg(warden_embedded_cascade)]
fn embedded_cascade(fast: FastModel, enc: &Path) -> Result<(CascadeClassifier, ThresholdPolicy)> {
    let m: CascadeManifest = serde_json::from_slice(embedded_cascade::MANIFEST).context("embedded cascade manifest")?;
    let heads = HeadsModel::from_bytes(embedded_cascade::HEADS_MANIFEST, embedded_cascade::HEADS)?;
    let clf = EncoderClassifier::new(heads, enc)?;
    let p = ThresholdPolicy::from_toml_str(embedded_cascade::POLICY, &m.taxonomy)?;
    Ok((CascadeClassifier::new(m, fast, clf)?, p))
}

/// The encoder directory; fetches it on first use, but after a failed fetch waits an
/// hour before trying again so an offline machine is not slowed down on every run.
#[cfg(warden_embedded_model)]
fn default_encoder_if_allowed() -> Result<PathBuf> {
    use warden_encoder::fetch::cache_root;
    if let Ok(dir) = cached_encoder() {
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
