use super::*;

fn span(kind: PiiKind, original: Range<usize>, masked: Range<usize>) -> PiiSpan {
    PiiSpan {
        kind,
        original,
        masked,
    }
}

#[test]
fn render_replaces_ranges_and_records_both_offsets() {
    let m = render(
        "ab cd ef",
        &[(PiiKind::Email, 3..5), (PiiKind::Phone, 6..8)],
    );
    assert_eq!(m.text, "ab [EMAIL] [PHONE]");
    assert_eq!(
        m.spans,
        vec![
            span(PiiKind::Email, 3..5, 3..10),
            span(PiiKind::Phone, 6..8, 11..18)
        ]
    );
}

#[test]
fn compose_maps_second_pass_matches_to_original_offsets() {
    // Original "xx SECRET yy zz": first pass masked 3..9 as [IP] (3..7 in the output).
    let first = render("xx SECRET yy zz", &[(PiiKind::IpAddress, 3..9)]);
    assert_eq!(first.text, "xx [IP] yy zz");
    // A later match after the placeholder shifts by the length difference.
    let merged = compose(&first.spans, &[(PiiKind::Phone, 11..13)]);
    assert_eq!(
        merged,
        vec![(PiiKind::IpAddress, 3..9), (PiiKind::Phone, 13..15)]
    );
    // A match covering part of the placeholder absorbs the whole earlier item.
    let merged = compose(&first.spans, &[(PiiKind::Email, 5..10)]);
    assert_eq!(merged, vec![(PiiKind::Email, 3..12)]);
    // Two matches touching the same placeholder are joined.
    let merged = compose(
        &first.spans,
        &[(PiiKind::Email, 0..4), (PiiKind::Phone, 5..10)],
    );
    assert_eq!(merged, vec![(PiiKind::Email, 0..12)]);
}

#[test]
fn placeholders_are_never_detected() {
    let m = PiiMasker::new();
    let all: String = PiiKind::ALL
        .iter()
        .map(|k| k.placeholder())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(m.find(&all).is_empty());
    let glued: String = PiiKind::ALL.iter().map(|k| k.placeholder()).collect();
    assert!(m.find(&glued).is_empty());
    for k in PiiKind::ALL {
        let p = k.placeholder();
        assert!(p.starts_with('[') && p.ends_with(']'), "{p}");
        assert!(!p.bytes().any(|b| b.is_ascii_digit() || b == b'@'), "{p}");
    }
}

#[test]
fn priority_order_matches_the_documented_one() {
    let mut kinds = PiiKind::ALL;
    kinds.sort_by_key(|k| k.priority());
    assert_eq!(
        kinds,
        [
            PiiKind::CredentialUrl,
            PiiKind::Email,
            PiiKind::CardNumber,
            PiiKind::NationalId,
            PiiKind::IpAddress,
            PiiKind::Phone
        ]
    );
}

#[test]
fn luhn_on_short_and_odd_inputs() {
    assert!(luhn_valid("18"));
    assert!(!luhn_valid("8"));
    assert!(!luhn_valid(""));
    assert!(!luhn_valid("4111 1111 1111 1111"));
    assert!(!luhn_valid("٤١١١")); // non-ASCII digits
}
