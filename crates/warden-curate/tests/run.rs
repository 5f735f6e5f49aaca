//! Integration tests of `warden curate` as a library: decisions and their provenance,
//! error routing, verification (and its failure on tampered outputs), byte-identical
//! resumption, run keys, sharding + merging, the rule and domain layers, the second tier
//! and PII masking.
//!
//! No model files, shared data or network: the classifier is a fake that scores 0.99 for a
//! category when the text contains that category's marker word and 0.01 otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use warden_audit::{Action, DocAttributes, Layer};
use warden_core::{Classifier, Scores, Taxonomy};
use warden_curate::{CurateError, CurationPolicy, Engine, NoProgress, PlainSecondTier, RunConfig, RunSummary};
use warden_rules::{Severity, Span};

mod common;
use common::clean;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// (marker, categories, score).
type Marker = (&'static str, &'static [&'static str], f32);

/// The fast tier: markers score 0.99 (`zzmaybe*` 0.5, in the second tier's band).
const FAST_MARKERS: &[Marker] = &[
    ("zzviolent", &["V"], 0.99),
    ("zzhate", &["H"], 0.99),
    // S3 is a child of S: a parent is never below its child.
    ("zzminor", &["S", "S3"], 0.99),
    ("zzharass", &["HR"], 0.99),
    ("zzmaybebad", &["V"], 0.5),
    ("zzmaybeok", &["V"], 0.5),
];

/// The second tier: sure about `zzmaybebad`, clears `zzmaybeok`.
const SECOND_MARKERS: &[Marker] = &[("zzmaybebad", &["V"], 0.95)];

struct Fake {
    tax: Taxonomy,
    name: &'static str,
    markers: &'static [Marker],
}

impl Fake {
    fn fast() -> Arc<dyn Classifier> {
        Arc::new(Fake { tax: Taxonomy::builtin(), name: "fake-markers", markers: FAST_MARKERS })
    }
    fn second() -> Arc<dyn Classifier> {
        Arc::new(Fake { tax: Taxonomy::builtin(), name: "fake-second", markers: SECOND_MARKERS })
    }
}

impl Classifier for Fake {
    fn taxonomy(&self) -> &Taxonomy {
        &self.tax
    }
    fn name(&self) -> &str {
        self.name
    }
    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        // Two test hooks: a model failure, and a slow batch.
        if texts.iter().any(|t| t.contains("zzfail")) {
            return Err(warden_core::Error::Classifier("the fake model failed on purpose".into()));
        }
        if texts.iter().any(|t| t.contains("zzslow")) {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        Ok(texts
            .iter()
            .map(|t| {
                self.tax
                    .codes()
                    .map(|code| {
                        self.markers
                            .iter()
                            .filter(|(m, cats, _)| t.contains(m) && cats.contains(&code))
                            .map(|(_, _, s)| *s)
                            .fold(0.01f32, f32::max)
                    })
                    .collect()
            })
            .collect())
    }
}

/// A policy: rules off the built-in list (plus `rules`), chunks of 400 bytes, plus `rest`
/// (further tables).
fn policy_toml(rules: &str, rest: &str) -> String {
    format!(
        "format_version = 1\nname = \"test-policy\"\n\n[rules]\nbuiltin = false\n{rules}\n\n[chunking]\nmax_bytes = 400\n\n{rest}\n"
    )
}

fn policy(rules: &str, rest: &str, base: Option<&Path>) -> CurationPolicy {
    CurationPolicy::from_toml_str(&policy_toml(rules, rest), base, &Taxonomy::builtin()).expect("valid policy")
}

fn engine(p: CurationPolicy) -> Engine {
    Engine::new(p, Taxonomy::builtin(), Some(Fake::fast()), None).expect("engine")
}

fn default_engine() -> Engine {
    engine(policy("", "", None))
}

fn run_with(engine: &Engine, inputs: &[PathBuf], out: &Path, tweak: impl FnOnce(&mut RunConfig)) -> Result<RunSummary, CurateError> {
    let mut cfg = RunConfig::new(inputs.to_vec(), out.to_path_buf());
    tweak(&mut cfg);
    warden_curate::run(engine, &cfg, "test-policy", &NoProgress)
}

fn run_ok(engine: &Engine, inputs: &[PathBuf], out: &Path) -> RunSummary {
    run_with(engine, inputs, out, |_| {}).expect("run")
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Six 300-byte paragraphs separated by `\n`; paragraph `bad` (if any) carries `marker`.
/// Returns the text and the byte span of the offending paragraph including its `\n`.
fn long_text(bad: Option<usize>, marker: &str, seed: usize) -> (String, Option<Span>) {
    let mut text = String::new();
    let mut span = None;
    for i in 0..6 {
        let start = text.len();
        let mut p = clean(300, seed * 10 + i);
        if Some(i) == bad {
            // Whole words: the marker replaces bytes in the middle, with spaces around it.
            let m = format!(" {marker} ");
            p.replace_range(100..100 + m.len(), &m);
        }
        text.push_str(&p);
        if i < 5 {
            text.push('\n');
        }
        if Some(i) == bad {
            span = Some(Span::new(start, text.len()));
        }
    }
    (text, span)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_input(path: &Path, lines: &[String]) {
    let mut bytes = lines.join("\n").into_bytes();
    bytes.push(b'\n');
    write_bytes(path, &bytes);
}

/// Writes `bytes`, compressed according to the file name.
fn write_bytes(path: &Path, bytes: &[u8]) {
    let name = path.to_string_lossy();
    let data = if name.ends_with(".gz") {
        gz(bytes)
    } else if name.ends_with(".zst") {
        zstd::encode_all(bytes, 3).unwrap()
    } else {
        bytes.to_vec()
    };
    fs::write(path, data).unwrap();
}

/// The decompressed bytes of a file (by suffix).
fn read_bytes(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
        out
    } else if name.ends_with(".zst") {
        zstd::decode_all(&raw[..]).unwrap()
    } else {
        raw
    }
}

/// The lines of a (possibly compressed) output file.
fn read_lines(path: &Path) -> Vec<String> {
    let bytes = read_bytes(path);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{}: last line unterminated", path.display());
    text.lines().map(str::to_owned).collect()
}

fn read_json_lines(path: &Path) -> Vec<Value> {
    read_lines(path).iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

fn read_attrs(out: &Path, name: &str) -> Vec<DocAttributes> {
    read_lines(&out.join(format!("attributes/{name}.jsonl.gz")))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn attrs_by_id(out: &Path, name: &str) -> BTreeMap<String, DocAttributes> {
    read_attrs(out, name).into_iter().map(|a| (a.id.clone(), a)).collect()
}

/// Every regular file under `dir`, relative, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
}

/// The outputs that must be byte-identical between two runs of the same work.
fn outputs(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for sub in ["kept", "removed", "errors", "attributes", "stats"] {
        for (rel, bytes) in tree(&dir.join(sub)) {
            all.insert(Path::new(sub).join(rel), bytes);
        }
    }
    for f in ["report.md", "report.html", "stats.json"] {
        all.insert(PathBuf::from(f), fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")));
    }
    all
}

fn assert_same_outputs(a: &Path, b: &Path) {
    let (ta, tb) = (outputs(a), outputs(b));
    assert!(ta.len() > 3 + 5, "no per-file outputs found under {}", a.display());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>(), "different output files");
    for (rel, bytes) in &ta {
        assert!(bytes == &tb[rel], "{} differs between {} and {}", rel.display(), a.display(), b.display());
    }
}

fn assert_verifies(dir: &Path) {
    let r = warden_curate::verify(dir).expect("verify runs");
    assert!(r.ok(), "verify {}: {:?} {:?}", dir.display(), r.problems, r.files.iter().filter(|f| !f.problems.is_empty()).collect::<Vec<_>>());
}

/// The problems verify found for the file named `name`; asserts the others verify.
fn verify_problems(dir: &Path, name: &str) -> Vec<String> {
    let r = warden_curate::verify(dir).expect("verify runs");
    assert!(!r.ok(), "verify {} passed after tampering with {name}", dir.display());
    for f in &r.files {
        if f.name != name {
            assert!(f.problems.is_empty(), "{}: unexpected problems {:?}", f.name, f.problems);
        }
    }
    r.files.iter().find(|f| f.name == name).map(|f| f.problems.clone()).unwrap_or_default()
}

/// A small corpus file: clean, short toxic, long with one bad paragraph, an error line.
fn corpus_lines(seed: usize) -> Vec<String> {
    let (long, _) = long_text(Some(seed % 6), "zzviolent", seed);
    let (minor, _) = long_text(Some((seed + 2) % 6), "zzminor", seed + 100);
    vec![
        format!("{{\"id\":\"c{seed}\",\"text\":{},\"n\":{seed}.50}}", js(&clean(80, seed))),
        format!("{{\"text\":{},\"id\":\"t{seed}\"}}", js(&format!("short and zzviolent {seed}"))),
        format!("{{\"id\":\"l{seed}\",\"text\":{},\"meta\":{{\"b\":1,\"a\":2}}}}", js(&long)),
        "{\"id\": \"broken\", \"text\": ".to_string(),
        format!("{{\"id\":\"m{seed}\",\"text\":{}}}", js(&minor)),
        format!("{{\"id\":\"h{seed}\",\"url\":\"https://site{seed}.example.net/p\",\"text\":{}}}", js(&format!("zzhate {seed}"))),
        format!("{{ \"id\" : \"s{seed}\" ,  \"text\" : {} }}", js(&clean(150, seed + 7))),
    ]
}

// ---------------------------------------------------------------------------------------
// 1. Decisions and outputs
// ---------------------------------------------------------------------------------------

#[test]
fn decisions_and_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input_dir = tmp.path().join("in");
    fs::create_dir_all(&input_dir).unwrap();
    let out = tmp.path().join("out");

    let clean_line = format!("{{\"text\":{},\"id\":7,\"x\":1.50}}", js(&clean(90, 1)));
    let spaced_line = format!("{{ \"id\" : \"spaced\",   \"text\" : {} , \"n\": 1e2 }}", js(&clean(60, 2)));
    let toxic_text = "you are zzviolent now";
    let toxic_line = format!("{{\"id\":\"tox\",\"text\":{},\"meta\":{{\"b\":2,\"a\":1}}}}", js(toxic_text));
    let (long, bad_span) = long_text(Some(3), "zzviolent", 3);
    let bad_span = bad_span.unwrap();
    let long_line = format!("{{\"id\":\"long\",\"text\":{},\"z\":0.10,\"a\":[1,2]}}", js(&long));
    let (minor, _) = long_text(Some(4), "zzminor", 4);
    let minor_line = format!("{{\"id\":\"minor\",\"text\":{}}}", js(&minor));
    let docs = input_dir.join("docs.jsonl");
    write_input(&docs, &[clean_line.clone(), toxic_line.clone(), long_line.clone(), minor_line.clone(), spaced_line.clone()]);

    // The same kinds of documents, gzip-compressed.
    let gz_clean = format!("{{\"id\":\"gzc\",\"text\":{},\"k\":[1.0, 2]}}", js(&clean(70, 9)));
    let gz_toxic = format!("{{\"id\":\"gzt\",\"text\":{}}}", js("zzhate here"));
    let more = input_dir.join("more.jsonl.gz");
    write_input(&more, &[gz_clean.clone(), gz_toxic.clone()]);

    let s = run_ok(&default_engine(), &[docs.clone(), more.clone()], &out);

    // Counts.
    let t = &s.manifest.totals;
    assert_eq!((t.files, t.docs, t.kept, t.redacted, t.dropped, t.errors), (2, 7, 3, 1, 3, 0), "{t:?}");
    assert_eq!((s.stats.docs, s.stats.kept, s.stats.redacted, s.stats.dropped), (7, 3, 1, 3));
    assert_eq!(s.manifest.kind, "warden-curate-run");
    assert_eq!(s.manifest.run.model.as_deref(), Some("fake-markers"));
    let names: Vec<&str> = s.manifest.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["docs", "more"]);

    // Kept: the input's bytes for kept documents, in input order, in the input's compression.
    let kept = read_lines(&out.join("kept/docs.jsonl"));
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(kept[0], clean_line, "kept record is not byte-identical");
    assert_eq!(kept[2], spaced_line, "kept record is not byte-identical");
    assert!(out.join("kept/more.jsonl.gz").is_file());
    assert!(!out.join("kept/more.jsonl").exists());
    assert_eq!(read_lines(&out.join("kept/more.jsonl.gz")), vec![gz_clean]);

    // Redacted: the offending paragraph (with its line break) is gone, the rest is intact.
    let red: Value = serde_json::from_str(&kept[1]).unwrap();
    let mut want_text = long.clone();
    want_text.replace_range(bad_span.start..bad_span.end, "");
    assert_eq!(red["text"].as_str().unwrap(), want_text);
    assert!(!red["text"].as_str().unwrap().contains("zzviolent"));
    assert_eq!(red["id"], "long");
    assert_eq!(red["a"], serde_json::json!([1, 2]));
    assert_eq!(red["z"].as_f64(), Some(0.1));
    let attrs = attrs_by_id(&out, "docs");
    let a = &attrs["long"];
    assert_eq!(a.action, Action::Redact);
    assert_eq!(a.redacted, vec![bad_span], "redacted span must be exactly the offending paragraph");
    assert_eq!(&long[a.redacted[0].start..a.redacted[0].end - 1], long.lines().nth(3).unwrap());
    assert_eq!(a.reasons.len(), 1, "{:?}", a.reasons);
    assert_eq!(a.reasons[0].layer, Layer::Fast);
    assert_eq!(a.reasons[0].category.as_deref(), Some("V"));
    assert_eq!(a.reasons[0].span, Some(bad_span));
    assert_eq!(a.chunks.len(), 6, "one chunk per 300-byte paragraph at max_bytes 400");
    assert_eq!(a.bytes, long.len() as u64);
    assert_eq!(a.line, 3);

    // Dropped: removed/ holds the input line verbatim and the reasons.
    let removed_lines = read_lines(&out.join("removed/docs.jsonl.gz"));
    assert_eq!(removed_lines.len(), 2);
    assert!(
        removed_lines[0].starts_with(&format!("{{\"record\":{toxic_line},\"warden\":")),
        "the removed record must embed the input line verbatim: {}",
        removed_lines[0]
    );
    let r: Value = serde_json::from_str(&removed_lines[0]).unwrap();
    let w = &r["warden"];
    assert_eq!(w["action"], "drop");
    assert_eq!(w["id"], "tox");
    assert_eq!(w["line"], 2);
    let reasons = w["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0]["layer"], "fast");
    assert_eq!(reasons[0]["category"], "V");
    assert!((reasons[0]["score"].as_f64().unwrap() - 0.99).abs() < 1e-6);
    assert!((reasons[0]["threshold"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(reasons[0]["span"], serde_json::json!({"start": 0, "end": toxic_text.len()}));
    assert_eq!(attrs["tox"].action, Action::Drop);

    // S3 is a drop category: the whole long document goes although one paragraph offends.
    assert!(removed_lines[1].starts_with(&format!("{{\"record\":{minor_line},")));
    let r: Value = serde_json::from_str(&removed_lines[1]).unwrap();
    let cats: Vec<&str> = r["warden"]["reasons"].as_array().unwrap().iter().map(|x| x["category"].as_str().unwrap()).collect();
    assert!(cats.contains(&"S3"), "{cats:?}");
    assert_eq!(attrs["minor"].action, Action::Drop);
    assert!(attrs["minor"].redacted.is_empty());

    // The gzip file's drop.
    let rm = read_json_lines(&out.join("removed/more.jsonl.gz"));
    assert_eq!(rm.len(), 1);
    assert_eq!(rm[0]["record"]["id"], "gzt");
    assert_eq!(rm[0]["warden"]["reasons"][0]["category"], "H");

    // Attributes: one per document, in input order, with per-chunk scores.
    let all = read_attrs(&out, "docs");
    let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["7", "tox", "long", "minor", "spaced"]);
    assert_eq!(all.iter().map(|a| a.line).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(all[0].action, Action::Keep);
    assert!(all[0].reasons.is_empty());
    assert!(all.iter().all(|a| a.scores.len() == Taxonomy::builtin().len()));
    assert_eq!(read_attrs(&out, "more").len(), 2);

    // No errors; the reports exist; the run verifies.
    assert!(read_lines(&out.join("errors/docs.jsonl")).is_empty());
    for f in ["manifest.json", "run.json", "report.md", "report.html", "stats.json", "stats/docs.json", ".state/docs.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join(".partial").exists(), "the partial directory is removed after a clean run");
    assert!(!out.join(".lock").exists(), "the lock is released");
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// 2. Unreadable lines go to errors/, never silently dropped
// ---------------------------------------------------------------------------------------

#[test]
fn errors_are_routed_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mixed.jsonl");
    let long_value = "a ".repeat(600);
    let lines: Vec<Vec<u8>> = vec![
        br#"{"id":"a","text":"hello clean world"}"#.to_vec(), // 1
        br#"{"id":"b","text":"#.to_vec(),                       // 2 invalid_json
        br#"{"id":"c","body":"no text field"}"#.to_vec(),     // 3 missing_text
        b"{\"id\":\"d\",\"text\":\"bad \xff byte\"}".to_vec(), // 4 invalid_utf8
        format!("{{\"id\":\"e\",\"text\":\"{long_value}\"}}").into_bytes(), // 5 line_too_long
        b"".to_vec(),                                         // 6 empty: skipped
        b"   \t".to_vec(),                                    // 7 blank: skipped
        br#"{"id":"f","text":"short zzviolent text"}"#.to_vec(), // 8 dropped
        br#"[1, 2, 3]"#.to_vec(),                             // 9 not_an_object
        br#"{"id":"g","text":42}"#.to_vec(),                  // 10 text_not_string
        br#"{"id":"h","text":null}"#.to_vec(),                // 11 missing_text
        br#"{"id":"i","text":"fine again"}"#.to_vec(),        // 12
    ];
    let mut bytes = lines.join(&b"\n"[..]);
    bytes.push(b'\n');
    fs::write(&path, &bytes).unwrap();
    // A file that claims to be gzip but is not: one unreadable_file record, the run goes on.
    let not_gz = tmp.path().join("not-gzip.jsonl.gz");
    fs::write(&not_gz, b"{\"id\":\"x\",\"text\":\"plain text, not gzip\"}\n").unwrap();

    // A gzip file cut short: its complete lines are read, then one io error.
    let cut = tmp.path().join("cut.jsonl.gz");
    let mut body = String::new();
    for i in 0..400 {
        body.push_str(&format!("{{\"id\":\"cut{i}\",\"text\":{}}}\n", js(&clean(200, i))));
    }
    let full = gz(body.as_bytes());
    fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    // An empty file.
    let empty = tmp.path().join("empty.jsonl");
    fs::write(&empty, b"").unwrap();

    let out = tmp.path().join("out");
    let inputs = [path.clone(), not_gz.clone(), cut.clone(), empty.clone()];
    let s = run_with(&default_engine(), &inputs, &out, |c| c.reader.max_line_bytes = 1000).expect("run must not fail");

    let errs = read_json_lines(&out.join("errors/mixed.jsonl"));
    let got: Vec<(u64, &str)> = errs.iter().map(|e| (e["line"].as_u64().unwrap(), e["kind"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        [
            (2, "invalid_json"),
            (3, "missing_text"),
            (4, "invalid_utf8"),
            (5, "line_too_long"),
            (9, "not_an_object"),
            (10, "text_not_string"),
            (11, "missing_text"),
        ]
    );
    for e in &errs {
        assert_eq!(e["file"].as_str().unwrap(), path.to_string_lossy());
        assert!(e["byte_offset"].is_u64(), "{e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    // Byte offsets are the starts of the lines.
    let offset_of_line = |n: usize| lines[..n - 1].iter().map(|l| l.len() as u64 + 1).sum::<u64>();
    for e in &errs {
        assert_eq!(e["byte_offset"].as_u64().unwrap(), offset_of_line(e["line"].as_u64().unwrap() as usize), "{e}");
    }
    assert!(errs[0]["excerpt"].as_str().unwrap().starts_with("{\"id\":\"b\""));

    // The valid documents around them were processed.
    let kept = read_lines(&out.join("kept/mixed.jsonl"));
    assert_eq!(kept, [String::from_utf8(lines[0].clone()).unwrap(), String::from_utf8(lines[11].clone()).unwrap()]);
    let removed = read_json_lines(&out.join("removed/mixed.jsonl.gz"));
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["record"]["id"], "f");
    assert_eq!(removed[0]["warden"]["line"], 8);
    let attrs = read_attrs(&out, "mixed");
    assert_eq!(attrs.iter().map(|a| (a.id.as_str(), a.line)).collect::<Vec<_>>(), [("a", 1), ("f", 8), ("i", 12)]);

    let f = s.manifest.files.iter().find(|f| f.name == "mixed").unwrap();
    assert_eq!((f.docs, f.kept, f.dropped, f.errors), (3, 2, 1, 7));
    assert_eq!(s.stats.error_kinds.get("missing_text"), Some(&2));
    assert_eq!(s.stats.error_kinds.get("line_too_long"), Some(&1));

    // The unreadable file.
    let bad = read_json_lines(&out.join("errors/not-gzip.jsonl"));
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["kind"], "unreadable_file");
    assert_eq!(bad[0]["line"], 0);
    let f = s.manifest.files.iter().find(|f| f.name == "not-gzip").unwrap();
    assert_eq!((f.docs, f.errors), (0, 1));

    // The truncated file: the documents before the cut, then one io error.
    let f = s.manifest.files.iter().find(|f| f.name == "cut").unwrap();
    assert!(f.docs > 10 && f.docs < 400, "{f:?}");
    assert_eq!(f.errors, 1);
    let e = read_json_lines(&out.join("errors/cut.jsonl"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["kind"], "io");
    assert_eq!(read_lines(&out.join("kept/cut.jsonl.gz")).len() as u64, f.docs);

    // The empty file: nothing, but outputs all the same.
    let f = s.manifest.files.iter().find(|f| f.name == "empty").unwrap();
    assert_eq!((f.docs, f.errors), (0, 0));
    assert!(read_lines(&out.join("kept/empty.jsonl")).is_empty());
    assert!(read_attrs(&out, "empty").is_empty());

    assert_eq!(s.manifest.totals.errors, 9);

    // Every line is accounted for.
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// 3. verify passes on a good run and fails on tampered outputs or inputs
// ---------------------------------------------------------------------------------------

fn remove_line(lines: &mut Vec<String>, pred: impl Fn(&str) -> bool) {
    let i = lines.iter().position(|l| pred(l)).expect("line to remove");
    lines.remove(i);
}

fn write_lines_to(path: &Path, lines: &[String]) {
    let mut bytes: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect();
    if lines.is_empty() {
        bytes.clear();
    }
    write_bytes(path, &bytes);
}

#[test]
fn verify_catches_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.jsonl");
    let b = tmp.path().join("b.jsonl.gz");
    write_input(&a, &corpus_lines(1));
    write_input(&b, &corpus_lines(2));
    let good = tmp.path().join("good");
    let s = run_ok(&default_engine(), &[a.clone(), b.clone()], &good);
    assert!(s.manifest.totals.kept >= 2 && s.manifest.totals.redacted == 2 && s.manifest.totals.dropped >= 4);
    assert_verifies(&good);
    let fresh = |tag: &str| {
        let d = tmp.path().join(tag);
        copy_dir(&good, &d);
        assert_verifies(&d);
        d
    };

    // (a) One line deleted from a kept gzip file (recompressed properly).
    let d = fresh("tamper-a");
    let p = d.join("kept/b.jsonl.gz");
    let mut lines = read_lines(&p);
    remove_line(&mut lines, |l| l.contains("\"c2\""));
    write_lines_to(&p, &lines);
    let probs = verify_problems(&d, "b");
    assert!(!probs.is_empty());

    // ... and from a plain kept file (the last one: "ended early").
    let d = fresh("tamper-a2");
    let p = d.join("kept/a.jsonl");
    let mut lines = read_lines(&p);
    lines.pop();
    write_lines_to(&p, &lines);
    assert!(!verify_problems(&d, "a").is_empty());

    // (b) One byte of a kept record's text changed.
    let d = fresh("tamper-b");
    let p = d.join("kept/a.jsonl");
    let text = fs::read_to_string(&p).unwrap();
    let i = text.find("paragraph 1:").expect("clean text of c1") + 2;
    let mut bytes = text.into_bytes();
    assert_eq!(bytes[i], b'r');
    bytes[i] = b'R';
    fs::write(&p, bytes).unwrap();
    let probs = verify_problems(&d, "a");
    assert!(probs.iter().any(|m| m.contains("c1")), "{probs:?}");

    // ... in a redacted record (the redaction no longer matches the attributes).
    let d = fresh("tamper-b2");
    let p = d.join("kept/a.jsonl");
    let mut lines = read_lines(&p);
    let k = lines.iter().position(|l| l.contains("\"l1\"")).unwrap();
    let mut v: Value = serde_json::from_str(&lines[k]).unwrap();
    let t = v["text"].as_str().unwrap().replacen("garden", "gardem", 1);
    v["text"] = Value::String(t);
    lines[k] = v.to_string();
    write_lines_to(&p, &lines);
    let probs = verify_problems(&d, "a");
    assert!(probs.iter().any(|m| m.contains("l1")), "{probs:?}");

    // A dropped record missing from removed/.
    let d = fresh("tamper-removed");
    let p = d.join("removed/a.jsonl.gz");
    let mut lines = read_lines(&p);
    remove_line(&mut lines, |l| l.contains("\"m1\""));
    write_lines_to(&p, &lines);
    assert!(!verify_problems(&d, "a").is_empty());

    // An errors record missing.
    let d = fresh("tamper-errors");
    write_lines_to(&d.join("errors/a.jsonl"), &[]);
    assert!(!verify_problems(&d, "a").is_empty());

    // An extra kept record that matches no input line.
    let d = fresh("tamper-extra");
    let p = d.join("kept/a.jsonl");
    let mut lines = read_lines(&p);
    lines.push(lines[0].clone());
    write_lines_to(&p, &lines);
    assert!(!verify_problems(&d, "a").is_empty());

    // (c) The input changed after the run.
    let mut inp = fs::read(&a).unwrap();
    inp.extend_from_slice(b"{\"id\":\"late\",\"text\":\"added after the run\"}\n");
    fs::write(&a, inp).unwrap();
    let probs = verify_problems(&good, "a");
    assert!(
        probs.iter().any(|m| m.contains(&*a.to_string_lossy()) && m.contains("sha256")),
        "the problem must name the changed input: {probs:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Resuming after a crash is byte-identical
// ---------------------------------------------------------------------------------------

fn six_inputs(dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let names = ["f0.jsonl", "f1.jsonl.gz", "f2.jsonl.zst", "f3.jsonl", "f4.jsonl.gz", "f5.jsonl"];
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let p = dir.join(n);
            write_input(&p, &corpus_lines(i + 10));
            p
        })
        .collect()
}

#[test]
fn resume_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = six_inputs(&tmp.path().join("in"));
    let eng = default_engine();
    // Small batches, so that files span several batches.
    let small = |c: &mut RunConfig| c.batch_docs = 3;

    let a = tmp.path().join("A");
    let sa = run_with(&eng, &inputs, &a, small).unwrap();
    assert_eq!(sa.manifest.timings.processed_files, 6);
    assert_eq!(sa.manifest.timings.resumed_files, 0);
    assert!(a.join("kept/f2.jsonl.zst").is_file());
    assert_verifies(&a);

    // B: a complete run, then the marks of a crash.
    let b = tmp.path().join("B");
    run_with(&eng, &inputs, &b, small).unwrap();
    fs::remove_file(b.join(".state/f1.json")).unwrap();
    fs::write(b.join(".state/f4.json"), b"{\"path\": \"trunc").unwrap(); // torn state record
    fs::write(b.join("kept/f1.jsonl.gz"), b"garbage, not gzip").unwrap();
    fs::write(b.join("attributes/f4.jsonl.gz"), b"").unwrap();
    fs::remove_file(b.join("removed/f4.jsonl.gz")).unwrap();
    fs::create_dir_all(b.join(".partial/f1")).unwrap();
    fs::write(b.join(".partial/f1/kept_f1.jsonl.gz"), b"half-written").unwrap();
    fs::write(b.join(".partial/f1/junk"), b"junk").unwrap();
    fs::remove_file(b.join("manifest.json")).unwrap();
    fs::write(b.join("report.md"), b"stale").unwrap();
    fs::write(b.join("stats.json"), b"{}").unwrap();
    // A lock left by a process that no longer exists is taken over.
    fs::write(b.join(".lock"), b"4294967").unwrap();

    let sb = run_with(&eng, &inputs, &b, small).expect("resume");
    assert_eq!(sb.manifest.timings.resumed_files, 4);
    assert_eq!(sb.manifest.timings.processed_files, 2);
    assert_same_outputs(&a, &b);
    assert_eq!(sa.manifest.totals, sb.manifest.totals);
    assert_eq!(sa.manifest.files.iter().map(|f| (&f.name, &f.sha256, f.docs)).collect::<Vec<_>>(), sb.manifest.files.iter().map(|f| (&f.name, &f.sha256, f.docs)).collect::<Vec<_>>());
    assert!(!b.join(".partial").exists(), "stale partial outputs are cleaned up");
    assert!(b.join("manifest.json").is_file());
    assert_verifies(&b);

    // Running again over a complete directory redoes nothing and changes nothing.
    let sc = run_with(&eng, &inputs, &b, small).unwrap();
    assert_eq!((sc.manifest.timings.resumed_files, sc.manifest.timings.processed_files), (6, 0));
    assert_same_outputs(&a, &b);
}

#[test]
fn resume_redoes_a_file_whose_input_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = six_inputs(&tmp.path().join("in"));
    let eng = default_engine();
    let out = tmp.path().join("out");
    run_ok(&eng, &inputs, &out);
    // f3 changes: same path (same run), different bytes.
    write_input(&inputs[3], &corpus_lines(99));
    let s = run_ok(&eng, &inputs, &out);
    assert_eq!((s.manifest.timings.resumed_files, s.manifest.timings.processed_files), (5, 1));
    let attrs = read_attrs(&out, "f3");
    assert!(attrs.iter().any(|a| a.id == "c99"), "f3 was not reprocessed");
    assert_verifies(&out);
}

#[test]
fn batch_boundaries_do_not_change_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = six_inputs(&tmp.path().join("in"));
    let eng = default_engine();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    run_with(&eng, &inputs, &a, |c| c.batch_docs = 1).unwrap();
    run_with(&eng, &inputs, &b, |c| c.batch_bytes = 1 << 30).unwrap();
    assert_same_outputs(&a, &b);
}

// ---------------------------------------------------------------------------------------
// 5. A directory belongs to one run
// ---------------------------------------------------------------------------------------

#[test]
fn run_mismatch_and_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("a.jsonl");
    write_input(&inp, &corpus_lines(1));
    let out = tmp.path().join("out");
    run_ok(&default_engine(), std::slice::from_ref(&inp), &out);

    // Another policy (a different threshold).
    let other = engine(policy("", "[classifier]\ndefault_threshold = 0.8", None));
    match run_with(&other, std::slice::from_ref(&inp), &out, |_| {}) {
        Err(CurateError::RunMismatch(m)) => assert!(m.contains("policy_sha256"), "{m}"),
        other => panic!("expected RunMismatch, got {:?}", other.map(|s| s.manifest.totals)),
    }
    // Another reader option, another shard split, other inputs.
    assert!(matches!(run_with(&default_engine(), std::slice::from_ref(&inp), &out, |c| c.reader.max_line_bytes = 5000), Err(CurateError::RunMismatch(_))));
    assert!(matches!(run_with(&default_engine(), std::slice::from_ref(&inp), &out, |c| c.shard = (0, 2)), Err(CurateError::RunMismatch(_))));
    let inp2 = tmp.path().join("b.jsonl");
    write_input(&inp2, &corpus_lines(2));
    assert!(matches!(run_with(&default_engine(), &[inp.clone(), inp2.clone()], &out, |_| {}), Err(CurateError::RunMismatch(_))));
    // The directory is unharmed: the same run still resumes and verifies.
    let s = run_ok(&default_engine(), std::slice::from_ref(&inp), &out);
    assert_eq!(s.manifest.timings.resumed_files, 1);
    assert_verifies(&out);

    // A directory locked by a live process (pid 1 always exists, and is not us).
    fs::write(out.join(".lock"), b"1").unwrap();
    assert!(matches!(run_with(&default_engine(), std::slice::from_ref(&inp), &out, |_| {}), Err(CurateError::Locked(_))));
    fs::remove_file(out.join(".lock")).unwrap();

    // Bad shard specs and empty input lists are input errors.
    assert!(matches!(run_with(&default_engine(), std::slice::from_ref(&inp), &tmp.path().join("x"), |c| c.shard = (3, 3)), Err(CurateError::Input(_))));
    assert!(matches!(run_with(&default_engine(), &[], &tmp.path().join("y"), |_| {}), Err(CurateError::Input(_))));
}

// ---------------------------------------------------------------------------------------
// 6. Shards + merge == one unsharded run
// ---------------------------------------------------------------------------------------

fn seven_inputs(dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(dir.join("sub")).unwrap();
    (0..7)
        .map(|i| {
            let p = if i == 5 { dir.join("sub").join("g5.jsonl") } else { dir.join(format!("g{i}.jsonl{}", if i % 2 == 1 { ".gz" } else { "" })) };
            write_input(&p, &corpus_lines(20 + i));
            p
        })
        .collect()
}

#[test]
fn shards_merge_to_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = seven_inputs(&tmp.path().join("in"));
    let eng = default_engine();

    let whole = tmp.path().join("whole");
    let sw = run_ok(&eng, &inputs, &whole);
    assert_eq!(sw.manifest.files.len(), 7);

    let shard_dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("shard{i}"))).collect();
    let mut per_shard = Vec::new();
    for (i, d) in shard_dirs.iter().enumerate() {
        let s = run_with(&eng, &inputs, d, |c| c.shard = (i, 3)).unwrap();
        per_shard.push(s.manifest.files.len());
        assert_verifies(d);
    }
    assert_eq!(per_shard, [3, 2, 2]);

    let merged = tmp.path().join("merged");
    let m = warden_curate::merge(&merged, &shard_dirs, false).expect("merge");
    assert!(m.missing.is_empty());
    assert_eq!(m.manifest.kind, "warden-curate-merged");
    assert_eq!(m.manifest.totals, sw.manifest.totals);
    assert_eq!(
        m.manifest.files.iter().map(|f| &f.name).collect::<Vec<_>>(),
        sw.manifest.files.iter().map(|f| &f.name).collect::<Vec<_>>(),
        "merged files are in run order"
    );
    for f in ["report.md", "stats.json", "report.html"] {
        let (x, y) = (fs::read(merged.join(f)).unwrap(), fs::read(whole.join(f)).unwrap());
        assert!(x == y, "merged {f} differs from the unsharded run's");
    }
    assert_verifies(&merged);

    // Shards in another order merge to the same result.
    let merged2 = tmp.path().join("merged2");
    let rev: Vec<PathBuf> = shard_dirs.iter().rev().cloned().collect();
    warden_curate::merge(&merged2, &rev, false).unwrap();
    assert_eq!(fs::read(merged2.join("report.md")).unwrap(), fs::read(whole.join("report.md")).unwrap());

    // Two of three shards: refused unless partial merges are allowed.
    let two = &shard_dirs[..2];
    assert!(matches!(warden_curate::merge(&tmp.path().join("p1"), two, false), Err(CurateError::Input(_))));
    let part = tmp.path().join("p2");
    let pm = warden_curate::merge(&part, two, true).expect("partial merge");
    assert_eq!(pm.missing, [2]);
    assert_eq!(pm.manifest.files.len(), 5);
    // A partial merge does not pass for the whole run.
    let r = warden_curate::verify(&part).unwrap();
    assert!(!r.ok());
    assert!(r.problems.iter().any(|p| p.contains("5 of the run's 7")), "{:?}", r.problems);

    // The same shard twice.
    let dup = vec![shard_dirs[0].clone(), shard_dirs[1].clone(), shard_dirs[1].clone(), shard_dirs[2].clone()];
    assert!(warden_curate::merge(&tmp.path().join("p3"), &dup, false).is_err());
    assert!(warden_curate::merge(&tmp.path().join("p4"), &dup, true).is_err());

    // A shard of another run.
    let foreign = tmp.path().join("foreign");
    let other = engine(policy("", "[classifier]\ndefault_threshold = 0.5", None));
    run_with(&other, &inputs, &foreign, |c| c.shard = (2, 3)).unwrap();
    let mixed = vec![shard_dirs[0].clone(), shard_dirs[1].clone(), foreign];
    assert!(matches!(warden_curate::merge(&tmp.path().join("p5"), &mixed, false), Err(CurateError::RunMismatch(_))));

    // The unsharded run is not a shard directory of a 3-way split.
    let wrong = vec![shard_dirs[0].clone(), whole.clone()];
    assert!(warden_curate::merge(&tmp.path().join("p6"), &wrong, true).is_err());
}

#[test]
fn partial_merge_report_names_missing_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = seven_inputs(&tmp.path().join("in"));
    let eng = default_engine();
    let dirs: Vec<PathBuf> = (0..2).map(|i| tmp.path().join(format!("s{i}"))).collect();
    for (i, d) in dirs.iter().enumerate() {
        run_with(&eng, &inputs, d, |c| c.shard = (i, 3)).unwrap();
    }
    let out = tmp.path().join("merged");
    warden_curate::merge(&out, &dirs, true).unwrap();
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.to_lowercase().contains("missing") && md.contains("2"), "the partial report does not mention the missing shard:\n{md}");
}

// ---------------------------------------------------------------------------------------
// 7. The rules layer
// ---------------------------------------------------------------------------------------

const RULE_LIST: &str = r#"
format_version = 1
name = "test-list"
licence = "CC0-1.0"
source = "written for the warden-curate tests"

[[group]]
category = "HR"
severity = "strong"
terms = ["grimblewort", "snarfle puff"]

[[group]]
category = "HR"
severity = "mild"
terms = ["dagnabbit"]
"#;

#[test]
fn rules_layer() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("list.toml"), RULE_LIST).unwrap();
    // A relative list path resolves against the policy's directory.
    let pol = policy("act_on = \"strong\"\nlists = [{ path = \"list.toml\", format = \"warden\" }]", "", Some(tmp.path()));
    let eng = engine(pol);
    assert_eq!(eng.rule_lists().len(), 1);

    let strong_text = "well, you GrimbleWort, that is that";
    let (long, bad) = long_text(Some(2), "snarfle   puff", 5); // a space matches any whitespace run
    let bad = bad.unwrap();
    let mild_text = "oh dagnabbit, the bus is late again today";
    let inp = tmp.path().join("r.jsonl");
    write_input(
        &inp,
        &[
            format!("{{\"id\":\"strong\",\"text\":{}}}", js(strong_text)),
            format!("{{\"id\":\"long\",\"text\":{}}}", js(&long)),
            format!("{{\"id\":\"mild\",\"text\":{}}}", js(mild_text)),
            format!("{{\"id\":\"none\",\"text\":{}}}", js("grimbleworts and grimblewortish are other words")),
        ],
    );
    let out = tmp.path().join("out");
    let s = run_ok(&eng, std::slice::from_ref(&inp), &out);
    assert_eq!(s.manifest.rule_lists.len(), 1);
    assert_eq!(s.manifest.rule_lists[0].name, "test-list");
    let attrs = attrs_by_id(&out, "r");

    // A strong term in a short document: dropped by the rules layer, span on the term.
    let a = &attrs["strong"];
    assert_eq!(a.action, Action::Drop);
    assert_eq!(a.reasons.len(), 1, "{:?}", a.reasons);
    let r = &a.reasons[0];
    assert_eq!(r.layer, Layer::Rules);
    assert_eq!(r.category.as_deref(), Some("HR"));
    let sp = r.span.unwrap();
    assert_eq!(&strong_text[sp.start..sp.end], "GrimbleWort");
    assert!(r.detail.as_deref().unwrap().contains("grimblewort") && r.detail.as_deref().unwrap().contains("test-list"), "{:?}", r.detail);
    let removed = read_json_lines(&out.join("removed/r.jsonl.gz"));
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["warden"]["reasons"][0]["layer"], "rules");

    // A strong phrase in one paragraph of a long document: that paragraph is redacted.
    let a = &attrs["long"];
    assert_eq!(a.action, Action::Redact);
    assert_eq!(a.redacted, vec![bad]);
    assert_eq!(a.reasons[0].layer, Layer::Rules);
    let sp = a.reasons[0].span.unwrap();
    assert_eq!(&long[sp.start..sp.end], "snarfle   puff");

    // A mild term is recorded, not acted on.
    let a = &attrs["mild"];
    assert_eq!(a.action, Action::Keep);
    assert!(a.reasons.is_empty());
    assert_eq!(a.rule_hits.len(), 1, "{:?}", a.rule_hits);
    let h = &a.rule_hits[0];
    assert_eq!(h.severity, Severity::Mild);
    assert_eq!(h.list, "test-list");
    assert_eq!(&mild_text[h.span.start..h.span.end], "dagnabbit");

    // Whole words only.
    assert_eq!(attrs["none"].action, Action::Keep);
    assert!(attrs["none"].rule_hits.is_empty(), "{:?}", attrs["none"].rule_hits);

    let kept = read_lines(&out.join("kept/r.jsonl"));
    assert_eq!(kept.len(), 3);
    assert_verifies(&out);

    // With act_on = "mild" the mild term acts too.
    let eng = engine(policy("act_on = \"mild\"\nlists = [{ path = \"list.toml\" }]", "", Some(tmp.path())));
    let out2 = tmp.path().join("out2");
    run_ok(&eng, std::slice::from_ref(&inp), &out2);
    assert_eq!(attrs_by_id(&out2, "r")["mild"].action, Action::Drop);
}

