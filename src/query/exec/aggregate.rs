//! Grouping and aggregates: accumulators, groups by value (streamed) or by
//! a column's dictionary codes, and the finished groups as output rows.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::super::ResultSet;
use super::super::ast::{AggCall, AggFunc, Expr, Select};
use super::super::error::QueryError;
use super::super::table::{Dict, TypedTable};
use super::super::value::{FastMap, Value, ValueRef};
use super::column_filter::prefilter_through;
use super::dim_join::{self, dim_shape, dims};
use super::eval::{Ctx, Row, eval, runtime};
use super::join::stream_rows;
use super::order::{OutRow, finish_output};
use super::window::project_windowed;
use super::{Env, too_large};

/// A group: its key, its aggregates' states, and the values each DISTINCT
/// aggregate has seen.
pub(super) type GroupState = (Vec<Value>, Vec<Acc>, Vec<HashSet<Value>>);

/// One aggregate's running state.
#[derive(Debug, Clone)]
pub(super) enum Acc {
    Count(i64),
    Sum {
        int: i64,
        real: f64,
        is_real: bool,
        any: bool,
    },
    Avg {
        sum: f64,
        n: i64,
    },
    Min(Value),
    Max(Value),
    /// `total()`: a real sum, whatever the values.
    Total(f64),
    /// GROUP_CONCAT: the text so far; None before the first value.
    Concat(Option<String>),
}

pub(super) fn new_acc(a: &AggCall) -> Acc {
    match a.func {
        AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => Acc::Sum {
            int: 0,
            real: 0.0,
            is_real: false,
            any: false,
        },
        AggFunc::Avg => Acc::Avg { sum: 0.0, n: 0 },
        AggFunc::Min => Acc::Min(Value::Null),
        AggFunc::Max => Acc::Max(Value::Null),
        AggFunc::Total => Acc::Total(0.0),
        AggFunc::GroupConcat => Acc::Concat(None),
    }
}

/// Adds a value (not NULL) to an aggregate; `sep` is GROUP_CONCAT's
/// separator for this row (None: ","; NULL: none), put before every value
/// but the first, as SQLite does.
pub(super) fn accumulate(acc: &mut Acc, v: &Value, sep: Option<&Value>) -> Result<(), QueryError> {
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::Sum {
            int,
            real,
            is_real,
            any,
        } => {
            *any = true;
            // As SQLite's sum() reads its input: a text is an integer only
            // when the whole of it is one (`12`, ` 12`); any other text
            // (`3.0`, `true`) adds as a real, and makes the sum one.
            let number = match v {
                Value::Text(t) => match v.clone().with_affinity(super::super::Type::Integer) {
                    Value::Int(i) if !t.contains(['.', 'e', 'E']) => Some(Value::Int(i)),
                    Value::Int(i) => Some(Value::Real(i as f64)),
                    Value::Real(r) => Some(Value::Real(r)),
                    _ => None,
                },
                v => v.as_number(),
            };
            match number {
                Some(Value::Int(i)) if !*is_real => {
                    *int = int
                        .checked_add(i)
                        .ok_or_else(|| runtime("integer overflow in SUM"))?;
                }
                Some(x) => {
                    if !*is_real {
                        *is_real = true;
                        *real = *int as f64;
                    }
                    *real += x.as_f64().unwrap_or(0.0);
                }
                None => {
                    if !*is_real {
                        *is_real = true;
                        *real = *int as f64;
                    }
                    *real += v.as_f64().unwrap_or(0.0);
                }
            }
        }
        Acc::Avg { sum, n } => {
            *sum += v.as_f64().unwrap_or(0.0);
            *n += 1;
        }
        Acc::Min(m) => {
            if m.is_null() || v.sort_cmp(m) == Ordering::Less {
                *m = v.clone();
            }
        }
        Acc::Max(m) => {
            if m.is_null() || v.sort_cmp(m) == Ordering::Greater {
                *m = v.clone();
            }
        }
        Acc::Total(t) => *t += v.as_f64().unwrap_or(0.0),
        Acc::Concat(text) => {
            use std::fmt::Write;
            match text {
                None => *text = Some(v.to_string()),
                Some(t) => {
                    match sep {
                        None => t.push(','),
                        Some(Value::Null) => {}
                        Some(s) => {
                            let _ = write!(t, "{s}");
                        }
                    }
                    let _ = write!(t, "{v}");
                }
            }
        }
    }
    Ok(())
}

