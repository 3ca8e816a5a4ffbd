//! `rdb db:query` and `rdb query:*`: ReedQL and saved queries without a mount.

use std::io::Write;

use anyhow::Result;

use super::{Ctx, exit, fail};
use reedbase::query::{Engine, output};
use reedbase::storage::Database;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    Csv,
    Json,
    Table,
}

pub fn run(ctx: &Ctx, db: &str, sql: &str, format: QueryFormat) -> Result<i32> {
    run_sql(ctx, &ctx.open(db)?, sql, format, true)
}

/// Runs `sql` (a write too) on an opened database and prints its result.
pub fn run_on(ctx: &Ctx, db: &Database, sql: &str, format: QueryFormat) -> Result<i32> {
    run_sql(ctx, db, sql, format, true)
}

/// Runs `sql` (a write too when `writes`) and prints its result; CSV and
/// JSON stream to stdout as rows come.
fn run_sql(ctx: &Ctx, db: &Database, sql: &str, format: QueryFormat, writes: bool) -> Result<i32> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // A closed pipe (`rdb ... | head`) is an error here and exit 0 in
    // `exit_code`, like every other error's code.
    run_sql_to(ctx, db, sql, format, writes, &mut out)?;
    out.flush()?;
    Ok(exit::OK)
}

/// [`run_sql`] into `out`.
pub fn run_sql_to(
    ctx: &Ctx,
    db: &Database,
    sql: &str,
    format: QueryFormat,
    writes: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let engine = Engine::new(db);
    let streamed = match format {
        QueryFormat::Csv => output::Format::Csv(db.config().delimiter_byte()),
        QueryFormat::Json => output::Format::Json,
        // An aligned table needs every row for its widths.
        QueryFormat::Table => {
            let result = if writes {
                engine.execute(sql, &ctx.user)
            } else {
                engine.query(sql)
            };
            let text = output::table(&result?);
            out.write_all(text.as_bytes())?;
            return Ok(());
        }
    };
    if writes {
        engine.execute_to(sql, &ctx.user, streamed, out)?;
    } else {
        engine.query_to(sql, streamed, out)?;
    }
    Ok(())
}

/// The current text of saved query `name`, or a not-found error.
fn saved_text(db: &Database, name: &str) -> Result<String> {
    db.saved_query(name)?
        .and_then(|q| q.text)
        .ok_or_else(|| fail(exit::NOT_FOUND, format!("no saved query {name:?}")))
}

pub fn save(ctx: &Ctx, db: &str, name: &str, sql: Option<String>) -> Result<i32> {
    let db = ctx.open(db)?;
    let sql = match sql {
        Some(s) => s,
        None => String::from_utf8(super::table::read_input(std::path::Path::new("-"))?)
            .map_err(|_| fail(exit::INVALID, "the query is not UTF-8"))?,
    };
    Engine::new(&db).check(&sql)?;
    let saved = db.save_query(name, &sql)?;
    eprintln!("saved query {name} (version {})", saved.version);
    Ok(exit::OK)
}

pub fn list(ctx: &Ctx, db: &str) -> Result<i32> {
    let db = ctx.open(db)?;
    let mut out = std::io::stdout().lock();
    for name in db.saved_queries()? {
        writeln!(out, "{name}")?;
    }
    Ok(exit::OK)
}

pub fn show(ctx: &Ctx, db: &str, name: &str, history: bool) -> Result<i32> {
    let db = ctx.open(db)?;
    let mut out = std::io::stdout().lock();
    if !history {
        let text = saved_text(&db, name)?;
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        return Ok(exit::OK);
    }
    let versions = db.saved_query_history(name)?;
    if versions.is_empty() {
        return Err(fail(exit::NOT_FOUND, format!("no saved query {name:?}")));
    }
    for v in versions {
        let text = v.text.as_deref().unwrap_or("(deleted)");
        writeln!(
            out,
            "-- {} {}\n{}",
            v.version,
            reedbase::storage::names::format_ts_human(v.ts_us),
            text.trim_end()
        )?;
    }
    Ok(exit::OK)
}

pub fn run_saved(ctx: &Ctx, db: &str, name: &str, format: QueryFormat) -> Result<i32> {
    let db = ctx.open(db)?;
    let sql = saved_text(&db, name)?;
    run_sql(ctx, &db, &sql, format, false)
}

pub fn drop(ctx: &Ctx, db: &str, name: &str) -> Result<i32> {
    let db = ctx.open(db)?;
    let deleted = db.delete_query(name)?;
    eprintln!("deleted query {name} (version {})", deleted.version);
    Ok(exit::OK)
}

/// `rdb index:list`: what a daemon's engine wrote to `state/indexes`, plus
/// every table's key column (indexed at its first lookup).
pub fn index_list(ctx: &Ctx, db: &str, format: super::output::Format) -> Result<i32> {
    use reedbase::query::index::{IndexKind, IndexState};
    let db = ctx.open(db)?;
    let state = IndexState::try_load(&db)?.unwrap_or_default();
    // SAFETY: kill with signal 0 only checks that the process exists.
    let live = state.pid != 0 && unsafe { libc::kill(state.pid as i32, 0) } == 0;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for table in db.table_names()? {
        let columns = db.table(&table)?.columns()?;
        let Some(key) = columns.first() else {
            continue;
        };
        let mut listed: Vec<_> = state.index.iter().filter(|i| i.table == table).collect();
        if !listed.iter().any(|i| &i.column == key) {
            rows.push(vec![
                table.clone(),
                key.clone(),
                "key".into(),
                "0".into(),
                "built at the first lookup".into(),
                String::new(),
            ]);
        }
        listed.sort_by_key(|i| (i.kind != IndexKind::Key, i.column.clone()));
        for i in listed {
            let status = match (i.built, live) {
                (true, true) => format!("built ({})", i.version),
                (true, false) => "built when the mount last ran".into(),
                (false, _)
                    if i.kind == IndexKind::Auto && i.lookups < db.config().auto_index_after =>
                {
                    format!(
                        "not yet ({} of {} lookups)",
                        i.lookups,
                        db.config().auto_index_after
                    )
                }
                (false, _) => "built at the next lookup".into(),
            };
            let memory = if i.built {
                format!("{} KiB", i.bytes.div_ceil(1024))
            } else {
                String::new()
            };
            rows.push(vec![
                i.table.clone(),
                i.column.clone(),
                match i.kind {
                    IndexKind::Key => "key".into(),
                    IndexKind::Unique => "unique".into(),
                    IndexKind::Auto => "auto".into(),
                },
                i.lookups.to_string(),
                status,
                memory,
            ]);
        }
    }
    super::output::print_rows(
        format,
        &["table", "column", "kind", "lookups", "state", "memory"],
        &rows,
    )?;
    Ok(exit::OK)
}
