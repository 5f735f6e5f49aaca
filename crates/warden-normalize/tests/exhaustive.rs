//! Every Unicode scalar value, alone and in a few contexts, through the default pipeline:
//! idempotent, same text on both paths, valid alignment, and NFKC agreeing with the
//! reference implementation.

mod common;

use unicode_normalization::UnicodeNormalization;
use warden_normalize::*;

fn check_range(lo: u32, hi: u32) {
    let p = TextNormalizer::new();
    let mut s = String::new();
    let mut out = String::new();
    let mut again = String::new();
    for c in (lo..hi).filter_map(char::from_u32) {
        // Alone, between ASCII letters with a following mark, tripled, and after Hangul/kana
        // that could compose with it.
        let contexts: [&[char]; 4] = [
            &[c],
            &['K', c, '\u{301}', 'b'],
            &[c, c, c],
            &['\u{1100}', c, 'ｶ', c],
        ];
        for ctx in contexts {
            s.clear();
            s.extend(ctx.iter());
            p.normalize_into(&s, &mut out);
            p.normalize_into(&out, &mut again);
            assert_eq!(out, again, "not idempotent on {s:?} (U+{:04X})", c as u32);
            let aligned = p.normalize_str(&s);
            assert_eq!(
                aligned.text(),
                out,
                "paths differ on {s:?} (U+{:04X})",
                c as u32
            );
            if let Err(e) = common::check_alignment(&s, &aligned) {
                panic!("{s:?} (U+{:04X}): {e}", c as u32);
            }
            let nfkc = Nfkc.normalize_str(&s);
            assert!(nfkc.text().chars().eq(s.nfkc()), "Nfkc differs on {s:?}");
        }
    }
}

#[test]
fn bmp_low() {
    check_range(0, 0x8000);
}

#[test]
fn bmp_high() {
    check_range(0x8000, 0x10000);
}

#[test]
fn supplementary_planes() {
    check_range(0x10000, 0x30000);
    check_range(0xE0000, 0xE1000);
}

#[test]
fn the_rest() {
    // Planes 3-13 and the private use planes: mostly unassigned, checked sparsely.
    for start in (0x30000..0x110000).step_by(0x1000) {
        check_range(start, start + 0x40);
    }
}
