//! `<db>/@conflicts/`: refused merges as editable files (docs/MOUNT.md,
//! "Concurrent writers"). Part of `core`. Each `<id>.csv` lists
//! the conflicting cells; saving it with any tool resolves the conflict:
//! in place (vim, python, `>`), or by renaming a temp file onto it
//! (`sed -i`, atomic saves), so the directory holds scratch files too
//! (under [`CONFLICTS_DIR_KEY`]). Conflict files are never renamed or
//! removed through the mount: `rdb conflict:resolve` drops one unchanged.

use crate::fs::core::family::Listing;
use crate::fs::core::*;

impl ReedFs {
    /// The id of `name` when it is the file of an open conflict.
    fn conflict_id(&self, db: usize, name: &str) -> Option<String> {
        let id = name.strip_suffix(".csv")?;
        merge::conflicts::get(&self.dbs[db].db, id)
            .ok()
            .map(|_| id.to_string())
    }

    /// The node `name` names in `@conflicts/`: a scratch file, else a
    /// conflict's file (which may not exist).
    pub(in crate::fs::core) fn conflicts_child(
        inner: &Inner,
        parent: &Node,
        name: &str,
    ) -> Result<Node> {
        let Node::Conflicts(db) = *parent else {
            return Err(FsError::NotDir);
        };
        Ok(
            if Self::scratch_ino(inner, db, CONFLICTS_DIR_KEY, name).is_some() {
                Node::Scratch(db, CONFLICTS_DIR_KEY.to_string(), name.to_string())
            } else {
                Node::ConflictFile(db, name.to_string())
            },
        )
    }

    /// The listing of `@conflicts/`: the open conflicts' files, then
    /// scratch files.
    pub(in crate::fs::core) fn conflicts_entries(
        &self,
        inner: &Inner,
        node: &Node,
    ) -> Result<Listing> {
        let Node::Conflicts(db) = *node else {
            return Err(FsError::NotDir);
        };
        let mut names: Listing = Vec::new();
        for c in merge::conflicts::list(&self.dbs[db].db)? {
            let name = format!("{}.csv", c.id);
            names.push((Node::ConflictFile(db, name.clone()), Kind::File, name));
        }
        names.extend(Self::scratch_entries(inner, db, CONFLICTS_DIR_KEY));
        Ok(names)
    }

