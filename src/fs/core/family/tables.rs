//! The mountpoint, databases, tables and `current.csv` (docs/MOUNT.md): the
//! names in a database's and a table's directory, their listings and
//! attributes, opening and truncating `current.csv`, and the mkdir, create,
//! unlink, rmdir and rename of a table directory. `schema.toml` is its own
//! family (`schema.rs`); the other files of a table directory are scratch
//! files (`core/scratch.rs`).

use crate::fs::core::family::{Listing, db_entries, table_entries};
use crate::fs::core::*;

impl ReedFs {
    /// Whether `pid` unlinked or renamed away table `key`'s `current.csv`
    /// and has not created the new one yet.
    pub(in crate::fs::core) fn replacing_by(
        inner: &Inner,
        key: &(usize, String),
        pid: u32,
    ) -> bool {
        inner
            .replacing
            .get(key)
            .is_some_and(|(p, at)| *p == pid && at.elapsed() < REPLACEMENT_WINDOW)
    }

    /// Notices heads that changed behind our back (a CLI commit) and drops
    /// the kernel's cache of them.
    fn check_head(
        &self,
        inner: &mut Inner,
        db: usize,
        table: &str,
        t: &Table,
    ) -> Result<(u64, Arc<Vec<u8>>)> {
        let (seq, head) = t.head()?;
        let key = (db, table.to_string());
        if inner.seen.insert(key, seq).is_some_and(|old| old != seq) {
            let ino = inner.inodes.ino(&Node::Current(db, table.to_string()));
            self.invalidate(ino);
        }
        Ok((seq, head))
    }

    /// A name in the mountpoint, a database's or a table's directory.
    pub(in crate::fs::core) fn tables_child(&self, parent: &Node, name: &str) -> Result<Node> {
        let db_by_name = |n: &str| self.dbs.iter().position(|d| d.name == n);
        Ok(match parent {
            Node::Root => Node::Db(db_by_name(name).ok_or(FsError::NotFound)?),
            Node::Db(db) => match db_entries(*db).into_iter().find(|(n, ..)| *n == name) {
                Some((_, node, _)) => node,
                None => Node::Table(*db, name.to_string()),
            },
            Node::Table(db, t) => match name {
                CURRENT => Node::Current(*db, t.clone()),
                SCHEMA => Node::Schema(*db, t.clone()),
                _ => match table_entries(*db, t).into_iter().find(|(n, ..)| *n == name) {
                    Some((_, node, _)) => node,
                    None => Node::Scratch(*db, t.clone(), name.to_string()),
                },
            },
            _ => return Err(FsError::NotDir),
        })
    }

    /// The listing of the mountpoint, a database or a table.
    pub(in crate::fs::core) fn tables_entries(
        &self,
        inner: &Inner,
        node: &Node,
        show: bool,
    ) -> Result<Listing> {
        let mut names: Listing = Vec::new();
        match node {
            Node::Root => {
                for (i, d) in self.dbs.iter().enumerate() {
                    names.push((Node::Db(i), Kind::Dir, d.name.clone()));
                }
            }
            Node::Db(db) => {
                let mut tables: BTreeSet<String> = self.dbs[*db]
                    .db
                    .table_names()?
                    .into_iter()
                    .filter(|t| self.table(*db, t).is_ok())
                    .collect();
                tables.extend(
                    inner
                        .pending_tables
                        .iter()
                        .filter(|(d, _)| d == db)
                        .map(|(_, t)| t.clone()),
                );
                for t in tables {
                    names.push((Node::Table(*db, t.clone()), Kind::Dir, t));
                }
                if show {
                    for (name, node, kind) in db_entries(*db) {
                        names.push((node, kind, name.into()));
                    }
                }
            }
            Node::Table(db, t) => {
                if !self.table_exists(inner, *db, t) {
                    return Err(FsError::NotFound);
                }
                names.push((Node::Current(*db, t.clone()), Kind::File, CURRENT.into()));
                if self.schema_in(inner, *db, t)? {
                    names.push((Node::Schema(*db, t.clone()), Kind::File, SCHEMA.into()));
                }
                names.extend(Self::scratch_entries(inner, *db, t));
                if show {
                    for (name, node, kind) in table_entries(*db, t) {
                        names.push((node, kind, name.into()));
                    }
                }
            }
            _ => return Err(FsError::NotDir),
        }
        Ok(names)
    }

