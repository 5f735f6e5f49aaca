//! The paper's output layer: one independent MLP `[d_model, 256, 1]` per
//! category (section 4.1), optionally behind a shared trainable projection
//! (the "pooled representation" that the domain critic sees).
//!
//! All heads' first layers live in one `[in, C·H]` matrix so a batch costs a
//! single matrix multiply; the heads stay independent because no parameter
//! is shared between categories (column block `c` and row `c` of the second
//! layer belong to head `c` alone).

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use serde::{Deserialize, Serialize};

/// Shape of the heads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadsConfig {
    /// Width of the pooled encoder vector fed to the heads.
    pub input: usize,
    /// Hidden units per head (256 in the paper).
    pub hidden: usize,
    pub categories: usize,
    /// Dropout on the hidden layer during training (0.1 in the paper).
    pub dropout: f32,
    /// A shared `input → input` tanh projection before the heads (BERT's
    /// pooler shape). Needed for domain-adversarial training on a frozen
    /// encoder: it is the representation the critic pushes to be
    /// domain-invariant.
    pub projection: bool,
}

/// Parameters as tensors (possibly `Var`-backed while training).
#[derive(Debug, Clone)]
pub struct Heads {
    pub config: HeadsConfig,
    /// `[in, C·H]`
    pub w1: Tensor,
    /// `[C·H]`
    pub b1: Tensor,
    /// `[C, H]`
    pub w2: Tensor,
    /// `[C]`
    pub b2: Tensor,
    /// `[in, in]` and `[in]` when `config.projection`.
    pub proj: Option<(Tensor, Tensor)>,
}

/// Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's Linear default.
fn uniform(rng: &mut impl rand::RngCore, n: usize, fan_in: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    (0..n)
        .map(|_| {
            let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * u - 1.0) * bound
        })
        .collect()
}

