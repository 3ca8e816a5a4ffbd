//! Health of a database's locations (docs/SYNC.md, "Health and routed
//! queries"): each location probes every other one: whether it answers,
//! the round trip of a command (the median of a few, over the shared ssh
//! connection), and its load and memory as `rdb node:health` reports them
//! there. Probes are kept per location in `$REEDBASE_HOME/routing/<db>/`
//! (`<location>.csv`, the last [`HISTORY`] probes), refreshed by a daemon
//! every `health_interval_seconds` and by `rdb db:health`; routed queries
//! read them. The routing directory also keeps the list of locations and
//! the database id, so a query can be routed when the local copy is gone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::metrics::{NodeHealth, median, node_health};
use crate::storage::io::{RealIo, create_private_dir, read_file, replace_file};
use crate::storage::names::now_us;
use crate::storage::{Config, Database, Registry};

use super::error::{Result, SyncError};
use super::locations::{Location, Locations, Url};
use super::transport::Remote;

/// Probes kept per location.
pub const HISTORY: usize = 100;
/// How long one probe may take in all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Round trips measured per probe (the median is kept).
const PINGS: usize = 5;

/// One probe of one location.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub location: String,
    pub at_us: u64,
    /// The median round trip of a command (none: it did not answer).
    pub latency: Option<Duration>,
    pub node: Option<NodeHealth>,
    /// Why it is unreachable or did not answer (none: it did).
    pub error: Option<String>,
}

/// What a probe says of a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Healthy,
    /// It answers but is loaded past a threshold: why.
    Degraded(String),
    /// It does not answer: why.
    Unhealthy(String),
}

impl State {
    pub fn word(&self) -> &'static str {
        match self {
            State::Healthy => "Healthy",
            State::Degraded(_) => "Degraded",
            State::Unhealthy(_) => "Unhealthy",
        }
    }
}

impl Probe {
    /// Its state under the thresholds of `cfg`.
    pub fn state(&self, cfg: &Config) -> State {
        if let Some(e) = &self.error {
            return State::Unhealthy(e.clone());
        }
        let Some(n) = &self.node else {
            return State::Unhealthy("no health answer".into());
        };
        let cpu_max = cfg.health_max_cpu_percent as f64 / 100.0;
        let mem_max = cfg.health_max_memory_percent as f64 / 100.0;
        if n.cpu > cpu_max {
            return State::Degraded(format!(
                "CPU {:.0}% > {}%",
                n.cpu * 100.0,
                cfg.health_max_cpu_percent
            ));
        }
        if n.memory > mem_max {
            return State::Degraded(format!(
                "memory {:.0}% > {}%",
                n.memory * 100.0,
                cfg.health_max_memory_percent
            ));
        }
        State::Healthy
    }

    /// One line of a history file: `time_us,latency_ms,cpu,memory,cores,error`.
    fn line(&self) -> String {
        let (cpu, mem, cores) =
            self.node
                .map_or((String::new(), String::new(), String::new()), |n| {
                    (
                        format!("{:.4}", n.cpu),
                        format!("{:.4}", n.memory),
                        n.cores.to_string(),
                    )
                });
        let latency = self
            .latency
            .map_or(String::new(), |d| format!("{:.3}", d.as_secs_f64() * 1e3));
        let error = self
            .error
            .as_deref()
            .unwrap_or("")
            .replace(['\n', '\r'], " ");
        format!("{},{latency},{cpu},{mem},{cores},{error}", self.at_us)
    }

    fn parse(location: &str, line: &str) -> Option<Probe> {
        let f: Vec<&str> = line.splitn(6, ',').collect();
        let [at, latency, cpu, mem, cores, error] = f.as_slice() else {
            return None;
        };
        let node = match (cpu.parse::<f64>(), mem.parse::<f64>(), cores.parse::<u64>()) {
            (Ok(cpu), Ok(memory), Ok(cores)) => Some(NodeHealth {
                cores,
                cpu,
                memory,
                load1: cpu * cores as f64,
                ..NodeHealth::default()
            }),
            _ => None,
        };
        Some(Probe {
            location: location.to_string(),
            at_us: at.parse().ok()?,
            // A damaged file's NaN or negative number is no latency.
            latency: latency
                .parse::<f64>()
                .ok()
                .and_then(|ms| Duration::try_from_secs_f64(ms / 1e3).ok()),
            node,
            error: (!error.is_empty()).then(|| error.to_string()),
        })
    }
}

