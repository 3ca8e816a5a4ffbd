//! Hash indices: which columns get one, when, and within what memory
//! (docs/QUERY.md, "Indices").
//!
//! - A table's key column (its first) is indexed at its first equality
//!   lookup. Any other column is indexed once queries have looked it up by
//!   equality (`col = constant`, a join key) `auto_index_after` times,
//!   counted per table and column across versions; until then such a
//!   filter scans and such a join builds a throwaway hash table.
//! - All indices of a database share `index_memory_mb`. An index that does
//!   not fit evicts the least recently used ones first; one that cannot fit
//!   at all is not kept (its query builds a throwaway one). An evicted index
//!   is rebuilt at its next use; its lookup count is kept.
//! - An index belongs to one parsed version, which never changes. When a
//!   commit makes a new version, the columns indexed in the table's last
//!   version are indexed in the new one as soon as it is parsed, before the
//!   query that parsed it runs (indices are maintained on commit). A new
//!   version derived from the previous one (`TypedTable::derive`) takes
//!   the previous version's index over and updates it by the change
//!   (`ColumnIndex::derive`): row numbers after the change move, the chains
//!   of the changed values are rebuilt, nothing is hashed again.
//! - What is indexed is written to the database's local state
//!   (`state/indexes`) whenever it changes, for `rdb index:list`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::column_index::ColumnIndex;
use super::error::QueryError;
use super::table::{TableRef, TypedTable};
use crate::storage::{Database, StorageError};

/// The name of the index list in the database's local state
/// (`Database::write_state`; docs/FORMAT.md, section 1).
const STATE_NAME: &str = "indexes";

/// The settings of a database that govern indices (its config.toml).
#[derive(Debug, Clone, Copy)]
pub struct IndexPolicy {
    pub auto_after: u64,
    pub max_bytes: u64,
}

impl Default for IndexPolicy {
    fn default() -> Self {
        IndexPolicy {
            auto_after: 2,
            max_bytes: 256 << 20,
        }
    }
}

/// Why a column has (or would get) an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    Key,
    /// Declared `unique` or `primary_key` in schema.toml.
    Unique,
    Auto,
}

/// One column's index as `rdb index:list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexInfo {
    pub table: String,
    pub column: String,
    pub kind: IndexKind,
    /// Equality lookups counted so far.
    pub lookups: u64,
    /// Whether an index is held in memory now, for which version, and its size.
    pub built: bool,
    pub version: String,
    pub bytes: u64,
    pub distinct: u64,
}

/// The persisted form (`state/indexes`).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct IndexState {
    pub pid: u32,
    pub max_bytes: u64,
    #[serde(default)]
    pub index: Vec<IndexInfo>,
}

impl IndexState {
    /// What a daemon's engine last saved, best effort: None when nothing
    /// was saved or it cannot be read or parsed (then logged). For those
    /// that only seed from it (a mount's engine restoring lookup counts);
    /// the one parser is [`IndexState::try_load`].
    pub fn load(db: &Database) -> Option<IndexState> {
        match IndexState::try_load(db) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(db = %db.name(), error = %e, "saved index state ignored");
                None
            }
        }
    }

    /// What a daemon's engine last saved, None when nothing was; a state
    /// that cannot be read or parsed is an error (`rdb index:list` says so
    /// rather than show an empty list).
    pub fn try_load(db: &Database) -> Result<Option<IndexState>, QueryError> {
        let Some(bytes) = db.read_state(STATE_NAME)? else {
            return Ok(None);
        };
        let bad = |detail: String| StorageError::Config {
            path: format!("state/{STATE_NAME}").into(),
            detail,
        };
        let text = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        let state = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        Ok(Some(state))
    }

    /// Replaces the saved state (local to this site, never synced; not
    /// fsynced: losing it loses only lookup counts).
    pub fn save(db: &Database, state: &IndexState) -> Result<(), QueryError> {
        let text = toml::to_string(state).map_err(|e| StorageError::Config {
            path: format!("state/{STATE_NAME}").into(),
            detail: e.to_string(),
        })?;
        Ok(db.write_state(STATE_NAME, text.as_bytes())?)
    }
}

#[derive(Debug)]
struct Held {
    table: String,
    version: String,
    col: usize,
    typed: Weak<TypedTable>,
    bytes: u64,
    distinct: u64,
    used: u64,
}

/// Equality lookups of one column, and whether it is its table's key.
#[derive(Debug, Clone, Copy, Default)]
struct Lookups {
    n: u64,
    kind: Option<IndexKind>,
}

