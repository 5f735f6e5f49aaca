//! A BERT forward pass written for Warden on candle.
//!
//! Why not candle-transformers' `BertModel`? Two reasons, both measured by
//! tests in this crate:
//!
//! * **It cannot be fine-tuned.** candle-nn's fused `layer_norm` kernel
//!   records no gradient (`apply_op3_no_bwd`) and the stock BERT's dropout is
//!   a no-op, so `loss.backward()` silently gives every encoder weight below
//!   the last LayerNorm a zero gradient. Here, [`Mode::Train`] uses a
//!   LayerNorm and softmax built from differentiable ops and real dropout;
//!   `tests/bert.rs` checks that every trainable tensor gets a non-zero
//!   gradient.
//! * **Speed.** Inference fuses the query/key/value projections into one
//!   matrix multiply and, on CPU, runs attention and the element-wise steps
//!   through [`crate::kernels`] (one pass each instead of several candle ops).
//!   `benches/encoder.rs` measures it against the stock model, the machine's
//!   sgemm rate and (through `bench/encoder.sh`) ONNX Runtime.
//!
//! In [`Mode::Infer`] the output equals candle-transformers' to 1e-5 on every
//! non-padding position (`tests/bert.rs`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use candle_nn::VarBuilder;

use crate::config::BertConfig;
use crate::kernels;

/// How the forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Fused kernels, no dropout, no gradient bookkeeping needed.
    Infer,
    /// Differentiable LayerNorm and softmax; dropout with the given
    /// probabilities (use 0.0 for a deterministic differentiable pass).
    Train { hidden_dropout: f32, attention_dropout: f32 },
}

impl Mode {
    fn differentiable(self) -> bool {
        matches!(self, Mode::Train { .. })
    }
}

/// A dense layer holding PyTorch-layout weights `[out, in]`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    fn load(vb: &VarBuilder, inp: usize, out: usize) -> Result<Self> {
        Ok(Linear { weight: vb.get((out, inp), "weight")?, bias: vb.get(out, "bias")? })
    }

    /// `x` is `[n, in]`; returns `[n, out]`.
    pub fn forward2d(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = *dims.last().unwrap();
        let n: usize = dims[..dims.len() - 1].iter().product();
        let y = self.forward2d(&x.reshape((n, inp))?)?;
        let mut out = dims;
        *out.last_mut().unwrap() = y.dim(1)?;
        y.reshape(out)
    }
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(vb: &VarBuilder, d: usize, eps: f64) -> Result<Self> {
        // Old checkpoints name them gamma/beta.
        let (w, b) = if vb.contains_tensor("weight") {
            (vb.get(d, "weight")?, vb.get(d, "bias")?)
        } else {
            (vb.get(d, "gamma")?, vb.get(d, "beta")?)
        };
        Ok(LayerNorm { weight: w, bias: b, eps })
    }

    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode.differentiable() || !x.is_contiguous() {
            let d = x.dim(D::Minus1)? as f64;
            let mean = (x.sum_keepdim(D::Minus1)? / d)?;
            let xc = x.broadcast_sub(&mean)?;
            let var = (xc.sqr()?.sum_keepdim(D::Minus1)? / d)?;
            let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
            xn.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
        } else {
            candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32)
        }
    }
}

/// `LayerNorm(dropout(x·Wᵀ + b) + residual)`: the step after attention and after the FFN,
/// one fused kernel pass when `fused`.
fn project_add_norm(lin: &Linear, norm: &LayerNorm, x: &Tensor, residual: &Tensor, fused: bool, mode: Mode, hidden_p: f32) -> Result<Tensor> {
    if fused {
        kernels::bias_residual_norm(&x.matmul(&lin.weight.t()?)?, &lin.bias, residual, &norm.weight, &norm.bias, norm.eps)
    } else {
        let out = dropout(&lin.forward2d(x)?, hidden_p)?;
        norm.forward(&(out + residual)?, mode)
    }
}

fn dropout(x: &Tensor, p: f32) -> Result<Tensor> {
    if p > 0.0 {
        candle_nn::ops::dropout(x, p)
    } else {
        Ok(x.clone())
    }
}

