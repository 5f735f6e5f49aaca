use proptest::prelude::*;
use warden_eval::*;

/// Scores from a small grid so ties are common, plus labels.
fn data() -> impl Strategy<Value = (Vec<f32>, Vec<bool>)> {
    prop::collection::vec((0u8..8, any::<bool>()), 0..60)
        .prop_map(|v| v.into_iter().map(|(s, l)| (s as f32 / 7.0, l)).unzip())
}

fn brute_roc(s: &[f32], l: &[bool]) -> Option<f64> {
    let (mut num, mut pairs) = (0.0, 0usize);
    for i in 0..s.len() {
        for j in 0..s.len() {
            if l[i] && !l[j] {
                pairs += 1;
                num += if s[i] > s[j] {
                    1.0
                } else if s[i] == s[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    (pairs > 0).then(|| num / pairs as f64)
}

/// sklearn's definition, quadratically: distinct thresholds high to low, Σ ΔR·P.
fn brute_ap(s: &[f32], l: &[bool]) -> Option<f64> {
    let pos = l.iter().filter(|&&x| x).count();
    if pos == 0 {
        return None;
    }
    let mut th: Vec<f32> = s.to_vec();
    th.sort_by(|a, b| b.partial_cmp(a).unwrap());
    th.dedup();
    let (mut ap, mut prev_r) = (0.0, 0.0);
    for t in th {
        let tp = s.iter().zip(l).filter(|(&x, &y)| x >= t && y).count() as f64;
        let k = s.iter().filter(|&&x| x >= t).count() as f64;
        let r = tp / pos as f64;
        ap += (r - prev_r) * (tp / k);
        prev_r = r;
    }
    Some(ap)
}

fn brute_best_f1(s: &[f32], l: &[bool]) -> Option<f64> {
    if !l.iter().any(|&x| x) {
        return None;
    }
    s.iter()
        .map(|&t| at_threshold(s, l, t).f1.unwrap())
        .reduce(f64::max)
}

proptest! {
    #[test]
    fn metrics_are_bounded_and_match_brute_force((s, l) in data()) {
        let ap = auprc(&s, &l);
        let roc = roc_auc(&s, &l);
        if let Some(ap) = ap { prop_assert!((0.0..=1.0).contains(&ap)); }
        if let Some(r) = roc { prop_assert!((0.0..=1.0).contains(&r)); }
        match (roc, brute_roc(&s, &l)) {
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}"),
            (a, b) => prop_assert_eq!(a, b),
        }
        match (ap, brute_ap(&s, &l)) {
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}"),
            (a, b) => prop_assert_eq!(a, b),
        }
        match (best_f1(&s, &l), brute_best_f1(&s, &l)) {
            (Some((a, t)), Some(b)) => {
                prop_assert!((a - b).abs() < 1e-9);
                prop_assert!((at_threshold(&s, &l, t).f1.unwrap() - a).abs() < 1e-9);
            }
            (a, b) => prop_assert_eq!(a.map(|x| x.0), b),
        }
    }

    #[test]
    fn input_order_does_not_matter((s, l) in data(), seed in any::<u64>()) {
        let mut idx: Vec<usize> = (0..s.len()).collect();
        // Deterministic shuffle.
        let mut x = seed | 1;
        for i in (1..idx.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            idx.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let s2: Vec<f32> = idx.iter().map(|&i| s[i]).collect();
        let l2: Vec<bool> = idx.iter().map(|&i| l[i]).collect();
        prop_assert_eq!(auprc(&s, &l), auprc(&s2, &l2));
        prop_assert_eq!(roc_auc(&s, &l), roc_auc(&s2, &l2));
    }

    #[test]
    fn pr_curve_is_consistent((s, l) in data()) {
        if let Some(c) = pr_curve(&s, &l) {
            prop_assert!(c.recall.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(c.thresholds.windows(2).all(|w| w[0] > w[1]));
            prop_assert_eq!(*c.recall.last().unwrap(), 1.0);
            for i in 0..c.len() {
                let m = at_threshold(&s, &l, c.thresholds[i]);
                prop_assert!((m.precision.unwrap() - c.precision[i]).abs() < 1e-12);
                prop_assert!((m.recall.unwrap() - c.recall[i]).abs() < 1e-12);
            }
        }
    }
}
