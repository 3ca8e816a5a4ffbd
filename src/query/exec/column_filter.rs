//! WHERE over the first source evaluated column by column: the conjuncts
//! that read only that table and take one of two forms are tested over its
//! columns in tight loops, before any row is made, and the rows that fail
//! are never read again.
//!
//! - A conjunct that reads one column that has a dictionary (at most a few
//!   thousand distinct values) is evaluated once per distinct value, by
//!   the same `eval` every row would go through; each row then looks its
//!   code up. Any expression qualifies (`city IN (...)`, `lower(g) = 'x'`,
//!   a correlated subquery keyed by the column), so the result is the
//!   row-by-row result by construction.
//! - `column <op> number` over a column of exact numbers (`Numbers::exact`)
//!   compares f64s, as SQLite compares numbers: exactly, NULL failing.
//!
//! Through dimension joins (`dim_join.rs`) a joined row is a function of
//! the first table's join column, so two more forms qualify: a conjunct
//! that reads one joined table and no column of the first table but the
//! join column is evaluated once per code of that column, and
//! `column <op> <expression over the joined table>` compares each row's
//! number with its code's value of the expression.
//!
//! What is left (`Prefilter::residual`) is evaluated per row as before.

use super::super::ast::{CmpOp, Expr, Select};
use super::super::cells::RowRef;
use super::super::error::QueryError;
use super::super::table::{Numbers, TypedTable};
use super::super::value::{Type, Value};
use super::Env;
use super::dim_join::Dim;
use super::eval::eval_parts;
use super::join::first_ids;

/// The first source's rows that pass the conjuncts tested column-wise, and
/// the conjuncts still to test per row.
pub(super) struct Prefilter {
    pub ids: Vec<u32>,
    pub residual: Option<Expr>,
}

/// One conjunct as a test of a row number.
enum Test<'t> {
    /// A conjunct over one dictionary column: whether each code passes.
    Coded { codes: &'t [u32], pass: Vec<bool> },
    /// `column <op> value` over exact numbers.
    Compare {
        numbers: &'t Numbers,
        op: CmpOp,
        value: f64,
    },
    /// `column <op> value` where the value is each row's code's (None:
    /// NULL, the comparison fails).
    CompareByCode {
        numbers: &'t Numbers,
        op: CmpOp,
        codes: &'t [u32],
        values: Vec<Option<f64>>,
    },
}

impl Test<'_> {
    /// Keeps the rows of `ids` that pass.
    fn retain(&self, ids: &mut Vec<u32>) {
        match self {
            Test::Coded { codes, pass } => ids.retain(|&i| {
                codes
                    .get(i as usize)
                    .and_then(|&c| pass.get(c as usize))
                    .copied()
                    .unwrap_or(false)
            }),
            Test::Compare { numbers, op, value } => {
                let v = *value;
                retain_compare(ids, numbers, *op, |_| Some(v));
            }
            Test::CompareByCode {
                numbers,
                op,
                codes,
                values,
            } => retain_compare(ids, numbers, *op, |i| {
                values.get(*codes.get(i)? as usize).copied().flatten()
            }),
        }
    }
}

/// Keeps the rows whose number compares with `value(row)` by `op` (NULL on
/// either side fails).
fn retain_compare(
    ids: &mut Vec<u32>,
    numbers: &Numbers,
    op: CmpOp,
    value: impl Fn(usize) -> Option<f64>,
) {
    let (values, present) = (&numbers.values, &numbers.present);
    let pair = |i: u32| -> Option<(f64, f64)> {
        let i = i as usize;
        if !present.get(i).copied()? {
            return None;
        }
        Some((values.get(i).copied()?, value(i)?))
    };
    match op {
        CmpOp::Eq => ids.retain(|&i| pair(i).is_some_and(|(x, v)| x == v)),
        CmpOp::Ne => ids.retain(|&i| pair(i).is_some_and(|(x, v)| x != v)),
        CmpOp::Lt => ids.retain(|&i| pair(i).is_some_and(|(x, v)| x < v)),
        CmpOp::Le => ids.retain(|&i| pair(i).is_some_and(|(x, v)| x <= v)),
        CmpOp::Gt => ids.retain(|&i| pair(i).is_some_and(|(x, v)| x > v)),
        CmpOp::Ge => ids.retain(|&i| pair(i).is_some_and(|(x, v)| x >= v)),
        // `compare` and `compare_by_code` make no test of these.
        CmpOp::Is | CmpOp::IsNot => {}
    }
}

/// The query's `Prefilter`: None when no conjunct can be tested
/// column-wise and no index lookup applies (then every row of the first
/// table is a candidate and the whole WHERE is tested per row).
pub(super) fn prefilter(s: &Select, env: &Env) -> Result<Option<Prefilter>, QueryError> {
    prefilter_through(s, env, &[])
}

