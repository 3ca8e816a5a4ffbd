//! The mounted filesystem's logic, without a kernel: every FUSE operation as
//! a method on [`ReedFs`] that takes and returns plain values. `fuse.rs`
//! adapts it to fuser; tests drive it directly.
//!
//! Commit points (docs/MOUNT.md): `fsync` of a written `current.csv`
//! handle, the close (flush) that follows written data, the second close of
//! an emptied handle, the release of a handle still dirty, and a rename onto
//! `current.csv`. Never the early flush a shell `>` sends before any data,
//! never a truncate itself (its close commits). Every save merges against
//! its writer's base (`merge::commit_merging`). Everything else in a table directory is a
//! scratch file held in memory and never versioned.
//!
//! Locking: one mutex guards the namespace (inodes, handles, scratch files).
//! What may be slow runs outside it: commits, queries, reads of history
//! (opening a version or an `@as-of` file) and the attributes of files
//! generated from the store (`log.csv`, `@status`, conflict and rejected
//! files: `attr_from_storage`) run outside it, so a slow commit or history
//! read never blocks another caller's lookup or save.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::{FsError, Result};
use super::node::{
    CONFLICTS_DIR_KEY, Inodes, Node, QUERY_DIR_KEY, ROOT, ResultFormat, frame_dir_key,
};
use super::spill::{Budget, SpillBuf};
use super::status::{Event, Status};
use crate::merge::{self, MergeError, Outcome};
use crate::storage::attrs::{Attrs, PathAttrs};
use crate::storage::{
    Action, Base, CURRENT, CommitOptions, Database, SCHEMA, StorageError, Table, kept, names,
};

#[path = "conflicts.rs"]
mod conflicts;
#[path = "frames.rs"]
mod frames;
#[cfg(test)]
#[path = "model_tests.rs"]
mod model_tests;
#[path = "queries.rs"]
mod queries;
#[cfg(test)]
#[path = "saves_tests.rs"]
mod saves_tests;
#[path = "schema.rs"]
mod schema;

/// What a mount shows and allows.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub read_only: bool,
    /// List `@` names in directories (they are always reachable by name).
    pub show_virtual: bool,
    /// Largest file a writer may build in a table directory.
    pub max_file_bytes: u64,
    /// Serve reads of `current.csv` straight from the backing file (FUSE
    /// passthrough): native read speed, but the kernel then refuses (EINVAL)
    /// to open the same file for writing while such a reader has it open.
    pub passthrough: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            show_virtual: false,
            max_file_bytes: 1 << 30,
            passthrough: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    /// Never changes while mounted (a version's file, the past under
    /// `@as-of/`): the kernel may cache the entry and the attributes.
    pub stable: bool,
}

/// How the kernel should cache an opened file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Keep pages across opens; the daemon invalidates them when content changes.
    Keep,
    /// Generated content: no page cache, reads follow the handle's snapshot.
    Direct,
    /// Reads may go straight to the backing file (`take_backing_file`); if
    /// the adapter cannot, the handle serves them like `Direct`.
    Passthrough,
    Default,
}

/// Who asks (for file ownership and the author of commits).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The calling process: a rename-based save merges against the version
    /// the same process last read.
    pub pid: u32,
}

/// Attribute changes of a setattr.
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<SystemTime>,
}

#[derive(Debug)]
struct Scratch {
    data: SpillBuf,
    symlink: Option<Vec<u8>>,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    /// The mtime was set by utimens after the last write (rsync, cp -a,
    /// touch), not by writing: a rename onto `current.csv` carries it.
    mtime_set: bool,
}

#[derive(Debug)]
enum Handle {
    /// `current.csv`, opened for reading: a snapshot of the head, and with
    /// passthrough the backing file holding exactly those bytes.
    CurrentRead {
        data: Arc<Vec<u8>>,
        backing: Option<std::fs::File>,
    },
    /// `current.csv`, opened for writing: a private buffer committed at
    /// the close after its data (see `flush`). `base` is the version it
    /// started from (`None`: a blind write against the head).
    CurrentWrite {
        db: usize,
        table: String,
        buf: Vec<u8>,
        base: Option<u64>,
        dirty: bool,
        /// Opened with O_APPEND (and not cut since): every write lands at
        /// the end whatever its offset, and the save appends this handle's
        /// bytes (`buf[appended_from..]`) to the head as it is when the save
        /// commits, so concurrent appenders each land exactly once.
        append: bool,
        appended_from: usize,
        /// The durable copy an fsync made before the commit (`unsaved/`).
        unsaved: Option<String>,
        /// A modification time set through this handle before its data
        /// committed (`cp -a`, rsync `--inplace`): given to that version.
        mtime: Option<SystemTime>,
        /// A write was refused (EFBIG): the content is incomplete and is
        /// never committed.
        failed: bool,
        /// Flushes seen from the opening process (its closes of this open
        /// file).
        flushes: u32,
        /// The process (thread group) that opened it: its closes commit a
        /// save with no data (`: > f`, `truncate -s 0`).
        opener: u32,
        /// The processes that wrote through it since its last commit: a
        /// close by one of them commits (a shell that opens for `cmd > f`
        /// and a child that writes and exits: the child's exit commits);
        /// a close by any other process (a child that inherited the
        /// descriptor and never wrote) closes a copy and commits nothing.
        writers: Vec<u32>,
        /// Some program closed it (any flush): one never closed was never
        /// really open (see `release`).
        closed: bool,
        /// Emptied or cut by ftruncate through this handle (`truncate -s`):
        /// a save even without data, so its close commits. (O_TRUNC
        /// arrives with the open instead: FUSE_ATOMIC_O_TRUNC.)
        truncated: bool,
        /// `@frames/<frame>/<table>.csv`: saving stages into the frame
        /// instead of committing.
        frame: Option<String>,
    },
    /// `@frames/<frame>/ctl` opened for writing: a command, run at close.
    FrameCtl {
        db: usize,
        frame: String,
        buf: Vec<u8>,
        /// Who opened it: the author of a commit it runs.
        caller: Caller,
    },
    Scratch {
        ino: u64,
    },
    /// A writable virtual file opened for writing: its buffer is applied
    /// at the close that follows written data.
    VirtualEdit {
        db: usize,
        target: EditTarget,
        buf: Vec<u8>,
        dirty: bool,
    },
    /// Generated or historical content, fixed at open.
    Virtual {
        data: Arc<Vec<u8>>,
    },
    /// An open directory: its listing as of opendir, so the pages of one
    /// listing are read from one snapshot (a listing of 10k versions is
    /// built once, not once per page).
    Dir {
        entries: Arc<Vec<(u64, Kind, String)>>,
    },
    /// A query result too large for memory, in an anonymous file.
    Spilled {
        file: Arc<std::fs::File>,
    },
}

/// What saving a [`Handle::VirtualEdit`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EditTarget {
    /// `@conflicts/<id>.csv`: resolves the conflict.
    Conflict(String),
    /// `@query/<name>.sql`: saves the query.
    SavedQuery(String),
    /// `<table>/schema.toml`: saves the table's schema.
    Schema(String),
}

impl Handle {
    /// A writer of a table's content (`current.csv`, or a frame's
    /// `<table>.csv` when `frame` is set).
    fn writer(
        db: usize,
        table: &str,
        buf: Vec<u8>,
        base: Option<u64>,
        dirty: bool,
        frame: Option<String>,
        opener: Caller,
    ) -> Handle {
        Handle::CurrentWrite {
            db,
            table: table.to_string(),
            appended_from: buf.len(),
            buf,
            base,
            dirty,
            append: false,
            unsaved: None,
            mtime: None,
            failed: false,
            flushes: 0,
            opener: process_of(opener.pid),
            writers: Vec::new(),
            closed: false,
            truncated: false,
            frame,
        }
    }

    /// The size a writer's own fstat must see: what it wrote so far.
    fn written_len(&self) -> Option<u64> {
        match self {
            Handle::CurrentWrite { buf, .. } | Handle::VirtualEdit { buf, .. } => {
                Some(buf.len() as u64)
            }
            _ => None,
        }
    }
}

/// What a save of `current.csv` commits.
enum Save {
    /// The whole table as the writer made it, from version `base` (`None`: a
    /// blind write against the head).
    Whole { content: Vec<u8>, base: Option<u64> },
    /// Bytes appended (O_APPEND): added to the head as it is at commit.
    Append(Vec<u8>),
}

/// How long an unlinked or renamed-away `current.csv` stays hidden from
/// the process that did it, waiting for that process to create the new one.
const REPLACEMENT_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Inner {
    inodes: Inodes,
    scratch: HashMap<u64, Scratch>,
    /// Scratch names per table directory.
    dirs: HashMap<(usize, String), BTreeMap<String, u64>>,
    /// Directories made with mkdir that hold no version yet.
    pending_tables: BTreeSet<(usize, String)>,
    /// Tables whose `current.csv` a process unlinked or renamed away: the
    /// first half of a replacement (`mv` across file systems, vim's
    /// `backupcopy=no`). Hidden from that process only (pid, when), until it
    /// creates the new file; everyone else still sees the table.
    replacing: HashMap<(usize, String), (u32, std::time::Instant)>,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Head version last seen per table, to notice commits made elsewhere.
    seen: HashMap<(usize, String), u64>,
    /// Version of a table each process last read or committed (the merge
    /// base of its next save). Bounded: cleared when it grows past 4096.
    last_read: HashMap<(u32, usize, String), u64>,
    /// Modes and times writers set, per database (`storage::attrs`).
    attrs: Vec<Attrs>,
    /// Frames being staged under `<db>/@frames/`.
    frames: HashMap<(usize, String), frames::OpenFrame>,
}

pub struct MountedDb {
    pub name: String,
    pub db: Database,
}

pub struct ReedFs {
    dbs: Vec<MountedDb>,
    opts: MountOptions,
    /// Mounting one database: the mountpoint is that database.
    single: bool,
    inner: Mutex<Inner>,
    status: Vec<Status>,
    /// Parsed table versions for `@query/`, one cache per database.
    queries: Vec<crate::query::TableCache>,
    /// Inodes whose kernel cache must be dropped (sent by a separate thread).
    invalidate: Mutex<Option<Sender<u64>>>,
    owner: Caller,
    started: SystemTime,
    /// Memory and disk all scratch files may use.
    scratch_budget: Arc<Budget>,
}

const TEMP_NAME_MAX: usize = 255;

/// Modes the mount shows until the owner changes one with chmod (kept per
/// path, `storage::attrs`): the owner's only, like the store itself
/// (docs/SECURITY.md). With `--allow-other` the kernel enforces them
/// (`default_permissions`), so nothing is shared until the owner says so.
const DIR_PERM: u16 = 0o700;
const FILE_PERM: u16 = 0o600;
/// History, status and query results: read-only, the owner's only.
const READ_ONLY_PERM: u16 = 0o400;

/// Appends `bytes` to table `t`'s head as it is when the commit takes the
/// table lock (`commit_resolving` hands the resolver the newest head), so
/// concurrent appenders each land exactly once, in commit order.
fn append_to_head(
    t: &Table,
    bytes: &[u8],
    opts: &CommitOptions,
) -> std::result::Result<crate::storage::Committed, MergeError> {
    let (seq, head) = t.head()?;
    let mut content = Vec::with_capacity(head.len() + bytes.len());
    content.extend_from_slice(&head);
    content.extend_from_slice(bytes);
    t.commit_resolving(seq, content, opts, |_, _, newest, _| {
        let mut c = Vec::with_capacity(newest.len() + bytes.len());
        c.extend_from_slice(newest);
        c.extend_from_slice(bytes);
        Ok::<_, MergeError>(c)
    })
}

/// A scratch file's I/O error (ENOSPC past the scratch budget, or from
/// the disk it spilled to), with its errno.
fn scratch_io(e: std::io::Error) -> FsError {
    FsError::Storage(StorageError::io("write a scratch file", "(scratch)", e))
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ts_time(ts_us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(ts_us)
}

/// A time as nanoseconds since the epoch (negative before it), as
/// `storage::attrs` keeps it.
fn time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

fn ns_time(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// The key of a path in `storage::attrs`: `""` for the database directory,
/// `<t>` for a table's, `<t>/current.csv` for its head.
fn attrs_key(table: &str, file: Option<&str>) -> String {
    match file {
        Some(f) => format!("{table}/{f}"),
        None => table.to_string(),
    }
}

fn name_str(name: &OsStr) -> Result<&str> {
    let s = name.to_str().ok_or(FsError::InvalidName("not UTF-8"))?;
    if s.len() > TEMP_NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(FsError::InvalidName("control characters"));
    }
    Ok(s)
}

/// A query from a file name under `@query/`: `%2F` is `/` and `%25` is `%`
/// (names cannot hold `/`); any other `%` stays as typed, so `LIKE 'a%'`
/// needs no encoding.
fn decode_query_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        match code.map(str::to_ascii_uppercase).as_deref() {
            Some("2F") => out.push('/'),
            Some("25") => out.push('%'),
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// Whether a frame's table list (a `frame_tables` result) holds `t`.
fn inner_frame_has(tables: &Result<Vec<String>>, t: &str) -> bool {
    tables.as_ref().is_ok_and(|ts| ts.iter().any(|x| x == t))
}

/// The process (thread group id) a calling thread belongs to: FUSE names
/// the thread. Unknown (gone, or a made-up id in tests): the id itself.
fn process_of(pid: u32) -> u32 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return pid;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(pid)
}

/// Whether the process of thread `pid` is gone or dying. A process killed
/// while the daemon answers its request does not exit until the answer
/// comes (the kernel waits for it uninterruptibly): it shows as a SIGKILL
/// pending (a Ctrl-C of a default handler is made one), not as gone.
fn reader_gone(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);
    status.lines().any(|l| {
        let pending = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        pending.is_some_and(|m| m & SIGKILL_BIT != 0) || l.starts_with("State:\tZ")
    })
}

/// User name for the log: the caller's login name, else `uid:<n>`.
fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into our buffers; we read pw_name only on success.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: pw_name points into buf, NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(s) = name.to_str() {
            return s.to_string();
        }
    }
    format!("uid:{uid}")
}

