//! Strict CSV for tables: RFC 4180 quoting with the database's delimiter, a
//! header line, the key in the first column. Parsing is by hand because the
//! product must *reject* what lenient parsers accept (a stray quote, text
//! after a closing quote, an unterminated quote) and say where.
//!
//! [`TableIndex`] is a whole table parsed: its record offsets and key set
//! (creating a table, verify, merge, frames). Commits keep none: a save is
//! checked by `unindexed::edit`, which parses only the records it changed
//! with the record parser and checks of this file, and refuses a content
//! with the error [`TableIndex::parse`] gives for it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use super::keyhash::KeySet;
use super::linediff;

/// A validation error, with the 1-based line (and column when known) in the
/// content the writer supplied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: u64,
    pub column: Option<u64>,
    pub kind: CsvErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvErrorKind {
    NoHeader,
    NotUtf8,
    /// A NUL byte (0x00): never part of a text table.
    NulByte,
    /// A CR outside quotes not followed by LF (old Mac line endings).
    LoneCarriageReturn,
    UnterminatedQuote,
    QuoteInUnquotedField,
    TextAfterClosingQuote,
    FieldCount {
        expected: usize,
        found: usize,
    },
    EmptyColumnName,
    DuplicateColumn(String),
    EmptyKey,
    DuplicateKey {
        key: String,
        first_line: Option<u64>,
    },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        f.write_str(": ")?;
        match &self.kind {
            CsvErrorKind::NoHeader => f.write_str("empty content: a header line is required"),
            CsvErrorKind::NotUtf8 => f.write_str("not valid UTF-8"),
            CsvErrorKind::NulByte => f.write_str(
                "NUL byte (0x00): a table is text and holds no NUL (a binary or UTF-16 file? convert it to UTF-8)",
            ),
            CsvErrorKind::LoneCarriageReturn => f.write_str(
                "a lone carriage return (CR): lines end with LF or CRLF; convert old Mac line endings with `tr '\\r' '\\n'`",
            ),
            CsvErrorKind::UnterminatedQuote => f.write_str("quoted field is never closed"),
            CsvErrorKind::QuoteInUnquotedField => f.write_str(
                "quote inside an unquoted field (quote the whole field and double the quote)",
            ),
            CsvErrorKind::TextAfterClosingQuote => {
                f.write_str("text after a closing quote (expected a delimiter or end of line)")
            }
            CsvErrorKind::FieldCount { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            CsvErrorKind::EmptyColumnName => f.write_str("empty column name in the header"),
            CsvErrorKind::DuplicateColumn(c) => write!(f, "duplicate column name {c:?}"),
            CsvErrorKind::EmptyKey => {
                f.write_str("empty key (the first column identifies the row)")
            }
            CsvErrorKind::DuplicateKey { key, first_line } => match first_line {
                Some(l) => write!(f, "duplicate key {key:?} (first on line {l})"),
                None => write!(f, "duplicate key {key:?}"),
            },
        }
    }
}

impl std::error::Error for CsvError {}

/// One record found by [`parse_record`].
pub(super) struct Record {
    /// Offset just past the record's line terminator (or the end of input).
    pub(super) end: usize,
    pub(super) fields: usize,
    /// The decoded first field.
    pub(super) key: Vec<u8>,
    /// Line terminators consumed, including the final one.
    pub(super) newlines: u64,
}

