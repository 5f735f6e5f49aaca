//! The paper's audit procedure (section 3.2).
//!
//! Random audits waste effort when undesired content is rare, and annotator–auditor
//! *accuracy* is inflated by the many true negatives. Instead, per category:
//!
//! 1. [`audit_sample`]: pick 10 rows the annotators labelled undesired (they reveal false
//!    positives) and 10 rows the model scores above 0.5 (they reveal missed positives, an
//!    estimate of recall). Deterministic for a seed; a row is never picked twice; fewer
//!    rows when fewer exist.
//! 2. Auditors label the picked rows. [`audit_f1`] then scores the annotators' labels
//!    against the auditor's (ground truth): precision, recall and F1 with their counts,
//!    for the dataset label overall and for each annotator separately, so a category- or
//!    annotator-specific problem stands out and the annotator can be retrained.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warden_eval::ThresholdMetrics;

use crate::error::check_len;
use crate::sampling::sample_without_replacement;
use crate::QcError;

/// How many rows to audit per category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditSampleConfig {
    /// Rows labelled undesired (positive) to audit: 10 in the paper.
    pub labelled_positive: usize,
    /// Rows with model probability above `model_threshold` to audit: 10 in the paper.
    pub model_positive: usize,
    /// Strictly greater than this is "model positive": 0.5 in the paper.
    pub model_threshold: f32,
    pub seed: u64,
}

impl Default for AuditSampleConfig {
    fn default() -> Self {
        Self {
            labelled_positive: 10,
            model_positive: 10,
            model_threshold: 0.5,
            seed: 32,
        }
    }
}

/// The rows picked for one category's audit (indices into the caller's rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditSample {
    pub category: usize,
    /// Rows labelled positive.
    pub labelled_positive: Vec<usize>,
    /// Rows scored above the threshold, excluding those already in `labelled_positive`.
    pub model_positive: Vec<usize>,
}

impl AuditSample {
    /// All picked rows, labelled-positive ones first; no duplicates.
    pub fn rows(&self) -> Vec<usize> {
        self.labelled_positive
            .iter()
            .chain(&self.model_positive)
            .copied()
            .collect()
    }
}

/// Picks one category's audit sample. `labels[r]` is row r's current (consensus) label
/// for the category (`None`: not labelled), `scores[r]` the model's probability (`None`:
/// not scored). `category` selects an independent random stream, so each category's sample
/// is stable on its own. A row both labelled positive and scored high can be picked only
/// once (it goes to the labelled-positive part, and the model part picks among the rest).
pub fn audit_sample(
    labels: &[Option<bool>],
    scores: &[Option<f32>],
    category: usize,
    cfg: &AuditSampleConfig,
) -> Result<AuditSample, QcError> {
    check_len("scores", labels.len(), scores.len())?;
    let positives: Vec<usize> = (0..labels.len())
        .filter(|&r| labels[r] == Some(true))
        .collect();
    let stream = 2 * category as u64;
    let mut labelled_positive =
        sample_without_replacement(&positives, cfg.labelled_positive, cfg.seed, stream);
    labelled_positive.sort_unstable();
    let chosen: std::collections::BTreeSet<usize> = labelled_positive.iter().copied().collect();
    let high: Vec<usize> = (0..scores.len())
        .filter(|&r| scores[r].is_some_and(|s| s > cfg.model_threshold) && !chosen.contains(&r))
        .collect();
    let mut model_positive =
        sample_without_replacement(&high, cfg.model_positive, cfg.seed, stream + 1);
    model_positive.sort_unstable();
    Ok(AuditSample {
        category,
        labelled_positive,
        model_positive,
    })
}

/// One audited row of one category: the auditor's label (ground truth), the row's current
/// dataset label, and each annotator's own label (`A` is the caller's annotator id;
/// annotators who were unsure or did not judge the row are simply left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditItem<A> {
    pub auditor: bool,
    /// The dataset's (consensus) label; `None` leaves the row out of the overall score.
    pub label: Option<bool>,
    pub annotators: Vec<(A, bool)>,
}

/// Annotator quality on one category's audit sample: precision, recall and F1 of labels
/// against the auditor's, with the confusion counts (`tn` and `fpr` are reported but
/// mean little on a sample built to contain positives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditF1<A: Ord> {
    /// The dataset label vs the auditor.
    pub overall: ThresholdMetrics,
    /// Each annotator's own labels vs the auditor, on the rows that annotator judged.
    pub per_annotator: BTreeMap<A, ThresholdMetrics>,
}

