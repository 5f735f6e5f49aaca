//! Behaviour of the public API: what each kind catches, what must not fire, span offsets,
//! non-ASCII text, and properties (no panics, idempotence, clean text untouched).


use proptest::prelude::*;
use warden_pii::{luhn_valid, Masked, PiiKind, PiiMasker};

fn masker() -> &'static PiiMasker {
    PiiMasker::global()
}

/// Checks the span invariants every result must satisfy and returns the masked items as
/// `(kind, original text)`.
fn checked(input: &str, out: &Masked) -> Vec<(PiiKind, String)> {
    let mut prev_orig = 0;
    let mut prev_masked = 0;
    for s in &out.spans {
        assert!(
            s.original.start >= prev_orig,
            "spans overlap or unsorted in {input:?}"
        );
        assert!(
            s.masked.start >= prev_masked,
            "masked spans unsorted in {input:?}"
        );
        assert!(s.original.start < s.original.end, "empty span in {input:?}");
        assert!(input.is_char_boundary(s.original.start) && input.is_char_boundary(s.original.end));
        assert_eq!(
            &out.text[s.masked.clone()],
            s.kind.placeholder(),
            "masked range in {input:?}"
        );
        prev_orig = s.original.end;
        prev_masked = s.masked.end;
    }
    // Rebuild the output from the input and the spans: everything outside them is kept.
    let mut rebuilt = String::new();
    let mut last = 0;
    for s in &out.spans {
        rebuilt.push_str(&input[last..s.original.start]);
        rebuilt.push_str(s.kind.placeholder());
        last = s.original.end;
    }
    rebuilt.push_str(&input[last..]);
    assert_eq!(
        rebuilt, out.text,
        "spans do not describe the output for {input:?}"
    );
    out.spans
        .iter()
        .map(|s| (s.kind, input[s.original.clone()].to_owned()))
        .collect()
}

fn items(input: &str) -> Vec<(PiiKind, String)> {
    checked(input, &masker().mask(input))
}

/// Asserts that `input` contains exactly the listed PII, in order.
#[track_caller]
fn assert_items(input: &str, expected: &[(PiiKind, &str)]) {
    let got = items(input);
    let want: Vec<(PiiKind, String)> = expected.iter().map(|(k, s)| (*k, s.to_string())).collect();
    assert_eq!(got, want, "input: {input:?}");
}

#[track_caller]
fn assert_masked(input: &str, expected: &str) {
    let out = masker().mask(input);
    checked(input, &out);
    assert_eq!(out.text, expected, "input: {input:?}");
}

/// Asserts that each input is found whole as one item of `kind`, alone and inside a sentence.
#[track_caller]
fn assert_kind(kind: PiiKind, cases: &[&str]) {
    for case in cases {
        assert_items(case, &[(kind, case)]);
        let sentence = format!("Before, {case} and after.");
        assert_items(&sentence, &[(kind, case)]);
    }
}

// ---------------------------------------------------------------------------------------
// Exact outputs

#[test]
fn masks_a_sentence_with_every_kind() {
    let input = "Mail jane.doe+news@mail.example.co.uk or call +44 20 7946 0958; \
                 card 4111 1111 1111 1111, SSN 123-45-6789, server 192.168.1.20, \
                 see https://user:hunter2@example.com/admin.";
    assert_masked(
        input,
        "Mail [EMAIL] or call [PHONE]; card [CARD], SSN [NATIONAL_ID], server [IP], \
         see [URL_CREDENTIALS].",
    );
    let out = masker().mask(input);
    assert_eq!(
        items(input),
        vec![
            (PiiKind::Email, "jane.doe+news@mail.example.co.uk".into()),
            (PiiKind::Phone, "+44 20 7946 0958".into()),
            (PiiKind::CardNumber, "4111 1111 1111 1111".into()),
            (PiiKind::NationalId, "123-45-6789".into()),
            (PiiKind::IpAddress, "192.168.1.20".into()),
            (
                PiiKind::CredentialUrl,
                "https://user:hunter2@example.com/admin".into()
            ),
        ]
    );
    for kind in PiiKind::ALL {
        assert_eq!(out.count(kind), 1, "{kind}");
    }
    assert!(!out.is_clean());
}

