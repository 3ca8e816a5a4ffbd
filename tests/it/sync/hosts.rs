//! Hosts that reach each other over real SSH in network namespaces
//! (`net.rs`): locations added over SSH (rdb installed where missing),
//! rounds in mesh and hub, a partition and its heal, a skewed clock.

use super::net::{Net, available};
use super::{Host, edit};

const PRODUCTS: &str = "id|name|qty\n1|apple|3\n2|pear|5\n3|plum|7\n";

/// `shop` at h0, with every other host added as a location over SSH;
/// the last one gets `rdb` installed by `location:add`.
pub(super) fn distributed(n: usize) -> Net {
    let net = Net::new(n);
    let h0 = &net.hosts[0];
    h0.ok(&["db:init", "shop"]);
    h0.save("products", PRODUCTS);
    let install = net.dir.path().join("bin").join("rdb");
    for i in 1..n {
        let h = &net.hosts[i];
        std::fs::create_dir_all(h.root().parent().unwrap()).unwrap();
        let (ssh, url, me) = (net.ssh(), net.url(i), net.url(0));
        let mut args = vec![
            "location:add",
            "shop",
            &h.name,
            &url,
            "--ssh",
            &ssh,
            "--as",
            "h0",
            "--self-url",
            &me,
        ];
        let rdb = env!("CARGO_BIN_EXE_rdb");
        let install_to = install.to_str().unwrap();
        if i + 1 < n {
            args.extend(["--rdb", rdb]);
        } else {
            args.extend(["--install-to", install_to]);
        }
        let r = h0.ok(&args);
        if i + 1 == n {
            assert!(r.stderr.contains("installing"), "{}", r.stderr);
            assert!(install.exists());
        }
        h.ok(&["db:register", h.root().to_str().unwrap()]);
    }
    net
}

fn settle(hosts: &[&Host]) {
    for _ in 0..3 {
        for h in hosts {
            h.ok(&["db:sync", "shop"]);
        }
    }
}

fn same_everywhere(hosts: &[&Host], table: &str) -> String {
    let want = hosts[0].current(table);
    for h in hosts {
        assert_eq!(
            String::from_utf8_lossy(&h.current(table)),
            String::from_utf8_lossy(&want),
            "{} differs",
            h.name
        );
    }
    String::from_utf8(want).unwrap()
}

#[test]
fn three_hosts_over_ssh_converge_in_a_mesh_and_through_a_hub() {
    if !available() {
        return;
    }
    let net = distributed(3);
    let [h0, h1, h2] = [&net.hosts[0], &net.hosts[1], &net.hosts[2]];
    assert_eq!(h2.head("products"), PRODUCTS);
    edit(h0, "products", |s| {
        s.replace("1|apple|3", "1|Apple|3")
            .replace("2|pear|", "2|Pear0|")
    });
    edit(h1, "products", |s| {
        s.replace("|7\n", "|70\n").replace("2|pear|", "2|Pear1|") + "4|fig|1\n"
    });
    edit(h2, "products", |s| s.replace("1|apple|3", "1|apple|33"));
    settle(&[h0, h1, h2]);
    let text = same_everywhere(&[h0, h1, h2], "products");
    assert!(
        text.contains("1|Apple|33\n") && text.contains("3|plum|70\n"),
        "{text}"
    );
    assert!(text.contains("4|fig|1"), "{text}");
    let lost = if text.contains("Pear1") {
        "Pear0"
    } else {
        "Pear1"
    };
    for h in [h0, h1, h2] {
        assert!(
            h.ok(&["sync:conflicts", "shop"]).stdout.contains(lost),
            "{}",
            h.name
        );
    }

    // Through a hub: the spokes talk only to h0; the list travels.
    h0.ok(&["db:config", "shop", "topology", "hub", "h0"]);
    h0.ok(&["db:sync", "shop"]);
    edit(h1, "products", |s| s + "5|kiwi|5\n");
    edit(h2, "products", |s| s + "6|lime|6\n");
    let r = h1.ok(&["db:sync", "shop"]);
    assert!(
        !r.stderr.contains("h2:"),
        "a spoke talks only to the hub: {}",
        r.stderr
    );
    h2.ok(&["db:sync", "shop"]);
    h1.ok(&["db:sync", "shop"]);
    let text = same_everywhere(&[h0, h1, h2], "products");
    assert!(text.contains("kiwi") && text.contains("lime"), "{text}");
    for h in [h0, h1, h2] {
        h.ok(&["verify", "shop"]);
    }
}

