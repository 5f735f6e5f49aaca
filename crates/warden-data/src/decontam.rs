//! The held-out decontamination list and its text normalisation.
//!
//! `shared/data/heldout-decontamination/normalized_text_sha256.txt.gz` holds the SHA-256 of
//! every held-out evaluation text after [`decontam_normalize`]. Any training row whose
//! normalised hash is in the list is dropped.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use sha2::{Digest, Sha256};
use unicode_general_category::{get_general_category, GeneralCategory as G};
use unicode_normalization::UnicodeNormalization;

use crate::{DataError, Result};

/// Python's `str.isspace()` (and so `\s` of `re` on `str` patterns): Unicode White_Space
/// plus the information separators U+001C..U+001F.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `\w` on `str` patterns: letters (L*), numbers (Nd, Nl, No) and `_`. Combining
/// marks are *not* word characters.
pub fn py_is_word(c: char) -> bool {
    if c == '_' || c.is_ascii_alphanumeric() {
        return true;
    }
    if c.is_ascii() {
        return false;
    }
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

/// The README's normalisation: NFKC, lowercase, delete every character that is neither a
/// word character nor whitespace (Python's `re.sub(r"[^\w\s]", "", t)`), collapse runs of
/// whitespace to one space and strip both ends.
pub fn decontam_normalize(text: &str) -> String {
    let nfkc: String = text.nfkc().collect();
    // Rust's str::to_lowercase implements the same full mappings as Python's str.lower(),
    // including the final-sigma rule.
    let lower = nfkc.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut pending_space = false;
    for c in lower.chars() {
        if py_isspace(c) {
            pending_space = true;
        } else if py_is_word(c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
        // Anything else is deleted without breaking a whitespace run: "a , b" -> "a b".
    }
    out
}

/// SHA-256 of the normalised text.
pub fn text_hash(text: &str) -> [u8; 32] {
    Sha256::digest(decontam_normalize(text).as_bytes()).into()
}

/// The set of held-out hashes.
#[derive(Debug, Clone, Default)]
pub struct Decontaminator {
    hashes: HashSet<[u8; 32]>,
}

impl Decontaminator {
    /// An empty list (drops nothing). Only for tests and explicit opt-outs.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn from_hashes(hashes: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Self { hashes: hashes.into_iter().collect() }
    }

    /// Loads a file of lowercase hex SHA-256 lines (gzipped when the name ends in `.gz`).
    /// Blank lines and lines starting with `#` are ignored.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let reader = BufReader::new(crate::read::open_maybe_gz(path)?);
        let mut hashes = HashSet::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| DataError::Io { path: path.to_owned(), source })?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut h = [0u8; 32];
            hex::decode_to_slice(line, &mut h).map_err(|e| DataError::Parse {
                path: path.to_owned(),
                line: i + 1,
                message: format!("not a hex SHA-256 ({e}): {line:?}"),
            })?;
            hashes.insert(h);
        }
        Ok(Self { hashes })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn contains_hash(&self, hash: &[u8; 32]) -> bool {
        self.hashes.contains(hash)
    }

    /// True when the normalised text's hash is held out.
    pub fn contains_text(&self, text: &str) -> bool {
        self.contains_hash(&text_hash(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_check_values() {
        assert_eq!(decontam_normalize("Hello,   World!"), "hello world");
        assert_eq!(
            hex::encode(text_hash("Hello,   World!")),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(decontam_normalize("ＡＢＣ"), "abc");
        assert_eq!(
            hex::encode(text_hash("ＡＢＣ")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn python_semantics_edge_cases() {
        // Combining marks are deleted (not \w); U+001F is whitespace in Python.
        assert_eq!(decontam_normalize("x\u{301}t\u{1f}y"), "xt y");
        assert_eq!(decontam_normalize("e\u{301}"), "é");
        assert_eq!(decontam_normalize("  a , b  "), "a b");
        assert_eq!(decontam_normalize("snake_case ½ Ⅻ"), "snake_case 12 xii");
        assert_eq!(decontam_normalize("ΣΑΣ"), "σας");
        assert_eq!(decontam_normalize("!!!"), "");
        assert_eq!(decontam_normalize("a\u{200b}b"), "ab");
    }
}
