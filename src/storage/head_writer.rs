//! Writes `current.csv`, the cache of the head.
//!
//! `current.csv` is a cache of the head: the log and the deltas are the
//! truth, and open() checks the file's hash and rebuilds it. So a commit
//! need not wait for 8 MB of it to be written: one thread per table writes
//! the newest submitted head, and heads submitted while it writes coalesce.
//! Dropping the writer writes what is pending, then stops the thread.
//!
//! One writer of the file at a time. Every replacement of `current.csv`, by
//! any process, happens while holding the table's lock (`lock.rs`):
//! - recovery's rebuild runs under the lock and reads the file after taking
//!   it, so it sees whatever the last holder installed;
//! - commits that write inline hold the lock already;
//! - this thread writes its temp file without the lock (the slow part, so no
//!   commit waits for it), then takes the lock only to check that the log
//!   still ends with the version it holds and to rename (microseconds).
//!
//! Hence renames never interleave, and a head is installed only while it is
//! the newest committed version: an older head never lands over a newer one
//! (which another process's commit and writer could otherwise leave behind).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::error::{Result, StorageError};
use super::io::{Io, sync_parent, temp_path_for};
use super::lock::LockFile;

/// Names of this process's head temp files that exist between their write
/// and their rename. Recovery (under the lock) removes temp files of dead
/// processes and those of this process that nobody is writing; the
/// background writer's temp waits for the lock, so it must not count as a
/// leftover.
static WRITING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether a temp file of this process belongs to a head being written.
pub(crate) fn temp_in_flight(name: &str) -> bool {
    WRITING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|n| n == name)
}

/// A head written to a temp file next to `current.csv`. Dropping it
/// removes the file unless it was renamed into place.
struct TempHead<'a> {
    io: &'a dyn Io,
    tmp: PathBuf,
    name: String,
    installed: bool,
}

impl<'a> TempHead<'a> {
    /// Writes `bytes` to a fresh temp file (fsynced when `durable`). A
    /// failed write (ENOSPC) removes what it wrote: a full disk must not get
    /// fuller through a cache.
    fn write(io: &'a dyn Io, path: &Path, bytes: &[u8], durable: bool) -> Result<TempHead<'a>> {
        let tmp = temp_path_for(path);
        let name = tmp
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        WRITING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        let t = TempHead {
            io,
            tmp,
            name,
            installed: false,
        };
        io.write_new(&t.tmp, bytes, durable)
            .map_err(|e| StorageError::io("write", &t.tmp, e))?;
        Ok(t)
    }

    /// Renames the temp file over `path` (and fsyncs the directory when
    /// `durable`). The caller holds the table lock.
    fn install(mut self, path: &Path, durable: bool) -> Result<()> {
        self.io
            .rename(&self.tmp, path)
            .map_err(|e| StorageError::io("rename", path, e))?;
        self.installed = true;
        if durable {
            sync_parent(self.io, path)?;
        }
        Ok(())
    }
}

impl Drop for TempHead<'_> {
    fn drop(&mut self) {
        if !self.installed {
            // Best effort: a leftover is removed by the next locked open.
            let _ = self.io.remove(&self.tmp);
        }
        let mut v = WRITING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = v.iter().position(|n| *n == self.name) {
            v.swap_remove(i);
        }
    }
}

/// Removes `current.csv` of a dropped table (an empty head).
fn remove_head(io: &dyn Io, path: &Path) -> Result<()> {
    super::io::remove_file_durably(io, path)
}

/// Writes `bytes` as the file at `path` now: write-temp and rename, with
/// fsyncs of the file and the directory when `durable` (a rebuild by
/// recovery). An empty head means a dropped table (no file). The caller
/// holds the table lock: that is what makes it the file's one writer.
pub(crate) fn write_head(io: &dyn Io, path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    if bytes.is_empty() {
        return remove_head(io, path);
    }
    TempHead::write(io, path, bytes, durable)?.install(path, durable)
}

