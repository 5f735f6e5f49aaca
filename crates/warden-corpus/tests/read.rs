use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use warden_corpus::{
    expand_globs, open, parse_shard_spec, sha256_file, shard, CorpusError, Document, FieldMap,
    Item, ReadError, ReadErrorKind, ReaderOptions, DEFAULT_MAX_LINE_BYTES,
};

fn read_all(path: &Path, opts: &ReaderOptions) -> Vec<Item> {
    open(path, opts).unwrap().collect()
}

fn doc(item: &Item) -> &Document {
    match item {
        Item::Doc(d) => d,
        Item::Error(e) => panic!("expected a document, got {e:?}"),
    }
}

fn err(item: &Item) -> &ReadError {
    match item {
        Item::Error(e) => e,
        Item::Doc(d) => panic!("expected an error, got {d:?}"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Everything of an item except the file name, for comparing formats.
fn strip_file(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Item::Doc(d) => format!(
                "doc {} {:?} {:?} {} {} {:?}",
                d.id, d.text, d.source, d.raw, d.location.line, d.location.byte_offset
            ),
            Item::Error(e) => format!(
                "err {:?} {:?} {} {:?}",
                e.kind, e.excerpt, e.location.line, e.location.byte_offset
            ),
        })
        .collect()
}

const SAMPLE: &str = "{\"id\":\"a\",\"text\":\"first\",\"url\":\"https://x.org/1\"}\n\
\n\
{\"id\":2,\"text\":\"second \\u00e9\"}\r\n\
{\"text\":\"no id\"}\n\
not json\n\
{\"id\":\"z\",\"text\":\"last, no newline\"}";

#[test]
fn plain_gz_zst_give_identical_items_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("s.jsonl");
    let gz = dir.path().join("s.jsonl.gz");
    let gz_multi = dir.path().join("s.json.gz");
    let zst = dir.path().join("s.jsonl.zst");
    fs::write(&plain, SAMPLE).unwrap();
    fs::write(&gz, gzip(SAMPLE.as_bytes())).unwrap();
    // Two concatenated gzip members, split in the middle of a line.
    let mut multi = gzip(&SAMPLE.as_bytes()[..30]);
    multi.extend(gzip(&SAMPLE.as_bytes()[30..]));
    fs::write(&gz_multi, multi).unwrap();
    fs::write(&zst, zstd::encode_all(SAMPLE.as_bytes(), 3).unwrap()).unwrap();

    let opts = ReaderOptions::default();
    let base = read_all(&plain, &opts);
    assert_eq!(base.len(), 5, "{base:?}");
    for other in [&gz, &gz_multi, &zst] {
        let items = read_all(other, &opts);
        assert_eq!(strip_file(&items), strip_file(&base), "{}", other.display());
        assert!(items.iter().all(|i| i.location().file == *other));
    }

    // Byte offsets are line starts in the decompressed stream; line 2 is empty.
    let starts: Vec<u64> = SAMPLE
        .split_inclusive('\n')
        .scan(0u64, |off, l| {
            let s = *off;
            *off += l.len() as u64;
            Some(s)
        })
        .collect();
    let got: Vec<(u64, Option<u64>)> = base
        .iter()
        .map(|i| (i.location().line, i.location().byte_offset))
        .collect();
    let want: Vec<(u64, Option<u64>)> = [1usize, 3, 4, 5, 6]
        .iter()
        .map(|&l| (l as u64, Some(starts[l - 1])))
        .collect();
    assert_eq!(got, want);

    let d = doc(&base[0]);
    assert_eq!((d.id.as_str(), d.text.as_str()), ("a", "first"));
    assert_eq!(d.source.as_deref(), Some("x.org"));
    assert_eq!(
        d.raw,
        json!({"id":"a","text":"first","url":"https://x.org/1"})
    );
    assert_eq!(doc(&base[1]).text, "second é"); // CRLF line
    assert_eq!(doc(&base[2]).id, "s:4");
    assert!(matches!(err(&base[3]).kind, ReadErrorKind::InvalidJson(_)));
    assert_eq!(err(&base[3]).excerpt, "not json");
    assert_eq!(doc(&base[4]).text, "last, no newline");
}

