//! `<db>/@rejected/`: content the mount refused or could not commit, kept
//! by file name (docs/MOUNT.md, "Refused writes"). Read-only, read from the
//! store outside the namespace lock; the bytes are kept by
//! `core/commit.rs` (`keep_rejected`).

use crate::fs::core::family::Listing;
use crate::fs::core::*;

impl ReedFs {
    /// A name in `@rejected/`: a kept file (which may not exist).
    pub(in crate::fs::core) fn rejected_child(parent: &Node, name: &str) -> Result<Node> {
        match parent {
            Node::Rejected(db) => Ok(Node::RejectedFile(*db, name.to_string())),
            _ => Err(FsError::NotDir),
        }
    }

    /// The listing of `@rejected/`.
    pub(in crate::fs::core) fn rejected_entries(&self, node: &Node) -> Result<Listing> {
        let Node::Rejected(db) = node else {
            return Err(FsError::NotDir);
        };
        let mut names: Listing = Vec::new();
        for f in self.dbs[*db].db.rejected_names()? {
            names.push((Node::RejectedFile(*db, f.clone()), Kind::File, f));
        }
        Ok(names)
    }

    /// Attributes of `@rejected/` and its files (no namespace lock).
    pub(in crate::fs::core) fn rejected_attr(&self, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::Rejected(_) => self.dir_attr(ino, self.started),
            Node::RejectedFile(db, name) => {
                let len = self.dbs[*db].db.rejected_len(name).map_err(not_found)?;
                self.file_attr(ino, len, READ_ONLY_PERM, SystemTime::now())
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Opens a kept file.
    pub(in crate::fs::core) fn rejected_open(
        &self,
        inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let Node::RejectedFile(db, name) = node else {
            return Err(FsError::IsDir);
        };
        drop(inner);
        let data = Arc::new(self.rejected_content(*db, name)?);
        Ok(self.open_data(data, Caching::Direct))
    }

    fn rejected_content(&self, db: usize, name: &str) -> Result<Vec<u8>> {
        self.dbs[db].db.read_rejected(name).map_err(not_found)
    }
}

/// A kept file that is not there is ENOENT; other errors keep their cause.
fn not_found(e: StorageError) -> FsError {
    match e {
        StorageError::NotFound { .. } => FsError::NotFound,
        e => FsError::Storage(e),
    }
}
