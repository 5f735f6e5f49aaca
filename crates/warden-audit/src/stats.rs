//! Run statistics: bounded-memory, deterministic and mergeable aggregates of a curation run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::example::{truncate, Example};
use crate::hll::DistinctSketch;
use crate::types::{Action, DocAttributes, Layer};
use crate::AuditError;

/// Bins of the score histograms (equal width over `[0, 1]`; the last bin includes 1).
pub const HIST_BINS: usize = 20;
/// Examples kept per category (the first observed; see [`RunStats::merge`]).
pub const MAX_EXAMPLES: usize = 5;
/// Distinct sources tracked by name; further sources are folded into [`OTHER_SOURCES`].
pub const DEFAULT_SOURCE_CAP: usize = 100_000;
/// Sources listed in the report.
pub const TOP_SOURCES: usize = 20;
/// The source name of documents without a source.
pub const NO_SOURCE: &str = "(none)";
/// The name under which sources beyond the cap are counted together.
pub const OTHER_SOURCES: &str = "(other sources)";
/// The over-filtering check warns when the identity-mention removal rate is more than this
/// many times the rate of other documents (and the 95% intervals do not overlap).
pub const DISPARITY_RATIO: f64 = 1.25;
/// Source names (and error kinds) are truncated to this many bytes.
const MAX_NAME_BYTES: usize = 256;
/// Distinct error kinds counted by name; further kinds are counted as `"other"`.
const MAX_ERROR_KINDS: usize = 64;

const LAYERS: [Layer; 4] = [Layer::Domain, Layer::Rules, Layer::Fast, Layer::Encoder];

/// Documents dropped and redacted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removals {
    /// Documents dropped.
    pub dropped: u64,
    /// Documents redacted.
    pub redacted: u64,
}

impl Removals {
    /// Dropped plus redacted.
    pub fn removed(&self) -> u64 {
        self.dropped + self.redacted
    }

    fn count(&mut self, action: Action) {
        match action {
            Action::Drop => self.dropped += 1,
            Action::Redact => self.redacted += 1,
            Action::Keep => {}
        }
    }

    fn add(&mut self, other: &Removals) {
        self.dropped += other.dropped;
        self.redacted += other.redacted;
    }
}

/// Per category: removals, score histograms and examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryStats {
    /// The category code.
    pub code: String,
    /// Documents removed with at least one reason of this category (each counted once).
    pub removals: Removals,
    /// Histogram of the category's document score (max chunk score) over kept documents.
    pub hist_kept: Vec<u64>,
    /// The same over removed (dropped or redacted) documents.
    pub hist_removed: Vec<u64>,
    /// Up to [`MAX_EXAMPLES`] removed documents with a reason of this category.
    pub examples: Vec<Example>,
}

impl CategoryStats {
    fn new(code: &str) -> Self {
        CategoryStats {
            code: code.to_owned(),
            removals: Removals::default(),
            hist_kept: vec![0; HIST_BINS],
            hist_removed: vec![0; HIST_BINS],
            examples: Vec::new(),
        }
    }
}

/// Per source: documents and removals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Documents seen.
    pub docs: u64,
    /// Bytes of text seen.
    pub bytes: u64,
    /// Documents dropped and redacted.
    pub removals: Removals,
    /// Removed documents per category (taxonomy order; a document counts once per category).
    pub by_category: Vec<u64>,
}

impl SourceStats {
    fn new(categories: usize) -> Self {
        SourceStats {
            by_category: vec![0; categories],
            ..SourceStats::default()
        }
    }

    fn add(&mut self, other: &SourceStats) {
        self.docs += other.docs;
        self.bytes += other.bytes;
        self.removals.add(&other.removals);
        add_vec(&mut self.by_category, &other.by_category);
    }
}

/// Documents of one group of the over-filtering check (identity mentions, or the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Documents in the group.
    pub docs: u64,
    /// Of those, dropped and redacted.
    pub removals: Removals,
    /// Removed documents with at least one reason of each layer.
    pub by_layer: BTreeMap<Layer, u64>,
    /// Removed documents with at least one reason of each category (taxonomy order).
    pub by_category: Vec<u64>,
    /// `(documents, removed)` per document-length band ([`LENGTH_BANDS`]): longer documents
    /// have more chunks, hence more chances to be flagged, and identity mentions are more
    /// common in long documents, so the overall comparison is confounded by length.
    #[serde(default = "empty_bands")]
    pub by_length: Vec<(u64, u64)>,
}

