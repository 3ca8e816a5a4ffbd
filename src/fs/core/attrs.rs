//! Modes, times and sizes: the attributes of every node, `getattr`,
//! `setattr` and truncation, and the modes and times writers set
//! (`storage::attrs`).

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

    pub(super) fn attr_of(&self, inner: &mut Inner, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::Db(db) => self.saved_dir_attr(inner, ino, *db, ""),
            Node::Root
            | Node::Versions(..)
            | Node::Rejected(_)
            | Node::Conflicts(_)
            | Node::AsOfRoot(_)
            | Node::AsOf(..)
            | Node::FramesRoot(_)
            | Node::QueryRoot(_) => self.dir_attr(ino, self.started),
            // Results come with direct I/O: the size is found by reading.
            Node::QueryFile(..) => self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now()),
            Node::Schema(db, t) => {
                let (text, mtime) = self.schema_file_in(inner, *db, t)?;
                self.file_attr(ino, text.len() as u64, FILE_PERM, mtime)
            }
            Node::SavedQuery(db, name) => {
                let (text, mtime) = self.saved_file_in(inner, *db, name)?;
                self.file_attr(ino, text.len() as u64, FILE_PERM, mtime)
            }
            Node::SavedResult(db, name, _) => {
                if !self.dbs[*db].db.saved_query_exists(name)? {
                    return Err(FsError::NotFound);
                }
                self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now())
            }
            Node::FrameDir(db, f) => {
                Self::frame_tables_in(inner, *db, f)?;
                self.dir_attr(ino, self.started)
            }
            Node::FrameTable(db, f, t) => {
                let len = self.frame_len_in(inner, *db, f, t)?;
                self.file_attr(ino, len, FILE_PERM, SystemTime::now())
            }
            Node::FrameCtl(db, f) => {
                let len = Self::frame_ctl_text_in(inner, *db, f)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, SystemTime::now())
            }
            Node::Table(db, t) => {
                if !self.table_exists(inner, *db, t) {
                    return Err(FsError::NotFound);
                }
                self.saved_dir_attr(inner, ino, *db, t)
            }
            Node::Current(db, t) => {
                if inner.pending_tables.contains(&(*db, t.clone())) {
                    return Ok(self.file_attr(ino, 0, FILE_PERM, self.started));
                }
                let table = self.table(*db, t)?;
                let (seq, head) = self.check_head(inner, *db, t, &table)?;
                let saved = inner.attrs[*db].paths.get(&attrs_key(t, Some(CURRENT)));
                let perm = saved.and_then(|p| p.mode).map_or(FILE_PERM, |m| m as u16);
                // A time set by a writer belongs to the version it was set on.
                let mtime = match saved
                    .filter(|p| p.seq == Some(seq))
                    .and_then(|p| p.mtime_ns)
                {
                    Some(ns) => ns_time(ns),
                    None => table
                        .version(seq)
                        .map_or(self.started, |v| ts_time(v.ts_us)),
                };
                self.file_attr(ino, head.len() as u64, perm, mtime)
            }
            Node::Scratch(..) => {
                let s = inner.scratch.get(&ino).ok_or(FsError::NotFound)?;
                Attr {
                    ino,
                    kind: if s.symlink.is_some() {
                        Kind::Symlink
                    } else {
                        Kind::File
                    },
                    size: s.symlink.as_ref().map_or(s.data.len(), |l| l.len() as u64),
                    perm: s.perm,
                    uid: s.uid,
                    gid: s.gid,
                    mtime: s.mtime,
                    stable: false,
                }
            }
            Node::VersionFile(..)
            | Node::AsOfFile(..)
            | Node::VersionLog(..)
            | Node::Status(_)
            | Node::RejectedFile(..)
            | Node::ConflictFile(..) => self.attr_from_storage(ino, node)?,
        })
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
                Node::ConflictFile(..) | Node::SavedQuery(..) | Node::Schema(..)
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
            let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
            if let Some(m) = set.mode {
                s.perm = (m & 0o7777) as u16;
            }
            if let Some(u) = set.uid {
                s.uid = u;
            }
            if let Some(g) = set.gid {
                s.gid = g;
            }
            // chmod and chown change the ctime, never the mtime (rsync sets
            // the time, then the mode).
            if let Some(t) = set.mtime {
                s.mtime = t;
                s.mtime_set = true;
            }
            return self.attr_of(&mut inner, ino, &node);
        }
        let shown = self.attr_of(&mut inner, ino, &node)?;
        if set.uid.is_some_and(|u| u != shown.uid) || set.gid.is_some_and(|g| g != shown.gid) {
            return Err(FsError::NotPermitted(
                "files of the mount belong to the mount's owner",
            ));
        }
        let key = match &node {
            Node::Db(_) => Some(String::new()),
            Node::Table(_, t) => Some(attrs_key(t, None)),
            Node::Current(_, t) => Some(attrs_key(t, Some(CURRENT))),
            _ => None,
        };
        let (Some(key), false) = (key, self.opts.read_only) else {
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
        let db = match &node {
            Node::Db(db) | Node::Table(db, _) | Node::Current(db, _) => *db,
            _ => return Err(FsError::NotFound),
        };
        // A time set on a file being written, before its data committed
        // (`cp -a` calls futimens, which comes without the handle, between
        // its last write and its close), belongs to the version that commit
        // makes.
        let mut pending_mtime = false;
        if let (Node::Current(db, t), Some(when)) = (&node, set.mtime) {
            for h in inner.handles.values_mut() {
                if let Handle::CurrentWrite {
                    db: d,
                    table,
                    dirty: true,
                    mtime,
                    frame: None,
                    ..
                } = h
                    && (*d, table.as_str()) == (*db, t.as_str())
                {
                    *mtime = Some(when);
                    pending_mtime = true;
                }
            }
        }
        let head_seq = match &node {
            Node::Current(db, t) if !pending_mtime && set.mtime.is_some() => {
                Some(self.table(*db, t)?.head()?.0)
            }
            _ => None,
        };
        self.set_saved_attrs(&mut inner, db, key, |p| {
            if let Some(m) = set.mode {
                p.mode = Some(m & 0o7777);
            }
            if let (Some(t), false) = (set.mtime, pending_mtime) {
                p.mtime_ns = Some(time_ns(t));
                p.seq = head_seq;
            }
        })?;
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
        if let (Node::ConflictFile(..) | Node::SavedQuery(..) | Node::Schema(..), Some(f)) =
            (node, fh)
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
                let content = if size == 0 {
                    Vec::new()
                } else {
                    let (_, head) = self.table(*db, t)?.head()?;
                    let mut h = head.as_ref().clone();
                    h.resize(size as usize, 0);
                    h
                };
                let save = Save::Whole {
                    content,
                    base: None,
                };
                self.commit(*db, t, save, Action::Update, self.owner)
                    .map(|_| ())
            }
            (Node::FrameTable(..), _) => Err(FsError::NotPermitted(
                "truncate a frame's file through an open handle (>)",
            )),
            (Node::Scratch(..), _) => {
                let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
                s.data.set_len(size).map_err(scratch_io)?;
                s.mtime = SystemTime::now();
                Ok(())
            }
            (n, _) if n.is_dir() => Err(FsError::IsDir),
            _ => Err(FsError::NotPermitted("this file cannot be truncated")),
        }
    }
}
