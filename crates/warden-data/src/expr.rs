//! Rule expressions over a row's fields, evaluated with [`evalexpr`].
//!
//! A field is visible under its column name and under a sanitised identifier in which
//! every character other than `[A-Za-z0-9_]` becomes `_` (`all toxic` → `all_toxic`,
//! `is_abuse.-1` → `is_abuse__1`). Cells that look like numbers are numbers, always
//! floats, and integer literals in rules are read as floats too, so `class == 0` matches
//! "0" and "0.0" and `a / b` is never integer division (beware: evalexpr functions that
//! return integers, like `len`, compare unequal to floats with `==`; use `>=`/`<=`).
//! Everything else is a string,
//! and a missing field (a JSON key absent from a row, an unmatched join) is `()`.
//!
//! Pseudo-fields: `_file` (file name), `_path` (path relative to the data root), `_row`
//! (0-based data row within its file), `_part` (piece index after `explode`).
//!
//! Besides evalexpr's built-ins (`if`, `min`, `max`, `len`, `str::to_lowercase`,
//! `str::regex_matches` ...) rules may call:
//! `str::starts_with(s, p)`, `str::ends_with(s, p)`, `str::contains(s, sub)`,
//! `str::list_contains(s, sep, item)` (split `s` on `sep`, trim, compare),
//! `str::concat(a, b, ...)` (strings and numbers joined; `()` counts as ""),
//! `is_empty(x)` (true for `()` and blank strings), `num(x)` (parse a string as a number;
//! `()` when it does not parse), `coalesce(a, b, ...)` (first non-empty argument), and
//! `truthy(x)` (booleans, non-zero numbers, and the strings true/yes/1).
//!
//! A label rule yields a number in `[0, 1]` or a boolean (the label), or `()` (unknown).
//! Note that `if(c, a, b)` is an ordinary function: all three arguments are evaluated.
//! An empty field used in a comparison or in arithmetic makes the *whole* expression
//! empty (unknown) instead of failing, so write `coalesce(x, 0) > 0.5` where an empty
//! field should count as 0.

use std::borrow::Cow;
use std::collections::HashMap;

use evalexpr::{Context, EvalexprError, EvalexprResult, Node, Value};
use warden_core::Label;

/// Compiles an expression. Integer literals are read as floats (`0` → `0.0`) so that
/// every number in a rule is a float: `class == 0` matches a cell "0" or "0.0", and
/// `a / b` is never integer division.
pub(crate) fn compile(expr: &str) -> Result<Node, String> {
    evalexpr::build_operator_tree(&float_literals(expr))
        .map_err(|e| format!("invalid expression {expr:?}: {e}"))
}

/// Appends `.0` to every bare integer literal outside string literals.
pub(crate) fn float_literals(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 8);
    let mut chars = expr.chars().peekable();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == ':';
    while let Some(c) = chars.next() {
        if c == '"' {
            out.push(c);
            while let Some(d) = chars.next() {
                out.push(d);
                if d == '\\' {
                    if let Some(e) = chars.next() {
                        out.push(e);
                    }
                } else if d == '"' {
                    break;
                }
            }
        } else if word(c) {
            let mut run = String::from(c);
            while let Some(&d) = chars.peek() {
                if !word(d) {
                    break;
                }
                run.push(d);
                chars.next();
            }
            let int = run.bytes().all(|b| b.is_ascii_digit());
            out.push_str(&run);
            if int {
                out.push_str(".0");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One cell: its value, and the original text when the value was parsed as a number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub value: Value,
    pub raw: Option<Box<str>>,
}

impl Cell {
    pub fn empty() -> Self {
        Cell { value: Value::Empty, raw: None }
    }

    pub fn from_value(value: Value) -> Self {
        Cell { value, raw: None }
    }

    /// A cell from text: empty text is an empty value `()`, numeric-looking text a float.
    pub fn parse(s: &str, parse_numbers: bool) -> Self {
        if s.is_empty() {
            return Cell::empty();
        }
        if parse_numbers {
            if let Some(v) = parse_number(s) {
                return Cell { value: v, raw: Some(s.into()) };
            }
        }
        Cell { value: Value::String(s.to_owned()), raw: None }
    }

    /// The cell as text (the original text for parsed numbers).
    pub fn text(&self) -> Cow<'_, str> {
        if let Some(r) = &self.raw {
            return Cow::Borrowed(r);
        }
        value_text(&self.value)
    }
}

pub(crate) fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(f) => Cow::Owned(f.to_string()),
        Value::Boolean(b) => Cow::Owned(b.to_string()),
        Value::Empty => Cow::Borrowed(""),
        Value::Tuple(t) => {
            Cow::Owned(t.iter().map(|v| value_text(v).into_owned()).collect::<Vec<_>>().join(", "))
        }
    }
}

