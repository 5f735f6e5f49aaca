//! Identity-group terms: which documents *mention* a group identity.
//!
//! These are never rules. They let the curation report show whether the rule layer and
//! the classifier remove documents that merely mention a group more often than others
//! (the over-flagging of identity mentions that word lists and classifiers are known
//! for), and let a policy protect such documents from being dropped on weak evidence.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use crate::matcher::{normalize_term, Matcher};
use crate::RulesError;

/// HolisticBias axes that [`IdentityTerms::load_holistic_bias`] skips entirely.
///
/// * `nonce`: invented words (`blicket`, `coodle`) that the dataset uses as controls.
/// * `body_type`: everyday adjectives (`big`, `short`, `strong`, `beautiful`, `hot`)
///   whose hits would swamp real identity mentions; appearance is also not one of the
///   group identities the hate category protects.
pub const HOLISTIC_BIAS_SKIPPED_AXES: &[&str] = &["nonce", "body_type"];

/// HolisticBias descriptors that [`IdentityTerms::load_holistic_bias`] drops because
/// their everyday sense is far more common than the identity sense in web text
/// (`"single"`, `"native"`, `"straight"`, `"liberal arts"`, `"senior engineer"`, `"adult
/// content"`). Descriptors of three characters or fewer are dropped as well (`bi`, `ace`,
/// `pan`, `cis`, `old`, `FTM`), except those in [`HOLISTIC_BIAS_SHORT_KEPT`].
pub const HOLISTIC_BIAS_STOP_WORDS: &[&str] = &[
    // ability
    "slow",
    "dumb",
    "mute",
    "blind",
    "barren",
    // age
    "young",
    "younger",
    "older",
    "senior",
    "mature",
    "adult",
    "retired",
    "spry",
    // characteristics
    "alien",
    "foreign",
    "native",
    "professional",
    "employed",
    "separated",
    "single",
    "unattached",
    "engaged",
    "available",
    "active",
    "inactive",
    "athletic",
    "literate",
    "adopted",
    "partnered",
    "married",
    "sedentary",
    "laid-off",
    "stay-at-home",
    // cultural
    "country",
    "urban",
    "rural",
    "elite",
    "entitled",
    "privileged",
    "cosmopolitan",
    "at-risk",
    // gender_and_sex
    "stud",
    "feminine",
    "masculine",
    "macho",
    "manly",
    "womanly",
    "fruity",
    "fruitcake",
    // political_ideologies
    "independent",
    "moderate",
    "progressive",
    "radical",
    "liberal",
    "conservative",
    // race_ethnicity
    "black",
    "white",
    "latin",
    // religion
    "religious",
    "spiritual",
    "secular",
    // sexual_orientation
    "straight",
    "poly",
    // socioeconomic_class
    "poor",
    "broke",
    "rich",
    "wealthy",
    "affluent",
    "well-off",
];

/// Short HolisticBias descriptors kept despite the length rule: unambiguous in web text.
pub const HOLISTIC_BIAS_SHORT_KEPT: &[&str] = &["gay"];

