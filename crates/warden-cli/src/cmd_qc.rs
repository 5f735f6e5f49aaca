//! `warden qc`: label quality control over the labeling store (paper section 3.2) —
//! the per-category audit sample, the agreement and annotator-F1 report, and the
//! cross-validation mislabel hunt with its relabel rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use warden_core::{Label, Taxonomy};
use warden_qc::{AuditItem, AuditSampleConfig, HuntConfig, Vote};
use warden_store::{BatchItem, BatchKind, LabelRow, LabelStore, LabelValue, SqliteStore};

use crate::cmd_label::{open, user_ids, DbArg, Votes};

#[derive(Subcommand)]
pub enum QcCommand {
    /// Create an audit batch: per category, 10 samples the annotators labelled undesired
    /// plus 10 the model scores above 0.5, for auditors to label (their labels are the
    /// ground truth of `warden qc report`).
    AuditSample(AuditSampleArgs),
    /// Agreement (Krippendorff's alpha per category) and annotator precision/recall/F1 per
    /// category and per annotator against the auditors.
    Report(ReportArgs),
    /// The cross-validation mislabel hunt: train on each half of the labelled samples,
    /// score the other half, flag disagreements, and put a random portion of the flags in an
    /// audit batch.
    Hunt(HuntArgs),
    /// After the hunt's audit: when more than 30% of the audited flags were mislabelled,
    /// send every flagged sample back for relabeling.
    Decide(DecideArgs),
}

#[derive(Args)]
pub struct AuditSampleArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Name of the audit batch to create.
    #[arg(long)]
    pub batch: String,
    /// Model that scores the labelled samples (default: the embedded default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Auditors (or admins) to assign the batch to, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub auditors: Vec<String>,
    #[arg(long, default_value_t = 10)]
    pub labelled_positive: usize,
    #[arg(long, default_value_t = 10)]
    pub model_positive: usize,
    #[arg(long, default_value_t = 32)]
    pub seed: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Md,
    Json,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
}

#[derive(Args)]
pub struct HuntArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Name of the audit batch of sampled flags.
    #[arg(long)]
    pub batch: String,
    #[arg(long, value_delimiter = ',')]
    pub auditors: Vec<String>,
    /// Fraction of each category's flags to audit (at least --audit-min of them).
    #[arg(long, default_value_t = 0.1)]
    pub audit_fraction: f64,
    #[arg(long, default_value_t = 20)]
    pub audit_min: usize,
    /// A positive label is flagged when the out-of-fold score is below this...
    #[arg(long, default_value_t = 0.5)]
    pub low: f32,
    /// ... and a negative one when it is above this.
    #[arg(long, default_value_t = 0.5)]
    pub high: f32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
}

#[derive(Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// The hunt's audit batch.
    #[arg(long)]
    pub hunt_batch: String,
    /// Relabel every flag when the mislabelled fraction of audited flags is above this.
    #[arg(long, default_value_t = 0.30)]
    pub threshold: f64,
    /// Create this relabel batch for the samples sent back.
    #[arg(long)]
    pub relabel_batch: Option<String>,
    /// Annotators for the relabel batch, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub annotators: Vec<String>,
    #[arg(long, default_value_t = 1)]
    pub per_sample: usize,
}

pub fn run(c: QcCommand) -> Result<()> {
    match c {
        QcCommand::AuditSample(a) => audit_sample(a),
        QcCommand::Report(a) => report(a),
        QcCommand::Hunt(a) => hunt(a),
        QcCommand::Decide(a) => decide(a),
    }
}

/// The labelled samples with their consensus (majority of decided annotators; a tie or
/// only-unsure is `None`) per category, in sample-id order.
struct Labelled {
    ids: Vec<i64>,
    texts: Vec<String>,
    consensus: Vec<Vec<Option<bool>>>,
}

