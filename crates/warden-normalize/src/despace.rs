use unicode_normalization::char::is_combining_mark;

use crate::out::{char_at, char_before, rewrite, Align, Apply};

/// Joins words spelled with their letters separated: `w h o r e s` → `whores`, `f.u.c.k` →
/// `fuck`, `k-i-l-l`, `s_l_u_t`.
///
/// A *single letter* is an ASCII letter with no letter, digit or combining mark directly on
/// either side. A chain is three or more single letters, each pair separated by exactly one
/// separator char — a space, `.`, `-` or `_` — the same one throughout the chain. The
/// separators of a chain are removed; everything else (including a trailing `.` as in
/// `f.u.c.k.`) stays. Two letters are never joined, so initials and abbreviations such as
/// `U.S.`, `e.g.`, `a b` stay readable; `U.S.A.` becomes `usa.` (after case folding).
/// Double spaces (`f  u  c  k`) are not joined.
///
/// **Articles.** In English a lone `a` or `i` before a spelled-out word is usually the
/// article or pronoun (`you are a w h o r e s`, `i h a t e`), so a space-separated chain that
/// starts with `a`/`i` and has at least three more letters leaves that first letter alone
/// (`you are a whores`, `i hate`) — unless the whole chain spells a word from a short list
/// of abusive words that start with those letters ([`ARTICLE_EXCEPTIONS`]: `a s s h o l e` →
/// `asshole`, `i d i o t` → `idiot`).
///
/// Chains are found left to right; a failed chain start is retried at the next single
/// letter, so `x.a b c` → `x.abc`. Joined letters keep their own ranges; removed separators
/// vanish from the alignment. Joining only turns single letters into longer words and never
/// changes what surrounds other single letters, so a second application finds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Despace;

#[inline]
fn is_word(c: Option<char>) -> bool {
    match c {
        None => false,
        Some(c) if c.is_ascii() => c.is_ascii_alphanumeric(),
        Some(c) => c.is_alphanumeric() || is_combining_mark(c),
    }
}

/// Prefixes of words starting with `a`/`i` that a spaced chain keeps whole (see
/// [`Despace`]).
pub const ARTICLE_EXCEPTIONS: &[&str] = &[
    "ass", "arse", "anal", "anus", "abus", "abort", "idiot", "imbecil", "incest", "inbred",
    "insan", "islam", "immigr",
];

/// Whether the chain starting at byte `i` with `count` letters separated by `sep` begins
/// with an article that should stay a word of its own.
fn leading_article(b: &[u8], i: usize, count: usize, sep: u8) -> bool {
    if sep != b' ' || count < 4 || !matches!(b[i].to_ascii_lowercase(), b'a' | b'i') {
        return false;
    }
    let spelled = || {
        b[i..]
            .iter()
            .step_by(2)
            .take(count)
            .map(u8::to_ascii_lowercase)
    };
    !ARTICLE_EXCEPTIONS
        .iter()
        .any(|w| w.len() <= count && spelled().zip(w.bytes()).all(|(a, b)| a == b))
}

#[inline]
fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'.' | b'-' | b'_')
}

/// The first byte at or after `from` that may be a single letter: an ASCII letter with no
/// ASCII letter or digit on either side. Every single letter passes; [`separators_to_remove`]
/// checks the rest (non-ASCII neighbours). Almost every byte of ordinary text fails, so this
/// scan was most of the stage's cost; it tests 32 bytes at a time with branch-free compares
/// folded into a bit mask, which the compiler turns into vector code.
#[inline]
fn next_single_candidate(b: &[u8], from: usize) -> Option<usize> {
    const BLOCK: usize = 32;
    #[inline(always)]
    fn alpha(c: u8) -> bool {
        (c | 0x20).wrapping_sub(b'a') < 26
    }
    #[inline(always)]
    fn alnum(c: u8) -> bool {
        alpha(c) | (c.wrapping_sub(b'0') < 10)
    }
    let scalar = |i: usize| {
        alpha(b[i]) && (i == 0 || !alnum(b[i - 1])) && (i + 1 == b.len() || !alnum(b[i + 1]))
    };
    let mut i = from;
    // The block loop needs a byte before and after the block.
    if i == 0 && !b.is_empty() {
        if scalar(0) {
            return Some(0);
        }
        i = 1;
    }
    while i + BLOCK < b.len() {
        let prev: &[u8; BLOCK] = b[i - 1..i - 1 + BLOCK].try_into().expect("BLOCK bytes");
        let cur: &[u8; BLOCK] = b[i..i + BLOCK].try_into().expect("BLOCK bytes");
        let next: &[u8; BLOCK] = b[i + 1..i + 1 + BLOCK].try_into().expect("BLOCK bytes");
        let mut mask = 0u32;
        for k in 0..BLOCK {
            let hit = alpha(cur[k]) & !alnum(prev[k]) & !alnum(next[k]);
            mask |= (hit as u32) << k;
        }
        if mask != 0 {
            return Some(i + mask.trailing_zeros() as usize);
        }
        i += BLOCK;
    }
    (i..b.len()).find(|&j| scalar(j))
}

