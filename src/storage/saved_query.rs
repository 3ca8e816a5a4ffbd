//! Saved queries: named texts under `queries/<name>/`, one immutable file
//! per version (`<version>.sql`, deletions `<version>.deleted`; see
//! [`super::revisions`] and docs/FORMAT.md section 11).
//!
//! Storage does not read the text: it is UTF-8, at most [`MAX_QUERY_BYTES`];
//! whether it is a valid query is the query layer's business.

use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::Io;
use super::names;
use super::revisions;

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

fn dir_of(root: &Path, name: &str) -> Result<PathBuf> {
    names::validate(name)?;
    Ok(root.join(QUERIES_DIR).join(name))
}

fn saved(name: &str, r: revisions::Revision) -> SavedQuery {
    SavedQuery {
        name: name.to_string(),
        version: r.version,
        ts_us: r.ts_us,
        text: r.text,
    }
}

/// Every version of saved query `name`, oldest first.
pub(crate) fn history(io: &dyn Io, root: &Path, name: &str) -> Result<Vec<SavedQuery>> {
    let revs = revisions::history(io, &dir_of(root, name)?, "sql", None)?;
    Ok(revs.into_iter().map(|r| saved(name, r)).collect())
}

/// The current text of saved query `name`, None when never saved or deleted.
pub(crate) fn current(io: &dyn Io, root: &Path, name: &str) -> Result<Option<SavedQuery>> {
    let rev = revisions::current(io, &dir_of(root, name)?, "sql", None)?;
    Ok(rev.map(|r| saved(name, r)))
}

/// Whether saved query `name` currently exists.
pub(crate) fn exists(io: &dyn Io, root: &Path, name: &str) -> Result<bool> {
    revisions::exists(io, &dir_of(root, name)?, "sql", None)
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
        if names::validate(&n).is_ok() && revisions::exists(io, &dir.join(&n), "sql", None)? {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a new version of `name`: its text, or a deletion (`None`).
/// Durable when it returns.
pub(crate) fn write(
    io: &dyn Io,
    root: &Path,
    node: &str,
    name: &str,
    text: Option<&str>,
) -> Result<SavedQuery> {
    let dir = dir_of(root, name)?;
    if let Some(t) = text
        && t.len() > MAX_QUERY_BYTES
    {
        return Err(StorageError::Invalid {
            what: format!("saved query {name:?}"),
            reason: format!("longer than {MAX_QUERY_BYTES} bytes"),
        });
    }
    let rev = revisions::write(io, &dir, "sql", node, text)?;
    Ok(saved(name, rev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealIo;

    #[test]
    fn saves_versions_deletes_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let (io, root) = (RealIo, dir.path());
        write(&io, root, "n1", "top", Some("SELECT 1")).unwrap();
        write(&io, root, "n1", "other", Some("SELECT 3")).unwrap();
        assert_eq!(list(&io, root).unwrap(), ["other", "top"]);
        write(&io, root, "n1", "top", None).unwrap();
        assert_eq!(current(&io, root, "top").unwrap(), None);
        assert_eq!(list(&io, root).unwrap(), ["other"]);
        assert_eq!(history(&io, root, "top").unwrap().len(), 2);
        assert!(write(&io, root, "n1", "../x", Some("SELECT 1")).is_err());
        assert!(current(&io, root, "a/b").is_err());
        let huge = "x".repeat(MAX_QUERY_BYTES + 1);
        assert!(write(&io, root, "n1", "big", Some(&huge)).is_err());
    }
}
