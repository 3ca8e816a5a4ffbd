//! Binding SQLite's scalar expressions beyond operators and the first few
//! functions: CASE (both forms), CAST, IS [NOT] TRUE/FALSE, IS [NOT]
//! DISTINCT FROM, TRIM, and the names of the functions of
//! exec/functions.rs. CASE and its relatives become `Scalar::Case` over
//! (condition, result) pairs, so every later pass (lifting over GROUP BY
//! keys, folding constants) treats them as any function.

use std::ops::RangeInclusive;

use sqlparser::ast as sql;

use super::super::ast::{AggCall, CastTo, CmpOp, Expr, Func, Math, Scalar};
use super::super::error::{ErrorKind, QueryError};
use super::super::value::Value;
use super::expr::cmp;
use super::{Binder, Scope, err, unsupported};

/// The scalar functions bound by name (besides those of `Binder::function`)
/// and how many arguments each takes.
pub(super) fn by_name(name: &str) -> Option<(Func, RangeInclusive<usize>)> {
    use Math as M;
    use Scalar as S;
    let (s, arity) = match name {
        // iif(c, a, b) is CASE WHEN c THEN a ELSE b END.
        "IIF" => (S::Case, 3..=3),
        "NULLIF" => (S::NullIf, 2..=2),
        "GLOB" => (S::Glob, 2..=2),
        "LIKE" => (S::Like, 2..=3),
        "INSTR" => (S::Instr, 2..=2),
        "REPLACE" => (S::Replace, 3..=3),
        "LTRIM" => (S::Trim(true, false), 1..=2),
        "RTRIM" => (S::Trim(false, true), 1..=2),
        "HEX" => (S::Hex, 1..=1),
        "QUOTE" => (S::Quote, 1..=1),
        "CHAR" => (S::Char, 0..=usize::MAX),
        "UNICODE" => (S::Unicode, 1..=1),
        "PRINTF" | "FORMAT" => (S::Printf, 1..=usize::MAX),
        "ROUND" => (S::Round, 1..=2),
        "SIGN" => (S::Sign, 1..=1),
        "TYPEOF" => (S::TypeOf, 1..=1),
        // With one argument MIN and MAX are aggregates (is_aggregate_name).
        "MIN" => (S::Min, 2..=usize::MAX),
        "MAX" => (S::Max, 2..=usize::MAX),
        _ => {
            let (m, arity) = match name {
                "ACOS" => (M::Acos, 1..=1),
                "ACOSH" => (M::Acosh, 1..=1),
                "ASIN" => (M::Asin, 1..=1),
                "ASINH" => (M::Asinh, 1..=1),
                "ATAN" => (M::Atan, 1..=1),
                "ATAN2" => (M::Atan2, 2..=2),
                "ATANH" => (M::Atanh, 1..=1),
                "CEIL" | "CEILING" => (M::Ceil, 1..=1),
                "COS" => (M::Cos, 1..=1),
                "COSH" => (M::Cosh, 1..=1),
                "DEGREES" => (M::Degrees, 1..=1),
                "EXP" => (M::Exp, 1..=1),
                "FLOOR" => (M::Floor, 1..=1),
                "LN" => (M::Ln, 1..=1),
                "LOG" => (M::Log, 1..=2),
                "LOG10" => (M::Log10, 1..=1),
                "LOG2" => (M::Log2, 1..=1),
                "MOD" => (M::Mod, 2..=2),
                "PI" => (M::Pi, 0..=0),
                "POW" | "POWER" => (M::Pow, 2..=2),
                "RADIANS" => (M::Radians, 1..=1),
                "SIN" => (M::Sin, 1..=1),
                "SINH" => (M::Sinh, 1..=1),
                "SQRT" => (M::Sqrt, 1..=1),
                "TAN" => (M::Tan, 1..=1),
                "TANH" => (M::Tanh, 1..=1),
                "TRUNC" => (M::Trunc, 1..=1),
                _ => return None,
            };
            (S::Math(m), arity)
        }
    };
    Some((Func::Scalar(s), arity))
}

/// The affinity SQLite gives a declared type name (datatype3.html, 3.1);
/// None for BLOB, which ReedQL has no values of.
fn cast_target(name: &str) -> Option<CastTo> {
    let n = name.to_ascii_uppercase();
    Some(if n.contains("INT") {
        CastTo::Integer
    } else if n.contains("CHAR") || n.contains("CLOB") || n.contains("TEXT") {
        CastTo::Text
    } else if n.contains("BLOB") {
        return None;
    } else if n.contains("REAL") || n.contains("FLOA") || n.contains("DOUB") {
        CastTo::Real
    } else {
        CastTo::Numeric
    })
}

fn case(args: Vec<Expr>) -> Expr {
    Expr::Func(Func::Scalar(Scalar::Case), args)
}

fn lit(i: i64) -> Expr {
    Expr::Lit(Value::Int(i))
}

