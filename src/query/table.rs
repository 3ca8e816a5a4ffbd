//! A table version as typed rows, with column types inferred from the data
//! (docs/QUERY.md, "Types"): an empty field is NULL; a column is INTEGER
//! when every other value is a plain integer that fits 64 bits, REAL when
//! every value is a plain decimal number, else TEXT. "Plain" is strict
//! (`-?(0|[1-9][0-9]*)`, optionally `.digits` and an exponent): `007`,
//! `+5`, ` 12`, `1.`, `inf` stay text, in ReedQL and in the SQLite load the
//! differential test uses alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

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
    /// Hash index per column (value -> row numbers, NULLs left out), when
    /// built: `index.rs` decides which and drops them to bound memory. A
    /// version never changes, so an index never needs updating.
    indexes: Vec<Mutex<Option<Arc<ColumnIndex>>>>,
    /// Dictionary codes per column, built the first time a query groups by
    /// it; `None` when the column has too many distinct values.
    dicts: Vec<OnceLock<Option<Dict>>>,
    /// Numeric copies of columns, built the first time a query aggregates
    /// one; `None` when the column holds text.
    numbers: Vec<OnceLock<Option<Numbers>>>,
    /// Types `schema.toml` declares (None: inferred).
    declared: Vec<Option<Type>>,
    /// Value classes per column (what inference decided from).
    classes: Vec<Classes>,
    /// Bytes of the header record.
    header_len: usize,
    /// Where each row's record starts in the content (for `derive`).
    starts: Vec<usize>,
}

/// An index of a column: the first row of each value, and for each row the
/// next row with the same value (`NO_ROW` ends a chain), so a lookup is one
/// probe and rows come out in table order. The first rows are a hash map,
/// or, for a column of integers whose range is at most twice its rows (ids,
/// keys), an array indexed by value: a probe is then one array read in a
/// few hundred kilobytes instead of a hash probe in megabytes.
#[derive(Debug)]
pub struct ColumnIndex {
    first: FirstRows,
    next: Vec<u32>,
    distinct: usize,
}

#[derive(Debug)]
enum FirstRows {
    Hash(FastMap<Value, u32>),
    Dense { min: i64, rows: Vec<u32> },
}

impl ColumnIndex {
    /// Builds the index of column `col` of `t`.
    pub fn build(t: &TypedTable, col: usize) -> ColumnIndex {
        let mut next = vec![NO_ROW; t.len];
        let cell = |i: usize| t.row(i).get(col).filter(|v| !v.is_null());
        // Integers only, in a range at most twice the rows: dense.
        let mut range: Option<(i64, i64)> = Some((i64::MAX, i64::MIN));
        for i in 0..t.len {
            match (cell(i), &mut range) {
                (None, _) => {}
                (Some(Value::Int(v)), Some((lo, hi))) => {
                    *lo = (*lo).min(*v);
                    *hi = (*hi).max(*v);
                }
                _ => {
                    range = None;
                    break;
                }
            }
        }
        let dense = range.filter(|(lo, hi)| lo <= hi).and_then(|(lo, hi)| {
            let span = hi.checked_sub(lo)?.checked_add(1)?;
            (span as u64 <= 2 * t.len as u64 + 16).then_some((lo, span as usize))
        });
        let mut distinct = 0;
        // Backwards, so each chain runs in table order.
        let first = match dense {
            Some((min, span)) => {
                let mut rows = vec![NO_ROW; span];
                for i in (0..t.len).rev() {
                    if let Some(Value::Int(v)) = cell(i) {
                        let slot = &mut rows[(v - min) as usize];
                        if *slot == NO_ROW {
                            distinct += 1;
                        }
                        next[i] = std::mem::replace(slot, i as u32);
                    }
                }
                FirstRows::Dense { min, rows }
            }
            None => {
                let mut first: FastMap<Value, u32> = FastMap::default();
                for i in (0..t.len).rev() {
                    if let Some(v) = cell(i) {
                        next[i] = first.insert(v.clone(), i as u32).unwrap_or(NO_ROW);
                    }
                }
                distinct = first.len();
                FirstRows::Hash(first)
            }
        };
        ColumnIndex {
            first,
            next,
            distinct,
        }
    }

