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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub kind: ErrorKind,
    pub message: String,
    /// (line, column) in the query, when known.
    pub pos: Option<(u64, u64)>,
}

impl QueryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> QueryError {
        QueryError {
            kind,
            message: message.into(),
            pos: None,
        }
    }

    pub fn at(mut self, pos: Option<(u64, u64)>) -> QueryError {
        if self.pos.is_none() {
            self.pos = pos.filter(|p| p.0 > 0);
        }
        self
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

impl std::error::Error for QueryError {}

impl From<StorageError> for QueryError {
    fn from(e: StorageError) -> QueryError {
        let kind = match e {
            StorageError::NotFound { .. } => ErrorKind::Unknown,
            _ => ErrorKind::Storage,
        };
        QueryError::new(kind, e.to_string())
    }
}

impl From<MergeError> for QueryError {
    fn from(e: MergeError) -> QueryError {
        QueryError::new(ErrorKind::Storage, e.to_string())
    }
}
