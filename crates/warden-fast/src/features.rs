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

/// A set of `u64` keys (already hashes) for one text at a time: open addressing with
/// linear probing, each slot stamped with the text that filled it, so moving on to the next
/// text is O(1). A `HashSet` is cleared in time proportional to its capacity, so one huge
/// text (a 50 MB line in a corpus) would have made every later text on the thread pay for
/// it; a table grown past [`StampSet::KEEP_SLOTS`] is dropped instead.
#[derive(Default)]
pub(crate) struct StampSet {
    /// `(key, stamp)`; a slot belongs to the current text when its stamp is `stamp`.
    slots: Vec<(u64, u32)>,
    stamp: u32,
    len: usize,
}

impl StampSet {
    /// Slots kept from one text to the next (1 MB); larger tables are freed.
    const KEEP_SLOTS: usize = 1 << 16;

    /// Empties the set for the next text.
    pub(crate) fn next_text(&mut self) {
        self.len = 0;
        if self.slots.len() > Self::KEEP_SLOTS {
            self.slots = Vec::new();
        }
        if self.stamp == u32::MAX {
            self.slots.iter_mut().for_each(|s| s.1 = 0);
            self.stamp = 0;
        }
        self.stamp += 1;
    }

    #[inline]
    fn slot_of(key: u64, mask: usize) -> usize {
        // Fibonacci hashing: keys such as `BIGRAM_KEY ^ bucket` differ only in low bits.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
    }

    /// Adds `key`; true when it was not in the set yet.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = Self::slot_of(key, mask);
        loop {
            let slot = &mut self.slots[i];
            if slot.1 != self.stamp {
                *slot = (key, self.stamp);
                self.len += 1;
                return true;
            }
            if slot.0 == key {
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    #[cold]
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(256);
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); cap]);
        if self.stamp == 0 {
            self.stamp = 1;
        }
        self.len = 0;
        for (key, stamp) in old {
            if stamp == self.stamp {
                self.insert(key);
            }
        }
    }
}

thread_local! {
    /// Reused across texts so counting distinct words allocates nothing per text.
    static SEEN: std::cell::RefCell<StampSet> = std::cell::RefCell::new(StampSet::default());
}

/// Runs `f` with this thread's [`Seen`] set, emptied, for one text.
pub(crate) fn with_seen<R>(on: bool, f: impl FnOnce(&mut Seen<'_>) -> R) -> R {
    SEEN.with_borrow_mut(|set| {
        set.next_text();
        f(&mut Seen { on, set })
    })
}

/// Which words and bigrams a text has already produced, when counting distinct ones.
pub(crate) struct Seen<'a> {
    on: bool,
    set: &'a mut StampSet,
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
    fn the_stamp_set_agrees_with_a_hash_set_across_texts() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut set = StampSet::default();
        // Texts of 0 to 3,000 keys (growth mid-text), keys drawn from a small range so
        // that repeats are common, and keys differing only in their low bits.
        for text in 0..60 {
            set.next_text();
            let mut want = std::collections::HashSet::new();
            let n = if text == 30 { 200_000 } else { rng.gen_range(0..3_000) };
            for _ in 0..n {
                let key = if rng.gen_bool(0.5) { BIGRAM_KEY ^ rng.gen_range(0..4_000u64) } else { rng.gen_range(0..u64::MAX) };
                assert_eq!(set.insert(key), want.insert(key), "text {text}, key {key}");
            }
            assert_eq!(set.len, want.len());
        }
        // The huge text's table was not kept.
        assert!(set.slots.len() <= StampSet::KEEP_SLOTS);
        // The stamp wraps around without resurrecting old keys.
        set.stamp = u32::MAX - 1;
        set.next_text();
        assert!(set.insert(42));
        set.next_text();
        assert_eq!(set.stamp, 1);
        assert!(set.insert(42) && !set.insert(42));
    }

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
