//! `<db>/@conflicts/`: refused merges as editable files (docs/MOUNT.md,
//! "Concurrent writers"). A child module of `core`. Each `<id>.csv` lists
//! the conflicting cells; saving it with any tool resolves the conflict:
//! in place (vim, python, `>`), or by renaming a temp file onto it
//! (`sed -i`, atomic saves), so the directory holds scratch files too
//! (under [`CONFLICTS_DIR_KEY`]). Conflict files are never renamed or
//! removed through the mount: `rdb conflict:resolve` drops one unchanged.

use std::sync::MutexGuard;

use super::{
    Attr, Caching, Caller, EditTarget, Event, FsError, Inner, Node, ReedFs, Result, user_name,
};
use crate::fs::node::CONFLICTS_DIR_KEY;
use crate::merge::{self, MergeError};
use crate::storage::StorageError;

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
    pub(super) fn conflicts_child(inner: &Inner, db: usize, name: &str) -> Node {
        if Self::scratch_ino(inner, db, CONFLICTS_DIR_KEY, name).is_some() {
            Node::Scratch(db, CONFLICTS_DIR_KEY.to_string(), name.to_string())
        } else {
            Node::ConflictFile(db, name.to_string())
        }
    }

    /// `create` in `@conflicts/`: a conflict's file (editors that write a
    /// new file after moving the old aside), or a scratch file.
    pub(super) fn create_in_conflicts(
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
    pub(super) fn unlink_in_conflicts(
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
    pub(super) fn rename_in_conflicts(
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
    pub(super) fn resolve_conflict_edit(
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
                let ino = super::lock(&self.inner)
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