/// What the background thread needs to write one table's head.
#[derive(Debug)]
pub(crate) struct Target {
    pub io: Arc<dyn Io>,
    /// `current.csv`.
    pub path: PathBuf,
    /// `version.log`: its length tells whether a head is still the newest.
    pub log: PathBuf,
    /// The table's lock, shared with its committers.
    pub lock: Arc<LockFile>,
    /// The lock's name in messages.
    pub what: String,
    /// How long to wait for the lock before leaving the file to recovery.
    pub timeout: Duration,
}

/// A head to write, with the length of `version.log` that ends with its
/// version (the state a commit published).
#[derive(Debug)]
struct Pending {
    head: Arc<Vec<u8>>,
    log_len: u64,
}

#[derive(Debug, Default)]
struct Slot {
    pending: Option<Pending>,
    busy: bool,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    cv: Condvar,
}

#[derive(Debug)]
pub(crate) struct HeadWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Slot> {
    shared.slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// What became of one background write.
enum Outcome {
    Written,
    /// The log moved on (a later commit, maybe by another process, whose
    /// writer installs its own head): nothing to install.
    Superseded,
}

/// Writes `p` off the lock, then installs it under the lock if the log
/// still ends with its version.
fn write_pending(t: &Target, p: &Pending) -> Result<Outcome> {
    let io = &*t.io;
    let temp = if p.head.is_empty() {
        None
    } else {
        Some(TempHead::write(io, &t.path, &p.head, false)?)
    };
    let _guard = t.lock.acquire(&t.what, t.timeout)?;
    // Committed lines are never cut and every commit appends, so under the
    // lock a log of the length this head was published with still ends with
    // its version; a longer one holds a newer version (whose committer
    // writes its own head) or a line not yet decided.
    let len = io
        .len(&t.log)
        .map_err(|e| StorageError::io("stat", &t.log, e))?;
    if len != Some(p.log_len) {
        return Ok(Outcome::Superseded);
    }
    match temp {
        Some(temp) => temp.install(&t.path, false)?,
        None => remove_head(io, &t.path)?,
    }
    Ok(Outcome::Written)
}

impl HeadWriter {
    pub fn spawn(target: Target) -> std::io::Result<HeadWriter> {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rdb-head-writer".into())
            .spawn(move || {
                loop {
                    let pending = {
                        let mut slot = lock(&s);
                        while slot.pending.is_none() && !slot.stop {
                            slot = s.cv.wait(slot).unwrap_or_else(|p| p.into_inner());
                        }
                        match slot.pending.take() {
                            Some(p) => {
                                slot.busy = true;
                                p
                            }
                            None => break, // stop requested, nothing pending
                        }
                    };
                    match write_pending(&target, &pending) {
                        Ok(Outcome::Written) => {}
                        Ok(Outcome::Superseded) => {
                            tracing::debug!(file = %target.path.display(), "a newer version was committed; its writer refreshes the head file");
                        }
                        Err(e @ StorageError::Locked { .. }) => {
                            tracing::warn!(file = %target.path.display(), error = %e.report(), "head file not refreshed: the table stayed locked; the next locked open or commit rewrites it");
                        }
                        Err(e) => {
                            tracing::error!(file = %target.path.display(), error = %e.report(), "could not refresh the head file; the next locked open rebuilds it");
                        }
                    }
                    lock(&s).busy = false;
                    s.cv.notify_all();
                }
            })?;
        Ok(HeadWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `head`, the version that `version.log` of length `log_len`
    /// ends with, replacing any head not yet taken by the thread.
    pub fn submit(&self, head: Arc<Vec<u8>>, log_len: u64) {
        lock(&self.shared).pending = Some(Pending { head, log_len });
        self.shared.cv.notify_all();
    }

    /// Waits until everything submitted is written, superseded, or given up
    /// (the lock stayed held for the lock timeout): bounded, so a caller that
    /// holds the table lock itself cannot deadlock with the thread.
    pub fn flush(&self) {
        let mut slot = lock(&self.shared);
        while slot.pending.is_some() || slot.busy {
            slot = self.shared.cv.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for HeadWriter {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
