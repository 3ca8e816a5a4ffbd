//! A table version as typed rows, with column types inferred from the data
//! (docs/QUERY.md, "Types"): an empty field is NULL; a column is INTEGER
//! when every other value is a plain integer that fits 64 bits, REAL when
//! every value is a plain decimal number, else TEXT. "Plain" is strict
//! (`-?(0|[1-9][0-9]*)`, optionally `.digits` and an exponent): `007`,
//! `+5`, ` 12`, `1.`, `inf` stay text, in ReedQL and in the SQLite load the
//! differential test uses alike.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use super::cells::{Cells, ChunkBytes, Parsed, RowRef, column_fields};
use super::column_index::ColumnIndex;
use super::error::QueryError;
use super::value::{FastMap, Type, Value};
use crate::storage::ColumnType;
use crate::storage::csv;

/// Rows per chunk of a parsed table (a small one in unit tests, so tables
/// of a few dozen rows span several chunks).
#[cfg(not(test))]
pub const CHUNK_ROWS: usize = 1024;
#[cfg(test)]
pub const CHUNK_ROWS: usize = 8;

/// A run of consecutive rows of a parsed version, shared by every version
/// derived from it that did not change those rows (`TypedTable::derive`).
#[derive(Debug)]
pub struct Chunk {
    /// The rows' values, column by column, typed and compact (`Cells`).
    columns: Vec<Cells>,
    /// Where each row's record starts in the content, from where the
    /// chunk's first record starts (so a chunk after a change that moves
    /// bytes is still shared: only its base, per version, moves).
    starts: Vec<usize>,
    /// Approximate memory (`TypedTable::bytes`).
    bytes: u64,
}

