use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use warden_core::Taxonomy;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Load every dataset spec, map it onto the taxonomy, drop held-out and duplicate rows,
    /// split train/dev by text hash, and write train.jsonl, dev.jsonl, stats.json and
    /// datasheet.md.
    Build {
        #[command(flatten)]
        data: DataArgs,
        /// Output directory.
        #[arg(long, default_value = "out/data")]
        out: PathBuf,
    },
}

/// Where training data comes from; shared by `data build` and `train`.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// Root of the shared datasets (default: $WARDEN_DATA, else ../shared/data).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Directory of dataset spec TOMLs (default: $WARDEN_DATASETS, else the repository's
    /// datasets/).
    #[arg(long)]
    pub specs: Option<PathBuf>,
    /// Leave out every source the catalogue marks research-only (no licence for
    /// commercial use).
    #[arg(long)]
    pub exclude_research_only: bool,
    /// Use only these datasets (comma-separated spec names).
    #[arg(long, value_delimiter = ',')]
    pub datasets: Vec<String>,
    /// Leave out these datasets (comma-separated spec names); the datasheet lists them as
    /// excluded. The default encoder heads are trained with
    /// `--exclude-datasets holistic-bias-counterfactuals` (docs/encoder-tier.md says why).
    #[arg(long, value_delimiter = ',')]
    pub exclude_datasets: Vec<String>,
    /// Fraction of rows (by text hash) that go to dev.
    #[arg(long, default_value_t = 0.2)]
    pub dev_fraction: f64,
    /// A taxonomy TOML instead of the built-in one.
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
}

pub fn build_data(a: &DataArgs, taxonomy: &Taxonomy) -> Result<warden_data::BuiltData> {
    let mut opts = warden_data::BuildOptions::default();
    if let Some(r) = &a.data_root {
        opts.data_root = r.clone();
    }
    if let Some(s) = &a.specs {
        opts.spec_dir = s.clone();
    }
    opts.exclude_research_only = a.exclude_research_only;
    if !a.datasets.is_empty() {
        opts.datasets = Some(a.datasets.clone());
    }
    opts.exclude_datasets = a.exclude_datasets.clone();
    opts.dev_fraction = a.dev_fraction;
    let pb = crate::progress::spinner("loading datasets");
    let built = warden_data::build(&opts, taxonomy).with_context(|| {
        format!(
            "building training data from {} with specs in {}",
            opts.data_root.display(),
            opts.spec_dir.display()
        )
    })?;
    pb.finish_and_clear();
    Ok(built)
}

pub fn run(c: DataCommand) -> Result<()> {
    match c {
        DataCommand::Build { data, out } => {
            let taxonomy = crate::load_taxonomy(data.taxonomy.as_deref())?;
            let mut built = build_data(&data, &taxonomy)?;
            let out = warden_data::write_build(&mut built, &taxonomy, &out)
                .with_context(|| format!("writing the build to {}", out.display()))?;
            eprintln!(
                "warden data build: {} train rows (sha256 {}), {} dev rows (sha256 {}), datasheet {}",
                built.train.len(),
                &out.train_sha256[..12],
                built.dev.len(),
                &out.dev_sha256[..12],
                out.datasheet.display()
            );
            Ok(())
        }
    }
}
