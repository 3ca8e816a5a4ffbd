//! Query benchmarks: what the first query after a small commit costs
//! (deriving the new parsed version, its indices, dropping the old one)
//! against the same query once the version is parsed.
//!
//! Run: `cargo bench --bench query` (add `-- --quick` for fewer rounds,
//! `-- --rows N` for one table size). Tables come from
//! `scripts/gen_table.py users N` (as in `benches/storage.rs`); queries run
//! in process through `Engine::with_cache` and `query_to` (the result
//! written as CSV), as the daemon runs them.
//! `-- --only TEXT` runs only issue 18's constructs whose name contains TEXT
//! (`--only ""` all four) over the unedited table.
//! Prints one Markdown table; docs/BENCHMARKS.md records the latest figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{Lcg, edit_one_row, generate, ms, pct};
use reedbase::query::output::Format;
use reedbase::query::{Engine, TableCache, TypedTable};
use reedbase::storage::{Action, Base, CommitOptions, Database, RealIo};

/// Issue 18's query shapes; `{k}` becomes a different constant each run (a
/// condition folded away), so the result cache does not answer them. The
/// same texts are in `scripts/bench_reedql_duckdb.py`.
const CONSTRUCTS: [(&str, &str); 4] = [
    (
        "window top-3 per city",
        "SELECT * FROM (SELECT id, city, score, ROW_NUMBER() OVER (PARTITION BY city \
         ORDER BY score DESC) AS rn FROM users WHERE {k} >= 0) WHERE rn <= 3",
    ),
    (
        "CTE + join + GROUP BY",
        "WITH c AS (SELECT country, AVG(score) AS avg_score FROM users WHERE {k} >= 0 \
         GROUP BY country) SELECT u.city, COUNT(*) AS above FROM users u JOIN c \
         ON u.country = c.country WHERE u.score > c.avg_score GROUP BY u.city",
    ),
    (
        "correlated EXISTS",
        "SELECT id, name FROM users u WHERE u.age >= 65 AND {k} >= 0 AND EXISTS \
         (SELECT 1 FROM users v WHERE v.city = u.city AND v.age < 20 AND v.score > 99.5)",
    ),
    (
        "UNION of two GROUP BYs",
        "SELECT country AS k, COUNT(*) AS n, AVG(score) AS s FROM users \
         WHERE active = 'true' AND {k} >= 0 GROUP BY country UNION \
         SELECT city, COUNT(*), AVG(score) FROM users WHERE age < 30 GROUP BY city",
    ),
];

