//! Migrations (`rdb schema:migrate`, `schema:set --migrate`, `schema:diff`)
//! through the real binary, and the frame that carries a schema through the
//! library: all or nothing under a crash, EIO or ENOSPC at every I/O
//! operation, a committed schema counted before it is published.

use std::path::Path;
use std::sync::Arc;

use reedbase::storage::fault::{Fault, FaultIo};
use reedbase::storage::{Action, Base, CommitOptions, Database, Frame, Io};

use crate::cli::Rdb;
use crate::util::new_db;

const START: &[u8] =
    b"id|name|price|mail|junk\n1|apple|1.50|a@x.org|x\n2|pear|2|b@x.org|y\n3|fig|3.0|c@x.org|z\n";

const V1: &str = "[columns.id]\ntype = \"integer\"\n[columns.price]\ntype = \"text\"\n";

const V2: &str = r#"[columns.id]
type = "integer"
[columns.price]
type = "real"
min = 0
[columns.email]
type = "text"
unique = true
renamed_from = "mail"
[columns.stock]
type = "integer"
default = "0"
[columns.label]
type = "text"
required = true
"#;

fn shop() -> Rdb {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("start.csv", START);
    r.ok(&["table:create", "shop", "products", "--from", &f]);
    let s = r.file("v1.toml", V1.as_bytes());
    r.ok(&["schema:set", "shop", "products", &s]);
    r
}

impl Rdb {
    fn products(&self) -> String {
        self.ok(&["table:export", "shop", "products"]).out()
    }

    fn schema(&self) -> String {
        self.ok(&["schema:show", "shop", "products"]).out()
    }

    fn committed_frames(&self) -> usize {
        let out = self.ok(&["frame:list", "shop", "--format", "csv"]).out();
        out.lines().filter(|l| l.ends_with(",committed")).count()
    }
}

#[test]
fn a_migration_renames_adds_maps_drops_and_converts_in_one_frame() {
    let r = shop();
    let to = r.file("v2.toml", V2.as_bytes());
    let frames = r.committed_frames();
    // A dry run says what it would do and changes nothing.
    let dry = r.ok(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &to,
        "--drop",
        "junk",
        "--map",
        "label=upper(name) || '#' || id",
        "--dry-run",
    ]);
    let steps = dry.out();
    for step in [
        "drop column junk",
        "rename column mail to email",
        "convert column price from text to real",
        "add column stock = \"0\"",
        "set column label = upper(name) || '#' || id",
    ] {
        assert!(steps.contains(step), "{step}: {steps}");
    }
    assert_eq!(r.products().as_bytes(), START);
    assert_eq!(r.schema(), V1);
    let done = r.ok(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &to,
        "--drop",
        "junk",
        "--map",
        "label=upper(name) || '#' || id",
    ]);
    assert_eq!(
        r.products(),
        "id|name|price|email|label|stock\n\
         1|apple|1.50|a@x.org|APPLE#1|0\n\
         2|pear|2|b@x.org|PEAR#2|0\n\
         3|fig|3.0|c@x.org|FIG#3|0\n"
    );
    assert_eq!(r.schema(), V2);
    // One frame, one new version.
    assert_eq!(r.committed_frames(), frames + 1);
    let id = done.out().lines().next().unwrap_or_default().to_string();
    let list = r.ok(&["frame:list", "shop", "--format", "csv"]).out();
    assert!(
        list.lines().any(|l| l.starts_with(&id)
            && l.contains("migrate-products")
            && l.contains("products,products/schema.toml")),
        "{list}"
    );
    let versions = r
        .ok(&["version:list", "shop", "products", "--format", "csv"])
        .out();
    assert_eq!(versions.lines().count(), 1 + 2, "{versions}");
    // The new schema is in force for later saves: a duplicate email fails.
    let bad = r.file(
        "bad.csv",
        r.products().replace("b@x.org", "a@x.org").as_bytes(),
    );
    let o = r.run(&["table:import", "shop", "products", &bad]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("column email: unique"), "{}", o.stderr);
}

