//! Result formats: CSV (with a header, the database's delimiter, RFC 4180
//! quoting, NULL as an empty field), JSON (an array of objects; numbers as
//! numbers, NULL as null) and an aligned table for terminals.

use super::ResultSet;
use super::value::Value;

fn csv_field(v: &str, delim: u8) -> String {
    if v.bytes()
        .any(|c| c == delim || c == b'"' || c == b'\n' || c == b'\r')
    {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

pub fn csv(r: &ResultSet, delim: u8) -> String {
    let d = (delim as char).to_string();
    let mut out = r
        .columns
        .iter()
        .map(|c| csv_field(c, delim))
        .collect::<Vec<_>>()
        .join(&d);
    out.push('\n');
    for row in &r.rows {
        let line = row
            .iter()
            .map(|v| csv_field(&v.to_string(), delim))
            .collect::<Vec<_>>()
            .join(&d);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json(r: &ResultSet) -> String {
    let mut out = String::from("[");
    for (i, row) in r.rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        for (c, v) in row.iter().enumerate() {
            if c > 0 {
                out.push_str(", ");
            }
            let name = r.columns.get(c).map_or("", String::as_str);
            let value = match v {
                Value::Null => "null".to_string(),
                Value::Int(i) => i.to_string(),
                Value::Real(f) if f.is_finite() => v.to_string(),
                Value::Real(_) => "null".to_string(),
                Value::Text(t) => json_string(t),
            };
            out.push_str(&format!("{}: {value}", json_string(name)));
        }
        out.push('}');
    }
    out.push_str(if r.rows.is_empty() { "]\n" } else { "\n]\n" });
    out
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
