//! `version:prune`: bounding how much history a database keeps.

use anyhow::Result;
use reedbase::storage::names::now_us;
use reedbase::storage::{Database, Pins, Retention, keep_since_us};
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
    #[command(flatten)]
    pub format: FormatArg,
}

/// Every version something recorded in the database still needs: the bases
/// of unresolved conflicts and of staged frames, and what sync has not
/// exported yet.
fn pins(db: &Database) -> Result<Pins> {
    let mut pins = db.conflict_pins()?;
    let more = [
        super::frame::staged_frame_pins(db)?,
        Site::new(db, "").export_pins()?,
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
    let pruned = db.prune(&tables, policy, &pins(&db)?, a.dry_run)?;
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
