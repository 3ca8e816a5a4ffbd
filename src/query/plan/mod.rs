//! Binding: a parsed SELECT becomes a plan over the tables' rows. Names
//! are resolved (case-insensitively), column types give comparisons their
//! affinity, aggregates are collected, and everything ReedQL does not
//! support is refused with its position.

use sqlparser::ast as sql;
use sqlparser::ast::Spanned;

use super::Engine;
use super::ast::{AggCall, CmpOp, Expr, Join, OrderKey, Select, Source};
use super::error::{ErrorKind, QueryError};
use super::exec;
use super::value::{Type, Value};

mod aggregate;
mod compose;
mod expr;
mod history;
mod scalar;
mod subquery;
mod window;

use expr::fold;

fn pos_of(node: &impl Spanned) -> Option<(u64, u64)> {
    let s = node.span().start;
    (s.line > 0).then_some((s.line, s.column))
}

fn err(kind: ErrorKind, node: &impl Spanned, message: impl Into<String>) -> QueryError {
    QueryError::new(kind, message).at(pos_of(node))
}

fn unsupported(node: &impl Spanned, what: &str) -> QueryError {
    err(
        ErrorKind::Unsupported,
        node,
        format!("ReedQL does not support {what}"),
    )
}

/// The select items as typed (for result column names): the text after
/// SELECT [DISTINCT|ALL] up to FROM (or the end), split at top-level commas.
fn select_item_texts(sql: &str, select: &sql::Select) -> Option<Vec<String>> {
    let start = select.select_token.0.span.end;
    let mut at = 0;
    for (i, l) in sql.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == start.line {
            at += l
                .char_indices()
                .nth(start.column.checked_sub(1)? as usize)
                .map_or(l.len(), |(b, _)| b);
            break;
        }
        at += l.len();
    }
    let rest = sql.get(at..)?;
    let mut items = Vec::new();
    let (mut depth, mut quote, mut item_start) = (0i32, None::<char>, 0usize);
    let bytes = rest.as_bytes();
    let mut end = rest.len();
    let mut i = 0;
    while i < rest.len() {
        let c = bytes[i] as char;
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '[' => quote = Some(']'),
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(rest[item_start..i].trim().to_string());
                    item_start = i + 1;
                }
                _ if depth == 0
                    && rest
                        .get(i..i + 4)
                        .is_some_and(|w| w.eq_ignore_ascii_case("from"))
                    && (i == 0
                        || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
                    && rest
                        .get(i + 4..)
                        .and_then(|r| r.chars().next())
                        .is_none_or(|n| !n.is_alphanumeric() && n != '_') =>
                {
                    end = i;
                    break;
                }
                _ => {}
            },
        }
        i += 1;
    }
    items.push(rest[item_start..end].trim().to_string());
    if let Some(first) = items.first_mut() {
        for kw in ["DISTINCT", "ALL"] {
            if first
                .get(..kw.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(kw))
                && first
                    .as_bytes()
                    .get(kw.len())
                    .is_some_and(u8::is_ascii_whitespace)
            {
                *first = first[kw.len()..].trim().to_string();
            }
        }
    }
    (items.len() == select.projection.len()).then_some(items)
}

/// The text of `node` as typed in `sql` (for result column names).
fn typed_text(sql: &str, node: &impl Spanned) -> Option<String> {
    let span = node.span();
    let offset = |line: u64, col: u64| -> Option<usize> {
        let mut at = 0;
        for (i, l) in sql.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == line {
                let chars = l.char_indices().nth(col.checked_sub(1)? as usize);
                return Some(at + chars.map_or(l.len(), |(b, _)| b));
            }
            at += l.len();
        }
        (line as usize > sql.split_inclusive('\n').count()).then_some(sql.len())
    };
    let (a, mut b) = (
        offset(span.start.line, span.start.column)?,
        offset(span.end.line, span.end.column)?,
    );
    // A call's span can stop before its closing parentheses: take them.
    let open = |t: &str| t.matches('(').count() as i64 - t.matches(')').count() as i64;
    while open(sql.get(a..b)?) > 0 {
        let rest = sql.get(b..)?;
        let close = rest.find(')')?;
        if !rest[..close].trim().is_empty() {
            break;
        }
        b += close + 1;
    }
    sql.get(a..b)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn is_aggregate_name(name: &str, args: usize) -> bool {
    matches!(
        name,
        "COUNT" | "SUM" | "AVG" | "TOTAL" | "GROUP_CONCAT" | "STRING_AGG"
    ) || (matches!(name, "MIN" | "MAX") && args == 1)
}

