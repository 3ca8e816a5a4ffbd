//! The row log: which rows each version changed, and how, so the history
//! of one row is read without decoding every version (docs/FORMAT.md,
//! "Row log").
//!
//! `tables/<t>/rows.log` holds one block per version, appended by the
//! version's committer after the commit point, under the table lock:
//!
//! ```text
//! V<TAB><seq><TAB><version name>
//! H<TAB><header record>                     the header, when it is new
//! R<TAB><I|U|D><TAB><key><TAB><old record><TAB><new record>
//! B                                          too many rows: read the versions
//! E<TAB><seq><TAB><lines in the block>
//! ```
//!
//! Records are the rows' CSV bytes; tabs, newlines, carriage returns and
//! backslashes in a field are escaped (`\t`, `\n`, `\r`, `\\`). It is
//! derived data: a block is written whole in one append, a torn or
//! missing tail (a crash after the commit point) is cut and rebuilt from
//! the versions by the next committer, and `rdb verify` compares it with
//! the versions.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::super::csv::{Hunk, record_end, record_fields};
use super::super::error::{Result, StorageError};
use super::{Table, VersionInfo, Writer, lock_poisoned};

pub const ROW_LOG: &str = "rows.log";

/// `REEDBASE_ROW_LOG=off` stops appending to row logs (benchmarks measure
/// what the log costs a commit this way): history then reads the versions
/// the log does not cover, and the next commit with the log on catches up.
pub const ROW_LOG_ENV: &str = "REEDBASE_ROW_LOG";

fn row_log_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var(ROW_LOG_ENV).map_or(true, |v| v != "off"))
}

/// A version that changes more rows than this (or its header, or empties
/// the table) is logged as bulk: its rows are found by reading it.
const BULK_ROWS: usize = 1000;

/// How a row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }

    fn code(self) -> char {
        match self {
            ChangeKind::Insert => 'I',
            ChangeKind::Update => 'U',
            ChangeKind::Delete => 'D',
        }
    }

    fn from_code(c: &str) -> Option<ChangeKind> {
        Some(match c {
            "I" => ChangeKind::Insert,
            "U" => ChangeKind::Update,
            "D" => ChangeKind::Delete,
            _ => return None,
        })
    }
}

/// One row's change in one version: its fields before and after, under
/// the header of that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    pub kind: ChangeKind,
    pub key: String,
    pub header: Arc<Vec<String>>,
    pub old: Option<Vec<String>>,
    pub new: Option<Vec<String>>,
}

/// The columns of a row history (`rdb row:history`, `@rows/<key>.csv`,
/// ReedQL's `history()`).
pub const HISTORY_COLUMNS: [&str; 10] = [
    "version", "time", "user", "action", "frame", "key", "change", "column", "old", "new",
];

impl RowChange {
    /// This change (of version `v`) as row-history lines in the order of
    /// [`HISTORY_COLUMNS`], one per changed cell, no value as empty; `time`
    /// as the caller writes times.
    pub fn history_lines(&self, v: &VersionInfo, time: &str) -> Vec<Vec<String>> {
        self.cells()
            .into_iter()
            .map(|(column, old, new)| {
                vec![
                    v.seq.to_string(),
                    time.to_string(),
                    v.user.clone(),
                    v.action.clone(),
                    v.frame.clone().unwrap_or_default(),
                    self.key.clone(),
                    self.kind.name().to_string(),
                    column,
                    old.unwrap_or_default(),
                    new.unwrap_or_default(),
                ]
            })
            .collect()
    }

    /// (column, old, new) of every cell that differs (every non-empty one
    /// of an inserted or deleted row).
    pub fn cells(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let get = |r: &Option<Vec<String>>, i: usize| {
            r.as_ref()
                .and_then(|f| f.get(i).cloned())
                .filter(|v| !v.is_empty())
        };
        (0..self.header.len())
            .filter_map(|i| {
                let (o, n) = (get(&self.old, i), get(&self.new, i));
                (o != n).then(|| (self.header[i].clone(), o, n))
            })
            .collect()
    }
}

