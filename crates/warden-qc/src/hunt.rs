//! The cross-validation mislabel hunt (paper section 3.2).
//!
//! "We periodically split our current training dataset into two parts, train separate
//! models on those datasets and use each model to score another half of the dataset that
//! model was not trained on. When the model prediction disagrees with the current
//! ground-truth label, the sample in question gets flagged. A random portion of flagged
//! samples is audited, and if more than 30% are identified as mislabeled, all flagged
//! samples would get labeled again for the second time."
//!
//! 1. [`two_fold_assignment`] splits rows into two seeded halves.
//! 2. [`out_of_fold_scores`] trains one warden-fast model per half and scores the other.
//!    Early stopping and Platt calibration use a small seeded hold-out *of the training
//!    half itself* ([`HuntConfig::holdout_fraction`], 10% by default) — never the half being
//!    scored: using the scored half for early stopping or calibration would fit the model
//!    to exactly the labels it is meant to question, pulling its scores toward the errors.
//! 3. [`flag_disagreements`] flags, per category, rows whose label and out-of-fold score
//!    disagree ([`FlagThresholds`]).
//! 4. [`sample_flags_for_audit`] picks the random portion to audit ([`audit_size`]).
//! 5. [`relabel_decision`] applies the rule: more than 30% (configurable) of audited flags
//!    mislabelled → every flagged row goes back for relabeling.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use warden_core::{Classifier, Taxonomy};
use warden_fast::{TrainConfig, TrainExample, TrainReport};

use crate::error::check_len;
use crate::sampling::{rng, sample_without_replacement};
use crate::QcError;

/// When a label and a score disagree.
///
/// A row labelled positive is flagged when its score is `< low`; a row labelled negative
/// when its score is `> high`. The defaults, 0.5 / 0.5, are the paper's rule ("the model
/// prediction disagrees with the label") at the decision point of a calibrated model:
/// a flagged row is one the model thinks more likely than not to carry the other label.
/// Stricter values (e.g. 0.2 / 0.8) flag fewer rows with higher precision; the 30% audit
/// rule is what protects relabeling effort when the flags are too loose, so the default
/// stays with the paper.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlagThresholds {
    pub low: f32,
    pub high: f32,
}

impl Default for FlagThresholds {
    fn default() -> Self {
        Self {
            low: 0.5,
            high: 0.5,
        }
    }
}

/// Settings of the hunt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HuntConfig {
    /// Seeds the two-fold split and the hold-outs (the model's own seed is in `train`).
    pub seed: u64,
    /// Fraction of each training half held out for early stopping and calibration.
    pub holdout_fraction: f64,
    pub thresholds: FlagThresholds,
    /// Fraction of flags to audit ([`audit_size`]).
    pub audit_fraction: f64,
    /// ... but at least this many (or all flags when fewer).
    pub audit_min: usize,
    /// The relabel rule: relabel every flag when the mislabelled fraction of audited flags
    /// is strictly greater than this (0.30 in the paper).
    pub relabel_threshold: f64,
    pub train: TrainConfig,
}

impl Default for HuntConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            holdout_fraction: 0.1,
            thresholds: FlagThresholds::default(),
            audit_fraction: 0.1,
            audit_min: 20,
            relabel_threshold: 0.30,
            train: TrainConfig {
                name: "warden-qc-fold".into(),
                ..TrainConfig::default()
            },
        }
    }
}

/// Assigns each of `n` rows to fold 0 or 1: a seeded shuffle, first `ceil(n/2)` rows to
/// fold 0. Deterministic for `(n, seed)`.
pub fn two_fold_assignment(n: usize, seed: u64) -> Vec<u8> {
    let all: Vec<usize> = (0..n).collect();
    let order = sample_without_replacement(&all, n, seed, 0x2f01d);
    let mut fold = vec![1u8; n];
    for &r in &order[..n.div_ceil(2)] {
        fold[r] = 0;
    }
    fold
}

/// Out-of-fold probabilities from the two-fold hunt.
#[derive(Debug, Clone)]
pub struct OutOfFold {
    /// Fold of each row (the model of the *other* fold scored it).
    pub fold: Vec<u8>,
    /// `scores[r][c]`: calibrated probability of category c for row r, from the model that
    /// never saw row r.
    pub scores: Vec<Vec<f32>>,
    /// Training report of the model trained on fold 0 and on fold 1.
    pub reports: [TrainReport; 2],
    /// `(fold, category)` of each head whose Platt calibration was degenerate and was
    /// replaced by the identity (see [`MAX_CALIBRATION_SLOPE`]).
    pub reset_calibrations: Vec<(u8, usize)>,
}

