//! Continuous sync (docs/SYNC.md, "Continuous sync"): a thread per
//! distributed database, in the mount daemon and in `rdb sync:run`.
//!
//! It watches the store with `notify` (inotify):
//! - a record arriving under `sync/records/` (a peer pushed it, or another
//!   process exported it) is integrated within `ARRIVAL_DEBOUNCE`, without
//!   touching the network: the mount then shows it at the next access;
//! - a `version.log` that grew with a local commit not yet exported starts
//!   a round after `COMMIT_DEBOUNCE` (commits in a burst share one);
//! - every `interval` a round runs anyway.
//!
//! A peer that fails is retried with exponential backoff (up to
//! `MAX_BACKOFF`); it never delays a save, which never waits for a round.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::storage::Database;

use super::round::{Round, round_with};
use super::site::Site;

const ARRIVAL_DEBOUNCE: Duration = Duration::from_millis(30);
const COMMIT_DEBOUNCE: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What the watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Arrived,
    Committed,
}

/// Backoff of one peer: failures in a row and when to try again.
#[derive(Debug, Default, Clone)]
struct Backoff {
    failures: u32,
    next: Option<Instant>,
}

/// How long to leave a peer alone after `failures` failed rounds in a row:
/// the interval doubled per failure, at most `MAX_BACKOFF`.
fn backoff_wait(interval: Duration, failures: u32) -> Duration {
    interval
        .saturating_mul(1u32 << failures.min(20))
        .min(MAX_BACKOFF)
}

/// A running syncer; stops (and joins its thread) on drop.
pub struct Syncer {
    stop: Arc<AtomicBool>,
    wake: Sender<Option<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The last round's outcome, for status displays.
    pub last: Arc<Mutex<Option<Round>>>,
}

/// Calls `report` after every round (the CLI prints it).
pub type Reporter = Box<dyn Fn(&Round) + Send>;

impl Syncer {
    /// Starts syncing the database at `root` every `interval`, and on
    /// changes seen by the watcher.
    pub fn start(
        root: PathBuf,
        user: String,
        interval: Duration,
        report: Option<Reporter>,
    ) -> std::io::Result<Syncer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel::<Option<Seen>>();
        let last = Arc::new(Mutex::new(None));
        Database::open(&root)
            .and_then(|db| db.ensure_sync_dir())
            .map_err(std::io::Error::other)?;
        let watcher = watch(&root, tx.clone()).map_err(std::io::Error::other)?;
        let (stop2, last2) = (Arc::clone(&stop), Arc::clone(&last));
        let thread = std::thread::Builder::new()
            .name("rdb-sync".into())
            .spawn(move || {
                // The watcher lives as long as the loop.
                let _watcher = watcher;
                run(
                    &root,
                    &user,
                    interval,
                    &rx,
                    &stop2,
                    &last2,
                    report.as_deref(),
                );
            })?;
        Ok(Syncer {
            stop,
            wake: tx,
            thread: Some(thread),
            last,
        })
    }
}

impl Syncer {
    /// Whether the thread still runs (it stops when its database is gone).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(root: &Path, tx: Sender<Option<Seen>>) -> notify::Result<notify::RecommendedWatcher> {
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if !matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_)) {
            return;
        }
        for p in &ev.paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let seen = if name.ends_with(".rec") && !name.starts_with('.') {
                Some(Seen::Arrived)
            } else if name == crate::storage::LOG {
                Some(Seen::Committed)
            } else {
                None
            };
            if let Some(s) = seen {
                let _ = tx.send(Some(s));
            }
        }
    })?;
    w.watch(&root.join("tables"), RecursiveMode::Recursive)?;
    w.watch(
        &root.join(crate::storage::SYNC_DIR),
        RecursiveMode::Recursive,
    )?;
    Ok(w)
}

#[allow(clippy::too_many_arguments)]
fn run(
    root: &Path,
    user: &str,
    interval: Duration,
    rx: &Receiver<Option<Seen>>,
    stop: &AtomicBool,
    last: &Mutex<Option<Round>>,
    report: Option<&(dyn Fn(&Round) + Send)>,
) {
    let mut backoff: HashMap<String, Backoff> = HashMap::new();
    let mut next_round = Instant::now();
    let mut arrived: Option<Instant> = None;
    let mut committed: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let due = [Some(next_round), arrived, committed]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_round);
        match rx.recv_timeout(due.saturating_duration_since(now)) {
            Ok(Some(seen)) if stop.load(Ordering::SeqCst) => {
                tracing::debug!(?seen, "sync: stopping");
                return;
            }
            Ok(Some(Seen::Arrived)) => {
                tracing::debug!("sync: a record arrived");
                arrived.get_or_insert(Instant::now() + ARRIVAL_DEBOUNCE);
                continue;
            }
            Ok(Some(Seen::Committed)) => {
                tracing::debug!("sync: a log grew");
                committed.get_or_insert(Instant::now() + COMMIT_DEBOUNCE);
                continue;
            }
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let db = match Database::open(root) {
            Ok(db) => db,
            Err(e) => {
                if !root.join("config.toml").exists() {
                    tracing::warn!(root = %root.display(), "sync: the database is gone; stopping");
                    return;
                }
                tracing::warn!(error = %e, "sync: cannot open the database");
                // Try again at the next round, not at once.
                (arrived, committed) = (None, None);
                next_round = now + interval;
                continue;
            }
        };
        let site = Site::new(&db, user);
        let commit_due = committed.is_some_and(|t| t <= now);
        if commit_due {
            committed = None;
            // Our own integrations grow the log too: only a local commit
            // not yet exported calls for a round.
            let unexported = site.has_unexported();
            tracing::debug!(?unexported, "sync: after a commit");
            if !unexported.unwrap_or(true) {
                continue;
            }
        }
        if arrived.is_some_and(|t| t <= now) && !commit_due && next_round > now {
            arrived = None;
            if let Err(e) = site.integrate_if_free() {
                tracing::warn!(error = %e, "sync: integrating arrived records failed");
            }
            continue;
        }
        arrived = None;
        next_round = now + interval;
        let result = round_with(&db, user, None, &|peer: &str| {
            backoff
                .get(peer)
                .and_then(|b| b.next)
                .is_none_or(|t| t <= Instant::now())
        });
        match result {
            Ok(r) => {
                for p in &r.peers {
                    let b = backoff.entry(p.name.clone()).or_default();
                    if p.error.is_some() {
                        b.failures = b.failures.saturating_add(1);
                        b.next = Some(Instant::now() + backoff_wait(interval, b.failures));
                    } else {
                        *b = Backoff::default();
                    }
                }
                if let Some(report) = report {
                    report(&r);
                }
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
            Err(e) => tracing::warn!(error = %e, "sync round failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_peer_is_left_alone_longer_each_time_up_to_ten_minutes() {
        let i = Duration::from_secs(30);
        assert_eq!(backoff_wait(i, 1), Duration::from_secs(60));
        assert_eq!(backoff_wait(i, 2), Duration::from_secs(120));
        assert_eq!(
            backoff_wait(i, 4),
            MAX_BACKOFF.min(Duration::from_secs(480))
        );
        assert_eq!(backoff_wait(i, 5), MAX_BACKOFF);
        assert_eq!(backoff_wait(i, u32::MAX), MAX_BACKOFF);
    }
}
