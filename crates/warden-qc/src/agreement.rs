//! Inter-annotator agreement: Krippendorff's alpha with the nominal metric, per category.
//!
//! A *unit* is one sample × one category; its *values* are the labels the annotators who
//! judged it gave (positive / negative). `unsure` and "not annotated" are missing values.
//! Following Krippendorff (2011, "Computing Krippendorff's alpha-reliability"), only
//! *pairable* units — with at least two values — enter the coincidence matrix; each
//! contributes its `m_u·(m_u−1)` ordered value pairs weighted by `1/(m_u−1)`, so every
//! pairable value counts once. With `n` pairable values, `n_c` of them equal to `c`:
//!
//! ```text
//! D_o = (1/n) · Σ_u (m_u² − Σ_c n_uc²) / (m_u − 1)      observed disagreement
//! D_e = (n² − Σ_c n_c²) / (n · (n − 1))                 expected disagreement
//! α   = 1 − D_o / D_e
//! ```
//!
//! α is 1 for perfect agreement, 0 for agreement at chance level, negative for systematic
//! disagreement. It is undefined (`None`) without pairable units, or when every pairable
//! value is the same (`D_e = 0`, nothing to disagree about — common for a rare category on
//! a small batch; [`AlphaResult::pairwise_agreement`] is still reported then).
//!
//! Why alpha and not Cohen's kappa or raw agreement: labeling batches have varying numbers
//! of annotators per sample and missing judgements, and undesired content is rare, so raw
//! agreement is dominated by easy negatives (the same argument the paper makes against
//! accuracy in section 3.2). Section 7.2 notes that disagreement can be signal rather than
//! noise; a low alpha is a prompt to look at the category's instructions and at *who*
//! disagrees, not to majority-vote it away.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One annotator's judgement of one category on one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    Positive,
    Negative,
    /// The annotator could not decide: treated as a missing value.
    Unsure,
}

impl Vote {
    /// `Some(true)` / `Some(false)`, `None` for unsure.
    pub fn value(self) -> Option<bool> {
        match self {
            Vote::Positive => Some(true),
            Vote::Negative => Some(false),
            Vote::Unsure => None,
        }
    }
}

/// One row of a labeling store: `annotator` said `vote` about `category` of `item`.
/// `I` and `A` are the caller's ids (row ids, names...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation<I, A> {
    pub item: I,
    pub annotator: A,
    /// Taxonomy index of the category.
    pub category: usize,
    pub vote: Vote,
}

/// Krippendorff's alpha and the quantities behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaResult {
    /// `None` when undefined (no pairable units, or no variation at all).
    pub alpha: Option<f64>,
    /// Units with at least two values.
    pub pairable_units: usize,
    /// Values in pairable units (`n`).
    pub pairable_values: usize,
    /// Units with exactly one value (not pairable, ignored).
    pub single_value_units: usize,
    pub observed_disagreement: Option<f64>,
    pub expected_disagreement: Option<f64>,
    /// Fraction of agreeing ordered value pairs within units, weighted like the coincidence
    /// matrix (`1 − D_o`); `None` without pairable units.
    pub pairwise_agreement: Option<f64>,
}

