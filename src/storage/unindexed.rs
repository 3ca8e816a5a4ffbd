//! Checking a new content against a head that has no [`TableIndex`]: the
//! first commit of a process (`rdb table:import`, a frame, a DML statement)
//! does not parse the whole head to build one, which at 1M rows cost most
//! of a 1-row import.
//!
//! The head is a committed version, so it is valid (see [`trusted`] for the
//! rules it may predate). Of the new content only the records of the changed
//! region are parsed and checked, as a full parse checks them; the records
//! before and after it are the head's own, valid and with unique keys, so
//! the one thing left to check is that none of them has a key the region
//! brings: one scan of their first fields at memchr speed, looking each up
//! in the region's few keys, instead of hashing every key of the table.
//!
//! A refused content gets the error [`TableIndex::parse`] gives for it: the
//! same kind, line, column and first line of a duplicate (the property test
//! below checks it on random edits).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::ControlFlow;

use super::csv::{
    CsvError, Hunk, TableIndex, check_record, cr_check, duplicate_key_at, line_of, next_field,
    nul_check, parse_record, record_end, record_starts, row_hunks, row_hunks_in, utf8_check,
};

/// What [`edit`] found valid.
#[derive(Debug, PartialEq)]
pub enum Checked {
    /// The header is unchanged: the row-aligned hunks that turn the head
    /// into the new content, and the new content's row count.
    Edited { hunks: Vec<Hunk>, rows: usize },
    /// The header changed, so every row was parsed: the new content's index
    /// and the hunks.
    Parsed { index: TableIndex, hunks: Vec<Hunk> },
}

/// Whether `head`, a non-empty committed version, can stand for valid
/// content without a parse. Every version met the rules of its time; since
/// then a NUL byte and a CR that does not start a CRLF are refused too, so a
/// head holding one may be invalid now and is parsed in full (the save is
/// then checked in full, as it must: what it keeps of the head breaks a
/// rule). A CR is refused only outside quotes, which only a parse tells:
/// any such CR, even quoted data, takes the full path (rare and still
/// correct). Two passes at memchr speed.
pub fn trusted(head: &[u8]) -> bool {
    !head.is_empty()
        && memchr::memchr(0, head).is_none()
        && memchr::memchr_iter(b'\r', head).all(|i| head.get(i + 1) == Some(&b'\n'))
}

/// Checks `new` against `old`, a valid head (see [`trusted`]), given their
/// common prefix `p` and suffix `s` (as [`super::csv::common_ends`] gives
/// them; `new` differs from `old` and is not empty).
pub fn edit(old: &[u8], new: &[u8], delim: u8, p: usize, s: usize) -> Result<Checked, CsvError> {
    edit_searching(old, new, delim, (p, s), SEARCHED_KEYS)
}

