//! Refreshes `current.csv` off the commit path.
//!
//! `current.csv` is a cache of the head (the log and the deltas are the
//! truth; open() and refresh() check its hash and rebuild it), so a commit
//! need not wait for 8 MB of it to be written. One thread per table writes
//! the newest submitted head; heads submitted while it writes coalesce.
//! Dropping the writer writes what is pending, then stops the thread.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::io::{Io, replace_file_unsynced, sync_parent};

#[derive(Debug, Default)]
struct Slot {
    pending: Option<Arc<Vec<u8>>>,
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

/// Writes `bytes` as the file at `path`; an empty head means a dropped table
/// (no file).
pub(crate) fn write_head(io: &dyn Io, path: &std::path::Path, bytes: &[u8]) -> super::Result<()> {
    if bytes.is_empty() {
        match io.remove(path) {
            Ok(()) => sync_parent(io, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(super::StorageError::io("remove", path, e)),
        }
    } else {
        replace_file_unsynced(io, path, bytes)
    }
}

impl HeadWriter {
    pub fn spawn(io: Arc<dyn Io>, path: PathBuf) -> std::io::Result<HeadWriter> {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rdb-head-writer".into())
            .spawn(move || {
                loop {
                    let head = {
                        let mut slot = lock(&s);
                        while slot.pending.is_none() && !slot.stop {
                            slot = s.cv.wait(slot).unwrap_or_else(|p| p.into_inner());
                        }
                        match slot.pending.take() {
                            Some(h) => {
                                slot.busy = true;
                                h
                            }
                            None => break, // stop requested, nothing pending
                        }
                    };
                    if let Err(e) = write_head(&*io, &path, &head) {
                        tracing::error!(file = %path.display(), error = %e.report(), "could not refresh the head file; open() will rebuild it");
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

    pub fn submit(&self, head: Arc<Vec<u8>>) {
        lock(&self.shared).pending = Some(head);
        self.shared.cv.notify_all();
    }

    /// Waits until everything submitted is written.
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
