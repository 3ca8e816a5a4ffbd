//! Modes, times and sizes: `attr_of` and `attr_from_storage` (which
//! dispatch to the family of the node, `family/`), `getattr`, `setattr`
//! and truncation, and the modes and times writers set (`storage::attrs`).

use super::*;

pub(super) fn ts_time(ts_us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(ts_us)
}

/// A time as nanoseconds since the epoch (negative before it), as
/// `storage::attrs` keeps it.
pub(super) fn time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

pub(super) fn ns_time(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// The key of a path in `storage::attrs`: `""` for the database directory,
/// `<t>` for a table's, `<t>/current.csv` for its head.
pub(super) fn attrs_key(table: &str, file: Option<&str>) -> String {
    match file {
        Some(f) => format!("{table}/{f}"),
        None => table.to_string(),
    }
}

impl ReedFs {
    pub(super) fn dir_attr(&self, ino: u64, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            perm: DIR_PERM,
            uid: self.owner.uid,
            gid: self.owner.gid,
            mtime,
            stable: false,
        }
    }

    pub(super) fn file_attr(&self, ino: u64, size: u64, perm: u16, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::File,
            size,
            perm,
            uid: self.owner.uid,
            gid: self.owner.gid,
            mtime,
            stable: false,
        }
    }

    /// Attributes of `node` (inode `ino`), asked of its family.
    pub(super) fn attr_of(&self, inner: &mut Inner, ino: u64, node: &Node) -> Result<Attr> {
        match node {
            Node::Root | Node::Db(_) | Node::Table(..) | Node::Current(..) => {
                self.tables_attr(inner, ino, node)
            }
            Node::Schema(..) => self.schema_attr(inner, ino, node),
            Node::Scratch(..) => Self::scratch_attr(inner, ino),
            Node::Versions(..)
            | Node::VersionFile(..)
            | Node::VersionLog(..)
            | Node::Rows(..)
            | Node::RowFile(..) => self.versions_attr(ino, node),
            // A stream: no size (reads are direct, not bounded by it).
            Node::Changes(..) => Ok(self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now())),
            Node::Status(_) | Node::Metrics(_) => self.status_attr(ino, node),
            Node::Rejected(_) | Node::RejectedFile(..) => self.rejected_attr(ino, node),
            Node::Conflicts(_) | Node::ConflictFile(..) => self.conflicts_attr(ino, node),
            Node::AsOfRoot(_) | Node::AsOf(..) | Node::AsOfFile(..) => self.as_of_attr(ino, node),
            Node::FramesRoot(_)
            | Node::FrameDir(..)
            | Node::FrameTable(..)
            | Node::FrameSchema(..)
            | Node::FrameCtl(..) => self.frames_attr(inner, ino, node),
            Node::QueryRoot(_)
            | Node::QueryFile(..)
            | Node::SavedQuery(..)
            | Node::SavedResult(..) => self.queries_attr(inner, ino, node),
        }
    }

    /// Attributes of the nodes of `attr_reads_storage`, without the
    /// namespace lock (their families' attributes take no `Inner`).
    pub(super) fn attr_from_storage(&self, ino: u64, node: &Node) -> Result<Attr> {
        match node {
            Node::VersionFile(..) | Node::VersionLog(..) => self.versions_attr(ino, node),
            Node::AsOfFile(..) => self.as_of_attr(ino, node),
            Node::Status(_) | Node::Metrics(_) => self.status_attr(ino, node),
            Node::RejectedFile(..) => self.rejected_attr(ino, node),
            Node::ConflictFile(..) => self.conflicts_attr(ino, node),
            _ => Err(FsError::NotFound),
        }
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
                | Node::Metrics(_)
                | Node::RejectedFile(..)
                | Node::ConflictFile(..)
        )
    }

    /// Attributes of `ino`; `fh` is the caller's open handle when it asks
    /// through one (fstat, and the kernel's own size checks): a writer sees
    /// the size of what it wrote, everyone else the head readers get.
    pub fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<Attr> {
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if Self::attr_reads_storage(&node) {
            drop(inner);
            return self.attr_from_storage(ino, &node);
        }
        self.getattr_locked(&mut inner, ino, &node, fh)
    }

    /// A directory's attributes with the mode and time writers set on it.
    pub(super) fn saved_dir_attr(&self, inner: &Inner, ino: u64, db: usize, key: &str) -> Attr {
        let mut a = self.dir_attr(ino, self.started);
        if let Some(p) = inner.attrs[db].paths.get(key) {
            if let Some(m) = p.mode {
                a.perm = m as u16;
            }
            if let Some(ns) = p.mtime_ns {
                a.mtime = ns_time(ns);
            }
        }
        a
    }

    /// Changes the saved attributes of path `key` of database `db` and
    /// makes them durable.
    pub(super) fn set_saved_attrs(
        &self,
        inner: &mut Inner,
        db: usize,
        key: String,
        change: impl FnOnce(&mut PathAttrs),
    ) -> Result<()> {
        change(inner.attrs[db].paths.entry(key).or_default());
        self.dbs[db].db.save_file_attrs(&inner.attrs[db])?;
        Ok(())
    }

    /// Changes attributes. Sizes cut or extend (a truncate through a
    /// write handle goes to that handle and commits at its close). Modes and
    /// times of the database's and tables' directories and of `current.csv`
    /// are kept (`storage::attrs`); an owner other than the mount's cannot
    /// be kept and fails with EPERM; virtual files take only what they
    /// already have (editors restore the mode they read).
    pub fn setattr(&self, ino: u64, fh: Option<u64>, set: SetAttr) -> Result<Attr> {
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if let Some(size) = set.size {
            let edited = matches!(
                node,
                Node::ConflictFile(..)
                    | Node::SavedQuery(..)
                    | Node::Schema(..)
                    | Node::FrameSchema(..)
            );
            if edited || node.is_virtual() || self.opts.read_only {
                self.truncate_virtual(&mut inner, &node, fh, size)?;
            } else {
                drop(inner);
                self.truncate(ino, &node, fh, size)?;
                inner = lock(&self.inner);
            }
        }
        let changes = set.mode.is_some() || set.uid.is_some() || set.gid.is_some();
        if !changes && set.mtime.is_none() {
            return self.getattr_locked(&mut inner, ino, &node, fh);
        }
        if let Node::Scratch(..) = node {
            Self::scratch_setattr(&mut inner, ino, &set)?;
            return self.attr_of(&mut inner, ino, &node);
        }
        let shown = self.attr_of(&mut inner, ino, &node)?;
        if set.uid.is_some_and(|u| u != shown.uid) || set.gid.is_some_and(|g| g != shown.gid) {
            return Err(FsError::NotPermitted(
                "files of the mount belong to the mount's owner",
            ));
        }
        // Only a database's, a table's directory and `current.csv` keep
        // the modes and times set on them.
        let (Some(kept), false) = (Self::tables_attrs_key(&node), self.opts.read_only) else {
            // Nothing to keep them in: only what the file already has.
            let same_mode = set.mode.is_none_or(|m| (m & 0o7777) as u16 == shown.perm);
            if !same_mode || set.mtime.is_some_and(|t| t != shown.mtime) {
                return Err(if self.opts.read_only {
                    FsError::ReadOnly("mounted read-only")
                } else {
                    FsError::NotPermitted("the mode and time of this file are fixed")
                });
            }
            return Ok(shown);
        };
        self.tables_set_attrs(&mut inner, &node, kept, &set)?;
        self.getattr_locked(&mut inner, ino, &node, fh)
    }

    /// `getattr` under the namespace lock.
    pub(super) fn getattr_locked(
        &self,
        inner: &mut Inner,
        ino: u64,
        node: &Node,
        fh: Option<u64>,
    ) -> Result<Attr> {
        let mut attr = self.attr_of(inner, ino, node)?;
        if let Some(len) = fh
            .and_then(|f| inner.handles.get(&f))
            .and_then(Handle::written_len)
        {
            attr.size = len;
        }
        Ok(attr)
    }

    /// A truncate of an editable virtual file through its write handle
    /// (`>` on a conflict file, a saved query, a schema); other virtual
    /// files are read-only.
    pub(super) fn truncate_virtual(
        &self,
        inner: &mut Inner,
        node: &Node,
        fh: Option<u64>,
        size: u64,
    ) -> Result<()> {
        if let (
            Node::ConflictFile(..)
            | Node::SavedQuery(..)
            | Node::Schema(..)
            | Node::FrameSchema(..),
            Some(f),
        ) = (node, fh)
            && let Some(Handle::VirtualEdit { buf, dirty, .. }) = inner.handles.get_mut(&f)
        {
            buf.resize(size.min(self.opts.max_file_bytes) as usize, 0);
            *dirty = true;
            return Ok(());
        }
        self.check_writable(node)
    }

    /// A truncate of a table's file or a scratch file. Through a write
    /// handle (ftruncate, `truncate -s`) it goes to that handle, and its
    /// close commits; a path truncate(2) with no writer open commits now.
    pub(super) fn truncate(&self, ino: u64, node: &Node, fh: Option<u64>, size: u64) -> Result<()> {
        if size > self.opts.max_file_bytes {
            return Err(FsError::TooBig(self.opts.max_file_bytes));
        }
        let mut inner = lock(&self.inner);
        let writer = fh.and_then(|f| match inner.handles.get_mut(&f) {
            Some(h @ Handle::CurrentWrite { .. }) => Some(h),
            _ => None,
        });
        match (node, writer) {
            (
                Node::Current(..) | Node::FrameTable(..),
                Some(Handle::CurrentWrite {
                    buf,
                    dirty,
                    truncated,
                    append,
                    ..
                }),
            ) => {
                buf.resize(size as usize, 0);
                *dirty = true;
                *truncated = true;
                // Cut, the handle's file is what it holds: a whole save.
                *append = false;
                Ok(())
            }
            (Node::Current(db, t), _) => {
                drop(inner);
                self.truncate_current(*db, t, size)
            }
            (Node::FrameTable(..), _) => Err(FsError::NotPermitted(
                "truncate a frame's file through an open handle (>)",
            )),
            (Node::Scratch(..), _) => Self::truncate_scratch(&mut inner, ino, size),
            (n, _) if n.is_dir() => Err(FsError::IsDir),
            _ => Err(FsError::NotPermitted("this file cannot be truncated")),
        }
    }
}
