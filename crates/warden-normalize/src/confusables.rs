use unicode_normalization::char::{decompose_canonical, is_combining_mark};

use crate::out::{ascii_str, rewrite, Align, Apply};

/// Folds homoglyphs to ASCII: Cyrillic, Greek and Armenian look-alikes (`рussу` → `pussy`,
/// `ΑΒΕ` → `ABE`), small capitals (`ᴋɪʟʟ` → `kill`), Latin letters with strokes or that are
/// ligatures (`ø` → `o`, `ß` → `ss`, `æ` → `ae`), enclosed and regional-indicator letters
/// (`🅺` → `k`, `🇺🇸` → `us`), and accented letters to their base letter (`ü` → `u`,
/// `é` → `e`, `ё` → `e`).
///
/// Rules, applied per char:
/// 1. ASCII stays as it is.
/// 2. A char in the homoglyph table becomes its ASCII replacement. The table is
///    case-sensitive (`Η` → `H` but `η` → `n`), which is why this stage runs *before*
///    [`CaseFold`](crate::CaseFold) in the default pipeline.
/// 3. A char whose canonical decomposition is a base letter followed by combining marks,
///    where the base is an ASCII letter or in the table, becomes that base.
/// 4. A char not covered by 2–3 whose (single-char) lowercase is covered is folded like its
///    lowercase. This keeps the stage consistent with case folding, which the pipeline's
///    idempotence needs: whatever this stage leaves alone, its lowercase is left alone too.
/// 5. A combining mark directly after an ASCII char (after any marks already dropped) is
///    dropped: `k̲i̲l̲l̲` → `kill`, Zalgo text loses its marks. Marks on other scripts
///    (Devanagari vowel signs, Hebrew points on Hebrew letters) are kept.
///
/// Every output char maps to the char it came from (`ß` → `ss`: both `s` share `ß`'s range);
/// dropped marks vanish.
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldConfusables;

fn letter_range(c: char, first: char, base: u8) -> &'static str {
    ascii_str(base + (c as u32 - first as u32) as u8)
}

