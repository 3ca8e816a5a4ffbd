//! Files generated from the store (`log.csv`, `@status`, conflict and
//! rejected files, versions and `@as-of` files): their content and their
//! attributes, computed outside the namespace lock.

use super::*;

impl ReedFs {
    /// Attributes of the nodes of `attr_reads_storage`, without the
    /// namespace lock.
    pub(super) fn attr_from_storage(&self, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::AsOfFile(db, ts, t) => {
                let table = self.table(*db, t)?;
                let v = table.version(table.seq_at(*ts)?)?;
                let mut a = self.file_attr(ino, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = *ts < names::now_us();
                a
            }
            Node::VersionFile(db, t, seq) => {
                // A version's file stays what it was (its directory's lookup
                // is what notices a drop), so no check for newer commits.
                let v = self.dbs[*db].db.table(t)?.known_version(*seq)?;
                let mut a = self.file_attr(ino, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = true;
                a
            }
            // Editable (docs/MOUNT.md): writable mode, and a time that only
            // changes with the conflict, so editors do not see it "changed
            // since reading".
            Node::ConflictFile(db, name) => {
                let id = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                // A missing record is ENOENT (StorageError::NotFound); an
                // unreadable one is not "no such file".
                let info = merge::conflicts::get(&self.dbs[*db].db, id)?;
                let len = self.generate(node)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, ts_time(info.ts_us))
            }
            Node::VersionLog(..) | Node::Status(_) | Node::RejectedFile(..) => {
                let len = self.generate(node)?.len() as u64;
                self.file_attr(ino, len, READ_ONLY_PERM, SystemTime::now())
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Nodes whose attributes come from the store alone (history, files
    /// generated from it): computed outside the namespace lock, so a slow
    /// history read never holds up another caller's lookup.
    pub(super) fn attr_reads_storage(node: &Node) -> bool {
        matches!(
            node,
            Node::VersionFile(..)
                | Node::AsOfFile(..)
                | Node::VersionLog(..)
                | Node::Status(_)
                | Node::RejectedFile(..)
                | Node::ConflictFile(..)
        )
    }

    /// Content of generated files.
    pub(super) fn generate(&self, node: &Node) -> Result<Vec<u8>> {
        match node {
            Node::Status(db) => {
                let mut text = self.status[*db].render(&self.dbs[*db].name);
                for note in self.dbs[*db].db.recovery_notes() {
                    text.push_str(&note);
                    text.push('\n');
                }
                Ok(text.into_bytes())
            }
            Node::VersionLog(db, t) => {
                let d = self.dbs[*db].db.config().delimiter;
                let mut out =
                    format!("seq{d}name{d}time{d}action{d}user{d}rows{d}size{d}hash{d}frame\n");
                for v in self.table(*db, t)?.versions()? {
                    out.push_str(&format!(
                        "{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}\n",
                        v.seq,
                        v.name,
                        names::format_ts_human(v.ts_us),
                        v.action,
                        v.user,
                        v.rows,
                        v.size,
                        v.hash,
                        v.frame.unwrap_or_default()
                    ));
                }
                Ok(out.into_bytes())
            }
            Node::ConflictFile(db, name) => {
                let id = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                Ok(merge::conflicts::cells(&self.dbs[*db].db, id)?)
            }
            Node::RejectedFile(db, name) => {
                self.dbs[*db].db.read_rejected(name).map_err(|e| match e {
                    StorageError::NotFound { .. } => FsError::NotFound,
                    e => FsError::Storage(e),
                })
            }
            _ => Err(FsError::NotFound),
        }
    }
}
