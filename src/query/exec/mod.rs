//! Execution of a bound SELECT over rows: join (hash join on an equality,
//! else nested loop under the join limit), filter, group and aggregate,
//! project, DISTINCT, ORDER BY, LIMIT. Expressions follow SQLite's rules
//! (`value.rs`).
//!
//! This file holds the entry points (`run`, `stream`) and the choice, in
//! one place (`choose`), between the ways a query runs (`Strategy`);
//! `eval.rs` evaluates expressions, `join.rs` reads and joins the sources,
//! `aggregate.rs` groups, `order.rs` sorts and cuts the output, `topk.rs`
//! runs ORDER BY ... LIMIT over one table, `explain.rs` describes the plan.
//! The column-wise paths: `column_filter.rs` tests WHERE over column arrays,
//! `dim_join.rs` resolves joins with lookup tables once per distinct value,
//! `join_group.rs` groups by a joined table's column, `rank_limit.rs` keeps
//! the top N per group of a bounded ranking window (`keycol.rs`: sort keys).

mod aggregate;
mod column_filter;
pub(super) mod datetime;
mod dim_join;
mod eval;
mod explain;
mod functions;
mod join;
mod join_group;
pub(super) mod json;
mod keycol;
mod order;
mod printf;
mod rank_limit;
mod setop;
mod subquery;
mod topk;
mod window;

use std::collections::HashSet;
use std::sync::Arc;

use super::ast::{AggCall, Expr, Select, Source};
use super::cells::RowRef;
use super::column_index::ColumnIndex;
use super::error::{ErrorKind, QueryError};
use super::index::{IndexPolicy, Indexes};
use super::table::TypedTable;
use super::value::{Value, ValueRef, with_refs};
use super::{Limits, ResultSet};

use aggregate::{
    DictGrouping, dict_grouping, group_rows, run_grouped_by_dict, run_grouped_streaming,
};
use column_filter::Prefilter;
use eval::{Ctx, Row, eval};
pub use eval::{eval_const, eval_parts, eval_row};
pub use explain::explain;
use join::{first_rows, joined_rows, stream_rows};
use order::{OutRow, finish_output, keep_best, out_row};
pub use setop::{SetOp, combine};
use topk::{TopK, run_top_k, top_k};

/// What execution needs besides the query: limits and the index policy.
pub struct Env<'a> {
    /// The database's name (a metrics label).
    pub db: &'a str,
    pub limits: &'a Limits,
    pub indexes: &'a Indexes,
    pub policy: IndexPolicy,
}

impl Env<'_> {
    /// The index for an equality lookup on `col` of `src`, if the policy
    /// has one (counts the lookup).
    fn index(&self, src: &Source, col: usize) -> Option<Arc<ColumnIndex>> {
        if src.is_derived() {
            return None;
        }
        self.indexes
            .for_lookup(self.policy, &src.name, &src.version, &src.table, col)
    }
}

/// The error of a query whose result cannot be had whole: what it needs
/// held is over `max_rows_in_memory`.
pub fn too_large(limits: &Limits) -> QueryError {
    QueryError::new(
        ErrorKind::TooLarge,
        format!(
            "more than {} rows to hold in memory (max_rows_in_memory): a query that sorts, groups or removes duplicates over that many rows needs a narrower WHERE or a LIMIT",
            limits.max_rows_in_memory
        ),
    )
}