#[derive(Debug, Default)]
struct State {
    /// Per (table, column name).
    lookups: HashMap<(String, String), Lookups>,
    held: Vec<Held>,
    clock: u64,
    /// Changed since last persisted.
    dirty: bool,
}

/// The index bookkeeping of one database (kept by a daemon across queries).
#[derive(Debug, Default)]
pub struct Indexes {
    state: Mutex<State>,
}

/// The kind of index column `col` gets at its first equality lookup: the
/// key column's, or one schema.toml declares unique; None: counted first.
fn eager_kind(typed: &TypedTable, col: usize) -> Option<IndexKind> {
    if col == 0 {
        Some(IndexKind::Key)
    } else if typed.declared_unique(col) {
        Some(IndexKind::Unique)
    } else {
        None
    }
}

impl Indexes {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Memory the held indices take (those whose table version is gone
    /// are freed with it and not counted).
    pub fn bytes(&self) -> u64 {
        let st = self.lock();
        st.held
            .iter()
            .filter(|h| h.typed.strong_count() > 0)
            .map(|h| h.bytes)
            .sum()
    }

    /// Starts from persisted lookup counts (a restarted daemon indexes the
    /// columns it indexed before as soon as their tables are parsed).
    pub fn restore(&self, saved: &IndexState) {
        let mut st = self.lock();
        for i in &saved.index {
            st.lookups
                .entry((i.table.clone(), i.column.clone()))
                .or_insert(Lookups {
                    n: i.lookups,
                    kind: Some(i.kind),
                });
        }
    }

    /// The index to use for an equality lookup on column `col` of `typed`
    /// (version `version` of table `table`), counting the lookup; built
    /// when the policy says so. None: scan (or build a throwaway one).
    pub fn for_lookup(
        &self,
        policy: IndexPolicy,
        table: &str,
        version: &str,
        typed: &TableRef,
        col: usize,
    ) -> Option<Arc<ColumnIndex>> {
        let name = typed.columns.get(col)?.clone();
        // Read before taking the state lock: a build of this column holds
        // the column's own lock, and must not stall every other lookup.
        let existing = typed.index(col);
        let mut st = self.lock();
        st.clock += 1;
        let clock = st.clock;
        let l = st.lookups.entry((table.to_string(), name)).or_default();
        l.n += 1;
        let kind = eager_kind(typed, col);
        l.kind = Some(kind.unwrap_or(IndexKind::Auto));
        let wanted = kind.is_some() || l.n >= policy.auto_after;
        // Counts are persisted now and then: at powers of two.
        if l.n.is_power_of_two() {
            st.dirty = true;
        }
        if let Some(ix) = existing {
            if let Some(h) = st
                .held
                .iter_mut()
                .find(|h| h.col == col && h.table == table && h.version == version)
            {
                h.used = clock;
            }
            return Some(ix);
        }
        if !wanted {
            return None;
        }
        drop(st);
        self.build(policy, table, version, typed, col, None)
    }

    /// Builds and keeps column `col`'s index if it fits the memory bound,
    /// evicting the least recently used others as needed.
    /// `prev`: the version `typed` was derived from, whose index of the
    /// column (if held) is taken over and updated by the change.
    fn build(
        &self,
        policy: IndexPolicy,
        table: &str,
        version: &str,
        typed: &TableRef,
        col: usize,
        prev: Option<&TableRef>,
    ) -> Option<Arc<ColumnIndex>> {
        let (ix, built_now) = typed.build_index_from(col, prev.map(|p| &**p))?;
        if !built_now {
            // Another query built it meanwhile and accounted for it.
            return Some(ix);
        }
        let bytes = ix.bytes();
        // The previous version's index this one took over is no longer held.
        let taken = prev.filter(|p| p.index(col).is_none()).map(Arc::as_ptr);
        let mut st = self.lock();
        st.held.retain(|h| {
            h.typed.strong_count() > 0 && !(h.col == col && Some(h.typed.as_ptr()) == taken)
        });
        if bytes > policy.max_bytes {
            // Used by this query alone, then gone.
            typed.drop_index(col);
            st.dirty = true;
            tracing::info!(
                table,
                col,
                bytes,
                "index larger than index_memory_mb: not kept"
            );
            return Some(ix);
        }
        let mut total: u64 = st.held.iter().map(|h| h.bytes).sum();
        while total + bytes > policy.max_bytes {
            let Some(lru) = st
                .held
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| h.used)
                .map(|(i, _)| i)
            else {
                break;
            };
            let h = st.held.swap_remove(lru);
            if let Some(t) = h.typed.upgrade() {
                t.drop_index(h.col);
            }
            tracing::debug!(table = h.table, col = h.col, "index evicted");
            st.dirty = true;
            total -= h.bytes;
        }
        st.clock += 1;
        let used = st.clock;
        st.held.push(Held {
            table: table.to_string(),
            version: version.to_string(),
            col,
            typed: Arc::downgrade(typed),
            bytes,
            distinct: ix.distinct() as u64,
            used,
        });
        st.dirty = true;
        Some(ix)
    }

