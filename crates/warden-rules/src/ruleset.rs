//! The compiled rule set.

use std::collections::HashMap;
use std::ops::ControlFlow;

use crate::list::{ListInfo, RuleList};
use crate::matcher::{normalize_term, Matcher};
use crate::{RuleHit, RulesError, Severity, Span};

#[derive(Debug, Clone)]
struct Rule {
    /// Normalised term (lower-case, single spaces).
    term: String,
    /// Canonical category code from the taxonomy.
    category: String,
    /// The category's index in the taxonomy, for the containment sweep.
    category_ix: usize,
    severity: Severity,
    /// Name of the list the rule (at this severity) came from.
    list: String,
}

/// Rule lists compiled into one matcher. Cheap to share: `Send + Sync`, and `find` takes
/// `&self`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    lists: Vec<ListInfo>,
    matcher: Option<Matcher>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl RuleSet {
    /// Compiles `lists`.
    ///
    /// * Every entry's category must be a category of `taxonomy`, by code or public name,
    ///   in any letter case (`"h2"`, `"hate/threatening"`); hits carry the canonical code.
    ///   An unknown one is an error naming the list, the term and the category.
    /// * Terms are normalised: trimmed, lower-cased, whitespace runs made one space. An
    ///   empty term is an error.
    /// * A term that appears more than once with the same category (in one list or
    ///   several) becomes one rule with the highest of its severities; the hit names the
    ///   first list that gave it that severity. The same term with two categories is two
    ///   rules and gives two hits.
    pub fn new(
        lists: Vec<RuleList>,
        taxonomy: &warden_core::Taxonomy,
    ) -> Result<RuleSet, RulesError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut index: HashMap<(String, usize), usize> = HashMap::new();
        let mut infos = Vec::with_capacity(lists.len());
        for list in &lists {
            infos.push(list.info());
            for (n, entry) in list.entries.iter().enumerate() {
                let term = normalize_term(&entry.term);
                if term.is_empty() {
                    return Err(RulesError::Invalid {
                        origin: format!("rule list {:?} ({})", list.name, list.source),
                        message: format!("entry {} has an empty term", n + 1),
                    });
                }
                let Some(cix) = taxonomy.index_of(entry.category.trim()) else {
                    return Err(RulesError::UnknownCategory {
                        list: list.name.clone(),
                        origin: list.source.clone(),
                        term: entry.term.clone(),
                        category: entry.category.clone(),
                        known: taxonomy.codes().collect::<Vec<_>>().join(", ").into(),
                    });
                };
                let code = &taxonomy.categories()[cix].code;
                let category_ix = cix;
                match index.get(&(term.clone(), category_ix)) {
                    Some(&r) => {
                        let rule = &mut rules[r];
                        if entry.severity > rule.severity {
                            rule.severity = entry.severity;
                            rule.list = list.name.clone();
                        }
                    }
                    None => {
                        index.insert((term.clone(), category_ix), rules.len());
                        rules.push(Rule {
                            term,
                            category: code.clone(),
                            category_ix,
                            severity: entry.severity,
                            list: list.name.clone(),
                        });
                    }
                }
            }
        }
        let matcher = (!rules.is_empty()).then(|| {
            Matcher::new(
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.term.as_str(), i as u32)),
            )
        });
        Ok(RuleSet {
            rules,
            lists: infos,
            matcher,
        })
    }

    /// A set with no rules: `find` always returns nothing.
    pub fn empty() -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            lists: Vec::new(),
            matcher: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of distinct (term, category) rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The lists compiled in, in the order given (for run manifests).
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// Every rule as (term, category code, severity, list), in compile order.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str, Severity, &str)> {
        self.rules.iter().map(|r| {
            (
                r.term.as_str(),
                r.category.as_str(),
                r.severity,
                r.list.as_str(),
            )
        })
    }

    /// All whole-word matches in `text`, sorted by span start, then end (then category
    /// and term, so the order is fully deterministic).
    ///
    /// Matching is ASCII case-insensitive and whole-word; a space in a term matches any
    /// run of ASCII whitespace. Overlapping matches are all reported, except that a hit
    /// whose span lies inside a longer hit of the *same category* is dropped
    /// (`"i will kill you"` hides `"kill you"` when both are `V`, but not a `HR` hit on
    /// the same words). See the crate docs.
    pub fn find(&self, text: &str) -> Vec<RuleHit> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        let mut raw: Vec<(usize, usize, usize, u32)> = Vec::new();
        matcher.for_each(text, |id, span, _| {
            let cix = self.rules[id as usize].category_ix;
            raw.push((cix, span.start, span.end, id));
            ControlFlow::Continue(())
        });
        if raw.is_empty() {
            return Vec::new();
        }
        // Per category, by start ascending and end descending: every hit that contains
        // a hit h comes before h, so h is inside a longer hit iff the largest end seen
        // among earlier hits with a *different* span reaches h's end.
        raw.sort_unstable_by(|a, b| (a.0, a.1, b.2, a.3).cmp(&(b.0, b.1, a.2, b.3)));
        raw.dedup();
        let mut kept = Vec::with_capacity(raw.len());
        let mut i = 0;
        let mut max_end: Option<(usize, usize)> = None; // (category, largest end so far)
        while i < raw.len() {
            let (cix, start, end, _) = raw[i];
            let mut j = i + 1;
            while j < raw.len() && (raw[j].0, raw[j].1, raw[j].2) == (cix, start, end) {
                j += 1;
            }
            let prior = match max_end {
                Some((c, e)) if c == cix => Some(e),
                _ => None,
            };
            if prior.is_none_or(|e| e < end) {
                kept.extend_from_slice(&raw[i..j]);
            }
            max_end = Some((cix, prior.map_or(end, |e| e.max(end))));
            i = j;
        }
        let mut hits: Vec<RuleHit> = kept
            .into_iter()
            .map(|(_, start, end, id)| {
                let r = &self.rules[id as usize];
                RuleHit {
                    category: r.category.clone(),
                    severity: r.severity,
                    term: r.term.clone(),
                    span: Span::new(start, end),
                    list: r.list.clone(),
                }
            })
            .collect();
        hits.sort_by(|a, b| {
            (a.span.start, a.span.end, &a.category, &a.term).cmp(&(
                b.span.start,
                b.span.end,
                &b.category,
                &b.term,
            ))
        });
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleEntry;
    use proptest::prelude::*;
    use warden_core::Taxonomy;

    fn list(name: &str, entries: &[(&str, &str, Severity)]) -> RuleList {
        RuleList {
            name: name.into(),
            licence: "test".into(),
            source: "unit test".into(),
            entries: entries
                .iter()
                .map(|&(t, c, s)| RuleEntry {
                    term: t.into(),
                    category: c.into(),
                    severity: s,
                })
                .collect(),
        }
    }

    fn set(entries: &[(&str, &str, Severity)]) -> RuleSet {
        RuleSet::new(vec![list("t", entries)], &Taxonomy::builtin()).unwrap()
    }

    fn found(rs: &RuleSet, text: &str) -> Vec<(String, String, usize, usize)> {
        rs.find(text)
            .into_iter()
            .map(|h| (h.term, h.category, h.span.start, h.span.end))
            .collect()
    }

    fn t(term: &str, cat: &str, s: usize, e: usize) -> (String, String, usize, usize) {
        (term.into(), cat.into(), s, e)
    }

    use Severity::*;

    #[test]
    fn whole_words_only() {
        let rs = set(&[("ass", "HR", Mild)]);
        assert!(rs
            .find("a class act, an assassin, a bass, passive, ass_hat, ass2")
            .is_empty());
        assert_eq!(found(&rs, "ass."), [t("ass", "HR", 0, 3)]);
        assert_eq!(found(&rs, "(ass)"), [t("ass", "HR", 1, 4)]);
        assert_eq!(found(&rs, "my-ass"), [t("ass", "HR", 3, 6)]);
        // Unicode letters count as word characters.
        assert!(rs.find("éass assé 中ass").is_empty());
        assert_eq!(found(&rs, "é ass—é"), [t("ass", "HR", 3, 6)]);
    }

    #[test]
    fn case_insensitive() {
        let rs = set(&[("Kill Yourself", "SH", Severe)]);
        assert_eq!(
            found(&rs, "KILL YOURSELF"),
            [t("kill yourself", "SH", 0, 13)]
        );
        assert_eq!(
            found(&rs, "kIlL yOuRsElF!"),
            [t("kill yourself", "SH", 0, 13)]
        );
    }

    #[test]
    fn non_ascii_case_variants() {
        let rs = set(&[("ÄRGER mit dir", "HR", Mild)]);
        assert_eq!(rs.find("ärger mit dir").len(), 1);
        assert_eq!(rs.find("ÄRGER MIT DIR").len(), 1);
        assert_eq!(rs.find("Ärger mit dir").len(), 1);
        // ASCII letters fold whatever the variant.
        assert_eq!(rs.find("äRGER MIT dir").len(), 1);
        // Non-ASCII letters must be all lower-case or all upper-case (or a capital at a
        // word start); anything else is documented as not matching.
        let rs = set(&[("müll ärger", "HR", Mild)]);
        assert_eq!(rs.find("Müll Ärger").len(), 1);
        assert!(rs.find("MÜLL ärger").is_empty());
    }

    #[test]
    fn apostrophe_variants() {
        let rs = set(&[("i'm going to kill you", "V", Severe)]);
        assert_eq!(rs.find("I\u{2019}m going to kill you").len(), 1);
        assert_eq!(rs.find("I'm going to kill you").len(), 1);
        assert!(rs.find("Im going to kill you").is_empty());
    }

    #[test]
    fn multi_word_terms_span_whitespace_runs() {
        let rs = set(&[("kill yourself", "SH", Severe), ("f*ck", "HR", Mild)]);
        let text = "go kill\n\tyourself  now, f*ck.";
        assert_eq!(
            found(&rs, text),
            [t("kill yourself", "SH", 3, 17), t("f*ck", "HR", 24, 28)]
        );
        assert_eq!(&text[3..17], "kill\n\tyourself");
        let text = "x  \r\n kill \r\n\r\n YOURSELF";
        let hits = rs.find(text);
        assert_eq!(hits.len(), 1);
        assert_eq!(
            &text[hits[0].span.start..hits[0].span.end],
            "kill \r\n\r\n YOURSELF"
        );
        // Not across other characters, and not without whitespace.
        assert!(rs
            .find("kill-yourself killyourself kill\u{a0}yourself")
            .is_empty());
    }

    #[test]
    fn overlapping_hits_and_containment() {
        let rs = set(&[
            ("i will kill you", "V", Severe),
            ("kill you", "V", Strong),
            ("kill", "HR", Mild),
            ("you scum", "HR", Strong),
        ]);
        // "kill you" is inside "i will kill you" (same category): dropped. "kill" is HR:
        // kept. "you scum" overlaps the V hit without being inside it: kept.
        assert_eq!(
            found(&rs, "I will kill you scum"),
            [
                t("i will kill you", "V", 0, 15),
                t("kill", "HR", 7, 11),
                t("you scum", "HR", 12, 20)
            ]
        );
        assert_eq!(
            found(&rs, "we kill you"),
            [t("kill", "HR", 3, 7), t("kill you", "V", 3, 11)]
        );
        // Same category, nested at the same start: the shorter one goes.
        let rs = set(&[("kill", "V", Mild), ("kill you", "V", Strong)]);
        assert_eq!(found(&rs, "kill you"), [t("kill you", "V", 0, 8)]);
        // Overlapping but neither inside the other: both stay.
        let rs = set(&[("a b", "HR", Mild), ("b c", "HR", Mild)]);
        assert_eq!(
            found(&rs, "xa b c a b c"),
            [
                t("b c", "HR", 3, 6),
                t("a b", "HR", 7, 10),
                t("b c", "HR", 9, 12)
            ]
        );
    }

    #[test]
    fn repeated_hits_are_all_reported_sorted() {
        let rs = set(&[("ugh", "HR", Mild), ("meh", "HR", Mild)]);
        let text = "meh ugh meh\nugh";
        let got: Vec<_> = rs
            .find(text)
            .iter()
            .map(|h| (h.span.start, h.term.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "meh".into()),
                (4, "ugh".into()),
                (8, "meh".into()),
                (12, "ugh".into())
            ]
        );
    }

    #[test]
    fn dedups_and_keeps_highest_severity() {
        let a = list(
            "a",
            &[
                ("Jerk", "HR", Mild),
                ("jerk", "hr", Mild),
                ("jerk", "harassment", Mild),
            ],
        );
        let b = list("b", &[("  JERK ", "HR", Strong), ("jerk", "V", Mild)]);
        let rs = RuleSet::new(vec![a, b], &Taxonomy::builtin()).unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs.lists().len(), 2);
        assert_eq!(rs.lists()[0].terms, 3);
        let hits = rs.find("what a jerk");
        assert_eq!(hits.len(), 2);
        assert_eq!(
            (
                hits[0].category.as_str(),
                hits[0].severity,
                hits[0].list.as_str()
            ),
            ("HR", Strong, "b")
        );
        assert_eq!(
            (
                hits[1].category.as_str(),
                hits[1].severity,
                hits[1].list.as_str()
            ),
            ("V", Mild, "b")
        );
    }

    #[test]
    fn unknown_category_is_an_error_naming_list_term_and_code() {
        let e = RuleSet::new(
            vec![list("mine", &[("ok", "HR", Mild), ("spam", "SPAM", Mild)])],
            &Taxonomy::builtin(),
        )
        .unwrap_err()
        .to_string();
        for want in ["\"mine\"", "\"spam\"", "\"SPAM\"", "HR", "V2"] {
            assert!(e.contains(want), "{want} missing from {e}");
        }
    }

    #[test]
    fn empty_term_is_an_error() {
        let e = RuleSet::new(
            vec![list("mine", &[("  ", "HR", Mild)])],
            &Taxonomy::builtin(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"mine\""), "{e}");
    }

    #[test]
    fn empty_set() {
        let rs = RuleSet::empty();
        assert!(rs.is_empty());
        assert_eq!(rs.len(), 0);
        assert!(rs.find("anything at all").is_empty());
        let rs = RuleSet::new(vec![], &Taxonomy::builtin()).unwrap();
        assert!(rs.find("anything").is_empty());
    }

    #[test]
    fn builtin_list_compiles_and_fires() {
        let rs = RuleSet::new(vec![RuleList::builtin()], &Taxonomy::builtin()).unwrap();
        assert!(rs.len() >= 40);
        let hits = rs.find("If you say that again I'm going to\nkill you.");
        assert!(
            hits.iter()
                .any(|h| h.category == "V" && h.severity == Severe),
            "{hits:?}"
        );
        // Identity words and everyday vocabulary are not rules.
        for benign in [
            "Gay and lesbian couples, Muslim and Jewish families, Black and white neighbours.",
            "The class assessed the grape harvest in Scunthorpe; Essex and Sussex passed.",
            "The patient was diagnosed with breast cancer and a sexually transmitted infection.",
            "The army killed thousands of civilians during the war, historians say.",
        ] {
            assert!(
                rs.find(benign).is_empty(),
                "{benign}: {:?}",
                rs.find(benign)
            );
        }
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RuleSet>();
    }

    const TERMS: [(&str, &str); 6] = [
        ("kill yourself", "SH"),
        ("i will hurt you", "V"),
        ("zorp", "HR"),
        ("blorf glim", "S"),
        ("ärger müll", "HR"),
        ("f*ck", "HR"),
    ];

    fn spelled(term: &str, seps: &[String], upper: &[bool]) -> String {
        // Non-ASCII letters match in lower case, upper case or capitalised, not in a mix
        // across words: spell such terms uniformly.
        let uniform = !term.is_ascii();
        let mut out = String::new();
        for (i, w) in term.split(' ').enumerate() {
            if i > 0 {
                out.push_str(&seps[i % seps.len()]);
            }
            let u = if uniform {
                upper[0]
            } else {
                upper[i % upper.len()]
            };
            out.push_str(&if u { w.to_uppercase() } else { w.to_owned() });
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn inserted_terms_are_found_at_their_spans(
            pieces in proptest::collection::vec(("\\PC{0,12}", 0usize..TERMS.len(), proptest::collection::vec("[ \t\n\r]{1,3}", 1..4), proptest::collection::vec(any::<bool>(), 1..4)), 1..6),
            tail in "\\PC{0,12}",
        ) {
            let rs = set(&TERMS.iter().map(|&(t, c)| (t, c, Severity::Strong)).collect::<Vec<_>>());
            let mut text = String::new();
            let mut want = Vec::new();
            for (noise, k, seps, upper) in &pieces {
                text.push_str(noise);
                text.push(' ');
                let start = text.len();
                text.push_str(&spelled(TERMS[*k].0, seps, upper));
                want.push((start, text.len(), TERMS[*k].0));
                text.push(' ');
            }
            text.push_str(&tail);
            let hits = rs.find(&text);
            for h in &hits {
                prop_assert!(text.is_char_boundary(h.span.start) && text.is_char_boundary(h.span.end));
                let matched: String = text[h.span.start..h.span.end]
                    .split_ascii_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                prop_assert_eq!(&matched, &h.term);
            }
            for (s, e, term) in want {
                prop_assert!(
                    hits.iter().any(|h| h.span == Span::new(s, e) && h.term == term),
                    "{:?} at {}..{} not found in {:?}: {:?}", term, s, e, text, hits
                );
            }
            let mut sorted = hits.clone();
            sorted.sort_by_key(|h| (h.span.start, h.span.end));
            prop_assert_eq!(sorted, hits);
        }
    }
}
