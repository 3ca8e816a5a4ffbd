//! The change feed: every change committed to a database after a point,
//! in commit order, as text lines (docs/CLI.md, `rdb changes`; docs/MOUNT.md,
//! `@changes`). A `Feed` is a reader's cursor (per table, the last version
//! it has); `poll` returns what was committed since and moves it. The row
//! log (`table/row_log.rs`) says what each version changed.

use std::collections::BTreeMap;

use super::csv::render_record;
use super::database::Database;
use super::error::{Result, StorageError};
use super::names;

/// How a feed's lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// A line per changed cell, comma-separated, after [`CSV_HEADER`].
    Csv,
    /// A JSON object per changed row, one per line.
    Json,
}

/// The first line of a CSV feed.
pub const CSV_HEADER: &str = "version,time,user,action,frame,table,key,change,column,old,new\n";

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A reader's place in the feed of one database.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Only these tables (empty: every table, those made later included).
    tables: Vec<String>,
    /// Per table, the last version read, and its header once known (the
    /// column names of the changes that follow, until a header change).
    cursor: BTreeMap<String, (u64, Option<Header>)>,
    /// The last poll stopped at its bound with more to read.
    behind: bool,
}

/// Versions of one table a poll reads at most: a reader far behind (a
/// `--since` of last month) catches up in steps of bounded memory. (One
/// version is never split: a bulk import's rows come in one poll.)
const POLL_VERSIONS: u64 = 256;

/// A version's column names.
type Header = std::sync::Arc<Vec<String>>;

impl Feed {
    /// A feed of what is committed from now on.
    pub fn from_now(db: &Database, tables: &[String]) -> Result<Feed> {
        Feed::after(db, tables, |t| t.head_seq())
    }

    /// A feed of what was committed after version `name` (a version name:
    /// what a feed line carries), or from time `ts_us` when `name` is None.
    pub fn since(db: &Database, tables: &[String], ts_us: u64, name: Option<&str>) -> Result<Feed> {
        Feed::after(db, tables, |t| {
            Ok(t.versions()?
                .iter()
                .take_while(|v| match name {
                    Some(n) => (v.ts_us, v.name.as_str()) <= (ts_us, n),
                    None => v.ts_us < ts_us,
                })
                .count() as u64)
        })
    }

    fn after(
        db: &Database,
        tables: &[String],
        seen: impl Fn(&super::Table) -> Result<u64>,
    ) -> Result<Feed> {
        let mut cursor = BTreeMap::new();
        let names = match tables {
            [] => db.table_names()?,
            some => some.to_vec(),
        };
        for t in names {
            // A table listed but not readable yet (its first version is a
            // frame's, undecided) is followed from its first version.
            let seen = match db.table(&t) {
                Ok(table) => seen(&table)?,
                Err(StorageError::NotFound { .. }) => 0,
                Err(e) => return Err(e),
            };
            cursor.insert(t, (seen, None));
        }
        Ok(Feed {
            tables: tables.to_vec(),
            cursor,
            behind: false,
        })
    }

    /// Whether the last poll left versions to read (poll again at once).
    pub fn behind(&self) -> bool {
        self.behind
    }

    /// Every change committed after the cursor, as lines in `format`, in
    /// commit order (time, version name, table: a frame's changes
    /// together); moves the cursor past them. Empty when nothing is new.
    pub fn poll(&mut self, db: &Database, format: FeedFormat) -> Result<Vec<u8>> {
        if self.tables.is_empty() {
            // Tables made since are read from their first version.
            for t in db.table_names()? {
                self.cursor.entry(t).or_insert((0, None));
            }
        }
        // Each table up to POLL_VERSIONS versions past its cursor. When a
        // table stops short of its head, every table stops at that
        // version's time, so commit order across tables (and a frame's
        // changes together) holds from one poll to the next.
        let mut read = Vec::new();
        let mut bound: Option<u64> = None;
        for (t, (seen, header)) in self.cursor.iter_mut() {
            let table = match db.table(t) {
                Ok(table) => table,
                Err(StorageError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let head = table.head_seq()?;
            if head <= *seen {
                continue;
            }
            let upto = head.min(seen.saturating_add(POLL_VERSIONS));
            let (changes, last_header) = table.changes_after(*seen, upto, header.take())?;
            if upto < head {
                let ts = table.version(upto)?.ts_us;
                bound = Some(bound.map_or(ts, |b| b.min(ts)));
            }
            read.push((t.clone(), table, upto, changes, last_header));
        }
        self.behind = bound.is_some();
        let mut found = Vec::new();
        for (t, table, upto, changes, last_header) in read {
            let Some((seen, header)) = self.cursor.get_mut(&t) else {
                continue;
            };
            // The versions read: up to `upto` (a version without a changed
            // row moves the cursor too), or to the bound's time.
            let to = match bound {
                Some(ts) => upto.min(table.seq_at(ts)?).max(*seen),
                None => upto,
            };
            // The header is known for the last version read only.
            *header = (to == upto).then_some(last_header);
            *seen = to;
            found.extend(
                changes
                    .into_iter()
                    .filter(|(v, _)| v.seq <= to)
                    .map(|(v, c)| (t.clone(), v, c)),
            );
        }
        found.sort_by(|a, b| (a.1.ts_us, &a.1.name, &a.0).cmp(&(b.1.ts_us, &b.1.name, &b.0)));
        let mut out = Vec::new();
        for (table, v, c) in found {
            let time = names::format_ts(v.ts_us);
            let frame = v.frame.clone().unwrap_or_default();
            match format {
                FeedFormat::Csv => {
                    for (column, old, new) in c.cells() {
                        let fields = [
                            v.name.as_str(),
                            &time,
                            &v.user,
                            &v.action,
                            &frame,
                            &table,
                            &c.key,
                            c.kind.name(),
                            &column,
                            old.as_deref().unwrap_or_default(),
                            new.as_deref().unwrap_or_default(),
                        ];
                        out.extend_from_slice(&render_record(&fields, b','));
                    }
                }
                FeedFormat::Json => {
                    let j =
                        |v: &Option<String>| v.as_deref().map_or("null".to_string(), json_string);
                    let cells: Vec<String> = c
                        .cells()
                        .iter()
                        .map(|(col, old, new)| {
                            format!(
                                "{}: {{\"old\": {}, \"new\": {}}}",
                                json_string(col),
                                j(old),
                                j(new)
                            )
                        })
                        .collect();
                    let line = format!(
                        "{{\"version\": {}, \"time\": {}, \"user\": {}, \"action\": {}, \"frame\": {}, \"table\": {}, \"key\": {}, \"change\": {}, \"cells\": {{{}}}}}\n",
                        json_string(&v.name),
                        json_string(&time),
                        json_string(&v.user),
                        json_string(&v.action),
                        j(&v.frame),
                        json_string(&table),
                        json_string(&c.key),
                        json_string(c.kind.name()),
                        cells.join(", ")
                    );
                    out.extend_from_slice(line.as_bytes());
                }
            }
        }
        Ok(out)
    }
}
