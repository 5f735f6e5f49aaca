use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type SampleId = i64;
pub type UserId = i64;
pub type BatchId = i64;
pub type AssignmentId = i64;
pub type ModelId = i64;
/// A model's scores of one sample: `(category code, probability)`.
pub type CategoryScores = Vec<(String, f32)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Labels the samples assigned to them; sees nothing else.
    Annotator,
    /// Labels audit batches (the ground truth of quality control).
    Auditor,
    /// Manages accounts and batches; may read every assignment.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "annotator" => Some(Role::Annotator),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One annotator's answer for one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelValue {
    #[serde(rename = "pos")]
    Positive,
    #[serde(rename = "neg")]
    Negative,
    /// The annotator could not decide; kept, and read as missing by agreement statistics.
    #[serde(rename = "unsure")]
    Unsure,
}

impl LabelValue {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelValue::Positive => "pos",
            LabelValue::Negative => "neg",
            LabelValue::Unsure => "unsure",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pos" => Some(LabelValue::Positive),
            "neg" => Some(LabelValue::Negative),
            "unsure" => Some(LabelValue::Unsure),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchKind {
    /// Fresh samples for annotators.
    Label,
    /// Samples for auditors (quality control ground truth).
    Audit,
    /// Samples sent back after a failed mislabel-hunt audit.
    Relabel,
}

impl BatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::Label => "label",
            BatchKind::Audit => "audit",
            BatchKind::Relabel => "relabel",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "label" => Some(BatchKind::Label),
            "audit" => Some(BatchKind::Audit),
            "relabel" => Some(BatchKind::Relabel),
            _ => None,
        }
    }
}

/// A sample to import.
#[derive(Debug, Clone, Default)]
pub struct NewSample {
    /// Where it came from: a dataset name, `serve`, a crawl id.
    pub source: String,
    /// The id it has at its source; `(source, external_id)` is unique, which makes imports
    /// idempotent.
    pub external_id: Option<String>,
    pub text: String,
    pub metadata: Map<String, Value>,
    /// True when PII was masked before the text reached the store.
    pub pii_masked: bool,
    /// How it got here (file, line, command...), kept with the sample for export.
    pub provenance: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredSample {
    pub id: SampleId,
    pub created_at: f64,
    pub source: String,
    pub external_id: Option<String>,
    pub text: String,
    pub metadata: Map<String, Value>,
    pub pii_masked: bool,
    pub provenance: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub import_id: i64,
    pub inserted: u64,
    /// Already stored under the same `(source, external_id)`.
    pub duplicates: u64,
}

/// One sample of a batch, with why it was selected.
#[derive(Debug, Clone, Default)]
pub struct BatchItem {
    pub sample_id: SampleId,
    pub pipeline: Option<String>,
    pub category: Option<String>,
    pub score: Option<f64>,
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchInfo {
    pub id: BatchId,
    pub name: String,
    pub kind: BatchKind,
    pub created_at: f64,
    pub samples: u64,
    pub assignments: u64,
    pub done: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignmentStatus {
    Pending,
    Done,
    Skipped,
}

impl AssignmentStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "done" => Some(Self::Done),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub id: AssignmentId,
    pub batch: String,
    pub batch_kind: BatchKind,
    pub sample_id: SampleId,
    pub user_id: UserId,
    pub position: i64,
    pub status: AssignmentStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssignmentView {
    pub assignment: Assignment,
    pub sample: StoredSample,
    /// The labels this assignment already carries (when revisiting).
    pub labels: Vec<(String, LabelValue)>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Progress {
    pub total: u64,
    pub done: u64,
    pub skipped: u64,
    pub pending: u64,
}

/// One stored label: who said what about which sample, in which kind of batch.
#[derive(Debug, Clone, Serialize)]
pub struct LabelRow {
    pub sample_id: SampleId,
    pub user_id: UserId,
    pub user: String,
    pub batch: String,
    pub batch_kind: BatchKind,
    pub category: String,
    pub value: LabelValue,
    pub created_at: f64,
}
