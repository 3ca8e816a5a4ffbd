//! Row history: the row log agrees with a reference built from the
//! versions themselves over random edits (updates, inserts, deletes,
//! header changes, bulk rewrites, frames), whatever became of the log (cut
//! short, removed); `verify` notices a log that lies; `row:history`,
//! ReedQL's `history()` and the mount's `@rows/` say the same.

use std::collections::BTreeMap;

use reedbase::query::{Engine, Value};
use reedbase::storage::{Action, Base, CommitOptions, Database, Frame, ROW_LOG};

use crate::util::{Lcg, new_db, render};

/// (version, key, change, column, old, new), as `history()` gives it.
type Cell = (u64, String, String, String, String, String);

/// A table as (header, key -> fields): the tests' tables hold no quotes.
fn parse(b: &[u8]) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let text = String::from_utf8_lossy(b);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .map(|h| h.split('|').map(str::to_string).collect())
        .unwrap_or_default();
    let rows = lines
        .map(|l| {
            let f: Vec<String> = l.split('|').map(str::to_string).collect();
            (f[0].clone(), f)
        })
        .collect();
    (header, rows)
}

/// Every changed cell of every version, from the versions alone.
fn reference(db: &Database, table: &str) -> Vec<Cell> {
    let t = db.table(table).unwrap();
    let mut out = Vec::new();
    let mut before: Vec<u8> = Vec::new();
    for v in t.versions().unwrap() {
        let after = t.read_version(v.seq).unwrap();
        let (oh, old) = parse(&before);
        let (nh, new) = parse(&after);
        let header = if nh.is_empty() {
            oh.clone()
        } else {
            nh.clone()
        };
        let cell = |h: &[String], f: &[String], c: &str| {
            h.iter()
                .position(|x| x == c)
                .and_then(|i| f.get(i).cloned())
                .unwrap_or_default()
        };
        let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (kind, o, n) = match (old.get(k), new.get(k)) {
                (None, Some(n)) => ("insert", None, Some(n)),
                (Some(o), None) => ("delete", Some(o), None),
                (Some(o), Some(n)) => ("update", Some(o), Some(n)),
                (None, None) => continue,
            };
            for c in &header {
                let ov = o.map(|f| cell(&oh, f, c)).unwrap_or_default();
                let nv = n.map(|f| cell(&nh, f, c)).unwrap_or_default();
                if ov != nv {
                    out.push((v.seq, k.clone(), kind.to_string(), c.clone(), ov, nv));
                }
            }
        }
        before = after;
    }
    out.sort();
    out
}

/// The same from the row log (`Table::changes`).
fn logged(db: &Database, table: &str, key: Option<&str>) -> Vec<Cell> {
    let mut out: Vec<Cell> = Vec::new();
    for (v, c) in db.table(table).unwrap().changes(key).unwrap() {
        for (column, old, new) in c.cells() {
            out.push((
                v.seq,
                c.key.clone(),
                c.kind.name().to_string(),
                column,
                old.unwrap_or_default(),
                new.unwrap_or_default(),
            ));
        }
    }
    out.sort();
    out
}

/// Random edits of `t` in `db` (a frame now and then with a second table).
fn edit_randomly(db: &Database, seed: u64, rounds: usize) {
    let mut rng = Lcg(seed);
    let mut header: Vec<String> = vec!["id".into(), "a".into(), "b".into()];
    let mut rows: BTreeMap<u64, Vec<String>> = (1..=30)
        .map(|k| (k, vec![format!("a{k}"), "0".into()]))
        .collect();
    db.create_table("t", &render(&header, &rows), "t").unwrap();
    db.create_table("u", b"id|x\n1|0\n", "t").unwrap();
    let opts = CommitOptions::new(Action::Update, "ann");
    for round in 0..rounds {
        match rng.next(20) {
            0 => {
                // A new column.
                header.push(format!("c{round}"));
                for f in rows.values_mut() {
                    f.push(format!("n{round}"));
                }
            }
            1 => {
                // A bulk rewrite: more rows than the log lists one by one.
                for k in 1000..2300 {
                    rows.insert(k, vec![format!("bulk{round}"); header.len() - 1]);
                }
            }
            2 => {
                let gone: Vec<u64> = rows.keys().copied().filter(|k| *k >= 1000).collect();
                for k in gone {
                    rows.remove(&k);
                }
            }
            3..=5 => {
                let k = 1 + rng.next(60);
                if rows.remove(&k).is_none() {
                    rows.insert(k, vec![format!("ins{round}"); header.len() - 1]);
                }
            }
            _ => {
                for _ in 0..1 + rng.next(3) {
                    let k = 1 + rng.next(40);
                    if let Some(f) = rows.get_mut(&k) {
                        let c = rng.next(f.len() as u64) as usize;
                        f[c] = format!("v{round}");
                    }
                }
            }
        }
        let content = render(&header, &rows);
        if rng.next(7) == 0 {
            let mut f = Frame::begin("pair").unwrap();
            f.stage("t", Base::Head, content).unwrap();
            f.stage("u", Base::Head, format!("id|x\n1|{round}\n").into_bytes())
                .unwrap();
            db.commit_frame(f, "bob").unwrap();
        } else {
            db.table("t")
                .unwrap()
                .commit(Base::Head, content, &opts)
                .unwrap();
        }
    }
}

