//! A curation run: inputs → per-file outputs, stats, manifest and report; resumable.
//!
//! # Layout of an output directory
//!
//! ```text
//! DIR/run.json                    what this directory is for (inputs, shard, policy, model);
//!                                 a resumed run must match it
//! DIR/kept/<name>.<ext>           kept and redacted documents, in input order and format
//!                                 (JSON lines with the input's compression, or Parquet)
//! DIR/removed/<name>.jsonl.gz     {"record": <input line, verbatim>, "warden": {...}} per drop
//! DIR/errors/<name>.jsonl         one line per unreadable input line or row
//! DIR/attributes/<name>.jsonl.gz  one DocAttributes per document (every document)
//! DIR/stats/<name>.json           per-file statistics (merged into the report)
//! DIR/.state/<name>.json          the file is complete (written last, atomically)
//! DIR/manifest.json, DIR/stats.json, DIR/report.md, DIR/report.html
//! ```
//!
//! # Resuming
//!
//! The unit of work is an input file. Its outputs are written under `DIR/.partial/<name>/`,
//! renamed into place when the file is complete, and only then is `DIR/.state/<name>.json`
//! written (via a temporary file and a rename, so it exists whole or not at all). A run
//! killed at any moment therefore leaves complete files (with a state record) and at most
//! one partial directory per worker; a restarted run skips the complete ones (after checking
//! the input's sha256 and that the outputs are still there) and redoes the rest from the
//! start of the file. Processing is deterministic — batch boundaries depend on the input
//! only, outputs are written in input order, gzip headers carry no time — so the outputs
//! of a resumed run are byte-identical to those of an uninterrupted one. Only
//! `manifest.json` differs, because it records timings.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_audit::{Action, ReportMeta, RunStats};
use warden_corpus::{Document, Format, Item, ReadErrorKind, ReaderOptions};

use crate::engine::{Engine, Outcome};
use crate::output::{kept_compression, Compression, LineWriter};
use crate::parquet_out::{self, KeptRows};
use crate::CurateError;

/// The manifest format this build writes.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// Software identity recorded in manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    /// Crate version.
    pub version: String,
    /// Source revision (git commit, `-dirty` when modified), or `unknown`.
    pub revision: String,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Every input file of the run (all shards), as given; sorted and deduplicated here.
    pub inputs: Vec<PathBuf>,
    /// `(index, count)`: this process handles files `k` with `k % count == index`.
    pub shard: (usize, usize),
    /// Output directory.
    pub output: PathBuf,
    /// Reader options (fields, maximum line length).
    pub reader: ReaderOptions,
    /// A batch holds at most this many documents ...
    pub batch_docs: usize,
    /// ... and at most this many text bytes (plus one document).
    pub batch_bytes: usize,
    /// Software identity.
    pub software: Software,
    /// Where the model came from (path or "embedded default"), for the manifest.
    pub model_origin: String,
    /// Re-apply mode: take every document's chunk scores from this earlier run directory's
    /// attributes instead of scoring (same inputs, fields and chunking required).
    pub prior: Option<PathBuf>,
}

impl RunConfig {
    /// Defaults for everything but inputs and output.
    pub fn new(inputs: Vec<PathBuf>, output: PathBuf) -> Self {
        RunConfig {
            inputs,
            shard: (0, 1),
            output,
            reader: ReaderOptions::default(),
            batch_docs: 512,
            batch_bytes: 8 << 20,
            software: Software { version: env!("CARGO_PKG_VERSION").into(), revision: "unknown".into() },
            model_origin: String::new(),
            prior: None,
        }
    }
}

/// Progress callbacks (the CLI draws a bar; the library never prints).
pub trait Progress: Sync {
    /// The run starts: files to process, their total size on disk, files already done.
    fn start(&self, _files: usize, _bytes: u64, _resumed: usize) {}
    /// Documents were written.
    fn docs(&self, _docs: u64, _text_bytes: u64) {}
    /// A file is complete; `bytes` is its size on disk.
    fn file_done(&self, _bytes: u64) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What the directory is for; a resumed run must present the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    /// Format of this record.
    pub format_version: u32,
    /// SHA-256 over the sorted list of all input paths of the run.
    pub inputs_sha256: String,
    /// Number of input files of the whole run.
    pub inputs: usize,
    /// `[index, count]`.
    pub shard: [usize; 2],
    /// Policy name.
    pub policy: String,
    /// Policy file sha256.
    pub policy_sha256: String,
    /// Fast model name (or null when the classifier is off).
    pub model: Option<String>,
    /// Second tier name.
    pub second_tier: Option<String>,
    /// Field names: id, text, source, url.
    pub fields: [Option<String>; 4],
    /// Reader's maximum line length.
    pub max_line_bytes: u64,
    /// Batch limits (they decide batch boundaries, hence byte identity with a second tier).
    pub batch: [usize; 2],
    /// Chunking: maximum bytes and paragraph mode (scores are per chunk).
    #[serde(default)]
    pub chunking: (usize, bool),
    /// Re-apply mode: the run whose scores were re-used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescored_from: Option<String>,
}

