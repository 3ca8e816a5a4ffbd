//! Three-way merge of table versions, row by row and cell by cell (Dolt's
//! rule): a conflict exists only where both sides changed the same cell of
//! the same row to different values, where one side deleted a row the other
//! changed, or where both inserted the same key with different content.
//!
//! The merge layer sits on storage and knows nothing of FUSE or SQL. Its
//! door is this module: [`merge3`] for bytes, [`commit_merging`] for a table.

use std::collections::{HashMap, HashSet};

use crate::storage::csv::{TableIndex, record_fields, strip_bom};
use crate::storage::{
    CommitOptions, Committed, ConflictPolicy, CsvError, Database, Frame, FrameCommitted,
    StorageError, Table,
};

/// What kind of disagreement a conflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// Both sides changed the cell to different values.
    Cell,
    /// One side deleted the row, the other changed it.
    DeleteModify,
    /// Both sides inserted the key with different content.
    InsertInsert,
}

/// One conflicting cell (or row, for deletes): the values of base, ours
/// (the late writer) and theirs (the head), `None` where the row is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub key: String,
    pub column: String,
    pub base: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

/// The merged content and what could not merge by itself. With the reject
/// policy, conflicting cells hold the head's values; with last-writer-wins,
/// ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub content: Vec<u8>,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("invalid CSV in the {side} version: {error}")]
    Csv { side: &'static str, error: CsvError },
    #[error("{} conflicting cell(s) with the current head (first: key {:?}, column {:?})", .conflicts.len(), .conflicts.first().map(|c| c.key.clone()).unwrap_or_default(), .conflicts.first().map(|c| c.column.clone()).unwrap_or_default())]
    Conflicts { conflicts: Vec<Conflict>, head: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A parsed side: columns, and rows in file order as (key, fields, raw bytes).
/// Fields are decoded only for rows a merge must look into: most rows are
/// byte-identical across the three sides and are compared as bytes.
struct Side<'a> {
    columns: Vec<String>,
    header_raw: &'a [u8],
    rows: Vec<(String, &'a [u8])>,
    by_key: HashMap<String, usize>,
    delim: u8,
}

/// The decoded first field of a record (the key), cheaply for unquoted ones.
fn first_field(raw: &[u8], delim: u8) -> String {
    if raw.first() == Some(&b'"') {
        return record_fields(raw, 0, delim).swap_remove(0);
    }
    let end = raw
        .iter()
        .position(|&c| c == delim || c == b'\n' || c == b'\r')
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn parse<'a>(b: &'a [u8], delim: u8, side: &'static str) -> Result<Side<'a>, MergeError> {
    if b.is_empty() {
        return Ok(Side {
            columns: Vec::new(),
            header_raw: b,
            rows: Vec::new(),
            by_key: HashMap::new(),
            delim,
        });
    }
    let idx = TableIndex::parse(b, delim).map_err(|error| MergeError::Csv { side, error })?;
    let mut rows = Vec::with_capacity(idx.rows());
    for i in 0..idx.rows() {
        let r = idx.row_range(i);
        rows.push((first_field(&b[r.clone()], delim), &b[r]));
    }
    let by_key = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.0.clone(), i))
        .collect();
    Ok(Side {
        columns: idx.columns.clone(),
        header_raw: &b[..idx.header_end],
        rows,
        by_key,
        delim,
    })
}

impl Side<'_> {
    fn fields(&self, i: usize) -> Vec<String> {
        record_fields(self.rows[i].1, 0, self.delim)
    }

    fn raw(&self, i: usize) -> &[u8] {
        self.rows[i].1
    }

    /// The value of `column` in row `i` ("" when the side lacks the column).
    fn cell(&self, i: usize, column: &str) -> String {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|p| self.fields(i).get(p).cloned())
            .unwrap_or_default()
    }

    fn values(&self, i: usize, columns: &[String]) -> Vec<String> {
        let fields = self.fields(i);
        columns
            .iter()
            .map(|c| {
                self.columns
                    .iter()
                    .position(|x| x == c)
                    .and_then(|p| fields.get(p).cloned())
                    .unwrap_or_default()
            })
            .collect()
    }
}