#[test]
fn exact_masked_sentences() {
    assert_masked(
        "Reach me at (202) 555-0143 or 202.555.0143, not at 555-0143.",
        "Reach me at [PHONE] or [PHONE], not at 555-0143.",
    );
    assert_masked(
        "Login failed from 2001:db8::1 and 10.0.0.7:8080 at 12:30:45",
        "Login failed from [IP] and [IP]:8080 at 12:30:45",
    );
    assert_masked(
        "Callback https://example.com/cb?code=abc123&state=xyz, docs https://en.wikipedia.org/wiki/Rust?action=edit",
        "Callback [URL_CREDENTIALS], docs https://en.wikipedia.org/wiki/Rust?action=edit",
    );
    assert_masked(
        "NI number AB 12 34 56 C; passport number 123456789.",
        "NI number [NATIONAL_ID]; passport number [NATIONAL_ID].",
    );
    assert_masked("+44 20 7946 0958 at 12:30", "[PHONE] at 12:30");
    assert_masked("(email: first.last@example.co.uk)", "(email: [EMAIL])");
}

#[test]
fn masked_ranges_point_at_placeholders_and_original_ranges_at_pii() {
    let input = "a@example.com, 378282246310005 and 10.1.2.3";
    let out = masker().mask(input);
    assert_eq!(out.text, "[EMAIL], [CARD] and [IP]");
    let got: Vec<_> = out
        .spans
        .iter()
        .map(|s| (s.original.clone(), s.masked.clone()))
        .collect();
    assert_eq!(got, vec![(0..13, 0..7), (15..30, 9..15), (35..43, 20..24)]);
    assert_eq!(&input[15..30], "378282246310005");
}

#[test]
fn structured_text() {
    assert_masked(
        r#"{"email":"a@example.com","ip":"10.0.0.1","card":"4111111111111111"}"#,
        r#"{"email":"[EMAIL]","ip":"[IP]","card":"[CARD]"}"#,
    );
    assert_masked(
        "4111111111111111,5555555555554444,378282246310005",
        "[CARD],[CARD],[CARD]",
    );
    assert_masked(
        r#"2023-11-05 12:30:45,123 INFO 10.0.0.1 - - [05/Nov/2023:12:30:45 +0000] "GET / HTTP/1.1""#,
        r#"2023-11-05 12:30:45,123 INFO [IP] - - [05/Nov/2023:12:30:45 +0000] "GET / HTTP/1.1""#,
    );
    assert_masked(
        "DB_URL=postgres://user:pw@localhost/db\ngit clone https://oauth2:glpat-XX@gitlab.com/g/r.git",
        "DB_URL=[URL_CREDENTIALS]\ngit clone [URL_CREDENTIALS]",
    );
    assert_masked(
        "Call +1 (202) 555-0143 ext. 12 or tel:+1-202-555-0143",
        "Call [PHONE] ext. 12 or tel:[PHONE]",
    );
}

// ---------------------------------------------------------------------------------------
// Positive cases per kind

#[test]
fn emails() {
    assert_kind(
        PiiKind::Email,
        &[
            "user@example.com",
            "first.last@example.co.uk",
            "jane+tag@sub.mail.example.org",
            "john_doe-99@example.io",
            "USER%ops@Example.COM",
            "josé.müller@bücher.de",
            "x@xn--bcher-kva.ch",
        ],
    );
    assert_items(
        "mailto:user@example.com",
        &[(PiiKind::Email, "user@example.com")],
    );
    assert_items(
        "<user@example.com>",
        &[(PiiKind::Email, "user@example.com")],
    );
    assert_items(
        "...jane@example.com",
        &[(PiiKind::Email, "jane@example.com")],
    );
    assert_items(
        "end of sentence: user@example.com.",
        &[(PiiKind::Email, "user@example.com")],
    );
}