#[test]
fn byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bom.jsonl");
    fs::write(&p, b"\xEF\xBB\xBF{\"text\":\"t\"}\n{\"text\":\"u\"}\n").unwrap();
    let items = read_all(&p, &ReaderOptions::default());
    assert_eq!(doc(&items[0]).text, "t");
    assert_eq!(items[0].location().byte_offset, Some(3));
    assert_eq!(items[1].location().byte_offset, Some(16));
    let gz = dir.path().join("bom.jsonl.gz");
    fs::write(&gz, gzip(&fs::read(&p).unwrap())).unwrap();
    assert_eq!(
        strip_file(&read_all(&gz, &ReaderOptions::default())),
        strip_file(&items)
    );
}

#[test]
fn field_mapping_ids_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shard-007.jsonl.zst");
    let lines = [
        json!({"doc_id": "d1", "content": "one", "source": "cc-2024"}),
        json!({"doc_id": 17, "content": "two", "url": "https://User:pw@Sub.Example.COM:8080/x"}),
        json!({"content": "three", "url": "http://www.site.net/"}),
        json!({"doc_id": null, "content": "four"}),
        json!({"doc_id": 2.5, "content": "five", "source": "", "url": "ftp://Files.IO"}),
        json!({"content": "six", "text": 5}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(&p, zstd::encode_all(body.as_bytes(), 1).unwrap()).unwrap();
    let opts = ReaderOptions {
        fields: FieldMap {
            id: "doc_id".into(),
            text: "content".into(),
            ..FieldMap::default()
        },
        ..ReaderOptions::default()
    };
    let items = read_all(&p, &opts);
    let got: Vec<(String, String, Option<String>)> = items
        .iter()
        .map(|i| {
            let d = doc(i);
            (d.id.clone(), d.text.clone(), d.source.clone())
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        vec![
            (s("d1"), s("one"), Some(s("cc-2024"))),
            (s("17"), s("two"), Some(s("sub.example.com"))),
            (s("shard-007:3"), s("three"), Some(s("www.site.net"))),
            (s("shard-007:4"), s("four"), None),
            (s("2.5"), s("five"), Some(s("files.io"))),
            (s("shard-007:6"), s("six"), None),
        ]
    );
    // Deterministic: a second read gives the same ids.
    assert_eq!(strip_file(&read_all(&p, &opts)), strip_file(&items));

    // A custom source field (any scalar is rendered), still falling back to the url host.
    let opts2 = ReaderOptions {
        fields: FieldMap {
            text: "content".into(),
            source: Some("doc_id".into()),
            ..FieldMap::default()
        },
        ..ReaderOptions::default()
    };
    let sources: Vec<Option<String>> = read_all(&p, &opts2)
        .iter()
        .map(|i| doc(i).source.clone())
        .collect();
    assert_eq!(
        sources,
        vec![
            Some(s("d1")),
            Some(s("17")),
            Some(s("www.site.net")),
            None,
            Some(s("2.5")),
            None
        ]
    );

    // With the default text field, line 6 has a non-string `text` and the rest none.
    let items = read_all(&p, &ReaderOptions::default());
    let kinds: Vec<ReadErrorKind> = items.iter().map(|i| err(i).kind.clone()).collect();
    let mut want = vec![ReadErrorKind::MissingText; 5];
    want.push(ReadErrorKind::TextNotString);
    assert_eq!(kinds, want);
}

#[test]
fn malformed_lines_are_reported_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    let mut body: Vec<u8> = Vec::new();
    body.extend_from_slice(b"{\"id\":1,\"text\":\"good one\"}\n"); // 1
    body.extend_from_slice(b"{\"text\": \"unterminated}\n"); // 2
    body.extend_from_slice(b"[1, 2, 3]\n"); // 3
    body.extend_from_slice(b"{\"id\":\"x\"}\n"); // 4
    body.extend_from_slice(b"{\"text\": 42}\n"); // 5
    body.extend_from_slice(b"{\"text\":\"\xff\xfe bad\"}\n"); // 6
    body.extend_from_slice(b"   \n"); // 7 (blank: skipped)
    body.extend_from_slice(b"{\"text\": null}\n"); // 8
    body.extend_from_slice(b"\"just a string\"\n"); // 9
    body.extend_from_slice(b"{\"id\":2,\"text\":\"good two\"}\n"); // 10
    fs::write(&p, &body).unwrap();
    let items = read_all(&p, &ReaderOptions::default());
    let summary: Vec<(u64, String)> = items
        .iter()
        .map(|i| {
            let what = match i {
                Item::Doc(d) => format!("doc {}", d.text),
                Item::Error(e) => match &e.kind {
                    ReadErrorKind::InvalidJson(_) => "InvalidJson".to_string(),
                    k => format!("{k:?}"),
                },
            };
            (i.location().line, what)
        })
        .collect();
    let s = |l: u64, x: &str| (l, x.to_string());
    assert_eq!(
        summary,
        vec![
            s(1, "doc good one"),
            s(2, "InvalidJson"),
            s(3, "NotAnObject"),
            s(4, "MissingText"),
            s(5, "TextNotString"),
            s(6, "InvalidUtf8"),
            s(8, "MissingText"),
            s(9, "NotAnObject"),
            s(10, "doc good two"),
        ]
    );
    let utf8 = err(&items[5]);
    assert_eq!(utf8.excerpt, "{\"text\":\"\u{FFFD}\u{FFFD} bad\"}");
    let line6_start = body.windows(3).position(|w| w == b"\xff\xfe ").unwrap() as u64 - 9;
    assert_eq!(utf8.location.byte_offset, Some(line6_start));
    assert!(utf8.to_string().contains("bad.jsonl:6"), "{utf8}");
}

#[test]
fn line_length_limit_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lim.jsonl");
    let exact = r#"{"text":"0123456789"}"#; // 21 bytes
    let over = r#"{"text":"01234567890"}"#; // 22 bytes
    fs::write(&p, format!("{exact}\n{over}\n{exact}\r\n")).unwrap();
    let opts = ReaderOptions {
        max_line_bytes: 21,
        ..ReaderOptions::default()
    };
    let items = read_all(&p, &opts);
    assert_eq!(items.len(), 3);
    doc(&items[0]);
    let e = err(&items[1]);
    assert_eq!(e.kind, ReadErrorKind::LineTooLong { len: 22, max: 21 });
    assert_eq!(e.excerpt, over);
    assert_eq!(e.location.byte_offset, Some(22));
    // With CRLF the '\r' counts towards the length: 22 > 21.
    assert_eq!(
        err(&items[2]).kind,
        ReadErrorKind::LineTooLong { len: 22, max: 21 }
    );
}

