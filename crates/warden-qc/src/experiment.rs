//! The injected-flip experiment: how well do the hunt and confident learning find label
//! errors we planted ourselves?
//!
//! Take a labelled set assumed clean, flip a known fraction of the known labels of each
//! category (uniformly among known labels, seeded), compute out-of-fold probabilities
//! once with the two-fold hunt ([`crate::hunt::out_of_fold_scores`], trained on the
//! *noisy* labels, as in real use), and run on the same predictions:
//!
//! * the hunt's disagreement flags at the default thresholds and, optionally, stricter ones;
//! * confident learning, `prune_by_noise_rate` and `confident_learning`.
//!
//! Per category we report flags, precision (flags that are injected flips), recall
//! (injected flips that are flagged) and F1, plus the AUPRC of ranking rows by
//! `|label − p|` for finding flips (a random ranking scores the flip rate). The set is only
//! *assumed* clean: a flag on a genuine, pre-existing error counts as a false flag here, so
//! precision is a lower bound.
//!
//! The paper's relabel rule is also simulated on the default hunt's flags: an audit
//! portion is sampled and the injected flips play the auditor.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use warden_core::{Label, Taxonomy};
use warden_fast::TrainExample;

use crate::confident::{find_label_issues, ClMethod};
use crate::error::check_len;
use crate::hunt::{
    audit_size, flag_disagreements, out_of_fold_scores, relabel_decision, sample_flags_for_audit,
    shuffled, FlagThresholds, HuntConfig,
};
use crate::QcError;

/// Settings of one run of the experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseExperimentConfig {
    /// Fraction of each category's known labels to flip.
    pub flip_fraction: f64,
    pub flip_seed: u64,
    pub hunt: HuntConfig,
    /// Also score the hunt at these thresholds (same predictions).
    pub strict_thresholds: Option<FlagThresholds>,
}

/// One method's flags on one category (or summed over categories).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    pub method: String,
    pub flags: usize,
    /// Flags that are injected flips.
    pub true_flags: usize,
    pub flips: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

impl MethodScore {
    fn new(method: String, flags: usize, true_flags: usize, flips: usize) -> Self {
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        MethodScore {
            method,
            flags,
            true_flags,
            flips,
            precision: ratio(true_flags, flags),
            recall: ratio(true_flags, flips),
            f1: ratio(2 * true_flags, flags + flips),
        }
    }
}

/// The relabel rule simulated on one category's default hunt flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelabelSimulation {
    pub flagged: usize,
    pub audited: usize,
    pub mislabelled: usize,
    pub relabel_all: bool,
}

/// Results on one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryNoiseResult {
    pub code: String,
    /// Rows with a known label.
    pub known: usize,
    /// Positives before flipping.
    pub positives: usize,
    pub flips: usize,
    pub flips_to_positive: usize,
    /// AUPRC of `|label − p|` for finding flips; `None` without flips.
    pub auprc_flip_ranking: Option<f64>,
    /// AUPRC of a random ranking (the flip rate among known rows).
    pub auprc_random: Option<f64>,
    pub methods: Vec<MethodScore>,
    pub relabel_rule: RelabelSimulation,
}

/// Results of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseExperimentReport {
    pub rows: usize,
    pub flip_fraction: f64,
    pub flip_seed: u64,
    pub hunt_seed: u64,
    pub thresholds: FlagThresholds,
    pub strict_thresholds: Option<FlagThresholds>,
    pub categories: Vec<CategoryNoiseResult>,
    /// Counts summed over categories (micro average), per method.
    pub overall: Vec<MethodScore>,
    /// Seconds spent training the two fold models.
    pub train_seconds: f64,
    /// Fold heads whose degenerate calibration was reset (see `hunt::MAX_CALIBRATION_SLOPE`).
    pub reset_calibrations: usize,
}

/// Flips `round(fraction · known)` known labels of each category, chosen uniformly among
/// the category's known rows (seeded, one stream per category). A label counts as
/// positive when its target is ≥ 0.5; the flipped label is the hard opposite. Returns the
/// flipped rows of each category, ascending.
pub fn inject_flips(
    labels: &mut [Vec<Label>],
    n_categories: usize,
    fraction: f64,
    seed: u64,
) -> Result<Vec<Vec<usize>>, QcError> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(QcError::Invalid(format!(
            "flip fraction {fraction} is outside [0, 1]"
        )));
    }
    for l in labels.iter() {
        check_len("labels of a row", n_categories, l.len())?;
    }
    let mut out = Vec::with_capacity(n_categories);
    for c in 0..n_categories {
        let known: Vec<usize> = (0..labels.len())
            .filter(|&r| labels[r][c].is_known())
            .collect();
        let n = (known.len() as f64 * fraction).round() as usize;
        let mut picked: Vec<usize> = shuffled(known.len(), seed, 0xf11b ^ ((c as u64) << 16))
            .into_iter()
            .take(n)
            .map(|i| known[i])
            .collect();
        picked.sort_unstable();
        for &r in &picked {
            labels[r][c] = if labels[r][c].hard() == Some(true) {
                Label::Negative
            } else {
                Label::Positive
            };
        }
        out.push(picked);
    }
    Ok(out)
}

