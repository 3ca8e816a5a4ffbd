//! `<table>/@versions/`: every version of a table as `<name>.csv`, and
//! `log.csv`, the table's log (docs/MOUNT.md, "Time travel"); and
//! `<table>/@rows/<key>.csv`, one row's history (the table's row log,
//! docs/FORMAT.md). Read-only; a version's file never changes, so the
//! kernel may cache it. Attributes and contents come from the store,
//! outside the namespace lock.

use crate::fs::core::family::Listing;
use crate::fs::core::*;

impl ReedFs {
    /// A name in `@versions/`: `log.csv`, or a version by its name.
    pub(in crate::fs::core) fn versions_child(&self, parent: &Node, name: &str) -> Result<Node> {
        if let Node::Rows(db, t) = parent {
            // `%2F` is `/` and `%25` is `%`, as in `@query/` names.
            let stem = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
            let key = super::queries::decode_query_name(stem);
            return Ok(Node::RowFile(*db, t.clone(), key));
        }
        let Node::Versions(db, t) = parent else {
            return Err(FsError::NotDir);
        };
        if name == "log.csv" {
            return Ok(Node::VersionLog(*db, t.clone()));
        }
        let stem = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
        let seq = self.table(*db, t)?.seq_of(stem)?.ok_or(FsError::NotFound)?;
        Ok(Node::VersionFile(*db, t.clone(), seq))
    }

    /// The listing of `@versions/` of table `t` from its versions (`log`):
    /// every version, then `log.csv`.
    pub(in crate::fs::core) fn versions_entries(
        db: usize,
        t: &str,
        log: &[VersionInfo],
    ) -> Listing {
        let mut names: Listing = log
            .iter()
            .map(|v| {
                (
                    Node::VersionFile(db, t.to_string(), v.seq),
                    Kind::File,
                    format!("{}.csv", v.name),
                )
            })
            .collect();
        names.push((
            Node::VersionLog(db, t.to_string()),
            Kind::File,
            "log.csv".into(),
        ));
        names
    }

    /// The attributes of the versions of a listing of `@versions/`, from
    /// `log`, the versions read for the names, aligned with `entries`, so a
    /// listing with attributes costs no lookup per version.
    pub(in crate::fs::core) fn versions_listing_attrs(
        &self,
        inner: &Inner,
        entries: &[(u64, Kind, String)],
        log: &[VersionInfo],
    ) -> Vec<Option<Attr>> {
        let mut attrs = vec![None; entries.len()];
        for ((child, _, _), attr) in entries.iter().zip(attrs.iter_mut()) {
            if let Some(Node::VersionFile(_, _, seq)) = inner.inodes.node(*child)
                && let Some(v) = log.get((*seq as usize).wrapping_sub(1))
            {
                let mut a = self.file_attr(*child, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = true;
                *attr = Some(a);
            }
        }
        attrs
    }

    /// Attributes of `@versions/` and its files (no namespace lock).
    pub(in crate::fs::core) fn versions_attr(&self, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::Versions(..) | Node::Rows(..) => self.dir_attr(ino, self.started),
            Node::RowFile(db, t, key) => {
                let len = self.row_file(*db, t, key)?.len() as u64;
                self.file_attr(ino, len, READ_ONLY_PERM, SystemTime::now())
            }
            Node::VersionFile(db, t, seq) => {
                // A version's file stays what it was (its directory's lookup
                // is what notices a drop), so no check for newer commits.
                let v = self.dbs[*db].db.table(t)?.known_version(*seq)?;
                let mut a = self.file_attr(ino, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                a.stable = true;
                a
            }
            Node::VersionLog(db, t) => {
                let len = self.version_log(*db, t)?.len() as u64;
                self.file_attr(ino, len, READ_ONLY_PERM, SystemTime::now())
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Opens a version's file (read outside the namespace lock; cached by
    /// the kernel) or `log.csv`.
    pub(in crate::fs::core) fn versions_open(
        &self,
        inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        drop(inner);
        match node {
            Node::VersionFile(db, t, seq) => {
                let data = self.old_version(*db, t, *seq)?;
                Ok(self.open_data(data, Caching::Keep))
            }
            Node::VersionLog(db, t) => {
                let data = Arc::new(self.version_log(*db, t)?);
                Ok(self.open_data(data, Caching::Direct))
            }
            Node::RowFile(db, t, key) => {
                let data = Arc::new(self.row_file(*db, t, key)?);
                Ok(self.open_data(data, Caching::Direct))
            }
            _ => Err(FsError::IsDir),
        }
    }

    /// The content of `@rows/<key>.csv`: the row's changes, one line per
    /// changed cell (the columns of `rdb row:history`), in the database's
    /// delimiter; a key never seen holds the header alone.
    fn row_file(&self, db: usize, t: &str, key: &str) -> Result<Vec<u8>> {
        let delim = self.dbs[db].db.config().delimiter_byte();
        let mut out = crate::storage::csv::render_record(&crate::storage::HISTORY_COLUMNS, delim);
        for (v, change) in self.table(db, t)?.row_history(key)? {
            let time = names::format_ts_human(v.ts_us);
            for line in change.history_lines(&v, &time) {
                out.extend_from_slice(&crate::storage::csv::render_record(&line, delim));
            }
        }
        Ok(out)
    }

    /// The content of `log.csv`.
    fn version_log(&self, db: usize, t: &str) -> Result<Vec<u8>> {
        let d = self.dbs[db].db.config().delimiter;
        let mut out = format!("seq{d}name{d}time{d}action{d}user{d}rows{d}size{d}hash{d}frame\n");
        for v in self.table(db, t)?.versions()? {
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
}
