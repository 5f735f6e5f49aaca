//! The unified training set: load every selected dataset, drop held-out texts and exact
//! duplicates, and split deterministically into train and dev.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use warden_core::{Label, Record, Taxonomy};

use crate::decontam::{decontam_normalize, Decontaminator};
use crate::load::{load_dataset, LoadedDataset};
use crate::spec::{load_specs, DatasetSpec};
use crate::{default_data_root, default_spec_dir, DataError, Result};

/// What to build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOptions {
    /// Root the spec file paths are relative to (`shared/data`).
    pub data_root: PathBuf,
    /// Directory of dataset spec TOML files.
    pub spec_dir: PathBuf,
    /// Only these datasets (by name; may name `default = false` specs). `None`: every
    /// default spec.
    pub datasets: Option<Vec<String>>,
    /// Leave out these datasets (by name) from whatever `datasets` selects. Each is listed
    /// in the datasheet's excluded sources.
    pub exclude_datasets: Vec<String>,
    /// Leave out datasets whose spec says `research_only = true`.
    pub exclude_research_only: bool,
    /// Fraction of texts (by normalised-text hash) that go to dev.
    pub dev_fraction: f64,
    /// Held-out hash list. `None`: `<data_root>/heldout-decontamination/normalized_text_sha256.txt.gz`,
    /// which must exist.
    pub decontamination: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            data_root: default_data_root(),
            spec_dir: default_spec_dir(),
            datasets: None,
            exclude_datasets: Vec::new(),
            exclude_research_only: false,
            dev_fraction: 0.2,
            decontamination: None,
        }
    }
}

impl BuildOptions {
    pub fn decontamination_path(&self) -> PathBuf {
        self.decontamination.clone().unwrap_or_else(|| crate::decontamination_list(&self.data_root))
    }
}

/// Label counts for one category. `positive`/`negative` use the hard label (target ≥ 0.5
/// is positive); `soft` counts how many of those known labels were soft values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCounts {
    pub code: String,
    pub positive: usize,
    pub negative: usize,
    pub soft: usize,
    pub unknown: usize,
}

/// Per-category counts over a set of records, in taxonomy order.
pub fn count_labels<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    taxonomy: &Taxonomy,
) -> Vec<CategoryCounts> {
    let mut out: Vec<CategoryCounts> = taxonomy
        .codes()
        .map(|c| CategoryCounts { code: c.to_owned(), ..Default::default() })
        .collect();
    for r in records {
        for (c, l) in out.iter_mut().zip(&r.labels) {
            match l.hard() {
                None => c.unknown += 1,
                Some(true) => c.positive += 1,
                Some(false) => c.negative += 1,
            }
            if matches!(l, Label::Soft(_)) {
                c.soft += 1;
            }
        }
    }
    out
}

/// What happened to one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    pub name: String,
    pub license: String,
    pub research_only: bool,
    pub priority: i32,
    #[serde(default)]
    pub description: String,
    /// Rows produced by the spec (after explode / group / filter), including empty texts.
    pub rows: usize,
    pub dropped_empty: usize,
    /// Rows without any known label (only for specs with `drop_unlabelled`).
    #[serde(default)]
    pub dropped_unlabelled: usize,
    pub dropped_decontaminated: usize,
    /// Exact duplicates (same normalised text) of a kept row of the same source.
    pub dropped_duplicate_same_source: usize,
    /// Exact duplicates of a kept row of another (higher-priority) source.
    pub dropped_duplicate_other_source: usize,
    pub kept: usize,
    pub train: usize,
    pub dev: usize,
    /// Unknown labels of kept rows filled in from their dropped duplicates.
    pub labels_filled_from_duplicates: usize,
    /// Dropped duplicates whose known hard label disagreed with the kept row's.
    pub duplicates_with_conflicting_labels: usize,
    /// Label counts over the loaded rows (before decontamination and dedup).
    pub loaded_labels: Vec<CategoryCounts>,
    /// Label counts over the kept rows (train + dev).
    pub kept_labels: Vec<CategoryCounts>,
    #[serde(default)]
    pub notes: Vec<String>,
}