/// The outputs of one input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileOutputs {
    /// Kept and redacted documents.
    pub kept: String,
    /// Dropped documents.
    pub removed: String,
    /// Unreadable lines.
    pub errors: String,
    /// Attributes sidecar.
    pub attributes: String,
    /// Statistics.
    pub stats: String,
}

/// One input file of a run, when complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The input path as given.
    pub path: String,
    /// Output name.
    pub name: String,
    /// SHA-256 of the input file as stored.
    pub sha256: String,
    /// Size on disk.
    pub bytes: u64,
    /// Documents read.
    pub docs: u64,
    /// Kept unchanged.
    pub kept: u64,
    /// Dropped.
    pub dropped: u64,
    /// Kept with spans removed.
    pub redacted: u64,
    /// Unreadable lines/rows.
    pub errors: u64,
    /// Bytes of text read.
    pub text_bytes: u64,
    /// Output files, relative to the run directory.
    pub outputs: FileOutputs,
    /// Why the kept documents of a Parquet input were written as zstd JSON lines instead
    /// of Parquet (text column not a top-level Utf8/LargeUtf8 column, or the Arrow reader
    /// failed on the file); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_note: Option<String>,
    /// Seconds spent on the file.
    pub seconds: f64,
}

/// The run manifest (`manifest.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT_VERSION`].
    pub format_version: u32,
    /// `"warden-curate-run"` or `"warden-curate-merged"`.
    pub kind: String,
    /// Software.
    pub software: Software,
    /// The run key.
    pub run: RunKey,
    /// Policy path as given.
    pub policy_path: String,
    /// Model origin.
    pub model_origin: String,
    /// Taxonomy name, version and codes.
    pub taxonomy: (String, String, Vec<String>),
    /// Rule lists with licences and hashes.
    pub rule_lists: Vec<warden_rules::ListInfo>,
    /// Rule terms dropped as held-out texts.
    pub decontaminated_rule_terms: usize,
    /// Domains blocked.
    pub blocked_domains: usize,
    /// Identity list used for the over-filtering check.
    pub identity_terms: String,
    /// Whether written text is PII-masked.
    pub pii_masked: bool,
    /// Files of this shard, in run order.
    pub files: Vec<FileRecord>,
    /// Sums over `files`.
    pub totals: Totals,
    /// Wall-clock timings of this invocation.
    pub timings: Timings,
    /// For merged manifests: the shard directories, relative to the merged directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_dirs: Vec<String>,
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest, CurateError> {
        let p = dir.join("manifest.json");
        let t = fs::read_to_string(&p).map_err(|e| CurateError::io(&p, e))?;
        serde_json::from_str(&t).map_err(|e| CurateError::Format(format!("{}: {e}", p.display())))
    }
}

/// Counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Input files.
    pub files: usize,
    /// Documents.
    pub docs: u64,
    /// Kept.
    pub kept: u64,
    /// Dropped.
    pub dropped: u64,
    /// Redacted.
    pub redacted: u64,
    /// Unreadable lines.
    pub errors: u64,
    /// Text bytes.
    pub text_bytes: u64,
    /// Input bytes on disk.
    pub input_bytes: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, f: &FileRecord) {
        self.files += 1;
        self.docs += f.docs;
        self.kept += f.kept;
        self.dropped += f.dropped;
        self.redacted += f.redacted;
        self.errors += f.errors;
        self.text_bytes += f.text_bytes;
        self.input_bytes += f.bytes;
    }
}

/// Timings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Unix seconds at start.
    pub started: u64,
    /// Unix seconds at the end.
    pub finished: u64,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
    /// Files processed by this invocation.
    pub processed_files: usize,
    /// Files found complete from an earlier invocation.
    pub resumed_files: usize,
    /// Threads used.
    pub threads: usize,
    /// Documents per second of this invocation (processed files only).
    pub docs_per_second: f64,
    /// Text megabytes (10^6) per second of this invocation.
    pub text_mb_per_second: f64,
    /// Input (on-disk) megabytes per second of this invocation.
    pub input_mb_per_second: f64,
}