impl ReedFs {
    pub fn new(dbs: Vec<MountedDb>, single: bool, opts: MountOptions) -> ReedFs {
        let root = if single { Node::Db(0) } else { Node::Root };
        let owner = Caller {
            // SAFETY: trivial libc getters.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            pid: std::process::id(),
        };
        let status: Vec<Status> = dbs.iter().map(|_| Status::default()).collect();
        // Each database's query cache starts from the lookup counts its last
        // mount wrote, so hot columns are indexed as soon as their tables are.
        let queries = dbs
            .iter()
            .map(|d| {
                let cache = crate::query::TableCache::default();
                let saved = d.db.read_state("indexes").ok().flatten();
                if let Some(state) = saved.and_then(|b| {
                    toml::from_str::<crate::query::index::IndexState>(&String::from_utf8_lossy(&b))
                        .ok()
                }) {
                    cache.indexes.restore(&state);
                }
                cache
            })
            .collect();
        let attrs = dbs
            .iter()
            .map(|d| {
                d.db.file_attrs().unwrap_or_else(|e| {
                    tracing::warn!(db = %d.name, error = %e.report(), "file attributes unreadable");
                    Attrs::default()
                })
            })
            .collect();
        // Saves in progress that an fsync made durable, left by a daemon
        // that died before their close: the bytes go to @rejected/.
        for (d, st) in dbs.iter().zip(&status) {
            match d.db.recover_unsaved() {
                Ok(names) => {
                    for name in names {
                        st.push(Event::Rejected {
                            table: name.split("-unsaved-").next().unwrap_or("").to_string(),
                            reason:
                                "a save in progress when the mount stopped (fsynced, never closed)"
                                    .into(),
                            kept: Some(format!("@rejected/{name}")),
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(db = %d.name, error = %e.report(), "could not recover unsaved bytes")
                }
            }
        }
        let (mem_mb, max_mb, spill_root) = dbs.first().map_or((64, 4096, None), |d| {
            let c = d.db.config();
            (
                c.scratch_memory_mb,
                c.scratch_max_mb,
                Some(d.db.root().to_path_buf()),
            )
        });
        let scratch_budget = Budget::new(
            mem_mb << 20,
            max_mb << 20,
            Box::new(move || match &spill_root {
                Some(root) => crate::storage::anonymous_file_in(root)
                    .map_err(|e| std::io::Error::other(e.report())),
                None => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            }),
        );
        ReedFs {
            queries,
            dbs,
            opts,
            single,
            inner: Mutex::new(Inner {
                inodes: Inodes::new(root),
                scratch: HashMap::new(),
                dirs: HashMap::new(),
                pending_tables: BTreeSet::new(),
                replacing: HashMap::new(),
                handles: HashMap::new(),
                next_fh: 1,
                seen: HashMap::new(),
                last_read: HashMap::new(),
                attrs,
                frames: HashMap::new(),
            }),
            status,
            invalidate: Mutex::new(None),
            owner,
            started: SystemTime::now(),
            scratch_budget,
        }
    }

    /// Where to send inodes whose cached pages and attributes are stale.
    pub fn set_invalidation_sink(&self, tx: Sender<u64>) {
        *self.invalidate.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    }

    fn invalidate(&self, ino: u64) {
        if let Some(tx) = self
            .invalidate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send(ino);
        }
    }

    /// Runs a query of `@query/` and renders its result (in memory, or in
    /// an anonymous file when large). A bad query fails (EINVAL) with its
    /// message and position in `@status`.
    fn run_query(
        &self,
        db: usize,
        sql: &str,
        format: ResultFormat,
        reader: Caller,
    ) -> Result<Handle> {
        let mdb = &self.dbs[db].db;
        let engine = crate::query::Engine::with_cache(mdb, &self.queries[db]);
        let started = std::time::Instant::now();
        let format = match format {
            ResultFormat::Csv => crate::query::output::Format::Csv(mdb.config().delimiter_byte()),
            ResultFormat::Json => crate::query::output::Format::Json,
        };
        let mut spool = queries::Spool::new(mdb, queries::SPILL_BYTES);
        // A reader killed while its query runs (Ctrl-C on `cat`) stops the
        // query: nobody is left to read the result.
        let interrupt = engine.interrupt();
        let done = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if reader_gone(reader.pid) {
                        interrupt.cancel();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let r = engine.query_to(sql, format, &mut spool);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        });
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = result.is_ok(),
            "query run"
        );
        match result {
            Ok(()) => match spool.finish() {
                Ok(queries::Spooled::Memory(data)) => Ok(Handle::Virtual { data }),
                Ok(queries::Spooled::File(file)) => Ok(Handle::Spilled { file }),
                Err(e) => Err(FsError::Storage(StorageError::io(
                    "write a query result to",
                    mdb.root().join("state"),
                    e,
                ))),
            },
            Err(e) => {
                self.status[db].push(Event::Rejected {
                    table: "@query".into(),
                    reason: format!("{} (query: {sql})", e.report()),
                    kept: None,
                });
                Err(e.into())
            }
        }
    }

    /// Decodes each table's recent history into its delta cache (see
    /// `Table::prefetch_history`); for a background thread after mounting.
    pub fn prefetch_history(&self) {
        const VERSIONS: usize = 5000;
        for (i, d) in self.dbs.iter().enumerate() {
            for t in d.db.table_names().unwrap_or_default() {
                let Ok(table) = self.table(i, &t) else {
                    continue;
                };
                match table.prefetch_history(VERSIONS) {
                    Ok(n) => {
                        tracing::debug!(db = %d.name, table = %t, deltas = n, "history prefetched")
                    }
                    Err(e) => {
                        tracing::warn!(db = %d.name, table = %t, error = %e, "history prefetch failed")
                    }
                }
            }
        }
    }

    pub fn databases(&self) -> &[MountedDb] {
        &self.dbs
    }

    /// Waits until every table's `current.csv` in the backing stores is current.
    pub fn flush_all(&self) {
        for d in &self.dbs {
            d.db.flush();
        }
    }

    fn node(&self, inner: &Inner, ino: u64) -> Result<Node> {
        inner.inodes.node(ino).cloned().ok_or(FsError::NotFound)
    }

    fn table(&self, db: usize, name: &str) -> Result<Arc<Table>> {
        let t = self.dbs[db].db.table(name).map_err(|e| match e {
            StorageError::NotFound { .. } => FsError::NotFound,
            e => FsError::Storage(e),
        })?;
        if t.is_dropped()? {
            return Err(FsError::NotFound);
        }
        Ok(t)
    }

    fn table_exists(&self, inner: &Inner, db: usize, name: &str) -> bool {
        inner.pending_tables.contains(&(db, name.to_string())) || self.table(db, name).is_ok()
    }

    /// Notices heads that changed behind our back (a CLI commit) and drops
    /// the kernel's cache of them.
    fn check_head(
        &self,
        inner: &mut Inner,
        db: usize,
        table: &str,
        t: &Table,
    ) -> Result<(u64, Arc<Vec<u8>>)> {
        let (seq, head) = t.head()?;
        let key = (db, table.to_string());
        if inner.seen.insert(key, seq).is_some_and(|old| old != seq) {
            let ino = inner.inodes.ino(&Node::Current(db, table.to_string()));
            self.invalidate(ino);
        }
        Ok((seq, head))
    }

