use super::*;

/// A minute-aligned unix time (2025-06-15), so window `w` starts at `T0 + w * 60 s`.
const T0: u64 = 1_750_000_020_000;
const W: u64 = 60_000;
const CATS: [&str; 3] = ["hate", "violence", "sexual"];

fn monitor(cfg: MonitorConfig) -> Monitor {
    Monitor::new(CATS.iter().map(|s| s.to_string()).collect(), cfg).unwrap()
}

/// Feeds window `w` of `policy` with `n` texts, the first `flagged[c]` of them flagged in
/// category `c`, spread over the window.
fn feed(m: &mut Monitor, w: u64, policy: &str, n: u64, flagged: [u64; 3]) {
    for t in 0..n {
        let flags: Vec<bool> = flagged.iter().map(|&k| t < k).collect();
        m.observe(T0 + w * W + t * (W / n.max(1)), policy, &flags);
    }
}

/// `count` windows from `from` of steady traffic: 100 texts, hate 3, violence 2, sexual 4.
/// The counts vary slightly (±1) so the EWMA variance is not exactly 0.
fn steady(m: &mut Monitor, from: u64, count: u64, policy: &str) {
    for w in from..from + count {
        let j = w % 3; // 0, 1, 2
        feed(m, w, policy, 100, [2 + j, 1 + j, 3 + j]);
    }
}

fn series<'a>(snap: &'a MonitorSnapshot, policy: &str, cat: &str) -> &'a SeriesSnapshot {
    snap.series
        .iter()
        .find(|s| s.policy == policy && s.category == cat)
        .unwrap_or_else(|| panic!("no series {policy}/{cat}"))
}