/// [`edit`], searching the unchanged records for up to `searched` region
/// keys one by one (see [`scan`]; the tests try both ways).
fn edit_searching(
    old: &[u8],
    new: &[u8],
    delim: u8,
    (p, s): (usize, usize),
    searched: usize,
) -> Result<Checked, CsvError> {
    let header = match parse_record(old, 0, delim, 1) {
        Ok(h) => h,
        // Cannot happen to a valid head; the full parse decides.
        Err(_) => return parse_whole(old, new, delim),
    };
    let header_end = header.end;
    // A header without its newline (a header-only table) can be extended by
    // the edit itself: treat that like a header change.
    let open_header = header_end == old.len() && !old.ends_with(b"\n");
    if p < header_end || new.len() < header_end || open_header {
        return parse_whole(old, new, delim);
    }
    let columns = header.fields;
    // The region starts at the record holding the first changed byte; the
    // bytes before it are the head's records.
    let r0 = record_start_at(old, header_end, p);
    let tail = new.len() - s;
    // Line numbers are counted from the region's start and fixed up only on
    // error: counting the lines before it would cost a scan of the table.
    let lines_before = || line_of(new, r0) - 1;
    let moved = |mut e: CsvError| {
        e.line += lines_before();
        e
    };
    // A full parse checks UTF-8 and NUL bytes first, over everything. The
    // head's bytes are valid UTF-8 and hold no NUL; `r0` follows a newline
    // and so does the end of the line that holds the suffix's first byte,
    // so new[..r0] and what follows that line are whole characters of the
    // head: only the bytes between can be invalid.
    let checked_to = memchr::memchr(b'\n', &new[tail..]).map_or(new.len(), |i| tail + i + 1);
    utf8_check(new, r0..checked_to, 1).map_err(moved)?;
    nul_check(new, p..tail, r0, delim)?;
    let (region, error) = parse_region(old, new, delim, columns, (r0, p, s));
    // Region records by key, first occurrence; and the first record whose
    // key an earlier record of the region has.
    let mut first: KeyMap<'_> = HashMap::with_capacity_and_hasher(
        region.keys.len(),
        foldhash::fast::RandomState::default(),
    );
    let mut inner: Option<(usize, usize)> = None;
    for (j, k) in region.keys.iter().enumerate() {
        match first.entry(k.as_slice()) {
            Entry::Occupied(o) => {
                inner.get_or_insert((j, *o.get()));
            }
            Entry::Vacant(v) => {
                v.insert(j);
            }
        }
    }
    let at = |j: usize| lines_before() + region.lines[j];
    // The records before the region: the first region record whose key one
    // of them has (with that record's start).
    let mut clash: Option<(usize, usize)> = None;
    let scanned = |range, hit: &mut dyn FnMut(usize, usize) -> ControlFlow<()>| {
        scan(new, range, (delim, columns), &first, searched, hit)
    };
    let before = scanned((header_end, r0), &mut |start, j| {
        if clash.is_none_or(|(c, _)| j < c) {
            clash = Some((j, start));
        }
        ControlFlow::Continue(())
    });
    // A full parse stops at the first record that fails: the earliest of a
    // duplicate of a key before the region, a duplicate inside it, and the
    // region's first invalid record (every key collected precedes it).
    let dup = match (clash, inner) {
        (Some((j, st)), Some((k, _))) if j < k => Some((j, line_of(new, st))),
        (Some((j, st)), None) => Some((j, line_of(new, st))),
        (_, Some((k, i))) => Some((k, at(i))),
        (None, None) => None,
    };
    if let Some((j, first_line)) = dup {
        return Err(duplicate_key_at(&region.keys[j], at(j), Some(first_line)));
    }
    if let Some(e) = error {
        return Err(moved(e));
    }
    // The records after the region: the first whose key the region has.
    let mut late: Option<(usize, usize)> = None;
    let after = scanned((region.new_end, new.len()), &mut |start, j| {
        late = Some((start, j));
        ControlFlow::Break(())
    });
    if let Some((start, j)) = late {
        return Err(duplicate_key_at(
            &region.keys[j],
            line_of(new, start),
            Some(at(j)),
        ));
    }
    let old_starts = record_starts(&old[..region.old_end], r0);
    let hunks = row_hunks_in(
        old,
        &old_starts,
        region.old_end,
        new,
        &region.starts,
        region.new_end,
    );
    Ok(Checked::Edited {
        hunks,
        rows: before + region.starts.len() + after,
    })
}

/// Keys of the region's records: the first record (by number) of each.
type KeyMap<'a> = HashMap<&'a [u8], usize, foldhash::fast::RandomState>;

/// The header changed (or the head is not what it should be): the new
/// content is parsed whole, and diffed against every record of the head.
fn parse_whole(old: &[u8], new: &[u8], delim: u8) -> Result<Checked, CsvError> {
    let index = TableIndex::parse(new, delim)?;
    let hunks = row_hunks(old, &record_starts(old, 0), new, &index.all_starts());
    Ok(Checked::Parsed { index, hunks })
}

/// The start of the record of valid content `b` (a stored version) whose
/// key is `key`, at memchr speed (the row log's history of a row in a
/// version it did not list).
pub(crate) fn find_key(b: &[u8], key: &[u8], delim: u8) -> Option<usize> {
    let header = parse_record(b, 0, delim, 1).ok()?;
    let columns = header.fields;
    let mut keys: KeyMap<'_> = HashMap::with_capacity_and_hasher(1, Default::default());
    keys.insert(key, 0);
    let mut found = None;
    scan(
        b,
        (header.end, b.len()),
        (delim, columns),
        &keys,
        1,
        &mut |start, _| {
            found = Some(start);
            ControlFlow::Break(())
        },
    );
    found
}

