//! Subqueries in expressions: `EXISTS (SELECT ...)` and scalar subqueries
//! `(SELECT x ...)` (one column; the first row's value, NULL without a
//! row).
//!
//! An uncorrelated one runs once, while the query is bound. A correlated
//! one (its WHERE names a column of the outer query) is decorrelated, so it
//! never runs per outer row: its WHERE must be `inner = outer AND <inner
//! conditions>`; the subquery then runs once without that equality,
//! keyed by `inner` (grouped by it for an aggregate, its first row per key
//! otherwise, the keys present for EXISTS), and each outer row looks its
//! key up (`Expr::Subquery`). A key no inner row has gives what the
//! subquery gives over no rows (`COUNT(*)` 0, `SUM` NULL, EXISTS false):
//! computed by running it once with a WHERE that is false. Other
//! correlated shapes are refused with a message saying what is supported.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast as sql;

use super::super::ast::{CmpOp, Coerce, Expr, Select, SubqueryValues};
use super::super::error::{ErrorKind, QueryError};
use super::super::exec;
use super::super::value::{Type, Value};
use super::{Binder, Scope, err, has_aggregate, unsupported};

/// What a correlated subquery is decorrelated into.
struct Correlated {
    /// The inner side of the correlating equality, and the outer side bound
    /// over the outer query's row.
    inner: sql::Expr,
    outer: Expr,
    /// The rest of the subquery's WHERE (inner conditions only).
    rest: Option<sql::Expr>,
}

fn conjuncts<'a>(e: &'a sql::Expr, out: &mut Vec<&'a sql::Expr>) {
    match e {
        sql::Expr::BinaryOp {
            left,
            op: sql::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        sql::Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    }
}

fn and_all(parts: Vec<sql::Expr>) -> Option<sql::Expr> {
    parts.into_iter().reduce(|a, b| sql::Expr::BinaryOp {
        left: Box::new(a),
        op: sql::BinaryOperator::And,
        right: Box::new(b),
    })
}

/// `q` with its SELECT changed by `f` (q's body is a plain SELECT).
fn with_select(q: &sql::Query, f: impl FnOnce(&mut sql::Select)) -> sql::Query {
    let mut out = q.clone();
    if let sql::SetExpr::Select(s) = &mut *out.body {
        f(s);
    }
    out
}

fn false_literal() -> sql::Expr {
    sql::Expr::value(sql::Value::Number("0".to_string(), false))
}

fn correlated_refused(node: &sql::Query) -> QueryError {
    unsupported(
        node,
        "this correlated subquery: it may name the outer query only in one equality of its WHERE, `inner = outer AND <conditions on the inner tables>` (no GROUP BY, HAVING, OFFSET or a LIMIT other than 1)",
    )
}

