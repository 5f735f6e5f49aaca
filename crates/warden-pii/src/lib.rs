//! Pattern-based masking of personal data in free text, applied before text is stored.
//!
//! Warden stores a sample of moderated traffic for its labelling loop and curates web corpora
//! for training; neither store should keep the e-mail addresses, phone numbers, card numbers
//! or secrets that users paste into text. [`PiiMasker::mask`] replaces each detected item
//! with a fixed placeholder (`[EMAIL]`, `[PHONE]`, …) and returns byte-accurate
//! [`PiiSpan`]s, so callers can count what was removed without keeping it.
//!
//! ```
//! use warden_pii::{PiiKind, PiiMasker};
//!
//! let masker = PiiMasker::new();
//! let out = masker.mask("Mail jane.doe@example.com or call +44 20 7946 0958.");
//! assert_eq!(out.text, "Mail [EMAIL] or call [PHONE].");
//! assert_eq!(out.count(PiiKind::Phone), 1);
//! assert_eq!(&"Mail jane.doe@example.com"[out.spans[0].original.clone()], "jane.doe@example.com");
//! ```
//!
//! # What is detected
//!
//! | Kind | Placeholder | Formats |
//! |---|---|---|
//! | [`PiiKind::Email`] | `[EMAIL]` | `local@domain.tld`: plus-tags, dots, subdomains, multi-part TLDs (`first.last@example.co.uk`), non-ASCII letters in the local part and domain. The domain needs a dot and a letters-only TLD of 2+ letters, so `@mention` and `a@b` are not e-mails. |
//! | [`PiiKind::Phone`] | `[PHONE]` | International `+CC …` with space, dot or hyphen groups and an optional `(0)`/`(area)` (`+44 20 7946 0958`, `+1-202-555-0143`, `+33 1 23 45 67 89`, `+12025550143`); North American `(202) 555-0143`, `202-555-0143`, `202.555.0143`, `202 555 0143`, optionally with a leading `1-` (the area code must start with 2–9; bare forms must use one separator throughout); national trunk-prefix numbers `020 7946 0958`, `(020) 7946 0958`, `07700 900123`, `01 23 45 67 89`, and `00`-prefixed international ones (`0044 20 7946 0958`). 10–15 digits (10–12 for trunk-prefix numbers, up to 17 with `00`); numbers of one repeated digit are ignored. |
//! | [`PiiKind::IpAddress`] | `[IP]` | IPv4 with octets 0–255 and no leading zeros; IPv6 in full, `::`-compressed and IPv4-mapped forms (validated with [`std::net::Ipv6Addr`], at least two groups and one digit, so `::`, `std::vec` and `cafe::babe` are not addresses). |
//! | [`PiiKind::CardNumber`] | `[CARD]` | 13–19 digits, plain or grouped by one kind of separator (single spaces or hyphens: `4111 1111 1111 1111`, `3782-822463-10005`), passing the [Luhn check](luhn_valid); numbers of one repeated digit (`0000 0000 0000 0000`) are ignored. |
//! | [`PiiKind::CredentialUrl`] | `[URL_CREDENTIALS]` | `scheme://` URLs with userinfo (`https://user:pass@host/…`), or a query, fragment or `;` parameter with a secret-looking name (`token`, `access_token`, `api_key`, `key`, `secret`, `password`, `pwd`, `sig`, `signature`, `auth`, `session`, `sessionid`, `code`, and names ending in `token`, `secret`, `signature`, `password`, `credential`, …, compared case- and punctuation-insensitively, so `X-Amz-Signature` counts). Percent-encoded nested URLs are decoded before checking. The whole URL is masked; trailing sentence punctuation and unbalanced closing brackets are left outside. |
//! | [`PiiKind::NationalId`] | `[NATIONAL_ID]` | US SSN `123-45-6789` (area not 000, 666 or 9xx, group not 00, serial not 0000); UK National Insurance numbers `AB 12 34 56 C`, `AB 123456 C`, `AB123456C` (first letter not D F I Q U V, second not D F I O Q U V, prefixes BG GB NK KN TN NT ZZ excluded, suffix A–D, one letter case throughout); and any run of 9–12 digits (plain or grouped with spaces/hyphens, e.g. Aadhaar `1234 5678 9012`) when a keyword (`SSN`, `social security`, `passport`, `national id`, `NIN`, `Aadhaar`, `id number`, `id no`, `id card`, `identity number`, `identity card`) ends at most 30 bytes before it with no other digits in between (a 3-2-4 grouping must also be a possible SSN). |
//!
//! # What is not detected
//!
//! Detection is pattern-based. It will miss PII that does not look like these formats and
//! sometimes mask things that merely look like them; it is a filter that lowers exposure, not
//! a guarantee. In particular:
//!
//! * **Names, postal addresses, dates of birth, usernames and free-form identifiers** are not
//!   detected at all.
//! * **National ids**: the list of formats is deliberately small (US SSN, UK NINO, keyword-led
//!   digit runs). Other countries' ids, alphanumeric passport numbers, SSNs written without
//!   hyphens and without a keyword, and HMRC's specimen prefix `QQ` (excluded by the prefix
//!   rules) are not masked.
//! * **Phones**: local numbers with fewer than 10 digits, unseparated national numbers
//!   (`2025550143` without `+`), vanity numbers (`1-800-FLOWERS`), and extensions (`x123`) are
//!   not masked. A group of digits that directly follows an international number with a
//!   space may be swallowed into it (`+44 20 7946 0958 24 hours` masks the `24` too).
//! * **Cards**: any 13–19 digit number that happens to pass Luhn (one in ten) is masked, so
//!   long order numbers or millisecond timestamps are sometimes masked as cards.
//! * **Secrets**: bare API keys and tokens outside a URL, secrets in URL paths
//!   (`/hooks/T000/B000/XXXX`) and URLs without a `scheme://` are not detected.
//! * **Obfuscated PII** (`jane at example dot com`, digits spelled out, full-width digits) is
//!   not detected. Run a normalizer first if that matters.
//!
//! # Matching rules
//!
//! * **Token boundaries.** A match never starts or ends inside a longer word token: no phone
//!   inside `order#12025550143999`, no IP inside `v1.2.3.4.5`. Numeric matches also may not
//!   touch another digit or be glued to one by `.`, `-` or `:` (`2023-11-05`, `12:30`).
//!   Characters of scripts written without spaces (CJK, kana, Hangul, Thai, …) count as
//!   boundaries, so `电话+86 138 0013 8000` and `test@example.com谢谢` are masked. One
//!   exception for text glued together by scraping: an e-mail followed directly by a URL
//!   (`user@example.comhttps://…`) gives the scheme back, and both are masked.
//! * **Overlaps** resolve deterministically: earliest start, then longest, then the kind
//!   priority `CredentialUrl > Email > CardNumber > NationalId > IpAddress > Phone`.
//! * **Idempotence.** Masking repeats on its own output until nothing more is found (a
//!   placeholder can change a neighbour's boundary), so `mask(mask(x).text)` finds nothing
//!   and returns its input unchanged.
//! * Any UTF-8 input is accepted; spans always lie on char boundaries.

