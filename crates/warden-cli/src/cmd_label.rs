//! `warden label`: the labeling store from the command line — import samples, manage
//! accounts, create and assign batches, serve the annotation UI, export training data.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use warden_core::{Label, Record, Taxonomy};
use warden_store::{BatchItem, BatchKind, LabelRow, LabelStore, LabelValue, NewSample, Role, SqliteStore};

#[derive(Subcommand)]
pub enum LabelCommand {
    /// Import samples from JSONL (`{"id"?, "text", "source"?, "meta"?}` per line) into the
    /// store. Idempotent: rows already stored under the same source and id are skipped.
    Import(ImportArgs),
    /// Accounts: add users, list them, reset a password.
    #[command(subcommand)]
    User(UserCommand),
    /// Batches of samples to label or audit.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Give a batch's samples to annotators (or auditors, for audit batches).
    Assign(AssignArgs),
    /// Serve the annotation and audit web UI.
    Serve(ServeArgs),
    /// Write the labelled samples as training JSONL that `warden train --train-file` reads:
    /// soft labels (annotator fractions) or majority votes, with each row's provenance.
    Export(ExportArgs),
    /// Batches, progress per annotator, and label counts.
    Status(DbArg),
}

#[derive(Args)]
pub struct DbArg {
    /// The store (SQLite file; created and migrated when needed). It may be the file
    /// `warden serve --sample-store` fills.
    #[arg(long)]
    pub db: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// JSONL (optionally .gz) with a `text` per line.
    pub file: PathBuf,
    /// Source name for rows that carry none (default: the file name).
    #[arg(long)]
    pub source: Option<String>,
    /// Keep personal data as it is. By default e-mail addresses, phone numbers, card
    /// numbers, keys and the like are masked before the text reaches the store.
    #[arg(long)]
    pub no_mask_pii: bool,
    /// Rows per transaction.
    #[arg(long, default_value_t = 1000)]
    pub chunk: usize,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an account. The password is read from $WARDEN_PASSWORD, or else from the first
    /// line of stdin; it is stored only as an argon2id hash.
    Add {
        #[command(flatten)]
        db: DbArg,
        name: String,
        #[arg(long, value_enum, default_value = "annotator")]
        role: RoleArg,
    },
    /// Set a new password (same input rules as `add`); ends the user's sessions.
    Passwd {
        #[command(flatten)]
        db: DbArg,
        name: String,
    },
    List(DbArg),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Annotator,
    Auditor,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Annotator => Role::Annotator,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Subcommand)]
pub enum BatchCommand {
    /// Create a batch from samples not yet in any batch (oldest first). For batches chosen
    /// by a model, use `warden al select --store`.
    Create {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        name: String,
        /// How many unbatched samples to take.
        #[arg(long)]
        unbatched: usize,
        #[arg(long, value_enum, default_value = "label")]
        kind: KindArg,
    },
    List(DbArg),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    Label,
    Audit,
    Relabel,
}

impl From<KindArg> for BatchKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Label => BatchKind::Label,
            KindArg::Audit => BatchKind::Audit,
            KindArg::Relabel => BatchKind::Relabel,
        }
    }
}

#[derive(Args)]
pub struct AssignArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub batch: String,
    /// Comma-separated user names.
    #[arg(long, value_delimiter = ',', required = true)]
    pub users: Vec<String>,
    /// Distinct annotators per sample (2 or more lets you measure agreement).
    #[arg(long, default_value_t = 1)]
    pub per_sample: usize,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: String,
    /// A taxonomy TOML instead of the built-in one (its definitions are shown to annotators).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Mark the session cookie `Secure` (set this behind TLS).
    #[arg(long)]
    pub secure_cookies: bool,
    /// Session lifetime in hours.
    #[arg(long, default_value_t = 12.0)]
    pub session_hours: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabelMode {
    /// The fraction of decided annotators (positive or negative; unsure ones are left out)
    /// who said positive.
    Soft,
    /// 1 when more annotators said positive than negative, 0 when fewer; a tie is unknown.
    Majority,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "soft")]
    pub labels: LabelMode,
    /// Ignore auditors' labels (by default an audited category takes the auditors' label,
    /// the ground truth of quality control).
    #[arg(long)]
    pub no_audits: bool,
    /// Leave out rows with fewer annotators than this.
    #[arg(long, default_value_t = 1)]
    pub min_annotators: usize,
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
}

