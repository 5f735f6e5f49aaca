//! One monitored rate: its current-window counts, EWMA baseline and alert state.

use crate::config::{Detector, MonitorConfig};
use crate::stats;

/// What closing one window did to a series' alert state.
#[derive(Debug, PartialEq)]
pub(crate) enum Transition {
    None,
    /// No alert was open and the evidence (this window, or the suspect run it completes)
    /// is abnormal.
    Open(Evidence),
    /// An alert is open and this window was part of it (`rate` updates its peak).
    Continue {
        rate: f64,
    },
    /// The alert's cooldown completed with this window.
    Close {
        rate: f64,
    },
}

/// The z-score of `x` flags in `n` texts against a baseline: its EWMA mean and variance,
/// and `n_baseline`, the number of texts a plain average as precise as the EWMA would use.
///
/// The design is `z = (r - p0) / sqrt(max(var, p0(1-p0)/n))`: the EWMA variance measures
/// how much the per-window rate really moves, the binomial term is the sampling noise a
/// window of `n` texts has at least. Taking the larger standard deviation is the same as
/// taking the smaller of the two z-scores, and that is what is computed, with the binomial
/// z made exact for a rise (`r > p0`): the normal quantile of `P(X >= x)` under the
/// posterior predictive of the baseline (beta-binomial; see [`stats::upper_tail_z`]). The
/// normal approximation is badly wrong when `n·p0` is small (a 0.5% category in a 40-text
/// window expects 0.2 flags; 2 flags score z = 4.0 while their probability is 1.7%), and
/// a rate estimated from a few dozen flags is itself uncertain; together they produced
/// dozens of false alarms per 30 simulated hours (see the replay test). For large counts
/// it is the normal z with `sd² = p0(1-p0)(1/n + 1/n_baseline)`, which is also what falls
/// (`r <= p0`) use.
pub(crate) fn z_score(
    x: u64,
    n: u64,
    baseline: f64,
    var: f64,
    n_baseline: f64,
    min_rate: f64,
) -> f64 {
    let n = n.max(1);
    let rate = x as f64 / n as f64;
    let p0 = baseline.max(min_rate);
    // Clamped so that a baseline of 0 or 1 still has a positive sampling variance.
    let pv = p0.clamp(min_rate, 1.0 - min_rate);
    let n_baseline = n_baseline.max(1.0);
    if rate <= p0 {
        let floor = pv * (1.0 - pv) * (1.0 / n as f64 + 1.0 / n_baseline);
        return (rate - p0) / var.max(floor).sqrt();
    }
    let z_binomial = stats::upper_tail_z(x, n, pv, n_baseline);
    let z_var = if var > 0.0 {
        (rate - p0) / var.sqrt()
    } else {
        f64::INFINITY
    };
    z_binomial.min(z_var)
}

/// What opened an alert: one window, or a run of consecutive suspect windows pooled.
#[derive(Debug, PartialEq)]
pub(crate) struct Evidence {
    pub start_ms: u64,
    pub rate: f64,
    pub baseline: f64,
    pub z: f64,
    pub texts: u64,
    /// Highest single-window rate in the evidence.
    pub peak_rate: f64,
}

/// A window held back from the baseline while its suspect run lasts.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    start_ms: u64,
    texts: u64,
    flagged: u64,
    /// The winsorized rate it will contribute to the baseline.
    baseline_rate: f64,
}

/// Most windows a suspect run holds back; older ones are folded in, so a moderate but
/// legitimate level shift is absorbed after this many windows instead of never.
const MAX_HELD: usize = 16;

#[derive(Clone, Debug, Default)]
pub(crate) struct Series {
    pub cur_texts: u64,
    pub cur_flagged: u64,
    /// EWMA of the per-window rate; `None` until the first non-empty window closes.
    pub baseline: Option<f64>,
    /// EWMA of the squared deviation from the baseline.
    pub var: f64,
    /// `Σ wᵢ²/nᵢ` over the windows in the baseline (EWMA weights `wᵢ`, texts `nᵢ`): the
    /// baseline's sampling variance is `p(1-p)` times this, so `1/s2` is its effective
    /// number of texts.
    s2: f64,
    /// Windows that updated the baseline (drives the bias-corrected warm-up weights).
    baseline_windows: u32,
    /// Closed non-empty windows, alerting ones included.
    pub windows_seen: u32,
    pub last_rate: Option<f64>,
    pub last_z: Option<f64>,
    /// Id of the open alert, if any.
    pub alert: Option<u64>,
    normal_streak: u32,
    /// CUSUM statistic and the run of windows (since it was last 0) that built it.
    cusum: f64,
    cusum_run: Option<Run>,
    /// The current suspect run (oldest first), held back from the baseline until it ends
    /// without an alert.
    held: Vec<Held>,
}

