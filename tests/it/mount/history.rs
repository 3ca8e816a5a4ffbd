//! History as files: `@versions/`, `@as-of/`, hidden from listings.

use super::{Mounted, table};

#[test]
fn history_is_files_and_hidden_from_listings() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Second|/' users/current.csv");
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Third|/' users/current.csv");
    // @versions: one file per version, chronological under ls, no ':'.
    let o = m.sh("ls users/@versions");
    let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("log.csv"));
    assert!(names.iter().all(|n| !n.contains(':')));
    let mut sorted = names[..3].to_vec();
    sorted.sort();
    assert_eq!(sorted, names[..3]);
    let first = std::fs::read(m.mp.path().join("users/@versions").join(&names[0])).unwrap();
    assert!(first == table(), "the first version reads back");
    let log = std::fs::read_to_string(m.mp.path().join("users/@versions/log.csv")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    // Restore by copying a version over current.csv: a new version.
    m.sh_ok(&format!(
        "cp users/@versions/{} users/current.csv",
        names[0]
    ));
    assert!(
        std::fs::read(m.current()).unwrap() == table(),
        "restore by cp"
    );
    assert_eq!(m.versions(), 4);
    // Hidden from readdir: ls -a, find, grep -r and rsync -a see tables only.
    let ls = m.sh("ls -a users");
    assert_eq!(String::from_utf8_lossy(&ls.stdout), ".\n..\ncurrent.csv\n");
    let out = m.work.path().join("copy");
    m.sh_ok(&format!("rsync -a ./ {}/", out.display()));
    let copied = m.sh(&format!("cd {} && find . -type f | sort", out.display()));
    assert_eq!(
        String::from_utf8_lossy(&copied.stdout),
        "./users/current.csv\n"
    );
    let grep = m.sh("grep -rl Second .");
    assert_eq!(
        String::from_utf8_lossy(&grep.stdout),
        "",
        "grep -r must not walk history"
    );
    // A new table: mkdir, then write its current.csv.
    m.sh_ok("mkdir orders && printf 'id|item\\n1|pen\\n' > orders/current.csv");
    let tables = m
        .rdb()
        .args(["table:list", "shop", "--format", "csv"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tables.stdout).contains("orders,1,1,"));
    // A commit from the CLI while mounted shows at once.
    let f = m.work.path().join("cli.csv");
    std::fs::write(&f, b"id|item\n1|pen\n2|ink\n").unwrap();
    assert!(
        m.rdb()
            .args(["table:import", "shop", "orders"])
            .arg(&f)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        b"id|item\n1|pen\n2|ink\n"
    );
}

#[test]
fn as_of_shows_every_table_at_a_frame_boundary() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Second|/' users/current.csv");
    let names: Vec<String> = String::from_utf8_lossy(&m.sh("ls users/@versions").stdout)
        .lines()
        .filter_map(|n| n.strip_suffix(".csv").map(String::from))
        .filter(|n| n != "log")
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A version's name is a time: the table as of then is that version.
    let first = std::fs::read(m.mp.path().join(format!("@as-of/{}/users.csv", names[0]))).unwrap();
    assert!(first == table(), "as of the first version");
    let o = m.sh(&format!(
        "cmp @as-of/{}/users.csv users/current.csv",
        names[1]
    ));
    assert!(o.status.success(), "as of the second version: the head");
    // Before the table existed there is nothing; a bad time is ENOENT.
    assert!(!m.sh("cat @as-of/-1h/users.csv").status.success());
    assert_eq!(m.sh("ls @as-of/-1h").stdout, b"");
    assert!(!m.sh("ls @as-of/yesterday").status.success());
    assert!(!m.sh("echo x > @as-of/-1s/users.csv").status.success());
    assert!(!String::from_utf8_lossy(&m.sh("ls -a").stdout).contains("@as-of"));

    // A frame over two tables, committed by another process meanwhile.
    let root = m.home.path().join("databases/shop");
    let db = reedbase::storage::Database::open(&root).expect("open the mounted database");
    db.create_table("orders", b"id|item\n1|tea\n", "test")
        .unwrap();
    let (_, users) = db.table("users").unwrap().head().unwrap();
    let users_new = String::from_utf8_lossy(&users)
        .replace("\n1|Second|", "\n1|Framed|")
        .into_bytes();
    assert!(users_new != *users);
    let mut f = reedbase::storage::Frame::begin("pair").unwrap();
    f.stage("users", reedbase::storage::Base::Head, users_new.clone())
        .unwrap();
    f.stage(
        "orders",
        reedbase::storage::Base::Head,
        b"id|item\n1|tea\n2|cake\n".to_vec(),
    )
    .unwrap();
    let done = db.commit_frame(f, "test").unwrap();
    let at = |us: u64| format!("@as-of/{}.{:06}", us / 1_000_000, us % 1_000_000);
    let after = at(done.ts_us);
    let before = at(done.ts_us - 1);
    let ls = m.sh(&format!("ls {after}"));
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "orders.csv\nusers.csv\n"
    );
    assert!(std::fs::read(m.mp.path().join(format!("{after}/users.csv"))).unwrap() == users_new);
    assert_eq!(
        std::fs::read(m.mp.path().join(format!("{after}/orders.csv"))).unwrap(),
        b"id|item\n1|tea\n2|cake\n"
    );
    assert!(std::fs::read(m.mp.path().join(format!("{before}/users.csv"))).unwrap() == *users);
    assert_eq!(
        std::fs::read(m.mp.path().join(format!("{before}/orders.csv"))).unwrap(),
        b"id|item\n1|tea\n"
    );
}

