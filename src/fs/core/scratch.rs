//! Scratch files: everything in a table directory that is not
//! `current.csv` or `schema.toml` (and the temp files of editors in
//! `@query/`, `@conflicts/` and a frame's directory), held in memory
//! (spilling to an anonymous file) and never versioned: created, listed,
//! their attributes, opened, truncated, moved, dropped, saved onto a file
//! that saves by a rename.

use super::*;

/// A scratch file's I/O error (ENOSPC past the scratch budget, or from
/// the disk it spilled to), with its errno.
pub(super) fn scratch_io(e: std::io::Error) -> FsError {
    FsError::Storage(StorageError::io("write a scratch file", "(scratch)", e))
}

impl ReedFs {
    /// Creates (or opens, without O_EXCL) scratch file `name` in directory
    /// `dir` (a table, or a frame's `frame_dir_key`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_scratch(
        &self,
        inner: &mut Inner,
        db: usize,
        dir: &str,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        let node = Node::Scratch(db, dir.to_string(), name.to_string());
        if let Some(existing) = Self::scratch_ino(inner, db, dir, name) {
            if flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            let attr = self.attr_of(inner, existing, &node)?;
            let fh = Self::new_fh(inner, Handle::Scratch { ino: existing });
            return Ok((attr, fh, Caching::Default));
        }
        let file = Scratch {
            data: SpillBuf::new(&self.scratch_budget),
            symlink: None,
            perm: (mode & 0o7777) as u16,
            uid: caller.uid,
            gid: caller.gid,
            mtime: SystemTime::now(),
            mtime_set: false,
        };
        let ino = Self::add_scratch(inner, db, dir, name, file);
        let attr = self.attr_of(inner, ino, &node)?;
        let fh = Self::new_fh(inner, Handle::Scratch { ino });
        Ok((attr, fh, Caching::Default))
    }

    /// A rename of scratch file `name` of directory `dir` onto a name that
    /// saves (`current.csv`, a frame's table, a schema, a saved query): the
    /// way `sed -i`, rsync and atomic saves write. `save` gets the file's
    /// bytes outside the namespace lock; once it succeeds the scratch name
    /// goes (unless another file took it meanwhile).
    pub(super) fn save_scratch_onto(
        &self,
        inner: MutexGuard<'_, Inner>,
        db: usize,
        dir: &str,
        name: &str,
        save: impl FnOnce(Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let sino = Self::scratch_ino(&inner, db, dir, name).ok_or(FsError::NotFound)?;
        let s = inner.scratch.get(&sino).ok_or(FsError::NotFound)?;
        if s.symlink.is_some() {
            // Never followed: its target may be any file of the machine.
            let reason = format!("{name} is a symlink: only a regular file's content can be saved");
            self.status[db].push(Event::Rejected {
                table: dir.to_string(),
                reason,
                kept: None,
            });
            return Err(FsError::NotPermitted(
                "a symlink cannot become a table or a saved file",
            ));
        }
        let content = s.data.to_vec().map_err(scratch_io)?;
        drop(inner);
        save(content)?;
        let mut inner = lock(&self.inner);
        if Self::scratch_ino(&inner, db, dir, name) == Some(sino) {
            Self::drop_scratch_name(&mut inner, db, dir, name);
        }
        Ok(())
    }

    /// The scratch files of directory `dir` (a table, or a family's key),
    /// as entries of its listing.
    pub(super) fn scratch_entries(inner: &Inner, db: usize, dir: &str) -> family::Listing {
        let Some(files) = inner.dirs.get(&(db, dir.to_string())) else {
            return Vec::new();
        };
        files
            .iter()
            .map(|(n, sino)| {
                let kind = match inner.scratch.get(sino) {
                    Some(s) if s.symlink.is_some() => Kind::Symlink,
                    _ => Kind::File,
                };
                (
                    Node::Scratch(db, dir.to_string(), n.clone()),
                    kind,
                    n.clone(),
                )
            })
            .collect()
    }

    /// Attributes of scratch file (or symlink) `ino`.
    pub(super) fn scratch_attr(inner: &Inner, ino: u64) -> Result<Attr> {
        let s = inner.scratch.get(&ino).ok_or(FsError::NotFound)?;
        Ok(Attr {
            ino,
            kind: if s.symlink.is_some() {
                Kind::Symlink
            } else {
                Kind::File
            },
            size: s.symlink.as_ref().map_or(s.data.len(), |l| l.len() as u64),
            perm: s.perm,
            uid: s.uid,
            gid: s.gid,
            mtime: s.mtime,
            stable: false,
        })
    }

    /// Mode, owner and time of a scratch file: kept as set.
    pub(super) fn scratch_setattr(inner: &mut Inner, ino: u64, set: &SetAttr) -> Result<()> {
        let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
        if let Some(m) = set.mode {
            s.perm = (m & 0o7777) as u16;
        }
        if let Some(u) = set.uid {
            s.uid = u;
        }
        if let Some(g) = set.gid {
            s.gid = g;
        }
        // chmod and chown change the ctime, never the mtime (rsync sets
        // the time, then the mode).
        if let Some(t) = set.mtime {
            s.mtime = t;
            s.mtime_set = true;
        }
        Ok(())
    }

    /// A truncate of a scratch file.
    pub(super) fn truncate_scratch(inner: &mut Inner, ino: u64, size: u64) -> Result<()> {
        let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
        s.data.set_len(size).map_err(scratch_io)?;
        s.mtime = SystemTime::now();
        Ok(())
    }

    /// Opens scratch file `ino` (O_TRUNC empties it).
    pub(super) fn scratch_open(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        ino: u64,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let s = inner.scratch.get_mut(&ino).ok_or(FsError::NotFound)?;
        if how.trunc {
            s.data.set_len(0).map_err(scratch_io)?;
            s.mtime = SystemTime::now();
        }
        Ok((
            Self::new_fh(&mut inner, Handle::Scratch { ino }),
            Caching::Default,
        ))
    }

    /// The inode of scratch file `name` in directory `dir` (a table, a
    /// frame's or `@query`'s key), if there is one.
    pub(super) fn scratch_ino(inner: &Inner, db: usize, dir: &str, name: &str) -> Option<u64> {
        inner
            .dirs
            .get(&(db, dir.to_string()))
            .and_then(|d| d.get(name))
            .copied()
    }

    /// Scratch to scratch in directory `dir`: same inode, new name.
    pub(super) fn move_scratch(
        &self,
        inner: &mut Inner,
        db: usize,
        dir: &str,
        name: &str,
        newname: &str,
    ) -> Result<()> {
        let key = (db, dir.to_string());
        Self::drop_scratch_name(inner, db, dir, newname);
        let ino = inner
            .dirs
            .get_mut(&key)
            .and_then(|d| d.remove(name))
            .ok_or(FsError::NotFound)?;
        inner
            .dirs
            .entry(key)
            .or_default()
            .insert(newname.to_string(), ino);
        inner.inodes.rename(
            &Node::Scratch(db, dir.to_string(), name.to_string()),
            Node::Scratch(db, dir.to_string(), newname.to_string()),
        );
        Ok(())
    }

    /// A scratch file of the mount's owner holding `data` (text moved out
    /// of a versioned file, bytes kept after a failure).
    pub(super) fn owned_scratch(&self, data: &[u8], perm: u16) -> Result<Scratch> {
        Ok(Scratch {
            data: SpillBuf::with(&self.scratch_budget, data).map_err(scratch_io)?,
            symlink: None,
            perm,
            uid: self.owner.uid,
            gid: self.owner.gid,
            mtime: SystemTime::now(),
            mtime_set: false,
        })
    }

    /// Puts a scratch file into a table directory (replacing one of the same
    /// name); returns its inode.
    pub(super) fn add_scratch(
        inner: &mut Inner,
        db: usize,
        table: &str,
        name: &str,
        file: Scratch,
    ) -> u64 {
        let key = (db, table.to_string());
        Self::drop_scratch_name(inner, db, table, name);
        let ino = inner
            .inodes
            .ino(&Node::Scratch(db, table.to_string(), name.to_string()));
        inner.scratch.insert(ino, file);
        inner
            .dirs
            .entry(key)
            .or_default()
            .insert(name.to_string(), ino);
        ino
    }

    /// Removes a scratch file's name. Its content lives on while a handle
    /// has it open (as after unlink on any file system) and goes with the
    /// last release.
    pub(super) fn drop_scratch_name(inner: &mut Inner, db: usize, t: &str, name: &str) {
        let Some(ino) = inner
            .dirs
            .get_mut(&(db, t.to_string()))
            .and_then(|d| d.remove(name))
        else {
            return;
        };
        inner
            .inodes
            .detach(&Node::Scratch(db, t.to_string(), name.to_string()));
        let open = inner
            .handles
            .values()
            .any(|h| matches!(h, Handle::Scratch { ino: i } if *i == ino));
        if !open {
            inner.scratch.remove(&ino);
            inner.inodes.forget(ino);
        }
    }
}
