//! `warden curate merge`: one manifest and one report for the shards of a run.
//!
//! Shards (`--shard I/N`) run independently — Slurm array tasks, Kubernetes Jobs, Ray or
//! Spark tasks calling the CLI — each into its own directory. Merging checks that they are
//! shards of the same run (same input list, policy, model, reader options and shard count,
//! each index once), then writes a merged `manifest.json` (kind `warden-curate-merged`,
//! pointing at the shard directories), `stats.json`, `report.md` and `report.html`. The
//! per-file statistics are merged in the run's file order, so the merged report is
//! identical to the report of the same run done unsharded. Outputs stay where the shards
//! wrote them; `warden curate verify` on the merged directory verifies every shard.

use std::fs;
use std::path::{Path, PathBuf};

use crate::run::{merge_file_stats, write_reports, FileRecord, Manifest, Timings, Totals};
use crate::CurateError;

/// What [`merge`] produced.
#[derive(Debug, Clone)]
pub struct MergeSummary {
    /// The merged manifest.
    pub manifest: Manifest,
    /// Shard indices that are missing (empty when complete).
    pub missing: Vec<usize>,
}

fn read_manifest(dir: &Path) -> Result<Manifest, CurateError> {
    let m = Manifest::load(dir)?;
    if m.kind != "warden-curate-run" {
        return Err(CurateError::Format(format!("{}: not a shard manifest (kind {})", dir.join("manifest.json").display(), m.kind)));
    }
    Ok(m)
}

/// Merges shard directories into `out`. Fails when they are not shards of one run or an
/// index appears twice; missing shards fail unless `allow_partial` (then the report says
/// so and they are listed in the summary).
pub fn merge(out: &Path, shards: &[PathBuf], allow_partial: bool) -> Result<MergeSummary, CurateError> {
    if shards.is_empty() {
        return Err(CurateError::Input("no shard directories given".into()));
    }
    let mut ms: Vec<(PathBuf, Manifest)> = Vec::new();
    for d in shards {
        ms.push((d.clone(), read_manifest(d)?));
    }
    ms.sort_by_key(|(_, m)| m.run.shard[0]);
    let first = ms[0].1.clone();
    let count = first.run.shard[1];
    for (d, m) in &ms {
        let mut a = m.run.clone();
        let mut b = first.run.clone();
        a.shard[0] = 0;
        b.shard[0] = 0;
        if a != b {
            return Err(CurateError::RunMismatch(format!(
                "{} is not a shard of the same run as {} (inputs, policy, model, fields or shard count differ)",
                d.display(),
                ms[0].0.display()
            )));
        }
    }
    for w in ms.windows(2) {
        if w[0].1.run.shard[0] == w[1].1.run.shard[0] {
            return Err(CurateError::Input(format!(
                "{} and {} are both shard {}/{count}",
                w[0].0.display(),
                w[1].0.display(),
                w[0].1.run.shard[0]
            )));
        }
    }
    let present: Vec<usize> = ms.iter().map(|(_, m)| m.run.shard[0]).collect();
    let missing: Vec<usize> = (0..count).filter(|i| !present.contains(i)).collect();
    if !missing.is_empty() && !allow_partial {
        return Err(CurateError::Input(format!("shards {missing:?} of {count} are missing (pass --allow-partial to merge anyway)")));
    }
    fs::create_dir_all(out).map_err(|e| CurateError::io(out, e))?;
    // Files in run order: file k of the run belongs to shard k % count, as its (k / count)-th file.
    let total_files: usize = ms.iter().map(|(_, m)| m.files.len()).sum();
    let mut files: Vec<(String, FileRecord)> = Vec::with_capacity(total_files);
    let mut cursors = vec![0usize; count];
    let by_index: std::collections::BTreeMap<usize, &(PathBuf, Manifest)> = ms.iter().map(|x| (x.1.run.shard[0], x)).collect();
    for k in 0..first.run.inputs {
        let s = k % count;
        if let Some((d, m)) = by_index.get(&s) {
            if let Some(f) = m.files.get(cursors[s]) {
                let rel = relative(out, d);
                let mut f = f.clone();
                for p in [&mut f.outputs.kept, &mut f.outputs.removed, &mut f.outputs.errors, &mut f.outputs.attributes, &mut f.outputs.stats] {
                    *p = format!("{rel}/{p}");
                }
                files.push((rel, f));
            }
            cursors[s] += 1;
        }
    }
    let records: Vec<FileRecord> = files.iter().map(|(_, f)| f.clone()).collect();
    let stats = merge_file_stats(out, &records, &first.taxonomy.2)?;
    let mut totals = Totals::default();
    for (_, f) in &files {
        totals.add(f);
    }
    let seconds: f64 = ms.iter().map(|(_, m)| m.timings.seconds).fold(0.0, f64::max);
    let mut run = first.run.clone();
    run.shard = [0, count];
    let manifest = Manifest {
        kind: "warden-curate-merged".into(),
        run,
        files: files.into_iter().map(|(_, f)| f).collect(),
        totals,
        timings: Timings {
            started: ms.iter().map(|(_, m)| m.timings.started).min().unwrap_or(0),
            finished: ms.iter().map(|(_, m)| m.timings.finished).max().unwrap_or(0),
            seconds,
            processed_files: ms.iter().map(|(_, m)| m.timings.processed_files).sum(),
            resumed_files: ms.iter().map(|(_, m)| m.timings.resumed_files).sum(),
            threads: ms.iter().map(|(_, m)| m.timings.threads).sum(),
            ..Default::default()
        },
        shard_dirs: ms.iter().map(|(d, _)| relative(out, d)).collect(),
        ..first
    };
    let notes: Vec<String> = if missing.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "PARTIAL MERGE: shards {missing:?} of {count} are missing; this report covers {} of the run's {} input files.",
            manifest.files.len(),
            manifest.run.inputs
        )]
    };
    write_reports(out, &manifest, &stats, &notes)?;
    let p = out.join("manifest.json");
    fs::write(&p, serde_json::to_string_pretty(&manifest).unwrap()).map_err(|e| CurateError::io(&p, e))?;
    Ok(MergeSummary { manifest, missing })
}

/// `target` relative to `base` when both are under a common directory, else absolute.
fn relative(base: &Path, target: &Path) -> String {
    let abs = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (b, t) = (abs(base), abs(target));
    let bc: Vec<_> = b.components().collect();
    let tc: Vec<_> = t.components().collect();
    let common = bc.iter().zip(&tc).take_while(|(x, y)| x == y).count();
    if common <= 1 {
        return t.to_string_lossy().into_owned();
    }
    let mut r = PathBuf::new();
    for _ in common..bc.len() {
        r.push("..");
    }
    for c in &tc[common..] {
        r.push(c.as_os_str());
    }
    r.to_string_lossy().into_owned()
}
