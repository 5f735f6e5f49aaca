//! `warden`: detect undesired content, build training data, train, evaluate and score.
//!
//! Every subcommand is a thin layer over the library crates; this binary only parses
//! arguments, reports progress and turns errors into messages with context.

mod cmd_al;
mod cmd_curate;
mod cmd_data;
mod cmd_eval;
mod cmd_label;
mod cmd_model;
mod cmd_qc;
mod cmd_score;
mod cmd_serve;
mod cmd_train;
mod cmd_train_encoder;
mod models;
mod progress;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use warden_core::Taxonomy;

/// mimalloc rather than glibc's malloc: the encoder allocates and frees tensors of several
/// megabytes per layer, and glibc returns that memory to the kernel and faults it back in
/// on every batch (the encoder ran 1.1–1.35× faster with mimalloc alone; docs/encoder-tier.md, "Speed").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Detect undesired content (sexual, hate, violence, harassment, self-harm and their severe subcategories) in text."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score texts (arguments, or JSONL `{"text": ...}` lines on stdin) and print one JSON
    /// object per text: {"flagged", "categories", "category_scores"}.
    Score(cmd_score::ScoreArgs),
    /// Evaluate a model on labelled JSONL: AUPRC, ROC-AUC, best F1 and policy metrics per
    /// category and for `any`.
    Eval(cmd_eval::EvalArgs),
    /// Train a model from the shared labelled datasets (or prepared JSONL files).
    Train(cmd_train::TrainArgs),
    /// Build the unified training set and its datasheet.
    #[command(subcommand)]
    Data(cmd_data::DataCommand),
    /// The transformer encoder: fetch the default one into the local cache.
    #[command(subcommand)]
    Model(cmd_model::ModelCommand),
    /// Run the moderation service: an OpenAI-compatible POST /v1/moderations with named
    /// policies, batching, Prometheus metrics, spike monitoring and consented sampling.
    Serve(cmd_serve::ServeArgs),
    /// Filter a web corpus (JSONL, .gz, .zst, Parquet) with layered safeguards — domain and
    /// word lists, the fast classifier, an optional second tier — into kept, redacted and
    /// removed documents with reasons, an attributes sidecar, a manifest and an audit report.
    /// Resumable and shardable; see docs/curate.md.
    Curate(cmd_curate::CurateArgs),
    /// Active learning: select the next batch to annotate from an unlabelled pool, or
    /// simulate active vs random selection with a labelled pool as the oracle.
    #[command(subcommand)]
    Al(cmd_al::AlCommand),
    /// The labeling loop's store: import samples, accounts, batches and assignments, the
    /// annotation UI, and export of labelled data for training.
    #[command(subcommand)]
    Label(cmd_label::LabelCommand),
    /// Label quality control: audit samples, agreement and annotator F1, the
    /// cross-validation mislabel hunt and its relabel rule.
    #[command(subcommand)]
    Qc(cmd_qc::QcCommand),
    /// Print the taxonomy (built-in, or a TOML file) with its definitions.
    Taxonomy {
        /// A taxonomy TOML file instead of the built-in one.
        #[arg(long)]
        taxonomy: Option<PathBuf>,
        /// Print the TOML form (a starting point for a custom taxonomy).
        #[arg(long)]
        toml: bool,
    },
}

/// Loads `--taxonomy FILE` or the built-in taxonomy.
pub(crate) fn load_taxonomy(path: Option<&std::path::Path>) -> Result<Taxonomy> {
    match path {
        Some(p) => Taxonomy::load(p).with_context(|| format!("loading taxonomy {}", p.display())),
        None => Ok(Taxonomy::builtin()),
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score(a) => cmd_score::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Train(a) => cmd_train::run(a),
        Command::Data(c) => cmd_data::run(c),
        Command::Model(c) => cmd_model::run(c),
        Command::Serve(a) => cmd_serve::run(a),
        Command::Curate(a) => cmd_curate::run(a),
        Command::Label(c) => cmd_label::run(c),
        Command::Qc(c) => cmd_qc::run(c),
        Command::Al(c) => cmd_al::run(c),
        Command::Taxonomy { taxonomy, toml } => show_taxonomy(taxonomy, toml),
    };
    if let Err(e) = result {
        eprintln!("warden: error: {e:#}");
        std::process::exit(1);
    }
}

fn show_taxonomy(path: Option<PathBuf>, toml: bool) -> Result<()> {
    let t = load_taxonomy(path.as_deref())?;
    if toml {
        print!("{}", t.to_toml_string());
        return Ok(());
    }
    println!("{} {} ({} categories)\n", t.name(), t.version(), t.len());
    for c in t.categories() {
        let parent = c.parent.as_deref().map(|p| format!(" (subcategory of {p})")).unwrap_or_default();
        println!("{:<4} {}{}\n     {}", c.code, c.name, parent, c.definition);
        for s in &c.undesired_subcategories {
            println!("     undesired:     {s}");
        }
        for s in &c.not_undesired {
            println!("     not undesired: {s}");
        }
        println!();
    }
    Ok(())
}
