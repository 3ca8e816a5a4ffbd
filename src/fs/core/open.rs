//! Opening and creating files: `open` and `create` dispatch to the family
//! of the node (or of the directory), which says which handle it gets and
//! who may write; the handles' shared helpers.

use super::*;

/// How a file is opened (from the open(2) flags), and by whom.
#[derive(Debug, Clone, Copy)]
pub(super) struct Opening {
    /// Opened for writing (O_WRONLY or O_RDWR).
    pub(super) write: bool,
    /// O_TRUNC: the content starts empty.
    pub(super) trunc: bool,
    /// O_APPEND.
    pub(super) append: bool,
    pub(super) caller: Caller,
}

impl Opening {
    /// Whether the open may change the file (writing, or O_TRUNC).
    pub(super) fn writes(&self) -> bool {
        self.write || self.trunc
    }
}

impl ReedFs {
    /// A created editable virtual file (a schema, a saved query, a conflict
    /// file): an empty edit handle, not dirty until written, so a create
    /// that writes nothing saves nothing.
    pub(super) fn create_edit(
        &self,
        inner: &mut Inner,
        db: usize,
        node: Node,
        target: EditTarget,
    ) -> (Attr, u64, Caching) {
        let ino = inner.inodes.ino(&node);
        let h = Handle::VirtualEdit {
            db,
            target,
            buf: Vec::new(),
            dirty: false,
        };
        let fh = Self::new_fh(inner, h);
        let attr = self.file_attr(ino, 0, FILE_PERM, SystemTime::now());
        (attr, fh, Caching::Direct)
    }

    pub(super) fn new_fh(inner: &mut Inner, h: Handle) -> u64 {
        let fh = inner.next_fh;
        inner.next_fh += 1;
        inner.handles.insert(fh, h);
        fh
    }

    pub(super) fn check_writable(&self, node: &Node) -> Result<()> {
        if node.is_virtual() {
            return Err(FsError::ReadOnly(
                "history and status files cannot be written",
            ));
        }
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        Ok(())
    }

    /// A handle on generated or historical content read outside the
    /// namespace lock (takes the lock: call it without).
    pub(super) fn open_data(&self, data: Arc<Vec<u8>>, caching: Caching) -> (u64, Caching) {
        let mut inner = lock(&self.inner);
        (Self::new_fh(&mut inner, Handle::Virtual { data }), caching)
    }

    /// Opens a file. `flags` are the open(2) flags. The family of the node
    /// says which handle it gets, and whether it may be written.
    pub fn open(&self, ino: u64, flags: i32, caller: Caller) -> Result<(u64, Caching)> {
        let how = Opening {
            write: flags & libc::O_ACCMODE != libc::O_RDONLY,
            trunc: flags & libc::O_TRUNC != 0,
            append: flags & libc::O_APPEND != 0,
            caller,
        };
        let inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if node.is_dir() {
            return Err(FsError::IsDir);
        }
        match &node {
            Node::Root | Node::Db(_) | Node::Table(..) | Node::Current(..) => {
                self.tables_open(inner, &node, how)
            }
            Node::Schema(..) => self.schema_open(inner, &node, how),
            Node::Scratch(..) => self.scratch_open(inner, ino, &node, how),
            Node::Versions(..)
            | Node::VersionFile(..)
            | Node::VersionLog(..)
            | Node::Rows(..)
            | Node::RowFile(..) => self.versions_open(inner, &node, how),
            Node::Changes(..) => self.changes_open(inner, &node, how),
            Node::Status(_) | Node::Metrics(_) => self.status_open(inner, &node, how),
            Node::Rejected(_) | Node::RejectedFile(..) => self.rejected_open(inner, &node, how),
            Node::Conflicts(_) | Node::ConflictFile(..) => self.conflicts_open(inner, &node, how),
            Node::AsOfRoot(_) | Node::AsOf(..) | Node::AsOfFile(..) => {
                self.as_of_open(inner, &node, how)
            }
            Node::FramesRoot(_)
            | Node::FrameDir(..)
            | Node::FrameTable(..)
            | Node::FrameSchema(..)
            | Node::FrameCtl(..) => self.frames_open(inner, &node, how),
            Node::QueryRoot(_)
            | Node::QueryFile(..)
            | Node::SavedQuery(..)
            | Node::SavedResult(..) => self.queries_open(inner, &node, how),
        }
    }

    /// Creates (and opens) a file in a table directory: a scratch file, or
    /// `current.csv` itself after it was renamed or unlinked away.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let r = self.create_named(parent, name, mode, flags, caller);
        self.explain_name(parent, name, r)
    }

    pub(super) fn create_named(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let name = name_str(name)?;
        let mut inner = lock(&self.inner);
        let pnode = self.node(&inner, parent)?;
        match pnode {
            Node::QueryRoot(db) => {
                return self.create_in_query(&mut inner, db, name, mode, flags, caller);
            }
            Node::Conflicts(db) => {
                return self.create_in_conflicts(&mut inner, db, name, mode, flags, caller);
            }
            _ => {}
        }
        self.check_writable(&pnode)?;
        match &pnode {
            Node::FrameDir(db, f) => {
                self.create_in_frame(&mut inner, *db, f, name, mode, flags, caller)
            }
            Node::Table(db, t) => {
                self.create_in_table(&mut inner, *db, t, name, mode, flags, caller)
            }
            Node::Root | Node::Db(_) => Err(FsError::NotPermitted(
                "only tables (directories) live here; files go inside a table directory",
            )),
            _ => Err(FsError::NotDir),
        }
    }
}