impl Binder<'_> {
    /// CASE, CAST, IS [NOT] TRUE/FALSE, IS [NOT] DISTINCT FROM, TRIM.
    pub(super) fn scalar_expr(
        &mut self,
        e: &sql::Expr,
        scope: &Scope,
        mut aggs: Option<&mut Vec<AggCall>>,
    ) -> Result<Expr, QueryError> {
        use sql::Expr as E;
        let b = Box::new;
        Ok(match e {
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = match operand {
                    Some(x) => Some(self.expr(x, scope, aggs.as_deref_mut())?),
                    None => None,
                };
                let mut args = Vec::with_capacity(conditions.len() * 2 + 1);
                for w in conditions {
                    let c = self.expr(&w.condition, scope, aggs.as_deref_mut())?;
                    // CASE x WHEN v compares as x = v does, affinity included
                    // (x is evaluated once per WHEN: expressions have no side
                    // effects).
                    args.push(match &operand {
                        Some(x) => cmp(CmpOp::Eq, x.clone(), c),
                        None => c,
                    });
                    args.push(self.expr(&w.result, scope, aggs.as_deref_mut())?);
                }
                args.push(match else_result {
                    Some(x) => self.expr(x, scope, aggs)?,
                    None => Expr::Lit(Value::Null),
                });
                case(args)
            }
            E::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if !matches!(kind, sql::CastKind::Cast) || format.is_some() {
                    return Err(unsupported(e, "this form of CAST: write CAST(x AS type)"));
                }
                let Some(to) = cast_target(&data_type.to_string()) else {
                    return Err(unsupported(
                        e,
                        "CAST to BLOB (ReedQL has no BLOB values): CAST(x AS TEXT) gives the text",
                    ));
                };
                let x = self.expr(expr, scope, aggs)?;
                Expr::Func(Func::Scalar(Scalar::Cast(to)), vec![x])
            }
            // SQLite: x IS TRUE is x's truth, never NULL; IS FALSE likewise.
            E::IsTrue(x) => case(vec![self.expr(x, scope, aggs)?, lit(1), lit(0)]),
            E::IsNotTrue(x) => case(vec![self.expr(x, scope, aggs)?, lit(0), lit(1)]),
            E::IsFalse(x) => case(vec![
                Expr::Not(b(self.expr(x, scope, aggs)?)),
                lit(1),
                lit(0),
            ]),
            E::IsNotFalse(x) => case(vec![
                Expr::Not(b(self.expr(x, scope, aggs)?)),
                lit(0),
                lit(1),
            ]),
            E::IsDistinctFrom(l, r) | E::IsNotDistinctFrom(l, r) => {
                let l = self.expr(l, scope, aggs.as_deref_mut())?;
                let r = self.expr(r, scope, aggs)?;
                let op = if matches!(e, E::IsDistinctFrom(..)) {
                    CmpOp::IsNot
                } else {
                    CmpOp::Is
                };
                cmp(op, l, r)
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_where.is_some() || trim_what.is_some() {
                    return Err(unsupported(
                        e,
                        "TRIM(... FROM ...): write trim(x), trim(x, characters), ltrim or rtrim",
                    ));
                }
                let mut args = vec![self.expr(expr, scope, aggs.as_deref_mut())?];
                match trim_characters.as_deref() {
                    None => {}
                    Some([c]) => args.push(self.expr(c, scope, aggs)?),
                    Some(_) => {
                        return Err(err(
                            ErrorKind::Type,
                            e,
                            "wrong number of arguments to function TRIM()",
                        ));
                    }
                }
                Expr::Func(Func::Scalar(Scalar::Trim(true, true)), args)
            }
            // sqlparser reads CEIL and FLOOR apart from other functions.
            E::Ceil { expr, field } | E::Floor { expr, field } => {
                if !matches!(
                    field,
                    sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime)
                ) {
                    return Err(err(
                        ErrorKind::Type,
                        e,
                        "wrong number of arguments to function CEIL()/FLOOR()",
                    ));
                }
                let m = if matches!(e, E::Ceil { .. }) {
                    Math::Ceil
                } else {
                    Math::Floor
                };
                let x = self.expr(expr, scope, aggs)?;
                Expr::Func(Func::Scalar(Scalar::Math(m)), vec![x])
            }
            _ => return Err(unsupported(e, &format!("the expression {e}"))),
        })
    }
}

/// Whether an aggregate call is inside one of the expressions bound here.
pub(super) fn has_aggregate_in(e: &sql::Expr, has: fn(&sql::Expr) -> bool) -> bool {
    use sql::Expr as E;
    match e {
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(has)
                || conditions
                    .iter()
                    .any(|w| has(&w.condition) || has(&w.result))
                || else_result.as_deref().is_some_and(has)
        }
        E::Cast { expr, .. }
        | E::Ceil { expr, .. }
        | E::Floor { expr, .. }
        | E::IsTrue(expr)
        | E::IsNotTrue(expr)
        | E::IsFalse(expr)
        | E::IsNotFalse(expr) => has(expr),
        E::IsDistinctFrom(l, r) | E::IsNotDistinctFrom(l, r) => has(l) || has(r),
        E::Trim {
            expr,
            trim_characters,
            ..
        } => has(expr) || trim_characters.iter().flatten().any(has),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_map_as_sqlite_maps_them() {
        for (name, want) in [
            ("INTEGER", Some(CastTo::Integer)),
            ("BIGINT", Some(CastTo::Integer)),
            ("UNSIGNED BIG INT", Some(CastTo::Integer)),
            ("VARCHAR(10)", Some(CastTo::Text)),
            ("NCHAR(5)", Some(CastTo::Text)),
            ("CLOB", Some(CastTo::Text)),
            ("DOUBLE PRECISION", Some(CastTo::Real)),
            ("FLOAT", Some(CastTo::Real)),
            ("REAL", Some(CastTo::Real)),
            ("NUMERIC", Some(CastTo::Numeric)),
            ("DECIMAL(10,5)", Some(CastTo::Numeric)),
            ("BOOLEAN", Some(CastTo::Numeric)),
            ("DATE", Some(CastTo::Numeric)),
            ("STRING", Some(CastTo::Numeric)),
            // "POINT" contains INT: SQLite's rule, applied as SQLite does.
            ("POINT", Some(CastTo::Integer)),
            ("BLOB", None),
        ] {
            assert_eq!(cast_target(name), want, "{name}");
        }
        assert!(by_name("IIF").is_some() && by_name("NOPE").is_none());
    }
}
