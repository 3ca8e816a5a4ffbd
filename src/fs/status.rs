//! `<db>/@status`: what happened recently, for people.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::storage::VersionInfo;
use crate::storage::names::{format_ts_human, now_us};

const KEEP: usize = 50;

#[derive(Debug, Clone)]
pub enum Event {
    Commit {
        table: String,
        version: VersionInfo,
    },
    Rejected {
        table: String,
        reason: String,
        kept: Option<String>,
    },
    /// A saved file that is not a table (a saved query) got a new version.
    Saved {
        file: String,
        version: String,
    },
    /// Under last-writer-wins, a cell a merge overwrote.
    Overwritten {
        table: String,
        conflict: crate::merge::Conflict,
    },
}

#[derive(Debug, Default)]
pub struct Status {
    events: Mutex<VecDeque<(u64, Event)>>,
}

impl Status {
    pub fn push(&self, e: Event) {
        let mut ev = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if ev.len() == KEEP {
            ev.pop_front();
        }
        ev.push_back((now_us(), e));
    }

    pub fn render(&self, db: &str) -> String {
        let ev = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut commits = String::new();
        let mut errors = String::new();
        for (ts, e) in ev.iter().rev() {
            let when = format_ts_human(*ts);
            match e {
                Event::Commit { table, version: v } => commits.push_str(&format!(
                    "  {when}  {table}  version {}  {}  by {}  {} rows\n",
                    v.seq, v.action, v.user, v.rows
                )),
                Event::Saved { file, version } => {
                    commits.push_str(&format!("  {when}  {file}  saved {version}\n"))
                }
                Event::Overwritten { table, conflict: c } => errors.push_str(&format!(
                    "  {when}  {table}  merged over a concurrent change: key {:?} column {:?}: head had {:?}, this write {:?}\n",
                    c.key, c.column, c.theirs, c.ours
                )),
                Event::Rejected {
                    table,
                    reason,
                    kept,
                } => {
                    errors.push_str(&format!("  {when}  {table}  {reason}\n"));
                    if let Some(k) = kept {
                        let at = if k.contains('/') {
                            k.clone()
                        } else {
                            format!("@rejected/{k}")
                        };
                        errors.push_str(&format!("      your bytes: {at}\n"));
                    }
                }
            }
        }
        let none = "  (none)\n";
        format!(
            "database {db}\n\nrecent commits (newest first):\n{}\nrejected writes (newest first):\n{}",
            if commits.is_empty() { none } else { &commits },
            if errors.is_empty() { none } else { &errors }
        )
    }
}