fn opened(events: &[AlertEvent]) -> Vec<&Alert> {
    events
        .iter()
        .filter_map(|e| match e {
            AlertEvent::Opened(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn config_validation_rejects_each_bad_field() {
    assert_eq!(MonitorConfig::default().validate(), Ok(()));
    let cases: Vec<(&str, MonitorConfig)> = vec![
        (
            "window_secs",
            MonitorConfig {
                window_secs: 0,
                ..Default::default()
            },
        ),
        (
            "window_secs",
            MonitorConfig {
                window_secs: MAX_WINDOW_SECS + 1,
                ..Default::default()
            },
        ),
        (
            "alpha",
            MonitorConfig {
                alpha: 0.0,
                ..Default::default()
            },
        ),
        (
            "alpha",
            MonitorConfig {
                alpha: 1.5,
                ..Default::default()
            },
        ),
        (
            "alpha",
            MonitorConfig {
                alpha: f64::NAN,
                ..Default::default()
            },
        ),
        (
            "z_threshold",
            MonitorConfig {
                z_threshold: 0.0,
                ..Default::default()
            },
        ),
        (
            "z_threshold",
            MonitorConfig {
                z_threshold: f64::INFINITY,
                ..Default::default()
            },
        ),
        (
            "clear_z_threshold",
            MonitorConfig {
                clear_z_threshold: 0.0,
                ..Default::default()
            },
        ),
        (
            "clear_z_threshold",
            MonitorConfig {
                clear_z_threshold: 4.5,
                ..Default::default()
            },
        ),
        (
            "min_rate_increase",
            MonitorConfig {
                min_rate_increase: -0.1,
                ..Default::default()
            },
        ),
        (
            "min_rate_increase",
            MonitorConfig {
                min_rate_increase: 1.0,
                ..Default::default()
            },
        ),
        (
            "warmup_windows",
            MonitorConfig {
                warmup_windows: 0,
                ..Default::default()
            },
        ),
        (
            "cooldown_windows",
            MonitorConfig {
                cooldown_windows: 0,
                ..Default::default()
            },
        ),
        (
            "min_rate",
            MonitorConfig {
                min_rate: 0.0,
                ..Default::default()
            },
        ),
        (
            "min_rate",
            MonitorConfig {
                min_rate: 0.5,
                ..Default::default()
            },
        ),
        (
            "max_policies",
            MonitorConfig {
                max_policies: 0,
                ..Default::default()
            },
        ),
        (
            "cusum k",
            MonitorConfig {
                detector: Detector::Cusum { k: -1.0, h: 5.0 },
                ..Default::default()
            },
        ),
        (
            "cusum h",
            MonitorConfig {
                detector: Detector::Cusum { k: 0.5, h: 0.0 },
                ..Default::default()
            },
        ),
    ];
    for (field, cfg) in cases {
        match cfg.validate() {
            Err(MonitorError::InvalidConfig(msg)) => {
                assert!(msg.contains(field), "{field}: message `{msg}`")
            }
            other => panic!("{field}: expected an error, got {other:?}"),
        }
        // Monitor::new validates too.
        assert!(Monitor::new(vec!["hate".into()], cfg).is_err());
    }
    let ok_cusum = MonitorConfig {
        detector: Detector::Cusum { k: 0.5, h: 5.0 },
        ..Default::default()
    };
    assert_eq!(ok_cusum.validate(), Ok(()));
}

#[test]
fn categories_are_validated() {
    let cfg = MonitorConfig::default;
    assert!(matches!(
        Monitor::new(vec![], cfg()),
        Err(MonitorError::InvalidCategories(_))
    ));
    let dup = Monitor::new(vec!["hate".into(), "hate".into()], cfg());
    assert!(matches!(dup, Err(MonitorError::InvalidCategories(m)) if m.contains("duplicate")));
    let any = Monitor::new(vec!["hate".into(), "any".into()], cfg());
    assert!(matches!(any, Err(MonitorError::InvalidCategories(m)) if m.contains("reserved")));
}

#[test]
fn config_deserializes_partially_and_rejects_unknown_fields() {
    let cfg: MonitorConfig = serde_json::from_str(r#"{"z_threshold": 3.0}"#).unwrap();
    assert_eq!(
        cfg,
        MonitorConfig {
            z_threshold: 3.0,
            ..Default::default()
        }
    );
    let cusum: MonitorConfig =
        serde_json::from_str(r#"{"detector": {"kind": "cusum", "k": 0.5, "h": 5}}"#).unwrap();
    assert_eq!(cusum.detector, Detector::Cusum { k: 0.5, h: 5.0 });
    assert!(serde_json::from_str::<MonitorConfig>(r#"{"z_treshold": 3.0}"#).is_err());
}

/// Runs `warm` steady windows then one window with 30% hate; returns the alerts opened.
fn spike_after(warm: u64, cfg: MonitorConfig) -> Vec<AlertEvent> {
    let mut m = monitor(cfg);
    steady(&mut m, 0, warm, "p");
    feed(&mut m, warm, "p", 100, [30, 2, 4]);
    m.tick(T0 + (warm + 1) * W)
}

#[test]
fn no_alert_before_warmup() {
    let cfg = MonitorConfig {
        warmup_windows: 5,
        ..Default::default()
    };
    // After 4 closed windows the spike window is the 5th: still warming up.
    assert!(spike_after(4, cfg.clone()).is_empty());
    // After 5 the same spike alerts (so the test above could fail). The spike's flags
    // overlap the other categories' (the first k texts), so `any` rises to 30% too.
    let ev = spike_after(5, cfg);
    let mut cats: Vec<_> = opened(&ev)
        .iter()
        .map(|a| (a.category.clone(), a.texts))
        .collect();
    cats.sort();
    assert_eq!(
        cats,
        [("any".to_string(), 100), ("hate".to_string(), 100)],
        "{ev:?}"
    );
}

#[test]
fn min_texts_suppresses_small_windows() {
    let run = |n: u64| {
        let mut m = monitor(MonitorConfig::default());
        steady(&mut m, 0, 10, "p");
        // Every text flagged hate: z is huge whatever n is.
        feed(&mut m, 10, "p", n, [n, 0, 0]);
        m.tick(T0 + 11 * W)
    };
    assert!(run(19).is_empty(), "19 texts < min_texts 20 must not alert");
    let ev = run(20);
    assert!(opened(&ev).iter().any(|a| a.category == "hate"), "{ev:?}");
}

#[test]
fn empty_windows_are_skipped_not_zero() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 10, "p");
    m.tick(T0 + 10 * W);
    let before = series(&m.snapshot(T0 + 10 * W), "p", "hate").clone();
    assert_eq!(before.windows_seen, 10);
    // 50 silent windows, ticked one by one as a service timer would.
    for w in 11..=60 {
        assert!(m.tick(T0 + w * W).is_empty());
    }
    let after = series(&m.snapshot(T0 + 60 * W), "p", "hate").clone();
    assert_eq!(after.windows_seen, 10, "empty windows must not count");
    assert_eq!(
        after.baseline_rate, before.baseline_rate,
        "baseline must not decay to 0"
    );
    assert_eq!(after.last_window_rate, before.last_window_rate);
    // Normal traffic after the gap is still normal.
    steady(&mut m, 60, 5, "p");
    m.tick(T0 + 65 * W);
    assert!(m.drain_events().is_empty());
    assert_eq!(
        series(&m.snapshot(T0 + 65 * W), "p", "hate").windows_seen,
        15
    );
}

#[test]
fn clock_going_backwards_counts_in_the_current_window() {
    let mut m = monitor(MonitorConfig::default());
    m.observe(T0 + 10 * W + 5, "p", &[true, false, false]);
    m.observe(T0 + 9 * W, "p", &[false, false, false]); // previous window
    m.observe(T0, "p", &[true, true, false]); // ten windows back
    m.observe(0, "p", &[false, false, false]); // the epoch
    let snap = m.snapshot(T0 + 10 * W);
    assert_eq!(snap.current_window_start_ms, T0 + 10 * W);
    let hate = series(&snap, "p", "hate");
    assert_eq!((hate.current_texts, hate.current_flagged), (4, 2));
    assert_eq!(hate.windows_seen, 0, "going back must not close a window");
    assert_eq!(series(&snap, "p", "any").current_flagged, 2);
}

#[test]
fn big_time_jump_closes_the_pending_window_cheaply() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 3, "p");
    // ~5.8e8 years of one-minute windows later, then the largest possible time.
    let far = u64::MAX / 2;
    let start = std::time::Instant::now();
    m.observe(far, "p", &[true, false, false]);
    m.observe(u64::MAX, "p", &[false, false, false]);
    assert!(start.elapsed() < std::time::Duration::from_millis(100));
    let snap = m.snapshot(u64::MAX);
    assert_eq!(snap.current_window_start_ms, u64::MAX - u64::MAX % W);
    let hate = series(&snap, "p", "hate");
    // Windows 0..=2 plus the single text at `far`; the jump itself adds nothing.
    assert_eq!(hate.windows_seen, 4);
    assert_eq!(hate.last_window_rate, Some(1.0));
    assert_eq!(hate.current_texts, 1);
    assert!(m.tick(u64::MAX).is_empty());
}

#[test]
fn sustained_spike_stays_alerting_and_baseline_is_frozen() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 30, "p");
    m.tick(T0 + 30 * W);
    let base = series(&m.snapshot(T0 + 30 * W), "p", "hate")
        .baseline_rate
        .unwrap();
    assert!((base - 0.03).abs() < 0.005, "{base}");
    // 30 minutes at 15% hate.
    for w in 30..60 {
        feed(&mut m, w, "p", 100, [15, 2, 4]);
        m.tick(T0 + (w + 1) * W);
        let snap = m.snapshot(T0 + (w + 1) * W);
        let hate = series(&snap, "p", "hate");
        assert!(hate.alerting, "window {w}: alert closed during the spike");
        assert_eq!(hate.baseline_rate, Some(base), "window {w}: baseline moved");
    }
    let ev = m.drain_events();
    let hate_events: Vec<_> = ev.iter().filter(|e| e.alert().category == "hate").collect();
    assert_eq!(hate_events.len(), 1, "one Opened, no Closed: {ev:?}");
    let a = hate_events[0].alert();
    assert_eq!(
        (a.opened_at_ms, a.window_start_ms),
        (T0 + 31 * W, T0 + 30 * W)
    );
    assert!((a.rate - 0.15).abs() < 1e-12 && (a.peak_rate - 0.15).abs() < 1e-12);
    // Back to normal: closes after exactly cooldown_windows (2) normal windows.
    steady(&mut m, 60, 1, "p");
    m.tick(T0 + 61 * W);
    assert!(series(&m.snapshot(T0 + 61 * W), "p", "hate").alerting);
    steady(&mut m, 61, 1, "p");
    m.tick(T0 + 62 * W);
    let snap = m.snapshot(T0 + 62 * W);
    assert!(!series(&snap, "p", "hate").alerting);
    assert!(snap.open_alerts.iter().all(|a| a.category != "hate"));
    let closed: Vec<_> = m
        .drain_events()
        .into_iter()
        .filter_map(|e| match e {
            AlertEvent::Closed(a) if a.category == "hate" => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].closed_at_ms, Some(T0 + 62 * W));
    // The same alert in recent_alerts carries the closing time.
    let recent = snap
        .recent_alerts
        .iter()
        .find(|r| r.id == closed[0].id)
        .unwrap();
    assert_eq!(recent.closed_at_ms, Some(T0 + 62 * W));
}

#[test]
fn freeze_holds_with_a_short_memory() {
    // With alpha = 0.5 a single unfrozen spike window would move the baseline halfway to
    // the spike rate at once; frozen, it does not move at all.
    let mut m = monitor(MonitorConfig {
        alpha: 0.5,
        ..Default::default()
    });
    steady(&mut m, 0, 30, "p");
    m.tick(T0 + 30 * W);
    let base = series(&m.snapshot(T0 + 30 * W), "p", "hate").baseline_rate;
    for w in 30..40 {
        feed(&mut m, w, "p", 100, [30, 2, 4]);
        m.tick(T0 + (w + 1) * W);
        let snap = m.snapshot(T0 + (w + 1) * W);
        let hate = series(&snap, "p", "hate");
        assert!(hate.alerting, "window {w}");
        assert_eq!(hate.baseline_rate, base, "window {w}");
    }
    let hate_alerts = m
        .drain_events()
        .iter()
        .filter(|e| e.alert().category == "hate")
        .count();
    assert_eq!(hate_alerts, 1);
}

#[test]
fn policies_are_kept_separate() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 10, "strict");
    steady(&mut m, 0, 10, "lenient");
    feed(&mut m, 10, "strict", 100, [30, 2, 4]);
    steady(&mut m, 10, 1, "lenient");
    let ev = m.tick(T0 + 11 * W);
    let a = opened(&ev);
    assert!(!a.is_empty());
    assert!(a.iter().all(|a| a.policy == "strict"), "{ev:?}");
    let snap = m.snapshot(T0 + 11 * W);
    assert_eq!(snap.series.len(), 2 * (CATS.len() + 1));
    // Policies in name order, categories in configuration order, then `any`.
    let order: Vec<_> = snap
        .series
        .iter()
        .map(|s| format!("{}/{}", s.policy, s.category))
        .collect();
    assert_eq!(
        order,
        [
            "lenient/hate",
            "lenient/violence",
            "lenient/sexual",
            "lenient/any",
            "strict/hate",
            "strict/violence",
            "strict/sexual",
            "strict/any"
        ]
    );
    assert!(series(&snap, "strict", "hate").alerting);
    assert!(!series(&snap, "lenient", "hate").alerting);
    assert_eq!(series(&snap, "strict", "hate").last_window_rate, Some(0.30));
    assert!(series(&snap, "lenient", "hate").last_window_rate.unwrap() < 0.05);
}

