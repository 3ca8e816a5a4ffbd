//! The mounted filesystem's logic, without a kernel: every FUSE operation as
//! a method on [`ReedFs`] that takes and returns plain values. `fuse.rs`
//! adapts it to fuser; tests drive it directly.
//!
//! Commit points (docs/MOUNT.md): the close (flush) by a process that wrote
//! through the handle, the opener's second close of an emptied handle or its
//! close after a truncate, the release of a handle still dirty that some
//! program closed, and a rename onto `current.csv`. Never an fsync (it makes
//! the bytes durable under `unsaved/`), never the early flush a shell `>`
//! sends before any data, never a truncate itself. A whole save merges
//! against its writer's base (`merge::commit_merging`); an O_APPEND save
//! appends to the head as it is at commit. Everything else in a table
//! directory is a scratch file (memory, then disk; `spill`), never versioned.
//!
//! Locking: one mutex guards the namespace (inodes, handles, scratch files).
//! What may be slow runs outside it: commits, queries, reads of history
//! (opening a version or an `@as-of` file) and the attributes of files
//! generated from the store (`log.csv`, `@status`, conflict and rejected
//! files: `attr_from_storage`) run outside it, so a slow commit or history
//! read never blocks another caller's lookup or save.
//!
//! The operations live in the files of this directory, one concern each,
//! and only dispatch: what each family of paths (tables and `current.csv`,
//! `@versions`, `@as-of`, `@query`, `@frames`, `@conflicts`, `@rejected`,
//! `@status`, `schema.toml`) does lives in its file under `family/`
//! (docs/ARCHITECTURE.md, the map of `src/fs/`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::{FsError, Result};
use super::node::{CONFLICTS_DIR_KEY, Inodes, Node, QUERY_DIR_KEY, ResultFormat, frame_dir_key};
use super::spill::{Budget, SpillBuf};
use super::status::{Event, Status};
use crate::merge::{self, MergeError, Outcome};
use crate::storage::attrs::{Attrs, PathAttrs};
use crate::storage::{
    Action, Base, CURRENT, CommitOptions, Database, SCHEMA, StorageError, Table, VersionInfo, kept,
    names,
};

mod attrs;
mod commit;
mod family;
mod handles;
mod lookup;
#[cfg(test)]
mod model_tests;
mod namespace;
mod open;
mod pins;
#[cfg(test)]
mod saves_tests;
mod scratch;

use attrs::{attrs_key, ns_time, time_ns, ts_time};
use handles::{EditTarget, Handle, Save};
use open::Opening;
use scratch::scratch_io;

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
    frames: HashMap<(usize, String), family::frames::OpenFrame>,
}

pub struct MountedDb {
    pub name: String,
    pub db: Database,
}

pub struct ReedFs {
    dbs: Vec<MountedDb>,
    opts: MountOptions,
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
    /// Queries of `@query/` running now (shown in `@status`).
    queries_running: std::sync::atomic::AtomicUsize,
    /// Open change feed files (`family/changes.rs`).
    feeds: family::changes::Feeds,
    /// Per database, the pins last written (`pins.rs`).
    published_pins: Mutex<Vec<Option<String>>>,
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

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
pub(super) fn user_name(uid: u32) -> String {
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
                if let Some(state) = crate::query::index::IndexState::load(&d.db) {
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
            queries_running: Default::default(),
            feeds: Default::default(),
            published_pins: Mutex::new(Vec::new()),
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

    /// Version `seq` of table `t`, shared with the table's recently rebuilt
    /// versions (a second open of the same old version costs a lookup).
    fn old_version(&self, db: usize, t: &str, seq: u64) -> Result<Arc<Vec<u8>>> {
        Ok(self.table(db, t)?.read_version_shared(seq)?)
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
}

#[cfg(test)]
mod tests;
