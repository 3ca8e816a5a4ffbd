//! `Select::rank_limit`: the rows a ROW_NUMBER, RANK or DENSE_RANK puts at
//! or under a bound, found in one pass without sorting every row (the
//! "top N per group" of `WHERE rn <= N` over a subquery).
//!
//! Each partition keeps a list of its best rows in window order (ties in
//! the order the rows came, as the window's stable sort has them), cut
//! after every insertion to what the function can still rank at or under
//! the bound: ROW_NUMBER the first `max`; RANK those with fewer than `max`
//! rows strictly before them (the `max`-th row's peers stay); DENSE_RANK
//! those among the first `max` distinct keys. Every row ranked at or under
//! the bound is kept, and every row before a kept one in its partition is
//! kept too, so the window computed over the kept rows alone gives each of
//! them the value it has over all rows.

use std::cmp::Ordering;

use super::super::ast::{RankLimit, Select, WinFunc, WindowCall};
use super::super::error::QueryError;
use super::super::value::FastMap;
use super::Env;
use super::column_filter::Prefilter;
use super::eval::Ctx;
use super::keycol::KeyCol;

/// Most rows past `max` a partition's list holds (peers of its last kept
/// row) before the one pass gives up for the whole sort: it bounds the
/// cost of each insertion.
const MAX_TIES: usize = 256;

/// The positions in `ctxs` (ascending) of the rows `limit` keeps; None
/// when a partition has more peers at the bound than `MAX_TIES` (then
/// every row goes through the window).
pub(super) fn candidates(
    call: &WindowCall,
    limit: RankLimit,
    env: &Env,
    ctxs: &[Ctx],
) -> Result<Option<Vec<u32>>, QueryError> {
    let part: Vec<KeyCol> = call
        .partition
        .iter()
        .map(|e| KeyCol::of(e, env, ctxs))
        .collect::<Result<_, _>>()?;
    let order: Vec<(KeyCol, bool, bool)> = call
        .order
        .iter()
        .map(|o| KeyCol::of(&o.expr, env, ctxs).map(|k| (k, o.nulls_first, o.desc)))
        .collect::<Result<_, _>>()?;
    candidates_by(call, limit, env, &part, &order, ctxs.len())
}

/// The rows of a query over one table without joins or grouping that a
/// rank limit keeps, its keys read from the table's columns in place
/// (`KeyCol::of_table`), so rows over the bound are never made; None when
/// the query is not of that shape, its WHERE is not all tested
/// column-wise (`pre`), or a key is not such a column.
pub(super) fn table_rows(
    s: &Select,
    env: &Env,
    pre: Option<&Prefilter>,
) -> Result<Option<Vec<u32>>, QueryError> {
    let (Some(limit), [src], true, None) = (
        s.rank_limit,
        s.sources.as_slice(),
        s.joins.is_empty(),
        &s.grouping,
    ) else {
        return Ok(None);
    };
    let ids = match (&s.filter, pre) {
        (None, _) => None,
        (Some(_), Some(p)) if p.residual.is_none() => Some(p.ids.as_slice()),
        _ => return Ok(None),
    };
    let Some(call) = s.windows.get(limit.call) else {
        return Ok(None);
    };
    let table = &src.table;
    let part: Option<Vec<KeyCol>> = call
        .partition
        .iter()
        .map(|e| KeyCol::of_table(e, table, ids))
        .collect();
    let order: Option<Vec<(KeyCol, bool, bool)>> = call
        .order
        .iter()
        .map(|o| KeyCol::of_table(&o.expr, table, ids).map(|k| (k, o.nulls_first, o.desc)))
        .collect();
    let (Some(part), Some(order)) = (part, order) else {
        return Ok(None);
    };
    let n = ids.map_or(table.len(), <[u32]>::len);
    let kept = candidates_by(call, limit, env, &part, &order, n)?;
    // Positions are into `ids` when there are some.
    Ok(kept.map(|positions| match ids {
        Some(ids) => positions
            .into_iter()
            .filter_map(|p| ids.get(p as usize).copied())
            .collect(),
        None => positions,
    }))
}

