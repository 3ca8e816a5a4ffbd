//! Frames: atomic commits across tables, through the library; the crash
//! matrix of a 3-table frame.

use std::path::Path;
use std::sync::Arc;

use reedbase::merge::{self, MergeError};
use reedbase::storage::fault::{Fault, FaultIo};
use reedbase::storage::{
    Action, Base, CommitOptions, ConflictPolicy, Database, Frame, Io, StorageError,
};

use crate::util::{new_db, packed_and_loose, rows, set_config, set_row};

const TABLES: [&str; 3] = ["accounts", "ledger", "audit"];

fn setup(dir: &Path) -> Database {
    let db = new_db(dir);
    for t in TABLES {
        db.create_table(t, &rows(50), "setup").expect("create");
    }
    db.flush();
    db
}

fn after(table: &str) -> Vec<u8> {
    set_row(&rows(50), "7", &format!("7|moved by frame ({table})|1"))
}

/// Stages the edit of every table, from version 1.
fn frame() -> Frame {
    let mut f = Frame::begin("transfer").expect("begin");
    for t in TABLES {
        f.stage(t, Base::Version(1), after(t)).expect("stage");
    }
    f
}

fn heads(db: &Database) -> Vec<Vec<u8>> {
    TABLES
        .iter()
        .map(|t| db.table(t).expect("table").head().expect("head").1.to_vec())
        .collect()
}

#[test]
fn a_frame_commits_every_table_with_one_timestamp_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(dir.path());
    let f = frame();
    let id = f.id().to_string();
    let done = f.commit(&db, "ann").unwrap();
    assert_eq!(done.id, id);
    assert_eq!(done.tables.len(), 3);
    let versions: Vec<_> = TABLES
        .iter()
        .map(|t| db.table(t).unwrap().version(2).unwrap())
        .collect();
    for v in &versions {
        assert_eq!(v.frame.as_deref(), Some(id.as_str()));
        assert_eq!(v.ts_us, done.ts_us, "one timestamp for the frame");
    }
    assert_eq!(heads(&db), TABLES.map(after).to_vec());
    // Another handle (as another process would) sees the same.
    let other = Database::open(dir.path()).unwrap();
    assert_eq!(heads(&other), TABLES.map(after).to_vec());
    let listed = other.frames().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].name.as_str(),
            listed[0].status,
            listed[0].tables.len()
        ),
        ("transfer", "committed", 3)
    );
    // Every table at the frame's time is new, just before it old.
    for t in TABLES {
        let table = other.table(t).unwrap();
        assert_eq!(table.seq_at(done.ts_us).unwrap(), 2);
        assert_eq!(table.seq_at(done.ts_us - 1).unwrap(), 1);
    }
    assert!(other.verify().unwrap().problems.is_empty());
}

#[test]
fn an_aborted_or_dropped_frame_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(dir.path());
    frame().abort();
    drop(frame());
    assert_eq!(heads(&db), vec![rows(50); 3]);
    assert!(db.frames().unwrap().is_empty());
}

#[test]
fn a_bad_part_fails_the_whole_frame_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(dir.path());
    let mut f = frame();
    f.stage("ledger", Base::Version(1), b"id|name|score\n1|x\n".to_vec())
        .unwrap();
    let err = db.commit_frame(f, "ann").unwrap_err();
    assert!(matches!(err, StorageError::Csv(_)), "{err}");
    assert_eq!(heads(&db), vec![rows(50); 3]);
    assert!(
        db.frames().unwrap().is_empty(),
        "no record for a refused frame"
    );
    // The handles still commit.
    db.commit_frame(frame(), "ann").unwrap();
    assert_eq!(heads(&db), TABLES.map(after).to_vec());
}

#[test]
fn others_commits_merge_and_a_conflict_fails_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(dir.path());
    let opts = CommitOptions::new(Action::Update, "bob");
    // Someone else changes another row of the ledger meanwhile.
    let ledger = db.table("ledger").unwrap();
    let theirs = set_row(&rows(50), "9", "9|bob's edit|9");
    ledger.commit(Base::Head, theirs, &opts).unwrap();
    let (done, overwritten) =
        merge::commit_frame_merging(&db, frame(), "ann", ConflictPolicy::Reject).unwrap();
    assert!(overwritten.is_empty());
    assert_eq!(done.tables.len(), 3);
    let head = ledger.head().unwrap().1;
    let text = String::from_utf8_lossy(&head);
    assert!(text.contains("9|bob's edit|9") && text.contains("7|moved by frame (ledger)|1"));

    // Now a collision on the same cell in one table: nothing of the frame lands.
    let before = heads(&db);
    db.table("audit")
        .unwrap()
        .commit(Base::Head, set_row(&before[2], "3", "3|carol|0"), &opts)
        .unwrap();
    let before = heads(&db);
    let mut f = Frame::begin("second").unwrap();
    for (i, t) in TABLES.iter().enumerate() {
        let seq = db.table(t).unwrap().head_seq().unwrap();
        let base = if *t == "audit" { seq - 1 } else { seq };
        f.stage(t, Base::Version(base), set_row(&before[i], "3", "3|dave|5"))
            .unwrap();
    }
    let err = merge::commit_frame_merging(&db, f, "ann", ConflictPolicy::Reject).unwrap_err();
    assert!(matches!(err, MergeError::Conflicts { .. }), "{err}");
    assert_eq!(heads(&db), before, "a conflict fails the frame as a whole");
}

#[test]
fn every_operation_of_a_three_table_frame_can_fail_or_crash() {
    frame_fault_matrix(false);
}

