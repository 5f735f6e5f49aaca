use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_core::{Classifier, Scores, Taxonomy};

use crate::features::{FeatureConfig, Featurizer};

/// On-disk format version of a fast model directory. Bump on any incompatible change and
/// keep a reader for every version still in use (see the compatibility tests).
pub const FAST_FORMAT_VERSION: u32 = 1;
const KIND: &str = "warden-fast";
const WEIGHTS_MAGIC: &[u8; 8] = b"WDNFAST\0";
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
pub(crate) const WEIGHTS_FILE: &str = "weights.bin";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid model manifest: {0}")]
    Manifest(String),
    #[error("model format version {found} is not supported (this build reads {supported})")]
    Version { found: u32, supported: u32 },
    #[error("invalid weight file: {0}")]
    Weights(String),
    #[error("weight file checksum mismatch: manifest says {expected}, file is {found}")]
    Checksum { expected: String, found: String },
    #[error(
        "model was trained with normalizer {found:?} but this build has {current:?}; retrain it"
    )]
    Normalizer { found: String, current: String },
}

/// Per-category Platt scaling: `p = sigmoid(a * z + b)` for a raw head output `z`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub a: f32,
    pub b: f32,
}

impl Default for Calibration {
    fn default() -> Self {
        Self { a: 1.0, b: 0.0 }
    }
}

impl Calibration {
    #[inline]
    pub fn apply(&self, z: f32) -> f32 {
        sigmoid(self.a * z + self.b)
    }
}

#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Everything about a model except its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub kind: String,
    pub name: String,
    pub taxonomy: Taxonomy,
    /// Identifier of the normalization pipeline the model was trained with.
    pub normalizer: String,
    pub features: FeatureConfig,
    /// Head biases, one per category.
    pub bias: Vec<f32>,
    pub calibration: Vec<Calibration>,
    /// SHA-256 of `weights.bin`.
    pub weights_sha256: String,
    /// How the model was made: data hashes, sources and licences, command, revision.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Dev-set metrics recorded at training time.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// A trained fast model, ready to score.
#[derive(Debug, Clone)]
pub struct FastModel {
    manifest: Manifest,
    featurizer: Featurizer,
    /// `dim × categories`, bucket-major: one bucket's weights for every category are
    /// adjacent, so each feature costs one cache line.
    weights: Vec<f32>,
}

pub(crate) fn normalizer_id() -> String {
    crate::norm::NORMALIZER_ID.to_string()
}

impl FastModel {
    pub(crate) fn from_parts(manifest: Manifest, weights: Vec<f32>) -> Self {
        let featurizer = Featurizer::new(manifest.features.clone());
        assert_eq!(weights.len(), featurizer.dim() * manifest.taxonomy.len());
        Self { manifest, featurizer, weights }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn manifest_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// Raw (uncalibrated) head outputs for already-normalized text.
    pub fn logits_normalized(&self, normalized: &str, out: &mut [f32]) {
        let c = self.manifest.taxonomy.len();
        debug_assert_eq!(out.len(), c);
        out.fill(0.0);
        let w = &self.weights;
        let n = self.featurizer.for_each_feature(normalized, |i| {
            let row = &w[i as usize * c..i as usize * c + c];
            for (o, x) in out.iter_mut().zip(row) {
                *o += x;
            }
        });
        let scale = if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() };
        for (o, b) in out.iter_mut().zip(&self.manifest.bias) {
            *o = *o * scale + b;
        }
    }

    /// Calibrated, hierarchy-consistent probabilities for one text.
    pub fn score_one(&self, text: &str) -> Scores {
        let normalized = crate::norm::normalize_text(text);
        let mut s = vec![0.0; self.manifest.taxonomy.len()];
        self.logits_normalized(&normalized, &mut s);
        for (x, cal) in s.iter_mut().zip(&self.manifest.calibration) {
            *x = cal.apply(*x);
        }
        self.manifest.taxonomy.enforce_scores(&mut s);
        s
    }

