//! The rule layer of `warden curate`: word and phrase lists with categories and
//! severities, a fast whole-word matcher that reports byte spans, identity-term
//! detection, and domain blocklists.
//!
//! # Why a rule layer at all
//!
//! The classifier (`warden-fast`) scores whole documents; it cannot say *where* a
//! document is bad, and it is weakest exactly where a few words settle the question: an
//! explicit threat, a slur, a request for sexual material involving minors. Rules are
//! cheap, explainable and auditable: every [`RuleHit`] names its list, term, category,
//! severity and span, so a curation report can show what was removed and why, and a
//! reviewer can check it. Rules are also blunt, which is why this crate is built around
//! *precision*: the built-in list ([`RuleList::builtin`], `rules/warden-default.toml`)
//! holds only phrases that are undesired in essentially any context, and identity words
//! are never rules. Broad external lists (surge-ai/profanity, LDNOOBW) can be loaded
//! ([`RuleList::load_surge_csv`], [`RuleList::load_lines`]) but over-flag medicine,
//! anatomy and reclaimed identity terms; use their severities, not their mere presence.
//!
//! # Pieces
//!
//! * [`RuleList`]: one list, from Warden's TOML format, the surge CSV, or a plain list
//!   with one term per line. [`RuleList::drop_decontaminated`] removes terms that are
//!   themselves held-out evaluation texts. [`RuleList::info`] / [`ListInfo`] give name,
//!   licence, source, size and a content hash for run manifests.
//! * [`RuleSet`]: lists compiled into one automaton, checked against a
//!   [`warden_core::Taxonomy`]. [`RuleSet::find`] returns every hit in a text.
//! * [`IdentityTerms`]: group-identity words (built in, or HolisticBias v1.1), used to
//!   measure and guard against removing documents that merely mention a group.
//! * [`DomainList`]: blocked domains, matched on whole labels.
//!
//! Everything loads from files at run time except the built-in lists; external data is
//! never copied into the repository.
//!
//! # Matching
//!
//! One Aho-Corasick automaton (the `aho-corasick` crate; a DFA, or a compact NFA for very
//! large term sets) holds every term of every list, so a document is scanned once
//! whatever the number of rules. It is driven byte by byte through the crate's
//! `Automaton` trait so that whitespace can be collapsed on the fly (below).
//!
//! * **Case**: ASCII letters match in any case. Non-ASCII letters cannot be folded by the
//!   automaton, so terms are lower-cased and terms with non-ASCII cased letters are also
//!   added in upper case and capitalised (`ärger` matches `ärger`, `ÄRGER`, `Ärger`, and
//!   ASCII letters around them in any case); a mix of cases *in the non-ASCII letters*
//!   (`MÜLL ärger` for `müll ärger`) does not match. This keeps the scan a single pass
//!   without Unicode case-folding every document.
//! * **Whole words**: a match counts only if the character before it and the character
//!   after it are neither alphanumeric (`char::is_alphanumeric`, so any script) nor `_`.
//!   `ass` is not found in `class` or `assassin`, but is in `ass.` and `my-ass`.
//! * **Whitespace**: a space in a term matches any run of ASCII whitespace (space, tab,
//!   newline, carriage return, form feed) in the text, so `kill yourself` is found across
//!   a line break. The automaton sees each run as one space; a small ring buffer of
//!   original offsets maps match starts back, so no copy of the document is made.
//! * **Apostrophes**: `'` in a term also matches `’` (U+2019), as web text uses both.
//! * **Overlaps**: the search reports overlapping matches, so a failed whole-word
//!   candidate never hides a real one. Then a hit whose span lies inside a longer hit of
//!   the same category is dropped (`i will kill you` hides its own `kill you`); hits of
//!   different categories all stay. [`RuleSet::find`] sorts by (start, end).
//! * **Spans** are byte offsets into the *original* text, always on `char` boundaries,
//!   and `text[span]` equals the term up to ASCII case, whitespace runs, the apostrophe
//!   and the non-ASCII case variants above.
//!
//! **Throughput** (measured once, asserted by no test): one pass over the bytes, no
//! copy, no allocation unless there are hits (or a term longer than 255 bytes). On 100 MB
//! of English Wikipedia
//! (`shared/data/wikipedia-en-sample`, cut into 4 KB documents), one core of the
//! development machine (AMD EPYC, release build): `find` with the built-in list runs at
//! about 340 MB/s, and with the built-in, surge and LDNOOBW lists together (2,050 rules,
//! hits in a fifth of the documents) at about 270 MB/s; `IdentityTerms::mentions` with
//! HolisticBias (about 470 terms) at about 450 MB/s. The curation pipeline's budget is
//! ≥ 20 MB/s per core end to end, so the rule layer takes well under a tenth of it.
//! Measure on your own data with
//! `cargo run --release -p warden-rules --example throughput -- FILE [--surge CSV]
//! [--ldnoobw FILE] [--holistic-bias DIR]`.
//!
//! # Rule file format
//!
//! ```toml
//! format_version = 1                 # required; other versions are rejected
//! name = "warden-default"            # reported in every hit's `list`
//! licence = "Apache-2.0"             # licence of the list's contents
//! source = "written for Warden"      # provenance: repository@commit, URL, author
//!
//! [[group]]                          # any number of groups
//! category = "V"                     # taxonomy code or name, checked by RuleSet::new
//! severity = "severe"                # mild | strong | severe
//! terms = ["i will kill you", "i'm going to kill you"]
//! ```
//!
//! Unknown keys are errors (a misspelt `license` must not silently drop provenance), as
//! are empty terms, empty groups and empty categories; errors name the file and, where
//! possible, the line. Severities mean: `mild`, common and mostly harmless profanity
//! (a signal, not a reason to drop); `strong`, offensive in most contexts; `severe`,
//! unacceptable in any context (threats, slurs, sexual content involving minors).
//! `rules/README.md` describes the built-in list and how to add the external ones.
//!
//! The library never prints.

use std::path::PathBuf;

mod domains;
mod identity;
mod list;
mod matcher;
mod ruleset;
mod types;

pub use domains::DomainList;
pub use identity::{
    IdentityTerms, HOLISTIC_BIAS_SHORT_KEPT, HOLISTIC_BIAS_SKIPPED_AXES, HOLISTIC_BIAS_STOP_WORDS,
};
pub use list::{ListInfo, RuleEntry, RuleList, RULES_FORMAT_VERSION, SURGE_SOURCE};
pub use ruleset::RuleSet;
pub use types::{RuleHit, Severity, Span};

/// Errors name the file (or, for lists built in memory, the list) and the line where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or list is invalid as a whole (bad version, unknown key, wrong shape).
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    /// One line of a file is invalid.
    #[error("{origin}, line {line}: {message}")]
    Line {
        origin: String,
        line: u64,
        message: String,
    },
    /// A rule's category is not in the taxonomy.
    #[error(
        "rule list {list:?} ({origin}): term {term:?} has category {category:?}, which the taxonomy does not define (it has {known})"
    )]
    UnknownCategory {
        list: String,
        /// The list's source (file or repository).
        origin: String,
        term: String,
        category: String,
        /// The taxonomy's codes, comma-separated.
        known: Box<str>,
    },
}