/// Krippendorff's alpha, nominal metric. Each unit lists the values it received, missing
/// values left out (so a unit's length is its number of values). Units with fewer than two
/// values are not pairable and are ignored.
pub fn krippendorff_alpha_nominal<V: Ord>(units: &[Vec<V>]) -> AlphaResult {
    let mut totals: BTreeMap<&V, f64> = BTreeMap::new();
    let (mut n, mut pairable_units, mut single) = (0.0f64, 0usize, 0usize);
    let mut disagreement_sum = 0.0f64; // Σ_u (m_u² − Σ n_uc²)/(m_u − 1)
    for unit in units {
        let m = unit.len();
        if m < 2 {
            single += (m == 1) as usize;
            continue;
        }
        let mut counts: BTreeMap<&V, f64> = BTreeMap::new();
        for v in unit {
            *counts.entry(v).or_default() += 1.0;
        }
        let mf = m as f64;
        let sq: f64 = counts.values().map(|c| c * c).sum();
        disagreement_sum += (mf * mf - sq) / (mf - 1.0);
        for (v, c) in counts {
            *totals.entry(v).or_default() += c;
        }
        n += mf;
        pairable_units += 1;
    }
    if pairable_units == 0 {
        return AlphaResult {
            alpha: None,
            pairable_units: 0,
            pairable_values: 0,
            single_value_units: single,
            observed_disagreement: None,
            expected_disagreement: None,
            pairwise_agreement: None,
        };
    }
    let d_o = disagreement_sum / n;
    let sq_tot: f64 = totals.values().map(|c| c * c).sum();
    let d_e = (n * n - sq_tot) / (n * (n - 1.0));
    AlphaResult {
        alpha: (d_e > 0.0).then(|| 1.0 - d_o / d_e),
        pairable_units,
        pairable_values: n as usize,
        single_value_units: single,
        observed_disagreement: Some(d_o),
        expected_disagreement: Some(d_e),
        pairwise_agreement: Some(1.0 - d_o),
    }
}

/// Agreement on one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryAgreement {
    pub category: usize,
    /// Items with at least one judgement (any vote, unsure included) for this category.
    pub items: usize,
    pub positive_votes: usize,
    pub negative_votes: usize,
    pub unsure_votes: usize,
    pub alpha: AlphaResult,
}

