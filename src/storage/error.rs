//! The storage layer's one error type. Every variant says what the caller can
//! do about it; the FUSE boundary maps them to errnos in one place later.

use std::path::PathBuf;

use super::csv::CsvError;

/// Result alias of the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Displays as "<op> <path>"; the OS error is its source (anyhow's
    /// `{:#}` prints both, without repeating).
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid CSV: {0}")]
    Csv(CsvError),

    #[error(
        "version conflict: the write started from version {base} but the head is now version {head}"
    )]
    BaseMismatch { base: u64, head: u64 },

    #[error("{what} is locked by pid {pid} (waited {waited_ms} ms)")]
    Locked {
        what: String,
        pid: u32,
        waited_ms: u64,
    },

    /// Content the store refuses (not CSV, which has its own variant).
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },

    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },

    #[error("{kind} {name:?} already exists")]
    Exists { kind: &'static str, name: String },

    #[error("damaged store: {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    #[error("bad configuration {path}: {detail}")]
    Config { path: PathBuf, detail: String },
}

impl From<CsvError> for StorageError {
    fn from(e: CsvError) -> Self {
        StorageError::Csv(e)
    }
}

impl StorageError {
    /// Wraps an I/O error with the operation and path it happened on.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        StorageError::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// The message with its cause, for logs: "write /x/y: No space left on device".
    pub fn report(&self) -> String {
        match self {
            StorageError::Io { source, .. } => format!("{self}: {source}"),
            _ => self.to_string(),
        }
    }

    /// The raw OS error number, when the cause is an I/O error (ENOSPC, EIO, ...).
    pub fn os_error(&self) -> Option<i32> {
        match self {
            StorageError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
