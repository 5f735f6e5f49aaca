//! Evaluation for Warden: metrics, JSON / Markdown reports and precision–recall plots.
//!
//! Warden is multi-label: every category is its own binary problem, evaluated only on the
//! rows whose label for it is known ([`warden_core::Label::hard`] is `Some`; soft labels
//! count as positive at ≥ 0.5). A dataset that does not annotate a category never
//! contributes negatives to it.
//!
//! # Metrics
//!
//! * **AUPRC** ([`auprc`]) — average precision, `Σ_k (R_k − R_{k−1}) · P_k` over distinct
//!   score thresholds from high to low, identical to sklearn's `average_precision_score`
//!   (equal scores are one threshold). It summarises the whole precision–recall trade-off
//!   independently of where the policy puts its threshold.
//! * **ROC-AUC** ([`roc_auc`]) — the chance that a random positive outscores a random
//!   negative (ties count ½). Reported for comparison with other work.
//! * **Best F1** ([`best_f1`]) — the highest F1 any single threshold reaches, and that
//!   threshold: an upper bound for threshold tuning.
//! * **At the policy threshold** ([`at_threshold`]) — confusion counts tp / fp / tn / fn
//!   and precision, recall, F1 and false-positive rate when `score >= threshold` is
//!   flagged: what users of the shipped policy actually get.
//!
//! AUPRC is the headline number. Undesired content is rare (often well under 1% of real
//! traffic, a few percent in evaluation sets), and ROC-AUC is dominated by the huge pool of
//! easy negatives: a model can score 0.98 ROC-AUC while half of what it flags is benign.
//! Precision is measured against the positives, so AUPRC moves when false positives among
//! the few flagged texts move — which is what moderators feel. Compare AUPRCs only across
//! sets with similar prevalence (a random scorer's AUPRC is the prevalence).
//!
//! A metric is `None` (JSON `null`) when undefined: AUPRC, best F1 and recall without
//! positives; ROC-AUC without both classes; precision when nothing is flagged; FPR without
//! negatives. Every ranking metric costs one O(n log n) sort per category.
//!
//! # `any`
//!
//! `any` asks "is this text undesired at all?". A row is positive when any known label is
//! positive, negative when some label is known and none is positive, and left out when no
//! label is known. Its ranking score is the maximum category score; its precision, recall,
//! F1 and FPR are those of the whole policy — flagged when any category reaches its own
//! threshold — see [`EvalReport::any`].
//!
//! # Output
//!
//! [`evaluate`] returns an [`EvalReport`] that serializes to
//! `{"model": ..., "rows": N, "categories": {"S": {...}, ...}, "any": {...}}` (categories
//! keyed by code, in taxonomy order) and renders as Markdown with
//! [`EvalReport::to_markdown`]. [`evaluate_by_group`] gives one report per dataset source.
//! [`write_pr_curves_svg`] writes one precision–recall plot per category plus `any`.

mod error;
mod metrics;
mod report;
mod svg;

pub use error::EvalError;
pub use metrics::{at_threshold, auprc, best_f1, pr_curve, roc_auc, PrCurve, ThresholdMetrics};
pub use report::{
    evaluate, evaluate_by_group, evaluate_records, try_evaluate, try_evaluate_by_group,
    CategoryEntry, CategoryReport, EvalReport, ANY,
};
pub use svg::{pr_curve_svg, safe_file_stem, write_pr_curves_svg, OperatingPoint};
