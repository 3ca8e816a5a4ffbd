//! The crash matrix: every I/O operation of a commit, made to fail (EIO,
//! ENOSPC) or to crash the machine (torn write, then everything not durable
//! is lost). After each, the store must reopen to exactly the old or the new
//! version, pass `verify`, and hold no leftovers; a call that returned
//! success must have left the new version. The commit that seals a pack
//! (docs/FORMAT.md section 4a) is one of the operations: after a crash at any
//! point of it, every version reads back and no loose delta that a complete
//! pack holds remains.

use std::path::Path;
use std::sync::Arc;

use reedbase::storage::fault::{Fault, FaultIo};
use reedbase::storage::{Action, Base, CommitOptions, Database, Io, RealIo};

use crate::util::{packed_and_loose, rows, set_config, set_keyframe_every, set_row};

/// One operation under test, run against a prepared database.
struct Scenario {
    name: &'static str,
    /// Builds the starting state (with the real file system).
    setup: fn(&Database),
    /// The operation; returns the content the table should hold after it.
    op: fn(&Database) -> reedbase::storage::Result<Vec<u8>>,
    /// The table's content before the operation.
    before: fn() -> Vec<u8>,
    after: fn() -> Vec<u8>,
}

fn base() -> Vec<u8> {
    rows(200)
}

fn edited() -> Vec<u8> {
    set_row(&rows(200), "100", "100|edited|1")
}

fn setup_table(db: &Database) {
    db.create_table("t", &base(), "setup").expect("create");
}

fn commit_edit(db: &Database) -> reedbase::storage::Result<Vec<u8>> {
    let t = db.table("t")?;
    t.commit(
        Base::Version(1),
        edited(),
        &CommitOptions::new(Action::Update, "crash"),
    )?;
    Ok(edited())
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "create table",
            setup: |_| {},
            op: |db| db.create_table("t", &base(), "crash").map(|_| base()),
            before: Vec::new,
            after: base,
        },
        Scenario {
            name: "commit a 1-row edit",
            setup: setup_table,
            op: commit_edit,
            before: base,
            after: edited,
        },
        Scenario {
            name: "commit with a keyframe due",
            setup: |db| {
                setup_table(db);
                set_keyframe_every(db.root(), 1);
            },
            op: commit_edit,
            before: base,
            after: edited,
        },
        Scenario {
            name: "commit that seals a pack",
            setup: |db| {
                setup_table(db);
                // The next commit's run (versions 1 and 2) fills a pack.
                set_config(db.root(), "pack_bytes", 1);
            },
            op: commit_edit,
            before: base,
            after: edited,
        },
        Scenario {
            name: "drop table",
            setup: setup_table,
            op: |db| db.drop_table("t", "crash").map(|_| Vec::new()),
            before: base,
            after: Vec::new,
        },
    ]
}

/// Prepares a fresh store for `s` in `dir`.
fn prepare(s: &Scenario, dir: &Path) {
    let db = Database::init(Arc::new(RealIo), dir, "shop", '|').expect("init");
    (s.setup)(&db);
    db.flush();
}

fn open_faulty(dir: &Path, io: Arc<FaultIo>) -> Database {
    let db = Database::open_with(io as Arc<dyn Io>, dir).expect("open");
    db.set_inline_head_writes(true);
    db
}

/// The table's content after reopening with the real file system ("" when
/// it has no version or is dropped).
fn reopened_content(dir: &Path, ctx: &str) -> Vec<u8> {
    let db = Database::open(dir).expect("reopen");
    let content = match db.table("t") {
        Ok(t) => t.head().expect("head").1.as_ref().clone(),
        Err(_) => Vec::new(),
    };
    let report = db.verify().expect("verify");
    assert!(
        report.problems.is_empty(),
        "{ctx}: verify after recovery: {:?}",
        report.problems
    );
    // No version is lost: each reads back (checked against its hash)...
    if let Ok(t) = db.table("t") {
        let n = t.head_seq().expect("seq");
        for seq in 1..=n {
            t.read_version(seq)
                .unwrap_or_else(|e| panic!("{ctx}: version {seq}: {e}"));
        }
        if n >= 2 && !t.read_version(1).expect("v1").is_empty() {
            assert_eq!(t.read_version(1).expect("v1"), base(), "{ctx}: version 1");
        }
    }
    // ...and recovery left no loose delta that a complete pack holds.
    let (packed, loose) = packed_and_loose(&dir.join("tables/t"));
    let both: Vec<&String> = loose.iter().filter(|f| packed.contains(*f)).collect();
    assert!(
        both.is_empty(),
        "{ctx}: loose deltas a pack holds: {both:?}"
    );
    content
}

