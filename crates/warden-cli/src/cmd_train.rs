use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use warden_core::{Classifier, Record, Taxonomy};
use warden_fast::{FeatureConfig, TrainConfig, TrainExample};
use warden_policy::ThresholdPolicy;

use crate::cmd_data::{build_data, DataArgs};

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Tier {
    /// Hashed n-gram logistic heads (corpus-scale throughput).
    Fast,
    /// Eight MLP heads on a transformer encoder (frozen by default; --finetune-layers).
    Encoder,
    /// Fast tier first, encoder on the uncertain band; combination learned on dev.
    Cascade,
}

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value_t = Tier::Fast)]
    pub tier: Tier,
    /// Output model directory.
    #[arg(long, default_value = "out/model")]
    pub out: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Train on this prepared JSONL (from `warden data build` or `warden label export`)
    /// instead of building from the dataset specs; needs --dev-file too.
    #[arg(long, requires = "dev_file")]
    pub train_file: Option<PathBuf>,
    #[arg(long, requires = "train_file")]
    pub dev_file: Option<PathBuf>,
    /// log2 of the number of feature hash buckets (weights take at most 2^bits × categories × 2 bytes; zero weights are stored sparsely, 6.2 MB instead of 16.8 MB for the default).
    #[arg(long, default_value_t = 20)]
    pub bits: u32,
    #[arg(long, default_value_t = 12)]
    pub max_epochs: usize,
    /// AdaGrad step size. Five-fold CV on the moderation set: 0.05 beats 0.02, 0.2 and
    /// 0.6 (docs/fast-tier.md).
    #[arg(long, default_value_t = 0.05)]
    pub learning_rate: f32,
    /// L2 penalty on the head weights.
    #[arg(long, default_value_t = 1e-6)]
    pub l2: f32,
    /// Cap on the positive-class weight sqrt(neg/pos) of rare categories.
    #[arg(long, default_value_t = 8.0)]
    pub max_pos_weight: f32,
    /// Longest character n-gram (bytes of a word with boundary marks); 0 disables them.
    #[arg(long, default_value_t = 5)]
    pub char_max: u8,
    /// Count every occurrence of a word or bigram (frequency) instead of each distinct one
    /// once (presence, the default: +0.015 to +0.021 `any` AUPRC in moderation-set CV over
    /// two seeds, see docs/fast-tier.md).
    #[arg(long)]
    pub count_repeats: bool,
    #[arg(long, default_value_t = 20231)]
    pub seed: u64,
    /// Score subcategories (S3, H2, V2) on their own head only, instead of adding their
    /// parent's logit.
    #[arg(long)]
    pub independent_subcategories: bool,
    /// Heads per category trained from different shuffles and averaged (an ensemble at
    /// no scoring cost; training time grows linearly).
    #[arg(long, default_value_t = 1)]
    pub ensemble: usize,
    /// Sources are balanced by weighting each row by sqrt(reference / rows of its source),
    /// clamped to [1/4, 4], so 25k tweets of one dataset do not drown 600 rows of another.
    /// Rows per source at weight 1.
    #[arg(long, default_value_t = 5000.0)]
    pub balance_reference: f64,
    /// Extra weight for a source, NAME=FACTOR (repeatable). The default favours the one
    /// source labelled with exactly our taxonomy.
    #[arg(long = "source-weight", value_parser = parse_kv, default_values = ["openai-moderation=4"])]
    pub source_weights: Vec<(String, f64)>,
    /// Fit calibration on dev rows of this source, with every other dev row weighted by
    /// --calibrate-rest (early stopping and thresholds still use all of dev).
    #[arg(long)]
    pub calibrate_on: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    pub calibrate_rest: f32,
    /// Model name recorded in the manifest and reported by `warden eval` (default: warden-<tier>).
    #[arg(long)]
    pub name: Option<String>,
    /// Treat a source's labels for a category as unknown when that source has positives and
    /// no negatives for it (in train), so no head learns a source's style as the category.
    /// Helps the encoder tier a lot and hurts the fast tier's violence head
    /// (docs/encoder-tier.md); the dropped pairs are listed in the manifest.
    #[arg(long)]
    pub positive_only_as_unknown: bool,
    /// Encoder tier: learn one intercept per (source, category) while training the heads,
    /// for sources with both positives and negatives of it, so a source's base rate is not
    /// learned as the style of its texts; scores are the --offset-reference source's
    /// (docs/encoder-tier.md).
    #[arg(long)]
    pub source_offsets: bool,
    /// Source whose intercepts scoring uses with --source-offsets; "none" for the heads' own bias.
    #[arg(long, default_value = "openai-moderation")]
    pub offset_reference: String,
    /// Fast tier: fit a static-embedding probe (a linear model per category on the average
    /// input token embedding of the encoder, --encoder or the default) and mix it into the
    /// n-gram heads' scores. SOURCE: fit it on that source's train rows only (an in-domain
    /// probe), or `all`: on every train row, weighted like the heads (the default model's
    /// recipe). Moderation-set CV `any` AUPRC: +0.042 (SOURCE) and +0.051 (`all`); the
    /// public sources' pooled dev `any` falls by 0.113 and 0.023 (docs/fast-tier.md,
    /// "Static-embedding probe").
    #[arg(long, value_name = "SOURCE|all")]
    pub static_probe: Option<String>,
    /// Ridge penalty of the static probe, on the summed (weighted) log-likelihood; default
    /// 0.03 for one source's rows, 1 for `all`.
    #[arg(long, requires = "static_probe")]
    pub static_probe_l2: Option<f32>,
    /// Weight of the static probe in (1-W)·heads + W·probe.
    #[arg(long, default_value_t = 0.5, requires = "static_probe", value_parser = crate::cmd_train_encoder::parse_unit)]
    pub static_probe_weight: f32,
    /// The `a` of the word pieces' weights a / (a + frequency).
    #[arg(long, default_value_t = 0.01, requires = "static_probe")]
    pub static_probe_sif: f32,
    #[command(flatten)]
    pub encoder: crate::cmd_train_encoder::EncoderTrainArgs,
}

