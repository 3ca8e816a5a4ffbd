//! Execution of a bound SELECT over rows: join (hash join on an equality,
//! else nested loop under the join limit), filter, group and aggregate,
//! project, DISTINCT, ORDER BY, LIMIT. Expressions follow SQLite's rules
//! (`value.rs`).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use super::error::{ErrorKind, QueryError};
use super::index::{IndexPolicy, Indexes};
use super::plan::{AggCall, AggFunc, ArithOp, CmpOp, Coerce, Expr, Func, Select, Source};
use super::table::ColumnIndex;
use super::value::{Type, Value};
use super::{Limits, ResultSet};

use super::value::FastMap;

/// A row of the joined tables, without copying: one slice per source
/// (`parts[p]` is source `p`'s row, empty where a LEFT JOIN found none),
/// and where each source's columns start in the joined numbering.
#[derive(Clone, Copy)]
struct Row<'a> {
    parts: &'a [&'a [Value]],
    offsets: &'a [usize],
}

impl<'a> Row<'a> {
    fn get(&self, i: usize) -> Option<&'a Value> {
        let p = self.offsets.iter().rposition(|&o| o <= i)?;
        self.parts.get(p)?.get(i - self.offsets[p])
    }
}

/// The value a column reference reads, borrowed (no clone); other
/// expressions are evaluated.
fn eval_cow<'r>(e: &Expr, row: Row<'r>) -> Result<std::borrow::Cow<'r, Value>, QueryError> {
    Ok(match e {
        Expr::Col(i, _) => match row.get(*i) {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(Value::Null),
        },
        _ => std::borrow::Cow::Owned(eval(e, &Ctx::Row(row))?),
    })
}

/// What expressions read: a row of the joined tables, or a group.
enum Ctx<'a> {
    Row(Row<'a>),
    Group {
        keys: &'a [Value],
        aggs: &'a [Value],
    },
    Const,
}

pub fn eval_const(e: &Expr) -> Result<Value, QueryError> {
    eval(e, &Ctx::Const)
}

/// Evaluates an expression over one row of one table.
pub fn eval_row(e: &Expr, row: &[Value]) -> Result<Value, QueryError> {
    let parts = [row];
    eval(
        e,
        &Ctx::Row(Row {
            parts: &parts,
            offsets: &[0],
        }),
    )
}

fn runtime(message: impl Into<String>) -> QueryError {
    QueryError::new(ErrorKind::Runtime, message)
}

