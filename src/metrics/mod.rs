//! What a ReedBase process measures about itself (docs/METRICS.md): one
//! registry per process, recorded by every layer through the functions
//! below, read as Prometheus text (`<db>/@metrics`, `rdb metrics`, the
//! `--metrics-listen` endpoint). A leaf: it knows no other module of the
//! crate, so every layer may record into it without depending upward.
//!
//! Recording is a hash lookup of the label values and an atomic add (about
//! 40 ns); nothing is allocated on a hit. `REEDBASE_METRICS=0` turns
//! recording off, for the benchmark that measures its cost.

mod node;
mod render;
mod serve;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

pub use node::{FAKE_CPU_ENV, FAKE_MEMORY_ENV, NodeHealth, median, node_health};
pub use render::{Format, render};
pub use serve::{LocalService, ask_daemons, serve_http, serve_local};

/// Environment variable that turns recording off (`0`).
pub const METRICS_ENV: &str = "REEDBASE_METRICS";

/// Every metric of the process. Labels: `db` (a database's name), `table`,
/// `peer` (a location's name), and what the metric's help says.
pub struct Metrics {
    registry: Registry,
    pub commits: IntCounterVec,
    pub commit_seconds: HistogramVec,
    pub frame_seconds: HistogramVec,
    pub saves: IntCounterVec,
    pub merge_conflicts: IntCounterVec,
    pub conflicts_resolved: IntCounterVec,
    pub fuse_seconds: HistogramVec,
    pub fuse_errors: IntCounterVec,
    pub query_seconds: HistogramVec,
    pub query_cache: IntCounterVec,
    pub table_access: IntCounterVec,
    pub cache_bytes: IntGaugeVec,
    pub sync_rounds: IntCounterVec,
    pub sync_round_seconds: HistogramVec,
    pub sync_bytes: IntCounterVec,
    pub sync_records: IntCounterVec,
    pub sync_lag_records: IntGaugeVec,
    pub sync_since_success: GaugeVec,
    pub sync_conflicts: IntCounterVec,
    pub peer_latency: GaugeVec,
    /// Called before each render to set gauges that are read, not counted
    /// (cache memory, seconds since a peer's last success).
    refreshers: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// The databases this process serves (for `rdb metrics`).
    serving: Mutex<Vec<String>>,
    /// (db, peer) -> the last successful exchange, µs since the epoch.
    peer_success: Mutex<std::collections::BTreeMap<(String, String), u64>>,
    enabled: AtomicBool,
}

/// Latency buckets from 50 µs to about 105 s, doubling.
fn latency_buckets() -> Vec<f64> {
    (0..22).map(|i| 50e-6 * f64::powi(2.0, i)).collect()
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| bad(name, e));
    register(r, name, Box::new(c.clone()));
    c
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(latency_buckets());
    let h = HistogramVec::new(opts, labels).unwrap_or_else(|e| bad(name, e));
    register(r, name, Box::new(h.clone()));
    h
}

fn int_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| bad(name, e));
    register(r, name, Box::new(g.clone()));
    g
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| bad(name, e));
    register(r, name, Box::new(g.clone()));
    g
}

fn register(r: &Registry, name: &str, c: Box<dyn prometheus::core::Collector>) {
    if let Err(e) = r.register(c) {
        bad(name, e)
    }
}

