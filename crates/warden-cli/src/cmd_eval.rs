use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use warden_core::{Classifier, Record, Taxonomy};

use crate::models;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Md,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled JSONL: `{"text": ..., "labels": {"S": 0|1, ...}}` per line; label keys are
    /// codes or names, a missing key means unknown.
    #[arg(long)]
    pub data: PathBuf,
    /// Model directory (default: $WARDEN_MODEL, else the embedded default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Policy TOML whose thresholds give precision/recall/F1/FPR (default: the model's).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Write precision–recall curves (SVG, one per category plus `any`) into this directory.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Also report each `source` field's rows separately.
    #[arg(long)]
    pub by_source: bool,
}

/// Reads labelled JSONL; any bad line is an error naming the line (an evaluation that
/// silently skipped rows would report numbers for a different set).
pub fn read_labelled(path: &Path, taxonomy: &Taxonomy) -> Result<Vec<Record>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: invalid JSON", path.display(), i + 1))?;
        let r = Record::from_json(v, taxonomy)
            .with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        out.push(r);
    }
    if out.is_empty() {
        bail!("{} has no rows", path.display());
    }
    Ok(out)
}

/// Scores records in chunks with a progress bar.
pub fn score_records(model: &dyn Classifier, records: &[Record]) -> Result<Vec<Vec<f32>>> {
    let pb = crate::progress::bar(records.len() as u64, "scoring", false);
    let mut scores = Vec::with_capacity(records.len());
    for chunk in records.chunks(4096) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        scores.extend(model.predict_batch(&texts)?);
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(scores)
}

pub fn run(a: EvalArgs) -> Result<()> {
    let loaded = models::load(a.model.as_deref(), a.policy.as_deref())?;
    let taxonomy = loaded.model.taxonomy().clone();
    let records = read_labelled(&a.data, &taxonomy)?;
    let scores = score_records(&*loaded.model, &records)?;
    let thresholds = loaded.policy.thresholds();
    let name = format!("{} ({})", loaded.model.name(), loaded.origin);
    let report = warden_eval::evaluate_records(&taxonomy, &records, &scores, thresholds, &name)?;
    let labels: Vec<_> = records.iter().map(|r| r.labels.as_slice()).collect();
    let by_source = if a.by_source {
        let groups: Vec<&str> = records.iter().map(|r| r.source.as_str()).collect();
        Some(warden_eval::try_evaluate_by_group(&taxonomy, &labels, &scores, thresholds, &groups, &name)?)
    } else {
        None
    };
    if let Some(dir) = &a.plots {
        let files = warden_eval::write_pr_curves_svg(&taxonomy, &labels, &scores, thresholds, &name, dir)
            .with_context(|| format!("writing plots to {}", dir.display()))?;
        eprintln!("warden eval: wrote {} plots to {}", files.len(), dir.display());
    }
    match a.format {
        Format::Json => println!("{}", report.with_sources(by_source.unwrap_or_default()).to_json_pretty()),
        Format::Md => {
            println!("{}", report.to_markdown());
            for (k, r) in by_source.iter().flatten() {
                println!("\n### source: {k}\n\n{}", r.to_markdown());
            }
        }
    }
    Ok(())
}