fn eval(e: &Expr, ctx: &Ctx) -> Result<Value, QueryError> {
    Ok(match e {
        Expr::Col(i, _) => match ctx {
            Ctx::Row(r) => r.get(*i).cloned().unwrap_or(Value::Null),
            _ => return Err(runtime("a column outside of a row")),
        },
        Expr::Key(i) => match ctx {
            Ctx::Group { keys, .. } => keys.get(*i).cloned().unwrap_or(Value::Null),
            _ => return Err(runtime("a group key outside of a group")),
        },
        Expr::Agg(i) => match ctx {
            Ctx::Group { aggs, .. } => aggs.get(*i).cloned().unwrap_or(Value::Null),
            _ => return Err(runtime("an aggregate outside of a group")),
        },
        Expr::Lit(v) => v.clone(),
        Expr::Neg(x) => match eval(x, ctx)?.as_number() {
            None => Value::Null,
            Some(Value::Int(i)) => i.checked_neg().map_or(Value::Real(-(i as f64)), Value::Int),
            Some(Value::Real(r)) => Value::Real(-r),
            Some(_) => Value::Null,
        },
        Expr::Not(x) => match eval(x, ctx)?.truth() {
            None => Value::Null,
            Some(b) => Value::Int(i64::from(!b)),
        },
        Expr::Arith(op, a, b) => arith(*op, &eval(a, ctx)?, &eval(b, ctx)?),
        Expr::Concat(a, b) => {
            let (a, b) = (eval(a, ctx)?, eval(b, ctx)?);
            if a.is_null() || b.is_null() {
                Value::Null
            } else {
                Value::text(&format!("{a}{b}"))
            }
        }
        Expr::Cmp(op, a, b, coerce) => {
            let (a, b) = coerced(eval(a, ctx)?, eval(b, ctx)?, *coerce);
            match a.sql_cmp(&b) {
                None => Value::Null,
                Some(o) => Value::Int(i64::from(cmp_holds(*op, o))),
            }
        }
        Expr::And(a, b) => {
            let x = eval(a, ctx)?.truth();
            if x == Some(false) {
                return Ok(Value::Int(0));
            }
            match (x, eval(b, ctx)?.truth()) {
                (_, Some(false)) => Value::Int(0),
                (Some(true), Some(true)) => Value::Int(1),
                _ => Value::Null,
            }
        }
        Expr::Or(a, b) => {
            let x = eval(a, ctx)?.truth();
            if x == Some(true) {
                return Ok(Value::Int(1));
            }
            match (x, eval(b, ctx)?.truth()) {
                (_, Some(true)) => Value::Int(1),
                (Some(false), Some(false)) => Value::Int(0),
                _ => Value::Null,
            }
        }
        Expr::IsNull(x, negated) => Value::Int(i64::from(eval(x, ctx)?.is_null() != *negated)),
        Expr::InList(x, items, negated) => {
            let left_affinity = match &**x {
                Expr::Col(_, t) => *t,
                _ => None,
            };
            let v = eval(x, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for i in items {
                let item = eval(i, ctx)?;
                let (l, r) = coerced(
                    v.clone(),
                    item,
                    Coerce(None, left_affinity.filter(|_| !matches!(i, Expr::Col(..)))),
                );
                match l.sql_cmp(&r) {
                    None => saw_null = true,
                    Some(Ordering::Equal) => {
                        found = true;
                        break;
                    }
                    Some(_) => {}
                }
            }
            in_result(found, saw_null, *negated)
        }
        Expr::InSet(x, set, negated) => {
            let v = eval(x, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            in_result(set.values.contains(&v), set.has_null, *negated)
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
        } => {
            let (v, p) = (eval(expr, ctx)?, eval(pattern, ctx)?);
            if v.is_null() || p.is_null() {
                return Ok(Value::Null);
            }
            let m = like(&p.to_string(), &v.to_string(), *escape);
            Value::Int(i64::from(m != *negated))
        }
        Expr::Func(f, args) => func(*f, args, ctx)?,
    })
}

fn in_result(found: bool, saw_null: bool, negated: bool) -> Value {
    match (found, saw_null) {
        (true, _) => Value::Int(i64::from(!negated)),
        (false, true) => Value::Null,
        (false, false) => Value::Int(i64::from(negated)),
    }
}

fn coerced(a: Value, b: Value, c: Coerce) -> (Value, Value) {
    let a = match c.0 {
        Some(t) => a.with_affinity(t),
        None => a,
    };
    let b = match c.1 {
        Some(t) => b.with_affinity(t),
        None => b,
    };
    (a, b)
}

fn cmp_holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

fn arith(op: ArithOp, a: &Value, b: &Value) -> Value {
    let (Some(x), Some(y)) = (a.as_number(), b.as_number()) else {
        return Value::Null;
    };
    match (x, y) {
        (Value::Int(x), Value::Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div => {
                    if y == 0 {
                        return Value::Null;
                    }
                    x.checked_div(y)
                }
                ArithOp::Mod => {
                    if y == 0 {
                        return Value::Null;
                    }
                    Some(x.checked_rem(y).unwrap_or(0))
                }
            };
            match r {
                Some(i) => Value::Int(i),
                // Overflow: SQLite goes on in floating point.
                None => real_arith(op, x as f64, y as f64),
            }
        }
        (x, y) => {
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return Value::Null;
            };
            real_arith(op, x, y)
        }
    }
}

