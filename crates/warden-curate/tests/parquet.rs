//! Parquet input: kept documents are written back as Parquet, verified, resumable.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use warden_audit::{Action, DocAttributes};
use warden_core::{Classifier, Scores, Taxonomy};
use warden_curate::{CurationPolicy, Engine, NoProgress, RunConfig, RunSummary};

mod common;
use common::clean;

// ---------------------------------------------------------------------------------------
// Fixtures (the same fake model as tests/run.rs: marker words score 0.99)
// ---------------------------------------------------------------------------------------

struct Fake {
    tax: Taxonomy,
}

const MARKERS: &[(&str, &[&str])] = &[("zzviolent", &["V"]), ("zzhate", &["H"])];

impl Classifier for Fake {
    fn taxonomy(&self) -> &Taxonomy {
        &self.tax
    }
    fn name(&self) -> &str {
        "fake-markers"
    }
    fn predict_batch(&self, texts: &[&str]) -> warden_core::Result<Vec<Scores>> {
        Ok(texts
            .iter()
            .map(|t| {
                self.tax
                    .codes()
                    .map(|code| if MARKERS.iter().any(|(m, cats)| t.contains(m) && cats.contains(&code)) { 0.99 } else { 0.01 })
                    .collect()
            })
            .collect())
    }
}

fn engine(rest: &str) -> Engine {
    let toml = format!("format_version = 1\nname = \"test-policy\"\n\n[rules]\nbuiltin = false\n\n[chunking]\nmax_bytes = 400\n\n{rest}\n");
    let p = CurationPolicy::from_toml_str(&toml, None, &Taxonomy::builtin()).expect("valid policy");
    Engine::new(p, Taxonomy::builtin(), Some(Arc::new(Fake { tax: Taxonomy::builtin() })), None).expect("engine")
}

fn run(engine: &Engine, inputs: &[PathBuf], out: &Path, batch_docs: usize) -> RunSummary {
    let mut cfg = RunConfig::new(inputs.to_vec(), out.to_path_buf());
    cfg.batch_docs = batch_docs;
    warden_curate::run(engine, &cfg, "test-policy", &NoProgress).expect("run")
}

/// Six 300-byte paragraphs; paragraph `bad` carries `marker` (the document is redacted).
fn long_text(bad: usize, marker: &str, seed: usize) -> String {
    let mut text = String::new();
    for i in 0..6 {
        let mut p = clean(300, seed * 10 + i);
        if i == bad {
            let m = format!(" {marker} ");
            p.replace_range(100..100 + m.len(), &m);
        }
        text.push_str(&p);
        if i < 5 {
            text.push('\n');
        }
    }
    text
}

fn schema(text_type: DataType) -> SchemaRef {
    let meta: HashMap<String, String> = [("origin", "warden-test"), ("licence", "cc-by-4.0"), ("crawl", "2026-01")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Arc::new(
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("text", text_type, true),
            Field::new("url", DataType::Utf8, true),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ])
        .with_metadata(meta),
    )
}

/// One input row: (id, text, url, tags).
type Row = (i64, Option<String>, Option<String>, Vec<String>);

/// The input rows. Row 2 and 5 are dropped, row 3 redacted, row 6
/// (null text) is an error, the others are kept.
fn rows() -> Vec<Row> {
    vec![
        (1, Some(clean(80, 1)), Some("https://a.example.org/1".into()), vec!["x".into(), "y".into()]),
        (2, Some("short and zzviolent 2".into()), Some("https://b.example.org/2".into()), vec![]),
        (3, Some(long_text(2, "zzviolent", 3)), None, vec!["long".into()]),
        (4, Some(clean(150, 4)), Some("https://c.example.org/4".into()), vec!["z".into()]),
        (5, Some("zzhate 5".into()), Some("https://d.example.org/5".into()), vec!["h".into()]),
        (6, None, Some("https://e.example.org/6".into()), vec![]),
        (7, Some(clean(60, 7)), None, vec!["a".into(), "b".into(), "c".into()]),
    ]
}

