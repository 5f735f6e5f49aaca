use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The on-disk taxonomy format this build reads and writes.
pub const TAXONOMY_FORMAT_VERSION: u32 = 1;

const BUILTIN: &str = include_str!("../taxonomies/default.toml");

/// One category of undesired content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// Short code used in datasets and reports (`S`, `H2`).
    pub code: String,
    /// Public name used in API responses (`sexual`, `hate/threatening`).
    pub name: String,
    /// Code of the parent category when this is a severe subcategory. A positive label
    /// here implies a positive parent label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// What the category covers, shown to annotators and in docs.
    #[serde(default)]
    pub definition: String,
    /// Subcategories that count as undesired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undesired_subcategories: Vec<String>,
    /// Subcategories that look related but are *not* undesired (S0, H0.a, H0.b, V0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_undesired: Vec<String>,
}

#[derive(Deserialize, Serialize)]
struct TaxonomyFile {
    format_version: u32,
    name: String,
    #[serde(default)]
    version: String,
    #[serde(rename = "category")]
    categories: Vec<Category>,
}

/// An ordered set of categories. Scores and labels everywhere in Warden are vectors
/// indexed by a taxonomy's category order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TaxonomyFile", into = "TaxonomyFile")]
pub struct Taxonomy {
    name: String,
    version: String,
    categories: Vec<Category>,
    /// `parent[i]` is the index of category i's parent.
    parent: Vec<Option<usize>>,
}

impl TryFrom<TaxonomyFile> for Taxonomy {
    type Error = Error;
    fn try_from(f: TaxonomyFile) -> Result<Self> {
        Taxonomy::from_file(f, None)
    }
}

impl From<Taxonomy> for TaxonomyFile {
    fn from(t: Taxonomy) -> Self {
        TaxonomyFile {
            format_version: TAXONOMY_FORMAT_VERSION,
            name: t.name,
            version: t.version,
            categories: t.categories,
        }
    }
}

impl Default for Taxonomy {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Taxonomy {
    /// The paper's taxonomy: S, H, V, HR, SH and the severe subcategories S3, H2, V2.
    pub fn builtin() -> Self {
        Self::from_toml_str(BUILTIN).expect("the built-in taxonomy is valid")
    }

    /// Parses a taxonomy TOML document.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        Self::parse(s, None)
    }