fn real_arith(op: ArithOp, x: f64, y: f64) -> Value {
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => {
            if y == 0.0 {
                return Value::Null;
            }
            x / y
        }
        ArithOp::Mod => {
            // SQLite: both operands as integers, the result a real.
            let (a, b) = (x as i64, y as i64);
            if b == 0 {
                return Value::Null;
            }
            return Value::Real(a.checked_rem(b).unwrap_or(0) as f64);
        }
    };
    if r.is_nan() {
        Value::Null
    } else {
        Value::Real(r)
    }
}

/// SQL LIKE: `%` any run, `_` one character; ASCII letters match either
/// case; `escape` makes the next pattern character literal.
fn like(pattern: &str, text: &str, escape: Option<char>) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq =
        |a: char, b: char| a == b || (a.is_ascii() && b.is_ascii() && a.eq_ignore_ascii_case(&b));
    // Iterative matcher with backtracking to the last `%`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            let c = p[pi];
            if Some(c) == escape {
                match p.get(pi + 1) {
                    Some(&lit) if ti < t.len() && eq(lit, t[ti]) => {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                    // An escape at the end of the pattern matches nothing.
                    _ => {}
                }
            } else if c == '%' {
                star = Some((pi, ti));
                pi += 1;
                continue;
            } else if ti < t.len() && (c == '_' || eq(c, t[ti])) {
                pi += 1;
                ti += 1;
                continue;
            }
        } else if ti == t.len() {
            return true;
        }
        match star {
            Some((sp, st)) if st < t.len() => {
                star = Some((sp, st + 1));
                pi = sp + 1;
                ti = st + 1;
            }
            _ => return false,
        }
    }
}

fn func(f: Func, args: &[Expr], ctx: &Ctx) -> Result<Value, QueryError> {
    if f == Func::Coalesce {
        for a in args {
            let v = eval(a, ctx)?;
            if !v.is_null() {
                return Ok(v);
            }
        }
        return Ok(Value::Null);
    }
    let v: Vec<Value> = args
        .iter()
        .map(|a| eval(a, ctx))
        .collect::<Result<_, _>>()?;
    let first = v.first().cloned().unwrap_or(Value::Null);
    if first.is_null() {
        return Ok(Value::Null);
    }
    Ok(match f {
        Func::Lower => Value::text(&first.to_string().to_ascii_lowercase()),
        Func::Upper => Value::text(&first.to_string().to_ascii_uppercase()),
        Func::Length => Value::Int(first.to_string().chars().count() as i64),
        Func::Abs => match first.as_number() {
            Some(Value::Int(i)) => i
                .checked_abs()
                .map_or(Value::Real((i as f64).abs()), Value::Int),
            Some(Value::Real(r)) => Value::Real(r.abs()),
            _ => Value::Null,
        },
        Func::Substr => {
            let int = |v: &Value| match v.as_number() {
                Some(Value::Int(i)) => Some(i),
                Some(Value::Real(r)) => Some(r as i64),
                _ => None,
            };
            let Some(start) = v.get(1).and_then(int) else {
                return Ok(Value::Null);
            };
            let len = match v.get(2) {
                None => None,
                Some(x) => match int(x) {
                    Some(l) => Some(l),
                    None => return Ok(Value::Null),
                },
            };
            Value::text(&substr(&first.to_string(), start, len))
        }
        Func::Coalesce => Value::Null,
    })
}

/// SQLite's substr: 1-based; 0 is a position before the first character;
/// a negative start counts from the end; a negative length takes the
/// characters before the start.
fn substr(s: &str, start: i64, len: Option<i64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let (mut p1, mut p2, neg) = match len {
        Some(l) if l < 0 => (start, l.saturating_neg(), true),
        Some(l) => (start, l, false),
        None => (start, i64::MAX / 4, false),
    };
    if p1 < 0 {
        p1 += n;
        if p1 < 0 {
            p2 = (p2 + p1).max(0);
            p1 = 0;
        }
    } else if p1 > 0 {
        p1 -= 1;
    } else if p2 > 0 {
        p2 -= 1;
    }
    if neg {
        p1 -= p2;
        if p1 < 0 {
            p2 += p1;
            p1 = 0;
        }
    }
    let from = p1.clamp(0, n) as usize;
    let to = p1.saturating_add(p2.max(0)).clamp(0, n) as usize;
    if from >= to {
        return String::new();
    }
    chars[from..to].iter().collect()
}

