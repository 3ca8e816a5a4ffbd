//! Property tests of records and replay against a model of sites that save
//! concurrently and exchange records in any order.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::record::{Record, key_of, split_rows};
use super::replay::{Lost, TableState};
use crate::storage::csv::{TableIndex, record_fields, render_record};

const D: u8 = b'|';

/// A table as the model sees it: header, then rows as field lists.
#[derive(Debug, Clone)]
struct Model {
    cols: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn render(m: &Model, crlf: bool, last_newline: bool) -> Vec<u8> {
    if m.cols.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut lines = vec![render_record(&m.cols, D)];
    lines.extend(m.rows.iter().map(|r| render_record(r, D)));
    let n = lines.len();
    for (i, mut l) in lines.into_iter().enumerate() {
        if crlf {
            l.pop();
            l.extend_from_slice(b"\r\n");
        }
        if i + 1 == n && !last_newline {
            while l.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                l.pop();
            }
        }
        out.extend(l);
    }
    out
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-c]{1,2}",
        Just("x|y".to_string()),
        Just("q\"t".to_string()),
        Just("two\nlines".to_string()),
    ]
}

fn table() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (
        prop::collection::btree_set(0u8..12, 0..8),
        prop::collection::vec(value(), 24),
        any::<bool>(),
        any::<bool>(),
        1usize..4,
    )
        .prop_map(|(keys, vals, crlf, last_nl, ncols)| {
            // Now and then no table at all (emptied or dropped).
            if keys.len() == 7 && !crlf {
                return (Vec::new(), false);
            }
            let mut cols = vec!["id".to_string()];
            cols.extend((1..ncols).map(|i| format!("c{i}")));
            let mut keys: Vec<u8> = keys.into_iter().collect();
            // Not always sorted: row order is data too.
            if crlf {
                keys.reverse();
            }
            let rows = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let mut r = vec![format!("k{k}")];
                    r.extend((1..ncols).map(|c| vals[(i * 3 + c) % vals.len()].clone()));
                    r
                })
                .collect();
            (render(&Model { cols, rows }, crlf, last_nl), crlf)
        })
}

fn record(id: &str, old: &[u8], new: &[u8]) -> Record {
    let (old_header, new_header, changes) = Record::changes_between(old, new, D);
    Record {
        db: "db".into(),
        table: "t".into(),
        id: id.into(),
        user: "u".into(),
        action: if new.is_empty() { "drop" } else { "update" }.into(),
        frame: None,
        hash: String::new(),
        old_header,
        new_header,
        changes,
    }
}

fn replay(records: &BTreeMap<String, Record>) -> (Vec<u8>, Vec<Lost>) {
    let mut s = TableState::load(&[], D, false);
    let mut lost = Vec::new();
    for r in records.values() {
        lost.extend(s.apply(r));
    }
    (s.content(), lost)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// A record replayed on the state it was made from gives its origin's
    /// bytes exactly, and loses nothing.
    #[test]
    fn a_record_replays_exactly_where_it_was_made((a, _) in table(), (b, _) in table()) {
        let r = record("20261206T000000.000001Z-0000000a", &a, &b);
        let mut s = TableState::load(&a, D, false);
        prop_assert_eq!(s.content(), a.clone());
        let lost = s.apply(&r);
        let got = s.content();
        prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&b));
        prop_assert!(lost.is_empty(), "{lost:?}");
        // Through its bytes: the decoded record is the record.
        let back = Record::decode(&r.encode(), "db", Some("20261206T000000.000001Z-0000000a"))
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(back, r);
    }

    /// Sites save concurrently (each on its own replayed head, with a clock
    /// that never goes behind what it holds) and exchange records in random
    /// order. At every step a site's head is the replay of what it holds and
    /// its own last save is what it saved; in the end every site has the
    /// same bytes, and every value a save wrote is in the final table, or
    /// was overwritten by a save that saw it, or is recorded as lost.
    #[test]
    fn sites_converge_and_keep_every_value(
        steps in prop::collection::vec((0usize..3, any::<bool>(), table(), 0usize..3), 1..14),
        clocks in prop::collection::vec(0u64..50, 3),
    ) {
        let mut held: Vec<BTreeMap<String, Record>> = vec![BTreeMap::new(); 3];
        let mut all: BTreeMap<String, Record> = BTreeMap::new();
        for (n, (site, save, (content, _), peer)) in steps.into_iter().enumerate() {
            if save {
                let (head, _) = replay(&held[site]);
                // Hybrid clock: later than anything held, whatever the skew.
                let newest = held[site].keys().last().map_or(0, |k| k[..8].parse::<u64>().unwrap_or(0));
                let ts = (clocks[site] * 100 + n as u64).max(newest + 1);
                let id = format!("{ts:08}-site{site}");
                let r = record(&id, &head, &content);
                held[site].insert(id.clone(), r.clone());
                all.insert(id, r);
                let (after, _) = replay(&held[site]);
                prop_assert_eq!(&after, &content, "a site's own save replays as saved; head {:?}, records {}", String::from_utf8_lossy(&head), held[site].values().map(|r| String::from_utf8_lossy(&r.encode()).into_owned()).collect::<Vec<_>>().join("\n"));
            } else {
                let theirs = held[peer].clone();
                held[site].extend(theirs);
            }
        }
        let (end, lost) = replay(&all);
        for h in &mut held {
            h.extend(all.clone());
            prop_assert_eq!(&replay(h).0, &end);
        }
        if !end.is_empty() {
            TableIndex::parse(&end, D).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        check_nothing_lost(&all, &end, &lost)?;
    }
}

