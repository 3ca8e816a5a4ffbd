//! ReedQL: SQL over the tables of a database (docs/QUERY.md). Parse
//! (`parse.rs`, sqlparser with ReedQL's `AS OF`), bind (`plan/`: names,
//! types, aggregates), execute (`exec/`), format (`output.rs`). Values
//! follow SQLite's semantics (`value.rs`), checked by a differential test
//! against the real sqlite3.
//!
//! The query layer sits on storage (and merge, for writes later); the
//! mount and the CLI use it through this door: [`Engine`].

mod ast;
mod cache;
mod cells;
mod column_index;
mod dml;
mod error;
mod exec;
pub mod index;
mod interrupt;
pub mod migrate;
pub mod output;
mod parse;
mod plan;
mod realfmt;
mod table;
pub mod value;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

pub use error::{Cause, ErrorKind, QueryError};
pub use interrupt::Interrupt;
pub use table::{TypedTable, infer};
pub use value::{Type, Value};

/// Whether `sql` is a statement that writes (INSERT, UPDATE, DELETE), as the
/// parser reads it (comments and all); a statement that does not parse
/// writes nothing.
pub fn is_write(sql: &str) -> bool {
    matches!(
        parse::parse(sql),
        Ok(sqlparser::ast::Statement::Insert(_)
            | sqlparser::ast::Statement::Update(_)
            | sqlparser::ast::Statement::Delete(_))
    )
}

use crate::storage::Database;

/// Limits a query runs under (errors name them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows a join may produce.
    pub max_join_rows: u64,
    /// Rows a query may hold in memory; a larger result is streamed (or,
    /// when it must be sorted, grouped or deduplicated, refused).
    pub max_rows_in_memory: u64,
    /// Stops the query: its time limit, or a cancel from outside.
    pub interrupt: Arc<Interrupt>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_join_rows: 50_000_000,
            max_rows_in_memory: 1_000_000,
            interrupt: Arc::default(),
        }
    }
}

/// A query's result: column names and rows (each value carries its type).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Parsed table versions, by (table, version name), kept between queries
/// by whoever owns it (a mount keeps one per database), with what else a
/// query needs: results, indices.
///
/// Bounded by design (a daemon runs for months): a table's head stays
/// parsed while it is used; an older version is dropped as soon as a newer
/// one is parsed, unless a query asked for it as history (AS OF) in the
/// last `HISTORY_KEEP`; anything unused for `IDLE_KEEP` is dropped; and all
/// together stay under `MAX_PARSED_BYTES`, least recently used first.
/// Memory freed by a drop is handed back to the system (`release_memory`).
#[derive(Debug, Default)]
pub struct TableCache {
    tables: Mutex<ParsedTables>,
    /// Results by query and the versions it read.
    pub results: cache::ResultCache,
    /// Which columns are indexed (`index.rs`).
    pub indexes: index::Indexes,
}

/// Memory parsed versions may hold (rows and their content; indices have
/// their own bound).
const MAX_PARSED_BYTES: u64 = 1 << 30;

/// How long an older version a query asked for stays parsed.
const HISTORY_KEEP: Duration = Duration::from_secs(60);

/// How long any parsed version stays unused before it is dropped.
const IDLE_KEEP: Duration = Duration::from_secs(600);

/// What a [`TableCache`] holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    pub parsed_versions: usize,
    pub parsed_bytes: u64,
    pub result_bytes: u64,
    pub index_bytes: u64,
}

impl TableCache {
    /// What the cache holds now (for `@status`).
    pub fn usage(&self) -> CacheUse {
        let (parsed_versions, parsed_bytes) = {
            let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
            (t.map.len(), t.map.values().map(|e| e.bytes).sum())
        };
        CacheUse {
            parsed_versions,
            parsed_bytes,
            result_bytes: self.results.bytes() as u64,
            index_bytes: self.indexes.bytes(),
        }
    }
}

/// A parsed version and its version name (`ParsedTables::latest`).
type Latest = (table::TableRef, String);

#[derive(Debug, Default)]
struct ParsedTables {
    map: HashMap<(String, String), Parsed>,
    clock: u64,
}

