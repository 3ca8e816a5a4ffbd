//! Row history (docs/BENCHMARKS.md, "Row history"): the history of one row
//! over many versions of a 100k-row table, cold and warm, and what the row
//! log costs a 1-row commit (the same commits in a child process with
//! `REEDBASE_ROW_LOG=off`).
//!
//!   cargo bench --bench history              # 10,000 versions (~4 min)
//!   cargo bench --bench history -- --quick   # 1,000

#[allow(dead_code)] // the helpers other benchmarks use
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Lcg, ms, pct, status_kib};
use reedbase::storage::{Action, Base, CommitOptions, Database, RealIo};

const ROWS: usize = 100_000;
/// The row whose history is asked for: changed by every 100th commit.
const TRACKED: usize = 42;

fn table() -> Vec<u8> {
    let mut s = String::from("id|name|qty|city\n");
    for i in 1..=ROWS {
        s.push_str(&format!("{i}|item{i}|{}|Berlin\n", i % 100));
    }
    s.into_bytes()
}

/// Sets row `key`'s qty to `value` (rows are in key order, one line each).
fn set_qty(content: &[u8], key: usize, value: usize) -> Vec<u8> {
    let start = content
        .windows(key.to_string().len() + 2)
        .position(|w| w == format!("\n{key}|").as_bytes())
        .expect("row")
        + 1;
    let end = start
        + content[start..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("end");
    let mut out = content[..start].to_vec();
    out.extend_from_slice(format!("{key}|item{key}|{value}|Berlin").as_bytes());
    out.extend_from_slice(&content[end..]);
    out
}

/// Makes `versions` 1-row commits; returns the commit times.
fn commits(db: &Database, versions: usize) -> Vec<Duration> {
    let t = db.table("t").expect("table");
    let opts = CommitOptions::new(Action::Update, "bench");
    let mut content = t.head().expect("head").1.to_vec();
    let mut rng = Lcg(5);
    let mut times = Vec::with_capacity(versions);
    for round in 1..versions {
        let key = if round % 100 == 0 {
            TRACKED
        } else {
            1 + (rng.next() as usize % ROWS)
        };
        content = set_qty(&content, key, 1000 + round);
        let started = Instant::now();
        t.commit(Base::Head, content.clone(), &opts)
            .expect("commit");
        times.push(started.elapsed());
    }
    times
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let versions = if quick { 1_000 } else { 10_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::init(Arc::new(RealIo), dir.path(), "bench", '|').expect("init");
    db.create_table("t", &table(), "bench").expect("create");
    if args.iter().any(|a| a == "--child") {
        // One measurement of the commits alone, for the parent.
        let mut times = commits(&db, versions.min(2_000));
        println!("{}", pct(&mut times, 0.5).as_nanos());
        return;
    }
    let with_log = commits(&db, versions);
    let t = db.table("t").expect("table");
    let started = Instant::now();
    let cold = t.row_history(&TRACKED.to_string()).expect("history");
    let cold_time = started.elapsed();
    let mut warm = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let h = t.row_history(&TRACKED.to_string()).expect("history");
        warm.push(started.elapsed());
        assert_eq!(h.len(), cold.len());
    }
    let log_bytes = std::fs::metadata(dir.path().join("tables/t/rows.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    // The same commits without the row log, in a child process.
    let exe = std::env::current_exe().expect("exe");
    let mut child_args = vec!["--child".to_string()];
    if quick {
        child_args.push("--quick".into());
    }
    let without = std::process::Command::new(&exe)
        .args(&child_args)
        .env("REEDBASE_ROW_LOG", "off")
        .output()
        .expect("child");
    let without_ns: u64 = String::from_utf8_lossy(&without.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let n = with_log.len().min(2_000);
    let with_p50 = pct(&mut with_log[..n].to_vec(), 0.5);
    let without_p50 = Duration::from_nanos(without_ns);
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!(
        "| history of one row ({} changes) over {versions} versions of a {ROWS}-row table, warm p50 of 20 | {} | <= 20 ms |",
        cold.len(),
        ms(pct(&mut warm, 0.5))
    );
    println!("| ... the first call | {} | |", ms(cold_time));
    println!(
        "| 1-row commit at {ROWS} rows, p50 of the first {n}: row log on / off | {} / {} ({:+.1}%) | < 10% |",
        ms(with_p50),
        ms(without_p50),
        (with_p50.as_secs_f64() / without_p50.as_secs_f64().max(1e-9) - 1.0) * 100.0
    );
    println!(
        "| rows.log after {versions} versions | {:.1} MiB | |",
        log_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "| process RSS / peak | {} / {} MiB | |",
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024
    );
}
