//! The contracts between pipeline stages.

use crate::{Normalized, Result, Taxonomy};

/// One stage of text normalization. A stage rewrites [`Normalized`] in place and keeps its
/// alignment to the original text correct; a sequence of stages is itself a `Normalizer`.
pub trait Normalizer: Send + Sync {
    fn normalize(&self, text: &mut Normalized);

    /// Convenience: normalizes a fresh copy of `original`.
    fn normalize_str(&self, original: &str) -> Normalized {
        let mut n = Normalized::new(original);
        self.normalize(&mut n);
        n
    }
}

/// Calibrated per-category probabilities for one text, in taxonomy order.
pub type Scores = Vec<f32>;

/// A multi-label classifier: a batch of texts in, one calibrated probability per category
/// per text out. Scores respect the taxonomy's hierarchy (a parent is never below its
/// child). A cascade of classifiers is itself a `Classifier`.
pub trait Classifier: Send + Sync {
    fn taxonomy(&self) -> &Taxonomy;

    /// A short identifier reported in responses and evaluation output.
    fn name(&self) -> &str;

    fn predict_batch(&self, texts: &[&str]) -> Result<Vec<Scores>>;

    fn predict(&self, text: &str) -> Result<Scores> {
        Ok(self.predict_batch(&[text])?.pop().expect("one score vector per text"))
    }
}

/// What a policy decided for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// True when any category is flagged.
    pub flagged: bool,
    /// One flag per taxonomy category.
    pub categories: Vec<bool>,
}

/// Turns scores into a decision (per-category thresholds, in the simplest case).
pub trait Policy: Send + Sync {
    fn decide(&self, scores: &[f32]) -> Decision;
}