/// The names and labels above are constants: an error is a programming
/// error caught by every test that records anything.
fn bad(name: &str, e: prometheus::Error) -> ! {
    panic!("metric {name}: {e}")
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let dt = &["db", "table"];
        Metrics {
            commits: counter(
                &r,
                "reedbase_commits_total",
                "Versions committed, by action (write, sync, rollback, ...).",
                &["db", "table", "action"],
            ),
            commit_seconds: histogram(
                &r,
                "reedbase_commit_duration_seconds",
                "Time from a commit's call to its durable log line, per committed version.",
                dt,
            ),
            frame_seconds: histogram(
                &r,
                "reedbase_frame_commit_duration_seconds",
                "Time to commit a frame (all its tables, durably).",
                &["db"],
            ),
            saves: counter(
                &r,
                "reedbase_saves_total",
                "Saves through the mount by outcome: committed, merged, appended, unchanged, conflict, invalid, no_space, error.",
                &["db", "table", "outcome"],
            ),
            merge_conflicts: counter(
                &r,
                "reedbase_merge_conflicts_total",
                "Concurrent saves refused by the merge and kept as conflict records.",
                dt,
            ),
            conflicts_resolved: counter(
                &r,
                "reedbase_conflicts_resolved_total",
                "Conflict records resolved, by how (ours, theirs, cells).",
                &["db", "how"],
            ),
            fuse_seconds: histogram(
                &r,
                "reedbase_fuse_operation_duration_seconds",
                "Time to answer a FUSE request, by operation (its count is the number of requests).",
                &["op"],
            ),
            fuse_errors: counter(
                &r,
                "reedbase_fuse_errors_total",
                "FUSE requests answered with an error, by operation and errno name.",
                &["op", "errno"],
            ),
            query_seconds: histogram(
                &r,
                "reedbase_query_duration_seconds",
                "Time to run a ReedQL statement, by kind (read, write).",
                &["db", "kind"],
            ),
            query_cache: counter(
                &r,
                "reedbase_query_cache_lookups_total",
                "Result-cache lookups of queries, by result (hit, miss).",
                &["db", "result"],
            ),
            table_access: counter(
                &r,
                "reedbase_query_table_reads_total",
                "How queries read their first table: through a hash index (index) or every row (scan).",
                &["db", "access"],
            ),
            cache_bytes: int_gauge(
                &r,
                "reedbase_query_memory_bytes",
                "Memory the query caches hold, by cache (parsed_tables, results, indices).",
                &["db", "cache"],
            ),
            sync_rounds: counter(
                &r,
                "reedbase_sync_rounds_total",
                "Sync rounds, by outcome (ok: every peer answered; partial; failed).",
                &["db", "outcome"],
            ),
            sync_round_seconds: histogram(
                &r,
                "reedbase_sync_round_duration_seconds",
                "Time of a sync round with every peer.",
                &["db"],
            ),
            sync_bytes: counter(
                &r,
                "reedbase_sync_bytes_total",
                "Bytes rsync moved with a peer, by direction (sent, received).",
                &["db", "peer", "direction"],
            ),
            sync_records: counter(
                &r,
                "reedbase_sync_records_total",
                "Commit records (files) moved with a peer, by direction (sent, received).",
                &["db", "peer", "direction"],
            ),
            sync_lag_records: int_gauge(
                &r,
                "reedbase_sync_lag_records",
                "Commit records made here since the last successful exchange with a peer.",
                &["db", "peer"],
            ),
            sync_since_success: gauge(
                &r,
                "reedbase_sync_seconds_since_success",
                "Seconds since the last successful exchange with a peer.",
                &["db", "peer"],
            ),
            sync_conflicts: counter(
                &r,
                "reedbase_sync_conflicts_total",
                "Values that lost a concurrent race between locations, kept as conflicts.",
                &["db"],
            ),
            peer_latency: gauge(
                &r,
                "reedbase_peer_latency_seconds",
                "Median round trip of a command to a peer at its last health probe.",
                &["db", "peer"],
            ),
            registry: r,
            refreshers: Mutex::new(Vec::new()),
            serving: Mutex::new(Vec::new()),
            peer_success: Mutex::new(Default::default()),
            enabled: AtomicBool::new(std::env::var(METRICS_ENV).map_or(true, |v| v != "0")),
        }
    }

    /// Whether recording is on (it is unless `REEDBASE_METRICS=0`).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns recording on or off (the benchmark of its cost does).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Adds a function run before every render (it sets gauges).
    pub fn on_render(&self, f: Box<dyn Fn() + Send + Sync>) {
        lock(&self.refreshers).push(f);
    }

    /// Notes that this process serves `db` (`rdb metrics` asks it).
    pub fn serve_db(&self, db: &str) {
        let mut s = lock(&self.serving);
        if !s.iter().any(|d| d == db) {
            s.push(db.to_string());
        }
    }

    pub fn serves(&self, db: &str) -> bool {
        lock(&self.serving).iter().any(|d| d == db)
    }

    /// What a sync round learnt of a peer: its last successful exchange
    /// (µs since the epoch, 0: never) and the records it lags behind.
    pub fn note_peer(&self, db: &str, peer: &str, last_success_us: u64, lag: u64) {
        if !self.enabled() {
            return;
        }
        self.sync_lag_records
            .with_label_values(&[db, peer])
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
        lock(&self.peer_success).insert((db.to_string(), peer.to_string()), last_success_us);
    }

    fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        for f in lock(&self.refreshers).iter() {
            f();
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for ((db, peer), &us) in lock(&self.peer_success).iter() {
            // Never: as long as this process has known the peer.
            let since = if us == 0 {
                f64::INFINITY
            } else {
                (now - us as f64 / 1e6).max(0.0)
            };
            self.sync_since_success
                .with_label_values(&[db, peer])
                .set(since);
        }
        self.registry.gather()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// Adds one to a counter (when recording is on).
pub fn inc(c: &IntCounterVec, labels: &[&str]) {
    add(c, labels, 1);
}

pub fn add(c: &IntCounterVec, labels: &[&str], n: u64) {
    if global().enabled() && n > 0 {
        c.with_label_values(labels).inc_by(n);
    }
}

/// Records a duration in a histogram (when recording is on).
pub fn observe(h: &HistogramVec, labels: &[&str], d: Duration) {
    if global().enabled() {
        h.with_label_values(labels).observe(d.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_commit_shows_in_its_database_only_and_the_text_is_valid() {
        let m = global();
        inc(&m.commits, &["unit-a", "users", "write"]);
        observe(
            &m.commit_seconds,
            &["unit-a", "users"],
            Duration::from_millis(2),
        );
        inc(&m.commits, &["unit-b", "users", "write"]);
        let a = String::from_utf8(render(Some("unit-a"), Format::Text)).unwrap_or_default();
        assert!(
            a.contains(r#"reedbase_commits_total{action="write",db="unit-a",table="users"} 1"#),
            "{a}"
        );
        assert!(!a.contains("unit-b"), "{a}");
        assert!(a.contains("# TYPE reedbase_commit_duration_seconds histogram"));
        let all = String::from_utf8(render(None, Format::Text)).unwrap_or_default();
        assert!(all.contains("unit-a") && all.contains("unit-b"));
    }
}