/// A 50 MB line under the default 16 MiB limit is reported as `LineTooLong` with its full
/// length and the next line is still read. Memory: the reader never buffers more than
/// `max_line_bytes` of a line (it truncates its line buffer to the excerpt as soon as the
/// limit is crossed and then only counts the bytes it consumes from `fill_buf`; see
/// `JsonlReader::read_line`), so peak memory is not asserted here; that is a code-review
/// point.
#[test]
fn fifty_megabyte_line_is_skipped_not_buffered() {
    const LEN: u64 = 50_000_000;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.jsonl");
    let first = "{\"id\":\"before\",\"text\":\"ok\"}\n";
    {
        let mut f = std::io::BufWriter::new(File::create(&p).unwrap());
        f.write_all(first.as_bytes()).unwrap();
        let head = b"{\"text\":\"";
        let tail = b"\"}";
        f.write_all(head).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let mut left = LEN - (head.len() + tail.len()) as u64;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        f.write_all(tail).unwrap();
        f.write_all(b"\n{\"id\":\"after\",\"text\":\"still read\"}\n")
            .unwrap();
    }
    let opts = ReaderOptions::default();
    assert_eq!(opts.max_line_bytes, 16 * 1024 * 1024);
    let items = read_all(&p, &opts);
    assert_eq!(items.len(), 3);
    assert_eq!(doc(&items[0]).id, "before");
    let e = err(&items[1]);
    assert_eq!(
        e.kind,
        ReadErrorKind::LineTooLong {
            len: LEN,
            max: DEFAULT_MAX_LINE_BYTES
        }
    );
    assert_eq!(e.location.line, 2);
    assert_eq!(e.location.byte_offset, Some(first.len() as u64));
    assert_eq!(e.excerpt.len(), 200);
    assert!(e.excerpt.starts_with("{\"text\":\"aaaa"));
    let after = doc(&items[2]);
    assert_eq!(
        (after.id.as_str(), after.text.as_str()),
        ("after", "still read")
    );
    assert_eq!(after.location.line, 3);
    assert_eq!(
        after.location.byte_offset,
        Some(first.len() as u64 + LEN + 1)
    );
}

fn numbered_lines(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{{\"id\":{i},\"text\":\"document number {i} with some filler text\"}}\n"))
        .collect()
}

fn assert_ends_with_one_io_error(items: &[Item], total: usize) {
    let (last, docs) = items.split_last().expect("at least the error item");
    assert!(
        matches!(err(last).kind, ReadErrorKind::Io(_)),
        "last item: {last:?}"
    );
    assert!(docs.len() < total);
    for (k, d) in docs.iter().enumerate() {
        assert_eq!(doc(d).location.line, k as u64 + 1);
    }
    assert_eq!(last.location().line, docs.len() as u64 + 1);
}

