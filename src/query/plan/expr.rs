//! Binding expressions: names to columns, operators and functions to
//! `Expr`, comparisons given their affinity, constants folded.

use std::collections::HashSet;
use std::sync::Arc;

use sqlparser::ast as sql;

use super::super::ast::{
    AggCall, ArithOp, CmpOp, Coerce, Expr, Func, InSet, JsonFunc, Scalar, TimeFunc,
};
use super::super::error::{ErrorKind, QueryError};
use super::super::exec;
use super::super::value::{Type, Value};
use super::{
    Binder, MAX_DEPTH, Scope, err, function_parts, is_aggregate_name, scalar, unsupported,
};

impl Binder<'_> {
    /// Binds an expression; `aggs` collects aggregate calls (None: they are
    /// not allowed here).
    pub(super) fn expr(
        &mut self,
        e: &sql::Expr,
        scope: &Scope,
        aggs: Option<&mut Vec<AggCall>>,
    ) -> Result<Expr, QueryError> {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err(err(ErrorKind::Limit, e, "expression nested too deeply"))
        } else {
            self.expr_inner(e, scope, aggs)
        };
        self.depth -= 1;
        r
    }

    pub(super) fn expr_inner(
        &mut self,
        e: &sql::Expr,
        scope: &Scope,
        mut aggs: Option<&mut Vec<AggCall>>,
    ) -> Result<Expr, QueryError> {
        use sql::Expr as E;
        let b = Box::new;
        Ok(match e {
            E::Identifier(id) => match column(scope, None, &id.value, e) {
                Ok(c) => c,
                Err(not_found) => {
                    let alias = self
                        .aliases
                        .iter()
                        .position(|(a, _)| a.eq_ignore_ascii_case(&id.value));
                    match alias {
                        Some(i) => {
                            // Bound without aliases: an alias never expands into itself.
                            let target = self.aliases[i].1.clone();
                            let saved = std::mem::take(&mut self.aliases);
                            let bound = self.expr(&target, scope, aggs);
                            self.aliases = saved;
                            bound?
                        }
                        None => return Err(not_found),
                    }
                }
            },
            E::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => column(scope, Some(&t.value), &c.value, e)?,
                _ => return Err(unsupported(e, "names with more than two parts")),
            },
            E::Value(v) => Expr::Lit(literal(&v.value, e)?),
            E::Nested(inner) => self.expr(inner, scope, aggs)?,
            // -9223372036854775808 is the smallest integer, as in SQLite.
            E::UnaryOp {
                op: sql::UnaryOperator::Minus,
                expr: lit,
            } if matches!(&**lit, E::Value(v)
                if matches!(&v.value, sql::Value::Number(n, _) if n == "9223372036854775808")) =>
            {
                Expr::Lit(Value::Int(i64::MIN))
            }
            E::UnaryOp { op, expr } => {
                let x = self.expr(expr, scope, aggs)?;
                match op {
                    sql::UnaryOperator::Minus => {
                        check_numeric(&x, expr)?;
                        Expr::Neg(b(x))
                    }
                    // SQLite: `+col` is an expression, without the column's
                    // affinity; a CASE of only an ELSE is the value alone.
                    sql::UnaryOperator::Plus if x.affinity().is_some() => {
                        Expr::Func(Func::Scalar(Scalar::Case), vec![x])
                    }
                    sql::UnaryOperator::Plus => x,
                    sql::UnaryOperator::Not => Expr::Not(b(x)),
                    _ => return Err(unsupported(e, &format!("the operator {op}"))),
                }
            }
            E::BinaryOp { left, op, right } => {
                let l = self.expr(left, scope, aggs.as_deref_mut())?;
                let r = self.expr(right, scope, aggs)?;
                use sql::BinaryOperator as O;
                let arith = |o: ArithOp| -> Result<Expr, QueryError> {
                    check_numeric(&l, left)?;
                    check_numeric(&r, right)?;
                    Ok(Expr::Arith(o, b(l.clone()), b(r.clone())))
                };
                match op {
                    O::Plus => arith(ArithOp::Add)?,
                    O::Minus => arith(ArithOp::Sub)?,
                    O::Multiply => arith(ArithOp::Mul)?,
                    O::Divide => arith(ArithOp::Div)?,
                    O::Modulo => arith(ArithOp::Mod)?,
                    O::StringConcat => Expr::Concat(b(l), b(r)),
                    O::And => Expr::And(b(l), b(r)),
                    O::Or => Expr::Or(b(l), b(r)),
                    O::Eq => cmp(CmpOp::Eq, l, r),
                    O::NotEq => cmp(CmpOp::Ne, l, r),
                    O::Lt => cmp(CmpOp::Lt, l, r),
                    O::LtEq => cmp(CmpOp::Le, l, r),
                    O::Gt => cmp(CmpOp::Gt, l, r),
                    O::GtEq => cmp(CmpOp::Ge, l, r),
                    O::Arrow => Expr::Func(Func::Json(JsonFunc::Arrow), vec![l, r]),
                    O::LongArrow => Expr::Func(Func::Json(JsonFunc::LongArrow), vec![l, r]),
                    O::Is => cmp(CmpOp::Is, l, r),
                    O::IsNot => cmp(CmpOp::IsNot, l, r),
                    O::Glob => Expr::Func(Func::Scalar(Scalar::Glob), vec![r, l]),
                    _ => return Err(unsupported(e, &format!("the operator {op}"))),
                }
            }
            E::IsNull(x) => Expr::IsNull(b(self.expr(x, scope, aggs)?), false),
            E::IsNotNull(x) => Expr::IsNull(b(self.expr(x, scope, aggs)?), true),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.expr(expr, scope, aggs.as_deref_mut())?;
                let lo = self.expr(low, scope, aggs.as_deref_mut())?;
                let hi = self.expr(high, scope, aggs)?;
                let both = Expr::And(b(cmp(CmpOp::Ge, x.clone(), lo)), b(cmp(CmpOp::Le, x, hi)));
                if *negated { Expr::Not(b(both)) } else { both }
            }
            E::In {
                expr,
                target,
                negated,
                ..
            } => {
                let x = self.expr(expr, scope, aggs.as_deref_mut())?;
                match target {
                    sql::InTarget::List(list) => {
                        let mut items = Vec::with_capacity(list.len());
                        for i in list {
                            items.push(self.expr(i, scope, aggs.as_deref_mut())?);
                        }
                        Expr::InList(b(x), items, *negated)
                    }
                    sql::InTarget::Subquery(q) => {
                        let set = self.in_subquery(q)?;
                        Expr::InSet(b(x), Arc::new(set), *negated)
                    }
                    _ => return Err(unsupported(e, "this form of IN")),
                }
            }
            E::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(unsupported(e, "LIKE ANY"));
                }
                let escape = match escape_char.as_deref() {
                    None => None,
                    Some(E::Value(v)) => match &v.value {
                        sql::Value::SingleQuotedString(s) if s.chars().count() == 1 => {
                            s.chars().next()
                        }
                        _ => {
                            return Err(err(
                                ErrorKind::Type,
                                e,
                                "ESCAPE expression must be a single character",
                            ));
                        }
                    },
                    Some(other) => {
                        return Err(err(
                            ErrorKind::Type,
                            other,
                            "ESCAPE takes a one-character string",
                        ));
                    }
                };
                Expr::Like {
                    expr: b(self.expr(expr, scope, aggs.as_deref_mut())?),
                    pattern: b(self.expr(pattern, scope, aggs)?),
                    escape,
                    negated: *negated,
                }
            }
            E::Function(f) => self.function(f, scope, aggs)?,
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let Some(from) = substring_from else {
                    return Err(err(
                        ErrorKind::Type,
                        e,
                        "wrong number of arguments to function SUBSTR()",
                    ));
                };
                let mut args = vec![
                    self.expr(expr, scope, aggs.as_deref_mut())?,
                    self.expr(from, scope, aggs.as_deref_mut())?,
                ];
                if let Some(n) = substring_for {
                    args.push(self.expr(n, scope, aggs)?);
                }
                Expr::Func(Func::Substr, args)
            }
            E::Subquery(q) => self.scalar_subquery(q, scope)?,
            E::Exists { subquery, negated } => self.exists(subquery, *negated, scope)?,
            E::Case { .. }
            | E::Cast { .. }
            | E::IsTrue(_)
            | E::IsNotTrue(_)
            | E::IsFalse(_)
            | E::IsNotFalse(_)
            | E::IsDistinctFrom(..)
            | E::IsNotDistinctFrom(..)
            | E::Trim { .. }
            | E::Ceil { .. }
            | E::Floor { .. } => self.scalar_expr(e, scope, aggs)?,
            _ => return Err(unsupported(e, &format!("the expression {e}"))),
        })
    }

    pub(super) fn function(
        &mut self,
        f: &sql::Function,
        scope: &Scope,
        aggs: Option<&mut Vec<AggCall>>,
    ) -> Result<Expr, QueryError> {
        if f.over.is_some() {
            return self.window_call(f, scope, aggs);
        }
        let (name, distinct, args) = function_parts(f)?;
        if is_aggregate_name(&name, args.len()) {
            let Some(aggs) = aggs else {
                return Err(err(
                    ErrorKind::Type,
                    f,
                    format!("{name}() is an aggregate and not allowed here"),
                ));
            };
            // Arguments are bound over rows, never nested aggregates.
            let call = self.agg_call(f, &name, distinct, &args, scope, None)?;
            let i = match aggs.iter().position(|a| *a == call) {
                Some(i) => i,
                None => {
                    aggs.push(call);
                    aggs.len() - 1
                }
            };
            return Ok(Expr::Agg(i));
        }
        if f.filter.is_some() {
            return Err(unsupported(
                f,
                "FILTER on a function that is not an aggregate",
            ));
        }
        if distinct {
            return Err(unsupported(f, "DISTINCT in a scalar function"));
        }
        let (func, arity) = match name.as_str() {
            "LOWER" => (Func::Lower, 1..=1),
            "UPPER" => (Func::Upper, 1..=1),
            "LENGTH" => (Func::Length, 1..=1),
            "SUBSTR" | "SUBSTRING" => (Func::Substr, 2..=3),
            "COALESCE" => (Func::Coalesce, 2..=usize::MAX),
            "IFNULL" => (Func::Coalesce, 2..=2),
            "ABS" => (Func::Abs, 1..=1),
            _ => match scalar::by_name(&name)
                .or_else(|| TimeFunc::named(&name))
                .or_else(|| JsonFunc::named(&name))
            {
                Some(found) => found,
                None => {
                    return Err(
                        match JsonFunc::refused(&name).or(TimeFunc::refused(&name)) {
                            Some(how) => unsupported(f, how),
                            None => err(ErrorKind::Unknown, f, format!("no such function: {name}")),
                        },
                    );
                }
            },
        };
        if !arity.contains(&args.len()) {
            return Err(err(
                ErrorKind::Type,
                f,
                format!("wrong number of arguments to function {name}()"),
            ));
        }
        let mut bound = Vec::with_capacity(args.len());
        let mut aggs = aggs;
        for a in args {
            let sql::FunctionArgExpr::Expr(a) = a else {
                return Err(unsupported(f, "* as a function argument"));
            };
            bound.push(self.expr(a, scope, aggs.as_deref_mut())?);
        }
        if let Func::Time(t) = func {
            self.reads_clock |= t.reads_clock(&bound);
        }
        Ok(Expr::Func(func, bound))
    }

    pub(super) fn in_subquery(&mut self, q: &sql::Query) -> Result<InSet, QueryError> {
        let select = self.bind_query(q)?;
        if select.projection.len() != 1 {
            return Err(err(
                ErrorKind::Type,
                q,
                "a subquery in IN must return one column",
            ));
        }
        let result = exec::run_whole(&select, &self.engine.env())?;
        let mut set = InSet {
            values: HashSet::new(),
            has_null: false,
        };
        for row in result.rows {
            match row.into_iter().next() {
                Some(Value::Null) | None => set.has_null = true,
                Some(v) => {
                    set.values.insert(v);
                }
            }
        }
        Ok(set)
    }
}

