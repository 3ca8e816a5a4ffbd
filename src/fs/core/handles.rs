//! Handles: what an open file is (`Handle`), reading and writing
//! through it, and its close: `flush`, `fsync`, `release` and the commit of
//! a handle's save.

use super::*;

#[derive(Debug)]
pub(super) enum Handle {
    /// `current.csv`, opened for reading: a snapshot of the head, and with
    /// passthrough the backing file holding exactly those bytes.
    CurrentRead {
        data: Arc<Vec<u8>>,
        backing: Option<std::fs::File>,
    },
    /// `current.csv`, opened for writing: a private buffer committed at
    /// the close after its data (see `flush`). `base` is the version it
    /// started from (`None`: a blind write against the head).
    CurrentWrite {
        db: usize,
        table: String,
        buf: Vec<u8>,
        base: Option<u64>,
        dirty: bool,
        /// Opened with O_APPEND (and not cut since): every write lands at
        /// the end whatever its offset, and the save appends this handle's
        /// bytes (`buf[appended_from..]`) to the head as it is when the save
        /// commits, so concurrent appenders each land exactly once.
        append: bool,
        appended_from: usize,
        /// The durable copy an fsync made before the commit (`unsaved/`).
        unsaved: Option<String>,
        /// A modification time set through this handle before its data
        /// committed (`cp -a`, rsync `--inplace`): given to that version.
        mtime: Option<SystemTime>,
        /// A write was refused (EFBIG): the content is incomplete and is
        /// never committed.
        failed: bool,
        /// Flushes seen from the opening process (its closes of this open
        /// file).
        flushes: u32,
        /// The process (thread group) that opened it: its closes commit a
        /// save with no data (`: > f`, `truncate -s 0`).
        opener: u32,
        /// The processes that wrote through it since its last commit: a
        /// close by one of them commits (a shell that opens for `cmd > f`
        /// and a child that writes and exits: the child's exit commits);
        /// a close by any other process (a child that inherited the
        /// descriptor and never wrote) closes a copy and commits nothing.
        writers: Vec<u32>,
        /// The thread that wrote last and its process: a writer's writes
        /// look its process up in /proc once, not once per write.
        last_writer: Option<(u32, u32)>,
        /// Some program closed it (any flush): one never closed was never
        /// really open (see `release`).
        closed: bool,
        /// Emptied or cut by ftruncate through this handle (`truncate -s`):
        /// a save even without data, so its close commits. (O_TRUNC
        /// arrives with the open instead: FUSE_ATOMIC_O_TRUNC.)
        truncated: bool,
        /// `@frames/<frame>/<table>.csv`: saving stages into the frame
        /// instead of committing.
        frame: Option<String>,
    },
    /// `@frames/<frame>/ctl` opened for writing: a command, run at close.
    FrameCtl {
        db: usize,
        frame: String,
        buf: Vec<u8>,
        /// Who opened it: the author of a commit it runs.
        caller: Caller,
    },
    Scratch {
        ino: u64,
    },
    /// A writable virtual file opened for writing: its buffer is applied
    /// at the close that follows written data.
    VirtualEdit {
        db: usize,
        target: EditTarget,
        buf: Vec<u8>,
        dirty: bool,
    },
    /// Generated or historical content, fixed at open.
    Virtual {
        data: Arc<Vec<u8>>,
    },
    /// An open directory: its listing as of opendir, so the pages of one
    /// listing are read from one snapshot (a listing of 10k versions is
    /// built once, not once per page).
    Dir {
        entries: Arc<Vec<(u64, Kind, String)>>,
        /// Attributes taken with the listing where that costs nothing
        /// more (a table's versions), aligned with `entries`.
        attrs: Arc<Vec<Option<Attr>>>,
    },
    /// A query result too large for memory, in an anonymous file.
    Spilled {
        file: Arc<std::fs::File>,
    },
    /// A change feed file: its reads go to `read_feed` (family/changes.rs).
    Feed,
}