/// The homoglyph table (rule 2).
#[rustfmt::skip]
fn table(c: char) -> Option<&'static str> {
    Some(match c {
        // Cyrillic capitals
        'А' => "A", 'В' => "B", 'Е' => "E", 'К' => "K", 'М' => "M", 'Н' => "H", 'О' => "O",
        'Р' => "P", 'С' => "C", 'Т' => "T", 'У' => "Y", 'Х' => "X", 'Ѕ' => "S", 'І' => "I",
        'Ј' => "J", 'Ү' => "Y", 'Һ' => "H", 'Ӏ' => "l", 'Ԁ' => "D", 'Ԛ' => "Q", 'Ԝ' => "W",
        // Cyrillic small letters
        'а' => "a", 'в' => "b", 'е' => "e", 'к' => "k", 'м' => "m", 'н' => "h", 'о' => "o",
        'п' => "n", 'р' => "p", 'с' => "c", 'т' => "t", 'у' => "y", 'х' => "x", 'ь' => "b",
        'ш' => "w", 'ѕ' => "s", 'і' => "i", 'ј' => "j", 'ү' => "y", 'һ' => "h", 'ӏ' => "l",
        'ԁ' => "d", 'ԛ' => "q", 'ԝ' => "w", 'ѡ' => "w",
        // Greek capitals
        'Α' => "A", 'Β' => "B", 'Ε' => "E", 'Ζ' => "Z", 'Η' => "H", 'Ι' => "I", 'Κ' => "K",
        'Μ' => "M", 'Ν' => "N", 'Ο' => "O", 'Ρ' => "P", 'Τ' => "T", 'Υ' => "Y", 'Χ' => "X",
        'Ϲ' => "C", 'Ϳ' => "J",
        // Greek small letters
        'α' => "a", 'β' => "b", 'γ' => "y", 'ε' => "e", 'η' => "n", 'ι' => "i", 'κ' => "k",
        'μ' => "u", 'ν' => "v", 'ο' => "o", 'ρ' => "p", 'τ' => "t", 'υ' => "u", 'χ' => "x",
        'ω' => "w", 'ϲ' => "c", 'ϳ' => "j",
        // Armenian
        'Օ' => "O", 'Ս' => "U", 'օ' => "o", 'ս' => "u", 'հ' => "h", 'ո' => "n",
        // Latin letters with strokes, ligatures and other look-alikes
        'ø' => "o", 'Ø' => "O", 'ł' => "l", 'Ł' => "L", 'đ' => "d", 'Đ' => "D", 'ð' => "d",
        'Ð' => "D", 'ħ' => "h", 'Ħ' => "H", 'ŧ' => "t", 'Ŧ' => "T", 'ƀ' => "b", 'ɨ' => "i",
        'ʉ' => "u", 'ı' => "i", 'ȷ' => "j", 'æ' => "ae", 'Æ' => "AE", 'œ' => "oe",
        'Œ' => "OE", 'ß' => "ss", 'ẞ' => "SS", 'ɑ' => "a", 'ɡ' => "g", 'ɩ' => "i", 'ɛ' => "e",
        // small capitals
        'ᴀ' => "a", 'ʙ' => "b", 'ᴄ' => "c", 'ᴅ' => "d", 'ᴇ' => "e", 'ꜰ' => "f", 'ɢ' => "g",
        'ʜ' => "h", 'ɪ' => "i", 'ᴊ' => "j", 'ᴋ' => "k", 'ʟ' => "l", 'ᴍ' => "m", 'ɴ' => "n",
        'ᴏ' => "o", 'ᴘ' => "p", 'ʀ' => "r", 'ꜱ' => "s", 'ᴛ' => "t", 'ᴜ' => "u", 'ᴠ' => "v",
        'ᴡ' => "w", 'ʏ' => "y", 'ᴢ' => "z",
        // enclosed letters without a compatibility decomposition, regional indicators
        '\u{1F130}'..='\u{1F149}' => letter_range(c, '\u{1F130}', b'A'),
        '\u{1F150}'..='\u{1F169}' => letter_range(c, '\u{1F150}', b'A'),
        '\u{1F170}'..='\u{1F189}' => letter_range(c, '\u{1F170}', b'A'),
        '\u{1F1E6}'..='\u{1F1FF}' => letter_range(c, '\u{1F1E6}', b'a'),
        _ => return None,
    })
}

/// Rules 2 and 3.
fn fold_exact(c: char) -> Option<&'static str> {
    if let Some(s) = table(c) {
        return Some(s);
    }
    let mut first = None;
    let mut rest_are_marks = true;
    let mut n = 0;
    decompose_canonical(c, |d| {
        if n == 0 {
            first = Some(d);
        } else if !is_combining_mark(d) {
            rest_are_marks = false;
        }
        n += 1;
    });
    if n < 2 || !rest_are_marks {
        return None;
    }
    let base = first?;
    if base.is_ascii_alphabetic() {
        Some(ascii_str(base as u8))
    } else {
        table(base)
    }
}

/// What [`FoldConfusables`] turns the non-ASCII char `c` into (rules 2–4), if anything.
pub fn fold_char(c: char) -> Option<&'static str> {
    if c.is_ascii() {
        return None;
    }
    fold_exact(c).or_else(|| {
        let mut l = c.to_lowercase();
        let l0 = l.next()?;
        if l0 == c || l.next().is_some() {
            None
        } else {
            fold_exact(l0)
        }
    })
}

impl Apply for FoldConfusables {
    fn apply(&self, text: &mut String, align: Option<&mut Align>) {
        if text.is_ascii() {
            return;
        }
        rewrite(text, align, |s, out| {
            let mut after_ascii = false;
            for (i, c) in s.chars().enumerate() {
                if c.is_ascii() {
                    out.push(c, i, i + 1);
                    after_ascii = true;
                } else if let Some(f) = fold_char(c) {
                    for b in f.bytes() {
                        out.push(b as char, i, i + 1);
                    }
                    after_ascii = true;
                } else if after_ascii && is_combining_mark(c) {
                    // dropped
                } else {
                    out.push(c, i, i + 1);
                    after_ascii = false;
                }
            }
        });
    }
}

crate::stage_impl!(FoldConfusables);
