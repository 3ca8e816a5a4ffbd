//! The rules a `schema.toml` may declare for a table's columns (issue
//! "Schemas with rules"): what valid data is, parsed and checked for
//! consistency, and a checker of rows against them. Not yet enforced by
//! saves: `Schema::parse` still refuses every rule but the column types
//! until the commit path checks them (a rule accepted and not enforced
//! would be worse than one refused).
//!
//! ```toml
//! version = 2
//! strict = true                 # columns not declared here are refused
//!
//! [columns]
//! id = "integer"                # the short form: a type only
//!
//! [columns.email]
//! type = "text"
//! unique = true                 # among non-empty values
//! required = true               # not empty
//! pattern = "[^@]+@[^@]+"       # must match the whole value
//! max_length = 200              # characters
//!
//! [columns.status]
//! type = "enum"
//! values = ["active", "inactive"]
//! default = "active"            # what a migration that adds the column fills in
//! ```
//!
//! An empty cell is a missing value: only `required` (and `primary_key`)
//! refuse it; every other rule holds for the values present.
//!
//! The short form `name = "integer"` is what schemas always were: the
//! column's type for queries, with SQLite's affinity, which lets any value
//! in (a column declared INTEGER may hold `abc`, as in SQLite). It checks
//! nothing. `type` in a column's table of rules is checked on every save.

use std::collections::HashMap;

use super::error::{Result, StorageError};

/// The longest `pattern`: a bound on the regex compiled for every save.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The compiled size a pattern may reach (the `regex` crate's limit).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A column's type as rules know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    Integer,
    Real,
    Text,
    Boolean,
    /// `YYYY-MM-DD`, a calendar date.
    Date,
    /// `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]]`, optionally `Z` or `±HH:MM`.
    Datetime,
    Enum,
}

impl RuleType {
    fn parse(s: &str) -> Option<RuleType> {
        Some(match s {
            "integer" => RuleType::Integer,
            "real" => RuleType::Real,
            "text" => RuleType::Text,
            "boolean" => RuleType::Boolean,
            "date" => RuleType::Date,
            "datetime" => RuleType::Datetime,
            "enum" => RuleType::Enum,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleType::Integer => "integer",
            RuleType::Real => "real",
            RuleType::Text => "text",
            RuleType::Boolean => "boolean",
            RuleType::Date => "date",
            RuleType::Datetime => "datetime",
            RuleType::Enum => "enum",
        }
    }

    /// Whether `v` (not empty) is a value of this type.
    pub fn admits(self, v: &str) -> bool {
        match self {
            RuleType::Integer => is_integer(v),
            RuleType::Real => as_real(v).is_some(),
            RuleType::Text | RuleType::Enum => true,
            RuleType::Boolean => as_boolean(v).is_some(),
            RuleType::Date => is_date(v),
            RuleType::Datetime => is_datetime(v),
        }
    }

    fn ordered(self) -> bool {
        matches!(
            self,
            RuleType::Integer | RuleType::Real | RuleType::Date | RuleType::Datetime
        )
    }
}

/// A bound of `min`/`max`: a number, or a date or datetime (compared as
/// ISO 8601 text, which orders them).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(f64),
    Time(String),
}

/// The rules of one column.
#[derive(Debug, Clone)]
pub struct ColumnRules {
    pub name: String,
    pub kind: RuleType,
    /// Whether saves check the type (false for the short form, which only
    /// types queries).
    pub checked_type: bool,
    pub primary_key: bool,
    pub unique: bool,
    pub required: bool,
    /// The pattern as written, and compiled anchored: `^(?:pattern)$`.
    pub pattern: Option<(String, regex::Regex)>,
    pub min: Option<Bound>,
    pub max: Option<Bound>,
    pub max_length: Option<usize>,
    pub values: Vec<String>,
    pub default: Option<String>,
    pub renamed_from: Option<String>,
}

/// Every rule of a table's schema.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub version: Option<u64>,
    pub strict: bool,
    /// In the order `schema.toml` lists them.
    pub columns: Vec<ColumnRules>,
}

