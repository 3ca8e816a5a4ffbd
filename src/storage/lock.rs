//! Exclusion between processes and between threads: an advisory `flock` on
//! a lock file (one fd per `LockFile`) plus a mutex, because `flock` belongs
//! to the open file and so does not exclude threads sharing it. Taken with a
//! bounded wait. The holder writes its pid into the file so that a waiter can
//! say who holds it. The kernel drops the lock when the holder dies, so a
//! crashed process never leaves a stale lock behind.
//!
//! A table's lock serialises its commits and recovery, and is also what
//! makes `current.csv` have one writer at a time: every process renames the
//! file into place only while holding it (`head_writer.rs`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::error::{Result, StorageError};
use super::io::{FILE_MODE, no_symlink};

#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: File,
    /// Held while a thread of this process holds the flock.
    held: Mutex<bool>,
    released: Condvar,
}

/// Held lock; released on drop.
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a LockFile,
}

impl LockFile {
    /// Opens (creating) the lock file: mode 0600 whatever the umask, and
    /// never through a symlink. The holder writes its pid into the file, so
    /// a planted `lock -> some file` would otherwise have that file's
    /// content replaced; `O_NOFOLLOW` refuses it instead.
    pub fn open(path: &Path) -> Result<LockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| StorageError::io("open lock", path, no_symlink(path, e)))?;
        Ok(LockFile {
            path: path.to_path_buf(),
            file,
            held: Mutex::new(false),
            released: Condvar::new(),
        })
    }

    /// Takes the lock, waiting at most `timeout`.
    pub fn acquire(&self, what: &str, timeout: Duration) -> Result<LockGuard<'_>> {
        let start = Instant::now();
        let locked = |waited: Duration| StorageError::Locked {
            what: what.to_string(),
            pid: std::process::id(),
            waited_ms: waited.as_millis() as u64,
        };
        // First among this process's threads...
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            while *held {
                let left = timeout.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(locked(start.elapsed()));
                }
                held = self
                    .released
                    .wait_timeout(held, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *held = true;
        }
        // ...then among processes.
        match self.acquire_flock(what, timeout, start) {
            Ok(()) => Ok(LockGuard { lock: self }),
            Err(e) => {
                self.release_thread();
                Err(e)
            }
        }
    }

    fn release_thread(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.released.notify_one();
    }

    fn acquire_flock(&self, what: &str, timeout: Duration, start: Instant) -> Result<()> {
        let mut pause = Duration::from_micros(200);
        loop {
            // SAFETY-free: flock on a valid fd owned by self.file.
            let rc = unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                let mut f = &self.file;
                let _ = f.set_len(0);
                let _ = f.rewind();
                let _ = write!(f, "{}", std::process::id());
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(StorageError::io("lock", &self.path, err));
            }
            if start.elapsed() >= timeout {
                return Err(StorageError::Locked {
                    what: what.to_string(),
                    pid: self.holder().unwrap_or(0),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn holder(&self) -> Option<u32> {
        let mut s = String::new();
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .ok()?
            .read_to_string(&mut s)
            .ok()?;
        s.trim().parse().ok()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: unlocking a valid fd; failure leaves the lock to close().
        unsafe {
            libc::flock(self.lock.file.as_raw_fd(), libc::LOCK_UN);
        }
        self.lock.release_thread();
    }
}
