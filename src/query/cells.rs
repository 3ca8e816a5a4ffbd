//! How a chunk of a parsed table holds one column: typed and compact
//! (docs/QUERY.md, "Memory"). Integers and reals as plain arrays, texts
//! with few distinct values as 16-bit codes into the chunk's values, other
//! texts as where they start in the version's content (which the parsed
//! table holds anyway), NULLs as bits. A cell is read as an owned `Value`:
//! a number is a copy, a coded text an `Arc` clone, a text in the content
//! a new allocation (what a row of `Value`s would have cost in memory for
//! every cell, whether read or not).

use std::borrow::Cow;

use super::value::{FastMap, Type, Value, ValueRef};
use crate::storage::csv;

/// A field as the parser found it: its text, and where it starts in the
/// chunk's bytes when the text is those bytes unchanged (unquoted UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub text: &'a str,
    pub at: Option<usize>,
}

/// What a stored cell reads besides its column: the content from the
/// chunk's first record on, and the delimiter.
#[derive(Debug, Clone, Copy)]
pub struct ChunkBytes<'a> {
    pub bytes: &'a [u8],
    pub delim: u8,
}

/// Which rows are NULL: a bit per row, empty when none is.
#[derive(Debug, Default)]
pub struct Nulls(Vec<u64>);

impl Nulls {
    fn set(&mut self, k: usize, rows: usize) {
        if self.0.is_empty() {
            self.0 = vec![0; rows.div_ceil(64)];
        }
        self.0[k / 64] |= 1 << (k % 64);
    }

    #[inline]
    pub fn is_null(&self, k: usize) -> bool {
        !self.0.is_empty() && self.0[k / 64] & (1 << (k % 64)) != 0
    }

    fn bytes(&self) -> usize {
        self.0.capacity() * 8
    }
}

/// One column of a chunk.
#[derive(Debug)]
pub enum Cells {
    /// Every value an integer or NULL.
    Ints { values: Vec<i64>, nulls: Nulls },
    /// Every value a real or NULL.
    Reals { values: Vec<f64>, nulls: Nulls },
    /// Texts (or NULLs) of which few are distinct: a code per row into
    /// `values`, each distinct value allocated once.
    Coded { codes: Vec<u16>, values: Vec<Value> },
    /// Texts (or NULLs) mostly distinct: where row `k`'s field starts in
    /// the chunk's bytes (read up to the delimiter; empty: NULL), or, with
    /// `IN_SIDE` set, its index in `side` (quoted fields, whose text is
    /// not the bytes as stored).
    Spans { at: Vec<u32>, side: Vec<Value> },
    /// Anything else (a declared numeric column holding texts): the values.
    Values(Vec<Value>),
}

/// A coded column costs about this much per distinct value (the `Value`,
/// the allocation of its text and the allocator's overhead).
const CODED_VALUE_BYTES: usize = 64;

/// The bit of a span that says "in `side`".
const IN_SIDE: u32 = 1 << 31;

impl Cells {
    /// The column of `fields` (one per row of the chunk) of a column whose
    /// type `schema.toml` declares (`declared`) or that was inferred
    /// (`inferred`, None: every field empty).
    pub fn build(fields: &[Field], declared: Option<Type>, inferred: Option<Type>) -> Cells {
        let rows = fields.len();
        let ty = declared.or(inferred).unwrap_or(Type::Text);
        match (declared, ty) {
            // Every value is a text or NULL: no `Value` made per cell.
            (_, Type::Text) => texts(fields),
            // Inferred numbers: every non-empty field parses (inference
            // said so); anything else falls back to values.
            (None, Type::Integer) => {
                let mut values = Vec::with_capacity(rows);
                let mut nulls = Nulls::default();
                for (k, f) in fields.iter().enumerate() {
                    if f.text.is_empty() {
                        nulls.set(k, rows);
                        values.push(0);
                    } else {
                        match f.text.parse::<i64>() {
                            Ok(i) => values.push(i),
                            Err(_) => return values_of(fields, declared, ty),
                        }
                    }
                }
                Cells::Ints { values, nulls }
            }
            _ => values_of(fields, declared, ty),
        }
    }