#[test]
fn any_series_counts_texts_flagged_in_any_category() {
    let mut m = monitor(MonitorConfig::default());
    m.observe(T0, "p", &[true, true, false]);
    m.observe(T0 + 1, "p", &[false, false, true]);
    m.observe(T0 + 2, "p", &[false, false, false]);
    let snap = m.snapshot(T0);
    let any = series(&snap, "p", "any");
    assert_eq!((any.current_texts, any.current_flagged), (3, 2));
}

#[test]
fn observe_many_equals_repeated_observe() {
    let batch: Vec<Vec<bool>> = (0..50u64)
        .map(|i| vec![i % 7 == 0, i % 11 == 0, i % 3 == 0])
        .collect();
    let mut a = monitor(MonitorConfig::default());
    let mut b = monitor(MonitorConfig::default());
    for w in 0..12 {
        let t = T0 + w * W + 7;
        a.observe_many(t, "p", &batch);
        for f in &batch {
            b.observe(t, "p", f);
        }
    }
    // A spike so the alert path is compared too.
    a.observe_many(T0 + 12 * W, "p", &vec![vec![true, false, false]; 60]);
    for _ in 0..60 {
        b.observe(T0 + 12 * W, "p", &[true, false, false]);
    }
    assert_eq!(a.tick(T0 + 13 * W), b.tick(T0 + 13 * W));
    assert_eq!(a.snapshot(T0 + 13 * W), b.snapshot(T0 + 13 * W));
    assert_eq!(a.texts_total(), 12 * 50 + 60);
    assert_eq!(a.alerts_total(), b.alerts_total());
    assert!(a.alerts_total() > 0);
}

