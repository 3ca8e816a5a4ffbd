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

use crate::metrics::node_health;
use crate::storage::Config;

use super::error::{Result, SyncError};
use super::health::{
    Probe, RoutedLocation, Routing, State, last_probes, probe_in_parallel, save_probes,
};
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

/// How this location stands, for `auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Healthy,
    /// Loaded past a threshold: why.
    Degraded(String),
    /// Its copy cannot be opened.
    Gone,
    /// It was tried and failed.
    Failed,
}

/// Where a query goes first.
#[derive(Debug, Clone)]
pub struct Plan {
    pub first: Vec<Candidate>,
    /// `auto` with a healthy local location: the peers are probed and
    /// ordered only if the local run fails ([`peers`]), so a query that
    /// answers here never waits on a probe.
    pub peers_on_failure: bool,
}

/// How this location stands now: its load measured at once.
pub fn local_state(cfg: &Config, local_ok: bool) -> Local {
    if !local_ok {
        return Local::Gone;
    }
    let me = Probe {
        location: String::new(),
        at_us: 0,
        latency: Some(Duration::ZERO),
        node: Some(node_health()),
        error: None,
    };
    match me.state(cfg) {
        State::Healthy => Local::Healthy,
        State::Degraded(why) | State::Unhealthy(why) => Local::Degraded(why),
    }
}

/// The locations to try first for a query. `local_ok`: this location's
/// copy opened.
pub fn plan(
    db_name: &str,
    routing: &Routing,
    cfg: &Config,
    route: &Route,
    writes: bool,
    local_ok: bool,
    deadline: Instant,
) -> Result<Plan> {
    let only = |c: Candidate| Plan {
        first: vec![c],
        peers_on_failure: false,
    };
    match route {
        Route::Local => Ok(only(Candidate {
            name: routing.me.clone(),
            local: true,
            why: "--route local".into(),
        })),
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
            Ok(only(Candidate {
                name: l.name.clone(),
                local: l.name == routing.me,
                why: format!("--route {name}"),
            }))
        }
        Route::Auto if writes => Ok(only(Candidate {
            name: routing.me.clone(),
            local: true,
            why: "a write runs here unless --route names a location".into(),
        })),
        Route::Auto => {
            let local = local_state(cfg, local_ok);
            if local == Local::Healthy {
                return Ok(Plan {
                    first: vec![Candidate {
                        name: routing.me.clone(),
                        local: true,
                        why: "this location is healthy".into(),
                    }],
                    peers_on_failure: true,
                });
            }
            Ok(Plan {
                first: peers(db_name, routing, cfg, &local, deadline)?,
                peers_on_failure: false,
            })
        }
    }
}

/// The other locations in `auto`'s order after this one stood as `local`
/// (their last probes, measured again when missing or stale, within the
/// deadline); this location last when it is only degraded.
pub fn peers(
    db_name: &str,
    routing: &Routing,
    cfg: &Config,
    local: &Local,
    deadline: Instant,
) -> Result<Vec<Candidate>> {
    let probes = fresh_probes(db_name, routing, cfg, deadline)?;
    Ok(order(routing, cfg, &probes, local))
}

/// The last probes of the other locations, each measured again (in
/// parallel, within the deadline) when missing or stale; what was measured
/// is kept.
fn fresh_probes(
    db_name: &str,
    routing: &Routing,
    cfg: &Config,
    deadline: Instant,
) -> Result<Vec<Probe>> {
    let saved = last_probes(db_name, routing)?;
    let now = crate::storage::names::now_us();
    let stale = stale_after(cfg).as_micros() as u64;
    let timeout = deadline.saturating_duration_since(Instant::now());
    // Fresh saved probes as they are; the others measured, all at once.
    let others: Vec<(&RoutedLocation, Option<Probe>)> = routing
        .locations
        .iter()
        .zip(saved)
        .filter(|(l, _)| l.name != routing.me)
        .map(|(l, p)| (l, p.filter(|p| now.saturating_sub(p.at_us) < stale)))
        .collect();
    let missing: Vec<&RoutedLocation> = others
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(l, _)| *l)
        .collect();
    let measured = probe_in_parallel(routing, &missing, timeout);
    if !measured.is_empty()
        && let Err(e) = save_probes(db_name, routing, &measured)
    {
        tracing::info!(error = %e, "probes not kept");
    }
    // `order` sorts them: their order here does not matter.
    Ok(others
        .into_iter()
        .filter_map(|(_, p)| p)
        .chain(measured)
        .collect())
}