fn batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let text: ArrayRef = match schema.field(1).data_type() {
        DataType::Utf8 => Arc::new(StringArray::from(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>())),
        DataType::Binary => Arc::new(BinaryArray::from(rows.iter().map(|r| r.1.as_deref().map(str::as_bytes)).collect::<Vec<_>>())),
        other => panic!("{other}"),
    };
    let urls: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>()));
    let mut tags = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for t in &r.3 {
            tags.values().append_value(t);
        }
        tags.append(true);
    }
    RecordBatch::try_new(schema.clone(), vec![ids, text, urls, Arc::new(tags.finish())]).unwrap()
}

/// Writes `rows` as Parquet with small row groups (so that the file has several).
fn write_parquet(path: &Path, schema: &SchemaRef, rows: &[Row]) {
    let props = WriterProperties::builder().set_max_row_group_size(3).build();
    let mut w = ArrowWriter::try_new(fs::File::create(path).unwrap(), schema.clone(), Some(props)).unwrap();
    w.write(&batch(schema, rows)).unwrap();
    w.close().unwrap();
}

/// The schema and all rows (one batch) of a Parquet file.
fn read_parquet(path: &Path) -> (SchemaRef, RecordBatch) {
    let b = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap()).unwrap();
    let schema = b.schema().clone();
    let batches: Vec<RecordBatch> = b.build().unwrap().map(|b| b.unwrap()).collect();
    let all = arrow_select::concat::concat_batches(&schema, &batches).unwrap();
    (schema, all)
}

fn attrs(out: &Path, name: &str) -> BTreeMap<String, DocAttributes> {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(out.join(format!("attributes/{name}.jsonl.gz"))).unwrap()).read_to_string(&mut s).unwrap();
    s.lines().map(|l| serde_json::from_str::<DocAttributes>(l).unwrap()).map(|a| (a.id.clone(), a)).collect()
}

fn assert_verifies(dir: &Path) {
    let r = warden_curate::verify(dir).expect("verify runs");
    assert!(r.ok(), "verify {}: {:?} {:?}", dir.display(), r.problems, r.files.iter().filter(|f| !f.problems.is_empty()).collect::<Vec<_>>());
}

fn verify_problems(dir: &Path) -> Vec<String> {
    let r = warden_curate::verify(dir).expect("verify runs");
    assert!(!r.ok(), "verify {} passed after tampering", dir.display());
    r.files.iter().flat_map(|f| f.problems.clone()).chain(r.problems.clone()).collect()
}

/// Every file under `dir/sub` for the byte-identity check.
fn outputs(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for sub in ["kept", "removed", "errors", "attributes", "stats"] {
        for e in fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            all.insert(p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap());
        }
    }
    all
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let q = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &q);
        } else {
            fs::copy(&p, &q).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn parquet_input_gives_parquet_kept_output() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("p.parquet");
    let schema = schema(DataType::Utf8);
    let rows = rows();
    write_parquet(&inp, &schema, &rows);
    let eng = engine("");
    let out = tmp.path().join("out");
    // Batches of two documents: the bookkeeping spans several batches and row groups.
    let s = run(&eng, std::slice::from_ref(&inp), &out, 2);
    let f = &s.manifest.files[0];
    assert_eq!(f.outputs.kept, "kept/p.parquet");
    assert_eq!(f.kept_note, None);
    assert_eq!((f.docs, f.kept, f.redacted, f.dropped, f.errors), (6, 3, 1, 2, 1));
    assert!(!out.join("kept/p.jsonl.zst").exists());

    let a = attrs(&out, "p");
    assert_eq!(a["2"].action, Action::Drop);
    assert_eq!(a["5"].action, Action::Drop);
    assert_eq!(a["3"].action, Action::Redact);
    for id in ["1", "4", "7"] {
        assert_eq!(a[id].action, Action::Keep, "{id}");
    }

    let (in_schema, _) = read_parquet(&inp);
    let (kept_schema, kept) = read_parquet(&out.join("kept/p.parquet"));
    assert_eq!(kept_schema, in_schema, "the kept file has the input's schema (and metadata)");
    assert_eq!(kept_schema.metadata().get("licence").map(String::as_str), Some("cc-by-4.0"));

    // Exactly the kept and redacted rows, in input order, other columns unchanged.
    let want: Vec<_> = rows.iter().filter(|r| [1, 3, 4, 7].contains(&r.0)).cloned().collect();
    let expected = batch(&schema, &want);
    assert_eq!(kept.num_rows(), 4);
    for c in [0, 2, 3] {
        assert_eq!(kept.column(c).as_ref(), expected.column(c).as_ref(), "column {}", schema.field(c).name());
    }
    assert_eq!(kept.column(0).as_primitive::<Int64Type>().values().to_vec(), vec![1, 3, 4, 7]);
    let texts = kept.column(1).as_string::<i32>();
    let original = rows[2].1.clone().unwrap();
    let redacted = warden_curate::engine::remove_spans(&original, &a["3"].redacted);
    assert_ne!(redacted, original);
    assert!(!texts.value(1).contains("zzviolent"));
    assert_eq!(texts.value(1), redacted, "the redacted row's text is the input text minus the spans");
    for (i, r) in [(0, 0), (2, 3), (3, 6)] {
        assert_eq!(texts.value(i), rows[r].1.as_deref().unwrap(), "kept texts are unchanged");
    }
    assert_verifies(&out);

    // A resumed run writes the same bytes: B is interrupted after its work on the file
    // (state record gone, a half-written partial directory left).
    let b = tmp.path().join("B");
    run(&eng, std::slice::from_ref(&inp), &b, 2);
    fs::remove_file(b.join(".state/p.json")).unwrap();
    fs::write(b.join("kept/p.parquet"), b"truncated").unwrap();
    fs::create_dir_all(b.join(".partial/p")).unwrap();
    fs::write(b.join(".partial/p/kept_p.parquet"), b"half-written").unwrap();
    fs::remove_file(b.join("manifest.json")).unwrap();
    let sb = run(&eng, std::slice::from_ref(&inp), &b, 2);
    assert_eq!(sb.manifest.timings.processed_files, 1);
    assert_eq!(outputs(&out), outputs(&b), "a resumed run is byte-identical");
    assert_verifies(&b);
}

