//! The storage engine through its public API.

use reedbase::storage::{
    Action, Base, CommitOptions, CsvErrorKind, Database, Io, RealIo, StorageError,
};

use std::sync::Arc;

use crate::util::{RecordingIo, USERS, new_db, rows, set_row};

fn opts() -> CommitOptions<'static> {
    CommitOptions::new(Action::Update, "tester")
}

#[test]
fn create_commit_read_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let first = db.create_table("users", USERS, "tester").unwrap();
    assert_eq!(
        (first.version.seq, first.version.rows, first.created),
        (1, 3, true)
    );
    let t = db.table("users").unwrap();
    let mut expected = vec![USERS.to_vec()];
    for i in 0..30 {
        let prev = expected.last().unwrap().clone();
        let next = set_row(&prev, "2", &format!("2|Bob|bob{i}@example.com|{}", 27 + i));
        let c = t
            .commit(Base::Version(i + 1), next.clone(), &opts())
            .unwrap();
        assert_eq!(c.version.seq, i + 2);
        expected.push(next);
    }
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            &t.read_version(i as u64 + 1).unwrap(),
            want,
            "version {}",
            i + 1
        );
    }
    // The head is plain CSV on disk, readable without ReedBase.
    t.flush();
    let on_disk = std::fs::read(dir.path().join("tables/users/current.csv")).unwrap();
    assert_eq!(&on_disk, expected.last().unwrap());
    // Reopen from disk: same history.
    drop(t);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let t = db.table("users").unwrap();
    assert_eq!(t.versions().unwrap().len(), 31);
    assert_eq!(&t.read_version(5).unwrap(), &expected[4]);
    assert!(db.verify().unwrap().problems.is_empty());
}

#[test]
fn identical_content_creates_no_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("users", USERS, "tester").unwrap();
    let t = db.table("users").unwrap();
    let c = t.commit(Base::Head, USERS.to_vec(), &opts()).unwrap();
    assert!(!c.created);
    assert_eq!(t.versions().unwrap().len(), 1);
}

#[test]
fn stale_base_is_a_typed_error_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("users", USERS, "tester").unwrap();
    let t = db.table("users").unwrap();
    let v2 = set_row(USERS, "1", "1|Alice|a@x.org|35");
    t.commit(Base::Version(1), v2.clone(), &opts()).unwrap();
    let v3 = set_row(USERS, "2", "2|Bob|b@x.org|28");
    match t.commit(Base::Version(1), v3.clone(), &opts()) {
        Err(StorageError::BaseMismatch { base: 1, head: 2 }) => {}
        other => panic!("expected BaseMismatch, got {other:?}"),
    }
    assert_eq!(t.head().unwrap().1.as_slice(), v2.as_slice());
}

#[test]
fn invalid_content_is_rejected_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("users", &rows(100), "tester").unwrap();
    let t = db.table("users").unwrap();
    let base = rows(100);
    let cases: Vec<(Vec<u8>, u64, CsvErrorKind)> = vec![
        (
            set_row(&base, "50", "50|x"),
            51,
            CsvErrorKind::FieldCount {
                expected: 3,
                found: 2,
            },
        ),
        (
            set_row(&base, "50", "7|dup|1"),
            51,
            CsvErrorKind::DuplicateKey {
                key: "7".into(),
                first_line: Some(8),
            },
        ),
        (set_row(&base, "50", "|nokey|1"), 51, CsvErrorKind::EmptyKey),
        (
            set_row(&base, "50", "50|a\"b|1"),
            51,
            CsvErrorKind::QuoteInUnquotedField,
        ),
        (
            set_row(&base, "50", "50|\"ab\"c|1"),
            51,
            CsvErrorKind::TextAfterClosingQuote,
        ),
        (
            set_row(&base, "100", "100|\"open|1"),
            101,
            CsvErrorKind::UnterminatedQuote,
        ),
        (
            set_row(&base, "50", "50|caf\u{e9}|1")
                .into_iter()
                .map(|b| if b == 0xA9 { 0xFF } else { b })
                .collect(),
            51,
            CsvErrorKind::NotUtf8,
        ),
    ];
    for (content, line, kind) in cases {
        match t.commit(Base::Head, content.clone(), &opts()) {
            Err(StorageError::Csv(e)) => {
                assert_eq!(e.kind, kind);
                assert_eq!(e.line, line, "{e}");
            }
            other => panic!("expected a CSV error ({kind:?}), got {other:?}"),
        }
    }
    // Nothing was committed; the head is intact.
    assert_eq!(t.versions().unwrap().len(), 1);
    assert_eq!(t.head().unwrap().1.as_slice(), base.as_slice());
    assert!(db.verify().unwrap().problems.is_empty());
}

#[test]
fn header_change_and_quoted_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table(
        "notes",
        b"id|text\n1|\"line one\nline two\"\n2|plain\n",
        "tester",
    )
    .unwrap();
    let t = db.table("notes").unwrap();
    // Rename a column: every row is checked again.
    let v2 = b"id|body\n1|\"line one\nline two\"\n2|plain\n".to_vec();
    t.commit(Base::Head, v2.clone(), &opts()).unwrap();
    // Add a column: rows with the old field count are rejected.
    let bad = b"id|body|extra\n1|\"line one\nline two\"|x\n2|plain\n".to_vec();
    assert!(matches!(
        t.commit(Base::Head, bad.clone(), &opts()),
        Err(StorageError::Csv(_))
    ));
    let good = b"id|body|extra\n1|\"line one\nline two\"|x\n2|plain|y\n".to_vec();
    t.commit(Base::Head, good.clone(), &opts()).unwrap();
    assert_eq!(t.columns().unwrap(), vec!["id", "body", "extra"]);
    assert_eq!(t.read_version(2).unwrap(), v2);
}