pub fn open(db: &Path) -> Result<SqliteStore> {
    SqliteStore::open(db).with_context(|| format!("opening the labeling store {}", db.display()))
}

pub fn run(c: LabelCommand) -> Result<()> {
    match c {
        LabelCommand::Import(a) => import(a),
        LabelCommand::User(u) => user(u),
        LabelCommand::Batch(b) => batch(b),
        LabelCommand::Assign(a) => assign(a),
        LabelCommand::Serve(a) => serve(a),
        LabelCommand::Export(a) => export(a),
        LabelCommand::Status(a) => status(&a.db),
    }
}

fn import(a: ImportArgs) -> Result<()> {
    let mut store = open(&a.db.db)?;
    let source = a
        .source
        .clone()
        .unwrap_or_else(|| a.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "import".into()));
    let reader = std::io::BufReader::new(warden_data::open_maybe_gz(&a.file).with_context(|| format!("opening {}", a.file.display()))?);
    let masker = warden_pii::PiiMasker::new();
    let mut bad = 0usize;
    let file = a.file.display().to_string();
    let mut masked_rows = 0usize;
    let mut rows = reader.lines().enumerate().filter_map(|(i, line)| {
        let no = i + 1;
        let parsed = line
            .map_err(|e| e.to_string())
            .and_then(|l: String| if l.trim().is_empty() { Err(String::new()) } else { Ok(l) })
            .and_then(|l| serde_json::from_str::<Value>(&l).map_err(|e| format!("invalid JSON: {e}")))
            .and_then(|v| match v {
                Value::Object(o) => Ok(o),
                _ => Err("not a JSON object".into()),
            })
            .and_then(|mut o| match o.remove("text") {
                Some(Value::String(t)) if !t.trim().is_empty() => Ok((o, t)),
                _ => Err("no non-empty \"text\"".into()),
            });
        match parsed {
            Ok((mut o, text)) => {
                let external_id = match o.remove("id") {
                    Some(Value::String(s)) => Some(s),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                let src = match o.remove("source") {
                    Some(Value::String(s)) if !s.is_empty() => s,
                    _ => source.clone(),
                };
                let mut metadata = match o.remove("meta") {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                // Labels in the input are not imported as labels (they have no annotator);
                // everything else rides along as metadata.
                o.remove("labels");
                metadata.extend(o);
                let text = if a.no_mask_pii {
                    text
                } else {
                    let m = masker.mask(&text);
                    if !m.is_clean() {
                        masked_rows += 1;
                    }
                    m.text
                };
                Some(NewSample {
                    source: src,
                    external_id,
                    text,
                    metadata,
                    pii_masked: !a.no_mask_pii,
                    provenance: json!({"file": file, "line": no}),
                })
            }
            Err(msg) if msg.is_empty() => None,
            Err(msg) => {
                bad += 1;
                if bad <= 20 {
                    eprintln!("warden label import: {file}: line {no}: {msg} (skipped)");
                }
                None
            }
        }
    });
    let pb = crate::progress::spinner("importing");
    let report = store
        .import_samples(&file, &mut rows, a.chunk, &mut |n| pb.inc(n))
        .with_context(|| format!("importing {file}"))?;
    pb.finish_and_clear();
    drop(rows);
    eprintln!(
        "warden label import: {} new samples, {} already stored, {bad} bad lines, {masked_rows} with PII masked (import #{})",
        report.inserted, report.duplicates, report.import_id
    );
    Ok(())
}

fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("WARDEN_PASSWORD") {
        return Ok(p);
    }
    eprint!("password: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        bail!("no password: set WARDEN_PASSWORD or pass it on stdin");
    }
    Ok(p)
}

fn user(u: UserCommand) -> Result<()> {
    match u {
        UserCommand::Add { db, name, role } => {
            let mut store = open(&db.db)?;
            let password = read_password()?;
            let role: Role = role.into();
            store.create_user(&name, role, &password).with_context(|| format!("adding user {name}"))?;
            eprintln!("warden label user: added {name} ({})", role.as_str());
        }
        UserCommand::Passwd { db, name } => {
            let mut store = open(&db.db)?;
            let password = read_password()?;
            store.set_password(&name, &password).with_context(|| format!("setting the password of {name}"))?;
            eprintln!("warden label user: new password for {name}; their sessions are closed");
        }
        UserCommand::List(db) => {
            let store = open(&db.db)?;
            for u in store.users()? {
                let p = store.progress(u.id)?;
                println!("{}\t{}\tdone {}\tskipped {}\tpending {}", u.name, u.role.as_str(), p.done, p.skipped, p.pending);
            }
        }
    }
    Ok(())
}

