//! The on-disk embedding cache: round trips at f16 precision, misses, order,
//! persistence, key separation and refusal of foreign or corrupt files.

use warden_encoder::cache::{CacheError, CachedEmbedding, EmbeddingCache, SCHEMA_VERSION};

const ENCODER: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
const CONFIG: &str = "mean-pool/window-256/stride-192";

/// A deterministic embedding with `windows` rows of `dim` values in [-1, 1].
fn embedding(seed: u32, windows: usize, dim: usize) -> CachedEmbedding {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let vectors = (0..windows * dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect();
    let spans = (0..windows as u32)
        .map(|w| (w * 100, w * 100 + 150))
        .collect();
    CachedEmbedding {
        dim,
        spans,
        vectors,
    }
}

fn key(text: &str) -> [u8; 32] {
    EmbeddingCache::key(ENCODER, CONFIG, text)
}

/// Equal up to f16 rounding (relative 2^-11, plus subnormal slack near 0).
fn assert_close(got: &CachedEmbedding, want: &CachedEmbedding) {
    assert_eq!(got.dim, want.dim);
    assert_eq!(got.spans, want.spans);
    assert_eq!(got.vectors.len(), want.vectors.len());
    for (i, (g, w)) in got.vectors.iter().zip(&want.vectors).enumerate() {
        let tol = w.abs() * (1.0 / 2048.0) + 1e-7;
        assert!((g - w).abs() <= tol, "value {i}: got {g}, want {w}");
    }
}

#[test]
fn roundtrip_within_f16_precision() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = EmbeddingCache::open(&tmp.path().join("emb.sqlite")).unwrap();
    assert!(cache.is_empty().unwrap());
    assert_eq!(cache.len().unwrap(), 0);

    let one = embedding(1, 1, 384);
    let three = embedding(2, 3, 384);
    let empty = CachedEmbedding {
        dim: 384,
        spans: vec![],
        vectors: vec![],
    };
    let exact = CachedEmbedding {
        dim: 4,
        spans: vec![(0, 7)],
        vectors: vec![0.0, 1.0, -0.5, 0.25],
    };
    cache
        .put_many(&[
            (key("one"), one.clone()),
            (key("three"), three.clone()),
            (key(""), empty.clone()),
            (key("exact"), exact.clone()),
        ])
        .unwrap();
    assert_eq!(cache.len().unwrap(), 4);
    assert!(!cache.is_empty().unwrap());

    let got = cache
        .get_many(&[key("one"), key("three"), key(""), key("exact")])
        .unwrap();
    assert_close(got[0].as_ref().unwrap(), &one);
    assert_close(got[1].as_ref().unwrap(), &three);
    assert_eq!(got[1].as_ref().unwrap().row(2).len(), 384);
    assert_eq!(got[2].as_ref().unwrap(), &empty);
    // Values representable in f16 come back exactly.
    assert_eq!(got[3].as_ref().unwrap(), &exact);
}

#[test]
fn missing_keys_are_none_and_order_is_preserved() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = EmbeddingCache::open(&tmp.path().join("emb.sqlite")).unwrap();
    let items: Vec<_> = (0..5)
        .map(|i| (key(&format!("t{i}")), embedding(i, 1, 8)))
        .collect();
    cache.put_many(&items).unwrap();

    let keys = [
        key("t3"),
        key("absent"),
        key("t0"),
        key("t4"),
        key("t3"),
        key("also absent"),
        key("t1"),
    ];
    let got = cache.get_many(&keys).unwrap();
    assert_eq!(got.len(), keys.len());
    let expect = [Some(3), None, Some(0), Some(4), Some(3), None, Some(1)];
    for (g, e) in got.iter().zip(expect) {
        match (g, e) {
            (None, None) => {}
            (Some(g), Some(i)) => assert_close(g, &items[i].1),
            _ => panic!("got {g:?}, expected item {e:?}"),
        }
    }
    assert!(cache.get_many(&[]).unwrap().is_empty());
}

#[test]
fn put_replaces_existing_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = EmbeddingCache::open(&tmp.path().join("emb.sqlite")).unwrap();
    cache.put_many(&[(key("a"), embedding(1, 1, 8))]).unwrap();
    let newer = embedding(2, 2, 8);
    cache.put_many(&[(key("a"), newer.clone())]).unwrap();
    assert_eq!(cache.len().unwrap(), 1);
    assert_close(
        cache.get_many(&[key("a")]).unwrap()[0].as_ref().unwrap(),
        &newer,
    );
}

#[test]
fn entries_persist_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    // Parent directories are created.
    let path = tmp.path().join("nested").join("dir").join("emb.sqlite");
    let e = embedding(7, 2, 16);
    {
        let mut cache = EmbeddingCache::open(&path).unwrap();
        cache.put_many(&[(key("kept"), e.clone())]).unwrap();
    }
    let cache = EmbeddingCache::open(&path).unwrap();
    assert_eq!(cache.path(), path);
    assert_eq!(cache.len().unwrap(), 1);
    assert_close(
        cache.get_many(&[key("kept")]).unwrap()[0].as_ref().unwrap(),
        &e,
    );
}

