//! A tiny randomly initialised BERT on disk, for tests in this and
//! downstream crates, so that CI needs no download.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::config::BertConfig;

/// Words of the tiny vocabulary are `w0 … w{TINY_WORDS-1}`.
pub const TINY_WORDS: usize = 40;

/// Writes `config.json`, `tokenizer.json` (word level over `w0…`) and
/// `model.safetensors` of [`BertConfig::tiny`] with deterministic random
/// weights (LayerNorm scales around 1) into `dir`.
pub fn write_tiny_bert(dir: &Path, seed: u64) -> std::io::Result<BertConfig> {
    let cfg = BertConfig::tiny();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg).expect("config"))?;
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut rand = |n: usize, offset: f32, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                offset + scale * (((state >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5)
            })
            .collect()
    };
    let d = cfg.hidden_size;
    let i = cfg.intermediate_size;
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![cfg.vocab_size, d]),
        ("embeddings.position_embeddings.weight".into(), vec![cfg.max_position_embeddings, d]),
        ("embeddings.token_type_embeddings.weight".into(), vec![cfg.type_vocab_size, d]),
        ("embeddings.LayerNorm.weight".into(), vec![d]),
        ("embeddings.LayerNorm.bias".into(), vec![d]),
        ("pooler.dense.weight".into(), vec![d, d]),
        ("pooler.dense.bias".into(), vec![d]),
    ];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}.");
        for (n, s) in [
            ("attention.self.query.weight", vec![d, d]),
            ("attention.self.query.bias", vec![d]),
            ("attention.self.key.weight", vec![d, d]),
            ("attention.self.key.bias", vec![d]),
            ("attention.self.value.weight", vec![d, d]),
            ("attention.self.value.bias", vec![d]),
            ("attention.output.dense.weight", vec![d, d]),
            ("attention.output.dense.bias", vec![d]),
            ("attention.output.LayerNorm.weight", vec![d]),
            ("attention.output.LayerNorm.bias", vec![d]),
            ("intermediate.dense.weight", vec![i, d]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![d, i]),
            ("output.dense.bias", vec![d]),
            ("output.LayerNorm.weight", vec![d]),
            ("output.LayerNorm.bias", vec![d]),
        ] {
            shapes.push((format!("{p}{n}"), s));
        }
    }
    let mut tensors = HashMap::new();
    for (name, shape) in shapes {
        let n = shape.iter().product();
        let v = if name.ends_with("LayerNorm.weight") { rand(n, 1.0, 0.5) } else { rand(n, 0.0, 0.4) };
        tensors.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).map_err(std::io::Error::other)?);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).map_err(std::io::Error::other)?;
    write_tiny_tokenizer(dir)?;
    Ok(cfg)
}

/// A word-level tokenizer over `w0 … w{TINY_WORDS-1}` plus BERT's specials.
pub fn tiny_tokenizer() -> tokenizers::Tokenizer {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let mut vocab = std::collections::HashMap::new();
    for (i, w) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
        vocab.insert(w.to_string(), i as u32);
    }
    for i in 0..TINY_WORDS {
        vocab.insert(format!("w{i}"), 4 + i as u32);
    }
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".into())
        .build()
        .expect("a valid word-level vocabulary");
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok
}

/// Writes [`tiny_tokenizer`] as `tokenizer.json`.
pub fn write_tiny_tokenizer(dir: &Path) -> std::io::Result<()> {
    tiny_tokenizer().save(dir.join("tokenizer.json"), false).map_err(std::io::Error::other)
}