    /// Row `k`'s value (`k` < the chunk's rows; `src`: the chunk's bytes).
    #[inline]
    pub fn get(&self, k: usize, src: ChunkBytes) -> Value {
        match self {
            Cells::Ints { values, nulls } => {
                if nulls.is_null(k) {
                    Value::Null
                } else {
                    Value::Int(values[k])
                }
            }
            Cells::Reals { values, nulls } => {
                if nulls.is_null(k) {
                    Value::Null
                } else {
                    Value::Real(values[k])
                }
            }
            Cells::Coded { codes, values } => values[codes[k] as usize].clone(),
            Cells::Spans { at, side } => {
                let a = at[k];
                if a & IN_SIDE != 0 {
                    return side[(a & !IN_SIDE) as usize].clone();
                }
                let (field, _) = csv::plain_field(src.bytes, a as usize, src.delim);
                match std::str::from_utf8(field) {
                    _ if field.is_empty() => Value::Null,
                    Ok(t) => Value::text(t),
                    Err(_) => Value::text(&String::from_utf8_lossy(field)),
                }
            }
            Cells::Values(v) => v[k].clone(),
        }
    }

    /// Row `k`'s value, borrowed (no allocation: for comparing). A span
    /// is UTF-8 (it was made from a field that was), so never lossy.
    #[inline]
    pub fn get_ref<'a>(&'a self, k: usize, src: ChunkBytes<'a>) -> ValueRef<'a> {
        match self {
            Cells::Ints { values, nulls } => match nulls.is_null(k) {
                true => ValueRef::Null,
                false => ValueRef::Int(values[k]),
            },
            Cells::Reals { values, nulls } => match nulls.is_null(k) {
                true => ValueRef::Null,
                false => ValueRef::Real(values[k]),
            },
            Cells::Coded { codes, values } => values[codes[k] as usize].as_ref(),
            Cells::Spans { at, side } => {
                let a = at[k];
                if a & IN_SIDE != 0 {
                    return side[(a & !IN_SIDE) as usize].as_ref();
                }
                let (field, _) = csv::plain_field(src.bytes, a as usize, src.delim);
                match std::str::from_utf8(field) {
                    Ok("") => ValueRef::Null,
                    Ok(t) => ValueRef::Text(t),
                    Err(_) => ValueRef::Text(""),
                }
            }
            Cells::Values(v) => v[k].as_ref(),
        }
    }

    /// Row `k`'s value as a number for aggregates (`Numbers`): Some((v,
    /// present)) for a number or NULL, None for a text.
    #[inline]
    pub fn number(&self, k: usize, src: ChunkBytes) -> Option<(f64, bool)> {
        match self {
            Cells::Ints { values, nulls } => Some((values[k] as f64, !nulls.is_null(k))),
            Cells::Reals { values, nulls } => Some((values[k], !nulls.is_null(k))),
            Cells::Coded { .. } | Cells::Spans { .. } | Cells::Values(_) => {
                match self.get(k, src) {
                    Value::Null => Some((0.0, false)),
                    Value::Int(i) => Some((i as f64, true)),
                    Value::Real(r) => Some((r, true)),
                    Value::Text(_) => None,
                }
            }
        }
    }

    /// Approximate heap bytes.
    pub fn bytes(&self) -> usize {
        match self {
            Cells::Ints { values, nulls } => values.capacity() * 8 + nulls.bytes(),
            Cells::Reals { values, nulls } => values.capacity() * 8 + nulls.bytes(),
            Cells::Coded { codes, values } => {
                codes.capacity() * 2 + values.len() * CODED_VALUE_BYTES
            }
            Cells::Spans { at, side } => at.capacity() * 4 + values_bytes(side),
            Cells::Values(v) => values_bytes(v),
        }
    }
}

/// Approximate heap bytes of values.
fn values_bytes(v: &Vec<Value>) -> usize {
    v.capacity() * std::mem::size_of::<Value>()
        + v.iter()
            .map(|v| match v {
                Value::Text(t) => t.len() + 16,
                _ => 0,
            })
            .sum::<usize>()
}

/// A column of texts: coded when its distinct values cost less than a
/// span per row (and there are few enough for 16-bit codes), else spans.
fn texts(fields: &[Field]) -> Cells {
    let rows = fields.len();
    let mut codes = Vec::with_capacity(rows);
    let mut seen: FastMap<&str, u16> = FastMap::default();
    let mut values: Vec<Value> = Vec::new();
    for f in fields {
        let code = match seen.get(f.text) {
            Some(&c) => c,
            None => {
                if (values.len() + 1) * CODED_VALUE_BYTES >= rows * 2
                    || values.len() > u16::MAX as usize
                {
                    return spans(fields);
                }
                values.push(Value::from_field(f.text, Type::Text));
                let c = (values.len() - 1) as u16;
                seen.insert(f.text, c);
                c
            }
        };
        codes.push(code);
    }
    Cells::Coded { codes, values }
}

