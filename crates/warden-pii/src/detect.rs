//! Candidate detection: one compiled regex per rule, then validation and boundary checks in
//! code (the `regex` crate has no look-around), then deterministic overlap resolution.

use std::net::Ipv6Addr;
use std::ops::Range;

use regex::Regex;

use crate::{luhn_valid, PiiKind};

/// Code points of scripts written without spaces between words (CJK, kana, Hangul, Thai,
/// Lao, Khmer, Myanmar, Tibetan) plus CJK punctuation and full-width forms. A character from
/// these ranges never glues onto an ASCII token, so `电话+86…` or `test@example.com谢谢`
/// still has a token boundary next to the PII.
const NO_SPACE_RANGES: &[(u32, u32)] = &[
    (0x0E00, 0x0EFF),   // Thai, Lao
    (0x0F00, 0x0FFF),   // Tibetan
    (0x1000, 0x109F),   // Myanmar
    (0x1100, 0x11FF),   // Hangul Jamo
    (0x1780, 0x17FF),   // Khmer
    (0x2E80, 0x2FDF),   // CJK radicals, Kangxi radicals
    (0x3000, 0x33FF),   // CJK punctuation, kana, Bopomofo, Hangul compatibility, enclosed
    (0x3400, 0x4DBF),   // CJK extension A
    (0x4E00, 0x9FFF),   // CJK unified ideographs
    (0xA960, 0xA97F),   // Hangul Jamo extension A
    (0xAC00, 0xD7FF),   // Hangul syllables, Jamo extension B
    (0xF900, 0xFAFF),   // CJK compatibility ideographs
    (0xFE30, 0xFE4F),   // CJK compatibility forms
    (0xFF00, 0xFFEF),   // half-width and full-width forms
    (0x20000, 0x3FFFF), // CJK extensions B and later
];

fn is_no_space_script(c: char) -> bool {
    let c = c as u32;
    c >= 0x0E00
        && NO_SPACE_RANGES
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether `c` belongs to a word token for boundary purposes: ASCII letters, digits and `_`,
/// and non-ASCII letters and digits of space-separated scripts (`é`, `ß`, `д`).
pub(crate) fn is_word(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        c.is_alphanumeric() && !is_no_space_script(c)
    }
}

/// [`NO_SPACE_RANGES`] as the body of a regex character class.
fn no_space_class() -> String {
    NO_SPACE_RANGES
        .iter()
        .map(|&(lo, hi)| format!(r"\x{{{lo:X}}}-\x{{{hi:X}}}"))
        .collect()
}

/// One detection rule. Several rules can report the same [`PiiKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Email,
    Url,
    Ipv4,
    Ipv6,
    Card,
    Ssn,
    Nino,
    KeywordId,
    PhoneIntl,
    PhoneNanp,
    PhoneTrunk,
}

impl Rule {
    const ALL: [Rule; 11] = [
        Rule::Url,
        Rule::Email,
        Rule::Card,
        Rule::Ssn,
        Rule::Nino,
        Rule::KeywordId,
        Rule::Ipv4,
        Rule::Ipv6,
        Rule::PhoneIntl,
        Rule::PhoneNanp,
        Rule::PhoneTrunk,
    ];

    fn kind(self) -> PiiKind {
        match self {
            Rule::Email => PiiKind::Email,
            Rule::Url => PiiKind::CredentialUrl,
            Rule::Ipv4 | Rule::Ipv6 => PiiKind::IpAddress,
            Rule::Card => PiiKind::CardNumber,
            Rule::Ssn | Rule::Nino | Rule::KeywordId => PiiKind::NationalId,
            Rule::PhoneIntl | Rule::PhoneNanp | Rule::PhoneTrunk => PiiKind::Phone,
        }
    }