    /// Attributes of the mountpoint, a database, a table or its head.
    pub(in crate::fs::core) fn tables_attr(
        &self,
        inner: &mut Inner,
        ino: u64,
        node: &Node,
    ) -> Result<Attr> {
        Ok(match node {
            Node::Root => self.dir_attr(ino, self.started),
            Node::Db(db) => self.saved_dir_attr(inner, ino, *db, ""),
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
                        .known_version(seq)
                        .map_or(self.started, |v| ts_time(v.ts_us)),
                };
                self.file_attr(ino, head.len() as u64, perm, mtime)
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// The database, table or head whose mode and time writers may set
    /// (`storage::attrs`): its database and key.
    pub(in crate::fs::core) fn tables_attrs_key(node: &Node) -> Option<(usize, String)> {
        match node {
            Node::Db(db) => Some((*db, String::new())),
            Node::Table(db, t) => Some((*db, attrs_key(t, None))),
            Node::Current(db, t) => Some((*db, attrs_key(t, Some(CURRENT)))),
            _ => None,
        }
    }

    /// Keeps a mode or time set on `node` (one of `tables_attrs_key`).
    pub(in crate::fs::core) fn tables_set_attrs(
        &self,
        inner: &mut Inner,
        node: &Node,
        (db, key): (usize, String),
        set: &SetAttr,
    ) -> Result<()> {
        // A time set on a file being written, before its data committed
        // (`cp -a` calls futimens, which comes without the handle, between
        // its last write and its close), belongs to the version that commit
        // makes.
        let mut pending_mtime = false;
        if let (Node::Current(db, t), Some(when)) = (node, set.mtime) {
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
        let head_seq = match node {
            Node::Current(db, t) if !pending_mtime && set.mtime.is_some() => {
                Some(self.table(*db, t)?.head()?.0)
            }
            _ => None,
        };
        self.set_saved_attrs(inner, db, key, |p| {
            if let Some(m) = set.mode {
                p.mode = Some(m & 0o7777);
            }
            if let (Some(t), false) = (set.mtime, pending_mtime) {
                p.mtime_ns = Some(time_ns(t));
                p.seq = head_seq;
            }
        })
    }

    /// Opens `current.csv`.
    pub(in crate::fs::core) fn tables_open(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let Node::Current(db, t) = node else {
            return Err(FsError::IsDir);
        };
        let Opening {
            write,
            trunc,
            append,
            caller,
        } = how;
        let pending = inner.pending_tables.contains(&(*db, t.clone()));
        let read_key = (caller.pid, *db, t.clone());
        let (seq, head) = if pending {
            (0, Arc::new(Vec::new()))
        } else {
            let table = self.table(*db, t)?;
            self.check_head(&mut inner, *db, t, &table)?
        };
        if write {
            let buf = if trunc {
                Vec::new()
            } else {
                head.as_ref().clone()
            };
            // The writer's base: what this process last read (vim
            // rewrites in place what it read at start); else the
            // head the buffer starts from, or for O_TRUNC none (a
            // blind write).
            let base = inner
                .last_read
                .get(&read_key)
                .copied()
                .or((!trunc).then_some(seq));
            let mut h = Handle::writer(*db, t, buf, base, trunc, None, caller);
            if let Handle::CurrentWrite { append: a, .. } = &mut h {
                *a = append && !trunc;
            }
            Ok((Self::new_fh(&mut inner, h), Caching::Direct))
        } else if self.opts.passthrough && !pending {
            drop(inner);
            let table = self.table(*db, t)?;
            let backing = table
                .head_file()?
                .filter(|(_, s)| *s == seq)
                .map(|(f, _)| f);
            let mut inner = lock(&self.inner);
            Self::note_read(&mut inner, caller, *db, t, seq);
            let h = Handle::CurrentRead {
                data: head,
                backing,
            };
            Ok((Self::new_fh(&mut inner, h), Caching::Passthrough))
        } else {
            Self::note_read(&mut inner, caller, *db, t, seq);
            // Direct I/O: the kernel's page cache would clamp reads to
            // the size it was last told, which a concurrent commit can
            // change in the middle of a read (a torn read, which a tool
            // like sed would then save). Reads come from this handle's
            // snapshot; `--passthrough` is the fast path.
            let h = Handle::CurrentRead {
                data: head,
                backing: None,
            };
            Ok((Self::new_fh(&mut inner, h), Caching::Direct))
        }
    }

    /// A truncate(2) of `current.csv` by path with no writer open: commits
    /// the cut (or extended) head now.
    pub(in crate::fs::core) fn truncate_current(
        &self,
        db: usize,
        t: &str,
        size: u64,
    ) -> Result<()> {
        let content = if size == 0 {
            Vec::new()
        } else {
            let (_, head) = self.table(db, t)?.head()?;
            let mut h = head.as_ref().clone();
            h.resize(size as usize, 0);
            h
        };
        let save = Save::Whole {
            content,
            base: None,
        };
        self.commit(db, t, save, Action::Update, self.owner)
            .map(|_| ())
    }

    /// `create` in a table directory: `current.csv` itself after it was
    /// renamed or unlinked away, `schema.toml`, or a scratch file.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::fs::core) fn create_in_table(
        &self,
        inner: &mut Inner,
        db: usize,
        t: &str,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        if !self.table_exists(inner, db, t) {
            return Err(FsError::NotFound);
        }
        if name.starts_with('@') {
            return Err(FsError::InvalidName("names starting with @ are reserved"));
        }
        let key = (db, t.to_string());
        if name == SCHEMA {
            return self.create_schema(inner, db, t, flags);
        }
        if name == CURRENT {
            let replacing = Self::replacing_by(inner, &key, caller.pid);
            if !replacing && flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            // A replacement (mv from another filesystem, vim backupcopy=no):
            // a blind write of the whole table.
            inner.replacing.remove(&key);
            let ino = inner.inodes.ino(&Node::Current(db, t.to_string()));
            // Not dirty until written: a create the kernel then refuses (or
            // that writes nothing) must not commit an empty table.
            let h = Handle::writer(db, t, Vec::new(), None, false, None, caller);
            let fh = Self::new_fh(inner, h);
            let attr = self.file_attr(ino, 0, FILE_PERM, SystemTime::now());
            return Ok((attr, fh, Caching::Direct));
        }
        self.create_scratch(inner, db, t, name, mode, flags, caller)
    }

    /// mkdir in a database directory: a new table, which exists once its
    /// `current.csv` is written.
    pub(in crate::fs::core) fn mkdir_table(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
    ) -> Result<Attr> {
        names::validate(name).map_err(|e| match e {
            StorageError::InvalidName { reason, .. } => FsError::InvalidName(reason),
            _ => FsError::InvalidName("table names use letters, digits, '_' and '-'"),
        })?;
        if self.table_exists(&inner, db, name) {
            return Err(FsError::Exists);
        }
        inner.pending_tables.insert((db, name.to_string()));
        let node = Node::Table(db, name.to_string());
        let ino = inner.inodes.ino(&node);
        self.attr_of(&mut inner, ino, &node)
    }

    /// rmdir in a database directory: a table made with mkdir and never
    /// written; tables themselves are dropped with `rdb table:drop`.
    pub(in crate::fs::core) fn rmdir_table(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
    ) -> Result<()> {
        let key = (db, name.to_string());
        if inner.pending_tables.contains(&key) {
            if inner.dirs.get(&key).is_some_and(|d| !d.is_empty()) {
                return Err(FsError::NotEmpty);
            }
            inner.pending_tables.remove(&key);
            return Ok(());
        }
        if self.table(db, name).is_ok() {
            return Err(FsError::NotPermitted(
                "tables are dropped with `rdb table:drop`, not rmdir",
            ));
        }
        Err(FsError::NotFound)
    }

    /// `rm` in a table directory: `schema.toml` (a new version), the first
    /// half of a replacement of `current.csv`, or a scratch file.
    pub(in crate::fs::core) fn unlink_in_table(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        t: &str,
        name: &str,
        caller: Caller,
    ) -> Result<()> {
        let key = (db, t.to_string());
        if name == SCHEMA {
            drop(inner);
            return self.delete_schema(db, t, caller);
        }
        if name == CURRENT {
            // An unlink followed by a create is a replacement (mv across
            // file systems), never a drop: the table and its head stay, and
            // only this process sees the name gone until it creates the new
            // file (`rdb table:drop` drops a table).
            if Self::replacing_by(&inner, &key, caller.pid) {
                return Err(FsError::NotFound);
            }
            inner
                .replacing
                .insert(key, (caller.pid, std::time::Instant::now()));
            return Ok(());
        }
        if !inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
            return Err(FsError::NotFound);
        }
        Self::drop_scratch_name(&mut inner, db, t, name);
        Ok(())
    }

    /// A rename inside table directory `t`. Onto `current.csv`: commits the
    /// file's content (sed -i, rsync, atomic-save editors); the call fails,
    /// and the file stays, when the content is refused. From `current.csv`:
    /// the head becomes a scratch file and the table waits for a new
    /// `current.csv` (vim's backupcopy=no, emacs).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::fs::core) fn rename_in_table(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        t: &str,
        name: &str,
        newname: &str,
        noreplace: bool,
        caller: Caller,
    ) -> Result<()> {
        if newname.starts_with('@') {
            return Err(FsError::InvalidName("names starting with @ are reserved"));
        }
        let key = (db, t.to_string());
        let exists = |inner: &Inner, n: &str| {
            if n == CURRENT {
                !Self::replacing_by(inner, &key, caller.pid)
            } else if n == SCHEMA {
                self.schema_in(inner, db, t).unwrap_or(false)
            } else {
                inner.dirs.get(&key).is_some_and(|d| d.contains_key(n))
            }
        };
        if !exists(&inner, name) {
            return Err(FsError::NotFound);
        }
        if name == newname {
            return Ok(());
        }
        if noreplace && exists(&inner, newname) {
            return Err(FsError::Exists);
        }
        if newname == SCHEMA || name == SCHEMA {
            return self.rename_schema(inner, db, t, name, newname, caller);
        }
        if newname == CURRENT {
            // sed -i, rsync, editors' atomic saves: the base is what this
            // process read; nothing read means a blind write.
            let base = inner
                .last_read
                .get(&(caller.pid, db, t.to_string()))
                .copied();
            // The file brings its mode and a time set on it along (rsync
            // and cp -a set them on their temp file, sed -i copies the
            // original's mode); nothing new, nothing written.
            let shown = inner.attrs[db]
                .paths
                .get(&attrs_key(t, Some(CURRENT)))
                .and_then(|p| p.mode)
                .map_or(FILE_PERM, |m| m as u16);
            let meta = Self::scratch_ino(&inner, db, t, name)
                .and_then(|i| inner.scratch.get(&i))
                .map(|s| {
                    (
                        (s.perm != shown).then_some(s.perm),
                        s.mtime_set.then_some(s.mtime),
                    )
                });
            let mut committed = None;
            self.save_scratch_onto(inner, db, t, name, |content| {
                let save = Save::Whole { content, base };
                committed = Some(self.commit(db, t, save, Action::Update, caller)?);
                Ok(())
            })?;
            let mut inner = lock(&self.inner);
            inner.replacing.remove(&key);
            if let (Some(seq), Some((perm, mtime))) = (committed, meta)
                && (perm.is_some() || mtime.is_some())
            {
                self.set_saved_attrs(&mut inner, db, attrs_key(t, Some(CURRENT)), |p| {
                    if let Some(perm) = perm {
                        p.mode = Some(u32::from(perm));
                    }
                    if let Some(mtime) = mtime {
                        p.mtime_ns = Some(time_ns(mtime));
                        p.seq = Some(seq);
                    }
                })?;
            }
            return Ok(());
        }
        if name == CURRENT {
            // The head moves to a scratch file.
            let (_, head) = match self.table(db, t) {
                Ok(table) => table.head()?,
                Err(_) => (0, Arc::new(Vec::new())),
            };
            let file = self.owned_scratch(&head, FILE_PERM)?;
            Self::add_scratch(&mut inner, db, t, newname, file);
            // Hidden from this process until it creates the new file; the
            // table and its head stay for everyone else.
            inner
                .replacing
                .insert(key, (caller.pid, std::time::Instant::now()));
            return Ok(());
        }
        self.move_scratch(&mut inner, db, t, name, newname)
    }
}
