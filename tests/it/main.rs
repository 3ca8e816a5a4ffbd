//! The one integration-test binary (ripgrep's layout): library behaviour,
//! the crash matrix, the model-based property test, and the real `rdb`
//! binary driven as a user would.

mod cli;
mod crash;
mod frames;
mod history;
mod migrate;
mod model;
mod mount;
mod query;
mod retention;
mod schema_rules;
mod storage;
mod sync;
mod tidy;
mod util;
