//! The filesystem layer's error. Each variant is one thing a caller of the
//! mount can be told; `fuse.rs::errno` maps them to errnos in one place.

use crate::merge::MergeError;
use crate::query::{Cause, ErrorKind, QueryError};
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

/// The one mapping of a refused or failed merge (a save, a frame, a
/// resolved conflict) to what the caller of the mount is told. Content
/// that does not parse is refused (EINVAL); a conflict with what others
/// committed is `Stale` (EBUSY); the store's own failures keep their
/// storage error (ENOSPC, EIO, EBUSY for a lock). Messages carry the whole
/// chain of causes.
impl From<MergeError> for FsError {
    fn from(e: MergeError) -> FsError {
        match e {
            MergeError::Storage(StorageError::Csv(_)) | MergeError::Csv { .. } => {
                FsError::InvalidContent(StorageError::chain(&e))
            }
            MergeError::Storage(StorageError::BaseMismatch { .. })
            | MergeError::Conflicts { .. } => FsError::Stale(StorageError::chain(&e)),
            MergeError::Storage(s) => FsError::Storage(s),
        }
    }
}

/// The one mapping of a failed query of `@query/` to the mount's errors. A
/// bad query is refused (EINVAL); its time limit is `Interrupted`
/// (ETIMEDOUT); a failure below the query is that failure: a locked table
/// EBUSY, a full disk ENOSPC, a damaged version EIO, not a bad query.
impl From<QueryError> for FsError {
    fn from(e: QueryError) -> FsError {
        let message = e.report();
        match (e.kind, e.cause.map(|c| *c)) {
            (ErrorKind::Interrupted, _) => FsError::Interrupted(message),
            (ErrorKind::Storage | ErrorKind::Runtime, Some(Cause::Storage(s))) => {
                FsError::Storage(s)
            }
            (ErrorKind::Storage | ErrorKind::Runtime, Some(Cause::Merge(m))) => m.into(),
            (ErrorKind::Storage | ErrorKind::Runtime, Some(Cause::Io(io))) => {
                FsError::Storage(StorageError::io("write a query result to", "@query", io))
            }
            _ => FsError::InvalidContent(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fuse::errno;
    use crate::storage::{CsvError, CsvErrorKind};
    use fuser::Errno;

    fn io(code: i32) -> StorageError {
        StorageError::io(
            "write",
            "/db/t/X.bsdiff.xz",
            std::io::Error::from_raw_os_error(code),
        )
    }

    fn locked() -> StorageError {
        StorageError::Locked {
            what: "t".into(),
            pid: 7,
            waited_ms: 300,
        }
    }

    #[test]
    fn merge_errors_map_to_errnos() {
        let csv = MergeError::Csv {
            side: "ours",
            error: CsvError {
                line: 2,
                column: None,
                kind: CsvErrorKind::NoHeader,
            },
        };
        assert_eq!(errno(&csv.into()), Errno::EINVAL);
        let conflict = MergeError::Conflicts {
            conflicts: Vec::new(),
            head: 2,
        };
        assert_eq!(errno(&conflict.into()), Errno::EBUSY);
        let stale = MergeError::Storage(StorageError::BaseMismatch { base: 1, head: 2 });
        assert_eq!(errno(&stale.into()), Errno::EBUSY);
        assert_eq!(errno(&MergeError::Storage(locked()).into()), Errno::EBUSY);
        assert_eq!(
            errno(&MergeError::Storage(io(libc::ENOSPC)).into()),
            Errno::ENOSPC
        );
    }

    #[test]
    fn query_errors_map_to_errnos_by_their_cause() {
        let q = |s: StorageError| FsError::from(QueryError::from(s));
        assert_eq!(errno(&q(locked())), Errno::EBUSY);
        assert_eq!(errno(&q(io(libc::EIO))), Errno::EIO);
        assert_eq!(errno(&q(io(libc::ENOSPC))), Errno::ENOSPC);
        assert_eq!(
            errno(&q(StorageError::corrupt("/db/t/X.bsdiff", "missing"))),
            Errno::EIO
        );
        // A name the query used that does not exist is the query's fault.
        let unknown = StorageError::NotFound {
            kind: "table",
            name: "nope".into(),
        };
        assert_eq!(errno(&q(unknown)), Errno::EINVAL);
        let syntax = QueryError::new(ErrorKind::Syntax, "near FROM");
        assert_eq!(errno(&syntax.into()), Errno::EINVAL);
        let timeout = QueryError::new(ErrorKind::Interrupted, "the query ran longer than 10 ms");
        assert_eq!(errno(&timeout.into()), Errno::ETIMEDOUT);
        let spill = QueryError::output(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(errno(&spill.into()), Errno::ENOSPC);
    }

    #[test]
    fn messages_carry_the_os_error() {
        let FsError::Stale(m) = FsError::from(MergeError::Conflicts {
            conflicts: Vec::new(),
            head: 2,
        }) else {
            panic!("a conflict is Stale");
        };
        assert!(m.contains("conflicting cell"), "{m}");
        let FsError::Interrupted(m) =
            FsError::from(QueryError::new(ErrorKind::Interrupted, "time limit"))
        else {
            panic!("a time limit is Interrupted");
        };
        assert_eq!(m, "interrupted: time limit");
        let report = StorageError::chain(&FsError::from(MergeError::Storage(io(libc::ENOSPC))));
        assert!(
            report.starts_with("write /db/t/X.bsdiff.xz: No space left on device"),
            "{report}"
        );
    }
}