/// Parses the record starting at `pos`. `line` is its 1-based line number,
/// used for errors only.
pub(super) fn parse_record(
    b: &[u8],
    mut pos: usize,
    delim: u8,
    line: u64,
) -> Result<Record, CsvError> {
    let mut fields = 0usize;
    let mut key = Vec::new();
    let mut newlines = 0u64;
    let err = |newlines: u64, field: usize, kind| CsvError {
        line: line + newlines,
        column: Some(field as u64 + 1),
        kind,
    };
    loop {
        // At the start of a field.
        let quoted = pos < b.len() && b[pos] == b'"';
        if quoted {
            pos += 1;
            let opened_at = newlines;
            loop {
                let Some(q) = b[pos..].iter().position(|&c| c == b'"' || c == b'\n') else {
                    // Report the line where the quote opened: that is where the mistake is.
                    return Err(err(opened_at, fields, CsvErrorKind::UnterminatedQuote));
                };
                if fields == 0 {
                    key.extend_from_slice(&b[pos..pos + q]);
                }
                pos += q;
                if b[pos] == b'\n' {
                    newlines += 1;
                    if fields == 0 {
                        key.push(b'\n');
                    }
                    pos += 1;
                    continue;
                }
                // A quote: doubled means a literal quote, else the field ends.
                if pos + 1 < b.len() && b[pos + 1] == b'"' {
                    if fields == 0 {
                        key.push(b'"');
                    }
                    pos += 2;
                    continue;
                }
                pos += 1;
                break;
            }
            fields += 1;
            match b.get(pos) {
                None => break,
                Some(&c) if c == delim => pos += 1,
                Some(b'\n') => {
                    pos += 1;
                    newlines += 1;
                    break;
                }
                Some(b'\r') if b.get(pos + 1) == Some(&b'\n') => {
                    pos += 2;
                    newlines += 1;
                    break;
                }
                // Not "text after the quote": the file's line endings are the mistake.
                Some(b'\r') => {
                    return Err(err(newlines, fields - 1, CsvErrorKind::LoneCarriageReturn));
                }
                Some(_) => {
                    return Err(err(
                        newlines,
                        fields - 1,
                        CsvErrorKind::TextAfterClosingQuote,
                    ));
                }
            }
        } else {
            let start = pos;
            let stop = b[pos..]
                .iter()
                .position(|&c| c == delim || c == b'\n' || c == b'"')
                .map_or(b.len(), |i| pos + i);
            if stop < b.len() && b[stop] == b'"' {
                // A CR before the quote (every one here is lone): CR-only
                // line ends put the next line's quoted field here, and the
                // line ends are the mistake to name.
                let kind = if memchr::memchr(b'\r', &b[start..stop]).is_some() {
                    CsvErrorKind::LoneCarriageReturn
                } else {
                    CsvErrorKind::QuoteInUnquotedField
                };
                return Err(err(newlines, fields, kind));
            }
            let mut value_end = stop;
            if (stop == b.len() || b[stop] == b'\n')
                && value_end > start
                && b[value_end - 1] == b'\r'
            {
                value_end -= 1;
            }
            if fields == 0 {
                key.extend_from_slice(&b[start..value_end]);
            }
            fields += 1;
            pos = stop;
            match b.get(pos) {
                None => break,
                Some(b'\n') => {
                    pos += 1;
                    newlines += 1;
                    break;
                }
                Some(_) => pos += 1, // the delimiter
            }
        }
    }
    Ok(Record {
        end: pos,
        fields,
        key,
        newlines,
    })
}

/// A valid table's content, parsed whole: its columns, record offsets and keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableIndex {
    pub columns: Vec<String>,
    /// Offset where the first data record starts (just past the header).
    pub header_end: usize,
    /// Start offset of every data record, ascending.
    pub starts: Vec<usize>,
    /// Total content length.
    pub len: usize,
    pub keys: KeySet,
}

/// A changed region: `old` bytes of the base were replaced by `new` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub old: Range<usize>,
    pub new: Range<usize>,
}

/// End of the record that starts at `start`: one past its newline, or the
/// end of the buffer. Newlines inside quotes do not end a record; doubled
/// quotes toggle twice and so leave the state as it was. (For content that
/// is valid CSV; no validation.)
pub fn record_end(b: &[u8], start: usize) -> usize {
    let mut quoted = false;
    let mut pos = start;
    while let Some(k) = memchr::memchr2(b'"', b'\n', &b[pos..]) {
        let at = pos + k;
        if b[at] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            return at + 1;
        }
        pos = at + 1;
    }
    b.len()
}

/// Start offsets of the records from `start` (a record start) to the end
/// of `b`, in one pass at memchr speed (valid CSV; no validation).
pub fn record_starts(b: &[u8], start: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut pos = start;
    if pos < b.len() {
        out.push(pos);
    }
    while let Some(k) = memchr::memchr2(b'"', b'\n', &b[pos..]) {
        let at = pos + k;
        if b[at] == b'"' {
            quoted = !quoted;
        } else if !quoted && at + 1 < b.len() {
            out.push(at + 1);
        }
        pos = at + 1;
    }
    out
}

/// Lengths of the common prefix and of the common suffix of what remains
/// (they never overlap).
pub fn common_ends(a: &[u8], b: &[u8]) -> (usize, usize) {
    let p = common_prefix(a, b);
    let max_s = (a.len() - p).min(b.len() - p);
    (
        p,
        common_suffix(&a[a.len() - max_s..], &b[b.len() - max_s..]),
    )
}

/// Block sizes for comparing, largest first: big blocks run at memcmp
/// speed, the small ones narrow down a difference.
const BLOCKS: [usize; 3] = [16 * 1024, 512, 16];

