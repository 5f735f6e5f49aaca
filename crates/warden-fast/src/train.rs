use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use warden_core::{Label, Taxonomy};

use crate::features::{FeatureConfig, Featurizer};
use crate::model::{combined_logits, normalizer_id, sigmoid, Calibration, FastModel, Manifest};

/// One training row: text, one label per category (unknown ones are masked out of the
/// loss), and a row weight (e.g. to balance sources).
#[derive(Debug, Clone, Copy)]
pub struct TrainExample<'a> {
    pub text: &'a str,
    pub labels: &'a [Label],
    pub weight: f32,
    /// Weight of a dev row when fitting calibration (ignored for train rows). Lets
    /// calibration lean on the deployment domain while early stopping uses all of dev.
    pub calibration_weight: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub name: String,
    pub features: FeatureConfig,
    /// Maximum passes over the training data; each head stops on its own when its dev
    /// loss has not improved for `patience` epochs, keeping its best epoch.
    pub max_epochs: usize,
    pub patience: usize,
    /// AdaGrad step size.
    pub learning_rate: f32,
    /// L2 penalty, applied lazily to the weights a row touches.
    pub l2: f32,
    /// Positive rows of category c are weighted by `sqrt(neg/pos)`, clamped to
    /// `[1, max_pos_weight]`, so rare categories are not drowned by negatives.
    pub max_pos_weight: f32,
    pub seed: u64,
    /// Heads trained per category from different shuffles (seeds), then averaged. For a
    /// linear head, averaging weights is exactly averaging the members' logits, so this is
    /// an ensemble at no scoring cost that removes most of SGD's order noise.
    #[serde(default = "one")]
    pub ensemble: usize,
    /// Allow scoring a subcategory on its own logit plus its ancestors' (H2 with H's...).
    /// Subcategories have few positives of their own, and their parent's evidence is
    /// relevant by construction (every H2 positive is an H positive) — but it can also
    /// drown the subcategory's own signal (S's logit swamps "minors" for S3). So it is
    /// chosen per subcategory: combined only when dev has at least
    /// [`MIN_DEV_POSITIVES_TO_COMBINE`] positives for it and the combined logit ranks them
    /// better (higher dev AUPRC).
    #[serde(default)]
    pub combine_parent_logits: bool,
}

fn one() -> usize {
    1
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "warden-fast".into(),
            features: FeatureConfig::default(),
            max_epochs: 12,
            patience: 2,
            learning_rate: 0.05,
            l2: 1e-6,
            max_pos_weight: 8.0,
            seed: 20231,
            ensemble: 1,
            combine_parent_logits: true,
        }
    }
}

/// Fewest dev positives on which [`TrainConfig::combine_parent_logits`] may switch a
/// subcategory to its combined logit.
pub const MIN_DEV_POSITIVES_TO_COMBINE: usize = 30;

/// What happened to each head.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadReport {
    pub code: String,
    pub train_rows: usize,
    pub train_positives: f64,
    pub dev_rows: usize,
    pub pos_weight: f32,
    /// Best epoch of each ensemble member.
    pub best_epoch: Vec<usize>,
    pub epochs_run: Vec<usize>,
    /// Dev loss per epoch of each ensemble member.
    pub dev_loss_per_epoch: Vec<Vec<f64>>,
    pub calibration: Calibration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub heads: Vec<HeadReport>,
    pub featurize_seconds: f64,
    pub train_seconds: f64,
    pub train_rows: usize,
    pub dev_rows: usize,
}

/// Sparse rows in compressed form: features of row r are `idx[off[r]..off[r+1]]`, all
/// with value `scale[r]` (= 1/sqrt(#features), so long and short texts are comparable).
struct Csr {
    off: Vec<usize>,
    idx: Vec<u32>,
    scale: Vec<f32>,
}