#[test]
fn phones() {
    assert_kind(
        PiiKind::Phone,
        &[
            "+44 20 7946 0958",
            "+1-202-555-0143",
            "+33 1 23 45 67 89",
            "+12025550143",
            "+44 (0)20 7946 0958",
            "+1 (202) 555-0143",
            "+49 30 12345678",
            "+91 98765 43210",
            "+86 138 0013 8000",
            "(202) 555-0143",
            "(202)555-0143",
            "202.555.0143",
            "202-555-0143",
            "202 555 0143",
            "1-800-555-0199",
            "(555) 123-4567",
            "020 7946 0958",
            "(020) 7946 0958",
            "07700 900123",
            "01 23 45 67 89",
            "0044 20 7946 0958",
        ],
    );
}

#[test]
fn ip_addresses() {
    assert_kind(
        PiiKind::IpAddress,
        &[
            "192.168.1.1",
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "8.8.8.8",
            "2001:db8::1",
            "fe80::1ff:fe23:4567:890a",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8::",
            "::ffff:192.0.2.1",
            "FE80::0202:B3FF:FE1E:8329",
        ],
    );
    assert_items("host 10.0.0.1:8080 up", &[(PiiKind::IpAddress, "10.0.0.1")]);
    assert_items("net 10.0.0.0/8", &[(PiiKind::IpAddress, "10.0.0.0")]);
    assert_items("[2001:db8::1]:443", &[(PiiKind::IpAddress, "2001:db8::1")]);
    assert_items("ip:2001:db8::1", &[(PiiKind::IpAddress, "2001:db8::1")]);
}

#[test]
fn card_numbers() {
    assert_kind(
        PiiKind::CardNumber,
        &[
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "378282246310005",
            "3782 822463 10005",
            "5555555555554444",
            "6011111111111117",
            "4222222222222",
            "6212345678901265",
            "3530 1113 3330 0000",
        ],
    );
    // A following number group is not swallowed into the card.
    assert_items(
        "4111 1111 1111 1111 2023",
        &[(PiiKind::CardNumber, "4111 1111 1111 1111")],
    );
}

#[test]
fn credential_urls() {
    assert_kind(
        PiiKind::CredentialUrl,
        &[
            "https://user:pass@host.example/path",
            "ftp://admin:hunter2@10.0.0.1",
            "https://example.com/cb?code=abc&state=x",
            "https://bucket.s3.amazonaws.com/o.png?X-Amz-Algorithm=AWS4&X-Amz-Signature=ab12cd",
            "https://api.example.com/v1/items?api_key=sk_live_123",
            "https://api.example.com/v1/items?APIKEY=123",
            "https://maps.example.com/js?key=AIzaSyA",
            "https://example.com/reset?Password=hunter2",
            "https://app.example.com/#access_token=eyJhbGci&token_type=bearer",
            "https://example.com/a;jsessionid=0123ABC",
            "https://example.com/?next=https%3A%2F%2Fother.com%2F%3Ftoken%3Dabc",
            "postgres://app:s3cret@db.internal:5432/prod",
        ],
    );
    // Trailing punctuation and an unbalanced bracket stay outside; the URL goes whole.
    assert_masked(
        "(see https://example.com/x?token=abc).",
        "(see [URL_CREDENTIALS]).",
    );
    // The URL wins over the e-mail-like and IP parts inside it.
    assert_items(
        "ftp://admin:hunter2@10.0.0.1/pub",
        &[(PiiKind::CredentialUrl, "ftp://admin:hunter2@10.0.0.1/pub")],
    );
}

#[test]
fn national_ids() {
    assert_kind(
        PiiKind::NationalId,
        &[
            "123-45-6789",
            "078-05-1120",
            "AB 12 34 56 C",
            "AB123456C",
            "JG 103759 A",
            "ce123456d",
        ],
    );
    assert_items("SSN: 123456789", &[(PiiKind::NationalId, "123456789")]);
    assert_items(
        "my social security number is 123 45 6789",
        &[(PiiKind::NationalId, "123 45 6789")],
    );
    assert_items(
        "Passport No. 987654321",
        &[(PiiKind::NationalId, "987654321")],
    );
    assert_items(
        "Aadhaar: 1234 5678 9012",
        &[(PiiKind::NationalId, "1234 5678 9012")],
    );
    assert_items(
        "national id 123456789012",
        &[(PiiKind::NationalId, "123456789012")],
    );
    assert_items(
        "ID number: 5550001234",
        &[(PiiKind::NationalId, "5550001234")],
    );
    assert_items("NIN 987654321", &[(PiiKind::NationalId, "987654321")]);
    assert_items("ID card 123456789", &[(PiiKind::NationalId, "123456789")]);
    // Only the number right after the keyword.
    assert_items(
        "passport 123456789 and 987654321",
        &[(PiiKind::NationalId, "123456789")],
    );
}

