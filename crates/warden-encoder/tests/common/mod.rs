//! A tiny randomly initialised BERT written to disk by the tests, so CI
//! needs no download.

#![allow(dead_code)]

use candle_core::{Device, Tensor};
use warden_encoder::BertConfig;

pub use warden_encoder::testing::TINY_WORDS as WORDS;

/// Writes a tiny random BERT (config, tokenizer, weights) into `dir`.
pub fn write_tiny_bert(dir: &std::path::Path, seed: u64) -> BertConfig {
    warden_encoder::testing::write_tiny_bert(dir, seed).unwrap()
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