impl Csr {
    fn build(f: &Featurizer, rows: &[TrainExample<'_>]) -> Self {
        let per_row: Vec<Vec<u32>> = rows
            .par_iter()
            .map(|r| {
                let mut v = Vec::new();
                f.features_into(&crate::norm::normalize_text(r.text), &mut v);
                v
            })
            .collect();
        let mut off = Vec::with_capacity(rows.len() + 1);
        off.push(0);
        let mut idx = Vec::with_capacity(per_row.iter().map(Vec::len).sum());
        let mut scale = Vec::with_capacity(rows.len());
        for v in per_row {
            scale.push(if v.is_empty() { 0.0 } else { 1.0 / (v.len() as f32).sqrt() });
            idx.extend_from_slice(&v);
            off.push(idx.len());
        }
        Csr { off, idx, scale }
    }

    #[inline]
    fn row(&self, r: usize) -> (&[u32], f32) {
        (&self.idx[self.off[r]..self.off[r + 1]], self.scale[r])
    }
}

/// One category's linear head.
struct Head {
    w: Vec<f32>,
    b: f32,
}

impl Head {
    #[inline]
    fn logit(&self, feats: &[u32], scale: f32) -> f32 {
        let mut s = 0.0;
        for &i in feats {
            s += self.w[i as usize];
        }
        s * scale + self.b
    }
}

/// Weighted binary cross-entropy with a positive-class weight, for soft targets.
#[inline]
fn bce(p: f32, y: f32, pos_weight: f32) -> f64 {
    let p = p.clamp(1e-7, 1.0 - 1e-7) as f64;
    -(pos_weight as f64 * y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
}

/// Trains one independent head per category of `taxonomy` on `train`, stopping each on
/// its own dev loss, then calibrates each on `dev`. `progress` is called after every
/// (category, epoch) with the category's index, the epoch and its dev loss.
pub fn train(
    taxonomy: &Taxonomy,
    train: &[TrainExample<'_>],
    dev: &[TrainExample<'_>],
    cfg: &TrainConfig,
    progress: &(dyn Fn(usize, usize, f64) + Sync),
) -> (FastModel, TrainReport) {
    let t0 = Instant::now();
    let featurizer = Featurizer::new(cfg.features.clone());
    let xtr = Csr::build(&featurizer, train);
    let xdev = Csr::build(&featurizer, dev);
    let featurize_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let dim = featurizer.dim();

    let heads: Vec<(Head, HeadReport)> = (0..taxonomy.len())
        .into_par_iter()
        .map(|c| train_head(c, taxonomy, train, dev, &xtr, &xdev, dim, cfg, progress))
        .collect();

    let mut heads = heads;
    // Calibrate each head on dev (Platt scaling) over the logit it is scored with: its own,
    // plus its ancestors' when `combine_parent_logits` is on.
    let raw_dev: Vec<Vec<f32>> = (0..dev.len())
        .into_par_iter()
        .map(|r| {
            let (f, sc) = xdev.row(r);
            heads.iter().map(|(h, _)| h.logit(f, sc)).collect()
        })
        .collect();
    let all = vec![true; taxonomy.len()];
    let combine: Vec<bool> = (0..taxonomy.len())
        .map(|c| {
            if !cfg.combine_parent_logits || taxonomy.parent_of(c).is_none() {
                return false;
            }
            let (mut own, mut comb, mut labels) = (Vec::new(), Vec::new(), Vec::new());
            for (ex, raw) in dev.iter().zip(&raw_dev) {
                if let Some(h) = ex.labels[c].hard() {
                    own.push(raw[c]);
                    comb.push(combined_logits(taxonomy, raw, &all)[c]);
                    labels.push(h);
                }
            }
            labels.iter().filter(|&&b| b).count() >= MIN_DEV_POSITIVES_TO_COMBINE
                && warden_eval::auprc(&comb, &labels) > warden_eval::auprc(&own, &labels)
        })
        .collect();
    let dev_logits: Vec<Vec<f32>> = raw_dev.iter().map(|raw| combined_logits(taxonomy, raw, &combine)).collect();
    for (c, (_, report)) in heads.iter_mut().enumerate() {
        let z: Vec<(f32, f32, f32)> = dev
            .iter()
            .enumerate()
            .filter_map(|(r, ex)| ex.labels[c].target().map(|y| (dev_logits[r][c], y, ex.calibration_weight)))
            .filter(|&(_, _, w)| w > 0.0)
            .collect();
        report.calibration = fit_platt(&z);
    }

    let cats = taxonomy.len();
    let mut weights = vec![0.0f32; dim * cats];
    for (c, (h, _)) in heads.iter().enumerate() {
        for (i, &x) in h.w.iter().enumerate() {
            weights[i * cats + c] = x;
        }
    }
    let manifest = Manifest {
        format_version: 1,
        kind: "warden-fast".into(),
        name: cfg.name.clone(),
        taxonomy: taxonomy.clone(),
        normalizer: normalizer_id(),
        features: cfg.features.clone(),
        bias: heads.iter().map(|(h, _)| h.b).collect(),
        combine_parent_logits: combine,
        calibration: heads.iter().map(|(_, r)| r.calibration).collect(),
        static_probe: None,
        weights_sha256: String::new(),
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
    };
    let report = TrainReport {
        heads: heads.into_iter().map(|(_, r)| r).collect(),
        featurize_seconds,
        train_seconds: t1.elapsed().as_secs_f64(),
        train_rows: train.len(),
        dev_rows: dev.len(),
    };
    (FastModel::from_parts(manifest, weights), report)
}

#[allow(clippy::too_many_arguments)]
fn train_head(
    c: usize,
    taxonomy: &Taxonomy,
    train: &[TrainExample<'_>],
    dev: &[TrainExample<'_>],
    xtr: &Csr,
    xdev: &Csr,
    dim: usize,
    cfg: &TrainConfig,
    progress: &(dyn Fn(usize, usize, f64) + Sync),
) -> (Head, HeadReport) {
    let known = |rows: &[TrainExample<'_>]| -> Vec<(usize, f32, f32)> {
        rows.iter()
            .enumerate()
            .filter_map(|(r, ex)| ex.labels[c].target().map(|y| (r, y, ex.weight)))
            .filter(|&(_, _, w)| w > 0.0)
            .collect()
    };
    let mut rows = known(train);
    let dev_rows = known(dev);
    let (mut pos, mut neg) = (0.0f64, 0.0f64);
    for &(_, y, w) in &rows {
        pos += (y * w) as f64;
        neg += ((1.0 - y) * w) as f64;
    }
    let pos_weight = if pos > 0.0 { ((neg / pos).sqrt() as f32).clamp(1.0, cfg.max_pos_weight) } else { 1.0 };

    // Start the bias at the (weighted) prior log-odds. A head with no labelled rows at all
    // cannot learn anything: it predicts ~0 rather than an uninformative 0.5, which would
    // otherwise be pushed up into its parent by the hierarchy.
    let b0 = if rows.is_empty() {
        -12.0
    } else {
        ((pos * pos_weight as f64 + 0.5) / (neg + 0.5)).ln() as f32
    };
    let mut head = Head { w: vec![0.0; dim], b: b0 };
    if rows.is_empty() {
        let report = HeadReport {
            code: taxonomy.categories()[c].code.clone(),
            train_rows: 0,
            train_positives: 0.0,
            dev_rows: dev_rows.len(),
            pos_weight,
            best_epoch: Vec::new(),
            epochs_run: Vec::new(),
            dev_loss_per_epoch: Vec::new(),
            calibration: Calibration::default(),
        };
        return (head, report);
    }
    let members = cfg.ensemble.max(1);
    let mut sum_w = vec![0.0f32; dim];
    let mut sum_b = 0.0f32;
    let (mut best_epochs, mut runs, mut all_losses) = (Vec::new(), Vec::new(), Vec::new());
    for member in 0..members {
        let seed = cfg.seed ^ (c as u64).wrapping_mul(0x9E37_79B9) ^ (member as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let (w, b, best_epoch, epochs_run, losses) =
            train_member(&mut rows, &dev_rows, xtr, xdev, dim, b0, pos_weight, seed, cfg, &|e, l| progress(c, e, l));
        for (s, x) in sum_w.iter_mut().zip(&w) {
            *s += x;
        }
        sum_b += b;
        best_epochs.push(best_epoch);
        runs.push(epochs_run);
        all_losses.push(losses);
    }
    let k = members as f32;
    head.w = sum_w.into_iter().map(|x| x / k).collect();
    head.b = sum_b / k;
    let report = HeadReport {
        code: taxonomy.categories()[c].code.clone(),
        train_rows: rows.len(),
        train_positives: rows.iter().map(|&(_, y, _)| y as f64).sum(),
        dev_rows: dev_rows.len(),
        pos_weight,
        best_epoch: best_epochs,
        epochs_run: runs,
        dev_loss_per_epoch: all_losses,
        calibration: Calibration::default(),
    };
    (head, report)
}

/// One SGD run of one head: AdaGrad over shuffled rows, keeping the epoch with the best
/// dev loss. Returns (weights, bias, best epoch, epochs run, dev loss per epoch).
#[allow(clippy::too_many_arguments)]
fn train_member(
    rows: &mut [(usize, f32, f32)],
    dev_rows: &[(usize, f32, f32)],
    xtr: &Csr,
    xdev: &Csr,
    dim: usize,
    b0: f32,
    pos_weight: f32,
    seed: u64,
    cfg: &TrainConfig,
    progress: &dyn Fn(usize, f64),
) -> (Vec<f32>, f32, usize, usize, Vec<f64>) {
    let mut head = Head { w: vec![0.0; dim], b: b0 };
    let mut g2 = vec![0.0f32; dim];
    let mut gb2 = 0.0f32;
    let mut best = (f64::INFINITY, 0usize, Vec::new(), 0.0f32);
    let mut losses = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lr = cfg.learning_rate;
    let dev_loss = |h: &Head| -> f64 {
        let (mut s, mut wsum) = (0.0, 0.0);
        for &(r, y, w) in dev_rows {
            let (f, sc) = xdev.row(r);
            s += w as f64 * bce(sigmoid(h.logit(f, sc)), y, pos_weight);
            wsum += w as f64;
        }
        if wsum > 0.0 { s / wsum } else { 0.0 }
    };
    let mut epochs_run = 0;
    for epoch in 1..=cfg.max_epochs.max(1) {
        rows.shuffle(&mut rng);
        for &(r, y, w) in rows.iter() {
            let (f, sc) = xtr.row(r);
            let p = sigmoid(head.logit(f, sc));
            let g = w * (p * (pos_weight * y + 1.0 - y) - pos_weight * y);
            for &i in f {
                let i = i as usize;
                let gi = g * sc + cfg.l2 * head.w[i];
                g2[i] += gi * gi;
                head.w[i] -= lr * gi / (g2[i].sqrt() + 1e-6);
            }
            gb2 += g * g;
            head.b -= lr * g / (gb2.sqrt() + 1e-6);
        }
        epochs_run = epoch;
        let loss = if dev_rows.is_empty() { 0.0 } else { dev_loss(&head) };
        losses.push(loss);
        progress(epoch, loss);
        if dev_rows.is_empty() {
            continue;
        }
        if loss < best.0 {
            best = (loss, epoch, head.w.clone(), head.b);
        } else if epoch - best.1 >= cfg.patience {
            break;
        }
    }
    let best_epoch = if best.2.is_empty() { epochs_run } else { best.1 };
    if !best.2.is_empty() {
        head.w = best.2;
        head.b = best.3;
    }
    (head.w, head.b, best_epoch, epochs_run, losses)
}

/// Strength of the Gaussian prior that keeps the Platt slope near 1, in units of one
/// (weighted) dev row. Negligible on a real dev set (thousands of rows); on a tiny one whose
/// logits barely vary it stops Newton's method from running the slope off to 1e10, which
/// would turn scores into 0/1 steps (seen in the mislabel hunt's small hold-outs).
pub const PLATT_SLOPE_PRIOR: f64 = 1.0;

/// `-t·log σ(z) - (1-t)·log(1-σ(z))`, written as `softplus(z) - t·z` so it does not
/// overflow for large `|z|`. The loss of every logistic fit here (Platt, the cascade's
/// combiner), evaluated by their line searches.
pub fn logistic_loss(z: f64, t: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z
}

/// The line search of a damped Newton step: the first of the scales 1, 1/2, 1/4, … (40
/// halvings) at which `loss_at(scale)` is finite and not above `current`, with that loss;
/// `None` when none is. Full Newton steps overshoot where the sigmoid saturates (nearly
/// separable rows): undamped, Platt once sent an encoder head's `b` to -2e11, and the
/// cascade's combiner a bias to -2.6e11.
pub fn backtrack(current: f64, mut loss_at: impl FnMut(f64) -> f64) -> Option<(f64, f64)> {
    let mut scale = 1.0;
    for _ in 0..40 {
        let l = loss_at(scale);
        if l.is_finite() && l <= current {
            return Some((scale, l));
        }
        scale *= 0.5;
    }
    None
}

/// Fits `p = sigmoid(a z + b)` by damped Newton on weighted log-loss, with Platt's
/// smoothed targets so a category with few dev positives is not calibrated to 0/1, and a
/// weak prior pulling `a` towards 1 ([`PLATT_SLOPE_PRIOR`]).
/// Falls back to the identity when there is nothing to fit.
pub fn fit_platt(rows: &[(f32, f32, f32)]) -> Calibration {
    let (mut npos, mut nneg) = (0.0f64, 0.0f64);
    for &(_, y, w) in rows {
        npos += (y * w) as f64;
        nneg += ((1.0 - y) * w) as f64;
    }
    if npos <= 0.0 || nneg <= 0.0 {
        return Calibration::default();
    }
    // Platt (1999): targets (N+ + 1)/(N+ + 2) and 1/(N- + 2), in weighted counts.
    let hi = (npos + 1.0) / (npos + 2.0);
    let lo = 1.0 / (nneg + 2.0);
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut current = platt_loss(rows, hi, lo, a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
            (PLATT_SLOPE_PRIOR * (a - 1.0), 0.0, 1e-9 + PLATT_SLOPE_PRIOR, 0.0, 1e-9);
        for &(z, y, w) in rows {
            let (z, w) = (z as f64, w as f64);
            let t = y as f64 * hi + (1.0 - y as f64) * lo;
            let p = 1.0 / (1.0 + (-(a * z + b)).exp());
            let d = w * (p - t);
            let h = w * (p * (1.0 - p)).max(1e-12);
            ga += d * z;
            gb += d;
            haa += h * z * z;
            hab += h * z;
            hbb += h;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        let Some((step, l)) = backtrack(current, |s| platt_loss(rows, hi, lo, a - s * da, b - s * db)) else { break };
        current = l;
        a -= step * da;
        b -= step * db;
        if step * (da.abs() + db.abs()) < 1e-9 {
            break;
        }
    }
    if !a.is_finite() || !b.is_finite() || a <= 0.0 {
        return Calibration::default();
    }
    Calibration { a: a as f32, b: b as f32 }
}

/// The objective [`fit_platt`] minimises: weighted log-loss of `sigmoid(a z + b)` against
/// the smoothed targets, plus the slope prior.
fn platt_loss(rows: &[(f32, f32, f32)], hi: f64, lo: f64, a: f64, b: f64) -> f64 {
    let mut loss = 0.5 * PLATT_SLOPE_PRIOR * (a - 1.0) * (a - 1.0);
    for &(z, y, w) in rows {
        let t = y as f64 * hi + (1.0 - y as f64) * lo;
        loss += w as f64 * logistic_loss(a * z as f64 + b, t);
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_stays_finite_on_saturated_well_separated_logits() {
        // A head whose logits separate the classes by a wide margin, as a confident MLP
        // head does on a small dev slice: 57 positives near +12, 458 negatives near -15,
        // a few negatives overlapping. Undamped Newton sent b to -2e11 here.
        let mut rows = Vec::new();
        for i in 0..57 {
            rows.push((10.0 + (i % 7) as f32 * 0.5, 1.0, 1.0));
        }
        for i in 0..458 {
            let z = if i % 50 == 0 { 11.0 } else { -15.0 - (i % 11) as f32 };
            rows.push((z, 0.0, 1.0));
        }
        let c = fit_platt(&rows);
        assert!(c.a.is_finite() && c.b.is_finite() && c.b.abs() < 100.0, "{c:?}");
        // Calibrated scores still rank: positives above the bulk of the negatives.
        let p = |z: f32| sigmoid(c.a * z + c.b);
        assert!(p(12.0) > p(-15.0) + 0.5, "{c:?}: {} vs {}", p(12.0), p(-15.0));
    }

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Labels drawn deterministically from sigmoid(2z - 1).
        let mut rows = Vec::new();
        for i in 0..4000 {
            let z = (i as f32 / 4000.0) * 8.0 - 4.0;
            let p = sigmoid(2.0 * z - 1.0);
            let frac = ((i * 7919) % 1000) as f32 / 1000.0;
            rows.push((z, if frac < p { 1.0 } else { 0.0 }, 1.0));
        }
        let c = fit_platt(&rows);
        assert!((c.a - 2.0).abs() < 0.3, "{c:?}");
        assert!((c.b + 1.0).abs() < 0.3, "{c:?}");
    }

    #[test]
    fn platt_slope_stays_bounded_when_logits_barely_vary() {
        // Four dev rows, perfectly separated by a tiny logit difference: without the prior
        // the slope runs away towards infinity.
        let rows = [(0.010, 1.0, 1.0), (0.011, 1.0, 1.0), (0.000, 0.0, 1.0), (0.001, 0.0, 1.0)];
        let c = fit_platt(&rows);
        assert!(c.a.is_finite() && c.a < 50.0, "{c:?}");
    }

    #[test]
    fn platt_without_both_classes_is_identity() {
        assert_eq!(fit_platt(&[(1.0, 1.0, 1.0)]), Calibration::default());
        assert_eq!(fit_platt(&[]), Calibration::default());
    }
}