/// Sorted, deduplicated inputs and their output names. The name is the path relative to
/// the inputs' common directory, `/` replaced by `__`, without the format extension; when
/// two files would share a name, the extension is kept for those.
pub fn plan(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, String, Format)>, CurateError> {
    let mut files: Vec<PathBuf> = inputs.to_vec();
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(CurateError::Input("no input files".into()));
    }
    let common = common_dir(&files);
    let mut out = Vec::new();
    for f in &files {
        let (format, stem) = Format::from_path(f).ok_or_else(|| {
            CurateError::Input(format!("{}: unsupported extension; supported: {}", f.display(), warden_corpus::SUPPORTED_EXTENSIONS))
        })?;
        let rel_parent = f.parent().and_then(|p| p.strip_prefix(&common).ok()).map(Path::to_path_buf).unwrap_or_default();
        let mut parts: Vec<String> = rel_parent.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        parts.push(stem);
        out.push((f.clone(), sanitize(&parts.join("__")), format));
    }
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (_, n, _) in &out {
        *count.entry(n.clone()).or_default() += 1;
    }
    for (p, n, _) in &mut out {
        if count[n.as_str()] > 1 {
            let file = p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let stem_len = n.rfind("__").map(|i| i + 2).unwrap_or(0);
            *n = sanitize(&format!("{}{}", &n[..stem_len], file));
        }
    }
    // Sanitising can still map two paths to one name ("a b.jsonl", "a_b.jsonl"): number the
    // later ones (the list is sorted, so the numbering is stable).
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (_, n, _) in &mut out {
        if !seen.insert(n.clone()) {
            let mut k = 2;
            while seen.contains(&format!("{n}-{k}")) || count.contains_key(&format!("{n}-{k}")) {
                k += 1;
            }
            *n = format!("{n}-{k}");
            seen.insert(n.clone());
        }
    }
    Ok(out)
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn common_dir(files: &[PathBuf]) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for f in files {
        let parent = f.parent().map(Path::to_path_buf).unwrap_or_default();
        common = Some(match common {
            None => parent,
            Some(c) => {
                let mut acc = PathBuf::new();
                for (a, b) in c.components().zip(parent.components()) {
                    if a != b {
                        break;
                    }
                    acc.push(a);
                }
                acc
            }
        });
    }
    common.unwrap_or_default()
}

