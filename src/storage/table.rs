//! One table: its version log, its deltas and keyframes, its head.
//!
//! Commit protocol (docs/FORMAT.md has the crash analysis):
//! 1. take the table lock (flock, bounded wait) and catch up with commits
//!    other processes made;
//! 2. validate the new bytes (only the changed region) and diff the rows;
//! 3. write the delta (and a keyframe when one is due), fsync each;
//! 4. fsync the table directory, so their names are durable;
//! 5. append the log line and fsync the log: **the commit point**;
//! 6. refresh `current.csv`, a cache of the head, off the commit path
//!    (`head_writer.rs`: renamed into place under the table lock).
//!
//! A crash before 5 leaves unreferenced files that open removes; a crash
//! after 5 leaves a stale `current.csv` that open rebuilds from the deltas.
//! Reads never depend on that rebuild: when the file cannot be rewritten (a
//! full disk), the head is served from memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::DbCtx;
use super::csv::{Hunk, TableIndex, common_ends, header_columns};
use super::delta::{self, Patch, Pieces};
use super::dict::Action;
use super::error::{Result, StorageError};
use super::frame::{self, Decision, FrameCommitted, Intent, Staged};
use super::hash::ChunkedHash;
use super::head_writer::{self, HeadWriter, Target, write_head};
use super::io::{TEMP_MARKER, read_file};
use super::lock::{LockFile, LockGuard};
use super::log::{self, DeltaKind, LogEntry, content_hash};
use super::names::now_us;

pub const CURRENT: &str = "current.csv";
pub const LOG: &str = "version.log";
pub const LOCK: &str = "lock";
pub const SCHEMA: &str = "schema.toml";

/// What the writer started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Whatever the head is now (a blind write: `>`, `cp`, an import).
    Head,
    /// The version the writer read (sequence number; 0 = the table had none).
    Version(u64),
}

/// Who and what a commit is, for the log.
#[derive(Debug, Clone)]
pub struct CommitOptions<'a> {
    pub action: Action,
    pub user: &'a str,
    pub frame: Option<&'a str>,
}

impl<'a> CommitOptions<'a> {
    pub fn new(action: Action, user: &'a str) -> Self {
        CommitOptions {
            action,
            user,
            frame: None,
        }
    }
}

/// A version as the outside world sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// 1-based position in this site's log.
    pub seq: u64,
    /// Unique, sortable name (timestamp and node).
    pub name: String,
    pub ts_us: u64,
    pub action: String,
    pub user: String,
    pub base: u64,
    pub size: u64,
    pub rows: u64,
    pub hash: String,
    pub frame: Option<String>,
}

/// The result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub version: VersionInfo,
    /// False when the content equalled the head: no version was written.
    pub created: bool,
}

#[derive(Debug, Clone, Default)]
struct State {
    log: Arc<Vec<LogEntry>>,
    /// Bytes of version.log this state reflects (to notice other writers).
    log_len: u64,
    head: Arc<Vec<u8>>,
    columns: Arc<Vec<String>>,
}

/// What only committers need: the parsed index of the head (record offsets
/// and keys), kept up to date by each commit instead of re-parsing.
#[derive(Debug, Default)]
struct Writer {
    /// `None` while the head is empty (no version yet, or dropped).
    index: Option<TableIndex>,
    /// Chunk digests of the head, so a commit rehashes only what changed.
    hash: ChunkedHash,
    /// Whether this handle ran the repairing recovery (under the lock) yet.
    repaired: bool,
    /// The log length `index` and `hash` describe; differs after another process committed.
    log_len: Option<u64>,
}

/// The outcome of validating a new content against the head.
enum Prepared {
    /// The content equals the head: nothing to write.
    Unchanged(Committed),
    Version(NewVersion),
}

/// A validated, diffed version, ready for the write steps.
struct NewVersion {
    content: Vec<u8>,
    hunks: Vec<Hunk>,
    hash: String,
    rows: u64,
}

/// Decoded deltas, shared by reads: decoding costs ~25 us a delta, composing
/// a decoded one ~1 us. Bounded by bytes; cleared whole when full.
#[derive(Debug, Default)]
struct PatchCache {
    patches: std::collections::HashMap<String, Arc<Patch>>,
    bytes: usize,
}

const PATCH_CACHE_BYTES: usize = 64 << 20;

/// Rebuilt old versions kept per table (by name), each at most
/// `RECENT_BYTES / RECENT_VERSIONS` bytes.
const RECENT_VERSIONS: usize = 8;
const RECENT_BYTES: usize = 64 << 20;

/// Whole old versions by log index, with the version's name.
type Checkpoints = std::collections::BTreeMap<usize, (String, Arc<Vec<u8>>)>;

/// Versions between in-memory checkpoints, and their memory bound per table.
const CHECKPOINT_EVERY: usize = 100;
const CHECKPOINT_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub struct Table {
    ctx: Arc<DbCtx>,
    name: String,
    dir: PathBuf,
    /// Serialises commits and recovery between processes, and every
    /// replacement of `current.csv` (shared with the head writer's thread).
    lock: Arc<LockFile>,
    /// Serialises this process's committers (the flock serialises processes)
    /// and holds their state.
    writer: Mutex<Writer>,
    state: RwLock<State>,
    patches: Mutex<PatchCache>,
    /// Background writer of `current.csv`; `None` writes it inline.
    head_writer: Option<HeadWriter>,
    /// The last decoded stored anchor (keyframe or chain start): log index
    /// and content. Decoding one costs milliseconds; reads near it reuse it.
    anchor: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
    /// Whole old versions kept in memory as read anchors, by log index
    /// (with the version's name, checked on use): built by
    /// `prefetch_history` every `CHECKPOINT_EVERY` versions back from the head.
    checkpoints: Mutex<Checkpoints>,
    /// Old versions rebuilt recently: (version name, bytes), oldest first.
    recent: Mutex<std::collections::VecDeque<(String, Arc<Vec<u8>>)>>,
    /// Identity (dev, inode, mtime) of a `current.csv` found to hold head
    /// version `seq`, so `head_file` compares the bytes once per version.
    verified_head_file: Mutex<Option<FileStamp>>,
}

