//! Open-loop load generator for `warden serve` (used by `bench/serve.sh`).
//!
//! Closed-loop tools (a fixed number of clients each waiting for its reply) hide overload:
//! when the server slows down they simply send less. This one first measures the saturating
//! rate closed-loop, then sends at fixed multiples of it *open-loop*: requests leave on a
//! schedule whatever the server does, and latency is measured from the scheduled send time,
//! so queueing delay is counted (no coordinated omission).
//!
//! ```text
//! cargo run --release -p warden-serve --example loadgen -- \
//!     --url http://127.0.0.1:8080/v1/moderations --texts texts.txt --batch 1 --pid SERVER_PID
//! ```
//! Traffic goes only to the URL given, which must be on this machine (loopback).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>;

struct Args {
    url: String,
    texts: Vec<String>,
    batch: usize,
    secs: f64,
    concurrency: usize,
    multiples: Vec<f64>,
    pid: Option<u32>,
    max_in_flight: usize,
}

fn parse() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080/v1/moderations".into(),
        texts: Vec::new(),
        batch: 1,
        secs: 5.0,
        concurrency: 32,
        multiples: vec![0.5, 1.0, 2.0, 4.0],
        pid: None,
        max_in_flight: 1024,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--url" => a.url = v,
            "--texts" => a.texts = std::fs::read_to_string(&v).expect("reading --texts").lines().filter(|l| !l.trim().is_empty()).map(String::from).collect(),
            "--batch" => a.batch = v.parse().expect("--batch"),
            "--secs" => a.secs = v.parse().expect("--secs"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency"),
            "--multiples" => a.multiples = v.split(',').map(|x| x.parse().expect("--multiples")).collect(),
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let host = a.url.split("//").nth(1).unwrap_or("").split(['/', ':']).next().unwrap_or("");
    assert!(host == "127.0.0.1" || host == "localhost" || host == "[::1]", "loadgen only targets loopback, not {host}");
    if a.texts.is_empty() {
        a.texts = vec!["you are a wonderful person".into(), "I will find you and hurt you".into(), "the weather is nice today".into()];
    }
    a
}

fn rss_kb(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Default)]
struct Tally {
    lat_ms: Vec<f64>,
    status: BTreeMap<u16, usize>,
    errors: usize,
    /// Requests not sent because the client already had `max_in_flight` outstanding.
    skipped: usize,
}

fn body_for(args: &Args, k: usize) -> bytes::Bytes {
    let texts: Vec<&str> = (0..args.batch).map(|j| args.texts[(k * args.batch + j) % args.texts.len()].as_str()).collect();
    let v = if args.batch == 1 { serde_json::json!({ "input": texts[0] }) } else { serde_json::json!({ "input": texts }) };
    bytes::Bytes::from(v.to_string())
}

async fn one(client: &HttpClient, url: &str, body: bytes::Bytes) -> Result<u16, String> {
    let req = hyper::Request::post(url).header("content-type", "application/json").body(Full::new(body)).map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(status)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse());
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(4096).build_http();

    // Warm-up, then the closed-loop saturating rate.
    for k in 0..50 {
        let _ = one(&client, &args.url, body_for(&args, k)).await;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let dur = Duration::from_secs_f64(args.secs);
    let mut tasks = Vec::new();
    for c in 0..args.concurrency {
        let (client, args, done) = (client.clone(), args.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = c;
            while t0.elapsed() < dur {
                if let Ok(200) = one(&client, &args.url, body_for(&args, k)).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                k += args.concurrency;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let saturating = done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    println!(
        "batch={} saturating rate (closed loop, {} clients): {:.0} req/s = {:.0} texts/s",
        args.batch,
        args.concurrency,
        saturating,
        saturating * args.batch as f64
    );
    println!("| load | scheduled req/s | sent req/s | achieved 200/s | p50 ms | p99 ms | max ms | 200 | 429 | other status | conn. errors | not sent (client cap) | server RSS MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &mult in &args.multiples {
        let rate = saturating * mult;
        let n = (rate * args.secs).round() as usize;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak_rss = Arc::new(AtomicUsize::new(0));
        let sampler = {
            let (peak, pid) = (peak_rss.clone(), args.pid);
            tokio::spawn(async move {
                loop {
                    if let Some(kb) = rss_kb(pid) {
                        peak.fetch_max(kb as usize, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for k in 0..n {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
                // The client's own cap: counted apart, so the table shows what was really offered.
                tally.lock().unwrap().skipped += 1;
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (client, args, tally, in_flight) = (client.clone(), args.clone(), tally.clone(), in_flight.clone());
            handles.push(tokio::spawn(async move {
                let r = one(&client, &args.url, body_for(&args, k)).await;
                let ms = due.elapsed().as_secs_f64() * 1e3;
                let mut t = tally.lock().unwrap();
                match r {
                    Ok(s) => {
                        *t.status.entry(s).or_default() += 1;
                        if s == 200 {
                            t.lat_ms.push(ms);
                        }
                    }
                    Err(_) => t.errors += 1,
                }
                in_flight.fetch_sub(1, Ordering::Relaxed);
            }));
        }
        for h in handles {
            let _ = h.await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        sampler.abort();
        let mut t = std::mem::take(&mut *tally.lock().unwrap());
        t.lat_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let ok = t.status.get(&200).copied().unwrap_or(0);
        let limited = t.status.get(&429).copied().unwrap_or(0);
        let other: usize = t.status.iter().filter(|(s, _)| **s != 200 && **s != 429).map(|(_, c)| c).sum();
        let rss = peak_rss.load(Ordering::Relaxed);
        let sent = n - t.skipped;
        println!(
            "| {mult}x | {rate:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {ok} | {limited} | {other} | {} | {} | {} |",
            sent as f64 / elapsed,
            ok as f64 / elapsed,
            pct(&t.lat_ms, 0.5),
            pct(&t.lat_ms, 0.99),
            t.lat_ms.last().copied().unwrap_or(f64::NAN),
            t.errors,
            t.skipped,
            if rss > 0 { format!("{:.0}", rss as f64 / 1024.0) } else { "-".into() },
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