#[test]
fn a_partitioned_host_keeps_saving_and_a_skewed_clock_changes_only_who_wins() {
    if !available() {
        return;
    }
    let mut net = distributed(2);
    // h1's clock runs two hours ahead (a fresh process reads it).
    net.hosts[1]
        .env
        .push(("REEDBASE_CLOCK_SKEW_SECONDS".into(), "7200".into()));
    let [h0, h1] = [&net.hosts[0], &net.hosts[1]];
    net.link(1, false);
    edit(h0, "products", |s| s.replace("2|pear|5", "2|pear|50"));
    let r = h0.rdb(&["db:sync", "shop"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("h1: unreachable"), "{}", r.stderr);
    let list = h0.ok(&["location:list", "shop"]).stdout;
    assert!(list.contains("unreachable"), "{list}");
    let info = h0.ok(&["db:info", "shop"]).stdout;
    assert!(
        info.contains("h1: ") && info.contains("Unhealthy (unreachable: "),
        "{info}"
    );
    edit(h1, "products", |s| s.replace("2|pear|5", "2|pear|51"));
    net.link(1, true);
    settle(&[h0, h1]);
    // A true conflict: h1's save is later by its clock, so it wins; h0's
    // value is kept as lost at both.
    let text = same_everywhere(&[h0, h1], "products");
    assert!(text.contains("2|pear|51"), "{text}");
    for h in [h0, h1] {
        assert!(h.ok(&["sync:conflicts", "shop"]).stdout.contains("50"));
    }
    // h0 saw 51 and changes it: its save wins although its clock is two
    // hours behind the value it replaces (a location's own order holds).
    edit(h0, "products", |s| s.replace("2|pear|51", "2|pear|52"));
    settle(&[h0, h1]);
    let text = same_everywhere(&[h0, h1], "products");
    assert!(text.contains("2|pear|52"), "{text}");
}

/// Runs `script` in host `i`'s namespace with `shop` mounted at `$MP`
/// (the mount and the script share one mount namespace); its exit code.
/// The mount does not sync (`--no-sync`): the hosts' saves stay
/// concurrent, and rounds run after.
fn with_mount(net: &Net, i: usize, script: &str) -> super::Ran {
    let h = &net.hosts[i];
    let mp = net.dir.path().join(format!("mnt{i}"));
    std::fs::create_dir_all(&mp).unwrap();
    let rdb = env!("CARGO_BIN_EXE_rdb");
    let full = format!(
        "export REEDBASE_HOME='{home}' MP='{mp}'; '{rdb}' mount shop \"$MP\" --no-sync 2>\"$MP.log\" & m=$!; \
         for _ in $(seq 200); do [ -f \"$MP/products/current.csv\" ] && break; sleep 0.05; done; \
         ( {script} ); rc=$?; kill $m; wait $m; exit $rc",
        home = h.home.path().display(),
        mp = mp.display(),
    );
    let mut c = std::process::Command::new("ip");
    c.args([
        "netns",
        "exec",
        h.ns.as_deref().unwrap(),
        "bash",
        "-c",
        &full,
    ]);
    super::run_bounded(c, std::time::Duration::from_secs(60))
}

#[test]
fn saves_through_the_mount_with_real_tools_at_every_host_converge() {
    if !available() || !crate::mount::fuse_available() {
        return;
    }
    let net = distributed(3);
    let [h0, h1, h2] = [&net.hosts[0], &net.hosts[1], &net.hosts[2]];
    let r = with_mount(
        &net,
        0,
        r#"sed -i 's/^1|apple|3$/1|apple|300/' "$MP/products/current.csv""#,
    );
    assert_eq!(r.code, 0, "sed -i at h0: {}", r.stderr);
    let py = r#"python3 -c "
import csv, sys
p = sys.argv[1]
rows = list(csv.reader(open(p), delimiter='|'))
rows.append(['5', 'kiwi', '2'])
with open(p, 'w', newline='') as f:
    csv.writer(f, delimiter='|', lineterminator='\n').writerows(rows)
" "$MP/products/current.csv""#;
    let r = with_mount(&net, 1, py);
    assert_eq!(r.code, 0, "python at h1: {}", r.stderr);
    let new = net.dir.path().join("new.csv");
    std::fs::write(&new, PRODUCTS.replace("3|plum|7", "3|plum|77")).unwrap();
    let r = with_mount(
        &net,
        2,
        &format!("cp '{}' \"$MP/products/current.csv\"", new.display()),
    );
    assert_eq!(r.code, 0, "cp at h2: {}", r.stderr);
    settle(&[h0, h1, h2]);
    let text = same_everywhere(&[h0, h1, h2], "products");
    assert!(text.contains("1|apple|300\n"), "{text}");
    assert!(text.contains("5|kiwi|2\n"), "{text}");
    assert!(text.contains("3|plum|77\n"), "{text}");
    // And what a mount shows is what the store holds.
    let r = with_mount(&net, 1, r#"cat "$MP/products/current.csv""#);
    assert_eq!(r.stdout, text);
}
