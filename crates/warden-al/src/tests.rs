use std::collections::{HashMap, HashSet};

use warden_core::{Label, Taxonomy};

use crate::*;

/// Deterministic pseudo-random numbers in [0, 1) for building pools.
fn uniform(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// `n` items with distinct texts and random scores for every category.
fn pool(n: usize, k: usize) -> Vec<PoolItem> {
    let u = uniform(7, n * k);
    (0..n)
        .map(|i| PoolItem {
            id: format!("id{i}"),
            text: format!("text number {i} with token{} and token{}", i * 31 % 977, i * 17 % 499),
            scores: u[i * k..(i + 1) * k].to_vec(),
            group: None,
        })
        .collect()
}

fn cfg(batch: usize) -> SelectConfig {
    SelectConfig { batch_size: batch, seed: 42, ..SelectConfig::default() }
}

fn count_by_pipeline(sel: &[Selection]) -> HashMap<Pipeline, usize> {
    let mut m = HashMap::new();
    for s in sel {
        *m.entry(s.pipeline).or_default() += 1;
    }
    m
}

#[test]
fn fractions_are_respected() {
    let t = Taxonomy::builtin();
    let p = pool(3000, t.len());
    let sel = select(&t, &p, &cfg(200)).unwrap();
    assert_eq!(sel.len(), 200);
    let m = count_by_pipeline(&sel);
    assert_eq!(m[&Pipeline::Random], 60);
    assert_eq!(m[&Pipeline::AboveThreshold], 60);
    assert_eq!(m[&Pipeline::Uncertainty], 80);
    assert!(!m.contains_key(&Pipeline::MediumCertainty));
    // Per-category quotas are even: 80 uncertainty over 8 categories = 10 each.
    let mut per_cat: HashMap<(Pipeline, String), usize> = HashMap::new();
    for s in &sel {
        if let Some(c) = &s.category {
            *per_cat.entry((s.pipeline, c.clone())).or_default() += 1;
        }
    }
    for c in t.codes() {
        assert_eq!(per_cat[&(Pipeline::Uncertainty, c.to_string())], 10);
        let a = per_cat[&(Pipeline::AboveThreshold, c.to_string())];
        assert!((7..=8).contains(&a), "{c}: {a}");
    }
    // Fractions are normalised.
    let mut c2 = cfg(100);
    c2.fractions = "random=2,medium_certainty=2".parse().unwrap();
    let m = count_by_pipeline(&select(&t, &p, &c2).unwrap());
    assert_eq!((m[&Pipeline::Random], m[&Pipeline::MediumCertainty]), (50, 50));
}

#[test]
fn no_ids_are_repeated_and_indices_match() {
    let t = Taxonomy::builtin();
    let p = pool(2000, t.len());
    let sel = select(&t, &p, &cfg(500)).unwrap();
    let ids: HashSet<&str> = sel.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 500);
    for s in &sel {
        assert_eq!(p[s.index].id, s.id);
    }
}

#[test]
fn uncertainty_picks_scores_nearest_one_half() {
    let t = Taxonomy::builtin();
    let p = pool(2000, t.len());
    let mut c = cfg(80);
    c.fractions = "uncertainty=1".parse().unwrap();
    c.oversample = 1.0;
    let sel = select(&t, &p, &c).unwrap();
    assert_eq!(sel.len(), 80);
    // Without over-sampling, exactly the 10 nearest of each category (no ties here),
    // except items already taken by an earlier category, which are replaced by the next.
    for (ci, code) in t.codes().enumerate() {
        let picked: Vec<f32> = sel.iter().filter(|s| s.category.as_deref() == Some(code)).map(|s| s.score).collect();
        assert_eq!(picked.len(), 10);
        let mut d: Vec<f32> = p.iter().map(|it| (it.scores[ci] - 0.5).abs()).collect();
        d.sort_by(f32::total_cmp);
        let cutoff = d[10 + 80]; // generous: other categories may have claimed a few
        for s in picked {
            assert!((s - 0.5).abs() <= cutoff, "{code}: {s}");
        }
    }
    // With the default 3× over-sampling, every pick is still among the nearest 3 × quota
    // (plus the few claimed by other categories), far from a random draw.
    c.oversample = 3.0;
    let sel = select(&t, &p, &c).unwrap();
    for (ci, code) in t.codes().enumerate() {
        let mut d: Vec<f32> = p.iter().map(|it| (it.scores[ci] - 0.5).abs()).collect();
        d.sort_by(f32::total_cmp);
        let cutoff = d[30 + 240];
        for s in sel.iter().filter(|s| s.category.as_deref() == Some(code)) {
            assert!((s.score - 0.5).abs() <= cutoff);
            assert!((s.score - 0.5).abs() < 0.1, "{code}: {}", s.score);
        }
    }
}