#[derive(Debug)]
struct Parsed {
    /// The parsed version (holding its content: the next version is
    /// derived from it).
    table: table::TableRef,
    bytes: u64,
    used: u64,
    used_at: Instant,
    /// When an AS OF query last asked for this version.
    asked_as_history: Option<Instant>,
}

impl ParsedTables {
    /// `as_history`: an AS OF query asks for it.
    fn get(&mut self, key: &(String, String), as_history: bool) -> Option<table::TableRef> {
        self.clock += 1;
        let e = self.map.get_mut(key)?;
        e.used = self.clock;
        e.used_at = Instant::now();
        if as_history {
            e.asked_as_history = Some(e.used_at);
        }
        Some(Arc::clone(&e.table))
    }

    /// The newest cached version of `table` with the same schema part
    /// (`+schema-...`) as `version`: what a new version derives from.
    /// With its version (as the cache names it).
    fn latest(&self, table: &str, version: &str) -> Option<Latest> {
        let schema_of = |v: &str| v.split_once('+').map(|(_, s)| s.to_string());
        self.map
            .iter()
            .filter(|((t, v), _)| t == table && schema_of(v) == schema_of(version))
            .max_by(|a, b| a.0.1.cmp(&b.0.1))
            .map(|((_, v), e)| (Arc::clone(&e.table), v.clone()))
    }

