//! Optional Bearer API keys.
//!
//! With no keys configured the moderation endpoints are open (a sidecar on a private
//! network) and the admin endpoints are closed, because they change the service's
//! behaviour. Keys come from a TOML file and/or the environment:
//!
//! ```toml
//! format_version = 1
//! [[keys]]
//! name = "chat-frontend"
//! sha256 = "9f86d0…"     # sha256 of the key (preferred: the file then holds no secret)
//! [[keys]]
//! name = "ops"
//! key = "wk_admin_…"     # or the key itself
//! admin = true
//! [[keys]]
//! name = "health-app"
//! key = "wk_…"
//! no_store = true        # this client's traffic is never sampled
//! ```
//!
//! `WARDEN_API_KEYS` (comma-separated) adds ordinary keys and `WARDEN_ADMIN_KEYS` admin ones.
//! Presented keys are hashed and looked up by hash, so lookups do not compare secrets byte by
//! byte.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const KEYS_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: String,
    pub admin: bool,
    pub no_store: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read API keys file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("invalid API keys file {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    format_version: u32,
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    key: Option<String>,
    sha256: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    no_store: bool,
}

/// The configured keys, by sha256 of the key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], KeyInfo>,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// True when no key is configured: moderation is open, admin is closed.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn insert(&mut self, key: &str, info: KeyInfo) {
        self.by_hash.insert(hash(key), info);
    }

    /// Loads a keys file and the `WARDEN_API_KEYS` / `WARDEN_ADMIN_KEYS` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, KeysError> {
        let mut keys = Self::default();
        if let Some(path) = file {
            let p = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| KeysError::Io { path: p.clone(), source })?;
            keys.add_toml(&text).map_err(|message| KeysError::Invalid { path: p, message })?;
        }
        for (var, admin) in [("WARDEN_API_KEYS", false), ("WARDEN_ADMIN_KEYS", true)] {
            if let Ok(v) = std::env::var(var) {
                for (i, k) in v.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
                    keys.insert(k, KeyInfo { name: format!("{var}[{i}]"), admin, no_store: false });
                }
            }
        }
        Ok(keys)
    }

    /// Adds the keys of a keys file's text.
    pub fn add_toml(&mut self, text: &str) -> Result<(), String> {
        let f: KeysFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if f.format_version != KEYS_FORMAT_VERSION {
            return Err(format!("format_version {} is not supported (this build reads {KEYS_FORMAT_VERSION})", f.format_version));
        }
        for e in f.keys {
            let h = match (e.key, e.sha256) {
                (Some(k), None) if k.len() >= 8 => hash(&k),
                (Some(_), None) => return Err(format!("key {:?} is shorter than 8 characters", e.name)),
                (None, Some(h)) => {
                    let v = hex::decode(h.trim()).map_err(|_| format!("sha256 of {:?} is not hex", e.name))?;
                    v.try_into().map_err(|_| format!("sha256 of {:?} is not 32 bytes", e.name))?
                }
                _ => return Err(format!("key {:?} needs exactly one of `key` and `sha256`", e.name)),
            };
            self.by_hash.insert(h, KeyInfo { name: e.name, admin: e.admin, no_store: e.no_store });
        }
        Ok(())
    }

    /// The key's info for an `Authorization` header value, if it names a configured key.
    pub fn check(&self, authorization: Option<&str>) -> Option<&KeyInfo> {
        let v = authorization?.trim();
        let (scheme, key) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.by_hash.get(&hash(key.trim()))
    }
}
