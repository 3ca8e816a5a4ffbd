//! What one site has replayed of one table: `state/sync/<table>.applied`
//! (local, never synced; docs/SYNC.md, "Replay state").
//!
//! ```text
//! reedbase-applied 1
//! seq 42                        the local version that is the replay of all entries
//! <record id>|<node>|<seq|->    every record replayed, in replay order, with the local
//!                               version equal to the replay up to it (a checkpoint), if any
//! ```
//!
//! It is a cache of what the records and the local log say: when it is
//! missing or does not parse, the next round replays every record held.

use crate::storage::names::parse_time;

use super::replay::Lost;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub node: String,
    /// The local version whose content is the replay up to this entry.
    pub checkpoint: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The local version that is the replay of every entry.
    pub seq: u64,
    pub entries: Vec<Entry>,
}

const MAGIC: &str = "reedbase-applied 1";

/// The commit time in a record id (`<timestamp>-<node>`), microseconds.
pub fn ts_of(id: &str) -> u64 {
    // Only a well-formed name is read (anything else could be a peer's).
    let id = id.strip_suffix(".toml").unwrap_or(id);
    if !super::record::valid_id(id) {
        return 0;
    }
    parse_time(id, 0).unwrap_or(0)
}

impl Applied {
    pub fn parse(bytes: &[u8]) -> Option<Applied> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let seq = lines.next()?.strip_prefix("seq ")?.parse().ok()?;
        let mut entries = Vec::new();
        for l in lines {
            let mut f = l.split('|');
            let (id, node, ck) = (f.next()?, f.next()?, f.next()?);
            if !super::record::valid_id(id) {
                return None;
            }
            entries.push(Entry {
                id: id.to_string(),
                node: node.to_string(),
                checkpoint: if ck == "-" {
                    None
                } else {
                    Some(ck.parse().ok()?)
                },
            });
        }
        // Replay order is name order; a file out of order is not trusted.
        if entries.windows(2).any(|w| w[0].id >= w[1].id) {
            return None;
        }
        Some(Applied { seq, entries })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{MAGIC}\nseq {}\n", self.seq);
        for e in &self.entries {
            let ck = e.checkpoint.map_or("-".to_string(), |c| c.to_string());
            out.push_str(&format!("{}|{}|{ck}\n", e.id, e.node));
        }
        out.into_bytes()
    }

    /// The newest commit time replayed (0: none).
    pub fn newest_ts(&self) -> u64 {
        self.entries.last().map_or(0, |e| ts_of(&e.id))
    }
}

/// A lost value as stored in `state/sync/<table>.lost`: which record
/// overwrote it, and the cells (docs/SYNC.md, "Conflicts").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAt {
    pub record: String,
    pub lost: Lost,
}

/// Values are written as `=<value>`, or empty for none (a row that was not
/// there), so an empty value and no value stay apart.
fn opt(v: &Option<String>) -> String {
    v.as_ref().map_or(String::new(), |v| format!("={v}"))
}

fn unopt(v: &str) -> Option<String> {
    v.strip_prefix('=').map(str::to_string)
}

pub fn encode_lost(items: &[LostAt]) -> Vec<u8> {
    let mut out = crate::storage::csv::render_record(
        &["n", "record", "key", "column", "base", "lost", "kept"],
        b'|',
    );
    // `n` numbers the lines: the first column of a table is a unique key.
    for (n, i) in items.iter().enumerate() {
        let l = &i.lost;
        out.extend(crate::storage::csv::render_record(
            &[
                (n + 1).to_string(),
                i.record.clone(),
                l.key.clone(),
                l.column.clone(),
                opt(&l.base),
                opt(&l.lost),
                opt(&l.kept),
            ],
            b'|',
        ));
    }
    out
}

pub fn parse_lost(bytes: &[u8]) -> Vec<LostAt> {
    let Ok(index) = crate::storage::csv::TableIndex::parse(bytes, b'|') else {
        return Vec::new();
    };
    index
        .starts
        .iter()
        .filter_map(|&s| {
            let f = crate::storage::csv::record_fields(bytes, s, b'|');
            let [_, record, key, column, base, lost, kept] = <[String; 7]>::try_from(f).ok()?;
            Some(LostAt {
                record,
                lost: Lost {
                    key,
                    column,
                    base: unopt(&base),
                    lost: unopt(&lost),
                    kept: unopt(&kept),
                },
            })
        })
        .collect()
}
