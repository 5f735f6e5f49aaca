//! A confident-learning baseline (Northcutt, Jiang & Chuang 2021, "Confident Learning:
//! Estimating Uncertainty in Dataset Labels"), as cleanlab's `filter.find_label_issues`
//! implements it, applied per category as a binary problem over out-of-fold probabilities.
//!
//! With `p̂_1 = p` (the category's probability) and `p̂_0 = 1 − p`:
//!
//! 1. Per-class thresholds `t_k` = mean of `p̂_k` over rows *labelled* `k` (the class's
//!    average self-confidence).
//! 2. Confident joint `C[given][true]`: a row counts for true class `k` when `p̂_k ≥ t_k`
//!    (if both classes pass, the more probable one; if none, the row is not counted).
//!    The diagonal is clipped to at least 1, then each row of `C` is calibrated to sum to
//!    the number of rows with that given label (rounded preserving row totals).
//! 3. Issues:
//!    * [`ClMethod::PruneByNoiseRate`] — cleanlab's default `filter_by="prune_by_noise_rate"`:
//!      for given label `k` and the other class `j`, the `C[k][j]` rows labelled `k` with the
//!      largest margin `p̂_j − p̂_k` are issues. (cleanlab's `min_examples_per_class = 1`
//!      is kept: at least one row per class is left; a class with a single row is not pruned.)
//!    * [`ClMethod::ConfidentLearning`] — `filter_by="confident_learning"`: the rows counted
//!      off the diagonal of the (uncalibrated) confident joint.
//!
//!    As in cleanlab, a row is then dropped from the issues when the model's argmax agrees
//!    with its given label (for one category: `p > 0.5` and labelled positive, or `p ≤ 0.5`
//!    and labelled negative — `argmax` breaks the tie at 0.5 toward class 0).
//!
//! Issues are returned ranked by self-confidence (`p̂_given`, lowest first), cleanlab's
//! `return_indices_ranked_by="self_confidence"`.
//!
//! Differences from cleanlab, none of which matters for two classes with more than a
//! handful of rows: `_keep_at_least_n_per_class` is applied on integer counts (a zero
//! diagonal becomes 1 by taking one from the off-diagonal), and margin ties are broken
//! by row index for determinism.

use serde::{Deserialize, Serialize};

use crate::error::check_len;
use crate::QcError;

/// Which confident-learning filter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClMethod {
    /// cleanlab's default, `prune_by_noise_rate`.
    PruneByNoiseRate,
    /// cleanlab's `confident_learning`: off-diagonals of the confident joint.
    ConfidentLearning,
}

impl ClMethod {
    pub fn name(self) -> &'static str {
        match self {
            ClMethod::PruneByNoiseRate => "prune_by_noise_rate",
            ClMethod::ConfidentLearning => "confident_learning",
        }
    }
}

/// Result of confident learning on one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidentLearning {
    pub method: ClMethod,
    /// `[t_0, t_1]`; `None` when one class has no labelled rows (nothing is then flagged).
    pub thresholds: Option<[f64; 2]>,
    /// Confident joint before calibration, `[given][true]` (after the diagonal clip).
    pub confident_joint: [[usize; 2]; 2],
    /// Calibrated confident joint, `[given][true]`; its off-diagonal sum is cleanlab's
    /// estimate of the number of label issues.
    pub calibrated_joint: [[usize; 2]; 2],
    /// Rows found to be label issues, most suspicious first.
    pub issues: Vec<usize>,
}