#[test]
fn a_migration_that_cannot_convert_or_is_wrong_changes_nothing() {
    let r = shop();
    let frames = r.committed_frames();
    let to_int = r.file(
        "int.toml",
        b"[columns.id]\ntype = \"integer\"\n[columns.price]\ntype = \"integer\"\n",
    );
    let o = r.run(&["schema:migrate", "shop", "products", "--to", &to_int]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("line 2, column price: does not convert to integer (\"1.50\")"),
        "{}",
        o.stderr
    );
    // "3.0" converts: only the line that does not is named.
    assert!(!o.stderr.contains("line 4"), "{}", o.stderr);
    let to = r.file("v2.toml", V2.as_bytes());
    for (args, says) in [
        (vec!["--drop", "nope"], "--drop nope: no such column"),
        (vec!["--drop", "id"], "key column"),
        (vec!["--map", "label"], "COLUMN=EXPRESSION"),
        (vec!["--map", "label=upper(nosuch)"], "nosuch"),
        // label is required and nothing fills it.
        (vec![], "column label: required"),
    ] {
        let mut a = vec!["schema:migrate", "shop", "products", "--to", &to];
        a.extend(args.iter().copied());
        let o = r.run(&a);
        assert_ne!(o.code, 0, "{args:?}");
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
    }
    let renamed = r.file(
        "renamed.toml",
        b"[columns.email]\ntype = \"text\"\nrenamed_from = \"nope\"\n",
    );
    let o = r.run(&["schema:migrate", "shop", "products", "--to", &renamed]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("renamed_from nope"), "{}", o.stderr);
    let broken = r.file(
        "broken.toml",
        b"[columns.price]\ntype = \"real\"\nmin = 5\nmax = 1\n",
    );
    let o = r.run(&["schema:migrate", "shop", "products", "--to", &broken]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("min is above max"), "{}", o.stderr);
    // Nothing changed: data, schema, frames.
    assert_eq!(r.products().as_bytes(), START);
    assert_eq!(r.schema(), V1);
    assert_eq!(r.committed_frames(), frames);
}

#[test]
fn frame_rollback_restores_data_and_schema_exactly() {
    let r = shop();
    let to = r.file("v2.toml", V2.as_bytes());
    let done = r.ok(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &to,
        "--drop",
        "junk",
        "--map",
        "label=name",
    ]);
    let id = done.out().lines().next().unwrap_or_default().to_string();
    assert_ne!(r.products().as_bytes(), START);
    let back = r.ok(&["frame:rollback", "shop", &id]);
    assert!(
        back.out().contains("products: schema.toml"),
        "{}",
        back.out()
    );
    assert_eq!(r.products().as_bytes(), START);
    assert_eq!(r.schema(), V1);
    // Every schema version stays in the history: v1, v2, v1 again.
    let history = r
        .ok(&["schema:show", "shop", "products", "--history"])
        .out();
    assert_eq!(history.matches("[columns.id]").count(), 3, "{history}");
    // frame:show names the schema's changes.
    let show = r.ok(&["frame:show", "shop", &id]).out();
    assert!(show.contains("~ column price: type text -> real"), "{show}");
}

