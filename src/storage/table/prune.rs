//! Retention: removing the stored history of a table's oldest versions
//! (docs/FORMAT.md, "Pruning").
//!
//! `tables/<t>/floor` names the oldest version still kept (the *floor*):
//!
//! ```text
//! reedbase-floor|<seq>|<version name>|<crc32 of the bytes before "|crc">
//! ```
//!
//! Invariants:
//! - `version.log` is never rewritten: sequence numbers stay what they
//!   were, and the log still says who committed what and when below the
//!   floor; only the bytes of those versions go.
//! - The floor version is an anchor: a keyframe (the log's, or one the
//!   prune wrote, named as any keyframe), or a chain start (whose delta
//!   applies to nothing). Every kept version reads from it forwards or
//!   from the head backwards, so no kept version needs a removed file.
//! - Order: the floor's keyframe is durable before the floor file names
//!   it; the floor file (replaced durably) is the commit point; files of
//!   versions below it are removed only after. A crash leaves the old
//!   floor with an unused keyframe (removed by the next locked open), or
//!   the new floor with files still to remove (removed by the next locked
//!   open). A pack that holds deltas on both sides of the floor stays
//!   whole (packs are immutable); a later prune removes it.
//! - Only the holder of the table's lock prunes, repairs, or commits, so a
//!   floor never moves under a commit.

use std::collections::HashSet;

use super::super::delta;
use super::super::error::{Result, StorageError};
use super::super::io::{TEMP_MARKER, read_file, remove_if_exists, replace_file};
use super::super::log::LogEntry;
use super::super::pack;
use super::row_log::ROW_LOG;
use super::{Table, lock_poisoned};

/// The floor file, in the table's directory.
pub const FLOOR: &str = "floor";

/// What a prune of one table did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub table: String,
    /// The oldest kept version before and after (sequence numbers; 0: the
    /// table has no version).
    pub oldest_before: u64,
    pub oldest_after: u64,
    /// Versions whose bytes were removed.
    pub versions: u64,
    /// Files removed (deltas, keyframes, packs), and their bytes.
    pub files: u64,
    pub bytes_freed: u64,
    /// Bytes of the keyframe written for the new floor (0: none needed).
    pub keyframe_bytes: u64,
    /// Bytes the row log shrank by.
    pub row_log_freed: u64,
    /// The floor stayed below the version asked for: a keyframe there
    /// would take more space than the prune frees (see `Table::prune`).
    pub held_for_space: bool,
}

/// What a prune to one floor removes and writes.
struct Plan {
    floor: usize,
    doomed: Vec<(String, u64)>,
    keyframe: Option<Vec<u8>>,
    row_log: Option<(Vec<u8>, u64)>,
}

impl Plan {
    fn freed(&self) -> u64 {
        self.doomed.iter().map(|(_, n)| n).sum::<u64>() + self.row_log.as_ref().map_or(0, |r| r.1)
    }
}

fn crc_line(body: &str) -> String {
    format!("{body}|{:08x}\n", crc32fast::hash(body.as_bytes()))
}

/// Whether version index `i` of `log` starts a chain (its delta applies to
/// nothing: the first version, or one after an empty version).
pub(crate) fn chain_start(log: &[LogEntry], i: usize) -> bool {
    i == 0 || log.get(i - 1).is_some_and(|e| e.size == 0)
}

/// Whether reading from index `i` needs its keyframe file (the log's, or
/// the one a prune wrote for the floor at `floor`).
pub(super) fn reads_keyframe(log: &[LogEntry], floor: usize, i: usize) -> bool {
    log[i].keyframe || (i == floor && floor > 0 && !chain_start(log, i))
}

