//! Detector settings and their validation.

use serde::{Deserialize, Serialize};

use crate::MonitorError;

/// Which test decides that a closed window is abnormal.
///
/// Both compare the window's flag rate with the same frozen-during-alerts EWMA baseline and
/// use the same standard deviation (see the crate docs); they differ in how much evidence
/// they need.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Detector {
    /// One window is abnormal when its z-score reaches `z_threshold`. Fast for large spikes,
    /// blind to shifts smaller than about `z_threshold` standard deviations.
    #[default]
    Ewma,
    /// One-sided CUSUM of the per-window z-scores: `S = max(0, S + z - k)`, alarm when
    /// `S >= h`. Accumulates evidence over several windows, so it catches small sustained
    /// shifts (3% → 8%) that a single-window test misses, at the price of a window or two
    /// more delay on big spikes. Use `k = 1, h = 5` (see the crate docs for the measured
    /// trade-off; `k = 0.5` false-alarms often against an estimated baseline).
    Cusum {
        /// Reference value (allowance) in standard deviations, subtracted from every z.
        k: f64,
        /// Decision interval: the accumulated excess z at which an alert opens.
        h: f64,
    },
}

/// Settings of a [`Monitor`](crate::Monitor). Every field has a default, so a config file
/// may name only the ones it changes; unknown fields are rejected so a typo is not silently
/// ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Length of one window in seconds (default 60). Windows are aligned to multiples of this
    /// length since the unix epoch, so every series shares the same windows.
    pub window_secs: u64,
    /// EWMA weight of a new window in the baseline and its variance (default 0.1, i.e. a
    /// memory of roughly 10 windows). Larger adapts faster to legitimate drift and also to
    /// slow attacks.
    pub alpha: f64,
    /// z-score at which a window is abnormal (default 4.0). The main sensitivity knob.
    pub z_threshold: f64,
    /// While an alert is open, a window counts as normal (toward `cooldown_windows`) only
    /// when its z is below this (default 2.0). The hysteresis keeps a spike whose windows
    /// hover around `z_threshold` (small windows, noisy rate) from closing and reopening.
    /// Applies to [`Detector::Ewma`].
    pub clear_z_threshold: f64,
    /// Minimum absolute increase of the rate over the baseline for a window to be abnormal
    /// (default 0.02, i.e. 2 percentage points): statistically significant but tiny changes
    /// on huge windows are not worth a page.
    pub min_rate_increase: f64,
    /// Windows with fewer texts than this never open an alert (default 20).
    pub min_texts: u64,
    /// Closed non-empty windows a series must have seen before it may alert (default 5).
    pub warmup_windows: u32,
    /// Consecutive normal windows that close an open alert (default 2).
    pub cooldown_windows: u32,
    /// Floor on the baseline rate used in the z-score (default 0.001), so that a category
    /// that has never been flagged is not infinitely sensitive to its first flag.
    pub min_rate: f64,
    /// Which test decides a window is abnormal (default [`Detector::Ewma`]).
    pub detector: Detector,
    /// Most distinct policy names tracked (default 256); traffic for further policies is
    /// counted in [`Monitor::dropped_total`](crate::Monitor::dropped_total) but not
    /// monitored, so a caller passing user-chosen names cannot grow memory without bound.
    pub max_policies: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            window_secs: 60,
            alpha: 0.1,
            z_threshold: 4.0,
            clear_z_threshold: 2.0,
            min_rate_increase: 0.02,
            min_texts: 20,
            warmup_windows: 5,
            cooldown_windows: 2,
            min_rate: 0.001,
            detector: Detector::Ewma,
            max_policies: 256,
        }
    }
}

/// Longest accepted window: one week. Longer windows make no sense for spike detection and
/// the limit keeps `window_secs * 1000` far from overflowing.
pub const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;

impl MonitorConfig {
    /// Checks every field, so that a bad config fails at startup instead of producing
    /// NaN z-scores or an alert storm in production.
    pub fn validate(&self) -> Result<(), MonitorError> {
        let bad = |msg: String| Err(MonitorError::InvalidConfig(msg));
        if self.window_secs == 0 || self.window_secs > MAX_WINDOW_SECS {
            return bad(format!(
                "window_secs must be in 1..={MAX_WINDOW_SECS}, got {}",
                self.window_secs
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return bad(format!("alpha must be in (0, 1], got {}", self.alpha));
        }
        if !(self.z_threshold > 0.0 && self.z_threshold.is_finite()) {
            return bad(format!(
                "z_threshold must be positive and finite, got {}",
                self.z_threshold
            ));
        }
        if !(self.clear_z_threshold > 0.0 && self.clear_z_threshold <= self.z_threshold) {
            return bad(format!(
                "clear_z_threshold must be in (0, z_threshold], got {}",
                self.clear_z_threshold
            ));
        }
        if !(self.min_rate_increase >= 0.0 && self.min_rate_increase < 1.0) {
            return bad(format!(
                "min_rate_increase must be in [0, 1), got {}",
                self.min_rate_increase
            ));
        }
        if self.warmup_windows == 0 {
            return bad("warmup_windows must be at least 1 (a baseline is needed)".into());
        }
        if self.cooldown_windows == 0 {
            return bad("cooldown_windows must be at least 1".into());
        }
        if !(self.min_rate > 0.0 && self.min_rate < 0.5) {
            return bad(format!(
                "min_rate must be in (0, 0.5), got {}",
                self.min_rate
            ));
        }
        if self.max_policies == 0 {
            return bad("max_policies must be at least 1".into());
        }
        if let Detector::Cusum { k, h } = self.detector {
            if !(k >= 0.0 && k.is_finite()) {
                return bad(format!("cusum k must be non-negative and finite, got {k}"));
            }
            if !(h > 0.0 && h.is_finite()) {
                return bad(format!("cusum h must be positive and finite, got {h}"));
            }
        }
        Ok(())
    }

    /// Closed windows a series needs before it may alert: `warmup_windows`, and for CUSUM
    /// at least the EWMA's memory `2/alpha` (20 windows at the default), because CUSUM sums
    /// small deviations and so also sums the error of a baseline estimated from a handful
    /// of windows.
    pub(crate) fn warmup_windows_for_detector(&self) -> u32 {
        match self.detector {
            Detector::Ewma => self.warmup_windows,
            Detector::Cusum { .. } => self.warmup_windows.max((2.0 / self.alpha).ceil() as u32),
        }
    }

    /// Window length in milliseconds (valid only after [`validate`](Self::validate)).
    pub(crate) fn window_ms(&self) -> u64 {
        self.window_secs * 1000
    }
}