fn activation(x: &Tensor, act: &str) -> Result<Tensor> {
    match act {
        "gelu" => x.gelu_erf(),
        "gelu_new" | "gelu_pytorch_tanh" => x.gelu(),
        "relu" => x.relu(),
        other => candle_core::bail!("unsupported activation {other}"),
    }
}

#[derive(Debug, Clone)]
pub struct Embeddings {
    pub word: Tensor,
    pub position: Tensor,
    pub token_type: Tensor,
    pub norm: LayerNorm,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    /// `[3d, d]` concatenation of query/key/value used by inference; dropped
    /// whenever a parameter becomes trainable.
    fused_qkv: Option<Linear>,
    pub attn_out: Linear,
    pub attn_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub out_norm: LayerNorm,
}

/// The encoder: embeddings, `num_hidden_layers` transformer layers and the
/// (optional) pooler dense layer of the checkpoint.
#[derive(Debug, Clone)]
pub struct BertModel {
    pub config: BertConfig,
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    pub pooler: Option<Linear>,
    device: Device,
}

fn fuse(q: &Linear, k: &Linear, v: &Linear) -> Result<Linear> {
    Ok(Linear {
        weight: Tensor::cat(&[&q.weight, &k.weight, &v.weight], 0)?,
        bias: Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0)?,
    })
}

