//! `rdb verify`: rebuilds every version of every table from the stored
//! deltas with a standard bspatch (qbsdiff), and checks every CRC, hash,
//! keyframe and the head. Read-only: it repairs nothing, and so is never a
//! second writer of a file a running mount owns.
//!
//! Problems are damage: history that cannot be rebuilt or does not match
//! its log. Notes are not: a `current.csv` that differs from a head that the
//! deltas rebuild is a stale cache (a process killed between its commit
//! point and its head write, or a writer still at work), which the next open
//! that takes the table's lock rewrites, and which no read ever depends on.

use std::path::Path;

use super::csv::TableIndex;
use super::database::Database;
use super::delta;
use super::error::Result;
use super::frame;
use super::io::RealIo;
use super::log::{self, content_hash};
use super::table::{CURRENT, LOG};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub table: String,
    pub what: String,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub tables: usize,
    pub versions: usize,
    /// Damage: what cannot be rebuilt or does not match the log.
    pub problems: Vec<Problem>,
    /// Not damage: caches that differ from the truth and are rebuilt from it
    /// (a stale `current.csv`).
    pub notes: Vec<Problem>,
}

/// What `verify_table` found in one table.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Database {
    pub fn verify(&self) -> Result<VerifyReport> {
        // Our own pending head writes are not damage.
        self.flush();
        let mut report = VerifyReport::default();
        for name in self.table_names()? {
            report.tables += 1;
            let dir = self.root().join("tables").join(&name);
            let found = verify_table(
                self.root(),
                &dir,
                self.config().delimiter_byte(),
                &mut report.versions,
            );
            let named = |what| Problem {
                table: name.clone(),
                what,
            };
            report
                .problems
                .extend(found.problems.into_iter().map(named));
            report.notes.extend(found.notes.into_iter().map(named));
        }
        Ok(report)
    }
}

fn verify_table(root: &Path, dir: &Path, delim: u8, versions: &mut usize) -> Findings {
    let mut problems = Vec::new();
    let log_bytes = match std::fs::read(dir.join(LOG)) {
        Ok(b) => b,
        Err(e) => {
            return Findings {
                problems: vec![format!("{LOG}: {e}")],
                notes: Vec::new(),
            };
        }
    };
    let mut parsed = log::parse(&log_bytes, 0);
    // The last line of a frame without a commit record is not part of the
    // table (readers skip it; the next locked open decides its frame).
    if let Some(id) = parsed.entries.last().and_then(|e| e.frame.clone())
        && !matches!(
            frame::read_decision(&RealIo, root, &id),
            Ok(Some(frame::Decision::Commit))
        )
    {
        parsed.entries.pop();
    }
    if let Some(line) = parsed.damaged_line {
        problems.push(format!(
            "{LOG} line {line}: CRC mismatch or unreadable line"
        ));
    } else if parsed.valid_len < log_bytes.len() {
        problems.push(format!(
            "{LOG}: torn last line ({} bytes; removed on next open)",
            log_bytes.len() - parsed.valid_len
        ));
    }
    // `content` is the previous version; None once the chain is broken.
    let mut content: Option<Vec<u8>> = Some(Vec::new());
    // Which versions the forward walk rebuilt (from the empty start or a
    // keyframe); a broken one may still be rebuilt backwards from the head.
    let mut forward = Vec::with_capacity(parsed.entries.len());
    for (i, e) in parsed.entries.iter().enumerate() {
        let seq = i + 1;
        *versions += 1;
        let delta_path = dir.join(e.delta_file());
        let rebuilt = match (&content, std::fs::read(&delta_path)) {
            (_, Err(err)) => Err(format!("version {seq}: delta {}: {err}", e.delta_file())),
            (None, Ok(_)) => Err(String::new()),
            (Some(prev), Ok(stored)) => check_delta(prev, &stored)
                .map_err(|err| format!("version {seq}: delta {}: {err}", e.delta_file())),
        };
        let mut next = match rebuilt {
            Ok(b) if content_hash(&b) == e.hash && b.len() as u64 == e.size => Some(b),
            Ok(_) => {
                problems.push(format!(
                    "version {seq}: rebuilt bytes do not match the logged hash"
                ));
                None
            }
            Err(msg) => {
                if !msg.is_empty() {
                    problems.push(msg);
                }
                None
            }
        };
        if e.keyframe {
            let kf = dir.join(e.keyframe_file());
            match std::fs::read(&kf)
                .map_err(|x| x.to_string())
                .and_then(|s| delta::unpack(&s).map_err(|x| x.to_string()))
            {
                Ok(b) if content_hash(&b) == e.hash => {
                    if next.is_none() {
                        next = Some(b); // re-anchor the chain
                    }
                }
                Ok(_) => problems.push(format!(
                    "version {seq}: keyframe does not match the logged hash"
                )),
                Err(x) => problems.push(format!(
                    "version {seq}: keyframe {}: {x}",
                    e.keyframe_file()
                )),
            }
        }
        if let Some(b) = &next
            && !b.is_empty()
            && let Err(x) = TableIndex::parse(b, delim)
        {
            problems.push(format!(
                "version {seq}: stored content is not valid CSV: {x}"
            ));
        }
        forward.push(next.is_some());
        content = next;
    }
    if forward.contains(&false) {
        let head = content.clone().or_else(|| {
            let last = parsed.entries.last()?;
            std::fs::read(dir.join(CURRENT))
                .ok()
                .filter(|b| content_hash(b) == last.hash && b.len() as u64 == last.size)
        });
        let backward = rebuilt_backwards(dir, &parsed.entries, head);
        let lost: Vec<usize> = (0..forward.len())
            .filter(|&i| !forward[i] && !backward[i])
            .collect();
        for (first, last) in ranges(&lost) {
            problems.push(if first == last {
                format!(
                    "version {}: cannot be rebuilt (from the start, a keyframe or the head)",
                    first + 1
                )
            } else {
                format!(
                    "versions {}-{}: cannot be rebuilt (from the start, a keyframe or the head)",
                    first + 1,
                    last + 1
                )
            });
        }
    }
    let mut notes = Vec::new();
    if let Some(last) = parsed.entries.last() {
        // `content` now holds the head as the deltas rebuild it (None when
        // the chain broke, which is reported above).
        let stale = match std::fs::read(dir.join(CURRENT)) {
            Ok(b) if content_hash(&b) == last.hash && b.len() as u64 == last.size => None,
            Ok(_) => Some(format!("{CURRENT} differs from the head version")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (last.size != 0).then(|| format!("{CURRENT} is missing"))
            }
            // Open reads the file too: an unreadable one stops commands.
            Err(x) => {
                problems.push(format!("{CURRENT}: {x}"));
                None
            }
        };
        match (stale, &content) {
            (Some(what), Some(_)) => notes.push(format!(
                "{what}: a stale cache, rebuilt from the deltas on the next open (nothing is lost)"
            )),
            (Some(what), None) => problems.push(format!(
                "{what}, and the head cannot be rebuilt from the deltas"
            )),
            (None, _) => {}
        }
    }
    Findings { problems, notes }
}

