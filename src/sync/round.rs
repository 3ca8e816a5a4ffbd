//! A sync round (docs/SYNC.md, "A round"): under the database's sync lock,
//! export and integrate, then with every peer the topology gives: pull
//! what it has that we lack, push what we have that it lacks; integrate
//! what came in; ask each peer we pushed to to integrate too. A peer that
//! fails is reported and skipped: it never stops the round for the others,
//! and a save never waits for a round.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::storage::Database;
use crate::storage::names::now_us;

use super::error::{Result, SyncError};
use super::inventory::{Inventory, PeerView, Summary, parse_answer, to_pull, to_push};
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
    /// The newest record made here when the last exchange with it worked:
    /// what it lags behind this location is the records made here since
    /// ([`lag`]).
    #[serde(default)]
    pub synced_through: String,
}

/// The names of the records made here, sorted (names sort by time).
fn own_records(db: &Database) -> Result<Vec<String>> {
    let node = &db.config().node;
    let mut names = Vec::new();
    for table in db.record_tables(node)? {
        names.extend(db.record_names(node, &table)?);
    }
    names.sort_unstable();
    Ok(names)
}

/// Per peer: the records made here since the last exchange with it worked
/// (all of them when none ever did).
pub fn lag(db: &Database) -> Result<BTreeMap<String, u64>> {
    let own = own_records(db)?;
    Ok(peer_status(db)?
        .into_iter()
        .map(|(peer, s)| {
            let since = own.partition_point(|n| n.as_str() <= s.synced_through.as_str());
            (peer, (own.len() - since) as u64)
        })
        .collect())
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
    let newest = own_records(db)?.pop().unwrap_or_default();
    for p in peers {
        let s = all.entry(p.name.clone()).or_default();
        s.last_attempt_us = now;
        match &p.error {
            None => {
                s.last_success_us = now;
                s.synced_through = newest.clone();
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

/// Asks a peer to export and integrate what it holds, unless a round of
/// its own is running (that round does it), and to say what it holds
/// against our newest file of each directory.
fn ask_peer(remote: &Remote<'_>, user: &str, ours: &Inventory, id: &str) -> Result<PeerView> {
    let questions = ours.questions();
    let view = match &remote.url {
        Url::Path(path) => {
            let db = Database::open(path)?;
            if db.config().id != id {
                return Err(another_database(remote, &db.config().id));
            }
            Site::new(&db, user).integrate_if_free()?;
            let mut v = parse_answer(&Inventory::of(&db)?.answer(&questions));
            v.id = Some(db.config().id.clone());
            v
        }
        Url::Ssh { path, .. } => {
            let mut args = vec![
                "sync:integrate".to_string(),
                path.clone(),
                "--if-free".into(),
                "--summary".into(),
            ];
            for (dir, name) in questions {
                args.push("--after".into());
                args.push(format!("{dir}={name}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            parse_answer(&remote.rdb(&args)?)
        }
    };
    // A location that holds another database is never written to.
    match &view.id {
        Some(theirs) if theirs == id => Ok(view),
        other => Err(another_database(remote, other.as_deref().unwrap_or("none"))),
    }
}

fn another_database(remote: &Remote<'_>, theirs: &str) -> SyncError {
    SyncError::Config(format!(
        "{} ({}) holds another database (id {theirs}); not syncing with it",
        remote.location.name, remote.location.url
    ))
}

fn transport_failed(out: &mut PeerRound, e: SyncError) {
    out.unreachable = matches!(
        e,
        SyncError::Transport {
            unreachable: true,
            ..
        }
    );
    out.error = Some(e.to_string());
}

/// The files and sockets a round works with.
struct Here<'a> {
    db: &'a Database,
    site: Site<'a>,
    sync_dir: PathBuf,
    /// Where ssh keeps shared connections (none: not shared).
    sockets: Option<PathBuf>,
    user: &'a str,
}

impl Here<'_> {
    fn remote<'l>(&self, peer: &'l Peer) -> Result<Remote<'l>> {
        let remote = Remote::new(&peer.location)?;
        Ok(match &self.sockets {
            Some(dir) => remote.sharing(dir.clone()),
            None => remote,
        })
    }

    /// One peer's exchange: ask it (export, integrate, what it holds),
    /// then pull and push only what one side holds and the other lacks.
    fn exchange(&self, peer: &Peer) -> PeerRound {
        let start = Instant::now();
        let mut out = PeerRound {
            name: peer.location.name.clone(),
            ..Default::default()
        };
        let result = (|| -> Result<()> {
            let remote = self.remote(peer)?;
            let ours = Inventory::of(self.db)?;
            let theirs = ask_peer(&remote, self.user, &ours, &self.db.config().id)?;
            if peer.pull {
                let files = to_pull(&theirs, &ours);
                if !files.is_empty() {
                    out.pulled = remote.pull(&self.sync_dir, &files)?;
                }
            }
            if peer.push {
                let files = to_push(&theirs, &Inventory::of(self.db)?);
                if !files.is_empty() {
                    out.pushed = remote.push(&self.sync_dir, &files)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            transport_failed(&mut out, e);
        }
        out.millis = start.elapsed().as_millis() as u64;
        out
    }

    /// Pushes what the peer lacks (asking it first what it holds).
    fn push_only(&self, peer: &Peer) -> Result<Moved> {
        let remote = self.remote(peer)?;
        let ours = Inventory::of(self.db)?;
        let theirs = ask_peer(&remote, self.user, &ours, &self.db.config().id)?;
        let files = to_push(&theirs, &ours);
        if files.is_empty() {
            return Ok(Moved::default());
        }
        remote.push(&self.sync_dir, &files)
    }
}

/// `$REEDBASE_HOME/ssh/` (0700): short enough for ssh's socket names
/// (a database's own directory may be too deep for a Unix socket path).
pub(super) fn socket_dir() -> Option<PathBuf> {
    let dir = crate::storage::Registry::default_home().join("ssh");
    match crate::storage::io::create_private_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::info!(error = %e, "not sharing ssh connections");
            None
        }
    }
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
    let started = Instant::now();
    let round = round_attempt(db, user, only, try_peer);
    let m = crate::metrics::global();
    let name = db.name();
    let outcome = match &round {
        // Every peer backed off: nobody was asked.
        Ok(r) if r.peers.is_empty() => "skipped",
        Ok(r) if r.peers.iter().all(|p| p.error.is_none()) => "ok",
        Ok(r) if r.peers.iter().any(|p| p.error.is_none()) => "partial",
        Err(SyncError::Busy(_)) => "busy",
        _ => "failed",
    };
    crate::metrics::inc(&m.sync_rounds, &[name, outcome]);
    crate::metrics::observe(&m.sync_round_seconds, &[name], started.elapsed());
    if let Ok(r) = &round {
        for p in &r.peers {
            let peer = p.name.as_str();
            crate::metrics::add(&m.sync_bytes, &[name, peer, "sent"], p.pushed.bytes);
            crate::metrics::add(&m.sync_bytes, &[name, peer, "received"], p.pulled.bytes);
            crate::metrics::add(&m.sync_records, &[name, peer, "sent"], p.pushed.files);
            crate::metrics::add(&m.sync_records, &[name, peer, "received"], p.pulled.files);
        }
    }
    if let (Ok(all), Ok(lag)) = (peer_status(db), lag(db)) {
        for (peer, s) in &all {
            let behind = lag.get(peer).copied().unwrap_or(0);
            m.note_peer(name, peer, s.last_success_us, behind);
        }
    }
    round
}

fn round_attempt(
    db: &Database,
    user: &str,
    only: Option<&str>,
    try_peer: &dyn Fn(&str) -> bool,
) -> Result<Round> {
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
    let here = Here {
        db,
        site: Site::new(db, user),
        sync_dir: {
            db.ensure_sync_dir()?;
            db.root().to_path_buf()
        },
        sockets: socket_dir(),
        user,
    };
    let mut round = here.site.locked(|| {
        here.site.integrate_locked()?;
        let mut out = Round::default();
        for p in &peers {
            out.peers.push(here.exchange(p));
        }
        // What came in, and commits made during the exchanges; a round that
        // took nothing and saw no commit skips it (a no-op round stays cheap).
        let pulled = out.peers.iter().any(|p| p.pulled.files > 0);
        if pulled || here.site.has_unexported()? {
            out.local = here.site.integrate_locked()?;
        }
        // A commit made during the exchanges was exported just now: push
        // it in this round rather than leave it for the next (bounded).
        for _ in 0..3 {
            if out.local.exported == 0 {
                break;
            }
            for (p, r) in peers.iter().zip(out.peers.iter_mut()) {
                if !p.push || r.error.is_some() {
                    continue;
                }
                match here.push_only(p) {
                    Ok(m) => {
                        r.pushed.files += m.files;
                        r.pushed.bytes += m.bytes;
                    }
                    Err(e) => transport_failed(r, e),
                }
            }
            let more = here.site.integrate_locked()?;
            out.local.exported = more.exported;
            out.local.tables.extend(more.tables);
            out.local.refused.extend(more.refused);
        }
        Ok(out)
    })?;
    // Outside our lock: the peer takes its own (two locations running
    // rounds with each other never wait on each other's lock).
    for (p, r) in peers.iter().zip(round.peers.iter_mut()) {
        if r.pushed.files == 0 || r.error.is_some() {
            continue;
        }
        let asked = Inventory::of(db).and_then(|ours| {
            here.remote(p)
                .and_then(|remote| ask_peer(&remote, user, &ours, &db.config().id))
        });
        match asked {
            Ok(_) => r.integrated = true,
            Err(e) => {
                transport_failed(r, e);
                if let Some(msg) = &mut r.error {
                    *msg = format!("integrating there: {msg}");
                }
            }
        }
    }
    save_status(db, &round.peers)?;
    match db.sweep_transfer_leftovers(LEFTOVER_AGE) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed what cut transfers left"),
        Err(e) => tracing::warn!(error = %e, "could not sweep what cut transfers left"),
    }
    Ok(round)
}

/// A dot file under `sync/` this old is what a cut transfer left, not one
/// in progress (rsync writes its temp file continuously).
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// A location as `rdb db:info` shows it.
#[derive(Debug, Clone)]
pub struct LocationState {
    pub name: String,
    pub url: String,
    /// This location itself.
    pub me: bool,
    /// Why it could not be asked now (none: it answered).
    pub unreachable: Option<String>,
    /// Records it holds that we lack, and the reverse (directories that
    /// differ other than by new files count whole: an upper bound).
    pub we_lack: usize,
    pub they_lack: usize,
    pub status: Option<PeerStatus>,
}

/// Counts the files behind a copy plan.
fn count(plan: &[String], dirs: &Summary) -> usize {
    plan.iter()
        .map(|p| {
            if p.ends_with(".rec") || p.ends_with(".toml") {
                1
            } else {
                dirs.get(p).map_or(0, |d| d.count)
            }
        })
        .sum()
}

/// Asks every other location what it holds (read-only: nothing is
/// integrated or copied) and puts it next to what this one remembers.
pub fn locations_state(db: &Database) -> Result<Vec<LocationState>> {
    let Some(list) = Locations::load(db)? else {
        return Ok(Vec::new());
    };
    let status = peer_status(db)?;
    let ours = Inventory::of(db)?;
    let questions = ours.questions();
    let sockets = socket_dir();
    let mut out = Vec::new();
    for l in &list.locations {
        let me = l.node == db.config().node;
        let mut s = LocationState {
            name: l.name.clone(),
            url: l.url.clone(),
            me,
            unreachable: None,
            we_lack: 0,
            they_lack: 0,
            status: status.get(&l.name).cloned(),
        };
        if !me {
            let asked = Remote::new(l).and_then(|remote| {
                let remote = match &sockets {
                    Some(d) => remote.sharing(d.clone()),
                    None => remote,
                };
                match &remote.url {
                    Url::Path(path) => Ok(parse_answer(
                        &Inventory::of(&Database::open(path)?)?.answer(&questions),
                    )),
                    Url::Ssh { path, .. } => {
                        let mut args = vec!["sync:remote-summary".to_string(), path.clone()];
                        for (dir, name) in &questions {
                            args.push("--after".into());
                            args.push(format!("{dir}={name}"));
                        }
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        remote.rdb(&args).map(|a| parse_answer(&a))
                    }
                }
            });
            match asked {
                Ok(theirs) => {
                    s.we_lack = count(&to_pull(&theirs, &ours), &theirs.summary);
                    s.they_lack = count(&to_push(&theirs, &ours), &ours.summary());
                }
                Err(e) => s.unreachable = Some(e.to_string()),
            }
        }
        out.push(s);
    }
    Ok(out)
}