/// Texts as spans of the chunk's bytes; values if a span does not fit.
fn spans(fields: &[Field]) -> Cells {
    let mut at = Vec::with_capacity(fields.len());
    let mut side = Vec::new();
    for f in fields {
        let span = match f.at.map(u32::try_from) {
            Some(Ok(a)) if a & IN_SIDE == 0 => a,
            Some(_) if !f.text.is_empty() => {
                return Cells::Values(
                    fields
                        .iter()
                        .map(|f| Value::from_field(f.text, Type::Text))
                        .collect(),
                );
            }
            _ => {
                side.push(Value::from_field(f.text, Type::Text));
                IN_SIDE | (side.len() - 1) as u32
            }
        };
        at.push(span);
    }
    Cells::Spans { at, side }
}

/// A column as values (declared types with SQLite's affinity, or inferred
/// reals), stored as numbers when they all are.
fn values_of(fields: &[Field], declared: Option<Type>, ty: Type) -> Cells {
    let values: Vec<Value> = fields
        .iter()
        .map(|f| match declared {
            Some(d) => Value::from_declared(f.text, d),
            None => Value::from_field(f.text, ty),
        })
        .collect();
    if let Some((values, nulls)) = typed(&values, |v| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }) {
        return Cells::Ints { values, nulls };
    }
    if let Some((values, nulls)) = typed(&values, |v| match v {
        Value::Real(r) => Some(*r),
        _ => None,
    }) {
        return Cells::Reals { values, nulls };
    }
    Cells::Values(values)
}

/// `values` as an array of what `of` reads from each (NULLs as bits and a
/// default), when every value is one of those or NULL.
fn typed<T: Default>(
    values: &[Value],
    of: impl Fn(&Value) -> Option<T>,
) -> Option<(Vec<T>, Nulls)> {
    let mut nulls = Nulls::default();
    let mut out = Vec::with_capacity(values.len());
    for (k, v) in values.iter().enumerate() {
        match (v, of(v)) {
            (_, Some(x)) => out.push(x),
            (Value::Null, None) => {
                nulls.set(k, values.len());
                out.push(T::default());
            }
            _ => return None,
        }
    }
    Some((out, nulls))
}

/// A row as expressions read it: a row of a parsed table (its chunk's
/// columns and bytes, and its place in them), values a query made, or no
/// row (a LEFT JOIN that found none). `Copy`: passing a row copies a few
/// words.
#[derive(Debug, Clone, Copy)]
pub enum RowRef<'a> {
    Stored {
        columns: &'a [Cells],
        k: usize,
        src: ChunkBytes<'a>,
    },
    Values(&'a [Value]),
    Empty,
}

impl<'a> RowRef<'a> {
    /// Column `c`'s value; None past the row's width (or no row).
    #[inline]
    pub fn get(&self, c: usize) -> Option<Value> {
        match self {
            RowRef::Stored { columns, k, src } => columns.get(c).map(|cells| cells.get(*k, *src)),
            RowRef::Values(v) => v.get(c).cloned(),
            RowRef::Empty => None,
        }
    }

    /// Column `c`'s value, borrowed (NULL past the row's width).
    #[inline]
    pub fn get_ref(&self, c: usize) -> ValueRef<'a> {
        match *self {
            RowRef::Stored { columns, k, src } => columns
                .get(c)
                .map_or(ValueRef::Null, |cells| cells.get_ref(k, src)),
            RowRef::Values(v) => v.get(c).map_or(ValueRef::Null, Value::as_ref),
            RowRef::Empty => ValueRef::Null,
        }
    }

    /// Number of columns (0: no row).
    pub fn width(&self) -> usize {
        match self {
            RowRef::Stored { columns, .. } => columns.len(),
            RowRef::Values(v) => v.len(),
            RowRef::Empty => 0,
        }
    }

    /// Every value, in column order.
    pub fn values(&self) -> Vec<Value> {
        (0..self.width())
            .map(|c| self.get(c).unwrap_or(Value::Null))
            .collect()
    }
}

