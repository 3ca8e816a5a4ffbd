//! Revisions: small texts (saved queries, table schemas) kept as one
//! immutable file per version in a directory of their own, so they are
//! versioned like tables and sync can copy them like deltas.
//!
//! A directory holds `<version>.<ext>` files, each one whole text, and
//! `<version>.deleted` files (empty) that record a deletion. Version names
//! are those of table versions (`<UTC µs>-<node>`), made later than the
//! newest one present, so the newest file by name is the current state.
//! A file is written to a temp name, fsynced, renamed and its directory
//! fsynced: after a crash it is absent or whole, and a leftover temp file
//! (a dot name) is ignored.

use std::path::Path;
use std::sync::Mutex;

use super::error::{Result, StorageError};
use super::io::{Io, sync_parent, temp_in_flight, temp_path_for};
use super::names;

/// One version of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// `<UTC µs>-<node>`, as table versions are named.
    pub version: String,
    pub ts_us: u64,
    /// None: this version deleted the text.
    pub text: Option<String>,
}

/// Last timestamp handed out, so versions made in the same microsecond by
/// this process still sort in the order they were made.
static LAST_TS: Mutex<u64> = Mutex::new(0);

fn next_ts(after: u64) -> u64 {
    let mut last = LAST_TS.lock().unwrap_or_else(|p| p.into_inner());
    let ts = names::now_us().max(*last + 1).max(after + 1);
    *last = ts;
    ts
}

/// Versions in `dir`, oldest first: (version name, is a deletion).
fn version_files(io: &dyn Io, dir: &Path, ext: &str) -> Result<Vec<(String, bool)>> {
    let files = match io.list(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("list", dir, e)),
    };
    let dot_ext = format!(".{ext}");
    let mut out: Vec<(String, bool)> = files
        .into_iter()
        .filter(|f| !f.starts_with('.') && !temp_in_flight(f))
        .filter_map(|f| {
            if let Some(stem) = f.strip_suffix(dot_ext.as_str()) {
                Some((stem.to_string(), false))
            } else {
                f.strip_suffix(".deleted").map(|s| (s.to_string(), true))
            }
        })
        .collect();
    out.sort();
    Ok(out)
}

fn load(io: &dyn Io, dir: &Path, ext: &str, version: &str, deleted: bool) -> Result<Revision> {
    let text = if deleted {
        None
    } else {
        let path = dir.join(format!("{version}.{ext}"));
        let bytes = io
            .read(&path)
            .map_err(|e| StorageError::io("read", &path, e))?;
        Some(String::from_utf8(bytes).map_err(|_| StorageError::corrupt(&path, "not UTF-8"))?)
    };
    Ok(Revision {
        version: version.to_string(),
        ts_us: names::parse_time(version, 0).unwrap_or(0),
        text,
    })
}

/// Every version in `dir`, oldest first.
pub(crate) fn history(io: &dyn Io, dir: &Path, ext: &str) -> Result<Vec<Revision>> {
    version_files(io, dir, ext)?
        .into_iter()
        .map(|(v, deleted)| load(io, dir, ext, &v, deleted))
        .collect()
}

/// The current text in `dir`: None when there never was one or the newest
/// version deleted it.
pub(crate) fn current(io: &dyn Io, dir: &Path, ext: &str) -> Result<Option<Revision>> {
    match version_files(io, dir, ext)?.pop() {
        Some((v, false)) => load(io, dir, ext, &v, false).map(Some),
        _ => Ok(None),
    }
}

/// Whether `dir` has a current text (without reading it).
pub(crate) fn exists(io: &dyn Io, dir: &Path, ext: &str) -> Result<bool> {
    Ok(newest(io, dir, ext)?.is_some())
}

/// The version name of the current text (without reading it); None when
/// there is none.
pub(crate) fn newest(io: &dyn Io, dir: &Path, ext: &str) -> Result<Option<String>> {
    Ok(match version_files(io, dir, ext)?.pop() {
        Some((v, false)) => Some(v),
        _ => None,
    })
}

/// Writes a new version in `dir` (created if needed): a text, or a
/// deletion (`None`). Durable when it returns.
pub(crate) fn write(
    io: &dyn Io,
    dir: &Path,
    ext: &str,
    node: &str,
    text: Option<&str>,
) -> Result<Revision> {
    // The directory (and its parent: `queries/`, `schema/`'s table) made
    // durable before the first version lands in it.
    if io.len(dir).ok().flatten().is_none() {
        io.create_dir(dir)
            .map_err(|e| StorageError::io("create", dir, e))?;
        sync_parent(io, dir)?;
        if let Some(parent) = dir.parent() {
            sync_parent(io, parent)?;
        }
    }
    let mut newest = version_files(io, dir, ext)?
        .last()
        .map(|(v, _)| names::parse_time(v, 0).unwrap_or(0))
        .unwrap_or(0);
    // Written whole under a temp name, then published under a name no
    // other version has: a process on the same node that saved in the same
    // microsecond made that name first, so take the next one.
    let bytes = text.unwrap_or("").as_bytes();
    let tmp = temp_path_for(&dir.join(format!("new.{ext}")));
    io.write_new(&tmp, bytes, true)
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    for _ in 0..1000 {
        let ts = next_ts(newest);
        let version = names::version_name(ts, node);
        let path = match text {
            Some(_) => dir.join(format!("{version}.{ext}")),
            None => dir.join(format!("{version}.deleted")),
        };
        match io.rename_noreplace(&tmp, &path) {
            Ok(()) => {
                sync_parent(io, &path)?;
                return Ok(Revision {
                    version,
                    ts_us: ts,
                    text: text.map(str::to_string),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => newest = ts,
            Err(e) => {
                let _ = io.remove(&tmp);
                return Err(StorageError::io("rename", &path, e));
            }
        }
    }
    let _ = io.remove(&tmp);
    Err(StorageError::Invalid {
        what: dir.display().to_string(),
        reason: "no free version name after 1000 tries".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealIo;

    #[test]
    fn publishing_never_replaces_a_version() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, "new").unwrap();
        std::fs::write(&b, "taken").unwrap();
        let e = RealIo.rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "taken");
        std::fs::remove_file(&b).unwrap();
        RealIo.rename_noreplace(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new");
    }

    #[test]
    fn versions_sort_in_save_order_and_deletions_count() {
        let tmp = tempfile::tempdir().unwrap();
        let (io, dir) = (RealIo, tmp.path().join("q"));
        assert_eq!(current(&io, &dir, "sql").unwrap(), None);
        assert!(!exists(&io, &dir, "sql").unwrap());
        let a = write(&io, &dir, "sql", "n1", Some("SELECT 1")).unwrap();
        let b = write(&io, &dir, "sql", "n1", Some("SELECT 2")).unwrap();
        assert!(a.version < b.version && a.ts_us < b.ts_us);
        assert_eq!(
            current(&io, &dir, "sql").unwrap().unwrap().text.as_deref(),
            Some("SELECT 2")
        );
        // A leftover temp file of a crashed write is not a version.
        std::fs::write(dir.join(".x.sql.tmp"), "junk").unwrap();
        write(&io, &dir, "sql", "n1", None).unwrap();
        assert_eq!(current(&io, &dir, "sql").unwrap(), None);
        assert!(!exists(&io, &dir, "sql").unwrap());
        let texts: Vec<_> = history(&io, &dir, "sql")
            .unwrap()
            .into_iter()
            .map(|r| r.text)
            .collect();
        assert_eq!(
            texts,
            [
                Some("SELECT 1".to_string()),
                Some("SELECT 2".to_string()),
                None
            ]
        );
    }
}
