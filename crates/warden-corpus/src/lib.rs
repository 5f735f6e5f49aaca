//! Streaming readers for web-corpus shards: the input side of `warden curate`.
//!
//! # Design
//!
//! * **Streaming, bounded memory.** [`open`] returns an iterator that yields one [`Item`]
//!   at a time. JSONL input (plain, `.gz`, `.zst`) is read through a fixed-size buffer by a
//!   hand-written line reader over [`std::io::BufRead::fill_buf`] / `consume`; at most one
//!   line of up to [`ReaderOptions::max_line_bytes`] is held in memory. A longer line is
//!   *skipped in streaming fashion*: its bytes are counted and thrown away chunk by chunk
//!   (only a 200-byte excerpt is kept), so a 50 GB line costs no more memory than a short
//!   one. Parquet input is read row by row through the `parquet` record API, so memory is
//!   bounded by a page / row group, never by the file.
//! * **Nothing is silently dropped.** Every non-empty line (JSONL) or row (Parquet) becomes
//!   either an [`Item::Doc`] or an [`Item::Error`] whose [`ReadError`] carries the file,
//!   line/row number, byte offset, the reason ([`ReadErrorKind`]) and an excerpt, which is
//!   enough to route it to an errors file. Empty (all-whitespace) lines are the only thing
//!   skipped, and they still count in line numbers. A read or decompression failure in the
//!   middle of a file (truncated `.gz`, corrupt `.zst`, unreadable Parquet page) yields one
//!   [`ReadErrorKind::Io`] item and then ends that file's iteration: no panic, no loop.
//!   A stream that fails before producing its first byte (not gzip/zstd at all, or cut
//!   inside its first compressed block) is reported by [`open`] itself as
//!   [`CorpusError::Decompress`], which names the file.
//! * **Locations carry byte offsets.** [`Location::byte_offset`] is the offset of the start
//!   of the line in the *decompressed* stream. Together with the 1-based line number it
//!   gives provenance for every kept or rejected document (an auditor can find the exact
//!   bytes) and makes runs resumable: a checkpoint can record "file F, offset O" and a
//!   restarted run can skip to it (seek for plain files, decompress-and-discard for
//!   compressed ones) instead of re-processing the shard.
//!
//! # Field mapping
//!
//! [`FieldMap`] names the id, text, source and url fields (defaults `id`, `text`,
//! `source`, `url`). See [`Document`] for how each is derived, including the deterministic
//! id fallback `"<file-stem>:<line>"` and the url-host fallback for `source`.
//!
//! # Formats
//!
//! Chosen by file name, case-insensitively (see [`Format::from_path`]):
//! `.jsonl` / `.ndjson` / `.json` (one JSON object per line), the same followed by `.gz`
//! (multi-member gzip is supported) or `.zst` / `.zstd`, and `.parquet` (cargo feature
//! `parquet`, on by default).
//!
//! # Files
//!
//! [`expand_globs`] turns CLI patterns into a sorted, deduplicated file list, [`shard`]
//! partitions it for `--shard I/N` runs and [`sha256_file`] hashes inputs for run
//! manifests.
//!
//! The library never prints.

use std::path::{Path, PathBuf};

mod files;
mod jsonl;
#[cfg(feature = "parquet")]
mod parquet_reader;
mod record;

pub use files::{expand_globs, parse_shard_spec, sha256_file, shard};
pub use record::url_host;

/// Which record fields hold the id, the text, the source and the url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    /// Id field; default `"id"`.
    pub id: String,
    /// Text field; default `"text"`.
    pub text: String,
    /// Source field. `None` (the default) means `"source"`. Whichever name is used, a
    /// missing, null or empty source falls back to the host of the url field.
    pub source: Option<String>,
    /// Url field, used for the source fallback; default `"url"`.
    pub url: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap {
            id: "id".to_string(),
            text: "text".to_string(),
            source: None,
            url: "url".to_string(),
        }
    }
}

/// Default [`ReaderOptions::max_line_bytes`]: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// Maximum number of bytes kept in [`ReadError::excerpt`].
pub const EXCERPT_BYTES: usize = 200;