fn function_parts(
    f: &sql::Function,
) -> Result<(String, bool, Vec<&sql::FunctionArgExpr>), QueryError> {
    let name = f.name.to_string().to_ascii_uppercase();
    match &f.args {
        sql::FunctionArguments::None => Ok((name, false, Vec::new())),
        sql::FunctionArguments::Subquery(_) => {
            Err(unsupported(f, "a subquery as a function argument"))
        }
        sql::FunctionArguments::List(list) => {
            // FILTER and OVER are the callers' (plan/aggregate.rs, plan/window.rs).
            if !list.clauses.is_empty() {
                return Err(unsupported(
                    f,
                    "clauses in a function call (ORDER BY, LIMIT): order the rows in a window's ORDER BY",
                ));
            }
            let distinct = matches!(
                list.duplicate_treatment,
                Some(sql::DuplicateTreatment::Distinct)
            );
            let mut args = Vec::new();
            for a in &list.args {
                match a {
                    sql::FunctionArg::Unnamed(e) => args.push(e),
                    _ => return Err(unsupported(f, "named function arguments")),
                }
            }
            Ok((name, distinct, args))
        }
    }
}

/// Whether an expression contains an aggregate call (outside subqueries).
fn has_aggregate(e: &sql::Expr) -> bool {
    use sql::Expr as E;
    match e {
        E::Function(f) => {
            (f.over.is_none()
                && function_parts(f).is_ok_and(|(n, _, a)| is_aggregate_name(&n, a.len())))
                || window::over_has_aggregate(f)
                || match &f.args {
                    sql::FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(x)) => {
                            has_aggregate(x)
                        }
                        _ => false,
                    }),
                    _ => false,
                }
        }
        E::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        E::UnaryOp { expr, .. } | E::Nested(expr) | E::IsNull(expr) | E::IsNotNull(expr) => {
            has_aggregate(expr)
        }
        E::Between {
            expr, low, high, ..
        } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        E::In { expr, target, .. } => {
            has_aggregate(expr)
                || matches!(target, sql::InTarget::List(l) if l.iter().any(has_aggregate))
        }
        E::Like { expr, pattern, .. } => has_aggregate(expr) || has_aggregate(pattern),
        E::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            has_aggregate(expr)
                || substring_from.as_deref().is_some_and(has_aggregate)
                || substring_for.as_deref().is_some_and(has_aggregate)
        }
        other => scalar::has_aggregate_in(other, has_aggregate),
    }
}

/// Binds statements of one query; it may run subqueries.
pub struct Binder<'e> {
    pub engine: &'e Engine<'e>,
    pub sql: &'e str,
    /// Nesting of expressions being bound (a second guard after the parser's).
    depth: usize,
    /// Output aliases HAVING may name (SQLite resolves them there), while
    /// it is bound.
    aliases: Vec<(String, sql::Expr)>,
    /// Every (table, version) read, subqueries included: what a cached
    /// result depends on.
    pub read: Vec<(String, String)>,
    /// Common table expressions in scope (`compose.rs`).
    ctes: Vec<compose::Cte>,
    /// A date/time function may read the clock ('now'): the result must
    /// not be cached.
    pub reads_clock: bool,
    /// The window calls of the SELECT being bound, where they are allowed
    /// (plan/window.rs).
    windows: window::WindowScope,
    /// Set while the one FROM item of a SELECT is bound, when that item is
    /// a subquery and the SELECT's WHERE bounds one of its columns
    /// (`window::rank_hint`): the subquery may then compute only the rows
    /// a ranking window call keeps.
    rank_hint: Option<window::RankHint>,
}