/// Length of the common prefix, compared a block at a time (memcmp speed).
pub fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    for block in BLOCKS {
        while i + block <= n && a[i..i + block] == b[i..i + block] {
            i += block;
        }
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Length of the common suffix, compared a block at a time.
pub fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut i = 0;
    for block in BLOCKS {
        while i + block <= n && a[n - i - block..n - i] == b[n - i - block..n - i] {
            i += block;
        }
    }
    i + a[..n - i]
        .iter()
        .rev()
        .zip(b[..n - i].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// The 1-based line of `offset` in `b` (error paths: one pass over `b`).
pub(super) fn line_of(b: &[u8], offset: usize) -> u64 {
    1 + memchr::memchr_iter(b'\n', &b[..offset.min(b.len())]).count() as u64
}

pub(super) fn utf8_check(b: &[u8], range: Range<usize>, base_line: u64) -> Result<(), CsvError> {
    match std::str::from_utf8(&b[range.clone()]) {
        Ok(_) => Ok(()),
        Err(e) => {
            let at = range.start + e.valid_up_to();
            Err(CsvError {
                line: base_line + line_of(&b[range.start..at], at - range.start) - 1,
                column: None,
                kind: CsvErrorKind::NotUtf8,
            })
        }
    }
}

/// Refuses a NUL byte in `b[range]`, before any parse, as [`utf8_check`]
/// refuses invalid UTF-8: a text table never holds one (it marks a binary or
/// UTF-16 file, and C-string tools would cut a value at it), and checked
/// first it is reported as itself, not as the broken quoting it can cause
/// (`"a"\0|`). `from` is a record start at or before `range.start`: fields
/// are counted from the start of the NUL's record, found from there (error
/// path only).
pub(super) fn nul_check(
    b: &[u8],
    range: Range<usize>,
    from: usize,
    delim: u8,
) -> Result<(), CsvError> {
    let Some(k) = memchr::memchr(0, &b[range.clone()]) else {
        return Ok(());
    };
    let at = range.start + k;
    let mut start = from;
    loop {
        let end = record_end(b, start);
        if end > at || end >= b.len() {
            break;
        }
        start = end;
    }
    Err(CsvError {
        line: line_of(b, at),
        column: Some(field_at(&b[start..], at - start, delim)),
        kind: CsvErrorKind::NulByte,
    })
}

/// Refuses a CR outside quotes that does not start a CRLF in `r`, a record
/// [`parse_record`] accepted (so it starts outside quotes). Such a CR is an
/// old Mac line ending: accepted, a file of them would be one header line
/// and every row would be lost. A CR inside quotes is data, and CRLF line
/// ends stay as they are. `line` is the record's first line; the error
/// names the line and the field (1-based, like every [`CsvError`] column)
/// of the first such CR. (`parse_record` itself reports one where it would
/// otherwise report the broken quoting it causes.)
pub(super) fn cr_check(b: &[u8], r: Range<usize>, line: u64, delim: u8) -> Result<(), CsvError> {
    let rec = &b[r.clone()];
    // Quote parity from the record's start says whether a CR is quoted: an
    // accepted record has quotes only around quoted fields and doubled
    // inside them. Counted from the previous CR on, so a long quoted field
    // full of CRs costs one pass.
    let mut quoted = false;
    let mut counted = 0;
    for at in memchr::memchr_iter(b'\r', rec) {
        if b.get(r.start + at + 1) == Some(&b'\n') {
            continue; // CRLF: a line end outside quotes, data inside
        }
        quoted ^= memchr::memchr_iter(b'"', &rec[counted..at]).count() % 2 == 1;
        counted = at;
        if !quoted {
            return Err(CsvError {
                line: line + memchr::memchr_iter(b'\n', &rec[..at]).count() as u64,
                column: Some(field_at(rec, at, delim)),
                kind: CsvErrorKind::LoneCarriageReturn,
            });
        }
    }
    Ok(())
}

/// The 1-based field holding offset `at` of a record that starts outside
/// quotes (error path only: one pass over the record).
fn field_at(rec: &[u8], at: usize, delim: u8) -> u64 {
    let mut quoted = false;
    let mut field = 1;
    for &c in &rec[..at] {
        if c == b'"' {
            quoted = !quoted;
        } else if c == delim && !quoted {
            field += 1;
        }
    }
    field
}

/// Content without its leading UTF-8 byte-order marks (EF BB BF). Editors
/// on Windows and spreadsheet exports put one before the first byte; kept,
/// it would become part of the first column's name (`\u{feff}id`), which no
/// query names. It is an encoding mark, not content, so every door that
/// saves a writer's table bytes strips it. All leading marks go (a file
/// converted twice has two), which makes the call idempotent: doors that
/// pass content on to one another agree. A mark anywhere else is data.
/// Owned content is cut in place, borrowed content is re-sliced; neither
/// copies when there is no mark.
pub fn strip_bom<'a>(content: impl Into<Cow<'a, [u8]>>) -> Cow<'a, [u8]> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut content = content.into();
    let mut n = 0;
    while content[n..].starts_with(BOM) {
        n += BOM.len();
    }
    if n > 0 {
        match &mut content {
            Cow::Borrowed(b) => *b = &b[n..],
            Cow::Owned(v) => {
                v.drain(..n);
            }
        }
    }
    content
}

impl TableIndex {
    pub fn rows(&self) -> usize {
        self.starts.len()
    }