/// Upper bounds (exclusive, in bytes) of the document-length bands of the over-filtering
/// check; the last band is open.
pub const LENGTH_BANDS: [u64; 3] = [2_000, 8_000, 32_000];

fn empty_bands() -> Vec<(u64, u64)> {
    vec![(0, 0); LENGTH_BANDS.len() + 1]
}

fn length_band(bytes: u64) -> usize {
    LENGTH_BANDS.iter().position(|&b| bytes < b).unwrap_or(LENGTH_BANDS.len())
}

impl GroupStats {
    fn new(categories: usize) -> Self {
        GroupStats {
            docs: 0,
            removals: Removals::default(),
            by_layer: LAYERS.iter().map(|&l| (l, 0)).collect(),
            by_category: vec![0; categories],
            by_length: empty_bands(),
        }
    }

    fn add(&mut self, other: &GroupStats) {
        for (a, b) in self.by_length.iter_mut().zip(&other.by_length) {
            a.0 += b.0;
            a.1 += b.1;
        }
        self.docs += other.docs;
        self.removals.add(&other.removals);
        for (l, n) in &other.by_layer {
            *self.by_layer.entry(*l).or_default() += n;
        }
        add_vec(&mut self.by_category, &other.by_category);
    }
}

fn add_vec(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

fn default_source_cap() -> usize {
    DEFAULT_SOURCE_CAP
}

/// Aggregate statistics of a curation run (or one shard of it).
///
/// Memory is bounded whatever the corpus size: histograms have [`HIST_BINS`] bins, at most
/// [`MAX_EXAMPLES`] examples are kept per category (each a bounded excerpt), error kinds are
/// capped, and at most `source_cap` ([`DEFAULT_SOURCE_CAP`]) sources are tracked by name:
/// documents of further sources are counted together in `other_sources`, and
/// `folded_sources` estimates how many distinct sources were folded there (a HyperLogLog
/// sketch: the exact number would need memory proportional to the corpus). Which sources
/// get a name is first come, first served, in observation (then merge) order.
///
/// Everything is deterministic: maps are ordered, and merging shards in a fixed order gives
/// the same statistics every time. All counts are sums, so merging is associative for them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStats {
    /// Category codes, in taxonomy order.
    pub categories: Vec<String>,
    /// Documents observed (read successfully).
    pub docs: u64,
    /// Documents kept unchanged.
    pub kept: u64,
    /// Documents dropped.
    pub dropped: u64,
    /// Documents redacted.
    pub redacted: u64,
    /// Lines or rows that could not be read.
    pub errors: u64,
    /// Unreadable lines per error kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Bytes of text of the documents observed.
    pub bytes_in: u64,
    /// Bytes removed: whole dropped documents plus the redacted spans.
    pub bytes_removed: u64,
    /// PII matches masked in written text.
    #[serde(default)]
    pub pii_masked: u64,
    /// Per category, in taxonomy order.
    pub by_category: Vec<CategoryStats>,
    /// Removed documents with at least one reason of each layer.
    pub by_layer: BTreeMap<Layer, Removals>,
    /// Removed documents with a reason that has no category (domain blocks).
    pub uncategorized: Removals,
    /// Examples of those (the host instead of a span).
    pub uncategorized_examples: Vec<Example>,
    /// Removed documents with a reason whose category is not in `categories`.
    pub unlisted_categories: Removals,
    /// Removed documents without any reason recorded (a provenance gap; should be 0).
    pub removed_without_reason: u64,
    /// Per source, up to `source_cap` of them ([`NO_SOURCE`] for documents without one).
    pub sources: BTreeMap<String, SourceStats>,
    /// Documents of sources beyond the cap, counted together.
    pub other_sources: SourceStats,
    /// Sketch of the distinct source names folded into `other_sources`.
    #[serde(default)]
    pub folded_sources: DistinctSketch,
    /// The most sources tracked by name.
    #[serde(default = "default_source_cap")]
    pub source_cap: usize,
    /// Documents that mention an identity group (`DocAttributes::identity`).
    pub identity: GroupStats,
    /// Documents that do not.
    pub others: GroupStats,
}

