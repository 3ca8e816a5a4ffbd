//! Routed queries (docs/SYNC.md, "Health and routed queries"): which
//! location answers `rdb db:query --route`, in what order the others are
//! tried, and running a query at a remote location over SSH.
//!
//! `auto`: this location first unless it is Degraded or cannot be opened;
//! then the Healthy peers by measured round trip; then the Degraded ones;
//! then this location if it was passed over for load; unreachable ones
//! last (their probe may be old). A write never leaves this location unless
//! the route names the location.

use std::time::{Duration, Instant};

use crate::storage::Config;

use super::error::{Result, SyncError};
use super::health::{Probe, Routing, State, last_probes, probe_location};
use super::locations::Url;
use super::transport::Remote;

/// Where a query may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Auto,
    Local,
    Location(String),
}

impl Route {
    pub fn parse(s: &str) -> Route {
        match s {
            "auto" => Route::Auto,
            "local" => Route::Local,
            other => Route::Location(other.to_string()),
        }
    }
}

/// One location to try, and why it comes where it does.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    /// This location itself.
    pub local: bool,
    pub why: String,
}

/// Probes older than this are measured again before routing.
fn stale_after(cfg: &Config) -> Duration {
    Duration::from_secs(cfg.health_interval_seconds.saturating_mul(2).max(5))
}