#[test]
fn drop_and_restore_keep_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("users", USERS, "tester").unwrap();
    db.drop_table("users", "tester").unwrap();
    db.flush();
    assert!(db.live_table("users").is_err());
    assert!(!dir.path().join("tables/users/current.csv").exists());
    db.restore_table("users", "tester").unwrap();
    let t = db.live_table("users").unwrap();
    assert_eq!(t.head().unwrap().1.as_slice(), USERS);
    let actions: Vec<String> = t
        .versions()
        .unwrap()
        .into_iter()
        .map(|v| v.action)
        .collect();
    assert_eq!(actions, ["create", "drop", "restore"]);
    assert!(db.verify().unwrap().problems.is_empty());
}

#[test]
fn keyframes_bound_the_chain_and_every_version_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    // Small keyframe interval to exercise anchors on both sides.
    crate::util::set_keyframe_every(dir.path(), 7);
    let db = {
        drop(db);
        Database::open(dir.path()).unwrap()
    };
    db.create_table("t", &rows(50), "tester").unwrap();
    let t = db.table("t").unwrap();
    let mut expected = vec![rows(50)];
    for i in 0..40u64 {
        let key = (i * 13 % 50 + 1).to_string();
        let next = set_row(
            expected.last().unwrap(),
            &key,
            &format!("{key}|edited {i}|{i}"),
        );
        t.commit(Base::Head, next.clone(), &opts()).unwrap();
        expected.push(next);
    }
    let keyframes = crate::util::files_ending(&dir.path().join("tables/t"), ".csv.xz");
    assert_eq!(keyframes, 5, "a keyframe every 7 versions after the first");
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            &t.read_version(i as u64 + 1).unwrap(),
            want,
            "version {}",
            i + 1
        );
    }
    assert!(db.verify().unwrap().problems.is_empty());
}

#[test]
fn another_process_commit_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let db_a = new_db(dir.path());
    db_a.create_table("users", USERS, "a").unwrap();
    let ta = db_a.table("users").unwrap();
    // A second, independent handle stands for another process.
    let db_b = Database::open(dir.path()).unwrap();
    let tb = db_b.table("users").unwrap();
    let v2 = set_row(USERS, "1", "1|Alice|new@example.com|34");
    tb.commit(Base::Version(1), v2.clone(), &opts()).unwrap();
    assert_eq!(ta.head_seq().unwrap(), 2);
    assert_eq!(ta.head().unwrap().1.as_slice(), v2.as_slice());
    let v3 = set_row(&v2, "2", "2|Bob|new@example.com|27");
    assert_eq!(
        ta.commit(Base::Version(2), v3.clone(), &opts())
            .unwrap()
            .version
            .seq,
        3
    );
}

/// `bspatch base out patch`, where `patch` holds `stored`, a delta as a
/// loose file holds it (XZ-compressed when it ends with `.xz`: `xz -dc`
/// gives the plain patch).
fn standard_bspatch(
    dir: &std::path::Path,
    base: &std::path::Path,
    out: &std::path::Path,
    file: &str,
    stored: &[u8],
) {
    let patch = dir.join(format!("extracted-{file}"));
    std::fs::write(&patch, stored).unwrap();
    let patch = if file.ends_with(".xz") {
        let plain = std::process::Command::new("xz")
            .arg("-dc")
            .arg(&patch)
            .output()
            .unwrap();
        assert!(plain.status.success());
        let p = dir.join(format!("plain-{file}"));
        std::fs::write(&p, plain.stdout).unwrap();
        p
    } else {
        patch
    };
    let st = std::process::Command::new("bspatch")
        .arg(base)
        .arg(out)
        .arg(&patch)
        .status()
        .unwrap();
    assert!(st.success(), "bspatch {file}");
}

#[test]
fn packed_deltas_are_standard_bsdiff_by_offset_and_length() {
    // Each entry of a pack, cut out by the offset and length of its index
    // line, is the delta exactly: a standard bspatch applies it.
    if std::process::Command::new("bspatch")
        .arg("-h")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "bspatch must be installed under CI"
        );
        eprintln!("bspatch not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    drop(new_db(dir.path()));
    crate::util::set_config(dir.path(), "pack_bytes", 2000);
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", &rows(300), "tester").unwrap();
    let t = db.table("t").unwrap();
    let mut content = rows(300);
    for i in 0..20 {
        let key = (i * 37 % 300 + 1).to_string();
        content = set_row(&content, &key, &format!("{key}|packed {i}|{i}"));
        t.commit(Base::Head, content.clone(), &opts()).unwrap();
    }
    let tdir = dir.path().join("tables/t");
    let work = tempfile::tempdir().unwrap();
    // Every delta: from a pack by offset and length, or its loose file.
    let mut packed = std::collections::HashMap::new();
    for e in std::fs::read_dir(&tdir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            let bytes = std::fs::read(&p).unwrap();
            for entry in reedbase::storage::pack::parse(&bytes).unwrap() {
                let (off, len) = (entry.offset as usize, entry.len as usize);
                packed.insert(entry.file, bytes[off..off + len].to_vec());
            }
        }
    }
    assert!(packed.len() >= 10, "only {} deltas packed", packed.len());
    let empty = work.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut base = empty;
    let mut from_packs = 0;
    for v in t.versions().unwrap() {
        let (file, stored) = [".bsdiff", ".bsdiff.xz"]
            .iter()
            .find_map(|ext| {
                let file = format!("{}{ext}", v.name);
                if let Some(b) = packed.get(&file) {
                    from_packs += 1;
                    return Some((file, b.clone()));
                }
                std::fs::read(tdir.join(&file)).ok().map(|b| (file, b))
            })
            .unwrap();
        let out = work.path().join(format!("v{}", v.seq));
        standard_bspatch(work.path(), &base, &out, &file, &stored);
        assert_eq!(std::fs::read(&out).unwrap(), t.read_version(v.seq).unwrap());
        base = out;
    }
    assert_eq!(from_packs, packed.len());
}

