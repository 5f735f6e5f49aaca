//! Rule lists: Warden's versioned TOML format, the surge-ai profanity CSV and plain
//! one-term-per-line lists.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::matcher::normalize_term;
use crate::{RulesError, Severity};

/// The rule-file `format_version` this build reads and writes.
pub const RULES_FORMAT_VERSION: u32 = 1;

/// Where [`RuleList::builtin`] comes from, for messages.
const BUILTIN_ORIGIN: &str = "rules/warden-default.toml (built in)";
const BUILTIN: &str = include_str!("../../../rules/warden-default.toml");

/// The surge-ai/profanity commit the CSV mapping was written against.
pub const SURGE_SOURCE: &str = "surge-ai/profanity@77dabf36";

/// One term (word or phrase) with its category code and severity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleEntry {
    /// The term as written in its list (matching lower-cases it).
    pub term: String,
    /// Taxonomy category code (`"V"`, `"H2"`); checked when a [`crate::RuleSet`] is built.
    pub category: String,
    pub severity: Severity,
}

/// A named list of rule entries with its licence and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleList {
    /// Short name, reported in every [`crate::RuleHit::list`].
    pub name: String,
    /// SPDX-style licence of the list's contents.
    pub licence: String,
    /// Where the list comes from (repository@commit, or a file path).
    pub source: String,
    pub entries: Vec<RuleEntry>,
}

/// What a run manifest records about one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListInfo {
    pub name: String,
    pub licence: String,
    pub source: String,
    /// Number of entries in the list as loaded (before deduplication across lists).
    pub terms: usize,
    /// Lower-case hex SHA-256 of the list's canonical serialisation (see
    /// [`RuleList::info`]).
    pub sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// Checked before this strict parse; listed so that the key is not "unknown".
    #[allow(dead_code)]
    format_version: u32,
    name: String,
    licence: String,
    source: String,
    #[serde(default)]
    group: Vec<GroupFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    category: toml::Spanned<String>,
    severity: Severity,
    terms: toml::Spanned<Vec<toml::Spanned<String>>>,
}

#[derive(Serialize)]
struct GroupOut<'a> {
    category: &'a str,
    severity: Severity,
    terms: Vec<&'a str>,
}

#[derive(Serialize)]
struct RuleFileOut<'a> {
    format_version: u32,
    name: &'a str,
    licence: &'a str,
    source: &'a str,
    group: Vec<GroupOut<'a>>,
}