impl Series {
    #[inline]
    pub fn record(&mut self, flagged: bool) {
        self.cur_texts += 1;
        self.cur_flagged += u64::from(flagged);
    }

    pub fn current_rate(&self) -> f64 {
        if self.cur_texts == 0 {
            0.0
        } else {
            self.cur_flagged as f64 / self.cur_texts as f64
        }
    }

    /// Folds one window's rate into the baseline. The weight is `max(alpha, 1/(k+1))` for
    /// the k-th update: a plain running mean at first (so the first windows are not
    /// over-weighted, the usual EWMA start-up bias), then the EWMA.
    fn update_baseline(&mut self, rate: f64, texts: u64, alpha: f64) {
        let texts = texts.max(1) as f64;
        match self.baseline {
            None => {
                self.baseline = Some(rate);
                self.var = 0.0;
                self.s2 = 1.0 / texts;
            }
            Some(b) => {
                let a = alpha.max(1.0 / (f64::from(self.baseline_windows) + 1.0));
                let diff = rate - b;
                let incr = a * diff;
                self.baseline = Some((b + incr).clamp(0.0, 1.0));
                self.var = (1.0 - a) * (self.var + diff * incr);
                self.s2 = (1.0 - a) * (1.0 - a) * self.s2 + a * a / texts;
            }
        }
        self.baseline_windows = self.baseline_windows.saturating_add(1);
    }

    fn fold_held(&mut self, alpha: f64) {
        for h in std::mem::take(&mut self.held) {
            self.update_baseline(h.baseline_rate, h.texts, alpha);
        }
    }

