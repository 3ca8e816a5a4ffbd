//! Commit records: what travels between locations (docs/SYNC.md).
//!
//! A record is one immutable file per table and commit, named by the commit's
//! version name (`<timestamp>-<node>`, unique across sites and sortable in the
//! replay order). It holds everything needed to replay the commit anywhere:
//! the database id, the table, who and when, the frame it belongs to, the
//! header before and after, the row-level change set with raw bytes, the hash
//! of the version it produced at its origin, and a SHA-256 over all of it.
//!
//! Invariants:
//! - `apply(Record::between(a, b), a) == b`, byte for byte (replay.rs): a
//!   record replayed on the state it was made from gives its origin's bytes;
//! - a record is used only after its checksum, its database id and its name
//!   are checked ([`Record::decode`]); a torn or damaged file is an error
//!   that names it, never a partial change.

use sha2::{Digest, Sha256};

use crate::storage::csv::{record_end, record_fields, record_starts};
use crate::storage::linediff;

const MAGIC: &[u8] = b"RDBREC1\n";

/// A frame's records are integrated together: all of them or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRef {
    pub id: String,
    /// How many tables the frame changed (how many records make it whole).
    pub tables: usize,
}

/// One row-level change. Raw bytes are whole CSV records, terminator
/// included (the last row of a table may have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The row `old` was deleted.
    Delete { old: Vec<u8> },
    /// The row `new` is now after the row keyed `pred` (`None`: first).
    /// `old` is its previous bytes (`None`: the key is new). When `moved` is
    /// false the row keeps its place.
    Put {
        pred: Option<String>,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
        moved: bool,
    },
}

/// A commit, as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The database's id (config.toml): a record of another database is refused.
    pub db: String,
    pub table: String,
    /// The version name at the origin: `<timestamp>-<node>`.
    pub id: String,
    pub user: String,
    pub action: String,
    pub frame: Option<FrameRef>,
    /// The hash of the version the commit produced at its origin.
    pub hash: String,
    /// Header line before and after (raw, terminator included; empty: no table).
    pub old_header: Vec<u8>,
    pub new_header: Vec<u8>,
    /// Deletions first, then puts in the new content's order.
    pub changes: Vec<Change>,
}

/// The header and the rows of a content, as raw slices.
pub(super) fn split_rows(content: &[u8]) -> (&[u8], Vec<&[u8]>) {
    if content.is_empty() {
        return (&[], Vec::new());
    }
    let header_end = record_end(content, 0);
    let starts = record_starts(content, header_end);
    let rows = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| &content[s..starts.get(i + 1).copied().unwrap_or(content.len())])
        .collect();
    (&content[..header_end], rows)
}

/// The key of a raw row: its first field.
pub(super) fn key_of(row: &[u8], delim: u8) -> String {
    record_fields(row, 0, delim)
        .into_iter()
        .next()
        .unwrap_or_default()
}

