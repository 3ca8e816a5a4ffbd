//! A table version as typed rows, with column types inferred from the data
//! (docs/QUERY.md, "Types"): an empty field is NULL; a column is INTEGER
//! when every other value is a plain integer that fits 64 bits, REAL when
//! every value is a plain decimal number, else TEXT. "Plain" is strict
//! (`-?(0|[1-9][0-9]*)`, optionally `.digits` and an exponent): `007`,
//! `+5`, ` 12`, `1.`, `inf` stay text, in ReedQL and in the SQLite load the
//! differential test uses alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use super::error::QueryError;
use super::value::{FastMap, Type, Value};
use crate::storage::ColumnType;
use crate::storage::csv;

/// One version of a table, parsed.
#[derive(Debug)]
pub struct TypedTable {
    pub columns: Vec<String>,
    /// `None`: no value in the column (every field empty): untyped.
    pub types: Vec<Option<Type>>,
    /// Every row's values, row after row in one allocation (a scan reads
    /// memory in order instead of chasing a pointer per row).
    cells: Vec<Value>,
    len: usize,
    /// Hash index per column (value -> row numbers, NULLs left out), built
    /// the first time a query looks a value up in that column: equality
    /// filters and join keys. A version never changes, so neither do they.
    indexes: Vec<OnceLock<ColumnIndex>>,
    /// Dictionary codes per column, built the first time a query groups by
    /// it; `None` when the column has too many distinct values.
    dicts: Vec<OnceLock<Option<Dict>>>,
}

/// A hash index of a column: the first row of each value, and for each row
/// the next row with the same value (`NO_ROW` ends a chain), so a lookup is
/// one probe and rows come out in table order.
#[derive(Debug)]
struct ColumnIndex {
    first: FastMap<Value, u32>,
    next: Vec<u32>,
}

const NO_ROW: u32 = u32::MAX;

/// The rows of one value in an index, in table order.
pub struct Matches<'a> {
    next: &'a [u32],
    cur: u32,
}

impl Iterator for Matches<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.cur == NO_ROW {
            return None;
        }
        let row = self.cur;
        self.cur = self.next.get(row as usize).copied().unwrap_or(NO_ROW);
        Some(row)
    }
}

/// A column as codes into its distinct values (NULL is one of them), so
/// grouping by it is an array lookup instead of hashing every row.
#[derive(Debug)]
pub struct Dict {
    pub codes: Vec<u32>,
    pub values: Vec<Value>,
}

/// Most distinct values a dictionary holds.
const MAX_DICT: usize = 4096;

fn is_plain_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s.parse::<i64>().is_ok()
}

fn is_plain_number(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let int_ok = !int.is_empty()
        && int.bytes().all(|c| c.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()));
    let exp_ok = exponent.is_none_or(|e| {
        let d = e.strip_prefix(['+', '-']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    });
    int_ok && frac_ok && exp_ok && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The type of a column from its non-empty values.
pub fn infer<'a>(values: impl Iterator<Item = &'a str>) -> Option<Type> {
    let mut ty = None;
    for v in values.filter(|v| !v.is_empty()) {
        ty = match ty {
            None | Some(Type::Integer) if is_plain_integer(v) => Some(Type::Integer),
            None | Some(Type::Integer) | Some(Type::Real) if is_plain_number(v) => Some(Type::Real),
            _ => return Some(Type::Text),
        };
    }
    ty
}

impl TypedTable {
    /// Parses a table's content (CSV with a header; empty: a table without
    /// columns or rows).
    pub fn parse(content: &[u8], delim: u8) -> Result<TypedTable, QueryError> {
        Self::parse_declared(content, delim, &BTreeMap::new())
    }

