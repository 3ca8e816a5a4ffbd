//! Helpers for the storage layer's unit tests (compiled for tests only).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::{Database, RealIo};

/// The permission bits of `p` itself (a symlink is not followed).
pub fn mode(p: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A fresh database `shop` in a temporary directory (keep the directory).
pub fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::init(Arc::new(RealIo), dir.path(), "shop", '|').unwrap();
    (dir, db)
}
