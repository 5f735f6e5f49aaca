use std::io::Write;
use std::path::{Path, PathBuf};

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_core::{Classifier, Scores, Taxonomy};

use crate::features::{FeatureConfig, Featurizer};
use crate::static_probe::{StaticError, StaticProbe, StaticProbeInfo, StaticTable, STATIC_FILE};

/// On-disk format version of a fast model directory. Bump on any incompatible change and
/// keep a reader for every version still in use (see the compatibility tests).
///
/// Format 2 added the optional static-embedding probe (`static_probe` in the manifest and
/// [`STATIC_FILE`]); a model without one is still written as format 1, so older builds
/// keep reading it, and a format 1 manifest that names a probe is refused.
pub const FAST_FORMAT_VERSION: u32 = 2;
/// Version of `weights.bin` (unchanged since format 1).
const WEIGHTS_VERSION: u32 = 1;
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
    #[error(transparent)]
    Static(#[from] StaticError),
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
    /// The static-embedding probe mixed into the calibrated scores (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_probe: Option<StaticProbeInfo>,
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
    /// Present exactly when `manifest.static_probe` is.
    static_probe: Option<StaticProbe>,
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
        Self { manifest, featurizer, id, weights, static_probe: None }
    }

    /// Adds (or replaces) the static-embedding probe; its table must be attached.
    pub fn set_static_probe(&mut self, probe: StaticProbe) {
        assert!(probe.is_attached(), "set_static_probe: attach the table first");
        self.manifest.static_probe = Some(probe.info.clone());
        self.static_probe = Some(probe);
    }

    /// The static-embedding probe, if the model has one.
    pub fn static_probe(&self) -> Option<&StaticProbe> {
        self.static_probe.as_ref()
    }

    /// True when the model has a static-embedding probe whose table is not attached yet:
    /// it cannot score until [`FastModel::attach_static_table`].
    pub fn needs_static_table(&self) -> bool {
        self.static_probe.as_ref().is_some_and(|p| !p.is_attached())
    }

    /// Attaches the encoder's embedding table to the static probe (a no-op without one).
    pub fn attach_static_table(&mut self, table: Arc<StaticTable>) -> Result<(), ModelError> {
        if let Some(p) = &mut self.static_probe {
            p.attach(table)?;
        }
        Ok(())
    }

    /// The same model without its static probe: the n-gram heads alone, for a machine
    /// without the encoder's files (scores differ; so should the thresholds).
    pub fn without_static_probe(&self) -> Self {
        let mut m = self.clone();
        m.static_probe = None;
        m.manifest.static_probe = None;
        m.manifest.format_version = 1;
        m
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
            // Weight rows and cache slots are random accesses into tables far larger than
            // the CPU caches, so scoring is bound by memory latency. Each address is
            // therefore requested (prefetched) as soon as it is known and used later, so
            // that many loads are in flight at once instead of one after another:
            // pass 1 finds the words, prefetches their cache slots and the bigram rows;
            // pass 2 reads the slots (filling a missing word from its prefetched rows) and
            // then the bigram rows are summed.
            let mut pending = std::mem::take(&mut cache.pending);
            let mut scratch = std::mem::take(&mut cache.scratch);
            let mut words = std::mem::take(&mut cache.words);
            let mut uncached = std::mem::take(&mut cache.uncached);
            pending.clear();
            words.clear();
            let base = normalized.as_ptr() as usize;
            let mut prev: Option<u64> = None;
            for word in crate::features::words(normalized) {
                let wh = Featurizer::word_hash(word);
                cache.prefetch(wh);
                let start = word.as_ptr() as usize - base;
                words.push((start, start + word.len(), wh));
                if f.config().word_bigrams {
                    if let Some(p) = prev {
                        let i = f.bigram_bucket(p, wh);
                        if seen.first(crate::features::BIGRAM_KEY ^ i as u64) {
                            prefetch(w, i as usize * c);
                            pending.push(i);
                            n += 1;
                        }
                    }
                    prev = Some(wh);
                }
            }
            // Words are counted once per text through the cache's per-text stamp, so the
            // cache is never emptied in the middle of a text.
            cache.make_room(words.len());
            let text_stamp = cache.next_text();
            for &(start, end, wh) in &words {
                let word = &normalized[start..end];
                if !cache.has_room() && !cache.contains(wh) {
                    // One text with more distinct words than the cache holds: the rest of
                    // its new words are scored without caching, counted through `seen`.
                    uncached.clear();
                    uncached.resize(c, 0.0);
                    let count = f.for_each_word_feature(word, wh, |i| add_row(&mut uncached, &w[i as usize * c..i as usize * c + c]));
                    if seen.first(wh) || !distinct {
                        n += count;
                        add_row(out, &uncached);
                    }
                    continue;
                }
                let (sums, count, first) = cache.get_or_insert(wh, text_stamp, |slot| {
                    scratch.clear();
                    let n = f.for_each_word_feature(word, wh, |i| {
                        prefetch(w, i as usize * c);
                        scratch.push(i);
                    });
                    for &i in &scratch {
                        add_row(slot, &w[i as usize * c..i as usize * c + c]);
                    }
                    n
                });
                if first || !distinct {
                    n += count;
                    add_bits(out, sums);
                }
            }
            for &i in &pending {
                add_row(out, &w[i as usize * c..i as usize * c + c]);
            }
            cache.pending = pending;
            cache.scratch = scratch;
            cache.words = words;
            cache.uncached = uncached;
        }));
        let scale = if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() };
        for (o, b) in out.iter_mut().zip(&self.manifest.bias) {
            *o = *o * scale + b;
        }
    }

    /// Calibrated, hierarchy-consistent probabilities for one text.
    ///
    /// # Panics
    /// When the model has a static probe whose table is not attached
    /// ([`FastModel::needs_static_table`]); [`Classifier::predict_batch`] returns an error
    /// instead.
    pub fn score_one(&self, text: &str) -> Scores {
        let normalized = crate::norm::normalize_text(text);
        let mut raw = vec![0.0; self.manifest.taxonomy.len()];
        self.logits_normalized(&normalized, &mut raw);
        let mut s = combined_logits(&self.manifest.taxonomy, &raw, &self.manifest.combine_parent_logits);
        for (x, cal) in s.iter_mut().zip(&self.manifest.calibration) {
            *x = cal.apply(*x);
        }
        if let Some(p) = &self.static_probe {
            p.mix(&normalized, &mut s);
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
        self.manifest.format_version = 1;
        if let Some(p) = &mut self.static_probe {
            let bytes = p.to_bytes();
            let spath = dir.join(STATIC_FILE);
            std::fs::write(&spath, &bytes).map_err(io(&spath))?;
            p.info.file_sha256 = hex::encode(Sha256::digest(&bytes));
            self.manifest.static_probe = Some(p.info.clone());
            self.manifest.format_version = FAST_FORMAT_VERSION;
        }
        let mpath = dir.join(MANIFEST_FILE);
        let mut f = std::fs::File::create(&mpath).map_err(io(&mpath))?;
        serde_json::to_writer_pretty(&mut f, &self.manifest)
            .map_err(|e| ModelError::Manifest(e.to_string()))?;
        f.write_all(b"\n").map_err(io(&mpath))?;
        Ok(())
    }

    /// Loads a model directory written by [`FastModel::save`]. A static probe's table is
    /// not attached ([`FastModel::attach_static_table`]).
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ModelError::Io { path, source })
        };
        let spath = dir.join(STATIC_FILE);
        let stat = if spath.is_file() { Some(read(STATIC_FILE)?) } else { None };
        Self::from_files(&read(MANIFEST_FILE)?, &read(WEIGHTS_FILE)?, stat.as_deref())
    }

    /// Loads a model from the bytes of its two files (used for the embedded default).
    pub fn from_bytes(manifest: &[u8], weights: &[u8]) -> Result<Self, ModelError> {
        Self::from_files(manifest, weights, None)
    }

    /// Loads a model from the bytes of its files: manifest, weights and, for a model with
    /// a static probe, [`STATIC_FILE`].
    pub fn from_files(manifest: &[u8], weights: &[u8], static_probe: Option<&[u8]>) -> Result<Self, ModelError> {
        let probe: serde_json::Value =
            serde_json::from_slice(manifest).map_err(|e| ModelError::Manifest(e.to_string()))?;
        let version = probe.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if !(1..=FAST_FORMAT_VERSION).contains(&version) {
            return Err(ModelError::Version { found: version, supported: FAST_FORMAT_VERSION });
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
        let static_probe = match (&manifest.static_probe, static_probe) {
            (None, _) => None,
            (Some(_), _) if version < 2 => {
                return Err(ModelError::Manifest("a static probe needs format version 2".into()));
            }
            (Some(_), None) => {
                return Err(ModelError::Manifest(format!("the manifest names a static probe but {STATIC_FILE} is missing")));
            }
            (Some(info), Some(bytes)) => Some(StaticProbe::from_bytes(info.clone(), bytes, c)?),
        };
        let w = decode_weights(weights, 1 << manifest.features.bits, c)?;
        let mut m = Self::from_parts(manifest, w);
        m.static_probe = static_probe;
        Ok(m)
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
        if self.needs_static_table() {
            return Err(warden_core::Error::Classifier(
                "this fast model's static-embedding probe needs its encoder's embedding table, which is not attached".into(),
            ));
        }
        // Small batches are not worth a thread hop.
        if texts.len() < 16 {
            Ok(texts.iter().map(|t| self.score_one(t)).collect())
        } else {
            Ok(texts.par_iter().map(|t| self.score_one(t)).collect())
        }
    }
}