    /// Row numbers whose value equals `key` (SQL equality: 1 and 1.0 are
    /// one key), in table order.
    pub fn lookup(&self, key: &Value) -> Matches<'_> {
        let cur = match &self.first {
            FirstRows::Hash(first) => first.get(key).copied(),
            FirstRows::Dense { min, rows } => {
                let int = match key {
                    Value::Int(i) => Some(*i),
                    Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.2e18 => Some(*r as i64),
                    _ => None,
                };
                int.and_then(|i| i.checked_sub(*min))
                    .and_then(|d| usize::try_from(d).ok())
                    .and_then(|d| rows.get(d).copied())
            }
        };
        Matches {
            next: &self.next,
            cur: cur.unwrap_or(NO_ROW),
        }
    }

    /// Approximate memory: map entries (a value shares its text with the
    /// table) or the array, and the row chain.
    pub fn bytes(&self) -> u64 {
        let first = match &self.first {
            FirstRows::Hash(f) => f.capacity() * 40,
            FirstRows::Dense { rows, .. } => rows.len() * 4,
        };
        (first + self.next.len() * 4) as u64
    }

    /// Distinct values.
    pub fn distinct(&self) -> usize {
        self.distinct
    }
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

/// A numeric column as a dense array (aggregates read it at memory speed
/// instead of one row's cells at a time): each value as f64, and whether
/// it is present (not NULL).
#[derive(Debug)]
pub struct Numbers {
    pub values: Vec<f64>,
    pub present: Vec<bool>,
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

/// How many non-empty values of a column are plain integers, other plain
/// numbers, and anything else: the column's inferred type follows, and a
/// new version updates the counts instead of looking at every value again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes {
    ints: u32,
    reals: u32,
    texts: u32,
}

impl Classes {
    fn add(&mut self, v: &str, sign: i32) {
        if v.is_empty() {
            return;
        }
        let c = if is_plain_integer(v) {
            &mut self.ints
        } else if is_plain_number(v) {
            &mut self.reals
        } else {
            &mut self.texts
        };
        *c = c.wrapping_add_signed(sign);
    }

    fn ty(&self) -> Option<Type> {
        if self.texts > 0 {
            Some(Type::Text)
        } else if self.reals > 0 {
            Some(Type::Real)
        } else if self.ints > 0 {
            Some(Type::Integer)
        } else {
            None
        }
    }
}

/// The type of a column from its non-empty values.
pub fn infer<'a>(values: impl Iterator<Item = &'a str>) -> Option<Type> {
    let mut c = Classes::default();
    for v in values {
        c.add(v, 1);
    }
    c.ty()
}

/// Fields grouped into records of `width`: a short record is padded with
/// empty fields, extra fields are dropped.
fn group_records<'a>(
    fields: impl Iterator<Item = (std::borrow::Cow<'a, str>, bool)>,
    width: usize,
) -> Vec<std::borrow::Cow<'a, str>> {
    let mut flat: Vec<std::borrow::Cow<'a, str>> = Vec::new();
    let mut in_row = 0;
    for (f, last) in fields {
        if in_row < width {
            flat.push(f);
        }
        in_row += 1;
        if last {
            flat.extend((in_row..width).map(|_| std::borrow::Cow::Borrowed("")));
            in_row = 0;
        }
    }
    let len = flat.len() / width.max(1);
    flat.truncate(len * width);
    flat
}

