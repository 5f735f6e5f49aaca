//! Fine-tuning: the encoder's top layers and the heads together.
//!
//! On the 2-core development machine fine-tuning the top 2 MiniLM layers runs
//! at 12-15 examples per second (54 minutes for 2 epochs of 21,143 rows), so
//! this is the overnight (or `--features cuda`) mode; training heads on a
//! frozen encoder ([`crate::train`]) is the default.
//!
//! AdamW with linear warm-up then linear decay, dev evaluation after each
//! epoch with early stopping, and checkpoints every `checkpoint_every` steps
//! that a rerun resumes from. A checkpoint holds the parameters and the step
//! counter. AdamW's moment estimates restart (candle keeps them private), and
//! so does early stopping: epochs replayed from the checkpoint are not
//! re-evaluated.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use warden_core::Label;
use warden_encoder::bert::{pool, Mode};
use warden_encoder::encoder::pad_batch;
use warden_encoder::Encoder;
use warden_fast::{fit_platt, Calibration};

use crate::heads::Heads;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneConfig {
    /// How many of the top encoder layers train (the rest stay frozen).
    pub trainable_layers: usize,
    pub encoder_lr: f64,
    pub heads_lr: f64,
    pub weight_decay: f64,
    /// Fraction of all steps spent warming the learning rate up from 0.
    pub warmup: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Training windows are cut to this many tokens (inference still
    /// windows the full text).
    pub max_tokens: usize,
    pub hidden_dropout: f32,
    pub seed: u64,
    pub checkpoint_dir: Option<PathBuf>,
    pub checkpoint_every: usize,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            trainable_layers: 2,
            encoder_lr: 3e-5,
            heads_lr: 1e-3,
            weight_decay: 0.01,
            warmup: 0.1,
            epochs: 3,
            batch_size: 16,
            max_tokens: 128,
            hidden_dropout: 0.1,
            seed: 13,
            checkpoint_dir: None,
            checkpoint_every: 200,
        }
    }
}

pub struct FtExample<'a> {
    pub text: &'a str,
    pub labels: &'a [Label],
    pub weight: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FtProgress {
    pub epoch: usize,
    pub step: usize,
    pub total_steps: usize,
    pub loss: f64,
    pub examples_per_second: f64,
    /// Filled at the end of an epoch.
    pub dev_mean_auprc: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub steps: usize,
    pub resumed_from_step: usize,
    pub epochs: Vec<FtProgress>,
    pub best_epoch: usize,
    pub seconds: f64,
}

/// What fine-tuning produced: heads, the trained encoder tensors by
/// checkpoint name, and calibration.
pub struct Finetuned {
    pub heads: Heads,
    pub encoder_params: HashMap<String, Tensor>,
    pub calibration: Vec<Calibration>,
    pub report: FinetuneReport,
}

fn ids_of(encoder: &Encoder, texts: &[&str], max_tokens: usize) -> Result<Vec<Vec<u32>>> {
    let tk = encoder.tokenizer().tokenize_batch(texts).map_err(candle_core::Error::wrap)?;
    Ok(tk
        .into_iter()
        .map(|t| {
            let mut ids = t.windows.into_iter().next().map(|w| w.ids).unwrap_or_default();
            if ids.len() > max_tokens {
                let sep = *ids.last().unwrap();
                ids.truncate(max_tokens - 1);
                ids.push(sep);
            }
            ids
        })
        .collect())
}

fn logits_for(encoder: &Encoder, heads: &Heads, ids: &[Vec<u32>], mode: Mode) -> Result<Tensor> {
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (t, m) = pad_batch(&refs, encoder.model.device())?;
    let h = encoder.model.forward(&t, None, &m, mode)?;
    let pooled = pool(&h, &m, encoder.options().pooling)?;
    heads.forward(&pooled, matches!(mode, Mode::Train { .. }))
}

