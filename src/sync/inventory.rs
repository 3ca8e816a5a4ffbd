//! What a location holds, and what to copy (docs/SYNC.md, "A round").
//!
//! A location's travelling files are in directories, named relative to the
//! database's root, whose file names only ever grow: `sync/records/<node>/<table>`,
//! `sync/locations`, `sync/resolved`, and the revisions of saved queries (`queries/<name>`)
//! and schemas (`tables/<table>/schema`). A
//! summary gives each directory's file count, an order-independent digest
//! of the names, and the newest name: two locations whose summaries agree
//! hold the same files and copy nothing. Where they differ, the side that
//! is behind usually holds a prefix of the other's names (records of one
//! node are made in name order); the round then names exactly the files
//! after that prefix to rsync (`--files-from`), so what rsync lists grows
//! with what is new, not with the history. Anything else copies the
//! directory whole.

use std::collections::BTreeMap;

use sha2::Digest;

use crate::storage::Database;

use super::error::Result;

/// One directory: files, digest of their names, the newest name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSummary {
    pub count: usize,
    pub digest: u64,
    pub newest: String,
}

/// Directory (relative to the root) -> summary.
pub type Summary = BTreeMap<String, DirSummary>;

/// What a peer said: its summary, and for each directory we named with our
/// newest file, (count, digest) of its names up to it and its names after.
#[derive(Debug, Clone, Default)]
pub struct PeerView {
    /// The database id the peer holds (`I <id>`).
    pub id: Option<String>,
    pub summary: Summary,
    pub upto: BTreeMap<String, (usize, u64)>,
    pub after: BTreeMap<String, Vec<String>>,
}

fn digest<'a>(names: impl Iterator<Item = &'a String>) -> u64 {
    names.fold(0u64, |acc, n| {
        let h = sha2::Sha256::digest(n.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        acc.wrapping_add(u64::from_le_bytes(first))
    })
}

/// Every travelling file of a location, by directory, names sorted.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub dirs: BTreeMap<String, Vec<String>>,
}

impl Inventory {
    pub fn of(db: &Database) -> Result<Inventory> {
        let mut dirs = BTreeMap::new();
        for node in db.record_nodes()? {
            for table in db.record_tables(&node)? {
                let names = db.record_names(&node, &table)?;
                if !names.is_empty() {
                    dirs.insert(format!("sync/records/{node}/{table}"), names);
                }
            }
        }
        let names = db.locations_names()?;
        if !names.is_empty() {
            dirs.insert("sync/locations".to_string(), names);
        }
        let names = db.resolved_conflicts()?;
        if !names.is_empty() {
            dirs.insert("sync/resolved".to_string(), names);
        }
        dirs.extend(db.revision_dirs()?);
        Ok(Inventory { dirs })
    }

    pub fn summary(&self) -> Summary {
        self.dirs
            .iter()
            .map(|(k, names)| {
                (
                    k.clone(),
                    DirSummary {
                        count: names.len(),
                        digest: digest(names.iter()),
                        newest: names.last().cloned().unwrap_or_default(),
                    },
                )
            })
            .collect()
    }

    /// (count, digest) of the names in `dir` up to `name` included.
    pub fn upto(&self, dir: &str, name: &str) -> (usize, u64) {
        let Some(names) = self.dirs.get(dir) else {
            return (0, 0);
        };
        let n = names.partition_point(|x| x.as_str() <= name);
        (n, digest(names[..n].iter()))
    }

    /// The names in `dir` after `name`.
    pub fn after(&self, dir: &str, name: &str) -> Vec<String> {
        let Some(names) = self.dirs.get(dir) else {
            return Vec::new();
        };
        let n = names.partition_point(|x| x.as_str() <= name);
        names[n..].to_vec()
    }

    /// What `sync:integrate --summary --after <dir>=<name>...` prints: the
    /// summary, then per asked directory its `upto` and `after`.
    pub fn answer(&self, asked: &[(String, String)]) -> String {
        let mut out = String::new();
        for (k, s) in self.summary() {
            out.push_str(&format!(
                "S {k} {} {:016x} {}\n",
                s.count, s.digest, s.newest
            ));
        }
        for (dir, name) in asked {
            if !self.dirs.contains_key(dir) {
                continue;
            }
            let (n, d) = self.upto(dir, name);
            out.push_str(&format!("P {dir} {n} {d:016x}\n"));
            for a in self.after(dir, name) {
                out.push_str(&format!("N {dir} {a}\n"));
            }
        }
        out
    }

    /// The `--after` arguments asking a peer about our directories.
    pub fn questions(&self) -> Vec<(String, String)> {
        self.dirs
            .iter()
            .filter_map(|(k, names)| Some((k.clone(), names.last()?.clone())))
            .collect()
    }
}

/// Whether `dir` is a travelling directory (see the module doc), each part
/// one valid name: what a peer names is copied only if it is, so a peer
/// can never make a round write outside those directories.
fn travelling(dir: &str) -> bool {
    let parts: Vec<&str> = dir.split('/').collect();
    let ok = |p: &str| crate::storage::valid_component(p) && p != "..";
    match parts.as_slice() {
        ["sync", "records", node, table] => ok(node) && ok(table),
        ["sync", "locations"] | ["sync", "resolved"] => true,
        ["queries", name] => ok(name),
        ["tables", table, "schema"] => ok(table),
        _ => false,
    }
}

