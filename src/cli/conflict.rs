//! `conflict:*` commands: refused merges, as data.

use std::io::Write;

use anyhow::Result;
use reedbase::merge::conflicts::{self, Resolution};
use reedbase::storage::names::format_ts_human;

use super::output::{FormatArg, print_rows};
use super::{Ctx, exit, fail};

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    pub db: String,
    pub id: String,
    /// Apply the refused write over the current head (its cells win).
    #[arg(long, conflicts_with_all = ["theirs", "file"])]
    pub ours: bool,
    /// Keep the head and drop the refused write.
    #[arg(long, conflicts_with = "file")]
    pub theirs: bool,
    /// Commit this file (a whole table) as the resolution.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
}

pub fn list(ctx: &Ctx, db: &str, f: FormatArg) -> Result<i32> {
    let db = ctx.open(db)?;
    let rows: Vec<Vec<String>> = conflicts::list(&db)?
        .into_iter()
        .map(|c| {
            vec![
                c.id,
                c.table,
                format_ts_human(c.ts_us),
                c.base.to_string(),
                c.head.to_string(),
                c.cells.to_string(),
            ]
        })
        .collect();
    print_rows(
        f.format,
        &["id", "table", "time", "base", "head", "cells"],
        &rows,
    )?;
    Ok(exit::OK)
}

pub fn show(ctx: &Ctx, db: &str, id: &str) -> Result<i32> {
    let db = ctx.open(db)?;
    std::io::stdout()
        .lock()
        .write_all(&conflicts::cells(&db, id)?)?;
    Ok(exit::OK)
}

pub fn resolve(ctx: &Ctx, a: ResolveArgs) -> Result<i32> {
    let db = ctx.open(&a.db)?;
    let how = match (a.ours, a.theirs, &a.file) {
        (true, _, _) => Resolution::Ours,
        (_, true, _) => Resolution::Theirs,
        (_, _, Some(f)) => Resolution::Content(
            std::fs::read(f)
                .map_err(|e| fail(exit::NOT_FOUND, format!("cannot read {}: {e}", f.display())))?,
        ),
        _ => {
            return Err(fail(
                exit::USAGE,
                "choose --ours, --theirs or --file <table.csv>",
            ));
        }
    };
    match conflicts::resolve(&db, &a.id, how, &ctx.user) {
        Ok(Some(c)) => eprintln!(
            "resolved {}: version {} of {}",
            a.id, c.version.seq, c.version.name
        ),
        Ok(None) => eprintln!("resolved {}: the head stays", a.id),
        Err(reedbase::merge::MergeError::Storage(e)) => return Err(e.into()),
        Err(e) => return Err(fail(exit::CONFLICT, e.to_string())),
    }
    Ok(exit::OK)
}
