//! Storage benchmarks against the targets of design.md section 9.
//!
//! Run: `cargo bench --bench storage` (add `-- --quick` for a short run).
//! Tables come from `scripts/gen_table.py` (realistic users rows, ~85 B each).
//! Prints one Markdown table; docs/BENCHMARKS.md records the latest figures.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{Lcg, edit_one_row, generate, ms, pct};
use reedbase::storage::{Action, Base, CommitOptions, Database, RealIo};

fn dir_bytes(dir: &Path, filter: impl Fn(&str) -> bool) -> u64 {
    dir_sum(dir, filter, |m| m.len())
}

/// Bytes the file system allocated (st_blocks * 512).
fn dir_allocated(dir: &Path, filter: impl Fn(&str) -> bool) -> u64 {
    use std::os::unix::fs::MetadataExt;
    dir_sum(dir, filter, |m| m.blocks() * 512)
}

fn dir_sum(
    dir: &Path,
    filter: impl Fn(&str) -> bool,
    size: impl Fn(&std::fs::Metadata) -> u64,
) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| filter(&e.file_name().to_string_lossy()))
                .filter_map(|e| e.metadata().ok())
                .map(|m| size(&m))
                .sum()
        })
        .unwrap_or(0)
}

/// Loose deltas and packs (whose index adds ~60 B a version).
fn is_delta(n: &str) -> bool {
    n.contains(".bsdiff") || n.ends_with(".pack")
}

struct Run {
    commit: Vec<Duration>,
    delta_bytes: f64,
    store_bytes: f64,
    allocated_bytes: f64,
}

