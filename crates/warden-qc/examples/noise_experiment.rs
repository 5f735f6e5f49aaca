//! The injected-flip experiment on real data (see `docs/label-quality.md`).
//!
//! ```text
//! cargo run --release -p warden-qc --example noise_experiment -- \
//!     [--datasets openai-moderation] [--split all|train|dev] [--fractions 0.05,0.1] \
//!     [--seeds 1,2] [--bits 20] [--strict 0.2,0.8] [--out /tmp/warden-qc-noise.json]
//! ```
//!
//! Builds the unified data in memory with `warden_data::build` (the same code as
//! `warden data build`: decontamination, dedup, hash split), keeps the chosen datasets and
//! split, then for each flip fraction and seed flips that fraction of each category's
//! known labels, runs the two-fold hunt and confident learning on the same out-of-fold
//! predictions, prints one markdown table per run plus a mean over seeds, and writes every
//! report as JSON.

use std::collections::BTreeMap;
use std::error::Error;

use warden_core::{Record, Taxonomy};
use warden_data::BuildOptions;
use warden_qc::{
    run_noise_experiment, FlagThresholds, HuntConfig, NoiseExperimentConfig, NoiseExperimentReport,
};

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|_| format!("cannot parse {x:?}"))
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut datasets = vec!["openai-moderation".to_string()];
    let mut split = "all".to_string();
    let mut fractions = vec![0.05, 0.10];
    let mut seeds = vec![1u64, 2];
    let mut bits = 20u32;
    let mut strict = Some(FlagThresholds {
        low: 0.2,
        high: 0.8,
    });
    let mut out = std::path::PathBuf::from("/tmp/warden-qc-noise.json");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?;
        match args[i].as_str() {
            "--datasets" => datasets = list(v)?,
            "--split" => split = v.clone(),
            "--fractions" => fractions = list(v)?,
            "--seeds" => seeds = list(v)?,
            "--bits" => bits = v.parse()?,
            "--strict" => {
                let t: Vec<f32> = list(v)?;
                strict = (t.len() == 2).then(|| FlagThresholds {
                    low: t[0],
                    high: t[1],
                });
            }
            "--out" => out = v.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
        i += 2;
    }

    let taxonomy = Taxonomy::builtin();
    let opts = BuildOptions {
        datasets: Some(datasets.clone()),
        ..BuildOptions::default()
    };
    let built = warden_data::build(&opts, &taxonomy)?;
    let rows: Vec<Record> = match split.as_str() {
        "train" => built.train,
        "dev" => built.dev,
        "all" => built.train.into_iter().chain(built.dev).collect(),
        other => return Err(format!("--split must be all, train or dev, not {other}").into()),
    };
    eprintln!("{} rows from {} ({split})", rows.len(), datasets.join(", "));
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let labels: Vec<Vec<warden_core::Label>> = rows.iter().map(|r| r.labels.clone()).collect();

    let mut reports: Vec<NoiseExperimentReport> = Vec::new();
    for &fraction in &fractions {
        for &seed in &seeds {
            let mut hunt = HuntConfig {
                seed,
                ..HuntConfig::default()
            };
            hunt.train.features.bits = bits;
            let cfg = NoiseExperimentConfig {
                flip_fraction: fraction,
                flip_seed: seed,
                hunt,
                strict_thresholds: strict,
            };
            let r = run_noise_experiment(&taxonomy, &texts, &labels, &cfg)?;
            println!(
                "### flip fraction {fraction}, seed {seed}\n\n{}",
                r.to_markdown()
            );
            eprintln!("  trained two fold models in {:.1}s", r.train_seconds);
            reports.push(r);
        }
    }

    // Mean over seeds of precision / recall / F1 per (fraction, category, method).
    println!("### Mean over seeds {seeds:?}\n");
    println!("| fraction | cat | flips | flip AUPRC | method | flags | precision | recall | F1 |");
    println!("| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    let mean = |v: Vec<Option<f64>>| {
        let xs: Vec<f64> = v.into_iter().flatten().collect();
        if xs.is_empty() {
            "–".to_string()
        } else {
            format!("{:.3}", xs.iter().sum::<f64>() / xs.len() as f64)
        }
    };
    for &fraction in &fractions {
        let runs: Vec<&NoiseExperimentReport> = reports
            .iter()
            .filter(|r| r.flip_fraction == fraction)
            .collect();
        let n_cat = runs[0].categories.len();
        for c in 0..=n_cat {
            let n_methods = runs[0].overall.len();
            for m in 0..n_methods {
                let pick = |r: &NoiseExperimentReport| {
                    if c < n_cat {
                        r.categories[c].methods[m].clone()
                    } else {
                        r.overall[m].clone()
                    }
                };
                let scores: Vec<_> = runs.iter().map(|r| pick(r)).collect();
                let (code, auprc) = if c < n_cat {
                    (
                        runs[0].categories[c].code.clone(),
                        mean(
                            runs.iter()
                                .map(|r| r.categories[c].auprc_flip_ranking)
                                .collect(),
                        ),
                    )
                } else {
                    ("**all**".to_string(), String::new())
                };
                let flags =
                    scores.iter().map(|s| s.flags as f64).sum::<f64>() / scores.len() as f64;
                let flips =
                    scores.iter().map(|s| s.flips as f64).sum::<f64>() / scores.len() as f64;
                println!(
                    "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
                    if m == 0 {
                        fraction.to_string()
                    } else {
                        String::new()
                    },
                    if m == 0 { code } else { String::new() },
                    if m == 0 {
                        format!("{flips:.1}")
                    } else {
                        String::new()
                    },
                    if m == 0 { auprc } else { String::new() },
                    scores[0].method,
                    flags,
                    mean(scores.iter().map(|s| s.precision).collect()),
                    mean(scores.iter().map(|s| s.recall).collect()),
                    mean(scores.iter().map(|s| s.f1).collect()),
                );
            }
        }
    }

    let mut json = BTreeMap::new();
    json.insert("datasets", serde_json::to_value(&datasets)?);
    json.insert("split", serde_json::to_value(&split)?);
    json.insert("rows", serde_json::to_value(rows.len())?);
    json.insert("bits", serde_json::to_value(bits)?);
    json.insert("runs", serde_json::to_value(&reports)?);
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
