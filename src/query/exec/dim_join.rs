//! Dimension joins: inner equi-joins of the first table on one of its
//! dictionary columns with tables that hold at most one row per value of
//! that column (a lookup table, a CTE grouped by the column). Each
//! distinct value is looked up once, not each row: a row's joined rows are
//! its codes' entries, so grouping and column-wise tests
//! (`column_filter.rs`) see through the join without the joined rows ever
//! being made. A table with two rows for one value is not a dimension: the
//! general hash join runs.

use std::sync::Arc;

use super::super::ast::{Select, Source};
use super::super::cells::RowRef;
use super::super::column_index::ColumnIndex;
use super::super::table::TypedTable;
use super::super::value::Value;
use super::Env;

/// One dimension join.
pub(super) struct Dim<'t> {
    /// Column of the first table it joins on.
    pub col: usize,
    /// That column as dictionary codes (one per row of the first table),
    /// and each code's value.
    pub codes: &'t [u32],
    pub values: &'t [Value],
    /// The joined table's row for each code; None: no row has the value
    /// (or it is NULL), so the inner join drops the first table's row.
    pub rows: Vec<Option<u32>>,
    /// The joined table.
    pub table: &'t TypedTable,
}

/// Whether every join of `s` has the shape of a dimension join: inner, ON
/// exactly an equality of a column of the first table with one of the
/// joined table (`dims` then checks the data).
pub(super) fn dim_shape(s: &Select) -> bool {
    let Some(first) = s.sources.first() else {
        return false;
    };
    let width = first.table.columns.len();
    !s.joins.is_empty()
        && s.joins
            .iter()
            .all(|j| !j.left && j.on_is_equi && j.equi.is_some_and(|(l, _)| l < width))
}

/// The dimension joins of `s` (one per join, in order), or None when a
/// join is not one. The joined tables' indices come from the index policy
/// (a lookup counted, as the hash join counts it).
pub(super) fn dims<'t>(s: &'t Select, env: &Env) -> Option<Vec<Dim<'t>>> {
    dims_by(s, &|src: &Source, col| env.index(src, col))
}

/// `dims` for EXPLAIN: an index a table has, else one built and dropped;
/// nothing counted or kept.
pub(super) fn dims_uncounted(s: &Select) -> Option<Vec<Dim<'_>>> {
    dims_by(s, &|src: &Source, col| src.table.index(col))
}

fn dims_by<'t>(
    s: &'t Select,
    index_of: &dyn Fn(&Source, usize) -> Option<Arc<ColumnIndex>>,
) -> Option<Vec<Dim<'t>>> {
    if !dim_shape(s) {
        return None;
    }
    let first = &s.sources.first()?.table;
    let mut out = Vec::with_capacity(s.joins.len());
    for (j, src) in s.joins.iter().zip(&s.sources[1..]) {
        let (col, rcol) = j.equi?;
        let dict = first.dict(col)?;
        let index =
            index_of(src, rcol).unwrap_or_else(|| Arc::new(ColumnIndex::build(&src.table, rcol)));
        let mut rows = Vec::with_capacity(dict.values.len());
        for v in &dict.values {
            if v.is_null() {
                rows.push(None);
                continue;
            }
            let mut found = index.lookup(v);
            let row = found.next();
            if found.next().is_some() {
                return None;
            }
            rows.push(row);
        }
        out.push(Dim {
            col,
            codes: &dict.codes,
            values: &dict.values,
            rows,
            table: &src.table,
        });
    }
    Some(out)
}

/// The joined row of first-table row `id` into `parts` (cleared first):
/// false when a join finds no row.
pub(super) fn joined<'t>(
    first: &'t TypedTable,
    dims: &[Dim<'t>],
    id: u32,
    parts: &mut Vec<RowRef<'t>>,
) -> bool {
    parts.clear();
    parts.push(first.row(id as usize));
    for d in dims {
        let row = d
            .codes
            .get(id as usize)
            .and_then(|&c| d.rows.get(c as usize).copied().flatten());
        match row {
            Some(r) => parts.push(d.table.row(r as usize)),
            None => return false,
        }
    }
    true
}