/// Runs a query row by row, handing each output row to `emit` as it is
/// made, so memory stays bounded whatever the result's size: joins nest
/// (each joined table is probed per row) instead of being materialised.
/// Only for queries that need no whole result (no grouping, DISTINCT or
/// ORDER BY): `run` says `Ran::ToStream` for those alone.
pub fn stream(
    s: &Select,
    env: &Env,
    emit: &mut dyn FnMut(&[ValueRef]) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    debug_assert!(streamable(s), "stream is for what run says ToStream");
    let mut skip = s.offset;
    let mut left = s.limit.unwrap_or(u64::MAX);
    if left == 0 {
        return Ok(());
    }
    // Plain columns (up to 16) are handed on borrowed from the table, no
    // value made; else one buffer of values serves every output row.
    const BORROWED: usize = 16;
    let columns: Option<Vec<usize>> = s
        .projection
        .iter()
        .map(|e| match e {
            Expr::Col(c, _) => Some(*c),
            _ => None,
        })
        .collect::<Option<_>>()
        .filter(|c: &Vec<usize>| c.len() <= BORROWED);
    let mut proj: Vec<Value> = Vec::with_capacity(s.projection.len());
    let mut project = |row: &Row| -> Result<bool, QueryError> {
        if skip > 0 {
            skip -= 1;
            return Ok(true);
        }
        match &columns {
            Some(cols) => {
                let mut refs = [ValueRef::Null; BORROWED];
                for (r, &c) in refs.iter_mut().zip(cols) {
                    *r = row.get_ref(c);
                }
                emit(&refs[..cols.len()])?;
            }
            None => {
                let ctx = Ctx::Row(*row);
                proj.clear();
                for e in &s.projection {
                    proj.push(eval(e, &ctx)?);
                }
                with_refs(&proj, |refs| emit(refs))?;
            }
        }
        left -= 1;
        Ok(left > 0)
    };
    stream_rows(s, env, &mut project)?;
    Ok(())
}

/// `Strategy::Buffered`: rows one at a time, holding only what the result
/// needs: the rows seen of DISTINCT, the best `OFFSET + LIMIT` of ORDER BY
/// with LIMIT, the first `OFFSET + LIMIT` rows of a LIMIT. Fails
/// (`TooLarge`) when that is itself over the bound.
fn run_buffered(s: &Select, env: &Env) -> Result<ResultSet, QueryError> {
    let keep = s
        .limit
        .filter(|_| !s.order.is_empty() && !s.distinct)
        .map(|l| s.offset.saturating_add(l).max(1));
    let cap = env.limits.max_rows_in_memory as usize;
    let mut seen: HashSet<Vec<Value>> = HashSet::new();
    let mut out: Vec<OutRow> = Vec::new();
    let mut take = |row: &Row| -> Result<bool, QueryError> {
        let (proj, keys) = out_row(s, &Ctx::Row(*row))?;
        if s.distinct && !seen.insert(proj.clone()) {
            return Ok(true);
        }
        out.push((proj, keys));
        keep_best(s, &mut out, keep);
        if out.len() > cap {
            return Err(too_large(env.limits));
        }
        // Without ORDER BY or DISTINCT, the rows past OFFSET + LIMIT are
        // never needed.
        Ok(!(s.order.is_empty()
            && !s.distinct
            && s.limit
                .is_some_and(|l| out.len() as u64 >= s.offset.saturating_add(l))))
    };
    stream_rows(s, env, &mut take)?;
    Ok(finish_output(s, out))
}

/// Whether `stream` can run the query: nothing needs the whole result.
pub fn streamable(s: &Select) -> bool {
    s.grouping.is_none() && !s.distinct && s.order.is_empty()
}

/// The ways a query runs. `choose` picks one, in one place; `run` runs it.
enum Strategy<'s> {
    /// GROUP BY one column of one table with a dictionary: groups by code
    /// (never over the bound: the dictionary bounds the groups).
    DictGrouped(DictGrouping<'s>),
    /// GROUP BY one dictionary column of the one joined table, aggregates
    /// over the first table's columns (`join_group.rs`): each first-table
    /// row's matches give its groups; no joined row is made.
    JoinGrouped,
    /// ORDER BY plain columns with LIMIT over one table: one scan keeping
    /// the best `OFFSET + LIMIT` row numbers, only those projected
    /// (`topk.rs`); never more rows held than that.
    TopK(TopK<'s>),
    /// Every joined, filtered row held (by reference), then grouped or
    /// projected: the fast path, while the rows fit `max_rows_in_memory`.
    InMemory,
    /// Grouped, rows too many to hold: they stream into the groups, which
    /// are all that is held.
    GroupedStreaming {
        keys: &'s [Expr],
        aggs: &'s [AggCall],
    },
    /// Rows too many to hold for DISTINCT, ORDER BY or LIMIT: they stream,
    /// only what the result needs is held (`run_buffered`).
    Buffered,
    /// Rows too many to hold, each output row on its own: the caller
    /// streams them (`stream`, `Engine::query_to`); `run` says `ToStream`.
    Streamed,
}

/// How `s` runs: from the query's shape and whether its rows fit in
/// memory (`rows_fit`: false once `run_in_memory` found more rows than
/// `limits.max_rows_in_memory`).
fn choose<'s>(s: &'s Select, limits: &Limits, rows_fit: bool) -> Strategy<'s> {
    // (Not after the rows did not fit: dictionary grouping was chosen
    // first then, and gave way because a join was not a dimension join.)
    if rows_fit && let Some(d) = dict_grouping(s) {
        return Strategy::DictGrouped(d);
    }
    if rows_fit && join_group::join_grouping(s) {
        return Strategy::JoinGrouped;
    }
    if let Some(t) = top_k(s, limits) {
        return Strategy::TopK(t);
    }
    if rows_fit {
        return Strategy::InMemory;
    }
    match &s.grouping {
        Some((keys, aggs)) => Strategy::GroupedStreaming { keys, aggs },
        // A LIMIT within the bound is held (`Buffered` stops at it).
        None if streamable(s)
            && s.limit
                .is_none_or(|l| s.offset.saturating_add(l) > limits.max_rows_in_memory) =>
        {
            Strategy::Streamed
        }
        None => Strategy::Buffered,
    }
}