/// Runs the experiment on `texts` with their clean `labels` (taxonomy order). Every row
/// has training weight 1.
pub fn run_noise_experiment(
    taxonomy: &Taxonomy,
    texts: &[&str],
    labels: &[Vec<Label>],
    cfg: &NoiseExperimentConfig,
) -> Result<NoiseExperimentReport, QcError> {
    check_len("labels", texts.len(), labels.len())?;
    let k = taxonomy.len();
    let mut noisy = labels.to_vec();
    let flipped = inject_flips(&mut noisy, k, cfg.flip_fraction, cfg.flip_seed)?;
    let rows: Vec<TrainExample<'_>> = texts
        .iter()
        .zip(&noisy)
        .map(|(t, l)| TrainExample {
            text: t,
            labels: l,
            weight: 1.0,
            calibration_weight: 1.0,
        })
        .collect();
    let oof = out_of_fold_scores(taxonomy, &rows, &cfg.hunt)?;

    let mut methods: Vec<(String, Option<FlagThresholds>, Option<ClMethod>)> = vec![(
        format!(
            "hunt {}/{}",
            cfg.hunt.thresholds.low, cfg.hunt.thresholds.high
        ),
        Some(cfg.hunt.thresholds),
        None,
    )];
    if let Some(t) = cfg.strict_thresholds {
        methods.push((format!("hunt {}/{}", t.low, t.high), Some(t), None));
    }
    methods.push((
        "CL prune_by_noise_rate".into(),
        None,
        Some(ClMethod::PruneByNoiseRate),
    ));
    methods.push((
        "CL confident_learning".into(),
        None,
        Some(ClMethod::ConfidentLearning),
    ));

    let mut totals = vec![(0usize, 0usize, 0usize); methods.len()];
    let mut categories = Vec::with_capacity(k);
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        let lv: Vec<Option<bool>> = noisy.iter().map(|l| l[c].hard()).collect();
        let sv: Vec<f32> = oof.scores.iter().map(|s| s[c]).collect();
        let flips: BTreeSet<usize> = flipped[c].iter().copied().collect();
        let mut scores = Vec::with_capacity(methods.len());
        let mut default_flags = Vec::new();
        for (i, (name, t, m)) in methods.iter().enumerate() {
            let flags = match (t, m) {
                (Some(t), _) => flag_disagreements(&lv, &sv, *t)?,
                (None, Some(m)) => find_label_issues(&lv, &sv, *m)?.issues,
                (None, None) => unreachable!(),
            };
            let tp = flags.iter().filter(|r| flips.contains(r)).count();
            totals[i].0 += flags.len();
            totals[i].1 += tp;
            totals[i].2 += flips.len();
            scores.push(MethodScore::new(name.clone(), flags.len(), tp, flips.len()));
            if i == 0 {
                default_flags = flags;
            }
        }
        let known: Vec<usize> = (0..lv.len()).filter(|&r| lv[r].is_some()).collect();
        let rank: Vec<f32> = known
            .iter()
            .map(|&r| (lv[r].unwrap() as u8 as f32 - sv[r]).abs())
            .collect();
        let is_flip: Vec<bool> = known.iter().map(|r| flips.contains(r)).collect();
        let n_audit = audit_size(
            default_flags.len(),
            cfg.hunt.audit_fraction,
            cfg.hunt.audit_min,
        );
        let audited = sample_flags_for_audit(&default_flags, n_audit, cfg.hunt.seed, c as u64);
        let audit: Vec<(usize, bool)> = audited.iter().map(|&r| (r, flips.contains(&r))).collect();
        let d = relabel_decision(&default_flags, &audit, cfg.hunt.relabel_threshold)?;
        categories.push(CategoryNoiseResult {
            code: cat.code.clone(),
            known: known.len(),
            positives: labels.iter().filter(|l| l[c].hard() == Some(true)).count(),
            flips: flips.len(),
            flips_to_positive: flips.iter().filter(|&&r| lv[r] == Some(true)).count(),
            auprc_flip_ranking: warden_eval::auprc(&rank, &is_flip),
            auprc_random: (!flips.is_empty()).then(|| flips.len() as f64 / known.len() as f64),
            methods: scores,
            relabel_rule: RelabelSimulation {
                flagged: d.flagged,
                audited: d.audited,
                mislabelled: d.mislabelled,
                relabel_all: d.relabel_all,
            },
        });
    }
    let overall = methods
        .iter()
        .zip(&totals)
        .map(|((n, _, _), &(f, tp, fl))| MethodScore::new(n.clone(), f, tp, fl))
        .collect();
    Ok(NoiseExperimentReport {
        rows: texts.len(),
        flip_fraction: cfg.flip_fraction,
        flip_seed: cfg.flip_seed,
        hunt_seed: cfg.hunt.seed,
        thresholds: cfg.hunt.thresholds,
        strict_thresholds: cfg.strict_thresholds,
        categories,
        overall,
        train_seconds: oof
            .reports
            .iter()
            .map(|r| r.featurize_seconds + r.train_seconds)
            .sum(),
        reset_calibrations: oof.reset_calibrations.len(),
    })
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.3}"))
}