/// The start of the record of valid content `b` that holds byte `p`, or that
/// starts at `p` (`header_end <= p <= b.len()`). Quotes are paired in valid
/// content (a quoted field opens and closes, a quote inside is doubled), so
/// the parity of the quotes from `header_end` says whether a byte is inside
/// a quoted field; the record starts after the nearest newline before `p`
/// that is outside quotes.
fn record_start_at(b: &[u8], header_end: usize, p: usize) -> usize {
    let mut quoted = memchr::memchr_iter(b'"', &b[header_end..p]).count() % 2 == 1;
    let mut x = p;
    while let Some(k) = memchr::memrchr2(b'"', b'\n', &b[header_end..x]) {
        let at = header_end + k;
        if b[at] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            return at + 1;
        }
        x = at;
    }
    header_end
}

/// The parsed records of the changed region of `new`.
struct Region {
    /// Start of each record.
    starts: Vec<usize>,
    /// Its key.
    keys: Vec<Vec<u8>>,
    /// Its first line, counted from the region's first line (1).
    lines: Vec<u64>,
    /// Where the region ends in `new` and in `old`: the same records follow.
    new_end: usize,
    old_end: usize,
}

/// Parses and checks the records of `new` from `r0` (the record start
/// holding byte `p`) until the parse realigns with a record start of `old`
/// inside the common suffix of `s` bytes, or the end. Stops at the first
/// record that fails, returned with what was parsed before it (lines are
/// relative to the region's first line).
fn parse_region(
    old: &[u8],
    new: &[u8],
    delim: u8,
    columns: usize,
    (r0, p, s): (usize, usize, usize),
) -> (Region, Option<CsvError>) {
    let tail = new.len() - s;
    // Realigning: a record start `pos` of `new` inside the common suffix is
    // followed by the same bytes as `old_pos` in `old`. That is a record
    // start of `old` if a newline precedes it outside quotes. The records
    // parsed from `r0` to `pos` are valid, so they hold an even number of
    // quotes, and `r0` is a record start of both: the parity of the quotes
    // of `old` from `r0` to `old_pos` is that of the changed bytes of both
    // sides together (the bytes before `p` and from the suffix on are the
    // same on both). When it is odd, no record start of `new` in the suffix
    // is one of `old`, and the region runs to the end.
    let odd = |b: &[u8]| memchr::memchr_iter(b'"', b).count() % 2;
    let realigns = odd(&old[p..old.len() - s]) == odd(&new[p..tail]);
    let mut region = Region {
        starts: Vec::new(),
        keys: Vec::new(),
        lines: Vec::new(),
        new_end: new.len(),
        old_end: old.len(),
    };
    let mut pos = r0;
    let mut line = 1;
    while pos < new.len() {
        if realigns && pos > r0 && pos >= tail {
            // pos >= tail, so new.len() - pos <= s <= old.len().
            let old_pos = old.len() - (new.len() - pos);
            if old_pos.checked_sub(1).and_then(|i| old.get(i)) == Some(&b'\n') {
                region.new_end = pos;
                region.old_end = old_pos;
                break;
            }
        }
        let rec = match parse_record(new, pos, delim, line).and_then(|rec| {
            cr_check(new, pos..rec.end, line, delim)?;
            check_record(&rec, columns, line)?;
            Ok(rec)
        }) {
            Ok(rec) => rec,
            Err(e) => return (region, Some(e)),
        };
        region.starts.push(pos);
        region.keys.push(rec.key);
        region.lines.push(line);
        line += rec.newlines;
        pos = rec.end;
    }
    (region, None)
}

/// Up to this many region keys, each line start of the unchanged records is
/// compared with them ([`scan_searching`]); past it, each record's key is
/// decoded and looked up ([`scan_records`]). At 1M rows the first takes
/// ~20 ms, the second ~30 ms.
const SEARCHED_KEYS: usize = 4;

