//! Fused CPU kernels for inference.
//!
//! The profile of `benches/encoder.rs` under `perf` (our forward and candle-transformers',
//! which both used these functions) put 10% of the time in libm's scalar `erff` (exact
//! GELU) and 7% in scalar `expf` (softmax), plus a full pass and an allocation for every bias add, scale and mask. These
//! kernels fuse those element-wise steps into the pass that has to happen anyway and use
//! branch-free polynomial `exp`/`erf` that the compiler vectorises:
//!
//! * [`bias_gelu`]: `gelu(x + bias)` row by row (the FFN's first projection).
//! * [`attention`]: all of scaled-dot-product attention per (text, head) — scores, mask,
//!   softmax and the weighted sum of values — writing the context straight into the
//!   `[b·l, h·dh]` layout the output projection reads, with the `[l, l]` scores in a
//!   per-task scratch buffer instead of a `[b, h, l, l]` tensor.
//! * [`bias_residual_norm`]: `LayerNorm(x + bias + residual)` (after each output projection).
//!
//! They run only in [`crate::Mode::Infer`] on contiguous `f32` CPU tensors and record no
//! gradient; training keeps the differentiable candle ops. Accuracy: [`exp`] has a relative
//! error below 3e-7 and [`erf`] an absolute error below 5e-7 over all of `f32`, so the
//! forward still matches candle-transformers' to 1e-5 (`tests/bert_parity.rs`).

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Rows handed to one rayon task: large enough that scheduling is noise.
const MIN_ELEMS_PER_TASK: usize = 16 * 1024;

/// `e^x` for `f32`, branch-free (Cody–Waite reduction, degree-6 polynomial), within 3e-7
/// relative (2–3 ulp). Inputs below -87.3 give exactly 0 rather than a subnormal, so masked
/// attention positions get no weight at all; inputs above about 88.37 give infinity (the
/// kernels only pass `x <= 0`).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let underflow = x < -87.3;
    let x = x.clamp(-87.3, 88.7);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    // The integer n, read from t's low mantissa bits: integer ops that vectorise, where
    // `n as i32` (saturating, NaN-checked) compiled to a scalar check per lane.
    let ni = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor coefficients to r^6: |r| <= ln2/2, so the truncation error is below 2e-8.
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    if underflow { 0.0 } else { p * scale }
}

/// The error function for `f32`, branch-free: Abramowitz & Stegun 7.1.26 (absolute error
/// at most 1.5e-7 in exact arithmetic, 5e-7 in `f32`) with [`exp`].
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// Exact (erf) GELU: `x · Φ(x)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The loops below, compiled once for the baseline target and once for AVX2+FMA and
/// AVX-512, picked at run time: the default `x86_64` target only allows SSE2.
macro_rules! multiversion {
    (fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports the features v4 was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

multiversion! {
    fn bias_gelu_rows(src: &[f32], bias: &[f32], dst: &mut [f32]) {
        for (s, d) in src.chunks_exact(bias.len()).zip(dst.chunks_exact_mut(bias.len())) {
            for ((s, b), d) in s.iter().zip(bias).zip(d.iter_mut()) {
                *d = gelu(s + b);
            }
        }
    }
}

/// Folds `v` with `step` into sixteen independent accumulators, then merges them with
/// `merge`, so that the reduction vectorises (a single `f32` accumulator pins the order of
/// additions and keeps the loop scalar).
#[inline(always)]
fn reduce(v: &[f32], init: f32, step: impl Fn(f32, f32) -> f32, merge: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a = step(*a, *x);
        }
    }
    let tail = chunks.remainder().iter().fold(init, |a, &x| step(a, x));
    acc.iter().fold(tail, |a, &x| merge(a, x))
}

fn max(a: f32, x: f32) -> f32 {
    if x > a { x } else { a }
}

fn add(a: f32, x: f32) -> f32 {
    a + x
}

multiversion! {
    fn softmax_rows(src: &[f32], mask: &[f32], scale: f32, dst: &mut [f32]) {
        for (s, d) in src.chunks_exact(mask.len()).zip(dst.chunks_exact_mut(mask.len())) {
            for ((s, m), d) in s.iter().zip(mask).zip(d.iter_mut()) {
                *d = s * scale + m;
            }
            let max = reduce(d, f32::MIN, max, max);
            for d in d.iter_mut() {
                *d = exp(*d - max);
            }
            let inv = 1.0 / reduce(d, 0.0, add, add);
            for d in d.iter_mut() {
                *d *= inv;
            }
        }
    }
}

