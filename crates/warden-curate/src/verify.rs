//! `warden curate verify DIR`: nothing lost, nothing altered beyond what the attributes say.
//!
//! For every input file of the run (or of every shard of a merged run) the input is read
//! again with the run's reader options and walked in step with its outputs:
//!
//! * the input's sha256 must equal the manifest's;
//! * every unreadable line must have an errors record with the same line and kind;
//! * every document must have the next attributes record (same id and line), and
//!   * `keep`: the next kept record is the input line byte for byte (or, with PII masking,
//!     the record with the masked text);
//!   * `redact`: the next kept record equals the input record except for its text, which is
//!     the input text without the attributes' `redacted` spans (then PII-masked if enabled);
//!   * a kept Parquet file is read like the input (rows rendered as JSON with the run's
//!     reader options), and its next row must render as the input row does (with the
//!     expected text where redaction or masking changed it);
//!   * `drop`: the next removed record's `record` is the input record;
//! * no output may have records left over, and the counts must match the manifest.
//!
//! Memory is bounded: all streams are read line by line. Nothing is rescored.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;
use warden_audit::{Action, DocAttributes};
use warden_corpus::{FieldMap, Item, ReaderOptions};
use warden_pii::PiiMasker;

use crate::engine::remove_spans;
use crate::output::LineReader;
use crate::run::{error_kind, FileRecord, Manifest};
use crate::CurateError;

/// At most this many problems are listed per file.
pub const MAX_PROBLEMS: usize = 20;

/// The verification of one input file.
#[derive(Debug, Clone, Default)]
pub struct FileCheck {
    /// Output name.
    pub name: String,
    /// Input documents and error lines seen.
    pub docs: u64,
    /// Kept.
    pub kept: u64,
    /// Redacted.
    pub redacted: u64,
    /// Dropped.
    pub dropped: u64,
    /// Errors.
    pub errors: u64,
    /// What is wrong (empty when the file verifies).
    pub problems: Vec<String>,
}

/// The verification of a run directory.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// One per input file.
    pub files: Vec<FileCheck>,
    /// Run-level problems (manifest totals, missing files).
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when every file and the run verify.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.files.iter().all(|f| f.problems.is_empty())
    }
}

/// Verifies a run (or merged) directory.
pub fn verify(dir: &Path) -> Result<VerifyReport, CurateError> {
    let m = Manifest::load(dir)?;
    let mut report = VerifyReport::default();
    let dirs: Vec<(PathBuf, Manifest)> = if m.kind == "warden-curate-merged" {
        let mut v = Vec::new();
        for s in &m.shard_dirs {
            let d = dir.join(s);
            let sm = Manifest::load(&d)?;
            v.push((d, sm));
        }
        v
    } else {
        vec![(dir.to_path_buf(), m.clone())]
    };
    for (d, sm) in &dirs {
        let [id, text, source, url] = sm.run.fields.clone();
        let opts = ReaderOptions {
            fields: FieldMap {
                id: id.unwrap_or_else(|| "id".into()),
                text: text.unwrap_or_else(|| "text".into()),
                source,
                url: url.unwrap_or_else(|| "url".into()),
            },
            max_line_bytes: sm.run.max_line_bytes,
        };
        let masker = sm.pii_masked.then(PiiMasker::new);
        let checks: Vec<FileCheck> = sm.files.par_iter().map(|f| check_file(d, f, &opts, masker.as_ref())).collect();
        for (c, f) in checks.iter().zip(&sm.files) {
            let mut c = c.clone();
            let want = (f.docs + f.errors, f.kept, f.redacted, f.dropped, f.errors);
            let got = (c.docs, c.kept, c.redacted, c.dropped, c.errors);
            if want != got && c.problems.is_empty() {
                c.problems.push(format!("counts (items, kept, redacted, dropped, errors) {got:?} differ from the manifest's {want:?}"));
            }
            report.files.push(c);
        }
        let sum: u64 = sm.files.iter().map(|f| f.docs).sum();
        if sum != sm.totals.docs {
            report.problems.push(format!("{}: manifest totals say {} documents, its files {sum}", d.display(), sm.totals.docs));
        }
    }
    if m.kind == "warden-curate-merged" {
        let files: usize = dirs.iter().map(|(_, s)| s.files.len()).sum();
        if files != m.run.inputs {
            report.problems.push(format!("the shards cover {files} of the run's {} input files", m.run.inputs));
        }
    }
    Ok(report)
}