/// What `run` gave.
pub enum Ran {
    Whole(ResultSet),
    /// Rows too many to hold, each output row on its own: the caller
    /// streams them (`stream`) or, needing the result whole, fails
    /// (`too_large`).
    ToStream,
}

/// Runs a bound SELECT to completion, the way `choose` picks. `TooLarge`:
/// what the result needs held is over `max_rows_in_memory`.
pub fn run(s: &Select, env: &Env) -> Result<Ran, QueryError> {
    let mut strategy = choose(s, env.limits, true);
    loop {
        return match strategy {
            Strategy::DictGrouped(d) => match run_grouped_by_dict(s, env, d)? {
                Some(result) => Ok(Ran::Whole(result)),
                None => {
                    strategy = Strategy::InMemory;
                    continue;
                }
            },
            Strategy::JoinGrouped => match join_group::run_join_grouped(s, env)? {
                Some(result) => Ok(Ran::Whole(result)),
                None => {
                    strategy = Strategy::InMemory;
                    continue;
                }
            },
            Strategy::TopK(t) => run_top_k(s, env, &t).map(Ran::Whole),
            Strategy::InMemory => match run_in_memory(s, env)? {
                Some(result) => Ok(Ran::Whole(result)),
                // Window functions need every row at once.
                None if !s.windows.is_empty() && s.grouping.is_none() => Err(too_large(env.limits)),
                None => {
                    strategy = choose(s, env.limits, false);
                    continue;
                }
            },
            Strategy::GroupedStreaming { keys, aggs } => {
                run_grouped_streaming(s, env, keys, aggs).map(Ran::Whole)
            }
            Strategy::Buffered => run_buffered(s, env).map(Ran::Whole),
            Strategy::Streamed => Ok(Ran::ToStream),
        };
    }
}

/// `run` for a caller that needs the whole result (a subquery, INSERT ...
/// SELECT): a result to stream is `TooLarge`.
pub fn run_whole(s: &Select, env: &Env) -> Result<ResultSet, QueryError> {
    match run(s, env)? {
        Ran::Whole(result) => Ok(result),
        Ran::ToStream => Err(too_large(env.limits)),
    }
}

