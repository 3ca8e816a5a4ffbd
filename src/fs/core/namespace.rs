//! Changes of the namespace: mkdir, unlink, rmdir, symlinks and rename,
//! each dispatching to the family of the directory (`family/`).

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
        let inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        match pnode {
            Node::FramesRoot(db) => self.mkdir_frame(inner, db, name),
            Node::Db(db) => self.mkdir_table(inner, db, name),
            _ => Err(FsError::NotPermitted(
                "directories can only be made in a database directory (one per table)",
            )),
        }
    }

    pub fn unlink(&self, parent: u64, name: &OsStr, caller: Caller) -> Result<()> {
        let name = name_str(name)?;
        let inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        match pnode {
            Node::QueryRoot(db) => return self.unlink_in_query(inner, db, name),
            Node::Conflicts(db) => return self.unlink_in_conflicts(inner, db, name),
            _ => {}
        }
        self.check_writable(&pnode)?;
        match &pnode {
            Node::FrameDir(db, f) => self.unlink_in_frame(inner, *db, f, name),
            Node::Table(db, t) => self.unlink_in_table(inner, *db, t, name, caller),
            _ if pnode.is_dir() => Err(FsError::NotPermitted("not a file")),
            _ => Err(FsError::NotDir),
        }
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = name_str(name)?;
        let inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        self.check_writable(&pnode)?;
        match pnode {
            Node::FramesRoot(db) => {
                drop(inner);
                self.remove_frame(db, name)
            }
            Node::Db(db) => self.rmdir_table(inner, db, name),
            _ => Err(FsError::NotPermitted("no directories here")),
        }
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

    /// Renames within one directory (`rename_in_table`, and the families
    /// with their own rules: `@query/`, `@conflicts/`, a frame's).
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
        let inner = lock(&self.inner);
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
        match (&pnode, &npnode) {
            (Node::FrameDir(db, f), Node::FrameDir(db2, f2)) => {
                if (db, f) != (db2, f2) {
                    return Err(FsError::CrossDir);
                }
                self.rename_in_frame(inner, *db, f, name, newname)
            }
            (Node::Table(db, t), Node::Table(db2, t2)) => {
                if (db, t) != (db2, t2) {
                    return Err(FsError::CrossDir);
                }
                self.rename_in_table(inner, *db, t, name, newname, noreplace, caller)
            }
            _ => Err(FsError::NotPermitted(
                "only files inside table directories can be renamed",
            )),
        }
    }
}
