//! Sync: one database in many locations (docs/SYNC.md). It sits on the
//! storage layer and knows nothing of FUSE, SQL or the merge layer.
//!
//! What travels are commit records (`record.rs`), immutable files named by
//! the commit's version name; each location materialises every table's head
//! as the replay of the records it holds in name order (`replay.rs`).

mod applied;
pub mod daemon;
mod error;
pub mod health;
mod inventory;
pub mod locations;
pub mod record;
pub mod replay;
mod round;
pub mod route;
mod site;
pub mod transport;

pub use applied::LostAt;
pub use daemon::Syncer;
pub use error::{Result, SyncError};
pub use inventory::Inventory;
pub use locations::{Access, Location, Locations, Peer, TopologyKind, Url, access, set_access};
pub use round::{
    LocationState, PeerRound, PeerStatus, Round, lag, locations_state, peer_status, round,
    round_with,
};
pub use site::{Integrated, Site, TableIntegrated};
#[cfg(test)]
mod replay_tests;
