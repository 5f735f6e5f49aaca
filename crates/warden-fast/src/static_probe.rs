//! The fast tier's static-embedding probe: a linear model per category on a text's
//! average *input* token embedding from a BERT-family encoder, mixed into the n-gram heads'
//! scores. It is fitted on every training row (the default model) or on one source's rows
//! (an in-domain probe).
//!
//! Why: the n-gram heads only know n-grams they have seen, mostly in tweets, Gab and
//! Reddit posts; an n-gram never seen gets no weight. A transformer's input embedding table
//! places related word pieces near each other, so a linear model over their average
//! generalises to words the training rows never contain, which is what new web text needs
//! (moderation-set CV: +0.05 `any` AUPRC). No transformer layer runs: a text costs one table
//! row per word piece, which keeps the tier's corpus-scale throughput (docs/fast-tier.md,
//! "Static-embedding probe").
//!
//! The features, measured on the moderation set before any Rust (docs/fast-tier.md):
//! - each word piece's row of the encoder's `word_embeddings` matrix (the input table;
//!   rows from running each piece alone through the whole encoder ranked slightly worse);
//! - weighted by `a / (a + p)`, `p` the piece's frequency in the training texts (the
//!   smooth inverse frequency of Arora et al., 2017), so frequent pieces count little;
//! - summed over the text and L2-normalised (without the normalisation the probe ranked
//!   far worse: 0.64 against 0.74 `any`).
//!
//! Text is split the fast tier's way (its normalisation, then alphanumeric runs) and each
//! word into the encoder's word pieces by greedy longest match (WordPiece), so punctuation
//! never becomes a piece. The table is not stored in the model: it is read from the
//! encoder directory, whose `model.safetensors` must have the SHA-256 the model records.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use warden_core::Label;

use crate::features::PassThrough;
use crate::ridge::{fit_probe_weighted, Probe};

/// The probe's weights file inside a fast model directory.
pub const STATIC_FILE: &str = "static-probe.bin";
const MAGIC: &[u8; 8] = b"WDNSTAT\0";
const STATIC_FILE_VERSION: u32 = 1;
/// Words longer than this many characters are one unknown piece (BERT's own limit).
const DEFAULT_MAX_WORD_CHARS: usize = 100;

#[derive(Debug, Error)]
pub enum StaticError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Encoder { path: PathBuf, message: String },
    #[error("invalid static probe file: {0}")]
    File(String),
}

/// What a model's manifest records about its static-embedding probe. The weights and
/// the per-piece weights live in [`STATIC_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticProbeInfo {
    /// The encoder whose input embeddings the probe reads (a name for messages).
    pub encoder: String,
    /// SHA-256 of that encoder's `model.safetensors`; another file is refused.
    pub encoder_sha256: String,
    /// The embedding matrix read from it.
    pub tensor: String,
    /// Rows of the matrix (the vocabulary size) and their width.
    pub vocab_size: usize,
    pub dim: usize,
    /// The source whose train rows the probe was fitted on (`all`: every train row,
    /// weighted like the n-gram heads' training), and how many rows.
    pub source: String,
    pub rows: usize,
    /// Ridge penalty on the weights (not the bias), on the summed log-likelihood.
    pub l2: f32,
    /// The `a` of the pieces' weights `a / (a + p)`.
    pub sif_a: f32,
    /// Weight of the probe in `(1 - weight) · p_heads + weight · p_probe`.
    pub weight: f32,
    /// Per category: whether it was fitted (the source has both classes of it). A category
    /// without a fit is scored by the n-gram heads alone.
    pub fitted: Vec<bool>,
    /// Per category, labelled rows and positives among them, for the model card.
    pub labelled: Vec<usize>,
    pub positives: Vec<usize>,
    /// SHA-256 of [`STATIC_FILE`].
    #[serde(default)]
    pub file_sha256: String,
}

/// An encoder's word-piece vocabulary and input embedding table.
pub struct StaticTable {
    vocab: HashMap<Box<str>, u32>,
    unk: u32,
    /// WordPiece (words split into pieces) or WordLevel (a word is in the vocabulary or
    /// unknown).
    wordpiece: bool,
    prefix: String,
    max_chars: usize,
    dim: usize,
    /// `vocab_size × dim`, row-major, in f16: half the memory traffic of f32 in the
    /// scoring loop, which is bound by it (1 KB documents: 29,000 → 34,000 docs/s per core
    /// on the Intel Xeon VM), and far below the probe's sensitivity.
    rows: Vec<half::f16>,
    sha256: String,
    tensor: String,
    name: String,
    /// Identifies this table in the per-thread piece caches.
    id: u64,
}