    fn dir_attr(&self, ino: u64, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            perm: DIR_PERM,
            uid: self.owner.uid,
            gid: self.owner.gid,
            mtime,
            stable: false,
        }
    }

    fn file_attr(&self, ino: u64, size: u64, perm: u16, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::File,
            size,
            perm,
            uid: self.owner.uid,
            gid: self.owner.gid,
            mtime,
            stable: false,
        }
    }

    fn attr_of(&self, inner: &mut Inner, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::Db(db) => self.saved_dir_attr(inner, ino, *db, ""),
            Node::Root
            | Node::Versions(..)
            | Node::Rejected(_)
            | Node::Conflicts(_)
            | Node::AsOfRoot(_)
            | Node::AsOf(..)
            | Node::FramesRoot(_)
            | Node::QueryRoot(_) => self.dir_attr(ino, self.started),
            // Results come with direct I/O: the size is found by reading.
            Node::QueryFile(..) => self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now()),
            Node::Schema(db, t) => {
                let (text, mtime) = self.schema_file_in(inner, *db, t)?;
                self.file_attr(ino, text.len() as u64, FILE_PERM, mtime)
            }
            Node::SavedQuery(db, name) => {
                let (text, mtime) = self.saved_file_in(inner, *db, name)?;
                self.file_attr(ino, text.len() as u64, FILE_PERM, mtime)
            }
            Node::SavedResult(db, name, _) => {
                if !self.dbs[*db].db.saved_query_exists(name)? {
                    return Err(FsError::NotFound);
                }
                self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now())
            }
            Node::FrameDir(db, f) => {
                Self::frame_tables_in(inner, *db, f)?;
                self.dir_attr(ino, self.started)
            }
            Node::FrameTable(db, f, t) => {
                let len = self.frame_len_in(inner, *db, f, t)?;
                self.file_attr(ino, len, FILE_PERM, SystemTime::now())
            }
            Node::FrameCtl(db, f) => {
                let len = Self::frame_ctl_text_in(inner, *db, f)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, SystemTime::now())
            }
            Node::Table(db, t) => {
                if !self.table_exists(inner, *db, t) {
                    return Err(FsError::NotFound);
                }
                self.saved_dir_attr(inner, ino, *db, t)
            }
            Node::Current(db, t) => {
                if inner.pending_tables.contains(&(*db, t.clone())) {
                    return Ok(self.file_attr(ino, 0, FILE_PERM, self.started));
                }
                let table = self.table(*db, t)?;
                let (seq, head) = self.check_head(inner, *db, t, &table)?;
                let saved = inner.attrs[*db].paths.get(&attrs_key(t, Some(CURRENT)));
                let perm = saved.and_then(|p| p.mode).map_or(FILE_PERM, |m| m as u16);
                // A time set by a writer belongs to the version it was set on.
                let mtime = match saved
                    .filter(|p| p.seq == Some(seq))
                    .and_then(|p| p.mtime_ns)
                {
                    Some(ns) => ns_time(ns),
                    None => table
                        .version(seq)
                        .map_or(self.started, |v| ts_time(v.ts_us)),
                };
                self.file_attr(ino, head.len() as u64, perm, mtime)
            }
            Node::Scratch(..) => {
                let s = inner.scratch.get(&ino).ok_or(FsError::NotFound)?;
                Attr {
                    ino,
                    kind: if s.symlink.is_some() {
                        Kind::Symlink
                    } else {
                        Kind::File
                    },
                    size: s.symlink.as_ref().map_or(s.data.len(), |l| l.len() as u64),
                    perm: s.perm,
                    uid: s.uid,
                    gid: s.gid,
                    mtime: s.mtime,
                    stable: false,
                }
            }
            Node::VersionFile(..)
            | Node::AsOfFile(..)
            | Node::VersionLog(..)
            | Node::Status(_)
            | Node::RejectedFile(..)
            | Node::ConflictFile(..) => self.attr_from_storage(ino, node)?,
        })
    }

    /// Attributes of `ino`; `fh` is the caller's open handle when it asks
    /// through one (fstat, and the kernel's own size checks): a writer sees
    /// the size of what it wrote, everyone else the head readers get.
    pub fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<Attr> {
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if Self::attr_reads_storage(&node) {
            drop(inner);
            return self.attr_from_storage(ino, &node);
        }
        self.getattr_locked(&mut inner, ino, &node, fh)
    }

    /// Attributes of the nodes of `attr_reads_storage`, without the
    /// namespace lock.
    fn attr_from_storage(&self, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::AsOfFile(db, ts, t) => {
                let table = self.table(*db, t)?;
                let v = table.version(table.seq_at(*ts)?)?;
                let mut a = self.file_attr(ino, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = *ts < names::now_us();
                a
            }
            Node::VersionFile(db, t, seq) => {
                // A version's file stays what it was (its directory's lookup
                // is what notices a drop), so no check for newer commits.
                let v = self.dbs[*db].db.table(t)?.known_version(*seq)?;
                let mut a = self.file_attr(ino, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = true;
                a
            }
            // Editable (docs/MOUNT.md): writable mode, and a time that only
            // changes with the conflict, so editors do not see it "changed
            // since reading".
            Node::ConflictFile(db, name) => {
                let id = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                // A missing record is ENOENT (StorageError::NotFound); an
                // unreadable one is not "no such file".
                let info = merge::conflicts::get(&self.dbs[*db].db, id)?;
                let len = self.generate(node)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, ts_time(info.ts_us))
            }
            Node::VersionLog(..) | Node::Status(_) | Node::RejectedFile(..) => {
                let len = self.generate(node)?.len() as u64;
                self.file_attr(ino, len, READ_ONLY_PERM, SystemTime::now())
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Nodes whose attributes come from the store alone (history, files
    /// generated from it): computed outside the namespace lock, so a slow
    /// history read never holds up another caller's lookup.
    fn attr_reads_storage(node: &Node) -> bool {
        matches!(
            node,
            Node::VersionFile(..)
                | Node::AsOfFile(..)
                | Node::VersionLog(..)
                | Node::Status(_)
                | Node::RejectedFile(..)
                | Node::ConflictFile(..)
        )
    }

    /// A directory's attributes with the mode and time writers set on it.
    fn saved_dir_attr(&self, inner: &Inner, ino: u64, db: usize, key: &str) -> Attr {
        let mut a = self.dir_attr(ino, self.started);
        if let Some(p) = inner.attrs[db].paths.get(key) {
            if let Some(m) = p.mode {
                a.perm = m as u16;
            }
            if let Some(ns) = p.mtime_ns {
                a.mtime = ns_time(ns);
            }
        }
        a
    }

    /// Changes the saved attributes of path `key` of database `db` and
    /// makes them durable.
    fn set_saved_attrs(
        &self,
        inner: &mut Inner,
        db: usize,
        key: String,
        change: impl FnOnce(&mut PathAttrs),
    ) -> Result<()> {
        change(inner.attrs[db].paths.entry(key).or_default());
        self.dbs[db].db.save_file_attrs(&inner.attrs[db])?;
        Ok(())
    }

    /// Whether `pid` unlinked or renamed away table `key`'s `current.csv`
    /// and has not created the new one yet.
    fn replacing_by(inner: &Inner, key: &(usize, String), pid: u32) -> bool {
        inner
            .replacing
            .get(key)
            .is_some_and(|(p, at)| *p == pid && at.elapsed() < REPLACEMENT_WINDOW)
    }

    /// The child node called `name` in `parent`, if such a child can exist.
    fn child(&self, inner: &Inner, parent: &Node, name: &str) -> Result<Node> {
        let db_by_name = |n: &str| self.dbs.iter().position(|d| d.name == n);
        Ok(match parent {
            Node::Root => Node::Db(db_by_name(name).ok_or(FsError::NotFound)?),
            Node::Db(db) => match name {
                "@status" => Node::Status(*db),
                "@rejected" => Node::Rejected(*db),
                "@conflicts" => Node::Conflicts(*db),
                "@as-of" => Node::AsOfRoot(*db),
                "@frames" => Node::FramesRoot(*db),
                "@query" => Node::QueryRoot(*db),
                _ => Node::Table(*db, name.to_string()),
            },
            Node::Table(db, t) => match name {
                CURRENT => Node::Current(*db, t.clone()),
                SCHEMA => Node::Schema(*db, t.clone()),
                "@versions" => Node::Versions(*db, t.clone()),
                _ => Node::Scratch(*db, t.clone(), name.to_string()),
            },
            Node::Versions(db, t) => {
                if name == "log.csv" {
                    return Ok(Node::VersionLog(*db, t.clone()));
                }
                let stem = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                let seq = self.table(*db, t)?.seq_of(stem)?.ok_or(FsError::NotFound)?;
                Node::VersionFile(*db, t.clone(), seq)
            }
            Node::Rejected(db) => Node::RejectedFile(*db, name.to_string()),
            Node::Conflicts(db) => Self::conflicts_child(inner, *db, name),
            Node::FramesRoot(db) => {
                Self::frame_tables_in(inner, *db, name)?;
                Node::FrameDir(*db, name.to_string())
            }
            Node::QueryRoot(db) => match queries::classify(name) {
                queries::QueryName::Saved(stem) => Node::SavedQuery(*db, stem.to_string()),
                queries::QueryName::Result(stem, f) => Node::SavedResult(*db, stem.to_string(), f),
                queries::QueryName::Sql => Node::QueryFile(*db, decode_query_name(name)),
                queries::QueryName::Scratch | queries::QueryName::BadName => {
                    Node::Scratch(*db, QUERY_DIR_KEY.to_string(), name.to_string())
                }
            },
            Node::FrameDir(db, f) => {
                let tables = Self::frame_tables_in(inner, *db, f)?;
                match name.strip_suffix(".csv") {
                    _ if name == "ctl" => Node::FrameCtl(*db, f.clone()),
                    Some(t) if tables.iter().any(|x| x == t) => {
                        Node::FrameTable(*db, f.clone(), t.to_string())
                    }
                    _ => Node::Scratch(*db, frame_dir_key(f), name.to_string()),
                }
            }
            Node::AsOfRoot(db) => {
                let ts = names::parse_time(name, names::now_us()).map_err(|e| {
                    tracing::info!(name, error = %e, "@as-of: not a time");
                    FsError::NotFound
                })?;
                Node::AsOf(*db, ts)
            }
            Node::AsOf(db, ts) => {
                let t = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                let table = self.table(*db, t)?;
                // Only tables that existed (and were not dropped) then.
                let seq = table.seq_at(*ts)?;
                if seq == 0 || table.version(seq)?.size == 0 {
                    return Err(FsError::NotFound);
                }
                Node::AsOfFile(*db, *ts, t.to_string())
            }
            _ => return Err(FsError::NotDir),
        })
    }

    pub fn lookup(&self, parent: u64, name: &OsStr, caller: Caller) -> Result<Attr> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        let node = self.child(&inner, &pnode, name)?;
        if let Node::Current(db, t) = &node
            && Self::replacing_by(&inner, &(*db, t.clone()), caller.pid)
        {
            return Err(FsError::NotFound);
        }
        if let Node::Scratch(db, t, n) = &node {
            let ino = Self::scratch_ino(&inner, *db, t, n).ok_or(FsError::NotFound)?;
            return self.attr_of(&mut inner, ino, &node);
        }
        let ino = inner.inodes.ino(&node);
        let attr = if Self::attr_reads_storage(&node) {
            drop(inner);
            let attr = self.attr_from_storage(ino, &node)?;
            inner = lock(&self.inner);
            attr
        } else {
            self.attr_of(&mut inner, ino, &node)?
        };
        inner.inodes.looked_up(ino);
        Ok(attr)
    }

    /// The kernel holds a reference to `ino` from a listing with attributes.
    pub fn looked_up(&self, ino: u64) {
        lock(&self.inner).inodes.looked_up(ino);
    }

    /// FUSE forget: the kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        lock(&self.inner).inodes.forgotten(ino, n);
    }

    pub fn readdir(&self, ino: u64) -> Result<Vec<(u64, Kind, String)>> {
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        let show = self.opts.show_virtual;
        let mut names: Vec<(Node, Kind, String)> = Vec::new();
        match &node {
            Node::Root => {
                for (i, d) in self.dbs.iter().enumerate() {
                    names.push((Node::Db(i), Kind::Dir, d.name.clone()));
                }
            }
            Node::Db(db) => {
                let mut tables: BTreeSet<String> = self.dbs[*db]
                    .db
                    .table_names()?
                    .into_iter()
                    .filter(|t| self.table(*db, t).is_ok())
                    .collect();
                tables.extend(
                    inner
                        .pending_tables
                        .iter()
                        .filter(|(d, _)| d == db)
                        .map(|(_, t)| t.clone()),
                );
                for t in tables {
                    names.push((Node::Table(*db, t.clone()), Kind::Dir, t));
                }
                if show {
                    names.push((Node::Status(*db), Kind::File, "@status".into()));
                    names.push((Node::Rejected(*db), Kind::Dir, "@rejected".into()));
                    names.push((Node::Conflicts(*db), Kind::Dir, "@conflicts".into()));
                    names.push((Node::AsOfRoot(*db), Kind::Dir, "@as-of".into()));
                    names.push((Node::FramesRoot(*db), Kind::Dir, "@frames".into()));
                    names.push((Node::QueryRoot(*db), Kind::Dir, "@query".into()));
                }
            }
            Node::Table(db, t) => {
                if !self.table_exists(&inner, *db, t) {
                    return Err(FsError::NotFound);
                }
                names.push((Node::Current(*db, t.clone()), Kind::File, CURRENT.into()));
                if self.schema_in(&inner, *db, t)? {
                    names.push((Node::Schema(*db, t.clone()), Kind::File, SCHEMA.into()));
                }
                if let Some(dir) = inner.dirs.get(&(*db, t.clone())) {
                    for (n, &sino) in dir {
                        let kind = match inner.scratch.get(&sino) {
                            Some(s) if s.symlink.is_some() => Kind::Symlink,
                            _ => Kind::File,
                        };
                        names.push((Node::Scratch(*db, t.clone(), n.clone()), kind, n.clone()));
                    }
                }
                if show {
                    names.push((
                        Node::Versions(*db, t.clone()),
                        Kind::Dir,
                        "@versions".into(),
                    ));
                }
            }
            Node::Versions(db, t) => {
                for v in self.table(*db, t)?.versions()? {
                    names.push((
                        Node::VersionFile(*db, t.clone(), v.seq),
                        Kind::File,
                        format!("{}.csv", v.name),
                    ));
                }
                names.push((
                    Node::VersionLog(*db, t.clone()),
                    Kind::File,
                    "log.csv".into(),
                ));
            }
            Node::Conflicts(db) => {
                for c in merge::conflicts::list(&self.dbs[*db].db)? {
                    let name = format!("{}.csv", c.id);
                    names.push((Node::ConflictFile(*db, name.clone()), Kind::File, name));
                }
                if let Some(dir) = inner.dirs.get(&(*db, CONFLICTS_DIR_KEY.to_string())) {
                    for n in dir.keys() {
                        let node = Node::Scratch(*db, CONFLICTS_DIR_KEY.to_string(), n.clone());
                        names.push((node, Kind::File, n.clone()));
                    }
                }
            }
            Node::Rejected(db) => {
                for f in self.dbs[*db].db.rejected_names()? {
                    names.push((Node::RejectedFile(*db, f.clone()), Kind::File, f));
                }
            }
            Node::FramesRoot(db) => {
                for f in Self::frame_names_in(&inner, *db) {
                    names.push((Node::FrameDir(*db, f.clone()), Kind::Dir, f));
                }
            }
            Node::FrameDir(db, f) => {
                for t in Self::frame_tables_in(&inner, *db, f)? {
                    let n = format!("{t}.csv");
                    names.push((Node::FrameTable(*db, f.clone(), t), Kind::File, n));
                }
                names.push((Node::FrameCtl(*db, f.clone()), Kind::File, "ctl".into()));
                let key = frame_dir_key(f);
                if let Some(dir) = inner.dirs.get(&(*db, key.clone())) {
                    for n in dir.keys() {
                        let node = Node::Scratch(*db, key.clone(), n.clone());
                        names.push((node, Kind::File, n.clone()));
                    }
                }
            }
            // Times are endless: this lists nothing; readers name its children.
            Node::AsOfRoot(_) => {}
            // Saved queries (not their results: a listing runs nothing) and
            // scratch files.
            Node::QueryRoot(db) => {
                for q in self.dbs[*db].db.saved_queries()? {
                    let name = format!("{q}.sql");
                    names.push((Node::SavedQuery(*db, q), Kind::File, name));
                }
                if let Some(dir) = inner.dirs.get(&(*db, QUERY_DIR_KEY.to_string())) {
                    for n in dir.keys() {
                        let node = Node::Scratch(*db, QUERY_DIR_KEY.to_string(), n.clone());
                        names.push((node, Kind::File, n.clone()));
                    }
                }
            }
            Node::AsOf(db, ts) => {
                for t in self.dbs[*db].db.table_names()? {
                    let Ok(table) = self.table(*db, &t) else {
                        continue;
                    };
                    let seq = table.seq_at(*ts)?;
                    if seq > 0 && table.version(seq)?.size > 0 {
                        names.push((
                            Node::AsOfFile(*db, *ts, t.clone()),
                            Kind::File,
                            format!("{t}.csv"),
                        ));
                    }
                }
            }
            _ => return Err(FsError::NotDir),
        }
        Ok(names
            .into_iter()
            .map(|(n, k, name)| {
                let ino = match &n {
                    Node::Scratch(db, t, s) => Self::scratch_ino(&inner, *db, t, s).unwrap_or(0),
                    _ => inner.inodes.ino(&n),
                };
                (ino, k, name)
            })
            .collect())
    }

    /// Opens directory `ino`: its listing, taken now.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        let entries = Arc::new(self.readdir(ino)?);
        Ok(Self::new_fh(
            &mut lock(&self.inner),
            Handle::Dir { entries },
        ))
    }

    /// The listing of open directory `fh` (of `ino`, listed anew when the
    /// handle is not an open directory's).
    pub fn listing(&self, fh: u64, ino: u64) -> Result<Arc<Vec<(u64, Kind, String)>>> {
        if let Some(Handle::Dir { entries }) = lock(&self.inner).handles.get(&fh) {
            return Ok(Arc::clone(entries));
        }
        Ok(Arc::new(self.readdir(ino)?))
    }

    pub fn releasedir(&self, fh: u64) {
        lock(&self.inner).handles.remove(&fh);
    }

    fn new_fh(inner: &mut Inner, h: Handle) -> u64 {
        let fh = inner.next_fh;
        inner.next_fh += 1;
        inner.handles.insert(fh, h);
        fh
    }

    fn check_writable(&self, node: &Node) -> Result<()> {
        if node.is_virtual() {
            return Err(FsError::ReadOnly(
                "history and status files cannot be written",
            ));
        }
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        Ok(())
    }

    /// Opens a file. `flags` are the open(2) flags.
    pub fn open(&self, ino: u64, flags: i32, caller: Caller) -> Result<(u64, Caching)> {
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let trunc = flags & libc::O_TRUNC != 0;
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if node.is_dir() {
            return Err(FsError::IsDir);
        }
        if let (Node::ConflictFile(db, name), true) = (&node, write || trunc) {
            // The one writable virtual file: editing it resolves the conflict.
            if self.opts.read_only {
                return Err(FsError::ReadOnly("mounted read-only"));
            }
            let id = name
                .strip_suffix(".csv")
                .ok_or(FsError::NotFound)?
                .to_string();
            let buf = if trunc {
                Vec::new()
            } else {
                merge::conflicts::cells(&self.dbs[*db].db, &id)?
            };
            let h = Handle::VirtualEdit {
                db: *db,
                target: EditTarget::Conflict(id),
                buf,
                dirty: trunc,
            };
            return Ok((Self::new_fh(&mut inner, h), Caching::Direct));
        }
        if let Some((h, caching)) = self.open_query_node(&mut inner, &node, write, trunc)? {
            return Ok((Self::new_fh(&mut inner, h), caching));
        }
        if write || trunc {
            self.check_writable(&node)?;
        }
        match &node {
            Node::Schema(db, t) if write || trunc => {
                let buf = if trunc {
                    Vec::new()
                } else {
                    self.schema_file_in(&inner, *db, t)
                        .map(|(b, _)| b)
                        .unwrap_or_default()
                };
                let h = Handle::VirtualEdit {
                    db: *db,
                    target: EditTarget::Schema(t.clone()),
                    buf,
                    dirty: trunc,
                };
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::Schema(db, t) => {
                let data = Arc::new(self.schema_file_in(&inner, *db, t)?.0);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
            Node::FrameTable(db, f, t) if write || trunc => {
                let buf = if trunc {
                    Vec::new()
                } else {
                    self.frame_content_in(&inner, *db, f, t)?.as_ref().clone()
                };
                let h = Handle::writer(*db, t, buf, None, trunc, Some(f.clone()), caller);
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::FrameTable(db, f, t) => {
                let data = self.frame_content_in(&inner, *db, f, t)?;
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
            Node::FrameCtl(db, f) if write || trunc => {
                let h = Handle::FrameCtl {
                    db: *db,
                    frame: f.clone(),
                    buf: Vec::new(),
                    caller,
                };
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::FrameCtl(db, f) => {
                let data = Arc::new(Self::frame_ctl_text_in(&inner, *db, f)?);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
            Node::Current(db, t) => {
                let pending = inner.pending_tables.contains(&(*db, t.clone()));
                let read_key = (caller.pid, *db, t.clone());
                let (seq, head) = if pending {
                    (0, Arc::new(Vec::new()))
                } else {
                    let table = self.table(*db, t)?;
                    self.check_head(&mut inner, *db, t, &table)?
                };
                if write {
                    let buf = if trunc {
                        Vec::new()
                    } else {
                        head.as_ref().clone()
                    };
                    // The writer's base: what this process last read (vim
                    // rewrites in place what it read at start); else the
                    // head the buffer starts from, or for O_TRUNC none (a
                    // blind write).
                    let base = inner
                        .last_read
                        .get(&read_key)
                        .copied()
                        .or((!trunc).then_some(seq));
                    let mut h = Handle::writer(*db, t, buf, base, trunc, None, caller);
                    if let Handle::CurrentWrite { append, .. } = &mut h {
                        *append = flags & libc::O_APPEND != 0 && !trunc;
                    }
                    Ok((Self::new_fh(&mut inner, h), Caching::Direct))
                } else if self.opts.passthrough && !pending {
                    drop(inner);
                    let table = self.table(*db, t)?;
                    let backing = table
                        .head_file()?
                        .filter(|(_, s)| *s == seq)
                        .map(|(f, _)| f);
                    let mut inner = lock(&self.inner);
                    Self::note_read(&mut inner, caller, *db, t, seq);
                    let h = Handle::CurrentRead {
                        data: head,
                        backing,
                    };
                    Ok((Self::new_fh(&mut inner, h), Caching::Passthrough))
                } else {
                    Self::note_read(&mut inner, caller, *db, t, seq);
                    // Direct I/O: the kernel's page cache would clamp reads to
                    // the size it was last told, which a concurrent commit can
                    // change in the middle of a read (a torn read, which a tool
                    // like sed would then save). Reads come from this handle's
                    // snapshot; `--passthrough` is the fast path.
                    let h = Handle::CurrentRead {
                        data: head,
                        backing: None,
                    };
                    Ok((Self::new_fh(&mut inner, h), Caching::Direct))
                }
            }
            Node::Scratch(..) => {
                let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
                if trunc {
                    s.data.set_len(0).map_err(scratch_io)?;
                    s.mtime = SystemTime::now();
                }
                Ok((
                    Self::new_fh(&mut inner, Handle::Scratch { ino }),
                    Caching::Default,
                ))
            }
            Node::VersionFile(db, t, seq) => {
                drop(inner);
                let data = Arc::new(self.table(*db, t)?.read_version(*seq)?);
                let mut inner = lock(&self.inner);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Keep,
                ))
            }
            Node::QueryFile(db, sql) => {
                drop(inner);
                let h = self.run_query(*db, sql, ResultFormat::Csv, caller)?;
                let mut inner = lock(&self.inner);
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::SavedResult(db, name, format) => {
                drop(inner);
                let h = self.run_saved(*db, name, *format, caller)?;
                let mut inner = lock(&self.inner);
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::AsOfFile(db, ts, t) => {
                drop(inner);
                let table = self.table(*db, t)?;
                let data = Arc::new(table.read_version(table.seq_at(*ts)?)?);
                // A past time never changes; a future one follows the head.
                let caching = if *ts < names::now_us() {
                    Caching::Keep
                } else {
                    Caching::Direct
                };
                let mut inner = lock(&self.inner);
                Ok((Self::new_fh(&mut inner, Handle::Virtual { data }), caching))
            }
            _ => {
                drop(inner);
                let data = Arc::new(self.generate(&node)?);
                let mut inner = lock(&self.inner);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
        }
    }

    /// Creates (and opens) a file in a table directory: a scratch file, or
    /// `current.csv` itself after it was renamed or unlinked away.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let r = self.create_named(parent, name, mode, flags, caller);
        self.explain_name(parent, name, r)
    }

    fn create_named(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        if let Node::QueryRoot(db) = pnode {
            return self.create_in_query(&mut inner, db, name, mode, flags, caller);
        }
        if let Node::Conflicts(db) = pnode {
            return self.create_in_conflicts(&mut inner, db, name, mode, flags, caller);
        }
        self.check_writable(&pnode)?;
        if let Node::FrameDir(db, f) = &pnode {
            return self.create_in_frame(&mut inner, *db, f, name, mode, flags, caller);
        }
        let Node::Table(db, t) = &pnode else {
            return Err(match pnode {
                Node::Root | Node::Db(_) => FsError::NotPermitted(
                    "only tables (directories) live here; files go inside a table directory",
                ),
                _ => FsError::NotDir,
            });
        };
        if !self.table_exists(&inner, *db, t) {
            return Err(FsError::NotFound);
        }
        if name.starts_with('@') {
            return Err(FsError::InvalidName("names starting with @ are reserved"));
        }
        let key = (*db, t.clone());
        if name == SCHEMA {
            if inner.pending_tables.contains(&key) {
                return Err(FsError::NotPermitted(
                    "save the table's current.csv before its schema",
                ));
            }
            let node = Node::Schema(*db, t.clone());
            if flags & libc::O_EXCL != 0 && self.schema_file_in(&inner, *db, t).is_ok() {
                return Err(FsError::Exists);
            }
            let h = Handle::VirtualEdit {
                db: *db,
                target: EditTarget::Schema(t.clone()),
                buf: Vec::new(),
                dirty: false,
            };
            let ino = inner.inodes.ino(&node);
            let fh = Self::new_fh(&mut inner, h);
            return Ok((
                self.file_attr(ino, 0, FILE_PERM, SystemTime::now()),
                fh,
                Caching::Direct,
            ));
        }
        if name == CURRENT {
            let replacing = Self::replacing_by(&inner, &key, caller.pid);
            if !replacing && flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            // A replacement (mv from another filesystem, vim backupcopy=no):
            // a blind write of the whole table.
            inner.replacing.remove(&key);
            let ino = inner.inodes.ino(&Node::Current(*db, t.clone()));
            // Not dirty until written: a create the kernel then refuses (or
            // that writes nothing) must not commit an empty table.
            let h = Handle::writer(*db, t, Vec::new(), None, false, None, caller);
            let fh = Self::new_fh(&mut inner, h);
            let attr = self.file_attr(ino, 0, FILE_PERM, SystemTime::now());
            return Ok((attr, fh, Caching::Direct));
        }
        self.create_scratch(&mut inner, *db, t, name, mode, flags, caller)
    }

    /// Creates (or opens, without O_EXCL) scratch file `name` in directory
    /// `dir` (a table, or a frame's `frame_dir_key`).
    #[allow(clippy::too_many_arguments)]
    fn create_scratch(
        &self,
        inner: &mut Inner,
        db: usize,
        dir: &str,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let node = Node::Scratch(db, dir.to_string(), name.to_string());
        if let Some(existing) = Self::scratch_ino(inner, db, dir, name) {
            if flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            let attr = self.attr_of(inner, existing, &node)?;
            let fh = Self::new_fh(inner, Handle::Scratch { ino: existing });
            return Ok((attr, fh, Caching::Default));
        }
        let file = Scratch {
            data: SpillBuf::new(&self.scratch_budget),
            symlink: None,
            perm: (mode & 0o7777) as u16,
            uid: caller.uid,
            gid: caller.gid,
            mtime: SystemTime::now(),
            mtime_set: false,
        };
        let ino = Self::add_scratch(inner, db, dir, name, file);
        let attr = self.attr_of(inner, ino, &node)?;
        let fh = Self::new_fh(inner, Handle::Scratch { ino });
        Ok((attr, fh, Caching::Default))
    }

    /// A file created in a frame directory: a table's file (staged when
    /// saved), `ctl`, or a scratch file.
    #[allow(clippy::too_many_arguments)]
    fn create_in_frame(
        &self,
        inner: &mut Inner,
        db: usize,
        frame: &str,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let tables = Self::frame_tables_in(inner, db, frame)?;
        let (node, h) = match name.strip_suffix(".csv") {
            _ if name == "ctl" => (
                Node::FrameCtl(db, frame.to_string()),
                Handle::FrameCtl {
                    db,
                    frame: frame.to_string(),
                    buf: Vec::new(),
                    caller,
                },
            ),
            Some(t) if tables.iter().any(|x| x == t) => (
                Node::FrameTable(db, frame.to_string(), t.to_string()),
                Handle::writer(
                    db,
                    t,
                    Vec::new(),
                    None,
                    false,
                    Some(frame.to_string()),
                    caller,
                ),
            ),
            _ => {
                let key = frame_dir_key(frame);
                return self.create_scratch(inner, db, &key, name, mode, flags, caller);
            }
        };
        if flags & libc::O_EXCL != 0 {
            return Err(FsError::Exists);
        }
        let ino = inner.inodes.ino(&node);
        let attr = self.file_attr(ino, 0, FILE_PERM, SystemTime::now());
        Ok((attr, Self::new_fh(inner, h), Caching::Direct))
    }

    /// The backing file of a passthrough read handle (taken once).
    pub fn take_backing_file(&self, fh: u64) -> Option<std::fs::File> {
        match lock(&self.inner).handles.get_mut(&fh) {
            Some(Handle::CurrentRead { backing, .. }) => backing.take(),
            _ => None,
        }
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let inner = lock(&self.inner);
        if let Some(Handle::Spilled { file }) = inner.handles.get(&fh) {
            let file = Arc::clone(file);
            drop(inner);
            return Self::read_spilled(&file, offset, size);
        }
        let bytes: &[u8] = match inner.handles.get(&fh).ok_or(FsError::BadHandle)? {
            Handle::CurrentRead { data, .. } | Handle::Virtual { data } => data,
            Handle::CurrentWrite { buf, .. }
            | Handle::VirtualEdit { buf, .. }
            | Handle::FrameCtl { buf, .. } => buf,
            Handle::Scratch { ino } => {
                let s = inner.scratch.get(ino).ok_or(FsError::NotFound)?;
                return s.data.read(offset, size).map_err(scratch_io);
            }
            Handle::Spilled { .. } | Handle::Dir { .. } => return Err(FsError::BadHandle),
        };
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(size as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    /// A read of a result in an anonymous file (outside the namespace lock).
    fn read_spilled(file: &std::fs::File, offset: u64, size: u32) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(FsError::Storage(StorageError::io(
                        "read a query result",
                        "(anonymous file)",
                        e,
                    )));
                }
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// A write by the process that opened the handle.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        self.write_as(fh, offset, data, None)
    }

    /// A write by `caller` (`None`: the process that opened the handle).
    pub fn write_as(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        caller: Option<Caller>,
    ) -> Result<u32> {
        let process = caller.map(|c| process_of(c.pid));
        let max = self.opts.max_file_bytes;
        let mut inner = lock(&self.inner);
        if let Some(Handle::CurrentWrite {
            writers, opener, ..
        }) = inner.handles.get_mut(&fh)
        {
            let p = process.unwrap_or(*opener);
            if !writers.contains(&p) {
                writers.push(p);
            }
        }
        if let Some(Handle::FrameCtl {
            db,
            frame,
            buf,
            caller,
        }) = inner.handles.get_mut(&fh)
        {
            // A command runs as soon as its line is complete, so the write
            // itself fails when it does (a shell's `echo commit > ctl`
            // never sees errors of close).
            buf.extend_from_slice(data);
            if buf.len() > 4096 {
                buf.clear();
                return Err(FsError::InvalidContent(
                    "ctl takes `commit` or `abort`".into(),
                ));
            }
            if buf.contains(&b'\n') {
                let command = String::from_utf8_lossy(&std::mem::take(buf)).into_owned();
                let (db, frame, caller) = (*db, frame.clone(), *caller);
                drop(inner);
                self.frame_command(db, &frame, &command, caller)?;
            }
            return Ok(data.len() as u32);
        }
        let end = offset.checked_add(data.len() as u64).filter(|&e| e <= max);
        if end.is_none() {
            if let Some(Handle::CurrentWrite { failed, .. }) = inner.handles.get_mut(&fh) {
                *failed = true;
            }
            return Err(FsError::TooBig(max));
        }
        let buf: &mut Vec<u8> = match inner.handles.get_mut(&fh).ok_or(FsError::BadHandle)? {
            Handle::CurrentWrite {
                buf, dirty, append, ..
            } => {
                *dirty = true;
                if *append {
                    // O_APPEND: at the end of this handle's file, whatever
                    // offset the kernel computed from a size another writer
                    // may have changed meanwhile (never a gap of zeros).
                    if buf.len() as u64 + data.len() as u64 > max {
                        return Err(FsError::TooBig(max));
                    }
                    buf.extend_from_slice(data);
                    return Ok(data.len() as u32);
                }
                buf
            }
            Handle::Scratch { ino } => {
                let ino = *ino;
                let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
                s.mtime = SystemTime::now();
                s.mtime_set = false;
                s.data.write(offset, data).map_err(scratch_io)?;
                return Ok(data.len() as u32);
            }
            Handle::VirtualEdit { buf, dirty, .. } => {
                *dirty = true;
                buf
            }
            _ => return Err(FsError::ReadOnly("opened for reading")),
        };
        let offset = offset as usize;
        if buf.len() < offset + data.len() {
            buf.resize(offset + data.len(), 0);
        }
        buf[offset..offset + data.len()].copy_from_slice(data);
        Ok(data.len() as u32)
    }

    /// A flush (every close sends one). It commits a handle that has
    /// written data since its last commit: close(2) waits for the flush but
    /// not for the release, so this is where `cp` and `>` learn that their
    /// content was refused, and where their commit is durable before close
    /// returns. A flush with nothing written (the early one of a shell `>`,
    /// sent before any data) commits nothing.
    pub fn flush(&self, fh: u64, caller: Caller) -> Result<()> {
        let process = process_of(caller.pid);
        let written = match lock(&self.inner)
            .handles
            .get_mut(&fh)
            .ok_or(FsError::BadHandle)?
        {
            // An empty buffer commits only at a second close: the first one
            // of a shell `>` comes before any data, the second of `: > f`
            // (nothing written) is the end of the save.
            Handle::CurrentWrite {
                dirty,
                flushes,
                truncated,
                opener,
                writers,
                closed,
                ..
            } => {
                *closed = true;
                if writers.contains(&process) {
                    *dirty
                } else if process == *opener {
                    // No data of the opener's own: the end of a save only at
                    // its second close (`: > f`) or after a truncate.
                    *flushes += 1;
                    *dirty && (*flushes > 1 || *truncated)
                } else {
                    // A child that inherited the descriptor and never wrote
                    // closes its copy: the save goes on.
                    false
                }
            }
            Handle::VirtualEdit { dirty, buf, .. } => *dirty && !buf.is_empty(),
            Handle::FrameCtl { buf, .. } => !buf.is_empty(),
            _ => false,
        };
        tracing::debug!(fh, pid = caller.pid, written, "flush");
        if written {
            self.commit_handle(fh, caller)
        } else {
            Ok(())
        }
    }

    /// fsync makes a save in progress durable and commits nothing: a save
    /// commits at its close (`flush`), so a program that fsyncs half-way
    /// through its writes (loggers, exporters) never commits half a table
    /// and never sees a refusal of content it has not finished. The bytes
    /// go to `unsaved/` (fsynced; an append handle's own bytes only): if the
    /// daemon dies before the close, the next mount puts them in
    /// `@rejected/`. Saved queries, schemas and conflict files are saved at
    /// their close too; their fsync returns at once.
    pub fn fsync(&self, fh: u64, _caller: Caller) -> Result<()> {
        let (db, name, bytes) = {
            let mut inner = lock(&self.inner);
            match inner.handles.get_mut(&fh).ok_or(FsError::BadHandle)? {
                Handle::CurrentWrite {
                    db,
                    table,
                    buf,
                    dirty: true,
                    append,
                    appended_from,
                    unsaved,
                    frame,
                    ..
                } => {
                    let stem = match frame {
                        Some(f) => format!("frame-{f}-{table}"),
                        None => table.clone(),
                    };
                    let name = unsaved
                        .get_or_insert_with(|| kept::new_unsaved_name(&stem, "csv"))
                        .clone();
                    let bytes = if *append {
                        buf[*appended_from..].to_vec()
                    } else {
                        buf.clone()
                    };
                    (*db, name, bytes)
                }
                _ => return Ok(()),
            }
        };
        self.dbs[db].db.save_unsaved(&name, &bytes)?;
        Ok(())
    }

    /// Removes the durable copy an fsync made of a save, once the save is
    /// committed or refused with its bytes kept; after a failure of the
    /// store it stays, for the next mount to put in `@rejected/`.
    fn drop_unsaved<T>(&self, db: usize, unsaved: Option<String>, result: &Result<T>) {
        let settled = matches!(
            result,
            Ok(_) | Err(FsError::InvalidContent(_) | FsError::Stale(_))
        );
        if let (Some(name), true) = (unsaved, settled)
            && let Err(e) = self.dbs[db].db.remove_unsaved(&name)
        {
            tracing::warn!(name, error = %e.report(), "could not remove an unsaved copy");
        }
    }

    /// The last close of a handle: commits it when it was written.
    pub fn release(&self, fh: u64, caller: Caller) -> Result<()> {
        // A writer that no program ever closed (no flush) was never really
        // open: with passthrough the kernel fails the open (EIO) after we
        // accepted it, when a reader holds the file. Its O_TRUNC must not
        // empty the table: a failed save changes nothing.
        let never_closed = matches!(
            lock(&self.inner).handles.get(&fh),
            Some(Handle::CurrentWrite { closed: false, .. })
        );
        let result = if never_closed {
            Ok(())
        } else {
            self.commit_handle(fh, caller)
        };
        let mut inner = lock(&self.inner);
        let released = inner.handles.remove(&fh);
        if let Some(Handle::Scratch { ino }) = released {
            let open = inner
                .handles
                .values()
                .any(|h| matches!(h, Handle::Scratch { ino: i } if *i == ino));
            if !open && !inner.inodes.is_named(ino) {
                inner.scratch.remove(&ino);
                inner.inodes.forget(ino);
            }
        }
        result
    }

    fn commit_handle(&self, fh: u64, caller: Caller) -> Result<()> {
        let (db, table, save, unsaved, mtime) = {
            let mut inner = lock(&self.inner);
            match inner.handles.get_mut(&fh).ok_or(FsError::BadHandle)? {
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::Schema(table),
                    buf,
                    dirty,
                } if *dirty => {
                    // An emptied schema is a valid one (no declared types).
                    *dirty = false;
                    let (db, table, text) = (*db, table.clone(), buf.clone());
                    drop(inner);
                    return self.save_schema(db, &table, &text);
                }
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::SavedQuery(name),
                    buf,
                    dirty,
                } if *dirty && !buf.is_empty() => {
                    *dirty = false;
                    let (db, name, text) = (*db, name.clone(), buf.clone());
                    drop(inner);
                    return self.save_query(db, &name, &text);
                }
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::Conflict(id),
                    buf,
                    dirty,
                } if *dirty && !buf.is_empty() => {
                    *dirty = false;
                    let (db, id, edited) = (*db, id.clone(), buf.clone());
                    drop(inner);
                    return self.resolve_conflict_edit(db, &id, &edited, caller);
                }
                Handle::FrameCtl { db, frame, buf, .. } if !buf.is_empty() => {
                    let (db, frame) = (*db, frame.clone());
                    let command = String::from_utf8_lossy(&std::mem::take(buf)).into_owned();
                    drop(inner);
                    return self.frame_command(db, &frame, &command, caller);
                }
                Handle::CurrentWrite { failed: true, .. } => {
                    return Err(FsError::TooBig(self.opts.max_file_bytes));
                }
                Handle::CurrentWrite {
                    db,
                    table,
                    buf,
                    dirty,
                    unsaved,
                    frame: Some(frame),
                    ..
                } if *dirty => {
                    *dirty = false;
                    let (db, table, frame, content, unsaved) = (
                        *db,
                        table.clone(),
                        frame.clone(),
                        buf.clone(),
                        unsaved.take(),
                    );
                    drop(inner);
                    let result = self.stage(db, &frame, &table, content);
                    self.drop_unsaved(db, unsaved, &result);
                    return result;
                }
                Handle::CurrentWrite {
                    db,
                    table,
                    buf,
                    base,
                    dirty,
                    append,
                    appended_from,
                    unsaved,
                    mtime,
                    ..
                } if *dirty => {
                    *dirty = false;
                    let save = if *append {
                        Save::Append(buf[*appended_from..].to_vec())
                    } else {
                        Save::Whole {
                            content: buf.clone(),
                            base: *base,
                        }
                    };
                    (*db, table.clone(), save, unsaved.take(), mtime.take())
                }
                _ => return Ok(()),
            }
        };
        let base = match &save {
            Save::Whole { base, .. } => *base,
            Save::Append(_) => None,
        };
        let result = self.commit(db, &table, save, Action::Update, caller);
        tracing::debug!(
            fh,
            pid = caller.pid,
            ?base,
            ok = result.is_ok(),
            "commit of a handle"
        );
        let mut inner = lock(&self.inner);
        if let Some(Handle::CurrentWrite {
            base: b,
            dirty,
            buf,
            appended_from,
            writers,
            ..
        }) = inner.handles.get_mut(&fh)
        {
            match &result {
                // Later writes through this handle build on what it
                // committed (and append after what it appended).
                Ok(seq) => {
                    *b = Some(*seq);
                    *appended_from = buf.len();
                    writers.clear();
                }
                // The caller was told and the bytes are kept (@rejected/):
                // the release must not commit behind the caller's back what
                // it reported as failed.
                Err(_) => *dirty = false,
            }
        }
        if let (Ok(seq), Some(m)) = (&result, mtime) {
            let set = self.set_saved_attrs(&mut inner, db, attrs_key(&table, Some(CURRENT)), |p| {
                p.mtime_ns = Some(time_ns(m));
                p.seq = Some(*seq);
            });
            if let Err(e) = set {
                tracing::warn!(table, error = %e, "could not keep a modification time");
            }
        }
        drop(inner);
        self.drop_unsaved(db, unsaved, &result);
        result.map(|_| ())
    }

    /// Remembers that `caller` read (or wrote) version `seq` of a table.
    fn note_read(inner: &mut Inner, caller: Caller, db: usize, table: &str, seq: u64) {
        if inner.last_read.len() > 4096 {
            inner.last_read.clear();
        }
        inner
            .last_read
            .insert((caller.pid, db, table.to_string()), seq);
    }

    /// Commits a save of table `table`: the whole content, merged with
    /// commits made since its base (none: a blind write against the head),
    /// or bytes appended to the head as it is at the commit. Runs outside
    /// the namespace lock. Returns the head's sequence number.
    fn commit(
        &self,
        db: usize,
        table: &str,
        save: Save,
        action: Action,
        caller: Caller,
    ) -> Result<u64> {
        let user = user_name(caller.uid);
        let opts = CommitOptions::new(action, &user);
        let mdb = &self.dbs[db];
        let pending = lock(&self.inner)
            .pending_tables
            .contains(&(db, table.to_string()));
        // What a refused save keeps: the content, or the appended bytes.
        let (content, base) = match &save {
            Save::Whole { content, base } => (content.as_slice(), *base),
            Save::Append(bytes) => (bytes.as_slice(), None),
        };
        let outcome = (|| -> std::result::Result<_, MergeError> {
            if pending {
                return Ok(mdb.db.create_table(table, content, &user)?);
            }
            let t = mdb.db.table(table)?;
            if t.is_dropped()? {
                return Err(MergeError::Storage(StorageError::NotFound {
                    kind: "table",
                    name: table.to_string(),
                }));
            }
            let Some(b) = base else {
                return Ok(match &save {
                    Save::Append(bytes) => append_to_head(&t, bytes, &opts)?,
                    Save::Whole { content, .. } => t.commit(Base::Head, content.clone(), &opts)?,
                });
            };
            let cfg = mdb.db.config();
            let outcome = merge::commit_merging(
                &t,
                b,
                content.to_vec(),
                &opts,
                cfg.conflict_policy,
                cfg.delimiter_byte(),
            )?;
            Ok(match outcome {
                Outcome::Clean(c) => c,
                Outcome::Merged {
                    committed,
                    conflicts,
                } => {
                    for c in conflicts {
                        self.status[db].push(Event::Overwritten {
                            table: table.to_string(),
                            conflict: c,
                        });
                    }
                    committed
                }
            })
        })();
        let ino = lock(&self.inner)
            .inodes
            .ino(&Node::Current(db, table.to_string()));
        match outcome {
            Ok(c) => {
                let mut inner = lock(&self.inner);
                if pending {
                    inner.pending_tables.remove(&(db, table.to_string()));
                }
                inner.seen.insert((db, table.to_string()), c.version.seq);
                Self::note_read(&mut inner, caller, db, table, c.version.seq);
                drop(inner);
                if c.created {
                    self.status[db].push(Event::Commit {
                        table: table.to_string(),
                        version: c.version.clone(),
                    });
                    self.invalidate(ino);
                }
                Ok(c.version.seq)
            }
            Err(e) => {
                let message = StorageError::chain(&e);
                let kept = match &e {
                    MergeError::Storage(
                        StorageError::Csv(_) | StorageError::BaseMismatch { .. },
                    )
                    | MergeError::Csv { .. } => self.keep_rejected(db, table, "csv", content),
                    MergeError::Conflicts { conflicts, head } => merge::conflicts::record(
                        &mdb.db,
                        table,
                        base.unwrap_or(0),
                        *head,
                        content,
                        conflicts,
                    )
                    .map(|id| format!("@conflicts/{id}.csv"))
                    .map_err(|x| {
                        let x = StorageError::chain(&x);
                        tracing::error!(table, error = %x, "could not record a conflict");
                    })
                    .ok(),
                    // The backing store failed (ENOSPC, EIO): keep the bytes
                    // where the user can copy them elsewhere.
                    _ => self.keep_unsaved(db, table, content),
                };
                self.status[db].push(Event::Rejected {
                    table: table.to_string(),
                    reason: message.clone(),
                    kept: kept.clone(),
                });
                tracing::warn!(db = %mdb.name, table, reason = %message, kept = ?kept, "write not committed");
                Err(e.into())
            }
        }
    }

    /// Keeps bytes the backing store could not take as a scratch file
    /// `<table>/current.csv.unsaved-<time>`; returns its path in the mount.
    fn keep_unsaved(&self, db: usize, table: &str, content: &[u8]) -> Option<String> {
        if let Some(name) = self.keep_rejected(db, table, "unsaved.csv", content) {
            return Some(format!("@rejected/{name}"));
        }
        // The store cannot take even that (a full disk): a scratch file in
        // the table's directory, in memory or spilled, until unmount.
        let name = format!("{CURRENT}.unsaved-{}", names::format_ts(names::now_us()));
        match self.owned_scratch(content, 0o600) {
            Ok(file) => {
                Self::add_scratch(&mut lock(&self.inner), db, table, &name, file);
                Some(format!("{table}/{name}"))
            }
            Err(e) => {
                tracing::error!(table, error = %StorageError::chain(&e), "the bytes of a failed save could not be kept");
                None
            }
        }
    }

    /// Saves a file kept as revisions (a saved query, a schema): `check`
    /// first; a refused text fails with EINVAL, says why in `@status` under
    /// `file`, and is kept as `@rejected/<stem>-<time>.<ext>`. A failure to
    /// store it (I/O, disk full) is that error, not a refusal.
    fn save_revision(
        &self,
        db: usize,
        file: String,
        (stem, ext): (&str, &str),
        text: &[u8],
        check: impl FnOnce(&str) -> std::result::Result<(), String>,
        store: impl FnOnce(&str) -> Result<String>,
    ) -> Result<()> {
        let checked = std::str::from_utf8(text)
            .map_err(|_| format!("{file} must be UTF-8 text"))
            .and_then(|t| check(t).map(|()| t));
        let t = match checked {
            Ok(t) => t,
            Err(reason) => {
                let kept = self.keep_rejected(db, stem, ext, text);
                self.status[db].push(Event::Rejected {
                    table: file,
                    reason: reason.clone(),
                    kept,
                });
                return Err(FsError::InvalidContent(reason));
            }
        };
        let version = store(t)?;
        self.status[db].push(Event::Saved { file, version });
        Ok(())
    }

    /// Saves rejected bytes under `<db root>/rejected/` (shown as
    /// `@rejected/`) as `<stem>-<time>.<ext>`; returns the file name.
    fn keep_rejected(&self, db: usize, stem: &str, ext: &str, content: &[u8]) -> Option<String> {
        match self.dbs[db].db.keep_rejected(stem, ext, content) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::error!(stem, error = %e.report(), "could not keep refused bytes");
                None
            }
        }
    }

    /// Content of generated files.
    fn generate(&self, node: &Node) -> Result<Vec<u8>> {
        match node {
            Node::Status(db) => {
                let mut text = self.status[*db].render(&self.dbs[*db].name);
                for note in self.dbs[*db].db.recovery_notes() {
                    text.push_str(&note);
                    text.push('\n');
                }
                Ok(text.into_bytes())
            }
            Node::VersionLog(db, t) => {
                let d = self.dbs[*db].db.config().delimiter;
                let mut out =
                    format!("seq{d}name{d}time{d}action{d}user{d}rows{d}size{d}hash{d}frame\n");
                for v in self.table(*db, t)?.versions()? {
                    out.push_str(&format!(
                        "{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}\n",
                        v.seq,
                        v.name,
                        names::format_ts_human(v.ts_us),
                        v.action,
                        v.user,
                        v.rows,
                        v.size,
                        v.hash,
                        v.frame.unwrap_or_default()
                    ));
                }
                Ok(out.into_bytes())
            }
            Node::ConflictFile(db, name) => {
                let id = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                Ok(merge::conflicts::cells(&self.dbs[*db].db, id)?)
            }
            Node::RejectedFile(db, name) => {
                self.dbs[*db].db.read_rejected(name).map_err(|e| match e {
                    StorageError::NotFound { .. } => FsError::NotFound,
                    e => FsError::Storage(e),
                })
            }
            _ => Err(FsError::NotFound),
        }
    }

    /// Changes attributes. Sizes cut or extend (a truncate through a
    /// write handle goes to that handle and commits at its close). Modes and
    /// times of the database's and tables' directories and of `current.csv`
    /// are kept (`storage::attrs`); an owner other than the mount's cannot
    /// be kept and fails with EPERM; virtual files take only what they
    /// already have (editors restore the mode they read).
    pub fn setattr(&self, ino: u64, fh: Option<u64>, set: SetAttr) -> Result<Attr> {
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if let Some(size) = set.size {
            let edited = matches!(
                node,
                Node::ConflictFile(..) | Node::SavedQuery(..) | Node::Schema(..)
            );
            if edited || node.is_virtual() || self.opts.read_only {
                self.truncate_virtual(&mut inner, &node, fh, size)?;
            } else {
                drop(inner);
                self.truncate(ino, &node, fh, size)?;
                inner = lock(&self.inner);
            }
        }
        let changes = set.mode.is_some() || set.uid.is_some() || set.gid.is_some();
        if !changes && set.mtime.is_none() {
            return self.getattr_locked(&mut inner, ino, &node, fh);
        }
        if let Node::Scratch(..) = node {
            let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
            if let Some(m) = set.mode {
                s.perm = (m & 0o7777) as u16;
            }
            if let Some(u) = set.uid {
                s.uid = u;
            }
            if let Some(g) = set.gid {
                s.gid = g;
            }
            // chmod and chown change the ctime, never the mtime (rsync sets
            // the time, then the mode).
            if let Some(t) = set.mtime {
                s.mtime = t;
                s.mtime_set = true;
            }
            return self.attr_of(&mut inner, ino, &node);
        }
        let shown = self.attr_of(&mut inner, ino, &node)?;
        if set.uid.is_some_and(|u| u != shown.uid) || set.gid.is_some_and(|g| g != shown.gid) {
            return Err(FsError::NotPermitted(
                "files of the mount belong to the mount's owner",
            ));
        }
        let key = match &node {
            Node::Db(_) => Some(String::new()),
            Node::Table(_, t) => Some(attrs_key(t, None)),
            Node::Current(_, t) => Some(attrs_key(t, Some(CURRENT))),
            _ => None,
        };
        let (Some(key), false) = (key, self.opts.read_only) else {
            // Nothing to keep them in: only what the file already has.
            let same_mode = set.mode.is_none_or(|m| (m & 0o7777) as u16 == shown.perm);
            if !same_mode || set.mtime.is_some_and(|t| t != shown.mtime) {
                return Err(if self.opts.read_only {
                    FsError::ReadOnly("mounted read-only")
                } else {
                    FsError::NotPermitted("the mode and time of this file are fixed")
                });
            }
            return Ok(shown);
        };
        let db = match &node {
            Node::Db(db) | Node::Table(db, _) | Node::Current(db, _) => *db,
            _ => return Err(FsError::NotFound),
        };
        // A time set on a file being written, before its data committed
        // (`cp -a` calls futimens, which comes without the handle, between
        // its last write and its close), belongs to the version that commit
        // makes.
        let mut pending_mtime = false;
        if let (Node::Current(db, t), Some(when)) = (&node, set.mtime) {
            for h in inner.handles.values_mut() {
                if let Handle::CurrentWrite {
                    db: d,
                    table,
                    dirty: true,
                    mtime,
                    frame: None,
                    ..
                } = h
                    && (*d, table.as_str()) == (*db, t.as_str())
                {
                    *mtime = Some(when);
                    pending_mtime = true;
                }
            }
        }
        let head_seq = match &node {
            Node::Current(db, t) if !pending_mtime && set.mtime.is_some() => {
                Some(self.table(*db, t)?.head()?.0)
            }
            _ => None,
        };
        self.set_saved_attrs(&mut inner, db, key, |p| {
            if let Some(m) = set.mode {
                p.mode = Some(m & 0o7777);
            }
            if let (Some(t), false) = (set.mtime, pending_mtime) {
                p.mtime_ns = Some(time_ns(t));
                p.seq = head_seq;
            }
        })?;
        self.getattr_locked(&mut inner, ino, &node, fh)
    }

    /// `getattr` under the namespace lock.
    fn getattr_locked(
        &self,
        inner: &mut Inner,
        ino: u64,
        node: &Node,
        fh: Option<u64>,
    ) -> Result<Attr> {
        let mut attr = self.attr_of(inner, ino, node)?;
        if let Some(len) = fh
            .and_then(|f| inner.handles.get(&f))
            .and_then(Handle::written_len)
        {
            attr.size = len;
        }
        Ok(attr)
    }

    /// A truncate of an editable virtual file through its write handle
    /// (`>` on a conflict file, a saved query, a schema); other virtual
    /// files are read-only.
    fn truncate_virtual(
        &self,
        inner: &mut Inner,
        node: &Node,
        fh: Option<u64>,
        size: u64,
    ) -> Result<()> {
        if let (Node::ConflictFile(..) | Node::SavedQuery(..) | Node::Schema(..), Some(f)) =
            (node, fh)
            && let Some(Handle::VirtualEdit { buf, dirty, .. }) = inner.handles.get_mut(&f)
        {
            buf.resize(size.min(self.opts.max_file_bytes) as usize, 0);
            *dirty = true;
            return Ok(());
        }
        self.check_writable(node)
    }

    /// A truncate of a table's file or a scratch file. Through a write
    /// handle (ftruncate, `truncate -s`) it goes to that handle, and its
    /// close commits; a path truncate(2) with no writer open commits now.
    fn truncate(&self, ino: u64, node: &Node, fh: Option<u64>, size: u64) -> Result<()> {
        if size > self.opts.max_file_bytes {
            return Err(FsError::TooBig(self.opts.max_file_bytes));
        }
        let mut inner = lock(&self.inner);
        let writer = fh.and_then(|f| match inner.handles.get_mut(&f) {
            Some(h @ Handle::CurrentWrite { .. }) => Some(h),
            _ => None,
        });
        match (node, writer) {
            (
                Node::Current(..) | Node::FrameTable(..),
                Some(Handle::CurrentWrite {
                    buf,
                    dirty,
                    truncated,
                    append,
                    ..
                }),
            ) => {
                buf.resize(size as usize, 0);
                *dirty = true;
                *truncated = true;
                // Cut, the handle's file is what it holds: a whole save.
                *append = false;
                Ok(())
            }
            (Node::Current(db, t), _) => {
                drop(inner);
                let content = if size == 0 {
                    Vec::new()
                } else {
                    let (_, head) = self.table(*db, t)?.head()?;
                    let mut h = head.as_ref().clone();
                    h.resize(size as usize, 0);
                    h
                };
                let save = Save::Whole {
                    content,
                    base: None,
                };
                self.commit(*db, t, save, Action::Update, self.owner)
                    .map(|_| ())
            }
            (Node::FrameTable(..), _) => Err(FsError::NotPermitted(
                "truncate a frame's file through an open handle (>)",
            )),
            (Node::Scratch(..), _) => {
                let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
                s.data.set_len(size).map_err(scratch_io)?;
                s.mtime = SystemTime::now();
                Ok(())
            }
            (n, _) if n.is_dir() => Err(FsError::IsDir),
            _ => Err(FsError::NotPermitted("this file cannot be truncated")),
        }
    }

    /// mkdir in a database directory makes a new table (it exists once its
    /// `current.csv` is written).
    pub fn mkdir(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        let r = self.mkdir_named(parent, name);
        self.explain_name(parent, name, r)
    }

    /// A refused name of a call that makes or moves a file: the caller sees
    /// only EINVAL or ENAMETOOLONG, so the reason, with the name, goes to
    /// `@status` and the log as well.
    fn explain_name<T>(&self, parent: u64, name: &OsStr, r: Result<T>) -> Result<T> {
        if let Err(e @ (FsError::InvalidName(_) | FsError::NameTooLong)) = &r {
            let shown = name.to_string_lossy();
            let db = {
                let inner = lock(&self.inner);
                self.node(&inner, parent).ok().and_then(|n| n.db())
            };
            tracing::info!(name = %shown, error = %e, "refused a name");
            if let Some(db) = db {
                self.status[db].push(Event::Rejected {
                    table: "(a name)".into(),
                    reason: format!("{shown:?}: {e}"),
                    kept: None,
                });
            }
        }
        r
    }

    fn mkdir_named(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        if let Node::FramesRoot(db) = pnode {
            drop(inner);
            self.begin_frame(db, name)?;
            let node = Node::FrameDir(db, name.to_string());
            let mut inner = lock(&self.inner);
            let ino = inner.inodes.ino(&node);
            return self.attr_of(&mut inner, ino, &node);
        }
        let Node::Db(db) = pnode else {
            return Err(FsError::NotPermitted(
                "directories can only be made in a database directory (one per table)",
            ));
        };
        names::validate(name).map_err(|e| match e {
            StorageError::InvalidName { reason, .. } => FsError::InvalidName(reason),
            _ => FsError::InvalidName("table names use letters, digits, '_' and '-'"),
        })?;
        if self.table_exists(&inner, db, name) {
            return Err(FsError::Exists);
        }
        inner.pending_tables.insert((db, name.to_string()));
        let node = Node::Table(db, name.to_string());
        let ino = inner.inodes.ino(&node);
        self.attr_of(&mut inner, ino, &node)
    }

    pub fn unlink(&self, parent: u64, name: &OsStr, caller: Caller) -> Result<()> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        if let Node::QueryRoot(db) = pnode {
            return self.unlink_in_query(inner, db, name);
        }
        if let Node::Conflicts(db) = pnode {
            return self.unlink_in_conflicts(inner, db, name);
        }
        self.check_writable(&pnode)?;
        if let Node::FrameDir(db, f) = &pnode {
            let key = frame_dir_key(f);
            if inner
                .dirs
                .get(&(*db, key.clone()))
                .is_some_and(|d| d.contains_key(name))
            {
                Self::drop_scratch_name(&mut inner, *db, &key, name);
                return Ok(());
            }
            drop(inner);
            return match name.strip_suffix(".csv") {
                Some(t) => self.unstage(*db, f, t),
                None if name == "ctl" => {
                    Err(FsError::NotPermitted("ctl stays while the frame does"))
                }
                None => Err(FsError::NotFound),
            };
        }
        let Node::Table(db, t) = &pnode else {
            return Err(if pnode.is_dir() {
                FsError::NotPermitted("not a file")
            } else {
                FsError::NotDir
            });
        };
        let key = (*db, t.clone());
        if name == SCHEMA {
            drop(inner);
            return self.delete_schema(*db, t);
        }
        if name == CURRENT {
            // An unlink followed by a create is a replacement (mv across
            // file systems), never a drop: the table and its head stay, and
            // only this process sees the name gone until it creates the new
            // file (`rdb table:drop` drops a table).
            if Self::replacing_by(&inner, &key, caller.pid) {
                return Err(FsError::NotFound);
            }
            inner
                .replacing
                .insert(key, (caller.pid, std::time::Instant::now()));
            return Ok(());
        }
        if !inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
            return Err(FsError::NotFound);
        }
        Self::drop_scratch_name(&mut inner, *db, t, name);
        Ok(())
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        if let Node::FramesRoot(db) = pnode {
            drop(inner);
            return self.remove_frame(db, name);
        }
        let Node::Db(db) = pnode else {
            return Err(FsError::NotPermitted("no directories here"));
        };
        let key = (db, name.to_string());
        if inner.pending_tables.contains(&key) {
            if inner.dirs.get(&key).is_some_and(|d| !d.is_empty()) {
                return Err(FsError::NotEmpty);
            }
            inner.pending_tables.remove(&key);
            return Ok(());
        }
        if self.table(db, name).is_ok() {
            return Err(FsError::NotPermitted(
                "tables are dropped with `rdb table:drop`, not rmdir",
            ));
        }
        Err(FsError::NotFound)
    }

    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        caller: Caller,
    ) -> Result<Attr> {
        let r = self.symlink_named(parent, name, target, caller);
        self.explain_name(parent, name, r)
    }

    fn symlink_named(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        caller: Caller,
    ) -> Result<Attr> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        let Node::Table(db, t) = &pnode else {
            return Err(FsError::NotPermitted(
                "symlinks only inside table directories",
            ));
        };
        if name == CURRENT || name.starts_with('@') {
            return Err(FsError::Exists);
        }
        let key = (*db, t.clone());
        if inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
            return Err(FsError::Exists);
        }
        let file = Scratch {
            data: SpillBuf::new(&self.scratch_budget),
            symlink: Some(target.to_vec()),
            perm: 0o777,
            uid: caller.uid,
            gid: caller.gid,
            mtime: SystemTime::now(),
            mtime_set: false,
        };
        let ino = Self::add_scratch(&mut inner, *db, t, name, file);
        self.attr_of(
            &mut inner,
            ino,
            &Node::Scratch(*db, t.clone(), name.to_string()),
        )
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let inner = lock(&self.inner);
        inner
            .scratch
            .get(&ino)
            .and_then(|s| s.symlink.clone())
            .ok_or(FsError::InvalidName("not a symlink"))
    }

    /// Renames within one table directory. Onto `current.csv`: commits the
    /// file's content (sed -i, rsync, atomic-save editors); the call fails,
    /// and the file stays, when the content is refused. From `current.csv`:
    /// the head becomes a scratch file and the table waits for a new
    /// `current.csv` (vim's backupcopy=no, emacs).
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
        caller: Caller,
    ) -> Result<()> {
        let r = self.rename_named(parent, name, newparent, newname, noreplace, caller);
        self.explain_name(newparent, newname, r)
    }

    fn rename_named(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
        caller: Caller,
    ) -> Result<()> {
        let (name, newname) = (name_str(name)?, name_str(newname)?);
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        let npnode = self.node(&inner, newparent)?;
        match (&pnode, &npnode) {
            (Node::QueryRoot(a), Node::QueryRoot(b)) if a == b => {
                let db = *a;
                return self.rename_in_query(inner, db, name, newname, noreplace);
            }
            (Node::QueryRoot(_), _) | (_, Node::QueryRoot(_)) => return Err(FsError::CrossDir),
            (Node::Conflicts(a), Node::Conflicts(b)) if a == b => {
                let db = *a;
                return self.rename_in_conflicts(inner, db, name, newname, caller);
            }
            (Node::Conflicts(_), _) | (_, Node::Conflicts(_)) => return Err(FsError::CrossDir),
            _ => {}
        }
        self.check_writable(&pnode)?;
        self.check_writable(&npnode)?;
        if let (Node::FrameDir(db, f), Node::FrameDir(db2, f2)) = (&pnode, &npnode) {
            if (db, f) != (db2, f2) {
                return Err(FsError::CrossDir);
            }
            let key = (*db, frame_dir_key(f));
            if !inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
                return Err(FsError::NotPermitted(
                    "only scratch files move inside a frame; save onto <table>.csv to stage",
                ));
            }
            let target = newname
                .strip_suffix(".csv")
                .filter(|t| inner_frame_has(&Self::frame_tables_in(&inner, *db, f), t));
            if let Some(t) = target {
                // sed -i, rsync, atomic saves: the file's content is staged.
                return self.save_scratch_onto(inner, *db, &key.1, name, |content| {
                    self.stage(*db, f, t, content)
                });
            }
            if newname == "ctl" {
                return Err(FsError::NotPermitted("ctl is written, not replaced"));
            }
            return self.move_scratch(&mut inner, *db, &key.1, name, newname);
        }
        let (Node::Table(db, t), Node::Table(db2, t2)) = (&pnode, &npnode) else {
            return Err(FsError::NotPermitted(
                "only files inside table directories can be renamed",
            ));
        };
        if (db, t) != (db2, t2) {
            return Err(FsError::CrossDir);
        }
        if newname.starts_with('@') {
            return Err(FsError::InvalidName("names starting with @ are reserved"));
        }
        let key = (*db, t.clone());
        let exists = |inner: &Inner, n: &str| {
            if n == CURRENT {
                !Self::replacing_by(inner, &key, caller.pid)
            } else if n == SCHEMA {
                self.schema_in(inner, *db, t).unwrap_or(false)
            } else {
                inner.dirs.get(&key).is_some_and(|d| d.contains_key(n))
            }
        };
        if !exists(&inner, name) {
            return Err(FsError::NotFound);
        }
        if name == newname {
            return Ok(());
        }
        if noreplace && exists(&inner, newname) {
            return Err(FsError::Exists);
        }
        if newname == SCHEMA || name == SCHEMA {
            return self.rename_schema(inner, *db, t, name, newname);
        }
        if newname == CURRENT {
            // sed -i, rsync, editors' atomic saves: the base is what this
            // process read; nothing read means a blind write.
            let base = inner.last_read.get(&(caller.pid, *db, t.clone())).copied();
            // The file brings its mode and a time set on it along (rsync
            // and cp -a set them on their temp file, sed -i copies the
            // original's mode); nothing new, nothing written.
            let shown = inner.attrs[*db]
                .paths
                .get(&attrs_key(t, Some(CURRENT)))
                .and_then(|p| p.mode)
                .map_or(FILE_PERM, |m| m as u16);
            let meta = Self::scratch_ino(&inner, *db, t, name)
                .and_then(|i| inner.scratch.get(&i))
                .map(|s| {
                    (
                        (s.perm != shown).then_some(s.perm),
                        s.mtime_set.then_some(s.mtime),
                    )
                });
            let mut committed = None;
            self.save_scratch_onto(inner, *db, t, name, |content| {
                let save = Save::Whole { content, base };
                committed = Some(self.commit(*db, t, save, Action::Update, caller)?);
                Ok(())
            })?;
            let mut inner = lock(&self.inner);
            inner.replacing.remove(&key);
            if let (Some(seq), Some((perm, mtime))) = (committed, meta)
                && (perm.is_some() || mtime.is_some())
            {
                self.set_saved_attrs(&mut inner, *db, attrs_key(t, Some(CURRENT)), |p| {
                    if let Some(perm) = perm {
                        p.mode = Some(u32::from(perm));
                    }
                    if let Some(mtime) = mtime {
                        p.mtime_ns = Some(time_ns(mtime));
                        p.seq = Some(seq);
                    }
                })?;
            }
            return Ok(());
        }
        if name == CURRENT {
            // The head moves to a scratch file.
            let (_, head) = match self.table(*db, t) {
                Ok(table) => table.head()?,
                Err(_) => (0, Arc::new(Vec::new())),
            };
            let file = self.owned_scratch(&head, FILE_PERM)?;
            Self::add_scratch(&mut inner, *db, t, newname, file);
            // Hidden from this process until it creates the new file; the
            // table and its head stay for everyone else.
            inner
                .replacing
                .insert(key, (caller.pid, std::time::Instant::now()));
            return Ok(());
        }
        self.move_scratch(&mut inner, *db, t, name, newname)
    }

    /// A rename of scratch file `name` of directory `dir` onto a name that
    /// saves (`current.csv`, a frame's table, a schema, a saved query): the
    /// way `sed -i`, rsync and atomic saves write. `save` gets the file's
    /// bytes outside the namespace lock; once it succeeds the scratch name
    /// goes (unless another file took it meanwhile).
    fn save_scratch_onto(
        &self,
        inner: MutexGuard<'_, Inner>,
        db: usize,
        dir: &str,
        name: &str,
        save: impl FnOnce(Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let sino = Self::scratch_ino(&inner, db, dir, name).ok_or(FsError::NotFound)?;
        let s = inner.scratch.get(&sino).ok_or(FsError::NotFound)?;
        if s.symlink.is_some() {
            // Never followed: its target may be any file of the machine.
            let reason = format!("{name} is a symlink: only a regular file's content can be saved");
            self.status[db].push(Event::Rejected {
                table: dir.to_string(),
                reason,
                kept: None,
            });
            return Err(FsError::NotPermitted(
                "a symlink cannot become a table or a saved file",
            ));
        }
        let content = s.data.to_vec().map_err(scratch_io)?;
        drop(inner);
        save(content)?;
        let mut inner = lock(&self.inner);
        if Self::scratch_ino(&inner, db, dir, name) == Some(sino) {
            Self::drop_scratch_name(&mut inner, db, dir, name);
        }
        Ok(())
    }

    /// The inode of scratch file `name` in directory `dir` (a table, a
    /// frame's or `@query`'s key), if there is one.
    fn scratch_ino(inner: &Inner, db: usize, dir: &str, name: &str) -> Option<u64> {
        inner
            .dirs
            .get(&(db, dir.to_string()))
            .and_then(|d| d.get(name))
            .copied()
    }

    /// Scratch to scratch in directory `dir`: same inode, new name.
    fn move_scratch(
        &self,
        inner: &mut Inner,
        db: usize,
        dir: &str,
        name: &str,
        newname: &str,
    ) -> Result<()> {
        let key = (db, dir.to_string());
        Self::drop_scratch_name(inner, db, dir, newname);
        let ino = inner
            .dirs
            .get_mut(&key)
            .and_then(|d| d.remove(name))
            .ok_or(FsError::NotFound)?;
        inner
            .dirs
            .entry(key)
            .or_default()
            .insert(newname.to_string(), ino);
        inner.inodes.rename(
            &Node::Scratch(db, dir.to_string(), name.to_string()),
            Node::Scratch(db, dir.to_string(), newname.to_string()),
        );
        Ok(())
    }

    /// A scratch file of the mount's owner holding `data` (text moved out
    /// of a versioned file, bytes kept after a failure).
    fn owned_scratch(&self, data: &[u8], perm: u16) -> Result<Scratch> {
        Ok(Scratch {
            data: SpillBuf::with(&self.scratch_budget, data).map_err(scratch_io)?,
            symlink: None,
            perm,
            uid: self.owner.uid,
            gid: self.owner.gid,
            mtime: SystemTime::now(),
            mtime_set: false,
        })
    }

    /// Puts a scratch file into a table directory (replacing one of the same
    /// name); returns its inode.
    fn add_scratch(inner: &mut Inner, db: usize, table: &str, name: &str, file: Scratch) -> u64 {
        let key = (db, table.to_string());
        Self::drop_scratch_name(inner, db, table, name);
        let ino = inner
            .inodes
            .ino(&Node::Scratch(db, table.to_string(), name.to_string()));
        inner.scratch.insert(ino, file);
        inner
            .dirs
            .entry(key)
            .or_default()
            .insert(name.to_string(), ino);
        ino
    }

    /// Removes a scratch file's name. Its content lives on while a handle
    /// has it open (as after unlink on any file system) and goes with the
    /// last release.
    fn drop_scratch_name(inner: &mut Inner, db: usize, t: &str, name: &str) {
        let Some(ino) = inner
            .dirs
            .get_mut(&(db, t.to_string()))
            .and_then(|d| d.remove(name))
        else {
            return;
        };
        inner
            .inodes
            .detach(&Node::Scratch(db, t.to_string(), name.to_string()));
        let open = inner
            .handles
            .values()
            .any(|h| matches!(h, Handle::Scratch { ino: i } if *i == ino));
        if !open {
            inner.scratch.remove(&ino);
            inner.inodes.forget(ino);
        }
    }

    /// statfs of the backing store of the first database.
    pub fn statfs(&self) -> Result<libc::statvfs> {
        let root = self
            .dbs
            .first()
            .map(|d| d.db.root().to_path_buf())
            .unwrap_or_else(|| "/".into());
        let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|_| FsError::NotFound)?;
        // SAFETY: statvfs fills the struct we own.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(FsError::Storage(StorageError::io(
                "statfs",
                root,
                std::io::Error::last_os_error(),
            )));
        }
        Ok(st)
    }

    /// Whether opening `ino` runs a query (the adapter runs such opens on
    /// its query threads, never on a request thread).
    pub fn opens_a_query(&self, ino: u64) -> bool {
        matches!(
            lock(&self.inner).inodes.node(ino),
            Some(Node::QueryFile(..) | Node::SavedResult(..))
        )
    }

    /// Whether `ino` is the root (for the adapter's attribute TTLs).
    pub fn is_root(ino: u64) -> bool {
        ino == ROOT
    }

    pub fn single(&self) -> bool {
        self.single
    }
}