multiversion! {
    fn residual_norm_rows(src: &[f32], residual: &[f32], p: &NormParams, dst: &mut [f32]) {
        let d = p.bias.len();
        let inv_d = 1.0 / d as f32;
        for ((s, r), o) in src.chunks_exact(d).zip(residual.chunks_exact(d)).zip(dst.chunks_exact_mut(d)) {
            for (((s, r), b), o) in s.iter().zip(r).zip(&p.bias).zip(o.iter_mut()) {
                *o = s + r + b;
            }
            let mean = reduce(o, 0.0, add, add) * inv_d;
            for o in o.iter_mut() {
                *o -= mean;
            }
            let var = reduce(o, 0.0, |a, x| a + x * x, add) * inv_d;
            let inv_std = 1.0 / (var + p.eps).sqrt();
            for ((o, g), b) in o.iter_mut().zip(&p.gamma).zip(&p.beta) {
                *o = *o * inv_std * g + b;
            }
        }
    }
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{what}: expected f32") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "warden-bias-gelu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "bias_gelu")?;
        let bias = contiguous_f32(s2, l2, "bias_gelu bias")?;
        let d = bias.len();
        if d == 0 || l1.dims().last() != Some(&d) {
            candle_core::bail!("bias_gelu: bias of {d} does not match input {:?}", l1.dims());
        }
        let mut out = vec![0f32; x.len()];
        let rows = (MIN_ELEMS_PER_TASK / d).max(1) * d;
        out.par_chunks_mut(rows).zip(x.par_chunks(rows)).for_each(|(o, x)| bias_gelu_rows(x, bias, o));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// The per-feature vectors of [`bias_residual_norm`], read out of their tensors once per
/// call (a few kilobytes).
struct NormParams {
    bias: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl CustomOp2 for NormParams {
    fn name(&self) -> &'static str {
        "warden-bias-residual-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "bias_residual_norm")?;
        let r = contiguous_f32(s2, l2, "bias_residual_norm residual")?;
        let d = self.bias.len();
        if d == 0 || l1.dims().last() != Some(&d) || l1.dims() != l2.dims() {
            candle_core::bail!("bias_residual_norm: shapes {:?}, {:?} and {d} features disagree", l1.dims(), l2.dims());
        }
        let mut out = vec![0f32; x.len()];
        let rows = (MIN_ELEMS_PER_TASK / d).max(1) * d;
        out.par_chunks_mut(rows)
            .zip(x.par_chunks(rows).zip(r.par_chunks(rows)))
            .for_each(|(o, (x, r))| residual_norm_rows(x, r, self, o));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

struct Attention {
    scale: f32,
}

/// A raw pointer that rayon tasks may share because each writes a disjoint region.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: see `Attention::cpu_fwd`: the regions written through it never overlap.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    // A method, so that closures capture the whole `SendPtr` rather than its raw field.
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "warden-attention"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous_f32(s1, l1, "attention")?;
        let mask = contiguous_f32(s2, l2, "attention mask")?;
        let dims = l1.dims();
        let [three, b, h, l, dh] = dims else { candle_core::bail!("attention: qkv must be [3, b, h, l, dh], got {dims:?}") };
        let (b, h, l, dh) = (*b, *h, *l, *dh);
        if *three != 3 || l2.dims() != [b, 1, 1, l] {
            candle_core::bail!("attention: qkv {dims:?} and mask {:?} disagree", l2.dims());
        }
        let width = h * dh;
        let mut out = vec![0f32; b * l * width];
        let dst = SendPtr(out.as_mut_ptr());
        let block = l * dh;
        (0..b * h).into_par_iter().for_each_init(
            || (vec![0f32; l * l], vec![0f32; l * l]),
            |(scores, probs), i| {
                let (bi, hi) = (i / h, i % h);
                let q = &qkv[i * block..][..block];
                let k = &qkv[(b * h + i) * block..][..block];
                let v = &qkv[(2 * b * h + i) * block..][..block];
                // SAFETY: the slices are in bounds (checked shapes above); scores is l x l
                // row-major; kᵀ is read through its strides. The context block of (bi, hi)
                // is rows bi·l .. bi·l+l, columns hi·dh .. hi·dh+dh of `out`, disjoint
                // from every other task's, and `out` outlives the loop.
                unsafe {
                    gemm::gemm(
                        l, l, dh,
                        scores.as_mut_ptr(), 1, l as isize, false,
                        q.as_ptr(), 1, dh as isize,
                        k.as_ptr(), dh as isize, 1,
                        0.0, 1.0, false, false, false, gemm::Parallelism::None,
                    );
                }
                softmax_rows(scores, &mask[bi * l..][..l], self.scale, probs);
                unsafe {
                    let ctx = dst.get().add(bi * l * width + hi * dh);
                    gemm::gemm(
                        l, dh, l,
                        ctx, 1, width as isize, false,
                        probs.as_ptr(), 1, l as isize,
                        v.as_ptr(), 1, dh as isize,
                        0.0, 1.0, false, false, false, gemm::Parallelism::None,
                    );
                }
            },
        );
        Ok((CpuStorage::F32(out), Shape::from_dims(&[b * l, width])))
    }
}

