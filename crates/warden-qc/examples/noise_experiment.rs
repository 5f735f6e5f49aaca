//! The injected-flip experiment on real data (see `docs/label-quality.md`).
//!
//! ```text
//! cargo run --release -p warden-qc --example noise_experiment -- \
//!     [--datasets openai-moderation] [--split all|train|dev] [--fractions 0.05,0.1] \
//!     [--seeds 1,2] [--bits 20] [--strict 0.2,0.8] [--out /tmp/warden-qc-noise.json] \
//!     [--clean-oof-auprc]
//! ```
//!
//! Builds the unified data in memory with `warden_data::build` (the same code as
//! `warden data build`: decontamination, dedup, hash split), keeps the chosen datasets and
//! split, then for each flip fraction and seed flips that fraction of each category's
//! known labels, runs the two-fold hunt and confident learning on the same out-of-fold
//! predictions, prints one markdown table per run, then a summary over seeds (the tables of
//! `docs/label-quality.md`: the mean table per fraction × category × method with the micro
//! "all" rows, the 30% relabel rule's firing counts, flips to positive, flags per flip and
//! calibration resets), and writes every report as JSON.
//!
//! `--clean-oof-auprc` also trains the two-fold hunt on the *clean* labels once per seed and
//! prints each category's out-of-fold AUPRC against its own labels (how much signal the
//! model has), next to the category's prevalence among known labels.

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
    let mut clean_oof_auprc = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--clean-oof-auprc" {
            clean_oof_auprc = true;
            i += 1;
            continue;
        }
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

    print_summary(&fractions, &seeds, &reports);
    if clean_oof_auprc {
        print_clean_oof_auprc(&taxonomy, &texts, &labels, &seeds, bits)?;
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

/// Mean of `xs`, or 0 when empty.
fn avg(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in xs {
        sum += x;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The other summaries the doc quotes: per fraction, the 30% relabel rule on the default
/// hunt's flags (how many category × seed runs it fires in, and where it stays silent),
/// flips to positive, flags per injected flip, and calibration resets.
fn print_summary(fractions: &[f64], seeds: &[u64], reports: &[NoiseExperimentReport]) {
    let Some(first) = reports.first() else {
        return;
    };
    println!("\n### Categories (clean labels)\n");
    println!("| cat | known | positives | prevalence |");
    println!("| --- | ---: | ---: | ---: |");
    for c in &first.categories {
        println!(
            "| {} | {} | {} | {:.3} |",
            c.code,
            c.known,
            c.positives,
            c.positives as f64 / c.known.max(1) as f64
        );
    }

    println!("\n### 30% relabel rule on the default hunt's flags, seeds {seeds:?}\n");
    println!("Injected flips play the auditor. `fired` counts the seeds where more than 30% of the audited flags were flips.\n");
    println!("| fraction | cat | flips (mean) | → positive (mean) | flagged (mean) | audited (mean) | flips among audited (mean) | fired |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut firing = Vec::new();
    for &fraction in fractions {
        let runs: Vec<&NoiseExperimentReport> = reports
            .iter()
            .filter(|r| r.flip_fraction == fraction)
            .collect();
        let n_cat = runs[0].categories.len();
        let (mut fired_total, mut silent) = (0usize, Vec::new());
        for c in 0..n_cat {
            let cats: Vec<_> = runs.iter().map(|r| &r.categories[c]).collect();
            let fired = cats.iter().filter(|x| x.relabel_rule.relabel_all).count();
            fired_total += fired;
            if fired < cats.len() {
                silent.push(format!(
                    "{} ({} of {})",
                    cats[0].code,
                    cats.len() - fired,
                    cats.len()
                ));
            }
            println!(
                "| {fraction} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {fired} of {} |",
                cats[0].code,
                avg(cats.iter().map(|x| x.flips as f64)),
                avg(cats.iter().map(|x| x.flips_to_positive as f64)),
                avg(cats.iter().map(|x| x.relabel_rule.flagged as f64)),
                avg(cats.iter().map(|x| x.relabel_rule.audited as f64)),
                avg(cats.iter().map(|x| x.relabel_rule.mislabelled as f64)),
                cats.len()
            );
        }
        println!(
            "| {fraction} | **all** | | | | | | {fired_total} of {} |",
            n_cat * runs.len()
        );
        firing.push(format!(
            "Fraction {fraction}: the rule fires in {fired_total} of {} category-runs; silent in {}.",
            n_cat * runs.len(),
            if silent.is_empty() {
                "none".to_string()
            } else {
                silent.join(", ")
            }
        ));
    }
    println!("\n{}\n", firing.join("\n"));

    println!("### Flags per injected flip (micro, mean over seeds) and calibration resets\n");
    let methods: Vec<String> = first.overall.iter().map(|m| m.method.clone()).collect();
    println!(
        "| fraction | {} | fold calibrations reset (total over seeds) |",
        methods.join(" | ")
    );
    println!("| ---: |{} ---: |", " ---: |".repeat(methods.len()));
    for &fraction in fractions {
        let runs: Vec<&NoiseExperimentReport> = reports
            .iter()
            .filter(|r| r.flip_fraction == fraction)
            .collect();
        let ratios: Vec<String> = (0..methods.len())
            .map(|m| {
                let flags = avg(runs.iter().map(|r| r.overall[m].flags as f64));
                let flips = avg(runs.iter().map(|r| r.overall[m].flips as f64));
                if flips > 0.0 {
                    format!("{:.2}", flags / flips)
                } else {
                    "–".to_string()
                }
            })
            .collect();
        println!(
            "| {fraction} | {} | {} |",
            ratios.join(" | "),
            runs.iter().map(|r| r.reset_calibrations).sum::<usize>()
        );
    }
    println!();
}

/// Trains the two-fold hunt on the clean labels once per seed and prints each category's
/// out-of-fold AUPRC against those labels, with its prevalence among known labels.
fn print_clean_oof_auprc(
    taxonomy: &Taxonomy,
    texts: &[&str],
    labels: &[Vec<warden_core::Label>],
    seeds: &[u64],
    bits: u32,
) -> Result<(), Box<dyn Error>> {
    let rows: Vec<warden_fast::TrainExample<'_>> = texts
        .iter()
        .zip(labels)
        .map(|(t, l)| warden_fast::TrainExample {
            text: t,
            labels: l,
            weight: 1.0,
            calibration_weight: 1.0,
        })
        .collect();
    let mut per_seed = Vec::new();
    for &seed in seeds {
        let mut hunt = HuntConfig {
            seed,
            ..HuntConfig::default()
        };
        hunt.train.features.bits = bits;
        let oof = warden_qc::out_of_fold_scores(taxonomy, &rows, &hunt)?;
        per_seed.push(oof);
    }
    println!("### Out-of-fold AUPRC on the clean labels (two-fold hunt models)\n");
    let heads: Vec<String> = seeds.iter().map(|s| format!("seed {s}")).collect();
    println!("| cat | prevalence | {} | mean |", heads.join(" | "));
    println!("| --- | ---: |{} ---: |", " ---: |".repeat(seeds.len()));
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        let known: Vec<usize> = (0..labels.len())
            .filter(|&r| labels[r][c].hard().is_some())
            .collect();
        let truth: Vec<bool> = known
            .iter()
            .map(|&r| labels[r][c].hard() == Some(true))
            .collect();
        let prevalence = truth.iter().filter(|&&y| y).count() as f64 / known.len().max(1) as f64;
        let values: Vec<Option<f64>> = per_seed
            .iter()
            .map(|oof| {
                let s: Vec<f32> = known.iter().map(|&r| oof.scores[r][c]).collect();
                warden_eval::auprc(&s, &truth)
            })
            .collect();
        let shown: Vec<String> = values
            .iter()
            .map(|v| v.map_or("–".to_string(), |x| format!("{x:.3}")))
            .collect();
        let xs: Vec<f64> = values.iter().flatten().copied().collect();
        println!(
            "| {} | {prevalence:.3} | {} | {} |",
            cat.code,
            shown.join(" | "),
            if xs.is_empty() {
                "–".to_string()
            } else {
                format!("{:.3}", avg(xs))
            }
        );
    }
    let resets: usize = per_seed.iter().map(|o| o.reset_calibrations.len()).sum();
    println!("\nFold calibrations reset: {resets}.\n");
    Ok(())
}