/// A parsed field: its text, and where it starts in the content when the
/// text is the content's bytes there (`Field::at`).
pub type Parsed<'a> = (Cow<'a, str>, Option<usize>);

/// Column `c`'s fields of `width`-wide records (`flat`, row-major), with
/// their starts relative to `base`.
pub fn column_fields<'a>(
    flat: &'a [Parsed<'a>],
    width: usize,
    c: usize,
    base: usize,
) -> Vec<Field<'a>> {
    flat.iter()
        .skip(c)
        .step_by(width.max(1))
        .map(|(text, at)| Field {
            text: text.as_ref(),
            at: match text {
                Cow::Borrowed(_) => at.and_then(|a| a.checked_sub(base)),
                Cow::Owned(_) => None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One field per line of a content (`texts` unquoted, each at its
    /// start; `quoted`: rows whose text is not the stored bytes), built
    /// into a column and read back as `from_field`/`from_declared` make
    /// them.
    fn round_trip(
        texts: &[&str],
        quoted: &[usize],
        declared: Option<Type>,
        inferred: Option<Type>,
    ) -> Cells {
        let mut content = String::new();
        let mut fields = Vec::new();
        for (k, t) in texts.iter().enumerate() {
            let at = (!quoted.contains(&k)).then_some(content.len());
            content.push_str(if at.is_some() { t } else { "\"q\"" });
            content.push('\n');
            fields.push(Field { text: t, at });
        }
        let src = ChunkBytes {
            bytes: content.as_bytes(),
            delim: b'|',
        };
        let cells = Cells::build(&fields, declared, inferred);
        let ty = declared.or(inferred).unwrap_or(Type::Text);
        for (k, f) in texts.iter().enumerate() {
            let want = match declared {
                Some(d) => Value::from_declared(f, d),
                None => Value::from_field(f, ty),
            };
            let got = cells.get(k, src);
            assert_eq!(
                format!("{want:?}"),
                format!("{got:?}"),
                "row {k} of {texts:?} as {cells:?}"
            );
            let number = match want {
                Value::Null => Some((0.0, false)),
                Value::Int(i) => Some((i as f64, true)),
                Value::Real(r) => Some((r, true)),
                Value::Text(_) => None,
            };
            assert_eq!(cells.number(k, src), number, "row {k}");
            assert_eq!(
                format!("{:?}", cells.get_ref(k, src)),
                format!("{:?}", got.as_ref()),
                "row {k}"
            );
        }
        cells
    }

    #[test]
    fn every_layout_reads_back_what_the_fields_say() {
        // Few distinct texts: coded; mostly distinct: spans of the
        // content, quoted ones aside; a CR before a line's end is not
        // the field's.
        let few: Vec<&str> = (0..200).map(|i| ["DE", "", "FR"][i % 3]).collect();
        let coded = round_trip(&few, &[], None, Some(Type::Text));
        assert!(matches!(coded, Cells::Coded { .. }));
        let owned: Vec<String> = (0..200).map(|i| format!("user{i}@example.org")).collect();
        let mut many: Vec<&str> = owned.iter().map(String::as_str).collect();
        many[7] = "";
        let spans = round_trip(&many, &[3, 9], None, Some(Type::Text));
        assert!(matches!(spans, Cells::Spans { ref side, .. } if side.len() == 2));
        let crlf = ChunkBytes {
            bytes: b"a\r\nb\n",
            delim: b'|',
        };
        let fields = [
            Field {
                text: "a",
                at: Some(0),
            },
            Field {
                text: "b",
                at: Some(3),
            },
        ];
        let cells = Cells::build(&fields, None, Some(Type::Text));
        assert_eq!(cells.get(0, crlf), Value::text("a"));
        round_trip(
            &["1", "", "-7", "9223372036854775807"],
            &[],
            None,
            Some(Type::Integer),
        );
        round_trip(&["1.5", "", "2", "1e3"], &[], None, Some(Type::Real));
        round_trip(&["", ""], &[], None, None);
        // Declared types with affinity: numbers, and texts among them.
        round_trip(&["5", "2.0", "", "abc"], &[], Some(Type::Integer), None);
        round_trip(&["5", "2.5", ""], &[], Some(Type::Real), None);
        round_trip(&["5", "x", ""], &[1], Some(Type::Text), None);
        round_trip(&["5", "3.0", ""], &[], Some(Type::Integer), None);
    }
}
