//! In-process, single-core scoring throughput of the fast tier.
//!
//! Driven by `bench/run.sh`, which prepares the inputs; run by hand with
//!
//! ```text
//! WARDEN_BENCH_MODEL=models/default \
//! WARDEN_BENCH_INPUTS=kb=target/bench/data/kb.jsonl,short=target/bench/data/short.jsonl \
//! cargo bench -p warden-fast --bench throughput
//! ```
//!
//! For each input set (JSONL, one `{"text": ...}` a line) it scores every text with
//! [`FastModel::score_one`] on the calling thread, so exactly one core is used:
//!
//! - `warm`: one untimed warm-up pass, then `WARDEN_BENCH_RUNS` (default 3) timed passes on
//!   the same model instance. The per-thread word cache is warm: this is the steady state of
//!   a long-running scorer.
//! - `cold`: each timed pass uses a freshly loaded model instance (load excluded), so the
//!   word cache starts empty, like a fresh `warden score` process.
//!
//! - `warm-ngrams`: for a model with a static-embedding probe, `warm` on its n-gram heads
//!   alone, so the probe's cost is measured in the same run. The probe's table is read from
//!   `WARDEN_ENCODER` (the encoder directory; `bench/run.sh` passes the default one).
//!
//! Prints one line per set and mode:
//! `RESULT <mode> <set> <docs> <bytes> <best_s> <median_s> <peak_rss_kb>`
//! followed by a human-readable table. Timings are printed, never asserted.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use warden_fast::FastModel;

fn main() {
    let (Some(model_dir), Some(inputs)) =
        (std::env::var_os("WARDEN_BENCH_MODEL"), std::env::var("WARDEN_BENCH_INPUTS").ok())
    else {
        eprintln!(
            "throughput bench skipped: set WARDEN_BENCH_MODEL=<model dir> and \
             WARDEN_BENCH_INPUTS=name=file.jsonl,... (bench/run.sh does this)"
        );
        return;
    };
    let runs: usize = std::env::var("WARDEN_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let model_dir = Path::new(&model_dir);
    let table = FastModel::load(model_dir).ok().filter(FastModel::needs_static_table).map(|_| {
        let enc = std::env::var_os("WARDEN_ENCODER")
            .expect("the model has a static-embedding probe: set WARDEN_ENCODER to its encoder directory");
        std::sync::Arc::new(
            warden_fast::static_probe::StaticTable::load(Path::new(&enc)).unwrap_or_else(|e| panic!("loading the table: {e}")),
        )
    });
    let load = || {
        let mut m = FastModel::load(model_dir).unwrap_or_else(|e| panic!("loading {}: {e}", model_dir.display()));
        if let Some(t) = &table {
            m.attach_static_table(t.clone()).unwrap_or_else(|e| panic!("attaching the table: {e}"));
        }
        m
    };

    let mut rows = Vec::new();
    for spec in inputs.split(',').filter(|s| !s.is_empty()) {
        let (name, path) = spec.split_once('=').expect("WARDEN_BENCH_INPUTS entries are name=path");
        let texts = read_texts(Path::new(path));
        let bytes: usize = texts.iter().map(String::len).sum();

        // Warm: same instance throughout, warm-up pass untimed.
        let model = load();
        score_all(&model, &texts);
        let warm: Vec<f64> = (0..runs).map(|_| timed(|| score_all(&model, &texts))).collect();
        let ngrams: Option<Vec<f64>> = model.static_probe().map(|_| {
            let plain = model.without_static_probe();
            score_all(&plain, &texts);
            (0..runs).map(|_| timed(|| score_all(&plain, &texts))).collect()
        });
        drop(model);

        // Cold: a fresh instance (fresh word cache) for every timed pass.
        let cold: Vec<f64> = (0..runs)
            .map(|_| {
                let m = load();
                timed(|| score_all(&m, &texts))
            })
            .collect();

        for (mode, t) in [("warm", Some(warm)), ("cold", Some(cold)), ("warm-ngrams", ngrams)] {
            let Some(t) = t else { continue };
            let (best, median) = best_median(t);
            println!("RESULT {mode} {name} {} {bytes} {best:.6} {median:.6} {}", texts.len(), peak_rss_kb());
            rows.push((mode, name.to_string(), texts.len(), bytes, best, median));
        }
    }

    println!();
    println!("| set | cache | docs | docs/s (best of {runs}) | docs/s (median) | MB/s (best) |");
    println!("|---|---|---:|---:|---:|---:|");
    for (mode, name, docs, bytes, best, median) in rows {
        println!(
            "| {name} | {mode} | {docs} | {:.0} | {:.0} | {:.2} |",
            docs as f64 / best,
            docs as f64 / median,
            bytes as f64 / 1e6 / best
        );
    }
}

fn score_all(model: &FastModel, texts: &[String]) -> f32 {
    let mut acc = 0.0f32;
    for t in texts {
        let s = model.score_one(black_box(t));
        acc += s.first().copied().unwrap_or(0.0);
    }
    black_box(acc)
}

fn timed(f: impl FnOnce() -> f32) -> f64 {
    let t0 = Instant::now();
    black_box(f());
    t0.elapsed().as_secs_f64()
}

fn best_median(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(|a, b| a.total_cmp(b));
    let n = t.len();
    let median = if n % 2 == 1 { t[n / 2] } else { (t[n / 2 - 1] + t[n / 2]) / 2.0 };
    (t[0], median)
}

fn read_texts(path: &Path) -> Vec<String> {
    let data = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    data.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad JSON line: {e}", path.display()));
            v.get("text")
                .and_then(|t| t.as_str())
                .unwrap_or_else(|| panic!("{}: line without a string \"text\"", path.display()))
                .to_owned()
        })
        .collect()
}

/// Peak resident set size of this process (VmHWM), in KiB; 0 where /proc is unavailable.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
