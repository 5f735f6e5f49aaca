//! The curation policy: which safeguards run, in which order, and what they do.
//!
//! A policy is a versioned TOML file (`format_version = 1`). Every layer can be switched
//! off, every threshold is per category, and relative paths are resolved against the
//! policy file's own directory, so a policy and its word lists travel together. Unknown
//! keys are errors: a misspelt `treshold` must not silently fall back to a default.
//!
//! ```toml
//! format_version = 1
//! name = "web-default"
//! description = "..."
//!
//! [rules]
//! enabled = true
//! builtin = true                 # Warden's own high-precision list (rules/warden-default.toml)
//! act_on = "severe"              # hits at or above this severity remove content
//! lists = [
//!   { path = "../shared/data/surge-profanity/profanity_en.csv", format = "surge-csv" },
//!   { path = "../shared/data/ldnoobw-en/en", format = "lines", category = "S", severity = "mild", licence = "CC-BY-4.0" },
//! ]
//! domains = ["blocklist.txt"]    # one domain per line; a hit drops the document
//! decontamination = "../shared/data/heldout-decontamination/normalized_text_sha256.txt.gz"
//!
//! [classifier]
//! enabled = true
//! default_threshold = 0.9
//! thresholds = { S3 = 0.5 }
//!
//! [second_tier]
//! enabled = true                 # used when a second tier is loaded
//! band = [0.3, 0.9]              # chunks with some fast score in this band are rescored
//!
//! [chunking]
//! max_bytes = 1000
//!
//! [decision]
//! redact = true
//! max_redacted_fraction = 0.3
//! min_kept_bytes = 200
//! drop_categories = ["S3"]
//!
//! [pii]
//! mask = false
//!
//! [identity]
//! terms = "builtin"              # or a HolisticBias descriptors.json
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_core::Taxonomy;
use warden_rules::Severity;

use crate::CurateError;

/// The policy format this build reads and writes.
pub const POLICY_FORMAT_VERSION: u32 = 1;

/// The built-in curation policy (`policies/curate/default.toml`).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../policies/curate/default.toml");

/// A parsed, validated curation policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurationPolicy {
    /// Must be [`POLICY_FORMAT_VERSION`].
    pub format_version: u32,
    /// Short name, recorded in manifests and reports.
    pub name: String,
    /// What the policy is for.
    #[serde(default)]
    pub description: String,
    /// The rule layer.
    #[serde(default)]
    pub rules: RulesConfig,
    /// The fast classifier.
    #[serde(default)]
    pub classifier: ClassifierConfig,
    /// The second tier (transformer encoder) on the uncertain band.
    #[serde(default)]
    pub second_tier: SecondTierConfig,
    /// How long documents are cut into scored chunks.
    #[serde(default)]
    pub chunking: ChunkingConfig,
    /// Keep / drop / redact.
    #[serde(default)]
    pub decision: DecisionConfig,
    /// PII masking of written text.
    #[serde(default)]
    pub pii: PiiConfig,
    /// Identity terms for the over-filtering check.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// Where the policy was loaded from (not part of the file).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    /// SHA-256 of the policy file's bytes (not part of the file).
    #[serde(skip)]
    pub sha256: String,
}

/// `[rules]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Run the rule layer at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Include Warden's built-in list.
    #[serde(default = "yes")]
    pub builtin: bool,
    /// Hits at or above this severity remove content; lower ones are only recorded in the
    /// attributes (so a stricter policy can be re-applied later).
    #[serde(default = "severe")]
    pub act_on: Severity,
    /// Further lists.
    #[serde(default)]
    pub lists: Vec<ListSpec>,
    /// When set, an acting rule hit removes content only if the classifier's score for the
    /// hit's category in the same chunk is at least this: words alone cannot tell a slur
    /// used from a slur quoted in an article about racism. `None`: rules act alone.
    #[serde(default)]
    pub confirm_threshold: Option<f32>,
    /// Categories whose acting hits remove content without confirmation (default `S3`).
    #[serde(default = "default_drop_categories")]
    pub always_act: Vec<String>,
    /// Domain blocklists (one domain per line).
    #[serde(default)]
    pub domains: Vec<PathBuf>,
    /// Held-out decontamination hash list: rule terms equal to a held-out text are dropped
    /// at load time (and counted in the manifest).
    #[serde(default)]
    pub decontamination: Option<PathBuf>,
}

/// One external rule list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// The file.
    pub path: PathBuf,
    /// `warden` (Warden's TOML rule file), `surge-csv` (surge-ai/profanity) or `lines`.
    #[serde(default = "warden_format")]
    pub format: String,
    /// For `lines`: the category every term gets.
    #[serde(default)]
    pub category: Option<String>,
    /// For `lines`: the severity every term gets (default `strong`).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// For `lines`: the list's licence (recorded in the manifest).
    #[serde(default)]
    pub licence: Option<String>,
    /// For `lines`: the list's name (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
}

