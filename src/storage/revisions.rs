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
//!
//! A frame that changes a schema stages its revision first, as
//! `.frame-<id>.<ext>` (or `.frame-<id>.deleted`), and publishes it under
//! its version name after its commit point (storage/frame.rs). A dot name
//! never travels and is no version by itself: readers count a staged file
//! only when the caller's [`Staging`] says its frame committed, and under
//! which version name; otherwise it is invisible, like the frame's log lines.

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

/// Says, for a staged file's frame id, the version name it counts under:
/// None while its frame is undecided or when it aborted.
pub(crate) type Staging<'a> = Option<&'a dyn Fn(&str) -> Result<Option<String>>>;

const STAGED_PREFIX: &str = ".frame-";

/// The file a frame stages a revision in (`text` None: a deletion).
pub(crate) fn staged_file(frame: &str, ext: &str, deleted: bool) -> String {
    if deleted {
        format!("{STAGED_PREFIX}{frame}.deleted")
    } else {
        format!("{STAGED_PREFIX}{frame}.{ext}")
    }
}

/// A staged file's (frame id, is a deletion).
fn parse_staged(name: &str, ext: &str) -> Option<(String, bool)> {
    let rest = name.strip_prefix(STAGED_PREFIX)?;
    if let Some(id) = rest.strip_suffix(&format!(".{ext}")) {
        return Some((id.to_string(), false));
    }
    rest.strip_suffix(".deleted")
        .map(|id| (id.to_string(), true))
}

/// One version found in a directory.
struct Found {
    version: String,
    deleted: bool,
    /// The file holding it (a staged file until it is published).
    file: String,
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

fn list(io: &dyn Io, dir: &Path) -> Result<Vec<String>> {
    match io.list(dir) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io("list", dir, e)),
    }
}

/// Versions in `dir`, oldest first, with the staged files `staging` counts.
fn version_files(io: &dyn Io, dir: &Path, ext: &str, staging: Staging) -> Result<Vec<Found>> {
    let dot_ext = format!(".{ext}");
    let mut out = Vec::new();
    for f in list(io, dir)? {
        if let Some((frame, deleted)) = parse_staged(&f, ext) {
            if let Some(version) = staging.map(|s| s(&frame)).transpose()?.flatten() {
                out.push(Found {
                    version,
                    deleted,
                    file: f,
                });
            }
            continue;
        }
        if f.starts_with('.') || temp_in_flight(&f) {
            continue;
        }
        let found = if let Some(stem) = f.strip_suffix(dot_ext.as_str()) {
            (stem.to_string(), false)
        } else if let Some(stem) = f.strip_suffix(".deleted") {
            (stem.to_string(), true)
        } else {
            continue;
        };
        out.push(Found {
            version: found.0,
            deleted: found.1,
            file: f,
        });
    }
    // A staged file published meanwhile may be listed twice: once is enough.
    out.sort_by(|a, b| a.version.cmp(&b.version));
    out.dedup_by(|a, b| a.version == b.version);
    Ok(out)
}

fn load(io: &dyn Io, dir: &Path, found: &Found) -> Result<Revision> {
    let (version, deleted) = (&found.version, found.deleted);
    let text = if deleted {
        None
    } else {
        let path = dir.join(&found.file);
        let bytes = match io.read(&path) {
            Ok(b) => b,
            // A staged file its frame published since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && found.file.starts_with('.') => {
                let published = dir.join(format!(
                    "{version}.{}",
                    found.file.rsplit('.').next().unwrap_or_default()
                ));
                io.read(&published)
                    .map_err(|e| StorageError::io("read", &published, e))?
            }
            Err(e) => return Err(StorageError::io("read", &path, e)),
        };
        Some(String::from_utf8(bytes).map_err(|_| StorageError::corrupt(&path, "not UTF-8"))?)
    };
    Ok(Revision {
        version: version.to_string(),
        ts_us: names::parse_time(version, 0).unwrap_or(0),
        text,
    })
}

/// Every version in `dir`, oldest first.
pub(crate) fn history(
    io: &dyn Io,
    dir: &Path,
    ext: &str,
    staging: Staging,
) -> Result<Vec<Revision>> {
    version_files(io, dir, ext, staging)?
        .iter()
        .map(|f| load(io, dir, f))
        .collect()
}

/// The current text in `dir`: None when there never was one or the newest
/// version deleted it.
pub(crate) fn current(
    io: &dyn Io,
    dir: &Path,
    ext: &str,
    staging: Staging,
) -> Result<Option<Revision>> {
    match version_files(io, dir, ext, staging)?.pop() {
        Some(f) if !f.deleted => load(io, dir, &f).map(Some),
        _ => Ok(None),
    }
}