    /// Closes the current window (which started at `start_ms`): scores it, updates the
    /// alert state and, unless an alert is or becomes open, the baseline; resets the counts.
    /// Empty windows are skipped entirely: no traffic is no evidence, not a rate of 0.
    pub fn close_window(&mut self, start_ms: u64, cfg: &MonitorConfig) -> Transition {
        let n = self.cur_texts;
        let x = self.cur_flagged;
        self.cur_texts = 0;
        self.cur_flagged = 0;
        if n == 0 {
            return Transition::None;
        }
        let rate = x as f64 / n as f64;
        let armed = self.windows_seen >= cfg.warmup_windows_for_detector();
        let min_texts = cfg.min_texts.max(1);
        let enough = n >= min_texts;
        self.windows_seen = self.windows_seen.saturating_add(1);
        self.last_rate = Some(rate);

        let Some(baseline) = self.baseline else {
            self.last_z = None;
            self.update_baseline(rate, n, cfg.alpha);
            return Transition::None;
        };
        let n_baseline = 1.0 / self.s2;
        let z = z_score(x, n, baseline, self.var, n_baseline, cfg.min_rate);
        self.last_z = Some(z);
        if !armed {
            // Warming up: a plain EWMA (running mean) of every window.
            self.update_baseline(rate, n, cfg.alpha);
            return Transition::None;
        }
        let p0 = baseline.max(cfg.min_rate);

        if self.alert.is_some() {
            // An alert is open: the baseline stays frozen for every window until it closes.
            let elevated = match cfg.detector {
                Detector::Ewma => {
                    enough && z >= cfg.clear_z_threshold && rate - p0 >= cfg.min_rate_increase
                }
                Detector::Cusum { k, h } => {
                    // Capped at h while open: the alert lasts while windows keep exceeding
                    // the allowance k, instead of waiting for a huge S to drain.
                    if enough {
                        self.cusum = (self.cusum + z - k).clamp(0.0, h);
                    }
                    enough && self.cusum >= h
                }
            };
            if elevated {
                self.normal_streak = 0;
            } else if enough {
                self.normal_streak += 1;
                if self.normal_streak >= cfg.cooldown_windows {
                    self.normal_streak = 0;
                    self.cusum = 0.0;
                    self.cusum_run = None;
                    return Transition::Close { rate };
                }
            }
            // Windows too small to judge neither extend nor end the alert.
            return Transition::Continue { rate };
        }

        let window = Run::new(start_ms, n, x);
        let evidence = match cfg.detector {
            Detector::Ewma => {
                let single = window.evidence(baseline, self.var, n_baseline, cfg.min_rate);
                if z < cfg.clear_z_threshold {
                    None
                } else if self.abnormal(&single, p0, cfg) {
                    Some(single)
                } else if !self.held.is_empty() {
                    // This window extends a suspect run: test the run's pooled counts, so a
                    // spike in low-traffic windows, each just short of z_threshold, still
                    // alerts in its second or third window.
                    let mut run = Run::new(self.held[0].start_ms, 0, 0);
                    for h in &self.held {
                        run.add(h.texts, h.flagged);
                    }
                    run.add(n, x);
                    let pooled = run.evidence(baseline, self.var, n_baseline, cfg.min_rate);
                    self.abnormal(&pooled, p0, cfg).then_some(pooled)
                } else {
                    None
                }
            }
            Detector::Cusum { k, h } => {
                if enough {
                    self.cusum = (self.cusum + z - k).max(0.0);
                }
                if self.cusum > 0.0 {
                    match &mut self.cusum_run {
                        Some(run) => run.add(n, x),
                        None => self.cusum_run = Some(window),
                    }
                } else {
                    self.cusum_run = None;
                }
                match &self.cusum_run {
                    Some(run) if self.cusum >= h => {
                        let e = run.evidence(baseline, self.var, n_baseline, cfg.min_rate);
                        (e.texts >= min_texts && e.rate - p0 >= cfg.min_rate_increase).then_some(e)
                    }
                    _ => None,
                }
            }
        };
        if let Some(e) = evidence {
            // The held windows were the start of the spike: never folded in.
            self.held.clear();
            self.cusum_run = None;
            self.normal_streak = 0;
            return Transition::Open(e);
        }

        // Two defences keep a spike that has not (yet) alerted out of the baseline.
        // Winsorizing on the z scale: a window beyond `clear_z_threshold` moves the baseline
        // and its variance only as much as a window at that z would, so one outlier cannot
        // inflate the EWMA variance several-fold. Holding back: the windows of a suspect run
        // (EWMA: z >= clear_z_threshold; CUSUM: S > 0) are folded in only when a normal
        // window ends the run, and dropped if the run becomes an alert, so the first windows
        // of a spike that fall just short of the threshold do not raise the baseline the
        // rest of it is judged against. (Without this CUSUM cannot see a sustained shift at
        // all: the baseline adapts faster than S accumulates.)
        let shrink = if z.abs() > cfg.clear_z_threshold {
            cfg.clear_z_threshold / z.abs()
        } else {
            1.0
        };
        let baseline_rate = baseline + (rate - baseline) * shrink;
        let suspect = match cfg.detector {
            Detector::Ewma => z >= cfg.clear_z_threshold,
            Detector::Cusum { .. } => self.cusum > 0.0,
        };
        if suspect {
            self.held.push(Held {
                start_ms,
                texts: n,
                flagged: x,
                baseline_rate,
            });
            if self.held.len() > MAX_HELD {
                let oldest = self.held.remove(0);
                self.update_baseline(oldest.baseline_rate, oldest.texts, cfg.alpha);
            }
        } else {
            self.fold_held(cfg.alpha);
            self.update_baseline(baseline_rate, n, cfg.alpha);
        }
        Transition::None
    }

    /// The opening rule: enough texts, z at the threshold, and a large enough increase.
    fn abnormal(&self, e: &Evidence, p0: f64, cfg: &MonitorConfig) -> bool {
        e.texts >= cfg.min_texts.max(1)
            && e.z >= cfg.z_threshold
            && e.rate - p0 >= cfg.min_rate_increase
    }
}

/// Counts of consecutive windows pooled as evidence.
#[derive(Clone, Debug)]
struct Run {
    start_ms: u64,
    texts: u64,
    flagged: u64,
    windows: u32,
    peak_rate: f64,
}

