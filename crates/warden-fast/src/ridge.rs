//! Ridge-regularised logistic regression on L2-normalised dense vectors, one model per
//! category with masked labels: the in-domain probes of both tiers (the encoder tier's on
//! encoder features, `warden-heads`; the fast tier's on static token embeddings,
//! [`crate::static_probe`]).
//!
//! The fit is Newton's method on the penalised log-likelihood, each step a Cholesky solve
//! of the Hessian, which is symmetric positive definite by construction (the ridge term):
//! exactly the case Cholesky handles, so a general linear-algebra dependency is not needed.
//! With fewer rows than features (674 rows, 2,304 layer features) the steps run in the
//! rows' span, on `n + 1` unknowns instead of `d + 1` (`fit_one`).

use warden_core::Label;

use rayon::prelude::*;

use crate::train::{backtrack, logistic_loss};

/// The fitted probe: per category, weights over the normalised vector and a bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub input: usize,
    /// `categories × input`, row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// `x / |x|` (a zero vector stays zero).
pub fn normalized(x: &[f32]) -> Vec<f32> {
    let n = x.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt();
    if n == 0.0 {
        return x.to_vec();
    }
    x.iter().map(|v| (*v as f64 / n) as f32).collect()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Probe {
    pub fn categories(&self) -> usize {
        self.bias.len()
    }

    /// Per category probability for one pooled vector (normalised here).
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let x = normalized(&x[..self.input]);
        (0..self.categories())
            .map(|c| {
                let w = &self.weight[c * self.input..(c + 1) * self.input];
                let z: f64 = w.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() + self.bias[c] as f64;
                sigmoid(z) as f32
            })
            .collect()
    }

    /// Rounds the weights to f16 (nearest, ties to even), the precision they are stored in.
    /// Idempotent.
    pub fn round_to_f16(&mut self) {
        for v in self.weight.iter_mut().chain(&mut self.bias) {
            *v = half::f16::from_f32(*v).to_f32();
        }
    }
}

/// Fits the probe on `rows × dim` vectors `x` (normalised here) with their labels. Rows
/// with an unknown label for a category do not enter that category's fit; a soft label
/// enters as its value. A category whose labelled rows are all of one class gets zero
/// weights and `fitted = false`.
pub fn fit_probe(x: &[f32], dim: usize, labels: &[Vec<Label>], categories: usize, l2: f64) -> (Probe, Vec<bool>, Vec<usize>, Vec<usize>) {
    fit_probe_weighted(x, dim, labels, None, categories, l2)
}

/// [`fit_probe`] with a weight per row (the log-likelihood is a weighted sum; the penalty
/// is unchanged). `None` weighs every row 1.
pub fn fit_probe_weighted(
    x: &[f32],
    dim: usize,
    labels: &[Vec<Label>],
    row_weights: Option<&[f32]>,
    categories: usize,
    l2: f64,
) -> (Probe, Vec<bool>, Vec<usize>, Vec<usize>) {
    let rows = labels.len();
    assert_eq!(x.len(), rows * dim, "fit_probe: x is not rows × dim");
    if let Some(w) = row_weights {
        assert_eq!(w.len(), rows, "fit_probe: one weight per row");
    }
    let weight_of = |r: usize| row_weights.map_or(1.0, |w| w[r] as f64);
    let xs: Vec<Vec<f64>> = (0..rows).map(|r| normalized(&x[r * dim..(r + 1) * dim]).into_iter().map(f64::from).collect()).collect();
    let mut weight = vec![0f32; categories * dim];
    let mut bias = vec![0f32; categories];
    let (mut fitted, mut labelled, mut positives) = (vec![false; categories], vec![0; categories], vec![0; categories]);
    for c in 0..categories {
        let data: Vec<Row<'_>> = labels
            .iter()
            .zip(&xs)
            .enumerate()
            .filter_map(|(r, (l, v))| l.get(c).and_then(|l| l.target()).map(|t| (v.as_slice(), t as f64, weight_of(r))))
            .filter(|(_, _, w)| *w > 0.0)
            .collect();
        labelled[c] = data.len();
        positives[c] = data.iter().filter(|(_, t, _)| *t >= 0.5).count();
        let mass: f64 = data.iter().map(|(_, t, _)| t).sum();
        if mass <= 0.0 || mass >= data.len() as f64 {
            continue;
        }
        let w = fit_one(&data, dim, l2);
        for (dst, v) in weight[c * dim..(c + 1) * dim].iter_mut().zip(&w) {
            *dst = *v as f32;
        }
        bias[c] = w[dim] as f32;
        fitted[c] = true;
    }
    (Probe { input: dim, weight, bias }, fitted, labelled, positives)
}

