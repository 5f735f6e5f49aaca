//! The selection strategy of the paper's section 3.1, plus a medium-certainty pipeline and
//! an optional near-duplicate suppression step.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use warden_core::Taxonomy;

use crate::neardup::{text_key, NearDupIndex};
use crate::AlError;

/// One unlabelled text with the current model's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolItem {
    pub id: String,
    pub text: String,
    /// Calibrated scores in taxonomy order.
    pub scores: Vec<f32>,
    /// The value of the metadata field used for re-weighting (e.g. the source, the user
    /// or the language). `None` is a group of its own.
    pub group: Option<String>,
}

/// Which sub-strategy picked a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pipeline {
    /// Uniform over the pool: keeps part of the data faithful to the traffic distribution.
    Random,
    /// Uniform among samples whose score for a category is at least its threshold.
    AboveThreshold,
    /// Per category, the samples whose score is closest to 0.5.
    Uncertainty,
    /// Uniform among samples whose score for a category lies in a band (default
    /// [0.3, 0.7]); not in the paper.
    MediumCertainty,
}

impl Pipeline {
    pub const ALL: [Pipeline; 4] =
        [Pipeline::Random, Pipeline::AboveThreshold, Pipeline::Uncertainty, Pipeline::MediumCertainty];

    pub fn as_str(self) -> &'static str {
        match self {
            Pipeline::Random => "random",
            Pipeline::AboveThreshold => "above_threshold",
            Pipeline::Uncertainty => "uncertainty",
            Pipeline::MediumCertainty => "medium_certainty",
        }
    }

    /// Whether the pipeline runs once per category.
    pub fn per_category(self) -> bool {
        self != Pipeline::Random
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pipeline {
    type Err = AlError;
    fn from_str(s: &str) -> Result<Self, AlError> {
        Pipeline::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| AlError::Config(format!("unknown pipeline {s:?} (random, above_threshold, uncertainty, medium_certainty)")))
    }
}

/// Share of the batch per pipeline; normalised to sum to 1 when selecting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fractions {
    pub random: f64,
    pub above_threshold: f64,
    pub uncertainty: f64,
    pub medium_certainty: f64,
}

impl Default for Fractions {
    fn default() -> Self {
        Fractions { random: 0.3, above_threshold: 0.3, uncertainty: 0.4, medium_certainty: 0.0 }
    }
}

impl Fractions {
    /// Only random sampling: the baseline of the paper's Table 4.
    pub fn random_only() -> Self {
        Fractions { random: 1.0, above_threshold: 0.0, uncertainty: 0.0, medium_certainty: 0.0 }
    }

    pub fn get(&self, p: Pipeline) -> f64 {
        match p {
            Pipeline::Random => self.random,
            Pipeline::AboveThreshold => self.above_threshold,
            Pipeline::Uncertainty => self.uncertainty,
            Pipeline::MediumCertainty => self.medium_certainty,
        }
    }

    pub fn set(&mut self, p: Pipeline, v: f64) {
        match p {
            Pipeline::Random => self.random = v,
            Pipeline::AboveThreshold => self.above_threshold = v,
            Pipeline::Uncertainty => self.uncertainty = v,
            Pipeline::MediumCertainty => self.medium_certainty = v,
        }
    }

    fn validate(&self) -> Result<(), AlError> {
        let mut sum = 0.0;
        for p in Pipeline::ALL {
            let v = self.get(p);
            if !(v.is_finite() && v >= 0.0) {
                return Err(AlError::Config(format!("fraction {p}={v} must be a non-negative number")));
            }
            sum += v;
        }
        if sum <= 0.0 {
            return Err(AlError::Config("the pipeline fractions sum to zero".into()));
        }
        Ok(())
    }
}

