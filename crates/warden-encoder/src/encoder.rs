//! A loaded encoder directory: tokenizer + BERT + pooling, with
//! length-bucketed batching.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::bert::{pool, BertModel, Mode, Pooling};
use crate::config::BertConfig;
use crate::tokenize::{TokenizeError, Tokenized, WindowConfig, WindowTokenizer};

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("{path}: {message}")]
    Files { path: PathBuf, message: String },
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error("encoder forward pass failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("embedding cache: {0}")]
    Cache(#[from] crate::cache::CacheError),
}

/// Knobs of [`Encoder`].
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    pub window: WindowConfig,
    pub pooling: Pooling,
    /// Append, after the pooled vector, the mean over tokens of every transformer layer's
    /// output (`num_hidden_layers × d` more values per window; what an in-domain probe on
    /// layer features reads). Part of the embedding id, so cached vectors never mix.
    pub layer_means: bool,
    /// Upper bound on `batch × padded length` of one forward pass; keeps
    /// memory flat whatever the mix of lengths.
    pub max_batch_tokens: usize,
    /// Upper bound on windows per forward pass.
    pub max_batch: usize,
    pub device: Device,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            window: WindowConfig::default(),
            pooling: Pooling::Mean,
            layer_means: false,
            max_batch_tokens: 4096,
            max_batch: 64,
            device: Device::Cpu,
        }
    }
}

/// The pooled vector of one window and the byte span it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEmbedding {
    pub start: usize,
    pub end: usize,
    pub vector: Vec<f32>,
}

/// All windows of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEmbedding {
    pub windows: Vec<WindowEmbedding>,
    pub tokens: usize,
    pub truncated: bool,
}

/// Counters from [`Encoder::embed_with_stats`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbedStats {
    pub texts: usize,
    pub windows: usize,
    pub tokens: usize,
    pub padded_tokens: usize,
    pub batches: usize,
    pub seconds: f64,
}

/// An encoder directory (`config.json`, `tokenizer.json`,
/// `model.safetensors`) ready to embed text.
pub struct Encoder {
    pub model: BertModel,
    tokenizer: WindowTokenizer,
    options: EncoderOptions,
    name: String,
    sha256: String,
    dir: PathBuf,
}

fn files_err(path: &Path, message: impl Into<String>) -> EncoderError {
    EncoderError::Files { path: path.to_path_buf(), message: message.into() }
}

/// Reads `config.json` of an encoder directory.
pub fn read_config(dir: &Path) -> Result<BertConfig, EncoderError> {
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|e| files_err(&p, e.to_string()))?;
    let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| files_err(&p, format!("not a BERT config: {e}")))?;
    if let Some(t) = &cfg.model_type {
        if !matches!(t.as_str(), "bert" | "roberta" | "xlm-roberta" | "camembert" | "electra") {
            return Err(files_err(&p, format!("model_type {t:?} is not BERT-family")));
        }
    }
    cfg.validate().map_err(|e| files_err(&p, e))?;
    Ok(cfg)
}

/// The sha256 of `model.safetensors`, from the fetch marker when it is
/// there and matches the file size, else computed.
pub fn weights_sha256(dir: &Path) -> Result<String, EncoderError> {
    let weights = dir.join("model.safetensors");
    let meta = std::fs::metadata(&weights).map_err(|e| files_err(&weights, e.to_string()))?;
    let marker = dir.join("warden-fetch.json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if v.get("size").and_then(|s| s.as_u64()) == Some(meta.len()) {
                if let Some(s) = v.get("safetensors_sha256").and_then(|s| s.as_str()) {
                    return Ok(s.to_string());
                }
            }
        }
    }
    crate::fetch::sha256_file(&weights).map_err(|e| files_err(&weights, e.to_string()))
}

