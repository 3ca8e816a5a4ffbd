//! `<db>/@as-of/<time>/<table>.csv`: every table as it was at a time
//! (docs/MOUNT.md, "Time travel"). `@as-of/` lists nothing (times are endless):
//! readers name its children. A past time never changes, so the kernel may
//! cache it; a future one follows the head. Attributes and contents come
//! from the store, outside the namespace lock.

use crate::fs::core::family::Listing;
use crate::fs::core::*;

impl ReedFs {
    /// A name in `@as-of/` (a time) or in `@as-of/<time>/` (a table that
    /// existed, and was not dropped, then).
    pub(in crate::fs::core) fn as_of_child(&self, parent: &Node, name: &str) -> Result<Node> {
        Ok(match parent {
            Node::AsOfRoot(db) => {
                let ts = names::parse_time(name, names::now_us()).map_err(|e| {
                    tracing::info!(name, error = %e, "@as-of: not a time");
                    FsError::NotFound
                })?;
                Node::AsOf(*db, ts)
            }
            Node::AsOf(db, ts) => {
                // Whether the table existed then is for `as_of_attr` to
                // say, outside the namespace lock (a lookup asks it next).
                let t = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                names::validate(t).map_err(|_| FsError::NotFound)?;
                Node::AsOfFile(*db, *ts, t.to_string())
            }
            _ => return Err(FsError::NotDir),
        })
    }

    /// The listing of `@as-of/` (nothing) or of a time: the tables then.
    pub(in crate::fs::core) fn as_of_entries(&self, node: &Node) -> Result<Listing> {
        let mut names: Listing = Vec::new();
        match node {
            // Times are endless: this lists nothing; readers name its children.
            Node::AsOfRoot(_) => {}
            Node::AsOf(db, ts) => {
                for t in self.dbs[*db].db.table_names()? {
                    let Ok(table) = self.table(*db, &t) else {
                        continue;
                    };
                    let seq = table.seq_at(*ts)?;
                    if seq > 0 && table.version(seq)?.size > 0 {
                        names.push((
                            Node::AsOfFile(*db, *ts, t.clone()),
                            Kind::File,
                            format!("{t}.csv"),
                        ));
                    }
                }
            }
            _ => return Err(FsError::NotDir),
        }
        Ok(names)
    }

    /// Attributes of `@as-of/`, a time and its files (no namespace lock).
    pub(in crate::fs::core) fn as_of_attr(&self, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::AsOfRoot(_) | Node::AsOf(..) => self.dir_attr(ino, self.started),
            Node::AsOfFile(db, ts, t) => {
                let table = self.table(*db, t)?;
                // Only tables that existed (and were not dropped) then.
                let seq = table.seq_at(*ts)?;
                let v = match seq {
                    0 => return Err(FsError::NotFound),
                    seq => table.version(seq)?,
                };
                if v.size == 0 {
                    return Err(FsError::NotFound);
                }
                let mut a = self.file_attr(ino, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = *ts < names::now_us();
                a
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Opens a table as it was at a time (read outside the namespace lock).
    pub(in crate::fs::core) fn as_of_open(
        &self,
        inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let Node::AsOfFile(db, ts, t) = node else {
            return Err(FsError::IsDir);
        };
        drop(inner);
        let seq = self.table(*db, t)?.seq_at(*ts)?;
        let data = self.old_version(*db, t, seq)?;
        // A past time never changes; a future one follows the head.
        let caching = if *ts < names::now_us() {
            Caching::Keep
        } else {
            Caching::Direct
        };
        Ok(self.open_data(data, caching))
    }
}
