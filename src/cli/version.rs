//! `version:*` commands.

use std::io::Write;

use anyhow::Result;
use reedbase::storage::names::format_ts_human;
use reedbase::storage::rowdiff::{self, RowDiff};
use reedbase::storage::{Action, Base, CommitOptions, StorageError, Table};

use super::output::{Format, FormatArg, human_bytes, print_rows};
use super::{Ctx, exit};

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    pub db: String,
    pub table: String,
    /// The older version (number, name, or head).
    pub a: String,
    /// The newer version.
    pub b: String,
    /// text (for people) or csv (one line per changed cell, for scripts).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum DiffFormat {
    Text,
    Csv,
}

/// A version reference: a sequence number, `head`, `head~N`, or a version
/// name (or a unique prefix of one).
pub fn resolve_version(t: &Table, v: &str) -> Result<u64> {
    let head = t.head_seq()?;
    let not_found = || StorageError::NotFound {
        kind: "version",
        name: format!("{}@{v}", t.name()),
    };
    if v.eq_ignore_ascii_case("head") {
        return Ok(head);
    }
    if let Some(back) = v.strip_prefix("head~").or_else(|| v.strip_prefix("HEAD~"))
        && let Ok(n) = back.parse::<u64>()
    {
        return head
            .checked_sub(n)
            .filter(|&s| s > 0)
            .ok_or_else(|| not_found().into());
    }
    if let Ok(n) = v.parse::<u64>() {
        return if (1..=head).contains(&n) {
            Ok(n)
        } else {
            Err(not_found().into())
        };
    }
    let matches: Vec<u64> = t
        .versions()?
        .into_iter()
        .filter(|x| x.name.starts_with(v))
        .map(|x| x.seq)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        _ => Err(not_found().into()),
    }
}

