//! Training the heads on pooled encoder vectors (frozen encoder), with
//! masked BCE, per-head early stopping on dev AUPRC, Platt calibration and,
//! optionally, Wasserstein domain-adversarial training (paper section 3.4).

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use warden_core::Label;
use warden_fast::{fit_platt, Calibration};

use crate::heads::{clip_vars, Critic, Heads, HeadsConfig};

/// Rows of pooled vectors with their labels.
#[derive(Debug, Clone, Default)]
pub struct HeadData {
    pub dim: usize,
    /// `rows × dim`, row-major.
    pub x: Vec<f32>,
    /// Per row, one label per category.
    pub labels: Vec<Vec<Label>>,
    /// Per row training weight (source balancing); 1.0 when in doubt.
    pub weights: Vec<f32>,
    /// Per row domain (source) index for [`HeadTrainConfig::domain_offsets`]; may be
    /// empty when that is off.
    pub domains: Vec<u32>,
}

impl HeadData {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
    fn batch(&self, idx: &[usize], dev: &Device) -> Result<Tensor> {
        let mut v = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            v.extend_from_slice(self.row(i));
        }
        Tensor::from_vec(v, (idx.len(), self.dim), dev)
    }
}

/// Wasserstein domain-adversarial training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WdannConfig {
    /// Weight of the Wasserstein term in the heads' loss (λ = 0.01 in the paper).
    pub lambda: f64,
    /// Critic weights are clipped to `[-clip, clip]` (0.01 in the paper).
    pub clip: f64,
    pub critic_hidden: usize,
    /// Critic updates per heads update.
    pub critic_steps: usize,
    pub critic_lr: f64,
}

