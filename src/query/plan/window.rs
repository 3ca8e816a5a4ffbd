//! Binding window functions: `f(...) OVER (PARTITION BY ... ORDER BY ...
//! [frame])`, `OVER w` and `OVER (w ...)` with `WINDOW w AS (...)`. They
//! are allowed in the select list and ORDER BY only (SQLite: "misuse of
//! window function"); each becomes `Expr::Window(i)` over
//! `Select::windows[i]`, computed by exec/window.rs after grouping and
//! HAVING. In a grouped query their expressions are lifted over the keys
//! like the projection's.

use sqlparser::ast as sql;

use super::super::ast::{
    AggCall, Expr, Frame, FrameBound, FrameUnits, OrderKey, RankLimit, Select, WinFunc, WindowCall,
};
use super::super::error::{ErrorKind, QueryError};
use super::super::exec;
use super::super::value::Value;
use super::aggregate::agg_exprs;
use super::{
    Binder, Scope, err, function_parts, has_aggregate, is_aggregate_name, lift, unsupported,
};

/// The window calls of the SELECT being bound: `calls` is Some while they
/// are allowed (each with its call as written, for errors), `named` are
/// its `WINDOW` definitions.
#[derive(Default)]
pub(super) struct WindowScope {
    calls: Option<Vec<(WindowCall, sql::Expr)>>,
    named: Vec<sql::NamedWindowDefinition>,
}

/// A window specification as written, its base window resolved.
struct Spec {
    partition: Vec<sql::Expr>,
    order: Vec<sql::OrderByExpr>,
    frame: Option<sql::WindowFrame>,
}

/// Whether the OVER clause of `f` holds an aggregate (which makes the
/// query a grouped one, as one in the select list does).
pub(super) fn over_has_aggregate(f: &sql::Function) -> bool {
    match &f.over {
        Some(sql::WindowType::WindowSpec(w)) => {
            w.partition_by.iter().any(has_aggregate)
                || w.order_by.iter().any(|o| has_aggregate(&o.expr))
        }
        _ => false,
    }
}

fn contains_window(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Window(_)));
    found
}

/// Every expression of a call, for lifting them over a grouping's keys.
fn call_exprs(c: &mut WindowCall) -> Vec<&mut Expr> {
    let mut out: Vec<&mut Expr> = c.args.iter_mut().collect();
    out.extend(c.partition.iter_mut());
    out.extend(c.order.iter_mut().map(|o| &mut o.expr));
    if let WinFunc::Agg(a) = &mut c.func {
        out.extend(agg_exprs(a));
    }
    out
}

