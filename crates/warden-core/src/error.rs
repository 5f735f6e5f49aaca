use std::path::PathBuf;

/// Errors shared by the core types. Each variant names what was being read so a user can
/// act on the message without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid taxonomy{}: {message}", .origin.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Taxonomy { origin: Option<PathBuf>, message: String },
    #[error("unknown category {0:?} (not a code or name in the taxonomy)")]
    UnknownCategory(String),
    #[error("classifier error: {0}")]
    Classifier(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
