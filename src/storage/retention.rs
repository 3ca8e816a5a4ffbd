//! Retention: how much history a prune keeps (the policy in config.toml
//! or on the command line), what must be kept whatever the policy (pins),
//! and the prune of a database's tables (docs/FORMAT.md, "Pruning").

use std::collections::BTreeMap;

use super::database::Database;
use super::error::{Result, StorageError};
use super::names::parse_time;
use super::table::PruneReport;

/// Which versions a prune keeps: the union of the last `versions` versions
/// and every version a reader of a time since `since_us` needs (the one in
/// force then, and all after). Neither: everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub versions: Option<u64>,
    pub since_us: Option<u64>,
}

impl Retention {
    /// The policy of config.toml (`keep_versions`, `keep_since`), at `now_us`.
    pub fn from_config(db: &Database, now_us: u64) -> Result<Retention> {
        let cfg = db.config();
        let since_us = match cfg.keep_since.trim() {
            "" => None,
            d => Some(
                keep_since_us(d, now_us).map_err(|detail| StorageError::Config {
                    path: db.root().join(super::database::CONFIG),
                    detail,
                })?,
            ),
        };
        Ok(Retention {
            versions: (cfg.keep_versions > 0).then_some(cfg.keep_versions),
            since_us,
        })
    }

    pub fn keeps_everything(&self) -> bool {
        self.versions.is_none() && self.since_us.is_none()
    }
}

/// `keep_since` as config.toml writes it: a duration (`30d`, `12h`,
/// `90m`, `2w`), or anything `parse_time` reads (an absolute time).
pub fn keep_since_us(text: &str, now_us: u64) -> std::result::Result<u64, String> {
    let t = text.trim();
    // A number and a unit, nothing else (a version name also starts with
    // digits and ends with letters).
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let unit = &t[digits..];
    let relative = digits > 0 && !unit.is_empty() && unit.chars().all(|c| c.is_ascii_alphabetic());
    if relative {
        parse_time(&format!("-{t}"), now_us)
    } else {
        parse_time(t, now_us)
    }
    .map_err(|e| format!("keep_since: {e}"))
}

/// A version something still needs, whatever the policy: (sequence
/// number, why), by table.
pub type Pins = BTreeMap<String, Vec<(u64, String)>>;

/// One table's prune: the report, and the pin that held the floor lower
/// than the policy asked (None: the policy decided).
#[derive(Debug, Clone)]
pub struct TablePruned {
    pub report: PruneReport,
    pub held_by: Option<String>,
}

/// `state/<prefix><pid>`: what a running mount needs (`fs/core/pins.rs`).
pub const MOUNT_PINS_PREFIX: &str = "mount-pins-";

impl Database {
    /// The versions running mounts need (what their processes read, files
    /// open for writing, their frames), from the pins files of mounts
    /// whose process is alive.
    pub fn mount_pins(&self) -> Result<Pins> {
        let dir = self.root().join("state");
        let names = match self.io().list(&dir) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pins::new()),
            Err(e) => return Err(StorageError::io("list", &dir, e)),
        };
        let mut pins = Pins::new();
        for n in names {
            let Some(pid) = n
                .strip_prefix(MOUNT_PINS_PREFIX)
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if !super::kept::alive(pid) {
                continue;
            }
            let Some(bytes) = self.read_state(&n)? else {
                continue;
            };
            for line in String::from_utf8_lossy(&bytes).lines() {
                let mut f = line.splitn(4, '|');
                let (Some(t), Some(Ok(seq)), Some(Ok(reader)), Some(why)) = (
                    f.next(),
                    f.next().map(str::parse::<u64>),
                    f.next().map(str::parse::<i32>),
                    f.next(),
                ) else {
                    continue;
                };
                // A process that read and has exited since will not save.
                if reader != 0 && !super::kept::alive(reader) {
                    continue;
                }
                pins.entry(t.to_string())
                    .or_default()
                    .push((seq, format!("{why} (mount pid {pid})")));
            }
        }
        Ok(pins)
    }

    /// The versions this database's own records need: the base of every
    /// unresolved conflict (its resolution reads it).
    pub fn conflict_pins(&self) -> Result<Pins> {
        let mut pins = Pins::new();
        for id in self.conflict_ids()? {
            let c = match self.conflict_info(&id) {
                Ok(c) => c,
                Err(StorageError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            pins.entry(c.table.clone())
                .or_default()
                .push((c.base, format!("conflict {id}")));
        }
        Ok(pins)
    }

    /// Prunes `tables` (all when empty) to `policy`, keeping every version
    /// at or after a pin, and always the head; `exact`: see `Table::prune`.
    /// With `dry_run` nothing changes.
    pub fn prune(
        &self,
        tables: &[String],
        policy: Retention,
        pins: &Pins,
        exact: bool,
        dry_run: bool,
    ) -> Result<Vec<TablePruned>> {
        let names = match tables {
            [] => self.table_names()?,
            t => t.to_vec(),
        };
        let mut out = Vec::new();
        for name in names {
            let t = self.table(&name)?;
            let n = t.head_seq()?;
            if n == 0 {
                continue;
            }
            let by_count = policy.versions.map(|k| (n + 1).saturating_sub(k.max(1)));
            let by_time = match policy.since_us {
                Some(cut) => Some(t.seq_at(cut)?),
                None => None,
            };
            // The union of what each rule keeps: the lower floor.
            let wanted = match (by_count, by_time) {
                (None, None) => 1,
                (a, b) => a.into_iter().chain(b).min().unwrap_or(1),
            }
            .clamp(1, n);
            // A dropped table keeps what `table:restore` brings back: its
            // last content before the drop.
            let restorable = if t.is_dropped()? {
                t.versions()?
                    .iter()
                    .rev()
                    .find(|v| v.size > 0)
                    .map(|v| (v.seq, "table:restore (the table is dropped)".to_string()))
            } else {
                None
            };
            let pin = pins
                .get(&name)
                .into_iter()
                .flatten()
                .chain(restorable.as_ref())
                .filter(|(seq, _)| *seq >= 1 && *seq < wanted)
                .min_by_key(|(seq, _)| *seq);
            let floor = pin.map_or(wanted, |(seq, _)| *seq);
            let report = t.prune(floor, exact, dry_run)?;
            let held_by = match pin {
                Some((seq, why)) => Some(format!("{why} needs version {seq}")),
                None if report.held_for_space => Some(format!(
                    "a keyframe at version {floor} would take more space than the prune frees (--exact prunes anyway)"
                )),
                None => None,
            };
            out.push(TablePruned { report, held_by });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::keep_since_us;

    #[test]
    fn keep_since_reads_durations_times_and_version_names() {
        let now = 10_000_000_000_000;
        assert_eq!(keep_since_us("30d", now), Ok(now - 30 * 86_400_000_000));
        assert_eq!(keep_since_us("12h", now), Ok(now - 12 * 3_600_000_000));
        assert_eq!(keep_since_us("1795497330", now), Ok(1_795_497_330_000_000));
        assert_eq!(
            keep_since_us("20261124T051530.000000Z-abcdef12", now),
            keep_since_us("2026-11-24T05:15:30Z", now)
        );
        assert!(keep_since_us("soon", now).is_err());
        assert!(keep_since_us("3 days", now).is_err());
    }
}