impl Record {
    /// The change set that turns `old` into `new` (both valid table
    /// contents, or empty for "no table"). Identity fields are the caller's.
    pub fn changes_between(old: &[u8], new: &[u8], delim: u8) -> (Vec<u8>, Vec<u8>, Vec<Change>) {
        let (old_header, old_rows) = split_rows(old);
        let (new_header, new_rows) = split_rows(new);
        let mut deletes = Vec::new();
        let mut puts = Vec::new();
        let hunks = linediff::diff(&old_rows, &new_rows);
        // Keys of every changed old row, with its bytes: a row that left
        // one hunk may come back in another (it moved).
        let mut old_changed: std::collections::HashMap<String, &[u8]> = Default::default();
        let mut new_changed_keys: std::collections::HashSet<String> = Default::default();
        for h in &hunks {
            for &r in &old_rows[h.old.clone()] {
                old_changed.insert(key_of(r, delim), r);
            }
            for &r in &new_rows[h.new.clone()] {
                new_changed_keys.insert(key_of(r, delim));
            }
        }
        for h in &hunks {
            let old_keys: Vec<String> = old_rows[h.old.clone()]
                .iter()
                .map(|r| key_of(r, delim))
                .collect();
            let new_keys: Vec<String> = new_rows[h.new.clone()]
                .iter()
                .map(|r| key_of(r, delim))
                .collect();
            // In place only when the hunk replaces rows one for one, key for key.
            let moved = old_keys != new_keys;
            for (r, k) in old_rows[h.old.clone()].iter().zip(&old_keys) {
                if !new_changed_keys.contains(k) {
                    deletes.push(Change::Delete { old: r.to_vec() });
                }
            }
            for (i, k) in h.new.clone().zip(new_keys) {
                let pred = i.checked_sub(1).map(|p| key_of(new_rows[p], delim));
                puts.push(Change::Put {
                    pred,
                    old: old_changed.get(&k).map(|r| r.to_vec()),
                    new: new_rows[i].to_vec(),
                    moved,
                });
            }
        }
        deletes.extend(puts);
        (old_header.to_vec(), new_header.to_vec(), deletes)
    }

    /// The record's bytes: the magic, one item per field or change, and a
    /// SHA-256 over everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        item(&mut out, "db", &[self.db.as_bytes()]);
        item(&mut out, "table", &[self.table.as_bytes()]);
        item(&mut out, "id", &[self.id.as_bytes()]);
        item(&mut out, "user", &[self.user.as_bytes()]);
        item(&mut out, "action", &[self.action.as_bytes()]);
        if let Some(f) = &self.frame {
            item(
                &mut out,
                "frame",
                &[f.id.as_bytes(), f.tables.to_string().as_bytes()],
            );
        }
        item(&mut out, "hash", &[self.hash.as_bytes()]);
        item(&mut out, "header", &[&self.old_header, &self.new_header]);
        for c in &self.changes {
            match c {
                Change::Delete { old } => item(&mut out, "del", &[old]),
                Change::Put {
                    pred,
                    old,
                    new,
                    moved,
                } => {
                    let pred = pred.as_deref().unwrap_or("").as_bytes();
                    let flag: &[u8] = if *moved { b"1" } else { b"0" };
                    match old {
                        Some(old) => item(&mut out, "upd", &[pred, old, new, flag]),
                        None => item(&mut out, "ins", &[pred, new, flag]),
                    }
                }
            }
        }
        let sum = hex(&Sha256::digest(&out));
        out.extend_from_slice(format!("end {sum}\n").as_bytes());
        out
    }

    /// Decodes and checks a record's bytes: the checksum, the database id
    /// (`db`) and, when given, the name it was found under (`name`).
    pub fn decode(bytes: &[u8], db: &str, name: Option<&str>) -> Result<Record, String> {
        let body_end = bytes
            .strip_suffix(b"\n")
            .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
            .map(|i| i + 1)
            .ok_or("truncated: no checksum line")?;
        let (body, tail) = bytes.split_at(body_end);
        let sum = tail
            .strip_prefix(b"end ")
            .and_then(|t| t.strip_suffix(b"\n"))
            .ok_or("truncated: no checksum line")?;
        if sum != hex(&Sha256::digest(body)).as_bytes() {
            return Err("checksum mismatch (damaged or partly written)".into());
        }
        let mut r = Reader {
            b: body.strip_prefix(MAGIC).ok_or("not a commit record")?,
        };
        let mut rec = Record {
            db: String::new(),
            table: String::new(),
            id: String::new(),
            user: String::new(),
            action: String::new(),
            frame: None,
            hash: String::new(),
            old_header: Vec::new(),
            new_header: Vec::new(),
            changes: Vec::new(),
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "a field is not UTF-8");
        while let Some((tag, fields)) = r.item()? {
            let f = |i: usize| fields.get(i).copied().ok_or("an item lacks a field");
            match tag {
                "db" => rec.db = text(f(0)?)?,
                "table" => rec.table = text(f(0)?)?,
                "id" => rec.id = text(f(0)?)?,
                "user" => rec.user = text(f(0)?)?,
                "action" => rec.action = text(f(0)?)?,
                "hash" => rec.hash = text(f(0)?)?,
                "frame" => {
                    let tables = text(f(1)?)?.parse().map_err(|_| "bad frame size")?;
                    rec.frame = Some(FrameRef {
                        id: text(f(0)?)?,
                        tables,
                    });
                }
                "header" => {
                    rec.old_header = f(0)?.to_vec();
                    rec.new_header = f(1)?.to_vec();
                }
                "del" => rec.changes.push(Change::Delete {
                    old: f(0)?.to_vec(),
                }),
                "upd" | "ins" => {
                    let pred = text(f(0)?)?;
                    let (old, new, flag) = if tag == "upd" {
                        (Some(f(1)?.to_vec()), f(2)?, f(3)?)
                    } else {
                        (None, f(1)?, f(2)?)
                    };
                    rec.changes.push(Change::Put {
                        pred: (!pred.is_empty()).then_some(pred),
                        old,
                        new: new.to_vec(),
                        moved: flag == b"1",
                    });
                }
                // Items a later version adds are skipped: the checksum
                // already says the file is whole.
                _ => {}
            }
        }
        if rec.db != db {
            return Err(format!("belongs to another database (id {})", rec.db));
        }
        if let Some(name) = name
            && name != rec.id
        {
            return Err(format!("names commit {} but is stored as {name}", rec.id));
        }
        if rec.table.is_empty() || !valid_id(&rec.id) {
            return Err(format!(
                "lacks its table, or {:?} is not a record name",
                rec.id
            ));
        }
        Ok(rec)
    }

    /// The node the record's name says made it.
    pub fn node(&self) -> &str {
        self.id.rsplit('-').next().unwrap_or("")
    }
}

