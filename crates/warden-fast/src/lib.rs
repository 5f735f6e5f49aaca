//! The fast tier: a linear multi-label classifier over hashed n-grams.
//!
//! It is the first line of every Warden pipeline, so it is built for corpus-scale
//! throughput first: text is normalized (so `k1ll`, `ｋｉｌｌ` and `k i l l` look alike),
//! split into words, and turned into hashed word unigrams, word bigrams and character
//! n-grams of each word. Each category has its own independent logistic head over those
//! features (the paper's independent heads, section 4.1): a category never competes with
//! another, and a label a dataset does not cover contributes nothing to that head's loss
//! (masked binary cross-entropy).
//!
//! Raw head outputs are calibrated per category on dev data (Platt scaling) so that scores
//! are usable probabilities, and the taxonomy's hierarchy is enforced on the result (a
//! parent's score is never below its child's).
//!
//! The on-disk format ([`FastModel::save`]) is a directory with a JSON manifest carrying a
//! format version, the taxonomy, feature settings, calibration, training provenance and
//! metrics, next to a little-endian binary weight file.

mod features;
mod model;
mod norm;
pub mod ridge;
pub mod static_probe;
mod train;

pub use features::{FeatureConfig, Featurizer};
pub use model::{Calibration, FastModel, Manifest, ModelError, FAST_FORMAT_VERSION};
pub use train::{backtrack, fit_platt, logistic_loss, train, TrainConfig, TrainExample, TrainReport};