use crate::storage::csv::render_record as render;

/// Merged columns: the head's, minus columns ours removed (that the head
/// kept from base), plus columns ours added, at the end.
fn merge_columns(base: &[String], ours: &[String], theirs: &[String]) -> Vec<String> {
    let mut cols: Vec<String> = theirs
        .iter()
        // Keep a head column unless ours removed it (the key column always stays).
        .filter(|c| !base.contains(c) || ours.contains(c) || c.as_str() == theirs[0])
        .cloned()
        .collect();
    for c in ours {
        if !cols.contains(c) && !base.contains(c) {
            cols.push(c.clone());
        }
    }
    cols
}

/// Merges `ours` (a writer's content, started from `base`) with `theirs`
/// (the head, also descended from `base`). Works on the changed regions
/// when it can (see `regions`), on whole tables otherwise; both give the
/// same result.
pub fn merge3(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    delim: u8,
    policy: ConflictPolicy,
) -> Result<Merged, MergeError> {
    regions::merge3_regions(base, ours, theirs, delim, policy)
        .unwrap_or_else(|| merge3_rows(base, ours, theirs, delim, policy))
}

/// The whole-table merge: parses all three versions.
fn merge3_rows(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    delim: u8,
    policy: ConflictPolicy,
) -> Result<Merged, MergeError> {
    let b = parse(base, delim, "base")?;
    let o = parse(ours, delim, "writer's")?;
    let t = parse(theirs, delim, "head")?;
    let columns = if t.columns.is_empty() {
        o.columns.clone()
    } else if o.columns.is_empty() {
        t.columns.clone()
    } else {
        merge_columns(&b.columns, &o.columns, &t.columns)
    };
    let same_shape = |s: &Side| s.columns == columns;
    let mut conflicts = Vec::new();
    let ours_wins = policy == ConflictPolicy::LastWriterWins;

    // The merged value of one row present in base and both sides, or None when deleted.
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(t.rows.len() + o.rows.len());
    let mut placed: HashSet<String> = HashSet::new();
    let mut emitted_after: HashMap<String, usize> = HashMap::new();
    // With the same columns on all sides, rows compare as bytes.
    let same = b.columns == columns && o.columns == columns && t.columns == columns;
    for (ti, (key, raw)) in t.rows.iter().enumerate() {
        let bi = b.by_key.get(key).copied();
        let oi = o.by_key.get(key).copied();
        let row: Option<Vec<u8>> = match (bi, oi) {
            // In base and theirs; ours deleted it.
            (Some(bi), None) => {
                let theirs_changed = if same {
                    t.raw(ti) != b.raw(bi)
                } else {
                    t.values(ti, &columns) != b.values(bi, &columns)
                };
                if !theirs_changed {
                    None
                } else {
                    conflicts.push(Conflict {
                        kind: ConflictKind::DeleteModify,
                        key: key.clone(),
                        column: String::new(),
                        base: Some(b.values(bi, &columns).join("|")),
                        ours: None,
                        theirs: Some(t.values(ti, &columns).join("|")),
                    });
                    if ours_wins { None } else { Some(raw.to_vec()) }
                }
            }
            // In all three, ours untouched: the head's row as it is.
            (Some(bi), Some(oi)) if same && o.raw(oi) == b.raw(bi) => Some(raw.to_vec()),
            // Theirs untouched: ours.
            (Some(bi), Some(oi)) if same && t.raw(ti) == b.raw(bi) => Some(o.raw(oi).to_vec()),
            // Both changed the row: cell by cell.
            (Some(bi), Some(oi)) => {
                let mut vals = Vec::with_capacity(columns.len());
                for c in &columns {
                    let (bv, ov, tv) = (b.cell(bi, c), o.cell(oi, c), t.cell(ti, c));
                    let v = if ov == tv || ov == bv {
                        tv
                    } else if tv == bv {
                        ov
                    } else {
                        conflicts.push(Conflict {
                            kind: ConflictKind::Cell,
                            key: key.clone(),
                            column: c.clone(),
                            base: Some(bv),
                            ours: Some(ov.clone()),
                            theirs: Some(tv.clone()),
                        });
                        if ours_wins { ov } else { tv }
                    };
                    vals.push(v);
                }
                Some(choose_raw(&vals, &columns, (&t, ti), (&o, oi)))
            }
            // Not in base: theirs inserted it; maybe ours too.
            (None, Some(oi)) => {
                let (tv, ov) = (t.values(ti, &columns), o.values(oi, &columns));
                if tv != ov {
                    conflicts.push(Conflict {
                        kind: ConflictKind::InsertInsert,
                        key: key.clone(),
                        column: String::new(),
                        base: None,
                        ours: Some(ov.join("|")),
                        theirs: Some(tv.join("|")),
                    });
                }
                let pick = if tv != ov && ours_wins { ov } else { tv };
                Some(choose_raw(&pick, &columns, (&t, ti), (&o, oi)))
            }
            (None, None) => Some(if same_shape(&t) {
                raw.to_vec()
            } else {
                render(&t.values(ti, &columns), delim)
            }),
        };
        placed.insert(key.clone());
        if let Some(mut r) = row {
            if !r.ends_with(b"\n") {
                r.push(b'\n');
            }
            out.push(r);
            emitted_after.insert(key.clone(), out.len());
        } else {
            // A deleted row still anchors ours' insertions that followed it.
            emitted_after.insert(key.clone(), out.len());
        }
    }
    // Rows only ours has: inserted by ours (not in base), or deleted by
    // theirs (in base): the latter is a conflict only if ours changed it.
    let mut inserts: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut anchor = 0usize;
    for (oi, (key, raw)) in o.rows.iter().enumerate() {
        if let Some(&pos) = emitted_after.get(key) {
            anchor = pos;
            continue;
        }
        if placed.contains(key) {
            continue;
        }
        let row = match b.by_key.get(key) {
            Some(&bi) => {
                let untouched = if same {
                    o.raw(oi) == b.raw(bi)
                } else {
                    o.values(oi, &columns) == b.values(bi, &columns)
                };
                if untouched {
                    None // theirs deleted it, ours left it alone: deleted
                } else {
                    conflicts.push(Conflict {
                        kind: ConflictKind::DeleteModify,
                        key: key.clone(),
                        column: String::new(),
                        base: Some(b.values(bi, &columns).join("|")),
                        ours: Some(o.values(oi, &columns).join("|")),
                        theirs: None,
                    });
                    ours_wins.then(|| raw.to_vec())
                }
            }
            None => Some(if same_shape(&o) {
                raw.to_vec()
            } else {
                render(&o.values(oi, &columns), delim)
            }),
        };
        if let Some(mut r) = row {
            if !r.ends_with(b"\n") {
                r.push(b'\n');
            }
            inserts.push((anchor, r));
        }
    }
    // Splice ours' insertions after their anchors, keeping their order.
    // Anchors are not monotonic when the two sides order shared rows
    // differently; a stable sort keeps ours' order among equal anchors, and
    // the splice below needs them ascending or it would drop rows.
    inserts.sort_by_key(|(anchor, _)| *anchor);
    let mut merged_rows: Vec<Vec<u8>> = Vec::with_capacity(out.len() + inserts.len());
    let mut ins = inserts.into_iter().peekable();
    for pos in 0..=out.len() {
        while let Some((_, r)) = ins.next_if(|(a, _)| *a == pos) {
            merged_rows.push(r);
        }
        if pos < out.len() {
            merged_rows.push(std::mem::take(&mut out[pos]));
        }
    }
    // Both sides emptied the file (no header, no rows): it stays empty.
    if columns.is_empty() && merged_rows.is_empty() {
        return Ok(Merged {
            content: Vec::new(),
            conflicts,
        });
    }
    let header: Vec<u8> = if t.columns == columns && !t.header_raw.is_empty() {
        let mut h = t.header_raw.to_vec();
        if !h.ends_with(b"\n") {
            h.push(b'\n');
        }
        h
    } else {
        render(&columns, delim)
    };
    let mut content = header;
    for r in merged_rows {
        content.extend_from_slice(&r);
    }
    Ok(Merged { content, conflicts })
}

