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

/// Byte positions (sorted) of the separators to remove.
fn separators_to_remove(s: &str) -> Vec<usize> {
    let b = s.as_bytes();
    let n = b.len();
    let single = |i: usize| {
        i < n
            && b[i].is_ascii_alphabetic()
            && !is_word(char_before(s, i))
            && !is_word(char_at(s, i + 1))
    };
    let mut remove = Vec::new();
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        if i + 1 < n && b[i + 1].is_ascii_alphanumeric() {
            // Inside an ASCII word: none of its letters is single; skip it.
            i += 2;
            while i < n && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        if !single(i) {
            i += 1;
            continue;
        }
        if i + 2 < n && is_sep(b[i + 1]) && single(i + 2) {
            let sep = b[i + 1];
            let mut last = i + 2;
            let mut count = 2;
            while last + 2 < n && b[last + 1] == sep && single(last + 2) {
                last += 2;
                count += 1;
            }
            if count >= 3 {
                let first = if leading_article(b, i, count, sep) {
                    i + 2
                } else {
                    i
                };
                remove.extend((first + 1..last).step_by(2));
                i = last + 1;
                continue;
            }
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