    /// Byte range of data row `i`.
    pub fn row_range(&self, i: usize) -> Range<usize> {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.len);
        self.starts[i]..end
    }

    /// Parses and validates a whole table.
    pub fn parse(b: &[u8], delim: u8) -> Result<TableIndex, CsvError> {
        if b.is_empty() {
            return Err(CsvError {
                line: 1,
                column: None,
                kind: CsvErrorKind::NoHeader,
            });
        }
        utf8_check(b, 0..b.len(), 1)?;
        nul_check(b, 0..b.len(), 0, delim)?;
        // Most tables hold no CR but those of CRLF line ends: one pass over
        // the content spares them a look at every record. Only where a CR
        // precedes something else must quoting say whether it is data.
        let cr_to_check = memchr::memchr_iter(b'\r', b).any(|i| b.get(i + 1) != Some(&b'\n'));
        // The header's line ends before its names: CR-only line endings make
        // the whole file one header line, whose names would be checked first.
        let header = parse_record(b, 0, delim, 1)?;
        if cr_to_check {
            cr_check(b, 0..header.end, 1, delim)?;
        }
        let (columns, header_end, mut line) = parse_header(b, delim)?;
        let mut index = TableIndex {
            columns,
            header_end,
            starts: Vec::new(),
            len: b.len(),
            // One key a line, about: the set is not regrown a million times.
            keys: KeySet::with_capacity_and_hasher(
                memchr::memchr_iter(b'\n', b).count(),
                Default::default(),
            ),
        };
        let mut pos = header_end;
        while pos < b.len() {
            let rec = parse_record(b, pos, delim, line)?;
            if cr_to_check {
                cr_check(b, pos..rec.end, line, delim)?;
            }
            check_record(&rec, index.columns.len(), line)?;
            if !index.keys.insert(rec.key) {
                let key = parse_record(b, pos, delim, line)?.key;
                return Err(duplicate_key(b, &index, &key, line, delim));
            }
            index.starts.push(pos);
            line += rec.newlines;
            pos = rec.end;
        }
        Ok(index)
    }

    /// Record starts including the header record at 0.
    pub(super) fn all_starts(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.starts.len() + 1);
        if self.len > 0 {
            v.push(0);
        }
        v.extend_from_slice(&self.starts);
        v
    }
}

/// Checks a parsed data record against a header of `columns` fields: its
/// field count and a non-empty key. `line` is its first line.
pub(super) fn check_record(rec: &Record, columns: usize, line: u64) -> Result<(), CsvError> {
    if rec.fields != columns {
        return Err(CsvError {
            line,
            column: None,
            kind: CsvErrorKind::FieldCount {
                expected: columns,
                found: rec.fields,
            },
        });
    }
    if rec.key.is_empty() {
        return Err(CsvError {
            line,
            column: Some(1),
            kind: CsvErrorKind::EmptyKey,
        });
    }
    Ok(())
}

/// Column names of a table's content (its header line).
pub fn header_columns(b: &[u8], delim: u8) -> Result<Vec<String>, CsvError> {
    parse_header(b, delim).map(|(c, _, _)| c)
}

fn parse_header(b: &[u8], delim: u8) -> Result<(Vec<String>, usize, u64), CsvError> {
    let mut columns = Vec::new();
    let mut pos = 0;
    let header = parse_record(b, 0, delim, 1)?;
    // parse_record validated the line; decode each of its fields.
    while pos < header.end {
        let (value, next, last) = next_field(&b[..header.end], pos, delim);
        columns.push(field_text(value).into_owned());
        if last {
            break;
        }
        pos = next;
    }
    let mut seen = HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        let err = |kind| CsvError {
            line: 1,
            column: Some(i as u64 + 1),
            kind,
        };
        if c.is_empty() {
            return Err(err(CsvErrorKind::EmptyColumnName));
        }
        if !seen.insert(c.as_str()) {
            return Err(err(CsvErrorKind::DuplicateColumn(c.clone())));
        }
    }
    Ok((columns, header.end, 1 + header.newlines))
}

/// Decodes the field at `pos` of an already validated record (borrowed
/// unless it was quoted); returns it, the offset just past its delimiter or
/// line terminator, and whether it was the record's last field.
pub(super) fn next_field(b: &[u8], mut pos: usize, delim: u8) -> (Cow<'_, [u8]>, usize, bool) {
    let value: Cow<'_, [u8]> = if b.get(pos) == Some(&b'"') {
        let mut out = Vec::new();
        pos += 1;
        while let Some(k) = memchr::memchr(b'"', &b[pos..]) {
            out.extend_from_slice(&b[pos..pos + k]);
            pos += k + 1;
            if b.get(pos) == Some(&b'"') {
                out.push(b'"');
                pos += 1;
            } else {
                break;
            }
        }
        Cow::Owned(out)
    } else {
        let (field, len) = plain_field(b, pos, delim);
        pos += len;
        Cow::Borrowed(field)
    };
    if b.get(pos) == Some(&b'\r') {
        pos += 1;
    }
    let last = b.get(pos).is_none_or(|&c| c == b'\n');
    if pos < b.len() {
        pos += 1; // the delimiter or '\n'
    }
    (value, pos, last)
}

/// The unquoted field that starts at `pos`: up to the delimiter or the
/// end of its line (a CR before a line's end is the line's, not the
/// field's); with the bytes up to that delimiter or line end.
pub fn plain_field(b: &[u8], pos: usize, delim: u8) -> (&[u8], usize) {
    let rest = b.get(pos..).unwrap_or_default();
    let len = memchr::memchr2(delim, b'\n', rest).unwrap_or(rest.len());
    let field = &rest[..len];
    match field.strip_suffix(b"\r") {
        Some(f) if rest.get(len).is_none_or(|&c| c == b'\n') => (f, len),
        _ => (field, len),
    }
}