fn batch(b: BatchCommand) -> Result<()> {
    match b {
        BatchCommand::Create { db, name, unbatched, kind } => {
            let mut store = open(&db.db)?;
            let samples = store.samples(true, Some(unbatched))?;
            if samples.is_empty() {
                bail!("no unbatched samples in {}", db.db.display());
            }
            let items: Vec<BatchItem> = samples
                .iter()
                .map(|s| BatchItem { sample_id: s.id, pipeline: Some("oldest_unbatched".into()), ..Default::default() })
                .collect();
            let cfg = json!({"command": std::env::args().collect::<Vec<_>>(), "selection": "oldest unbatched"});
            store.create_batch(&name, kind.into(), &items, &cfg).with_context(|| format!("creating batch {name}"))?;
            eprintln!("warden label batch: {name} with {} samples", items.len());
        }
        BatchCommand::List(db) => print_batches(&open(&db.db)?)?,
    }
    Ok(())
}

fn print_batches(store: &SqliteStore) -> Result<()> {
    println!("batch\tkind\tsamples\tassignments\tdone");
    for b in store.batches()? {
        println!("{}\t{}\t{}\t{}\t{}", b.name, b.kind.as_str(), b.samples, b.assignments, b.done);
    }
    Ok(())
}

/// Registers a model version in the store (keyed by its name and the sha256 of name and
/// origin) and stores its scores of the given samples; returns the model's id.
pub(crate) fn store_model_scores(
    store: &mut SqliteStore,
    (name, origin): (&str, &str),
    taxonomy: &Taxonomy,
    ids: &[i64],
    scores: &[Vec<f32>],
) -> Result<i64> {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(format!("{name}\n{origin}")));
    let model_id = store.register_model(name, &sha, &json!({"origin": origin}))?;
    let codes: Vec<&str> = taxonomy.codes().collect();
    let rows: Vec<(i64, warden_store::CategoryScores)> = ids
        .iter()
        .zip(scores)
        .map(|(&id, s)| (id, codes.iter().map(|c| c.to_string()).zip(s.iter().copied()).collect()))
        .collect();
    store.put_scores(model_id, &rows)?;
    Ok(model_id)
}

/// The ids of the named users; an unknown name is an error that says which.
pub(crate) fn user_ids(store: &SqliteStore, names: &[String]) -> Result<Vec<i64>> {
    names
        .iter()
        .map(|n| Ok(store.user_by_name(n)?.with_context(|| format!("no user named {n}"))?.id))
        .collect()
}

fn assign(a: AssignArgs) -> Result<()> {
    let mut store = open(&a.db.db)?;
    let batch = store.batch_by_name(&a.batch)?.with_context(|| format!("no batch named {}", a.batch))?;
    let ids = user_ids(&store, &a.users)?;
    let n = store.assign(batch.id, &ids, a.per_sample).with_context(|| format!("assigning {}", a.batch))?;
    eprintln!("warden label assign: {n} new assignments in {} ({} per sample)", a.batch, a.per_sample);
    Ok(())
}

fn serve(a: ServeArgs) -> Result<()> {
    let taxonomy = crate::load_taxonomy(a.taxonomy.as_deref())?;
    let store = open(&a.db.db)?;
    if store.users()?.is_empty() {
        eprintln!("warden label serve: the store has no accounts yet; add one with `warden label user add`");
    }
    let state = warden_annotate::AnnotateState::new(store, taxonomy)
        .with_secure_cookies(a.secure_cookies)
        .with_session_ttl_secs(a.session_hours * 3600.0);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.addr).await.with_context(|| format!("binding {}", a.addr))?;
        eprintln!("warden label serve: annotation UI on http://{}/", listener.local_addr()?);
        warden_annotate::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the annotation UI")
    })
}

/// One category's votes on one sample.
#[derive(Default, Clone, Copy)]
pub(crate) struct Votes {
    pub pos: u32,
    pub neg: u32,
    pub unsure: u32,
}