/// Options for [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Field names.
    pub fields: FieldMap,
    /// Longest accepted JSONL line, in bytes, excluding the line terminator. Longer lines
    /// are skipped without being buffered and reported as [`ReadErrorKind::LineTooLong`].
    /// Default [`DEFAULT_MAX_LINE_BYTES`] (16 MiB).
    pub max_line_bytes: u64,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            fields: FieldMap::default(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Where a document or error came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The path as given to [`open`].
    pub file: PathBuf,
    /// 1-based line (JSONL) or row (Parquet) number. Empty lines count.
    pub line: u64,
    /// Offset of the start of the line in the decompressed stream (JSONL only). A UTF-8
    /// byte-order mark at the start of a file is not part of line 1, so line 1 then starts
    /// at offset 3.
    pub byte_offset: Option<u64>,
}

/// One document read from a shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The id field: a string as is, a number rendered as JSON renders it (`42`, `1.5`),
    /// any other non-null value as compact JSON. When the field is missing or null:
    /// `"<file-stem>:<line>"`, where the stem is the file name without its format
    /// extension (`shard-007.jsonl.gz` → `shard-007`) and the line is
    /// [`Location::line`] (the row number for Parquet). Deterministic across runs.
    pub id: String,
    /// The text field (must be a JSON string).
    pub text: String,
    /// The source field if it is a non-empty string (numbers etc. are rendered as
    /// JSON); otherwise the host of the url field, lower-cased, without userinfo, port,
    /// trailing dot or brackets (see [`url_host`]). `www.` is kept as is: stripping it is a
    /// policy decision (and wrong for hosts like `www.gov.uk` vs `gov.uk`), left to the
    /// caller. `None` when neither is available.
    pub source: Option<String>,
    /// The whole original record, parsed.
    pub raw: serde_json::Value,
    /// The exact line the record was read from (JSONL only; without the line terminator,
    /// a trailing `\r` or a byte-order mark), so a kept document can be written back
    /// byte for byte and a verifier can compare bytes, not re-serialisations (serde_json
    /// would reorder keys and reformat numbers). `None` for Parquet rows.
    pub line: Option<String>,
    /// Where the record was read.
    pub location: Location,
}

/// Why a line or row did not become a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// Not valid JSON; carries the parser message.
    InvalidJson(String),
    /// Valid JSON, but not an object (an array, a string, ...).
    NotAnObject,
    /// The text field is missing or null.
    MissingText,
    /// The text field is present but not a string.
    TextNotString,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is longer than [`ReaderOptions::max_line_bytes`]; `len` is its full
    /// length in bytes (without the terminator).
    LineTooLong {
        /// Full length of the line.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
    /// A read / decompression failure; the file's iteration ends after this item.
    Io(String),
}

impl std::fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadErrorKind::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            ReadErrorKind::NotAnObject => f.write_str("record is not a JSON object"),
            ReadErrorKind::MissingText => f.write_str("text field is missing or null"),
            ReadErrorKind::TextNotString => f.write_str("text field is not a string"),
            ReadErrorKind::InvalidUtf8 => f.write_str("line is not valid UTF-8"),
            ReadErrorKind::LineTooLong { len, max } => {
                write!(f, "line is {len} bytes, longer than the maximum of {max}")
            }
            ReadErrorKind::Io(m) => write!(f, "read error: {m}"),
        }
    }
}

/// A line or row that could not be turned into a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Where it happened.
    pub location: Location,
    /// Why.
    pub kind: ReadErrorKind,
    /// The first ≤ [`EXCERPT_BYTES`] bytes of the line (or of the row rendered as JSON),
    /// decoded lossily.
    pub excerpt: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.location.file.display(),
            self.location.line,
            self.kind
        )
    }
}

impl std::error::Error for ReadError {}

/// What the reader yields: a document or the reason a line/row was rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A well-formed document.
    Doc(Document),
    /// A rejected line or row.
    Error(ReadError),
}