/// SHA-256 over the sorted input paths (identifies the run's file list).
pub fn inputs_sha256(plan: &[(PathBuf, String, Format)]) -> String {
    let mut h = Sha256::new();
    for (p, _, _) in plan {
        h.update(p.to_string_lossy().as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The stable name of a read error's kind (used in errors files and statistics).
pub fn error_kind(k: &ReadErrorKind) -> &'static str {
    match k {
        ReadErrorKind::InvalidJson(_) => "invalid_json",
        ReadErrorKind::NotAnObject => "not_an_object",
        ReadErrorKind::MissingText => "missing_text",
        ReadErrorKind::TextNotString => "text_not_string",
        ReadErrorKind::InvalidUtf8 => "invalid_utf8",
        ReadErrorKind::LineTooLong { .. } => "line_too_long",
        ReadErrorKind::Io(_) => "io",
    }
}

/// What [`run`] did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// The merged statistics.
    pub stats: RunStats,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CurateError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(|e| CurateError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| CurateError::io(path, e))
}

/// Runs (or resumes) curation of `cfg`'s shard with `engine`.
pub fn run(engine: &Engine, cfg: &RunConfig, policy_path: &str, progress: &dyn Progress) -> Result<RunSummary, CurateError> {
    let started = now();
    let t0 = Instant::now();
    let plan_all = plan(&cfg.inputs)?;
    let (si, sn) = cfg.shard;
    if sn == 0 || si >= sn {
        return Err(CurateError::Input(format!("invalid shard {si}/{sn}")));
    }
    let mine: Vec<(PathBuf, String, Format)> = plan_all.iter().enumerate().filter(|(k, _)| k % sn == si).map(|(_, x)| x.clone()).collect();
    let mut key = RunKey {
        format_version: MANIFEST_FORMAT_VERSION,
        inputs_sha256: inputs_sha256(&plan_all),
        inputs: plan_all.len(),
        shard: [si, sn],
        policy: engine.policy().name.clone(),
        policy_sha256: engine.policy().sha256.clone(),
        model: engine.fast_name().map(str::to_owned),
        second_tier: engine.second_name().map(str::to_owned),
        fields: [
            Some(cfg.reader.fields.id.clone()),
            Some(cfg.reader.fields.text.clone()),
            cfg.reader.fields.source.clone(),
            Some(cfg.reader.fields.url.clone()),
        ],
        max_line_bytes: cfg.reader.max_line_bytes,
        batch: [cfg.batch_docs, cfg.batch_bytes],
        chunking: (engine.policy().chunking.max_bytes, engine.policy().chunking.paragraphs),
        rescored_from: None,
    };
    let prior: Option<(PathBuf, Manifest)> = match &cfg.prior {
        None => {
            if engine.policy().classifier.enabled && engine.fast_name().is_none() {
                return Err(CurateError::Policy("the policy enables the classifier but no model was given".into()));
            }
            None
        }
        Some(dir) => {
            let m = Manifest::load(dir)?;
            let (a, b) = (&m.run, &key);
            let same = a.inputs_sha256 == b.inputs_sha256 && a.shard == b.shard && a.fields == b.fields && a.max_line_bytes == b.max_line_bytes;
            if !same {
                return Err(CurateError::RunMismatch(format!(
                    "{} is not a run over the same inputs, shard, fields and line limit; scores cannot be re-applied",
                    dir.display()
                )));
            }
            if a.chunking != b.chunking {
                return Err(CurateError::RunMismatch(format!(
                    "the policy chunks differently from {} ({:?} vs {:?}); scores are per chunk, so rescore instead",
                    dir.display(),
                    b.chunking,
                    a.chunking
                )));
            }
            key.model = m.run.model.clone();
            key.second_tier = m.run.second_tier.clone();
            key.rescored_from = Some(dir.to_string_lossy().into_owned());
            Some((dir.clone(), m))
        }
    };
    let key = key;
    let out = &cfg.output;
    for d in ["kept", "removed", "errors", "attributes", "stats", ".state", ".partial"] {
        fs::create_dir_all(out.join(d)).map_err(|e| CurateError::io(&out.join(d), e))?;
    }
    let _lock = Lock::acquire(out)?;
    let key_path = out.join("run.json");
    if key_path.exists() {
        let text = fs::read_to_string(&key_path).map_err(|e| CurateError::io(&key_path, e))?;
        let old: RunKey = serde_json::from_str(&text).map_err(|e| CurateError::Format(format!("{}: {e}", key_path.display())))?;
        if old != key {
            return Err(CurateError::RunMismatch(describe_mismatch(&old, &key)));
        }
    } else {
        write_atomic(&key_path, serde_json::to_string_pretty(&key).unwrap().as_bytes())?;
    }

    // Which files are complete already?
    let mut done: BTreeMap<String, FileRecord> = BTreeMap::new();
    for (path, name, _) in &mine {
        if let Some(r) = load_state(out, name)? {
            let outputs_ok = [&r.outputs.kept, &r.outputs.removed, &r.outputs.errors, &r.outputs.attributes, &r.outputs.stats]
                .iter()
                .all(|p| out.join(p).is_file());
            let same_input = r.path == path.to_string_lossy()
                && warden_corpus::sha256_file(path).map(|h| h == r.sha256).unwrap_or(false);
            if outputs_ok && same_input {
                done.insert(name.clone(), r);
                continue;
            }
            let _ = fs::remove_file(out.join(".state").join(format!("{name}.json")));
        }
    }
    let todo: Vec<&(PathBuf, String, Format)> = mine.iter().filter(|(_, n, _)| !done.contains_key(n)).collect();
    let todo_bytes: u64 = todo.iter().map(|(p, _, _)| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    progress.start(todo.len(), todo_bytes, done.len());
    // The first real error stops the files not yet started; it is the one reported.
    let first_err: Mutex<Option<CurateError>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let results: Vec<Option<FileRecord>> = todo
        .par_iter()
        .map(|(path, name, format)| {
            if failed.load(Ordering::Relaxed) {
                return None;
            }
            let prior_attrs = match &prior {
                None => None,
                Some((dir, m)) => match m.files.iter().find(|f| f.name == *name) {
                    Some(f) => Some(dir.join(&f.outputs.attributes)),
                    None => {
                        failed.store(true, Ordering::Relaxed);
                        let e = CurateError::Input(format!("{} has no attributes for {name}", dir.display()));
                        first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        return None;
                    }
                },
            };
            match process_file(engine, cfg, out, path, name, *format, progress, prior_attrs.as_deref()) {
                Ok(r) => Some(r),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    None
                }
            }
        })
        .collect();
    if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let processed = results.len();
    for rec in results.into_iter().flatten() {
        done.insert(rec.name.clone(), rec);
    }
    let files: Vec<FileRecord> = mine.iter().map(|(_, n, _)| done[n].clone()).collect();
    let codes: Vec<String> = engine.taxonomy().codes().map(str::to_owned).collect();
    let stats = merge_file_stats(out, &files, &codes)?;
    let mut totals = Totals::default();
    for f in &files {
        totals.add(f);
    }
    let secs = t0.elapsed().as_secs_f64();
    let proc_recs: Vec<&FileRecord> = files.iter().filter(|f| todo.iter().any(|(_, n, _)| *n == f.name)).collect();
    let pd: u64 = proc_recs.iter().map(|f| f.docs).sum();
    let pt: u64 = proc_recs.iter().map(|f| f.text_bytes).sum();
    let pb: u64 = proc_recs.iter().map(|f| f.bytes).sum();
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        kind: "warden-curate-run".into(),
        software: cfg.software.clone(),
        run: key,
        policy_path: policy_path.to_owned(),
        model_origin: cfg.model_origin.clone(),
        taxonomy: (
            engine.taxonomy().name().to_owned(),
            engine.taxonomy().version().to_owned(),
            engine.taxonomy().codes().map(str::to_owned).collect(),
        ),
        rule_lists: engine.rule_lists().to_vec(),
        decontaminated_rule_terms: engine.decontaminated_terms(),
        blocked_domains: engine.blocked_domains(),
        identity_terms: engine.identity_name().to_owned(),
        pii_masked: engine.policy().pii.mask,
        files,
        totals,
        timings: Timings {
            started,
            finished: now(),
            seconds: secs,
            processed_files: processed,
            resumed_files: mine.len() - processed,
            threads: rayon::current_num_threads(),
            docs_per_second: pd as f64 / secs.max(1e-9),
            text_mb_per_second: pt as f64 / 1e6 / secs.max(1e-9),
            input_mb_per_second: pb as f64 / 1e6 / secs.max(1e-9),
        },
        shard_dirs: Vec::new(),
    };
    write_reports(out, &manifest, &stats, &[])?;
    write_atomic(&out.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap().as_bytes())?;
    let _ = fs::remove_dir(out.join(".partial"));
    Ok(RunSummary { manifest, stats })
}