/// An output row and its ORDER BY keys.
type OutRow = (Vec<Value>, Vec<Value>);

/// A group: its key, its aggregates' states, and the values each DISTINCT
/// aggregate has seen.
type GroupState = (Vec<Value>, Vec<Acc>, Vec<HashSet<Value>>);

/// One aggregate's running state.
#[derive(Debug, Clone)]
enum Acc {
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
}

fn new_acc(a: &AggCall) -> Acc {
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
    }
}

fn accumulate(acc: &mut Acc, v: &Value) -> Result<(), QueryError> {
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::Sum {
            int,
            real,
            is_real,
            any,
        } => {
            *any = true;
            match v.as_number() {
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
                None => {}
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
    }
    Ok(())
}

fn finish(acc: Acc) -> Value {
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
    }
}

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

/// Row numbers of the first source that can satisfy the filter: through a
/// hash index when the filter requires `column = constant` of that source
/// and the column has one (anything else in the filter is checked later),
/// else all of them.
fn first_ids(s: &Select, env: &Env) -> Option<Vec<u32>> {
    let first = s.sources.first()?;
    let width = first.table.columns.len();
    let (col, key) = s.filter.as_ref().and_then(|f| index_probe(f, width))?;
    let ix = env.index(first, col)?;
    Some(ix.lookup(&key).collect())
}

/// Rows of the first source that can satisfy the filter (`first_ids`).
fn first_rows<'t>(s: &'t Select, env: &Env) -> Result<Vec<&'t [Value]>, QueryError> {
    let Some(first) = s.sources.first() else {
        // SELECT without FROM: one empty row.
        return Ok(vec![&[]]);
    };
    let table = &first.table;
    Ok(match first_ids(s, env) {
        Some(ids) => ids.into_iter().map(|i| table.row(i as usize)).collect(),
        None => table.rows().collect(),
    })
}

