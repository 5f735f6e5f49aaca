//! Ranking and threshold metrics over one binary problem: a score per row and a hard label.
//!
//! Every ranking metric here is computed from one descending sort of the scores, walking
//! the distinct score values as thresholds (rows with equal scores enter together, so ties
//! never depend on input order). NaN scores rank below every other score (they are never
//! ≥ any threshold).

use serde::{Deserialize, Serialize};

/// Confusion counts and rates at one threshold (`score >= threshold` is predicted
/// positive). A rate is `None` when its denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdMetrics {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    /// tp / (tp + fp); `None` when nothing is predicted positive.
    pub precision: Option<f64>,
    /// tp / (tp + fn); `None` when there are no positive rows.
    pub recall: Option<f64>,
    /// 2·tp / (2·tp + fp + fn); `None` when there are no positive rows and nothing is
    /// predicted positive. Zero when there are positives but none is caught.
    pub f1: Option<f64>,
    /// fp / (fp + tn); `None` when there are no negative rows.
    pub fpr: Option<f64>,
}

impl ThresholdMetrics {
    /// Rates from raw confusion counts.
    pub fn from_counts(tp: usize, fp: usize, tn: usize, fn_: usize) -> Self {
        let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
        Self {
            tp,
            fp,
            tn,
            fn_,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            fpr: ratio(fp, fp + tn),
        }
    }

    /// Counts from per-row predictions and labels.
    pub fn from_predictions(predicted: &[bool], labels: &[bool]) -> Self {
        check_lengths(predicted.len(), labels.len());
        let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
        for (&p, &l) in predicted.iter().zip(labels) {
            match (p, l) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, false) => tn += 1,
                (false, true) => fn_ += 1,
            }
        }
        Self::from_counts(tp, fp, tn, fn_)
    }
}

/// A precision–recall curve: one point per distinct score, from the highest threshold
/// (fewest rows predicted positive) down to the lowest (every row predicted positive), so
/// `recall` is non-decreasing. Unlike sklearn's `precision_recall_curve`, no artificial
/// `(recall 0, precision 1)` end point is appended and thresholds run high to low.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    /// The score threshold of each point: rows with `score >= threshold` are positive.
    pub thresholds: Vec<f32>,
}

impl PrCurve {
    pub fn len(&self) -> usize {
        self.thresholds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
    }
}

/// Cumulative counts at every distinct threshold, from one sort. Shared by all metrics so a
/// report sorts each category once.
#[derive(Debug, Clone)]
pub(crate) struct Ranked {
    /// Total positive and negative rows.
    pub positives: usize,
    pub negatives: usize,
    /// `(threshold, tp, fp)` with `tp`/`fp` counting rows whose score is `>= threshold`;
    /// thresholds strictly decreasing.
    pub points: Vec<(f32, usize, usize)>,
}

fn check_lengths(scores: usize, labels: usize) {
    assert_eq!(
        scores, labels,
        "scores and labels must have the same length"
    );
}

/// NaN ranks below everything, including -inf.
fn rank_key(s: f32) -> f32 {
    if s.is_nan() {
        f32::NEG_INFINITY
    } else {
        s
    }
}

impl Ranked {
    pub fn new(scores: &[f32], labels: &[bool]) -> Self {
        check_lengths(scores.len(), labels.len());
        // NaN rows are never predicted positive; they only matter through the final
        // "everything positive" point, handled below.
        let mut order: Vec<(f32, bool, bool)> = scores
            .iter()
            .zip(labels)
            .map(|(&s, &l)| (rank_key(s), s.is_nan(), l))
            .collect();
        // Descending score; NaN after -inf.
        order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let positives = labels.iter().filter(|&&l| l).count();
        let negatives = labels.len() - positives;
        let mut points = Vec::new();
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut i = 0;
        while i < order.len() {
            let (key, nan, _) = order[i];
            let mut j = i;
            while j < order.len() && order[j].0 == key && order[j].1 == nan {
                if order[j].2 {
                    tp += 1;
                } else {
                    fp += 1;
                }
                j += 1;
            }
            let threshold = if nan { f32::NAN } else { key };
            points.push((threshold, tp, fp));
            i = j;
        }
        Self {
            positives,
            negatives,
            points,
        }
    }