impl Encoder {
    pub fn load(dir: &Path, options: EncoderOptions) -> Result<Self, EncoderError> {
        let config = read_config(dir)?;
        options
            .window
            .validate(config.max_position_embeddings)
            .map_err(|e| files_err(dir, e))?;
        let tokenizer = WindowTokenizer::from_file(&dir.join("tokenizer.json"), options.window)?;
        let weights = dir.join("model.safetensors");
        if !weights.exists() {
            return Err(files_err(&weights, "missing (Warden reads safetensors weights only)"));
        }
        let sha256 = weights_sha256(dir)?;
        let model = BertModel::load_safetensors(&weights, &config, &options.device)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "encoder".into());
        Ok(Encoder { model, tokenizer, options, name, sha256, dir: dir.to_path_buf() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn options(&self) -> &EncoderOptions {
        &self.options
    }
    pub fn config(&self) -> &BertConfig {
        &self.model.config
    }
    pub fn tokenizer(&self) -> &WindowTokenizer {
        &self.tokenizer
    }
    /// Width of one window's vector: the pooled vector, then the layer means if asked for.
    pub fn width(&self) -> usize {
        self.pooled_width() + self.layer_means_width()
    }

    /// Width of the pooled part of a window's vector (what heads read).
    pub fn pooled_width(&self) -> usize {
        self.options.pooling.width(self.model.hidden_size())
    }

    /// Width of the layer means after the pooled part (0 without `layer_means`).
    pub fn layer_means_width(&self) -> usize {
        if self.options.layer_means {
            self.model.config.num_hidden_layers * self.model.hidden_size()
        } else {
            0
        }
    }

    /// Identifies everything besides the weights that changes an embedding;
    /// part of embedding-cache keys.
    pub fn embedding_id(&self) -> String {
        let layers = if self.options.layer_means { "|layer-means" } else { "" };
        format!("warden-embed/1|{}|{}{layers}", self.options.pooling.as_str(), self.options.window.id())
    }

    pub fn embed(&self, texts: &[&str]) -> Result<Vec<TextEmbedding>, EncoderError> {
        Ok(self.embed_with_stats(texts)?.0)
    }

    /// Embeds texts; every window of every text is pooled.
    pub fn embed_with_stats(&self, texts: &[&str]) -> Result<(Vec<TextEmbedding>, EmbedStats), EncoderError> {
        let t0 = Instant::now();
        let tokenized = self.tokenizer.tokenize_batch(texts)?;
        let (out, mut stats) = self.embed_tokenized(&tokenized)?;
        stats.seconds = t0.elapsed().as_secs_f64();
        Ok((out, stats))
    }

    /// Embeds already tokenised texts.
    pub fn embed_tokenized(&self, tokenized: &[Tokenized]) -> Result<(Vec<TextEmbedding>, EmbedStats), EncoderError> {
        let mut stats = EmbedStats { texts: tokenized.len(), ..Default::default() };
        let mut jobs: Vec<(usize, usize)> = Vec::new();
        for (t, tk) in tokenized.iter().enumerate() {
            stats.tokens += tk.tokens;
            for w in 0..tk.windows.len() {
                jobs.push((t, w));
            }
        }
        stats.windows = jobs.len();
        let ids_of = |&(t, w): &(usize, usize)| -> &[u32] { &tokenized[t].windows[w].ids };
        // Longest first so each batch pads to its own first element.
        jobs.sort_by_key(|j| std::cmp::Reverse(ids_of(j).len()));
        let width = self.width();
        let mut vectors: Vec<Vec<Vec<f32>>> = tokenized.iter().map(|tk| vec![Vec::new(); tk.windows.len()]).collect();
        let mut i = 0;
        while i < jobs.len() {
            let len = ids_of(&jobs[i]).len();
            let cap = (self.options.max_batch_tokens / len.max(1)).clamp(1, self.options.max_batch);
            let batch = &jobs[i..(i + cap).min(jobs.len())];
            let windows: Vec<&[u32]> = batch.iter().map(ids_of).collect();
            let pooled = self.forward_windows(&windows)?;
            stats.padded_tokens += len * batch.len();
            stats.batches += 1;
            for (row, &(t, w)) in pooled.chunks_exact(width).zip(batch) {
                vectors[t][w] = row.to_vec();
            }
            i += batch.len();
        }
        let out = tokenized
            .iter()
            .zip(vectors)
            .map(|(tk, vs)| TextEmbedding {
                windows: tk
                    .windows
                    .iter()
                    .zip(vs)
                    .map(|(w, v)| WindowEmbedding { start: w.start, end: w.end, vector: v })
                    .collect(),
                tokens: tk.tokens,
                truncated: tk.truncated,
            })
            .collect();
        Ok((out, stats))
    }

    /// One padded forward pass over windows of token ids; returns the pooled
    /// vectors row-major (`windows.len() × width`).
    pub fn forward_windows(&self, windows: &[&[u32]]) -> Result<Vec<f32>, EncoderError> {
        let (ids, mask) = pad_batch(windows, &self.options.device)?;
        let mut parts = Vec::new();
        let hidden = if self.options.layer_means {
            // Masked means as one batched matmul per layer: [b, 1, l] weights × [b, l, d].
            let m = mask.to_dtype(DType::F32)?;
            let weights = m.broadcast_div(&m.sum_keepdim(1)?.clamp(1e-9, f64::MAX)?)?.unsqueeze(1)?;
            self.model.forward_visiting(&ids, None, &mask, Mode::Infer, &mut |h| {
                parts.push(weights.matmul(h)?.squeeze(1)?);
                Ok(())
            })?
        } else {
            self.model.forward(&ids, None, &mask, Mode::Infer)?
        };
        parts.insert(0, pool(&hidden, &mask, self.options.pooling)?);
        let pooled = Tensor::cat(&parts, 1)?;
        Ok(pooled.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// Pads windows to the longest; returns `(ids, mask)` as `[b, l]` u32.
pub fn pad_batch(windows: &[&[u32]], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let b = windows.len();
    let l = windows.iter().map(|w| w.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; b * l];
    let mut mask = vec![0u32; b * l];
    for (r, w) in windows.iter().enumerate() {
        ids[r * l..r * l + w.len()].copy_from_slice(w);
        mask[r * l..r * l + w.len()].fill(1);
    }
    Ok((Tensor::from_vec(ids, (b, l), device)?, Tensor::from_vec(mask, (b, l), device)?))
}

/// Hits and misses of [`Encoder::embed_cached`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    pub hits: usize,
    pub misses: usize,
    pub embed: EmbedStats,
}

impl TextEmbedding {
    fn to_cached(&self) -> crate::cache::CachedEmbedding {
        let dim = self.windows.first().map_or(0, |w| w.vector.len());
        crate::cache::CachedEmbedding {
            dim,
            spans: self.windows.iter().map(|w| (w.start as u32, w.end as u32)).collect(),
            vectors: self.windows.iter().flat_map(|w| w.vector.iter().copied()).collect(),
        }
    }

    fn from_cached(c: crate::cache::CachedEmbedding) -> Self {
        TextEmbedding {
            windows: c
                .spans
                .iter()
                .enumerate()
                .map(|(i, &(s, e))| WindowEmbedding { start: s as usize, end: e as usize, vector: c.row(i).to_vec() })
                .collect(),
            tokens: 0,
            truncated: false,
        }
    }
}

impl Encoder {
    /// Embeds texts through a content-addressed cache: texts already embedded
    /// by this encoder (same weights sha256, pooling and windows) are read
    /// back; the rest are embedded shortest-first in chunks of `chunk` texts,
    /// each chunk committed to the cache as soon as it is done, so an
    /// interrupted run resumes where it stopped. `progress(done, total)` is
    /// called after each chunk. Texts read from the cache report
    /// `tokens == 0`.
    pub fn embed_cached(
        &self,
        texts: &[&str],
        cache: &mut crate::cache::EmbeddingCache,
        chunk: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Vec<TextEmbedding>, CacheStats), EncoderError> {
        let id = self.embedding_id();
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| crate::cache::EmbeddingCache::key(&self.sha256, &id, t)).collect();
        let mut out: Vec<Option<TextEmbedding>> = Vec::with_capacity(texts.len());
        for ks in keys.chunks(4096) {
            out.extend(cache.get_many(ks)?.into_iter().map(|c| c.map(TextEmbedding::from_cached)));
        }
        let mut stats = CacheStats::default();
        // Duplicated texts are embedded once.
        let mut first: std::collections::HashMap<[u8; 32], usize> = std::collections::HashMap::new();
        let mut todo: Vec<usize> = Vec::new();
        for (i, o) in out.iter().enumerate() {
            if o.is_some() {
                stats.hits += 1;
            } else if let std::collections::hash_map::Entry::Vacant(v) = first.entry(keys[i]) {
                // `entry`, not `insert`: a later duplicate must not replace the index of the
                // occurrence that gets embedded.
                v.insert(i);
                todo.push(i);
            }
        }
        stats.misses = todo.len();
        todo.sort_by_key(|&i| texts[i].len());
        let total = todo.len();
        progress(0, total);
        let t0 = Instant::now();
        for (n, part) in todo.chunks(chunk.max(1)).enumerate() {
            let batch: Vec<&str> = part.iter().map(|&i| texts[i]).collect();
            let (embs, s) = self.embed_with_stats(&batch)?;
            stats.embed.windows += s.windows;
            stats.embed.tokens += s.tokens;
            stats.embed.padded_tokens += s.padded_tokens;
            stats.embed.batches += s.batches;
            let items: Vec<([u8; 32], crate::cache::CachedEmbedding)> =
                part.iter().zip(&embs).map(|(&i, e)| (keys[i], e.to_cached())).collect();
            cache.put_many(&items)?;
            for (&i, e) in part.iter().zip(embs) {
                out[i] = Some(e);
            }
            progress(((n + 1) * chunk).min(total), total);
        }
        stats.embed.texts = total;
        stats.embed.seconds = t0.elapsed().as_secs_f64();
        // Fill duplicates from their first occurrence.
        let filled: Vec<TextEmbedding> = (0..texts.len())
            .map(|i| match &out[i] {
                Some(e) => e.clone(),
                None => out[first[&keys[i]]].clone().expect("first occurrence embedded"),
            })
            .collect();
        Ok((filled, stats))
    }
}