/// A conjunct `Col(c) = constant` of the filter with `c` in the first
/// source: (column, the constant with the column's affinity).
fn index_probe(filter: &Expr, width: usize) -> Option<(usize, Value)> {
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
/// source (`stride` = the number of sources), so nothing is copied.
fn joined_rows<'t>(
    s: &'t Select,
    env: &Env,
    offsets: &'t [usize],
) -> Result<Vec<&'t [Value]>, QueryError> {
    let limits = env.limits;
    let mut rows: Vec<&'t [Value]> = first_rows(s, env)?;
    let empty: &'t [Value] = &[];
    for (n, (j, src)) in s.joins.iter().zip(&s.sources[1..]).enumerate() {
        let stride = n + 1;
        let right = &src.table;
        let mut out: Vec<&'t [Value]> = Vec::new();
        let mut count = 0u64;
        let mut buf: Vec<&[Value]> = Vec::with_capacity(stride + 1);
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
                        for i in hash.lookup(k) {
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
                out.push(empty);
            }
            if count > limits.max_rows_in_memory {
                return Err(too_large(limits));
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
    Ok(rows)
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

/// A grouped query over joins too large to hold (`TooLarge`): the joined
/// rows stream into the groups, which are all that is held.
pub fn run_grouped_streaming(s: &Select, env: &Env) -> Result<Option<ResultSet>, QueryError> {
    let Some((keys, aggs)) = &s.grouping else {
        return Ok(None);
    };
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
    let out = groups_to_rows(s, keys.is_empty(), aggs, states)?;
    Ok(Some(finish_output(s, out)))
}

/// Every joined row that passes the filter, one at a time, to `take`
/// (which returns false to stop).
fn stream_rows(
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
    let mut st = Streamer {
        s,
        limits: env.limits,
        offsets: &offsets,
        hashes: &hashes,
        joined: 0,
        take,
    };
    let mut parts: Vec<&[Value]> = Vec::with_capacity(offsets.len());
    for first in first_rows(s, env)? {
        parts.push(first);
        let go_on = st.level(0, &mut parts)?;
        parts.pop();
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// Whether `stream` can run the query: nothing needs the whole result.
pub fn streamable(s: &Select) -> bool {
    s.grouping.is_none() && !s.distinct && s.order.is_empty()
}

/// The state of `stream`: one joined row is built in `parts` at a time.
struct Streamer<'a, 'e> {
    s: &'a Select,
    limits: &'a Limits,
    offsets: &'a [usize],
    hashes: &'a [Option<Arc<ColumnIndex>>],
    joined: u64,
    take: &'e mut dyn FnMut(&Row) -> Result<bool, QueryError>,
}

impl<'a> Streamer<'a, '_> {
    /// Extends the row in `parts` by join `level` onward; false: stop (the
    /// LIMIT is reached).
    fn level(&mut self, level: usize, parts: &mut Vec<&'a [Value]>) -> Result<bool, QueryError> {
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
                Some(hash.lookup(row.get(lcol).unwrap_or(&Value::Null)))
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
            parts.push(&[]);
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
    fn output(&mut self, parts: &[&[Value]]) -> Result<bool, QueryError> {
        self.limits.interrupt.check()?;
        let row = Row {
            parts,
            offsets: self.offsets,
        };
        if let Some(f) = &self.s.filter
            && eval(f, &Ctx::Row(row))?.truth() != Some(true)
        {
            return Ok(true);
        }
        (self.take)(&row)
    }
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

/// GROUP BY one column of one table, without WHERE, where every aggregate
/// is COUNT(*), or COUNT or AVG of a numeric column: computed over the
/// dictionary codes and the columns' number arrays in one tight loop. The
/// same sums in the same order as `feed`, so the same results; None when
/// an aggregate is of another kind.
fn aggregate_columns(
    s: &Select,
    aggs: &[AggCall],
    table: &super::table::TypedTable,
    dict: &super::table::Dict,
) -> Option<ResultSet> {
    enum Fast<'a> {
        CountStar,
        Count(&'a [bool]),
        Avg(&'a super::table::Numbers),
    }
    let fast: Vec<Fast> = aggs
        .iter()
        .map(|a| match (a.func, &a.arg, a.distinct) {
            (AggFunc::CountStar, _, _) => Some(Fast::CountStar),
            (AggFunc::Count, Some(Expr::Col(c, _)), false) => {
                table.numbers(*c).map(|n| Fast::Count(&n.present))
            }
            (AggFunc::Avg, Some(Expr::Col(c, _)), false) => table.numbers(*c).map(Fast::Avg),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let groups = dict.values.len();
    let mut counts = vec![vec![0i64; groups]; fast.len()];
    let mut sums = vec![vec![0f64; groups]; fast.len()];
    // Groups in order of first appearance, as the general path makes them.
    let mut order: Vec<u32> = Vec::new();
    let mut seen = vec![false; groups];
    for (i, &code) in dict.codes.iter().enumerate() {
        let g = code as usize;
        if !seen[g] {
            seen[g] = true;
            order.push(code);
        }
        for (k, f) in fast.iter().enumerate() {
            match f {
                Fast::CountStar => counts[k][g] += 1,
                Fast::Count(present) => counts[k][g] += i64::from(present[i]),
                Fast::Avg(n) => {
                    if n.present[i] {
                        counts[k][g] += 1;
                        sums[k][g] += n.values[i];
                    }
                }
            }
        }
    }
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
                vec![dict.values[g].clone()],
                accs,
                vec![HashSet::new(); aggs.len()],
            )
        })
        .collect();
    let out = groups_to_rows(s, false, aggs, states).ok()?;
    Some(finish_output(s, out))
}

/// Adds one row to a group's aggregates (NULLs skipped except by COUNT(*),
/// repeats skipped by DISTINCT aggregates).
fn feed(aggs: &[AggCall], state: &mut GroupState, row: Row) -> Result<(), QueryError> {
    let one = Value::Int(1);
    let (_, accs, seen) = state;
    for (i, a) in aggs.iter().enumerate() {
        let v = match &a.arg {
            None => std::borrow::Cow::Borrowed(&one),
            Some(x) => eval_cow(x, row)?,
        };
        if a.func != AggFunc::CountStar && v.is_null() {
            continue;
        }
        if a.distinct && !seen[i].insert(v.as_ref().clone()) {
            continue;
        }
        accumulate(&mut accs[i], &v)?;
    }
    Ok(())
}

/// Finished groups as (output row, sort keys): aggregates finished, HAVING
/// applied, projection and ORDER BY keys evaluated over each group.
fn groups_to_rows(
    s: &Select,
    no_keys: bool,
    aggs: &[AggCall],
    mut states: Vec<GroupState>,
) -> Result<Vec<OutRow>, QueryError> {
    // Without GROUP BY, an aggregate query has one group, rows or not.
    if no_keys && states.is_empty() {
        states.push((Vec::new(), aggs.iter().map(new_acc).collect(), Vec::new()));
    }
    let mut out = Vec::with_capacity(states.len());
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
    Ok(out)
}

/// A row's projection and its ORDER BY keys.
fn out_row(s: &Select, ctx: &Ctx) -> Result<OutRow, QueryError> {
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
fn keep_best(s: &Select, out: &mut Vec<OutRow>, keep: Option<u64>) {
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
            let ord = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if o.nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    if o.nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, false) => {
                    let c = x.sort_cmp(y);
                    if o.desc { c.reverse() } else { c }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
}

/// DISTINCT, ORDER BY, OFFSET and LIMIT over (output row, sort keys).
fn finish_output(s: &Select, mut out: Vec<OutRow>) -> ResultSet {
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

/// GROUP BY one column of a single table through the column's dictionary:
/// rows go to groups by code, no hashing (None: the query is not of that
/// shape, or the column has too many distinct values).
fn run_grouped_by_dict(s: &Select, env: &Env) -> Result<Option<ResultSet>, QueryError> {
    let (Some((keys, aggs)), true, [src]) = (&s.grouping, s.joins.is_empty(), s.sources.as_slice())
    else {
        return Ok(None);
    };
    let [Expr::Col(col, _)] = keys.as_slice() else {
        return Ok(None);
    };
    let table = &src.table;
    let Some(dict) = table.dict(*col) else {
        return Ok(None);
    };
    if s.filter.is_none()
        && let Some(fast) = aggregate_columns(s, aggs, table, dict)
    {
        return Ok(Some(fast));
    }
    let ids: Vec<u32> = match first_ids(s, env) {
        Some(ids) => ids,
        None => (0..table.len() as u32).collect(),
    };
    let mut slot: Vec<Option<usize>> = vec![None; dict.values.len()];
    let mut states: Vec<GroupState> = Vec::new();
    for id in ids {
        let parts = [table.row(id as usize)];
        let row = Row {
            parts: &parts,
            offsets: &[0],
        };
        if let Some(f) = &s.filter
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
    let out = groups_to_rows(s, false, aggs, states)?;
    Ok(Some(finish_output(s, out)))
}

/// The plan of a bound SELECT, one step per row (EXPLAIN): how each table
/// is read (index lookup or scan), joins, filter, grouping, order, limit.
pub fn explain(s: &Select, env: &Env) -> ResultSet {
    let mut lines = Vec::new();
    let col_name = |i: usize| -> String {
        for src in &s.sources {
            if i >= src.offset && i < src.offset + src.table.columns.len() {
                return format!("{}.{}", src.alias, src.table.columns[i - src.offset]);
            }
        }
        format!("#{i}")
    };
    let describe =
        |src: &Source, col: usize| env.indexes.describe(env.policy, &src.name, &src.table, col);
    if let Some(first) = s.sources.first() {
        let width = first.table.columns.len();
        let probe = s.filter.as_ref().and_then(|f| index_probe(f, width));
        match probe.map(|(c, key)| (describe(first, c), key)) {
            Some(((true, how), key)) => lines.push(format!(
                "IndexLookup {} = {key} by {how} ({} rows)",
                first.name,
                first.table.len()
            )),
            Some(((false, how), _)) => lines.push(format!(
                "Scan {} ({} rows): {how}",
                first.name,
                first.table.len()
            )),
            None => lines.push(format!("Scan {} ({} rows)", first.name, first.table.len())),
        }
    } else {
        lines.push("Values (one row)".to_string());
    }
    for (j, src) in s.joins.iter().zip(&s.sources[1..]) {
        let kind = if j.left { "LeftJoin" } else { "Join" };
        lines.push(match j.equi {
            Some((l, r)) => {
                let how = match describe(src, r) {
                    (true, how) => how,
                    (false, _) => format!(
                        "a hash table on {}.{} built for this query",
                        src.alias, src.table.columns[r]
                    ),
                };
                format!("{kind} {} on {} by {how}", src.name, col_name(l))
            }
            None => format!(
                "{kind} {} by nested loop ({} rows)",
                src.name,
                src.table.len()
            ),
        });
    }
    if s.filter.is_some() {
        lines.push("Filter (WHERE)".into());
    }
    if let Some((keys, aggs)) = &s.grouping {
        lines.push(format!(
            "Aggregate ({} keys, {} aggregates)",
            keys.len(),
            aggs.len()
        ));
        if s.having.is_some() {
            lines.push("Filter (HAVING)".into());
        }
    }
    lines.push(format!("Project {}", s.names.join(", ")));
    if s.distinct {
        lines.push("Distinct".into());
    }
    if !s.order.is_empty() {
        lines.push(format!("Sort ({} keys)", s.order.len()));
    }
    if s.limit.is_some() || s.offset > 0 {
        lines.push(format!(
            "Limit {} offset {}",
            s.limit.map_or("none".to_string(), |l| l.to_string()),
            s.offset
        ));
    }
    ResultSet {
        columns: vec!["plan".into()],
        rows: lines.into_iter().map(|l| vec![Value::text(&l)]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::value::format_real;
    use super::*;

    #[test]
    fn like_and_substr_follow_sqlite() {
        assert!(like("ABC", "abc", None));
        assert!(!like("É", "é", None));
        assert!(like("_", "é", None));
        assert!(!like("a", "ab", None));
        assert!(like("a%b%", "axxbyy", None));
        assert!(like("a!%b", "a%b", Some('!')));
        assert!(!like("a!%b", "axb", Some('!')));
        assert!(!like("a!", "a", Some('!')));
        assert!(like("a!!", "a!", Some('!')));
        let cases = [
            (0, None, "hello"),
            (0, Some(2), "h"),
            (-2, None, "lo"),
            (-2, Some(1), "l"),
            (2, None, "ello"),
            (2, Some(-1), "h"),
            (10, None, ""),
            (1, Some(0), ""),
            (-10, Some(3), ""),
        ];
        for (start, len, want) in cases {
            assert_eq!(
                substr("hello", start, len),
                want,
                "substr(hello, {start}, {len:?})"
            );
        }
        assert_eq!(format_real(2.5), "2.5");
    }

    #[test]
    fn arithmetic_is_sqlites() {
        let i = Value::Int;
        assert_eq!(arith(ArithOp::Div, &i(5), &i(2)), i(2));
        assert_eq!(arith(ArithOp::Div, &i(-5), &i(2)), i(-2));
        assert!(arith(ArithOp::Div, &i(1), &i(0)).is_null());
        assert!(arith(ArithOp::Mod, &i(1), &i(0)).is_null());
        assert_eq!(arith(ArithOp::Mod, &i(-5), &i(3)), i(-2));
        assert_eq!(
            arith(ArithOp::Mod, &Value::Real(5.5), &i(2)),
            Value::Real(1.0)
        );
        assert_eq!(
            arith(ArithOp::Add, &i(i64::MAX), &i(1)),
            Value::Real(i64::MAX as f64 + 1.0)
        );
        assert_eq!(arith(ArithOp::Add, &i(1), &Value::text("x")), i(1));
    }
}
