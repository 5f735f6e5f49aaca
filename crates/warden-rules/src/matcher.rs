//! The shared whole-word phrase matcher behind [`crate::RuleSet`] and
//! [`crate::IdentityTerms`].
//!
//! One Aho-Corasick automaton (standard semantics, overlapping search, ASCII
//! case-insensitive) over every *variant* of every term. A variant is the same term
//! spelled so that the automaton can find it where ASCII case folding cannot:
//!
//! * terms with non-ASCII cased letters also get an upper-case, a first-letter-capitalised
//!   and an every-word-capitalised variant (`bahá'í` → `BAHÁ'Í`, `Bahá'í`);
//! * an ASCII apostrophe also matches the typographic one, U+2019 (`i'm` → `i’m`).
//!
//! Whitespace: terms are stored with single spaces, and the automaton is fed a
//! *collapsed* view of the text on the fly: every run of ASCII whitespace becomes one
//! space. A small ring buffer remembers the original offset of the last `max_len` bytes
//! fed, so a match's start maps back to the original text without copying the document
//! or building an offset table. This is why the automaton is driven byte by byte through
//! `aho_corasick::automaton::Automaton` rather than through `AhoCorasick`'s iterators:
//! it is one pass over the text, with no allocation in the common case.
//!
//! Engine: a DFA (fastest, a few hundred MB/s on English text) unless the term set is so
//! large that its transition table would be big ([`DFA_MAX_PATTERN_BYTES`]); then the
//! contiguous NFA (about a third of the speed, compact).
//!
//! Whole words are checked on the original text, so spans are always original byte
//! offsets on `char` boundaries.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use aho_corasick::automaton::Automaton;
use aho_corasick::{dfa, nfa, Anchored, MatchKind};

use crate::Span;

/// Identifier the caller attached to a term; every variant of the term reports it.
pub(crate) type TermId = u32;

/// Above this many bytes of patterns (variants included) the contiguous NFA is used
/// instead of the DFA: the DFA's table grows with states × byte classes and would pass
/// tens of MB.
pub(crate) const DFA_MAX_PATTERN_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
enum Engine {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    engine: Engine,
    /// Pattern index → caller's term id.
    ids: Vec<TermId>,
    /// Longest pattern, in bytes.
    max_len: usize,
}

impl Matcher {
    /// Builds the automaton. `terms` must already be normalised ([`normalize_term`]) and
    /// non-empty.
    pub(crate) fn new<'a>(terms: impl IntoIterator<Item = (&'a str, TermId)>) -> Matcher {
        let mut patterns = Vec::new();
        let mut ids = Vec::new();
        for (term, id) in terms {
            debug_assert!(!term.is_empty());
            for v in variants(term) {
                patterns.push(v);
                ids.push(id);
            }
        }
        let max_len = patterns.iter().map(String::len).max().unwrap_or(0);
        let total: usize = patterns.iter().map(String::len).sum();
        let dfa = (total <= DFA_MAX_PATTERN_BYTES).then(|| {
            dfa::DFA::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(true)
                .prefilter(false)
                .build(&patterns)
                .ok()
        });
        let engine = match dfa.flatten() {
            Some(d) => Engine::Dfa(d),
            None => Engine::Nfa(
                nfa::contiguous::NFA::builder()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .prefilter(false)
                    .build(&patterns)
                    .expect("term patterns fit the automaton's limits"),
            ),
        };
        Matcher {
            engine,
            ids,
            max_len,
        }
    }

    /// Longest pattern in bytes (of the collapsed text).
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Calls `f(term id, span, searched)` for every whole-word match, in order of match
    /// end. `span` is in the original text; `searched` is the same match as
    /// `(start, end)` in the collapsed text, whose `end` never decreases from one call to
    /// the next and whose length is at most [`Self::max_len`]: callers use it to stop
    /// early. The same term can be reported twice for one span when two of its variants
    /// match; callers dedup. `f` stops the search by returning `Break`.
    pub(crate) fn for_each(
        &self,
        text: &str,
        f: impl FnMut(TermId, Span, (usize, usize)) -> ControlFlow<()>,
    ) {
        if self.ids.is_empty() || text.is_empty() {
            return;
        }
        // The ring holds the original offset of each of the last `ring.len()` bytes fed;
        // a power of two above the longest pattern.
        let size = (self.max_len + 1).next_power_of_two();
        let mut stack = [0usize; 256];
        let mut heap;
        let ring: &mut [usize] = if size <= stack.len() {
            &mut stack[..size]
        } else {
            heap = vec![0usize; size];
            &mut heap
        };
        match &self.engine {
            Engine::Dfa(a) => self.run(a, text, ring, f),
            Engine::Nfa(a) => self.run(a, text, ring, f),
        }
    }

    #[inline(always)]
    fn run<A: Automaton>(
        &self,
        aut: &A,
        text: &str,
        ring: &mut [usize],
        mut f: impl FnMut(TermId, Span, (usize, usize)) -> ControlFlow<()>,
    ) {
        let mask = ring.len() - 1;
        let Ok(mut sid) = aut.start_state(Anchored::No) else {
            return;
        };
        let mut fed = 0usize; // bytes fed so far = position in the collapsed text
        let mut in_space = false;
        for (i, &b) in text.as_bytes().iter().enumerate() {
            let b = if is_ws(b) {
                if in_space {
                    continue;
                }
                in_space = true;
                b' '
            } else {
                in_space = false;
                b
            };
            ring[fed & mask] = i;
            fed += 1;
            sid = aut.next_state(Anchored::No, sid, b);
            if !aut.is_special(sid) {
                continue;
            }
            if aut.is_dead(sid) {
                return;
            }
            if !aut.is_match(sid) {
                continue;
            }
            for k in 0..aut.match_len(sid) {
                let pid = aut.match_pattern(sid, k);
                let len = aut.pattern_len(pid);
                let start = ring[(fed - len) & mask];
                let end = i + 1;
                if !is_whole_word(text, start, end) {
                    continue;
                }
                let searched = (fed - len, fed);
                if f(self.ids[pid.as_usize()], Span::new(start, end), searched).is_break() {
                    return;
                }
            }
        }
    }
}