/// One category's ridge logistic regression; returns `d` weights then the bias.
///
/// With fewer rows than dimensions (a few hundred in-domain rows against 2,304 layer
/// features) the Newton steps run in the rows' span instead: the ridge optimum lies in it
/// (the penalty only grows outside), so with the Gram matrix `X Xᵀ = L Lᵀ` the problem on
/// the `n` features `L` (rows of the Cholesky factor) has the same likelihood and penalty
/// for `w = Xᵀ L⁻ᵀ β`. Each step then costs `n³`, not `d³`. A relative jitter on the Gram
/// diagonal keeps duplicate rows factorable; a Gram matrix that still fails to factor
/// (non-finite values) falls back to the primal.
fn fit_one(data: &[Row<'_>], d: usize, l2: f64) -> Vec<f64> {
    let n = data.len();
    if n >= d {
        return newton(data, d, l2);
    }
    let mut gram = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            gram[i * n + j] = dot(data[i].0, data[j].0);
        }
        // A relative jitter: the fit is exact up to directions this small.
        gram[i * n + i] += 1e-10 * gram[i * n + i].max(1.0);
    }
    if !cholesky(&mut gram, n) {
        return newton(data, d, l2);
    }
    let rows: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| if j <= i { gram[i * n + j] } else { 0.0 }).collect()).collect();
    let reduced: Vec<Row<'_>> = rows.iter().zip(data).map(|(r, (_, t, w))| (r.as_slice(), *t, *w)).collect();
    let beta = newton(&reduced, n, l2);
    // Lᵀ γ = β, then w = Xᵀ γ.
    let mut gamma = beta[..n].to_vec();
    solve_lower_transposed(&gram, n, &mut gamma);
    let mut w = vec![0f64; d + 1];
    for (g, (x, ..)) in gamma.iter().zip(data) {
        for (wi, xi) in w[..d].iter_mut().zip(x.iter()) {
            *wi += g * xi;
        }
    }
    w[d] = beta[n];
    w
}

/// One labelled row of a category's fit: features, target in [0, 1], weight.
type Row<'a> = (&'a [f64], f64, f64);

/// Rows per chunk of the parallel sums: at most 16 chunks, so the per-chunk Hessians stay
/// small; the chunks' sums are added in order, so the result does not depend on threads.
fn chunk_rows(rows: usize) -> usize {
    rows.div_ceil(16).max(256)
}

