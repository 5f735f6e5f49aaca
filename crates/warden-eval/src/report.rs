//! Per-category and `any` reports over a labelled, scored dataset.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use warden_core::{Label, Record, Taxonomy};

use crate::metrics::{Ranked, ThresholdMetrics};
use crate::EvalError;

/// The key of the `any` pseudo-category in plots and tables.
pub const ANY: &str = "any";

/// Metrics for one category (or for `any`) over the rows where its label is known.
///
/// Serializes with the field names `n, positives, auprc, roc_auc, best_f1,
/// best_f1_threshold, threshold, precision, recall, f1, fpr, tp, fp, tn, fn`; undefined
/// values are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryReport {
    /// Rows with a known label.
    pub n: usize,
    /// Rows whose label is positive (hard label: target ≥ 0.5).
    pub positives: usize,
    /// Average precision; `None` without positives.
    pub auprc: Option<f64>,
    /// ROC-AUC; `None` without both positives and negatives.
    pub roc_auc: Option<f64>,
    /// Best F1 over all score thresholds (an upper bound on what threshold tuning can reach).
    pub best_f1: Option<f64>,
    /// The score threshold reaching [`Self::best_f1`] (an `f32` score written as the
    /// `f64` with the same shortest decimal form, so JSON shows `0.35`, not
    /// `0.3499999940395355`).
    pub best_f1_threshold: Option<f64>,
    /// The policy threshold the confusion counts below use. `None` for `any`, whose
    /// counts come from the whole per-category policy (see [`EvalReport::any`]).
    pub threshold: Option<f64>,
    /// At the policy threshold: tp / (tp + fp).
    pub precision: Option<f64>,
    /// At the policy threshold: tp / (tp + fn).
    pub recall: Option<f64>,
    /// At the policy threshold: 2tp / (2tp + fp + fn).
    pub f1: Option<f64>,
    /// At the policy threshold: fp / (fp + tn).
    pub fpr: Option<f64>,
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl CategoryReport {
    /// Metrics for one binary problem with the policy flag `score >= threshold`.
    ///
    /// # Panics
    /// When `scores` and `labels` differ in length.
    pub fn compute(scores: &[f32], labels: &[bool], threshold: f32) -> Self {
        let at = crate::at_threshold(scores, labels, threshold);
        Self::from_parts(&Ranked::new(scores, labels), at, Some(threshold))
    }

    /// Ranking metrics from `scores`, confusion counts from the given policy flags (one per
    /// row), as used for `any`.
    ///
    /// # Panics
    /// When the three slices differ in length.
    pub fn compute_with_flags(scores: &[f32], labels: &[bool], flags: &[bool]) -> Self {
        let at = ThresholdMetrics::from_predictions(flags, labels);
        Self::from_parts(&Ranked::new(scores, labels), at, None)
    }

    pub(crate) fn from_parts(r: &Ranked, at: ThresholdMetrics, threshold: Option<f32>) -> Self {
        let best = r.best_f1();
        Self {
            n: r.positives + r.negatives,
            positives: r.positives,
            auprc: r.auprc(),
            roc_auc: r.roc_auc(),
            best_f1: best.map(|b| b.0),
            best_f1_threshold: best.map(|b| decimal_f64(b.1)),
            threshold: threshold.map(decimal_f64),
            precision: at.precision,
            recall: at.recall,
            f1: at.f1,
            fpr: at.fpr,
            tp: at.tp,
            fp: at.fp,
            tn: at.tn,
            fn_: at.fn_,
        }
    }
}

/// One category's entry in an [`EvalReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryEntry {
    /// Taxonomy code: the JSON key.
    pub code: String,
    /// Public name, shown in Markdown tables only.
    pub name: String,
    pub report: CategoryReport,
}