fn describe_mismatch(old: &RunKey, new: &RunKey) -> String {
    let o = serde_json::to_value(old).unwrap();
    let n = serde_json::to_value(new).unwrap();
    let mut diffs = Vec::new();
    if let (Some(o), Some(n)) = (o.as_object(), n.as_object()) {
        for (k, v) in o {
            if n.get(k) != Some(v) {
                diffs.push(format!("{k}: {} → {}", v, n.get(k).unwrap_or(&serde_json::Value::Null)));
            }
        }
    }
    format!(
        "the output directory belongs to a different run ({}); resume with the same inputs, shard, policy and model, or use a new directory",
        diffs.join("; ")
    )
}

fn load_state(out: &Path, name: &str) -> Result<Option<FileRecord>, CurateError> {
    let p = out.join(".state").join(format!("{name}.json"));
    match fs::read_to_string(&p) {
        Ok(t) => Ok(serde_json::from_str(&t).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CurateError::io(&p, e)),
    }
}

/// Merges the per-file statistics in run order.
pub(crate) fn merge_file_stats(dir: &Path, files: &[FileRecord], codes: &[String]) -> Result<RunStats, CurateError> {
    let mut stats = RunStats::new(codes);
    for f in files {
        let p = dir.join(&f.outputs.stats);
        let t = fs::read_to_string(&p).map_err(|e| CurateError::io(&p, e))?;
        let s: RunStats = serde_json::from_str(&t).map_err(|e| CurateError::Format(format!("{}: {e}", p.display())))?;
        stats.merge(&s).map_err(|e| CurateError::Format(format!("{}: {e}", p.display())))?;
    }
    Ok(stats)
}

/// Writes `stats.json`, `report.md` and `report.html`.
pub(crate) fn write_reports(out: &Path, m: &Manifest, stats: &RunStats, extra_notes: &[String]) -> Result<(), CurateError> {
    let meta = ReportMeta {
        title: "Warden corpus audit".into(),
        run: format!("{} files, inputs {}", m.totals.files, &m.run.inputs_sha256[..12]),
        policy: format!("{} (sha256 {})", m.run.policy, &m.run.policy_sha256[..12]),
        model: match (&m.run.model, &m.run.second_tier) {
            (Some(f), Some(s)) => format!("{f} + second tier {s}"),
            (Some(f), None) => f.clone(),
            (None, _) => "none (classifier off)".into(),
        },
        inputs: m.totals.files,
        identity_terms: m.identity_terms.clone(),
        notes: vec![format!(
            "Rule lists: {}.",
            m.rule_lists.iter().map(|l| format!("{} ({}, {} terms)", l.name, l.licence, l.terms)).collect::<Vec<_>>().join(", ")
        )]
        .into_iter()
        .chain(extra_notes.iter().cloned())
        .collect(),
    };
    write_atomic(&out.join("stats.json"), serde_json::to_string(stats).unwrap().as_bytes())?;
    write_atomic(&out.join("report.md"), warden_audit::render_markdown(stats, &meta).as_bytes())?;
    write_atomic(&out.join("report.html"), warden_audit::render_html(stats, &meta).as_bytes())?;
    Ok(())
}

