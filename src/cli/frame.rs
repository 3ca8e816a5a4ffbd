//! `frame:*` and `restore:point-in-time`: changes to several tables that
//! commit all at once or not at all.
//!
//! A frame built from the command line spans several `rdb` processes, so it
//! is staged on disk until it is committed or aborted:
//!
//! ```text
//! <db root>/frames/open/<id>/frame.toml   id, name, user, time begun, and per
//!                                         table the version it was staged from
//! <db root>/frames/open/<id>/<table>.csv  the staged content (empty: drop the table)
//! ```
//!
//! This is staging only: storage keeps the files (durably, privately;
//! `Database::save_open_frame_file` and its siblings), this module says
//! what they hold. The commit itself goes through
//! `merge::commit_frame_merging`, like any frame, and merges with whatever
//! others committed since a table was staged.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use reedbase::merge::{self, Conflict, MergeError};
use reedbase::storage::csv::TableIndex;
use reedbase::storage::names::{self, format_ts, format_ts_human, now_us};
use reedbase::storage::rowdiff;
use reedbase::storage::{
    Action, Base, ConflictPolicy, Database, Frame, FrameCommitted, FrameInfo, Staged, StorageError,
};
use serde::{Deserialize, Serialize};

use super::output::{Format, FormatArg, print_rows};
use super::table::read_input;
use super::version::print_text;
use super::{Ctx, exit, fail};

const MANIFEST: &str = "frame.toml";

/// Conflicting cells listed in full before "... and N more".
const SHOW_CONFLICTS: usize = 50;

// ---------------------------------------------------------------------------
// Staging on disk
// ---------------------------------------------------------------------------

/// What `frame.toml` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    id: String,
    name: String,
    user: String,
    /// When `frame:begin` ran (UTC microseconds).
    created_us: u64,
    #[serde(default)]
    tables: Vec<StagedTable>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StagedTable {
    table: String,
    /// The table's head when it was staged: the merge base at commit.
    base: u64,
}

/// The versions staged frames start from (their merge bases), by table:
/// `version:prune` keeps them so the frames can still commit.
pub fn staged_frame_pins(db: &Database) -> Result<reedbase::storage::Pins> {
    let mut pins = reedbase::storage::Pins::new();
    for id in db.open_frames()? {
        let f = OpenFrame::load(db, &id)?;
        for t in &f.manifest.tables {
            pins.entry(t.table.clone())
                .or_default()
                .push((t.base, format!("staged frame {}", f.manifest.name)));
        }
    }
    Ok(pins)
}

/// A frame staged by `frame:begin` and `frame:stage`, not yet committed.
/// Its id is the name of its staging in the store.
struct OpenFrame {
    manifest: Manifest,
}

/// The staging file holding `table`'s content (a valid table name is one
/// path component, so this is one too).
fn content_file(table: &str) -> String {
    format!("{table}.csv")
}

impl OpenFrame {
    fn create(db: &Database, manifest: Manifest) -> Result<OpenFrame> {
        let f = OpenFrame { manifest };
        f.save(db)?;
        Ok(f)
    }