    /// The candidate pattern. Deliberately a little looser than the final rule: lengths,
    /// checksums, separator consistency and token boundaries are checked in [`validate`].
    fn pattern(self) -> String {
        let template = match self {
            // local part: letters/marks/digits of space-separated scripts and `_.%+-`;
            // domain: one or more labels and a letters-only TLD of two or more.
            Rule::Email => concat!(
                r"[[\p{Alphabetic}\p{M}\p{N}_.%+\-]--[NOSPACE]]+@",
                r"(?:[[\p{Alphabetic}\p{N}]--[NOSPACE]](?:[[\p{Alphabetic}\p{N}\-]--[NOSPACE]]*",
                r"[[\p{Alphabetic}\p{N}]--[NOSPACE]])?\.)+[[\p{L}]--[NOSPACE]]{2,}",
            ),
            Rule::Url => r#"[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s<>"'`{}|\\^NOSPACE]+"#,
            Rule::Ipv4 => concat!(
                r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}",
                r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
            ),
            Rule::Ipv6 => r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,8}(?:(?:\.[0-9]{1,3}){3})?",
            Rule::Card => r"[0-9]{4,19}(?:[ \-][0-9]{1,19}){0,7}",
            Rule::Ssn => r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
            Rule::Nino => concat!(
                r"[A-CEGHJ-PR-TW-Za-ceghj-pr-tw-z][A-CEGHJ-NPR-TW-Za-ceghj-npr-tw-z]",
                r" ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d]",
            ),
            Rule::KeywordId => r"[0-9]{1,12}(?:[ \-][0-9]{1,12}){0,5}",
            Rule::PhoneIntl => r"\+[0-9]{1,3}(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,12})){1,8}",
            Rule::PhoneNanp => concat!(
                r"(?:1[ .\-])?(?:\([2-9][0-9]{2}\)[ \-]?|[2-9][0-9]{2}[ .\-])",
                r"[0-9]{3}[ .\-][0-9]{4}",
            ),
            Rule::PhoneTrunk => concat!(
                r"\(0[0-9]{1,4}\) ?[0-9]{2,8}(?:[ .\-][0-9]{2,8}){0,3}",
                r"|0[0-9]{1,4}(?:[ .\-][0-9]{2,8}){1,4}",
            ),
        };
        template.replace("NOSPACE", &no_space_class())
    }
}

/// Keywords that make a bare 9–12 digit run count as a national id when they end at most
/// [`KEYWORD_WINDOW`] bytes before it with no other digits in between.
const KEYWORD_PATTERN: &str = concat!(
    r"(?i)\b(?:ssns?|social[ \t]+security|passports?|national[ \t]+id(?:entity)?|nin|",
    r"aadhaa?r|id[ \t]+(?:number|no|card)|identity[ \t]+(?:number|card))\b",
);
const KEYWORD_WINDOW: usize = 30;

/// Bytes that glue digit groups into one longer number (`1.2.3.4.5`, `2023-11-05`, `12:30`):
/// a numeric match may not start right after, or end right before, one of them that has a
/// digit on its other side.
const DIGIT_JOINERS: &[char] = &['.', '-', ':'];

struct Detector {
    rule: Rule,
    re: Regex,
}

/// The compiled rules for a set of kinds.
pub(crate) struct Detectors {
    list: Vec<Detector>,
    keyword: Option<Regex>,
}

enum Verdict {
    Accept(Range<usize>),
    /// Rejected; no valid match of this rule can start before the given byte offset.
    SkipTo(usize),
    /// Rejected; resume at the next position where a token can start.
    Reject,
}

struct Ctx<'a> {
    text: &'a str,
    keyword_ends: &'a [usize],
}

impl Detectors {
    pub(crate) fn new(kinds: &[PiiKind]) -> Self {
        let list: Vec<Detector> = Rule::ALL
            .iter()
            .filter(|r| kinds.contains(&r.kind()))
            .map(|&rule| Detector {
                rule,
                re: Regex::new(&rule.pattern()).expect("built-in PII pattern compiles"),
            })
            .collect();
        let keyword = list
            .iter()
            .any(|d| d.rule == Rule::KeywordId)
            .then(|| Regex::new(KEYWORD_PATTERN).expect("built-in keyword pattern compiles"));
        Detectors { list, keyword }
    }