mod detect;

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The category of a masked item; stored as a count per kind so a labelling tool can show
/// *that* something was removed without showing *what*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A telephone number with at least 10 digits.
    Phone,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A payment card number that passes the Luhn check.
    CardNumber,
    /// A URL carrying credentials: userinfo or a secret-looking parameter.
    CredentialUrl,
    /// A national identification number (US SSN, UK NINO, keyword-led digit runs).
    NationalId,
}

impl PiiKind {
    /// Every kind, in declaration order: iterate this to report counts for all kinds.
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::IpAddress,
        PiiKind::CardNumber,
        PiiKind::CredentialUrl,
        PiiKind::NationalId,
    ];

    /// Stable snake_case name, the same as the serde name: use it as a metrics label or
    /// JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::IpAddress => "ip_address",
            PiiKind::CardNumber => "card_number",
            PiiKind::CredentialUrl => "credential_url",
            PiiKind::NationalId => "national_id",
        }
    }

    /// The text that replaces an item of this kind. Placeholders contain no digits, `@` or
    /// `://`, so they are never detected themselves.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::IpAddress => "[IP]",
            PiiKind::CardNumber => "[CARD]",
            PiiKind::CredentialUrl => "[URL_CREDENTIALS]",
            PiiKind::NationalId => "[NATIONAL_ID]",
        }
    }

    /// Rank used to break ties between overlapping matches of equal start and length;
    /// lower wins. The more specific (and more sensitive) kind wins.
    fn priority(self) -> u8 {
        match self {
            PiiKind::CredentialUrl => 0,
            PiiKind::Email => 1,
            PiiKind::CardNumber => 2,
            PiiKind::NationalId => 3,
            PiiKind::IpAddress => 4,
            PiiKind::Phone => 5,
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One masked item: where it was in the input and where its placeholder is in the output,
/// so callers can audit or highlight masking without re-running detection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PiiSpan {
    /// What was masked.
    pub kind: PiiKind,
    /// Byte range of the item in the input text (on char boundaries).
    pub original: Range<usize>,
    /// Byte range of the placeholder in [`Masked::text`].
    pub masked: Range<usize>,
}

/// The result of [`PiiMasker::mask`]: the text that is safe to store, and what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Masked {
    /// The input with every detected item replaced by its kind's placeholder.
    pub text: String,
    /// The masked items, sorted by position and non-overlapping.
    pub spans: Vec<PiiSpan>,
}

