//! `<db>/@frames/`: multi-table frames staged and committed with shell tools
//! (docs/MOUNT.md, "Frames"). A child module of `core`: it works on the
//! filesystem's state directly.
//!
//! - `mkdir @frames/<name>` begins a frame; its directory shows every table
//!   of the database as `<table>.csv`, as it was when the frame began.
//! - Writing `<table>.csv` (`>`, `cp`, `sed -i`, any save pattern) stages
//!   the content; it is validated at once, so a bad file fails its save.
//! - `echo commit > @frames/<name>/ctl` commits every staged table at once,
//!   merging with commits made since the frame began; `echo abort > ctl`
//!   drops it. Reading `ctl` tells what is staged or how the frame ended.
//! - `rmdir @frames/<name>` removes the frame (aborting it if still open).
//!
//! Staged content lives in the daemon's memory until the commit: a daemon
//! that dies before it loses the staging, never half a frame.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Caller, Event, FsError, Inner, Node, ReedFs, Result, frame_dir_key, lock, user_name};
use crate::merge;
use crate::storage::{Base, Frame, StorageError, TableIndex, names};

/// A frame being staged through the mount.
#[derive(Debug)]
pub(super) struct OpenFrame {
    /// `None` once committed or aborted (or while its commit runs).
    frame: Option<Frame>,
    /// The tables when the frame began, with their head then: the merge
    /// base of what is staged, and what unstaged files show.
    started: BTreeMap<String, u64>,
    began_us: u64,
    /// How the frame ended, for `ctl`.
    outcome: Option<String>,
}

impl ReedFs {
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
    pub(super) fn begin_frame(&self, db: usize, name: &str) -> Result<()> {
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
                outcome: None,
            },
        );
        Ok(())
    }

    /// `rmdir @frames/<name>`: drops the frame and its scratch files.
    pub(super) fn remove_frame(&self, db: usize, name: &str) -> Result<()> {
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

    /// The frames of database `db` being staged.
    pub(super) fn frame_names_in(inner: &Inner, db: usize) -> Vec<String> {
        inner
            .frames
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn frame_in<'a>(inner: &'a Inner, db: usize, name: &str) -> Result<&'a OpenFrame> {
        inner
            .frames
            .get(&(db, name.to_string()))
            .ok_or(FsError::NotFound)
    }

    /// The tables of a frame (as it began); NotFound when there is no such frame.
    pub(super) fn frame_tables_in(inner: &Inner, db: usize, name: &str) -> Result<Vec<String>> {
        Ok(Self::frame_in(inner, db, name)?
            .started
            .keys()
            .cloned()
            .collect())
    }

    /// What `<table>.csv` of a frame holds: its staged content, else the
    /// table as the frame began.
    pub(super) fn frame_content_in(
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
        Ok(Arc::new(self.table(db, table)?.read_version(seq)?))
    }

    /// The size of `<table>.csv` of a frame, without reading the version.
    pub(super) fn frame_len_in(
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
    pub(super) fn stage(&self, db: usize, name: &str, table: &str, content: Vec<u8>) -> Result<()> {
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
        let frame = of.frame.as_mut().ok_or(FsError::NotPermitted(
            "the frame is committed or aborted; make a new one",
        ))?;
        frame.stage(table, Base::Version(base), content)?;
        Ok(())
    }

    /// `rm @frames/<name>/<table>.csv`: takes the table out of the frame
    /// (the file shows the table as the frame began again).
    pub(super) fn unstage(&self, db: usize, name: &str, table: &str) -> Result<()> {
        let mut inner = lock(&self.inner);
        let of = Self::open_frame(&mut inner.frames, db, name)?;
        if !of.started.contains_key(table) {
            return Err(FsError::NotFound);
        }
        if let Some(f) = of.frame.as_mut() {
            f.unstage(table);
        }
        Ok(())
    }

    /// What reading `ctl` shows.
    pub(super) fn frame_ctl_text_in(inner: &Inner, db: usize, name: &str) -> Result<Vec<u8>> {
        let of = Self::frame_in(inner, db, name)?;
        if let Some(o) = &of.outcome {
            return Ok(o.clone().into_bytes());
        }
        let staged: Vec<String> = of
            .frame
            .as_ref()
            .map(|f| f.staged().map(|(t, _)| t.to_string()).collect())
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

    /// A command written to `ctl`: `commit` or `abort`.
    pub(super) fn frame_command(
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
        // Kept to put back if the commit fails: the user can fix and retry.
        let retry = Frame::resume(
            frame.id(),
            frame.name(),
            frame
                .staged()
                .map(|(t, s)| (t.to_string(), s.clone()))
                .collect(),
        );
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
                let inos: Vec<u64> = changed
                    .iter()
                    .map(|(t, _)| inner.inodes.ino(&Node::Current(db, t.clone())))
                    .collect();
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
