//! Reading the sources: the first table's rows (through an index when the
//! filter allows), joins materialised (hash join or bounded nested loop)
//! or streamed one joined row at a time.

use std::sync::Arc;

use super::super::Limits;
use super::super::ast::{CmpOp, Expr, Select};
use super::super::cells::RowRef;
use super::super::column_index::ColumnIndex;
use super::super::error::{ErrorKind, QueryError};
use super::super::value::{Type, Value};
use super::Env;
use super::column_filter::{Prefilter, prefilter};
use super::eval::{Ctx, Row, eval};

/// Row numbers of the first source that can satisfy the filter: through a
/// hash index when the filter requires `column = constant` of that source
/// and the column has one (anything else in the filter is checked later),
/// else all of them.
pub(super) fn first_ids(s: &Select, env: &Env) -> Option<Vec<u32>> {
    let first = s.sources.first()?;
    let width = first.table.columns.len();
    let ix = s
        .filter
        .as_ref()
        .and_then(|f| index_probe(f, width))
        .and_then(|(col, key)| Some((env.index(first, col)?, key)));
    if !first.is_derived() {
        let access = if ix.is_some() { "index" } else { "scan" };
        let m = crate::metrics::global();
        crate::metrics::inc(&m.table_access, &[env.db, access]);
    }
    let (ix, key) = ix?;
    Some(ix.lookup(&key).collect())
}

/// Rows of the first source that can satisfy the filter: those `pre`
/// (`prefilter`, which made the index lookup if one applies) let through,
/// every row without one.
pub(super) fn first_rows<'t>(
    s: &'t Select,
    pre: Option<&Prefilter>,
) -> Result<Vec<RowRef<'t>>, QueryError> {
    let Some(first) = s.sources.first() else {
        // SELECT without FROM: one empty row.
        return Ok(vec![RowRef::Values(&[])]);
    };
    let table = &first.table;
    Ok(match pre {
        Some(pre) => pre.ids.iter().map(|&i| table.row(i as usize)).collect(),
        None => table.rows().collect(),
    })
}

/// A conjunct `Col(c) = constant` of the filter with `c` in the first
/// source: (column, the constant with the column's affinity).
pub(super) fn index_probe(filter: &Expr, width: usize) -> Option<(usize, Value)> {
    match filter {
        Expr::And(a, b) => index_probe(a, width).or_else(|| index_probe(b, width)),
        Expr::Cmp(CmpOp::Eq, a, b, coerce) => {
            let (col, ty, lit, lit_coerce) = match (&**a, &**b) {
                (Expr::Col(c, t), Expr::Lit(v)) => (*c, *t, v, coerce.1),
                (Expr::Lit(v), Expr::Col(c, t)) => (*c, *t, v, coerce.0),
                _ => return None,
            };
            if col >= width || lit.is_null() {
                return None;
            }
            let key = match lit_coerce {
                Some(t) => lit.clone().with_affinity(t),
                None => lit.clone(),
            };
            // The index holds values as stored: only a key of the same
            // class as the column's values can find them.
            let same = matches!(
                (ty, &key),
                (
                    Some(Type::Integer | Type::Real),
                    Value::Int(_) | Value::Real(_)
                ) | (Some(Type::Text), Value::Text(_))
            );
            same.then_some((col, key))
        }
        _ => None,
    }
}

