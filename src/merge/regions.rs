//! The fast path of the merge: work only on the regions that changed.
//!
//! A save usually changes a few rows of a large table, so most bytes are
//! identical in base, ours and theirs. This path finds the changed regions
//! of each side against base by walking the bytes (memcmp speed), groups
//! regions of the two sides that overlap or touch into clusters, and runs
//! the row merge ([`super::merge3_rows`]) on each cluster alone. Bytes
//! outside every cluster are the same on all three sides and are copied
//! from the head.
//!
//! Why this equals the whole-table merge: the row merge decides every key
//! from that key's rows on the three sides, and places rows by their
//! neighbours. A key outside all clusters has the same row on all sides at
//! the same place, so the row merge keeps the head's bytes, as we do. A key
//! inside a cluster has all its rows inside that cluster (checked: a key
//! seen in two clusters, such as a moved row, sends the merge to the slow
//! path), and a cluster's first row follows the same unchanged row on all
//! sides, so the local decision and placement equal the global ones.
//! `tests::region_merge_equals_the_row_merge` checks this property.

use std::collections::HashMap;
use std::ops::Range;

use super::{MergeError, Merged, first_field, merge3_rows};
use crate::storage::ConflictPolicy;
use crate::storage::csv::{common_prefix, record_end};

/// Records looked at on each side to find where two sides agree again
/// after a difference. A larger change sends the merge to the slow path.
const SYNC_WINDOW: usize = 64;

/// One changed region: bytes `base` of base became bytes `side` of a side.
/// Both ranges start and end on record boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    base: Range<usize>,
    side: Range<usize>,
}

/// The next `SYNC_WINDOW` records from `start`: (key, start, end).
fn records_ahead(b: &[u8], start: usize, delim: u8) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < b.len() && out.len() < SYNC_WINDOW {
        let end = record_end(b, at);
        out.push((first_field(&b[at..end], delim), at, end));
        at = end;
    }
    out
}

/// Where base (from record `rb`) and the side (from record `rs`) agree
/// again: the ends of the changed region that starts there, or None when
/// no record key of one side shows up within the window of the other.
fn resync(b: &[u8], rb: usize, s: &[u8], rs: usize, delim: u8) -> Option<(usize, usize)> {
    if rb < b.len() && rs < s.len() {
        // The common case first: the same row, changed.
        let (eb, es) = (record_end(b, rb), record_end(s, rs));
        if first_field(&b[rb..eb], delim) == first_field(&s[rs..es], delim) {
            return Some((eb, es));
        }
    }
    let ahead_b = records_ahead(b, rb, delim);
    let ahead_s = records_ahead(s, rs, delim);
    if ahead_b.is_empty() || ahead_s.is_empty() {
        // One side ends here: the rest of the other is the change.
        return Some((b.len(), s.len()));
    }
    let by_key: HashMap<&str, usize> = ahead_b
        .iter()
        .enumerate()
        .rev()
        .map(|(x, r)| (r.0.as_str(), x))
        .collect();
    // The nearest pair of records with the same key (smallest x + y).
    let mut best: Option<(usize, usize)> = None;
    for (y, r) in ahead_s.iter().enumerate() {
        if best.is_some_and(|(bx, by)| y > bx + by) {
            break;
        }
        if let Some(&x) = by_key.get(r.0.as_str())
            && best.is_none_or(|(bx, by)| x + y < bx + by)
        {
            best = Some((x, y));
        }
    }
    match best {
        Some((x, y)) => {
            let (rec_b, rec_s) = (&ahead_b[x], &ahead_s[y]);
            // The same key with other bytes is a changed row: part of the region.
            if b[rec_b.1..rec_b.2] == s[rec_s.1..rec_s.2] {
                Some((rec_b.1, rec_s.1))
            } else {
                Some((rec_b.2, rec_s.2))
            }
        }
        // Both windows reach the end of their side: all of it changed.
        None if ahead_b.len() < SYNC_WINDOW && ahead_s.len() < SYNC_WINDOW => {
            Some((b.len(), s.len()))
        }
        None => None,
    }
}

/// The changed regions from `b` to `s`, both bodies starting at `start` (a
/// record boundary after identical headers). None when the walk cannot
/// resynchronise cheaply.
fn changes(b: &[u8], s: &[u8], start: usize, delim: u8) -> Option<Vec<Change>> {
    let (mut i, mut j) = (start, start);
    let mut out = Vec::new();
    loop {
        let m = common_prefix(&b[i..], &s[j..]);
        if i + m == b.len() && j + m == s.len() {
            return Some(out);
        }
        // Back to the start of the record holding the first difference. A
        // record that ends without a newline (at the end of base) is part
        // of the change: the side may have extended it.
        let mut r = i;
        if let Some(nl) = memchr::memrchr(b'\n', &b[i..i + m]) {
            // After an even number of quotes from a record start, a newline
            // ends a record: jump to the last one without walking records.
            if memchr::memchr_iter(b'"', &b[i..i + nl])
                .count()
                .is_multiple_of(2)
            {
                r = i + nl + 1;
            }
        }
        while r < b.len() {
            let e = record_end(b, r);
            if e <= i + m && b[e - 1] == b'\n' {
                r = e;
            } else {
                break;
            }
        }
        let (rb, rs) = (r, j + (r - i));
        let (eb, es) = resync(b, rb, s, rs, delim)?;
        out.push(Change {
            base: rb..eb,
            side: rs..es,
        });
        (i, j) = (eb, es);
    }
}

