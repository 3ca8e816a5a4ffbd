//! A sync round (docs/SYNC.md, "A round"): under the database's sync lock,
//! export and integrate, then with every peer the topology gives: pull
//! what it has that we lack, push what we have that it lacks; integrate
//! what came in; ask each peer we pushed to to integrate too. A peer that
//! fails is reported and skipped: it never stops the round for the others,
//! and a save never waits for a round.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::storage::Database;
use crate::storage::names::now_us;

use super::error::{Result, SyncError};
use super::locations::{Locations, Peer, Url};
use super::site::{Integrated, Site};
use super::transport::{Moved, Remote};

/// What happened with one peer in a round.
#[derive(Debug, Clone, Default)]
pub struct PeerRound {
    pub name: String,
    pub pulled: Moved,
    pub pushed: Moved,
    /// The peer integrated what we pushed (false: it was busy, or we did not push).
    pub integrated: bool,
    pub millis: u64,
    /// Why the exchange failed (none: it worked).
    pub error: Option<String>,
    pub unreachable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Round {
    /// The integration after the exchanges (with what the first one exported).
    pub local: Integrated,
    pub peers: Vec<PeerRound>,
}

/// What a location remembers of each peer (`state/sync/peers.toml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerStatus {
    pub last_success_us: u64,
    pub last_attempt_us: u64,
    #[serde(default)]
    pub last_error: String,
    #[serde(default)]
    pub unreachable: bool,
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub bytes_received: u64,
    #[serde(default)]
    pub records_sent: u64,
    #[serde(default)]
    pub records_received: u64,
}

const PEERS: &str = "peers.toml";

pub fn peer_status(db: &Database) -> Result<BTreeMap<String, PeerStatus>> {
    let Some(bytes) = db.read_sync_state(PEERS)? else {
        return Ok(BTreeMap::new());
    };
    Ok(toml::from_str(&String::from_utf8_lossy(&bytes)).unwrap_or_default())
}

fn save_status(db: &Database, peers: &[PeerRound]) -> Result<()> {
    let mut all = peer_status(db)?;
    let now = now_us();
    for p in peers {
        let s = all.entry(p.name.clone()).or_default();
        s.last_attempt_us = now;
        match &p.error {
            None => {
                s.last_success_us = now;
                s.last_error.clear();
                s.unreachable = false;
            }
            Some(e) => {
                s.last_error = e.clone();
                s.unreachable = p.unreachable;
            }
        }
        s.bytes_received += p.pulled.bytes;
        s.bytes_sent += p.pushed.bytes;
        s.records_received += p.pulled.files;
        s.records_sent += p.pushed.files;
    }
    let text = toml::to_string(&all).map_err(|e| SyncError::Config(e.to_string()))?;
    db.write_sync_state(PEERS, text.as_bytes())?;
    Ok(())
}

/// Asks the database at a local path to integrate, unless a round of its
/// own holds its lock (it integrates at the end of that round anyway).
fn integrate_at_path(path: &Path, user: &str) -> Result<bool> {
    let db = Database::open(path)?;
    Site::new(&db, user).integrate_if_free()
}

/// Asks a peer to export and integrate what it holds, unless a round of
/// its own is running (that round does it); whether it did.
fn ask_to_integrate(peer: &Peer, user: &str) -> Result<bool> {
    let remote = Remote::new(&peer.location)?;
    match &remote.url {
        Url::Path(path) => integrate_at_path(path, user),
        Url::Ssh { path, .. } => remote
            .rdb(&["sync:integrate", path, "--if-free"])
            .map(|out| !out.contains("busy")),
    }
}

fn exchange(local_sync: &Path, peer: &Peer, user: &str) -> PeerRound {
    let start = Instant::now();
    let mut out = PeerRound {
        name: peer.location.name.clone(),
        ..Default::default()
    };
    let result = (|| -> Result<()> {
        let remote = Remote::new(&peer.location)?;
        if peer.pull {
            // Its own commits travel once it has exported them: ask it to
            // (a mount or `sync:run` there has already).
            ask_to_integrate(peer, user)?;
            out.pulled = remote.pull(local_sync)?;
        }
        if peer.push {
            out.pushed = remote.push(local_sync)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        out.unreachable = matches!(
            e,
            SyncError::Transport {
                unreachable: true,
                ..
            }
        );
        out.error = Some(e.to_string());
    }
    out.millis = start.elapsed().as_millis() as u64;
    out
}

/// Runs one round with every peer (or only `only`, by name).
pub fn round(db: &Database, user: &str, only: Option<&str>) -> Result<Round> {
    round_with(db, user, only, &|_| true)
}

/// [`round`] with the peers `try_peer` accepts (by name): a daemon skips
/// those it backs off from.
pub fn round_with(
    db: &Database,
    user: &str,
    only: Option<&str>,
    try_peer: &dyn Fn(&str) -> bool,
) -> Result<Round> {
    let site = Site::new(db, user);
    let locations = Locations::load(db)?.ok_or_else(|| {
        SyncError::Config(format!(
            "database {} has no locations: add one with `rdb location:add`",
            db.name()
        ))
    })?;
    let mut peers = locations.peers(&db.config().node);
    if let Some(name) = only {
        peers.retain(|p| p.location.name == name);
        if peers.is_empty() {
            return Err(SyncError::Config(format!(
                "{name} is not a peer of this location"
            )));
        }
    }
    peers.retain(|p| try_peer(&p.location.name));
    let local_sync = db.ensure_sync_dir()?;
    let mut round = site.locked(|| {
        site.integrate_locked()?;
        let mut out = Round::default();
        for p in &peers {
            out.peers.push(exchange(&local_sync, p, user));
        }
        out.local = site.integrate_locked()?;
        // A commit made during the exchanges was exported just now: push
        // it in this round rather than leave it for the next (bounded).
        for _ in 0..3 {
            if out.local.exported == 0 {
                break;
            }
            for (p, r) in peers.iter().zip(out.peers.iter_mut()) {
                if p.push && r.error.is_none() {
                    let again = exchange(
                        &local_sync,
                        &Peer {
                            pull: false,
                            ..p.clone()
                        },
                        user,
                    );
                    r.pushed.files += again.pushed.files;
                    r.pushed.bytes += again.pushed.bytes;
                    r.error = again.error;
                    r.unreachable = again.unreachable;
                }
            }
            let more = site.integrate_locked()?;
            out.local.exported = more.exported;
            out.local.tables.extend(more.tables);
            out.local.refused.extend(more.refused);
        }
        Ok(out)
    })?;
    // Outside our lock: the peer takes its own (two locations running
    // rounds with each other never wait on each other's lock).
    for (p, r) in peers.iter().zip(round.peers.iter_mut()) {
        if !p.push || r.error.is_some() {
            continue;
        }
        match ask_to_integrate(p, user) {
            Ok(done) => r.integrated = done,
            Err(e) => {
                r.unreachable = matches!(
                    e,
                    SyncError::Transport {
                        unreachable: true,
                        ..
                    }
                );
                r.error = Some(format!("integrating there: {e}"));
            }
        }
    }
    save_status(db, &round.peers)?;
    Ok(round)
}
