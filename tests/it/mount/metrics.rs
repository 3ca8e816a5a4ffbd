//! Metrics of a mount daemon: `<db>/@metrics` after saves by real tools
//! (checked by `promtool check metrics`), `rdb metrics` asking the daemon,
//! and a real Prometheus scraping `--metrics-listen`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Mounted, table};

/// The value of the sample `name{labels}` (labels as Prometheus prints
/// them, sorted), if the text has it.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn promtool_available() -> bool {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool (Debian package prometheus) is required under CI"
        );
        eprintln!("skipping the promtool check: promtool is not installed");
    }
    ok
}

#[test]
fn metrics_count_saves_by_outcome_and_promtool_accepts_the_text() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("echo '100001|Added|x@example.com|30|DE|Berlin|2024-01-01|1.5|true|new' >> users/current.csv");
    m.sh_ok("sed -i 's/^1|/1|/' users/current.csv && sed -i '2s/|[^|]*$/|42/' users/current.csv");
    // A duplicate key: refused (EINVAL at the rename), kept in @rejected/.
    let bad = m.sh("sed -i 's/^5|/4|/' users/current.csv");
    assert!(!bad.status.success(), "a duplicate key must be refused");
    m.make_conflict(3, "theirs", "ours");
    let text = m.out("cat @metrics");
    let saves = |outcome: &str| {
        sample(
            &text,
            &format!(r#"reedbase_saves_total{{db="shop",outcome="{outcome}",table="users"}}"#),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(saves("appended"), 1.0, "{text}");
    assert!(saves("committed") >= 2.0, "{text}");
    assert_eq!(saves("invalid"), 1.0, "{text}");
    assert_eq!(saves("conflict"), 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"reedbase_merge_conflicts_total{db="shop",table="users"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // Every committed version counted once, with its duration.
    let versions = m.versions() as f64;
    let commits: f64 = text
        .lines()
        .filter(|l| l.starts_with("reedbase_commits_total{") && l.contains(r#"db="shop""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // The first version was made by `table:create`, another process.
    assert_eq!(commits, versions - 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"reedbase_commit_duration_seconds_count{db="shop",table="users"}"#
        ),
        Some(commits),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"reedbase_fuse_operation_duration_seconds_count{op="rename"}"#
        )
        .unwrap_or(0.0)
            >= 2.0,
        "sed -i renames: {text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"reedbase_fuse_errors_total{errno="EINVAL",op="rename"}"#
        ),
        Some(1.0),
        "the refused save's errno: {text}"
    );
    if promtool_available() {
        let mut check = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `rdb metrics` asks the daemon: the same counters, as JSON and a table.
    let json = m
        .rdb()
        .args(["metrics", "shop", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let json = String::from_utf8(json.stdout).unwrap();
    assert!(
        json.contains(r#"{"name":"reedbase_saves_total","labels":{"db":"shop","outcome":"invalid","table":"users"},"value":1}"#),
        "{json}"
    );
    let table = m
        .rdb()
        .args(["metrics", "shop", "--format", "table"])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("reedbase_commit_duration_seconds_p99")
                && l.contains("db=shop table=users")),
        "{table}"
    );
}

#[test]
fn rdb_metrics_without_a_daemon_says_so() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    m.stop();
    let out = m.rdb().args(["metrics", "shop"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no running daemon serves shop"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The stopped daemon removed its socket.
    let run = m.home.path().join("run");
    let left: Vec<_> = std::fs::read_dir(&run)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server on loopback, killed on drop.
struct Prometheus(Child, tempfile::TempDir);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn prometheus_scrapes_the_daemon_and_its_api_returns_the_commit_counter() {
    if !promtool_available() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let Some(m) = Mounted::with_options(&table(), &["--metrics-listen", &listen]) else {
        return;
    };
    for i in 0..3 {
        m.sh_ok(&format!(
            "echo '{}|N{i}|n{i}@example.com|30|DE|Berlin|2024-01-01|1.5|true|new' >> users/current.csv",
            200_000 + i
        ));
    }
    // The endpoint itself.
    let direct = http_get(port, "/metrics").unwrap_or_default();
    assert!(direct.starts_with("HTTP/1.1 200 OK"), "{direct}");
    assert!(
        direct.contains(r#"reedbase_commits_total{action="update",db="shop",table="users"} 3"#),
        "{direct}"
    );
    // A real Prometheus scraping it every second.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: reedbase\n    static_configs:\n      - targets: ['{listen}']\n"
        ),
    )
    .unwrap();
    let web = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let prom = Prometheus(child, dir);
    let query = "/api/v1/query?query=reedbase_commits_total%7Bdb%3D%22shop%22%7D";
    let start = Instant::now();
    let mut last = String::new();
    let found = loop {
        if let Some(body) = http_get(web, query) {
            // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[<t>,"3"]}]}}
            if body.contains(r#""__name__":"reedbase_commits_total""#)
                && body.contains(r#""job":"reedbase""#)
                && body.contains(r#","3"]"#)
            {
                break true;
            }
            last = body;
        }
        if start.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        found,
        "Prometheus never returned the commit counter: {last}\n{}",
        std::fs::read_to_string(prom.1.path().join("prometheus.log")).unwrap_or_default()
    );
}
