//! One table: its version log, its deltas and keyframes, its head.
//!
//! Recovery and catching up with other processes are in `recover.rs`, the
//! read path and its caches in `read.rs`, the commit protocol in
//! `commit.rs`, a frame's commit across tables in `frame_commit.rs`.

mod commit;
mod frame_commit;
pub(crate) use frame_commit::PartIn;
mod packing;
mod prune;
pub use prune::{FLOOR, PruneReport};
pub(crate) use prune::{chain_start, parse_floor};
mod read;
mod recover;
mod row_log;
mod rules;
mod snapshot;
pub use row_log::{ChangeKind, HISTORY_COLUMNS, ROW_LOG, RowChange};
pub use snapshot::TableSnapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::DbCtx;
use super::csv::TableIndex;
use super::delta;
use super::dict::Action;
use super::error::{Result, StorageError};
use super::hash::ChunkedHash;
use super::head_writer::{HeadWriter, Target};
use super::lock::{LockFile, LockGuard};
use super::log::LogEntry;
use super::progress::Progress;

use packing::Packs;
use read::{Checkpoints, FileStamp, PatchCache};

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
    /// Told the phases of the commit as it goes (a progress bar).
    pub progress: Option<&'a dyn Progress>,
    /// The version's timestamp is at least this (microseconds; 0: none).
    pub not_before_us: u64,
}

impl<'a> CommitOptions<'a> {
    pub fn new(action: Action, user: &'a str) -> Self {
        CommitOptions {
            action,
            user,
            frame: None,
            progress: None,
            not_before_us: 0,
        }
    }

    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(crate) fn phase(&self, name: &'static str, total: u64) {
        if let Some(p) = self.progress {
            p.phase(name, total);
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
    /// Chunk digests of `head` when they are known (open checks
    /// `current.csv` by its hash; a commit keeps them up to date), so a
    /// committer learning this head need not hash it again.
    head_hash: Option<Arc<ChunkedHash>>,
    /// Log index of the oldest version whose bytes are kept (0: nothing
    /// was pruned); the versions before it are listed but not readable.
    floor: usize,
}

/// What a committer knows of the head.
#[derive(Debug, Default)]
enum HeadIndex {
    /// Nothing: the head is empty (no version yet, or dropped), or it breaks
    /// a rule made after it was stored (a NUL, a lone CR). A save is then
    /// parsed and checked in full, so such a table can always be repaired
    /// by saving valid content.
    #[default]
    None,
    /// The head is valid, with these columns: a save is checked against it
    /// by `unindexed::edit` (its changed records parsed, the keys of the
    /// others scanned). No set of keys is kept: at 1M rows it would hold
    /// about 80 MB for the daemon's life, and the scan runs at memchr speed.
    Valid(Arc<Vec<String>>),
}

/// What only committers need: what is known of the head, and its chunk
/// hashes, kept up to date by each commit instead of re-parsing.
#[derive(Debug, Default)]
struct Writer {
    index: HeadIndex,
    /// Chunk digests of the head, so a commit rehashes only what changed.
    hash: ChunkedHash,
    /// Whether this handle ran the repairing recovery (under the lock) yet.
    repaired: bool,
    /// The log length `index` and `hash` describe; differs after another process committed.
    log_len: Option<u64>,
    /// The index of the content the next commit of a new table brings,
    /// parsed by its caller (`Database::create_table` validates before it
    /// creates the directory), so that commit does not parse it again.
    parsed: Option<TableIndex>,
    /// The schema's rules in force and the unique counts (`rules.rs`).
    rules: rules::RuleCache,
    /// The last version `rows.log` holds a block for, and the file's
    /// length then (None: not read yet). Another process's append changes
    /// the length: the log is read again before this handle appends.
    row_log_seq: Option<(u64, u64)>,
}
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
    /// The table's packs: names, loaded packs, the writer's tail.
    packs: Mutex<Packs>,
    /// Background writer of `current.csv`; `None` writes it inline.
    head_writer: Option<HeadWriter>,
    /// The last decoded stored anchor (keyframe or chain start): log index
    /// and content, when at most `ANCHOR_BYTES`. Decoding one costs
    /// milliseconds; reads near it reuse it.
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
    /// Where the last version this handle committed differs from the one
    /// before it: (sequence number, common prefix, common suffix) in bytes.
    last_change: Mutex<Option<(u64, usize, usize)>>,
}
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
            packs: Mutex::new(Packs::default()),
            head_writer,
            anchor: Mutex::new(None),
            recent: Mutex::new(Default::default()),
            checkpoints: Mutex::new(Default::default()),
            verified_head_file: Mutex::new(None),
            last_change: Mutex::new(None),
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

    fn no_version(&self, seq: u64) -> StorageError {
        StorageError::NotFound {
            kind: "version",
            name: format!("{}@{seq}", self.name),
        }
    }

    fn damaged(&self, e: delta::DeltaError) -> StorageError {
        StorageError::corrupt(&self.dir, e.to_string())
    }
}
