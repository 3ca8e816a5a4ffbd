//! Property test: random sequences of commits (valid, invalid, unchanged),
//! drops, restores and reopens against an in-memory model. Every version
//! must read back byte-identical and `verify` must pass; and the files of
//! committed versions (deltas, keyframes) are written once and never
//! touched again, except that a loose delta is removed once a durable pack
//! holds it (docs/ARCHITECTURE.md, invariant 6).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use reedbase::storage::pack;
use reedbase::storage::{Action, Base, CommitOptions, Database, Io, RealIo, StorageError};

use crate::util::{RecordingIo, set_config, set_keyframe_every};

/// Whether `name` is a file that holds a version: a delta, a keyframe or a pack.
fn is_history_file(name: &str) -> bool {
    [".bsdiff", ".bsdiff.xz", ".csv.xz", ".pack"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Invariant 6: every history file on disk at the end (the ones committed
/// versions name; recovery removes the others) was written exactly once,
/// with `write_new`, and nothing else ever touched its path; and no
/// directory holding them was removed or replaced.
/// A loose delta that a log line names (`named`) is removed only after a
/// pack that holds it was written (`write_new`) and its directory fsynced.
fn check_history_files_written_once(
    root: &Path,
    io: &RecordingIo,
    named: &std::collections::HashSet<String>,
) -> Result<(), TestCaseError> {
    let changes = io.changes();
    let events = io.events();
    // Every complete pack on disk, by the loose files it holds.
    let mut packed_in: std::collections::HashMap<String, PathBuf> = Default::default();
    for p in walkdir(root) {
        if p.extension().is_some_and(|e| e == "pack") {
            let entries = pack::parse(&std::fs::read(&p).unwrap());
            prop_assert!(entries.is_ok(), "{}: {:?}", p.display(), entries);
            for e in entries.unwrap() {
                packed_in.insert(e.file, p.clone());
            }
        }
    }
    for (k, (path, what)) in events.iter().enumerate() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(version) = pack::delta_stem(name) else {
            continue;
        };
        if *what != "remove" || !named.contains(version) {
            continue;
        }
        let pack_path = packed_in.get(name);
        prop_assert!(
            pack_path.is_some(),
            "{} removed, but no pack holds it",
            path.display()
        );
        let pack_path = pack_path.unwrap();
        let written = events[..k]
            .iter()
            .position(|(p, w)| p == pack_path && *w == "write_new");
        prop_assert!(
            written.is_some(),
            "{} removed before its pack was written",
            path.display()
        );
        let synced = events[written.unwrap()..k]
            .iter()
            .any(|(p, w)| Some(p.as_path()) == pack_path.parent() && *w == "sync_dir");
        prop_assert!(
            synced,
            "{} removed before its pack was durable",
            path.display()
        );
    }
    let mut seen = 0;
    for entry in walkdir(root) {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !is_history_file(name) {
            continue;
        }
        seen += 1;
        let calls = changes.get(&entry).cloned().unwrap_or_default();
        prop_assert_eq!(&calls, &vec!["write_new"], "{}", entry.display());
    }
    prop_assert!(seen > 0, "no history file found under {}", root.display());
    for (path, calls) in changes.iter() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_history_file(name) {
            // A delta no log line names may be removed (recovery, a failed
            // commit), and one a durable pack holds (checked above); it is
            // never rewritten, appended to or renamed.
            prop_assert!(
                calls.iter().all(|c| *c == "write_new" || *c == "remove"),
                "{}: {:?}",
                path.display(),
                calls
            );
        }
        if calls.contains(&"remove_dir_all") {
            let written_under = changes
                .keys()
                .any(|p| p.starts_with(path) && is_history_file(&p.to_string_lossy()));
            prop_assert!(
                !written_under,
                "{} removed with history in it",
                path.display()
            );
        }
    }
    Ok(())
}

/// Every file under `dir`, recursively.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Op {
    SetCell(usize, usize, String),
    Insert(usize, String),
    Delete(usize),
    Rewrite(Vec<String>),
    AddColumn,
    DuplicateKey(usize),
    WrongFieldCount(usize),
    Unchanged,
    Drop,
    Restore,
    Reopen,
    Read(usize),
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        Just("x|y".to_string()),
        Just("say \"hi\"".to_string()),
        Just("two\nlines".to_string()),
        Just("Zoë".to_string()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), value()).prop_map(|(r, c, v)| Op::SetCell(r, c, v)),
        3 => (any::<usize>(), value()).prop_map(|(r, v)| Op::Insert(r, v)),
        2 => any::<usize>().prop_map(Op::Delete),
        1 => proptest::collection::vec(value(), 0..20).prop_map(Op::Rewrite),
        1 => Just(Op::AddColumn),
        1 => any::<usize>().prop_map(Op::DuplicateKey),
        1 => any::<usize>().prop_map(Op::WrongFieldCount),
        1 => Just(Op::Unchanged),
        1 => Just(Op::Drop),
        1 => Just(Op::Restore),
        1 => Just(Op::Reopen),
        2 => any::<usize>().prop_map(Op::Read),
    ]
}

/// A table as rows of fields; the first field is the key.
#[derive(Debug, Clone, PartialEq)]
struct Rows {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    next_key: u64,
}

