//! The output rows: projection and sort keys, ORDER BY (with top-k for a
//! LIMIT), DISTINCT, OFFSET and LIMIT.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::super::ResultSet;
use super::super::ast::Select;
use super::super::error::QueryError;
use super::super::value::Value;
use super::eval::{Ctx, eval};

/// An output row and its ORDER BY keys.
pub(super) type OutRow = (Vec<Value>, Vec<Value>);

/// A row's projection and its ORDER BY keys.
pub(super) fn out_row(s: &Select, ctx: &Ctx) -> Result<OutRow, QueryError> {
    let proj = s
        .projection
        .iter()
        .map(|e| eval(e, ctx))
        .collect::<Result<_, _>>()?;
    let keys = s
        .order
        .iter()
        .map(|o| eval(&o.expr, ctx))
        .collect::<Result<_, _>>()?;
    Ok((proj, keys))
}

/// ORDER BY with LIMIT: keeps only the best `keep` (= OFFSET + LIMIT)
/// rows, sorting and cutting whenever twice that many are held.
pub(super) fn keep_best(s: &Select, out: &mut Vec<OutRow>, keep: Option<u64>) {
    if let Some(k) = keep
        && out.len() as u64 >= 2 * k
    {
        sort_out(s, out);
        out.truncate(k as usize);
    }
}

/// Sorts output rows by ORDER BY (stable; nothing when there is none).
fn sort_out(s: &Select, out: &mut [OutRow]) {
    if s.order.is_empty() {
        return;
    }
    out.sort_by(|(_, a), (_, b)| {
        for (k, o) in s.order.iter().enumerate() {
            let (x, y) = (&a[k], &b[k]);
            let ord = key_order(x.is_null(), y.is_null(), o.nulls_first, o.desc, || {
                x.sort_cmp(y)
            });
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
}

/// The order of two values of one ORDER BY key, given whether each is
/// NULL and, for two non-NULL ones, their ascending order (`cmp`): NULLs
/// first or last as the key says, then DESC reverses. The one rule of
/// every ordering path (the sort here, top-k).
pub(super) fn key_order(
    a_null: bool,
    b_null: bool,
    nulls_first: bool,
    desc: bool,
    cmp: impl FnOnce() -> Ordering,
) -> Ordering {
    match (a_null, b_null) {
        (true, true) => Ordering::Equal,
        (true, false) if nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if desc => cmp().reverse(),
        (false, false) => cmp(),
    }
}

/// DISTINCT, ORDER BY, OFFSET and LIMIT over (output row, sort keys).
pub(super) fn finish_output(s: &Select, mut out: Vec<OutRow>) -> ResultSet {
    if s.distinct {
        let mut seen = HashSet::new();
        out.retain(|(p, _)| seen.insert(p.clone()));
    }
    sort_out(s, &mut out);
    let rows: Vec<Vec<Value>> = out
        .into_iter()
        .map(|(p, _)| p)
        .skip(s.offset as usize)
        .take(s.limit.map_or(usize::MAX, |l| l as usize))
        .collect();
    ResultSet {
        columns: s.names.clone(),
        rows,
    }
}
