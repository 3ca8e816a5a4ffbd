//! Names: resolving a name in a directory (`child`, `lookup`), the
//! kernel's lookup counts, and directory listings (`readdir`, `opendir`).
//! `child` and `readdir` dispatch to the family of the directory
//! (`family/`).

use super::*;

impl ReedFs {
    /// The child node called `name` in `parent`, if such a child can exist:
    /// asked of the family of `parent`.
    pub(super) fn child(&self, inner: &Inner, parent: &Node, name: &str) -> Result<Node> {
        match parent {
            Node::Root | Node::Db(_) | Node::Table(..) => self.tables_child(parent, name),
            Node::Versions(..) | Node::Rows(..) => self.versions_child(parent, name),
            Node::Rejected(_) => Self::rejected_child(parent, name),
            Node::Conflicts(_) => Self::conflicts_child(inner, parent, name),
            Node::FramesRoot(_) | Node::FrameDir(..) => Self::frames_child(inner, parent, name),
            Node::QueryRoot(_) => Self::queries_child(parent, name),
            Node::AsOfRoot(_) | Node::AsOf(..) => self.as_of_child(parent, name),
            _ => Err(FsError::NotDir),
        }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr, caller: Caller) -> Result<Attr> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        let node = self.child(&inner, &pnode, name)?;
        if let Node::Current(db, t) = &node
            && Self::replacing_by(&inner, &(*db, t.clone()), caller.pid)
        {
            return Err(FsError::NotFound);
        }
        if let Node::Scratch(db, t, n) = &node {
            let ino = Self::scratch_ino(&inner, *db, t, n).ok_or(FsError::NotFound)?;
            return self.attr_of(&mut inner, ino, &node);
        }
        let ino = inner.inodes.ino(&node);
        let attr = if Self::attr_reads_storage(&node) {
            drop(inner);
            let attr = self.attr_from_storage(ino, &node)?;
            inner = lock(&self.inner);
            attr
        } else {
            self.attr_of(&mut inner, ino, &node)?
        };
        inner.inodes.looked_up(ino);
        Ok(attr)
    }

    /// The kernel holds a reference to `ino` from a listing with attributes.
    pub fn looked_up(&self, ino: u64) {
        lock(&self.inner).inodes.looked_up(ino);
    }

    /// FUSE forget: the kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        lock(&self.inner).inodes.forgotten(ino, n);
    }

    /// The listing of directory `ino`: asked of its family.
    pub fn readdir(&self, ino: u64) -> Result<Vec<(u64, Kind, String)>> {
        Ok(self.list_dir(ino)?.0)
    }

    /// `readdir`, with the versions' log when `ino` is `@versions/` (read
    /// once, outside the namespace lock: the names and, for `opendir`, the
    /// attributes come from it).
    #[allow(clippy::type_complexity)]
    fn list_dir(&self, ino: u64) -> Result<(Vec<(u64, Kind, String)>, Option<Vec<VersionInfo>>)> {
        let node = self.node(&lock(&self.inner), ino)?;
        let log = match &node {
            // Pruned versions (their bytes removed) are not files.
            Node::Versions(db, t) => Some(self.table(*db, t)?.kept_versions()?),
            _ => None,
        };
        let mut inner = lock(&self.inner);
        let show = self.opts.show_virtual;
        let names = match &node {
            Node::Root | Node::Db(_) | Node::Table(..) => {
                self.tables_entries(&inner, &node, show)?
            }
            Node::Versions(db, t) => {
                Self::versions_entries(*db, t, log.as_deref().unwrap_or_default())
            }
            // Any key can be asked for; none is listed.
            Node::Rows(..) => Vec::new(),
            Node::Rejected(_) => self.rejected_entries(&node)?,
            Node::Conflicts(_) => self.conflicts_entries(&inner, &node)?,
            Node::FramesRoot(_) | Node::FrameDir(..) => Self::frames_entries(&inner, &node)?,
            Node::QueryRoot(_) => self.queries_entries(&inner, &node)?,
            Node::AsOfRoot(_) | Node::AsOf(..) => self.as_of_entries(&node)?,
            _ => return Err(FsError::NotDir),
        };
        let entries = names
            .into_iter()
            .map(|(n, k, name)| {
                let ino = match &n {
                    Node::Scratch(db, t, s) => Self::scratch_ino(&inner, *db, t, s).unwrap_or(0),
                    _ => inner.inodes.ino(&n),
                };
                (ino, k, name)
            })
            .collect();
        Ok((entries, log))
    }

    /// Opens directory `ino`: its listing, taken now. For `@versions/`
    /// the versions' attributes come with it (from the log, already read
    /// for the names), so a listing with attributes costs no lookup per
    /// version.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        let (entries, log) = self.list_dir(ino)?;
        let mut inner = lock(&self.inner);
        let attrs = match &log {
            Some(log) => self.versions_listing_attrs(&inner, &entries, log),
            None => vec![None; entries.len()],
        };
        let h = Handle::Dir {
            entries: Arc::new(entries),
            attrs: Arc::new(attrs),
        };
        Ok(Self::new_fh(&mut inner, h))
    }

    /// The listing of open directory `fh` (of `ino`, listed anew when the
    /// handle is not an open directory's), with the attributes it holds.
    #[allow(clippy::type_complexity)]
    pub fn listing(
        &self,
        fh: u64,
        ino: u64,
    ) -> Result<(Arc<Vec<(u64, Kind, String)>>, Arc<Vec<Option<Attr>>>)> {
        if let Some(Handle::Dir { entries, attrs }) = lock(&self.inner).handles.get(&fh) {
            return Ok((Arc::clone(entries), Arc::clone(attrs)));
        }
        let entries = self.readdir(ino)?;
        let none = vec![None; entries.len()];
        Ok((Arc::new(entries), Arc::new(none)))
    }

    pub fn releasedir(&self, fh: u64) {
        lock(&self.inner).handles.remove(&fh);
    }
}