/// Creates a table of `rows` rows and commits `n` one-row edits.
fn commit_run(root: &Path, rows: usize, n: usize) -> (Database, Run) {
    let db = Database::init(Arc::new(RealIo), root, "bench", '|').expect("init");
    let base = generate(rows);
    db.create_table("users", &base, "bench").expect("create");
    let t = db.table("users").expect("table");
    // current.csv (and its temp file) written, so neither counts.
    t.flush();
    let tdir = root.join("tables/users");
    let not_head = |n: &str| !n.contains("current.csv") && n != "lock";
    let (d0, s0, a0) = (
        dir_bytes(&tdir, is_delta),
        dir_bytes(&tdir, not_head),
        dir_allocated(&tdir, not_head),
    );
    let mut rng = Lcg(42);
    let mut content = base;
    let mut times = Vec::with_capacity(n);
    for round in 0..n {
        let next = edit_one_row(&content, &mut rng, round);
        let start = Instant::now();
        let c = t
            .commit(
                Base::Head,
                next.clone(),
                &CommitOptions::new(Action::Update, "bench"),
            )
            .expect("commit");
        times.push(start.elapsed());
        assert!(c.created);
        content = next;
    }
    t.flush();
    let (d1, s1, a1) = (
        dir_bytes(&tdir, is_delta),
        dir_bytes(&tdir, not_head),
        dir_allocated(&tdir, not_head),
    );
    let run = Run {
        commit: times,
        delta_bytes: d1.saturating_sub(d0) as f64 / n as f64,
        store_bytes: s1.saturating_sub(s0) as f64 / n as f64,
        allocated_bytes: a1.saturating_sub(a0) as f64 / n as f64,
    };
    (db, run)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n10k, n100k, nversions) = if quick {
        (100, 30, 200)
    } else {
        (1000, 200, 1000)
    };
    println!("| measurement | result | target |");
    println!("|---|---|---|");

    let dir = tempfile::tempdir().expect("tempdir");
    // For profiling one part: --only-commits <rows>, --only-merge.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--only-merge") {
        merge_bench();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--only-query") {
        // --only-query DIR SQL: time a ReedQL query in-process (tables parsed
        // once; each run a distinct no-op constant so the result cache misses).
        let root = Path::new(args.get(i + 1).expect("--only-query DIR SQL"));
        let sql = args.get(i + 2).expect("--only-query DIR SQL");
        let db = Database::open(root).expect("open");
        let cache = reedbase::query::TableCache::default();
        let engine = reedbase::query::Engine::with_cache(&db, &cache);
        // Rendered as CSV, as the mount serves it (into a sink, not a file).
        let csv = reedbase::query::output::Format::Csv(db.config().delimiter_byte());
        let run = |q: &str| {
            engine
                .query_to(q, csv, &mut std::io::sink())
                .expect("query")
        };
        run(&sql.replace("{n}", "0"));
        let mut times = Vec::new();
        for n in 1..=30 {
            let q = sql.replace("{n}", &n.to_string());
            let start = Instant::now();
            run(&q);
            times.push(start.elapsed());
        }
        println!("| {sql} | {} | |", ms(pct(&mut times, 0.5)));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--only-query-after-commit") {
        // --only-query-after-commit DIR: a query's cost right after a commit
        // that changes one row of `users` (the new version must be typed
        // before the query runs), against parsing the version whole.
        let root = Path::new(args.get(i + 1).expect("--only-query-after-commit DIR"));
        let db = Database::open(root).expect("open");
        let cache = reedbase::query::TableCache::default();
        let engine = reedbase::query::Engine::with_cache(&db, &cache);
        let sql = "SELECT COUNT(*) FROM users WHERE age > {n}";
        engine.query(&sql.replace("{n}", "0")).expect("query");
        let t = db.table("users").expect("users");
        let delim = db.config().delimiter_byte();
        let (mut after, mut whole) = (Vec::new(), Vec::new());
        for n in 1..=20 {
            let (_, head) = t.head().expect("head");
            // Change row n's age field (the 4th) to a fresh number.
            let text = String::from_utf8_lossy(&head).into_owned();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            // A plain record (no quotes) near row n * 997.
            let at = (n * 997..lines.len())
                .find(|&l| !lines[l].contains('"') && lines[l].split('|').count() == 10)
                .expect("a plain record");
            let mut fields: Vec<String> = lines[at].split('|').map(str::to_string).collect();
            fields[3] = (20 + n).to_string();
            lines[at] = fields.join("|");
            let content = lines.join("\n") + "\n";
            t.commit(
                reedbase::storage::Base::Head,
                content.into_bytes(),
                &reedbase::storage::CommitOptions::new(reedbase::storage::Action::Update, "bench"),
            )
            .expect("commit");
            let start = Instant::now();
            engine
                .query(&sql.replace("{n}", &n.to_string()))
                .expect("query");
            after.push(start.elapsed());
            let (_, head) = t.head().expect("head");
            let start = Instant::now();
            reedbase::query::TypedTable::parse(&head, delim).expect("parse");
            whole.push(start.elapsed());
        }
        println!(
            "| first query after a 1-row commit, p50 | {} | parsing the version whole: {} |",
            ms(pct(&mut after, 0.5)),
            ms(pct(&mut whole, 0.5))
        );
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--only-cold-reads") {
        // Cold @as-of reads of a database kept by `--only-frames --keep DIR` (for profiling).
        let root = Path::new(args.get(i + 1).expect("--only-cold-reads DIR"));
        let times = std::fs::read_to_string(root.join("frame-times.txt")).expect("frame times");
        let times: Vec<u64> = times.lines().filter_map(|l| l.parse().ok()).collect();
        let mut cold = Vec::new();
        for ts in times.iter().step_by(10) {
            let db = Database::open(root).expect("open");
            let t = db.table("users").expect("table");
            let start = Instant::now();
            t.read_version(t.seq_at(*ts).expect("seq_at"))
                .expect("read");
            cold.push(start.elapsed());
        }
        println!(
            "| cold @as-of reads, p50 over {} | {} | |",
            cold.len(),
            ms(pct(&mut cold, 0.5))
        );
        return;
    }
    if args.iter().any(|a| a == "--only-frames") {
        // --keep DIR: build the database there and leave it (for scripts/bench_frames.sh).
        let keep = args
            .iter()
            .position(|a| a == "--keep")
            .and_then(|i| args.get(i + 1));
        frame_bench_in(if quick { 200 } else { 1000 }, keep.map(Path::new));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--only-commits") {
        let rows: usize = args
            .get(i + 1)
            .and_then(|r| r.parse().ok())
            .unwrap_or(10_000);
        let (_, mut run) = commit_run(&dir.path().join("only"), rows, n10k);
        println!(
            "| commit, {rows} rows, p50 | {} | |",
            ms(pct(&mut run.commit, 0.5))
        );
        return;
    }
    let (db, mut run) = commit_run(&dir.path().join("a"), 10_000, n10k);
    let size = db
        .table("users")
        .and_then(|t| t.head())
        .map(|(_, h)| h.len())
        .unwrap_or(0);
    println!(
        "| commit, 1-row change, 10k rows ({} KB), p50 / p90 / p99 over {n10k} | {} / {} / {} | <= 2 ms p50 |",
        size / 1000,
        ms(pct(&mut run.commit, 0.5)),
        ms(pct(&mut run.commit, 0.9)),
        ms(pct(&mut run.commit, 0.99))
    );
    println!(
        "| delta bytes per 1-row update (10k rows; loose and packed, pack index included) | {:.0} B | <= 300 B |",
        run.delta_bytes
    );
    println!(
        "| all bytes stored per 1-row update (delta + log line + keyframes amortised) | {:.0} B | |",
        run.store_bytes
    );
    println!(
        "| allocated bytes (st_blocks * 512) per 1-row update, keyframes included | {:.0} B | <= 600 B |",
        run.allocated_bytes
    );

    // Reads: the table above has n10k + 1 versions. Cold: a fresh handle
    // (no decoded deltas cached; the OS page cache is warm). Warm: the same
    // handle, after one read of every version filled its delta cache.
    let root = dir.path().join("a");
    let t = db.table("users").expect("table");
    let count = t.head_seq().expect("seq");
    let mut rng = Lcg(9);
    let picks: Vec<u64> = (0..100).map(|_| 1 + rng.next() % count).collect();
    let mut cold = Vec::new();
    for &v in &picks {
        let fresh = Database::open(&root).expect("open");
        let ft = fresh.table("users").expect("table");
        let start = Instant::now();
        let bytes = ft.read_version(v).expect("read");
        cold.push(start.elapsed());
        assert!(!bytes.is_empty());
    }
    for v in 1..=count {
        t.read_version(v).expect("read");
    }
    let mut warm = Vec::new();
    for &v in &picks {
        let start = Instant::now();
        let bytes = t.read_version(v).expect("read");
        warm.push(start.elapsed());
        assert!(!bytes.is_empty());
    }
    let max = |v: &[Duration]| *v.iter().max().unwrap_or(&Duration::ZERO);
    let (cmax, wmax) = (max(&cold), max(&warm));
    println!(
        "| read a random version, 10k rows, {count} versions, cold: p50 / max over {} | {} / {} | <= 5 ms |",
        cold.len(),
        ms(pct(&mut cold, 0.5)),
        ms(cmax)
    );
    println!(
        "| same, warm (decoded deltas cached): p50 / max | {} / {} | <= 5 ms |",
        ms(pct(&mut warm, 0.5)),
        ms(wmax)
    );
    let _ = nversions;
    drop(db);

    merge_bench();
    frame_bench(if quick { 200 } else { 1000 });
    let (db, mut run) = commit_run(&dir.path().join("b"), 100_000, n100k);
    let size = db
        .table("users")
        .and_then(|t| t.head())
        .map(|(_, h)| h.len())
        .unwrap_or(0);
    println!(
        "| commit, 1-row change, 100k rows ({} MB), p50 / p90 / p99 over {n100k} | {} / {} / {} | <= 10 ms p50 |",
        size / 1_000_000,
        ms(pct(&mut run.commit, 0.5)),
        ms(pct(&mut run.commit, 0.9)),
        ms(pct(&mut run.commit, 0.99))
    );
}

