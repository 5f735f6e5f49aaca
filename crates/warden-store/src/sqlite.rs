//! [`LabelStore`] on one SQLite file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::{hash_password, new_token, token_digest, verify_password};
use crate::schema;
use crate::types::*;
use crate::{LabelStore, Result, StoreError};

pub(crate) fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The dedup key of a text: sha256 of its lowercased, whitespace-collapsed form.
pub fn text_hash(text: &str) -> String {
    let norm = text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    hex::encode(Sha256::digest(norm.as_bytes()))
}

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when missing) and migrates a store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let conn = open_connection(&path)?;
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for read-only reporting queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sql_err(&self.path)
    }

    fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
        let role: String = r.get(2)?;
        Ok(User { id: r.get(0)?, name: r.get(1)?, role: Role::parse(&role).unwrap_or(Role::Annotator) })
    }

    fn assignment_row(r: &Row<'_>) -> rusqlite::Result<Assignment> {
        let kind: String = r.get(2)?;
        let status: String = r.get(6)?;
        Ok(Assignment {
            id: r.get(0)?,
            batch: r.get(1)?,
            batch_kind: BatchKind::parse(&kind).unwrap_or(BatchKind::Label),
            sample_id: r.get(3)?,
            user_id: r.get(4)?,
            position: r.get(5)?,
            status: AssignmentStatus::parse(&status).unwrap_or(AssignmentStatus::Pending),
        })
    }

    fn get_assignment(&self, id: AssignmentId) -> Result<Assignment> {
        self.conn
            .query_row(
                &format!("{ASSIGNMENT_SELECT} WHERE a.id = ?1"),
                [id],
                Self::assignment_row,
            )
            .optional()
            .map_err(self.err())?
            .ok_or(StoreError::NotFound { what: "assignment", id: id.to_string() })
    }

    /// Reads an owned assignment; `Forbidden` for anyone else's (admins may read any when
    /// `admin_may` is set). Not-found and forbidden look the same to a non-admin caller, so
    /// ids cannot be probed.
    fn owned_assignment(&self, id: AssignmentId, caller: &User, admin_may: bool) -> Result<Assignment> {
        match self.get_assignment(id) {
            Ok(a) if a.user_id == caller.id || (admin_may && caller.role == Role::Admin) => Ok(a),
            Ok(_) => Err(StoreError::Forbidden),
            Err(StoreError::NotFound { .. }) if caller.role != Role::Admin => Err(StoreError::Forbidden),
            Err(e) => Err(e),
        }
    }

    /// All batches, or the one named, with their counts.
    fn batch_infos(&self, name: Option<&str>) -> Result<Vec<BatchInfo>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT b.id, b.name, b.kind, b.created_at,
                   (SELECT COUNT(*) FROM batch_items i WHERE i.batch_id = b.id),
                   (SELECT COUNT(*) FROM assignments a WHERE a.batch_id = b.id),
                   (SELECT COUNT(*) FROM assignments a WHERE a.batch_id = b.id AND a.status = 'done')
                 FROM batches b WHERE ?1 IS NULL OR b.name = ?1 ORDER BY b.id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([name], |r| {
                let kind: String = r.get(2)?;
                Ok(BatchInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: BatchKind::parse(&kind).unwrap_or(BatchKind::Label),
                    created_at: r.get(3)?,
                    samples: r.get::<_, i64>(4)? as u64,
                    assignments: r.get::<_, i64>(5)? as u64,
                    done: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    fn label_rows(&self, audit: bool) -> Result<Vec<LabelRow>> {
        let op = if audit { "=" } else { "<>" };
        let sql = format!(
            "SELECT l.sample_id, l.user_id, u.name, b.name, l.category, l.value, l.created_at, b.kind
             FROM labels l JOIN assignments a ON a.id = l.assignment_id
             JOIN batches b ON b.id = a.batch_id JOIN users u ON u.id = l.user_id
             WHERE b.kind {op} 'audit' ORDER BY l.sample_id, l.user_id, l.category"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                let v: String = r.get(5)?;
                Ok(LabelRow {
                    sample_id: r.get(0)?,
                    user_id: r.get(1)?,
                    user: r.get(2)?,
                    batch: r.get(3)?,
                    category: r.get(4)?,
                    value: LabelValue::parse(&v).unwrap_or(LabelValue::Unsure),
                    created_at: r.get(6)?,
                    batch_kind: BatchKind::parse(&r.get::<_, String>(7)?).unwrap_or(BatchKind::Label),
                })
            })
            .map_err(self.err())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())?;
        Ok(rows)
    }
}