    fn load(db: &Database, id: &str) -> Result<OpenFrame, StorageError> {
        let bytes = db.read_open_frame_file(id, MANIFEST)?;
        let bad = |detail: String| -> StorageError {
            match db.open_frame_dir(id) {
                Ok(dir) => StorageError::corrupt(dir.join(MANIFEST), detail),
                Err(e) => e,
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if manifest.id != id {
            return Err(bad(format!(
                "names frame {:?}, not its directory",
                manifest.id
            )));
        }
        names::validate(&manifest.name).map_err(|e| bad(e.to_string()))?;
        for t in &manifest.tables {
            // Table names become file names below: only valid ones.
            names::validate(&t.table).map_err(|e| bad(e.to_string()))?;
        }
        Ok(OpenFrame { manifest })
    }

    fn save(&self, db: &Database) -> Result<()> {
        let text = toml::to_string(&self.manifest)?;
        db.save_open_frame_file(&self.manifest.id, MANIFEST, text.as_bytes())?;
        Ok(())
    }

    fn read_content(&self, db: &Database, table: &str) -> Result<Vec<u8>> {
        Ok(db.read_open_frame_file(&self.manifest.id, &content_file(table))?)
    }

    /// Stages `content` for `table`, from version `base` (replacing what was
    /// staged for it). The content first, then the manifest that points to
    /// it: a crash between them leaves the manifest as it was.
    fn stage(&mut self, db: &Database, table: &str, base: u64, content: &[u8]) -> Result<()> {
        db.save_open_frame_file(&self.manifest.id, &content_file(table), content)?;
        match self.manifest.tables.iter_mut().find(|t| t.table == table) {
            Some(t) => t.base = base,
            None => self.manifest.tables.push(StagedTable {
                table: table.to_string(),
                base,
            }),
        }
        self.manifest.tables.sort_by(|a, b| a.table.cmp(&b.table));
        self.save(db)
    }

    fn remove(self, db: &Database) -> Result<()> {
        db.remove_open_frame(&self.manifest.id)?;
        Ok(())
    }

    fn label(&self) -> String {
        format!("{} ({})", self.manifest.name, self.manifest.id)
    }
}

/// Every staged frame of the database, oldest first. A damaged one is
/// named on stderr and skipped.
fn list_open(db: &Database) -> Result<Vec<OpenFrame>> {
    let mut out = Vec::new();
    for id in db.open_frames()? {
        match OpenFrame::load(db, &id) {
            Ok(f) => out.push(f),
            Err(e) => eprintln!("rdb: skipping the staged frame {id}: {}", e.report()),
        }
    }
    out.sort_by(|a, b| {
        (a.manifest.created_us, &a.manifest.id).cmp(&(b.manifest.created_us, &b.manifest.id))
    });
    Ok(out)
}

/// Whether a frame is the one the user named: by a prefix of its id, or by its name.
fn named(id: &str, name: &str, given: &str) -> bool {
    !given.is_empty() && (id.starts_with(given) || name == given)
}

/// The one element of `found`, else "not found" (none, or several).
fn unique<T>(found: Vec<T>, kind: &'static str, given: &str) -> Result<T> {
    Ok(reedbase::storage::frame::pick_one(found, kind, given)?)
}

/// The staged frame whose id starts with `given`, or whose name is `given`.
fn find_open(db: &Database, given: &str) -> Result<OpenFrame> {
    let found = list_open(db)?
        .into_iter()
        .filter(|f| named(&f.manifest.id, &f.manifest.name, given))
        .collect();
    unique(found, "staged frame", given)
}

fn action_for(content: &[u8]) -> Action {
    if content.is_empty() {
        Action::Drop
    } else {
        Action::Frame
    }
}

// ---------------------------------------------------------------------------
// Committing and reporting
// ---------------------------------------------------------------------------

fn show_value(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "(no row)".to_string(), |v| format!("{v:?}"))
}

/// Lists conflicting cells on stderr; `labels` name base, ours and theirs.
fn print_conflicts(conflicts: &[(String, Conflict)], labels: [&str; 3]) {
    for (table, c) in conflicts.iter().take(SHOW_CONFLICTS) {
        let column = if c.column.is_empty() {
            "whole row".to_string()
        } else {
            format!("column {:?}", c.column)
        };
        eprintln!(
            "  {table}: key {:?}, {column}: {} {}, {} {}, {} {}",
            c.key,
            labels[0],
            show_value(&c.base),
            labels[1],
            show_value(&c.ours),
            labels[2],
            show_value(&c.theirs)
        );
    }
    if conflicts.len() > SHOW_CONFLICTS {
        eprintln!("  ... and {} more", conflicts.len() - SHOW_CONFLICTS);
    }
}

/// Commits `frame`; on success prints its id and each table's version on
/// stdout (`notes` adds a remark per table). Under last-writer-wins, the
/// cells it overwrote are listed on stderr.
fn commit_and_report(
    ctx: &Ctx,
    db: &Database,
    frame: Frame,
    notes: &HashMap<String, String>,
) -> Result<FrameCommitted, MergeError> {
    let policy = db.config().conflict_policy;
    let (done, overwritten) = merge::commit_frame_merging(db, frame, &ctx.user, policy)?;
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock| -> std::io::Result<()> {
        writeln!(out, "{}", done.id)?;
        for table in &done.schemas {
            writeln!(
                out,
                "{table}: schema.toml (version {})",
                names::version_name(done.ts_us, &db.config().node)
            )?;
        }
        for (table, c) in &done.tables {
            let note = notes.get(table).map(String::as_str).unwrap_or_default();
            if c.created {
                writeln!(
                    out,
                    "{table}: version {} ({}){note}",
                    c.version.seq, c.version.name
                )?;
            } else {
                writeln!(out, "{table}: unchanged (version {})", c.version.seq)?;
            }
        }
        out.flush()
    };
    // The frame is committed: a closed stdout must not make it look failed.
    if let Err(e) = print(&mut out)
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("rdb: cannot write to stdout: {e}");
    }
    let changed = done.tables.iter().filter(|(_, c)| c.created).count();
    let schemas = match done.schemas.len() {
        0 => String::new(),
        n => format!(", {n} schema(s)"),
    };
    eprintln!(
        "committed frame {} ({}): {changed} of {} table(s) changed{schemas}",
        done.name,
        done.id,
        done.tables.len()
    );
    if !overwritten.is_empty() {
        eprintln!(
            "last-writer-wins: {} cell(s) changed by others meanwhile were overwritten:",
            overwritten.len()
        );
        print_conflicts(&overwritten, ["base", "frame", "was"]);
    }
    Ok(done)
}