impl std::fmt::Debug for StaticTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTable")
            .field("name", &self.name)
            .field("vocab_size", &self.vocab_size())
            .field("dim", &self.dim)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// Names the word-embedding matrix goes by in BERT-family checkpoints.
const TENSOR_NAMES: [&str; 2] = ["embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"];

impl StaticTable {
    /// Reads `tokenizer.json` (a WordPiece or WordLevel vocabulary) and the word-embedding matrix of
    /// `model.safetensors` from a Hugging Face BERT-family directory, hashing the weights file
    /// to identify it.
    pub fn load(dir: &Path) -> Result<Self, StaticError> {
        Self::load_with_sha256(dir, None)
    }

    /// [`StaticTable::load`] for a caller that already knows the SHA-256 of the directory's
    /// `model.safetensors`, such as an encoder cache whose fetch verified it (the fetch marker's
    /// hash, trusted while the file keeps the recorded size). Hashing the 90 MB file was the
    /// larger part of the fast tier's start-up (0.116 s against 0.029 s without a probe on the
    /// Intel Xeon VM); with the hash known only the header and the one tensor are read.
    pub fn load_with_sha256(dir: &Path, sha256: Option<String>) -> Result<Self, StaticError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| StaticError::Io { path, source })
        };
        let tok_path = dir.join("tokenizer.json");
        let bad_tok = |message: String| StaticError::Encoder { path: tok_path.clone(), message };
        let tok: serde_json::Value = serde_json::from_slice(&read("tokenizer.json")?).map_err(|e| bad_tok(e.to_string()))?;
        let model = &tok["model"];
        let wordpiece = match model["type"].as_str() {
            Some("WordPiece") => true,
            Some("WordLevel") => false,
            _ => {
                return Err(bad_tok(format!(
                    "the static-embedding probe needs a WordPiece or WordLevel vocabulary, this tokenizer's model is {}",
                    model["type"]
                )))
            }
        };
        let vocab: HashMap<Box<str>, u32> = model["vocab"]
            .as_object()
            .ok_or_else(|| bad_tok("model.vocab is not an object".into()))?
            .iter()
            .map(|(k, v)| v.as_u64().map(|id| (Box::from(k.as_str()), id as u32)).ok_or_else(|| bad_tok(format!("vocab entry {k:?} has no id"))))
            .collect::<Result<_, _>>()?;
        let unk_token = model["unk_token"].as_str().unwrap_or("[UNK]");
        let unk = *vocab.get(unk_token).ok_or_else(|| bad_tok(format!("the unknown token {unk_token:?} is not in the vocabulary")))?;
        let prefix = model["continuing_subword_prefix"].as_str().unwrap_or("##").to_owned();
        let max_chars = model["max_input_chars_per_word"].as_u64().map_or(DEFAULT_MAX_WORD_CHARS, |v| v as usize);

        let st_path = dir.join("model.safetensors");
        let io_err = |source: std::io::Error| StaticError::Io { path: st_path.clone(), source };
        let bad_st = |message: String| StaticError::Encoder { path: st_path.clone(), message };
        let sha256 = match sha256 {
            Some(s) => s.to_ascii_lowercase(),
            None => {
                let mut hasher = Sha256::new();
                std::io::copy(&mut std::fs::File::open(&st_path).map_err(io_err)?, &mut hasher).map_err(io_err)?;
                hex::encode(hasher.finalize())
            }
        };
        let (tensor, n, dim, rows) = read_word_embeddings(&st_path).map_err(|e| match e {
            TableReadError::Io(source) => io_err(source),
            TableReadError::Bad(message) => bad_st(message),
        })?;
        if let Some((k, id)) = vocab.iter().find(|(_, &id)| id as usize >= n) {
            return Err(bad_tok(format!("vocabulary entry {k:?} has id {id}, past the {n} embedding rows")));
        }
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |f| f.to_string_lossy().into_owned());
        Ok(Self { vocab, unk, wordpiece, prefix, max_chars, dim, rows, sha256, tensor, name, id: next_table_id() })
    }

    /// A table from its parts (tests): `vocab` maps pieces to rows of `rows` (`n × dim`).
    pub fn from_parts(vocab: &[&str], unk: &str, dim: usize, rows: Vec<f32>) -> Self {
        assert_eq!(rows.len(), vocab.len() * dim);
        let vocab: HashMap<Box<str>, u32> = vocab.iter().enumerate().map(|(i, v)| (Box::from(*v), i as u32)).collect();
        let unk = vocab[unk];
        let sha256 = hex::encode(Sha256::digest(rows.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()));
        Self {
            vocab,
            unk,
            wordpiece: true,
            prefix: "##".into(),
            max_chars: DEFAULT_MAX_WORD_CHARS,
            dim,
            rows: rows.iter().map(|&v| half::f16::from_f32(v)).collect(),
            sha256,
            tensor: TENSOR_NAMES[0].into(),
            name: "test".into(),
            id: next_table_id(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.rows.len() / self.dim.max(1)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// SHA-256 of the `model.safetensors` the table was read from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn tensor(&self) -> &str {
        &self.tensor
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends the word pieces of one word (greedy longest match, continuation pieces
    /// carrying the prefix): BERT's WordPiece. A word with a part no piece matches, or
    /// longer than the limit, is one unknown piece. With a WordLevel vocabulary, the
    /// word's own id or the unknown one.
    pub fn pieces(&self, word: &str, out: &mut Vec<u32>) {
        if !self.wordpiece {
            out.push(self.vocab.get(word).copied().unwrap_or(self.unk));
            return;
        }
        let chars = word.chars().count();
        if chars > self.max_chars {
            out.push(self.unk);
            return;
        }
        let start_len = out.len();
        let mut start = 0;
        let mut key = String::new();
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while end > start {
                key.clear();
                if start > 0 {
                    key.push_str(&self.prefix);
                }
                key.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(key.as_str()) {
                    found = Some(id);
                    break;
                }
                end = word[..end].char_indices().next_back().map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(start_len);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }

    fn row(&self, id: u32) -> &[half::f16] {
        &self.rows[id as usize * self.dim..(id as usize + 1) * self.dim]
    }
}

/// The fitted probe with its per-piece weights, and the table once attached.
#[derive(Debug, Clone)]
pub struct StaticProbe {
    pub info: StaticProbeInfo,
    pub probe: Probe,
    /// Per vocabulary piece, its weight `a / (a + p)`.
    pub piece_weight: Vec<f32>,
    table: Option<Arc<StaticTable>>,
}

/// Per-thread cache of each word's pieces for one table (by its [`StaticTable::id`]): the
/// word's 64-bit hash maps to a `(start, len)` run of `arena`, so a hit costs one probe of
/// the map and one read of a contiguous array; and reused buffers.
#[derive(Default)]
struct PieceCache {
    table: u64,
    pieces: HashMap<u64, (u32, u32), BuildHasherDefault<PassThrough>>,
    arena: Vec<u32>,
    acc: Vec<f32>,
    ids: Vec<u32>,
}

thread_local! {
    static PIECES: std::cell::RefCell<PieceCache> = std::cell::RefCell::new(PieceCache::default());
}

/// Why [`read_word_embeddings`] failed: the file could not be read, or it is not what it should be.
enum TableReadError {
    Io(std::io::Error),
    Bad(String),
}

impl From<std::io::Error> for TableReadError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads the word-embedding matrix of a safetensors file as f16 rows: the header, then only
/// that tensor's bytes (47 MB of all-MiniLM-L6-v2's 90 MB), converted a chunk at a time so
/// the f32 matrix is never held whole. Returns the tensor's name, rows, columns and values.
fn read_word_embeddings(path: &Path) -> Result<(String, usize, usize, Vec<half::f16>), TableReadError> {
    use half::slice::HalfFloatSliceExt;
    use std::io::{Read, Seek, SeekFrom};
    let bad = |m: String| TableReadError::Bad(m);
    let mut file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| bad("shorter than a safetensors header".into()))?;
    let header_len = u64::from_le_bytes(len);
    // safetensors' own limit on the header (100 MB).
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(bad(format!("header length {header_len} does not fit the {file_len}-byte file")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)?;
    let meta: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("invalid safetensors header: {e}")))?;
    let data_end = meta.tensors().values().map(|t| t.data_offsets.1).max().unwrap_or(0) as u64;
    if 8 + header_len + data_end != file_len {
        return Err(bad(format!(
            "the header describes {} bytes but the file has {file_len} (truncated or not safetensors)",
            8 + header_len + data_end
        )));
    }
    let (tensor, info) = TENSOR_NAMES
        .iter()
        .find_map(|n| meta.info(n).map(|i| (*n, i)))
        .ok_or_else(|| bad(format!("no word-embedding matrix ({})", TENSOR_NAMES.join(" or "))))?;
    let &[n, dim] = info.shape.as_slice() else {
        return Err(bad(format!("{tensor} has shape {:?}, expected [vocab, dim]", info.shape)));
    };
    let width = match info.dtype {
        safetensors::Dtype::F32 => 4,
        safetensors::Dtype::F16 | safetensors::Dtype::BF16 => 2,
        other => return Err(bad(format!("{tensor} is {other:?}; F32, F16 or BF16 expected"))),
    };
    let (start, end) = info.data_offsets;
    if end - start != n * dim * width {
        return Err(bad(format!("{tensor}: {} bytes for shape [{n}, {dim}]", end - start)));
    }
    file.seek(SeekFrom::Start(8 + header_len + start as u64))?;
    let mut rows = vec![half::f16::ZERO; n * dim];
    let chunk_values = 1 << 16;
    let mut buf = vec![0u8; chunk_values * width];
    let mut f32s = vec![0f32; chunk_values];
    for out in rows.chunks_mut(chunk_values) {
        let bytes = &mut buf[..out.len() * width];
        file.read_exact(bytes)?;
        match info.dtype {
            safetensors::Dtype::F32 => {
                let f = &mut f32s[..out.len()];
                for (v, b) in f.iter_mut().zip(bytes.chunks_exact(4)) {
                    *v = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                }
                out.convert_from_f32_slice(f);
            }
            safetensors::Dtype::F16 => {
                for (v, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *v = half::f16::from_le_bytes([b[0], b[1]]);
                }
            }
            _ => {
                for (v, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *v = half::f16::from_f32(half::bf16::from_le_bytes([b[0], b[1]]).to_f32());
                }
            }
        }
    }
    Ok((tensor.to_string(), n, dim, rows))
}

/// A new table id (never 0, the empty cache's).
fn next_table_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Words cached per thread before the cache is emptied.
const PIECE_CACHE_WORDS: usize = 1 << 18;

/// Adds `weight[p] · row(p)` for each piece `p` of each word of `normalized` into `acc`
/// (zeroed first; `dim` values).
fn accumulate(table: &StaticTable, weight: &[f32], normalized: &str, acc: &mut Vec<f32>, cache: &mut PieceCache) {
    acc.clear();
    acc.resize(table.dim, 0.0);
    if cache.table != table.id {
        cache.pieces.clear();
        cache.arena.clear();
        cache.table = table.id;
    }
    let mut ids = std::mem::take(&mut cache.ids);
    ids.clear();
    for word in crate::features::words(normalized) {
        let h = crate::Featurizer::word_hash(word);
        let (start, len) = match cache.pieces.get(&h) {
            Some(&run) => run,
            None => {
                if cache.pieces.len() >= PIECE_CACHE_WORDS {
                    cache.pieces.clear();
                    cache.arena.clear();
                }
                let start = cache.arena.len();
                table.pieces(word, &mut cache.arena);
                let run = (start as u32, (cache.arena.len() - start) as u32);
                cache.pieces.insert(h, run);
                run
            }
        };
        ids.extend_from_slice(&cache.arena[start as usize..(start + len) as usize]);
    }
    add_rows(acc, table, weight, &ids);
    cache.ids = ids;
}

/// `acc += weight[id] · row(id)` for each id: the probe's inner loop, 384 multiply-adds
/// per piece on f16 rows. On x86-64 with AVX2, F16C and FMA (chosen at run time; the
/// default target has only SSE2) eight values at a time; elsewhere one by one. Both round
/// each product-sum once per value in the same order, so they agree to float rounding.
fn add_rows(acc: &mut [f32], table: &StaticTable, weight: &[f32], ids: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("f16c")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU has the three features `add_rows_x86` is compiled for.
        unsafe { add_rows_x86(acc, table, weight, ids) };
        return;
    }
    add_rows_plain(acc, table, weight, ids);
}

fn add_rows_plain(acc: &mut [f32], table: &StaticTable, weight: &[f32], ids: &[u32]) {
    for &id in ids {
        let w = weight[id as usize];
        for (a, r) in acc.iter_mut().zip(table.row(id)) {
            *a = w.mul_add(r.to_f32(), *a);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c,fma")]
unsafe fn add_rows_x86(acc: &mut [f32], table: &StaticTable, weight: &[f32], ids: &[u32]) {
    use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let dim = table.dim;
    assert_eq!(acc.len(), dim);
    let lanes = dim / 8 * 8;
    for &id in ids {
        let w = weight[id as usize];
        let row = table.row(id);
        let wv = _mm256_set1_ps(w);
        let mut i = 0;
        while i < lanes {
            // SAFETY: i + 8 <= dim = row.len() = acc.len().
            unsafe {
                let r = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(i) as *const __m128i));
                let a = _mm256_loadu_ps(acc.as_ptr().add(i));
                _mm256_storeu_ps(acc.as_mut_ptr().add(i), _mm256_fmadd_ps(wv, r, a));
            }
            i += 8;
        }
        for (a, r) in acc[lanes..].iter_mut().zip(&row[lanes..]) {
            *a = w.mul_add(r.to_f32(), *a);
        }
    }
}

/// `a · b` with 16 independent partial sums, so that it vectorises.
fn dot32(a: &[f32], b: &[f32]) -> f32 {
    let mut part = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            part[i] += x[i] * y[i];
        }
    }
    part.iter().sum::<f32>() + tail
}