/// Maps a SQLite error to the store's error, naming the file. Borrows only the path, so it
/// can be held while the connection is borrowed mutably for a transaction.
fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite { path: path.to_owned(), source }
}

const ASSIGNMENT_SELECT: &str = "SELECT a.id, b.name, b.kind, a.sample_id, a.user_id, a.position, a.status
    FROM assignments a JOIN batches b ON b.id = a.batch_id";

const SAMPLE_SELECT: &str =
    "SELECT id, created_at, source, external_id, text, metadata, pii_masked, provenance FROM samples";

fn sample_row(r: &Row<'_>) -> rusqlite::Result<StoredSample> {
    let meta: String = r.get(5)?;
    let prov: String = r.get(7)?;
    Ok(StoredSample {
        id: r.get(0)?,
        created_at: r.get(1)?,
        source: r.get(2)?,
        external_id: r.get(3)?,
        text: r.get(4)?,
        metadata: serde_json::from_str::<Map<String, Value>>(&meta).unwrap_or_default(),
        pii_masked: r.get::<_, i64>(6)? != 0,
        provenance: serde_json::from_str(&prov).unwrap_or(Value::Null),
    })
}

/// Opens a connection to a store file: WAL journal, foreign keys on, a busy timeout so the
/// server and a CLI can share the file, and migrations applied.
pub fn open_connection(path: &Path) -> Result<Connection> {
    let e = |source| StoreError::Sqlite { path: path.to_owned(), source };
    let mut conn = Connection::open(path).map_err(e)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(e)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
    // WAL + NORMAL: a committed transaction survives a process crash (not necessarily a
    // power cut, which would lose at most the last transactions, never corrupt the file).
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(e)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(e)?;
    schema::migrate(&mut conn).map_err(|source| StoreError::Migrate { path: path.to_owned(), source })?;
    Ok(conn)
}

fn scores_json(scores: &[(String, f32)]) -> String {
    let m: Map<String, Value> =
        scores.iter().map(|(k, v)| (k.clone(), serde_json::json!((*v as f64 * 1e6).round() / 1e6))).collect();
    Value::Object(m).to_string()
}

fn parse_scores(s: &str) -> Vec<(String, f32)> {
    serde_json::from_str::<Map<String, Value>>(s)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_f64().map(|x| (k, x as f32)))
        .collect()
}

