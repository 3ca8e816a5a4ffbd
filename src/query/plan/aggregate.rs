//! Binding an aggregate call: COUNT, SUM, AVG, MIN, MAX, TOTAL,
//! GROUP_CONCAT (and `string_agg`), with DISTINCT and `FILTER (WHERE ...)`;
//! both for grouping and, under OVER, for windows (plan/window.rs).

use sqlparser::ast as sql;

use super::super::ast::{AggCall, AggFunc, Expr};
use super::super::error::{ErrorKind, QueryError};
use super::expr::check_numeric;
use super::{Binder, Scope, err, unsupported};

impl Binder<'_> {
    /// The call `f` (its name upper-cased, its arguments) as an `AggCall`.
    /// `inner` collects aggregates inside its arguments: None for a
    /// grouping's aggregate (arguments are over rows), the query's
    /// aggregates for a window's in a grouped query (arguments over groups).
    pub(super) fn agg_call(
        &mut self,
        f: &sql::Function,
        name: &str,
        distinct: bool,
        args: &[&sql::FunctionArgExpr],
        scope: &Scope,
        mut inner: Option<&mut Vec<AggCall>>,
    ) -> Result<AggCall, QueryError> {
        let star = matches!(args, [sql::FunctionArgExpr::Wildcard] | []);
        let func = match name {
            "COUNT" if star && !distinct => AggFunc::CountStar,
            "COUNT" => AggFunc::Count,
            "SUM" => AggFunc::Sum,
            "AVG" => AggFunc::Avg,
            "MIN" => AggFunc::Min,
            "MAX" => AggFunc::Max,
            "TOTAL" => AggFunc::Total,
            "GROUP_CONCAT" | "STRING_AGG" => AggFunc::GroupConcat,
            _ => return Err(unsupported(f, &format!("{name}()"))),
        };
        let arity = match name {
            "GROUP_CONCAT" => 1..=2,
            "STRING_AGG" => 2..=2,
            _ => 1..=1,
        };
        let mut bound = Vec::with_capacity(args.len());
        if func != AggFunc::CountStar {
            if !arity.contains(&args.len()) {
                return Err(err(
                    ErrorKind::Type,
                    f,
                    format!("wrong number of arguments to function {name}()"),
                ));
            }
            for a in args {
                let sql::FunctionArgExpr::Expr(a) = a else {
                    return Err(unsupported(f, "* as an argument of this aggregate"));
                };
                let x = self.expr(a, scope, inner.as_deref_mut())?;
                if bound.is_empty() && matches!(func, AggFunc::Sum | AggFunc::Avg | AggFunc::Total)
                {
                    check_numeric(&x, a)?;
                }
                bound.push(x);
            }
        }
        if distinct && bound.len() > 1 {
            return Err(err(
                ErrorKind::Type,
                f,
                "DISTINCT aggregates must have exactly one argument",
            ));
        }
        let filter = match &f.filter {
            Some(w) => Some(self.expr(w, scope, inner)?),
            None => None,
        };
        let mut bound = bound.into_iter();
        Ok(AggCall {
            func,
            distinct,
            arg: bound.next(),
            sep: bound.next(),
            filter,
        })
    }
}

/// The expressions of an aggregate call, for rewriting them in place.
pub(super) fn agg_exprs(a: &mut AggCall) -> impl Iterator<Item = &mut Expr> {
    a.arg
        .iter_mut()
        .chain(a.sep.iter_mut())
        .chain(a.filter.iter_mut())
}