pub(super) fn finish(acc: Acc) -> Value {
    match acc {
        Acc::Count(n) => Value::Int(n),
        Acc::Sum { any: false, .. } => Value::Null,
        Acc::Sum {
            int, real, is_real, ..
        } => {
            if is_real {
                Value::Real(real)
            } else {
                Value::Int(int)
            }
        }
        Acc::Avg { n: 0, .. } => Value::Null,
        Acc::Avg { sum, n } => Value::Real(sum / n as f64),
        Acc::Min(v) | Acc::Max(v) => v,
        Acc::Total(t) => Value::Real(t),
        Acc::Concat(t) => t.map_or(Value::Null, |t| Value::text(&t)),
    }
}

/// What one row gives aggregate `a`: its value and GROUP_CONCAT's
/// separator; None when the row does not count (FILTER not true, a NULL
/// argument except for COUNT(*)).
pub(super) fn agg_input(
    a: &AggCall,
    ctx: &Ctx,
) -> Result<Option<(Value, Option<Value>)>, QueryError> {
    if let Some(f) = &a.filter
        && eval(f, ctx)?.truth() != Some(true)
    {
        return Ok(None);
    }
    let v = match &a.arg {
        None => Value::Int(1),
        Some(x) => eval(x, ctx)?,
    };
    if a.func != AggFunc::CountStar && v.is_null() {
        return Ok(None);
    }
    let sep = a.sep.as_ref().map(|s| eval(s, ctx)).transpose()?;
    Ok(Some((v, sep)))
}

/// `Strategy::GroupedStreaming`: a grouped query over rows too many to
/// hold; they stream into the groups, which are all that is held.
pub(super) fn run_grouped_streaming(
    s: &Select,
    env: &Env,
    keys: &[Expr],
    aggs: &[AggCall],
) -> Result<ResultSet, QueryError> {
    let mut by_value: FastMap<Vec<Value>, usize> = FastMap::default();
    let mut states: Vec<GroupState> = Vec::new();
    let cap = env.limits.max_rows_in_memory as usize;
    let mut add = |row: &Row| -> Result<bool, QueryError> {
        let key: Vec<Value> = keys
            .iter()
            .map(|k| eval(k, &Ctx::Row(*row)))
            .collect::<Result<_, _>>()?;
        let g = match by_value.get(&key) {
            Some(&g) => g,
            None => {
                if states.len() >= cap {
                    return Err(too_large(env.limits));
                }
                states.push((
                    key.clone(),
                    aggs.iter().map(new_acc).collect(),
                    vec![HashSet::new(); aggs.len()],
                ));
                by_value.insert(key, states.len() - 1);
                states.len() - 1
            }
        };
        feed(aggs, &mut states[g], *row)?;
        Ok(true)
    };
    stream_rows(s, env, &mut add)?;
    let out = groups_to_rows(s, env, keys.is_empty(), aggs, states)?;
    Ok(finish_output(s, out))
}

/// The (row of the first table, group) pairs `aggregate_columns` reads, in
/// the order the general path meets them.
pub(super) enum Pairs<'a> {
    /// Rows `ids` (every row without), each in the group of its code.
    Coded {
        ids: Option<&'a [u32]>,
        codes: &'a [u32],
    },
    /// Each joined row's first-table row and group.
    Listed { rows: Vec<u32>, groups: Vec<u32> },
}

impl Pairs<'_> {
    /// Calls `f(row, group)` for each pair.
    #[inline]
    fn each(&self, mut f: impl FnMut(usize, usize)) {
        match self {
            Pairs::Coded {
                ids: Some(ids),
                codes,
            } => {
                for &i in *ids {
                    if let Some(&c) = codes.get(i as usize) {
                        f(i as usize, c as usize);
                    }
                }
            }
            Pairs::Coded { ids: None, codes } => {
                for (i, &c) in codes.iter().enumerate() {
                    f(i, c as usize);
                }
            }
            Pairs::Listed { rows, groups } => {
                for (&i, &g) in rows.iter().zip(groups) {
                    f(i as usize, g as usize);
                }
            }
        }
    }
}