#[test]
fn tampered_kept_parquet_fails_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("p.parquet");
    let schema = schema(DataType::Utf8);
    write_parquet(&inp, &schema, &rows());
    let out = tmp.path().join("out");
    run(&engine(""), std::slice::from_ref(&inp), &out, 512);
    assert_verifies(&out);
    let (kept_schema, kept) = read_parquet(&out.join("kept/p.parquet"));
    let rewrite = |dir: &Path, b: &RecordBatch| {
        let mut w = ArrowWriter::try_new(fs::File::create(dir.join("kept/p.parquet")).unwrap(), kept_schema.clone(), None).unwrap();
        w.write(b).unwrap();
        w.close().unwrap();
    };

    // The same rows rewritten by another writer still verify: rows are compared, not bytes.
    let same = tmp.path().join("same");
    copy_dir(&out, &same);
    rewrite(&same, &kept);
    assert_verifies(&same);

    // A row missing.
    let missing = tmp.path().join("missing");
    copy_dir(&out, &missing);
    rewrite(&missing, &kept.slice(1, kept.num_rows() - 1));
    let p = verify_problems(&missing);
    assert!(!p.is_empty());

    // An extra row.
    let extra = tmp.path().join("extra");
    copy_dir(&out, &extra);
    rewrite(&extra, &arrow_select::concat::concat_batches(&kept_schema, [&kept, &kept.slice(0, 1)]).unwrap());
    let p = verify_problems(&extra);
    assert!(p.iter().any(|m| m.contains("kept output has records")), "{p:?}");

    // A changed field other than the text.
    let changed = tmp.path().join("changed");
    copy_dir(&out, &changed);
    let mut cols = kept.columns().to_vec();
    let urls = cols[2].as_string::<i32>();
    cols[2] = Arc::new(StringArray::from(
        (0..urls.len()).map(|i| if i == 2 { Some("https://evil.example.org/") } else { urls.is_valid(i).then(|| urls.value(i)) }).collect::<Vec<_>>(),
    ));
    rewrite(&changed, &RecordBatch::try_new(kept_schema.clone(), cols).unwrap());
    let p = verify_problems(&changed);
    assert!(p.iter().any(|m| m.contains("id \"4\"") && m.contains("not the input row")), "{p:?}");

    // The redacted row with its original text back.
    let unredacted = tmp.path().join("unredacted");
    copy_dir(&out, &unredacted);
    let mut cols = kept.columns().to_vec();
    let texts = cols[1].as_string::<i32>();
    let original = rows()[2].1.clone().unwrap();
    cols[1] = Arc::new(StringArray::from((0..texts.len()).map(|i| if i == 1 { original.clone() } else { texts.value(i).to_owned() }).collect::<Vec<_>>()));
    rewrite(&unredacted, &RecordBatch::try_new(kept_schema.clone(), cols).unwrap());
    let p = verify_problems(&unredacted);
    assert!(p.iter().any(|m| m.contains("id \"3\"")), "{p:?}");
}

