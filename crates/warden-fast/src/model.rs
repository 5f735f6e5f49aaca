use std::io::Write;
use std::path::{Path, PathBuf};

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The logits heads are calibrated and scored on: each head's own, plus (where
/// `combine[i]`) the sum of its ancestors' raw logits.
pub(crate) fn combined_logits(taxonomy: &Taxonomy, raw: &[f32], combine: &[bool]) -> Vec<f32> {
    let mut z = raw.to_vec();
    for (i, zi) in z.iter_mut().enumerate() {
        if combine.get(i).copied().unwrap_or(false) {
            let mut at = i;
            while let Some(p) = taxonomy.parent_of(at) {
                *zi += raw[p];
                at = p;
            }
        }
    }
    z
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
    /// Per category: score it on its own head's logit plus its ancestors' (chosen per
    /// subcategory at training time). Empty (and absent in older manifests) means never.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub combine_parent_logits: Vec<bool>,
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
    /// Identifies these weights in per-thread word caches.
    id: u64,
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
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Self { manifest, featurizer, id, weights }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn manifest_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// Raw (uncalibrated) head outputs for already-normalized text.
    ///
    /// A word's unigram and character n-grams depend on the word alone, so their summed
    /// weights are cached per thread (keyed by the word's hash): natural text repeats a
    /// small vocabulary, and most words then cost one lookup instead of ~15.
    pub fn logits_normalized(&self, normalized: &str, out: &mut [f32]) {
        let c = self.manifest.taxonomy.len();
        debug_assert_eq!(out.len(), c);
        out.fill(0.0);
        let w = &self.weights;
        let f = &self.featurizer;
        let mut n = 0usize;
        let distinct = f.config().distinct_words;
        crate::features::with_seen(distinct, |seen| WORD_CACHE.with_borrow_mut(|cache| {
            cache.reset_for(self.id, c);
            // Weight rows are random accesses into a table far larger than the caches, so
            // scoring is bound by memory latency. Rows are therefore requested (prefetched)
            // as soon as their index is known and summed later, so that many loads are in
            // flight at once instead of one after another.
            let mut pending = std::mem::take(&mut cache.pending);
            let mut scratch = std::mem::take(&mut cache.scratch);
            pending.clear();
            // Words are counted once per text through the cache's per-text stamp; only
            // bigrams need the `seen` set.
            let text_stamp = cache.next_text();
            let mut prev: Option<u64> = None;
            for word in crate::features::words(normalized) {
                let wh = Featurizer::word_hash(word);
                let (sums, count, first) = cache.get_or_insert(wh, text_stamp, |slot| {
                    scratch.clear();
                    let n = f.for_each_word_feature(word, wh, |i| {
                        prefetch_row(w, i as usize * c);
                        scratch.push(i);
                    });
                    for &i in &scratch {
                        add_row(slot, &w[i as usize * c..i as usize * c + c]);
                    }
                    n
                });
                if first || !distinct {
                    n += count;
                    add_row(out, sums);
                }
                if f.config().word_bigrams {
                    if let Some(p) = prev {
                        let i = f.bigram_bucket(p, wh);
                        if seen.first(crate::features::BIGRAM_KEY ^ i as u64) {
                            prefetch_row(w, i as usize * c);
                            pending.push(i);
                            n += 1;
                        }
                    }
                    prev = Some(wh);
                }
            }
            for &i in &pending {
                add_row(out, &w[i as usize * c..i as usize * c + c]);
            }
            cache.pending = pending;
            cache.scratch = scratch;
        }));
        let scale = if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() };
        for (o, b) in out.iter_mut().zip(&self.manifest.bias) {
            *o = *o * scale + b;
        }
    }

    /// Calibrated, hierarchy-consistent probabilities for one text.
    pub fn score_one(&self, text: &str) -> Scores {
        let normalized = crate::norm::normalize_text(text);
        let mut raw = vec![0.0; self.manifest.taxonomy.len()];
        self.logits_normalized(&normalized, &mut raw);
        let mut s = combined_logits(&self.manifest.taxonomy, &raw, &self.manifest.combine_parent_logits);
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

/// Per-thread cache of each word's summed unigram + character n-gram weights.
#[derive(Default)]
struct WordCache {
    model: u64,
    cats: usize,
    /// word hash → (offset into `sums`, number of features, stamp of the last text that
    /// used it).
    index: HashMap<u64, (u32, u32, u32), BuildHasherDefault<crate::features::PassThrough>>,
    sums: Vec<f32>,
    /// Incremented per text; stamps tell whether a word already occurred in this text.
    text: u32,
    /// Reused buffers: the bigram rows of the current text, and the feature rows of a word
    /// being added to the cache (see [`FastModel::logits_normalized`]).
    pending: Vec<u32>,
    scratch: Vec<u32>,
}

/// Bounds the cache at about 256k words (≈ 9 MB per thread for eight categories).
const WORD_CACHE_MAX: usize = 1 << 18;

impl WordCache {
    fn reset_for(&mut self, model: u64, cats: usize) {
        if self.model != model || self.cats != cats || self.index.len() >= WORD_CACHE_MAX {
            self.model = model;
            self.cats = cats;
            self.index.clear();
            self.sums.clear();
        }
    }

    fn next_text(&mut self) -> u32 {
        self.text = self.text.wrapping_add(1);
        if self.text == 0 {
            // Stamps wrapped: forget them all rather than confuse an old text with this one.
            for v in self.index.values_mut() {
                v.2 = 0;
            }
            self.text = 1;
        }
        self.text
    }

    /// The word's summed weights and feature count, and whether this is its first
    /// occurrence in the text stamped `text`.
    #[inline]
    fn get_or_insert(&mut self, key: u64, text: u32, fill: impl FnOnce(&mut [f32]) -> usize) -> (&[f32], usize, bool) {
        let c = self.cats;
        let (off, n, first) = match self.index.get_mut(&key) {
            Some(e) => {
                let first = e.2 != text;
                e.2 = text;
                (e.0 as usize, e.1 as usize, first)
            }
            None => {
                let off = self.sums.len();
                self.sums.resize(off + c, 0.0);
                let n = fill(&mut self.sums[off..off + c]);
                self.index.insert(key, (off as u32, n as u32, text));
                (off, n, true)
            }
        };
        (&self.sums[off..off + c], n, first)
    }
}

#[inline(always)]
fn add_row(acc: &mut [f32], row: &[f32]) {
    for (o, x) in acc.iter_mut().zip(row) {
        *o += x;
    }
}

/// Asks the CPU to start loading the weight row at `w[at..]` (one cache line for eight
/// categories) without waiting for it. A hint only: it never faults and changes no result.
#[inline(always)]
fn prefetch_row(w: &[f32], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < w.len() {
        // SAFETY: `_mm_prefetch` is a hint that cannot fault; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(w.as_ptr().add(at).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (w, at);
}

thread_local! {
    static WORD_CACHE: RefCell<WordCache> = RefCell::new(WordCache::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_model(bits: u32) -> FastModel {
        random_model_with(FeatureConfig { bits, ..FeatureConfig::default() })
    }

    fn random_model_with(cfg: FeatureConfig) -> FastModel {
        let bits = cfg.bits;
        let taxonomy = Taxonomy::builtin();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let weights = (0..(1usize << bits) * taxonomy.len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let manifest = Manifest {
            format_version: FAST_FORMAT_VERSION,
            kind: KIND.into(),
            name: "random".into(),
            normalizer: normalizer_id(),
            features: cfg,
            bias: vec![0.1; taxonomy.len()],
            combine_parent_logits: vec![false, false, false, false, false, true, true, true],
            calibration: vec![Calibration { a: 1.5, b: -0.5 }; taxonomy.len()],
            taxonomy,
            weights_sha256: String::new(),
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        };
        FastModel::from_parts(manifest, weights)
    }

    /// The cached scoring path must equal the plain sum over `for_each_feature`, the
    /// path training uses, including on repeated words and across texts.
    #[test]
    fn cached_logits_equal_the_direct_sum() {
        for distinct_words in [false, true] {
            let m = random_model_with(FeatureConfig { bits: 12, distinct_words, ..FeatureConfig::default() });
            check_cached_equals_direct(&m);
        }
    }

    fn check_cached_equals_direct(m: &FastModel) {
        let c = m.manifest.taxonomy.len();
        for text in ["kill kill them all", "a b c a b c", "", "naïve café über", "them all kill"] {
            let mut direct = vec![0.0f32; c];
            let n = m.featurizer.for_each_feature(text, |i| {
                for (o, x) in direct.iter_mut().zip(&m.weights[i as usize * c..i as usize * c + c]) {
                    *o += x;
                }
            });
            let scale = if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() };
            let mut cached = vec![0.0f32; c];
            m.logits_normalized(text, &mut cached);
            for k in 0..c {
                let want = direct[k] * scale + 0.1;
                assert!((cached[k] - want).abs() < 1e-4, "{text:?} {k}: {} vs {want}", cached[k]);
            }
        }
    }

    #[test]
    fn save_load_round_trip_and_checksum() {
        let mut m = random_model(10);
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let back = FastModel::load(dir.path()).unwrap();
        let (a, b) = (m.score_one("I will hurt you"), back.score_one("I will hurt you"));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 2e-3, "f16 storage changed a score too much: {x} vs {y}");
        }
        // A flipped byte in the weights is caught.
        let wpath = dir.path().join(WEIGHTS_FILE);
        let mut bytes = std::fs::read(&wpath).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&wpath, bytes).unwrap();
        assert!(matches!(FastModel::load(dir.path()), Err(ModelError::Checksum { .. })));
    }

    #[test]
    fn rejects_other_format_versions() {
        let mut m = random_model(10);
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let mpath = dir.path().join(MANIFEST_FILE);
        let s = std::fs::read_to_string(&mpath).unwrap().replace("\"format_version\": 1,", "\"format_version\": 99,");
        std::fs::write(&mpath, s).unwrap();
        assert!(matches!(FastModel::load(dir.path()), Err(ModelError::Version { found: 99, .. })));
    }

    /// Manifests written before `combine_parent_logits` existed still load, as "never".
    #[test]
    fn missing_combine_field_reads_as_never() {
        let mut m = random_model(10);
        m.manifest.combine_parent_logits.clear();
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(!text.contains("combine_parent_logits"));
        let back = FastModel::load(dir.path()).unwrap();
        assert!(back.manifest().combine_parent_logits.is_empty());
        for (a, b) in back.score_one("x y").iter().zip(m.score_one("x y")) {
            assert!((a - b).abs() < 2e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn scores_respect_the_hierarchy() {
        let m = random_model(10);
        let t = m.taxonomy().clone();
        for text in ["one", "two words", "something else entirely"] {
            let s = m.score_one(text);
            for i in 0..t.len() {
                if let Some(p) = t.parent_of(i) {
                    assert!(s[p] >= s[i]);
                }
            }
        }
    }
}