/// Ridge logistic regression by Newton's method; returns `d` weights then the bias.
fn newton(data: &[Row<'_>], d: usize, l2: f64) -> Vec<f64> {
    let n = d + 1;
    let total: f64 = data.iter().map(|(_, _, wt)| wt).sum();
    let mass: f64 = data.iter().map(|(_, t, wt)| t * wt).sum();
    let prior = mass / total;
    let mut w = vec![0f64; n];
    w[d] = (prior / (1.0 - prior)).ln();
    let chunk = chunk_rows(data.len());
    let loss = |w: &[f64]| -> f64 {
        let parts: Vec<f64> = data
            .par_chunks(chunk)
            .map(|rows| rows.iter().map(|(x, t, wt)| wt * logistic_loss(dot(x, &w[..d]) + w[d], *t)).sum())
            .collect();
        parts.iter().sum::<f64>() + 0.5 * l2 * dot(&w[..d], &w[..d])
    };
    let mut current = loss(&w);
    for _ in 0..50 {
        // Only the lower triangle of the Hessian is accumulated: it is all `cholesky_solve` reads.
        let parts: Vec<(Vec<f64>, Vec<f64>)> = data
            .par_chunks(chunk)
            .map(|rows| {
                let mut g = vec![0f64; n];
                let mut h = vec![0f64; n * n];
                for (x, t, wt) in rows {
                    let p = sigmoid(dot(x, &w[..d]) + w[d]);
                    let s = wt * (p * (1.0 - p)).max(1e-12);
                    let r = wt * (p - t);
                    for i in 0..d {
                        g[i] += r * x[i];
                        let si = s * x[i];
                        let row = &mut h[i * n..i * n + i + 1];
                        for (hij, xj) in row[..i].iter_mut().zip(&x[..i]) {
                            *hij += si * xj;
                        }
                        row[i] += si * x[i];
                        h[d * n + i] += si;
                    }
                    g[d] += r;
                    h[d * n + d] += s;
                }
                (g, h)
            })
            .collect();
        let mut parts = parts.into_iter();
        let (mut g, mut h) = parts.next().unwrap_or_else(|| (vec![0f64; n], vec![0f64; n * n]));
        for (pg, ph) in parts {
            g.iter_mut().zip(&pg).for_each(|(a, b)| *a += b);
            h.iter_mut().zip(&ph).for_each(|(a, b)| *a += b);
        }
        for i in 0..d {
            g[i] += l2 * w[i];
            h[i * n + i] += l2;
        }
        h[d * n + d] += 1e-9;
        let Some(step) = cholesky_solve(&mut h, &g, n) else { break };
        // Damped (nearly separable classes overshoot a full step).
        let at = |scale: f64| -> Vec<f64> { w.iter().zip(&step).map(|(a, s)| a - scale * s).collect() };
        let Some((scale, l)) = backtrack(current, |s| loss(&at(s))) else { break };
        let moved = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
        w = at(scale);
        let gain = current - l;
        current = l;
        if moved < 1e-8 || gain < 1e-10 * current.max(1.0) {
            break;
        }
    }
    w
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `A x = b` for symmetric positive definite `A` (`n × n`, row-major). Only the lower
/// triangle is read, and it is overwritten by the Cholesky factor. `None` when `A` is not
/// positive definite.
fn cholesky_solve(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    if !cholesky(a, n) {
        return None;
    }
    // L y = b, then Lᵀ x = y.
    let mut y = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            y[i] -= a[i * n + k] * y[k];
        }
        y[i] /= a[i * n + i];
    }
    solve_lower_transposed(a, n, &mut y);
    Some(y)
}

/// Solves `Lᵀ x = y` in place, `L` the lower triangle of `l` (`n × n`, row-major).
fn solve_lower_transposed(l: &[f64], n: usize, y: &mut [f64]) {
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= l[k * n + i] * y[k];
        }
        y[i] /= l[i * n + i];
    }
}

