//! `rdb metrics`, `rdb node:health`, `rdb db:health` and routed queries
//! (`rdb db:query --route`), and what a daemon starts so that its metrics
//! can be read (docs/METRICS.md, docs/SYNC.md "Health and routed queries").

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use reedbase::metrics;
use reedbase::storage::{Config, Database};
use reedbase::sync::health::{self, Routing, State};
use reedbase::sync::route::{self, Local, Remoted, Route};

use super::output::{Format, print_rows};
use super::query::QueryFormat;
use super::{Ctx, exit, fail};

/// What a daemon keeps while it runs for its metrics to be read: the
/// socket `rdb metrics` asks (removed on drop).
pub struct MetricsService {
    _socket: Option<metrics::LocalService>,
}

/// `--metrics-listen`: a port alone means loopback.
pub fn listen_addr(s: &str) -> Result<SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        fail(
            exit::USAGE,
            format!("--metrics-listen takes PORT or ADDRESS:PORT, not {s:?}"),
        )
    })
}

/// Makes this daemon's metrics of `dbs` readable: by `rdb metrics`
/// (a socket under `$REEDBASE_HOME/run/`) and, with `listen`, over HTTP.
pub fn serve_metrics(ctx: &Ctx, dbs: &[&Database], listen: Option<&str>) -> Result<MetricsService> {
    let m = metrics::global();
    for db in dbs {
        m.serve_db(db.name());
    }
    let socket = match metrics::serve_local(&ctx.home) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("rdb: `rdb metrics` cannot reach this daemon: {e}");
            None
        }
    };
    if let Some(listen) = listen {
        let addr = listen_addr(listen)?;
        let bound = metrics::serve_http(addr)
            .map_err(|e| fail(exit::USAGE, format!("--metrics-listen {addr}: {e}")))?;
        eprintln!("metrics at http://{bound}/metrics");
    }
    Ok(MetricsService { _socket: socket })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsFormat {
    Text,
    Json,
    Table,
}

/// `rdb metrics <db>`: the metrics of the daemon that serves `db`.
pub fn show_metrics(ctx: &Ctx, name: &str, format: MetricsFormat) -> Result<i32> {
    let db = ctx.open(name)?;
    let f = match format {
        MetricsFormat::Text => metrics::Format::Text,
        MetricsFormat::Json => metrics::Format::Json,
        MetricsFormat::Table => metrics::Format::Table,
    };
    let answers = metrics::ask_daemons(&ctx.home, db.name(), f);
    let Some((pid, text)) = answers.first() else {
        return Err(fail(
            exit::NOT_FOUND,
            format!(
                "no running daemon serves {name}: metrics live in `rdb mount` and `rdb sync:run` processes"
            ),
        ));
    };
    for (other, _) in &answers[1..] {
        eprintln!("rdb: process {other} serves {name} too; showing process {pid}");
    }
    std::io::stdout().lock().write_all(text)?;
    Ok(exit::OK)
}

/// `rdb node:health`: this machine's load, as one line of JSON.
pub fn node_health() -> Result<i32> {
    println!("{}", metrics::node_health().to_json());
    Ok(exit::OK)
}

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// `rdb db:health <db>`: probes every location now and prints what it found.
pub fn db_health(ctx: &Ctx, name: &str, format: Format) -> Result<i32> {
    let db = ctx.open(name)?;
    let Some(routing) = health::routing_of(&db)? else {
        return Err(fail(
            exit::USAGE,
            format!("database {name} has no locations: add one with `rdb location:add`"),
        ));
    };
    let probes = health::probe_all(&db)?;
    let mut rows = Vec::new();
    for p in &probes {
        let state = p.state(db.config());
        let why = match &state {
            State::Healthy => String::new(),
            State::Degraded(w) | State::Unhealthy(w) => w.clone(),
        };
        let me = if p.location == routing.me {
            " (this location)"
        } else {
            ""
        };
        rows.push(vec![
            format!("{}{me}", p.location),
            state.word().to_string(),
            p.latency
                .map_or("-".into(), |l| format!("{:.1} ms", l.as_secs_f64() * 1e3)),
            p.node.map_or("-".into(), |n| percent(n.cpu)),
            p.node.map_or("-".into(), |n| percent(n.memory)),
            why,
        ]);
    }
    print_rows(
        format,
        &["location", "state", "latency", "cpu", "memory", "reason"],
        &rows,
    )?;
    Ok(exit::OK)
}

