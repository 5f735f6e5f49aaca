//! Inference on worker threads behind a bounded queue, with dynamic batching.
//!
//! Why: model calls are CPU-bound and synchronous, so they must not run on the async
//! runtime's threads, and batching many small requests into one call is where the
//! throughput comes from. Admission is counted in *texts*, not requests, so one request of
//! 256 texts weighs what it costs; a request that would push the queue past its capacity
//! is refused at once (HTTP 429 with `Retry-After`) instead of queuing without bound.
//!
//! A worker takes every queued job that fits its batch budget (texts and bytes, the bytes
//! standing in for tokens), so batches grow with load and shrink to one request when idle:
//! no timer adds latency at low load. A request is never split across batches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;
use warden_core::{Classifier, Scores};

use crate::config::BatchConfig;
use crate::metrics::Metrics;

type Reply = oneshot::Sender<Result<Vec<Scores>, String>>;

struct Job {
    texts: Vec<String>,
    bytes: usize,
    reply: Reply,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    queued_texts: AtomicUsize,
    stopping: AtomicBool,
    /// Texts per second of recent batches (f64 bits), for `Retry-After`.
    rate: AtomicU64,
}

/// Why a submission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full; retry after this many seconds.
    Full { queued: usize, retry_after: u64 },
    ShuttingDown,
}

pub struct Engine {
    shared: Arc<Shared>,
    model: Arc<dyn Classifier>,
    cfg: BatchConfig,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    pub fn start(model: Arc<dyn Classifier>, cfg: BatchConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            queued_texts: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            rate: AtomicU64::new(0f64.to_bits()),
        });
        let workers = (0..cfg.workers.max(1))
            .map(|i| {
                let (shared, model, cfg, metrics) = (shared.clone(), model.clone(), cfg.clone(), metrics.clone());
                std::thread::Builder::new()
                    .name(format!("warden-infer-{i}"))
                    .spawn(move || worker(shared, model, cfg, metrics))
                    .expect("spawning an inference thread")
            })
            .collect();
        Arc::new(Self { shared, model, cfg, workers: Mutex::new(workers) })
    }

    pub fn model(&self) -> &Arc<dyn Classifier> {
        &self.model
    }

    pub fn queued_texts(&self) -> usize {
        self.shared.queued_texts.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.cfg.queue_texts
    }

    /// Queues `texts` for scoring, or refuses at once when there is no room.
    pub fn submit(&self, texts: Vec<String>) -> Result<oneshot::Receiver<Result<Vec<Scores>, String>>, Refused> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Refused::ShuttingDown);
        }
        let n = texts.len();
        let prev = self.shared.queued_texts.fetch_add(n, Ordering::AcqRel);
        // A request larger than the whole queue is still admitted when the queue is empty,
        // so a legal request is never refused forever.
        if prev > 0 && prev + n > self.cfg.queue_texts {
            self.shared.queued_texts.fetch_sub(n, Ordering::AcqRel);
            let rate = f64::from_bits(self.shared.rate.load(Ordering::Relaxed));
            let retry_after = if rate > 0.0 { ((prev as f64 / rate).ceil() as u64).clamp(1, 60) } else { 1 };
            return Err(Refused::Full { queued: prev, retry_after });
        }
        let (tx, rx) = oneshot::channel();
        let bytes = texts.iter().map(String::len).sum();
        self.shared.queue.lock().unwrap().push_back(Job { texts, bytes, reply: tx });
        self.shared.ready.notify_one();
        Ok(rx)
    }

    /// Stops admitting work; workers finish everything already queued, then exit.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.ready.notify_all();
        let handles: Vec<_> = std::mem::take(&mut *self.workers.lock().unwrap());
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.ready.notify_all();
    }
}

fn worker(shared: Arc<Shared>, model: Arc<dyn Classifier>, cfg: BatchConfig, metrics: Arc<Metrics>) {
    loop {
        let jobs = {
            let mut q = shared.queue.lock().unwrap();
            while q.is_empty() {
                if shared.stopping.load(Ordering::Acquire) {
                    return;
                }
                q = shared.ready.wait(q).unwrap();
            }
            let mut jobs = vec![q.pop_front().unwrap()];
            let (mut texts, mut bytes) = (jobs[0].texts.len(), jobs[0].bytes);
            while let Some(next) = q.front() {
                if texts + next.texts.len() > cfg.max_batch_texts || bytes + next.bytes > cfg.max_batch_bytes {
                    break;
                }
                texts += next.texts.len();
                bytes += next.bytes;
                jobs.push(q.pop_front().unwrap());
            }
            if !q.is_empty() {
                // Let another worker start on the rest while this one computes.
                shared.ready.notify_one();
            }
            jobs
        };
        let n: usize = jobs.iter().map(|j| j.texts.len()).sum();
        metrics.queue_texts.set(shared.queued_texts.load(Ordering::Relaxed).saturating_sub(n) as i64);
        let refs: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
        let t0 = Instant::now();
        // A panicking model must not take the worker (and so the service) down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.predict_batch(&refs)));
        let secs = t0.elapsed().as_secs_f64();
        metrics.inference_seconds.observe(secs);
        metrics.batch_texts.observe(n as f64);
        if secs > 0.0 {
            let old = f64::from_bits(shared.rate.load(Ordering::Relaxed));
            let now = n as f64 / secs;
            let new = if old == 0.0 { now } else { 0.8 * old + 0.2 * now };
            shared.rate.store(new.to_bits(), Ordering::Relaxed);
        }
        drop(refs);
        let result = match result {
            Ok(Ok(scores)) if scores.len() == n => Ok(scores),
            Ok(Ok(scores)) => Err(format!("model returned {} score vectors for {n} texts", scores.len())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the model panicked on this batch".to_string()),
        };
        match result {
            Ok(scores) => {
                let mut it = scores.into_iter();
                for job in jobs {
                    let k = job.texts.len();
                    let _ = job.reply.send(Ok(it.by_ref().take(k).collect()));
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
        shared.queued_texts.fetch_sub(n, Ordering::AcqRel);
    }
}
