//! Warden's BERT forward against candle-transformers', gradients, windows.

mod common;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use common::*;
use warden_encoder::bert::{pool, BertModel, Mode, Pooling};
use warden_encoder::{BertConfig, Encoder, EncoderOptions, WindowConfig};

fn load_both(dir: &std::path::Path) -> (BertModel, candle_transformers::models::bert::BertModel) {
    let cfg: warden_encoder::BertConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let ours = BertModel::load_safetensors(&dir.join("model.safetensors"), &cfg, &Device::Cpu).unwrap();
    let stock_cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu) }
        .unwrap();
    let stock = candle_transformers::models::bert::BertModel::load(vb, &stock_cfg).unwrap();
    (ours, stock)
}

#[test]
fn forward_matches_candle_transformers_to_1e5() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), 1);
    let (ours, stock) = load_both(dir.path());
    let (ids, mask, lengths) = ragged_batch(&[17, 5, 33, 1, 40], 9);
    let types = ids.zeros_like().unwrap();
    let a = ours.forward(&ids, None, &mask, Mode::Infer).unwrap();
    let b = stock.forward(&ids, &types, Some(&mask)).unwrap();
    let d = max_diff_valid(&a, &b, &lengths);
    assert!(d < 1e-5, "max difference {d}");
    // The differentiable path (dropout off) computes the same function.
    let t = ours
        .forward(&ids, Some(&types), &mask, Mode::Train { hidden_dropout: 0.0, attention_dropout: 0.0 })
        .unwrap();
    let d = max_diff_valid(&t, &b, &lengths);
    assert!(d < 1e-5, "train-mode max difference {d}");
    // Outputs are not trivially equal to the input embeddings.
    let norm = a.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(norm > 1.0);
}

/// Real encoder check, when one is at hand: `WARDEN_TEST_ENCODER=DIR`.
#[test]
fn forward_matches_on_a_real_encoder_when_available() {
    let Ok(dir) = std::env::var("WARDEN_TEST_ENCODER") else {
        eprintln!("WARDEN_TEST_ENCODER not set: real-encoder comparison skipped (the tiny-BERT test above always runs)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let (ours, stock) = load_both(&dir);
    let vocab = ours.config.vocab_size as u64;
    let lengths = [128usize, 7, 64];
    let l = 128;
    let mut ids = vec![0u32; 3 * l];
    let mut mask = vec![0u32; 3 * l];
    let mut s = 3u64;
    for (r, &n) in lengths.iter().enumerate() {
        for c in 0..n {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            ids[r * l + c] = (1000 + (s >> 40) % (vocab - 1000)) as u32;
            mask[r * l + c] = 1;
        }
    }
    let ids = Tensor::from_vec(ids, (3, l), &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, (3, l), &Device::Cpu).unwrap();
    let a = ours.forward(&ids, None, &mask, Mode::Infer).unwrap();
    let b = stock.forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
    let d = max_diff_valid(&a, &b, &lengths);
    assert!(d < 1e-4, "max difference {d}");
    eprintln!("real encoder max difference {d:e}");
}

fn loss_of(hidden: &Tensor, mask: &Tensor) -> Tensor {
    // A head-like scalar: mean-pooled, projected, squared.
    let pooled = pool(hidden, mask, Pooling::MeanCls).unwrap();
    let w = Tensor::arange(0f32, pooled.dim(1).unwrap() as f32, &Device::Cpu)
        .unwrap()
        .affine(0.01, -0.1)
        .unwrap();
    pooled.broadcast_mul(&w).unwrap().sum(D::Minus1).unwrap().sqr().unwrap().mean_all().unwrap()
}

#[test]
fn every_trainable_encoder_weight_receives_a_gradient() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), 2);
    let (mut ours, _) = load_both(dir.path());
    let vars = ours.make_trainable(&|n| !n.starts_with("pooler.")).unwrap();
    // 5 embedding tensors + 16 per layer.
    assert_eq!(vars.len(), 5 + 16 * ours.config.num_hidden_layers);
    let (ids, mask, _) = ragged_batch(&[12, 30, 4], 5);
    let hidden = ours
        .forward(&ids, None, &mask, Mode::Train { hidden_dropout: 0.1, attention_dropout: 0.1 })
        .unwrap();
    let grads = loss_of(&hidden, &mask).backward().unwrap();
    let mut missing = Vec::new();
    for (name, var) in &vars {
        let g = grads.get(var.as_tensor());
        let nonzero = g
            .map(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0)
            .unwrap_or(false);
        if !nonzero {
            missing.push(name.clone());
        }
    }
    assert!(missing.is_empty(), "no gradient for {missing:?}");
}

