//! The file operations the storage engine performs, behind a trait so that
//! crash tests can put a fault-injecting layer ([`super::fault::FaultIo`])
//! underneath the engine. Every mutation the engine makes goes through here;
//! reads go through here too so a "crashed" layer can refuse them.
//!
//! Durability vocabulary used throughout: a file's *data* is durable after an
//! fsync of the file; its *name* (creation, rename, removal) is durable after
//! an fsync of the directory that holds it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{Result, StorageError};

/// Mode of every directory the store creates: only its owner may list,
/// enter or change it. Passed to mkdir, so the umask can only take bits
/// away (it never makes the store readable by others).
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the store creates (tables, history, logs, locks,
/// kept bytes, temp files): only its owner may read or write it.
pub const FILE_MODE: u32 = 0o600;

/// Why the store refuses a path: a symlink where it never follows one, or a
/// directory that another user owns. It travels as the source of an
/// `io::Error` (kind `PermissionDenied`), so every caller that wraps I/O
/// errors with its operation and path (`StorageError::Io`) reports it
/// unchanged; [`refusal`] finds it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafePath {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for UnsafePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The path is already in the message of the error that wraps this.
        f.write_str(&self.reason)
    }
}

impl std::error::Error for UnsafePath {}

/// What a refused symlink says.
pub const SYMLINK_REASON: &str =
    "is a symlink, and ReedBase never follows a symlink inside a database (remove it)";

/// An `io::Error` that refuses `path` for `reason`.
pub fn refused(path: &Path, reason: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        UnsafePath {
            path: path.to_path_buf(),
            reason: reason.into(),
        },
    )
}

/// The refusal inside a storage error, if that is what it is.
pub fn refusal(e: &StorageError) -> Option<&UnsafePath> {
    match e {
        StorageError::Io { source, .. } => source.get_ref()?.downcast_ref::<UnsafePath>(),
        _ => None,
    }
}

/// `O_NOFOLLOW` turns a symlink at the last component into ELOOP; say what
/// that means instead of "too many levels of symbolic links".
pub(crate) fn no_symlink(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        refused(path, SYMLINK_REASON)
    } else {
        e
    }
}

/// Opens `path` with `opts` and `O_NOFOLLOW` (the last component is never a
/// symlink followed), creating it with [`FILE_MODE`] when `opts` creates.
fn open_nofollow(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    opts.mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| no_symlink(path, e))
}

/// Creates `dir` and its missing parents with [`DIR_MODE`] (not
/// `create_dir_all`, which uses 0777 and so the umask). An existing `dir`
/// must be a real directory: a symlink there is refused, never followed.
/// Parents that already exist are used as they are (a symlinked home is the
/// user's choice); parents this call creates are checked like `dir`.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let exists = |e: io::Error| -> io::Result<()> {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        let m = fs::symlink_metadata(dir)?;
        if m.file_type().is_symlink() {
            Err(refused(dir, SYMLINK_REASON))
        } else if m.is_dir() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file is in the way of a directory",
            ))
        }
    };
    let mkdir = || DirBuilder::new().mode(DIR_MODE).create(dir);
    match mkdir() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => create_private_dir(p)?,
                _ => return Err(e),
            }
            mkdir().or_else(exists)
        }
        Err(e) => exists(e),
    }
}

/// Opens (creating with [`FILE_MODE`]) a file of the CLI's own outside any
/// database, such as a daemon's log: appended to, never through a symlink.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    open_nofollow(OpenOptions::new().create(true).append(true), path)
}

