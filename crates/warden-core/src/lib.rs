//! Warden's shared vocabulary.
//!
//! Every stage of the pipeline
//! `text → normalize → features → heads → calibrated scores → policy → decision`
//! lives in its own crate; this crate holds only what they must agree on:
//!
//! * [`Taxonomy`]: the categories, loaded from a versioned TOML file (the built-in one is the
//!   paper's eight). Nothing downstream may assume eight categories: always index through a
//!   taxonomy.
//! * [`Label`] and [`Record`]: one labelled example, where a category a dataset does not
//!   cover is [`Label::Unknown`], never negative.
//! * The pipeline contracts [`Normalizer`], [`Classifier`] and [`Policy`]. Composites (a
//!   sequence of normalizers, a cascade of classifiers) implement the same trait as their
//!   parts, as in huggingface/tokenizers.

mod error;
mod normalized;
mod pipeline;
mod record;
mod taxonomy;

pub use error::{Error, Result};
pub use normalized::Normalized;
pub use pipeline::{Classifier, Decision, Normalizer, Policy, Scores};
pub use record::{Label, Record};
pub use taxonomy::{Category, Taxonomy, TAXONOMY_FORMAT_VERSION};