/// Fewer dev positives than this and an F1-optimal threshold is noise (V2 had 2).
const MIN_POSITIVES_TO_TUNE: usize = 30;

fn parse_kv(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=FACTOR")?;
    let f: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    if !(f >= 0.0 && f.is_finite()) {
        return Err("the factor must be a non-negative number".into());
    }
    Ok((k.to_owned(), f))
}

/// Per-row weights: source balancing times the per-source factors.
pub(crate) fn row_weights(rows: &[Record], a: &TrainArgs) -> (Vec<f32>, BTreeMap<String, f64>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(&r.source).or_default() += 1;
    }
    let factors: BTreeMap<&str, f64> = a.source_weights.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let per_source: BTreeMap<String, f64> = counts
        .iter()
        .map(|(s, &n)| {
            let balance = (a.balance_reference / n as f64).sqrt().clamp(0.25, 4.0);
            (s.to_string(), balance * factors.get(s).copied().unwrap_or(1.0))
        })
        .collect();
    (rows.iter().map(|r| per_source[&r.source] as f32).collect(), per_source)
}

fn examples<'a>(rows: &'a [Record], w: &[f32]) -> Vec<TrainExample<'a>> {
    rows.iter()
        .zip(w)
        .map(|(r, &w)| TrainExample { text: &r.text, labels: &r.labels, weight: w, calibration_weight: w })
        .collect()
}

pub(crate) fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}+dirty") } else { rev }
        }
        None => "unknown".into(),
    }
}