/// Weight file: magic, then u32 LE format version, dim, categories, dtype, then the
/// `dim × categories` values, bucket-major, in one of two encodings:
///
/// - `1` (dense f16): every value as little-endian f16. f16 halves the committed size;
///   the precision loss is far below what calibration can see.
/// - `2` (sparse f16): a bitmap of `dim × categories` bits (value `i` is bit `i % 8` of
///   byte `i / 8`; set when the value is not zero), then the f16 of each set bit in order.
///   Hashed n-gram weights are mostly exactly zero (69% in the committed default: buckets
///   no feature hashes to, and categories whose rows never reach a bucket), so this is
///   lossless and about 2.7× smaller.
///
/// [`FastModel::save`] writes whichever is smaller; both decode to the same weights.
fn encode_weights(w: &[f32], dim: usize, cats: usize) -> Vec<u8> {
    let sparse = encode_weights_sparse(w, dim, cats);
    if sparse.len() < 24 + w.len() * 2 {
        sparse
    } else {
        encode_weights_dense(w, dim, cats)
    }
}

fn weights_header(dim: usize, cats: usize, dtype: usize, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + capacity);
    out.extend_from_slice(WEIGHTS_MAGIC);
    for v in [WEIGHTS_VERSION, dim as u32, cats as u32, dtype as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn encode_weights_dense(w: &[f32], dim: usize, cats: usize) -> Vec<u8> {
    let mut out = weights_header(dim, cats, DTYPE_F16, w.len() * 2);
    for &x in w {
        out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
    }
    out
}

fn encode_weights_sparse(w: &[f32], dim: usize, cats: usize) -> Vec<u8> {
    let mut bitmap = vec![0u8; w.len().div_ceil(8)];
    let mut values = Vec::new();
    for (i, &x) in w.iter().enumerate() {
        let h = half::f16::from_f32(x);
        // -0.0 is stored as zero: it adds nothing to a sum either way.
        if h != half::f16::ZERO {
            bitmap[i / 8] |= 1 << (i % 8);
            values.extend_from_slice(&h.to_le_bytes());
        }
    }
    let mut out = weights_header(dim, cats, DTYPE_F16_SPARSE, bitmap.len() + values.len());
    out.extend_from_slice(&bitmap);
    out.extend_from_slice(&values);
    out
}

const DTYPE_F16: usize = 1;
const DTYPE_F16_SPARSE: usize = 2;

fn decode_weights(bytes: &[u8], dim: usize, cats: usize) -> Result<Vec<f32>, ModelError> {
    let bad = |m: String| ModelError::Weights(m);
    if bytes.len() < 24 || &bytes[..8] != WEIGHTS_MAGIC {
        return Err(bad("missing WDNFAST header".into()));
    }
    let u = |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
    let (version, d, c, dtype) = (u(0) as u32, u(1), u(2), u(3));
    if version != WEIGHTS_VERSION {
        return Err(bad(format!("weights.bin version {version}; this build reads {WEIGHTS_VERSION}")));
    }
    if d != dim || c != cats {
        return Err(bad(format!("shape {d}×{c} does not match manifest {dim}×{cats}")));
    }
    let body = &bytes[24..];
    let n = d * c;
    let f16_at = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f32();
    match dtype {
        DTYPE_F16 => {
            if body.len() != n * 2 {
                return Err(bad(format!("expected {} bytes of weights, found {}", n * 2, body.len())));
            }
            Ok(body.chunks_exact(2).map(f16_at).collect())
        }
        DTYPE_F16_SPARSE => {
            let map_len = n.div_ceil(8);
            if body.len() < map_len {
                return Err(bad(format!("sparse weights: {} bytes, shorter than the {map_len}-byte bitmap", body.len())));
            }
            let (bitmap, values) = body.split_at(map_len);
            if n % 8 != 0 && bitmap[map_len - 1] >> (n % 8) != 0 {
                return Err(bad("sparse weights: bits set past the last value".into()));
            }
            let set: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
            if values.len() != set * 2 {
                return Err(bad(format!(
                    "sparse weights: the bitmap marks {set} values but {} bytes follow it",
                    values.len()
                )));
            }
            let mut w = vec![0.0f32; n];
            let mut next = values.chunks_exact(2);
            for (byte_i, &byte) in bitmap.iter().enumerate() {
                let mut bits = byte;
                while bits != 0 {
                    let k = bits.trailing_zeros() as usize;
                    w[byte_i * 8 + k] = f16_at(next.next().expect("counted above"));
                    bits &= bits - 1;
                }
            }
            Ok(w)
        }
        other => Err(bad(format!("unknown dtype {other} (this build reads 1: dense f16, 2: sparse f16)"))),
    }
}

/// Per-thread cache of each word's summed unigram + character n-gram weights: an
/// open-addressing hash table (linear probing) whose slots hold the key, the feature
/// count, the stamp of the last text that used the word and the sums together, in whole
/// 64-byte cache lines, so a lookup costs one memory access that can be prefetched.
#[derive(Default)]
struct WordCache {
    model: u64,
    cats: usize,
    /// Cache lines per slot: `ceil((SLOT_HEADER + cats) / 16)`.
    lines: usize,
    /// `slots × lines`; a slot whose key is 0 is empty.
    table: Vec<Line>,
    /// Slots in use.
    len: usize,
    /// Incremented per text; stamps tell whether a word already occurred in this text.
    text: u32,
    /// Reused buffers: the bigram rows of the current text, the feature rows of a word
    /// being added, the current text's words as (start, end, hash), and the sums of a word
    /// scored without caching.
    pending: Vec<u32>,
    scratch: Vec<u32>,
    words: Vec<(usize, usize, u64)>,
    uncached: Vec<f32>,
}

/// One cache line of the word cache: 16 `u32`s (the sums are stored as `f32` bits).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

impl Line {
    /// A run of lines as its `16 × lines.len()` words.
    #[inline]
    fn words(lines: &[Line]) -> &[u32] {
        // SAFETY: `Line` is `repr(C)` around `[u32; 16]` (size 64, no padding), so a run
        // of lines is a run of `16 × lines` initialised `u32`s.
        unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<u32>(), lines.len() * 16) }
    }
}