fn labelled(store: &SqliteStore, taxonomy: &Taxonomy) -> Result<Labelled> {
    let labels = store.labels()?;
    let tallied = crate::cmd_label::tally(&labels, &[]);
    let mut out = Labelled { ids: Vec::new(), texts: Vec::new(), consensus: Vec::new() };
    for (&id, cats) in &tallied {
        let mut row = vec![None; taxonomy.len()];
        for (code, (v, _)) in cats {
            if let Some(i) = taxonomy.index_of(code) {
                row[i] = v.majority();
            }
        }
        if row.iter().all(Option::is_none) {
            continue;
        }
        out.ids.push(id);
        out.texts.push(store.sample(id)?.text);
        out.consensus.push(row);
    }
    Ok(out)
}

fn audit_sample(a: AuditSampleArgs) -> Result<()> {
    let mut store = open(&a.db.db)?;
    let loaded = crate::models::load(a.model.as_deref(), None)?;
    let taxonomy = loaded.model.taxonomy().clone();
    let l = labelled(&store, &taxonomy)?;
    if l.ids.is_empty() {
        bail!("no labelled samples in {} yet", a.db.db.display());
    }
    let pb = crate::progress::bar(l.ids.len() as u64, "scoring", false);
    let mut scores = Vec::with_capacity(l.ids.len());
    for chunk in l.texts.chunks(1024) {
        let t: Vec<&str> = chunk.iter().map(String::as_str).collect();
        scores.extend(loaded.model.predict_batch(&t).context("scoring the labelled samples")?);
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    crate::cmd_label::store_model_scores(&mut store, (loaded.model.name(), &loaded.origin), &taxonomy, &l.ids, &scores)?;
    let codes: Vec<String> = taxonomy.codes().map(str::to_owned).collect();

    let cfg = AuditSampleConfig {
        labelled_positive: a.labelled_positive,
        model_positive: a.model_positive,
        model_threshold: 0.5,
        seed: a.seed,
    };
    let mut items: Vec<BatchItem> = Vec::new();
    let mut per_cat = serde_json::Map::new();
    for (c, code) in codes.iter().enumerate() {
        let labels: Vec<Option<bool>> = l.consensus.iter().map(|r| r[c]).collect();
        let sc: Vec<Option<f32>> = scores.iter().map(|s| Some(s[c])).collect();
        let s = warden_qc::audit_sample(&labels, &sc, c, &cfg)?;
        for (&r, pipeline) in s
            .labelled_positive
            .iter()
            .map(|r| (r, "audit_labelled_positive"))
            .chain(s.model_positive.iter().map(|r| (r, "audit_model_above_0.5")))
        {
            items.push(BatchItem {
                sample_id: l.ids[r],
                pipeline: Some(pipeline.into()),
                category: Some(code.clone()),
                score: Some(scores[r][c] as f64),
                weight: None,
            });
        }
        per_cat.insert(
            code.clone(),
            json!({
                "labelled_positive": s.labelled_positive.iter().map(|&r| l.ids[r]).collect::<Vec<_>>(),
                "model_positive": s.model_positive.iter().map(|&r| l.ids[r]).collect::<Vec<_>>(),
            }),
        );
    }
    if items.is_empty() {
        bail!("nothing to audit: no sample is labelled undesired or scored above 0.5");
    }
    let config = json!({"purpose": "audit_sample", "model": loaded.origin, "seed": a.seed, "categories": per_cat});
    let batch = store.create_batch(&a.batch, BatchKind::Audit, &items, &config)?;
    store.record_qc_event("audit_sample", &json!({"batch": a.batch, "categories": per_cat}))?;
    let distinct: BTreeSet<i64> = items.iter().map(|i| i.sample_id).collect();
    eprintln!("warden qc audit-sample: batch {} with {} samples ({} category picks)", a.batch, distinct.len(), items.len());
    if !a.auditors.is_empty() {
        let ids = user_ids(&store, &a.auditors)?;
        let n = store.assign(batch, &ids, 1)?;
        eprintln!("warden qc audit-sample: {n} assignments to {}", a.auditors.join(", "));
    }
    Ok(())
}

fn vote(v: LabelValue) -> Vote {
    match v {
        LabelValue::Positive => Vote::Positive,
        LabelValue::Negative => Vote::Negative,
        LabelValue::Unsure => Vote::Unsure,
    }
}

/// The auditors' verdict per (sample, category): their majority; ties and unsure are left
/// out. Only audits in the given batches count.
fn audit_truth(audits: &[LabelRow], batches: &BTreeSet<String>) -> BTreeMap<(i64, String), bool> {
    let mut votes: BTreeMap<(i64, String), Votes> = BTreeMap::new();
    for a in audits.iter().filter(|a| batches.contains(&a.batch)) {
        votes.entry((a.sample_id, a.category.clone())).or_default().add(a.value);
    }
    votes.into_iter().filter_map(|(k, v)| v.majority().map(|m| (k, m))).collect()
}

fn report(a: ReportArgs) -> Result<()> {
    let taxonomy = crate::load_taxonomy(a.taxonomy.as_deref())?;
    let mut store = open(&a.db.db)?;
    let labels = store.labels()?;
    let annotations: Vec<warden_qc::Annotation<i64, String>> = labels
        .iter()
        .filter_map(|l| {
            taxonomy.index_of(&l.category).map(|c| warden_qc::Annotation {
                item: l.sample_id,
                annotator: l.user.clone(),
                category: c,
                vote: vote(l.value),
            })
        })
        .collect();
    let agreement = warden_qc::agreement_per_category(&annotations, taxonomy.len());

    // Audit F1 on the audit-sample batches only (hunt audits are biased towards errors).
    let audit_batches: BTreeSet<String> = store
        .qc_events(Some("audit_sample"))?
        .into_iter()
        .filter_map(|(_, _, _, d)| d["batch"].as_str().map(str::to_owned))
        .collect();
    let truth = audit_truth(&store.audits()?, &audit_batches);
    let l = labelled(&store, &taxonomy)?;
    let consensus: BTreeMap<i64, &Vec<Option<bool>>> = l.ids.iter().copied().zip(&l.consensus).collect();
    let mut per_cat = Vec::new();
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        let items: Vec<AuditItem<String>> = truth
            .iter()
            .filter(|((_, code), _)| *code == cat.code)
            .map(|((sample, _), &auditor)| AuditItem {
                auditor,
                label: consensus.get(sample).and_then(|r| r[c]),
                annotators: labels
                    .iter()
                    .filter(|x| x.sample_id == *sample && x.category == cat.code)
                    .filter_map(|x| match x.value {
                        LabelValue::Positive => Some((x.user.clone(), true)),
                        LabelValue::Negative => Some((x.user.clone(), false)),
                        LabelValue::Unsure => None,
                    })
                    .collect(),
            })
            .collect();
        per_cat.push((items.len(), warden_qc::audit_f1(&items)));
    }

    let json_out = json!({
        "labels": labels.len(),
        "labelled_samples": l.ids.len(),
        "audit_batches": audit_batches,
        "categories": taxonomy.categories().iter().enumerate().map(|(c, cat)| {
            let ag = &agreement[c];
            let (n, f1) = &per_cat[c];
            (cat.code.clone(), json!({
                "items": ag.items,
                "votes": {"pos": ag.positive_votes, "neg": ag.negative_votes, "unsure": ag.unsure_votes},
                "krippendorff_alpha": ag.alpha.alpha,
                "pairable_units": ag.alpha.pairable_units,
                "audited": n,
                "annotators_vs_audit": f1.overall,
                "per_annotator": f1.per_annotator,
            }))
        }).collect::<serde_json::Map<_, _>>(),
    });
    store.record_qc_event("audit_report", &json_out)?;
    if a.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json_out)?);
        return Ok(());
    }
    let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.3}"));
    println!("# Label quality: {} labels on {} samples\n", labels.len(), l.ids.len());
    println!("| category | items | pos / neg / unsure votes | Krippendorff's α | audited | precision | recall | F1 |");
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        let ag = &agreement[c];
        let (n, f1) = &per_cat[c];
        println!(
            "| {} | {} | {} / {} / {} | {} | {} | {} | {} | {} |",
            cat.code,
            ag.items,
            ag.positive_votes,
            ag.negative_votes,
            ag.unsure_votes,
            f(ag.alpha.alpha),
            n,
            f(f1.overall.precision),
            f(f1.overall.recall),
            f(f1.overall.f1)
        );
    }
    println!("\n## Per annotator (against the auditors)\n");
    println!("| category | annotator | judged | precision | recall | F1 |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        for (who, m) in &per_cat[c].1.per_annotator {
            println!(
                "| {} | {who} | {} | {} | {} | {} |",
                cat.code,
                m.tp + m.fp + m.tn + m.fn_,
                f(m.precision),
                f(m.recall),
                f(m.f1)
            );
        }
    }
    if audit_batches.is_empty() {
        println!("\nNo audit sample yet: create one with `warden qc audit-sample`.");
    }
    Ok(())
}

