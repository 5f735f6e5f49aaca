//! Warden's moderation service.
//!
//! `POST /v1/moderations` speaks OpenAI's moderation API, so existing clients (the official
//! `openai` package included) work by changing only their base URL. Around it:
//!
//! - **Policies** ([`policies`]): named per-category threshold sets, chosen per request and
//!   reloaded without a restart (`POST /admin/reload` or SIGHUP).
//! - **Throughput and safety** ([`engine`]): inference on worker threads behind a queue
//!   bounded in texts, dynamic batching under a byte budget, 429 + `Retry-After` beyond
//!   capacity, per-request limits with OpenAI-style 4xx bodies ([`error`]), header and body
//!   timeouts against slow clients, a connection cap, and a graceful shutdown that answers
//!   everything already accepted.
//! - **Operations**: `/healthz`, `/readyz`, Prometheus `/metrics` ([`metrics`]), JSON logs
//!   with a request id, optional Bearer keys ([`auth`]).
//! - **Monitoring**: rolling flag rates and a spike detector per policy and category
//!   (`GET /v1/monitor`, via `warden-monitor`).
//! - **Consented sampling** ([`store`]): a PII-masked sample of traffic in SQLite for the
//!   labeling loop, with opt-out and retention.
//!
//! The router is built by [`app`] from an [`AppState`], so tests drive it without a socket;
//! [`serve`] runs it on a listener.

pub mod api;
pub mod auth;
pub mod config;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod policies;
pub mod store;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use warden_core::{Classifier, Taxonomy};
use warden_monitor::Monitor;
use warden_policy::{PolicyError, ThresholdPolicy};

pub use api::app;
pub use config::{BatchConfig, Limits, SamplingConfig, ServeConfig};
pub use error::ApiError;

use auth::ApiKeys;
use engine::Engine;
use metrics::Metrics;
use policies::PolicyRegistry;
use store::SampleStore;

