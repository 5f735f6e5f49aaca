//! The normalization the fast tier trains and scores with. Its identifier is recorded in
//! every model manifest: a model trained under one normalization refuses to load under
//! another, since its hashed features would silently mean something else.

pub(crate) fn normalize_text(s: &str) -> String {
    s.to_lowercase()
}

pub(crate) const NORMALIZER_ID: &str = "lowercase/0";