#[test]
fn invalid_national_ids_are_not_masked() {
    for s in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-6789",
        "123-45-0000",
        "DA123456A", // D is not a valid first letter
        "AO123456A", // O is not a valid second letter
        "BG123456A",
        "GB123456A",
        "NK123456A",
        "KN123456A",
        "TN123456A",
        "NT123456A",
        "ZZ123456A",
        "QQ 12 34 56 C", // HMRC's specimen prefix: Q is never a first letter
        "AB123456E",     // suffix must be A-D
        "Ab123456c",     // mixed case
        "AB 1234 56 C",  // irregular spacing
        "XAB123456C",
        "SSN: 000-12-3456",  // keyword does not rescue an impossible SSN
        "SSN 12345678",      // 8 digits
        "SSN 1234567890123", // 13 digits
        "123456789",         // no keyword
    ] {
        assert_items(s, &[]);
    }
}

// ---------------------------------------------------------------------------------------
// Must not fire

const MUST_NOT_FIRE: &[&str] = &[
    // dates, times, years
    "2023-11-05",
    "05/11/2023",
    "05.11.2023",
    "2023-11-05T12:30:45Z",
    "on 05.11.2023 at 12:30",
    "12:30:45",
    "12:30",
    "1984",
    "1990-2000",
    "from 1990 to 2000",
    "1990–2000",
    // versions
    "1.2.3",
    "v10.0.19041",
    "1.2.3.4.5",
    "v1.2.3.4.5",
    "version 10.0.19041.1",
    "Chrome/120.0.6099.109",
    // prices and quantities
    "$1,234,567.89",
    "€1.234.567,89",
    "1 234 567 units",
    "USD 12,345,678,901",
    // coordinates
    "51.5074, -0.1278",
    "40.7128° N, 74.0060° W",
    // identifiers
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "ISBN-13: 9780306406157",
    "SKU-4821-AB",
    "part no. AB-1234-5678",
    "order#12025550143999",
    "ticket 1234567",
    "555-0143",
    "123-456-7890",
    "+1 234",
    "Luhn fails: 4111 1111 1111 1112",
    "4111111111111112",
    "1234567890123456",
    "0000 0000 0000 0000",
    "222-222-2222",
    "+11 1111 1111 1111",
    // addresses that are not
    "999.999.999.999",
    "999.1.1.1",
    "256.1.1.1",
    "01.02.03.04",
    "std::vec::Vec",
    "note:a:b",
    "cafe::babe",
    "::",
    "MAC 00:1A:2B:3C:4D:5E",
    "a1:b2:c3",
    // e-mail look-alikes
    "@username",
    "ping @alice and @bob",
    "a@b",
    "user@localhost",
    "foo@bar.c",
    "#hashtag #2023",
    // URLs without credentials
    "https://en.wikipedia.org/wiki/Rust?action=edit",
    "https://en.wikipedia.org/wiki/Rust_(programming_language)",
    "https://www.google.com/search?q=token+rust&hl=en",
    "https://example.com/?zipcode=12345&countrycode=44",
    "https://medium.com/@someone/a-post",
    "https://example.com/?token=",
    "www.example.com/login?user=bob",
    // prose
    "The quick brown fox jumps over the lazy dog.",
    "Call me maybe, at noon: 12:00.",
    "Room 101, floor 3, building 7.",
];

#[test]
fn must_not_fire() {
    let mut failures = Vec::new();
    for input in MUST_NOT_FIRE {
        let out = masker().mask(input);
        if !out.is_clean() || out.text != *input {
            failures.push(format!("{input:?} -> {:?}", out.text));
        }
    }
    assert!(
        failures.is_empty(),
        "false positives:\n{}",
        failures.join("\n")
    );
}

