//! Test helpers shared by the curate integration tests.

/// Clean prose of exactly `n` bytes (no marker words, no rule terms, no identity terms).
pub fn clean(n: usize, seed: usize) -> String {
    let words = [
        "the", "quiet", "garden", "grows", "tomatoes", "and", "beans", "under", "a", "warm", "summer", "sun", "while",
        "bees", "visit", "every", "flower", "near", "old", "stone", "wall",
    ];
    let mut s = format!("paragraph {seed}:");
    let mut i = seed;
    while s.len() < n {
        s.push(' ');
        s.push_str(words[i % words.len()]);
        i = (i * 7 + 3) % 1009;
    }
    s.truncate(n);
    s
}
