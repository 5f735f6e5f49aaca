//! Consented sampling of traffic into SQLite (paper section 3.1, stage one).
//!
//! The labeling loop needs production text, and production text contains personal data. So:
//! sampling is off unless a store path is configured; requests with `X-Warden-No-Store: 1`
//! and keys marked `no_store` are never written; every text is PII-masked *before* it leaves
//! memory ([`warden_pii`]); rows older than the retention period are deleted at start and
//! hourly. What is kept: every flagged text, every text whose score is within a margin of a
//! threshold (the uncertain ones active learning wants), and a random fraction of the rest
//! (the unbiased slice that keeps evaluation honest).
//!
//! Writes happen on a dedicated thread behind a bounded channel; when it falls behind, samples
//! are dropped and counted, never delaying a response.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use warden_pii::PiiMasker;

use crate::metrics::Metrics;

pub use warden_store::STORE_FORMAT_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
    #[error("sample store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
}

/// One text to store, before masking.
pub struct Sample {
    pub request_id: String,
    pub api_key: Option<String>,
    pub policy: String,
    pub model: String,
    pub reason: &'static str,
    pub text: String,
    pub scores: Vec<(String, f32)>,
    pub flagged: Vec<String>,
}

enum Msg {
    Sample(Box<Sample>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The writer handle. Dropping it (or [`SampleStore::close`]) flushes and stops the thread.
pub struct SampleStore {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    pub path: PathBuf,
}

pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Opens (creating if needed) the store, migrating it to the current format. The schema
/// lives in [`warden_store`]: the samples written here are the labeling loop's queue.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    Ok(warden_store::open_connection(path)?)
}

/// Deletes traffic samples older than `retention_days`; returns how many. Samples already
/// chosen for labeling (in a batch) are kept: they are masked, and they are the labeled
/// dataset; imported corpora are not traffic and have their own provenance.
pub fn expire(conn: &Connection, retention_days: f64, now: f64) -> rusqlite::Result<usize> {
    let cutoff = now - retention_days * 86_400.0;
    let expired = "SELECT id FROM samples WHERE source = 'serve' AND created_at < ?1
                   AND id NOT IN (SELECT sample_id FROM batch_items)";
    conn.execute(&format!("DELETE FROM model_scores WHERE sample_id IN ({expired})"), [cutoff])?;
    conn.execute(&format!("DELETE FROM samples WHERE id IN ({expired})"), [cutoff])
}

impl SampleStore {
    pub fn start(path: &Path, retention_days: f64, queue: usize, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let conn = open(path)?;
        let expired = expire(&conn, retention_days, now_secs()).map_err(|source| StoreError::Sqlite { path: path.to_owned(), source })?;
        metrics.samples_expired.inc_by(expired as u64);
        let (tx, rx) = sync_channel::<Msg>(queue.max(1));
        let m = metrics.clone();
        let p = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("warden-sample-store".into())
            .spawn(move || {
                let masker = PiiMasker::new();
                let mut last_sweep = Instant::now();
                let sweep_every = Duration::from_secs(3600);
                let mut pending: Vec<Box<Sample>> = Vec::new();
                loop {
                    let msg = rx.recv_timeout(Duration::from_millis(200));
                    let mut flush_ack = None;
                    let mut closed = false;
                    match msg {
                        Ok(Msg::Sample(s)) => pending.push(s),
                        Ok(Msg::Flush(ack)) => flush_ack = Some(ack),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => closed = true,
                    }
                    // Gather what else is already waiting, then write it in one transaction.
                    while let Ok(more) = rx.try_recv() {
                        match more {
                            Msg::Sample(s) => pending.push(s),
                            Msg::Flush(ack) => flush_ack = Some(ack),
                        }
                    }
                    if !pending.is_empty() {
                        if let Err(err) = write(&conn, &masker, &pending, &m) {
                            tracing::error!(store = %p.display(), %err, dropped = pending.len(), "writing samples failed");
                            m.samples_dropped.inc_by(pending.len() as u64);
                        }
                        pending.clear();
                    }
                    if last_sweep.elapsed() >= sweep_every {
                        last_sweep = Instant::now();
                        match expire(&conn, retention_days, now_secs()) {
                            Ok(n) => m.samples_expired.inc_by(n as u64),
                            Err(err) => tracing::error!(%err, "retention sweep failed"),
                        }
                    }
                    if let Some(ack) = flush_ack {
                        let _ = ack.send(());
                    }
                    if closed {
                        return;
                    }
                }
            })
            .expect("spawning the sample store thread");
        Ok(Self { tx: Some(tx), thread: Some(thread), metrics, path: path.to_owned() })
    }

    /// Queues a sample; drops it (and counts the drop) when the writer is behind.
    pub fn offer(&self, s: Sample) {
        if let Some(tx) = &self.tx {
            match tx.try_send(Msg::Sample(Box::new(s))) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.metrics.samples_dropped.inc(),
            }
        }
    }

    /// Waits until everything queued so far is written (tests, shutdown).
    pub fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (ack_tx, ack_rx) = std::sync::mpsc::channel();
            if tx.send(Msg::Flush(ack_tx)).is_ok() {
                let _ = ack_rx.recv_timeout(Duration::from_secs(30));
            }
        }
    }

    pub fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SampleStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn write(conn: &Connection, masker: &PiiMasker, samples: &[Box<Sample>], m: &Metrics) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO samples(created_at, request_id, api_key, policy, model, reason, text, pii, scores, flagged)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let now = now_secs();
        for s in samples {
            let masked = masker.mask(&s.text);
            let mut pii = serde_json::Map::new();
            for k in warden_pii::PiiKind::ALL {
                let c = masked.count(k);
                if c > 0 {
                    pii.insert(k.as_str().into(), c.into());
                }
            }
            let scores: serde_json::Map<String, serde_json::Value> =
                s.scores.iter().map(|(k, v)| (k.clone(), serde_json::json!((*v as f64 * 1e6).round() / 1e6))).collect();
            stmt.execute(params![
                now,
                s.request_id,
                s.api_key,
                s.policy,
                s.model,
                s.reason,
                masked.text,
                serde_json::Value::Object(pii).to_string(),
                serde_json::Value::Object(scores).to_string(),
                serde_json::to_string(&s.flagged).unwrap(),
            ])?;
            m.samples_stored.with_label_values(&[s.reason]).inc();
        }
    }
    tx.commit()
}