impl Chunk {
    /// The chunk of `flat` fields (whole records of `width`, with where
    /// they start in the content), typed by `declared` and `types`, whose
    /// first record starts at `base` and the others at `starts` (from
    /// `base`).
    fn new(
        flat: &[Parsed<'_>],
        width: usize,
        declared: &[Option<Type>],
        types: &[Option<Type>],
        base: usize,
        starts: Vec<usize>,
    ) -> Chunk {
        let columns: Vec<Cells> = (0..width)
            .map(|c| {
                let fields = column_fields(flat, width, c, base);
                Cells::build(&fields, declared[c], types[c])
            })
            .collect();
        let bytes = (columns.iter().map(Cells::bytes).sum::<usize>()
            + starts.capacity() * std::mem::size_of::<usize>()) as u64;
        Chunk {
            columns,
            starts,
            bytes,
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Row `k`, reading texts from `src` (the content from this chunk's
    /// base, in the version that reads it).
    #[inline]
    fn row<'a>(&'a self, k: usize, src: ChunkBytes<'a>) -> RowRef<'a> {
        RowRef::Stored {
            columns: &self.columns,
            k,
            src,
        }
    }
}

/// What a derived version changed of the one it was derived from: rows
/// `[first, first + removed)` became `added` new rows at `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub first: usize,
    pub removed: usize,
    pub added: usize,
}

/// One version of a table, parsed.
#[derive(Debug)]
pub struct TypedTable {
    pub columns: Vec<String>,
    /// `None`: no value in the column (every field empty): untyped.
    pub types: Vec<Option<Type>>,
    /// The rows, in chunks of about `CHUNK_ROWS` (none empty): a new
    /// version shares every chunk its commit did not touch.
    chunks: Vec<Arc<Chunk>>,
    /// Row number of each chunk's first row, then the number of rows.
    firsts: Vec<usize>,
    /// Where each chunk's first record starts in the content.
    offsets: Vec<usize>,
    len: usize,
    /// Whether the record starts are exact (one per row, as parsed): else
    /// `derive` does not apply.
    derivable: bool,
    /// What changed from the version this one was derived from.
    change: Option<Change>,
    /// Hash index per column (value -> row numbers, NULLs left out), when
    /// built: `index.rs` decides which and drops them to bound memory. A
    /// version never changes; a new version's index is derived from the
    /// previous version's (`build_index_from`).
    indexes: Vec<Mutex<Option<Arc<ColumnIndex>>>>,
    /// Dictionary codes per column, built the first time a query groups by
    /// it; `None` when the column has too many distinct values. Per
    /// version (codes are numbered in order of first appearance).
    dicts: Vec<OnceLock<Option<Dict>>>,
    /// Numeric copies of columns, built the first time a query aggregates
    /// one; `None` when the column holds text. Per version (callers read
    /// them as one slice).
    numbers: Vec<OnceLock<Option<Numbers>>>,
    /// Types `schema.toml` declares (None: inferred).
    declared: Vec<Option<Type>>,
    /// Columns `schema.toml` declares unique (or primary_key): indexed at
    /// their first equality lookup.
    unique: Vec<bool>,
    /// Value classes per column (what inference decided from).
    classes: Vec<Classes>,
    /// Bytes of the header record.
    header_len: usize,
    /// The version's content, which text cells point into.
    content: Arc<Vec<u8>>,
    delim: u8,
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
    /// Every value is the cell's exactly (no integer past 2^53 rounded):
    /// comparing these is comparing the cells.
    pub exact: bool,
}

/// Whether an integer is exactly an f64.
fn exact_f64(i: i64) -> bool {
    i.unsigned_abs() <= 1 << 53
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

/// Groups fields into records of `width`, one field at a time: a short
/// record is padded with empty fields, extra fields are dropped. True when
/// the field ended its record.
struct Records {
    width: usize,
    in_row: usize,
}

impl Records {
    fn push<'a>(&mut self, flat: &mut Vec<Parsed<'a>>, field: (Cow<'a, str>, bool, usize)) -> bool {
        let (f, last, at) = field;
        if self.in_row < self.width {
            flat.push((f, Some(at)));
        }
        self.in_row += 1;
        if last {
            flat.extend((self.in_row..self.width).map(|_| (Cow::Borrowed(""), None)));
            self.in_row = 0;
        }
        last
    }
}

/// Every record of `fields` (with where they start, plus `offset`), as
/// `width` fields each; a record cut short at the end is left out.
fn group_records<'a>(
    fields: impl Iterator<Item = (Cow<'a, str>, bool, usize)>,
    width: usize,
    offset: usize,
) -> Vec<Parsed<'a>> {
    let mut flat = Vec::new();
    let mut records = Records { width, in_row: 0 };
    for (f, last, at) in fields {
        records.push(&mut flat, (f, last, at + offset));
    }
    let len = flat.len() / width.max(1);
    flat.truncate(len * width);
    flat
}

/// Rows (`flat` fields, whole records of `width`, with `starts`: absolute
/// record starts, one per row) as chunks: one when they are at most twice
/// `CHUNK_ROWS`, else pieces of even sizes around `CHUNK_ROWS`; each with
/// its base offset.
fn into_chunks(
    flat: &[Parsed<'_>],
    starts: &[usize],
    width: usize,
    declared: &[Option<Type>],
    types: &[Option<Type>],
) -> Vec<(usize, Arc<Chunk>)> {
    let rows = starts.len();
    if rows == 0 || width == 0 {
        return Vec::new();
    }
    let pieces = if rows <= 2 * CHUNK_ROWS {
        1
    } else {
        rows.div_ceil(CHUNK_ROWS)
    };
    let mut out = Vec::with_capacity(pieces);
    for k in 0..pieces {
        let (a, b) = (rows * k / pieces, rows * (k + 1) / pieces);
        let base = starts[a];
        let rel = starts[a..b].iter().map(|&s| s - base).collect();
        let part = &flat[a * width..b * width];
        out.push((
            base,
            Arc::new(Chunk::new(part, width, declared, types, base, rel)),
        ));
    }
    out
}

/// The rows of a content, chunked (`parse_chunks`).
struct Chunked {
    chunks: Vec<Arc<Chunk>>,
    offsets: Vec<usize>,
    classes: Vec<Classes>,
    len: usize,
    /// Whether every chunk was typed with the columns' final types.
    typed_as_final: bool,
}

/// The records of `fields` (after the header) as chunks of `CHUNK_ROWS`,
/// each typed with `fixed` types, else with the types the rows up to its
/// end imply; `starts`: the records' starts (past them: `end`).
fn parse_chunks<'a>(
    fields: impl Iterator<Item = (Cow<'a, str>, bool, usize)>,
    starts: &[usize],
    end: usize,
    declared: &[Option<Type>],
    fixed: Option<&[Option<Type>]>,
) -> Chunked {
    let width = declared.len().max(1);
    let mut out = Chunked {
        chunks: Vec::with_capacity(starts.len().div_ceil(CHUNK_ROWS)),
        offsets: Vec::with_capacity(starts.len().div_ceil(CHUNK_ROWS)),
        classes: vec![Classes::default(); width],
        len: 0,
        typed_as_final: true,
    };
    let mut used: Vec<Vec<Option<Type>>> = Vec::new();
    let mut part: Vec<Parsed<'a>> = Vec::with_capacity(CHUNK_ROWS * width);
    let mut flush = |part: &mut Vec<Parsed<'a>>, out: &mut Chunked| {
        let rows = part.len() / width;
        if rows == 0 {
            return;
        }
        for (i, f) in part.iter().enumerate() {
            out.classes[i % width].add(&f.0, 1);
        }
        let types: Vec<Option<Type>> = match fixed {
            Some(t) => t.to_vec(),
            None => (0..width)
                .map(|c| declared[c].or_else(|| out.classes[c].ty()))
                .collect(),
        };
        let at = |i: usize| starts.get(i).copied().unwrap_or(end);
        let base = at(out.len);
        let rel = (out.len..out.len + rows).map(|i| at(i) - base).collect();
        out.chunks.push(Arc::new(Chunk::new(
            part, width, declared, &types, base, rel,
        )));
        out.offsets.push(base);
        out.len += rows;
        used.push(types);
        part.clear();
    };
    let mut records = Records { width, in_row: 0 };
    for field in fields {
        if records.push(&mut part, field) && part.len() == CHUNK_ROWS * width {
            flush(&mut part, &mut out);
        }
    }
    part.truncate(part.len() / width * width);
    flush(&mut part, &mut out);
    if fixed.is_none() {
        let last = used.last().cloned().unwrap_or_default();
        out.typed_as_final = used.iter().all(|t| *t == last);
    }
    out
}

impl TypedTable {
    /// Parses a table's content (CSV with a header; empty: a table without
    /// columns or rows).
    pub fn parse(content: &[u8], delim: u8) -> Result<TypedTable, QueryError> {
        Self::parse_declared(&Arc::new(content.to_vec()), delim, &BTreeMap::new())
    }

    /// Parses a table's content (kept: texts are read from it); a column
    /// `declared` names (from `schema.toml`) gets that type with SQLite's
    /// affinity instead of an inferred one.
    pub fn parse_declared(
        shared: &Arc<Vec<u8>>,
        delim: u8,
        declared: &BTreeMap<String, ColumnType>,
    ) -> Result<TypedTable, QueryError> {
        let content = shared.as_slice();
        if content.is_empty() {
            return Ok(TypedTable {
                columns: Vec::new(),
                types: Vec::new(),
                chunks: Vec::new(),
                firsts: vec![0],
                offsets: Vec::new(),
                len: 0,
                derivable: false,
                change: None,
                indexes: Vec::new(),
                dicts: Vec::new(),
                numbers: Vec::new(),
                declared: Vec::new(),
                unique: Vec::new(),
                classes: Vec::new(),
                header_len: 0,
                content: Arc::clone(shared),
                delim,
            });
        }
        // One pass over the bytes: every field, borrowed unless quoted. The
        // content is a stored version, validated when it was committed.
        let mut columns: Vec<String> = Vec::new();
        let mut fields = csv::fields_at(content, delim);
        for (f, last, _) in fields.by_ref() {
            columns.push(f.into_owned());
            if last {
                break;
            }
        }
        let width = columns.len();
        let header_len = csv::record_end(content, 0);
        let starts = csv::record_starts(content, header_len);
        let declared: Vec<Option<Type>> = columns
            .iter()
            .map(|c| {
                declared.get(c).map(|t| match t {
                    // NUMERIC and INTEGER affinity differ in CAST only.
                    ColumnType::Integer | ColumnType::Numeric => Type::Integer,
                    ColumnType::Real => Type::Real,
                    ColumnType::Text => Type::Text,
                })
            })
            .collect();
        // Chunk by chunk, typed by what the rows so far say: the fields of
        // one chunk are all that is held besides the chunks. When a later
        // row changes a column's type, once more with the final types.
        let mut parsed = parse_chunks(fields, &starts, content.len(), &declared, None);
        let types: Vec<Option<Type>> = (0..width)
            .map(|c| declared[c].or_else(|| parsed.classes[c].ty()))
            .collect();
        if !parsed.typed_as_final {
            let mut fields = csv::fields_at(content, delim);
            fields.by_ref().find(|(_, last, _)| *last);
            parsed = parse_chunks(fields, &starts, content.len(), &declared, Some(&types));
        }
        let Chunked {
            chunks,
            offsets,
            classes,
            len,
            ..
        } = parsed;
        // One start per row, as a stored version has; else row ranges are
        // approximate and `derive` does not apply.
        let derivable = starts.len() == len;
        Ok(TypedTable {
            indexes: (0..width).map(|_| Mutex::new(None)).collect(),
            dicts: (0..width).map(|_| OnceLock::new()).collect(),
            numbers: (0..width).map(|_| OnceLock::new()).collect(),
            firsts: firsts(&chunks),
            columns,
            types,
            chunks,
            offsets,
            len,
            derivable,
            change: None,
            unique: vec![false; width],
            declared,
            classes,
            header_len,
            content: Arc::clone(shared),
            delim,
        })
    }

    /// A table made by a query (a subquery in FROM, a CTE, VALUES, a
    /// compound SELECT): `rows` as they are, each column holding values of
    /// any type (`Cells::Values`), typed by `types` only for affinity. No
    /// content, not derivable: it lives as long as the query that made it.
    pub fn from_values(
        columns: Vec<String>,
        types: Vec<Option<Type>>,
        rows: Vec<Vec<Value>>,
    ) -> TypedTable {
        let width = columns.len();
        let len = rows.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK_ROWS));
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut cols: Vec<Vec<Value>> =
                (0..width).map(|_| Vec::with_capacity(CHUNK_ROWS)).collect();
            let mut n = 0;
            for row in rows.by_ref().take(CHUNK_ROWS) {
                let mut row = row.into_iter();
                for col in cols.iter_mut() {
                    col.push(row.next().unwrap_or(Value::Null));
                }
                n += 1;
            }
            let columns: Vec<Cells> = cols.into_iter().map(Cells::Values).collect();
            // Values cost about their size plus a text's allocation.
            let bytes = (n * width * (std::mem::size_of::<Value>() + 16)) as u64;
            chunks.push(Arc::new(Chunk {
                columns,
                starts: vec![0; n],
                bytes,
            }));
        }
        TypedTable {
            indexes: (0..width).map(|_| Mutex::new(None)).collect(),
            dicts: (0..width).map(|_| OnceLock::new()).collect(),
            numbers: (0..width).map(|_| OnceLock::new()).collect(),
            firsts: firsts(&chunks),
            offsets: vec![0; chunks.len()],
            chunks,
            len,
            derivable: false,
            change: None,
            declared: types.clone(),
            unique: vec![false; width],
            classes: vec![Classes::default(); width],
            types,
            columns,
            header_len: 0,
            content: Arc::new(Vec::new()),
            delim: b'|',
        }
    }

