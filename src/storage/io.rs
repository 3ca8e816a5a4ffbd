//! The file operations the storage engine performs, behind a trait so that
//! crash tests can put a fault-injecting layer ([`super::fault::FaultIo`])
//! underneath the engine. Every mutation the engine makes goes through here;
//! reads go through here too so a "crashed" layer can refuse them.
//!
//! Durability vocabulary used throughout: a file's *data* is durable after an
//! fsync of the file; its *name* (creation, rename, removal) is durable after
//! an fsync of the directory that holds it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{Result, StorageError};

pub trait Io: Send + Sync + std::fmt::Debug {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Length of the file, or `None` when it does not exist.
    fn len(&self, path: &Path) -> io::Result<Option<u64>>;
    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Names of the entries of a directory (unsorted).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents (no error when it exists).
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates a file that must not exist yet, writes `bytes`, and fsyncs the
    /// file when `sync`. The name is durable only after [`Io::sync_dir`].
    fn write_new(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()>;
    /// Appends `bytes` (creating the file if needed) and fsyncs it when `sync`.
    fn append(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()>;
    /// Cuts a file to `len` bytes and fsyncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Renames, failing with `AlreadyExists` when `to` exists. (This
    /// default checks first; `RealIo` does it atomically.)
    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.len(to)?.is_some() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealIo;

impl Io for RealIo {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let f = File::open(path)?;
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            match f.read_at(&mut buf[got..], offset + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // Names that are not UTF-8 are never ours; skip them.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn write_new(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        Ok(())
    }

    fn append(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        let mut f = OpenOptions::new().append(true).create(true).open(path)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: two valid NUL-terminated paths; renameat2 reads them only.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // A file system without RENAME_NOREPLACE: check, then rename.
            Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                if to.exists() {
                    return Err(io::Error::from(io::ErrorKind::AlreadyExists));
                }
                std::fs::rename(from, to)
            }
            _ => Err(e),
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Marker inside the names of temporary files; open() removes leftovers.
pub const TEMP_MARKER: &str = ".rdb-tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Names of this process's temp files that are being written right now.
static IN_FLIGHT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether a temp file of this process is being written (not a leftover).
pub fn temp_in_flight(name: &str) -> bool {
    IN_FLIGHT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|n| n == name)
}

/// Marks a temp file in flight until dropped.
struct InFlight(String);

impl InFlight {
    fn new(tmp: &Path) -> InFlight {
        let name = tmp
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        IN_FLIGHT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        InFlight(name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut v = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = v.iter().position(|n| *n == self.0) {
            v.swap_remove(i);
        }
    }
}

/// A temp path next to `path`, unique within this process and across processes.
pub fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    // pid first (recovery tells live writers' files from leftovers by it),
    // then a counter and random bits: a reused pid never meets its old names.
    let random = uuid::Uuid::new_v4().simple().to_string();
    path.with_file_name(format!(
        ".{name}{TEMP_MARKER}{}-{n}-{}",
        std::process::id(),
        &random[..8]
    ))
}

/// Replaces `path` atomically: write a temp file, fsync it, rename it over
/// `path`, fsync the directory. After a crash the path holds the old or the
/// new bytes, never a mix.
pub fn replace_file(io: &dyn Io, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path_for(path);
    let _flight = InFlight::new(&tmp);
    io.write_new(&tmp, bytes, true)
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    if let Err(e) = io.rename(&tmp, path) {
        let _ = io.remove(&tmp);
        return Err(StorageError::io("rename", path, e));
    }
    sync_parent(io, path)
}

/// Replaces `path` by rename without any fsync: for files that are a cache
/// of durable state (`current.csv`), which open() checks and rebuilds. After
/// a crash the path holds the old bytes, the new bytes, or (on file systems
/// that do not order data before renames) an empty file; never a mix that
/// passes the hash check.
pub fn replace_file_unsynced(io: &dyn Io, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path_for(path);
    let _flight = InFlight::new(&tmp);
    io.write_new(&tmp, bytes, false)
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    if let Err(e) = io.rename(&tmp, path) {
        let _ = io.remove(&tmp);
        return Err(StorageError::io("rename", path, e));
    }
    Ok(())
}

/// Fsyncs the directory holding `path`.
pub fn sync_parent(io: &dyn Io, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    io.sync_dir(dir)
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Reads a file that must exist, mapping the error with its path.
pub fn read_file(io: &dyn Io, path: &Path) -> Result<Vec<u8>> {
    io.read(path).map_err(|e| StorageError::io("read", path, e))
}