#[test]
fn wrong_flag_count_is_counted_not_fatal() {
    let mut m = monitor(MonitorConfig::default());
    m.observe(T0, "p", &[true]);
    m.observe(T0, "p", &[false, false, true, true, true]);
    m.observe(T0, "p", &[]);
    m.observe(T0, "p", &[false, true, false]);
    assert_eq!(m.mismatched_total(), 3);
    let snap = m.snapshot(T0);
    assert_eq!(series(&snap, "p", "hate").current_flagged, 1);
    assert_eq!(series(&snap, "p", "sexual").current_flagged, 1);
    assert_eq!(series(&snap, "p", "any").current_flagged, 3);
    assert_eq!(series(&snap, "p", "any").current_texts, 4);
}

#[test]
fn policies_beyond_the_cap_are_dropped_and_counted() {
    let mut m = monitor(MonitorConfig {
        max_policies: 2,
        ..Default::default()
    });
    m.observe(T0, "a", &[false; 3]);
    m.observe(T0, "b", &[false; 3]);
    m.observe(T0, "c", &[false; 3]);
    m.observe_many(T0, "d", &[vec![false; 3], vec![true; 3]]);
    m.observe(T0, "a", &[false; 3]);
    assert_eq!(m.dropped_total(), 3);
    assert_eq!(m.texts_total(), 3);
    assert_eq!(m.snapshot(T0).series.len(), 2 * 4);
}

