//! Reading a table's state from disk: recovery after a crash (a torn log
//! line, a frame's undecided line, leftovers of interrupted commits, a stale
//! `current.csv`), and catching up with other processes' commits.

use std::sync::Arc;

use super::super::csv::header_columns;
use super::super::error::{Result, StorageError};
use super::super::frame::Decision;
use super::super::hash::ChunkedHash;
use super::super::head_writer::{self, write_head};
use super::super::io::{TEMP_MARKER, read_file, remove_if_exists};
use super::super::log::{self, LogEntry};
use super::{CURRENT, LOG, State, Table, lock_poisoned};

/// Whether the process that named a temp file (`...rdb-tmp-<pid>-<n>`) is alive.
fn temp_owner_alive(name: &str) -> bool {
    let pid = name
        .rsplit_once(TEMP_MARKER)
        .and_then(|(_, rest)| rest.split('-').next())
        .and_then(|p| p.parse::<i32>().ok());
    match pid {
        Some(pid) if pid as u32 == std::process::id() => {
            super::super::io::temp_in_flight(name) || head_writer::temp_in_flight(name)
        }
        // SAFETY: kill with signal 0 only checks for existence.
        Some(pid) if pid > 0 => unsafe {
            libc::kill(pid, 0) == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        },
        _ => false,
    }
}

impl Table {
    /// Reads the table's state from disk. With `repair` (the caller holds
    /// the table lock) it also cuts a torn log line, removes leftovers of
    /// interrupted commits and rewrites a stale `current.csv`.
    pub(super) fn recover(&self, repair: bool) -> Result<State> {
        self.recover_once(repair, true)
    }

