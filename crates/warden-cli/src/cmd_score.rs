use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use warden_core::{Policy, Taxonomy};

use crate::models;

#[derive(Args)]
pub struct ScoreArgs {
    /// Texts to score. Without any, JSONL lines `{"text": ...}` are read from stdin; other
    /// fields of each line are copied to its output.
    pub texts: Vec<String>,
    /// Model directory (default: $WARDEN_MODEL, else the embedded default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Policy TOML (default: the model's own policy.toml).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Stop at the first bad input line instead of reporting it and going on.
    #[arg(long)]
    pub strict: bool,
    /// The JSON field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Lines scored together (memory is bounded by this many lines).
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let loaded = models::load(a.model.as_deref(), a.policy.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    if !a.texts.is_empty() {
        let texts: Vec<&str> = a.texts.iter().map(String::as_str).collect();
        let scores = loaded.model.predict_batch(&texts)?;
        let empty = Map::new();
        for s in &scores {
            write_result(&mut out, loaded.model.taxonomy(), &loaded.policy, s, &empty)?;
        }
        out.flush()?;
        return Ok(());
    }
    let stdin = std::io::stdin();
    let (reader, len) = stdin_with_len(stdin.lock());
    let pb = match len {
        Some(n) => crate::progress::bar(n, "scoring", true),
        None => indicatif::ProgressBar::hidden(),
    };
    let summary = score_stream(reader, &mut out, &loaded, &a, |n| pb.inc(n))?;
    pb.finish_and_clear();
    out.flush()?;
    eprintln!(
        "warden score: {} lines, {} scored, {} flagged, {} bad",
        summary.lines, summary.scored, summary.flagged, summary.bad
    );
    Ok(())
}

/// Stdin, plus its size when it is a regular file (so a progress bar can show ETA).
fn stdin_with_len<R: Read>(r: R) -> (BufReader<R>, Option<u64>) {
    #[cfg(unix)]
    let len = {
        use std::os::fd::AsFd;
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    #[cfg(not(unix))]
    let len = None;
    (BufReader::with_capacity(1 << 20, r), len)
}

#[derive(Default, Debug, PartialEq)]
pub struct Summary {
    pub lines: usize,
    pub scored: usize,
    pub flagged: usize,
    pub bad: usize,
}

enum Line {
    Ok { text: String, rest: Map<String, Value> },
    Bad(String),
}

fn parse_line(bytes: &[u8], field: &str) -> Line {
    let s = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => return Line::Bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    };
    let mut obj = match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Line::Bad("not a JSON object".into()),
        Err(e) => return Line::Bad(format!("invalid JSON: {e}")),
    };
    match obj.remove(field) {
        Some(Value::String(text)) => Line::Ok { text, rest: obj },
        Some(_) => Line::Bad(format!("field {field:?} is not a string")),
        None => Line::Bad(format!("missing field {field:?}")),
    }
}

/// Scores JSONL from `reader` into `out`, one output line per input line, in order. Blank
/// lines are skipped. A bad line becomes `{"error": {"line": N, "message": ...}}` (and a
/// message on stderr) unless `strict`, which stops the run with an error.
pub fn score_stream<R: BufRead, W: Write>(
    mut reader: R,
    out: &mut W,
    loaded: &models::Loaded,
    a: &ScoreArgs,
    mut on_bytes: impl FnMut(u64),
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut buf = Vec::new();
    let mut batch: Vec<(usize, Line)> = Vec::with_capacity(a.batch_size);
    let taxonomy = loaded.model.taxonomy();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).context("reading stdin")?;
        if n > 0 {
            on_bytes(n as u64);
            line_no += 1;
            let trimmed = buf.trim_ascii();
            if !trimmed.is_empty() {
                let line = parse_line(trimmed, &a.text_field);
                if let Line::Bad(msg) = &line {
                    if a.strict {
                        bail!("line {line_no}: {msg}");
                    }
                    eprintln!("warden score: line {line_no}: {msg}");
                }
                batch.push((line_no, line));
            }
        }
        if batch.len() >= a.batch_size.max(1) || (n == 0 && !batch.is_empty()) {
            let texts: Vec<&str> = batch
                .iter()
                .filter_map(|(_, l)| match l {
                    Line::Ok { text, .. } => Some(text.as_str()),
                    Line::Bad(_) => None,
                })
                .collect();
            let scores = loaded.model.predict_batch(&texts)?;
            let mut it = scores.into_iter();
            for (no, line) in batch.drain(..) {
                summary.lines += 1;
                match line {
                    Line::Ok { rest, .. } => {
                        let s = it.next().expect("one score per good line");
                        summary.scored += 1;
                        summary.flagged += write_result(&mut *out, taxonomy, &loaded.policy, &s, &rest)? as usize;
                    }
                    Line::Bad(message) => {
                        summary.bad += 1;
                        let obj = serde_json::json!({"error": {"line": no, "message": message}});
                        serde_json::to_writer(&mut *out, &obj)?;
                        out.write_all(b"\n")?;
                    }
                }
            }
        }
        if n == 0 {
            break;
        }
    }
    Ok(summary)
}

