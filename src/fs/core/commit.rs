//! Commit points: a save of a table's content merged against its base or
//! appended to the head, and the bytes kept when a save cannot land
//! (`rejected/`, `unsaved/`); saved revisions of small texts (a saved
//! query, a schema): their saving and their text as a file shows it.

use super::*;

/// Appends `bytes` to table `t`'s head as it is when the commit takes the
/// table lock (`commit_resolving` hands the resolver the newest head), so
/// concurrent appenders each land exactly once, in commit order.
pub(super) fn append_to_head(
    t: &Table,
    bytes: &[u8],
    opts: &CommitOptions,
) -> std::result::Result<crate::storage::Committed, MergeError> {
    let (seq, head) = t.head()?;
    let mut content = Vec::with_capacity(head.len() + bytes.len());
    content.extend_from_slice(&head);
    content.extend_from_slice(bytes);
    t.commit_resolving(seq, content, opts, |_, _, newest, _| {
        let mut c = Vec::with_capacity(newest.len() + bytes.len());
        c.extend_from_slice(newest);
        c.extend_from_slice(bytes);
        Ok::<_, MergeError>(c)
    })
}

impl ReedFs {
    /// Commits a save of table `table`: the whole content, merged with
    /// commits made since its base (none: a blind write against the head),
    /// or bytes appended to the head as it is at the commit. Runs outside
    /// the namespace lock. Returns the head's sequence number.
    pub(super) fn commit(
        &self,
        db: usize,
        table: &str,
        save: Save,
        action: Action,
        caller: Caller,
    ) -> Result<u64> {
        let user = user_name(caller.uid);
        let opts = CommitOptions::new(action, &user);
        let mdb = &self.dbs[db];
        let pending = lock(&self.inner)
            .pending_tables
            .contains(&(db, table.to_string()));
        // What a refused save keeps: the content, or the appended bytes.
        let (content, base) = match &save {
            Save::Whole { content, base } => (content.as_slice(), *base),
            Save::Append(bytes) => (bytes.as_slice(), None),
        };
        let mut kind = match &save {
            Save::Append(_) => "appended",
            Save::Whole { .. } => "committed",
        };
        let outcome = (|| -> std::result::Result<_, MergeError> {
            if pending {
                return Ok(mdb.db.create_table(table, content, &user)?);
            }
            let t = mdb.db.table(table)?;
            if t.is_dropped()? {
                return Err(MergeError::Storage(StorageError::NotFound {
                    kind: "table",
                    name: table.to_string(),
                }));
            }
            let Some(b) = base else {
                return Ok(match &save {
                    Save::Append(bytes) => append_to_head(&t, bytes, &opts)?,
                    Save::Whole { content, .. } => t.commit(Base::Head, content.clone(), &opts)?,
                });
            };
            let cfg = mdb.db.config();
            let outcome = merge::commit_merging(
                &t,
                b,
                content.to_vec(),
                &opts,
                cfg.conflict_policy,
                cfg.delimiter_byte(),
            )?;
            Ok(match outcome {
                Outcome::Clean(c) => c,
                Outcome::Merged {
                    committed,
                    conflicts,
                } => {
                    kind = "merged";
                    for c in conflicts {
                        self.status[db].push(Event::Overwritten {
                            table: table.to_string(),
                            conflict: c,
                        });
                    }
                    committed
                }
            })
        })();
        let ino = lock(&self.inner)
            .inodes
            .ino(&Node::Current(db, table.to_string()));
        let counted = match &outcome {
            Ok(c) if !c.created => "unchanged",
            Ok(_) => kind,
            Err(e) => refusal_kind(e),
        };
        let m = crate::metrics::global();
        crate::metrics::inc(&m.saves, &[mdb.db.name(), table, counted]);
        if counted == "conflict" {
            crate::metrics::inc(&m.merge_conflicts, &[mdb.db.name(), table]);
        }
        match outcome {
            Ok(c) => {
                let mut inner = lock(&self.inner);
                if pending {
                    inner.pending_tables.remove(&(db, table.to_string()));
                }
                inner.seen.insert((db, table.to_string()), c.version.seq);
                Self::note_read(&mut inner, caller, db, table, c.version.seq);
                drop(inner);
                if c.created {
                    self.status[db].push(Event::Commit {
                        table: table.to_string(),
                        version: c.version.clone(),
                    });
                    self.invalidate(ino);
                    self.feed_notify();
                }
                Ok(c.version.seq)
            }
            Err(e) => {
                let message = StorageError::chain(&e);
                let kept = match &e {
                    // A base pruned since the file was opened: nothing to
                    // merge against; the bytes are kept as refused.
                    MergeError::Storage(
                        StorageError::Csv(_)
                        | StorageError::Invalid { .. }
                        | StorageError::BaseMismatch { .. }
                        | StorageError::Pruned { .. },
                    )
                    | MergeError::Csv { .. } => self.keep_rejected(db, table, "csv", content),
                    MergeError::Conflicts { conflicts, head } => merge::conflicts::record(
                        &mdb.db,
                        table,
                        base.unwrap_or(0),
                        *head,
                        content,
                        conflicts,
                    )
                    .map(|id| format!("@conflicts/{id}.csv"))
                    .map_err(|x| {
                        let x = StorageError::chain(&x);
                        tracing::error!(table, error = %x, "could not record a conflict");
                    })
                    .ok(),
                    // The backing store failed (ENOSPC, EIO): keep the bytes
                    // where the user can copy them elsewhere.
                    _ => self.keep_unsaved(db, table, content),
                };
                self.status[db].push(Event::Rejected {
                    table: table.to_string(),
                    reason: message.clone(),
                    kept: kept.clone(),
                });
                tracing::warn!(db = %mdb.name, table, reason = %message, kept = ?kept, "write not committed");
                Err(e.into())
            }
        }
    }