fn field_text(f: Cow<'_, [u8]>) -> Cow<'_, str> {
    match f {
        Cow::Borrowed(s) => String::from_utf8_lossy(s),
        Cow::Owned(v) => Cow::Owned(
            String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

/// Every field of a stored table's content (validated when it was
/// committed), header first, in one pass: (value, whether it ends its
/// record). Values are borrowed unless quoted. For readers that parse a
/// whole version (queries); no validation, no allocation per plain field.
pub fn fields(b: &[u8], delim: u8) -> impl Iterator<Item = (Cow<'_, str>, bool)> {
    fields_at(b, delim).map(|(f, last, _)| (f, last))
}

/// `fields`, with where each field starts in `b`.
pub fn fields_at(b: &[u8], delim: u8) -> impl Iterator<Item = (Cow<'_, str>, bool, usize)> {
    let mut pos = 0;
    // After a field that did not end its record, one more follows even at
    // the end of the content (`1|` ends with an empty field).
    let mut in_record = false;
    std::iter::from_fn(move || {
        if pos >= b.len() && !in_record {
            return None;
        }
        let at = pos;
        let (value, next, last) = next_field(b, pos, delim);
        (pos, in_record) = (next, !last);
        Some((field_text(value), last, at))
    })
}

/// Whether a field must be quoted: it holds the delimiter, a quote or a
/// line break.
pub fn needs_quotes(v: &str, delim: u8) -> bool {
    v.bytes()
        .any(|c| c == delim || c == b'"' || c == b'\n' || c == b'\r')
}

/// A field as CSV writes it: quoted (quotes doubled) when it needs to be.
pub fn quote_field(v: &str, delim: u8) -> std::borrow::Cow<'_, str> {
    if needs_quotes(v, delim) {
        std::borrow::Cow::Owned(format!("\"{}\"", v.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// A record of `fields`, each quoted as needed, ended by a newline.
pub fn render_record<S: AsRef<str>>(fields: &[S], delim: u8) -> Vec<u8> {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(delim as char);
        }
        line.push_str(&quote_field(f.as_ref(), delim));
    }
    line.push('\n');
    line.into_bytes()
}

/// Decodes every field of the record starting at `pos` (used for diffs and
/// display; the record must be valid).
pub fn record_fields(b: &[u8], pos: usize, delim: u8) -> Vec<String> {
    let end = parse_record(b, pos, delim, 0).map_or(b.len(), |r| r.end);
    let mut fields = Vec::new();
    let mut p = pos;
    loop {
        let (value, next, last) = next_field(&b[..end], p, delim);
        fields.push(field_text(value).into_owned());
        if last {
            break;
        }
        p = next;
    }
    fields
}

fn duplicate_key(b: &[u8], index: &TableIndex, key: &[u8], line: u64, delim: u8) -> CsvError {
    let first_line = index
        .starts
        .iter()
        .find(|&&st| parse_record(b, st, delim, 0).is_ok_and(|r| r.key == key))
        .map(|&st| line_of(b, st));
    duplicate_key_at(key, line, first_line)
}

/// The error of a record on `line` whose key `key` an earlier record, on
/// `first_line` when known, already has.
pub(super) fn duplicate_key_at(key: &[u8], line: u64, first_line: Option<u64>) -> CsvError {
    CsvError {
        line,
        column: Some(1),
        kind: CsvErrorKind::DuplicateKey {
            key: String::from_utf8_lossy(key).into_owned(),
            first_line,
        },
    }
}

/// Row-aligned hunks between two whole contents, given their record starts.
pub(super) fn row_hunks(
    old: &[u8],
    old_starts: &[usize],
    new: &[u8],
    new_starts: &[usize],
) -> Vec<Hunk> {
    row_hunks_in(old, old_starts, old.len(), new, new_starts, new.len())
}

/// Diffs the records of two regions (each given by its record starts and its
/// end) and returns the changed byte ranges, coalesced. The diff is bounded
/// by work, not time (`linediff`): the hunks depend on the contents alone.
pub(super) fn row_hunks_in(
    old: &[u8],
    old_starts: &[usize],
    old_end: usize,
    new: &[u8],
    new_starts: &[usize],
    new_end: usize,
) -> Vec<Hunk> {
    fn rows<'a>(b: &'a [u8], starts: &[usize], end: usize) -> Vec<Row<'a>> {
        (0..starts.len())
            .map(|i| Row::new(&b[starts[i]..starts.get(i + 1).copied().unwrap_or(end)]))
            .collect()
    }
    let old_rows = rows(old, old_starts, old_end);
    let new_rows = rows(new, new_starts, new_end);
    let old_at = |i: usize| old_starts.get(i).copied().unwrap_or(old_end);
    let new_at = |i: usize| new_starts.get(i).copied().unwrap_or(new_end);
    linediff::diff(&old_rows, &new_rows)
        .into_iter()
        .map(|c| Hunk {
            old: old_at(c.old.start)..old_at(c.old.end),
            new: new_at(c.new.start)..new_at(c.new.end),
        })
        .collect()
}

/// A record's bytes with their hash: rows compare by hash first, so the
/// diff's many comparisons are one `u64` compare each, and by bytes only
/// when the hashes agree.
struct Row<'a> {
    hash: u64,
    bytes: &'a [u8],
}

impl<'a> Row<'a> {
    fn new(bytes: &'a [u8]) -> Row<'a> {
        // FxHash's step over 8-byte words: fast, and collisions only cost a
        // byte comparison.
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
        let mut words = bytes.chunks_exact(8);
        let mut h = bytes.len() as u64;
        for w in &mut words {
            h = step(h, u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        Row {
            hash: step(h, u64::from_le_bytes(tail)),
            bytes,
        }
    }
}

impl PartialEq for Row<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.bytes == other.bytes
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_end_skips_quoted_newlines() {
        let b = b"1|\"a\nb\"|x\n2|y\n3|z";
        assert_eq!(record_end(b, 0), 10);
        assert_eq!(record_end(b, 10), 14);
        assert_eq!(record_end(b, 14), b.len());
        assert_eq!(record_starts(b, 0), [0, 10, 14]);
        assert_eq!(record_starts(b"h\n1\n", 2), [2]);
        assert_eq!(record_starts(b"h\n", 2), Vec::<usize>::new());
    }

    #[test]
    fn fields_split_stored_content_like_record_fields() {
        let b = b"id|v|w\r\n1|\"a|\"\"b\"\"\nc\"|\n2||x\n3|y|";
        let got: Vec<(String, bool)> = fields(b, b'|').map(|(f, l)| (f.into_owned(), l)).collect();
        let want = [
            ("id", false),
            ("v", false),
            ("w", true),
            ("1", false),
            ("a|\"b\"\nc", false),
            ("", true),
            ("2", false),
            ("", false),
            ("x", true),
            ("3", false),
            ("y", false),
            ("", true),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(f, l)| (f.to_string(), *l)).collect();
        assert_eq!(got, want);
        let idx = TableIndex::parse(b, b'|').unwrap();
        let rows: Vec<Vec<String>> = idx
            .starts
            .iter()
            .map(|&st| record_fields(b, st, b'|'))
            .collect();
        assert_eq!(rows[0], ["1", "a|\"b\"\nc", ""]);
        assert_eq!(rows[2], ["3", "y", ""]);
    }

    use super::*;

    fn table_text() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let field = prop_oneof![
            "[a-c]{0,3}",
            Just("\"q|\"\"x\"".to_string()),
            Just("\"multi\nline\"".to_string()),
        ];
        let row = proptest::collection::vec(field, 2..=2);
        (
            proptest::collection::vec(row, 0..12),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(rows, crlf, last_nl)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut s = String::from("id|v");
                for (i, r) in rows.iter().enumerate() {
                    s.push_str(nl);
                    s.push_str(&format!(
                        "{i}{}|{}",
                        r[0].trim_matches('"').replace(['"', '\n', '|'], ""),
                        r[1]
                    ));
                }
                if last_nl {
                    s.push_str(nl);
                }
                s.into_bytes()
            })
    }

    /// The error `TableIndex::parse` gives for `b`, as (line, column, kind).
    fn refused(b: &[u8]) -> (u64, Option<u64>, CsvErrorKind) {
        let e = TableIndex::parse(b, b'|').expect_err("must be refused");
        (e.line, e.column, e.kind)
    }

    #[test]
    fn a_nul_byte_is_refused_with_its_line_and_field() {
        use CsvErrorKind::NulByte;
        // At the start, in the middle of a row, in the last field, after
        // the last line, and inside a quoted field (on its second line).
        assert_eq!(refused(b"\0id|v\n1|a\n"), (1, Some(1), NulByte));
        assert_eq!(refused(b"id|v\n1|a\n2|b\0c\n3|d\n"), (3, Some(2), NulByte));
        assert_eq!(refused(b"id|v\n1|a\0"), (2, Some(2), NulByte));
        assert_eq!(refused(b"id|v\n1|a\n\0"), (3, Some(1), NulByte));
        assert_eq!(refused(b"id|v\n1|\"a\nb\0\"\n"), (3, Some(2), NulByte));
        // Even where the rest of the record would be refused for another
        // reason: the NUL (a binary or UTF-16 file) is the real mistake.
        assert_eq!(refused(b"id|v\n1|a|\0\n"), (2, Some(3), NulByte));
        assert_eq!(refused(b"id|v\n1|\"a\"\0\n"), (2, Some(2), NulByte));
        assert_eq!(refused(b"id|v\r\n1|a\r\0\n"), (2, Some(2), NulByte));
        let msg = TableIndex::parse(b"id|v\n1|a\n2|b\0\n", b'|')
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("line 3, column 2: NUL byte (0x00)"),
            "{msg}"
        );
    }

    #[test]
    fn a_lone_cr_is_refused_as_a_line_ending() {
        use CsvErrorKind::LoneCarriageReturn as Cr;
        // Old Mac line endings: one header line that would swallow the rows.
        assert_eq!(refused(b"id|name|n\r1|a|1\r"), (1, Some(3), Cr));
        assert_eq!(refused(b"id\r"), (1, Some(1), Cr));
        // In a row, inside an unquoted value, at the very end, after a
        // closing quote, and a CR doubled before a CRLF.
        assert_eq!(refused(b"id|v\n1|a\r2|b\n"), (2, Some(2), Cr));
        assert_eq!(refused(b"id|v\n1|a\rb|c\n"), (2, Some(2), Cr));
        assert_eq!(refused(b"id|v\n1|a\n2|b\r"), (3, Some(2), Cr));
        assert_eq!(refused(b"id|v\n1|\"a\"\r2|b\n"), (2, Some(2), Cr));
        assert_eq!(refused(b"id|v\r\n1|a\r\r\n"), (2, Some(2), Cr));
        // CR line ends before a quoted field: the line end is named, not
        // the quote it seems to misplace.
        assert_eq!(refused(b"id|v\r\"1\"|a\r"), (1, Some(2), Cr));
        assert_eq!(refused(b"id|v\n1|a\r\"2\"|b\r"), (2, Some(2), Cr));
        let msg = TableIndex::parse(b"id|name|n\r1|a|1\r", b'|')
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "line 1, column 3: a lone carriage return (CR): lines end with LF or CRLF; \
             convert old Mac line endings with `tr '\\r' '\\n'`"
        );
    }

    #[test]
    fn a_cr_inside_quotes_is_data() {
        let b = b"id|v\n1|\"a\rb\"\n2|\"\r\"\n\"3\r\"|\"x\r\ny\"\n";
        let idx = TableIndex::parse(b, b'|').unwrap();
        let rows: Vec<Vec<String>> = idx
            .starts
            .iter()
            .map(|&st| record_fields(b, st, b'|'))
            .collect();
        assert_eq!(rows, [["1", "a\rb"], ["2", "\r"], ["3\r", "x\r\ny"]]);
    }

    #[test]
    fn crlf_line_ends_are_accepted_as_before() {
        // What the parser did with CRLF before lone CRs were refused: the CR
        // of a CRLF is no part of a value, key or column name; the offsets
        // are those of the bytes as written (the content is stored as is).
        for b in [
            &b"id|v\r\n1|a\r\n\"2\"|\"x\r\ny\"\r\n3|\r\n"[..],
            &b"id|v\r\n1|a\r\n\"2\"|\"x\r\ny\"\r\n3|"[..],
        ] {
            let idx = TableIndex::parse(b, b'|').unwrap();
            assert_eq!(idx.columns, ["id", "v"]);
            assert_eq!(idx.header_end, 6);
            assert_eq!(idx.starts, [6, 11, 23]);
            let keys: KeySet = [&b"1"[..], b"2", b"3"]
                .map(|k| k.to_vec())
                .into_iter()
                .collect();
            assert_eq!(idx.keys, keys);
            assert_eq!(record_fields(b, 6, b'|'), ["1", "a"]);
            assert_eq!(record_fields(b, 11, b'|'), ["2", "x\r\ny"]);
            assert_eq!(record_fields(b, 23, b'|'), ["3", ""]);
            assert_eq!(header_columns(b, b'|').unwrap(), ["id", "v"]);
        }
    }

    #[test]
    fn strip_bom_removes_only_leading_marks() {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let table = b"id|v\n1|a\n".to_vec();
        let with = [BOM, &table].concat();
        assert_eq!(&*strip_bom(&with[..]), &table[..], "borrowed");
        assert_eq!(&*strip_bom(with.clone()), &table[..], "owned");
        assert!(matches!(strip_bom(&table[..]), Cow::Borrowed(_)));
        // Twice converted: both leading marks go, so stripping is idempotent.
        let twice = [BOM, BOM, &table].concat();
        assert_eq!(&*strip_bom(twice), &table[..]);
        assert_eq!(&*strip_bom(strip_bom(&with[..])), &table[..]);
        // Kept, the mark is part of the first column's name; stripped, not.
        let cols = |b: &[u8]| TableIndex::parse(b, b'|').unwrap().columns;
        assert_eq!(cols(&with), ["\u{feff}id", "v"]);
        assert_eq!(cols(&strip_bom(&with[..])), ["id", "v"]);
        // Anywhere else a mark is data: a value, even one at a line start.
        for mid in [
            &b"id|v\n1|\xEF\xBB\xBFa\n"[..],
            b"id|v\n\xEF\xBB\xBF1|a\n",
            b"id|v\n1|a\n\xEF\xBB\xBF",
        ] {
            assert_eq!(&*strip_bom(mid), mid);
        }
        assert!(strip_bom(BOM).is_empty());
        assert!(strip_bom(Vec::new()).is_empty());
    }

    /// Through the store: `Table::commit` and `Database::create_table` save
    /// without the mark; a NUL or a lone CR is refused and the head stays.
    #[test]
    fn saves_strip_the_bom_and_refuse_nul_and_lone_cr() {
        use crate::storage::{Action, Base, CommitOptions, Database, RealIo, StorageError};
        let dir = tempfile::tempdir().unwrap();
        let db = Database::init(std::sync::Arc::new(RealIo), dir.path(), "shop", '|').unwrap();
        let c = db
            .create_table("t", b"\xEF\xBB\xBFid|v\n1|a\n", "tester")
            .unwrap();
        assert_eq!(c.version.seq, 1);
        let t = db.table("t").unwrap();
        assert_eq!(t.columns().unwrap(), ["id", "v"]);
        assert_eq!(&t.head().unwrap().1[..], b"id|v\n1|a\n");
        let opts = CommitOptions::new(Action::Update, "tester");
        let c = t
            .commit(Base::Head, b"\xEF\xBB\xBFid|v\n1|a\n2|b\n".to_vec(), &opts)
            .unwrap();
        assert_eq!(c.version.seq, 2);
        assert_eq!(t.columns().unwrap(), ["id", "v"]);
        let head = t.head().unwrap();
        assert_eq!(&head.1[..], b"id|v\n1|a\n2|b\n");
        // The same content with a mark is no change at all.
        let c = t
            .commit(Base::Head, b"\xEF\xBB\xBFid|v\n1|a\n2|b\n".to_vec(), &opts)
            .unwrap();
        assert!(!c.created);
        for (bad, kind) in [
            (&b"id|v\n1|a\n2|b\0\n"[..], CsvErrorKind::NulByte),
            (b"id|v\r1|a\r2|b\r", CsvErrorKind::LoneCarriageReturn),
        ] {
            match t.commit(Base::Head, bad.to_vec(), &opts) {
                Err(StorageError::Csv(e)) => assert_eq!(e.kind, kind),
                other => panic!("expected a CSV error, got {other:?}"),
            }
            assert_eq!(t.head().unwrap(), head, "the head is unchanged");
            assert_eq!(t.versions().unwrap().len(), 2);
        }
        t.flush();
        let on_disk = std::fs::read(dir.path().join("tables/t/current.csv")).unwrap();
        assert_eq!(on_disk, b"id|v\n1|a\n2|b\n");
        // create_table validates the content as it will be stored, before it
        // creates anything: here the mark hid an empty first column name.
        match db.create_table("x", b"\xEF\xBB\xBF|v\n1|a\n", "tester") {
            Err(StorageError::Csv(e)) => assert_eq!(e.kind, CsvErrorKind::EmptyColumnName),
            other => panic!("expected a CSV error, got {other:?}"),
        }
        assert!(!dir.path().join("tables/x").exists());
    }

    proptest::proptest! {
        /// A NUL put anywhere into a valid table is refused by a full parse,
        /// on its line. (That a commit's check of the changed region gives
        /// the same error is `edit_agrees_with_a_full_parse`, unindexed.rs.)
        #[test]
        fn a_nul_anywhere_is_refused_with_its_line(old in table_text(), at in 0usize..400) {
            let at = at.min(old.len());
            let mut new = old.clone();
            new.insert(at, 0);
            let full = TableIndex::parse(&new, b'|').unwrap_err();
            proptest::prop_assert_eq!(&full.kind, &CsvErrorKind::NulByte);
            proptest::prop_assert_eq!(full.line, line_of(&new, at));
        }

        /// A CR put anywhere into a valid table is accepted by a full parse
        /// exactly where it is data (inside quotes) or starts a CRLF, and
        /// refused on the line of the first CR that is neither.
        #[test]
        fn a_cr_is_accepted_only_in_quotes_or_before_lf(old in table_text(), at in 0usize..400) {
            let at = at.min(old.len());
            let mut new = old.clone();
            new.insert(at, b'\r');
            // The first CR outside quotes not followed by LF (it may be one
            // that was there before: a CR of a CRLF that now precedes the
            // new one). In valid content, the parity of the quotes before a
            // byte says whether it is inside a quoted field.
            let lone = (0..new.len()).find(|&i| {
                new[i] == b'\r'
                    && new.get(i + 1) != Some(&b'\n')
                    && new[..i].iter().filter(|&&c| c == b'"').count() % 2 == 0
            });
            match (lone, TableIndex::parse(&new, b'|')) {
                (None, Ok(_)) => {}
                (Some(i), Err(f)) => {
                    proptest::prop_assert_eq!(&f.kind, &CsvErrorKind::LoneCarriageReturn);
                    proptest::prop_assert_eq!(f.line, line_of(&new, i));
                }
                (lone, full) => proptest::prop_assert!(
                    false,
                    "expected a lone CR at {:?}, got {:?} for {:?}",
                    lone, full, String::from_utf8_lossy(&new)
                ),
            }
        }
    }
}