impl BertModel {
    /// Loads from a VarBuilder rooted at the checkpoint; a `bert.` prefix
    /// (as in `BertForMaskedLM` checkpoints) is detected.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        config.validate().map_err(candle_core::Error::msg)?;
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            candle_core::bail!("no embeddings.word_embeddings.weight in the checkpoint: not a BERT model?")
        };
        let device = vb.device().clone();
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;
        let e = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: e.get((config.vocab_size, d), "word_embeddings.weight")?,
            position: e.get((config.max_position_embeddings, d), "position_embeddings.weight")?,
            token_type: e.get((config.type_vocab_size, d), "token_type_embeddings.weight")?,
            norm: LayerNorm::load(&e.pp("LayerNorm"), d, eps)?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let query = Linear::load(&a.pp("self.query"), d, d)?;
            let key = Linear::load(&a.pp("self.key"), d, d)?;
            let value = Linear::load(&a.pp("self.value"), d, d)?;
            let fused_qkv = Some(fuse(&query, &key, &value)?);
            layers.push(Layer {
                query,
                key,
                value,
                fused_qkv,
                attn_out: Linear::load(&a.pp("output.dense"), d, d)?,
                attn_norm: LayerNorm::load(&a.pp("output.LayerNorm"), d, eps)?,
                intermediate: Linear::load(&l.pp("intermediate.dense"), d, config.intermediate_size)?,
                output: Linear::load(&l.pp("output.dense"), config.intermediate_size, d)?,
                out_norm: LayerNorm::load(&l.pp("output.LayerNorm"), d, eps)?,
            });
        }
        let pooler = if vb.contains_tensor("pooler.dense.weight") {
            Some(Linear::load(&vb.pp("pooler.dense"), d, d)?)
        } else {
            None
        };
        Ok(BertModel { config: config.clone(), embeddings, layers, pooler, device })
    }

    /// Loads `model.safetensors` (memory-mapped) with `config`.
    pub fn load_safetensors(path: &Path, config: &BertConfig, device: &Device) -> Result<Self> {
        // SAFETY: the file is memory-mapped read-only; Warden never writes to
        // an encoder file while it is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device)? };
        Self::load(vb, config)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Runs the encoder. `ids` and `mask` are `[batch, len]` (`u32`; mask
    /// 1 for tokens, 0 for padding); returns hidden states `[batch, len, d]`.
    pub fn forward(&self, ids: &Tensor, type_ids: Option<&Tensor>, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_visiting(ids, type_ids, mask, mode, &mut |_| Ok(()))
    }

    /// [`forward`](Self::forward) that also hands each transformer layer's output
    /// `[batch, len, d]` to `visit`, first layer first (the last one is also returned).
    pub fn forward_visiting(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        mask: &Tensor,
        mode: Mode,
        visit: &mut dyn FnMut(&Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        if l > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {l} tokens exceeds max_position_embeddings {}; split it into windows first",
                self.config.max_position_embeddings
            );
        }
        let d = self.config.hidden_size;
        let (hidden_p, attn_p) = match mode {
            Mode::Infer => (0.0, 0.0),
            Mode::Train { hidden_dropout, attention_dropout } => (hidden_dropout, attention_dropout),
        };
        let e = &self.embeddings;
        let words = e.word.index_select(&ids.flatten_all()?, 0)?.reshape((b, l, d))?;
        let pos = e.position.narrow(0, 0, l)?;
        let types = match type_ids {
            Some(t) => e.token_type.index_select(&t.flatten_all()?, 0)?.reshape((b, l, d))?,
            None => e.token_type.narrow(0, 0, 1)?.reshape((1, 1, d))?.broadcast_as((b, l, d))?,
        };
        let x = words.broadcast_add(&pos)?.add(&types)?;
        let mut x = dropout(&e.norm.forward(&x, mode)?, hidden_p)?;

        // Additive mask [b, 1, 1, l]: 0 for tokens, f32::MIN for padding.
        let m = mask.to_dtype(DType::F32)?;
        let bias = ((m.ones_like()? - &m)? * f32::MIN as f64)?.reshape((b, 1, 1, l))?;

        for layer in &self.layers {
            x = self.layer_forward(layer, &x, &bias, mode, hidden_p, attn_p)?;
            visit(&x)?;
        }
        Ok(x)
    }

    fn layer_forward(&self, layer: &Layer, x: &Tensor, bias: &Tensor, mode: Mode, hidden_p: f32, attn_p: f32) -> Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let h = self.config.num_attention_heads;
        let dh = d / h;
        let x2 = x.reshape((b * l, d))?;
        let qkv = match &layer.fused_qkv {
            Some(f) => f.forward2d(&x2)?,
            None => fuse(&layer.query, &layer.key, &layer.value)?.forward2d(&x2)?,
        };
        // [b, l, 3, h, dh] -> [3, b, h, l, dh]
        let qkv = qkv.reshape((b, l, 3, h, dh))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
        // Inference on CPU fuses the element-wise steps into one pass each (scale with mask
        // and softmax, bias with GELU, bias with residual and LayerNorm); see `kernels`.
        let fused = !mode.differentiable() && kernels::applicable(x);
        let scale = 1.0 / (dh as f64).sqrt();
        let ctx = if fused {
            kernels::attention(&qkv, bias, scale as f32)?
        } else {
            let (k, v) = (qkv.get(1)?, qkv.get(2)?);
            let scores = (qkv.get(0)? * scale)?.matmul(&k.t()?)?.broadcast_add(bias)?;
            let probs = if mode.differentiable() {
                candle_nn::ops::softmax(&scores, D::Minus1)?
            } else {
                candle_nn::ops::softmax_last_dim(&scores)?
            };
            let probs = dropout(&probs, attn_p)?;
            probs.matmul(&v)?.transpose(1, 2)?.reshape((b * l, d))?
        };
        let x2 = project_add_norm(&layer.attn_out, &layer.attn_norm, &ctx, &x2, fused, mode, hidden_p)?;
        let inter = if fused && self.config.hidden_act == "gelu" {
            kernels::bias_gelu(&x2.matmul(&layer.intermediate.weight.t()?)?, &layer.intermediate.bias)?
        } else {
            activation(&layer.intermediate.forward2d(&x2)?, &self.config.hidden_act)?
        };
        let y = project_add_norm(&layer.output, &layer.out_norm, &inter, &x2, fused, mode, hidden_p)?;
        y.reshape((b, l, d))
    }

    /// Visits every parameter with its checkpoint name.
    pub fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        let e = &mut self.embeddings;
        f("embeddings.word_embeddings.weight", &mut e.word);
        f("embeddings.position_embeddings.weight", &mut e.position);
        f("embeddings.token_type_embeddings.weight", &mut e.token_type);
        f("embeddings.LayerNorm.weight", &mut e.norm.weight);
        f("embeddings.LayerNorm.bias", &mut e.norm.bias);
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{i}.");
            let lin = |f: &mut dyn FnMut(&str, &mut Tensor), name: &str, lin: &mut Linear| {
                f(&format!("{p}{name}.weight"), &mut lin.weight);
                f(&format!("{p}{name}.bias"), &mut lin.bias);
            };
            lin(f, "attention.self.query", &mut l.query);
            lin(f, "attention.self.key", &mut l.key);
            lin(f, "attention.self.value", &mut l.value);
            lin(f, "attention.output.dense", &mut l.attn_out);
            f(&format!("{p}attention.output.LayerNorm.weight"), &mut l.attn_norm.weight);
            f(&format!("{p}attention.output.LayerNorm.bias"), &mut l.attn_norm.bias);
            lin(f, "intermediate.dense", &mut l.intermediate);
            lin(f, "output.dense", &mut l.output);
            f(&format!("{p}output.LayerNorm.weight"), &mut l.out_norm.weight);
            f(&format!("{p}output.LayerNorm.bias"), &mut l.out_norm.bias);
        }
        if let Some(p) = &mut self.pooler {
            f("pooler.dense.weight", &mut p.weight);
            f("pooler.dense.bias", &mut p.bias);
        }
    }

    /// All parameters by checkpoint name.
    pub fn params(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut me = self.clone();
        me.visit_params_mut(&mut |n, t| out.push((n.to_string(), t.clone())));
        out
    }

    /// Makes the parameters whose name satisfies `select` trainable and
    /// returns them. The fused inference weights are dropped so gradients
    /// flow to the per-projection tensors.
    pub fn make_trainable(&mut self, select: &dyn Fn(&str) -> bool) -> Result<Vec<(String, Var)>> {
        let mut vars = Vec::new();
        let mut err = None;
        self.visit_params_mut(&mut |name, t| {
            if select(name) && err.is_none() {
                match Var::from_tensor(t) {
                    Ok(v) => {
                        *t = v.as_tensor().clone();
                        vars.push((name.to_string(), v));
                    }
                    Err(e) => err = Some(e),
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        for l in &mut self.layers {
            l.fused_qkv = None;
        }
        Ok(vars)
    }

    /// Replaces parameters by name (e.g. fine-tuned layers from an
    /// artifact); returns how many were replaced. Shapes must match.
    pub fn override_params(&mut self, tensors: &HashMap<String, Tensor>) -> Result<usize> {
        let mut n = 0;
        let mut err = None;
        self.visit_params_mut(&mut |name, t| {
            if let Some(new) = tensors.get(name) {
                if new.dims() != t.dims() {
                    err = Some(candle_core::Error::msg(format!(
                        "{name}: shape {:?} does not match the encoder's {:?}",
                        new.dims(),
                        t.dims()
                    )));
                } else {
                    *t = new.clone();
                    n += 1;
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        for l in &mut self.layers {
            l.fused_qkv = Some(fuse(&l.query, &l.key, &l.value)?);
        }
        Ok(n)
    }

    /// Re-fuses the query/key/value weights for fast inference (after
    /// training has changed them).
    pub fn refuse(&mut self) -> Result<()> {
        for l in &mut self.layers {
            let q = Linear { weight: l.query.weight.detach(), bias: l.query.bias.detach() };
            let k = Linear { weight: l.key.weight.detach(), bias: l.key.bias.detach() };
            let v = Linear { weight: l.value.weight.detach(), bias: l.value.bias.detach() };
            l.fused_qkv = Some(fuse(&q, &k, &v)?);
        }
        Ok(())
    }
}

/// How a sequence of hidden states becomes one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Mean over non-padding tokens (sentence-transformers' choice for MiniLM).
    Mean,
    /// The `[CLS]` token's hidden state.
    Cls,
    /// Mean and `[CLS]` concatenated (`2d` wide).
    MeanCls,
}

impl Pooling {
    pub fn width(self, d: usize) -> usize {
        match self {
            Pooling::MeanCls => 2 * d,
            _ => d,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mean" => Some(Pooling::Mean),
            "cls" => Some(Pooling::Cls),
            "mean-cls" => Some(Pooling::MeanCls),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::MeanCls => "mean-cls",
        }
    }
}

/// Pools `hidden` `[b, l, d]` with `mask` `[b, l]` into `[b, width]`.
pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    let mean = || -> Result<Tensor> {
        let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
        let sum = hidden.broadcast_mul(&m)?.sum(1)?;
        let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
        sum.broadcast_div(&count)
    };
    let cls = || hidden.narrow(1, 0, 1)?.squeeze(1);
    match pooling {
        Pooling::Mean => mean(),
        Pooling::Cls => cls(),
        Pooling::MeanCls => Tensor::cat(&[&mean()?, &cls()?], 1),
    }
}
