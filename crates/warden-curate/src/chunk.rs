//! Cutting a document into scored chunks.
//!
//! Long documents are scored per chunk so that a decision can point at the offending
//! span and redaction can remove a paragraph instead of an article. Chunks **partition**
//! the text: they are contiguous, cover every byte (separators included, attached to the
//! chunk before them) and lie on UTF-8 character boundaries. Every byte is therefore
//! scored, and removing a chunk's span removes the paragraph together with its line break.
//!
//! Lines are the units: consecutive lines are merged while the chunk stays within
//! `max_bytes`; in paragraph mode a blank line also closes the chunk once it holds
//! [`MIN_CHUNK_BYTES`]. A single line longer than `max_bytes` is cut into windows of about
//! equal size at whitespace (or at a character boundary when a window holds none). Chunks
//! shorter than [`MIN_CHUNK_BYTES`] — a heading before a long line, the tail of the text —
//! are merged with a neighbour, because the fast tier's scores on a few words are
//! unreliable: on Wikipedia such scraps caused most false removals before this rule.
//! So a chunk is at most `max_bytes` long, plus less than [`MIN_CHUNK_BYTES`] for a merged
//! tail.

use warden_rules::Span;

/// The chunks of `text`, as byte spans that partition it. Empty text has no chunks.
pub fn chunks(text: &str, max_bytes: usize, paragraphs: bool) -> Vec<Span> {
    let max_bytes = max_bytes.max(16);
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0; // start of the current chunk
    let mut pos = 0; // end of what the current chunk holds so far
    while pos < bytes.len() {
        // The next line, with its terminator and any following blank lines.
        let line_end = match memchr_newline(&bytes[pos..]) {
            Some(i) => {
                let mut e = pos + i + 1;
                while e < bytes.len() && (bytes[e] == b'\n' || bytes[e] == b'\r') {
                    e += 1;
                }
                e
            }
            None => bytes.len(),
        };
        if line_end - start <= max_bytes {
            pos = line_end;
            // A blank line ends a paragraph, and a paragraph of some substance is a chunk of
            // its own: merging it with its neighbours would dilute an offending paragraph's
            // score and widen what redaction removes.
            if paragraphs && ends_paragraph(&bytes[..line_end]) && pos - start >= MIN_CHUNK_BYTES {
                out.push(Span::new(start, pos));
                start = pos;
            }
            continue;
        }
        // The line does not fit into the current chunk. Close the chunk unless it is too
        // short to be scored on its own (a heading): then it rides along with the line.
        if pos > start && pos - start >= MIN_CHUNK_BYTES {
            out.push(Span::new(start, pos));
            start = pos;
        }
        if line_end - start <= max_bytes {
            pos = line_end;
            continue;
        }
        // An over-long line: cut it into windows of about equal size, so no window is a
        // scrap of a few words (short texts get unreliable scores).
        while line_end - start > max_bytes {
            let cut = window_end(text, start, line_end, max_bytes);
            out.push(Span::new(start, cut));
            start = cut;
        }
        pos = line_end;
    }
    if start < bytes.len() {
        out.push(Span::new(start, bytes.len()));
    }
    // A short tail joins the chunk before it.
    if out.len() >= 2 && out[out.len() - 1].len() < MIN_CHUNK_BYTES {
        let last = out.pop().unwrap();
        out.last_mut().unwrap().end = last.end;
    }
    out
}

/// Chunks shorter than this are merged with a neighbour where possible (headings, list
/// items, the tail of a long line): the fast tier's scores on a few words are unreliable,
/// and measured on Wikipedia such scraps caused most false removals.
pub const MIN_CHUNK_BYTES: usize = 100;