const MAX_DEPTH: usize = 200;

/// The source name of an upsert's `excluded` row (not a table's name).
pub const EXCLUDED: &str = "\0excluded";

/// What names resolve against: the sources, or after grouping the keys.
struct Scope<'a> {
    sources: &'a [Source],
}

impl Scope<'_> {
    fn column(
        &self,
        qualifier: Option<&str>,
        name: &str,
    ) -> Result<Option<(usize, Option<Type>)>, String> {
        let mut found = None;
        for s in self.sources {
            // A table with an alias is known by that alias only (SQLite),
            // so `t.x` inside `FROM t AS i` can name an outer `t`.
            if let Some(q) = qualifier
                && !q.eq_ignore_ascii_case(&s.alias)
                && !(q.eq_ignore_ascii_case(&s.name) && s.alias.eq_ignore_ascii_case(&s.name))
            {
                continue;
            }
            // An upsert's `excluded` row is named only qualified (dml.rs).
            if qualifier.is_none() && s.name == EXCLUDED {
                continue;
            }
            if let Some(c) = s
                .table
                .columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
            {
                if found.is_some() {
                    return Err(format!(
                        "column {name:?} is ambiguous: qualify it with its table"
                    ));
                }
                found = Some((s.offset + c, s.table.types[c]));
            }
        }
        Ok(found)
    }
}

