//! A small HyperLogLog sketch: estimates how many distinct source names were folded into
//! `"(other sources)"` in fixed memory (1,024 one-byte registers, about 3% standard error),
//! deterministically (a fixed hash), and mergeably (register-wise maximum).

use serde::{Deserialize, Serialize};

const P: u32 = 10;
const M: usize = 1 << P;

/// Distinct-count sketch of folded source names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DistinctSketch {
    /// Empty until the first insertion (keeps stats files of runs without folding small).
    registers: Vec<u8>,
}

impl Default for DistinctSketch {
    fn default() -> Self {
        DistinctSketch::new()
    }
}

/// FNV-1a then the splitmix64 finaliser: stable across platforms and releases.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl DistinctSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        DistinctSketch {
            registers: Vec::new(),
        }
    }

    /// True when the registers have a usable shape (empty or `M` long).
    pub fn is_valid(&self) -> bool {
        self.registers.is_empty() || self.registers.len() == M
    }

    /// Adds a name.
    pub fn insert(&mut self, name: &str) {
        if self.registers.is_empty() {
            self.registers = vec![0; M];
        }
        let h = hash(name);
        let idx = (h >> (64 - P)) as usize;
        let rest = h << P;
        let rank = (rest.leading_zeros() + 1).min(64 - P + 1) as u8;
        if self.registers[idx] < rank {
            self.registers[idx] = rank;
        }
    }

    /// Adds every name of `other` (the union of the two sets).
    pub fn merge(&mut self, other: &DistinctSketch) {
        if other.registers.is_empty() {
            return;
        }
        if self.registers.is_empty() {
            self.registers = vec![0; M];
        }
        for (a, &b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(b);
        }
    }

    /// The estimated number of distinct names inserted (0 when none).
    pub fn estimate(&self) -> u64 {
        if self.registers.is_empty() {
            return 0;
        }
        let m = M as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let est = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        est.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_close() {
        for n in [1usize, 10, 100, 1000, 20_000] {
            let mut s = DistinctSketch::new();
            for i in 0..n {
                s.insert(&format!("host{i}.example"));
                s.insert(&format!("host{i}.example")); // duplicates do not count
            }
            let e = s.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(err < 0.1, "n {n} estimate {e}");
        }
        assert_eq!(DistinctSketch::new().estimate(), 0);
    }

    #[test]
    fn merge_is_union() {
        let (mut a, mut b, mut u) = (
            DistinctSketch::new(),
            DistinctSketch::new(),
            DistinctSketch::new(),
        );
        for i in 0..500 {
            a.insert(&i.to_string());
            u.insert(&i.to_string());
        }
        for i in 250..1000 {
            b.insert(&i.to_string());
            u.insert(&i.to_string());
        }
        a.merge(&b);
        assert_eq!(a, u);
    }
}
