use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result, Taxonomy};

/// One category's label on one example.
///
/// A dataset that does not annotate a category leaves it [`Label::Unknown`]: such a label
/// contributes nothing to training losses and the row is left out of that category's
/// evaluation. It is never read as negative.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Label {
    #[default]
    Unknown,
    Positive,
    Negative,
    /// A probability in `[0, 1]`, e.g. the fraction of annotators who said positive.
    Soft(f32),
}

impl Label {
    /// 1.0, 0.0, the soft value, or `None` when unknown.
    pub fn target(self) -> Option<f32> {
        match self {
            Label::Unknown => None,
            Label::Positive => Some(1.0),
            Label::Negative => Some(0.0),
            Label::Soft(v) => Some(v),
        }
    }

    /// `Positive` for 1, `Negative` for 0, `Soft` otherwise (clamped to `[0, 1]`);
    /// `Unknown` for NaN.
    pub fn from_value(v: f32) -> Self {
        if v.is_nan() {
            Label::Unknown
        } else if v >= 1.0 {
            Label::Positive
        } else if v <= 0.0 {
            Label::Negative
        } else {
            Label::Soft(v)
        }
    }

    pub fn is_known(self) -> bool {
        !matches!(self, Label::Unknown)
    }

    /// Hard label for evaluation: positive when the target is at least 0.5.
    pub fn hard(self) -> Option<bool> {
        self.target().map(|v| v >= 0.5)
    }
}

/// One labelled example from any dataset, in the taxonomy's category order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Stable id, unique within the unified set: `<source>:<row id>`.
    pub id: String,
    pub text: String,
    /// One label per taxonomy category.
    pub labels: Vec<Label>,
    /// Dataset name (a row of the data catalogue).
    pub source: String,
    /// Anything else worth keeping (license, original label, split, user...).
    pub meta: Map<String, Value>,
}

/// The JSON shape of a record: `{"id", "text", "labels": {code: value}, "source", "meta"}`.
/// Unknown labels are omitted; keys may be codes or names when reading.
#[derive(Serialize, Deserialize)]
struct RecordJson {
    #[serde(default)]
    id: String,
    text: String,
    #[serde(default)]
    labels: Map<String, Value>,
    #[serde(default)]
    source: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    meta: Map<String, Value>,
}

impl Record {
    pub fn new(id: impl Into<String>, text: impl Into<String>, taxonomy: &Taxonomy) -> Self {
        Record {
            id: id.into(),
            text: text.into(),
            labels: vec![Label::Unknown; taxonomy.len()],
            source: String::new(),
            meta: Map::new(),
        }
    }

    /// Serializes with category codes as label keys.
    pub fn to_json(&self, taxonomy: &Taxonomy) -> Value {
        let mut labels = Map::new();
        for (c, l) in taxonomy.categories().iter().zip(&self.labels) {
            if let Some(v) = l.target() {
                let num = if v == 1.0 || v == 0.0 {
                    Value::from(v as i64)
                } else {
                    Value::from((v as f64 * 1e4).round() / 1e4)
                };
                labels.insert(c.code.clone(), num);
            }
        }
        serde_json::to_value(RecordJson {
            id: self.id.clone(),
            text: self.text.clone(),
            labels,
            source: self.source.clone(),
            meta: self.meta.clone(),
        })
        .expect("record serializes")
    }

    /// Parses a record. Label keys may be codes or public names; values are numbers in
    /// `[0, 1]`, booleans, or `null` (unknown). Unknown keys are an error so that a typo
    /// never silently turns into "unknown".
    pub fn from_json(value: Value, taxonomy: &Taxonomy) -> Result<Self> {
        let r: RecordJson = serde_json::from_value(value)
            .map_err(|e| Error::Classifier(format!("invalid record: {e}")))?;
        let mut labels = vec![Label::Unknown; taxonomy.len()];
        for (k, v) in &r.labels {
            let i = taxonomy.require(k)?;
            labels[i] = match v {
                Value::Null => Label::Unknown,
                Value::Bool(b) => Label::from_value(*b as u8 as f32),
                Value::Number(n) => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    if !(0.0..=1.0).contains(&x) {
                        return Err(Error::Classifier(format!("label {k}={x} is outside [0, 1]")));
                    }
                    Label::from_value(x as f32)
                }
                other => {
                    return Err(Error::Classifier(format!("label {k} must be a number, got {other}")))
                }
            };
        }
        Ok(Record { id: r.id, text: r.text, labels, source: r.source, meta: r.meta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_unknowns_unknown() {
        let t = Taxonomy::builtin();
        let mut r = Record::new("x:1", "hello", &t);
        r.labels[0] = Label::Positive;
        r.labels[1] = Label::Soft(0.3333);
        r.labels[3] = Label::Negative;
        r.source = "x".into();
        let v = r.to_json(&t);
        assert_eq!(v["labels"].as_object().unwrap().len(), 3);
        let back = Record::from_json(v, &t).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn accepts_names_and_rejects_typos() {
        let t = Taxonomy::builtin();
        let v = serde_json::json!({"text": "a", "labels": {"violence/graphic": 1, "S": false}});
        let r = Record::from_json(v, &t).unwrap();
        assert_eq!(r.labels[t.index_of("V2").unwrap()], Label::Positive);
        assert_eq!(r.labels[0], Label::Negative);
        let bad = serde_json::json!({"text": "a", "labels": {"sexy": 1}});
        assert!(Record::from_json(bad, &t).is_err());
        let bad = serde_json::json!({"text": "a", "labels": {"S": 2}});
        assert!(Record::from_json(bad, &t).is_err());
    }
}