/// Changes of both sides that overlap or touch in base, merged into one
/// region: (base range, ours range, theirs range).
fn clusters(ours: &[Change], theirs: &[Change]) -> Vec<[Range<usize>; 3]> {
    let mut all: Vec<(usize, &Change)> = ours
        .iter()
        .map(|c| (0, c))
        .chain(theirs.iter().map(|c| (1, c)))
        .collect();
    all.sort_by_key(|(_, c)| (c.base.start, c.base.end));
    // Shift from base offsets to each side's, for changes already passed.
    let mut shift = [0i64; 2];
    let mut out: Vec<[Range<usize>; 3]> = Vec::new();
    let mut open: Option<(Range<usize>, [i64; 2])> = None;
    let side_range = |base: &Range<usize>, before: i64, after: i64| {
        (base.start as i64 + before) as usize..(base.end as i64 + after) as usize
    };
    for (side, c) in all {
        if let Some((base, start_shift)) = &mut open {
            if c.base.start <= base.end {
                base.end = base.end.max(c.base.end);
            } else {
                out.push([
                    base.clone(),
                    side_range(base, start_shift[0], shift[0]),
                    side_range(base, start_shift[1], shift[1]),
                ]);
                open = None;
            }
        }
        if open.is_none() {
            open = Some((c.base.clone(), shift));
        }
        shift[side] += c.side.len() as i64 - c.base.len() as i64;
    }
    if let Some((base, start_shift)) = open {
        out.push([
            base.clone(),
            side_range(&base, start_shift[0], shift[0]),
            side_range(&base, start_shift[1], shift[1]),
        ]);
    }
    out
}

/// The keys of the records in `b[range]`.
fn keys_in(b: &[u8], range: &Range<usize>, delim: u8) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at < range.end {
        let end = record_end(b, at).min(range.end);
        out.push(first_field(&b[at..end], delim));
        at = end;
    }
    out
}

/// The region merge, or None when it does not apply (different headers,
/// an empty side, a change too large to resynchronise, a key that moved)
/// and the whole-table merge must run.
pub(super) fn merge3_regions(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    delim: u8,
    policy: ConflictPolicy,
) -> Option<Result<Merged, MergeError>> {
    if base.is_empty() || ours.is_empty() || theirs.is_empty() {
        return None;
    }
    let header_end = record_end(base, 0);
    let header = &base[..header_end];
    if !header.ends_with(b"\n")
        || ours.get(..header_end) != Some(header)
        || theirs.get(..header_end) != Some(header)
    {
        return None;
    }
    let ours_changes = changes(base, ours, header_end, delim)?;
    let theirs_changes = changes(base, theirs, header_end, delim)?;
    let regions = clusters(&ours_changes, &theirs_changes);
    // Every key must stay inside one region.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, [b, o, t]) in regions.iter().enumerate() {
        let keys = keys_in(base, b, delim)
            .into_iter()
            .chain(keys_in(ours, o, delim))
            .chain(keys_in(theirs, t, delim));
        for k in keys {
            if *seen.entry(k).or_insert(n) != n {
                return None;
            }
        }
    }
    let mut content = Vec::with_capacity(theirs.len() + ours.len() / 16);
    let mut conflicts = Vec::new();
    let mut copied = 0; // theirs is copied up to here
    for [b, o, t] in &regions {
        let doc = |side: &[u8], r: &Range<usize>| [header, &side[r.clone()]].concat();
        let merged = match merge3_rows(&doc(base, b), &doc(ours, o), &doc(theirs, t), delim, policy)
        {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        // Equal headers on all sides: the region's merge starts with it.
        let rows = merged.content.strip_prefix(header)?;
        content.extend_from_slice(&theirs[copied..t.start]);
        content.extend_from_slice(rows);
        conflicts.extend(merged.conflicts);
        copied = t.end;
    }
    content.extend_from_slice(&theirs[copied..]);
    // The row merge ends every row with a newline, the last one too.
    if !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    Some(Ok(Merged { content, conflicts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_find_edits_inserts_and_deletes() {
        let base = b"id|v\n1|a\n2|b\n3|c\n4|d\n";
        let side = b"id|v\n1|a\n2|B\n9|new\n3|c\n";
        let c = changes(base, side, 5, b'|').unwrap();
        let show = |c: &Change| {
            (
                String::from_utf8_lossy(&base[c.base.clone()]).into_owned(),
                String::from_utf8_lossy(&side[c.side.clone()]).into_owned(),
            )
        };
        let got: Vec<_> = c.iter().map(show).collect();
        assert_eq!(
            got,
            [
                ("2|b\n".into(), "2|B\n".into()),
                (String::new(), "9|new\n".into()),
                ("4|d\n".into(), String::new())
            ]
        );
    }
}
