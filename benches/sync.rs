//! Sync benchmarks (docs/BENCHMARKS.md, "Sync"), in process and through
//! the real `rdb` binary with rsync (locations on local paths; the wire
//! over SSH is `scripts/bench_sync.sh`).
//!
//! Run: `cargo bench --bench sync` (`-- --rows N`, `-- --versions N`).
//! - the record of a 1-row commit: its bytes;
//! - integration of 100 arriving 1-row commits on a table of `--rows`
//!   rows (default 100k);
//! - a round with nothing new against a peer that holds `--versions`
//!   versions of the table (default 10k), `rdb db:sync` wall time;
//! - `-- --setup DIR` only builds the database with its history at DIR
//!   (for scripts/bench_sync.sh) and exits.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{Lcg, edit_one_row, generate, ms, pct};
use reedbase::storage::{Action, Base, CommitOptions, Database, RealIo};
use reedbase::sync::Site;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A database at `root` with a `users` table of `rows` rows and
/// `versions` 1-row versions, each exported as a record.
fn build(root: &Path, rows: usize, versions: usize) -> Database {
    let db = Database::init(Arc::new(RealIo), root, "shop", '|').unwrap();
    db.create_table("users", &generate(rows), "bench").unwrap();
    // Synced from its first version on: every later commit is a record.
    Site::new(&db, "bench").integrate().unwrap();
    let t = db.table("users").unwrap();
    let mut rng = Lcg(7);
    let opts = CommitOptions::new(Action::Update, "bench");
    for i in 1..versions {
        let (seq, head) = t.head().unwrap();
        let next = edit_one_row(&head, &mut rng, i);
        t.commit(Base::Version(seq), next, &opts).unwrap();
    }
    Site::new(&db, "bench").integrate().unwrap();
    db
}

fn rdb(home: &Path, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_rdb"))
        .args(args)
        .env("REEDBASE_HOME", home)
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        o.status.success(),
        "rdb {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (took, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn dir_bytes(dir: &Path) -> (u64, usize) {
    let mut total = (0, 0);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                let (b, n) = dir_bytes(&p);
                total.0 += b;
                total.1 += n;
            } else if let Ok(m) = p.metadata() {
                total.0 += m.len();
                total.1 += 1;
            }
        }
    }
    total
}

fn main() {
    let rows: usize = arg("--rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let versions: usize = arg("--versions")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    if let Some(dir) = arg("--setup") {
        let db = build(Path::new(&dir), rows, versions);
        Site::new(&db, "bench").integrate().unwrap();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    println!("| what | figure |\n|---|---|");

    // The record of a 1-row commit, and integration of 100 of them at a
    // second location.
    let a = build(&tmp.path().join("a"), rows, 1);
    Site::new(&a, "bench").integrate().unwrap();
    let b = Database::init_location(
        Arc::new(RealIo),
        &tmp.path().join("b"),
        "shop",
        '|',
        &a.config().id,
    )
    .unwrap();
    let copy = |from: &Database, to: &Database| {
        let s = Command::new("rsync")
            .args(["-rt", "--ignore-existing"])
            .arg(format!("{}/", from.sync_dir().display()))
            .arg(format!("{}/", to.sync_dir().display()))
            .status()
            .unwrap();
        assert!(s.success());
    };
    copy(&a, &b);
    let start = Instant::now();
    Site::new(&b, "bench").integrate().unwrap();
    println!(
        "| first integration of a {rows}-row table (its snapshot record) | {} |",
        ms(start.elapsed())
    );
    let t = a.table("users").unwrap();
    let mut rng = Lcg(11);
    let opts = CommitOptions::new(Action::Update, "bench");
    let records = a.sync_dir().join("records");
    let (before, _) = dir_bytes(&records);
    for i in 0..100 {
        let (seq, head) = t.head().unwrap();
        t.commit(Base::Version(seq), edit_one_row(&head, &mut rng, i), &opts)
            .unwrap();
    }
    Site::new(&a, "bench").integrate().unwrap();
    let (after, _) = dir_bytes(&records);
    println!(
        "| record of a 1-row commit (mean of 100) | {} bytes |",
        (after - before) / 100
    );
    copy(&a, &b);
    let start = Instant::now();
    let r = Site::new(&b, "bench").integrate().unwrap();
    assert_eq!(r.tables[0].records, 100);
    println!(
        "| integrating 100 arriving 1-row commits, {rows}-row table | {} |",
        ms(start.elapsed())
    );
    assert_eq!(
        a.table("users").unwrap().head().unwrap().1,
        b.table("users").unwrap().head().unwrap().1
    );

    // A round with nothing new, through `rdb db:sync`, against a location
    // holding `versions` versions.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = home.join("databases").join("shop");
    let start = Instant::now();
    let big = build(&root, 10_000, versions);
    drop(big);
    let built = start.elapsed();
    rdb(&home, &["db:register", root.to_str().unwrap()]);
    let peer = tmp.path().join("peer");
    let (first, _) = rdb(
        &home,
        &[
            "location:add",
            "shop",
            "peer",
            peer.to_str().unwrap(),
            "--as",
            "main",
        ],
    );
    let (bytes, files) = dir_bytes(&root.join("sync").join("records"));
    println!(
        "| history of {versions} versions (10k rows): built in | {} ({files} records, {} KB) |",
        ms(built),
        bytes / 1024
    );
    println!(
        "| first sync of that history to a new location (local path) | {} |",
        ms(first)
    );
    let mut runs = Vec::new();
    for _ in 0..10 {
        runs.push(rdb(&home, &["db:sync", "shop"]).0);
    }
    println!(
        "| `rdb db:sync` with nothing new, {versions} versions, local path: p50 / p90 | {} / {} |",
        ms(pct(&mut runs, 0.5)),
        ms(pct(&mut runs, 0.9))
    );
}
