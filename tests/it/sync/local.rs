//! Locations on local paths, driven through the `rdb` binary: the same
//! rounds as over SSH, with rsync copying between directories.

use std::time::Duration;

use super::{Daemon, Host, edit, eventually};

const PRODUCTS: &str = "id|name|qty\n1|apple|3\n2|pear|5\n3|plum|7\n";

/// `n` locations of `shop`; the first creates it and adds the others.
fn locations(n: usize) -> Vec<Host> {
    let hosts: Vec<Host> = (0..n).map(|i| Host::new(&format!("h{i}"))).collect();
    hosts[0].ok(&["db:init", "shop"]);
    hosts[0].save("products", PRODUCTS);
    for h in &hosts[1..] {
        std::fs::create_dir_all(h.root().parent().unwrap()).unwrap();
        hosts[0].ok(&[
            "location:add",
            "shop",
            &h.name,
            h.root().to_str().unwrap(),
            "--as",
            "h0",
        ]);
        h.ok(&["db:register", h.root().to_str().unwrap()]);
    }
    hosts
}

/// Rounds at every host in turn until a whole pass moves nothing.
fn settle(hosts: &[Host]) {
    for _ in 0..4 {
        let mut moved = false;
        for h in hosts {
            let r = h.ok(&["db:sync", "shop"]);
            moved |= r.stderr.contains("new records") || !r.stderr.contains("received 0 records");
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn three_locations_converge_byte_for_byte_and_keep_the_losing_value() {
    let hosts = locations(3);
    let (a, b, c) = (&hosts[0], &hosts[1], &hosts[2]);
    assert_eq!(b.head("products"), PRODUCTS, "location:add synced it");
    edit(a, "products", |s| {
        s.replace("1|apple|", "1|Apple|")
            .replace("2|pear|", "2|Pear (A)|")
    });
    edit(b, "products", |s| {
        s.replace("|5\n", "|6\n").replace("2|pear|", "2|Pear (B)|") + "4|fig|1\n"
    });
    edit(c, "products", |s| {
        s.replace("3|plum|7\n", "").replace("|3\n", "|30\n")
    });
    settle(&hosts);
    let want = a.current("products");
    for h in &hosts {
        assert_eq!(h.current("products"), want, "{} differs", h.name);
    }
    let text = String::from_utf8(want).unwrap();
    assert!(text.contains("1|Apple|30\n"), "{text}");
    assert!(
        text.contains("|6\n") && text.contains("4|fig|1\n"),
        "{text}"
    );
    assert!(!text.contains("plum"), "{text}");
    // A and B both renamed pear: the later save won everywhere, and the
    // other name is listed as a sync conflict at every location.
    let (won, lost) = if text.contains("Pear (B)") {
        ("Pear (B)", "Pear (A)")
    } else {
        ("Pear (A)", "Pear (B)")
    };
    assert!(text.contains(won));
    for h in &hosts {
        let list = h.ok(&["sync:conflicts", "shop"]).stdout;
        assert!(list.contains(lost), "{}: {list}", h.name);
    }
    // It is a conflict record too, under the same id at every location;
    // resolving it for the lost value is a commit that travels.
    let ids: Vec<String> = hosts
        .iter()
        .map(|h| {
            let list = h.ok(&["conflict:list", "shop", "--format", "csv"]).stdout;
            let line = list
                .lines()
                .find(|l| l.contains("sync-products-"))
                .unwrap_or_else(|| panic!("{}: {list}", h.name))
                .to_string();
            line.split(',').next().unwrap().to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let shown = b.ok(&["conflict:show", "shop", &ids[0]]).stdout;
    assert!(shown.contains(lost) && shown.contains(won), "{shown}");
    b.ok(&["conflict:resolve", "shop", &ids[0], "--ours"]);
    assert!(!b.ok(&["conflict:list", "shop"]).stdout.contains(&ids[0]));
    settle(&hosts);
    for h in &hosts {
        assert!(h.head("products").contains(lost), "{}", h.name);
        // The resolution travelled: no location lists the conflict any more.
        let list = h.ok(&["conflict:list", "shop"]).stdout;
        assert!(!list.contains(&ids[0]), "{}: {list}", h.name);
    }
    let info = a.ok(&["db:info", "shop"]).stdout;
    assert!(
        info.contains("distributed:     3 locations, topology mesh"),
        "{info}"
    );
    // Healthy or Degraded by this machine's load, never unreachable.
    assert!(
        info.contains("h1: ") && info.contains(", latency ") && !info.contains("Unhealthy"),
        "{info}"
    );
    assert!(
        info.contains("lag: it lacks 0 records, we lack 0"),
        "{info}"
    );
    // Every location says where the others are and when they last synced.
    let list = a.ok(&["location:list", "shop"]).stdout;
    assert!(
        list.contains("h1") && list.contains("h2") && list.contains("reachable"),
        "{list}"
    );
    for h in &hosts {
        h.ok(&["verify", "shop"]);
    }
}

#[test]
fn a_one_way_target_receives_and_never_sends_back() {
    let hosts = locations(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    a.ok(&["db:config", "shop", "topology", "pairs", "h0 -> h1"]);
    edit(a, "products", |s| s + "5|kiwi|2\n");
    edit(b, "products", |s| s + "6|lime|9\n");
    for h in [a, b, a, b] {
        h.ok(&["db:sync", "shop"]);
    }
    assert!(b.head("products").contains("kiwi"), "the target receives");
    assert!(b.head("products").contains("lime"));
    assert!(!a.head("products").contains("lime"), "b never sends back");
}

#[test]
fn saved_queries_and_schemas_travel_too() {
    let hosts = locations(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    a.ok(&[
        "query:save",
        "shop",
        "stock",
        "SELECT name, qty FROM products WHERE qty > 4",
    ]);
    let schema = a.home.path().join("schema.toml");
    std::fs::write(&schema, "[columns]\nqty = \"integer\"\n").unwrap();
    a.ok(&["schema:set", "shop", "products", schema.to_str().unwrap()]);
    a.ok(&["db:sync", "shop"]);
    assert!(
        b.ok(&["query:show", "shop", "stock"])
            .stdout
            .contains("qty > 4")
    );
    assert!(
        b.ok(&["schema:show", "shop", "products"])
            .stdout
            .contains("integer")
    );
    let ran = b.ok(&["query:run", "shop", "stock"]).stdout;
    assert!(ran.contains("pear") && !ran.contains("apple"), "{ran}");
}

#[test]
fn db_init_with_locations_creates_a_distributed_database_in_one_command() {
    let (a, b) = (Host::new("a"), Host::new("b"));
    let there = b.root();
    std::fs::create_dir_all(there.parent().unwrap()).unwrap();
    let spec = format!("backup={}", there.display());
    a.ok(&["db:init", "shop", "--location", &spec]);
    a.save("products", PRODUCTS);
    a.ok(&["db:sync", "shop"]);
    b.ok(&["db:register", there.to_str().unwrap()]);
    assert_eq!(b.head("products"), PRODUCTS);
    let list = a.ok(&["location:list", "shop"]).stdout;
    assert!(list.contains("backup"), "{list}");
}

#[test]
fn ten_locations_in_a_mesh_converge() {
    let hosts = locations(10);
    for (i, h) in hosts.iter().enumerate() {
        edit(h, "products", |s| s + &format!("{}|item{i}|{i}\n", 100 + i));
    }
    settle(&hosts);
    let want = hosts[0].current("products");
    for h in &hosts {
        assert_eq!(h.current("products"), want, "{} differs", h.name);
    }
    assert_eq!(String::from_utf8(want).unwrap().lines().count(), 1 + 3 + 10);
}

#[test]
fn db_sync_of_two_registered_databases_makes_the_second_a_location() {
    let h = Host::new("one");
    h.ok(&["db:init", "blog_dev"]);
    h.ok(&["db:init", "blog_prod"]);
    h.save_in("blog_dev", "posts", "id|title\n1|Hello\n2|Draft\n");
    h.save_in("blog_prod", "posts", "id|title\n1|Hello\n3|Live\n");
    h.ok(&["db:sync", "blog_dev", "blog_prod"]);
    h.ok(&["db:sync", "blog_prod"]);
    h.ok(&["db:sync", "blog_dev"]);
    let dev = h.ok(&["table:export", "blog_dev", "posts"]).stdout;
    let prod = h.ok(&["table:export", "blog_prod", "posts"]).stdout;
    assert_eq!(dev, prod);
    assert!(dev.contains("2|Draft") && dev.contains("3|Live"), "{dev}");
    // Another database's location never joins.
    h.ok(&["db:init", "other"]);
    let r = h.rdb(&["db:sync", "other", "blog_prod"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
}

#[test]
fn two_rounds_at_once_are_serialised() {
    let hosts = locations(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    edit(a, "products", |s| s + "7|date|1\n");
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            a.cmd(&["db:sync", "shop"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    b.ok(&["db:sync", "shop"]);
    // One integration of the new commit at b: the head went from the
    // first sync to one version with kiwi, not several.
    let versions = b.ok(&["version:list", "shop", "products"]).stdout;
    assert_eq!(versions.matches("sync").count(), 2, "{versions}");
    assert!(b.head("products").contains("7|date|1"));
}

#[test]
fn continuous_sync_carries_a_save_into_the_other_locations_mount() {
    if !crate::mount::fuse_available() {
        return;
    }
    let hosts = locations(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    let mp = tempfile::tempdir().unwrap();
    // Probes every second: the daemon keeps the routing history fresh.
    a.ok(&["db:config", "shop", "health_interval_seconds", "1"]);
    let runner = Daemon::spawn(a, &["sync:run", "shop", "--interval", "60"], None);
    let mount = Daemon::mount(b, mp.path(), &["--sync-interval", "60"]);
    let logs = || {
        format!(
            "a: {}\nb: {}",
            std::fs::read_to_string(&runner.log).unwrap_or_default(),
            std::fs::read_to_string(&mount.log).unwrap_or_default()
        )
    };
    let current = mp.path().join("products/current.csv");
    // A save at a: its sync:run exports and pushes after the commit, b's
    // mount integrates what arrives; no round is run by hand.
    edit(a, "products", |s| s + "8|mango|4\n");
    assert!(
        eventually(Duration::from_secs(20), || {
            std::fs::read_to_string(&current).is_ok_and(|s| s.contains("8|mango|4"))
        }),
        "the save did not reach b's mount: {}\n{}",
        std::fs::read_to_string(&current).unwrap_or_default(),
        logs()
    );
    // And back: a save through b's mount (sed -i) reaches a.
    let sed = std::process::Command::new("sed")
        .args(["-i", "s/|pear|5/|pear|55/"])
        .arg(&current)
        .status()
        .unwrap();
    assert!(sed.success());
    assert!(
        eventually(Duration::from_secs(20), || a
            .head("products")
            .contains("|pear|55")),
        "b's save did not reach a: {}",
        logs()
    );
    // The sync:run daemon's metrics: rounds, records sent to h1, its lag.
    let metrics = a.ok(&["metrics", "shop"]).stdout;
    let value = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value(r#"reedbase_sync_rounds_total{db="shop",outcome="ok"}"#) >= 1.0,
        "{metrics}"
    );
    assert!(
        value(r#"reedbase_sync_records_total{db="shop",direction="sent",peer="h1"}"#) >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reedbase_sync_lag_records{db="shop",peer="h1"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reedbase_sync_seconds_since_success{db="shop",peer="h1"}"#),
        "{metrics}"
    );
    // The two integrations (a's save at b, b's save at a) are commits of
    // action sync, each counted by the daemon that made it: either may
    // integrate at the other's location (a location on a path is opened
    // directly).
    let b_metrics = std::fs::read_to_string(mp.path().join("@metrics")).unwrap();
    let synced = |text: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with(r#"reedbase_commits_total{action="sync",db="shop",table="products"}"#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        synced(&metrics) + synced(&b_metrics) >= 2.0,
        "{metrics}\n{b_metrics}"
    );
    // Health history kept by the daemon, one probe a second, bounded.
    let history = a.home.path().join("routing/shop/h1.csv");
    assert!(
        eventually(Duration::from_secs(20), || {
            std::fs::read_to_string(&history).is_ok_and(|s| s.lines().count() >= 3)
        }),
        "the daemon did not probe h1: {}",
        logs()
    );
}

#[test]
fn a_partial_transfer_is_never_integrated_and_the_next_round_completes() {
    let hosts = locations(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    edit(a, "products", |s| s + "9|cherry|9\n");
    a.ok(&["sync:integrate", "shop"]);
    // What a transfer killed half-way leaves: rsync's dot-named temp file
    // with part of the record, next to where the record would go.
    let records = a.root().join("sync/records");
    let node_dir = std::fs::read_dir(&records)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let newest = std::fs::read_dir(node_dir.join("products"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let rel = newest.strip_prefix(&records).unwrap();
    let dst = b.root().join("sync/records").join(rel);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let name = dst.file_name().unwrap().to_str().unwrap().to_string();
    let partial = dst.with_file_name(format!(".{name}.Xy12Ab"));
    std::fs::write(&partial, &bytes[..bytes.len() / 2]).unwrap();
    b.ok(&["sync:integrate", "shop"]);
    assert!(
        !b.head("products").contains("cherry"),
        "a partial file was used"
    );
    b.ok(&["verify", "shop"]);
    b.ok(&["db:sync", "shop"]);
    assert!(b.head("products").contains("9|cherry|9"));
    b.ok(&["verify", "shop"]);
    // Left by a transfer an hour ago, it is swept by a round.
    assert!(partial.exists());
    let aged = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&partial)
        .status()
        .unwrap();
    assert!(aged.success());
    b.ok(&["db:sync", "shop"]);
    assert!(!partial.exists(), "the leftover was not swept");
}

#[test]
fn a_full_disk_at_the_receiver_fails_the_round_and_integrates_nothing() {
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test needs root under CI"
        );
        eprintln!("skipping: mounting a small tmpfs needs root");
        return;
    }
    let a = Host::new("a");
    let small = tempfile::tempdir().unwrap();
    let tmpfs = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(small.path())
        .status()
        .unwrap();
    assert!(tmpfs.success());
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _unmount = Unmount(small.path());
    a.ok(&["db:init", "shop"]);
    a.save("products", PRODUCTS);
    let there = small.path().join("shop");
    a.ok(&[
        "location:add",
        "shop",
        "small",
        there.to_str().unwrap(),
        "--as",
        "a",
    ]);
    // Fill the disk, then make a commit too large for what is left.
    let filler = small.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 8 << 20]);
    let big: String = (0..40_000)
        .map(|i| format!("{}|item{i}|{i}\n", 1000 + i))
        .collect();
    a.save("products", &format!("{PRODUCTS}{big}"));
    let r = a.rdb(&["db:sync", "shop"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
    // Nothing half-integrated there: its head is the one before.
    let head = std::fs::read_to_string(there.join("tables/products/current.csv")).unwrap();
    assert_eq!(head, PRODUCTS);
    std::fs::remove_file(&filler).unwrap();
    a.ok(&["db:sync", "shop"]);
    let b = Host::new("b");
    b.ok(&["db:register", there.to_str().unwrap()]);
    let head = b.head("products");
    assert!(
        head.contains("40999|item39999|39999"),
        "the next round completes"
    );
}

#[test]
fn sync_run_stops_when_its_database_is_gone() {
    let hosts = locations(2);
    let b = &hosts[1];
    let mut child = b
        .cmd(&["sync:run", "shop", "--interval", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_dir_all(b.root()).unwrap();
    let stopped = eventually(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !stopped {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(stopped, "sync:run kept running without its database");
    assert_eq!(out.status.code(), Some(3));
    // It did not spin: a few lines, not a log flood.
    assert!(
        out.stderr.len() < 10_000,
        "{} bytes of messages",
        out.stderr.len()
    );
}

#[test]
fn a_prune_keeps_what_sync_has_not_exported_and_the_peer_gets_every_change() {
    let hosts = locations(2);
    let (a, b) = (&hosts[0], &hosts[1]);
    settle(&hosts);
    // Local commits the peer has not received yet.
    for i in 0..5 {
        edit(a, "products", |s| s + &format!("{}|new{i}|1\n", 10 + i));
    }
    let p = a.ok(&[
        "version:prune",
        "shop",
        "products",
        "--keep",
        "1",
        "--format",
        "csv",
    ]);
    let out = p.stdout;
    assert!(out.contains("sync (changes not yet exported)"), "{out}");
    settle(&hosts);
    assert_eq!(b.current("products"), a.current("products"));
    // Once exported, the next prune goes to the head; sync still works.
    a.ok(&["version:prune", "shop", "--keep", "1"]);
    let listed = a
        .ok(&["version:list", "shop", "products", "--format", "csv"])
        .stdout;
    assert_eq!(listed.lines().count(), 2, "{listed}");
    edit(b, "products", |s| s + "9|kiwi|2\n");
    settle(&hosts);
    assert_eq!(a.current("products"), b.current("products"));
    assert!(String::from_utf8_lossy(&a.current("products")).contains("9|kiwi|2"));
    a.ok(&["verify", "shop", "--row-log"]);
}