    pub fn auprc(&self) -> Option<f64> {
        if self.positives == 0 {
            return None;
        }
        let p = self.positives as f64;
        let mut prev_tp = 0;
        let mut ap = 0.0;
        for &(_, tp, fp) in &self.points {
            if tp > prev_tp {
                ap += (tp - prev_tp) as f64 / p * (tp as f64 / (tp + fp) as f64);
            }
            prev_tp = tp;
        }
        Some(ap.clamp(0.0, 1.0))
    }

    pub fn roc_auc(&self) -> Option<f64> {
        if self.positives == 0 || self.negatives == 0 {
            return None;
        }
        // Trapezoids between consecutive ROC points: a tie group contributes half of its
        // positive×negative pairs, exactly the Mann–Whitney convention.
        let (mut prev_tp, mut prev_fp) = (0usize, 0usize);
        let mut twice_area: u128 = 0;
        for &(_, tp, fp) in &self.points {
            twice_area += ((fp - prev_fp) as u128) * ((tp + prev_tp) as u128);
            prev_tp = tp;
            prev_fp = fp;
        }
        let pairs = self.positives as f64 * self.negatives as f64;
        Some((twice_area as f64 / 2.0 / pairs).clamp(0.0, 1.0))
    }

    pub fn pr_curve(&self) -> Option<PrCurve> {
        if self.positives == 0 {
            return None;
        }
        let p = self.positives as f64;
        let mut c = PrCurve {
            precision: Vec::with_capacity(self.points.len()),
            recall: Vec::with_capacity(self.points.len()),
            thresholds: Vec::with_capacity(self.points.len()),
        };
        for &(t, tp, fp) in &self.points {
            c.precision.push(tp as f64 / (tp + fp) as f64);
            c.recall.push(tp as f64 / p);
            c.thresholds.push(t);
        }
        Some(c)
    }

    pub fn best_f1(&self) -> Option<(f64, f32)> {
        if self.positives == 0 {
            return None;
        }
        let mut best: Option<(f64, f32)> = None;
        for &(t, tp, fp) in &self.points {
            if t.is_nan() {
                continue; // not a usable threshold
            }
            let fn_ = self.positives - tp;
            let f1 = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
            // Strictly greater: on equal F1 keep the higher threshold (fewer flags).
            if !matches!(best, Some((b, _)) if f1 <= b) {
                best = Some((f1, t));
            }
        }
        best
    }
}

/// Average precision, the area under the step-wise precision–recall curve:
/// `Σ_k (R_k − R_{k−1}) · P_k` over distinct score thresholds, highest first — the same
/// value as `sklearn.metrics.average_precision_score` (equal scores form one threshold).
/// `None` when there are no positive rows.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn auprc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    Ranked::new(scores, labels).auprc()
}

/// Area under the ROC curve: the probability that a random positive row scores above a
/// random negative row, ties counting ½ (Mann–Whitney U / (P·N)). Equals
/// `sklearn.metrics.roc_auc_score`. `None` unless there are both positive and negative rows.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    Ranked::new(scores, labels).roc_auc()
}

/// Precision and recall at each distinct score threshold (see [`PrCurve`]). `None` when
/// there are no positive rows (recall is undefined).
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn pr_curve(scores: &[f32], labels: &[bool]) -> Option<PrCurve> {
    Ranked::new(scores, labels).pr_curve()
}

/// The best F1 over all distinct score thresholds, with the threshold that reaches it
/// (the highest such threshold on ties). `None` when there are no positive rows (or no
/// non-NaN score).
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn best_f1(scores: &[f32], labels: &[bool]) -> Option<(f64, f32)> {
    Ranked::new(scores, labels).best_f1()
}

