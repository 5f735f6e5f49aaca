//! Active learning for Warden (the paper's section 3.1).
//!
//! Given a pool of unlabelled texts scored by the current model, [`select`] picks the
//! batch that is most worth sending to annotators:
//!
//! 1. Parallel pipelines ([`Pipeline`]): **random** sampling (keeps part of the data faithful
//!    to the traffic distribution), **above threshold** (random among samples whose score
//!    for a category reaches its threshold: likely undesired), **uncertainty** (per
//!    category, the samples whose score is closest to 0.5) and, beyond the paper,
//!    **medium certainty** (random among samples whose score lies in a band, default
//!    [0.3, 0.7]). The batch is split between them by [`Fractions`]; a per-category
//!    pipeline's share is split evenly over the categories that have candidates.
//! 2. Each pipeline over-samples its quota (default 3×) into one aggregate, which is
//!    de-duplicated (same id, or same text after lower-casing and collapsing whitespace)
//!    and, optionally, stripped of near-duplicates (character 5-shingle Jaccard above a
//!    threshold, found with MinHash LSH): a rejected candidate is replaced by the next one
//!    of the same pipeline and category.
//! 3. The aggregate is re-weighted by a metadata field ([`PoolItem::group`]): every member
//!    of a group of `n` candidates weighs `1/sqrt(n)`, so a group's total sampling weight is
//!    proportional to the square root of its count — a group 100× larger is ~10× more
//!    represented, not 100×.
//! 4. Each pipeline's quota is drawn from its candidates by weighted sampling without
//!    replacement (Efraimidis–Spirakis keys).
//!
//! Everything is deterministic for a given [`SelectConfig::seed`]. The crate also has the
//! small statistics ([`positive_rates`]) and SVG charts ([`plot`]) used by the CLI's
//! active-learning simulation (the paper's Table 4 and Figure 2).

mod neardup;
pub mod plot;
mod select;

pub use neardup::{jaccard, normalize_for_dedup, shingles, text_key, NearDupIndex};
pub use select::{
    select, Fractions, Pipeline, PoolItem, SelectConfig, Selection, DEFAULT_DIVERSITY_JACCARD,
};

use warden_core::Label;

#[derive(Debug, thiserror::Error)]
pub enum AlError {
    #[error("invalid active-learning configuration: {0}")]
    Config(String),
    #[error("pool item {index} has {got} scores, the taxonomy has {expected} categories")]
    ScoreWidth { index: usize, got: usize, expected: usize },
}

/// Positive and known counts for one category (or `any`) among some labelled rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RateCount {
    pub positives: usize,
    pub known: usize,
}

impl RateCount {
    /// Positives / known rows; `None` when no row is known.
    pub fn rate(&self) -> Option<f64> {
        (self.known > 0).then(|| self.positives as f64 / self.known as f64)
    }
}

/// Per category (taxonomy order), then `any` last: how many rows have a known label and how
/// many of those are positive (hard label ≥ 0.5). `any` counts rows with at least one known
/// label, positive when any known label is positive. Unknown labels are never negatives.
pub fn positive_rates<L: AsRef<[Label]>>(n_categories: usize, rows: &[L]) -> Vec<RateCount> {
    let mut out = vec![RateCount::default(); n_categories + 1];
    for r in rows {
        let labels = r.as_ref();
        let mut any_known = false;
        let mut any_pos = false;
        for (c, l) in labels.iter().enumerate().take(n_categories) {
            if let Some(h) = l.hard() {
                out[c].known += 1;
                out[c].positives += h as usize;
                any_known = true;
                any_pos |= h;
            }
        }
        if any_known {
            out[n_categories].known += 1;
            out[n_categories].positives += any_pos as usize;
        }
    }
    out
}

#[cfg(test)]
mod tests;
