//! Service settings. Every limit has a default that keeps one process safe under abuse on a
//! small machine; each one is a flag of `warden serve`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_monitor::MonitorConfig;

/// Per-request limits: what a single client may ask for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body in bytes (answered 413 beyond).
    pub max_body_bytes: usize,
    /// Most strings in one `input` array (400 beyond).
    pub max_inputs: usize,
    /// Most characters (Unicode scalar values) in one input string (400 beyond).
    pub max_input_chars: usize,
    /// How long a client may take to send its body: stops slow-loris clients from holding
    /// connections and memory.
    pub body_timeout_secs: u64,
    /// How long a client may take to send its request headers.
    pub header_timeout_secs: u64,
    /// Most simultaneous connections; further ones wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// Most moderation requests being handled at once (reading, parsing, queued or scored).
    /// Beyond it a request is answered 429 before its body is read, so overload is shed at
    /// the cost of parsing headers only, not allowed to pile up inside the server.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            max_inputs: 256,
            max_input_chars: 100_000,
            body_timeout_secs: 10,
            header_timeout_secs: 10,
            max_connections: 1024,
            max_in_flight: 512,
        }
    }
}

/// The inference worker and its queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Texts that may wait for inference at once. A request that would exceed it is answered
    /// 429 with `Retry-After`, so memory stays bounded whatever the load.
    pub queue_texts: usize,
    /// Also bound the queue by time: at start-up the model scores a warm-up batch of 32
    /// texts of about 200 characters, and the queue holds at most this many seconds of that
    /// rate (at least 64 texts, at most `queue_texts`). 8,192 texts are a fraction of a
    /// second for the fast tier but about 30 s for the cascade, which would otherwise queue
    /// instead of answering 429. 0 (the library default) turns the measurement off;
    /// `warden serve` uses 1.
    pub queue_seconds: f64,
    /// Most texts per model call.
    pub max_batch_texts: usize,
    /// Most bytes of text per model call: the token budget, approximated by bytes so long
    /// texts make smaller batches (padding and memory stay bounded for the encoder tier).
    pub max_batch_bytes: usize,
    /// Inference threads. Each runs whole batches; the model may parallelise inside a batch.
    pub workers: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { queue_texts: 8192, queue_seconds: 0.0, max_batch_texts: 256, max_batch_bytes: 1 << 20, workers: 1 }
    }
}

/// Consented sampling of traffic into a SQLite store for the labeling loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Store path; `None` disables sampling entirely (the default: nothing is written).
    pub store: Option<PathBuf>,
    /// Probability that an unflagged, certain text is stored.
    pub random_rate: f64,
    /// Store every flagged text.
    pub flagged: bool,
    /// Store texts with any category score within this distance of its threshold.
    pub uncertain_margin: f32,
    /// Rows older than this are deleted (checked at start and hourly).
    pub retention_days: f64,
    /// Texts waiting to be written; beyond it samples are dropped (and counted), never
    /// blocking a request.
    pub queue: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self { store: None, random_rate: 0.01, flagged: true, uncertain_margin: 0.1, retention_days: 30.0, queue: 10_000 }
    }
}

/// Everything `warden serve` is configured with.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    pub limits: Limits,
    pub batch: BatchConfig,
    pub sampling: SamplingConfig,
    pub monitor: MonitorConfig,
    /// Named policies: a directory of `*.toml` policy files or one file. The model's own
    /// policy is always available as `default` unless a file defines that name.
    pub policies: Option<PathBuf>,
    /// API keys file (TOML, see [`crate::auth`]).
    pub api_keys: Option<PathBuf>,
}

impl Limits {
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }
}