#[cfg(test)]
mod tests {
    //! The filesystem logic without a kernel: what each FUSE call does.
    use super::*;
    use crate::storage::RealIo;

    pub(super) const TABLE: &[u8] = b"id|name\n1|Ann\n2|Bob\n";
    pub(super) const ME: Caller = Caller {
        uid: 0,
        gid: 0,
        pid: 1,
    };

    pub(super) fn fs_with(opts: MountOptions) -> (tempfile::TempDir, ReedFs) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::init(Arc::new(RealIo), dir.path(), "shop", '|').unwrap();
        db.create_table("users", TABLE, "t").unwrap();
        let fs = ReedFs::new(
            vec![MountedDb {
                name: "shop".into(),
                db,
            }],
            true,
            opts,
        );
        (dir, fs)
    }

    pub(super) fn fs() -> (tempfile::TempDir, ReedFs) {
        fs_with(MountOptions::default())
    }

    pub(super) fn users(fs: &ReedFs) -> u64 {
        fs.lookup(ROOT, OsStr::new("users"), ME).unwrap().ino
    }

    pub(super) fn versions(fs: &ReedFs) -> usize {
        fs.dbs[0]
            .db
            .table("users")
            .unwrap()
            .versions()
            .unwrap()
            .len()
    }

    /// Truncates through handle `fh` and writes `bytes` (as `>` does).
    /// Creates file `name` in directory `dir` with O_EXCL, as `caller`:
    /// (attr, handle, caching).
    pub(super) fn create_new(
        fs: &ReedFs,
        dir: u64,
        name: &str,
        caller: Caller,
    ) -> (Attr, u64, Caching) {
        fs.create(
            dir,
            OsStr::new(name),
            0o600,
            libc::O_CREAT | libc::O_EXCL,
            caller,
        )
        .unwrap()
    }

    pub(super) fn rewrite(fs: &ReedFs, ino: u64, fh: u64, bytes: &[u8]) {
        fs.setattr(
            ino,
            Some(fh),
            SetAttr {
                size: Some(0),
                ..SetAttr::default()
            },
        )
        .unwrap();
        fs.write(fh, 0, bytes).unwrap();
    }

    /// close(2) of handle `fh`: a flush, then (last close) the release.
    pub(super) fn close(fs: &ReedFs, fh: u64, caller: Caller) {
        fs.flush(fh, caller).unwrap();
        fs.release(fh, caller).unwrap();
    }

    pub(super) fn head(fs: &ReedFs) -> Vec<u8> {
        fs.dbs[0]
            .db
            .table("users")
            .unwrap()
            .head()
            .unwrap()
            .1
            .as_ref()
            .clone()
    }

    #[test]
    fn listing_hides_virtual_names_unless_asked() {
        let (_d, fs) = fs();
        let names = |fs: &ReedFs, ino| {
            fs.readdir(ino)
                .unwrap()
                .into_iter()
                .map(|e| e.2)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&fs, ROOT), ["users"]);
        let t = users(&fs);
        assert_eq!(names(&fs, t), ["current.csv"]);
        // Reachable by name all the same.
        assert!(fs.lookup(t, OsStr::new("@versions"), ME).is_ok());
        assert!(fs.lookup(ROOT, OsStr::new("@status"), ME).is_ok());
        let (_d, fs) = fs_with(MountOptions {
            show_virtual: true,
            ..MountOptions::default()
        });
        assert_eq!(
            names(&fs, ROOT),
            [
                "users",
                "@status",
                "@rejected",
                "@conflicts",
                "@as-of",
                "@frames",
                "@query"
            ]
        );
    }

    #[test]
    fn write_commits_at_the_flush_after_data_never_before() {
        let (_d, fs) = fs();
        let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
        // A shell `>`: O_TRUNC, an early flush with no data, then data.
        let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
        fs.flush(fh, ME).unwrap();
        assert_eq!(versions(&fs), 1, "the early flush commits nothing");
        fs.write(fh, 0, b"id|name\n1|Ann\n").unwrap();
        assert_eq!(
            fs.getattr(cur, Some(fh)).unwrap().size,
            14,
            "a writer sees its own size"
        );
        assert_eq!(
            fs.getattr(cur, None).unwrap().size,
            TABLE.len() as u64,
            "everyone else sees the head readers get"
        );
        fs.flush(fh, ME).unwrap();
        assert_eq!(versions(&fs), 2);
        close(&fs, fh, ME);
        assert_eq!(versions(&fs), 2, "nothing new to commit at release");
        assert_eq!(head(&fs), b"id|name\n1|Ann\n");
    }

    #[test]
    fn an_ftruncate_commits_at_its_close_and_empties_the_file() {
        let (_d, fs) = fs();
        let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
        // A shell's `>` (O_TRUNC with the open): its early close commits nothing.
        let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
        fs.flush(fh, ME).unwrap();
        assert_eq!(versions(&fs), 1);
        fs.write(fh, 0, b"id|name\n7|Gus\n").unwrap();
        fs.flush(fh, ME).unwrap();
        close(&fs, fh, ME);
        assert_eq!(versions(&fs), 2);
        // `truncate -s 0` (ftruncate through the handle, then close): the
        // close commits, so the caller sees it done when truncate returns.
        let (fh, _) = fs.open(cur, libc::O_WRONLY, ME).unwrap();
        fs.setattr(
            cur,
            Some(fh),
            SetAttr {
                size: Some(0),
                ..SetAttr::default()
            },
        )
        .unwrap();
        assert_eq!(versions(&fs), 2, "the truncate itself commits nothing");
        fs.flush(fh, ME).unwrap();
        assert_eq!(versions(&fs), 3);
        assert_eq!(head(&fs), b"", "emptied is 0 bytes, as on any file system");
        close(&fs, fh, ME);
        assert_eq!(versions(&fs), 3, "the release has nothing left to commit");
    }

    #[test]
    fn rename_onto_current_commits_or_fails_keeping_the_file() {
        let (_d, fs) = fs();
        let t = users(&fs);
        let (a, fh, _) = create_new(&fs, t, "sedX1", ME);
        fs.write(fh, 0, b"id|name\n1|Ann\n1|Dup\n").unwrap();
        close(&fs, fh, ME);
        let err = fs
            .rename(t, OsStr::new("sedX1"), t, OsStr::new(CURRENT), false, ME)
            .unwrap_err();
        assert!(
            matches!(err, FsError::InvalidContent(ref m) if m.contains("duplicate key")),
            "{err:?}"
        );
        assert_eq!(
            fs.getattr(a.ino, None).unwrap().size,
            20,
            "the refused file is still there"
        );
        assert_eq!(head(&fs), TABLE);
        let (fh, _) = fs.open(a.ino, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
        fs.write(fh, 0, b"id|name\n1|Ann\n3|Cy\n").unwrap();
        close(&fs, fh, ME);
        fs.rename(t, OsStr::new("sedX1"), t, OsStr::new(CURRENT), false, ME)
            .unwrap();
        assert_eq!(head(&fs), b"id|name\n1|Ann\n3|Cy\n");
        assert!(fs.lookup(t, OsStr::new("sedX1"), ME).is_err());
        assert_eq!(versions(&fs), 2);
    }

    #[test]
    fn renaming_current_away_then_recreating_it_is_one_replacement() {
        let (_d, fs) = fs();
        let t = users(&fs);
        fs.rename(
            t,
            OsStr::new(CURRENT),
            t,
            OsStr::new("current.csv~"),
            false,
            ME,
        )
        .unwrap();
        assert!(matches!(
            fs.lookup(t, OsStr::new(CURRENT), ME),
            Err(FsError::NotFound)
        ));
        let backup = fs.lookup(t, OsStr::new("current.csv~"), ME).unwrap();
        assert_eq!(backup.size, TABLE.len() as u64);
        let (_, fh, _) = fs
            .create(
                t,
                OsStr::new(CURRENT),
                0o644,
                libc::O_CREAT | libc::O_WRONLY,
                ME,
            )
            .unwrap();
        fs.write(fh, 0, b"id|name\n9|New\n").unwrap();
        fs.flush(fh, ME).unwrap();
        close(&fs, fh, ME);
        fs.unlink(t, OsStr::new("current.csv~"), ME).unwrap();
        assert_eq!(head(&fs), b"id|name\n9|New\n");
        assert_eq!(versions(&fs), 2);
    }

    #[test]
    fn virtual_files_are_read_only_and_limits_hold() {
        let (_d, fs) = fs_with(MountOptions {
            max_file_bytes: 64,
            ..MountOptions::default()
        });
        let t = users(&fs);
        let vdir = fs.lookup(t, OsStr::new("@versions"), ME).unwrap().ino;
        let v1 = fs.readdir(vdir).unwrap()[0].clone();
        assert!(matches!(
            fs.open(v1.0, libc::O_WRONLY, ME),
            Err(FsError::ReadOnly(_))
        ));
        let (fh, _) = fs.open(v1.0, libc::O_RDONLY, ME).unwrap();
        assert_eq!(fs.read(fh, 0, 4096).unwrap(), TABLE);
        assert!(matches!(
            fs.create(vdir, OsStr::new("x"), 0o644, 0, ME),
            Err(FsError::ReadOnly(_))
        ));
        assert!(matches!(
            fs.mkdir(t, OsStr::new("sub")),
            Err(FsError::NotPermitted(_))
        ));
        assert!(matches!(
            fs.mkdir(ROOT, OsStr::new("bad name")),
            Err(FsError::InvalidName(_))
        ));
        assert!(matches!(
            fs.create(t, OsStr::new("bad\x01name"), 0o644, 0, ME),
            Err(FsError::InvalidName(_))
        ));
        let long = "x".repeat(300);
        assert!(matches!(
            fs.create(t, OsStr::new(&long), 0o644, 0, ME),
            Err(FsError::NameTooLong)
        ));
        let (_, fh, _) = fs.create(t, OsStr::new("big"), 0o644, 0, ME).unwrap();
        assert!(matches!(
            fs.write(fh, 60, b"0123456789"),
            Err(FsError::TooBig(64))
        ));
    }

    #[test]
    fn concurrent_writers_merge_and_collisions_fail_stale() {
        let (_d, fs) = fs();
        let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
        let (a, b) = (Caller { pid: 10, ..ME }, Caller { pid: 11, ..ME });
        // Both open the head (version 1) for writing, each edits a different row.
        let (fa, _) = fs.open(cur, libc::O_RDWR, a).unwrap();
        let (fb, _) = fs.open(cur, libc::O_RDWR, b).unwrap();
        rewrite(&fs, cur, fa, b"id|name\n1|Anna\n2|Bob\n");
        fs.flush(fa, a).unwrap();
        rewrite(&fs, cur, fb, b"id|name\n1|Ann\n2|Bobby\n");
        fs.flush(fb, b).unwrap();
        assert_eq!(
            head(&fs),
            b"id|name\n1|Anna\n2|Bobby\n",
            "both edits merged"
        );
        close(&fs, fa, a);
        close(&fs, fb, b);
        // Now both change the same cell: the later one fails and keeps its bytes.
        let (fa, _) = fs.open(cur, libc::O_RDWR, a).unwrap();
        let (fb, _) = fs.open(cur, libc::O_RDWR, b).unwrap();
        rewrite(&fs, cur, fa, b"id|name\n1|A\n2|Bobby\n");
        fs.flush(fa, a).unwrap();
        rewrite(&fs, cur, fb, b"id|name\n1|B\n2|Bobby\n");
        assert!(matches!(fs.flush(fb, b), Err(FsError::Stale(_))));
        assert_eq!(head(&fs), b"id|name\n1|A\n2|Bobby\n");
        assert_eq!(versions(&fs), 4);
    }

    #[test]
    fn a_rename_merges_against_what_the_same_process_read() {
        let (_d, fs) = fs();
        let t = users(&fs);
        let cur = fs.lookup(t, OsStr::new(CURRENT), ME).unwrap().ino;
        let sed = Caller { pid: 20, ..ME };
        // sed reads version 1...
        let (fr, _) = fs.open(cur, libc::O_RDONLY, sed).unwrap();
        close(&fs, fr, sed);
        // ...someone else commits version 2 meanwhile...
        let other = Caller { pid: 21, ..ME };
        let (fo, _) = fs.open(cur, libc::O_RDWR, other).unwrap();
        fs.write(fo, 0, b"id|name\n1|Ann\n2|Bob\n3|Cy\n").unwrap();
        close(&fs, fo, other);
        // ...then sed renames its edit of version 1 into place: merged, nothing lost.
        let (_, fh, _) = create_new(&fs, t, "sedX", sed);
        fs.write(fh, 0, b"id|name\n1|Ann\n2|Robert\n").unwrap();
        close(&fs, fh, sed);
        fs.rename(t, OsStr::new("sedX"), t, OsStr::new(CURRENT), false, sed)
            .unwrap();
        assert_eq!(head(&fs), b"id|name\n1|Ann\n2|Robert\n3|Cy\n");
    }

    #[test]
    fn an_empty_redirect_commits_at_its_second_close() {
        // `: > current.csv`: O_TRUNC, the early close after dup2, then the
        // close that ends the command, with nothing written.
        let (_d, fs) = fs();
        let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
        let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
        fs.flush(fh, ME).unwrap();
        assert_eq!(versions(&fs), 1);
        fs.flush(fh, ME).unwrap();
        assert_eq!(
            versions(&fs),
            2,
            "committed before close returns, not at the later release"
        );
        assert_eq!(head(&fs), b"", "emptied: 0 bytes");
        fs.release(fh, ME).unwrap();
        assert_eq!(versions(&fs), 2);
    }

    #[test]
    fn an_unlinked_scratch_file_stays_usable_while_open() {
        let (_d, fs) = fs();
        let t = users(&fs);
        let (a, fh, _) = create_new(&fs, t, ".x.swp", ME);
        fs.write(fh, 0, b"swap data").unwrap();
        fs.unlink(t, OsStr::new(".x.swp"), ME).unwrap();
        assert!(matches!(
            fs.lookup(t, OsStr::new(".x.swp"), ME),
            Err(FsError::NotFound)
        ));
        fs.write(fh, 9, b" more").unwrap();
        assert_eq!(fs.read(fh, 0, 100).unwrap(), b"swap data more");
        assert_eq!(
            fs.getattr(a.ino, None).unwrap().size,
            14,
            "fstat of an open, unlinked file"
        );
        // The name can be reused meanwhile, for a different file.
        let (b, fh2, _) = create_new(&fs, t, ".x.swp", ME);
        assert_ne!(a.ino, b.ino);
        close(&fs, fh, ME);
        assert!(fs.getattr(a.ino, None).is_err(), "gone with the last close");
        assert_eq!(fs.getattr(b.ino, None).unwrap().size, 0);
        close(&fs, fh2, ME);
    }

    #[test]
    fn a_new_table_is_a_directory_then_a_first_save() {
        let (_d, fs) = fs();
        let dir = fs.mkdir(ROOT, OsStr::new("orders")).unwrap();
        let (_, fh, _) = fs
            .create(
                dir.ino,
                OsStr::new(CURRENT),
                0o644,
                libc::O_CREAT | libc::O_WRONLY,
                ME,
            )
            .unwrap();
        fs.write(fh, 0, b"id|item\n1|pen\n").unwrap();
        fs.flush(fh, ME).unwrap();
        close(&fs, fh, ME);
        assert_eq!(
            fs.dbs[0]
                .db
                .table("orders")
                .unwrap()
                .head()
                .unwrap()
                .1
                .as_slice(),
            b"id|item\n1|pen\n"
        );
    }

    #[test]
    fn inodes_of_queries_and_times_are_freed_when_the_kernel_forgets_them() {
        let (_d, fs) = fs();
        let q = fs.lookup(ROOT, OsStr::new("@query"), ME).unwrap().ino;
        let asof = fs.lookup(ROOT, OsStr::new("@as-of"), ME).unwrap().ino;
        let before = lock(&fs.inner).inodes.len();
        let mut names = Vec::new();
        for i in 0..50 {
            let sql = format!("SELECT {i} AS n");
            names.push(fs.lookup(q, OsStr::new(&sql), ME).unwrap().ino);
            let when = format!("{}", 1_700_000_000 + i);
            names.push(fs.lookup(asof, OsStr::new(&when), ME).unwrap().ino);
        }
        assert_eq!(lock(&fs.inner).inodes.len(), before + 100);
        for ino in names {
            fs.forget(ino, 1);
            assert!(
                fs.getattr(ino, None).is_err(),
                "freed: the kernel forgot it"
            );
        }
        assert_eq!(lock(&fs.inner).inodes.len(), before, "no inode kept");
        // Looked up twice, forgotten once: still there.
        let ino = fs.lookup(q, OsStr::new("SELECT 1"), ME).unwrap().ino;
        fs.lookup(q, OsStr::new("SELECT 1"), ME).unwrap();
        fs.forget(ino, 1);
        assert!(fs.getattr(ino, None).is_ok());
        fs.forget(ino, 1);
        assert!(fs.getattr(ino, None).is_err());
    }
}