#[test]
fn a_rows_history_file_follows_every_save_of_that_row() {
    let Some(m) = Mounted::new(b"id|name|qty\n1|apple|3\n2|pear|5\na/b|slash|1\n") else {
        return;
    };
    m.sh_ok("sed -i 's/^2|pear|5/2|pear|6/' users/current.csv");
    m.sh_ok("echo '4|kiwi|9' >> users/current.csv");
    m.sh_ok("sed -i 's/^2|pear|6/2|Pear|7/' users/current.csv");
    m.sh_ok("sed -i '/^4|/d' users/current.csv");
    let lines = |key: &str| -> Vec<Vec<String>> {
        m.out(&format!("cat users/@rows/{key}.csv"))
            .lines()
            .skip(1)
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    };
    // (version, change, column, old, new) of each line.
    let short = |rows: Vec<Vec<String>>| -> Vec<String> {
        rows.iter()
            .map(|f| format!("{} {} {} {} {}", f[0], f[6], f[7], f[8], f[9]))
            .collect()
    };
    assert_eq!(
        short(lines("2")),
        [
            "1 insert id  2",
            "1 insert name  pear",
            "1 insert qty  5",
            "2 update qty 5 6",
            "4 update name pear Pear",
            "4 update qty 6 7"
        ]
    );
    assert_eq!(
        short(lines("4")),
        [
            "3 insert id  4",
            "3 insert name  kiwi",
            "3 insert qty  9",
            "5 delete id 4 ",
            "5 delete name kiwi ",
            "5 delete qty 9 "
        ]
    );
    // Keys are decoded as @query names are; a key never seen: the header.
    assert_eq!(lines("a%2Fb").len(), 3);
    assert_eq!(m.out("cat users/@rows/nope.csv").lines().count(), 1);
    // Hidden from listings, read-only.
    assert!(!m.out("ls -a users").contains("@rows"));
    assert!(!m.sh("echo x > users/@rows/1.csv").status.success());
    // The same as `rdb row:history` (its CSV has commas and compact times).
    let o = m
        .rdb()
        .args(["row:history", "shop", "users", "2", "--format", "csv"])
        .output()
        .unwrap();
    let cli: Vec<Vec<String>> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(short(cli), short(lines("2")));
}