impl RunStats {
    /// Empty statistics for `categories` (codes in taxonomy order).
    pub fn new(categories: &[String]) -> RunStats {
        RunStats::with_source_cap(categories, DEFAULT_SOURCE_CAP)
    }

    /// Empty statistics that track at most `source_cap` sources by name (tests use a small
    /// cap to exercise folding quickly).
    pub(crate) fn with_source_cap(categories: &[String], source_cap: usize) -> RunStats {
        let n = categories.len();
        RunStats {
            categories: categories.to_vec(),
            docs: 0,
            kept: 0,
            dropped: 0,
            redacted: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            bytes_in: 0,
            bytes_removed: 0,
            pii_masked: 0,
            by_category: categories.iter().map(|c| CategoryStats::new(c)).collect(),
            by_layer: LAYERS.iter().map(|&l| (l, Removals::default())).collect(),
            uncategorized: Removals::default(),
            uncategorized_examples: Vec::new(),
            unlisted_categories: Removals::default(),
            removed_without_reason: 0,
            sources: BTreeMap::new(),
            other_sources: SourceStats::new(n),
            folded_sources: DistinctSketch::new(),
            source_cap,
            identity: GroupStats::new(n),
            others: GroupStats::new(n),
        }
    }

    /// Records one document's decision. `text` is the original document text (the spans in
    /// `doc` index into it); it is only read for the examples' excerpts.
    pub fn observe(&mut self, doc: &DocAttributes, text: &str) {
        let ncat = self.categories.len();
        self.docs += 1;
        self.bytes_in += doc.bytes;
        self.pii_masked += u64::from(doc.pii_masked);
        match doc.action {
            Action::Keep => self.kept += 1,
            Action::Drop => {
                self.dropped += 1;
                self.bytes_removed += doc.bytes;
            }
            Action::Redact => {
                self.redacted += 1;
                let removed: u64 = doc
                    .redacted
                    .iter()
                    .map(|s| s.end.saturating_sub(s.start) as u64)
                    .sum();
                self.bytes_removed += removed.min(doc.bytes.max(text.len() as u64));
            }
        }
        let removed = doc.action != Action::Keep;

        // Which categories and layers the reasons name (each counted once per document).
        let mut cats = vec![false; ncat];
        let mut layers = [false; LAYERS.len()];
        let mut uncategorized = false;
        let mut unlisted = false;
        if removed {
            for reason in &doc.reasons {
                layers[layer_index(reason.layer)] = true;
                match &reason.category {
                    None => {
                        if !uncategorized {
                            uncategorized = true;
                            if self.uncategorized_examples.len() < MAX_EXAMPLES {
                                self.uncategorized_examples
                                    .push(Example::capture(doc, reason, text));
                            }
                        }
                    }
                    Some(code) => match self.categories.iter().position(|c| c == code) {
                        Some(i) => {
                            if !cats[i] {
                                cats[i] = true;
                                let cs = &mut self.by_category[i];
                                cs.removals.count(doc.action);
                                if cs.examples.len() < MAX_EXAMPLES {
                                    cs.examples.push(Example::capture(doc, reason, text));
                                }
                            }
                        }
                        None => unlisted = true,
                    },
                }
            }
            if doc.reasons.is_empty() {
                self.removed_without_reason += 1;
            }
            if uncategorized {
                self.uncategorized.count(doc.action);
            }
            if unlisted {
                self.unlisted_categories.count(doc.action);
            }
            for (i, &l) in LAYERS.iter().enumerate() {
                if layers[i] {
                    self.by_layer.entry(l).or_default().count(doc.action);
                }
            }
        }

        // Score histograms.
        for (i, cs) in self.by_category.iter_mut().enumerate() {
            if let Some(&s) = doc.scores.get(i) {
                if s.is_finite() {
                    let bin = ((s.clamp(0.0, 1.0) * HIST_BINS as f32) as usize).min(HIST_BINS - 1);
                    if removed {
                        cs.hist_removed[bin] += 1;
                    } else {
                        cs.hist_kept[bin] += 1;
                    }
                }
            }
        }

        // Per source.
        let name = truncate(doc.source.as_deref().unwrap_or(NO_SOURCE), MAX_NAME_BYTES);
        let entry = if let Some(e) = self.sources.get_mut(name) {
            e
        } else if self.sources.len() < self.source_cap {
            self.sources
                .entry(name.to_owned())
                .or_insert_with(|| SourceStats::new(ncat))
        } else {
            self.folded_sources.insert(name);
            &mut self.other_sources
        };
        entry.docs += 1;
        entry.bytes += doc.bytes;
        entry.removals.count(doc.action);
        for (n, &c) in entry.by_category.iter_mut().zip(&cats) {
            *n += u64::from(c);
        }

        // Over-filtering groups.
        let group = if doc.identity {
            &mut self.identity
        } else {
            &mut self.others
        };
        group.docs += 1;
        if group.by_length.len() != LENGTH_BANDS.len() + 1 {
            group.by_length = empty_bands();
        }
        let band = &mut group.by_length[length_band(doc.bytes)];
        band.0 += 1;
        band.1 += u64::from(removed);
        if removed {
            group.removals.count(doc.action);
            for (i, &l) in LAYERS.iter().enumerate() {
                if layers[i] {
                    *group.by_layer.entry(l).or_default() += 1;
                }
            }
            for (n, &c) in group.by_category.iter_mut().zip(&cats) {
                *n += u64::from(c);
            }
        }
    }