#[test]
fn a_damaged_pack_is_named_by_verify_and_its_versions_fail_to_read() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_db(dir.path()));
    crate::util::set_config(dir.path(), "pack_bytes", 600);
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", &rows(50), "tester").unwrap();
    let t = db.table("t").unwrap();
    let mut content = rows(50);
    for i in 0..12 {
        let key = (i * 7 % 50 + 1).to_string();
        content = set_row(&content, &key, &format!("{key}|x {i}|{i}"));
        t.commit(Base::Head, content.clone(), &opts()).unwrap();
    }
    assert!(db.verify().unwrap().problems.is_empty());
    drop(t);
    drop(db);
    let tdir = dir.path().join("tables/t");
    let mut packs: Vec<_> = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    packs.sort();
    assert!(packs.len() >= 2, "{packs:?}");
    // Damage the first pack's first entry: its versions are gone (no loose
    // copy), so open leaves it in place and verify names it.
    let mut bytes = std::fs::read(&packs[0]).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&packs[0], &bytes).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(
        packs[0].exists(),
        "a damaged pack with no loose copies was removed"
    );
    let report = db.verify().unwrap();
    let name = packs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report.problems.iter().any(|p| p.what.contains(&name)),
        "{:?}",
        report.problems
    );
    // The head is still there; an old version behind the damage fails with
    // a typed error, not a panic or wrong bytes.
    let t = db.table("t").unwrap();
    assert_eq!(t.head().unwrap().1.as_slice(), content.as_slice());
    let r = t.read_version(1);
    assert!(matches!(r, Err(StorageError::Corrupt { .. })), "{r:?}");
}

#[test]
fn one_row_updates_allocate_under_600_bytes_each_keyframes_included() {
    // 1000 one-row updates of a 10,000-row table: the blocks the table's
    // directory gains (st_blocks * 512: deltas, packs, keyframes, the log),
    // per update, with the default configuration. The row log, an index
    // derived from them (rebuilt when removed), is measured apart.
    use std::os::unix::fs::MetadataExt;
    fn allocated(dir: &std::path::Path) -> (u64, u64) {
        let (mut blocks, mut len) = (0, 0);
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_name() == reedbase::storage::ROW_LOG {
                continue;
            }
            let m = e.metadata().unwrap();
            blocks += m.blocks() * 512;
            len += m.len();
        }
        (blocks, len)
    }
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let mut content = rows(10_000);
    db.create_table("t", &content, "tester").unwrap();
    let t = db.table("t").unwrap();
    t.flush();
    let tdir = dir.path().join("tables/t");
    let (blocks0, len0) = allocated(&tdir);
    let updates = 1000u64;
    for i in 0..updates {
        let key = (i * 7919 % 10_000 + 1).to_string();
        content = set_row(&content, &key, &format!("{key}|updated {i}|{i}"));
        t.commit(Base::Head, content.clone(), &opts()).unwrap();
    }
    t.flush();
    let (blocks1, len1) = allocated(&tdir);
    let per_update = (blocks1 - blocks0) / updates;
    let keyframes = crate::util::files_ending(&tdir, ".csv.xz");
    let packs = crate::util::files_ending(&tdir, ".pack");
    eprintln!(
        "per 1-row update: {per_update} B allocated, {} B logical; {keyframes} keyframes, {packs} packs",
        (len1 - len0) / updates
    );
    assert!(
        keyframes >= 1,
        "no keyframe in 1000 versions of 10,000 rows"
    );
    assert!(per_update < 600, "{per_update} B allocated per update");
    let row_log = std::fs::metadata(tdir.join(reedbase::storage::ROW_LOG))
        .unwrap()
        .len();
    eprintln!("row log: {} B per 1-row update", row_log / updates);
    assert!(
        row_log / updates < 120,
        "row log: {} B per update",
        row_log / updates
    );
    for seq in [1, 2, 500, 999, 1001] {
        let v = t.read_version(seq).unwrap();
        assert_eq!(v.len() as u64, t.version(seq).unwrap().size);
    }
}

#[test]
fn deltas_are_standard_bsdiff() {
    // A standard bspatch (the `bsdiff` package's) applies every stored delta.
    if std::process::Command::new("bspatch")
        .arg("-h")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "bspatch must be installed under CI"
        );
        eprintln!("bspatch not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    drop(new_db(dir.path()));
    // Loose files here; packed_deltas_are_standard_bsdiff_by_offset_and_length
    // checks packed ones.
    crate::util::set_config(dir.path(), "pack_bytes", 1 << 40);
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", &rows(2000), "tester").unwrap();
    let t = db.table("t").unwrap();
    let v2 = set_row(&rows(2000), "1000", "1000|changed|1");
    t.commit(Base::Head, v2.clone(), &opts()).unwrap();
    let tdir = dir.path().join("tables/t");
    let mut deltas: Vec<_> = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".bsdiff"))
        .collect();
    deltas.sort();
    assert_eq!(deltas.len(), 2);
    let empty = tdir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut base = empty.clone();
    for (i, d) in deltas.iter().enumerate() {
        let mut d = d.clone();
        if d.to_string_lossy().ends_with(".xz") {
            // XZ where that made it smaller: `xz -dc` gives the plain patch.
            let plain = std::process::Command::new("xz")
                .arg("-dc")
                .arg(&d)
                .output()
                .unwrap();
            assert!(plain.status.success());
            d = tdir.join(format!("plain{i}.bsdiff"));
            std::fs::write(&d, plain.stdout).unwrap();
        }
        let out = tdir.join(format!("out{i}"));
        let st = std::process::Command::new("bspatch")
            .arg(&base)
            .arg(&out)
            .arg(d)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            t.read_version(i as u64 + 1).unwrap()
        );
        base = out;
    }
}