#[test]
fn above_threshold_never_picks_below_threshold() {
    let t = Taxonomy::builtin();
    let p = pool(3000, t.len());
    let mut c = cfg(300);
    c.fractions = "above_threshold=1".parse().unwrap();
    c.thresholds = vec![0.9, 0.95, 0.8, 0.99, 0.97, 0.9, 0.9, 0.999];
    let sel = select(&t, &p, &c).unwrap();
    assert_eq!(sel.len(), 300);
    for s in &sel {
        match s.pipeline {
            Pipeline::AboveThreshold => {
                let ci = t.index_of(s.category.as_deref().unwrap()).unwrap();
                assert!(s.score >= c.thresholds[ci], "{s:?}");
                assert_eq!(p[s.index].scores[ci], s.score);
            }
            // Quota no candidate could fill is topped up at random, and labelled so.
            Pipeline::Random => assert!(s.category.is_none()),
            other => panic!("unexpected pipeline {other}"),
        }
    }
    // A category with no item above its threshold gets no above-threshold picks.
    let mut c = cfg(50);
    c.fractions = "above_threshold=1".parse().unwrap();
    c.thresholds = vec![2.0; t.len()];
    c.thresholds[0] = 0.5;
    let sel = select(&t, &p, &c).unwrap();
    assert!(sel.iter().all(|s| s.category.as_deref() == Some("S") && s.score >= 0.5));
    // No category has candidates at all: the whole batch is random.
    c.thresholds = vec![2.0; t.len()];
    let sel = select(&t, &p, &c).unwrap();
    assert_eq!(sel.len(), 50);
    assert!(sel.iter().all(|s| s.pipeline == Pipeline::Random));
}

#[test]
fn dedup_removes_same_text_and_same_id() {
    let t = Taxonomy::builtin();
    let k = t.len();
    let mut p = Vec::new();
    for i in 0..300 {
        // 100 distinct texts, each three times with case/space variants and new ids.
        let base = format!("Message number {}", i % 100);
        let text = match i / 100 {
            0 => base,
            1 => base.to_uppercase(),
            _ => format!("  {}  ", base.replace(' ', "   ")),
        };
        p.push(PoolItem { id: format!("x{i}"), text, scores: vec![0.5; k], group: None });
    }
    // And 50 more with a fresh text but a repeated id.
    for i in 0..50 {
        p.push(PoolItem { id: format!("x{i}"), text: format!("other {i}"), scores: vec![0.5; k], group: None });
    }
    let sel = select(&t, &p, &cfg(1000)).unwrap();
    assert_eq!(sel.len(), 100, "only 100 distinct samples exist");
    let texts: HashSet<String> = sel.iter().map(|s| normalize_for_dedup(&p[s.index].text)).collect();
    assert_eq!(texts.len(), 100);
    let ids: HashSet<&str> = sel.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 100);
}

#[test]
fn sqrt_reweighting_dampens_big_groups() {
    let t = Taxonomy::builtin();
    let k = t.len();
    let mut p = pool(10_100, k);
    for (i, it) in p.iter_mut().enumerate() {
        it.group = Some(if i % 101 == 0 { "small".into() } else { "big".into() });
    }
    let n_small = p.iter().filter(|it| it.group.as_deref() == Some("small")).count();
    assert_eq!(n_small, 100);
    let mut c = cfg(20);
    c.fractions = Fractions::random_only();
    c.oversample = 1000.0; // every pool item is a candidate
    let (mut big, mut small) = (0usize, 0usize);
    for seed in 0..200 {
        c.seed = seed;
        for s in select(&t, &p, &c).unwrap() {
            if p[s.index].group.as_deref() == Some("small") {
                small += 1;
            } else {
                big += 1;
            }
        }
    }
    let ratio = big as f64 / small as f64;
    // Group totals are sqrt(10000) : sqrt(100) = 10 : 1 (100 : 1 without re-weighting).
    assert!((7.5..13.5).contains(&ratio), "big/small = {ratio}");
    // Weights: each member ∝ 1/sqrt(n_g), mean 1.
    let sel = select(&t, &p, &c).unwrap();
    let w_small = sel.iter().find(|s| p[s.index].group.as_deref() == Some("small")).map(|s| s.weight);
    let w_big = sel.iter().find(|s| p[s.index].group.as_deref() == Some("big")).unwrap().weight;
    if let Some(ws) = w_small {
        assert!((ws / w_big - 10.0).abs() < 1e-6);
    }
    // Without re-weighting the big group dominates ~100 : 1.
    c.reweight = false;
    let (mut big, mut small) = (0usize, 0usize);
    for seed in 0..100 {
        c.seed = seed;
        for s in select(&t, &p, &c).unwrap() {
            assert_eq!(s.weight, 1.0);
            if p[s.index].group.as_deref() == Some("small") {
                small += 1;
            } else {
                big += 1;
            }
        }
    }
    assert!(big as f64 / small.max(1) as f64 > 40.0, "{big} / {small}");
}