#[test]
fn rules_confirmed_by_the_classifier() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("list.toml"), RULE_LIST).unwrap();
    let pol = policy("act_on = \"strong\"\nconfirm_threshold = 0.5\nlists = [{ path = \"list.toml\" }]", "", Some(tmp.path()));
    let inp = tmp.path().join("c.jsonl");
    write_input(
        &inp,
        &[
            format!("{{\"id\":\"quoted\",\"text\":{}}}", js("the word grimblewort was quoted in the article")),
            format!("{{\"id\":\"meant\",\"text\":{}}}", js("you grimblewort zzharass")),
        ],
    );
    let out = tmp.path().join("out");
    run_ok(&engine(pol), &[inp], &out);
    let attrs = attrs_by_id(&out, "c");
    // Unconfirmed: kept, but the hit is recorded.
    assert_eq!(attrs["quoted"].action, Action::Keep);
    assert_eq!(attrs["quoted"].rule_hits.len(), 1);
    // Confirmed: the rules reason carries the confirming score and threshold.
    let a = &attrs["meant"];
    assert_eq!(a.action, Action::Drop);
    let r = a.reasons.iter().find(|r| r.layer == Layer::Rules).expect("a rules reason");
    assert!((r.score.unwrap() - 0.99).abs() < 1e-6 && (r.threshold.unwrap() - 0.5).abs() < 1e-6, "{r:?}");
    assert!(a.reasons.iter().any(|r| r.layer == Layer::Fast && r.category.as_deref() == Some("HR")));
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// 8. Domain blocklists
// ---------------------------------------------------------------------------------------

