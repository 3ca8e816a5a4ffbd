//! Hash indices of a column of a parsed table version: built from the
//! version's cells, or derived from the previous version's index by the
//! change (`Change`) that made this version.

use super::table::{Change, TypedTable};
use super::value::{FastMap, Value};

/// An index of a column: the first row of each value, and for each row the
/// next row with the same value (`NO_ROW` ends a chain), so a lookup is one
/// probe and rows come out in table order. The first rows are a hash map,
/// or, for a column of integers whose range is at most twice its rows (ids,
/// keys), an array indexed by value: a probe is then one array read in a
/// few hundred kilobytes instead of a hash probe in megabytes.
#[derive(Debug, Clone)]
pub struct ColumnIndex {
    first: FirstRows,
    pub(super) next: Vec<u32>,
    distinct: usize,
}

#[derive(Debug, Clone)]
enum FirstRows {
    Hash(FastMap<Value, u32>),
    Dense { min: i64, rows: Vec<u32> },
}

impl ColumnIndex {
    /// Builds the index of column `col` of `t`.
    pub fn build(t: &TypedTable, col: usize) -> ColumnIndex {
        let mut next = vec![NO_ROW; t.len()];
        let cells = || t.rows().map(|r| r.get(col).filter(|v| !v.is_null()));
        // Integers only, in a range at most twice the rows: dense.
        let mut range: Option<(i64, i64)> = Some((i64::MAX, i64::MIN));
        for cell in cells() {
            match (cell, &mut range) {
                (None, _) => {}
                (Some(Value::Int(v)), Some((lo, hi))) => {
                    *lo = (*lo).min(v);
                    *hi = (*hi).max(v);
                }
                _ => {
                    range = None;
                    break;
                }
            }
        }
        let dense = range.filter(|(lo, hi)| lo <= hi).and_then(|(lo, hi)| {
            let span = hi.checked_sub(lo)?.checked_add(1)?;
            (span as u64 <= 2 * t.len() as u64 + 16).then_some((lo, span as usize))
        });
        let mut distinct = 0;
        // Backwards, so each chain runs in table order.
        let first = match dense {
            Some((min, span)) => {
                let mut rows = vec![NO_ROW; span];
                for (i, cell) in (0..t.len()).rev().zip(cells().rev()) {
                    if let Some(Value::Int(v)) = cell {
                        let slot = &mut rows[(v - min) as usize];
                        if *slot == NO_ROW {
                            distinct += 1;
                        }
                        next[i] = std::mem::replace(slot, i as u32);
                    }
                }
                FirstRows::Dense { min, rows }
            }
            None => {
                let mut first: FastMap<Value, u32> = FastMap::default();
                for (i, cell) in (0..t.len()).rev().zip(cells().rev()) {
                    if let Some(v) = cell {
                        next[i] = first.insert(v.clone(), i as u32).unwrap_or(NO_ROW);
                    }
                }
                distinct = first.len();
                FirstRows::Hash(first)
            }
        };
        ColumnIndex {
            first,
            next,
            distinct,
        }
    }

    /// This index of column `col` of `old`, turned into the index of `new`,
    /// a version derived from `old` by `change`: row numbers after the
    /// change move (an add per row, no hashing), and only the chains of the
    /// values the change removed or added are rebuilt. None when a dense
    /// index cannot hold an added value (build it anew then).
    pub fn derive(
        mut self,
        old: &TypedTable,
        new: &TypedTable,
        col: usize,
        change: Change,
    ) -> Option<ColumnIndex> {
        let Change {
            first,
            removed,
            added,
        } = change;
        let last = first + removed;
        if self.next.len() != old.len()
            || last > old.len()
            || new.len() != old.len() - removed + added
            || new.len() >= NO_ROW as usize
        {
            return None;
        }
        let cell = |t: &TypedTable, i: usize| t.row(i).get(col).filter(|v| !v.is_null());
        // A change of a large part of the table: built anew (as fast).
        if removed + added > old.len() / 4 + 64 {
            return None;
        }
        // The values whose chains change, once each, with the added rows
        // that hold them (new row numbers, in order).
        let mut touched: FastMap<Value, Vec<u32>> = FastMap::default();
        for i in first..last {
            if let Some(v) = cell(old, i) {
                touched.entry(v).or_default();
            }
        }
        for i in first..first + added {
            match (cell(new, i), &self.first) {
                (None, _) => continue,
                (Some(Value::Int(x)), FirstRows::Dense { min, rows }) => {
                    let fits = x
                        .checked_sub(*min)
                        .and_then(|d| usize::try_from(d).ok())
                        .is_some_and(|d| d < rows.len());
                    if !fits {
                        return None;
                    }
                }
                (Some(_), FirstRows::Dense { .. }) => return None,
                (Some(_), FirstRows::Hash(_)) => {}
            }
            if let Some(v) = cell(new, i) {
                touched.entry(v).or_default().push(i as u32);
            }
        }
        // Their chains as they were (old row numbers, in table order).
        let chains: Vec<(Value, Vec<u32>, Vec<u32>)> = touched
            .into_iter()
            .map(|(v, inserted)| {
                let rows = self.lookup(&v).collect();
                (v, rows, inserted)
            })
            .collect();
        let shift = added as i64 - removed as i64;
        // Where an old row is now (rows of the change: nowhere, fixed below).
        let moved = |r: u32| -> u32 {
            let i = r as usize;
            if r == NO_ROW || i < first {
                r
            } else if i >= last {
                (i as i64 + shift) as u32
            } else {
                NO_ROW
            }
        };
        if shift == 0 {
            self.next[first..last].fill(NO_ROW);
        } else {
            let mut next = Vec::with_capacity(new.len());
            next.extend(self.next[..first].iter().map(|&r| moved(r)));
            next.extend(std::iter::repeat_n(NO_ROW, added));
            next.extend(self.next[last..].iter().map(|&r| moved(r)));
            self.next = next;
            match &mut self.first {
                FirstRows::Hash(m) => m.values_mut().for_each(|r| *r = moved(*r)),
                FirstRows::Dense { rows, .. } => rows.iter_mut().for_each(|r| *r = moved(*r)),
            }
        }
        for (v, old_rows, inserted) in chains {
            let before = old_rows.iter().copied().filter(|&r| (r as usize) < first);
            let after = old_rows
                .iter()
                .copied()
                .filter(|&r| r as usize >= last)
                .map(moved);
            let chain: Vec<u32> = before.chain(inserted).chain(after).collect();
            for pair in chain.windows(2) {
                self.next[pair[0] as usize] = pair[1];
            }
            if let Some(&end) = chain.last() {
                self.next[end as usize] = NO_ROW;
            }
            let head = chain.first().copied();
            let was = !old_rows.is_empty();
            match &mut self.first {
                FirstRows::Hash(m) => match head {
                    Some(h) => {
                        m.insert(v, h);
                    }
                    None => {
                        m.remove(&v);
                    }
                },
                FirstRows::Dense { min, rows } => {
                    if let Value::Int(x) = v {
                        rows[(x - *min) as usize] = head.unwrap_or(NO_ROW);
                    }
                }
            }
            match (was, head.is_some()) {
                (true, false) => self.distinct -= 1,
                (false, true) => self.distinct += 1,
                _ => {}
            }
        }
        Some(self)
    }

