//! Fine-tuning a tiny BERT with the heads: the loss falls, dev is
//! evaluated each epoch, the encoder's top layer changes and the lower
//! layer does not, and a checkpoint is written.

use warden_core::Label;
use warden_encoder::{testing::write_tiny_bert, Encoder, EncoderOptions};
use warden_heads::finetune::{finetune, FinetuneConfig, FtExample};
use warden_heads::{Heads, HeadsConfig};

/// A tiny random BERT written to a temporary directory, and encoder options windowing at
/// `max_tokens` with `overlap`.
fn tiny_bert(seed: u64, max_tokens: usize, overlap: usize) -> (tempfile::TempDir, EncoderOptions) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), seed).unwrap();
    let window = warden_encoder::WindowConfig { max_tokens, overlap, max_windows: 0 };
    (dir, EncoderOptions { window, ..Default::default() })
}

#[test]
fn finetuning_learns_and_only_touches_the_top_layers() {
    let (dir, opts) = tiny_bert(11, 32, 4);
    let mut enc = Encoder::load(dir.path(), opts).unwrap();
    let before = enc.model.params();
    // Label 0: the text mentions w3.
    let texts: Vec<String> = (0..64)
        .map(|i| (0..6).map(|j| format!("w{}", 4 + (i * 7 + j * 3) % 30 + if j == 0 && i % 2 == 0 { 0 } else { 0 })).collect::<Vec<_>>().join(" ")
            + if i % 2 == 0 { " w3" } else { "" })
        .collect();
    let labels: Vec<Vec<Label>> = (0..64).map(|i| vec![if i % 2 == 0 { Label::Positive } else { Label::Negative }, Label::Unknown]).collect();
    let ex: Vec<FtExample> = texts.iter().zip(&labels).map(|(t, l)| FtExample { text: t, labels: l, weight: 1.0 }).collect();
    let hc = HeadsConfig { input: 16, hidden: 8, categories: 2, dropout: 0.0, projection: false };
    let heads = Heads::new(hc, 1, None, &candle_core::Device::Cpu).unwrap();
    let ck = tempfile::tempdir().unwrap();
    let cfg = FinetuneConfig {
        trainable_layers: 1,
        encoder_lr: 1e-2,
        heads_lr: 3e-2,
        epochs: 3,
        batch_size: 8,
        warmup: 0.1,
        hidden_dropout: 0.0,
        max_tokens: 32,
        checkpoint_dir: Some(ck.path().to_path_buf()),
        checkpoint_every: 4,
        ..Default::default()
    };
    let mut losses = Vec::new();
    let ft = finetune(&mut enc, heads, &ex[..48], &ex[48..], &cfg, &mut |p| {
        if p.dev_mean_auprc.is_none() {
            losses.push(p.loss)
        }
    })
    .unwrap();
    assert!(!ft.report.epochs.is_empty() && ft.report.epochs.iter().all(|e| e.dev_mean_auprc.is_some()));
    let ep: Vec<f64> = ft.report.epochs.iter().map(|e| e.loss).collect();
    assert!(ep.len() >= 2, "{ep:?}");
    assert!(ep.last().unwrap() < ep.first().unwrap(), "epoch loss did not fall: {ep:?}");
    assert!(!losses.is_empty());
    assert!(ck.path().join("checkpoint.safetensors").exists());
    let after = enc.model.params();
    let diff = |name: &str| {
        let a = &before.iter().find(|(n, _)| n == name).unwrap().1;
        let b = &after.iter().find(|(n, _)| n == name).unwrap().1;
        (a - b).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()
    };
    assert!(diff("encoder.layer.1.attention.self.query.weight") > 0.0, "top layer unchanged");
    assert_eq!(diff("encoder.layer.0.attention.self.query.weight"), 0.0, "frozen layer changed");
    assert!(ft.encoder_params.keys().all(|k| k.starts_with("encoder.layer.1.")));
}

/// A run resumed from a checkpoint at the end of epoch 1 trains epochs 2 and 3 and
/// evaluates only those: epoch 1 trained nothing in the resumed run, and scoring the resumed
/// parameters as epoch 1 made early stopping see a tie and stop after epoch 2 unchanged.
#[test]
fn a_resumed_run_does_not_reevaluate_replayed_epochs() {
    let (dir, opts) = tiny_bert(5, 16, 2);
    let texts: Vec<String> = (0..32).map(|i| format!("w{} w{}{}", 4 + i % 9, 5 + i % 7, if i % 2 == 0 { " w3" } else { "" })).collect();
    let labels: Vec<Vec<Label>> = (0..32).map(|i| vec![if i % 2 == 0 { Label::Positive } else { Label::Negative }]).collect();
    let ex: Vec<FtExample> = texts.iter().zip(&labels).map(|(t, l)| FtExample { text: t, labels: l, weight: 1.0 }).collect();
    let hc = HeadsConfig { input: 16, hidden: 4, categories: 1, dropout: 0.0, projection: false };
    let ck = tempfile::tempdir().unwrap();
    // 24 train examples in batches of 8: 3 steps an epoch, a checkpoint after each epoch.
    let cfg = |epochs| FinetuneConfig {
        trainable_layers: 1,
        epochs,
        batch_size: 8,
        max_tokens: 16,
        checkpoint_dir: Some(ck.path().to_path_buf()),
        checkpoint_every: 3,
        ..Default::default()
    };
    let mut enc = Encoder::load(dir.path(), opts.clone()).unwrap();
    let heads = Heads::new(hc, 1, None, &candle_core::Device::Cpu).unwrap();
    let first = finetune(&mut enc, heads, &ex[..24], &ex[24..], &cfg(1), &mut |_| {}).unwrap();
    assert_eq!(first.report.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1]);

    let mut enc = Encoder::load(dir.path(), opts).unwrap();
    let heads = Heads::new(hc, 1, None, &candle_core::Device::Cpu).unwrap();
    let resumed = finetune(&mut enc, heads, &ex[..24], &ex[24..], &cfg(3), &mut |_| {}).unwrap();
    assert_eq!(resumed.report.resumed_from_step, 3);
    let epochs: Vec<usize> = resumed.report.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs.first(), Some(&2), "replayed epoch 1 was evaluated: {epochs:?}");
    assert!(resumed.report.best_epoch >= 2);
}