/// One value that breaks a rule: `line N, column <name>: <rule> (<value>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The line of the record in the file (the header is line 1).
    pub line: usize,
    pub column: String,
    pub rule: String,
    pub value: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {} ({:?})",
            self.line, self.column, self.rule, self.value
        )
    }
}

pub(super) fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && v.parse::<i64>().is_ok()
}

pub(super) fn as_real(v: &str) -> Option<f64> {
    let ok = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    ok.then(|| v.parse::<f64>().ok())
        .flatten()
        .filter(|x| x.is_finite())
}

/// `true`/`false` (any case) or `1`/`0`, as SQLite reads booleans.
pub(super) fn as_boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

pub(super) fn is_date(v: &str) -> bool {
    let mut parts = v.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn is_time(t: &str) -> bool {
    // HH:MM[:SS[.fraction]]
    let (hm, rest) = t.split_at(t.len().min(5));
    let mut hmp = hm.split(':');
    let (Some(h), Some(m), None) = (hmp.next(), hmp.next(), hmp.next()) else {
        return false;
    };
    let (Some(h), Some(m)) = (digits(h, 2), digits(m, 2)) else {
        return false;
    };
    if h > 23 || m > 59 {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let Some(sec) = rest.strip_prefix(':') else {
        return false;
    };
    let (s, frac) = sec.split_at(sec.len().min(2));
    if digits(s, 2).is_none_or(|s| s > 59) {
        return false;
    }
    frac.is_empty()
        || frac
            .strip_prefix('.')
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn is_datetime(v: &str) -> bool {
    if v.len() < 16 || !v.is_char_boundary(10) || !v.is_char_boundary(11) {
        return false;
    }
    let (date, sep, rest) = (&v[..10], &v[10..11], &v[11..]);
    if !is_date(date) || !(sep == "T" || sep == " ") {
        return false;
    }
    let time = if let Some(t) = rest.strip_suffix('Z') {
        t
    } else if rest.len() > 6
        && rest.is_char_boundary(rest.len() - 6)
        && matches!(&rest[rest.len() - 6..rest.len() - 5], "+" | "-")
    {
        let (t, zone) = rest.split_at(rest.len() - 6);
        let zone = &zone[1..];
        if !is_time(zone) || zone.len() != 5 {
            return false;
        }
        t
    } else {
        rest
    };
    is_time(time)
}

fn bad(table: &str, reason: String) -> StorageError {
    StorageError::Invalid {
        what: format!("schema.toml of {table}"),
        reason,
    }
}

/// The line (1-based) where `text` declares `key`: a top-level key
/// (`column` None), or column `key`'s table (`[columns.key]`) or its line
/// under `[columns]`. None when not found (the error then has no line).
fn declared_at(text: &str, column: bool, key: &str) -> Option<usize> {
    let names = [key.to_string(), format!("\"{key}\""), format!("'{key}'")];
    let starts_with_key = |l: &str| {
        names.iter().any(|n| {
            l.strip_prefix(n.as_str())
                .is_some_and(|rest| rest.trim_start().starts_with(['=', '.']))
        })
    };
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(head) = l.strip_prefix('[').and_then(|h| h.split(']').next()) {
            section = head.trim().to_string();
            if column && names.iter().any(|n| section == format!("columns.{n}")) {
                return Some(i + 1);
            }
            continue;
        }
        let here = if column {
            section == "columns"
        } else {
            section.is_empty()
        };
        if here && starts_with_key(l) {
            return Some(i + 1);
        }
    }
    None
}

/// `e` with the line where `text` declares `key` in front of its reason.
fn at_line(e: StorageError, text: &str, column: bool, key: &str) -> StorageError {
    match (e, declared_at(text, column, key)) {
        (StorageError::Invalid { what, reason }, Some(line)) => StorageError::Invalid {
            what,
            reason: format!("line {line}: {reason}"),
        },
        (e, _) => e,
    }
}

/// A TOML value as the text a cell would hold (strings as they are,
/// numbers and booleans as TOML prints them).
fn as_cell(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

const COLUMN_KEYS: &[&str] = &[
    "type",
    "primary_key",
    "unique",
    "required",
    "pattern",
    "min",
    "max",
    "max_length",
    "values",
    "default",
    "renamed_from",
];

impl Rules {
    /// Parses the rules of `schema.toml` and checks that they hold together;
    /// with `header`, that every column named exists (a save's check).
    pub fn parse(text: &str, table: &str, header: Option<&[String]>) -> Result<Rules> {
        let raw: toml::Table = toml::from_str(text).map_err(|e| bad(table, e.to_string()))?;
        let mut rules = Rules::default();
        for (key, value) in &raw {
            let at = |e: StorageError| at_line(e, text, false, key);
            match (key.as_str(), value) {
                ("version", toml::Value::Integer(v)) if *v >= 1 => rules.version = Some(*v as u64),
                ("strict", toml::Value::Boolean(b)) => rules.strict = *b,
                ("columns", toml::Value::Table(_)) => {}
                ("version", _) => {
                    return Err(at(bad(table, "version must be a whole number >= 1".into())));
                }
                ("strict", _) => {
                    return Err(at(bad(table, "strict must be true or false".into())));
                }
                ("columns", _) => return Err(at(bad(table, "columns must be a table".into()))),
                (other, _) => {
                    return Err(at(bad(
                        table,
                        format!("unknown key {other:?} (version, strict, columns)"),
                    )));
                }
            }
        }
        if let Some(toml::Value::Table(columns)) = raw.get("columns") {
            for (name, spec) in columns {
                let c = column(table, name, spec).map_err(|e| at_line(e, text, true, name))?;
                rules.columns.push(c);
            }
        }
        let keys: Vec<&ColumnRules> = rules.columns.iter().filter(|c| c.primary_key).collect();
        if keys.len() > 1 {
            return Err(bad(table, "more than one primary_key column".into()));
        }
        if let Some(header) = header {
            if let Some(missing) = rules.columns.iter().find(|c| !header.contains(&c.name)) {
                let e = bad(
                    table,
                    format!(
                        "column {:?} is not in the table (columns: {})",
                        missing.name,
                        header.join(", ")
                    ),
                );
                return Err(at_line(e, text, true, &missing.name));
            }
            if let Some(k) = keys.first()
                && header.first() != Some(&k.name)
            {
                return Err(bad(
                    table,
                    format!(
                        "primary_key {:?}: the key is the table's first column ({:?})",
                        k.name,
                        header.first().map_or("", String::as_str)
                    ),
                ));
            }
        }
        Ok(rules)
    }

    /// The rules of column `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnRules> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The violations of a whole table, `header` then its records (each with
    /// its line), in line order, at most `limit` of them.
    pub fn check_table<'a>(
        &self,
        header: &[String],
        records: impl IntoIterator<Item = (usize, &'a [String])>,
        limit: usize,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.strict {
            for name in header.iter().filter(|h| self.column(h).is_none()) {
                out.push(Violation {
                    line: 1,
                    column: name.clone(),
                    rule: "strict: not declared in schema.toml".into(),
                    value: name.clone(),
                });
            }
        }
        let at: Vec<(usize, &ColumnRules)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some((i, self.column(h)?)))
            .collect();
        let mut seen: Vec<HashMap<&'a str, usize>> = vec![HashMap::new(); at.len()];
        for (line, fields) in records {
            for (slot, (i, c)) in at.iter().enumerate() {
                let v = fields.get(*i).map_or("", String::as_str);
                if let Some(rule) = c.broken_by(v) {
                    out.push(Violation {
                        line,
                        column: c.name.clone(),
                        rule,
                        value: v.to_string(),
                    });
                }
                if (c.unique || c.primary_key)
                    && !v.is_empty()
                    && let Some(first) = seen[slot].insert(v, line)
                {
                    out.push(Violation {
                        line,
                        column: c.name.clone(),
                        rule: format!("unique: also on line {first}"),
                        value: v.to_string(),
                    });
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        out.sort_by_key(|v| v.line);
        out.truncate(limit);
        out
    }
}

impl ColumnRules {
    /// The first per-value rule `v` breaks (none: it keeps them all).
    pub fn broken_by(&self, v: &str) -> Option<String> {
        if v.is_empty() {
            return (self.required || self.primary_key).then(|| "required: empty".to_string());
        }
        if self.checked_type && !self.kind.admits(v) {
            return Some(format!("type: not {}", self.kind.name()));
        }
        if self.kind == RuleType::Enum && !self.values.iter().any(|x| x == v) {
            return Some(format!("enum: not one of {}", self.values.join(", ")));
        }
        if let Some(max) = self.max_length
            && v.chars().count() > max
        {
            return Some(format!("max_length: over {max} characters"));
        }
        if let Some((p, re)) = &self.pattern
            && !re.is_match(v)
        {
            return Some(format!("pattern: does not match {p}"));
        }
        let below = |b: &Bound| match b {
            Bound::Number(n) => as_real(v).is_some_and(|x| x < *n),
            Bound::Time(t) => v < t.as_str(),
        };
        let above = |b: &Bound| match b {
            Bound::Number(n) => as_real(v).is_some_and(|x| x > *n),
            Bound::Time(t) => v > t.as_str(),
        };
        if let Some(min) = &self.min
            && below(min)
        {
            return Some(format!("min: below {}", show(min)));
        }
        if let Some(max) = &self.max
            && above(max)
        {
            return Some(format!("max: above {}", show(max)));
        }
        None
    }
}

fn show(b: &Bound) -> String {
    match b {
        Bound::Number(n) => n.to_string(),
        Bound::Time(t) => t.clone(),
    }
}

fn column(table: &str, name: &str, spec: &toml::Value) -> Result<ColumnRules> {
    let err = |reason: String| bad(table, format!("column {name:?}: {reason}"));
    let mut c = ColumnRules {
        name: name.to_string(),
        kind: RuleType::Text,
        checked_type: false,
        primary_key: false,
        unique: false,
        required: false,
        pattern: None,
        min: None,
        max: None,
        max_length: None,
        values: Vec::new(),
        default: None,
        renamed_from: None,
    };
    let spec = match spec {
        // The short form: `name = "integer"`.
        toml::Value::String(t) => {
            c.kind = RuleType::parse(t).ok_or_else(|| err(format!("unknown type {t:?}")))?;
            if c.kind == RuleType::Enum {
                return Err(err(
                    "an enum needs its values: [columns.<name>] type = \"enum\", values = [...]"
                        .into(),
                ));
            }
            return Ok(c);
        }
        toml::Value::Table(t) => t,
        _ => return Err(err("a type name or a table of rules".into())),
    };
    let mut raw_min = None;
    let mut raw_max = None;
    for (key, v) in spec {
        let flag = |v: &toml::Value| {
            v.as_bool()
                .ok_or_else(|| err(format!("{key} must be true or false")))
        };
        match key.as_str() {
            "type" => {
                let t = v
                    .as_str()
                    .ok_or_else(|| err("type must be a string".into()))?;
                c.kind = RuleType::parse(t).ok_or_else(|| err(format!("unknown type {t:?}")))?;
                c.checked_type = true;
            }
            "primary_key" => c.primary_key = flag(v)?,
            "unique" => c.unique = flag(v)?,
            "required" => c.required = flag(v)?,
            "pattern" => {
                let p = v
                    .as_str()
                    .ok_or_else(|| err("pattern must be a string".into()))?;
                if p.len() > MAX_PATTERN_BYTES {
                    return Err(err(format!(
                        "pattern longer than {MAX_PATTERN_BYTES} bytes"
                    )));
                }
                let re = regex::RegexBuilder::new(&format!("^(?:{p})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| err(format!("pattern does not compile: {e}")))?;
                c.pattern = Some((p.to_string(), re));
            }
            "min" => raw_min = Some(v.clone()),
            "max" => raw_max = Some(v.clone()),
            "max_length" => {
                let n = v
                    .as_integer()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| err("max_length must be a whole number >= 0".into()))?;
                c.max_length = Some(n as usize);
            }
            "values" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| err("values must be a list".into()))?;
                for x in list {
                    c.values.push(
                        as_cell(x)
                            .ok_or_else(|| err("values must be strings or numbers".into()))?,
                    );
                }
            }
            "default" => {
                c.default = Some(as_cell(v).ok_or_else(|| err("default must be a value".into()))?)
            }
            "renamed_from" => {
                c.renamed_from = Some(
                    v.as_str()
                        .ok_or_else(|| err("renamed_from must be a column name".into()))?
                        .to_string(),
                )
            }
            other => {
                return Err(err(format!(
                    "unknown rule {other:?} ({})",
                    COLUMN_KEYS.join(", ")
                )));
            }
        }
    }
    let bound = |raw: Option<toml::Value>, which: &str| -> Result<Option<Bound>> {
        let Some(v) = raw else { return Ok(None) };
        if !c.kind.ordered() {
            return Err(err(format!(
                "{which} applies to integer, real, date and datetime columns, not {}",
                c.kind.name()
            )));
        }
        let text = as_cell(&v).unwrap_or_default();
        match c.kind {
            RuleType::Integer | RuleType::Real => as_real(&text)
                .map(|n| Some(Bound::Number(n)))
                .ok_or_else(|| err(format!("{which} must be a number"))),
            RuleType::Date if is_date(&text) => Ok(Some(Bound::Time(text))),
            RuleType::Datetime if is_datetime(&text) || is_date(&text) => {
                Ok(Some(Bound::Time(text)))
            }
            _ => Err(err(format!("{which} {text:?} is not a {}", c.kind.name()))),
        }
    };
    c.min = bound(raw_min, "min")?;
    c.max = bound(raw_max, "max")?;
    let order = match (&c.min, &c.max) {
        (Some(Bound::Number(a)), Some(Bound::Number(b))) => a > b,
        (Some(Bound::Time(a)), Some(Bound::Time(b))) => a > b,
        _ => false,
    };
    if order {
        return Err(err("min is above max".into()));
    }
    if c.kind == RuleType::Enum && c.values.is_empty() {
        return Err(err("an enum needs values = [...]".into()));
    }
    if c.kind != RuleType::Enum && !c.values.is_empty() {
        return Err(err("values applies to enum columns only".into()));
    }
    if let Some(d) = &c.default
        && let Some(why) = c.broken_by(d)
    {
        return Err(err(format!("default {d:?} breaks its own rules: {why}")));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FULL: &str = r#"
version = 2
strict = true
[columns]
id = "integer"
[columns.email]
type = "text"
unique = true
required = true
pattern = "[^@ ]+@[^@ ]+"
max_length = 30
[columns.age]
type = "integer"
min = 0
max = 150
[columns.status]
type = "enum"
values = ["active", "inactive"]
default = "active"
[columns.born]
type = "date"
min = "1900-01-01"
[columns.seen]
type = "datetime"
[columns.vip]
type = "boolean"
"#;

    fn header() -> Vec<String> {
        ["id", "email", "age", "status", "born", "seen", "vip"]
            .map(String::from)
            .to_vec()
    }

    fn row(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn errors_name_the_line_that_declares_the_key() {
        let header = ["id".to_string(), "price".to_string()];
        for (text, says) in [
            (
                "version = 1\n[columns.id]\ntype = \"integer\"\n[columns.price]\ntype = \"real\"\nmin = 5\nmax = 1\n",
                "line 4: column \"price\": min is above max",
            ),
            (
                "[columns]\nid = \"integer\"\nprice = \"money\"\n",
                "line 3: column \"price\": unknown type",
            ),
            ("\nstrict = 3\n", "line 2: strict must be true or false"),
            (
                "[columns.id]\ntype = \"integer\"\n\n[columns.\"nope\"]\ntype = \"text\"\n",
                "line 4: column \"nope\" is not in the table",
            ),
        ] {
            let e = Rules::parse(text, "t", Some(&header))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn every_rule_is_parsed_and_checked() {
        let r = Rules::parse(FULL, "users", Some(&header())).unwrap();
        assert_eq!(r.version, Some(2));
        assert!(r.strict);
        let rows = [
            row(&[
                "1",
                "a@x.io",
                "30",
                "active",
                "1990-02-28",
                "2024-01-01T10:00:00Z",
                "true",
            ]),
            row(&["2", "b@x.io", "", "inactive", "", "2024-01-01 10:00", "0"]),
            row(&[
                "3",
                "a@x.io",
                "200",
                "gone",
                "1800-01-01",
                "2024-13-01T00:00",
                "maybe",
            ]),
            row(&["4", "", "x", "active", "2023-02-29", "", ""]),
            row(&["5", "no at sign", "-1", "active", "", "", ""]),
        ];
        let records: Vec<(usize, &[String])> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 2, r.as_slice()))
            .collect();
        let v = r.check_table(&header(), records.clone(), 100);
        let said: Vec<String> = v.iter().map(|v| v.to_string()).collect();
        let expect = [
            "line 4, column email: unique: also on line 2 (\"a@x.io\")",
            "line 4, column age: max: above 150 (\"200\")",
            "line 4, column status: enum: not one of active, inactive (\"gone\")",
            "line 4, column born: min: below 1900-01-01 (\"1800-01-01\")",
            "line 4, column seen: type: not datetime (\"2024-13-01T00:00\")",
            "line 4, column vip: type: not boolean (\"maybe\")",
            "line 5, column email: required: empty (\"\")",
            "line 5, column age: type: not integer (\"x\")",
            "line 5, column born: type: not date (\"2023-02-29\")",
            "line 6, column email: pattern: does not match [^@ ]+@[^@ ]+ (\"no at sign\")",
            "line 6, column age: min: below 0 (\"-1\")",
        ];
        for e in expect {
            assert!(said.iter().any(|s| s == e), "missing {e}: {said:#?}");
        }
        assert_eq!(said.len(), expect.len(), "{said:#?}");
        // The bound on how many are reported.
        assert_eq!(r.check_table(&header(), records, 3).len(), 3);
        // Strict: a column not declared is refused, on the header's line.
        let mut h = header();
        h.push("extra".into());
        let v = r.check_table(&h, [], 10);
        assert_eq!(
            v[0].to_string(),
            "line 1, column extra: strict: not declared in schema.toml (\"extra\")"
        );
    }

    #[test]
    fn a_schema_that_contradicts_itself_is_refused_with_the_reason() {
        let h = header();
        for (text, says) in [
            (
                "[columns.age]\ntype = \"integer\"\nmin = 5\nmax = 1\n",
                "min is above max",
            ),
            (
                "[columns.status]\ntype = \"enum\"\nvalues = [\"a\"]\ndefault = \"b\"\n",
                "breaks its own rules",
            ),
            ("[columns.email]\npattern = \"(\"\n", "does not compile"),
            (
                "[columns.email]\nmin = 3\n",
                "applies to integer, real, date and datetime",
            ),
            ("[columns.status]\ntype = \"enum\"\n", "needs values"),
            ("[columns.nope]\ntype = \"text\"\n", "is not in the table"),
            (
                "[columns.email]\nprimary_key = true\n",
                "the key is the table's first column",
            ),
            ("[columns.email]\nfoo = 1\n", "unknown rule"),
            ("[columns]\nage = \"money\"\n", "unknown type"),
            ("stricter = true\n", "unknown key"),
            (
                "[columns.born]\ntype = \"date\"\nmax = \"yesterday\"\n",
                "is not a date",
            ),
        ] {
            let e = Rules::parse(text, "users", Some(&h))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let long = format!(
            "[columns.email]\npattern = \"{}\"\n",
            "a".repeat(MAX_PATTERN_BYTES + 1)
        );
        assert!(Rules::parse(&long, "users", Some(&h)).is_err());
        // A pattern that would compile to a huge automaton is refused, not run.
        let huge = "[columns.email]\npattern = \"(\\\\w{100}){100}\"\n";
        assert!(Rules::parse(huge, "users", Some(&h)).is_err());
    }

    #[test]
    fn dates_and_times_are_checked_as_calendars_do() {
        for ok in ["2024-02-29", "2000-02-29", "1999-12-31"] {
            assert!(is_date(ok), "{ok}");
        }
        for no in [
            "1900-02-29",
            "2024-04-31",
            "2024-1-01",
            "20240101",
            "2024-01-01x",
            "２０２４-01-01",
        ] {
            assert!(!is_date(no), "{no}");
        }
        for ok in [
            "2024-01-01T00:00",
            "2024-01-01 23:59:59",
            "2024-01-01T10:00:00.123Z",
            "2024-01-01T10:00:00+02:00",
        ] {
            assert!(is_datetime(ok), "{ok}");
        }
        for no in [
            "2024-01-01",
            "2024-01-01T24:00",
            "2024-01-01T10:60",
            "2024-01-01T10:00:00+2:00",
            "2024-01-01é10:00",
        ] {
            assert!(!is_datetime(no), "{no}");
        }
    }

    /// The reference: each rule said the plainest way, one value at a time.
    fn reference(r: &Rules, header: &[String], rows: &[Vec<String>]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (n, fields) in rows.iter().enumerate() {
            let line = n + 2;
            for (i, name) in header.iter().enumerate() {
                let Some(c) = r.column(name) else { continue };
                let v = fields[i].as_str();
                let broken = if v.is_empty() {
                    c.required || c.primary_key
                } else {
                    let typed = match c.kind {
                        RuleType::Integer => v.parse::<i64>().is_ok() && !v.contains(['_', ' ']),
                        RuleType::Real => v.parse::<f64>().is_ok_and(|x| x.is_finite()),
                        RuleType::Boolean => {
                            ["true", "false", "1", "0"].contains(&v.to_lowercase().as_str())
                        }
                        _ => true,
                    };
                    let listed = c.kind != RuleType::Enum || c.values.iter().any(|x| x == v);
                    let short = c.max_length.is_none_or(|m| v.chars().count() <= m);
                    let number = v.parse::<f64>().ok();
                    let low = match (&c.min, number) {
                        (Some(Bound::Number(m)), Some(x)) => x < *m,
                        _ => false,
                    };
                    let high = match (&c.max, number) {
                        (Some(Bound::Number(m)), Some(x)) => x > *m,
                        _ => false,
                    };
                    !typed || !listed || !short || low || high
                };
                let dup = (c.unique || c.primary_key)
                    && !v.is_empty()
                    && rows[..n].iter().any(|earlier| earlier[i] == v);
                if broken {
                    out.push((line, name.clone()));
                }
                if dup {
                    out.push((line, name.clone()));
                }
            }
        }
        out.sort();
        out
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            (-5i64..200).prop_map(|n| n.to_string()),
            (-5.0f64..200.0).prop_map(|x| format!("{x:.2}")),
            prop::sample::select(vec![
                "true", "FALSE", "1", "0", "yes", "a", "b", "c", "abcdef", "1e3", "+7", "x1"
            ])
            .prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn the_checker_agrees_with_a_plain_reference(
            kinds in prop::collection::vec(0usize..5, 3),
            unique in prop::collection::vec(any::<bool>(), 3),
            required in prop::collection::vec(any::<bool>(), 3),
            bounds in prop::collection::vec(prop::option::of((-2i64..50, 0i64..150)), 3),
            max_len in prop::collection::vec(prop::option::of(0usize..6), 3),
            rows in prop::collection::vec(prop::collection::vec(value(), 3), 0..25),
        ) {
            let header: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
            let mut text = String::new();
            for (i, name) in header.iter().enumerate() {
                let kind = ["integer", "real", "text", "boolean", "enum"][kinds[i]];
                text.push_str(&format!("[columns.{name}]\ntype = \"{kind}\"\n"));
                if kind == "enum" {
                    text.push_str("values = [\"a\", \"b\", \"1\"]\n");
                }
                text.push_str(&format!("unique = {}\nrequired = {}\n", unique[i], required[i]));
                if let (Some((lo, span)), true) = (bounds[i], kind == "integer" || kind == "real") {
                    text.push_str(&format!("min = {lo}\nmax = {}\n", lo + span));
                }
                if let Some(m) = max_len[i] {
                    text.push_str(&format!("max_length = {m}\n"));
                }
            }
            let rules = Rules::parse(&text, "t", Some(&header)).unwrap();
            let records: Vec<(usize, &[String])> =
                rows.iter().enumerate().map(|(i, r)| (i + 2, r.as_slice())).collect();
            let mut got: Vec<(usize, String)> = rules
                .check_table(&header, records, usize::MAX)
                .into_iter()
                .map(|v| (v.line, v.column))
                .collect();
            got.sort();
            prop_assert_eq!(got, reference(&rules, &header, &rows));
        }
    }
}