/// A record name: `YYYYMMDDTHHMMSS.ffffffZ-<node>`, the node 8 hex digits
/// (what `storage::names::version_name` makes). Anything else is refused
/// before its time is read.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 32
        && digits(0..8)
        && b[8] == b'T'
        && digits(9..15)
        && b[15] == b'.'
        && digits(16..22)
        && b[22] == b'Z'
        && b[23] == b'-'
        && b[24..].iter().all(|c| c.is_ascii_hexdigit())
}

impl Record {}

/// `<tag> <len>...\n` then the fields' bytes and a newline.
fn item(out: &mut Vec<u8>, tag: &str, fields: &[&[u8]]) {
    out.extend_from_slice(tag.as_bytes());
    for f in fields {
        out.extend_from_slice(format!(" {}", f.len()).as_bytes());
    }
    out.push(b'\n');
    for f in fields {
        out.extend_from_slice(f);
    }
    out.push(b'\n');
}

/// An item: its tag and its fields.
type Item<'a> = (&'a str, Vec<&'a [u8]>);

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn item(&mut self) -> Result<Option<Item<'a>>, &'static str> {
        if self.b.is_empty() {
            return Ok(None);
        }
        let nl = self.b.iter().position(|&c| c == b'\n').ok_or("torn item")?;
        let line = std::str::from_utf8(&self.b[..nl]).map_err(|_| "bad item line")?;
        let mut parts = line.split(' ');
        let tag = parts.next().ok_or("bad item line")?;
        let mut rest = &self.b[nl + 1..];
        let mut fields = Vec::new();
        for p in parts {
            let len: usize = p.parse().map_err(|_| "bad field length")?;
            if len > rest.len() {
                return Err("a field runs past the end");
            }
            let (f, r) = rest.split_at(len);
            fields.push(f);
            rest = r;
        }
        self.b = rest
            .strip_prefix(b"\n")
            .ok_or("an item lacks its newline")?;
        Ok(Some((tag, fields)))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