/// Does the text end with a blank line (two line breaks, `\r` ignored)?
fn ends_paragraph(b: &[u8]) -> bool {
    b.iter().rev().take_while(|&&c| c == b'\n' || c == b'\r').filter(|&&c| c == b'\n').count() >= 2
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Where a window starting at `start` of a line ending at `end` should end: the line is
/// cut into `ceil(len / max_bytes)` windows of about equal size; each ends after the last
/// whitespace within its target size (in the target's second half), else at the last char
/// boundary within it. Always `> start` and `<= start + max_bytes` (unless one character
/// is longer than `max_bytes`).
fn window_end(text: &str, start: usize, end: usize, max_bytes: usize) -> usize {
    let remaining = end - start;
    let n = remaining.div_ceil(max_bytes);
    let target = remaining.div_ceil(n).min(max_bytes);
    let limit = start + target;
    let window = &text.as_bytes()[start..limit];
    if let Some(i) = window.iter().rposition(|c| c.is_ascii_whitespace()) {
        if i >= target / 2 {
            return start + i + 1;
        }
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == start {
        // max_bytes smaller than one character: take the whole character.
        cut = start + 1;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
    }
    cut
}

/// The chunk index containing byte `pos` (chunks as returned by [`chunks`]).
pub fn chunk_of(chunks: &[Span], pos: usize) -> Option<usize> {
    let i = chunks.partition_point(|c| c.end <= pos);
    (i < chunks.len() && chunks[i].start <= pos).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_partition(text: &str, cs: &[Span], max: usize) {
        let mut pos = 0;
        for c in cs {
            assert_eq!(c.start, pos, "{cs:?}");
            assert!(c.end > c.start);
            assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
            // A window may exceed max only to finish one character.
            assert!(c.len() <= max.max(16) + MIN_CHUNK_BYTES, "{c:?} longer than {max}");
            pos = c.end;
        }
        assert_eq!(pos, text.len());
    }

    #[test]
    fn paragraphs_merge_up_to_the_limit() {
        let text = "aaaa\n\nbbbb\ncccc\n";
        let cs = chunks(text, 1000, false);
        assert_eq!(cs, vec![Span::new(0, text.len())], "short paragraphs merge");
        let p = "y".repeat(120);
        let text = format!("{p}\n\n{p}\n{p}");
        let cs = chunks(&text, 1000, true);
        assert_eq!(cs, vec![Span::new(0, 122), Span::new(122, text.len())], "a blank line ends a long paragraph");
        let p = "x".repeat(150);
        let text = format!("{p}\n\n{p}\n{p}");
        let cs = chunks(&text, 200, false);
        assert_eq!(cs.len(), 3);
        assert_eq!(&text[cs[0].start..cs[0].end], format!("{p}\n\n"));
        check_partition(&text, &cs, 200);
    }

    #[test]
    fn scraps_are_merged() {
        // A heading before a long line rides along with it; windows are balanced, and a
        // short tail joins the chunk before it.
        let text = format!("Heading\n{}", "word ".repeat(90));
        let cs = chunks(&text, 200, false);
        check_partition(&text, &cs, 200);
        assert!(cs.iter().all(|c| c.len() >= MIN_CHUNK_BYTES), "{cs:?}");
        assert!(text[cs[0].start..cs[0].end].starts_with("Heading\nword"));
        let text = format!("{}\nThe end.", "a ".repeat(150));
        let cs = chunks(&text, 200, false);
        assert!(text[cs[cs.len() - 1].start..].ends_with("The end.") && cs[cs.len() - 1].len() >= MIN_CHUNK_BYTES, "{cs:?}");
    }

    #[test]
    fn long_lines_are_windowed_at_whitespace() {
        let text = "word ".repeat(100);
        let cs = chunks(&text, 64, false);
        check_partition(&text, &cs, 64);
        for c in &cs[..cs.len() - 1] {
            assert!(text[c.start..c.end].ends_with(' '));
        }
    }

    #[test]
    fn no_whitespace_cuts_on_char_boundaries() {
        let text = "é".repeat(100);
        let cs = chunks(&text, 17, false);
        check_partition(&text, &cs, 17);
    }

    #[test]
    fn empty_and_chunk_lookup() {
        assert!(chunks("", 100, false).is_empty());
        let cs = vec![Span::new(0, 5), Span::new(5, 9)];
        assert_eq!(chunk_of(&cs, 0), Some(0));
        assert_eq!(chunk_of(&cs, 5), Some(1));
        assert_eq!(chunk_of(&cs, 8), Some(1));
        assert_eq!(chunk_of(&cs, 9), None);
    }

    proptest! {
        #[test]
        fn always_a_partition(text in "[a-zé\u{1F600} \n\r]{0,400}", max in 16usize..120, para in any::<bool>()) {
            let cs = chunks(&text, max, para);
            check_partition(&text, &cs, max);
        }
    }
}
