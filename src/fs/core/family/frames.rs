//! `<db>/@frames/`: multi-table frames staged and committed with shell tools
//! (docs/MOUNT.md, "Frames"). Part of `core`: it works on the
//! filesystem's state directly: begin, stage with validation, `ctl`
//! commands and text, and the frames' names, listings, attributes, opens,
//! creates, unlinks and renames.
//!
//! - `mkdir @frames/<name>` begins a frame; its directory shows every table
//!   of the database as `<table>.csv`, as it was when the frame began.
//! - Writing `<table>.csv` (`>`, `cp`, `sed -i`, any save pattern) stages
//!   the content; it is validated at once, so a bad file fails its save.
//! - Writing `<table>.schema.toml` stages a new schema for the table: the
//!   frame then commits the schema and the table's content together, the
//!   content checked against the new schema (a migration). Reading it shows
//!   the staged schema, else the table's schema now.
//! - `echo commit > @frames/<name>/ctl` commits every staged table at once,
//!   merging with commits made since the frame began; `echo abort > ctl`
//!   drops it. Reading `ctl` tells what is staged or how the frame ended.
//! - `rmdir @frames/<name>` removes the frame (aborting it if still open).
//!
//! Staged content lives in the daemon's memory until the commit: a daemon
//! that dies before it loses the staging, never half a frame.

use crate::fs::core::family::Listing;
use crate::fs::core::handles::EditTarget;
use crate::fs::core::*;
use crate::storage::{Frame, TableIndex};

/// A frame being staged through the mount.
#[derive(Debug)]
pub(in crate::fs::core) struct OpenFrame {
    /// `None` once committed or aborted (or while its commit runs).
    frame: Option<Frame>,
    /// The tables when the frame began, with their head then: the merge
    /// base of what is staged, and what unstaged files show.
    started: BTreeMap<String, u64>,
    began_us: u64,
    /// When something was last staged or unstaged: the files' mtime. A
    /// stable one, so an editor that compares it before saving (vim) does
    /// not see a file changed behind its back.
    changed_us: u64,
    /// How the frame ended, for `ctl`.
    outcome: Option<String>,
}

impl OpenFrame {
    /// Each table's head when the frame began: the merge bases it needs.
    pub(in crate::fs::core) fn bases(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.started.iter()
    }
}

/// The name of a table's schema file in a frame directory.
const SCHEMA_SUFFIX: &str = ".schema.toml";

/// Whether a frame's table list (a `frame_tables_in` result) holds `t`.
fn frame_has(tables: &Result<Vec<String>>, t: &str) -> bool {
    tables.as_ref().is_ok_and(|ts| ts.iter().any(|x| x == t))
}

impl ReedFs {
    /// A name in `@frames/` (a frame) or in a frame's directory (`ctl`, a
    /// table's file, or a scratch file).
    pub(in crate::fs::core) fn frames_child(
        inner: &Inner,
        parent: &Node,
        name: &str,
    ) -> Result<Node> {
        Ok(match parent {
            Node::FramesRoot(db) => {
                Self::frame_tables_in(inner, *db, name)?;
                Node::FrameDir(*db, name.to_string())
            }
            Node::FrameDir(db, f) => {
                let tables = Self::frame_tables_in(inner, *db, f)?;
                if let Some(t) = name.strip_suffix(SCHEMA_SUFFIX)
                    && tables.iter().any(|x| x == t)
                {
                    return Ok(Node::FrameSchema(*db, f.clone(), t.to_string()));
                }
                match name.strip_suffix(".csv") {
                    _ if name == "ctl" => Node::FrameCtl(*db, f.clone()),
                    Some(t) if tables.iter().any(|x| x == t) => {
                        Node::FrameTable(*db, f.clone(), t.to_string())
                    }
                    _ => Node::Scratch(*db, frame_dir_key(f), name.to_string()),
                }
            }
            _ => return Err(FsError::NotDir),
        })
    }