/// Counts the lines written to it.
struct Lines(usize);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.iter().filter(|&&b| b == b'\n').count();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a query as the mount does (`Engine::query_to`, the result written
/// as CSV) into a counter: the number of result rows.
fn run_query(db: &Database, cache: &TableCache, sql: &str) -> usize {
    let mut out = Lines(0);
    Engine::with_cache(db, cache)
        .query_to(sql, Format::Csv(b'|'), &mut out)
        .expect("query");
    out.0.saturating_sub(1)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn bench(rows: usize, rounds: usize, only: Option<&str>) {
    let label = if rows >= 1_000_000 {
        format!("{}M", rows / 1_000_000)
    } else {
        format!("{}k", rows / 1000)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::init(Arc::new(RealIo), dir.path(), "bench", '|').expect("init");
    let mut content = generate(rows);
    db.create_table("users", &content, "bench").expect("create");
    let t = db.table("users").expect("table");
    let mut rng = Lcg(42);
    if let Some(only) = only {
        let runs = arg("--runs").and_then(|n| n.parse().ok()).unwrap_or(9);
        constructs_only(&db, only, runs);
        return;
    }

    // Parse, derive after a 1-row edit, scan (the typed table alone).
    let mut parse = Vec::new();
    let mut derive = Vec::new();
    let mut scan = Vec::new();
    let mut drop_old = Vec::new();
    let mut typed = TypedTable::parse(&content, b'|').expect("parse");
    for round in 0..rounds {
        let next = edit_one_row(&content, &mut rng, round);
        let next = std::sync::Arc::new(next);
        let (d, took) = timed(|| typed.derive(&next).expect("derives"));
        derive.push(took);
        let old = std::mem::replace(&mut typed, d);
        drop_old.push(timed(|| drop(old)).1);
        content = next.to_vec();
        let (n, took) = timed(|| {
            typed
                .rows()
                .filter(|r| matches!(r.get(3), Some(reedbase::query::Value::Int(a)) if a > 40))
                .count()
        });
        assert!(n > 0);
        scan.push(took);
    }
    for _ in 0..rounds.min(3) {
        parse.push(timed(|| TypedTable::parse(&content, b'|').expect("parse")).1);
    }
    drop(typed);

    // Through the engine: commit one row, then the first and second query.
    let cache = TableCache::default();
    let point = |k: usize| format!("SELECT * FROM users WHERE id = {}", 1 + k * 7919 % rows);
    let group = |k: usize| format!("SELECT country AS c{k}, COUNT(*) FROM users GROUP BY country");
    let query = |sql: &str| run_query(&db, &cache, sql);
    // The edits above as one commit first (each timed commit below is
    // then a 1-row change), then warm: the table parsed, its key index
    // built, the dictionary built.
    t.commit(
        Base::Head,
        content.clone(),
        &CommitOptions::new(Action::Update, "bench"),
    )
    .expect("commit");
    query(&point(0));
    query(&point(1));
    query(&group(0));
    let mut runs: [Vec<Duration>; 4] = Default::default();
    let mut q = 2;
    for round in 0..2 * rounds {
        let next = edit_one_row(&content, &mut rng, round + rounds);
        t.commit(
            Base::Head,
            next.clone(),
            &CommitOptions::new(Action::Update, "bench"),
        )
        .expect("commit");
        content = next;
        let sql: &dyn Fn(usize) -> String = if round % 2 == 0 { &point } else { &group };
        let slot = 2 * (round % 2);
        runs[slot].push(timed(|| query(&sql(q))).1);
        runs[slot + 1].push(timed(|| query(&sql(q + 1))).1);
        q += 2;
    }
    // Top-k over the parsed head: each query text differs (a constant
    // WHERE folded away), so the result cache does not answer it.
    let mut top = Vec::new();
    for k in 0..9 {
        let sql = format!("SELECT * FROM users WHERE {k} >= 0 ORDER BY score DESC LIMIT 10");
        top.push(timed(|| query(&sql)).1);
    }
    // Issue 18's constructs over the parsed head, warm, each run a distinct
    // query text; scripts/bench_reedql_duckdb.py runs the same queries.
    let mut constructs = Vec::new();
    for (name, shape) in CONSTRUCTS {
        query(&shape.replace("{k}", "1000"));
        let mut times = Vec::new();
        let mut n = 0;
        for k in 0..9 {
            let (len, took) = timed(|| query(&shape.replace("{k}", &k.to_string())));
            n = len;
            times.push(took);
        }
        constructs.push((name, n, times));
    }
    let [p1, p2, g1, g2] = &mut runs;
    println!(
        "| {label} rows: parse whole, p50 | {} |",
        ms(pct(&mut parse, 0.5))
    );
    println!(
        "| {label} rows: derive after a 1-row edit, p50 / max | {} / {} |",
        ms(pct(&mut derive, 0.5)),
        ms(pct(&mut derive, 1.0))
    );
    println!(
        "| {label} rows: drop the old version, p50 | {} |",
        ms(pct(&mut drop_old, 0.5))
    );
    println!(
        "| {label} rows: scan `age > 40` over rows(), p50 | {} |",
        ms(pct(&mut scan, 0.5))
    );
    println!(
        "| {label} rows: point query by id, first after a 1-row commit / second, p50 | {} / {} |",
        ms(pct(p1, 0.5)),
        ms(pct(p2, 0.5))
    );
    println!(
        "| {label} rows: GROUP BY country, first after a 1-row commit / second, p50 | {} / {} |",
        ms(pct(g1, 0.5)),
        ms(pct(g2, 0.5))
    );
    println!(
        "| {label} rows: `ORDER BY score DESC LIMIT 10`, parsed, p50 | {} |",
        ms(pct(&mut top, 0.5))
    );
    for (name, n, mut times) in constructs {
        println!(
            "| {label} rows: {name} ({n} rows), parsed, p50 | {} |",
            ms(pct(&mut times, 0.5))
        );
    }
}

/// `--only TEXT`: the constructs whose name contains TEXT, run 9 times each
/// (`--runs N`: N times) over the generated table (no edits): the quick
/// loop for a profiler; `--sql QUERY` runs QUERY (`{k}` a number) instead.
fn constructs_only(db: &Database, only: &str, runs: usize) {
    let cache = TableCache::default();
    let query = |sql: &str| run_query(db, &cache, sql);
    // `--sql TEXT` (with `{k}`) runs that query instead.
    let own = arg("--sql").map(|sql| [("--sql", sql)]);
    let named = CONSTRUCTS
        .iter()
        .filter(|(name, _)| name.contains(only))
        .map(|(name, shape)| (*name, shape.to_string()));
    let queries: Vec<(&str, String)> = match own {
        Some(own) => own.into_iter().collect(),
        None => named.collect(),
    };
    for (name, shape) in queries {
        query(&shape.replace("{k}", "1000"));
        let mut times = Vec::new();
        let mut n = 0;
        for k in 0..runs {
            let (len, took) = timed(|| query(&shape.replace("{k}", &k.to_string())));
            n = len;
            times.push(took);
        }
        println!(
            "| {name} ({n} rows), parsed, p50 | {} |",
            ms(pct(&mut times, 0.5))
        );
    }
}

/// The value after `name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: Vec<usize> = match args.iter().position(|a| a == "--rows") {
        Some(i) => vec![
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .expect("--rows N"),
        ],
        None => vec![100_000, 1_000_000],
    };
    println!("| measurement | result |");
    println!("|---|---|");
    for rows in sizes {
        let rounds = match (quick, rows >= 1_000_000) {
            (true, true) => 5,
            (true, false) => 10,
            (false, true) => 15,
            (false, false) => 30,
        };
        bench(rows, rounds, arg("--only").as_deref());
    }
}
