//! Label quality control for Warden (paper section 3.2, "Labeling and Quality Control",
//! and section 7.2, "Annotator Viewpoints and Disagreement").
//!
//! Every function here takes plain data (row indices, `Option<bool>` labels, scores,
//! annotator ids) and does no I/O, so a labeling store, a CLI or an experiment can call it
//! directly. Indices returned always refer to the caller's slices.
//!
//! * [`agreement`] — inter-annotator agreement per category: Krippendorff's alpha, nominal
//!   metric, with missing data (`unsure` is missing). Disagreement is measured, not hidden:
//!   section 7.2 argues it can be signal, so we report it rather than vote it away.
//! * [`audit`] — the paper's audit: per category, 10 rows labelled undesired plus 10 rows the
//!   model scores above 0.5, then precision / recall / F1 of the annotators' labels against
//!   the auditor's, overall and per annotator (accuracy is useless when positives are rare).
//! * [`hunt`] — the cross-validation mislabel hunt: two halves, a warden-fast model per half,
//!   out-of-fold scores, disagreement flags, a random audit portion of the flags, and the
//!   "more than 30% mislabelled → relabel every flag" rule.
//! * [`confident`] — a confident-learning baseline (Northcutt et al. 2021, cleanlab's
//!   `find_label_issues`) on the same out-of-fold scores, per category as a binary problem.
//! * [`experiment`] — inject known label flips into a clean set and measure how well the hunt
//!   and confident learning find them.

pub mod agreement;
pub mod audit;
pub mod confident;
mod error;
pub mod experiment;
pub mod hunt;
mod sampling;

pub use agreement::{
    agreement_per_category, krippendorff_alpha_nominal, AlphaResult, Annotation, CategoryAgreement,
    Vote,
};
pub use audit::{audit_f1, audit_sample, AuditF1, AuditItem, AuditSample, AuditSampleConfig};
pub use confident::{find_label_issues, ClMethod, ConfidentLearning};
pub use error::QcError;
pub use experiment::{
    inject_flips, run_noise_experiment, CategoryNoiseResult, MethodScore, NoiseExperimentConfig,
    NoiseExperimentReport,
};
pub use hunt::{
    audit_size, flag_disagreements, out_of_fold_scores, relabel_decision, sample_flags_for_audit,
    two_fold_assignment, FlagThresholds, HuntConfig, OutOfFold, RelabelDecision,
    MAX_CALIBRATION_SLOPE,
};
pub use sampling::sample_without_replacement;
pub use warden_eval::ThresholdMetrics;