/// A whole evaluation. Serializes to
/// `{"model": ..., "rows": N, "categories": {"S": {...}, "H": {...}, ...}, "any": {...}}`
/// with categories keyed by code, in taxonomy order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub model: String,
    /// All input rows, including rows with no known label.
    pub rows: usize,
    #[serde(serialize_with = "serialize_categories")]
    pub categories: Vec<CategoryEntry>,
    /// "Is this text undesired at all?" A row is positive when any of its known labels is
    /// positive, negative when at least one label is known and none is positive, and left
    /// out when no label is known. Its ranking score (AUPRC, ROC-AUC, best F1) is the
    /// maximum score over all categories. Its precision / recall / F1 / FPR are those of the
    /// policy flag — the row is flagged when *any* category's score reaches that category's
    /// own threshold — not of one threshold on the max score, so `threshold` is `null`.
    ///
    /// Caveat: a row labelled only for some categories is a negative for `any` when those
    /// are negative, yet may be flagged for a category its dataset did not annotate; such
    /// flags count as false positives here.
    pub any: CategoryReport,
    /// Optional per-group reports (e.g. per dataset source from [`evaluate_by_group`]),
    /// attached with [`EvalReport::with_sources`]. Serialized as `"sources": {...}` after
    /// `any` only when non-empty, so a plain report has exactly the four keys above.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, EvalReport>,
}

/// The `f64` whose shortest decimal form is that of the `f32` (0.35f32 → 0.35f64, where
/// `as f64` would give 0.3499999940395355).
fn decimal_f64(x: f32) -> f64 {
    if x.is_finite() {
        x.to_string().parse().unwrap_or(x as f64)
    } else {
        x as f64
    }
}

fn serialize_categories<S: Serializer>(c: &[CategoryEntry], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(c.len()))?;
    for e in c {
        map.serialize_entry(&e.code, &e.report)?;
    }
    map.end()
}

impl EvalReport {
    /// A category's report by code or name (case-insensitive), or `any`.
    pub fn get(&self, key: &str) -> Option<&CategoryReport> {
        self.categories
            .iter()
            .find(|e| e.code.eq_ignore_ascii_case(key) || e.name.eq_ignore_ascii_case(key))
            .map(|e| &e.report)
            .or_else(|| key.eq_ignore_ascii_case(ANY).then_some(&self.any))
    }

    /// Attaches per-group reports, serialized under `"sources"`.
    pub fn with_sources(mut self, sources: BTreeMap<String, EvalReport>) -> Self {
        self.sources = sources;
        self
    }