fn escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.bytes();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match chars.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A record's bytes without its line end.
fn record_bytes(b: &[u8], pos: usize) -> &[u8] {
    let end = record_end(b, pos);
    let mut r = &b[pos..end];
    while let Some(x) = r.strip_suffix(b"\n").or_else(|| r.strip_suffix(b"\r")) {
        r = x;
    }
    r
}

/// The records starting in `range` of `b`: (key, record bytes); the header
/// (at 0) left out.
fn records(b: &[u8], range: Range<usize>, delim: u8) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end && pos < b.len() {
        let end = record_end(b, pos);
        if pos > 0 {
            let key = record_fields(b, pos, delim)
                .into_iter()
                .next()
                .unwrap_or_default();
            out.push((key, record_bytes(b, pos)));
        }
        pos = end;
    }
    out
}

/// What [`Table::changes_after`] gives: the changes with their versions,
/// and the header of the last version read.
pub type ChangesAfter = (Vec<(VersionInfo, RowChange)>, Arc<Vec<String>>);

/// A row's change: how, its key, its record before and after.
type Changed<'a> = (ChangeKind, String, Option<&'a [u8]>, Option<&'a [u8]>);

/// The rows `hunks` change from `old` to `new` (None: compare every row,
/// as catching up and `verify` do): None when the change is bulk (the
/// header, an empty side, or more than `BULK_ROWS` rows).
fn changed_rows<'a>(
    old: &'a [u8],
    new: &'a [u8],
    hunks: Option<&[Hunk]>,
    delim: u8,
) -> Option<Vec<Changed<'a>>> {
    if old.is_empty() || new.is_empty() || record_bytes(old, 0) != record_bytes(new, 0) {
        return None;
    }
    let mut removed: HashMap<String, &[u8]> = HashMap::new();
    let mut added: Vec<(String, &[u8])> = Vec::new();
    match hunks {
        Some(hunks) => {
            for h in hunks {
                if h.old.start == 0 || h.new.start == 0 {
                    return None;
                }
                removed.extend(records(old, h.old.clone(), delim));
                added.extend(records(new, h.new.clone(), delim));
                if removed.len() + added.len() > 2 * BULK_ROWS {
                    return None;
                }
            }
        }
        None => {
            removed.extend(records(old, 0..old.len(), delim));
            added.extend(records(new, 0..new.len(), delim));
        }
    }
    let mut out = Vec::new();
    for (key, rec) in added {
        match removed.remove(&key) {
            // Moved, unchanged: no change of the row.
            Some(was) if was == rec => {}
            Some(was) => out.push((ChangeKind::Update, key, Some(was), Some(rec))),
            None => out.push((ChangeKind::Insert, key, None, Some(rec))),
        }
    }
    let mut gone: Vec<(String, &[u8])> = removed.into_iter().collect();
    gone.sort();
    out.extend(
        gone.into_iter()
            .map(|(key, rec)| (ChangeKind::Delete, key, Some(rec), None)),
    );
    (out.len() <= BULK_ROWS).then_some(out)
}

/// One hunk of whole records holding every difference of `old` and `new`:
/// the common prefix and suffix left out (the records in it are the same
/// bytes in both, so record boundaries found in one hold in the other).
fn changed_region(old: &[u8], new: &[u8]) -> Hunk {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let room = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    // The start of the record holding the first difference.
    let mut start = 0;
    loop {
        let end = record_end(old, start);
        if end > prefix || end >= old.len() {
            break;
        }
        start = end;
    }
    let end_past = |b: &[u8], limit: usize| {
        let mut e = start;
        while e < limit {
            e = record_end(b, e);
        }
        e
    };
    let (old_end, new_end) = (
        end_past(old, old.len() - suffix),
        end_past(new, new.len() - suffix),
    );
    if old.get(old_end..) == new.get(new_end..) {
        Hunk {
            old: start..old_end,
            new: start..new_end,
        }
    } else {
        Hunk {
            old: start..old.len(),
            new: start..new.len(),
        }
    }
}

