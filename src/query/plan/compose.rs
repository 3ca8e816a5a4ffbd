//! Query composition: common table expressions (WITH, WITH RECURSIVE),
//! subqueries and VALUES in FROM, compound SELECTs (UNION [ALL],
//! INTERSECT, EXCEPT) and VALUES as a query.
//!
//! Each of them is materialised while the query is bound (as IN
//! subqueries are): its rows become a table (`TypedTable::from_values`)
//! that the query reads like any other source, so execution, streaming
//! and the result cache need nothing new. A CTE is computed once, on its
//! first reference. What they hold is bounded by `max_rows_in_memory`
//! (`TooLarge` past it) and every loop checks the interrupt. Their columns
//! follow SQLite's type rules for views: a column that is a column
//! reference keeps that column's type (its affinity), any other has none.

use std::collections::HashSet;
use std::sync::Arc;

use sqlparser::ast as sql;
use sqlparser::ast::Spanned;

use super::super::ast::{Expr, OrderKey, Select, Source};
use super::super::error::{ErrorKind, QueryError};
use super::super::exec::{self, SetOp};
use super::super::table::{TableRef, TypedTable};
use super::super::value::{Type, Value};
use super::{Binder, err, ordinal, unsupported};

/// A common table expression in scope.
pub(super) struct Cte {
    name: String,
    /// Column names the WITH clause gives (`c(a, b) AS ...`), if any.
    columns: Vec<String>,
    query: sql::Query,
    recursive: bool,
    /// Its rows once computed (or, while a recursive CTE is bound, its
    /// working table).
    table: Option<TableRef>,
    /// Being computed: a reference from inside is not to it (a recursive
    /// CTE's own reference aside).
    busy: bool,
    /// References resolved to it (a recursive CTE's must all be in its
    /// recursive SELECT's FROM).
    refs: usize,
}

/// Rows a query made, with its column names and their affinities.
pub(super) struct Rows {
    pub names: Vec<String>,
    pub types: Vec<Option<Type>>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    fn table(self) -> TableRef {
        Arc::new(TypedTable::from_values(self.names, self.types, self.rows))
    }
}

/// The affinity of a result column (SQLite, views and CTEs): a column
/// reference's type, else none.
pub(super) fn result_affinity(select: &Select, e: &Expr) -> Option<Type> {
    match e {
        Expr::Col(_, t) => *t,
        Expr::Key(i) => match &select.grouping {
            Some((keys, _)) => match keys.get(*i) {
                Some(Expr::Col(_, t)) => *t,
                _ => None,
            },
            None => None,
        },
        _ => None,
    }
}

/// A query with only `body` (no WITH, ORDER BY or LIMIT): an arm of a
/// compound, bound as a query of its own.
fn arm_query(q: &sql::Query, body: &sql::SetExpr) -> sql::Query {
    let mut arm = q.clone();
    arm.with = None;
    arm.body = Box::new(body.clone());
    arm.order_by = None;
    arm.limit_clause = None;
    arm
}

/// The arms of a compound in the order written, and the operators between
/// them. sqlparser binds INTERSECT tighter than UNION and EXCEPT (the SQL
/// standard); in SQLite all have one precedence, left to right: walking
/// the tree in order and folding from the left gives SQLite's reading. A
/// parenthesised arm stays a `SetExpr::Query` (SQLite refuses those).
fn flatten<'a>(
    e: &'a sql::SetExpr,
    arms: &mut Vec<&'a sql::SetExpr>,
    ops: &mut Vec<(sql::SetOperator, sql::SetQuantifier)>,
) {
    match e {
        sql::SetExpr::SetOperation {
            left,
            op,
            set_quantifier,
            right,
        } => {
            flatten(left, arms, ops);
            ops.push((*op, *set_quantifier));
            flatten(right, arms, ops);
        }
        other => arms.push(other),
    }
}

/// Whether the last SELECT of a query body is VALUES.
fn ends_in_values(body: &sql::SetExpr) -> bool {
    match body {
        sql::SetExpr::Values(_) => true,
        sql::SetExpr::SetOperation { right, .. } => ends_in_values(right),
        _ => false,
    }
}

