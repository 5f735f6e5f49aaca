//! The cascade: the fast tier scores everything; texts whose fast scores
//! fall in an uncertain band go to the encoder tier too, and their final
//! score combines both tiers per category with weights learned on dev.

use serde::{Deserialize, Serialize};
use warden_core::{Classifier, Scores, Taxonomy};
use warden_fast::{backtrack, logistic_loss, FastModel};

use crate::model::EncoderClassifier;
use crate::HeadsError;

/// Format 2 added [`CombineMode`]; format 1 manifests (logistic only) still load.
pub const CASCADE_FORMAT_VERSION: u32 = 2;
pub const CASCADE_KIND: &str = "cascade";

/// How a [`Combiner`] mixes the two tiers' probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombineMode {
    /// `sigmoid(fast · logit(p_fast) + encoder · logit(p_encoder) + bias)`, fitted on dev.
    #[default]
    Logistic,
    /// `fast · p_fast + encoder · p_encoder` with fixed weights (`bias` unused). Nothing is
    /// fitted, so it cannot overfit a dev split that is mostly other domains.
    Mean,
}

/// One category's combination of the fast and encoder probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Combiner {
    pub fast: f32,
    pub encoder: f32,
    pub bias: f32,
    #[serde(default)]
    pub mode: CombineMode,
}

impl Default for Combiner {
    /// Trust the encoder alone.
    fn default() -> Self {
        Combiner { fast: 0.0, encoder: 1.0, bias: 0.0, mode: CombineMode::Logistic }
    }
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Combiner {
    pub fn apply(&self, p_fast: f32, p_encoder: f32) -> f32 {
        match self.mode {
            CombineMode::Logistic => sigmoid(self.fast * logit(p_fast) + self.encoder * logit(p_encoder) + self.bias),
            CombineMode::Mean => (self.fast * p_fast + self.encoder * p_encoder).clamp(0.0, 1.0),
        }
    }

    /// The fixed mean `(1 - w) · p_fast + w · p_encoder`.
    pub fn mean(encoder_weight: f32) -> Self {
        let w = encoder_weight.clamp(0.0, 1.0);
        Combiner { fast: 1.0 - w, encoder: w, bias: 0.0, mode: CombineMode::Mean }
    }

    /// Logistic regression on `(p_fast, p_encoder, target)` by Newton's
    /// method with a small ridge; falls back to the encoder alone when the
    /// rows cannot support a fit (one class only).
    pub fn fit(rows: &[(f32, f32, f32)]) -> Self {
        let pos: f64 = rows.iter().map(|r| r.2 as f64).sum();
        if pos < 1.0 || pos > rows.len() as f64 - 1.0 {
            return Combiner::default();
        }
        let ridge = 1e-3 * rows.len() as f64;
        let xs: Vec<([f64; 3], f64)> = rows.iter().map(|&(pf, pe, t)| ([logit(pf) as f64, logit(pe) as f64, 1.0], t as f64)).collect();
        // Penalised negative log-likelihood, for the line search.
        let loss = |w: &[f64; 3]| -> f64 {
            let nll: f64 = xs.iter().map(|(x, t)| logistic_loss(w[0] * x[0] + w[1] * x[1] + w[2] * x[2], *t)).sum();
            nll + 0.5 * ridge * (w[0] * w[0] + w[1] * w[1])
        };
        let mut w = [0.0f64, 1.0, 0.0];
        let mut current = loss(&w);
        for _ in 0..50 {
            let mut g = [0.0f64; 3];
            let mut h = [[0.0f64; 3]; 3];
            for (x, t) in &xs {
                let z = w[0] * x[0] + w[1] * x[1] + w[2];
                let p = 1.0 / (1.0 + (-z).exp());
                let d = p - t;
                let s = (p * (1.0 - p)).max(1e-12);
                for i in 0..3 {
                    g[i] += d * x[i];
                    for j in 0..3 {
                        h[i][j] += s * x[i] * x[j];
                    }
                }
            }
            for i in 0..2 {
                g[i] += ridge * w[i];
                h[i][i] += ridge;
            }
            h[2][2] += 1e-9;
            let Some(step) = solve3(h, g) else { break };
            // Damped Newton (a plain step on nearly separable rows overshoots).
            let at = |s: f64| [w[0] - s * step[0], w[1] - s * step[1], w[2] - s * step[2]];
            let Some((scale, l)) = backtrack(current, |s| loss(&at(s))) else { break };
            let moved: f64 = step.iter().map(|d| (scale * d).abs()).sum();
            w = at(scale);
            current = l;
            if moved < 1e-9 {
                break;
            }
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Combiner::default();
        }
        Combiner { fast: w[0] as f32, encoder: w[1] as f32, bias: w[2] as f32, mode: CombineMode::Logistic }
    }
}

fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    if d.abs() < 1e-18 {
        return None;
    }
    let mut x = [0.0; 3];
    for (i, xi) in x.iter_mut().enumerate() {
        let mut m = a;
        for r in 0..3 {
            m[r][i] = b[r];
        }
        *xi = det(m) / d;
    }
    Some(x)
}

