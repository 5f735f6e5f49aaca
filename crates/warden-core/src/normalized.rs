use std::ops::Range;

/// Text being normalized, together with where each of its characters came from.
///
/// Every later span (a matched rule, a key token, a chunk to redact) is found in normalized
/// text but must point back at the user's original bytes, so normalization never loses the
/// alignment. `alignment[i]` is the byte range in the *original* text that produced the
/// `i`-th character of [`Normalized::text`]. Characters produced by one original character
/// (NFKC `ﬁ` → `fi`) share its range; a character produced from several (a collapsed run,
/// a letter-spaced word) spans all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    original_len: usize,
    text: String,
    alignment: Vec<Range<usize>>,
}

impl Normalized {
    /// The identity normalization of `original`.
    pub fn new(original: &str) -> Self {
        let alignment = original.char_indices().map(|(i, c)| i..i + c.len_utf8()).collect();
        Self { original_len: original.len(), text: original.to_owned(), alignment }
    }

    /// Builds a value from parts. `alignment` must have one entry per char of `text`,
    /// each a range inside `0..original_len`.
    pub fn from_parts(original_len: usize, text: String, alignment: Vec<Range<usize>>) -> Self {
        debug_assert_eq!(text.chars().count(), alignment.len());
        debug_assert!(alignment.iter().all(|r| r.start <= r.end && r.end <= original_len));
        Self { original_len, text, alignment }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn original_len(&self) -> usize {
        self.original_len
    }

    /// One original byte range per char of [`Self::text`].
    pub fn alignment(&self) -> &[Range<usize>] {
        &self.alignment
    }

    pub fn into_parts(self) -> (usize, String, Vec<Range<usize>>) {
        (self.original_len, self.text, self.alignment)
    }

    /// Maps a byte range of the normalized text to the smallest original byte range that
    /// covers every character it contains. An empty range maps to an empty range at the
    /// original position of the next character (or the end of the original).
    pub fn original_span(&self, normalized: Range<usize>) -> Range<usize> {
        let mut lo = usize::MAX;
        let mut hi = 0;
        let mut next_start = None;
        for ((i, _), r) in self.text.char_indices().zip(&self.alignment) {
            if i >= normalized.end {
                next_start.get_or_insert(r.start);
                break;
            }
            if i >= normalized.start {
                lo = lo.min(r.start);
                hi = hi.max(r.end);
            }
        }
        if lo == usize::MAX {
            let p = next_start.unwrap_or(self.original_len);
            p..p
        } else {
            lo..hi
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_alignment_round_trips() {
        let n = Normalized::new("héllo");
        assert_eq!(n.alignment().len(), 5);
        assert_eq!(n.original_span(1..3), 1..3);
        assert_eq!(n.original_span(0..n.text().len()), 0..6);
    }

    #[test]
    fn empty_span_points_at_next_char() {
        let n = Normalized::new("abc");
        assert_eq!(n.original_span(1..1), 1..1);
        assert_eq!(n.original_span(3..3), 3..3);
    }
}