#[test]
fn threads_committing_and_reading_one_table_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(new_db(dir.path()));
    db.create_table("t", &rows(40), "tester").unwrap();
    let writers: Vec<_> = (1..=8)
        .map(|w| {
            let db = std::sync::Arc::clone(&db);
            std::thread::spawn(move || {
                let t = db.table("t").unwrap();
                for round in 0..5 {
                    // Read, change this writer's own row, commit against what was read.
                    loop {
                        let (seq, head) = t.head().unwrap();
                        let next = set_row(
                            &head,
                            &w.to_string(),
                            &format!("{w}|writer {w} round {round}|{round}"),
                        );
                        match t.commit(Base::Version(seq), next, &opts()) {
                            Ok(_) => break,
                            Err(StorageError::BaseMismatch { .. }) => continue,
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let reader = {
        let db = std::sync::Arc::clone(&db);
        std::thread::spawn(move || {
            let t = db.table("t").unwrap();
            for _ in 0..200 {
                let (seq, head) = t.head().unwrap();
                assert_eq!(t.read_version(seq).unwrap(), *head);
                assert!(t.versions().unwrap().len() as u64 >= seq);
            }
        })
    };
    for h in writers {
        h.join().unwrap();
    }
    reader.join().unwrap();
    let t = db.table("t").unwrap();
    let head = String::from_utf8(t.head().unwrap().1.as_ref().clone()).unwrap();
    for w in 1..=8 {
        assert!(
            head.contains(&format!("{w}|writer {w} round 4|4\n")),
            "writer {w} lost: {head}"
        );
    }
    assert_eq!(t.versions().unwrap().len(), 41);
    assert!(db.verify().unwrap().problems.is_empty());
}

#[test]
fn a_missing_or_damaged_log_never_deletes_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", &rows(30), "tester").unwrap();
    let t = db.table("t").unwrap();
    for i in 0..3 {
        let next = set_row(&rows(30), "5", &format!("5|v{i}|{i}"));
        t.commit(Base::Head, next, &opts()).unwrap();
    }
    drop(t);
    drop(db);
    let tdir = dir.path().join("tables/t");
    let deltas = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".bsdiff")
            })
            .count()
    };
    assert_eq!(deltas(&tdir), 4);

    // A complete last line with a bad CRC is damage: reported, nothing removed.
    let log = tdir.join("version.log");
    let original = std::fs::read(&log).unwrap();
    let mut damaged = original.clone();
    let n = damaged.len();
    damaged[n - 20] ^= 1;
    std::fs::write(&log, &damaged).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(matches!(db.table("t"), Err(StorageError::Corrupt { .. })));
    let report = db.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("version.log line 4")),
        "{:?}",
        report.problems
    );
    drop(db);
    assert_eq!(deltas(&tdir), 4);

    // A missing log with several deltas is damage too, not a crashed commit.
    std::fs::remove_file(&log).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(db.table("t").is_err());
    drop(db);
    assert_eq!(deltas(&tdir), 4, "history must survive a lost log");
    std::fs::write(&log, &original).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.table("t").unwrap().versions().unwrap().len(), 4);
}

#[test]
fn realistic_tables_with_quoted_multiline_text_round_trip() {
    for delimiter in ['|', ','] {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::init(
            std::sync::Arc::new(reedbase::storage::RealIo),
            dir.path(),
            "gen",
            delimiter,
        )
        .unwrap();
        let base = crate::util::generated("users", 3000, delimiter);
        assert!(
            base.windows(2).any(|w| w == b"\"\""),
            "the generator makes doubled quotes"
        );
        db.create_table("users", &base, "tester").unwrap();
        let t = db.table("users").unwrap();
        let mut expected = vec![base.clone()];
        // Edit records that hold quoted newlines: change, delete, duplicate-with-new-key.
        let text = String::from_utf8(base).unwrap();
        let records: Vec<&str> = text.split_inclusive('\n').collect();
        let quoted_nl = records
            .iter()
            .position(|l| l.matches('"').count() % 2 == 1)
            .expect("a multi-line record");
        let edited = text.replacen(
            records[quoted_nl],
            &records[quoted_nl].replacen('"', "\"edited ", 1),
            1,
        );
        t.commit(Base::Head, edited.clone().into_bytes(), &opts())
            .unwrap();
        expected.push(edited.clone().into_bytes());
        let appended = format!(
            "{edited}9999{d}Neu{d}neu@example.com{d}30{d}DE{d}Köln{d}2026-01-01{d}1.00{d}true{d}\"a{d}b\nc\"\n",
            d = delimiter
        );
        t.commit(Base::Head, appended.clone().into_bytes(), &opts())
            .unwrap();
        expected.push(appended.into_bytes());
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(&t.read_version(i as u64 + 1).unwrap(), want);
        }
        assert_eq!(t.versions().unwrap()[2].rows, 3001);
        assert!(db.verify().unwrap().problems.is_empty());
    }
}

