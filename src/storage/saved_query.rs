//! Saved queries: named texts kept in the backing store, versioned like
//! everything else and made of immutable files, so sync can copy them.
//!
//! Layout: `queries/<name>/<version>.sql` holds one saved text;
//! `queries/<name>/<version>.deleted` (empty) records a deletion. Version
//! names are those of table versions (`<UTC µs>-<node>`), so the newest
//! file by name is the current state, and two sites that save the same
//! name keep both texts; the later one wins everywhere.
//!
//! Storage does not read the text: it is UTF-8, at most [`MAX_QUERY_BYTES`];
//! whether it is a valid query is the query layer's business.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::{Result, StorageError};
use super::io::{Io, replace_file, temp_in_flight};
use super::names;

/// The directory of saved queries in a database root.
pub const QUERIES_DIR: &str = "queries";

/// Largest saved text (ReedQL refuses longer queries anyway).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// One version of a saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    pub name: String,
    /// `<UTC µs>-<node>`, as table versions are named.
    pub version: String,
    pub ts_us: u64,
    /// None: this version deleted the query.
    pub text: Option<String>,
}

/// Last timestamp handed out, so versions saved in the same microsecond
/// by this process still sort in the order they were made.
static LAST_TS: Mutex<u64> = Mutex::new(0);

fn next_ts(after: u64) -> u64 {
    let mut last = LAST_TS.lock().unwrap_or_else(|p| p.into_inner());
    let ts = names::now_us().max(*last + 1).max(after + 1);
    *last = ts;
    ts
}

fn dir_of(root: &Path, name: &str) -> PathBuf {
    root.join(QUERIES_DIR).join(name)
}

/// Versions in `dir`, oldest first: (file stem, is a deletion).
fn version_files(io: &dyn Io, dir: &Path) -> Result<Vec<(String, bool)>> {
    let files = match io.list(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("list", dir, e)),
    };
    let mut out: Vec<(String, bool)> = files
        .into_iter()
        .filter(|f| !f.starts_with('.') && !temp_in_flight(f))
        .filter_map(|f| {
            if let Some(stem) = f.strip_suffix(".sql") {
                Some((stem.to_string(), false))
            } else {
                f.strip_suffix(".deleted").map(|s| (s.to_string(), true))
            }
        })
        .collect();
    out.sort();
    Ok(out)
}

fn ts_of(version: &str) -> u64 {
    names::parse_time(version, 0).unwrap_or(0)
}

fn load(io: &dyn Io, root: &Path, name: &str, version: &str, deleted: bool) -> Result<SavedQuery> {
    let text = if deleted {
        None
    } else {
        let path = dir_of(root, name).join(format!("{version}.sql"));
        let bytes = io
            .read(&path)
            .map_err(|e| StorageError::io("read", &path, e))?;
        Some(
            String::from_utf8(bytes)
                .map_err(|_| StorageError::corrupt(&path, "saved query is not UTF-8"))?,
        )
    };
    Ok(SavedQuery {
        name: name.to_string(),
        version: version.to_string(),
        ts_us: ts_of(version),
        text,
    })
}

/// Every version of saved query `name`, oldest first.
pub(crate) fn history(io: &dyn Io, root: &Path, name: &str) -> Result<Vec<SavedQuery>> {
    names::validate(name)?;
    version_files(io, &dir_of(root, name))?
        .into_iter()
        .map(|(v, deleted)| load(io, root, name, &v, deleted))
        .collect()
}

/// The current text of saved query `name`, None when never saved or deleted.
pub(crate) fn current(io: &dyn Io, root: &Path, name: &str) -> Result<Option<SavedQuery>> {
    names::validate(name)?;
    match version_files(io, &dir_of(root, name))?.pop() {
        Some((v, false)) => load(io, root, name, &v, false).map(Some),
        _ => Ok(None),
    }
}

/// Names of the saved queries that currently exist, sorted.
pub(crate) fn list(io: &dyn Io, root: &Path) -> Result<Vec<String>> {
    let dir = root.join(QUERIES_DIR);
    let names = match io.list(&dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("list", &dir, e)),
    };
    let mut out = Vec::new();
    for n in names {
        if names::validate(&n).is_err() {
            continue;
        }
        if let Some((_, false)) = version_files(io, &dir_of(root, &n))?.last() {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a new version of `name`: its text, or a deletion (`None`).
/// Durable when it returns (file and directory fsynced).
pub(crate) fn write(
    io: &dyn Io,
    root: &Path,
    node: &str,
    name: &str,
    text: Option<&str>,
) -> Result<SavedQuery> {
    names::validate(name)?;
    if let Some(t) = text
        && t.len() > MAX_QUERY_BYTES
    {
        return Err(StorageError::Invalid {
            what: format!("saved query {name:?}"),
            reason: format!("longer than {MAX_QUERY_BYTES} bytes"),
        });
    }
    let dir = dir_of(root, name);
    for d in [root.join(QUERIES_DIR), dir.clone()] {
        io.create_dir(&d)
            .map_err(|e| StorageError::io("create", &d, e))?;
    }
    let newest = version_files(io, &dir)?
        .last()
        .map(|(v, _)| ts_of(v))
        .unwrap_or(0);
    let ts = next_ts(newest);
    let version = names::version_name(ts, node);
    let ext = if text.is_some() { "sql" } else { "deleted" };
    let path = dir.join(format!("{version}.{ext}"));
    replace_file(io, &path, text.unwrap_or("").as_bytes())?;
    Ok(SavedQuery {
        name: name.to_string(),
        version,
        ts_us: ts,
        text: text.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealIo;

    #[test]
    fn saves_versions_deletes_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let (io, root) = (RealIo, dir.path());
        assert_eq!(current(&io, root, "top").unwrap(), None);
        let a = write(&io, root, "n1", "top", Some("SELECT 1")).unwrap();
        let b = write(&io, root, "n1", "top", Some("SELECT 2")).unwrap();
        assert!(a.version < b.version, "versions sort in save order");
        write(&io, root, "n1", "other", Some("SELECT 3")).unwrap();
        assert_eq!(
            current(&io, root, "top").unwrap().unwrap().text.as_deref(),
            Some("SELECT 2")
        );
        assert_eq!(list(&io, root).unwrap(), ["other", "top"]);
        write(&io, root, "n1", "top", None).unwrap();
        assert_eq!(current(&io, root, "top").unwrap(), None);
        assert_eq!(list(&io, root).unwrap(), ["other"]);
        let h = history(&io, root, "top").unwrap();
        let texts: Vec<_> = h.iter().map(|q| q.text.as_deref()).collect();
        assert_eq!(texts, [Some("SELECT 1"), Some("SELECT 2"), None]);
        assert!(h[0].ts_us > 0 && h[0].ts_us <= h[1].ts_us);
        assert!(write(&io, root, "n1", "../x", Some("SELECT 1")).is_err());
        assert!(current(&io, root, "a/b").is_err());
        let huge = "x".repeat(MAX_QUERY_BYTES + 1);
        assert!(write(&io, root, "n1", "big", Some(&huge)).is_err());
    }
}