impl Default for WdannConfig {
    fn default() -> Self {
        WdannConfig { lambda: 0.01, clip: 0.01, critic_hidden: 300, critic_steps: 5, critic_lr: 5e-4 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadTrainConfig {
    pub hidden: usize,
    pub dropout: f32,
    pub projection: bool,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop when no head has improved its dev AUPRC for this many epochs.
    pub patience: usize,
    /// Cap on the per-category positive-class weight `neg/pos`.
    pub max_pos_weight: f32,
    pub seed: u64,
    pub wdann: Option<WdannConfig>,
    /// Learn one intercept per (domain, category) during training, for domains with both
    /// positives and negatives of that category, so a source's base rate is not learned
    /// as the style of its embeddings. Scoring uses `domain_reference`'s intercepts (none:
    /// the heads' own bias). See docs/encoder-tier.md.
    #[serde(default)]
    pub domain_offsets: bool,
    #[serde(default)]
    pub domain_reference: Option<u32>,
}

impl Default for HeadTrainConfig {
    fn default() -> Self {
        HeadTrainConfig {
            hidden: 256,
            dropout: 0.1,
            projection: false,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            batch_size: 256,
            max_epochs: 30,
            patience: 4,
            max_pos_weight: 10.0,
            seed: 13,
            wdann: None,
            domain_offsets: false,
            domain_reference: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    /// Dev AUPRC per category (None: no dev positives).
    pub dev_auprc: Vec<Option<f64>>,
    /// Mean critic estimate of the Wasserstein distance (WDANN only).
    pub wasserstein: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadTrainReport {
    pub epochs: Vec<EpochReport>,
    /// Per category, the epoch whose parameters were kept.
    pub best_epoch: Vec<usize>,
    pub train_rows: usize,
    pub dev_rows: usize,
    pub seconds: f64,
    /// Learned intercepts, `[domain][category]` (empty without domain offsets). The
    /// reference domain's are already folded into the calibration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain_offsets: Vec<Vec<f32>>,
}

/// Numerically stable BCE with logits, elementwise.
fn bce_logits(z: &Tensor, t: &Tensor) -> Result<Tensor> {
    let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    z.relu()? - (z * t)? + softplus
}

/// Logits `[rows, C]` of `data` in chunks.
pub fn predict_logits(heads: &Heads, data: &HeadData, dev: &Device) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(data.rows());
    let idx: Vec<usize> = (0..data.rows()).collect();
    for part in idx.chunks(4096) {
        let x = data.batch(part, dev)?;
        out.extend(heads.forward(&x, false)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

fn category_columns(data: &HeadData, logits: &[Vec<f32>], c: usize) -> (Vec<f32>, Vec<bool>) {
    data.labels
        .iter()
        .zip(logits)
        .filter_map(|(l, z)| l[c].hard().map(|h| (z[c], h)))
        .unzip()
}

/// Trains heads; returns them with per-category Platt calibration fitted on
/// dev logits.
pub fn train_heads(
    cfg: &HeadTrainConfig,
    train: &HeadData,
    dev_data: &HeadData,
    target_domain: Option<&HeadData>,
    init_projection: Option<(Tensor, Tensor)>,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<(Heads, Vec<Calibration>, HeadTrainReport)> {
    let t0 = Instant::now();
    let device = Device::Cpu;
    let cats = train.labels.first().map_or(0, Vec::len);
    if train.rows() == 0 || cats == 0 {
        candle_core::bail!("no training rows");
    }
    let hc = HeadsConfig {
        input: train.dim,
        hidden: cfg.hidden,
        categories: cats,
        dropout: cfg.dropout,
        projection: cfg.projection || cfg.wdann.is_some(),
    };
    let mut heads = Heads::new(hc, cfg.seed, init_projection, &device)?;
    let vars = heads.make_trainable()?;

    // Targets, masks and per-category positive weights.
    let n = train.rows();
    let mut target = vec![0f32; n * cats];
    let mut mask = vec![0f32; n * cats];
    let (mut pos, mut neg) = (vec![0f64; cats], vec![0f64; cats]);
    for (r, labels) in train.labels.iter().enumerate() {
        for (c, l) in labels.iter().enumerate() {
            if let Some(t) = l.target() {
                target[r * cats + c] = t;
                mask[r * cats + c] = train.weights[r];
                pos[c] += t as f64;
                neg[c] += 1.0 - t as f64;
            }
        }
    }
    let pw: Vec<f32> =
        (0..cats).map(|c| if pos[c] > 0.0 { ((neg[c] / pos[c]) as f32).clamp(1.0, cfg.max_pos_weight) } else { 1.0 }).collect();
    let pw_t = Tensor::from_vec(pw.clone(), (1, cats), &device)?;

    // Domain intercepts, `[domains, cats]`, started at each (domain, category)'s prior
    // log-odds relative to the category's overall prior; a mask keeps the intercepts of
    // one-sided pairs (a source with only positives of a category) at 0, since absorbing
    // those would take the source's whole signal with them.
    let domains = if cfg.domain_offsets && train.domains.len() == n {
        train.domains.iter().chain(&dev_data.domains).map(|&d| d as usize + 1).max().unwrap_or(0)
    } else {
        0
    };
    let mut offsets: Option<(Var, Tensor)> = None;
    if domains > 0 {
        let (mut dp, mut dn) = (vec![0f64; domains * cats], vec![0f64; domains * cats]);
        for (r, labels) in train.labels.iter().enumerate() {
            let d = train.domains[r] as usize;
            for (c, l) in labels.iter().enumerate() {
                if let Some(t) = l.target() {
                    dp[d * cats + c] += t as f64;
                    dn[d * cats + c] += 1.0 - t as f64;
                }
            }
        }
        let (mut init, mut mask) = (vec![0f32; domains * cats], vec![0f32; domains * cats]);
        for d in 0..domains {
            for c in 0..cats {
                let i = d * cats + c;
                if dp[i] > 0.0 && dn[i] > 0.0 {
                    let prior = |p: f64, n: f64| ((p * pw[c] as f64 + 0.5) / (n + 0.5)).ln();
                    init[i] = (prior(dp[i], dn[i]) - prior(pos[c], neg[c])) as f32;
                    mask[i] = 1.0;
                }
            }
        }
        let var = Var::from_tensor(&Tensor::from_vec(init, (domains, cats), &device)?)?;
        offsets = Some((var, Tensor::from_vec(mask, (domains, cats), &device)?));
    }
    let mut opt_vars = vars.clone();
    if let Some((v, _)) = &offsets {
        opt_vars.push(v.clone());
    }
    let mut opt = AdamW::new(
        opt_vars,
        ParamsAdamW { lr: cfg.learning_rate, weight_decay: cfg.weight_decay, ..Default::default() },
    )?;
    // The intercepts in use, `[domains, cats]` (one-sided pairs masked to 0).
    let masked_offsets = || -> Result<Option<Tensor>> { offsets.as_ref().map(|(v, m)| v.as_tensor().mul(m)).transpose() };
    // The intercepts of `idx`'s rows of `data`, `[idx.len(), cats]`.
    let row_offsets = |data: &HeadData, idx: &[usize]| -> Result<Option<Tensor>> {
        let Some(o) = masked_offsets()? else { return Ok(None) };
        if data.domains.len() != data.rows() {
            return Ok(None);
        }
        let ids: Vec<u32> = idx.iter().map(|&r| data.domains[r]).collect();
        let ids = Tensor::from_vec(ids, idx.len(), &device)?;
        Ok(Some(o.index_select(&ids, 0)?))
    };

    let mut critic = None;
    if let (Some(w), Some(_)) = (cfg.wdann, target_domain) {
        let mut cr = Critic::new(hc.input, w.critic_hidden, cfg.seed, &device)?;
        let cvars = cr.make_trainable()?;
        clip_vars(&cvars, w.clip)?;
        let copt = candle_nn::optim::SGD::new(cvars.clone(), w.critic_lr)?;
        critic = Some((cr, cvars, copt, w));
    }

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut best: Option<Heads> = None;
    let mut best_auprc = vec![f64::NEG_INFINITY; cats];
    let mut best_epoch = vec![0usize; cats];
    let mut since_improved = 0;
    let mut best_offsets: Vec<Vec<f32>> = Vec::new();
    let mut epochs = Vec::new();
    let mut tgt_order: Vec<usize> = target_domain.map(|t| (0..t.rows()).collect()).unwrap_or_default();
    let mut tgt_pos = 0;
    for epoch in 1..=cfg.max_epochs {
        let te = Instant::now();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut batches, mut w_sum, mut w_n) = (0f64, 0usize, 0f64, 0usize);
        for part in order.chunks(cfg.batch_size) {
            let x = train.batch(part, &device)?;
            let mut t = Vec::with_capacity(part.len() * cats);
            let mut m = Vec::with_capacity(part.len() * cats);
            for &r in part {
                t.extend_from_slice(&target[r * cats..(r + 1) * cats]);
                m.extend_from_slice(&mask[r * cats..(r + 1) * cats]);
            }
            let t = Tensor::from_vec(t, (part.len(), cats), &device)?;
            let m = Tensor::from_vec(m, (part.len(), cats), &device)?;
            // Positives weigh pw, negatives 1, unknowns 0.
            let w = m.mul(&(t.broadcast_mul(&(pw_t.clone() - 1.0)?)? + 1.0)?)?;
            let denom = w.sum_all()?.to_scalar::<f32>()?.max(1e-6) as f64;
            let z_src = heads.represent(&x)?;
            let mut logits = heads.forward_represented(&z_src, true)?;
            if let Some(o) = row_offsets(train, part)? {
                logits = (logits + o)?;
            }
            let mut loss = (bce_logits(&logits, &t)?.mul(&w)?.sum_all()? / denom)?;
            if let (Some((cr, cvars, copt, wc)), Some(tgt)) = (critic.as_mut(), target_domain) {
                // Target batch, cycling through the unlabelled domain texts.
                let mut tidx = Vec::with_capacity(part.len());
                for _ in 0..part.len() {
                    if tgt_pos == 0 {
                        tgt_order.shuffle(&mut rng);
                    }
                    tidx.push(tgt_order[tgt_pos]);
                    tgt_pos = (tgt_pos + 1) % tgt_order.len();
                }
                let xt = tgt.batch(&tidx, &device)?;
                let z_tgt = heads.represent(&xt)?;
                // Critic: maximise E_s f - E_t f on detached representations.
                let (zs, zt) = (z_src.detach(), z_tgt.detach());
                for _ in 0..wc.critic_steps {
                    let gap = (cr.forward(&zs)?.mean_all()? - cr.forward(&zt)?.mean_all()?)?;
                    copt.backward_step(&gap.neg()?)?;
                    clip_vars(cvars, wc.clip)?;
                }
                // Heads and projection: also shrink the critic's estimate.
                let gap = (cr.forward(&z_src)?.mean_all()? - cr.forward(&z_tgt)?.mean_all()?)?;
                w_sum += gap.to_scalar::<f32>()? as f64;
                w_n += 1;
                loss = (loss + (gap * wc.lambda)?)?;
            }
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        // Dev: per-head AUPRC, per-head snapshot of the best epoch.
        let snapshot = heads.detached();
        let logits = predict_logits(&snapshot, dev_data, &device)?;
        let current_offsets: Vec<Vec<f32>> = match masked_offsets()? {
            Some(o) => o.to_vec2::<f32>()?,
            None => Vec::new(),
        };
        let mut dev_auprc = Vec::with_capacity(cats);
        let mut improved = false;
        for c in 0..cats {
            let (s, l) = category_columns(dev_data, &logits, c);
            let a = warden_eval::auprc(&s, &l);
            let score = a.unwrap_or(0.0);
            if score > best_auprc[c] + 1e-4 || (epoch == 1 && best.is_none()) {
                if score > best_auprc[c] + 1e-4 {
                    improved = true;
                }
                best_auprc[c] = best_auprc[c].max(score);
                best_epoch[c] = epoch;
                if best_offsets.is_empty() {
                    best_offsets = current_offsets.clone();
                }
                for (b, o) in best_offsets.iter_mut().zip(&current_offsets) {
                    b[c] = o[c];
                }
                match &mut best {
                    None => best = Some(snapshot.clone()),
                    Some(b) if !hc.projection => b.copy_head_from(&snapshot, c)?,
                    Some(_) => {}
                }
            }
            dev_auprc.push(a);
        }
        if hc.projection {
            // A shared projection ties the heads together: keep whole
            // snapshots, chosen by mean dev AUPRC.
            let mean = |v: &[Option<f64>]| v.iter().map(|a| a.unwrap_or(0.0)).sum::<f64>() / cats as f64;
            let prev = epochs.iter().map(|e: &EpochReport| mean(&e.dev_auprc)).fold(f64::NEG_INFINITY, f64::max);
            if mean(&dev_auprc) > prev {
                best = Some(snapshot.clone());
                best_epoch = vec![epoch; cats];
                best_offsets = current_offsets.clone();
            }
        }
        let report = EpochReport {
            epoch,
            train_loss: loss_sum / batches.max(1) as f64,
            dev_auprc,
            wasserstein: (w_n > 0).then(|| w_sum / w_n as f64),
            seconds: te.elapsed().as_secs_f64(),
        };
        progress(&report);
        epochs.push(report);
        since_improved = if improved { 0 } else { since_improved + 1 };
        if since_improved >= cfg.patience {
            break;
        }
    }
    let best = best.expect("at least one epoch");
    let logits = predict_logits(&best, dev_data, &device)?;
    // With domain intercepts each dev row is calibrated on its own domain's logit, and the
    // reference domain's intercept is folded into the calibration's bias, so scoring
    // (which knows no domain) gives the reference domain's probabilities.
    let with_offsets = !best_offsets.is_empty() && dev_data.domains.len() == dev_data.rows();
    let offset = |d: usize, c: usize| best_offsets.get(d).map_or(0.0, |o| o[c]);
    let calibration = (0..cats)
        .map(|c| {
            let rows: Vec<(f32, f32, f32)> = dev_data
                .labels
                .iter()
                .zip(&logits)
                .enumerate()
                .filter_map(|(r, (l, z))| {
                    let shift = if with_offsets { offset(dev_data.domains[r] as usize, c) } else { 0.0 };
                    l[c].target().map(|t| (z[c] + shift, t, 1.0))
                })
                .collect();
            let mut cal = fit_platt(&rows);
            if with_offsets {
                if let Some(d) = cfg.domain_reference {
                    cal.b += cal.a * offset(d as usize, c);
                }
            }
            cal
        })
        .collect();
    let report = HeadTrainReport {
        epochs,
        best_epoch,
        train_rows: n,
        dev_rows: dev_data.rows(),
        seconds: t0.elapsed().as_secs_f64(),
        domain_offsets: best_offsets,
    };
    Ok((best, calibration, report))
}

/// Number of trained parameters (heads and projection).
pub fn param_count(heads: &Heads) -> usize {
    heads.to_tensors().values().map(|t| t.elem_count()).sum()
}