    /// Marks the columns named in `unique` as declared unique.
    pub fn with_unique(mut self, unique: &std::collections::BTreeSet<String>) -> TypedTable {
        self.unique = self.columns.iter().map(|c| unique.contains(c)).collect();
        self
    }

    /// Whether `schema.toml` declares column `col` unique (or primary_key).
    pub fn declared_unique(&self, col: usize) -> bool {
        self.unique.get(col).copied().unwrap_or(false)
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
    pub fn derive(&self, new: &Arc<Vec<u8>>) -> Option<TypedTable> {
        self.derive_within(new, None)
    }

    /// `derive`, told where the change lies: `ends` = (bytes of a common
    /// prefix, bytes of a common suffix) of `old` and `new`, as the commit
    /// that made `new` knew them (`Table::change_from_previous`), so the
    /// contents need not be compared (at 1M rows that comparison is most
    /// of a derive). Ends shorter than the longest common ones are fine:
    /// the rows between are parsed again. `None`: compared here.
    pub fn derive_within(
        &self,
        shared: &Arc<Vec<u8>>,
        ends: Option<(usize, usize)>,
    ) -> Option<TypedTable> {
        let (old, new, delim) = (self.content.as_slice(), shared.as_slice(), self.delim);
        let width = self.columns.len();
        if width == 0 || !self.derivable {
            return None;
        }
        let shorter = old.len().min(new.len());
        let (p, s) = match ends {
            Some((p, s)) if p.checked_add(s).is_some_and(|n| n <= shorter) => (p, s),
            _ => csv::common_ends(old, new),
        };
        debug_assert!(old[..p] == new[..p] && old[old.len() - s..] == new[new.len() - s..]);
        // The header is the same, and ends its line (else rows would be
        // appended to it).
        if p < self.header_len || !old[..self.header_len].ends_with(b"\n") {
            return None;
        }
        // Rows [first, last) are the ones the change touches: from the row
        // holding the first differing byte to the row holding the first
        // byte of the common suffix (so its end's newline is in the suffix).
        let first = self.rows_starting_by(p).saturating_sub(1);
        let old_end = old.len() - s;
        let last = if old_end >= old.len() {
            self.len
        } else {
            self.rows_starting_by(old_end)
        };
        let start = if self.len == 0 {
            self.header_len
        } else {
            self.start_of(first)?
        };
        let end = if last < self.len {
            self.start_of(last)?
        } else {
            old.len()
        };
        let delta = new.len() as i64 - old.len() as i64;
        let new_end = (end as i64 + delta) as usize;
        if start > end || start > new_end || new_end > new.len() {
            return None;
        }
        let (old_mid, new_mid) = (&old[start..end], &new[start..new_end]);
        let removed = group_records(csv::fields_at(old_mid, delim), width, 0);
        let added = group_records(csv::fields_at(new_mid, delim), width, 0);
        let (removed_rows, added_rows) = (removed.len() / width, added.len() / width);
        if removed_rows != last - first {
            return None;
        }
        let mut classes = self.classes.clone();
        for (i, f) in removed.iter().enumerate() {
            classes[i % width].add(&f.0, -1);
        }
        for (i, f) in added.iter().enumerate() {
            classes[i % width].add(&f.0, 1);
        }
        let types: Vec<Option<Type>> = (0..width)
            .map(|c| self.declared[c].or_else(|| classes[c].ty()))
            .collect();
        if types != self.types {
            return None;
        }
        let added_starts = csv::record_starts(&new[..new_end], start);
        if added_starts.len() != added_rows {
            return None;
        }
        // The chunks the change overlaps, [c0, c1): rebuilt; the others are
        // shared.
        let (mut c0, mut c1) = if self.chunks.is_empty() {
            (0, 0)
        } else {
            let c0 = self.chunk_of(first.min(self.len - 1));
            let c1 = if last > first {
                self.chunk_of(last - 1)
            } else {
                c0
            };
            (c0, c1 + 1)
        };
        // What would be left small (deletions) takes a neighbour in, so
        // chunks stay near `CHUNK_ROWS` however rows come and go.
        if c0 < c1 {
            let kept = self.firsts[c1] - self.firsts[c0] - (last - first) + added_rows;
            if kept < CHUNK_ROWS / 2 {
                if c1 < self.chunks.len() {
                    c1 += 1;
                } else {
                    c0 = c0.saturating_sub(1);
                }
            }
        }
        // The rows of [c0, c1) as they are in `new`: parsed again (a few
        // chunks' worth), from the first chunk's start to where the chunk
        // after them starts, moved by `delta`.
        let from = self.offsets.get(c0).copied().unwrap_or(start).min(start);
        let to_old = self.offsets.get(c1).copied().unwrap_or(old.len());
        let to = usize::try_from(to_old as i64 + delta).ok()?;
        if from > to || to > new.len() || to < new_end {
            return None;
        }
        let flat = group_records(csv::fields_at(new.get(from..to)?, delim), width, from);
        let starts = csv::record_starts(&new[..to], from);
        let rows = (self.firsts[c1] - self.firsts[c0]).checked_sub(removed_rows)? + added_rows;
        if starts.len() != rows || flat.len() != rows * width {
            return None;
        }
        let rebuilt = into_chunks(&flat, &starts, width, &self.declared, &types);
        let mut chunks = Vec::with_capacity(self.chunks.len() + rebuilt.len());
        let mut offsets = Vec::with_capacity(self.chunks.len() + rebuilt.len());
        chunks.extend(self.chunks[..c0].iter().cloned());
        offsets.extend_from_slice(&self.offsets[..c0]);
        for (base, chunk) in rebuilt {
            chunks.push(chunk);
            offsets.push(base);
        }
        chunks.extend(self.chunks[c1..].iter().cloned());
        offsets.extend(
            self.offsets[c1..]
                .iter()
                .map(|&o| (o as i64 + delta) as usize),
        );
        let firsts = firsts(&chunks);
        let len = self.len - removed_rows + added_rows;
        if firsts.last() != Some(&len) {
            return None;
        }
        Some(TypedTable {
            indexes: (0..width).map(|_| Mutex::new(None)).collect(),
            dicts: (0..width).map(|_| OnceLock::new()).collect(),
            numbers: (0..width).map(|_| OnceLock::new()).collect(),
            columns: self.columns.clone(),
            types,
            chunks,
            firsts,
            offsets,
            len,
            derivable: true,
            change: Some(Change {
                first,
                removed: removed_rows,
                added: added_rows,
            }),
            declared: self.declared.clone(),
            unique: self.unique.clone(),
            classes,
            header_len: self.header_len,
            content: Arc::clone(shared),
            delim,
        })
    }

    /// The chunk holding row `i` (< len): where it would be were every
    /// chunk `CHUNK_ROWS` long (a parsed version, and the chunks of a
    /// derived one before its changes), else a binary search.
    #[inline]
    fn chunk_of(&self, i: usize) -> usize {
        let guess = i / CHUNK_ROWS;
        match (self.firsts.get(guess), self.firsts.get(guess + 1)) {
            (Some(&a), Some(&b)) if a <= i && i < b => guess,
            _ => self.firsts.partition_point(|&f| f <= i) - 1,
        }
    }

    /// How many rows start at or before byte `pos` of the content.
    fn rows_starting_by(&self, pos: usize) -> usize {
        let c = self.offsets.partition_point(|&o| o <= pos);
        if c == 0 {
            return 0;
        }
        let (chunk, base) = (&self.chunks[c - 1], self.offsets[c - 1]);
        self.firsts[c - 1] + chunk.starts.partition_point(|&s| base + s <= pos)
    }

    /// Where row `i`'s record starts in the content.
    fn start_of(&self, i: usize) -> Option<usize> {
        if i >= self.len {
            return None;
        }
        let c = self.chunk_of(i);
        Some(self.offsets[c] + self.chunks[c].starts[i - self.firsts[c]])
    }

    /// What changed from the version this one was derived from (None: parsed whole).
    pub fn change(&self) -> Option<Change> {
        self.change
    }

    /// Bytes of the header record in the parsed content.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Byte range of row `i`'s record in the parsed content (`content_len`:
    /// that content's length, where the last record ends).
    pub fn row_range(&self, i: usize, content_len: usize) -> std::ops::Range<usize> {
        let start = self.start_of(i).unwrap_or(content_len);
        start..self.start_of(i + 1).unwrap_or(content_len)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `i` (at worst a binary search over the chunks; past the end:
    /// no row).
    #[inline]
    pub fn row(&self, i: usize) -> RowRef<'_> {
        if i >= self.len {
            return RowRef::Empty;
        }
        let c = self.chunk_of(i);
        self.chunks[c].row(i - self.firsts[c], self.bytes_of(c))
    }

    /// What chunk `c`'s text cells read: the content from its base.
    #[inline]
    fn bytes_of(&self, c: usize) -> ChunkBytes<'_> {
        ChunkBytes {
            bytes: self.content.get(self.offsets[c]..).unwrap_or_default(),
            delim: self.delim,
        }
    }

    /// Every row, in order (chunk after chunk).
    pub fn rows(&self) -> impl DoubleEndedIterator<Item = RowRef<'_>> + Clone {
        self.chunks.iter().enumerate().flat_map(move |(c, chunk)| {
            let src = self.bytes_of(c);
            (0..chunk.len()).map(move |k| chunk.row(k, src))
        })
    }

