//! Tail probabilities as z-scores: `ln Γ` (Lanczos), the beta-binomial upper tail and the
//! inverse normal CDF (Acklam). Kept in log space so that a tail of 1e-400 is still a
//! finite z.

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln Γ(x)` for `x >= 0.5` (Lanczos, g = 7; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    debug_assert!(x >= 0.5);
    let x = x - 1.0;
    let t = x + 7.5;
    let mut s = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        s += c / (x + i as f64);
    }
    LN_SQRT_2PI + (x + 0.5) * t.ln() - t + s.ln()
}

/// Most terms summed for one tail before giving up (the caller then uses the normal
/// approximation, which is accurate in the regimes that need this many terms).
const MAX_TERMS: u32 = 100_000;

/// `ln P(X >= x)` for `X ~ BetaBinomial(n, a, b)`, `1 <= x <= n`, `a, b >= 0.5`: the
/// number of flags among `n` texts when the flag rate itself is only known as
/// `Beta(a, b)`. Sums the pmf from `x` upwards (it decreases geometrically past the mode).
pub(crate) fn ln_beta_binomial_upper_tail(x: u64, n: u64, a: f64, b: f64) -> Option<f64> {
    debug_assert!(x >= 1 && x <= n && a >= 0.5 && b >= 0.5);
    let (nf, xf) = (n as f64, x as f64);
    let ln_pmf = ln_gamma(nf + 1.0) - ln_gamma(xf + 1.0) - ln_gamma(nf - xf + 1.0)
        + ln_gamma(xf + a)
        + ln_gamma(nf - xf + b)
        - ln_gamma(nf + a + b)
        + ln_gamma(a + b)
        - ln_gamma(a)
        - ln_gamma(b);
    // Terms relative to P(X = x).
    let (mut sum, mut term) = (1.0f64, 1.0f64);
    let mut k = xf;
    for _ in 0..MAX_TERMS {
        if k >= nf {
            return Some(ln_pmf + sum.ln());
        }
        let ratio = (nf - k) / (k + 1.0) * (k + a) / (nf - k - 1.0 + b);
        term *= ratio;
        sum += term;
        k += 1.0;
        if !sum.is_finite() {
            return None;
        }
        if ratio < 1.0 && term < sum * 1e-17 {
            return Some(ln_pmf + sum.ln());
        }
    }
    None
}

/// `z` such that `P(Z >= z) = exp(ln_q)` for a standard normal `Z` (Acklam's algorithm,
/// relative error about 1e-9). Only `ln q` is needed in the far tail, so no underflow.
pub(crate) fn upper_tail_z_from_ln(ln_q: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    // Lower-tail quantile x(p) < 0 for p < P_LOW, from sqrt(-2 ln p).
    // ln p is clamped so that the polynomial cannot overflow (|z| <= about 1400).
    let tail = |ln_p: f64| {
        let q = (-2.0 * ln_p.max(-1e6)).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if ln_q.is_nan() {
        return 0.0;
    }
    let ln_q = ln_q.min(0.0);
    if ln_q < P_LOW.ln() {
        // Upper tail q small: z = -x(q).
        return -tail(ln_q);
    }
    let q = ln_q.exp();
    if q > 1.0 - P_LOW {
        // z = x(1 - q), far in the lower tail.
        return tail((-q).ln_1p());
    }
    let u = q - 0.5;
    let r = u * u;
    let x = (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * u
        / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0);
    -x
}

/// The normal-equivalent z of observing at least `x` flags in `n` texts when the baseline
/// rate `p` was estimated from the equivalent of `n_baseline` texts: the tail of the
/// posterior predictive beta-binomial with a Jeffreys prior,
/// `Beta(p·N + 1/2, (1-p)·N + 1/2)`. For large counts this is the normal z with
/// `sd² = p(1-p)(1/n + 1/N)`, which is also the fallback should the sum not converge.
pub(crate) fn upper_tail_z(x: u64, n: u64, p: f64, n_baseline: f64) -> f64 {
    let a = p * n_baseline + 0.5;
    let b = (1.0 - p) * n_baseline + 0.5;
    match ln_beta_binomial_upper_tail(x, n, a, b) {
        Some(ln_q) => upper_tail_z_from_ln(ln_q),
        None => {
            let sd = (p * (1.0 - p) * (1.0 / n as f64 + 1.0 / n_baseline)).sqrt();
            (x as f64 / n as f64 - p) / sd
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for k in 1..30u32 {
            // Γ(k) = (k-1)!
            let lg = ln_gamma(f64::from(k));
            assert!(
                (lg - fact.ln()).abs() < 1e-10 * fact.ln().max(1.0),
                "Γ({k})"
            );
            fact *= f64::from(k);
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    /// Binomial tail by summing the pmf, for small n.
    fn binomial_tail(x: u64, n: u64, p: f64) -> f64 {
        let mut pmf = (1.0 - p).powi(n as i32); // P(X = 0)
        let mut tail = 0.0;
        for k in 0..=n {
            if k >= x {
                tail += pmf;
            }
            pmf *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
        }
        tail
    }

    /// Beta-binomial tail by its definition, pmf(k) = C(n,k) B(k+a, n-k+b) / B(a, b).
    fn beta_binomial_tail(x: u64, n: u64, a: f64, b: f64) -> f64 {
        let ln_beta = |p: f64, q: f64| ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q);
        let ln_choose =
            |n: u64, k: u64| -> f64 { (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum() };
        (x..=n)
            .map(|k| {
                (ln_choose(n, k) + ln_beta(k as f64 + a, (n - k) as f64 + b) - ln_beta(a, b)).exp()
            })
            .sum()
    }

    #[test]
    fn beta_binomial_tail_matches_definition_and_binomial_limit() {
        for &(n, a, b) in &[
            (40u64, 0.5, 0.5),
            (40, 12.0, 2300.0),
            (120, 3.0, 7.0),
            (200, 100.0, 100.0),
        ] {
            for x in 1..=n {
                let want = beta_binomial_tail(x, n, a, b);
                if want < 1e-250 {
                    continue;
                }
                let got = ln_beta_binomial_upper_tail(x, n, a, b).unwrap().exp();
                assert!(
                    (got - want).abs() <= 1e-8 * want,
                    "n={n} a={a} b={b} x={x}: {got} vs {want}"
                );
            }
        }
        // With a baseline from very many texts it is the binomial tail.
        for &(n, p) in &[(40u64, 0.005), (40, 0.03), (120, 0.03), (200, 0.5)] {
            let big = 1e8; // ln Γ loses ~1e-16·N·ln N absolute precision beyond this
            for x in 1..=n {
                let want = binomial_tail(x, n, p);
                if want < 1e-30 {
                    // Beyond this the finite baseline (1e8 texts) itself shows.
                    continue;
                }
                let got = ln_beta_binomial_upper_tail(x, n, p * big, (1.0 - p) * big)
                    .unwrap()
                    .exp();
                assert!(
                    (got - want).abs() <= 1e-3 * want,
                    "n={n} p={p} x={x}: {got} vs {want}"
                );
            }
        }
        // Far tails stay finite in log space; large windows converge.
        let ln = ln_beta_binomial_upper_tail(10_000, 10_000, 0.03 * 1e12, 0.97 * 1e12).unwrap();
        assert!((ln - 10_000.0 * 0.03f64.ln()).abs() < 1e-3, "{ln}");
        assert!(ln_beta_binomial_upper_tail(32_000, 1_000_000, 300.5, 9_700.5).is_some());
    }

    #[test]
    fn baseline_uncertainty_widens_the_tail() {
        // 6 flags in 97 texts against 0.7%: rarer if the 0.7% is known exactly than if it
        // was estimated from 2 300 texts (16 flags).
        let exact = upper_tail_z(6, 97, 0.007, 1e12);
        let estimated = upper_tail_z(6, 97, 0.007, 2_300.0);
        assert!(
            exact > 3.5 && estimated < exact - 0.15,
            "{exact} {estimated}"
        );
        // For large counts it is the normal z with sd² = p(1-p)(1/n + 1/N).
        let z = upper_tail_z(3_100, 100_000, 0.03, 200_000.0);
        let normal = 0.001 / (0.03f64 * 0.97 * (1e-5 + 5e-6)).sqrt();
        assert!((z - normal).abs() < 0.1, "{z} vs {normal}");
    }

    #[test]
    fn normal_quantiles() {
        let cases = [
            (0.5, 0.0),
            (0.158_655_253_931_457_05, 1.0),
            (0.022_750_131_948_179_2, 2.0),
            (3.167_124_183_311_992e-5, 4.0),
            (0.977_249_868_051_820_8, -2.0),
            (1.128_588_405_953_14e-19, 9.0),
        ];
        for (q, z) in cases {
            let got = upper_tail_z_from_ln(f64::ln(q));
            assert!((got - z).abs() < 1e-6, "q={q}: {got} vs {z}");
        }
        // Beyond f64's range of probabilities: still finite and increasing.
        let a = upper_tail_z_from_ln(-1_000.0);
        let b = upper_tail_z_from_ln(-10_000.0);
        assert!(
            a.is_finite() && b.is_finite() && b > a && a > 40.0,
            "{a} {b}"
        );
        for ln_q in [0.0, f64::NEG_INFINITY, -1e308] {
            assert!(upper_tail_z_from_ln(ln_q).is_finite(), "{ln_q}");
        }
        assert!(upper_tail_z_from_ln(0.0) < -5.0);
    }
}
