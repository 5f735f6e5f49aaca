//! Kept Parquet documents written back as Parquet.
//!
//! The main pass over a Parquet input reads rows through the record API and renders them
//! as JSON (see `warden_corpus`); it does not keep them. It records, per kept or redacted
//! row, only the row number and, where the text changes (redaction, PII masking), the new
//! text: [`KeptRows`]. When the pass is done, [`write_kept`] reads the input a second time
//! through the Arrow reader, one record batch at a time, keeps the recorded rows
//! (`filter_record_batch`), replaces the text column's value where a new text was
//! recorded, and writes the batches with the Arrow writer. Memory is one record batch plus
//! an Arrow row group being encoded (flushed at [`ROW_GROUP_BYTES`]) plus the bookkeeping,
//! never the file.
//!
//! The output has the input's Arrow schema and key-value metadata. The input's own
//! `ARROW:schema` entry (when it has one) is copied verbatim instead of being re-encoded:
//! the encoder writes schema metadata in hash-map order, which would make two runs over
//! the same input differ in bytes. Writer properties are fixed (ZSTD level 3, a constant
//! `created_by`), so an uninterrupted and a resumed run write identical files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, GenericStringArray, OffsetSizeTrait, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Rows per record batch of the second pass.
pub const BATCH_ROWS: usize = 1024;
/// An output row group is closed once its encoded size reaches this many bytes (the
/// writer buffers a whole row group in memory).
pub const ROW_GROUP_BYTES: usize = 64 << 20;
/// The `created_by` written into kept Parquet files (constant, for byte identity).
pub const CREATED_BY: &str = "warden-curate (parquet-rs 57)";
/// Zstandard level of kept Parquet files.
pub const ZSTD_LEVEL: i32 = 3;

/// The kept and redacted rows of a Parquet input, in input order.
#[derive(Debug, Default)]
pub struct KeptRows {
    /// 1-based row numbers (`Location::line`), ascending.
    rows: Vec<u64>,
    /// `(row, new text)` for kept rows whose text changes, ascending by row.
    texts: Vec<(u64, String)>,
}

impl KeptRows {
    /// Records kept row `row` (1-based; rows arrive in ascending order), with its new text
    /// when it differs from the input's.
    pub fn push(&mut self, row: u64, new_text: Option<&str>) {
        debug_assert!(self.rows.last().is_none_or(|&r| r < row));
        self.rows.push(row);
        if let Some(t) = new_text {
            self.texts.push((row, t.to_owned()));
        }
    }

    /// Number of rows recorded.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is kept.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The index of `field` among the top-level columns of the Parquet file at `path` as Arrow
/// reads it, when it is a Utf8 or LargeUtf8 column; otherwise why the kept documents cannot
/// be written as Parquet (the caller writes JSON lines instead).
pub fn text_column(path: &Path, field: &str) -> Result<usize, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let schema = builder.schema();
    let (i, f) = schema
        .column_with_name(field)
        .ok_or_else(|| format!("the text field {field:?} is not a top-level column"))?;
    match f.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 => Ok(i),
        other => Err(format!("the text column {field:?} is {other}, not Utf8 or LargeUtf8")),
    }
}

/// Writes the rows of `kept` of the Parquet file `input` to `output` (see the module docs).
/// `text_col` is [`text_column`]'s answer.
pub fn write_kept(input: &Path, output: &Path, text_col: usize, kept: &KeptRows) -> Result<(), String> {
    let file = File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| format!("{}: {e}", input.display()))?;
    let schema = builder.schema().clone();
    let kv = builder.metadata().file_metadata().key_value_metadata().cloned();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| e.to_string())?))
        .set_created_by(CREATED_BY.to_owned())
        .set_key_value_metadata(kv)
        .build();
    let options = ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    let out = File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
    let werr = |e: parquet::errors::ParquetError| format!("{}: {e}", output.display());
    let mut writer = ArrowWriter::try_new_with_options(BufWriter::with_capacity(1 << 20, out), schema.clone(), options).map_err(werr)?;

    // Read no further than the last kept row: a file whose record reader stopped at a
    // corrupt page is then usually readable up to there.
    let last = kept.rows.last().copied().unwrap_or(0);
    if last > 0 {
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .with_limit(last as usize)
            .build()
            .map_err(|e| format!("{}: {e}", input.display()))?;
        let mut start = 0u64; // rows before this batch
        let (mut ki, mut ti) = (0usize, 0usize);
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", input.display()))?;
            let n = batch.num_rows() as u64;
            let first_kept = ki;
            let mut mask = vec![false; n as usize];
            while ki < kept.rows.len() && kept.rows[ki] <= start + n {
                mask[(kept.rows[ki] - start - 1) as usize] = true;
                ki += 1;
            }
            start += n;
            if ki == first_kept {
                continue;
            }
            let mut filtered = arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(mask)).map_err(|e| e.to_string())?;
            let rows = &kept.rows[first_kept..ki];
            if ti < kept.texts.len() && kept.texts[ti].0 <= start {
                let col = filtered.column(text_col);
                let new: ArrayRef = match col.data_type() {
                    DataType::Utf8 => replace_texts(col.as_string::<i32>(), rows, &kept.texts, &mut ti),
                    DataType::LargeUtf8 => replace_texts(col.as_string::<i64>(), rows, &kept.texts, &mut ti),
                    other => return Err(format!("the text column changed type to {other}")),
                };
                let mut columns = filtered.columns().to_vec();
                columns[text_col] = new;
                filtered = RecordBatch::try_new(filtered.schema(), columns).map_err(|e| e.to_string())?;
            }
            writer.write(&filtered).map_err(werr)?;
            if writer.in_progress_size() >= ROW_GROUP_BYTES {
                writer.flush().map_err(werr)?;
            }
        }
        if ki != kept.rows.len() {
            return Err(format!("{}: the Arrow reader ended at row {start}, before kept row {}", input.display(), kept.rows[ki]));
        }
    }
    let mut f = writer
        .into_inner()
        .map_err(werr)?
        .into_inner()
        .map_err(|e| format!("{}: {}", output.display(), e.error()))?;
    f.flush().map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| format!("{}: {e}", output.display()))
}

/// `col` (the filtered text column, one value per row of `rows`) with the texts of
/// `texts[*ti..]` that fall on `rows` replaced; advances `ti` past them.
fn replace_texts<O: OffsetSizeTrait>(col: &GenericStringArray<O>, rows: &[u64], texts: &[(u64, String)], ti: &mut usize) -> ArrayRef {
    let mut out: Vec<Option<&str>> = Vec::with_capacity(col.len());
    for (i, &row) in rows.iter().enumerate() {
        if *ti < texts.len() && texts[*ti].0 == row {
            out.push(Some(texts[*ti].1.as_str()));
            *ti += 1;
        } else {
            out.push(col.is_valid(i).then(|| col.value(i)));
        }
    }
    Arc::new(GenericStringArray::<O>::from(out))
}
