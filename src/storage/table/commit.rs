//! The commit protocol (docs/FORMAT.md has the crash analysis):
//! 1. take the table lock (flock, bounded wait) and catch up with commits
//!    other processes made;
//! 2. validate the new bytes (only the changed region) and diff the rows;
//! 3. write the delta (and a keyframe when one is due), fsync each;
//! 4. fsync the table directory, so their names are durable;
//! 5. append the log line and fsync the log: **the commit point**;
//! 6. refresh `current.csv`, a cache of the head, off the commit path
//!    (`head_writer.rs`: renamed into place under the table lock).
//!
//! A crash before 5 leaves unreferenced files that open removes; a crash
//! after 5 leaves a stale `current.csv` that open rebuilds from the deltas.
//! Reads never depend on that rebuild: when the file cannot be rewritten (a
//! full disk), the head is served from memory.

use super::rules::Rules;
use std::sync::Arc;

use super::super::csv::{Hunk, TableIndex, common_ends};
use super::super::delta;
use super::super::error::{Result, StorageError};
use super::super::hash::ChunkedHash;
use super::super::head_writer::write_head;
use super::super::log::{DeltaKind, LogEntry};
use super::super::names::now_us;
use super::super::unindexed::{self, Checked};
use super::packing::KEYFRAME_MIN_BYTES;
use super::{
    Base, CURRENT, CommitOptions, Committed, HeadIndex, LOG, State, Table, Writer, lock_poisoned,
};

/// The outcome of validating a new content against the head.
pub(super) enum Prepared {
    /// The content equals the head: nothing to write.
    Unchanged(Committed),
    Version(NewVersion),
}

/// A validated, diffed version, ready for the write steps.
pub(super) struct NewVersion {
    pub(super) content: Vec<u8>,
    pub(super) hunks: Vec<Hunk>,
    pub(super) hash: String,
    pub(super) rows: u64,
}