/// `[classifier]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Run the fast classifier at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Threshold for categories not listed in `thresholds`.
    #[serde(default = "default_threshold")]
    pub default_threshold: f32,
    /// Per-category thresholds on the calibrated probability, by code.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f32>,
}

/// `[second_tier]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondTierConfig {
    /// Use the second tier when one is loaded.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A chunk is rescored when some category's fast score is in `[low, high]`.
    #[serde(default = "default_band")]
    pub band: [f32; 2],
}

/// `[chunking]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Lines are merged into chunks of at most this many bytes; a longer line is cut at
    /// whitespace into windows of about this size.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Paragraph mode: a blank line also ends a chunk (once it holds 100 bytes). Tighter
    /// spans for redaction, about twice the scoring cost; see docs/curate.md for the
    /// measured trade-off.
    #[serde(default)]
    pub paragraphs: bool,
}

/// `[decision]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionConfig {
    /// Remove only the offending chunks when the rest is clean (else drop the document).
    #[serde(default = "yes")]
    pub redact: bool,
    /// Drop instead of redacting when more than this fraction of the bytes offends.
    #[serde(default = "default_max_redacted_fraction")]
    pub max_redacted_fraction: f64,
    /// Drop instead of redacting when fewer bytes than this would remain.
    #[serde(default = "default_min_kept_bytes")]
    pub min_kept_bytes: usize,
    /// Categories whose presence anywhere drops the whole document.
    #[serde(default = "default_drop_categories")]
    pub drop_categories: Vec<String>,
}

/// `[pii]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Mask e-mail addresses, phone numbers, card numbers, ... in the written text.
    #[serde(default)]
    pub mask: bool,
}

/// `[identity]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// `"builtin"`, or the path of a HolisticBias `descriptors.json`.
    #[serde(default = "builtin_str")]
    pub terms: String,
}

fn yes() -> bool {
    true
}
fn severe() -> Severity {
    Severity::Severe
}
fn warden_format() -> String {
    "warden".into()
}
fn default_threshold() -> f32 {
    0.9
}
fn default_band() -> [f32; 2] {
    [0.3, 0.9]
}
fn default_max_bytes() -> usize {
    1000
}
fn default_max_redacted_fraction() -> f64 {
    0.3
}
fn default_min_kept_bytes() -> usize {
    200
}
fn default_drop_categories() -> Vec<String> {
    vec!["S3".into()]
}
fn builtin_str() -> String {
    "builtin".into()
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            enabled: true,
            builtin: true,
            act_on: Severity::Severe,
            confirm_threshold: None,
            always_act: default_drop_categories(),
            lists: Vec::new(),
            domains: Vec::new(),
            decontamination: None,
        }
    }
}
impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig { enabled: true, default_threshold: default_threshold(), thresholds: BTreeMap::new() }
    }
}
impl Default for SecondTierConfig {
    fn default() -> Self {
        SecondTierConfig { enabled: true, band: default_band() }
    }
}
impl Default for ChunkingConfig {
    fn default() -> Self {
        ChunkingConfig { max_bytes: default_max_bytes(), paragraphs: false }
    }
}
impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            redact: true,
            max_redacted_fraction: default_max_redacted_fraction(),
            min_kept_bytes: default_min_kept_bytes(),
            drop_categories: default_drop_categories(),
        }
    }
}
impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { terms: builtin_str() }
    }
}

impl CurationPolicy {
    /// The built-in policy.
    pub fn builtin(taxonomy: &Taxonomy) -> Result<Self, CurateError> {
        Self::from_toml_str(DEFAULT_POLICY_TOML, None, taxonomy)
            .map_err(|e| CurateError::Policy(format!("built-in policy: {e}")))
    }

    /// Loads and validates a policy file.
    pub fn load(path: &Path, taxonomy: &Taxonomy) -> Result<Self, CurateError> {
        let text = std::fs::read_to_string(path).map_err(|e| CurateError::io(path, e))?;
        let base = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
        Self::from_toml_str(&text, base, taxonomy)
            .map_err(|e| CurateError::Policy(format!("{}: {e}", path.display())))
    }