impl LabelStore for SqliteStore {
    fn import_samples(
        &mut self,
        origin: &str,
        samples: &mut dyn Iterator<Item = NewSample>,
        chunk: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport> {
        let e = sql_err(&self.path);
        let chunk = chunk.max(1);
        self.conn
            .execute("INSERT INTO imports(started_at, origin) VALUES (?1, ?2)", params![now(), origin])
            .map_err(&e)?;
        let import_id = self.conn.last_insert_rowid();
        let mut report = ImportReport { import_id, ..Default::default() };
        let mut buf: Vec<NewSample> = Vec::with_capacity(chunk);
        loop {
            buf.clear();
            buf.extend((&mut *samples).take(chunk));
            if buf.is_empty() {
                break;
            }
            let tx = self.conn.transaction().map_err(&e)?;
            let (mut ins, mut dup) = (0u64, 0u64);
            {
                let mut by_ext = tx
                    .prepare_cached("SELECT 1 FROM samples WHERE source = ?1 AND external_id = ?2")
                    .map_err(&e)?;
                let mut by_hash = tx
                    .prepare_cached("SELECT 1 FROM samples WHERE source = ?1 AND text_hash = ?2 AND external_id IS NULL")
                    .map_err(&e)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO samples(created_at, request_id, api_key, policy, model, reason, text, pii,
                           scores, flagged, source, external_id, metadata, pii_masked, provenance, text_hash)
                         VALUES (?1, ?2, NULL, '', '', 'import', ?3, '{}', '{}', '[]', ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(&e)?;
                let t = now();
                for s in &buf {
                    if s.source.is_empty() {
                        return Err(StoreError::Invalid("a sample needs a source".into()));
                    }
                    let h = text_hash(&s.text);
                    let exists = match &s.external_id {
                        Some(x) => by_ext.exists(params![s.source, x]).map_err(&e)?,
                        None => by_hash.exists(params![s.source, h]).map_err(&e)?,
                    };
                    if exists {
                        dup += 1;
                        continue;
                    }
                    let mut prov = match &s.provenance {
                        Value::Object(m) => m.clone(),
                        Value::Null => Map::new(),
                        other => {
                            let mut m = Map::new();
                            m.insert("detail".into(), other.clone());
                            m
                        }
                    };
                    prov.insert("import".into(), import_id.into());
                    insert
                        .execute(params![
                            t,
                            format!("import:{import_id}"),
                            s.text,
                            s.source,
                            s.external_id,
                            Value::Object(s.metadata.clone()).to_string(),
                            s.pii_masked as i64,
                            Value::Object(prov).to_string(),
                            h,
                        ])
                        .map_err(&e)?;
                    ins += 1;
                }
            }
            tx.execute(
                "UPDATE imports SET rows_committed = rows_committed + ?1, duplicates = duplicates + ?2 WHERE id = ?3",
                params![ins as i64, dup as i64, import_id],
            )
            .map_err(&e)?;
            tx.commit().map_err(&e)?;
            report.inserted += ins;
            report.duplicates += dup;
            progress(ins + dup);
        }
        self.conn
            .execute("UPDATE imports SET finished_at = ?1 WHERE id = ?2", params![now(), import_id])
            .map_err(&e)?;
        Ok(report)
    }

    fn sample(&self, id: SampleId) -> Result<StoredSample> {
        self.conn
            .query_row(&format!("{SAMPLE_SELECT} WHERE id = ?1"), [id], sample_row)
            .optional()
            .map_err(self.err())?
            .ok_or(StoreError::NotFound { what: "sample", id: id.to_string() })
    }

    fn samples(&self, only_unbatched: bool, limit: Option<usize>) -> Result<Vec<StoredSample>> {
        let filter = if only_unbatched { " WHERE id NOT IN (SELECT sample_id FROM batch_items)" } else { "" };
        let lim = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let mut stmt = self.conn.prepare(&format!("{SAMPLE_SELECT}{filter} ORDER BY id{lim}")).map_err(self.err())?;
        let rows = stmt.query_map([], sample_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    fn sample_by_external_id(&self, source: &str, external_id: &str) -> Result<Option<SampleId>> {
        self.conn
            .query_row("SELECT id FROM samples WHERE source = ?1 AND external_id = ?2", [source, external_id], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    fn create_user(&mut self, name: &str, role: Role, password: &str) -> Result<UserId> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(StoreError::Invalid("a user name is 1–64 characters without spaces".into()));
        }
        if self.user_by_name(name)?.is_some() {
            return Err(StoreError::Conflict(format!("user {name}")));
        }
        let hash = hash_password(password)?;
        self.conn
            .execute(
                "INSERT INTO users(name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, role.as_str(), hash, now()],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    fn set_password(&mut self, name: &str, password: &str) -> Result<()> {
        let hash = hash_password(password)?;
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(e)?;
        let n = tx.execute("UPDATE users SET password_hash = ?1 WHERE name = ?2", params![hash, name]).map_err(e)?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "user", id: name.into() });
        }
        // A new password ends every session of the account.
        tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)", [name]).map_err(e)?;
        tx.commit().map_err(e)
    }

    fn users(&self) -> Result<Vec<User>> {
        let mut stmt = self.conn.prepare("SELECT id, name, role FROM users ORDER BY id").map_err(self.err())?;
        let rows = stmt.query_map([], Self::user_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        self.conn
            .query_row("SELECT id, name, role FROM users WHERE name = ?1", [name], Self::user_row)
            .optional()
            .map_err(self.err())
    }

    fn authenticate(&self, name: &str, password: &str) -> Result<Option<User>> {
        let row: Option<(i64, String, String, String, i64)> = self
            .conn
            .query_row("SELECT id, name, role, password_hash, disabled FROM users WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
            .map_err(self.err())?;
        match row {
            Some((id, name, role, hash, 0)) if verify_password(password, &hash) => {
                Ok(Some(User { id, name, role: Role::parse(&role).unwrap_or(Role::Annotator) }))
            }
            Some(_) => Ok(None),
            None => {
                // Spend the same time as a real check so response times do not reveal which
                // user names exist.
                let _ = verify_password(password, DUMMY_HASH);
                Ok(None)
            }
        }
    }

    fn create_session(&mut self, user: UserId, ttl_secs: f64) -> Result<String> {
        let token = new_token();
        let t = now();
        self.conn
            .execute(
                "INSERT INTO sessions(token_sha256, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_digest(&token), user, t, t + ttl_secs],
            )
            .map_err(self.err())?;
        self.conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [t]).map_err(self.err())?;
        Ok(token)
    }

    fn session_user(&self, token: &str) -> Result<Option<User>> {
        self.conn
            .query_row(
                "SELECT u.id, u.name, u.role FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_sha256 = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
                params![token_digest(token), now()],
                Self::user_row,
            )
            .optional()
            .map_err(self.err())
    }

    fn delete_session(&mut self, token: &str) -> Result<()> {
        self.conn.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [token_digest(token)]).map_err(self.err())?;
        Ok(())
    }

    fn create_batch(&mut self, name: &str, kind: BatchKind, items: &[BatchItem], config: &Value) -> Result<BatchId> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("a batch needs a name".into()));
        }
        if self.batch_by_name(name)?.is_some() {
            return Err(StoreError::Conflict(format!("batch {name}")));
        }
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute(
            "INSERT INTO batches(name, kind, created_at, config) VALUES (?1, ?2, ?3, ?4)",
            params![name, kind.as_str(), now(), config.to_string()],
        )
        .map_err(&e)?;
        let id = tx.last_insert_rowid();
        {
            let mut ins = tx
                .prepare(
                    "INSERT OR IGNORE INTO batch_items(batch_id, sample_id, position, pipeline, category, score, weight)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(&e)?;
            for (pos, it) in items.iter().enumerate() {
                ins.execute(params![id, it.sample_id, pos as i64, it.pipeline, it.category, it.score, it.weight]).map_err(
                    |source| match source {
                        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                            StoreError::NotFound { what: "sample", id: it.sample_id.to_string() }
                        }
                        source => e(source),
                    },
                )?;
            }
        }
        tx.commit().map_err(&e)?;
        Ok(id)
    }

    fn batches(&self) -> Result<Vec<BatchInfo>> {
        self.batch_infos(None)
    }

    fn batch_by_name(&self, name: &str) -> Result<Option<BatchInfo>> {
        Ok(self.batch_infos(Some(name))?.pop())
    }

    fn assign(&mut self, batch: BatchId, users: &[UserId], per_sample: usize) -> Result<usize> {
        if users.is_empty() || per_sample == 0 {
            return Err(StoreError::Invalid("assign needs at least one user and per_sample ≥ 1".into()));
        }
        if per_sample > users.len() {
            return Err(StoreError::Invalid(format!(
                "each sample should go to {per_sample} distinct users but only {} were given",
                users.len()
            )));
        }
        let kind: Option<String> = self
            .conn
            .query_row("SELECT kind FROM batches WHERE id = ?1", [batch], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        let kind = kind.ok_or(StoreError::NotFound { what: "batch", id: batch.to_string() })?;
        let mut roles = Vec::with_capacity(users.len());
        for &u in users {
            let role: Option<String> = self
                .conn
                .query_row("SELECT role FROM users WHERE id = ?1", [u], |r| r.get(0))
                .optional()
                .map_err(self.err())?;
            roles.push(role.ok_or(StoreError::NotFound { what: "user", id: u.to_string() })?);
        }
        if kind == "audit" && roles.iter().any(|r| r == "annotator") {
            return Err(StoreError::Invalid("audit batches go to auditors or admins only".into()));
        }
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        let items: Vec<(i64, i64)> = {
            let mut stmt =
                tx.prepare("SELECT sample_id, position FROM batch_items WHERE batch_id = ?1 ORDER BY position").map_err(&e)?;
            let rows = stmt.query_map([batch], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)?
        };
        let mut created = 0;
        {
            let mut ins = tx
                .prepare(
                    "INSERT OR IGNORE INTO assignments(batch_id, sample_id, user_id, position, status, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
                )
                .map_err(&e)?;
            let t = now();
            let mut next = 0usize;
            for (sample, pos) in items {
                for k in 0..per_sample {
                    let u = users[(next + k) % users.len()];
                    created += ins.execute(params![batch, sample, u, pos, t]).map_err(&e)?;
                }
                next += per_sample;
            }
        }
        tx.commit().map_err(&e)?;
        Ok(created)
    }

    fn queue(&self, user: UserId) -> Result<Vec<Assignment>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{ASSIGNMENT_SELECT} WHERE a.user_id = ?1
                 ORDER BY CASE a.status WHEN 'pending' THEN 0 WHEN 'skipped' THEN 1 ELSE 2 END, a.batch_id, a.position"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([user], Self::assignment_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    fn assignment(&self, id: AssignmentId, caller: &User) -> Result<AssignmentView> {
        let assignment = self.owned_assignment(id, caller, true)?;
        let sample = self.sample(assignment.sample_id)?;
        let mut stmt = self
            .conn
            .prepare("SELECT category, value FROM labels WHERE assignment_id = ?1 ORDER BY id")
            .map_err(self.err())?;
        let labels = stmt
            .query_map([id], |r| {
                let v: String = r.get(1)?;
                Ok((r.get::<_, String>(0)?, LabelValue::parse(&v).unwrap_or(LabelValue::Unsure)))
            })
            .map_err(self.err())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())?;
        Ok(AssignmentView { assignment, sample, labels })
    }

    fn submit_labels(&mut self, id: AssignmentId, caller: &User, labels: &[(String, LabelValue)]) -> Result<()> {
        if labels.is_empty() {
            return Err(StoreError::Invalid("no labels given".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for (c, _) in labels {
            if c.trim().is_empty() || !seen.insert(c.as_str()) {
                return Err(StoreError::Invalid(format!("category {c:?} is empty or repeated")));
            }
        }
        let a = self.owned_assignment(id, caller, false)?;
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        // The annotator's latest answer for this assignment replaces their earlier one, which
        // moves to `label_history`; other annotators' labels of the same sample live in their
        // own assignments.
        let t = now();
        tx.execute(
            "INSERT INTO label_history(assignment_id, sample_id, user_id, category, value, created_at, replaced_at)
             SELECT assignment_id, sample_id, user_id, category, value, created_at, ?2 FROM labels WHERE assignment_id = ?1 ORDER BY id",
            params![id, t],
        )
        .map_err(&e)?;
        tx.execute("DELETE FROM labels WHERE assignment_id = ?1", [id]).map_err(&e)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO labels(assignment_id, sample_id, user_id, category, value, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&e)?;
            for (c, v) in labels {
                ins.execute(params![id, a.sample_id, caller.id, c, v.as_str(), t]).map_err(&e)?;
            }
        }
        tx.execute("UPDATE assignments SET status = 'done', updated_at = ?1 WHERE id = ?2", params![t, id]).map_err(&e)?;
        tx.commit().map_err(&e)
    }

    fn skip(&mut self, id: AssignmentId, caller: &User) -> Result<()> {
        let a = self.owned_assignment(id, caller, false)?;
        if a.status == AssignmentStatus::Done {
            return Err(StoreError::Invalid("this assignment is already labelled".into()));
        }
        self.conn
            .execute("UPDATE assignments SET status = 'skipped', updated_at = ?1 WHERE id = ?2", params![now(), id])
            .map_err(self.err())?;
        Ok(())
    }

    fn progress(&self, user: UserId) -> Result<Progress> {
        let mut p = Progress::default();
        let mut stmt =
            self.conn.prepare("SELECT status, COUNT(*) FROM assignments WHERE user_id = ?1 GROUP BY status").map_err(self.err())?;
        let rows = stmt
            .query_map([user], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(self.err())?;
        for row in rows {
            let (s, n) = row.map_err(self.err())?;
            match s.as_str() {
                "done" => p.done = n,
                "skipped" => p.skipped = n,
                _ => p.pending = n,
            }
        }
        p.total = p.done + p.skipped + p.pending;
        Ok(p)
    }

    fn labels(&self) -> Result<Vec<LabelRow>> {
        self.label_rows(false)
    }

    fn audits(&self) -> Result<Vec<LabelRow>> {
        self.label_rows(true)
    }

    fn record_qc_event(&mut self, kind: &str, detail: &Value) -> Result<i64> {
        self.conn
            .execute("INSERT INTO qc_events(created_at, kind, detail) VALUES (?1, ?2, ?3)", params![now(), kind, detail.to_string()])
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    fn qc_events(&self, kind: Option<&str>) -> Result<Vec<(i64, f64, String, Value)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, created_at, kind, detail FROM qc_events WHERE ?1 IS NULL OR kind = ?1 ORDER BY id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([kind], |r| {
                let d: String = r.get(3)?;
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, serde_json::from_str(&d).unwrap_or(Value::Null)))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    fn register_model(&mut self, name: &str, sha256: &str, detail: &Value) -> Result<ModelId> {
        self.conn
            .execute(
                "INSERT INTO models(name, sha256, created_at, detail) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name, sha256) DO NOTHING",
                params![name, sha256, now(), detail.to_string()],
            )
            .map_err(self.err())?;
        self.conn
            .query_row("SELECT id FROM models WHERE name = ?1 AND sha256 = ?2", [name, sha256], |r| r.get(0))
            .map_err(self.err())
    }

    fn put_scores(&mut self, model: ModelId, scores: &[(SampleId, Vec<(String, f32)>)]) -> Result<()> {
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        {
            let mut ins = tx
                .prepare("INSERT OR REPLACE INTO model_scores(model_id, sample_id, scores) VALUES (?1, ?2, ?3)")
                .map_err(&e)?;
            for (s, sc) in scores {
                ins.execute(params![model, s, scores_json(sc)]).map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)
    }

    fn scores(&self, model: ModelId) -> Result<Vec<(SampleId, CategoryScores)>> {
        let mut stmt =
            self.conn.prepare("SELECT sample_id, scores FROM model_scores WHERE model_id = ?1 ORDER BY sample_id").map_err(self.err())?;
        let rows = stmt
            .query_map([model], |r| Ok((r.get::<_, i64>(0)?, parse_scores(&r.get::<_, String>(1)?))))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }
}

/// A valid argon2id hash of a random string, verified against when a user name is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Xo0cQ4xG5w3Oq0ZC7vA8zq8iN9m2nV2cQjvS8QFq1A";

#[cfg(test)]
mod tests {
    #[test]
    fn the_dummy_hash_parses_so_unknown_users_cost_a_real_verification() {
        assert!(argon2::password_hash::PasswordHash::new(super::DUMMY_HASH).is_ok());
        assert!(!crate::verify_password("anything", super::DUMMY_HASH));
    }
}