    /// The listing of `@frames/` (the frames being staged) or of a frame:
    /// its tables' files, `ctl`, scratch files.
    pub(in crate::fs::core) fn frames_entries(inner: &Inner, node: &Node) -> Result<Listing> {
        let mut names: Listing = Vec::new();
        match node {
            Node::FramesRoot(db) => {
                for f in Self::frame_names_in(inner, *db) {
                    names.push((Node::FrameDir(*db, f.clone()), Kind::Dir, f));
                }
            }
            Node::FrameDir(db, f) => {
                for t in Self::frame_tables_in(inner, *db, f)? {
                    let n = format!("{t}.csv");
                    names.push((Node::FrameTable(*db, f.clone(), t), Kind::File, n));
                }
                // A schema is listed once staged (any table's opens by name).
                let frame = Self::frame_in(inner, *db, f)?.frame.as_ref();
                for (t, _) in frame.into_iter().flat_map(|fr| fr.staged_schemas()) {
                    let node = Node::FrameSchema(*db, f.clone(), t.to_string());
                    names.push((node, Kind::File, format!("{t}{SCHEMA_SUFFIX}")));
                }
                names.push((Node::FrameCtl(*db, f.clone()), Kind::File, "ctl".into()));
                names.extend(Self::scratch_entries(inner, *db, &frame_dir_key(f)));
            }
            _ => return Err(FsError::NotDir),
        }
        Ok(names)
    }