impl<'e> Binder<'e> {
    pub fn new(engine: &'e Engine<'e>, sql: &'e str) -> Binder<'e> {
        Binder {
            engine,
            sql,
            depth: 0,
            aliases: Vec::new(),
            read: Vec::new(),
            ctes: Vec::new(),
            reads_clock: false,
            windows: window::WindowScope::default(),
            rank_hint: None,
        }
    }

    pub fn bind_query(&mut self, q: &sql::Query) -> Result<Select, QueryError> {
        if let Some(composed) = self.compose(q)? {
            return Ok(composed);
        }
        // A subquery's windows are its own (none allowed in its WHERE).
        let outer_windows = std::mem::take(&mut self.windows);
        if q.fetch.is_some() || !q.locks.is_empty() {
            return Err(unsupported(q, "FETCH or locking clauses"));
        }
        let sql::SetExpr::Select(s) = &*q.body else {
            return Err(unsupported(q, "UNION, INTERSECT, EXCEPT and VALUES"));
        };
        if s.top.is_some() || s.into.is_some() || s.prewhere.is_some() || s.qualify.is_some() {
            return Err(unsupported(&**s, "TOP, INTO, PREWHERE or QUALIFY"));
        }
        // FROM and JOINs.
        let mut sources: Vec<Source> = Vec::new();
        let mut join_asts: Vec<(&sql::Join, usize)> = Vec::new();
        if s.from.len() > 1 {
            return Err(unsupported(&**s, "comma joins: use JOIN ... ON"));
        }
        for twj in &s.from {
            self.rank_hint = match (&twj.relation, twj.joins.is_empty()) {
                (sql::TableFactor::Derived { alias, .. }, true) => window::rank_hint(
                    s.selection.as_ref(),
                    alias.as_ref().map(|a| a.name.value.as_str()),
                ),
                _ => None,
            };
            let first = self.source(&twj.relation, 0);
            self.rank_hint = None;
            let first = first?;
            let mut offset = first.table.columns.len();
            sources.push(first);
            for j in &twj.joins {
                let src = self.source(&j.relation, offset)?;
                offset += src.table.columns.len();
                join_asts.push((j, sources.len()));
                sources.push(src);
            }
        }
        let mut joins = Vec::new();
        for (j, idx) in join_asts {
            let (left, constraint) = match &j.join_operator {
                sql::JoinOperator::Join(c) | sql::JoinOperator::Inner(c) => (false, Some(c)),
                sql::JoinOperator::Left(c) | sql::JoinOperator::LeftOuter(c) => (true, Some(c)),
                sql::JoinOperator::CrossJoin(_) => (false, None),
                _ => {
                    return Err(unsupported(
                        &j.relation,
                        "this kind of join (JOIN and LEFT JOIN are)",
                    ));
                }
            };
            let on = match constraint {
                Some(sql::JoinConstraint::On(e)) => Some(e),
                Some(sql::JoinConstraint::None) | None => None,
                Some(_) => return Err(unsupported(&j.relation, "USING and NATURAL joins: use ON")),
            };
            // ON sees the tables up to and including this one.
            let scope = Scope {
                sources: &sources[..=idx],
            };
            let on = on.map(|e| self.expr(e, &scope, None)).transpose()?;
            let new_start = sources[idx].offset;
            let equi = on.as_ref().and_then(|e| find_equi(e, new_start));
            let on_is_equi = equi.is_some() && matches!(on, Some(Expr::Cmp(CmpOp::Eq, ..)));
            joins.push(Join {
                left,
                on,
                equi,
                on_is_equi,
            });
        }
        let scope = Scope { sources: &sources };
        let filter = s
            .selection
            .as_ref()
            .map(|e| self.expr(e, &scope, None))
            .transpose()?
            .map(fold)
            .transpose()?
            // A filter that is always true filters nothing.
            .filter(|f| !matches!(f, Expr::Lit(v) if v.truth() == Some(true)));
        if filter.as_ref().is_some_and(contains_agg) {
            return Err(err(
                ErrorKind::Type,
                s.selection
                    .as_ref()
                    .unwrap_or(&sql::Expr::value(sql::Value::Null)),
                "aggregates are not allowed in WHERE: use HAVING",
            ));
        }
        // Projection (with * expanded).
        let mut items: Vec<(ProjItem, String)> = Vec::new();
        let texts = select_item_texts(self.sql, s);
        for (n, item) in s.projection.iter().enumerate() {
            match item {
                sql::SelectItem::UnnamedExpr(e) => {
                    let name = match e {
                        sql::Expr::Identifier(i) => i.value.clone(),
                        sql::Expr::CompoundIdentifier(p) => {
                            p.last().map(|i| i.value.clone()).unwrap_or_default()
                        }
                        _ => texts
                            .as_ref()
                            .and_then(|t| t.get(n).cloned())
                            .or_else(|| typed_text(self.sql, e))
                            .unwrap_or_else(|| e.to_string()),
                    };
                    items.push((ProjItem::Ast(e), name));
                }
                sql::SelectItem::ExprWithAlias { expr, alias } => {
                    items.push((ProjItem::Ast(expr), alias.value.clone()));
                }
                sql::SelectItem::Wildcard(_) => {
                    for src in &sources {
                        for (c, name) in src.table.columns.iter().enumerate() {
                            items.push((
                                ProjItem::Col(src.offset + c, src.table.types[c]),
                                name.clone(),
                            ));
                        }
                    }
                }
                sql::SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        sql::SelectItemQualifiedWildcardKind::ObjectName(n) => n.to_string(),
                        sql::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let src = sources
                        .iter()
                        .find(|s| {
                            q.eq_ignore_ascii_case(&s.alias) || q.eq_ignore_ascii_case(&s.name)
                        })
                        .ok_or_else(|| {
                            err(ErrorKind::Unknown, item, format!("no table {q:?} in FROM"))
                        })?;
                    for (c, name) in src.table.columns.iter().enumerate() {
                        items.push((
                            ProjItem::Col(src.offset + c, src.table.types[c]),
                            name.clone(),
                        ));
                    }
                }
                _ => return Err(unsupported(item, "this select item")),
            }
        }
        // Aggregation?
        let group_asts: Vec<&sql::Expr> = match &s.group_by {
            sql::GroupByExpr::Expressions(e, mods) if mods.is_empty() => e.iter().collect(),
            _ => return Err(unsupported(&**s, "GROUP BY ALL and grouping modifiers")),
        };
        let order_asts: Vec<&sql::OrderByExpr> = match &q.order_by {
            None => Vec::new(),
            Some(o) => match &o.kind {
                sql::OrderByKind::Expressions(e) => e.iter().collect(),
                sql::OrderByKind::All(_) => return Err(unsupported(o, "ORDER BY ALL")),
            },
        };
        let aggregate = !group_asts.is_empty()
            || s.having.is_some()
            || items
                .iter()
                .any(|(i, _)| matches!(i, ProjItem::Ast(e) if has_aggregate(e)))
            || order_asts.iter().any(|o| has_aggregate(&o.expr));
        let mut aggs: Vec<AggCall> = Vec::new();
        let keys: Vec<Expr> = group_asts
            .iter()
            .map(|g| self.group_key(g, &scope, &items))
            .collect::<Result<_, _>>()?;
        self.open_windows(s);
        let mut projection = Vec::new();
        let mut names = Vec::new();
        for (item, name) in &items {
            let e = match item {
                ProjItem::Col(i, t) => Expr::Col(*i, *t),
                ProjItem::Ast(a) => {
                    let e = self.expr(a, &scope, aggregate.then_some(&mut aggs))?;
                    if aggregate { lift(e, &keys, a)? } else { e }
                }
            };
            projection.push(e);
            names.push(name.clone());
        }
        let having = match &s.having {
            Some(h) => {
                self.aliases = s
                    .projection
                    .iter()
                    .filter_map(|i| match i {
                        sql::SelectItem::ExprWithAlias { expr, alias } => {
                            Some((alias.value.clone(), expr.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                let e = self.expr(h, &scope, Some(&mut aggs));
                self.aliases.clear();
                Some(lift(e?, &keys, h)?)
            }
            None => None,
        };
        let mut order = Vec::new();
        for o in order_asts {
            let expr = self.order_term(
                &o.expr,
                &scope,
                &items,
                &projection,
                aggregate,
                &mut aggs,
                &keys,
            )?;
            let desc = matches!(o.options.sort, Some(sql::OrderBySort::Desc));
            if matches!(o.options.sort, Some(sql::OrderBySort::Using(_))) {
                return Err(unsupported(&o.expr, "ORDER BY ... USING"));
            }
            // SQLite: NULLs are smallest (first ascending, last descending).
            let nulls_first = o.options.nulls_first.unwrap_or(!desc);
            order.push(OrderKey {
                expr,
                desc,
                nulls_first,
            });
        }
        let windows = self.close_windows(outer_windows, &keys, aggregate, &having, s)?;
        let (limit, offset) = self.limit(q)?;
        let distinct = match &s.distinct {
            None | Some(sql::Distinct::All) => false,
            Some(sql::Distinct::Distinct) => true,
            Some(sql::Distinct::On(_)) => return Err(unsupported(&**s, "DISTINCT ON")),
        };
        Ok(Select {
            sources,
            joins,
            filter,
            grouping: aggregate.then_some((keys, aggs)),
            having,
            projection,
            names,
            distinct,
            order,
            limit,
            offset,
            windows,
            rank_limit: None,
        })
    }

    /// Binds an expression over the rows of `sources` (no aggregates): the
    /// WHERE and SET of INSERT, UPDATE and DELETE.
    pub fn row_expr(&mut self, e: &sql::Expr, sources: &[Source]) -> Result<Expr, QueryError> {
        let scope = Scope { sources };
        self.expr(e, &scope, None)
    }

    /// A constant expression (INSERT's VALUES).
    pub fn const_expr(&mut self, e: &sql::Expr) -> Result<Value, QueryError> {
        let bound = self.expr(e, &Scope { sources: &[] }, None)?;
        exec::eval_const(&bound)
    }

    /// A GROUP BY term: an expression, an output alias or an ordinal.
    fn group_key(
        &mut self,
        g: &sql::Expr,
        scope: &Scope,
        items: &[(ProjItem, String)],
    ) -> Result<Expr, QueryError> {
        if let Some(i) = ordinal(g) {
            return match items.get(i.wrapping_sub(1)) {
                Some((ProjItem::Ast(a), _)) => self.expr(a, scope, None),
                Some((ProjItem::Col(c, t), _)) => Ok(Expr::Col(*c, *t)),
                None => Err(err(
                    ErrorKind::Unknown,
                    g,
                    format!("GROUP BY term out of range: {i}"),
                )),
            };
        }
        if let sql::Expr::Identifier(id) = g
            && scope.column(None, &id.value).ok().flatten().is_none()
            && let Some((ProjItem::Ast(a), _)) = items
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(&id.value))
        {
            return self.expr(a, scope, None);
        }
        let e = self.expr(g, scope, None)?;
        if contains_agg(&e) {
            return Err(err(
                ErrorKind::Type,
                g,
                "aggregates are not allowed in GROUP BY",
            ));
        }
        Ok(e)
    }

    #[allow(clippy::too_many_arguments)]
    fn order_term(
        &mut self,
        e: &sql::Expr,
        scope: &Scope,
        items: &[(ProjItem, String)],
        projection: &[Expr],
        aggregate: bool,
        aggs: &mut Vec<AggCall>,
        keys: &[Expr],
    ) -> Result<Expr, QueryError> {
        if let Some(i) = ordinal(e) {
            return projection.get(i.wrapping_sub(1)).cloned().ok_or_else(|| {
                err(
                    ErrorKind::Unknown,
                    e,
                    format!("ORDER BY term out of range: {i}"),
                )
            });
        }
        if let sql::Expr::Identifier(id) = e
            && let Some(p) = items
                .iter()
                .position(|(_, n)| n.eq_ignore_ascii_case(&id.value))
            && (matches!(items[p].0, ProjItem::Ast(a) if !matches!(a, sql::Expr::Identifier(_)))
                || scope.column(None, &id.value).ok().flatten().is_none())
        {
            return Ok(projection[p].clone());
        }
        let bound = self.expr(e, scope, aggregate.then_some(aggs))?;
        if aggregate {
            lift(bound, keys, e)
        } else {
            Ok(bound)
        }
    }

    fn limit(&mut self, q: &sql::Query) -> Result<(Option<u64>, u64), QueryError> {
        let (limit, offset) = match &q.limit_clause {
            None => (None, None),
            Some(sql::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(unsupported(q, "LIMIT BY"));
                }
                (limit.as_ref(), offset.as_ref().map(|o| &o.value))
            }
            Some(sql::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (Some(limit), Some(offset))
            }
        };
        let empty = Scope { sources: &[] };
        let mut number = |e: &sql::Expr| -> Result<i64, QueryError> {
            let bound = self.expr(e, &empty, None)?;
            match exec::eval_const(&bound)? {
                Value::Int(i) => Ok(i),
                _ => Err(err(ErrorKind::Type, e, "LIMIT and OFFSET take integers")),
            }
        };
        let limit = limit.map(&mut number).transpose()?;
        let offset = offset.map(&mut number).transpose()?;
        Ok((
            limit.filter(|l| *l >= 0).map(|l| l as u64),
            offset.unwrap_or(0).max(0) as u64,
        ))
    }

    fn source(&mut self, f: &sql::TableFactor, offset: usize) -> Result<Source, QueryError> {
        if let Some(src) = self.composed_source(f, offset)? {
            return Ok(src);
        }
        let sql::TableFactor::Table {
            name,
            alias,
            version,
            args,
            ..
        } = f
        else {
            return Err(unsupported(f, "subqueries in FROM"));
        };
        if let Some(args) = args {
            if name.to_string().eq_ignore_ascii_case("history") && version.is_none() {
                return self.history_source(f, args, alias.as_ref(), offset);
            }
            return Err(unsupported(f, "table functions other than history()"));
        }
        let table_name = name.to_string();
        let as_of = match version {
            None => None,
            Some(sql::TableVersion::ForSystemTimeAsOf(e)) => {
                let bound = self.expr(e, &Scope { sources: &[] }, None)?;
                let text = match exec::eval_const(&bound)? {
                    Value::Null => return Err(err(ErrorKind::Type, e, "AS OF takes a time")),
                    v => v.to_string(),
                };
                let ts = crate::storage::names::parse_time(&text, crate::storage::names::now_us())
                    .map_err(|m| err(ErrorKind::Type, e, m))?;
                Some(ts)
            }
            Some(_) => {
                return Err(unsupported(
                    f,
                    "this table version clause (use AS OF '<time>')",
                ));
            }
        };
        let (table, version, stored_name) = self
            .engine
            .table(&table_name, as_of)
            .map_err(|e| e.at(pos_of(name)))?;
        self.read.push((stored_name.clone(), version.clone()));
        Ok(Source {
            alias: alias
                .as_ref()
                .map_or_else(|| table_name.clone(), |a| a.name.value.clone()),
            name: stored_name,
            table,
            version,
            offset,
        })
    }
}

/// A projection item before binding.
enum ProjItem<'a> {
    Ast(&'a sql::Expr),
    Col(usize, Option<Type>),
}

fn ordinal(e: &sql::Expr) -> Option<usize> {
    match e {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn contains_agg(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Agg(_)));
    found
}

/// Rewrites an expression over rows into one over groups: a subexpression
/// equal to a GROUP BY key becomes that key; any other column is an error.
fn lift(e: Expr, keys: &[Expr], node: &sql::Expr) -> Result<Expr, QueryError> {
    if let Some(i) = keys.iter().position(|k| *k == e) {
        return Ok(Expr::Key(i));
    }
    let l = |x: Box<Expr>| lift(*x, keys, node).map(Box::new);
    Ok(match e {
        Expr::Col(..) => {
            return Err(err(
                ErrorKind::Type,
                node,
                format!("{node}: a column must be in GROUP BY or inside an aggregate"),
            ));
        }
        Expr::Lit(_) | Expr::Agg(_) | Expr::Key(_) | Expr::Window(_) => e,
        Expr::Neg(x) => Expr::Neg(l(x)?),
        Expr::Not(x) => Expr::Not(l(x)?),
        Expr::Arith(o, a, c) => Expr::Arith(o, l(a)?, l(c)?),
        Expr::Concat(a, c) => Expr::Concat(l(a)?, l(c)?),
        Expr::Cmp(o, a, c, k) => Expr::Cmp(o, l(a)?, l(c)?, k),
        Expr::And(a, c) => Expr::And(l(a)?, l(c)?),
        Expr::Or(a, c) => Expr::Or(l(a)?, l(c)?),
        Expr::IsNull(x, n) => Expr::IsNull(l(x)?, n),
        Expr::InList(x, items, n) => Expr::InList(
            l(x)?,
            items
                .into_iter()
                .map(|i| lift(i, keys, node))
                .collect::<Result<_, _>>()?,
            n,
        ),
        Expr::InSet(x, s, n) => Expr::InSet(l(x)?, s, n),
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
        } => Expr::Like {
            expr: l(expr)?,
            pattern: l(pattern)?,
            escape,
            negated,
        },
        Expr::Func(f, a) => Expr::Func(
            f,
            a.into_iter()
                .map(|i| lift(i, keys, node))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Subquery(key, v) => Expr::Subquery(key.map(l).transpose()?, v),
    })
}

/// `left.col = new.col` (either way round) in an ON condition, at its top
/// level or inside an AND: (row column, column of the new table).
fn find_equi(on: &Expr, new_start: usize) -> Option<(usize, usize)> {
    match on {
        Expr::Cmp(CmpOp::Eq, a, c, _) => match (&**a, &**c) {
            (Expr::Col(x, tx), Expr::Col(y, ty)) if same_class(*tx, *ty) => {
                if *x < new_start && *y >= new_start {
                    Some((*x, *y - new_start))
                } else if *y < new_start && *x >= new_start {
                    Some((*y, *x - new_start))
                } else {
                    None
                }
            }
            _ => None,
        },
        Expr::And(a, c) => find_equi(a, new_start).or_else(|| find_equi(c, new_start)),
        _ => None,
    }
}

/// Whether two column types compare by value identity (so a hash join
/// gives what `=` gives): both numeric, or both text.
fn same_class(a: Option<Type>, b: Option<Type>) -> bool {
    let numeric = |t| matches!(t, Some(Type::Integer | Type::Real));
    (numeric(a) && numeric(b)) || (a == Some(Type::Text) && b == Some(Type::Text))
}
