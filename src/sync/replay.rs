//! Replay: a table's head as the fold of its commit records in the replay
//! order (docs/SYNC.md, "Convergence").
//!
//! [`TableState::apply`] is deterministic: the same state and record give
//! the same bytes and the same lost values on every site. Applying the
//! records of a set in one fixed order (their names sorted) therefore makes
//! the head, row order included, a function of the set.
//!
//! The rule, per record, against the state so far (the record is later in
//! the order, so it wins; whatever it overwrites that its origin did not
//! see is a lost value, kept as a conflict):
//! - a cell the record changed takes its new value; where the state held
//!   neither the record's old value nor its new one, the state's value is lost;
//! - a cell the record did not change keeps the state's value (cell-wise
//!   merge: concurrent changes to other cells of a row both survive);
//! - a deleted row goes, with any of its cells changed since the record's
//!   old bytes lost; a changed row that was deleted meanwhile comes back;
//!   a key inserted on both sides takes the record's row;
//! - a header change: the record's new columns, then the columns only the
//!   state has (another site added them); rows are laid out by column name
//!   unless only names changed (a rename keeps positions).
//!
//! And `apply(changes_between(a, b), load(a)) == b`, byte for byte: a
//! record replayed where it was made reproduces its origin's head.

use std::collections::HashMap;

use crate::storage::csv::{header_columns, record_fields, render_record};

use super::record::{Change, Record, key_of, split_rows};

const NIL: usize = usize::MAX;

/// A value a record overwrote without its origin having seen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub key: String,
    /// The column; empty when a whole row is concerned (a row deleted
    /// with a change the deleter did not see, or brought back by a change).
    pub column: String,
    /// What the record's origin saw.
    pub base: Option<String>,
    /// The value that lost (None: the row had been deleted).
    pub lost: Option<String>,
    /// The value that won (None: the row was deleted).
    pub kept: Option<String>,
}

#[derive(Debug, Clone)]
struct Slot {
    key: String,
    raw: Vec<u8>,
    prev: usize,
    next: usize,
}

/// A table being replayed: its header and its rows in order, with O(1)
/// lookup by key, insertion after a key and removal.
#[derive(Debug, Clone)]
pub struct TableState {
    delim: u8,
    header: Vec<u8>,
    cols: Vec<String>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    first: usize,
    last: usize,
    by_key: HashMap<String, usize>,
    dropped: bool,
    /// During an apply: the rows' bytes are laid out as the record's old
    /// header says, so a row's bytes compare with the record's old bytes.
    rows_in_old_layout: bool,
}

fn cols_of(header: &[u8], delim: u8) -> Vec<String> {
    if header.is_empty() {
        return Vec::new();
    }
    header_columns(header, delim).unwrap_or_default()
}

/// The line terminator `like` ends with (none for a last row without one).
fn terminator(like: &[u8]) -> &'static [u8] {
    if like.ends_with(b"\r\n") {
        b"\r\n"
    } else if like.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

fn render_like(fields: &[String], delim: u8, like: &[u8]) -> Vec<u8> {
    let mut raw = render_record(fields, delim);
    raw.pop();
    raw.extend_from_slice(terminator(like));
    raw
}

/// A column's value in a record's old row: empty where the old header
/// lacked the column (as laying the row out again would make it).
fn old_cell(rec_old: &[String], old_fields: &[String], column: &str) -> String {
    rec_old
        .iter()
        .position(|x| x == column)
        .and_then(|j| old_fields.get(j).cloned())
        .unwrap_or_default()
}

fn row_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

impl TableState {
    /// The state of a content (a valid table, or empty for none).
    pub fn load(content: &[u8], delim: u8, dropped: bool) -> TableState {
        let (header, rows) = split_rows(content);
        let mut s = TableState {
            delim,
            header: header.to_vec(),
            cols: cols_of(header, delim),
            slots: Vec::with_capacity(rows.len()),
            free: Vec::new(),
            first: NIL,
            last: NIL,
            by_key: HashMap::with_capacity(rows.len()),
            dropped: dropped && content.is_empty(),
            rows_in_old_layout: false,
        };
        for r in rows {
            let key = key_of(r, delim);
            let at = s.last;
            s.insert_after(at, key, r.to_vec());
        }
        s
    }