/// Whether the process that named a temp file (`...rdb-tmp-<pid>-<n>`) is alive.
fn temp_owner_alive(name: &str) -> bool {
    let pid = name
        .rsplit_once(TEMP_MARKER)
        .and_then(|(_, rest)| rest.split('-').next())
        .and_then(|p| p.parse::<i32>().ok());
    match pid {
        Some(pid) if pid as u32 == std::process::id() => {
            super::io::temp_in_flight(name) || head_writer::temp_in_flight(name)
        }
        // SAFETY: kill with signal 0 only checks for existence.
        Some(pid) if pid > 0 => unsafe {
            libc::kill(pid, 0) == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        },
        _ => false,
    }
}

/// (device, inode, mtime nanoseconds, mtime seconds, head sequence number).
type FileStamp = (u64, u64, i64, i64, u64);

fn lock_poisoned<T>(r: std::sync::LockResult<T>) -> T {
    // A panic in another thread cannot leave State half-updated: it is only
    // ever replaced whole. So a poisoned lock is safe to use.
    r.unwrap_or_else(|p| p.into_inner())
}

impl Table {
    /// Opens a table directory, recovering from any crash (torn log line,
    /// leftover temp or unreferenced files, stale `current.csv`).
    pub(crate) fn open(ctx: Arc<DbCtx>, name: &str) -> Result<Table> {
        let dir = ctx.root.join("tables").join(name);
        if ctx
            .io
            .len(&dir.join(LOG))
            .map_err(|e| StorageError::io("stat", dir.join(LOG), e))?
            .is_none()
            && ctx
                .io
                .len(&dir)
                .map_err(|e| StorageError::io("stat", &dir, e))?
                .is_none()
        {
            return Err(StorageError::NotFound {
                kind: "table",
                name: name.to_string(),
            });
        }
        let lock = Arc::new(LockFile::open(&dir.join(LOCK))?);
        let head_writer = if ctx
            .background_head
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let target = Target {
                io: Arc::clone(&ctx.io),
                path: dir.join(CURRENT),
                log: dir.join(LOG),
                lock: Arc::clone(&lock),
                what: format!("table {}/{}", ctx.config.name, name),
                timeout: Duration::from_millis(ctx.config.lock_timeout_ms),
            };
            Some(
                HeadWriter::spawn(target)
                    .map_err(|e| StorageError::io("spawn head writer for", dir.join(CURRENT), e))?,
            )
        } else {
            None
        };
        let table = Table {
            ctx,
            name: name.to_string(),
            dir,
            lock,
            writer: Mutex::new(Writer::default()),
            state: RwLock::new(State::default()),
            patches: Mutex::new(PatchCache::default()),
            head_writer,
            anchor: Mutex::new(None),
            recent: Mutex::new(Default::default()),
            checkpoints: Mutex::new(Default::default()),
            verified_head_file: Mutex::new(None),
        };
        // Open repairs (cuts a torn log line, removes leftovers of interrupted
        // commits, rewrites a stale current.csv) when the lock is free at once;
        // when a writer holds it, open only reads, so readers never wait, and
        // the first commit through this handle repairs under the lock. A
        // repair that fails on I/O (a full disk) must not fail a read either:
        // open then reads without repairing, and leaves it to that commit,
        // which fails if the repair still cannot be made.
        let repaired = match table.lock.acquire(&table.name, Duration::ZERO) {
            Ok(_g) => match table.recover(true) {
                Ok(state) => {
                    *lock_poisoned(table.state.write()) = state;
                    true
                }
                Err(e @ StorageError::Io { .. }) => {
                    tracing::warn!(table = %table.name, error = %e.report(), "could not repair the table; reading it as it is");
                    let state = table.recover(false)?;
                    *lock_poisoned(table.state.write()) = state;
                    false
                }
                Err(e) => return Err(e),
            },
            Err(StorageError::Locked { .. }) => {
                let state = table.recover(false)?;
                *lock_poisoned(table.state.write()) = state;
                false
            }
            Err(e) => return Err(e),
        };
        lock_poisoned(table.writer.lock()).repaired = repaired;
        Ok(table)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn delim(&self) -> u8 {
        self.ctx.config.delimiter_byte()
    }