impl Masked {
    /// How many items of `kind` were masked: the per-kind counts stored next to a sample.
    pub fn count(&self, kind: PiiKind) -> usize {
        self.spans.iter().filter(|s| s.kind == kind).count()
    }

    /// True when nothing was masked, i.e. the text came back unchanged.
    pub fn is_clean(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Upper bound on masking passes; in practice the second pass finds nothing.
const MAX_PASSES: usize = 8;

/// Detects and masks PII. Build one (regexes are compiled in the constructor) and share it:
/// it is `Send + Sync`, and [`PiiMasker::global`] offers a process-wide instance.
pub struct PiiMasker {
    kinds: Vec<PiiKind>,
    detectors: detect::Detectors,
}

impl PiiMasker {
    /// A masker for every [`PiiKind`], the right default before storing text.
    pub fn new() -> Self {
        Self::with_kinds(&PiiKind::ALL)
    }

    /// A masker for some kinds only, e.g. to keep IP addresses in an abuse-investigation
    /// store. Order and duplicates do not matter; an empty slice masks nothing.
    pub fn with_kinds(kinds: &[PiiKind]) -> Self {
        let own: Vec<PiiKind> = PiiKind::ALL
            .into_iter()
            .filter(|k| kinds.contains(k))
            .collect();
        PiiMasker {
            detectors: detect::Detectors::new(&own),
            kinds: own,
        }
    }

    /// A lazily built, process-wide masker for all kinds, for callers that have nowhere to
    /// keep one (compiling the patterns costs milliseconds; do it once).
    pub fn global() -> &'static PiiMasker {
        static GLOBAL: OnceLock<PiiMasker> = OnceLock::new();
        GLOBAL.get_or_init(PiiMasker::new)
    }

    /// The kinds this masker detects, in [`PiiKind::ALL`] order.
    pub fn kinds(&self) -> &[PiiKind] {
        &self.kinds
    }

    /// Replaces every detected item with its placeholder. Never panics; the result is a
    /// fixed point (masking it again changes nothing).
    pub fn mask(&self, text: &str) -> Masked {
        let mut found = self.detectors.detect(text);
        let mut current = Masked {
            text: text.to_owned(),
            spans: Vec::new(),
        };
        let mut passes = 0;
        while !found.is_empty() && passes < MAX_PASSES {
            let merged = compose(&current.spans, &found);
            current = render(text, &merged);
            passes += 1;
            found = self.detectors.detect(&current.text);
        }
        current
    }

    /// The items [`mask`](Self::mask) would replace, as `(kind, byte range in text)`, sorted
    /// and non-overlapping: for counting or flagging without rewriting the text.
    pub fn find(&self, text: &str) -> Vec<(PiiKind, Range<usize>)> {
        self.mask(text)
            .spans
            .into_iter()
            .map(|s| (s.kind, s.original))
            .collect()
    }

    /// Whether `text` contains anything this masker would mask; cheaper than
    /// [`find`](Self::find) because it stops after one detection pass.
    pub fn contains_pii(&self, text: &str) -> bool {
        !self.detectors.detect(text).is_empty()
    }
}

impl Default for PiiMasker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PiiMasker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PiiMasker")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

/// Maps matches found in the current masked text back to the original text, absorbing any
/// earlier span they cover, and returns the merged `(kind, original range)` list, sorted.
fn compose(spans: &[PiiSpan], found: &[(PiiKind, Range<usize>)]) -> Vec<(PiiKind, Range<usize>)> {
    // Original offset of a position in the current text. Inside a placeholder, a start maps
    // to the item's start and an end to the item's end, so a partial overlap absorbs it whole.
    let to_original = |p: usize, is_end: bool| -> usize {
        let mut anchor = (0, 0); // (current, original) offsets of the last span end before p
        for s in spans {
            if s.masked.start < p && p < s.masked.end {
                return if is_end {
                    s.original.end
                } else {
                    s.original.start
                };
            }
            if s.masked.end <= p {
                anchor = (s.masked.end, s.original.end);
            }
        }
        anchor.1 + (p - anchor.0)
    };
    let mut mapped: Vec<(PiiKind, Range<usize>)> = found
        .iter()
        .map(|(k, r)| (*k, to_original(r.start, false)..to_original(r.end, true)))
        .collect();
    for s in spans {
        let absorbed = mapped
            .iter()
            .any(|(_, r)| r.start < s.original.end && s.original.start < r.end);
        if !absorbed {
            mapped.push((s.kind, s.original.clone()));
        }
    }
    mapped.sort_by_key(|(_, r)| (r.start, std::cmp::Reverse(r.end)));
    // Two new matches touching the same placeholder both grew to cover it: join them.
    let mut merged: Vec<(PiiKind, Range<usize>)> = Vec::with_capacity(mapped.len());
    for (kind, r) in mapped {
        match merged.last_mut() {
            Some((_, last)) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push((kind, r)),
        }
    }
    merged
}

/// Builds the masked text from the original and non-overlapping original ranges.
fn render(original: &str, items: &[(PiiKind, Range<usize>)]) -> Masked {
    let mut text = String::with_capacity(original.len());
    let mut spans = Vec::with_capacity(items.len());
    let mut last = 0;
    for (kind, r) in items {
        text.push_str(&original[last..r.start]);
        let start = text.len();
        text.push_str(kind.placeholder());
        spans.push(PiiSpan {
            kind: *kind,
            original: r.clone(),
            masked: start..text.len(),
        });
        last = r.end;
    }
    text.push_str(&original[last..]);
    Masked { text, spans }
}

/// The Luhn (mod 10) checksum used by payment card numbers: true when `digits` is at least
/// two ASCII digits and the checksum is valid. Anything else (separators included) is false,
/// so strip separators first.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    // Not `is_multiple_of`: the workspace supports Rust 1.82.
    #[allow(clippy::manual_is_multiple_of)]
    let valid = sum % 10 == 0;
    valid
}

#[cfg(test)]
mod tests;