impl Item {
    /// The location of the document or error.
    pub fn location(&self) -> &Location {
        match self {
            Item::Doc(d) => &d.location,
            Item::Error(e) => &e.location,
        }
    }
}

/// Errors that stop a whole file (or file list) rather than one line. Every message
/// names the path (or glob pattern) involved.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file name has no supported extension.
    #[error("{}: unsupported file extension; supported: {supported}", .path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Human-readable list of supported extensions.
        supported: &'static str,
    },
    /// The file could not be opened or read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The compressed stream could not be started (not gzip / zstd data).
    #[error("{}: cannot decompress: {source}", .path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Parquet footer / metadata could not be read.
    #[error("{}: cannot read Parquet file: {message}", .path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet crate's message.
        message: String,
    },
    /// A glob pattern is malformed.
    #[error("invalid glob pattern {pattern:?}: {message}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A glob pattern matched no files.
    #[error("glob pattern {pattern:?} matched no files")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
    /// A `--shard I/N` specification is malformed.
    #[error("invalid shard spec {spec:?}: expected I/N with 0 <= I < N")]
    ShardSpec {
        /// The spec as given.
        spec: String,
    },
}

/// Supported extensions, for error messages.
pub const SUPPORTED_EXTENSIONS: &str = if cfg!(feature = "parquet") {
    ".jsonl, .ndjson, .json (JSON lines), each optionally followed by .gz, .zst or .zstd; .parquet"
} else {
    ".jsonl, .ndjson, .json (JSON lines), each optionally followed by .gz, .zst or .zstd \
     (.parquet needs the `parquet` feature)"
};

/// Input format, chosen from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Uncompressed JSON lines.
    Jsonl,
    /// Gzip-compressed JSON lines (multi-member gzip supported).
    JsonlGz,
    /// Zstandard-compressed JSON lines.
    JsonlZst,
    /// Apache Parquet.
    Parquet,
}

const JSONL_EXTS: [&str; 3] = [".jsonl", ".ndjson", ".json"];

impl Format {
    /// The format and the file stem (the file name without the format extension) of
    /// `path`, or `None` if the extension is not recognised. Case-insensitive.
    pub fn from_path(path: &Path) -> Option<(Format, String)> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        let strip = |ext_len: usize| name[..name.len() - ext_len].to_string();
        if lower.ends_with(".parquet") {
            return Some((Format::Parquet, strip(".parquet".len())));
        }
        for (suffix, fmt) in [
            ("", Format::Jsonl),
            (".gz", Format::JsonlGz),
            (".zst", Format::JsonlZst),
            (".zstd", Format::JsonlZst),
        ] {
            for ext in JSONL_EXTS {
                let full = format!("{ext}{suffix}");
                if lower.ends_with(&full) {
                    return Some((fmt, strip(full.len())));
                }
            }
        }
        None
    }
}

/// Opens a shard and returns a streaming iterator over its documents and errors.
///
/// The format is chosen by extension ([`Format::from_path`]). Fails (with the path in the
/// message) when the extension is unsupported, the file cannot be opened, a compressed
/// file does not start with a valid gzip/zstd stream, or a Parquet footer is unreadable.
/// Problems after that are reported as [`Item::Error`]s.
pub fn open(
    path: &Path,
    opts: &ReaderOptions,
) -> Result<Box<dyn Iterator<Item = Item> + Send>, CorpusError> {
    let (format, stem) = Format::from_path(path).ok_or_else(|| CorpusError::UnsupportedFormat {
        path: path.to_path_buf(),
        supported: SUPPORTED_EXTENSIONS,
    })?;
    match format {
        Format::Jsonl | Format::JsonlGz | Format::JsonlZst => Ok(Box::new(
            jsonl::JsonlReader::open(path, format, stem, opts)?,
        )),
        #[cfg(feature = "parquet")]
        Format::Parquet => Ok(Box::new(parquet_reader::ParquetReader::open(
            path, stem, opts,
        )?)),
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => Err(CorpusError::UnsupportedFormat {
            path: path.to_path_buf(),
            supported: SUPPORTED_EXTENSIONS,
        }),
    }
}