    /// Records a line or row that could not be read; `kind` is a short stable string such
    /// as `"invalid_json"`, `"missing_text"`, `"invalid_utf8"`, `"line_too_long"`,
    /// `"not_an_object"`, `"text_not_string"` or `"io"`.
    pub fn observe_error(&mut self, kind: &str) {
        self.errors += 1;
        self.count_error_kind(kind, 1);
    }

    fn count_error_kind(&mut self, kind: &str, n: u64) {
        let kind = truncate(kind, MAX_NAME_BYTES);
        if let Some(c) = self.error_kinds.get_mut(kind) {
            *c += n;
        } else if self.error_kinds.len() < MAX_ERROR_KINDS {
            self.error_kinds.insert(kind.to_owned(), n);
        } else {
            *self.error_kinds.entry("other".to_owned()).or_default() += n;
        }
    }

    /// Adds `other` (another shard or input file of the same run). Shards should be merged
    /// in a fixed order (for example by shard index): all counts are sums and do not depend
    /// on the order, but examples are appended and then truncated to [`MAX_EXAMPLES`], and
    /// sources beyond the cap are folded first come, first served, so those depend on it.
    ///
    /// Fails, changing nothing, if the category lists differ or either side is
    /// inconsistent (see [`RunStats::validate`]).
    pub fn merge(&mut self, other: &RunStats) -> Result<(), AuditError> {
        if self.categories != other.categories {
            return Err(AuditError::CategoryMismatch {
                ours: self.categories.clone(),
                theirs: other.categories.clone(),
            });
        }
        self.validate()?;
        other.validate()?;
        self.docs += other.docs;
        self.kept += other.kept;
        self.dropped += other.dropped;
        self.redacted += other.redacted;
        self.errors += other.errors;
        for (k, n) in &other.error_kinds {
            self.count_error_kind(k, *n);
        }
        self.bytes_in += other.bytes_in;
        self.bytes_removed += other.bytes_removed;
        self.pii_masked += other.pii_masked;
        for (a, b) in self.by_category.iter_mut().zip(&other.by_category) {
            a.removals.add(&b.removals);
            add_vec(&mut a.hist_kept, &b.hist_kept);
            add_vec(&mut a.hist_removed, &b.hist_removed);
            append_examples(&mut a.examples, &b.examples);
        }
        for (l, r) in &other.by_layer {
            self.by_layer.entry(*l).or_default().add(r);
        }
        self.uncategorized.add(&other.uncategorized);
        append_examples(
            &mut self.uncategorized_examples,
            &other.uncategorized_examples,
        );
        self.unlisted_categories.add(&other.unlisted_categories);
        self.removed_without_reason += other.removed_without_reason;
        for (name, s) in &other.sources {
            if let Some(e) = self.sources.get_mut(name) {
                e.add(s);
            } else if self.sources.len() < self.source_cap {
                self.sources.insert(name.clone(), s.clone());
            } else {
                self.folded_sources.insert(name);
                self.other_sources.add(s);
            }
        }
        self.other_sources.add(&other.other_sources);
        self.folded_sources.merge(&other.folded_sources);
        self.identity.add(&other.identity);
        self.others.add(&other.others);
        Ok(())
    }

