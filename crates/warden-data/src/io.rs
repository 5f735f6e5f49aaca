//! The unified JSON-lines format, and writing a whole build.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use warden_core::{Record, Taxonomy};

use crate::build::BuiltData;
use crate::datasheet::datasheet_markdown;
use crate::{DataError, Result};

/// Writes one `Record::to_json` object per line and returns the SHA-256 (hex) of the bytes
/// written. Parent directories are created.
pub fn write_jsonl(records: &[Record], taxonomy: &Taxonomy, path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let io = |source| DataError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    let sha = write_jsonl_to(records, taxonomy, &mut w).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(sha)
}

/// The SHA-256 (hex) that [`write_jsonl`] would return for these records, without writing
/// anything: what a model manifest records as its training data hash.
pub fn jsonl_sha256(records: &[Record], taxonomy: &Taxonomy) -> String {
    write_jsonl_to(records, taxonomy, &mut std::io::sink()).expect("a sink never fails")
}

fn write_jsonl_to(records: &[Record], taxonomy: &Taxonomy, w: &mut impl Write) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut line = Vec::with_capacity(1024);
    for r in records {
        line.clear();
        serde_json::to_writer(&mut line, &r.to_json(taxonomy)).expect("records serialize");
        line.push(b'\n');
        h.update(&line);
        w.write_all(&line)?;
    }
    Ok(hex::encode(h.finalize()))
}

/// Reads records written by [`write_jsonl`] (or any JSON lines in that shape; `.gz` is
/// decompressed). Blank lines are skipped.
pub fn read_jsonl(path: impl AsRef<Path>, taxonomy: &Taxonomy) -> Result<Vec<Record>> {
    let path = path.as_ref();
    let reader = BufReader::new(crate::read::open_maybe_gz(path)?);
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| DataError::Io { path: path.to_owned(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let perr = |message: String| DataError::Parse { path: path.to_owned(), line: i + 1, message };
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| perr(e.to_string()))?;
        out.push(Record::from_json(v, taxonomy).map_err(|e| perr(e.to_string()))?);
    }
    Ok(out)
}

/// Paths and hashes of a written build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutputs {
    pub train: PathBuf,
    pub dev: PathBuf,
    pub datasheet: PathBuf,
    pub stats: PathBuf,
    pub train_sha256: String,
    pub dev_sha256: String,
}

/// Writes `train.jsonl`, `dev.jsonl`, `stats.json` and `datasheet.md` into `out_dir`, and
/// records the two file hashes in `data.stats`.
pub fn write_build(data: &mut BuiltData, taxonomy: &Taxonomy, out_dir: impl AsRef<Path>) -> Result<BuildOutputs> {
    let dir = out_dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io { path: dir.to_owned(), source })?;
    let train = dir.join("train.jsonl");
    let dev = dir.join("dev.jsonl");
    let train_sha256 = write_jsonl(&data.train, taxonomy, &train)?;
    let dev_sha256 = write_jsonl(&data.dev, taxonomy, &dev)?;
    data.stats.train_sha256 = Some(train_sha256.clone());
    data.stats.dev_sha256 = Some(dev_sha256.clone());
    let stats = dir.join("stats.json");
    let s = serde_json::to_string_pretty(&data.stats).expect("stats serialize");
    std::fs::write(&stats, s + "\n").map_err(|source| DataError::Io { path: stats.clone(), source })?;
    let datasheet = dir.join("datasheet.md");
    std::fs::write(&datasheet, datasheet_markdown(&data.stats, taxonomy))
        .map_err(|source| DataError::Io { path: datasheet.clone(), source })?;
    Ok(BuildOutputs { train, dev, datasheet, stats, train_sha256, dev_sha256 })
}