/// What saving a [`Handle::VirtualEdit`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EditTarget {
    /// `@conflicts/<id>.csv`: resolves the conflict.
    Conflict(String),
    /// `@query/<name>.sql`: saves the query.
    SavedQuery(String),
    /// `<table>/schema.toml`: saves the table's schema.
    Schema(String),
    /// `@frames/<frame>/<table>.schema.toml`: stages (frame, table)'s schema.
    FrameSchema(String, String),
}

impl Handle {
    /// A writer of a table's content (`current.csv`, or a frame's
    /// `<table>.csv` when `frame` is set).
    pub(super) fn writer(
        db: usize,
        table: &str,
        buf: Vec<u8>,
        base: Option<u64>,
        dirty: bool,
        frame: Option<String>,
        opener: Caller,
    ) -> Handle {
        Handle::CurrentWrite {
            db,
            table: table.to_string(),
            appended_from: buf.len(),
            buf,
            base,
            dirty,
            append: false,
            unsaved: None,
            mtime: None,
            failed: false,
            flushes: 0,
            opener: process_of(opener.pid),
            writers: Vec::new(),
            last_writer: None,
            closed: false,
            truncated: false,
            frame,
        }
    }

    /// The size a writer's own fstat must see: what it wrote so far.
    pub(super) fn written_len(&self) -> Option<u64> {
        match self {
            Handle::CurrentWrite { buf, .. } | Handle::VirtualEdit { buf, .. } => {
                Some(buf.len() as u64)
            }
            _ => None,
        }
    }
}

/// What a save of `current.csv` commits.
pub(super) enum Save {
    /// The whole table as the writer made it, from version `base` (`None`: a
    /// blind write against the head).
    Whole { content: Vec<u8>, base: Option<u64> },
    /// Bytes appended (O_APPEND): added to the head as it is at commit.
    Append(Vec<u8>),
}

impl ReedFs {
    /// The backing file of a passthrough read handle (taken once).
    pub fn take_backing_file(&self, fh: u64) -> Option<std::fs::File> {
        match lock(&self.inner).handles.get_mut(&fh) {
            Some(Handle::CurrentRead { backing, .. }) => backing.take(),
            _ => None,
        }
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let inner = lock(&self.inner);
        if let Some(Handle::Spilled { file }) = inner.handles.get(&fh) {
            let file = Arc::clone(file);
            drop(inner);
            return Self::read_spilled(&file, offset, size);
        }
        let bytes: &[u8] = match inner.handles.get(&fh).ok_or(FsError::BadHandle)? {
            Handle::CurrentRead { data, .. } | Handle::Virtual { data } => data,
            Handle::CurrentWrite { buf, .. }
            | Handle::VirtualEdit { buf, .. }
            | Handle::FrameCtl { buf, .. } => buf,
            Handle::Scratch { ino } => {
                let s = inner.scratch.get(ino).ok_or(FsError::NotFound)?;
                return s.data.read(offset, size).map_err(scratch_io);
            }
            Handle::Spilled { .. } | Handle::Dir { .. } | Handle::Feed => {
                return Err(FsError::BadHandle);
            }
        };
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(size as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    /// A read of a result in an anonymous file (outside the namespace lock).
    pub(super) fn read_spilled(file: &std::fs::File, offset: u64, size: u32) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(FsError::Storage(StorageError::io(
                        "read a query result",
                        "(anonymous file)",
                        e,
                    )));
                }
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// A write by the process that opened the handle.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        self.write_as(fh, offset, data, None)
    }

