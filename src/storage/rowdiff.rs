//! Row-level differences between two versions of a table, keyed by the
//! key column (the first one): rows added, rows removed, cells changed.
//! Columns are matched by name, so added and removed columns show too.

use std::collections::HashMap;

use super::csv::{TableIndex, record_fields};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowDiff {
    pub columns_added: Vec<String>,
    pub columns_removed: Vec<String>,
    /// Key column name of the newer side.
    pub key_column: String,
    pub added: Vec<Vec<String>>,
    pub removed: Vec<Vec<String>>,
    pub changed: Vec<ChangedRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedRow {
    pub key: String,
    /// (column, old value, new value)
    pub cells: Vec<(String, String, String)>,
}

impl RowDiff {
    pub fn is_empty(&self) -> bool {
        self.columns_added.is_empty()
            && self.columns_removed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
    }
}

/// Parsed rows of one side: columns and key -> fields, in file order.
fn rows(content: &[u8], delim: u8) -> (Vec<String>, Vec<Vec<String>>) {
    if content.is_empty() {
        return (Vec::new(), Vec::new());
    }
    match TableIndex::parse(content, delim) {
        Ok(idx) => {
            let rows = idx
                .starts
                .iter()
                .map(|&st| record_fields(content, st, delim))
                .collect();
            (idx.columns, rows)
        }
        Err(_) => (Vec::new(), Vec::new()),
    }
}

/// Differences from `old` to `new` (both valid table contents, or empty for
/// "no table").
pub fn diff(old: &[u8], new: &[u8], delim: u8) -> RowDiff {
    let (old_cols, old_rows) = rows(old, delim);
    let (new_cols, new_rows) = rows(new, delim);
    let mut d = RowDiff {
        columns_added: new_cols
            .iter()
            .filter(|c| !old_cols.contains(c))
            .cloned()
            .collect(),
        columns_removed: old_cols
            .iter()
            .filter(|c| !new_cols.contains(c))
            .cloned()
            .collect(),
        key_column: new_cols
            .first()
            .or(old_cols.first())
            .cloned()
            .unwrap_or_default(),
        ..RowDiff::default()
    };
    let old_by_key: HashMap<&str, &Vec<String>> =
        old_rows.iter().map(|r| (r[0].as_str(), r)).collect();
    let new_keys: std::collections::HashSet<&str> =
        new_rows.iter().map(|r| r[0].as_str()).collect();
    for r in &new_rows {
        match old_by_key.get(r[0].as_str()) {
            None => d.added.push(r.clone()),
            Some(o) => {
                let cells: Vec<(String, String, String)> = new_cols
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter_map(|(i, c)| {
                        let oi = old_cols.iter().position(|x| x == c)?;
                        (o[oi] != r[i]).then(|| (c.clone(), o[oi].clone(), r[i].clone()))
                    })
                    .collect();
                if !cells.is_empty() {
                    d.changed.push(ChangedRow {
                        key: r[0].clone(),
                        cells,
                    });
                }
            }
        }
    }
    d.removed = old_rows
        .iter()
        .filter(|r| !new_keys.contains(r[0].as_str()))
        .cloned()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_removed_changed_and_columns() {
        let old = b"id|name|age\n1|Ann|30\n2|Bob|40\n3|Cy|50\n";
        let new = b"id|name|age|city\n1|Ann|31|\n3|Cy|50|Rome\n4|\"D|x\"|20|Oslo\n";
        let d = diff(old, new, b'|');
        assert_eq!(d.columns_added, ["city"]);
        assert_eq!(d.added, vec![vec!["4", "D|x", "20", "Oslo"]]);
        assert_eq!(d.removed, vec![vec!["2", "Bob", "40"]]);
        assert_eq!(
            d.changed,
            vec![ChangedRow {
                key: "1".into(),
                cells: vec![("age".into(), "30".into(), "31".into())]
            }]
        );
        assert!(diff(old, old, b'|').is_empty());
    }
}
