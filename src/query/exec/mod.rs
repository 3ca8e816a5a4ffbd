//! Execution of a bound SELECT over rows: join (hash join on an equality,
//! else nested loop under the join limit), filter, group and aggregate,
//! project, DISTINCT, ORDER BY, LIMIT. Expressions follow SQLite's rules
//! (`value.rs`).
//!
//! This file holds the entry points (`run`, `stream`, `run_streaming`) and
//! the choice between the ways a query runs; `eval.rs` evaluates
//! expressions, `join.rs` reads and joins the sources, `aggregate.rs`
//! groups, `order.rs` sorts and cuts the output, `explain.rs` describes
//! the plan.

mod aggregate;
mod eval;
mod explain;
mod join;
mod order;

use std::collections::HashSet;
use std::sync::Arc;

use super::ast::{Expr, Select, Source};
use super::error::{ErrorKind, QueryError};
use super::index::{IndexPolicy, Indexes};
use super::table::ColumnIndex;
use super::value::{FastMap, Value};
use super::{Limits, ResultSet};

use aggregate::{
    GroupState, feed, groups_to_rows, new_acc, run_grouped_by_dict, run_grouped_streaming,
};
use eval::{Ctx, Row, eval};
pub use eval::{eval_const, eval_row};
pub use explain::explain;
use join::{first_rows, joined_rows, stream_rows};
use order::{OutRow, finish_output, keep_best, out_row};

/// What execution needs besides the query: limits and the index policy.
pub struct Env<'a> {
    pub limits: &'a Limits,
    pub indexes: &'a Indexes,
    pub policy: IndexPolicy,
}

impl Env<'_> {
    /// The index for an equality lookup on `col` of `src`, if the policy
    /// has one (counts the lookup).
    fn index(&self, src: &Source, col: usize) -> Option<Arc<ColumnIndex>> {
        self.indexes
            .for_lookup(self.policy, &src.name, &src.version, &src.table, col)
    }
}

fn too_large(limits: &Limits) -> QueryError {
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
/// ORDER BY): returns false, having done nothing, for others.
pub fn stream(
    s: &Select,
    env: &Env,
    emit: &mut dyn FnMut(&[Value]) -> Result<(), QueryError>,
) -> Result<bool, QueryError> {
    if !streamable(s) {
        return Ok(false);
    }
    let mut skip = s.offset;
    let mut left = s.limit.unwrap_or(u64::MAX);
    if left == 0 {
        return Ok(true);
    }
    let mut project = |row: &Row| -> Result<bool, QueryError> {
        if skip > 0 {
            skip -= 1;
            return Ok(true);
        }
        let ctx = Ctx::Row(*row);
        let proj: Vec<Value> = s
            .projection
            .iter()
            .map(|e| eval(e, &ctx))
            .collect::<Result<_, _>>()?;
        emit(&proj)?;
        left -= 1;
        Ok(left > 0)
    };
    stream_rows(s, env, &mut project)?;
    Ok(true)
}

/// A query over more rows than `max_rows_in_memory` (`TooLarge` from
/// `run`), computed from rows streamed one at a time, holding only what
/// its result needs: the groups of a grouping, the rows seen of DISTINCT,
/// the best `OFFSET + LIMIT` of ORDER BY with LIMIT. Fails (`TooLarge`)
/// when that is itself over the bound.
pub fn run_streaming(s: &Select, env: &Env) -> Result<ResultSet, QueryError> {
    match run_grouped_streaming(s, env)? {
        Some(r) => Ok(r),
        None => run_buffered(s, env),
    }
}

/// `run_streaming` for a query without grouping.
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

/// Runs a bound SELECT to completion.
pub fn run(s: &Select, env: &Env) -> Result<ResultSet, QueryError> {
    if let Some(result) = run_grouped_by_dict(s, env)? {
        return Ok(result);
    }
    let offsets: Vec<usize> = if s.sources.is_empty() {
        vec![0]
    } else {
        s.sources.iter().map(|src| src.offset).collect()
    };
    let stride = offsets.len();
    let flat: Vec<&[Value]> = if s.joins.is_empty() {
        first_rows(s, env)?
    } else {
        joined_rows(s, env, &offsets)?
    };
    let mut rows: Vec<Row> = Vec::with_capacity(flat.len() / stride);
    for parts in flat.chunks_exact(stride) {
        env.limits.interrupt.check()?;
        let row = Row {
            parts,
            offsets: &offsets,
        };
        if let Some(f) = &s.filter
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
            if rows.len() as u64 > env.limits.max_rows_in_memory && keep.is_none() {
                // A result to stream whole is the caller's (`query_to`);
                // else rows pass one at a time, only what is needed held.
                return if streamable(s) && s.limit.is_none() {
                    Err(too_large(env.limits))
                } else {
                    run_buffered(s, env)
                };
            }
            for &r in &rows {
                env.limits.interrupt.check()?;
                let (proj, keys) = out_row(s, &Ctx::Row(r))?;
                out.push((proj, keys));
                keep_best(s, &mut out, keep);
            }
        }
        Some((keys, aggs)) => {
            // Groups by key: a single plain column is looked up by reference
            // (no key is built per row); anything else by its values.
            let mut by_ref: FastMap<&Value, usize> = FastMap::default();
            let mut by_value: FastMap<Vec<Value>, usize> = FastMap::default();
            let single_col = match keys.as_slice() {
                [Expr::Col(i, _)] => Some(*i),
                _ => None,
            };
            let mut states: Vec<GroupState> = Vec::new();
            let null = Value::Null;
            for &r in &rows {
                env.limits.interrupt.check()?;
                let found = match single_col {
                    Some(i) => by_ref.get(r.get(i).unwrap_or(&null)).copied(),
                    None => {
                        let key: Vec<Value> = keys
                            .iter()
                            .map(|k| eval(k, &Ctx::Row(r)))
                            .collect::<Result<_, _>>()?;
                        by_value.get(&key).copied()
                    }
                };
                let g = match found {
                    Some(g) => g,
                    None => {
                        let key: Vec<Value> = keys
                            .iter()
                            .map(|k| eval(k, &Ctx::Row(r)))
                            .collect::<Result<_, _>>()?;
                        states.push((
                            key.clone(),
                            aggs.iter().map(new_acc).collect(),
                            vec![HashSet::new(); aggs.len()],
                        ));
                        match single_col {
                            Some(i) => {
                                by_ref.insert(r.get(i).unwrap_or(&null), states.len() - 1);
                            }
                            None => {
                                by_value.insert(key, states.len() - 1);
                            }
                        }
                        states.len() - 1
                    }
                };
                feed(aggs, &mut states[g], r)?;
            }
            out = groups_to_rows(s, keys.is_empty(), aggs, states)?;
        }
    }
    Ok(finish_output(s, out))
}
