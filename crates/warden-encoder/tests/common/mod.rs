//! A tiny randomly initialised BERT written to disk by the tests, so CI
//! needs no download.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use warden_encoder::BertConfig;

pub const WORDS: usize = 40;

/// Writes `config.json`, `tokenizer.json` and `model.safetensors` of a tiny
/// BERT into `dir`. Every parameter (LayerNorms included) is random so that
/// a wrong wiring cannot hide behind identity weights.
pub fn write_tiny_bert(dir: &Path, seed: u64) -> BertConfig {
    let cfg = BertConfig::tiny();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let dev = Device::Cpu;
    dev.set_seed(seed).ok();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let stock_cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    candle_transformers::models::bert::BertModel::load(vb, &stock_cfg).unwrap();
    // Deterministic random values independent of candle's RNG.
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
    };
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<_> = data.keys().cloned().collect();
    names.sort();
    let mut tensors = HashMap::new();
    for name in names {
        let var = &data[&name];
        let n = var.elem_count();
        let scale = if name.contains("LayerNorm.weight") { 0.5 } else { 0.4 };
        let offset = if name.contains("LayerNorm.weight") { 1.0 } else { 0.0 };
        let v: Vec<f32> = (0..n).map(|_| offset + scale * next()).collect();
        tensors.insert(name.clone(), Tensor::from_vec(v, var.shape(), &dev).unwrap());
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    write_tokenizer(dir);
    cfg
}

/// A word-level tokenizer over `w0 … w{WORDS-1}` plus BERT's specials.
pub fn write_tokenizer(dir: &Path) {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let mut vocab = std::collections::HashMap::new();
    for (i, w) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
        vocab.insert(w.to_string(), i as u32);
    }
    for i in 0..WORDS {
        vocab.insert(format!("w{i}"), 4 + i as u32);
    }
    let model = WordLevel::builder().vocab(vocab.into_iter().collect()).unk_token("[UNK]".into()).build().unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok.save(dir.join("tokenizer.json"), false).unwrap();
}

/// Random `[b, l]` ids in the vocabulary with ragged lengths; returns
/// `(ids, mask, lengths)`.
pub fn ragged_batch(lengths: &[usize], seed: u64) -> (Tensor, Tensor, Vec<usize>) {
    let l = *lengths.iter().max().unwrap();
    let mut s = seed;
    let mut ids = vec![0u32; lengths.len() * l];
    let mut mask = vec![0u32; lengths.len() * l];
    for (r, &n) in lengths.iter().enumerate() {
        for c in 0..n {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            ids[r * l + c] = if c == 0 { 2 } else { 4 + ((s >> 40) % WORDS as u64) as u32 };
            mask[r * l + c] = 1;
        }
    }
    (
        Tensor::from_vec(ids, (lengths.len(), l), &Device::Cpu).unwrap(),
        Tensor::from_vec(mask, (lengths.len(), l), &Device::Cpu).unwrap(),
        lengths.to_vec(),
    )
}

/// Largest absolute difference over the non-padding positions.
pub fn max_diff_valid(a: &Tensor, b: &Tensor, lengths: &[usize]) -> f32 {
    let a = a.to_vec3::<f32>().unwrap();
    let b = b.to_vec3::<f32>().unwrap();
    let mut m = 0f32;
    for (r, &n) in lengths.iter().enumerate() {
        for c in 0..n {
            for (x, y) in a[r][c].iter().zip(&b[r][c]) {
                m = m.max((x - y).abs());
            }
        }
    }
    m
}