/// A slot holds key (2 × u32), count, stamp, then the sums.
const SLOT_HEADER: usize = 4;
/// The table starts small (a one-text `warden score` should not pay for 16 MB) and
/// doubles up to `WORD_CACHE_MAX_SLOTS`, kept at most half full.
const WORD_CACHE_MIN_SLOTS: usize = 1 << 12;
/// 2^18 slots of one cache line each (eight categories): 16 MB per thread, up to 131,072
/// words; when full, the cache is cleared and refilled.
const WORD_CACHE_MAX_SLOTS: usize = 1 << 18;

impl WordCache {
    fn reset_for(&mut self, model: u64, cats: usize) {
        if self.model != model || self.cats != cats || self.table.is_empty() {
            self.model = model;
            self.cats = cats;
            self.lines = (SLOT_HEADER + cats).div_ceil(16);
            self.table = vec![Line([0; 16]); WORD_CACHE_MIN_SLOTS * self.lines];
            self.len = 0;
        }
    }

    fn slots(&self) -> usize {
        self.table.len() / self.lines
    }

    /// The key stored for a word hash (0 marks an empty slot).
    #[inline]
    fn key(h: u64) -> u64 {
        h.max(1)
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        key as usize & (self.slots() - 1)
    }

    #[inline]
    fn slot(&self, i: usize) -> &[u32] {
        Line::words(&self.table[i * self.lines..(i + 1) * self.lines])
    }

