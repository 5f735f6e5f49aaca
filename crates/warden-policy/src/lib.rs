//! Policies turn calibrated scores into decisions.
//!
//! The paper asks for "fine-grained control for sensitive use cases": the same model
//! serves a children's education product and an adult fiction site, and what differs is
//! where each category's line is drawn. A [`ThresholdPolicy`] is one such line per
//! category, stored as a small versioned TOML file:
//!
//! ```toml
//! format_version = 1
//! name = "default"
//! description = "F1-optimal thresholds on the dev split"
//! default = 0.5            # for categories not listed
//! [thresholds]
//! sexual = 0.42            # keys are codes (S) or names (sexual)
//! H2 = 0.3
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warden_core::{Decision, Policy, Taxonomy};

pub const POLICY_FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid policy{}: {message}", .origin.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Invalid { origin: Option<PathBuf>, message: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    format_version: u32,
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<f32>,
    #[serde(default)]
    thresholds: toml::Table,
}

/// Flags category `i` when its score is at least `thresholds[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdPolicy {
    pub name: String,
    pub description: String,
    thresholds: Vec<f32>,
}

impl ThresholdPolicy {
    /// The same threshold for every category.
    pub fn uniform(name: &str, taxonomy: &Taxonomy, threshold: f32) -> Self {
        Self { name: name.into(), description: String::new(), thresholds: vec![threshold; taxonomy.len()] }
    }

    /// A policy from explicit per-category thresholds in taxonomy order.
    pub fn new(name: &str, description: &str, thresholds: Vec<f32>) -> Self {
        Self { name: name.into(), description: description.into(), thresholds }
    }

    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    pub fn load(path: &Path, taxonomy: &Taxonomy) -> Result<Self, PolicyError> {
        let s = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Io { path: path.to_owned(), source })?;
        Self::parse(&s, taxonomy, Some(path))
    }

    pub fn from_toml_str(s: &str, taxonomy: &Taxonomy) -> Result<Self, PolicyError> {
        Self::parse(s, taxonomy, None)
    }

    fn parse(s: &str, taxonomy: &Taxonomy, origin: Option<&Path>) -> Result<Self, PolicyError> {
        let err = |message: String| PolicyError::Invalid { origin: origin.map(Path::to_owned), message };
        let f: PolicyFile = toml::from_str(s).map_err(|e| err(e.to_string()))?;
        if f.format_version != POLICY_FORMAT_VERSION {
            return Err(err(format!(
                "format_version {} is not supported (this build reads {POLICY_FORMAT_VERSION})",
                f.format_version
            )));
        }
        let valid = |x: f64, what: &str| {
            if (0.0..=1.0).contains(&x) {
                Ok(x as f32)
            } else {
                Err(err(format!("{what} threshold {x} is outside [0, 1]")))
            }
        };
        let default = f.default.map(|d| valid(d as f64, "default")).transpose()?;
        let mut thresholds = vec![None; taxonomy.len()];
        for (k, v) in &f.thresholds {
            let i = taxonomy
                .index_of(k)
                .ok_or_else(|| err(format!("unknown category {k:?} in [thresholds]")))?;
            let x = v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .ok_or_else(|| err(format!("threshold for {k} must be a number")))?;
            thresholds[i] = Some(valid(x, k)?);
        }
        let thresholds = thresholds
            .into_iter()
            .zip(taxonomy.codes())
            .map(|(t, code)| {
                t.or(default).ok_or_else(|| err(format!("no threshold for {code} and no `default`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { name: f.name, description: f.description, thresholds })
    }

    /// Serializes with category codes as keys.
    pub fn to_toml_string(&self, taxonomy: &Taxonomy) -> String {
        let mut thresholds = toml::Table::new();
        for (code, t) in taxonomy.codes().zip(&self.thresholds) {
            // Round to 4 decimals so files diff cleanly.
            thresholds.insert(code.into(), toml::Value::Float(((*t as f64) * 1e4).round() / 1e4));
        }
        let f = PolicyFile {
            format_version: POLICY_FORMAT_VERSION,
            name: self.name.clone(),
            description: self.description.clone(),
            default: None,
            thresholds,
        };
        toml::to_string(&f).expect("policy serializes")
    }
}

impl Policy for ThresholdPolicy {
    fn decide(&self, scores: &[f32]) -> Decision {
        let categories: Vec<bool> =
            scores.iter().zip(&self.thresholds).map(|(s, t)| s >= t).collect();
        Decision { flagged: categories.iter().any(|&b| b), categories }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_names_and_default() {
        let t = Taxonomy::builtin();
        let p = ThresholdPolicy::from_toml_str(
            "format_version = 1\nname = \"strict\"\ndefault = 0.5\n[thresholds]\nsexual = 0.2\nH2 = 0.1\n",
            &t,
        )
        .unwrap();
        assert_eq!(p.thresholds()[0], 0.2);
        assert_eq!(p.thresholds()[t.index_of("H2").unwrap()], 0.1);
        assert_eq!(p.thresholds()[1], 0.5);
        let d = p.decide(&[0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(d.flagged && d.categories[0] && !d.categories[1]);
        let d = p.decide(&[0.05; 8]);
        assert!(!d.flagged);
    }

    #[test]
    fn round_trips() {
        let t = Taxonomy::builtin();
        let p = ThresholdPolicy::new("x", "tuned", vec![0.25, 0.5, 0.125, 0.75, 0.5, 0.5, 0.5, 0.0625]);
        let back = ThresholdPolicy::from_toml_str(&p.to_toml_string(&t), &t).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn rejects_bad_policies() {
        let t = Taxonomy::builtin();
        for bad in [
            "format_version = 2\nname = \"x\"\ndefault = 0.5\n",
            "format_version = 1\nname = \"x\"\n[thresholds]\nS = 0.5\n",
            "format_version = 1\nname = \"x\"\ndefault = 0.5\n[thresholds]\nspam = 0.5\n",
            "format_version = 1\nname = \"x\"\ndefault = 1.5\n",
            "format_version = 1\nname = \"x\"\ndefault = 0.5\n[thresholds]\nS = \"high\"\n",
            "format_version = 1\nname = \"x\"\ndefault = 0.5\nthreshold = 0.5\n",
        ] {
            assert!(ThresholdPolicy::from_toml_str(bad, &t).is_err(), "accepted {bad}");
        }
    }
}