/// Trims, lower-cases (Unicode) and collapses every run of whitespace to one space.
pub(crate) fn normalize_term(term: &str) -> String {
    let lower = term.trim().to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut space = false;
    for c in lower.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// `char::is_alphanumeric` or `_`: the characters that may not touch a match.
pub(crate) fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// True when the characters just before `start` and just after `end` are not word
/// characters (or do not exist).
fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    let (Some(before), Some(after)) = (text.get(..start), text.get(end..)) else {
        // Not on a char boundary; cannot happen for valid UTF-8 patterns, but never panic.
        return false;
    };
    let word_before = match before.as_bytes().last() {
        None => false,
        Some(&b) if b.is_ascii() => b == b'_' || b.is_ascii_alphanumeric(),
        Some(_) => before.chars().next_back().is_some_and(is_word_char),
    };
    if word_before {
        return false;
    }
    match after.as_bytes().first() {
        None => true,
        Some(&b) if b.is_ascii() => !(b == b'_' || b.is_ascii_alphanumeric()),
        Some(_) => !after.chars().next().is_some_and(is_word_char),
    }
}

/// The spellings of a normalised term that the automaton needs (see the module docs).
fn variants(term: &str) -> Vec<String> {
    let mut set = BTreeSet::new();
    set.insert(term.to_owned());
    let cased_non_ascii = term
        .chars()
        .any(|c| !c.is_ascii() && (c.is_lowercase() || c.is_uppercase()));
    if cased_non_ascii {
        set.insert(term.to_uppercase());
        let mut chars = term.chars();
        if let Some(first) = chars.next() {
            set.insert(first.to_uppercase().chain(chars).collect());
        }
        let mut title = String::with_capacity(term.len());
        let mut at_word_start = true;
        for c in term.chars() {
            if at_word_start && c.is_alphabetic() {
                title.extend(c.to_uppercase());
            } else {
                title.push(c);
            }
            at_word_start = c == ' ' || c == '-';
        }
        set.insert(title);
    }
    let with_apostrophes: Vec<String> = set
        .iter()
        .filter_map(|v| {
            if v.contains('\'') {
                Some(v.replace('\'', "\u{2019}"))
            } else if v.contains('\u{2019}') {
                Some(v.replace('\u{2019}', "'"))
            } else {
                None
            }
        })
        .collect();
    set.extend(with_apostrophes);
    set.into_iter().collect()
}

#[inline]
fn is_ws(b: u8) -> bool {
    // u8::is_ascii_whitespace: space, \t, \n, \x0C, \r.
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0C' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(m: &Matcher, text: &str) -> Vec<(TermId, usize, usize)> {
        let mut v = Vec::new();
        m.for_each(text, |id, s, _| {
            v.push((id, s.start, s.end));
            ControlFlow::Continue(())
        });
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn normalizes_terms() {
        assert_eq!(normalize_term("  Kill \t  YourSelf \n"), "kill yourself");
        assert_eq!(normalize_term("ÄRGER"), "ärger");
        assert_eq!(normalize_term("   "), "");
    }

    #[test]
    fn spans_map_back_through_whitespace_runs() {
        let m = Matcher::new([("a b c d", 0), ("d", 1)]);
        let text = "a \t\n b\nc  d";
        assert_eq!(spans(&m, text), [(0, 0, 11), (1, 10, 11)]);
        // Longer than the stack ring: the heap ring is used.
        let long = "x ".repeat(200) + "end";
        let m = Matcher::new([(long.as_str(), 7)]);
        let text = format!("  {}", long.replace(' ', " \r\n "));
        assert_eq!(spans(&m, &text), [(7, 2, text.len())]);
    }

    #[test]
    fn large_term_sets_use_the_nfa() {
        let terms: Vec<String> = (0..8000).map(|i| format!("term number {i}")).collect();
        let m = Matcher::new(
            terms
                .iter()
                .enumerate()
                .map(|(i, t)| (t.as_str(), i as u32)),
        );
        assert!(matches!(m.engine, Engine::Nfa(_)));
        assert_eq!(spans(&m, "see TERM\nnumber 7999."), [(7999, 4, 20)]);
        let m = Matcher::new([("term", 0)]);
        assert!(matches!(m.engine, Engine::Dfa(_)));
    }

    #[test]
    fn variants_cover_case_and_apostrophes() {
        let v = variants("bahá'í");
        for want in [
            "bahá'í",
            "BAHÁ'Í",
            "Bahá'í",
            "bahá\u{2019}í",
            "BAHÁ\u{2019}Í",
        ] {
            assert!(v.iter().any(|x| x == want), "{want} missing from {v:?}");
        }
        assert_eq!(variants("kill you"), ["kill you"]);
    }

    #[test]
    fn whole_words_across_whitespace_runs() {
        let m = Matcher::new([("kill you", 0), ("ass", 1)]);
        assert_eq!(spans(&m, "I will KILL\n\t you."), [(0, 7, 17)]);
        assert_eq!(spans(&m, "class assassin ass_ ass."), [(1, 20, 23)]);
        assert_eq!(spans(&m, "ümass ass"), [(1, 7, 10)]);
    }
}