impl NoiseExperimentReport {
    /// One markdown table: a row per category and method, then the micro-averaged rows.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Flip fraction {}, flip seed {}, hunt seed {}, {} rows, {} degenerate fold calibrations reset.\n",
            self.flip_fraction, self.flip_seed, self.hunt_seed, self.rows, self.reset_calibrations
        );
        s.push_str("| cat | known | flips (→pos) | flip AUPRC (random) | method | flags | precision | recall | F1 | 30% rule: audited / mislabelled → relabel |\n");
        s.push_str("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |\n");
        for c in &self.categories {
            for (i, m) in c.methods.iter().enumerate() {
                let (head, rule) = if i == 0 {
                    (
                        format!(
                            "| {} | {} | {} ({}) | {} ({}) ",
                            c.code,
                            c.known,
                            c.flips,
                            c.flips_to_positive,
                            fmt(c.auprc_flip_ranking),
                            fmt(c.auprc_random)
                        ),
                        format!(
                            "{} / {} → {}",
                            c.relabel_rule.audited,
                            c.relabel_rule.mislabelled,
                            if c.relabel_rule.relabel_all {
                                "yes"
                            } else {
                                "no"
                            }
                        ),
                    )
                } else {
                    ("| | | | ".into(), String::new())
                };
                let _ = writeln!(
                    s,
                    "{head}| {} | {} | {} | {} | {} | {rule} |",
                    m.method,
                    m.flags,
                    fmt(m.precision),
                    fmt(m.recall),
                    fmt(m.f1)
                );
            }
        }
        for m in &self.overall {
            let _ = writeln!(
                s,
                "| **all (micro)** | | {} | | {} | {} | {} | {} | {} | |",
                m.flips,
                m.method,
                m.flags,
                fmt(m.precision),
                fmt(m.recall),
                fmt(m.f1)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_counted_per_category_and_leave_unknowns_alone() {
        let t = Taxonomy::builtin();
        let mut labels: Vec<Vec<Label>> = (0..200)
            .map(|r| {
                let mut l = vec![Label::Unknown; t.len()];
                l[0] = if r % 5 == 0 {
                    Label::Positive
                } else {
                    Label::Negative
                };
                if r < 100 {
                    l[1] = Label::Soft(0.7);
                }
                l
            })
            .collect();
        let before = labels.clone();
        let f = inject_flips(&mut labels, t.len(), 0.1, 3).unwrap();
        assert_eq!(f[0].len(), 20);
        assert_eq!(f[1].len(), 10);
        assert!(f[2..].iter().all(Vec::is_empty));
        for r in 0..200 {
            let changed0 = labels[r][0] != before[r][0];
            assert_eq!(changed0, f[0].contains(&r));
            if f[1].contains(&r) {
                assert_eq!(labels[r][1], Label::Negative);
            }
            assert_eq!(labels[r][2], Label::Unknown);
        }
        let mut again = before.clone();
        assert_eq!(inject_flips(&mut again, t.len(), 0.1, 3).unwrap(), f);
        assert!(inject_flips(&mut again, t.len(), 1.5, 3).is_err());
    }

    #[test]
    fn method_score_rates() {
        let m = MethodScore::new("x".into(), 10, 4, 8);
        assert_eq!(m.precision, Some(0.4));
        assert_eq!(m.recall, Some(0.5));
        assert!((m.f1.unwrap() - 8.0 / 18.0).abs() < 1e-12);
        let m = MethodScore::new("x".into(), 0, 0, 0);
        assert_eq!((m.precision, m.recall, m.f1), (None, None, None));
    }
}