#[test]
fn wikipedia_like_paragraph_is_untouched() {
    let p = "Rust is a general-purpose programming language emphasizing performance, type \
             safety, and concurrency. Version 1.0 was released on May 15, 2015 (2015-05-15); \
             by 2023-11-05 the 1.73.0 release had 1,234 contributors and 45,678 commits. The \
             project's ISBN 978-1-59327-828-1 book sold 100,000+ copies at $39.95. London is at \
             51.5074° N, 0.1278° W; the population grew from 6,608,598 (1991) to 8,799,800 \
             (2021), i.e. 33.2% over 1991–2021. See § 4.2.1 and Table 3 on pp. 123-145.";
    let out = masker().mask(p);
    assert!(out.is_clean(), "masked: {:?}", out.spans);
    assert_eq!(out.text, p);
}

// ---------------------------------------------------------------------------------------
// Boundaries and non-ASCII text

#[test]
fn no_match_inside_longer_tokens() {
    for s in [
        "order#12025550143999",
        "x4111111111111111",
        "4111111111111111x",
        "v192.168.1.1",
        "192.168.1.1x",
        "abc123-45-6789",
        "123-45-6789-0",
        "1.123-45-6789",
        "XAB123456C",
        "AB123456CX",
        "id_202-555-0143",
        "202-555-0143.5",
        "+44 20 7946 0958abc",
    ] {
        assert_items(s, &[]);
    }
}

#[test]
fn non_ascii_around_and_next_to_pii() {
    assert_items(
        "电话+86 138 0013 8000。邮箱test@example.com谢谢",
        &[
            (PiiKind::Phone, "+86 138 0013 8000"),
            (PiiKind::Email, "test@example.com"),
        ],
    );
    assert_masked("連絡先：user@example.jp まで", "連絡先：[EMAIL] まで");
    assert_masked("카드4111111111111111입니다", "카드[CARD]입니다");
    assert_masked("IPは192.168.0.1です", "IPは[IP]です");
    assert_masked("😀 202-555-0143 🎉", "😀 [PHONE] 🎉");
    assert_masked("😀202-555-0143🎉", "😀[PHONE]🎉");
    // Combining marks stay with their base characters and outside the match.
    assert_masked("e\u{301} 4111111111111111\u{301}", "e\u{301} [CARD]\u{301}");
    assert_masked("Zoë: zoë@example.com", "Zoë: [EMAIL]");
    assert_masked("Ünïcödé ça 123-45-6789 ñ", "Ünïcödé ça [NATIONAL_ID] ñ");
    // A Latin letter glued to digits is part of the token.
    assert_items("é4111111111111111", &[]);
    // Emoji, CJK, right-to-left and zero-width text without PII is unchanged.
    for s in [
        "日本語のテキスト",
        "🎉🎉🎉",
        "مرحبا بالعالم ١٢٣٤٥٦٧٨٩٠",
        "a\u{200B}b",
        "ﬁ ＡＢＣ １２３",
    ] {
        assert_items(s, &[]);
    }
}

#[test]
fn overlaps_resolve_deterministically() {
    // Same span as an SSN-shaped keyword id and a US phone? Phone needs 3-3-4, SSN 3-2-4:
    // a 10-digit number after "SSN" is a phone *and* a keyword id; the id wins on priority.
    assert_items("SSN 202-555-0143", &[(PiiKind::NationalId, "202-555-0143")]);
    // An e-mail inside a plain URL is masked; the URL is not.
    assert_masked(
        "https://example.com/profile?email=a@example.com",
        "https://example.com/profile?email=[EMAIL]",
    );
    // Userinfo makes the whole URL a credential URL, beating the e-mail inside it.
    assert_items(
        "https://bob@example.com/x",
        &[(PiiKind::CredentialUrl, "https://bob@example.com/x")],
    );
    // Text glued together by scraping: the e-mail's TLD does not swallow the URL scheme,
    // and the URL's token is not left behind.
    assert_masked(
        "mail user@example.comhttps://u:p@h.com/x?token=1",
        "mail [EMAIL][URL_CREDENTIALS]",
    );
    // Two phones glued together are both masked.
    assert_masked("(202) 555-0143(202) 555-0143", "[PHONE][PHONE]");
    // The IPv6 address that embeds an IPv4 one is reported once.
    assert_items(
        "::ffff:10.0.0.1",
        &[(PiiKind::IpAddress, "::ffff:10.0.0.1")],
    );
}