/// Whether byte `i` of `s` is a single letter: an ASCII letter with no word char on
/// either side.
fn is_single(s: &str, i: usize) -> bool {
    i < s.len()
        && s.as_bytes()[i].is_ascii_alphabetic()
        && !is_word(char_before(s, i))
        && !is_word(char_at(s, i + 1))
}

/// The chain that starts at byte `i`, if one does (`i` and every other letter of it single
/// letters): the byte of the first letter whose following separator goes (after
/// [`leading_article`]) and the byte of the chain's last letter.
fn chain_at(s: &str, i: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let n = b.len();
    if !(is_single(s, i) && i + 2 < n && is_sep(b[i + 1]) && is_single(s, i + 2)) {
        return None;
    }
    let sep = b[i + 1];
    let mut last = i + 2;
    let mut count = 2;
    while last + 2 < n && b[last + 1] == sep && is_single(s, last + 2) {
        last += 2;
        count += 1;
    }
    if count < 3 {
        return None;
    }
    let first = if leading_article(b, i, count, sep) { i + 2 } else { i };
    Some((first, last))
}

/// Byte positions (sorted) of the separators to remove.
fn separators_to_remove(s: &str) -> Vec<usize> {
    let mut remove = Vec::new();
    let mut i = 0;
    // Only a single letter can start a chain, and the scan skips no single letter.
    while let Some(j) = next_single_candidate(s.as_bytes(), i) {
        i = j;
        if let Some((first, last)) = chain_at(s, i) {
            remove.extend((first + 1..last).step_by(2));
            i = last + 1;
            continue;
        }
        i += 1;
    }
    remove
}

impl Apply for Despace {
    fn apply(&self, text: &mut String, align: Option<&mut Align>) {
        let remove = separators_to_remove(text);
        if remove.is_empty() {
            return;
        }
        rewrite(text, align, |s, out| {
            let mut next = remove.iter().copied().peekable();
            for (ci, (bi, c)) in s.char_indices().enumerate() {
                if next.peek() == Some(&bi) {
                    next.next();
                    continue;
                }
                out.push(c, ci, ci + 1);
            }
        });
    }
}

crate::stage_impl!(Despace);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition [`separators_to_remove`] speeds up: every byte in turn, no scan.
    fn separators_to_remove_reference(s: &str) -> Vec<usize> {
        let mut remove = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if let Some((first, last)) = chain_at(s, i) {
                remove.extend((first + 1..last).step_by(2));
                i = last + 1;
            } else {
                i += 1;
            }
        }
        remove
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn the_block_scan_removes_what_the_byte_scan_removed(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("a"), Just("I"), Just("b"), Just("x"), Just("Z"), Just(" "), Just("."),
                    Just("-"), Just("_"), Just("1"), Just("é"), Just("\u{301}"), Just("ab"),
                    Just("  "), Just("\u{3b1}"), Just("s h i t"), Just("a s s"),
                ],
                0..120,
            )
        ) {
            let s: String = parts.concat();
            prop_assert_eq!(separators_to_remove(&s), separators_to_remove_reference(&s), "{:?}", s);
        }
    }

    #[test]
    fn the_candidate_scan_agrees_with_the_definition_at_block_edges() {
        for len in [0, 1, 2, 31, 32, 33, 34, 64, 65, 97] {
            for at in 0..len {
                let mut b = vec![b'w'; len];
                for sep in [b' ', b'.', 0xC3] {
                    if at > 0 {
                        b[at - 1] = sep;
                    }
                    if at + 1 < len {
                        b[at + 1] = sep;
                    }
                    b[at] = b'k';
                    for from in [0, at.saturating_sub(1), at] {
                        let want = (from..len).find(|&i| {
                            b[i].is_ascii_alphabetic()
                                && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
                                && (i + 1 == len || !b[i + 1].is_ascii_alphanumeric())
                        });
                        assert_eq!(next_single_candidate(&b, from), want, "len {len} at {at} from {from}");
                    }
                    b.fill(b'w');
                }
            }
        }
    }
}