/// `random=0.3,above_threshold=0.3,uncertainty=0.4`: pipelines not named get 0.
impl FromStr for Fractions {
    type Err = AlError;
    fn from_str(s: &str) -> Result<Self, AlError> {
        let mut f = Fractions { random: 0.0, above_threshold: 0.0, uncertainty: 0.0, medium_certainty: 0.0 };
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| AlError::Config(format!("expected PIPELINE=FRACTION, got {part:?}")))?;
            let p: Pipeline = k.parse()?;
            let v: f64 = v.trim().parse().map_err(|_| AlError::Config(format!("{v:?} is not a number")))?;
            f.set(p, v);
        }
        f.validate()?;
        Ok(f)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectConfig {
    /// Samples to select.
    pub batch_size: usize,
    pub fractions: Fractions,
    /// Per category (taxonomy order) threshold of the above-threshold pipeline; empty means
    /// 0.5 everywhere.
    pub thresholds: Vec<f32>,
    /// Inclusive score band of the medium-certainty pipeline.
    pub medium_band: (f32, f32),
    /// Each pipeline (and category) contributes up to `oversample × quota` candidates to the
    /// aggregate, so that re-weighting has something to choose from. At least 1.
    pub oversample: f64,
    /// Re-weight by [`PoolItem::group`] (each member's weight ∝ 1/sqrt(group size among the
    /// aggregated candidates)). Has no effect when no item has a group.
    pub reweight: bool,
    /// Near-duplicate suppression: a candidate whose character-shingle Jaccard similarity
    /// to an earlier candidate exceeds this is replaced by the next one of its pipeline.
    pub diversity: Option<f64>,
    pub seed: u64,
}

impl Default for SelectConfig {
    fn default() -> Self {
        SelectConfig {
            batch_size: 2000,
            fractions: Fractions::default(),
            thresholds: Vec::new(),
            medium_band: (0.3, 0.7),
            oversample: 3.0,
            reweight: true,
            diversity: None,
            seed: 20231,
        }
    }
}

/// Default Jaccard similarity above which two texts count as near-duplicates.
pub const DEFAULT_DIVERSITY_JACCARD: f64 = 0.8;

/// One selected sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    /// Index into the pool.
    pub index: usize,
    pub id: String,
    pub pipeline: Pipeline,
    /// Category code for per-category pipelines.
    pub category: Option<String>,
    /// The category's score; for the random pipeline, the highest score of any category.
    pub score: f32,
    /// Relative sampling weight after re-weighting (mean 1 over the aggregated candidates).
    pub weight: f64,
}