/// Raw bytes for a merged row: the head's or ours' exact bytes when the
/// merged values equal that side's row (and it has the merged columns), so
/// untouched rows keep their bytes; else rendered.
fn choose_raw(
    vals: &[String],
    columns: &[String],
    (t, ti): (&Side, usize),
    (o, oi): (&Side, usize),
) -> Vec<u8> {
    let same = |s: &Side, i: usize| s.columns == columns && s.values(i, columns) == vals;
    if same(t, ti) {
        t.rows[ti].1.to_vec()
    } else if same(o, oi) {
        o.rows[oi].1.to_vec()
    } else {
        render(vals, t.delim)
    }
}

/// [`merge3`] of the three sides of a save as they will be stored: without
/// a leading byte-order mark (`strip_bom`), or the merge would take
/// `\u{feff}id` and `id` for two columns. Ours is stripped already where it
/// came in (`Table::commit_resolving`, `Frame::stage`); stripping it again
/// costs nothing (borrowed, idempotent) and keeps the merge right for any
/// caller. Base and head are stored versions, which hold a mark only if
/// saved before saves stripped it.
fn merge3_stored(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    delim: u8,
    policy: ConflictPolicy,
) -> Result<Merged, MergeError> {
    merge3(
        &strip_bom(base),
        &strip_bom(ours),
        &strip_bom(theirs),
        delim,
        policy,
    )
}