pub(super) fn column(
    scope: &Scope,
    qualifier: Option<&str>,
    name: &str,
    node: &sql::Expr,
) -> Result<Expr, QueryError> {
    match scope.column(qualifier, name) {
        Ok(Some((i, t))) => Ok(Expr::Col(i, t)),
        Ok(None) => {
            let full = qualifier.map_or(name.to_string(), |q| format!("{q}.{name}"));
            Err(err(
                ErrorKind::Unknown,
                node,
                format!("no such column: {full}"),
            ))
        }
        Err(m) => Err(err(ErrorKind::Unknown, node, m)),
    }
}

pub(super) fn literal(v: &sql::Value, node: &sql::Expr) -> Result<Value, QueryError> {
    Ok(match v {
        sql::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) if !n.contains(['.', 'e', 'E']) => Value::Int(i),
            _ => n
                .parse::<f64>()
                .map(Value::Real)
                .map_err(|_| err(ErrorKind::Syntax, node, format!("bad number {n}")))?,
        },
        sql::Value::SingleQuotedString(s) => Value::text(s),
        sql::Value::Null => Value::Null,
        sql::Value::Boolean(b) => Value::Int(i64::from(*b)),
        _ => return Err(unsupported(node, &format!("the literal {v}"))),
    })
}

/// The affinity an expression carries: a column's type or a CAST's.
pub(super) fn affinity(e: &Expr) -> Option<Type> {
    e.affinity()
}

