//! A frame's commit across tables: every table's version, with one
//! timestamp and the frame id, or none of them (the records and their
//! meaning are in `storage/frame.rs`).

use super::rules::Rules;
use std::sync::Arc;

use super::super::dict::Action;
use super::super::error::{Result, StorageError};
use super::super::frame::{self, Decision, FrameCommitted, Intent, SchemaChange, Staged};
use super::super::lock::LockGuard;
use super::super::log::LogEntry;
use super::super::names::now_us;
use super::super::revisions;
use super::super::schema::Schema;
use super::commit::Prepared;
use super::{Base, CommitOptions, LOG, State, Table, Writer, lock_poisoned};

/// One table of a frame, as it comes in: its content, its schema, or both.
#[derive(Debug)]
pub(crate) struct PartIn {
    pub table: Arc<Table>,
    pub staged: Option<Staged>,
    pub schema: Option<SchemaChange>,
}

/// One table of a frame being committed, between its steps.
struct FramePart {
    state: State,
    prepared: Prepared,
    action: Action,
    /// The schema the frame sets, when it changes the one in force.
    schema: Option<SchemaChange>,
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
        parts: Vec<PartIn>,
        not_before_us: u64,
        resolve: impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FrameCommitted, E> {
        let started = std::time::Instant::now();
        let db = parts.first().map(|p| p.table.ctx.config.name.clone());
        let tables: Vec<Arc<Table>> = parts.iter().map(|p| Arc::clone(&p.table)).collect();
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
        parts: Vec<PartIn>,
        not_before_us: u64,
        mut resolve: impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FrameCommitted, E> {
        // Lock in name order, so two frames never wait for each other in a
        // cycle (sorted by moving the parts, not copying their contents).
        let mut parts = parts;
        parts.sort_by(|a, b| a.table.name.cmp(&b.table.name));
        let mut tables = Vec::with_capacity(parts.len());
        let mut staged = Vec::with_capacity(parts.len());
        for p in parts {
            tables.push(p.table);
            staged.push((p.staged, p.schema));
        }
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
        for (i, (st, schema)) in staged.into_iter().enumerate() {
            let t = &tables[i];
            let part = t.frame_prepare(&mut held[i].0, st, schema, &mut resolve);
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
        let schemas: Vec<usize> = (0..parts.len())
            .filter(|&i| parts[i].schema.is_some())
            .collect();
        let mut ts_us = parts
            .iter()
            .filter_map(|p| p.state.log.last().map(|e| e.ts_us + 1))
            .fold(now_us().max(not_before_us), u64::max);
        // A schema's version is named after the frame: later than its newest.
        for &i in &schemas {
            let dir = frame::schema_dir(&tables[i].ctx, &tables[i].name);
            ts_us = ts_us.max(revisions::newest_ts(&*tables[i].ctx.io, &dir, "toml", None)? + 1);
        }
        let ctx = match tables.first() {
            Some(t) => Arc::clone(&t.ctx),
            None => {
                return Ok(FrameCommitted {
                    id: id.to_string(),
                    name: name.to_string(),
                    ts_us,
                    tables: Vec::new(),
                    schemas: Vec::new(),
                });
            }
        };
        let version = super::super::names::version_name(ts_us, &ctx.config.node);
        if !changed.is_empty() || !schemas.is_empty() {
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
                schemas: schemas
                    .iter()
                    .map(|&i| (tables[i].name.clone(), version.clone()))
                    .collect(),
            };
            let written = frame::write_intent(&ctx, &intent).and_then(|()| {
                for &i in &schemas {
                    if let Some(change) = &parts[i].schema {
                        let dir = frame::schema_dir(&ctx, &tables[i].name);
                        revisions::write_staged(&*ctx.io, &dir, "toml", id, change.as_deref())?;
                    }
                }
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
                for &i in &schemas {
                    let dir = frame::schema_dir(&ctx, &tables[i].name);
                    let _ = revisions::remove_staged(&*ctx.io, &dir, "toml", id);
                }
                frame::remove_record(&ctx, id, "commit");
                let _ = frame::decide(&ctx, id, Decision::Abort, &e.report());
                reset(&mut held);
                return Err(e.into());
            }
        }
        // After the commit point: the schemas under their version names.
        // A failure here loses nothing: readers count a committed frame's
        // staged schema, and the table's next committer publishes it.
        for &i in &schemas {
            let dir = frame::schema_dir(&ctx, &tables[i].name);
            let deleted = matches!(parts[i].schema, Some(None));
            if let Err(e) = revisions::publish_staged(&*ctx.io, &dir, "toml", id, deleted, &version)
            {
                tracing::warn!(table = %tables[i].name, "publishing a frame's schema: {e}");
            }
        }
        let schema_tables = schemas.iter().map(|&i| tables[i].name.clone()).collect();
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
            schemas: schema_tables,
        })
    }

    /// Steps 1-2 for one table of a frame: catch up, merge, validate. With
    /// a schema, the table's content (staged, else its head) is checked
    /// against it whole, not against the schema in force.
    fn frame_prepare<E: From<StorageError>>(
        &self,
        writer: &mut Writer,
        st: Option<Staged>,
        schema: Option<SchemaChange>,
        resolve: &mut impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FramePart, E> {
        let state = self.catch_up(writer)?;
        frame::settle_staged_schemas(&self.ctx, &self.name)?;
        let head_seq = state.log.len() as u64;
        let (content, action) = match st {
            Some(st) => {
                let mut content = st.content;
                if let Base::Version(b) = st.base
                    && b != head_seq
                {
                    let base_bytes = self.base_bytes(&state, b)?;
                    content = resolve(&self.name, &base_bytes, &content, &state.head, head_seq)?;
                }
                (content, st.action)
            }
            None => (state.head.as_ref().clone(), Action::Frame),
        };
        let schema = match schema {
            Some(change) if self.schema_changes(&change)? => Some(change),
            _ => None,
        };
        let rules = match &schema {
            Some(change) => {
                self.check_against_schema(change.as_deref(), &content)?;
                Rules::Skipped
            }
            None => Rules::for_action(action),
        };
        let prepared = self.prepare(writer, &state, content, rules)?;
        Ok(FramePart {
            state,
            prepared,
            action,
            schema,
            entry: None,
        })
    }

    /// Whether `change` differs from the schema in force.
    fn schema_changes(&self, change: &SchemaChange) -> Result<bool> {
        let dir = frame::schema_dir(&self.ctx, &self.name);
        let now = revisions::current(&*self.ctx.io, &dir, "toml", None)?.and_then(|r| r.text);
        Ok(now != *change)
    }

    /// Checks `content` against schema `text` as a whole (a frame that sets
    /// the schema): it parses, names columns the content has, and every
    /// row keeps its rules (else up to 20 violations are the error).
    pub fn check_against_schema(&self, text: Option<&str>, content: &[u8]) -> Result<()> {
        let Some(text) = text else {
            return Ok(());
        };
        if content.is_empty() {
            return Err(StorageError::Invalid {
                what: format!("the schema of {}", self.name),
                reason: "the table is dropped (or emptied) by this frame or before it".into(),
            });
        }
        let header = super::super::csv::record_fields(content, 0, self.delim());
        let schema = Schema::parse(text, &self.name, Some(&header))?;
        let violations = self.violations_of(&schema.rules, content, 21);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(self.schema_refusal(violations))
        }
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