/// `Strategy::InMemory`; None: more rows than `max_rows_in_memory` (joined,
/// or filtered without grouping nor ORDER BY with LIMIT).
fn run_in_memory(s: &Select, env: &Env) -> Result<Option<ResultSet>, QueryError> {
    let offsets: Vec<usize> = if s.sources.is_empty() {
        vec![0]
    } else {
        s.sources.iter().map(|src| src.offset).collect()
    };
    let stride = offsets.len();
    // The conjuncts of WHERE tested column-wise go first; `filter` is
    // what is left to test per row.
    let pre = column_filter::prefilter(s, env)?;
    let filter = match &pre {
        Some(p) => p.residual.as_ref(),
        None => s.filter.as_ref(),
    };
    if let [src] = s.sources.as_slice()
        && s.joins.is_empty()
        && s.grouping.is_none()
        && s.windows.is_empty()
    {
        return project_one_table(s, env, &src.table, pre.as_ref(), filter);
    }
    let flat: Vec<RowRef> = if let Some(ids) = rank_limit::table_rows(s, env, pre.as_ref())? {
        let table = &s.sources[0].table;
        ids.into_iter().map(|i| table.row(i as usize)).collect()
    } else if s.joins.is_empty() {
        first_rows(s, pre.as_ref())?
    } else {
        match joined_rows(s, env, &offsets, pre.as_ref())? {
            Some(rows) => rows,
            None => return Ok(None),
        }
    };
    let mut rows: Vec<Row> = Vec::with_capacity(flat.len() / stride);
    for parts in flat.chunks_exact(stride) {
        env.limits.interrupt.check()?;
        let row = Row {
            parts,
            offsets: &offsets,
        };
        if let Some(f) = filter
            && eval(f, &Ctx::Row(row))?.truth() != Some(true)
        {
            continue;
        }
        rows.push(row);
    }
    // (output row, sort keys) pairs.
    let mut out: Vec<OutRow> = Vec::new();
    match &s.grouping {
        None => {
            // ORDER BY with LIMIT keeps only the best offset + limit rows
            // (sorting and cutting whenever twice that many are held).
            let keep = s
                .limit
                .filter(|_| !s.order.is_empty() && !s.distinct)
                .map(|l| s.offset.saturating_add(l).max(1));
            if rows.len() as u64 > env.limits.max_rows_in_memory
                && (keep.is_none() || !s.windows.is_empty())
            {
                return Ok(None);
            }
            if !s.windows.is_empty() {
                let ctxs: Vec<Ctx> = rows.iter().map(|&r| Ctx::Row(r)).collect();
                out = window::project_windowed(s, env, &ctxs)?;
            }
            for &r in rows.iter().filter(|_| s.windows.is_empty()) {
                env.limits.interrupt.check()?;
                let (proj, keys) = out_row(s, &Ctx::Row(r))?;
                out.push((proj, keys));
                keep_best(s, &mut out, keep);
            }
        }
        Some((keys, aggs)) => {
            out = group_rows(s, env, keys, aggs, &rows)?;
        }
    }
    Ok(Some(finish_output(s, out)))
}

/// `run_in_memory` over one table without grouping or windows: each row
/// that passes is projected as it is read, so nothing but the output is
/// held. None: more rows pass than `max_rows_in_memory` and the query
/// does not keep only the best `OFFSET + LIMIT`.
fn project_one_table(
    s: &Select,
    env: &Env,
    table: &TypedTable,
    pre: Option<&Prefilter>,
    filter: Option<&Expr>,
) -> Result<Option<ResultSet>, QueryError> {
    let keep = s
        .limit
        .filter(|_| !s.order.is_empty() && !s.distinct)
        .map(|l| s.offset.saturating_add(l).max(1));
    let ids: Box<dyn Iterator<Item = u32>> = match pre.map(|p| &p.ids) {
        Some(ids) => Box::new(ids.iter().copied()),
        None => Box::new(0..table.len() as u32),
    };
    // Without ORDER BY or DISTINCT the rows are the output as they come:
    // OFFSET skipped, and nothing read past LIMIT.
    let plain = s.order.is_empty() && !s.distinct;
    let mut skip = if plain { s.offset } else { 0 };
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut out: Vec<OutRow> = Vec::new();
    let mut passed = 0u64;
    for id in ids {
        if plain && s.limit.is_some_and(|l| rows.len() as u64 >= l) {
            break;
        }
        env.limits.interrupt.check()?;
        let parts = [table.row(id as usize)];
        let row = Row {
            parts: &parts,
            offsets: &[0],
        };
        if let Some(f) = filter
            && eval(f, &Ctx::Row(row))?.truth() != Some(true)
        {
            continue;
        }
        passed += 1;
        if passed > env.limits.max_rows_in_memory && keep.is_none() {
            return Ok(None);
        }
        if plain {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let ctx = Ctx::Row(row);
            rows.push(
                s.projection
                    .iter()
                    .map(|e| eval(e, &ctx))
                    .collect::<Result<_, _>>()?,
            );
            continue;
        }
        out.push(out_row(s, &Ctx::Row(row))?);
        keep_best(s, &mut out, keep);
    }
    if plain {
        return Ok(Some(ResultSet {
            columns: s.names.clone(),
            rows,
        }));
    }
    Ok(Some(finish_output(s, out)))
}
