//! The records every part of a curation run agrees on: what was decided about a document,
//! and why. One [`DocAttributes`] per input document is written to the attributes sidecar,
//! so a different policy can be re-applied later without rescoring.

use serde::{Deserialize, Serialize};
pub use warden_rules::{RuleHit, Span};

/// What happens to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Written unchanged to the kept output.
    Keep,
    /// Written to the removed output with its reasons.
    Drop,
    /// Written to the kept output with the offending spans removed; the reasons (and the
    /// removed spans) are in the attributes sidecar.
    Redact,
}

impl Action {
    /// `"keep"`, `"drop"` or `"redact"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::Redact => "redact",
        }
    }
}

/// Which safeguard produced a reason (the layers run in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The document's url host (or a parent domain) is on a blocklist.
    Domain,
    /// A word or phrase list matched.
    Rules,
    /// The fast classifier's score passed the policy threshold.
    Fast,
    /// The second tier (transformer encoder, run on the uncertain band) passed the threshold.
    Encoder,
}

impl Layer {
    /// `"domain"`, `"rules"`, `"fast"` or `"encoder"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Domain => "domain",
            Layer::Rules => "rules",
            Layer::Fast => "fast",
            Layer::Encoder => "encoder",
        }
    }
}

/// Why a document (or one of its chunks) was dropped or redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The safeguard that fired.
    pub layer: Layer,
    /// Category code; `None` for a domain block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The score that passed (classifier layers) .
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The threshold it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// The offending span in the document text (the chunk for classifier layers, the matched
    /// term for rules); `None` for a domain block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// The matched term (rules, with its severity) or host (domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Scores of one chunk of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkScores {
    /// The chunk's bytes in the document text.
    pub span: Span,
    /// The fast tier's calibrated probability per category, in taxonomy order.
    pub fast: Vec<f32>,
    /// The second tier's (combined) probabilities when the chunk was escalated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<Vec<f32>>,
}

impl ChunkScores {
    /// The scores the decision uses: the second tier's when present, else the fast tier's.
    pub fn effective(&self) -> &[f32] {
        self.encoder.as_deref().unwrap_or(&self.fast)
    }
}

/// Everything decided about one document: one line of the attributes sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocAttributes {
    /// The document id (see `warden_corpus::Document::id`).
    pub id: String,
    /// 1-based line (JSONL) or row (Parquet) in the input file.
    pub line: u64,
    /// Byte offset of the line in the decompressed input (JSONL only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
    /// The source (source field, else the url's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Length of the text in bytes.
    pub bytes: u64,
    /// The decision.
    pub action: Action,
    /// Why (empty for `keep`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// Per category, the maximum effective chunk score (taxonomy order).
    pub scores: Vec<f32>,
    /// Per-chunk scores, so another policy can be applied without rescoring.
    pub chunks: Vec<ChunkScores>,
    /// Every rule match, including those below the policy's acting severity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_hits: Vec<RuleHit>,
    /// Rule matches beyond the stored ones (a page with thousands of matches keeps the
    /// first hundred in `rule_hits` and counts the rest here).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rule_hits_omitted: u32,
    /// Spans removed from the text (for `redact`), sorted and non-overlapping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<Span>,
    /// Does the text mention an identity group (for the over-filtering check)?
    #[serde(default)]
    pub identity: bool,
    /// Number of PII matches masked in the written text.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pii_masked: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
