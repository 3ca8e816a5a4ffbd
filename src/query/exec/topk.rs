//! `Strategy::TopK`: ORDER BY plain columns with a LIMIT over one table
//! (no join, grouping or DISTINCT). The rows are scanned once (WHERE
//! applied) keeping the best `OFFSET + LIMIT` row numbers in a bounded
//! heap; keys are compared straight from the table (its numeric copy of a
//! column when it has one, else its cells), nothing is allocated per row,
//! and only the winners are projected. The order is `sort_out`'s: NULLS
//! FIRST/LAST, `Value::sort_cmp`, DESC, ties in row order.

use std::cmp::Ordering;

use super::super::Limits;
use super::super::ResultSet;
use super::super::ast::{Expr, Select};
use super::super::error::QueryError;
use super::super::table::{Numbers, TypedTable};
use super::super::value::{Value, ValueRef};
use super::Env;
use super::eval::{Ctx, Row, eval};
use super::join::first_ids;
use super::order::key_order;

/// A query `TopK` runs: its table and ORDER BY columns.
pub(super) struct TopK<'s> {
    table: &'s TypedTable,
    keys: Vec<(usize, bool, bool)>,
}

/// The query as a top-k, when it is one: one table, no grouping nor
/// DISTINCT, ORDER BY plain columns, a LIMIT with `OFFSET + LIMIT` within
/// `max_rows_in_memory`.
pub(super) fn top_k<'s>(s: &'s Select, limits: &Limits) -> Option<TopK<'s>> {
    let [src] = s.sources.as_slice() else {
        return None;
    };
    let limit = s.limit?;
    if !s.joins.is_empty()
        || s.grouping.is_some()
        || s.having.is_some()
        || s.distinct
        || !s.windows.is_empty()
        || s.order.is_empty()
        || s.offset.saturating_add(limit) > limits.max_rows_in_memory
    {
        return None;
    }
    let width = src.table.columns.len();
    let keys = s
        .order
        .iter()
        .map(|o| match o.expr {
            Expr::Col(c, _) if c >= src.offset && c - src.offset < width => {
                Some((c - src.offset, o.desc, o.nulls_first))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TopK {
        table: &src.table,
        keys,
    })
}

/// One ORDER BY column as read for comparing.
struct Key<'t> {
    col: usize,
    desc: bool,
    nulls_first: bool,
    numbers: Option<&'t Numbers>,
}

