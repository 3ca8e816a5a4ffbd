//! A frame's commit across tables: every table's version, with one
//! timestamp and the frame id, or none of them (the records and their
//! meaning are in `storage/frame.rs`).

use super::rules::Rules;
use std::sync::Arc;

use super::super::dict::Action;
use super::super::error::{Result, StorageError};
use super::super::frame::{self, Decision, FrameCommitted, Intent, Staged};
use super::super::lock::LockGuard;
use super::super::log::LogEntry;
use super::super::names::now_us;
use super::commit::Prepared;
use super::{Base, CommitOptions, LOG, State, Table, Writer, lock_poisoned};

/// One table of a frame being committed, between its steps.
struct FramePart {
    state: State,
    prepared: Prepared,
    action: Action,
    /// The log entry once its version is written.
    entry: Option<LogEntry>,
}

impl Table {
    /// Commits a frame (the protocol is in `storage/frame.rs`): every table's
    /// version, with one timestamp and the frame id, or none of them.
    /// `resolve(table, base, ours, head, head_seq)` merges a part whose
    /// base is no longer the head, as for single commits.
    pub(crate) fn commit_frame<E: From<StorageError>>(
        id: &str,
        name: &str,
        user: &str,
        parts: Vec<(Arc<Table>, Staged)>,
        not_before_us: u64,
        resolve: impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FrameCommitted, E> {
        let started = std::time::Instant::now();
        let db = parts.first().map(|(t, _)| t.ctx.config.name.clone());
        let tables: Vec<Arc<Table>> = parts.iter().map(|(t, _)| Arc::clone(t)).collect();
        let committed = Self::commit_frame_attempt(id, name, user, parts, not_before_us, resolve);
        if let (Ok(f), Some(db)) = (&committed, db) {
            let m = crate::metrics::global();
            crate::metrics::observe(&m.frame_seconds, &[&db], started.elapsed());
            for (table, c) in &f.tables {
                if let Some(t) = tables.iter().find(|t| &t.name == table) {
                    t.count_commit(c, None);
                }
            }
        }
        committed
    }

    fn commit_frame_attempt<E: From<StorageError>>(
        id: &str,
        name: &str,
        user: &str,
        parts: Vec<(Arc<Table>, Staged)>,
        not_before_us: u64,
        mut resolve: impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FrameCommitted, E> {
        // Lock in name order, so two frames never wait for each other in a
        // cycle (sorted by moving the parts, not copying their contents).
        let mut parts = parts;
        parts.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (tables, staged): (Vec<Arc<Table>>, Vec<Staged>) = parts.into_iter().unzip();
        let mut held = Vec::with_capacity(tables.len());
        for t in &tables {
            let w = lock_poisoned(t.writer.lock());
            let g = t.acquire()?;
            held.push((w, g));
        }
        let reset = |held: &mut Vec<(std::sync::MutexGuard<'_, Writer>, LockGuard<'_>)>| {
            for (w, _) in held.iter_mut() {
                w.log_len = None;
            }
        };
        let mut parts: Vec<FramePart> = Vec::with_capacity(tables.len());
        for (i, st) in staged.into_iter().enumerate() {
            let t = &tables[i];
            let part = t.frame_prepare(&mut held[i].0, st, &mut resolve);
            match part {
                Ok(p) => parts.push(p),
                Err(e) => {
                    reset(&mut held);
                    return Err(e);
                }
            }
        }
        let changed: Vec<usize> = (0..parts.len())
            .filter(|&i| matches!(parts[i].prepared, Prepared::Version(_)))
            .collect();
        let ts_us = parts
            .iter()
            .filter_map(|p| p.state.log.last().map(|e| e.ts_us + 1))
            .fold(now_us().max(not_before_us), u64::max);
        let ctx = match tables.first() {
            Some(t) => Arc::clone(&t.ctx),
            None => {
                return Ok(FrameCommitted {
                    id: id.to_string(),
                    name: name.to_string(),
                    ts_us,
                    tables: Vec::new(),
                });
            }
        };
        if !changed.is_empty() {
            let intent = Intent {
                id: id.to_string(),
                name: name.to_string(),
                ts_us,
                user: user.to_string(),
                tables: changed
                    .iter()
                    .map(|&i| {
                        let node = &ctx.config.node;
                        (
                            tables[i].name.clone(),
                            super::super::names::version_name(ts_us, node),
                        )
                    })
                    .collect(),
            };
            let written = frame::write_intent(&ctx, &intent).and_then(|()| {
                for &i in &changed {
                    let p = &mut parts[i];
                    let opts = CommitOptions {
                        action: p.action,
                        user,
                        frame: Some(id),
                        progress: None,
                        not_before_us: 0,
                    };
                    if let Prepared::Version(v) = &p.prepared {
                        p.entry = Some(tables[i].write_version(&p.state, v, Some(ts_us), &opts)?);
                    }
                }
                frame::decide(&ctx, id, Decision::Commit, "")
            });
            if let Err(e) = written {
                // Before the commit point: take back every line written,
                // then record the abort (readers never counted the lines).
                for (i, p) in parts.iter().enumerate() {
                    if let Some(entry) = &p.entry {
                        tables[i].undo_line(&p.state, entry);
                    }
                }
                frame::remove_record(&ctx, id, "commit");
                let _ = frame::decide(&ctx, id, Decision::Abort, &e.report());
                reset(&mut held);
                return Err(e.into());
            }
        }
        let mut out = Vec::with_capacity(parts.len());
        for (i, p) in parts.into_iter().enumerate() {
            let committed = match (p.prepared, p.entry) {
                (Prepared::Unchanged(c), _) => c,
                (Prepared::Version(v), Some(entry)) => {
                    let c =
                        tables[i].publish(&mut held[i].0, p.state, entry, v.content, &v.hunks)?;
                    tables[i].seal_quietly();
                    c
                }
                (Prepared::Version(_), None) => return Err(tables[i].no_version(0).into()),
            };
            out.push((tables[i].name.clone(), committed));
        }
        Ok(FrameCommitted {
            id: id.to_string(),
            name: name.to_string(),
            ts_us,
            tables: out,
        })
    }

    /// Steps 1-2 for one table of a frame: catch up, merge, validate.
    fn frame_prepare<E: From<StorageError>>(
        &self,
        writer: &mut Writer,
        st: Staged,
        resolve: &mut impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FramePart, E> {
        let state = self.catch_up(writer)?;
        let head_seq = state.log.len() as u64;
        let mut content = st.content;
        if let Base::Version(b) = st.base
            && b != head_seq
        {
            let base_bytes = self.base_bytes(&state, b)?;
            content = resolve(&self.name, &base_bytes, &content, &state.head, head_seq)?;
        }
        let prepared = self.prepare(writer, &state, content, Rules::for_action(st.action))?;
        Ok(FramePart {
            state,
            prepared,
            action: st.action,
            entry: None,
        })
    }

    /// Takes back a line this process appended (under the lock) and its
    /// files, best effort: a failure leaves a line of an aborted frame,
    /// which readers skip and the next locked open removes.
    fn undo_line(&self, state: &State, entry: &LogEntry) {
        let io = &*self.ctx.io;
        lock_poisoned(self.packs.lock()).invalidate();
        let _ = io.truncate(&self.path(LOG), state.log_len);
        for f in [entry.delta_file(), entry.keyframe_file()] {
            let _ = io.remove(&self.path(&f));
        }
        let _ = io.sync_dir(&self.dir);
    }
}