    /// Checks that the statistics fit their category list (vector lengths, histogram bins):
    /// statistics read from a file may have been truncated or edited.
    pub fn validate(&self) -> Result<(), AuditError> {
        let n = self.categories.len();
        let bad = |what: String| Err(AuditError::Inconsistent(what));
        if self.by_category.len() != n {
            return bad(format!(
                "{} category entries for {n} categories",
                self.by_category.len()
            ));
        }
        for (cs, code) in self.by_category.iter().zip(&self.categories) {
            if &cs.code != code {
                return bad(format!(
                    "category entry {:?} where {code:?} was expected",
                    cs.code
                ));
            }
            if cs.hist_kept.len() != HIST_BINS || cs.hist_removed.len() != HIST_BINS {
                return bad(format!(
                    "histogram of {code} does not have {HIST_BINS} bins"
                ));
            }
        }
        for (name, s) in self.sources.iter().chain(std::iter::once((
            &OTHER_SOURCES.to_owned(),
            &self.other_sources,
        ))) {
            if s.by_category.len() != n {
                return bad(format!(
                    "source {name:?} has {} categories",
                    s.by_category.len()
                ));
            }
        }
        for (name, g) in [("identity", &self.identity), ("others", &self.others)] {
            if g.by_category.len() != n {
                return bad(format!(
                    "group {name} has {} categories",
                    g.by_category.len()
                ));
            }
        }
        if !self.folded_sources.is_valid() {
            return bad("folded-sources sketch has the wrong size".to_owned());
        }
        Ok(())
    }

    /// Reads statistics from JSON (as written by `serde_json`) and validates them.
    pub fn from_json(json: &str) -> Result<RunStats, AuditError> {
        let stats: RunStats = serde_json::from_str(json)?;
        stats.validate()?;
        Ok(stats)
    }

    /// Documents observed.
    pub fn docs(&self) -> u64 {
        self.docs
    }
    /// Documents kept.
    pub fn kept(&self) -> u64 {
        self.kept
    }
    /// Documents dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    /// Documents redacted.
    pub fn redacted(&self) -> u64 {
        self.redacted
    }
    /// Lines or rows that could not be read.
    pub fn errors(&self) -> u64 {
        self.errors
    }
    /// Dropped plus redacted documents.
    pub fn removed(&self) -> u64 {
        self.dropped + self.redacted
    }

    /// Estimated number of distinct sources folded into [`OTHER_SOURCES`].
    pub fn folded_sources_estimate(&self) -> u64 {
        self.folded_sources.estimate()
    }

    /// The named sources with the most removals (dropped plus redacted), at most `n`,
    /// ties broken by name. Sources without removals are not listed.
    pub fn top_sources(&self, n: usize) -> Vec<(&str, &SourceStats)> {
        let mut v: Vec<(&str, &SourceStats)> = self
            .sources
            .iter()
            .filter(|(_, s)| s.removals.removed() > 0)
            .map(|(k, s)| (k.as_str(), s))
            .collect();
        v.sort_by(|a, b| {
            b.1.removals
                .removed()
                .cmp(&a.1.removals.removed())
                .then_with(|| a.0.cmp(b.0))
        });
        v.truncate(n);
        v
    }