#[test]
fn domain_blocklist() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("blocked.txt"), "# test list\nexample.org\n").unwrap();
    let eng = engine(policy("domains = [\"blocked.txt\"]", "", Some(tmp.path())));
    assert_eq!(eng.blocked_domains(), 1);
    let inp = tmp.path().join("d.jsonl");
    let lines = [
        format!("{{\"id\":\"sub\",\"url\":\"https://sub.example.org/x\",\"text\":{}}}", js(&clean(50, 1))),
        format!("{{\"id\":\"near\",\"url\":\"https://notexample.org/x\",\"text\":{}}}", js(&clean(50, 2))),
        format!("{{\"id\":\"apex\",\"url\":\"http://EXAMPLE.ORG:8080/a?b\",\"text\":{}}}", js("zzviolent too")),
        format!("{{\"id\":\"src\",\"source\":\"example.org\",\"text\":{}}}", js(&clean(50, 3))),
        format!("{{\"id\":\"nourl\",\"text\":{}}}", js(&clean(50, 4))),
        format!("{{\"id\":\"other\",\"url\":\"https://example.org.evil.net/\",\"text\":{}}}", js(&clean(50, 5))),
    ];
    write_input(&inp, &lines);
    let out = tmp.path().join("out");
    let s = run_ok(&eng, &[inp], &out);
    assert_eq!(s.manifest.blocked_domains, 1);
    let attrs = attrs_by_id(&out, "d");
    for id in ["sub", "apex", "src"] {
        let a = &attrs[id];
        assert_eq!(a.action, Action::Drop, "{id}");
        assert_eq!(a.reasons.len(), 1, "{id}: only the domain reason: {:?}", a.reasons);
        assert_eq!(a.reasons[0].layer, Layer::Domain);
        assert_eq!(a.reasons[0].category, None);
        assert_eq!(a.reasons[0].detail.as_deref(), Some("example.org"));
    }
    for id in ["near", "nourl", "other"] {
        assert_eq!(attrs[id].action, Action::Keep, "{id}");
    }
    let kept = read_lines(&out.join("kept/d.jsonl"));
    assert_eq!(kept, [lines[1].clone(), lines[4].clone(), lines[5].clone()]);
    let removed = read_json_lines(&out.join("removed/d.jsonl.gz"));
    assert_eq!(removed[0]["warden"]["reasons"][0]["layer"], "domain");
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// Further layers: the second tier and PII masking
// ---------------------------------------------------------------------------------------