/// `auto`'s order of the other locations' probes, with this location as
/// `local` stands.
pub fn order(routing: &Routing, cfg: &Config, probes: &[Probe], local: &Local) -> Vec<Candidate> {
    let mut out = Vec::new();
    let (mut healthy, mut degraded, mut down) = (Vec::new(), Vec::new(), Vec::new());
    for p in probes.iter().filter(|p| p.location != routing.me) {
        let latency = p.latency.unwrap_or(Duration::MAX);
        match p.state(cfg) {
            State::Healthy => healthy.push((latency, p.location.clone())),
            State::Degraded(why) => degraded.push((latency, p.location.clone(), why)),
            State::Unhealthy(why) => down.push((p.location.clone(), why)),
        }
    }
    let passed_over = match local {
        Local::Healthy => {
            out.push(Candidate {
                name: routing.me.clone(),
                local: true,
                why: "this location is healthy".into(),
            });
            None
        }
        Local::Degraded(why) => Some(format!("this location is degraded ({why})")),
        Local::Gone => Some("this location's copy cannot be opened".to_string()),
        Local::Failed => Some("this location failed".to_string()),
    };
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
    if let Local::Degraded(why) = local {
        out.push(Candidate {
            name: routing.me.clone(),
            local: true,
            why: format!("this location, degraded ({why}): no other answered"),
        });
    }
    for (name, why) in down {
        out.push(Candidate {
            name,
            local: false,
            why: format!("unreachable at its last probe ({why}): tried last"),
        });
    }
    out
}

/// What a remote location answered.
pub enum Remoted {
    /// The query ran there; its output went to the caller's writer.
    Answer,
    /// The query itself was refused there (a query error, exit 8, with its
    /// stderr): the same query fails everywhere, so no other location is
    /// tried.
    Refused(String),
}

/// The exit code of a query error (docs/CLI.md).
const QUERY_ERROR_EXIT: i32 = 8;

/// Runs `sql` at the remote location `name` within `timeout`, its output
/// copied into `out` as it comes: reading only, unless `writes` (the route
/// named the location).
#[allow(clippy::too_many_arguments)]
pub fn run_remote(
    routing: &Routing,
    name: &str,
    sql: &str,
    format: &str,
    writes: bool,
    timeout: Duration,
    out: &mut (dyn std::io::Write + Send),
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
    let transport = |detail: String, unreachable: bool| SyncError::Transport {
        peer: name.to_string(),
        what: "query".into(),
        detail,
        unreachable,
    };
    let ran = match &remote.url {
        Url::Ssh { .. } => remote.rdb_into(&args, timeout, out)?,
        Url::Path(_) => {
            // A location on this machine: the same binary, in a process of
            // its own (its time limit applies the same way).
            let exe = std::env::current_exe().map_err(|e| transport(e.to_string(), false))?;
            let mut cmd = std::process::Command::new(exe);
            cmd.args(&args);
            super::transport::run_into(cmd, timeout, out)
                .map_err(|e| transport(e.to_string(), false))?
        }
    };
    match ran.status {
        Some(0) => Ok(Remoted::Answer),
        Some(QUERY_ERROR_EXIT) => Ok(Remoted::Refused(ran.stderr)),
        None if writes => Err(transport(
            format!(
                "no answer within {:.1} s: the write may have committed at {name}; look there before running it again",
                started.elapsed().as_secs_f64()
            ),
            true,
        )),
        None => Err(transport(
            format!("no answer within {:.1} s", started.elapsed().as_secs_f64()),
            true,
        )),
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
            root: None,
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
            probe("b", 80, 0.1, None),
            probe("c", 20, 0.1, None),
            probe("d", 5, 0.1, Some("exit 255")),
        ];
        let o = order(&r, &cfg, &probes, &Local::Healthy);
        assert_eq!(names(&o), ["a", "c", "b", "d"]);
        // Local overloaded: the peers first, by latency, local before the unreachable.
        let busy = Local::Degraded("CPU 95% > 80%".into());
        let o = order(&r, &cfg, &probes, &busy);
        assert_eq!(names(&o), ["c", "b", "a", "d"]);
        assert!(
            o[0].why.contains("degraded") && o[0].why.contains("nearest"),
            "{}",
            o[0].why
        );
        // Local copy gone, or failed: never tried (again).
        assert_eq!(
            names(&order(&r, &cfg, &probes, &Local::Gone)),
            ["c", "b", "d"]
        );
        let o = order(&r, &cfg, &probes, &Local::Failed);
        assert_eq!(names(&o), ["c", "b", "d"]);
        assert!(o[0].why.starts_with("this location failed"), "{}", o[0].why);
        // A degraded peer comes after the healthy ones.
        let mut c_busy = probes.clone();
        c_busy[1] = probe("c", 20, 0.99, None);
        assert_eq!(
            names(&order(&r, &cfg, &c_busy, &Local::Gone)),
            ["b", "c", "d"]
        );
    }

    #[test]
    fn a_write_stays_here_unless_a_location_is_named() {
        let cfg = Config::new("x", '|');
        let r = routing();
        let soon = Instant::now() + Duration::from_secs(1);
        let p = plan("x", &r, &cfg, &Route::Auto, true, true, soon).unwrap();
        assert_eq!(names(&p.first), ["a"]);
        assert!(!p.peers_on_failure);
        let p = plan(
            "x",
            &r,
            &cfg,
            &Route::Location("b".into()),
            true,
            true,
            soon,
        )
        .unwrap();
        assert_eq!(names(&p.first), ["b"]);
        assert!(
            plan(
                "x",
                &r,
                &cfg,
                &Route::Location("zz".into()),
                false,
                true,
                soon
            )
            .is_err()
        );
    }
}