    fn acquire(&self) -> Result<LockGuard<'_>> {
        self.lock.acquire(
            &format!("table {}/{}", self.ctx.config.name, self.name),
            Duration::from_millis(self.ctx.config.lock_timeout_ms),
        )
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Full recovery; the caller holds the table lock.
    /// Reads the table's state from disk. With `repair` (the caller holds
    /// the table lock) it also cuts a torn log line, removes leftovers of
    /// interrupted commits and rewrites a stale `current.csv`.
    fn recover(&self, repair: bool) -> Result<State> {
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
        if repair {
            self.remove_leftovers(&entries)?;
        }
        let mut state = State {
            log: Arc::new(entries),
            log_len: valid_len as u64,
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
                let p = self.path(&f);
                match io.remove(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io("remove", &p, e)),
                }
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
            let p = self.path(&n);
            match io.remove(&p) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", &p, e)),
            }
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
        let disk_hash = on_disk.as_deref().map(content_hash);
        let head = match on_disk {
            Some(b)
                if b.len() as u64 == last.size
                    && disk_hash.as_deref() == Some(last.hash.as_str()) =>
            {
                b
            }
            None if last.size == 0 => Vec::new(),
            _ => {
                if repair {
                    tracing::warn!(table = %self.name, "current.csv is stale; rebuilding it from the deltas");
                }
                let seq = state.log.len() as u64;
                // A stale file usually holds an earlier version: start from it.
                let known = disk_hash.as_ref().and_then(|h| {
                    let i = state.log.iter().rposition(|e| &e.hash == h)?;
                    Some((i as u64 + 1, on_disk.as_deref()?))
                });
                let bytes = self.reconstruct(&state.log, known, seq)?;
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

    /// Refreshes `current.csv` after a commit with `head`, the version that
    /// a `version.log` of `log_len` bytes ends with: on the background writer
    /// when there is one (it renames under the lock, if the log still ends
    /// there), else now, without fsync. The caller holds the table lock. The
    /// log line is the commit point; open() rebuilds a `current.csv` that
    /// does not match it.
    fn refresh_current(&self, head: &Arc<Vec<u8>>, log_len: u64) -> Result<()> {
        match &self.head_writer {
            Some(w) => {
                w.submit(Arc::clone(head), log_len);
                Ok(())
            }
            None => write_head(&*self.ctx.io, &self.path(CURRENT), head, false),
        }
    }

    /// Waits until `current.csv` on disk holds the head.
    pub fn flush(&self) {
        if let Some(w) = &self.head_writer {
            w.flush();
        }
    }

    /// An open `current.csv` that holds exactly the head, with the head's
    /// sequence number; `None` when the file does not match (another
    /// process is between its commit and its file write). For serving reads
    /// from the backing file itself (FUSE passthrough).
    pub fn head_file(&self) -> Result<Option<(std::fs::File, u64)>> {
        use std::os::unix::fs::MetadataExt;
        self.flush();
        let (seq, head) = self.head()?;
        let path = self.path(CURRENT);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("open", &path, e)),
        };
        let m = file
            .metadata()
            .map_err(|e| StorageError::io("stat", &path, e))?;
        if m.len() != head.len() as u64 {
            return Ok(None);
        }
        let stamp = (m.dev(), m.ino(), m.mtime_nsec(), m.mtime(), seq);
        let mut verified = lock_poisoned(self.verified_head_file.lock());
        if *verified != Some(stamp) {
            // Compare once per file and version; the stamp remembers it.
            let on_disk = std::fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            if on_disk != *head {
                return Ok(None);
            }
            *verified = Some(stamp);
        }
        Ok(Some((file, seq)))
    }

