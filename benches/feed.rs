//! Change feed latency (docs/BENCHMARKS.md, "Change feed"): a save through
//! a real mount returns, then a follower of `<db>/@changes` reads its line.
//! Also the save's time with and without a follower reading. 10k-row table.
//!
//!   cargo bench --bench feed              # 300 saves per phase
//!   cargo bench --bench feed -- --quick   # 60

#[allow(dead_code)] // the helpers other benchmarks use
mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ms, pct};

const ROWS: usize = 10_000;

fn mounted(mp: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = mp.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&want))
}

fn table(round: usize) -> Vec<u8> {
    let mut s = String::from("id|name|qty\n");
    for i in 1..=ROWS {
        let qty = if i == 1 + round % ROWS {
            round
        } else {
            i % 100
        };
        s.push_str(&format!("{i}|item{i}|{qty}\n"));
    }
    s.into_bytes()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 60 } else { 300 };
    if !Path::new("/dev/fuse").exists() {
        println!("no /dev/fuse: skipped");
        return;
    }
    let rdb = env!("CARGO_BIN_EXE_rdb");
    let home = tempfile::tempdir().expect("home");
    let mp = tempfile::tempdir().expect("mountpoint");
    let run = |args: &[&str]| {
        let ok = Command::new(rdb)
            .args(args)
            .env("REEDBASE_HOME", home.path())
            .stderr(Stdio::null())
            .status()
            .expect("rdb")
            .success();
        assert!(ok, "rdb {args:?}");
    };
    run(&["db:init", "shop"]);
    let src = home.path().join("t.csv");
    std::fs::write(&src, table(0)).expect("write");
    run(&[
        "table:create",
        "shop",
        "t",
        "--from",
        &src.to_string_lossy(),
    ]);
    let mut daemon = Command::new(rdb)
        .args(["mount", "shop"])
        .arg(mp.path())
        .env("REEDBASE_HOME", home.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("mount");
    let start = Instant::now();
    while !mounted(mp.path()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mount did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let current = mp.path().join("t/current.csv");
    let save = |round: usize| -> Duration {
        let content = table(round);
        let started = Instant::now();
        std::fs::write(&current, &content).expect("save");
        started.elapsed()
    };
    // Saves without a follower.
    let mut alone: Vec<Duration> = (1..=n).map(save).collect();
    // A follower: each update line's arrival time.
    let (tx, rx) = mpsc::channel::<Instant>();
    let feed = mp.path().join("@changes");
    std::thread::spawn(move || {
        let Ok(f) = std::fs::File::open(&feed) else {
            return;
        };
        for line in std::io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            if line.contains(",update,qty,") && tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut followed = Vec::with_capacity(n);
    let mut latency = Vec::with_capacity(n);
    for round in n + 1..=2 * n {
        let took = save(round);
        let returned = Instant::now();
        followed.push(took);
        // Two cells change per save (the old row's qty and the new one's).
        let mut last = returned;
        for _ in 0..2 {
            last = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("a feed line");
        }
        latency.push(last.saturating_duration_since(returned));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let _ = daemon.wait();
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!(
        "| save returned -> its lines read from `@changes`, {ROWS} rows, p50 / p95 over {n} | {} / {} | <= 5 ms p50 |",
        ms(pct(&mut latency, 0.5)),
        ms(pct(&mut latency, 0.95))
    );
    let (a, f) = (pct(&mut alone, 0.5), pct(&mut followed, 0.5));
    println!(
        "| whole-file save through the mount, p50: no follower / a follower reading | {} / {} ({:+.1}%) | < 10% |",
        ms(a),
        ms(f),
        (f.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0
    );
}