    /// Keeps bytes the backing store could not take as a scratch file
    /// `<table>/current.csv.unsaved-<time>`; returns its path in the mount.
    pub(super) fn keep_unsaved(&self, db: usize, table: &str, content: &[u8]) -> Option<String> {
        if let Some(name) = self.keep_rejected(db, table, "unsaved.csv", content) {
            return Some(format!("@rejected/{name}"));
        }
        // The store cannot take even that (a full disk): a scratch file in
        // the table's directory, in memory or spilled, until unmount.
        let name = format!("{CURRENT}.unsaved-{}", names::format_ts(names::now_us()));
        match self.owned_scratch(content, 0o600) {
            Ok(file) => {
                Self::add_scratch(&mut lock(&self.inner), db, table, &name, file);
                Some(format!("{table}/{name}"))
            }
            Err(e) => {
                tracing::error!(table, error = %StorageError::chain(&e), "the bytes of a failed save could not be kept");
                None
            }
        }
    }

    /// Saves a file kept as revisions (a saved query, a schema): `check`
    /// first; a refused text fails with EINVAL, says why in `@status` under
    /// `file`, and is kept as `@rejected/<stem>-<time>.<ext>`. A failure to
    /// store it (I/O, disk full) is that error, not a refusal.
    pub(super) fn save_revision(
        &self,
        db: usize,
        file: String,
        (stem, ext): (&str, &str),
        text: &[u8],
        check: impl FnOnce(&str) -> std::result::Result<(), String>,
        store: impl FnOnce(&str) -> Result<String>,
    ) -> Result<()> {
        let checked = std::str::from_utf8(text)
            .map_err(|_| format!("{file} must be UTF-8 text"))
            .and_then(|t| check(t).map(|()| t));
        let t = match checked {
            Ok(t) => t,
            Err(reason) => {
                let kept = self.keep_rejected(db, stem, ext, text);
                self.status[db].push(Event::Rejected {
                    table: file,
                    reason: reason.clone(),
                    kept,
                });
                return Err(FsError::InvalidContent(reason));
            }
        };
        let version = store(t)?;
        self.status[db].push(Event::Saved { file, version });
        Ok(())
    }

    /// A file kept as revisions (a saved query, a schema): the buffer of a
    /// save in progress with the time now (so the file exists before its
    /// first close), else the stored text with its version's time (editors
    /// compare mtimes before they write).
    pub(super) fn revision_file_in(
        inner: &Inner,
        db: usize,
        target: &EditTarget,
        stored: impl FnOnce() -> Result<Option<(Option<String>, u64)>>,
    ) -> Result<(Vec<u8>, std::time::SystemTime)> {
        if let Some(buf) = inner.handles.values().find_map(|h| match h {
            Handle::VirtualEdit {
                db: d,
                target: t,
                buf,
                ..
            } if *d == db && t == target => Some(buf),
            _ => None,
        }) {
            return Ok((buf.clone(), std::time::SystemTime::now()));
        }
        match stored()? {
            Some((text, ts_us)) => Ok((text.unwrap_or_default().into_bytes(), ts_time(ts_us))),
            None => Err(FsError::NotFound),
        }
    }

    /// Saves rejected bytes under `<db root>/rejected/` (shown as
    /// `@rejected/`) as `<stem>-<time>.<ext>`; returns the file name.
    pub(super) fn keep_rejected(
        &self,
        db: usize,
        stem: &str,
        ext: &str,
        content: &[u8],
    ) -> Option<String> {
        match self.dbs[db].db.keep_rejected(stem, ext, content) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::error!(stem, error = %e.report(), "could not keep refused bytes");
                None
            }
        }
    }
}

/// A refused save's outcome as `reedbase_saves_total` counts it.
fn refusal_kind(e: &MergeError) -> &'static str {
    match e {
        MergeError::Conflicts { .. } => "conflict",
        MergeError::Csv { .. }
        | MergeError::Storage(
            StorageError::Csv(_) | StorageError::Invalid { .. } | StorageError::InvalidName { .. },
        ) => "invalid",
        MergeError::Storage(s) if s.os_error() == Some(libc::ENOSPC) => "no_space",
        _ => "error",
    }
}
