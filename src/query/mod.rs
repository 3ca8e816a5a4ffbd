//! ReedQL: SQL over the tables of a database (docs/QUERY.md). Parse
//! (`parse.rs`, sqlparser with ReedQL's `AS OF`), bind (`plan.rs`: names,
//! types, aggregates), execute (`exec.rs`), format (`output.rs`). Values
//! follow SQLite's semantics (`value.rs`), checked by a differential test
//! against the real sqlite3.
//!
//! The query layer sits on storage (and merge, for writes later); the
//! mount and the CLI use it through this door: [`Engine`].

mod cache;
mod dml;
mod error;
mod exec;
pub mod output;
mod parse;
mod plan;
mod table;
pub mod value;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use error::{ErrorKind, QueryError};
pub use table::{TypedTable, infer};
pub use value::{Type, Value};

use crate::storage::Database;

/// Limits a query runs under (errors name them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows a join may produce.
    pub max_join_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_join_rows: 50_000_000,
        }
    }
}

/// A query's result: column names and types, and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    /// A column's type where known (for JSON): its source column's, else
    /// what its values are.
    pub types: Vec<Option<Type>>,
    pub rows: Vec<Vec<Value>>,
}

/// Parsed table versions, by (table, version name), kept between queries
/// by whoever owns it (a mount keeps one per database). Bounded: emptied
/// when it holds more than `MAX_CACHED` versions.
#[derive(Debug, Default)]
pub struct TableCache {
    tables: Mutex<HashMap<(String, String), table::TableRef>>,
    /// Results by query and the versions it read.
    pub results: cache::ResultCache,
}

const MAX_CACHED: usize = 64;

/// Runs queries against one database.
pub struct Engine<'db> {
    db: &'db Database,
    limits: Limits,
    cache: std::borrow::Cow<'db, TableCache>,
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
        Engine {
            db,
            limits: Limits::default(),
            cache: std::borrow::Cow::Owned(TableCache::default()),
        }
    }

    /// An engine that reuses `cache` across queries (a daemon).
    pub fn with_cache(db: &'db Database, cache: &'db TableCache) -> Engine<'db> {
        Engine {
            db,
            limits: Limits::default(),
            cache: std::borrow::Cow::Borrowed(cache),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Engine<'db> {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs one SELECT.
    pub fn query(&self, sql: &str) -> Result<ResultSet, QueryError> {
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
                if let Some(hit) = self.cache.results.get(&key) {
                    return Ok(hit.as_ref().clone());
                }
                let result = exec::run(&select, &self.limits)?;
                self.cache
                    .results
                    .put(key, std::sync::Arc::new(result.clone()));
                Ok(result)
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
                Ok(exec::explain(&select))
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

    /// Runs a query or a write (INSERT, UPDATE, DELETE) by `user`. A write
    /// commits through the merge layer and returns `changes|version`.
    pub fn execute(&self, sql: &str, user: &str) -> Result<ResultSet, QueryError> {
        let statement = parse::parse(sql)?;
        match &statement {
            sqlparser::ast::Statement::Insert(_)
            | sqlparser::ast::Statement::Update(_)
            | sqlparser::ast::Statement::Delete(_) => dml::run(self, sql, &statement, user),
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
    /// with the version's name.
    fn table(
        &self,
        name: &str,
        ts_us: Option<u64>,
    ) -> Result<(table::TableRef, String), QueryError> {
        let (name, t) = self.resolve_table(name)?;
        let name = name.as_str();
        let seq = match ts_us {
            None => t.head_seq()?,
            Some(ts) => t.seq_at(ts)?,
        };
        if seq == 0 {
            return Err(QueryError::new(
                ErrorKind::Unknown,
                format!("table {name} did not exist at that time"),
            ));
        }
        let version = t.version(seq)?;
        // A dropped table has only a history: read it with AS OF.
        if ts_us.is_none() && version.size == 0 {
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
        if let Some(p) = self
            .cache
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok((Arc::clone(p), version));
        }
        let content = t.read_version(seq)?;
        let declared = schema.map(|(s, _)| s.columns).unwrap_or_default();
        let parsed = Arc::new(TypedTable::parse_declared(
            &content,
            self.db.config().delimiter_byte(),
            &declared,
        )?);
        let mut tables = self.cache.tables.lock().unwrap_or_else(|p| p.into_inner());
        if tables.len() >= MAX_CACHED {
            tables.clear();
        }
        tables.insert(key, Arc::clone(&parsed));
        Ok((parsed, version))
    }
}