/// Documents why Warden has its own forward: candle-transformers' BERT
/// gives the lower layers no gradient. If this starts failing, upstream has
/// fixed it and the note in `bert.rs` should be revisited.
#[test]
fn stock_bert_gives_lower_layers_no_gradient() {
    let cfg = BertConfig::tiny();
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let stock_cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    let stock = candle_transformers::models::bert::BertModel::load(vb, &stock_cfg).unwrap();
    let (ids, mask, _) = ragged_batch(&[12, 30, 4], 5);
    let hidden = stock.forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
    let grads = loss_of(&hidden, &mask).backward().unwrap();
    let data = varmap.data().lock().unwrap();
    let q0 = &data["encoder.layer.0.attention.self.query.weight"];
    let g = grads.get(q0.as_tensor());
    let zero = g.map(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() == 0.0).unwrap_or(true);
    assert!(zero, "candle-transformers' BERT now back-propagates into layer 0");
}

#[test]
fn embeddings_do_not_depend_on_batch_company_and_long_texts_are_windowed() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), 3);
    let opts = EncoderOptions {
        window: WindowConfig { max_tokens: 12, overlap: 2, max_windows: 0 },
        pooling: Pooling::MeanCls,
        max_batch_tokens: 40,
        max_batch: 3,
        ..Default::default()
    };
    let enc = Encoder::load(dir.path(), opts).unwrap();
    assert_eq!(enc.width(), 32);
    let long: String = (0..50).map(|i| format!("w{}", i % WORDS)).collect::<Vec<_>>().join(" ");
    let texts = ["w1 w2 w3", long.as_str(), "", "w7 w8 w9 w10 w11 w12 w13"];
    let (all, stats) = enc.embed_with_stats(&texts).unwrap();
    assert_eq!(all.len(), 4);
    // 50 tokens, body 10, stride 8: windows at 0,8,...,40 -> 6 windows.
    assert_eq!(all[1].windows.len(), 6);
    assert_eq!(all[1].tokens, 50);
    assert!(stats.batches > 1, "batching by token budget should split this");
    assert_eq!(all[1].windows.last().unwrap().end, long.len());
    for (i, t) in texts.iter().enumerate() {
        let alone = enc.embed(&[t]).unwrap();
        for (a, b) in alone[0].windows.iter().zip(&all[i].windows) {
            assert_eq!((a.start, a.end), (b.start, b.end));
            let d = a.vector.iter().zip(&b.vector).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(d < 1e-5, "text {i}: batch-dependent embedding ({d})");
        }
    }
}

#[test]
fn too_long_a_sequence_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), 4);
    let (ours, _) = load_both(dir.path());
    let (ids, mask, _) = ragged_batch(&[41], 1);
    let err = ours.forward(&ids, None, &mask, Mode::Infer).unwrap_err();
    assert!(err.to_string().contains("windows"), "{err}");
    let bad = EncoderOptions { window: WindowConfig { max_tokens: 64, overlap: 0, max_windows: 0 }, ..Default::default() };
    assert!(Encoder::load(dir.path(), bad).is_err());
}