#[test]
fn tick_returns_openings_and_drain_returns_every_event_once() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 10, "p");
    feed(&mut m, 10, "p", 100, [30, 2, 4]);
    let t = m.tick(T0 + 11 * W);
    assert!(t.iter().all(|e| matches!(e, AlertEvent::Opened(_))) && !t.is_empty());
    // Observe closes windows too; its openings are only in the drain queue.
    steady(&mut m, 11, 3, "p");
    let closing = m.tick(T0 + 14 * W);
    assert!(
        closing.is_empty(),
        "tick must not return Closed events: {closing:?}"
    );
    let ev = m.drain_events();
    let n_open = ev
        .iter()
        .filter(|e| matches!(e, AlertEvent::Opened(_)))
        .count();
    let n_closed = ev
        .iter()
        .filter(|e| matches!(e, AlertEvent::Closed(_)))
        .count();
    assert_eq!(n_open, t.len());
    assert_eq!(n_closed, t.len(), "{ev:?}");
    assert!(m.drain_events().is_empty());
    assert_eq!(m.alerts_total(), t.len() as u64);
    assert_eq!(m.open_alerts(), 0);
}

#[test]
fn recent_alerts_are_capped() {
    let mut m = monitor(MonitorConfig {
        cooldown_windows: 1,
        ..Default::default()
    });
    steady(&mut m, 0, 10, "p");
    // Alternate spike / normal windows: every spike opens and the next window closes it.
    let mut w = 10;
    for _ in 0..60 {
        feed(&mut m, w, "p", 100, [30, 2, 4]);
        feed(&mut m, w + 1, "p", 100, [3, 2, 4]);
        w += 2;
    }
    m.tick(T0 + w * W);
    let snap = m.snapshot(T0 + w * W);
    assert!(m.alerts_total() >= 60);
    assert_eq!(snap.recent_alerts.len(), RECENT_ALERTS);
    assert_eq!(snap.recent_alerts.last().unwrap().id, m.alerts_total());
    assert!(snap.recent_alerts.windows(2).all(|p| p[0].id < p[1].id));
    assert!(snap.recent_alerts.iter().all(|a| a.closed_at_ms.is_some()));
}

#[test]
fn reset_policy_closes_alerts_and_restarts_warmup() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 10, "p");
    feed(&mut m, 10, "p", 100, [30, 2, 4]);
    m.tick(T0 + 11 * W);
    assert!(m.open_alerts() > 0);
    m.drain_events();
    assert!(m.reset_policy(T0 + 11 * W, "p"));
    assert!(!m.reset_policy(T0 + 11 * W, "unknown"));
    assert_eq!(m.open_alerts(), 0);
    let ev = m.drain_events();
    assert!(!ev.is_empty() && ev.iter().all(|e| matches!(e, AlertEvent::Closed(_))));
    assert!(m.snapshot(T0 + 11 * W).series.is_empty());
}