    #[inline]
    fn slot_mut(&mut self, i: usize) -> &mut [u32] {
        let lines = &mut self.table[i * self.lines..(i + 1) * self.lines];
        // SAFETY: as in `Line::words`.
        unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u32>(), lines.len() * 16) }
    }

    #[inline]
    fn stored_key(slot: &[u32]) -> u64 {
        slot[0] as u64 | (slot[1] as u64) << 32
    }

    /// Starts loading the home slot of `h` (a hint; see [`prefetch`]).
    #[inline(always)]
    fn prefetch(&self, h: u64) {
        prefetch(&self.table, self.home(Self::key(h)) * self.lines);
    }

    /// Index of the slot holding `key`, or of the empty slot where it belongs.
    #[inline]
    fn find(&self, key: u64) -> usize {
        let mask = self.slots() - 1;
        let mut i = self.home(key);
        loop {
            let k = Self::stored_key(self.slot(i));
            if k == key || k == 0 {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether one more word can be inserted (growing the table if needed).
    #[inline]
    fn has_room(&self) -> bool {
        (self.len + 1) * 2 <= self.slots() || self.slots() < WORD_CACHE_MAX_SLOTS
    }

    #[inline]
    fn contains(&self, h: u64) -> bool {
        let key = Self::key(h);
        Self::stored_key(self.slot(self.find(key))) == key
    }

    /// Before a text of `words` words: empties a full-sized table that may not hold them.
    /// (Emptying between texts, never within one, keeps the per-text stamps meaningful.)
    fn make_room(&mut self, words: usize) {
        if self.slots() >= WORD_CACHE_MAX_SLOTS && (self.len + words) * 2 > self.slots() {
            self.table.fill(Line([0; 16]));
            self.len = 0;
        }
    }

    /// Makes room for one more word by doubling the table if needed (the caller has
    /// checked [`Self::has_room`]); true when it grew, which moves every slot.
    fn reserve_one(&mut self) -> bool {
        if (self.len + 1) * 2 <= self.slots() {
            return false;
        }
        let slots = self.slots();
        assert!(slots < WORD_CACHE_MAX_SLOTS, "word cache is full");
        let old = std::mem::replace(&mut self.table, vec![Line([0; 16]); slots * 2 * self.lines]);
        for src in old.chunks_exact(self.lines).map(Line::words) {
            let key = Self::stored_key(src);
            if key != 0 {
                let j = self.find(key);
                self.slot_mut(j).copy_from_slice(src);
            }
        }
        true
    }

    fn next_text(&mut self) -> u32 {
        self.text = self.text.wrapping_add(1);
        if self.text == 0 {
            // Stamps wrapped: forget them all rather than confuse an old text with this one.
            for i in 0..self.slots() {
                self.slot_mut(i)[3] = 0;
            }
            self.text = 1;
        }
        self.text
    }

    /// The word's summed weights (as `f32` bits) and feature count, and whether this is
    /// its first occurrence in the text stamped `text`.
    #[inline]
    fn get_or_insert(&mut self, h: u64, text: u32, fill: impl FnOnce(&mut [f32]) -> usize) -> (&[u32], usize, bool) {
        let c = self.cats;
        let key = Self::key(h);
        let mut i = self.find(key);
        let first;
        if Self::stored_key(self.slot(i)) == key {
            let slot = self.slot_mut(i);
            first = slot[3] != text;
            slot[3] = text;
        } else {
            if self.reserve_one() {
                i = self.find(key);
            }
            let mut sums = [0.0f32; 16];
            let mut heap;
            let sums: &mut [f32] = if c <= 16 {
                &mut sums[..c]
            } else {
                heap = vec![0.0f32; c];
                &mut heap
            };
            let n = fill(sums);
            let slot = self.slot_mut(i);
            slot[0] = key as u32;
            slot[1] = (key >> 32) as u32;
            slot[2] = n as u32;
            slot[3] = text;
            for (d, s) in slot[SLOT_HEADER..SLOT_HEADER + c].iter_mut().zip(sums.iter()) {
                *d = s.to_bits();
            }
            self.len += 1;
            first = true;
        }
        let slot = self.slot(i);
        (&slot[SLOT_HEADER..SLOT_HEADER + c], slot[2] as usize, first)
    }
}

#[inline(always)]
fn add_row(acc: &mut [f32], row: &[f32]) {
    for (o, x) in acc.iter_mut().zip(row) {
        *o += x;
    }
}

/// [`add_row`] for sums kept as `f32` bits in the word cache.
#[inline(always)]
fn add_bits(acc: &mut [f32], row: &[u32]) {
    for (o, x) in acc.iter_mut().zip(row) {
        *o += f32::from_bits(*x);
    }
}

/// Asks the CPU to start loading `v[at]` (a weight row, a cache slot: one cache line)
/// without waiting for it. A hint only: it never faults, ignores an index out of range and
/// changes no result.
#[inline(always)]
fn prefetch<T>(v: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < v.len() {
        // SAFETY: `_mm_prefetch` is a hint that cannot fault; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(v.as_ptr().add(at).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, at);
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
            format_version: 1,
            kind: KIND.into(),
            name: "random".into(),
            normalizer: normalizer_id(),
            features: cfg,
            bias: vec![0.1; taxonomy.len()],
            combine_parent_logits: vec![false, false, false, false, false, true, true, true],
            calibration: vec![Calibration { a: 1.5, b: -0.5 }; taxonomy.len()],
            taxonomy,
            static_probe: None,
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

    /// The word cache grows from its initial size and is emptied when full: scores stay
    /// equal to the direct sum through both, and words seen before a growth are found after.
    #[test]
    fn word_cache_survives_growth_and_clearing() {
        let m = random_model_with(FeatureConfig { bits: 12, ..FeatureConfig::default() });
        let texts: Vec<String> = (0..1_500)
            .map(|t| (0..100).map(|k| format!("w{}x{}", t * 100 + k, k % 7)).collect::<Vec<_>>().join(" "))
            .collect();
        // 150,000 distinct words: past every growth step and past the maximum size.
        for (t, text) in texts.iter().enumerate() {
            if t % 97 == 0 {
                check_cached_equals_direct_on(&m, &[text.as_str(), texts[t / 2].as_str()]);
            } else {
                m.logits_normalized(text, &mut [0.0; 8]);
            }
        }
        WORD_CACHE.with_borrow(|cache| {
            assert!(cache.slots() == WORD_CACHE_MAX_SLOTS, "{}", cache.slots());
            assert!(cache.len * 2 <= cache.slots());
        });
        check_cached_equals_direct_on(&m, &[texts[0].as_str(), texts[1_499].as_str(), "w1x1 w1x1 w2x2"]);
        // Texts that repeat their words, right after the cache is emptied between texts.
        let repeated: Vec<String> = (0..3).map(|t| format!("{} {}", texts[t], texts[t])).collect();
        check_cached_equals_direct_on(&m, &repeated.iter().map(String::as_str).collect::<Vec<_>>());
        // One text with more distinct words than the cache holds, all of them twice. With
        // every weight 1.0 the sums are exact integers, so the check is exact whatever the
        // summation order: a word counted twice, or not at all, changes the result.
        let ones = FastModel::from_parts(m.manifest.clone(), vec![1.0; m.weights.len()]);
        let once: String = (0..150_000).map(|k| format!("h{k} ")).collect();
        let huge = format!("{once}{once}");
        check_cached_equals_direct_on(&ones, &[huge.as_str(), "h1 h1 h2", huge.as_str()]);
        WORD_CACHE.with_borrow(|cache| assert!(cache.len * 2 <= cache.slots()));
    }

    fn check_cached_equals_direct(m: &FastModel) {
        check_cached_equals_direct_on(m, &["kill kill them all", "a b c a b c", "", "naïve café über", "them all kill"]);
    }

    fn check_cached_equals_direct_on(m: &FastModel, texts: &[&str]) {
        let c = m.manifest.taxonomy.len();
        for &text in texts {
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
                let shown: String = text.chars().take(60).collect();
                assert!((cached[k] - want).abs() < 1e-4, "{shown:?} ({} bytes) {k}: {} vs {want}", text.len(), cached[k]);
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

    /// Both weight encodings decode to the same weights, the writer picks the smaller one,
    /// and a truncated or inconsistent sparse body is an error, not a wrong model.
    #[test]
    fn dense_and_sparse_weights_decode_alike() {
        let (dim, cats) = (1 << 10, 8);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // 70% zeros, as in a trained model; also a -0.0 and a value that rounds to 0 in f16.
        let mut w: Vec<f32> =
            (0..dim * cats).map(|_| if rng.gen_bool(0.7) { 0.0 } else { rng.gen_range(-2.0..2.0) }).collect();
        w[5] = -0.0;
        w[6] = 1e-9;
        let dense = encode_weights_dense(&w, dim, cats);
        let sparse = encode_weights_sparse(&w, dim, cats);
        assert!(sparse.len() * 2 < dense.len(), "{} vs {}", sparse.len(), dense.len());
        assert_eq!(encode_weights(&w, dim, cats), sparse);
        let a = decode_weights(&dense, dim, cats).unwrap();
        let b = decode_weights(&sparse, dim, cats).unwrap();
        assert_eq!(a.len(), w.len());
        for (i, ((x, y), z)) in a.iter().zip(&b).zip(&w).enumerate() {
            assert_eq!(x, y, "value {i}");
            assert!((x - z).abs() <= z.abs() * 1e-3 + 1e-7, "value {i}: {x} vs {z}");
        }
        // Dense weights stay dense.
        let full: Vec<f32> = (0..dim * cats).map(|i| 1.0 + i as f32 * 1e-4).collect();
        assert_eq!(encode_weights(&full, dim, cats), encode_weights_dense(&full, dim, cats));
        // Corruption is caught by the length checks.
        assert!(decode_weights(&sparse[..sparse.len() - 2], dim, cats).is_err());
        let mut extra = sparse.clone();
        extra[24] ^= 0x01 << (((0..8).find(|k| extra[24] & (1 << k) == 0)).unwrap());
        assert!(decode_weights(&extra, dim, cats).is_err());
        let mut wrong_dtype = sparse;
        wrong_dtype[20] = 9;
        let e = decode_weights(&wrong_dtype, dim, cats).unwrap_err().to_string();
        assert!(e.contains("unknown dtype 9"), "{e}");
    }

    /// A model saved before sparse weights existed (dense f16) still loads.
    #[test]
    fn dense_weight_files_still_load() {
        let mut m = random_model(10);
        // Zeros, so that `save` writes sparse weights.
        for w in m.weights.iter_mut().step_by(2) {
            *w = 0.0;
        }
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let sparse = FastModel::load(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap()[20], DTYPE_F16_SPARSE as u8);
        let dense = encode_weights_dense(&m.weights, m.featurizer.dim(), m.manifest.taxonomy.len());
        let mpath = dir.path().join(MANIFEST_FILE);
        let sha = hex::encode(Sha256::digest(&dense));
        let manifest = std::fs::read_to_string(&mpath).unwrap().replace(&m.manifest.weights_sha256, &sha);
        std::fs::write(&mpath, manifest).unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), &dense).unwrap();
        let back = FastModel::load(dir.path()).unwrap();
        assert_eq!(back.score_one("I will hurt you"), sparse.score_one("I will hurt you"));
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

    /// A model with a static probe is written as format 2 with its probe file, loads
    /// without its table (and then refuses to score), scores as before once the table is
    /// attached; a format 1 manifest naming a probe is refused, and a model without one is
    /// still written as format 1.
    #[test]
    fn a_static_probe_round_trips_as_format_2() {
        use crate::static_probe::{StaticProbe, StaticProbeConfig, StaticTable};
        use warden_core::Label;
        let mut m = random_model(10);
        let vocab = ["[UNK]", "hurt", "you", "hug", "##s"];
        let rows: Vec<f32> = (0..vocab.len() * 4).map(|i| ((i * 7 % 5) as f32 - 2.0) / 3.0).collect();
        let table = Arc::new(StaticTable::from_parts(&vocab, "[UNK]", 4, rows));
        let cats = m.taxonomy().len();
        let lab = |p: bool| {
            let mut l = vec![Label::Unknown; cats];
            l[2] = if p { Label::Positive } else { Label::Negative };
            l
        };
        let labels = [lab(true), lab(true), lab(false), lab(false)];
        let texts = ["hurt you", "hurt", "hugs", "hug you"];
        let train: Vec<(&str, &[Label])> = texts.iter().zip(&labels).map(|(t, l)| (*t, l.as_slice())).collect();
        let counts = crate::static_probe::piece_counts(&table, &texts);
        let cfg = StaticProbeConfig { source: "x".into(), l2: 0.1, sif_a: 0.01, weight: 0.5 };
        let plain = m.score_one("I will hurt you");
        m.set_static_probe(StaticProbe::fit(table.clone(), &counts, &train, None, cats, &cfg));
        let mixed = m.score_one("I will hurt you");
        assert_ne!(plain[2], mixed[2], "the probe moves the fitted category");
        assert_eq!(m.without_static_probe().score_one("I will hurt you"), plain);

        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(text.contains("\"format_version\": 2"), "{text}");
        let mut back = FastModel::load(dir.path()).unwrap();
        assert!(back.needs_static_table());
        assert!(back.predict_batch(&["I will hurt you"]).is_err());
        back.attach_static_table(table.clone()).unwrap();
        // The n-gram weights are stored as f16.
        for (a, b) in back.predict_batch(&["I will hurt you"]).unwrap()[0].iter().zip(&mixed) {
            assert!((a - b).abs() < 2e-3, "{a} vs {b}");
        }

        let mpath = dir.path().join(MANIFEST_FILE);
        std::fs::write(&mpath, text.replace("\"format_version\": 2", "\"format_version\": 1")).unwrap();
        assert!(matches!(FastModel::load(dir.path()), Err(ModelError::Manifest(_))));
        std::fs::write(&mpath, &text).unwrap();
        std::fs::remove_file(dir.path().join(crate::static_probe::STATIC_FILE)).unwrap();
        assert!(matches!(FastModel::load(dir.path()), Err(ModelError::Manifest(_))));

        let mut plain_model = m.without_static_probe();
        plain_model.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(&mpath).unwrap();
        assert!(text.contains("\"format_version\": 1") && !text.contains("static_probe"));
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