    /// Parses a table's content; a column `declared` names (from
    /// `schema.toml`) gets that type with SQLite's affinity instead of an
    /// inferred one.
    pub fn parse_declared(
        content: &[u8],
        delim: u8,
        declared: &BTreeMap<String, ColumnType>,
    ) -> Result<TypedTable, QueryError> {
        if content.is_empty() {
            return Ok(TypedTable {
                columns: Vec::new(),
                types: Vec::new(),
                cells: Vec::new(),
                len: 0,
                indexes: Vec::new(),
                dicts: Vec::new(),
            });
        }
        // One pass over the bytes: every field, borrowed unless quoted. The
        // content is a stored version, validated when it was committed.
        let mut columns: Vec<String> = Vec::new();
        let mut fields = csv::fields(content, delim);
        for (f, last) in fields.by_ref() {
            columns.push(f.into_owned());
            if last {
                break;
            }
        }
        let width = columns.len();
        let mut flat: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        let mut in_row = 0;
        for (f, last) in fields {
            if in_row < width {
                flat.push(f);
            }
            in_row += 1;
            if last {
                // A short record (never stored, but cheap to tolerate) is
                // padded with empty fields.
                flat.extend((in_row..width).map(|_| std::borrow::Cow::Borrowed("")));
                in_row = 0;
            }
        }
        let len = flat.len() / width.max(1);
        flat.truncate(len * width);
        let declared: Vec<Option<Type>> = columns
            .iter()
            .map(|c| {
                declared.get(c).map(|t| match t {
                    ColumnType::Integer => Type::Integer,
                    ColumnType::Real => Type::Real,
                    ColumnType::Text => Type::Text,
                })
            })
            .collect();
        let types: Vec<Option<Type>> = (0..width)
            .map(|c| {
                declared[c]
                    .or_else(|| infer(flat.iter().skip(c).step_by(width).map(|f| f.as_ref())))
            })
            .collect();
        let cells: Vec<Value> = flat
            .iter()
            .enumerate()
            .map(|(i, f)| match declared[i % width] {
                Some(ty) => Value::from_declared(f, ty),
                None => Value::from_field(f, types[i % width].unwrap_or(Type::Text)),
            })
            .collect();
        Ok(TypedTable {
            indexes: (0..width).map(|_| OnceLock::new()).collect(),
            dicts: (0..width).map(|_| OnceLock::new()).collect(),
            columns,
            types,
            cells,
            len,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `i`'s values.
    pub fn row(&self, i: usize) -> &[Value] {
        let w = self.columns.len();
        self.cells.get(i * w..(i + 1) * w).unwrap_or(&[])
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = &[Value]> {
        (0..self.len).map(|i| self.row(i))
    }

    /// Row numbers whose column `col` equals `key` (SQL equality: 1 and 1.0
    /// are one key), through the column's index, in table order.
    pub fn lookup(&self, col: usize, key: &Value) -> Matches<'_> {
        let Some(cell) = self.indexes.get(col) else {
            return Matches {
                next: &[],
                cur: NO_ROW,
            };
        };
        let index = cell.get_or_init(|| {
            let mut first: FastMap<Value, u32> = FastMap::default();
            let mut next = vec![NO_ROW; self.len];
            // Backwards, so each chain runs in table order.
            for i in (0..self.len).rev() {
                if let Some(v) = self.row(i).get(col).filter(|v| !v.is_null()) {
                    next[i] = first.insert(v.clone(), i as u32).unwrap_or(NO_ROW);
                }
            }
            ColumnIndex { first, next }
        });
        Matches {
            next: &index.next,
            cur: index.first.get(key).copied().unwrap_or(NO_ROW),
        }
    }

    /// The column's dictionary (built on first use), if it has at most
    /// `MAX_DICT` distinct values.
    pub fn dict(&self, col: usize) -> Option<&Dict> {
        self.dicts
            .get(col)?
            .get_or_init(|| {
                let mut codes = Vec::with_capacity(self.len);
                let mut values: Vec<Value> = Vec::new();
                let mut seen: HashMap<&Value, u32> = HashMap::new();
                for r in self.rows() {
                    let v = r.get(col)?;
                    let code = match seen.get(v) {
                        Some(&c) => c,
                        None => {
                            if values.len() == MAX_DICT {
                                return None;
                            }
                            values.push(v.clone());
                            seen.insert(v, values.len() as u32 - 1);
                            values.len() as u32 - 1
                        }
                    };
                    codes.push(code);
                }
                Some(Dict { codes, values })
            })
            .as_ref()
    }
}

/// A shared parsed version.
pub type TableRef = Arc<TypedTable>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_is_strict() {
        assert_eq!(infer(["1", "", "-20"].into_iter()), Some(Type::Integer));
        assert_eq!(infer(["1", "2.5", "1e3"].into_iter()), Some(Type::Real));
        for text in [
            "007", "+5", " 12", "1.", ".5", "inf", "NaN", "1_000", "0x1A",
        ] {
            assert_eq!(infer(["1", text].into_iter()), Some(Type::Text), "{text}");
        }
        assert_eq!(infer(["", ""].into_iter()), None);
        assert_eq!(infer(["9223372036854775808"].into_iter()), Some(Type::Real));
    }
}