/// `candidates` over keys by position (`n` positions).
fn candidates_by(
    call: &WindowCall,
    limit: RankLimit,
    env: &Env,
    part: &[KeyCol],
    order: &[(KeyCol, bool, bool)],
    n: usize,
) -> Result<Option<Vec<u32>>, QueryError> {
    let cmp = |a: u32, b: u32| {
        for (k, nulls_first, desc) in order {
            let c = k.order(a, b, *nulls_first, *desc);
            if c.is_ne() {
                return c;
            }
        }
        Ordering::Equal
    };
    let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
    let (part_of, parts) = partitions(part, n);
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); parts];
    for i in 0..n as u32 {
        env.limits.interrupt.check()?;
        let p = part_of
            .as_ref()
            .map_or(Some(0), |p| p.get(i as usize).copied());
        let Some(list) = p.and_then(|p| lists.get_mut(p as usize)) else {
            continue;
        };
        // A row after every kept row of a full list is never kept (a
        // peer of the last comes after it, so ROW_NUMBER drops it too).
        if list.len() >= max
            && let Some(&last) = list.last()
        {
            let skip = match call.func {
                WinFunc::RowNumber => cmp(i, last).is_ge(),
                WinFunc::Rank => cmp(i, last).is_gt(),
                _ => false,
            };
            if skip {
                continue;
            }
        }
        let at = list.partition_point(|&x| cmp(x, i) != Ordering::Greater);
        list.insert(at, i);
        cut(call, list, max, &cmp);
        if list.len() > max.saturating_add(MAX_TIES) {
            return Ok(None);
        }
    }
    let mut out: Vec<u32> = lists.into_iter().flatten().collect();
    out.sort_unstable();
    Ok(Some(out))
}

/// Each position's partition number (None: one partition) and how many
/// partitions: a dictionary column's codes are the numbers, other keys
/// refine them through a map.
fn partitions(part: &[KeyCol], n: usize) -> (Option<Vec<u32>>, usize) {
    let Some(first) = part.first() else {
        return (None, 1);
    };
    let mut parts = first.codes();
    let mut part_of: Vec<u32> = if parts > 0 {
        (0..n as u32).map(|i| first.code(i).unwrap_or(0)).collect()
    } else {
        parts = 1;
        vec![0; n]
    };
    let rest = if first.codes() > 0 { &part[1..] } else { part };
    for k in rest {
        let mut ids: FastMap<(u32, Option<i64>), u32> = FastMap::default();
        for (i, p) in part_of.iter_mut().enumerate() {
            let next = ids.len() as u32;
            *p = *ids.entry((*p, k.get(i as u32))).or_insert(next);
        }
        parts = ids.len();
    }
    (Some(part_of), parts)
}

/// Cuts a partition's sorted list to the rows `call` can rank at or under
/// `max`.
fn cut(call: &WindowCall, list: &mut Vec<u32>, max: usize, cmp: &dyn Fn(u32, u32) -> Ordering) {
    match call.func {
        WinFunc::Rank => {
            // Rows past the max-th that are not its peers rank over max.
            if let Some(&kth) = max.checked_sub(1).and_then(|m| list.get(m)) {
                let keep = max
                    + list[max..]
                        .iter()
                        .take_while(|&&x| cmp(x, kth).is_eq())
                        .count();
                list.truncate(keep);
            } else if max == 0 {
                list.clear();
            }
        }
        WinFunc::DenseRank => {
            // The start of the (max + 1)-th distinct key.
            let mut distinct = 0;
            let mut keep = list.len();
            for (n, &x) in list.iter().enumerate() {
                if n == 0 || cmp(list[n - 1], x).is_ne() {
                    distinct += 1;
                    if distinct > max {
                        keep = n;
                        break;
                    }
                }
            }
            list.truncate(keep);
        }
        _ => list.truncate(max),
    }
}
