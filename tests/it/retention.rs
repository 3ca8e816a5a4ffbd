//! Retention (`version:prune`): a pruned database against a twin that
//! keeps everything (the model: every kept version and the history after
//! the floor must be identical), the crash matrix of a prune, what pins
//! keep, and the command as a user runs it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use reedbase::storage::fault::{Fault, FaultIo};
use reedbase::storage::{
    Action, Base, CommitOptions, ConflictInfo, Database, Io, Pins, RealIo, Retention, StorageError,
    Table,
};

use crate::cli::Rdb;
use crate::util::{Lcg, new_db, render, rows, set_config, set_keyframe_every, set_row};

/// A change as history reports it, without the version's name (the twin's
/// names differ: they are commit times).
type Change = (
    u64,
    String,
    String,
    Option<Vec<String>>,
    Option<Vec<String>>,
);

fn history(t: &Table) -> Vec<Change> {
    t.changes(None)
        .expect("changes")
        .into_iter()
        .map(|(v, c)| (v.seq, c.kind.name().to_string(), c.key, c.old, c.new))
        .collect()
}

/// Checks `a` (pruned) against `b` (the twin): versions below the floor
/// say "pruned", every kept one is byte-identical, history after the
/// floor is the twin's, verify (row log included) is clean.
fn check_against_twin(a: &Database, b: &Database, ctx: &str) {
    let (ta, tb) = (a.table("t").expect("a"), b.table("t").expect("b"));
    let n = tb.head_seq().expect("n");
    assert_eq!(ta.head_seq().expect("n"), n, "{ctx}");
    let oldest = ta.oldest_kept().expect("oldest");
    for s in 1..=n {
        match ta.read_version(s) {
            Ok(bytes) => {
                assert!(
                    s >= oldest,
                    "{ctx}: version {s} below the floor {oldest} read"
                );
                assert_eq!(
                    bytes,
                    tb.read_version(s).expect("twin"),
                    "{ctx}: version {s} differs"
                );
            }
            Err(StorageError::Pruned { seq, oldest: o, .. }) => {
                assert!(s < oldest, "{ctx}: kept version {s} unreadable");
                assert_eq!((seq, o), (s, oldest), "{ctx}");
            }
            Err(e) => panic!("{ctx}: version {s}: {e}"),
        }
    }
    let after = if oldest > 1 { oldest } else { 0 };
    let want: Vec<Change> = history(&tb).into_iter().filter(|c| c.0 > after).collect();
    assert_eq!(history(&ta), want, "{ctx}: history after the floor");
    let report = a.verify().expect("verify");
    assert!(report.problems.is_empty(), "{ctx}: {:?}", report.problems);
}

