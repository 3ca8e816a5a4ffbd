//! Result formats: CSV (with a header, the database's delimiter, RFC 4180
//! quoting, NULL as an empty field), JSON (an array of objects; numbers as
//! numbers, NULL as null) and an aligned table for terminals.

use std::io::Write;

use super::ResultSet;
use super::value::{Value, ValueRef, with_refs};

use crate::storage::csv::{needs_quotes, quote_field as csv_field};

pub fn csv(r: &ResultSet, delim: u8) -> String {
    render(r, Format::Csv(delim))
}

pub use crate::storage::feed::json_string;

pub fn json(r: &ResultSet) -> String {
    render(r, Format::Json)
}

/// A format a result can be written in row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// With the given delimiter.
    Csv(u8),
    Json,
}

fn render(r: &ResultSet, format: Format) -> String {
    let mut out = Vec::new();
    let mut w = RowWriter::new(&mut out, format, &r.columns);
    // Writing to a Vec cannot fail.
    let _ = w.start();
    for row in &r.rows {
        let _ = w.row(row);
    }
    let _ = w.finish();
    String::from_utf8(out).unwrap_or_default()
}

/// Writes a result row by row (for results streamed rather than held).
pub struct RowWriter<'w> {
    out: &'w mut dyn Write,
    format: Format,
    columns: Vec<String>,
    rows: u64,
    line: String,
}

impl<'w> RowWriter<'w> {
    pub fn new(out: &'w mut dyn Write, format: Format, columns: &[String]) -> RowWriter<'w> {
        RowWriter {
            out,
            format,
            columns: columns.to_vec(),
            rows: 0,
            line: String::new(),
        }
    }

    /// The header (CSV) or the opening bracket (JSON).
    pub fn start(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Csv(delim) => {
                let d = (delim as char).to_string();
                let header = self
                    .columns
                    .iter()
                    .map(|c| csv_field(c, delim))
                    .collect::<Vec<_>>()
                    .join(&d);
                writeln!(self.out, "{header}")
            }
            Format::Json => write!(self.out, "["),
        }
    }

    pub fn row(&mut self, row: &[Value]) -> std::io::Result<()> {
        with_refs(row, |refs| self.row_refs(refs))
    }

    /// A row of borrowed cells (a streamed row's columns, read in place).
    pub fn row_refs(&mut self, row: &[ValueRef]) -> std::io::Result<()> {
        self.line.clear();
        match self.format {
            Format::Csv(delim) => {
                use std::fmt::Write as _;
                for (c, v) in row.iter().enumerate() {
                    if c > 0 {
                        self.line.push(delim as char);
                    }
                    // Written in place: no string per cell.
                    match *v {
                        ValueRef::Null => {}
                        ValueRef::Int(i) => {
                            let _ = write!(self.line, "{i}");
                        }
                        ValueRef::Text(t) if !needs_quotes(t, delim) => self.line.push_str(t),
                        ValueRef::Text(t) => self.line.push_str(&csv_field(t, delim)),
                        ValueRef::Real(r) => {
                            self.line
                                .push_str(&csv_field(&Value::Real(r).to_string(), delim));
                        }
                    }
                }
                self.line.push('\n');
            }
            Format::Json => {
                self.line
                    .push_str(if self.rows == 0 { "\n  {" } else { ",\n  {" });
                for (c, v) in row.iter().enumerate() {
                    if c > 0 {
                        self.line.push_str(", ");
                    }
                    let name = self.columns.get(c).map_or("", String::as_str);
                    let value = match *v {
                        ValueRef::Null => "null".to_string(),
                        ValueRef::Int(i) => i.to_string(),
                        ValueRef::Real(f) if f.is_finite() => Value::Real(f).to_string(),
                        ValueRef::Real(_) => "null".to_string(),
                        ValueRef::Text(t) => json_string(t),
                    };
                    self.line
                        .push_str(&format!("{}: {value}", json_string(name)));
                }
                self.line.push('}');
            }
        }
        self.rows += 1;
        self.out.write_all(self.line.as_bytes())
    }

    /// The closing bracket (JSON).
    pub fn finish(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Csv(_) => Ok(()),
            Format::Json if self.rows == 0 => writeln!(self.out, "]"),
            Format::Json => write!(self.out, "\n]\n"),
        }
    }
}

/// Aligned columns for a terminal; NULL shows as `NULL`.
pub fn table(r: &ResultSet) -> String {
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Null => "NULL".to_string(),
                    v => v.to_string().replace('\n', "\\n"),
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |vals: &[String]| {
        vals.iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&r.columns);
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&format!(
        "({} row{})\n",
        r.rows.len(),
        if r.rows.len() == 1 { "" } else { "s" }
    ));
    out
}