/// Three-way merge of 100 changed rows per side on a 100k-row table.
fn merge_bench() {
    let base = generate(100_000);
    let mut rng = Lcg(5);
    let mut ours = base.clone();
    let mut theirs = base.clone();
    for round in 0..100 {
        ours = edit_one_row(&ours, &mut rng, round);
        theirs = edit_one_row(&theirs, &mut rng, round + 1);
    }
    let mut times = Vec::new();
    let mut conflicts = 0;
    for _ in 0..7 {
        let start = Instant::now();
        let m = reedbase::merge::merge3(
            &base,
            &ours,
            &theirs,
            b'|',
            reedbase::storage::ConflictPolicy::Reject,
        )
        .expect("merge");
        times.push(start.elapsed());
        conflicts = m.conflicts.len();
    }
    println!(
        "| merge, 100 changed rows per side, 100k rows, median of 7 ({conflicts} conflicts) | {} | <= 20 ms |",
        ms(pct(&mut times, 0.5))
    );
    // The whole merging commit: base rebuilt from the head, merge, commit
    // with fsync. Each run on a fresh table whose head is theirs.
    let mut commits = Vec::new();
    for run in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::init(Arc::new(RealIo), dir.path(), "bench", '|').expect("init");
        db.create_table("users", &base, "bench").expect("create");
        let t = db.table("users").expect("table");
        let opts = CommitOptions::new(Action::Update, "bench");
        t.commit(Base::Head, theirs.clone(), &opts).expect("theirs");
        let start = Instant::now();
        let out = reedbase::merge::commit_merging(
            &t,
            1,
            ours.clone(),
            &opts,
            reedbase::storage::ConflictPolicy::LastWriterWins,
            b'|',
        )
        .expect("merging commit");
        commits.push(start.elapsed());
        assert!(
            matches!(out, reedbase::merge::Outcome::Merged { .. }),
            "run {run}"
        );
        t.flush();
    }
    println!(
        "| merging commit (rebuild base, merge, commit), same edits, median of 5 | {} | - |",
        ms(pct(&mut commits, 0.5))
    );
}