/// The locations to try for a query, in order. `local_ok`: this location's
/// copy opened. Probes come from the routing directory, measured again when
/// missing or stale; this location's load is measured now.
pub fn plan(
    db_name: &str,
    routing: &Routing,
    cfg: &Config,
    route: &Route,
    writes: bool,
    local_ok: bool,
) -> Result<Vec<Candidate>> {
    match route {
        Route::Local => Ok(vec![Candidate {
            name: routing.me.clone(),
            local: true,
            why: "--route local".into(),
        }]),
        Route::Location(name) => {
            let l = routing
                .locations
                .iter()
                .find(|l| &l.name == name)
                .ok_or_else(|| {
                    SyncError::Config(format!(
                        "{name} is not a location of this database (locations: {})",
                        routing
                            .locations
                            .iter()
                            .map(|l| l.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            Ok(vec![Candidate {
                name: l.name.clone(),
                local: l.name == routing.me,
                why: format!("--route {name}"),
            }])
        }
        Route::Auto if writes => Ok(vec![Candidate {
            name: routing.me.clone(),
            local: true,
            why: "a write runs here unless --route names a location".into(),
        }]),
        Route::Auto => {
            let probes = fresh_probes(db_name, routing, cfg)?;
            Ok(order(routing, cfg, &probes, local_ok))
        }
    }
}

/// The last probes, each measured again when missing or stale (in
/// parallel); this location's always now.
fn fresh_probes(db_name: &str, routing: &Routing, cfg: &Config) -> Result<Vec<Probe>> {
    let saved = last_probes(db_name, routing)?;
    let now = crate::storage::names::now_us();
    let stale = stale_after(cfg).as_micros() as u64;
    let sockets = super::round::socket_dir();
    Ok(std::thread::scope(|s| {
        let handles: Vec<_> = routing
            .locations
            .iter()
            .zip(saved)
            .map(|(l, saved)| {
                let me = l.name == routing.me;
                let (id, sockets) = (&routing.id, sockets.clone());
                s.spawn(move || match saved {
                    Some(p) if !me && now.saturating_sub(p.at_us) < stale => p,
                    _ => probe_location(&l.location(), id, me, sockets),
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&routing.locations)
            .map(|(h, l)| {
                h.join().unwrap_or_else(|_| Probe {
                    location: l.name.clone(),
                    at_us: now,
                    latency: None,
                    node: None,
                    error: Some("the probe failed".into()),
                })
            })
            .collect()
    }))
}

/// `auto`'s order over probes (one per location of `routing`).
pub fn order(routing: &Routing, cfg: &Config, probes: &[Probe], local_ok: bool) -> Vec<Candidate> {
    let mut out = Vec::new();
    let (mut healthy, mut degraded, mut down) = (Vec::new(), Vec::new(), Vec::new());
    // Why this location is not first (none: it is).
    let mut passed_over = (!local_ok).then(|| "this location's copy cannot be opened".to_string());
    let mut local_later = None;
    for p in probes {
        let latency = p.latency.unwrap_or(Duration::MAX);
        let state = p.state(cfg);
        if p.location == routing.me {
            if !local_ok {
                continue;
            }
            match state {
                State::Healthy => out.push(Candidate {
                    name: p.location.clone(),
                    local: true,
                    why: "this location is healthy".into(),
                }),
                State::Degraded(why) | State::Unhealthy(why) => {
                    passed_over = Some(format!("this location is degraded ({why})"));
                    local_later = Some(Candidate {
                        name: p.location.clone(),
                        local: true,
                        why: format!("this location, degraded ({why}): no other answered"),
                    });
                }
            }
            continue;
        }
        match state {
            State::Healthy => healthy.push((latency, p.location.clone())),
            State::Degraded(why) => degraded.push((latency, p.location.clone(), why)),
            State::Unhealthy(why) => down.push((p.location.clone(), why)),
        }
    }
    healthy.sort();
    for (i, (latency, name)) in healthy.into_iter().enumerate() {
        let ms = latency.as_secs_f64() * 1e3;
        let why = match (&passed_over, i) {
            (Some(reason), 0) => format!("{reason}; nearest healthy location ({ms:.1} ms)"),
            (None, 0) => format!("healthy ({ms:.1} ms), after this location"),
            _ => format!("healthy ({ms:.1} ms), next nearest"),
        };
        out.push(Candidate {
            name,
            local: false,
            why,
        });
    }
    degraded.sort();
    for (_, name, why) in degraded {
        out.push(Candidate {
            name,
            local: false,
            why: format!("degraded ({why}): no healthy location answered"),
        });
    }
    out.extend(local_later);
    for (name, why) in down {
        out.push(Candidate {
            name,
            local: false,
            why: format!("unreachable at its last probe ({why}): tried last"),
        });
    }
    out
}

/// Whether a statement writes (INSERT, UPDATE, DELETE, also after WITH),
/// by its words: a routed query must know before it picks a location.
pub fn is_write(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    let mut words = upper
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    match words.next() {
        Some("INSERT" | "UPDATE" | "DELETE" | "REPLACE") => true,
        Some("WITH") => words.any(|w| matches!(w, "INSERT" | "UPDATE" | "DELETE")),
        _ => false,
    }
}

/// What a remote location answered.
pub enum Remoted {
    /// The query's output (stdout).
    Answer(String),
    /// The query itself was refused there (a query error, exit 8): the same
    /// query fails everywhere, so no other location is tried.
    Refused(String),
}

/// The exit code of a query error (docs/CLI.md).
const QUERY_ERROR_EXIT: i32 = 8;

/// Runs `sql` at the remote location `name` within `timeout`: reading only,
/// unless `writes`.
pub fn run_remote(
    routing: &Routing,
    name: &str,
    sql: &str,
    format: &str,
    writes: bool,
    timeout: Duration,
) -> Result<Remoted> {
    let l = routing
        .locations
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| SyncError::Config(format!("{name} is not a location")))?
        .location();
    let started = Instant::now();
    let mut remote = Remote::new(&l)?;
    if let Some(d) = super::round::socket_dir() {
        remote = remote.sharing(d);
    }
    let path = match &remote.url {
        Url::Ssh { path, .. } => path.clone(),
        Url::Path(p) => p.display().to_string(),
    };
    let mut args = vec![
        "sync:remote-query",
        &path,
        "--id",
        &routing.id,
        "--format",
        format,
        "--",
        sql,
    ];
    if writes {
        args.insert(1, "--writes");
    }
    let ran = match &remote.url {
        Url::Ssh { .. } => remote.rdb_ran(&args, timeout)?,
        Url::Path(_) => {
            // A location on this machine: the same binary, in a process of
            // its own (its time limit applies the same way).
            let exe = std::env::current_exe().map_err(|e| SyncError::Transport {
                peer: name.to_string(),
                what: "query".into(),
                detail: e.to_string(),
                unreachable: false,
            })?;
            let mut cmd = std::process::Command::new(exe);
            cmd.args(&args);
            super::transport::run(cmd, timeout).map_err(|e| SyncError::Transport {
                peer: name.to_string(),
                what: "query".into(),
                detail: e.to_string(),
                unreachable: false,
            })?
        }
    };
    match ran.status {
        Some(0) => Ok(Remoted::Answer(ran.stdout)),
        Some(QUERY_ERROR_EXIT) => Ok(Remoted::Refused(ran.stderr)),
        None => Err(SyncError::Transport {
            peer: name.to_string(),
            what: "query".into(),
            detail: format!("no answer within {:.1} s", started.elapsed().as_secs_f64()),
            unreachable: true,
        }),
        Some(_) => Err(remote.failure("query", &ran)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::health::RoutedLocation;
    use super::*;
    use crate::metrics::NodeHealth;

    fn routing() -> Routing {
        let loc = |n: &str| RoutedLocation {
            name: n.into(),
            url: format!("h:/{n}"),
            node: n.into(),
            ssh: None,
            rdb: None,
        };
        Routing {
            id: "id".into(),
            me: "a".into(),
            locations: vec![loc("a"), loc("b"), loc("c"), loc("d")],
        }
    }

    fn probe(name: &str, ms: u64, cpu: f64, error: Option<&str>) -> Probe {
        Probe {
            location: name.into(),
            at_us: 1,
            latency: error.is_none().then(|| Duration::from_millis(ms)),
            node: error.is_none().then_some(NodeHealth {
                cores: 2,
                cpu,
                memory: 0.1,
                ..NodeHealth::default()
            }),
            error: error.map(str::to_string),
        }
    }

    fn names(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn auto_prefers_a_healthy_local_then_the_nearest_healthy_peer() {
        let cfg = Config::new("x", '|');
        let r = routing();
        let probes = [
            probe("a", 0, 0.1, None),
            probe("b", 80, 0.1, None),
            probe("c", 20, 0.1, None),
            probe("d", 5, 0.1, Some("exit 255")),
        ];
        assert_eq!(names(&order(&r, &cfg, &probes, true)), ["a", "c", "b", "d"]);
        // Local overloaded: the peers first, by latency, local before the unreachable.
        let mut busy = probes.clone();
        busy[0] = probe("a", 0, 0.95, None);
        let o = order(&r, &cfg, &busy, true);
        assert_eq!(names(&o), ["c", "b", "a", "d"]);
        assert!(
            o[0].why.contains("degraded") && o[0].why.contains("nearest"),
            "{}",
            o[0].why
        );
        // Local copy gone: never tried.
        assert_eq!(names(&order(&r, &cfg, &probes, false)), ["c", "b", "d"]);
        // A degraded peer comes after the healthy ones.
        let mut c_busy = probes.clone();
        c_busy[2] = probe("c", 20, 0.99, None);
        assert_eq!(names(&order(&r, &cfg, &c_busy, false)), ["b", "c", "d"]);
    }

    #[test]
    fn writes_are_told_from_reads() {
        assert!(is_write("insert into t values (1)"));
        assert!(is_write("  UPDATE t SET a = 1"));
        assert!(is_write("DELETE FROM t"));
        assert!(!is_write("SELECT * FROM t"));
        assert!(!is_write("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(is_write("WITH x AS (SELECT 1) DELETE FROM t"));
        assert!(!is_write("EXPLAIN SELECT 1"));
        assert!(!is_write("SELECT 'delete' FROM t"));
    }

    #[test]
    fn a_write_stays_here_unless_a_location_is_named() {
        let cfg = Config::new("x", '|');
        let r = routing();
        let p = plan("x", &r, &cfg, &Route::Auto, true, true).unwrap();
        assert_eq!(names(&p), ["a"]);
        let p = plan("x", &r, &cfg, &Route::Location("b".into()), true, true).unwrap();
        assert_eq!(names(&p), ["b"]);
        assert!(plan("x", &r, &cfg, &Route::Location("zz".into()), false, true).is_err());
    }
}