#[test]
fn the_row_log_agrees_with_the_versions_over_random_edits() {
    for seed in 1..=4 {
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path());
        edit_randomly(&db, seed, 60);
        let want = reference(&db, "t");
        assert!(want.len() > 100, "seed {seed}: {} cells", want.len());
        assert_eq!(logged(&db, "t", None), want, "seed {seed}");
        // One row's history is the same as the whole history's rows of it.
        for k in ["1", "7", "33", "1500"] {
            let of_key: Vec<Cell> = want.iter().filter(|c| c.1 == k).cloned().collect();
            assert_eq!(logged(&db, "t", Some(k)), of_key, "seed {seed}, key {k}");
        }
        assert!(db.verify().unwrap().problems.is_empty(), "seed {seed}");
        // The log cut anywhere (a crash), or gone: readers still agree, and
        // the next commit rebuilds what is missing.
        let log = dir.path().join("tables/t").join(ROW_LOG);
        drop(db);
        for (i, part) in [0.0, 0.33, 0.97].into_iter().enumerate() {
            let full = std::fs::read(&log).unwrap();
            let cut = (full.len() as f64 * part) as usize;
            std::fs::write(&log, &full[..cut]).unwrap();
            let db = Database::open(dir.path()).unwrap();
            let want = reference(&db, "t");
            assert_eq!(logged(&db, "t", None), want, "seed {seed}, cut at {cut}");
            let t = db.table("t").unwrap();
            let (_, head) = t.head().unwrap();
            let mut next = head.to_vec();
            let width = next
                .split(|b| *b == b'\n')
                .next()
                .unwrap()
                .split(|b| *b == b'|')
                .count();
            next.extend_from_slice(
                format!("{}{}\n", 90_000 + i, "|z".repeat(width - 1)).as_bytes(),
            );
            t.commit(Base::Head, next, &CommitOptions::new(Action::Update, "ann"))
                .unwrap();
            let again = reference(&db, "t");
            assert!(again.len() > want.len());
            assert_eq!(
                logged(&db, "t", None),
                again,
                "seed {seed}, after the cut at {cut}"
            );
            assert!(std::fs::read(&log).unwrap().len() > cut, "rebuilt");
            assert!(
                db.verify().unwrap().problems.is_empty(),
                "seed {seed}, cut at {cut}"
            );
        }
    }
}

#[test]
fn verify_names_a_row_log_that_lies() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", b"id|v\n1|a\n2|b\n", "t").unwrap();
    let t = db.table("t").unwrap();
    t.commit(
        Base::Head,
        b"id|v\n1|a\n2|c\n".to_vec(),
        &CommitOptions::new(Action::Update, "t"),
    )
    .unwrap();
    assert!(db.verify().unwrap().problems.is_empty());
    let log = dir.path().join("tables/t").join(ROW_LOG);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("R\tU\t2\t"), "{text}");
    std::fs::write(&log, text.replace("R\tU\t2\t", "R\tU\t1\t")).unwrap();
    let db = Database::open(dir.path()).unwrap();
    let problems: Vec<String> = db
        .verify()
        .unwrap()
        .problems
        .iter()
        .map(|p| p.what.clone())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("rows.log: version 2"), "{problems:?}");
}

