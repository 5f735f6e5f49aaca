//! Text normalisation for de-duplication, and near-duplicate detection with character
//! shingles, MinHash and banded LSH (candidates are verified with the exact Jaccard
//! similarity of their shingle sets, so LSH only saves time, it never decides).

use std::collections::HashMap;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Lower-cased, whitespace collapsed to single spaces, trimmed.
pub fn normalize_for_dedup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Hash of [`normalize_for_dedup`]: equal for texts that differ only in case or spacing.
pub fn text_key(text: &str) -> u64 {
    xxh3_64(normalize_for_dedup(text).as_bytes())
}

/// Characters per shingle.
pub const SHINGLE_CHARS: usize = 5;
const NUM_HASHES: usize = 128;

/// Sorted, distinct hashes of the character 5-grams of the normalised text (the whole
/// text when it is shorter than that).
pub fn shingles(text: &str) -> Vec<u64> {
    let norm = normalize_for_dedup(text);
    let idx: Vec<usize> = norm.char_indices().map(|(i, _)| i).chain(std::iter::once(norm.len())).collect();
    let n_chars = idx.len() - 1;
    let mut out = Vec::new();
    if n_chars <= SHINGLE_CHARS {
        out.push(xxh3_64(norm.as_bytes()));
    } else {
        for s in 0..=(n_chars - SHINGLE_CHARS) {
            out.push(xxh3_64(&norm.as_bytes()[idx[s]..idx[s + SHINGLE_CHARS]]));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Exact Jaccard similarity of two sorted, distinct hash sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// A growing set of texts that answers "is this text more than `threshold` Jaccard-similar
/// to one already in the set?".
pub struct NearDupIndex {
    threshold: f64,
    rows_per_band: usize,
    bands: Vec<HashMap<u64, Vec<usize>>>,
    members: Vec<Vec<u64>>,
}

impl NearDupIndex {
    /// `threshold` is the Jaccard similarity above which two texts are near-duplicates.
    pub fn new(threshold: f64) -> Self {
        // Fewer rows per band for lower thresholds, so that a pair at the threshold is a
        // candidate with probability > 0.98 (e.g. 0.8 → 4 rows: 1 - (1 - 0.8^4)^32).
        let rows_per_band = if threshold >= 0.7 {
            4
        } else if threshold >= 0.45 {
            2
        } else {
            1
        };
        let n_bands = NUM_HASHES / rows_per_band;
        NearDupIndex { threshold, rows_per_band, bands: vec![HashMap::new(); n_bands], members: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn band_keys(&self, sh: &[u64]) -> Vec<u64> {
        let mut sig = [u64::MAX; NUM_HASHES];
        for &s in sh {
            for (k, m) in sig.iter_mut().enumerate() {
                let h = xxh3_64_with_seed(&s.to_le_bytes(), k as u64);
                if h < *m {
                    *m = h;
                }
            }
        }
        sig.chunks(self.rows_per_band)
            .enumerate()
            .map(|(b, rows)| {
                let mut bytes = Vec::with_capacity(8 * (rows.len() + 1));
                bytes.extend_from_slice(&(b as u64).to_le_bytes());
                for r in rows {
                    bytes.extend_from_slice(&r.to_le_bytes());
                }
                xxh3_64(&bytes)
            })
            .collect()
    }

    /// The largest similarity above the threshold to a member, if any.
    fn similar(&self, sh: &[u64], keys: &[u64]) -> Option<f64> {
        let mut seen: Vec<usize> = Vec::new();
        for (b, k) in keys.iter().enumerate() {
            if let Some(ids) = self.bands[b].get(k) {
                seen.extend_from_slice(ids);
            }
        }
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().map(|m| jaccard(sh, &self.members[m])).filter(|&j| j > self.threshold).reduce(f64::max)
    }

    /// Adds `text` unless it is a near-duplicate of a member; returns whether it was added.
    pub fn insert_if_novel(&mut self, text: &str) -> bool {
        let sh = shingles(text);
        let keys = self.band_keys(&sh);
        if self.similar(&sh, &keys).is_some() {
            return false;
        }
        let id = self.members.len();
        for (b, k) in keys.into_iter().enumerate() {
            self.bands[b].entry(k).or_default().push(id);
        }
        self.members.push(sh);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_and_spacing() {
        assert_eq!(normalize_for_dedup("  Hello \n\tWORLD  "), "hello world");
        assert_eq!(text_key("Hello World"), text_key("hello   world "));
        assert_ne!(text_key("hello world"), text_key("hello worlds"));
    }

    #[test]
    fn jaccard_of_shingles() {
        let a = shingles("the quick brown fox jumps over the lazy dog");
        assert_eq!(jaccard(&a, &a), 1.0);
        let b = shingles("completely unrelated sentence about databases");
        assert!(jaccard(&a, &b) < 0.1);
        assert_eq!(shingles("hi").len(), 1);
        assert_eq!(shingles("").len(), 1);
    }

    #[test]
    fn index_rejects_near_duplicates_only() {
        let mut ix = NearDupIndex::new(0.8);
        let base = "I really think that this whole thread is full of people who never read the article at all";
        assert!(ix.insert_if_novel(base));
        // One word changed at the end: Jaccard well above 0.8.
        assert!(!ix.insert_if_novel(&format!("{base}!")));
        assert!(!ix.insert_if_novel(&base.to_uppercase()));
        assert!(ix.insert_if_novel("Totally different text about the weather in Lisbon this week"));
        assert_eq!(ix.len(), 2);
        let mut strict = NearDupIndex::new(0.3);
        assert!(strict.insert_if_novel(base));
        assert!(!strict.insert_if_novel("I really think that this whole thread is full of people who never read it"));
    }
}