/// Frames: the cost of a 3-table frame over three single commits, and
/// `@as-of` reads (every table at a time) in a database of many frames.
fn frame_bench(frames: usize) {
    frame_bench_in(frames, None);
}

fn frame_bench_in(frames: usize, keep: Option<&Path>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = keep.unwrap_or(tmp.path());
    let db = Database::init(Arc::new(RealIo), root, "bench", '|').expect("init");
    // REEDBASE_KEYFRAME_EVERY=<n>: measure another keyframe interval.
    let db = match std::env::var("REEDBASE_KEYFRAME_EVERY")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) => {
            drop(db);
            Database::update_config(root, |c| {
                c.keyframe_every = n;
                Ok(())
            })
            .expect("config");
            Database::open(root).expect("reopen")
        }
        None => db,
    };
    let tables = ["users", "accounts", "ledger"];
    let base = generate(10_000);
    for t in tables {
        db.create_table(t, &base, "bench").expect("create");
    }
    let opts = CommitOptions::new(Action::Update, "bench");
    let mut rng = Lcg(11);
    let mut content: Vec<Vec<u8>> = vec![base; 3];
    let (mut singles, mut framed) = (Vec::new(), Vec::new());
    let mut times = Vec::with_capacity(frames);
    for round in 0..frames + 100 {
        // First alternate three single commits with one frame of the same
        // edits (for the overhead), then frames only.
        let next: Vec<Vec<u8>> = content
            .iter()
            .map(|c| edit_one_row(c, &mut rng, round))
            .collect();
        let start = Instant::now();
        if round < 200 && round % 2 == 0 {
            for (t, c) in tables.iter().zip(&next) {
                db.table(t)
                    .expect("table")
                    .commit(Base::Head, c.clone(), &opts)
                    .expect("commit");
            }
            singles.push(start.elapsed());
        } else {
            let mut f = reedbase::storage::Frame::begin("bench").expect("begin");
            for (t, c) in tables.iter().zip(&next) {
                f.stage(t, Base::Head, c.clone()).expect("stage");
            }
            let done = db.commit_frame(f, "bench").expect("frame");
            framed.push(start.elapsed());
            times.push(done.ts_us);
        }
        content = next;
    }
    let (s50, f50) = (pct(&mut singles, 0.5), pct(&mut framed[..100], 0.5));
    println!(
        "| 3-table frame commit (10k rows each) vs three single commits, p50 over 100 each | {} vs {} (overhead {:+.2} ms) | overhead <= 1 ms |",
        ms(f50),
        ms(s50),
        (f50.as_secs_f64() - s50.as_secs_f64()) * 1e3
    );
    // @as-of: every table at a random frame's time, as the mount serves it
    // (seq_at + read_version); cold = fresh handles.
    db.flush();
    let mut pick = Lcg(13);
    let at: Vec<u64> = (0..50)
        .map(|_| times[(pick.next() as usize) % times.len()])
        .collect();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for &ts in &at {
        let fresh = Database::open(root).expect("open");
        let t = fresh.table("users").expect("table");
        let start = Instant::now();
        let bytes = t.read_version(t.seq_at(ts).expect("seq_at")).expect("read");
        cold.push(start.elapsed());
        assert!(!bytes.is_empty());
    }
    let t = db.table("users").expect("table");
    for &ts in &at {
        t.read_version(t.seq_at(ts).expect("seq_at")).expect("read");
    }
    for &ts in &at {
        let start = Instant::now();
        let bytes = t.read_version(t.seq_at(ts).expect("seq_at")).expect("read");
        warm.push(start.elapsed());
        assert!(!bytes.is_empty());
    }
    let versions = t.head_seq().expect("seq");
    println!(
        "| @as-of read of a 10k-row table, {} frames ({versions} versions): cold p50 / max, warm p50 | {} / {} / {} | <= 5 ms |",
        times.len(),
        ms(pct(&mut cold, 0.5)),
        ms(*cold.iter().max().unwrap_or(&Duration::ZERO)),
        ms(pct(&mut warm, 0.5))
    );
    if let Some(dir) = keep {
        // The frame times, one per line, for reading @as-of through a mount.
        let list: String = times.iter().map(|t| format!("{t}\n")).collect();
        std::fs::write(dir.join("frame-times.txt"), list).expect("write frame times");
    }
}
