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

    /// A version whose bytes were removed by `version:prune`.
    #[error("version {seq} of table {table:?} was pruned: the oldest version kept is {oldest}")]
    Pruned {
        table: String,
        seq: u64,
        oldest: u64,
    },

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
        Self::chain(self)
    }

    /// An error with every cause in its chain, "outer: inner: ...": what a user
    /// reads (stderr, `@status`, logs) must say why, not only what failed. An
    /// error whose Display already ends with its source's text (some wrap their
    /// cause in the message) does not repeat it.
    pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            let text = s.to_string();
            if !text.is_empty() && !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = s.source();
        }
        out
    }

    /// A file that a committed `version.log` line references (a delta, a
    /// keyframe) and that cannot be found is damage, not "no such file": the
    /// version exists, its bytes are gone. Other errors pass unchanged.
    pub fn referenced(self) -> Self {
        match self {
            StorageError::Io { path, source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                StorageError::Corrupt {
                    path,
                    detail: "missing, but version.log references it".into(),
                }
            }
            e => e,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_referenced_file_is_damage_and_other_errors_pass() {
        let gone = StorageError::io(
            "read",
            "/db/t/X.bsdiff",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        match gone.referenced() {
            StorageError::Corrupt { path, .. } => assert_eq!(path, PathBuf::from("/db/t/X.bsdiff")),
            other => panic!("{other:?}"),
        }
        let eio = StorageError::io(
            "read",
            "/db/t/X.bsdiff",
            std::io::Error::from_raw_os_error(5),
        );
        assert_eq!(eio.referenced().os_error(), Some(5));
    }

    #[test]
    fn the_report_carries_the_os_error_once() {
        let e = StorageError::io(
            "write",
            "/db/t/X.bsdiff.xz",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(e.to_string(), "write /db/t/X.bsdiff.xz");
        let r = e.report();
        assert!(
            r.starts_with("write /db/t/X.bsdiff.xz: No space left on device"),
            "{r}"
        );
        assert_eq!(r.matches("No space").count(), 1, "{r}");
    }
}
