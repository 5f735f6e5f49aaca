#![allow(dead_code)]

use proptest::prelude::*;
use warden_normalize::*;

/// Checks the alignment invariants of `n` (the result of normalizing `original`).
pub fn check_alignment(original: &str, n: &Normalized) -> Result<(), String> {
    let chars = n.text().chars().count();
    if n.alignment().len() != chars {
        return Err(format!(
            "{} alignment entries for {} chars",
            n.alignment().len(),
            chars
        ));
    }
    if n.original_len() != original.len() {
        return Err("original_len changed".into());
    }
    let mut last_start = 0;
    for (i, r) in n.alignment().iter().enumerate() {
        if r.start > r.end || r.end > original.len() {
            return Err(format!(
                "range {r:?} of char {i} outside 0..{}",
                original.len()
            ));
        }
        if !original.is_char_boundary(r.start) || !original.is_char_boundary(r.end) {
            return Err(format!("range {r:?} of char {i} not on char boundaries"));
        }
        if r.start < last_start {
            return Err(format!(
                "range {r:?} of char {i} starts before {last_start}"
            ));
        }
        last_start = r.start;
    }
    Ok(())
}

/// For a per-char stage: the chars aligned to one original range are exactly what the stage
/// makes of that range alone, and distinct ranges do not overlap.
pub fn check_per_char(stage: &dyn Stage, original: &str, n: &Normalized) -> Result<(), String> {
    let mut groups: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (c, r) in n.text().chars().zip(n.alignment()) {
        match groups.last_mut() {
            Some((last, s)) if last == r => s.push(c),
            _ => groups.push((r.clone(), c.to_string())),
        }
    }
    for w in groups.windows(2) {
        if w[0].0.end > w[1].0.start {
            return Err(format!("overlapping ranges {:?} {:?}", w[0].0, w[1].0));
        }
    }
    for (r, s) in groups {
        let alone = stage.normalize_str(&original[r.clone()]);
        if alone.text() != s {
            return Err(format!(
                "{:?} alone gives {:?} but {:?} is aligned to it",
                &original[r],
                alone.text(),
                s
            ));
        }
    }
    Ok(())
}

const INVISIBLES: &[char] = &[
    '\u{00AD}',
    '\u{034F}',
    '\u{061C}',
    '\u{115F}',
    '\u{1160}',
    '\u{180E}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}',
    '\u{202A}',
    '\u{202E}',
    '\u{2060}',
    '\u{2066}',
    '\u{2069}',
    '\u{3164}',
    '\u{FE0F}',
    '\u{FEFF}',
    '\u{FFA0}',
    '\u{E0041}',
    '\u{E0100}',
];

const SPECIALS: &[char] = &[
    'İ', 'ı', 'ẞ', 'ß', '\u{212A}', '\u{2126}', '\u{212B}', '\u{0F73}', '\u{0344}', '\u{1E9B}',
    'ǅ', 'Ǆ', 'ﬁ', 'ﬀ', '①', '⒜', 'ℌ', '㎏', 'Σ', 'ς', 'Η', 'η', 'Ӏ', 'ӏ', '\u{0338}', '<', '=',
    '\u{20E3}', '\u{3099}', '\u{309A}', 'ｶ', 'ﾞ', 'ﾟ', '\u{0B47}', '\u{0B3E}', '\u{0B57}', '가',
    '\u{11A8}', '\u{1161}', 'ᄀ', '🅺', '🇺', '🇸', 'Ɪ', 'Ꞵ', 'ϴ', 'ϒ', '\u{0345}', 'ͅ',
];

