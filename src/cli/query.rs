//! `rdb db:query`: ReedQL without a mount.

use std::io::Write;

use anyhow::Result;

use super::{Ctx, exit, fail};
use reedbase::query::{Engine, ErrorKind, output};
use reedbase::storage::Database;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    Csv,
    Json,
    Table,
}

pub fn run(ctx: &Ctx, db: &str, sql: &str, format: QueryFormat) -> Result<i32> {
    let (root, _) = ctx.registry()?.resolve(db, &ctx.cwd)?;
    let db = Database::open(&root)?;
    let engine = Engine::new(&db);
    let result = engine.execute(sql, &ctx.user).map_err(|e| {
        let code = match e.kind {
            ErrorKind::Storage | ErrorKind::Runtime => exit::ERROR,
            _ => exit::QUERY,
        };
        fail(code, e.to_string())
    })?;
    let text = match format {
        QueryFormat::Csv => output::csv(&result, db.config().delimiter_byte()),
        QueryFormat::Json => output::json(&result),
        QueryFormat::Table => output::table(&result),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(exit::OK)
}