/// Joins the sources: the result holds, for each joined row, one slice per
/// source (`stride` = the number of sources), so nothing is copied. None:
/// a join makes more rows than `max_rows_in_memory`.
pub(super) fn joined_rows<'t>(
    s: &'t Select,
    env: &Env,
    offsets: &'t [usize],
    pre: Option<&Prefilter>,
) -> Result<Option<Vec<RowRef<'t>>>, QueryError> {
    let limits = env.limits;
    let mut rows: Vec<RowRef<'t>> = first_rows(s, pre)?;
    for (n, (j, src)) in s.joins.iter().zip(&s.sources[1..]).enumerate() {
        let stride = n + 1;
        let right = &src.table;
        let mut out: Vec<RowRef<'t>> = Vec::new();
        let mut count = 0u64;
        let mut buf: Vec<RowRef> = Vec::with_capacity(stride + 1);
        // A hash join: the joined column's index, or a throwaway one.
        let hash = j.equi.map(|(_, rcol)| {
            env.index(src, rcol)
                .unwrap_or_else(|| Arc::new(ColumnIndex::build(right, rcol)))
        });
        if j.equi.is_none() {
            let product = (rows.len() / stride) as u64 * right.len().max(1) as u64;
            if product > limits.max_join_rows.saturating_mul(4) {
                return Err(QueryError::new(
                    ErrorKind::Limit,
                    format!(
                        "join with {} has no equality condition: up to {product} rows, more than query.max_join_rows ({})",
                        src.name, limits.max_join_rows
                    ),
                ));
            }
        }
        for left in rows.chunks_exact(stride) {
            limits.interrupt.check()?;
            let mut matched = false;
            let left_row = Row {
                parts: left,
                offsets,
            };
            // A hash join probes the joined table's index of its column;
            // when ON is just that equality, a match needs no more checking.
            let mut visit = |i: usize, checked: bool| -> Result<(), QueryError> {
                limits.interrupt.check()?;
                let r = right.row(i);
                let ok = checked
                    || match &j.on {
                        None => true,
                        Some(on) => {
                            buf.clear();
                            buf.extend_from_slice(left);
                            buf.push(r);
                            eval(
                                on,
                                &Ctx::Row(Row {
                                    parts: &buf,
                                    offsets,
                                }),
                            )?
                            .truth()
                                == Some(true)
                        }
                    };
                if ok {
                    matched = true;
                    count += 1;
                    out.extend_from_slice(left);
                    out.push(r);
                }
                Ok(())
            };
            match (j.equi, &hash) {
                (Some((lcol, _)), Some(hash)) => {
                    if let Some(k) = left_row.get(lcol).filter(|k| !k.is_null()) {
                        for i in hash.lookup(&k) {
                            visit(i as usize, j.on_is_equi)?;
                        }
                    }
                }
                _ => {
                    for i in 0..right.len() {
                        visit(i, false)?;
                    }
                }
            }
            if !matched && j.left {
                count += 1;
                out.extend_from_slice(left);
                out.push(RowRef::Empty);
            }
            if count > limits.max_rows_in_memory {
                return Ok(None);
            }
            if count > limits.max_join_rows {
                return Err(QueryError::new(
                    ErrorKind::Limit,
                    format!(
                        "the join with {} makes more than {} rows (query.max_join_rows)",
                        src.name, limits.max_join_rows
                    ),
                ));
            }
        }
        rows = out;
    }
    Ok(Some(rows))
}