    /// The over-filtering check: removal rates of documents that mention an identity group
    /// against the others, overall, per layer and per category.
    pub fn over_filtering(&self) -> OverFiltering {
        let (id, ot) = (&self.identity, &self.others);
        OverFiltering {
            overall: LayerComparison::new(
                "all layers",
                id.removals.removed(),
                id.docs,
                ot.removals.removed(),
                ot.docs,
            ),
            by_layer: LAYERS
                .iter()
                .map(|l| {
                    LayerComparison::new(
                        l.as_str(),
                        id.by_layer.get(l).copied().unwrap_or(0),
                        id.docs,
                        ot.by_layer.get(l).copied().unwrap_or(0),
                        ot.docs,
                    )
                })
                .collect(),
            by_category: self
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    LayerComparison::new(c, id.by_category[i], id.docs, ot.by_category[i], ot.docs)
                })
                .collect(),
            by_length: (0..=LENGTH_BANDS.len())
                .map(|i| {
                    let label = match i {
                        0 => format!("< {} KB", LENGTH_BANDS[0] / 1000),
                        i if i == LENGTH_BANDS.len() => format!(">= {} KB", LENGTH_BANDS[i - 1] / 1000),
                        i => format!("{}-{} KB", LENGTH_BANDS[i - 1] / 1000, LENGTH_BANDS[i] / 1000),
                    };
                    let (a, b) = (id.by_length.get(i).copied().unwrap_or((0, 0)), ot.by_length.get(i).copied().unwrap_or((0, 0)));
                    LayerComparison::new(&label, a.1, a.0, b.1, b.0)
                })
                .collect(),
        }
    }
}

fn layer_index(l: Layer) -> usize {
    match l {
        Layer::Domain => 0,
        Layer::Rules => 1,
        Layer::Fast => 2,
        Layer::Encoder => 3,
    }
}

fn append_examples(a: &mut Vec<Example>, b: &[Example]) {
    let room = MAX_EXAMPLES.saturating_sub(a.len());
    a.extend(b.iter().take(room).cloned());
}

/// The Wilson score interval at 95% confidence for `successes` out of `n` trials, or `None`
/// when `n` is 0. Unlike the normal approximation it stays inside `[0, 1]` and behaves at
/// rates near 0, which is where removal rates live.
pub fn wilson_interval(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = n as f64;
    let p = successes.min(n as u64) as f64 / n;
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and n successes the bounds are exactly 0 and 1 (rounding would give 1 - 1e-16).
    let lo = if successes == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if p >= 1.0 {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some((lo, hi))
}

/// A removal rate of one group, with its Wilson 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupRate {
    /// Documents in the group.
    pub docs: u64,
    /// Of those, removed (by the layer or category compared).
    pub removed: u64,
    /// `removed / docs`, `None` for an empty group.
    pub rate: Option<f64>,
    /// Wilson 95% interval of the rate.
    pub interval: Option<(f64, f64)>,
}

impl GroupRate {
    fn new(removed: u64, docs: u64) -> Self {
        GroupRate {
            docs,
            removed,
            rate: (docs > 0).then(|| removed as f64 / docs as f64),
            interval: wilson_interval(removed, docs),
        }
    }
}

/// The verdict of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disparity {
    /// Identity-mention documents are removed more than [`DISPARITY_RATIO`] times as often
    /// and the 95% intervals do not overlap.
    Warning,
    /// No disparity detected at this sample size.
    NotDetected,
    /// One of the groups is empty.
    NoData,
}

/// Identity-mention documents against the others for one layer, category, or overall.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerComparison {
    /// `"all layers"`, a layer name or a category code.
    pub name: String,
    /// Documents mentioning an identity group.
    pub identity: GroupRate,
    /// The other documents.
    pub others: GroupRate,
    /// Identity rate over other rate: infinite when only the other rate is 0, `None` when
    /// both are 0 or a group is empty.
    pub ratio: Option<f64>,
    /// The verdict.
    pub disparity: Disparity,
}

