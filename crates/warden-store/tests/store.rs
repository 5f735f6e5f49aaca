use serde_json::json;
use warden_store::*;

fn sample(source: &str, id: Option<&str>, text: &str) -> NewSample {
    NewSample {
        source: source.into(),
        external_id: id.map(Into::into),
        text: text.into(),
        metadata: json!({"lang": "en"}).as_object().unwrap().clone(),
        pii_masked: false,
        provenance: json!({"file": "x.jsonl"}),
    }
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("labels.db")).unwrap();
    (dir, s)
}

#[test]
fn import_is_idempotent_and_keeps_provenance() {
    let (_d, mut s) = store();
    let rows = vec![sample("a", Some("1"), "one"), sample("a", Some("2"), "two"), sample("a", None, "Three  words")];
    let r = s.import_samples("f1", &mut rows.clone().into_iter(), 2, &mut |_| {}).unwrap();
    assert_eq!((r.inserted, r.duplicates), (3, 0));
    // Same rows again: nothing new (external ids, and the text hash for rows without one).
    let mut again = rows.clone();
    again[2].text = "three words".into();
    let r2 = s.import_samples("f1", &mut again.into_iter(), 2, &mut |_| {}).unwrap();
    assert_eq!((r2.inserted, r2.duplicates), (0, 3));
    let all = s.samples(false, None).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].provenance["file"], "x.jsonl");
    assert_eq!(all[0].provenance["import"], r.import_id);
    assert_eq!(all[0].metadata["lang"], "en");
    assert_eq!(s.sample_by_external_id("a", "2").unwrap(), Some(all[1].id));
}

