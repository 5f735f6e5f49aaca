//! Named policies chosen per request, reloadable without a restart.
//!
//! One model serves many products; what differs is where each category's line is drawn (the
//! paper's "fine-grained control for sensitive use cases"). Policies are the versioned
//! [`ThresholdPolicy`] TOML files of `warden-policy`, one per file in a directory (or a single
//! file). The model's own tuned policy is always present as `default` unless a file claims
//! that name. A request picks one with the `X-Warden-Policy` header or the `model` field;
//! OpenAI's model names (`omni-moderation-latest`, `text-moderation-*`) mean `default`, so
//! unmodified clients get the default policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use warden_core::Taxonomy;
use warden_policy::{PolicyError, ThresholdPolicy};

pub const DEFAULT_POLICY: &str = "default";

/// An immutable set of policies; a reload swaps in a new one atomically.
#[derive(Debug, Clone)]
pub struct PolicyRegistry {
    policies: BTreeMap<String, Arc<ThresholdPolicy>>,
    /// Where the non-default policies came from, for `/v1/policies`.
    origins: BTreeMap<String, String>,
}

impl PolicyRegistry {
    /// The model's own policy as `default`, plus every policy under `path` (a `.toml` file or a
    /// directory of them). Fails on any invalid file or duplicate name, so a bad edit is
    /// reported instead of half-applied.
    pub fn load(model_policy: &ThresholdPolicy, path: Option<&Path>, taxonomy: &Taxonomy) -> Result<Self, PolicyError> {
        let mut default = model_policy.clone();
        default.name = DEFAULT_POLICY.into();
        let mut policies = BTreeMap::from([(DEFAULT_POLICY.to_string(), Arc::new(default))]);
        let mut origins = BTreeMap::from([(DEFAULT_POLICY.to_string(), "model".to_string())]);
        let Some(path) = path else { return Ok(Self { policies, origins }) };
        let files: Vec<PathBuf> = if path.is_dir() {
            let rd = std::fs::read_dir(path).map_err(|source| PolicyError::Io { path: path.to_owned(), source })?;
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            v.sort();
            v
        } else {
            vec![path.to_owned()]
        };
        let mut from_files = BTreeMap::new();
        for f in files {
            let p = ThresholdPolicy::load(&f, taxonomy)?;
            if !valid_name(&p.name) {
                return Err(PolicyError::Invalid {
                    origin: Some(f),
                    message: format!("policy name {:?} must be 1-64 characters of [A-Za-z0-9._-]", p.name),
                });
            }
            if let Some(prev) = from_files.insert(p.name.clone(), f.clone()) {
                return Err(PolicyError::Invalid {
                    origin: Some(f),
                    message: format!("policy name {:?} is also defined in {}", p.name, prev.display()),
                });
            }
            origins.insert(p.name.clone(), f.display().to_string());
            policies.insert(p.name.clone(), Arc::new(p));
        }
        Ok(Self { policies, origins })
    }

    /// Resolves a requested name: `None`, empty, OpenAI model names and `warden`/the model's
    /// own name mean `default`; `warden-NAME` means `NAME`.
    pub fn resolve(&self, requested: Option<&str>, model_name: &str) -> Option<Arc<ThresholdPolicy>> {
        let name = match requested.map(str::trim) {
            None | Some("") => DEFAULT_POLICY,
            Some(n) if n.starts_with("omni-moderation") || n.starts_with("text-moderation") || n == "warden" || n == model_name => {
                DEFAULT_POLICY
            }
            Some(n) => n,
        };
        self.policies
            .get(name)
            .or_else(|| name.strip_prefix("warden-").and_then(|n| self.policies.get(n)))
            .cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ThresholdPolicy, &str)> {
        self.policies.iter().map(|(k, v)| (k.as_str(), v.as_ref(), self.origins[k].as_str()))
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