/// Confusion counts and rates when rows with `score >= threshold` are predicted positive.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn at_threshold(scores: &[f32], labels: &[bool], threshold: f32) -> ThresholdMetrics {
    check_lengths(scores.len(), labels.len());
    let predicted: Vec<bool> = scores.iter().map(|&s| s >= threshold).collect();
    ThresholdMetrics::from_predictions(&predicted, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn sklearn_reference_values() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let l = b(&[0, 0, 1, 1]);
        assert!(close(auprc(&s, &l).unwrap(), 0.833_333_333_333_333_4));
        assert!(close(roc_auc(&s, &l).unwrap(), 0.75));
    }

    #[test]
    fn perfect_and_reversed() {
        let s = [0.9, 0.8, 0.3, 0.1];
        let l = b(&[1, 1, 0, 0]);
        assert_eq!(auprc(&s, &l), Some(1.0));
        assert_eq!(roc_auc(&s, &l), Some(1.0));
        let r = b(&[0, 0, 1, 1]);
        assert_eq!(roc_auc(&s, &r), Some(0.0));
        // Positives ranked last: AP = (1/2)(1/3) + (1/2)(2/4).
        assert!(close(auprc(&s, &r).unwrap(), 0.5 * (1.0 / 3.0) + 0.5 * 0.5));
    }

    #[test]
    fn ties_form_one_threshold() {
        // All scores equal: one threshold, precision = prevalence, ROC = 1/2.
        let s = [0.5; 4];
        let l = b(&[1, 0, 0, 1]);
        assert_eq!(auprc(&s, &l), Some(0.5));
        assert_eq!(roc_auc(&s, &l), Some(0.5));
        let c = pr_curve(&s, &l).unwrap();
        assert_eq!(c.thresholds, vec![0.5]);
        // sklearn: average_precision_score([1,0,0,1,1], [.9,.5,.5,.5,.1]) == 0.7333...
        let s = [0.9, 0.5, 0.5, 0.5, 0.1];
        let l = b(&[1, 0, 0, 1, 1]);
        let ap = 1.0 / 3.0 * 1.0 + 1.0 / 3.0 * 0.5 + 1.0 / 3.0 * 0.6;
        assert!(close(auprc(&s, &l).unwrap(), ap));
        // Order inside the tie group must not matter.
        let l2 = b(&[1, 1, 0, 0, 1]);
        assert!(close(auprc(&s, &l2).unwrap(), ap));
        // roc: pairs (pos,neg): 0.9 beats both (2), tied pos vs 2 negs (1), 0.1 loses (0) → 3/6.
        assert!(close(roc_auc(&s, &l).unwrap(), 0.5));
    }

    #[test]
    fn undefined_cases_are_none() {
        let s = [0.2, 0.7];
        assert_eq!(auprc(&s, &[false, false]), None);
        assert_eq!(roc_auc(&s, &[false, false]), None);
        assert_eq!(roc_auc(&s, &[true, true]), None);
        assert_eq!(auprc(&s, &[true, true]), Some(1.0));
        assert_eq!(pr_curve(&s, &[false, false]), None);
        assert_eq!(best_f1(&s, &[false, false]), None);
        assert_eq!(auprc(&[], &[]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        let m = at_threshold(&s, &[false, false], 0.9);
        assert_eq!(
            (m.precision, m.recall, m.f1, m.fpr),
            (None, None, None, Some(0.0))
        );
    }

    #[test]
    fn pr_curve_and_best_f1() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let l = b(&[0, 0, 1, 1]);
        let c = pr_curve(&s, &l).unwrap();
        assert_eq!(c.thresholds, vec![0.8, 0.4, 0.35, 0.1]);
        assert_eq!(c.recall, vec![0.5, 0.5, 1.0, 1.0]);
        assert!(close(c.precision[2], 2.0 / 3.0));
        let (f1, t) = best_f1(&s, &l).unwrap();
        assert!(close(f1, 0.8));
        assert_eq!(t, 0.35);
    }

    #[test]
    fn threshold_counts() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.5];
        let l = b(&[0, 0, 1, 1, 0]);
        let m = at_threshold(&s, &l, 0.4);
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (1, 2, 1, 1));
        assert!(close(m.precision.unwrap(), 1.0 / 3.0));
        assert!(close(m.recall.unwrap(), 0.5));
        assert!(close(m.f1.unwrap(), 0.4));
        assert!(close(m.fpr.unwrap(), 2.0 / 3.0));
        // Nothing flagged with positives present: precision undefined, F1 zero.
        let m = at_threshold(&s, &l, 0.99);
        assert_eq!((m.precision, m.f1, m.recall), (None, Some(0.0), Some(0.0)));
    }

    #[test]
    fn nan_scores_rank_last_and_are_never_flagged() {
        let s = [f32::NAN, 0.9, 0.2];
        let l = b(&[1, 1, 0]);
        // Ranking: 0.9(+), 0.2(−), NaN(+): AP = 1/2·1 + 1/2·2/3.
        assert!(close(auprc(&s, &l).unwrap(), 0.5 + 1.0 / 3.0));
        assert!(close(roc_auc(&s, &l).unwrap(), 0.5));
        assert_eq!(best_f1(&s, &l).unwrap().1, 0.9);
        assert_eq!(at_threshold(&s, &l, f32::NEG_INFINITY).tp, 1);
    }
}
