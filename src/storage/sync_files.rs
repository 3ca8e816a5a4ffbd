//! Where sync's files live (docs/FORMAT.md, section 13). Storage owns the
//! layout and how bytes reach the disk; the sync layer owns what they mean.
//!
//! ```text
//! sync/records/<node>/<table>/<version>.rec   commit records: immutable, travel
//! sync/locations/<version>.toml               the locations list, one file per revision: travel
//! sync/resolved/<conflict id>                 a sync conflict resolved somewhere (empty): travel
//! state/sync/<table>.applied                  what this site replayed (local, replaced durably)
//! state/sync/<name>                           other local sync state (peers' status)
//! state/sync/lock                             one sync round at a time
//! ```
//!
//! Invariants:
//! - a record or a locations revision is written once under a unique name
//!   (`write_new`, fsync, directory fsync) and never modified: two sites
//!   copying in both directions never overwrite each other;
//! - names are one path component each, checked here: no name read from a
//!   peer ever leads outside `sync/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::database::Database;
use super::error::{Result, StorageError};
use super::io::{replace_file, sync_parent};
use super::lock::LockFile;

pub const SYNC_DIR: &str = "sync";
const RECORDS: &str = "records";
const LOCATIONS: &str = "locations";
const RESOLVED: &str = "resolved";

/// A name that may be one component of a path under `sync/`: no
/// separator, no leading dot (temp files of rsync and of ReedBase), not empty.
pub fn valid_component(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 200
}

fn check(name: &str) -> Result<()> {
    if valid_component(name) {
        Ok(())
    } else {
        Err(StorageError::NotFound {
            kind: "sync file",
            name: name.to_string(),
        })
    }
}

impl Database {
    /// `sync/`: what travels between locations.
    pub fn sync_dir(&self) -> PathBuf {
        self.root().join(SYNC_DIR)
    }

    /// `sync/`, created (0700, durably) when it is not there yet.
    pub fn ensure_sync_dir(&self) -> Result<PathBuf> {
        let dir = self.sync_dir();
        self.create_dirs(&dir)?;
        Ok(dir)
    }

    fn sync_state_dir(&self) -> PathBuf {
        self.root().join("state").join("sync")
    }

    fn create_dirs(&self, dir: &Path) -> Result<()> {
        let root = self.root().to_path_buf();
        let rel = dir.strip_prefix(&root).unwrap_or(dir);
        let mut at = root;
        for part in rel.components() {
            at.push(part);
            if self
                .io()
                .len(&at)
                .map_err(|e| StorageError::io("stat", &at, e))?
                .is_none()
            {
                self.io()
                    .create_dir(&at)
                    .map_err(|e| StorageError::io("create", &at, e))?;
                sync_parent(&**self.io(), &at)?;
            }
        }
        Ok(())
    }

    fn record_dir(&self, node: &str, table: &str) -> Result<PathBuf> {
        check(node)?;
        check(table)?;
        Ok(self.sync_dir().join(RECORDS).join(node).join(table))
    }

    /// Writes commit record `name` of `table`, made by `node`, durably.
    /// A record already there is left as it is (records are immutable and
    /// their names unique: the same name holds the same commit).
    pub fn put_record(&self, node: &str, table: &str, name: &str, bytes: &[u8]) -> Result<bool> {
        check(name)?;
        let dir = self.record_dir(node, table)?;
        self.create_dirs(&dir)?;
        let path = dir.join(name);
        if self
            .io()
            .len(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?
            .is_some()
        {
            return Ok(false);
        }
        // Whole or absent under its name: written to a dot-named temp file
        // (never read, never copied), fsynced, then renamed without
        // replacing. A crash, or a peer copying while we export, never sees
        // a torn record under the real name.
        let tmp = super::io::temp_path_for(&path);
        if let Err(e) = self.io().write_new(&tmp, bytes, true) {
            let _ = self.io().remove(&tmp);
            return Err(StorageError::io("write", &tmp, e));
        }
        match self.io().rename_noreplace(&tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = self.io().remove(&tmp);
                return Ok(false);
            }
            Err(e) => {
                let _ = self.io().remove(&tmp);
                return Err(StorageError::io("rename", &path, e));
            }
        }
        sync_parent(&**self.io(), &path)?;
        Ok(true)
    }

    /// The nodes that have records here.
    pub fn record_nodes(&self) -> Result<Vec<String>> {
        self.list_sync(&self.sync_dir().join(RECORDS))
    }

    /// The tables `node` has records of here.
    pub fn record_tables(&self, node: &str) -> Result<Vec<String>> {
        check(node)?;
        self.list_sync(&self.sync_dir().join(RECORDS).join(node))
    }

    /// The names of `node`'s records of `table` here (files whose name is
    /// not a valid component, such as rsync's temp files, are not listed).
    pub fn record_names(&self, node: &str, table: &str) -> Result<Vec<String>> {
        self.list_sync(&self.record_dir(node, table)?)
    }

    /// The path of a record (for messages).
    pub fn record_path(&self, node: &str, table: &str, name: &str) -> Result<PathBuf> {
        check(name)?;
        Ok(self.record_dir(node, table)?.join(name))
    }