    /// A write by `caller` (`None`: the process that opened the handle).
    pub fn write_as(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        caller: Option<Caller>,
    ) -> Result<u32> {
        let max = self.opts.max_file_bytes;
        let mut inner = lock(&self.inner);
        if let Some(Handle::CurrentWrite {
            writers,
            opener,
            last_writer,
            ..
        }) = inner.handles.get_mut(&fh)
        {
            let p = match (caller, *last_writer) {
                (None, _) => *opener,
                (Some(c), Some((pid, process))) if pid == c.pid => process,
                (Some(c), _) => {
                    let process = process_of(c.pid);
                    *last_writer = Some((c.pid, process));
                    process
                }
            };
            if !writers.contains(&p) {
                writers.push(p);
            }
        }
        if let Some(Handle::FrameCtl { .. }) = inner.handles.get(&fh) {
            return self.write_frame_ctl(inner, fh, data);
        }
        let end = offset.checked_add(data.len() as u64).filter(|&e| e <= max);
        if end.is_none() {
            if let Some(Handle::CurrentWrite { failed, .. }) = inner.handles.get_mut(&fh) {
                *failed = true;
            }
            return Err(FsError::TooBig(max));
        }
        let buf: &mut Vec<u8> = match inner.handles.get_mut(&fh).ok_or(FsError::BadHandle)? {
            Handle::CurrentWrite {
                buf, dirty, append, ..
            } => {
                *dirty = true;
                if *append {
                    // O_APPEND: at the end of this handle's file, whatever
                    // offset the kernel computed from a size another writer
                    // may have changed meanwhile (never a gap of zeros).
                    if buf.len() as u64 + data.len() as u64 > max {
                        return Err(FsError::TooBig(max));
                    }
                    buf.extend_from_slice(data);
                    return Ok(data.len() as u32);
                }
                buf
            }
            Handle::Scratch { ino } => {
                let ino = *ino;
                let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
                s.mtime = SystemTime::now();
                s.mtime_set = false;
                s.data.write(offset, data).map_err(scratch_io)?;
                return Ok(data.len() as u32);
            }
            Handle::VirtualEdit { buf, dirty, .. } => {
                *dirty = true;
                buf
            }
            _ => return Err(FsError::ReadOnly("opened for reading")),
        };
        let offset = offset as usize;
        if buf.len() < offset + data.len() {
            buf.resize(offset + data.len(), 0);
        }
        buf[offset..offset + data.len()].copy_from_slice(data);
        Ok(data.len() as u32)
    }

    /// A flush (every close sends one). It commits a handle that has
    /// written data since its last commit: close(2) waits for the flush but
    /// not for the release, so this is where `cp` and `>` learn that their
    /// content was refused, and where their commit is durable before close
    /// returns. A flush with nothing written (the early one of a shell `>`,
    /// sent before any data) commits nothing.
    pub fn flush(&self, fh: u64, caller: Caller) -> Result<()> {
        let process = process_of(caller.pid);
        let written = match lock(&self.inner)
            .handles
            .get_mut(&fh)
            .ok_or(FsError::BadHandle)?
        {
            // An empty buffer commits only at a second close: the first one
            // of a shell `>` comes before any data, the second of `: > f`
            // (nothing written) is the end of the save.
            Handle::CurrentWrite {
                dirty,
                flushes,
                truncated,
                opener,
                writers,
                closed,
                ..
            } => {
                *closed = true;
                if writers.contains(&process) {
                    *dirty
                } else if process == *opener {
                    // No data of the opener's own: the end of a save only at
                    // its second close (`: > f`) or after a truncate.
                    *flushes += 1;
                    *dirty && (*flushes > 1 || *truncated)
                } else {
                    // A child that inherited the descriptor and never wrote
                    // closes its copy: the save goes on.
                    false
                }
            }
            Handle::VirtualEdit { dirty, buf, .. } => *dirty && !buf.is_empty(),
            Handle::FrameCtl { buf, .. } => !buf.is_empty(),
            _ => false,
        };
        tracing::debug!(fh, pid = caller.pid, written, "flush");
        if written {
            self.commit_handle(fh, caller)
        } else {
            Ok(())
        }
    }