#[test]
fn second_tier_rescores_the_uncertain_band() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("u.jsonl");
    write_input(
        &inp,
        &[
            format!("{{\"id\":\"bad\",\"text\":{}}}", js("maybe zzmaybebad maybe not")),
            format!("{{\"id\":\"ok\",\"text\":{}}}", js("maybe zzmaybeok maybe not")),
            format!("{{\"id\":\"sure\",\"text\":{}}}", js("certainly zzviolent")),
        ],
    );
    let second: Arc<dyn warden_curate::SecondTier> = Arc::new(PlainSecondTier(Fake::second()));
    let eng = Engine::new(policy("", "", None), Taxonomy::builtin(), Some(Fake::fast()), Some(second)).unwrap();
    assert_eq!(eng.second_name(), Some("fake-second"));
    let out = tmp.path().join("out");
    let s = run_ok(&eng, &[inp], &out);
    assert_eq!(s.manifest.run.second_tier.as_deref(), Some("fake-second"));
    let attrs = attrs_by_id(&out, "u");
    let v = Taxonomy::builtin().index_of("V").unwrap();
    // In the band and confirmed by the second tier.
    let a = &attrs["bad"];
    assert_eq!(a.action, Action::Drop);
    assert_eq!(a.reasons[0].layer, Layer::Encoder);
    assert!((a.chunks[0].fast[v] - 0.5).abs() < 1e-6);
    assert!((a.chunks[0].encoder.as_ref().unwrap()[v] - 0.95).abs() < 1e-6);
    // In the band and cleared.
    assert_eq!(attrs["ok"].action, Action::Keep);
    assert!(attrs["ok"].chunks[0].encoder.is_some());
    // Outside the band: not rescored.
    assert_eq!(attrs["sure"].action, Action::Drop);
    assert!(attrs["sure"].chunks[0].encoder.is_none());
    assert_eq!(attrs["sure"].reasons[0].layer, Layer::Fast);
    assert_verifies(&out);
}

