//! Warden's datasets.
//!
//! Every labelled dataset of the data catalogue is described by a small TOML spec in the
//! repository's `datasets/` directory ([`DatasetSpec`]): which files to read, how to parse
//! them, how to build the text, and one rule per taxonomy code (an [`evalexpr`]
//! expression over the row's fields; see [`spec`] and the `expr` module docs). Adding a
//! dataset needs a spec, not code.
//!
//! [`build`] loads the selected specs into [`warden_core::Record`]s, drops rows whose
//! normalised text is in the held-out decontamination list ([`Decontaminator`]), drops
//! exact duplicates (keeping the highest-priority source's row), splits train/dev by the
//! hash of the normalised text, and reports everything in [`DataStats`], which
//! [`datasheet_markdown`] renders. [`write_jsonl`] / [`read_jsonl`] are the on-disk format.
//!
//! The library never prints.

use std::path::PathBuf;

mod build;
mod datasheet;
mod decontam;
mod expr;
mod hygiene;
mod io;
mod load;
mod read;
pub mod spec;
mod template;

pub use build::{
    build, build_from_specs, count_labels, is_dev, load_all, select_specs, BuildOptions, BuiltData,
    CategoryCounts, DataStats, ExcludedSource, SourceStats,
};
pub use datasheet::datasheet_markdown;
pub use decontam::{decontam_normalize, py_is_word, py_isspace, text_hash, Decontaminator};
pub use hygiene::{clear_labels, positive_only_labels};
pub use io::{jsonl_sha256, read_jsonl, write_build, write_jsonl, BuildOutputs};
pub use load::{load_dataset, LoadedDataset};
pub use read::open_maybe_gz;
pub use spec::{load_specs, DatasetSpec, SPEC_FORMAT_VERSION};

/// Errors name the spec, file and row involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid dataset spec {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("dataset spec {dataset_spec}: no file matches {pattern}")]
    MissingFile { dataset_spec: PathBuf, pattern: String },
    #[error("{path}, line {line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
    #[error("dataset {dataset}: {file} row {row}: {message}")]
    Row { dataset: String, file: String, row: String, message: String },
    #[error("unknown dataset {name:?} (known: {})", .known.join(", "))]
    UnknownDataset { name: String, known: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Core(#[from] warden_core::Error),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// The dataset spec directory: `$WARDEN_DATASETS`, else the repository's `datasets/`.
pub fn default_spec_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WARDEN_DATASETS") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("datasets")
}

/// The data root: `$WARDEN_DATA`, else `../shared/data` relative to the current directory
/// if it exists, else `shared/data` next to the repository.
pub fn default_data_root() -> PathBuf {
    if let Some(d) = std::env::var_os("WARDEN_DATA") {
        return PathBuf::from(d);
    }
    let rel = PathBuf::from("../shared/data");
    if rel.is_dir() {
        return rel;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The held-out decontamination list under a data root.
pub fn decontamination_list(data_root: &std::path::Path) -> PathBuf {
    data_root.join("heldout-decontamination").join("normalized_text_sha256.txt.gz")
}
