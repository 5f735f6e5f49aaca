//! Shared rule types.

use serde::{Deserialize, Serialize};

/// Rule severity, ordered `Mild < Strong < Severe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Usually harmless in context (anatomy, mild profanity).
    Mild,
    /// Offensive in most contexts.
    Strong,
    /// Slurs, explicit threats, sexual content involving minors: unacceptable in any context.
    Severe,
}

impl Severity {
    /// `"mild"`, `"strong"` or `"severe"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Mild => "mild",
            Severity::Strong => "strong",
            Severity::Severe => "severe",
        }
    }

    /// Parses `mild`, `strong` or `severe`, ignoring ASCII case and surrounding
    /// whitespace (the surge list writes `Mild`, `Strong`, `Severe`).
    pub fn parse(s: &str) -> Option<Severity> {
        let s = s.trim();
        [Severity::Mild, Severity::Strong, Severity::Severe]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::parse(s)
            .ok_or_else(|| format!("unknown severity {s:?} (expected mild, strong or severe)"))
    }
}

/// A byte range `[start, end)` in the document's text (the original, un-normalised text),
/// always on UTF-8 character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// `[start, end)`.
    pub fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end);
        Span { start, end }
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    /// True for an empty span.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// True when the spans share at least one byte.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// One match of a rule list in a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHit {
    /// Category code (`"S"`, `"H"`, ...).
    pub category: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The term as written in the list (lower-case).
    pub term: String,
    /// Where it matched in the document text.
    pub span: Span,
    /// Name of the list the term came from.
    pub list: String,
}
