//! `warden serve`: the moderation service (see the `warden-serve` crate).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use warden_serve::{AppState, ServeConfig};

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Text,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Model directory (default: $WARDEN_MODEL, else the embedded default).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The `default` policy (default: the model's own tuned policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Named policies: a directory of policy TOML files, or one file (the repository's
    /// `policies/` has `strict` and `lenient` examples). Reloaded on SIGHUP and
    /// `POST /admin/reload`.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// API keys file (TOML). Also WARDEN_API_KEYS / WARDEN_ADMIN_KEYS (comma-separated).
    #[arg(long)]
    api_keys: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = warden_serve::Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most inputs per request.
    #[arg(long, default_value_t = warden_serve::Limits::default().max_inputs)]
    max_inputs: usize,
    /// Most characters per input.
    #[arg(long, default_value_t = warden_serve::Limits::default().max_input_chars)]
    max_input_chars: usize,
    /// Moderation requests handled at once; beyond it requests get 429 before their body is read.
    #[arg(long, default_value_t = warden_serve::Limits::default().max_in_flight)]
    max_in_flight: usize,
    /// Texts that may wait for inference; beyond it requests get 429 + Retry-After.
    #[arg(long, default_value_t = warden_serve::BatchConfig::default().queue_texts)]
    queue_texts: usize,
    /// Also cap the queue at this many seconds of the model's work, measured at start-up on
    /// 200-character texts (at least 64 texts; 0: no time cap). Keeps a slow model (the cascade)
    /// answering 429 under overload instead of queueing for tens of seconds.
    #[arg(long, default_value_t = 1.0)]
    queue_seconds: f64,
    /// Most texts per model call.
    #[arg(long, default_value_t = warden_serve::BatchConfig::default().max_batch_texts)]
    max_batch_texts: usize,
    /// Most bytes of text per model call.
    #[arg(long, default_value_t = warden_serve::BatchConfig::default().max_batch_bytes)]
    max_batch_bytes: usize,
    /// Inference threads.
    #[arg(long, default_value_t = warden_serve::BatchConfig::default().workers)]
    workers: usize,
    /// Runtime threads for HTTP handling.
    #[arg(long, default_value_t = 2)]
    http_threads: usize,
    /// Store a consented, PII-masked sample of traffic in this SQLite file (off by default).
    #[arg(long)]
    sample_store: Option<PathBuf>,
    /// Fraction of unflagged, certain texts to sample.
    #[arg(long, default_value_t = warden_serve::SamplingConfig::default().random_rate)]
    sample_rate: f64,
    /// Also sample texts with a score within this margin of its threshold.
    #[arg(long, default_value_t = warden_serve::SamplingConfig::default().uncertain_margin)]
    sample_uncertain_margin: f32,
    /// Delete stored samples after this many days.
    #[arg(long, default_value_t = warden_serve::SamplingConfig::default().retention_days)]
    retention_days: f64,
    /// Spike monitor: window length in seconds.
    #[arg(long, default_value_t = warden_monitor::MonitorConfig::default().window_secs)]
    monitor_window_secs: u64,
    /// Spike monitor: z-score that opens an alert (lower = more sensitive).
    #[arg(long, default_value_t = warden_monitor::MonitorConfig::default().z_threshold)]
    monitor_z: f64,
    /// Spike monitor: smallest rise in flag rate that can alert.
    #[arg(long, default_value_t = warden_monitor::MonitorConfig::default().min_rate_increase)]
    monitor_min_increase: f64,
    /// Spike monitor: fewest texts in a window for it to be judged.
    #[arg(long, default_value_t = warden_monitor::MonitorConfig::default().min_texts)]
    monitor_min_texts: u64,
    /// Seconds to let in-flight requests finish on shutdown.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

pub fn run(a: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| "info".into());
    match a.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).with_writer(std::io::stderr).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init(),
    }
    let mut cfg = ServeConfig { policies: a.policies.clone(), api_keys: a.api_keys.clone(), ..Default::default() };
    cfg.limits.max_body_bytes = a.max_body_bytes;
    cfg.limits.max_inputs = a.max_inputs;
    cfg.limits.max_input_chars = a.max_input_chars;
    cfg.limits.max_in_flight = a.max_in_flight;
    cfg.batch.queue_texts = a.queue_texts;
    anyhow::ensure!(a.queue_seconds >= 0.0 && a.queue_seconds.is_finite(), "--queue-seconds must be a number >= 0");
    cfg.batch.queue_seconds = a.queue_seconds;
    cfg.batch.max_batch_texts = a.max_batch_texts;
    cfg.batch.max_batch_bytes = a.max_batch_bytes;
    cfg.batch.workers = a.workers;
    cfg.sampling.store = a.sample_store.clone();
    cfg.sampling.random_rate = a.sample_rate;
    cfg.sampling.uncertain_margin = a.sample_uncertain_margin;
    cfg.sampling.retention_days = a.retention_days;
    cfg.monitor.window_secs = a.monitor_window_secs;
    cfg.monitor.z_threshold = a.monitor_z;
    cfg.monitor.min_rate_increase = a.monitor_min_increase;
    cfg.monitor.min_texts = a.monitor_min_texts;
    anyhow::ensure!((0.0..=1.0).contains(&a.sample_rate), "--sample-rate must be in [0, 1]");
    let state = AppState::new(cfg).context("configuring the server")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.http_threads.max(1))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.addr).await.with_context(|| format!("binding {}", a.addr))?;
        tracing::info!(addr = %listener.local_addr()?, "listening; loading the model");
        // Load the model while already answering /healthz (and 503 on /readyz).
        let (model, policy) = (a.model.clone(), a.policy.clone());
        let st = state.clone();
        let loader = tokio::task::spawn_blocking(move || -> Result<()> {
            let loaded = crate::models::load(model.as_deref(), policy.as_deref())?;
            let name = loaded.model.name().to_string();
            st.set_model(Arc::from(loaded.model), loaded.policy).context("starting inference")?;
            tracing::info!(model = %name, origin = %loaded.origin, "ready");
            Ok(())
        });
        let st = state.clone();
        tokio::spawn(async move {
            if let Ok(Err(e)) = loader.await {
                tracing::error!(error = %format!("{e:#}"), "could not load the model; exiting");
                st.shutdown();
                std::process::exit(1);
            }
        });
        #[cfg(unix)]
        {
            let st = state.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
                while hup.recv().await.is_some() {
                    let s = st.clone();
                    let _ = tokio::task::spawn_blocking(move || s.reload_policies()).await;
                }
            });
        }
        warden_serve::serve(listener, state, shutdown_signal(), Duration::from_secs(a.drain_secs)).await.context("serving")
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}