impl Run {
    fn new(start_ms: u64, texts: u64, flagged: u64) -> Self {
        let mut r = Run {
            start_ms,
            texts: 0,
            flagged: 0,
            windows: 0,
            peak_rate: 0.0,
        };
        if texts > 0 {
            r.add(texts, flagged);
        }
        r
    }

    fn add(&mut self, texts: u64, flagged: u64) {
        self.texts += texts;
        self.flagged += flagged;
        self.windows += 1;
        self.peak_rate = self.peak_rate.max(flagged as f64 / texts.max(1) as f64);
    }

    fn evidence(&self, baseline: f64, var: f64, n_baseline: f64, min_rate: f64) -> Evidence {
        let windows = f64::from(self.windows.max(1));
        Evidence {
            start_ms: self.start_ms,
            rate: self.flagged as f64 / self.texts.max(1) as f64,
            baseline,
            // The extra-binomial variance of a mean of k windows is var / k.
            z: z_score(
                self.flagged,
                self.texts,
                baseline,
                var / windows,
                n_baseline,
                min_rate,
            ),
            texts: self.texts,
            peak_rate: self.peak_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_score_uses_the_binomial_floor_for_small_windows() {
        const KNOWN: f64 = 1e12; // a baseline known exactly
                                 // Below the baseline: the normal formula with the binomial floor.
        let z = z_score(1, 100, 0.03, 1e-6, KNOWN, 0.001);
        let expected = (0.01 - 0.03) / (0.03f64 * 0.97 / 100.0).sqrt();
        assert!((z - expected).abs() < 1e-6, "{z} vs {expected}");
        // Above it, for large n·p0 the exact z is close to the normal one…
        let z = z_score(400, 10_000, 0.03, 0.0, KNOWN, 0.001);
        let normal = (0.04 - 0.03) / (0.03f64 * 0.97 / 10_000.0).sqrt();
        assert!((z - normal).abs() < 0.3, "{z} vs {normal}");
        // …but for small n·p0 it is far below it: 2 flags in 40 texts at 0.5%.
        let z = z_score(2, 40, 0.005, 0.0, KNOWN, 0.001);
        let normal = (0.05 - 0.005) / (0.005f64 * 0.995 / 40.0).sqrt();
        assert!(normal > 4.0 && z < 2.5, "exact {z}, normal {normal}");
        // A larger EWMA variance wins over the binomial term.
        let z_var = z_score(60, 400, 0.03, 0.01, KNOWN, 0.001);
        assert!((z_var - 0.12 / 0.1).abs() < 1e-9, "{z_var}");
        // A zero baseline is floored at min_rate: finite, positive z.
        let z0 = z_score(5, 100, 0.0, 0.0, KNOWN, 0.001);
        assert!(z0.is_finite() && z0 > 4.0, "{z0}");
        // …and a baseline from few texts makes the same window less surprising.
        assert!(z_score(5, 100, 0.0, 0.0, 500.0, 0.001) < z0 - 1.0);
        // Extreme windows stay finite.
        assert!(z_score(1_000_000, 1_000_000, 0.0, 0.0, 1.0, 0.001).is_finite());
        assert!(z_score(10, 10, 1.0, 0.0, 1.0, 0.001).is_finite());
    }

    #[test]
    fn baseline_starts_as_a_running_mean() {
        let mut s = Series::default();
        for r in [0.1, 0.2, 0.3] {
            s.update_baseline(r, 100, 0.1);
        }
        assert!((s.baseline.unwrap() - 0.2).abs() < 1e-12);
        // Population variance of {0.1, 0.2, 0.3} = 0.00666…
        assert!((s.var - 0.02 / 3.0).abs() < 1e-12, "{}", s.var);
        // A plain mean of 3 × 100 texts: as precise as 300 texts.
        assert!((1.0 / s.s2 - 300.0).abs() < 1e-9, "{}", 1.0 / s.s2);
        // Later windows get weight alpha: the effective size tends to n(2 - a)/a = 1900.
        for _ in 0..500 {
            s.update_baseline(0.2, 100, 0.1);
        }
        assert!((1.0 / s.s2 - 1900.0).abs() < 1e-6, "{}", 1.0 / s.s2);
    }
}