/// The built-in identity terms, written for Warden: (HolisticBias-style axis, term).
/// Plural forms are listed because matching is whole-word.
const BUILTIN: &[(&str, &str)] = &[
    // religion
    ("religion", "muslim"),
    ("religion", "muslims"),
    ("religion", "islam"),
    ("religion", "islamic"),
    ("religion", "jewish"),
    ("religion", "jews"),
    ("religion", "judaism"),
    ("religion", "christian"),
    ("religion", "christians"),
    ("religion", "christianity"),
    ("religion", "catholic"),
    ("religion", "catholics"),
    ("religion", "protestant"),
    ("religion", "protestants"),
    ("religion", "mormon"),
    ("religion", "mormons"),
    ("religion", "hindu"),
    ("religion", "hindus"),
    ("religion", "sikh"),
    ("religion", "sikhs"),
    ("religion", "buddhist"),
    ("religion", "buddhists"),
    ("religion", "atheist"),
    ("religion", "atheists"),
    // race and ethnicity
    ("race_ethnicity", "black people"),
    ("race_ethnicity", "black person"),
    ("race_ethnicity", "black men"),
    ("race_ethnicity", "black women"),
    ("race_ethnicity", "white people"),
    ("race_ethnicity", "african american"),
    ("race_ethnicity", "african-american"),
    ("race_ethnicity", "african americans"),
    ("race_ethnicity", "african-americans"),
    ("race_ethnicity", "asian"),
    ("race_ethnicity", "asians"),
    ("race_ethnicity", "asian american"),
    ("race_ethnicity", "hispanic"),
    ("race_ethnicity", "hispanics"),
    ("race_ethnicity", "latino"),
    ("race_ethnicity", "latinos"),
    ("race_ethnicity", "latina"),
    ("race_ethnicity", "latinas"),
    ("race_ethnicity", "latinx"),
    ("race_ethnicity", "arab"),
    ("race_ethnicity", "arabs"),
    ("race_ethnicity", "native american"),
    ("race_ethnicity", "native americans"),
    ("race_ethnicity", "indigenous people"),
    ("race_ethnicity", "aboriginal"),
    ("race_ethnicity", "romani"),
    // nationality and immigration
    ("nationality", "mexican"),
    ("nationality", "mexicans"),
    ("nationality", "chinese"),
    ("nationality", "indians"),
    ("nationality", "pakistani"),
    ("nationality", "pakistanis"),
    ("nationality", "palestinian"),
    ("nationality", "palestinians"),
    ("nationality", "israeli"),
    ("nationality", "israelis"),
    ("nationality", "somali"),
    ("nationality", "somalis"),
    ("characteristics", "immigrant"),
    ("characteristics", "immigrants"),
    ("characteristics", "migrant"),
    ("characteristics", "migrants"),
    ("characteristics", "refugee"),
    ("characteristics", "refugees"),
    ("characteristics", "asylum seekers"),
    // sexual orientation
    ("sexual_orientation", "gay"),
    ("sexual_orientation", "gays"),
    ("sexual_orientation", "lesbian"),
    ("sexual_orientation", "lesbians"),
    ("sexual_orientation", "bisexual"),
    ("sexual_orientation", "bisexuals"),
    ("sexual_orientation", "homosexual"),
    ("sexual_orientation", "homosexuals"),
    ("sexual_orientation", "heterosexual"),
    ("sexual_orientation", "asexual"),
    ("sexual_orientation", "pansexual"),
    ("sexual_orientation", "queer"),
    ("sexual_orientation", "lgbt"),
    ("sexual_orientation", "lgbtq"),
    ("sexual_orientation", "lgbtq+"),
    // gender
    ("gender_and_sex", "women"),
    ("gender_and_sex", "woman"),
    ("gender_and_sex", "men"),
    ("gender_and_sex", "transgender"),
    ("gender_and_sex", "trans people"),
    ("gender_and_sex", "trans woman"),
    ("gender_and_sex", "trans women"),
    ("gender_and_sex", "trans man"),
    ("gender_and_sex", "trans men"),
    ("gender_and_sex", "nonbinary"),
    ("gender_and_sex", "non-binary"),
    ("gender_and_sex", "intersex"),
    ("gender_and_sex", "cisgender"),
    // disability
    ("ability", "disabled"),
    ("ability", "disabilities"),
    ("ability", "deaf"),
    ("ability", "blind people"),
    ("ability", "autistic"),
    ("ability", "autism"),
    ("ability", "wheelchair user"),
    ("ability", "wheelchair users"),
    ("ability", "mentally ill"),
    ("ability", "down syndrome"),
    ("ability", "handicapped"),
    // age
    ("age", "elderly"),
    ("age", "old people"),
    ("age", "older people"),
    ("age", "older adults"),
    ("age", "teenagers"),
    ("age", "boomers"),
    ("age", "millennials"),
];