pub fn list(ctx: &Ctx, db_name: &str, table: &str, f: FormatArg) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let t = db.table(table)?;
    // Versions a prune removed have no bytes to show: listed no more.
    let rows: Vec<Vec<String>> = t
        .kept_versions()?
        .into_iter()
        .map(|v| {
            let time = if f.format == Format::Csv {
                v.name.clone()
            } else {
                format_ts_human(v.ts_us)
            };
            let size = if f.format == Format::Csv {
                v.size.to_string()
            } else {
                human_bytes(v.size)
            };
            vec![
                v.seq.to_string(),
                time,
                v.action,
                v.user,
                v.rows.to_string(),
                size,
                v.hash.get(..12).unwrap_or(&v.hash).to_string(),
                v.frame.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_rows(
        f.format,
        &[
            "seq", "time", "action", "user", "rows", "size", "hash", "frame",
        ],
        &rows,
    )?;
    Ok(exit::OK)
}

pub fn show(ctx: &Ctx, db_name: &str, table: &str, v: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let t = db.table(table)?;
    let bytes = t.read_version(resolve_version(&t, v)?)?;
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(exit::OK)
}

pub fn diff(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    let db = ctx.open(&a.db)?;
    let t = db.table(&a.table)?;
    let (va, vb) = (resolve_version(&t, &a.a)?, resolve_version(&t, &a.b)?);
    let (old, new) = (t.read_version(va)?, t.read_version(vb)?);
    let d = rowdiff::diff(&old, &new, db.config().delimiter_byte());
    match a.format {
        DiffFormat::Text => print_text(&d, va, vb)?,
        DiffFormat::Csv => print_csv(&d)?,
    }
    Ok(exit::OK)
}

pub(super) fn print_text(d: &RowDiff, va: u64, vb: u64) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if d.is_empty() {
        writeln!(out, "versions {va} and {vb} hold the same rows")?;
        return Ok(());
    }
    for c in &d.columns_added {
        writeln!(out, "+ column {c}")?;
    }
    for c in &d.columns_removed {
        writeln!(out, "- column {c}")?;
    }
    for r in &d.removed {
        writeln!(out, "- {}", r.join(" | "))?;
    }
    for r in &d.added {
        writeln!(out, "+ {}", r.join(" | "))?;
    }
    for r in &d.changed {
        for (col, old, new) in &r.cells {
            writeln!(
                out,
                "~ {}={}: {col}: {old:?} -> {new:?}",
                d.key_column, r.key
            )?;
        }
    }
    writeln!(
        out,
        "{} added, {} removed, {} changed rows ({} cells)",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.changed.iter().map(|r| r.cells.len()).sum::<usize>()
    )?;
    Ok(())
}

fn print_csv(d: &RowDiff) -> Result<()> {
    let mut rows = Vec::new();
    for r in &d.added {
        rows.push(vec![
            "added".into(),
            r[0].clone(),
            String::new(),
            String::new(),
            r.join("|"),
        ]);
    }
    for r in &d.removed {
        rows.push(vec![
            "removed".into(),
            r[0].clone(),
            String::new(),
            r.join("|"),
            String::new(),
        ]);
    }
    for r in &d.changed {
        for (col, old, new) in &r.cells {
            rows.push(vec![
                "changed".into(),
                r.key.clone(),
                col.clone(),
                old.clone(),
                new.clone(),
            ]);
        }
    }
    print_rows(
        Format::Csv,
        &["change", "key", "column", "old", "new"],
        &rows,
    )
}

pub fn rollback(ctx: &Ctx, db_name: &str, table: &str, v: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let t = db.table(table)?;
    let seq = resolve_version(&t, v)?;
    let bytes = t.read_version(seq)?;
    let c = t.commit(
        Base::Head,
        bytes,
        &CommitOptions::new(Action::Rollback, &ctx.user),
    )?;
    if c.created {
        eprintln!(
            "{table}: version {} now equals version {seq}",
            c.version.seq
        );
    } else {
        eprintln!("{table}: the head already equals version {seq}; nothing to do");
    }
    Ok(exit::OK)
}

/// `row:history`: every change of one row, one line per changed cell.
pub fn row_history(
    ctx: &Ctx,
    db: &str,
    table: &str,
    key: &str,
    (since, until): (Option<&str>, Option<&str>),
    f: FormatArg,
) -> Result<i32> {
    let db = ctx.open(db)?;
    let t = db.table(table)?;
    let bound = |s: Option<&str>| s.map(super::frame::parse_when).transpose();
    let (since, until) = (bound(since)?, bound(until)?);
    let mut rows = Vec::new();
    for (v, change) in t.row_history(key)? {
        if since.is_some_and(|s| v.ts_us < s) || until.is_some_and(|u| v.ts_us > u) {
            continue;
        }
        let time = match f.format {
            Format::Table => format_ts_human(v.ts_us),
            _ => reedbase::storage::names::format_ts(v.ts_us),
        };
        rows.extend(change.history_lines(&v, &time));
    }
    if rows.is_empty() {
        eprintln!("{table}: no change of row {key:?}");
    }
    print_rows(f.format, &reedbase::storage::HISTORY_COLUMNS, &rows)?;
    Ok(exit::OK)
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangesFormat {
    /// A header, then a line per changed cell.
    Csv,
    /// A JSON object per changed row, one per line.
    Json,
}

/// How often `changes --follow` looks for new commits.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// `changes`: history after a point, then (with `follow`) every new commit.
pub fn changes(
    ctx: &Ctx,
    db_name: &str,
    tables: &[String],
    since: Option<&str>,
    follow: bool,
    format: ChangesFormat,
) -> Result<i32> {
    use reedbase::storage::feed::{CSV_HEADER, Feed, FeedFormat};
    let db = ctx.open(db_name)?;
    let mut feed = match since {
        // After a version (by its name: the feed's order), or from a time.
        Some(s) if s.contains("Z-") => {
            Feed::since(&db, tables, super::frame::parse_when(s)?, Some(s))?
        }
        Some(s) => Feed::since(&db, tables, super::frame::parse_when(s)?, None)?,
        None => Feed::from_now(&db, tables)?,
    };
    let format = match format {
        ChangesFormat::Csv => FeedFormat::Csv,
        ChangesFormat::Json => FeedFormat::Json,
    };
    let mut out = std::io::stdout().lock();
    let written = (|| -> std::io::Result<()> {
        if format == FeedFormat::Csv {
            out.write_all(CSV_HEADER.as_bytes())?;
        }
        Ok(())
    })();
    let mut result = written.map_err(anyhow::Error::from);
    while result.is_ok() {
        let lines = feed.poll(&db, format)?;
        if let Err(e) = out.write_all(&lines).and_then(|()| out.flush()) {
            result = Err(e.into());
        }
        if feed.behind() {
            continue; // more history to replay: no pause
        }
        if !follow || result.is_err() {
            break;
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
    match result {
        // A reader that went away (a closed pipe) ends the feed quietly.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(exit::OK)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(exit::OK),
    }
}
