//! The normalization the fast tier trains and scores with. Its identifier is recorded in
//! every model manifest: a model trained under one normalization refuses to load under
//! another, since its hashed features would silently mean something else.

use std::sync::LazyLock;

use warden_normalize::TextNormalizer;

static NORMALIZER: LazyLock<TextNormalizer> = LazyLock::new(TextNormalizer::default);

pub(crate) fn normalize_text(s: &str) -> String {
    NORMALIZER.normalize_text(s)
}

pub(crate) const NORMALIZER_ID: &str = warden_normalize::PIPELINE_ID;
