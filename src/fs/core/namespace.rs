//! Changes of the namespace: mkdir, unlink, rmdir, symlinks and rename.

use super::*;

impl ReedFs {
    /// mkdir in a database directory makes a new table (it exists once its
    /// `current.csv` is written).
    pub fn mkdir(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        let r = self.mkdir_named(parent, name);
        self.explain_name(parent, name, r)
    }

    /// A refused name of a call that makes or moves a file: the caller sees
    /// only EINVAL or ENAMETOOLONG, so the reason, with the name, goes to
    /// `@status` and the log as well.
    pub(super) fn explain_name<T>(&self, parent: u64, name: &OsStr, r: Result<T>) -> Result<T> {
        if let Err(e @ (FsError::InvalidName(_) | FsError::NameTooLong)) = &r {
            let shown = name.to_string_lossy();
            let db = {
                let inner = lock(&self.inner);
                self.node(&inner, parent).ok().and_then(|n| n.db())
            };
            tracing::info!(name = %shown, error = %e, "refused a name");
            if let Some(db) = db {
                self.status[db].push(Event::Rejected {
                    table: "(a name)".into(),
                    reason: format!("{shown:?}: {e}"),
                    kept: None,
                });
            }
        }
        r
    }

    pub(super) fn mkdir_named(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        if let Node::FramesRoot(db) = pnode {
            drop(inner);
            self.begin_frame(db, name)?;
            let node = Node::FrameDir(db, name.to_string());
            let mut inner = lock(&self.inner);
            let ino = inner.inodes.ino(&node);
            return self.attr_of(&mut inner, ino, &node);
        }
        let Node::Db(db) = pnode else {
            return Err(FsError::NotPermitted(
                "directories can only be made in a database directory (one per table)",
            ));
        };
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

    pub fn unlink(&self, parent: u64, name: &OsStr, caller: Caller) -> Result<()> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        if let Node::QueryRoot(db) = pnode {
            return self.unlink_in_query(inner, db, name);
        }
        if let Node::Conflicts(db) = pnode {
            return self.unlink_in_conflicts(inner, db, name);
        }
        self.check_writable(&pnode)?;
        if let Node::FrameDir(db, f) = &pnode {
            let key = frame_dir_key(f);
            if inner
                .dirs
                .get(&(*db, key.clone()))
                .is_some_and(|d| d.contains_key(name))
            {
                Self::drop_scratch_name(&mut inner, *db, &key, name);
                return Ok(());
            }
            drop(inner);
            return match name.strip_suffix(".csv") {
                Some(t) => self.unstage(*db, f, t),
                None if name == "ctl" => {
                    Err(FsError::NotPermitted("ctl stays while the frame does"))
                }
                None => Err(FsError::NotFound),
            };
        }
        let Node::Table(db, t) = &pnode else {
            return Err(if pnode.is_dir() {
                FsError::NotPermitted("not a file")
            } else {
                FsError::NotDir
            });
        };
        let key = (*db, t.clone());
        if name == SCHEMA {
            drop(inner);
            return self.delete_schema(*db, t);
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
        Self::drop_scratch_name(&mut inner, *db, t, name);
        Ok(())
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        if let Node::FramesRoot(db) = pnode {
            drop(inner);
            return self.remove_frame(db, name);
        }
        let Node::Db(db) = pnode else {
            return Err(FsError::NotPermitted("no directories here"));
        };
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

    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        caller: Caller,
    ) -> Result<Attr> {
        let r = self.symlink_named(parent, name, target, caller);
        self.explain_name(parent, name, r)
    }

    pub(super) fn symlink_named(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        caller: Caller,
    ) -> Result<Attr> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        let Node::Table(db, t) = &pnode else {
            return Err(FsError::NotPermitted(
                "symlinks only inside table directories",
            ));
        };
        if name == CURRENT || name.starts_with('@') {
            return Err(FsError::Exists);
        }
        let key = (*db, t.clone());
        if inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
            return Err(FsError::Exists);
        }
        let file = Scratch {
            data: SpillBuf::new(&self.scratch_budget),
            symlink: Some(target.to_vec()),
            perm: 0o777,
            uid: caller.uid,
            gid: caller.gid,
            mtime: SystemTime::now(),
            mtime_set: false,
        };
        let ino = Self::add_scratch(&mut inner, *db, t, name, file);
        self.attr_of(
            &mut inner,
            ino,
            &Node::Scratch(*db, t.clone(), name.to_string()),
        )
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let inner = lock(&self.inner);
        inner
            .scratch
            .get(&ino)
            .and_then(|s| s.symlink.clone())
            .ok_or(FsError::InvalidName("not a symlink"))
    }

    /// Renames within one table directory. Onto `current.csv`: commits the
    /// file's content (sed -i, rsync, atomic-save editors); the call fails,
    /// and the file stays, when the content is refused. From `current.csv`:
    /// the head becomes a scratch file and the table waits for a new
    /// `current.csv` (vim's backupcopy=no, emacs).
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
        caller: Caller,
    ) -> Result<()> {
        let r = self.rename_named(parent, name, newparent, newname, noreplace, caller);
        self.explain_name(newparent, newname, r)
    }

    pub(super) fn rename_named(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
        caller: Caller,
    ) -> Result<()> {
        let (name, newname) = (name_str(name)?, name_str(newname)?);
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        let npnode = self.node(&inner, newparent)?;
        match (&pnode, &npnode) {
            (Node::QueryRoot(a), Node::QueryRoot(b)) if a == b => {
                let db = *a;
                return self.rename_in_query(inner, db, name, newname, noreplace);
            }
            (Node::QueryRoot(_), _) | (_, Node::QueryRoot(_)) => return Err(FsError::CrossDir),
            (Node::Conflicts(a), Node::Conflicts(b)) if a == b => {
                let db = *a;
                return self.rename_in_conflicts(inner, db, name, newname, caller);
            }
            (Node::Conflicts(_), _) | (_, Node::Conflicts(_)) => return Err(FsError::CrossDir),
            _ => {}
        }
        self.check_writable(&pnode)?;
        self.check_writable(&npnode)?;
        if let (Node::FrameDir(db, f), Node::FrameDir(db2, f2)) = (&pnode, &npnode) {
            if (db, f) != (db2, f2) {
                return Err(FsError::CrossDir);
            }
            let key = (*db, frame_dir_key(f));
            if !inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
                return Err(FsError::NotPermitted(
                    "only scratch files move inside a frame; save onto <table>.csv to stage",
                ));
            }
            let target = newname
                .strip_suffix(".csv")
                .filter(|t| inner_frame_has(&Self::frame_tables_in(&inner, *db, f), t));
            if let Some(t) = target {
                // sed -i, rsync, atomic saves: the file's content is staged.
                return self.save_scratch_onto(inner, *db, &key.1, name, |content| {
                    self.stage(*db, f, t, content)
                });
            }
            if newname == "ctl" {
                return Err(FsError::NotPermitted("ctl is written, not replaced"));
            }
            return self.move_scratch(&mut inner, *db, &key.1, name, newname);
        }
        let (Node::Table(db, t), Node::Table(db2, t2)) = (&pnode, &npnode) else {
            return Err(FsError::NotPermitted(
                "only files inside table directories can be renamed",
            ));
        };
        if (db, t) != (db2, t2) {
            return Err(FsError::CrossDir);
        }
        if newname.starts_with('@') {
            return Err(FsError::InvalidName("names starting with @ are reserved"));
        }
        let key = (*db, t.clone());
        let exists = |inner: &Inner, n: &str| {
            if n == CURRENT {
                !Self::replacing_by(inner, &key, caller.pid)
            } else if n == SCHEMA {
                self.schema_in(inner, *db, t).unwrap_or(false)
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
            return self.rename_schema(inner, *db, t, name, newname);
        }
        if newname == CURRENT {
            // sed -i, rsync, editors' atomic saves: the base is what this
            // process read; nothing read means a blind write.
            let base = inner.last_read.get(&(caller.pid, *db, t.clone())).copied();
            // The file brings its mode and a time set on it along (rsync
            // and cp -a set them on their temp file, sed -i copies the
            // original's mode); nothing new, nothing written.
            let shown = inner.attrs[*db]
                .paths
                .get(&attrs_key(t, Some(CURRENT)))
                .and_then(|p| p.mode)
                .map_or(FILE_PERM, |m| m as u16);
            let meta = Self::scratch_ino(&inner, *db, t, name)
                .and_then(|i| inner.scratch.get(&i))
                .map(|s| {
                    (
                        (s.perm != shown).then_some(s.perm),
                        s.mtime_set.then_some(s.mtime),
                    )
                });
            let mut committed = None;
            self.save_scratch_onto(inner, *db, t, name, |content| {
                let save = Save::Whole { content, base };
                committed = Some(self.commit(*db, t, save, Action::Update, caller)?);
                Ok(())
            })?;
            let mut inner = lock(&self.inner);
            inner.replacing.remove(&key);
            if let (Some(seq), Some((perm, mtime))) = (committed, meta)
                && (perm.is_some() || mtime.is_some())
            {
                self.set_saved_attrs(&mut inner, *db, attrs_key(t, Some(CURRENT)), |p| {
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
            let (_, head) = match self.table(*db, t) {
                Ok(table) => table.head()?,
                Err(_) => (0, Arc::new(Vec::new())),
            };
            let file = self.owned_scratch(&head, FILE_PERM)?;
            Self::add_scratch(&mut inner, *db, t, newname, file);
            // Hidden from this process until it creates the new file; the
            // table and its head stay for everyone else.
            inner
                .replacing
                .insert(key, (caller.pid, std::time::Instant::now()));
            return Ok(());
        }
        self.move_scratch(&mut inner, *db, t, name, newname)
    }
}