/// The same, when the frame's commit also seals a pack in each table
/// (versions 1 and 2 of each): a fault while sealing never undoes the
/// frame, and recovery leaves no loose delta a complete pack holds.
#[test]
fn every_operation_of_a_frame_that_seals_packs_can_fail_or_crash() {
    frame_fault_matrix(true);
}

/// Injects a crash, EIO and ENOSPC at every I/O operation of a
/// three-table frame commit: all of the frame or none of it after
/// recovery, every version readable, `verify` clean, the frame retriable.
fn frame_fault_matrix(seal_packs: bool) {
    let prepare = |dir: &Path| {
        setup(dir);
        if seal_packs {
            set_config(dir, "pack_bytes", 1);
        }
    };
    // How many I/O operations does the frame make?
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let counter = Arc::new(FaultIo::counting());
    let db = open_faulty(dir.path(), Arc::clone(&counter));
    db.commit_frame(frame(), "crash")
        .expect("frame without faults");
    let total = counter.ops();
    assert!(total >= 12, "only {total} operations counted");
    drop(db);
    if seal_packs {
        for t in TABLES {
            let (packed, loose) = packed_and_loose(&dir.path().join("tables").join(t));
            assert_eq!(packed.len(), 2, "{t}: versions 1 and 2 packed");
            assert!(loose.is_empty(), "{t}: loose {loose:?}");
        }
    }
    let (old, new) = (vec![rows(50); 3], TABLES.map(after).to_vec());
    let mut checked = 0;
    for n in 1..=total {
        for fault in [
            Fault::Crash,
            Fault::Error(libc::EIO),
            Fault::Error(libc::ENOSPC),
        ] {
            let dir = tempfile::tempdir().unwrap();
            prepare(dir.path());
            let io = Arc::new(FaultIo::new(n, fault));
            let db = open_faulty(dir.path(), Arc::clone(&io));
            let result = db.commit_frame(frame(), "crash");
            if fault == Fault::Crash {
                io.power_cut();
            }
            drop(db);
            let ctx = format!(
                "fault {fault:?} at operation {n} of {total} ({:?})",
                result.as_ref().map(|_| "ok").map_err(|e| e.to_string())
            );
            let db = Database::open(dir.path()).expect("reopen");
            let got = heads(&db);
            if result.is_ok() {
                assert_eq!(got, new, "{ctx}: success returned but the frame is missing");
            } else {
                assert!(got == old || got == new, "{ctx}: half a frame: {got:?}");
            }
            let report = db.verify().expect("verify");
            assert!(report.problems.is_empty(), "{ctx}: {:?}", report.problems);
            for t in TABLES {
                let table = db.table(t).expect("table");
                for seq in 1..=table.head_seq().expect("seq") {
                    table
                        .read_version(seq)
                        .unwrap_or_else(|e| panic!("{ctx}: {t} version {seq}: {e}"));
                }
                let (packed, loose) = packed_and_loose(&dir.path().join("tables").join(t));
                let both: Vec<&String> = loose.iter().filter(|f| packed.contains(*f)).collect();
                assert!(
                    both.is_empty(),
                    "{ctx}: {t}: loose deltas a pack holds: {both:?}"
                );
            }
            // The store keeps working: the frame can be retried.
            if got == old {
                db.commit_frame(frame(), "retry")
                    .unwrap_or_else(|e| panic!("{ctx}: retry failed: {e}"));
                assert_eq!(heads(&db), new, "{ctx}: retry");
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} fault points checked");
}

fn open_faulty(dir: &Path, io: Arc<FaultIo>) -> Database {
    let db = Database::open_with(io as Arc<dyn Io>, dir).expect("open");
    db.set_inline_head_writes(true);
    db
}

#[test]
fn a_frame_whose_writer_died_is_rolled_back_or_forward_on_open() {
    for complete in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let db = setup(dir.path());
        db.commit_frame(frame(), "ann").unwrap();
        db.flush();
        drop(db);
        // Make it look like the writer died before its commit record, with
        // (complete) or without (not) every table's line.
        let frames = dir.path().join("frames");
        for e in std::fs::read_dir(&frames).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".commit") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        if !complete {
            let log = dir.path().join("tables/audit/version.log");
            let text = std::fs::read_to_string(&log).unwrap();
            let first = text.lines().next().unwrap().to_string() + "\n";
            std::fs::write(&log, first).unwrap();
        }
        // While another process holds the tables' locks, a reader cannot
        // decide the frame: it sees none of it.
        let held: Vec<std::fs::File> = TABLES
            .iter()
            .map(|t| {
                let f = std::fs::File::open(dir.path().join(format!("tables/{t}/lock"))).unwrap();
                // SAFETY: flock on an open descriptor we own.
                assert_eq!(
                    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) },
                    0
                );
                f
            })
            .collect();
        let reader = Database::open(dir.path()).unwrap();
        assert_eq!(heads(&reader), vec![rows(50); 3], "complete: {complete}");
        drop((reader, held));
        let db = Database::open(dir.path()).unwrap();
        let want = if complete {
            TABLES.map(after).to_vec()
        } else {
            vec![rows(50); 3]
        };
        assert_eq!(heads(&db), want, "complete: {complete}");
        let notes = db.recovery_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains(if complete { "forward" } else { "back" }),
            "{notes:?}"
        );
        assert!(db.verify().unwrap().problems.is_empty());
        let status = db.frames().unwrap()[0].status;
        assert_eq!(status, if complete { "committed" } else { "aborted" });
    }
}
