//! JSON-lines reader (plain, gzip, zstd) with a hand-written, bounded line reader.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use serde_json::Value;

use crate::record::{error, to_item};
use crate::EXCERPT_BYTES;
use crate::{CorpusError, FieldMap, Format, Item, Location, ReadErrorKind, ReaderOptions};

/// Size of the read buffers (compressed and decompressed side).
const BUF_CAPACITY: usize = 256 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

type Input = Box<dyn BufRead + Send>;

/// How a physical line ended up.
enum Raw {
    /// A complete line of at most `max_line_bytes` bytes, in `JsonlReader::buf`.
    Line,
    /// A line longer than the maximum; its full length (the excerpt is in `buf`).
    TooLong(u64),
    /// A read / decompression error while reading this line (partial bytes in `buf`).
    Io(String),
}

pub(crate) struct JsonlReader {
    path: PathBuf,
    stem: String,
    fields: FieldMap,
    max: u64,
    input: Input,
    /// The current line, or only its first `EXCERPT_BYTES` when it is too long. Never
    /// holds more than `max` bytes.
    buf: Vec<u8>,
    /// Offset of the next unread byte of the decompressed stream.
    next_offset: u64,
    /// Number of the last line started.
    line_no: u64,
    done: bool,
}

impl JsonlReader {
    pub(crate) fn open(
        path: &Path,
        format: Format,
        stem: String,
        opts: &ReaderOptions,
    ) -> Result<Self, CorpusError> {
        let file = File::open(path).map_err(|source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let decompress_err = |source| CorpusError::Decompress {
            path: path.to_path_buf(),
            source,
        };
        let input: Input = match format {
            Format::JsonlGz => Box::new(BufReader::with_capacity(
                BUF_CAPACITY,
                MultiGzDecoder::new(BufReader::with_capacity(BUF_CAPACITY, file)),
            )),
            Format::JsonlZst => Box::new(BufReader::with_capacity(
                BUF_CAPACITY,
                zstd::stream::read::Decoder::new(file).map_err(decompress_err)?,
            )),
            _ => Box::new(BufReader::with_capacity(BUF_CAPACITY, file)),
        };
        // The first read parses the gzip / zstd header, so a file that is not compressed
        // as its name says fails here, as a whole-file error.
        let (input, start) = skip_bom(input).map_err(|source| {
            if format == Format::Jsonl {
                CorpusError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            } else {
                decompress_err(source)
            }
        })?;
        Ok(JsonlReader {
            path: path.to_path_buf(),
            stem,
            fields: opts.fields.clone(),
            max: opts.max_line_bytes,
            input,
            buf: Vec::new(),
            next_offset: start,
            line_no: 0,
            done: false,
        })
    }

    /// Reads the next physical line into `self.buf` without ever holding more than
    /// `self.max` bytes of it: once a line exceeds the maximum, the rest of it is consumed
    /// chunk by chunk straight out of the `BufRead` buffer and only counted.
    /// Returns `(line number, offset of the line start, outcome)`, `None` at end of input.
    fn read_line(&mut self) -> Option<(u64, u64, Raw)> {
        if self.done {
            return None;
        }
        self.buf.clear();
        let start = self.next_offset;
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let avail = match self.input.fill_buf() {
                Ok(avail) => avail,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Decompression state is unrecoverable: report once and stop.
                    self.done = true;
                    self.line_no += 1;
                    return Some((self.line_no, start, Raw::Io(e.to_string())));
                }
            };
            if avail.is_empty() {
                self.done = true;
                if len == 0 {
                    return None;
                }
                break; // last line without a terminator
            }
            let (chunk_len, newline) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            let chunk = &avail[..chunk_len];
            if !too_long && len + chunk_len as u64 > self.max {
                too_long = true;
                // Keep only the excerpt; drop whatever was buffered beyond it.
                self.buf.truncate(EXCERPT_BYTES);
            }
            if too_long {
                let room = EXCERPT_BYTES.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&chunk[..room.min(chunk_len)]);
            } else {
                self.buf.extend_from_slice(chunk);
            }
            len += chunk_len as u64;
            let consumed = chunk_len + usize::from(newline);
            self.input.consume(consumed);
            self.next_offset += consumed as u64;
            if newline {
                break;
            }
        }
        self.line_no += 1;
        let raw = if too_long {
            Raw::TooLong(len)
        } else {
            Raw::Line
        };
        Some((self.line_no, start, raw))
    }
}

/// Skips a UTF-8 byte-order mark at the start of the stream. Returns the input (with any
/// non-BOM prefix put back) and the offset at which line 1 starts.
fn skip_bom(mut input: Input) -> io::Result<(Input, u64)> {
    let avail = input.fill_buf()?;
    if avail.len() >= BOM.len() || avail.is_empty() {
        if avail.starts_with(BOM) {
            input.consume(BOM.len());
            return Ok((input, BOM.len() as u64));
        }
        return Ok((input, 0));
    }
    // A decoder returned fewer than 3 bytes: gather them and put them back if no BOM.
    let mut prefix = Vec::with_capacity(BOM.len());
    while prefix.len() < BOM.len() {
        let avail = input.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        let take = avail.len().min(BOM.len() - prefix.len());
        prefix.extend_from_slice(&avail[..take]);
        input.consume(take);
    }
    if prefix == BOM {
        Ok((input, BOM.len() as u64))
    } else {
        Ok((Box::new(Cursor::new(prefix).chain(input)), 0))
    }
}

impl Iterator for JsonlReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let (line, offset, raw) = self.read_line()?;
            let location = Location {
                file: self.path.clone(),
                line,
                byte_offset: Some(offset),
            };
            let bytes = match raw {
                Raw::Io(msg) => return Some(error(location, ReadErrorKind::Io(msg), &self.buf)),
                Raw::TooLong(len) => {
                    let kind = ReadErrorKind::LineTooLong { len, max: self.max };
                    return Some(error(location, kind, &self.buf));
                }
                Raw::Line => self.buf.strip_suffix(b"\r").unwrap_or(&self.buf),
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue; // empty line: skipped, but counted in line numbers
            }
            let Ok(text) = std::str::from_utf8(bytes) else {
                return Some(error(location, ReadErrorKind::InvalidUtf8, bytes));
            };
            return Some(match serde_json::from_str::<Value>(text) {
                Ok(value) => to_item(value, &self.fields, &self.stem, location, bytes, Some(text)),
                Err(e) => error(location, ReadErrorKind::InvalidJson(e.to_string()), bytes),
            });
        }
    }
}