    /// fsync makes a save in progress durable and commits nothing: a save
    /// commits at its close (`flush`), so a program that fsyncs half-way
    /// through its writes (loggers, exporters) never commits half a table
    /// and never sees a refusal of content it has not finished. The bytes
    /// go to `unsaved/` (fsynced; an append handle's own bytes only): if the
    /// daemon dies before the close, the next mount puts them in
    /// `@rejected/`. Saved queries, schemas and conflict files are saved at
    /// their close too; their fsync returns at once.
    pub fn fsync(&self, fh: u64, _caller: Caller) -> Result<()> {
        let (db, name, bytes) = {
            let mut inner = lock(&self.inner);
            match inner.handles.get_mut(&fh).ok_or(FsError::BadHandle)? {
                Handle::CurrentWrite {
                    db,
                    table,
                    buf,
                    dirty: true,
                    append,
                    appended_from,
                    unsaved,
                    frame,
                    ..
                } => {
                    let stem = match frame {
                        Some(f) => format!("frame-{f}-{table}"),
                        None => table.clone(),
                    };
                    let name = unsaved
                        .get_or_insert_with(|| kept::new_unsaved_name(&stem, "csv"))
                        .clone();
                    let bytes = if *append {
                        buf[*appended_from..].to_vec()
                    } else {
                        buf.clone()
                    };
                    (*db, name, bytes)
                }
                _ => return Ok(()),
            }
        };
        self.dbs[db].db.save_unsaved(&name, &bytes)?;
        Ok(())
    }

    /// Removes the durable copy an fsync made of a save, once the save is
    /// committed or refused with its bytes kept; after a failure of the
    /// store it stays, for the next mount to put in `@rejected/`.
    pub(super) fn drop_unsaved<T>(&self, db: usize, unsaved: Option<String>, result: &Result<T>) {
        let settled = matches!(
            result,
            Ok(_) | Err(FsError::InvalidContent(_) | FsError::Stale(_))
        );
        if let (Some(name), true) = (unsaved, settled)
            && let Err(e) = self.dbs[db].db.remove_unsaved(&name)
        {
            tracing::warn!(name, error = %e.report(), "could not remove an unsaved copy");
        }
    }

    /// The last close of a handle: commits it when it was written.
    pub fn release(&self, fh: u64, caller: Caller) -> Result<()> {
        // A writer that no program ever closed (no flush) was never really
        // open: with passthrough the kernel fails the open (EIO) after we
        // accepted it, when a reader holds the file. Its O_TRUNC must not
        // empty the table: a failed save changes nothing.
        let never_closed = matches!(
            lock(&self.inner).handles.get(&fh),
            Some(Handle::CurrentWrite { closed: false, .. })
        );
        let result = if never_closed {
            Ok(())
        } else {
            self.commit_handle(fh, caller)
        };
        let mut inner = lock(&self.inner);
        let released = inner.handles.remove(&fh);
        if let Some(Handle::Feed) = released {
            drop(inner);
            self.release_feed(fh);
            return result;
        }
        if let Some(Handle::Scratch { ino }) = released {
            let open = inner
                .handles
                .values()
                .any(|h| matches!(h, Handle::Scratch { ino: i } if *i == ino));
            if !open && !inner.inodes.is_named(ino) {
                inner.scratch.remove(&ino);
                inner.inodes.forget(ino);
            }
        }
        result
    }