/// Parses a numeric-looking string: optional sign, digits, optional fraction and exponent.
/// (`f64::from_str` alone would also accept `nan`, `inf` ...)
pub(crate) fn parse_number(s: &str) -> Option<Value> {
    let t = s.trim();
    if t.is_empty() || t.len() > 40 {
        return None;
    }
    let b = t.as_bytes();
    let mut i = 0;
    if b[i] == b'+' || b[i] == b'-' {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut ndigits = i - digits_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        ndigits += i - f;
    }
    if ndigits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    let f: f64 = t.parse().ok()?;
    Some(number_value(f))
}

/// Every number is a float (integer literals in rules are read as floats too).
pub(crate) fn number_value(f: f64) -> Value {
    Value::Float(f)
}

/// Sanitised identifier for a column name.
pub(crate) fn identifier(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Column names → index, under both the raw and the sanitised name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Columns {
    pub names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Columns {
    #[cfg(test)]
    pub fn new(names: Vec<String>) -> Self {
        let mut c = Columns { names: Vec::new(), index: HashMap::new() };
        for n in names {
            c.push(n);
        }
        c
    }

    /// Adds a column (its index is returned); an existing name returns its index.
    pub fn push(&mut self, name: String) -> usize {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.names.len();
        let id = identifier(&name);
        self.index.entry(id).or_insert(i);
        self.index.insert(name.clone(), i);
        self.names.push(name);
        i
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// Evaluation context for one row.
pub(crate) struct RowCtx<'a> {
    pub columns: &'a Columns,
    pub row: &'a [Cell],
}

static EMPTY: Value = Value::Empty;

impl Context for RowCtx<'_> {
    fn get_value(&self, identifier: &str) -> Option<&Value> {
        self.columns.get(identifier).map(|i| self.row.get(i).map_or(&EMPTY, |c| &c.value))
    }

    fn call_function(&self, identifier: &str, argument: &Value) -> EvalexprResult<Value> {
        call_custom(identifier, argument)
    }

    fn are_builtin_functions_disabled(&self) -> bool {
        false
    }

    fn set_builtin_functions_disabled(&mut self, disabled: bool) -> EvalexprResult<()> {
        if disabled {
            Err(EvalexprError::CustomMessage("builtin functions cannot be disabled".into()))
        } else {
            Ok(())
        }
    }
}

fn args(argument: &Value, n: usize) -> EvalexprResult<Vec<Value>> {
    argument.as_fixed_len_tuple(n)
}

fn as_str(v: &Value) -> EvalexprResult<Cow<'_, str>> {
    match v {
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Empty => Ok(Cow::Borrowed("")),
        Value::Int(_) | Value::Float(_) | Value::Boolean(_) => Ok(value_text(v)),
        other => Err(EvalexprError::expected_string(other.clone())),
    }
}

/// Truthiness used by `any`/`all`/`count` and `truthy()`; `None` for empty values.
pub(crate) fn truthy(v: &Value) -> Result<Option<bool>, String> {
    Ok(match v {
        Value::Empty => None,
        Value::Boolean(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Float(f) => Some(*f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => None,
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => return Err(format!("cannot read {s:?} as true/false")),
        },
        Value::Tuple(t) => Some(!t.is_empty()),
    })
}

thread_local! {
    static REGEXES: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> = Default::default();
}

fn call_custom(identifier: &str, argument: &Value) -> EvalexprResult<Value> {
    match identifier {
        // evalexpr's own `str::regex_matches` compiles its pattern on every call, which made
        // a regex filter over 100k Wikipedia lines take 90 s; compiled patterns are cached
        // per thread instead (same semantics: `Regex::is_match`).
        "str::regex_matches" => {
            let a = args(argument, 2)?;
            let (text, pattern) = (as_str(&a[0])?, as_str(&a[1])?);
            REGEXES.with_borrow_mut(|cache| {
                if !cache.contains_key(&*pattern) {
                    let re = regex::Regex::new(&pattern)
                        .map_err(|e| EvalexprError::CustomMessage(format!("invalid regex {pattern:?}: {e}")))?;
                    cache.insert(pattern.to_string(), re);
                }
                Ok(Value::Boolean(cache[&*pattern].is_match(&text)))
            })
        }
        "str::starts_with" => {
            let a = args(argument, 2)?;
            Ok(Value::Boolean(as_str(&a[0])?.starts_with(&*as_str(&a[1])?)))
        }
        "str::ends_with" => {
            let a = args(argument, 2)?;
            Ok(Value::Boolean(as_str(&a[0])?.ends_with(&*as_str(&a[1])?)))
        }
        "str::contains" => {
            let a = args(argument, 2)?;
            Ok(Value::Boolean(as_str(&a[0])?.contains(&*as_str(&a[1])?)))
        }
        "str::list_contains" => {
            let a = args(argument, 3)?;
            let s = as_str(&a[0])?;
            let sep = as_str(&a[1])?;
            let item = as_str(&a[2])?;
            Ok(Value::Boolean(s.split(&*sep).any(|p| p.trim() == item.trim())))
        }
        "str::concat" => {
            let items = match argument {
                Value::Tuple(t) => t.clone(),
                v => vec![v.clone()],
            };
            let mut out = String::new();
            for v in &items {
                out.push_str(&as_str(v)?);
            }
            Ok(Value::String(out))
        }
        "is_empty" => Ok(Value::Boolean(match argument {
            Value::Empty => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        })),
        "num" => Ok(match argument {
            Value::Int(_) | Value::Float(_) => argument.clone(),
            Value::Boolean(b) => Value::Float(*b as u8 as f64),
            Value::String(s) => parse_number(s).unwrap_or(Value::Empty),
            _ => Value::Empty,
        }),
        "truthy" => truthy(argument)
            .map(|b| b.map_or(Value::Empty, Value::Boolean))
            .map_err(EvalexprError::CustomMessage),
        "coalesce" => {
            let items = match argument {
                Value::Tuple(t) => t.clone(),
                v => vec![v.clone()],
            };
            Ok(items
                .into_iter()
                .find(|v| !matches!(v, Value::Empty) && !matches!(v, Value::String(s) if s.is_empty()))
                .unwrap_or(Value::Empty))
        }
        _ => Err(EvalexprError::FunctionIdentifierNotFound(identifier.to_owned())),
    }
}

/// Evaluates a compiled expression on a row. A type error caused by an empty value (an
/// empty field compared or added) makes the whole result empty, i.e. unknown.
pub(crate) fn eval(node: &Node, columns: &Columns, row: &[Cell]) -> Result<Value, String> {
    use evalexpr::ValueType;
    match node.eval_with_context(&RowCtx { columns, row }) {
        Ok(v) => Ok(v),
        Err(
            EvalexprError::ExpectedString { actual: Value::Empty }
            | EvalexprError::ExpectedInt { actual: Value::Empty }
            | EvalexprError::ExpectedFloat { actual: Value::Empty }
            | EvalexprError::ExpectedNumber { actual: Value::Empty }
            | EvalexprError::ExpectedNumberOrString { actual: Value::Empty }
            | EvalexprError::ExpectedBoolean { actual: Value::Empty }
            | EvalexprError::TypeError { actual: Value::Empty, .. },
        ) => Ok(Value::Empty),
        Err(EvalexprError::WrongTypeCombination { actual, .. })
            if actual.contains(&ValueType::Empty) =>
        {
            Ok(Value::Empty)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Turns a rule's value into a label.
pub(crate) fn to_label(v: &Value) -> Result<Label, String> {
    let x = match v {
        Value::Empty => return Ok(Label::Unknown),
        Value::Boolean(b) => *b as u8 as f64,
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        other => {
            return Err(format!(
                "a label rule must give a number in [0, 1], a boolean or () (unknown), got {other:?}"
            ))
        }
    };
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("label value {x} is outside [0, 1]"));
    }
    Ok(Label::from_value(x as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expr: &str, fields: &[(&str, &str)]) -> Value {
        let cols = Columns::new(fields.iter().map(|(k, _)| k.to_string()).collect());
        let row: Vec<Cell> = fields.iter().map(|(_, v)| Cell::parse(v, true)).collect();
        eval(&compile(expr).unwrap(), &cols, &row).unwrap()
    }

    #[test]
    fn numbers_and_unknowns() {
        assert_eq!(parse_number("1.0"), Some(Value::Float(1.0)));
        assert_eq!(parse_number(" 0.5"), Some(Value::Float(0.5)));
        assert_eq!(parse_number("nan"), None);
        assert_eq!(parse_number("1e3"), Some(Value::Float(1000.0)));
        assert_eq!(float_literals("if(a_1 == 0, \"x 1\", 12 / 0.5 + is_abuse__1)"), "if(a_1 == 0.0, \"x 1\", 12.0 / 0.5 + is_abuse__1)");
        assert_eq!(run("a / b", &[("a", "1"), ("b", "3")]), Value::Float(1.0 / 3.0));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("."), None);
        let d = "if(class == 0, 1, if(class == 2, 0, ()))";
        assert_eq!(run(d, &[("class", "0")]), Value::Float(1.0));
        assert_eq!(run(d, &[("class", "2.0")]), Value::Float(0.0));
        assert_eq!(run(d, &[("class", "1")]), Value::Empty);
        assert_eq!(to_label(&Value::Empty).unwrap(), Label::Unknown);
        assert_eq!(to_label(&Value::Float(0.25)).unwrap(), Label::Soft(0.25));
        assert!(to_label(&Value::Int(2)).is_err());
        assert!(to_label(&Value::String("x".into())).is_err());
    }

    #[test]
    fn empty_fields_make_the_result_unknown() {
        assert_eq!(run("if(x > 0.5, 1, 0)", &[("x", "")]), Value::Empty);
        assert_eq!(run("if(coalesce(x, 0) > 0.5, 1, 0)", &[("x", "")]), Value::Float(0.0));
        assert_eq!(run("x + 1", &[("x", "")]), Value::Empty);
        let cols = Columns::new(vec!["a".into()]);
        assert!(eval(&compile("nope + 1").unwrap(), &cols, &[]).is_err(), "unknown fields still fail");
    }

    #[test]
    fn sanitised_names_and_custom_functions() {
        assert_eq!(run("all_toxic", &[("all toxic", "True")]), Value::String("True".into()));
        assert_eq!(run("is_abuse__1", &[("is_abuse.-1", "1")]), Value::Float(1.0));
        assert_eq!(
            run("str::list_contains(c, \",\", \"hate\")", &[("c", "violence, hate")]),
            Value::Boolean(true)
        );
        assert_eq!(
            run("str::list_contains(c, \",\", \"hat\")", &[("c", "violence, hate")]),
            Value::Boolean(false)
        );
        assert_eq!(run("str::starts_with(_file, \"hate_\")", &[("_file", "hate_x.txt")]), Value::Boolean(true));
        // The cached regex: the same answers on repeated calls, word boundaries work, and a
        // bad pattern is an error, not a silent false.
        for _ in 0..2 {
            assert_eq!(run("str::regex_matches(t, \"\\\\b(jews|muslims)\\\\b\")", &[("t", "about muslims here")]), Value::Boolean(true));
            assert_eq!(run("str::regex_matches(t, \"\\\\b(jews|muslims)\\\\b\")", &[("t", "amuslimsx")]), Value::Boolean(false));
        }
        let cols = Columns::new(vec!["t".into()]);
        assert!(eval(&compile("str::regex_matches(t, \"(\")").unwrap(), &cols, &[Cell::parse("x", true)]).is_err());
        assert_eq!(run("coalesce(a, b)", &[("a", ""), ("b", "3")]), Value::Float(3.0));
        assert_eq!(run("is_empty(a)", &[("a", "  ")]), Value::Boolean(true));
        assert_eq!(run("truthy(a)", &[("a", "Yes")]), Value::Boolean(true));
        assert_eq!(run("num(a) >= 0.5", &[("a", "0.75")]), Value::Boolean(true));
        assert_eq!(run("str::to_lowercase(a)", &[("a", "AB")]), Value::String("ab".into()));
    }
}