pub fn run(mut a: TrainArgs) -> Result<()> {
    let tier_name = match a.tier {
        Tier::Fast => "warden-fast",
        Tier::Encoder => "warden-encoder",
        Tier::Cascade => "warden-cascade",
    };
    let name = a.name.get_or_insert_with(|| tier_name.to_string()).clone();
    match a.tier {
        // Measured for the fast tier and not kept (docs/fast-tier.md).
        Tier::Fast | Tier::Cascade if a.source_offsets => {
            bail!("--source-offsets is an option of the encoder heads' training (--tier encoder)")
        }
        // The probe reads encoder vectors; a cascade takes an encoder model that has one.
        Tier::Fast | Tier::Cascade if a.encoder.domain_probe.is_some() => {
            bail!("--domain-probe is an option of the encoder tier's training (--tier encoder)")
        }
        Tier::Encoder | Tier::Cascade if a.static_probe.is_some() => {
            bail!("--static-probe is an option of the fast tier's training (--tier fast); --domain-probe is the encoder tier's")
        }
        Tier::Fast => {}
        Tier::Encoder => return crate::cmd_train_encoder::run_encoder(&a, &name),
        Tier::Cascade => return crate::cmd_train_encoder::run_cascade(&a, &name),
    }
    let taxonomy = crate::load_taxonomy(a.data.taxonomy.as_deref())?;
    let (train, dev, data_info, datasheet) = load_training_data(&a, &taxonomy)?;
    if train.is_empty() || dev.is_empty() {
        bail!("need both train and dev rows (got {} and {})", train.len(), dev.len());
    }
    let (wtr, source_weights) = row_weights(&train, &a);
    let (wdev, _) = row_weights(&dev, &a);
    let xtr = examples(&train, &wtr);
    let mut xdev = examples(&dev, &wdev);
    if let Some(src) = &a.calibrate_on {
        for (ex, r) in xdev.iter_mut().zip(&dev) {
            ex.calibration_weight = if &r.source == src { ex.weight } else { ex.weight * a.calibrate_rest };
        }
    }
    let cfg = TrainConfig {
        name: name.clone(),
        features: FeatureConfig {
            bits: a.bits,
            char_min: if a.char_max == 0 { 0 } else { 3.min(a.char_max) },
            char_max: a.char_max,
            distinct_words: !a.count_repeats,
            ..FeatureConfig::default()
        },
        max_epochs: a.max_epochs,
        learning_rate: a.learning_rate,
        l2: a.l2,
        max_pos_weight: a.max_pos_weight,
        ensemble: a.ensemble,
        combine_parent_logits: !a.independent_subcategories,
        seed: a.seed,
        ..TrainConfig::default()
    };
    eprintln!(
        "warden train: {} train rows, {} dev rows, {} categories, 2^{} buckets",
        train.len(),
        dev.len(),
        taxonomy.len(),
        a.bits
    );
    let pb = crate::progress::bar((taxonomy.len() * cfg.max_epochs * cfg.ensemble.max(1)) as u64, "epochs", false);
    let codes: Vec<String> = taxonomy.codes().map(str::to_owned).collect();
    let progress = |c: usize, epoch: usize, loss: f64| {
        pb.inc(1);
        pb.println(format!("  {:<3} epoch {epoch:>2}: dev loss {loss:.4}", codes[c]));
    };
    let (mut model, report) = warden_fast::train(&taxonomy, &xtr, &xdev, &cfg, &progress);
    pb.finish_and_clear();

    // With a static probe, the n-gram heads alone get their own thresholds too (used where
    // the encoder's files are missing) and their dev metrics are recorded beside the mix's.
    let ngrams = match &a.static_probe {
        Some(src) => {
            let scores = crate::cmd_eval::score_records(&model, &dev)?;
            let policy = tune_policy(&taxonomy, &dev, &scores);
            let report = warden_eval::evaluate_records(&taxonomy, &dev, &scores, policy.thresholds(), &name)?;
            fit_static_probe(&mut model, &a, src, &train, &wtr, &taxonomy)?;
            Some((policy, report))
        }
        None => None,
    };

    let dev_scores = crate::cmd_eval::score_records(&model, &dev)?;
    let policy = tune_policy(&taxonomy, &dev, &dev_scores);
    let dev_report = warden_eval::evaluate_records(&taxonomy, &dev, &dev_scores, policy.thresholds(), &name)?;
    let labels: Vec<_> = dev.iter().map(|r| r.labels.as_slice()).collect();
    let groups: Vec<&str> = dev.iter().map(|r| r.source.as_str()).collect();
    let by_source =
        warden_eval::try_evaluate_by_group(&taxonomy, &labels, &dev_scores, policy.thresholds(), &groups, &name)?;
    
    let command: Vec<String> = std::env::args().collect();
    let m = model.manifest_mut();
    m.training = json!({
        "command": command.join(" "),
        "git_revision": git_revision(),
        "data": data_info,
        "source_weights": source_weights,
        "config": cfg,
        "report": report,
    });
    m.metrics = json!({
        "dev": dev_report.to_json(),
        "dev_by_source": by_source.iter().map(|(k, r)| (k.clone(), r.to_json())).collect::<serde_json::Map<_, _>>(),
    });
    if let Some((_, r)) = &ngrams {
        m.metrics["dev_ngram_heads_alone"] = r.to_json();
    }
    model.save(&a.out).with_context(|| format!("saving model to {}", a.out.display()))?;
    std::fs::write(a.out.join(crate::models::POLICY_FILE), policy.to_toml_string(&taxonomy))?;
    match &ngrams {
        Some((p, _)) => std::fs::write(a.out.join(crate::models::NGRAM_POLICY_FILE), p.to_toml_string(&taxonomy))?,
        // A retrain without the probe must not leave the previous one's files behind.
        None => {
            for f in [crate::models::NGRAM_POLICY_FILE, warden_fast::static_probe::STATIC_FILE] {
                let stale = a.out.join(f);
                if stale.exists() {
                    std::fs::remove_file(&stale)?;
                }
            }
        }
    }
    let card = model_card(&model, &policy, &dev_report, &by_source, &datasheet);
    std::fs::write(a.out.join("datasheet.md"), card)?;
    eprintln!("{}", dev_report.to_markdown());
    eprintln!("warden train: wrote {}", a.out.display());
    Ok(())
}