#[test]
fn pruned_history_matches_a_twin_that_keeps_everything() {
    for seed in 1..=3u64 {
        let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // The pruned side writes keyframes often and packs every run, so
        // floors land on keyframes, chain starts, packs and loose deltas.
        let a0 = new_db(da.path());
        drop(a0);
        set_keyframe_every(da.path(), 6);
        set_config(da.path(), "pack_bytes", 600);
        let mut a = Database::open(da.path()).unwrap();
        let b = new_db(db_dir.path());
        let mut rng = Lcg(seed);
        let mut header: Vec<String> = vec!["id".into(), "a".into(), "b".into()];
        let mut rows: BTreeMap<u64, Vec<String>> = (1..=40)
            .map(|k| (k, vec![format!("a{k}"), "0".into()]))
            .collect();
        for db in [&a, &b] {
            db.create_table("t", &render(&header, &rows), "t").unwrap();
        }
        let opts = CommitOptions::new(Action::Update, "ann");
        let mut prunes = 0;
        for round in 0..90 {
            let mut content = None;
            match rng.next(24) {
                0 => {
                    header.push(format!("c{round}"));
                    for f in rows.values_mut() {
                        f.push(format!("n{round}"));
                    }
                }
                1 => {
                    for k in 1000..2200 {
                        rows.insert(k, vec![format!("bulk{round}"); header.len() - 1]);
                    }
                }
                2 => rows.retain(|k, _| *k < 1000),
                // An emptied table: the next version starts a chain.
                3 => content = Some(Vec::new()),
                4..=6 => {
                    let k = 1 + rng.next(60);
                    if rows.remove(&k).is_none() {
                        rows.insert(k, vec![format!("ins{round}"); header.len() - 1]);
                    }
                }
                _ => {
                    let k = 1 + rng.next(45);
                    if let Some(f) = rows.get_mut(&k) {
                        let c = rng.next(f.len() as u64) as usize;
                        f[c] = format!("v{round}");
                    }
                }
            }
            let content = content.unwrap_or_else(|| render(&header, &rows));
            for db in [&a, &b] {
                db.table("t")
                    .unwrap()
                    .commit(Base::Head, content.clone(), &opts)
                    .unwrap();
            }
            if round % 9 == 8 {
                let t = a.table("t").unwrap();
                let n = t.head_seq().unwrap();
                let from = t.oldest_kept().unwrap();
                let keep_from = from + rng.next(n - from + 1);
                let r = t.prune(keep_from, true, false).unwrap();
                assert_eq!(
                    r.oldest_after,
                    keep_from.max(from),
                    "seed {seed} round {round}"
                );
                prunes += 1;
                drop(t);
                // Now and then another handle reads it: a fresh open, one
                // whose current.csv is gone (the head rebuilt from the floor).
                match rng.next(3) {
                    0 => a = Database::open(da.path()).unwrap(),
                    1 => {
                        a.flush();
                        drop(a);
                        std::fs::remove_file(da.path().join("tables/t/current.csv")).unwrap();
                        a = Database::open(da.path()).unwrap();
                    }
                    _ => {}
                }
                check_against_twin(&a, &b, &format!("seed {seed} round {round}"));
            }
        }
        assert!(prunes >= 9);
        // History stays right for the versions committed after the prunes,
        // and a handle opened afresh agrees.
        a.flush();
        drop(a);
        let a = Database::open(da.path()).unwrap();
        check_against_twin(&a, &b, &format!("seed {seed} at the end"));
    }
}

