use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Feature extraction settings. They are part of the model: a model must be scored with
/// exactly the settings it was trained with, so they live in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// log2 of the number of hash buckets.
    pub bits: u32,
    /// Emit word bigrams as well as unigrams.
    pub word_bigrams: bool,
    /// Character n-gram lengths (in bytes of the normalized word with `<` `>` boundary
    /// marks), inclusive. `char_min = 0` disables character n-grams.
    pub char_min: u8,
    pub char_max: u8,
    /// Character n-grams are taken from at most this many bytes of a word, so a 10 kB
    /// token (base64, a URL) cannot dominate the cost of a document.
    pub max_word_bytes: usize,
    /// Count each distinct word (its unigram and character n-grams) and each distinct
    /// bigram once per text: presence rather than frequency, so a spam page repeating one
    /// term fifty times is not pushed to an extreme score. Absent in older manifests
    /// (= false).
    #[serde(default)]
    pub distinct_words: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self { bits: 20, word_bigrams: true, char_min: 3, char_max: 5, max_word_bytes: 32, distinct_words: true }
    }
}

const SEED_WORD: u64 = 0x5745_4f52_4431; // "WORD1"
const SEED_CHAR: u64 = 0x4348_4152_4e47; // "CHARNG"
const BIGRAM_MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Turns normalized text into hashed feature indices.
#[derive(Debug, Clone)]
pub struct Featurizer {
    cfg: FeatureConfig,
    shift: u32,
}

impl Featurizer {
    pub fn new(cfg: FeatureConfig) -> Self {
        assert!((8..=28).contains(&cfg.bits), "bits must be in 8..=28");
        assert!(cfg.char_min <= cfg.char_max, "char_min must not exceed char_max");
        let shift = 64 - cfg.bits;
        Self { cfg, shift }
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.cfg
    }

    pub fn dim(&self) -> usize {
        1 << self.cfg.bits
    }

    #[inline]
    fn bucket(&self, h: u64) -> u32 {
        (h >> self.shift) as u32
    }

    /// Hash of a word for its unigram feature (also the key of per-word caches).
    #[inline]
    pub fn word_hash(word: &str) -> u64 {
        xxh3_64_with_seed(word.as_bytes(), SEED_WORD)
    }

    /// Bucket of the bigram of two consecutive words, from their [`Self::word_hash`]es.
    #[inline]
    pub fn bigram_bucket(&self, prev: u64, cur: u64) -> u32 {
        let bh = (prev.rotate_left(17) ^ cur).wrapping_mul(BIGRAM_MIX);
        self.bucket(bh ^ (bh >> 29))
    }

    /// Calls `emit` with every feature that depends on `word` alone: its unigram and its
    /// character n-grams. Returns how many were emitted.
    #[inline]
    pub fn for_each_word_feature(&self, word: &str, wh: u64, mut emit: impl FnMut(u32)) -> usize {
        emit(self.bucket(wh));
        let mut n = 1;
        if self.cfg.char_min > 0 {
            let mut buf = [0u8; 72];
            let w = &word.as_bytes()[..word.len().min(self.cfg.max_word_bytes)];
            buf[0] = b'<';
            buf[1..=w.len()].copy_from_slice(w);
            buf[w.len() + 1] = b'>';
            let padded = &buf[..w.len() + 2];
            for len in self.cfg.char_min as usize..=self.cfg.char_max as usize {
                if len > padded.len() {
                    break;
                }
                for win in padded.windows(len) {
                    emit(self.bucket(xxh3_64_with_seed(win, SEED_CHAR ^ len as u64)));
                    n += 1;
                }
            }
        }
        n
    }

    /// Calls `emit` with the bucket of every feature of `normalized`, in a deterministic
    /// order, duplicates included (so repeated words count more). Returns the number of
    /// features emitted.
    pub fn for_each_feature(&self, normalized: &str, mut emit: impl FnMut(u32)) -> usize {
        with_seen(self.cfg.distinct_words, |seen| self.for_each_feature_in(normalized, seen, &mut emit))
    }

    fn for_each_feature_in(&self, normalized: &str, seen: &mut Seen<'_>, mut emit: impl FnMut(u32)) -> usize {
        let mut n = 0usize;
        let mut prev: Option<u64> = None;
        for word in words(normalized) {
            let wh = Self::word_hash(word);
            if seen.first(wh) {
                n += self.for_each_word_feature(word, wh, &mut emit);
            }
            if self.cfg.word_bigrams {
                if let Some(p) = prev {
                    let b = self.bigram_bucket(p, wh);
                    if seen.first(BIGRAM_KEY ^ b as u64) {
                        emit(b);
                        n += 1;
                    }
                }
                prev = Some(wh);
            }
        }
        n
    }

    /// Collects the features of `normalized` into `out` (cleared first).
    pub fn features_into(&self, normalized: &str, out: &mut Vec<u32>) {
        out.clear();
        self.for_each_feature(normalized, |i| out.push(i));
    }
}

/// Marks bigram keys apart from word hashes in [`Seen`].
pub(crate) const BIGRAM_KEY: u64 = 0xB16B_0000_0000_0000;

/// Hasher for keys that already are xxh3 hashes: hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

pub(crate) type HashKeySet = std::collections::HashSet<u64, std::hash::BuildHasherDefault<PassThrough>>;

thread_local! {
    /// Reused across texts so counting distinct words allocates nothing per text.
    static SEEN: std::cell::RefCell<HashKeySet> = std::cell::RefCell::new(HashKeySet::default());
}

/// Runs `f` with this thread's [`Seen`] set, cleared, for one text.
pub(crate) fn with_seen<R>(on: bool, f: impl FnOnce(&mut Seen<'_>) -> R) -> R {
    SEEN.with_borrow_mut(|set| {
        set.clear();
        f(&mut Seen { on, set })
    })
}

/// Which words and bigrams a text has already produced, when counting distinct ones.
pub(crate) struct Seen<'a> {
    on: bool,
    set: &'a mut HashKeySet,
}

impl Seen<'_> {
    /// True the first time `key` is seen (always true when counting every occurrence).
    #[inline]
    pub(crate) fn first(&mut self, key: u64) -> bool {
        !self.on || self.set.insert(key)
    }
}

/// Words of normalized text: maximal runs of alphanumeric characters.
pub(crate) fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_deterministic_and_in_range() {
        let f = Featurizer::new(FeatureConfig { bits: 12, ..Default::default() });
        let mut a = Vec::new();
        let mut b = Vec::new();
        f.features_into("i will kill you", &mut a);
        f.features_into("i will kill you", &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|&i| (i as usize) < f.dim()));
        // 4 unigrams + 3 bigrams + char n-grams of "<i>" (3), "<will>" (4+3+2), ...
        assert!(a.len() > 7);
    }

    #[test]
    fn word_order_matters_only_through_bigrams() {
        let f = Featurizer::new(FeatureConfig { bits: 16, char_min: 0, ..Default::default() });
        let mut a = Vec::new();
        let mut b = Vec::new();
        f.features_into("kill you", &mut a);
        f.features_into("you kill", &mut b);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0], b[1]);
        assert_ne!(a[1], b[2]);
    }

    #[test]
    fn long_tokens_are_bounded() {
        let f = Featurizer::new(FeatureConfig::default());
        let long = "a".repeat(100_000);
        let n = f.for_each_feature(&long, |_| {});
        assert!(n < 200, "{n}");
    }

    #[test]
    fn empty_text_has_no_features() {
        let f = Featurizer::new(FeatureConfig::default());
        assert_eq!(f.for_each_feature("  ... !!", |_| {}), 0);
    }
}
