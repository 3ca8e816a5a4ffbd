//! Health and routed queries over real SSH: four hosts in network
//! namespaces; h0 reaches the others through a relay that delays every
//! byte (450, 0 and 220 ms round trip to h1, h2, h3), so their measured
//! latencies differ. `--route auto` answers locally while h0 is healthy,
//! from the nearest peer when h0 is overloaded (a fake load through the
//! test-only environment override), fails over when that peer's link goes
//! down, and names every location's failure when none answers.

use std::time::{Duration, Instant};

use super::net::{Net, available};
use super::{Host, Ran, run_bounded};

const PRODUCTS: &str = "id|name|qty\n1|apple|3\n2|pear|5\n3|plum|7\n";

/// Forwards stdin/stdout to a TCP address, each byte held back by half the
/// round trip given in each direction (an ssh ProxyCommand).
const RELAY: &str = r#"
import collections, os, socket, sys, threading, time
half = float(sys.argv[1]) / 2000.0
s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
def pump(read, write, end):
    q = collections.deque()
    cv = threading.Condition()
    def reader():
        while True:
            try:
                data = read()
            except OSError:
                data = b""
            with cv:
                q.append((time.monotonic() + half, data))
                cv.notify()
            if not data:
                return
    threading.Thread(target=reader, daemon=True).start()
    while True:
        with cv:
            while not q:
                cv.wait()
            t, data = q.popleft()
        wait = t - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if not data:
            end()
            return
        write(data)
def to_stdout(data):
    while data:
        data = data[os.write(1, data):]
up = threading.Thread(target=pump, args=(lambda: os.read(0, 65536), s.sendall, lambda: s.shutdown(socket.SHUT_WR)), daemon=True)
up.start()
pump(lambda: s.recv(65536), to_stdout, lambda: None)
"#;

/// Delays (round trip, ms) from h0 to h1, h2, h3: far apart, since every
/// command's own cost (a remote shell starting, more on a loaded machine)
/// varies by a hundred milliseconds or more.
const DELAYS: [u32; 3] = [450, 0, 220];

/// `shop` at h0 with h1..h3 as locations reached through the relay, every
/// location holding `products`.
fn routed_hosts() -> Net {
    let net = Net::new(4);
    let t = net.dir.path();
    let relay = t.join("relay.py");
    std::fs::write(&relay, RELAY).unwrap();
    let mut config = String::new();
    for (i, ms) in DELAYS.iter().enumerate() {
        config.push_str(&format!(
            "Host {}\n  ProxyCommand python3 {} {ms} %h %p\n",
            Net::ip(i + 1),
            relay.display()
        ));
    }
    let cfg = t.join("ssh_config");
    std::fs::write(&cfg, config).unwrap();
    let ssh = format!("{} -F {}", net.ssh(), cfg.display());
    let h0 = &net.hosts[0];
    h0.ok(&["db:init", "shop"]);
    h0.save("products", PRODUCTS);
    h0.ok(&["db:config", "shop", "health_max_cpu_percent", "500"]);
    // Probes stay fresh for the whole test: routing uses what the last
    // db:health or db:info measured.
    h0.ok(&["db:config", "shop", "health_interval_seconds", "600"]);
    let rdb = env!("CARGO_BIN_EXE_rdb");
    for i in 1..4 {
        let h = &net.hosts[i];
        std::fs::create_dir_all(h.root().parent().unwrap()).unwrap();
        let (url, me) = (net.url(i), net.url(0));
        h0.ok(&[
            "location:add",
            "shop",
            &h.name,
            &url,
            "--ssh",
            &ssh,
            "--rdb",
            rdb,
            "--as",
            "h0",
            "--self-url",
            &me,
        ]);
        h.ok(&["db:register", h.root().to_str().unwrap()]);
    }
    h0.ok(&["db:sync", "shop"]);
    for h in &net.hosts[1..] {
        assert_eq!(h.head("products"), PRODUCTS, "{}", h.name);
    }
    net
}

/// `rdb args` at `h` with this machine's load reported as `cpu` (load per core).
fn with_load(h: &Host, cpu: &str, args: &[&str]) -> Ran {
    let mut c = h.cmd(args);
    c.env("REEDBASE_FAKE_CPU", cpu);
    run_bounded(c, Duration::from_secs(120))
}