fn field(v: &str) -> String {
    if v.contains(['|', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

impl Rows {
    fn initial() -> Rows {
        Rows {
            header: vec!["id".into(), "a".into(), "b".into()],
            rows: (1..=5)
                .map(|i| vec![i.to_string(), format!("a{i}"), format!("b{i}")])
                .collect(),
            next_key: 6,
        }
    }

    fn render(&self) -> Vec<u8> {
        let mut s = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            s.push_str(&r.iter().map(|f| field(f)).collect::<Vec<_>>().join("|"));
            s.push('\n');
        }
        s.into_bytes()
    }

    fn width(&self) -> usize {
        self.header.len()
    }
}

fn opts() -> CommitOptions<'static> {
    CommitOptions::new(Action::Update, "model")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_read_back_exactly(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let io = Arc::new(RecordingIo::default());
        drop(Database::init(Arc::new(RealIo), dir.path(), "m", '|').unwrap());
        // Keyframes every 3 versions, so they are checked too, and a pack
        // every few versions.
        set_keyframe_every(dir.path(), 3);
        set_config(dir.path(), "pack_bytes", 400);
        let mut db = Database::open_with(Arc::clone(&io) as Arc<dyn Io>, dir.path()).unwrap();
        let mut model = Rows::initial();
        db.create_table("t", &model.render(), "model").unwrap();
        // versions[i] = content of version i + 1 ("" for a drop).
        let mut versions = vec![model.render()];
        let mut dropped = false;
        for op in ops {
            let t = db.table("t").unwrap();
            let live = !dropped;
            let mut next = model.clone();
            let outcome = match op {
                Op::SetCell(r, c, v) if live && !next.rows.is_empty() => {
                    let r = r % next.rows.len();
                    let c = 1 + c % (next.width() - 1);
                    next.rows[r][c] = v;
                    Some(next)
                }
                Op::Insert(r, v) if live => {
                    let at = r % (next.rows.len() + 1);
                    let mut row = vec![next.next_key.to_string()];
                    row.extend((1..next.width()).map(|_| v.clone()));
                    next.next_key += 1;
                    next.rows.insert(at, row);
                    Some(next)
                }
                Op::Delete(r) if live && !next.rows.is_empty() => {
                    let r = r % next.rows.len();
                    next.rows.remove(r);
                    Some(next)
                }
                Op::Rewrite(vals) if live => {
                    next.rows = vals.iter().map(|v| {
                        let mut row = vec![next.next_key.to_string()];
                        next.next_key += 1;
                        row.extend((1..next.width()).map(|_| v.clone()));
                        row
                    }).collect();
                    Some(next)
                }
                Op::AddColumn if live => {
                    let n = next.width();
                    next.header.push(format!("c{n}"));
                    for r in &mut next.rows { r.push(String::new()); }
                    Some(next)
                }
                Op::DuplicateKey(r) if live && next.rows.len() >= 2 => {
                    let r = r % next.rows.len();
                    let mut bad = next.clone();
                    let dup = bad.rows[(r + 1) % bad.rows.len()].clone();
                    bad.rows.insert(r, dup);
                    let res = t.commit(Base::Head, bad.render(), &opts());
                    prop_assert!(matches!(res, Err(StorageError::Csv(_))), "duplicate key accepted: {res:?}");
                    None
                }
                Op::WrongFieldCount(r) if live && !next.rows.is_empty() => {
                    let mut text = String::from_utf8(next.render()).unwrap();
                    let r = r % next.rows.len();
                    let key = format!("\n{}|", next.rows[r][0]);
                    text = text.replacen(&key, &format!("\n{}|extra|", next.rows[r][0]), 1);
                    let res = t.commit(Base::Head, text.into_bytes(), &opts());
                    prop_assert!(matches!(res, Err(StorageError::Csv(_))), "wrong field count accepted: {res:?}");
                    None
                }
                Op::Unchanged if live => {
                    let c = t.commit(Base::Head, model.render(), &opts()).unwrap();
                    prop_assert!(!c.created);
                    None
                }
                Op::Drop if live => {
                    db.drop_table("t", "model").unwrap();
                    versions.push(Vec::new());
                    dropped = true;
                    None
                }
                Op::Restore if dropped => {
                    db.restore_table("t", "model").unwrap();
                    versions.push(model.render());
                    dropped = false;
                    None
                }
                Op::Reopen => {
                    drop(t);
                    drop(db);
                    db = Database::open_with(Arc::clone(&io) as Arc<dyn Io>, dir.path()).unwrap();
                    None
                }
                Op::Read(v) => {
                    let v = v % versions.len();
                    prop_assert_eq!(&t.read_version(v as u64 + 1).unwrap(), &versions[v]);
                    None
                }
                _ => None,
            };
            if let Some(next) = outcome {
                let content = next.render();
                let seq = versions.len() as u64;
                let c = db.table("t").unwrap().commit(Base::Version(seq), content.clone(), &opts()).unwrap();
                if c.created {
                    prop_assert_eq!(c.version.seq, seq + 1);
                    versions.push(content);
                }
                model = next;
            }
            let t = db.table("t").unwrap();
            prop_assert_eq!(t.head_seq().unwrap(), versions.len() as u64);
            let head = t.head().unwrap().1;
            prop_assert_eq!(head.as_slice(), versions.last().unwrap().as_slice());
        }
        let t = db.table("t").unwrap();
        for (i, want) in versions.iter().enumerate() {
            prop_assert_eq!(&t.read_version(i as u64 + 1).unwrap(), want, "version {}", i + 1);
        }
        let report = db.verify().unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
        if versions.len() >= 8 {
            let packs = walkdir(dir.path()).iter().filter(|p| p.extension().is_some_and(|e| e == "pack")).count();
            prop_assert!(packs > 0, "{} versions and no pack", versions.len());
        }
        let named = t.versions().unwrap().into_iter().map(|v| v.name).collect();
        check_history_files_written_once(dir.path(), &io, &named)?;
    }
}