#[test]
fn another_processs_prune_turns_missing_files_into_pruned_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", &rows(50), "t").unwrap();
    let t = db.table("t").unwrap();
    let mut content = rows(50);
    for i in 0..30 {
        content = set_row(
            &content,
            &format!("{}", i + 1),
            &format!("{}|x{i}|0", i + 1),
        );
        t.commit(
            Base::Head,
            content.clone(),
            &CommitOptions::new(Action::Update, "u"),
        )
        .unwrap();
    }
    let v5 = t.read_version(5).unwrap();
    // Another handle (as another process would) prunes.
    let other = Database::open(dir.path()).unwrap();
    other.table("t").unwrap().prune(20, true, false).unwrap();
    let log_len = || {
        std::fs::metadata(dir.path().join("tables/t/rows.log"))
            .unwrap()
            .len()
    };
    let pruned_log = log_len();
    // This handle commits on the head (no old version read): the prune is
    // seen under the lock, the row log keeps its blocks and grows by one.
    content = set_row(&content, "45", "45|seen|1");
    t.commit(
        Base::Head,
        content.clone(),
        &CommitOptions::new(Action::Update, "u"),
    )
    .unwrap();
    assert!(
        log_len() > pruned_log,
        "the row log was cut, not appended to"
    );
    assert_eq!(
        t.changes(None).unwrap().len(),
        12,
        "versions 21..32, a row each"
    );
    // A prune asking for less than the floor on disk leaves it.
    let r = t.prune(10, true, false).unwrap();
    assert_eq!((r.oldest_before, r.oldest_after), (20, 20));
    // This handle still believes in the old floor: its read of version 3
    // finds files gone and reports the prune; version 20 and on read.
    match t.read_version(3) {
        Err(StorageError::Pruned { oldest: 20, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(t.oldest_kept().unwrap(), 20);
    assert!(t.read_version(20).is_ok());
    drop(v5);
    // And it commits on top (the floor is an anchor for its reads too).
    content = set_row(&content, "40", "40|after|1");
    t.commit(
        Base::Head,
        content.clone(),
        &CommitOptions::new(Action::Update, "u"),
    )
    .unwrap();
    assert!(db.verify().unwrap().problems.is_empty());
}

/// The table's directory entries that belong to versions below `floor`
/// (by name): none may remain after a prune settles.
fn below_floor_files(dir: &Path, t: &Table, floor: u64) -> Vec<String> {
    let names: Vec<String> = t
        .versions()
        .unwrap()
        .into_iter()
        .filter(|v| v.seq < floor)
        .map(|v| v.name)
        .collect();
    let floor_name = t.version(floor).unwrap().name;
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| {
            let pack_below = f
                .strip_suffix(".pack")
                .and_then(|p| p.split_once('_'))
                .is_some_and(|(_, last)| last < floor_name.as_str());
            pack_below || names.iter().any(|n| f.starts_with(&format!("{n}.")))
        })
        .collect()
}

fn prepare_history(dir: &Path) -> Vec<Vec<u8>> {
    let db = new_db(dir);
    drop(db);
    set_config(dir, "pack_bytes", 1500);
    let db = Database::open(dir).unwrap();
    db.create_table("t", &rows(200), "t").unwrap();
    let t = db.table("t").unwrap();
    let mut content = rows(200);
    let mut all = vec![content.clone()];
    for i in 0..29 {
        content = set_row(
            &content,
            &format!("{}", i * 5 + 1),
            &format!("{}|e{i}|9", i * 5 + 1),
        );
        t.commit(
            Base::Head,
            content.clone(),
            &CommitOptions::new(Action::Update, "u"),
        )
        .unwrap();
        all.push(content.clone());
    }
    db.flush();
    all
}

#[test]
fn every_operation_of_a_prune_can_fail_or_crash() {
    const FLOOR: u64 = 21;
    let dir = tempfile::tempdir().unwrap();
    let versions = prepare_history(dir.path());
    let counter = Arc::new(FaultIo::counting());
    let db = Database::open_with(Arc::clone(&counter) as Arc<dyn Io>, dir.path()).unwrap();
    let r = db.table("t").unwrap().prune(FLOOR, true, false).unwrap();
    assert!(r.files > 0 && r.keyframe_bytes > 0, "{r:?}");
    let total = counter.ops();
    assert!(total >= 5, "only {total} operations");
    drop(db);
    let mut checked = 0;
    for n in 1..=total {
        for fault in [
            Fault::Crash,
            Fault::Error(libc::EIO),
            Fault::Error(libc::ENOSPC),
        ] {
            let dir = tempfile::tempdir().unwrap();
            prepare_history(dir.path());
            let io = Arc::new(FaultIo::new(n, fault));
            let db = Database::open_with(Arc::clone(&io) as Arc<dyn Io>, dir.path()).unwrap();
            let result = db.table("t").and_then(|t| t.prune(FLOOR, true, false));
            if fault == Fault::Crash {
                io.power_cut();
            }
            drop(db);
            let ctx = format!("fault {fault:?} at operation {n} of {total}: {result:?}");
            let db = Database::open(dir.path()).unwrap();
            let t = db.table("t").unwrap();
            let oldest = t.oldest_kept().unwrap();
            assert!(oldest == 1 || oldest == FLOOR, "{ctx}: floor {oldest}");
            if result.is_ok() {
                assert_eq!(oldest, FLOOR, "{ctx}: success returned, old floor");
            }
            for (i, want) in versions.iter().enumerate() {
                let s = i as u64 + 1;
                match t.read_version(s) {
                    Ok(b) => assert_eq!(&b, want, "{ctx}: version {s}"),
                    Err(StorageError::Pruned { .. }) if s < oldest => {}
                    Err(e) => panic!("{ctx}: version {s}: {e}"),
                }
            }
            let report = db.verify().unwrap();
            assert!(report.problems.is_empty(), "{ctx}: {:?}", report.problems);
            // The open (with the lock) finished the removal or the rollback.
            let tdir = dir.path().join("tables/t");
            assert!(below_floor_files(&tdir, &t, oldest).is_empty(), "{ctx}");
            let kf: Vec<String> = std::fs::read_dir(&tdir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".csv.xz") || f.contains(".rdb-tmp-"))
                .collect();
            let want_kf = usize::from(oldest == FLOOR);
            assert_eq!(kf.len(), want_kf, "{ctx}: keyframes and temp files {kf:?}");
            // The prune can be retried, and commits go on.
            t.prune(FLOOR, true, false)
                .unwrap_or_else(|e| panic!("{ctx}: retry: {e}"));
            let head = t.head().unwrap().1;
            t.commit(
                Base::Head,
                set_row(&head, "2", "2|after|0"),
                &CommitOptions::new(Action::Update, "u"),
            )
            .unwrap();
            assert!(
                db.verify().unwrap().problems.is_empty(),
                "{ctx}: after retry"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} fault points");
}

#[test]
fn pins_hold_the_floor_and_the_policy_takes_the_union() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", &rows(20), "t").unwrap();
    let t = db.table("t").unwrap();
    let mut content = rows(20);
    for i in 1..=19 {
        content = set_row(&content, &i.to_string(), &format!("{i}|v{i}|0"));
        t.commit(
            Base::Head,
            content.clone(),
            &CommitOptions::new(Action::Update, "u"),
        )
        .unwrap();
    }
    // Version 7's time: keep-since it keeps 7..20; keep 5 keeps 16..20.
    let t7 = t.version(7).unwrap().ts_us;
    let policy = Retention {
        versions: Some(5),
        since_us: Some(t7),
    };
    let dry = db.prune(&[], policy, &Pins::new(), true, true).unwrap();
    assert_eq!(dry[0].report.oldest_after, 7);
    assert_eq!(t.oldest_kept().unwrap(), 1, "a dry run changes nothing");
    // An unresolved conflict started from version 4: it holds the floor.
    let info = ConflictInfo {
        id: "c1".into(),
        table: "t".into(),
        base: 4,
        head: 20,
        cells: 0,
        ts_us: 1,
        kind: String::new(),
    };
    db.record_conflict(&info, &[], b"").unwrap();
    let pins = db.conflict_pins().unwrap();
    let done = db.prune(&[], policy, &pins, true, false).unwrap();
    assert_eq!(done[0].report.oldest_after, 4);
    assert!(
        done[0]
            .held_by
            .as_deref()
            .unwrap_or("")
            .contains("conflict c1"),
        "{:?}",
        done[0].held_by
    );
    assert!(t.read_version(4).is_ok());
    // Resolved, the next prune goes as far as the policy says.
    db.remove_conflict("c1").unwrap();
    let done = db
        .prune(&[], policy, &db.conflict_pins().unwrap(), true, false)
        .unwrap();
    assert_eq!(done[0].report.oldest_after, 7);
    assert!(done[0].report.bytes_freed > 0);
    // A dropped table keeps what table:restore brings back.
    db.create_table("d", &rows(5), "t").unwrap();
    let d = db.table("d").unwrap();
    d.commit(
        Base::Head,
        rows(6),
        &CommitOptions::new(Action::Update, "u"),
    )
    .unwrap();
    db.drop_table("d", "u").unwrap();
    let one = Retention {
        versions: Some(1),
        since_us: None,
    };
    let done = db
        .prune(&["d".to_string()], one, &Pins::new(), true, false)
        .unwrap();
    assert_eq!(done[0].report.oldest_after, 2, "{:?}", done[0]);
    assert!(
        done[0]
            .held_by
            .as_deref()
            .unwrap_or("")
            .contains("table:restore")
    );
    db.restore_table("d", "u").unwrap();
    assert_eq!(db.table("d").unwrap().head().unwrap().1.as_slice(), rows(6));
}

#[test]
fn rdb_version_prune_applies_the_policy_and_keeps_staged_frames_bases() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let mut content = rows(30);
    let f = r.file("t.csv", &content);
    r.ok(&["table:import", "shop", "t", &f]);
    let mut id = String::new();
    for i in 1..=11 {
        content = set_row(&content, &i.to_string(), &format!("{i}|w{i}|1"));
        let f = r.file("t.csv", &content);
        r.ok(&["table:import", "shop", "t", &f]);
        if i == 9 {
            // A frame staged on version 10, committed later.
            id = r
                .ok(&["frame:begin", "shop", "later"])
                .out()
                .trim()
                .to_string();
            let sf = r.file("staged.csv", &set_row(&content, "20", "20|staged|2"));
            r.ok(&["frame:stage", "shop", &id, "t", &sf]);
        }
    }
    let staged = set_row(&content, "20", "20|staged|2");
    let show = |v: &str| r.run(&["version:show", "shop", "t", v]);
    let v10 = show("10").stdout;
    // No policy: nothing happens, and it says why.
    let none = r.ok(&["version:prune", "shop"]);
    assert!(
        none.stderr.contains("keeps every version"),
        "{}",
        none.stderr
    );
    assert_eq!(show("1").code, 0);
    // The policy keeps 3 (10..12).
    set_config(&r.db_root("shop"), "keep_versions", 3);
    let dry = r.ok(&["version:prune", "shop", "--dry-run", "--format", "csv"]);
    assert!(dry.out().contains("t,1,10,9,"), "{}", dry.out());
    assert_eq!(show("1").code, 0, "a dry run removed nothing");
    let done = r.ok(&["version:prune", "shop", "--format", "json"]);
    assert!(
        done.out().contains(r#""oldest_after": "10""#),
        "{}",
        done.out()
    );
    assert!(done.stderr.contains("freed"), "{}", done.stderr);
    let gone = show("9");
    assert_eq!(gone.code, 3, "{}", gone.stderr);
    assert!(gone.stderr.contains("was pruned"), "{}", gone.stderr);
    assert_eq!(show("10").stdout, v10, "kept versions are byte-identical");
    let listed = r
        .ok(&["version:list", "shop", "t", "--format", "csv"])
        .out();
    assert_eq!(listed.lines().count(), 1 + 3, "{listed}");
    // --keep 1 on the command line stops at the staged frame's base...
    let held = r.ok(&[
        "version:prune",
        "shop",
        "t",
        "--keep",
        "1",
        "--format",
        "csv",
    ]);
    assert!(held.out().contains("t,10,10,0,"), "{}", held.out());
    assert!(held.out().contains("staged frame later"), "{}", held.out());
    // ...so the frame still commits, merged onto its base.
    r.ok(&["frame:commit", "shop", &id]);
    let head = r.ok(&["version:show", "shop", "t", "head"]).stdout;
    assert_eq!(head, staged);
    // Then --keep-since a version's name keeps from that version on.
    let name13 = r
        .ok(&["version:list", "shop", "t", "--format", "csv"])
        .out()
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    r.ok(&["version:prune", "shop", "--keep-since", &name13]);
    assert_eq!(show("12").code, 3);
    assert_eq!(show("13").stdout, staged);
    r.ok(&["verify", "shop", "--row-log"]);
    // keep_since in the config: every version is younger than 30 days.
    r.ok(&["db:config", "shop", "keep_versions", "0"]);
    r.ok(&["db:config", "shop", "keep_since", "30d"]);
    assert!(
        r.ok(&["db:config", "shop"])
            .out()
            .contains("keep_since = \"30d\"")
    );
    let kept = r.ok(&["version:prune", "shop", "--format", "csv"]).out();
    assert!(kept.contains("t,13,13,0,"), "{kept}");
    assert_ne!(r.run(&["db:config", "shop", "keep_since", "soon"]).code, 0);
    // A bad duration is a usage error.
    assert_eq!(
        r.run(&["version:prune", "shop", "--keep-since", "soon"])
            .code,
        2
    );
    assert_eq!(r.run(&["version:prune", "shop", "--keep", "0"]).code, 2);
}

/// The single value both tables of the pair hold (a frame sets both).
fn pair_value(db: &Database, table: &str) -> String {
    let head = db.table(table).unwrap().head().unwrap().1;
    String::from_utf8_lossy(&head)
        .lines()
        .nth(1)
        .and_then(|l| l.split('|').nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_backup_taken_while_frames_commit_restores_at_a_frame_boundary_verified() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    for t in ["a", "b"] {
        db.create_table(t, b"id|n\n1|0\n", "t").unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (root, stop) = (dir.path().to_path_buf(), Arc::clone(&stop));
        std::thread::spawn(move || {
            // Another handle, as another process: its own locks.
            let db = Database::open(&root).unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 3000 {
                i += 1;
                let mut f = reedbase::storage::Frame::begin("pair").unwrap();
                for t in ["a", "b"] {
                    f.stage(t, Base::Head, format!("id|n\n1|{i}\n").into_bytes())
                        .unwrap();
                }
                db.commit_frame(f, "w").unwrap();
            }
            i
        })
    };
    let dest = tempfile::tempdir().unwrap();
    let mut restored = 0;
    for round in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(60));
        let r = db.backup(dest.path()).unwrap();
        if round > 0 {
            // Incremental: only what is new (and the logs) was copied.
            assert!(r.copied_bytes < r.bytes, "round {round}: {r:?}");
        }
        let into = tempfile::tempdir().unwrap();
        let root = into.path().join("copy");
        let m = reedbase::storage::backup::restore(&RealIo, dest.path(), &root, "copy").unwrap();
        let copy = Database::open(&root).unwrap();
        assert!(copy.verify().unwrap().problems.is_empty(), "round {round}");
        // Both tables at the same frame: the pair's values agree, and the
        // manifest names the heads the copy has.
        assert_eq!(
            pair_value(&copy, "a"),
            pair_value(&copy, "b"),
            "round {round}"
        );
        for t in &m.tables {
            let ct = copy.table(&t.table).unwrap();
            assert_eq!(ct.head_seq().unwrap(), t.head_seq);
            assert_eq!(ct.version(t.head_seq).unwrap().hash, t.head_hash);
            for s in 1..=t.head_seq {
                ct.read_version(s).unwrap();
            }
        }
        assert_eq!(copy.config().name, "copy");
        assert_eq!(copy.config().id, db.config().id);
        restored += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let frames = writer.join().unwrap();
    assert!(frames > 10, "the writer ran: {frames}");
    assert_eq!(restored, 4);
}

#[test]
fn an_incremental_backup_follows_a_prune_and_a_damaged_object_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    prepare_history(dir.path());
    let db = Database::open(dir.path()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let first = db.backup(dest.path()).unwrap();
    let again = db.backup(dest.path()).unwrap();
    // Nothing new: only the files that change in place are read again.
    assert_eq!(again.copied_files, 0, "{again:?}");
    assert_eq!(again.bytes, first.bytes);
    db.table("t").unwrap().prune(25, true, false).unwrap();
    let after = db.backup(dest.path()).unwrap();
    assert!(after.removed_objects > 0, "{after:?}");
    assert!(after.bytes < first.bytes, "{after:?} vs {first:?}");
    let into = tempfile::tempdir().unwrap();
    let root = into.path().join("copy");
    reedbase::storage::backup::restore(&RealIo, dest.path(), &root, "copy").unwrap();
    let copy = Database::open(&root).unwrap();
    let t = copy.table("t").unwrap();
    assert_eq!(t.oldest_kept().unwrap(), 25);
    assert_eq!(
        t.read_version(27).unwrap(),
        db.table("t").unwrap().read_version(27).unwrap()
    );
    assert!(copy.verify().unwrap().problems.is_empty());
    // One flipped byte in one object: restore refuses, and leaves nothing.
    let m = reedbase::storage::backup::read_manifest(&RealIo, dest.path())
        .unwrap()
        .unwrap();
    let victim = m.files.iter().find(|f| f.path.ends_with(".pack")).unwrap();
    let obj = dest
        .path()
        .join("objects")
        .join(&victim.sha256[..2])
        .join(&victim.sha256);
    let mut bytes = std::fs::read(&obj).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&obj, bytes).unwrap();
    let root2 = into.path().join("copy2");
    match reedbase::storage::backup::restore(&RealIo, dest.path(), &root2, "copy2") {
        Err(StorageError::Corrupt { detail, .. }) => {
            assert!(detail.contains(&victim.path), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!root2.exists());
    // A backup into a directory of another database's backup is refused.
    let other = tempfile::tempdir().unwrap();
    let odb = new_db(other.path());
    assert!(matches!(
        odb.backup(dest.path()),
        Err(StorageError::Invalid { .. })
    ));
}

#[test]
fn rdb_backup_and_restore_as_a_user_runs_them() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("t.csv", &rows(40));
    r.ok(&["table:import", "shop", "t", &f]);
    let f = r.file("t.csv", &set_row(&rows(40), "3", "3|three|3"));
    r.ok(&["table:import", "shop", "t", &f]);
    let b = r.ok(&["backup", "shop", "bk"]);
    assert!(
        b.stderr.contains("backed up shop: 1 tables, 2 versions"),
        "{}",
        b.stderr
    );
    let again = r.ok(&["backup", "shop", "bk"]);
    assert!(again.stderr.contains("in 0 files"), "{}", again.stderr);
    let res = r.ok(&["restore", "bk", "shop2"]);
    assert!(res.stderr.contains("verify ok"), "{}", res.stderr);
    assert_eq!(
        r.ok(&["version:show", "shop2", "t", "head"]).stdout,
        set_row(&rows(40), "3", "3|three|3")
    );
    assert_eq!(r.ok(&["version:show", "shop2", "t", "1"]).stdout, rows(40));
    // A name in use is refused; a damaged backup exits 7 and registers nothing.
    assert_eq!(r.run(&["restore", "bk", "shop2"]).code, 5);
    let objects = r.cwd.path().join("bk/objects");
    for d in std::fs::read_dir(&objects).unwrap().flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let mut b = std::fs::read(f.path()).unwrap();
            b.push(b'x');
            std::fs::write(f.path(), b).unwrap();
        }
    }
    let bad = r.run(&["restore", "bk", "shop3"]);
    assert_eq!(bad.code, 7, "{}", bad.stderr);
    assert!(bad.stderr.contains("checksum"), "{}", bad.stderr);
    assert_eq!(r.run(&["db:info", "shop3"]).code, 3);
    // The backup directory must not be inside the database.
    let inside = r.db_root("shop").join("bk");
    assert_eq!(
        r.run(&["backup", "shop", &inside.to_string_lossy()]).code,
        2
    );
}

