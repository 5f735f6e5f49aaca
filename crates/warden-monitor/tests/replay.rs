//! Replays three hours of synthetic moderation traffic through a [`Monitor`] at the default
//! settings: with an injected `hate` spike it must alert quickly and only for `hate` (and
//! `any`); without it, it must stay silent.
//!
//! Run with `--nocapture` to see the per-seed detection delays and alert counts.

use proptest::prelude::*;
use warden_monitor::{Alert, AlertEvent, Detector, Monitor, MonitorConfig, ANY_SERIES};

/// splitmix64: tiny, deterministic, good enough for simulated traffic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Warden's default taxonomy with per-category base flag rates.
const CATEGORIES: [(&str, f64); 8] = [
    ("sexual", 0.04),
    ("hate", 0.03),
    ("violence", 0.02),
    ("harassment", 0.01),
    ("self-harm", 0.005),
    ("sexual/minors", 0.005),
    ("hate/threatening", 0.005),
    ("violence/graphic", 0.008),
];
const HATE: usize = 1;
const POLICY: &str = "default";
/// Minute-aligned start (2025-06-15T15:07:00Z).
const T0: u64 = 1_750_000_020_000;
const MINUTE: u64 = 60_000;
const MINUTES: u64 = 180;
const SEEDS: std::ops::Range<u64> = 1..11;

/// `hate` flag rate `rate` during minutes `from..to`.
#[derive(Clone, Copy)]
struct Spike {
    from: u64,
    to: u64,
    rate: f64,
}

const BIG_SPIKE: Spike = Spike {
    from: 120,
    to: 130,
    rate: 0.15,
};
const SMALL_SPIKE: Spike = Spike {
    from: 120,
    to: 130,
    rate: 0.08,
};

/// One request: a time and a batch of texts' flags.
type Request = (u64, Vec<Vec<bool>>);

/// Three hours of traffic: 40–200 texts a minute in requests of 1–5 texts, each request at
/// a random time within its minute (so times go back and forth inside a minute), flags drawn
/// independently per category. The spike, if any, changes only the `hate` probability, so
/// the stream is otherwise identical for the same seed.
fn stream(seed: u64, spike: Option<Spike>) -> Vec<Request> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for minute in 0..MINUTES {
        let mut left = rng.range(40, 200);
        while left > 0 {
            let batch = rng.range(1, 5).min(left);
            left -= batch;
            let t = T0 + minute * MINUTE + rng.range(0, MINUTE - 1);
            let texts = (0..batch)
                .map(|_| {
                    CATEGORIES
                        .iter()
                        .enumerate()
                        .map(|(i, &(_, base))| {
                            let u = rng.f64(); // always drawn: same stream with or without spike
                            let p = match spike {
                                Some(s) if i == HATE && (s.from..s.to).contains(&minute) => s.rate,
                                _ => base,
                            };
                            u < p
                        })
                        .collect()
                })
                .collect();
            out.push((t, texts));
        }
    }
    out
}

/// Replays the stream (ticking once a second, as a service timer would) and returns every
/// alert in its final state.
fn replay(seed: u64, spike: Option<Spike>, cfg: MonitorConfig) -> Vec<Alert> {
    let cats = CATEGORIES.iter().map(|(c, _)| c.to_string()).collect();
    let mut m = Monitor::new(cats, cfg).unwrap();
    let mut alerts: Vec<Alert> = Vec::new();
    let absorb = |events: Vec<AlertEvent>, alerts: &mut Vec<Alert>| {
        for e in events {
            match e {
                AlertEvent::Opened(a) => alerts.push(a),
                AlertEvent::Closed(a) => {
                    let open = alerts
                        .iter_mut()
                        .find(|o| o.id == a.id)
                        .expect("closed unknown");
                    assert!(open.closed_at_ms.is_none(), "closed twice");
                    *open = a;
                }
            }
        }
    };
    let mut last_tick = T0;
    for (t, texts) in stream(seed, spike) {
        if texts.len() == 1 {
            m.observe(t, POLICY, &texts[0]);
        } else {
            m.observe_many(t, POLICY, &texts);
        }
        if t >= last_tick + 1000 {
            last_tick = t;
            m.tick(t);
        }
        absorb(m.drain_events(), &mut alerts);
    }
    // Close the last window.
    m.tick(T0 + (MINUTES + 1) * MINUTE);
    absorb(m.drain_events(), &mut alerts);
    assert_eq!(m.alerts_total(), alerts.len() as u64);
    let snap = m.snapshot(T0 + (MINUTES + 1) * MINUTE);
    assert_eq!(snap.series.len(), CATEGORIES.len() + 1);
    assert!(snap.series.iter().all(|s| s.windows_seen == MINUTES as u32));
    alerts
}