/// Which versions can be rebuilt walking backwards: from the head (`head`,
/// when known) or a keyframe, undoing each delta with the bytes it removed.
/// A missing or damaged delta of version n breaks the walk below n only.
fn rebuilt_backwards(dir: &Path, entries: &[log::LogEntry], head: Option<Vec<u8>>) -> Vec<bool> {
    let mut reached = vec![false; entries.len()];
    // `cur`: the bytes of version i + 1 (1-based), when rebuilt.
    let mut cur = head;
    for (i, e) in entries.iter().enumerate().rev() {
        if cur.is_none() && e.keyframe {
            cur = std::fs::read(dir.join(e.keyframe_file()))
                .ok()
                .and_then(|s| delta::unpack(&s).ok())
                .filter(|b| content_hash(b) == e.hash);
        }
        let Some(bytes) = cur.take() else {
            continue;
        };
        reached[i] = true;
        let Some(prev_entry) = i.checked_sub(1).and_then(|p| entries.get(p)) else {
            continue;
        };
        cur = std::fs::read(dir.join(e.delta_file()))
            .ok()
            .and_then(|s| delta::unpack(&s).ok())
            .and_then(|raw| delta::Patch::decode(&raw).ok().flatten())
            .and_then(|p| p.unapply(&bytes).ok())
            .filter(|b| content_hash(b) == prev_entry.hash && b.len() as u64 == prev_entry.size);
    }
    reached
}

/// Runs of consecutive indices in `sorted`, as (first, last).
fn ranges(sorted: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => out.push((i, i)),
        }
    }
    out
}

/// Applies a stored delta with a standard bspatch, and checks that our
/// reading of it (whole extra block, backwards too) agrees.
fn check_delta(prev: &[u8], stored: &[u8]) -> Result<Vec<u8>, String> {
    let raw = delta::unpack(stored).map_err(|e| e.to_string())?;
    let next = delta::apply_standard(prev, &raw).map_err(|e| e.to_string())?;
    match delta::Patch::decode(&raw) {
        Ok(Some(p)) => {
            if p.apply(prev).map_err(|e| e.to_string())? != next {
                return Err("forward application differs from bspatch".into());
            }
            if p.unapply(&next).map_err(|e| e.to_string())? != prev {
                return Err("backward application does not give the previous version".into());
            }
        }
        Ok(None) => return Err("not a ReedBase delta (foreign bsdiff layout)".into()),
        Err(e) => return Err(e.to_string()),
    }
    Ok(next)
}