/// Krippendorff's alpha (nominal) per category, `n_categories` entries in category order.
///
/// Annotations are grouped into units by `(item, category)`. When the same annotator
/// judged the same unit more than once, the last annotation in input order counts (a
/// correction replaces the earlier judgement). Annotations whose category is
/// `>= n_categories` are ignored.
pub fn agreement_per_category<I: Ord, A: Ord>(
    annotations: &[Annotation<I, A>],
    n_categories: usize,
) -> Vec<CategoryAgreement> {
    // (category, item) -> annotator -> vote, last one wins.
    let mut units: BTreeMap<(usize, &I), BTreeMap<&A, Vote>> = BTreeMap::new();
    for a in annotations.iter().filter(|a| a.category < n_categories) {
        units
            .entry((a.category, &a.item))
            .or_default()
            .insert(&a.annotator, a.vote);
    }
    let mut per_cat: Vec<(usize, [usize; 3], Vec<Vec<bool>>)> =
        (0..n_categories).map(|_| (0, [0; 3], Vec::new())).collect();
    for ((c, _), votes) in &units {
        let entry = &mut per_cat[*c];
        entry.0 += 1;
        let mut values = Vec::with_capacity(votes.len());
        for v in votes.values() {
            match v {
                Vote::Positive => entry.1[0] += 1,
                Vote::Negative => entry.1[1] += 1,
                Vote::Unsure => entry.1[2] += 1,
            }
            if let Some(b) = v.value() {
                values.push(b);
            }
        }
        entry.2.push(values);
    }
    per_cat
        .into_iter()
        .enumerate()
        .map(
            |(c, (items, [pos, neg, unsure], values))| CategoryAgreement {
                category: c,
                items,
                positive_votes: pos,
                negative_votes: neg,
                unsure_votes: unsure,
                alpha: krippendorff_alpha_nominal(&values),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
    /// observers, twelve units, missing values; published nominal alpha 0.743.
    #[test]
    fn canonical_four_coder_example_with_missing_data() {
        let m = None;
        let a = [
            Some(1),
            Some(2),
            Some(3),
            Some(3),
            Some(2),
            Some(1),
            Some(4),
            Some(1),
            Some(2),
            m,
            m,
            m,
        ];
        let b = [
            Some(1),
            Some(2),
            Some(3),
            Some(3),
            Some(2),
            Some(2),
            Some(4),
            Some(1),
            Some(2),
            Some(5),
            m,
            Some(3),
        ];
        let c = [
            m,
            Some(3),
            Some(3),
            Some(3),
            Some(2),
            Some(3),
            Some(4),
            Some(2),
            Some(2),
            Some(5),
            Some(1),
            m,
        ];
        let d = [
            Some(1),
            Some(2),
            Some(3),
            Some(3),
            Some(2),
            Some(4),
            Some(4),
            Some(1),
            Some(2),
            Some(5),
            Some(1),
            m,
        ];
        let units: Vec<Vec<i32>> = (0..12)
            .map(|u| [a[u], b[u], c[u], d[u]].into_iter().flatten().collect())
            .collect();
        let r = krippendorff_alpha_nominal(&units);
        assert_eq!(r.pairable_units, 11, "unit 12 has a single value");
        assert_eq!(r.single_value_units, 1);
        assert_eq!(r.pairable_values, 40);
        let alpha = r.alpha.unwrap();
        assert!((alpha - 0.743).abs() < 0.0005, "alpha = {alpha}");
    }

    /// Krippendorff (2011), section A: two observers, ten units, binary data, alpha 0.095.
    #[test]
    fn canonical_binary_two_coder_example() {
        let a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0];
        let b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
        let units: Vec<Vec<i32>> = (0..10).map(|u| vec![a[u], b[u]]).collect();
        let alpha = krippendorff_alpha_nominal(&units).alpha.unwrap();
        assert!((alpha - 0.095).abs() < 0.0005, "alpha = {alpha}");
        // Exact value: 1 − 19·8 / (2·14·6).
        assert!((alpha - (1.0 - 152.0 / 168.0)).abs() < 1e-12);
    }

    #[test]
    fn perfect_agreement_is_one_and_edge_cases_are_none() {
        let units = vec![
            vec![true, true, true],
            vec![false, false],
            vec![true, true],
            vec![false],
        ];
        let r = krippendorff_alpha_nominal(&units);
        assert_eq!(r.alpha, Some(1.0));
        assert_eq!(r.pairable_units, 3);
        // Only single-value units: nothing pairable.
        let r = krippendorff_alpha_nominal(&[vec![true], vec![false], vec![]]);
        assert_eq!(r.alpha, None);
        assert_eq!(r.pairable_units, 0);
        assert_eq!(r.single_value_units, 2);
        assert!(krippendorff_alpha_nominal::<bool>(&[]).alpha.is_none());
        // No variation at all: undefined, but pairwise agreement is 1.
        let r = krippendorff_alpha_nominal(&[vec![false, false], vec![false, false, false]]);
        assert_eq!(r.alpha, None);
        assert_eq!(r.pairwise_agreement, Some(1.0));
        // Systematic disagreement is negative.
        let r = krippendorff_alpha_nominal(&[vec![true, false], vec![false, true]]);
        assert!(r.alpha.unwrap() < 0.0);
    }

    #[test]
    fn per_category_treats_unsure_as_missing_and_last_vote_wins() {
        use Vote::*;
        let ann = |item: u32, who: &'static str, category: usize, vote: Vote| Annotation {
            item,
            annotator: who,
            category,
            vote,
        };
        let rows = vec![
            // category 0: perfect agreement with variation
            ann(1, "a", 0, Positive),
            ann(1, "b", 0, Positive),
            ann(2, "a", 0, Negative),
            ann(2, "b", 0, Negative),
            // unsure leaves item 3 with a single value: not pairable
            ann(3, "a", 0, Positive),
            ann(3, "b", 0, Unsure),
            // category 1: b first disagreed on item 1, then corrected to agree
            ann(1, "a", 1, Positive),
            ann(1, "b", 1, Negative),
            ann(2, "a", 1, Negative),
            ann(2, "b", 1, Negative),
            ann(1, "b", 1, Positive),
            // out-of-range category ignored
            ann(1, "a", 9, Positive),
        ];
        let r = agreement_per_category(&rows, 3);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].items, 3);
        assert_eq!(r[0].unsure_votes, 1);
        assert_eq!(r[0].alpha.pairable_units, 2);
        assert_eq!(r[0].alpha.single_value_units, 1);
        assert_eq!(r[0].alpha.alpha, Some(1.0));
        assert_eq!(r[1].alpha.alpha, Some(1.0));
        assert_eq!(r[1].positive_votes, 2);
        assert_eq!(r[2].items, 0);
        assert_eq!(r[2].alpha.alpha, None);
    }
}
