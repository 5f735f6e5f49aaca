use crate::out::{rewrite, Align, Apply};

/// Removes characters that render as nothing but split words for a matcher: zero-width
/// spaces and joiners, bidi controls, soft hyphens, variation selectors, tags, Hangul
/// fillers and the other default-ignorable code points listed in [`is_invisible`].
///
/// `ki\u{200B}ll` → `kill`. Removed characters simply vanish from the alignment.
#[derive(Debug, Clone, Copy, Default)]
pub struct StripInvisible;

/// True for the characters [`StripInvisible`] removes.
#[rustfmt::skip]
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                      // soft hyphen
        | '\u{034F}'                    // combining grapheme joiner
        | '\u{061C}'                    // Arabic letter mark
        | '\u{115F}' | '\u{1160}'       // Hangul choseong/jungseong fillers
        | '\u{17B4}' | '\u{17B5}'       // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'       // Mongolian variation selectors, vowel separator
        | '\u{200B}'..='\u{200F}'       // ZWSP, ZWNJ, ZWJ, LRM, RLM
        | '\u{202A}'..='\u{202E}'       // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}'       // word joiner, invisible operators, bidi isolates, deprecated format chars
        | '\u{3164}'                    // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'       // variation selectors
        | '\u{FEFF}'                    // zero-width no-break space / BOM
        | '\u{FFA0}'                    // halfwidth Hangul filler
        | '\u{FFF0}'..='\u{FFF8}'       // unassigned default-ignorables
        | '\u{1BCA0}'..='\u{1BCA3}'     // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}'     // musical formatting controls
        | '\u{E0000}'..='\u{E0FFF}'     // tags, variation selectors supplement
    )
}

impl Apply for StripInvisible {
    fn apply(&self, text: &mut String, align: Option<&mut Align>) {
        if text.is_ascii() || !text.chars().any(is_invisible) {
            return;
        }
        rewrite(text, align, |s, out| {
            for (i, c) in s.chars().enumerate() {
                if !is_invisible(c) {
                    out.push(c, i, i + 1);
                }
            }
        });
    }
}

crate::stage_impl!(StripInvisible);