#[test]
fn pii_masking_applies_to_parquet_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("m.parquet");
    let schema = schema(DataType::Utf8);
    let mut rows = rows();
    rows[0].1 = Some("write to jane.doe@example.com for the garden plans".into());
    write_parquet(&inp, &schema, &rows);
    let out = tmp.path().join("out");
    let s = run(&engine("[pii]\nmask = true"), std::slice::from_ref(&inp), &out, 512);
    assert!(s.manifest.pii_masked);
    let (_, kept) = read_parquet(&out.join("kept/m.parquet"));
    let texts = kept.column(1).as_string::<i32>();
    assert_eq!(kept.column(0).as_primitive::<Int64Type>().value(0), 1);
    assert!(!texts.value(0).contains("jane.doe@example.com"), "{}", texts.value(0));
    assert_eq!(texts.value(2), rows[3].1.as_deref().unwrap(), "a text without PII is unchanged");
    assert!(attrs(&out, "m")["1"].pii_masked >= 1);
    assert_verifies(&out);
}

#[test]
fn non_string_text_column_falls_back_to_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("b.parquet");
    let schema = schema(DataType::Binary);
    write_parquet(&inp, &schema, &rows());
    let out = tmp.path().join("out");
    let s = run(&engine(""), std::slice::from_ref(&inp), &out, 512);
    let f = &s.manifest.files[0];
    assert_eq!(f.outputs.kept, "kept/b.jsonl.zst");
    let note = f.kept_note.as_deref().expect("the manifest says why");
    assert!(note.contains("not Utf8"), "{note}");
    assert_eq!((f.kept, f.redacted), (3, 1));
    let lines = zstd::decode_all(&fs::read(out.join("kept/b.jsonl.zst")).unwrap()[..]).unwrap();
    assert_eq!(String::from_utf8(lines).unwrap().lines().count(), 4);
    assert_verifies(&out);
}

/// A file written without Arrow (no `ARROW:schema` entry, as Spark or DuckDB write them):
/// the kept file still has the same Arrow schema and verifies.
#[test]
fn parquet_written_without_arrow() {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type as PqInt64};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("plain.parquet");
    let schema = Arc::new(
        parse_message_type("message doc { required int64 id; optional binary text (UTF8); optional double score; }").unwrap(),
    );
    let texts = [clean(90, 1), "zzhate 2".to_owned(), long_text(4, "zzviolent", 3), clean(70, 4)];
    let mut w = SerializedFileWriter::new(fs::File::create(&inp).unwrap(), schema, Default::default()).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<PqInt64>().write_batch(&[10, 20, 30, 40], None, None).unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    let values: Vec<ByteArray> = texts.iter().map(|t| ByteArray::from(t.as_str())).collect();
    col.typed::<ByteArrayType>().write_batch(&values, Some(&[1, 1, 1, 1]), None).unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<DoubleType>().write_batch(&[0.5, 2.25], Some(&[1, 0, 0, 1]), None).unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();

    let out = tmp.path().join("out");
    let s = run(&engine(""), std::slice::from_ref(&inp), &out, 512);
    let f = &s.manifest.files[0];
    assert_eq!((f.outputs.kept.as_str(), f.kept, f.redacted, f.dropped), ("kept/plain.parquet", 2, 1, 1));
    let (in_schema, _) = read_parquet(&inp);
    let (kept_schema, kept) = read_parquet(&out.join("kept/plain.parquet"));
    assert_eq!(kept_schema, in_schema);
    assert_eq!(kept.column(0).as_primitive::<Int64Type>().values().to_vec(), vec![10, 30, 40]);
    let scores = kept.column(2).as_primitive::<arrow_array::types::Float64Type>();
    assert_eq!((scores.value(0), scores.is_null(1), scores.value(2)), (0.5, true, 2.25));
    assert!(!kept.column(1).as_string::<i32>().value(1).contains("zzviolent"));
    assert_verifies(&out);
}