/// The health part of `db:info`: a fresh probe of every location, by name.
pub fn probes_for_info(db: &Database) -> Vec<(String, String)> {
    match health::probe_all(db) {
        Ok(probes) => probes
            .iter()
            .map(|p| {
                let state = p.state(db.config());
                let mut s = state.word().to_string();
                match &state {
                    State::Unhealthy(why) => s.push_str(&format!(" ({why})")),
                    _ => {
                        if let Some(l) = p.latency {
                            s.push_str(&format!(", latency {:.1} ms", l.as_secs_f64() * 1e3));
                        }
                        if let Some(n) = p.node {
                            s.push_str(&format!(
                                ", CPU {}, memory {}",
                                percent(n.cpu),
                                percent(n.memory)
                            ));
                        }
                        if let State::Degraded(why) = &state {
                            s.push_str(&format!(" ({why})"));
                        }
                    }
                }
                (p.location.clone(), s)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "health probes failed");
            Vec::new()
        }
    }
}

/// Output held in memory up to [`HELD_MAX`] bytes, then passed to stdout
/// (from then on, a failure can no longer go to another location).
#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    passed: bool,
}

const HELD_MAX: usize = 16 << 20;

impl Write for Held {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.passed && self.bytes.len() + buf.len() > HELD_MAX {
            self.passed = true;
            std::io::stdout().lock().write_all(&self.bytes)?;
            self.bytes = Vec::new();
        }
        if self.passed {
            std::io::stdout().lock().write_all(buf)?;
        } else {
            self.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Held {
    fn finish(self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(&self.bytes)?;
        out.flush()
    }
}

/// `db:query --route`: runs `sql` where the route says, failing over to
/// the next location on a transport or storage failure, within `timeout`.
pub fn routed_query(
    ctx: &Ctx,
    name: &str,
    sql: &str,
    format: QueryFormat,
    route: &str,
    timeout: Duration,
) -> Result<i32> {
    let started = Instant::now();
    let deadline = started + timeout;
    let route = Route::parse(route);
    let local = ctx.open(name);
    let (routing, cfg): (Routing, Config) = match &local {
        Ok(db) => match health::routing_of(db)? {
            Some(r) => (r, db.config().clone()),
            None if route == Route::Auto => {
                return super::query::run_on(ctx, db, sql, format);
            }
            None => {
                return Err(fail(
                    exit::USAGE,
                    format!("database {name} has no locations to route to"),
                ));
            }
        },
        // The local copy cannot be opened: the routing directory remembers
        // where the others are (for the database at this path only).
        Err(_) if route != Route::Local => match saved_routing_for(ctx, name)? {
            Some(r) => (r, Config::new(name, '|')),
            None => return local.map(|_| exit::OK),
        },
        Err(_) => return local.map(|_| exit::OK),
    };
    let writes = reedbase::query::is_write(sql);
    let plan = route::plan(
        name,
        &routing,
        &cfg,
        &route,
        writes,
        local.is_ok(),
        deadline,
    )?;
    // A named location may run a write; `auto` never sends one away.
    let remote_writes = matches!(route, Route::Location(_));
    let text_format = match format {
        QueryFormat::Csv => "csv",
        QueryFormat::Json => "json",
        QueryFormat::Table => "table",
    };
    let mut failures = Vec::new();
    let mut queue: std::collections::VecDeque<_> = plan.first.into();
    let mut peers_on_failure = plan.peers_on_failure;
    while let Some(c) = queue.pop_front() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            failures.push(format!("{}: not tried, out of time", c.name));
            continue;
        }
        // Output is held back until it is whole (up to a bound), so that a
        // failure can still go to the next location.
        let mut held = Held::default();
        let failed = if c.local {
            let db = match &local {
                Ok(db) => db,
                Err(e) => {
                    failures.push(format!("{}: {e:#}", c.name));
                    continue;
                }
            };
            match super::query::run_sql_to(ctx, db, sql, format, true, &mut held) {
                Ok(()) => None,
                Err(e) if held.passed || super::exit_code(&e) == exit::QUERY => {
                    held.finish()?;
                    return Err(e);
                }
                Err(e) => Some(format!("{e:#}")),
            }
        } else {
            let ran = route::run_remote(
                &routing,
                &c.name,
                sql,
                text_format,
                remote_writes,
                left,
                &mut held,
            );
            match ran {
                Ok(Remoted::Answer) => None,
                Ok(Remoted::Refused(stderr)) => {
                    held.finish()?;
                    return Err(fail(
                        exit::QUERY,
                        format!("at {}: {}", c.name, stderr.trim()),
                    ));
                }
                Err(e) if held.passed => {
                    return Err(fail(
                        exit::ERROR,
                        format!(
                            "{} failed after part of its answer was printed: {e}",
                            c.name
                        ),
                    ));
                }
                Err(e) => Some(e.to_string()),
            }
        };
        match failed {
            None => {
                eprintln!("rdb: answered by {} ({})", c.name, c.why);
                held.finish()?;
                return Ok(exit::OK);
            }
            Some(why) => {
                eprintln!("rdb: {} failed ({why}); trying the next location", c.name);
                failures.push(format!("{}: {why}", c.name));
            }
        }
        if queue.is_empty() && std::mem::take(&mut peers_on_failure) {
            queue.extend(route::peers(
                name,
                &routing,
                &cfg,
                &Local::Failed,
                deadline,
            )?);
        }
    }
    let detail = if failures.is_empty() {
        "no location to try".to_string()
    } else {
        failures.join("\n  ")
    };
    Err(fail(
        exit::ERROR,
        format!(
            "no location answered within {:.1} s:\n  {detail}",
            timeout.as_secs_f64()
        ),
    ))
}

