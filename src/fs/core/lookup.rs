//! Names: resolving a name in a directory (`child`, `lookup`), the
//! kernel's lookup counts, and directory listings.

use super::*;

impl ReedFs {
    /// Whether `pid` unlinked or renamed away table `key`'s `current.csv`
    /// and has not created the new one yet.
    pub(super) fn replacing_by(inner: &Inner, key: &(usize, String), pid: u32) -> bool {
        inner
            .replacing
            .get(key)
            .is_some_and(|(p, at)| *p == pid && at.elapsed() < REPLACEMENT_WINDOW)
    }

    /// The child node called `name` in `parent`, if such a child can exist.
    pub(super) fn child(&self, inner: &Inner, parent: &Node, name: &str) -> Result<Node> {
        let db_by_name = |n: &str| self.dbs.iter().position(|d| d.name == n);
        Ok(match parent {
            Node::Root => Node::Db(db_by_name(name).ok_or(FsError::NotFound)?),
            Node::Db(db) => match name {
                "@status" => Node::Status(*db),
                "@rejected" => Node::Rejected(*db),
                "@conflicts" => Node::Conflicts(*db),
                "@as-of" => Node::AsOfRoot(*db),
                "@frames" => Node::FramesRoot(*db),
                "@query" => Node::QueryRoot(*db),
                _ => Node::Table(*db, name.to_string()),
            },
            Node::Table(db, t) => match name {
                CURRENT => Node::Current(*db, t.clone()),
                SCHEMA => Node::Schema(*db, t.clone()),
                "@versions" => Node::Versions(*db, t.clone()),
                _ => Node::Scratch(*db, t.clone(), name.to_string()),
            },
            Node::Versions(db, t) => {
                if name == "log.csv" {
                    return Ok(Node::VersionLog(*db, t.clone()));
                }
                let stem = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                let seq = self.table(*db, t)?.seq_of(stem)?.ok_or(FsError::NotFound)?;
                Node::VersionFile(*db, t.clone(), seq)
            }
            Node::Rejected(db) => Node::RejectedFile(*db, name.to_string()),
            Node::Conflicts(db) => Self::conflicts_child(inner, *db, name),
            Node::FramesRoot(db) => {
                Self::frame_tables_in(inner, *db, name)?;
                Node::FrameDir(*db, name.to_string())
            }
            Node::QueryRoot(db) => match queries::classify(name) {
                queries::QueryName::Saved(stem) => Node::SavedQuery(*db, stem.to_string()),
                queries::QueryName::Result(stem, f) => Node::SavedResult(*db, stem.to_string(), f),
                queries::QueryName::Sql => Node::QueryFile(*db, decode_query_name(name)),
                queries::QueryName::Scratch | queries::QueryName::BadName => {
                    Node::Scratch(*db, QUERY_DIR_KEY.to_string(), name.to_string())
                }
            },
            Node::FrameDir(db, f) => {
                let tables = Self::frame_tables_in(inner, *db, f)?;
                match name.strip_suffix(".csv") {
                    _ if name == "ctl" => Node::FrameCtl(*db, f.clone()),
                    Some(t) if tables.iter().any(|x| x == t) => {
                        Node::FrameTable(*db, f.clone(), t.to_string())
                    }
                    _ => Node::Scratch(*db, frame_dir_key(f), name.to_string()),
                }
            }
            Node::AsOfRoot(db) => {
                let ts = names::parse_time(name, names::now_us()).map_err(|e| {
                    tracing::info!(name, error = %e, "@as-of: not a time");
                    FsError::NotFound
                })?;
                Node::AsOf(*db, ts)
            }
            Node::AsOf(db, ts) => {
                let t = name.strip_suffix(".csv").ok_or(FsError::NotFound)?;
                let table = self.table(*db, t)?;
                // Only tables that existed (and were not dropped) then.
                let seq = table.seq_at(*ts)?;
                if seq == 0 || table.version(seq)?.size == 0 {
                    return Err(FsError::NotFound);
                }
                Node::AsOfFile(*db, *ts, t.to_string())
            }
            _ => return Err(FsError::NotDir),
        })
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

    pub fn readdir(&self, ino: u64) -> Result<Vec<(u64, Kind, String)>> {
        let mut inner = lock(&self.inner);
        let node = self.node(&inner, ino)?;
        let show = self.opts.show_virtual;
        let mut names: Vec<(Node, Kind, String)> = Vec::new();
        match &node {
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
                    names.push((Node::Status(*db), Kind::File, "@status".into()));
                    names.push((Node::Rejected(*db), Kind::Dir, "@rejected".into()));
                    names.push((Node::Conflicts(*db), Kind::Dir, "@conflicts".into()));
                    names.push((Node::AsOfRoot(*db), Kind::Dir, "@as-of".into()));
                    names.push((Node::FramesRoot(*db), Kind::Dir, "@frames".into()));
                    names.push((Node::QueryRoot(*db), Kind::Dir, "@query".into()));
                }
            }
            Node::Table(db, t) => {
                if !self.table_exists(&inner, *db, t) {
                    return Err(FsError::NotFound);
                }
                names.push((Node::Current(*db, t.clone()), Kind::File, CURRENT.into()));
                if self.schema_in(&inner, *db, t)? {
                    names.push((Node::Schema(*db, t.clone()), Kind::File, SCHEMA.into()));
                }
                if let Some(dir) = inner.dirs.get(&(*db, t.clone())) {
                    for (n, &sino) in dir {
                        let kind = match inner.scratch.get(&sino) {
                            Some(s) if s.symlink.is_some() => Kind::Symlink,
                            _ => Kind::File,
                        };
                        names.push((Node::Scratch(*db, t.clone(), n.clone()), kind, n.clone()));
                    }
                }
                if show {
                    names.push((
                        Node::Versions(*db, t.clone()),
                        Kind::Dir,
                        "@versions".into(),
                    ));
                }
            }
            Node::Versions(db, t) => {
                for v in self.table(*db, t)?.versions()? {
                    names.push((
                        Node::VersionFile(*db, t.clone(), v.seq),
                        Kind::File,
                        format!("{}.csv", v.name),
                    ));
                }
                names.push((
                    Node::VersionLog(*db, t.clone()),
                    Kind::File,
                    "log.csv".into(),
                ));
            }
            Node::Conflicts(db) => {
                for c in merge::conflicts::list(&self.dbs[*db].db)? {
                    let name = format!("{}.csv", c.id);
                    names.push((Node::ConflictFile(*db, name.clone()), Kind::File, name));
                }
                if let Some(dir) = inner.dirs.get(&(*db, CONFLICTS_DIR_KEY.to_string())) {
                    for n in dir.keys() {
                        let node = Node::Scratch(*db, CONFLICTS_DIR_KEY.to_string(), n.clone());
                        names.push((node, Kind::File, n.clone()));
                    }
                }
            }
            Node::Rejected(db) => {
                for f in self.dbs[*db].db.rejected_names()? {
                    names.push((Node::RejectedFile(*db, f.clone()), Kind::File, f));
                }
            }
            Node::FramesRoot(db) => {
                for f in Self::frame_names_in(&inner, *db) {
                    names.push((Node::FrameDir(*db, f.clone()), Kind::Dir, f));
                }
            }
            Node::FrameDir(db, f) => {
                for t in Self::frame_tables_in(&inner, *db, f)? {
                    let n = format!("{t}.csv");
                    names.push((Node::FrameTable(*db, f.clone(), t), Kind::File, n));
                }
                names.push((Node::FrameCtl(*db, f.clone()), Kind::File, "ctl".into()));
                let key = frame_dir_key(f);
                if let Some(dir) = inner.dirs.get(&(*db, key.clone())) {
                    for n in dir.keys() {
                        let node = Node::Scratch(*db, key.clone(), n.clone());
                        names.push((node, Kind::File, n.clone()));
                    }
                }
            }
            // Times are endless: this lists nothing; readers name its children.
            Node::AsOfRoot(_) => {}
            // Saved queries (not their results: a listing runs nothing) and
            // scratch files.
            Node::QueryRoot(db) => {
                for q in self.dbs[*db].db.saved_queries()? {
                    let name = format!("{q}.sql");
                    names.push((Node::SavedQuery(*db, q), Kind::File, name));
                }
                if let Some(dir) = inner.dirs.get(&(*db, QUERY_DIR_KEY.to_string())) {
                    for n in dir.keys() {
                        let node = Node::Scratch(*db, QUERY_DIR_KEY.to_string(), n.clone());
                        names.push((node, Kind::File, n.clone()));
                    }
                }
            }
            Node::AsOf(db, ts) => {
                for t in self.dbs[*db].db.table_names()? {
                    let Ok(table) = self.table(*db, &t) else {
                        continue;
                    };
                    let seq = table.seq_at(*ts)?;
                    if seq > 0 && table.version(seq)?.size > 0 {
                        names.push((
                            Node::AsOfFile(*db, *ts, t.clone()),
                            Kind::File,
                            format!("{t}.csv"),
                        ));
                    }
                }
            }
            _ => return Err(FsError::NotDir),
        }
        Ok(names
            .into_iter()
            .map(|(n, k, name)| {
                let ino = match &n {
                    Node::Scratch(db, t, s) => Self::scratch_ino(&inner, *db, t, s).unwrap_or(0),
                    _ => inner.inodes.ino(&n),
                };
                (ino, k, name)
            })
            .collect())
    }

    /// Opens directory `ino`: its listing, taken now. For `@versions/`
    /// the versions' attributes come with it (from the log, already read
    /// for the names), so a listing with attributes costs no lookup per
    /// version.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        let entries = self.readdir(ino)?;
        let mut inner = lock(&self.inner);
        let mut attrs = vec![None; entries.len()];
        if let Some(Node::Versions(db, t)) = inner.inodes.node(ino).cloned() {
            let log = self.dbs[db].db.table(&t)?.versions()?;
            for ((child, _, _), attr) in entries.iter().zip(attrs.iter_mut()) {
                if let Some(Node::VersionFile(_, _, seq)) = inner.inodes.node(*child)
                    && let Some(v) = log.get((*seq as usize).wrapping_sub(1))
                {
                    let mut a = self.file_attr(*child, v.size, READ_ONLY_PERM, ts_time(v.ts_us));
                    a.stable = true;
                    *attr = Some(a);
                }
            }
        }
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