/// The kept output: JSON lines, or a Parquet file read row by row like an input.
enum Kept {
    Lines(LineReader),
    Rows(Box<dyn Iterator<Item = Item> + Send>),
}

impl Kept {
    fn has_more(&mut self) -> bool {
        match self {
            Kept::Lines(r) => matches!(r.next_line(), Ok(Some(_))),
            Kept::Rows(it) => it.next().is_some(),
        }
    }
}

struct Streams {
    attrs: LineReader,
    kept: Kept,
    removed: LineReader,
    errors: LineReader,
}

fn check_file(dir: &Path, f: &FileRecord, opts: &ReaderOptions, masker: Option<&PiiMasker>) -> FileCheck {
    let mut c = FileCheck { name: f.name.clone(), ..Default::default() };
    if let Err(e) = check_file_inner(dir, f, opts, masker, &mut c) {
        c.problems.push(e);
    }
    c
}

fn check_file_inner(dir: &Path, f: &FileRecord, opts: &ReaderOptions, masker: Option<&PiiMasker>, c: &mut FileCheck) -> Result<(), String> {
    let input = Path::new(&f.path);
    let sha = warden_corpus::sha256_file(input).map_err(|e| e.to_string())?;
    if sha != f.sha256 {
        return Err(format!("{}: sha256 {sha} differs from the manifest's {}: the input changed", f.path, f.sha256));
    }
    let open = |rel: &str| LineReader::open(&dir.join(rel)).map_err(|e| e.to_string());
    let mut s = Streams {
        attrs: open(&f.outputs.attributes)?,
        kept: if f.outputs.kept.ends_with(".parquet") {
            let p = dir.join(&f.outputs.kept);
            Kept::Rows(warden_corpus::open(&p, opts).map_err(|e| format!("kept: {e}"))?)
        } else {
            Kept::Lines(open(&f.outputs.kept)?)
        },
        removed: open(&f.outputs.removed)?,
        errors: open(&f.outputs.errors)?,
    };
    let problem = |c: &mut FileCheck, msg: String| {
        if c.problems.len() < MAX_PROBLEMS {
            c.problems.push(msg);
        }
    };
    let next_json = |r: &mut LineReader, what: &str| -> Result<Value, String> {
        match r.next_line() {
            Ok(Some(l)) => serde_json::from_slice(l).map_err(|e| format!("{what}: unparsable record: {e}")),
            Ok(None) => Err(format!("{what}: ended early")),
            Err(e) => Err(format!("{what}: {e}")),
        }
    };
    let items = match warden_corpus::open(input, opts) {
        Ok(it) => it,
        Err(_) => {
            // The run recorded the file as unreadable.
            let e = next_json(&mut s.errors, "errors")?;
            if e["kind"] != "unreadable_file" {
                return Err(format!("{}: unreadable, but its errors record says {}", f.path, e["kind"]));
            }
            c.docs += 1;
            c.errors += 1;
            return leftovers(&mut s);
        }
    };
    for item in items {
        c.docs += 1;
        match item {
            Item::Error(e) => {
                c.errors += 1;
                let r = next_json(&mut s.errors, "errors")?;
                if r["line"].as_u64() != Some(e.location.line) || r["kind"] != error_kind(&e.kind) {
                    problem(c, format!("line {}: expected an errors record of kind {}, found line {} kind {}", e.location.line, error_kind(&e.kind), r["line"], r["kind"]));
                }
            }
            Item::Doc(d) => {
                let a = next_json(&mut s.attrs, "attributes")?;
                let a: DocAttributes = serde_json::from_value(a).map_err(|e| format!("attributes: {e}"))?;
                if a.id != d.id || a.line != d.location.line {
                    return Err(format!("line {}: attributes are for id {:?} line {}, the input has id {:?}", d.location.line, a.id, a.line, d.id));
                }
                match a.action {
                    Action::Keep | Action::Redact => {
                        if a.action == Action::Keep {
                            c.kept += 1;
                        } else {
                            c.redacted += 1;
                        }
                        let expected_text = {
                            let t = if a.action == Action::Redact { remove_spans(&d.text, &a.redacted) } else { d.text.clone() };
                            match masker {
                                Some(m) => m.mask(&t).text,
                                None => t,
                            }
                        };
                        let verbatim = a.action == Action::Keep && expected_text == d.text;
                        let line = match &mut s.kept {
                            Kept::Lines(r) => match r.next_line() {
                                Ok(Some(l)) => l.to_vec(),
                                _ => return Err(format!("kept output ended before id {:?}", d.id)),
                            },
                            Kept::Rows(it) => {
                                match it.next() {
                                    Some(Item::Doc(k)) => {
                                        let mut want = d.raw.clone();
                                        if !verbatim {
                                            want[opts.fields.text.as_str()] = Value::String(expected_text.clone());
                                        }
                                        if k.raw != want {
                                            problem(c, format!(
                                                "id {:?}: kept row {} is not the input row{}",
                                                d.id,
                                                k.location.line,
                                                if verbatim { "" } else { " with only its text replaced by the input text minus the redacted spans" }
                                            ));
                                        }
                                    }
                                    Some(Item::Error(e)) => {
                                        problem(c, format!("id {:?}: kept row {} is unreadable: {}", d.id, e.location.line, e.kind));
                                    }
                                    None => return Err(format!("kept output ended before id {:?}", d.id)),
                                }
                                continue;
                            }
                        };
                        let spliced = match (&d.line, verbatim) {
                            (Some(orig), false) => crate::output::splice_text(orig, &opts.fields.text, &expected_text),
                            _ => None,
                        };
                        match (&d.line, verbatim) {
                            (Some(orig), true) => {
                                if line != orig.as_bytes() {
                                    problem(c, format!("id {:?}: kept record is not the input line byte for byte", d.id));
                                }
                            }
                            (Some(_), false) if spliced.is_some() => {
                                if Some(line.as_slice()) != spliced.as_deref().map(str::as_bytes) {
                                    problem(c, format!(
                                        "id {:?}: kept record is not the input line with only its text replaced by the input text minus the redacted spans",
                                        d.id
                                    ));
                                }
                            }
                            _ => {
                                let mut got: Value = serde_json::from_slice(&line).map_err(|e| format!("kept: {e}"))?;
                                let got_text = got.get(&opts.fields.text).and_then(Value::as_str).map(str::to_owned);
                                if got_text.as_deref() != Some(expected_text.as_str()) {
                                    problem(c, format!("id {:?}: kept text is not the input text minus the redacted spans", d.id));
                                }
                                let mut want = d.raw.clone();
                                want[opts.fields.text.as_str()] = Value::Null;
                                got[opts.fields.text.as_str()] = Value::Null;
                                if want != got {
                                    problem(c, format!("id {:?}: kept record differs from the input in fields other than the text", d.id));
                                }
                            }
                        }
                    }
                    Action::Drop => {
                        c.dropped += 1;
                        let r = next_json(&mut s.removed, "removed")?;
                        if r["record"] != d.raw {
                            problem(c, format!("id {:?}: removed record is not the input record", d.id));
                        }
                        if r["warden"]["action"] != "drop" || r["warden"]["id"] != Value::String(d.id.clone()) {
                            problem(c, format!("id {:?}: removed record carries the wrong provenance", d.id));
                        }
                    }
                }
            }
        }
    }
    leftovers(&mut s)
}

fn leftovers(s: &mut Streams) -> Result<(), String> {
    let left = |name: &str| Err(format!("{name} output has records that match no input line"));
    if let Ok(Some(_)) = s.attrs.next_line() {
        return left("attributes");
    }
    if s.kept.has_more() {
        return left("kept");
    }
    for (name, r) in [("removed", &mut s.removed), ("errors", &mut s.errors)] {
        if let Ok(Some(_)) = r.next_line() {
            return left(name);
        }
    }
    Ok(())
}
