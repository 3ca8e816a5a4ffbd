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
        _ if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            return resolve_interactively(ctx, &a.db, &a.id);
        }
        _ => {
            return Err(fail(
                exit::USAGE,
                "choose --ours, --theirs or --file <table.csv> (or run on a terminal to choose cell by cell)",
            ));
        }
    };
    match conflicts::resolve(&db, &a.id, how, &ctx.user) {
        Ok(Some(c)) => eprintln!(
            "resolved {}: version {} of {}",
            a.id, c.version.seq, c.version.name
        ),
        Ok(None) => eprintln!("resolved {}: the head stays", a.id),
        // Its exit code is `exit_code`'s (a conflict 5, bad CSV 4).
        Err(e) => return Err(e.into()),
    }
    Ok(exit::OK)
}

/// Walks the conflicting cells on a terminal: keep ours, keep theirs, or type a value.
pub fn resolve_interactively(ctx: &Ctx, db_name: &str, id: &str) -> Result<i32> {
    use std::io::BufRead;
    let db = ctx.open(db_name)?;
    let info = conflicts::get(&db, id)?;
    let cells = conflicts::cell_list(&db, id)?;
    if cells.iter().any(|c| c.column.is_empty()) {
        return Err(fail(
            exit::USAGE,
            "this conflict has whole rows (deleted on one side, or inserted twice): resolve it with --ours, --theirs or --file",
        ));
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        match lines.next() {
            Some(l) => Ok(l?.trim_end().to_string()),
            None => Err(fail(
                exit::USAGE,
                "input ended before every cell was resolved; nothing changed",
            )),
        }
    };
    let mut values = std::collections::HashMap::new();
    for (n, c) in cells.iter().enumerate() {
        eprintln!(
            "\nconflict {} of {} in {}: key {:?}, column {:?}",
            n + 1,
            cells.len(),
            info.table,
            c.key,
            c.column
        );
        eprintln!("  base:   {:?}", c.base);
        eprintln!("  ours:   {:?}   (the refused write)", c.ours);
        eprintln!("  theirs: {:?}   (the head)", c.theirs);
        let value = loop {
            match ask("keep [o]urs, [t]heirs, or [e]nter a value? ")?.as_str() {
                "o" | "ours" => break c.ours.clone(),
                "t" | "theirs" => break c.theirs.clone(),
                "e" | "enter" => break ask("value: ")?,
                _ => eprintln!("type o, t or e"),
            }
        };
        values.insert((c.key.clone(), c.column.clone()), value);
    }
    match conflicts::resolve_cells(&db, id, &values, &ctx.user) {
        Ok(c) => eprintln!("resolved {id}: version {}", c.version.seq),
        Err(e) => return Err(e.into()),
    }
    Ok(exit::OK)
}