/// Whether `dir` has a current text (without reading it).
pub(crate) fn exists(io: &dyn Io, dir: &Path, ext: &str, staging: Staging) -> Result<bool> {
    Ok(newest(io, dir, ext, staging)?.is_some())
}

/// The version name of the current text (without reading it); None when
/// there is none.
pub(crate) fn newest(
    io: &dyn Io,
    dir: &Path,
    ext: &str,
    staging: Staging,
) -> Result<Option<String>> {
    Ok(match version_files(io, dir, ext, staging)?.pop() {
        Some(f) if !f.deleted => Some(f.version),
        _ => None,
    })
}

/// The newest version's time (a deletion's too), 0 when there is none:
/// a version written after it must be later.
pub(crate) fn newest_ts(io: &dyn Io, dir: &Path, ext: &str, staging: Staging) -> Result<u64> {
    Ok(version_files(io, dir, ext, staging)?
        .last()
        .map(|f| names::parse_time(&f.version, 0).unwrap_or(0))
        .unwrap_or(0))
}

/// Creates `dir` durably (and its parent's entry) when it is not there.
fn ensure_dir(io: &dyn Io, dir: &Path) -> Result<()> {
    if io.len(dir).ok().flatten().is_none() {
        io.create_dir(dir)
            .map_err(|e| StorageError::io("create", dir, e))?;
        sync_parent(io, dir)?;
        if let Some(parent) = dir.parent() {
            sync_parent(io, parent)?;
        }
    }
    Ok(())
}

/// Stages frame `frame`'s revision in `dir` (`text` None: a deletion),
/// durably; invisible until [`publish_staged`] or a [`Staging`] counts it.
pub(crate) fn write_staged(
    io: &dyn Io,
    dir: &Path,
    ext: &str,
    frame: &str,
    text: Option<&str>,
) -> Result<()> {
    ensure_dir(io, dir)?;
    let path = dir.join(staged_file(frame, ext, text.is_none()));
    // Whole or absent after a crash: recovery takes its presence for
    // "written", so it must never be torn (a temp file, then a rename).
    let tmp = temp_path_for(&path);
    io.write_new(&tmp, text.unwrap_or("").as_bytes(), true)
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    if let Err(e) = io.rename(&tmp, &path) {
        let _ = io.remove(&tmp);
        return Err(StorageError::io("rename", &path, e));
    }
    sync_parent(io, &path)
}

/// The frames with a staged file in `dir`: (frame id, is a deletion).
pub(crate) fn staged(io: &dyn Io, dir: &Path, ext: &str) -> Result<Vec<(String, bool)>> {
    Ok(list(io, dir)?
        .iter()
        .filter_map(|f| parse_staged(f, ext))
        .collect())
}

/// Publishes frame `frame`'s staged file as version `version` (after the
/// frame's commit point). Idempotent: a file published before stays.
pub(crate) fn publish_staged(
    io: &dyn Io,
    dir: &Path,
    ext: &str,
    frame: &str,
    deleted: bool,
    version: &str,
) -> Result<()> {
    let from = dir.join(staged_file(frame, ext, deleted));
    let to = if deleted {
        dir.join(format!("{version}.deleted"))
    } else {
        dir.join(format!("{version}.{ext}"))
    };
    match io.rename_noreplace(&from, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            super::io::remove_if_exists(io, &from)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("rename", &from, e)),
    }
    sync_parent(io, &to)
}

/// Removes frame `frame`'s staged file (its frame aborted).
pub(crate) fn remove_staged(io: &dyn Io, dir: &Path, ext: &str, frame: &str) -> Result<()> {
    for deleted in [false, true] {
        super::io::remove_file_durably(io, &dir.join(staged_file(frame, ext, deleted)))?;
    }
    Ok(())
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
    ensure_dir(io, dir)?;
    let mut newest = newest_ts(io, dir, ext, None)?;
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
        assert_eq!(current(&io, &dir, "sql", None).unwrap(), None);
        assert!(!exists(&io, &dir, "sql", None).unwrap());
        let a = write(&io, &dir, "sql", "n1", Some("SELECT 1")).unwrap();
        let b = write(&io, &dir, "sql", "n1", Some("SELECT 2")).unwrap();
        assert!(a.version < b.version && a.ts_us < b.ts_us);
        assert_eq!(
            current(&io, &dir, "sql", None)
                .unwrap()
                .unwrap()
                .text
                .as_deref(),
            Some("SELECT 2")
        );
        // A leftover temp file of a crashed write is not a version.
        std::fs::write(dir.join(".x.sql.tmp"), "junk").unwrap();
        write(&io, &dir, "sql", "n1", None).unwrap();
        assert_eq!(current(&io, &dir, "sql", None).unwrap(), None);
        assert!(!exists(&io, &dir, "sql", None).unwrap());
        let texts: Vec<_> = history(&io, &dir, "sql", None)
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