    pub(super) fn commit_handle(&self, fh: u64, caller: Caller) -> Result<()> {
        let (db, table, save, unsaved, mtime) = {
            let mut inner = lock(&self.inner);
            match inner.handles.get_mut(&fh).ok_or(FsError::BadHandle)? {
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::Schema(table),
                    buf,
                    dirty,
                } if *dirty => {
                    // An emptied schema is a valid one (no declared types).
                    *dirty = false;
                    let (db, table, text) = (*db, table.clone(), buf.clone());
                    drop(inner);
                    return self.save_schema(db, &table, &text, caller);
                }
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::FrameSchema(frame, table),
                    buf,
                    dirty,
                } if *dirty => {
                    *dirty = false;
                    let (db, frame, table) = (*db, frame.clone(), table.clone());
                    let text = buf.clone();
                    drop(inner);
                    return self.stage_schema(db, &frame, &table, text);
                }
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::SavedQuery(name),
                    buf,
                    dirty,
                } if *dirty && !buf.is_empty() => {
                    *dirty = false;
                    let (db, name, text) = (*db, name.clone(), buf.clone());
                    drop(inner);
                    return self.save_query(db, &name, &text);
                }
                Handle::VirtualEdit {
                    db,
                    target: EditTarget::Conflict(id),
                    buf,
                    dirty,
                } if *dirty && !buf.is_empty() => {
                    *dirty = false;
                    let (db, id, edited) = (*db, id.clone(), buf.clone());
                    drop(inner);
                    return self.resolve_conflict_edit(db, &id, &edited, caller);
                }
                Handle::FrameCtl { db, frame, buf, .. } if !buf.is_empty() => {
                    let (db, frame) = (*db, frame.clone());
                    let command = String::from_utf8_lossy(&std::mem::take(buf)).into_owned();
                    drop(inner);
                    return self.frame_command(db, &frame, &command, caller);
                }
                Handle::CurrentWrite { failed: true, .. } => {
                    return Err(FsError::TooBig(self.opts.max_file_bytes));
                }
                Handle::CurrentWrite {
                    db,
                    table,
                    buf,
                    dirty,
                    unsaved,
                    frame: Some(frame),
                    ..
                } if *dirty => {
                    *dirty = false;
                    let (db, table, frame, content, unsaved) = (
                        *db,
                        table.clone(),
                        frame.clone(),
                        buf.clone(),
                        unsaved.take(),
                    );
                    drop(inner);
                    let result = self.stage(db, &frame, &table, content);
                    self.drop_unsaved(db, unsaved, &result);
                    return result;
                }
                Handle::CurrentWrite {
                    db,
                    table,
                    buf,
                    base,
                    dirty,
                    append,
                    appended_from,
                    unsaved,
                    mtime,
                    ..
                } if *dirty => {
                    *dirty = false;
                    let save = if *append {
                        Save::Append(buf[*appended_from..].to_vec())
                    } else {
                        Save::Whole {
                            content: buf.clone(),
                            base: *base,
                        }
                    };
                    (*db, table.clone(), save, unsaved.take(), mtime.take())
                }
                _ => return Ok(()),
            }
        };
        let base = match &save {
            Save::Whole { base, .. } => *base,
            Save::Append(_) => None,
        };
        let result = self.commit(db, &table, save, Action::Update, caller);
        tracing::debug!(
            fh,
            pid = caller.pid,
            ?base,
            ok = result.is_ok(),
            "commit of a handle"
        );
        let mut inner = lock(&self.inner);
        if let Some(Handle::CurrentWrite {
            base: b,
            dirty,
            buf,
            appended_from,
            writers,
            ..
        }) = inner.handles.get_mut(&fh)
        {
            match &result {
                // Later writes through this handle build on what it
                // committed (and append after what it appended).
                Ok(seq) => {
                    *b = Some(*seq);
                    *appended_from = buf.len();
                    writers.clear();
                }
                // The caller was told and the bytes are kept (@rejected/):
                // the release must not commit behind the caller's back what
                // it reported as failed.
                Err(_) => *dirty = false,
            }
        }
        if let (Ok(seq), Some(m)) = (&result, mtime) {
            let set = self.set_saved_attrs(&mut inner, db, attrs_key(&table, Some(CURRENT)), |p| {
                p.mtime_ns = Some(time_ns(m));
                p.seq = Some(*seq);
            });
            if let Err(e) = set {
                tracing::warn!(table, error = %e, "could not keep a modification time");
            }
        }
        drop(inner);
        self.drop_unsaved(db, unsaved, &result);
        result.map(|_| ())
    }

    /// Remembers that `caller` read (or wrote) version `seq` of a table.
    pub(super) fn note_read(inner: &mut Inner, caller: Caller, db: usize, table: &str, seq: u64) {
        if inner.last_read.len() > 4096 {
            inner.last_read.clear();
        }
        inner
            .last_read
            .insert((caller.pid, db, table.to_string()), seq);
    }
}
