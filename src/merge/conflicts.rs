//! Conflicts as data: a refused merge leaves `<db root>/conflicts/<id>.csv`
//! (one line per conflicting cell: key, column, base, ours, theirs) and
//! `<id>.ours` (the refused writer's bytes), with `<id>.toml` saying which
//! table and versions. `rdb conflict:*` and the mount's `@conflicts/` read
//! them; resolving commits a version and removes them.
//!
//! This module owns what a record means (the metadata's fields, the cells
//! file's columns); where and how its bytes are stored (durably, privately)
//! is the storage layer's (`Database::put_conflict` and its siblings).

use super::{Conflict, MergeError, merge3};
pub use crate::storage::ConflictInfo;
use crate::storage::names::{format_ts, now_us};
use crate::storage::{
    Action, Base, CommitOptions, Committed, ConflictCell, ConflictFile, ConflictPolicy, Database,
    StorageError,
};

/// How to resolve.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Apply the refused write, merged over the current head (its cells win).
    Ours,
    /// Keep the head; drop the refused write.
    Theirs,
    /// Commit this content as the resolution.
    Content(Vec<u8>),
}

/// Records a refused merge; returns its id.
pub fn record(
    db: &Database,
    table: &str,
    base: u64,
    head: u64,
    ours: &[u8],
    cells: &[Conflict],
) -> Result<String, StorageError> {
    let ts_us = now_us();
    let id = format!("{table}-{}", format_ts(ts_us));
    let info = ConflictInfo {
        id: id.clone(),
        table: table.to_string(),
        base,
        head,
        cells: cells.len(),
        ts_us,
        kind: String::new(),
    };
    let cells: Vec<ConflictCell> = cells
        .iter()
        .map(|c| ConflictCell {
            key: c.key.clone(),
            column: c.column.clone(),
            base: c.base.clone(),
            ours: c.ours.clone(),
            theirs: c.theirs.clone(),
        })
        .collect();
    // Storage writes the metadata last: a listed record is a complete one.
    db.record_conflict(&info, &cells, ours)?;
    Ok(id)
}

/// Every unresolved conflict, oldest first.
pub fn list(db: &Database) -> Result<Vec<ConflictInfo>, StorageError> {
    let mut out = Vec::new();
    for id in db.conflict_ids()? {
        // A record that vanished meanwhile (resolved by another process) or
        // whose metadata does not parse is not listed; `get` names its error.
        if let Ok(info) = get(db, &id) {
            out.push(info);
        }
    }
    out.sort_by_key(|c| (c.ts_us, c.id.clone()));
    Ok(out)
}

pub fn get(db: &Database, id: &str) -> Result<ConflictInfo, StorageError> {
    db.conflict_info(id)
}

/// The cells file of a conflict (CSV: key, column, base, ours, theirs).
pub fn cells(db: &Database, id: &str) -> Result<Vec<u8>, StorageError> {
    get(db, id)?;
    db.read_conflict(id, ConflictFile::Cells)
}

/// Resolves a conflict: commits the resolution (none for `Theirs`) and
/// removes the record.
pub fn resolve(
    db: &Database,
    id: &str,
    how: Resolution,
    user: &str,
) -> Result<Option<Committed>, MergeError> {
    let info = get(db, id)?;
    let table = db.live_table(&info.table)?;
    let opts = CommitOptions::new(Action::Merge, user);
    let label = match &how {
        Resolution::Theirs => "theirs",
        Resolution::Content(_) => "content",
        Resolution::Ours => "ours",
    };
    let committed = match how {
        Resolution::Theirs => None,
        Resolution::Content(bytes) => Some(table.commit(Base::Head, bytes, &opts)?),
        Resolution::Ours => {
            let ours = db.read_conflict(id, ConflictFile::Ours)?;
            let delim = db.config().delimiter_byte();
            let committed = table.commit_resolving(info.base, ours, &opts, |b, o, h, _| {
                Ok::<_, MergeError>(merge3(b, o, h, delim, ConflictPolicy::LastWriterWins)?.content)
            })?;
            Some(committed)
        }
    };
    remove_record(db, id, label);
    Ok(committed)
}