/// GROUP BY one dictionary column, the pairs' groups its codes (`values`
/// each code's value), where every aggregate is COUNT(*), or COUNT or AVG
/// of a numeric column of the first table: computed over the codes and the
/// columns' number arrays in one tight loop per aggregate. The same sums in
/// the same order as `feed`, so the same results; None when an aggregate
/// is of another kind.
pub(super) fn aggregate_columns(
    s: &Select,
    env: &Env,
    aggs: &[AggCall],
    table: &TypedTable,
    values: &[Value],
    pairs: Pairs,
) -> Option<ResultSet> {
    enum Fast<'a> {
        CountStar,
        Count(&'a [bool]),
        Avg(&'a super::super::table::Numbers),
    }
    let width = table.columns.len();
    let fast: Vec<Fast> = aggs
        .iter()
        .map(
            |a| match (a.func, &a.arg, a.distinct || a.filter.is_some()) {
                (AggFunc::CountStar, _, false) => Some(Fast::CountStar),
                // Columns of the first table only (a joined table's are
                // past its width).
                (AggFunc::Count, Some(Expr::Col(c, _)), false) if *c < width => {
                    table.numbers(*c).map(|n| Fast::Count(&n.present))
                }
                (AggFunc::Avg, Some(Expr::Col(c, _)), false) if *c < width => {
                    table.numbers(*c).map(Fast::Avg)
                }
                _ => None,
            },
        )
        .collect::<Option<_>>()?;
    let groups = values.len();
    let mut counts = vec![vec![0i64; groups]; fast.len()];
    let mut sums = vec![vec![0f64; groups]; fast.len()];
    // One tight loop per aggregate over (row, group).
    for ((f, count), sum) in fast.iter().zip(&mut counts).zip(&mut sums) {
        match f {
            Fast::CountStar => pairs.each(|_, g| count[g] += 1),
            Fast::Count(present) => pairs.each(|i, g| count[g] += i64::from(present[i])),
            Fast::Avg(n) => pairs.each(|i, g| {
                if n.present[i] {
                    count[g] += 1;
                    sum[g] += n.values[i];
                }
            }),
        }
    }
    // Groups in order of first appearance, as the general path makes them.
    let mut order: Vec<u32> = Vec::new();
    let mut seen = vec![false; groups];
    pairs.each(|_, g| {
        if !seen[g] {
            seen[g] = true;
            order.push(g as u32);
        }
    });
    let states: Vec<GroupState> = order
        .into_iter()
        .map(|code| {
            let g = code as usize;
            let accs = fast
                .iter()
                .enumerate()
                .map(|(k, f)| match f {
                    Fast::CountStar | Fast::Count(_) => Acc::Count(counts[k][g]),
                    Fast::Avg(_) => Acc::Avg {
                        sum: sums[k][g],
                        n: counts[k][g],
                    },
                })
                .collect();
            (
                vec![values[g].clone()],
                accs,
                vec![HashSet::new(); aggs.len()],
            )
        })
        .collect();
    let out = groups_to_rows(s, env, false, aggs, states).ok()?;
    Some(finish_output(s, out))
}

/// Adds one row to a group's aggregates (NULLs skipped except by COUNT(*),
/// repeats skipped by DISTINCT aggregates).
pub(super) fn feed(aggs: &[AggCall], state: &mut GroupState, row: Row) -> Result<(), QueryError> {
    let (_, accs, seen) = state;
    for (i, a) in aggs.iter().enumerate() {
        let Some((v, sep)) = agg_input(a, &Ctx::Row(row))? else {
            continue;
        };
        if a.distinct && !seen[i].insert(v.clone()) {
            continue;
        }
        accumulate(&mut accs[i], &v, sep.as_ref())?;
    }
    Ok(())
}

/// Finished groups as (output row, sort keys): aggregates finished, HAVING
/// applied, projection and ORDER BY keys evaluated over each group.
pub(super) fn groups_to_rows(
    s: &Select,
    env: &Env,
    no_keys: bool,
    aggs: &[AggCall],
    mut states: Vec<GroupState>,
) -> Result<Vec<OutRow>, QueryError> {
    // Without GROUP BY, an aggregate query has one group, rows or not.
    if no_keys && states.is_empty() {
        states.push((Vec::new(), aggs.iter().map(new_acc).collect(), Vec::new()));
    }
    let mut out = Vec::with_capacity(states.len());
    let mut kept = Vec::new();
    for (key, accs, _) in states {
        let agg_values: Vec<Value> = accs.into_iter().map(finish).collect();
        let ctx = Ctx::Group {
            keys: &key,
            aggs: &agg_values,
        };
        if let Some(h) = &s.having
            && eval(h, &ctx)?.truth() != Some(true)
        {
            continue;
        }
        // Window functions need every group that HAVING kept.
        if !s.windows.is_empty() {
            kept.push((key, agg_values));
            continue;
        }
        let proj = s
            .projection
            .iter()
            .map(|e| eval(e, &ctx))
            .collect::<Result<_, _>>()?;
        let sort = s
            .order
            .iter()
            .map(|o| eval(&o.expr, &ctx))
            .collect::<Result<_, _>>()?;
        out.push((proj, sort));
    }
    if !s.windows.is_empty() {
        let ctxs: Vec<Ctx> = kept
            .iter()
            .map(|(keys, aggs)| Ctx::Group { keys, aggs })
            .collect();
        return project_windowed(s, env, &ctxs);
    }
    Ok(out)
}

/// `Strategy::InMemory`'s grouping of rows already held: the groups as
/// output rows.
pub(super) fn group_rows(
    s: &Select,
    env: &Env,
    keys: &[Expr],
    aggs: &[AggCall],
    rows: &[Row],
) -> Result<Vec<OutRow>, QueryError> {
    // Groups by key: a single plain column is looked up by its value,
    // borrowed from the table (no key vector or text is made per row);
    // anything else by its values.
    let mut by_ref: FastMap<ValueRef, usize> = FastMap::default();
    let mut by_value: FastMap<Vec<Value>, usize> = FastMap::default();
    let single_col = match keys {
        [Expr::Col(i, _)] => Some(*i),
        _ => None,
    };
    let mut states: Vec<GroupState> = Vec::new();
    for &r in rows {
        env.limits.interrupt.check()?;
        let found = match single_col {
            Some(i) => by_ref.get(&r.get_ref(i)).copied(),
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
                        by_ref.insert(r.get_ref(i), states.len() - 1);
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
    groups_to_rows(s, env, keys.is_empty(), aggs, states)
}

/// GROUP BY one column of a single table, without joins, where the column
/// has a dictionary (not too many distinct values): what
/// `run_grouped_by_dict` runs.
pub(super) struct DictGrouping<'s> {
    aggs: &'s [AggCall],
    table: &'s TypedTable,
    dict: &'s Dict,
}

/// The query's `DictGrouping`, if it has that shape (its joins, if any,
/// shaped as dimension joins: `run_grouped_by_dict` checks the data).
pub(super) fn dict_grouping(s: &Select) -> Option<DictGrouping<'_>> {
    let (Some((keys, aggs)), true, Some(src)) = (
        &s.grouping,
        s.joins.is_empty() || dim_shape(s),
        s.sources.first(),
    ) else {
        return None;
    };
    let [Expr::Col(col, _)] = keys.as_slice() else {
        return None;
    };
    let table = &src.table;
    let dict = table.dict(*col)?;
    Some(DictGrouping { aggs, table, dict })
}

/// `Strategy::DictGrouped`: rows go to groups by the key's dictionary
/// code, no hashing. None: a join is not a dimension join after all (the
/// general path runs).
pub(super) fn run_grouped_by_dict(
    s: &Select,
    env: &Env,
    d: DictGrouping,
) -> Result<Option<ResultSet>, QueryError> {
    let DictGrouping { aggs, table, dict } = d;
    let dims = match s.joins.is_empty() {
        true => Vec::new(),
        false => match dims(s, env) {
            Some(dims) => dims,
            None => return Ok(None),
        },
    };
    // WHERE's conjuncts tested column-wise first (and the rows a join
    // drops dropped); `filter` is the rest.
    let pre = prefilter_through(s, env, &dims)?;
    let filter = match &pre {
        Some(p) => p.residual.as_ref(),
        None => s.filter.as_ref(),
    };
    // (No `Prefilter`: every row; the index lookup, if any, was tried.)
    let ids: Option<&[u32]> = pre.as_ref().map(|p| p.ids.as_slice());
    if filter.is_none()
        && let Some(fast) = aggregate_columns(
            s,
            env,
            aggs,
            table,
            &dict.values,
            Pairs::Coded {
                ids,
                codes: &dict.codes,
            },
        )
    {
        return Ok(Some(fast));
    }
    let ids: Box<dyn Iterator<Item = u32>> = match ids {
        Some(ids) => Box::new(ids.iter().copied()),
        None => Box::new(0..table.len() as u32),
    };
    let mut slot: Vec<Option<usize>> = vec![None; dict.values.len()];
    let mut states: Vec<GroupState> = Vec::new();
    let offsets: Vec<usize> = s.sources.iter().map(|src| src.offset).collect();
    let mut parts = Vec::with_capacity(offsets.len());
    for id in ids {
        if !dim_join::joined(table, &dims, id, &mut parts) {
            continue;
        }
        let row = Row {
            parts: &parts,
            offsets: &offsets,
        };
        if let Some(f) = filter
            && eval(f, &Ctx::Row(row))?.truth() != Some(true)
        {
            continue;
        }
        let code = dict.codes[id as usize] as usize;
        let g = match slot[code] {
            Some(g) => g,
            None => {
                states.push((
                    vec![dict.values[code].clone()],
                    aggs.iter().map(new_acc).collect(),
                    vec![HashSet::new(); aggs.len()],
                ));
                slot[code] = Some(states.len() - 1);
                states.len() - 1
            }
        };
        feed(aggs, &mut states[g], row)?;
    }
    let out = groups_to_rows(s, env, false, aggs, states)?;
    Ok(Some(finish_output(s, out)))
}
