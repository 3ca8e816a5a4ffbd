//! The filesystem layer's error. Each variant is one thing a caller of the
//! mount can be told; `fuse.rs::errno` maps them to errnos in one place.

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("already exists")]
    Exists,
    #[error("read-only: {0}")]
    ReadOnly(&'static str),
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    #[error("is a directory")]
    IsDir,
    #[error("not a directory")]
    NotDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("name too long")]
    NameTooLong,
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    #[error("file larger than the configured limit of {0} bytes")]
    TooBig(u64),
    #[error("rename across directories")]
    CrossDir,
    #[error("not supported")]
    NotSupported,
    #[error("bad file handle")]
    BadHandle,
    /// Content that cannot be committed (CSV errors, empty tables): the
    /// committing call fails; the message is in `@status`.
    #[error("{0}")]
    InvalidContent(String),
    /// A query stopped by its time limit (or its reader gone).
    #[error("{0}")]
    Interrupted(String),
    /// The table changed since this writer's base version.
    #[error("{0}")]
    Stale(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;
