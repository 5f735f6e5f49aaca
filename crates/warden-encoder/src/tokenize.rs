//! Tokenisation into encoder windows.
//!
//! A common complaint about hosted moderation models is that they silently
//! cut long inputs at 512 tokens, so a harmful paragraph at the end of a long
//! post is never seen. Here every text is tokenised in full and split into
//! overlapping windows of at most `max_tokens` tokens (special tokens
//! included); each window remembers the byte span of the original text it
//! covers, so a score can be traced to the window that drove it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

/// Window geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Tokens per window including `[CLS]` and `[SEP]`; at most the
    /// encoder's `max_position_embeddings`.
    pub max_tokens: usize,
    /// Tokens shared by consecutive windows, so a phrase cut by one window
    /// boundary is whole in the next.
    pub overlap: usize,
    /// Stop after this many windows per text (0 = no limit). A guard against
    /// pathological inputs; when it bites, the caller is told
    /// ([`Tokenized::truncated`]).
    pub max_windows: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { max_tokens: 256, overlap: 32, max_windows: 64 }
    }
}

impl WindowConfig {
    /// The default windows, shortened to fit an encoder with `max_positions` positions
    /// (a small BERT with 128 positions gets windows of 128 tokens, overlapping by 16).
    pub fn for_positions(max_positions: usize) -> Self {
        let d = WindowConfig::default();
        let max_tokens = d.max_tokens.min(max_positions);
        WindowConfig { max_tokens, overlap: d.overlap.min(max_tokens / 8), ..d }
    }

    pub fn validate(&self, max_positions: usize) -> Result<(), String> {
        if self.max_tokens < 8 {
            return Err(format!("window max_tokens {} is below 8", self.max_tokens));
        }
        if self.max_tokens > max_positions {
            return Err(format!(
                "window max_tokens {} exceeds the encoder's {} positions",
                self.max_tokens, max_positions
            ));
        }
        if self.overlap >= self.max_tokens - 2 {
            return Err(format!("window overlap {} must be below max_tokens - 2", self.overlap));
        }
        Ok(())
    }

    /// A stable identifier used in embedding-cache keys.
    pub fn id(&self) -> String {
        format!("w{}o{}m{}", self.max_tokens, self.overlap, self.max_windows)
    }
}

/// One window: token ids with special tokens, and the byte span it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub ids: Vec<u32>,
    pub start: usize,
    pub end: usize,
}

/// A tokenised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    pub windows: Vec<Window>,
    /// Total tokens of the text (special tokens excluded).
    pub tokens: usize,
    /// True when `max_windows` cut the text short.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot load tokenizer {path}: {message}")]
    Load { path: String, message: String },
    #[error("the tokenizer has no {0} token; Warden needs a BERT-family vocabulary ([CLS]/[SEP])")]
    MissingSpecial(&'static str),
    #[error("tokenisation failed: {0}")]
    Encode(String),
    #[error("bad window configuration: {0}")]
    Config(String),
}

/// `tokenizer.json` with padding and truncation switched off, plus windows.
pub struct WindowTokenizer {
    tokenizer: Tokenizer,
    cls: u32,
    sep: u32,
    config: WindowConfig,
}