/// Integers up to this magnitude are exact as f64: equal numbers below it
/// are equal values.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// Order of rows `a` and `b` of `t` by `keys`, then by row number.
fn cmp_rows(t: &TypedTable, keys: &[Key], a: usize, b: usize) -> Ordering {
    for k in keys {
        let ord = match k.numbers {
            Some(n) => key_order(!n.present[a], !n.present[b], k.nulls_first, k.desc, || {
                let (x, y) = (n.values[a], n.values[b]);
                // A strict f64 order is the values' order; equal f64s are
                // equal values unless large integers rounded.
                match x.partial_cmp(&y) {
                    Some(Ordering::Equal) if x.abs() < EXACT => Ordering::Equal,
                    Some(c @ (Ordering::Less | Ordering::Greater)) => c,
                    _ => cell(t, a, k.col).sort_cmp(cell(t, b, k.col)),
                }
            }),
            None => {
                let (x, y) = (cell(t, a, k.col), cell(t, b, k.col));
                key_order(x.is_null(), y.is_null(), k.nulls_first, k.desc, || {
                    x.sort_cmp(y)
                })
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.cmp(&b)
}

/// Whether row `a`'s value of the key is strictly worse (later in the
/// order) than row `b`'s: by the numeric copy when there is one (rounding
/// to f64 keeps order, never reverses it, so a strict f64 order is the
/// values' order), else by the cells.
#[inline]
fn first_key_worse(t: &TypedTable, k: &Key, a: usize, b: usize) -> bool {
    match k.numbers {
        Some(n) => number_worse(k, (n.values[a], n.present[a]), (n.values[b], n.present[b])),
        None => {
            let (x, y) = (cell(t, a, k.col), cell(t, b, k.col));
            key_order(x.is_null(), y.is_null(), k.nulls_first, k.desc, || {
                x.sort_cmp(y)
            }) == Ordering::Greater
        }
    }
}

/// `first_key_worse` of two rows' (number, present) of a numeric key.
#[inline]
fn number_worse(k: &Key, (x, x_present): (f64, bool), (y, y_present): (f64, bool)) -> bool {
    key_order(!x_present, !y_present, k.nulls_first, k.desc, || {
        x.partial_cmp(&y).unwrap_or(Ordering::Equal)
    }) == Ordering::Greater
}

/// Rows between checks for a cancelled or timed-out query.
const INTERRUPT_EVERY: usize = 1024;

fn cell(t: &TypedTable, row: usize, col: usize) -> ValueRef<'_> {
    t.row(row).get_ref(col)
}

/// A max-heap of row numbers under `cmp_rows` (the worst kept on top),
/// holding at most `cap`.
struct Heap {
    ids: Vec<usize>,
    cap: usize,
}

impl Heap {
    /// The worst row kept, once `cap` are.
    fn full_top(&self) -> Option<&usize> {
        (self.ids.len() == self.cap)
            .then(|| self.ids.first())
            .flatten()
    }

    /// Keeps row `id` if it is among the best `cap` seen.
    fn offer(&mut self, id: usize, cmp: &impl Fn(usize, usize) -> Ordering) {
        let ids = &mut self.ids;
        if ids.len() < self.cap {
            ids.push(id);
            let mut i = ids.len() - 1;
            while i > 0 {
                let parent = (i - 1) / 2;
                if cmp(ids[i], ids[parent]) != Ordering::Greater {
                    break;
                }
                ids.swap(i, parent);
                i = parent;
            }
        } else if !ids.is_empty() && cmp(id, ids[0]) == Ordering::Less {
            ids[0] = id;
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut top = i;
                if l < ids.len() && cmp(ids[l], ids[top]) == Ordering::Greater {
                    top = l;
                }
                if r < ids.len() && cmp(ids[r], ids[top]) == Ordering::Greater {
                    top = r;
                }
                if top == i {
                    break;
                }
                ids.swap(i, top);
                i = top;
            }
        }
    }
}

/// Runs a query `top_k` accepted.
pub(super) fn run_top_k(s: &Select, env: &Env, q: &TopK) -> Result<ResultSet, QueryError> {
    let t = q.table;
    let limit = s.limit.unwrap_or(u64::MAX);
    let cap = s.offset.saturating_add(limit).min(t.len() as u64) as usize;
    let keys: Vec<Key> = q
        .keys
        .iter()
        .map(|&(col, desc, nulls_first)| Key {
            col,
            desc,
            nulls_first,
            numbers: t.numbers(col),
        })
        .collect();
    let cmp = |a: usize, b: usize| cmp_rows(t, &keys, a, b);
    let mut heap = Heap {
        ids: Vec::with_capacity(cap),
        cap,
    };
    let offsets = [s.sources[0].offset];
    let passes = |id: usize| -> Result<bool, QueryError> {
        let Some(f) = &s.filter else {
            return Ok(true);
        };
        let parts = [t.row(id)];
        let row = Row {
            parts: &parts,
            offsets: &offsets,
        };
        Ok(eval(f, &Ctx::Row(row))?.truth() == Some(true))
    };
    // Once the heap is full, a row whose first key alone is worse than the
    // worst kept row's cannot enter: one comparison (of two array cells
    // for a numeric key), before the filter or the full order.
    let first = keys.first();
    let mut offer = |n: usize, id: usize| -> Result<(), QueryError> {
        if n.is_multiple_of(INTERRUPT_EVERY) {
            env.limits.interrupt.check()?;
        }
        if let (Some(k), Some(&worst)) = (first, heap.full_top())
            && first_key_worse(t, k, id, worst)
        {
            return Ok(());
        }
        if passes(id)? {
            heap.offer(id, &cmp);
        }
        Ok(())
    };
    if cap > 0 {
        match first_ids(s, env) {
            Some(ids) => {
                for (n, id) in ids.into_iter().enumerate() {
                    offer(n, id as usize)?;
                }
            }
            None => match first.and_then(|k| Some((k, k.numbers?))) {
                // A numeric first key: each row's number is compared with
                // the worst kept row's (held in two locals), in one pass
                // over the arrays.
                Some((k, n)) => {
                    let mut bound: Option<(f64, bool)> = None;
                    for id in 0..t.len() {
                        if id.is_multiple_of(INTERRUPT_EVERY) {
                            env.limits.interrupt.check()?;
                        }
                        let here = (n.values[id], n.present[id]);
                        if bound.is_some_and(|worst| number_worse(k, here, worst)) {
                            continue;
                        }
                        if passes(id)? {
                            heap.offer(id, &cmp);
                            bound = heap.full_top().map(|&w| (n.values[w], n.present[w]));
                        }
                    }
                }
                None => {
                    for id in 0..t.len() {
                        offer(id, id)?;
                    }
                }
            },
        }
    }
    let mut ids = heap.ids;
    ids.sort_unstable_by(|&a, &b| cmp(a, b));
    let rows = ids
        .into_iter()
        .skip(s.offset.min(usize::MAX as u64) as usize)
        .map(|id| {
            let parts = [t.row(id)];
            let ctx = Ctx::Row(Row {
                parts: &parts,
                offsets: &offsets,
            });
            s.projection.iter().map(|e| eval(e, &ctx)).collect()
        })
        .collect::<Result<Vec<Vec<Value>>, QueryError>>()?;
    Ok(ResultSet {
        columns: s.names.clone(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::super::super::ast::{OrderKey, Source};
    use super::super::super::index::{IndexPolicy, Indexes};
    use super::super::{Strategy, choose, run_in_memory};
    use super::*;
    use crate::storage::ColumnType;

    /// a: small integers with ties; n: declared INTEGER, so integers,
    /// reals, large integers that round alike as f64, and texts; s: text;
    /// r: reals. Every column has NULLs.
    const A: [&str; 6] = ["-2", "0", "1", "1", "3", ""];
    const N: [&str; 10] = [
        "5",
        "2.5",
        "abc",
        "",
        "9007199254740993",
        "9007199254740992",
        "9007199254740994",
        "-1",
        "10",
        "1e3",
    ];
    const S: [&str; 6] = ["x", "y", "10", "9", "", "Y"];
    const R: [&str; 6] = ["1.5", "-0.5", "2", "", "1.5", "0"];

    fn table(rows: &[(usize, usize, usize, usize)]) -> TypedTable {
        let mut csv = String::from("a|n|s|r\n");
        for &(a, n, s, r) in rows {
            csv.push_str(&format!("{}|{}|{}|{}\n", A[a], N[n], S[s], R[r]));
        }
        let declared = BTreeMap::from([("n".to_string(), ColumnType::Integer)]);
        TypedTable::parse_declared(&Arc::new(csv.into_bytes()), b'|', &declared).unwrap()
    }

    fn select(
        t: TypedTable,
        order: &[(usize, bool, u8)],
        filter: u8,
        limit: u64,
        offset: u64,
    ) -> Select {
        let types = t.types.clone();
        let col = |c: usize| Expr::Col(c, types[c]);
        Select {
            sources: vec![Source {
                name: "t".into(),
                alias: "t".into(),
                table: Arc::new(t),
                version: "v".into(),
                offset: 0,
            }],
            joins: Vec::new(),
            filter: match filter {
                0 => None,
                1 => Some(Expr::IsNull(Box::new(col(0)), true)),
                _ => Some(Expr::IsNull(Box::new(col(2)), false)),
            },
            grouping: None,
            having: None,
            projection: (0..4).map(col).collect(),
            names: ["a", "n", "s", "r"].map(String::from).to_vec(),
            distinct: false,
            order: order
                .iter()
                .map(|&(c, desc, nulls)| OrderKey {
                    expr: col(c),
                    desc,
                    nulls_first: match nulls {
                        0 => !desc,
                        1 => true,
                        _ => false,
                    },
                })
                .collect(),
            limit: Some(limit),
            offset,
            windows: Vec::new(),
            rank_limit: None,
        }
    }

    proptest! {
        /// The top-k scan gives what the full sort gives, row for row and
        /// type for type (ties in row order).
        #[test]
        fn top_k_equals_the_full_sort(
            rows in proptest::collection::vec((0usize..6, 0usize..10, 0usize..6, 0usize..6), 0..40),
            order in proptest::collection::vec((0usize..4, any::<bool>(), 0u8..3), 1..4),
            filter in 0u8..3,
            limit in 0u64..50,
            offset in 0u64..12,
        ) {
            let s = select(table(&rows), &order, filter, limit, offset);
            let limits = Limits::default();
            let indexes = Indexes::default();
            let env = Env { db: "t", limits: &limits, indexes: &indexes, policy: IndexPolicy::default() };
            let q = top_k(&s, &limits).expect("a top-k query");
            prop_assert!(matches!(choose(&s, &limits, true), Strategy::TopK(_)));
            let fast = run_top_k(&s, &env, &q).unwrap();
            let full = run_in_memory(&s, &env).unwrap().expect("fits");
            prop_assert_eq!(format!("{:?}", fast.rows), format!("{:?}", full.rows));
            prop_assert_eq!(fast.columns, full.columns);
        }
    }

    #[test]
    fn only_plain_columns_of_one_table_with_a_limit() {
        let limits = Limits::default();
        let t = || table(&[(0, 0, 0, 0)]);
        assert!(top_k(&select(t(), &[(1, false, 0)], 0, 5, 0), &limits).is_some());
        let mut s = select(t(), &[(1, false, 0)], 0, 5, 0);
        s.limit = None;
        assert!(top_k(&s, &limits).is_none());
        let mut s = select(t(), &[(1, false, 0)], 0, 5, 0);
        s.order[0].expr = Expr::Neg(Box::new(Expr::Col(1, None)));
        assert!(top_k(&s, &limits).is_none());
        let mut s = select(t(), &[(1, false, 0)], 0, 5, 0);
        s.distinct = true;
        assert!(top_k(&s, &limits).is_none());
        // OFFSET + LIMIT over the bound: the other strategies hold it.
        let small = Limits {
            max_rows_in_memory: 4,
            ..Limits::default()
        };
        assert!(top_k(&select(t(), &[(1, false, 0)], 0, 3, 2), &small).is_none());
    }
}