fn leftovers(dir: &Path) -> Vec<String> {
    let tdir = dir.join("tables/t");
    let Ok(rd) = std::fs::read_dir(&tdir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rdb-tmp-"))
        .collect()
}

#[test]
fn every_operation_of_a_commit_can_fail_or_crash() {
    let mut checked = 0;
    for s in scenarios() {
        // How many mutations does the operation make?
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(&s, dir.path());
        let counter = Arc::new(FaultIo::counting());
        let db = open_faulty(dir.path(), Arc::clone(&counter));
        (s.op)(&db).expect("operation without faults");
        let total = counter.ops();
        assert!(total >= 4, "{}: only {total} operations counted", s.name);
        drop(db);
        if s.name.contains("pack") {
            let (packed, loose) = packed_and_loose(&dir.path().join("tables/t"));
            assert_eq!(packed.len(), 2, "{}: versions 1 and 2 packed", s.name);
            assert!(loose.is_empty(), "{}: loose {loose:?}", s.name);
        }

        for n in 1..=total {
            for fault in [
                Fault::Crash,
                Fault::Error(libc::EIO),
                Fault::Error(libc::ENOSPC),
            ] {
                let dir = tempfile::tempdir().expect("tempdir");
                prepare(&s, dir.path());
                let io = Arc::new(FaultIo::new(n, fault));
                let db = open_faulty(dir.path(), Arc::clone(&io));
                let result = (s.op)(&db);
                if fault == Fault::Crash {
                    io.power_cut();
                } else if let Err(e) = &result {
                    // A transient error reaches the caller with its errno...
                    let errno = match e {
                        reedbase::storage::StorageError::Io { source, .. } => source.raw_os_error(),
                        _ => None,
                    };
                    if let Fault::Error(want) = fault {
                        assert_eq!(errno, Some(want), "{} op {n}: {e}", s.name);
                    }
                }
                drop(db);
                let outcome = result.as_ref().map(|_| "ok").map_err(|e| e.to_string());
                let ctx = format!(
                    "{}: fault {fault:?} at operation {n} of {total} ({outcome:?})",
                    s.name
                );
                let content = reopened_content(dir.path(), &ctx);
                let (before, after) = ((s.before)(), (s.after)());

                if result.is_ok() {
                    assert_eq!(
                        content, after,
                        "{ctx}: success returned but the new version is missing"
                    );
                } else {
                    assert!(
                        content == before || content == after,
                        "{ctx}: neither old nor new content"
                    );
                }
                assert!(
                    leftovers(dir.path()).is_empty(),
                    "{ctx}: leftovers {:?}",
                    leftovers(dir.path())
                );
                // ...and the store keeps working: the operation can be retried.
                if result.is_err() && content == before {
                    let db = Database::open(dir.path()).expect("reopen");
                    (s.op)(&db).unwrap_or_else(|e| panic!("{ctx}: retry failed: {e}"));
                    drop(db);
                    assert_eq!(reopened_content(dir.path(), &ctx), after, "{ctx}: retry");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} fault points checked");
}

#[test]
fn a_failed_commit_leaves_the_handle_usable() {
    // Same process, same handle: after an injected error the next commit works.
    let dir = tempfile::tempdir().expect("tempdir");
    prepare(&scenarios()[1], dir.path());
    for n in 1..=6 {
        let io = Arc::new(FaultIo::new(n, Fault::Error(libc::EIO)));
        let db = open_faulty(dir.path(), Arc::clone(&io));
        let t = db.table("t").expect("table");
        let seq = t.head_seq().expect("seq");
        let (_, head) = t.head().expect("head");
        let next = set_row(&head, "7", &format!("7|attempt {n}|{n}"));
        let first = t.commit(
            Base::Version(seq),
            next.clone(),
            &CommitOptions::new(Action::Update, "x"),
        );
        let again = t.commit(
            Base::Head,
            next.clone(),
            &CommitOptions::new(Action::Update, "x"),
        );
        assert!(
            again.is_ok(),
            "op {n}: retry after {first:?} failed: {again:?}"
        );
        assert_eq!(t.head().expect("head").1.as_slice(), next.as_slice());
        drop(t);
        drop(db);
        assert_eq!(reopened_content(dir.path(), "handle reuse"), next);
    }
}