/// The queue bound for `secs` seconds of `model`'s work: its rate on a warm-up batch of 32
/// texts of about 200 characters (a long tweet or a short comment) times `secs`, at least 64
/// texts (or `max` if smaller), at most `max`. Returns the bound and the measured texts/s.
/// A model that fails the warm-up keeps `max`.
pub fn size_queue(model: &dyn Classifier, secs: f64, max: usize) -> (usize, f64) {
    let texts: Vec<String> = (0..32)
        .map(|i| format!("warm-up text number {i}, to measure how fast the model scores. ").repeat(3))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    if model.predict_batch(&refs[..4]).is_err() {
        return (max, f64::NAN);
    }
    let t = std::time::Instant::now();
    if model.predict_batch(&refs).is_err() {
        return (max, f64::NAN);
    }
    let rate = refs.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let texts = (rate * secs).min(max as f64) as usize;
    (texts.max(64.min(max)), rate)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Keys(#[from] auth::KeysError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("invalid monitor settings: {0}")]
    Monitor(String),
    #[error("a model is already loaded")]
    AlreadyLoaded,
}

/// What exists once the model is loaded.
pub(crate) struct Ready {
    pub engine: Arc<Engine>,
    pub taxonomy: Taxonomy,
    pub model_name: String,
    pub model_policy: ThresholdPolicy,
}

pub(crate) struct Inner {
    pub cfg: ServeConfig,
    pub metrics: Arc<Metrics>,
    pub keys: ApiKeys,
    pub ready: OnceLock<Ready>,
    pub policies: RwLock<Option<Arc<PolicyRegistry>>>,
    pub monitor: Mutex<Option<Monitor>>,
    pub store: Mutex<Option<SampleStore>>,
    pub counter: AtomicU64,
    pub seed: u64,
    /// Permits for moderation requests in flight ([`Limits::max_in_flight`]).
    pub in_flight: tokio::sync::Semaphore,
}

/// The service's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl AppState {
    /// Validates the configuration, loads API keys and opens the sample store. The model is
    /// attached later with [`AppState::set_model`], so the server can listen (and answer
    /// `/healthz`) while a large model loads; `/readyz` says when it is ready.
    pub fn new(cfg: ServeConfig) -> Result<Self, ServeError> {
        cfg.monitor.validate().map_err(|e| ServeError::Monitor(e.to_string()))?;
        let metrics = Arc::new(Metrics::new());
        let keys = ApiKeys::load(cfg.api_keys.as_deref())?;
        let store = match &cfg.sampling.store {
            Some(p) => Some(SampleStore::start(p, cfg.sampling.retention_days, cfg.sampling.queue, metrics.clone())?),
            None => None,
        };
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
            ^ (std::process::id() as u64) << 32;
        let in_flight = tokio::sync::Semaphore::new(cfg.limits.max_in_flight.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                in_flight,
                cfg,
                metrics,
                keys,
                ready: OnceLock::new(),
                policies: RwLock::new(None),
                monitor: Mutex::new(None),
                store: Mutex::new(store),
                counter: AtomicU64::new(0),
                seed,
            }),
        })
    }

    /// Attaches the model and its own (default) policy, loads the named policies and starts
    /// the inference workers.
    pub fn set_model(&self, model: Arc<dyn Classifier>, policy: ThresholdPolicy) -> Result<(), ServeError> {
        if self.inner.ready.get().is_some() {
            return Err(ServeError::AlreadyLoaded);
        }
        let taxonomy = model.taxonomy().clone();
        let registry = PolicyRegistry::load(&policy, self.inner.cfg.policies.as_deref(), &taxonomy)?;
        let monitor = Monitor::new(taxonomy.names().map(String::from).collect(), self.inner.cfg.monitor.clone())
            .map_err(|e| ServeError::Monitor(e.to_string()))?;
        let model_name = model.name().to_string();
        let mut batch = self.inner.cfg.batch.clone();
        if batch.queue_seconds > 0.0 {
            let (texts, rate) = size_queue(model.as_ref(), batch.queue_seconds, batch.queue_texts);
            tracing::info!(queue_texts = texts, warm_up_texts_per_s = rate.round(), "inference queue sized");
            batch.queue_texts = texts;
        }
        let engine = Engine::start(model, batch, self.inner.metrics.clone());
        self.inner.metrics.model_info.with_label_values(&[&model_name]).set(1);
        *self.inner.policies.write().unwrap() = Some(Arc::new(registry));
        *self.inner.monitor.lock().unwrap() = Some(monitor);
        self.inner
            .ready
            .set(Ready { engine, taxonomy, model_name, model_policy: policy })
            .map_err(|_| ServeError::AlreadyLoaded)
    }

    /// Texts the inference queue holds (after [`size_queue`]), once a model is loaded.
    pub fn queue_capacity(&self) -> Option<usize> {
        self.inner.ready.get().map(|r| r.engine.capacity())
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.get().is_some()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Re-reads the policy files. On any error the current policies stay in force.
    pub fn reload_policies(&self) -> Result<usize, PolicyError> {
        let Some(ready) = self.inner.ready.get() else { return Ok(0) };
        let result = PolicyRegistry::load(&ready.model_policy, self.inner.cfg.policies.as_deref(), &ready.taxonomy);
        match result {
            Ok(reg) => {
                let n = reg.len();
                *self.inner.policies.write().unwrap() = Some(Arc::new(reg));
                self.inner.metrics.reloads.with_label_values(&["ok"]).inc();
                tracing::info!(policies = n, "policies reloaded");
                Ok(n)
            }
            Err(e) => {
                self.inner.metrics.reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "policy reload failed; keeping the current policies");
                Err(e)
            }
        }
    }

    /// Waits for everything stored so far to be written (tests and shutdown).
    pub fn flush_samples(&self) {
        if let Some(s) = self.inner.store.lock().unwrap().as_ref() {
            s.flush();
        }
    }

    /// Drains the inference queue and closes the sample store.
    pub fn shutdown(&self) {
        if let Some(r) = self.inner.ready.get() {
            r.engine.shutdown();
        }
        if let Some(mut s) = self.inner.store.lock().unwrap().take() {
            s.close();
        }
    }

    /// Feeds one request's decisions to the spike monitor and reports any alert events.
    pub(crate) fn observe_flags(&self, policy: &str, flags: &[Vec<bool>]) {
        let events = {
            let mut mon = self.inner.monitor.lock().unwrap();
            let Some(mon) = mon.as_mut() else { return };
            mon.observe_many(api::now_ms(), policy, flags);
            self.inner.metrics.alerts_open.set(mon.open_alerts() as i64);
            mon.drain_events()
        };
        self.report_alerts(events);
    }

    /// Closes monitor windows that ended without traffic (called by a timer and before
    /// snapshots), so an alert opens or closes on time even when traffic stops.
    pub fn tick_monitor(&self) {
        let events = {
            let mut mon = self.inner.monitor.lock().unwrap();
            let Some(mon) = mon.as_mut() else { return };
            mon.tick(api::now_ms());
            self.inner.metrics.alerts_open.set(mon.open_alerts() as i64);
            mon.drain_events()
        };
        self.report_alerts(events);
    }

    fn report_alerts(&self, events: Vec<warden_monitor::AlertEvent>) {
        let m = &self.inner.metrics;
        for ev in events {
            match ev {
                warden_monitor::AlertEvent::Opened(a) => {
                    m.alerts.with_label_values(&[&a.policy, &a.category]).inc();
                    tracing::warn!(alert_id = a.id, policy = %a.policy, category = %a.category, rate = a.rate,
                        baseline = a.baseline_rate, z = a.z, texts = a.texts, "flag-rate spike alert opened");
                }
                warden_monitor::AlertEvent::Closed(a) => {
                    tracing::info!(alert_id = a.id, policy = %a.policy, category = %a.category, peak_rate = a.peak_rate,
                        "flag-rate spike alert closed");
                }
            }
        }
    }

    pub(crate) fn next_id(&self) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let a = splitmix(self.inner.seed ^ n);
        let b = splitmix(a ^ n.rotate_left(17));
        format!("{:016x}{:08x}", a, b as u32)
    }

    /// A uniform draw in [0, 1) for random sampling.
    pub(crate) fn uniform(&self) -> f64 {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        (splitmix(self.inner.seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish (up to `drain`), drains the inference queue and closes the
/// sample store.
///
/// Connections go through hyper directly rather than `axum::serve` so that a header read
/// timeout and a connection cap protect against slow-loris clients.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send, drain: Duration) -> std::io::Result<()> {
    let router = app(state.clone());
    let limits = state.inner.cfg.limits.clone();
    let conns = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let ticker = {
        let st = state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                st.tick_monitor();
            }
        })
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = conns.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(limits.header_timeout_secs.max(1))).keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let fut = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = fut.await;
            drop(permit);
        });
    }
    drop(listener);
    ticker.abort();
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => tracing::warn!(secs = drain.as_secs(), "in-flight requests did not finish in time"),
    }
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.shutdown()).await.ok();
    tracing::info!("stopped");
    Ok(())
}