#[test]
fn prefetched_history_reads_back_every_version_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", &rows(60), "tester").unwrap();
    let t = db.table("t").unwrap();
    let mut expected = vec![rows(60)];
    for i in 0..320usize {
        let prev = expected.last().unwrap().clone();
        let key = (1 + i % 60).to_string();
        let next = set_row(&prev, &key, &format!("{key}|v{i}|{i}"));
        t.commit(Base::Head, next.clone(), &opts()).unwrap();
        expected.push(next);
    }
    // Decoded deltas and in-memory checkpoints: reads start from the nearest one.
    assert_eq!(
        t.prefetch_history(10_000).unwrap(),
        321,
        "every delta decoded"
    );
    for (i, want) in expected.iter().enumerate().rev() {
        let got = t.read_version(i as u64 + 1).unwrap();
        assert!(&got == want, "version {} differs", i + 1);
    }
}

/// Temp files (`.<name>.rdb-tmp-...`) left in `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rdb-tmp-"))
        .collect()
}

#[test]
fn a_stale_head_file_that_cannot_be_rewritten_is_served_from_memory() {
    use reedbase::storage::fault::{Fault, FaultIo};
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let v1 = rows(50);
    let v2 = set_row(&v1, "7", "7|seven|0");
    db.create_table("t", &v1, "tester").unwrap();
    let t = db.table("t").unwrap();
    t.commit(Base::Head, v2.clone(), &opts()).unwrap();
    drop(t);
    drop(db);
    // A process killed between its commit point and its head write.
    let tdir = dir.path().join("tables/t");
    let cur = tdir.join("current.csv");
    std::fs::write(&cur, &v1).unwrap();
    // A full disk: the first mutation, the rebuild's write of the file, fails.
    let io = std::sync::Arc::new(FaultIo::new(1, Fault::Error(libc::ENOSPC)));
    let db = Database::open_with(io.clone(), dir.path()).unwrap();
    let t = db.table("t").expect("a read must not fail on a full disk");
    // The rebuild was tried: its write failed, its temp file was removed.
    assert_eq!(io.ops(), 2);
    assert_eq!(*t.head().unwrap().1, v2);
    assert_eq!(t.read_version(1).unwrap(), v1);
    assert_eq!(t.versions().unwrap().len(), 2);
    drop(t);
    drop(db);
    assert_eq!(std::fs::read(&cur).unwrap(), v1, "left as it was");
    assert_eq!(temp_files(&tdir), Vec::<String>::new());
    // With space again, the next open rewrites it.
    let db = Database::open(dir.path()).unwrap();
    db.table("t").unwrap();
    assert_eq!(std::fs::read(&cur).unwrap(), v2);
    assert!(db.verify().unwrap().notes.is_empty());
}

#[test]
fn a_repair_that_fails_on_io_leaves_the_table_readable() {
    use reedbase::storage::fault::{Fault, FaultIo};
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", USERS, "tester").unwrap();
    drop(db);
    // A torn append: open cuts it, but here the cut fails.
    let log = dir.path().join("tables/t/version.log");
    let whole = std::fs::read(&log).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(b"1795497330123456|abcd");
    std::fs::write(&log, &torn).unwrap();
    let io = std::sync::Arc::new(FaultIo::new(1, Fault::Error(libc::EIO)));
    let db = Database::open_with(io.clone(), dir.path()).unwrap();
    let t = db.table("t").expect("a failed repair must not fail a read");
    assert_eq!(*t.head().unwrap().1, USERS);
    assert_eq!(t.versions().unwrap().len(), 1);
    // The next commit repairs under the lock first (the fault is spent).
    let v2 = set_row(USERS, "1", "1|A|a@b.c|1");
    assert_eq!(
        t.commit(Base::Head, v2.clone(), &opts())
            .unwrap()
            .version
            .seq,
        2
    );
    drop(t);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(*db.table("t").unwrap().head().unwrap().1, v2);
    assert!(db.verify().unwrap().problems.is_empty());
}

/// The real file system with a gate for the background head writer: once
/// armed, its next write of a `current.csv` temp file waits until the test
/// opens the gate; every rename onto `current.csv` is recorded with whether
/// the test held the table's lock at that moment.
#[derive(Debug, Default)]
struct GatedIo {
    gate: std::sync::Mutex<Gate>,
    cv: std::sync::Condvar,
    test_holds_lock: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Gate {
    armed: bool,
    writing: bool,
    open: bool,
    renames: Vec<bool>,
}

impl GatedIo {
    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap()
    }

    fn arm(&self) {
        *self.gate() = Gate {
            armed: true,
            ..Gate::default()
        };
    }

    /// Waits until the head writer is at the gate.
    fn wait_until_writing(&self) {
        let mut g = self.gate();
        while !g.writing {
            g = self.cv.wait(g).unwrap();
        }
    }

    fn open(&self) {
        self.gate().open = true;
        self.cv.notify_all();
    }

    fn renames(&self) -> Vec<bool> {
        self.gate().renames.clone()
    }
}

