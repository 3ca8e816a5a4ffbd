//! Frames staged across processes: `frames/open/<id>/` holds the files of
//! a frame that `rdb frame:begin|stage` built and that is not yet committed
//! or aborted (docs/FORMAT.md, section 1). Storage owns where and how the
//! files are written; the CLI owns what they mean (its manifest, which file
//! holds which table). They are staging only: the commit of the frame is
//! the protocol of `frame.rs`, and nothing here is part of a version.
//!
//! Invariants:
//! - every file is written with `replace_file` (temp, fsync, rename,
//!   directory fsync) through `Io`: a reader sees the old bytes or the new,
//!   durable when the call returns, private (0600 in 0700 directories)
//!   whatever the umask;
//! - a frame id and a file name are each one path component (no `/`, no
//!   leading dot, no temp marker): nothing outside `frames/open/` is ever
//!   named through them;
//! - a frame's removal is durable (the parent directory is fsynced), so a
//!   committed frame's staging never comes back after a crash to be
//!   committed twice.

use std::path::PathBuf;

use super::database::Database;
use super::error::{Result, StorageError};
use super::io::{replace_file, sync_parent};
use super::kept::valid_name;

/// Under the database root.
pub const OPEN_FRAMES_DIR: &str = "frames/open";

fn not_found(id: &str, file: &str) -> StorageError {
    StorageError::NotFound {
        kind: "staged frame file",
        name: format!("{id}/{file}"),
    }
}

impl Database {
    fn open_frames_dir(&self) -> PathBuf {
        self.root().join(OPEN_FRAMES_DIR)
    }

    /// The directory of staged frame `id`, for messages; NotFound for an id
    /// that is not one path component.
    pub fn open_frame_dir(&self, id: &str) -> Result<PathBuf> {
        if !valid_name(id) {
            return Err(StorageError::NotFound {
                kind: "staged frame",
                name: id.to_string(),
            });
        }
        Ok(self.open_frames_dir().join(id))
    }

    fn open_frame_file(&self, id: &str, file: &str) -> Result<PathBuf> {
        let dir = self.open_frame_dir(id)?;
        if !valid_name(file) {
            return Err(not_found(id, file));
        }
        Ok(dir.join(file))
    }

    /// The ids of the staged frames (their directories), sorted by name.
    pub fn open_frames(&self) -> Result<Vec<String>> {
        let dir = self.open_frames_dir();
        let names = match self.io().list(&dir) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io("list", &dir, e)),
        };
        let mut ids = Vec::new();
        for name in names {
            if !valid_name(&name) {
                continue;
            }
            let path = dir.join(&name);
            // Only directories are frames (lstat: a symlink is not one).
            let meta = self
                .io()
                .lstat(&path)
                .map_err(|e| StorageError::io("stat", &path, e))?;
            if meta.is_some_and(|m| m.is_dir()) {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Writes file `file` of staged frame `id` durably (creating the
    /// frame's directory), replacing what it held.
    pub fn save_open_frame_file(&self, id: &str, file: &str, bytes: &[u8]) -> Result<()> {
        let path = self.open_frame_file(id, file)?;
        let dir = self.open_frame_dir(id)?;
        self.io()
            .create_dir(&dir)
            .map_err(|e| StorageError::io("create", &dir, e))?;
        replace_file(&**self.io(), &path, bytes)
    }

    /// File `file` of staged frame `id`; NotFound when it does not exist.
    pub fn read_open_frame_file(&self, id: &str, file: &str) -> Result<Vec<u8>> {
        let path = self.open_frame_file(id, file)?;
        self.io().read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(id, file),
            _ => StorageError::io("read", &path, e),
        })
    }

    /// Removes staged frame `id` and its files, durably (no error when it
    /// is gone).
    pub fn remove_open_frame(&self, id: &str) -> Result<()> {
        let dir = self.open_frame_dir(id)?;
        match self.io().remove_dir_all(&dir) {
            Ok(()) => sync_parent(&**self.io(), &dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", &dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::helpers_tests::{db, mode};
    use crate::storage::io::{DIR_MODE, FILE_MODE};

    #[test]
    fn a_staged_frame_round_trips_privately_and_is_removed() {
        let (_d, db) = db();
        assert!(db.open_frames().unwrap().is_empty());
        db.save_open_frame_file("f2", "frame.toml", b"two").unwrap();
        db.save_open_frame_file("f1", "frame.toml", b"one").unwrap();
        db.save_open_frame_file("f1", "t.csv", b"id\n1\n").unwrap();
        assert_eq!(db.open_frames().unwrap(), ["f1", "f2"]);
        assert_eq!(db.read_open_frame_file("f1", "frame.toml").unwrap(), b"one");
        assert_eq!(db.read_open_frame_file("f1", "t.csv").unwrap(), b"id\n1\n");
        // Replacing a file replaces its bytes.
        db.save_open_frame_file("f1", "t.csv", b"").unwrap();
        assert_eq!(db.read_open_frame_file("f1", "t.csv").unwrap(), b"");
        assert!(matches!(
            db.read_open_frame_file("f1", "u.csv"),
            Err(StorageError::NotFound { .. })
        ));

        let dir = db.open_frame_dir("f1").unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        for f in ["frame.toml", "t.csv"] {
            assert_eq!(mode(&dir.join(f)), FILE_MODE, "{f}");
        }

        db.remove_open_frame("f1").unwrap();
        assert!(!dir.exists());
        assert_eq!(db.open_frames().unwrap(), ["f2"]);
        assert!(matches!(
            db.read_open_frame_file("f1", "frame.toml"),
            Err(StorageError::NotFound { .. })
        ));
        // Removing again is not an error.
        db.remove_open_frame("f1").unwrap();
    }

    #[test]
    fn only_directories_with_valid_names_are_frames() {
        let (_d, db) = db();
        db.save_open_frame_file("f1", "frame.toml", b"one").unwrap();
        let root = db.root().join(OPEN_FRAMES_DIR);
        std::fs::write(root.join("stray"), b"x").unwrap();
        std::fs::create_dir(root.join(".hidden")).unwrap();
        assert_eq!(db.open_frames().unwrap(), ["f1"]);
        for (id, file) in [
            ("../x", "frame.toml"),
            ("f1", "../frame.toml"),
            ("", "a"),
            ("f1", ".a"),
        ] {
            assert!(
                db.save_open_frame_file(id, file, b"x").is_err(),
                "{id:?} {file:?}"
            );
            assert!(
                matches!(
                    db.read_open_frame_file(id, file),
                    Err(StorageError::NotFound { .. })
                ),
                "{id:?} {file:?}"
            );
        }
        assert!(db.remove_open_frame("../f1").is_err());
        assert_eq!(db.open_frames().unwrap(), ["f1"]);
    }
}