/// `{...passthrough, "flagged", "categories": {name: bool}, "category_scores": {name: f}}`
/// with the taxonomy's public names (OpenAI's, for the built-in taxonomy).
pub fn result_object(
    taxonomy: &Taxonomy,
    policy: &dyn Policy,
    scores: &[f32],
    mut rest: Map<String, Value>,
) -> Value {
    let d = policy.decide(scores);
    let mut cats = Map::new();
    let mut cs = Map::new();
    for ((name, &flag), &s) in taxonomy.names().zip(&d.categories).zip(scores) {
        cats.insert(name.to_owned(), Value::Bool(flag));
        cs.insert(name.to_owned(), Value::from(round6(s)));
    }
    rest.insert("flagged".into(), Value::Bool(d.flagged));
    rest.insert("categories".into(), Value::Object(cats));
    rest.insert("category_scores".into(), Value::Object(cs));
    Value::Object(rest)
}

/// The keys `warden score` adds to each output object.
const RESULT_KEYS: [&str; 3] = ["flagged", "categories", "category_scores"];

/// Writes [`result_object`]'s line (and a newline) to `out` and returns whether it is
/// flagged. The object is serialised straight from the scores: building a
/// `serde_json::Value` per line (ordered maps, their keys allocated and hashed) took about a
/// sixth of `warden score`'s time on short texts. An input that already carries one of
/// the keys takes the `Value` path, which overwrites it in place.
pub fn write_result<W: Write>(
    out: &mut W,
    taxonomy: &Taxonomy,
    policy: &dyn Policy,
    scores: &[f32],
    rest: &Map<String, Value>,
) -> Result<bool> {
    if RESULT_KEYS.iter().any(|k| rest.contains_key(*k)) {
        let o = result_object(taxonomy, policy, scores, rest.clone());
        serde_json::to_writer(&mut *out, &o)?;
        out.write_all(b"\n")?;
        return Ok(o["flagged"] == Value::Bool(true));
    }
    let d = policy.decide(scores);
    let line = ResultLine { taxonomy, rest, flagged: d.flagged, flags: &d.categories, scores };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(d.flagged)
}

struct ResultLine<'a> {
    taxonomy: &'a Taxonomy,
    rest: &'a Map<String, Value>,
    flagged: bool,
    flags: &'a [bool],
    scores: &'a [f32],
}

impl Serialize for ResultLine<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.rest.len() + RESULT_KEYS.len()))?;
        for (k, v) in self.rest {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry(RESULT_KEYS[0], &self.flagged)?;
        m.serialize_entry(RESULT_KEYS[1], &ByName(self.taxonomy, self.flags, |&f: &bool| f))?;
        m.serialize_entry(RESULT_KEYS[2], &ByName(self.taxonomy, self.scores, |&x: &f32| round6(x)))?;
        m.end()
    }
}

/// `{name: f(value)}` over the taxonomy's public names, in taxonomy order.
struct ByName<'a, T, F>(&'a Taxonomy, &'a [T], F);

impl<T, U: Serialize, F: Fn(&T) -> U> Serialize for ByName<'_, T, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.1.len()))?;
        for (name, v) in self.0.names().zip(self.1) {
            m.serialize_entry(name, &(self.2)(v))?;
        }
        m.end()
    }
}

/// Six decimals: enough for any threshold, and `0.1` prints as `0.1`, not
/// `0.10000000149011612`.
pub fn round6(x: f32) -> f64 {
    (x as f64 * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::ThresholdPolicy;

    fn both_paths(rest: Map<String, Value>, scores: &[f32]) -> (String, String, bool) {
        let taxonomy = Taxonomy::default();
        let policy = ThresholdPolicy::uniform("test", &taxonomy, 0.5);
        let mut direct = Vec::new();
        let flagged = write_result(&mut direct, &taxonomy, &policy, scores, &rest).unwrap();
        let value = result_object(&taxonomy, &policy, scores, rest);
        (String::from_utf8(direct).unwrap(), serde_json::to_string(&value).unwrap() + "\n", flagged)
    }

    #[test]
    fn the_direct_writer_matches_the_value_path() {
        let scores = [0.9, 0.1, 0.123_456_78, 0.0, 1.0, 0.5, 1e-7, 0.499_999_9];
        let rest: Map<String, Value> = serde_json::from_str(r#"{"id": 7, "meta": {"b": [1, "x\n"], "a": null}, "z": "é\u0000"}"#).unwrap();
        let (direct, value, flagged) = both_paths(rest, &scores);
        assert_eq!(direct, value);
        assert!(flagged);
        assert!(direct.starts_with(r#"{"id":7,"meta":{"b":[1,"x\n"],"a":null},"z":"é\u0000","flagged":true,"#), "{direct}");
        let (direct, value, flagged) = both_paths(Map::new(), &[0.1; 8]);
        assert_eq!(direct, value);
        assert!(!flagged);
    }

    #[test]
    fn an_input_carrying_a_result_key_is_overwritten_in_place() {
        let rest: Map<String, Value> = serde_json::from_str(r#"{"flagged": "maybe", "id": 1}"#).unwrap();
        let (direct, value, flagged) = both_paths(rest, &[0.9; 8]);
        assert_eq!(direct, value);
        assert!(flagged);
        assert!(direct.starts_with(r#"{"flagged":true,"id":1,"categories":"#), "{direct}");
    }
}
