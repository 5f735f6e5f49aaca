//! Turning one dataset spec into records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use evalexpr::{Node, Value};
use serde_json::{Map, Value as Json};
use warden_core::{Label, Record, Taxonomy};

use crate::decontam::decontam_normalize;
use crate::expr::{self, number_value, truthy, value_text, Cell, Columns};
use crate::read::{read_table, Table};
use crate::spec::{AggOp, DatasetSpec, JoinHow, KeyMatch, TableSpec};
use crate::template::{Part, Template};
use crate::{DataError, Result};

/// The records of one dataset, before decontamination and dedup.
#[derive(Debug, Clone)]
pub struct LoadedDataset {
    pub name: String,
    /// In file and row order.
    pub records: Vec<Record>,
    /// Rows whose built text was empty or whitespace-only.
    pub dropped_empty: usize,
    /// Rows with no known label, dropped because the spec says `drop_unlabelled`.
    pub dropped_unlabelled: usize,
    /// Remarks worth a datasheet line (join match counts ...).
    pub notes: Vec<String>,
}

struct Ctx<'a> {
    spec: &'a DatasetSpec,
    root: &'a Path,
    origin: PathBuf,
    notes: Vec<String>,
}

impl Ctx<'_> {
    fn spec_err(&self, message: String) -> DataError {
        DataError::Spec { path: self.origin.clone(), message }
    }

    fn row_err(&self, cols: &Columns, row: &[Cell], message: String) -> DataError {
        let get = |n: &str| cols.get(n).and_then(|i| row.get(i)).map(|c| c.text().into_owned());
        DataError::Row {
            dataset: self.spec.name.clone(),
            file: get("_path").unwrap_or_default(),
            row: get("_row").unwrap_or_default(),
            message,
        }
    }

    fn compile(&self, what: &str, e: &str) -> Result<Node> {
        expr::compile(e).map_err(|m| self.spec_err(format!("{what}: {m}")))
    }

    fn build_table(&mut self, name: &str, t: &TableSpec, depth: usize) -> Result<Table> {
        if depth > 16 {
            return Err(self.spec_err("joins nest too deep".into()));
        }
        let mut table = read_table(self.root, t, &self.origin)?;
        if let Some(ex) = &t.explode {
            table = self.explode(table, ex)?;
        }
        for j in &t.join {
            let right_spec = &self.spec.tables[&j.table];
            let right = self.build_table(&j.table, right_spec, depth + 1)?;
            table = self.join(name, table, right, j)?;
        }
        if let Some(f) = &t.filter {
            let node = self.compile("filter", f)?;
            let before = table.rows.len();
            let mut keep = Vec::with_capacity(before);
            for row in std::mem::take(&mut table.rows) {
                let v = expr::eval(&node, &table.columns, &row)
                    .map_err(|m| self.row_err(&table.columns, &row, format!("filter: {m}")))?;
                let t = truthy(&v)
                    .map_err(|m| self.row_err(&table.columns, &row, format!("filter: {m}")))?;
                if t == Some(true) {
                    keep.push(row);
                }
            }
            table.rows = keep;
            self.notes.push(format!(
                "table {name}: filter kept {} of {before} rows",
                table.rows.len()
            ));
        }
        if let Some(g) = &t.group {
            table = self.group(name, table, g)?;
        }
        Ok(table)
    }

    fn explode(&self, mut table: Table, ex: &crate::spec::ExplodeSpec) -> Result<Table> {
        let col = table.columns.get(&ex.field).ok_or_else(|| {
            self.spec_err(format!("explode: no field {:?} in {:?}", ex.field, table.columns.names))
        })?;
        let part = table.columns.push("_part".into());
        let mut out = Vec::with_capacity(table.rows.len());
        for row in std::mem::take(&mut table.rows) {
            let text = row.get(col).map(|c| c.text().into_owned()).unwrap_or_default();
            let mut k = 0u32;
            for piece in text.split(ex.separator.as_str()) {
                let mut p = if ex.trim { piece.trim() } else { piece };
                if let Some(pre) = &ex.strip_prefix {
                    if let Some(rest) = p.strip_prefix(pre.as_str()) {
                        p = if ex.trim { rest.trim() } else { rest };
                    }
                }
                if p.trim().is_empty() {
                    continue;
                }
                let mut r = row.clone();
                if r.len() <= part {
                    r.resize(part + 1, Cell::empty());
                }
                r[col] = Cell::from_value(Value::String(p.to_owned()));
                r[part] = Cell::from_value(Value::Float(k as f64));
                out.push(r);
                k += 1;
            }
        }
        table.rows = out;
        Ok(table)
    }

    fn join(
        &mut self,
        name: &str,
        mut left: Table,
        right: Table,
        j: &crate::spec::JoinSpec,
    ) -> Result<Table> {
        let rkey_name = j.right.as_deref().unwrap_or(&j.left);
        let lk = left.columns.get(&j.left).ok_or_else(|| {
            self.spec_err(format!("join {}: no field {:?} in table {name}", j.table, j.left))
        })?;
        let rk = right.columns.get(rkey_name).ok_or_else(|| {
            self.spec_err(format!("join {}: no field {rkey_name:?} in table {}", j.table, j.table))
        })?;
        let norm = |s: &str| -> String {
            match j.key {
                KeyMatch::Exact => s.to_owned(),
                KeyMatch::Trim => s.trim().to_owned(),
                KeyMatch::Normalized => decontam_normalize(s),
            }
        };
        let mut index: HashMap<String, usize> = HashMap::with_capacity(right.rows.len());
        let mut dup_keys = 0usize;
        for (i, r) in right.rows.iter().enumerate() {
            let k = norm(&r.get(rk).map(|c| c.text().into_owned()).unwrap_or_default());
            match index.entry(k) {
                std::collections::hash_map::Entry::Occupied(_) => dup_keys += 1,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
        // Which right columns are carried over, and where they go.
        let mut carry: Vec<(usize, usize)> = Vec::new();
        for (ri, rname) in right.columns.names.iter().enumerate() {
            if ri == rk || rname.starts_with('_') {
                continue;
            }
            let target = format!("{}{}", j.prefix, rname);
            if left.columns.get(&target).is_some() {
                continue;
            }
            carry.push((ri, left.columns.push(target)));
        }
        let width = left.columns.len();
        let mut matched_right = vec![false; right.rows.len()];
        let mut out = Vec::with_capacity(left.rows.len());
        let (mut matched, total) = (0usize, left.rows.len());
        for mut row in std::mem::take(&mut left.rows) {
            let k = norm(&row.get(lk).map(|c| c.text().into_owned()).unwrap_or_default());
            match index.get(&k) {
                Some(&ri) => {
                    matched += 1;
                    matched_right[ri] = true;
                    row.resize(width.max(row.len()), Cell::empty());
                    for &(from, to) in &carry {
                        row[to] = right.rows[ri].get(from).cloned().unwrap_or_else(Cell::empty);
                    }
                    out.push(row);
                }
                None if j.how == JoinHow::Left => out.push(row),
                None => {}
            }
        }
        left.rows = out;
        let right_used = matched_right.iter().filter(|&&m| m).count();
        self.notes.push(format!(
            "join {name} ⋈ {} on {}: {matched} of {total} rows matched; {right_used} of {} joined rows used{}",
            j.table,
            j.left,
            right.rows.len(),
            if dup_keys > 0 { format!(" ({dup_keys} joined rows with a repeated key ignored)") } else { String::new() }
        ));
        Ok(left)
    }

    fn group(&mut self, name: &str, table: Table, g: &crate::spec::GroupSpec) -> Result<Table> {
        let keys: Vec<usize> = g
            .by
            .iter()
            .map(|k| {
                table.columns.get(k).ok_or_else(|| {
                    self.spec_err(format!("group: no field {k:?} in table {name}"))
                })
            })
            .collect::<Result<_>>()?;
        let aggs: Vec<(&String, AggOp, Option<Node>)> = g
            .agg
            .iter()
            .map(|(n, a)| {
                let node = a.expr.as_deref().map(|e| self.compile(&format!("aggregate {n}"), e));
                Ok((n, a.op, node.transpose()?))
            })
            .collect::<Result<_>>()?;
        // Group rows in first-appearance order.
        let mut order: Vec<Vec<usize>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, row) in table.rows.iter().enumerate() {
            let mut key = String::new();
            for &k in &keys {
                key.push_str(&row.get(k).map(|c| c.text().into_owned()).unwrap_or_default());
                key.push('\u{1f}');
            }
            let gi = *index.entry(key).or_insert_with(|| {
                order.push(Vec::new());
                order.len() - 1
            });
            order[gi].push(i);
        }
        let mut columns = table.columns.clone();
        let targets: Vec<usize> = aggs.iter().map(|(n, _, _)| columns.push((*n).clone())).collect();
        let width = columns.len();
        let mut rows = Vec::with_capacity(order.len());
        for members in &order {
            let first = &table.rows[members[0]];
            let mut out = first.clone();
            out.resize(width.max(out.len()), Cell::empty());
            for ((aname, op, node), &target) in aggs.iter().zip(&targets) {
                let mut values = Vec::with_capacity(members.len());
                if let Some(node) = node {
                    for &m in members {
                        let r = &table.rows[m];
                        let v = expr::eval(node, &table.columns, r).map_err(|e| {
                            self.row_err(&table.columns, r, format!("aggregate {aname}: {e}"))
                        })?;
                        if !matches!(v, Value::Empty) {
                            values.push(v);
                        }
                    }
                }
                let v = if node.is_none() {
                    // `count` without an expression: the group's size.
                    Ok(Value::Float(members.len() as f64))
                } else {
                    aggregate(*op, &values)
                };
                let v = v.map_err(|m| self.row_err(&table.columns, first, format!("aggregate {aname}: {m}")))?;
                out[target] = Cell::from_value(v);
            }
            rows.push(out);
        }
        self.notes.push(format!(
            "table {name}: {} rows grouped by {} into {}",
            table.rows.len(),
            g.by.join(", "),
            rows.len()
        ));
        Ok(Table { columns, rows })
    }
}