fn windows_after_spike_start(a: &Alert, s: Spike) -> f64 {
    (a.opened_at_ms as f64 - (T0 + s.from * MINUTE) as f64) / MINUTE as f64
}

/// Alerts of the same stream without the spike, as (category, opened_at_ms). The spike
/// changes only `hate` flags, so every other category sees identical traffic and raises
/// identical (false) alarms with or without it.
fn background(seed: u64) -> Vec<(String, u64)> {
    replay(seed, None, MonitorConfig::default())
        .into_iter()
        .map(|a| (a.category, a.opened_at_ms))
        .collect()
}

/// Alerts per seed, no spike.
fn false_alarms(seeds: std::ops::Range<u64>, cfg: &MonitorConfig) -> Vec<Vec<Alert>> {
    seeds.map(|seed| replay(seed, None, cfg.clone())).collect()
}

#[test]
fn injected_hate_spike_alerts_within_two_windows_and_closes() {
    let cfg = MonitorConfig::default();
    let s = BIG_SPIKE;
    let mut delays = Vec::new();
    let mut closes = Vec::new();
    let mut any_alerted = 0;
    let mut background_alarms = 0;
    for seed in SEEDS {
        let alerts = replay(seed, Some(s), cfg.clone());
        let hate: Vec<_> = alerts.iter().filter(|a| a.category == "hate").collect();
        assert_eq!(
            hate.len(),
            1,
            "seed {seed}: exactly one hate alert: {alerts:#?}"
        );
        let a = hate[0];
        assert_eq!(a.policy, POLICY);
        let delay = windows_after_spike_start(a, s);
        // Opened at the end of the first, second or (see below) third spike window.
        assert!(
            (1.0..=3.0).contains(&delay),
            "seed {seed}: delay {delay} windows"
        );
        assert!(
            a.window_start_ms >= T0 + s.from * MINUTE,
            "seed {seed}: evidence before the spike"
        );
        assert!(
            a.rate >= 0.08 && a.baseline_rate < 0.05,
            "seed {seed}: {a:?}"
        );
        // It stays open for the whole spike (one alert, not closed early) and closes after
        // the spike ends: cooldown (2) normal windows, allowing some noisy ones.
        let closed = a.closed_at_ms.expect("hate alert must close");
        let end = T0 + s.to * MINUTE;
        let after = (closed as f64 - end as f64) / MINUTE as f64;
        assert!(
            (2.0..=5.0).contains(&after),
            "seed {seed}: closed {after} windows after the spike"
        );
        // Decision on `any`: it may alert (hate is a quarter of its flags), but only during
        // the spike, and must close too. No other category alerts, except the background
        // false alarms the identical stream raises without the spike (seed 1 has one).
        let bg = background(seed);
        for o in alerts.iter().filter(|a| a.category != "hate") {
            if bg.contains(&(o.category.clone(), o.opened_at_ms)) && o.category != ANY_SERIES {
                background_alarms += 1;
                continue;
            }
            assert_eq!(
                o.category, ANY_SERIES,
                "seed {seed}: unexpected alert {o:?}"
            );
            let d = windows_after_spike_start(o, s);
            assert!(
                (1.0..=10.0).contains(&d),
                "seed {seed}: any alert outside spike: {o:?}"
            );
            assert!(
                o.closed_at_ms.is_some(),
                "seed {seed}: any alert never closed"
            );
            any_alerted += 1;
        }
        delays.push(delay);
        closes.push(after);
    }
    println!(
        "15% hate spike, defaults: detection delay in windows after the spike start per seed \
         {delays:?}; closed this many windows after it ended {closes:?}; `any` alerted in \
         {any_alerted}/{} seeds; background false alarms in other categories {background_alarms}",
        SEEDS.count()
    );
    assert!(background_alarms <= 1);
    // Within two windows in 9 of the 10 seeds. Seed 10 takes three: its first spike window
    // drew 3 flags in 45 texts (6.7%, the spike is random too) and its second 11 in 75
    // (z = 3.83); the two pooled open the alert at the end of the third. Over 100 seeds:
    // 73 after one window, 26 after two, 1 after three.
    let within_two = delays.iter().filter(|&&d| d <= 2.0).count();
    assert!(within_two >= 9, "{delays:?}");
}