/// The saved routing view of `name`, when it belongs to the database the
/// name resolves to (a local and a registered database may share a name).
fn saved_routing_for(ctx: &Ctx, name: &str) -> Result<Option<Routing>> {
    let Some(r) = health::saved_routing(name)? else {
        return Ok(None);
    };
    if let (Ok((root, _)), Some(saved)) = (ctx.resolve(name), &r.root)
        && root.display().to_string() != *saved
    {
        return Err(fail(
            exit::NOT_FOUND,
            format!(
                "database {name} cannot be opened, and the locations remembered under that name are of the database at {saved}"
            ),
        ));
    }
    Ok(Some(r))
}

/// `sync:remote-query <path>`: what a routed query runs at the location
/// it went to: the database there, checked to be the same one; reading
/// only (a write refused as a query error) unless `--writes`.
pub fn remote_query(
    ctx: &Ctx,
    path: &Path,
    id: &str,
    sql: &str,
    format: QueryFormat,
    writes_allowed: bool,
) -> Result<i32> {
    let db = Database::open(path)?;
    if db.config().id != id {
        return Err(fail(
            exit::CONFLICT,
            format!("{} holds another database", path.display()),
        ));
    }
    if !writes_allowed && reedbase::query::is_write(sql) {
        return Err(fail(
            exit::QUERY,
            "a routed query only reads here: name this location with --route to write",
        ));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    super::query::run_sql_to(ctx, &db, sql, format, writes_allowed, &mut out)?;
    out.flush()?;
    Ok(exit::OK)
}