/// Removes a resolved conflict's files. Best effort: the resolution is
/// already committed, so failing here must not report the resolve as
/// failed; a record left behind stays listed, and resolving it with
/// `Theirs` removes it without committing anything.
fn remove_record(db: &Database, id: &str, how: &str) {
    let m = crate::metrics::global();
    crate::metrics::inc(&m.conflicts_resolved, &[db.name(), how]);
    // A value sync kept is listed at every location: the resolution is
    // noted where it travels, so every location drops it.
    let travels = db.conflict_info(id).is_ok_and(|i| i.kind == "sync");
    if let Err(e) = db.remove_conflict(id) {
        tracing::warn!(conflict = id, error = %e.report(), "resolved conflict not removed");
    }
    if travels && let Err(e) = db.note_conflict_resolved(id) {
        tracing::warn!(conflict = id, error = %e.report(), "resolution not noted for the other locations");
    }
}

/// Resolves a conflict with a value per conflicting cell (key, column):
/// applied to the head as it is now and committed from that version, so a
/// commit that lands meanwhile is merged, never overwritten (a change to
/// the same cells fails as a conflict and nothing is resolved).
pub fn resolve_cells(
    db: &Database,
    id: &str,
    values: &std::collections::HashMap<(String, String), String>,
    user: &str,
) -> Result<Committed, MergeError> {
    let info = get(db, id)?;
    let table = db.live_table(&info.table)?;
    let delim = db.config().delimiter_byte();
    let (seq, head) = table.head()?;
    let content = with_cells(&head, delim, values)?;
    let opts = CommitOptions::new(Action::Merge, user);
    let committed =
        match super::commit_merging(&table, seq, content, &opts, ConflictPolicy::Reject, delim)? {
            super::Outcome::Clean(c) | super::Outcome::Merged { committed: c, .. } => c,
        };
    remove_record(db, id, "cells");
    Ok(committed)
}

/// One conflicting cell of a record, as `rdb conflict:show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellChoice {
    pub key: String,
    pub column: String,
    pub base: String,
    pub ours: String,
    pub theirs: String,
}

/// The conflicting cells of a conflict (row-level conflicts have an empty column).
pub fn cell_list(db: &Database, id: &str) -> Result<Vec<CellChoice>, MergeError> {
    let bytes = cells(db, id)?;
    let delim = db.config().delimiter_byte();
    let side = super::parse(&bytes, delim, "conflict")?;
    Ok((0..side.rows.len())
        .map(|i| {
            let f = side.fields(i);
            let get = |n: usize| f.get(n).cloned().unwrap_or_default();
            CellChoice {
                key: get(1),
                column: get(2),
                base: get(3),
                ours: get(4),
                theirs: get(5),
            }
        })
        .collect())
}

/// The head of `table` with the given cells set: (key, column) -> value.
/// Rows it does not touch keep their bytes.
pub fn with_cells(
    head: &[u8],
    delim: u8,
    values: &std::collections::HashMap<(String, String), String>,
) -> Result<Vec<u8>, MergeError> {
    let side = super::parse(head, delim, "head")?;
    let mut out = side.header_raw.to_vec();
    for i in 0..side.rows.len() {
        let key = &side.rows[i].0;
        let touched = side
            .columns
            .iter()
            .any(|c| values.contains_key(&(key.clone(), c.clone())));
        if !touched {
            out.extend_from_slice(side.raw(i));
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            continue;
        }
        let mut fields = side.fields(i);
        for (p, c) in side.columns.iter().enumerate() {
            if let Some(v) = values.get(&(key.clone(), c.clone())) {
                fields[p] = v.clone();
            }
        }
        out.extend_from_slice(&super::render(&fields, delim));
    }
    Ok(out)
}

