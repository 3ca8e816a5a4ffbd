//! `rdb schema:*`: a table's `schema.toml` (declared types and rules), its
//! history, its differences, and migrations to a new one.

use std::io::Write;

use anyhow::Result;

use reedbase::query::Engine;
use reedbase::query::migrate::{self, MigrationRequest};
use reedbase::storage::{Base, Frame, Revision, Rules, StorageError, schema_change};

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

/// A schema's text from a file, or stdin for `-`.
fn read_schema(file: &str) -> Result<String> {
    let bytes = super::table::read_input(std::path::Path::new(file))?;
    String::from_utf8(bytes).map_err(|_| fail(exit::INVALID, "schema.toml is not UTF-8"))
}

/// Sets the schema from a file, or stdin when the file is `-` or absent.
pub fn set(ctx: &Ctx, db: &str, table: &str, file: Option<&str>) -> Result<i32> {
    let db = ctx.open(db)?;
    let text = read_schema(file.unwrap_or("-"))?;
    let rev = db.set_schema(table, Some(&text), &ctx.user)?;
    eprintln!("schema of {table} set (version {})", rev.version);
    Ok(exit::OK)
}

pub fn drop(ctx: &Ctx, db: &str, table: &str) -> Result<i32> {
    let db = ctx.open(db)?;
    let rev = db.set_schema(table, None, &ctx.user)?;
    eprintln!("schema of {table} removed (version {})", rev.version);
    Ok(exit::OK)
}

/// How often a migration is planned again when the table changed between
/// its plan and its commit.
const MIGRATE_ATTEMPTS: usize = 5;

/// `schema:migrate` (and `schema:set --migrate`): plans the new content,
/// then commits it with the schema as one frame.
pub fn migrate(
    ctx: &Ctx,
    db_name: &str,
    table: &str,
    to: &str,
    maps: &[String],
    drops: &[String],
    dry_run: bool,
) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let mut req = MigrationRequest {
        table: table.to_string(),
        schema: read_schema(to)?,
        drops: drops.to_vec(),
        maps: Vec::new(),
    };
    for m in maps {
        let Some((col, expr)) = m.split_once('=') else {
            return Err(fail(
                exit::USAGE,
                format!("--map {m:?}: write COLUMN=EXPRESSION"),
            ));
        };
        req.maps.push((col.trim().to_string(), expr.to_string()));
    }
    let engine = Engine::new(&db);
    for attempt in 1..=MIGRATE_ATTEMPTS {
        let plan = migrate::plan(&engine, &req)?;
        if dry_run {
            let mut out = std::io::stdout().lock();
            for s in &plan.steps {
                writeln!(out, "{s}")?;
            }
            db.table(table)?
                .check_against_schema(Some(&req.schema), &plan.content)
                .map_err(anyhow::Error::from)?;
            eprintln!("dry run: the migration would commit; nothing was changed");
            return Ok(exit::OK);
        }
        let mut frame = Frame::begin(&format!("migrate-{table}"))?;
        frame.stage(table, Base::Version(plan.base), plan.content)?;
        frame.stage_schema(table, Some(req.schema.clone()))?;
        match db.commit_frame(frame, &ctx.user) {
            Ok(done) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", done.id)?;
                for s in &plan.steps {
                    writeln!(out, "{s}")?;
                }
                let version = done.tables.first().map(|(_, c)| c.version.seq);
                eprintln!(
                    "migrated {table} in frame {} ({}){}; `rdb frame:rollback {db_name} {}` undoes it",
                    done.name,
                    done.id,
                    version.map_or(String::new(), |v| format!(", version {v}")),
                    &done.id[..8.min(done.id.len())]
                );
                return Ok(exit::OK);
            }
            Err(StorageError::BaseMismatch { .. }) if attempt < MIGRATE_ATTEMPTS => {
                eprintln!("{table} changed while the migration was planned: planning again");
            }
            Err(StorageError::BaseMismatch { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Err(fail(
        exit::CONFLICT,
        format!(
            "{table} changed during each of {MIGRATE_ATTEMPTS} attempts: the migration was not committed"
        ),
    ))
}

/// A schema version named by number (1 = oldest) or by a prefix of its name.
fn pick<'a>(history: &'a [Revision], given: &str) -> Result<&'a Revision> {
    if let Ok(n) = given.parse::<usize>()
        && n >= 1
        && n <= history.len()
    {
        return Ok(&history[n - 1]);
    }
    let found: Vec<&Revision> = history
        .iter()
        .filter(|r| r.version.starts_with(given))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(fail(
            exit::NOT_FOUND,
            format!("no schema version {given:?} (`rdb schema:show --history` lists them)"),
        )),
        _ => Err(fail(
            exit::NOT_FOUND,
            format!("{} schema versions start with {given:?}", found.len()),
        )),
    }
}

/// `schema:diff`: the differences between two schema versions.
pub fn diff(ctx: &Ctx, db: &str, table: &str, v1: &str, v2: Option<&str>) -> Result<i32> {
    let db = ctx.open(db)?;
    let history = db.schema_history(table)?;
    let (a, b) = match (pick(&history, v1)?, v2) {
        (a, Some(v2)) => (a, pick(&history, v2)?),
        (a, None) => match history.last() {
            Some(b) => (a, b),
            None => return Err(fail(exit::NOT_FOUND, format!("{table} has no schema"))),
        },
    };
    let rules = |r: &Revision| Rules::parse(r.text.as_deref().unwrap_or(""), table, None);
    let lines = schema_change::diff(&rules(a)?, &rules(b)?);
    let mut out = std::io::stdout().lock();
    writeln!(out, "--- {}", a.version)?;
    writeln!(out, "+++ {}", b.version)?;
    for l in &lines {
        writeln!(out, "{l}")?;
    }
    if lines.is_empty() {
        eprintln!("no differences");
    }
    Ok(exit::OK)
}

/// `schema:check`: the head's violations of the schema in force.
pub fn check(ctx: &Ctx, db: &str, table: &str, limit: usize) -> Result<i32> {
    let db = ctx.open(db)?;
    let found = db.violations(table, limit.saturating_add(1))?;
    let mut out = std::io::stdout().lock();
    for v in found.iter().take(limit) {
        writeln!(out, "{v}")?;
    }
    match found.len() {
        0 => {
            eprintln!("{table}: no row breaks its schema.toml");
            Ok(exit::OK)
        }
        n if n > limit => Err(fail(
            exit::INVALID,
            format!("{table}: more than {limit} violations (the first {limit} listed)"),
        )),
        n => Err(fail(exit::INVALID, format!("{table}: {n} violation(s)"))),
    }
}
