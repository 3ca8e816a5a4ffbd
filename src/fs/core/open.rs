//! Opening and creating files: which handle each node gets, and who may
//! write.

use super::*;

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

    /// Opens a file. `flags` are the open(2) flags.
    pub fn open(&self, ino: u64, flags: i32, caller: Caller) -> Result<(u64, Caching)> {
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let trunc = flags & libc::O_TRUNC != 0;
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        if node.is_dir() {
            return Err(FsError::IsDir);
        }
        if let (Node::ConflictFile(db, name), true) = (&node, write || trunc) {
            // The one writable virtual file: editing it resolves the conflict.
            if self.opts.read_only {
                return Err(FsError::ReadOnly("mounted read-only"));
            }
            let id = name
                .strip_suffix(".csv")
                .ok_or(FsError::NotFound)?
                .to_string();
            let buf = if trunc {
                Vec::new()
            } else {
                merge::conflicts::cells(&self.dbs[*db].db, &id)?
            };
            let h = Handle::VirtualEdit {
                db: *db,
                target: EditTarget::Conflict(id),
                buf,
                dirty: trunc,
            };
            return Ok((Self::new_fh(&mut inner, h), Caching::Direct));
        }
        if let Some((h, caching)) = self.open_query_node(&mut inner, &node, write, trunc)? {
            return Ok((Self::new_fh(&mut inner, h), caching));
        }
        if write || trunc {
            self.check_writable(&node)?;
        }
        match &node {
            Node::Schema(db, t) if write || trunc => {
                let buf = if trunc {
                    Vec::new()
                } else {
                    self.schema_file_in(&inner, *db, t)
                        .map(|(b, _)| b)
                        .unwrap_or_default()
                };
                let h = Handle::VirtualEdit {
                    db: *db,
                    target: EditTarget::Schema(t.clone()),
                    buf,
                    dirty: trunc,
                };
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::Schema(db, t) => {
                let data = Arc::new(self.schema_file_in(&inner, *db, t)?.0);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
            Node::FrameTable(db, f, t) if write || trunc => {
                let buf = if trunc {
                    Vec::new()
                } else {
                    self.frame_content_in(&inner, *db, f, t)?.as_ref().clone()
                };
                let h = Handle::writer(*db, t, buf, None, trunc, Some(f.clone()), caller);
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::FrameTable(db, f, t) => {
                let data = self.frame_content_in(&inner, *db, f, t)?;
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
            Node::FrameCtl(db, f) if write || trunc => {
                let h = Handle::FrameCtl {
                    db: *db,
                    frame: f.clone(),
                    buf: Vec::new(),
                    caller,
                };
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::FrameCtl(db, f) => {
                let data = Arc::new(Self::frame_ctl_text_in(&inner, *db, f)?);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
            Node::Current(db, t) => {
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
                    if let Handle::CurrentWrite { append, .. } = &mut h {
                        *append = flags & libc::O_APPEND != 0 && !trunc;
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
            Node::Scratch(..) => {
                let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
                if trunc {
                    s.data.set_len(0).map_err(scratch_io)?;
                    s.mtime = SystemTime::now();
                }
                Ok((
                    Self::new_fh(&mut inner, Handle::Scratch { ino }),
                    Caching::Default,
                ))
            }
            Node::VersionFile(db, t, seq) => {
                drop(inner);
                let data = Arc::new(self.table(*db, t)?.read_version(*seq)?);
                let mut inner = lock(&self.inner);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Keep,
                ))
            }
            Node::QueryFile(db, sql) => {
                drop(inner);
                let h = self.run_query(*db, sql, ResultFormat::Csv, caller)?;
                let mut inner = lock(&self.inner);
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::SavedResult(db, name, format) => {
                drop(inner);
                let h = self.run_saved(*db, name, *format, caller)?;
                let mut inner = lock(&self.inner);
                Ok((Self::new_fh(&mut inner, h), Caching::Direct))
            }
            Node::AsOfFile(db, ts, t) => {
                drop(inner);
                let table = self.table(*db, t)?;
                let data = Arc::new(table.read_version(table.seq_at(*ts)?)?);
                // A past time never changes; a future one follows the head.
                let caching = if *ts < names::now_us() {
                    Caching::Keep
                } else {
                    Caching::Direct
                };
                let mut inner = lock(&self.inner);
                Ok((Self::new_fh(&mut inner, Handle::Virtual { data }), caching))
            }
            _ => {
                drop(inner);
                let data = Arc::new(self.generate(&node)?);
                let mut inner = lock(&self.inner);
                Ok((
                    Self::new_fh(&mut inner, Handle::Virtual { data }),
                    Caching::Direct,
                ))
            }
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
        if let Node::QueryRoot(db) = pnode {
            return self.create_in_query(&mut inner, db, name, mode, flags, caller);
        }
        if let Node::Conflicts(db) = pnode {
            return self.create_in_conflicts(&mut inner, db, name, mode, flags, caller);
        }
        self.check_writable(&pnode)?;
        if let Node::FrameDir(db, f) = &pnode {
            return self.create_in_frame(&mut inner, *db, f, name, mode, flags, caller);
        }
        let Node::Table(db, t) = &pnode else {
            return Err(match pnode {
                Node::Root | Node::Db(_) => FsError::NotPermitted(
                    "only tables (directories) live here; files go inside a table directory",
                ),
                _ => FsError::NotDir,
            });
        };
        if !self.table_exists(&inner, *db, t) {
            return Err(FsError::NotFound);
        }
        if name.starts_with('@') {
            return Err(FsError::InvalidName("names starting with @ are reserved"));
        }
        let key = (*db, t.clone());
        if name == SCHEMA {
            if inner.pending_tables.contains(&key) {
                return Err(FsError::NotPermitted(
                    "save the table's current.csv before its schema",
                ));
            }
            let node = Node::Schema(*db, t.clone());
            if flags & libc::O_EXCL != 0 && self.schema_file_in(&inner, *db, t).is_ok() {
                return Err(FsError::Exists);
            }
            return Ok(self.create_edit(&mut inner, *db, node, EditTarget::Schema(t.clone())));
        }
        if name == CURRENT {
            let replacing = Self::replacing_by(&inner, &key, caller.pid);
            if !replacing && flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            // A replacement (mv from another filesystem, vim backupcopy=no):
            // a blind write of the whole table.
            inner.replacing.remove(&key);
            let ino = inner.inodes.ino(&Node::Current(*db, t.clone()));
            // Not dirty until written: a create the kernel then refuses (or
            // that writes nothing) must not commit an empty table.
            let h = Handle::writer(*db, t, Vec::new(), None, false, None, caller);
            let fh = Self::new_fh(&mut inner, h);
            let attr = self.file_attr(ino, 0, FILE_PERM, SystemTime::now());
            return Ok((attr, fh, Caching::Direct));
        }
        self.create_scratch(&mut inner, *db, t, name, mode, flags, caller)
    }

    /// A file created in a frame directory: a table's file (staged when
    /// saved), `ctl`, or a scratch file.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_in_frame(
        &self,
        inner: &mut Inner,
        db: usize,
        frame: &str,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let tables = Self::frame_tables_in(inner, db, frame)?;
        let (node, h) = match name.strip_suffix(".csv") {
            _ if name == "ctl" => (
                Node::FrameCtl(db, frame.to_string()),
                Handle::FrameCtl {
                    db,
                    frame: frame.to_string(),
                    buf: Vec::new(),
                    caller,
                },
            ),
            Some(t) if tables.iter().any(|x| x == t) => (
                Node::FrameTable(db, frame.to_string(), t.to_string()),
                Handle::writer(
                    db,
                    t,
                    Vec::new(),
                    None,
                    false,
                    Some(frame.to_string()),
                    caller,
                ),
            ),
            _ => {
                let key = frame_dir_key(frame);
                return self.create_scratch(inner, db, &key, name, mode, flags, caller);
            }
        };
        if flags & libc::O_EXCL != 0 {
            return Err(FsError::Exists);
        }
        let ino = inner.inodes.ino(&node);
        let attr = self.file_attr(ino, 0, FILE_PERM, SystemTime::now());
        Ok((attr, Self::new_fh(inner, h), Caching::Direct))
    }
}
