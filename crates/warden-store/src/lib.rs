//! The labeling store: what the select → label → audit → retrain loop reads and writes.
//!
//! It holds samples (text, source, metadata, whether PII was masked, provenance), batches
//! chosen for labeling, assignments of a batch's samples to annotators, every annotator's
//! own label per category (never collapsed on write: the paper's section 7.2 found
//! disagreement itself informative, and majority versus soft labels is an export-time
//! choice), audits (labels given by auditors in audit batches), quality-control decisions,
//! accounts with hashed passwords, and model versions with their scores.
//!
//! The contract is the [`LabelStore`] trait; [`SqliteStore`] implements it on one SQLite
//! file (WAL, migrations in [`schema`], one transaction per logical write, so a process
//! killed mid-import or mid-label leaves the store consistent). The samples table is the one
//! `warden serve` fills by consented sampling, so production traffic and imported corpora
//! flow into the same queue. A PostgreSQL backend would implement the same trait.

mod auth;
pub mod schema;
mod sqlite;
mod types;

pub use auth::{hash_password, verify_password};
pub use schema::STORE_FORMAT_VERSION;
pub use sqlite::{open_connection, text_hash, SqliteStore};
pub use types::*;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("store {path}: {source}")]
    Migrate { path: PathBuf, source: schema::MigrateError },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    /// The caller may not see or change this object (an annotator reading another's
    /// assignment). Deliberately says nothing about whether it exists.
    #[error("not allowed")]
    Forbidden,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("password hashing: {0}")]
    Password(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the labeling loop needs from storage. Methods that write are one atomic
/// transaction each: either all of it lands or none does.
pub trait LabelStore: Send {
    // ---- samples -------------------------------------------------------------------------
    /// Adds samples in transactions of `chunk` rows, recording progress in an import log so
    /// an interrupted import is visible and can simply be re-run: a sample whose
    /// `(source, external_id)` is already stored is counted as a duplicate, not inserted.
    fn import_samples(
        &mut self,
        origin: &str,
        samples: &mut dyn Iterator<Item = NewSample>,
        chunk: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport>;
    fn sample(&self, id: SampleId) -> Result<StoredSample>;
    /// Samples, oldest first, optionally only those never put in a batch.
    fn samples(&self, only_unbatched: bool, limit: Option<usize>) -> Result<Vec<StoredSample>>;
    fn sample_by_external_id(&self, source: &str, external_id: &str) -> Result<Option<SampleId>>;

    // ---- accounts ------------------------------------------------------------------------
    fn create_user(&mut self, name: &str, role: Role, password: &str) -> Result<UserId>;
    fn set_password(&mut self, name: &str, password: &str) -> Result<()>;
    fn users(&self) -> Result<Vec<User>>;
    fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    /// The user when the password is right and the account enabled.
    fn authenticate(&self, name: &str, password: &str) -> Result<Option<User>>;
    /// A new random session token (only its hash is stored).
    fn create_session(&mut self, user: UserId, ttl_secs: f64) -> Result<String>;
    fn session_user(&self, token: &str) -> Result<Option<User>>;
    fn delete_session(&mut self, token: &str) -> Result<()>;

    // ---- batches and assignments ---------------------------------------------------------
    fn create_batch(&mut self, name: &str, kind: BatchKind, items: &[BatchItem], config: &serde_json::Value) -> Result<BatchId>;
    fn batches(&self) -> Result<Vec<BatchInfo>>;
    fn batch_by_name(&self, name: &str) -> Result<Option<BatchInfo>>;
    /// Gives every sample of the batch to `per_sample` distinct users among `users`, round
    /// robin, skipping pairs that already exist. Audit batches go only to auditors and admins.
    fn assign(&mut self, batch: BatchId, users: &[UserId], per_sample: usize) -> Result<usize>;
    /// The user's assignments in queue order (pending first).
    fn queue(&self, user: UserId) -> Result<Vec<Assignment>>;
    /// One assignment with its sample and the labels already given; [`StoreError::Forbidden`]
    /// unless it is the caller's own (admins may read any).
    fn assignment(&self, id: AssignmentId, caller: &User) -> Result<AssignmentView>;
    /// Writes the caller's labels for an assignment and marks it done, atomically.
    fn submit_labels(&mut self, id: AssignmentId, caller: &User, labels: &[(String, LabelValue)]) -> Result<()>;
    fn skip(&mut self, id: AssignmentId, caller: &User) -> Result<()>;
    fn progress(&self, user: UserId) -> Result<Progress>;

    // ---- labels, audits, quality control -------------------------------------------------
    /// Every label given in label and relabel batches, one row per annotator × category.
    fn labels(&self) -> Result<Vec<LabelRow>>;
    /// Every label given in audit batches (auditors' ground truth).
    fn audits(&self) -> Result<Vec<LabelRow>>;
    fn record_qc_event(&mut self, kind: &str, detail: &serde_json::Value) -> Result<i64>;
    fn qc_events(&self, kind: Option<&str>) -> Result<Vec<(i64, f64, String, serde_json::Value)>>;

    // ---- models --------------------------------------------------------------------------
    fn register_model(&mut self, name: &str, sha256: &str, detail: &serde_json::Value) -> Result<ModelId>;
    fn put_scores(&mut self, model: ModelId, scores: &[(SampleId, Vec<(String, f32)>)]) -> Result<()>;
    fn scores(&self, model: ModelId) -> Result<Vec<(SampleId, CategoryScores)>>;
}