    /// Column `col` of each chunk, in order, with the chunk's rows and
    /// bytes.
    pub fn column_chunks(
        &self,
        col: usize,
    ) -> impl Iterator<Item = (&Cells, usize, ChunkBytes<'_>)> {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(move |(c, chunk)| {
                Some((chunk.columns.get(col)?, chunk.len(), self.bytes_of(c)))
            })
    }

    /// The content this version was parsed from.
    pub fn content(&self) -> &Arc<Vec<u8>> {
        &self.content
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
        self.build_index_from(col, None)
    }

    /// `build_index`; when `prev` is the version this one was derived from
    /// and has the index, that index is taken from it (`prev` loses it: a
    /// superseded version) and updated by the change instead of built.
    pub fn build_index_from(
        &self,
        col: usize,
        prev: Option<&TypedTable>,
    ) -> Option<(Arc<ColumnIndex>, bool)> {
        let mut slot = self
            .indexes
            .get(col)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(ix) = &*slot {
            return Some((Arc::clone(ix), false));
        }
        let derived = match (prev, self.change) {
            (Some(prev), Some(change)) if prev.columns == self.columns => prev
                .indexes
                .get(col)
                .and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take())
                .and_then(|old| {
                    let old = Arc::try_unwrap(old).unwrap_or_else(|shared| (*shared).clone());
                    old.derive(prev, self, col, change)
                }),
            _ => None,
        };
        let ix = Arc::new(derived.unwrap_or_else(|| ColumnIndex::build(self, col)));
        *slot = Some(Arc::clone(&ix));
        Some((ix, true))
    }

    /// Takes over the numbers and dictionaries `prev` (the version this
    /// one was derived from) built, updated by the change: the unchanged
    /// parts copied (no hashing, no walk over the rows), the changed rows
    /// computed. A dictionary keeps the values the change removed (codes
    /// nobody uses: grouping makes groups from the codes it meets); one
    /// that would pass `MAX_DICT` values is left to be built anew.
    pub fn inherit(&self, prev: &TypedTable) {
        let Some(Change {
            first,
            removed,
            added,
        }) = self.change
        else {
            return;
        };
        let last = first + removed;
        if prev.columns != self.columns || prev.len + added != self.len + removed {
            return;
        }
        let new_rows = first..first + added;
        for col in 0..self.columns.len() {
            if let Some(Some(old)) = prev.numbers[col].get() {
                let mut changed = Vec::with_capacity(added);
                let mut exact = old.exact;
                for i in new_rows.clone() {
                    changed.push(match self.row(i).get(col) {
                        Some(Value::Int(v)) => {
                            exact &= exact_f64(v);
                            (v as f64, true)
                        }
                        Some(Value::Real(f)) => (f, true),
                        Some(Value::Null) => (0.0, false),
                        _ => break,
                    });
                }
                if changed.len() == added {
                    let mut values = Vec::with_capacity(self.len);
                    values.extend_from_slice(&old.values[..first]);
                    values.extend(changed.iter().map(|c| c.0));
                    values.extend_from_slice(&old.values[last..]);
                    let mut present = Vec::with_capacity(self.len);
                    present.extend_from_slice(&old.present[..first]);
                    present.extend(changed.iter().map(|c| c.1));
                    present.extend_from_slice(&old.present[last..]);
                    let _ = self.numbers[col].set(Some(Numbers {
                        values,
                        present,
                        exact,
                    }));
                }
            }
            if let Some(Some(old)) = prev.dicts[col].get() {
                let mut values = old.values.clone();
                let mut seen: HashMap<Value, u32> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i as u32))
                    .collect();
                let mut changed = Vec::with_capacity(added);
                for i in new_rows.clone() {
                    let Some(v) = self.row(i).get(col) else {
                        break;
                    };
                    let code = match seen.get(&v) {
                        Some(&c) => c,
                        None if values.len() == MAX_DICT => break,
                        None => {
                            values.push(v.clone());
                            seen.insert(v.clone(), values.len() as u32 - 1);
                            values.len() as u32 - 1
                        }
                    };
                    changed.push(code);
                }
                if changed.len() == added {
                    let mut codes = Vec::with_capacity(self.len);
                    codes.extend_from_slice(&old.codes[..first]);
                    codes.extend(changed);
                    codes.extend_from_slice(&old.codes[last..]);
                    let _ = self.dicts[col].set(Some(Dict { codes, values }));
                }
            }
        }
    }

    /// Drops column `col`'s index (queries running with it keep their copy).
    pub fn drop_index(&self, col: usize) {
        if let Some(slot) = self.indexes.get(col) {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Approximate memory of the parsed rows (not indices): every chunk
    /// this version holds, shared with another version or not (so the sum
    /// over versions that share chunks counts them once each: an
    /// over-count, on the safe side of a memory bound). Counted when a
    /// chunk is made: this is a sum over the chunks.
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).sum::<u64>()
            + (self.offsets.capacity() + self.firsts.capacity()) as u64 * 8
    }

    /// The column as numbers (built on first use), if it holds no text.
    pub fn numbers(&self, col: usize) -> Option<&Numbers> {
        self.numbers
            .get(col)?
            .get_or_init(|| {
                let mut values = Vec::with_capacity(self.len);
                let mut present = Vec::with_capacity(self.len);
                let mut exact = true;
                for (cells, rows, src) in self.column_chunks(col) {
                    if let Cells::Ints { values: v, nulls } = cells {
                        exact &= v.iter().all(|&i| exact_f64(i));
                        values.extend(v.iter().map(|&i| i as f64));
                        present.extend((0..rows).map(|k| !nulls.is_null(k)));
                        continue;
                    }
                    for k in 0..rows {
                        let (v, p) = cells.number(k, src)?;
                        // An integer past 2^53 may have come from text:
                        // not exact (a real that large is counted too).
                        exact &= v.abs() <= (1u64 << 53) as f64;
                        values.push(v);
                        present.push(p);
                    }
                }
                (values.len() == self.len).then_some(Numbers {
                    values,
                    present,
                    exact,
                })
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
                let mut seen: FastMap<Value, u32> = FastMap::default();
                for r in self.rows() {
                    let v = r.get(col)?;
                    let code = match seen.get(&v) {
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

/// Row number of each chunk's first row, then the number of rows.
fn firsts(chunks: &[Arc<Chunk>]) -> Vec<usize> {
    let mut out = Vec::with_capacity(chunks.len() + 1);
    let mut n = 0;
    out.push(0);
    for c in chunks {
        n += c.len();
        out.push(n);
    }
    out
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

    /// Chunks are typed as the rows up to them say; a type a later chunk
    /// changes retypes the earlier ones: every value is what the final
    /// type makes of its field, whichever chunk the odd value is in.
    #[test]
    fn a_late_value_types_every_chunk() {
        for (odd, ty) in [("x", Type::Text), ("2.5", Type::Real), ("", Type::Integer)] {
            for at in [0, CHUNK_ROWS - 1, CHUNK_ROWS, 5 * CHUNK_ROWS + 3] {
                let fields: Vec<String> = (0..6 * CHUNK_ROWS)
                    .map(|i| {
                        if i == at {
                            odd.to_string()
                        } else {
                            i.to_string()
                        }
                    })
                    .collect();
                let mut csv = String::from("id|n\n");
                for (i, f) in fields.iter().enumerate() {
                    csv.push_str(&format!("{i}|{f}\n"));
                }
                let t = TypedTable::parse(csv.as_bytes(), b'|').unwrap();
                assert_eq!(t.types[1], Some(ty), "{odd} at {at}");
                for (i, f) in fields.iter().enumerate() {
                    let got = t.row(i).get(1).unwrap();
                    let want = Value::from_field(f, ty);
                    assert_eq!(
                        format!("{got:?}"),
                        format!("{want:?}"),
                        "{odd} at {at}, row {i}"
                    );
                }
            }
        }
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
        let cells = t
            .rows()
            .flat_map(|r| r.values())
            .map(|v| format!("{v:?}"))
            .collect();
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
        let d = t.derive(&Arc::new(new.clone())).expect("applies");
        assert_eq!(shape(&d), shape(&TypedTable::parse(&new, b'|').unwrap()));
        // A text value in an integer column changes its type: a full parse.
        let mut typed = rows.clone();
        typed[5].1 = 4;
        assert!(t.derive(&Arc::new(content(&typed, true))).is_none());
    }

    /// Applies random edits (edit a cell, remove, insert, append) to `rows`.
    fn apply(rows: &mut Vec<(u32, usize, usize)>, edits: &[(usize, usize, u8)]) {
        for &(at, v, kind) in edits {
            let at = at % (rows.len() + 1);
            match kind {
                0 if at < rows.len() => rows[at].1 = v,
                1 if at < rows.len() => {
                    rows.remove(at);
                }
                2 => rows.insert(at, (5000 + at as u32, v, v)),
                _ => rows.push((7000, v, 0)),
            }
        }
    }

    /// `d` (derived from `t`) equals a full parse of `new`, row ranges
    /// included; its chunks are in shape; and every chunk of `t` the
    /// change does not overlap is shared.
    fn check_derived(t: &TypedTable, d: &TypedTable, new: &[u8]) -> Result<(), TestCaseError> {
        let full = TypedTable::parse(new, b'|').unwrap();
        prop_assert_eq!(shape(d), shape(&full));
        prop_assert_eq!(d.len(), full.len());
        for i in 0..=d.len() {
            prop_assert_eq!(d.row_range(i, new.len()), full.row_range(i, new.len()));
        }
        prop_assert_eq!(d.firsts.len(), d.chunks.len() + 1);
        prop_assert_eq!(d.offsets.len(), d.chunks.len());
        for c in &d.chunks {
            prop_assert!(!c.starts.is_empty() && c.len() <= 2 * CHUNK_ROWS);
            prop_assert_eq!(c.columns.len(), d.columns.len());
        }
        let ch = d.change().expect("derived");
        prop_assert_eq!(t.len() - ch.removed + ch.added, d.len());
        if t.chunks.is_empty() {
            return Ok(());
        }
        let c0 = t.chunk_of(ch.first.min(t.len() - 1));
        let c1 = 1 + if ch.removed > 0 {
            t.chunk_of(ch.first + ch.removed - 1)
        } else {
            c0
        };
        // Shared: every chunk but those the change overlaps and one
        // neighbour (taken in when what is left is small), in order.
        let ours: Vec<*const Chunk> = d.chunks.iter().map(Arc::as_ptr).collect();
        let mut at = 0;
        for k in 0..t.chunks.len() {
            let p = Arc::as_ptr(&t.chunks[k]);
            match ours[at..].iter().position(|&q| q == p) {
                Some(j) => at += j + 1,
                None => prop_assert!(
                    k + 1 >= c0 && k <= c1,
                    "chunk {} of {} not shared (change in {}..{})",
                    k,
                    t.chunks.len(),
                    c0,
                    c1
                ),
            }
        }
        Ok(())
    }

    #[test]
    fn chunks_split_and_vanish() {
        let rows: Vec<_> = (0..40).map(|k| (k, 1, 4)).collect();
        let old = content(&rows, true);
        let t = TypedTable::parse(&old, b'|').unwrap();
        assert_eq!(t.chunks.len(), 5);
        // 20 rows into chunk 1: it grows past twice the size and splits.
        let mut grown = rows.clone();
        for k in 0..20 {
            grown.insert(10, (900 + k, 0, 4));
        }
        let new = content(&grown, true);
        let d = t.derive(&Arc::new(new.clone())).expect("applies");
        check_derived(&t, &d, &new).unwrap();
        assert_eq!(d.chunks.len(), 5 - 1 + 4);
        // Chunk 2 (rows 16..24) deleted whole: gone, its neighbours shared.
        let mut shrunk = rows.clone();
        shrunk.drain(16..24);
        let new = content(&shrunk, true);
        let d = t.derive(&Arc::new(new.clone())).expect("applies");
        check_derived(&t, &d, &new).unwrap();
        assert!(d.chunks.len() <= 5);
        // Rows deleted one at a time: a chunk left small takes a neighbour in.
        let (mut now, mut t) = (rows.clone(), t);
        for _ in 0..12 {
            now.remove(17);
            let new = content(&now, true);
            let d = t.derive(&Arc::new(new.clone())).expect("applies");
            check_derived(&t, &d, &new).unwrap();
            assert!(d.chunks.iter().all(|c| c.len() >= CHUNK_ROWS / 2));
            t = d;
        }
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
            apply(&mut rows, &edits);
            let new = content(&rows, new_nl);
            let t = TypedTable::parse(&old, b'|').unwrap();
            if let Some(d) = t.derive(&Arc::new(new.clone())) {
                check_derived(&t, &d, &new)?;
            }
        }

        /// Several commits in a row, each derived from the last derived
        /// version, over tables of several chunks, edits clustered at
        /// chunk boundaries.
        #[test]
        fn derived_chains_equal_full_parses(
            n in 0usize..90,
            commits in proptest::collection::vec(
                proptest::collection::vec((0usize..12, 0usize..4, 0usize..11, 0u8..4), 1..5),
                1..5,
            ),
            new_nl in any::<bool>(),
        ) {
            // Plain values (no type change) and quoted ones with newlines.
            let mut rows: Vec<(u32, usize, usize)> =
                (0..n as u32).map(|k| (k, 1, [4, 8, 9][k as usize % 3])).collect();
            let old = content(&rows, true);
            let mut t = TypedTable::parse(&old, b'|').unwrap();
            for edits in commits {
                let edits: Vec<(usize, usize, u8)> = edits
                    .iter()
                    .map(|&(chunk, off, v, kind)| {
                        ((chunk * CHUNK_ROWS + off).saturating_sub(2), [0, 1, 2, 8, 9][v % 5], kind)
                    })
                    .collect();
                apply(&mut rows, &edits);
                let new = content(&rows, new_nl);
                let d = match t.derive(&Arc::new(new.clone())) {
                    Some(d) => d,
                    None => TypedTable::parse(&new, b'|').unwrap(),
                };
                if d.change().is_some() {
                    check_derived(&t, &d, &new)?;
                }
                t = d;
            }
        }

        /// An index derived from the previous version's finds the same
        /// rows as one built on the new version.
        #[test]
        fn derived_indices_find_what_built_ones_find(
            rows in proptest::collection::vec((0u32..1000, 0usize..11, 0usize..11), 0..60),
            spread in 1u32..200,
            edits in proptest::collection::vec((0usize..70, 0usize..11, 0u8..4), 1..4),
            key_edit in proptest::option::of((0usize..70, 0u32..300)),
        ) {
            let mut rows: Vec<(u32, usize, usize)> =
                rows.into_iter().map(|(k, a, b)| (k % spread, a, b)).collect();
            let old = content(&rows, true);
            apply(&mut rows, &edits);
            if let Some((at, k)) = key_edit
                && let Some(r) = rows.get_mut(at)
            {
                r.0 = k;
            }
            let new = content(&rows, true);
            let t = TypedTable::parse(&old, b'|').unwrap();
            let Some(d) = t.derive(&Arc::new(new.clone())) else {
                return Ok(());
            };
            let mut keys: Vec<Value> = (0..7100).step_by(7).map(|k| Value::Int(k as i64)).collect();
            keys.extend((0..300).map(|k| Value::Int(k as i64)));
            keys.extend((0..300).map(|k| Value::Real(k as f64)));
            keys.extend(VALUES.iter().map(|v| Value::text(v)));
            keys.extend(d.rows().chain(t.rows()).flat_map(|r| r.values()));
            // Numbers and dictionaries taken over equal built ones.
            for col in 0..3 {
                t.numbers(col);
                t.dict(col);
            }
            d.inherit(&t);
            let full = TypedTable::parse(&new, b'|').unwrap();
            for col in 0..3 {
                if let Some(Some(n)) = d.numbers[col].get() {
                    let f = full.numbers(col).expect("numeric in a full parse too");
                    prop_assert_eq!(&n.values, &f.values);
                    prop_assert_eq!(&n.present, &f.present);
                }
                if let Some(Some(dict)) = d.dicts[col].get() {
                    let f = full.dict(col).expect("few values");
                    let decode = |x: &Dict| -> Vec<String> {
                        x.codes.iter().map(|&c| format!("{:?}", x.values[c as usize])).collect()
                    };
                    prop_assert_eq!(decode(dict), decode(f));
                }
            }
            for col in 0..3 {
                t.build_index(col);
                let (derived, built_now) = d.build_index_from(col, Some(&t)).unwrap();
                prop_assert!(built_now);
                prop_assert!(t.index(col).is_none(), "taken over from the old version");
                let fresh = ColumnIndex::build(&d, col);
                prop_assert_eq!(derived.distinct(), fresh.distinct());
                prop_assert_eq!(derived.next.len(), d.len());
                for k in &keys {
                    prop_assert_eq!(
                        derived.lookup(k).collect::<Vec<_>>(),
                        fresh.lookup(k).collect::<Vec<_>>(),
                        "col {} key {:?}", col, k
                    );
                }
            }
        }
    }
}
