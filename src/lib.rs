//! ReedBase: a versioned CSV database you use through a mounted filesystem.
//!
//! Layers, each with one door (see docs/ARCHITECTURE.md):
//! `storage` (this crate's foundation; knows nothing of FUSE or SQL) is the
//! only layer so far. The `rdb` binary in `src/main.rs` + `src/cli/` sits on top.

pub mod fs;
pub mod merge;
pub mod query;
pub mod storage;