pub(super) fn is_column(e: &Expr) -> bool {
    matches!(e, Expr::Col(..)) || matches!(e, Expr::Subquery(_, v) if v.affinity.is_some())
}

/// A comparison with SQLite's affinity rules: a numeric column makes the
/// other side numeric (when it is text or has no affinity); a TEXT column
/// makes an operand without affinity text.
pub(super) fn cmp(op: CmpOp, l: Expr, r: Expr) -> Expr {
    let numeric = |t: Option<Type>| matches!(t, Some(Type::Integer | Type::Real));
    let (la, ra) = (affinity(&l), affinity(&r));
    let coerce = if numeric(la) && !numeric(ra) {
        Coerce(None, la)
    } else if numeric(ra) && !numeric(la) {
        Coerce(ra, None)
    } else if la == Some(Type::Text) && !is_column(&r) {
        Coerce(None, Some(Type::Text))
    } else if ra == Some(Type::Text) && !is_column(&l) {
        Coerce(Some(Type::Text), None)
    } else {
        Coerce(None, None)
    };
    Expr::Cmp(op, Box::new(l), Box::new(r), coerce)
}

/// Arithmetic on a TEXT column is a type error (SQLite would read its
/// numeric prefix; ReedQL says so instead: docs/QUERY.md).
pub(super) fn check_numeric(e: &Expr, node: &sql::Expr) -> Result<(), QueryError> {
    if let Expr::Col(_, Some(Type::Text)) = e {
        return Err(err(
            ErrorKind::Type,
            node,
            format!("{node} is a TEXT column: arithmetic needs numbers"),
        ));
    }
    Ok(())
}

/// Folds constant parts of a filter: an expression without columns becomes
/// its value, and a conjunct that is always true drops out of an AND.
pub(super) fn fold(e: Expr) -> Result<Expr, QueryError> {
    let mut constant = true;
    e.walk(&mut |x| {
        constant &= !matches!(
            x,
            Expr::Col(..) | Expr::Key(_) | Expr::Agg(_) | Expr::Window(_)
        )
    });
    if constant {
        return Ok(Expr::Lit(exec::eval_const(&e)?));
    }
    Ok(match e {
        Expr::And(a, b) => {
            let (a, b) = (fold(*a)?, fold(*b)?);
            let always = |x: &Expr| matches!(x, Expr::Lit(v) if v.truth() == Some(true));
            if always(&a) {
                b
            } else if always(&b) {
                a
            } else {
                Expr::And(Box::new(a), Box::new(b))
            }
        }
        other => other,
    })
}
