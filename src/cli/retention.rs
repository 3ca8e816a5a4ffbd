//! `version:prune`, `backup`, `restore`: bounding how much history a
//! database keeps, and keeping a copy of it elsewhere.

use std::sync::Arc;

use anyhow::Result;
use reedbase::storage::names::now_us;
use reedbase::storage::{Database, Pins, RealIo, Retention, backup, keep_since_us};
use reedbase::sync::Site;

use super::output::{Format, FormatArg, human_bytes, print_rows};
use super::{Ctx, exit, fail};

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    pub db: String,
    /// Only this table (default: every table).
    pub table: Option<String>,
    /// Keep each table's last N versions.
    #[arg(long)]
    pub keep: Option<u64>,
    /// Keep what a reader of any time since T needs: a duration (`30d`, `12h`), or a
    /// time (RFC 3339, a date, a version name).
    #[arg(long)]
    pub keep_since: Option<String>,
    /// Say what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune to exactly what the policy allows, even where the keyframe that needs costs
    /// more space than it frees (by default such a table stops at an older keyframe, or is
    /// left as it is).
    #[arg(long)]
    pub exact: bool,
    #[command(flatten)]
    pub format: FormatArg,
}

/// Every version something recorded in the database still needs: the bases
/// of unresolved conflicts and of staged frames, what sync has not
/// exported yet, and what running mounts need.
fn pins(db: &Database) -> Result<Pins> {
    let mut pins = db.conflict_pins()?;
    let more = [
        super::frame::staged_frame_pins(db)?,
        Site::new(db, "").export_pins()?,
        db.mount_pins()?,
    ];
    for p in more {
        for (table, seqs) in p {
            pins.entry(table).or_default().extend(seqs);
        }
    }
    Ok(pins)
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    let db = ctx.open(&a.db)?;
    let now = now_us();
    let policy = if a.keep.is_some() || a.keep_since.is_some() {
        let since_us = match &a.keep_since {
            Some(t) => Some(keep_since_us(t, now).map_err(|e| fail(exit::USAGE, e))?),
            None => None,
        };
        if a.keep == Some(0) {
            return Err(fail(
                exit::USAGE,
                "--keep must be at least 1 (the head is always kept)",
            ));
        }
        Retention {
            versions: a.keep,
            since_us,
        }
    } else {
        Retention::from_config(&db, now)?
    };
    if policy.keeps_everything() {
        eprintln!(
            "nothing to prune: the retention policy keeps every version (set keep_versions or keep_since in config.toml, or pass --keep or --keep-since)"
        );
        return Ok(exit::OK);
    }
    let tables: Vec<String> = a.table.into_iter().collect();
    let pruned = db.prune(&tables, policy, &pins(&db)?, a.exact, a.dry_run)?;
    let human = a.format.format == Format::Table;
    let rows: Vec<Vec<String>> = pruned
        .iter()
        .map(|p| {
            let r = &p.report;
            let bytes = |n: u64| if human { human_bytes(n) } else { n.to_string() };
            vec![
                r.table.clone(),
                r.oldest_before.to_string(),
                r.oldest_after.to_string(),
                r.versions.to_string(),
                r.files.to_string(),
                bytes(r.bytes_freed + r.row_log_freed),
                bytes(r.keyframe_bytes),
                p.held_by.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_rows(
        a.format.format,
        &[
            "table",
            "oldest_before",
            "oldest_after",
            "versions_removed",
            "files_removed",
            "bytes_freed",
            "keyframe_bytes",
            "held_by",
        ],
        &rows,
    )?;
    let freed: u64 = pruned
        .iter()
        .map(|p| p.report.bytes_freed + p.report.row_log_freed)
        .sum();
    let written: u64 = pruned.iter().map(|p| p.report.keyframe_bytes).sum();
    eprintln!(
        "{} {} ({} of keyframes written){}",
        if a.dry_run { "would free" } else { "freed" },
        human_bytes(freed),
        human_bytes(written),
        if a.dry_run {
            "; nothing changed (--dry-run)"
        } else {
            ""
        }
    );
    Ok(exit::OK)
}

pub fn backup(ctx: &Ctx, db_name: &str, dir: &str) -> Result<i32> {
    let db = ctx.open(db_name)?;
    let dest = ctx.cwd.join(dir);
    if dest.starts_with(db.root()) {
        return Err(fail(
            exit::USAGE,
            "the backup directory must be outside the database",
        ));
    }
    let r = db.backup(&dest)?;
    let m = &r.manifest;
    let versions: u64 = m.tables.iter().map(|t| t.head_seq).sum();
    eprintln!(
        "backed up {}: {} tables, {versions} versions, {} in {} files; copied {} in {} files{}",
        m.db_name,
        m.tables.len(),
        human_bytes(r.bytes),
        m.files.len(),
        human_bytes(r.copied_bytes),
        r.copied_files,
        match r.removed_objects {
            0 => String::new(),
            n => format!("; removed {n} objects no longer needed"),
        }
    );
    Ok(exit::OK)
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// A directory `rdb backup` wrote.
    pub dir: String,
    /// The name of the restored database (a new one).
    pub db: String,
    /// Restore into ./.reedbase (a local database) instead of $REEDBASE_HOME.
    #[arg(long)]
    pub local: bool,
}

pub fn restore(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    let (root, mode) = super::db::new_root(ctx, &a.db, a.local)?;
    let src = ctx.cwd.join(&a.dir);
    let m = super::db::register_then(ctx, &a.db, &root, mode, || {
        Ok(backup::restore(&RealIo, &src, &root, &a.db)?)
    })?;
    let db = Database::open_with(Arc::new(RealIo), &root)?;
    let report = db.verify()?;
    for p in &report.problems {
        eprintln!("{}: {}", p.table, p.what);
    }
    let missing = backup::missing_heads(&db, &m)?;
    for p in &missing {
        eprintln!("{p}");
    }
    if !report.problems.is_empty() || !missing.is_empty() {
        eprintln!(
            "restored {:?} at {}, but verify found {} problem(s)",
            a.db,
            root.display(),
            report.problems.len() + missing.len()
        );
        return Ok(exit::DAMAGED);
    }
    eprintln!(
        "restored {:?} at {} from the backup of {} taken {}: {} tables, {} versions, every file checked (SHA-256), verify ok",
        a.db,
        root.display(),
        m.db_name,
        reedbase::storage::names::format_ts_human(m.time_us),
        m.tables.len(),
        report.versions
    );
    Ok(exit::OK)
}