    /// Loads a taxonomy TOML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::parse(&s, Some(path))
    }

    fn parse(s: &str, origin: Option<&Path>) -> Result<Self> {
        let file: TaxonomyFile = toml::from_str(s).map_err(|e| Error::Taxonomy {
            origin: origin.map(Path::to_owned),
            message: e.to_string(),
        })?;
        Self::from_file(file, origin)
    }

    fn from_file(f: TaxonomyFile, origin: Option<&Path>) -> Result<Self> {
        let err = |message: String| Error::Taxonomy { origin: origin.map(Path::to_owned), message };
        if f.format_version != TAXONOMY_FORMAT_VERSION {
            return Err(err(format!(
                "format_version {} is not supported (this build reads {TAXONOMY_FORMAT_VERSION})",
                f.format_version
            )));
        }
        if f.categories.is_empty() {
            return Err(err("no [[category]] entries".into()));
        }
        for (i, c) in f.categories.iter().enumerate() {
            if c.code.trim().is_empty() || c.name.trim().is_empty() {
                return Err(err(format!("category #{} needs a non-empty code and name", i + 1)));
            }
            for other in &f.categories[..i] {
                if other.code == c.code || other.name == c.name {
                    return Err(err(format!("duplicate category {:?} / {:?}", c.code, c.name)));
                }
            }
        }
        let mut parent = Vec::with_capacity(f.categories.len());
        for c in &f.categories {
            parent.push(match &c.parent {
                None => None,
                Some(p) => {
                    let j = f.categories.iter().position(|o| &o.code == p).ok_or_else(|| {
                        err(format!("category {} names unknown parent {p:?}", c.code))
                    })?;
                    Some(j)
                }
            });
        }
        // Reject cycles: following parents from any node must terminate.
        for start in 0..parent.len() {
            let (mut at, mut steps) = (start, 0);
            while let Some(p) = parent[at] {
                at = p;
                steps += 1;
                if steps > parent.len() {
                    return Err(err(format!("parent cycle through {}", f.categories[start].code)));
                }
            }
        }
        Ok(Self { name: f.name, version: f.version, categories: f.categories, parent })
    }

    /// Serializes to the versioned TOML format.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(&TaxonomyFile::from(self.clone())).expect("taxonomy serializes")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn len(&self) -> usize {
        self.categories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| c.code.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| c.name.as_str())
    }

    /// Index of a category by code (`H2`) or public name (`hate/threatening`),
    /// case-insensitively.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.categories.iter().position(|c| {
            c.code.eq_ignore_ascii_case(key) || c.name.eq_ignore_ascii_case(key)
        })
    }

    /// Like [`Self::index_of`] but with an error naming the key.
    pub fn require(&self, key: &str) -> Result<usize> {
        self.index_of(key).ok_or_else(|| Error::UnknownCategory(key.to_owned()))
    }

    /// Index of category `i`'s parent, if it is a subcategory.
    pub fn parent_of(&self, i: usize) -> Option<usize> {
        self.parent[i]
    }

    /// Makes labels consistent with the hierarchy: a positive (or soft) child raises its
    /// parent to at least the same value, through every ancestor. Unknown parents become
    /// known when a child is positive. Returns how many labels changed.
    pub fn enforce_labels(&self, labels: &mut [crate::Label]) -> usize {
        assert_eq!(labels.len(), self.len(), "label vector does not match the taxonomy");
        let mut changed = 0;
        for i in 0..labels.len() {
            let Some(v) = labels[i].target() else { continue };
            if v <= 0.0 {
                continue;
            }
            let mut at = i;
            while let Some(p) = self.parent[at] {
                let current = labels[p].target();
                if current.is_none_or(|c| c < v) {
                    labels[p] = crate::Label::from_value(v);
                    changed += 1;
                }
                at = p;
            }
        }
        changed
    }

    /// Makes predicted scores consistent with the hierarchy: a parent's score is at least
    /// the maximum of its children's.
    pub fn enforce_scores(&self, scores: &mut [f32]) {
        assert_eq!(scores.len(), self.len(), "score vector does not match the taxonomy");
        for i in 0..scores.len() {
            let mut at = i;
            while let Some(p) = self.parent[at] {
                if scores[p] < scores[i] {
                    scores[p] = scores[i];
                }
                at = p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Label;

    #[test]
    fn builtin_has_the_papers_eight_categories() {
        let t = Taxonomy::builtin();
        let codes: Vec<_> = t.codes().collect();
        assert_eq!(codes, ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]);
        assert_eq!(t.index_of("hate/threatening"), Some(6));
        assert_eq!(t.index_of("h2"), Some(6));
        assert_eq!(t.parent_of(t.index_of("S3").unwrap()), t.index_of("S"));
        assert!(t.categories()[0].not_undesired[0].starts_with("[S0]"));
    }

    #[test]
    fn round_trips_through_toml() {
        let t = Taxonomy::builtin();
        let again = Taxonomy::from_toml_str(&t.to_toml_string()).unwrap();
        assert_eq!(t, again);
    }

    #[test]
    fn custom_taxonomy_of_any_size() {
        let t = Taxonomy::from_toml_str(
            "format_version = 1\nname = \"spam\"\n[[category]]\ncode = \"SP\"\nname = \"spam\"\n\
             [[category]]\ncode = \"SC\"\nname = \"scam\"\nparent = \"SP\"\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        let mut s = [0.1, 0.9];
        t.enforce_scores(&mut s);
        assert_eq!(s, [0.9, 0.9]);
    }

    #[test]
    fn rejects_bad_files() {
        let bad = [
            "format_version = 2\nname = \"x\"\n[[category]]\ncode = \"A\"\nname = \"a\"\n",
            "format_version = 1\nname = \"x\"\ncategory = []\n",
            "format_version = 1\nname = \"x\"\n[[category]]\ncode = \"A\"\nname = \"a\"\nparent = \"Z\"\n",
            "format_version = 1\nname = \"x\"\n[[category]]\ncode = \"A\"\nname = \"a\"\nparent = \"A\"\n",
            "format_version = 1\nname = \"x\"\n[[category]]\ncode = \"A\"\nname = \"a\"\n[[category]]\ncode = \"A\"\nname = \"b\"\n",
        ];
        for b in bad {
            assert!(Taxonomy::from_toml_str(b).is_err(), "accepted: {b}");
        }
    }

    #[test]
    fn hierarchy_is_enforced_on_labels() {
        let t = Taxonomy::builtin();
        let mut labels = vec![Label::Unknown; t.len()];
        labels[t.index_of("S3").unwrap()] = Label::Positive;
        labels[t.index_of("V2").unwrap()] = Label::Soft(0.6);
        labels[t.index_of("V").unwrap()] = Label::Negative;
        labels[t.index_of("H2").unwrap()] = Label::Negative;
        assert_eq!(t.enforce_labels(&mut labels), 2);
        assert_eq!(labels[t.index_of("S").unwrap()], Label::Positive);
        assert_eq!(labels[t.index_of("V").unwrap()], Label::Soft(0.6));
        assert_eq!(labels[t.index_of("H").unwrap()], Label::Unknown);
    }
}
