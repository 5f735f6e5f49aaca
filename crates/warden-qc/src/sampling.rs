use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Derives an independent random stream from a seed and a purpose / category index, so
/// that e.g. the audit sample of one category does not change when another category is
/// added.
pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// `k` distinct items of `pool` chosen uniformly at random (all of them, in random order,
/// when `pool.len() <= k`). Deterministic for a given `(pool, k, seed, stream)`.
pub fn sample_without_replacement(pool: &[usize], k: usize, seed: u64, stream: u64) -> Vec<usize> {
    let k = k.min(pool.len());
    let mut v = pool.to_vec();
    let (picked, _) = v.partial_shuffle(&mut rng(seed, stream), k);
    picked.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_distinct_and_bounded() {
        let pool: Vec<usize> = (100..200).collect();
        let a = sample_without_replacement(&pool, 10, 7, 3);
        let b = sample_without_replacement(&pool, 10, 7, 3);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 10);
        assert!(a.iter().all(|x| pool.contains(x)));
        assert_ne!(a, sample_without_replacement(&pool, 10, 8, 3));
        assert_ne!(a, sample_without_replacement(&pool, 10, 7, 4));
        assert_eq!(sample_without_replacement(&pool[..4], 10, 7, 3).len(), 4);
        assert!(sample_without_replacement(&[], 10, 7, 3).is_empty());
    }
}
