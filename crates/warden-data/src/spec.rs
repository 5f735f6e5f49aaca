//! Dataset specs: one small TOML file per dataset says which files to read, how to parse
//! them, how to build the text, and how each taxonomy code is derived from a row.
//!
//! ```toml
//! format_version = 1
//! name = "davidson-hate-offensive"
//! description = "..."
//! license = "MIT"
//! research_only = false
//! priority = 60
//! text = "{tweet}"
//! id = "{_c0}"
//! meta = ["class", "count"]
//!
//! [source]
//! files = ["davidson-hate-offensive/labeled_data.csv.gz"]
//! format = "csv"
//!
//! [labels]
//! H = "if(class == 0, 1, if(class == 2, 0, ()))"
//! HR = "if(class == 2, 0, ())"
//! ```
//!
//! Rules are [`evalexpr`] expressions over the row's fields (see [`crate::expr`]): a number
//! in `[0, 1]` or a boolean is the label, `()` (empty) is *unknown*. A code with no rule is
//! unknown for every row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warden_core::Taxonomy;

use crate::{DataError, Result};

/// The spec format this build reads.
pub const SPEC_FORMAT_VERSION: u32 = 1;

fn yes() -> bool {
    true
}

/// One dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub format_version: u32,
    /// Dataset name: the catalogue row, the record `source`, and the id prefix.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// SPDX-ish licence string shown in datasheets.
    pub license: String,
    /// True when the catalogue says the data has no licence or is research-only; such
    /// datasets are dropped by `BuildOptions::exclude_research_only`.
    #[serde(default)]
    pub research_only: bool,
    /// Dedup priority: of several rows with the same normalised text, the one from the
    /// highest-priority dataset is kept.
    #[serde(default)]
    pub priority: i32,
    /// Loaded by a default build. `false` for auxiliary sets (counterfactual copies ...),
    /// which are loaded only when named explicitly.
    #[serde(default = "yes")]
    pub default: bool,
    /// Text template: `{field}` is replaced by a field's value, `{{` / `}}` are literal
    /// braces. Example: `"{title}\n\n{selftext}"`.
    pub text: String,
    /// Trim surrounding whitespace off the built text (default true).
    #[serde(default = "yes")]
    pub trim_text: bool,
    /// Row id template (unique within the dataset; duplicates get `#2`, `#3` ...). Default:
    /// `{_row}` for a single file, `{_file}:{_row}` for several, with `.{_part}` appended
    /// when the source is exploded.
    #[serde(default)]
    pub id: Option<String>,
    /// Drop rows whose labels are all unknown (counted as "unlabelled"), e.g. for sets
    /// that only give weak positives.
    #[serde(default)]
    pub drop_unlabelled: bool,
    /// Fields copied into each record's `meta`.
    #[serde(default)]
    pub meta: Vec<String>,
    /// The main table.
    pub source: TableSpec,
    /// Helper tables that `join` entries refer to by name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    /// Category code → rule expression.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the spec was loaded from (not part of the file).
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

/// How to read one table and reshape it. Steps run in this order: read files, `explode`,
/// `join`s, `filter`, `group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Paths or glob patterns relative to the data root; matches are read in sorted order.
    /// `.gz` files are decompressed transparently.
    pub files: Vec<String>,
    pub format: Format,
    /// csv only: field delimiter (one ASCII char). Default `,` for csv, tab for tsv.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// csv/tsv: honour `"` quoting (default true).
    #[serde(default = "yes")]
    pub quoting: bool,
    /// csv/tsv: first line is a header (default true). Without a header, columns are
    /// named by `columns`, or `_c0`, `_c1` ...
    #[serde(default = "yes")]
    pub has_header: bool,
    /// Column names for headerless files (or to rename a header's columns).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Parse numeric-looking cells as numbers (default true).
    #[serde(default = "yes")]
    pub parse_numbers: bool,
    #[serde(default)]
    pub explode: Option<ExplodeSpec>,
    #[serde(default)]
    pub join: Vec<JoinSpec>,
    /// Keep only rows where this expression is true.
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub group: Option<GroupSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
    /// One row per non-blank line, in field `line`.
    Lines,
    /// HolisticBias (Smith et al. 2022) sentence generation: `files` name `descriptors.json`
    /// files, and `nouns.json` and `sentence_templates.json` are read from the same
    /// directory. One row per (template, descriptor, noun gender), the noun rotating through
    /// its gender's list, with fields `sentence`, `template`, `plural` (the template takes
    /// the plural noun phrase), `axis`, `bucket`, `descriptor`, `preference` (`reviewed`
    /// unless the file says otherwise), `noun` and `noun_gender`. The sentences are benign by
    /// construction except where a template is not (`I hate {plural_noun_phrase}.`): a spec
    /// filters those out, and labels the rest. See `read::read_holistic_bias`.
    #[serde(rename = "holistic-bias")]
    HolisticBias,
}