#[test]
fn history_in_reedql_agrees_with_the_reference_and_joins() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    edit_randomly(&db, 9, 40);
    let want = reference(&db, "t");
    let engine = Engine::new(&db);
    let got = engine
        .query("SELECT version, key, change, \"column\", old, new FROM history('t')")
        .unwrap();
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let mut got: Vec<Cell> = got
        .rows
        .iter()
        .map(|r| {
            let Value::Int(seq) = r[0] else {
                panic!("version is an integer: {r:?}")
            };
            (
                seq as u64,
                text(&r[1]),
                text(&r[2]),
                text(&r[3]),
                text(&r[4]),
                text(&r[5]),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    // One key, and a join with the current rows.
    let r = engine
        .query("SELECT COUNT(*) FROM history('t', '7') h JOIN t ON t.id = h.key")
        .unwrap();
    let of_7 = want.iter().filter(|c| c.1 == "7").count() as i64;
    let current_7 = db
        .table("t")
        .unwrap()
        .head()
        .unwrap()
        .1
        .windows(3)
        .any(|w| w == b"\n7|");
    assert_eq!(
        r.rows,
        vec![vec![Value::Int(if current_7 { of_7 } else { 0 })]]
    );
    // Bad calls are refused with the usage.
    for bad in [
        "SELECT * FROM history()",
        "SELECT * FROM history('nope')",
        "SELECT * FROM history('t', '1', '2')",
    ] {
        assert!(engine.query(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// `rdb changes`: the feed through the real binary
// ---------------------------------------------------------------------------

/// The (version, table, key) of each line of `rdb changes --format json`.
fn feed_lines(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let field = |name: &str| {
                let at = l.find(&format!("\"{name}\": \"")).unwrap() + name.len() + 5;
                l[at..at + l[at..].find('"').unwrap()].to_string()
            };
            (field("version"), field("table"), field("key"))
        })
        .collect()
}

#[test]
fn the_change_feed_replays_then_follows_every_commit_once_in_order() {
    use std::io::Read;
    let r = crate::cli::Rdb::new();
    r.ok(&["db:init", "shop"]);
    let a = r.file("a.csv", b"id|v\n1|0\n2|0\n");
    r.ok(&["table:create", "shop", "a", "--from", &a]);
    r.ok(&["table:create", "shop", "b", "--from", &a]);
    // A follower from the start of history, reading JSON lines.
    let mut follower = r
        .cmd(
            r.cwd.path(),
            &[
                "changes",
                "shop",
                "--since",
                "2000-01-01T00:00:00Z",
                "--follow",
                "--format",
                "json",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Ten writers at once, each inserting its own row and updating it
    // five times.
    let writers: Vec<std::process::Child> = (0..10)
        .map(|w| {
            let key = 10 + w;
            let script = format!(
                "rdb db:query shop \"INSERT INTO a VALUES ({key}, 0)\" >/dev/null && \
                 for i in 1 2 3 4 5; do rdb db:query shop \"UPDATE a SET v = $i WHERE id = {key}\" >/dev/null || exit 1; done"
            );
            std::process::Command::new("sh")
                .args(["-c", &script])
                .env("REEDBASE_HOME", r.home.path())
                .env("PATH", format!("{}:{}", std::path::Path::new(env!("CARGO_BIN_EXE_rdb")).parent().unwrap().display(), std::env::var("PATH").unwrap_or_default()))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    // Every version of both tables, as the store lists them.
    let versions = |t: &str| -> Vec<String> {
        r.ok(&["version:list", "shop", t, "--format", "csv"])
            .out()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect()
    };
    let mut want: Vec<String> = versions("a");
    want.extend(versions("b"));
    want.sort();
    // The follower catches up within a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut stdout = follower.stdout.take().unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 65536];
    loop {
        let got: std::collections::BTreeSet<String> =
            feed_lines(&text).into_iter().map(|(v, ..)| v).collect();
        if got.len() >= want.len() || std::time::Instant::now() > deadline {
            break;
        }
        let n = stdout.read(&mut buf).unwrap();
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    follower.kill().unwrap();
    let _ = follower.wait();
    let lines = feed_lines(&text);
    // Every commit once, in order (by version name: time, then node).
    let mut seen: Vec<String> = lines.iter().map(|(v, ..)| v.clone()).collect();
    seen.dedup();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in commit order");
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "each version's lines together");
    assert_eq!(seen, want, "every version once");
    // 10 inserts and 50 updates of a, besides the two creations' rows.
    let a_rows = lines
        .iter()
        .filter(|(_, t, k)| t == "a" && k.len() == 2)
        .count();
    assert_eq!(a_rows, 60);
    // Resuming after the last version read gives nothing old, then the new.
    let last = seen.last().unwrap().clone();
    r.ok(&["db:query", "shop", "UPDATE b SET v = 9 WHERE id = 1"]);
    let resumed = r
        .ok(&["changes", "shop", "--since", &last, "--format", "json"])
        .out();
    let resumed = feed_lines(&resumed);
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!((resumed[0].1.as_str(), resumed[0].2.as_str()), ("b", "1"));
}

#[test]
fn two_handles_committing_in_turn_keep_one_block_per_version() {
    let dir = tempfile::tempdir().unwrap();
    let a = new_db(dir.path());
    a.create_table("t", b"id|v\n1|0\n2|0\n", "t").unwrap();
    let b = Database::open(dir.path()).unwrap();
    let opts = CommitOptions::new(Action::Update, "t");
    for i in 1..=12 {
        let db = if i % 2 == 0 { &a } else { &b };
        let t = db.table("t").unwrap();
        let content = format!("id|v\n1|{i}\n2|{}\n", i * 2);
        t.commit(Base::Head, content.into_bytes(), &opts).unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("tables/t").join(ROW_LOG)).unwrap();
    let blocks = text.lines().filter(|l| l.starts_with("V\t")).count();
    assert_eq!(blocks, 13, "one block per version:\n{text}");
    assert_eq!(logged(&a, "t", None), reference(&a, "t"));
    assert!(a.verify().unwrap().problems.is_empty());
}

#[test]
fn a_feed_poll_that_spans_an_update_and_a_drop_names_the_updated_cells() {
    use reedbase::storage::feed::{Feed, FeedFormat};
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", b"id|v\n1|0\n2|0\n", "t").unwrap();
    let mut feed = Feed::from_now(&db, &[]).unwrap();
    let t = db.table("t").unwrap();
    t.commit(
        Base::Head,
        b"id|v\n1|5\n2|0\n".to_vec(),
        &CommitOptions::new(Action::Update, "t"),
    )
    .unwrap();
    db.drop_table("t", "t").unwrap();
    let text = String::from_utf8(feed.poll(&db, FeedFormat::Csv).unwrap()).unwrap();
    assert!(text.contains(",t,1,update,v,0,5\n"), "{text}");
    assert!(text.contains(",t,2,delete,v,0,\n"), "{text}");
    assert!(feed.poll(&db, FeedFormat::Csv).unwrap().is_empty());
}

#[test]
fn rdb_verify_checks_the_row_log_only_when_asked() {
    let r = crate::cli::Rdb::new();
    r.ok(&["db:init", "shop"]);
    let a = r.file("a.csv", b"id|v\n1|a\n2|b\n");
    r.ok(&["table:create", "shop", "t", "--from", &a]);
    r.ok(&["db:query", "shop", "UPDATE t SET v = 'c' WHERE id = 2"]);
    let log = r.db_root("shop").join("tables/t").join(ROW_LOG);
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replace("R\tU\t2\t", "R\tU\t1\t")).unwrap();
    // Plain verify is read-only and does not open the tables.
    r.ok(&["verify", "shop"]);
    let o = r.run(&["verify", "shop", "--row-log"]);
    assert_eq!(o.code, 7, "{}{}", o.out(), o.stderr);
    assert!(
        format!("{}{}", o.out(), o.stderr).contains("rows.log: version 2"),
        "{}{}",
        o.out(),
        o.stderr
    );
}

#[test]
fn a_feed_far_behind_catches_up_in_bounded_steps_in_commit_order() {
    use reedbase::storage::feed::{Feed, FeedFormat};
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("a", b"id|n\n1|0\n", "t").unwrap();
    db.create_table("b", b"id|n\n1|0\n", "t").unwrap();
    let opts = CommitOptions::new(Action::Update, "ann");
    // 600 rounds: a alone, then a frame over a and b, then b alone.
    let mut expected = Vec::new();
    for i in 1..=600u32 {
        match i % 3 {
            0 => {
                let v = db
                    .table("a")
                    .unwrap()
                    .commit(Base::Head, format!("id|n\n1|{i}\n").into_bytes(), &opts)
                    .unwrap();
                expected.push((v.version.name, "a".to_string()));
            }
            1 => {
                let mut f = Frame::begin("both").unwrap();
                for t in ["a", "b"] {
                    f.stage(t, Base::Head, format!("id|n\n1|{i}\n").into_bytes())
                        .unwrap();
                }
                let done = db.commit_frame(f, "bob").unwrap();
                let mut parts: Vec<(String, String)> = done
                    .tables
                    .iter()
                    .map(|(t, c)| (c.version.name.clone(), t.clone()))
                    .collect();
                parts.sort();
                expected.extend(parts);
            }
            _ => {
                let v = db
                    .table("b")
                    .unwrap()
                    .commit(Base::Head, format!("id|n\n1|{i}\n").into_bytes(), &opts)
                    .unwrap();
                expected.push((v.version.name, "b".to_string()));
            }
        }
    }
    let mut feed = Feed::since(&db, &[], 0, None).unwrap();
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut polls = 0;
    loop {
        let out = String::from_utf8(feed.poll(&db, FeedFormat::Csv).unwrap()).unwrap();
        polls += 1;
        for l in out.lines() {
            let f: Vec<&str> = l.split(',').collect();
            if f[7] == "update" {
                lines.push((f[0].to_string(), f[5].to_string()));
            }
        }
        if !feed.behind() {
            break;
        }
    }
    assert!(polls >= 2, "bounded steps: {polls} polls");
    // Every update once, in commit order (time, then name, then table).
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "commit order across polls");
    assert_eq!(lines, expected);
    assert!(feed.poll(&db, FeedFormat::Csv).unwrap().is_empty());
}