/// A Platt slope above this is treated as a failed fit. On a tiny hold-out with a handful
/// of positives, a head whose logits barely vary makes the Newton fit diverge (slopes of
/// 1e10 were seen on the moderation set), which turns scores into 0/1 steps and makes every
/// threshold flag the same rows. Such a head keeps its raw logistic output instead.
pub const MAX_CALIBRATION_SLOPE: f32 = 50.0;

/// Trains one warden-fast model on each half and scores the other half with it.
///
/// Each half is further split (seeded): `holdout_fraction` of its rows go to the
/// model's dev set (early stopping per head, Platt calibration), the rest to training.
/// The rows being scored are never used by their model. A degenerate calibration is
/// replaced by the identity ([`MAX_CALIBRATION_SLOPE`]). `rows[r].weight` is honoured as a
/// training weight, `calibration_weight` as the dev weight.
pub fn out_of_fold_scores(
    taxonomy: &Taxonomy,
    rows: &[TrainExample<'_>],
    cfg: &HuntConfig,
) -> Result<OutOfFold, QcError> {
    if !(0.0..1.0).contains(&cfg.holdout_fraction) {
        return Err(QcError::Invalid(format!(
            "holdout_fraction {} is outside [0, 1)",
            cfg.holdout_fraction
        )));
    }
    if let Some(r) = rows.iter().position(|r| r.labels.len() != taxonomy.len()) {
        return Err(QcError::Length {
            what: "labels of a row",
            expected: taxonomy.len(),
            got: rows[r].labels.len(),
        });
    }
    if rows.len() < 4 {
        return Err(QcError::Invalid(format!(
            "{} rows are too few for a two-fold hunt",
            rows.len()
        )));
    }
    let fold = two_fold_assignment(rows.len(), cfg.seed);
    let mut scores = vec![Vec::new(); rows.len()];
    let mut reports = Vec::with_capacity(2);
    let mut reset_calibrations = Vec::new();
    for f in 0..2u8 {
        let members: Vec<usize> = (0..rows.len()).filter(|&r| fold[r] == f).collect();
        let n_hold =
            ((members.len() as f64 * cfg.holdout_fraction).round() as usize).min(members.len() - 1);
        let hold: BTreeSet<usize> =
            sample_without_replacement(&members, n_hold, cfg.seed, 0x401d + f as u64)
                .into_iter()
                .collect();
        let train: Vec<TrainExample<'_>> = members
            .iter()
            .filter(|r| !hold.contains(r))
            .map(|&r| rows[r])
            .collect();
        let dev: Vec<TrainExample<'_>> = hold.iter().map(|&r| rows[r]).collect();
        let tcfg = TrainConfig {
            name: format!("{}-{f}", cfg.train.name),
            ..cfg.train.clone()
        };
        let (mut model, report) = warden_fast::train(taxonomy, &train, &dev, &tcfg, &|_, _, _| {});
        for (c, cal) in model.manifest_mut().calibration.iter_mut().enumerate() {
            if !(cal.a.is_finite() && cal.b.is_finite() && cal.a <= MAX_CALIBRATION_SLOPE) {
                *cal = warden_fast::Calibration::default();
                reset_calibrations.push((f, c));
            }
        }
        let targets: Vec<usize> = (0..rows.len()).filter(|&r| fold[r] != f).collect();
        let texts: Vec<&str> = targets.iter().map(|&r| rows[r].text).collect();
        let predicted = model
            .predict_batch(&texts)
            .map_err(|e| QcError::Invalid(format!("scoring the held-out half failed: {e}")))?;
        for (&r, s) in targets.iter().zip(predicted) {
            scores[r] = s;
        }
        reports.push(report);
    }
    let reports: [TrainReport; 2] = reports.try_into().expect("two folds");
    Ok(OutOfFold {
        fold,
        scores,
        reports,
        reset_calibrations,
    })
}

/// Rows of one category whose label disagrees with the score (see [`FlagThresholds`]).
/// Rows without a label are never flagged. Returned in ascending row order.
pub fn flag_disagreements(
    labels: &[Option<bool>],
    scores: &[f32],
    t: FlagThresholds,
) -> Result<Vec<usize>, QcError> {
    check_len("scores", labels.len(), scores.len())?;
    Ok((0..labels.len())
        .filter(|&r| match labels[r] {
            Some(true) => scores[r] < t.low,
            Some(false) => scores[r] > t.high,
            None => false,
        })
        .collect())
}

/// How many of `flags` flags to audit: `ceil(fraction · flags)`, at least `min` (or all
/// flags when there are fewer).
pub fn audit_size(flags: usize, fraction: f64, min: usize) -> usize {
    ((flags as f64 * fraction.clamp(0.0, 1.0)).ceil() as usize)
        .max(min)
        .min(flags)
}

/// The random portion of flagged rows to audit: `n` distinct rows of `flagged`, seeded;
/// `stream` (e.g. the category index) gives each category its own sample.
pub fn sample_flags_for_audit(flagged: &[usize], n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut s = sample_without_replacement(flagged, n, seed, 0xa0d17 ^ (stream << 20));
    s.sort_unstable();
    s
}

/// What to do after auditing a portion of the flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelabelDecision {
    pub flagged: usize,
    pub audited: usize,
    /// Audited flags the auditor found mislabelled.
    pub mislabelled: usize,
    /// `mislabelled / audited`; `None` when nothing was audited.
    pub mislabelled_rate: Option<f64>,
    pub threshold: f64,
    /// True when `mislabelled_rate > threshold`.
    pub relabel_all: bool,
    /// Rows to send back for a second labeling: every flagged row when `relabel_all`
    /// (audited ones included, as in the paper), else none. Ascending.
    pub relabel: Vec<usize>,
    /// Audited rows found mislabelled: correct these with the auditor's label whatever the
    /// rule decides. Ascending.
    pub corrections: Vec<usize>,
}