    pub fn read_record(&self, node: &str, table: &str, name: &str) -> Result<Vec<u8>> {
        let path = self.record_path(node, table, name)?;
        self.io()
            .read(&path)
            .map_err(|e| StorageError::io("read", &path, e))
    }

    /// Writes revision `name` of the locations list (immutable).
    pub fn put_locations(&self, name: &str, bytes: &[u8]) -> Result<()> {
        check(name)?;
        let dir = self.sync_dir().join(LOCATIONS);
        self.create_dirs(&dir)?;
        let path = dir.join(name);
        self.io()
            .write_new(&path, bytes, true)
            .map_err(|e| StorageError::io("write", &path, e))?;
        sync_parent(&**self.io(), &path)
    }

    /// The other travelling directories (docs/FORMAT.md, section 11): each
    /// saved query's `queries/<name>/` and each table's `tables/<t>/schema/`,
    /// relative to the root, with their file names (sorted).
    pub fn revision_dirs(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut out = Vec::new();
        let root = self.root().to_path_buf();
        for q in self.list_sync(&root.join(super::saved_query::QUERIES_DIR))? {
            let names = self.list_sync(&root.join(super::saved_query::QUERIES_DIR).join(&q))?;
            if !names.is_empty() {
                out.push((format!("{}/{q}", super::saved_query::QUERIES_DIR), names));
            }
        }
        for t in self.list_sync(&root.join("tables"))? {
            let names = self.list_sync(&root.join("tables").join(&t).join("schema"))?;
            if !names.is_empty() {
                out.push((format!("tables/{t}/schema"), names));
            }
        }
        Ok(out)
    }

    /// Notes that sync conflict `id` was resolved here: an empty file
    /// `sync/resolved/<id>`, which travels, so every location drops it.
    pub fn note_conflict_resolved(&self, id: &str) -> Result<()> {
        check(id)?;
        let dir = self.sync_dir().join(RESOLVED);
        self.create_dirs(&dir)?;
        let path = dir.join(id);
        match self.io().write_new(&path, b"", true) {
            Ok(()) => sync_parent(&**self.io(), &path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StorageError::io("write", &path, e)),
        }
    }

    /// The sync conflicts resolved at some location (ids).
    pub fn resolved_conflicts(&self) -> Result<Vec<String>> {
        self.list_sync(&self.sync_dir().join(RESOLVED))
    }

    /// Removes what cut transfers left under `sync/`: rsync's dot-named
    /// temp files last changed more than `older_than` ago (a transfer in
    /// progress keeps writing to its own). Never reads them. How many went.
    pub fn sweep_transfer_leftovers(&self, older_than: Duration) -> Result<usize> {
        let mut dirs = vec![
            self.sync_dir().join(LOCATIONS),
            self.sync_dir().join(RESOLVED),
        ];
        for node in self.record_nodes()? {
            for table in self.record_tables(&node)? {
                dirs.push(self.record_dir(&node, &table)?);
            }
        }
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for dir in dirs {
            let names = match self.io().list(&dir) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("list", &dir, e)),
            };
            for name in names.iter().filter(|n| n.starts_with('.')) {
                let path = dir.join(name);
                let old = self
                    .io()
                    .lstat(&path)
                    .ok()
                    .flatten()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > older_than);
                if old && self.io().remove(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// The names of every revision of the locations list here.
    pub fn locations_names(&self) -> Result<Vec<String>> {
        self.list_sync(&self.sync_dir().join(LOCATIONS))
    }

    /// The newest revision of the locations list: (name, bytes).
    pub fn newest_locations(&self) -> Result<Option<(String, Vec<u8>)>> {
        let dir = self.sync_dir().join(LOCATIONS);
        let Some(name) = self.list_sync(&dir)?.pop() else {
            return Ok(None);
        };
        let path = dir.join(&name);
        let bytes = self
            .io()
            .read(&path)
            .map_err(|e| StorageError::io("read", &path, e))?;
        Ok(Some((name, bytes)))
    }

    /// Local sync state `name` (not synced), if any.
    pub fn read_sync_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        check(name)?;
        let path = self.sync_state_dir().join(name);
        match self.io().read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", &path, e)),
        }
    }

    /// Replaces local sync state `name` durably.
    pub fn write_sync_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        check(name)?;
        let dir = self.sync_state_dir();
        self.create_dirs(&dir)?;
        replace_file(&**self.io(), &dir.join(name), bytes)
    }

    /// The database's sync lock file (one round at a time, across
    /// processes): take it with `LockFile::acquire`.
    pub fn sync_lock(&self) -> Result<LockFile> {
        let dir = self.sync_state_dir();
        self.create_dirs(&dir)?;
        LockFile::open(&dir.join("lock"))
    }

    fn list_sync(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = match self.io().list(dir) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io("list", dir, e)),
        };
        names.retain(|n| valid_component(n));
        names.sort();
        Ok(names)
    }
}

/// How long a round waits for another round's lock before saying so.
pub const SYNC_LOCK_WAIT: Duration = Duration::from_secs(30);