#[test]
fn the_change_feed_follows_every_commit_once_and_ends_at_unmount() {
    let Some(mut m) = Mounted::new(b"id|v\n1|0\n") else {
        return;
    };
    // Two readers from now on: the database's CSV feed, the table's JSON.
    let readers: Vec<std::process::Child> = [
        "cat @changes > \"$WORK/feed.csv\"",
        "cat users/@changes.json > \"$WORK/feed.json\"",
    ]
    .iter()
    .map(|s| m.in_mount(120, "sh").args(["-c", s]).spawn().unwrap())
    .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Ten writers at once, five appends each.
    let writers = m.spawn_writers((0..10).map(|w| {
        format!("for i in 1 2 3 4 5; do echo \"{w}0$i|x\" >> users/current.csv || exit 1; done")
    }));
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    let csv = m.work.path().join("feed.csv");
    let inserts = || {
        std::fs::read_to_string(&csv)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(",insert,id,"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while inserts() < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Unmounting ends both readers with EOF (cat exits 0), not a hang.
    m.stop();
    for mut r in readers {
        assert!(r.wait().unwrap().success(), "a reader did not end with EOF");
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("version,time,user,action,frame,table,key,change,column,old,new")
    );
    // Every commit once, in order, its lines together.
    let mut versions: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    versions.dedup();
    let mut sorted = versions.clone();
    sorted.sort();
    assert_eq!(versions, sorted, "in commit order");
    sorted.dedup();
    assert_eq!(sorted.len(), versions.len(), "a version's lines together");
    let o = m
        .rdb()
        .args(["version:list", "shop", "users", "--format", "csv"])
        .output()
        .unwrap();
    let stored: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(2) // the header, and version 1 (before the readers opened)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(versions, stored);
    assert_eq!(inserts(), 50);
    // The JSON feed: a line per changed row, the same 50 rows.
    let json = std::fs::read_to_string(m.work.path().join("feed.json")).unwrap();
    let keys: std::collections::BTreeSet<&str> = json
        .lines()
        .map(|l| {
            let at = l.find("\"key\": \"").unwrap() + 8;
            &l[at..at + l[at..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(json.lines().count(), 50);
    assert_eq!(keys.len(), 50);
}

#[test]
fn a_backup_and_a_prune_run_while_the_mount_saves() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // Saves through the mount, while the CLI backs up (three times, the
    // last two incremental) and then prunes.
    let saver = m.spawn(
        "for i in $(seq 1 30); do sed -i \"s/^2|[^|]*|/2|n$i|/\" users/current.csv || exit 1; done",
    );
    let bk = m.work.path().join("bk");
    for _ in 0..3 {
        let o = m.rdb().args(["backup", "shop"]).arg(&bk).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let out = saver.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(m.versions(), 31);
    let old = m.sh("ls users/@versions | head -1");
    let old_name = String::from_utf8_lossy(&old.stdout).trim().to_string();
    let p = m
        .rdb()
        .args(["version:prune", "shop", "--keep", "3"])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    // The mount lists only what is kept; a pruned version is gone (ENOENT).
    let ls = m.sh("ls users/@versions");
    assert_eq!(String::from_utf8_lossy(&ls.stdout).lines().count(), 3 + 1);
    let gone = m.sh(&format!("cat users/@versions/{old_name}"));
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("No such file"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    // Saving goes on, and a last backup restores to what the mount shows.
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Last|/' users/current.csv");
    let o = m.rdb().args(["backup", "shop"]).arg(&bk).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = m
        .rdb()
        .args(["restore"])
        .arg(&bk)
        .arg("copy")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let head = m
        .rdb()
        .args(["version:show", "copy", "users", "head"])
        .output()
        .unwrap();
    assert_eq!(head.stdout, std::fs::read(m.current()).unwrap());
}

#[test]
fn a_prune_keeps_the_version_an_open_editor_will_save_against() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // An editor: reads the table, waits (the user edits), then saves as
    // most editors do: a new file renamed over current.csv.
    let editor = m
        .in_mount(60, "python3")
        .args([
            "-c",
            r#"
import os, time
work = os.environ['WORK']
data = open('users/current.csv').read()
open(work + '/read', 'w').write('ok')
while not os.path.exists(work + '/go'):
    time.sleep(0.05)
lines = data.split('\n')
f = lines[2].split('|')
f[1] = 'EditorName'
lines[2] = '|'.join(f)
open('users/current.csv.tmp', 'w').write('\n'.join(lines))
os.rename('users/current.csv.tmp', 'users/current.csv')
"#,
        ])
        .spawn()
        .unwrap();
    let work = m.work.path().to_path_buf();
    let start = std::time::Instant::now();
    while !work.join("read").exists() {
        assert!(start.elapsed().as_secs() < 20, "the editor never read");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Other saves move the head on; then a prune that keeps only the head.
    for i in 0..5 {
        m.sh_ok(&format!(
            "sed -i 's/^1|[^|]*|/1|Other{i}|/' users/current.csv"
        ));
    }
    std::thread::sleep(std::time::Duration::from_millis(700)); // the pins are published
    let p = m
        .rdb()
        .args(["version:prune", "shop", "--keep", "1", "--format", "csv"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&p.stdout).into_owned();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert!(out.contains("which read it"), "{out}");
    assert!(out.contains("users,1,1,0,"), "version 1 kept: {out}");
    // The editor saves: merged with the others' saves, nothing refused.
    std::fs::write(work.join("go"), b"").unwrap();
    let done = editor.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let now = std::fs::read_to_string(m.current()).unwrap();
    assert!(now.contains("|EditorName|"), "the editor's save landed");
    assert!(now.contains("1|Other4|"), "and kept the other saves");
    // Once the editor is gone, the next prune goes to the head.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let p = m
        .rdb()
        .args([
            "version:prune",
            "shop",
            "--keep",
            "1",
            "--exact",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert_eq!(m.versions(), 1);
}