    /// A new head version of `table` was parsed: index the columns its
    /// previous versions had indexed (and the ones a restarted daemon
    /// remembers as reaching the threshold). Not for AS OF versions.
    /// `prev`: the version `typed` was derived from (`TypedTable::derive`):
    /// its indices are updated by the change rather than built anew.
    pub fn maintain(
        &self,
        policy: IndexPolicy,
        table: &str,
        version: &str,
        typed: &TableRef,
        prev: Option<&TableRef>,
    ) {
        let cols: Vec<usize> = {
            let st = self.lock();
            let was_held = |c: usize| st.held.iter().any(|h| h.table == table && h.col == c);
            (0..typed.columns.len())
                .filter(|&c| {
                    let n = st
                        .lookups
                        .get(&(table.to_string(), typed.columns[c].clone()))
                        .map_or(0, |l| l.n);
                    was_held(c)
                        || (n >= policy.auto_after && n > 0)
                        || (eager_kind(typed, c).is_some() && n > 0)
                })
                .collect()
        };
        for c in cols {
            self.build(policy, table, version, typed, c, prev);
        }
        // Older versions' indices of this table are for AS OF queries
        // now: the first to go when memory is short.
        let mut st = self.lock();
        for h in st.held.iter_mut() {
            if h.table == table && h.version.as_str() < version {
                h.used = 0;
            }
        }
    }

    /// How the next equality lookup on `col` of `typed` would be served,
    /// for EXPLAIN (counts nothing): `(uses an index, description)`.
    pub fn describe(
        &self,
        policy: IndexPolicy,
        table: &str,
        typed: &TableRef,
        col: usize,
    ) -> (bool, String) {
        let name = typed.columns.get(col).map_or("?", String::as_str);
        let eager = eager_kind(typed, col);
        let kind = match eager {
            Some(IndexKind::Key) => "key",
            Some(_) => "unique (schema.toml)",
            None => "auto",
        };
        if let Some(ix) = typed.index(col) {
            return (
                true,
                format!(
                    "{kind} hash index on {table}.{name} ({} values, {} KiB)",
                    ix.distinct(),
                    ix.bytes().div_ceil(1024)
                ),
            );
        }
        let n = self
            .lock()
            .lookups
            .get(&(table.to_string(), name.to_string()))
            .map_or(0, |l| l.n);
        if eager.is_some() || n + 1 >= policy.auto_after {
            (
                true,
                format!("{kind} hash index on {table}.{name}, built by this query"),
            )
        } else {
            (
                false,
                format!(
                    "no index on {table}.{name} yet: {n} of {} equality lookups (auto_index_after)",
                    policy.auto_after
                ),
            )
        }
    }

    /// Every column with lookups or an index, for `index:list`.
    pub fn snapshot(&self, policy: IndexPolicy) -> IndexState {
        let mut st = self.lock();
        st.held.retain(|h| h.typed.strong_count() > 0);
        let mut out: Vec<IndexInfo> = Vec::new();
        for ((table, column), l) in &st.lookups {
            let held = st
                .held
                .iter()
                .filter(|h| {
                    &h.table == table
                        && h.typed
                            .upgrade()
                            .is_some_and(|t| t.columns.get(h.col) == Some(column))
                })
                .max_by(|a, b| a.version.cmp(&b.version));
            out.push(IndexInfo {
                table: table.clone(),
                column: column.clone(),
                kind: l.kind.unwrap_or(IndexKind::Auto),
                lookups: l.n,
                built: held.is_some(),
                version: held.map(|h| h.version.clone()).unwrap_or_default(),
                bytes: held.map_or(0, |h| h.bytes),
                distinct: held.map_or(0, |h| h.distinct),
            });
        }
        out.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
        IndexState {
            pid: std::process::id(),
            max_bytes: policy.max_bytes,
            index: out,
        }
    }

    /// Whether the set of held indices changed since the last call.
    pub fn take_dirty(&self) -> bool {
        std::mem::take(&mut self.lock().dirty)
    }
}