/// Parses an answer (other lines, and directories or names that are not
/// travelling ones, are ignored).
pub fn parse_answer(text: &str) -> PeerView {
    let mut v = PeerView::default();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("I ") {
            v.id = Some(id.to_string());
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        if f.get(1).is_none_or(|d| !travelling(d))
            || (f.first() == Some(&"N")
                && f.get(2).is_none_or(|n| !crate::storage::valid_component(n)))
        {
            continue;
        }
        match f.as_slice() {
            ["S", k, n, d, newest] => {
                if let (Ok(count), Ok(digest)) = (n.parse(), u64::from_str_radix(d, 16)) {
                    v.summary.insert(
                        k.to_string(),
                        DirSummary {
                            count,
                            digest,
                            newest: newest.to_string(),
                        },
                    );
                }
            }
            ["P", k, n, d] => {
                if let (Ok(count), Ok(digest)) = (n.parse(), u64::from_str_radix(d, 16)) {
                    v.upto.insert(k.to_string(), (count, digest));
                }
            }
            ["N", k, name] => v
                .after
                .entry(k.to_string())
                .or_default()
                .push(name.to_string()),
            _ => {}
        }
    }
    v
}

/// What to pull (paths relative to `sync/`: a file, or a directory to copy
/// whole), given the peer's view and ours.
pub fn to_pull(theirs: &PeerView, ours: &Inventory) -> Vec<String> {
    let mine = ours.summary();
    let mut out = Vec::new();
    for (dir, ts) in &theirs.summary {
        let Some(os) = mine.get(dir) else {
            out.push(dir.clone());
            continue;
        };
        if (os.count, os.digest) == (ts.count, ts.digest)
            || ours.upto(dir, &ts.newest) == (ts.count, ts.digest)
        {
            // The same files, or theirs are a prefix of ours: nothing to take.
            continue;
        }
        if theirs.upto.get(dir) == Some(&(os.count, os.digest)) {
            // We hold exactly their names up to our newest: take the rest.
            let after = theirs.after.get(dir).map(Vec::as_slice).unwrap_or(&[]);
            out.extend(after.iter().map(|n| format!("{dir}/{n}")));
        } else {
            out.push(dir.clone());
        }
    }
    out
}

/// What to push, given the peer's view and ours.
pub fn to_push(theirs: &PeerView, ours: &Inventory) -> Vec<String> {
    let mut out = Vec::new();
    for (dir, os) in ours.summary() {
        let Some(ts) = theirs.summary.get(&dir) else {
            out.push(dir);
            continue;
        };
        let ours_are_their_prefix = theirs.upto.get(&dir) == Some(&(os.count, os.digest));
        if (os.count, os.digest) == (ts.count, ts.digest) || ours_are_their_prefix {
            // The same files, or ours are a prefix of theirs: nothing to give.
            continue;
        }
        if ours.upto(&dir, &ts.newest) == (ts.count, ts.digest) {
            // They hold exactly our names up to their newest: give the rest.
            out.extend(
                ours.after(&dir, &ts.newest)
                    .into_iter()
                    .map(|n| format!("{dir}/{n}")),
            );
        } else {
            out.push(dir);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(dirs: &[(&str, &[&str])]) -> Inventory {
        Inventory {
            dirs: dirs
                .iter()
                .map(|(k, n)| (k.to_string(), n.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    fn view_of(peer: &Inventory, asker: &Inventory) -> PeerView {
        parse_answer(&peer.answer(&asker.questions()))
    }

    #[test]
    fn only_what_one_side_lacks_is_named_and_gaps_copy_the_directory() {
        let a = inv(&[
            ("sync/records/n1/t", &["1", "2", "3", "4"]),
            ("sync/locations", &["l1"]),
        ]);
        let b = inv(&[
            ("sync/records/n1/t", &["1", "2"]),
            ("sync/locations", &["l1"]),
        ]);
        // b pulls from a: exactly 3 and 4.
        assert_eq!(
            to_pull(&view_of(&a, &b), &b),
            ["sync/records/n1/t/3", "sync/records/n1/t/4"]
        );
        // a pushes to b: the same.
        assert_eq!(
            to_push(&view_of(&b, &a), &a),
            ["sync/records/n1/t/3", "sync/records/n1/t/4"]
        );
        // Nothing the other way, nothing when equal.
        assert!(to_pull(&view_of(&b, &a), &a).is_empty());
        assert!(to_push(&view_of(&a, &a), &a).is_empty());
        // A gap (b holds 1 and 3): the directory goes whole.
        let gap = inv(&[("sync/records/n1/t", &["1", "3"])]);
        assert_eq!(
            to_pull(&view_of(&a, &gap), &gap),
            ["sync/locations", "sync/records/n1/t"]
        );
        assert_eq!(
            to_push(&view_of(&gap, &a), &a),
            ["sync/locations", "sync/records/n1/t"]
        );
    }
}