#[test]
fn diversity_removes_near_duplicates() {
    let t = Taxonomy::builtin();
    let k = t.len();
    let base = "you people are all the same and everyone on this forum knows exactly what you did last summer";
    let mut p: Vec<PoolItem> = (0..200)
        .map(|i| PoolItem { id: format!("dup{i}"), text: format!("{base} {i}"), scores: vec![0.5; k], group: None })
        .collect();
    p.extend(pool(200, k));
    let mut c = cfg(100);
    c.fractions = Fractions::random_only();
    let without = select(&t, &p, &c).unwrap();
    let dups = |sel: &[Selection]| sel.iter().filter(|s| s.id.starts_with("dup")).count();
    assert!(dups(&without) > 20, "{}", dups(&without));
    c.diversity = Some(DEFAULT_DIVERSITY_JACCARD);
    let with = select(&t, &p, &c).unwrap();
    assert_eq!(with.len(), 100);
    assert!(dups(&with) <= 1, "{}", dups(&with));
    // No two selected texts are near-duplicates.
    let sh: Vec<Vec<u64>> = with.iter().map(|s| shingles(&p[s.index].text)).collect();
    for i in 0..sh.len() {
        for j in i + 1..sh.len() {
            assert!(jaccard(&sh[i], &sh[j]) <= 0.8);
        }
    }
}

#[test]
fn deterministic_for_a_seed() {
    let t = Taxonomy::builtin();
    let mut p = pool(2000, t.len());
    for (i, it) in p.iter_mut().enumerate() {
        it.group = Some(format!("g{}", i % 7));
    }
    let mut c = cfg(300);
    c.fractions = "random=1,above_threshold=1,uncertainty=1,medium_certainty=1".parse().unwrap();
    c.diversity = Some(0.8);
    let a = select(&t, &p, &c).unwrap();
    let b = select(&t, &p, &c).unwrap();
    assert_eq!(a, b);
    c.seed += 1;
    let d = select(&t, &p, &c).unwrap();
    assert_ne!(a, d);
}

#[test]
fn empty_pool_and_oversized_batch() {
    let t = Taxonomy::builtin();
    assert!(select(&t, &[], &cfg(10)).unwrap().is_empty());
    assert!(select(&t, &pool(5, t.len()), &cfg(0)).unwrap().is_empty());
    let p = pool(37, t.len());
    let sel = select(&t, &p, &cfg(1000)).unwrap();
    assert_eq!(sel.len(), 37);
    let idx: HashSet<usize> = sel.iter().map(|s| s.index).collect();
    assert_eq!(idx.len(), 37);
}

#[test]
fn bad_inputs_are_errors() {
    let t = Taxonomy::builtin();
    let mut p = pool(3, t.len());
    p[1].scores.pop();
    assert!(matches!(select(&t, &p, &cfg(2)), Err(AlError::ScoreWidth { index: 1, .. })));
    let p = pool(3, t.len());
    let mut c = cfg(2);
    c.thresholds = vec![0.5; 3];
    assert!(select(&t, &p, &c).is_err());
    assert!("random=-1".parse::<Fractions>().is_err());
    assert!("random=0".parse::<Fractions>().is_err());
    assert!("bogus=1".parse::<Fractions>().is_err());
    assert!("random".parse::<Fractions>().is_err());
}

#[test]
fn nan_scores_are_never_candidates() {
    let t = Taxonomy::builtin();
    let mut p = pool(500, t.len());
    for it in p.iter_mut().step_by(2) {
        it.scores = vec![f32::NAN; t.len()];
    }
    let mut c = cfg(40);
    c.fractions = "uncertainty=1,medium_certainty=1,above_threshold=1".parse().unwrap();
    for s in select(&t, &p, &c).unwrap() {
        if s.pipeline != Pipeline::Random {
            assert!(s.index % 2 == 1, "{s:?}");
        }
    }
}

#[test]
fn pipeline_serialises_as_snake_case() {
    assert_eq!(serde_json::to_value(Pipeline::AboveThreshold).unwrap(), "above_threshold");
    assert_eq!(serde_json::to_value(Pipeline::MediumCertainty).unwrap(), "medium_certainty");
    assert_eq!("uncertainty".parse::<Pipeline>().unwrap(), Pipeline::Uncertainty);
}

#[test]
fn positive_rates_ignore_unknown_labels() {
    use Label::*;
    let rows = vec![
        vec![Positive, Unknown, Negative],
        vec![Negative, Unknown, Unknown],
        vec![Unknown, Unknown, Unknown],
        vec![Soft(0.7), Soft(0.2), Unknown],
    ];
    let r = positive_rates(3, &rows);
    assert_eq!(r[0], RateCount { positives: 2, known: 3 });
    assert_eq!(r[1], RateCount { positives: 0, known: 1 });
    assert_eq!(r[2], RateCount { positives: 0, known: 1 });
    assert_eq!(r[3], RateCount { positives: 2, known: 3 }); // any
    assert_eq!(r[2].rate(), Some(0.0));
    assert_eq!(positive_rates(3, &[vec![Unknown; 3]])[0].rate(), None);
}
