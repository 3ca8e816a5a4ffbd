//! File attributes that writers set on the mounted tree and expect back
//! (`chmod`, `touch`, `rsync -a`, `cp -a`): a mode and a modification time
//! per path of the tree (`""` the database directory, `<t>` a table's
//! directory, `<t>/current.csv` its head). They are presentation, not data:
//! kept in `state/attrs.toml` of this site, never part of a version.
//!
//! A head's mtime belongs to one version (`seq`): once another version is
//! the head, the file shows that version's commit time again, so a changed
//! file never keeps an old mtime (rsync would skip it).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
use super::io::{Io, replace_file};

pub const ATTRS_FILE: &str = "attrs.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathAttrs {
    /// Permission bits (0o7777 at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Nanoseconds since the Unix epoch (negative before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// For a head: the version the mtime was set on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    #[serde(default)]
    pub paths: BTreeMap<String, PathAttrs>,
}

fn path(root: &Path) -> std::path::PathBuf {
    root.join("state").join(ATTRS_FILE)
}

/// The attributes saved for the database at `root` (none saved: empty; a
/// damaged file is ignored with a warning, losing only presentation).
pub fn load(io: &dyn Io, root: &Path) -> Result<Attrs> {
    let p = path(root);
    let bytes = match io.read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Attrs::default()),
        Err(e) => return Err(StorageError::io("read", &p, e)),
    };
    match toml::from_str(&String::from_utf8_lossy(&bytes)) {
        Ok(a) => Ok(a),
        Err(e) => {
            tracing::warn!(file = %p.display(), error = %e, "ignoring unreadable file attributes");
            Ok(Attrs::default())
        }
    }
}

/// Saves `attrs` durably.
pub fn save(io: &dyn Io, root: &Path, attrs: &Attrs) -> Result<()> {
    let p = path(root);
    let dir = root.join("state");
    io.create_dir(&dir)
        .map_err(|e| StorageError::io("create", &dir, e))?;
    let text = toml::to_string(attrs).map_err(|e| StorageError::Config {
        path: p.clone(),
        detail: e.to_string(),
    })?;
    replace_file(io, &p, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealIo;

    #[test]
    fn attributes_round_trip_and_a_missing_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(&RealIo, d.path()).unwrap(), Attrs::default());
        let mut a = Attrs::default();
        a.paths.insert(
            "users/current.csv".into(),
            PathAttrs {
                mode: Some(0o600),
                mtime_ns: Some(-5),
                seq: Some(3),
            },
        );
        save(&RealIo, d.path(), &a).unwrap();
        assert_eq!(load(&RealIo, d.path()).unwrap(), a);
    }
}
