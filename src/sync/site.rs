//! One location's side of sync (docs/SYNC.md): exporting its own commits
//! as records, and integrating every record it holds into its heads.
//!
//! Invariants (the correctness argument is in docs/SYNC.md):
//! - after a round, each table's head is the replay, in name order, of the
//!   records this site holds (those of incomplete frames and refused ones
//!   aside);
//! - a local commit's record is named after every record already replayed
//!   (its time is at least one microsecond past the newest), so replaying
//!   it where it was made gives the bytes the user saved;
//! - export and integration run under the database's sync lock, and an
//!   integration commits every changed table in one frame: a head never
//!   shows half a round.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::storage::csv::TableIndex;
use crate::storage::names::version_name;
use crate::storage::{
    Action, Base, CommitOptions, ConflictCell, ConflictInfo, Database, Frame, SYNC_LOCK_WAIT,
    StorageError, Table,
};

use super::applied::{Applied, Entry, LostAt, encode_lost, parse_lost, ts_of};
use super::error::{Result, SyncError};
use super::record::{FrameRef, Record, valid_id};
use super::replay::TableState;

const EXT: &str = ".rec";
const REFUSED: &str = "refused";
/// The name of the frames integrations commit: a version in one (a `sync`
/// or a `drop`) was made by sync, not by a local save.
const SYNC_FRAME: &str = "rdb-sync";

/// Every record held, per table: id -> node.
type Held = BTreeMap<String, BTreeMap<String, String>>;

/// What one integration did.
#[derive(Debug, Default, Clone)]
pub struct Integrated {
    /// Per table: records newly replayed, values lost, the version made.
    pub tables: Vec<TableIntegrated>,
    /// Records exported from local commits.
    pub exported: usize,
    /// Records refused (damaged, of another database, misnamed).
    pub refused: Vec<String>,
    /// Records held back: their frame is not complete here yet.
    pub held_back: usize,
}

#[derive(Debug, Default, Clone)]
pub struct TableIntegrated {
    pub table: String,
    pub records: usize,
    pub lost: usize,
    /// The local version the integration made (none: the head was already
    /// the replay).
    pub version: Option<String>,
}

/// A database seen as one location.
pub struct Site<'a> {
    db: &'a Database,
    user: String,
}

fn applied_name(table: &str) -> String {
    format!("{table}.applied")
}

fn lost_name(table: &str) -> String {
    format!("{table}.lost")
}

