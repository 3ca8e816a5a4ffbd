//! `config.toml` of a database.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
use super::io::{Io, read_file, replace_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    #[default]
    Reject,
    LastWriterWins,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub name: String,
    /// Identity of the database across sites (a UUID).
    pub id: String,
    /// Identity of this site's copy: 8 hex digits, part of every version name.
    pub node: String,
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// A keyframe (full copy, XZ) is stored once the deltas stored since
    /// the last one exceed a quarter of the table (at least 32 KiB), and at
    /// the latest every this many versions of a table.
    #[serde(default = "default_keyframe_every")]
    pub keyframe_every: u64,
    /// The deltas of a table's committed versions are sealed into a pack
    /// file once the pack would reach this many bytes (docs/FORMAT.md,
    /// section 4a): one file system block by default.
    #[serde(default = "default_pack_bytes")]
    pub pack_bytes: u64,
    /// How long a commit waits for another process's lock before failing.
    #[serde(default = "default_lock_timeout_ms")]
    pub lock_timeout_ms: u64,
    /// Queries: equality lookups on a (non-key) column before it gets a
    /// hash index (1: at the first).
    #[serde(default = "default_auto_index_after")]
    pub auto_index_after: u64,
    /// Queries: memory all hash indices of the database may hold, in MiB.
    #[serde(default = "default_index_memory_mb")]
    pub index_memory_mb: u64,
    /// Queries: rows a join may produce before the query fails.
    #[serde(default = "default_max_join_rows")]
    pub max_join_rows: u64,
    /// Queries: rows a query may hold in memory; larger results stream.
    #[serde(default = "default_max_rows_in_memory")]
    pub max_rows_in_memory: u64,
    /// Queries: how long one may run, in milliseconds (0: no limit).
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// Mount: scratch files (editors' swap and temp files) held in memory,
    /// in MiB, all tables together; beyond it they spill to disk.
    #[serde(default = "default_scratch_memory_mb")]
    pub scratch_memory_mb: u64,
    /// Mount: scratch files in memory and on disk together, in MiB; a write
    /// beyond it fails with ENOSPC.
    #[serde(default = "default_scratch_max_mb")]
    pub scratch_max_mb: u64,
    /// Health of locations: seconds between probes of every peer by a
    /// daemon (`rdb db:health` probes on demand).
    #[serde(default = "default_health_interval_seconds")]
    pub health_interval_seconds: u64,
    /// A location whose CPU load (load average over cores) exceeds this
    /// percentage is Degraded: routed queries go elsewhere first.
    #[serde(default = "default_health_max_cpu_percent")]
    pub health_max_cpu_percent: u64,
    /// Likewise for the share of memory in use.
    #[serde(default = "default_health_max_memory_percent")]
    pub health_max_memory_percent: u64,
    /// Retention (`rdb version:prune` applies it): keep each table's last
    /// this many versions (0: no limit by count).
    #[serde(default)]
    pub keep_versions: u64,
    /// Retention: keep what a reader of any time within this duration
    /// (`30d`, `12h`, `2w`) needs ("": no limit by age). With both set, a
    /// prune keeps what either keeps.
    #[serde(default)]
    pub keep_since: String,
}

fn default_delimiter() -> char {
    '|'
}
fn default_keyframe_every() -> u64 {
    10_000
}
fn default_pack_bytes() -> u64 {
    4096
}
fn default_lock_timeout_ms() -> u64 {
    5000
}
fn default_auto_index_after() -> u64 {
    2
}
fn default_index_memory_mb() -> u64 {
    256
}
fn default_max_join_rows() -> u64 {
    50_000_000
}
fn default_max_rows_in_memory() -> u64 {
    1_000_000
}
fn default_query_timeout_ms() -> u64 {
    30_000
}
fn default_scratch_memory_mb() -> u64 {
    64
}
fn default_scratch_max_mb() -> u64 {
    4096
}
fn default_health_interval_seconds() -> u64 {
    30
}
fn default_health_max_cpu_percent() -> u64 {
    80
}
fn default_health_max_memory_percent() -> u64 {
    90
}

impl Config {
    pub fn new(name: &str, delimiter: char) -> Config {
        let id = uuid::Uuid::new_v4();
        Config {
            name: name.to_string(),
            id: id.to_string(),
            node: new_node_id(),
            delimiter,
            conflict_policy: ConflictPolicy::Reject,
            keyframe_every: default_keyframe_every(),
            pack_bytes: default_pack_bytes(),
            lock_timeout_ms: default_lock_timeout_ms(),
            auto_index_after: default_auto_index_after(),
            index_memory_mb: default_index_memory_mb(),
            max_join_rows: default_max_join_rows(),
            max_rows_in_memory: default_max_rows_in_memory(),
            query_timeout_ms: default_query_timeout_ms(),
            scratch_memory_mb: default_scratch_memory_mb(),
            scratch_max_mb: default_scratch_max_mb(),
            health_interval_seconds: default_health_interval_seconds(),
            health_max_cpu_percent: default_health_max_cpu_percent(),
            health_max_memory_percent: default_health_max_memory_percent(),
            keep_versions: 0,
            keep_since: String::new(),
        }
    }

    /// The delimiter as a byte (validated ASCII on load).
    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter as u8
    }

    pub fn load(io: &dyn Io, path: &Path) -> Result<Config> {
        let bytes = read_file(io, path)?;
        let bad = |detail: String| StorageError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        cfg.check().map_err(bad)?;
        Ok(cfg)
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        let d = self.delimiter;
        if !d.is_ascii() || d.is_ascii_alphanumeric() || matches!(d, '"' | '\n' | '\r') {
            return Err(format!(
                "delimiter {d:?} must be an ASCII punctuation, space or tab"
            ));
        }
        if self.node.len() != 8 || !self.node.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("node {:?} must be 8 hex digits", self.node));
        }
        if self.keyframe_every == 0 {
            return Err("keyframe_every must be at least 1".into());
        }
        if !self.keep_since.trim().is_empty() {
            super::retention::keep_since_us(&self.keep_since, 0)?;
        }
        Ok(())
    }

    pub fn save(&self, io: &dyn Io, path: &Path) -> Result<()> {
        let text = toml::to_string(self).map_err(|e| StorageError::Config {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        replace_file(io, path, text.as_bytes())
    }
}

fn new_node_id() -> String {
    let id = uuid::Uuid::new_v4();
    id.simple().to_string()[..8].to_string()
}