fn set_op(
    node: &sql::Query,
    (op, quantifier): (sql::SetOperator, sql::SetQuantifier),
) -> Result<SetOp, QueryError> {
    use sql::SetQuantifier as Q;
    Ok(match (op, quantifier) {
        (sql::SetOperator::Union, Q::All) => SetOp::UnionAll,
        (sql::SetOperator::Union, Q::None | Q::Distinct) => SetOp::Union,
        (sql::SetOperator::Intersect, Q::None) => SetOp::Intersect,
        (sql::SetOperator::Except, Q::None) => SetOp::Except,
        _ => {
            return Err(unsupported(
                node,
                &format!("{op} {quantifier} (UNION, UNION ALL, INTERSECT and EXCEPT are)"),
            ));
        }
    })
}

impl Binder<'_> {
    /// The hook of `bind_query` for what is not one plain SELECT: a WITH
    /// clause (its CTEs in scope while the rest is bound), a compound
    /// SELECT or VALUES (materialised, then read back with the query's
    /// ORDER BY and LIMIT). None: a plain SELECT, for `bind_query`.
    pub(super) fn compose(&mut self, q: &sql::Query) -> Result<Option<Select>, QueryError> {
        if let Some(with) = &q.with {
            let scope_start = self.ctes.len();
            for cte in &with.cte_tables {
                if cte.materialized.is_some() || cte.from.is_some() {
                    return Err(unsupported(q, "MATERIALIZED hints on a CTE"));
                }
                self.ctes.push(Cte {
                    name: cte.alias.name.value.clone(),
                    columns: cte
                        .alias
                        .columns
                        .iter()
                        .map(|c| c.name.value.clone())
                        .collect(),
                    query: (*cte.query).clone(),
                    recursive: with.recursive,
                    table: None,
                    busy: false,
                    refs: 0,
                });
            }
            let mut rest = q.clone();
            rest.with = None;
            let bound = self.bind_query(&rest);
            self.ctes.truncate(scope_start);
            return bound.map(Some);
        }
        match &*q.body {
            sql::SetExpr::Select(_) => Ok(None),
            sql::SetExpr::Query(inner) => {
                if q.order_by.is_none() && q.limit_clause.is_none() {
                    self.bind_query(inner).map(Some)
                } else {
                    let rows = self.materialize(inner)?;
                    self.read_back(q, rows, "").map(Some)
                }
            }
            _ if (q.order_by.is_some() || q.limit_clause.is_some()) && ends_in_values(&q.body) => {
                // SQLite's grammar: a query ending in VALUES takes no ORDER
                // BY or LIMIT.
                Err(err(
                    ErrorKind::Syntax,
                    q,
                    "VALUES takes no ORDER BY or LIMIT: write SELECT * FROM (VALUES ...) ORDER BY ...",
                ))
            }
            sql::SetExpr::SetOperation { .. } | sql::SetExpr::Values(_) => {
                let rows = self.set_rows(q, &q.body)?;
                self.read_back(q, rows, "").map(Some)
            }
            _ => Err(unsupported(q, "this kind of query")),
        }
    }

    /// The rows of any query, run whole.
    pub(super) fn materialize(&mut self, q: &sql::Query) -> Result<Rows, QueryError> {
        self.materialize_with(q, None)
    }

    /// `materialize`, keeping only the rows a rank hint of the reading
    /// query wants where the subquery's shape allows (`apply_rank_hint`).
    fn materialize_with(
        &mut self,
        q: &sql::Query,
        hint: Option<super::window::RankHint>,
    ) -> Result<Rows, QueryError> {
        let mut select = self.bind_query(q)?;
        if let Some(hint) = hint {
            super::window::apply_rank_hint(&mut select, &hint);
        }
        let types = select
            .projection
            .iter()
            .map(|e| result_affinity(&select, e))
            .collect();
        let result = exec::run_whole(&select, &self.engine.env())?;
        Ok(Rows {
            names: result.columns,
            types,
            rows: result.rows,
        })
    }

    /// A SELECT reading `rows` as its one source, with `q`'s ORDER BY
    /// (ordinals or result column names, as SQLite takes them for a
    /// compound) and LIMIT.
    fn read_back(&mut self, q: &sql::Query, rows: Rows, name: &str) -> Result<Select, QueryError> {
        let names = rows.names.clone();
        let types = rows.types.clone();
        let source = derived_source(name, name, rows.table(), 0);
        let projection: Vec<Expr> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Expr::Col(i, *t))
            .collect();
        let mut order = Vec::new();
        let terms: &[sql::OrderByExpr] = match q.order_by.as_ref().map(|o| &o.kind) {
            None => &[],
            Some(sql::OrderByKind::Expressions(e)) => e,
            Some(sql::OrderByKind::All(_)) => return Err(unsupported(q, "ORDER BY ALL")),
        };
        for (n, o) in terms.iter().enumerate() {
            let by_name = match &o.expr {
                sql::Expr::Identifier(id) => {
                    names.iter().position(|c| c.eq_ignore_ascii_case(&id.value))
                }
                _ => None,
            };
            let i = match (ordinal(&o.expr), by_name) {
                (Some(i), _) if (1..=names.len()).contains(&i) => i - 1,
                (Some(i), _) => {
                    return Err(err(
                        ErrorKind::Unknown,
                        &o.expr,
                        format!("ORDER BY term out of range: {i}"),
                    ));
                }
                (None, Some(i)) => i,
                (None, None) => {
                    return Err(err(
                        ErrorKind::Unknown,
                        &o.expr,
                        format!(
                            "ORDER BY term {} of a compound SELECT does not match a result column: name a column of its first SELECT or give its ordinal",
                            n + 1
                        ),
                    ));
                }
            };
            if matches!(o.options.sort, Some(sql::OrderBySort::Using(_))) {
                return Err(unsupported(&o.expr, "ORDER BY ... USING"));
            }
            let desc = matches!(o.options.sort, Some(sql::OrderBySort::Desc));
            order.push(OrderKey {
                expr: projection[i].clone(),
                desc,
                nulls_first: o.options.nulls_first.unwrap_or(!desc),
            });
        }
        let (limit, offset) = self.limit(q)?;
        Ok(Select {
            sources: vec![source],
            joins: Vec::new(),
            filter: None,
            grouping: None,
            having: None,
            projection,
            names,
            distinct: false,
            order,
            limit,
            offset,
            windows: Vec::new(),
            rank_limit: None,
        })
    }

    /// The rows of a compound SELECT or VALUES (`body` of `q`), before
    /// `q`'s ORDER BY and LIMIT.
    fn set_rows(&mut self, q: &sql::Query, body: &sql::SetExpr) -> Result<Rows, QueryError> {
        let mut arms = Vec::new();
        let mut ops = Vec::new();
        flatten(body, &mut arms, &mut ops);
        let mut acc: Option<Rows> = None;
        for (i, arm) in arms.iter().enumerate() {
            let rows = self.arm_rows(q, arm)?;
            acc = Some(match acc {
                None => rows,
                Some(mut left) => {
                    let op = set_op(q, ops[i - 1])?;
                    if rows.names.len() != left.names.len() {
                        return Err(err(
                            ErrorKind::Type,
                            q,
                            format!(
                                "SELECTs to the left and right of {} do not have the same number of result columns",
                                ops[i - 1].0
                            ),
                        ));
                    }
                    // A column has an affinity when every arm's agrees.
                    for (t, r) in left.types.iter_mut().zip(&rows.types) {
                        if *t != *r {
                            *t = None;
                        }
                    }
                    let limits = self.engine.env().limits;
                    left.rows = exec::combine(op, left.rows, rows.rows, limits)?;
                    left
                }
            });
        }
        acc.ok_or_else(|| err(ErrorKind::Syntax, q, "an empty compound SELECT"))
    }

    /// One arm of a compound: a SELECT or VALUES.
    fn arm_rows(&mut self, q: &sql::Query, arm: &sql::SetExpr) -> Result<Rows, QueryError> {
        match arm {
            sql::SetExpr::Select(_) => self.materialize(&arm_query(q, arm)),
            sql::SetExpr::Values(v) => self.values(v),
            _ => Err(unsupported(
                q,
                "a parenthesised SELECT in a compound (write the SELECTs without parentheses)",
            )),
        }
    }

    /// VALUES (...), (...): constant rows, columns `column1`, `column2`,
    /// ... without affinity (as SQLite).
    fn values(&mut self, v: &sql::Values) -> Result<Rows, QueryError> {
        let width = v.rows.first().map_or(0, |r| r.content.len());
        let cap = self.engine.env().limits.max_rows_in_memory as usize;
        let mut rows = Vec::with_capacity(v.rows.len().min(cap));
        for r in &v.rows {
            if r.content.len() != width {
                return Err(QueryError::new(
                    ErrorKind::Type,
                    "all VALUES must have the same number of terms",
                ));
            }
            if rows.len() >= cap {
                return Err(exec::too_large(self.engine.env().limits));
            }
            let row = r
                .content
                .iter()
                .map(|e| self.const_expr(e))
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(row);
        }
        Ok(Rows {
            names: (1..=width).map(|i| format!("column{i}")).collect(),
            types: vec![None; width],
            rows,
        })
    }

    /// The hook of `source` for a FROM item that is not a stored table: a
    /// subquery (or VALUES) in parentheses, or the name of a CTE in scope.
    /// None: a table of the database.
    pub(super) fn composed_source(
        &mut self,
        f: &sql::TableFactor,
        offset: usize,
    ) -> Result<Option<Source>, QueryError> {
        match f {
            sql::TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                if *lateral || sample.is_some() {
                    return Err(unsupported(f, "LATERAL and TABLESAMPLE"));
                }
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    return Err(unsupported(
                        f,
                        "column names after a subquery's alias (name them in its SELECT)",
                    ));
                }
                let hint = self.rank_hint.take();
                let rows = self.materialize_with(subquery, hint)?;
                let name = alias.as_ref().map_or("", |a| a.name.value.as_str());
                Ok(Some(derived_source(name, name, rows.table(), offset)))
            }
            sql::TableFactor::Table {
                name,
                alias,
                version: None,
                args: None,
                ..
            } if name.0.len() == 1 => {
                let table_name = name.to_string();
                let Some(i) = self
                    .ctes
                    .iter()
                    .rposition(|c| !c.busy && c.name.eq_ignore_ascii_case(&table_name))
                else {
                    return Ok(None);
                };
                let table = match &self.ctes[i].table {
                    Some(t) => Arc::clone(t),
                    None => self.compute_cte(i, f)?,
                };
                self.ctes[i].refs += 1;
                let cte_name = self.ctes[i].name.clone();
                let alias = alias
                    .as_ref()
                    .map_or_else(|| cte_name.clone(), |a| a.name.value.clone());
                Ok(Some(derived_source(&cte_name, &alias, table, offset)))
            }
            _ => Ok(None),
        }
    }

    /// Computes CTE `i` (once: the table is kept for every later
    /// reference).
    fn compute_cte(&mut self, i: usize, node: &sql::TableFactor) -> Result<TableRef, QueryError> {
        let q = self.ctes[i].query.clone();
        self.ctes[i].busy = true;
        let rows = match (self.ctes[i].recursive, &*q.body) {
            (true, sql::SetExpr::SetOperation { .. }) => self.recursive_cte(i, &q),
            _ => self.materialize(&q),
        };
        self.ctes[i].busy = false;
        let rows = self.named(i, rows?, node)?;
        let table = rows.table();
        self.ctes[i].table = Some(Arc::clone(&table));
        Ok(table)
    }

    /// The rows of CTE `i` with the column names its WITH gives.
    fn named(&self, i: usize, mut rows: Rows, node: &impl Spanned) -> Result<Rows, QueryError> {
        let cte = &self.ctes[i];
        if !cte.columns.is_empty() {
            if cte.columns.len() != rows.names.len() {
                return Err(err(
                    ErrorKind::Type,
                    node,
                    format!(
                        "table {} has {} values for {} columns",
                        cte.name,
                        rows.names.len(),
                        cte.columns.len()
                    ),
                ));
            }
            rows.names = cte.columns.clone();
        }
        Ok(rows)
    }

    /// A recursive CTE: `initial UNION [ALL] recursive`, where the last
    /// SELECT reads the CTE itself. Run as SQLite does, breadth first: the
    /// recursive SELECT reads the rows the previous step added (for UNION,
    /// the ones not seen before) until a step adds none, or the CTE's own
    /// LIMIT is reached. Bounded by `max_rows_in_memory` (all rows made
    /// are held) and the time limit.
    fn recursive_cte(&mut self, i: usize, q: &sql::Query) -> Result<Rows, QueryError> {
        // The last operator and SELECT written (see `flatten`).
        let mut arms = Vec::new();
        let mut ops = Vec::new();
        flatten(&q.body, &mut arms, &mut ops);
        let (Some(last), Some(last_op)) = (arms.pop(), ops.pop()) else {
            return self.materialize(q);
        };
        let distinct = match set_op(q, last_op)? {
            SetOp::UnionAll => false,
            SetOp::Union => true,
            // Not a recursive form: an ordinary compound.
            _ => return self.materialize(q),
        };
        // The initial rows: every arm before the last, combined.
        let initial = if arms.len() == 1 {
            self.arm_rows(q, arms[0])?
        } else {
            let mut body = arms[0].clone();
            for (arm, (o, quant)) in arms[1..].iter().zip(&ops) {
                body = sql::SetExpr::SetOperation {
                    left: Box::new(body),
                    op: *o,
                    set_quantifier: *quant,
                    right: Box::new((*arm).clone()),
                };
            }
            self.set_rows(q, &body)?
        };
        let initial = self.named(i, initial, q)?;
        let names = initial.names.clone();
        let types = initial.types.clone();
        // The recursive SELECT, bound once over a working table that each
        // step replaces.
        let working = |rows: Vec<Vec<Value>>| -> TableRef {
            Arc::new(TypedTable::from_values(names.clone(), types.clone(), rows))
        };
        let (limit, offset) = self.limit(q)?;
        if q.order_by.is_some() {
            return Err(unsupported(q, "ORDER BY in a recursive CTE"));
        }
        let wanted = limit.map(|l| l.saturating_add(offset));
        let mut seen: HashSet<Vec<Value>> = HashSet::new();
        let mut all: Vec<Vec<Value>> = Vec::new();
        let mut frontier: Vec<Vec<Value>> = Vec::new();
        let limits = self.engine.env().limits;
        let cap = limits.max_rows_in_memory as usize;
        let mut add = |row: Vec<Value>,
                       all: &mut Vec<Vec<Value>>,
                       frontier: &mut Vec<Vec<Value>>|
         -> Result<bool, QueryError> {
            limits.interrupt.check()?;
            if wanted.is_some_and(|w| all.len() as u64 >= w) {
                return Ok(false);
            }
            if distinct && !seen.insert(row.clone()) {
                return Ok(true);
            }
            if all.len() >= cap {
                return Err(exec::too_large(limits));
            }
            all.push(row.clone());
            frontier.push(row);
            Ok(true)
        };
        for row in initial.rows {
            if !add(row, &mut all, &mut frontier)? {
                break;
            }
        }
        let first = working(frontier.clone());
        self.ctes[i].busy = false;
        self.ctes[i].table = Some(Arc::clone(&first));
        self.ctes[i].refs = 0;
        let bound = self.bind_query(&arm_query(q, last));
        self.ctes[i].table = None;
        self.ctes[i].busy = true;
        let mut select = bound?;
        let own: Vec<usize> = (0..select.sources.len())
            .filter(|&s| Arc::ptr_eq(&select.sources[s].table, &first))
            .collect();
        if own.is_empty() {
            // Not recursive after all: an ordinary compound.
            return self.materialize(q);
        }
        if own.len() != self.ctes[i].refs {
            return Err(unsupported(
                q,
                "a recursive CTE read inside a subquery of its recursive SELECT (read it in that SELECT's FROM)",
            ));
        }
        if select.grouping.is_some() || select.distinct {
            return Err(unsupported(
                q,
                "aggregates or DISTINCT in the recursive SELECT of a CTE",
            ));
        }
        let env = self.engine.env();
        while !frontier.is_empty() && wanted.is_none_or(|w| (all.len() as u64) < w) {
            limits.interrupt.check()?;
            let table = working(std::mem::take(&mut frontier));
            for &s in &own {
                select.sources[s].table = Arc::clone(&table);
            }
            let step = exec::run_whole(&select, &env)?;
            for row in step.rows {
                if !add(row, &mut all, &mut frontier)? {
                    break;
                }
            }
        }
        let rows = all
            .into_iter()
            .skip(offset as usize)
            .take(limit.map_or(usize::MAX, |l| l as usize))
            .collect();
        Ok(Rows {
            names: initial.names,
            types: initial.types,
            rows,
        })
    }
}

/// A source over rows this query made (`Source::is_derived`).
fn derived_source(name: &str, alias: &str, table: TableRef, offset: usize) -> Source {
    Source {
        name: name.to_string(),
        alias: alias.to_string(),
        table,
        version: String::new(),
        offset,
    }
}
