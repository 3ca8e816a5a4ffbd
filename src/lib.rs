//! ReedBase: a versioned CSV database you use through a mounted filesystem.
//!
//! Layers, each with one door, and dependencies that point only down
//! (docs/ARCHITECTURE.md maps them and the rules that keep them so):
//! `storage` (the backing store: tables, versions, the registry; knows nothing
//! of FUSE or SQL) <- `merge` (three-way merges and conflicts) <- `query`
//! (ReedQL) <- `fs` (the mount, testable without a kernel). The `rdb` binary in
//! `src/main.rs` + `src/cli/` sits on top; `sync` (locations and commit
//! records) sits on `storage`. `metrics` is a leaf every layer records into.

pub mod fs;
pub mod merge;
pub mod metrics;
pub mod query;
pub mod storage;
pub mod sync;