/// The attributes of an earlier run, read in step with the input (re-apply mode).
struct Prior {
    reader: crate::output::LineReader,
    path: PathBuf,
    batch: Vec<Vec<warden_audit::ChunkScores>>,
}

impl Prior {
    /// Reads the next record, checks it is `d`'s, and keeps its chunk scores.
    fn take(&mut self, d: &Document) -> Result<(), CurateError> {
        let bad = |m: String| CurateError::Format(format!("{}: {m}", self.path.display()));
        let line = self.reader.next_line().map_err(|e| CurateError::io(&self.path, e))?;
        let Some(line) = line else {
            return Err(bad(format!("ends before document {:?} (line {})", d.id, d.location.line)));
        };
        let a: warden_audit::DocAttributes = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        if a.id != d.id || a.line != d.location.line {
            return Err(bad(format!("record for {:?} line {} where the input has {:?} line {}", a.id, a.line, d.id, d.location.line)));
        }
        self.batch.push(a.chunks);
        Ok(())
    }
}

/// Where kept and redacted documents go during the main pass.
enum KeptSink {
    /// Written as JSON lines.
    Lines(LineWriter),
    /// Parquet input written back as Parquet: only the row numbers (and changed texts) are
    /// recorded here; [`parquet_out::write_kept`] writes the file after the main pass.
    Rows(KeptRows),
}

struct Writers {
    kept: KeptSink,
    removed: LineWriter,
    errors: LineWriter,
    attributes: LineWriter,
}

/// Processes one input file. Kept documents of a Parquet input are written as Parquet when
/// its text field is a top-level Utf8/LargeUtf8 column and the Arrow reader can read the
/// file; otherwise as zstd JSON lines, with the reason in [`FileRecord::kept_note`]. (When
/// the Arrow pass fails, the file is redone from the start in JSON-lines mode: the outcome
/// depends on the input only, so resumed runs stay byte-identical.)
#[allow(clippy::too_many_arguments)]
fn process_file(
    engine: &Engine,
    cfg: &RunConfig,
    out: &Path,
    path: &Path,
    name: &str,
    format: Format,
    progress: &dyn Progress,
    prior_attrs: Option<&Path>,
) -> Result<FileRecord, CurateError> {
    let (text_col, note) = match format {
        Format::Parquet => match parquet_out::text_column(path, &cfg.reader.fields.text) {
            Ok(i) => (Some(i), None),
            Err(why) => (None, Some(format!("kept documents written as zstd JSON lines, not Parquet: {why}"))),
        },
        _ => (None, None),
    };
    match process_file_as(engine, cfg, out, path, name, format, progress, prior_attrs, text_col, note)? {
        Ok(rec) => Ok(rec),
        Err(why) => {
            let note = Some(format!("kept documents written as zstd JSON lines, not Parquet: writing Parquet failed: {why}"));
            match process_file_as(engine, cfg, out, path, name, format, progress, prior_attrs, None, note)? {
                Ok(rec) => Ok(rec),
                Err(why) => Err(CurateError::Format(why)),
            }
        }
    }
}