    /// Attributes of `@frames/`, a frame, its tables' files and `ctl`.
    pub(in crate::fs::core) fn frames_attr(
        &self,
        inner: &Inner,
        ino: u64,
        node: &Node,
    ) -> Result<Attr> {
        Ok(match node {
            Node::FramesRoot(_) => self.dir_attr(ino, self.started),
            Node::FrameDir(db, f) => {
                Self::frame_tables_in(inner, *db, f)?;
                self.dir_attr(ino, self.started)
            }
            Node::FrameTable(db, f, t) => {
                let len = self.frame_len_in(inner, *db, f, t)?;
                self.file_attr(ino, len, FILE_PERM, Self::frame_mtime(inner, *db, f)?)
            }
            Node::FrameSchema(db, f, t) => {
                let len = self.frame_schema_in(inner, *db, f, t)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, Self::frame_mtime(inner, *db, f)?)
            }
            Node::FrameCtl(db, f) => {
                let len = Self::frame_ctl_text_in(inner, *db, f)?.len() as u64;
                self.file_attr(ino, len, FILE_PERM, SystemTime::now())
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Opens a frame's table file (writing stages at the close) or `ctl`
    /// (writing runs a command).
    pub(in crate::fs::core) fn frames_open(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let Opening { trunc, caller, .. } = how;
        let h = match node {
            Node::FrameTable(db, f, t) if how.writes() => {
                let buf = if trunc {
                    Vec::new()
                } else {
                    self.frame_content_in(&inner, *db, f, t)?.as_ref().clone()
                };
                Handle::writer(*db, t, buf, None, trunc, Some(f.clone()), caller)
            }
            Node::FrameTable(db, f, t) => Handle::Virtual {
                data: self.frame_content_in(&inner, *db, f, t)?,
            },
            Node::FrameSchema(db, f, t) => {
                let text = self.frame_schema_in(&inner, *db, f, t)?;
                if how.writes() {
                    Handle::VirtualEdit {
                        db: *db,
                        target: EditTarget::FrameSchema(f.clone(), t.clone()),
                        buf: if trunc { Vec::new() } else { text },
                        dirty: trunc,
                    }
                } else {
                    Handle::Virtual {
                        data: Arc::new(text),
                    }
                }
            }
            Node::FrameCtl(db, f) if how.writes() => Handle::FrameCtl {
                db: *db,
                frame: f.clone(),
                buf: Vec::new(),
                caller,
            },
            Node::FrameCtl(db, f) => Handle::Virtual {
                data: Arc::new(Self::frame_ctl_text_in(&inner, *db, f)?),
            },
            _ => return Err(FsError::IsDir),
        };
        Ok((Self::new_fh(&mut inner, h), Caching::Direct))
    }

    /// A file created in a frame directory: a table's file (staged when
    /// saved), `ctl`, or a scratch file.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::fs::core) fn create_in_frame(
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
        if let Some(t) = name.strip_suffix(SCHEMA_SUFFIX)
            && tables.iter().any(|x| x == t)
        {
            if flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            let node = Node::FrameSchema(db, frame.to_string(), t.to_string());
            let target = EditTarget::FrameSchema(frame.to_string(), t.to_string());
            return Ok(self.create_edit(inner, db, node, target));
        }
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

    /// `mkdir @frames/<name>`: begins a frame.
    pub(in crate::fs::core) fn mkdir_frame(
        &self,
        inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
    ) -> Result<Attr> {
        drop(inner);
        self.begin_frame(db, name)?;
        let node = Node::FrameDir(db, name.to_string());
        let mut inner = lock(&self.inner);
        let ino = inner.inodes.ino(&node);
        self.attr_of(&mut inner, ino, &node)
    }

    /// `rm` in a frame directory: a scratch file, or a table's file (which
    /// unstages it); `ctl` stays.
    pub(in crate::fs::core) fn unlink_in_frame(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        f: &str,
        name: &str,
    ) -> Result<()> {
        let key = frame_dir_key(f);
        if inner
            .dirs
            .get(&(db, key.clone()))
            .is_some_and(|d| d.contains_key(name))
        {
            Self::drop_scratch_name(&mut inner, db, &key, name);
            return Ok(());
        }
        drop(inner);
        if let Some(t) = name.strip_suffix(SCHEMA_SUFFIX) {
            return self.unstage_schema(db, f, t);
        }
        match name.strip_suffix(".csv") {
            Some(t) => self.unstage(db, f, t),
            None if name == "ctl" => Err(FsError::NotPermitted("ctl stays while the frame does")),
            None => Err(FsError::NotFound),
        }
    }

    /// `mv` inside a frame directory: a scratch file onto `<table>.csv`
    /// stages its content (sed -i, rsync, atomic saves); scratch to scratch
    /// moves.
    pub(in crate::fs::core) fn rename_in_frame(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        f: &str,
        name: &str,
        newname: &str,
    ) -> Result<()> {
        let key = (db, frame_dir_key(f));
        if !inner.dirs.get(&key).is_some_and(|d| d.contains_key(name)) {
            return Err(FsError::NotPermitted(
                "only scratch files move inside a frame; save onto <table>.csv to stage",
            ));
        }
        let schema_of = newname
            .strip_suffix(SCHEMA_SUFFIX)
            .filter(|t| frame_has(&Self::frame_tables_in(&inner, db, f), t));
        if let Some(t) = schema_of {
            return self.save_scratch_onto(inner, db, &key.1, name, |text| {
                self.stage_schema(db, f, t, text)
            });
        }
        let target = newname
            .strip_suffix(".csv")
            .filter(|t| frame_has(&Self::frame_tables_in(&inner, db, f), t));
        if let Some(t) = target {
            // sed -i, rsync, atomic saves: the file's content is staged.
            return self.save_scratch_onto(inner, db, &key.1, name, |content| {
                self.stage(db, f, t, content)
            });
        }
        if newname == "ctl" {
            return Err(FsError::NotPermitted("ctl is written, not replaced"));
        }
        self.move_scratch(&mut inner, db, &key.1, name, newname)
    }

    fn open_frame<'a>(
        frames: &'a mut std::collections::HashMap<(usize, String), OpenFrame>,
        db: usize,
        name: &str,
    ) -> Result<&'a mut OpenFrame> {
        frames
            .get_mut(&(db, name.to_string()))
            .ok_or(FsError::NotFound)
    }

    /// `mkdir @frames/<name>`.
    pub(in crate::fs::core) fn begin_frame(&self, db: usize, name: &str) -> Result<()> {
        names::validate(name)
            .map_err(|_| FsError::InvalidName("frame names use letters, digits, '_' and '-'"))?;
        if lock(&self.inner)
            .frames
            .contains_key(&(db, name.to_string()))
        {
            return Err(FsError::Exists);
        }
        let mdb = &self.dbs[db].db;
        let mut started = BTreeMap::new();
        for t in mdb.table_names()? {
            if let Ok(table) = self.table(db, &t) {
                started.insert(t, table.head_seq()?);
            }
        }
        let frame = Frame::begin(name)?;
        let mut inner = lock(&self.inner);
        if inner.frames.contains_key(&(db, name.to_string())) {
            return Err(FsError::Exists);
        }
        inner.frames.insert(
            (db, name.to_string()),
            OpenFrame {
                frame: Some(frame),
                started,
                began_us: names::now_us(),
                changed_us: names::now_us(),
                outcome: None,
            },
        );
        Ok(())
    }

    /// `rmdir @frames/<name>`: drops the frame and its scratch files.
    pub(in crate::fs::core) fn remove_frame(&self, db: usize, name: &str) -> Result<()> {
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        if of.frame.is_none() && of.outcome.is_none() {
            return Err(FsError::NotPermitted("the frame is committing"));
        }
        inner.frames.remove(&(db, name.to_string()));
        let key = frame_dir_key(name);
        let scratch: Vec<String> = inner
            .dirs
            .get(&(db, key.clone()))
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        for n in scratch {
            Self::drop_scratch_name(&mut inner, db, &key, &n);
        }
        Ok(())
    }

    /// The frame to stage into: refused while it commits, or once it ended.
    fn staging(of: &mut OpenFrame) -> Result<&mut Frame> {
        match (&mut of.frame, &of.outcome) {
            (Some(f), _) => Ok(f),
            (None, None) => Err(FsError::NotPermitted(
                "the frame is committing; stage again once ctl says how it ended",
            )),
            (None, Some(_)) => Err(FsError::NotPermitted(
                "the frame is committed or aborted; make a new one",
            )),
        }
    }

    /// The frames of database `db` being staged.
    pub(in crate::fs::core) fn frame_names_in(inner: &Inner, db: usize) -> Vec<String> {
        inner
            .frames
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The mtime of a frame's files: when it last changed.
    fn frame_mtime(inner: &Inner, db: usize, name: &str) -> Result<SystemTime> {
        let us = Self::frame_in(inner, db, name)?.changed_us;
        Ok(std::time::UNIX_EPOCH + std::time::Duration::from_micros(us))
    }

    fn frame_in<'a>(inner: &'a Inner, db: usize, name: &str) -> Result<&'a OpenFrame> {
        inner
            .frames
            .get(&(db, name.to_string()))
            .ok_or(FsError::NotFound)
    }