#[test]
fn truncated_gz_yields_one_io_error_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("trunc.jsonl.gz");
    let full = gzip(numbered_lines(5000).as_bytes());
    fs::write(&p, &full[..full.len() / 2]).unwrap();
    let items = read_all(&p, &ReaderOptions::default());
    assert_ends_with_one_io_error(&items, 5000);

    // Only the 8-byte trailer missing: all lines decode, then the error.
    fs::write(&p, &full[..full.len() - 4]).unwrap();
    let items = read_all(&p, &ReaderOptions::default());
    assert!(matches!(
        err(items.last().unwrap()).kind,
        ReadErrorKind::Io(_)
    ));
}

#[test]
fn corrupt_zst_yields_one_io_error_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("trunc.jsonl.zst");
    // Enough data for many zstd blocks, so the cut falls after the first one.
    let full = zstd::encode_all(numbered_lines(50_000).as_bytes(), 3).unwrap();
    fs::write(&p, &full[..full.len() / 2]).unwrap();
    let items = read_all(&p, &ReaderOptions::default());
    assert_ends_with_one_io_error(&items, 50_000);

    // Garbage in the middle of the stream.
    let mut bad = full.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 64] {
        *b ^= 0x5A;
    }
    fs::write(&p, &bad).unwrap();
    let items = read_all(&p, &ReaderOptions::default());
    assert_ends_with_one_io_error(&items, 50_000);

    // Truncated inside the first block: the stream fails before producing a byte, which
    // `open` reports as a whole-file decompression error naming the file.
    let small = zstd::encode_all(numbered_lines(100).as_bytes(), 3).unwrap();
    fs::write(&p, &small[..small.len() / 2]).unwrap();
    let e = open(&p, &ReaderOptions::default())
        .err()
        .expect("first block truncated");
    assert!(matches!(e, CorpusError::Decompress { .. }), "{e:?}");
    assert!(e.to_string().contains("trunc.jsonl.zst"), "{e}");
}

#[test]
fn whole_file_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ReaderOptions::default();
    let not_gz = dir.path().join("fake.jsonl.gz");
    fs::write(&not_gz, "{\"text\":\"plain\"}\n").unwrap();
    let e = open(&not_gz, &opts).err().expect("not gzip");
    assert!(matches!(e, CorpusError::Decompress { .. }), "{e:?}");
    assert!(e.to_string().contains("fake.jsonl.gz"), "{e}");

    let unknown = dir.path().join("data.csv");
    fs::write(&unknown, "a,b\n").unwrap();
    let e = open(&unknown, &opts).err().expect("unsupported");
    let msg = e.to_string();
    assert!(
        msg.contains("data.csv") && msg.contains(".jsonl") && msg.contains(".zst"),
        "{msg}"
    );

    let missing = dir.path().join("missing.jsonl");
    let e = open(&missing, &opts).err().expect("missing");
    assert!(e.to_string().contains("missing.jsonl"), "{e}");

    let empty = dir.path().join("empty.jsonl.gz");
    fs::write(&empty, gzip(b"")).unwrap();
    assert!(read_all(&empty, &opts).is_empty());
}

#[test]
fn shard_partitions_exactly() {
    let files: Vec<PathBuf> = (0..23)
        .map(|i| PathBuf::from(format!("in/f{i:02}.jsonl")))
        .collect();
    let mut shuffled = files.clone();
    shuffled.reverse();
    shuffled.swap(3, 17);
    shuffled.push(files[5].clone()); // duplicate
    for count in [1usize, 2, 3, 5, 7, 23, 30] {
        let shards: Vec<Vec<PathBuf>> = (0..count).map(|i| shard(&shuffled, i, count)).collect();
        let mut union: Vec<PathBuf> = shards.iter().flatten().cloned().collect();
        let total = union.len();
        union.sort();
        union.dedup();
        assert_eq!(total, union.len(), "shards overlap for N={count}");
        assert_eq!(union, files, "union is not the input for N={count}");
        let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        for (i, s) in shards.iter().enumerate() {
            assert_eq!(
                *s,
                shard(&files, i, count),
                "input order changed shard {i}/{count}"
            );
        }
    }
    assert_eq!(
        shard(&files, 1, 5)[..2],
        [files[1].clone(), files[6].clone()]
    );
    assert_eq!(parse_shard_spec("3/8").unwrap(), (3, 8));
    for bad in ["8/8", "1/0", "x/2", "3", "-1/2"] {
        assert!(
            matches!(parse_shard_spec(bad), Err(CorpusError::ShardSpec { .. })),
            "{bad}"
        );
    }
}