/// 1-based line of a byte offset.
fn line_of(s: &str, offset: usize) -> u64 {
    s.as_bytes()[..offset.min(s.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

impl RuleList {
    /// Loads a rule file in Warden's TOML format (`format_version = 1`; see the crate
    /// docs). Errors name the file and, where known, the line.
    pub fn load(path: &Path) -> Result<RuleList, RulesError> {
        let s = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&s, &path.display().to_string())
    }

    /// Parses a rule file held in a string (errors say `<string>`).
    pub fn from_toml_str(s: &str) -> Result<RuleList, RulesError> {
        Self::parse(s, "<string>")
    }

    /// The built-in default list, `rules/warden-default.toml`, compiled into the binary.
    pub fn builtin() -> RuleList {
        Self::parse(BUILTIN, BUILTIN_ORIGIN).expect("the built-in rule list is valid")
    }

    fn parse(s: &str, origin: &str) -> Result<RuleList, RulesError> {
        let invalid = |message: String| RulesError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let at = |offset: usize, message: String| RulesError::Line {
            origin: origin.to_owned(),
            line: line_of(s, offset),
            message,
        };
        // Check the version before the strict parse, so that a newer file gets "version 2
        // is not supported" rather than a complaint about a key this build does not know.
        let table: toml::Table = toml::from_str(s).map_err(|e| invalid(e.to_string()))?;
        match table.get("format_version") {
            None => {
                return Err(invalid(
                    "missing format_version (this build reads 1)".into(),
                ))
            }
            Some(toml::Value::Integer(v)) if *v == i64::from(RULES_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "format_version {v} is not supported (this build reads {RULES_FORMAT_VERSION})"
                )))
            }
        }
        let file: RuleFile = toml::from_str(s).map_err(|e| invalid(e.to_string()))?;
        if file.name.trim().is_empty() {
            return Err(invalid("name must not be empty".into()));
        }
        let mut entries = Vec::new();
        for (g, group) in file.group.iter().enumerate() {
            let category = group.category.get_ref().trim();
            if category.is_empty() {
                return Err(at(
                    group.category.span().start,
                    format!("group {}: empty category", g + 1),
                ));
            }
            if group.terms.get_ref().is_empty() {
                return Err(at(
                    group.terms.span().start,
                    format!("group {} ({category}): no terms", g + 1),
                ));
            }
            for term in group.terms.get_ref() {
                if term.get_ref().trim().is_empty() {
                    return Err(at(
                        term.span().start,
                        format!("group {} ({category}): empty term", g + 1),
                    ));
                }
                entries.push(RuleEntry {
                    term: term.get_ref().trim().to_owned(),
                    category: category.to_owned(),
                    severity: group.severity,
                });
            }
        }
        Ok(RuleList {
            name: file.name,
            licence: file.licence,
            source: file.source,
            entries,
        })
    }

    /// Serialises to the TOML format: one `[[group]]` per (category, severity) pair, in
    /// order of first appearance. Loading the result gives back the same entries, grouped.
    pub fn to_toml_string(&self) -> String {
        let mut groups: Vec<GroupOut<'_>> = Vec::new();
        for e in &self.entries {
            match groups
                .iter_mut()
                .find(|g| g.category == e.category && g.severity == e.severity)
            {
                Some(g) => g.terms.push(&e.term),
                None => groups.push(GroupOut {
                    category: &e.category,
                    severity: e.severity,
                    terms: vec![&e.term],
                }),
            }
        }
        let out = RuleFileOut {
            format_version: RULES_FORMAT_VERSION,
            name: &self.name,
            licence: &self.licence,
            source: &self.source,
            group: groups,
        };
        toml::to_string_pretty(&out).expect("rule lists serialise")
    }

    /// Loads surge-ai/profanity's `profanity_en.csv` (columns `text`,
    /// `canonical_form_1..3`, `category_1..3`, `severity_rating`, `severity_description`).
    ///
    /// The category is taken from `category_1`, the primary one:
    ///
    /// | `category_1` | code |
    /// | --- | --- |
    /// | racial / ethnic slurs, sexual orientation / gender, mental disability, physical disability, religious offense | `H` |
    /// | sexual anatomy / sexual acts | `S` |
    /// | other / general insult, physical attributes, animal references, political | `HR` |
    /// | bodily fluids / excrement | `HR` (crude insults far more often than sexual content; the list gives no better home) |
    ///
    /// The severity is `severity_description` (`Mild`, `Strong`, `Severe`). An unknown
    /// category or severity is an error naming the line. Name `surge-profanity`, licence
    /// `MIT`, source [`SURGE_SOURCE`].
    pub fn load_surge_csv(path: &Path) -> Result<RuleList, RulesError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| RulesError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes.as_slice());
        // Lines are counted here: on CRLF files (the surge list is one) the csv crate's
        // record positions point at the `\n` ending the previous line, and its line
        // numbers are one short.
        let line_at = |p: &csv::Position| {
            let mut end = (p.byte() as usize).min(bytes.len());
            while end < bytes.len() && matches!(bytes[end], b'\r' | b'\n') {
                end += 1;
            }
            bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64 + 1
        };
        let csv_err = |e: csv::Error| match e.position() {
            Some(p) => RulesError::Line {
                origin: origin.clone(),
                line: line_at(p),
                message: e.to_string(),
            },
            None => RulesError::Invalid {
                origin: origin.clone(),
                message: e.to_string(),
            },
        };
        let headers = reader.headers().map_err(csv_err)?.clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| RulesError::Invalid {
                    origin: origin.clone(),
                    message: format!(
                        "no `{name}` column (is this surge-ai/profanity's profanity_en.csv?)"
                    ),
                })
        };
        let (text_col, cat_col, sev_col) = (
            column("text")?,
            column("category_1")?,
            column("severity_description")?,
        );
        let mut entries = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map_or(0, line_at);
            let bad = |message: String| RulesError::Line {
                origin: origin.clone(),
                line,
                message,
            };
            let field = |i: usize| record.get(i).unwrap_or("").trim();
            let term = field(text_col);
            if term.is_empty() {
                return Err(bad("empty `text`".into()));
            }
            let category = surge_category(field(cat_col)).ok_or_else(|| {
                bad(format!(
                    "unknown category_1 {:?} for {term:?}",
                    field(cat_col)
                ))
            })?;
            let severity = Severity::parse(field(sev_col)).ok_or_else(|| {
                bad(format!(
                    "unknown severity_description {:?} for {term:?}",
                    field(sev_col)
                ))
            })?;
            entries.push(RuleEntry {
                term: term.to_owned(),
                category: category.to_owned(),
                severity,
            });
        }
        Ok(RuleList {
            name: "surge-profanity".into(),
            licence: "MIT".into(),
            source: SURGE_SOURCE.into(),
            entries,
        })
    }

    /// Loads a list with one term per line (LDNOOBW's `en`, say), every term with the
    /// same category and severity. Lines are trimmed; blank lines are skipped. There is
    /// no comment syntax (a term may start with `#`). The source is the file's path.
    pub fn load_lines(
        path: &Path,
        name: &str,
        category: &str,
        severity: Severity,
        licence: &str,
    ) -> Result<RuleList, RulesError> {
        let s = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_owned(),
            source,
        })?;
        let entries = s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|term| RuleEntry {
                term: term.to_owned(),
                category: category.to_owned(),
                severity,
            })
            .collect();
        Ok(RuleList {
            name: name.to_owned(),
            licence: licence.to_owned(),
            source: path.display().to_string(),
            entries,
        })
    }

    /// Removes every entry whose term is itself a held-out evaluation text
    /// ([`warden_data::Decontaminator::contains_text`]: a one-word held-out text that is
    /// also a list term would otherwise let the rule layer "know" an evaluation label).
    /// Returns how many entries were removed.
    pub fn drop_decontaminated(&mut self, d: &warden_data::Decontaminator) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !d.contains_text(&e.term));
        before - self.entries.len()
    }

    /// Name, licence, source, size and hash of this list.
    ///
    /// The hash is the SHA-256 of the lines `term \t category \t severity \n`, with the
    /// term normalised as matching sees it (trimmed, lower-cased, whitespace runs as one
    /// space) and the category trimmed, sorted and deduplicated: two files that match
    /// the same things hash the same, whatever their order, grouping or letter case.
    pub fn info(&self) -> ListInfo {
        let lines: BTreeSet<String> = self
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{}\t{}\t{}\n",
                    normalize_term(&e.term),
                    e.category.trim(),
                    e.severity
                )
            })
            .collect();
        let mut h = Sha256::new();
        for l in &lines {
            h.update(l.as_bytes());
        }
        let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        ListInfo {
            name: self.name.clone(),
            licence: self.licence.clone(),
            source: self.source.clone(),
            terms: self.entries.len(),
            sha256,
        }
    }
}