/// Counts the records of `b[from..to]`, valid content in which a record
/// starts at `from` (after a newline) and one ends at `to`, and calls
/// `hit(start, j)` for each record whose key `keys` holds (`j` its value),
/// in order, until `hit` breaks (the count is then partial). `columns` is
/// the header's field count; up to `searched` keys are searched for.
fn scan(
    b: &[u8],
    (from, to): (usize, usize),
    (delim, columns): (u8, usize),
    keys: &KeyMap<'_>,
    searched: usize,
    hit: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> usize {
    if keys.len() <= searched {
        scan_searching(b, (from, to), delim, columns, keys, hit)
    } else {
        scan_records(b, (from, to), delim, keys, hit)
    }
}

/// [`scan`] by record: a memchr for each line end (a quoted field, found by
/// a memchr for quotes that skips the lines before it, is followed to its
/// record's end), and the first field of each record looked up in `keys`.
fn scan_records(
    b: &[u8],
    (from, to): (usize, usize),
    delim: u8,
    keys: &KeyMap<'_>,
    hit: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> usize {
    let b = &b[..to];
    let Some(rest) = b.get(from..) else {
        return 0;
    };
    let mut next_quote = memchr::memchr(b'"', rest).map_or(b.len(), |i| from + i);
    let mut rows = 0;
    let mut pos = from;
    while pos < b.len() {
        let nl = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i + 1);
        let end = if next_quote < nl {
            let e = record_end(b, pos);
            next_quote = memchr::memchr(b'"', &b[e..]).map_or(b.len(), |i| e + i);
            e
        } else {
            nl
        };
        rows += 1;
        let (key, _, _) = next_field(&b[..end], pos, delim);
        if let Some(&j) = keys.get(&*key)
            && hit(pos, j).is_break()
        {
            break;
        }
        pos = end;
    }
    rows
}

/// [`scan`] for a few keys, at memchr speed: one pass over the line ends
/// counts them and compares the start of each line with the forms a record
/// holding one of the keys starts with (its text, and its quoted form).
/// A line start that matches is then checked to be a record start (quote
/// parity from `from`) whose first field is the key. Records are the line
/// ends outside quotes (plus a last record without one).
fn scan_searching(
    b: &[u8],
    (from, to): (usize, usize),
    delim: u8,
    columns: usize,
    keys: &KeyMap<'_>,
    hit: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> usize {
    let b = &b[..to];
    let Some(rest) = b.get(from..) else {
        return 0;
    };
    // How a record holding each key starts. With more than one column a
    // key is followed by a delimiter.
    let mut forms: Vec<(Vec<u8>, usize)> = Vec::with_capacity(2 * keys.len());
    for (&key, &j) in keys {
        let mut quoted = vec![b'"'];
        for &c in key {
            quoted.push(c);
            if c == b'"' {
                quoted.push(b'"');
            }
        }
        quoted.push(b'"');
        forms.push((quoted, j));
        // A key with a delimiter, quote, CR or newline is always quoted.
        if !key
            .iter()
            .any(|&c| c == delim || c == b'"' || c == b'\n' || c == b'\r')
        {
            forms.push((key.to_vec(), j));
        }
    }
    if columns > 1 {
        for (f, _) in &mut forms {
            f.push(delim);
        }
    }
    let mut first = [false; 256];
    for (f, _) in &forms {
        if let Some(&c) = f.first() {
            first[usize::from(c)] = true;
        }
    }
    let mut candidates: Vec<(usize, usize)> = Vec::new();
    let mut look = |start: usize| {
        if b.get(start).is_some_and(|&c| first[usize::from(c)]) {
            for (f, j) in &forms {
                if b[start..].starts_with(f) {
                    candidates.push((start, *j));
                }
            }
        }
    };
    look(from);
    let mut lines = 0usize;
    for i in memchr::memchr_iter(b'\n', rest) {
        lines += 1;
        look(from + i + 1);
    }
    let quoted = memchr::memchr(b'"', rest).is_some();
    if quoted {
        // Line ends inside quoted fields: between a quote of even rank and
        // the next one (quotes are paired in valid content; a doubled one
        // makes an empty pair).
        let mut quotes = memchr::memchr_iter(b'"', rest);
        while let (Some(open), Some(close)) = (quotes.next(), quotes.next()) {
            let inside = memchr::memchr_iter(b'\n', &rest[open..close]).count();
            lines = lines.saturating_sub(inside);
        }
    }
    let rows = lines + usize::from(!rest.is_empty() && !rest.ends_with(b"\n"));
    // Quote parity from `from` up to `counted`.
    let (mut counted, mut odd) = (from, false);
    for (start, j) in candidates {
        if quoted {
            odd ^= memchr::memchr_iter(b'"', &b[counted..start]).count() % 2 == 1;
            counted = start;
            if odd {
                continue;
            }
        }
        if keys.get(&*next_field(b, start, delim).0) == Some(&j) && hit(start, j).is_break() {
            break;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::csv::{CsvErrorKind, common_ends};

    /// Applies `hunks` (old ranges replaced by new ranges) to `old`.
    fn apply(old: &[u8], new: &[u8], hunks: &[Hunk]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for h in hunks {
            out.extend_from_slice(&old[at..h.old.start]);
            out.extend_from_slice(&new[h.new.clone()]);
            at = h.old.end;
        }
        out.extend_from_slice(&old[at..]);
        out
    }

    /// [`edit`] of `old` into `new` agrees with a full parse of `new`: both
    /// accept it (then with its row count, and hunks that make `new` from
    /// `old`) or both refuse it with the same error.
    fn agrees(old: &[u8], new: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prop_assert_eq;
        let full = TableIndex::parse(new, b'|');
        if new.is_empty() || new == old {
            return Ok(()); // the commit handles these before any check
        }
        let (p, s) = common_ends(old, new);
        let by_record = edit_searching(old, new, b'|', (p, s), 0);
        let got = edit(old, new, b'|', p, s);
        prop_assert_eq!(&by_record, &got);
        match (got, full) {
            (Ok(Checked::Edited { hunks, rows }), Ok(f)) => {
                prop_assert_eq!(rows, f.rows());
                prop_assert_eq!(apply(old, new, &hunks), new);
            }
            (Ok(Checked::Parsed { index, hunks }), Ok(f)) => {
                prop_assert_eq!(index, f);
                prop_assert_eq!(apply(old, new, &hunks), new);
            }
            (Err(e), Err(f)) => prop_assert_eq!(e, f),
            (got, want) => proptest::prop_assert!(
                false,
                "unindexed {:?} vs full {:?} for {:?}",
                got,
                want,
                String::from_utf8_lossy(new)
            ),
        }
        Ok(())
    }

    /// Random tables of 1 to 3 columns: keys from a small alphabet (so
    /// edits make duplicates), quoted fields with the delimiter, doubled
    /// quotes and newlines (also in keys), LF or CRLF, with or without a
    /// last newline.
    fn table() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let field = prop_oneof![
            4 => "[a-c]{0,3}",
            1 => Just("\"q|\"\"x\"".to_string()),
            1 => Just("\"multi\nline\"".to_string()),
            1 => Just("\"\r\n\"".to_string()),
        ];
        let key = prop_oneof![
            4 => "[a-d0-9]{1,2}",
            1 => Just("\"k\ny\"".to_string()),
            1 => Just("\"k\"\"q\"".to_string()),
            1 => Just("\"5\"".to_string()),
        ];
        (
            proptest::collection::vec((key, field.clone(), field), 0..14),
            1usize..=3,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(rows, columns, crlf, last_nl)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut s = ["id", "v", "w"][..columns].join("|");
                let mut seen = std::collections::HashSet::new();
                for (k, v, w) in rows {
                    // By value: "5" and 5 are the same key.
                    if seen.insert(k.trim_matches('"').replace("\"\"", "\"")) {
                        s.push_str(nl);
                        s.push_str(&[k, v, w][..columns].join("|"));
                    }
                }
                if last_nl {
                    s.push_str(nl);
                }
                s.into_bytes()
            })
    }

    /// One edit of a table's text, at byte `at` (clamped).
    #[derive(Debug, Clone)]
    enum Edit {
        /// `del` bytes replaced by `ins` (quotes, newlines, CRs, delimiters,
        /// NULs, invalid UTF-8: mostly refused).
        Splice { at: usize, del: usize, ins: Vec<u8> },
        /// The table's line number `n` copied to the start of the line
        /// holding `at`: a duplicate key (or a record cut in two).
        Copy { at: usize, n: usize },
        /// A valid row `k|v` (LF or CRLF) put at the start of the line
        /// holding `at`: accepted unless `k` is taken.
        Row { at: usize, k: String, crlf: bool },
        /// The line holding `at` removed.
        Remove { at: usize },
        /// `len` bytes at `at` replaced by as many letters: usually a
        /// changed value, or key.
        Letters { at: usize, len: usize },
    }

    fn line_start(b: &[u8], at: usize) -> usize {
        b[..at]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1)
    }

    fn edited(old: &[u8], edits: &[Edit]) -> Vec<u8> {
        let mut new = old.to_vec();
        let lines: Vec<&[u8]> = old.split_inclusive(|&c| c == b'\n').collect();
        for e in edits {
            match e {
                Edit::Splice { at, del, ins } => {
                    let at = (*at).min(new.len());
                    let end = (at + del).min(new.len());
                    new.splice(at..end, ins.iter().copied());
                }
                Edit::Copy { at, n } => {
                    let line = lines.get(n % lines.len().max(1)).copied().unwrap_or(b"");
                    let start = line_start(&new, (*at).min(new.len()));
                    new.splice(start..start, line.iter().copied());
                }
                Edit::Row { at, k, crlf } => {
                    let row = format!("{k}|r{}", if *crlf { "\r\n" } else { "\n" });
                    let start = line_start(&new, (*at).min(new.len()));
                    new.splice(start..start, row.bytes());
                }
                Edit::Remove { at } => {
                    let at = (*at).min(new.len());
                    let start = line_start(&new, at);
                    let end = memchr::memchr(b'\n', &new[at..]).map_or(new.len(), |i| at + i + 1);
                    new.drain(start..end);
                }
                Edit::Letters { at, len } => {
                    let at = (*at).min(new.len());
                    let end = (at + len).min(new.len());
                    for (i, c) in new[at..end].iter_mut().enumerate() {
                        *c = b"xyz"[i % 3];
                    }
                }
            }
        }
        new
    }

    /// 1 or 2 edits at offsets below `max_at`.
    fn edit_list(max_at: usize) -> impl proptest::strategy::Strategy<Value = Vec<Edit>> {
        use proptest::prelude::*;
        let bytes = proptest::collection::vec(
            prop_oneof![
                40 => proptest::sample::select(b"ab5|\"\n\r".to_vec()),
                1 => Just(0u8),
                1 => Just(0xffu8),
                1 => Just(0xc3u8),
            ],
            0..10,
        );
        let key = prop_oneof![
            "[a-d0-9]{1,2}",
            Just("\"k\ny\"".to_string()),
            Just("\"5\"".to_string()),
            "[e-z]{3}",
        ];
        let edit = prop_oneof![
            3 => (0..max_at, 0usize..20, bytes)
                .prop_map(|(at, del, ins)| Edit::Splice { at, del, ins }),
            1 => (0..max_at, 0usize..1000).prop_map(|(at, n)| Edit::Copy { at, n }),
            2 => (0..max_at, key, any::<bool>())
                .prop_map(|(at, k, crlf)| Edit::Row { at, k, crlf }),
            1 => (0..max_at).prop_map(|at| Edit::Remove { at }),
            2 => (0..max_at, 1usize..4).prop_map(|(at, len)| Edit::Letters { at, len }),
        ];
        proptest::collection::vec(edit, 1..3)
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(3000))]

        /// Accept or refuse, and the error, exactly as a full parse.
        #[test]
        fn edit_agrees_with_a_full_parse(old in table(), edits in edit_list(300)) {
            proptest::prop_assume!(TableIndex::parse(&old, b'|').is_ok());
            let new = edited(&old, &edits);
            agrees(&old, &new)?;
        }

        /// Long tables: the region is a few rows among many, so the scans
        /// of the rows before and after it are what finds a duplicate.
        #[test]
        fn edits_of_long_tables_agree_with_a_full_parse(
            n in 50usize..300,
            quoted in proptest::bool::ANY,
            crlf in proptest::bool::ANY,
            edits in edit_list(12_000),
        ) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut s = format!("id|v{nl}");
            for i in 0..n {
                if quoted && i % 7 == 3 {
                    s.push_str(&format!("\"{i}\"|\"x{nl}{i}|y\"{nl}"));
                } else {
                    s.push_str(&format!("{i}|v{i}{nl}"));
                }
            }
            let old = s.into_bytes();
            let new = edited(&old, &edits);
            agrees(&old, &new)?;
        }
    }

    proptest::proptest! {
        /// Searching for a few keys finds the records a record-by-record
        /// scan finds, and counts the same records, on any range of whole
        /// records.
        #[test]
        fn searching_finds_what_a_record_scan_finds(
            old in table(),
            picks in proptest::collection::vec(0usize..20, 0..=SEARCHED_KEYS),
            other in "[a-d0-9]{1,2}",
            (a, z) in (0usize..20, 0usize..20),
        ) {
            let Ok(idx) = TableIndex::parse(&old, b'|') else {
                return Ok(());
            };
            let columns = idx.columns.len();
            let own: Vec<Vec<u8>> = idx
                .starts
                .iter()
                .filter_map(|&st| parse_record(&old, st, b'|', 0).ok().map(|r| r.key))
                .collect();
            let mut keys: KeyMap<'_> = HashMap::default();
            for (j, pick) in picks.iter().enumerate() {
                if let Some(k) = own.get(pick % own.len().max(1)) {
                    keys.entry(k.as_slice()).or_insert(j);
                }
            }
            if keys.len() < SEARCHED_KEYS {
                keys.entry(other.as_bytes()).or_insert(99);
            }
            let mut bounds = idx.all_starts();
            bounds[0] = idx.header_end;
            bounds.push(old.len());
            let (a, z) = (bounds[a % bounds.len()], bounds[z % bounds.len()]);
            let range = (a.min(z), a.max(z));
            let (mut by_record, mut searched) = (Vec::new(), Vec::new());
            let rows = scan_records(&old, range, b'|', &keys, &mut |start, j| {
                by_record.push((start, j));
                ControlFlow::Continue(())
            });
            let rows2 = scan_searching(&old, range, b'|', columns, &keys, &mut |start, j| {
                searched.push((start, j));
                ControlFlow::Continue(())
            });
            proptest::prop_assert_eq!(rows, rows2);
            proptest::prop_assert_eq!(by_record, searched);
        }
    }

    #[test]
    fn duplicates_are_named_where_a_full_parse_names_them() {
        let old = b"id|v\n1|a\n2|b\n3|c\n4|d\n".to_vec();
        let cases: [&[u8]; 5] = [
            // Before the region, inside it, after it, quoted, in a
            // multi-line quoted key.
            b"id|v\n1|a\n2|b\n1|x\n4|d\n",
            b"id|v\n1|a\n2|b\n5|c\n5|d\n",
            b"id|v\n1|a\n4|b\n3|c\n4|d\n",
            b"id|v\n1|a\n\"3\"|b\n3|c\n4|d\n",
            b"id|v\n\"4\n\"|a\n2|b\n3|c\n\"4\n\"|d\n",
        ];
        for new in cases {
            let (p, s) = common_ends(&old, new);
            let got = edit(&old, new, b'|', p, s).unwrap_err();
            assert!(matches!(got.kind, CsvErrorKind::DuplicateKey { .. }));
            assert_eq!(got, TableIndex::parse(new, b'|').unwrap_err());
        }
    }

    #[test]
    fn an_edit_inside_a_quoted_field_starts_at_its_record() {
        let old = b"id|v\n1|\"a\n2|b\nc\"\n3|d\n";
        assert_eq!(record_start_at(old, 5, 12), 5);
        assert_eq!(record_start_at(old, 5, 17), 17);
        assert_eq!(record_start_at(old, 5, 19), 17);
        let new = b"id|v\n1|\"a\n2|x\nc\"\n3|d\n";
        let (p, s) = common_ends(old, new);
        match edit(old, new, b'|', p, s).unwrap() {
            Checked::Edited { rows, hunks } => {
                assert_eq!(rows, 2);
                assert_eq!(apply(old, new, &hunks), new);
            }
            other => panic!("{other:?}"),
        }
    }

    /// `edit` of `old` into `new`, given their common ends.
    fn checked(old: &[u8], new: &[u8]) -> Result<Checked, CsvError> {
        let (p, s) = common_ends(old, new);
        edit(old, new, b'|', p, s)
    }

    /// A header-only table without its newline can be extended by the edit
    /// itself (the header line grows), and a changed header applies to every
    /// row: both are parsed whole, and [`Checked::Parsed`] hands the commit
    /// the new columns ([`Checked::Edited`] promises an unchanged header).
    #[test]
    fn a_header_only_table_can_grow_and_a_changed_header_checks_every_row() {
        let accepted: [(&[u8], &[u8]); 4] = [
            (b"id|v", b"id|v\n1|a\n"),
            (b"k", b"k\n"),
            (b"id|v", b"id|vw\n1|a\n"),
            (b"id|v\n1|a\n2|b\n", b"id|w\n1|a\n2|b\n"),
        ];
        for (old, new) in accepted {
            match checked(old, new) {
                Ok(Checked::Parsed { index, hunks }) => {
                    assert_eq!(index, TableIndex::parse(new, b'|').unwrap());
                    assert_eq!(apply(old, new, &hunks), new);
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(new)),
            }
        }
        use CsvErrorKind::{DuplicateColumn, FieldCount};
        let error = |line, column, kind| CsvError { line, column, kind };
        let count = |expected, found| FieldCount { expected, found };
        let refused: [(&[u8], &[u8], CsvError); 3] = [
            // The header line extended to three columns: the row has two.
            (b"id|v", b"id|vx|w\n1|2\n", error(2, None, count(3, 2))),
            // A column added: the first row that lacks it, on line 3.
            (
                b"id|v\n1|a\n2|b\n",
                b"id|v|w\n1|a|x\n2|b\n",
                error(3, None, count(3, 2)),
            ),
            (
                b"id|v\n1|a\n",
                b"id|id\n1|a\n",
                error(1, Some(2), DuplicateColumn("id".into())),
            ),
        ];
        for (old, new, want) in refused {
            assert_eq!(checked(old, new).unwrap_err(), want);
            assert_eq!(TableIndex::parse(new, b'|').unwrap_err(), want);
        }
    }

    /// `n` rows `i|name i`, LF or CRLF line ends.
    fn big_table(n: usize, nl: &str) -> Vec<u8> {
        let mut s = format!("id|name{nl}");
        for i in 1..=n {
            s.push_str(&format!("{i}|name {i}{nl}"));
        }
        s.into_bytes()
    }

    /// Replaces the first occurrence of `from` in `b` by `to`.
    fn replaced(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = b.windows(from.len()).position(|w| w == from).unwrap();
        [&b[..at], to, &b[at + from.len()..]].concat()
    }

    /// A NUL or a lone CR put into one row of a large table is refused by
    /// the check of the changed region alone, with the row's line (counted
    /// only on error) and field, as a full parse refuses it.
    #[test]
    fn a_nul_or_a_lone_cr_in_one_row_is_refused_with_its_line_and_field() {
        use CsvErrorKind::{LoneCarriageReturn, NulByte};
        for nl in ["\n", "\r\n"] {
            let old = big_table(2000, nl);
            let header_end = nl.len() + "id|name".len();
            let row = format!("{nl}1000|name 1000{nl}");
            let cases: [(String, CsvErrorKind); 4] = [
                (format!("{nl}1000|na\0me 1000{nl}"), NulByte),
                (format!("{nl}1000|name 1000\0{nl}"), NulByte),
                (format!("{nl}1000|na\rme 1000{nl}"), LoneCarriageReturn),
                (format!("{nl}1000|name 1000\r\r{nl}"), LoneCarriageReturn),
            ];
            for (bad_row, kind) in cases {
                let new = replaced(&old, row.as_bytes(), bad_row.as_bytes());
                let (p, s) = common_ends(&old, &new);
                assert!(p > header_end && s > 0, "a small edit in the middle");
                let e = edit(&old, &new, b'|', p, s).unwrap_err();
                assert_eq!((e.line, e.column, &e.kind), (1001, Some(2), &kind));
                assert_eq!(TableIndex::parse(&new, b'|').unwrap_err(), e);
            }
            // A lone CR alone after the last row, and two rows appended
            // with one between them (old Mac line ends).
            for (tail, column) in [(&b"\r"[..], 1), (b"2001|x\r2002|y", 2)] {
                let new = [&old[..], tail].concat();
                let e = checked(&old, &new).unwrap_err();
                let want = (2002, Some(column), &LoneCarriageReturn);
                assert_eq!((e.line, e.column, &e.kind), want);
                assert_eq!(TableIndex::parse(&new, b'|').unwrap_err(), e);
            }
            // The same edit without the bad byte passes.
            let new = replaced(&old, row.as_bytes(), format!("{nl}1000|nom{nl}").as_bytes());
            match checked(&old, &new).unwrap() {
                Checked::Edited { hunks, rows } => {
                    assert_eq!(rows, 2000);
                    assert_eq!(apply(&old, &new, &hunks), new);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_head_with_a_nul_or_a_lone_cr_is_not_trusted() {
        assert!(trusted(b"id|v\r\n1|a\r\n"));
        assert!(!trusted(b"id|v\n1|a\0\n"));
        assert!(!trusted(b"id|v\n1|\"a\rb\"\n"));
        assert!(!trusted(b""));
    }
}