impl<'a> Site<'a> {
    pub fn new(db: &'a Database, user: &str) -> Site<'a> {
        Site {
            db,
            user: user.to_string(),
        }
    }

    fn node(&self) -> &str {
        &self.db.config().node
    }

    fn delim(&self) -> u8 {
        self.db.config().delimiter_byte()
    }

    /// The versions the next export needs, by table: the one the last
    /// replay made and every version since (`version:prune` keeps them, so
    /// every local change still reaches the peers).
    pub fn export_pins(&self) -> Result<crate::storage::Pins> {
        let mut pins = crate::storage::Pins::new();
        for table in self.db.table_names()? {
            if let Some(a) = self.load_applied(&table)?.filter(|a| a.seq > 0) {
                pins.entry(table)
                    .or_default()
                    .push((a.seq, "sync (changes not yet exported)".to_string()));
            }
        }
        Ok(pins)
    }

    fn load_applied(&self, table: &str) -> Result<Option<Applied>> {
        let bytes = self.db.read_sync_state(&applied_name(table))?;
        Ok(bytes.and_then(|b| {
            let a = Applied::parse(&b);
            if a.is_none() {
                tracing::warn!(table, "sync state does not parse; replaying every record");
            }
            a
        }))
    }

    fn save_applied(&self, table: &str, a: &Applied) -> Result<()> {
        Ok(self
            .db
            .write_sync_state(&applied_name(table), &a.encode())?)
    }

    /// Every lost value recorded for `table`, in replay order.
    pub fn lost(&self, table: &str) -> Result<Vec<LostAt>> {
        Ok(self
            .db
            .read_sync_state(&lost_name(table))?
            .map(|b| parse_lost(&b))
            .unwrap_or_default())
    }

    /// Whether some table has a local commit not yet exported (a version
    /// after what it replayed that sync did not make). Reads only the
    /// replay state and the heads' log entries.
    pub fn has_unexported(&self) -> Result<bool> {
        for table in self.db.table_names()? {
            let t = self.db.table(&table)?;
            let head = t.head_seq()?;
            let done = self.load_applied(&table)?.map_or(0, |a| a.seq);
            if head > done && !self.made_by_sync(&t.version(head)?)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes the sync conflicts some location resolved (`sync/resolved/`).
    fn drop_resolved(&self) -> Result<()> {
        for id in self.db.resolved_conflicts()? {
            if self.db.conflict_info(&id).is_ok() {
                self.db.remove_conflict(&id)?;
            }
        }
        Ok(())
    }

    /// Keeps the records the last integration refused (with why) in
    /// `state/sync/refused`, for `rdb db:info`.
    fn note_refused(&self, refused: &[String]) -> Result<()> {
        let text: String = refused.iter().map(|r| format!("{r}\n")).collect();
        let old = self.db.read_sync_state(REFUSED)?.unwrap_or_default();
        if old != text.as_bytes() {
            self.db.write_sync_state(REFUSED, text.as_bytes())?;
        }
        Ok(())
    }

    /// The records the last integration refused, with why.
    pub fn refused(&self) -> Result<Vec<String>> {
        let bytes = self.db.read_sync_state(REFUSED)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The frame version `v` belongs to, with how many records make it
    /// whole: its tables that were already synced when this export began
    /// (those with a replay state in `states`). A table synced for the first time travels as a snapshot,
    /// no frame's part; the others export their part in the same pass,
    /// since a frame becomes visible to an export all at once.
    fn frame_ref(
        &self,
        v: &crate::storage::VersionInfo,
        states: &BTreeMap<String, Option<Applied>>,
    ) -> Result<Option<FrameRef>> {
        let Some(f) = &v.frame else {
            return Ok(None);
        };
        let tables = self.db.frame_by_id(f)?.map_or(1, |info| {
            info.tables
                .iter()
                .filter(|(t, _)| states.get(t).is_some_and(Option::is_some))
                .count()
                .max(1)
        });
        Ok(Some(FrameRef {
            id: f.clone(),
            tables,
        }))
    }

    /// Whether version `v` is an integration's (action `sync`, or a drop in
    /// an integration's frame) rather than a local save.
    fn made_by_sync(&self, v: &crate::storage::VersionInfo) -> Result<bool> {
        if v.action == Action::Sync.name() {
            return Ok(true);
        }
        match (&v.frame, v.action == Action::Drop.name()) {
            (Some(id), true) => Ok(self
                .db
                .frame_by_id(id)?
                .is_some_and(|f| f.name == SYNC_FRAME)),
            _ => Ok(false),
        }
    }

    /// Runs `f` under the database's sync lock.
    pub fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock = self.db.sync_lock()?;
        let _g = match lock.acquire(&format!("sync of {}", self.db.name()), SYNC_LOCK_WAIT) {
            Ok(g) => g,
            Err(StorageError::Locked { .. }) => {
                return Err(SyncError::Busy(self.db.name().to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        f()
    }

    /// Writes the records of local commits not yet exported (every table).
    /// The caller holds the sync lock.
    pub fn export(&self) -> Result<usize> {
        let states = self.states(&self.db.table_names()?)?;
        let mut n = 0;
        for table in states.keys() {
            n += self.export_table(table, &states)?.1;
        }
        Ok(n)
    }

    /// Every table of `tables` with its replay state, loaded once (none:
    /// never synced here).
    fn states(&self, tables: &[String]) -> Result<BTreeMap<String, Option<Applied>>> {
        let mut out = BTreeMap::new();
        for t in tables {
            out.insert(t.clone(), self.load_applied(t)?);
        }
        Ok(out)
    }

    /// Exports `table`'s local commits after what it replayed; returns its
    /// replay state and how many records were written.
    fn export_table(
        &self,
        table: &str,
        states: &BTreeMap<String, Option<Applied>>,
    ) -> Result<(Applied, usize)> {
        let t = self.db.table(table)?;
        let loaded = states.get(table).cloned().flatten();
        if let Some(a) = &loaded
            && a.seq == t.head_seq()?
        {
            // Nothing committed here since: no need to read the log.
            return Ok((a.clone(), 0));
        }
        let versions = t.versions()?;
        let Some(head) = versions.last() else {
            return Ok((Applied::default(), 0));
        };
        let mut applied = match loaded {
            Some(a) => a,
            None => {
                // First sync of this table here: its head travels as one
                // record (a snapshot), named after the head version.
                let content = t.read_version(head.seq)?;
                // A snapshot is no frame's part: the frame's other tables
                // count only their own records (see `frame_ref`).
                let rec = self.record(&t, &head.name, None, head, &[], &content)?;
                self.put(table, &rec)?;
                let a = Applied {
                    seq: head.seq,
                    entries: vec![Entry {
                        id: rec.id,
                        node: self.node().to_string(),
                        checkpoint: Some(head.seq),
                    }],
                };
                self.save_applied(table, &a)?;
                return Ok((a, 1));
            }
        };
        let mut written = 0;
        let mut prev: Option<Vec<u8>> = None;
        let after = applied.seq;
        for v in versions.iter().filter(|v| v.seq > after) {
            if self.made_by_sync(v)? {
                // A round committed this version but died before saving
                // its state: that state is unknown, so replay everything.
                tracing::warn!(table, version = %v.name, "sync state older than the head; replaying every record");
                applied.entries.clear();
                applied.seq = v.seq;
                prev = None;
                continue;
            }
            let old = match prev.take() {
                Some(p) => p,
                None if v.seq > 1 => t.read_version(v.seq - 1)?,
                None => Vec::new(),
            };
            let new = t.read_version(v.seq)?;
            // Named after everything replayed here, whatever this clock says.
            let floor = applied.newest_ts().saturating_add(1);
            let id = version_name(v.ts_us.max(floor), self.node());
            let frame = self.frame_ref(v, states)?;
            let rec = self.record(&t, &id, frame, v, &old, &new)?;
            self.put(table, &rec)?;
            applied.entries.push(Entry {
                id,
                node: self.node().to_string(),
                checkpoint: Some(v.seq),
            });
            applied.seq = v.seq;
            written += 1;
            prev = Some(new);
        }
        if written > 0 || applied.seq < head.seq {
            applied.seq = applied.seq.max(head.seq);
            self.save_applied(table, &applied)?;
        }
        Ok((applied, written))
    }

    fn record(
        &self,
        t: &Table,
        id: &str,
        frame: Option<FrameRef>,
        v: &crate::storage::VersionInfo,
        old: &[u8],
        new: &[u8],
    ) -> Result<Record> {
        let (old_header, new_header, changes) = Record::changes_between(old, new, self.delim());
        Ok(Record {
            db: self.db.config().id.clone(),
            table: t.name().to_string(),
            id: id.to_string(),
            user: v.user.clone(),
            action: v.action.clone(),
            frame,
            hash: v.hash.clone(),
            old_header,
            new_header,
            changes,
        })
    }

    fn put(&self, table: &str, rec: &Record) -> Result<()> {
        let name = format!("{}{EXT}", rec.id);
        self.db
            .put_record(self.node(), table, &name, &rec.encode())?;
        Ok(())
    }

    fn read(&self, node: &str, table: &str, id: &str) -> Result<Record> {
        let name = format!("{id}{EXT}");
        let bytes = self.db.read_record(node, table, &name)?;
        Record::decode(&bytes, &self.db.config().id, Some(id))
            .and_then(|r| {
                if r.table == table {
                    Ok(r)
                } else {
                    Err(format!(
                        "is a record of table {} filed under {table}",
                        r.table
                    ))
                }
            })
            .map_err(|detail| SyncError::BadRecord {
                path: self.db.record_path(node, table, &name).unwrap_or_default(),
                peer: node.to_string(),
                detail,
            })
    }

    /// Every record held, per table: id -> node; and the files refused for
    /// their name (not a record name, or filed under another node).
    fn held(&self) -> Result<(Held, Vec<String>)> {
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut misnamed = Vec::new();
        for node in self.db.record_nodes()? {
            for table in self.db.record_tables(&node)? {
                if crate::storage::names::validate(&table).is_err() {
                    continue;
                }
                let ids = out.entry(table.clone()).or_default();
                for name in self.db.record_names(&node, &table)? {
                    // Only well-formed names, filed under the node that made them.
                    match name.strip_suffix(EXT) {
                        Some(id) if valid_id(id) && id.ends_with(&format!("-{node}")) => {
                            ids.insert(id.to_string(), node.clone());
                        }
                        _ => misnamed.push(
                            SyncError::BadRecord {
                                path: self
                                    .db
                                    .record_path(&node, &table, &name)
                                    .unwrap_or_default(),
                                peer: node.clone(),
                                detail: "not a record name of this node; never used".into(),
                            }
                            .to_string(),
                        ),
                    }
                }
            }
        }
        Ok((out, misnamed))
    }

    /// Exports and integrates, under the sync lock.
    pub fn integrate(&self) -> Result<Integrated> {
        self.locked(|| self.integrate_locked())
    }

    /// [`Self::integrate`] unless another round holds the lock (then it
    /// integrates at its end anyway): whether it ran.
    pub fn integrate_if_free(&self) -> Result<bool> {
        let lock = self.db.sync_lock()?;
        let _g = match lock.acquire(
            &format!("sync of {}", self.db.name()),
            std::time::Duration::ZERO,
        ) {
            Ok(g) => g,
            Err(StorageError::Locked { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        self.integrate_locked()?;
        Ok(true)
    }

    /// Exports and integrates; the caller holds the sync lock.
    pub fn integrate_locked(&self) -> Result<Integrated> {
        // A local commit between the replay and the frame moves a head:
        // the frame then fails and the integration starts again (bounded).
        let mut last = None;
        for _ in 0..5 {
            match self.integrate_once().and_then(|r| {
                self.note_refused(&r.refused)?;
                self.drop_resolved()?;
                Ok(r)
            }) {
                Err(SyncError::Storage(StorageError::BaseMismatch { base, head })) => {
                    last = Some(StorageError::BaseMismatch { base, head });
                }
                other => return other,
            }
        }
        Err(last
            .map(SyncError::Storage)
            .unwrap_or_else(|| SyncError::Busy(self.db.name().to_string())))
    }

    fn integrate_once(&self) -> Result<Integrated> {
        let mut report = Integrated::default();
        let mut applied: HashMap<String, Applied> = HashMap::new();
        let states = self.states(&self.db.table_names()?)?;
        for table in states.keys() {
            let (a, n) = self.export_table(table, &states)?;
            report.exported += n;
            applied.insert(table.clone(), a);
        }
        let (held, misnamed) = self.held()?;
        report.refused.extend(misnamed);
        // The new records of each table, decoded; a bad one is refused.
        let mut new: BTreeMap<String, BTreeMap<String, (String, Record)>> = BTreeMap::new();
        for (table, ids) in &held {
            let known: BTreeSet<&str> = applied
                .get(table)
                .map(|a| a.entries.iter().map(|e| e.id.as_str()).collect())
                .unwrap_or_default();
            for (id, node) in ids {
                if known.contains(id.as_str()) {
                    continue;
                }
                match self.read(node, table, id) {
                    Ok(r) => {
                        new.entry(table.clone())
                            .or_default()
                            .insert(id.clone(), (node.clone(), r));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "refused a commit record");
                        report.refused.push(e.to_string());
                    }
                }
            }
        }
        // A frame is integrated whole or not at all.
        let mut frame_parts: HashMap<String, (usize, usize)> = HashMap::new();
        for recs in new.values() {
            for (_, r) in recs.values() {
                if let Some(f) = &r.frame {
                    let e = frame_parts.entry(f.id.clone()).or_insert((0, f.tables));
                    e.0 += 1;
                }
            }
        }
        for recs in new.values_mut() {
            recs.retain(|_, (_, r)| {
                let whole = r
                    .frame
                    .as_ref()
                    .is_none_or(|f| frame_parts.get(&f.id).is_some_and(|(n, want)| n >= want));
                if !whole {
                    report.held_back += 1;
                }
                whole
            });
        }
        new.retain(|_, recs| !recs.is_empty());
        if new.is_empty() {
            return Ok(report);
        }
        // Replay each table from its last checkpoint before its first new record.
        let mut frame = Frame::begin(SYNC_FRAME)?;
        let mut creates = Vec::new();
        let mut replays = Vec::new();
        let mut newest = 0;
        for (table, recs) in &new {
            let a = applied.remove(table).unwrap_or_default();
            // A table whose replay fails waits (its records stay new); the
            // others are integrated.
            let r = match self.replay(table, a, recs, &held) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(table, error = %e, "not integrated");
                    report.refused.push(format!("table {table}: {e}"));
                    continue;
                }
            };
            newest = newest.max(r.newest);
            match &r.base_seq {
                Some(seq) => {
                    let action = if r.dropped {
                        Action::Drop
                    } else {
                        Action::Sync
                    };
                    frame.stage_as(table, Base::Version(*seq), r.content.clone(), action)?;
                }
                None if !r.content.is_empty() => creates.push(table.clone()),
                None => {}
            }
            replays.push(r);
        }
        let user = self.user.clone();
        let mut made: HashMap<String, (u64, Option<String>)> = HashMap::new();
        // The frame first: when a save moved a head it fails, and nothing
        // (no new table either) was made before the round starts over.
        let committed = self
            .db
            .commit_frame(frame.not_before(newest.saturating_add(1)), &user)?;
        for (table, c) in committed.tables {
            let name = c.created.then(|| c.version.name.clone());
            made.insert(table, (c.version.seq, name));
        }
        for table in &creates {
            let r = replays
                .iter()
                .find(|r| &r.table == table)
                .ok_or_else(|| SyncError::Config(format!("lost the replay of {table}")))?;
            let mut opts = CommitOptions::new(Action::Sync, &user);
            opts.not_before_us = newest.saturating_add(1);
            let c = self.db.create_table_as(table, r.content.clone(), &opts)?;
            made.insert(table.clone(), (c.version.seq, Some(c.version.name)));
        }
        for r in replays {
            let (seq, version) = made.get(&r.table).cloned().unwrap_or((0, None));
            let mut a = r.applied;
            if let Some(last) = a.entries.last_mut() {
                last.checkpoint = (seq > 0).then_some(seq);
            }
            a.seq = seq;
            let mut lost = self.lost(&r.table)?;
            // Values this replay found overwritten that no earlier replay
            // here did become conflict records, listed and resolved like
            // refused merges (one resolved here is not brought back).
            let fresh: BTreeSet<&str> = r
                .lost
                .iter()
                .filter(|l| !lost.contains(l))
                .map(|l| l.record.as_str())
                .collect();
            let fresh: Vec<&LostAt> = r
                .lost
                .iter()
                .filter(|l| fresh.contains(l.record.as_str()))
                .collect();
            if !fresh.is_empty() && seq > 0 {
                self.record_conflicts(&r.table, seq, &r.content, &fresh)?;
            }
            lost.retain(|l| l.record < r.from);
            let n_lost = r.lost.len();
            lost.extend(r.lost);
            self.db
                .write_sync_state(&lost_name(&r.table), &encode_lost(&lost))?;
            // Last: until it is saved, a crash means the next round replays
            // again, and records these losses again.
            self.save_applied(&r.table, &a)?;
            report.tables.push(TableIntegrated {
                table: r.table,
                records: r.records,
                lost: n_lost,
                version,
            });
        }
        Ok(report)
    }

    /// Writes one conflict record per record that overwrote values here
    /// (`sync-<table>-<record>`, the same id at every location): its cells,
    /// and as the bytes not in the head, the head (`seq`, `head`) with
    /// those values put back, which `conflict:resolve --ours` merges in.
    fn record_conflicts(&self, table: &str, seq: u64, head: &[u8], lost: &[&LostAt]) -> Result<()> {
        let mut by_record: BTreeMap<&str, Vec<&LostAt>> = BTreeMap::new();
        for l in lost {
            by_record.entry(l.record.as_str()).or_default().push(l);
        }
        let resolved: BTreeSet<String> = self.db.resolved_conflicts()?.into_iter().collect();
        for (record, items) in by_record {
            if resolved.contains(&format!("sync-{table}-{record}")) {
                continue;
            }
            let mut ours = TableState::load(head, self.delim(), false);
            for l in &items {
                ours.restore(&l.lost);
            }
            let cells: Vec<ConflictCell> = items
                .iter()
                .map(|l| ConflictCell {
                    key: l.lost.key.clone(),
                    column: l.lost.column.clone(),
                    base: l.lost.base.clone(),
                    ours: l.lost.lost.clone(),
                    theirs: l.lost.kept.clone(),
                })
                .collect();
            let info = ConflictInfo {
                id: format!("sync-{table}-{record}"),
                table: table.to_string(),
                base: seq,
                head: seq,
                cells: cells.len(),
                ts_us: ts_of(record),
                kind: "sync".into(),
            };
            self.db.record_conflict(&info, &cells, &ours.content())?;
            let m = crate::metrics::global();
            crate::metrics::add(&m.sync_conflicts, &[self.db.name()], cells.len() as u64);
        }
        Ok(())
    }

    /// Replays `table` with its new records `recs` merged into `a`.
    fn replay(
        &self,
        table: &str,
        a: Applied,
        recs: &BTreeMap<String, (String, Record)>,
        held: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Replayed> {
        let t = self.db.table(table).ok();
        // The head the replay is the successor of: the one the export saw.
        // A save made since fails the frame (BaseMismatch) and the round
        // starts over with it exported, instead of being replaced.
        let base_seq = match &t {
            Some(_) if a.seq > 0 => Some(a.seq),
            Some(t) => Some(t.head_seq()?),
            None => None,
        };
        let mut order: Vec<Entry> = a.entries;
        for (id, (node, _)) in recs {
            order.push(Entry {
                id: id.clone(),
                node: node.clone(),
                checkpoint: None,
            });
        }
        order.sort_by(|x, y| x.id.cmp(&y.id));
        let first_new = order
            .iter()
            .position(|e| recs.contains_key(&e.id))
            .unwrap_or(order.len());
        // A checkpoint a prune removed cannot start the replay: an older
        // one that is kept, else the replay starts from nothing (every
        // record is held, so the result is the same).
        let oldest_kept = match &t {
            Some(t) => t.oldest_kept()?,
            None => 0,
        };
        let start = order[..first_new]
            .iter()
            .rposition(|e| e.checkpoint.is_some_and(|c| c >= oldest_kept));
        let mut state = match (start, &t) {
            (Some(i), Some(t)) => {
                let seq = order[i].checkpoint.unwrap_or(0);
                let info = t.version(seq)?;
                let content = t.read_version(seq)?;
                TableState::load(&content, self.delim(), info.action == Action::Drop.name())
            }
            _ => TableState::load(&[], self.delim(), false),
        };
        let from = start.map_or(0, |i| i + 1);
        let mut lost = Vec::new();
        for e in &order[from..] {
            let rec = match recs.get(&e.id) {
                Some((_, r)) => r.clone(),
                None => {
                    let node = held
                        .get(table)
                        .and_then(|ids| ids.get(&e.id))
                        .unwrap_or(&e.node);
                    self.read(node, table, &e.id)?
                }
            };
            for l in state.apply(&rec) {
                lost.push(LostAt {
                    record: e.id.clone(),
                    lost: l,
                });
            }
        }
        for e in &mut order[from..] {
            e.checkpoint = None;
        }
        let content = state.content();
        if !content.is_empty() {
            TableIndex::parse(&content, self.delim()).map_err(|e| {
                SyncError::Config(format!(
                    "the replay of table {table} is not a valid table ({e}); nothing was integrated"
                ))
            })?;
        }
        Ok(Replayed {
            table: table.to_string(),
            base_seq,
            content,
            dropped: state.is_dropped(),
            records: recs.len(),
            newest: order.last().map_or(0, |e| ts_of(&e.id)),
            from: order.get(from).map_or(String::new(), |e| e.id.clone()),
            lost,
            applied: Applied {
                seq: 0,
                entries: order,
            },
        })
    }
}

/// A table's replay, before its commit.
struct Replayed {
    table: String,
    /// The head it replaces (none: a table new here).
    base_seq: Option<u64>,
    content: Vec<u8>,
    dropped: bool,
    records: usize,
    newest: u64,
    /// The first record replayed: lost values from it on are replaced.
    from: String,
    lost: Vec<LostAt>,
    applied: Applied,
}
