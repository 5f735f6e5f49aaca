//! Property tests: idempotence, alignment correctness, and text-only == aligned.

mod common;

use common::*;
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;
use warden_normalize::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pipeline_is_idempotent(s in any_string()) {
        let p = TextNormalizer::new();
        let once = p.normalize_str(&s);
        let twice = p.normalize_str(once.text());
        prop_assert_eq!(once.text(), twice.text(), "input {:?}", s);
    }

    #[test]
    fn every_stage_is_idempotent(s in any_string()) {
        for (name, stage) in stages() {
            let once = stage.normalize_str(&s);
            let twice = stage.normalize_str(once.text());
            prop_assert_eq!(once.text(), twice.text(), "{} on {:?}", name, s);
        }
    }

    #[test]
    fn alignments_are_valid(s in any_string()) {
        for (name, stage) in stages() {
            let n = stage.normalize_str(&s);
            if let Err(e) = check_alignment(&s, &n) {
                return Err(TestCaseError::fail(format!("{name} on {s:?}: {e}")));
            }
        }
    }

    #[test]
    fn alignments_compose_through_stages(s in any_string()) {
        // Applying stages one at a time to a Normalized composes alignments correctly.
        let mut n = Normalized::new(&s);
        for (name, stage) in stages().into_iter().take(7) {
            stage.normalize(&mut n);
            if let Err(e) = check_alignment(&s, &n) {
                return Err(TestCaseError::fail(format!("after {name} on {s:?}: {e}")));
            }
        }
        let whole = default_pipeline().normalize_str(&s);
        prop_assert_eq!(n.text(), whole.text());
    }

    #[test]
    fn per_char_stages_map_each_range_to_its_own_output(s in any_string()) {
        let per_char: [(&str, &dyn Stage); 4] = [
            ("StripInvisible", &StripInvisible),
            ("Nfkc", &Nfkc),
            ("CaseFold", &CaseFold),
            ("FoldConfusables", &FoldConfusables),
        ];
        for (name, stage) in per_char {
            let n = stage.normalize_str(&s);
            if let Err(e) = check_per_char(stage, &s, &n) {
                return Err(TestCaseError::fail(format!("{name} on {s:?}: {e}")));
            }
        }
    }

    #[test]
    fn text_only_path_equals_aligned_path(s in any_string()) {
        for (name, stage) in stages() {
            let aligned = stage.normalize_str(&s);
            let mut text = s.clone();
            stage.normalize_in_place(&mut text);
            prop_assert_eq!(aligned.text(), text.as_str(), "{} on {:?}", name, s);
        }
        let p = TextNormalizer::new();
        let mut out = String::from("stale");
        p.normalize_into(&s, &mut out);
        let aligned = p.normalize_str(&s);
        prop_assert_eq!(aligned.text(), out.as_str());
        prop_assert_eq!(p.normalize_text(&s), out);
    }

    #[test]
    fn nfkc_stage_equals_full_string_nfkc(s in any_string()) {
        let expected: String = s.nfkc().collect();
        let got = Nfkc.normalize_str(&s);
        prop_assert_eq!(got.text(), expected.as_str());
    }

    #[test]
    fn plain_words_map_back_exactly(
        parts in prop::collection::vec(
            prop_oneof![
                2 => "[a-z]{2,8}".prop_map(|w| (w, true)),
                3 => any_string().prop_map(|s| (s, false)),
            ],
            1..8,
        )
    ) {
        // Words of plain ASCII lowercase letters (no triple letters, which collapse), separated
        // from arbitrary neighbours by one space, come out unchanged, and the span of their
        // normalized chars maps back to exactly their original bytes.
        let mut original = String::new();
        let mut words = Vec::new();
        for (i, (t, plain)) in parts.iter().enumerate() {
            if i > 0 {
                original.push(' ');
            }
            let triple = t.as_bytes().windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
            if *plain && !triple {
                words.push((original.len()..original.len() + t.len(), t.clone()));
            }
            original.push_str(t);
        }
        let n = default_pipeline().normalize_str(&original);
        for (range, word) in words {
            let mut start = None;
            let mut end = 0;
            let mut got = String::new();
            for ((bi, c), r) in n.text().char_indices().zip(n.alignment()) {
                if r.start >= range.start && r.end <= range.end {
                    start.get_or_insert(bi);
                    prop_assert_eq!(bi, start.unwrap() + got.len(), "non-contiguous in {:?}", original);
                    got.push(c);
                    end = bi + c.len_utf8();
                } else {
                    prop_assert!(
                        r.end <= range.start || r.start >= range.end,
                        "char {:?} with range {:?} overlaps word {:?} in {:?}", c, r, word, original
                    );
                }
            }
            prop_assert_eq!(&got, &word, "in {:?} -> {:?}", original, n.text());
            prop_assert_eq!(n.original_span(start.unwrap()..end), range);
        }
    }
}
