//! `table:*` commands.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Result;
use reedbase::storage::{Action, Base, CommitOptions, StorageError};

use super::output::{FormatArg, human_bytes, print_rows};
use super::progress::Bar;
use super::version::resolve_version;
use super::{Ctx, exit, fail};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    pub db: String,
    pub table: String,
    /// Initial content: a CSV file with a header line ('-' for stdin).
    #[arg(long, conflicts_with = "columns")]
    pub from: Option<std::path::PathBuf>,
    /// Create an empty table with these columns (comma-separated; the first is the key).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    pub db: String,
    /// Include dropped tables.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub format: FormatArg,
}

pub(super) fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| cannot_read(path, e))
}

/// The user's file `path` could not be read: not found, or another error.
fn cannot_read(path: &Path, e: std::io::Error) -> anyhow::Error {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        exit::NOT_FOUND
    } else {
        exit::ERROR
    };
    fail(code, format!("cannot read {}: {e}", path.display()))
}

/// [`read_input`] for `table:create` and `table:import`: read into the one
/// buffer that is committed, with the progress bar.
fn read_input_shown(path: &Path, bar: &Bar) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        return Ok(bar.read_from(std::io::stdin().lock(), 0)?);
    }
    let cannot = |e: std::io::Error| cannot_read(path, e);
    let f = std::fs::File::open(path).map_err(cannot)?;
    let len = f.metadata().map_err(cannot)?.len();
    bar.read_from(f, len).map_err(cannot)
}

/// Lets `db` go at the end of a create or import: once `current.csv` is
/// written, its memory is left to the process's exit, which takes it back
/// at once; freeing a table index key by key took a fifth of a 1-row import
/// at 1M rows.
fn end_with(db: reedbase::storage::Database) {
    db.flush();
    std::mem::forget(db);
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let db = ctx.open(&a.db)?;
    let bar = Bar::new();
    let content = match (&a.from, a.columns.is_empty()) {
        (Some(p), _) => read_input_shown(p, &bar)?,
        (None, false) => {
            let d = db.config().delimiter.to_string();
            format!("{}\n", a.columns.join(&d)).into_bytes()
        }
        (None, true) => {
            return Err(fail(
                exit::USAGE,
                "give --from <file.csv> or --columns a,b,c",
            ));
        }
    };
    let c = db.create_table_with(&a.table, content, &ctx.user, Some(&bar))?;
    // The bar goes before the message.
    std::mem::drop(bar);
    end_with(db);
    eprintln!(
        "created table {} ({} rows, version {})",
        a.table, c.version.rows, c.version.seq
    );
    Ok(exit::OK)
}

pub fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let db = ctx.open(&a.db)?;
    let rows: Vec<Vec<String>> = db
        .summaries()?
        .into_iter()
        .filter(|t| a.all || !t.dropped)
        .map(|t| {
            let mut name = t.name;
            if t.dropped {
                name.push_str(" (dropped)");
            }
            vec![
                name,
                t.rows.to_string(),
                t.versions.to_string(),
                human_bytes(t.size),
            ]
        })
        .collect();
    print_rows(
        a.format.format,
        &["table", "rows", "versions", "size"],
        &rows,
    )?;
    Ok(exit::OK)
}

pub fn import(ctx: &Ctx, db_name: &str, table: &str, file: &Path) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let bar = Bar::new();
    let content = read_input_shown(file, &bar)?;
    let t = match db.table(table) {
        Ok(t) if !t.is_dropped()? => t,
        Ok(_) | Err(StorageError::NotFound { .. }) => {
            let c = db.create_table_with(table, content, &ctx.user, Some(&bar))?;
            std::mem::drop(bar);
            end_with(db);
            eprintln!(
                "created table {table} ({} rows, version {})",
                c.version.rows, c.version.seq
            );
            return Ok(exit::OK);
        }
        Err(e) => return Err(e.into()),
    };
    let c = t.commit(
        Base::Head,
        content,
        &CommitOptions::new(Action::Import, &ctx.user).with_progress(&bar),
    )?;
    std::mem::drop(bar);
    std::mem::forget(t);
    end_with(db);
    if c.created {
        eprintln!(
            "imported {table}: version {} ({} rows)",
            c.version.seq, c.version.rows
        );
    } else {
        eprintln!(
            "{table} unchanged: no new version (still version {})",
            c.version.seq
        );
    }
    Ok(exit::OK)
}

pub fn export(ctx: &Ctx, db_name: &str, table: &str, version: Option<&str>) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let t = db.table(table)?;
    let bytes = match version {
        Some(v) => t.read_version(resolve_version(&t, v)?)?,
        None => {
            if t.is_dropped()? {
                return Err(StorageError::NotFound {
                    kind: "table",
                    name: format!("{table} (dropped; use --version to export an older version)"),
                }
                .into());
            }
            t.head()?.1.as_ref().clone()
        }
    };
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(exit::OK)
}

pub fn drop(ctx: &Ctx, db_name: &str, table: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let c = db.drop_table(table, &ctx.user)?;
    eprintln!(
        "dropped {table} (version {}); `rdb table:restore {db_name} {table}` brings it back",
        c.version.seq
    );
    Ok(exit::OK)
}

pub fn restore(ctx: &Ctx, db_name: &str, table: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let c = db.restore_table(table, &ctx.user)?;
    eprintln!(
        "restored {table} (version {}, {} rows)",
        c.version.seq, c.version.rows
    );
    Ok(exit::OK)
}