/// Replaces the content of a small file of the CLI's own (a daemon's pid
/// file), created with [`FILE_MODE`], never through a symlink.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = open_nofollow(
        OpenOptions::new().create(true).write(true).truncate(true),
        path,
    )?;
    f.write_all(bytes)
}

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
    /// A second name for file `from` (same file system): for a backup's
    /// snapshot of immutable history files.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }
    /// The entry itself (a symlink is not followed), or `None` when there
    /// is none: for the checks of type and owner before a database is used.
    fn lstat(&self, path: &Path) -> io::Result<Option<fs::Metadata>> {
        match fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The real file system. Every file it opens is opened with `O_NOFOLLOW`,
/// every file it creates gets [`FILE_MODE`] and every directory
/// [`DIR_MODE`], and no directory it lists or creates is a symlink: nothing
/// inside a database leads outside it, and nothing the store writes is
/// readable by other users, whatever the umask.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealIo;

impl Io for RealIo {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut f = open_nofollow(OpenOptions::new().read(true), path)?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        f.read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        match self.lstat(path)? {
            Some(m) if m.file_type().is_symlink() => Err(refused(path, SYMLINK_REASON)),
            Some(m) => Ok(Some(m.len())),
            None => Ok(None),
        }
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let f = open_nofollow(OpenOptions::new().read(true), path)?;
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
        // read_dir follows a symlinked directory; look at the entry first.
        if fs::symlink_metadata(dir)?.file_type().is_symlink() {
            return Err(refused(dir, SYMLINK_REASON));
        }
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
        create_private_dir(dir)
    }

    fn write_new(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        // create_new (O_EXCL) also refuses a symlink, even a dangling one.
        let mut f = open_nofollow(OpenOptions::new().write(true).create_new(true), path)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        Ok(())
    }

    fn append(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        let mut f = open_nofollow(OpenOptions::new().append(true).create(true), path)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = open_nofollow(OpenOptions::new().write(true), path)?;
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
                // symlink_metadata: a symlink at `to` is taken, even a dangling one.
                if fs::symlink_metadata(to).is_ok() {
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
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
            .open(dir)
            .map_err(|e| {
                // With O_DIRECTORY a symlink fails as "not a directory".
                let link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
                if link {
                    refused(dir, SYMLINK_REASON)
                } else {
                    e
                }
            })?
            .sync_all()
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

/// Removes file `path` if it is there; whether it was.
pub fn remove_if_exists(io: &dyn Io, path: &Path) -> Result<bool> {
    match io.remove(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// Removes file `path` (nothing to do when it is gone) and makes the
/// removal durable.
pub fn remove_file_durably(io: &dyn Io, path: &Path) -> Result<()> {
    if remove_if_exists(io, path)? {
        sync_parent(io, path)?;
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

/// Environment variable listing databases that another user owns and that
/// this process may open anyway (like git's `safe.directory`): absolute
/// paths separated by `:`, each a database directory or the directory that
/// holds a `.reedbase/`; `*` allows every database.
pub const SAFE_DIRECTORIES_ENV: &str = "REEDBASE_SAFE_DIRECTORIES";

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// Who may own the directories and files of a database this process uses:
/// its own user, root (who can do anything anyway), and the owner of a
/// database that [`SAFE_DIRECTORIES_ENV`] lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    listed_owner: Option<u32>,
}

impl Trust {
    fn allows(self, uid: u32) -> bool {
        uid == euid() || uid == 0 || self.listed_owner == Some(uid)
    }
}

/// Whether [`SAFE_DIRECTORIES_ENV`] lists the database at `root` (by the
/// path given or the real one; `root` itself or the directory holding it
/// when it is a `.reedbase`).
fn listed_safe(root: &Path) -> bool {
    let Some(list) = std::env::var_os(SAFE_DIRECTORIES_ENV) else {
        return false;
    };
    let mut names = vec![root.to_path_buf()];
    if root.file_name() == Some(std::ffi::OsStr::new(super::LOCAL_DIR))
        && let Some(project) = root.parent()
    {
        names.push(project.to_path_buf());
    }
    let real: Vec<PathBuf> = names.iter().filter_map(|n| n.canonicalize().ok()).collect();
    names.extend(real);
    std::env::split_paths(&list).any(|entry| {
        if entry.as_os_str() == "*" {
            return true;
        }
        // Relative entries would depend on the working directory: ignored.
        entry.is_absolute()
            && (names.contains(&entry) || entry.canonicalize().is_ok_and(|e| names.contains(&e)))
    })
}

fn refuse(path: &Path, reason: String) -> StorageError {
    StorageError::io("open database", path, refused(path, reason))
}

/// Checks the directory of a database before anything in it is used: a
/// real directory (a symlink is refused, never followed) owned by this
/// process's user or root, or listed in [`SAFE_DIRECTORIES_ENV`]. Another
/// user's database could read what we write into it and lead our writes
/// elsewhere through symlinks, so it is refused with a message saying how
/// to allow it. `None` when `root` does not exist.
pub(crate) fn check_root(io: &dyn Io, root: &Path) -> Result<Option<Trust>> {
    let Some(m) = io
        .lstat(root)
        .map_err(|e| StorageError::io("stat", root, e))?
    else {
        return Ok(None);
    };
    if m.file_type().is_symlink() {
        return Err(refuse(root, SYMLINK_REASON.to_string()));
    }
    if !m.is_dir() {
        return Err(StorageError::NotFound {
            kind: "database",
            name: format!("{} (not a directory)", root.display()),
        });
    }
    use std::os::unix::fs::MetadataExt;
    let uid = m.uid();
    if Trust::default().allows(uid) {
        return Ok(Some(Trust::default()));
    }
    if listed_safe(root) {
        tracing::info!(root = %root.display(), uid, "another user's database, allowed by {SAFE_DIRECTORIES_ENV}");
        return Ok(Some(Trust {
            listed_owner: Some(uid),
        }));
    }
    Err(refuse(
        root,
        format!(
            "is owned by uid {uid}, not by you (uid {}) or root; another user's database could read what you write into it or lead your writes elsewhere. If you trust it: {SAFE_DIRECTORIES_ENV}={} (paths separated by ':', or '*' for any)",
            euid(),
            root.display()
        ),
    ))
}

/// Checks one entry inside a database (a directory when `dir`): when it
/// exists it is no symlink, of the expected kind, and owned by a user
/// `trust` allows.
pub(crate) fn check_part(io: &dyn Io, path: &Path, dir: bool, trust: Trust) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(m) = io
        .lstat(path)
        .map_err(|e| StorageError::io("stat", path, e))?
    else {
        return Ok(());
    };
    if m.file_type().is_symlink() {
        return Err(refuse(path, SYMLINK_REASON.to_string()));
    }
    if m.is_dir() != dir {
        let want = if dir { "a directory" } else { "a file" };
        return Err(refuse(path, format!("is not {want}")));
    }
    if !trust.allows(m.uid()) {
        return Err(refuse(
            path,
            format!(
                "is owned by uid {}, not by you (uid {}), root or the database's owner; remove it or change its owner",
                m.uid(),
                euid()
            ),
        ));
    }
    Ok(())
}

/// Files and directories that users other than their owner may read or
/// write (a group or other read or write bit), found by [`exposed_paths`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    pub count: u64,
    /// The first one found, with its permission bits.
    pub first: Option<(PathBuf, u32)>,
}

/// Walks `dir` (not following symlinks; `dir` included) for entries that
/// others may read or write, skipping the subtrees in `skip`. Entries it
/// cannot read are passed over: this feeds a warning, not a verdict.
pub fn exposed_paths(dir: &Path, skip: &[PathBuf]) -> Exposure {
    use std::os::unix::fs::PermissionsExt;
    fn walk(p: &Path, skip: &[PathBuf], out: &mut Exposure) {
        if skip.iter().any(|s| s == p) {
            return;
        }
        let Ok(m) = fs::symlink_metadata(p) else {
            return;
        };
        if m.file_type().is_symlink() {
            return;
        }
        let mode = m.permissions().mode() & 0o7777;
        if mode & 0o066 != 0 {
            out.count += 1;
            if out.first.is_none() {
                out.first = Some((p.to_path_buf(), mode));
            }
        }
        if m.is_dir()
            && let Ok(rd) = fs::read_dir(p)
        {
            for e in rd.flatten() {
                walk(&e.path(), skip, out);
            }
        }
    }
    let mut out = Exposure::default();
    walk(dir, skip, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    // The umask can only take bits away from 0600/0700: under any umask
    // that leaves the owner's bits (022, 002, 077) these are exact.
    #[test]
    fn what_real_io_creates_is_private() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b/c");
        RealIo.create_dir(&dir).unwrap();
        for p in [d.path().join("a"), d.path().join("a/b"), dir.clone()] {
            assert_eq!(mode(&p), DIR_MODE, "{}", p.display());
        }
        RealIo.write_new(&dir.join("new"), b"x", true).unwrap();
        RealIo.append(&dir.join("log"), b"x", false).unwrap();
        replace_file(&RealIo, &dir.join("replaced"), b"x").unwrap();
        replace_file_unsynced(&RealIo, &dir.join("cache"), b"x").unwrap();
        let pid = d.path().join("mounts/x.pid");
        create_private_dir(pid.parent().unwrap()).unwrap();
        write_private(&pid, b"1").unwrap();
        open_private_append(&d.path().join("mounts/x.log")).unwrap();
        assert_eq!(mode(&d.path().join("mounts")), DIR_MODE);
        for name in ["new", "log", "replaced", "cache"] {
            assert_eq!(mode(&dir.join(name)), FILE_MODE, "{name}");
        }
        assert_eq!(mode(&pid), FILE_MODE);
        assert_eq!(mode(&d.path().join("mounts/x.log")), FILE_MODE);
    }

    #[test]
    fn real_io_never_follows_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        fs::write(&target, b"precious").unwrap();
        let other_dir = d.path().join("elsewhere");
        fs::create_dir(&other_dir).unwrap();
        let link = d.path().join("link");
        symlink(&target, &link).unwrap();
        let dir_link = d.path().join("dir_link");
        symlink(&other_dir, &dir_link).unwrap();
        let refused_here = |r: io::Result<()>, p: &Path| {
            let e = StorageError::io("op", p, r.expect_err("followed a symlink"));
            let u = refusal(&e).unwrap_or_else(|| panic!("not a refusal: {}", e.report()));
            assert_eq!(u.path, p);
        };
        refused_here(RealIo.read(&link).map(drop), &link);
        refused_here(RealIo.read_at(&link, 0, 4).map(drop), &link);
        refused_here(RealIo.len(&link).map(drop), &link);
        refused_here(RealIo.append(&link, b"x", true), &link);
        refused_here(RealIo.truncate(&link, 0), &link);
        refused_here(RealIo.create_dir(&dir_link), &dir_link);
        refused_here(RealIo.list(&dir_link).map(drop), &dir_link);
        refused_here(RealIo.sync_dir(&dir_link), &dir_link);
        refused_here(write_private(&link, b"1"), &link);
        let e = RealIo.write_new(&link, b"x", true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert!(fs::read_dir(&other_dir).unwrap().next().is_none());
        // Replacing a file renames over the link itself, never its target.
        replace_file(&RealIo, &link, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn exposure_names_what_others_can_read() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let f = d.path().join("f");
        RealIo.write_new(&f, b"x", false).unwrap();
        assert_eq!(exposed_paths(d.path(), &[]), Exposure::default());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o604)).unwrap();
        let e = exposed_paths(d.path(), &[]);
        assert_eq!((e.count, e.first), (1, Some((f.clone(), 0o604))));
        assert_eq!(exposed_paths(d.path(), &[f]).count, 0);
    }
}