/// A list of identity-group terms with the axis (religion, race_ethnicity, ...) of each.
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct IdentityTerms {
    name: String,
    /// (axis, normalised term), distinct by term.
    terms: Vec<(String, String)>,
    matcher: Matcher,
}

impl IdentityTerms {
    /// Builds a list from (axis, term) pairs. Terms are normalised like rule terms
    /// (lower-cased, whitespace runs as one space); empty ones are skipped; a term listed
    /// twice keeps its first axis.
    pub fn from_terms<A: AsRef<str>, T: AsRef<str>>(
        name: &str,
        terms: impl IntoIterator<Item = (A, T)>,
    ) -> IdentityTerms {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (axis, term) in terms {
            let term = normalize_term(term.as_ref());
            if !term.is_empty() && seen.insert(term.clone()) {
                out.push((axis.as_ref().trim().to_owned(), term));
            }
        }
        let matcher = Matcher::new(
            out.iter()
                .enumerate()
                .map(|(i, (_, t))| (t.as_str(), i as u32)),
        );
        IdentityTerms {
            name: name.to_owned(),
            terms: out,
            matcher,
        }
    }

    /// About 130 common, unambiguous identity-group words and phrases written for
    /// Warden (religions, ethnicities and nationalities, sexual orientations and
    /// genders, disabilities, ages), with HolisticBias axis names. Words that are mostly
    /// used in another sense alone (`black`, `white`, `straight`, `old`) are only listed
    /// in phrases (`black people`, `old people`).
    pub fn builtin() -> IdentityTerms {
        Self::from_terms("builtin", BUILTIN.iter().copied())
    }

    /// Loads HolisticBias v1.1 `descriptors.json`: `path` is the file or a directory
    /// holding it. The file maps axis → bucket → descriptors, each a string or an object
    /// with a `descriptor` key (and `preference`, `gender`, `article`, which are ignored).
    ///
    /// Kept: every descriptor of every axis, except
    /// * the axes in [`HOLISTIC_BIAS_SKIPPED_AXES`] (`nonce`, `body_type`);
    /// * descriptors of three characters or fewer, unless in [`HOLISTIC_BIAS_SHORT_KEPT`];
    /// * the common words in [`HOLISTIC_BIAS_STOP_WORDS`].
    ///
    /// A hyphenated descriptor also matches with spaces (`hard-of-hearing`, `hard of
    /// hearing`). Dispreferred descriptors (some of them slurs) are kept: a mention is a
    /// mention. The list is CC BY-SA 4.0; it is read at run time and never stored.
    pub fn load_holistic_bias(path: &Path) -> Result<IdentityTerms, RulesError> {
        let file = if path.is_dir() {
            path.join("descriptors.json")
        } else {
            path.to_owned()
        };
        let origin = file.display().to_string();
        let s = std::fs::read_to_string(&file).map_err(|source| RulesError::Io {
            path: file.clone(),
            source,
        })?;
        let invalid = |message: String| RulesError::Invalid {
            origin: origin.clone(),
            message,
        };
        let json: serde_json::Value = serde_json::from_str(&s).map_err(|e| RulesError::Line {
            origin: origin.clone(),
            line: e.line() as u64,
            message: e.to_string(),
        })?;
        let axes = json
            .as_object()
            .ok_or_else(|| invalid("expected an object of axes".into()))?;
        let mut terms: Vec<(String, String)> = Vec::new();
        for (axis, buckets) in axes {
            if HOLISTIC_BIAS_SKIPPED_AXES.contains(&axis.as_str()) {
                continue;
            }
            // Each axis is an object of buckets; accept a bare list as well.
            let lists: Vec<(&str, &serde_json::Value)> = match buckets {
                serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                v @ serde_json::Value::Array(_) => vec![("", v)],
                _ => {
                    return Err(invalid(format!(
                        "axis {axis:?}: expected an object of buckets"
                    )))
                }
            };
            for (bucket, list) in lists {
                let items = list.as_array().ok_or_else(|| {
                    invalid(format!("axis {axis:?}, bucket {bucket:?}: expected a list"))
                })?;
                for item in items {
                    let descriptor = match item {
                        serde_json::Value::String(s) => s.as_str(),
                        serde_json::Value::Object(o) => {
                            o.get("descriptor").and_then(|d| d.as_str()).ok_or_else(|| {
                                invalid(format!(
                                    "axis {axis:?}, bucket {bucket:?}: an object without a string `descriptor`"
                                ))
                            })?
                        }
                        other => {
                            return Err(invalid(format!(
                                "axis {axis:?}, bucket {bucket:?}: unexpected descriptor {other}"
                            )))
                        }
                    };
                    let d = normalize_term(descriptor);
                    if d.chars().count() <= 3 && !HOLISTIC_BIAS_SHORT_KEPT.contains(&d.as_str()) {
                        continue;
                    }
                    if HOLISTIC_BIAS_STOP_WORDS.contains(&d.as_str()) {
                        continue;
                    }
                    if d.contains('-') {
                        terms.push((axis.clone(), d.replace('-', " ")));
                    }
                    terms.push((axis.clone(), d));
                }
            }
        }
        if terms.is_empty() {
            return Err(invalid("no identity descriptors found".into()));
        }
        Ok(Self::from_terms("holistic-bias v1.1", terms))
    }