/// surge-ai/profanity `category_1` → taxonomy code (see [`RuleList::load_surge_csv`]).
fn surge_category(c: &str) -> Option<&'static str> {
    Some(match c.to_ascii_lowercase().as_str() {
        "racial / ethnic slurs"
        | "sexual orientation / gender"
        | "mental disability"
        | "physical disability"
        | "religious offense" => "H",
        "sexual anatomy / sexual acts" => "S",
        "other / general insult"
        | "physical attributes"
        | "animal references"
        | "political"
        | "bodily fluids / excrement" => "HR",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const GOOD: &str = r#"
format_version = 1
name = "test"
licence = "Apache-2.0"
source = "unit test"

[[group]]
category = "V"
severity = "severe"
terms = ["I will kill you", "  i'm going to kill you "]

[[group]]
category = "HR"
severity = "mild"
terms = ["jerk"]
"#;

    fn temp_file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn parses_the_toml_format() {
        let l = RuleList::from_toml_str(GOOD).unwrap();
        assert_eq!(l.name, "test");
        assert_eq!(l.entries.len(), 3);
        assert_eq!(l.entries[1].term, "i'm going to kill you");
        assert_eq!(l.entries[1].category, "V");
        assert_eq!(l.entries[2].severity, Severity::Mild);
        let again = RuleList::from_toml_str(&l.to_toml_string()).unwrap();
        assert_eq!(again, l);
    }

    #[test]
    fn rejects_bad_format_versions_with_the_file_name() {
        let f = temp_file(&GOOD.replace("format_version = 1", "format_version = 2\nnew_key = 1"));
        let e = RuleList::load(f.path()).unwrap_err().to_string();
        assert!(e.contains("format_version 2 is not supported"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        let e = RuleList::from_toml_str(&GOOD.replace("format_version = 1", "")).unwrap_err();
        assert!(e.to_string().contains("missing format_version"), "{e}");
        let e =
            RuleList::from_toml_str(&GOOD.replace("format_version = 1", "format_version = \"1\""));
        assert!(e.unwrap_err().to_string().contains("not supported"));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        for (bad, want) in [
            (
                GOOD.replace("licence", "license"),
                "unknown field `license`",
            ),
            (
                GOOD.replace("severity = \"mild\"", "severity = \"mild\"\nweight = 2"),
                "unknown field `weight`",
            ),
            (GOOD.replace("\"mild\"", "\"Mild\""), "unknown variant"),
            (
                GOOD.replace("\"jerk\"", "\"jerk\", \"  \""),
                "line 15: group 2 (HR): empty term",
            ),
            (
                GOOD.replace("[\"jerk\"]", "[]"),
                "line 15: group 2 (HR): no terms",
            ),
            (
                GOOD.replace("category = \"HR\"", "category = \" \""),
                "line 13: group 2: empty category",
            ),
        ] {
            let e = RuleList::from_toml_str(&bad).unwrap_err().to_string();
            assert!(e.contains(want), "wanted {want:?} in {e:?}");
            assert!(e.starts_with("<string>"), "{e}");
        }
    }

    #[test]
    fn builtin_list_loads() {
        let l = RuleList::builtin();
        assert_eq!(l.name, "warden-default");
        assert_eq!(l.licence, "Apache-2.0");
        assert!((40..=200).contains(&l.entries.len()), "{}", l.entries.len());
    }

    #[test]
    fn info_hash_ignores_order_and_case() {
        let a = RuleList::from_toml_str(GOOD).unwrap();
        let mut b = a.clone();
        b.entries.reverse();
        b.entries[0].term = b.entries[0].term.to_uppercase();
        assert_eq!(a.info().sha256, b.info().sha256);
        assert_eq!(a.info().sha256.len(), 64);
        assert_eq!(a.info().terms, 3);
        b.entries[0].severity = Severity::Severe;
        assert_ne!(a.info().sha256, b.info().sha256);
    }

    const SURGE: &str = "text,canonical_form_1,canonical_form_2,canonical_form_3,category_1,category_2,category_3,severity_rating,severity_description\r\n\
        badword,badword,,,sexual anatomy / sexual acts,,,1,Mild\r\n\
        \"slur, two\",slur,,,racial / ethnic slurs,,,2.8,Severe\r\n\
        poop,poop,,,bodily fluids / excrement,,,1.2,Mild\r\n\
        meanie,meanie,,,other / general insult,sexual orientation / gender,,2,Strong";

    #[test]
    fn loads_surge_csv_with_the_category_mapping() {
        let f = temp_file(SURGE);
        let l = RuleList::load_surge_csv(f.path()).unwrap();
        assert_eq!(
            (l.licence.as_str(), l.source.as_str()),
            ("MIT", SURGE_SOURCE)
        );
        let got: Vec<_> = l
            .entries
            .iter()
            .map(|e| (e.term.as_str(), e.category.as_str(), e.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("badword", "S", Severity::Mild),
                ("slur, two", "H", Severity::Severe),
                ("poop", "HR", Severity::Mild),
                ("meanie", "HR", Severity::Strong),
            ]
        );
    }

    #[test]
    fn surge_errors_name_the_line() {
        let f = temp_file(&SURGE.replace("bodily fluids / excrement", "cooking"));
        let e = RuleList::load_surge_csv(f.path()).unwrap_err().to_string();
        assert!(
            e.contains(", line 4: unknown category_1 \"cooking\""),
            "{e}"
        );
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        let f = temp_file(&SURGE.replace("2,Strong", "2,Awful"));
        let e = RuleList::load_surge_csv(f.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 5: unknown severity_description \"Awful\""),
            "{e}"
        );
        let f = temp_file("word,category\nx,y\n");
        let e = RuleList::load_surge_csv(f.path()).unwrap_err().to_string();
        assert!(e.contains("no `text` column"), "{e}");
        let e = RuleList::load_surge_csv(Path::new("/nonexistent/p.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent/p.csv"), "{e}");
    }

    #[test]
    fn loads_line_lists() {
        let f = temp_file("  two words \n\nthird\r\n#hashtag\n");
        let l =
            RuleList::load_lines(f.path(), "lines", "S", Severity::Strong, "CC-BY-4.0").unwrap();
        let terms: Vec<_> = l.entries.iter().map(|e| e.term.as_str()).collect();
        assert_eq!(terms, ["two words", "third", "#hashtag"]);
        assert!(l
            .entries
            .iter()
            .all(|e| e.category == "S" && e.severity == Severity::Strong));
        assert_eq!(l.source, f.path().display().to_string());
    }

    #[test]
    fn drops_decontaminated_terms() {
        let mut l = RuleList::from_toml_str(GOOD).unwrap();
        // The held-out hash is of the normalised text, so case and punctuation differ.
        let d = warden_data::Decontaminator::from_hashes([
            warden_data::text_hash("JERK!"),
            warden_data::text_hash("not in the list"),
        ]);
        assert_eq!(l.drop_decontaminated(&d), 1);
        assert_eq!(l.entries.len(), 2);
        assert!(l.entries.iter().all(|e| e.term != "jerk"));
        assert_eq!(l.drop_decontaminated(&d), 0);
    }
}
