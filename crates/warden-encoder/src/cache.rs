//! Content-addressed embeddings on disk.
//!
//! Training the per-category heads on a frozen encoder only needs each
//! training text's embedding once; running the encoder over ~120k texts is
//! what takes minutes, the heads take seconds. [`EmbeddingCache`] stores
//! embeddings in one SQLite file keyed by [`EmbeddingCache::key`] — a hash of
//! the encoder's weights, the embedding configuration and the text — so a
//! rerun with the same encoder and configuration reads them back, and any
//! change of weights, windowing or pooling misses instead of serving stale
//! vectors.
//!
//! Vectors are stored as little-endian f16: that halves the file (120k texts
//! × 768 dims is ~180 MB instead of ~370 MB) and the error (~1e-3 relative)
//! is far below what matters for a linear/MLP head on normalised embeddings.
//! Values beyond f16's range (±65504) become infinite, so the cache is meant
//! for embeddings, not arbitrary tensors.
//!
//! SQLite gives atomic batches, concurrent readers (WAL) and a single file
//! that is safe to delete at any time: it is only a cache.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

/// The schema this code reads and writes; a file with another version is
/// refused rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

/// Bytes per stored vector element (f16).
const F16_BYTES: usize = 2;
/// Bytes per stored span (two u32).
const SPAN_BYTES: usize = 8;

/// One text's embedding: one vector per window of the text.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEmbedding {
    /// Length of each vector.
    pub dim: usize,
    /// Byte `(start, end)` of each window in the text, so that per-window
    /// scores can be mapped back to the text without re-tokenising.
    pub spans: Vec<(u32, u32)>,
    /// `spans.len() * dim` values, row-major (one row per window).
    pub vectors: Vec<f32>,
}

impl CachedEmbedding {
    /// The vector of window `i`.
    ///
    /// # Panics
    /// If `i >= self.spans.len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }
}

/// Why the cache could not be used; every message names the cache file so
/// that the fix ("delete it") is obvious.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("embedding cache {}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("embedding cache {}: cannot create its directory: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "embedding cache {} has schema version {found}, but this Warden reads version {expected}; \
         it is only a cache, so delete the file (it will be rebuilt) or point Warden elsewhere",
        .path.display()
    )]
    SchemaVersion {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error(
        "embedding cache {}: entry {key} is corrupt ({reason}); delete the file, it will be rebuilt",
        .path.display()
    )]
    Corrupt {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("cannot cache embedding {key}: {reason}")]
    InvalidEmbedding { key: String, reason: String },
}

/// Embeddings on disk, keyed by [`EmbeddingCache::key`].
#[derive(Debug)]
pub struct EmbeddingCache {
    conn: Connection,
    path: PathBuf,
}

impl EmbeddingCache {
    /// Opens (or creates) the cache at `path`, creating parent directories.
    ///
    /// Uses WAL so that readers (e.g. an evaluation run) never block on a
    /// training run writing, and a busy timeout so that two processes
    /// sharing the cache wait for each other instead of failing.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CacheError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let sql = |source| CacheError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        // Check before changing anything, so that a wrong path never gets
        // its journal mode switched or tables added.
        check_schema(&conn, path)?;
        // The returned mode is ignored: file systems without WAL support
        // keep the rollback journal, which is slower but correct.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(sql)?;
        // A crash may lose the last batches but never corrupts the file;
        // losing cache entries only costs recomputation.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;