    /// Catches up with commits made by other processes. Cheap when nothing
    /// changed: one stat, and one small read that checks the last line we
    /// know is still there (a failed append can be cut and replaced by
    /// another process's line of the same length).
    fn refresh(&self, locked: bool) -> Result<()> {
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

    fn snapshot(&self) -> Result<State> {
        self.refresh(false)?;
        Ok(lock_poisoned(self.state.read()).clone())
    }

    fn info(&self, log: &[LogEntry], seq: u64) -> Option<VersionInfo> {
        let e = log.get(seq.checked_sub(1)? as usize)?;
        let users = lock_poisoned(self.ctx.users.lock());
        Some(VersionInfo {
            seq,
            name: e.name(),
            ts_us: e.ts_us,
            action: Action::from_code(e.action)
                .map_or("?", Action::name)
                .to_string(),
            user: users.name(e.user).to_string(),
            base: e.base,
            size: e.size,
            rows: e.rows,
            hash: e.hash.clone(),
            frame: e.frame.clone(),
        })
    }

    /// Sequence number of the head (0 when the table has no version).
    pub fn head_seq(&self) -> Result<u64> {
        Ok(self.snapshot()?.log.len() as u64)
    }

    /// The head's bytes and its sequence number.
    pub fn head(&self) -> Result<(u64, Arc<Vec<u8>>)> {
        let s = self.snapshot()?;
        Ok((s.log.len() as u64, s.head))
    }

    /// The version that was the head at time `ts_us` (UTC microseconds): the
    /// last one committed at or before it; 0 when the table had none yet.
    /// A frame's versions share one timestamp, so a time is always a frame
    /// boundary.
    pub fn seq_at(&self, ts_us: u64) -> Result<u64> {
        let s = self.snapshot()?;
        Ok(s.log.partition_point(|e| e.ts_us <= ts_us) as u64)
    }

    /// Column names of the head (empty when dropped).
    pub fn columns(&self) -> Result<Vec<String>> {
        Ok(self.snapshot()?.columns.as_ref().clone())
    }

    /// True when the last version dropped the table.
    pub fn is_dropped(&self) -> Result<bool> {
        let s = self.snapshot()?;
        Ok(s.log.last().is_none_or(|e| e.action == Action::Drop as u32))
    }

    pub fn versions(&self) -> Result<Vec<VersionInfo>> {
        let s = self.snapshot()?;
        Ok((1..=s.log.len() as u64)
            .filter_map(|q| self.info(&s.log, q))
            .collect())
    }

    pub fn version(&self, seq: u64) -> Result<VersionInfo> {
        let s = self.snapshot()?;
        self.info(&s.log, seq).ok_or_else(|| self.no_version(seq))
    }

    /// Version `seq` without looking for newer commits first when this
    /// handle knows it already: a committed version never changes, so a
    /// listing's stat of each version costs no file system call.
    pub fn known_version(&self, seq: u64) -> Result<VersionInfo> {
        let known = {
            let st = lock_poisoned(self.state.read());
            self.info(&st.log, seq)
        };
        match known {
            Some(v) => Ok(v),
            None => self.version(seq),
        }
    }

    /// The sequence number of the version called `name`. Names sort as
    /// their commit times, which increase along the log, so this is a
    /// binary search (a listing that stats every version stays linear);
    /// a log out of order (never written by this engine) is scanned.
    pub fn seq_of(&self, name: &str) -> Result<Option<u64>> {
        let s = self.snapshot()?;
        let found = s
            .log
            .binary_search_by(|e| e.name().as_str().cmp(name))
            .ok()
            .or_else(|| s.log.iter().position(|e| e.name() == name));
        Ok(found.map(|i| i as u64 + 1))
    }

    fn no_version(&self, seq: u64) -> StorageError {
        StorageError::NotFound {
            kind: "version",
            name: format!("{}@{seq}", self.name),
        }
    }

    /// The exact bytes of version `seq`, checked against its hash.
    pub fn read_version(&self, seq: u64) -> Result<Vec<u8>> {
        let s = self.snapshot()?;
        if seq == 0 || seq > s.log.len() as u64 {
            return Err(self.no_version(seq));
        }
        if seq == s.log.len() as u64 {
            return Ok(s.head.as_ref().clone());
        }
        // A version's name is unique and its bytes never change: reads of the
        // same old version (an `@as-of` time, a version file) reuse them.
        let name = s.log[seq as usize - 1].name();
        let mut recent = lock_poisoned(self.recent.lock());
        if let Some((_, bytes)) = recent.iter().find(|(n, _)| *n == name) {
            return Ok(bytes.as_ref().clone());
        }
        drop(recent);
        // Start from the nearest whole version in memory: the head or a checkpoint.
        let target = seq as usize - 1;
        let nearest = {
            let cps = lock_poisoned(self.checkpoints.lock());
            let below = cps.range(..=target).next_back();
            let above = cps.range(target..).next();
            [below, above]
                .into_iter()
                .flatten()
                .filter(|(i, (n, _))| s.log.get(**i).is_some_and(|e| e.name() == *n))
                .min_by_key(|(i, _)| i.abs_diff(target))
                .map(|(i, (_, b))| (*i, Arc::clone(b)))
        };
        let head_index = s.log.len() - 1;
        let bytes = match nearest {
            Some((i, b)) if i.abs_diff(target) < head_index - target => {
                self.reconstruct(&s.log, Some((i as u64 + 1, b.as_slice())), seq)?
            }
            _ => self.reconstruct(&s.log, Some((s.log.len() as u64, s.head.as_slice())), seq)?,
        };
        recent = lock_poisoned(self.recent.lock());
        if bytes.len() <= RECENT_BYTES / RECENT_VERSIONS {
            if recent.len() == RECENT_VERSIONS {
                recent.pop_front();
            }
            recent.push_back((name, Arc::new(bytes.clone())));
        }
        Ok(bytes)
    }

    fn load_patch(&self, e: &LogEntry) -> Result<Arc<Patch>> {
        let file = e.delta_file();
        if let Some(p) = lock_poisoned(self.patches.lock()).patches.get(&file) {
            return Ok(Arc::clone(p));
        }
        let path = self.path(&file);
        let stored = read_file(&*self.ctx.io, &path).map_err(StorageError::referenced)?;
        let bad = |d: String| StorageError::corrupt(&path, d);
        let raw = delta::unpack(&stored).map_err(|x| bad(x.to_string()))?;
        let patch = Arc::new(
            Patch::decode(&raw)
                .map_err(|x| bad(x.to_string()))?
                .ok_or_else(|| bad("not a ReedBase delta (foreign bsdiff layout)".into()))?,
        );
        if patch.new_len() as u64 != e.size {
            return Err(bad(format!(
                "makes {} bytes, the log says {}",
                patch.new_len(),
                e.size
            )));
        }
        let mut cache = lock_poisoned(self.patches.lock());
        let cost = patch.heap_bytes();
        if cache.bytes + cost > PATCH_CACHE_BYTES {
            cache.patches.clear();
            cache.bytes = 0;
        }
        cache.bytes += cost;
        cache.patches.insert(file, Arc::clone(&patch));
        Ok(patch)
    }

    /// Estimated microseconds to go through the deltas of `entries`: ~25 to
    /// decode one, ~2 to compose one already decoded.
    fn chain_cost(&self, entries: &[LogEntry]) -> usize {
        let cache = lock_poisoned(self.patches.lock());
        entries
            .iter()
            .map(|e| {
                if cache.patches.contains_key(&e.delta_file()) {
                    2
                } else {
                    25
                }
            })
            .sum()
    }

    /// Decodes the deltas of the last `versions` versions into the cache, so
    /// later reads of old versions (`@as-of`, `@versions/`) start warm. A
    /// daemon calls it in the background after mounting; bounded by the
    /// cache's byte limit. Returns how many deltas it decoded.
    pub fn prefetch_history(&self, versions: usize) -> Result<usize> {
        let s = self.snapshot()?;
        let from = s.log.len().saturating_sub(versions);
        let entries = &s.log[from..];
        let mut decoded = 0;
        for chunk in entries.chunks(256) {
            if lock_poisoned(self.patches.lock()).bytes > PATCH_CACHE_BYTES / 2 {
                break;
            }
            decoded += self.load_patches(chunk)?.len();
        }
        self.build_checkpoints(&s, s.log.len() - from)?;
        Ok(decoded)
    }

    /// Walks back from the head over the decoded deltas and keeps a whole
    /// version every `CHECKPOINT_EVERY` (fewer for big tables, within
    /// `CHECKPOINT_BYTES`), so a read of any old version composes at most
    /// about half that many deltas. Stops at the first delta not decoded.
    /// `covered`: the versions back from the head whose deltas were
    /// decoded (the checkpoints' spacing is sized to those, not the log).
    fn build_checkpoints(&self, s: &State, covered: usize) -> Result<()> {
        let n = s.log.len();
        if n < 2 * CHECKPOINT_EVERY || s.head.is_empty() {
            return Ok(());
        }
        let every = CHECKPOINT_EVERY.max(covered * s.head.len() / CHECKPOINT_BYTES + 1);
        let mut anchor: Arc<Vec<u8>> = Arc::clone(&s.head);
        let mut pieces = Pieces::whole(anchor.len());
        let mut used: Vec<Arc<Patch>> = Vec::new();
        let mut made = std::collections::BTreeMap::new();
        // Entry i's delta turns version i (index i - 1) into version i + 1.
        for i in (1..n).rev() {
            let file = s.log[i].delta_file();
            let Some(patch) = lock_poisoned(self.patches.lock())
                .patches
                .get(&file)
                .cloned()
            else {
                break; // not decoded: stop here
            };
            pieces = pieces.unapply(&patch).map_err(|x| self.damaged(x))?;
            used.push(patch);
            if (n - i).is_multiple_of(every) {
                let refs: Vec<&Patch> = used.iter().map(|p| &**p).collect();
                let bytes = pieces.materialize(&anchor, &refs);
                if content_hash(&bytes) != s.log[i - 1].hash {
                    return Err(StorageError::corrupt(
                        &self.dir,
                        format!("version {i} rebuilt from the deltas does not match its hash"),
                    ));
                }
                anchor = Arc::new(bytes);
                made.insert(i - 1, (s.log[i - 1].name(), Arc::clone(&anchor)));
                pieces = Pieces::whole(anchor.len());
                used.clear();
            }
        }
        *lock_poisoned(self.checkpoints.lock()) = made;
        Ok(())
    }

    /// Loads and decodes the deltas of `entries`, in order. Decoding is
    /// independent per delta, so a long walk uses every core.
    fn load_patches(&self, entries: &[LogEntry]) -> Result<Vec<Arc<Patch>>> {
        use rayon::prelude::*;
        if entries.len() < 32 {
            return entries.iter().map(|e| self.load_patch(e)).collect();
        }
        entries.par_iter().map(|e| self.load_patch(e)).collect()
    }

    fn load_keyframe(&self, e: &LogEntry) -> Result<Vec<u8>> {
        let path = self.path(&e.keyframe_file());
        let stored = read_file(&*self.ctx.io, &path).map_err(StorageError::referenced)?;
        delta::unpack(&stored).map_err(|x| StorageError::corrupt(&path, x.to_string()))
    }

    /// Rebuilds version `seq` from the nearest anchor: a keyframe, the start
    /// of a chain (a version whose base was empty), or `known` bytes of some
    /// version (the head, or a stale `current.csv`), walking backwards with
    /// the removed bytes each delta carries when that is shorter.
    fn reconstruct(
        &self,
        log: &[LogEntry],
        known: Option<(u64, &[u8])>,
        seq: u64,
    ) -> Result<Vec<u8>> {
        let target = (seq - 1) as usize;
        // Stored anchor: the latest i <= target that is a keyframe or follows an empty version.
        let stored = (0..=target)
            .rev()
            .find(|&i| log[i].keyframe || i == 0 || log[i - 1].size == 0)
            .unwrap_or(0);
        // Cost model, in microseconds measured on the reference machine:
        // decoding a delta ~25 (composing a decoded one ~2); decoding a whole
        // table ~1 per 100 bytes from a keyframe (XZ), ~1 per 30 bytes from a
        // chain start (bzip2).
        let chain = |range: std::ops::Range<usize>| self.chain_cost(&log[range]);
        let cached = lock_poisoned(self.anchor.lock())
            .as_ref()
            .filter(|(i, _)| *i == stored)
            .map(|(_, b)| Arc::clone(b));
        let decode = match (&cached, log[stored].keyframe) {
            (Some(_), _) => 0,
            (None, true) => log[stored].size as usize / 100,
            (None, false) => log[stored].size as usize / 30,
        };
        let stored_cost = decode + chain(stored + 1..target + 1);
        let known = known.map(|(q, b)| ((q - 1) as usize, b));
        let bytes = match known {
            Some((k, bytes)) if k >= target && chain(target + 1..k + 1) < stored_cost => {
                let mut patches = self.load_patches(&log[target + 1..=k])?;
                patches.reverse();
                let mut pieces = Pieces::whole(bytes.len());
                for p in &patches {
                    pieces = pieces.unapply(p).map_err(|x| self.damaged(x))?;
                }
                pieces.materialize(bytes, &patches.iter().map(|p| &**p).collect::<Vec<_>>())
            }
            _ => {
                let (anchor, first): (Arc<Vec<u8>>, usize) = match known {
                    Some((k, bytes)) if k < target && chain(k + 1..target + 1) < stored_cost => {
                        (Arc::new(bytes.to_vec()), k + 1)
                    }
                    _ => {
                        let anchor = match cached {
                            Some(b) => b,
                            None => {
                                let b = Arc::new(if log[stored].keyframe {
                                    self.load_keyframe(&log[stored])?
                                } else {
                                    // A chain start: its delta applies to nothing.
                                    self.load_patch(&log[stored])?
                                        .apply(&[])
                                        .map_err(|x| self.damaged(x))?
                                });
                                *lock_poisoned(self.anchor.lock()) = Some((stored, Arc::clone(&b)));
                                b
                            }
                        };
                        (anchor, stored + 1)
                    }
                };
                let patches = self.load_patches(&log[first..=target])?;
                let mut pieces = Pieces::whole(anchor.len());
                for p in &patches {
                    pieces = pieces.apply(p).map_err(|x| self.damaged(x))?;
                }
                pieces.materialize(&anchor, &patches.iter().map(|p| &**p).collect::<Vec<_>>())
            }
        };
        if content_hash(&bytes) != log[target].hash {
            return Err(StorageError::corrupt(
                &self.dir,
                format!("version {seq} rebuilt from the deltas does not match its hash"),
            ));
        }
        Ok(bytes)
    }

    fn damaged(&self, e: delta::DeltaError) -> StorageError {
        StorageError::corrupt(&self.dir, e.to_string())
    }

    /// Commits `content` as the table's new version (see the module doc).
    pub fn commit(&self, base: Base, content: Vec<u8>, opts: &CommitOptions) -> Result<Committed> {
        let content = super::csv::strip_bom(content).into_owned();
        type Resolve = fn(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>>;
        self.commit_inner(base, content, opts, None::<Resolve>)
    }

    /// Commits `content`, written from version `base`. When others committed
    /// since, `resolve(base, content, head, head seq)` is called under the
    /// table lock to produce what to commit against the head instead (the
    /// merge layer's three-way merge), so concurrent writers never starve
    /// each other with retries.
    pub fn commit_resolving<E: From<StorageError>>(
        &self,
        base: u64,
        content: Vec<u8>,
        opts: &CommitOptions,
        resolve: impl FnOnce(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<Committed, E> {
        let content = super::csv::strip_bom(content).into_owned();
        self.commit_inner(Base::Version(base), content, opts, Some(resolve))
    }

    fn commit_inner<E: From<StorageError>>(
        &self,
        base: Base,
        mut content: Vec<u8>,
        opts: &CommitOptions,
        resolve: Option<impl FnOnce(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>>,
    ) -> Result<Committed, E> {
        let mut writer = lock_poisoned(self.writer.lock());
        let _g = self.acquire()?;
        let state = self.catch_up(&mut writer)?;
        let head_seq = state.log.len() as u64;
        if let Base::Version(b) = base
            && b != head_seq
        {
            let Some(resolve) = resolve else {
                return Err(StorageError::BaseMismatch {
                    base: b,
                    head: head_seq,
                }
                .into());
            };
            let base_bytes = self.base_bytes(&state, b)?;
            content = resolve(&base_bytes, &content, &state.head, head_seq)?;
        }
        self.commit_locked(writer, state, content, opts)
            .map_err(E::from)
    }

    /// Under the table lock: repairs what open() only read (the first time
    /// through this handle) and catches up with other processes' commits.
    fn catch_up(&self, writer: &mut Writer) -> Result<State> {
        if !writer.repaired {
            let state = self.recover(true)?;
            *lock_poisoned(self.state.write()) = state;
            writer.repaired = true;
        }
        self.refresh(true)?;
        Ok(lock_poisoned(self.state.read()).clone())
    }

    /// The bytes of version `b`, a writer's base, for a merge with the head
    /// in `state` (empty for 0: the table had no version).
    fn base_bytes(&self, state: &State, b: u64) -> Result<Vec<u8>> {
        let head_seq = state.log.len() as u64;
        if b > head_seq {
            return Err(StorageError::BaseMismatch {
                base: b,
                head: head_seq,
            });
        }
        if b == 0 {
            return Ok(Vec::new());
        }
        self.reconstruct(&state.log, Some((head_seq, state.head.as_slice())), b)
    }

    /// The commit itself, against the head in `state`; the caller holds the
    /// writer mutex (`writer`) and the table lock.
    fn commit_locked(
        &self,
        mut writer: std::sync::MutexGuard<'_, Writer>,
        state: State,
        content: Vec<u8>,
        opts: &CommitOptions,
    ) -> Result<Committed> {
        let prepared = match self.prepare(&mut writer, &state, content)? {
            Prepared::Unchanged(c) => return Ok(c),
            Prepared::Version(v) => v,
        };
        let entry = match self.write_version(&state, &prepared, None, opts) {
            Ok(e) => e,
            Err(e) => {
                // The index already describes the rejected content: drop it.
                writer.log_len = None;
                return Err(e);
            }
        };
        self.publish(&mut writer, state, entry, prepared.content)
    }

    /// Step 2 of the protocol: validates `content` against the head in
    /// `state` and diffs it. Updates the writer's index and hash to describe
    /// `content`; a caller that then does not commit must reset them
    /// (`writer.log_len = None`).
    fn prepare(&self, writer: &mut Writer, state: &State, content: Vec<u8>) -> Result<Prepared> {
        let head_seq = state.log.len() as u64;
        let (p, s) = common_ends(&state.head, &content);
        let unchanged = p == content.len() && p == state.head.len();
        if unchanged
            && (head_seq > 0 || content.is_empty())
            && let Some(version) = self.info(&state.log, head_seq)
        {
            return Ok(Prepared::Unchanged(Committed {
                version,
                created: false,
            }));
        }
        if writer.log_len != Some(state.log_len) {
            // First commit here, or another process committed: parse the
            // head. A head stored before a rule it breaks existed (a NUL, a
            // lone CR) has no index: the save is then checked in full, so
            // such a table can always be repaired by saving valid content.
            writer.index = if state.head.is_empty() {
                None
            } else {
                TableIndex::parse(&state.head, self.delim()).ok()
            };
            writer.hash = ChunkedHash::compute(&state.head);
            writer.log_len = Some(state.log_len);
        }
        let old = state.head.as_slice();
        let hunks = if content.is_empty() {
            // Empty content is a valid table: a dropped one (action Drop),
            // or a file emptied by its writer (`: > current.csv`), which a
            // later append fills from nothing, header included.
            writer.index = None;
            vec![Hunk {
                old: 0..old.len(),
                new: 0..0,
            }]
        } else {
            let edited = match &mut writer.index {
                Some(idx) => idx.edit_with(old, &content, self.delim(), p, s),
                None => TableIndex::parse(&content, self.delim()).map(|idx| {
                    writer.index = Some(idx);
                    vec![Hunk {
                        old: 0..old.len(),
                        new: 0..content.len(),
                    }]
                }),
            };
            edited?
        };
        writer.hash.update(old.len(), &content, p, s);
        Ok(Prepared::Version(NewVersion {
            rows: writer.index.as_ref().map_or(0, |i| i.rows() as u64),
            hash: writer.hash.digest(),
            content,
            hunks,
        }))
    }

    /// After the commit point: the version exists. Updates memory first, so
    /// a failure to refresh current.csv below cannot hide it. Our snapshot
    /// goes first so the log is extended in place, not copied.
    fn publish(
        &self,
        writer: &mut Writer,
        state: State,
        entry: LogEntry,
        content: Vec<u8>,
    ) -> Result<Committed> {
        let base_len = state.log_len;
        drop(state);
        let head = Arc::new(content);
        let mut live = lock_poisoned(self.state.write());
        // A reader's refresh may have loaded our line from disk already (it
        // reads without the lock); then the live state holds it.
        if live.log_len == base_len {
            live.log_len += entry.encode().len() as u64;
            Arc::make_mut(&mut live.log).push(entry);
        }
        live.columns = Arc::new(
            writer
                .index
                .as_ref()
                .map(|i| i.columns.clone())
                .unwrap_or_default(),
        );
        live.head = Arc::clone(&head);
        writer.log_len = Some(live.log_len);
        let seq = live.log.len() as u64;
        let log_len = live.log_len;
        let version = self.info(&live.log, seq);
        drop(live);
        if let Err(e) = self.refresh_current(&head, log_len) {
            // The next open rebuilds it from the deltas; the version is safe.
            tracing::error!(table = %self.name, error = %e.report(), "version committed but current.csv not refreshed");
        }
        let version = version.ok_or_else(|| self.no_version(seq))?;
        Ok(Committed {
            version,
            created: true,
        })
    }

    /// Steps 3-5 of the protocol. Returns the log entry that was made durable.
    /// `ts_us` is the frame's shared timestamp; `None` takes the clock.
    fn write_version(
        &self,
        state: &State,
        v: &NewVersion,
        ts_us: Option<u64>,
        opts: &CommitOptions,
    ) -> Result<LogEntry> {
        let io = &*self.ctx.io;
        let (content, hunks) = (v.content.as_slice(), v.hunks.as_slice());
        let old = state.head.as_slice();
        let prev_ts = state.log.last().map_or(0, |e| e.ts_us);
        let user = lock_poisoned(self.ctx.users.lock()).code(io, opts.user)?;
        let anchor = state
            .log
            .iter()
            .rposition(|e| e.keyframe || e.size == 0)
            .map_or(state.log.len() as u64, |i| (state.log.len() - i) as u64);
        let keyframe =
            !old.is_empty() && !content.is_empty() && anchor >= self.ctx.config.keyframe_every;
        let (stored, is_xz) = delta::pack(delta::encode(old, content, hunks));
        let entry = LogEntry {
            ts_us: ts_us.unwrap_or_else(|| now_us().max(prev_ts + 1)),
            node: self.ctx.config.node.clone(),
            action: opts.action as u32,
            user,
            base: state.log.len() as u64,
            size: content.len() as u64,
            rows: v.rows,
            hash: v.hash.clone(),
            frame: opts.frame.map(str::to_string),
            delta: if is_xz {
                DeltaKind::BsdiffXz
            } else {
                DeltaKind::Bsdiff
            },
            keyframe,
        };
        let delta_path = self.path(&entry.delta_file());
        let kf_path = self.path(&entry.keyframe_file());
        let cleanup = |e: StorageError| {
            let _ = io.remove(&delta_path);
            let _ = io.remove(&kf_path);
            e
        };
        io.write_new(&delta_path, &stored, true)
            .map_err(|e| cleanup(StorageError::io("write", &delta_path, e)))?;
        if keyframe {
            io.write_new(&kf_path, &delta::xz(content, 1), true)
                .map_err(|e| cleanup(StorageError::io("write", &kf_path, e)))?;
        }
        io.sync_dir(&self.dir)
            .map_err(|e| cleanup(StorageError::io("fsync directory", &self.dir, e)))?;
        let log_path = self.path(LOG);
        // The first line of a log: the file may be new (or was cut to nothing
        // by recovery), and its name is durable only with its directory.
        let new_log = state.log_len == 0;
        if let Err(e) = io.append(&log_path, entry.encode().as_bytes(), true) {
            // Cut whatever part of the line may have reached the file.
            let _ = io.truncate(&log_path, state.log_len);
            return Err(cleanup(StorageError::io("append", &log_path, e)));
        }
        if new_log && let Err(e) = io.sync_dir(&self.dir) {
            // The log's name is durable only once its directory is synced;
            // without that the commit did not happen: take the line back.
            let _ = io.truncate(&log_path, 0);
            return Err(cleanup(StorageError::io("fsync directory", &self.dir, e)));
        }
        Ok(entry)
    }
}

/// One table of a frame being committed, between its steps.
struct FramePart {
    state: State,
    prepared: Prepared,
    action: Action,
    /// The log entry once its version is written.
    entry: Option<LogEntry>,
}

impl Table {
    /// Commits a frame (the protocol is in `frame.rs`): every table's
    /// version, with one timestamp and the frame id, or none of them.
    /// `resolve(table, base, ours, head, head_seq)` merges a part whose
    /// base is no longer the head, as for single commits.
    pub(crate) fn commit_frame<E: From<StorageError>>(
        id: &str,
        name: &str,
        user: &str,
        parts: Vec<(Arc<Table>, Staged)>,
        mut resolve: impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FrameCommitted, E> {
        // Lock in name order, so two frames never wait for each other in a
        // cycle (sorted by moving the parts, not copying their contents).
        let mut parts = parts;
        parts.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (tables, staged): (Vec<Arc<Table>>, Vec<Staged>) = parts.into_iter().unzip();
        let mut held = Vec::with_capacity(tables.len());
        for t in &tables {
            let w = lock_poisoned(t.writer.lock());
            let g = t.acquire()?;
            held.push((w, g));
        }
        let reset = |held: &mut Vec<(std::sync::MutexGuard<'_, Writer>, LockGuard<'_>)>| {
            for (w, _) in held.iter_mut() {
                w.log_len = None;
            }
        };
        let mut parts: Vec<FramePart> = Vec::with_capacity(tables.len());
        for (i, st) in staged.into_iter().enumerate() {
            let t = &tables[i];
            let part = t.frame_prepare(&mut held[i].0, st, &mut resolve);
            match part {
                Ok(p) => parts.push(p),
                Err(e) => {
                    reset(&mut held);
                    return Err(e);
                }
            }
        }
        let changed: Vec<usize> = (0..parts.len())
            .filter(|&i| matches!(parts[i].prepared, Prepared::Version(_)))
            .collect();
        let ts_us = parts
            .iter()
            .filter_map(|p| p.state.log.last().map(|e| e.ts_us + 1))
            .fold(now_us(), u64::max);
        let ctx = match tables.first() {
            Some(t) => Arc::clone(&t.ctx),
            None => {
                return Ok(FrameCommitted {
                    id: id.to_string(),
                    name: name.to_string(),
                    ts_us,
                    tables: Vec::new(),
                });
            }
        };
        if !changed.is_empty() {
            let intent = Intent {
                id: id.to_string(),
                name: name.to_string(),
                ts_us,
                user: user.to_string(),
                tables: changed
                    .iter()
                    .map(|&i| {
                        let node = &ctx.config.node;
                        (
                            tables[i].name.clone(),
                            super::names::version_name(ts_us, node),
                        )
                    })
                    .collect(),
            };
            let written = frame::write_intent(&ctx, &intent).and_then(|()| {
                for &i in &changed {
                    let p = &mut parts[i];
                    let opts = CommitOptions {
                        action: p.action,
                        user,
                        frame: Some(id),
                    };
                    if let Prepared::Version(v) = &p.prepared {
                        p.entry = Some(tables[i].write_version(&p.state, v, Some(ts_us), &opts)?);
                    }
                }
                frame::decide(&ctx, id, Decision::Commit, "")
            });
            if let Err(e) = written {
                // Before the commit point: take back every line written,
                // then record the abort (readers never counted the lines).
                for (i, p) in parts.iter().enumerate() {
                    if let Some(entry) = &p.entry {
                        tables[i].undo_line(&p.state, entry);
                    }
                }
                frame::remove_record(&ctx, id, "commit");
                let _ = frame::decide(&ctx, id, Decision::Abort, &e.report());
                reset(&mut held);
                return Err(e.into());
            }
        }
        let mut out = Vec::with_capacity(parts.len());
        for (i, p) in parts.into_iter().enumerate() {
            let committed = match (p.prepared, p.entry) {
                (Prepared::Unchanged(c), _) => c,
                (Prepared::Version(v), Some(entry)) => {
                    tables[i].publish(&mut held[i].0, p.state, entry, v.content)?
                }
                (Prepared::Version(_), None) => return Err(tables[i].no_version(0).into()),
            };
            out.push((tables[i].name.clone(), committed));
        }
        Ok(FrameCommitted {
            id: id.to_string(),
            name: name.to_string(),
            ts_us,
            tables: out,
        })
    }

    /// Steps 1-2 for one table of a frame: catch up, merge, validate.
    fn frame_prepare<E: From<StorageError>>(
        &self,
        writer: &mut Writer,
        st: Staged,
        resolve: &mut impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FramePart, E> {
        let state = self.catch_up(writer)?;
        let head_seq = state.log.len() as u64;
        let mut content = st.content;
        if let Base::Version(b) = st.base
            && b != head_seq
        {
            let base_bytes = self.base_bytes(&state, b)?;
            content = resolve(&self.name, &base_bytes, &content, &state.head, head_seq)?;
        }
        let prepared = self.prepare(writer, &state, content)?;
        Ok(FramePart {
            state,
            prepared,
            action: st.action,
            entry: None,
        })
    }

    /// Takes back a line this process appended (under the lock) and its
    /// files, best effort: a failure leaves a line of an aborted frame,
    /// which readers skip and the next locked open removes.
    fn undo_line(&self, state: &State, entry: &LogEntry) {
        let io = &*self.ctx.io;
        let _ = io.truncate(&self.path(LOG), state.log_len);
        for f in [entry.delta_file(), entry.keyframe_file()] {
            let _ = io.remove(&self.path(&f));
        }
        let _ = io.sync_dir(&self.dir);
    }
}
