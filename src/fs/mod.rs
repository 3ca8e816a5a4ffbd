//! The mounted filesystem. `core` holds the logic and is testable without a
//! kernel; `fuse` is the only file that names fuser types.

mod core;
mod error;
pub mod fuse;
mod node;
mod query_pool;
mod spill;
mod status;

pub use core::{Attr, Caching, Caller, Kind, MountOptions, MountedDb, ReedFs, SetAttr};
pub use error::{FsError, Result};