#[test]
fn pii_masking_is_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("p.jsonl");
    let plain = format!("{{\"id\":\"plain\",\"text\":{}}}", js(&clean(60, 1)));
    write_input(
        &inp,
        &[format!("{{\"id\":\"mail\",\"text\":{},\"n\":3}}", js("write to jane.doe@example.com for the garden plans")), plain.clone()],
    );
    let eng = engine(policy("", "[pii]\nmask = true", None));
    let out = tmp.path().join("out");
    let s = run_ok(&eng, &[inp], &out);
    assert!(s.manifest.pii_masked);
    let kept = read_lines(&out.join("kept/p.jsonl"));
    assert_eq!(kept.len(), 2);
    let v: Value = serde_json::from_str(&kept[0]).unwrap();
    assert!(!v["text"].as_str().unwrap().contains("jane.doe@example.com"), "{v}");
    assert_eq!(v["n"], 3);
    assert_eq!(kept[1], plain, "a text without PII is written byte for byte");
    let attrs = attrs_by_id(&out, "p");
    assert_eq!(attrs["mail"].action, Action::Keep);
    assert!(attrs["mail"].pii_masked >= 1);
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// Output names
// ---------------------------------------------------------------------------------------

#[test]
fn output_names_follow_the_input_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = seven_inputs(&tmp.path().join("in"));
    let plan = warden_curate::run::plan(&inputs).unwrap();
    let names: Vec<&str> = plan.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["g0", "g1", "g2", "g3", "g4", "g6", "sub__g5"]);
    // Same stem, different formats: the extension is kept for those.
    let a = tmp.path().join("x.jsonl");
    let b = tmp.path().join("x.jsonl.gz");
    let plan = warden_curate::run::plan(&[a, b]).unwrap();
    let names: Vec<&str> = plan.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["x.jsonl", "x.jsonl.gz"]);
}