#[test]
fn schema_diff_and_set_migrate() {
    let r = shop();
    let to = r.file("v2.toml", V2.as_bytes());
    r.ok(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &to,
        "--drop",
        "junk",
        "--map",
        "label=name",
    ]);
    let diff = r.ok(&["schema:diff", "shop", "products", "1", "2"]).out();
    let want = [
        "+ column email (type = text, unique = true, renamed_from = \"mail\")",
        "+ column label (type = text, required = true)",
        "~ column price: type text -> real",
        "~ column price: min added (0)",
        "+ column stock (type = integer, default = \"0\")",
    ];
    let got: Vec<&str> = diff.lines().skip(2).collect();
    assert_eq!(got, want, "{diff}");
    // v2 by default is the current one; an unknown version is named.
    assert_eq!(r.ok(&["schema:diff", "shop", "products", "1"]).out(), diff);
    let o = r.run(&["schema:diff", "shop", "products", "zzz"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    // schema:set refuses what the data breaks; --migrate converts it.
    let ints = r.file(
        "ints.toml",
        b"[columns.id]\ntype = \"integer\"\n[columns.price]\ntype = \"integer\"\n",
    );
    let plain = r.file("p.csv", b"id|price\n1|12.0\n2|7\n");
    r.ok(&["table:create", "shop", "prices", "--from", &plain]);
    let o = r.run(&["schema:set", "shop", "prices", &ints]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("line 2, column price"), "{}", o.stderr);
    r.ok(&["schema:set", "shop", "prices", &ints, "--migrate"]);
    assert_eq!(
        r.ok(&["table:export", "shop", "prices"]).out(),
        "id|price\n1|12\n2|7\n"
    );
}

// ---------------------------------------------------------------------------
// Through the library: the frame that carries a schema
// ---------------------------------------------------------------------------

const NEW_SCHEMA: &str = "[columns.n]\ntype = \"integer\"\nmin = 0\n";

fn numbers(n: usize, plus: usize) -> Vec<u8> {
    let mut s = String::from("id|n\n");
    for i in 1..=n {
        s.push_str(&format!("{i}|{}\n", i + plus));
    }
    s.into_bytes()
}

fn migration_frame() -> Frame {
    let mut f = Frame::begin("migrate").unwrap();
    f.stage("nums", Base::Version(1), numbers(20, 100)).unwrap();
    f.stage_schema("nums", Some(NEW_SCHEMA.to_string()))
        .unwrap();
    f.stage("other", Base::Version(1), numbers(5, 7)).unwrap();
    f
}

fn setup(dir: &Path) {
    let db = new_db(dir);
    db.create_table("nums", &numbers(20, 0), "t").unwrap();
    db.create_table("other", &numbers(5, 0), "t").unwrap();
    db.flush();
}

/// (schema text, nums head, other head). The tables first: opening one
/// decides a frame its writer left undecided, and a schema read before
/// that decision rightly does not count the frame yet.
fn state(db: &Database) -> (Option<String>, Vec<u8>, Vec<u8>) {
    let head = |t: &str| db.table(t).unwrap().head().unwrap().1.to_vec();
    let (nums, other) = (head("nums"), head("other"));
    let schema = db.schema_text("nums").unwrap().and_then(|r| r.text);
    (schema, nums, other)
}

fn staged_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("tables/nums/schema"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".frame-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_operation_of_a_migration_frame_can_fail_or_crash() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let counter = Arc::new(FaultIo::counting());
    let db = Database::open_with(Arc::clone(&counter) as Arc<dyn Io>, dir.path()).unwrap();
    db.set_inline_head_writes(true);
    db.commit_frame(migration_frame(), "t").unwrap();
    let total = counter.ops();
    let new = state(&db);
    assert_eq!(new.0.as_deref(), Some(NEW_SCHEMA));
    drop(db);
    let old = (None, numbers(20, 0), numbers(5, 0));
    let mut checked = 0;
    for n in 1..=total {
        for fault in [
            Fault::Crash,
            Fault::Error(libc::EIO),
            Fault::Error(libc::ENOSPC),
        ] {
            let dir = tempfile::tempdir().unwrap();
            setup(dir.path());
            let io = Arc::new(FaultIo::new(n, fault));
            let db = Database::open_with(Arc::clone(&io) as Arc<dyn Io>, dir.path()).unwrap();
            db.set_inline_head_writes(true);
            let result = db.commit_frame(migration_frame(), "t");
            if fault == Fault::Crash {
                io.power_cut();
            }
            drop(db);
            let ctx = format!(
                "{fault:?} at operation {n} of {total}: {:?}",
                result.as_ref().err()
            );
            let db = Database::open(dir.path()).unwrap();
            let got = state(&db);
            if result.is_ok() {
                assert_eq!(
                    got, new,
                    "{ctx}: success returned but the migration is missing"
                );
            } else {
                assert!(got == old || got == new, "{ctx}: half a migration: {got:?}");
            }
            // The next commit of the table settles what a crash left staged.
            let t = db.table("nums").unwrap();
            let (seq, head) = t.head().unwrap();
            let mut edited = head.to_vec();
            edited.extend_from_slice(b"99|5\n");
            t.commit(
                Base::Version(seq),
                edited,
                &CommitOptions::new(Action::Update, "t"),
            )
            .unwrap_or_else(|e| panic!("{ctx}: a later commit: {e}"));
            assert!(
                staged_files(dir.path()).is_empty(),
                "{ctx}: {:?}",
                staged_files(dir.path())
            );
            assert_eq!(state(&db).0, got.0, "{ctx}: settling changed the schema");
            assert!(db.verify().unwrap().problems.is_empty(), "{ctx}");
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} fault points");
}

#[test]
fn a_committed_schema_counts_before_it_is_published_and_an_undecided_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let db = Database::open(dir.path()).unwrap();
    let done = db.commit_frame(migration_frame(), "t").unwrap();
    assert_eq!(done.schemas, ["nums"]);
    drop(db);
    // As if the writer died after its commit point, before publishing.
    let schema_dir = dir.path().join("tables/nums/schema");
    let published: Vec<_> = std::fs::read_dir(&schema_dir).unwrap().flatten().collect();
    assert_eq!(published.len(), 1);
    let staged = schema_dir.join(format!(".frame-{}.toml", done.id));
    std::fs::rename(published[0].path(), &staged).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(
        state(&db).0.as_deref(),
        Some(NEW_SCHEMA),
        "committed: counted"
    );
    // The rules are in force: a negative n is refused, and that commit
    // published the schema under its version name.
    let t = db.table("nums").unwrap();
    let bad = numbers(20, 100)
        .into_iter()
        .chain(b"21|-1\n".iter().copied())
        .collect();
    assert!(
        t.commit(Base::Head, bad, &CommitOptions::new(Action::Update, "t"))
            .is_err()
    );
    assert!(staged_files(dir.path()).is_empty());
    assert_eq!(state(&db).0.as_deref(), Some(NEW_SCHEMA));
    drop(db);
    // Without a decision (no commit record) a staged schema is invisible.
    std::fs::write(
        schema_dir.join(".frame-unknown-frame.toml"),
        "[columns.n]\ntype = \"text\"\n",
    )
    .unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(state(&db).0.as_deref(), Some(NEW_SCHEMA));
}

/// `schema:set` is a frame with one schema and no content: a crash, EIO or
/// ENOSPC at any of its I/O operations leaves the old schema or the new
/// one whole (never a torn or empty one), new whenever the call succeeded.
#[test]
fn every_operation_of_a_schema_set_can_fail_or_crash() {
    let old_schema = "[columns.n]\ntype = \"integer\"\n";
    let prepare = |dir: &Path| {
        setup(dir);
        let db = Database::open(dir).unwrap();
        db.set_schema("nums", Some(old_schema), "t").unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let counter = Arc::new(FaultIo::counting());
    let db = Database::open_with(Arc::clone(&counter) as Arc<dyn Io>, dir.path()).unwrap();
    db.set_schema("nums", Some(NEW_SCHEMA), "t").unwrap();
    let total = counter.ops();
    drop(db);
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
            let db = Database::open_with(Arc::clone(&io) as Arc<dyn Io>, dir.path()).unwrap();
            let result = db.set_schema("nums", Some(NEW_SCHEMA), "t");
            if fault == Fault::Crash {
                io.power_cut();
            }
            drop(db);
            let ctx = format!(
                "{fault:?} at operation {n} of {total}: {:?}",
                result.as_ref().err()
            );
            let db = Database::open(dir.path()).unwrap();
            // A commit of the table settles what was staged (and checks
            // against the rules in force, which must parse).
            let t = db.table("nums").unwrap();
            let (seq, head) = t.head().unwrap();
            let mut edited = head.to_vec();
            edited.extend_from_slice(b"99|5\n");
            t.commit(
                Base::Version(seq),
                edited,
                &CommitOptions::new(Action::Update, "t"),
            )
            .unwrap_or_else(|e| panic!("{ctx}: a later commit: {e}"));
            let got = db.schema_text("nums").unwrap().and_then(|r| r.text);
            if result.is_ok() {
                assert_eq!(got.as_deref(), Some(NEW_SCHEMA), "{ctx}");
            } else {
                assert!(
                    got.as_deref() == Some(old_schema) || got.as_deref() == Some(NEW_SCHEMA),
                    "{ctx}: {got:?}"
                );
            }
            assert!(staged_files(dir.path()).is_empty(), "{ctx}");
            checked += 1;
        }
    }
    assert!(checked > 15, "only {checked} fault points");
}

#[test]
fn ambiguous_renames_and_failing_expressions_are_refused_with_their_reason() {
    let r = shop();
    let both = r.file(
        "both.toml",
        b"[columns.junk]\ntype = \"text\"\nrenamed_from = \"mail\"\n",
    );
    let o = r.run(&["schema:migrate", "shop", "products", "--to", &both]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("the table has both"), "{}", o.stderr);
    // Dropping the source resolves it: junk keeps its own values.
    r.ok(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &both,
        "--drop",
        "mail",
        "--dry-run",
    ]);
    let to = r.file("v2.toml", V2.as_bytes());
    let o = r.run(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &to,
        "--drop",
        "mail",
        "--map",
        "label=name",
    ]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("one or the other"), "{}", o.stderr);
    // An expression that fails names its line.
    let o = r.run(&[
        "schema:migrate",
        "shop",
        "products",
        "--to",
        &to,
        "--drop",
        "junk",
        "--map",
        "label=json_extract(name, '$.x')",
    ]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("line 2, --map label"), "{}", o.stderr);
    assert_eq!(r.products().as_bytes(), START);
}
