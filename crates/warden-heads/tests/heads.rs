//! Head training on synthetic pooled vectors: learns, masks unknowns,
//! round-trips through the versioned artifact, and WDANN runs.

use warden_core::{Label, Taxonomy};
use warden_heads::model::{EncoderManifest, EncoderRef, ENCODER_FORMAT_VERSION, ENCODER_KIND};
use warden_heads::{train_heads, HeadData, HeadTrainConfig, HeadsModel, WdannConfig};

/// Category c is positive when feature c > 0.3; category 1 is unknown on odd rows.
fn data(n: usize, dim: usize, cats: usize, seed: u64, shift: f32) -> HeadData {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for r in 0..n {
        let v: Vec<f32> = (0..dim).map(|_| next() + shift).collect();
        let l: Vec<Label> = (0..cats)
            .map(|c| if c == 1 && r % 2 == 1 { Label::Unknown } else if v[c] - shift > 0.3 { Label::Positive } else { Label::Negative })
            .collect();
        x.extend(v);
        labels.push(l);
    }
    HeadData { dim, x, labels, weights: vec![1.0; n] }
}

#[test]
fn heads_learn_a_separable_problem_and_round_trip() {
    let tax = Taxonomy::builtin();
    let cats = tax.len();
    let train = data(3000, 16, cats, 1, 0.0);
    let dev = data(800, 16, cats, 2, 0.0);
    let cfg = HeadTrainConfig { hidden: 32, max_epochs: 15, batch_size: 128, learning_rate: 3e-3, ..Default::default() };
    let mut epochs = 0;
    let (heads, cal, report) = train_heads(&cfg, &train, &dev, None, None, &mut |_| epochs += 1).unwrap();
    assert_eq!(report.epochs.len(), epochs);
    let last = &report.epochs[report.best_epoch[0] - 1];
    for (c, a) in last.dev_auprc.iter().enumerate() {
        assert!(a.unwrap() > 0.9, "category {c}: dev AUPRC {a:?}");
    }
    let manifest = EncoderManifest {
        format_version: ENCODER_FORMAT_VERSION,
        kind: ENCODER_KIND.into(),
        name: "t".into(),
        taxonomy: tax.clone(),
        encoder: EncoderRef { name: "x".into(), safetensors_sha256: "ab".into(), package: None },
        pooling: warden_encoder::Pooling::Mean,
        window: Default::default(),
        heads: heads.config,
        calibration: cal,
        heads_sha256: String::new(),
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
    };
    let mut m = HeadsModel { manifest, heads, encoder_params: Default::default() };
    let exact = m.logits(dev.row(0), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = HeadsModel::load(dir.path()).unwrap();
    let a = m.logits(dev.row(0), 1).unwrap();
    let b = back.logits(dev.row(0), 1).unwrap();
    // Saving rounds the in-memory heads to the stored f16, so the two score identically,
    // and the rounding itself moves a logit by little.
    assert_eq!(a, b);
    for (x, y) in exact[0].iter().zip(&a[0]) {
        assert!((x - y).abs() < 1e-2, "f16 storage moved a logit from {x} to {y}");
    }
    let stored = candle_core::safetensors::load(dir.path().join("heads.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(stored.values().all(|t| t.dtype() == candle_core::DType::F16));
    // A tampered heads file is refused.
    let hp = dir.path().join("heads.safetensors");
    let mut bytes = std::fs::read(&hp).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&hp, bytes).unwrap();
    assert!(HeadsModel::load(dir.path()).is_err());
}

#[test]
fn wdann_trains_with_a_critic_and_reports_the_distance() {
    let tax = Taxonomy::builtin();
    let train = data(1000, 12, tax.len(), 3, 0.0);
    let dev = data(300, 12, tax.len(), 4, 0.0);
    let target = data(300, 12, tax.len(), 5, 0.4);
    let cfg = HeadTrainConfig {
        hidden: 16,
        max_epochs: 3,
        batch_size: 100,
        wdann: Some(WdannConfig { critic_hidden: 20, ..Default::default() }),
        ..Default::default()
    };
    let (heads, _, report) = train_heads(&cfg, &train, &dev, Some(&target), None, &mut |_| {}).unwrap();
    assert!(heads.proj.is_some(), "WDANN needs the shared projection");
    assert!(report.epochs.iter().all(|e| e.wasserstein.is_some()));
}