/// Whether the fused kernels can take `t` (CPU, f32).
pub fn applicable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Scaled-dot-product attention for `qkv` `[3, b, h, l, dh]` and an additive `mask`
/// `[b, 1, 1, l]`: `softmax(scale · q·kᵀ + mask) · v` per (text, head), returned as
/// `[b·l, h·dh]` (heads side by side, as the output projection wants them).
pub fn attention(qkv: &Tensor, mask: &Tensor, scale: f32) -> Result<Tensor> {
    qkv.contiguous()?.apply_op2_no_bwd(&mask.contiguous()?, &Attention { scale })
}

/// `gelu_erf(x + bias)` for `x` `[.., d]` and `bias` `[d]`, both contiguous f32 on CPU.
pub fn bias_gelu(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2_no_bwd(&bias.contiguous()?, &BiasGelu)
}

/// `LayerNorm(x + bias + residual)` over the last axis, with LayerNorm's `gamma`, `beta`
/// and `eps`: the output projection's bias add, the residual connection and the norm in
/// one pass instead of three.
pub fn bias_residual_norm(x: &Tensor, bias: &Tensor, residual: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let p = NormParams { bias: bias.to_vec1()?, gamma: gamma.to_vec1()?, beta: beta.to_vec1()?, eps: eps as f32 };
    if p.gamma.len() != p.bias.len() || p.beta.len() != p.bias.len() {
        candle_core::bail!("bias_residual_norm: bias, gamma and beta lengths differ");
    }
    x.contiguous()?.apply_op2_no_bwd(&residual.contiguous()?, &p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn exp_matches_std_to_3e7_relative() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp(-87.4), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert!(exp(-87.2) > 0.0);
        assert!(exp(88.3).is_finite() && exp(88.4).is_infinite(), "the documented overflow");
    }

    /// The exponent read from the rounding constant's mantissa bits is the integer that
    /// `n as i32` gave before (the cast compiled to a scalar check per lane), at every
    /// reachable n, so `exp` returns the same bits as it did.
    #[test]
    fn the_exponent_from_mantissa_bits_is_the_rounded_integer() {
        const ROUND: f32 = 12_582_912.0;
        let mut x = -87.3f32;
        while x <= 88.7 {
            let t = x * std::f32::consts::LOG2_E + ROUND;
            assert_eq!(t.to_bits() as i32 - ROUND.to_bits() as i32, (t - ROUND) as i32, "x = {x}");
            x += 0.01;
        }
    }

    #[test]
    fn erf_and_gelu_match_libm() {
        let mut worst = 0f64;
        let mut x = -9.0f32;
        while x < 9.0 {
            let want = candle_core::cpu::erf::erf_f64(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
            let g = gelu(x) as f64;
            let gw = 0.5 * x as f64 * (1.0 + candle_core::cpu::erf::erf_f64(x as f64 / std::f64::consts::SQRT_2));
            assert!((g - gw).abs() <= 3e-7 * (1.0 + (x as f64).abs()), "gelu({x}) = {g}, want {gw}");
            x += 0.00917;
        }
        assert!(worst < 5e-7, "worst absolute error {worst:e}");
        assert!(erf(0.0).abs() < 5e-7);
        assert_eq!(erf(-20.0), -1.0);
    }

    #[test]
    fn fused_ops_match_unfused_candle() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 2.0, (37, 96), &dev)?;
        let b = Tensor::randn(0f32, 1.0, 96, &dev)?;
        let want = x.broadcast_add(&b)?.gelu_erf()?;
        let got = bias_gelu(&x, &b)?;
        let diff = (want - got)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 2e-6, "bias_gelu differs by {diff}");

        let r = Tensor::randn(0f32, 1.5, (37, 96), &dev)?;
        let (g, beta) = (Tensor::randn(1f32, 0.2, 96, &dev)?, Tensor::randn(0f32, 0.2, 96, &dev)?);
        let want = candle_nn::ops::layer_norm(&x.broadcast_add(&b)?.add(&r)?, &g, &beta, 1e-12)?;
        let got = bias_residual_norm(&x, &b, &r, &g, &beta, 1e-12)?;
        let diff = (want - got)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 2e-5, "bias_residual_norm differs by {diff}");

        let scores = Tensor::randn(0f32, 3.0, (3, 4, 5, 7), &dev)?;
        let mask: Vec<f32> = (0..21).map(|i| if i % 7 >= 5 - i / 7 { f32::MIN } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, (3, 1, 1, 7), &dev)?;
        let want = candle_nn::ops::softmax_last_dim(&(scores.clone() * 0.25)?.broadcast_add(&mask)?)?;
        let (src, m) = (scores.flatten_all()?.to_vec1::<f32>()?, mask.flatten_all()?.to_vec1::<f32>()?);
        let mut flat = vec![0f32; src.len()];
        for (i, (s, d)) in src.chunks(5 * 7).zip(flat.chunks_mut(5 * 7)).enumerate() {
            softmax_rows(s, &m[(i / 4) * 7..][..7], 0.25, d);
        }
        let got = Tensor::from_vec(flat.clone(), (3, 4, 5, 7), &dev)?;
        let diff = (want - &got)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "softmax_rows differs by {diff}");
        // Padding gets exactly no weight, and rows sum to one.
        for (r, row) in flat.chunks(7).enumerate() {
            let batch = r / 20;
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
            for (j, p) in row.iter().enumerate() {
                if j >= 5 - batch {
                    assert_eq!(*p, 0.0, "padding position {j} of batch {batch} got weight");
                }
            }
        }
        // Whole attention: [3, b=3, h=4, l=7, dh=5] against the unfused ops.
        let qkv = Tensor::randn(0f32, 1.0, (3, 3, 4, 7, 5), &dev)?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let p = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * 0.25)?.broadcast_add(&mask)?)?;
        let want = p.matmul(&v)?.transpose(1, 2)?.reshape((21, 20))?;
        let got_ctx = attention(&qkv, &mask, 0.25)?;
        assert_eq!(got_ctx.dims(), &[21, 20]);
        let diff = (want - got_ctx)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "attention differs by {diff}");
        // What sits at padded key positions cannot change the context of any text.
        let noise = Tensor::randn(0f32, 5.0, (3, 3, 4, 7, 5), &dev)?;
        let keep: Vec<f32> = (0..3 * 3 * 4 * 7 * 5).map(|i| ((i / 5) % 7 < 5 - (i / (4 * 7 * 5)) % 3) as u8 as f32).collect();
        let keep = Tensor::from_vec(keep, (3, 3, 4, 7, 5), &dev)?;
        let other = ((&qkv * &keep)? + (noise * (1.0 - &keep)?)?)?;
        let a = attention(&qkv, &mask, 0.25)?.flatten_all()?.to_vec1::<f32>()?;
        let b = attention(&other, &mask, 0.25)?.flatten_all()?.to_vec1::<f32>()?;
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let (text, token) = (i / (7 * 20), (i / 20) % 7);
            if token < 5 - text {
                assert!((x - y).abs() < 1e-6, "text {text} token {token}: padding changed the context");
            }
        }
        Ok(())
    }
}
