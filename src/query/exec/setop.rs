//! UNION, UNION ALL, INTERSECT and EXCEPT over two results, with SQLite's
//! rules: rows compare value by value with NULLs equal to each other (and
//! an integer equal to the same real, as DISTINCT has it); UNION,
//! INTERSECT and EXCEPT give distinct rows, the first of equal ones kept.
//! Operators apply left to right, all with the same precedence (SQLite's,
//! not the SQL standard's: `plan/compose.rs` re-associates).

use std::collections::HashSet;

use super::super::Limits;
use super::super::error::QueryError;
use super::super::value::Value;
use super::too_large;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    UnionAll,
    Union,
    Intersect,
    Except,
}

/// `left op right`. Holds at most the two inputs and a set of their rows;
/// the result over `max_rows_in_memory` rows is `TooLarge`; the interrupt
/// is checked per row.
pub fn combine(
    op: SetOp,
    left: Vec<Vec<Value>>,
    right: Vec<Vec<Value>>,
    limits: &Limits,
) -> Result<Vec<Vec<Value>>, QueryError> {
    let cap = limits.max_rows_in_memory as usize;
    let check = |n: usize| -> Result<(), QueryError> {
        limits.interrupt.check()?;
        if n > cap {
            return Err(too_large(limits));
        }
        Ok(())
    };
    let mut out = Vec::new();
    match op {
        SetOp::UnionAll => {
            out = left;
            for row in right {
                check(out.len() + 1)?;
                out.push(row);
            }
        }
        SetOp::Union => {
            let mut seen: HashSet<Vec<Value>> = HashSet::new();
            for row in left.into_iter().chain(right) {
                if seen.contains(&row) {
                    limits.interrupt.check()?;
                    continue;
                }
                check(out.len() + 1)?;
                seen.insert(row.clone());
                out.push(row);
            }
        }
        SetOp::Intersect | SetOp::Except => {
            let mut other: HashSet<Vec<Value>> = HashSet::new();
            for row in right {
                limits.interrupt.check()?;
                other.insert(row);
            }
            let keep_common = op == SetOp::Intersect;
            let mut seen: HashSet<Vec<Value>> = HashSet::new();
            for row in left {
                limits.interrupt.check()?;
                if other.contains(&row) != keep_common || seen.contains(&row) {
                    continue;
                }
                check(out.len() + 1)?;
                seen.insert(row.clone());
                out.push(row);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&[Option<i64>]]) -> Vec<Vec<Value>> {
        v.iter()
            .map(|r| {
                r.iter()
                    .map(|c| c.map_or(Value::Null, Value::Int))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn set_operations_treat_nulls_as_equal_and_keep_distinct_rows() {
        let limits = Limits::default();
        let l = rows(&[&[Some(1)], &[None], &[Some(1)], &[Some(2)], &[None]]);
        let r = rows(&[&[None], &[Some(3)], &[Some(2)]]);
        let run = |op| combine(op, l.clone(), r.clone(), &limits).unwrap();
        assert_eq!(run(SetOp::UnionAll).len(), 8);
        assert_eq!(
            run(SetOp::Union),
            rows(&[&[Some(1)], &[None], &[Some(2)], &[Some(3)]])
        );
        assert_eq!(run(SetOp::Intersect), rows(&[&[None], &[Some(2)]]));
        assert_eq!(run(SetOp::Except), rows(&[&[Some(1)]]));
        // An integer equals the same real.
        let reals = vec![vec![Value::Real(1.0)]];
        assert!(
            combine(SetOp::Except, l.clone(), reals, &limits)
                .unwrap()
                .iter()
                .all(|r| r[0] != Value::Int(1))
        );
    }

    #[test]
    fn a_result_over_the_bound_is_too_large() {
        let limits = Limits {
            max_rows_in_memory: 2,
            ..Limits::default()
        };
        let l = rows(&[&[Some(1)], &[Some(2)]]);
        let r = rows(&[&[Some(3)]]);
        for op in [SetOp::UnionAll, SetOp::Union] {
            let e = combine(op, l.clone(), r.clone(), &limits).unwrap_err();
            assert_eq!(e.kind, super::super::super::error::ErrorKind::TooLarge);
        }
        assert_eq!(
            combine(SetOp::Except, l.clone(), r, &limits).unwrap().len(),
            2
        );
    }
}