// ---------------------------------------------------------------------------------------
// API

#[test]
fn with_kinds_limits_detection() {
    let input = "a@example.com 10.0.0.1 202-555-0143";
    let only_ip = PiiMasker::with_kinds(&[PiiKind::IpAddress]);
    assert_eq!(only_ip.mask(input).text, "a@example.com [IP] 202-555-0143");
    assert_eq!(only_ip.kinds(), &[PiiKind::IpAddress]);
    let two = PiiMasker::with_kinds(&[PiiKind::Phone, PiiKind::Email, PiiKind::Phone]);
    assert_eq!(two.mask(input).text, "[EMAIL] 10.0.0.1 [PHONE]");
    assert_eq!(two.kinds(), &[PiiKind::Email, PiiKind::Phone]);
    let none = PiiMasker::with_kinds(&[]);
    assert!(none.mask(input).is_clean());
    assert_eq!(PiiMasker::default().kinds(), &PiiKind::ALL);
}

#[test]
fn find_matches_mask() {
    let input = "x 202-555-0143 y user@example.org z 4111111111111111";
    let found = masker().find(input);
    let spans: Vec<_> = masker()
        .mask(input)
        .spans
        .into_iter()
        .map(|s| (s.kind, s.original))
        .collect();
    assert_eq!(found, spans);
    assert_eq!(found.len(), 3);
    assert!(masker().contains_pii(input));
    assert!(!masker().contains_pii("nothing here 2023-11-05"));
}

#[test]
fn masker_is_send_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PiiMasker>();
    let m = std::sync::Arc::new(PiiMasker::new());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let m = m.clone();
            std::thread::spawn(move || m.mask(&format!("user{i}@example.com")).text)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "[EMAIL]");
    }
}

#[test]
fn kind_names_and_serde() {
    let names: Vec<_> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "email",
            "phone",
            "ip_address",
            "card_number",
            "credential_url",
            "national_id"
        ]
    );
    for k in PiiKind::ALL {
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{}\"", k.as_str()));
        assert_eq!(serde_json::from_str::<PiiKind>(&json).unwrap(), k);
        assert_eq!(k.to_string(), k.as_str());
    }
    let placeholders: Vec<_> = PiiKind::ALL.iter().map(|k| k.placeholder()).collect();
    assert_eq!(
        placeholders,
        [
            "[EMAIL]",
            "[PHONE]",
            "[IP]",
            "[CARD]",
            "[URL_CREDENTIALS]",
            "[NATIONAL_ID]"
        ]
    );
    let m = masker().mask("call 202-555-0143");
    let back: Masked = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn luhn_known_numbers() {
    for valid in [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "79927398713",
        "4012888888881881",
        "0000000000000000",
    ] {
        assert!(luhn_valid(valid), "{valid} should pass");
    }
    for invalid in [
        "4111111111111112",
        "5555555555554445",
        "378282246310006",
        "79927398710",
        "1234567890123456",
        "4111-1111-1111-1111",
        "",
        "0",
        "abc",
    ] {
        assert!(!luhn_valid(invalid), "{invalid} should fail");
    }
}

#[test]
/// Pathological inputs complete and produce consistent output. (The regex crate matches in
/// linear time; how fast masking is belongs to a benchmark, not to a timed assertion.)
fn adversarial_inputs_complete() {
    let n = 200_000;
    let inputs = [
        "1 ".repeat(n / 2),
        "1".repeat(n),
        "a.".repeat(n / 2) + "@example.com5",
        "a".repeat(n) + "@example.com5",
        ":".repeat(n),
        "1:".repeat(n / 2),
        "https://a.com/".to_string() + &"(".repeat(n) + &")".repeat(n),
        "a://".repeat(n / 4),
        "1.".repeat(n / 2),
        "+1 ".repeat(n / 3),
        "SSN ".repeat(n / 8) + &"1".repeat(n / 2),
    ];
    for input in &inputs {
        let out = masker().mask(input);
        checked(input, &out);
    }
}