    /// Keeps a parsed version; returns the versions that leave to make
    /// room, for the caller to drop (`drop_later`) once the lock is
    /// released: dropping millions of values takes a while.
    #[must_use]
    fn insert(
        &mut self,
        key: (String, String),
        table: table::TableRef,
        as_history: bool,
    ) -> Vec<Parsed> {
        self.clock += 1;
        let now = Instant::now();
        // Older versions of the table, unless asked for as history lately;
        // and whatever nobody used for a long time.
        let leaving: Vec<(String, String)> = self
            .map
            .iter()
            .filter(|((t, v), e)| {
                let superseded = *t == key.0 && *v < key.1;
                let wanted = e
                    .asked_as_history
                    .is_some_and(|at| now.duration_since(at) < HISTORY_KEEP);
                !((!superseded || wanted) && now.duration_since(e.used_at) < IDLE_KEEP)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut evicted: Vec<Parsed> = leaving.iter().filter_map(|k| self.map.remove(k)).collect();
        // Every version counts its rows whole, chunks it shares with another
        // cached version included (`TypedTable::bytes`): an over-count while
        // an older version stays for AS OF, never an under-count.
        let bytes = table.bytes() + table.content().len() as u64;
        let mut total: u64 = self.map.values().map(|e| e.bytes).sum();
        while total + bytes > MAX_PARSED_BYTES {
            let Some(lru) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.map.remove(&lru) {
                total -= e.bytes;
                evicted.push(e);
            }
        }
        let used = self.clock;
        self.map.insert(
            key,
            Parsed {
                table,
                bytes,
                used,
                used_at: now,
                asked_as_history: as_history.then_some(now),
            },
        );
        evicted
    }
}

/// Drops what a cache let go of (parsed versions: millions of values, and
/// their content) on a thread of its own, so the query that superseded a
/// version does not wait for its drop; then, once nothing more came to
/// drop for `TRIM_AFTER`, hands the memory back to the system
/// (`release_memory`: it holds the allocator's locks while it walks the
/// heap, so not while the queries that follow a commit run). Where no such
/// thread can run, drops it here.
fn drop_later(garbage: Box<dyn Send>) {
    type Garbage = Box<dyn Send>;
    static DROPPER: OnceLock<Option<mpsc::Sender<Garbage>>> = OnceLock::new();
    let tx = DROPPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Garbage>();
        std::thread::Builder::new()
            .name("rdb-drop".into())
            .spawn(move || {
                // Since when freed memory waits to be handed back.
                let mut freed: Option<Instant> = None;
                loop {
                    let next = match freed {
                        Some(_) => rx.recv_timeout(TRIM_AFTER),
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    };
                    match next {
                        Ok(g) => {
                            drop(g);
                            let since = *freed.get_or_insert_with(Instant::now);
                            // Commits that never pause still get it back.
                            if since.elapsed() > 10 * TRIM_AFTER {
                                release_memory();
                                freed = None;
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            release_memory();
                            freed = None;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .ok()
            .map(|_| tx)
    });
    let unsent = match tx {
        Some(tx) => tx.send(garbage).err().map(|e| e.0),
        None => Some(garbage),
    };
    if let Some(g) = unsent {
        drop(g);
        release_memory();
    }
}

/// How long the drop thread waits for quiet before `release_memory`.
const TRIM_AFTER: Duration = Duration::from_millis(500);

/// Hands memory the allocator keeps after large frees back to the system,
/// so a daemon's resident size follows what its caches hold (glibc keeps
/// freed heap pages otherwise).
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs queries against one database.
pub struct Engine<'db> {
    db: &'db Database,
    limits: Limits,
    policy: index::IndexPolicy,
    cache: std::borrow::Cow<'db, TableCache>,
}

/// What a reading statement gave (`Engine::answer`).
enum Answer {
    Whole(Arc<ResultSet>),
    /// A SELECT whose rows are too many to hold, for the caller to stream.
    ToStream(Box<ast::Select>),
}

impl Clone for TableCache {
    /// A new, empty cache (a cache is never shared by cloning).
    fn clone(&self) -> TableCache {
        TableCache::default()
    }
}

impl<'db> Engine<'db> {
    /// An engine with a cache of its own (one-shot use, like the CLI).
    pub fn new(db: &'db Database) -> Engine<'db> {
        Self::with_cow(db, std::borrow::Cow::Owned(TableCache::default()))
    }

    /// An engine that reuses `cache` across queries (a daemon).
    pub fn with_cache(db: &'db Database, cache: &'db TableCache) -> Engine<'db> {
        Self::with_cow(db, std::borrow::Cow::Borrowed(cache))
    }

    /// Limits and index policy come from the database's config.toml.
    fn with_cow(db: &'db Database, cache: std::borrow::Cow<'db, TableCache>) -> Engine<'db> {
        let c = db.config();
        Engine {
            db,
            // The time limit runs from the engine's creation: one engine
            // per query (the mount), or per command (the CLI).
            limits: Limits {
                max_join_rows: c.max_join_rows,
                max_rows_in_memory: c.max_rows_in_memory,
                interrupt: Arc::new(Interrupt::with_timeout(c.query_timeout_ms)),
            },
            policy: index::IndexPolicy {
                auto_after: c.auto_index_after.max(1),
                max_bytes: c.index_memory_mb.saturating_mul(1 << 20),
            },
            cache,
        }
    }

    /// What execution needs of the engine.
    fn env(&self) -> exec::Env<'_> {
        exec::Env {
            db: self.db.name(),
            limits: &self.limits,
            indexes: &self.cache.indexes,
            policy: self.policy,
        }
    }

    /// Writes the index list to the database's local state when it changed
    /// (for `rdb index:list`); best effort. Only an engine with a cache that
    /// outlives it (a daemon's) does: a one-shot engine's indices die with
    /// it and must not overwrite what the daemon wrote.
    fn persist_indexes(&self) {
        if matches!(self.cache, std::borrow::Cow::Owned(_)) || !self.cache.indexes.take_dirty() {
            return;
        }
        let state = self.cache.indexes.snapshot(self.policy);
        if let Err(e) = index::IndexState::save(self.db, &state) {
            tracing::debug!(error = %e, "index state not written");
        }
    }

    /// The index list as this engine's cache knows it.
    pub fn index_state(&self) -> index::IndexState {
        self.cache.indexes.snapshot(self.policy)
    }

    /// Overrides the database's index settings (benchmarks, tests).
    pub fn with_policy(mut self, policy: index::IndexPolicy) -> Engine<'db> {
        self.policy = policy;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Engine<'db> {
        self.limits = limits;
        self
    }

    /// What stops this engine's queries from outside (`Interrupt::cancel`).
    pub fn interrupt(&self) -> Arc<Interrupt> {
        Arc::clone(&self.limits.interrupt)
    }

    /// Runs one SELECT.
    pub fn query(&self, sql: &str) -> Result<ResultSet, QueryError> {
        self.timed("read", || {
            self.query_shared(sql)
                .map(|r| Arc::try_unwrap(r).unwrap_or_else(|shared| shared.as_ref().clone()))
        })
    }

    /// Runs `f`, a statement of `kind` (read, write), and records its time.
    fn timed<T>(&self, kind: &str, f: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = f();
        let m = crate::metrics::global();
        crate::metrics::observe(&m.query_seconds, &[self.db.name(), kind], started.elapsed());
        out
    }

    /// `query`, sharing the result with the result cache (no copy).
    fn query_shared(&self, sql: &str) -> Result<Arc<ResultSet>, QueryError> {
        match self.answer(sql, false)? {
            Answer::Whole(result) => Ok(result),
            Answer::ToStream(_) => Err(exec::too_large(&self.limits)),
        }
    }

    /// Runs one reading statement: its whole result (from the result cache
    /// when the tables it reads are unchanged), or, for a SELECT whose rows
    /// are too many to hold and need not be (`exec::Ran::ToStream`), the
    /// bound query for the caller to stream. With `stream_first` (a caller
    /// that writes rows out), a SELECT whose rows need no whole result (no
    /// grouping, DISTINCT, ORDER BY or window) is streamed whatever its
    /// size, unless the cache has it: each row goes out as it is made and
    /// none is held.
    fn answer(&self, sql: &str, stream_first: bool) -> Result<Answer, QueryError> {
        let statement = parse::parse(sql)?;
        match &statement {
            sqlparser::ast::Statement::Query(q) => {
                let mut binder = plan::Binder::new(self, sql);
                let select = binder.bind_query(q)?;
                // Binding resolved every table's version: the cache key.
                let mut read = binder.read;
                read.sort();
                read.dedup();
                let key = (statement.to_string(), read);
                let cacheable = !binder.reads_clock;
                if cacheable {
                    let hit = self.cache.results.get(&key);
                    let m = crate::metrics::global();
                    let result = if hit.is_some() { "hit" } else { "miss" };
                    crate::metrics::inc(&m.query_cache, &[self.db.name(), result]);
                    if let Some(hit) = hit {
                        return Ok(Answer::Whole(hit));
                    }
                }
                if stream_first
                    && exec::streamable(&select)
                    && select.windows.is_empty()
                    && !select.sources.is_empty()
                {
                    return Ok(Answer::ToStream(Box::new(select)));
                }
                let result = match exec::run(&select, &self.env())? {
                    exec::Ran::Whole(result) => result,
                    exec::Ran::ToStream => return Ok(Answer::ToStream(Box::new(select))),
                };
                self.persist_indexes();
                let result = Arc::new(result);
                if cacheable {
                    self.cache.results.put(key, Arc::clone(&result));
                }
                Ok(Answer::Whole(result))
            }
            sqlparser::ast::Statement::Explain {
                statement: inner, ..
            } => {
                let sqlparser::ast::Statement::Query(q) = &**inner else {
                    return Err(QueryError::new(
                        ErrorKind::Unsupported,
                        "EXPLAIN takes a SELECT",
                    ));
                };
                let select = plan::Binder::new(self, sql).bind_query(q)?;
                Ok(Answer::Whole(Arc::new(exec::explain(&select, &self.env()))))
            }
            sqlparser::ast::Statement::Insert(_)
            | sqlparser::ast::Statement::Update(_)
            | sqlparser::ast::Statement::Delete(_) => Err(QueryError::new(
                ErrorKind::Unsupported,
                "this runs reading queries only; INSERT, UPDATE and DELETE run with `rdb db:query`",
            )),
            other => Err(QueryError::new(
                ErrorKind::Unsupported,
                format!(
                    "ReedQL runs SELECT, INSERT, UPDATE and DELETE; not: {}",
                    other.to_string().split_whitespace().next().unwrap_or("")
                ),
            )),
        }
    }

    /// Runs a reading query and writes its result to `out` in `format`. A
    /// result within `max_rows_in_memory` rows is computed whole (and
    /// cached); a larger one is streamed row by row when the query allows
    /// it (no grouping, DISTINCT or ORDER BY), so memory stays bounded
    /// whatever the result's size; else the query fails (`TooLarge`).
    pub fn query_to(
        &self,
        sql: &str,
        format: output::Format,
        out: &mut dyn std::io::Write,
    ) -> Result<(), QueryError> {
        self.timed("read", || self.query_to_untimed(sql, format, out))
    }

    fn query_to_untimed(
        &self,
        sql: &str,
        format: output::Format,
        out: &mut dyn std::io::Write,
    ) -> Result<(), QueryError> {
        let io = QueryError::output;
        match self.answer(sql, true)? {
            Answer::Whole(r) => {
                let mut w = output::RowWriter::new(out, format, &r.columns);
                w.start().map_err(io)?;
                for row in &r.rows {
                    w.row(row).map_err(io)?;
                }
                w.finish().map_err(io)
            }
            Answer::ToStream(select) => {
                let mut w = output::RowWriter::new(out, format, &select.names);
                w.start().map_err(io)?;
                exec::stream(&select, &self.env(), &mut |row| w.row_refs(row).map_err(io))?;
                // Lookups it made count toward indices, as a run's do.
                self.persist_indexes();
                w.finish().map_err(io)
            }
        }
    }

    /// Checks that `sql` is a reading query that binds against the current
    /// tables, without running it (how saved queries are checked).
    pub fn check(&self, sql: &str) -> Result<(), QueryError> {
        let statement = parse::parse(sql)?;
        if let sqlparser::ast::Statement::Query(q) = &statement {
            plan::Binder::new(self, sql).bind_query(q)?;
            return Ok(());
        }
        // EXPLAIN is cheap; anything else fails as a run would.
        self.query(sql).map(|_| ())
    }

    /// `execute`, writing the result to `out` in `format`; a reading query
    /// goes through `query_to` (large results stream).
    pub fn execute_to(
        &self,
        sql: &str,
        user: &str,
        format: output::Format,
        out: &mut dyn std::io::Write,
    ) -> Result<(), QueryError> {
        let statement = parse::parse(sql)?;
        match &statement {
            sqlparser::ast::Statement::Insert(_)
            | sqlparser::ast::Statement::Update(_)
            | sqlparser::ast::Statement::Delete(_) => {
                let r = self.timed("write", || dml::run(self, sql, &statement, user))?;
                let text = match format {
                    output::Format::Csv(d) => output::csv(&r, d),
                    output::Format::Json => output::json(&r),
                };
                out.write_all(text.as_bytes()).map_err(QueryError::output)
            }
            _ => self.query_to(sql, format, out),
        }
    }

    /// Runs a query or a write (INSERT, UPDATE, DELETE) by `user`. A write
    /// commits through the merge layer and returns `changes|version`.
    pub fn execute(&self, sql: &str, user: &str) -> Result<ResultSet, QueryError> {
        let statement = parse::parse(sql)?;
        match &statement {
            sqlparser::ast::Statement::Insert(_)
            | sqlparser::ast::Statement::Update(_)
            | sqlparser::ast::Statement::Delete(_) => {
                self.timed("write", || dml::run(self, sql, &statement, user))
            }
            _ => self.query(sql),
        }
    }

    /// A table by its SQL name: names are case-insensitive, table
    /// directories are not, so the exact name first, then a case-insensitive
    /// match. Dropped tables are found too (they have a history).
    fn resolve_table(
        &self,
        name: &str,
    ) -> Result<(String, Arc<crate::storage::Table>), QueryError> {
        match self.db.table(name) {
            Ok(t) => Ok((name.to_string(), t)),
            Err(crate::storage::StorageError::NotFound { .. }) => {
                let found = self
                    .db
                    .table_names()?
                    .into_iter()
                    .find(|t| t.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        QueryError::new(ErrorKind::Unknown, format!("no such table: {name}"))
                    })?;
                let t = self.db.table(&found)?;
                Ok((found, t))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A table as of `ts_us` (None: the head), parsed once per version,
    /// with the version's name and the table's stored name.
    fn table(
        &self,
        name: &str,
        ts_us: Option<u64>,
    ) -> Result<(table::TableRef, String, String), QueryError> {
        let (name, t) = self.resolve_table(name)?;
        let name = name.as_str();
        // The head comes with its bytes (shared, not copied).
        let head = match ts_us {
            None => Some(t.head()?),
            Some(_) => None,
        };
        let seq = match (&head, ts_us) {
            (Some((seq, _)), _) => *seq,
            (None, Some(ts)) => t.seq_at(ts)?,
            (None, None) => 0,
        };
        if seq == 0 {
            return Err(QueryError::new(
                ErrorKind::Unknown,
                format!("table {name} did not exist at that time"),
            ));
        }
        let version = t.version(seq)?;
        // A dropped table has only a history: read it with AS OF.
        if ts_us.is_none() && version.action == "drop" {
            return Err(QueryError::new(
                ErrorKind::Unknown,
                format!("table {name} is dropped (`rdb table:restore` brings it back)"),
            ));
        }
        // A declared schema types the table too: its version is part of
        // the parsed table's identity (and so of the result cache's key).
        let schema = self.db.schema(name)?;
        let version = match &schema {
            Some((_, v)) => format!("{}+schema-{v}", version.name),
            None => version.name,
        };
        let key = (name.to_string(), version.clone());
        let cached = {
            let mut tables = self.cache.tables.lock().unwrap_or_else(|p| p.into_inner());
            match tables.get(&key, ts_us.is_some()) {
                Some(p) => return Ok((p, version, name.to_string())),
                None => tables.latest(name, &version),
            }
        };
        let content = match head {
            Some((_, bytes)) => bytes,
            None => t.read_version_shared(seq)?,
        };
        let delim = self.db.config().delimiter_byte();
        // A new version of a table already parsed: derived from it (the rows
        // the commit did not touch are reused), else parsed whole. When this
        // handle committed the head over the version cached, the commit
        // knows where they differ (a hint: any doubt, and derive compares).
        let ends = match (&cached, ts_us) {
            (Some((_, cached_version)), None) => t.change_from_previous(seq).filter(|_| {
                let cached_name = cached_version.split('+').next().unwrap_or_default();
                seq > 1 && t.version(seq - 1).is_ok_and(|v| v.name == cached_name)
            }),
            _ => None,
        };
        let derived = cached
            .as_ref()
            .and_then(|(old, _)| old.derive_within(&content, ends));
        // The version the new one derives from: its indices are updated.
        let prev = match (&derived, &cached) {
            (Some(_), Some((old, _))) => Some(Arc::clone(old)),
            _ => None,
        };
        let parsed = Arc::new(match derived {
            Some(d) => d,
            None => {
                let (declared, unique) = schema
                    .map(|(s, _)| (s.unique_columns(), s.columns))
                    .map(|(u, c)| (c, u))
                    .unwrap_or_default();
                TypedTable::parse_declared(&content, delim, &declared)?.with_unique(&unique)
            }
        });
        let evicted = self
            .cache
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&parsed), ts_us.is_some());
        // What the previous version computed of its columns, updated.
        if let Some(prev) = &prev {
            parsed.inherit(prev);
        }
        // A new head: index what the old ones had indexed.
        if ts_us.is_none() {
            self.cache
                .indexes
                .maintain(self.policy, name, &version, &parsed, prev.as_ref());
        }
        // The versions that left (and this query's hold on the previous
        // one) are dropped off the query's path.
        if !evicted.is_empty() {
            drop_later(Box::new((evicted, cached, prev)));
        }
        Ok((parsed, version, name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::is_write;

    #[test]
    fn writes_are_told_from_reads_as_the_parser_reads_them() {
        assert!(is_write("insert into t values (1)"));
        assert!(is_write("  UPDATE t SET a = 1"));
        assert!(is_write("/* nightly */ DELETE FROM t"));
        assert!(is_write("-- x\nINSERT INTO t VALUES (1)"));
        assert!(!is_write("SELECT * FROM t"));
        assert!(!is_write("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(!is_write("SELECT 'delete' FROM t"));
        assert!(!is_write("EXPLAIN SELECT 1"));
        assert!(!is_write("not sql at all"));
    }
}