/// Every cell a record wrote (a changed or new cell) is in `end`, or a
/// later record saw it (its old bytes hold it) and replaced it, or it is a
/// lost value.
fn check_nothing_lost(
    all: &BTreeMap<String, Record>,
    end: &[u8],
    lost: &[Lost],
) -> Result<(), TestCaseError> {
    let cells = |content: &[u8]| -> BTreeMap<(String, String), String> {
        let (header, rows) = split_rows(content);
        let cols = if header.is_empty() {
            Vec::new()
        } else {
            record_fields(header, 0, D)
        };
        let mut out = BTreeMap::new();
        for r in rows {
            let f = record_fields(r, 0, D);
            for (c, v) in cols.iter().zip(&f) {
                out.insert((f[0].clone(), c.clone()), v.clone());
            }
        }
        out
    };
    let final_cells = cells(end);
    let lost_set: BTreeSet<(String, String, String)> = lost
        .iter()
        .filter_map(|l| Some((l.key.clone(), l.column.clone(), l.lost.clone()?)))
        .collect();
    let ids: Vec<&String> = all.keys().collect();
    for (i, id) in ids.iter().enumerate() {
        let r = &all[*id];
        let new_cols = if r.new_header.is_empty() {
            Vec::new()
        } else {
            record_fields(&r.new_header, 0, D)
        };
        for c in &r.changes {
            let super::record::Change::Put { new, old, .. } = c else {
                continue;
            };
            let f = record_fields(new, 0, D);
            let key = key_of(new, D);
            let old_cols = if r.old_header.is_empty() {
                Vec::new()
            } else {
                record_fields(&r.old_header, 0, D)
            };
            let old_f = old.as_ref().map(|o| record_fields(o, 0, D));
            for (col, v) in new_cols.iter().zip(&f) {
                // Only what the record wrote: a cell it left as it was is not its value.
                // A column the old header lacked reads as empty (as laid out again).
                let was = old_f.as_ref().map(|of| {
                    old_cols
                        .iter()
                        .position(|c| c == col)
                        .and_then(|j| of.get(j))
                        .cloned()
                        .unwrap_or_default()
                });
                // An empty cell is what a missing column reads as: no value to keep.
                if was.as_ref() == Some(v) || v.is_empty() {
                    continue;
                }
                // Under its column, or another one a rename carried it to.
                let here = final_cells.iter().any(|((k, _), fv)| k == &key && fv == v);
                let seen_later = ids[i + 1..].iter().any(|later| {
                    let lr = &all[*later];
                    let lcols = if lr.old_header.is_empty() {
                        Vec::new()
                    } else {
                        record_fields(&lr.old_header, 0, D)
                    };
                    lr.changes.iter().any(|lc| {
                        let old = match lc {
                            super::record::Change::Put { old: Some(o), .. } => o,
                            super::record::Change::Delete { old } => old,
                            _ => return false,
                        };
                        let of = record_fields(old, 0, D);
                        let ov = lcols
                            .iter()
                            .position(|c| c == col)
                            .and_then(|j| of.get(j))
                            .cloned()
                            .unwrap_or_default();
                        key_of(old, D) == key && &ov == v
                    })
                });
                // (Under any column: a rename may have carried it.)
                let is_lost = lost_set.iter().any(|(k, _, lv)| k == &key && lv == v)
                    || lost.iter().any(|l| {
                        l.key == key
                            && l.column.is_empty()
                            && l.lost
                                .as_ref()
                                .is_some_and(|row| record_fields(row.as_bytes(), 0, D).contains(v))
                    });
                prop_assert!(
                    here || seen_later || is_lost,
                    "value {v:?} of {key}/{col} written by {id} vanished\nrecords: {}\nend: {:?}\nlost: {lost:?}",
                    all.values()
                        .map(|r| String::from_utf8_lossy(&r.encode()).into_owned())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    String::from_utf8_lossy(end)
                );
            }
        }
    }
    Ok(())
}
