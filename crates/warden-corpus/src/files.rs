//! Input file lists: glob expansion, `--shard I/N` partitioning and hashing.

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::CorpusError;

/// Expands glob patterns (the `glob` crate's syntax; a plain path is a pattern matching
/// itself) into a sorted, deduplicated list of files. Directories matched by a pattern
/// are ignored. Fails if a pattern is malformed, cannot be walked, or matches no file:
/// a typo in a shard pattern must not silently shrink a curation run.
pub fn expand_globs(patterns: &[String]) -> Result<Vec<PathBuf>, CorpusError> {
    let mut files = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(pattern).map_err(|e| CorpusError::Glob {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        let before = files.len();
        for entry in paths {
            let path = entry.map_err(|e| CorpusError::Io {
                path: e.path().to_path_buf(),
                source: std::io::Error::new(e.error().kind(), e.error().to_string()),
            })?;
            if path.is_file() {
                files.push(path);
            }
        }
        if files.len() == before {
            return Err(CorpusError::NoMatch {
                pattern: pattern.clone(),
            });
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Parses a `--shard I/N` spec (`"3/8"`) into `(index, count)`, checking `0 <= I < N`.
pub fn parse_shard_spec(spec: &str) -> Result<(usize, usize), CorpusError> {
    let bad = || CorpusError::ShardSpec {
        spec: spec.to_string(),
    };
    let (i, n) = spec.split_once('/').ok_or_else(bad)?;
    let index: usize = i.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok((index, count))
}

/// The files of shard `index` out of `count`, for `--shard I/N` runs.
///
/// The input is sorted and deduplicated first (so the caller's order does not matter),
/// then file `k` of that list goes to shard `k % count`. For a given file list the `count`
/// shards are therefore pairwise disjoint, their union is the whole list, sizes differ by
/// at most one, and the result is deterministic. The assignment depends on the whole
/// list: run every shard of one run over the same list (record it in the run manifest).
///
/// # Panics
///
/// If `count == 0` or `index >= count` (validate user input with [`parse_shard_spec`]).
pub fn shard(files: &[PathBuf], index: usize, count: usize) -> Vec<PathBuf> {
    assert!(count > 0, "shard count must be at least 1");
    assert!(index < count, "shard index {index} out of range 0..{count}");
    let mut sorted: Vec<&PathBuf> = files.iter().collect();
    sorted.sort();
    sorted.dedup();
    sorted
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % count == index)
        .map(|(_, p)| p.clone())
        .collect()
}

/// SHA-256 of a file's bytes as lowercase hex, read in fixed-size chunks (for run
/// manifests). Compressed files are hashed as stored, not decompressed.
pub fn sha256_file(path: &Path) -> Result<String, CorpusError> {
    let io_err = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    // Streams through a fixed buffer: a large shard never sits in memory whole.
    std::io::copy(&mut file, &mut hasher).map_err(io_err)?;
    Ok(hex::encode(hasher.finalize()))
}