#[test]
fn accounts_sessions_and_roles() {
    let (_d, mut s) = store();
    let id = s.create_user("ann", Role::Annotator, "password-1").unwrap();
    assert!(matches!(s.create_user("ann", Role::Admin, "password-2"), Err(StoreError::Conflict(_))));
    assert!(matches!(s.create_user("bo b", Role::Admin, "password-2"), Err(StoreError::Invalid(_))));
    assert!(s.authenticate("ann", "password-1").unwrap().is_some());
    assert!(s.authenticate("ann", "password-2").unwrap().is_none());
    assert!(s.authenticate("nobody", "password-1").unwrap().is_none());
    let tok = s.create_session(id, 3600.0).unwrap();
    assert_eq!(s.session_user(&tok).unwrap().unwrap().name, "ann");
    assert!(s.session_user("forged").unwrap().is_none());
    // The database never holds the password or the token.
    let stored: String = s.connection().query_row("SELECT password_hash FROM users", [], |r| r.get(0)).unwrap();
    assert!(!stored.contains("password-1"));
    let n: i64 = s
        .connection()
        .query_row("SELECT COUNT(*) FROM sessions WHERE token_sha256 = ?1", [&tok], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    s.set_password("ann", "password-3").unwrap();
    assert!(s.session_user(&tok).unwrap().is_none(), "a password change ends sessions");
    let expired = s.create_session(id, -1.0).unwrap();
    assert!(s.session_user(&expired).unwrap().is_none());
}

fn setup_batch(s: &mut SqliteStore, n: usize) -> (Vec<User>, BatchId) {
    let rows: Vec<_> = (0..n).map(|i| sample("pool", Some(&i.to_string()), &format!("text {i}"))).collect();
    s.import_samples("pool", &mut rows.into_iter(), 100, &mut |_| {}).unwrap();
    let ids: Vec<_> = s.samples(false, None).unwrap().iter().map(|x| x.id).collect();
    for (name, role) in [("ann", Role::Annotator), ("ben", Role::Annotator), ("aud", Role::Auditor), ("adm", Role::Admin)] {
        s.create_user(name, role, "password-x").unwrap();
    }
    let items: Vec<_> =
        ids.iter().map(|&id| BatchItem { sample_id: id, pipeline: Some("random".into()), ..Default::default() }).collect();
    let b = s.create_batch("b1", BatchKind::Label, &items, &json!({"cmd": "test"})).unwrap();
    (s.users().unwrap(), b)
}

#[test]
fn assignment_round_robin_and_isolation() {
    let (_d, mut s) = store();
    let (users, b) = setup_batch(&mut s, 5);
    let (ann, ben, aud, adm) = (&users[0], &users[1], &users[2], &users[3]);
    assert_eq!(s.assign(b, &[ann.id, ben.id], 2).unwrap(), 10, "every sample to both");
    assert_eq!(s.assign(b, &[ann.id, ben.id], 2).unwrap(), 0, "re-assigning adds nothing");
    let qa = s.queue(ann.id).unwrap();
    let qb = s.queue(ben.id).unwrap();
    assert_eq!((qa.len(), qb.len()), (5, 5));
    // ann reads her own assignment, not ben's; not-found looks the same as forbidden.
    assert_eq!(s.assignment(qa[0].id, ann).unwrap().sample.id, qa[0].sample_id);
    assert!(matches!(s.assignment(qb[0].id, ann), Err(StoreError::Forbidden)));
    assert!(matches!(s.assignment(999_999, ann), Err(StoreError::Forbidden)));
    assert!(matches!(s.submit_labels(qb[0].id, ann, &[("S".into(), LabelValue::Positive)]), Err(StoreError::Forbidden)));
    assert!(matches!(s.assignment(qb[0].id, aud), Err(StoreError::Forbidden)));
    assert!(s.assignment(qb[0].id, adm).is_ok(), "admins may read any assignment");
    // Audit batches refuse annotators.
    let audit = s
        .create_batch("audit-1", BatchKind::Audit, &[BatchItem { sample_id: qa[0].sample_id, ..Default::default() }], &json!({}))
        .unwrap();
    assert!(s.assign(audit, &[ann.id], 1).is_err());
    assert_eq!(s.assign(audit, &[aud.id], 1).unwrap(), 1);
}

#[test]
fn labels_are_kept_per_annotator_and_progress_counts() {
    let (_d, mut s) = store();
    let (users, b) = setup_batch(&mut s, 3);
    let (ann, ben, aud) = (users[0].clone(), users[1].clone(), users[2].clone());
    s.assign(b, &[ann.id, ben.id], 2).unwrap();
    let qa = s.queue(ann.id).unwrap();
    let qb = s.queue(ben.id).unwrap();
    s.submit_labels(qa[0].id, &ann, &[("S".into(), LabelValue::Positive), ("H".into(), LabelValue::Unsure)]).unwrap();
    s.submit_labels(qb[0].id, &ben, &[("S".into(), LabelValue::Negative), ("H".into(), LabelValue::Negative)]).unwrap();
    // ann changes her mind: her row is replaced, ben's stays.
    s.submit_labels(qa[0].id, &ann, &[("S".into(), LabelValue::Negative), ("H".into(), LabelValue::Unsure)]).unwrap();
    s.skip(qa[1].id, &ann).unwrap();
    assert!(s.skip(qa[0].id, &ann).is_err(), "a labelled assignment cannot be skipped");
    assert!(s.submit_labels(qa[2].id, &ann, &[]).is_err());
    assert!(s
        .submit_labels(qa[2].id, &ann, &[("S".into(), LabelValue::Positive), ("S".into(), LabelValue::Negative)])
        .is_err());
    let labels = s.labels().unwrap();
    assert_eq!(labels.len(), 4);
    let history: Vec<(String, String)> = s
        .connection()
        .prepare("SELECT category, value FROM label_history ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(history, vec![("S".into(), "pos".into()), ("H".into(), "unsure".into())], "ann's first answer is kept");
    let s_labels: Vec<_> = labels.iter().filter(|l| l.category == "S").map(|l| (l.user.as_str(), l.value)).collect();
    assert_eq!(s_labels, vec![("ann", LabelValue::Negative), ("ben", LabelValue::Negative)]);
    assert_eq!(s.progress(ann.id).unwrap(), Progress { total: 3, done: 1, skipped: 1, pending: 1 });
    let view = s.assignment(qa[0].id, &ann).unwrap();
    assert_eq!(view.labels.len(), 2);
    // Audit labels are audits, not labels.
    let audit =
        s.create_batch("audit", BatchKind::Audit, &[BatchItem { sample_id: qa[0].sample_id, ..Default::default() }], &json!({})).unwrap();
    s.assign(audit, &[aud.id], 1).unwrap();
    let qaud = s.queue(aud.id).unwrap();
    s.submit_labels(qaud[0].id, &aud, &[("S".into(), LabelValue::Positive)]).unwrap();
    assert_eq!(s.labels().unwrap().len(), 4);
    assert_eq!(s.audits().unwrap().len(), 1);
    let view_count: i64 = s.connection().query_row("SELECT COUNT(*) FROM audits", [], |r| r.get(0)).unwrap();
    assert_eq!(view_count, 1);
    assert_eq!(s.batches().unwrap()[0].done, 2);
}

#[test]
fn models_scores_and_qc_events() {
    let (_d, mut s) = store();
    setup_batch(&mut s, 2);
    let m = s.register_model("warden-fast", "abc", &json!({"path": "models/default"})).unwrap();
    assert_eq!(s.register_model("warden-fast", "abc", &json!({})).unwrap(), m, "registering twice is one model");
    let ids: Vec<_> = s.samples(false, None).unwrap().iter().map(|x| x.id).collect();
    s.put_scores(m, &[(ids[0], vec![("S".into(), 0.25)]), (ids[1], vec![("S".into(), 0.75)])]).unwrap();
    let sc = s.scores(m).unwrap();
    assert_eq!(sc.len(), 2);
    assert_eq!(sc[1].1, vec![("S".to_string(), 0.75)]);
    s.record_qc_event("mislabel_hunt", &json!({"flagged": 3})).unwrap();
    assert_eq!(s.qc_events(Some("mislabel_hunt")).unwrap().len(), 1);
    assert_eq!(s.qc_events(Some("audit")).unwrap().len(), 0);
    assert_eq!(s.qc_events(None).unwrap()[0].3["flagged"], 3);
}

#[test]
fn serve_v1_store_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.db");
    {
        // A store as `warden serve` wrote it before migrations existed.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('format_version', '1');
             CREATE TABLE samples(id INTEGER PRIMARY KEY, created_at REAL NOT NULL, request_id TEXT NOT NULL,
               api_key TEXT, policy TEXT NOT NULL, model TEXT NOT NULL, reason TEXT NOT NULL, text TEXT NOT NULL,
               pii TEXT NOT NULL, scores TEXT NOT NULL, flagged TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'unlabeled');
             INSERT INTO samples(created_at, request_id, policy, model, reason, text, pii, scores, flagged)
               VALUES (1.0, 'r1', 'default', 'm', 'flagged', 'a [EMAIL] text', '{}', '{}', '[]');",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let all = s.samples(false, None).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].source, "serve");
    assert!(all[0].pii_masked, "serve masks before storing");
    let v: String = s.connection().query_row("SELECT value FROM meta WHERE key='format_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, STORE_FORMAT_VERSION.to_string());
    drop(s);
    // A store from the future is refused, not damaged.
    rusqlite::Connection::open(&path).unwrap().execute("UPDATE meta SET value = '99' WHERE key = 'format_version'", []).unwrap();
    let err = SqliteStore::open(&path).err().unwrap().to_string();
    assert!(err.contains("99"), "{err}");
}
