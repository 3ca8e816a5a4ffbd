//! The sync layer's error: what failed, naming the file, the peer or the
//! command, so a round's report says why a location did not converge.

use std::path::PathBuf;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A commit record that cannot be used: damaged, torn, of another
    /// database, or misnamed. It is never integrated.
    #[error("commit record {path} (from {peer}): {detail}")]
    BadRecord {
        path: PathBuf,
        peer: String,
        detail: String,
    },
    /// A location's spec, the locations file or a topology is wrong.
    #[error("{0}")]
    Config(String),
    /// A transfer or a remote command failed.
    #[error("{peer}: {what} failed: {detail}")]
    Transport {
        peer: String,
        what: String,
        detail: String,
        /// The peer could not be reached at all (vs. it answered with an error).
        unreachable: bool,
    },
    /// Another round holds the database's sync lock.
    #[error("another sync round is running on database {0}")]
    Busy(String),
}

pub type Result<T, E = SyncError> = std::result::Result<T, E>;