/// Typed cells of `flat` fields: declared types with SQLite's affinity,
/// else the inferred ones.
fn typed_cells(
    flat: &[std::borrow::Cow<'_, str>],
    declared: &[Option<Type>],
    types: &[Option<Type>],
) -> Vec<Value> {
    let width = types.len().max(1);
    // Texts of a column with few distinct values share one allocation per
    // value: less memory, and a scan or grouping that reads them finds the
    // bytes in cache instead of one heap block per row. A column that
    // passes `MAX_INTERNED` distinct values stops being interned.
    let mut interned: Vec<Option<FastMap<&str, Value>>> = vec![Some(FastMap::default()); width];
    flat.iter()
        .enumerate()
        .map(|(i, f)| {
            let c = i % width;
            let v = match declared[c] {
                Some(ty) => Value::from_declared(f, ty),
                None => Value::from_field(f, types[c].unwrap_or(Type::Text)),
            };
            let Value::Text(_) = &v else {
                return v;
            };
            let Some(map) = &mut interned[c] else {
                return v;
            };
            if let Some(shared) = map.get(f.as_ref()) {
                return shared.clone();
            }
            if map.len() == MAX_INTERNED {
                interned[c] = None;
                return v;
            }
            map.insert(f.as_ref(), v.clone());
            v
        })
        .collect()
}

/// Distinct texts per column interned by `typed_cells`.
const MAX_INTERNED: usize = 1024;

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
                numbers: Vec::new(),
                declared: Vec::new(),
                classes: Vec::new(),
                header_len: 0,
                starts: Vec::new(),
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
        let flat = group_records(fields, width);
        let header_len = csv::record_end(content, 0);
        let starts = csv::record_starts(content, header_len);
        let len = flat.len() / width.max(1);
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
        let mut classes = vec![Classes::default(); width];
        for (i, f) in flat.iter().enumerate() {
            classes[i % width.max(1)].add(f, 1);
        }
        let types: Vec<Option<Type>> = (0..width)
            .map(|c| declared[c].or_else(|| classes[c].ty()))
            .collect();
        let cells = typed_cells(&flat, &declared, &types);
        Ok(TypedTable {
            indexes: (0..width).map(|_| Mutex::new(None)).collect(),
            dicts: (0..width).map(|_| OnceLock::new()).collect(),
            numbers: (0..width).map(|_| OnceLock::new()).collect(),
            columns,
            types,
            cells,
            len,
            declared,
            classes,
            header_len,
            starts,
        })
    }

    /// The next version of this table, from this version's content `old`
    /// and the new content `new`, reusing every row outside the region the
    /// commit changed: cost in proportion to the change, not the table.
    /// None when that does not apply (the header changed, a column's
    /// inferred type changed, a record count that does not add up): parse
    /// `new` instead.
    ///
    /// Why the region's ends are record boundaries in `new` too: its start
    /// follows a newline in the common prefix, where both contents have
    /// the same quote state. Its end follows a newline in the common
    /// suffix; were `new` inside quotes there, the suffix (whose quotes
    /// balance, as it is whole records of `old`) would leave `new` inside
    /// quotes at its end, and a stored version is valid CSV.
    pub fn derive(&self, old: &[u8], new: &[u8], delim: u8) -> Option<TypedTable> {
        let width = self.columns.len();
        if width == 0 || self.starts.len() != self.len {
            return None;
        }
        let (p, s) = csv::common_ends(old, new);
        // The header is the same, and ends its line (else rows would be
        // appended to it).
        if p < self.header_len || !old[..self.header_len].ends_with(b"\n") {
            return None;
        }
        // Rows [first, last) are the ones the change touches: from the row
        // holding the first differing byte to the row holding the first
        // byte of the common suffix (so its end's newline is in the suffix).
        let first = self.starts.partition_point(|&st| st <= p).saturating_sub(1);
        let old_end = old.len() - s;
        let last = if old_end >= old.len() {
            self.len
        } else {
            self.starts.partition_point(|&st| st <= old_end)
        };
        let start = if self.len == 0 {
            self.header_len
        } else {
            self.starts[first]
        };
        let end = self.starts.get(last).copied().unwrap_or(old.len());
        let delta = new.len() as i64 - old.len() as i64;
        let new_end = (end as i64 + delta) as usize;
        if start > end || start > new_end || new_end > new.len() {
            return None;
        }
        let (old_mid, new_mid) = (&old[start..end], &new[start..new_end]);
        let removed = group_records(csv::fields(old_mid, delim), width);
        let added = group_records(csv::fields(new_mid, delim), width);
        let (removed_rows, added_rows) = (removed.len() / width, added.len() / width);
        if removed_rows != last - first {
            return None;
        }
        let mut classes = self.classes.clone();
        for (i, f) in removed.iter().enumerate() {
            classes[i % width].add(f, -1);
        }
        for (i, f) in added.iter().enumerate() {
            classes[i % width].add(f, 1);
        }
        let types: Vec<Option<Type>> = (0..width)
            .map(|c| self.declared[c].or_else(|| classes[c].ty()))
            .collect();
        if types != self.types {
            return None;
        }
        let mut cells = Vec::with_capacity((self.len - removed_rows + added_rows) * width);
        cells.extend_from_slice(&self.cells[..first * width]);
        cells.extend(typed_cells(&added, &self.declared, &types));
        cells.extend_from_slice(&self.cells[last * width..]);
        let mut starts = Vec::with_capacity(self.len - removed_rows + added_rows);
        starts.extend_from_slice(&self.starts[..first]);
        starts.extend(csv::record_starts(&new[..new_end], start));
        starts.extend(
            self.starts[last..]
                .iter()
                .map(|&st| (st as i64 + delta) as usize),
        );
        if starts.len() != self.len - removed_rows + added_rows {
            return None;
        }
        Some(TypedTable {
            indexes: (0..width).map(|_| Mutex::new(None)).collect(),
            dicts: (0..width).map(|_| OnceLock::new()).collect(),
            numbers: (0..width).map(|_| OnceLock::new()).collect(),
            columns: self.columns.clone(),
            types,
            len: self.len - removed_rows + added_rows,
            cells,
            declared: self.declared.clone(),
            classes,
            header_len: self.header_len,
            starts,
        })
    }

    /// Bytes of the header record in the parsed content.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Byte range of row `i`'s record in the parsed content (`content_len`:
    /// that content's length, where the last record ends).
    pub fn row_range(&self, i: usize, content_len: usize) -> std::ops::Range<usize> {
        let start = self.starts.get(i).copied().unwrap_or(content_len);
        start..self.starts.get(i + 1).copied().unwrap_or(content_len)
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

    /// Column `col`'s index, if built.
    pub fn index(&self, col: usize) -> Option<Arc<ColumnIndex>> {
        self.indexes
            .get(col)?
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Column `col`'s index, built now if it was not; with whether it was built now.
    pub fn build_index(&self, col: usize) -> Option<(Arc<ColumnIndex>, bool)> {
        let mut slot = self
            .indexes
            .get(col)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(ix) = &*slot {
            return Some((Arc::clone(ix), false));
        }
        let ix = Arc::new(ColumnIndex::build(self, col));
        *slot = Some(Arc::clone(&ix));
        Some((ix, true))
    }

    /// Drops column `col`'s index (queries running with it keep their copy).
    pub fn drop_index(&self, col: usize) {
        if let Some(slot) = self.indexes.get(col) {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Approximate memory of the parsed rows (not indices).
    pub fn bytes(&self) -> u64 {
        let text: usize = self
            .cells
            .iter()
            .map(|v| match v {
                Value::Text(t) => t.len() + 16,
                _ => 0,
            })
            .sum();
        (self.cells.len() * std::mem::size_of::<Value>() + text) as u64
    }

    /// The column as numbers (built on first use), if it holds no text.
    pub fn numbers(&self, col: usize) -> Option<&Numbers> {
        self.numbers
            .get(col)?
            .get_or_init(|| {
                let mut values = Vec::with_capacity(self.len);
                let mut present = Vec::with_capacity(self.len);
                for r in self.rows() {
                    let (v, p) = match r.get(col)? {
                        Value::Null => (0.0, false),
                        Value::Int(i) => (*i as f64, true),
                        Value::Real(f) => (*f, true),
                        Value::Text(_) => return None,
                    };
                    values.push(v);
                    present.push(p);
                }
                Some(Numbers { values, present })
            })
            .as_ref()
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
    fn dense_and_hashed_indices_find_the_same_rows() {
        let dense = TypedTable::parse(b"id|v\n3|a\n5|b\n3|c\n4|\n|d\n", b'|').unwrap();
        let sparse = TypedTable::parse(b"id|v\n3|a\n5000000|b\n3|c\n4|\n|d\n", b'|').unwrap();
        let rows =
            |t: &TypedTable, k: Value| ColumnIndex::build(t, 0).lookup(&k).collect::<Vec<_>>();
        for t in [&dense, &sparse] {
            assert_eq!(rows(t, Value::Int(3)), [0, 2]);
            assert_eq!(rows(t, Value::Real(3.0)), [0, 2], "1 = 1.0");
            assert_eq!(rows(t, Value::Int(4)), [3]);
            assert!(rows(t, Value::Int(6)).is_empty());
            assert!(rows(t, Value::Int(-9)).is_empty());
            assert!(rows(t, Value::Real(3.5)).is_empty());
            assert!(
                rows(t, Value::text("3")).is_empty(),
                "text never equals a stored integer"
            );
            assert!(rows(t, Value::Null).is_empty());
            assert_eq!(ColumnIndex::build(t, 0).distinct(), 3);
        }
        assert!(matches!(
            ColumnIndex::build(&dense, 0).first,
            FirstRows::Dense { .. }
        ));
        assert!(matches!(
            ColumnIndex::build(&sparse, 0).first,
            FirstRows::Hash(_)
        ));
        // A text column is hashed.
        assert_eq!(
            ColumnIndex::build(&dense, 1)
                .lookup(&Value::text("c"))
                .collect::<Vec<_>>(),
            [2]
        );
    }

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

#[cfg(test)]
mod derive_tests {
    use super::*;
    use proptest::prelude::*;

    const VALUES: [&str; 11] = [
        "1",
        "22",
        "-3",
        "2.5",
        "x",
        "",
        "007",
        "1e3",
        "\"q|\"\"\n\"",
        "\"\n\"",
        "\"\"",
    ];

    fn content(rows: &[(u32, usize, usize)], trailing_newline: bool) -> Vec<u8> {
        let mut s = String::from("id|a|b\n");
        for (k, a, b) in rows {
            s.push_str(&format!("{k}|{}|{}\n", VALUES[*a], VALUES[*b]));
        }
        if !trailing_newline && !rows.is_empty() {
            s.pop();
        }
        s.into_bytes()
    }

    /// Cells as comparable text: type and value.
    fn shape(t: &TypedTable) -> (Vec<String>, Vec<Option<Type>>, Vec<String>) {
        let cells = t.rows().flatten().map(|v| format!("{v:?}")).collect();
        (t.columns.clone(), t.types.clone(), cells)
    }

    #[test]
    fn a_changed_cell_reuses_the_rest() {
        // Quoted fields with newlines and delimiters in column b.
        let rows: Vec<_> = (0..50)
            .map(|k| (k, (k % 3) as usize, 8 + (k % 2) as usize))
            .collect();
        let old = content(&rows, true);
        let mut changed = rows.clone();
        changed[20].1 = 1;
        changed.remove(30);
        changed.insert(40, (99, 2, 0));
        let new = content(&changed, true);
        let t = TypedTable::parse(&old, b'|').unwrap();
        let d = t.derive(&old, &new, b'|').expect("applies");
        assert_eq!(shape(&d), shape(&TypedTable::parse(&new, b'|').unwrap()));
        // A text value in an integer column changes its type: a full parse.
        let mut typed = rows.clone();
        typed[5].1 = 4;
        assert!(t.derive(&old, &content(&typed, true), b'|').is_none());
    }

    proptest! {
        #[test]
        fn derive_equals_a_full_parse(
            rows in proptest::collection::vec((0u32..1000, 0usize..11, 0usize..11), 0..30),
            edits in proptest::collection::vec((0usize..40, 0usize..11, 0u8..4), 1..6),
            old_nl in any::<bool>(),
            new_nl in any::<bool>(),
        ) {
            let mut rows: Vec<(u32, usize, usize)> = rows;
            let old = content(&rows, old_nl);
            for (at, v, kind) in edits {
                let at = at % (rows.len() + 1);
                match kind {
                    0 if at < rows.len() => rows[at].1 = v,
                    1 if at < rows.len() => { rows.remove(at); }
                    2 => rows.insert(at, (5000 + at as u32, v, v)),
                    _ => rows.push((7000, v, 0)),
                }
            }
            let new = content(&rows, new_nl);
            let t = TypedTable::parse(&old, b'|').unwrap();
            if let Some(d) = t.derive(&old, &new, b'|') {
                prop_assert_eq!(shape(&d), shape(&TypedTable::parse(&new, b'|').unwrap()));
            }
        }
    }
}
