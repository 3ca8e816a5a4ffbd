//! The storage layer: the backing store (tables, their versions, the
//! registry; docs/FORMAT.md is its on-disk contract). It knows nothing of
//! FUSE or SQL. Its door is this module: [`Database`],
//! [`Table`], [`Registry`] and the types they return.

pub mod attrs;
pub mod backup;
mod config;
mod conflict_store;
pub mod csv;
mod database;
pub mod delta;
mod dict;
mod error;
pub mod fault;
pub mod feed;
pub mod frame;
pub mod hash;
mod head_writer;
#[cfg(test)]
mod helpers_tests;
pub mod io;
pub mod kept;
mod keyhash;
pub mod linediff;
mod lock;
mod log;
pub mod names;
mod open_frame;
pub mod pack;
mod par_bzip2;
mod progress;
mod registry;
mod retention;
mod revisions;
pub mod rowdiff;
mod saved_query;
mod schema;
pub mod schema_change;
mod schema_rules;
mod sync_files;
mod table;
mod unindexed;
mod verify;
mod zero_bzip2;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use config::{Config, ConflictPolicy};
pub use conflict_store::{ConflictCell, ConflictFile, ConflictInfo, cells_csv};
pub use csv::{CsvError, CsvErrorKind, Hunk, TableIndex};
pub use database::{Database, TableSummary, anonymous_file_in};
pub use dict::Action;
pub use error::{Result, StorageError};
pub use frame::{Decision, Frame, FrameCommitted, FrameInfo, Staged};
pub use io::{Io, RealIo};
pub use lock::{LockFile, LockGuard};
pub use log::content_hash;
pub use progress::Progress;
pub use registry::{DbEntry, LOCAL_DIR, Mode, Registry};
pub use retention::{MOUNT_PINS_PREFIX, Pins, Retention, TablePruned, keep_since_us};
pub use revisions::Revision;
pub use saved_query::{MAX_QUERY_BYTES, SavedQuery};
pub use schema::{ColumnType, Schema};
pub use schema_rules::{Bound, ColumnRules, RuleType, Rules, Violation};
pub use sync_files::{SYNC_DIR, SYNC_LOCK_WAIT, valid_component};
pub use table::{
    Base, CURRENT, ChangeKind, CommitOptions, Committed, FLOOR, HISTORY_COLUMNS, LOG, PruneReport,
    ROW_LOG, RowChange, SCHEMA, Table, TableSnapshot, VersionInfo,
};
pub use verify::{Problem, VerifyOptions, VerifyReport};

/// What every table of one database shares.
#[derive(Debug)]
pub(crate) struct DbCtx {
    pub io: Arc<dyn Io>,
    pub root: PathBuf,
    pub config: Config,
    pub users: Mutex<dict::UserDict>,
    /// Write `current.csv` on a background thread (default) or inside the
    /// commit (deterministic operation counts for the crash tests).
    pub background_head: std::sync::atomic::AtomicBool,
    /// Frame decisions (cached) and what recovery did.
    pub frames: frame::FrameRecords,
}