/// How a merging commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The writer's base was the head: committed as is (or unchanged).
    Clean(Committed),
    /// Others committed meanwhile; their changes and ours merged. Under
    /// last-writer-wins, `conflicts` lists the cells ours overwrote.
    Merged {
        committed: Committed,
        conflicts: Vec<Conflict>,
    },
}

/// Commits `content`, written from version `base`, merging with whatever
/// was committed since (under the table lock, so concurrent writers never
/// retry). Under the reject policy a conflict fails the commit
/// (`MergeError::Conflicts`) and nothing changes.
pub fn commit_merging(
    table: &Table,
    base: u64,
    content: Vec<u8>,
    opts: &CommitOptions,
    policy: ConflictPolicy,
    delim: u8,
) -> Result<Outcome, MergeError> {
    let mut merged: Option<Vec<Conflict>> = None;
    let committed =
        table.commit_resolving(base, content, opts, |base_bytes, ours, head_bytes, head| {
            let m = merge3_stored(base_bytes, ours, head_bytes, delim, policy)?;
            if !m.conflicts.is_empty() && policy == ConflictPolicy::Reject {
                return Err(MergeError::Conflicts {
                    conflicts: m.conflicts,
                    head,
                });
            }
            merged = Some(m.conflicts);
            Ok(m.content)
        })?;
    Ok(match merged {
        Some(conflicts) => Outcome::Merged {
            committed,
            conflicts,
        },
        None => Outcome::Clean(committed),
    })
}

/// Commits a frame, merging each table whose head moved since its content
/// was staged, as single saves do. Under the reject policy a conflict in
/// any table fails the whole frame (`MergeError::Conflicts`) and nothing
/// changes; under last-writer-wins the overwritten cells are returned with
/// their table.
pub fn commit_frame_merging(
    db: &Database,
    frame: Frame,
    user: &str,
    policy: ConflictPolicy,
) -> Result<(FrameCommitted, Vec<(String, Conflict)>), MergeError> {
    let delim = db.config().delimiter_byte();
    let mut overwritten = Vec::new();
    let committed =
        db.commit_frame_resolving(frame, user, |table, base, ours, head, head_seq| {
            let m = merge3_stored(base, ours, head, delim, policy)?;
            if !m.conflicts.is_empty() && policy == ConflictPolicy::Reject {
                return Err(MergeError::Conflicts {
                    conflicts: m.conflicts,
                    head: head_seq,
                });
            }
            overwritten.extend(m.conflicts.into_iter().map(|c| (table.to_string(), c)));
            Ok(m.content)
        })?;
    Ok((committed, overwritten))
}

pub mod conflicts;
mod regions;

#[cfg(test)]
mod tests;