impl Votes {
    /// More positive than negative votes: `Some(true)`; fewer: `Some(false)`; a tie: `None`.
    pub(crate) fn majority(self) -> Option<bool> {
        match self.pos.cmp(&self.neg) {
            std::cmp::Ordering::Greater => Some(true),
            std::cmp::Ordering::Less => Some(false),
            std::cmp::Ordering::Equal => None,
        }
    }

    pub(crate) fn add(&mut self, v: LabelValue) {
        match v {
            LabelValue::Positive => self.pos += 1,
            LabelValue::Negative => self.neg += 1,
            LabelValue::Unsure => self.unsure += 1,
        }
    }
    fn label(self, mode: LabelMode) -> Label {
        let decided = self.pos + self.neg;
        if decided == 0 {
            return Label::Unknown;
        }
        match mode {
            LabelMode::Soft => Label::from_value(self.pos as f32 / decided as f32),
            LabelMode::Majority if self.pos > self.neg => Label::Positive,
            LabelMode::Majority if self.neg > self.pos => Label::Negative,
            LabelMode::Majority => Label::Unknown,
        }
    }
}

/// Per sample and category: the votes that count. Labels from a relabel batch replace
/// earlier ones for that sample and category (the row was sent back because its labels
/// were found wrong); audits, unless ignored, replace both.
pub(crate) fn tally(labels: &[LabelRow], audits: &[LabelRow]) -> Tally {
    let mut out = Tally::new();
    let relabeled: std::collections::HashSet<(i64, &str)> = labels
        .iter()
        .filter(|l| l.batch_kind == BatchKind::Relabel)
        .map(|l| (l.sample_id, l.category.as_str()))
        .collect();
    for l in labels {
        let key = (l.sample_id, l.category.as_str());
        if relabeled.contains(&key) && l.batch_kind != BatchKind::Relabel {
            continue;
        }
        let e = out
            .entry(l.sample_id)
            .or_default()
            .entry(l.category.clone())
            .or_insert((Votes::default(), if relabeled.contains(&key) { "relabel" } else { "annotators" }));
        e.0.add(l.value);
    }
    let mut audited: BTreeMap<(i64, String), Votes> = BTreeMap::new();
    for l in audits {
        audited.entry((l.sample_id, l.category.clone())).or_default().add(l.value);
    }
    for ((sample, cat), v) in audited {
        if v.pos + v.neg == 0 {
            continue;
        }
        out.entry(sample).or_default().insert(cat, (v, "audit"));
    }
    out
}

fn export(a: ExportArgs) -> Result<()> {
    let taxonomy = crate::load_taxonomy(a.taxonomy.as_deref())?;
    let store = open(&a.db.db)?;
    let labels = store.labels()?;
    let audits = if a.no_audits { Vec::new() } else { store.audits()? };
    let tallied = tally(&labels, &audits);
    let annotators: BTreeMap<i64, std::collections::BTreeSet<i64>> =
        labels.iter().fold(BTreeMap::new(), |mut m, l| {
            m.entry(l.sample_id).or_default().insert(l.user_id);
            m
        });
    let (records, skipped, unknown_codes) = export_records(&store, &taxonomy, &tallied, &annotators, &a)?;
    for c in &unknown_codes {
        eprintln!("warden label export: labels for {c:?} are not in the taxonomy and were left out");
    }
    let digest = warden_data::write_jsonl(&records, &taxonomy, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "warden label export: {} rows ({} labels mode) to {} (sha256 {digest}); {skipped} rows with fewer than {} annotators left out",
        records.len(),
        if a.labels == LabelMode::Soft { "soft" } else { "majority" },
        a.out.display(),
        a.min_annotators,
    );
    Ok(())
}