    /// The tables of a frame (as it began); NotFound when there is no such frame.
    pub(in crate::fs::core) fn frame_tables_in(
        inner: &Inner,
        db: usize,
        name: &str,
    ) -> Result<Vec<String>> {
        Ok(Self::frame_in(inner, db, name)?
            .started
            .keys()
            .cloned()
            .collect())
    }

    /// What `<table>.csv` of a frame holds: its staged content, else the
    /// table as the frame began.
    pub(in crate::fs::core) fn frame_content_in(
        &self,
        inner: &Inner,
        db: usize,
        name: &str,
        table: &str,
    ) -> Result<Arc<Vec<u8>>> {
        let of = Self::frame_in(inner, db, name)?;
        if let Some(s) = of
            .frame
            .as_ref()
            .and_then(|f| f.staged().find(|(t, _)| *t == table))
        {
            return Ok(Arc::new(s.1.content.clone()));
        }
        let seq = *of.started.get(table).ok_or(FsError::NotFound)?;
        Ok(self.table(db, table)?.read_version_shared(seq)?)
    }

    /// The size of `<table>.csv` of a frame, without reading the version.
    pub(in crate::fs::core) fn frame_len_in(
        &self,
        inner: &Inner,
        db: usize,
        name: &str,
        table: &str,
    ) -> Result<u64> {
        let of = Self::frame_in(inner, db, name)?;
        if let Some(s) = of
            .frame
            .as_ref()
            .and_then(|f| f.staged().find(|(t, _)| *t == table))
        {
            return Ok(s.1.content.len() as u64);
        }
        let seq = *of.started.get(table).ok_or(FsError::NotFound)?;
        Ok(self.table(db, table)?.version(seq)?.size)
    }

    /// Stages `content` for `table` after checking it is a valid table.
    pub(in crate::fs::core) fn stage(
        &self,
        db: usize,
        name: &str,
        table: &str,
        content: Vec<u8>,
    ) -> Result<()> {
        let delim = self.dbs[db].db.config().delimiter_byte();
        let content = if content.is_empty() {
            // Emptying the file deletes every row: the header stays.
            let start = {
                let inner = lock(&self.inner);
                self.frame_content_in(&inner, db, name, table)?
            };
            let header_end = TableIndex::parse(&start, delim).map_or(0, |i| i.header_end);
            start[..header_end].to_vec()
        } else {
            content
        };
        if let Err(e) = TableIndex::parse(&content, delim) {
            let reason = format!("frame {name}: {e}");
            self.status[db].push(Event::Rejected {
                table: table.to_string(),
                reason: reason.clone(),
                kept: None,
            });
            return Err(FsError::InvalidContent(reason));
        }
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        let base = *of.started.get(table).ok_or(FsError::NotFound)?;
        let frame = Self::staging(of)?;
        frame.stage(table, Base::Version(base), content)?;
        of.changed_us = names::now_us();
        Ok(())
    }

