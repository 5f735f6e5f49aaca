//! The on-disk schema and its migrations.
//!
//! The schema's version is SQLite's `user_version`; `meta.format_version` mirrors it so that
//! a reader that predates migrations (the first `warden serve` sample store, which wrote
//! `format_version = 1` and nothing else) still recognises a store it cannot read.
//! Migrations only ever append: migration *n* turns a version *n − 1* store into version *n*,
//! inside one transaction, so an interrupted upgrade leaves the old version intact.

use rusqlite::{Connection, OptionalExtension};

/// The store format this build writes. Stores with a higher version are refused.
pub const STORE_FORMAT_VERSION: u32 = 2;

/// Migration `i` (0-based) takes a store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the consented-sampling store of `warden serve` (as first released; `IF NOT EXISTS`
    // because version-1 stores written before `user_version` was used already have it).
    "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples(
  id INTEGER PRIMARY KEY,
  created_at REAL NOT NULL,     -- unix seconds
  request_id TEXT NOT NULL,
  api_key TEXT,                 -- the key's configured name, never the key
  policy TEXT NOT NULL,
  model TEXT NOT NULL,
  reason TEXT NOT NULL,         -- flagged | uncertain | random | import
  text TEXT NOT NULL,           -- PII-masked when pii_masked = 1
  pii TEXT NOT NULL,            -- JSON: masked spans per kind
  scores TEXT NOT NULL,         -- JSON: {category: score} at sampling time
  flagged TEXT NOT NULL,        -- JSON: [category, ...]
  status TEXT NOT NULL DEFAULT 'unlabeled'
);
CREATE INDEX IF NOT EXISTS samples_created ON samples(created_at);
CREATE INDEX IF NOT EXISTS samples_reason ON samples(reason, status);
",
    // 2: the labeling loop (issue 6). Samples gain where they came from; everything else is
    // new tables. Every annotator's label is its own row (paper section 7.2: never collapse
    // labels on write; aggregation is a read-time choice).
    "
ALTER TABLE samples ADD COLUMN source TEXT NOT NULL DEFAULT 'serve';
ALTER TABLE samples ADD COLUMN external_id TEXT;
ALTER TABLE samples ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE samples ADD COLUMN pii_masked INTEGER NOT NULL DEFAULT 1;
ALTER TABLE samples ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}';
ALTER TABLE samples ADD COLUMN text_hash TEXT;
CREATE UNIQUE INDEX samples_source_external ON samples(source, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX samples_text_hash ON samples(text_hash);

CREATE TABLE imports(
  id INTEGER PRIMARY KEY,
  started_at REAL NOT NULL,
  finished_at REAL,             -- NULL while running or when interrupted
  origin TEXT NOT NULL,         -- e.g. the file imported
  rows_committed INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE users(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('annotator', 'auditor', 'admin')),
  password_hash TEXT NOT NULL,  -- argon2id PHC string
  created_at REAL NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sessions(
  token_sha256 TEXT PRIMARY KEY,  -- the cookie holds the token; only its hash is stored
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL
);

CREATE TABLE batches(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('label', 'audit', 'relabel')),
  created_at REAL NOT NULL,
  config TEXT NOT NULL DEFAULT '{}'  -- JSON: how it was selected (command, model, fractions...)
);
CREATE TABLE batch_items(
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  sample_id INTEGER NOT NULL REFERENCES samples(id),
  position INTEGER NOT NULL,
  pipeline TEXT,                -- random | above_threshold | uncertainty | ...
  category TEXT,
  score REAL,
  weight REAL,
  PRIMARY KEY (batch_id, sample_id)
);
CREATE TABLE assignments(
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  sample_id INTEGER NOT NULL REFERENCES samples(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  position INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped')),
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  UNIQUE (batch_id, sample_id, user_id)
);
CREATE INDEX assignments_user ON assignments(user_id, status, position);
CREATE TABLE labels(
  id INTEGER PRIMARY KEY,
  assignment_id INTEGER NOT NULL REFERENCES assignments(id),
  sample_id INTEGER NOT NULL REFERENCES samples(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  category TEXT NOT NULL,
  value TEXT NOT NULL CHECK (value IN ('pos', 'neg', 'unsure')),
  created_at REAL NOT NULL,
  UNIQUE (assignment_id, category)
);
CREATE INDEX labels_sample ON labels(sample_id);
-- An annotator who changes their answer on an assignment replaces it in `labels`; the
-- answers replaced are kept here, so nothing anyone said is lost.
CREATE TABLE label_history(
  id INTEGER PRIMARY KEY,
  assignment_id INTEGER NOT NULL REFERENCES assignments(id),
  sample_id INTEGER NOT NULL REFERENCES samples(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  category TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at REAL NOT NULL,     -- when the answer was given
  replaced_at REAL NOT NULL     -- when a newer answer replaced it
);
-- Audits are the labels given in audit batches: auditors' labels, the ground truth of QC.
CREATE VIEW audits AS
  SELECT l.*, a.batch_id FROM labels l
  JOIN assignments a ON a.id = l.assignment_id
  JOIN batches b ON b.id = a.batch_id
  WHERE b.kind = 'audit';
-- What quality control decided (audit reports, mislabel hunts, relabel orders), as JSON.
CREATE TABLE qc_events(
  id INTEGER PRIMARY KEY,
  created_at REAL NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL
);

CREATE TABLE models(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  created_at REAL NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}',
  UNIQUE (name, sha256)
);
CREATE TABLE model_scores(
  model_id INTEGER NOT NULL REFERENCES models(id),
  sample_id INTEGER NOT NULL REFERENCES samples(id),
  scores TEXT NOT NULL,         -- JSON: {category code: probability}
  PRIMARY KEY (model_id, sample_id)
);
",
];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store has format version {found}; this build reads up to {STORE_FORMAT_VERSION} (upgrade Warden)")]
    TooNew { found: u32 },
    #[error("meta.format_version is {0:?}, not a number")]
    Garbled(String),
}

/// The store's version: `user_version`, or for a store written before migrations existed,
/// `meta.format_version` (which only ever said 1).
pub fn current_version(conn: &Connection) -> Result<u32, MigrateError> {
    let user_version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let has_meta: bool = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    let meta: Option<String> = if has_meta {
        conn.query_row("SELECT value FROM meta WHERE key = 'format_version'", [], |r| r.get(0)).optional()?
    } else {
        None
    };
    let meta = match meta {
        None => 0,
        Some(v) => v.trim().parse::<u32>().map_err(|_| MigrateError::Garbled(v))?,
    };
    Ok(user_version.max(meta))
}

/// Brings the store to [`STORE_FORMAT_VERSION`], one transaction per migration. Returns the
/// version found before.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrateError> {
    let found = current_version(conn)?;
    if found > STORE_FORMAT_VERSION {
        return Err(MigrateError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = i as u32 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('format_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [to.to_string()],
        )?;
        tx.pragma_update(None, "user_version", to)?;
        tx.commit()?;
    }
    Ok(found)
}