#[test]
fn keys_separate_encoder_config_and_text() {
    let base = EmbeddingCache::key("enc", "cfg", "text");
    assert_eq!(base, EmbeddingCache::key("enc", "cfg", "text"));
    assert_ne!(base, EmbeddingCache::key("enc2", "cfg", "text"));
    assert_ne!(base, EmbeddingCache::key("enc", "cfg2", "text"));
    assert_ne!(base, EmbeddingCache::key("enc", "cfg", "text "));
    // Moving bytes between parts changes the key.
    assert_ne!(
        EmbeddingCache::key("ab", "c", "d"),
        EmbeddingCache::key("a", "bc", "d")
    );
    assert_ne!(
        EmbeddingCache::key("a", "bc", ""),
        EmbeddingCache::key("a", "b", "c")
    );
    assert_ne!(
        EmbeddingCache::key("", "", "abc"),
        EmbeddingCache::key("abc", "", "")
    );

    // Entries of one encoder are not served for another.
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = EmbeddingCache::open(&tmp.path().join("emb.sqlite")).unwrap();
    cache
        .put_many(&[(
            EmbeddingCache::key("enc-a", "cfg", "hello"),
            embedding(1, 1, 4),
        )])
        .unwrap();
    let got = cache
        .get_many(&[EmbeddingCache::key("enc-b", "cfg", "hello")])
        .unwrap();
    assert!(got[0].is_none());
}

#[test]
fn other_schema_versions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("emb.sqlite");
    EmbeddingCache::open(&path).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());
        conn.execute(
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    }
    let err = EmbeddingCache::open(&path).unwrap_err();
    match &err {
        CacheError::SchemaVersion {
            found, expected, ..
        } => {
            assert_eq!(found, "2");
            assert_eq!(*expected, SCHEMA_VERSION);
        }
        other => panic!("expected SchemaVersion, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("emb.sqlite") && msg.contains("delete"),
        "{msg}"
    );
}

#[test]
fn foreign_databases_and_garbage_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("other.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE users (name TEXT);")
        .unwrap();
    let err = EmbeddingCache::open(&foreign).unwrap_err();
    assert!(matches!(err, CacheError::SchemaVersion { .. }), "{err}");

    let garbage = tmp.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = EmbeddingCache::open(&garbage).unwrap_err();
    assert!(matches!(err, CacheError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains("garbage.sqlite"), "{err}");
}

#[test]
fn corrupt_rows_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("emb.sqlite");
    let mut cache = EmbeddingCache::open(&path).unwrap();
    cache
        .put_many(&[
            (key("a"), embedding(1, 2, 8)),
            (key("b"), embedding(2, 1, 8)),
        ])
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // Truncated vectors.
        conn.execute(
            "UPDATE embeddings SET vectors = substr(vectors, 1, 10) WHERE key = ?1",
            [&key("a")[..]],
        )
        .unwrap();
        // Spans not a whole number of (u32, u32).
        conn.execute(
            "UPDATE embeddings SET spans = x'010203' WHERE key = ?1",
            [&key("b")[..]],
        )
        .unwrap();
    }
    for k in ["a", "b"] {
        let err = cache.get_many(&[key(k)]).unwrap_err();
        assert!(matches!(err, CacheError::Corrupt { .. }), "{k}: {err}");
        assert!(err.to_string().contains("emb.sqlite"), "{err}");
    }
}

#[test]
fn inconsistent_embeddings_are_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = EmbeddingCache::open(&tmp.path().join("emb.sqlite")).unwrap();
    let bad = CachedEmbedding {
        dim: 4,
        spans: vec![(0, 1), (1, 2)],
        vectors: vec![0.0; 4],
    };
    let err = cache
        .put_many(&[(key("good"), embedding(1, 1, 4)), (key("bad"), bad)])
        .unwrap_err();
    assert!(matches!(err, CacheError::InvalidEmbedding { .. }), "{err}");
    // All or nothing: the good item of the batch was not stored either.
    assert!(cache.is_empty().unwrap());
}

#[test]
fn ten_thousand_items_in_one_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("emb.sqlite");
    let mut cache = EmbeddingCache::open(&path).unwrap();
    let items: Vec<_> = (0..10_000u32)
        .map(|i| {
            (
                key(&format!("text number {i}")),
                embedding(i, 1 + (i % 3) as usize, 384),
            )
        })
        .collect();
    cache.put_many(&items).unwrap();
    assert_eq!(cache.len().unwrap(), 10_000);

    let keys: Vec<_> = items.iter().rev().map(|(k, _)| *k).collect();
    let got = cache.get_many(&keys).unwrap();
    for (g, (_, want)) in got.iter().zip(items.iter().rev()) {
        assert_close(g.as_ref().unwrap(), want);
    }
}