impl Io for GatedIo {
    fn read(&self, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        RealIo.read(path)
    }
    fn len(&self, path: &std::path::Path) -> std::io::Result<Option<u64>> {
        RealIo.len(path)
    }
    fn read_at(&self, path: &std::path::Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        RealIo.read_at(path, offset, len)
    }
    fn list(&self, dir: &std::path::Path) -> std::io::Result<Vec<String>> {
        RealIo.list(dir)
    }
    fn create_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        RealIo.create_dir(dir)
    }
    fn write_new(&self, path: &std::path::Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with(".current.csv.rdb-tmp-") {
            let mut g = self.gate();
            if g.armed {
                g.writing = true;
                self.cv.notify_all();
                while !g.open {
                    g = self.cv.wait(g).unwrap();
                }
                g.armed = false;
            }
        }
        RealIo.write_new(path, bytes, sync)
    }
    fn append(&self, path: &std::path::Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
        RealIo.append(path, bytes, sync)
    }
    fn truncate(&self, path: &std::path::Path, len: u64) -> std::io::Result<()> {
        RealIo.truncate(path, len)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        if to.file_name().is_some_and(|n| n == "current.csv") {
            let held = self
                .test_holds_lock
                .load(std::sync::atomic::Ordering::SeqCst);
            self.gate().renames.push(held);
        }
        RealIo.rename(from, to)
    }
    fn rename_noreplace(
        &self,
        from: &std::path::Path,
        to: &std::path::Path,
    ) -> std::io::Result<()> {
        RealIo.rename_noreplace(from, to)
    }
    fn remove(&self, path: &std::path::Path) -> std::io::Result<()> {
        RealIo.remove(path)
    }
    fn remove_dir_all(&self, dir: &std::path::Path) -> std::io::Result<()> {
        RealIo.remove_dir_all(dir)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        RealIo.sync_dir(dir)
    }
}

/// Holds `tables/<t>/lock` through a file of its own, as another process does.
fn hold_table_lock(dir: &std::path::Path, table: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("tables").join(table).join("lock"))
        .unwrap();
    // SAFETY: flock on a valid fd we own.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

#[test]
fn the_head_writer_never_replaces_current_csv_while_another_process_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        new_db(dir.path())
            .create_table("t", USERS, "tester")
            .unwrap(),
    );
    // The head writer waits this long for the lock, then leaves the file.
    crate::util::set_config(dir.path(), "lock_timeout_ms", 200);
    let io = std::sync::Arc::new(GatedIo::default());
    let db = Database::open_with(io.clone(), dir.path()).unwrap();
    let t = db.table("t").unwrap();
    let cur = dir.path().join("tables/t/current.csv");

    io.arm();
    let v2 = set_row(USERS, "1", "1|A|a@b.c|1");
    t.commit(Base::Head, v2.clone(), &opts()).unwrap();
    // The commit returned (durable); its head is being written off the lock
    // while another process takes the table's lock.
    io.wait_until_writing();
    let lock = hold_table_lock(dir.path(), "t");
    io.test_holds_lock
        .store(true, std::sync::atomic::Ordering::SeqCst);
    io.open();
    // Waits for the writer: it cannot take the lock within the timeout.
    t.flush();
    assert_eq!(
        io.renames(),
        Vec::<bool>::new(),
        "current.csv replaced while another process held the table lock"
    );
    assert_eq!(std::fs::read(&cur).unwrap(), USERS);
    assert_eq!(
        temp_files(&dir.path().join("tables/t")),
        Vec::<String>::new()
    );
    assert_eq!(*t.head().unwrap().1, v2, "the head is served from memory");

    // Released: the next head lands.
    io.test_holds_lock
        .store(false, std::sync::atomic::Ordering::SeqCst);
    drop(lock);
    let v3 = set_row(&v2, "2", "2|B|b@c.d|2");
    t.commit(Base::Head, v3.clone(), &opts()).unwrap();
    t.flush();
    assert_eq!(std::fs::read(&cur).unwrap(), v3);
    assert_eq!(io.renames(), vec![false]);
}

#[test]
fn an_older_head_never_lands_over_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        new_db(dir.path())
            .create_table("t", USERS, "tester")
            .unwrap(),
    );
    let io = std::sync::Arc::new(GatedIo::default());
    let db = Database::open_with(io.clone(), dir.path()).unwrap();
    let t = db.table("t").unwrap();
    let cur = dir.path().join("tables/t/current.csv");

    // This handle commits v2; its head writer stops before writing.
    io.arm();
    let v2 = set_row(USERS, "1", "1|A|a@b.c|1");
    t.commit(Base::Head, v2.clone(), &opts()).unwrap();
    io.wait_until_writing();
    // Another process commits v3 meanwhile and writes its head.
    let other = Database::open(dir.path()).unwrap();
    let o = other.table("t").unwrap();
    let v3 = set_row(&v2, "2", "2|B|b@c.d|2");
    assert_eq!(
        o.commit(Base::Head, v3.clone(), &opts())
            .unwrap()
            .version
            .seq,
        3
    );
    o.flush();
    assert_eq!(std::fs::read(&cur).unwrap(), v3);
    // The first writer goes on: its v2 is no longer the head, so it must
    // not replace v3's file.
    io.open();
    t.flush();
    assert_eq!(io.renames(), Vec::<bool>::new());
    assert_eq!(std::fs::read(&cur).unwrap(), v3);
    assert_eq!(*t.head().unwrap().1, v3);
    drop(o);
    drop(other);
    assert!(db.verify().unwrap().notes.is_empty());
}

