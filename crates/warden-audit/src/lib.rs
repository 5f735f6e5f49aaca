//! What a curation run decided, and the evidence a reviewer needs to trust it.
//!
//! `warden curate` keeps, drops or redacts every document of a web corpus. Filtering that
//! cannot be inspected is dangerous in both directions: it can let harmful material through,
//! and it can silently remove benign text — most worryingly, text that merely *mentions*
//! minority groups, which skews a fine-tuned model away from them. This crate holds:
//!
//! - the per-document provenance record written to the attributes sidecar
//!   ([`DocAttributes`] with its [`Action`], [`Reason`]s, [`Layer`]s, spans and scores);
//! - [`RunStats`]: bounded-memory, deterministic, mergeable statistics of a run (one stats
//!   file per input shard, merged later): totals, removals per category, layer and source,
//!   score histograms, a few examples per category with their context, read errors, and the
//!   counts behind the over-filtering check;
//! - [`render_markdown`] and [`render_html`]: the corpus audit report, the same content as
//!   Markdown and as one static, self-contained HTML page (inline CSS and SVG charts, no
//!   JavaScript, no external assets).
//!
//! Memory is bounded whatever the corpus size: fixed-size histograms, at most
//! [`MAX_EXAMPLES`] examples per category with truncated excerpts, and at most
//! [`DEFAULT_SOURCE_CAP`] distinct sources (the rest are folded into one
//! `"(other sources)"` bucket, with an estimate of how many distinct sources were folded).
//!
//! ```
//! use warden_audit::{render_markdown, Action, DocAttributes, ReportMeta, RunStats};
//!
//! let categories: Vec<String> = ["S", "H", "V"].iter().map(|c| c.to_string()).collect();
//! let mut shard = RunStats::new(&categories);
//! let text = "a perfectly ordinary document";
//! let doc = DocAttributes {
//!     id: "doc-1".into(), line: 1, byte_offset: None, source: Some("example.org".into()),
//!     bytes: text.len() as u64, action: Action::Keep, reasons: vec![], scores: vec![0.01; 3],
//!     chunks: vec![], rule_hits: vec![], redacted: vec![], identity: false, pii_masked: 0, rule_hits_omitted: 0,
//! };
//! shard.observe(&doc, text);
//! shard.observe_error("invalid_json");
//!
//! // One stats file per shard, merged in a fixed order.
//! let json = serde_json::to_string(&shard).unwrap();
//! let mut run = RunStats::new(&categories);
//! run.merge(&RunStats::from_json(&json).unwrap()).unwrap();
//! assert_eq!((run.docs(), run.kept(), run.errors()), (1, 1, 1));
//! let report = render_markdown(&run, &ReportMeta { title: "Audit".into(), ..Default::default() });
//! assert!(report.starts_with("# Audit"));
//! ```

mod example;
mod hll;
mod report;
mod stats;
mod svg;
mod types;

pub use example::{Example, CONTEXT_BYTES, MAX_FIELD_BYTES, MAX_SPAN_BYTES};
pub use hll::DistinctSketch;
pub use report::{render_html, render_markdown, ReportMeta};
pub use stats::{
    wilson_interval, CategoryStats, Disparity, GroupRate, GroupStats, LayerComparison,
    OverFiltering, Removals, RunStats, SourceStats, DEFAULT_SOURCE_CAP, DISPARITY_RATIO, HIST_BINS,
    MAX_EXAMPLES, NO_SOURCE, OTHER_SOURCES, TOP_SOURCES,
};
pub use types::{Action, ChunkScores, DocAttributes, Layer, Reason, RuleHit, Span};

/// Why statistics could not be merged or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The two statistics were collected with different category lists (codes or order).
    #[error("category lists differ: [{}] vs [{}]", .ours.join(", "), .theirs.join(", "))]
    CategoryMismatch {
        /// The categories of the statistics merged into.
        ours: Vec<String>,
        /// The categories of the statistics being merged.
        theirs: Vec<String>,
    },
    /// Statistics whose internal shape does not fit their category list (for example a
    /// hand-edited or truncated stats file).
    #[error("inconsistent statistics: {0}")]
    Inconsistent(String),
    /// A stats file that is not valid JSON for [`RunStats`].
    #[error("invalid stats JSON: {0}")]
    Json(#[from] serde_json::Error),
}