impl WindowTokenizer {
    pub fn from_file(path: &Path, config: WindowConfig) -> Result<Self, TokenizeError> {
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| TokenizeError::Load { path: path.display().to_string(), message: e.to_string() })?;
        Self::new(tokenizer, config)
    }

    pub fn new(mut tokenizer: Tokenizer, config: WindowConfig) -> Result<Self, TokenizeError> {
        // The shipped tokenizer.json of all-MiniLM-L6-v2 pads and truncates
        // to 128 tokens: exactly the silent truncation we refuse.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| TokenizeError::Encode(e.to_string()))?;
        let cls = tokenizer
            .token_to_id("[CLS]")
            .or_else(|| tokenizer.token_to_id("<s>"))
            .ok_or(TokenizeError::MissingSpecial("[CLS]"))?;
        let sep = tokenizer
            .token_to_id("[SEP]")
            .or_else(|| tokenizer.token_to_id("</s>"))
            .ok_or(TokenizeError::MissingSpecial("[SEP]"))?;
        Ok(WindowTokenizer { tokenizer, cls, sep, config })
    }

    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// Tokenises a batch (in parallel) into windows.
    pub fn tokenize_batch(&self, texts: &[&str]) -> Result<Vec<Tokenized>, TokenizeError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), false)
            .map_err(|e| TokenizeError::Encode(e.to_string()))?;
        Ok(encodings
            .iter()
            .zip(texts)
            .map(|(enc, text)| self.split(enc.get_ids(), enc.get_offsets(), text.len()))
            .collect())
    }

    pub fn tokenize(&self, text: &str) -> Result<Tokenized, TokenizeError> {
        Ok(self.tokenize_batch(&[text])?.pop().expect("one text in, one out"))
    }

    fn split(&self, ids: &[u32], offsets: &[(usize, usize)], text_len: usize) -> Tokenized {
        let body = self.config.max_tokens - 2;
        let stride = body - self.config.overlap;
        let mut windows = Vec::new();
        let mut truncated = false;
        if ids.is_empty() {
            windows.push(Window { ids: vec![self.cls, self.sep], start: 0, end: 0 });
        } else {
            let mut from = 0;
            loop {
                if self.config.max_windows > 0 && windows.len() == self.config.max_windows {
                    truncated = true;
                    break;
                }
                let to = (from + body).min(ids.len());
                let mut w = Vec::with_capacity(to - from + 2);
                w.push(self.cls);
                w.extend_from_slice(&ids[from..to]);
                w.push(self.sep);
                let start = offsets[from].0.min(text_len);
                let end = offsets[to - 1].1.min(text_len).max(start);
                windows.push(Window { ids: w, start, end });
                if to == ids.len() {
                    break;
                }
                from += stride;
            }
        }
        Tokenized { windows, tokens: ids.len(), truncated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(cfg: WindowConfig) -> WindowTokenizer {
        WindowTokenizer::new(crate::testing::tiny_tokenizer(), cfg).unwrap()
    }

    #[test]
    fn long_texts_become_overlapping_windows_covering_every_token() {
        let cfg = WindowConfig { max_tokens: 10, overlap: 3, max_windows: 0 };
        let t = toy(cfg);
        let text: String = (0..30).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let tk = t.tokenize(&text).unwrap();
        assert_eq!(tk.tokens, 30);
        assert!(!tk.truncated);
        // body 8, stride 5: windows start at 0,5,10,15,20 (20..28), 25 (25..30)
        assert_eq!(tk.windows.len(), 6);
        for w in &tk.windows {
            assert!(w.ids.len() <= 10);
            assert_eq!(w.ids[0], 2);
            assert_eq!(*w.ids.last().unwrap(), 3);
        }
        // Every token appears in some window; spans point back at the text.
        let mut seen = std::collections::HashSet::new();
        for w in &tk.windows {
            for &id in &w.ids[1..w.ids.len() - 1] {
                seen.insert(id);
            }
            assert!(text[w.start..w.end].starts_with('w'));
        }
        assert_eq!(seen.len(), 30);
        assert_eq!(tk.windows.last().unwrap().end, text.len());
    }

    #[test]
    fn short_and_empty_texts_are_one_window() {
        let t = toy(WindowConfig { max_tokens: 10, overlap: 3, max_windows: 0 });
        let tk = t.tokenize("w1 w2").unwrap();
        assert_eq!(tk.windows, vec![Window { ids: vec![2, 5, 6, 3], start: 0, end: 5 }]);
        let e = t.tokenize("").unwrap();
        assert_eq!(e.windows.len(), 1);
        assert_eq!(e.windows[0].ids, vec![2, 3]);
    }

    #[test]
    fn max_windows_truncates_and_says_so() {
        let t = toy(WindowConfig { max_tokens: 10, overlap: 0, max_windows: 2 });
        let text: String = (0..30).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let tk = t.tokenize(&text).unwrap();
        assert_eq!(tk.windows.len(), 2);
        assert!(tk.truncated);
    }

    #[test]
    fn config_is_validated() {
        assert!(WindowConfig { max_tokens: 600, overlap: 0, max_windows: 0 }.validate(512).is_err());
        assert!(WindowConfig { max_tokens: 16, overlap: 14, max_windows: 0 }.validate(512).is_err());
        assert!(WindowConfig::default().validate(512).is_ok());
        assert_eq!(WindowConfig::for_positions(512), WindowConfig::default());
        let small = WindowConfig::for_positions(40);
        assert_eq!((small.max_tokens, small.overlap), (40, 5));
        assert!(small.validate(40).is_ok());
    }
}
