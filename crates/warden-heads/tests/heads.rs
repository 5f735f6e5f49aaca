//! Head training on synthetic pooled vectors: learns, masks unknowns,
//! round-trips through the versioned artifact, and WDANN runs.

use warden_core::{Label, Taxonomy};
use warden_heads::model::{EncoderManifest, EncoderRef, ENCODER_FORMAT_VERSION, ENCODER_KIND};
use warden_heads::{train_heads, HeadData, HeadTrainConfig, HeadsModel, ProbeFeatures, WdannConfig};

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
    HeadData { dim, x, labels, weights: vec![1.0; n], domains: Vec::new() }
}

/// A manifest for heads trained in a test (no real encoder behind them).
fn manifest_for(tax: &Taxonomy, heads: &warden_heads::Heads, cal: Vec<warden_fast::Calibration>) -> EncoderManifest {
    EncoderManifest {
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
        probe: None,
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
    }
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
    let manifest = manifest_for(&tax, &heads, cal);
    let mut m = HeadsModel { manifest, heads, encoder_params: Default::default(), probe: None };
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

/// Fine-tuned encoder tensors are stored as f16 and read back as f32 (the encoder's dtype);
/// artifacts written when they were stored as f32 still load.
#[test]
fn fine_tuned_encoder_tensors_are_stored_as_f16_and_old_f32_files_load() {
    use candle_core::{DType, Device, Tensor};
    let tax = Taxonomy::builtin();
    let dev = data(50, 16, tax.len(), 2, 0.0);
    let cfg = HeadTrainConfig { hidden: 8, max_epochs: 1, ..Default::default() };
    let (heads, cal, _) = train_heads(&cfg, &dev, &dev, None, None, &mut |_| {}).unwrap();
    let manifest = manifest_for(&tax, &heads, cal);
    // 1/3 and friends are not f16 values, so rounding shows.
    let exact: Vec<f32> = (1..=12).map(|i| 1.0 / (i as f32 * 3.0)).collect();
    let w = Tensor::from_vec(exact.clone(), (3, 4), &Device::Cpu).unwrap();
    let mut encoder_params = std::collections::HashMap::new();
    encoder_params.insert("encoder.layer.1.output.dense.weight".to_string(), w.clone());
    let mut m = HeadsModel { manifest, heads, encoder_params, probe: None };
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let stored = candle_core::safetensors::load(dir.path().join("heads.safetensors"), &Device::Cpu).unwrap();
    let t = &stored["encoder.encoder.layer.1.output.dense.weight"];
    assert_eq!(t.dtype(), DType::F16);
    let back = HeadsModel::load(dir.path()).unwrap();
    let read = &back.encoder_params["encoder.layer.1.output.dense.weight"];
    assert_eq!(read.dtype(), DType::F32);
    let (r, mem): (Vec<f32>, Vec<f32>) = (
        read.flatten_all().unwrap().to_vec1().unwrap(),
        m.encoder_params["encoder.layer.1.output.dense.weight"].flatten_all().unwrap().to_vec1().unwrap(),
    );
    // The saved model was rounded in memory to exactly what was stored.
    assert_eq!(r, mem);
    assert!(r.iter().zip(&exact).all(|(a, b)| a != b && (a - b).abs() < b * 1e-3), "{r:?} vs {exact:?}");

    // The pre-2026-12-07 layout: the same file with the encoder tensor in f32.
    let mut old = stored.clone();
    old.insert("encoder.encoder.layer.1.output.dense.weight".into(), w);
    let hp = dir.path().join("heads.safetensors");
    candle_core::safetensors::save(&old, &hp).unwrap();
    let bytes = std::fs::read(&hp).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let mp = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&mp).unwrap().replace(&m.manifest.heads_sha256, &sha);
    std::fs::write(&mp, text).unwrap();
    let old_back = HeadsModel::load(dir.path()).unwrap();
    let read = &old_back.encoder_params["encoder.layer.1.output.dense.weight"];
    assert_eq!(read.dtype(), DType::F32);
    assert_eq!(read.flatten_all().unwrap().to_vec1::<f32>().unwrap(), exact);
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

/// Two sources: in domain 1 category 0 is positive when feature 0 > 0 (content), half
/// of the rows; domain 0's rows all carry a style feature (the last one at +1 instead of
/// -1) and are positive 95% of the time whatever their content. Every other category
/// unknown.
fn two_domains(n: usize, dim: usize, cats: usize, seed: u64) -> HeadData {
    let mut d = data(n, dim, cats, seed, 0.0);
    d.domains = (0..n as u32).map(|r| r % 2).collect();
    for r in 0..n {
        let style = if d.domains[r] == 0 { 1.0 } else { -1.0 };
        d.x[r * dim + dim - 1] = style;
        let y = if d.domains[r] == 0 { r % 20 != 0 } else { d.x[r * dim] > 0.0 };
        d.labels[r] = (0..cats).map(|c| if c > 0 { Label::Unknown } else if y { Label::Positive } else { Label::Negative }).collect();
    }
    d
}

#[test]
fn domain_offsets_keep_a_sources_base_rate_out_of_the_heads() {
    let cats = Taxonomy::builtin().len();
    let (dim, n) = (8, 4000);
    let train = two_domains(n, dim, cats, 1);
    let dev = two_domains(1000, dim, cats, 2);
    // A domain-0-styled input with no content signal (feature 0 at its most negative).
    let mut probe = vec![0.0f32; dim];
    probe[0] = -0.5;
    probe[dim - 1] = 1.0;
    let score = |offsets: bool| {
        let cfg = HeadTrainConfig {
            hidden: 16,
            max_epochs: 10,
            batch_size: 128,
            learning_rate: 3e-3,
            domain_offsets: offsets,
            domain_reference: Some(1),
            ..Default::default()
        };
        let (heads, cal, report) = train_heads(&cfg, &train, &dev, None, None, &mut |_| {}).unwrap();
        assert_eq!(report.domain_offsets.is_empty(), !offsets);
        let x = candle_core::Tensor::from_vec(probe.clone(), (1, dim), &candle_core::Device::Cpu).unwrap();
        let z = heads.forward(&x, false).unwrap().to_vec2::<f32>().unwrap()[0][0];
        cal[0].apply(z)
    };
    let (plain, with) = (score(false), score(true));
    // Without intercepts the style feature carries domain 0's 95% base rate; with them the
    // intercept takes it, and the probe scores as domain 1 would score it: negative
    // (measured: 0.81 without intercepts, 0.19 with them).
    assert!(plain > 0.5, "plain {plain}");
    assert!(with < 0.3 && with < plain - 0.3, "with offsets {with}, plain {plain}");
}

/// One window's embedding of row `r` of `d`.
fn window_of(d: &HeadData, r: usize) -> warden_encoder::TextEmbedding {
    warden_encoder::TextEmbedding {
        windows: vec![warden_encoder::WindowEmbedding { start: 0, end: 1, vector: d.row(r).to_vec() }],
        tokens: 1,
        truncated: false,
    }
}

/// A probe is saved with the heads (format 2), scores as `(1 - w)·heads + w·probe` on the
/// categories it was fitted on and leaves the others to the heads; a format 1 artifact (no
/// probe) still loads; a manifest naming a probe whose tensors are missing is refused.
#[test]
fn the_in_domain_probe_round_trips_and_mixes_only_fitted_categories() {
    let tax = Taxonomy::builtin();
    let cats = tax.len();
    let train = data(400, 16, cats, 1, 0.0);
    let cfg = HeadTrainConfig { hidden: 8, max_epochs: 2, ..Default::default() };
    let (heads, cal, _) = train_heads(&cfg, &train, &train, None, None, &mut |_| {}).unwrap();
    // Category 1 is unknown on odd rows only, so every category can be fitted; make the last
    // one single-class for the probe, so it must be left to the heads.
    let mut labels = train.labels.clone();
    for l in &mut labels {
        l[cats - 1] = Label::Negative;
    }
    let (probe, fitted, labelled, positives) = warden_heads::fit_probe(&train.x, train.dim, &labels, cats, 0.3);
    assert_eq!(fitted.iter().filter(|f| !**f).count(), 1);
    assert!(!fitted[cats - 1]);
    let info = warden_heads::ProbeInfo {
        source: "s".into(),
        rows: 400,
        features: ProbeFeatures::Pooled,
        l2: 0.3,
        weight: 0.5,
        fitted,
        labelled,
        positives,
    };

    let plain = HeadsModel { manifest: manifest_for(&tax, &heads, cal.clone()), heads: heads.clone(), encoder_params: Default::default(), probe: None };
    let mut manifest = manifest_for(&tax, &heads, cal);
    manifest.probe = Some(info);
    let mut m = HeadsModel { manifest, heads, encoder_params: Default::default(), probe: Some(probe) };
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = HeadsModel::load(dir.path()).unwrap();
    assert_eq!(back.probe, m.probe, "the probe is stored (f16) and read back as it was rounded");
    let mut plain_rounded = plain.clone();
    plain_rounded.round_for_storage().unwrap();
    for r in 0..20 {
        let e = window_of(&train, r);
        let (with, _) = back.score_windows(&e).unwrap();
        let (without, _) = plain_rounded.score_windows(&e).unwrap();
        let q = back.probe.as_ref().unwrap().predict(train.row(r));
        for c in 0..cats - 1 {
            // Before the taxonomy's parent >= child rule, which only ever raises a parent.
            if !tax.categories().iter().any(|x| x.parent.as_deref() == Some(tax.categories()[c].code.as_str())) {
                assert!((with[c] - (0.5 * without[c] + 0.5 * q[c])).abs() < 1e-5, "row {r} category {c}");
            }
        }
        assert_eq!(with[cats - 1], without[cats - 1], "an unfitted category is the heads' alone");
    }

    // Format 1 (written before the probe existed): loads, no probe.
    let mut v1 = plain.clone();
    let d1 = tempfile::tempdir().unwrap();
    v1.save(d1.path()).unwrap();
    let mp = d1.path().join("manifest.json");
    let current = format!("\"format_version\": {ENCODER_FORMAT_VERSION}");
    let text = std::fs::read_to_string(&mp).unwrap().replacen(&current, "\"format_version\": 1", 1);
    assert!(text.contains("\"format_version\": 1"));
    std::fs::write(&mp, text).unwrap();
    let old = HeadsModel::load(d1.path()).unwrap();
    assert!(old.probe.is_none() && old.manifest.format_version == 1);

    // A manifest naming a probe over a heads file without one is refused.
    let text = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v1_text = std::fs::read_to_string(&mp).unwrap();
    let mut v1_json: serde_json::Value = serde_json::from_str(&v1_text).unwrap();
    v1_json["probe"] = v["probe"].clone();
    std::fs::write(&mp, serde_json::to_string(&v1_json).unwrap()).unwrap();
    let err = HeadsModel::load(d1.path()).unwrap_err().to_string();
    assert!(err.contains("lacks its tensors"), "{err}");

    // Format 2 (a probe on the pooled vector, no `features` field): loads as `Pooled`.
    let mp = dir.path().join("manifest.json");
    let mut v2: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    v2["format_version"] = 2.into();
    v2["probe"].as_object_mut().unwrap().remove("features");
    std::fs::write(&mp, serde_json::to_string(&v2).unwrap()).unwrap();
    let two = HeadsModel::load(dir.path()).unwrap();
    assert_eq!(two.manifest.probe.as_ref().unwrap().features, ProbeFeatures::Pooled);
    assert_eq!(two.probe, back.probe);
}

/// A probe on layer means (format 3) reads the part of each window vector after the heads'
/// pooled vector, block-normalised; a window without that part is an error, not a silent
/// heads-only score; a format 2 manifest cannot claim layer features.
#[test]
fn a_probe_on_layer_means_reads_the_vector_after_the_pooled_part() {
    let tax = Taxonomy::builtin();
    let cats = tax.len();
    let train = data(300, 16, cats, 1, 0.0);
    let cfg = HeadTrainConfig { hidden: 8, max_epochs: 2, ..Default::default() };
    let (heads, cal, _) = train_heads(&cfg, &train, &train, None, None, &mut |_| {}).unwrap();
    // Layer means of 3 "layers" × 8: built from the row itself, so the probe has signal.
    let layers = 3;
    let tail = |r: usize| -> Vec<f32> { (0..layers * 8).map(|i| train.row(r)[i % 16] * (1.0 + (i / 8) as f32)).collect() };
    let x: Vec<f32> = (0..300).flat_map(|r| warden_heads::layer_features(&tail(r), layers)).collect();
    let (probe, fitted, labelled, positives) = warden_heads::fit_probe(&x, layers * 8, &train.labels, cats, 0.1);
    let info = warden_heads::ProbeInfo {
        source: "s".into(),
        rows: 300,
        features: ProbeFeatures::LayerMeans { layers },
        l2: 0.1,
        weight: 0.5,
        fitted: fitted.clone(),
        labelled,
        positives,
    };
    let mut manifest = manifest_for(&tax, &heads, cal.clone());
    manifest.probe = Some(info);
    let mut m = HeadsModel { manifest, heads: heads.clone(), encoder_params: Default::default(), probe: Some(probe) };
    assert!(m.needs_layer_means());
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = HeadsModel::load(dir.path()).unwrap();
    assert_eq!(back.manifest.format_version, ENCODER_FORMAT_VERSION);
    let mut plain = HeadsModel { manifest: manifest_for(&tax, &heads, cal), heads, encoder_params: Default::default(), probe: None };
    plain.round_for_storage().unwrap();
    let p = back.probe.as_ref().unwrap();
    for r in 0..10 {
        let pooled = window_of(&train, r);
        let mut full = pooled.clone();
        full.windows[0].vector.extend(tail(r));
        let (with, _) = back.score_windows(&full).unwrap();
        let (without, _) = plain.score_windows(&pooled).unwrap();
        let q = p.predict(&warden_heads::layer_features(&tail(r), layers));
        for c in 0..cats {
            let is_parent = tax.categories().iter().any(|x| x.parent.as_deref() == Some(tax.categories()[c].code.as_str()));
            if fitted[c] && !is_parent {
                assert!((with[c] - (0.5 * without[c] + 0.5 * q[c])).abs() < 1e-5, "row {r} category {c}");
            }
        }
        let err = back.score_windows(&pooled).unwrap_err().to_string();
        assert!(err.contains("layer means"), "{err}");
    }
    let mp = dir.path().join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    v["format_version"] = 2.into();
    std::fs::write(&mp, serde_json::to_string(&v).unwrap()).unwrap();
    let err = HeadsModel::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("format 3"), "{err}");
}
