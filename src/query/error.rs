//! The query layer's error: what went wrong, where in the query (line and
//! column, 1-based), and the kind (which the CLI maps to an exit code and
//! the mount to an errno).

use std::fmt;

use crate::merge::MergeError;
use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not a query.
    Syntax,
    /// A table or column that does not exist.
    Unknown,
    /// A value of the wrong type (arithmetic on a TEXT column, ...).
    Type,
    /// Valid but not supported by ReedQL.
    Unsupported,
    /// A limit: nesting, query size, join size, result size.
    Limit,
    /// More rows than a query may hold in memory (`max_rows_in_memory`):
    /// the engine streams the query instead when it can.
    TooLarge,
    /// Raised while running (integer overflow in SUM, ...).
    Runtime,
    /// The storage or merge layer refused (I/O, a conflict, bad content).
    Storage,
    /// Stopped from outside: its time limit, or its reader went away.
    Interrupted,
}

/// What another layer reported, kept typed so the CLI and the mount can
/// tell a locked table, a full disk or a closed pipe from a bad query.
/// Owned, not shared: the mount hands a storage cause on as its own error
/// (`FsError::Storage`), so the errno is the storage error's.
#[derive(Debug)]
pub enum Cause {
    Storage(StorageError),
    /// A write the merge refused (conflicting cells) or could not parse.
    /// `MergeError::Storage` is never here: it becomes `Storage`.
    Merge(MergeError),
    /// Writing the result (a closed pipe, a full spill file).
    Io(std::io::Error),
}

#[derive(Debug)]
pub struct QueryError {
    pub kind: ErrorKind,
    /// What went wrong; for an error with a `cause`, the cause's own message
    /// (with what the query was doing), never its sources: those follow
    /// through `source()`, so a chain prints each once.
    pub message: String,
    /// (line, column) in the query, when known.
    pub pos: Option<(u64, u64)>,
    /// Boxed: a `Result<_, QueryError>` stays small on the hot paths.
    pub cause: Option<Box<Cause>>,
}

impl QueryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> QueryError {
        QueryError {
            kind,
            message: message.into(),
            pos: None,
            cause: None,
        }
    }

    pub fn at(mut self, pos: Option<(u64, u64)>) -> QueryError {
        if self.pos.is_none() {
            self.pos = pos.filter(|p| p.0 > 0);
        }
        self
    }

    /// Writing the result to its reader failed.
    pub fn output(e: std::io::Error) -> QueryError {
        QueryError {
            cause: Some(Box::new(Cause::Io(e))),
            ..QueryError::new(ErrorKind::Storage, "writing the result")
        }
    }

    /// The storage error behind this one, when there is one.
    pub fn storage(&self) -> Option<&StorageError> {
        match self.cause.as_deref() {
            Some(Cause::Storage(s)) => Some(s),
            _ => None,
        }
    }

    /// The I/O error that stopped writing the result (a closed pipe).
    pub fn io(&self) -> Option<&std::io::Error> {
        match self.cause.as_deref() {
            Some(Cause::Io(e)) => Some(e),
            _ => None,
        }
    }

    /// The message with every cause: what a user reads.
    pub fn report(&self) -> String {
        StorageError::chain(self)
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Unknown => "unknown name",
            ErrorKind::Type => "type error",
            ErrorKind::Unsupported => "not supported",
            ErrorKind::Limit | ErrorKind::TooLarge => "limit",
            ErrorKind::Runtime => "error",
            ErrorKind::Storage => "storage",
            ErrorKind::Interrupted => "interrupted",
        };
        match self.pos {
            Some((l, c)) => write!(f, "{what} at {l}:{c}: {}", self.message),
            None => write!(f, "{what}: {}", self.message),
        }
    }
}

impl std::error::Error for QueryError {
    /// The cause's sources (its own message is already in `message`): for
    /// a storage I/O error, the OS error.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.cause.as_deref()? {
            Cause::Storage(s) => s.source(),
            Cause::Merge(m) => m.source(),
            Cause::Io(e) => Some(e),
        }
    }
}

/// The one mapping of storage errors into the query layer: a missing table
/// is the query's fault (a name), anything else the store's.
impl From<StorageError> for QueryError {
    fn from(e: StorageError) -> QueryError {
        let kind = match e {
            StorageError::NotFound { .. } => ErrorKind::Unknown,
            _ => ErrorKind::Storage,
        };
        QueryError {
            cause: Some(Box::new(Cause::Storage(e))),
            ..QueryError::new(kind, String::new())
        }
        .with_cause_message()
    }
}