    /// Attributes of `@conflicts/` and its conflicts' files (no namespace
    /// lock). Editable (docs/MOUNT.md): writable mode, and a time that only
    /// changes with the conflict, so editors do not see it "changed since
    /// reading".
    pub(in crate::fs::core) fn conflicts_attr(&self, ino: u64, node: &Node) -> Result<Attr> {
        Ok(match node {
            Node::Conflicts(_) => self.dir_attr(ino, self.started),
            Node::ConflictFile(db, name) => {
                let id = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                // A missing record is ENOENT (StorageError::NotFound); an
                // unreadable one is not "no such file".
                let info = merge::conflicts::get(&self.dbs[*db].db, id)?;
                let len = merge::conflicts::cells(&self.dbs[*db].db, id)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, ts_time(info.ts_us))
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Opens a conflict's file: for reading, its cells; for writing, an
    /// edit that resolves the conflict when saved (the one writable file
    /// generated from the store).
    pub(in crate::fs::core) fn conflicts_open(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        let Node::ConflictFile(db, name) = node else {
            return Err(FsError::IsDir);
        };
        let id = name.strip_suffix(".csv").ok_or(FsError::NotFound);
        if !how.writes() {
            drop(inner);
            let data = Arc::new(merge::conflicts::cells(&self.dbs[*db].db, id?)?);
            return Ok(self.open_data(data, Caching::Direct));
        }
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        let id = id?.to_string();
        let buf = if how.trunc {
            Vec::new()
        } else {
            merge::conflicts::cells(&self.dbs[*db].db, &id)?
        };
        let h = Handle::VirtualEdit {
            db: *db,
            target: EditTarget::Conflict(id),
            buf,
            dirty: how.trunc,
        };
        Ok((Self::new_fh(&mut inner, h), Caching::Direct))
    }

    /// `create` in `@conflicts/`: a conflict's file (editors that write a
    /// new file after moving the old aside), or a scratch file.
    pub(in crate::fs::core) fn create_in_conflicts(
        &self,
        inner: &mut Inner,
        db: usize,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        let Some(id) = self.conflict_id(db, name) else {
            return self.create_scratch(inner, db, CONFLICTS_DIR_KEY, name, mode, flags, caller);
        };
        if flags & libc::O_EXCL != 0 {
            return Err(FsError::Exists);
        }
        let node = Node::ConflictFile(db, name.to_string());
        Ok(self.create_edit(inner, db, node, EditTarget::Conflict(id)))
    }

    /// `rm` in `@conflicts/`: scratch files only.
    pub(in crate::fs::core) fn unlink_in_conflicts(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
    ) -> Result<()> {
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        if Self::scratch_ino(&inner, db, CONFLICTS_DIR_KEY, name).is_some() {
            Self::drop_scratch_name(&mut inner, db, CONFLICTS_DIR_KEY, name);
            return Ok(());
        }
        match self.conflict_id(db, name) {
            Some(_) => Err(FsError::NotPermitted(
                "a conflict goes when resolved: edit its file, or `rdb conflict:resolve`",
            )),
            None => Err(FsError::NotFound),
        }
    }

    /// `mv` in `@conflicts/`: a scratch file onto a conflict's file
    /// resolves it with the scratch file's content; scratch to scratch
    /// moves. Conflict files themselves stay where they are.
    pub(in crate::fs::core) fn rename_in_conflicts(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
        newname: &str,
        caller: Caller,
    ) -> Result<()> {
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        if Self::scratch_ino(&inner, db, CONFLICTS_DIR_KEY, name).is_none() {
            return Err(match self.conflict_id(db, name) {
                Some(_) => FsError::NotPermitted("conflict files are edited in place"),
                None => FsError::NotFound,
            });
        }
        match self.conflict_id(db, newname) {
            Some(id) => self.save_scratch_onto(inner, db, CONFLICTS_DIR_KEY, name, |edited| {
                self.resolve_conflict_edit(db, &id, &edited, caller)
            }),
            None => self.move_scratch(&mut inner, db, CONFLICTS_DIR_KEY, name, newname),
        }
    }

    /// Applies an edited conflict file: commits the head with the cells'
    /// `resolved` values and removes the conflict. Content that does not
    /// parse fails with EINVAL and changes nothing.
    pub(in crate::fs::core) fn resolve_conflict_edit(
        &self,
        db: usize,
        id: &str,
        edited: &[u8],
        caller: Caller,
    ) -> Result<()> {
        let user = user_name(caller.uid);
        let mdb = &self.dbs[db].db;
        let table = merge::conflicts::get(mdb, id)?.table;
        match merge::conflicts::resolve_edited(mdb, id, edited, &user) {
            Ok(Some(c)) => {
                let ino = lock(&self.inner)
                    .inodes
                    .ino(&Node::Current(db, table.clone()));
                self.status[db].push(Event::Commit {
                    table,
                    version: c.version,
                });
                self.invalidate(ino);
                Ok(())
            }
            Ok(None) => Ok(()),
            // A row-level conflict named in the edited cells is refused
            // content of this file (EINVAL), not a name that exists.
            Err(e @ MergeError::Storage(StorageError::Exists { .. })) => {
                Err(FsError::InvalidContent(StorageError::chain(&e)))
            }
            // Everything else as any merge: bad CSV EINVAL, a conflict with
            // a newer head EBUSY, a full disk ENOSPC.
            Err(e) => Err(e.into()),
        }
    }
}
