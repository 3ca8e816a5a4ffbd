//! Sort keys as integers, for the window functions' sort and the rank
//! limit: one `KeyCol` per PARTITION BY or ORDER BY expression, read by
//! position, so sorting compares integers, never `Value`s.

use std::cmp::Ordering;

use super::super::ast::Expr;
use super::super::error::QueryError;
use super::super::table::{Numbers, TypedTable};
use super::super::value::{FastMap, Value, ValueRef};
use super::Env;
use super::eval::{Ctx, eval};
use super::order::key_order;

/// One sort key by position, as an integer of the same order as SQLite's
/// (None is NULL).
pub(super) enum KeyCol<'t> {
    /// Each position's key: the values themselves when they are all
    /// integers, reals mapped to integers in the same order when they are
    /// all reals, else each value's rank among the distinct values (ranked
    /// once by SQLite's order).
    Owned(Vec<Option<i64>>),
    /// A table column through its dictionary: position p is row `ids[p]`
    /// (row p without ids), its key the rank of its code's value.
    Coded {
        codes: &'t [u32],
        rank: Vec<Option<i64>>,
        ids: Option<&'t [u32]>,
    },
    /// A table column of exact numbers, read in place.
    Numbers {
        numbers: &'t Numbers,
        ids: Option<&'t [u32]>,
    },
}

