//! Examples of removals: the offending span with a little context, cut on character
//! boundaries and bounded in size.

use serde::{Deserialize, Serialize};

use crate::types::{Action, DocAttributes, Layer, Reason, Span};

/// Bytes of context kept on each side of the offending span (at most; cuts fall on
/// character boundaries, so a little less may be kept).
pub const CONTEXT_BYTES: usize = 200;
/// The offending span itself is truncated to at most this many bytes.
pub const MAX_SPAN_BYTES: usize = 300;
/// Ids, sources and details of examples are truncated to at most this many bytes.
pub const MAX_FIELD_BYTES: usize = 200;

/// One removed document, as shown in the report: where it came from, which safeguard fired,
/// and the offending span with its context. The text fields come from untrusted documents
/// and are escaped by the renderers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The document id (truncated to [`MAX_FIELD_BYTES`]).
    pub id: String,
    /// 1-based line (or row) in its input file.
    pub line: u64,
    /// The document's source, if any (truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What happened to the document.
    pub action: Action,
    /// The safeguard of the reason shown.
    pub layer: Layer,
    /// The score that passed (classifier layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The threshold it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// The offending span in the original text (as recorded; clamped to the text for the
    /// excerpt). `None` for a domain block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// The matched term (rules) or the blocked host (domain), truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Up to [`CONTEXT_BYTES`] bytes of text before the span.
    pub before: String,
    /// The span's text, truncated to [`MAX_SPAN_BYTES`] bytes.
    pub matched: String,
    /// Up to [`CONTEXT_BYTES`] bytes of text after the span.
    pub after: String,
    /// True when `before` does not reach the start of the text.
    #[serde(default)]
    pub cut_before: bool,
    /// True when `matched` was truncated.
    #[serde(default)]
    pub cut_span: bool,
    /// True when `after` does not reach the end of the text.
    #[serde(default)]
    pub cut_after: bool,
}

impl Example {
    /// The example for `reason` of `doc`, with the excerpt taken from `text` (the original
    /// document text the reason's span indexes into). Spans that do not fit the text (out of
    /// range, reversed, or not on character boundaries) are clamped, never a panic.
    pub fn capture(doc: &DocAttributes, reason: &Reason, text: &str) -> Example {
        let mut ex = Example {
            id: truncate(&doc.id, MAX_FIELD_BYTES).to_owned(),
            line: doc.line,
            source: doc
                .source
                .as_deref()
                .map(|s| truncate(s, MAX_FIELD_BYTES).to_owned()),
            action: doc.action,
            layer: reason.layer,
            score: reason.score.filter(|s| s.is_finite()),
            threshold: reason.threshold.filter(|s| s.is_finite()),
            span: reason.span,
            detail: reason
                .detail
                .as_deref()
                .map(|s| truncate(s, MAX_FIELD_BYTES).to_owned()),
            before: String::new(),
            matched: String::new(),
            after: String::new(),
            cut_before: false,
            cut_span: false,
            cut_after: false,
        };
        if let Some(span) = reason.span {
            let (before, matched, after) = excerpt(text, span);
            ex.before = before.text.to_owned();
            ex.cut_before = before.cut;
            ex.matched = matched.text.to_owned();
            ex.cut_span = matched.cut;
            ex.after = after.text.to_owned();
            ex.cut_after = after.cut;
        }
        ex
    }
}

/// A piece of an excerpt and whether something was cut off it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    pub text: &'a str,
    pub cut: bool,
}

/// The largest character boundary `<= i` (clamped to the text).
pub(crate) fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest character boundary `>= i` (clamped to the text).
pub(crate) fn ceil_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    &s[..floor_boundary(s, max)]
}

