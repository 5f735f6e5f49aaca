//! Cutting a document into scored chunks.
//!
//! Long documents are scored per chunk so that a decision can point at the offending
//! span and redaction can remove a paragraph instead of an article. Chunks **partition**
//! the text: they are contiguous, cover every byte (separators included, attached to the
//! chunk before them) and lie on UTF-8 character boundaries. Every byte is therefore
//! scored, and removing a chunk's span removes the paragraph together with its line break.
//!
//! Lines are the units: consecutive lines are merged while the chunk stays within
//! `max_bytes`; in paragraph mode a blank line also closes the chunk once it holds at least
//! [`MIN_PARAGRAPH_BYTES`] (so paragraphs are scored on their own and short headings ride
//! along with the paragraph after them); a single line longer than that is cut into windows of about `max_bytes` at
//! whitespace (or at a character boundary when a window holds no whitespace at all).

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
            if paragraphs && ends_paragraph(&bytes[..line_end]) && pos - start >= MIN_PARAGRAPH_BYTES {
                out.push(Span::new(start, pos));
                start = pos;
            }
            continue;
        }
        // The line does not fit into the current chunk.
        if pos > start {
            out.push(Span::new(start, pos));
            start = pos;
        }
        if line_end - start <= max_bytes {
            pos = line_end;
            continue;
        }
        // A single over-long line: cut it into windows.
        while line_end - start > max_bytes {
            let cut = window_end(text, start, max_bytes);
            out.push(Span::new(start, cut));
            start = cut;
        }
        pos = line_end;
    }
    if start < bytes.len() {
        out.push(Span::new(start, bytes.len()));
    }
    out
}

/// Paragraphs shorter than this are merged with the next one (headings, list items).
pub const MIN_PARAGRAPH_BYTES: usize = 100;

/// Does the text end with a blank line (two line breaks, `\r` ignored)?
fn ends_paragraph(b: &[u8]) -> bool {
    b.iter().rev().take_while(|&&c| c == b'\n' || c == b'\r').filter(|&&c| c == b'\n').count() >= 2
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Where a window starting at `start` should end: after the last whitespace run within
/// `max_bytes`, else at the last char boundary within it. Always `> start`.
fn window_end(text: &str, start: usize, max_bytes: usize) -> usize {
    let limit = start + max_bytes;
    let window = &text.as_bytes()[start..limit];
    // Prefer cutting after whitespace in the second half of the window.
    if let Some(i) = window.iter().rposition(|c| c.is_ascii_whitespace()) {
        if i >= max_bytes / 2 {
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
            assert!(c.len() <= max.max(16) + 3, "{c:?} longer than {max}");
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
        let p = "x".repeat(20);
        let text = format!("{p}\n\n{p}\n{p}");
        let cs = chunks(&text, 30, false);
        assert_eq!(cs.len(), 3);
        assert_eq!(&text[cs[0].start..cs[0].end], format!("{p}\n\n"));
        check_partition(&text, &cs, 30);
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