impl<'t> KeyCol<'t> {
    /// The key of `e` over rows or groups.
    pub(super) fn of(e: &Expr, env: &Env, ctxs: &[Ctx]) -> Result<KeyCol<'t>, QueryError> {
        // A column of rows is read borrowed: no text copied per row.
        if let Expr::Col(c, _) = e {
            let rows: Option<Vec<_>> = ctxs
                .iter()
                .map(|ctx| match ctx.base() {
                    Ctx::Row(r) => Some(r.get_ref(*c)),
                    _ => None,
                })
                .collect();
            if let Some(vals) = rows {
                return KeyCol::from_refs(&vals, env);
            }
        }
        let mut vals = Vec::with_capacity(ctxs.len());
        for c in ctxs {
            env.limits.interrupt.check()?;
            vals.push(eval(e, c)?);
        }
        let refs: Vec<ValueRef> = vals.iter().map(Value::as_ref).collect();
        KeyCol::from_refs(&refs, env)
    }

    /// The key of `e` over rows `ids` of `table` (every row without ids)
    /// read in place: for a plain column with exact numbers or a
    /// dictionary; None for anything else.
    pub(super) fn of_table(
        e: &Expr,
        table: &'t TypedTable,
        ids: Option<&'t [u32]>,
    ) -> Option<KeyCol<'t>> {
        let Expr::Col(c, _) = e else {
            return None;
        };
        if let Some(numbers) = table.numbers(*c).filter(|n| n.exact) {
            return Some(KeyCol::Numbers { numbers, ids });
        }
        let dict = table.dict(*c)?;
        let mut by_value: Vec<u32> = (0..dict.values.len() as u32).collect();
        by_value.sort_by(|&a, &b| dict.values[a as usize].sort_cmp(&dict.values[b as usize]));
        let mut rank = vec![None; dict.values.len()];
        let mut r = 0i64;
        for (n, &code) in by_value.iter().enumerate() {
            let v = &dict.values[code as usize];
            if n > 0 && v.sort_cmp(&dict.values[by_value[n - 1] as usize]).is_ne() {
                r += 1;
            }
            rank[code as usize] = (!v.is_null()).then_some(r);
        }
        Some(KeyCol::Coded {
            codes: &dict.codes,
            rank,
            ids,
        })
    }

    fn from_refs(vals: &[ValueRef], env: &Env) -> Result<KeyCol<'t>, QueryError> {
        if vals
            .iter()
            .all(|v| matches!(v, ValueRef::Int(_) | ValueRef::Null))
        {
            return Ok(KeyCol::Owned(
                vals.iter()
                    .map(|v| match v {
                        ValueRef::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect(),
            ));
        }
        if vals
            .iter()
            .all(|v| matches!(v, ValueRef::Real(r) if !r.is_nan()) || v.is_null())
        {
            return Ok(KeyCol::Owned(
                vals.iter()
                    .map(|v| match v {
                        ValueRef::Real(r) => Some(ordered_bits(*r)),
                        _ => None,
                    })
                    .collect(),
            ));
        }
        // Equal values (`ValueRef`'s Eq is the sort order's equality)
        // share a rank.
        let mut rank: FastMap<ValueRef, i64> = FastMap::default();
        for v in vals {
            if !v.is_null() {
                rank.entry(*v).or_insert(0);
            }
        }
        let mut distinct: Vec<ValueRef> = rank.keys().copied().collect();
        env.limits.interrupt.check_now()?;
        distinct.sort_by(|a, b| a.sort_cmp(*b));
        for (i, v) in distinct.into_iter().enumerate() {
            rank.insert(v, i as i64);
        }
        Ok(KeyCol::Owned(
            vals.iter().map(|v| rank.get(v).copied()).collect(),
        ))
    }

    /// The dictionary code at position `i`, for a `Coded` key: a number
    /// per distinct value, below `codes()`.
    pub(super) fn code(&self, i: u32) -> Option<u32> {
        match self {
            KeyCol::Coded { codes, ids, .. } => codes.get(row(*ids, i)?).copied(),
            _ => None,
        }
    }

    /// How many codes a `Coded` key has (0 for any other).
    pub(super) fn codes(&self) -> usize {
        match self {
            KeyCol::Coded { rank, .. } => rank.len(),
            _ => 0,
        }
    }

    #[inline]
    pub(super) fn get(&self, i: u32) -> Option<i64> {
        match self {
            KeyCol::Owned(v) => v.get(i as usize).copied().flatten(),
            KeyCol::Coded { codes, rank, ids } => {
                let code = *codes.get(row(*ids, i)?)?;
                rank.get(code as usize).copied().flatten()
            }
            KeyCol::Numbers { numbers, ids } => {
                let r = row(*ids, i)?;
                match numbers.present.get(r) {
                    Some(true) => numbers.values.get(r).map(|&v| ordered_bits(v)),
                    _ => None,
                }
            }
        }
    }

    /// The order of two rows by this key: NULLs first or last, DESC
    /// reversing (`key_order`, the rule of every ordering path).
    #[inline]
    pub(super) fn order(&self, a: u32, b: u32, nulls_first: bool, desc: bool) -> Ordering {
        let (x, y) = (self.get(a), self.get(b));
        key_order(x.is_none(), y.is_none(), nulls_first, desc, || x.cmp(&y))
    }
}

/// The table row at position `i`.
#[inline]
fn row(ids: Option<&[u32]>, i: u32) -> Option<usize> {
    match ids {
        Some(ids) => ids.get(i as usize).map(|&r| r as usize),
        None => Some(i as usize),
    }
}

/// A real (not NaN) as an integer of the same order: the bits of a
/// positive real order as integers do; a negative one's magnitude bits are
/// flipped so a larger magnitude orders lower. -0.0 is 0.0, as in SQL.
/// An integer of at most 2^53 is exactly a real: its key as a real orders
/// it among reals.
fn ordered_bits(r: f64) -> i64 {
    let bits = (r + 0.0).to_bits() as i64;
    bits ^ ((bits >> 63) as u64 >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_bits_orders_as_the_reals() {
        let reals = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            2.5,
            9007199254740992.0,
            1e300,
            f64::INFINITY,
        ];
        for w in reals.windows(2) {
            assert!(
                ordered_bits(w[0]) < ordered_bits(w[1]),
                "{} < {}",
                w[0],
                w[1]
            );
        }
        assert_eq!(ordered_bits(-0.0), ordered_bits(0.0));
    }
}