/// Every joined row that passes the filter, one at a time, to `take`
/// (which returns false to stop).
pub(super) fn stream_rows(
    s: &Select,
    env: &Env,
    take: &mut dyn FnMut(&Row) -> Result<bool, QueryError>,
) -> Result<(), QueryError> {
    let offsets: Vec<usize> = if s.sources.is_empty() {
        vec![0]
    } else {
        s.sources.iter().map(|src| src.offset).collect()
    };
    let mut hashes = Vec::with_capacity(s.joins.len());
    for (j, src) in s.joins.iter().zip(s.sources.iter().skip(1)) {
        hashes.push(j.equi.map(|(_, rcol)| {
            env.index(src, rcol)
                .unwrap_or_else(|| Arc::new(ColumnIndex::build(&src.table, rcol)))
        }));
    }
    // WHERE's conjuncts over the first table tested column-wise first;
    // the rest per joined row.
    let (ids, residual) = match prefilter(s, env)? {
        Some(p) => (Some(p.ids), p.residual),
        None => (None, s.filter.clone()),
    };
    let mut st = Streamer {
        s,
        filter: residual.as_ref(),
        limits: env.limits,
        offsets: &offsets,
        hashes: &hashes,
        joined: 0,
        take,
    };
    // The first table's rows one at a time, never all made at once.
    let firsts: Box<dyn Iterator<Item = RowRef>> = match s.sources.first() {
        None => Box::new(std::iter::once(RowRef::Values(&[]))),
        Some(first) => {
            let table = &first.table;
            match ids {
                Some(ids) => Box::new(ids.into_iter().map(move |i| table.row(i as usize))),
                None => Box::new(table.rows()),
            }
        }
    };
    let mut parts: Vec<RowRef> = Vec::with_capacity(offsets.len());
    for first in firsts {
        parts.push(first);
        let go_on = st.level(0, &mut parts)?;
        parts.pop();
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// The state of `stream`: one joined row is built in `parts` at a time.
struct Streamer<'a, 'e> {
    s: &'a Select,
    /// What of WHERE is left to test per joined row.
    filter: Option<&'a Expr>,
    limits: &'a Limits,
    offsets: &'a [usize],
    hashes: &'a [Option<Arc<ColumnIndex>>],
    joined: u64,
    take: &'e mut dyn FnMut(&Row) -> Result<bool, QueryError>,
}

impl<'a> Streamer<'a, '_> {
    /// Extends the row in `parts` by join `level` onward; false: stop (the
    /// LIMIT is reached).
    fn level(&mut self, level: usize, parts: &mut Vec<RowRef<'a>>) -> Result<bool, QueryError> {
        let s = self.s;
        if level == s.joins.len() {
            return self.output(parts);
        }
        let (j, right) = (&s.joins[level], &s.sources[level + 1].table);
        let mut matched = false;
        // Probing borrows the index (held for the whole query), not `self`
        // or the row being built, so the matches stream without a copy.
        let hashes = self.hashes;
        let probe = match (j.equi, &hashes[level]) {
            (Some((lcol, _)), Some(hash)) => {
                let row = Row {
                    parts,
                    offsets: self.offsets,
                };
                // NULL is in no index: no match.
                Some(hash.lookup(&row.get(lcol).unwrap_or(Value::Null)))
            }
            _ => None,
        };
        let scan = if probe.is_none() {
            0..right.len()
        } else {
            0..0
        };
        let candidates = probe.into_iter().flatten().map(|i| i as usize).chain(scan);
        for i in candidates {
            self.limits.interrupt.check()?;
            parts.push(right.row(i));
            let ok = (j.equi.is_some() && j.on_is_equi)
                || match &j.on {
                    None => true,
                    Some(on) => {
                        let row = Row {
                            parts,
                            offsets: self.offsets,
                        };
                        eval(on, &Ctx::Row(row))?.truth() == Some(true)
                    }
                };
            let go_on = if ok {
                matched = true;
                self.count_joined()?;
                self.level(level + 1, parts)?
            } else {
                true
            };
            parts.pop();
            if !go_on {
                return Ok(false);
            }
        }
        if !matched && j.left {
            parts.push(RowRef::Empty);
            self.count_joined()?;
            let go_on = self.level(level + 1, parts)?;
            parts.pop();
            return Ok(go_on);
        }
        Ok(true)
    }

    fn count_joined(&mut self) -> Result<(), QueryError> {
        self.joined += 1;
        if self.joined > self.limits.max_join_rows {
            return Err(QueryError::new(
                ErrorKind::Limit,
                format!(
                    "the joins make more than {} rows (query.max_join_rows)",
                    self.limits.max_join_rows
                ),
            ));
        }
        Ok(())
    }

    /// A whole joined row: filtered, then taken.
    fn output(&mut self, parts: &[RowRef]) -> Result<bool, QueryError> {
        self.limits.interrupt.check()?;
        let row = Row {
            parts,
            offsets: self.offsets,
        };
        if let Some(f) = self.filter
            && eval(f, &Ctx::Row(row))?.truth() != Some(true)
        {
            return Ok(true);
        }
        (self.take)(&row)
    }
}
