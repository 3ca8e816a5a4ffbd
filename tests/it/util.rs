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