/// Chars biased towards what the stages act on and towards Unicode's corner cases.
pub fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(
            "abcdefghijklmnopqrstuvwxyzAEIKLOSUWXYZ".chars().collect::<Vec<_>>()
        ),
        3 => prop::sample::select(" .-_$@!0134579".chars().collect::<Vec<_>>()),
        2 => prop::sample::select(INVISIBLES),
        2 => prop::sample::select(SPECIALS),
        2 => prop::char::range('\u{0300}', '\u{036F}'),
        1 => prop::char::range('\u{0900}', '\u{097F}'),
        2 => prop::char::range('\u{0370}', '\u{03FF}'),
        2 => prop::char::range('\u{0400}', '\u{04FF}'),
        1 => prop::char::range('\u{0530}', '\u{058F}'),
        2 => prop::char::range('\u{00A0}', '\u{024F}'),
        1 => prop::char::range('\u{0250}', '\u{02AF}'),
        1 => prop::char::range('\u{1D00}', '\u{1D2B}'),
        1 => prop::char::range('\u{1E00}', '\u{1EFF}'),
        2 => prop::char::range('\u{FF01}', '\u{FF9F}'),
        1 => prop::char::range('\u{FB00}', '\u{FB06}'),
        1 => prop::char::range('\u{1100}', '\u{11FF}'),
        1 => prop::char::range('\u{AC00}', '\u{AC20}'),
        1 => prop::char::range('\u{2460}', '\u{24FF}'),
        1 => prop::char::range('\u{1D400}', '\u{1D4FF}'),
        1 => prop::char::range('\u{1F130}', '\u{1F1FF}'),
        1 => prop::char::range('\u{3040}', '\u{30FF}'),
        2 => any::<char>(),
    ]
}

pub fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..40).prop_map(|v| v.into_iter().collect())
}

const TOKENS: &[&str] = &[
    "k1ll",
    "D3ath",
    "$hit",
    "@ss",
    "a$$",
    "sh1t",
    "b!tch",
    "2024",
    "1st",
    "3pm",
    "covid19",
    "9/11",
    "U.S.",
    "U.S.A.",
    "e.g.",
    "w h o r e s",
    "f.u.c.k",
    "k-i-l-l",
    "s_l_u_t",
    "a",
    "i",
    "I",
    "a s s",
    "i d i o t",
    "x",
    "fuuuuck",
    "!!!!!",
    "...",
    "ｆｕｃｋ",
    "ﬁ",
    "рussу",
    "ki\u{200B}ll",
    "é",
    "e\u{301}",
    "ü",
    "ΗΕLLΟ",
    "ᴋɪʟʟ",
    "🅺",
    "1000",
    "$5",
    "hello!",
    "  ",
    "",
    "-",
    ".",
    "\u{301}",
    "ß",
    "İ",
    "ooo",
    "o",
    "s",
    "h",
    "1",
    "!",
    "$",
];

/// Text built from obfuscation-shaped tokens, glued with or without spaces.
pub fn token_string() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => prop::sample::select(TOKENS).prop_map(str::to_owned),
        1 => tricky_string().prop_map(|s| s.chars().take(4).collect::<String>()),
        2 => "[a-z]{1,6}",
    ];
    prop::collection::vec(
        (token, prop::sample::select(vec!["", " ", " ", ".", "-"])),
        0..12,
    )
    .prop_map(|v| v.into_iter().flat_map(|(t, g)| [t, g.to_owned()]).collect())
}

pub fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => tricky_string(),
        2 => token_string(),
        1 => any::<String>(),
    ]
}

/// Every stage on its own, with a name.
pub fn stages() -> Vec<(&'static str, Box<dyn Stage>)> {
    vec![
        ("StripInvisible", Box::new(StripInvisible)),
        ("Nfkc", Box::new(Nfkc)),
        ("FoldConfusables", Box::new(FoldConfusables)),
        ("CaseFold", Box::new(CaseFold)),
        ("Leetspeak", Box::new(Leetspeak)),
        ("Despace", Box::new(Despace)),
        ("CollapseRepeats", Box::new(CollapseRepeats)),
        ("default_pipeline", Box::new(default_pipeline())),
    ]
}
