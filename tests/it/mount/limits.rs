//! Runaway work and refusals a mount user must see: query time limits,
//! queries that never starve other requests, cancelled queries, long
//! history listings, and the reasons for refused names.

use std::time::{Duration, Instant};

use super::{Mounted, table, wait_until_in_syscall};

/// Where a reader of `@query/` waits while its query runs: the open (the
/// query runs at open) or a read.
const IN_QUERY: &[libc::c_long] = &[libc::SYS_openat, libc::SYS_read];

/// `n` rows `id|v`: enough for a join without an equality to run away.
fn big_table(n: usize) -> Vec<u8> {
    let mut t = b"id|v\n".to_vec();
    for i in 1..=n {
        t.extend_from_slice(format!("{i}|{}\n", i % 7).as_bytes());
    }
    t
}

const RUNAWAY: &str = "@query/SELECT COUNT(*) FROM big a JOIN big b ON a.id < b.id";

fn with_big_table(timeout_ms: &str) -> Option<Mounted> {
    let mut m = Mounted::prepared(&table(), &[])?;
    let src = m.work_file("big.csv", &big_table(12_000));
    assert!(
        m.rdb()
            .args(["table:create", "shop", "big", "--from"])
            .arg(&src)
            .status()
            .unwrap()
            .success()
    );
    m.config("query_timeout_ms", timeout_ms);
    m = m.start();
    Some(m)
}

#[test]
fn runaway_queries_time_out_and_never_starve_reads_and_saves() {
    let Some(m) = with_big_table("4000") else {
        return;
    };
    // More runaway queries than the mount has request threads (4).
    let runaway: Vec<_> = (0..8)
        .map(|_| m.spawn(&format!("cat '{RUNAWAY}' > /dev/null")))
        .collect();
    let pids: Vec<u32> = runaway.iter().map(|c| c.id()).collect();
    wait_until_in_syscall(&pids, IN_QUERY);
    // A liveness check, not a benchmark: these finish while all eight run
    // (docs/BENCHMARKS.md has the measured latency).
    let started = Instant::now();
    let read = m.sh("wc -l < users/current.csv");
    assert!(read.status.success());
    m.sh_ok("sed -i 's/^1|[^|]*|/1|DuringQueries|/' users/current.csv");
    assert!(
        m.sh("ls users").status.success(),
        "a listing works meanwhile"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "reads and saves waited for queries: {:?}",
        started.elapsed()
    );
    for child in runaway {
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "a runaway query must not succeed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("timed out"), "ETIMEDOUT, got: {err}");
    }
    let status = m.status();
    assert!(status.contains("query_timeout_ms"), "{status}");
    assert!(status.contains("query memory: "), "{status}");
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|DuringQueries|")
    );
}

#[test]
fn a_query_stops_when_its_reader_is_killed() {
    let Some(m) = with_big_table("120000") else {
        return;
    };
    // cat itself (no shell or timeout between), so the kill reaches it.
    let mut reader = std::process::Command::new("cat")
        .arg(m.mp.path().join(RUNAWAY))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the daemon runs its query (a request the kernel has not
    // handed to the daemon yet is simply dropped with its process).
    let start = Instant::now();
    while !m.status().contains("queries running: 1 ") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the query never ran: {}",
            m.status()
        );
        // A poll interval, not a wait for an effect.
        std::thread::sleep(Duration::from_millis(10));
    }
    reader.kill().unwrap();
    let _ = reader.wait();
    let start = Instant::now();
    while !m.status().contains("its reader went away") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the query was not cancelled: {}",
            m.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ls_l_of_many_versions_and_refused_names_say_why() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // 300 versions; `ls -l` stats each one (a lookup by name each).
    m.py(
        "import sys\nfor i in range(300):\n    open('users/current.csv', 'a').write(f'{900000 + i}|A|a@x.org|30|DE|Kiel|2024-01-01|1.00|true|\\n')",
        &[],
    );
    let ls = m.sh("ls -l users/@versions | wc -l");
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout).trim(),
        "303",
        "total, 301 versions, log.csv"
    );
    // Names the mount refuses say why in @status, not only EINVAL.
    assert!(!m.sh("mkdir 'a b'").status.success());
    let long = "x".repeat(65);
    assert!(!m.sh(&format!("mkdir {long}")).status.success());
    let status = m.status();
    assert!(status.contains("\"a b\""), "{status}");
    assert!(status.contains("longer than 64 bytes"), "{status}");
}