/// After a staged frame failed with conflicts: the first table (in commit
/// order) whose staged content does not merge with its current head, and
/// its cells. (The merge error says how many, not where.)
fn find_conflicts(db: &Database, open: &OpenFrame) -> Result<Vec<(String, Conflict)>> {
    let delim = db.config().delimiter_byte();
    for st in &open.manifest.tables {
        let t = db.table(&st.table)?;
        let (head_seq, head) = t.head()?;
        if st.base == head_seq {
            continue;
        }
        let base = read_or_empty(db, &st.table, st.base)?;
        let ours = open.read_content(db, &st.table)?;
        let m = merge::merge3(&base, &ours, &head, delim, ConflictPolicy::Reject)?;
        if !m.conflicts.is_empty() {
            let cells = m.conflicts.into_iter().map(|c| (st.table.clone(), c));
            return Ok(cells.collect());
        }
    }
    Ok(Vec::new())
}

/// The first 8 characters of a frame id, for names and hints.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

pub fn begin(ctx: &Ctx, db_name: &str, name: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let frame = Frame::begin(name)?;
    let open = OpenFrame::create(
        &db,
        Manifest {
            id: frame.id().to_string(),
            name: frame.name().to_string(),
            user: ctx.user.clone(),
            created_us: now_us(),
            tables: Vec::new(),
        },
    )?;
    println!("{}", open.manifest.id);
    eprintln!(
        "began frame {}; stage tables with `rdb frame:stage {db_name} {} <table> <file>`",
        open.label(),
        short_id(&open.manifest.id)
    );
    Ok(exit::OK)
}

pub fn stage(ctx: &Ctx, db_name: &str, id: &str, table: &str, file: &Path) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let mut open = find_open(&db, id)?;
    let t = db.table(table)?;
    let content = read_input(file)?;
    let what = if content.is_empty() {
        "a drop".to_string()
    } else {
        let idx = TableIndex::parse(&content, db.config().delimiter_byte())
            .map_err(StorageError::from)?;
        format!("{} rows", idx.starts.len())
    };
    let base = t.head_seq()?;
    open.stage(&db, table, base, &content)?;
    eprintln!(
        "staged {table} for frame {}: {what}, from version {base}",
        open.label()
    );
    Ok(exit::OK)
}

