//! Schema rules on the commit path, through the library: every commit is
//! checked, a refusal names each violation and leaves the head alone, a
//! schema the data breaks is refused, and the incremental unique counts
//! agree with a whole-table check over random edits.

use proptest::prelude::*;
use reedbase::storage::{Action, Base, CommitOptions, Rules, StorageError};

use crate::util::new_db;

fn opts() -> CommitOptions<'static> {
    CommitOptions::new(Action::Update, "t")
}

const SCHEMA: &str = r#"
strict = true
[columns]
id = "integer"
[columns.email]
type = "text"
unique = true
required = true
pattern = "[a-z0-9.]+@[a-z]+\\.[a-z]+"
[columns.age]
type = "integer"
min = 0
max = 150
[columns.status]
type = "enum"
values = ["active", "inactive"]
"#;

fn table(n: usize) -> String {
    let mut s = String::from("id|email|age|status\n");
    for i in 1..=n {
        s.push_str(&format!("{i}|u{i}@x.io|{}|active\n", i % 90));
    }
    s
}

fn refusal(e: StorageError) -> String {
    match e {
        StorageError::Invalid { what, reason } => format!("{what}: {reason}"),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[test]
fn every_commit_is_checked_and_a_refusal_names_each_violation() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("users", table(50).as_bytes(), "t").unwrap();
    db.set_schema("users", Some(SCHEMA), "test").unwrap();
    let t = db.table("users").unwrap();
    let head = |t: &reedbase::storage::Table| t.head().unwrap().1;
    // A valid change commits.
    let ok = table(50).replace("7|u7@x.io|7|active", "7|seven@x.io|70|inactive");
    assert!(
        t.commit(Base::Head, ok.clone().into_bytes(), &opts())
            .unwrap()
            .created
    );
    // Each rule, broken on one line; nothing commits; the head stays.
    for (from, to, says) in [
        (
            "9|u9@x.io|9|active",
            "9|u8@x.io|9|active",
            "line 10, column email: unique",
        ),
        (
            "9|u9@x.io|9|active",
            "9||9|active",
            "line 10, column email: required: empty",
        ),
        (
            "9|u9@x.io|9|active",
            "9|U9 at x|9|active",
            "line 10, column email: pattern",
        ),
        (
            "9|u9@x.io|9|active",
            "9|u9@x.io|151|active",
            "line 10, column age: max: above 150",
        ),
        (
            "9|u9@x.io|9|active",
            "9|u9@x.io|nine|active",
            "line 10, column age: type: not integer",
        ),
        (
            "9|u9@x.io|9|active",
            "9|u9@x.io|9|gone",
            "line 10, column status: enum",
        ),
    ] {
        let bad = ok.replace(from, to);
        let e = t.commit(Base::Head, bad.into_bytes(), &opts()).unwrap_err();
        let msg = refusal(e);
        assert!(msg.contains(says), "{says}: {msg}");
        assert_eq!(head(&t).as_slice(), ok.as_bytes());
    }
    // Two at once, both listed; then a valid commit still works.
    let two = ok
        .replace("3|u3@x.io|3|active", "3|u4@x.io|3|active")
        .replace("5|u5@x.io|5|active", "5|u5@x.io|-1|active");
    let msg = refusal(t.commit(Base::Head, two.into_bytes(), &opts()).unwrap_err());
    assert!(
        msg.contains("column email: unique") && msg.contains("line 6, column age"),
        "{msg}"
    );
    let next = ok.replace("10|u10@x.io", "10|ten@x.io");
    assert!(
        t.commit(Base::Head, next.clone().into_bytes(), &opts())
            .unwrap()
            .created
    );
    // A value freed by one row may be taken by another in the same commit.
    let swap = next
        .replace("11|u11@x.io", "11|tmp@x.io")
        .replace("12|u12@x.io", "12|u11@x.io");
    assert!(
        t.commit(Base::Head, swap.clone().into_bytes(), &opts())
            .unwrap()
            .created
    );
    // Strict: a column the schema does not declare is refused.
    let extra = swap.replacen("id|email|age|status", "id|email|age|status|note", 1);
    let extra = extra
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("{l}|")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let msg = refusal(
        t.commit(Base::Head, extra.into_bytes(), &opts())
            .unwrap_err(),
    );
    assert!(msg.contains("line 1, column note: strict"), "{msg}");
}

#[test]
fn a_schema_the_data_breaks_is_refused_with_the_violations() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let data = table(30)
        .replace("4|u4@x.io", "4|u3@x.io")
        .replace("8|u8@x.io|8|", "8|u8@x.io|200|");
    db.create_table("users", data.as_bytes(), "t").unwrap();
    let msg = refusal(db.set_schema("users", Some(SCHEMA), "test").unwrap_err());
    assert!(msg.contains("line 5, column email: unique"), "{msg}");
    assert!(msg.contains("line 9, column age: max"), "{msg}");
    assert!(!db.schema_exists("users").unwrap());
    // The short form types queries only: it accepts any data, as before.
    db.set_schema("users", Some("[columns]\nage = \"integer\"\n"), "test")
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Random edits of emails from a small pool: a commit is refused exactly
    /// when the whole table, checked from scratch, breaks `unique`.
    #[test]
    fn incremental_unique_counts_agree_with_a_whole_check(
        edits in prop::collection::vec((1usize..=40, 0usize..60), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path());
        let schema = "[columns.email]\ntype = \"text\"\nunique = true\n";
        db.create_table("users", table(40).as_bytes(), "t").unwrap();
        db.set_schema("users", Some(schema), "test").unwrap();
        let rules = Rules::parse(schema, "users", None).unwrap();
        let t = db.table("users").unwrap();
        let mut rows: Vec<Vec<String>> = table(40)
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect();
        for (row, pick) in edits {
            let mut next = rows.clone();
            next[row][1] = format!("p{pick}@x.io");
            let text: String = next.iter().map(|r| r.join("|") + "\n").collect();
            let header = next[0].clone();
            let records: Vec<(usize, &[String])> =
                next[1..].iter().enumerate().map(|(i, r)| (i + 2, r.as_slice())).collect();
            let whole = rules.check_table(&header, records, usize::MAX);
            let got = t.commit(Base::Head, text.into_bytes(), &opts());
            prop_assert_eq!(got.is_ok(), whole.is_empty(), "{:?} {:?}", got.err(), whole);
            if whole.is_empty() {
                rows = next;
            }
        }
    }
}

