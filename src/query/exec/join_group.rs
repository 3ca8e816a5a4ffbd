//! GROUP BY a dictionary column of the joined table: `FROM facts f JOIN
//! dim d ON f.x = d.key GROUP BY d.col` with COUNT/AVG of the first
//! table's columns. Each first-table row probes the join's index and its
//! matches' codes in `d.col` are its groups: the aggregates then run over
//! (row, group) pairs in tight loops (`aggregate_columns`), and no joined
//! row is made. Any other shape (a WHERE among them) takes the general
//! path.

use std::sync::Arc;

use super::super::ResultSet;
use super::super::ast::{AggFunc, Expr, Select};
use super::super::column_index::ColumnIndex;
use super::super::error::QueryError;
use super::Env;
use super::aggregate::{Pairs, aggregate_columns};

/// Whether `s` has the shape: one inner join on an equality of a
/// first-table column, no WHERE, grouped by one column of the joined table,
/// every aggregate COUNT(*), or COUNT or AVG of a first-table column. (So
/// that, once it runs, only the data can send it to the general path, and
/// no index lookup is made twice.)
pub(super) fn join_grouping(s: &Select) -> bool {
    let (Some((keys, aggs)), [j], [first, joined], None) = (
        &s.grouping,
        s.joins.as_slice(),
        s.sources.as_slice(),
        &s.filter,
    ) else {
        return false;
    };
    let width = first.table.columns.len();
    let fast = aggs.iter().all(|a| {
        !a.distinct
            && a.filter.is_none()
            && match (a.func, &a.arg) {
                (AggFunc::CountStar, _) => true,
                (AggFunc::Count | AggFunc::Avg, Some(Expr::Col(c, _))) => *c < width,
                _ => false,
            }
    });
    if !fast {
        return false;
    }
    let [Expr::Col(col, _)] = keys.as_slice() else {
        return false;
    };
    let width = first.table.columns.len();
    !j.left
        && j.on_is_equi
        && j.equi.is_some_and(|(l, _)| l < width)
        && (joined.offset..joined.offset + joined.table.columns.len()).contains(col)
}

/// Runs a query `join_grouping` accepts; None when its data or aggregates
/// do not fit the tight loops (the general path runs).
pub(super) fn run_join_grouped(s: &Select, env: &Env) -> Result<Option<ResultSet>, QueryError> {
    let (Some((keys, aggs)), [j], [first, joined]) =
        (&s.grouping, s.joins.as_slice(), s.sources.as_slice())
    else {
        return Ok(None);
    };
    let ([Expr::Col(col, _)], Some((lcol, rcol))) = (keys.as_slice(), j.equi) else {
        return Ok(None);
    };
    let Some(dict) = col
        .checked_sub(joined.offset)
        .and_then(|c| joined.table.dict(c))
    else {
        return Ok(None);
    };
    let index = env
        .index(joined, rcol)
        .unwrap_or_else(|| Arc::new(ColumnIndex::build(&joined.table, rcol)));
    let table = &first.table;
    let (mut rows, mut groups) = (Vec::new(), Vec::new());
    for i in 0..table.len() as u32 {
        env.limits.interrupt.check()?;
        let Some(key) = table.row(i as usize).get(lcol).filter(|k| !k.is_null()) else {
            continue;
        };
        for r in index.lookup(&key) {
            let Some(&code) = dict.codes.get(r as usize) else {
                continue;
            };
            rows.push(i);
            groups.push(code);
        }
        // Past the join bound the general path says so.
        if rows.len() as u64 > env.limits.max_join_rows.min(env.limits.max_rows_in_memory) {
            return Ok(None);
        }
    }
    Ok(aggregate_columns(
        s,
        env,
        aggs,
        table,
        &dict.values,
        Pairs::Listed { rows, groups },
    ))
}
