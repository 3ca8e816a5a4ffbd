//! Sync through the library: sites that exchange record files (copied as
//! rsync would: whole files, never overwriting) converge.

use std::path::Path;
use std::sync::Arc;

use reedbase::storage::{Action, Base, CommitOptions, Database, Frame, RealIo};
use reedbase::sync::Site;
use reedbase::sync::record::Record;

use crate::util::new_db;

const USERS: &[u8] = b"id|name|email|age\n1|Alice|alice@example.com|30\n2|Bob|bob@example.com|25\n3|Carol|carol@example.com|41\n";

fn opts() -> CommitOptions<'static> {
    CommitOptions::new(Action::Update, "tester")
}

/// A second location of `db` at `dir`: the same database id, its own node.
fn location_of(db: &Database, dir: &Path) -> Database {
    Database::init_location(
        Arc::new(RealIo),
        dir,
        db.name(),
        db.config().delimiter,
        &db.config().id,
    )
    .unwrap()
}

/// Copies every record file of `from` that `to` lacks (rsync --ignore-existing).
fn copy_records(from: &Database, to: &Database) -> usize {
    let mut n = 0;
    let src = from.sync_dir().join("records");
    let Ok(nodes) = std::fs::read_dir(&src) else {
        return 0;
    };
    for node in nodes.flatten() {
        for table in std::fs::read_dir(node.path()).unwrap().flatten() {
            for rec in std::fs::read_dir(table.path()).unwrap().flatten() {
                let rel = rec.path().strip_prefix(&src).unwrap().to_path_buf();
                let dst = to.sync_dir().join("records").join(rel);
                if !dst.exists() {
                    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                    std::fs::copy(rec.path(), &dst).unwrap();
                    n += 1;
                }
            }
        }
    }
    n
}

fn head(db: &Database, table: &str) -> Vec<u8> {
    db.table(table).unwrap().head().unwrap().1.to_vec()
}

fn edit(db: &Database, table: &str, f: impl FnOnce(String) -> String) {
    let t = db.table(table).unwrap();
    let (seq, bytes) = t.head().unwrap();
    let next = f(String::from_utf8(bytes.to_vec()).unwrap());
    t.commit(Base::Version(seq), next.into_bytes(), &opts())
        .unwrap();
}

fn sync_pair(a: &Database, b: &Database) {
    Site::new(a, "tester").integrate().unwrap();
    Site::new(b, "tester").integrate().unwrap();
    copy_records(a, b);
    copy_records(b, a);
    Site::new(a, "tester").integrate().unwrap();
    Site::new(b, "tester").integrate().unwrap();
}

#[test]
fn two_sites_converge_cell_by_cell_and_keep_what_lost() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = new_db(da.path());
    a.create_table("users", USERS, "tester").unwrap();
    let b = location_of(&a, db_.path());
    sync_pair(&a, &b);
    assert_eq!(head(&b, "users"), USERS, "the new location gets the table");
    assert_eq!(
        b.table("users").unwrap().versions().unwrap()[0].action,
        "sync"
    );

    // Concurrent edits: different cells of one row, a new row each, and one
    // cell both change.
    edit(&a, "users", |s| {
        s.replace("alice@example.com", "alice@a.example")
            .replace("|25\n", "|26\n")
            + "4|Dan|dan@example.com|50\n"
    });
    edit(&b, "users", |s| {
        s.replace("|Alice|", "|Alicia|")
            .replace("|25\n", "|27\n")
            .replace("3|Carol|carol@example.com|41\n", "")
            + "5|Eve|eve@example.com|22\n"
    });
    sync_pair(&a, &b);
    let (ha, hb) = (head(&a, "users"), head(&b, "users"));
    assert_eq!(ha, hb, "same records, same bytes");
    let text = String::from_utf8(ha).unwrap();
    assert!(text.contains("1|Alicia|alice@a.example|30\n"), "{text}");
    assert!(text.contains("4|Dan|") && text.contains("5|Eve|"), "{text}");
    assert!(!text.contains("Carol"), "{text}");
    // Bob's age: one value won, the other is kept as lost, at both sites.
    let bob_won = if text.contains("2|Bob|bob@example.com|26\n") {
        "26"
    } else {
        "27"
    };
    let loser = if bob_won == "26" { "27" } else { "26" };
    for site in [&a, &b] {
        let lost = Site::new(site, "tester").lost("users").unwrap();
        assert!(
            lost.iter()
                .any(|l| l.lost.key == "2" && l.lost.lost.as_deref() == Some(loser)),
            "{lost:?}"
        );
    }
}