    /// `"builtin"`, `"holistic-bias v1.1"`, or the name given to [`Self::from_terms`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of distinct terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Every (axis, term).
    pub fn terms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.terms.iter().map(|(a, t)| (a.as_str(), t.as_str()))
    }

    /// The identity term that starts first in `text` (the longest one when several start
    /// at the same place), whole-word and case-insensitive like [`crate::RuleSet::find`],
    /// as (axis, term).
    pub fn first_match(&self, text: &str) -> Option<(&str, &str)> {
        let max_len = self.matcher.max_len();
        // (original start, original end, id, searched start) of the best match so far.
        let mut best: Option<(usize, usize, u32, usize)> = None;
        self.matcher.for_each(text, |id, span, (s_start, s_end)| {
            if let Some((start, end, _, best_s_start)) = best {
                // Matches come in order of end and are at most `max_len` long, so once
                // an end is more than `max_len` past the best start, no later match can
                // start at or before it.
                if s_end > best_s_start + max_len {
                    return ControlFlow::Break(());
                }
                if span.start > start || (span.start == start && span.end <= end) {
                    return ControlFlow::Continue(());
                }
            }
            best = Some((span.start, span.end, id, s_start));
            ControlFlow::Continue(())
        });
        best.map(|(_, _, id, _)| {
            let (a, t) = &self.terms[id as usize];
            (a.as_str(), t.as_str())
        })
    }

    /// True when `text` mentions any identity term (stops at the first).
    pub fn mentions(&self, text: &str) -> bool {
        let mut found = false;
        self.matcher.for_each(text, |_, _, _| {
            found = true;
            ControlFlow::Break(())
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_terms() {
        let t = IdentityTerms::builtin();
        assert_eq!(t.name(), "builtin");
        assert!((60..=150).contains(&t.len()), "{}", t.len());
        assert_eq!(
            t.first_match("My neighbours are Muslim."),
            Some(("religion", "muslim"))
        );
        assert_eq!(
            t.first_match("Black\npeople and gay men"),
            Some(("race_ethnicity", "black people"))
        );
        assert!(t.mentions("Support for TRANSGENDER youth"));
        assert!(t.mentions("the deaf community"));
        // Ambiguous single words are not identity terms, nor are substrings.
        for text in [
            "a black cat on a white wall",
            "straight line",
            "old town",
            "gayety",
            "Jewishness",
        ] {
            assert!(!t.mentions(text), "{text}: {:?}", t.first_match(text));
        }
        // No axis is empty and no term is a rule-like slur.
        assert!(t.terms().all(|(a, t)| !a.is_empty() && !t.is_empty()));
    }

    #[test]
    fn first_match_is_leftmost_then_longest() {
        let t = IdentityTerms::from_terms(
            "t",
            [
                ("a", "trans"),
                ("a", "trans women"),
                ("b", "women"),
                ("c", "lesbian"),
            ],
        );
        assert_eq!(
            t.first_match("lesbian and trans women"),
            Some(("c", "lesbian"))
        );
        assert_eq!(
            t.first_match("for trans  women"),
            Some(("a", "trans women"))
        );
        assert_eq!(
            t.first_match("for trans people and women"),
            Some(("a", "trans"))
        );
        assert_eq!(t.first_match("nothing here"), None);
        // Early stop must not cut a longer match at the same start.
        let t = IdentityTerms::from_terms("t", [("x", "a"), ("y", "a b c d e f")]);
        assert_eq!(t.first_match("a b c d e f"), Some(("y", "a b c d e f")));
    }

    const FIXTURE: &str = r#"{
      "ability": {"auditory": [{"descriptor": "Deaf", "preference": "reviewed"}, {"descriptor": "hard-of-hearing", "preference": "reviewed"}],
                  "speech": [{"descriptor": "dumb", "preference": "dispreferred"}, "non-verbal"]},
      "age": {"old": ["old", "elderly", "senior"]},
      "body_type": {"fit": ["fit", "muscular"]},
      "nonce": {"all": ["blicket"]},
      "religion": {"all": ["Muslim", {"descriptor": "Unitarian", "article": "a"}, "Bahá'í", "religious"]},
      "sexual_orientation": {"gay": ["gay", "homosexual"], "bi": ["bi", "bisexual"], "straight": ["straight"]},
      "gender_and_sex": {"queer": ["LGBTQ+", "queer"], "binary": [{"descriptor": "female", "gender": "female"}]}
    }"#;

    #[test]
    fn holistic_bias_loader_applies_the_filter_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("descriptors.json"), FIXTURE).unwrap();
        // A directory and the file itself both work.
        let t = IdentityTerms::load_holistic_bias(dir.path()).unwrap();
        let again =
            IdentityTerms::load_holistic_bias(&dir.path().join("descriptors.json")).unwrap();
        assert_eq!(t.len(), again.len());
        assert_eq!(t.name(), "holistic-bias v1.1");
        let mut terms: Vec<_> = t.terms().map(|(a, t)| format!("{a}:{t}")).collect();
        terms.sort();
        assert_eq!(
            terms,
            [
                "ability:deaf",
                "ability:hard of hearing",
                "ability:hard-of-hearing",
                "ability:non verbal",
                "ability:non-verbal",
                "age:elderly",
                "gender_and_sex:female",
                "gender_and_sex:lgbtq+",
                "gender_and_sex:queer",
                "religion:bahá'í",
                "religion:muslim",
                "religion:unitarian",
                "sexual_orientation:bisexual",
                "sexual_orientation:gay",
                "sexual_orientation:homosexual",
            ]
        );
        assert_eq!(
            t.first_match("He is hard\nof hearing."),
            Some(("ability", "hard of hearing"))
        );
        assert_eq!(
            t.first_match("the Bahá’í faith"),
            Some(("religion", "bahá'í"))
        );
        assert_eq!(
            t.first_match("LGBTQ+ rights"),
            Some(("gender_and_sex", "lgbtq+"))
        );
        assert!(!t.mentions("a fit, straight, senior, religious man"));
    }

    #[test]
    fn holistic_bias_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("descriptors.json");
        for (bad, want) in [
            ("{\"axis\": {\"b\": [1]}}", "unexpected descriptor 1"),
            (
                "{\"axis\": {\"b\": [{\"preference\": \"x\"}]}}",
                "without a string `descriptor`",
            ),
            ("[1, 2]", "expected an object of axes"),
            ("{\"axis\": {\"b\": [\"ace\"]}}", "no identity descriptors"),
            ("{\n\"axis\": ", "line 2"),
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = IdentityTerms::load_holistic_bias(&p)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{want:?} not in {e}");
            assert!(e.contains(&p.display().to_string()), "{e}");
        }
        assert!(IdentityTerms::load_holistic_bias(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<IdentityTerms>();
    }
}