impl LayerComparison {
    fn new(name: &str, id_removed: u64, id_docs: u64, ot_removed: u64, ot_docs: u64) -> Self {
        let identity = GroupRate::new(id_removed, id_docs);
        let others = GroupRate::new(ot_removed, ot_docs);
        let (ratio, disparity) = match (identity.rate, others.rate) {
            (Some(a), Some(b)) => {
                let ratio = if b > 0.0 {
                    Some(a / b)
                } else if a > 0.0 {
                    Some(f64::INFINITY)
                } else {
                    None
                };
                let separated = match (identity.interval, others.interval) {
                    (Some((lo, _)), Some((_, hi))) => lo > hi,
                    _ => false,
                };
                let d = if a > DISPARITY_RATIO * b && separated {
                    Disparity::Warning
                } else {
                    Disparity::NotDetected
                };
                (ratio, d)
            }
            _ => (None, Disparity::NoData),
        };
        LayerComparison {
            name: name.to_owned(),
            identity,
            others,
            ratio,
            disparity,
        }
    }
}

/// The over-filtering check (see [`RunStats::over_filtering`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OverFiltering {
    /// Removal by any layer.
    pub overall: LayerComparison,
    /// Removal with a reason of each layer.
    pub by_layer: Vec<LayerComparison>,
    /// Removal with a reason of each category.
    pub by_category: Vec<LayerComparison>,
    /// Removal by any layer, within each document-length band ([`LENGTH_BANDS`]).
    pub by_length: Vec<LayerComparison>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Reason, Span};

    fn cats() -> Vec<String> {
        ["S", "H", "V"].iter().map(|s| s.to_string()).collect()
    }

    fn doc(id: &str, source: Option<&str>, action: Action, reasons: Vec<Reason>) -> DocAttributes {
        DocAttributes {
            id: id.to_owned(),
            line: 1,
            byte_offset: None,
            source: source.map(str::to_owned),
            bytes: 10,
            action,
            reasons,
            scores: vec![0.1, 0.9, 0.5],
            chunks: Vec::new(),
            rule_hits: Vec::new(),
            redacted: Vec::new(),
            identity: false,
            pii_masked: 0,
            rule_hits_omitted: 0,
        }
    }

    fn reason(layer: Layer, cat: Option<&str>) -> Reason {
        Reason {
            layer,
            category: cat.map(str::to_owned),
            score: Some(0.9),
            threshold: Some(0.5),
            span: Some(Span::new(0, 3)),
            detail: None,
        }
    }

    #[test]
    fn length_bands_separate_long_and_short_documents() {
        let mut st = RunStats::new(&cats());
        let text = "x".repeat(40_000);
        let mut long = doc("a", None, Action::Redact, vec![reason(Layer::Fast, Some("H"))]);
        long.bytes = 40_000;
        long.identity = true;
        st.observe(&long, &text);
        let mut short = doc("b", None, Action::Keep, vec![]);
        short.bytes = 500;
        st.observe(&short, "short text");
        assert_eq!(st.identity.by_length, vec![(0, 0), (0, 0), (0, 0), (1, 1)]);
        assert_eq!(st.others.by_length, vec![(1, 0), (0, 0), (0, 0), (0, 0)]);
        let of = st.over_filtering();
        assert_eq!(of.by_length.len(), 4);
        assert_eq!(of.by_length[3].name, ">= 32 KB");
        let md = crate::render_markdown(&st, &crate::ReportMeta::default());
        assert!(md.contains("By document length") && md.contains("2-8 KB"), "{md}");
    }

    #[test]
    fn source_folding_cap() {
        let mut s = RunStats::with_source_cap(&cats(), 3);
        for i in 0..10 {
            let d = doc(
                &i.to_string(),
                Some(&format!("src{i}")),
                Action::Drop,
                vec![reason(Layer::Fast, Some("H"))],
            );
            s.observe(&d, "bad text");
            s.observe(&d, "bad text"); // a second doc of the same source
        }
        assert_eq!(s.sources.len(), 3);
        assert_eq!(
            s.sources.keys().collect::<Vec<_>>(),
            ["src0", "src1", "src2"]
        );
        assert_eq!(s.other_sources.docs, 14);
        assert_eq!(s.other_sources.by_category, vec![0, 14, 0]);
        assert_eq!(s.folded_sources_estimate(), 7);
        let total: u64 = s.sources.values().map(|x| x.docs).sum::<u64>() + s.other_sources.docs;
        assert_eq!(total, s.docs());

        // Merging respects the cap too.
        let mut t = RunStats::with_source_cap(&cats(), 3);
        t.observe(&doc("x", Some("zzz"), Action::Keep, vec![]), "fine");
        t.merge(&s).unwrap();
        assert_eq!(t.sources.len(), 3);
        assert!(t.sources.contains_key("zzz"));
        assert_eq!(t.docs(), 21);
        let total: u64 = t.sources.values().map(|x| x.docs).sum::<u64>() + t.other_sources.docs;
        assert_eq!(total, 21);
        assert_eq!(t.folded_sources_estimate(), 8);
    }

    #[test]
    fn layers_and_categories_count_once_per_doc() {
        let mut s = RunStats::new(&cats());
        let d = doc(
            "a",
            None,
            Action::Drop,
            vec![
                reason(Layer::Fast, Some("H")),
                reason(Layer::Fast, Some("H")),
                reason(Layer::Rules, Some("V")),
                reason(Layer::Domain, None),
                reason(Layer::Rules, Some("XX")),
            ],
        );
        s.observe(&d, "abcdef");
        assert_eq!(s.by_category[1].removals.dropped, 1);
        assert_eq!(s.by_category[2].removals.dropped, 1);
        assert_eq!(s.by_category[0].removals.removed(), 0);
        assert_eq!(s.by_category[1].examples.len(), 1);
        assert_eq!(s.by_layer[&Layer::Fast].dropped, 1);
        assert_eq!(s.by_layer[&Layer::Rules].dropped, 1);
        assert_eq!(s.by_layer[&Layer::Domain].dropped, 1);
        assert_eq!(s.by_layer[&Layer::Encoder].removed(), 0);
        assert_eq!(s.uncategorized.dropped, 1);
        assert_eq!(s.unlisted_categories.dropped, 1);
        assert_eq!(s.sources[NO_SOURCE].by_category, vec![0, 1, 1]);
        // Removed docs go to the removed histogram, at their score's bin.
        assert_eq!(s.by_category[1].hist_removed[18], 1);
        assert_eq!(s.by_category[0].hist_removed[2], 1);
        assert_eq!(s.by_category[2].hist_removed[10], 1);
        assert_eq!(s.by_category[0].hist_kept.iter().sum::<u64>(), 0);
    }

    #[test]
    fn histogram_edges() {
        let mut s = RunStats::new(&cats());
        let mut d = doc("a", None, Action::Keep, vec![]);
        d.scores = vec![1.0, 0.0, f32::NAN];
        s.observe(&d, "");
        d.scores = vec![2.0, -1.0]; // out of range is clamped; a missing score is skipped
        s.observe(&d, "");
        assert_eq!(s.by_category[0].hist_kept[HIST_BINS - 1], 2);
        assert_eq!(s.by_category[1].hist_kept[0], 2);
        assert_eq!(s.by_category[2].hist_kept.iter().sum::<u64>(), 0);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut s = RunStats::new(&cats());
        for i in 0..100 {
            s.observe_error(&format!("kind{i:03}"));
        }
        assert_eq!(s.errors(), 100);
        assert_eq!(s.error_kinds.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(s.error_kinds["other"], 100 - MAX_ERROR_KINDS as u64);
    }

    #[test]
    fn merge_rejects_inconsistent_stats() {
        let mut a = RunStats::new(&cats());
        let mut b = RunStats::new(&cats());
        b.by_category[0].hist_kept.pop();
        assert!(matches!(a.merge(&b), Err(AuditError::Inconsistent(_))));
        assert_eq!(a, RunStats::new(&cats()));
    }

    #[test]
    fn wilson_edge_cases() {
        assert_eq!(wilson_interval(0, 0), None);
        let (lo, hi) = wilson_interval(0, 10).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.277_533).abs() < 1e-5, "{hi}");
        let (lo, hi) = wilson_interval(10, 10).unwrap();
        assert!((lo - 0.722_467).abs() < 1e-5, "{lo}");
        assert_eq!(hi, 1.0);
    }
}
