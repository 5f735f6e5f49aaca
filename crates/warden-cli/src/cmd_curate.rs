//! `warden curate`: filter a web corpus with layered safeguards and keep the proof.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use warden_core::{Classifier, Scores, Taxonomy};
use warden_curate::{CurationPolicy, Engine, PlainSecondTier, Progress, RunConfig, SecondTier, Software};
use warden_heads::CascadeClassifier;

use crate::models;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CurateArgs {
    #[command(subcommand)]
    pub command: Option<CurateCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum CurateCommand {
    /// Prove that kept + redacted + removed + errors account for every input line, document
    /// by document, and that kept records are the input's bytes.
    Verify {
        /// A run directory (or a merged directory).
        dir: PathBuf,
    },
    /// Combine the manifests and reports of the shards of one run.
    Merge {
        /// Where to write the merged manifest and report.
        #[arg(long, short)]
        output: PathBuf,
        /// Shard output directories.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Merge even when some shards are missing (the report says which).
        #[arg(long)]
        allow_partial: bool,
    },
    /// Print the built-in curation policy (a starting point for your own).
    Policy,
}

#[derive(Args)]
pub struct RunArgs {
    /// Input files or glob patterns (JSONL, .jsonl.gz, .jsonl.zst, .parquet).
    #[arg(long, short, num_args = 1.., required = true)]
    pub input: Vec<String>,
    /// Output directory (created; an existing run there is resumed).
    #[arg(long, short, required = true)]
    pub output: Option<PathBuf>,
    /// Curation policy TOML (default: the built-in policies/curate/default.toml).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Fast-tier model directory (default: $WARDEN_MODEL, else the embedded fast tier,
    /// even where the binary embeds a cascade). A cascade directory supplies both the fast
    /// tier and the second tier.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Second tier for the uncertain band: an encoder-tier or cascade model directory.
    #[arg(long)]
    pub second_tier: Option<PathBuf>,
    /// Re-apply this policy to the scores of an earlier run (its output directory) instead
    /// of scoring again: same --input, --shard and fields as that run, same chunking in the
    /// policy. Rules, domain lists, thresholds and the decision follow the new policy.
    #[arg(long, value_name = "RUN_DIR")]
    pub reapply_from: Option<PathBuf>,
    /// Process only shard I of N (files k with k % N == I of the sorted input list).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Record field holding the document id (default `id`; missing ids become FILE:LINE).
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// Record field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Record field holding the source (default `source`, falling back to the url's host).
    #[arg(long)]
    pub source_field: Option<String>,
    /// Record field holding the url.
    #[arg(long, default_value = "url")]
    pub url_field: String,
    /// Lines longer than this many bytes go to the errors file unread.
    #[arg(long, default_value_t = warden_corpus::DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Documents per scoring batch.
    #[arg(long, default_value_t = 512)]
    pub batch_docs: usize,
    /// Taxonomy TOML (must match the model's).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
}

pub fn run(a: CurateArgs) -> Result<()> {
    match a.command {
        Some(CurateCommand::Verify { dir }) => verify(&dir),
        Some(CurateCommand::Merge { output, shards, allow_partial }) => {
            let s = warden_curate::merge(&output, &shards, allow_partial).context("merging shards")?;
            let t = &s.manifest.totals;
            eprintln!(
                "warden curate merge: {} shards, {} files, {} docs: {} kept, {} redacted, {} dropped, {} errors → {}",
                s.manifest.shard_dirs.len(),
                t.files,
                t.docs,
                t.kept,
                t.redacted,
                t.dropped,
                t.errors,
                output.join("report.html").display()
            );
            if !s.missing.is_empty() {
                eprintln!("warden curate merge: shards {:?} are missing", s.missing);
            }
            Ok(())
        }
        Some(CurateCommand::Policy) => {
            print!("{}", warden_curate::policy::DEFAULT_POLICY_TOML);
            Ok(())
        }
        None => curate(a.run),
    }
}

fn verify(dir: &Path) -> Result<()> {
    let r = warden_curate::verify(dir).with_context(|| format!("verifying {}", dir.display()))?;
    let (mut items, mut kept, mut red, mut drop, mut err) = (0, 0, 0, 0, 0);
    for f in &r.files {
        items += f.docs;
        kept += f.kept;
        red += f.redacted;
        drop += f.dropped;
        err += f.errors;
        for p in &f.problems {
            eprintln!("{}: {p}", f.name);
        }
    }
    for p in &r.problems {
        eprintln!("{p}");
    }
    let bad = r.files.iter().filter(|f| !f.problems.is_empty()).count();
    println!(
        "{} files, {items} input lines: {kept} kept + {red} redacted + {drop} dropped + {err} errors = {}",
        r.files.len(),
        kept + red + drop + err
    );
    if !r.ok() {
        bail!("verification FAILED: {bad} of {} files have problems", r.files.len());
    }
    println!("verification passed");
    Ok(())
}

fn curate(a: RunArgs) -> Result<()> {
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("setting up the thread pool")?;
    }
    let output = a.output.clone().expect("required by clap");
    let taxonomy = crate::load_taxonomy(a.taxonomy.as_deref())?;
    let policy = match &a.policy {
        Some(p) => CurationPolicy::load(p, &taxonomy).with_context(|| format!("loading curation policy {}", p.display()))?,
        None => CurationPolicy::builtin(&taxonomy)?,
    };
    let (fast, second, origin) = if let Some(prior) = &a.reapply_from {
        (None, None, format!("scores re-applied from {}", prior.display()))
    } else {
        let (fast, mut second, origin) = load_models(a.model.as_deref(), &taxonomy)?;
        if let Some(dir) = &a.second_tier {
            second = Some(load_second(dir)?);
        }
        (fast, second, origin)
    };
    let engine = Engine::new(policy, taxonomy, fast, second)?.with_url_field(&a.url_field);
    let inputs = warden_corpus::expand_globs(&a.input)?;
    let shard = match &a.shard {
        Some(s) => warden_corpus::parse_shard_spec(s)?,
        None => (0, 1),
    };
    let mut cfg = RunConfig::new(inputs, output.clone());
    cfg.shard = shard;
    cfg.reader.fields.id = a.id_field;
    cfg.reader.fields.text = a.text_field;
    cfg.reader.fields.source = a.source_field;
    cfg.reader.fields.url = a.url_field;
    cfg.reader.max_line_bytes = a.max_line_bytes;
    cfg.batch_docs = a.batch_docs.max(1);
    cfg.software = Software { version: env!("CARGO_PKG_VERSION").into(), revision: env!("WARDEN_REVISION").into() };
    cfg.model_origin = origin;
    cfg.prior = a.reapply_from.clone();
    let policy_path = a.policy.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in curate-default".into());
    let progress = Bar::new();
    let summary = warden_curate::run(&engine, &cfg, &policy_path, &progress)?;
    progress.finish();
    let m = &summary.manifest;
    let t = &m.totals;
    eprintln!(
        "warden curate: {} files ({} resumed), {} docs: {} kept, {} redacted, {} dropped, {} errors; {:.1} s, {:.0} docs/s, {:.1} MB/s of text on {} threads",
        t.files,
        m.timings.resumed_files,
        t.docs,
        t.kept,
        t.redacted,
        t.dropped,
        t.errors,
        m.timings.seconds,
        m.timings.docs_per_second,
        m.timings.text_mb_per_second,
        m.timings.threads
    );
    eprintln!("warden curate: report {}", output.join("report.html").display());
    Ok(())
}