/// `embed_cached` embeds each distinct missing text once, fills duplicates from it (a later
/// duplicate once replaced the embedded occurrence's index and panicked), matches `embed`,
/// and serves the second call from the cache.
#[test]
fn cached_embedding_handles_duplicates_and_matches_embed() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), 4);
    let opts = EncoderOptions { window: WindowConfig { max_tokens: 16, overlap: 2, max_windows: 0 }, ..Default::default() };
    let enc = Encoder::load(dir.path(), opts).unwrap();
    let mut cache = warden_encoder::cache::EmbeddingCache::open(&dir.path().join("cache.sqlite")).unwrap();
    let texts = ["w1 w2", "w3 w4 w5", "w1 w2", "w1 w2", "w6"];
    let (got, stats) = enc.embed_cached(&texts, &mut cache, 2, &mut |_, _| {}).unwrap();
    assert_eq!((stats.hits, stats.misses), (0, 3));
    let direct = enc.embed(&texts).unwrap();
    for (g, d) in got.iter().zip(&direct) {
        assert_eq!(g.windows.len(), d.windows.len());
        for (a, b) in g.windows[0].vector.iter().zip(&d.windows[0].vector) {
            assert!((a - b).abs() < 1e-5);
        }
    }
    let (again, stats) = enc.embed_cached(&texts, &mut cache, 2, &mut |_, _| {}).unwrap();
    assert_eq!((stats.hits, stats.misses), (5, 0));
    // Read back at the cache's f16 precision.
    for (a, b) in again.iter().zip(&got) {
        for (x, y) in a.windows[0].vector.iter().zip(&b.windows[0].vector) {
            assert!((x - y).abs() <= 2e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}

/// `layer_means` appends one mean-pooled block per transformer layer after the pooled
/// vector: the pooled part is unchanged, the last block is the last layer's mean (the
/// mean half of mean+CLS), each block matches a mean over that layer's own output, and the
/// embedding id differs so the cache never mixes the two widths.
#[test]
fn layer_means_follow_the_pooled_vector_one_block_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_tiny_bert(dir.path(), 5);
    let window = WindowConfig { max_tokens: 16, overlap: 2, max_windows: 0 };
    let plain = Encoder::load(dir.path(), EncoderOptions { window, pooling: Pooling::MeanCls, ..Default::default() }).unwrap();
    let layered =
        Encoder::load(dir.path(), EncoderOptions { window, pooling: Pooling::MeanCls, layer_means: true, ..Default::default() })
            .unwrap();
    let (d, layers) = (cfg.hidden_size, cfg.num_hidden_layers);
    assert_eq!(layered.pooled_width(), 2 * d);
    assert_eq!(layered.layer_means_width(), layers * d);
    assert_eq!(layered.width(), (2 + layers) * d);
    assert_eq!(plain.layer_means_width(), 0);
    assert_ne!(plain.embedding_id(), layered.embedding_id());
    let texts = ["w1 w2 w3", "w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20"];
    let a = plain.embed(&texts).unwrap();
    let b = layered.embed(&texts).unwrap();
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max) < 1e-5;
    for (ta, tb) in a.iter().zip(&b) {
        assert_eq!(ta.windows.len(), tb.windows.len());
        for (wa, wb) in ta.windows.iter().zip(&tb.windows) {
            assert_eq!(wb.vector.len(), (2 + layers) * d);
            assert!(close(&wa.vector, &wb.vector[..2 * d]), "the pooled part changed");
            assert!(close(&wb.vector[..d], &wb.vector[(1 + layers) * d..]), "last block is not the last layer's mean");
        }
    }
    // Each block against the layer outputs themselves, on one unpadded window.
    let tk = layered.tokenizer().tokenize_batch(&texts[..1]).unwrap();
    let ids = &tk[0].windows[0].ids;
    let (ids_t, mask) = warden_encoder::encoder::pad_batch(&[ids.as_slice()], &Device::Cpu).unwrap();
    let mut means: Vec<Vec<f32>> = Vec::new();
    layered
        .model
        .forward_visiting(&ids_t, None, &mask, Mode::Infer, &mut |h| {
            means.push(h.mean(1)?.flatten_all()?.to_vec1::<f32>()?);
            Ok(())
        })
        .unwrap();
    assert_eq!(means.len(), layers);
    for (l, m) in means.iter().enumerate() {
        assert!(close(m, &b[0].windows[0].vector[(2 + l) * d..(3 + l) * d]), "layer {l}");
    }
    assert!(!close(&means[0], &means[layers - 1]), "layers should differ");
}