fn as_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Boolean(b) => Ok(*b as u8 as f64),
        Value::String(s) => match expr::parse_number(s) {
            Some(Value::Int(i)) => Ok(i as f64),
            Some(Value::Float(f)) => Ok(f),
            _ => Err(format!("{s:?} is not a number")),
        },
        other => Err(format!("{other:?} is not a number")),
    }
}

fn aggregate(op: AggOp, values: &[Value]) -> Result<Value, String> {
    let nums = || values.iter().map(as_f64).collect::<Result<Vec<f64>, String>>();
    let bools = || {
        values
            .iter()
            .map(truthy)
            .filter_map(|r| r.transpose())
            .collect::<Result<Vec<bool>, String>>()
    };
    Ok(match op {
        AggOp::Count => Value::Float(bools()?.into_iter().filter(|&b| b).count() as f64),
        AggOp::Mean => {
            let v = nums()?;
            if v.is_empty() {
                Value::Empty
            } else {
                number_value(v.iter().sum::<f64>() / v.len() as f64)
            }
        }
        AggOp::Sum => number_value(nums()?.iter().sum()),
        AggOp::Min => nums()?.into_iter().reduce(f64::min).map_or(Value::Empty, number_value),
        AggOp::Max => nums()?.into_iter().reduce(f64::max).map_or(Value::Empty, number_value),
        AggOp::Any => {
            let b = bools()?;
            if b.is_empty() { Value::Empty } else { Value::Float(b.iter().any(|&x| x) as u8 as f64) }
        }
        AggOp::All => {
            let b = bools()?;
            if b.is_empty() { Value::Empty } else { Value::Float(b.iter().all(|&x| x) as u8 as f64) }
        }
        AggOp::First => values.first().cloned().unwrap_or(Value::Empty),
        AggOp::Majority => {
            let mut counts: Vec<(String, usize, &Value)> = Vec::new();
            for v in values {
                let t = value_text(v).into_owned();
                match counts.iter_mut().find(|(k, _, _)| *k == t) {
                    Some(e) => e.1 += 1,
                    None => counts.push((t, 1, v)),
                }
            }
            let mut best: Option<&(String, usize, &Value)> = None;
            for c in &counts {
                if best.map(|b| c.1 > b.1).unwrap_or(true) {
                    best = Some(c);
                }
            }
            best.map_or(Value::Empty, |b| b.2.clone())
        }
    })
}