        // Checked again under the write lock: another process may have
        // created the schema since.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        if !check_schema(&tx, path)? {
            tx.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE embeddings (
                     key BLOB PRIMARY KEY,
                     dim INTEGER NOT NULL,
                     spans BLOB NOT NULL,
                     vectors BLOB NOT NULL
                 );",
            )
            .map_err(sql)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key of `text` embedded by the encoder whose weights hash to
    /// `encoder_sha256` under the embedding configuration `config_id`.
    ///
    /// Each part is length-prefixed before hashing so that different splits
    /// of the same bytes (`("ab", "c")` vs `("a", "bc")`) get different keys.
    pub fn key(encoder_sha256: &str, config_id: &str, text: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"warden-embedding-cache-v1\0");
        for part in [encoder_sha256, config_id, text] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    }

    /// The cached embedding of each key, in the order of `keys`; `None` for
    /// keys not in the cache.
    pub fn get_many(&self, keys: &[[u8; 32]]) -> Result<Vec<Option<CachedEmbedding>>, CacheError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT dim, spans, vectors FROM embeddings WHERE key = ?1")
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let row: Option<(i64, Vec<u8>, Vec<u8>)> = stmt
                .query_row([&key[..]], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
                .map_err(|e| self.sql(e))?;
            out.push(match row {
                None => None,
                Some((dim, spans, vectors)) => Some(self.decode(key, dim, &spans, &vectors)?),
            });
        }
        Ok(out)
    }

    /// Stores `items` in one transaction, replacing entries with the same
    /// key; either all are stored or none.
    pub fn put_many(&mut self, items: &[([u8; 32], CachedEmbedding)]) -> Result<(), CacheError> {
        // Validate before writing so that a bad item cannot leave half a batch.
        for (key, emb) in items {
            let expected = emb.spans.len().checked_mul(emb.dim);
            if expected != Some(emb.vectors.len()) {
                return Err(CacheError::InvalidEmbedding {
                    key: hex::encode(key),
                    reason: format!(
                        "{} values for {} windows of dimension {}",
                        emb.vectors.len(),
                        emb.spans.len(),
                        emb.dim
                    ),
                });
            }
            if i64::try_from(emb.dim).is_err() {
                return Err(CacheError::InvalidEmbedding {
                    key: hex::encode(key),
                    reason: format!("dimension {} is too large", emb.dim),
                });
            }
        }
        let path = self.path.clone();
        let sql = |source| CacheError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO embeddings (key, dim, spans, vectors) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql)?;
            let mut spans = Vec::new();
            let mut vectors = Vec::new();
            for (key, emb) in items {
                spans.clear();
                for &(start, end) in &emb.spans {
                    spans.extend_from_slice(&start.to_le_bytes());
                    spans.extend_from_slice(&end.to_le_bytes());
                }
                vectors.clear();
                vectors.reserve(emb.vectors.len() * F16_BYTES);
                for &v in &emb.vectors {
                    vectors.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
                }
                stmt.execute(rusqlite::params![
                    &key[..],
                    emb.dim as i64,
                    &spans,
                    &vectors
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Number of cached embeddings.
    pub fn len(&self) -> Result<u64, CacheError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM embeddings", [], |row| row.get(0))
            .map_err(|e| self.sql(e))?;
        Ok(n.max(0) as u64)
    }

    /// Whether the cache holds no embedding.
    pub fn is_empty(&self) -> Result<bool, CacheError> {
        let any: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM embeddings)", [], |row| {
                row.get(0)
            })
            .map_err(|e| self.sql(e))?;
        Ok(!any)
    }

    fn sql(&self, source: rusqlite::Error) -> CacheError {
        CacheError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Checks the blob lengths against each other before trusting them: a
    /// truncated or foreign row must fail loudly, not yield wrong vectors.
    fn decode(
        &self,
        key: &[u8; 32],
        dim: i64,
        spans: &[u8],
        vectors: &[u8],
    ) -> Result<CachedEmbedding, CacheError> {
        let corrupt = |reason: String| CacheError::Corrupt {
            path: self.path.clone(),
            key: hex::encode(key),
            reason,
        };
        let dim = usize::try_from(dim).map_err(|_| corrupt(format!("negative dimension {dim}")))?;
        // (Not `is_multiple_of`: the workspace supports Rust 1.82.)
        let windows = spans.len() / SPAN_BYTES;
        if windows * SPAN_BYTES != spans.len() {
            return Err(corrupt(format!(
                "spans blob of {} bytes is not a multiple of {SPAN_BYTES}",
                spans.len()
            )));
        }
        let expected = windows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(F16_BYTES));
        if expected != Some(vectors.len()) {
            return Err(corrupt(format!(
                "vectors blob of {} bytes for {windows} windows of dimension {dim}",
                vectors.len()
            )));
        }
        let spans = spans
            .chunks_exact(SPAN_BYTES)
            .map(|c| {
                (
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        let vectors = vectors
            .chunks_exact(F16_BYTES)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        Ok(CachedEmbedding {
            dim,
            spans,
            vectors,
        })
    }
}

/// `Ok(true)` if `conn` holds a cache of [`SCHEMA_VERSION`], `Ok(false)` if
/// it is empty (a new file), an error for anything else.
fn check_schema(conn: &Connection, path: &Path) -> Result<bool, CacheError> {
    let sql = |source| CacheError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |found: String| CacheError::SchemaVersion {
        path: path.to_path_buf(),
        found,
        expected: SCHEMA_VERSION,
    };
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    if tables == 0 {
        return Ok(false);
    }
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    if !has_meta {
        return Err(refuse("none (not a Warden embedding cache)".to_owned()));
    }
    let found: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)?;
    match found {
        Some(v) if v.trim() == SCHEMA_VERSION.to_string() => Ok(true),
        Some(v) => Err(refuse(v)),
        None => Err(refuse("none (not a Warden embedding cache)".to_owned())),
    }
}