    fn recover_once(&self, repair: bool, may_retry: bool) -> Result<State> {
        let io = &*self.ctx.io;
        let log_path = self.path(LOG);
        let bytes = match io.read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io("read", &log_path, e)),
        };
        let parsed = log::parse(&bytes, 0);
        if let Some(line) = parsed.damaged_line {
            return Err(StorageError::corrupt(
                &log_path,
                format!("line {line} fails its CRC check (run `rdb verify`)"),
            ));
        }
        if repair && parsed.valid_len < bytes.len() {
            tracing::warn!(table = %self.name, "dropping a torn last line of version.log");
            io.truncate(&log_path, parsed.valid_len as u64)
                .map_err(|e| StorageError::io("truncate", &log_path, e))?;
        }
        let (mut entries, mut valid_len) = (parsed.entries, parsed.valid_len);
        self.settle_frame_line(&mut entries, &mut valid_len, repair)?;
        let floor = match self.read_floor(&entries) {
            Ok(f) => f,
            // Committed and pruned since the log was read: read again.
            Err(_)
                if may_retry
                    && self
                        .floor_seq_on_disk()
                        .is_some_and(|s| s > entries.len() as u64) =>
            {
                return self.recover_once(repair, false);
            }
            Err(e) => return Err(e),
        };
        if repair {
            self.settle_packs()?;
            self.remove_leftovers(&entries)?;
            self.settle_prune(&entries, floor)?;
            super::super::frame::settle_staged_schemas(&self.ctx, &self.name)?;
        } else {
            lock_poisoned(self.packs.lock()).invalidate();
        }
        let mut state = State {
            log: Arc::new(entries),
            log_len: valid_len as u64,
            floor,
            ..State::default()
        };
        self.load_head(&mut state, repair)?;
        Ok(state)
    }

    /// A last log line of a frame that has no commit record is not part of
    /// the table (yet): it is left out of `entries`. With `repair` (the
    /// caller holds the table lock, so the frame's writer is gone) the frame
    /// is decided now, and an aborted line is cut with its files.
    fn settle_frame_line(
        &self,
        entries: &mut Vec<LogEntry>,
        valid_len: &mut usize,
        repair: bool,
    ) -> Result<()> {
        let Some(id) = entries.last().and_then(|e| e.frame.clone()) else {
            return Ok(());
        };
        let frames = &self.ctx.frames;
        let decision = match frames.decision(&self.ctx, &id)? {
            None if repair => Some(frames.decide_after_crash(&self.ctx, &id)?),
            d => d,
        };
        if decision == Some(Decision::Commit) {
            return Ok(());
        }
        let Some(line) = entries.pop() else {
            return Ok(());
        };
        *valid_len -= line.encode().len();
        if repair {
            let io = &*self.ctx.io;
            let log_path = self.path(LOG);
            tracing::warn!(table = %self.name, frame = %id, "removing the line of an aborted frame");
            io.truncate(&log_path, *valid_len as u64)
                .map_err(|e| StorageError::io("truncate", &log_path, e))?;
            for f in [line.delta_file(), line.keyframe_file()] {
                remove_if_exists(io, &self.path(&f))?;
            }
            io.sync_dir(&self.dir)
                .map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        }
        Ok(())
    }

    /// Removes temp files of dead processes, and the delta or keyframe of a
    /// commit that crashed before its commit point: unreferenced, made by this
    /// node, newer than the last logged version. Other unreferenced files are
    /// left alone; a log that names nothing while several deltas exist is
    /// damage, not a crashed commit (one commit leaves at most one delta).
    fn remove_leftovers(&self, entries: &[LogEntry]) -> Result<()> {
        let io = &*self.ctx.io;
        let names = io
            .list(&self.dir)
            .map_err(|e| StorageError::io("list", &self.dir, e))?;
        let known: std::collections::HashSet<String> = entries
            .iter()
            .flat_map(|e| [e.delta_file(), e.keyframe_file()])
            .collect();
        let last = entries.last().map(LogEntry::name).unwrap_or_default();
        let node_suffix = format!("-{}", self.ctx.config.node);
        let mut doomed = Vec::new();
        let mut unexplained = 0;
        for n in names {
            let stem = n
                .strip_suffix(".bsdiff")
                .or_else(|| n.strip_suffix(".bsdiff.xz"))
                .or_else(|| n.strip_suffix(".csv.xz"));
            if n.contains(TEMP_MARKER) {
                if !temp_owner_alive(&n) {
                    doomed.push(n);
                }
            } else if let Some(stem) = stem
                && !known.contains(&n)
            {
                if stem.ends_with(&node_suffix) && stem > last.as_str() {
                    doomed.push(n);
                } else {
                    unexplained += 1;
                    tracing::warn!(table = %self.name, file = %n, "delta not named by version.log; left in place");
                }
            }
        }
        let deltas = doomed.iter().filter(|n| n.contains(".bsdiff")).count();
        if entries.is_empty() && deltas + unexplained > 1 {
            return Err(StorageError::corrupt(
                self.path(LOG),
                format!(
                    "the log names no version but {} deltas exist; restore version.log from a backup",
                    deltas + unexplained
                ),
            ));
        }
        let mut removed = false;
        for n in doomed {
            tracing::info!(table = %self.name, file = %n, "removing leftover of an interrupted commit");
            removed |= remove_if_exists(io, &self.path(&n))?;
        }
        if removed {
            io.sync_dir(&self.dir)
                .map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        }
        Ok(())
    }

    /// Loads the head of `state.log` from `current.csv`, or rebuilds it from
    /// the deltas when the file does not match the log (a crash, or another
    /// process's commit whose file is not written yet). With `repair` (the
    /// caller holds the table lock and read the log and this file after
    /// taking it, so the staleness is re-checked by the file's one writer)
    /// it also rewrites the file, best effort: the file is a cache, and a
    /// failure to write it (a full disk) never fails the read; the head is
    /// served from memory and the next locked open or commit rewrites it.
    fn load_head(&self, state: &mut State, repair: bool) -> Result<()> {
        let io = &*self.ctx.io;
        let cur = self.path(CURRENT);
        state.head_hash = None;
        let Some(last) = state.log.last() else {
            state.head = Arc::new(Vec::new());
            state.columns = Arc::new(Vec::new());
            return Ok(());
        };
        let on_disk = match io.read(&cur) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StorageError::io("read", &cur, e)),
        };
        let disk_chunks = on_disk.as_deref().map(ChunkedHash::compute);
        let disk_hash = disk_chunks.as_ref().map(ChunkedHash::digest);
        let head = match on_disk {
            Some(b)
                if b.len() as u64 == last.size
                    && disk_hash.as_deref() == Some(last.hash.as_str()) =>
            {
                state.head_hash = disk_chunks.map(Arc::new);
                b
            }
            None if last.size == 0 => Vec::new(),
            _ => {
                if repair && on_disk.is_none() {
                    // A restored backup, or a file removed by hand.
                    tracing::info!(table = %self.name, "current.csv is missing; writing it from the deltas");
                } else if repair {
                    tracing::warn!(table = %self.name, "current.csv is stale; rebuilding it from the deltas");
                }
                let seq = state.log.len() as u64;
                // A stale file usually holds an earlier version: start from it.
                let known = disk_hash.as_ref().and_then(|h| {
                    let i = state.log.iter().rposition(|e| &e.hash == h)?;
                    Some((i as u64 + 1, on_disk.as_deref()?))
                });
                let bytes = self.reconstruct(&state.log, state.floor, known, seq)?;
                if repair && let Err(e) = write_head(&*self.ctx.io, &cur, &bytes, true) {
                    tracing::warn!(table = %self.name, error = %e.report(), "could not rewrite current.csv; serving the head from memory");
                }
                bytes
            }
        };
        state.columns = Arc::new(if head.is_empty() {
            Vec::new()
        } else {
            header_columns(&head, self.delim()).map_err(|e| {
                StorageError::corrupt(&cur, format!("stored head is not valid CSV: {e}"))
            })?
        });
        state.head = Arc::new(head);
        Ok(())
    }

    /// Catches up with commits made by other processes. Cheap when nothing
    /// changed: one stat, and one small read that checks the last line we
    /// know is still there (a failed append can be cut and replaced by
    /// another process's line of the same length).
    pub(super) fn refresh(&self, locked: bool) -> Result<()> {
        let io = &*self.ctx.io;
        let log_path = self.path(LOG);
        let len = io
            .len(&log_path)
            .map_err(|e| StorageError::io("stat", &log_path, e))?
            .unwrap_or(0);
        let (known_len, last_line) = {
            let st = lock_poisoned(self.state.read());
            (st.log_len, st.log.last().map(LogEntry::encode))
        };
        let last_intact = |bytes: &[u8]| match &last_line {
            Some(l) => {
                bytes.get(known_len as usize - l.len()..known_len as usize) == Some(l.as_bytes())
            }
            None => true,
        };
        if len == known_len {
            let tail = match &last_line {
                Some(l) => io
                    .read_at(&log_path, known_len - l.len() as u64, l.len())
                    .map_err(|e| StorageError::io("read", &log_path, e))?,
                None => Vec::new(),
            };
            if last_line.as_ref().is_none_or(|l| tail == l.as_bytes()) {
                return Ok(());
            }
        }
        let mut state = lock_poisoned(self.state.read()).clone();
        let bytes = read_file(io, &log_path)?;
        if (bytes.len() as u64) < state.log_len || !last_intact(&bytes) {
            state = self.recover(locked)?;
        } else {
            let parsed = log::parse(&bytes, state.log_len as usize);
            if parsed.damaged_line.is_some() || (parsed.valid_len < bytes.len() && locked) {
                // Damage, or a torn line we may cut: do a full recovery.
                state = self.recover(locked)?;
            } else {
                let (mut entries, mut valid_len) = (parsed.entries, parsed.valid_len);
                self.settle_frame_line(&mut entries, &mut valid_len, locked)?;
                Arc::make_mut(&mut state.log).extend(entries);
                state.log_len = valid_len as u64;
                if self.load_head(&mut state, locked).is_err() {
                    state = self.recover(locked)?;
                }
            }
        }
        // Commits in this process update the live state while we read without
        // the lock: never replace it with an older view.
        let mut live = lock_poisoned(self.state.write());
        if state.log_len >= live.log_len {
            *live = state;
        }
        Ok(())
    }
}
