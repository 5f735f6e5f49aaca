//! `warden al`: active learning — select the next batch to annotate from an unlabelled
//! pool, and simulate the paper's active-learning experiment (Table 4 / Figure 2) with the
//! hidden labels of the public training split as the oracle.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use warden_al::{Fractions, Pipeline, PoolItem, RateCount, SelectConfig, Selection};
use warden_core::{Classifier, Record, Taxonomy};
use warden_fast::{FastModel, TrainConfig, TrainExample};

use crate::models;

#[derive(Subcommand)]
pub enum AlCommand {
    /// Score an unlabelled JSONL pool and pick the batch most worth annotating (random,
    /// above-threshold, uncertainty and medium-certainty pipelines; de-duplicated,
    /// re-weighted by a metadata field). Writes one JSON line per selected text.
    Select(SelectArgs),
    /// The paper's active-learning experiment with a simulated oracle: train on a small
    /// seed set, then rounds of active vs random selection from the (label-hidden) training
    /// split, retraining after each; reports positive rates and dev AUPRC per round.
    Simulate(SimulateArgs),
}

/// Options of the selection strategy, shared by `select` and `simulate`.
#[derive(Args, Clone)]
pub struct StrategyArgs {
    /// Pipeline shares, PIPELINE=FRACTION comma-separated (normalised to sum to 1).
    /// Pipelines: random, above_threshold, uncertainty, medium_certainty.
    #[arg(long, default_value = "random=0.3,above_threshold=0.3,uncertainty=0.4", value_parser = parse_fractions)]
    pub fractions: Fractions,
    /// Share of the medium-certainty pipeline (random among scores in --medium-band);
    /// overrides its value in --fractions.
    #[arg(long)]
    pub medium_certainty: Option<f64>,
    /// Score band of the medium-certainty pipeline, LO,HI (inclusive).
    #[arg(long, default_value = "0.3,0.7", value_parser = parse_band)]
    pub medium_band: (f32, f32),
    /// Above-threshold pipeline threshold for a category, CODE=X (repeatable).
    #[arg(long = "threshold", value_parser = parse_threshold)]
    pub thresholds: Vec<(String, f32)>,
    /// Suppress near-duplicates: a candidate whose character-shingle Jaccard similarity to
    /// one already taken exceeds this is replaced by the next one (0.8 without a value).
    #[arg(long, num_args = 0..=1, default_missing_value = "0.8")]
    pub diversity: Option<f64>,
    /// Each pipeline contributes this many times its quota as candidates before re-weighting.
    #[arg(long, default_value_t = 3.0)]
    pub oversample: f64,
}

#[derive(Args)]
pub struct SelectArgs {
    /// Unlabelled pool: JSONL rows `{"id"?, "text", "meta"?: {...}, ...}`.
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    pub pool: Option<PathBuf>,
    /// Select from the labeling store instead: its samples not yet in any batch are the
    /// pool, the selection becomes batch --batch, and the model's scores are stored with
    /// the model version. (To select from a file into the store, `warden label import` it
    /// first.)
    #[arg(long, requires = "batch")]
    pub store: Option<PathBuf>,
    /// Name of the batch to create in --store.
    #[arg(long)]
    pub batch: Option<String>,
    /// Model directory (default: $WARDEN_MODEL, else the embedded default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Samples to select.
    #[arg(long, default_value_t = 2000)]
    pub size: usize,
    #[command(flatten)]
    pub strategy: StrategyArgs,
    /// Re-weight by this metadata field (looked up in `meta`, then at the top level): each
    /// value's total sampling weight ∝ sqrt(its count).
    #[arg(long)]
    pub reweight_by: Option<String>,
    #[arg(long, default_value_t = 20231)]
    pub seed: u64,
    /// Output JSONL (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_fractions(s: &str) -> Result<Fractions, String> {
    s.parse().map_err(|e: warden_al::AlError| e.to_string())
}

fn parse_band(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s.split_once(',').ok_or("expected LO,HI")?;
    let lo: f32 = a.trim().parse().map_err(|_| format!("{a:?} is not a number"))?;
    let hi: f32 = b.trim().parse().map_err(|_| format!("{b:?} is not a number"))?;
    if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
        return Err("the band must be LO,HI with 0 <= LO <= HI <= 1".into());
    }
    Ok((lo, hi))
}

fn parse_threshold(s: &str) -> Result<(String, f32), String> {
    let (k, v) = s.split_once('=').ok_or("expected CODE=X")?;
    let x: f32 = v.trim().parse().map_err(|_| format!("{v:?} is not a number"))?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("threshold {x} is outside [0, 1]"));
    }
    Ok((k.trim().to_owned(), x))
}

impl StrategyArgs {
    /// The library configuration; `default_thresholds` are used for categories without
    /// --threshold.
    fn config(&self, taxonomy: &Taxonomy, default_thresholds: &[f32], size: usize, reweight: bool, seed: u64) -> Result<SelectConfig> {
        let mut fractions = self.fractions.clone();
        if let Some(m) = self.medium_certainty {
            if !(m.is_finite() && m >= 0.0) {
                bail!("--medium-certainty {m} must be a non-negative number");
            }
            fractions.medium_certainty = m;
        }
        let mut thresholds = default_thresholds.to_vec();
        for (code, x) in &self.thresholds {
            let i = taxonomy.require(code).with_context(|| format!("--threshold {code}={x}"))?;
            thresholds[i] = *x;
        }
        Ok(SelectConfig {
            batch_size: size,
            fractions,
            thresholds,
            medium_band: self.medium_band,
            oversample: self.oversample,
            reweight,
            diversity: self.diversity,
            seed,
        })
    }
}

/// One pool row as read: everything but `text` and `id` is kept in `rest` and written back.
pub struct PoolRow {
    /// 1-based line number in the pool file.
    #[allow(dead_code)]
    pub line: usize,
    pub id: String,
    pub text: String,
    pub meta: Map<String, Value>,
    pub rest: Map<String, Value>,
}

