//! The loaders against the real external lists in `shared/data` (never copied into the
//! repository). Each test prints a note and passes when its file is absent.

use std::path::PathBuf;

use warden_core::Taxonomy;
use warden_rules::{IdentityTerms, RuleList, RuleSet, Severity, SURGE_SOURCE};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("note: {} is absent; skipping", p.display());
        None
    }
}

#[test]
fn surge_profanity_csv() {
    let Some(path) = shared("surge-profanity/profanity_en.csv") else {
        return;
    };
    let list = RuleList::load_surge_csv(&path).unwrap();
    // The catalogue: 1,598 entries, Mild 422 / Strong 713 / Severe 463.
    assert_eq!(list.entries.len(), 1598);
    let count = |s| list.entries.iter().filter(|e| e.severity == s).count();
    assert_eq!(
        (
            count(Severity::Mild),
            count(Severity::Strong),
            count(Severity::Severe)
        ),
        (422, 713, 463)
    );
    // Primary categories: 980 sexual anatomy / acts → S; slurs 192 + orientation/gender 182
    // + mental 15 + physical disability 1 + religious 19 → H; the rest (52 + 5 + 3 + 3 +
    // 146) → HR.
    let cat = |c: &str| list.entries.iter().filter(|e| e.category == c).count();
    assert_eq!((cat("S"), cat("H"), cat("HR")), (980, 409, 209));
    assert_eq!(list.licence, "MIT");
    assert_eq!(list.source, SURGE_SOURCE);
    let rs = RuleSet::new(vec![list], &Taxonomy::builtin()).unwrap();
    assert!(rs.len() > 1500);
    assert!(!rs.find("what an @sshole").is_empty());
}

#[test]
fn ldnoobw_en() {
    let Some(path) = shared("ldnoobw-en/en") else {
        return;
    };
    let list =
        RuleList::load_lines(&path, "ldnoobw-en", "S", Severity::Strong, "CC-BY-4.0").unwrap();
    assert_eq!(list.entries.len(), 403);
    assert_eq!(list.licence, "CC-BY-4.0");
    let rs = RuleSet::new(vec![list, RuleList::builtin()], &Taxonomy::builtin()).unwrap();
    assert_eq!(rs.lists().len(), 2);
    assert_eq!(rs.lists()[0].terms, 403);
    // Multi-word entries match across line breaks.
    assert!(rs
        .find("two girls: 2 girls\n1 cup")
        .iter()
        .any(|h| h.list == "ldnoobw-en"));
}

#[test]
fn holistic_bias_descriptors() {
    let Some(dir) = shared("holistic-bias/v1.1") else {
        return;
    };
    let t = IdentityTerms::load_holistic_bias(&dir).unwrap();
    assert_eq!(t.name(), "holistic-bias v1.1");
    // 583 descriptors, minus the nonce and body_type axes, short words and stop words,
    // plus spaced forms of hyphenated ones.
    assert!((300..=600).contains(&t.len()), "{}", t.len());
    assert!(t
        .terms()
        .all(|(axis, _)| axis != "nonce" && axis != "body_type"));
    assert_eq!(
        t.first_match("Our Sikh and Jain neighbours"),
        Some(("religion", "sikh"))
    );
    assert_eq!(
        t.first_match("a hard of hearing teacher"),
        Some(("ability", "hard of hearing"))
    );
    assert!(t.mentions("She is gay."));
    for benign in [
        "a single, straight road",
        "the senior engineer is poor at chess",
        "a big old tree",
    ] {
        assert!(!t.mentions(benign), "{benign}: {:?}", t.first_match(benign));
    }
}
