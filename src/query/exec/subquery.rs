//! The value of a subquery in an expression (`Expr::Subquery`): bound and
//! run once by `plan/subquery.rs`; a correlated one looked up by the outer
//! row's key, so it never runs per row.

use super::super::ast::{Expr, SubqueryValues};
use super::super::error::QueryError;
use super::super::value::Value;
use super::eval::{Ctx, eval};

/// The subquery's value for this row: `otherwise` without a key, or when
/// the key is NULL (`inner = NULL` matches no row) or matched no row.
pub(super) fn value(
    key: Option<&Expr>,
    values: &SubqueryValues,
    ctx: &Ctx,
) -> Result<Value, QueryError> {
    let Some(key) = key else {
        return Ok(values.otherwise.clone());
    };
    let mut k = eval(key, ctx)?;
    if let Some(t) = values.key_affinity {
        k = k.with_affinity(t);
    }
    if k.is_null() {
        return Ok(values.otherwise.clone());
    }
    Ok(values
        .by_key
        .get(&k)
        .cloned()
        .unwrap_or_else(|| values.otherwise.clone()))
}