/// [`process_file`] with the kept output decided: Parquet with the text in column
/// `text_col`, or JSON lines. The inner error is a failure to write the kept Parquet file.
#[allow(clippy::too_many_arguments)]
fn process_file_as(
    engine: &Engine,
    cfg: &RunConfig,
    out: &Path,
    path: &Path,
    name: &str,
    format: Format,
    progress: &dyn Progress,
    prior_attrs: Option<&Path>,
    text_col: Option<usize>,
    mut note: Option<String>,
) -> Result<Result<FileRecord, String>, CurateError> {
    let mut prior = match prior_attrs {
        Some(p) => Some(Prior { reader: crate::output::LineReader::open(p)?, path: p.to_path_buf(), batch: Vec::new() }),
        None => None,
    };
    let t0 = Instant::now();
    let part = out.join(".partial").join(name);
    if part.exists() {
        fs::remove_dir_all(&part).map_err(|e| CurateError::io(&part, e))?;
    }
    fs::create_dir_all(&part).map_err(|e| CurateError::io(&part, e))?;
    let outputs = FileOutputs {
        kept: match text_col {
            Some(_) => format!("kept/{name}.parquet"),
            None => format!("kept/{name}.jsonl{}", kept_compression(format).suffix()),
        },
        removed: format!("removed/{name}.jsonl.gz"),
        errors: format!("errors/{name}.jsonl"),
        attributes: format!("attributes/{name}.jsonl.gz"),
        stats: format!("stats/{name}.json"),
    };
    let partial = |rel: &str| part.join(rel.replace('/', "_"));
    let mut w = Writers {
        kept: match text_col {
            Some(_) => KeptSink::Rows(KeptRows::default()),
            None => KeptSink::Lines(LineWriter::create(&partial(&outputs.kept), kept_compression(format))?),
        },
        removed: LineWriter::create(&partial(&outputs.removed), Compression::Gzip)?,
        errors: LineWriter::create(&partial(&outputs.errors), Compression::None)?,
        attributes: LineWriter::create(&partial(&outputs.attributes), Compression::Gzip)?,
    };
    let codes: Vec<String> = engine.taxonomy().codes().map(str::to_owned).collect();
    let mut stats = RunStats::new(&codes);
    let mut rec = FileRecord {
        path: path.to_string_lossy().into_owned(),
        name: name.to_owned(),
        sha256: String::new(),
        bytes: fs::metadata(path).map_err(|e| CurateError::io(path, e))?.len(),
        docs: 0,
        kept: 0,
        dropped: 0,
        redacted: 0,
        errors: 0,
        text_bytes: 0,
        outputs: outputs.clone(),
        kept_note: None,
        seconds: 0.0,
    };
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| CurateError::io(&p, e)
    };
    match warden_corpus::open(path, &cfg.reader) {
        Err(e) => {
            // The whole file is unreadable (not gzip, unreadable Parquet footer, ...): one
            // error record, and the run goes on.
            let line = serde_json::json!({
                "file": path.to_string_lossy(), "line": 0, "byte_offset": null,
                "kind": "unreadable_file", "message": e.to_string(), "excerpt": "",
            });
            w.errors.line(line.to_string().as_bytes()).map_err(io(&part))?;
            // Nothing is kept from an unreadable file: no reason to explain its kept format.
            note = None;
            stats.observe_error("unreadable_file");
            rec.errors += 1;
        }
        Ok(items) => {
            let mut batch: Vec<Document> = Vec::new();
            let mut batch_bytes = 0usize;
            for item in items {
                match item {
                    Item::Doc(d) => {
                        if let Some(p) = &mut prior {
                            p.take(&d)?;
                        }
                        batch_bytes += d.text.len();
                        batch.push(d);
                        if batch.len() >= cfg.batch_docs || batch_bytes >= cfg.batch_bytes {
                            flush(engine, cfg, &mut batch, &mut w, &mut stats, &mut rec, progress, &part, prior.as_mut())?;
                            batch_bytes = 0;
                        }
                    }
                    Item::Error(e) => {
                        let line = serde_json::json!({
                            "file": e.location.file.to_string_lossy(),
                            "line": e.location.line,
                            "byte_offset": e.location.byte_offset,
                            "kind": error_kind(&e.kind),
                            "message": e.kind.to_string(),
                            "excerpt": e.excerpt,
                        });
                        w.errors.line(line.to_string().as_bytes()).map_err(io(&part))?;
                        stats.observe_error(error_kind(&e.kind));
                        rec.errors += 1;
                    }
                }
            }
            flush(engine, cfg, &mut batch, &mut w, &mut stats, &mut rec, progress, &part, prior.as_mut())?;
            if let Some(p) = &mut prior {
                if let Ok(Some(_)) = p.reader.next_line() {
                    return Err(CurateError::Format(format!("{} has more records than {} has documents", p.path.display(), path.display())));
                }
            }
        }
    }
    for lw in [w.removed, w.errors, w.attributes] {
        lw.finish().map_err(io(&part))?;
    }
    match (w.kept, text_col) {
        (KeptSink::Lines(lw), _) => lw.finish().map_err(io(&part))?,
        (KeptSink::Rows(rows), Some(col)) => {
            // The second, streaming pass over the input.
            if let Err(why) = parquet_out::write_kept(path, &partial(&outputs.kept), col, &rows) {
                return Ok(Err(why));
            }
        }
        (KeptSink::Rows(_), None) => unreachable!("kept rows are recorded only with a text column"),
    }
    rec.kept_note = note;
    fs::write(partial(&outputs.stats), serde_json::to_string(&stats).unwrap()).map_err(io(&part))?;
    rec.sha256 = warden_corpus::sha256_file(path).map_err(|e| CurateError::Input(e.to_string()))?;
    for rel in [&outputs.kept, &outputs.removed, &outputs.errors, &outputs.attributes, &outputs.stats] {
        fs::rename(partial(rel), out.join(rel)).map_err(io(&out.join(rel)))?;
    }
    let _ = fs::remove_dir(&part);
    rec.seconds = t0.elapsed().as_secs_f64();
    write_atomic(
        &out.join(".state").join(format!("{name}.json")),
        serde_json::to_string_pretty(&rec).unwrap().as_bytes(),
    )?;
    progress.file_done(rec.bytes);
    Ok(Ok(rec))
}

