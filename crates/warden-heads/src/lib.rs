//! Warden's encoder tier.
//!
//! The paper's model (section 4.1) is a pretrained transformer whose output
//! layer is replaced by one small MLP per category. This crate holds:
//!
//! * [`heads`] — the eight (any number of) independent `[d, 256, 1]` heads,
//!   and the Wasserstein critic;
//! * [`train`] — head training on a frozen encoder's cached embeddings,
//!   masked BCE, per-head early stopping, calibration, WDANN;
//! * [`probe`] — the in-domain linear probe mixed into the heads' scores;
//! * [`finetune`] — fine-tuning the encoder's top layers with the heads;
//! * [`model`] — the versioned artifact and [`model::EncoderClassifier`];
//! * [`cascade`] — the fast → encoder cascade, itself a `Classifier`.

pub mod cascade;
pub mod finetune;
pub mod heads;
pub mod model;
pub mod probe;
pub mod train;

pub use cascade::{Band, CascadeClassifier, CascadeManifest, Combiner};
pub use heads::{Heads, HeadsConfig};
pub use probe::{fit_probe, layer_features, Probe, ProbeFeatures, ProbeInfo};
pub use model::{EncoderClassifier, EncoderManifest, EncoderRef, HeadsModel};
pub use train::{train_heads, HeadData, HeadTrainConfig, HeadTrainReport, WdannConfig};

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum HeadsError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("bad encoder-tier artifact: {0}")]
    Format(String),
    #[error(
        "these heads were trained on encoder weights {expected} but {dir} holds {found}; \
         run `warden model fetch` or pass the right --encoder"
    )]
    EncoderMismatch { expected: String, found: String, dir: String },
    #[error(transparent)]
    Encoder(#[from] warden_encoder::EncoderError),
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
}

impl HeadsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        HeadsError::Io { path: path.display().to_string(), source }
    }
}