/// Which texts go to the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// A text is escalated when some category's fast score is in `[low, high]`.
    pub low: f32,
    pub high: f32,
    /// Escalate everything.
    #[serde(default)]
    pub always: bool,
}

impl Band {
    pub fn escalates(&self, fast: &[f32]) -> bool {
        self.always || fast.iter().any(|&p| p >= self.low && p <= self.high)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CascadeManifest {
    pub format_version: u32,
    pub kind: String,
    pub name: String,
    pub taxonomy: Taxonomy,
    pub band: Band,
    pub combiner: Vec<Combiner>,
    /// Component directories, relative to the cascade's own directory.
    pub fast: String,
    pub encoder: String,
    /// Dev accuracy against escalation rate as the band widens.
    #[serde(default)]
    pub curve: serde_json::Value,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

impl CascadeManifest {
    pub fn validate(&self) -> Result<(), HeadsError> {
        if self.kind != CASCADE_KIND || !(1..=CASCADE_FORMAT_VERSION).contains(&self.format_version) {
            return Err(HeadsError::Format(format!(
                "not a cascade manifest of format 1 to {CASCADE_FORMAT_VERSION} (kind {:?}, format {})",
                self.kind, self.format_version
            )));
        }
        if self.combiner.len() != self.taxonomy.len() {
            return Err(HeadsError::Format("one combiner per category expected".into()));
        }
        Ok(())
    }
}

/// Combines fast and encoder scores for escalated texts.
pub fn combine(manifest: &CascadeManifest, fast: &[f32], encoder: &[f32]) -> Scores {
    let mut s: Scores = manifest.combiner.iter().zip(fast.iter().zip(encoder)).map(|(c, (&f, &e))| c.apply(f, e)).collect();
    manifest.taxonomy.enforce_scores(&mut s);
    s
}

/// Counters of a cascade, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct CascadeCounters {
    pub texts: std::sync::atomic::AtomicU64,
    pub escalated: std::sync::atomic::AtomicU64,
}

pub struct CascadeClassifier {
    pub manifest: CascadeManifest,
    pub fast: FastModel,
    pub encoder: EncoderClassifier,
    pub counters: CascadeCounters,
}

impl CascadeClassifier {
    pub fn new(manifest: CascadeManifest, fast: FastModel, encoder: EncoderClassifier) -> Result<Self, HeadsError> {
        manifest.validate()?;
        if fast.taxonomy().codes().ne(manifest.taxonomy.codes())
            || encoder.taxonomy().codes().ne(manifest.taxonomy.codes())
        {
            return Err(HeadsError::Format("cascade components use different taxonomies".into()));
        }
        Ok(CascadeClassifier { manifest, fast, encoder, counters: CascadeCounters::default() })
    }

    /// Scores with the band overridden (for curves and benchmarks).
    pub fn predict_with_band(&self, texts: &[&str], band: Band) -> Result<(Vec<Scores>, usize), HeadsError> {
        let mut scores: Vec<Scores> = texts.iter().map(|t| self.fast.score_one(t)).collect();
        let idx: Vec<usize> = (0..texts.len()).filter(|&i| band.escalates(&scores[i])).collect();
        if !idx.is_empty() {
            let sub: Vec<&str> = idx.iter().map(|&i| texts[i]).collect();
            let enc = self.encoder.predict_detailed(&sub)?;
            for (&i, d) in idx.iter().zip(enc) {
                scores[i] = combine(&self.manifest, &scores[i], &d.scores);
            }
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.texts.fetch_add(texts.len() as u64, Relaxed);
        self.counters.escalated.fetch_add(idx.len() as u64, Relaxed);
        Ok((scores, idx.len()))
    }
}

impl Classifier for CascadeClassifier {
    fn taxonomy(&self) -> &Taxonomy {
        &self.manifest.taxonomy
    }
    fn name(&self) -> &str {
        &self.manifest.name
    }
    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        self.predict_with_band(texts, self.manifest.band)
            .map(|(s, _)| s)
            .map_err(|e| warden_core::Error::Classifier(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combiner_learns_to_trust_the_informative_tier() {
        // The encoder's score decides the label; the fast score is noise.
        let mut rows = Vec::new();
        let mut s = 7u64;
        for i in 0..2000 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            let noise = (s >> 40) as f32 / (1u64 << 24) as f32;
            let y = (i % 3 == 0) as u8 as f32;
            let pe = if y > 0.5 { 0.6 + 0.3 * noise } else { 0.1 + 0.3 * noise };
            let pf = 0.05 + 0.9 * ((s >> 20) & 0xffff) as f32 / 65536.0;
            rows.push((pf, pe, y));
        }
        let c = Combiner::fit(&rows);
        assert!(c.encoder > 1.0, "{c:?}");
        assert!(c.fast.abs() < 0.5 * c.encoder, "{c:?}");
    }

    #[test]
    fn separable_rows_do_not_send_the_weights_to_infinity() {
        // The encoder separates the classes perfectly; a plain Newton step overshoots.
        let mut rows = Vec::new();
        for i in 0..400 {
            let y = (i % 4 == 0) as u8 as f32;
            let pe = if y > 0.5 { 0.9 + 0.0002 * (i % 50) as f32 } else { 0.02 + 0.0004 * (i % 90) as f32 };
            let pf = 0.3 + 0.001 * (i % 300) as f32;
            rows.push((pf, pe, y));
        }
        let c = Combiner::fit(&rows);
        assert!(c.fast.is_finite() && c.encoder.is_finite() && c.bias.is_finite(), "{c:?}");
        assert!(c.fast.abs() < 100.0 && c.encoder.abs() < 100.0 && c.bias.abs() < 1000.0, "{c:?}");
        // And it still ranks by the encoder.
        assert!(c.apply(0.5, 0.95) > c.apply(0.5, 0.05), "{c:?}");
    }

    #[test]
    fn one_class_falls_back_to_the_encoder() {
        let rows = vec![(0.2, 0.3, 0.0); 10];
        assert_eq!(Combiner::fit(&rows), Combiner::default());
    }

    #[test]
    fn mean_mode_and_format_1_manifests() {
        let c = Combiner::mean(0.25);
        assert!((c.apply(0.8, 0.4) - 0.7).abs() < 1e-6);
        assert_eq!(Combiner::mean(7.0).apply(0.8, 0.4), 0.4);
        // A format-1 combiner has no mode: it reads as logistic and scores as before.
        let old: Combiner = serde_json::from_str(r#"{"fast": 0.5, "encoder": 1.0, "bias": -0.2}"#).unwrap();
        assert_eq!(old.mode, CombineMode::Logistic);
        let want = sigmoid(0.5 * logit(0.3) + logit(0.6) - 0.2);
        assert!((old.apply(0.3, 0.6) - want).abs() < 1e-6);
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["mode"], "mean");
    }

    #[test]
    fn band_escalation() {
        let b = Band { low: 0.2, high: 0.8, always: false };
        assert!(b.escalates(&[0.01, 0.5]));
        assert!(!b.escalates(&[0.01, 0.95]));
        assert!(Band { always: true, ..b }.escalates(&[0.0]));
    }
}