fn answered_by(r: &Ran) -> String {
    r.stderr
        .lines()
        .find_map(|l| l.strip_prefix("rdb: answered by "))
        .unwrap_or("")
        .to_string()
}

/// The latency `db:health` printed for `location` (CSV), in ms.
fn latency(health: &str, location: &str) -> f64 {
    health
        .lines()
        .find(|l| l.starts_with(&format!("{location},")))
        .and_then(|l| l.split(',').nth(2))
        .and_then(|v| v.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no latency of {location}: {health}"))
}

#[test]
fn auto_routes_to_the_nearest_healthy_location_and_fails_over() {
    if !available() {
        return;
    }
    let net = routed_hosts();
    let h0 = &net.hosts[0];
    let point = "SELECT name FROM products WHERE id = 2";

    // Health: every location answers; the relay's delays order them.
    let health = with_load(h0, "0.1", &["db:health", "shop", "--format", "csv"]);
    assert_eq!(health.code, 0, "{}", health.stderr);
    let h = &health.stdout;
    assert!(h.contains("h0 (this location),Healthy"), "{h}");
    assert!(!h.contains("Unhealthy"), "{h}");
    let (l1, l2, l3) = (latency(h, "h1"), latency(h, "h2"), latency(h, "h3"));
    assert!(l2 < l3 && l3 < l1, "latencies follow the delays: {h}");
    assert!(l1 >= 450.0, "{h}");
    let node = h0.ok(&["node:health"]).stdout;
    assert!(node.starts_with("{\"format\":1,\"cores\":"), "{node}");

    // A healthy local location answers itself.
    let r = with_load(h0, "0.1", &["db:query", "shop", point, "--route", "auto"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "name\npear\n");
    assert!(
        answered_by(&r).starts_with("h0 (this location is healthy)"),
        "{}",
        r.stderr
    );

    // Overloaded: the nearest healthy peer, with the same result.
    let r = with_load(h0, "9", &["db:query", "shop", point, "--route", "auto"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "name\npear\n");
    let by = answered_by(&r);
    assert!(
        by.starts_with("h2 (this location is degraded (CPU 900% > 500%); nearest healthy"),
        "{}",
        r.stderr
    );
    let json = with_load(
        h0,
        "9",
        &[
            "db:query", "shop", point, "--route", "auto", "--format", "json",
        ],
    );
    let local = h0
        .ok(&["db:query", "shop", point, "--format", "json"])
        .stdout;
    assert_eq!(
        json.stdout, local,
        "the same JSON as a local query: {}",
        json.stderr
    );

    // This location fails (a damaged log): the next one answers.
    let log = h0.root().join("tables/products/version.log");
    let saved = std::fs::read(&log).unwrap();
    std::fs::write(&log, b"garbage\n").unwrap();
    let r = with_load(h0, "0.1", &["db:query", "shop", point, "--route", "auto"]);
    std::fs::write(&log, &saved).unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "name\npear\n");
    assert!(r.stderr.contains("h0 failed"), "{}", r.stderr);
    assert!(answered_by(&r).starts_with("h2 "), "{}", r.stderr);

    // A write never leaves unless the route names the location.
    let w = with_load(
        h0,
        "9",
        &[
            "db:query",
            "shop",
            "INSERT INTO products VALUES (4, 'fig', 1)",
            "--route",
            "auto",
        ],
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert!(
        answered_by(&w).starts_with("h0 (a write runs here"),
        "{}",
        w.stderr
    );
    assert!(h0.head("products").contains("4|fig|1"));
    // The parser reads the statement, comments and all: still a write, still here.
    let w = with_load(
        h0,
        "9",
        &[
            "db:query",
            "shop",
            "/* nightly */ DELETE FROM products WHERE id = 3",
            "--route",
            "auto",
        ],
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert!(
        answered_by(&w).starts_with("h0 (a write runs here"),
        "{}",
        w.stderr
    );
    for h in &net.hosts[1..] {
        let head = h.head("products");
        assert!(
            !head.contains("fig") && head.contains("3|plum|7"),
            "{}: {head}",
            h.name
        );
    }
    // A remote refuses a write it was not explicitly sent.
    let id = h0.ok(&["db:info", "shop"]).stdout;
    let id = id
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .unwrap()
        .trim()
        .to_string();
    let h2 = &net.hosts[2];
    let refused = h2.rdb(&[
        "sync:remote-query",
        h2.root().to_str().unwrap(),
        "--id",
        &id,
        "--",
        "-- sneaky\nDELETE FROM products",
    ]);
    assert_eq!(refused.code, 8, "{}", refused.stderr);
    assert_eq!(h2.head("products"), PRODUCTS);
    let w = h0.rdb(&[
        "db:query",
        "shop",
        "INSERT INTO products VALUES (5, 'kiwi', 2)",
        "--route",
        "h2",
    ]);
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert!(
        answered_by(&w).starts_with("h2 (--route h2)"),
        "{}",
        w.stderr
    );
    assert!(net.hosts[2].head("products").contains("5|kiwi|2"));
    // A query error is the query's: no other location is tried.
    let bad = with_load(
        h0,
        "9",
        &[
            "db:query",
            "shop",
            "SELECT nope FROM products",
            "--route",
            "auto",
        ],
    );
    assert_eq!(bad.code, 8, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("at h2:") && !bad.stderr.contains("trying the next"),
        "{}",
        bad.stderr
    );

    // The nearest goes down: the next one answers, within the time limit.
    net.link(2, false);
    let started = Instant::now();
    let r = with_load(
        h0,
        "9",
        &[
            "db:query",
            "shop",
            point,
            "--route",
            "auto",
            "--route-timeout",
            "40",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "name\npear\n");
    assert!(r.stderr.contains("h2 failed"), "{}", r.stderr);
    assert!(answered_by(&r).starts_with("h3 "), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(40));
    // h2 lags by what was made here since: a commit, a round that cannot reach it.
    h0.save("products", "id|name|qty\n1|apple|30\n2|pear|5\n4|fig|1\n");
    let round = h0.rdb(&["db:sync", "shop"]);
    assert_eq!(round.code, 1, "h2 cannot be reached: {}", round.stderr);
    let info = with_load(h0, "0.1", &["db:info", "shop"]).stdout;
    let lag_of = |name: &str| -> String {
        let mut lines = info
            .lines()
            .skip_while(|l| !l.starts_with(&format!("  {name}: ")));
        lines.nth(1).unwrap_or("").to_string()
    };
    let h2_lag: u64 = lag_of("h2")
        .split("lag: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no lag for h2: {info}"));
    assert!(h2_lag >= 2, "fig's insert and the save: {info}");
    assert!(lag_of("h3").contains("lag: it lacks 0 records"), "{info}");
    // db:info shows it, with the reason.
    let info = with_load(h0, "0.1", &["db:info", "shop"]).stdout;
    assert!(
        info.contains("h2: ") && info.contains("Unhealthy"),
        "{info}"
    );
    assert!(info.contains("h3: ") && info.contains("latency"), "{info}");

    // All down and the local copy gone: a clear error naming each location.
    net.link(1, false);
    net.link(3, false);
    let root = h0.root();
    let away = root.with_extension("away");
    std::fs::rename(&root, &away).unwrap();
    let started = Instant::now();
    let r = with_load(
        h0,
        "0.1",
        &[
            "db:query",
            "shop",
            point,
            "--route",
            "auto",
            "--route-timeout",
            "20",
        ],
    );
    std::fs::rename(&away, &root).unwrap();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    // With every peer down and their probes stale, a healthy location
    // answers at once: no peer is probed.
    h0.ok(&["db:config", "shop", "health_interval_seconds", "1"]);
    let quick = Instant::now();
    let here = with_load(
        h0,
        "0.1",
        &[
            "db:query",
            "shop",
            point,
            "--route",
            "auto",
            "--route-timeout",
            "5",
        ],
    );
    assert_eq!(here.code, 0, "{}", here.stderr);
    assert!(answered_by(&here).starts_with("h0 "), "{}", here.stderr);
    assert!(
        quick.elapsed() < Duration::from_secs(3),
        "{:?}",
        quick.elapsed()
    );
    assert!(
        r.stderr.contains("no location answered within 20.0 s"),
        "{}",
        r.stderr
    );
    for h in ["h1", "h2", "h3"] {
        assert!(
            r.stderr.contains(&format!("\n  {h}: ")),
            "{h}: {}",
            r.stderr
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