#[test]
fn no_spike_false_alarms_at_defaults() {
    // The same streams without the spike. A calibrated z >= 4 test fires with probability
    // 3.2e-5 per series-window, so 10 seeds x 180 windows x 9 series expect 0.5 false
    // alarms; measured: 1 (seed 1, violence/graphic: 9 flags in 171 texts over two windows
    // against a 0.7% baseline, z = 4.02). The bound is the measured value, so any change
    // that raises the false-alarm rate fails here.
    let per_seed = false_alarms(SEEDS, &MonitorConfig::default());
    let counts: Vec<usize> = per_seed.iter().map(Vec::len).collect();
    let total: usize = counts.iter().sum();
    for (seed, alerts) in SEEDS.zip(&per_seed) {
        for a in alerts {
            println!(
                "seed {seed}: false alarm {}/{} z={:.2} texts={} rate={:.4} baseline={:.4}",
                a.policy, a.category, a.z, a.texts, a.rate, a.baseline_rate
            );
        }
    }
    println!(
        "no spike, defaults: {total} alerts over {} seeds x {MINUTES} windows x {} series (per seed {counts:?})",
        SEEDS.count(),
        CATEGORIES.len() + 1
    );
    assert!(total <= 1, "{total} false alarms");
    // Variant B of the seed the spike test reports first: the identical stream minus the
    // spike raises nothing at all.
    assert_eq!(counts[1], 0);
}

#[test]
fn false_alarm_rate_matches_the_nominal_rate_over_100_seeds() {
    // 100 seeds = 300 hours of traffic, 162 000 series-windows. At z_threshold = 4 the
    // nominal one-sided rate 3.17e-5 expects 5.1 alarms (measured 5); at 4.5 (3.4e-6) 0.55
    // (measured 0). Before the exact (beta-binomial) tail, the plain normal z with the
    // binomial floor gave 37 in the first 10 seeds alone.
    let seeds = 1..101;
    let at = |z: f64| -> usize {
        false_alarms(
            seeds.clone(),
            &MonitorConfig {
                z_threshold: z,
                ..Default::default()
            },
        )
        .iter()
        .map(Vec::len)
        .sum()
    };
    let (z4, z45) = (at(4.0), at(4.5));
    println!("100 seeds without a spike: {z4} false alarms at z_threshold 4, {z45} at 4.5");
    assert!(z4 <= 8, "{z4}");
    assert!(z45 <= 1, "{z45}");
}

#[test]
fn a_lower_threshold_does_raise_false_alarms() {
    // Control for the tests above: the stream is noisy enough that an over-sensitive setting
    // alerts without a spike, so few alarms at the defaults is a property of the defaults.
    let cfg = MonitorConfig {
        z_threshold: 2.0,
        min_rate_increase: 0.0,
        ..Default::default()
    };
    let total: usize = false_alarms(SEEDS, &cfg).iter().map(Vec::len).sum();
    println!(
        "no spike, z_threshold 2 and no min increase: {total} alerts over {} seeds",
        SEEDS.count()
    );
    assert!(total > 10, "{total}");
}

/// First hate alert's delay (windows after the spike start) per seed.
fn first_hate_alert(spike: Spike, cfg: &MonitorConfig) -> Vec<Option<f64>> {
    SEEDS
        .map(|seed| {
            let alerts = replay(seed, Some(spike), cfg.clone());
            let bg: Vec<(String, u64)> = replay(seed, None, cfg.clone())
                .into_iter()
                .map(|a| (a.category, a.opened_at_ms))
                .collect();
            for a in &alerts {
                if a.category != "hate" && bg.contains(&(a.category.clone(), a.opened_at_ms)) {
                    continue; // a background false alarm, raised without the spike too
                }
                // Whatever the detector: nothing but hate/any, on evidence overlapping the
                // spike (a CUSUM run may start a few windows before it, S > 0 being common),
                // opened during it or (CUSUM) just after.
                assert!(
                    a.category == "hate" || a.category == ANY_SERIES,
                    "seed {seed}: {a:?}"
                );
                let d = windows_after_spike_start(a, spike);
                let from = T0 + (spike.from - 5) * MINUTE;
                let in_spike = (from..T0 + spike.to * MINUTE).contains(&a.window_start_ms);
                assert!(
                    in_spike && (1.0..=15.0).contains(&d),
                    "seed {seed}: outside the spike {a:?}"
                );
            }
            alerts
                .iter()
                .filter(|a| a.category == "hate")
                .map(|a| windows_after_spike_start(a, spike))
                .next()
        })
        .collect()
}

const CUSUM: Detector = Detector::Cusum { k: 1.0, h: 5.0 };

