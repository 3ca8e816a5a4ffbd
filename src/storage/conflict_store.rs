//! Conflict records: `conflicts/<id>.{toml,csv,ours}` (docs/FORMAT.md,
//! section 1), left by refused merges (`merge::conflicts`) and by values
//! sync kept (`sync`). Storage owns their layout and format (the metadata's
//! fields, the cells file's columns) and how they are written; the layers
//! above own how a record comes about and how it is resolved.
//!
//! Invariants:
//! - a record is complete iff its metadata file (`<id>.toml`) exists: it is
//!   written last and removed first, so a crash in between leaves at most
//!   files no listing shows, never a listed record missing a part;
//! - every file is written with `replace_file` (temp, fsync, rename,
//!   directory fsync) through `Io`, so it is durable when the call returns
//!   and private (0600 in a 0700 directory) whatever the umask;
//! - an id is one path component (no `/`, no leading dot, no temp marker):
//!   nothing outside `conflicts/` is ever named through it.

use std::path::PathBuf;

use super::database::Database;
use super::error::{Result, StorageError};
use super::io::{remove_if_exists, replace_file, sync_parent};
use super::kept::valid_name;

pub const CONFLICTS_DIR: &str = "conflicts";

/// What a conflict is about (`<id>.toml`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConflictInfo {
    pub id: String,
    pub table: String,
    /// The version the refused writer started from (a sync conflict: the
    /// head it was recorded at).
    pub base: u64,
    /// The head it collided with.
    pub head: u64,
    pub cells: usize,
    pub ts_us: u64,
    /// `sync` for a value a concurrent save elsewhere overwrote; empty for
    /// a refused merge.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// One conflicting cell (`<id>.csv`); a row-level conflict has an empty
/// column. `ours` is the value not in the head (the refused write's, or
/// the one sync overwrote), `theirs` the head's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCell {
    pub key: String,
    pub column: String,
    pub base: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

/// The cells file: `cell|key|column|base|ours|theirs|resolved`, `cell`
/// numbering the lines (a row can conflict in several columns) and
/// `resolved` starting as the head's value: edit it and save to resolve.
pub fn cells_csv(cells: &[ConflictCell], delim: u8) -> Vec<u8> {
    let d = delim as char;
    let field = |v: &str| super::csv::quote_field(v, delim).into_owned();
    let mut out = format!("cell{d}key{d}column{d}base{d}ours{d}theirs{d}resolved\n");
    for (n, c) in cells.iter().enumerate() {
        let opt = |v: &Option<String>| v.as_deref().map(field).unwrap_or_default();
        let resolved = if c.column.is_empty() {
            String::new()
        } else {
            opt(&c.theirs)
        };
        out.push_str(&format!(
            "{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}\n",
            n + 1,
            field(&c.key),
            field(&c.column),
            opt(&c.base),
            opt(&c.ours),
            opt(&c.theirs),
            resolved
        ));
    }
    out.into_bytes()
}

fn meta_name(id: &str) -> PathBuf {
    PathBuf::from(format!("{CONFLICTS_DIR}/{id}.toml"))
}

/// The files of one conflict record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictFile {
    /// `<id>.toml`: which table and versions; marks the record complete.
    Meta,
    /// `<id>.csv`: the conflicting cells.
    Cells,
    /// `<id>.ours`: the refused writer's bytes.
    Ours,
}

impl ConflictFile {
    /// In the order they are removed (the marker first).
    const ALL: [ConflictFile; 3] = [ConflictFile::Meta, ConflictFile::Cells, ConflictFile::Ours];

    fn ext(self) -> &'static str {
        match self {
            ConflictFile::Meta => "toml",
            ConflictFile::Cells => "csv",
            ConflictFile::Ours => "ours",
        }
    }
}

fn not_found(id: &str) -> StorageError {
    StorageError::NotFound {
        kind: "conflict",
        name: id.to_string(),
    }
}

impl Database {
    fn conflicts_dir(&self) -> PathBuf {
        self.root().join(CONFLICTS_DIR)
    }

    /// The path of one file of conflict `id`; NotFound for an id that is
    /// not one path component (it cannot name a record).
    fn conflict_path(&self, id: &str, file: ConflictFile) -> Result<PathBuf> {
        if !valid_name(id) {
            return Err(not_found(id));
        }
        Ok(self.conflicts_dir().join(format!("{id}.{}", file.ext())))
    }

    /// Writes conflict `id` durably: the refused bytes and the cells first,
    /// the metadata last (its presence marks the record complete).
    pub fn put_conflict(&self, id: &str, meta: &[u8], cells: &[u8], ours: &[u8]) -> Result<()> {
        let [meta_path, cells_path, ours_path] =
            ConflictFile::ALL.map(|file| self.conflict_path(id, file));
        let (meta_path, cells_path, ours_path) = (meta_path?, cells_path?, ours_path?);
        let dir = self.conflicts_dir();
        self.io()
            .create_dir(&dir)
            .map_err(|e| StorageError::io("create", &dir, e))?;
        let io = &**self.io();
        replace_file(io, &ours_path, ours)?;
        replace_file(io, &cells_path, cells)?;
        replace_file(io, &meta_path, meta)
    }