fn render(t: &Template, cols: &Columns, row: &[Cell]) -> std::result::Result<String, String> {
    let mut s = String::new();
    for p in &t.parts {
        match p {
            Part::Lit(l) => s.push_str(l),
            Part::Field(f) => {
                let i = cols.get(f).ok_or_else(|| format!("template names unknown field {f:?}"))?;
                if let Some(c) = row.get(i) {
                    s.push_str(&c.text());
                }
            }
        }
    }
    Ok(s)
}

fn cell_json(c: &Cell) -> Option<Json> {
    Some(match &c.value {
        Value::Empty => return None,
        Value::String(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Json::from(*f as i64),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Tuple(_) => Json::String(c.text().into_owned()),
    })
}

/// Loads one dataset: reads and reshapes its tables, builds texts and ids, applies the
/// label rules and the taxonomy's hierarchy. Rows with an empty text are counted, not
/// returned.
pub fn load_dataset(spec: &DatasetSpec, data_root: &Path, taxonomy: &Taxonomy) -> Result<LoadedDataset> {
    spec.check_codes(taxonomy)?;
    let origin = spec.origin.clone().unwrap_or_else(|| PathBuf::from(format!("{}.toml", spec.name)));
    let mut ctx = Ctx { spec, root: data_root, origin, notes: Vec::new() };
    let table = ctx.build_table("source", &spec.source, 0)?;

    let text_t = Template::parse(&spec.text).map_err(|m| ctx.spec_err(format!("text: {m}")))?;
    let n_files = crate::read::resolve_files(data_root, &spec.source, &ctx.origin)?.len();
    let default_id = {
        let mut s = String::from(if n_files > 1 { "{_file}:{_row}" } else { "{_row}" });
        if spec.source.explode.is_some() {
            s.push_str(".{_part}");
        }
        s
    };
    let id_t = Template::parse(spec.id.as_deref().unwrap_or(&default_id))
        .map_err(|m| ctx.spec_err(format!("id: {m}")))?;
    for f in text_t.fields().chain(id_t.fields()).chain(spec.meta.iter().map(String::as_str)) {
        if table.columns.get(f).is_none() {
            return Err(ctx.spec_err(format!(
                "field {f:?} is not a column of the source table (columns: {})",
                table.columns.names.join(", ")
            )));
        }
    }
    let rules: Vec<(usize, Node, &str)> = spec
        .labels
        .iter()
        .map(|(code, e)| {
            let i = taxonomy.require(code)?;
            Ok((i, ctx.compile(&format!("label {code}"), e)?, code.as_str()))
        })
        .collect::<Result<_>>()?;

    let mut base_meta = Map::new();
    base_meta.insert("license".into(), Json::String(spec.license.clone()));
    base_meta.insert("research_only".into(), Json::Bool(spec.research_only));

    let mut records = Vec::with_capacity(table.rows.len());
    let mut dropped_empty = 0;
    let mut dropped_unlabelled = 0;
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    for row in &table.rows {
        let cols = &table.columns;
        let mut text = render(&text_t, cols, row).map_err(|m| ctx.row_err(cols, row, m))?;
        if spec.trim_text {
            let t = text.trim();
            if t.len() != text.len() {
                text = t.to_owned();
            }
        }
        if text.trim().is_empty() {
            dropped_empty += 1;
            continue;
        }
        let mut rid = render(&id_t, cols, row).map_err(|m| ctx.row_err(cols, row, m))?;
        let n = seen_ids.entry(rid.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            rid = format!("{rid}#{n}");
        }
        let mut labels = vec![Label::Unknown; taxonomy.len()];
        for (i, node, code) in &rules {
            let v = expr::eval(node, cols, row)
                .map_err(|m| ctx.row_err(cols, row, format!("label {code}: {m}")))?;
            let l = expr::to_label(&v)
                .map_err(|m| ctx.row_err(cols, row, format!("label {code}: {m}")))?;
            labels[*i] = l;
        }
        taxonomy.enforce_labels(&mut labels);
        if spec.drop_unlabelled && labels.iter().all(|l| !l.is_known()) {
            dropped_unlabelled += 1;
            continue;
        }
        let mut meta = base_meta.clone();
        for f in &spec.meta {
            let i = cols.get(f).expect("checked above");
            if let Some(v) = row.get(i).and_then(cell_json) {
                meta.insert(f.clone(), v);
            }
        }
        records.push(Record {
            id: format!("{}:{rid}", spec.name),
            text,
            labels,
            source: spec.name.clone(),
            meta,
        });
    }
    Ok(LoadedDataset { name: spec.name.clone(), records, dropped_empty, dropped_unlabelled, notes: ctx.notes })
}