/// Applies the paper's relabel rule. `audit` lists `(row, mislabelled)` for each audited
/// flag; each row must be among `flagged` and appear once. "More than 30%" is strict:
/// exactly 3 of 10 does not trigger, 4 of 10 does.
pub fn relabel_decision(
    flagged: &[usize],
    audit: &[(usize, bool)],
    threshold: f64,
) -> Result<RelabelDecision, QcError> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(QcError::Invalid(format!(
            "relabel threshold {threshold} is outside [0, 1]"
        )));
    }
    let flagged_set: BTreeSet<usize> = flagged.iter().copied().collect();
    let mut seen = BTreeSet::new();
    for &(r, _) in audit {
        if !flagged_set.contains(&r) {
            return Err(QcError::NotFlagged(r));
        }
        if !seen.insert(r) {
            return Err(QcError::DuplicateAudit(r));
        }
    }
    let audited = audit.len();
    let mislabelled = audit.iter().filter(|a| a.1).count();
    let rate = (audited > 0).then(|| mislabelled as f64 / audited as f64);
    // Counts are integers, so rates of different counts differ by at least 1/audited; the
    // tolerance only absorbs rounding of `threshold · audited` (0.3 · 10 is not exactly 3).
    let relabel_all = audited > 0 && mislabelled as f64 > threshold * audited as f64 + 1e-9;
    let mut corrections: Vec<usize> = audit.iter().filter(|a| a.1).map(|a| a.0).collect();
    corrections.sort_unstable();
    Ok(RelabelDecision {
        flagged: flagged_set.len(),
        audited,
        mislabelled,
        mislabelled_rate: rate,
        threshold,
        relabel_all,
        relabel: if relabel_all {
            flagged_set.into_iter().collect()
        } else {
            Vec::new()
        },
        corrections,
    })
}