/// The (unnormalised) feature vector of one text, already normalised the fast tier's way.
pub fn features(table: &StaticTable, piece_weight: &[f32], normalized: &str) -> Vec<f32> {
    let mut acc = Vec::new();
    PIECES.with_borrow_mut(|cache| accumulate(table, piece_weight, normalized, &mut acc, cache));
    acc
}

/// How often each piece occurs in `texts` (normalised here), for the pieces' weights.
pub fn piece_counts(table: &StaticTable, texts: &[&str]) -> Vec<u64> {
    texts
        .par_iter()
        .fold(
            || (vec![0u64; table.vocab_size()], Vec::new()),
            |(mut counts, mut buf), t| {
                let n = crate::norm::normalize_text(t);
                for word in crate::features::words(&n) {
                    buf.clear();
                    table.pieces(word, &mut buf);
                    for &id in &buf {
                        counts[id as usize] += 1;
                    }
                }
                (counts, buf)
            },
        )
        .map(|(c, _)| c)
        .reduce(
            || vec![0u64; table.vocab_size()],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Smooth inverse frequency: `a / (a + p)` with `p` a piece's share of all pieces counted.
pub fn piece_weights(counts: &[u64], a: f32) -> Vec<f32> {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|&c| (a as f64 / (a as f64 + c as f64 / total)) as f32).collect()
}

/// How a probe is fitted.
#[derive(Debug, Clone)]
pub struct StaticProbeConfig {
    pub source: String,
    pub l2: f32,
    pub sif_a: f32,
    pub weight: f32,
}

impl StaticProbe {
    /// Fits a probe on `rows` (text and labels: one source's rows, or every row) with piece
    /// weights from `counts` (over all training texts); `row_weights` weigh the rows'
    /// log-likelihood (`None`: 1 each).
    pub fn fit(
        table: Arc<StaticTable>,
        counts: &[u64],
        rows: &[(&str, &[Label])],
        row_weights: Option<&[f32]>,
        categories: usize,
        cfg: &StaticProbeConfig,
    ) -> Self {
        let piece_weight = piece_weights(counts, cfg.sif_a);
        let dim = table.dim;
        let x: Vec<f32> = rows
            .par_iter()
            .flat_map_iter(|(t, _)| features(&table, &piece_weight, &crate::norm::normalize_text(t)))
            .collect();
        let labels: Vec<Vec<Label>> = rows.iter().map(|(_, l)| l.to_vec()).collect();
        let (probe, fitted, labelled, positives) = fit_probe_weighted(&x, dim, &labels, row_weights, categories, cfg.l2 as f64);
        let info = StaticProbeInfo {
            encoder: table.name.clone(),
            encoder_sha256: table.sha256.clone(),
            tensor: table.tensor.clone(),
            vocab_size: table.vocab_size(),
            dim,
            source: cfg.source.clone(),
            rows: rows.len(),
            l2: cfg.l2,
            sif_a: cfg.sif_a,
            weight: cfg.weight,
            fitted,
            labelled,
            positives,
            file_sha256: String::new(),
        };
        Self { info, probe, piece_weight, table: Some(table) }
    }

    /// Whether the embedding table is attached (scoring needs it).
    pub fn is_attached(&self) -> bool {
        self.table.is_some()
    }

    /// Attaches the table, which must be the one the probe was fitted on.
    pub fn attach(&mut self, table: Arc<StaticTable>) -> Result<(), StaticError> {
        let mismatch = |message: String| StaticError::Encoder { path: PathBuf::from(table.name()), message };
        if !table.sha256.eq_ignore_ascii_case(&self.info.encoder_sha256) {
            return Err(mismatch(format!(
                "model.safetensors has SHA-256 {}, but the static probe was fitted on {} ({})",
                table.sha256, self.info.encoder, self.info.encoder_sha256
            )));
        }
        if table.vocab_size() != self.info.vocab_size || table.dim != self.info.dim {
            return Err(mismatch(format!(
                "the embedding table is {} × {}, the probe expects {} × {}",
                table.vocab_size(),
                table.dim,
                self.info.vocab_size,
                self.info.dim
            )));
        }
        self.table = Some(table);
        Ok(())
    }

    /// Mixes the probe into calibrated n-gram scores `s` of one normalised text.
    ///
    /// # Panics
    /// When the table is not attached ([`StaticProbe::attach`]).
    pub fn mix(&self, normalized: &str, s: &mut [f32]) {
        let table = self.table.as_ref().expect("the static probe's embedding table is not attached");
        let w = self.info.weight;
        let dim = self.probe.input;
        PIECES.with_borrow_mut(|cache| {
            let mut acc = std::mem::take(&mut cache.acc);
            accumulate(table, &self.piece_weight, normalized, &mut acc, cache);
            // The probe on the normalised sum, in f32 with independent accumulators (the f64
            // `Probe::predict` is a serial chain of 8 × 384 additions, most of a short text's
            // cost); the two agree to about 1e-6.
            let norm = dot32(&acc, &acc).sqrt();
            let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            for (c, (x, fitted)) in s.iter_mut().zip(&self.info.fitted).enumerate() {
                if *fitted {
                    let z = dot32(&self.probe.weight[c * dim..(c + 1) * dim], &acc) * inv + self.probe.bias[c];
                    *x = (1.0 - w) * *x + w * crate::model::sigmoid(z);
                }
            }
            cache.acc = acc;
        });
    }

    /// The bytes of [`STATIC_FILE`]: magic, u32 LE version, vocabulary size, width and
    /// categories, then as f32 LE the piece weights, the probe's weights (`categories ×
    /// width`, row-major) and its biases.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let cats = self.probe.bias.len();
        for v in [STATIC_FILE_VERSION, self.piece_weight.len() as u32, self.probe.input as u32, cats as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.piece_weight.iter().chain(&self.probe.weight).chain(&self.probe.bias) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads [`STATIC_FILE`]'s bytes for the probe `info` describes (table not attached).
    pub fn from_bytes(info: StaticProbeInfo, bytes: &[u8], categories: usize) -> Result<Self, StaticError> {
        let bad = |m: String| StaticError::File(m);
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(bad("missing WDNSTAT header".into()));
        }
        let found = hex::encode(Sha256::digest(bytes));
        if !info.file_sha256.is_empty() && found != info.file_sha256 {
            return Err(bad(format!("checksum mismatch: manifest says {}, file is {found}", info.file_sha256)));
        }
        let u = |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
        let (version, vocab, dim, cats) = (u(0) as u32, u(1), u(2), u(3));
        if version != STATIC_FILE_VERSION {
            return Err(bad(format!("version {version}; this build reads {STATIC_FILE_VERSION}")));
        }
        if vocab != info.vocab_size || dim != info.dim || cats != categories || info.fitted.len() != categories {
            return Err(bad(format!(
                "shape {vocab} pieces × {dim} × {cats} categories does not match the manifest ({} × {} × {categories})",
                info.vocab_size, info.dim
            )));
        }
        if !(0.0..=1.0).contains(&info.weight) {
            return Err(bad(format!("mixing weight {} is outside [0, 1]", info.weight)));
        }
        let body = &bytes[24..];
        let want = (vocab + cats * dim + cats) * 4;
        if body.len() != want {
            return Err(bad(format!("expected {want} bytes of values, found {}", body.len())));
        }
        let vals: Vec<f32> = body.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let piece_weight = vals[..vocab].to_vec();
        let weight = vals[vocab..vocab + cats * dim].to_vec();
        let bias = vals[vocab + cats * dim..].to_vec();
        Ok(Self { info, probe: Probe { input: dim, weight, bias }, piece_weight, table: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> StaticTable {
        // Pieces: 0 [UNK], 1 kill, 2 ##ing, 3 hug, 4 ##s, 5 you, 6 k.
        let vocab = ["[UNK]", "kill", "##ing", "hug", "##s", "you", "k"];
        let dim = 3;
        let rows = vec![
            0.0, 0.0, 1.0, // [UNK]
            1.0, 0.0, 0.0, // kill
            0.5, 0.5, 0.0, // ##ing
            0.0, 1.0, 0.0, // hug
            0.0, 0.2, 0.2, // ##s
            0.1, 0.1, 0.1, // you
            0.3, 0.0, 0.0, // k
        ];
        StaticTable::from_parts(&vocab, "[UNK]", dim, rows)
    }

    /// A BERT-style directory: a WordPiece `tokenizer.json` and a `model.safetensors` whose
    /// word-embedding matrix sits between two other tensors.
    fn write_encoder_dir(dir: &Path, dtype: safetensors::Dtype, values: &[f32]) {
        use safetensors::tensor::TensorView;
        let tok = serde_json::json!({"model": {"type": "WordPiece", "unk_token": "[UNK]",
            "continuing_subword_prefix": "##", "vocab": {"[UNK]": 0, "kill": 1, "##ing": 2}}});
        std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
        let emb: Vec<u8> = match dtype {
            safetensors::Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            safetensors::Dtype::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            safetensors::Dtype::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            _ => values.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
        };
        let before = [7u8; 12];
        let after = [9u8; 8];
        let tensors = [
            ("a.before", TensorView::new(safetensors::Dtype::F32, vec![3], &before).unwrap()),
            ("embeddings.word_embeddings.weight", TensorView::new(dtype, vec![3, 2], &emb).unwrap()),
            ("z.after", TensorView::new(safetensors::Dtype::U8, vec![8], &after).unwrap()),
        ];
        safetensors::serialize_to_file(tensors, None, &dir.join("model.safetensors")).unwrap();
    }

    #[test]
    fn a_table_loads_only_its_tensor_and_refuses_broken_weights() {
        let values = [0.5, -1.25, 3.0, 0.1, -0.0, 65504.0];
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for dtype in [safetensors::Dtype::F32, safetensors::Dtype::F16, safetensors::Dtype::BF16] {
            write_encoder_dir(d, dtype, &values);
            let t = StaticTable::load(d).unwrap();
            assert_eq!((t.vocab_size(), t.dim()), (3, 2));
            for (i, v) in values.iter().enumerate() {
                let want = if dtype == safetensors::Dtype::BF16 { half::bf16::from_f32(*v).to_f32() } else { *v };
                assert_eq!(t.row(i as u32 / 2)[i % 2], half::f16::from_f32(want), "{dtype:?} value {i}");
            }
            let file_sha = hex::encode(Sha256::digest(std::fs::read(d.join("model.safetensors")).unwrap()));
            assert_eq!(t.sha256(), file_sha);
            // A hash the caller vouches for is taken as given (lower-cased), not recomputed.
            let vouched = StaticTable::load_with_sha256(d, Some("ABC123".into())).unwrap();
            assert_eq!(vouched.sha256(), "abc123");
            assert_eq!(vouched.rows, t.rows);
        }
        write_encoder_dir(d, safetensors::Dtype::I32, &values);
        let e = StaticTable::load(d).unwrap_err().to_string();
        assert!(e.contains("F32, F16 or BF16 expected"), "{e}");

        write_encoder_dir(d, safetensors::Dtype::F32, &values);
        let st = d.join("model.safetensors");
        let full = std::fs::read(&st).unwrap();
        std::fs::write(&st, &full[..full.len() - 3]).unwrap();
        let e = StaticTable::load_with_sha256(d, Some("ab".into())).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&st, &full[..4]).unwrap();
        let e = StaticTable::load(d).unwrap_err().to_string();
        assert!(e.contains("safetensors header"), "{e}");
        let mut bad_header = full.clone();
        bad_header[8] = b'[';
        std::fs::write(&st, &bad_header).unwrap();
        let e = StaticTable::load(d).unwrap_err().to_string();
        assert!(e.contains("invalid safetensors header"), "{e}");
        std::fs::remove_file(&st).unwrap();
        assert!(matches!(StaticTable::load(d).unwrap_err(), StaticError::Io { .. }));
    }

    #[test]
    fn wordpiece_takes_the_longest_match_and_unknown_words_are_one_piece() {
        let t = table();
        let mut out = Vec::new();
        t.pieces("killing", &mut out);
        assert_eq!(out, [1, 2]);
        out.clear();
        t.pieces("hugs", &mut out);
        assert_eq!(out, [3, 4]);
        out.clear();
        // "kx": "k" matches, "##x" does not: the whole word is unknown, not "k" + [UNK].
        t.pieces("kx", &mut out);
        assert_eq!(out, [0]);
        out.clear();
        t.pieces(&"k".repeat(101), &mut out);
        assert_eq!(out, [0]);
        out.clear();
        // Multi-byte characters: no match, no panic on a char boundary.
        t.pieces("kéé", &mut out);
        assert_eq!(out, [0]);
    }

    #[test]
    fn features_sum_weighted_rows_of_every_piece() {
        let t = table();
        let w = vec![1.0, 1.0, 2.0, 1.0, 1.0, 0.5, 1.0];
        let f = features(&t, &w, "killing you");
        // kill + 2·##ing + 0.5·you (the table is f16: 0.1 is 0.09998).
        let want = [1.0 + 1.0 + 0.05, 1.0 + 0.05, 0.05];
        for (a, b) in f.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{f:?}");
        }
        // Punctuation is not a piece; repeats count.
        let g = features(&t, &w, "you, you!");
        assert!((g[0] - 0.1).abs() < 1e-4, "{g:?}");
    }

    #[test]
    fn the_fast_dot_product_and_mix_agree_with_the_f64_probe() {
        let a: Vec<f32> = (0..389).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let b: Vec<f32> = (0..389).map(|i| ((i * 11 % 89) as f32 - 44.0) / 30.0).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot32(&a, &b) as f64 - exact).abs() < 1e-3 * exact.abs().max(1.0));
        let t = Arc::new(table());
        let w = vec![1.0; 7];
        let probe = Probe { input: 3, weight: vec![0.5, -1.0, 2.0, 0.0, 0.0, 0.0], bias: vec![0.1, 0.0] };
        let info = StaticProbeInfo {
            encoder: "test".into(),
            encoder_sha256: t.sha256().into(),
            tensor: String::new(),
            vocab_size: 7,
            dim: 3,
            source: "x".into(),
            rows: 0,
            l2: 0.0,
            sif_a: 0.0,
            weight: 1.0,
            fitted: vec![true, false],
            labelled: vec![0, 0],
            positives: vec![0, 0],
            file_sha256: String::new(),
        };
        let p = StaticProbe { info, probe: probe.clone(), piece_weight: w.clone(), table: Some(t.clone()) };
        let mut s = [0.3f32, 0.3];
        p.mix("killing hugs you", &mut s);
        let want = probe.predict(&features(&t, &w, "killing hugs you"));
        assert!((s[0] - want[0]).abs() < 1e-6, "{s:?} vs {want:?}");
        assert_eq!(s[1], 0.3);
    }

    /// The vectorised row loop (where the CPU has it) and the portable one agree, on a
    /// width that is not a multiple of eight.
    #[test]
    fn the_row_loops_agree() {
        let vocab: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = std::iter::once("[UNK]").chain(vocab.iter().map(String::as_str)).collect();
        let dim = 389;
        let rows: Vec<f32> = (0..refs.len() * dim).map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 300.0).collect();
        let t = StaticTable::from_parts(&refs, "[UNK]", dim, rows);
        let weight: Vec<f32> = (0..refs.len()).map(|i| 0.5 + (i % 7) as f32 / 7.0).collect();
        let ids: Vec<u32> = (0..203).map(|i| (i * 13 % 51) as u32).collect();
        let (mut a, mut b) = (vec![0.0f32; dim], vec![0.0f32; dim]);
        add_rows(&mut a, &t, &weight, &ids);
        add_rows_plain(&mut b, &t, &weight, &ids);
        // Both apply one fused multiply-add per piece and value, in piece order.
        assert_eq!(a, b);
    }

    #[test]
    fn piece_weights_fall_with_frequency() {
        let w = piece_weights(&[0, 90, 10], 0.01);
        assert_eq!(w[0], 1.0);
        assert!(w[1] < w[2] && w[2] < 1.0, "{w:?}");
    }

    #[test]
    fn a_fitted_probe_ranks_by_its_pieces_and_survives_a_round_trip() {
        let t = Arc::new(table());
        let texts = ["kill you", "killing you", "kill", "hug you", "hugs", "hug"];
        let labels: Vec<Vec<Label>> = [true, true, true, false, false, false]
            .iter()
            .map(|&p| vec![if p { Label::Positive } else { Label::Negative }, Label::Unknown])
            .collect();
        let rows: Vec<(&str, &[Label])> = texts.iter().zip(&labels).map(|(t, l)| (*t, l.as_slice())).collect();
        let counts = piece_counts(&t, &texts);
        assert_eq!(counts[5], 3, "three `you`");
        let cfg = StaticProbeConfig { source: "x".into(), l2: 0.1, sif_a: 0.01, weight: 0.5 };
        let mut p = StaticProbe::fit(t.clone(), &counts, &rows, None, 2, &cfg);
        assert_eq!(p.info.fitted, [true, false]);
        let mut hi = [0.5f32, 0.5];
        let mut lo = [0.5f32, 0.5];
        p.mix("kills", &mut hi);
        p.mix("hug", &mut lo);
        assert!(hi[0] > 0.5 && lo[0] < 0.5, "{hi:?} {lo:?}");
        assert_eq!((hi[1], lo[1]), (0.5, 0.5), "an unfitted category is the heads' alone");

        p.info.file_sha256 = hex::encode(Sha256::digest(p.to_bytes()));
        let mut back = StaticProbe::from_bytes(p.info.clone(), &p.to_bytes(), 2).unwrap();
        assert!(!back.is_attached());
        back.attach(t.clone()).unwrap();
        let mut again = [0.5f32, 0.5];
        back.mix("kills", &mut again);
        assert_eq!(again, hi);

        // Another table, a corrupt file and a wrong shape are refused.
        let mut other = table();
        other.sha256 = "00".into();
        assert!(back.attach(Arc::new(other)).is_err());
        let mut bytes = p.to_bytes();
        bytes[30] ^= 1;
        assert!(StaticProbe::from_bytes(p.info.clone(), &bytes, 2).is_err());
        assert!(StaticProbe::from_bytes(p.info.clone(), &p.to_bytes(), 3).is_err());
    }
}