impl Binder<'_> {
    /// Window calls are allowed from here (the select list, HAVING, which
    /// `close_windows` refuses them in, and ORDER BY).
    pub(super) fn open_windows(&mut self, s: &sql::Select) {
        self.windows = WindowScope {
            calls: Some(Vec::new()),
            named: s.named_window.clone(),
        };
    }

    /// The calls bound since `open_windows`, lifted over the grouping's
    /// keys in a grouped query; `outer` (the enclosing query's scope) is
    /// restored.
    pub(super) fn close_windows(
        &mut self,
        outer: WindowScope,
        keys: &[Expr],
        aggregate: bool,
        having: &Option<Expr>,
        node: &sql::Select,
    ) -> Result<Vec<WindowCall>, QueryError> {
        let mine = std::mem::replace(&mut self.windows, outer);
        if having.as_ref().is_some_and(contains_window) {
            return Err(err(
                ErrorKind::Type,
                node,
                "misuse of window function in HAVING: window functions are allowed in the select list and ORDER BY",
            ));
        }
        let mut calls = Vec::new();
        for (mut c, ast) in mine.calls.unwrap_or_default() {
            if aggregate {
                for e in call_exprs(&mut c) {
                    let taken = std::mem::replace(e, Expr::Lit(Value::Null));
                    *e = lift(taken, keys, &ast)?;
                }
            }
            calls.push(c);
        }
        Ok(calls)
    }

    /// A call with OVER: bound into the open scope as `Expr::Window`.
    pub(super) fn window_call(
        &mut self,
        f: &sql::Function,
        scope: &Scope,
        aggs: Option<&mut Vec<AggCall>>,
    ) -> Result<Expr, QueryError> {
        let name = f.name.to_string().to_ascii_uppercase();
        if self.windows.calls.is_none() {
            return Err(err(
                ErrorKind::Type,
                f,
                format!(
                    "misuse of window function {name}(): window functions are allowed in the select list and ORDER BY"
                ),
            ));
        }
        let spec = self.spec(f)?;
        // No window inside a window's own expressions.
        let saved = self.windows.calls.take();
        let call = self.bind_call(f, &name, &spec, scope, aggs);
        self.windows.calls = saved;
        let call = call?;
        let calls = self.windows.calls.get_or_insert_with(Vec::new);
        calls.push((call, sql::Expr::Function(f.clone())));
        Ok(Expr::Window(calls.len() - 1))
    }

    fn bind_call(
        &mut self,
        f: &sql::Function,
        name: &str,
        spec: &Spec,
        scope: &Scope,
        mut aggs: Option<&mut Vec<AggCall>>,
    ) -> Result<WindowCall, QueryError> {
        let (_, distinct, args) = function_parts(f)?;
        if distinct {
            return Err(err(
                ErrorKind::Type,
                f,
                "DISTINCT is not supported for window functions",
            ));
        }
        let n = args.len();
        let (func, arity) = match name {
            "ROW_NUMBER" => (WinFunc::RowNumber, 0..=0),
            "RANK" => (WinFunc::Rank, 0..=0),
            "DENSE_RANK" => (WinFunc::DenseRank, 0..=0),
            "PERCENT_RANK" => (WinFunc::PercentRank, 0..=0),
            "CUME_DIST" => (WinFunc::CumeDist, 0..=0),
            "NTILE" => (WinFunc::Ntile, 1..=1),
            "LAG" => (WinFunc::Lag, 1..=3),
            "LEAD" => (WinFunc::Lead, 1..=3),
            "FIRST_VALUE" => (WinFunc::FirstValue, 1..=1),
            "LAST_VALUE" => (WinFunc::LastValue, 1..=1),
            "NTH_VALUE" => (WinFunc::NthValue, 2..=2),
            _ if is_aggregate_name(name, n) => {
                let a = self.agg_call(f, name, false, &args, scope, aggs.as_deref_mut())?;
                (WinFunc::Agg(a), n..=n)
            }
            _ => {
                return Err(err(
                    ErrorKind::Type,
                    f,
                    format!(
                        "{name}() may not be used as a window function (the window functions are ROW_NUMBER, RANK, DENSE_RANK, PERCENT_RANK, CUME_DIST, NTILE, LAG, LEAD, FIRST_VALUE, LAST_VALUE, NTH_VALUE and the aggregates)"
                    ),
                ));
            }
        };
        if !arity.contains(&n) {
            return Err(err(
                ErrorKind::Type,
                f,
                format!("wrong number of arguments to function {name}()"),
            ));
        }
        if f.filter.is_some() && !matches!(func, WinFunc::Agg(_)) {
            return Err(err(
                ErrorKind::Type,
                f,
                "FILTER clause may only be used with aggregate window functions",
            ));
        }
        let mut bound_args = Vec::new();
        if !matches!(func, WinFunc::Agg(_)) {
            for a in args {
                let sql::FunctionArgExpr::Expr(a) = a else {
                    return Err(unsupported(f, "* as an argument of this window function"));
                };
                bound_args.push(self.expr(a, scope, aggs.as_deref_mut())?);
            }
        }
        let mut partition = Vec::with_capacity(spec.partition.len());
        for p in &spec.partition {
            partition.push(self.expr(p, scope, aggs.as_deref_mut())?);
        }
        let mut order = Vec::with_capacity(spec.order.len());
        for o in &spec.order {
            let desc = matches!(o.options.sort, Some(sql::OrderBySort::Desc));
            if matches!(o.options.sort, Some(sql::OrderBySort::Using(_))) {
                return Err(unsupported(&o.expr, "ORDER BY ... USING"));
            }
            order.push(OrderKey {
                expr: self.expr(&o.expr, scope, aggs.as_deref_mut())?,
                desc,
                // SQLite: NULLs are smallest (first ascending, last descending).
                nulls_first: o.options.nulls_first.unwrap_or(!desc),
            });
        }
        let frame = self.frame(f, spec.frame.as_ref(), order.len())?;
        Ok(WindowCall {
            func,
            args: bound_args,
            partition,
            order,
            frame,
        })
    }

    /// The call's window, a named one resolved: `OVER w` is w; `OVER (w
    /// ORDER BY ... frame)` adds to w an ORDER BY (when w has none) and a
    /// frame, never a PARTITION BY (SQLite's rules).
    fn spec(&self, f: &sql::Function) -> Result<Spec, QueryError> {
        let named = |id: &sql::Ident| -> Result<Spec, QueryError> {
            let def = self
                .windows
                .named
                .iter()
                .find(|d| d.0.value.eq_ignore_ascii_case(&id.value))
                .ok_or_else(|| {
                    err(
                        ErrorKind::Unknown,
                        f,
                        format!("no such window: {}", id.value),
                    )
                })?;
            match &def.1 {
                sql::NamedWindowExpr::WindowSpec(w) if w.window_name.is_none() => Ok(Spec {
                    partition: w.partition_by.clone(),
                    order: w.order_by.clone(),
                    frame: w.window_frame.clone(),
                }),
                _ => Err(unsupported(
                    f,
                    "a named window defined from another window: write its PARTITION BY and ORDER BY out",
                )),
            }
        };
        match &f.over {
            Some(sql::WindowType::NamedWindow(id)) => named(id),
            Some(sql::WindowType::WindowSpec(w)) => match &w.window_name {
                None => Ok(Spec {
                    partition: w.partition_by.clone(),
                    order: w.order_by.clone(),
                    frame: w.window_frame.clone(),
                }),
                Some(base) => {
                    let b = named(base)?;
                    if !w.partition_by.is_empty() {
                        return Err(err(
                            ErrorKind::Type,
                            f,
                            format!("cannot override PARTITION clause of window: {}", base.value),
                        ));
                    }
                    if !w.order_by.is_empty() && !b.order.is_empty() {
                        return Err(err(
                            ErrorKind::Type,
                            f,
                            format!("cannot override ORDER BY clause of window: {}", base.value),
                        ));
                    }
                    if b.frame.is_some() {
                        return Err(err(
                            ErrorKind::Type,
                            f,
                            format!(
                                "cannot override frame specification of window: {}",
                                base.value
                            ),
                        ));
                    }
                    Ok(Spec {
                        partition: b.partition,
                        order: if w.order_by.is_empty() {
                            b.order
                        } else {
                            w.order_by.clone()
                        },
                        frame: w.window_frame.clone(),
                    })
                }
            },
            None => Err(err(ErrorKind::Type, f, "a window call without OVER")),
        }
    }

    /// The frame as SQLite takes it: bounds in order (`1 FOLLOWING AND
    /// CURRENT ROW` is refused), offsets non-negative integer constants.
    fn frame(
        &mut self,
        f: &sql::Function,
        w: Option<&sql::WindowFrame>,
        order_keys: usize,
    ) -> Result<Frame, QueryError> {
        let Some(w) = w else {
            return Ok(Frame {
                units: FrameUnits::Range,
                start: FrameBound::UnboundedPreceding,
                end: FrameBound::CurrentRow,
            });
        };
        let units = match w.units {
            sql::WindowFrameUnits::Rows => FrameUnits::Rows,
            sql::WindowFrameUnits::Range => FrameUnits::Range,
            sql::WindowFrameUnits::Groups => FrameUnits::Groups,
        };
        let start = self.bound(&w.start_bound, "starting")?;
        let end = match &w.end_bound {
            Some(b) => self.bound(b, "ending")?,
            None => FrameBound::CurrentRow,
        };
        let rank = |b: FrameBound| match b {
            FrameBound::UnboundedPreceding => 0,
            FrameBound::Preceding(_) => 1,
            FrameBound::CurrentRow => 2,
            FrameBound::Following(_) => 3,
            FrameBound::UnboundedFollowing => 4,
        };
        if start == FrameBound::UnboundedFollowing
            || end == FrameBound::UnboundedPreceding
            || rank(start) > rank(end)
        {
            return Err(err(ErrorKind::Type, f, "unsupported frame specification"));
        }
        let offset =
            |b: FrameBound| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
        if units == FrameUnits::Range && (offset(start) || offset(end)) && order_keys != 1 {
            return Err(err(
                ErrorKind::Type,
                f,
                "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY term",
            ));
        }
        Ok(Frame { units, start, end })
    }

    fn bound(&mut self, b: &sql::WindowFrameBound, which: &str) -> Result<FrameBound, QueryError> {
        let mut offset = |e: &sql::Expr| -> Result<u64, QueryError> {
            let bound = self.expr(e, &Scope { sources: &[] }, None)?;
            let bad = || {
                err(
                    ErrorKind::Type,
                    e,
                    format!("frame {which} offset must be a non-negative integer"),
                )
            };
            match exec::eval_const(&bound).map_err(|_| bad())? {
                Value::Int(i) => u64::try_from(i).map_err(|_| bad()),
                Value::Real(r) if r >= 0.0 && r.fract() == 0.0 && r < 9.2e18 => Ok(r as u64),
                _ => Err(bad()),
            }
        };
        Ok(match b {
            sql::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
            sql::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
            sql::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
            sql::WindowFrameBound::Preceding(Some(e)) => FrameBound::Preceding(offset(e)?),
            sql::WindowFrameBound::Following(Some(e)) => FrameBound::Following(offset(e)?),
        })
    }
}

