//! What metrics cost (docs/BENCHMARKS.md, "Metrics"):
//! - a 1-row commit at 10k rows with recording on and off, drawn at random
//!   per commit so that drift (page cache, the disk) hits both alike;
//! - rendering `@metrics` with 100 tables' series, and a scrape of the
//!   `--metrics-listen` endpoint over loopback;
//! - the process's RSS before and after.
//!
//!   cargo bench --bench metrics [-- --quick]

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Lcg, edit_one_row, generate, ms, pct};
use reedbase::metrics::{self, Format};
use reedbase::storage::{Action, Base, CommitOptions, Database, RealIo};

fn rss_kib() -> u64 {
    common::status_kib("VmRSS:")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let blocks = if quick { 6 } else { 20 };
    let per_block = 100;
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    let rss0 = rss_kib();

    // 1. Commit overhead.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::init(Arc::new(RealIo), dir.path(), "bench", '|').expect("init");
    let mut content = generate(10_000);
    db.create_table("users", &content, "bench").expect("create");
    let t = db.table("users").expect("table");
    t.flush();
    let mut rng = Lcg(7);
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut round = 0;
    // Each commit draws on or off at random: drift and any periodic cost
    // of the store (packs sealed, keyframes) fall on both alike.
    let mut coin = Lcg(99);
    for _ in 0..blocks * 2 {
        for _ in 0..per_block {
            let recording = coin.next().is_multiple_of(2);
            metrics::global().set_enabled(recording);
            let next = edit_one_row(&content, &mut rng, round);
            round += 1;
            let start = Instant::now();
            t.commit(
                Base::Head,
                next.clone(),
                &CommitOptions::new(Action::Update, "bench"),
            )
            .expect("commit");
            let took = start.elapsed();
            if recording {
                on.push(took)
            } else {
                off.push(took)
            }
            content = next;
        }
    }
    metrics::global().set_enabled(true);
    let (p_on, p_off) = (pct(&mut on, 0.5), pct(&mut off, 0.5));
    let (p90_on, p90_off) = (pct(&mut on, 0.9), pct(&mut off, 0.9));
    // Means without the slowest 5% (fsync stalls dwarf what is measured).
    let trimmed = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        let keep = &v[..v.len() * 95 / 100];
        keep.iter().sum::<Duration>() / keep.len().max(1) as u32
    };
    let (m_on, m_off) = (trimmed(&mut on), trimmed(&mut off));
    let pct_of = |a: Duration, b: Duration| (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0;
    println!(
        "| 1-row commit at 10k rows, metrics on / off ({} / {} commits, on or off at random): p50 | {} / {} ({:+.2}%) | < 1% |",
        on.len(),
        off.len(),
        ms(p_on),
        ms(p_off),
        pct_of(p_on, p_off)
    );
    println!(
        "| ... p90 | {} / {} ({:+.2}%) | |",
        ms(p90_on),
        ms(p90_off),
        pct_of(p90_on, p90_off)
    );
    println!(
        "| ... mean of the fastest 95% | {} / {} ({:+.2}%) | |",
        ms(m_on),
        ms(m_off),
        pct_of(m_on, m_off)
    );
    // The recording itself, alone: what a commit adds (two lookups).
    let m = metrics::global();
    let n = 1_000_000;
    let start = Instant::now();
    for _ in 0..n {
        metrics::inc(&m.commits, &["bench", "users", "update"]);
        metrics::observe(
            &m.commit_seconds,
            &["bench", "users"],
            Duration::from_micros(900),
        );
    }
    println!(
        "| recording one commit (counter + histogram) | {:.0} ns | |",
        start.elapsed().as_nanos() as f64 / n as f64
    );

    // 2. @metrics with 100 tables.
    for i in 0..100 {
        let table = format!("t{i:03}");
        for action in ["update", "insert"] {
            metrics::inc(&m.commits, &["bench", &table, action]);
        }
        metrics::observe(
            &m.commit_seconds,
            &["bench", &table],
            Duration::from_millis(1),
        );
        metrics::inc(&m.saves, &["bench", &table, "committed"]);
        metrics::inc(&m.merge_conflicts, &["bench", &table]);
    }
    for op in [
        "lookup", "getattr", "open", "read", "write", "flush", "release", "rename",
    ] {
        metrics::observe(&m.fuse_seconds, &[op], Duration::from_micros(30));
    }
    let mut renders = Vec::new();
    let mut bytes = 0;
    for _ in 0..200 {
        let start = Instant::now();
        bytes = metrics::render(Some("bench"), Format::Text).len();
        renders.push(start.elapsed());
    }
    println!(
        "| `@metrics` render, 100 tables ({} KiB): p50 / p99 | {} / {} | < 5 ms |",
        bytes / 1024,
        ms(pct(&mut renders, 0.5)),
        ms(pct(&mut renders, 0.99))
    );
    let addr = metrics::serve_http("127.0.0.1:0".parse().expect("addr")).expect("listen");
    let mut scrapes = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut body = Vec::new();
        s.read_to_end(&mut body).expect("read");
        scrapes.push(start.elapsed());
        assert!(body.starts_with(b"HTTP/1.1 200"));
    }
    println!(
        "| scrape of `/metrics` over loopback, 100 tables: p50 / p99 | {} / {} | < 5 ms |",
        ms(pct(&mut scrapes, 0.5)),
        ms(pct(&mut scrapes, 0.99))
    );
    println!(
        "| RSS of this process: start / end | {} / {} MiB | |",
        rss0 / 1024,
        rss_kib() / 1024
    );
}