#[test]
fn output_names_are_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a b.jsonl");
    let b = tmp.path().join("a_b.jsonl");
    write_input(&a, &[format!("{{\"id\":\"1\",\"text\":{}}}", js(&clean(40, 1)))]);
    write_input(&b, &[format!("{{\"id\":\"2\",\"text\":{}}}", js(&clean(40, 2)))]);
    let plan = warden_curate::run::plan(&[a.clone(), b.clone()]).unwrap();
    let names: std::collections::BTreeSet<&str> = plan.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "output names collide: {plan:?}");
    let out = tmp.path().join("out");
    run_ok(&default_engine(), &[a, b], &out);
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// Field names
// ---------------------------------------------------------------------------------------

#[test]
fn custom_field_names() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("f.jsonl");
    let (long, bad) = long_text(Some(1), "zzviolent", 7);
    let bad = bad.unwrap();
    let keep_line = format!("{{\"doc_id\":\"k\",\"content\":{},\"text\":\"zzviolent is not the text field\"}}", js(&clean(60, 1)));
    write_input(
        &inp,
        &[
            keep_line.clone(),
            format!("{{\"doc_id\":\"r\",\"content\":{},\"text\":\"untouched\"}}", js(&long)),
            "{\"doc_id\":\"x\",\"text\":\"no content field\"}".to_string(),
        ],
    );
    let out = tmp.path().join("out");
    let s = run_with(&default_engine(), &[inp], &out, |c| {
        c.reader.fields.text = "content".into();
        c.reader.fields.id = "doc_id".into();
    })
    .unwrap();
    assert_eq!((s.manifest.totals.kept, s.manifest.totals.redacted, s.manifest.totals.errors), (1, 1, 1));
    let kept = read_lines(&out.join("kept/f.jsonl"));
    assert_eq!(kept[0], keep_line);
    let v: Value = serde_json::from_str(&kept[1]).unwrap();
    let mut want = long.clone();
    want.replace_range(bad.start..bad.end, "");
    assert_eq!(v["content"].as_str().unwrap(), want);
    assert_eq!(v["text"], "untouched");
    let attrs = attrs_by_id(&out, "f");
    assert_eq!(attrs.keys().collect::<Vec<_>>(), ["k", "r"]);
    let e = read_json_lines(&out.join("errors/f.jsonl"));
    assert_eq!(e[0]["kind"], "missing_text");
    assert_verifies(&out);
}

