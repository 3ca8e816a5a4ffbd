//! Retention and backups (docs/BENCHMARKS.md, "Retention and backups"): a
//! table with 10,000 versions of 1-row edits pruned down to its last 100
//! (time, bytes freed, the table's bytes before and after, the read of the
//! oldest kept version afterwards), then a full backup, an incremental one
//! after 10 more commits, and a restore; `cp -a` of the same directories
//! is the anchor for the backup and the restore.
//!
//!   cargo bench --bench retention                  # 10,000 versions of 10k rows
//!   cargo bench --bench retention -- --rows 100000
//!   cargo bench --bench retention -- --quick       # 1,000 versions

#[allow(dead_code)] // the helpers other benchmarks use
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::{Lcg, edit_one_row, generate, ms, status_kib};
use reedbase::storage::{Action, Base, CommitOptions, Database, Pins, RealIo, Retention};

/// (apparent bytes, allocated bytes, files) under `dir`.
fn du(dir: &Path) -> (u64, u64, u64) {
    let mut out = (0, 0, 0);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            let (a, b, c) = du(&e.path());
            out = (out.0 + a, out.1 + b, out.2 + c);
        } else {
            out = (out.0 + m.len(), out.1 + m.blocks() * 512, out.2 + 1);
        }
    }
    out
}

fn commits(db: &Database, n: usize, seed: u64) {
    let t = db.table("t").expect("table");
    let opts = CommitOptions::new(Action::Update, "bench");
    let mut content = t.head().expect("head").1.to_vec();
    let mut rng = Lcg(seed);
    for round in 0..n {
        content = edit_one_row(&content, &mut rng, round);
        t.commit(Base::Head, content.clone(), &opts)
            .expect("commit");
    }
}

fn cp_a(from: &Path, to: &Path) -> std::time::Duration {
    let started = Instant::now();
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp")
        .success();
    assert!(ok);
    started.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let rows: usize = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000);
    let versions = if quick { 1_000 } else { 10_000 };
    let keep = 100u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("db");
    let db = Database::init(Arc::new(RealIo), &root, "bench", '|').expect("init");
    db.create_table("t", &generate(rows), "bench")
        .expect("create");
    let started = Instant::now();
    commits(&db, versions - 1, 11);
    let history_time = started.elapsed();
    db.flush();
    let tdir = root.join("tables/t");
    let before = du(&tdir);

    let policy = Retention {
        versions: Some(keep),
        since_us: None,
    };
    let started = Instant::now();
    let pruned = db
        .prune(&[], policy, &Pins::new(), false, false)
        .expect("prune");
    let prune_time = started.elapsed();
    let r = &pruned[0].report;
    let after = du(&tdir);

    // The oldest kept version, from a fresh handle (cold caches).
    let fresh = Database::open(&root).expect("open");
    let t = fresh.table("t").expect("t");
    let started = Instant::now();
    t.read_version(r.oldest_after).expect("oldest kept");
    let oldest_read = started.elapsed();
    let started = Instant::now();
    let report = fresh.verify().expect("verify");
    let verify_time = started.elapsed();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // Backups of the pruned database, and the anchor.
    let bk = dir.path().join("bk");
    let started = Instant::now();
    let full = db.backup(&bk).expect("backup");
    let full_time = started.elapsed();
    commits(&db, 10, 12);
    db.flush();
    let started = Instant::now();
    let incr = db.backup(&bk).expect("incremental");
    let incr_time = started.elapsed();
    let started = Instant::now();
    reedbase::storage::backup::restore(&RealIo, &bk, &dir.path().join("restored"), "r")
        .expect("restore");
    let restored = Database::open(&dir.path().join("restored")).expect("open restored");
    let restore_time = started.elapsed();
    let started = Instant::now();
    let ok = restored.verify().expect("verify").problems.is_empty();
    let restore_verify = started.elapsed();
    assert!(ok);
    let cp_backup = cp_a(&root, &dir.path().join("cp-copy"));
    let cp_restore = cp_a(&dir.path().join("cp-copy"), &dir.path().join("cp-back"));
    let kib = |b: u64| format!("{:.1} KiB", b as f64 / 1024.0);

    println!(
        "retention: {rows} rows, {versions} versions of 1-row edits (made in {}), pruned to the last {keep}",
        ms(history_time)
    );
    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| prune {versions} -> {keep} versions | {} |",
        ms(prune_time)
    );
    println!(
        "| bytes freed (deltas, keyframes, packs; row log) | {} in {} files; {} |",
        kib(r.bytes_freed),
        r.files,
        kib(r.row_log_freed)
    );
    println!(
        "| keyframe written for the floor | {} |",
        kib(r.keyframe_bytes)
    );
    println!(
        "| table directory before -> after (apparent) | {} -> {} ({} -> {} files) |",
        kib(before.0),
        kib(after.0),
        before.2,
        after.2
    );
    println!(
        "| table directory before -> after (allocated) | {} -> {} |",
        kib(before.1),
        kib(after.1)
    );
    println!(
        "| read the oldest kept version, fresh handle | {} |",
        ms(oldest_read)
    );
    println!("| full verify after the prune | {} |", ms(verify_time));
    println!(
        "| backup, full (cp -a of the database: {}) | {} ({} copied) |",
        ms(cp_backup),
        ms(full_time),
        kib(full.copied_bytes)
    );
    println!(
        "| backup, incremental after 10 commits | {} ({} in {} files copied) |",
        ms(incr_time),
        kib(incr.copied_bytes),
        incr.copied_files
    );
    println!(
        "| restore, objects checked (cp -a back: {}) | {} |",
        ms(cp_restore),
        ms(restore_time)
    );
    println!("| verify of the restored copy | {} |", ms(restore_verify));
    println!(
        "| process RSS / peak | {} / {} MiB |",
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024
    );
}