fn hunt(a: HuntArgs) -> Result<()> {
    let taxonomy = crate::load_taxonomy(a.taxonomy.as_deref())?;
    let mut store = open(&a.db.db)?;
    let l = labelled(&store, &taxonomy)?;
    if l.ids.len() < 4 {
        bail!("{} labelled samples are too few for a two-fold hunt", l.ids.len());
    }
    let label_rows: Vec<Vec<Label>> = l
        .consensus
        .iter()
        .map(|r| r.iter().map(|v| v.map_or(Label::Unknown, |b| if b { Label::Positive } else { Label::Negative })).collect())
        .collect();
    let examples: Vec<warden_fast::TrainExample<'_>> = l
        .texts
        .iter()
        .zip(&label_rows)
        .map(|(t, lab)| warden_fast::TrainExample { text: t, labels: lab, weight: 1.0, calibration_weight: 1.0 })
        .collect();
    let cfg = HuntConfig {
        seed: a.seed,
        thresholds: warden_qc::FlagThresholds { low: a.low, high: a.high },
        audit_fraction: a.audit_fraction,
        audit_min: a.audit_min,
        ..HuntConfig::default()
    };
    let sp = crate::progress::spinner("training one model per half");
    let oof = warden_qc::out_of_fold_scores(&taxonomy, &examples, &cfg)?;
    sp.finish_and_clear();
    let mut items = Vec::new();
    let mut flags = serde_json::Map::new();
    let mut audited = serde_json::Map::new();
    let mut consensus = serde_json::Map::new();
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        let labels: Vec<Option<bool>> = l.consensus.iter().map(|r| r[c]).collect();
        let scores: Vec<f32> = oof.scores.iter().map(|s| s[c]).collect();
        let flagged = warden_qc::flag_disagreements(&labels, &scores, cfg.thresholds)?;
        let n = warden_qc::audit_size(flagged.len(), cfg.audit_fraction, cfg.audit_min);
        let picked = warden_qc::sample_flags_for_audit(&flagged, n, cfg.seed, c as u64);
        for &r in &picked {
            items.push(BatchItem {
                sample_id: l.ids[r],
                pipeline: Some("hunt_flag".into()),
                category: Some(cat.code.clone()),
                score: Some(scores[r] as f64),
                weight: None,
            });
        }
        flags.insert(cat.code.clone(), json!(flagged.iter().map(|&r| l.ids[r]).collect::<Vec<_>>()));
        audited.insert(cat.code.clone(), json!(picked.iter().map(|&r| l.ids[r]).collect::<Vec<_>>()));
        consensus.insert(
            cat.code.clone(),
            flagged.iter().map(|&r| (l.ids[r].to_string(), json!(labels[r]))).collect::<serde_json::Map<_, _>>().into(),
        );
        let mean = |want: bool| {
            let v: Vec<f32> = labels.iter().zip(&scores).filter(|(l, _)| **l == Some(want)).map(|(_, s)| *s).collect();
            if v.is_empty() { "–".to_string() } else { format!("{:.2}", v.iter().sum::<f32>() / v.len() as f32) }
        };
        eprintln!(
            "  {:<3} {:>6} labelled, mean out-of-fold score {} on positives and {} on negatives, {:>5} flagged, {:>4} to audit",
            cat.code,
            labels.iter().flatten().count(),
            mean(true),
            mean(false),
            flagged.len(),
            picked.len()
        );
    }
    if items.is_empty() {
        eprintln!("warden qc hunt: no disagreements flagged; nothing to audit");
        store.record_qc_event("mislabel_hunt", &json!({"batch": null, "flags": flags}))?;
        return Ok(());
    }
    let config = json!({"purpose": "mislabel_hunt", "seed": a.seed, "thresholds": [a.low, a.high]});
    let batch = store.create_batch(&a.batch, BatchKind::Audit, &items, &config)?;
    store.record_qc_event(
        "mislabel_hunt",
        &json!({"batch": a.batch, "flags": flags, "audit": audited, "consensus_of_flags": consensus,
                "labelled": l.ids.len(), "config": config}),
    )?;
    eprintln!("warden qc hunt: audit batch {} with {} category picks", a.batch, items.len());
    if !a.auditors.is_empty() {
        let ids = user_ids(&store, &a.auditors)?;
        store.assign(batch, &ids, 1)?;
    }
    Ok(())
}