/// Finds label issues of one category. `labels[r]` is row r's given label (`None`: not
/// labelled, ignored), `probs[r]` its out-of-sample probability of the category.
pub fn find_label_issues(
    labels: &[Option<bool>],
    probs: &[f32],
    method: ClMethod,
) -> Result<ConfidentLearning, QcError> {
    check_len("probs", labels.len(), probs.len())?;
    let rows: Vec<(usize, usize, [f64; 2])> = labels
        .iter()
        .zip(probs)
        .enumerate()
        .filter_map(|(r, (l, &p))| l.map(|l| (r, l as usize, [1.0 - p as f64, p as f64])))
        .collect();
    let mut counts = [0usize; 2];
    let mut sums = [0.0f64; 2];
    for &(_, y, pp) in &rows {
        counts[y] += 1;
        sums[y] += pp[y];
    }
    if counts[0] == 0 || counts[1] == 0 {
        return Ok(ConfidentLearning {
            method,
            thresholds: None,
            confident_joint: [[0; 2]; 2],
            calibrated_joint: [[0; 2]; 2],
            issues: Vec::new(),
        });
    }
    let t = [sums[0] / counts[0] as f64, sums[1] / counts[1] as f64];

    // Confident joint and its off-diagonal rows.
    let mut cj = [[0usize; 2]; 2];
    let mut off_diagonal = Vec::new();
    for &(r, y, pp) in &rows {
        let conf = [pp[0] >= t[0] - 1e-6, pp[1] >= t[1] - 1e-6];
        let guess = match conf {
            [false, false] => continue,
            [true, true] => argmax(pp),
            [true, false] => 0,
            [false, true] => 1,
        };
        cj[y][guess] += 1;
        if guess != y {
            off_diagonal.push(r);
        }
    }
    for (k, row) in cj.iter_mut().enumerate() {
        row[k] = row[k].max(1);
    }
    let mut cal = [[0usize; 2]; 2];
    for k in 0..2 {
        let total: usize = cj[k].iter().sum();
        let scaled = [
            cj[k][0] as f64 * counts[k] as f64 / total as f64,
            cj[k][1] as f64 * counts[k] as f64 / total as f64,
        ];
        cal[k] = round_preserving_total(scaled, counts[k]);
    }

    let mut issues: Vec<usize> = match method {
        ClMethod::ConfidentLearning => off_diagonal,
        ClMethod::PruneByNoiseRate => {
            let mut out = Vec::new();
            for k in 0..2 {
                let j = 1 - k;
                // _keep_at_least_n_per_class with n = 1, on integer counts.
                let mut prune = cal[k][j];
                if cal[k][k] == 0 && prune > 0 {
                    prune -= 1;
                }
                if counts[k] <= 1 || prune == 0 {
                    continue;
                }
                let mut members: Vec<(usize, f64)> = rows
                    .iter()
                    .filter(|x| x.1 == k)
                    .map(|&(r, _, pp)| (r, pp[j] - pp[k]))
                    .collect();
                members.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                out.extend(members.iter().take(prune).map(|m| m.0));
            }
            out
        }
    };
    // Drop rows whose argmax prediction equals the given label.
    issues.retain(|&r| {
        let p = probs[r] as f64;
        argmax([1.0 - p, p]) != labels[r].unwrap() as usize
    });
    // Rank by self-confidence, lowest first.
    let self_conf = |r: usize| {
        let p = probs[r] as f64;
        if labels[r] == Some(true) {
            p
        } else {
            1.0 - p
        }
    };
    issues.sort_by(|&a, &b| self_conf(a).total_cmp(&self_conf(b)).then(a.cmp(&b)));
    Ok(ConfidentLearning {
        method,
        thresholds: Some(t),
        confident_joint: cj,
        calibrated_joint: cal,
        issues,
    })
}

/// numpy's argmax: the first maximum.
fn argmax(pp: [f64; 2]) -> usize {
    usize::from(pp[1] > pp[0])
}

