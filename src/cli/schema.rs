//! `rdb schema:*`: a table's declared column types (`schema.toml`).

use std::io::Write;

use anyhow::Result;

use super::{Ctx, exit, fail};

pub fn show(ctx: &Ctx, db: &str, table: &str, history: bool) -> Result<i32> {
    let db = ctx.open(db)?;
    let mut out = std::io::stdout().lock();
    if history {
        for r in db.schema_history(table)? {
            let when = reedbase::storage::names::format_ts_human(r.ts_us);
            let text = r.text.as_deref().unwrap_or("# (removed)");
            writeln!(out, "# {} {when}\n{}", r.version, text.trim_end())?;
        }
        return Ok(exit::OK);
    }
    match db.schema_text(table)?.and_then(|r| r.text) {
        Some(text) => out.write_all(text.as_bytes())?,
        None => {
            return Err(fail(
                exit::NOT_FOUND,
                format!("table {table} has no schema.toml"),
            ));
        }
    }
    Ok(exit::OK)
}

/// Sets the schema from a file, or stdin when the file is `-` or absent.
pub fn set(ctx: &Ctx, db: &str, table: &str, file: Option<&str>) -> Result<i32> {
    let db = ctx.open(db)?;
    let text = String::from_utf8(super::table::read_input(std::path::Path::new(
        file.unwrap_or("-"),
    ))?)
    .map_err(|_| fail(exit::INVALID, "schema.toml is not UTF-8"))?;
    let rev = db.set_schema(table, Some(&text))?;
    eprintln!("schema of {table} set (version {})", rev.version);
    Ok(exit::OK)
}

pub fn drop(ctx: &Ctx, db: &str, table: &str) -> Result<i32> {
    let db = ctx.open(db)?;
    let rev = db.set_schema(table, None)?;
    eprintln!("schema of {table} removed (version {})", rev.version);
    Ok(exit::OK)
}