    /// Parses a policy; relative paths are resolved against `base_dir` when given.
    pub fn from_toml_str(text: &str, base_dir: Option<&Path>, taxonomy: &Taxonomy) -> Result<Self, String> {
        let mut p: CurationPolicy = toml::from_str(text).map_err(|e| e.to_string())?;
        if p.format_version != POLICY_FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not supported (this build reads version {POLICY_FORMAT_VERSION})",
                p.format_version
            ));
        }
        p.base_dir = base_dir.map(Path::to_path_buf);
        p.sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        p.validate(taxonomy)?;
        Ok(p)
    }

    fn validate(&self, taxonomy: &Taxonomy) -> Result<(), String> {
        let check_code = |code: &str, what: &str| {
            if taxonomy.index_of(code).is_none() {
                Err(format!(
                    "{what}: unknown category {code:?} (taxonomy {} has {})",
                    taxonomy.name(),
                    taxonomy.codes().collect::<Vec<_>>().join(", ")
                ))
            } else {
                Ok(())
            }
        };
        let prob = |x: f32, what: &str| {
            if (0.0..=1.0).contains(&x) {
                Ok(())
            } else {
                Err(format!("{what} = {x} is outside [0, 1]"))
            }
        };
        prob(self.classifier.default_threshold, "classifier.default_threshold")?;
        for (code, &t) in &self.classifier.thresholds {
            check_code(code, "classifier.thresholds")?;
            prob(t, &format!("classifier.thresholds.{code}"))?;
        }
        if let Some(t) = self.rules.confirm_threshold {
            prob(t, "rules.confirm_threshold")?;
        }
        for code in &self.rules.always_act {
            check_code(code, "rules.always_act")?;
        }
        for code in &self.decision.drop_categories {
            check_code(code, "decision.drop_categories")?;
        }
        let [lo, hi] = self.second_tier.band;
        prob(lo, "second_tier.band[0]")?;
        prob(hi, "second_tier.band[1]")?;
        if lo > hi {
            return Err(format!("second_tier.band [{lo}, {hi}] is empty"));
        }
        if self.chunking.max_bytes < 16 {
            return Err(format!("chunking.max_bytes = {} is too small (at least 16)", self.chunking.max_bytes));
        }
        if !(0.0..=1.0).contains(&self.decision.max_redacted_fraction) {
            return Err(format!("decision.max_redacted_fraction = {} is outside [0, 1]", self.decision.max_redacted_fraction));
        }
        for l in &self.rules.lists {
            match l.format.as_str() {
                "warden" | "surge-csv" => {}
                "lines" => {
                    let Some(c) = &l.category else {
                        return Err(format!("rules.lists {}: format \"lines\" needs a category", l.path.display()));
                    };
                    check_code(c, &format!("rules.lists {}", l.path.display()))?;
                }
                other => {
                    return Err(format!(
                        "rules.lists {}: unknown format {other:?} (expected \"warden\", \"surge-csv\" or \"lines\")",
                        l.path.display()
                    ))
                }
            }
        }
        Ok(())
    }

    /// A path from the policy, resolved against the policy file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// Thresholds in taxonomy order.
    pub fn thresholds(&self, taxonomy: &Taxonomy) -> Vec<f32> {
        taxonomy
            .codes()
            .map(|c| self.classifier.thresholds.get(c).copied().unwrap_or(self.classifier.default_threshold))
            .collect()
    }

    /// Drop-category flags in taxonomy order.
    pub fn drop_mask(&self, taxonomy: &Taxonomy) -> Vec<bool> {
        taxonomy.codes().map(|c| self.decision.drop_categories.iter().any(|d| d == c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::builtin()
    }

    #[test]
    fn builtin_policy_parses() {
        let p = CurationPolicy::builtin(&tax()).unwrap();
        assert_eq!(p.format_version, 1);
        assert_eq!(p.thresholds(&tax()).len(), tax().len());
        assert_eq!(p.sha256.len(), 64);
    }

    #[test]
    fn minimal_policy_gets_defaults() {
        let p = CurationPolicy::from_toml_str("format_version = 1\nname = \"x\"\n", None, &tax()).unwrap();
        assert!(p.rules.enabled && p.classifier.enabled && p.decision.redact);
        assert!(p.thresholds(&tax()).iter().all(|&t| t == 0.9));
        let mask = p.drop_mask(&tax());
        assert_eq!(mask.iter().filter(|&&b| b).count(), 1);
    }

    #[test]
    fn errors_are_specific() {
        let cases = [
            ("format_version = 2\nname = \"x\"", "format_version 2"),
            ("format_version = 1\nname = \"x\"\n[classifier]\ntreshold = 0.5", "treshold"),
            ("format_version = 1\nname = \"x\"\n[classifier]\nthresholds = { Q = 0.5 }", "unknown category \"Q\""),
            ("format_version = 1\nname = \"x\"\n[classifier]\nthresholds = { S = 1.5 }", "outside [0, 1]"),
            ("format_version = 1\nname = \"x\"\n[second_tier]\nband = [0.8, 0.2]", "is empty"),
            ("format_version = 1\nname = \"x\"\n[rules]\nlists = [{ path = \"a\", format = \"lines\" }]", "needs a category"),
            ("format_version = 1\nname = \"x\"\n[rules]\nlists = [{ path = \"a\", format = \"xml\" }]", "unknown format"),
            ("format_version = 1\nname = \"x\"\n[decision]\ndrop_categories = [\"ZZ\"]", "unknown category \"ZZ\""),
        ];
        for (text, want) in cases {
            let e = CurationPolicy::from_toml_str(text, None, &tax()).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_policy_dir() {
        let p = CurationPolicy::from_toml_str("format_version = 1\nname = \"x\"", Some(Path::new("/etc/warden")), &tax()).unwrap();
        assert_eq!(p.resolve(Path::new("lists/a.txt")), PathBuf::from("/etc/warden/lists/a.txt"));
        assert_eq!(p.resolve(Path::new("/abs")), PathBuf::from("/abs"));
    }
}