/// The one mapping of merge errors into the query layer (the merge runs
/// only for writes): content that is not valid CSV is a type error of the
/// write (a value the column cannot hold); any other storage failure keeps
/// its storage cause; a conflict is the store's refusal.
impl From<MergeError> for QueryError {
    fn from(e: MergeError) -> QueryError {
        match e {
            MergeError::Storage(s) => {
                let csv = matches!(s, StorageError::Csv(_));
                let mut q = QueryError::from(s);
                if csv {
                    q.kind = ErrorKind::Type;
                }
                q
            }
            e => {
                let kind = match e {
                    MergeError::Csv { .. } => ErrorKind::Type,
                    _ => ErrorKind::Storage,
                };
                QueryError {
                    cause: Some(Box::new(Cause::Merge(e))),
                    ..QueryError::new(kind, String::new())
                }
                .with_cause_message()
            }
        }
    }
}

impl QueryError {
    fn with_cause_message(mut self) -> QueryError {
        self.message = match self.cause.as_deref() {
            Some(Cause::Storage(s)) => s.to_string(),
            Some(Cause::Merge(m)) => m.to_string(),
            Some(Cause::Io(e)) => e.to_string(),
            None => return self,
        };
        self
    }

    /// Prefixes the message with what the query was doing ("orders not
    /// changed: ..."); the cause stays.
    pub fn context(mut self, what: impl fmt::Display) -> QueryError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{CsvError, CsvErrorKind};

    fn enospc() -> StorageError {
        StorageError::io(
            "write",
            "/db/t/X.bsdiff.xz",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        )
    }

    #[test]
    fn a_storage_error_stays_the_typed_cause_with_its_os_error() {
        let e = QueryError::from(enospc());
        assert_eq!(e.kind, ErrorKind::Storage);
        assert!(matches!(e.storage(), Some(StorageError::Io { .. })));
        assert_eq!(
            e.storage().and_then(StorageError::os_error),
            Some(libc::ENOSPC)
        );
        let report = e.report();
        assert!(
            report.starts_with("storage: write /db/t/X.bsdiff.xz: "),
            "{report}"
        );
        assert!(report.contains("No space left on device"), "{report}");
        // Said once: the message is the storage error's, the OS error its source.
        assert_eq!(report.matches("X.bsdiff.xz").count(), 1, "{report}");

        let locked = QueryError::from(StorageError::Locked {
            what: "t".into(),
            pid: 7,
            waited_ms: 300,
        });
        assert!(matches!(
            locked.storage(),
            Some(StorageError::Locked { pid: 7, .. })
        ));
        let missing = QueryError::from(StorageError::NotFound {
            kind: "table",
            name: "t".into(),
        });
        assert_eq!(missing.kind, ErrorKind::Unknown);
    }

    #[test]
    fn a_merge_error_keeps_its_cause_and_bad_csv_is_a_type_error() {
        let csv = || CsvError {
            line: 2,
            column: None,
            kind: CsvErrorKind::NoHeader,
        };
        let e = QueryError::from(MergeError::Storage(enospc())).context("t not changed");
        assert_eq!(e.kind, ErrorKind::Storage);
        assert!(matches!(e.storage(), Some(StorageError::Io { .. })));
        assert!(
            e.report().contains("t not changed: write"),
            "{}",
            e.report()
        );
        assert!(
            e.report().contains("No space left on device"),
            "{}",
            e.report()
        );

        let e = QueryError::from(MergeError::Storage(StorageError::Csv(csv())));
        assert_eq!(e.kind, ErrorKind::Type);
        let e = QueryError::from(MergeError::Csv {
            side: "ours",
            error: csv(),
        });
        assert_eq!(e.kind, ErrorKind::Type);
        let e = QueryError::from(MergeError::Conflicts {
            conflicts: Vec::new(),
            head: 3,
        });
        assert_eq!(e.kind, ErrorKind::Storage);
        assert!(matches!(
            e.cause.as_deref(),
            Some(Cause::Merge(MergeError::Conflicts { head: 3, .. }))
        ));
    }

    #[test]
    fn a_closed_pipe_is_an_io_cause_by_its_kind() {
        let e = QueryError::output(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(
            e.io().map(std::io::Error::kind),
            Some(std::io::ErrorKind::BrokenPipe)
        );
    }
}