/// `prefilter` for a query whose joins are `dims` (all of them): the rows
/// a join drops are dropped too, so a `Prefilter` is always given.
pub(super) fn prefilter_through(
    s: &Select,
    env: &Env,
    dims: &[Dim],
) -> Result<Option<Prefilter>, QueryError> {
    let Some(first) = s.sources.first() else {
        return Ok(None);
    };
    let table = &first.table;
    // An index lookup that leaves few rows: testing those one by one is
    // cheaper than a column's numbers or dictionary for the whole table
    // (which a new version would then carry too).
    // (The lookup counts toward the index policy: it is made here once,
    // and its rows handed on in a `Prefilter` with the whole WHERE left.)
    let probed = first_ids(s, env);
    let narrowed = |ids: Vec<u32>| Prefilter {
        ids,
        residual: s.filter.clone(),
    };
    if dims.is_empty()
        && probed
            .as_ref()
            .is_some_and(|ids| ids.len() <= table.len() / 16)
    {
        return Ok(probed.map(narrowed));
    }
    let mut conjuncts = Vec::new();
    if let Some(filter) = &s.filter {
        split_and(filter, &mut conjuncts);
    }
    let mut tests: Vec<Test> = dims
        .iter()
        .map(|d| Test::Coded {
            codes: d.codes,
            pass: d.rows.iter().map(Option::is_some).collect(),
        })
        .collect();
    let mut rest: Vec<&Expr> = Vec::new();
    for c in conjuncts {
        match compile(c, s, dims) {
            Some(t) => tests.push(t),
            None => rest.push(c),
        }
    }
    if tests.is_empty() {
        return Ok(probed.map(narrowed));
    }
    let mut ids = probed.unwrap_or_else(|| (0..table.len() as u32).collect());
    for t in &tests {
        env.limits.interrupt.check_now()?;
        t.retain(&mut ids);
    }
    let residual = rest
        .into_iter()
        .cloned()
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    Ok(Some(Prefilter { ids, residual }))
}

/// How many of the WHERE's conjuncts are tested column-wise, of how many
/// (EXPLAIN).
pub(super) fn columnwise(s: &Select, dims: &[Dim]) -> (usize, usize) {
    let mut conjuncts = Vec::new();
    if let Some(filter) = &s.filter {
        split_and(filter, &mut conjuncts);
    }
    let n = conjuncts
        .iter()
        .filter(|c| compile(c, s, dims).is_some())
        .count();
    (n, conjuncts.len())
}

fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::And(a, b) => {
            split_and(a, out);
            split_and(b, out);
        }
        other => out.push(other),
    }
}

/// What a conjunct reads: columns of the first table, and of which one
/// joined table (`dims[j]`); None when it reads two joined tables or
/// anything a row does not give.
struct Reads {
    first: Vec<usize>,
    joined: Option<usize>,
}

fn reads(e: &Expr, s: &Select, dims: &[Dim]) -> Option<Reads> {
    let width = s.sources.first()?.table.columns.len();
    let mut out = Reads {
        first: Vec::new(),
        joined: None,
    };
    let mut ok = true;
    e.walk(&mut |x| match x {
        Expr::Col(c, _) if *c < width && !out.first.contains(c) => out.first.push(*c),
        Expr::Col(c, _) if *c < width => {}
        Expr::Col(c, _) => {
            // Source k >= 1 is dims[k - 1].
            let k = s.sources.iter().rposition(|src| src.offset <= *c);
            match k.and_then(|k| k.checked_sub(1)).filter(|&j| j < dims.len()) {
                Some(j) if out.joined.is_none_or(|o| o == j) => out.joined = Some(j),
                _ => ok = false,
            }
        }
        Expr::Key(_) | Expr::Agg(_) | Expr::Window(_) => ok = false,
        _ => {}
    });
    ok.then_some(out)
}

