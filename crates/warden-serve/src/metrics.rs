//! Prometheus metrics, one registry per server (so tests can run servers side by side).

use prometheus::{Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Requests by route and status code.
    pub requests: IntCounterVec,
    /// End-to-end request latency by route.
    pub latency: HistogramVec,
    /// Time a batch spent in the model.
    pub inference_seconds: Histogram,
    /// Texts per model call.
    pub batch_texts: Histogram,
    /// Texts waiting for the worker.
    pub queue_texts: IntGauge,
    /// Requests refused before inference, by stable error code.
    pub rejected: IntCounterVec,
    /// Texts moderated, by policy.
    pub texts: IntCounterVec,
    /// Flags by policy and category.
    pub flags: IntCounterVec,
    /// Spike alerts opened, by policy and category.
    pub alerts: IntCounterVec,
    /// Spike alerts open now.
    pub alerts_open: IntGauge,
    /// Sampled texts written to the store, by reason.
    pub samples_stored: IntCounterVec,
    /// Samples dropped because the writer fell behind.
    pub samples_dropped: IntCounter,
    /// Rows deleted by the retention sweep.
    pub samples_expired: IntCounter,
    /// Policy reloads by outcome.
    pub reloads: IntCounterVec,
    /// 1 for the loaded model.
    pub model_info: IntGaugeVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let lat_buckets = vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
        let batch_buckets = vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
        Self {
            requests: reg(&r, IntCounterVec::new(Opts::new("warden_requests_total", "HTTP requests by route and status"), &["route", "status"]).unwrap()),
            latency: reg(
                &r,
                HistogramVec::new(HistogramOpts::new("warden_request_duration_seconds", "Request latency by route").buckets(lat_buckets.clone()), &["route"]).unwrap(),
            ),
            inference_seconds: reg(&r, Histogram::with_opts(HistogramOpts::new("warden_inference_seconds", "Model time per batch").buckets(lat_buckets)).unwrap()),
            batch_texts: reg(&r, Histogram::with_opts(HistogramOpts::new("warden_batch_texts", "Texts per model call").buckets(batch_buckets)).unwrap()),
            queue_texts: reg(&r, IntGauge::new("warden_queue_texts", "Texts waiting for inference").unwrap()),
            rejected: reg(&r, IntCounterVec::new(Opts::new("warden_rejected_total", "Requests refused, by error code"), &["code"]).unwrap()),
            texts: reg(&r, IntCounterVec::new(Opts::new("warden_texts_total", "Texts moderated, by policy"), &["policy"]).unwrap()),
            flags: reg(&r, IntCounterVec::new(Opts::new("warden_flags_total", "Texts flagged, by policy and category"), &["policy", "category"]).unwrap()),
            alerts: reg(&r, IntCounterVec::new(Opts::new("warden_alerts_total", "Flag-rate spike alerts opened"), &["policy", "category"]).unwrap()),
            alerts_open: reg(&r, IntGauge::new("warden_alerts_open", "Flag-rate spike alerts open now").unwrap()),
            samples_stored: reg(&r, IntCounterVec::new(Opts::new("warden_samples_stored_total", "Texts sampled into the store, by reason"), &["reason"]).unwrap()),
            samples_dropped: reg(&r, IntCounter::new("warden_samples_dropped_total", "Samples dropped because the store writer fell behind").unwrap()),
            samples_expired: reg(&r, IntCounter::new("warden_samples_expired_total", "Stored samples deleted by retention").unwrap()),
            reloads: reg(&r, IntCounterVec::new(Opts::new("warden_policy_reloads_total", "Policy reloads by outcome"), &["outcome"]).unwrap()),
            model_info: reg(&r, IntGaugeVec::new(Opts::new("warden_model_info", "The loaded model"), &["model"]).unwrap()),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