#[test]
fn a_sync_integration_is_never_refused_so_locations_converge() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    db.create_table("users", table(20).as_bytes(), "t").unwrap();
    db.set_schema("users", Some(SCHEMA), "test").unwrap();
    let t = db.table("users").unwrap();
    // Two locations each gave u2@x.io to a row: valid at each, a duplicate
    // once both are replayed. The replay lands whatever the rules say.
    let merged = table(20).replace("5|u5@x.io", "5|u2@x.io");
    let sync = CommitOptions::new(Action::Sync, "t");
    assert!(
        t.commit(Base::Head, merged.clone().into_bytes(), &sync)
            .unwrap()
            .created
    );
    // `rdb schema:check` lists what the replay brought in.
    let listed: Vec<String> = db
        .violations("users", 10)
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        listed,
        ["line 6, column email: unique: also on line 3 (\"u2@x.io\")"]
    );
    // A later save of another row is checked and lands ...
    let next = merged.replace("6|u6@x.io|6|", "6|u6@x.io|60|");
    assert!(
        t.commit(Base::Head, next.clone().into_bytes(), &opts())
            .unwrap()
            .created
    );
    // ... and one that touches the duplicate without fixing it is refused.
    let still = next.replace("5|u2@x.io|5|", "5|u2@x.io|50|");
    let msg = refusal(
        t.commit(Base::Head, still.into_bytes(), &opts())
            .unwrap_err(),
    );
    assert!(msg.contains("line 6, column email: unique"), "{msg}");
    let fixed = next.replace("5|u2@x.io|5|", "5|u5@x.io|50|");
    assert!(
        t.commit(Base::Head, fixed.into_bytes(), &opts())
            .unwrap()
            .created
    );
    assert!(db.violations("users", 10).unwrap().is_empty());
}
