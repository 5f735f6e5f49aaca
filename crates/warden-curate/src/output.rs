//! Output files: writers that keep the input's compression, and line readers for
//! verification.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use warden_corpus::Format;

use crate::CurateError;

/// Gzip level for written files: level 1 costs a fraction of level 6's time for files
/// about 10% larger, and curation throughput is the point.
pub const GZIP_LEVEL: u32 = 1;
/// Zstandard level for written files.
pub const ZSTD_LEVEL: i32 = 3;

/// How an output file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// Gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The file-name suffix (`""`, `".gz"`, `".zst"`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

/// The compression of a JSON-lines kept output for an input format: the input's own for
/// JSON lines; zstd for Parquet input whose kept documents cannot be written as Parquet
/// (see the crate docs).
pub fn kept_compression(format: Format) -> Compression {
    match format {
        Format::Jsonl => Compression::None,
        Format::JsonlGz => Compression::Gzip,
        Format::JsonlZst | Format::Parquet => Compression::Zstd,
    }
}

/// A line-oriented writer to a plain, gzip or zstd file.
pub enum LineWriter {
    /// Plain.
    Plain(BufWriter<File>),
    /// Gzip.
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    /// Zstandard.
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl LineWriter {
    /// Creates `path` (truncating it).
    pub fn create(path: &Path, c: Compression) -> Result<Self, CurateError> {
        let f = File::create(path).map_err(|e| CurateError::io(path, e))?;
        let w = BufWriter::with_capacity(1 << 20, f);
        Ok(match c {
            Compression::None => LineWriter::Plain(w),
            // The gzip header carries no file name and mtime 0, so output is byte-identical
            // across runs.
            Compression::Gzip => LineWriter::Gzip(flate2::write::GzEncoder::new(w, flate2::Compression::new(GZIP_LEVEL))),
            Compression::Zstd => LineWriter::Zstd(zstd::Encoder::new(w, ZSTD_LEVEL).map_err(|e| CurateError::io(path, e))?),
        })
    }

    fn inner(&mut self) -> &mut dyn Write {
        match self {
            LineWriter::Plain(w) => w,
            LineWriter::Gzip(w) => w,
            LineWriter::Zstd(w) => w,
        }
    }

    /// Writes `line` and a `\n`.
    pub fn line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let w = self.inner();
        w.write_all(line)?;
        w.write_all(b"\n")
    }

    /// Writes the pieces of one line and a `\n`.
    pub fn parts(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        let w = self.inner();
        for p in parts {
            w.write_all(p)?;
        }
        w.write_all(b"\n")
    }

    /// Finishes the stream and flushes it to disk.
    pub fn finish(self) -> std::io::Result<()> {
        let mut f = match self {
            LineWriter::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            LineWriter::Gzip(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
            LineWriter::Zstd(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
        };
        f.flush()?;
        f.sync_all()
    }
}

/// Reads the lines of a plain, gzip or zstd file (chosen by its name's suffix).
pub struct LineReader {
    inner: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
}

impl LineReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, CurateError> {
        let f = File::open(path).map_err(|e| CurateError::io(path, e))?;
        let name = path.to_string_lossy();
        let r: Box<dyn Read + Send> = if name.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
        } else if name.ends_with(".zst") {
            Box::new(zstd::Decoder::new(f).map_err(|e| CurateError::io(path, e))?)
        } else {
            Box::new(f)
        };
        Ok(LineReader { inner: Box::new(BufReader::with_capacity(1 << 20, r)), buf: Vec::new() })
    }

    /// The next line without its `\n`, or `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.buf.clear();
        let n = self.inner.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        Ok(Some(&self.buf))
    }
}

/// `line` (a JSON object) with the value of its top-level `field` replaced by the string
/// `new_text`, every other byte unchanged: a redacted record differs from its input only in
/// the text (re-serialising a parsed value would reorder keys and round big numbers).
/// `None` when the line is not an object or has no such field.
pub fn splice_text(line: &str, field: &str, new_text: &str) -> Option<String> {
    use std::collections::HashMap;
    let map: HashMap<String, &serde_json::value::RawValue> = serde_json::from_str(line).ok()?;
    let raw = map.get(field)?.get();
    let start = (raw.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let end = start + raw.len();
    if end > line.len() || &line[start..end] != raw {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    out.push_str(&line[..start]);
    out.push_str(&serde_json::to_string(new_text).ok()?);
    out.push_str(&line[end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::splice_text;

    #[test]
    fn splice_changes_only_the_field() {
        let line = r#"{"a":1,"text" : "old \"q\"","big":123456789012345678901234567890,"f":0.10000000000000000001}"#;
        let got = splice_text(line, "text", "new\n").unwrap();
        assert_eq!(got, r#"{"a":1,"text" : "new\n","big":123456789012345678901234567890,"f":0.10000000000000000001}"#);
        assert_eq!(splice_text(line, "missing", "x"), None);
        assert_eq!(splice_text("[1]", "text", "x"), None);
    }
}
