//! Frames: atomic commits across tables: every table of a frame gets its
//! new version, or none does.
//!
//! Protocol for a frame over tables T1..Tn (docs/FORMAT.md, "Frames"):
//! 1. lock every table, in name order (no deadlock with other frames);
//! 2. catch up, merge where others committed meanwhile, validate and diff
//!    every table; any failure here writes nothing;
//! 3. write `frames/<id>.intent` (the frame's tables and version names) and
//!    fsync it and the directory;
//! 4. write each table's version as a single commit does, every log line
//!    carrying the frame id and the frame's one timestamp;
//! 5. write `frames/<id>.commit` and fsync it and the directory: **the commit
//!    point of the frame**; then update memory and unlock.
//!
//! A frame may also change tables' schemas (a migration: the schema and the
//! data it needs, together). Each such schema is staged in the table's
//! `schema/` directory as a dot file before step 4, named in the intent,
//! and published under the frame's version name after step 5; until then
//! readers count the staged file only once the frame has its commit record
//! (storage/revisions.rs).
//!
//! Visibility: a log line with a frame id counts only once its frame has a
//! commit record. Until then readers stop before it (it can only be the
//! last line: a committer of that table holds its lock, and anyone else
//! who takes the lock decides the frame first). So readers see all of a
//! frame or none of it.
//!
//! Recovery: a table whose last line belongs to an undecided frame, found by
//! someone holding that table's lock, means the frame's writer died (it keeps
//! every lock until its decision is durable). The frame is rolled forward
//! when every table its intent names has the line, else rolled back; the
//! decision is a record (`.commit` or `.abort`), and each table drops an
//! aborted line under its own lock when it next opens or commits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::DbCtx;
use super::dict::Action;
use super::error::{Result, StorageError};
use super::io::Io;
use super::log;
use super::names;
use super::table::{Base, Committed};

/// How a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Abort,
}

/// What `frames/<id>.intent` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    pub name: String,
    pub ts_us: u64,
    pub user: String,
    /// (table, version name) for every table the frame writes.
    pub tables: Vec<(String, String)>,
    /// (table, version name) for every schema the frame sets or removes.
    pub schemas: Vec<(String, String)>,
}

const INTENT_MAGIC: &str = "reedbase-frame|1";
/// An intent that names schemas: a binary that knows only version 1 reads
/// it as torn, so it rolls such a frame back (all old) rather than forward
/// without its schemas.
const INTENT_MAGIC_SCHEMAS: &str = "reedbase-frame|2";

impl Intent {
    fn encode(&self) -> String {
        let magic = if self.schemas.is_empty() {
            INTENT_MAGIC
        } else {
            INTENT_MAGIC_SCHEMAS
        };
        let mut s = format!(
            "{magic}\nid|{}\nname|{}\nts|{}\nuser|{}\n",
            self.id, self.name, self.ts_us, self.user
        );
        for (t, v) in &self.tables {
            s.push_str(&format!("table|{t}|{v}\n"));
        }
        for (t, v) in &self.schemas {
            s.push_str(&format!("schema|{t}|{v}\n"));
        }
        let crc = crc32fast::hash(s.as_bytes());
        s.push_str(&format!("end|{crc:08x}\n"));
        s
    }

    /// None for a torn or damaged record (its frame never wrote a table).
    fn decode(bytes: &[u8]) -> Option<Intent> {
        let text = std::str::from_utf8(bytes).ok()?;
        let body_end = text.rfind("end|")?;
        let crc = u32::from_str_radix(text[body_end + 4..].trim_end(), 16).ok()?;
        if crc32fast::hash(&bytes[..body_end]) != crc {
            return None;
        }
        let mut lines = text[..body_end].lines();
        if !matches!(lines.next()?, INTENT_MAGIC | INTENT_MAGIC_SCHEMAS) {
            return None;
        }
        let mut it = Intent {
            id: String::new(),
            name: String::new(),
            ts_us: 0,
            user: String::new(),
            tables: Vec::new(),
            schemas: Vec::new(),
        };
        for l in lines {
            let (k, v) = l.split_once('|')?;
            match k {
                "id" => it.id = v.to_string(),
                "name" => it.name = v.to_string(),
                "ts" => it.ts_us = v.parse().ok()?,
                "user" => it.user = v.to_string(),
                "table" => {
                    let (t, ver) = v.split_once('|')?;
                    it.tables.push((t.to_string(), ver.to_string()));
                }
                "schema" => {
                    let (t, ver) = v.split_once('|')?;
                    it.schemas.push((t.to_string(), ver.to_string()));
                }
                _ => {}
            }
        }
        Some(it)
    }
}