/// Invariant 10 (docs/ARCHITECTURE.md), in bytes: what a commit writes to
/// the store is proportional to the change, not the table. Editing one row
/// of 2,000 or of 100,000 rows writes about the same (the delta, the log
/// line); only `current.csv`, rewritten off the commit path, grows with the
/// table.
#[test]
fn a_one_row_commit_writes_in_proportion_to_the_change_not_the_table() {
    let written_by_one_row_edit = |n: usize| -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let io = Arc::new(RecordingIo::default());
        let db = Database::init(Arc::clone(&io) as Arc<dyn Io>, dir.path(), "m", '|').unwrap();
        db.create_table("t", &rows(n), "u").unwrap();
        let t = db.table("t").unwrap();
        t.flush();
        io.take_written();
        let key = (n / 2).to_string();
        let edited = set_row(&t.head().unwrap().1, &key, &format!("{key}|edited|1"));
        assert!(t.commit(Base::Head, edited, &opts()).unwrap().created);
        t.flush();
        let (mut head_file, mut store) = (0, 0);
        for (path, n) in io.take_written() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains("current.csv") {
                head_file += n;
            } else {
                store += n;
            }
        }
        (store, head_file)
    };
    let (small, small_head) = written_by_one_row_edit(2_000);
    let (large, large_head) = written_by_one_row_edit(100_000);
    // The filter hides nothing else: current.csv is the one file that grows.
    assert!(large_head > 40 * small_head, "{small_head} -> {large_head}");
    assert!(
        small > 0 && small < 1024,
        "a one-row commit wrote {small} bytes"
    );
    assert!(
        large < small + 64,
        "a one-row commit wrote {small} bytes at 2,000 rows and {large} at 100,000"
    );
}

/// A table `t` of 31 versions with a keyframe every 5 versions: the
/// database, its delta files in version order, and the versions that have
/// a keyframe.
fn keyframed_history(dir: &std::path::Path) -> (Vec<std::path::PathBuf>, Vec<usize>) {
    let db = new_db(dir);
    crate::util::set_keyframe_every(dir, 5);
    // The tests damage loose delta files: no packs.
    crate::util::set_config(dir, "pack_bytes", 1 << 40);
    drop(db);
    let db = Database::open(dir).unwrap();
    db.create_table("t", &rows(200), "tester").unwrap();
    let t = db.table("t").unwrap();
    let mut cur = rows(200);
    for i in 0..30u64 {
        let key = (i * 37 % 200 + 1).to_string();
        cur = set_row(&cur, &key, &format!("{key}|edited {i}|{i}"));
        t.commit(Base::Head, cur.clone(), &opts()).unwrap();
    }
    t.flush();
    let tdir = dir.join("tables/t");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let stem = |p: &std::path::Path| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        [".bsdiff.xz", ".bsdiff", ".csv.xz"]
            .iter()
            .find_map(|x| name.strip_suffix(x))
            .unwrap_or(&name)
            .to_string()
    };
    let deltas: Vec<std::path::PathBuf> = files
        .iter()
        .filter(|p| p.to_string_lossy().contains(".bsdiff"))
        .cloned()
        .collect();
    let keyframes: Vec<usize> = files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".csv.xz"))
        .map(|k| 1 + deltas.iter().position(|d| stem(d) == stem(k)).unwrap())
        .collect();
    assert_eq!(deltas.len(), 31);
    assert!(keyframes.len() >= 5, "{keyframes:?}");
    (deltas, keyframes)
}

/// The versions a verify report names (`version N` and `versions A-B`).
fn named_versions(report: &reedbase::storage::VerifyReport) -> std::collections::BTreeSet<usize> {
    let mut out = std::collections::BTreeSet::new();
    for p in &report.problems {
        let what = &p.what;
        if let Some(rest) = what.strip_prefix("versions ") {
            let range = rest.split(':').next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            out.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
        } else if let Some(rest) = what.strip_prefix("version ") {
            out.insert(rest.split(':').next().unwrap().parse::<usize>().unwrap());
        }
    }
    out
}

fn verify_both_ways(dir: &std::path::Path) -> reedbase::storage::VerifyReport {
    use reedbase::storage::VerifyOptions;
    let db = Database::open(dir).unwrap();
    let one = db
        .verify_with(VerifyOptions {
            quick: false,
            threads: Some(1),
            row_log: true,
        })
        .unwrap();
    let many = db
        .verify_with(VerifyOptions {
            quick: false,
            threads: Some(4),
            row_log: true,
        })
        .unwrap();
    assert_eq!(
        one.problems, many.problems,
        "sequential and parallel differ"
    );
    assert_eq!(one.notes, many.notes);
    assert_eq!(one.versions, many.versions);
    one
}

#[test]
fn verify_of_a_good_keyframed_history_is_clean_sequential_or_parallel() {
    let dir = tempfile::tempdir().unwrap();
    keyframed_history(dir.path());
    let report = verify_both_ways(dir.path());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(report.versions, 31);
}

#[test]
fn a_damaged_delta_names_its_version_and_those_rebuilt_from_it_up_to_the_next_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let (deltas, keyframes) = keyframed_history(dir.path());
    let (k1, k2) = (keyframes[1], keyframes[2]);
    assert!(k2 - k1 >= 3, "{keyframes:?}");
    let v = k1 + 1;
    let path = &deltas[v - 1];
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(path, bytes).unwrap();

    let report = verify_both_ways(dir.path());
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report.problems[0]
            .what
            .starts_with(&format!("version {v}: delta {name}")),
        "{:?}",
        report.problems
    );
    let want: std::collections::BTreeSet<usize> = (v..k2).collect();
    assert_eq!(named_versions(&report), want, "{:?}", report.problems);
    // What is not named reads fine.
    let db = Database::open(dir.path()).unwrap();
    let t = db.table("t").unwrap();
    for seq in (1..v).chain(k2..=31) {
        t.read_version(seq as u64)
            .unwrap_or_else(|e| panic!("version {seq}: {e}"));
    }
}