    /// One pass: all accepted candidates of all rules, overlaps resolved, sorted by start.
    pub(crate) fn detect(&self, text: &str) -> Vec<(PiiKind, Range<usize>)> {
        let keyword_ends: Vec<usize> = match &self.keyword {
            Some(re) => re.find_iter(text).map(|m| m.end()).collect(),
            None => Vec::new(),
        };
        let ctx = Ctx {
            text,
            keyword_ends: &keyword_ends,
        };
        let mut candidates = Vec::new();
        for det in &self.list {
            if det.rule == Rule::KeywordId && keyword_ends.is_empty() {
                continue;
            }
            let mut pos = 0;
            while pos <= text.len() {
                let Some(m) = det.re.find_at(text, pos) else {
                    break;
                };
                let next = match validate(det.rule, &ctx, m.start(), m.end()) {
                    Verdict::Accept(r) => {
                        let end = r.end;
                        candidates.push((det.rule.kind(), r));
                        end
                    }
                    Verdict::SkipTo(p) => p,
                    Verdict::Reject => next_token_start(text, m.start()),
                };
                // Always make progress, whatever a validator returned.
                pos = if next > pos {
                    next
                } else {
                    next_token_start(text, pos)
                };
            }
        }
        resolve(candidates)
    }
}

/// Earliest start wins, then the longest, then the kind priority; the rest is dropped.
fn resolve(mut candidates: Vec<(PiiKind, Range<usize>)>) -> Vec<(PiiKind, Range<usize>)> {
    candidates.sort_by(|a, b| {
        a.1.start
            .cmp(&b.1.start)
            .then(b.1.end.cmp(&a.1.end))
            .then(a.0.priority().cmp(&b.0.priority()))
    });
    let mut out: Vec<(PiiKind, Range<usize>)> = Vec::with_capacity(candidates.len());
    let mut covered = 0;
    for (kind, r) in candidates {
        if r.start >= covered && !r.is_empty() {
            covered = r.end;
            out.push((kind, r));
        }
    }
    out
}

/// The next byte offset after `at` where a token could start: skips the rest of the word
/// token containing `at`, since a match never starts inside one.
fn next_token_start(text: &str, at: usize) -> usize {
    let mut chars = text[at..].char_indices().map(|(i, c)| (at + i, c));
    let Some((_, mut prev)) = chars.next() else {
        return text.len() + 1;
    };
    for (i, c) in chars {
        if !(is_word(prev) && is_word(c)) {
            return i;
        }
        prev = c;
    }
    text.len()
}