/// Reads pool JSONL; bad lines are returned as (line number, message), not fatal.
pub fn read_pool(path: &Path) -> Result<(Vec<PoolRow>, Vec<(usize, String)>)> {
    let f = warden_data::open_maybe_gz(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let no = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                bad.push((no, format!("unreadable: {e}")));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut obj = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                bad.push((no, "not a JSON object".into()));
                continue;
            }
            Err(e) => {
                bad.push((no, format!("invalid JSON: {e}")));
                continue;
            }
        };
        let text = match obj.remove("text") {
            Some(Value::String(t)) => t,
            Some(_) => {
                bad.push((no, "field \"text\" is not a string".into()));
                continue;
            }
            None => {
                bad.push((no, "missing field \"text\"".into()));
                continue;
            }
        };
        let id = match obj.remove("id") {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => format!("line:{no}"),
            Some(_) => {
                bad.push((no, "field \"id\" must be a string or a number".into()));
                continue;
            }
        };
        let meta = match obj.remove("meta") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => Map::new(),
            Some(_) => {
                bad.push((no, "field \"meta\" must be an object".into()));
                continue;
            }
        };
        rows.push(PoolRow { line: no, id, text, meta, rest: obj });
    }
    Ok((rows, bad))
}

/// The group value of a row for re-weighting: `meta[field]`, else the top-level field.
fn group_of(row: &PoolRow, field: &str) -> Option<String> {
    match row.meta.get(field).or_else(|| row.rest.get(field)) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    }
}

/// A selected batch, with the pool it indexes into.
pub struct SelectedBatch {
    /// The model's taxonomy (for callers that store the batch).
    #[allow(dead_code)]
    pub taxonomy: Taxonomy,
    pub rows: Vec<PoolRow>,
    pub selections: Vec<Selection>,
    pub bad_lines: usize,
    /// The model's scores of every pool row, in row order.
    pub scores: Vec<Vec<f32>>,
    /// The model's name and where it was loaded from.
    pub model: (String, String),
}

/// Reads and scores the pool, and selects the batch; writes nothing.
pub fn select_batch(a: &SelectArgs) -> Result<SelectedBatch> {
    let loaded = models::load(a.model.as_deref(), None)?;
    let taxonomy = loaded.model.taxonomy().clone();
    let (rows, bad, origin) = match (&a.pool, &a.store) {
        (Some(pool), _) => {
            let (rows, bad) = read_pool(pool)?;
            (rows, bad, pool.display().to_string())
        }
        (None, Some(db)) => (store_pool(db)?, Vec::new(), format!("the unbatched samples of {}", db.display())),
        (None, None) => bail!("give --pool FILE or --store DB"),
    };
    for (no, msg) in bad.iter().take(20) {
        eprintln!("warden al select: {origin}: line {no}: {msg} (skipped)");
    }
    if bad.len() > 20 {
        eprintln!("warden al select: ... and {} more bad lines", bad.len() - 20);
    }
    if rows.is_empty() {
        bail!("{origin} has no usable rows");
    }
    let pb = crate::progress::bar(rows.len() as u64, "scoring", false);
    let mut items = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(4096) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let scores = loaded.model.predict_batch(&texts).context("scoring the pool")?;
        for (r, s) in chunk.iter().zip(scores) {
            let group = a.reweight_by.as_deref().and_then(|f| group_of(r, f));
            items.push(PoolItem { id: r.id.clone(), text: r.text.clone(), scores: s, group });
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let cfg = a.strategy.config(&taxonomy, loaded.policy.thresholds(), a.size, a.reweight_by.is_some(), a.seed)?;
    let selections = warden_al::select(&taxonomy, &items, &cfg)?;
    let scores = items.into_iter().map(|i| i.scores).collect();
    let model = (loaded.model.name().to_owned(), loaded.origin.clone());
    Ok(SelectedBatch { taxonomy, rows, selections, bad_lines: bad.len(), scores, model })
}

/// The store's samples that are in no batch yet, as pool rows (id = the store's sample id).
fn store_pool(db: &Path) -> Result<Vec<PoolRow>> {
    let store = crate::cmd_label::open(db)?;
    let samples = warden_store::LabelStore::samples(&store, true, None)?;
    Ok(samples
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut rest = Map::new();
            rest.insert("source".into(), Value::from(s.source));
            if let Some(x) = s.external_id {
                rest.insert("external_id".into(), Value::from(x));
            }
            PoolRow { line: i + 1, id: s.id.to_string(), text: s.text, meta: s.metadata, rest }
        })
        .collect())
}

/// Puts the selection into the store as a batch, with the model version and its scores of
/// the whole pool.
fn select_into_store(db: &Path, name: &str, batch: &SelectedBatch, a: &SelectArgs) -> Result<()> {
    use warden_store::LabelStore;
    let mut store = crate::cmd_label::open(db)?;
    let ids = batch.rows.iter().map(|r| r.id.parse::<i64>()).collect::<Result<Vec<_>, _>>().context("store pool ids are sample ids")?;
    let model = (batch.model.0.as_str(), batch.model.1.as_str());
    let model_id = crate::cmd_label::store_model_scores(&mut store, model, &batch.taxonomy, &ids, &batch.scores)?;
    let items: Vec<warden_store::BatchItem> = batch
        .selections
        .iter()
        .map(|s| warden_store::BatchItem {
            sample_id: ids[s.index],
            pipeline: Some(s.pipeline.as_str().to_owned()),
            category: s.category.clone(),
            score: Some(s.score as f64),
            weight: Some(s.weight),
        })
        .collect();
    let config = json!({
        "command": std::env::args().collect::<Vec<_>>(),
        "model": batch.model.1,
        "model_id": model_id,
        "size": a.size,
        "reweight_by": a.reweight_by,
        "seed": a.seed,
    });
    store
        .create_batch(name, warden_store::BatchKind::Label, &items, &config)
        .with_context(|| format!("creating batch {name}"))?;
    eprintln!("warden al select: batch {name} with {} samples in {}; assign it with `warden label assign`", items.len(), db.display());
    Ok(())
}

/// The output line of one selection: id, text, meta, the row's other fields, then
/// pipeline, category, score and weight.
pub fn selection_json(row: &PoolRow, s: &Selection) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), Value::from(row.id.clone()));
    o.insert("text".into(), Value::from(row.text.clone()));
    o.insert("meta".into(), Value::Object(row.meta.clone()));
    for (k, v) in &row.rest {
        if !["pipeline", "category", "score", "weight"].contains(&k.as_str()) {
            o.insert(k.clone(), v.clone());
        }
    }
    o.insert("pipeline".into(), Value::from(s.pipeline.as_str()));
    o.insert("category".into(), s.category.clone().map_or(Value::Null, Value::from));
    o.insert("score".into(), Value::from(crate::cmd_score::round6(s.score)));
    o.insert("weight".into(), Value::from((s.weight * 1e6).round() / 1e6));
    Value::Object(o)
}