/// A bound on a column of a subquery in FROM, from the reading query's
/// WHERE: rows whose `column` is over `max` are not wanted.
pub(super) struct RankHint {
    column: String,
    max: u64,
}

/// The first top-level conjunct of `filter` that bounds a column from
/// above by an integer: `c <= K`, `c < K`, `c = K` (or the same turned
/// round, `K >= c` ...), `c` plain or qualified by `alias` (the subquery's;
/// another qualifier names another query's column).
pub(super) fn rank_hint(filter: Option<&sql::Expr>, alias: Option<&str>) -> Option<RankHint> {
    use sql::BinaryOperator as B;
    let column = |e: &sql::Expr| match e {
        sql::Expr::Identifier(id) => Some(id.value.clone()),
        sql::Expr::CompoundIdentifier(p) => match p.as_slice() {
            [q, c] if alias.is_some_and(|a| q.value.eq_ignore_ascii_case(a)) => {
                Some(c.value.clone())
            }
            _ => None,
        },
        _ => None,
    };
    let number = |e: &sql::Expr| match e {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Number(n, _) => n.parse::<u64>().ok(),
            _ => None,
        },
        _ => None,
    };
    match filter? {
        sql::Expr::BinaryOp {
            left,
            op: B::And,
            right,
        } => rank_hint(Some(left), alias).or_else(|| rank_hint(Some(right), alias)),
        sql::Expr::Nested(inner) => rank_hint(Some(inner), alias),
        sql::Expr::BinaryOp { left, op, right } => {
            // (column, op as read with the column on the left, K)
            let (c, op, k) = match (column(left), number(right), column(right), number(left)) {
                (Some(c), Some(k), _, _) => (c, op.clone(), k),
                (_, _, Some(c), Some(k)) => (
                    c,
                    match op {
                        B::GtEq => B::LtEq,
                        B::Gt => B::Lt,
                        other => other.clone(),
                    },
                    k,
                ),
                _ => return None,
            };
            let max = match op {
                B::LtEq | B::Eq => k,
                B::Lt => k.checked_sub(1)?,
                _ => return None,
            };
            Some(RankHint { column: c, max })
        }
        _ => None,
    }
}

