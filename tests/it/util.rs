//! Shared helpers for the integration tests.

use std::path::Path;
use std::sync::Arc;

use reedbase::storage::{Database, RealIo};

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