    /// Writes `manifest.json` and `weights.bin` into `dir` (created if missing).
    pub fn save(&mut self, dir: &Path) -> Result<(), ModelError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ModelError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let bytes = encode_weights(&self.weights, self.featurizer.dim(), self.manifest.taxonomy.len());
        self.manifest.weights_sha256 = hex::encode(Sha256::digest(&bytes));
        let wpath = dir.join(WEIGHTS_FILE);
        std::fs::write(&wpath, &bytes).map_err(io(&wpath))?;
        let mpath = dir.join(MANIFEST_FILE);
        let mut f = std::fs::File::create(&mpath).map_err(io(&mpath))?;
        serde_json::to_writer_pretty(&mut f, &self.manifest)
            .map_err(|e| ModelError::Manifest(e.to_string()))?;
        f.write_all(b"\n").map_err(io(&mpath))?;
        Ok(())
    }

    /// Loads a model directory written by [`FastModel::save`].
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ModelError::Io { path, source })
        };
        Self::from_bytes(&read(MANIFEST_FILE)?, &read(WEIGHTS_FILE)?)
    }

    /// Loads a model from the bytes of its two files (used for the embedded default).
    pub fn from_bytes(manifest: &[u8], weights: &[u8]) -> Result<Self, ModelError> {
        let probe: serde_json::Value =
            serde_json::from_slice(manifest).map_err(|e| ModelError::Manifest(e.to_string()))?;
        let found = probe.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != FAST_FORMAT_VERSION {
            return Err(ModelError::Version { found, supported: FAST_FORMAT_VERSION });
        }
        let manifest: Manifest =
            serde_json::from_value(probe).map_err(|e| ModelError::Manifest(e.to_string()))?;
        if manifest.kind != KIND {
            return Err(ModelError::Manifest(format!("kind is {:?}, expected {KIND:?}", manifest.kind)));
        }
        let c = manifest.taxonomy.len();
        if manifest.bias.len() != c || manifest.calibration.len() != c {
            return Err(ModelError::Manifest("bias/calibration length differs from taxonomy".into()));
        }
        if !(8..=28).contains(&manifest.features.bits) {
            return Err(ModelError::Manifest(format!("bits {} out of range", manifest.features.bits)));
        }
        let current = normalizer_id();
        if manifest.normalizer != current {
            return Err(ModelError::Normalizer { found: manifest.normalizer, current });
        }
        let found = hex::encode(Sha256::digest(weights));
        if found != manifest.weights_sha256 {
            return Err(ModelError::Checksum { expected: manifest.weights_sha256, found });
        }
        let w = decode_weights(weights, 1 << manifest.features.bits, c)?;
        Ok(Self::from_parts(manifest, w))
    }
}

impl Classifier for FastModel {
    fn taxonomy(&self) -> &Taxonomy {
        &self.manifest.taxonomy
    }

    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        // Small batches are not worth a thread hop.
        if texts.len() < 16 {
            Ok(texts.iter().map(|t| self.score_one(t)).collect())
        } else {
            Ok(texts.par_iter().map(|t| self.score_one(t)).collect())
        }
    }
}

/// Weight file: magic, then u32 LE format version, dim, categories, dtype (1 = f16), then
/// `dim × categories` values little-endian, bucket-major. f16 halves the committed size;
/// the precision loss is far below what calibration can see.
fn encode_weights(w: &[f32], dim: usize, cats: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + w.len() * 2);
    out.extend_from_slice(WEIGHTS_MAGIC);
    for v in [FAST_FORMAT_VERSION, dim as u32, cats as u32, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for &x in w {
        out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
    }
    out
}

fn decode_weights(bytes: &[u8], dim: usize, cats: usize) -> Result<Vec<f32>, ModelError> {
    let bad = |m: String| ModelError::Weights(m);
    if bytes.len() < 24 || &bytes[..8] != WEIGHTS_MAGIC {
        return Err(bad("missing WDNFAST header".into()));
    }
    let u = |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
    let (version, d, c, dtype) = (u(0) as u32, u(1), u(2), u(3));
    if version != FAST_FORMAT_VERSION {
        return Err(ModelError::Version { found: version, supported: FAST_FORMAT_VERSION });
    }
    if d != dim || c != cats {
        return Err(bad(format!("shape {d}×{c} does not match manifest {dim}×{cats}")));
    }
    if dtype != 1 {
        return Err(bad(format!("unknown dtype {dtype}")));
    }
    let body = &bytes[24..];
    if body.len() != d * c * 2 {
        return Err(bad(format!("expected {} bytes of weights, found {}", d * c * 2, body.len())));
    }
    Ok(body
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect())
}