#[test]
fn a_frame_is_integrated_whole_and_a_bad_record_never() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = new_db(da.path());
    a.create_table("users", USERS, "tester").unwrap();
    a.create_table("orders", b"id|user|total\n1|1|10\n", "tester")
        .unwrap();
    let b = location_of(&a, db_.path());
    sync_pair(&a, &b);

    let mut f = Frame::begin("move").unwrap();
    f.stage(
        "users",
        Base::Head,
        [USERS, b"9|Zed|zed@example.com|60\n"].concat(),
    )
    .unwrap();
    f.stage(
        "orders",
        Base::Head,
        b"id|user|total\n1|1|10\n2|9|99\n".to_vec(),
    )
    .unwrap();
    a.commit_frame(f, "tester").unwrap();
    Site::new(&a, "tester").integrate().unwrap();
    // Only the users part reaches b: nothing of the frame shows.
    let users_dir = a
        .sync_dir()
        .join("records")
        .join(&a.config().node)
        .join("users");
    let newest = std::fs::read_dir(&users_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let dst = b
        .sync_dir()
        .join("records")
        .join(&a.config().node)
        .join("users")
        .join(newest.file_name().unwrap());
    std::fs::copy(&newest, &dst).unwrap();
    let r = Site::new(&b, "tester").integrate().unwrap();
    assert_eq!(r.held_back, 1);
    assert!(
        !String::from_utf8(head(&b, "users"))
            .unwrap()
            .contains("Zed")
    );
    copy_records(&a, &b);
    Site::new(&b, "tester").integrate().unwrap();
    assert!(
        String::from_utf8(head(&b, "users"))
            .unwrap()
            .contains("Zed")
    );
    assert_eq!(head(&a, "orders"), head(&b, "orders"));

    // A damaged record and one of another database are refused by name.
    let mut bytes = std::fs::read(&newest).unwrap();
    let cut = bytes.len() / 2;
    bytes.truncate(cut);
    let bad_name = format!("20990101T000000.000000Z-{}.rec", a.config().node);
    let bad = dst.with_file_name(&bad_name);
    std::fs::write(&bad, &bytes).unwrap();
    let before = head(&b, "users");
    let r = Site::new(&b, "tester").integrate().unwrap();
    assert_eq!(r.refused.len(), 1, "{r:?}");
    assert!(r.refused[0].contains(&bad_name), "{r:?}");
    assert_eq!(head(&b, "users"), before);
    // It stays refused, and listed for `db:info`, round after round.
    Site::new(&b, "tester").integrate().unwrap();
    let listed = Site::new(&b, "tester").refused().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].contains("checksum"), "{listed:?}");
    assert_eq!(head(&b, "users"), before);

    // A whole, well-formed record of another database is refused too.
    let (old_header, new_header, changes) =
        Record::changes_between(USERS, b"id|name|email|age\n1|Mallory|m@x|1\n", b'|');
    let foreign = Record {
        db: "another-database".into(),
        table: "users".into(),
        id: format!("20990101T000000.000001Z-{}", a.config().node),
        user: "mallory".into(),
        action: "update".into(),
        frame: None,
        hash: String::new(),
        old_header,
        new_header,
        changes,
    };
    let foreign_name = format!("{}.rec", foreign.id);
    std::fs::write(dst.with_file_name(&foreign_name), foreign.encode()).unwrap();
    let r = Site::new(&b, "tester").integrate().unwrap();
    assert!(
        r.refused
            .iter()
            .any(|m| m.contains("another database") && m.contains(&foreign_name)),
        "{r:?}"
    );
    assert_eq!(head(&b, "users"), before);
}

#[test]
fn a_late_record_with_an_earlier_time_replays_from_a_checkpoint() {
    let (da, db_, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = new_db(da.path());
    a.create_table("users", USERS, "tester").unwrap();
    let b = location_of(&a, db_.path());
    let c = location_of(&a, dc.path());
    sync_pair(&a, &b);
    sync_pair(&a, &c);
    // c saves first (earlier time), but its record reaches a last.
    edit(&c, "users", |s| s.replace("|41\n", "|42\n"));
    Site::new(&c, "tester").integrate().unwrap();
    for i in 0..5 {
        edit(&b, "users", |s| {
            s.replace("|Bob|", &format!("|Bob{i}|"))
                .replace(&format!("|Bob{}|", i.max(1) - 1), &format!("|Bob{i}|"))
        });
    }
    sync_pair(&a, &b);
    copy_records(&c, &a);
    Site::new(&a, "tester").integrate().unwrap();
    copy_records(&a, &b);
    copy_records(&a, &c);
    Site::new(&b, "tester").integrate().unwrap();
    Site::new(&c, "tester").integrate().unwrap();
    let h = head(&a, "users");
    assert_eq!(h, head(&b, "users"));
    assert_eq!(h, head(&c, "users"));
    let text = String::from_utf8(h).unwrap();
    assert!(text.contains("|42\n") && text.contains("|Bob4|"), "{text}");
}