/// The frame records of one database, with decided frames cached (a
/// decision never changes once durable).
#[derive(Debug, Default)]
pub(crate) struct FrameRecords {
    decided: std::sync::Mutex<HashMap<String, Decision>>,
    /// What recovery did, for `@status` and the CLI.
    pub notes: std::sync::Mutex<Vec<String>>,
}

/// A table's schema directory.
pub(crate) fn schema_dir(ctx: &DbCtx, table: &str) -> PathBuf {
    ctx.root.join("tables").join(table).join("schema")
}

/// Whether frame `id`'s schema of `table` is on disk: staged, or published
/// as `version`.
fn schema_part_written(ctx: &DbCtx, table: &str, id: &str, version: &str) -> Result<bool> {
    let dir = schema_dir(ctx, table);
    let staged = super::revisions::staged(&*ctx.io, &dir, "toml")?;
    if staged.iter().any(|(f, _)| f == id) {
        return Ok(true);
    }
    for file in [format!("{version}.toml"), format!("{version}.deleted")] {
        let p = dir.join(file);
        if ctx
            .io
            .len(&p)
            .map_err(|e| StorageError::io("stat", &p, e))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The version name a schema of `table` staged by frame `id` counts under:
/// None while the frame is undecided, or when it aborted.
pub(crate) fn committed_schema(ctx: &DbCtx, table: &str, id: &str) -> Result<Option<String>> {
    if ctx.frames.decision(ctx, id)? != Some(Decision::Commit) {
        return Ok(None);
    }
    Ok(read_intent(&*ctx.io, &ctx.root, id)?.and_then(|it| {
        it.schemas
            .into_iter()
            .find(|(t, _)| t == table)
            .map(|(_, v)| v)
    }))
}

/// Settles the schemas frames staged for `table` (the caller holds the
/// table's lock, so their writers are done or dead): a committed frame's
/// is published, an aborted one's removed, an undecided one's frame is
/// decided first.
pub(crate) fn settle_staged_schemas(ctx: &DbCtx, table: &str) -> Result<()> {
    let dir = schema_dir(ctx, table);
    for (id, deleted) in super::revisions::staged(&*ctx.io, &dir, "toml")? {
        let decision = match ctx.frames.decision(ctx, &id)? {
            Some(d) => d,
            None => ctx.frames.decide_after_crash(ctx, &id)?,
        };
        match (decision, committed_schema(ctx, table, &id)?) {
            (Decision::Commit, Some(version)) => {
                super::revisions::publish_staged(&*ctx.io, &dir, "toml", &id, deleted, &version)?
            }
            _ => super::revisions::remove_staged(&*ctx.io, &dir, "toml", &id)?,
        }
    }
    Ok(())
}

fn frames_dir(root: &Path) -> PathBuf {
    root.join("frames")
}

fn record(root: &Path, id: &str, ext: &str) -> PathBuf {
    frames_dir(root).join(format!("{id}.{ext}"))
}

/// The decision recorded for frame `id`, if any (read from disk).
pub(crate) fn read_decision(io: &dyn Io, root: &Path, id: &str) -> Result<Option<Decision>> {
    for (ext, d) in [("commit", Decision::Commit), ("abort", Decision::Abort)] {
        let p = record(root, id, ext);
        if io
            .len(&p)
            .map_err(|e| StorageError::io("stat", &p, e))?
            .is_some()
        {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

pub(crate) fn read_intent(io: &dyn Io, root: &Path, id: &str) -> Result<Option<Intent>> {
    let p = record(root, id, "intent");
    match io.read(&p) {
        Ok(b) => Ok(Intent::decode(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("read", &p, e)),
    }
}

/// Writes a record durably: new file, fsync, fsync of the directory.
fn write_record(io: &dyn Io, root: &Path, id: &str, ext: &str, body: &[u8]) -> Result<()> {
    let dir = frames_dir(root);
    io.create_dir(&dir)
        .map_err(|e| StorageError::io("create", &dir, e))?;
    let p = record(root, id, ext);
    match io.write_new(&p, body, true) {
        Ok(()) => {}
        // A resolver that raced us decided the same way (the rule is deterministic).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(StorageError::io("write", &p, e)),
    }
    io.sync_dir(&dir)
        .map_err(|e| StorageError::io("fsync directory", &dir, e))
}

impl FrameRecords {
    /// The decision for frame `id`, cached once found.
    pub(crate) fn decision(&self, ctx: &DbCtx, id: &str) -> Result<Option<Decision>> {
        if let Some(d) = lock(&self.decided).get(id) {
            return Ok(Some(*d));
        }
        let d = read_decision(&*ctx.io, &ctx.root, id)?;
        if let Some(d) = d {
            lock(&self.decided).insert(id.to_string(), d);
        }
        Ok(d)
    }

    fn decide(&self, ctx: &DbCtx, id: &str, d: Decision, why: &str) -> Result<()> {
        let (ext, body) = match d {
            Decision::Commit => ("commit", "commit\n".to_string()),
            Decision::Abort => ("abort", format!("abort|{}\n", why.replace('\n', " "))),
        };
        write_record(&*ctx.io, &ctx.root, id, ext, body.as_bytes())?;
        lock(&self.decided).insert(id.to_string(), d);
        Ok(())
    }

    /// Decides a frame whose writer died (the caller holds the lock of a
    /// table whose last line belongs to it): forward when every table of
    /// its intent holds its line, back otherwise.
    pub(crate) fn decide_after_crash(&self, ctx: &DbCtx, id: &str) -> Result<Decision> {
        if let Some(d) = self.decision(ctx, id)? {
            return Ok(d);
        }
        let intent = read_intent(&*ctx.io, &ctx.root, id)?;
        let complete = match &intent {
            None => false,
            Some(it) => {
                let mut all = true;
                for (table, version) in &it.tables {
                    let p = ctx.root.join("tables").join(table).join(super::LOG);
                    let bytes = match ctx.io.read(&p) {
                        Ok(b) => b,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                        Err(e) => return Err(StorageError::io("read", &p, e)),
                    };
                    let has = log::parse(&bytes, 0)
                        .entries
                        .iter()
                        .any(|e| e.frame.as_deref() == Some(id) && &e.name() == version);
                    all &= has;
                }
                for (table, version) in &it.schemas {
                    all &= schema_part_written(ctx, table, id, version)?;
                }
                all
            }
        };
        let (d, what) = if complete {
            (Decision::Commit, "rolled forward: every table had its part")
        } else {
            (Decision::Abort, "rolled back: not every table had its part")
        };
        self.decide(ctx, id, d, "its writer stopped before committing")?;
        let name = intent.map(|i| i.name).unwrap_or_default();
        let note = format!("recovery: frame {id} ({name}) {what}");
        tracing::warn!("{note}");
        lock(&self.notes).push(note);
        Ok(d)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One table's part of a frame.
#[derive(Debug, Clone)]
pub struct Staged {
    /// What the content was written from (a merge runs when the head moved).
    pub base: Base,
    pub content: Vec<u8>,
    pub action: Action,
}

/// A frame's change to a table's schema: the new text, or None to remove it.
pub type SchemaChange = Option<String>;

/// The result of a committed frame.
#[derive(Debug, Clone)]
pub struct FrameCommitted {
    pub id: String,
    pub name: String,
    pub ts_us: u64,
    /// Every staged table with its outcome (`created` is false where the
    /// content equalled the head).
    pub tables: Vec<(String, Committed)>,
    /// The tables whose schema the frame changed.
    pub schemas: Vec<String>,
}

/// A frame: content staged for several tables, committed all at once or
/// not at all. Nothing touches the disk before [`Frame::commit`]; dropping
/// an uncommitted frame aborts it.
#[derive(Debug)]
pub struct Frame {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) staged: std::collections::BTreeMap<String, Staged>,
    /// Schemas the frame sets (Some) or removes (None), by table.
    pub(crate) schemas: std::collections::BTreeMap<String, SchemaChange>,
    /// The frame's timestamp is at least this (microseconds): sync commits
    /// a head it replayed after every record it holds (hybrid clock).
    pub(crate) not_before_us: u64,
}

impl Frame {
    /// Begins a frame; `name` follows the rules of table names.
    pub fn begin(name: &str) -> Result<Frame> {
        names::validate(name)?;
        Ok(Frame {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            staged: Default::default(),
            schemas: Default::default(),
            not_before_us: 0,
        })
    }

    /// Resumes a frame staged earlier (by another process, see the CLI).
    /// Like [`Self::stage`], the one other way content enters a frame, it
    /// strips a leading byte-order mark (see [`super::csv::strip_bom`]).
    pub fn resume(id: &str, name: &str, staged: Vec<(String, Staged)>) -> Frame {
        Frame {
            id: id.to_string(),
            name: name.to_string(),
            staged: staged
                .into_iter()
                .map(|(table, mut st)| {
                    st.content =
                        super::csv::strip_bom(std::mem::take(&mut st.content)).into_owned();
                    (table, st)
                })
                .collect(),
            schemas: Default::default(),
            not_before_us: 0,
        }
    }

    /// The frame commits with a timestamp of at least `ts_us`.
    pub fn not_before(mut self, ts_us: u64) -> Frame {
        self.not_before_us = ts_us;
        self
    }

    /// Stages `content` for `table` as [`Self::stage`] does, with the
    /// action its version is logged with.
    pub fn stage_as(
        &mut self,
        table: &str,
        base: Base,
        content: Vec<u8>,
        action: Action,
    ) -> Result<()> {
        self.stage(table, base, content)?;
        if let Some(st) = self.staged.get_mut(table) {
            st.action = action;
        }
        Ok(())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stages `content` for `table` (replacing what was staged for it),
    /// without a leading byte-order mark: staging is where a frame's
    /// content enters the store, as `Table::commit` is for a single save.
    pub fn stage(&mut self, table: &str, base: Base, content: Vec<u8>) -> Result<()> {
        names::validate(table)?;
        // Only empty content asks for a drop: a file holding nothing but a
        // byte-order mark commits as empty content, never as a drop.
        let action = if content.is_empty() {
            Action::Drop
        } else {
            Action::Frame
        };
        let content = super::csv::strip_bom(content).into_owned();
        self.staged.insert(
            table.to_string(),
            Staged {
                base,
                content,
                action,
            },
        );
        Ok(())
    }

    /// Stages a new schema for `table` (`None`: remove its schema). The
    /// frame's content for the table, or its head when none is staged, is
    /// checked against this schema as a whole; the schema and the content
    /// commit together.
    pub fn stage_schema(&mut self, table: &str, schema: SchemaChange) -> Result<()> {
        names::validate(table)?;
        self.schemas.insert(table.to_string(), schema);
        Ok(())
    }

    /// Takes `table`'s content out of the frame again (a schema staged for
    /// it stays: [`Self::unstage_schema`]).
    pub fn unstage(&mut self, table: &str) -> bool {
        self.staged.remove(table).is_some()
    }

    /// Takes `table`'s schema out of the frame again.
    pub fn unstage_schema(&mut self, table: &str) -> bool {
        self.schemas.remove(table).is_some()
    }

    /// The schemas staged, by table.
    pub fn staged_schemas(&self) -> impl Iterator<Item = (&str, &SchemaChange)> {
        self.schemas.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn staged(&self) -> impl Iterator<Item = (&str, &Staged)> {
        self.staged.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The same staging under a new frame id: what to commit again after a
    /// failed commit (an id reaches the store once: its intent, maybe its
    /// abort record, describe that attempt).
    pub fn renewed(&self) -> Frame {
        Frame {
            id: uuid::Uuid::new_v4().to_string(),
            name: self.name.clone(),
            staged: self.staged.clone(),
            schemas: self.schemas.clone(),
            not_before_us: self.not_before_us,
        }
    }

    /// Discards the frame. (Dropping it does the same.)
    pub fn abort(self) {}
}

pub(crate) fn write_intent(ctx: &DbCtx, intent: &Intent) -> Result<()> {
    write_record(
        &*ctx.io,
        &ctx.root,
        &intent.id,
        "intent",
        intent.encode().as_bytes(),
    )
}

pub(crate) fn decide(ctx: &DbCtx, id: &str, d: Decision, why: &str) -> Result<()> {
    ctx.frames.decide(ctx, id, d, why)
}

/// Removes a record written by a frame that failed before its commit
/// point (best effort: the log lines are what makes a frame visible).
pub(crate) fn remove_record(ctx: &DbCtx, id: &str, ext: &str) {
    let _ = ctx.io.remove(&record(&ctx.root, id, ext));
}

/// A frame as `frame:list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInfo {
    pub id: String,
    pub name: String,
    pub ts_us: u64,
    pub user: String,
    pub tables: Vec<(String, String)>,
    /// (table, version name) of every schema it set or removed.
    pub schemas: Vec<(String, String)>,
    /// "committed", "aborted" or "pending" (its writer is still at work, or
    /// died and the next open of one of its tables decides it).
    pub status: &'static str,
}

/// Every frame with an intent record, oldest first.
pub(crate) fn list(ctx: &DbCtx) -> Result<Vec<FrameInfo>> {
    let dir = frames_dir(&ctx.root);
    let names = match ctx.io.list(&dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StorageError::io("list", &dir, e)),
    };
    let mut out = Vec::new();
    for n in names {
        if let Some(info) = n
            .strip_suffix(".intent")
            .map(|id| info(ctx, id))
            .transpose()?
        {
            out.extend(info);
        }
    }
    out.sort_by(|a, b| (a.ts_us, &a.id).cmp(&(b.ts_us, &b.id)));
    Ok(out)
}

/// Frame `id` if it has an intent record (one frame read, not the list).
pub(crate) fn info(ctx: &DbCtx, id: &str) -> Result<Option<FrameInfo>> {
    let Some(it) = read_intent(&*ctx.io, &ctx.root, id)? else {
        return Ok(None);
    };
    let status = match ctx.frames.decision(ctx, id)? {
        Some(Decision::Commit) => "committed",
        Some(Decision::Abort) => "aborted",
        None => "pending",
    };
    Ok(Some(FrameInfo {
        id: it.id,
        name: it.name,
        ts_us: it.ts_us,
        user: it.user,
        tables: it.tables,
        schemas: it.schemas,
        status,
    }))
}

/// The one element of `found` (matches of what the user gave), else "not
/// found": none, or several (give more of the id).
pub fn pick_one<T>(mut found: Vec<T>, kind: &'static str, given: &str) -> Result<T> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(StorageError::NotFound {
            kind,
            name: given.to_string(),
        }),
        n => Err(StorageError::NotFound {
            kind,
            name: format!("{given} ({n} frames match; give more of the id)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_roundtrip_and_torn_record() {
        let it = Intent {
            id: "abc".into(),
            name: "move-money".into(),
            ts_us: 42,
            user: "ann".into(),
            tables: vec![("a".into(), "v1".into()), ("b".into(), "v2".into())],
            schemas: vec![("a".into(), "v1".into())],
        };
        let bytes = it.encode().into_bytes();
        assert_eq!(Intent::decode(&bytes), Some(it));
        for cut in 0..bytes.len() - 1 {
            assert_eq!(Intent::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