impl Table {
    /// Commits `content` as the table's new version (the protocol is in the
    /// module doc).
    pub fn commit(&self, base: Base, content: Vec<u8>, opts: &CommitOptions) -> Result<Committed> {
        let content = super::super::csv::strip_bom(content).into_owned();
        type Resolve = fn(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>>;
        self.commit_inner(base, content, opts, None::<Resolve>)
    }

    /// Commits `content`, written from version `base`. When others committed
    /// since, `resolve(base, content, head, head seq)` is called under the
    /// table lock to produce what to commit against the head instead (the
    /// merge layer's three-way merge), so concurrent writers never starve
    /// each other with retries.
    pub fn commit_resolving<E: From<StorageError>>(
        &self,
        base: u64,
        content: Vec<u8>,
        opts: &CommitOptions,
        resolve: impl FnOnce(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<Committed, E> {
        let content = super::super::csv::strip_bom(content).into_owned();
        self.commit_inner(Base::Version(base), content, opts, Some(resolve))
    }

    /// The first version of a new table, whose content the caller already
    /// parsed (and validated) into `index`: the commit trusts that index
    /// instead of parsing again, as long as the head is still empty.
    pub(crate) fn commit_parsed(
        &self,
        content: Vec<u8>,
        index: TableIndex,
        opts: &CommitOptions,
    ) -> Result<Committed> {
        lock_poisoned(self.writer.lock()).parsed = Some(index);
        self.commit(Base::Version(0), content, opts)
    }

    fn commit_inner<E: From<StorageError>>(
        &self,
        base: Base,
        content: Vec<u8>,
        opts: &CommitOptions,
        resolve: Option<impl FnOnce(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>>,
    ) -> Result<Committed, E> {
        let started = std::time::Instant::now();
        let committed = self.commit_attempt(base, content, opts, resolve);
        if let Ok(c) = &committed {
            self.count_commit(c, Some(started.elapsed()));
        }
        committed
    }

    /// Counts a committed version in the process's metrics (with the time
    /// its commit took, when it was one on its own).
    pub(super) fn count_commit(&self, c: &Committed, took: Option<std::time::Duration>) {
        if !c.created {
            return;
        }
        let m = crate::metrics::global();
        let db = self.ctx.config.name.as_str();
        crate::metrics::inc(&m.commits, &[db, &self.name, &c.version.action]);
        if let Some(d) = took {
            crate::metrics::observe(&m.commit_seconds, &[db, &self.name], d);
        }
    }

    fn commit_attempt<E: From<StorageError>>(
        &self,
        base: Base,
        mut content: Vec<u8>,
        opts: &CommitOptions,
        resolve: Option<impl FnOnce(&[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>>,
    ) -> Result<Committed, E> {
        let mut writer = lock_poisoned(self.writer.lock());
        let _g = self.acquire()?;
        let state = self.catch_up(&mut writer)?;
        let head_seq = state.log.len() as u64;
        if let Base::Version(b) = base
            && b != head_seq
        {
            let Some(resolve) = resolve else {
                return Err(StorageError::BaseMismatch {
                    base: b,
                    head: head_seq,
                }
                .into());
            };
            let base_bytes = self.base_bytes(&state, b)?;
            content = resolve(&base_bytes, &content, &state.head, head_seq)?;
        }
        self.commit_locked(writer, state, content, opts)
            .map_err(E::from)
    }

    /// Under the table lock: repairs what open() only read (the first time
    /// through this handle) and catches up with other processes' commits.
    pub(super) fn catch_up(&self, writer: &mut Writer) -> Result<State> {
        if !writer.repaired {
            let state = self.recover(true)?;
            *lock_poisoned(self.state.write()) = state;
            writer.repaired = true;
        }
        self.refresh(true)?;
        // A prune by another process changes no log length: read its floor.
        // It also replaced `rows.log`, whatever length it has now.
        if self.floor_moved() {
            writer.row_log_seq = None;
        }
        Ok(lock_poisoned(self.state.read()).clone())
    }

    /// The bytes of version `b`, a writer's base, for a merge with the head
    /// in `state` (empty for 0: the table had no version).
    pub(super) fn base_bytes(&self, state: &State, b: u64) -> Result<Vec<u8>> {
        let head_seq = state.log.len() as u64;
        if b > head_seq {
            return Err(StorageError::BaseMismatch {
                base: b,
                head: head_seq,
            });
        }
        if b == 0 {
            return Ok(Vec::new());
        }
        // `state` comes from `catch_up`, which read the floor under the lock.
        self.reconstruct(
            &state.log,
            state.floor,
            Some((head_seq, state.head.as_slice())),
            b,
        )
    }

    /// The commit itself, against the head in `state`; the caller holds the
    /// writer mutex (`writer`) and the table lock.
    fn commit_locked(
        &self,
        mut writer: std::sync::MutexGuard<'_, Writer>,
        state: State,
        content: Vec<u8>,
        opts: &CommitOptions,
    ) -> Result<Committed> {
        opts.phase("validating", 0);
        let rules = Rules::for_action(opts.action);
        let prepared = match self.prepare(&mut writer, &state, content, rules)? {
            Prepared::Unchanged(c) => return Ok(c),
            Prepared::Version(v) => v,
        };
        let entry = match self.write_version(&state, &prepared, None, opts) {
            Ok(e) => e,
            Err(e) => {
                // The index already describes the rejected content: drop it.
                writer.log_len = None;
                return Err(e);
            }
        };
        let committed =
            self.publish(&mut writer, state, entry, prepared.content, &prepared.hunks)?;
        // After the commit point, still under the lock: maintenance.
        self.seal_quietly();
        Ok(committed)
    }

    /// Step 2 of the protocol: validates `content` against the head in
    /// `state` and diffs it. Updates the writer's index and hash to describe
    /// `content`; a caller that then does not commit must reset them
    /// (`writer.log_len = None`).
    /// `rules`: whether the schema's rules are checked (not for a sync
    /// integration: see `table/rules.rs`).
    pub(super) fn prepare(
        &self,
        writer: &mut Writer,
        state: &State,
        content: Vec<u8>,
        rules: Rules,
    ) -> Result<Prepared> {
        let head_seq = state.log.len() as u64;
        // Only ever for the commit it was given for.
        let parsed = writer.parsed.take().filter(|i| i.len == content.len());
        let (p, s) = common_ends(&state.head, &content);
        let unchanged = p == content.len() && p == state.head.len();
        if unchanged
            && (head_seq > 0 || content.is_empty())
            && let Some(version) = self.info(&state.log, head_seq)
        {
            return Ok(Prepared::Unchanged(Committed {
                version,
                created: false,
            }));
        }
        let head = state.head.as_slice();
        if writer.log_len != Some(state.log_len) {
            // First commit here, or another process committed: learn the
            // head. Its chunk hashes are known unless it was rebuilt from
            // the deltas (open checks current.csv by them). Whether it is
            // valid: yes when it can be trusted (unindexed.rs), else a
            // parse says (at 1M rows: ~0.5 s).
            writer.hash = match state.head_hash.as_deref() {
                Some(h) => h.clone(),
                None => ChunkedHash::compute(head),
            };
            writer.index = if unindexed::trusted(head) {
                HeadIndex::Valid(Arc::clone(&state.columns))
            } else {
                self.parse_head(head)
            };
            writer.log_len = Some(state.log_len);
        }
        let old = head;
        let (hunks, rows) = if content.is_empty() {
            // Empty content is a valid table: a dropped one (action Drop),
            // or a file emptied by its writer (`: > current.csv`), which a
            // later append fills from nothing, header included.
            writer.index = HeadIndex::None;
            let hunk = Hunk {
                old: 0..old.len(),
                new: 0..0,
            };
            (vec![hunk], 0)
        } else {
            match &writer.index {
                HeadIndex::Valid(_) => match unindexed::edit(old, &content, self.delim(), p, s)? {
                    Checked::Edited { hunks, rows } => (hunks, rows),
                    Checked::Parsed { index, hunks } => {
                        writer.index = HeadIndex::Valid(Arc::new(index.columns.clone()));
                        (hunks, index.rows())
                    }
                },
                HeadIndex::None => {
                    let idx =
                        parsed.map_or_else(|| TableIndex::parse(&content, self.delim()), Ok)?;
                    writer.index = HeadIndex::Valid(Arc::new(idx.columns.clone()));
                    let hunk = Hunk {
                        old: 0..old.len(),
                        new: 0..content.len(),
                    };
                    (vec![hunk], idx.rows())
                }
            }
        };
        let hash = &writer.hash;
        let checked = match rules {
            Rules::Checked => {
                self.check_rules(&mut writer.rules, old, &content, &hunks, || hash.digest())
            }
            Rules::Skipped => {
                writer.rules.forget_counts();
                Ok(())
            }
        };
        if let Err(e) = checked {
            // What this commit learnt describes content that is not the
            // head: the next commit learns the head again.
            writer.log_len = None;
            return Err(e);
        }
        writer.hash.update(old.len(), &content, p, s);
        let digest = writer.hash.digest();
        Self::stamp_rules(&mut writer.rules, &digest);
        Ok(Prepared::Version(NewVersion {
            rows: rows as u64,
            hash: digest,
            content,
            hunks,
        }))
    }

    /// Whether `head` is valid, by a whole parse; none when it is empty or
    /// no longer valid (see [`HeadIndex::None`]).
    fn parse_head(&self, head: &[u8]) -> HeadIndex {
        if head.is_empty() {
            return HeadIndex::None;
        }
        TableIndex::parse(head, self.delim())
            .map_or(HeadIndex::None, |i| HeadIndex::Valid(Arc::new(i.columns)))
    }

    /// After the commit point: the version exists. Updates memory first, so
    /// a failure to refresh current.csv below cannot hide it. Our snapshot
    /// goes first so the log is extended in place, not copied.
    pub(super) fn publish(
        &self,
        writer: &mut Writer,
        state: State,
        entry: LogEntry,
        mut content: Vec<u8>,
        hunks: &[Hunk],
    ) -> Result<Committed> {
        let base_len = state.log_len;
        // Where the new version differs from the head it replaces: the
        // first and last hunk (row-aligned, so within the common ends).
        let change = match (hunks.first(), hunks.last()) {
            (Some(first), Some(last)) if !state.head.is_empty() => Some((
                first.old.start.min(first.new.start),
                (state.head.len() - last.old.end.min(state.head.len()))
                    .min(content.len() - last.new.end.min(content.len())),
            )),
            _ => None,
        };
        let old_head = Arc::clone(&state.head);
        drop(state);
        // The head stays in memory until the next commit: not with the
        // spare capacity a merge or a copy grew it by.
        content.shrink_to_fit();
        let head = Arc::new(content);
        let mut live = lock_poisoned(self.state.write());
        // A reader's refresh may have loaded our line from disk already (it
        // reads without the lock); then the live state holds it.
        if live.log_len == base_len {
            live.log_len += entry.encode().len() as u64;
            Arc::make_mut(&mut live.log).push(entry);
        }
        live.columns = match &writer.index {
            HeadIndex::Valid(columns) => Arc::clone(columns),
            HeadIndex::None => Arc::default(),
        };
        live.head = Arc::clone(&head);
        live.head_hash = Some(Arc::new(writer.hash.clone()));
        writer.log_len = Some(live.log_len);
        let seq = live.log.len() as u64;
        let log_len = live.log_len;
        let version = self.info(&live.log, seq);
        drop(live);
        *lock_poisoned(self.last_change.lock()) = change.map(|(p, s)| (seq, p, s));
        if let Err(e) = self.refresh_current(&head, log_len) {
            // The next open rebuilds it from the deltas; the version is safe.
            tracing::error!(table = %self.name, error = %e.report(), "version committed but current.csv not refreshed");
        }
        let version = version.ok_or_else(|| self.no_version(seq))?;
        self.log_rows(writer, &version, &old_head, &head, hunks);
        Ok(Committed {
            version,
            created: true,
        })
    }

    /// Refreshes `current.csv` after a commit with `head`, the version that
    /// a `version.log` of `log_len` bytes ends with: on the background writer
    /// when there is one (it renames under the lock, if the log still ends
    /// there), else now, without fsync. The caller holds the table lock. The
    /// log line is the commit point; open() rebuilds a `current.csv` that
    /// does not match it.
    fn refresh_current(&self, head: &Arc<Vec<u8>>, log_len: u64) -> Result<()> {
        match &self.head_writer {
            Some(w) => {
                w.submit(Arc::clone(head), log_len);
                Ok(())
            }
            None => write_head(&*self.ctx.io, &self.path(CURRENT), head, false),
        }
    }

    /// Steps 3-5 of the protocol. Returns the log entry that was made durable.
    /// `ts_us` is the frame's shared timestamp; `None` takes the clock.
    pub(super) fn write_version(
        &self,
        state: &State,
        v: &NewVersion,
        ts_us: Option<u64>,
        opts: &CommitOptions,
    ) -> Result<LogEntry> {
        let io = &*self.ctx.io;
        let (content, hunks) = (v.content.as_slice(), v.hunks.as_slice());
        let old = state.head.as_slice();
        let prev_ts = state.log.last().map_or(0, |e| e.ts_us);
        let user = lock_poisoned(self.ctx.users.lock()).code(io, opts.user)?;
        let anchor = state
            .log
            .iter()
            .rposition(|e| e.keyframe || e.size == 0)
            .max((state.floor > 0).then_some(state.floor))
            .map_or(state.log.len() as u64, |i| (state.log.len() - i) as u64);
        // What the delta compresses: at most every hunk's bytes, both sides.
        let extra: usize = hunks.iter().map(|h| h.new.len() + h.old.len()).sum();
        opts.phase("storing", extra as u64);
        let done = |n: u64| {
            if let Some(p) = opts.progress {
                p.advance(n);
            }
        };
        let (stored, is_xz) = delta::pack(delta::encode_with(old, content, hunks, &done));
        // A keyframe when the deltas a read from the last anchor applies
        // would exceed a quarter of the table (at least KEYFRAME_MIN_BYTES),
        // or after keyframe_every versions.
        let since_anchor = match self.tail(&state.log, state.log_len) {
            Ok(t) => Some(t.since_anchor + stored.len() as u64),
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e.report(), "could not size the deltas since the last keyframe");
                None
            }
        };
        let by_bytes =
            since_anchor.is_some_and(|b| b > (content.len() as u64 / 4).max(KEYFRAME_MIN_BYTES));
        let keyframe = !old.is_empty()
            && !content.is_empty()
            && (anchor >= self.ctx.config.keyframe_every || by_bytes);
        let entry = LogEntry {
            ts_us: ts_us.unwrap_or_else(|| now_us().max(prev_ts + 1).max(opts.not_before_us)),
            node: self.ctx.config.node.clone(),
            action: opts.action as u32,
            user,
            base: state.log.len() as u64,
            size: content.len() as u64,
            rows: v.rows,
            hash: v.hash.clone(),
            frame: opts.frame.map(str::to_string),
            delta: if is_xz {
                DeltaKind::BsdiffXz
            } else {
                DeltaKind::Bsdiff
            },
            keyframe,
        };
        let delta_path = self.path(&entry.delta_file());
        let kf_path = self.path(&entry.keyframe_file());
        let cleanup = |e: StorageError| {
            let _ = io.remove(&delta_path);
            let _ = io.remove(&kf_path);
            e
        };
        io.write_new(&delta_path, &stored, true)
            .map_err(|e| cleanup(StorageError::io("write", &delta_path, e)))?;
        if keyframe {
            io.write_new(&kf_path, &delta::xz(content, 1), true)
                .map_err(|e| cleanup(StorageError::io("write", &kf_path, e)))?;
        }
        io.sync_dir(&self.dir)
            .map_err(|e| cleanup(StorageError::io("fsync directory", &self.dir, e)))?;
        let log_path = self.path(LOG);
        // The first line of a log: the file may be new (or was cut to nothing
        // by recovery), and its name is durable only with its directory.
        let new_log = state.log_len == 0;
        if let Err(e) = io.append(&log_path, entry.encode().as_bytes(), true) {
            // Cut whatever part of the line may have reached the file.
            let _ = io.truncate(&log_path, state.log_len);
            return Err(cleanup(StorageError::io("append", &log_path, e)));
        }
        if new_log && let Err(e) = io.sync_dir(&self.dir) {
            // The log's name is durable only once its directory is synced;
            // without that the commit did not happen: take the line back.
            let _ = io.truncate(&log_path, 0);
            return Err(cleanup(StorageError::io("fsync directory", &self.dir, e)));
        }
        let since = if keyframe || old.is_empty() || content.is_empty() {
            0
        } else {
            since_anchor.unwrap_or(u64::MAX)
        };
        let after = state.log_len + entry.encode().len() as u64;
        if since_anchor.is_some() {
            self.note_committed(
                state.log_len,
                after,
                state.log.len(),
                stored.len() as u64,
                since,
            );
        }
        Ok(entry)
    }
}