/// The floor file's log index, checked against `log` (for `verify`, which
/// reads files itself, and for tables).
pub(crate) fn parse_floor(bytes: &[u8], log: &[LogEntry]) -> std::result::Result<usize, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_string())?;
    let line = text.strip_suffix('\n').ok_or("no line end")?;
    let (body, crc) = line.rsplit_once('|').ok_or("no CRC")?;
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != crc {
        return Err("fails its CRC check".into());
    }
    let f: Vec<&str> = body.split('|').collect();
    let seq: u64 = match f.as_slice() {
        ["reedbase-floor", seq, _] => seq.parse().map_err(|_| "bad sequence number")?,
        _ => return Err("not a floor record".into()),
    };
    let i = seq.checked_sub(1).ok_or("sequence number 0")? as usize;
    match log.get(i) {
        Some(e) if e.name() == f[2] => Ok(i),
        _ => Err(format!(
            "names version {seq} ({}), which version.log does not hold",
            f[2]
        )),
    }
}

impl Table {
    fn floor_path(&self) -> std::path::PathBuf {
        self.path(FLOOR)
    }

    /// The floor's log index (0 when nothing was pruned), from the floor
    /// file, checked against `log`.
    pub(super) fn read_floor(&self, log: &[LogEntry]) -> Result<usize> {
        let path = self.floor_path();
        match self.ctx.io.read(&path) {
            Ok(b) => parse_floor(&b, log).map_err(|d| StorageError::corrupt(&path, d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StorageError::io("read", &path, e)),
        }
    }

    /// The sequence number the floor file names, unchecked (None: none,
    /// or unreadable): tells a floor newer than a log read just before it
    /// (a commit and a prune in between) from damage.
    pub(super) fn floor_seq_on_disk(&self) -> Option<u64> {
        let bytes = self.ctx.io.read(&self.floor_path()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        text.split('|').nth(1)?.parse().ok()
    }

    /// The oldest version whose bytes are kept (1 when nothing was pruned;
    /// 0 when the table has no version). Older versions are listed by the
    /// log but cannot be read.
    pub fn oldest_kept(&self) -> Result<u64> {
        // Another process may have pruned (the log's length says nothing);
        // the log first, since the floor may name a version new to us.
        self.snapshot()?;
        self.floor_moved();
        let s = lock_poisoned(self.state.read()).clone();
        Ok(if s.log.is_empty() {
            0
        } else {
            s.floor as u64 + 1
        })
    }

    /// The versions whose bytes are kept (what listings show: `version:list`,
    /// `@versions/`), oldest first.
    pub fn kept_versions(&self) -> Result<Vec<super::VersionInfo>> {
        let oldest = self.oldest_kept()?;
        Ok(self
            .versions()?
            .into_iter()
            .filter(|v| v.seq >= oldest)
            .collect())
    }

    /// The error for reading version `seq`, below the floor at `floor`.
    pub(super) fn pruned(&self, seq: u64, floor: usize) -> StorageError {
        StorageError::Pruned {
            table: self.name.clone(),
            seq,
            oldest: floor as u64 + 1,
        }
    }

    /// After a read failed: whether another process moved the floor since
    /// this handle read it. Updates the state when it did.
    pub(super) fn floor_moved(&self) -> bool {
        let (log, known) = {
            let st = lock_poisoned(self.state.read());
            (std::sync::Arc::clone(&st.log), st.floor)
        };
        match self.read_floor(&log) {
            Ok(f) if f != known => {
                lock_poisoned(self.state.write()).floor = f;
                *lock_poisoned(self.anchor.lock()) = None;
                lock_poisoned(self.packs.lock()).invalidate();
                true
            }
            _ => false,
        }
    }

    /// The files of the versions below index `floor`: loose deltas,
    /// keyframes, and packs that hold only such deltas. (file, bytes).
    fn files_below(&self, log: &[LogEntry], floor: usize) -> Result<Vec<(String, u64)>> {
        let io = &*self.ctx.io;
        if floor == 0 {
            return Ok(Vec::new());
        }
        let mut doomed: HashSet<String> = HashSet::new();
        for e in &log[..floor] {
            doomed.insert(e.delta_file());
            doomed.insert(e.keyframe_file());
        }
        let floor_name = log[floor].name();
        let names = io
            .list(&self.dir)
            .map_err(|e| StorageError::io("list", &self.dir, e))?;
        let mut out = Vec::new();
        for n in names {
            if n.contains(TEMP_MARKER) {
                continue;
            }
            let below = doomed.contains(&n)
                || pack::parse_file_name(&n).is_some_and(|(_, last)| last < floor_name.as_str());
            if below {
                let len = io
                    .len(&self.path(&n))
                    .map_err(|e| StorageError::io("stat", self.path(&n), e))?;
                if let Some(len) = len {
                    out.push((n, len));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Under the lock (recovery): removes what an interrupted prune left,
    /// files below the floor and a keyframe written for a floor that was
    /// never recorded.
    pub(super) fn settle_prune(&self, log: &[LogEntry], floor: usize) -> Result<()> {
        let io = &*self.ctx.io;
        let mut removed = false;
        for (f, _) in self.files_below(log, floor)? {
            removed |= remove_if_exists(io, &self.path(&f))?;
        }
        let names: HashSet<String> = io
            .list(&self.dir)
            .map_err(|e| StorageError::io("list", &self.dir, e))?
            .into_iter()
            .collect();
        for (i, e) in log.iter().enumerate().skip(floor) {
            let kf = e.keyframe_file();
            if !reads_keyframe(log, floor, i) && names.contains(&kf) {
                tracing::warn!(table = %self.name, file = %kf, "removing the keyframe of an interrupted prune");
                removed |= remove_if_exists(io, &self.path(&kf))?;
            }
        }
        if removed {
            io.sync_dir(&self.dir)
                .map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        }
        Ok(())
    }

    /// What pruning to the floor at index `floor` removes and writes.
    fn plan(&self, log: &[LogEntry], floor: usize) -> Result<Plan> {
        let keyframe = if reads_keyframe(log, floor, floor) && !log[floor].keyframe {
            let bytes = self.read_version(floor as u64 + 1)?;
            Some(delta::xz(&bytes, 1))
        } else {
            None
        };
        Ok(Plan {
            floor,
            doomed: self.files_below(log, floor)?,
            keyframe,
            row_log: self.row_log_after_prune(floor)?,
        })
    }

    /// Removes the stored bytes of every version before `keep_from`
    /// (a sequence number; the head is always kept), so that version is
    /// the oldest readable one. Unless `exact`, a prune whose keyframe for
    /// that version would take more space than the prune frees stops at
    /// the latest existing anchor below it instead (keeping more, never
    /// less), or does nothing. With `dry_run` nothing changes and the
    /// report says what would. Every kept version reads back
    /// byte-identical.
    pub fn prune(&self, keep_from: u64, exact: bool, dry_run: bool) -> Result<PruneReport> {
        let mut writer = lock_poisoned(self.writer.lock());
        let _guard = self.acquire()?;
        let state = self.catch_up(&mut writer)?;
        let log = &state.log;
        let mut report = PruneReport {
            table: self.name.clone(),
            ..PruneReport::default()
        };
        if log.is_empty() {
            return Ok(report);
        }
        report.oldest_before = state.floor as u64 + 1;
        let floor = (keep_from.clamp(1, log.len() as u64) - 1) as usize;
        if floor <= state.floor {
            report.oldest_after = report.oldest_before;
            return Ok(report);
        }
        let mut plan = self.plan(log, floor)?;
        let cost = plan.keyframe.as_ref().map_or(0, |k| k.len() as u64);
        if !exact && cost > 0 && cost >= plan.freed() {
            report.held_for_space = true;
            // An anchor already stored costs nothing to stop at.
            let anchor = (state.floor + 1..floor)
                .rev()
                .find(|&i| log[i].keyframe || chain_start(log, i));
            match anchor {
                Some(a) => plan = self.plan(log, a)?,
                None => {
                    report.oldest_after = report.oldest_before;
                    return Ok(report);
                }
            }
        }
        let Plan {
            floor,
            doomed,
            keyframe,
            row_log,
        } = plan;
        report.oldest_after = floor as u64 + 1;
        report.versions = (floor - state.floor) as u64;
        report.files = doomed.len() as u64;
        report.bytes_freed = doomed.iter().map(|(_, n)| n).sum();
        report.keyframe_bytes = keyframe.as_ref().map_or(0, |k| k.len() as u64);
        if let Some((_, cut)) = &row_log {
            report.row_log_freed = *cut;
        }
        if dry_run {
            return Ok(report);
        }
        let io = &*self.ctx.io;
        let kf_path = self.path(&log[floor].keyframe_file());
        if let Some(k) = &keyframe {
            // A file of that name is unreferenced (the log does not flag
            // it, no floor names it): what a failed prune left.
            remove_if_exists(io, &kf_path)?;
            let written = io
                .write_new(&kf_path, k, true)
                .map_err(|e| StorageError::io("write", &kf_path, e))
                .and_then(|()| {
                    io.sync_dir(&self.dir)
                        .map_err(|e| StorageError::io("fsync directory", &self.dir, e))
                });
            if let Err(e) = written {
                let _ = io.remove(&kf_path);
                return Err(e);
            }
        }
        let name = log[floor].name();
        if let Err(e) = replace_file(
            io,
            &self.floor_path(),
            crc_line(&format!("reedbase-floor|{}|{name}", floor + 1)).as_bytes(),
        ) {
            // Failed before its rename: the keyframe is unused. After it
            // (the directory's fsync failed), the new floor is in force and
            // names the keyframe: both stay, the next locked open finishes.
            // Removed only when the floor on disk is known not to name it.
            match self.read_floor(log) {
                Ok(f) if f == floor => lock_poisoned(self.state.write()).floor = floor,
                Ok(_) if keyframe.is_some() => {
                    let _ = io.remove(&kf_path);
                }
                _ => {}
            }
            return Err(e);
        }
        // The commit point is behind us: what follows only frees space, and
        // a failure leaves files the next locked open removes.
        {
            let mut st = lock_poisoned(self.state.write());
            if st.log_len == state.log_len {
                st.floor = floor;
            }
        }
        *lock_poisoned(self.anchor.lock()) = None;
        lock_poisoned(self.checkpoints.lock()).retain(|i, _| *i >= floor);
        lock_poisoned(self.packs.lock()).invalidate();
        for (f, _) in &doomed {
            if let Err(e) = remove_if_exists(io, &self.path(f)) {
                tracing::warn!(table = %self.name, error = %e.report(), "a pruned file stays until the next open");
            }
        }
        if let Err(e) = io.sync_dir(&self.dir) {
            tracing::warn!(table = %self.name, error = %e, "fsync after pruning");
        }
        if let Some((kept, _)) = row_log {
            writer.row_log_seq = None;
            if let Err(e) = replace_file(io, &self.path(ROW_LOG), &kept) {
                tracing::warn!(table = %self.name, error = %e.report(), "the row log keeps its pruned blocks until the next commit");
                report.row_log_freed = 0;
            }
        }
        Ok(report)
    }

    /// The row log without the blocks of versions up to the new floor at
    /// index `floor` (history then covers the versions after it), and the
    /// bytes that cuts; None when there is nothing to cut.
    fn row_log_after_prune(&self, floor: usize) -> Result<Option<(Vec<u8>, u64)>> {
        let path = self.path(ROW_LOG);
        let bytes = match self.ctx.io.len(&path) {
            Ok(Some(_)) => read_file(&*self.ctx.io, &path)?,
            Ok(None) => return Ok(None),
            Err(e) => return Err(StorageError::io("stat", &path, e)),
        };
        let at = super::row_log::block_start(&bytes, floor as u64 + 2);
        Ok((at > 0).then(|| (bytes[at..].to_vec(), at as u64)))
    }
}