    /// `rm @frames/<name>/<table>.csv`: takes the table out of the frame
    /// (the file shows the table as the frame began again).
    pub(in crate::fs::core) fn unstage(&self, db: usize, name: &str, table: &str) -> Result<()> {
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        if !of.started.contains_key(table) {
            return Err(FsError::NotFound);
        }
        if let Some(f) = of.frame.as_mut() {
            f.unstage(table);
        }
        of.changed_us = names::now_us();
        Ok(())
    }

    /// What `<table>.schema.toml` of a frame holds: the schema staged, else
    /// the table's schema now (empty when it has none).
    pub(in crate::fs::core) fn frame_schema_in(
        &self,
        inner: &Inner,
        db: usize,
        name: &str,
        table: &str,
    ) -> Result<Vec<u8>> {
        let of = Self::frame_in(inner, db, name)?;
        if let Some((_, s)) = of
            .frame
            .as_ref()
            .and_then(|f| f.staged_schemas().find(|(t, _)| *t == table))
        {
            return Ok(s.clone().unwrap_or_default().into_bytes());
        }
        let text = self.dbs[db].db.schema_text(table)?.and_then(|r| r.text);
        Ok(text.unwrap_or_default().into_bytes())
    }

    /// Stages `text` as `table`'s schema in frame `name`, after checking it
    /// parses, holds together and names columns of the frame's content for
    /// the table (the rows are checked at the commit).
    pub(in crate::fs::core) fn stage_schema(
        &self,
        db: usize,
        name: &str,
        table: &str,
        text: Vec<u8>,
    ) -> Result<()> {
        let delim = self.dbs[db].db.config().delimiter_byte();
        let checked = String::from_utf8(text)
            .map_err(|_| "schema.toml is not UTF-8".to_string())
            .and_then(|text| {
                let content = {
                    let inner = lock(&self.inner);
                    self.frame_content_in(&inner, db, name, table)
                        .map_err(|e| e.to_string())?
                };
                let header = crate::storage::csv::header_columns(&content, delim)
                    .map_err(|e| e.to_string())?;
                crate::storage::Schema::parse(&text, table, Some(&header))
                    .map_err(|e| e.to_string())?;
                Ok(text)
            });
        let text = match checked {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("frame {name}: {e}");
                self.status[db].push(Event::Rejected {
                    table: format!("{table}{SCHEMA_SUFFIX}"),
                    reason: reason.clone(),
                    kept: None,
                });
                return Err(FsError::InvalidContent(reason));
            }
        };
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        if !of.started.contains_key(table) {
            return Err(FsError::NotFound);
        }
        let frame = Self::staging(of)?;
        frame.stage_schema(table, Some(text))?;
        of.changed_us = names::now_us();
        Ok(())
    }

    /// `rm @frames/<name>/<table>.schema.toml`: takes the schema out of the frame.
    pub(in crate::fs::core) fn unstage_schema(
        &self,
        db: usize,
        name: &str,
        table: &str,
    ) -> Result<()> {
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        if !of.started.contains_key(table) {
            return Err(FsError::NotFound);
        }
        if let Some(f) = of.frame.as_mut() {
            f.unstage_schema(table);
        }
        of.changed_us = names::now_us();
        Ok(())
    }

    /// What reading `ctl` shows.
    pub(in crate::fs::core) fn frame_ctl_text_in(
        inner: &Inner,
        db: usize,
        name: &str,
    ) -> Result<Vec<u8>> {
        let of = Self::frame_in(inner, db, name)?;
        if let Some(o) = &of.outcome {
            return Ok(o.clone().into_bytes());
        }
        let staged: Vec<String> = of
            .frame
            .as_ref()
            .map(|f| {
                let tables = f.staged().map(|(t, _)| t.to_string());
                let schemas = f
                    .staged_schemas()
                    .map(|(t, _)| format!("{t}{SCHEMA_SUFFIX}"));
                tables.chain(schemas).collect()
            })
            .unwrap_or_default();
        Ok(format!(
            "open {name}\nbegan {}\nstaged {}\nwrite `commit` or `abort` to this file\n",
            names::format_ts_human(of.began_us),
            if staged.is_empty() {
                "(nothing)".to_string()
            } else {
                staged.join(",")
            }
        )
        .into_bytes())
    }

    /// A write to `ctl` through handle `fh`: a command runs as soon as its
    /// line is complete, so the write itself fails when it does (a shell's
    /// `echo commit > ctl` never sees errors of close).
    pub(in crate::fs::core) fn write_frame_ctl(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        fh: u64,
        data: &[u8],
    ) -> Result<u32> {
        let Some(Handle::FrameCtl {
            db,
            frame,
            buf,
            caller,
        }) = inner.handles.get_mut(&fh)
        else {
            return Err(FsError::BadHandle);
        };
        buf.extend_from_slice(data);
        if buf.len() > 4096 {
            buf.clear();
            return Err(FsError::InvalidContent(
                "ctl takes `commit` or `abort`".into(),
            ));
        }
        if buf.contains(&b'\n') {
            let command = String::from_utf8_lossy(&std::mem::take(buf)).into_owned();
            let (db, frame, caller) = (*db, frame.clone(), *caller);
            drop(inner);
            self.frame_command(db, &frame, &command, caller)?;
        }
        Ok(data.len() as u32)
    }

    /// A command written to `ctl`: `commit` or `abort`.
    pub(in crate::fs::core) fn frame_command(
        &self,
        db: usize,
        name: &str,
        command: &str,
        caller: Caller,
    ) -> Result<()> {
        let frame = {
            let mut inner = lock(&self.inner);
            let of = Self::open_frame(&mut inner.frames, db, name)?;
            match command.trim() {
                "abort" => {
                    if of.frame.take().is_some() {
                        of.outcome = Some(format!("aborted {name}\n"));
                    }
                    return Ok(());
                }
                "commit" => of.frame.take().ok_or(FsError::NotPermitted(
                    "the frame is committed or aborted; make a new one",
                ))?,
                _ => {
                    return Err(FsError::InvalidContent(format!(
                        "frame {name}: unknown command {:?}; write `commit` or `abort`",
                        command.trim()
                    )));
                }
            }
        };
        let mdb = &self.dbs[db].db;
        let user = user_name(caller.uid);
        // Kept to put back if the commit fails: the user can fix and retry,
        // under a new id (this attempt's records keep this one).
        let retry = frame.renewed();
        let result = merge::commit_frame_merging(mdb, frame, &user, mdb.config().conflict_policy);
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        match result {
            Ok((done, overwritten)) => {
                let mut text = format!(
                    "committed {name}\nid {}\ntime {}\n",
                    done.id,
                    names::format_ts_human(done.ts_us)
                );
                let mut changed = Vec::new();
                for t in &done.schemas {
                    text.push_str(&format!("{t}{SCHEMA_SUFFIX} set\n"));
                }
                for (t, c) in &done.tables {
                    text.push_str(&format!(
                        "{t} {}\n",
                        if c.created {
                            format!("version {}", c.version.seq)
                        } else {
                            "unchanged".to_string()
                        }
                    ));
                    if c.created {
                        changed.push((t.clone(), c.version.clone()));
                    }
                }
                of.outcome = Some(text);
                let mut inos: Vec<u64> = changed
                    .iter()
                    .map(|(t, _)| inner.inodes.ino(&Node::Current(db, t.clone())))
                    .collect();
                for t in &done.schemas {
                    inos.push(inner.inodes.ino(&Node::Schema(db, t.clone())));
                }
                drop(inner);
                for (t, version) in changed {
                    self.status[db].push(Event::Commit { table: t, version });
                }
                for (table, conflict) in overwritten {
                    self.status[db].push(Event::Overwritten { table, conflict });
                }
                for ino in inos {
                    self.invalidate(ino);
                }
                self.feed_notify();
                Ok(())
            }
            Err(e) => {
                of.frame = Some(retry);
                let reason = format!("frame {name} not committed: {}", StorageError::chain(&e));
                drop(inner);
                self.status[db].push(Event::Rejected {
                    table: format!("@frames/{name}"),
                    reason: reason.clone(),
                    kept: Some(format!("@frames/{name}/ (still staged)")),
                });
                Err(e.into())
            }
        }
    }
}