/// The distinct sources of `rows`, sorted, comma-separated (for "no such source" errors).
pub(crate) fn source_names(rows: &[Record]) -> String {
    let mut names: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// Name of `--static-probe`'s every-row mode.
const ALL_ROWS: &str = "all";

/// Fits the static-embedding probe on `source`'s train rows, or on every train row with
/// the heads' row weights `weights` (`all`), with word-piece weights from every train text,
/// and adds it to the model.
fn fit_static_probe(
    model: &mut warden_fast::FastModel,
    a: &TrainArgs,
    source: &str,
    train: &[Record],
    weights: &[f32],
    taxonomy: &Taxonomy,
) -> Result<()> {
    use warden_fast::static_probe::{piece_counts, StaticProbe, StaticProbeConfig, StaticTable};
    let enc = crate::cmd_train_encoder::encoder_dir(a.encoder.encoder.as_deref())?;
    let table = std::sync::Arc::new(
        StaticTable::load(&enc).with_context(|| format!("--static-probe: reading the embedding table of {}", enc.display()))?,
    );
    let all = source == ALL_ROWS;
    let rows: Vec<(&str, &[warden_core::Label])> = train
        .iter()
        .filter(|r| all || r.source == source)
        .map(|r| (r.text.as_str(), r.labels.as_slice()))
        .collect();
    if rows.is_empty() {
        bail!("--static-probe {source}: no train rows come from that source (sources: {}, or `all`)", source_names(train));
    }
    let texts: Vec<&str> = train.iter().map(|r| r.text.as_str()).collect();
    let counts = piece_counts(&table, &texts);
    let cfg = StaticProbeConfig {
        source: source.to_owned(),
        l2: a.static_probe_l2.unwrap_or(if all { 1.0 } else { 0.03 }),
        sif_a: a.static_probe_sif,
        weight: a.static_probe_weight,
    };
    eprintln!(
        "warden train: static-embedding probe on {} train rows of {source} ({} × {} table of {})",
        rows.len(),
        table.vocab_size(),
        table.dim(),
        enc.display()
    );
    let probe = StaticProbe::fit(table, &counts, &rows, all.then_some(weights), taxonomy.len(), &cfg);
    let skipped: Vec<&str> =
        taxonomy.codes().zip(&probe.info.fitted).filter(|(_, f)| !**f).map(|(c, _)| c).collect();
    if !skipped.is_empty() {
        eprintln!("warden train: the static probe has no fit for {} (one class only in {source})", skipped.join(", "));
    }
    model.set_static_probe(probe);
    Ok(())
}

/// Per category, the threshold with the best F1 on dev, where dev has enough positives for
/// that to mean something; 0.5 on the calibrated score otherwise.
pub(crate) fn tune_policy(taxonomy: &Taxonomy, dev: &[Record], dev_scores: &[Vec<f32>]) -> ThresholdPolicy {
    let mut thresholds = Vec::with_capacity(taxonomy.len());
    for c in 0..taxonomy.len() {
        let (s, l): (Vec<f32>, Vec<bool>) = dev
            .iter()
            .zip(dev_scores)
            .filter_map(|(r, s)| r.labels[c].hard().map(|h| (s[c], h)))
            .unzip();
        let positives = l.iter().filter(|&&b| b).count();
        let t = if positives >= MIN_POSITIVES_TO_TUNE { warden_eval::best_f1(&s, &l).map(|(_, t)| t) } else { None };
        thresholds.push(t.unwrap_or(0.5));
    }
    ThresholdPolicy::new(
        "default",
        &format!(
            "Per category, the threshold maximising F1 on the dev split (all sources pooled) when dev \
             has at least {MIN_POSITIVES_TO_TUNE} positives for it; otherwise 0.5 on the calibrated score."
        ),
        thresholds,
    )
}

/// The held-out decontamination list (`$WARDEN_DECONTAMINATION`, else the shared data's)
/// and its path, for rows that do not come through `warden data build`; `None`, after a
/// warning naming `what` goes unchecked, when there is no list.
pub(crate) fn heldout_list(who: &str, what: &str) -> Result<Option<(warden_data::Decontaminator, PathBuf)>> {
    let path = std::env::var_os("WARDEN_DECONTAMINATION")
        .map(PathBuf::from)
        .unwrap_or_else(|| warden_data::decontamination_list(&warden_data::default_data_root()));
    if !path.is_file() {
        eprintln!(
            "{who}: WARNING: no held-out decontamination list at {} (set WARDEN_DECONTAMINATION); {what} unchecked",
            path.display()
        );
        return Ok(None);
    }
    let list = warden_data::Decontaminator::load(&path).with_context(|| format!("loading {}", path.display()))?;
    Ok(Some((list, path)))
}

/// Drops rows of prepared train/dev files whose text is on the held-out list; returns the
/// list used and the counts dropped from train and dev.
fn decontaminate_prepared(train: &mut Vec<Record>, dev: &mut Vec<Record>) -> Result<(Option<String>, [usize; 2])> {
    let Some((list, path)) = heldout_list("warden train", "the prepared files are used")? else {
        return Ok((None, [0, 0]));
    };
    let mut dropped = [0usize; 2];
    for (rows, n) in [train, dev].into_iter().zip(dropped.iter_mut()) {
        let before = rows.len();
        rows.retain(|r| !list.contains_text(&r.text));
        *n = before - rows.len();
    }
    eprintln!(
        "warden train: dropped {} train and {} dev rows on the held-out decontamination list ({})",
        dropped[0],
        dropped[1],
        path.display()
    );
    Ok((Some(path.display().to_string()), dropped))
}

/// Train and dev rows, a JSON description of where they came from (hashes, sources,
/// licences, drop counts), and the data datasheet in Markdown.
pub(crate) fn load_training_data(
    a: &TrainArgs,
    taxonomy: &Taxonomy,
) -> Result<(Vec<Record>, Vec<Record>, serde_json::Value, String)> {
    let (mut train, mut dev, mut info, mut sheet) = load_training_data_as_is(a, taxonomy)?;
    if a.positive_only_as_unknown {
        let which = warden_data::positive_only_labels(&train);
        let cleared = warden_data::clear_labels(&mut train, &which) + warden_data::clear_labels(&mut dev, &which);
        let pairs: Vec<String> = which.iter().map(|(s, c)| format!("{s}:{}", taxonomy.categories()[*c].code)).collect();
        info["positive_only_as_unknown"] = json!({"pairs": pairs, "labels_cleared": cleared});
        sheet.push_str(&format!(
            "\nWith `--positive-only-as-unknown`: {cleared} labels of these positive-only source:category pairs were \
             treated as unknown: {}.\n",
            pairs.join(", ")
        ));
        eprintln!("warden train: --positive-only-as-unknown cleared {cleared} labels ({})", pairs.join(", "));
    }
    Ok((train, dev, info, sheet))
}

fn load_training_data_as_is(
    a: &TrainArgs,
    taxonomy: &Taxonomy,
) -> Result<(Vec<Record>, Vec<Record>, serde_json::Value, String)> {
    if let (Some(t), Some(d)) = (&a.train_file, &a.dev_file) {
        let d_args = &a.data;
        if d_args.exclude_research_only || !d_args.datasets.is_empty() || !d_args.exclude_datasets.is_empty() || d_args.data_root.is_some() || d_args.specs.is_some() {
            bail!(
                "--train-file/--dev-file train on those files as they are; --exclude-research-only, \
                 --datasets, --exclude-datasets, --data-root and --specs only apply when building data from the specs"
            );
        }
        let mut train = crate::cmd_eval::read_labelled(t, taxonomy)?;
        let mut dev = crate::cmd_eval::read_labelled(d, taxonomy)?;
        // Prepared files (a labeling-store export, say) may hold held-out evaluation texts:
        // drop them here too, at load time, as `warden data build` does.
        let (list, dropped) = decontaminate_prepared(&mut train, &mut dev)?;
        let sha = |p: &PathBuf| -> Result<String> {
            use sha2::Digest;
            Ok(hex::encode(sha2::Sha256::digest(std::fs::read(p)?)))
        };
        let info = json!({"train_file": t, "train_sha256": sha(t)?, "dev_file": d, "dev_sha256": sha(d)?,
                          "decontamination_list": list, "dropped_decontaminated": dropped});
        let sheet = format!(
            "Trained on prepared files `{}` and `{}`; {} train and {} dev rows matching the held-out list were dropped.\n",
            t.display(),
            d.display(),
            dropped[0],
            dropped[1]
        );
        return Ok((train, dev, info, sheet));
    }
    let built = build_data(&a.data, taxonomy)?;
    // Exactly the hashes of the files `warden data build` writes, so the manifest's data
    // hash can be checked against a rebuilt training set.
    let train_sha = warden_data::jsonl_sha256(&built.train, taxonomy);
    let dev_sha = warden_data::jsonl_sha256(&built.dev, taxonomy);
    let mut stats = built.stats.clone();
    stats.train_sha256 = Some(train_sha.clone());
    stats.dev_sha256 = Some(dev_sha.clone());
    let info = json!({
        "train_sha256": train_sha,
        "dev_sha256": dev_sha,
        "exclude_research_only": a.data.exclude_research_only,
        "dev_fraction": a.data.dev_fraction,
        "stats": stats,
    });
    let sheet = warden_data::datasheet_markdown(&stats, taxonomy);
    Ok((built.train, built.dev, info, sheet))
}

fn model_card(
    model: &warden_fast::FastModel,
    policy: &ThresholdPolicy,
    dev: &warden_eval::EvalReport,
    by_source: &BTreeMap<String, warden_eval::EvalReport>,
    datasheet: &str,
) -> String {
    use std::fmt::Write;
    let m = model.manifest();
    let t = model.taxonomy();
    let mut s = String::new();
    let _ = writeln!(s, "# Model card: {}\n", m.name);
    let _ = writeln!(
        s,
        "Fast tier (hashed word uni/bigrams and character {}–{}-grams, 2^{} buckets, one \
         independent logistic head per category, masked BCE, Platt calibration on dev). \
         Format version {}; taxonomy `{}` {}; normalizer `{}`.\n",
        m.features.char_min, m.features.char_max, m.features.bits, m.format_version, t.name(), t.version(), m.normalizer
    );
    if let Some(p) = &m.static_probe {
        let fitted: Vec<&str> = t.codes().zip(&p.fitted).filter(|(_, f)| **f).map(|(c, _)| c).collect();
        let _ = writeln!(
            s,
            "Static-embedding probe: a ridge logistic regression (L2 {}) per category on the normalised, \
             frequency-weighted (a = {}) sum of {}'s input embeddings of a text's word pieces, fitted on {} train rows \
             of `{}` ({}); score = {:.2}·heads + {:.2}·probe. The table is `{}` of the encoder's model.safetensors \
             (SHA-256 `{}`), read at load time; without it the n-gram heads score alone, with `policy-ngrams.toml`.\n",
            p.l2, p.sif_a, p.encoder, p.rows, p.source, fitted.join(", "), 1.0 - p.weight, p.weight, p.tensor, p.encoder_sha256
        );
    }
    let _ = writeln!(s, "Command: `{}`  \nRevision: `{}`\n", m.training["command"].as_str().unwrap_or("?"),
        m.training["git_revision"].as_str().unwrap_or("?"));
    s.push_str(&card_body(t, policy, dev, by_source, datasheet));
    s
}

/// The part of a model card every tier shares: policy, dev metrics, per-source AUPRC, data.
pub(crate) fn card_body(
    t: &Taxonomy,
    policy: &ThresholdPolicy,
    dev: &warden_eval::EvalReport,
    by_source: &BTreeMap<String, warden_eval::EvalReport>,
    datasheet: &str,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "## Policy `{}`\n\n{}\n\n| category | threshold |\n|---|---|", policy.name, policy.description);
    for (c, th) in t.categories().iter().zip(policy.thresholds()) {
        let _ = writeln!(s, "| {} ({}) | {:.4} |", c.code, c.name, th);
    }
    let _ = writeln!(s, "\n## Dev metrics (all sources)\n\nDev rows are a hash split of the same sources as training: \
        they measure fit to these sources, not performance on new domains.\n\n{}", dev.to_markdown());
    let _ = writeln!(s, "\n## Dev AUPRC per source\n");
    let _ = write!(s, "| source | rows |");
    for c in t.codes() {
        let _ = write!(s, " {c} |");
    }
    let _ = write!(s, " any |\n|---|---|");
    for _ in 0..=t.len() {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s);
    for (src, r) in by_source {
        let _ = write!(s, "| {src} | {} |", r.rows);
        for c in t.codes() {
            let cell = r.get(c).and_then(|x| x.auprc).map_or("–".into(), |v| format!("{v:.3}"));
            let _ = write!(s, " {cell} |");
        }
        let _ = writeln!(s, " {} |", r.any.auprc.map_or("–".into(), |v| format!("{v:.3}")));
    }
    let _ = writeln!(s, "\n## Training data\n\n{datasheet}");
    s
}