#[test]
fn a_prune_that_would_grow_the_table_does_nothing_unless_exact() {
    // Varied rows (bzip2, which stores the table's creation, beats the
    // keyframe's XZ on them) and few small edits: a keyframe at the new
    // oldest version would take more space than everything it frees.
    let mut rng = Lcg(3);
    let mut content = String::from("id|name|score\n");
    for i in 1..=6000 {
        content.push_str(&format!(
            "{i}|n{}|{}\n",
            rng.next(1_000_000),
            rng.next(1_000_000_000)
        ));
    }
    let mut content = content.into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", &content, "t").unwrap();
    let t = db.table("t").unwrap();
    for i in 1..=5 {
        content = set_row(&content, &i.to_string(), &format!("{i}|e{i}|0"));
        t.commit(
            Base::Head,
            content.clone(),
            &CommitOptions::new(Action::Update, "u"),
        )
        .unwrap();
    }
    let keep = Retention {
        versions: Some(2),
        since_us: None,
    };
    let dry = db.prune(&[], keep, &Pins::new(), false, true).unwrap();
    // Only version 1 (the chain start) is an anchor below 5: nothing to do.
    assert!(dry[0].report.held_for_space, "{:?}", dry[0]);
    assert_eq!(dry[0].report.oldest_after, 1);
    assert!(dry[0].held_by.as_deref().unwrap_or("").contains("--exact"));
    let exact = db.prune(&[], keep, &Pins::new(), true, true).unwrap();
    let r = &exact[0].report;
    assert_eq!(r.oldest_after, 5);
    assert!(r.keyframe_bytes > r.bytes_freed + r.row_log_freed, "{r:?}");
    // The default changed nothing; --exact prunes.
    db.prune(&[], keep, &Pins::new(), false, false).unwrap();
    assert_eq!(t.oldest_kept().unwrap(), 1);
    db.prune(&[], keep, &Pins::new(), true, false).unwrap();
    assert_eq!(t.oldest_kept().unwrap(), 5);
    assert_eq!(t.read_version(6).unwrap(), content);
    assert!(db.verify().unwrap().problems.is_empty());
}