impl SourceStats {
    pub fn loaded(&self) -> usize {
        self.rows - self.dropped_empty - self.dropped_unlabelled
    }

    pub fn dropped_duplicate(&self) -> usize {
        self.dropped_duplicate_same_source + self.dropped_duplicate_other_source
    }
}

/// A source that was selected by name or default but left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedSource {
    pub name: String,
    pub license: String,
    pub reason: String,
}

/// Everything a datasheet needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataStats {
    pub taxonomy: String,
    pub codes: Vec<String>,
    pub dev_fraction: f64,
    pub decontamination_list: String,
    pub decontamination_hashes: usize,
    /// In name order.
    pub sources: Vec<SourceStats>,
    #[serde(default)]
    pub excluded: Vec<ExcludedSource>,
    pub train_rows: usize,
    pub dev_rows: usize,
    #[serde(default)]
    pub train_sha256: Option<String>,
    #[serde(default)]
    pub dev_sha256: Option<String>,
}

impl DataStats {
    pub fn source(&self, name: &str) -> Option<&SourceStats> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn total_decontaminated(&self) -> usize {
        self.sources.iter().map(|s| s.dropped_decontaminated).sum()
    }

    pub fn total_duplicates(&self) -> usize {
        self.sources.iter().map(|s| s.dropped_duplicate()).sum()
    }

    pub fn total_empty(&self) -> usize {
        self.sources.iter().map(|s| s.dropped_empty).sum()
    }
}

/// The built data set.
#[derive(Debug, Clone)]
pub struct BuiltData {
    /// Sorted by id.
    pub train: Vec<Record>,
    /// Sorted by id.
    pub dev: Vec<Record>,
    pub stats: DataStats,
}

/// Which specs a build uses, and which it leaves out (with why).
pub fn select_specs(
    specs: Vec<DatasetSpec>,
    opts: &BuildOptions,
) -> Result<(Vec<DatasetSpec>, Vec<ExcludedSource>)> {
    // Every name given must be a spec: a typo must not silently train on something else.
    for n in opts.datasets.iter().flatten().chain(&opts.exclude_datasets) {
        if !specs.iter().any(|s| &s.name == n) {
            return Err(DataError::UnknownDataset {
                name: n.clone(),
                known: specs.iter().map(|s| s.name.clone()).collect(),
            });
        }
    }
    let mut chosen = Vec::new();
    let mut excluded = Vec::new();
    for s in specs {
        let wanted = match &opts.datasets {
            Some(names) => names.contains(&s.name),
            None => s.default,
        };
        if !wanted {
            continue;
        }
        if opts.exclude_datasets.contains(&s.name) {
            excluded.push(ExcludedSource {
                name: s.name.clone(),
                license: s.license.clone(),
                reason: "excluded by option".into(),
            });
            continue;
        }
        if opts.exclude_research_only && s.research_only {
            excluded.push(ExcludedSource {
                name: s.name.clone(),
                license: s.license.clone(),
                reason: "research-only (excluded by option)".into(),
            });
            continue;
        }
        chosen.push(s);
    }
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((chosen, excluded))
}

/// Loads the specs and the held-out list named by `opts` and builds the data set.
pub fn build(opts: &BuildOptions, taxonomy: &Taxonomy) -> Result<BuiltData> {
    if !(0.0..=1.0).contains(&opts.dev_fraction) {
        return Err(DataError::Invalid(format!("dev_fraction {} is outside [0, 1]", opts.dev_fraction)));
    }
    let specs = load_specs(&opts.spec_dir)?;
    let (specs, excluded) = select_specs(specs, opts)?;
    let dpath = opts.decontamination_path();
    let decon = Decontaminator::load(&dpath)?;
    let mut built = build_from_specs(&specs, opts, taxonomy, &decon)?;
    built.stats.excluded = excluded;
    built.stats.decontamination_list = dpath.display().to_string();
    Ok(built)
}