// ---------------------------------------------------------------------------------------
// Regression tests for bugs found in review (fixed)
// ---------------------------------------------------------------------------------------

#[test]
fn the_first_real_error_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let mut inputs = Vec::new();
    for (i, text) in ["zzslow but fine", "fine", "fine", "zzfail here"].iter().enumerate() {
        let p = dir.join(format!("e{i}.jsonl"));
        write_input(&p, &[format!("{{\"id\":\"{i}\",\"text\":{}}}", js(text))]);
        inputs.push(p);
    }
    // Two threads: one is held up by file 0 while the other fails on file 3.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let out = tmp.path().join("out");
    let r = pool.install(|| run_with(&default_engine(), &inputs, &out, |_| {}));
    match r {
        Err(CurateError::Model(m)) => assert!(m.contains("on purpose"), "{m}"),
        Err(e) => panic!("the model error was masked by: {e}"),
        Ok(_) => panic!("the run must fail"),
    }
}

#[test]
fn redaction_changes_only_the_text() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("b.jsonl");
    let (long, _) = long_text(Some(2), "zzviolent", 1);
    let line = format!("{{\"id\":\"r\",\"text\":{},\"big\":123456789012345678901234567890,\"f\":0.10000000000000000001,\"a\":1}}", js(&long));
    write_input(&inp, &[line.clone()]);
    let out = tmp.path().join("out");
    run_ok(&default_engine(), &[inp], &out);
    let kept = read_lines(&out.join("kept/b.jsonl"));
    assert_eq!(kept.len(), 1);
    let text_end = line.find(",\"big\"").unwrap();
    assert!(
        kept[0].starts_with("{\"id\":\"r\",\"text\":") && kept[0].ends_with(&line[text_end..]),
        "fields other than the text were rewritten:\n  input  {}\n  kept   {}",
        line.replace(&js(&long), "\"…\""),
        {
            let v: Value = serde_json::from_str(&kept[0]).unwrap();
            let t = js(v["text"].as_str().unwrap());
            kept[0].replace(&t, "\"…\"")
        }
    );
}

#[test]
fn rule_hit_count_survives_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("list.toml"), RULE_LIST).unwrap();
    let eng = engine(policy("act_on = \"strong\"\nlists = [{ path = \"list.toml\" }]", "", Some(tmp.path())));
    let inp = tmp.path().join("h.jsonl");
    write_input(&inp, &[format!("{{\"id\":\"spam\",\"text\":{}}}", js(&"grimblewort ".repeat(150)))]);
    let out = tmp.path().join("out");
    run_ok(&eng, &[inp], &out);
    let a = &read_attrs(&out, "h")[0];
    assert_eq!(a.rule_hits.len(), warden_curate::engine::MAX_RULE_HITS_STORED);
    assert_eq!(a.action, Action::Drop);
    assert_eq!(a.rule_hits.len() as u32 + a.rule_hits_omitted, 150, "the total of 150 hits must be recoverable");
}