#[test]
#[should_panic]
fn shard_index_out_of_range_panics() {
    shard(&[PathBuf::from("a")], 2, 2);
}

#[test]
fn expand_globs_sorts_dedups_and_rejects_empty_matches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["b.jsonl", "a.jsonl", "c.jsonl.gz", "notes.txt"] {
        fs::write(d.join(name), "").unwrap();
    }
    fs::create_dir(d.join("sub.jsonl")).unwrap(); // a directory: ignored
    let pat = |p: &str| d.join(p).to_string_lossy().into_owned();
    let got = expand_globs(&[pat("*.jsonl*"), pat("a.jsonl"), pat("b.*")]).unwrap();
    assert_eq!(
        got,
        vec![d.join("a.jsonl"), d.join("b.jsonl"), d.join("c.jsonl.gz")]
    );
    let e = expand_globs(&[pat("*.jsonl"), pat("*.parquet")]).unwrap_err();
    assert!(matches!(e, CorpusError::NoMatch { .. }));
    assert!(e.to_string().contains("*.parquet"), "{e}");
    let e = expand_globs(&[pat("sub.jsonl")]).unwrap_err();
    assert!(
        matches!(e, CorpusError::NoMatch { .. }),
        "directory only: {e}"
    );
    let e = expand_globs(&[pat("[")]).unwrap_err();
    assert!(matches!(e, CorpusError::Glob { .. }), "{e}");
}

#[test]
fn sha256_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("abc.jsonl");
    fs::write(&p, "abc").unwrap();
    assert_eq!(
        sha256_file(&p).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let e = sha256_file(&dir.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_rows_become_documents() {
    use std::sync::Arc;

    use parquet::basic::{Compression, GzipLevel, ZstdLevel};
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(
        parse_message_type(
            "message doc {
                REQUIRED INT64 id;
                OPTIONAL BYTE_ARRAY text (UTF8);
                OPTIONAL BYTE_ARRAY url (UTF8);
            }",
        )
        .unwrap(),
    );
    for (name, compression) in [
        ("snappy.parquet", Compression::SNAPPY),
        (
            "zstd.parquet",
            Compression::ZSTD(ZstdLevel::try_new(3).unwrap()),
        ),
        (
            "gzip.parquet",
            Compression::GZIP(GzipLevel::try_new(6).unwrap()),
        ),
    ] {
        let p = dir.path().join(name);
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(compression)
                .build(),
        );
        let mut w =
            SerializedFileWriter::new(File::create(&p).unwrap(), schema.clone(), props).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<Int64Type>()
            .write_batch(&[1, 2, 3], None, None)
            .unwrap();
        c.close().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>()
            .write_batch(
                &[ByteArray::from("hello"), ByteArray::from("bye")],
                Some(&[1, 0, 1]),
                None,
            )
            .unwrap();
        c.close().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>()
            .write_batch(
                &[ByteArray::from("https://A.Example.com/x")],
                Some(&[1, 0, 0]),
                None,
            )
            .unwrap();
        c.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();

        let items = read_all(&p, &ReaderOptions::default());
        assert_eq!(items.len(), 3, "{name}");
        let d = doc(&items[0]);
        assert_eq!(d.id, "1");
        assert_eq!(d.text, "hello");
        assert_eq!(d.source.as_deref(), Some("a.example.com"));
        assert_eq!(
            d.raw,
            json!({"id": 1, "text": "hello", "url": "https://A.Example.com/x"})
        );
        assert_eq!((d.location.line, d.location.byte_offset), (1, None));
        let e = err(&items[1]);
        assert_eq!(e.kind, ReadErrorKind::MissingText);
        assert_eq!(e.location.line, 2);
        assert_eq!(e.excerpt, r#"{"id":2,"text":null,"url":null}"#);
        let d = doc(&items[2]);
        assert_eq!(
            (d.id.as_str(), d.text.as_str(), d.source.clone()),
            ("3", "bye", None)
        );
        assert_eq!(d.location.line, 3);
    }

    let not_parquet = dir.path().join("x.parquet");
    fs::write(&not_parquet, "nope").unwrap();
    let e = open(&not_parquet, &ReaderOptions::default()).err().unwrap();
    assert!(matches!(e, CorpusError::Parquet { .. }));
    assert!(e.to_string().contains("x.parquet"), "{e}");
}