fn compile<'t>(e: &Expr, s: &'t Select, dims: &[Dim<'t>]) -> Option<Test<'t>> {
    let table = &s.sources.first()?.table;
    if let Some(t) = compare(e, table) {
        return Some(t);
    }
    if let Some(t) = compare_by_code(e, s, dims) {
        return Some(t);
    }
    let r = reads(e, s, dims)?;
    let mixed = may_mix(s);
    match (r.first.as_slice(), r.joined) {
        // One column of the first table with a dictionary.
        (&[col], None) if !mixed => {
            let dict = table.dict(col)?;
            let pass = per_code(e, s, None, col, &dict.values, |v| {
                Some(v.truth() == Some(true))
            })?;
            Some(Test::Coded {
                codes: &dict.codes,
                pass,
            })
        }
        // One joined table, and of the first table at most its join column.
        (first, Some(j)) if !mixed && first.iter().all(|&c| c == dims[j].col) => {
            let d = &dims[j];
            let pass = per_code(e, s, Some((j, d)), d.col, d.values, |v| {
                Some(v.truth() == Some(true))
            })?;
            Some(Test::Coded {
                codes: d.codes,
                pass,
            })
        }
        _ => None,
    }
}

/// `e` evaluated once per code of the first table's column `col` (whose
/// codes' values are `values`), over a row holding only that column and,
/// through dimension join `dim`, that code's joined row; mapped by `f`. A
/// code whose join finds no row gives `f(NULL)`. None when `f` refuses a
/// value, or an evaluation fails: a value that makes the conjunct fail may
/// be in no row an earlier conjunct lets through, so the row-by-row path
/// decides.
fn per_code<T>(
    e: &Expr,
    s: &Select,
    dim: Option<(usize, &Dim)>,
    col: usize,
    values: &[Value],
    f: impl Fn(Value) -> Option<T>,
) -> Option<Vec<T>> {
    let width = s.sources.first()?.table.columns.len();
    let offsets: Vec<usize> = s.sources.iter().map(|src| src.offset).collect();
    let mut first_row = vec![Value::Null; width];
    let mut out = Vec::with_capacity(values.len());
    for (code, v) in values.iter().enumerate() {
        first_row[col] = v.clone();
        let mut parts = vec![RowRef::Empty; s.sources.len()];
        parts[0] = RowRef::Values(&first_row);
        let mut matched = true;
        if let Some((j, d)) = dim {
            match d.rows.get(code).copied().flatten() {
                Some(r) => parts[j + 1] = d.table.row(r as usize),
                None => matched = false,
            }
        }
        let value = match matched {
            true => eval_parts(e, &parts, &offsets).ok()?,
            false => Value::Null,
        };
        out.push(f(value)?);
    }
    Some(out)
}

/// Whether the first table's columns may hold both integers and reals: a
/// subquery's rows may (a stored table's column has one type). Its
/// dictionary then has one code for 1 and 1.0 alike (they are equal),
/// which `typeof` or `||` tell apart: no conjunct is evaluated per code.
fn may_mix(s: &Select) -> bool {
    s.sources.first().is_some_and(|src| src.is_derived())
}

/// A number as an f64 that is exactly it (None for anything else).
fn exact(v: &Value) -> Option<f64> {
    match *v {
        Value::Int(i) if i.unsigned_abs() <= 1 << 53 => Some(i as f64),
        Value::Real(r) if !r.is_nan() => Some(r),
        _ => None,
    }
}

/// `column <op> number` (either way round) over a column of exact numbers.
fn compare<'t>(e: &Expr, table: &'t TypedTable) -> Option<Test<'t>> {
    let (col, other, other_coerce, op) = column_side(e, table)?;
    let Expr::Lit(lit) = other else {
        return None;
    };
    let lit = match other_coerce {
        Some(t) => lit.clone().with_affinity(t),
        None => lit.clone(),
    };
    let value = exact(&lit)?;
    let numbers = table.numbers(col).filter(|n| n.exact)?;
    Some(Test::Compare { numbers, op, value })
}

/// `column <op> e` (either way round), `column` of the first table with
/// exact numbers, `e` over one dimension join's table (and its join
/// column): `e` evaluated per code.
fn compare_by_code<'t>(e: &Expr, s: &'t Select, dims: &[Dim<'t>]) -> Option<Test<'t>> {
    let table = &s.sources.first()?.table;
    let (col, other, other_coerce, op) = column_side(e, table)?;
    let r = reads(other, s, dims)?;
    let j = r.joined?;
    let d = dims.get(j)?;
    if r.first.iter().any(|&c| c != d.col) {
        return None;
    }
    let numbers = table.numbers(col).filter(|n| n.exact)?;
    if may_mix(s) {
        return None;
    }
    let values = per_code(other, s, Some((j, d)), d.col, d.values, |v| {
        let v = match other_coerce {
            Some(t) => v.with_affinity(t),
            None => v,
        };
        match v {
            Value::Null => Some(None),
            v => exact(&v).map(Some),
        }
    })?;
    Some(Test::CompareByCode {
        numbers,
        op,
        codes: d.codes,
        values,
    })
}

/// A comparison with a column of the first table on one side: (the
/// column, the other side, the affinity the other side takes, the operator
/// read with the column on the left). None for IS / IS NOT, and when the
/// column's side takes TEXT affinity (then it compares as text).
fn column_side<'e>(
    e: &'e Expr,
    table: &TypedTable,
) -> Option<(usize, &'e Expr, Option<Type>, CmpOp)> {
    let Expr::Cmp(op, a, b, coerce) = e else {
        return None;
    };
    let (col, other, other_coerce, col_coerce, op) = match (&**a, &**b) {
        (Expr::Col(c, _), other) => (*c, other, coerce.1, coerce.0, *op),
        (other, Expr::Col(c, _)) => (*c, other, coerce.0, coerce.1, flip(*op)),
        _ => return None,
    };
    if col_coerce == Some(Type::Text)
        || col >= table.columns.len()
        || matches!(op, CmpOp::Is | CmpOp::IsNot)
    {
        return None;
    }
    Some((col, other, other_coerce, op))
}

/// The operator with its operands swapped (`5 < x` is `x > 5`).
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}