/// Most rows per partition the rank limit keeps a list of: past it the
/// whole sort is as good.
const MAX_RANK_LIMIT: u64 = 256;

/// Sets `select.rank_limit` when the hint's column is a ROW_NUMBER, RANK or
/// DENSE_RANK of `select` and nothing else in `select` needs the rows over
/// the bound: every window call ranks over the same PARTITION BY and ORDER
/// BY (their values over the kept rows are then what they are over all),
/// and no LIMIT or OFFSET picks rows before the reading query's WHERE.
pub(super) fn apply_rank_hint(select: &mut Select, hint: &RankHint) {
    let mut named = select
        .names
        .iter()
        .zip(&select.projection)
        .filter(|(n, _)| n.eq_ignore_ascii_case(&hint.column));
    let (Some((_, Expr::Window(call))), None) = (named.next(), named.next()) else {
        return;
    };
    let Some(target) = select.windows.get(*call) else {
        return;
    };
    let ranking = |w: &WindowCall| {
        matches!(
            w.func,
            WinFunc::RowNumber | WinFunc::Rank | WinFunc::DenseRank
        ) && w.partition == target.partition
            && w.order == target.order
    };
    if hint.max <= MAX_RANK_LIMIT
        && select.limit.is_none()
        && select.offset == 0
        && select.windows.iter().all(ranking)
    {
        select.rank_limit = Some(RankLimit {
            call: *call,
            max: hint.max,
        });
    }
}