    /// Writes conflict `info` (its id names it) with its cells and the
    /// bytes not in the head, durably; the metadata last.
    pub fn record_conflict(
        &self,
        info: &ConflictInfo,
        cells: &[ConflictCell],
        ours: &[u8],
    ) -> Result<()> {
        let meta = toml::to_string(info).map_err(|e| StorageError::Config {
            path: meta_name(&info.id),
            detail: e.to_string(),
        })?;
        let cells = cells_csv(cells, self.config().delimiter_byte());
        self.put_conflict(&info.id, meta.as_bytes(), &cells, ours)
    }

    /// The metadata of conflict `id`.
    pub fn conflict_info(&self, id: &str) -> Result<ConflictInfo> {
        // An id that is not one path component is NotFound (conflict_path).
        let bytes = self.read_conflict(id, ConflictFile::Meta)?;
        let bad = |detail: String| StorageError::Config {
            path: meta_name(id),
            detail,
        };
        let text = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        toml::from_str(&text).map_err(|e| bad(e.to_string()))
    }

    /// The ids of every complete conflict record, sorted by name.
    pub fn conflict_ids(&self) -> Result<Vec<String>> {
        let dir = self.conflicts_dir();
        let names = match self.io().list(&dir) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io("list", &dir, e)),
        };
        let suffix = format!(".{}", ConflictFile::Meta.ext());
        let mut ids: Vec<String> = names
            .iter()
            // Temp files of a write in progress are dot files: skipped.
            .filter(|n| valid_name(n))
            .filter_map(|n| n.strip_suffix(&suffix))
            .filter(|id| valid_name(id))
            .map(str::to_string)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// One file of conflict `id`; NotFound when the record (or that file)
    /// does not exist.
    pub fn read_conflict(&self, id: &str, file: ConflictFile) -> Result<Vec<u8>> {
        let path = self.conflict_path(id, file)?;
        self.io().read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(id),
            _ => StorageError::io("read", &path, e),
        })
    }

    /// Removes conflict `id` (no error when it is gone), the metadata first
    /// so that a crash midway leaves no listed record missing a part.
    pub fn remove_conflict(&self, id: &str) -> Result<()> {
        let mut removed = None;
        for file in ConflictFile::ALL {
            let path = self.conflict_path(id, file)?;
            if remove_if_exists(&**self.io(), &path)? {
                removed = Some(path);
            }
        }
        match removed {
            Some(path) => sync_parent(&**self.io(), &path),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::helpers_tests::{db, mode};
    use crate::storage::io::{DIR_MODE, FILE_MODE};

    #[test]
    fn a_conflict_round_trips_privately_and_is_removed() {
        let (_d, db) = db();
        assert!(db.conflict_ids().unwrap().is_empty());
        db.put_conflict("t-1", b"meta", b"cells", b"ours").unwrap();
        db.put_conflict("t-2", b"m2", b"c2", b"o2").unwrap();
        assert_eq!(db.conflict_ids().unwrap(), ["t-1", "t-2"]);
        assert_eq!(
            db.read_conflict("t-1", ConflictFile::Meta).unwrap(),
            b"meta"
        );
        assert_eq!(
            db.read_conflict("t-1", ConflictFile::Cells).unwrap(),
            b"cells"
        );
        assert_eq!(
            db.read_conflict("t-1", ConflictFile::Ours).unwrap(),
            b"ours"
        );
        // Replacing a record replaces its bytes.
        db.put_conflict("t-1", b"meta2", b"cells", b"ours").unwrap();
        assert_eq!(
            db.read_conflict("t-1", ConflictFile::Meta).unwrap(),
            b"meta2"
        );

        let dir = db.root().join(CONFLICTS_DIR);
        assert_eq!(mode(&dir), DIR_MODE);
        for ext in ["toml", "csv", "ours"] {
            assert_eq!(mode(&dir.join(format!("t-1.{ext}"))), FILE_MODE, "{ext}");
        }

        db.remove_conflict("t-1").unwrap();
        assert_eq!(db.conflict_ids().unwrap(), ["t-2"]);
        for file in ConflictFile::ALL {
            assert!(matches!(
                db.read_conflict("t-1", file),
                Err(StorageError::NotFound { .. })
            ));
        }
        for ext in ["toml", "csv", "ours"] {
            assert!(!dir.join(format!("t-1.{ext}")).exists(), "{ext}");
        }
        // Removing again is not an error.
        db.remove_conflict("t-1").unwrap();
    }

    #[test]
    fn only_complete_records_with_valid_ids_are_listed_or_read() {
        let (_d, db) = db();
        db.put_conflict("t-1", b"meta", b"cells", b"ours").unwrap();
        let dir = db.root().join(CONFLICTS_DIR);
        // A record whose metadata was never written (a crash midway), and
        // a leftover dot file: neither is a record.
        std::fs::write(dir.join("t-2.csv"), b"cells").unwrap();
        std::fs::write(dir.join(".t-3.toml"), b"meta").unwrap();
        assert_eq!(db.conflict_ids().unwrap(), ["t-1"]);
        for bad in ["", "../t-1", ".t-3", "a/b"] {
            assert!(
                matches!(
                    db.read_conflict(bad, ConflictFile::Meta),
                    Err(StorageError::NotFound { .. })
                ),
                "{bad:?}"
            );
            assert!(db.put_conflict(bad, b"m", b"c", b"o").is_err(), "{bad:?}");
        }
    }
}