/// `$REEDBASE_HOME/routing/<db>/` (private).
fn routing_dir(db_name: &str) -> Result<PathBuf> {
    if !crate::storage::valid_component(db_name) {
        return Err(SyncError::Config(format!(
            "{db_name:?} cannot name a routing directory"
        )));
    }
    let dir = Registry::default_home().join("routing").join(db_name);
    create_private_dir(&dir).map_err(|e| SyncError::Config(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// Probes `l` now, within `timeout` in all (at most [`PROBE_TIMEOUT`]);
/// this location itself: this machine's load, no latency.
pub fn probe_location(
    l: &Location,
    id: &str,
    me: bool,
    sockets: Option<PathBuf>,
    timeout: Duration,
) -> Probe {
    let started = Instant::now();
    let deadline = started + timeout.min(PROBE_TIMEOUT);
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(SyncError::Transport {
                peer: l.name.clone(),
                what: "probe".into(),
                detail: "out of time".into(),
                unreachable: true,
            })
        } else {
            Ok(d)
        }
    };
    let mut p = Probe {
        location: l.name.clone(),
        at_us: now_us(),
        latency: None,
        node: None,
        error: None,
    };
    if me {
        p.latency = Some(Duration::ZERO);
        p.node = Some(node_health());
        return p;
    }
    let asked = Remote::new(l).and_then(|remote| {
        let remote = match sockets {
            Some(d) => remote.sharing(d),
            None => remote,
        };
        match &remote.url {
            Url::Path(path) => {
                let db = Database::open(path)?;
                if db.config().id != id {
                    return Err(SyncError::Config(format!(
                        "{} holds another database ({})",
                        l.name,
                        db.config().id
                    )));
                }
                Ok((started.elapsed(), node_health()))
            }
            Url::Ssh { .. } => {
                // The first command opens the shared connection; the
                // round trips are measured over it.
                let ran = remote.rdb_ran(&["node:health"], left()?)?;
                if ran.status != Some(0) {
                    return Err(remote.failure("rdb node:health", &ran));
                }
                let node = NodeHealth::from_json(&ran.stdout).ok_or_else(|| {
                    SyncError::Config(format!(
                        "{}: rdb node:health answered {:?}",
                        l.name,
                        ran.stdout.trim()
                    ))
                })?;
                let mut rtts = Vec::with_capacity(PINGS);
                for _ in 0..PINGS {
                    rtts.push(remote.ping(left()?)?);
                }
                Ok((median(rtts).unwrap_or_default(), node))
            }
        }
    });
    match asked {
        Ok((latency, node)) => {
            p.latency = Some(latency);
            p.node = Some(node);
        }
        Err(e) => p.error = Some(e.to_string()),
    }
    p
}

/// The list of locations and the database id, as the routing directory
/// keeps them (`locations.toml`, with this site's access settings).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Routing {
    pub id: String,
    /// Where this location's copy is (a saved view is used for the
    /// database at this path only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// This location's name.
    pub me: String,
    #[serde(rename = "location")]
    pub locations: Vec<RoutedLocation>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoutedLocation {
    pub name: String,
    pub url: String,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdb: Option<String>,
}

impl RoutedLocation {
    pub fn location(&self) -> Location {
        Location {
            name: self.name.clone(),
            url: self.url.clone(),
            node: self.node.clone(),
            ssh: self.ssh.clone(),
            rdb: self.rdb.clone(),
        }
    }
}

/// The routing view of `db` now (none: it is not distributed).
pub fn routing_of(db: &Database) -> Result<Option<Routing>> {
    let Some(list) = Locations::load(db)? else {
        return Ok(None);
    };
    let node = &db.config().node;
    Ok(Some(Routing {
        id: db.config().id.clone(),
        root: Some(db.root().display().to_string()),
        me: list.me(node).map(|l| l.name.clone()).unwrap_or_default(),
        locations: list
            .locations
            .iter()
            .map(|l| RoutedLocation {
                name: l.name.clone(),
                url: l.url.clone(),
                node: l.node.clone(),
                ssh: l.ssh.clone(),
                rdb: l.rdb.clone(),
            })
            .collect(),
    }))
}

/// The routing view last saved for the database named `db_name`.
pub fn saved_routing(db_name: &str) -> Result<Option<Routing>> {
    let path = routing_dir(db_name)?.join("locations.toml");
    let bytes = match read_file(&RealIo, &path) {
        Ok(b) => b,
        Err(e) if e.os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    toml::from_str(&String::from_utf8_lossy(&bytes))
        .map(Some)
        .map_err(|e| SyncError::Config(format!("{}: {e}", path.display())))
}

/// Probes `which` (locations of `routing`) at once, each on a thread of its
/// own within `timeout`: their probes, in the same order.
pub(super) fn probe_in_parallel(
    routing: &Routing,
    which: &[&RoutedLocation],
    timeout: Duration,
) -> Vec<Probe> {
    let sockets = super::round::socket_dir();
    std::thread::scope(|s| {
        let handles: Vec<_> = which
            .iter()
            .map(|l| {
                let (id, me, sockets) = (&routing.id, l.name == routing.me, sockets.clone());
                s.spawn(move || probe_location(&l.location(), id, me, sockets, timeout))
            })
            .collect();
        handles
            .into_iter()
            .zip(which)
            .map(|(h, l)| {
                h.join().unwrap_or_else(|_| Probe {
                    location: l.name.clone(),
                    at_us: now_us(),
                    latency: None,
                    node: None,
                    error: Some("the probe failed".into()),
                })
            })
            .collect()
    })
}

/// Probes every location of `db` (in parallel), keeps the probes in its
/// routing directory with the routing view, and sets the latency metric.
pub fn probe_all(db: &Database) -> Result<Vec<Probe>> {
    let Some(routing) = routing_of(db)? else {
        return Ok(Vec::new());
    };
    let probes = probe_in_parallel(
        &routing,
        &routing.locations.iter().collect::<Vec<_>>(),
        PROBE_TIMEOUT,
    );
    save_probes(db.name(), &routing, &probes)?;
    let m = crate::metrics::global();
    for p in probes.iter().filter(|p| p.location != routing.me) {
        match p.latency {
            Some(l) if m.enabled() => m
                .peer_latency
                .with_label_values(&[db.name(), &p.location])
                .set(l.as_secs_f64()),
            // Unreachable: no latency to show, rather than the last good one.
            _ => {
                let _ = m
                    .peer_latency
                    .remove_label_values(&[db.name(), &p.location]);
            }
        }
    }
    Ok(probes)
}

/// Keeps `probes` in the routing directory (each location's history, the
/// last [`HISTORY`]) with the routing view.
pub(super) fn save_probes(db_name: &str, routing: &Routing, probes: &[Probe]) -> Result<()> {
    let dir = routing_dir(db_name)?;
    let text = toml::to_string(routing).map_err(|e| SyncError::Config(e.to_string()))?;
    replace_file(&RealIo, &dir.join("locations.toml"), text.as_bytes())?;
    for p in probes {
        if !crate::storage::valid_component(&p.location) {
            continue;
        }
        let path = dir.join(format!("{}.csv", p.location));
        let old = match read_file(&RealIo, &path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => String::new(),
        };
        let mut lines: Vec<&str> = old.lines().filter(|l| !l.is_empty()).collect();
        let new = p.line();
        lines.push(&new);
        let keep = &lines[lines.len().saturating_sub(HISTORY)..];
        let mut text = keep.join("\n");
        text.push('\n');
        replace_file(&RealIo, &path, text.as_bytes())?;
    }
    Ok(())
}

/// The last probe of each location of the database named `db_name`, in
/// the order of `routing`.
pub fn last_probes(db_name: &str, routing: &Routing) -> Result<Vec<Option<Probe>>> {
    let dir = routing_dir(db_name)?;
    let mut out = Vec::new();
    for l in &routing.locations {
        let path = dir.join(format!("{}.csv", l.name));
        let probe = match read_file(&RealIo, &path) {
            Ok(b) => String::from_utf8_lossy(&b)
                .lines()
                .rev()
                .find_map(|line| Probe::parse(&l.name, line)),
            Err(_) => None,
        };
        out.push(probe);
    }
    Ok(out)
}

/// Probes every `interval` from a thread of its own until dropped (the
/// mount daemon and `rdb sync:run` run one per distributed database).
pub struct Prober {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    pub fn start(root: PathBuf, interval: Duration) -> std::io::Result<Prober> {
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rdb-health".into())
            .spawn(move || {
                loop {
                    match Database::open(&root).map_err(SyncError::from) {
                        Ok(db) => {
                            if let Err(e) = probe_all(&db) {
                                tracing::warn!(error = %e, "health probes failed");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "health: cannot open the database"),
                    }
                    match rx.recv_timeout(interval) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(Prober {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Prober {
    /// Stops the thread; one in the middle of a probe (up to
    /// `PROBE_TIMEOUT`) is left to end on its own rather than waited for,
    /// so an unmount never waits on a slow peer.
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_reads_back_from_its_history_line() {
        let p = Probe {
            location: "b".into(),
            at_us: 1_700_000_000_000_000,
            latency: Some(Duration::from_micros(12_345)),
            node: Some(NodeHealth {
                cores: 4,
                cpu: 0.5,
                memory: 0.25,
                load1: 2.0,
                ..NodeHealth::default()
            }),
            error: None,
        };
        let back = Probe::parse("b", &p.line()).unwrap();
        assert_eq!(back.latency, Some(Duration::from_micros(12_345)));
        assert_eq!(back.node.map(|n| (n.cores, n.cpu)), Some((4, 0.5)));
        let down = Probe {
            error: Some("exit 255: no route,\nto host".into()),
            latency: None,
            node: None,
            ..p
        };
        let back = Probe::parse("b", &down.line()).unwrap();
        assert_eq!(back.error.as_deref(), Some("exit 255: no route, to host"));
        let cfg = Config::new("x", '|');
        assert!(matches!(back.state(&cfg), State::Unhealthy(_)));
    }

    #[test]
    fn thresholds_decide_degraded() {
        let mut cfg = Config::new("x", '|');
        let mut p = Probe {
            location: "a".into(),
            at_us: 1,
            latency: Some(Duration::ZERO),
            node: Some(NodeHealth {
                cores: 2,
                cpu: 0.85,
                memory: 0.5,
                ..NodeHealth::default()
            }),
            error: None,
        };
        assert_eq!(p.state(&cfg).word(), "Degraded");
        cfg.health_max_cpu_percent = 90;
        assert_eq!(p.state(&cfg), State::Healthy);
        p.node = p.node.map(|n| NodeHealth { memory: 0.95, ..n });
        assert_eq!(p.state(&cfg).word(), "Degraded");
    }
}