/// Splits `text` around `span` into (context before, span, context after), each bounded:
/// at most [`CONTEXT_BYTES`] before and after, at most [`MAX_SPAN_BYTES`] of the span.
pub(crate) fn excerpt(text: &str, span: Span) -> (Piece<'_>, Piece<'_>, Piece<'_>) {
    // Clamp the recorded span to the text, on character boundaries, start <= end.
    let start = floor_boundary(text, span.start);
    let end = floor_boundary(text, span.end.max(start)).max(start);
    let lo = ceil_boundary(text, start.saturating_sub(CONTEXT_BYTES)).min(start);
    let span_end = if end - start > MAX_SPAN_BYTES {
        floor_boundary(text, start + MAX_SPAN_BYTES)
    } else {
        end
    };
    let hi = floor_boundary(text, end.saturating_add(CONTEXT_BYTES)).max(end);
    (
        Piece {
            text: &text[lo..start],
            cut: lo > 0,
        },
        Piece {
            text: &text[start..span_end],
            cut: span_end < end,
        },
        Piece {
            text: &text[end..hi],
            cut: hi < text.len(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn excerpt_marks_and_bounds() {
        let text = format!("{}BAD{}", "a".repeat(500), "b".repeat(500));
        let (b, m, a) = excerpt(&text, Span::new(500, 503));
        assert_eq!(m.text, "BAD");
        assert!(!m.cut);
        assert_eq!(b.text.len(), CONTEXT_BYTES);
        assert!(b.cut);
        assert_eq!(a.text.len(), CONTEXT_BYTES);
        assert!(a.cut);
    }

    #[test]
    fn excerpt_short_text_is_whole() {
        let (b, m, a) = excerpt("you are bad ok", Span::new(8, 11));
        assert_eq!((b.text, m.text, a.text), ("you are ", "bad", " ok"));
        assert!(!b.cut && !m.cut && !a.cut);
    }

    #[test]
    fn excerpt_multibyte_at_cut_points() {
        // '€' is 3 bytes and 'é' 2: the cuts (start - 200, start + 300, end + 200) all fall
        // inside a character.
        let before = "€".repeat(70); // 210 bytes: start - 200 = 10 is mid-char
        let span = format!("z{}", "é".repeat(200)); // 401 bytes: start + 300 is mid-char
        let after = "€".repeat(70); // end + 200 is mid-char
        let text = format!("{before}{span}{after}");
        let s = before.len();
        let e = s + span.len();
        let (b, m, a) = excerpt(&text, Span::new(s, e));
        assert!(b.text.len() <= CONTEXT_BYTES && b.text.len() >= CONTEXT_BYTES - 3);
        assert!(b.text.chars().all(|c| c == '€'));
        assert!(!b.text.is_empty());
        assert!(m.text.len() <= MAX_SPAN_BYTES && m.cut);
        assert!(m.text.starts_with('z'));
        assert!(a.text.len() <= CONTEXT_BYTES && a.cut);
        assert!(a.text.chars().all(|c| c == '€'));
    }

    #[test]
    fn excerpt_bad_spans_are_clamped() {
        let text = "héllo wörld";
        // Mid-char start (2 is inside 'é'), end beyond the text, reversed spans.
        for (s, e) in [(2, 100), (100, 200), (7, 3), (0, 0), (2, 2)] {
            let (b, m, a) = excerpt(text, Span { start: s, end: e });
            let joined = format!("{}{}{}", b.text, m.text, a.text);
            assert!(text.contains(&joined));
        }
    }

    proptest! {
        #[test]
        fn excerpt_never_panics_and_reassembles(
            text in "\\PC{0,700}",
            a in 0usize..800,
            b in 0usize..800,
        ) {
            let (b_, m, a_) = excerpt(&text, Span { start: a.min(b), end: a.max(b) });
            prop_assert!(b_.text.len() <= CONTEXT_BYTES);
            prop_assert!(m.text.len() <= MAX_SPAN_BYTES);
            prop_assert!(a_.text.len() <= CONTEXT_BYTES);
            // The pieces are contiguous in the text when the span is not truncated.
            if !m.cut {
                let joined = format!("{}{}{}", b_.text, m.text, a_.text);
                prop_assert!(text.contains(&joined));
            }
        }

        #[test]
        fn truncate_is_a_prefix_on_a_boundary(text in "\\PC{0,100}", n in 0usize..120) {
            let t = truncate(&text, n);
            prop_assert!(t.len() <= n);
            prop_assert!(text.starts_with(t));
            prop_assert!(text.len() <= n || t.len() + 4 > n);
        }
    }
}
