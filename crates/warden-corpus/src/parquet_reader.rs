//! Parquet reader through the `parquet` record API (row at a time, no Arrow).

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::SerializedFileReader;
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use serde_json::{Map, Number, Value};

use crate::record::{error, to_item};
use crate::{CorpusError, FieldMap, Item, Location, ReadErrorKind, ReaderOptions};

pub(crate) struct ParquetReader {
    path: PathBuf,
    stem: String,
    fields: FieldMap,
    rows: RowIter<'static>,
    row_no: u64,
    done: bool,
}

impl ParquetReader {
    pub(crate) fn open(
        path: &Path,
        stem: String,
        opts: &ReaderOptions,
    ) -> Result<Self, CorpusError> {
        let file = File::open(path).map_err(|source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = SerializedFileReader::new(file).map_err(|e| CorpusError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(ParquetReader {
            path: path.to_path_buf(),
            stem,
            fields: opts.fields.clone(),
            rows: reader.into_iter(),
            row_no: 0,
            done: false,
        })
    }
}

impl Iterator for ParquetReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        let next = self.rows.next();
        let Some(next) = next else {
            self.done = true;
            return None;
        };
        self.row_no += 1;
        let location = Location {
            file: self.path.clone(),
            line: self.row_no,
            byte_offset: None,
        };
        match next {
            Ok(row) => {
                let raw = row_to_json(&row);
                let excerpt = raw.to_string();
                Some(to_item(
                    raw,
                    &self.fields,
                    &self.stem,
                    location,
                    excerpt.as_bytes(),
                    None,
                ))
            }
            Err(e) => {
                // A corrupt page: the decoder state is unreliable, so stop this file.
                self.done = true;
                Some(error(location, ReadErrorKind::Io(e.to_string()), b""))
            }
        }
    }
}

fn row_to_json(row: &Row) -> Value {
    Value::Object(
        row.get_column_iter()
            .map(|(name, field)| (name.clone(), field_to_json(field)))
            .collect::<Map<String, Value>>(),
    )
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Parquet value → JSON. Integers and floats map to numbers (NaN/inf to null), strings
/// and UTF-8 byte arrays to strings, groups / lists / maps to objects / arrays / objects;
/// anything else (dates, timestamps, decimals, binary) to its display string.
fn field_to_json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(v) => Value::from(*v),
        Field::Short(v) => Value::from(*v),
        Field::Int(v) => Value::from(*v),
        Field::Long(v) => Value::from(*v),
        Field::UByte(v) => Value::from(*v),
        Field::UShort(v) => Value::from(*v),
        Field::UInt(v) => Value::from(*v),
        Field::ULong(v) => Value::from(*v),
        Field::Float(v) => float(f64::from(*v)),
        Field::Double(v) => float(*v),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::String(field.to_string()),
        },
        Field::Group(row) => row_to_json(row),
        Field::ListInternal(list) => {
            Value::Array(list.elements().iter().map(field_to_json).collect())
        }
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match field_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, field_to_json(v))
                })
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}