/// The block of version `seq` (`name`), from `old` to `new` (changed by
/// `hunks`, when known).
fn block(
    seq: u64,
    name: &str,
    old: &[u8],
    new: &[u8],
    hunks: Option<&[Hunk]>,
    delim: u8,
) -> String {
    let mut lines = vec![format!("V\t{seq}\t{name}")];
    let header = |b: &[u8]| record_bytes(b, 0).to_vec();
    if !new.is_empty() && (old.is_empty() || header(old) != header(new)) {
        lines.push(format!("H\t{}", escape(&header(new))));
    }
    match changed_rows(old, new, hunks, delim) {
        Some(rows) => {
            for (kind, key, was, now) in rows {
                lines.push(format!(
                    "R\t{}\t{}\t{}\t{}",
                    kind.code(),
                    escape(key.as_bytes()),
                    was.map(escape).unwrap_or_default(),
                    now.map(escape).unwrap_or_default()
                ));
            }
        }
        None => lines.push("B".to_string()),
    }
    let n = lines.len() + 1;
    lines.push(format!("E\t{seq}\t{n}"));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// One version's block as read back.
#[derive(Debug, Default)]
struct Block {
    /// Where the block starts in the bytes parsed.
    start: usize,
    seq: u64,
    name: String,
    header: Option<Vec<u8>>,
    bulk: bool,
    rows: Vec<(ChangeKind, String, Vec<u8>, Vec<u8>)>,
}

/// Where the first complete block of a version from `seq` on starts in
/// `bytes` (the end of the complete blocks when there is none).
pub(super) fn block_start(bytes: &[u8], seq: u64) -> usize {
    let (blocks, valid) = parse(bytes, Some(""));
    blocks
        .iter()
        .find(|b| b.seq >= seq)
        .map_or(valid, |b| b.start)
}

/// The complete blocks of `bytes` (a key given: only its rows kept), and
/// the length of the complete part.
fn parse(bytes: &[u8], key: Option<&str>) -> (Vec<Block>, usize) {
    let mut blocks = Vec::new();
    let mut current: Option<(Block, usize)> = None;
    let mut valid = 0;
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &bytes[pos..]) {
        let line_start = pos;
        let line = &bytes[pos..pos + nl];
        pos += nl + 1;
        let text = String::from_utf8_lossy(line);
        let mut f = text.split('\t');
        match (f.next(), &mut current) {
            (Some("V"), _) => {
                let seq = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let name = f.next().unwrap_or_default().to_string();
                current = Some((
                    Block {
                        start: line_start,
                        seq,
                        name,
                        ..Block::default()
                    },
                    1,
                ));
            }
            (Some("H"), Some((b, n))) => {
                b.header = Some(unescape(f.next().unwrap_or_default()));
                *n += 1;
            }
            (Some("B"), Some((b, n))) => {
                b.bulk = true;
                *n += 1;
            }
            (Some("R"), Some((b, n))) => {
                *n += 1;
                let kind = f.next().and_then(ChangeKind::from_code);
                let k = f.next().map(unescape).unwrap_or_default();
                let k = String::from_utf8_lossy(&k).into_owned();
                if let Some(kind) = kind
                    && key.is_none_or(|want| want == k)
                {
                    let old = unescape(f.next().unwrap_or_default());
                    let new = unescape(f.next().unwrap_or_default());
                    b.rows.push((kind, k, old, new));
                }
            }
            (Some("E"), Some((b, n))) => {
                let seq: u64 = f.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
                let count: usize = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                if seq == b.seq && count == *n + 1 {
                    if let Some((b, _)) = current.take() {
                        blocks.push(b);
                    }
                    valid = pos;
                } else {
                    // A damaged block: what follows is not trusted.
                    break;
                }
            }
            _ => break,
        }
    }
    (blocks, valid)
}

fn fields(record: &[u8], delim: u8) -> Vec<String> {
    let mut line = record.to_vec();
    line.push(b'\n');
    record_fields(&line, 0, delim)
}

impl Table {
    fn row_log_path(&self) -> std::path::PathBuf {
        self.path(ROW_LOG)
    }

