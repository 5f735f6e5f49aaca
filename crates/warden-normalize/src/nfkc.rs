use unicode_normalization::char::{canonical_combining_class, decompose_compatible};
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use crate::out::{rewrite, Align, Apply};

/// Unicode NFKC: compatibility characters become their plain forms (fullwidth `ｆｕｃｋ` →
/// `fuck`, ligature `ﬁ` → `fi`, mathematical bold `𝐤𝐢𝐥𝐥` → `kill`, circled `ⓚ` → `k`) and
/// base letters compose with their combining marks.
///
/// The text is cut into segments that NFKC cannot act across (a segment starts at a char
/// whose decomposition begins with a starter that never composes backwards), and each
/// segment is normalized on its own. A segment that NFKC leaves unchanged keeps its per-char
/// alignment; otherwise every output char of the segment maps to the whole segment (so one
/// char expanding to many shares its range). ASCII text and text that passes the NFKC quick
/// check are left untouched without copying.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nfkc;

/// True when NFKC can never combine `c` (or what it decomposes to) with the text before it.
fn boundary_before(c: char) -> bool {
    if c.is_ascii() {
        return true;
    }
    let mut first = None;
    decompose_compatible(c, |d| {
        first.get_or_insert(d);
    });
    let d0 = first.unwrap_or(c);
    canonical_combining_class(d0) == 0 && is_nfkc_quick(std::iter::once(d0)) == IsNormalized::Yes
}

impl Apply for Nfkc {
    fn apply(&self, text: &mut String, align: Option<&mut Align>) {
        if text.is_ascii() || is_nfkc_quick(text.chars()) == IsNormalized::Yes {
            return;
        }
        rewrite(text, align, |s, out| {
            let mut scratch = String::new();
            let mut flush = |seg: &str, cs: usize, ce: usize, out: &mut crate::out::Out<'_>| {
                if ce == cs + 1 {
                    let c = seg.chars().next().expect("non-empty segment");
                    if c.is_ascii() || is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes {
                        out.push(c, cs, ce);
                        return;
                    }
                }
                scratch.clear();
                scratch.extend(seg.chars().nfkc());
                if scratch == seg {
                    for (k, c) in seg.chars().enumerate() {
                        out.push(c, cs + k, cs + k + 1);
                    }
                } else {
                    for c in scratch.chars() {
                        out.push(c, cs, ce);
                    }
                }
            };
            let (mut sb, mut sc, mut ci) = (0usize, 0usize, 0usize);
            for (bi, c) in s.char_indices() {
                if bi > 0 && boundary_before(c) {
                    flush(&s[sb..bi], sc, ci, out);
                    sb = bi;
                    sc = ci;
                }
                ci += 1;
            }
            if sb < s.len() {
                flush(&s[sb..], sc, ci, out);
            }
        });
    }
}

crate::stage_impl!(Nfkc);
