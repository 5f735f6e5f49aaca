//! The encoder-tier artifact (`kind = "encoder-heads"`) and its classifier.
//!
//! An artifact holds only what was trained — the heads (and projection) in
//! `heads.safetensors`, per-category calibration — plus the base encoder's
//! name and sha256, so it stays a few MB however large the encoder.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use warden_core::{Classifier, Scores, Taxonomy};
use warden_encoder::{Encoder, EncoderOptions, Pooling, TextEmbedding, WindowConfig};
use warden_fast::Calibration;

use crate::heads::{Heads, HeadsConfig};
use crate::probe::{layer_features, Probe, ProbeFeatures, ProbeInfo};
use crate::HeadsError;

/// Format 2 added the optional in-domain probe ([`ProbeInfo`]); format 3 lets the probe
/// read the encoder's layer means ([`ProbeFeatures::LayerMeans`]). Formats 1 and 2 still
/// load. An older reader refuses a newer format, so a model is never scored without its
/// probe or with the probe on the wrong features.
pub const ENCODER_FORMAT_VERSION: u32 = 3;
pub const ENCODER_KIND: &str = "encoder-heads";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const HEADS_FILE: &str = "heads.safetensors";

/// Which encoder an artifact needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderRef {
    pub name: String,
    pub safetensors_sha256: String,
    /// Where `warden model fetch` gets it, when it is the default encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncoderManifest {
    pub format_version: u32,
    pub kind: String,
    pub name: String,
    pub taxonomy: Taxonomy,
    pub encoder: EncoderRef,
    /// Pooling the heads read.
    pub pooling: Pooling,
    pub window: WindowConfig,
    pub heads: HeadsConfig,
    pub calibration: Vec<Calibration>,
    pub heads_sha256: String,
    /// The in-domain probe mixed into the heads' scores, if one was fitted (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeInfo>,
    #[serde(default)]
    pub training: serde_json::Value,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// Heads + calibration without the encoder: scores pooled vectors.
#[derive(Debug, Clone)]
pub struct HeadsModel {
    pub manifest: EncoderManifest,
    pub heads: Heads,
    /// Fine-tuned encoder tensors by checkpoint name (empty for a frozen
    /// encoder); stored as `encoder.<name>` in `heads.safetensors`.
    pub encoder_params: HashMap<String, Tensor>,
    /// The in-domain probe; present exactly when `manifest.probe` is.
    pub probe: Option<Probe>,
}