// ---------------------------------------------------------------------------------------
// Properties

/// Fragments that produce PII, near-PII and awkward neighbours when concatenated.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("user@example.com".to_string()),
        Just("a.b+c@mail.example.co.uk".to_string()),
        Just("+44 20 7946 0958".to_string()),
        Just("(202) 555-0143".to_string()),
        Just("202.555.0143".to_string()),
        Just("020 7946 0958".to_string()),
        Just("192.168.1.1".to_string()),
        Just("2001:db8::1".to_string()),
        Just("::".to_string()),
        Just("4111 1111 1111 1111".to_string()),
        Just("4111111111111111".to_string()),
        Just("https://u:p@h.com/x?token=1".to_string()),
        Just("https://a.com/?q=1".to_string()),
        Just("123-45-6789".to_string()),
        Just("AB 12 34 56 C".to_string()),
        Just("SSN ".to_string()),
        Just("passport ".to_string()),
        Just("2023-11-05".to_string()),
        Just("12:30".to_string()),
        Just("中文".to_string()),
        Just("😀".to_string()),
        Just("\u{301}".to_string()),
        Just("é".to_string()),
        "[0-9]{1,6}",
        "[ .:@/+()#\\-]",
        "[a-zA-Z]{1,4}",
    ]
}

fn pii_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_spans_are_consistent(s in any::<String>()) {
        let out = masker().mask(&s);
        checked(&s, &out);
    }

    #[test]
    fn never_panics_on_pii_soup(s in pii_soup()) {
        let out = masker().mask(&s);
        checked(&s, &out);
        prop_assert_eq!(masker().find(&s).len(), out.spans.len());
    }

    #[test]
    fn masking_is_idempotent(s in pii_soup()) {
        let once = masker().mask(&s);
        let twice = masker().mask(&once.text);
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.is_clean());
    }

    #[test]
    fn masking_arbitrary_text_is_idempotent(s in any::<String>()) {
        let once = masker().mask(&s);
        prop_assert_eq!(masker().mask(&once.text).text, once.text);
    }

    #[test]
    fn text_without_digits_at_or_scheme_is_unchanged(
        s in any::<String>().prop_map(|s| s.replace(|c: char| c.is_ascii_digit() || c == '@', "").replace("://", ""))
    ) {
        prop_assume!(!s.contains("://"));
        let out = masker().mask(&s);
        prop_assert!(out.is_clean());
        prop_assert_eq!(out.text, s);
    }

    #[test]
    fn every_span_is_a_whole_token(s in pii_soup()) {
        let out = masker().mask(&s);
        let ascii_word = |c: char| c.is_ascii_alphanumeric();
        for (i, span) in out.spans.iter().enumerate() {
            let before = s[..span.original.start].chars().next_back();
            let first = s[span.original.clone()].chars().next().unwrap();
            let last = s[span.original.clone()].chars().next_back().unwrap();
            let after = s[span.original.end..].chars().next();
            // Exempt: an e-mail glued to a URL gives the scheme back
            // (`user@example.comhttps://…`), and the URL then starts glued to the e-mail.
            let glued_before = i > 0 && out.spans[i - 1].original.end == span.original.start;
            let rest = &s[span.original.end..];
            let gave_scheme_back = span.kind == PiiKind::Email
                && rest.find("://").is_some_and(|j| j > 0 && rest[..j].chars().all(|c| c.is_ascii_alphabetic()));
            let glued_after = gave_scheme_back
                || out.spans.get(i + 1).is_some_and(|n| n.original.start == span.original.end);
            prop_assert!(glued_before || !(before.is_some_and(ascii_word) && ascii_word(first)), "{:?} in {:?}", span, s);
            prop_assert!(glued_after || !(after.is_some_and(ascii_word) && ascii_word(last)), "{:?} in {:?}", span, s);
        }
    }
}
