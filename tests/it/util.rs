//! Shared helpers for the integration tests.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reedbase::storage::{Database, Io, RealIo};

pub const USERS: &[u8] = b"id|name|email|age\n1|Alice|alice@example.com|34\n2|Bob|bob@example.com|27\n3|\"Carol | C\"|carol@example.com|41\n";

/// A fresh database in `dir`.
pub fn new_db(dir: &Path) -> Database {
    Database::init(Arc::new(RealIo), dir, "shop", '|').expect("init")
}

/// A table of `n` rows `i|name i|i*7` with a header.
pub fn rows(n: usize) -> Vec<u8> {
    let mut s = String::from("id|name|score\n");
    for i in 1..=n {
        s.push_str(&format!("{i}|name {i}|{}\n", i * 7));
    }
    s.into_bytes()
}

/// Replaces the line that starts with `key|` by `line`.
pub fn set_row(content: &[u8], key: &str, line: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(content);
    let prefix = format!("{key}|");
    text.lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect::<String>()
        .into_bytes()
}

/// A realistic table from `scripts/gen_table.py` (names, emails, quoted text
/// with delimiters, quotes and newlines).
pub fn generated(kind: &str, rows: usize, delimiter: char) -> Vec<u8> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen_table.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([
            kind,
            &rows.to_string(),
            "--delimiter",
            &delimiter.to_string(),
        ])
        .output()
        .expect("python3 scripts/gen_table.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// How many files in `dir` have names ending with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

/// A second local user, made for one test and removed when dropped.
pub struct OtherUser {
    pub name: String,
    pub uid: u32,
}

impl OtherUser {
    /// None (with the reason printed) when users cannot be made here; under
    /// CI that is a failure instead.
    pub fn create() -> Option<OtherUser> {
        let skip = |why: String| {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v != "true"),
                "under CI this test must run: {why}"
            );
            eprintln!("skipping: {why}");
            None
        };
        // SAFETY: geteuid has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return skip("not running as root".into());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("rdbtest{:x}{:x}", std::process::id(), nanos & 0xffff);
        match std::process::Command::new("useradd")
            .args(["-M", "-N", &name])
            .status()
        {
            Err(e) => return skip(format!("useradd cannot run: {e}")),
            Ok(s) if !s.success() => return skip(format!("useradd {name} failed: {s}")),
            Ok(_) => {}
        }
        // From here on the guard removes the user, also if a step panics.
        let mut user = OtherUser { name, uid: 0 };
        let id = std::process::Command::new("id")
            .args(["-u", &user.name])
            .output()
            .unwrap();
        user.uid = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        assert_ne!(user.uid, 0);
        Some(user)
    }

    /// Gives `path` and everything below it to this user.
    pub fn chown_tree(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), None).unwrap();
        if std::fs::symlink_metadata(path).unwrap().is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                self.chown_tree(&e.unwrap().path());
            }
        }
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .status();
    }
}

/// Sets the database's `keyframe_every` (a keyframe every `n` versions), so
/// short tests write keyframes too. Takes effect at the next open.
pub fn set_keyframe_every(root: &Path, n: u64) {
    set_config(root, "keyframe_every", n);
}

/// Sets a numeric key of the database's `config.toml` (`pack_bytes`: seal
/// a pack once it would reach this many bytes). Takes effect at the next open.
pub fn set_config(root: &Path, key: &str, n: u64) {
    let p = root.join("config.toml");
    let cfg = std::fs::read_to_string(&p).expect("config");
    let prefix = format!("{key} = ");
    assert!(
        cfg.lines().any(|l| l.starts_with(&prefix)),
        "no {key} in config.toml"
    );
    let cfg: String = cfg
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{prefix}{n}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&p, cfg).expect("write config");
}

/// The real file system, recording every call that changes a file (by
/// path) and counting the bytes written.
#[derive(Debug, Default)]
pub struct RecordingIo {
    changes: Mutex<BTreeMap<PathBuf, Vec<&'static str>>>,
    /// Every change and directory fsync, in the order they happened.
    events: Mutex<Vec<(PathBuf, &'static str)>>,
    written: Mutex<BTreeMap<PathBuf, u64>>,
}

impl RecordingIo {
    fn record(&self, path: &Path, what: &'static str) {
        let mut changes = self.changes.lock().unwrap();
        changes.entry(path.to_path_buf()).or_default().push(what);
        self.events.lock().unwrap().push((path.to_path_buf(), what));
    }

    /// Every change and directory fsync (`sync_dir`), in order.
    pub fn events(&self) -> Vec<(PathBuf, &'static str)> {
        self.events.lock().unwrap().clone()
    }

    fn wrote(&self, path: &Path, n: usize) {
        *self
            .written
            .lock()
            .unwrap()
            .entry(path.to_path_buf())
            .or_default() += n as u64;
    }

    /// The calls that changed each path, in order.
    pub fn changes(&self) -> BTreeMap<PathBuf, Vec<&'static str>> {
        self.changes.lock().unwrap().clone()
    }

    /// The bytes written to each path (`write_new` and `append`), and forgets them.
    pub fn take_written(&self) -> BTreeMap<PathBuf, u64> {
        std::mem::take(&mut *self.written.lock().unwrap())
    }
}

impl Io for RecordingIo {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealIo.read(path)
    }
    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        RealIo.len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        RealIo.read_at(path, offset, len)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealIo.list(dir)
    }
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        RealIo.create_dir(dir)
    }
    fn write_new(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        self.record(path, "write_new");
        self.wrote(path, bytes.len());
        RealIo.write_new(path, bytes, sync)
    }
    fn append(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        self.record(path, "append");
        self.wrote(path, bytes.len());
        RealIo.append(path, bytes, sync)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.record(path, "truncate");
        RealIo.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record(from, "rename from");
        self.record(to, "rename onto");
        RealIo.rename(from, to)
    }
    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record(from, "rename from");
        self.record(to, "rename onto");
        RealIo.rename_noreplace(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.record(path, "remove");
        RealIo.remove(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.record(dir, "remove_dir_all");
        RealIo.remove_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let r = RealIo.sync_dir(dir);
        if r.is_ok() {
            self.events
                .lock()
                .unwrap()
                .push((dir.to_path_buf(), "sync_dir"));
        }
        r
    }
}

/// The delta files the packs of a table's directory hold (each pack must
/// parse), and its loose delta files.
pub fn packed_and_loose(table_dir: &Path) -> (Vec<String>, Vec<String>) {
    let (mut packed, mut loose) = (Vec::new(), Vec::new());
    let Ok(rd) = std::fs::read_dir(table_dir) else {
        return (packed, loose);
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.ends_with(".pack") {
            let entries =
                reedbase::storage::pack::parse(&std::fs::read(e.path()).expect("read pack"))
                    .unwrap_or_else(|x| panic!("pack {n} left after recovery: {x}"));
            packed.extend(entries.into_iter().map(|e| e.file));
        } else if reedbase::storage::pack::delta_stem(&n).is_some() {
            loose.push(n);
        }
    }
    (packed, loose)
}

/// A small deterministic generator: `next(n)` is in `0..n`.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A `|` table from its header and rows keyed by number.
pub fn render(header: &[String], rows: &BTreeMap<u64, Vec<String>>) -> Vec<u8> {
    let mut s = header.join("|") + "\n";
    for (k, f) in rows {
        s.push_str(&format!("{k}|{}\n", f.join("|")));
    }
    s.into_bytes()
}