/// Floors both entries, then gives the missing units to the largest fractional parts.
fn round_preserving_total(v: [f64; 2], total: usize) -> [usize; 2] {
    let mut out = [v[0].floor() as usize, v[1].floor() as usize];
    let mut missing = total.saturating_sub(out[0] + out[1]);
    let mut order = [0usize, 1];
    order.sort_by(|&a, &b| (v[b] - v[b].floor()).total_cmp(&(v[a] - v[a].floor())));
    for &i in order.iter().cycle().take(2 * missing.min(2)) {
        if missing == 0 {
            break;
        }
        out[i] += 1;
        missing -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_set_has_no_issues_and_agrees_with_labels() {
        let labels: Vec<Option<bool>> = (0..200).map(|i| Some(i % 3 == 0)).collect();
        let probs: Vec<f32> = labels
            .iter()
            .map(|l| if l.unwrap() { 0.93 } else { 0.04 })
            .collect();
        for m in [ClMethod::PruneByNoiseRate, ClMethod::ConfidentLearning] {
            let r = find_label_issues(&labels, &probs, m).unwrap();
            assert!(r.issues.is_empty(), "{m:?}: {:?}", r.issues);
            assert_eq!(r.calibrated_joint[0][1] + r.calibrated_joint[1][0], 0);
            let t = r.thresholds.unwrap();
            assert!((t[1] - 0.93).abs() < 1e-6 && (t[0] - 0.96).abs() < 1e-6);
        }
    }

    #[test]
    fn flipped_rows_on_a_separable_set_are_exactly_the_issues() {
        // True classes are perfectly predicted; 6 given labels are flipped.
        let truth: Vec<bool> = (0..300).map(|i| i % 4 == 0).collect();
        let probs: Vec<f32> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if t {
                    0.90 + (i % 10) as f32 / 200.0
                } else {
                    0.02 + (i % 10) as f32 / 200.0
                }
            })
            .collect();
        let flipped = [3usize, 8, 40, 41, 100, 201];
        let labels: Vec<Option<bool>> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| Some(if flipped.contains(&i) { !t } else { t }))
            .collect();
        for m in [ClMethod::PruneByNoiseRate, ClMethod::ConfidentLearning] {
            let r = find_label_issues(&labels, &probs, m).unwrap();
            let mut got = r.issues.clone();
            got.sort();
            assert_eq!(
                got,
                flipped.to_vec(),
                "{m:?}: joint {:?}",
                r.calibrated_joint
            );
        }
    }

    #[test]
    fn unlabelled_rows_are_ignored_and_one_class_means_nothing_to_do() {
        let labels = vec![Some(true), None, Some(true)];
        let probs = vec![0.1, 0.9, 0.2];
        let r = find_label_issues(&labels, &probs, ClMethod::PruneByNoiseRate).unwrap();
        assert!(r.thresholds.is_none() && r.issues.is_empty());
        assert!(find_label_issues(&labels, &probs[..2], ClMethod::PruneByNoiseRate).is_err());
    }

    #[test]
    fn prune_count_follows_the_calibrated_joint() {
        // 10 labelled positive, 90 negative; 4 positives look negative, 2 negatives borderline.
        let mut labels = vec![Some(true); 10];
        labels.extend(vec![Some(false); 90]);
        let mut probs = vec![0.9f32; 6];
        probs.extend([0.05, 0.1, 0.15, 0.3]);
        probs.extend(vec![0.3f32; 88]);
        probs.extend([0.45, 0.6]);
        let r = find_label_issues(&labels, &probs, ClMethod::PruneByNoiseRate).unwrap();
        // Positive threshold = mean p over labelled positives = 0.6; the four low ones have
        // p̂_0 ≥ t_0 (≈ 0.695) and so count as true negatives.
        assert_eq!(r.confident_joint[1][0], 4);
        let mut got = r.issues.clone();
        got.sort();
        assert!(got.starts_with(&[6, 7, 8, 9]), "{got:?}");
        // Most suspicious first: the positive with p = 0.05.
        assert_eq!(r.issues[0], 6);
    }

    #[test]
    fn rounding_preserves_totals() {
        assert_eq!(round_preserving_total([2.6, 7.4], 10), [3, 7]);
        assert_eq!(round_preserving_total([0.5, 0.5], 1), [1, 0]);
        assert_eq!(round_preserving_total([3.0, 4.0], 7), [3, 4]);
    }
}