/// Shuffled copy of `0..n` (used by the experiment to pick flips).
pub(crate) fn shuffled(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut v: Vec<usize> = (0..n).collect();
    v.shuffle(&mut rng(seed, stream));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Label;

    #[test]
    fn folds_are_balanced_and_deterministic() {
        let f = two_fold_assignment(101, 5);
        assert_eq!(f.iter().filter(|&&x| x == 0).count(), 51);
        assert_eq!(f, two_fold_assignment(101, 5));
        assert_ne!(f, two_fold_assignment(101, 6));
    }

    #[test]
    fn flags_follow_thresholds() {
        let labels = [
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            None,
            Some(true),
        ];
        let scores = [0.1, 0.6, 0.9, 0.4, 0.99, 0.5];
        assert_eq!(
            flag_disagreements(&labels, &scores, FlagThresholds::default()).unwrap(),
            vec![0, 2]
        );
        let strict = FlagThresholds {
            low: 0.05,
            high: 0.95,
        };
        assert!(flag_disagreements(&labels, &scores, strict)
            .unwrap()
            .is_empty());
        assert!(flag_disagreements(&labels, &scores[..2], strict).is_err());
    }

    #[test]
    fn audit_size_bounds() {
        assert_eq!(audit_size(1000, 0.1, 20), 100);
        assert_eq!(audit_size(50, 0.1, 20), 20);
        assert_eq!(audit_size(7, 0.1, 20), 7);
        assert_eq!(audit_size(0, 0.1, 20), 0);
        let flagged: Vec<usize> = (0..50).map(|x| x * 3).collect();
        let s = sample_flags_for_audit(&flagged, 20, 1, 0);
        assert_eq!(s, sample_flags_for_audit(&flagged, 20, 1, 0));
        assert_eq!(s.len(), 20);
        assert!(s.iter().all(|r| flagged.contains(r)));
    }

    #[test]
    fn thirty_percent_rule_at_the_boundary() {
        let flagged: Vec<usize> = (0..40).collect();
        let audit = |bad: usize, n: usize| (0..n).map(|r| (r, r < bad)).collect::<Vec<_>>();
        // Exactly 30%: not more than 30%.
        let d = relabel_decision(&flagged, &audit(3, 10), 0.30).unwrap();
        assert!(!d.relabel_all);
        assert!(d.relabel.is_empty());
        assert_eq!(d.corrections, vec![0, 1, 2]);
        assert_eq!(d.mislabelled_rate, Some(0.3));
        let d = relabel_decision(&flagged, &audit(4, 10), 0.30).unwrap();
        assert!(d.relabel_all);
        assert_eq!(d.relabel, flagged);
        // 30 of 100 vs 31 of 100, and the threshold is configurable.
        assert!(
            !relabel_decision(&(0..100).collect::<Vec<_>>(), &audit(30, 100), 0.30)
                .unwrap()
                .relabel_all
        );
        assert!(
            relabel_decision(&(0..100).collect::<Vec<_>>(), &audit(31, 100), 0.30)
                .unwrap()
                .relabel_all
        );
        assert!(
            relabel_decision(&flagged, &audit(3, 10), 0.2)
                .unwrap()
                .relabel_all
        );
        // Nothing audited: no decision to relabel.
        let d = relabel_decision(&flagged, &[], 0.3).unwrap();
        assert!(!d.relabel_all && d.mislabelled_rate.is_none());
        // Invalid input.
        assert_eq!(
            relabel_decision(&flagged, &[(99, true)], 0.3),
            Err(QcError::NotFlagged(99))
        );
        assert_eq!(
            relabel_decision(&flagged, &[(1, true), (1, false)], 0.3),
            Err(QcError::DuplicateAudit(1))
        );
        assert!(relabel_decision(&flagged, &[], 1.5).is_err());
    }

    /// A synthetic set where the text decides the label, with planted flips: the hunt must
    /// flag most flips and few clean rows.
    #[test]
    fn hunt_finds_planted_flips() {
        let taxonomy = Taxonomy::builtin();
        let bad = [
            "kill",
            "stab",
            "shoot",
            "murder",
            "slaughter",
            "behead",
            "strangle",
            "maim",
        ];
        let good = [
            "garden", "coffee", "piano", "river", "cloud", "pencil", "bicycle", "window",
        ];
        let filler = [
            "the", "a", "today", "my", "friend", "said", "we", "will", "maybe", "later", "it", "is",
        ];
        let mut texts = Vec::new();
        let mut labels = Vec::new();
        for i in 0..1200usize {
            let positive = i % 4 == 0;
            let pool = if positive { &bad } else { &good };
            let t = format!(
                "{} {} {} {} {}",
                filler[i % filler.len()],
                pool[(i / 4) % pool.len()],
                filler[(i * 7 + 3) % filler.len()],
                pool[(i * 5 + 1) % pool.len()],
                filler[(i * 11 + 5) % filler.len()],
            );
            texts.push(t);
            let mut l = vec![Label::Unknown; taxonomy.len()];
            l[taxonomy.index_of("V").unwrap()] = if positive {
                Label::Positive
            } else {
                Label::Negative
            };
            labels.push(l);
        }
        let v = taxonomy.index_of("V").unwrap();
        let planted: BTreeSet<usize> = (0..1200).filter(|i| i % 37 == 5).collect();
        for &r in &planted {
            labels[r][v] = if labels[r][v] == Label::Positive {
                Label::Negative
            } else {
                Label::Positive
            };
        }
        let rows: Vec<TrainExample<'_>> = texts
            .iter()
            .zip(&labels)
            .map(|(t, l)| TrainExample {
                text: t,
                labels: l,
                weight: 1.0,
                calibration_weight: 1.0,
            })
            .collect();
        let cfg = HuntConfig {
            train: TrainConfig {
                features: warden_fast::FeatureConfig {
                    bits: 16,
                    ..Default::default()
                },
                ..HuntConfig::default().train
            },
            ..HuntConfig::default()
        };
        let oof = out_of_fold_scores(&taxonomy, &rows, &cfg).unwrap();
        let lv: Vec<Option<bool>> = labels.iter().map(|l| l[v].hard()).collect();
        let sv: Vec<f32> = oof.scores.iter().map(|s| s[v]).collect();
        let flags = flag_disagreements(&lv, &sv, cfg.thresholds).unwrap();
        let hits = flags.iter().filter(|r| planted.contains(r)).count();
        assert!(
            hits as f64 >= 0.8 * planted.len() as f64,
            "found {hits} of {} planted flips",
            planted.len()
        );
        assert!(
            hits as f64 >= 0.6 * flags.len() as f64,
            "{hits} of {} flags are planted",
            flags.len()
        );
    }
}