#[test]
fn snapshot_serialises_with_the_expected_fields() {
    let mut m = monitor(MonitorConfig::default());
    steady(&mut m, 0, 10, "p");
    feed(&mut m, 10, "p", 100, [30, 2, 4]);
    m.observe(T0 + 11 * W + 1, "p", &[true, false, false]);
    let v = serde_json::to_value(m.snapshot(T0 + 11 * W + 2)).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "alerts_total",
            "current_window_start_ms",
            "generated_at_ms",
            "open_alerts",
            "recent_alerts",
            "series",
            "window_secs"
        ]
    );
    assert_eq!(v["window_secs"], 60);
    assert_eq!(v["current_window_start_ms"], T0 + 11 * W);
    let s0 = &v["series"][0];
    assert_eq!(
        keys(s0),
        [
            "alerting",
            "baseline_rate",
            "baseline_sd",
            "category",
            "current_flagged",
            "current_rate",
            "current_texts",
            "last_window_rate",
            "last_z",
            "policy",
            "windows_seen"
        ]
    );
    assert_eq!(s0["policy"], "p");
    assert_eq!(s0["category"], "hate");
    assert_eq!(s0["current_texts"], 1);
    assert_eq!(s0["current_rate"], 1.0);
    assert_eq!(s0["alerting"], true);
    assert!(s0["last_z"].as_f64().unwrap() > 4.0);
    let a = &v["open_alerts"][0];
    assert_eq!(
        keys(a),
        [
            "baseline_rate",
            "category",
            "closed_at_ms",
            "id",
            "opened_at_ms",
            "peak_rate",
            "policy",
            "rate",
            "texts",
            "window_start_ms",
            "z"
        ]
    );
    assert_eq!(a["closed_at_ms"], serde_json::Value::Null);
    assert_eq!(a["opened_at_ms"], T0 + 11 * W);
    // Events are tagged for logs.
    let e = serde_json::to_value(&m.drain_events()[0]).unwrap();
    assert_eq!(e["event"], "opened");
    assert_eq!(e["id"], 1);
    // The snapshot round-trips (clients can deserialize it).
    let back: MonitorSnapshot = serde_json::from_value(v).unwrap();
    assert_eq!(back, m.snapshot(T0 + 11 * W + 2));
}

#[test]
fn cusum_catches_a_small_sustained_shift_the_ewma_test_misses() {
    let run = |detector: Detector| {
        let mut m = monitor(MonitorConfig {
            detector,
            ..Default::default()
        });
        steady(&mut m, 0, 30, "p");
        // hate 3% → 7% for 15 windows of 100 texts: z ≈ 1.8 per window, below even the
        // EWMA test's suspect level (clear_z_threshold = 2), so its baseline adapts.
        for w in 30..45 {
            feed(&mut m, w, "p", 100, [7, 1 + w % 3, 3 + w % 3]);
            m.tick(T0 + (w + 1) * W);
            if w < 33 {
                let z = series(&m.snapshot(T0 + (w + 1) * W), "p", "hate")
                    .last_z
                    .unwrap();
                assert!(z > 1.0 && z < 2.0, "window {w}: z {z}");
            }
        }
        steady(&mut m, 45, 20, "p");
        m.tick(T0 + 65 * W);
        m.drain_events()
    };
    assert!(run(Detector::Ewma).is_empty());
    let ev = run(Detector::Cusum { k: 1.0, h: 5.0 });
    let a = opened(&ev);
    // `any` (7% against ~4%, the flags overlap) may follow.
    assert!(
        a.iter()
            .all(|a| a.category == "hate" || a.category == "any"),
        "{ev:?}"
    );
    let hate = a.iter().find(|a| a.category == "hate").expect("hate alert");
    let delay = (hate.opened_at_ms - (T0 + 30 * W)) / W;
    // S grows by z - k ≈ 0.75 per window against the held-back baseline: 7 windows.
    assert!((6..=8).contains(&delay), "{delay}: {hate:?}");
    // The evidence is the whole run since S left 0: from the shift's first window.
    assert_eq!(hate.window_start_ms, T0 + 30 * W);
    assert!((hate.rate - 0.07).abs() < 1e-9, "{hate:?}");
    let closed = ev
        .iter()
        .find(|e| matches!(e, AlertEvent::Closed(a) if a.id == hate.id))
        .expect("closes");
    let at = closed.alert().closed_at_ms.unwrap();
    assert!(
        at > T0 + 45 * W && at <= T0 + 49 * W,
        "closed at window {}",
        (at - T0) / W
    );
}