    /// Whether the table is dropped (empty, by a drop).
    pub fn is_dropped(&self) -> bool {
        self.dropped
    }

    /// The table's bytes: the header, then the rows in order. (Every line
    /// but the last holds its terminator: `insert_after` and the header
    /// step give one to a line that gains a successor.)
    pub fn content(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let mut at = self.first;
        while at != NIL {
            out.extend_from_slice(&self.slots[at].raw);
            at = self.slots[at].next;
        }
        out
    }

    /// Inserts a row after slot `at` (NIL: first). Every line but the last
    /// keeps a terminator, so the stored bytes are the content's bytes.
    fn insert_after(&mut self, at: usize, key: String, mut raw: Vec<u8>) {
        let next = if at == NIL {
            self.first
        } else {
            self.slots[at].next
        };
        let before = if at == NIL {
            &mut self.header
        } else {
            &mut self.slots[at].raw
        };
        if !before.is_empty() && !before.ends_with(b"\n") {
            before.push(b'\n');
        }
        if next != NIL && !raw.ends_with(b"\n") {
            raw.push(b'\n');
        }
        let slot = Slot {
            key: key.clone(),
            raw,
            prev: at,
            next,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        if at == NIL {
            self.first = i;
        } else {
            self.slots[at].next = i;
        }
        if next == NIL {
            self.last = i;
        } else {
            self.slots[next].prev = i;
        }
        self.by_key.insert(key, i);
    }

    fn remove(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        if prev == NIL {
            self.first = next;
        } else {
            self.slots[prev].next = next;
        }
        if next == NIL {
            self.last = prev;
        } else {
            self.slots[next].prev = prev;
        }
        let key = std::mem::take(&mut self.slots[i].key);
        self.slots[i].raw = Vec::new();
        self.by_key.remove(&key);
        self.free.push(i);
    }

    /// Puts a lost value back (what resolving a sync conflict in its
    /// favour commits): a cell takes its old value again, a row that went
    /// comes back at the end, a row a change brought back goes again.
    pub fn restore(&mut self, lost: &Lost) {
        let Some(&i) = self.by_key.get(&lost.key) else {
            if let (true, Some(row)) = (lost.column.is_empty(), &lost.lost) {
                let mut raw = row.clone().into_bytes();
                raw.push(b'\n');
                if self.fields(&raw).len() == self.cols.len() {
                    let at = self.last;
                    self.insert_after(at, lost.key.clone(), raw);
                }
            }
            return;
        };
        if lost.column.is_empty() {
            if lost.lost.is_none() {
                self.remove(i);
            }
            return;
        }
        let (Some(c), Some(v)) = (self.cols.iter().position(|c| *c == lost.column), &lost.lost)
        else {
            return;
        };
        let mut fields = self.fields(&self.slots[i].raw);
        if let Some(f) = fields.get_mut(c) {
            *f = v.clone();
            let raw = render_like(&fields, self.delim, &self.slots[i].raw);
            self.slots[i].raw = raw;
        }
    }

    fn fields(&self, raw: &[u8]) -> Vec<String> {
        record_fields(raw, 0, self.delim)
    }

    /// Applies one record (see the module doc); returns the values it
    /// overwrote that its origin had not seen.
    pub fn apply(&mut self, rec: &Record) -> Vec<Lost> {
        let mut lost = Vec::new();
        if rec.new_header.is_empty() {
            // Emptied or dropped: every row goes, and a row the origin
            // never saw (another site added it) is a lost value.
            let rec_old = cols_of(&rec.old_header, self.delim);
            for c in &rec.changes {
                if let Change::Delete { old } = c {
                    self.delete(old, &rec_old, &mut lost);
                }
            }
            let mut at = self.first;
            while at != NIL {
                let s = &self.slots[at];
                lost.push(Lost {
                    key: s.key.clone(),
                    column: String::new(),
                    base: None,
                    lost: Some(row_text(&s.raw)),
                    kept: None,
                });
                at = s.next;
            }
            *self = TableState::load(&[], self.delim, rec.action == "drop");
            return lost;
        }
        self.dropped = false;
        let rec_old = cols_of(&rec.old_header, self.delim);
        let rec_new = cols_of(&rec.new_header, self.delim);
        let dropped = self.merge_header(rec, &rec_old, &rec_new);
        for (key, column, value) in dropped {
            let seen = rec.changes.iter().any(|c| match c {
                Change::Delete { old } | Change::Put { old: Some(old), .. } => {
                    key_of(old, self.delim) == key
                        && old_cell(&rec_old, &self.fields(old), &column) == value
                }
                Change::Put { old: None, .. } => false,
            });
            if !seen {
                lost.push(Lost {
                    key,
                    column,
                    base: None,
                    lost: Some(value),
                    kept: None,
                });
            }
        }
        for c in &rec.changes {
            match c {
                Change::Delete { old } => self.delete(old, &rec_old, &mut lost),
                Change::Put {
                    pred,
                    old,
                    new,
                    moved,
                } => self.put(
                    pred.as_deref(),
                    old.as_deref(),
                    new,
                    *moved,
                    &rec_old,
                    &rec_new,
                    &mut lost,
                ),
            }
        }
        // A header that gained rows after it (from the record, or laid
        // out again without one) ends its line.
        if self.first != NIL && !self.header.ends_with(b"\n") {
            self.header.push(b'\n');
        }
        lost
    }

    /// The header step: the state's header becomes the record's new one
    /// (when the state had the record's old header, or none), else the
    /// record's new columns then those only the state has. Rows are laid
    /// out again where the columns changed other than by renaming.
    /// Returns the non-empty cells of columns the record dropped, as
    /// (key, column, value): lost unless the record's origin saw them.
    fn merge_header(
        &mut self,
        rec: &Record,
        rec_old: &[String],
        rec_new: &[String],
    ) -> Vec<(String, String, String)> {
        let mut dropped = Vec::new();
        let before = std::mem::take(&mut self.cols);
        // Positions hold (a rename) only when no column name moved to
        // another position; otherwise rows are laid out by name.
        let positional = self.header == rec.old_header
            && rec_old.len() == rec_new.len()
            && rec_old
                .iter()
                .zip(rec_new)
                .all(|(o, n)| o == n || (!rec_old.contains(n) && !rec_new.contains(o)));
        let target: Vec<String> = if self.header == rec.old_header || self.header.is_empty() {
            rec_new.to_vec()
        } else {
            let mut t = rec_new.to_vec();
            for c in &before {
                if !rec_old.contains(c) && !rec_new.contains(c) {
                    t.push(c.clone());
                }
            }
            t
        };
        self.rows_in_old_layout = before == rec_old;
        if target == before {
            self.cols = before;
            if self.header == rec.old_header {
                self.header = rec.new_header.clone();
            }
            return dropped;
        }
        self.header = if self.header == rec.old_header || self.header.is_empty() {
            rec.new_header.clone()
        } else {
            render_like(&target, self.delim, &rec.new_header)
        };
        if !positional {
            self.rows_in_old_layout = target == rec_old;
        }
        if !positional && self.first != NIL {
            let map: Vec<Option<usize>> = target
                .iter()
                .map(|c| before.iter().position(|b| b == c))
                .collect();
            let mut at = self.first;
            while at != NIL {
                let fields = self.fields(&self.slots[at].raw);
                for (c, v) in before.iter().zip(&fields) {
                    if !v.is_empty() && !target.contains(c) {
                        dropped.push((self.slots[at].key.clone(), c.clone(), v.clone()));
                    }
                }
                let out: Vec<String> = map
                    .iter()
                    .map(|m| m.and_then(|i| fields.get(i).cloned()).unwrap_or_default())
                    .collect();
                let raw = render_like(&out, self.delim, &self.slots[at].raw);
                self.slots[at].raw = raw;
                // The key is the first column: it may be another one now.
                self.slots[at].key = out.first().cloned().unwrap_or_default();
                at = self.slots[at].next;
            }
            self.by_key.clear();
            let mut at = self.first;
            while at != NIL {
                self.by_key.insert(self.slots[at].key.clone(), at);
                at = self.slots[at].next;
            }
        }
        self.cols = target;
        dropped
    }

    fn delete(&mut self, old: &[u8], rec_old: &[String], lost: &mut Vec<Lost>) {
        let key = key_of(old, self.delim);
        let Some(&i) = self.by_key.get(&key) else {
            return;
        };
        if !(self.rows_in_old_layout && self.slots[i].raw == old) {
            let state = self.fields(&self.slots[i].raw);
            let old_fields = self.fields(old);
            for (c, sv) in self.cols.iter().zip(&state) {
                let o = old_cell(rec_old, &old_fields, c);
                if o != *sv {
                    lost.push(Lost {
                        key: key.clone(),
                        column: c.clone(),
                        base: Some(o),
                        lost: Some(sv.clone()),
                        kept: None,
                    });
                }
            }
        }
        self.remove(i);
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        pred: Option<&str>,
        old: Option<&[u8]>,
        new: &[u8],
        moved: bool,
        rec_old: &[String],
        rec_new: &[String],
        lost: &mut Vec<Lost>,
    ) {
        let key = key_of(new, self.delim);
        let existing = self.by_key.get(&key).copied();
        let new_fields = self.fields(new);
        let old_fields = old.map(|o| self.fields(o));
        let state_fields = existing.map(|i| self.fields(&self.slots[i].raw));
        let raw = if existing.is_some_and(|i| old == Some(self.slots[i].raw.as_slice()))
            && self.rows_in_old_layout
            && self.cols == rec_new
        {
            new.to_vec()
        } else {
            let mut out = Vec::with_capacity(self.cols.len());
            for (ci, c) in self.cols.iter().enumerate() {
                let n = rec_new
                    .iter()
                    .position(|x| x == c)
                    .and_then(|j| new_fields.get(j));
                let o = old_fields.as_ref().map(|of| old_cell(rec_old, of, c));
                let o = o.as_ref();
                let sv = state_fields.as_ref().and_then(|s| s.get(ci));
                let v = match n {
                    None => sv.cloned().unwrap_or_default(),
                    Some(n) if old_fields.is_some() && o == Some(n) => {
                        sv.cloned().unwrap_or_else(|| n.clone())
                    }
                    Some(n) => {
                        if let Some(sv) = sv
                            && sv != n
                            && Some(sv) != o
                        {
                            lost.push(Lost {
                                key: key.clone(),
                                column: c.clone(),
                                base: o.cloned(),
                                lost: Some(sv.clone()),
                                kept: Some(n.clone()),
                            });
                        }
                        n.clone()
                    }
                };
                out.push(v);
            }
            if self.cols == rec_new && out == new_fields {
                new.to_vec()
            } else {
                render_like(&out, self.delim, new)
            }
        };
        if existing.is_none()
            && let Some(old) = old
        {
            lost.push(Lost {
                key: key.clone(),
                column: String::new(),
                base: Some(row_text(old)),
                lost: None,
                kept: Some(row_text(&raw)),
            });
        }
        match existing {
            Some(i) if !moved => {
                let mut raw = raw;
                if self.slots[i].next != NIL && !raw.ends_with(b"\n") {
                    raw.push(b'\n');
                }
                self.slots[i].raw = raw;
            }
            _ => {
                if let Some(i) = existing {
                    self.remove(i);
                }
                let at = match pred {
                    None => NIL,
                    Some(p) => self.by_key.get(p).copied().unwrap_or(self.last),
                };
                self.insert_after(at, key, raw);
            }
        }
    }
}