fn decide(a: DecideArgs) -> Result<()> {
    let mut store = open(&a.db.db)?;
    let event = store
        .qc_events(Some("mislabel_hunt"))?
        .into_iter()
        .rev()
        .find(|(_, _, _, d)| d["batch"].as_str() == Some(a.hunt_batch.as_str()))
        .with_context(|| format!("no mislabel hunt wrote audit batch {}", a.hunt_batch))?;
    let detail = event.3;
    let truth = audit_truth(&store.audits()?, &BTreeSet::from([a.hunt_batch.clone()]));
    let mut relabel: BTreeSet<i64> = BTreeSet::new();
    let mut corrections = Vec::new();
    let mut out = serde_json::Map::new();
    let empty = serde_json::Map::new();
    for (code, flagged) in detail["flags"].as_object().unwrap_or(&empty) {
        let flagged: Vec<usize> = flagged.as_array().into_iter().flatten().filter_map(Value::as_u64).map(|x| x as usize).collect();
        let cons = &detail["consensus_of_flags"][code];
        let audit: Vec<(usize, bool)> = detail["audit"][code]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .filter_map(|s| {
                let verdict = truth.get(&(s as i64, code.clone()))?;
                let label = cons[s.to_string()].as_bool()?;
                Some((s as usize, *verdict != label))
            })
            .collect();
        let d = warden_qc::relabel_decision(&flagged, &audit, a.threshold)?;
        eprintln!(
            "  {:<3} {:>5} flagged, {:>3} audited, {:>3} mislabelled ({}) → {}",
            code,
            d.flagged,
            d.audited,
            d.mislabelled,
            d.mislabelled_rate.map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
            if d.relabel_all { "relabel all flags" } else { "keep" }
        );
        relabel.extend(d.relabel.iter().map(|&r| r as i64));
        corrections.extend(d.corrections.iter().map(|&r| (r as i64, code.clone())));
        out.insert(code.clone(), serde_json::to_value(&d)?);
    }
    let audited_any = out.values().any(|d| d["audited"].as_u64().unwrap_or(0) > 0);
    if !audited_any {
        bail!("no audited flags in {} yet: the auditors have not labelled it", a.hunt_batch);
    }
    let mut record = json!({"hunt_batch": a.hunt_batch, "threshold": a.threshold, "categories": out,
                            "relabel": relabel, "corrections": corrections});
    if let (Some(name), false) = (&a.relabel_batch, relabel.is_empty()) {
        let items: Vec<BatchItem> =
            relabel.iter().map(|&s| BatchItem { sample_id: s, pipeline: Some("hunt_relabel".into()), ..Default::default() }).collect();
        let b = store.create_batch(name, BatchKind::Relabel, &items, &json!({"purpose": "relabel", "hunt_batch": a.hunt_batch}))?;
        record["relabel_batch"] = json!(name);
        if !a.annotators.is_empty() {
            let ids = user_ids(&store, &a.annotators)?;
            store.assign(b, &ids, a.per_sample)?;
        }
        eprintln!("warden qc decide: relabel batch {name} with {} samples", items.len());
    } else if !relabel.is_empty() {
        eprintln!("warden qc decide: {} samples should be relabelled; pass --relabel-batch NAME to queue them", relabel.len());
    } else {
        eprintln!("warden qc decide: no category crossed the threshold; audited corrections apply through the audits at export");
    }
    store.record_qc_event("relabel_decision", &record)?;
    Ok(())
}