/// "random 600, above_threshold 600 (S 75, H 75, ...), ..."
fn summary_line(sel: &[Selection]) -> String {
    let mut by: BTreeMap<Pipeline, BTreeMap<String, usize>> = BTreeMap::new();
    for s in sel {
        *by.entry(s.pipeline).or_default().entry(s.category.clone().unwrap_or_default()).or_default() += 1;
    }
    by.iter()
        .map(|(p, cats)| {
            let n: usize = cats.values().sum();
            let per: Vec<String> = cats.iter().filter(|(c, _)| !c.is_empty()).map(|(c, n)| format!("{c} {n}")).collect();
            if per.is_empty() { format!("{p} {n}") } else { format!("{p} {n} ({})", per.join(", ")) }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn run(c: AlCommand) -> Result<()> {
    match c {
        AlCommand::Select(a) => run_select(a),
        AlCommand::Simulate(a) => run_simulate(a),
    }
}

fn run_select(a: SelectArgs) -> Result<()> {
    let batch = select_batch(&a)?;
    if let (Some(db), Some(name)) = (&a.store, &a.batch) {
        select_into_store(db, name, &batch, &a)?;
    }
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)),
        None if a.store.is_some() => Box::new(std::io::sink()),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    for s in &batch.selections {
        serde_json::to_writer(&mut out, &selection_json(&batch.rows[s.index], s))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!(
        "warden al select: {} pool rows ({} bad lines skipped), selected {}: {}",
        batch.rows.len(),
        batch.bad_lines,
        batch.selections.len(),
        summary_line(&batch.selections)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------------------

#[derive(Args)]
pub struct SimulateArgs {
    /// Pool with hidden labels (the oracle): the train split from `warden data build`.
    #[arg(long)]
    pub train_file: PathBuf,
    /// Fixed dev set: the dev split from `warden data build`. Half of it (by id hash) is
    /// used for early stopping and calibration, the other half only for reporting AUPRC.
    #[arg(long)]
    pub dev_file: PathBuf,
    /// Output directory: results.json, table.md, al-auprc.svg, al-multipliers.svg.
    #[arg(long, default_value = "out/al-sim")]
    pub out: PathBuf,
    /// Labelled rows drawn at random from the pool to train the first model.
    #[arg(long, default_value_t = 1000)]
    pub seed_size: usize,
    /// Rows selected per iteration.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    /// Repetitions with different seed sets and sampling seeds (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 2])]
    pub seeds: Vec<u64>,
    #[command(flatten)]
    pub strategy: StrategyArgs,
    /// Re-weight active-learning candidates by this record field (`source` or a `meta`
    /// key); `none` to turn re-weighting off. Random sampling is never re-weighted.
    #[arg(long, default_value = "source")]
    pub reweight_by: String,
    /// Default above-threshold threshold for categories without --threshold.
    #[arg(long, default_value_t = 0.5)]
    pub default_threshold: f32,
    /// log2 of the fast model's hash buckets.
    #[arg(long, default_value_t = 20)]
    pub bits: u32,
    #[arg(long, default_value_t = 12)]
    pub max_epochs: usize,
    /// Unlabelled benign-domain text added to the training pool (never to dev) to bring the
    /// pool's positive rates down to production-like levels. The oracle labels every
    /// category of these rows *negative* (an assumption: e.g. Wikipedia article text).
    /// A WikiExtractor file (`<doc ...>` blocks, .gz allowed), a JSONL[.gz] file with a
    /// `text` field, or a directory of such files (read recursively, in sorted order).
    #[arg(long)]
    pub background: Option<PathBuf>,
    /// Background rows to add (chunks picked by a fixed hash of their id, independent of
    /// --seeds); all available chunks when there are fewer.
    #[arg(long, default_value_t = 400_000)]
    pub background_rows: usize,
    /// Background documents are cut into chunks of whole sentences of MIN,MAX characters
    /// (target length log-uniform in that range), like the labelled texts' lengths.
    #[arg(long, default_value = "50,300", value_parser = parse_chars)]
    pub background_chars: (usize, usize),
    /// Background rows appended (oracle: every category negative) to the *reporting* half
    /// of dev only, so that AUPRC is measured at roughly the pool's prevalence; the early
    /// stopping / calibration half is unchanged. They are the next chunks in the same fixed
    /// hash order after the pool's --background-rows, so disjoint from the pool's. Needs
    /// --background; 0 (default) adds none.
    #[arg(long, default_value_t = 0)]
    pub dev_background_rows: usize,
}

fn parse_chars(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once(',').ok_or("expected MIN,MAX")?;
    let lo: usize = a.trim().parse().map_err(|_| format!("{a:?} is not a count"))?;
    let hi: usize = b.trim().parse().map_err(|_| format!("{b:?} is not a count"))?;
    if lo == 0 || lo > hi {
        return Err("expected 0 < MIN <= MAX".into());
    }
    Ok((lo, hi))
}

/// splitmix64 of x, mapped to [0, 1).
fn unit_hash(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Cuts a document into chunks of whole sentences of `min..=max` bytes, never across a
/// paragraph (line) break; each chunk's target length is log-uniform in [min, max] (from
/// `salt` and the chunk number, so deterministic). A sentence longer than `max` is cut at
/// the last space before `max`. Paragraph remainders shorter than `min` (headings, list
/// items) are dropped. The common HTML entities left by WikiExtractor are decoded.
pub fn chunk_text(text: &str, min: usize, max: usize, salt: u64) -> Vec<String> {
    let mut out = Vec::new();
    let target = |n: usize| -> usize {
        let u = unit_hash(salt ^ (n as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        ((min as f64) * ((max as f64) / (min as f64)).powf(u)).round() as usize
    };
    for para in text.lines() {
        let para = para.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
        let para = para.split_whitespace().collect::<Vec<_>>().join(" ");
        // Sentences: split after . ! ? followed by a space.
        let mut sentences: Vec<&str> = Vec::new();
        let mut start = 0;
        let b = para.as_bytes();
        for i in 0..b.len() {
            if matches!(b[i], b'.' | b'!' | b'?') && b.get(i + 1) == Some(&b' ') {
                sentences.push(&para[start..=i]);
                start = i + 2;
            }
        }
        if start < para.len() {
            sentences.push(&para[start..]);
        }
        let mut cur = String::new();
        let mut want = target(out.len());
        let push = |cur: &mut String, out: &mut Vec<String>| {
            if cur.len() >= min {
                out.push(std::mem::take(cur));
            } else {
                cur.clear();
            }
        };
        for sent in sentences {
            let mut sent = sent;
            // Overlong sentence: flush, then cut it into max-sized pieces at spaces.
            while sent.len() > max {
                push(&mut cur, &mut out);
                let cut = floor_boundary(sent, max);
                let cut = sent[..cut].rfind(' ').filter(|&c| c >= min).unwrap_or(cut);
                cur.push_str(sent[..cut].trim());
                push(&mut cur, &mut out);
                want = target(out.len());
                sent = sent[cut..].trim_start();
            }
            if !cur.is_empty() && cur.len() + 1 + sent.len() > max {
                push(&mut cur, &mut out);
                want = target(out.len());
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(sent);
            if cur.len() >= want {
                push(&mut cur, &mut out);
                want = target(out.len());
            }
        }
        push(&mut cur, &mut out);
    }
    out
}

/// Documents of one background file as (document id, text): WikiExtractor `<doc id=..>`
/// blocks (the first body line, which repeats the title, dropped), else JSONL rows' `text`
/// (id = `line:N`; lines without a string `text` skipped).
fn read_background_docs(path: &Path) -> Result<Vec<(String, String)>> {
    let f = warden_data::open_maybe_gz(path).with_context(|| format!("opening {}", path.display()))?;
    let mut docs = Vec::new();
    let mut cur: Option<(String, String, bool)> = None; // (id, text, title line seen)
    let mut wiki = None;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if wiki.is_none() {
            if line.trim().is_empty() {
                continue;
            }
            wiki = Some(line.starts_with("<doc"));
        }
        if wiki == Some(true) {
            if line.starts_with("<doc") {
                let id = line.split("id=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_owned();
                cur = Some((id, String::new(), false));
            } else if line.starts_with("</doc>") {
                if let Some((id, text, _)) = cur.take() {
                    docs.push((id, text));
                }
            } else if let Some((_, text, title_seen)) = cur.as_mut() {
                if !*title_seen {
                    *title_seen = !line.trim().is_empty();
                } else {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        } else if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&line) {
            if let Some(Value::String(t)) = o.get("text") {
                docs.push((format!("line:{}", i + 1), t.clone()));
            }
        }
    }
    Ok(docs)
}

fn background_files(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("listing {}", p.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for e in entries {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.starts_with('.') && !name.ends_with(".md") {
                background_files(&e, out)?;
            }
        }
    } else {
        out.push(p.to_owned());
    }
    Ok(())
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Background rows: all chunks of all documents under `path`, minus those whose normalised
/// text equals a labelled text in `exclude` or is on the held-out decontamination list, then
/// the `n` with the smallest hash of their id. Returns the rows and (chunks available,
/// chunks dropped as duplicates of labelled texts or of each other, or as held out).
fn background_records(path: &Path, n: usize, (min, max): (usize, usize), k: usize, exclude: &HashSet<String>) -> Result<(Vec<Record>, usize, usize)> {
    let mut files = Vec::new();
    background_files(path, &mut files)?;
    if files.is_empty() {
        bail!("--background {}: no files", path.display());
    }
    let per_file: Vec<Result<Vec<(String, String)>>> = files
        .par_iter()
        .map(|f| {
            let rel = f.strip_prefix(path).ok().filter(|r| !r.as_os_str().is_empty()).unwrap_or(f.as_path());
            let rel = rel.display().to_string();
            let docs = read_background_docs(f)?;
            let mut chunks = Vec::new();
            for (doc, text) in docs {
                let id = format!("background:{rel}:{doc}");
                for (j, c) in chunk_text(&text, min, max, stable_hash(&id)).into_iter().enumerate() {
                    chunks.push((format!("{id}:{j}"), c));
                }
            }
            Ok(chunks)
        })
        .collect();
    let mut all = Vec::new();
    for r in per_file {
        all.extend(r?);
    }
    let available = all.len();
    let mut keyed: Vec<(u64, String, String)> = all.into_par_iter().map(|(id, t)| (stable_hash(&id), id, t)).collect();
    keyed.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    // Background rows are trained on, so the held-out evaluation texts are dropped here as
    // they are from every labelled source.
    let heldout = crate::cmd_train::heldout_list("warden al simulate", "background rows")?
        .map_or_else(warden_data::Decontaminator::empty, |(list, _)| list);
    let mut seen: HashSet<String> = HashSet::new();
    let mut dropped = 0;
    let mut rows = Vec::with_capacity(n.min(keyed.len()));
    for (_, id, text) in keyed {
        if rows.len() == n {
            break;
        }
        let norm = normalise(&text);
        if exclude.contains(&norm) || heldout.contains_text(&text) || !seen.insert(norm) {
            dropped += 1;
            continue;
        }
        let mut meta = Map::new();
        meta.insert("background".into(), Value::from(path.display().to_string()));
        rows.push(Record { id, text, labels: vec![warden_core::Label::Negative; k], source: "background".into(), meta });
    }
    Ok((rows, available, dropped))
}

const STRATEGIES: [&str; 2] = ["random", "active"];

fn record_group(r: &Record, field: &str) -> Option<String> {
    if field == "source" {
        return Some(r.source.clone());
    }
    match r.meta.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    }
}

fn train_fast(taxonomy: &Taxonomy, train: &[&Record], dev: &[Record], a: &SimulateArgs, seed: u64) -> FastModel {
    fn ex(r: &Record) -> TrainExample<'_> {
        TrainExample { text: &r.text, labels: &r.labels, weight: 1.0, calibration_weight: 1.0 }
    }
    let xtr: Vec<TrainExample> = train.iter().map(|r| ex(r)).collect();
    let xdev: Vec<TrainExample> = dev.iter().map(ex).collect();
    let cfg = TrainConfig {
        name: "al-sim".into(),
        features: warden_fast::FeatureConfig { bits: a.bits, ..Default::default() },
        max_epochs: a.max_epochs,
        seed,
        ..TrainConfig::default()
    };
    warden_fast::train(taxonomy, &xtr, &xdev, &cfg, &|_, _, _| {}).0
}

fn score_all(model: &FastModel, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let chunks: Vec<Result<Vec<Vec<f32>>>> =
        texts.par_chunks(2048).map(|c| model.predict_batch(c).map_err(anyhow::Error::from)).collect();
    let mut out = Vec::with_capacity(texts.len());
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}

/// AUPRC per category (taxonomy order) then `any`.
fn auprcs(taxonomy: &Taxonomy, model: &FastModel, eval: &[Record]) -> Result<Vec<Option<f64>>> {
    let texts: Vec<&str> = eval.iter().map(|r| r.text.as_str()).collect();
    let scores = score_all(model, &texts)?;
    let rep = warden_eval::evaluate_records(taxonomy, eval, &scores, &vec![0.5; taxonomy.len()], "al-sim")?;
    let mut v: Vec<Option<f64>> = rep.categories.iter().map(|c| c.report.auprc).collect();
    v.push(rep.any.auprc);
    Ok(v)
}

fn rates_json(keys: &[String], rates: &[RateCount]) -> Value {
    Value::Object(
        keys.iter()
            .zip(rates)
            .map(|(k, r)| (k.clone(), json!({"positives": r.positives, "known": r.known, "rate": r.rate()})))
            .collect(),
    )
}

fn opt_json(v: &[Option<f64>], keys: &[String]) -> Value {
    Value::Object(keys.iter().zip(v).map(|(k, x)| (k.clone(), x.map_or(Value::Null, Value::from))).collect())
}

fn stable_hash(s: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn run_simulate(a: SimulateArgs) -> Result<()> {
    use rand_shuffle::shuffle;
    let taxonomy = Taxonomy::builtin();
    let k = taxonomy.len();
    let mut keys: Vec<String> = taxonomy.codes().map(str::to_owned).collect();
    keys.push("any".into());
    let mut pool_all = crate::cmd_eval::read_labelled(&a.train_file, &taxonomy)?;
    let dev_all = crate::cmd_eval::read_labelled(&a.dev_file, &taxonomy)?;
    let labelled_pool_rows = pool_all.len();
    let mut background_json = Value::Null;
    let mut dev_background: Vec<Record> = Vec::new();
    if a.dev_background_rows > 0 && a.background.is_none() {
        bail!("--dev-background-rows needs --background");
    }
    if let Some(bg) = &a.background {
        // Background rows go to the pool only: dev stays the labelled dev split, and chunks
        // equal (after normalisation) to any labelled pool or dev text are dropped.
        let exclude: HashSet<String> = pool_all.iter().chain(&dev_all).map(|r| normalise(&r.text)).collect();
        // With --dev-background-rows M, the first N chunks in hash order go to the pool as
        // before and the next M (de-duplicated against them) to the reporting half of dev.
        let (mut rows, available, dropped) =
            background_records(bg, a.background_rows + a.dev_background_rows, a.background_chars, k, &exclude)?;
        if rows.len() > a.background_rows {
            dev_background = rows.split_off(a.background_rows);
        }
        let lens: Vec<usize> = rows.iter().map(|r| r.text.chars().count()).collect();
        let mut sorted = lens.clone();
        sorted.sort_unstable();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
        eprintln!(
            "warden al simulate: background {}: {} chunks available, {} dropped as duplicates or held-out texts, {} added (median {} chars)",
            bg.display(),
            available,
            dropped,
            rows.len(),
            median
        );
        background_json = json!({
            "path": bg, "rows_requested": a.background_rows, "rows": rows.len(), "chars": a.background_chars,
            "chunks_available": available, "chunks_dropped_duplicates": dropped, "median_chars": median,
            "oracle": "every category negative",
        });
        if a.dev_background_rows > 0 {
            background_json["dev_eval_rows_requested"] = json!(a.dev_background_rows);
            background_json["dev_eval_rows"] = json!(dev_background.len());
        }
        pool_all.extend(rows);
    }
    // Whole-pool prevalence (oracle labels; descriptive only, nothing depends on it).
    let pool_prevalence = {
        let labels: Vec<&[warden_core::Label]> = pool_all.iter().map(|r| r.labels.as_slice()).collect();
        warden_al::positive_rates(k, &labels)
    };
    eprintln!(
        "warden al simulate: pool positive rates: {}",
        keys.iter()
            .zip(&pool_prevalence)
            .map(|(key, r)| format!("{key} {:.2}%", 100.0 * r.rate().unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (dev_fit, mut dev_eval): (Vec<Record>, Vec<Record>) =
        dev_all.into_iter().partition(|r| stable_hash(&r.id) % 2 == 0);
    let dev_bg_added = dev_background.len();
    let dev_eval_prevalence = if a.dev_background_rows > 0 {
        let labelled = dev_eval.len();
        let added = dev_bg_added;
        dev_eval.append(&mut dev_background);
        let labels: Vec<&[warden_core::Label]> = dev_eval.iter().map(|r| r.labels.as_slice()).collect();
        let prev = warden_al::positive_rates(k, &labels);
        eprintln!(
            "warden al simulate: reporting dev half: {labelled} labelled + {added} background rows; positive rates: {}",
            keys.iter()
                .zip(&prev)
                .map(|(key, r)| format!("{key} {:.2}%", 100.0 * r.rate().unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Some(prev)
    } else {
        None
    };
    if a.seed_size + a.batch * a.iterations > pool_all.len() {
        bail!("the pool has {} rows, fewer than seed + batch × iterations", pool_all.len());
    }
    let reweight = (a.reweight_by != "none").then_some(a.reweight_by.as_str());
    let default_thresholds = vec![a.default_threshold; k];
    eprintln!(
        "warden al simulate: pool {} rows, dev {} for early stopping/calibration + {} for AUPRC; seeds {:?}",
        pool_all.len(),
        dev_fit.len(),
        dev_eval.len(),
        a.seeds
    );
    let texts_all: Vec<&str> = pool_all.iter().map(|r| r.text.as_str()).collect();
    let total_steps = (a.seeds.len() * (1 + 2 * a.iterations)) as u64;
    let pb = crate::progress::bar(total_steps, "rounds", false);
    let mut runs = Vec::new();
    // [strategy][iteration][seed] → per-key AUPRC; [strategy][seed] → summed rates.
    let mut auprc: Vec<Vec<Vec<Vec<Option<f64>>>>> = vec![vec![Vec::new(); a.iterations + 1]; 2];
    let mut rates_by_seed: Vec<Vec<Vec<RateCount>>> = vec![Vec::new(); 2];
    let mut by_pipeline: BTreeMap<String, Vec<RateCount>> = BTreeMap::new();
    for &seed in &a.seeds {
        let mut order: Vec<usize> = (0..pool_all.len()).collect();
        shuffle(&mut order, seed);
        let seed_set: Vec<usize> = order[..a.seed_size].to_vec();
        let seed_rows: Vec<&Record> = seed_set.iter().map(|&i| &pool_all[i]).collect();
        let model0 = train_fast(&taxonomy, &seed_rows, &dev_fit, &a, seed);
        let au0 = auprcs(&taxonomy, &model0, &dev_eval)?;
        pb.inc(1);
        pb.println(format!("seed {seed}: iteration 0 ({} rows): any AUPRC {:.3}", seed_rows.len(), au0[k].unwrap_or(f64::NAN)));
        for (si, strategy) in STRATEGIES.iter().enumerate() {
            let mut labelled: Vec<usize> = seed_set.clone();
            let mut in_train: HashSet<usize> = labelled.iter().copied().collect();
            let mut model = model0.clone();
            let mut iters = vec![json!({"iteration": 0, "train_rows": labelled.len(), "auprc": opt_json(&au0, &keys)})];
            auprc[si][0].push(au0.clone());
            let mut total = vec![RateCount::default(); k + 1];
            for it in 1..=a.iterations {
                let pool_idx: Vec<usize> = (0..pool_all.len()).filter(|i| !in_train.contains(i)).collect();
                let texts: Vec<&str> = pool_idx.iter().map(|&i| texts_all[i]).collect();
                let scores = score_all(&model, &texts)?;
                let items: Vec<PoolItem> = pool_idx
                    .iter()
                    .zip(scores)
                    .map(|(&i, s)| PoolItem {
                        id: pool_all[i].id.clone(),
                        text: pool_all[i].text.clone(),
                        scores: s,
                        group: if *strategy == "active" { reweight.and_then(|f| record_group(&pool_all[i], f)) } else { None },
                    })
                    .collect();
                let sel_seed = seed.wrapping_mul(1_000_003).wrapping_add(it as u64 * 7919 + si as u64);
                let cfg = if *strategy == "active" {
                    a.strategy.config(&taxonomy, &default_thresholds, a.batch, reweight.is_some(), sel_seed)?
                } else {
                    SelectConfig {
                        batch_size: a.batch,
                        fractions: Fractions::random_only(),
                        reweight: false,
                        seed: sel_seed,
                        ..SelectConfig::default()
                    }
                };
                let sel = warden_al::select(&taxonomy, &items, &cfg)?;
                let chosen: Vec<usize> = sel.iter().map(|s| pool_idx[s.index]).collect();
                let labels: Vec<&[warden_core::Label]> = chosen.iter().map(|&i| pool_all[i].labels.as_slice()).collect();
                let rates = warden_al::positive_rates(k, &labels);
                for (t, r) in total.iter_mut().zip(&rates) {
                    t.positives += r.positives;
                    t.known += r.known;
                }
                let mut pipe_json = Map::new();
                for p in Pipeline::ALL {
                    let rows: Vec<&[warden_core::Label]> = sel
                        .iter()
                        .filter(|s| s.pipeline == p)
                        .map(|s| pool_all[pool_idx[s.index]].labels.as_slice())
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let r = warden_al::positive_rates(k, &rows);
                    let acc = by_pipeline.entry(format!("{strategy}/{p}")).or_insert_with(|| vec![RateCount::default(); k + 1]);
                    for (t, x) in acc.iter_mut().zip(&r) {
                        t.positives += x.positives;
                        t.known += x.known;
                    }
                    pipe_json.insert(p.as_str().into(), json!({"rows": rows.len(), "positive_rate": rates_json(&keys, &r)}));
                }
                let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
                for &i in &chosen {
                    *sources.entry(pool_all[i].source.as_str()).or_default() += 1;
                }
                for &i in &chosen {
                    in_train.insert(i);
                }
                labelled.extend(&chosen);
                let rows: Vec<&Record> = labelled.iter().map(|&i| &pool_all[i]).collect();
                model = train_fast(&taxonomy, &rows, &dev_fit, &a, seed.wrapping_add(it as u64));
                let au = auprcs(&taxonomy, &model, &dev_eval)?;
                pb.inc(1);
                pb.println(format!(
                    "seed {seed} {strategy:>6} iteration {it} ({} rows): any positive rate {:.3}, any AUPRC {:.3}",
                    labelled.len(),
                    rates[k].rate().unwrap_or(f64::NAN),
                    au[k].unwrap_or(f64::NAN)
                ));
                auprc[si][it].push(au.clone());
                iters.push(json!({
                    "iteration": it,
                    "train_rows": labelled.len(),
                    "selected": sel.len(),
                    "selected_sources": sources,
                    "positive_rate": rates_json(&keys, &rates),
                    "by_pipeline": pipe_json,
                    "auprc": opt_json(&au, &keys),
                }));
            }
            rates_by_seed[si].push(total.clone());
            runs.push(json!({"seed": seed, "strategy": strategy, "iterations": iters}));
        }
    }
    pb.finish_and_clear();

    // Table 4: pooled over seeds and iterations; spread = min/max of per-seed multipliers.
    let pooled = |si: usize| -> Vec<RateCount> {
        let mut t = vec![RateCount::default(); k + 1];
        for per_seed in &rates_by_seed[si] {
            for (x, r) in t.iter_mut().zip(per_seed) {
                x.positives += r.positives;
                x.known += r.known;
            }
        }
        t
    };
    let (rand_r, act_r) = (pooled(0), pooled(1));
    let mult = |r: &RateCount, a_: &RateCount| match (r.rate(), a_.rate()) {
        (Some(x), Some(y)) if x > 0.0 => Some(y / x),
        _ => None,
    };
    let mut table = Vec::new();
    for c in 0..=k {
        let per_seed: Vec<f64> =
            (0..a.seeds.len()).filter_map(|s| mult(&rates_by_seed[0][s][c], &rates_by_seed[1][s][c])).collect();
        table.push(json!({
            "category": keys[c],
            "random": {"positives": rand_r[c].positives, "known": rand_r[c].known, "rate": rand_r[c].rate()},
            "active": {"positives": act_r[c].positives, "known": act_r[c].known, "rate": act_r[c].rate()},
            "multiplier": mult(&rand_r[c], &act_r[c]),
            "multiplier_per_seed": per_seed,
        }));
    }
    let stat = |v: &[Option<f64>]| -> Option<(f64, f64, f64)> {
        let xs: Vec<f64> = v.iter().flatten().copied().collect();
        if xs.is_empty() {
            return None;
        }
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        Some((m, xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)))
    };
    let mut auprc_summary = Map::new();
    for (si, strategy) in STRATEGIES.iter().enumerate() {
        let mut per_key = Map::new();
        for (c, key) in keys.iter().enumerate() {
            let pts: Vec<Value> = (0..=a.iterations)
                .map(|it| {
                    let v: Vec<Option<f64>> = auprc[si][it].iter().map(|x| x[c]).collect();
                    stat(&v).map_or(Value::Null, |(m, lo, hi)| json!({"mean": m, "min": lo, "max": hi}))
                })
                .collect();
            per_key.insert(key.clone(), Value::Array(pts));
        }
        auprc_summary.insert((*strategy).into(), Value::Object(per_key));
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let command: Vec<String> = std::env::args().collect();
    let results = json!({
        "command": command.join(" "),
        "git_revision": crate::cmd_train::git_revision(),
        "config": {
            "train_file": a.train_file, "dev_file": a.dev_file,
            "pool_rows": pool_all.len(), "labelled_pool_rows": labelled_pool_rows, "background": background_json,
            "dev_fit_rows": dev_fit.len(), "dev_eval_rows": dev_eval.len(),
            "seed_size": a.seed_size, "batch": a.batch, "iterations": a.iterations, "seeds": a.seeds,
            "fractions": a.strategy.fractions, "medium_certainty": a.strategy.medium_certainty,
            "medium_band": a.strategy.medium_band, "thresholds": a.strategy.thresholds,
            "default_threshold": a.default_threshold, "diversity": a.strategy.diversity,
            "oversample": a.strategy.oversample, "reweight_by": a.reweight_by, "bits": a.bits, "max_epochs": a.max_epochs,
        },
        "pool_prevalence": rates_json(&keys, &pool_prevalence),
        "dev_eval_prevalence": dev_eval_prevalence.as_ref().map_or(Value::Null, |p| rates_json(&keys, p)),
        "table4": table,
        "by_pipeline": by_pipeline.iter().map(|(p, r)| (p.clone(), rates_json(&keys, r))).collect::<Map<_, _>>(),
        "auprc": auprc_summary,
        "runs": runs,
    });
    let rpath = a.out.join("results.json");
    std::fs::write(&rpath, serde_json::to_string_pretty(&results)? + "\n").with_context(|| format!("writing {}", rpath.display()))?;

    // Markdown tables.
    use std::fmt::Write as _;
    let pct = |r: &RateCount| r.rate().map_or("–".into(), |x| format!("{:.2}% ({}/{})", 100.0 * x, r.positives, r.known));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Pool: {} rows ({} labelled{}); whole-pool positive rate: {}\n",
        pool_all.len(),
        labelled_pool_rows,
        if a.background.is_some() { format!(" + {} background", pool_all.len() - labelled_pool_rows) } else { String::new() },
        keys.iter().zip(&pool_prevalence).map(|(key, r)| format!("{key} {}", pct(r))).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(md, "| category | random sampling | active learning | multiplier | per-seed multipliers |\n|---|---|---|---|---|");
    for c in 0..=k {
        let m = mult(&rand_r[c], &act_r[c]).map_or("–".into(), |m| format!("{m:.1}×"));
        let ps = table[c]["multiplier_per_seed"].as_array().map(|v| {
            v.iter().filter_map(Value::as_f64).map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ")
        });
        let _ = writeln!(md, "| {} | {} | {} | {m} | {} |", keys[c], pct(&rand_r[c]), pct(&act_r[c]), ps.unwrap_or_default());
    }
    let dev_bg_note = match &dev_eval_prevalence {
        Some(p) => format!(
            " ({} labelled + {} background rows; `any` positive rate {})",
            dev_eval.len() - dev_bg_added,
            dev_bg_added,
            pct(&p[k])
        ),
        None => String::new(),
    };
    let _ = writeln!(md, "\nAUPRC on the evaluation half of dev{dev_bg_note}, mean (min–max) over seeds:\n");
    let _ = write!(md, "| category |");
    for it in 0..=a.iterations {
        let _ = write!(md, " it {it} random | it {it} active |");
    }
    let _ = write!(md, "\n|---|");
    for _ in 0..=a.iterations {
        let _ = write!(md, "---|---|");
    }
    let _ = writeln!(md);
    for (c, key) in keys.iter().enumerate() {
        let _ = write!(md, "| {key} |");
        for it in 0..=a.iterations {
            for si in 0..2 {
                let v: Vec<Option<f64>> = auprc[si][it].iter().map(|x| x[c]).collect();
                let cell = stat(&v).map_or("–".into(), |(m, lo, hi)| format!("{m:.3} ({lo:.3}–{hi:.3})"));
                let _ = write!(md, " {cell} |");
            }
        }
        let _ = writeln!(md);
    }
    std::fs::write(a.out.join("table.md"), &md)?;

    // Figures.
    use warden_al::plot::{log_bars_svg, line_panels_svg, Bar, Panel, Series};
    let bg_note = if a.background.is_some() {
        format!("; + {} background rows", pool_all.len() - labelled_pool_rows)
    } else {
        String::new()
    };
    let x_labels: Vec<String> = (0..=a.iterations).map(|i| i.to_string()).collect();
    let colors = ["#c05621", "#2b6cb0"];
    let panels: Vec<Panel> = keys
        .iter()
        .enumerate()
        .map(|(c, key)| Panel {
            title: key.clone(),
            series: (0..2)
                .map(|si| Series {
                    name: if si == 0 { "random sampling".into() } else { "active learning".into() },
                    color: colors[si].into(),
                    points: (0..=a.iterations)
                        .map(|it| stat(&auprc[si][it].iter().map(|x| x[c]).collect::<Vec<_>>()))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let fig2 = line_panels_svg(
        &if bg_note.is_empty() {
            format!("AUPRC on a fixed dev set per iteration (mean, band = min–max over {} seeds)", a.seeds.len())
        } else if dev_bg_added > 0 {
            format!("AUPRC, dev + {dev_bg_added} background rows (mean, min–max, {} seeds){bg_note}", a.seeds.len())
        } else {
            format!("AUPRC on fixed dev per iteration (mean, min–max over {} seeds){bg_note}", a.seeds.len())
        },
        &x_labels,
        "x: iteration",
        &panels,
        3,
    );
    std::fs::write(a.out.join("al-auprc.svg"), fig2)?;
    let bars: Vec<Bar> = (0..=k)
        .map(|c| {
            let m = mult(&rand_r[c], &act_r[c]);
            let note = match (rand_r[c].rate(), act_r[c].rate()) {
                (Some(x), Some(y)) => format!(
                    "{} ({:.1}% → {:.1}%)",
                    m.map_or("n/a".into(), |m| format!("{m:.1}×")),
                    100.0 * x,
                    100.0 * y
                ),
                _ => "no known labels".into(),
            };
            Bar { label: keys[c].clone(), value: m, note }
        })
        .collect();
    let fig = log_bars_svg(&if bg_note.is_empty() {
            "Positive rate among selections: active learning / random".to_owned()
        } else {
            format!("Positive rate of selections, active / random{bg_note}")
        }, "multiplier (log scale)", &bars, 1.0);
    std::fs::write(a.out.join("al-multipliers.svg"), fig)?;
    eprintln!("{md}");
    eprintln!("warden al simulate: wrote {}", a.out.display());
    Ok(())
}

/// A seeded Fisher–Yates shuffle (splitmix64), so the CLI needs no RNG crate.
mod rand_shuffle {
    pub fn shuffle<T>(v: &mut [T], seed: u64) {
        let mut x = seed ^ 0x5851_F42D_4C95_7F2D;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for i in (1..v.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reading_skips_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pool.jsonl");
        std::fs::write(
            &p,
            "{\"id\": \"a\", \"text\": \"hello\", \"meta\": {\"lang\": \"en\"}, \"x\": 1}\n\
             not json\n\
             \n\
             {\"text\": 5}\n\
             {\"id\": 7, \"text\": \"bye\"}\n\
             {\"text\": \"anon\"}\n",
        )
        .unwrap();
        let (rows, bad) = read_pool(&p).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(rows[1].id, "7");
        assert_eq!(rows[2].id, "line:6");
        assert_eq!(group_of(&rows[0], "lang").as_deref(), Some("en"));
        assert_eq!(group_of(&rows[0], "x").as_deref(), Some("1"));
        assert_eq!(group_of(&rows[1], "lang"), None);
        let s = Selection {
            index: 0,
            id: "a".into(),
            pipeline: Pipeline::AboveThreshold,
            category: Some("S".into()),
            score: 0.9,
            weight: 1.0,
        };
        let v = selection_json(&rows[0], &s);
        assert_eq!(v["pipeline"], "above_threshold");
        assert_eq!(v["meta"]["lang"], "en");
        assert_eq!(v["x"], 1);
    }

    #[test]
    fn background_reader_and_chunker() {
        let long = "The river flows north through the valley. ".repeat(40);
        let chunks = chunk_text(&format!("Short heading\n{long}\nA caf&eacute; &amp; a &lt;b&gt; tag, long enough to be kept as a chunk of text.\n"), 50, 300, 7);
        assert!(chunks.len() > 3);
        for c in &chunks {
            assert!((50..=300).contains(&c.len()), "{} {c:?}", c.len());
            assert!(!c.contains("Short heading"));
        }
        assert!(chunks.last().unwrap().contains("& a <b> tag"));
        assert_eq!(chunks, chunk_text(&format!("Short heading\n{long}\nA caf&eacute; &amp; a &lt;b&gt; tag, long enough to be kept as a chunk of text.\n"), 50, 300, 7));
        // An overlong sentence without full stops is cut at spaces, multi-byte safe.
        let word = "wörd ".repeat(200);
        for c in chunk_text(&word, 50, 120, 1) {
            assert!((50..=120).contains(&c.len()));
        }

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("AA")).unwrap();
        let para = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron. ";
        std::fs::write(
            dir.path().join("AA/wiki_00"),
            format!("<doc id=\"12\" url=\"u\" title=\"Title\">\nTitle\n\n{para}{para}\n</doc>\n<doc id=\"13\" url=\"u\" title=\"T2\">\nT2\n{para}\n</doc>\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("extra.jsonl"), format!("{{\"text\": \"{para}\"}}\nnot json\n")).unwrap();
        let docs = read_background_docs(&dir.path().join("AA/wiki_00")).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].0, "12");
        assert!(!docs[0].1.contains("Title"));
        // The JSONL text equals doc 13's paragraph, and one labelled text is excluded.
        let exclude: HashSet<String> = [normalise(para)].into_iter().collect();
        let (rows, available, dropped) = background_records(dir.path(), 100, (50, 300), 8, &exclude).unwrap();
        assert!(available >= 3);
        assert_eq!(rows.len() + dropped, available);
        assert!(rows.iter().all(|r| r.source == "background" && r.labels.iter().all(|l| *l == warden_core::Label::Negative)));
        assert!(rows.iter().all(|r| normalise(&r.text) != normalise(para)));
        let texts: HashSet<String> = rows.iter().map(|r| normalise(&r.text)).collect();
        assert_eq!(texts.len(), rows.len());
        let (two, _, _) = background_records(dir.path(), 1, (50, 300), 8, &HashSet::new()).unwrap();
        assert_eq!(two.len(), 1);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_band("0.2, 0.8").unwrap(), (0.2, 0.8));
        assert!(parse_band("0.8,0.2").is_err());
        assert_eq!(parse_threshold("S=0.7").unwrap(), ("S".into(), 0.7));
        assert!(parse_threshold("S=2").is_err());
        assert_eq!(parse_fractions("random=1").unwrap(), Fractions::random_only());
        let mut v: Vec<u32> = (0..100).collect();
        rand_shuffle::shuffle(&mut v, 3);
        let mut w = v.clone();
        w.sort();
        assert_eq!(w, (0..100).collect::<Vec<_>>());
        assert_ne!(v, w);
    }
}