#[allow(clippy::too_many_arguments)]
fn flush(
    engine: &Engine,
    cfg: &RunConfig,
    batch: &mut Vec<Document>,
    w: &mut Writers,
    stats: &mut RunStats,
    rec: &mut FileRecord,
    progress: &dyn Progress,
    part: &Path,
    prior: Option<&mut Prior>,
) -> Result<(), CurateError> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes: Vec<Outcome> = engine.process_with(batch, prior.map(|p| std::mem::take(&mut p.batch)))?;
    let io = |e: std::io::Error| CurateError::io(part, e);
    let text_field = &cfg.reader.fields.text;
    let mut text_bytes = 0u64;
    for (d, o) in batch.iter().zip(&outcomes) {
        let attrs = serde_json::to_vec(&o.attrs).unwrap();
        w.attributes.line(&attrs).map_err(io)?;
        match o.attrs.action {
            Action::Keep | Action::Redact => {
                let spliced = match (&o.new_text, &d.line) {
                    (Some(t), Some(line)) => crate::output::splice_text(line, text_field, t),
                    _ => None,
                };
                match (&mut w.kept, &o.new_text, &d.line) {
                    // Parquet: remember the row (and its text when redaction or PII masking
                    // changed it) for the second pass.
                    (KeptSink::Rows(rows), new_text, _) => rows.push(d.location.line, new_text.as_deref()),
                    (KeptSink::Lines(kept), None, Some(line)) => kept.line(line.as_bytes()).map_err(io)?,
                    (KeptSink::Lines(kept), _, _) if spliced.is_some() => {
                        kept.line(spliced.as_deref().unwrap_or_default().as_bytes()).map_err(io)?
                    }
                    (KeptSink::Lines(kept), new_text, _) => {
                        let mut raw = d.raw.clone();
                        if let Some(t) = new_text {
                            raw[text_field.as_str()] = serde_json::Value::String(t.clone());
                        }
                        kept.line(serde_json::to_string(&raw).unwrap().as_bytes()).map_err(io)?;
                    }
                }
                if o.attrs.action == Action::Keep {
                    rec.kept += 1;
                } else {
                    rec.redacted += 1;
                }
            }
            Action::Drop => {
                let record = match &d.line {
                    Some(l) => l.clone(),
                    None => serde_json::to_string(&d.raw).unwrap(),
                };
                let warden = serde_json::json!({
                    "action": "drop",
                    "id": o.attrs.id,
                    "line": o.attrs.line,
                    "reasons": o.attrs.reasons,
                });
                w.removed
                    .parts(&[b"{\"record\":", record.as_bytes(), b",\"warden\":", warden.to_string().as_bytes(), b"}"])
                    .map_err(io)?;
                rec.dropped += 1;
            }
        }
        stats.observe(&o.attrs, &d.text);
        text_bytes += d.text.len() as u64;
    }
    rec.docs += batch.len() as u64;
    rec.text_bytes += text_bytes;
    progress.docs(batch.len() as u64, text_bytes);
    batch.clear();
    Ok(())
}

/// An exclusive lock on an output directory (`DIR/.lock` holding the pid). A lock left by
/// a killed process is taken over when that process no longer exists.
struct Lock(PathBuf);

impl Lock {
    fn acquire(dir: &Path) -> Result<Lock, CurateError> {
        let p = dir.join(".lock");
        for _ in 0..2 {
            match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Lock(p));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = fs::read_to_string(&p).unwrap_or_default();
                    let alive = pid.trim().parse::<u32>().ok().is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id());
                    if alive {
                        return Err(CurateError::Locked(format!(
                            "{} is in use by process {} (remove {} if that is wrong)",
                            dir.display(),
                            pid.trim(),
                            p.display()
                        )));
                    }
                    let _ = fs::remove_file(&p);
                }
                Err(e) => return Err(CurateError::io(&p, e)),
            }
        }
        Err(CurateError::Locked(format!("cannot take {}", p.display())))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
