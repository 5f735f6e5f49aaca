//! Reading data files (csv, tsv, jsonl, plain lines; gzipped or not) into tables.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use evalexpr::Value;
use flate2::read::MultiGzDecoder;

use crate::expr::{number_value, Cell, Columns};
use crate::spec::{Format, TableSpec};
use crate::{DataError, Result};

/// Opens a file, decompressing it when its name ends in `.gz`.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let f = BufReader::with_capacity(1 << 16, f);
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(MultiGzDecoder::new(f)))
    } else {
        Ok(Box::new(f))
    }
}

/// A table: named columns and rows of cells (rows may be shorter than the column list;
/// missing cells are empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub columns: Columns,
    pub rows: Vec<Vec<Cell>>,
}

/// Expands a table's file patterns against the data root, in sorted order. Each pattern
/// must match at least one file.
pub(crate) fn resolve_files(root: &Path, spec: &TableSpec, origin: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for pat in &spec.files {
        let full = root.join(pat);
        let s = full.to_string_lossy().into_owned();
        let mut matched: Vec<PathBuf> = if pat.contains(['*', '?', '[']) {
            glob::glob(&s)
                .map_err(|e| DataError::Spec {
                    path: origin.to_owned(),
                    message: format!("bad file pattern {pat:?}: {e}"),
                })?
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect()
        } else if full.is_file() {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        if matched.is_empty() {
            return Err(DataError::MissingFile { dataset_spec: origin.to_owned(), pattern: s });
        }
        matched.sort();
        for m in matched {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

fn pseudo(columns: &mut Columns) -> (usize, usize, usize) {
    (columns.push("_file".into()), columns.push("_path".into()), columns.push("_row".into()))
}

fn set(row: &mut Vec<Cell>, i: usize, c: Cell) {
    if row.len() <= i {
        row.resize(i + 1, Cell::empty());
    }
    row[i] = c;
}

/// Reads every file of a table spec into one table.
pub(crate) fn read_table(root: &Path, spec: &TableSpec, origin: &Path) -> Result<Table> {
    let files = resolve_files(root, spec, origin)?;
    let mut table = Table::default();
    let (c_file, c_path, c_row) = pseudo(&mut table.columns);
    for path in &files {
        let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
        let fname = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let start = table.rows.len();
        match spec.format {
            Format::Csv | Format::Tsv => read_csv(path, spec, &mut table)?,
            Format::Jsonl => read_jsonl_rows(path, &mut table)?,
            Format::Lines => read_lines(path, &mut table)?,
            Format::HolisticBias => read_holistic_bias(path, &mut table)?,
        }
        let file_cell = Cell::from_value(Value::String(fname));
        let path_cell = Cell::from_value(Value::String(rel));
        for (k, row) in table.rows[start..].iter_mut().enumerate() {
            set(row, c_file, file_cell.clone());
            set(row, c_path, path_cell.clone());
            set(row, c_row, Cell::from_value(Value::Float(k as f64)));
        }
    }
    Ok(table)
}

fn read_csv(path: &Path, spec: &TableSpec, table: &mut Table) -> Result<()> {
    let delim = match (&spec.delimiter, spec.format) {
        (Some(d), _) => d.as_bytes()[0],
        (None, Format::Tsv) => b'\t',
        _ => b',',
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .quoting(spec.quoting)
        .has_headers(false)
        .flexible(true)
        .from_reader(open_maybe_gz(path)?);
    let mut col_idx: Vec<usize> = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut first = true;
    let mut line = 0usize;
    loop {
        let more = rdr.read_byte_record(&mut rec).map_err(|e| DataError::Parse {
            path: path.to_owned(),
            line: e.position().map_or(line + 1, |p| p.line() as usize),
            message: e.to_string(),
        })?;
        if !more {
            break;
        }
        line = rec.position().map_or(line + 1, |p| p.line() as usize);
        if first {
            first = false;
            if spec.has_header {
                let mut seen: Vec<String> = Vec::new();
                for (i, h) in rec.iter().enumerate() {
                    let mut name = String::from_utf8_lossy(h).into_owned();
                    if i == 0 {
                        name = name.trim_start_matches('\u{feff}').to_owned();
                    }
                    if let Some(r) = spec.columns.get(i) {
                        name = r.clone();
                    }
                    if name.is_empty() {
                        name = format!("_c{i}");
                    }
                    let base = name.clone();
                    let mut k = 2;
                    while seen.contains(&name) {
                        name = format!("{base}_{k}");
                        k += 1;
                    }
                    seen.push(name.clone());
                    col_idx.push(table.columns.push(name));
                }
                continue;
            }
        }
        let mut row = Vec::new();
        for (i, f) in rec.iter().enumerate() {
            while col_idx.len() <= i {
                let n = col_idx.len();
                let name = spec.columns.get(n).cloned().unwrap_or_else(|| format!("_c{n}"));
                col_idx.push(table.columns.push(name));
            }
            let s = String::from_utf8_lossy(f);
            set(&mut row, col_idx[i], Cell::parse(&s, spec.parse_numbers));
        }
        table.rows.push(row);
    }
    Ok(())
}

fn json_cell(v: &serde_json::Value) -> Cell {
    use serde_json::Value as J;
    match v {
        J::Null => Cell::empty(),
        J::Bool(b) => Cell::from_value(Value::Boolean(*b)),
        J::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            Cell { value: number_value(f), raw: Some(n.to_string().into()) }
        }
        // JSON strings stay strings: only bare JSON numbers are numbers.
        J::String(s) => Cell::from_value(Value::String(s.clone())),
        other => Cell::from_value(Value::String(other.to_string())),
    }
}

fn read_jsonl_rows(path: &Path, table: &mut Table) -> Result<()> {
    let reader = BufReader::new(open_maybe_gz(path)?);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| DataError::Io { path: path.to_owned(), source })?;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(t).map_err(|e| DataError::Parse {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        let serde_json::Value::Object(obj) = v else {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line: i + 1,
                message: "a JSON lines row must be an object".into(),
            });
        };
        let mut row = Vec::new();
        for (k, v) in &obj {
            let c = table.columns.push(k.clone());
            set(&mut row, c, json_cell(v));
        }
        table.rows.push(row);
    }
    Ok(())
}

/// A whole file's bytes, decompressed when its name ends in `.gz`.
fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_maybe_gz(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    Ok(bytes)
}

fn read_lines(path: &Path, table: &mut Table) -> Result<()> {
    let bytes = read_all(path)?;
    let s = String::from_utf8_lossy(&bytes);
    let c = table.columns.push("line".into());
    for l in s.lines() {
        let l = l.trim_start_matches('\u{feff}');
        if l.trim().is_empty() {
            continue;
        }
        let mut row = Vec::new();
        set(&mut row, c, Cell::from_value(Value::String(l.to_owned())));
        table.rows.push(row);
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    serde_json::from_slice(&read_all(path)?).map_err(|e| DataError::Parse {
        path: path.to_owned(),
        line: e.line(),
        message: e.to_string(),
    })
}

/// The indefinite article for a descriptor ("an autistic", "a one-percenter", "a US-born").
fn article(word: &str) -> &'static str {
    // Acronyms are read letter by letter: "an LGBTQ", "an FTM", "a BIPOC".
    let acronym = word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+');
    if acronym {
        return if word.starts_with(['A', 'E', 'F', 'H', 'I', 'L', 'M', 'N', 'O', 'R', 'S', 'X']) { "an" } else { "a" };
    }
    let w = word.to_lowercase();
    let vowel = w.starts_with(['a', 'e', 'i', 'o', 'u']);
    let exception = ["one", "uni", "use", "usu", "eu", "us-"].iter().any(|p| w.starts_with(p));
    if vowel && !exception {
        "an"
    } else {
        "a"
    }
}

/// One HolisticBias descriptor.
struct Descriptor {
    axis: String,
    bucket: String,
    text: String,
    preference: String,
}

fn holistic_descriptors(path: &Path, v: &serde_json::Value) -> Result<Vec<Descriptor>> {
    use serde_json::Value as J;
    let bad = |message: String| DataError::Parse { path: path.to_owned(), line: 0, message };
    let J::Object(axes) = v else {
        return Err(bad("descriptors.json must be an object of axes".into()));
    };
    let mut out = Vec::new();
    for (axis, buckets) in axes {
        // An axis is either {bucket: [descriptor ...]} or a bare list (bucket "all").
        let lists: Vec<(&str, &J)> = match buckets {
            J::Object(b) => b.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            list @ J::Array(_) => vec![("all", list)],
            _ => return Err(bad(format!("axis {axis:?}: expected an object of buckets or a list"))),
        };
        for (bucket, list) in lists {
            let J::Array(items) = list else {
                return Err(bad(format!("axis {axis:?}, bucket {bucket:?}: expected a list of descriptors")));
            };
            for item in items {
                let (text, preference) = match item {
                    J::String(s) => (s.clone(), "reviewed".to_owned()),
                    J::Object(o) => match o.get("descriptor") {
                        Some(J::String(s)) => (
                            s.clone(),
                            o.get("preference").and_then(J::as_str).unwrap_or("reviewed").to_owned(),
                        ),
                        _ => return Err(bad(format!("axis {axis:?}: a descriptor object needs a string `descriptor`"))),
                    },
                    _ => return Err(bad(format!("axis {axis:?}: a descriptor must be a string or an object"))),
                };
                out.push(Descriptor { axis: axis.clone(), bucket: bucket.to_owned(), text, preference });
            }
        }
    }
    Ok(out)
}

/// Generates HolisticBias sentences, in the files' order (the crate enables serde_json's
/// `preserve_order`): every template × every descriptor × each noun gender,
/// the noun rotating through that gender's list so that all nouns are used without
/// generating the full product (26 × ~600 × ~32 rows). A template holding
/// `{plural_noun_phrase}` gets "descriptor nouns", one holding `{noun_phrase}` gets
/// "a(n) descriptor noun".
fn read_holistic_bias(path: &Path, table: &mut Table) -> Result<()> {
    use serde_json::Value as J;
    let dir = path.parent().unwrap_or(Path::new("."));
    let descriptors = holistic_descriptors(path, &read_json(path)?)?;
    let nouns_path = dir.join("nouns.json");
    let templates_path = dir.join("sentence_templates.json");
    let bad = |p: &Path, message: String| DataError::Parse { path: p.to_owned(), line: 0, message };
    let J::Object(genders) = read_json(&nouns_path)? else {
        return Err(bad(&nouns_path, "nouns.json must be an object of gender → [[singular, plural] ...]".into()));
    };
    let mut nouns: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (gender, list) in &genders {
        let pairs = serde_json::from_value::<Vec<(String, String)>>(list.clone())
            .ok()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad(&nouns_path, format!("{gender:?}: expected a non-empty list of [singular, plural]")))?;
        nouns.push((gender.clone(), pairs));
    }
    let J::Object(templates) = read_json(&templates_path)? else {
        return Err(bad(&templates_path, "sentence_templates.json must be an object keyed by template".into()));
    };
    let cols: Vec<usize> = [
        "sentence", "template", "plural", "axis", "bucket", "descriptor", "preference", "noun", "noun_gender",
    ]
    .iter()
    .map(|c| table.columns.push((*c).into()))
    .collect();
    let s = |v: &str| Cell::from_value(Value::String(v.to_owned()));
    for (ti, template) in templates.keys().enumerate() {
        let plural = template.contains("{plural_noun_phrase}");
        if !plural && !template.contains("{noun_phrase}") {
            return Err(bad(&templates_path, format!("template {template:?} has no {{noun_phrase}} or {{plural_noun_phrase}}")));
        }
        for (di, d) in descriptors.iter().enumerate() {
            for (gender, list) in &nouns {
                let (singular, plural_noun) = &list[(ti * 7 + di) % list.len()];
                let mut sentence = if plural {
                    template.replace("{plural_noun_phrase}", &format!("{} {plural_noun}", d.text))
                } else {
                    template.replace("{noun_phrase}", &format!("{} {} {singular}", article(&d.text), d.text))
                };
                // A sentence that starts with the descriptor starts with a capital.
                if let Some(first) = sentence.chars().next().filter(|c| c.is_lowercase() && template.starts_with('{')) {
                    sentence.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
                }
                let noun = if plural { plural_noun } else { singular };
                let mut row = Vec::new();
                let values = [
                    s(&sentence),
                    s(template),
                    Cell::from_value(Value::Boolean(plural)),
                    s(&d.axis),
                    s(&d.bucket),
                    s(&d.text),
                    s(&d.preference),
                    s(noun),
                    s(gender),
                ];
                for (c, v) in cols.iter().zip(values) {
                    set(&mut row, *c, v);
                }
                table.rows.push(row);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::article;

    #[test]
    fn articles() {
        assert_eq!(article("autistic"), "an");
        assert_eq!(article("Asian"), "an");
        assert_eq!(article("one-percenter"), "a");
        assert_eq!(article("US-born"), "a");
        assert_eq!(article("Deaf"), "a");
        assert_eq!(article("European"), "a");
        assert_eq!(article("LGBTQ+"), "an");
        assert_eq!(article("BIPOC"), "a");
        assert_eq!(article("AAPI"), "an");
    }
}