pub fn commit(ctx: &Ctx, db_name: &str, id: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let open = find_open(&db, id)?;
    let m = &open.manifest;
    if m.tables.is_empty() {
        return Err(fail(
            exit::INVALID,
            format!(
                "frame {} has nothing staged: `rdb frame:stage` a table first, or `rdb frame:abort` it",
                open.label()
            ),
        ));
    }
    // A frame id is used once: one that reached the store before (committed,
    // or aborted by a failure) cannot be committed again.
    if let Some(f) = db.frame_by_id(&m.id)? {
        return Err(StorageError::Exists {
            kind: "frame",
            name: format!(
                "{} ({} before; `rdb frame:abort` removes its staging, then begin a new frame)",
                m.id, f.status
            ),
        }
        .into());
    }
    let mut parts = Vec::with_capacity(m.tables.len());
    for st in &m.tables {
        let content = open.read_content(&db, &st.table)?;
        let part = Staged {
            base: Base::Version(st.base),
            action: action_for(&content),
            content,
        };
        parts.push((st.table.clone(), part));
    }
    let frame = Frame::resume(&m.id, &m.name, parts);
    match commit_and_report(ctx, &db, frame, &HashMap::new()) {
        Ok(_) => {}
        Err(e @ MergeError::Conflicts { .. }) => {
            eprintln!(
                "rdb: frame {} conflicts with changes committed since it was staged; nothing was committed, the staging stays",
                open.label()
            );
            match find_conflicts(&db, &open) {
                Ok(cells) => print_conflicts(&cells, ["base", "frame", "head"]),
                Err(e) => eprintln!("rdb: cannot list the conflicting cells: {e:#}"),
            }
            eprintln!(
                "  re-stage the table from its current head, or set `rdb db:config {db_name} conflict_policy last-writer-wins`"
            );
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    let label = open.label();
    if let Err(e) = open.remove(&db) {
        eprintln!("rdb: the frame {label} is committed, but its staging stays: {e:#}");
    }
    Ok(exit::OK)
}

pub fn abort(ctx: &Ctx, db_name: &str, id: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let open = find_open(&db, id)?;
    let label = open.label();
    open.remove(&db)?;
    eprintln!("aborted frame {label}: nothing was committed");
    Ok(exit::OK)
}

pub fn list(ctx: &Ctx, db_name: &str, f: FormatArg) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let time = |ts_us: u64| {
        if f.format == Format::Csv {
            format_ts(ts_us)
        } else {
            format_ts_human(ts_us)
        }
    };
    let mut rows: Vec<(u64, Vec<String>)> = db
        .frames()?
        .into_iter()
        .map(|fi| {
            let mut tables: Vec<String> = fi.tables.iter().map(|(t, _)| t.clone()).collect();
            tables.extend(fi.schemas.iter().map(|(t, _)| format!("{t}/schema.toml")));
            let row = vec![
                fi.id.clone(),
                fi.name.clone(),
                time(fi.ts_us),
                tables.join(","),
                fi.status.to_string(),
            ];
            (fi.ts_us, row)
        })
        .collect();
    for open in list_open(&db)? {
        let m = open.manifest;
        let tables: Vec<&str> = m.tables.iter().map(|t| t.table.as_str()).collect();
        let row = vec![
            m.id.clone(),
            m.name.clone(),
            time(m.created_us),
            tables.join(","),
            "staged".to_string(),
        ];
        rows.push((m.created_us, row));
    }
    rows.sort_by_key(|r| r.0);
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
    print_rows(f.format, &["id", "name", "time", "tables", "status"], &rows)?;
    Ok(exit::OK)
}

/// A frame known to the database, or one still staged.
enum AnyFrame {
    Recorded(FrameInfo),
    Staged(OpenFrame),
}

fn find_any(db: &Database, given: &str) -> Result<AnyFrame> {
    let mut found: Vec<AnyFrame> = db
        .frames()?
        .into_iter()
        .filter(|f| named(&f.id, &f.name, given))
        .map(AnyFrame::Recorded)
        .collect();
    found.extend(
        list_open(db)?
            .into_iter()
            .filter(|f| named(&f.manifest.id, &f.manifest.name, given))
            .map(AnyFrame::Staged),
    );
    unique(found, "frame", given)
}

/// The version frame `id` wrote in `table`.
fn frame_version(db: &Database, table: &str, id: &str) -> Result<reedbase::storage::VersionInfo> {
    let t = db.table(table)?;
    t.versions()?
        .into_iter()
        .find(|v| v.frame.as_deref() == Some(id))
        .ok_or_else(|| {
            StorageError::NotFound {
                kind: "version of frame",
                name: format!("{table}@{id}"),
            }
            .into()
        })
}

fn read_or_empty(db: &Database, table: &str, seq: u64) -> Result<Vec<u8>> {
    if seq == 0 {
        return Ok(Vec::new());
    }
    Ok(db.table(table)?.read_version(seq)?)
}

pub fn show(ctx: &Ctx, db_name: &str, id: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let delim = db.config().delimiter_byte();
    let mut out = std::io::stdout().lock();
    match find_any(&db, id)? {
        AnyFrame::Recorded(f) => {
            let tables: Vec<&str> = f.tables.iter().map(|(t, _)| t.as_str()).collect();
            writeln!(out, "frame:   {}", f.id)?;
            writeln!(out, "name:    {}", f.name)?;
            writeln!(out, "time:    {} UTC", format_ts_human(f.ts_us))?;
            writeln!(out, "user:    {}", f.user)?;
            writeln!(out, "status:  {}", f.status)?;
            writeln!(out, "tables:  {}", tables.join(", "))?;
            for (table, version) in &f.schemas {
                writeln!(out)?;
                let history = db.schema_history(table)?;
                let at = history.iter().position(|r| r.version == *version);
                let text = |r: Option<&reedbase::storage::Revision>| {
                    r.and_then(|r| r.text.clone()).unwrap_or_default()
                };
                let (before, after) = match at {
                    Some(i) => (
                        text(i.checked_sub(1).and_then(|j| history.get(j))),
                        text(history.get(i)),
                    ),
                    None => {
                        writeln!(
                            out,
                            "{table}/schema.toml: no version (the frame did not commit)"
                        )?;
                        continue;
                    }
                };
                let parse = |t: &str| reedbase::storage::Rules::parse(t, table, None);
                writeln!(out, "{table}/schema.toml: version {version}")?;
                for l in reedbase::storage::schema_change::diff(&parse(&before)?, &parse(&after)?) {
                    writeln!(out, "{l}")?;
                }
            }
            for (table, _) in &f.tables {
                writeln!(out)?;
                let v = match frame_version(&db, table, &f.id) {
                    Ok(v) => v,
                    Err(_) => {
                        writeln!(out, "{table}: no version (the frame did not commit)")?;
                        continue;
                    }
                };
                let before = v.seq.saturating_sub(1);
                writeln!(out, "{table}: version {} (before: {before})", v.seq)?;
                out.flush()?;
                let d = rowdiff::diff(
                    &read_or_empty(&db, table, before)?,
                    &db.table(table)?.read_version(v.seq)?,
                    delim,
                );
                print_text(&d, before, v.seq)?;
            }
        }
        AnyFrame::Staged(f) => {
            let m = &f.manifest;
            let tables: Vec<&str> = m.tables.iter().map(|t| t.table.as_str()).collect();
            writeln!(out, "frame:   {}", m.id)?;
            writeln!(out, "name:    {}", m.name)?;
            writeln!(
                out,
                "time:    {} UTC (begun)",
                format_ts_human(m.created_us)
            )?;
            writeln!(out, "user:    {}", m.user)?;
            writeln!(out, "status:  staged")?;
            writeln!(out, "tables:  {}", tables.join(", "))?;
            for st in &m.tables {
                writeln!(out)?;
                let head = db.table(&st.table)?.head_seq()?;
                writeln!(
                    out,
                    "{}: staged from version {} (head now {head})",
                    st.table, st.base
                )?;
                out.flush()?;
                let d = rowdiff::diff(
                    &read_or_empty(&db, &st.table, st.base)?,
                    &f.read_content(&db, &st.table)?,
                    delim,
                );
                if d.is_empty() {
                    writeln!(out, "no changed rows")?;
                } else {
                    print_text(&d, st.base, st.base)?;
                }
            }
        }
    }
    Ok(exit::OK)
}

pub fn rollback(ctx: &Ctx, db_name: &str, id: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let info = db.frame_info(id)?;
    if info.status != "committed" {
        return Err(fail(
            exit::INVALID,
            format!(
                "frame {} ({}) is {}: it changed nothing to roll back",
                info.name, info.id, info.status
            ),
        ));
    }
    let policy = db.config().conflict_policy;
    let delim = db.config().delimiter_byte();
    let mut frame = Frame::begin(&format!("rollback-{}", short_id(&info.id)))?;
    let mut conflicts: Vec<(String, Conflict)> = Vec::new();
    let mut notes = HashMap::new();
    for (table, _) in &info.tables {
        let t = db.table(table)?;
        let v = frame_version(&db, table, &info.id)?;
        let before = read_or_empty(&db, table, v.seq.saturating_sub(1))?;
        let after = t.read_version(v.seq)?;
        let (head_seq, head) = t.head()?;
        if head.is_empty() && !after.is_empty() {
            eprintln!("{table}: dropped since the frame; left as it is");
            continue;
        }
        // Undo the frame's change (after -> before) on top of the head:
        // a three-way merge with the frame's version as the base.
        let m = merge::merge3(&after, &before, &head, delim, policy)?;
        conflicts.extend(m.conflicts.iter().cloned().map(|c| (table.clone(), c)));
        // Before the frame the table did not exist or was dropped: undoing is a drop.
        let content = if before.is_empty() {
            Vec::new()
        } else {
            m.content
        };
        if content == *head {
            eprintln!("{table}: already as before the frame");
            continue;
        }
        frame.stage(table, Base::Version(head_seq), content)?;
        notes.insert(table.clone(), format!(", undoing version {}", v.seq));
    }
    if !conflicts.is_empty() {
        if policy == ConflictPolicy::Reject {
            eprintln!(
                "rdb: later changes overlap what frame {} ({}) changed; nothing was committed:",
                info.name, info.id
            );
            print_conflicts(&conflicts, ["frame", "before", "now"]);
            return Err(fail(
                exit::CONFLICT,
                format!(
                    "{} conflicting cell(s): resolve them by hand, or set conflict_policy last-writer-wins to restore the values from before the frame",
                    conflicts.len()
                ),
            ));
        }
        eprintln!(
            "last-writer-wins: {} cell(s) changed after the frame are set back to their values before it:",
            conflicts.len()
        );
        print_conflicts(&conflicts, ["frame", "before", "now"]);
    }
    for (table, version) in &info.schemas {
        let history = db.schema_history(table)?;
        let Some(at) = history.iter().position(|r| r.version == *version) else {
            continue;
        };
        if history.last().map(|r| &r.version) != Some(version) {
            eprintln!("{table}: schema.toml changed since the frame; left as it is");
            continue;
        }
        let before = at.checked_sub(1).and_then(|i| history[i].text.clone());
        frame.stage_schema(table, before)?;
    }
    if frame.staged().next().is_none() && frame.staged_schemas().next().is_none() {
        eprintln!("nothing to roll back: every table is already as before the frame");
        return Ok(exit::OK);
    }
    commit_and_report(ctx, &db, frame, &notes)?;
    Ok(exit::OK)
}

/// A point in time in any form `names::parse_time` reads; a full version
/// name (with its node) stands for its time.
pub(super) fn parse_when(text: &str) -> Result<u64> {
    let now = now_us();
    names::parse_time(text, now)
        .or_else(|e| match text.split_once("Z-") {
            Some((ts, _node)) => names::parse_time(&format!("{ts}Z"), now).map_err(|_| e),
            None => Err(e),
        })
        .map_err(|e| fail(exit::INVALID, e))
}

pub fn restore_point_in_time(ctx: &Ctx, db_name: &str, time: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let ts = parse_when(time)?;
    let when = format!("{} UTC", format_ts_human(ts));
    // 20261124T051530.123456Z -> restore-20261124T051530_123456Z (a valid name).
    let mut frame = Frame::begin(&format!("restore-{}", format_ts(ts).replace('.', "_")))?;
    let mut notes = HashMap::new();
    let mut unchanged = 0;
    for table in db.table_names()? {
        let t = db.table(&table)?;
        let seq = t.seq_at(ts)?;
        let target = read_or_empty(&db, &table, seq)?;
        let (head_seq, head) = t.head()?;
        if target == *head {
            unchanged += 1;
            continue;
        }
        let note = if seq == 0 {
            ", dropped: it had no version then".to_string()
        } else if target.is_empty() {
            format!(", dropped as at version {seq}")
        } else {
            format!(", equal to version {seq}")
        };
        frame.stage(&table, Base::Version(head_seq), target)?;
        notes.insert(table, note);
    }
    if notes.is_empty() {
        eprintln!("every table already holds its content as of {when}; nothing to do");
        return Ok(exit::OK);
    }
    commit_and_report(ctx, &db, frame, &notes)?;
    eprintln!(
        "restored {} table(s) to {when}; {unchanged} already were",
        notes.len()
    );
    Ok(exit::OK)
}