    /// After version `seq` (`name`) was published, from `old` to `new` by
    /// `hunks`: appends its block (the caller holds the lock). The log
    /// first catches up with versions it lacks (a crash after an earlier
    /// commit point). A failure is logged, never the commit's: the row
    /// log is derived, and the next committer rebuilds what is missing.
    pub(super) fn log_rows(
        &self,
        writer: &mut Writer,
        version: &VersionInfo,
        old: &[u8],
        new: &[u8],
        hunks: &[Hunk],
    ) {
        if !row_log_on() {
            return;
        }
        if let Err(e) = self.try_log_rows(writer, version, old, new, hunks) {
            writer.row_log_seq = None;
            tracing::warn!(table = %self.name, error = %e.report(), "row log not appended; the next commit rebuilds it");
        }
    }

    fn try_log_rows(
        &self,
        writer: &mut Writer,
        version: &VersionInfo,
        old: &[u8],
        new: &[u8],
        hunks: &[Hunk],
    ) -> Result<()> {
        let seq = version.seq;
        let io = &*self.ctx.io;
        let path = self.row_log_path();
        let len = io
            .len(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?
            .unwrap_or(0);
        // Another process appended (or nothing is known yet): read it again.
        let (mut covered, base_len) = match writer.row_log_seq {
            Some((c, known)) if known == len => (c, len),
            _ => {
                let c = self.settle_row_log()?;
                let settled = io
                    .len(&path)
                    .map_err(|e| StorageError::io("stat", &path, e))?
                    .unwrap_or(0);
                (c, settled)
            }
        };
        let delim = self.delim();
        let mut text = String::new();
        while covered + 1 < seq {
            // Versions the log lacks: from the versions themselves.
            let s = covered + 1;
            let info = self.version(s)?;
            let before = match s {
                1 => Vec::new(),
                _ => self.read_version(s - 1)?,
            };
            let after = self.read_version(s)?;
            text.push_str(&block(s, &info.name, &before, &after, None, delim));
            covered = s;
        }
        if covered + 1 == seq {
            text.push_str(&block(seq, &version.name, old, new, Some(hunks), delim));
            covered = seq;
        }
        io.append(&path, text.as_bytes(), false)
            .map_err(|e| StorageError::io("append", &path, e))?;
        writer.row_log_seq = Some((covered, base_len + text.len() as u64));
        Ok(())
    }

    /// The versions the row log covers (its last complete block), cutting
    /// a torn or damaged tail; the caller holds the lock.
    fn settle_row_log(&self) -> Result<u64> {
        let io = &*self.ctx.io;
        let path = self.row_log_path();
        let bytes = self.read_row_log()?;
        let (blocks, valid) = parse(&bytes, Some(""));
        // History starts after the floor: the log may start at any version
        // up to the one after it (a prune cuts the blocks before).
        let after = self.history_after()?;
        let first = match blocks.first() {
            Some(b) if b.seq >= 1 && b.seq <= after + 1 => b.seq,
            _ => after + 1,
        };
        // Blocks that are not this table's history at their place (a frame
        // decided back after its block was written by hand, a log copied
        // from elsewhere) go too: from the first such block on.
        let versions = self.versions()?;
        let stale = blocks.iter().enumerate().find(|(i, b)| {
            b.seq != first + *i as u64
                || versions
                    .get((b.seq as usize).wrapping_sub(1))
                    .is_none_or(|v| v.name != b.name)
        });
        let (mut covered, mut cut) = match stale {
            Some((i, b)) => (i.checked_sub(1).map_or(0, |j| blocks[j].seq), b.start),
            None => (blocks.last().map_or(0, |b| b.seq), valid),
        };
        if covered < after {
            // Only blocks of pruned versions: none follows on to the floor.
            (covered, cut) = (after, 0);
        }
        if cut < bytes.len() {
            io.truncate(&path, cut as u64)
                .map_err(|e| StorageError::io("truncate", &path, e))?;
        }
        Ok(covered)
    }

    /// Every change of row `key`, oldest first, with its version: from the
    /// row log, and from the versions themselves for bulk versions and for
    /// versions the log does not cover yet.
    pub fn row_history(&self, key: &str) -> Result<Vec<(VersionInfo, RowChange)>> {
        self.changes(Some(key))
    }

    /// Every change of every row (`key` None) or of one, oldest first.
    /// History starts at the versions after the floor (the oldest kept
    /// version is where it starts from; what changed it is pruned).
    pub fn changes(&self, key: Option<&str>) -> Result<Vec<(VersionInfo, RowChange)>> {
        let bytes = self.read_row_log()?;
        let after = self.history_after()?;
        let header = match after {
            0 => Arc::default(),
            _ => Arc::new(self.header_at(after)?),
        };
        Ok(self.changes_from(&bytes, after, u64::MAX, header, key)?.0)
    }

    /// The version history starts after: 0, or the floor once pruned.
    fn history_after(&self) -> Result<u64> {
        // The log first (the floor may name a version new to this handle),
        // then the floor another process may have moved.
        self.snapshot()?;
        self.floor_moved();
        let floor = lock_poisoned(self.state.read()).floor;
        Ok(if floor == 0 { 0 } else { floor as u64 + 1 })
    }

    /// `rows.log` whole (empty when there is none).
    fn read_row_log(&self) -> Result<Vec<u8>> {
        let path = self.row_log_path();
        match self.ctx.io.read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StorageError::io("read", &path, e)),
        }
    }

    /// The changes of the versions after `after` (of row `key`, or of
    /// every row), from the blocks in `log` that follow on from `after`,
    /// then from the versions for bulk blocks and the versions the log does
    /// not cover; with the header of the last version read. `header` is the
    /// header at `after`.
    fn changes_from(
        &self,
        log: &[u8],
        after: u64,
        upto: u64,
        mut header: Arc<Vec<String>>,
        key: Option<&str>,
    ) -> Result<ChangesAfter> {
        let versions = self.versions()?;
        let delim = self.delim();
        let (blocks, _) = parse(log, key);
        let mut out = Vec::new();
        let mut covered = after;
        // Changes read from the versions: a key's only, or all (and then
        // the version's header, which a drop leaves empty).
        let from_versions = |seq: u64, header: &mut Arc<Vec<String>>| -> Result<Vec<RowChange>> {
            Ok(match key {
                Some(k) => self.row_change_in(seq, k)?.into_iter().collect(),
                None => {
                    let (changes, h) = self.all_changes_and_header(seq)?;
                    *header = Arc::new(h);
                    changes
                }
            })
        };
        for b in blocks
            .into_iter()
            .filter(|b| b.seq > after)
            .take_while(|b| b.seq <= upto)
        {
            let Some(info) = versions
                .get((b.seq as usize).wrapping_sub(1))
                .filter(|v| v.name == b.name && b.seq == covered + 1)
            else {
                // Not the next version of this history (a stale or foreign
                // block): from here on the versions are read instead.
                break;
            };
            covered = b.seq;
            if let Some(h) = &b.header {
                header = Arc::new(fields(h, delim));
            }
            if b.bulk {
                let changes = from_versions(b.seq, &mut header)?;
                out.extend(changes.into_iter().map(|c| (info.clone(), c)));
                continue;
            }
            for (kind, k, old, new) in b.rows {
                let change = RowChange {
                    kind,
                    key: k,
                    header: Arc::clone(&header),
                    old: (!old.is_empty()).then(|| fields(&old, delim)),
                    new: (!new.is_empty()).then(|| fields(&new, delim)),
                };
                out.push((info.clone(), change));
            }
        }
        for info in versions
            .iter()
            .skip(covered as usize)
            .take_while(|v| v.seq <= upto)
        {
            let changes = from_versions(info.seq, &mut header)?;
            out.extend(changes.into_iter().map(|c| (info.clone(), c)));
        }
        Ok((out, header))
    }

    /// The changes of every row in version `seq`, from the versions (rows
    /// by key, cells by column name), with the header of version `seq`
    /// (empty for an emptied or dropped table).
    fn all_changes_and_header(&self, seq: u64) -> Result<(Vec<RowChange>, Vec<String>)> {
        let delim = self.delim();
        let before = match seq {
            1 => Vec::new(),
            _ => self.read_version(seq - 1)?,
        };
        let after = self.read_version(seq)?;
        let rows = |b: &[u8]| -> (Vec<String>, Vec<(String, Vec<String>)>) {
            if b.is_empty() {
                return (Vec::new(), Vec::new());
            }
            let mut out = Vec::new();
            let mut pos = record_end(b, 0);
            while pos < b.len() {
                let f = record_fields(b, pos, delim);
                out.push((f.first().cloned().unwrap_or_default(), f));
                pos = record_end(b, pos);
            }
            (record_fields(b, 0, delim), out)
        };
        let (old_header, old_rows) = rows(&before);
        let (new_header, new_rows) = rows(&after);
        let header = Arc::new(if new_header.is_empty() {
            old_header.clone()
        } else {
            new_header.clone()
        });
        let by_name = |f: &[String]| -> Vec<String> {
            header
                .iter()
                .map(|c| {
                    old_header
                        .iter()
                        .position(|x| x == c)
                        .and_then(|i| f.get(i).cloned())
                        .unwrap_or_default()
                })
                .collect()
        };
        let mut old: HashMap<String, Vec<String>> = old_rows.into_iter().collect();
        let mut out = Vec::new();
        for (k, f) in new_rows {
            let change = match old.remove(&k) {
                Some(o) => RowChange {
                    kind: ChangeKind::Update,
                    key: k,
                    header: Arc::clone(&header),
                    old: Some(by_name(&o)),
                    new: Some(f),
                },
                None => RowChange {
                    kind: ChangeKind::Insert,
                    key: k,
                    header: Arc::clone(&header),
                    old: None,
                    new: Some(f),
                },
            };
            if change.kind == ChangeKind::Insert || !change.cells().is_empty() {
                out.push(change);
            }
        }
        let mut gone: Vec<(String, Vec<String>)> = old.into_iter().collect();
        gone.sort();
        for (k, o) in gone {
            out.push(RowChange {
                kind: ChangeKind::Delete,
                key: k,
                header: Arc::clone(&header),
                old: Some(by_name(&o)),
                new: None,
            });
        }
        Ok((out, new_header))
    }

    /// The header of version `seq` (empty for none, or an emptied table).
    pub fn header_at(&self, seq: u64) -> Result<Vec<String>> {
        if seq == 0 {
            return Ok(Vec::new());
        }
        let b = self.read_version_shared(seq)?;
        Ok(if b.is_empty() {
            Vec::new()
        } else {
            record_fields(&b, 0, self.delim())
        })
    }

    /// The changes of the versions after `after` up to `upto` (inclusive),
    /// oldest first, and the header of the last version read: what a
    /// follower of the table asks for after each commit. `header` is the
    /// header at `after` (None: read it). Reads the row log's tail, not
    /// all of it.
    pub fn changes_after(
        &self,
        after: u64,
        upto: u64,
        header: Option<Arc<Vec<String>>>,
    ) -> Result<ChangesAfter> {
        let head = self.head_seq()?;
        let floor = self.history_after()?;
        if after < floor {
            return Err(self.pruned(after.max(1), floor as usize - 1));
        }
        let header = match header {
            Some(h) => h,
            None => Arc::new(self.header_at(after)?),
        };
        if head <= after {
            return Ok((Vec::new(), header));
        }
        let tail = self.row_log_from(after + 1)?;
        self.changes_from(&tail, after, upto, header, None)
    }

    /// The row log from the block of version `seq` on (read from the end
    /// back until that block's start); all of it when it lacks the block.
    fn row_log_from(&self, seq: u64) -> Result<Vec<u8>> {
        let io = &*self.ctx.io;
        let path = self.row_log_path();
        let size = match io
            .len(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?
        {
            Some(n) => n,
            None => return Ok(Vec::new()),
        };
        let start = format!("V\t{seq}\t");
        let mut chunk: u64 = 16 * 1024;
        loop {
            let from = size.saturating_sub(chunk);
            let bytes = io
                .read_at(&path, from, (size - from) as usize)
                .map_err(|e| StorageError::io("read", &path, e))?;
            let at = if from == 0 && bytes.starts_with(start.as_bytes()) {
                Some(0)
            } else {
                memchr::memmem::find(&bytes, format!("\n{start}").as_bytes()).map(|i| i + 1)
            };
            match at {
                Some(i) => return Ok(bytes[i..].to_vec()),
                None if from == 0 => return Ok(bytes),
                None => chunk = chunk.saturating_mul(4),
            }
        }
    }

    /// How version `seq` changed row `key`, from the versions (`seq - 1`
    /// and `seq`); None when it did not.
    fn row_change_in(&self, seq: u64, key: &str) -> Result<Option<RowChange>> {
        let delim = self.delim();
        let before = match seq {
            1 => Vec::new(),
            _ => self.read_version(seq - 1)?,
        };
        let after = self.read_version(seq)?;
        let find = |b: &[u8]| -> Option<(Vec<String>, Vec<String>)> {
            if b.is_empty() {
                return None;
            }
            let header = record_fields(b, 0, delim);
            let at = super::super::unindexed::find_key(b, key.as_bytes(), delim)?;
            Some((header, record_fields(b, at, delim)))
        };
        let by_name = |h: &[String], f: &[String], header: &[String]| -> Vec<String> {
            header
                .iter()
                .map(|c| {
                    h.iter()
                        .position(|x| x == c)
                        .and_then(|i| f.get(i).cloned())
                        .unwrap_or_default()
                })
                .collect()
        };
        Ok(match (find(&before), find(&after)) {
            (None, None) => None,
            (None, Some((h, f))) => Some(RowChange {
                kind: ChangeKind::Insert,
                key: key.to_string(),
                header: Arc::new(h),
                old: None,
                new: Some(f),
            }),
            (Some((h, f)), None) => Some(RowChange {
                kind: ChangeKind::Delete,
                key: key.to_string(),
                header: Arc::new(h),
                old: Some(f),
                new: None,
            }),
            (Some((oh, of)), Some((nh, nf))) => {
                // Compared by column name under the new header.
                let old = by_name(&oh, &of, &nh);
                let change = RowChange {
                    kind: ChangeKind::Update,
                    key: key.to_string(),
                    header: Arc::new(nh),
                    old: Some(old),
                    new: Some(nf),
                };
                (!change.cells().is_empty()).then_some(change)
            }
        })
    }

    /// Checks the row log against the versions (for `verify`): every block
    /// names the version at its position and lists exactly the rows it
    /// changed. The problems found, at most `limit`.
    pub fn verify_row_log(&self, limit: usize) -> Result<Vec<String>> {
        let bytes = self.read_row_log()?;
        let delim = self.delim();
        let versions = self.versions()?;
        let after = self.history_after()?;
        let (blocks, _) = parse(&bytes, None);
        // Blocks of pruned versions (a prune that could not cut them) are
        // not history any more: the check starts after the floor.
        let blocks: Vec<Block> = blocks.into_iter().filter(|b| b.seq > after).collect();
        let mut problems = Vec::new();
        let mut before: Vec<u8> = match after {
            0 => Vec::new(),
            _ => self.read_version(after)?,
        };
        for (i, b) in blocks.iter().enumerate() {
            if problems.len() >= limit {
                break;
            }
            let Some(info) = versions
                .get(i + after as usize)
                .filter(|v| v.seq == b.seq && v.name == b.name)
            else {
                // A stale tail (no later block is this history's either):
                // the next commit cuts it; what reads the log skips it.
                let later_ok = blocks[i..].iter().any(|b| {
                    versions
                        .get((b.seq as usize).wrapping_sub(1))
                        .is_some_and(|v| v.name == b.name)
                });
                if !later_ok {
                    break;
                }
                problems.push(format!(
                    "block {} names version {} ({}), not the version at its place",
                    i + 1,
                    b.seq,
                    b.name
                ));
                break;
            };
            let after = self.read_version(info.seq)?;
            if !b.bulk {
                // The changed region first (a 1-row change parses a few
                // records, not the table); every row when it spans too many.
                let region = changed_region(&before, &after);
                let want: Vec<(ChangeKind, String)> =
                    changed_rows(&before, &after, Some(std::slice::from_ref(&region)), delim)
                        .or_else(|| changed_rows(&before, &after, None, delim))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, key, ..)| (k, key))
                        .collect();
                let mut got: Vec<(ChangeKind, String)> = b
                    .rows
                    .iter()
                    .map(|(k, key, ..)| (*k, key.clone()))
                    .collect();
                let mut want = want;
                got.sort_by(|a, b| a.1.cmp(&b.1));
                want.sort_by(|a, b| a.1.cmp(&b.1));
                if got != want {
                    problems.push(format!(
                        "version {} lists {} row change(s), the versions show {}",
                        info.seq,
                        got.len(),
                        want.len()
                    ));
                }
            }
            before = after;
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changed_region_finds_what_comparing_every_row_finds() {
        let base = b"id|v\n1|a\n2|b\n3|c\n4|\"x\ny\"\n5|e\n".to_vec();
        let cases: Vec<Vec<u8>> = vec![
            b"id|v\n1|a\n2|B\n3|c\n4|\"x\ny\"\n5|e\n".to_vec(),
            b"id|v\n1|a\n2|b\n3|c\n4|\"x\ny\"\n5|e\n6|f\n".to_vec(),
            b"id|v\n1|a\n2|b\n3|c\n4|\"x\ny\"\n5|e\n6|f".to_vec(),
            b"id|v\n2|b\n3|c\n4|\"x\ny\"\n5|e\n".to_vec(),
            b"id|v\n1|a\n2|b\n3|c\n4|\"x\nz\"\n5|e\n".to_vec(),
            b"id|v\n5|e\n2|b\n3|c\n4|\"x\ny\"\n1|a\n".to_vec(),
            b"id|v\n1|a\n2|b\n3|c\n4|\"x\ny\"\n".to_vec(),
            b"id|v\n1|a\n2|b\n3|c\n4|\"x\ny\"\n5|e".to_vec(),
        ];
        for new in &cases {
            for (a, b) in [(&base, new), (new, &base)] {
                let region = changed_region(a, b);
                let mut by_region =
                    changed_rows(a, b, Some(std::slice::from_ref(&region)), b'|').unwrap();
                let mut all = changed_rows(a, b, None, b'|').unwrap();
                by_region.sort_by(|x, y| x.1.cmp(&y.1));
                all.sort_by(|x, y| x.1.cmp(&y.1));
                assert_eq!(
                    by_region,
                    all,
                    "{:?} -> {:?}",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                );
            }
        }
    }

    #[test]
    fn escaping_round_trips_and_blocks_parse_whole_only() {
        for s in ["plain", "a\tb", "line\nbreak", "back\\slash", "\r\n\\t"] {
            assert_eq!(unescape(&escape(s.as_bytes())), s.as_bytes());
        }
        let old = b"id|v\n1|a\n2|b\n3|c\n";
        let new = b"id|v\n1|a\n2|\"x\ny\"\n4|d\n";
        let hunks = [Hunk {
            old: 9..old.len(),
            new: 9..new.len(),
        }];
        let text = block(2, "v2", old, new, Some(&hunks), b'|');
        let (blocks, valid) = parse(text.as_bytes(), None);
        assert_eq!(valid, text.len());
        let rows: Vec<(ChangeKind, String)> = blocks[0]
            .rows
            .iter()
            .map(|(k, key, ..)| (*k, key.clone()))
            .collect();
        assert_eq!(
            rows,
            [
                (ChangeKind::Update, "2".to_string()),
                (ChangeKind::Insert, "4".to_string()),
                (ChangeKind::Delete, "3".to_string())
            ]
        );
        assert_eq!(blocks[0].rows[0].3, b"2|\"x\ny\"");
        // Every cut short of the whole block leaves no block.
        for cut in 0..text.len() - 1 {
            let (b, v) = parse(&text.as_bytes()[..cut], None);
            assert!(b.is_empty() && v == 0, "cut at {cut}");
        }
    }
}