/// The fast tier, the second tier (for a cascade) and where they came from.
type Models = (Option<Arc<dyn Classifier>>, Option<Arc<dyn SecondTier>>, String);

/// The fast tier and, for a cascade, its second tier.
fn load_models(model: Option<&Path>, taxonomy: &Taxonomy) -> Result<Models> {
    if let Some(dir) = model {
        if models::manifest_kind(dir).ok().as_deref() == Some(warden_heads::cascade::CASCADE_KIND) {
            let c = Arc::new(models::load_cascade(dir)?);
            let origin = dir.display().to_string();
            return Ok((Some(Arc::new(CascadeFast(c.clone()))), Some(Arc::new(CascadeSecond(c))), origin));
        }
    }
    // Corpus scale: with no model named, the embedded fast tier (the curation policy's
    // thresholds are tuned on it); `--second-tier` adds the encoder for the uncertain band.
    let loaded = models::load_default_tier(model, None, models::DefaultTier::Fast)?;
    if loaded.model.taxonomy().codes().ne(taxonomy.codes()) {
        bail!("the model's taxonomy differs from the run's (pass the model's taxonomy with --taxonomy)");
    }
    Ok((Some(Arc::from(loaded.model)), None, loaded.origin))
}

fn load_second(dir: &Path) -> Result<Arc<dyn SecondTier>> {
    if models::manifest_kind(dir)? == warden_heads::cascade::CASCADE_KIND {
        return Ok(Arc::new(CascadeSecond(Arc::new(models::load_cascade(dir)?))));
    }
    Ok(Arc::new(PlainSecondTier(Arc::from(models::load_dir(dir)?))))
}

/// A cascade's fast tier as a classifier.
struct CascadeFast(Arc<CascadeClassifier>);

impl Classifier for CascadeFast {
    fn taxonomy(&self) -> &Taxonomy {
        self.0.fast.taxonomy()
    }
    fn name(&self) -> &str {
        self.0.fast.name()
    }
    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        self.0.fast.predict_batch(texts)
    }
}

/// A cascade's encoder with its learned combiner as the second tier.
struct CascadeSecond(Arc<CascadeClassifier>);

impl SecondTier for CascadeSecond {
    fn name(&self) -> &str {
        &self.0.manifest.name
    }
    fn rescore(&self, texts: &[&str], fast: &[Scores]) -> warden_core::Result<Vec<Scores>> {
        let enc = self.0.encoder.predict_detailed(texts).map_err(|e| warden_core::Error::Classifier(e.to_string()))?;
        Ok(enc.iter().zip(fast).map(|(d, f)| warden_heads::cascade::combine(&self.0.manifest, f, &d.scores)).collect())
    }
}

/// Progress bar over the shard's bytes on disk, with documents/s.
struct Bar {
    pb: ProgressBar,
    docs: std::sync::atomic::AtomicU64,
}

impl Bar {
    fn new() -> Self {
        Bar { pb: crate::progress::bar(0, "curating", true), docs: Default::default() }
    }
    fn finish(&self) {
        self.pb.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start(&self, files: usize, bytes: u64, resumed: usize) {
        self.pb.set_length(bytes);
        if resumed > 0 {
            self.pb.println(format!("warden curate: resuming: {resumed} files already complete, {files} to do"));
        }
    }
    fn docs(&self, docs: u64, _text_bytes: u64) {
        let n = self.docs.fetch_add(docs, std::sync::atomic::Ordering::Relaxed) + docs;
        let secs = self.pb.elapsed().as_secs_f64().max(1e-3);
        self.pb.set_message(format!("{:.0} docs/s", n as f64 / secs));
    }
    fn file_done(&self, bytes: u64) {
        self.pb.inc(bytes);
    }
}