fn prev_char(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn next_char(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// A match must not start or end inside a longer word token.
fn word_edges_ok(text: &str, r: &Range<usize>) -> bool {
    if let (Some(first), Some(p)) = (next_char(text, r.start), prev_char(text, r.start)) {
        if is_word(first) && is_word(p) {
            return false;
        }
    }
    if let (Some(last), Some(n)) = (prev_char(text, r.end), next_char(text, r.end)) {
        if is_word(last) && is_word(n) {
            return false;
        }
    }
    true
}

/// [`word_edges_ok`], and the match is not glued to more digits: no digit right before or
/// after it, and no `joiner digit` continuation on either side.
fn numeric_edges_ok(text: &str, r: &Range<usize>, joiners: &[char]) -> bool {
    if !word_edges_ok(text, r) {
        return false;
    }
    if let Some(p) = prev_char(text, r.start) {
        if p.is_ascii_digit() {
            return false;
        }
        let before = prev_char(text, r.start - p.len_utf8());
        if joiners.contains(&p) && before.is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(n) = next_char(text, r.end) {
        if n.is_ascii_digit() {
            return false;
        }
        let after = next_char(text, r.end + n.len_utf8());
        if joiners.contains(&n) && after.is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    true
}

/// Digit groups and the separators between them, e.g. `4111-1111` → groups `[4, 4]`,
/// separators `"-"`.
struct Shape {
    digits: usize,
    groups: Vec<usize>,
    seps: Vec<char>,
}

impl Shape {
    fn of(s: &str) -> Shape {
        let mut shape = Shape {
            digits: 0,
            groups: Vec::new(),
            seps: Vec::new(),
        };
        let mut run = 0;
        for c in s.chars() {
            if c.is_ascii_digit() {
                run += 1;
                shape.digits += 1;
            } else {
                if run > 0 {
                    shape.groups.push(run);
                    run = 0;
                }
                if !shape.groups.is_empty() {
                    shape.seps.push(c);
                }
            }
        }
        if run > 0 {
            shape.groups.push(run);
        }
        shape
    }

    /// All separators equal (`202-555-0143`, not `202-555 0143`).
    fn consistent(&self) -> bool {
        self.seps.windows(2).all(|w| w[0] == w[1])
    }

    fn digit_string(s: &str) -> String {
        s.chars().filter(char::is_ascii_digit).collect()
    }
}

/// Byte offsets (relative to `cand`) right after each run of ASCII digits, longest prefix
/// first: the places where a digit-group candidate may be cut back to.
fn digit_run_ends(cand: &str) -> Vec<usize> {
    let b = cand.as_bytes();
    let mut ends: Vec<usize> = (0..b.len())
        .filter(|&i| b[i].is_ascii_digit() && b.get(i + 1).is_none_or(|n| !n.is_ascii_digit()))
        .map(|i| i + 1)
        .collect();
    ends.reverse();
    ends
}

/// The longest prefix of `text[s..e]`, cut after a digit group, that `ok` accepts.
fn longest_prefix(
    text: &str,
    s: usize,
    e: usize,
    ok: impl Fn(&str, &Range<usize>) -> bool,
) -> Verdict {
    let cand = &text[s..e];
    for cut in digit_run_ends(cand) {
        let r = s..s + cut;
        if ok(&cand[..cut], &r) {
            return Verdict::Accept(r);
        }
    }
    Verdict::Reject
}

fn validate(rule: Rule, ctx: &Ctx<'_>, s: usize, e: usize) -> Verdict {
    let text = ctx.text;
    match rule {
        Rule::Email => validate_email(text, s, e),
        Rule::Url => validate_url(text, s, e),
        Rule::Ipv4 => {
            let r = s..e;
            let glued_before = prev_char(text, s) == Some('.')
                && prev_char(text, s - 1).is_some_and(|c| c.is_alphanumeric());
            let glued_after = next_char(text, e) == Some('.')
                && next_char(text, e + 1).is_some_and(|c| c.is_ascii_digit());
            if word_edges_ok(text, &r) && !glued_before && !glued_after {
                Verdict::Accept(r)
            } else {
                Verdict::Reject
            }
        }
        Rule::Ipv6 => validate_ipv6(text, s, e),
        Rule::Card => longest_prefix(text, s, e, |p, r| {
            let shape = Shape::of(p);
            let grouped = shape.groups.len() > 1;
            let digits = Shape::digit_string(p);
            (13..=19).contains(&shape.digits)
                && shape.consistent()
                && (!grouped
                    || ((4..=6).contains(&shape.groups[0])
                        && shape.groups[1..].iter().all(|g| (3..=6).contains(g))))
                && !same_digit(p)
                && luhn_valid(&digits)
                && numeric_edges_ok(text, r, DIGIT_JOINERS)
        }),
        Rule::Ssn => {
            let r = s..e;
            if ssn_parts_valid(&text[s..e]) && numeric_edges_ok(text, &r, DIGIT_JOINERS) {
                Verdict::Accept(r)
            } else {
                Verdict::Reject
            }
        }
        Rule::Nino => validate_nino(text, s, e),
        Rule::KeywordId => {
            // The nearest keyword before the digits, close enough, with no other number or
            // masked item in between (`passport 123456789 and 987654321` masks only the
            // first, also when the masking pass runs again on `passport [NATIONAL_ID] and …`).
            let i = ctx.keyword_ends.partition_point(|&k| k <= s);
            let near = i > 0 && {
                let gap = &text[ctx.keyword_ends[i - 1]..s];
                gap.len() <= KEYWORD_WINDOW
                    && !gap.bytes().any(|b| b.is_ascii_digit())
                    && !PiiKind::ALL.iter().any(|k| gap.contains(k.placeholder()))
            };
            if !near {
                return Verdict::Reject;
            }
            longest_prefix(text, s, e, |p, r| {
                let shape = Shape::of(p);
                let ssn_shaped = shape.groups == [3, 2, 4];
                (9..=12).contains(&shape.digits)
                    && shape.consistent()
                    && (!ssn_shaped || ssn_parts_valid(p))
                    && numeric_edges_ok(text, r, DIGIT_JOINERS)
            })
        }
        Rule::PhoneIntl => longest_prefix(text, s, e, |p, r| {
            let digits = Shape::of(p).digits;
            (10..=15).contains(&digits)
                && !same_digit(p)
                && p.matches('(').count() == p.matches(')').count()
                && numeric_edges_ok(text, r, DIGIT_JOINERS)
        }),
        Rule::PhoneNanp => {
            let r = s..e;
            let cand = &text[s..e];
            // `(202) 555-0143` mixes separators by convention; the bare forms may not.
            let seps_ok = cand.contains('(') || Shape::of(cand).consistent();
            if seps_ok && !same_digit(cand) && numeric_edges_ok(text, &r, DIGIT_JOINERS) {
                Verdict::Accept(r)
            } else {
                Verdict::Reject
            }
        }
        Rule::PhoneTrunk => longest_prefix(text, s, e, |p, r| {
            let shape = Shape::of(p);
            // `0044 20 7946 0958`: the international access prefix `00` plus up to 15 digits.
            let max = if p.starts_with("00") { 17 } else { 12 };
            (10..=max).contains(&shape.digits)
                && !same_digit(p)
                && (p.starts_with('(') || shape.consistent())
                && numeric_edges_ok(text, r, DIGIT_JOINERS)
        }),
    }
}

/// Every digit the same (`0000 0000 0000 0000`, `222-222-2222`): a filler, not a number.
fn same_digit(s: &str) -> bool {
    let mut digits = s.bytes().filter(u8::is_ascii_digit);
    let first = digits.next();
    digits.all(|d| Some(d) == first)
}

/// `ddd-dd-dddd` (or any three groups of 3, 2, 4 digits) with a possible area, group and
/// serial: area not 000, 666 or 9xx; group not 00; serial not 0000.
fn ssn_parts_valid(s: &str) -> bool {
    let d = Shape::digit_string(s);
    if d.len() != 9 {
        return false;
    }
    let (area, group, serial) = (&d[0..3], &d[3..5], &d[5..9]);
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

fn validate_email(text: &str, s: usize, e: usize) -> Verdict {
    let at = s + text[s..e].find('@').unwrap_or(0);
    // Every match starting before this `@` ends where this one does, so skip past it.
    let skip = Verdict::SkipTo(at + 1);
    // A local part cannot start with a dot (`...jane@example.com` masks `jane@…`).
    let start = s + text[s..at].len() - text[s..at].trim_start_matches('.').len();
    let mut end = e;
    if text[e..].starts_with("://") {
        // Text glued to a URL (`user@example.comhttps://…`): the TLD swallowed the scheme.
        // Give the scheme back so the URL is still seen whole; otherwise no e-mail here.
        match url_scheme_suffix(&text[at..e]) {
            Some(n) => end = e - n,
            None => return skip,
        }
    }
    let tld_len = text[at..end]
        .rsplit('.')
        .next()
        .map_or(0, |t| t.chars().count());
    // Edges are checked on the whole match: after a scheme cut, the e-mail ends glued to it.
    if start == at || !(2..=63).contains(&tld_len) || !word_edges_ok(text, &(start..e)) {
        return skip;
    }
    Verdict::Accept(start..end)
}

/// Length of a common URL scheme name that `domain` ends with (case-insensitive).
fn url_scheme_suffix(domain: &str) -> Option<usize> {
    const SCHEMES: &[&str] = &[
        "https",
        "http",
        "ftps",
        "sftp",
        "ftp",
        "wss",
        "ws",
        "ssh",
        "git",
        "file",
        "ldaps",
        "ldap",
        "smtp",
        "imap",
        "postgresql",
        "postgres",
        "mysql",
        "mongodb",
        "redis",
        "amqp",
    ];
    let lower = domain.to_ascii_lowercase();
    SCHEMES
        .iter()
        .find(|s| lower.ends_with(*s))
        .map(|s| s.len())
}

fn validate_ipv6(text: &str, s: usize, e: usize) -> Verdict {
    let cand = &text[s..e];
    // `ip:2001:db8::1` — the regex takes the colon after `ip`; `…::1:` — a trailing colon.
    let a = if cand.starts_with(':') && !cand.starts_with("::") {
        s + 1
    } else {
        s
    };
    let b = if cand.ends_with(':') && !cand.ends_with("::") && e - 1 > a {
        e - 1
    } else {
        e
    };
    let c = &text[a..b];
    let r = a..b;
    let hex_groups = c.split(':').filter(|g| !g.is_empty()).count();
    let valid = c.parse::<Ipv6Addr>().is_ok()
        && hex_groups >= 2
        && c.bytes().any(|b| b.is_ascii_digit())
        && word_edges_ok(text, &r);
    if !valid {
        return Verdict::Reject;
    }
    let glued_before = prev_char(text, a) == Some(':')
        && prev_char(text, a - 1).is_some_and(|p| p.is_ascii_hexdigit() || p == ':');
    let glued_after = matches!(next_char(text, b), Some(':' | '.'))
        && next_char(text, b + 1).is_some_and(|n| n.is_ascii_hexdigit());
    if glued_before || glued_after {
        Verdict::Reject
    } else {
        Verdict::Accept(r)
    }
}

/// UK National Insurance number: prefix letters already restricted by the regex (first not
/// D F I Q U V, second not D F I O Q U V); here the excluded pairs, one letter case
/// throughout, and either no spaces, `AB 12 34 56 C` or `AB 123456 C`.
fn validate_nino(text: &str, s: usize, e: usize) -> Verdict {
    let cand = &text[s..e];
    let r = s..e;
    let letters: String = cand.chars().filter(char::is_ascii_alphabetic).collect();
    let upper = letters.to_ascii_uppercase();
    let one_case = letters == upper || letters == letters.to_ascii_lowercase();
    let prefix = &upper[..2];
    let bad_prefix = matches!(prefix, "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ");
    let spaces: Vec<usize> = cand
        .char_indices()
        .filter(|&(_, c)| c == ' ')
        .map(|(i, _)| i)
        .collect();
    let spacing_ok = spaces.is_empty() || spaces == [2, 5, 8, 11] || spaces == [2, 9];
    if one_case && !bad_prefix && spacing_ok && word_edges_ok(text, &r) {
        Verdict::Accept(r)
    } else {
        Verdict::Reject
    }
}

fn validate_url(text: &str, s: usize, e: usize) -> Verdict {
    // Whatever this URL turns out to be, nothing inside it starts a better URL match: nested
    // URLs are checked as part of this one.
    let skip = Verdict::SkipTo(e);
    let url = &text[s..e];
    let (opens, mut closes) = (url.matches('(').count(), url.matches(')').count());
    let (sq_opens, mut sq_closes) = (url.matches('[').count(), url.matches(']').count());
    let mut end = e;
    while let Some(c) = prev_char(text, end).filter(|_| end > s) {
        let trim = match c {
            '.' | ',' | ';' | ':' | '!' | '?' | '*' => true,
            ')' if closes > opens => {
                closes -= 1;
                true
            }
            ']' if sq_closes > sq_opens => {
                sq_closes -= 1;
                true
            }
            _ => false,
        };
        if !trim {
            break;
        }
        end -= c.len_utf8();
    }
    let url = &text[s..end];
    let after_scheme = url.find("://").map_or(url.len(), |i| i + 3);
    if after_scheme >= url.len() || !has_credentials(url) {
        return skip;
    }
    // `xhttps://…` where `x` is not a scheme character (`1https`, `_https`): mask the whole
    // token rather than leave half of it.
    let mut start = s;
    while let Some(c) = prev_char(text, start).filter(|&c| is_word(c)) {
        start -= c.len_utf8();
    }
    Verdict::Accept(start..end)
}

/// Whether a URL carries credentials: userinfo before the host, or a query, fragment or
/// matrix parameter whose name looks secret. Checked on the percent-decoded URL so that a
/// nested, encoded redirect URL (`?next=https%3A%2F%2F…%3Ftoken%3D…`) is caught too.
fn has_credentials(url: &str) -> bool {
    let decoded = percent_decode(url);
    for (i, _) in decoded.match_indices("://") {
        let rest = &decoded[i + 3..];
        let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        if rest[..authority_end].rfind('@').is_some_and(|at| at > 0) {
            return true;
        }
    }
    decoded.split(['?', '&', ';', '#']).skip(1).any(|param| {
        param
            .split_once('=')
            .is_some_and(|(name, value)| !value.is_empty() && is_secret_param(name))
    })
}

/// Parameter names that carry secrets, compared lower-cased with non-alphanumerics removed
/// (`X-Amz-Signature` → `xamzsignature`, `api_key` → `apikey`).
fn is_secret_param(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "token",
        "accesstoken",
        "apikey",
        "key",
        "secret",
        "password",
        "passwd",
        "pwd",
        "pass",
        "sig",
        "signature",
        "auth",
        "authorization",
        "session",
        "sessionid",
        "sid",
        "code",
        "jwt",
        "otp",
    ];
    const SUFFIX: &[&str] = &[
        "token",
        "secret",
        "signature",
        "password",
        "passwd",
        "apikey",
        "accesskey",
        "accesskeyid",
        "secretkey",
        "privatekey",
        "authkey",
        "sessionid",
        "credential",
        "credentials",
    ];
    let n: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !n.is_empty() && (EXACT.contains(&n.as_str()) || SUFFIX.iter().any(|s| n.ends_with(s)))
}

/// `%XX` escapes decoded byte-wise; invalid UTF-8 is replaced, malformed escapes kept.
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_chars_exclude_scripts_without_spaces() {
        for c in ['a', 'Z', '7', '_', 'é', 'ß', 'д', 'λ'] {
            assert!(is_word(c), "{c:?} should be a word char");
        }
        for c in [
            '中', 'か', 'カ', '한', 'ก', '。', '１', ' ', '-', '.', '@', '\u{301}', '😀',
        ] {
            assert!(!is_word(c), "{c:?} should not be a word char");
        }
    }

    #[test]
    fn no_space_class_compiles_and_agrees_with_is_no_space_script() {
        let re = Regex::new(&format!("^[{}]$", no_space_class())).unwrap();
        for c in ['中', 'か', '한', 'ก', '。', '１', '\u{20000}'] {
            assert!(
                re.is_match(&c.to_string()) && is_no_space_script(c),
                "{c:?}"
            );
        }
        for c in ['a', 'é', 'д', ' ', '😀'] {
            assert!(
                !re.is_match(&c.to_string()) && !is_no_space_script(c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn next_token_start_skips_the_rest_of_a_word() {
        assert_eq!(next_token_start("abc def", 0), 3);
        assert_eq!(next_token_start("abc def", 3), 4);
        assert_eq!(next_token_start("a.b", 0), 1);
        assert_eq!(next_token_start("中文abc", 0), 3);
        assert_eq!(next_token_start("x", 0), 1);
        assert_eq!(next_token_start("", 0), 1);
    }

    #[test]
    fn numeric_edges_reject_glued_digits() {
        let ok = |t: &str, r: Range<usize>| numeric_edges_ok(t, &r, DIGIT_JOINERS);
        assert!(ok("a 123 b", 2..5));
        assert!(ok("123", 0..3));
        assert!(ok("(123)", 1..4));
        assert!(!ok("x123", 1..4));
        assert!(!ok("0123", 1..4));
        assert!(!ok("9.123", 2..5));
        assert!(!ok("9-123", 2..5));
        assert!(!ok("123:45", 0..3));
        assert!(!ok("123.4", 0..3));
        assert!(ok("123. Next", 0..3));
        assert!(ok("a-123", 2..5));
    }

    #[test]
    fn shape_counts_groups_and_separators() {
        let s = Shape::of("4111-1111 11");
        assert_eq!(s.digits, 10);
        assert_eq!(s.groups, vec![4, 4, 2]);
        assert_eq!(s.seps, vec!['-', ' ']);
        assert!(!s.consistent());
        assert!(Shape::of("202.555.0143").consistent());
        assert_eq!(Shape::of("+44 (0)20").groups, vec![2, 1, 2]);
    }

    #[test]
    fn digit_run_ends_longest_first() {
        assert_eq!(digit_run_ends("12 345-6"), vec![8, 6, 2]);
        assert_eq!(digit_run_ends("+1 (2)"), vec![5, 2]);
        assert!(digit_run_ends("abc").is_empty());
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_parts_valid("123-45-6789"));
        assert!(ssn_parts_valid("899-01-0001"));
        for bad in [
            "000-45-6789",
            "666-45-6789",
            "900-45-6789",
            "123-00-6789",
            "123-45-0000",
        ] {
            assert!(!ssn_parts_valid(bad), "{bad}");
        }
        assert!(!ssn_parts_valid("123-45-678"));
    }

    #[test]
    fn secret_param_names() {
        for n in [
            "token",
            "TOKEN",
            "access_token",
            "api_key",
            "apiKey",
            "api-key",
            "key",
            "secret",
            "client_secret",
            "password",
            "passwd",
            "pwd",
            "sig",
            "signature",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "auth",
            "session",
            "sessionid",
            "JSESSIONID",
            "code",
            "refresh_token",
        ] {
            assert!(is_secret_param(n), "{n} should be secret");
        }
        for n in [
            "action",
            "q",
            "page",
            "state",
            "zipcode",
            "countrycode",
            "keyword",
            "monkey",
            "",
            "_",
        ] {
            assert!(!is_secret_param(n), "{n} should not be secret");
        }
    }

    #[test]
    fn credentials_in_urls() {
        assert!(has_credentials("https://user:pass@example.com/x"));
        assert!(has_credentials("ftp://admin@10.0.0.1"));
        assert!(has_credentials("https://example.com/cb?code=abc&state=x"));
        assert!(has_credentials("https://example.com/cb#access_token=abc"));
        assert!(has_credentials("https://example.com/a;jsessionid=ABC123"));
        assert!(has_credentials(
            "https://a.com/?next=https%3A%2F%2Fb.com%2F%3Ftoken%3Dabc"
        ));
        assert!(has_credentials("https://a.com/?next=https://u:p@b.com/"));
        assert!(!has_credentials(
            "https://en.wikipedia.org/wiki/Rust?action=edit"
        ));
        assert!(!has_credentials("https://medium.com/@user/post"));
        assert!(!has_credentials("https://example.com/?token="));
        assert!(!has_credentials("https://example.com/token=abc"));
        assert!(!has_credentials("https://@example.com/"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3Fb%3db"), "a?b=b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn resolve_prefers_earliest_then_longest_then_priority() {
        let c = vec![
            (PiiKind::Phone, 5..15),
            (PiiKind::IpAddress, 0..10),
            (PiiKind::CardNumber, 20..30),
            (PiiKind::Phone, 20..30),
            (PiiKind::Email, 20..25),
            (PiiKind::NationalId, 0..8),
        ];
        assert_eq!(
            resolve(c),
            vec![(PiiKind::IpAddress, 0..10), (PiiKind::CardNumber, 20..30)]
        );
    }

    #[test]
    fn keyword_applies_to_the_next_number_only() {
        let d = Detectors::new(&[PiiKind::NationalId]);
        let t = "passport 123456789 and 987654321";
        assert_eq!(d.detect(t), vec![(PiiKind::NationalId, 9..18)]);
        let far = "passport, issued in the city of Springfield: 123456789";
        assert!(d.detect(far).is_empty());
        assert!(d.detect("ref 123456789").is_empty());
    }

    #[test]
    fn every_rule_pattern_compiles() {
        for rule in Rule::ALL {
            Regex::new(&rule.pattern()).unwrap_or_else(|e| panic!("{rule:?}: {e}"));
        }
        Regex::new(KEYWORD_PATTERN).unwrap();
    }
}
