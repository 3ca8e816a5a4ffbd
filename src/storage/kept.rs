//! Bytes kept for the user outside the history of any table:
//!
//! - `rejected/<name>`: the bytes of a refused save (invalid content, a
//!   failure of the store), shown by the mount under `@rejected/`;
//! - `unsaved/<name>`: a save in progress that an fsync made durable before
//!   its commit (the commit happens at close). Removed once the save
//!   commits or is refused (then its bytes are in `rejected/`); a file left
//!   behind by a daemon that died is moved into `rejected/` by
//!   [`recover_unsaved`].
//!
//! Every file is written with `replace_file` (fsynced, renamed, directory
//! fsynced): durable when the call returns.

use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::{Io, TEMP_MARKER, replace_file, sync_parent};
use super::names;

pub const REJECTED_DIR: &str = "rejected";
pub const UNSAVED_DIR: &str = "unsaved";

/// A kept file's name is one path component, shown in a listing: no `/`,
/// no leading dot (temp files), no control characters.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains(TEMP_MARKER)
        && !name.chars().any(char::is_control)
}

fn path_of(root: &Path, dir: &str, name: &str) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(StorageError::NotFound {
            kind: "kept file",
            name: format!("{dir}/{name}"),
        });
    }
    Ok(root.join(dir).join(name))
}

fn create_dir(io: &dyn Io, dir: &Path) -> Result<()> {
    io.create_dir(dir)
        .map_err(|e| StorageError::io("create", dir, e))
}

/// Keeps `bytes` as `rejected/<stem>-<time>.<ext>` (a number added when the
/// name is taken); returns the name.
pub fn keep_rejected(
    io: &dyn Io,
    root: &Path,
    stem: &str,
    ext: &str,
    bytes: &[u8],
) -> Result<String> {
    let dir = root.join(REJECTED_DIR);
    create_dir(io, &dir)?;
    let ts = names::format_ts(names::now_us());
    let mut name = format!("{stem}-{ts}.{ext}");
    let mut n = 1;
    while io
        .len(&dir.join(&name))
        .map_err(|e| StorageError::io("stat", dir.join(&name), e))?
        .is_some()
    {
        n += 1;
        name = format!("{stem}-{ts}-{n}.{ext}");
    }
    replace_file(io, &dir.join(&name), bytes)?;
    Ok(name)
}

/// Names of the kept refused files, sorted.
pub fn rejected_names(io: &dyn Io, root: &Path) -> Result<Vec<String>> {
    let dir = root.join(REJECTED_DIR);
    let mut v = match io.list(&dir) {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StorageError::io("list", &dir, e)),
    };
    v.retain(|n| valid_name(n));
    v.sort();
    Ok(v)
}

/// The length of kept refused file `name` (a stat, not a read: `ls -l
/// @rejected/` must not read every kept file).
pub fn rejected_len(io: &dyn Io, root: &Path, name: &str) -> Result<u64> {
    let path = path_of(root, REJECTED_DIR, name)?;
    match io.len(&path) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(StorageError::NotFound {
            kind: "kept file",
            name: format!("{REJECTED_DIR}/{name}"),
        }),
        Err(e) => Err(StorageError::io("stat", &path, e)),
    }
}

/// The bytes of kept refused file `name`.
pub fn read_rejected(io: &dyn Io, root: &Path, name: &str) -> Result<Vec<u8>> {
    let path = path_of(root, REJECTED_DIR, name)?;
    io.read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StorageError::NotFound {
            kind: "kept file",
            name: format!("{REJECTED_DIR}/{name}"),
        },
        _ => StorageError::io("read", &path, e),
    })
}

/// A name for the unsaved bytes of a save in progress of `stem`: unique,
/// and holding this process's id, so recovery leaves a live daemon's files
/// alone.
pub fn new_unsaved_name(stem: &str, ext: &str) -> String {
    let ts = names::format_ts(names::now_us());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{stem}-unsaved-{ts}-p{}-{}.{ext}",
        std::process::id(),
        &random[..6]
    )
}

/// Makes `bytes` durable as `unsaved/<name>` (replacing an earlier copy).
pub fn save_unsaved(io: &dyn Io, root: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = path_of(root, UNSAVED_DIR, name)?;
    create_dir(io, &root.join(UNSAVED_DIR))?;
    replace_file(io, &path, bytes)
}

/// Removes `unsaved/<name>` (no error when it is gone).
pub fn remove_unsaved(io: &dyn Io, root: &Path, name: &str) -> Result<()> {
    super::io::remove_file_durably(io, &path_of(root, UNSAVED_DIR, name)?)
}

/// The pid in an unsaved file's name (`...-p<pid>-...`).
fn owner_pid(name: &str) -> Option<i32> {
    let rest = &name[name.rfind("-p")? + 2..];
    rest.split('-').next()?.parse().ok()
}

pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Moves the unsaved files of processes that are gone into `rejected/`;
/// returns their names there.
pub fn recover_unsaved(io: &dyn Io, root: &Path) -> Result<Vec<String>> {
    let dir = root.join(UNSAVED_DIR);
    let names = match io.list(&dir) {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("list", &dir, e)),
    };
    let mut moved = Vec::new();
    for name in names {
        if !valid_name(&name) || owner_pid(&name).is_some_and(alive) {
            continue;
        }
        let to = root.join(REJECTED_DIR);
        create_dir(io, &to)?;
        io.rename(&dir.join(&name), &to.join(&name))
            .map_err(|e| StorageError::io("rename", dir.join(&name), e))?;
        sync_parent(io, &to.join(&name))?;
        moved.push(name);
    }
    if !moved.is_empty() {
        io.sync_dir(&dir)
            .map_err(|e| StorageError::io("fsync directory", &dir, e))?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealIo;

    #[test]
    fn rejected_bytes_are_kept_under_unique_names() {
        let d = tempfile::tempdir().unwrap();
        let a = keep_rejected(&RealIo, d.path(), "users", "csv", b"one").unwrap();
        let b = keep_rejected(&RealIo, d.path(), "users", "csv", b"two").unwrap();
        assert_ne!(a, b);
        assert_eq!(rejected_names(&RealIo, d.path()).unwrap().len(), 2);
        assert_eq!(read_rejected(&RealIo, d.path(), &a).unwrap(), b"one");
        assert!(read_rejected(&RealIo, d.path(), "../x").is_err());
    }

    #[test]
    fn unsaved_files_of_dead_processes_move_to_rejected() {
        let d = tempfile::tempdir().unwrap();
        let mine = new_unsaved_name("users", "csv");
        save_unsaved(&RealIo, d.path(), &mine, b"live").unwrap();
        // A name whose process is gone (pid far beyond pid_max).
        let dead = "users-unsaved-20260101T000000.000000Z-p2000000000-abcdef.csv";
        save_unsaved(&RealIo, d.path(), dead, b"dead").unwrap();
        assert_eq!(recover_unsaved(&RealIo, d.path()).unwrap(), [dead]);
        assert_eq!(read_rejected(&RealIo, d.path(), dead).unwrap(), b"dead");
        remove_unsaved(&RealIo, d.path(), &mine).unwrap();
        assert!(recover_unsaved(&RealIo, d.path()).unwrap().is_empty());
    }
}