const PROBE_WEIGHT: &str = "probe.weight";
const PROBE_BIAS: &str = "probe.bias";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl HeadsModel {
    /// Writes `heads.safetensors` and `manifest.json`. The heads and any fine-tuned encoder
    /// tensors are stored as `f16` (every reader converts to `f32`; see
    /// [`Heads::round_to_f16`]) and rounded in memory first, so this model scores exactly as
    /// the saved one will. So is the probe, as `probe.weight` and `probe.bias`. Call
    /// [`HeadsModel::round_for_storage`] before computing metrics to record. (Fine-tuned
    /// tensors were `f32` before 2026-12-07; those files still load.)
    pub fn save(&mut self, dir: &Path) -> Result<(), HeadsError> {
        std::fs::create_dir_all(dir).map_err(|e| HeadsError::io(dir, e))?;
        self.round_for_storage()?;
        let mut tensors: HashMap<String, Tensor> = self
            .heads
            .to_tensors()
            .into_iter()
            .map(|(k, v)| Ok((k, v.to_dtype(candle_core::DType::F16)?)))
            .collect::<Result<_, candle_core::Error>>()?;
        for (k, v) in &self.encoder_params {
            tensors.insert(format!("encoder.{k}"), v.to_dtype(candle_core::DType::F16)?);
        }
        if self.probe.is_some() != self.manifest.probe.is_some() {
            return Err(HeadsError::Format("a probe needs both its weights and its manifest entry".into()));
        }
        if let Some(p) = &self.probe {
            let dev = &Device::Cpu;
            let cats = p.categories();
            tensors.insert(PROBE_WEIGHT.into(), Tensor::from_slice(&p.weight, (cats, p.input), dev)?.to_dtype(DType::F16)?);
            tensors.insert(PROBE_BIAS.into(), Tensor::from_slice(&p.bias, cats, dev)?.to_dtype(DType::F16)?);
        }
        let path = dir.join(HEADS_FILE);
        candle_core::safetensors::save(&tensors, &path)?;
        let bytes = std::fs::read(&path).map_err(|e| HeadsError::io(&path, e))?;
        self.manifest.heads_sha256 = sha256_hex(&bytes);
        let m = serde_json::to_string_pretty(&self.manifest).expect("manifest serialises");
        let mp = dir.join(MANIFEST_FILE);
        std::fs::write(&mp, m + "\n").map_err(|e| HeadsError::io(&mp, e))?;
        Ok(())
    }

    /// Rounds the heads and fine-tuned encoder tensors to the precision
    /// [`HeadsModel::save`] stores. Idempotent.
    pub fn round_for_storage(&mut self) -> Result<(), HeadsError> {
        self.heads.round_to_f16()?;
        if let Some(p) = &mut self.probe {
            p.round_to_f16();
        }
        for t in self.encoder_params.values_mut() {
            *t = t.detach().to_dtype(candle_core::DType::F16)?.to_dtype(candle_core::DType::F32)?;
        }
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Self, HeadsError> {
        let mp = dir.join(MANIFEST_FILE);
        let m = std::fs::read(&mp).map_err(|e| HeadsError::io(&mp, e))?;
        let hp = dir.join(HEADS_FILE);
        let h = std::fs::read(&hp).map_err(|e| HeadsError::io(&hp, e))?;
        Self::from_bytes(&m, &h)
    }

    pub fn from_bytes(manifest: &[u8], heads: &[u8]) -> Result<Self, HeadsError> {
        let manifest: EncoderManifest =
            serde_json::from_slice(manifest).map_err(|e| HeadsError::Format(format!("manifest: {e}")))?;
        if manifest.kind != ENCODER_KIND {
            return Err(HeadsError::Format(format!("kind {:?} is not {ENCODER_KIND:?}", manifest.kind)));
        }
        if !(1..=ENCODER_FORMAT_VERSION).contains(&manifest.format_version) {
            return Err(HeadsError::Format(format!(
                "format_version {} (this build reads 1 to {ENCODER_FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        if sha256_hex(heads) != manifest.heads_sha256 {
            return Err(HeadsError::Format("heads.safetensors does not match the manifest's heads_sha256".into()));
        }
        if manifest.heads.categories != manifest.taxonomy.len() || manifest.calibration.len() != manifest.taxonomy.len() {
            return Err(HeadsError::Format("heads, calibration and taxonomy disagree on the number of categories".into()));
        }
        let tensors: HashMap<String, Tensor> = candle_core::safetensors::load_buffer(heads, &Device::Cpu)?;
        let heads = Heads::from_tensors(manifest.heads, &tensors)?;
        let encoder_params = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("encoder.").map(|n| Ok((n.to_string(), v.to_dtype(DType::F32)?))))
            .collect::<Result<_, candle_core::Error>>()?;
        let probe = match &manifest.probe {
            None => None,
            Some(info) => {
                let (Some(w), Some(b)) = (tensors.get(PROBE_WEIGHT), tensors.get(PROBE_BIAS)) else {
                    return Err(HeadsError::Format("the manifest names a probe but heads.safetensors lacks its tensors".into()));
                };
                let (cats, input) = w.dims2()?;
                let expected = match info.features {
                    ProbeFeatures::Pooled => input == manifest.heads.input,
                    ProbeFeatures::LayerMeans { layers } => layers > 0 && input.is_multiple_of(layers),
                };
                if cats != manifest.taxonomy.len() || b.dims1()? != cats || !expected {
                    return Err(HeadsError::Format(format!(
                        "probe is {cats} × {input}, expected {} categories over {}",
                        manifest.taxonomy.len(),
                        match info.features {
                            ProbeFeatures::Pooled => format!("the {} wide pooled vector", manifest.heads.input),
                            ProbeFeatures::LayerMeans { layers } => format!("{layers} equal layer blocks"),
                        }
                    )));
                }
                if manifest.format_version < 3 && info.features != ProbeFeatures::Pooled {
                    return Err(HeadsError::Format("a probe on layer means needs format 3".into()));
                }
                if info.fitted.len() != cats || !(0.0..=1.0).contains(&info.weight) {
                    return Err(HeadsError::Format("probe: one `fitted` flag per category and a weight in [0, 1] expected".into()));
                }
                Some(Probe {
                    input,
                    weight: w.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    bias: b.to_dtype(DType::F32)?.to_vec1()?,
                })
            }
        };
        Ok(HeadsModel { manifest, heads, encoder_params, probe })
    }

    /// Raw logits for pooled vectors (`rows × input`).
    pub fn logits(&self, x: &[f32], rows: usize) -> Result<Vec<Vec<f32>>, HeadsError> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        let t = Tensor::from_slice(x, (rows, self.manifest.heads.input), &Device::Cpu)?;
        Ok(self.heads.forward(&t, false)?.to_vec2::<f32>()?)
    }

    /// Whether window vectors must carry the encoder's layer means after the pooled vector
    /// (a probe on [`ProbeFeatures::LayerMeans`]).
    pub fn needs_layer_means(&self) -> bool {
        matches!(self.manifest.probe.as_ref().map(|p| p.features), Some(ProbeFeatures::LayerMeans { .. }))
    }

    /// Calibrated per-category scores of one text from its window vectors:
    /// each window is scored, the text takes the max per category, and the
    /// window that gave it is returned alongside. With a probe, a window's score is
    /// `(1 - w) · p_heads + w · p_probe` for each category the probe was fitted on.
    ///
    /// A window vector is the heads' pooled vector (`heads.input` wide), followed by the
    /// encoder's layer means when [`HeadsModel::needs_layer_means`].
    pub fn score_windows(&self, emb: &TextEmbedding) -> Result<(Scores, Vec<usize>), HeadsError> {
        let dim = self.manifest.heads.input;
        let need = dim + if self.needs_layer_means() { self.probe.as_ref().map_or(0, |p| p.input) } else { 0 };
        let mut x = Vec::with_capacity(emb.windows.len() * dim);
        for w in &emb.windows {
            if w.vector.len() < need {
                return Err(HeadsError::Format(format!(
                    "window vectors are {} wide, the model reads {need} (pooled vector{})",
                    w.vector.len(),
                    if need > dim { " and layer means" } else { "" }
                )));
            }
            x.extend_from_slice(&w.vector[..dim]);
        }
        let logits = self.logits(&x, emb.windows.len())?;
        let cats = self.manifest.taxonomy.len();
        let mut scores = vec![0f32; cats];
        let mut driver = vec![0usize; cats];
        let probe = self.probe.as_ref().zip(self.manifest.probe.as_ref());
        for (wi, z) in logits.iter().enumerate() {
            let probed = probe.map(|(p, info)| {
                let q = match info.features {
                    ProbeFeatures::Pooled => p.predict(&x[wi * dim..(wi + 1) * dim]),
                    ProbeFeatures::LayerMeans { layers } => {
                        p.predict(&layer_features(&emb.windows[wi].vector[dim..dim + p.input], layers))
                    }
                };
                (info, q)
            });
            for c in 0..cats {
                let mut p = self.manifest.calibration[c].apply(z[c]);
                if let Some((info, q)) = &probed {
                    if info.fitted[c] {
                        p = (1.0 - info.weight) * p + info.weight * q[c];
                    }
                }
                if wi == 0 || p > scores[c] {
                    scores[c] = p;
                    driver[c] = wi;
                }
            }
        }
        self.manifest.taxonomy.enforce_scores(&mut scores);
        Ok((scores, driver))
    }
}

/// One text's encoder-tier result with the windows behind it.
#[derive(Debug, Clone)]
pub struct Detailed {
    pub scores: Scores,
    /// Byte spans of the windows.
    pub windows: Vec<(usize, usize)>,
    /// Per category, the window that drove its score.
    pub driver: Vec<usize>,
    pub truncated: bool,
}

/// The encoder tier as a [`Classifier`].
pub struct EncoderClassifier {
    pub heads: HeadsModel,
    pub encoder: Encoder,
}

impl EncoderClassifier {
    /// Loads the heads at `dir` on the encoder at `encoder_dir`, checking
    /// that it is the encoder they were trained on.
    pub fn load(dir: &Path, encoder_dir: &Path) -> Result<Self, HeadsError> {
        Self::new(HeadsModel::load(dir)?, encoder_dir)
    }

    pub fn new(heads: HeadsModel, encoder_dir: &Path) -> Result<Self, HeadsError> {
        let m = &heads.manifest;
        let layer_means = heads.needs_layer_means();
        let mut encoder = Encoder::load(
            encoder_dir,
            EncoderOptions { pooling: m.pooling, window: m.window, layer_means, ..Default::default() },
        )?;
        if encoder.sha256() != m.encoder.safetensors_sha256 {
            return Err(HeadsError::EncoderMismatch {
                expected: m.encoder.safetensors_sha256.clone(),
                found: encoder.sha256().to_string(),
                dir: encoder_dir.display().to_string(),
            });
        }
        if !heads.encoder_params.is_empty() {
            let n = encoder.model.override_params(&heads.encoder_params)?;
            if n != heads.encoder_params.len() {
                return Err(HeadsError::Format(format!(
                    "{} fine-tuned encoder tensors, {n} of them found in the encoder",
                    heads.encoder_params.len()
                )));
            }
        }
        if encoder.pooled_width() != m.heads.input {
            return Err(HeadsError::Format(format!(
                "heads read {} wide vectors, the encoder pools to {}",
                m.heads.input,
                encoder.pooled_width()
            )));
        }
        if let (true, Some(p)) = (layer_means, &heads.probe) {
            if encoder.layer_means_width() != p.input {
                return Err(HeadsError::Format(format!(
                    "the probe reads {} layer-mean values, the encoder gives {}",
                    p.input,
                    encoder.layer_means_width()
                )));
            }
        }
        Ok(EncoderClassifier { heads, encoder })
    }

    pub fn predict_detailed(&self, texts: &[&str]) -> Result<Vec<Detailed>, HeadsError> {
        let embs = self.encoder.embed(texts)?;
        embs.iter()
            .map(|e| {
                let (scores, driver) = self.heads.score_windows(e)?;
                Ok(Detailed {
                    scores,
                    windows: e.windows.iter().map(|w| (w.start, w.end)).collect(),
                    driver,
                    truncated: e.truncated,
                })
            })
            .collect()
    }
}

impl Classifier for EncoderClassifier {
    fn taxonomy(&self) -> &Taxonomy {
        &self.heads.manifest.taxonomy
    }
    fn name(&self) -> &str {
        &self.heads.manifest.name
    }
    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        Ok(self
            .predict_detailed(texts)
            .map_err(|e| warden_core::Error::Classifier(e.to_string()))?
            .into_iter()
            .map(|d| d.scores)
            .collect())
    }
}