impl Binder<'_> {
    /// `[NOT] EXISTS (SELECT ...)`.
    pub(super) fn exists(
        &mut self,
        q: &sql::Query,
        negated: bool,
        scope: &Scope,
    ) -> Result<Expr, QueryError> {
        let c = match self.bind_query(q) {
            Ok(select) => {
                let found = !exec::run_whole(&select, &self.engine.env())?
                    .rows
                    .is_empty();
                return Ok(Expr::Lit(Value::Int(i64::from(found != negated))));
            }
            Err(e) => self.decorrelate(q, scope, e)?,
        };
        let sql::SetExpr::Select(s) = &*q.body else {
            return Err(correlated_refused(q));
        };
        let grouped = !matches!(&s.group_by, sql::GroupByExpr::Expressions(g, _) if g.is_empty())
            || s.having.is_some()
            || s.projection.iter().any(|i| match i {
                sql::SelectItem::UnnamedExpr(e)
                | sql::SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
                _ => false,
            });
        let (limit, offset) = self.limit(q)?;
        if grouped || offset > 0 {
            return Err(correlated_refused(q));
        }
        let keys = with_select(q, |s| {
            s.projection = vec![sql::SelectItem::UnnamedExpr(c.inner.clone())];
            s.selection = c.rest.clone();
            s.distinct = Some(sql::Distinct::Distinct);
        });
        let mut keys = keys;
        keys.order_by = None;
        keys.limit_clause = None;
        let select = self.bind_query(&keys)?;
        let (inner_affinity, key_affinity) = coercion(&select, &select.projection[0], &c.outer);
        let mut by_key = HashMap::new();
        // LIMIT 0: no row, whatever the key.
        if limit != Some(0) {
            for row in exec::run_whole(&select, &self.engine.env())?.rows {
                self.engine.env().limits.interrupt.check()?;
                if let Some(k) = key_of(row.into_iter().next(), inner_affinity) {
                    by_key.insert(k, Value::Int(1));
                }
            }
        }
        let e = Expr::Subquery(
            Some(Box::new(c.outer)),
            Arc::new(SubqueryValues {
                by_key,
                key_affinity,
                otherwise: Value::Int(0),
                affinity: None,
            }),
        );
        Ok(if negated { Expr::Not(Box::new(e)) } else { e })
    }

    /// A scalar subquery `(SELECT x ...)`.
    pub(super) fn scalar_subquery(
        &mut self,
        q: &sql::Query,
        scope: &Scope,
    ) -> Result<Expr, QueryError> {
        let c = match self.bind_query(q) {
            Ok(select) => {
                one_column(q, select.projection.len())?;
                let affinity = super::compose::result_affinity(&select, &select.projection[0]);
                let value = exec::run_whole(&select, &self.engine.env())?
                    .rows
                    .into_iter()
                    .next()
                    .and_then(|r| r.into_iter().next())
                    .unwrap_or(Value::Null);
                return Ok(match affinity {
                    None => Expr::Lit(value),
                    Some(_) => Expr::Subquery(
                        None,
                        Arc::new(SubqueryValues {
                            by_key: HashMap::new(),
                            key_affinity: None,
                            otherwise: value,
                            affinity,
                        }),
                    ),
                });
            }
            Err(e) => self.decorrelate(q, scope, e)?,
        };
        let sql::SetExpr::Select(s) = &*q.body else {
            return Err(correlated_refused(q));
        };
        let item = match s.projection.as_slice() {
            [sql::SelectItem::UnnamedExpr(e)]
            | [sql::SelectItem::ExprWithAlias { expr: e, .. }] => e.clone(),
            [_] => return Err(correlated_refused(q)),
            items => return one_column(q, items.len()).map(|()| Expr::Lit(Value::Null)),
        };
        let no_group = matches!(&s.group_by, sql::GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
        let (limit, offset) = self.limit(q)?;
        if !no_group || s.having.is_some() || offset > 0 || limit.is_some_and(|l| l != 1) {
            return Err(correlated_refused(q));
        }
        let aggregate = has_aggregate(&item);
        let mut keyed = with_select(q, |s| {
            s.projection = vec![
                sql::SelectItem::UnnamedExpr(c.inner.clone()),
                sql::SelectItem::UnnamedExpr(item.clone()),
            ];
            s.selection = c.rest.clone();
            if aggregate {
                s.group_by = sql::GroupByExpr::Expressions(vec![c.inner.clone()], Vec::new());
            }
        });
        keyed.limit_clause = None;
        if aggregate {
            keyed.order_by = None;
        }
        let select = self.bind_query(&keyed)?;
        let (inner_affinity, key_affinity) = coercion(&select, &select.projection[0], &c.outer);
        if aggregate && inner_affinity.is_some() {
            // Groups of inner values that only the affinity makes equal
            // would have to merge.
            return Err(correlated_refused(q));
        }
        let affinity = if aggregate {
            None
        } else {
            super::compose::result_affinity(&select, &select.projection[1])
        };
        let mut by_key = HashMap::new();
        for row in exec::run_whole(&select, &self.engine.env())?.rows {
            self.engine.env().limits.interrupt.check()?;
            let mut row = row.into_iter();
            if let Some(k) = key_of(row.next(), inner_affinity) {
                // The first row per key (in the subquery's order).
                by_key
                    .entry(k)
                    .or_insert_with(|| row.next().unwrap_or(Value::Null));
            }
        }
        // Over no rows: an aggregate still gives a row (COUNT 0, SUM NULL);
        // anything else none, NULL.
        let otherwise = if aggregate {
            let empty = with_select(q, |s| s.selection = Some(false_literal()));
            let select = self.bind_query(&empty)?;
            exec::run_whole(&select, &self.engine.env())?
                .rows
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        Ok(Expr::Subquery(
            Some(Box::new(c.outer)),
            Arc::new(SubqueryValues {
                by_key,
                key_affinity,
                otherwise,
                affinity,
            }),
        ))
    }

    /// Whether `e` binds over the subquery's own FROM (without the outer
    /// query).
    fn binds_inner(&mut self, q: &sql::Query, e: &sql::Expr) -> bool {
        self.inner_error(q, e).is_none()
    }

    /// Why `e` does not bind over the subquery's own FROM, if it does not.
    fn inner_error(&mut self, q: &sql::Query, e: &sql::Expr) -> Option<QueryError> {
        let mut probe = with_select(q, |s| {
            s.projection = vec![sql::SelectItem::UnnamedExpr(e.clone())];
            s.selection = None;
            s.group_by = sql::GroupByExpr::Expressions(Vec::new(), Vec::new());
            s.having = None;
            s.distinct = None;
        });
        probe.order_by = None;
        probe.limit_clause = None;
        self.bind_query(&probe).err()
    }

    /// Whether the name an error of `inner_error` points at is a column
    /// of the outer query (then the subquery is correlated there).
    fn names_outer(&self, e: &QueryError, scope: &Scope) -> bool {
        let Some((line, col)) = e.pos else {
            return false;
        };
        let Some(text) = self.sql.lines().nth(line.saturating_sub(1) as usize) else {
            return false;
        };
        let rest: String = text
            .chars()
            .skip(col.saturating_sub(1) as usize)
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.'))
            .collect();
        let (qualifier, name) = match rest.rsplit_once('.') {
            Some((q, n)) => (Some(q), n),
            None => (None, rest.as_str()),
        };
        matches!(scope.column(qualifier, name), Ok(Some(_)))
    }

    /// The decorrelation of `q`, which failed to bind alone with `failed`:
    /// that error when no conjunct of its WHERE names the outer query, a
    /// refusal when one does in a shape not supported.
    fn decorrelate(
        &mut self,
        q: &sql::Query,
        scope: &Scope,
        failed: QueryError,
    ) -> Result<Correlated, QueryError> {
        if failed.kind != ErrorKind::Unknown || q.with.is_some() {
            return Err(failed);
        }
        let sql::SetExpr::Select(s) = &*q.body else {
            return Err(failed);
        };
        let Some(w) = &s.selection else {
            return Err(failed);
        };
        let mut parts = Vec::new();
        conjuncts(w, &mut parts);
        let mut key: Option<(sql::Expr, Expr)> = None;
        let mut rest = Vec::new();
        let mut outer_named = false;
        for part in parts {
            let Some(why) = self.inner_error(q, part) else {
                rest.push(part.clone());
                continue;
            };
            let mut matched = false;
            if let sql::Expr::BinaryOp {
                left,
                op: sql::BinaryOperator::Eq,
                right,
            } = part
            {
                for (inner, outer) in [(left, right), (right, left)] {
                    if matched || !self.binds_inner(q, inner) || self.binds_inner(q, outer) {
                        continue;
                    }
                    if let Ok(o) = self.expr(outer, scope, None) {
                        outer_named = true;
                        if key.is_none() {
                            key = Some(((**inner).clone(), o));
                            matched = true;
                        }
                    }
                }
            }
            if !matched {
                outer_named |= self.names_outer(&why, scope);
                return Err(if outer_named {
                    correlated_refused(q)
                } else {
                    failed
                });
            }
        }
        let Some((inner, outer)) = key else {
            return Err(failed);
        };
        Ok(Correlated {
            inner,
            outer,
            rest: and_all(rest),
        })
    }
}

/// The affinities of the correlating `inner = outer`, as `=` applies them:
/// (to the inner values, to the outer key).
fn coercion(select: &Select, inner: &Expr, outer: &Expr) -> (Option<Type>, Option<Type>) {
    // A grouped subquery's key column is `Key(i)` once lifted: its
    // affinity is the key expression's.
    let inner = match (inner, &select.grouping) {
        (Expr::Key(i), Some((keys, _))) => keys.get(*i).unwrap_or(inner),
        _ => inner,
    };
    match super::expr::cmp(CmpOp::Eq, inner.clone(), outer.clone()) {
        Expr::Cmp(_, _, _, Coerce(a, b)) => (a, b),
        _ => (None, None),
    }
}

/// An inner key as the lookup holds it: with the affinity applied; NULL
/// matches no outer key.
fn key_of(v: Option<Value>, affinity: Option<Type>) -> Option<Value> {
    let v = v?;
    let v = match affinity {
        Some(t) => v.with_affinity(t),
        None => v,
    };
    (!v.is_null()).then_some(v)
}

fn one_column(q: &sql::Query, n: usize) -> Result<(), QueryError> {
    if n == 1 {
        return Ok(());
    }
    Err(err(
        ErrorKind::Type,
        q,
        format!("sub-select returns {n} columns - expected 1"),
    ))
}