/// Loads the given datasets (in parallel).
pub fn load_all(
    specs: &[DatasetSpec],
    opts: &BuildOptions,
    taxonomy: &Taxonomy,
) -> Result<Vec<LoadedDataset>> {
    specs.par_iter().map(|s| load_dataset(s, &opts.data_root, taxonomy)).collect()
}

/// Is this text in dev? The first 8 bytes of its normalised-text SHA-256, big-endian,
/// modulo 10,000, below `dev_fraction` × 10,000.
pub fn is_dev(hash: &[u8; 32], dev_fraction: f64) -> bool {
    let x = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
    x % 10_000 < (dev_fraction * 10_000.0).round() as u64
}

/// Child-positive-over-known-lower-parent check.
fn consistent(labels: &[Label], taxonomy: &Taxonomy) -> bool {
    for (i, l) in labels.iter().enumerate() {
        let Some(v) = l.target() else { continue };
        if v <= 0.0 {
            continue;
        }
        let mut at = i;
        while let Some(p) = taxonomy.parent_of(at) {
            if let Some(pv) = labels[p].target() {
                if pv < v {
                    return false;
                }
            }
            at = p;
        }
    }
    true
}

/// Builds from specs already selected, with a given held-out list.
pub fn build_from_specs(
    specs: &[DatasetSpec],
    opts: &BuildOptions,
    taxonomy: &Taxonomy,
    decon: &Decontaminator,
) -> Result<BuiltData> {
    let loaded = load_all(specs, opts, taxonomy)?;

    let mut stats: Vec<SourceStats> = specs
        .iter()
        .zip(&loaded)
        .map(|(s, l)| SourceStats {
            name: s.name.clone(),
            license: s.license.clone(),
            research_only: s.research_only,
            priority: s.priority,
            description: s.description.clone(),
            rows: l.records.len() + l.dropped_empty + l.dropped_unlabelled,
            dropped_empty: l.dropped_empty,
            dropped_unlabelled: l.dropped_unlabelled,
            loaded_labels: count_labels(&l.records, taxonomy),
            notes: l.notes.clone(),
            ..Default::default()
        })
        .collect();

    // Flatten, remembering (source index, load order).
    struct Item {
        src: usize,
        rec: Record,
        hash: [u8; 32],
        key: [u8; 32],
    }
    let flat: Vec<(usize, Record)> = loaded
        .into_iter()
        .enumerate()
        .flat_map(|(si, l)| l.records.into_iter().map(move |r| (si, r)))
        .collect();
    let items: Vec<Item> = flat
        .into_par_iter()
        .map(|(src, rec)| {
            let norm = decontam_normalize(&rec.text);
            let hash: [u8; 32] = Sha256::digest(norm.as_bytes()).into();
            // Texts that normalise to nothing are only duplicates when identical.
            let key = if norm.is_empty() {
                let mut h = Sha256::new();
                h.update(b"\0raw\0");
                h.update(rec.text.as_bytes());
                h.finalize().into()
            } else {
                hash
            };
            Item { src, rec, hash, key }
        })
        .collect();

    // Decontamination.
    let mut kept: Vec<Item> = Vec::with_capacity(items.len());
    for it in items {
        if decon.contains_hash(&it.hash) {
            stats[it.src].dropped_decontaminated += 1;
        } else {
            kept.push(it);
        }
    }

    // Exact duplicates: group by key; the winner has the highest priority, then comes
    // first (sources in name order, rows in load order).
    let mut groups: HashMap<[u8; 32], Vec<usize>> = HashMap::with_capacity(kept.len());
    let mut group_order: Vec<[u8; 32]> = Vec::new();
    for (i, it) in kept.iter().enumerate() {
        groups
            .entry(it.key)
            .or_insert_with(|| {
                group_order.push(it.key);
                Vec::new()
            })
            .push(i);
    }
    let mut winners: Vec<usize> = Vec::with_capacity(groups.len());
    let mut merges: Vec<(usize, Vec<usize>)> = Vec::new();
    for key in &group_order {
        let members = &groups[key];
        if members.len() == 1 {
            winners.push(members[0]);
            continue;
        }
        let mut sorted = members.clone();
        sorted.sort_by_key(|&i| (Reverse(specs[kept[i].src].priority), kept[i].src, i));
        winners.push(sorted[0]);
        merges.push((sorted[0], sorted[1..].to_vec()));
    }
    let mut keep_flag = vec![false; kept.len()];
    for &w in &winners {
        keep_flag[w] = true;
    }
    for (w, losers) in &merges {
        let wsrc = kept[*w].src;
        let mut labels = kept[*w].rec.labels.clone();
        let mut filled = Vec::new();
        let mut other_sources = BTreeSet::new();
        for &l in losers {
            let lsrc = kept[l].src;
            if lsrc == wsrc {
                stats[lsrc].dropped_duplicate_same_source += 1;
            } else {
                stats[lsrc].dropped_duplicate_other_source += 1;
                other_sources.insert(specs[lsrc].name.clone());
            }
            let mut conflict = false;
            for (ci, ll) in kept[l].rec.labels.iter().enumerate() {
                if !ll.is_known() {
                    continue;
                }
                match labels[ci].hard() {
                    Some(h) => conflict |= Some(h) != ll.hard(),
                    None => {
                        let before = labels[ci];
                        labels[ci] = *ll;
                        if consistent(&labels, taxonomy) {
                            filled.push(taxonomy.categories()[ci].code.clone());
                        } else {
                            labels[ci] = before;
                            conflict = true;
                        }
                    }
                }
            }
            if conflict {
                stats[lsrc].duplicates_with_conflicting_labels += 1;
            }
        }
        taxonomy.enforce_labels(&mut labels);
        stats[wsrc].labels_filled_from_duplicates += filled.len();
        let rec = &mut kept[*w].rec;
        rec.labels = labels;
        rec.meta.insert("duplicates".into(), Json::from(losers.len()));
        if !other_sources.is_empty() {
            rec.meta.insert(
                "duplicate_sources".into(),
                Json::Array(other_sources.into_iter().map(Json::String).collect()),
            );
        }
        if !filled.is_empty() {
            filled.sort();
            filled.dedup();
            rec.meta.insert(
                "labels_from_duplicates".into(),
                Json::Array(filled.into_iter().map(Json::String).collect()),
            );
        }
    }

    // Split.
    let mut train = Vec::new();
    let mut dev = Vec::new();
    let mut kept_by_src: Vec<Vec<usize>> = vec![Vec::new(); specs.len()];
    for (i, it) in kept.into_iter().enumerate() {
        if !keep_flag[i] {
            continue;
        }
        let d = is_dev(&it.hash, opts.dev_fraction);
        let s = &mut stats[it.src];
        s.kept += 1;
        if d {
            s.dev += 1;
            kept_by_src[it.src].push(dev.len() << 1 | 1);
            dev.push(it.rec);
        } else {
            s.train += 1;
            kept_by_src[it.src].push(train.len() << 1);
            train.push(it.rec);
        }
    }
    for (si, idx) in kept_by_src.iter().enumerate() {
        let recs = idx.iter().map(|&k| if k & 1 == 1 { &dev[k >> 1] } else { &train[k >> 1] });
        stats[si].kept_labels = count_labels(recs, taxonomy);
    }
    train.par_sort_by(|a, b| a.id.cmp(&b.id));
    dev.par_sort_by(|a, b| a.id.cmp(&b.id));

    let stats = DataStats {
        taxonomy: taxonomy.name().to_owned(),
        codes: taxonomy.codes().map(str::to_owned).collect(),
        dev_fraction: opts.dev_fraction,
        decontamination_list: String::new(),
        decontamination_hashes: decon.len(),
        sources: stats,
        excluded: Vec::new(),
        train_rows: train.len(),
        dev_rows: dev.len(),
        train_sha256: None,
        dev_sha256: None,
    };
    Ok(BuiltData { train, dev, stats })
}