/// Split one field into several rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplodeSpec {
    pub field: String,
    /// Literal separator (TOML literal strings help: `'\n'` is backslash + n).
    pub separator: String,
    /// Removed (once) from the start of each trimmed piece, e.g. `"-"` for list items.
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Trim pieces (default true). Empty pieces are always dropped.
    #[serde(default = "yes")]
    pub trim: bool,
}

/// Left (or inner) join of another table on a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// Name of a table in `[tables]`.
    pub table: String,
    /// Key field in this table.
    pub left: String,
    /// Key field in the joined table (default: same as `left`).
    #[serde(default)]
    pub right: Option<String>,
    /// `left` (default; unmatched rows get empty joined fields) or `inner`.
    #[serde(default)]
    pub how: JoinHow,
    /// Prefix for joined column names. Columns that already exist (and pseudo-fields
    /// starting with `_`) are not joined.
    #[serde(default)]
    pub prefix: String,
    /// How keys are compared: `exact` (default), `trim`, or `normalized` (the
    /// decontamination normalisation).
    #[serde(default)]
    pub key: KeyMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinHow {
    #[default]
    Left,
    Inner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMatch {
    #[default]
    Exact,
    Trim,
    Normalized,
}

/// Collapse rows sharing a key into one row: key fields, aggregates, and every other field
/// from the group's first row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub by: Vec<String>,
    /// Output field → aggregation.
    #[serde(default)]
    pub agg: BTreeMap<String, AggSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggSpec {
    pub op: AggOp,
    /// Per-row expression (not needed for `count`; `count` with an expression counts the
    /// rows where it is true). Empty (`()`) values are skipped.
    #[serde(default)]
    pub expr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggOp {
    /// Mean of numeric values (booleans count as 0/1).
    Mean,
    Sum,
    Min,
    Max,
    /// 1 if any value is true / non-zero, else 0.
    Any,
    /// 1 if all values are true / non-zero, else 0.
    All,
    Count,
    /// The most frequent value (ties: the one seen first).
    Majority,
    /// The first non-empty value.
    First,
}

impl DatasetSpec {
    /// Parses a spec from TOML text. `origin` is used in error messages.
    pub fn from_toml_str(s: &str, origin: Option<&Path>) -> Result<Self> {
        let err = |message: String| DataError::Spec {
            path: origin.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("<string>")),
            message,
        };
        let mut spec: DatasetSpec = toml::from_str(s).map_err(|e| err(e.to_string()))?;
        spec.origin = origin.map(Path::to_owned);
        if spec.format_version != SPEC_FORMAT_VERSION {
            return Err(err(format!(
                "format_version {} is not supported (this build reads {SPEC_FORMAT_VERSION})",
                spec.format_version
            )));
        }
        if spec.name.trim().is_empty() || spec.name.contains(':') {
            return Err(err(format!("name {:?} must be non-empty and contain no ':'", spec.name)));
        }
        for (tname, t) in std::iter::once(("source", &spec.source))
            .chain(spec.tables.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if t.files.is_empty() {
                return Err(err(format!("table {tname}: `files` is empty")));
            }
            if let Some(d) = &t.delimiter {
                if d.len() != 1 {
                    return Err(err(format!("table {tname}: delimiter {d:?} must be one ASCII char")));
                }
            }
            for j in &t.join {
                if !spec.tables.contains_key(&j.table) {
                    return Err(err(format!("table {tname}: join names unknown table {:?}", j.table)));
                }
            }
            if let Some(g) = &t.group {
                if g.by.is_empty() {
                    return Err(err(format!("table {tname}: group.by is empty")));
                }
                for (name, a) in &g.agg {
                    if a.expr.is_none() && a.op != AggOp::Count {
                        return Err(err(format!("table {tname}: aggregate {name} needs `expr`")));
                    }
                }
            }
        }
        // Joins must not form cycles.
        fn visit<'a>(
            spec: &'a DatasetSpec,
            t: &'a TableSpec,
            stack: &mut Vec<&'a str>,
        ) -> std::result::Result<(), String> {
            for j in &t.join {
                if stack.contains(&j.table.as_str()) {
                    return Err(format!("join cycle through table {:?}", j.table));
                }
                stack.push(&j.table);
                visit(spec, &spec.tables[&j.table], stack)?;
                stack.pop();
            }
            Ok(())
        }
        visit(&spec, &spec.source, &mut Vec::new()).map_err(err)?;
        // Compile every expression now so that a typo fails at load time.
        let check = |what: &str, e: &str| {
            crate::expr::compile(e).map(|_| ()).map_err(|m| err(format!("{what}: {m}")))
        };
        for (code, rule) in &spec.labels {
            check(&format!("label {code}"), rule)?;
        }
        for t in std::iter::once(&spec.source).chain(spec.tables.values()) {
            if let Some(f) = &t.filter {
                check("filter", f)?;
            }
            if let Some(g) = &t.group {
                for (name, a) in &g.agg {
                    if let Some(e) = &a.expr {
                        check(&format!("aggregate {name}"), e)?;
                    }
                }
            }
        }
        crate::template::Template::parse(&spec.text).map_err(|m| err(format!("text: {m}")))?;
        if let Some(id) = &spec.id {
            crate::template::Template::parse(id).map_err(|m| err(format!("id: {m}")))?;
        }
        Ok(spec)
    }

    /// Loads one spec file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path)
            .map_err(|source| DataError::Io { path: path.to_owned(), source })?;
        Self::from_toml_str(&s, Some(path))
    }

    /// Checks that every label code exists in `taxonomy`.
    pub fn check_codes(&self, taxonomy: &Taxonomy) -> Result<()> {
        for code in self.labels.keys() {
            if taxonomy.index_of(code).is_none() {
                return Err(DataError::Spec {
                    path: self.origin.clone().unwrap_or_else(|| PathBuf::from(&self.name)),
                    message: format!(
                        "label rule for {code:?}, which is not a category of taxonomy {:?}",
                        taxonomy.name()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Loads every `*.toml` in `dir`, sorted by file name. Dataset names must be unique.
pub fn load_specs(dir: impl AsRef<Path>) -> Result<Vec<DatasetSpec>> {
    let dir = dir.as_ref();
    let entries =
        std::fs::read_dir(dir).map_err(|source| DataError::Io { path: dir.to_owned(), source })?;
    let mut paths = Vec::new();
    for e in entries {
        let e = e.map_err(|source| DataError::Io { path: dir.to_owned(), source })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
            paths.push(p);
        }
    }
    paths.sort();
    let mut specs: Vec<DatasetSpec> = Vec::with_capacity(paths.len());
    for p in paths {
        let s = DatasetSpec::load(&p)?;
        if let Some(other) = specs.iter().find(|o| o.name == s.name) {
            return Err(DataError::Spec {
                path: p.clone(),
                message: format!(
                    "dataset name {:?} is also used by {}",
                    s.name,
                    other.origin.as_deref().unwrap_or(Path::new("?")).display()
                ),
            });
        }
        specs.push(s);
    }
    Ok(specs)
}