#[test]
fn small_hate_spike_3_to_8_percent() {
    // Documents sensitivity: a 3% → 8% shift is about 3 standard deviations of a
    // 120-text window, below the default z_threshold of 4. The EWMA test catches it when a
    // window, or a run of suspect windows pooled, happens to clear 4; CUSUM accumulates it.
    let ewma = first_hate_alert(SMALL_SPIKE, &MonitorConfig::default());
    let cusum = first_hate_alert(
        SMALL_SPIKE,
        &MonitorConfig {
            detector: CUSUM,
            ..Default::default()
        },
    );
    let count = |d: &[Option<f64>]| d.iter().filter(|d| d.is_some()).count();
    println!("8% hate spike, EWMA defaults: first hate alert delay per seed {ewma:?}");
    println!("8% hate spike, CUSUM k=1 h=5: first hate alert delay per seed {cusum:?}");
    println!(
        "8% hate spike detected in {}/{n} seeds (EWMA), {}/{n} seeds (CUSUM)",
        count(&ewma),
        count(&cusum),
        n = SEEDS.count()
    );
    // Measured (deterministic): EWMA 5/10, CUSUM 10/10.
    assert!(
        (3..10).contains(&count(&ewma)),
        "EWMA at z=4 catches some, not all: {ewma:?}"
    );
    assert_eq!(count(&cusum), 10, "CUSUM must catch the sustained 8% shift");
}

#[test]
fn cusum_is_quiet_without_a_spike_and_fast_on_the_big_one() {
    let cfg = MonitorConfig {
        detector: CUSUM,
        ..Default::default()
    };
    let fa: usize = false_alarms(SEEDS, &cfg).iter().map(Vec::len).sum();
    let delays = first_hate_alert(BIG_SPIKE, &cfg);
    println!("CUSUM k=1 h=5: {fa} false alarms over 10 seeds; 15% spike delay per seed {delays:?}");
    assert_eq!(fa, 0);
    assert!(
        delays.iter().all(|d| d.is_some_and(|d| d <= 3.0)),
        "{delays:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary timestamps (backwards, huge jumps, u64::MAX), policies and flag vectors of
    /// any length: never panics, and every rate stays in [0, 1] and every z is finite.
    #[test]
    fn observe_never_panics_and_rates_stay_in_unit_interval(
        ops in proptest::collection::vec(
            (
                prop_oneof![
                    0u64..10_000_000,
                    T0..T0 + 10 * MINUTE,
                    any::<u64>(),
                    Just(u64::MAX),
                ],
                0usize..3,
                proptest::collection::vec(any::<bool>(), 0..5),
                0usize..4,
            ),
            1..300,
        ),
        window_secs in 1u64..120,
        cusum in any::<bool>(),
    ) {
        let cfg = MonitorConfig {
            window_secs,
            warmup_windows: 1,
            min_texts: 1,
            detector: if cusum { Detector::Cusum { k: 0.5, h: 2.0 } } else { Detector::Ewma },
            ..Default::default()
        };
        let cats = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let mut m = Monitor::new(cats, cfg).unwrap();
        let policies = ["p", "q", ""];
        for (t, p, flags, batch) in ops {
            if batch == 0 {
                m.observe(t, policies[p], &flags);
            } else {
                m.observe_many(t, policies[p], &vec![flags; batch]);
            }
            m.tick(t.wrapping_add(window_secs * 1000 * 2));
            let snap = m.snapshot(t);
            prop_assert_eq!(snap.current_window_start_ms % (window_secs * 1000), 0);
            for s in &snap.series {
                prop_assert!((0.0..=1.0).contains(&s.current_rate));
                prop_assert!(s.current_flagged <= s.current_texts);
                for r in [s.last_window_rate, s.baseline_rate].into_iter().flatten() {
                    prop_assert!((0.0..=1.0).contains(&r), "{r}");
                }
                prop_assert!(s.baseline_sd.is_none_or(|v| v.is_finite() && v >= 0.0));
                prop_assert!(s.last_z.is_none_or(f64::is_finite));
            }
            for a in snap.recent_alerts.iter().chain(&snap.open_alerts) {
                prop_assert!((0.0..=1.0).contains(&a.rate) && (0.0..=1.0).contains(&a.peak_rate));
                prop_assert!(a.peak_rate >= a.rate && a.z.is_finite());
            }
            prop_assert!(serde_json::to_string(&snap).is_ok());
        }
        for e in m.drain_events() {
            if let AlertEvent::Closed(a) = e {
                prop_assert!(a.closed_at_ms.unwrap() >= a.opened_at_ms);
            }
        }
    }
}