/// Per sample, per category code: the votes that count and what decided them
/// (`annotators`, `relabel` or `audit`).
pub(crate) type Tally = BTreeMap<i64, BTreeMap<String, (Votes, &'static str)>>;

fn export_records(
    store: &SqliteStore,
    taxonomy: &Taxonomy,
    tallied: &Tally,
    annotators: &BTreeMap<i64, std::collections::BTreeSet<i64>>,
    a: &ExportArgs,
) -> Result<(Vec<Record>, usize, std::collections::BTreeSet<String>)> {
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut unknown = std::collections::BTreeSet::new();
    for (&sample_id, cats) in tallied {
        let n_annot = annotators.get(&sample_id).map_or(0, |s| s.len());
        let audited = cats.values().any(|c| c.1 == "audit");
        if n_annot < a.min_annotators && !audited {
            skipped += 1;
            continue;
        }
        let s = store.sample(sample_id)?;
        let id = format!("{}:{}", s.source, s.external_id.clone().unwrap_or_else(|| format!("sample-{}", s.id)));
        let mut r = Record::new(id, s.text.clone(), taxonomy);
        r.source = s.source.clone();
        let mut votes = Map::new();
        for (code, (v, basis)) in cats {
            let Some(i) = taxonomy.index_of(code) else {
                unknown.insert(code.clone());
                continue;
            };
            r.labels[i] = v.label(a.labels);
            votes.insert(
                taxonomy.categories()[i].code.clone(),
                json!({"pos": v.pos, "neg": v.neg, "unsure": v.unsure, "basis": basis}),
            );
        }
        taxonomy.enforce_labels(&mut r.labels);
        if r.labels.iter().all(|l| !l.is_known()) {
            skipped += 1;
            continue;
        }
        r.meta = s.metadata.clone();
        r.meta.insert(
            "label_provenance".into(),
            json!({
                "store_sample_id": s.id,
                "sample": s.provenance,
                "pii_masked": s.pii_masked,
                "annotators": n_annot,
                "votes": votes,
                "mode": if a.labels == LabelMode::Soft { "soft" } else { "majority" },
            }),
        );
        records.push(r);
    }
    Ok((records, skipped, unknown))
}

fn status(db: &Path) -> Result<()> {
    let store = open(db)?;
    print_batches(&store)?;
    println!();
    println!("user\trole\tdone\tskipped\tpending");
    for u in store.users()? {
        let p = store.progress(u.id)?;
        println!("{}\t{}\t{}\t{}\t{}", u.name, u.role.as_str(), p.done, p.skipped, p.pending);
    }
    let labels = store.labels()?;
    let audits = store.audits()?;
    let samples: std::collections::BTreeSet<i64> = labels.iter().map(|l| l.sample_id).collect();
    println!();
    println!("{} labels on {} samples; {} audit labels", labels.len(), samples.len(), audits.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sample: i64, user: i64, cat: &str, v: LabelValue, kind: BatchKind) -> LabelRow {
        LabelRow {
            sample_id: sample,
            user_id: user,
            user: format!("u{user}"),
            batch: "b".into(),
            batch_kind: kind,
            category: cat.into(),
            value: v,
            created_at: 0.0,
        }
    }

    #[test]
    fn soft_and_majority_votes() {
        use LabelValue::*;
        let v = |p, n, u| Votes { pos: p, neg: n, unsure: u };
        assert_eq!(v(2, 1, 5).label(LabelMode::Soft), Label::Soft(2.0 / 3.0));
        assert_eq!(v(2, 1, 0).label(LabelMode::Majority), Label::Positive);
        assert_eq!(v(1, 1, 0).label(LabelMode::Majority), Label::Unknown);
        assert_eq!(v(0, 0, 3).label(LabelMode::Soft), Label::Unknown, "only unsure is unknown, not negative");
        let mut x = Votes::default();
        x.add(Positive);
        x.add(Unsure);
        assert_eq!((x.pos, x.unsure), (1, 1));
    }

    #[test]
    fn relabels_replace_and_audits_override() {
        use LabelValue::*;
        let labels = vec![
            row(1, 1, "S", Positive, BatchKind::Label),
            row(1, 2, "S", Positive, BatchKind::Label),
            row(1, 3, "S", Negative, BatchKind::Relabel),
            row(1, 1, "H", Positive, BatchKind::Label),
            row(2, 1, "S", Negative, BatchKind::Label),
        ];
        let audits = vec![row(2, 9, "S", Positive, BatchKind::Audit)];
        let t = tally(&labels, &audits);
        let s1 = t[&1]["S"];
        assert_eq!((s1.0.pos, s1.0.neg, s1.1), (0, 1, "relabel"));
        assert_eq!(t[&1]["H"].0.pos, 1, "other categories keep the first labels");
        let s2 = t[&2]["S"];
        assert_eq!((s2.0.pos, s2.0.neg, s2.1), (1, 0, "audit"));
    }
}