impl Heads {
    /// Randomly initialised heads (deterministic for a seed). A projection
    /// starts at `init_projection` when given (e.g. the checkpoint's pooler).
    pub fn new(config: HeadsConfig, seed: u64, init_projection: Option<(Tensor, Tensor)>, dev: &Device) -> Result<Self> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (i, h, c) = (config.input, config.hidden, config.categories);
        let w1 = Tensor::from_vec(uniform(&mut rng, i * c * h, i), (i, c * h), dev)?;
        let b1 = Tensor::from_vec(uniform(&mut rng, c * h, i), c * h, dev)?;
        let w2 = Tensor::from_vec(uniform(&mut rng, c * h, h), (c, h), dev)?;
        let b2 = Tensor::from_vec(uniform(&mut rng, c, h), c, dev)?;
        let proj = if config.projection {
            Some(match init_projection {
                // PyTorch layout [out, in] -> ours [in, out].
                Some((w, b)) if w.dims() == [i, i] => (w.t()?.contiguous()?, b),
                _ => (
                    Tensor::from_vec(uniform(&mut rng, i * i, i), (i, i), dev)?,
                    Tensor::from_vec(uniform(&mut rng, i, i), i, dev)?,
                ),
            })
        } else {
            None
        };
        Ok(Heads { config, w1, b1, w2, b2, proj })
    }

    /// The representation the heads read (after the projection, if any).
    pub fn represent(&self, x: &Tensor) -> Result<Tensor> {
        match &self.proj {
            Some((w, b)) => x.matmul(w)?.broadcast_add(b)?.tanh(),
            None => Ok(x.clone()),
        }
    }

    /// Logits `[n, C]` for pooled vectors `x` `[n, in]`.
    pub fn forward(&self, x: &Tensor, dropout: bool) -> Result<Tensor> {
        let z = self.represent(x)?;
        self.forward_represented(&z, dropout)
    }

    pub fn forward_represented(&self, z: &Tensor, dropout: bool) -> Result<Tensor> {
        let n = z.dim(0)?;
        let (c, h) = (self.config.categories, self.config.hidden);
        let mut hid = z.matmul(&self.w1)?.broadcast_add(&self.b1)?.relu()?;
        if dropout && self.config.dropout > 0.0 {
            hid = candle_nn::ops::dropout(&hid, self.config.dropout)?;
        }
        let hid = hid.reshape((n, c, h))?;
        hid.broadcast_mul(&self.w2.unsqueeze(0)?)?.sum(D::Minus1)?.broadcast_add(&self.b2)
    }

    /// Makes every parameter trainable; returns the vars.
    pub fn make_trainable(&mut self) -> Result<Vec<Var>> {
        let mut vars = Vec::new();
        for t in self.tensors_mut() {
            let v = Var::from_tensor(t)?;
            *t = v.as_tensor().clone();
            vars.push(v);
        }
        Ok(vars)
    }

    fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        let mut v = vec![&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2];
        if let Some((w, b)) = &mut self.proj {
            v.push(w);
            v.push(b);
        }
        v
    }

    /// Detached copies of the parameters (for snapshots and saving).
    pub fn detached(&self) -> Heads {
        Heads {
            config: self.config,
            w1: self.w1.detach().copy().unwrap_or_else(|_| self.w1.detach()),
            b1: self.b1.detach().copy().unwrap_or_else(|_| self.b1.detach()),
            w2: self.w2.detach().copy().unwrap_or_else(|_| self.w2.detach()),
            b2: self.b2.detach().copy().unwrap_or_else(|_| self.b2.detach()),
            proj: self.proj.as_ref().map(|(w, b)| (w.detach(), b.detach())),
        }
    }

    /// Rounds every parameter to the nearest `f16` value (kept as `f32`), the precision
    /// artifacts store heads in: it halves `heads.safetensors` (3.2 → 1.6 MB for eight
    /// `[384, 256, 1]` heads); the round-trip test bounds the change of a logit by 1e-2.
    /// Idempotent, so a model scored after rounding scores the same after a save and load.
    pub fn round_to_f16(&mut self) -> Result<()> {
        for t in self.tensors_mut() {
            *t = t.detach().to_dtype(DType::F16)?.to_dtype(DType::F32)?;
        }
        Ok(())
    }

    /// Named tensors for `safetensors`.
    pub fn to_tensors(&self) -> HashMap<String, Tensor> {
        let mut m = HashMap::new();
        m.insert("heads.w1".into(), self.w1.detach());
        m.insert("heads.b1".into(), self.b1.detach());
        m.insert("heads.w2".into(), self.w2.detach());
        m.insert("heads.b2".into(), self.b2.detach());
        if let Some((w, b)) = &self.proj {
            m.insert("projection.weight".into(), w.detach());
            m.insert("projection.bias".into(), b.detach());
        }
        m
    }

    pub fn from_tensors(config: HeadsConfig, m: &HashMap<String, Tensor>) -> Result<Self> {
        let get = |k: &str, shape: &[usize]| -> Result<Tensor> {
            let t = m.get(k).ok_or_else(|| candle_core::Error::msg(format!("heads file lacks {k}")))?;
            if t.dims() != shape {
                candle_core::bail!("{k}: shape {:?}, manifest says {:?}", t.dims(), shape);
            }
            t.to_dtype(DType::F32)
        };
        let (i, h, c) = (config.input, config.hidden, config.categories);
        let proj = if config.projection {
            Some((get("projection.weight", &[i, i])?, get("projection.bias", &[i])?))
        } else {
            None
        };
        Ok(Heads {
            config,
            w1: get("heads.w1", &[i, c * h])?,
            b1: get("heads.b1", &[c * h])?,
            w2: get("heads.w2", &[c, h])?,
            b2: get("heads.b2", &[c])?,
            proj,
        })
    }

    /// Copies head `c`'s parameters from `other` (per-head early stopping).
    pub fn copy_head_from(&mut self, other: &Heads, c: usize) -> Result<()> {
        let h = self.config.hidden;
        let cols = |t: &Tensor| t.narrow(1, c * h, h);
        let mut w1 = self.w1.detach().to_vec2::<f32>()?;
        let src = cols(&other.w1)?.to_vec2::<f32>()?;
        for (row, s) in w1.iter_mut().zip(src) {
            row[c * h..(c + 1) * h].copy_from_slice(&s);
        }
        let dev = self.w1.device().clone();
        let (i, ch) = self.w1.dims2()?;
        self.w1 = Tensor::from_vec(w1.concat(), (i, ch), &dev)?;
        let mut b1 = self.b1.detach().to_vec1::<f32>()?;
        b1[c * h..(c + 1) * h].copy_from_slice(&other.b1.narrow(0, c * h, h)?.to_vec1::<f32>()?);
        self.b1 = Tensor::from_vec(b1, ch, &dev)?;
        let mut w2 = self.w2.detach().to_vec2::<f32>()?;
        w2[c] = other.w2.get(c)?.to_vec1::<f32>()?;
        self.w2 = Tensor::from_vec(w2.concat(), (self.config.categories, h), &dev)?;
        let mut b2 = self.b2.detach().to_vec1::<f32>()?;
        b2[c] = other.b2.get(c)?.to_scalar::<f32>()?;
        self.b2 = Tensor::from_vec(b2, self.config.categories, &dev)?;
        Ok(())
    }
}

/// The Wasserstein critic of section 3.4: an MLP with two hidden layers of
/// 300 units on the pooled representation; its weights are clipped to
/// `[-clip, clip]` after every update (WGAN's Lipschitz constraint).
#[derive(Debug, Clone)]
pub struct Critic {
    pub layers: Vec<(Tensor, Tensor)>,
}

impl Critic {
    pub fn new(input: usize, hidden: usize, seed: u64, dev: &Device) -> Result<Self> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xC217);
        let dims = [input, hidden, hidden, 1];
        let mut layers = Vec::new();
        for w in dims.windows(2) {
            layers.push((
                Tensor::from_vec(uniform(&mut rng, w[0] * w[1], w[0]), (w[0], w[1]), dev)?,
                Tensor::from_vec(uniform(&mut rng, w[1], w[0]), w[1], dev)?,
            ));
        }
        Ok(Critic { layers })
    }

    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut x = z.clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            x = x.matmul(w)?.broadcast_add(b)?;
            if i + 1 < self.layers.len() {
                x = x.relu()?;
            }
        }
        x.squeeze(1)
    }

    pub fn make_trainable(&mut self) -> Result<Vec<Var>> {
        let mut vars = Vec::new();
        for (w, b) in &mut self.layers {
            for t in [w, b] {
                let v = Var::from_tensor(t)?;
                *t = v.as_tensor().clone();
                vars.push(v);
            }
        }
        Ok(vars)
    }
}

/// Clips every var to `[-c, c]`.
pub fn clip_vars(vars: &[Var], c: f64) -> Result<()> {
    for v in vars {
        v.set(&v.as_tensor().clamp(-c, c)?)?;
    }
    Ok(())
}