/// Scores one category's audited rows (see [`AuditItem`]).
pub fn audit_f1<A: Ord + Clone>(items: &[AuditItem<A>]) -> AuditF1<A> {
    let mut overall = [0usize; 4];
    let mut per: BTreeMap<A, [usize; 4]> = BTreeMap::new();
    let slot = |pred: bool, truth: bool| match (pred, truth) {
        (true, true) => 0,
        (true, false) => 1,
        (false, false) => 2,
        (false, true) => 3,
    };
    for it in items {
        if let Some(l) = it.label {
            overall[slot(l, it.auditor)] += 1;
        }
        for (a, l) in &it.annotators {
            per.entry(a.clone()).or_default()[slot(*l, it.auditor)] += 1;
        }
    }
    let m = |c: [usize; 4]| ThresholdMetrics::from_counts(c[0], c[1], c[2], c[3]);
    AuditF1 {
        overall: m(overall),
        per_annotator: per.into_iter().map(|(a, c)| (a, m(c))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> (Vec<Option<bool>>, Vec<Option<f32>>) {
        let labels = (0..n)
            .map(|r| if r % 7 == 0 { None } else { Some(r % 3 == 0) })
            .collect();
        let scores = (0..n)
            .map(|r| {
                if r % 11 == 0 {
                    None
                } else {
                    Some(((r * 37) % 100) as f32 / 100.0)
                }
            })
            .collect();
        (labels, scores)
    }

    #[test]
    fn sample_sizes_distinctness_and_determinism() {
        let (labels, scores) = data(500);
        let cfg = AuditSampleConfig::default();
        let s = audit_sample(&labels, &scores, 2, &cfg).unwrap();
        assert_eq!(s.labelled_positive.len(), 10);
        assert_eq!(s.model_positive.len(), 10);
        assert!(s.labelled_positive.iter().all(|&r| labels[r] == Some(true)));
        assert!(s.model_positive.iter().all(|&r| scores[r].unwrap() > 0.5));
        let mut rows = s.rows();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 20, "no row is picked twice");
        assert_eq!(s, audit_sample(&labels, &scores, 2, &cfg).unwrap());
        assert_ne!(
            s.rows(),
            audit_sample(&labels, &scores, 3, &cfg).unwrap().rows()
        );
        let other_seed = AuditSampleConfig {
            seed: 99,
            ..cfg.clone()
        };
        assert_ne!(
            s.rows(),
            audit_sample(&labels, &scores, 2, &other_seed)
                .unwrap()
                .rows()
        );
    }

    #[test]
    fn fewer_rows_when_fewer_exist_and_overlap_is_not_double_counted() {
        // 3 positives, all scored high; 2 more high-scored negatives; exactly 0.5 is not "above".
        let labels = vec![
            Some(true),
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            Some(false),
            None,
        ];
        let scores = vec![
            Some(0.9),
            Some(0.8),
            Some(0.7),
            Some(0.6),
            Some(0.55),
            Some(0.5),
            Some(0.99),
        ];
        let s = audit_sample(&labels, &scores, 0, &AuditSampleConfig::default()).unwrap();
        assert_eq!(s.labelled_positive, vec![0, 1, 2]);
        assert_eq!(s.model_positive, vec![3, 4, 6]);
        assert!(audit_sample(&labels, &scores[..3], 0, &AuditSampleConfig::default()).is_err());
    }

    #[test]
    fn f1_overall_and_per_annotator() {
        let it = |auditor, label, ann: Vec<(&'static str, bool)>| AuditItem {
            auditor,
            label,
            annotators: ann,
        };
        let items = vec![
            it(true, Some(true), vec![("ann", true), ("bob", false)]),
            it(true, Some(false), vec![("ann", true), ("bob", false)]),
            it(false, Some(true), vec![("ann", false), ("bob", true)]),
            it(false, Some(false), vec![("ann", false)]),
            it(true, None, vec![("bob", true)]),
        ];
        let r = audit_f1(&items);
        assert_eq!(
            (r.overall.tp, r.overall.fp, r.overall.tn, r.overall.fn_),
            (1, 1, 1, 1)
        );
        assert_eq!(r.overall.f1, Some(0.5));
        let ann = &r.per_annotator["ann"];
        assert_eq!((ann.tp, ann.fp, ann.tn, ann.fn_), (2, 0, 2, 0));
        assert_eq!(ann.f1, Some(1.0));
        let bob = &r.per_annotator["bob"];
        assert_eq!((bob.tp, bob.fp, bob.tn, bob.fn_), (1, 1, 0, 2));
        assert!((bob.f1.unwrap() - 2.0 / 5.0).abs() < 1e-12);
    }
}