/// Fine-tunes `encoder`'s top layers together with `heads` (typically
/// trained on the frozen encoder first). The encoder is modified in place.
pub fn finetune(
    encoder: &mut Encoder,
    mut heads: Heads,
    train: &[FtExample<'_>],
    dev: &[FtExample<'_>],
    cfg: &FinetuneConfig,
    progress: &mut dyn FnMut(&FtProgress),
) -> Result<Finetuned> {
    let t0 = Instant::now();
    let layers = encoder.model.config.num_hidden_layers;
    let first = layers.saturating_sub(cfg.trainable_layers.min(layers));
    let prefixes: Vec<String> = (first..layers).map(|i| format!("encoder.layer.{i}.")).collect();
    let enc_vars = encoder.model.make_trainable(&|n| prefixes.iter().any(|p| n.starts_with(p)))?;
    let head_vars = heads.make_trainable()?;
    let cats = heads.config.categories;

    // Resume from a checkpoint when there is one.
    let mut resumed = 0usize;
    if let Some(dir) = &cfg.checkpoint_dir {
        let ck = dir.join("checkpoint.safetensors");
        let st = dir.join("checkpoint.json");
        if ck.exists() && st.exists() {
            let tensors = candle_core::safetensors::load(&ck, &Device::Cpu)?;
            for (name, v) in &enc_vars {
                if let Some(t) = tensors.get(&format!("encoder.{name}")) {
                    v.set(t)?;
                }
            }
            for (k, v) in ["heads.w1", "heads.b1", "heads.w2", "heads.b2", "projection.weight", "projection.bias"]
                .iter()
                .zip(head_vars.iter())
            {
                if let Some(t) = tensors.get(*k) {
                    v.set(t)?;
                }
            }
            let state: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&st).map_err(candle_core::Error::wrap)?)
                    .map_err(candle_core::Error::wrap)?;
            resumed = state["step"].as_u64().unwrap_or(0) as usize;
        }
    }

    let mut opt_enc = AdamW::new(
        enc_vars.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW { lr: cfg.encoder_lr, weight_decay: cfg.weight_decay, ..Default::default() },
    )?;
    let mut opt_heads = AdamW::new(
        head_vars.clone(),
        ParamsAdamW { lr: cfg.heads_lr, weight_decay: cfg.weight_decay, ..Default::default() },
    )?;
    let steps_per_epoch = train.len().div_ceil(cfg.batch_size.max(1));
    let total = steps_per_epoch * cfg.epochs;
    let warm = ((total as f64) * cfg.warmup).max(1.0);
    let schedule = |step: usize| -> f64 {
        let s = step as f64;
        if s < warm {
            s / warm
        } else {
            ((total as f64 - s) / (total as f64 - warm).max(1.0)).max(0.0)
        }
    };
    let mode = Mode::Train { hidden_dropout: cfg.hidden_dropout, attention_dropout: cfg.hidden_dropout };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut step = 0usize;
    let mut epochs = Vec::new();
    let mut best: Option<(f64, Heads, HashMap<String, Tensor>, usize)> = None;
    for epoch in 1..=cfg.epochs {
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let te = Instant::now();
        let mut loss_sum = 0.0;
        let mut seen = 0usize;
        for part in order.chunks(cfg.batch_size.max(1)) {
            step += 1;
            if step <= resumed {
                continue; // the same shuffled order replays up to the checkpoint
            }
            let texts: Vec<&str> = part.iter().map(|&i| train[i].text).collect();
            let ids = ids_of(encoder, &texts, cfg.max_tokens)?;
            let logits = logits_for(encoder, &heads, &ids, mode)?;
            let mut t = Vec::with_capacity(part.len() * cats);
            let mut w = Vec::with_capacity(part.len() * cats);
            for &i in part {
                for l in train[i].labels {
                    let tv = l.target();
                    t.push(tv.unwrap_or(0.0));
                    w.push(if tv.is_some() { train[i].weight } else { 0.0 });
                }
            }
            let t = Tensor::from_vec(t, (part.len(), cats), encoder.model.device())?;
            let w = Tensor::from_vec(w, (part.len(), cats), encoder.model.device())?;
            let denom = w.sum_all()?.to_scalar::<f32>()?.max(1e-6) as f64;
            let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
            let bce = ((logits.relu()? - (&logits * &t)?)? + softplus)?;
            let loss = (bce.mul(&w)?.sum_all()? / denom)?;
            let f = schedule(step);
            opt_enc.set_learning_rate(cfg.encoder_lr * f);
            opt_heads.set_learning_rate(cfg.heads_lr * f);
            let grads = loss.backward()?;
            opt_enc.step(&grads)?;
            opt_heads.step(&grads)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            seen += part.len();
            progress(&FtProgress {
                epoch,
                step,
                total_steps: total,
                loss: loss_sum / (seen as f64 / part.len() as f64),
                examples_per_second: seen as f64 / te.elapsed().as_secs_f64().max(1e-9),
                dev_mean_auprc: None,
            });
            if let Some(dir) = &cfg.checkpoint_dir {
                if step % cfg.checkpoint_every.max(1) == 0 {
                    save_checkpoint(dir, &enc_vars, &heads, step)?;
                }
            }
        }
        // An epoch replayed entirely from the checkpoint trained nothing here: evaluating it
        // would score the resumed parameters as that epoch's and, one epoch later, stop
        // early on a tie. Its result is not in the checkpoint, so early stopping starts
        // afresh after a resume. The last epoch is always evaluated, so a run resumed past
        // its end still reports one.
        if step <= resumed && epoch < cfg.epochs {
            continue;
        }
        // Dev evaluation.
        let mut logits_all: Vec<Vec<f32>> = Vec::with_capacity(dev.len());
        for part in dev.chunks(64) {
            let texts: Vec<&str> = part.iter().map(|e| e.text).collect();
            let ids = ids_of(encoder, &texts, cfg.max_tokens)?;
            logits_all.extend(logits_for(encoder, &heads, &ids, Mode::Infer)?.to_vec2::<f32>()?);
        }
        let mut sum = 0.0;
        for c in 0..cats {
            let (s, l): (Vec<f32>, Vec<bool>) =
                dev.iter().zip(&logits_all).filter_map(|(e, z)| e.labels[c].hard().map(|h| (z[c], h))).unzip();
            sum += warden_eval::auprc(&s, &l).unwrap_or(0.0);
        }
        let mean = sum / cats as f64;
        let p = FtProgress {
            epoch,
            step,
            total_steps: total,
            loss: loss_sum / steps_per_epoch.max(1) as f64,
            examples_per_second: seen as f64 / te.elapsed().as_secs_f64().max(1e-9),
            dev_mean_auprc: Some(mean),
        };
        progress(&p);
        epochs.push(p);
        let params: HashMap<String, Tensor> =
            enc_vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().detach())).collect();
        match &best {
            Some((b, ..)) if *b >= mean => break, // early stopping: dev got worse
            _ => best = Some((mean, heads.detached(), params, epoch)),
        }
    }
    let (_, heads, encoder_params, best_epoch) = best.expect("at least one epoch");
    encoder.model.override_params(&encoder_params)?;
    // Calibrate on dev with the kept parameters.
    let mut logits_all: Vec<Vec<f32>> = Vec::with_capacity(dev.len());
    for part in dev.chunks(64) {
        let texts: Vec<&str> = part.iter().map(|e| e.text).collect();
        let ids = ids_of(encoder, &texts, cfg.max_tokens)?;
        logits_all.extend(logits_for(encoder, &heads, &ids, Mode::Infer)?.to_vec2::<f32>()?);
    }
    let calibration = (0..cats)
        .map(|c| {
            let rows: Vec<(f32, f32, f32)> =
                dev.iter().zip(&logits_all).filter_map(|(e, z)| e.labels[c].target().map(|t| (z[c], t, 1.0))).collect();
            fit_platt(&rows)
        })
        .collect();
    Ok(Finetuned {
        heads,
        encoder_params,
        calibration,
        report: FinetuneReport { steps: step, resumed_from_step: resumed, epochs, best_epoch, seconds: t0.elapsed().as_secs_f64() },
    })
}

fn save_checkpoint(dir: &std::path::Path, enc: &[(String, candle_core::Var)], heads: &Heads, step: usize) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(candle_core::Error::wrap)?;
    let mut m: HashMap<String, Tensor> = heads.to_tensors();
    for (n, v) in enc {
        m.insert(format!("encoder.{n}"), v.as_tensor().detach());
    }
    let tmp = dir.join("checkpoint.safetensors.tmp");
    candle_core::safetensors::save(&m, &tmp)?;
    std::fs::rename(&tmp, dir.join("checkpoint.safetensors")).map_err(candle_core::Error::wrap)?;
    std::fs::write(dir.join("checkpoint.json"), serde_json::json!({ "step": step }).to_string())
        .map_err(candle_core::Error::wrap)?;
    Ok(())
}