/// Resolves a conflict from its edited cells file: every cell takes the
/// value of its `resolved` column, over the current head.
pub fn resolve_edited(
    db: &Database,
    id: &str,
    edited: &[u8],
    user: &str,
) -> Result<Option<Committed>, MergeError> {
    get(db, id)?;
    let delim = db.config().delimiter_byte();
    let side = super::parse(edited, delim, "edited conflict")?;
    if side.columns.len() < 7 || side.columns[6] != "resolved" {
        return Err(MergeError::Csv {
            side: "edited conflict",
            error: crate::storage::CsvError {
                line: 1,
                column: None,
                kind: crate::storage::CsvErrorKind::FieldCount {
                    expected: 7,
                    found: side.columns.len(),
                },
            },
        });
    }
    let mut values = std::collections::HashMap::new();
    for i in 0..side.rows.len() {
        let f = side.fields(i);
        if f[2].is_empty() {
            return Err(MergeError::Storage(StorageError::Exists {
                kind: "row-level conflict (resolve it with rdb conflict:resolve --ours or --theirs)",
                name: f[1].clone(),
            }));
        }
        values.insert((f[1].clone(), f[2].clone()), f[6].clone());
    }
    resolve_cells(db, id, &values, user).map(Some)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::RealIo;

    const BASE: &[u8] = b"id|name|age\n1|Ann|30\n2|Bob|40\n3|Cy|50\n";
    /// The refused writer's content, from version 1: row 1's age collides
    /// with the head's, row 2's name does not.
    const OURS: &[u8] = b"id|name|age\n1|Ann|31\n2|Bobby|40\n3|Cy|50\n";
    /// The head (version 2).
    const THEIRS: &[u8] = b"id|name|age\n1|Ann|32\n2|Bob|40\n3|Cy|55\n";
    /// The cells file of the conflict between them.
    const CELLS: &str = "cell|key|column|base|ours|theirs|resolved\n1|1|age|30|31|32|32\n";

    /// A store with `t` at THEIRS (version 2) and the conflict of OURS
    /// (from version 1) recorded from a real three-way merge.
    fn recorded() -> (tempfile::TempDir, Database, String) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::init(Arc::new(RealIo), dir.path(), "shop", '|').unwrap();
        db.create_table("t", BASE, "tester").unwrap();
        let opts = CommitOptions::new(Action::Update, "tester");
        let c = db
            .table("t")
            .unwrap()
            .commit(Base::Head, THEIRS.to_vec(), &opts)
            .unwrap();
        assert_eq!(c.version.seq, 2);
        let merged = merge3(BASE, OURS, THEIRS, b'|', ConflictPolicy::Reject).unwrap();
        assert_eq!(merged.conflicts.len(), 1, "{:?}", merged.conflicts);
        let id = record(&db, "t", 1, 2, OURS, &merged.conflicts).unwrap();
        (dir, db, id)
    }

    fn head(db: &Database) -> String {
        let (_, bytes) = db.table("t").unwrap().head().unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn versions(db: &Database) -> usize {
        db.table("t").unwrap().versions().unwrap().len()
    }

    /// The record is gone from every reader.
    fn assert_gone(db: &Database, id: &str) {
        assert!(list(db).unwrap().is_empty());
        assert!(matches!(get(db, id), Err(StorageError::NotFound { .. })));
        assert!(cells(db, id).is_err());
        for file in [ConflictFile::Meta, ConflictFile::Cells, ConflictFile::Ours] {
            assert!(db.read_conflict(id, file).is_err(), "{id}: {file:?}");
        }
    }

    #[test]
    fn a_recorded_conflict_is_listed_got_and_its_cells_read() {
        let (_dir, db, id) = recorded();
        assert!(id.starts_with("t-"), "{id}");
        let info = get(&db, &id).unwrap();
        assert_eq!(
            (
                info.id.as_str(),
                info.table.as_str(),
                info.base,
                info.head,
                info.cells
            ),
            (id.as_str(), "t", 1, 2, 1)
        );
        assert_eq!(list(&db).unwrap(), [info]);
        assert_eq!(String::from_utf8(cells(&db, &id).unwrap()).unwrap(), CELLS);
        assert_eq!(
            cell_list(&db, &id).unwrap(),
            [CellChoice {
                key: "1".into(),
                column: "age".into(),
                base: "30".into(),
                ours: "31".into(),
                theirs: "32".into(),
            }]
        );
        assert_eq!(db.read_conflict(&id, ConflictFile::Ours).unwrap(), OURS);
        // Recording commits nothing.
        assert_eq!(head(&db), String::from_utf8_lossy(THEIRS));
        assert_eq!(versions(&db), 2);
        for bad in ["nope", "../t", ".hidden"] {
            assert!(
                matches!(get(&db, bad), Err(StorageError::NotFound { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolving_with_ours_merges_the_refused_write_over_the_head() {
        let (_dir, db, id) = recorded();
        let c = resolve(&db, &id, Resolution::Ours, "tester")
            .unwrap()
            .expect("a version");
        assert_eq!(c.version.seq, 3);
        assert_eq!(head(&db), "id|name|age\n1|Ann|31\n2|Bobby|40\n3|Cy|55\n");
        assert_eq!(versions(&db), 3);
        assert_gone(&db, &id);
    }

    #[test]
    fn resolving_with_theirs_keeps_the_head() {
        let (_dir, db, id) = recorded();
        assert!(
            resolve(&db, &id, Resolution::Theirs, "tester")
                .unwrap()
                .is_none()
        );
        assert_eq!(head(&db), String::from_utf8_lossy(THEIRS));
        assert_eq!(versions(&db), 2);
        assert_gone(&db, &id);
    }

    #[test]
    fn resolving_with_content_commits_it() {
        let (_dir, db, id) = recorded();
        let chosen = b"id|name|age\n1|Ann|33\n2|Bob|40\n3|Cy|55\n";
        let c = resolve(&db, &id, Resolution::Content(chosen.to_vec()), "tester")
            .unwrap()
            .expect("a version");
        assert_eq!(c.version.seq, 3);
        assert_eq!(head(&db), String::from_utf8_lossy(chosen));
        assert_gone(&db, &id);
    }

    #[test]
    fn an_edited_cells_file_sets_each_resolved_cell_over_the_head() {
        let (_dir, db, id) = recorded();
        let edited = CELLS.replace("|30|31|32|32\n", "|30|31|32|35\n");
        let c = resolve_edited(&db, &id, edited.as_bytes(), "tester")
            .unwrap()
            .expect("a version");
        assert_eq!(c.version.seq, 3);
        // Only the conflicting cell changes: the rest of ours is not applied.
        assert_eq!(head(&db), "id|name|age\n1|Ann|35\n2|Bob|40\n3|Cy|55\n");
        assert_eq!(versions(&db), 3);
        assert_gone(&db, &id);
    }

    #[test]
    fn a_malformed_edited_cells_file_is_refused_and_changes_nothing() {
        let (_dir, db, id) = recorded();
        let malformed = [
            // The `resolved` column removed.
            "cell|key|column|base|ours|theirs\n1|1|age|30|31|32\n".to_string(),
            // A column renamed.
            CELLS.replace("|resolved\n", "|chosen\n"),
            // A line with a field missing.
            "cell|key|column|base|ours|theirs|resolved\n1|1|age|30|31|32\n".to_string(),
        ];
        for edited in &malformed {
            let e = resolve_edited(&db, &id, edited.as_bytes(), "tester").unwrap_err();
            assert!(matches!(e, MergeError::Csv { .. }), "{edited:?}: {e:?}");
            assert_eq!(head(&db), String::from_utf8_lossy(THEIRS), "{edited:?}");
            assert_eq!(versions(&db), 2, "{edited:?}");
            assert_eq!(
                list(&db).unwrap().len(),
                1,
                "{edited:?}: the conflict stays"
            );
            assert_eq!(String::from_utf8(cells(&db, &id).unwrap()).unwrap(), CELLS);
        }
    }
}
