//! `registry/actions.dict` and `registry/users.dict`: the codes that
//! `version.log` uses for actions and users. One `code|name` line each,
//! append-only; a name's code is the code of its first line.

use std::path::{Path, PathBuf};

use std::time::Duration;

use super::error::{Result, StorageError};
use super::io::Io;
use super::lock::LockFile;

/// What a version did. The codes are fixed; `actions.dict` lists them for
/// people reading the raw files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create = 0,
    Import = 1,
    Update = 2,
    Rollback = 3,
    Drop = 4,
    Restore = 5,
    Merge = 6,
    Frame = 7,
    Sql = 8,
    /// A head this site materialised from commit records other sites made
    /// (sync); never itself exported as a record.
    Sync = 9,
}

pub const ACTIONS: [Action; 10] = [
    Action::Create,
    Action::Import,
    Action::Update,
    Action::Rollback,
    Action::Drop,
    Action::Restore,
    Action::Merge,
    Action::Frame,
    Action::Sql,
    Action::Sync,
];

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Import => "import",
            Action::Update => "update",
            Action::Rollback => "rollback",
            Action::Drop => "drop",
            Action::Restore => "restore",
            Action::Merge => "merge",
            Action::Frame => "frame",
            Action::Sql => "sql",
            Action::Sync => "sync",
        }
    }

    pub fn from_code(code: u32) -> Option<Action> {
        ACTIONS.get(code as usize).copied()
    }
}

/// The text of `actions.dict`.
pub fn actions_dict() -> String {
    ACTIONS
        .iter()
        .map(|a| format!("{}|{}\n", *a as u32, a.name()))
        .collect()
}

/// The users dictionary of one database.
#[derive(Debug)]
pub struct UserDict {
    path: PathBuf,
    names: Vec<String>,
}

fn parse_users(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut names: Vec<String> = Vec::new();
    // Only whole lines count: a line without its newline is a torn append.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        if let Some((_, name)) = line.trim_end_matches('\n').split_once('|') {
            names.push(name.to_string());
        }
    }
    names
}

impl UserDict {
    pub fn load(io: &dyn Io, path: &Path) -> Result<UserDict> {
        let names = match io.read(path) {
            Ok(b) => parse_users(&b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io("read", path, e)),
        };
        Ok(UserDict {
            path: path.to_path_buf(),
            names,
        })
    }

    pub fn name(&self, code: u32) -> &str {
        self.names.get(code as usize).map_or("?", String::as_str)
    }

    fn find(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// The code of `name`, appending it durably when it is new. Other
    /// processes may append concurrently: codes are line positions, so the
    /// file is read back after the append to learn ours.
    pub fn code(&mut self, io: &dyn Io, name: &str) -> Result<u32> {
        if let Some(c) = self.find(name) {
            return Ok(c);
        }
        let clean: String = name
            .chars()
            .map(|c| if c == '|' || c.is_control() { '_' } else { c })
            .collect();
        if let Some(c) = self.find(&clean) {
            return Ok(c);
        }
        // Commits to different tables append here concurrently: serialise
        // the read-cut-append among processes.
        let lock = LockFile::open(&self.path.with_extension("lock"))?;
        let _g = lock.acquire("the users dictionary", Duration::from_secs(10))?;
        *self = UserDict::load(io, &self.path)?;
        if self.find(&clean).is_none() {
            // A torn last line (a crash mid-append) is cut before appending.
            let bytes = match io.read(&self.path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(StorageError::io("read", &self.path, e)),
            };
            let whole = bytes.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
            if whole < bytes.len() {
                io.truncate(&self.path, whole as u64)
                    .map_err(|e| StorageError::io("truncate", &self.path, e))?;
            }
            let line = format!("{}|{clean}\n", self.names.len());
            io.append(&self.path, line.as_bytes(), true)
                .map_err(|e| StorageError::io("append", &self.path, e))?;
            *self = UserDict::load(io, &self.path)?;
        }
        self.find(&clean)
            .ok_or_else(|| StorageError::corrupt(&self.path, "user not found after append"))
    }
}