    /// The report as a JSON value (same keys as serializing it).
    ///
    /// Note: unless some crate in the build enables serde_json's `preserve_order`
    /// feature, a [`serde_json::Value`] object keeps its keys sorted, so categories come
    /// out alphabetically (`H, H2, HR, S, …`). Use [`Self::to_json_pretty`] (or serialize
    /// the report directly) for output in taxonomy order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("an EvalReport always serializes")
    }

    /// Pretty-printed JSON with keys in the documented order: `model, rows, categories`
    /// (taxonomy order), `any`, then `sources` when attached.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("an EvalReport always serializes")
    }

    /// A Markdown section: a heading and one table row per category plus `any`, with
    /// `—` for undefined values, followed by a note on how `any` is defined.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Evaluation: {} ({} rows)\n",
            md_escape(&self.model),
            self.rows
        );
        out.push_str(
            "| Category | n | Positives | AUPRC | ROC-AUC | Best F1 (at) | Threshold | Precision | Recall | F1 | FPR |\n\
             |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for e in &self.categories {
            let label = if e.name.is_empty() || e.name == e.code {
                e.code.clone()
            } else {
                format!("{} ({})", e.code, e.name)
            };
            md_row(&mut out, &md_escape(&label), &e.report);
        }
        md_row(&mut out, "**any**", &self.any);
        out.push_str(
            "\n`any`: a row is positive when any known label is positive and is left out when no \
             label is known; AUPRC, ROC-AUC and best F1 rank the maximum category score; \
             precision, recall, F1 and FPR are those of the policy (any category at or above \
             its own threshold). Metrics at the threshold count `score >= threshold` as \
             flagged.\n",
        );
        out
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn fmt3(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

fn fmt_t(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

fn md_row(out: &mut String, label: &str, r: &CategoryReport) {
    let best = match (r.best_f1, r.best_f1_threshold) {
        (Some(f), Some(t)) => format!("{f:.3} (@{t})"),
        _ => "—".to_owned(),
    };
    let threshold = if r.threshold.is_none() {
        "policy".to_owned()
    } else {
        fmt_t(r.threshold)
    };
    let _ = writeln!(
        out,
        "| {label} | {} | {} | {} | {} | {best} | {threshold} | {} | {} | {} | {} |",
        r.n,
        r.positives,
        fmt3(r.auprc),
        fmt3(r.roc_auc),
        fmt3(r.precision),
        fmt3(r.recall),
        fmt3(r.f1),
        fmt3(r.fpr),
    );
}

/// One binary problem extracted from the dataset: a category, or `any`.
pub(crate) struct Column {
    pub code: String,
    pub name: String,
    pub scores: Vec<f32>,
    pub labels: Vec<bool>,
    /// `Some(t)`: flagged when `score >= t`. `None`: use `flags`.
    pub threshold: Option<f32>,
    pub flags: Vec<bool>,
}

impl Column {
    pub fn metrics_at_policy(&self) -> ThresholdMetrics {
        match self.threshold {
            Some(t) => crate::at_threshold(&self.scores, &self.labels, t),
            None => ThresholdMetrics::from_predictions(&self.flags, &self.labels),
        }
    }

    pub fn report(&self) -> CategoryReport {
        let ranked = Ranked::new(&self.scores, &self.labels);
        CategoryReport::from_parts(&ranked, self.metrics_at_policy(), self.threshold)
    }
}

pub(crate) fn validate<L: AsRef<[Label]>, S: AsRef<[f32]>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
) -> Result<(), EvalError> {
    let k = taxonomy.len();
    if labels.len() != scores.len() {
        return Err(EvalError::RowCount {
            labels: labels.len(),
            scores: scores.len(),
        });
    }
    if thresholds.len() != k {
        return Err(EvalError::ThresholdCount {
            thresholds: thresholds.len(),
            categories: k,
        });
    }
    for (row, (l, s)) in labels.iter().zip(scores).enumerate() {
        let (l, s) = (l.as_ref(), s.as_ref());
        if l.len() != k {
            return Err(EvalError::LabelWidth {
                row,
                got: l.len(),
                categories: k,
            });
        }
        if s.len() != k {
            return Err(EvalError::ScoreWidth {
                row,
                got: s.len(),
                categories: k,
            });
        }
    }
    Ok(())
}

/// The taxonomy's categories followed by `any`. Inputs must already be validated.
pub(crate) fn columns<L: AsRef<[Label]>, S: AsRef<[f32]>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
) -> Vec<Column> {
    let mut out = Vec::with_capacity(taxonomy.len() + 1);
    for (c, cat) in taxonomy.categories().iter().enumerate() {
        let mut col = Column {
            code: cat.code.clone(),
            name: cat.name.clone(),
            scores: Vec::new(),
            labels: Vec::new(),
            threshold: Some(thresholds[c]),
            flags: Vec::new(),
        };
        for (l, s) in labels.iter().zip(scores) {
            if let Some(hard) = l.as_ref()[c].hard() {
                col.labels.push(hard);
                col.scores.push(s.as_ref()[c]);
            }
        }
        out.push(col);
    }
    let mut any = Column {
        code: ANY.to_owned(),
        name: ANY.to_owned(),
        scores: Vec::new(),
        labels: Vec::new(),
        threshold: None,
        flags: Vec::new(),
    };
    for (l, s) in labels.iter().zip(scores) {
        let (l, s) = (l.as_ref(), s.as_ref());
        let mut known = false;
        let mut positive = false;
        for h in l.iter().filter_map(|x| x.hard()) {
            known = true;
            positive |= h;
        }
        if !known {
            continue;
        }
        // `f32::max` ignores NaN unless every score is NaN.
        let max = s.iter().copied().fold(f32::NAN, f32::max);
        let flagged = s.iter().zip(thresholds).any(|(&x, &t)| x >= t);
        any.labels.push(positive);
        any.scores.push(max);
        any.flags.push(flagged);
    }
    out.push(any);
    out
}

