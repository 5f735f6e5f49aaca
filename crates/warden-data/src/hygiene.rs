//! Label hygiene applied at training time.
//!
//! Some sources carry a category only when it is positive (toxic-spans' hate and violence,
//! Gab's violence, ETHOS's harassment): they hold positives for it and no negatives. A head
//! then sees that category's positives mostly in one source's style and its negatives in
//! others', and can learn the style. `docs/encoder-tier.md` measures it: on the frozen
//! encoder, turning those labels into *unknown* lifts moderation-set `any` AUPRC from 0.418
//! to 0.661 (violence from 0.073 to 0.191). The fast tier loses violence recall the same way
//! (0.264 → 0.144), so it is an option, not a default.

use std::collections::BTreeMap;

use warden_core::{Label, Record};

/// The `(source, category index)` pairs that have at least one positive and no negative
/// among `rows` (a soft label counts as positive at 0.5 or more, as elsewhere).
pub fn positive_only_labels(rows: &[Record]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<(&str, usize), (usize, usize)> = BTreeMap::new();
    for r in rows {
        for (c, l) in r.labels.iter().enumerate() {
            if let Some(positive) = l.hard() {
                let e = counts.entry((r.source.as_str(), c)).or_default();
                if positive {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
    }
    counts.into_iter().filter(|(_, (p, n))| *p > 0 && *n == 0).map(|((s, c), _)| (s.to_string(), c)).collect()
}

/// Sets the given `(source, category)` labels to unknown; returns how many labels changed.
pub fn clear_labels(rows: &mut [Record], which: &[(String, usize)]) -> usize {
    let mut n = 0;
    for r in rows.iter_mut() {
        for (s, c) in which {
            if r.source == *s && r.labels.get(*c).is_some_and(|l| l.is_known()) {
                r.labels[*c] = Label::Unknown;
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Taxonomy;

    fn rec(source: &str, labels: &[(usize, Label)]) -> Record {
        let t = Taxonomy::builtin();
        let mut r = Record::new(format!("{source}:{}", labels.len()), "x", &t);
        r.source = source.into();
        for &(c, l) in labels {
            r.labels[c] = l;
        }
        r
    }

    #[test]
    fn finds_and_clears_only_positive_only_columns() {
        let mut rows = vec![
            rec("a", &[(0, Label::Positive), (1, Label::Positive)]),
            rec("a", &[(0, Label::Positive), (1, Label::Negative)]),
            rec("b", &[(0, Label::Soft(0.7))]),
            rec("b", &[(0, Label::Soft(0.9)), (2, Label::Negative)]),
            rec("c", &[(2, Label::Negative)]),
        ];
        let which = positive_only_labels(&rows);
        assert_eq!(which, vec![("a".to_string(), 0), ("b".to_string(), 0)]);
        assert_eq!(clear_labels(&mut rows, &which), 4);
        assert!(!rows[0].labels[0].is_known() && rows[0].labels[1].is_known());
        assert!(rows[1].labels[1].is_known());
        assert!(!rows[3].labels[0].is_known() && rows[3].labels[2].is_known());
        assert!(positive_only_labels(&rows).is_empty());
    }
}
