//! A table's files as of one moment, for a backup: taken under the table's
//! lock (with every other table's, so no frame is half-way), then copied
//! at leisure.
//!
//! History files (deltas, keyframes, packs, schema revisions) are written
//! once and never changed, so a hard link keeps the bytes of the moment
//! even when a later pack seal or prune removes the name. The files that
//! change are copied: `version.log` up to the length this state holds (an
//! append after it is not part of the snapshot) and the floor record.
//! `current.csv` and `rows.log` are derived and left out (open rebuilds
//! the one, the next commit the other).

use std::path::Path;

use super::super::error::{Result, StorageError};
use super::super::io::TEMP_MARKER;
use super::super::lock::LockGuard;
use super::super::pack;
use super::prune::FLOOR;
use super::{LOG, Table, Writer, lock_poisoned};

/// A table held still: its writer mutex and its lock, in the order every
/// frame takes them.
pub(crate) struct Held<'a> {
    writer: std::sync::MutexGuard<'a, Writer>,
    _lock: LockGuard<'a>,
}

/// What a snapshot holds of a table: its head (sequence number, version
/// name, hash; 0 and empty when it has no version).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSnapshot {
    pub table: String,
    pub head_seq: u64,
    pub head_name: String,
    pub head_hash: String,
}

/// Whether `name` in a table's directory is a history file.
fn is_history(name: &str) -> bool {
    !name.starts_with('.')
        && !name.contains(TEMP_MARKER)
        && (pack::parse_file_name(name).is_some()
            || name.ends_with(".bsdiff")
            || name.ends_with(".bsdiff.xz")
            || name.ends_with(".csv.xz"))
}

impl Table {
    /// Takes the table's writer mutex and lock (bounded wait).
    pub(crate) fn hold(&self) -> Result<Held<'_>> {
        let writer = lock_poisoned(self.writer.lock());
        let lock = self.acquire()?;
        Ok(Held {
            writer,
            _lock: lock,
        })
    }

    /// Under `held`: links or copies the table's files as of now into
    /// directory `into` (on the same file system).
    pub(crate) fn snapshot_into(&self, held: &mut Held<'_>, into: &Path) -> Result<TableSnapshot> {
        let io = &*self.ctx.io;
        let state = self.catch_up(&mut held.writer)?;
        let mk = |d: &Path| {
            io.create_dir(d)
                .map_err(|e| StorageError::io("create", d, e))
        };
        mk(into)?;
        let log_path = self.path(LOG);
        let log = io
            .read_at(&log_path, 0, state.log_len as usize)
            .map_err(|e| StorageError::io("read", &log_path, e))?;
        let put = |name: &str, bytes: &[u8]| {
            let p = into.join(name);
            io.write_new(&p, bytes, false)
                .map_err(|e| StorageError::io("write", &p, e))
        };
        put(LOG, &log)?;
        match io.read(&self.path(FLOOR)) {
            Ok(b) => put(FLOOR, &b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("read", self.path(FLOOR), e)),
        }
        let link_all = |from: &Path, to: &Path, keep: &dyn Fn(&str) -> bool| -> Result<()> {
            let names = match io.list(from) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StorageError::io("list", from, e)),
            };
            mk(to)?;
            for n in names.iter().filter(|n| keep(n)) {
                let (src, dst) = (from.join(n), to.join(n));
                io.hard_link(&src, &dst)
                    .map_err(|e| StorageError::io("link", &src, e))?;
            }
            Ok(())
        };
        link_all(&self.dir, into, &is_history)?;
        // Schema revisions are immutable too; a frame's staged one
        // (`.frame-<id>.toml`) is not part of any committed state.
        link_all(
            &self.dir.join("schema"),
            &into.join("schema"),
            &|n: &str| !n.starts_with('.') && !n.contains(TEMP_MARKER),
        )?;
        let last = state.log.last();
        Ok(TableSnapshot {
            table: self.name.clone(),
            head_seq: state.log.len() as u64,
            head_name: last.map(|e| e.name()).unwrap_or_default(),
            head_hash: last.map(|e| e.hash.clone()).unwrap_or_default(),
        })
    }
}
