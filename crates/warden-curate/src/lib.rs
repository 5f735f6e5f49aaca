//! Web-corpus curation: layered safeguards with provenance, audits and resumable runs.
//!
//! The second seed document asks for a fine-tuning data pipeline that keeps harmful web
//! content from being amplified without discarding minority viewpoints, and that can
//! always say what it removed, from where, and why. This crate is that pipeline; the
//! `warden curate` command is a thin layer over it.
//!
//! * [`policy`]: the versioned TOML policy — which layers run, thresholds, redaction.
//! * [`chunk`]: documents are scored per chunk (lines merged up to a size), so a decision
//!   points at a span and redaction removes a paragraph, not an article.
//! * [`engine`]: the layers in order (domain blocklists → word/phrase rules → fast
//!   classifier → second tier on the uncertain band) and [`engine::decide`], a pure function
//!   from a document's attributes to keep / drop / redact with reasons.
//! * [`run`]: streaming, bounded-memory, parallel processing of input files into kept /
//!   removed / errors / attributes files, per-file statistics, a manifest and the audit
//!   report; resumable with byte-identical outputs, and shardable (`--shard I/N`).
//! * [`verify`]: proves, document by document, that kept + redacted + removed + errors
//!   account for every input line, and that kept records are the input's bytes.
//! * [`merge`]: combines the manifests and reports of the shards of one run.
//!
//! * [`parquet_out`]: kept Parquet documents are written back as Parquet.
//!
//! Kept documents keep the input's format. JSON lines are written with the input's
//! compression, each kept record the input line byte for byte (a redacted one with only
//! its text replaced). Parquet input gives a Parquet file with the input's Arrow schema and
//! key-value metadata, ZSTD-compressed: the main pass records only which rows are kept and
//! the new texts of redacted (or PII-masked) rows, and a second streaming pass over the
//! input through the Arrow reader writes those rows, so memory stays bounded by the row
//! count, not the file. The text field must then be a top-level Utf8/LargeUtf8 column;
//! when it is not (or the Arrow reader cannot read the file), that file's kept documents
//! are written as zstd JSON lines (each row rendered as JSON) and the manifest's
//! `kept_note` for the file says why.

pub mod chunk;
pub mod engine;
pub mod merge;
pub mod output;
pub mod parquet_out;
pub mod policy;
pub mod run;
pub mod verify;

use std::path::Path;

pub use engine::{decide, Engine, Outcome, PlainSecondTier, SecondTier};
pub use merge::merge;
pub use policy::CurationPolicy;
pub use run::{run, Manifest, NoProgress, Progress, RunConfig, RunSummary, Software};
pub use verify::{verify, VerifyReport};

/// Errors of a curation run. Per-line problems are not errors: they go to the errors file.
#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    /// The policy is invalid.
    #[error("policy: {0}")]
    Policy(String),
    /// A rule, domain or identity list could not be loaded.
    #[error("rules: {0}")]
    Rules(String),
    /// The model failed.
    #[error("model: {0}")]
    Model(String),
    /// The input list is unusable.
    #[error("input: {0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error (not a `#[source]`: the message already includes it).
        error: std::io::Error,
    },
    /// A run file (manifest, state, stats) is malformed.
    #[error("format: {0}")]
    Format(String),
    /// The output directory belongs to another run.
    #[error("{0}")]
    RunMismatch(String),
    /// Another process is using the output directory.
    #[error("{0}")]
    Locked(String),
}

impl CurateError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CurateError::Io { path: path.to_path_buf(), error: source }
    }
}