#[test]
fn a_damaged_keyframe_is_named_and_the_versions_after_it_still_check() {
    let dir = tempfile::tempdir().unwrap();
    let (deltas, keyframes) = keyframed_history(dir.path());
    let k1 = keyframes[1];
    let kf = deltas[k1 - 1]
        .to_string_lossy()
        .replace(".bsdiff.xz", ".csv.xz")
        .replace(".bsdiff", ".csv.xz");
    let mut bytes = std::fs::read(&kf).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&kf, bytes).unwrap();
    let report = verify_both_ways(dir.path());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .what
            .starts_with(&format!("version {k1}: keyframe")),
        "{:?}",
        report.problems
    );

    // A delta damaged after the damaged keyframe: still found (the walk goes
    // on from the deltas), and named up to the next keyframe only.
    let k2 = keyframes[2];
    let path = &deltas[k1 + 1 - 1];
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
    let report = verify_both_ways(dir.path());
    let mut want: std::collections::BTreeSet<usize> = (k1 + 1..k2).collect();
    want.insert(k1);
    assert_eq!(named_versions(&report), want, "{:?}", report.problems);
}

/// A second read of the same old version shares the bytes the first one
/// rebuilt (the mount's second `cat` of a version costs a lookup); the head
/// is shared as it is.
#[test]
fn reads_of_the_same_old_version_share_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("t", &rows(2_000), "u").unwrap();
    let t = db.table("t").unwrap();
    for i in 1..=5 {
        let head = t.head().unwrap().1;
        let key = (i * 10).to_string();
        let edited = set_row(&head, &key, &format!("{key}|e{i}|0"));
        t.commit(Base::Head, edited, &opts()).unwrap();
    }
    let first = t.read_version_shared(2).unwrap();
    let again = t.read_version_shared(2).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(first.as_slice(), t.read_version(2).unwrap().as_slice());
    assert!(Arc::ptr_eq(
        &t.read_version_shared(6).unwrap(),
        &t.head().unwrap().1
    ));
}

/// A handle's first commit checks the save without an index of the head
/// (`storage/unindexed.rs`): through fresh handles, as `rdb table:import`
/// commits, every save is accepted or refused as a full parse of it says,
/// with the same error, and what is accepted is stored with its rows and
/// columns. A handle's next commits build and use the index.
#[test]
fn a_first_commit_without_an_index_checks_as_a_full_parse() {
    use reedbase::storage::TableIndex;
    let dir = tempfile::tempdir().unwrap();
    // Quoted fields with newlines and delimiters every few rows.
    let mut s = String::from("id|name|score\n");
    for i in 1..=300 {
        if i % 7 == 0 {
            s.push_str(&format!("{i}|\"multi\nline {i}|\"\"q\"\"\"|{i}\n"));
        } else {
            s.push_str(&format!("{i}|name {i}|{i}\n"));
        }
    }
    let base = s.into_bytes();
    new_db(dir.path())
        .create_table("t", &base, "tester")
        .unwrap();
    let fresh = || Database::open(dir.path()).unwrap().table("t").unwrap();
    let refused: Vec<Vec<u8>> = vec![
        set_row(&base, "150", "10|dup before|1"),
        set_row(&base, "150", "290|dup after|1"),
        [&base[..], b"301|x|1\n301|y|2\n"].concat(),
        set_row(&base, "151", "\"14\"|quoted dup|1"),
        set_row(&base, "150", "150|two fields"),
        set_row(&base, "150", "150|nul\0|1"),
        set_row(&base, "150", "150|cr\r|1"),
        set_row(&base, "150", "150|\"open|1"),
        [&base[..], b"302|caf\xe9|1\n"].concat(),
    ];
    for new in refused {
        let want = TableIndex::parse(&new, b'|').unwrap_err();
        match fresh().commit(Base::Head, new, &opts()) {
            Err(StorageError::Csv(e)) => assert_eq!(e, want),
            other => panic!("expected {want}, got {other:?}"),
        }
    }
    // A changed row, a new row whose quoted key holds a newline, and a new
    // header (checked in full).
    let renamed = set_row(&base, "150", "150|renamed|1");
    let grown = [&renamed[..], b"\"301\n\"|new|3\n"].concat();
    let header = String::from_utf8(grown.clone())
        .unwrap()
        .replacen("id|name|score", "id|name|points", 1)
        .into_bytes();
    for (i, new) in [renamed, grown, header].into_iter().enumerate() {
        let t = fresh();
        let c = t.commit(Base::Head, new.clone(), &opts()).unwrap();
        let full = TableIndex::parse(&new, b'|').unwrap();
        assert_eq!(c.version.rows, full.rows() as u64, "commit {i}");
        assert_eq!(t.columns().unwrap(), full.columns);
        assert_eq!(fresh().head().unwrap().1.as_slice(), new.as_slice());
    }
    // Then more commits through one handle: the second builds the index.
    let t = fresh();
    let mut head = t.head().unwrap().1.as_ref().clone();
    for k in ["20", "40", "60"] {
        head = set_row(&head, k, &format!("{k}|again|0"));
        let c = t.commit(Base::Head, head.clone(), &opts()).unwrap();
        assert_eq!(c.version.rows, 301);
    }
    let dup = set_row(&head, "80", "40|dup|0");
    let e = t.commit(Base::Head, dup, &opts()).unwrap_err();
    assert!(matches!(
        e,
        StorageError::Csv(ref c) if matches!(c.kind, CsvErrorKind::DuplicateKey { .. })
    ));
    assert_eq!(t.columns().unwrap(), ["id", "name", "points"]);
    assert!(
        Database::open(dir.path())
            .unwrap()
            .verify()
            .unwrap()
            .problems
            .is_empty()
    );
}