    /// Row numbers whose value equals `key` (SQL equality: 1 and 1.0 are
    /// one key), in table order.
    pub fn lookup(&self, key: &Value) -> Matches<'_> {
        let cur = match &self.first {
            FirstRows::Hash(first) => first.get(key).copied(),
            FirstRows::Dense { min, rows } => {
                let int = match key {
                    Value::Int(i) => Some(*i),
                    Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.2e18 => Some(*r as i64),
                    _ => None,
                };
                int.and_then(|i| i.checked_sub(*min))
                    .and_then(|d| usize::try_from(d).ok())
                    .and_then(|d| rows.get(d).copied())
            }
        };
        Matches {
            next: &self.next,
            cur: cur.unwrap_or(NO_ROW),
        }
    }

    /// Approximate memory: map entries with their texts (a key read from
    /// the table's cells is an allocation of its own unless the column is
    /// coded) or the array, and the row chain. O(distinct values): called
    /// when an index is built (itself O(rows)) and when indices are listed.
    pub fn bytes(&self) -> u64 {
        let first = match &self.first {
            FirstRows::Hash(f) => {
                f.capacity() * 40
                    + f.keys()
                        .map(|k| match k {
                            Value::Text(t) => t.len() + 16,
                            _ => 0,
                        })
                        .sum::<usize>()
            }
            FirstRows::Dense { rows, .. } => rows.len() * 4,
        };
        (first + self.next.len() * 4) as u64
    }

    /// Distinct values.
    pub fn distinct(&self) -> usize {
        self.distinct
    }
}

const NO_ROW: u32 = u32::MAX;

/// The rows of one value in an index, in table order.
pub struct Matches<'a> {
    next: &'a [u32],
    cur: u32,
}

impl Iterator for Matches<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.cur == NO_ROW {
            return None;
        }
        let row = self.cur;
        self.cur = self.next.get(row as usize).copied().unwrap_or(NO_ROW);
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_hashed_indices_find_the_same_rows() {
        let dense = TypedTable::parse(b"id|v\n3|a\n5|b\n3|c\n4|\n|d\n", b'|').unwrap();
        let sparse = TypedTable::parse(b"id|v\n3|a\n5000000|b\n3|c\n4|\n|d\n", b'|').unwrap();
        let rows =
            |t: &TypedTable, k: Value| ColumnIndex::build(t, 0).lookup(&k).collect::<Vec<_>>();
        for t in [&dense, &sparse] {
            assert_eq!(rows(t, Value::Int(3)), [0, 2]);
            assert_eq!(rows(t, Value::Real(3.0)), [0, 2], "1 = 1.0");
            assert_eq!(rows(t, Value::Int(4)), [3]);
            assert!(rows(t, Value::Int(6)).is_empty());
            assert!(rows(t, Value::Int(-9)).is_empty());
            assert!(rows(t, Value::Real(3.5)).is_empty());
            assert!(
                rows(t, Value::text("3")).is_empty(),
                "text never equals a stored integer"
            );
            assert!(rows(t, Value::Null).is_empty());
            assert_eq!(ColumnIndex::build(t, 0).distinct(), 3);
        }
        assert!(matches!(
            ColumnIndex::build(&dense, 0).first,
            FirstRows::Dense { .. }
        ));
        assert!(matches!(
            ColumnIndex::build(&sparse, 0).first,
            FirstRows::Hash(_)
        ));
        // A text column is hashed.
        assert_eq!(
            ColumnIndex::build(&dense, 1)
                .lookup(&Value::text("c"))
                .collect::<Vec<_>>(),
            [2]
        );
    }
}