/// Evaluates scores against labels, per category and for `any` (see [`EvalReport::any`]).
///
/// `labels[r]` and `scores[r]` are row `r`'s labels and calibrated scores in taxonomy
/// order; `thresholds[c]` is the policy threshold of category `c` (flag when
/// `score >= threshold`). A category's metrics use only rows whose label for it is known
/// ([`Label::hard`] is `Some`: soft labels count as positive at ≥ 0.5).
///
/// # Panics
/// When the inputs do not fit together; see [`try_evaluate`] for the checked version.
pub fn evaluate<L: AsRef<[Label]>, S: AsRef<[f32]>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
    model_name: &str,
) -> EvalReport {
    try_evaluate(taxonomy, labels, scores, thresholds, model_name)
        .unwrap_or_else(|e| panic!("evaluate: {e}"))
}

/// [`evaluate`], returning an error instead of panicking when row counts or vector widths
/// do not match the taxonomy.
pub fn try_evaluate<L: AsRef<[Label]>, S: AsRef<[f32]>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
    model_name: &str,
) -> Result<EvalReport, EvalError> {
    validate(taxonomy, labels, scores, thresholds)?;
    let mut cols = columns(taxonomy, labels, scores, thresholds);
    let any = cols.pop().expect("columns ends with `any`").report();
    let categories = cols
        .into_iter()
        .map(|c| CategoryEntry {
            report: c.report(),
            code: c.code,
            name: c.name,
        })
        .collect();
    Ok(EvalReport {
        model: model_name.to_owned(),
        rows: labels.len(),
        categories,
        any,
        sources: BTreeMap::new(),
    })
}

/// [`try_evaluate`] over records (their `labels`) and one score vector per record.
pub fn evaluate_records<S: AsRef<[f32]>>(
    taxonomy: &Taxonomy,
    records: &[Record],
    scores: &[S],
    thresholds: &[f32],
    model_name: &str,
) -> Result<EvalReport, EvalError> {
    let labels: Vec<&[Label]> = records.iter().map(|r| r.labels.as_slice()).collect();
    try_evaluate(taxonomy, &labels, scores, thresholds, model_name)
}

/// One report per group key (e.g. each row's dataset `source`), sorted by key. Every
/// group's report covers only that group's rows.
///
/// # Panics
/// When the inputs do not fit together; see [`try_evaluate_by_group`].
pub fn evaluate_by_group<L: AsRef<[Label]>, S: AsRef<[f32]>, G: AsRef<str>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
    groups: &[G],
    model_name: &str,
) -> BTreeMap<String, EvalReport> {
    try_evaluate_by_group(taxonomy, labels, scores, thresholds, groups, model_name)
        .unwrap_or_else(|e| panic!("evaluate_by_group: {e}"))
}

/// [`evaluate_by_group`], returning an error instead of panicking.
pub fn try_evaluate_by_group<L: AsRef<[Label]>, S: AsRef<[f32]>, G: AsRef<str>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
    groups: &[G],
    model_name: &str,
) -> Result<BTreeMap<String, EvalReport>, EvalError> {
    validate(taxonomy, labels, scores, thresholds)?;
    if groups.len() != labels.len() {
        return Err(EvalError::GroupCount {
            groups: groups.len(),
            rows: labels.len(),
        });
    }
    type Rows<'a> = (Vec<&'a [Label]>, Vec<&'a [f32]>);
    let mut rows: BTreeMap<&str, Rows> = BTreeMap::new();
    for ((g, l), s) in groups.iter().zip(labels).zip(scores) {
        let e = rows.entry(g.as_ref()).or_default();
        e.0.push(l.as_ref());
        e.1.push(s.as_ref());
    }
    rows.into_iter()
        .map(|(g, (l, s))| {
            Ok((
                g.to_owned(),
                try_evaluate(taxonomy, &l, &s, thresholds, model_name)?,
            ))
        })
        .collect()
}