/// Overwrites the lower triangle of symmetric positive definite `a` (`n × n`, row-major)
/// with its Cholesky factor `L` (`a = L Lᵀ`); false when `a` is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut diag = a[j * n + j];
        for k in 0..j {
            diag -= a[j * n + k] * a[j * n + k];
        }
        if !diag.is_finite() || diag <= 0.0 {
            return false;
        }
        let ljj = diag.sqrt();
        a[j * n + j] = ljj;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / ljj;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = M Mᵀ + I for a fixed M, x known; b = A x.
        let n = 5;
        let m: Vec<f64> = (0..n * n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>() + if i == j { 1.0 } else { 0.0 };
            }
        }
        let x: Vec<f64> = (0..n).map(|i| i as f64 - 1.5).collect();
        let b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect();
        let got = cholesky_solve(&mut a.clone(), &b, n).unwrap();
        for (g, w) in got.iter().zip(&x) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {x:?}");
        }
        // Not positive definite: refused, not garbage.
        let mut bad = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_solve(&mut bad, &[1.0, 1.0], 2).is_none());
    }

    /// Category 0 is positive when the first coordinate is large, category 1 is unknown on
    /// every row, category 2 has positives only.
    fn data(n: usize, dim: usize) -> (Vec<f32>, Vec<Vec<Label>>) {
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let v: Vec<f32> = (0..dim).map(|_| next()).collect();
            let pos = v[0] > 0.1 + 0.2 * next();
            labels.push(vec![if pos { Label::Positive } else { Label::Negative }, Label::Unknown, Label::Positive]);
            x.extend(v);
        }
        (x, labels)
    }

    #[test]
    fn probe_learns_the_direction_and_skips_what_it_cannot_fit() {
        let dim = 12;
        let (x, labels) = data(600, dim);
        let (probe, fitted, labelled, positives) = fit_probe(&x, dim, &labels, 3, 0.1);
        assert_eq!(fitted, vec![true, false, false]);
        assert_eq!(labelled, vec![600, 0, 600]);
        assert_eq!(positives[2], 600);
        // The largest weight of category 0 is on coordinate 0, and unfitted ones are zero.
        let w0 = &probe.weight[..dim];
        let top = (0..dim).max_by(|&a, &b| w0[a].abs().total_cmp(&w0[b].abs())).unwrap();
        assert_eq!(top, 0, "weights {w0:?}");
        assert!(probe.weight[dim..].iter().all(|&v| v == 0.0));
        // It ranks fresh rows: AUC of category 0 well above chance.
        let (xt, lt) = data(400, dim);
        let scored: Vec<(f32, bool)> = (0..400)
            .map(|r| (probe.predict(&xt[r * dim..(r + 1) * dim])[0], lt[r][0] == Label::Positive))
            .collect();
        let (pos, neg): (Vec<_>, Vec<_>) = scored.iter().partition(|(_, y)| *y);
        let wins: usize = pos.iter().map(|(p, _)| neg.iter().filter(|(q, _)| q < p).count()).sum();
        let auc = wins as f64 / (pos.len() * neg.len()) as f64;
        assert!(auc > 0.85, "AUC {auc}");
        // Scaling the input does not change the prediction (it is normalised).
        let v = &xt[..dim];
        let v3: Vec<f32> = v.iter().map(|a| a * 3.0).collect();
        assert!((probe.predict(v)[0] - probe.predict(&v3)[0]).abs() < 1e-6);
    }

    #[test]
    fn a_stronger_ridge_shrinks_the_weights() {
        let dim = 12;
        let (x, labels) = data(300, dim);
        let norm = |p: &Probe| p.weight[..dim].iter().map(|v| v * v).sum::<f32>();
        let (weak, ..) = fit_probe(&x, dim, &labels, 3, 0.01);
        let (strong, ..) = fit_probe(&x, dim, &labels, 3, 10.0);
        assert!(norm(&strong) < 0.5 * norm(&weak), "{} vs {}", norm(&strong), norm(&weak));
    }

    /// With fewer rows than dimensions the fit runs in the rows' span; it must land on the
    /// same optimum as Newton in the full space.
    #[test]
    fn the_row_space_fit_matches_the_full_space_fit() {
        let dim = 40;
        let (x, labels) = data(25, dim);
        let xs: Vec<Vec<f64>> = (0..25).map(|r| normalized(&x[r * dim..(r + 1) * dim]).into_iter().map(f64::from).collect()).collect();
        let rows: Vec<Row<'_>> = xs.iter().zip(&labels).map(|(v, l)| (v.as_slice(), l[0].target().unwrap() as f64, 1.0)).collect();
        for l2 in [0.1, 1.0] {
            let primal = newton(&rows, dim, l2);
            let dual = fit_one(&rows, dim, l2);
            let gap = primal.iter().zip(&dual).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(gap < 1e-6, "l2 {l2}: weights differ by {gap}");
        }
        // A duplicated row makes the Gram matrix singular; with the jitter it still factors,
        // and the fit is still the full-space one.
        let mut dup = rows.clone();
        dup.push(rows[0]);
        let w = fit_one(&dup, dim, 0.1);
        assert!(w.iter().all(|v| v.is_finite()));
        let gap = newton(&dup, dim, 0.1).iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(gap < 1e-4, "duplicated row: weights differ by {gap}");
    }

    /// A row of weight 2 counts as that row twice, in both the full-space and the row-space
    /// fit; a weight of 0 drops the row.
    #[test]
    fn a_row_weight_counts_as_repeated_rows() {
        for (n, dim) in [(60, 6), (20, 30)] {
            let (x, labels) = data(n, dim);
            let mut weights = vec![1.0f32; n];
            weights[0] = 2.0;
            weights[1] = 0.0;
            let (weighted, ..) = fit_probe_weighted(&x, dim, &labels, Some(&weights), 3, 0.1);
            let mut x2 = x.clone();
            x2.extend_from_slice(&x[..dim]);
            let mut l2 = labels.clone();
            l2.push(labels[0].clone());
            let keep: Vec<usize> = (0..=n).filter(|&r| r != 1).collect();
            let xk: Vec<f32> = keep.iter().flat_map(|&r| x2[r * dim..(r + 1) * dim].to_vec()).collect();
            let lk: Vec<Vec<Label>> = keep.iter().map(|&r| l2[r].clone()).collect();
            let (repeated, ..) = fit_probe(&xk, dim, &lk, 3, 0.1);
            let gap = weighted.weight.iter().zip(&repeated.weight).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(gap < 1e-4, "{n} rows × {dim}: weights differ by {gap}");
            assert!((weighted.bias[0] - repeated.bias[0]).abs() < 1e-4);
        }
    }
}