/// Splits `total` in proportion to `shares` (largest remainder; ties to the earlier share).
fn apportion(total: usize, shares: &[f64]) -> Vec<usize> {
    let sum: f64 = shares.iter().sum();
    if shares.is_empty() || sum <= 0.0 {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares.iter().map(|s| s / sum * total as f64).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut rest: Vec<(usize, f64)> = exact.iter().enumerate().map(|(i, e)| (i, e - e.floor())).collect();
    rest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let given: usize = out.iter().sum();
    for &(i, _) in rest.iter().take(total.saturating_sub(given)) {
        out[i] += 1;
    }
    out
}

/// One (pipeline, category) sub-strategy.
struct Bucket {
    pipeline: Pipeline,
    category: Option<usize>,
    quota: usize,
    /// Pool indices in the order the pipeline prefers them.
    order: Vec<usize>,
}

fn max_score(s: &[f32]) -> f32 {
    s.iter().copied().filter(|x| x.is_finite()).fold(0.0, f32::max)
}

/// Runs the pipelines over `pool`, aggregates and de-duplicates their candidates,
/// re-weights them by group and draws the batch. Deterministic for a given seed.
///
/// The batch has `min(batch_size, distinct texts in the pool)` samples. A per-category
/// pipeline's quota is split evenly over the categories that have candidates for it; quota
/// that no candidate can fill goes to the remaining candidates and then to random samples.
pub fn select(taxonomy: &Taxonomy, pool: &[PoolItem], cfg: &SelectConfig) -> Result<Vec<Selection>, AlError> {
    let k = taxonomy.len();
    cfg.fractions.validate()?;
    let thresholds = if cfg.thresholds.is_empty() { vec![0.5; k] } else { cfg.thresholds.clone() };
    if thresholds.len() != k {
        return Err(AlError::Config(format!("{} thresholds for {k} categories", thresholds.len())));
    }
    let (lo, hi) = cfg.medium_band;
    if !(lo <= hi) {
        return Err(AlError::Config(format!("medium-certainty band [{lo}, {hi}] is empty")));
    }
    if !(cfg.oversample.is_finite() && cfg.oversample >= 1.0) {
        return Err(AlError::Config(format!("oversample {} must be at least 1", cfg.oversample)));
    }
    if let Some(j) = cfg.diversity {
        if !(0.0..=1.0).contains(&j) {
            return Err(AlError::Config(format!("diversity Jaccard {j} is outside [0, 1]")));
        }
    }
    for (i, it) in pool.iter().enumerate() {
        if it.scores.len() != k {
            return Err(AlError::ScoreWidth { index: i, got: it.scores.len(), expected: k });
        }
    }

    // De-duplication keys: an item is a duplicate of an earlier one with the same id or the
    // same normalised text.
    let text_keys: Vec<u64> = pool.iter().map(|it| text_key(&it.text)).collect();
    let distinct = {
        let (mut ids, mut texts) = (HashSet::new(), HashSet::new());
        let mut n = 0;
        for (it, &t) in pool.iter().zip(&text_keys) {
            let new_id = ids.insert(it.id.as_str());
            let new_text = texts.insert(t);
            n += (new_id && new_text) as usize;
        }
        n
    };
    let batch = cfg.batch_size.min(distinct);
    if batch == 0 {
        return Ok(Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);

    // Candidate orders per (pipeline, category).
    let mut shares: Vec<f64> = Pipeline::ALL.iter().map(|&p| cfg.fractions.get(p)).collect();
    let mut per_cat: Vec<Vec<Vec<usize>>> = vec![Vec::new(); Pipeline::ALL.len()];
    for (pi, &p) in Pipeline::ALL.iter().enumerate() {
        if !p.per_category() || shares[pi] <= 0.0 {
            continue;
        }
        for c in 0..k {
            let score = |i: usize| pool[i].scores[c];
            let mut order: Vec<usize> = match p {
                Pipeline::AboveThreshold => (0..pool.len()).filter(|&i| score(i) >= thresholds[c]).collect(),
                Pipeline::MediumCertainty => (0..pool.len()).filter(|&i| (lo..=hi).contains(&score(i))).collect(),
                Pipeline::Uncertainty => (0..pool.len()).filter(|&i| score(i).is_finite()).collect(),
                Pipeline::Random => unreachable!(),
            };
            order.shuffle(&mut rng);
            if p == Pipeline::Uncertainty {
                // Stable sort after a shuffle: ties are broken at random.
                order.sort_by(|&a, &b| (score(a) - 0.5).abs().total_cmp(&(score(b) - 0.5).abs()));
            }
            per_cat[pi].push(order);
        }
        if per_cat[pi].iter().all(Vec::is_empty) {
            // Nothing to pick for any category: this share goes to random sampling.
            shares[0] += shares[pi];
            shares[pi] = 0.0;
        }
    }
    let quotas = apportion(batch, &shares);
    let mut buckets: Vec<Bucket> = Vec::new();
    for (pi, &p) in Pipeline::ALL.iter().enumerate() {
        if quotas[pi] == 0 {
            continue;
        }
        if !p.per_category() {
            let mut order: Vec<usize> = (0..pool.len()).collect();
            order.shuffle(&mut rng);
            buckets.push(Bucket { pipeline: p, category: None, quota: quotas[pi], order });
            continue;
        }
        // Even split over categories with candidates; the remainder goes to categories in
        // a random order so that no category is always favoured.
        let with: Vec<usize> = (0..k).filter(|&c| !per_cat[pi][c].is_empty()).collect();
        let mut split = apportion(quotas[pi], &vec![1.0; with.len()]);
        split.shuffle(&mut rng);
        for (&c, q) in with.iter().zip(split) {
            let order = std::mem::take(&mut per_cat[pi][c]);
            buckets.push(Bucket { pipeline: p, category: Some(c), quota: q, order });
        }
    }

    // Aggregate: every bucket contributes up to oversample × quota candidates that are not
    // duplicates (or near-duplicates) of a candidate already taken.
    let mut claimed_ids: HashSet<&str> = HashSet::new();
    let mut claimed_texts: HashSet<u64> = HashSet::new();
    let mut neardup = cfg.diversity.map(NearDupIndex::new);
    let mut claim = |i: usize, neardup: &mut Option<NearDupIndex>| -> bool {
        if claimed_ids.contains(pool[i].id.as_str()) || claimed_texts.contains(&text_keys[i]) {
            return false;
        }
        if let Some(ix) = neardup.as_mut() {
            if !ix.insert_if_novel(&pool[i].text) {
                return false;
            }
        }
        claimed_ids.insert(pool[i].id.as_str());
        claimed_texts.insert(text_keys[i]);
        true
    };
    // (pool index, bucket)
    let mut candidates: Vec<(usize, usize)> = Vec::new();
    let mut cursors = vec![0usize; buckets.len()];
    for (b, bucket) in buckets.iter().enumerate() {
        let want = ((bucket.quota as f64 * cfg.oversample).ceil() as usize).max(bucket.quota);
        let mut got = 0;
        while got < want && cursors[b] < bucket.order.len() {
            let i = bucket.order[cursors[b]];
            cursors[b] += 1;
            if claim(i, &mut neardup) {
                candidates.push((i, b));
                got += 1;
            }
        }
    }

    // Re-weight: each member of group g weighs 1/sqrt(n_g), so the group's total weight is
    // sqrt(n_g); normalised to mean 1 over the candidates.
    let use_groups = cfg.reweight && candidates.iter().any(|&(i, _)| pool[i].group.is_some());
    let mut weights: Vec<f64> = vec![1.0; candidates.len()];
    if use_groups {
        let mut counts: HashMap<Option<&str>, usize> = HashMap::new();
        for &(i, _) in &candidates {
            *counts.entry(pool[i].group.as_deref()).or_default() += 1;
        }
        for (w, &(i, _)) in weights.iter_mut().zip(&candidates) {
            *w = 1.0 / (counts[&pool[i].group.as_deref()] as f64).sqrt();
        }
        let mean = weights.iter().sum::<f64>() / weights.len() as f64;
        weights.iter_mut().for_each(|w| *w /= mean);
    }

    // Weighted sampling without replacement (Efraimidis–Spirakis): key = ln(u) / w, the
    // largest keys win.
    let keys: Vec<f64> = weights
        .iter()
        .map(|w| {
            let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            u.ln() / w
        })
        .collect();
    let mut by_bucket: Vec<Vec<usize>> = vec![Vec::new(); buckets.len()];
    for (ci, &(_, b)) in candidates.iter().enumerate() {
        by_bucket[b].push(ci);
    }
    let mut taken = vec![false; candidates.len()];
    let mut out: Vec<Selection> = Vec::with_capacity(batch);
    let make = |ci: usize, weights: &[f64]| {
        let (i, b) = candidates[ci];
        let bucket = &buckets[b];
        Selection {
            index: i,
            id: pool[i].id.clone(),
            pipeline: bucket.pipeline,
            category: bucket.category.map(|c| taxonomy.categories()[c].code.clone()),
            score: bucket.category.map_or_else(|| max_score(&pool[i].scores), |c| pool[i].scores[c]),
            weight: weights[ci],
        }
    };
    for (b, bucket) in buckets.iter().enumerate() {
        let mut cs = by_bucket[b].clone();
        cs.sort_by(|&x, &y| keys[y].total_cmp(&keys[x]));
        for &ci in cs.iter().take(bucket.quota) {
            taken[ci] = true;
            out.push(make(ci, &weights));
        }
    }
    // Shortfall (a bucket had fewer candidates than its quota): first the other candidates,
    // by key, then fresh random samples.
    if out.len() < batch {
        let mut rest: Vec<usize> = (0..candidates.len()).filter(|&ci| !taken[ci]).collect();
        rest.sort_by(|&x, &y| keys[y].total_cmp(&keys[x]));
        for ci in rest.into_iter().take(batch - out.len()) {
            out.push(make(ci, &weights));
        }
    }
    if out.len() < batch {
        let mut order: Vec<usize> = (0..pool.len()).collect();
        order.shuffle(&mut rng);
        for i in order {
            if out.len() >= batch {
                break;
            }
            if claim(i, &mut neardup) {
                out.push(Selection {
                    index: i,
                    id: pool[i].id.clone(),
                    pipeline: Pipeline::Random,
                    category: None,
                    score: max_score(&pool[i].scores),
                    weight: 1.0,
                });
            }
        }
    }
    Ok(out)
}
