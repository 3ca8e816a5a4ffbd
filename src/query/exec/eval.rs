//! Expressions over a row, a group or nothing, with SQLite's rules:
//! comparisons with affinity, arithmetic, LIKE, the scalar functions.

use std::cmp::Ordering;

use super::super::ast::{ArithOp, CmpOp, Coerce, Expr, Func};
use super::super::cells::RowRef;
use super::super::error::{ErrorKind, QueryError};
use super::super::value::{Value, ValueRef};
use super::functions;

/// A row of the joined tables, without copying: one row per source
/// (`parts[p]` is source `p`'s row, `RowRef::Empty` where a LEFT JOIN
/// found none), and where each source's columns start in the joined
/// numbering.
#[derive(Clone, Copy)]
pub(super) struct Row<'a> {
    pub(super) parts: &'a [RowRef<'a>],
    pub(super) offsets: &'a [usize],
}

impl<'a> Row<'a> {
    pub(super) fn get(&self, i: usize) -> Option<Value> {
        let p = self.offsets.iter().rposition(|&o| o <= i)?;
        self.parts.get(p)?.get(i - self.offsets[p])
    }

    /// Column `i`, borrowed (NULL past the row).
    pub(super) fn get_ref(&self, i: usize) -> ValueRef<'a> {
        match self.offsets.iter().rposition(|&o| o <= i) {
            Some(p) => self
                .parts
                .get(p)
                .map_or(ValueRef::Null, |part| part.get_ref(i - self.offsets[p])),
            None => ValueRef::Null,
        }
    }
}

/// What expressions read: a row of the joined tables, or a group.
#[derive(Clone, Copy)]
pub(super) enum Ctx<'a> {
    Row(Row<'a>),
    Group {
        keys: &'a [Value],
        aggs: &'a [Value],
    },
    Const,
    /// A row or group (the first) with its window functions' values
    /// (`Expr::Window`), after exec/window.rs computed them.
    Win(&'a Ctx<'a>, &'a [Value]),
}

pub fn eval_const(e: &Expr) -> Result<Value, QueryError> {
    eval(e, &Ctx::Const)
}

/// Evaluates an expression over one row of one table.
pub fn eval_row(e: &Expr, row: RowRef) -> Result<Value, QueryError> {
    let parts = [row];
    eval(
        e,
        &Ctx::Row(Row {
            parts: &parts,
            offsets: &[0],
        }),
    )
}

/// Evaluates an expression over one row of several sources (`offsets[p]`:
/// where source `p`'s columns start), e.g. a row and its `excluded` values.
pub fn eval_parts(e: &Expr, parts: &[RowRef], offsets: &[usize]) -> Result<Value, QueryError> {
    eval(e, &Ctx::Row(Row { parts, offsets }))
}

pub(super) fn runtime(message: impl Into<String>) -> QueryError {
    QueryError::new(ErrorKind::Runtime, message)
}

pub(super) fn eval(e: &Expr, ctx: &Ctx) -> Result<Value, QueryError> {
    Ok(match e {
        Expr::Col(i, _) => match ctx.base() {
            Ctx::Row(r) => r.get(*i).unwrap_or(Value::Null),
            _ => return Err(runtime("a column outside of a row")),
        },
        Expr::Key(i) => match ctx.base() {
            Ctx::Group { keys, .. } => keys.get(*i).cloned().unwrap_or(Value::Null),
            _ => return Err(runtime("a group key outside of a group")),
        },
        Expr::Agg(i) => match ctx.base() {
            Ctx::Group { aggs, .. } => aggs.get(*i).cloned().unwrap_or(Value::Null),
            _ => return Err(runtime("an aggregate outside of a group")),
        },
        Expr::Window(i) => match ctx {
            Ctx::Win(_, w) => w.get(*i).cloned().unwrap_or(Value::Null),
            _ => return Err(runtime("a window function outside of a window")),
        },
        Expr::Lit(v) => v.clone(),
        Expr::Neg(x) => match eval(x, ctx)?.as_number() {
            None => Value::Null,
            Some(Value::Int(i)) => i.checked_neg().map_or(Value::Real(-(i as f64)), Value::Int),
            Some(Value::Real(r)) => Value::Real(-r),
            Some(_) => Value::Null,
        },
        Expr::Not(x) => match eval(x, ctx)?.truth() {
            None => Value::Null,
            Some(b) => Value::Int(i64::from(!b)),
        },
        Expr::Arith(op, a, b) => arith(*op, &eval(a, ctx)?, &eval(b, ctx)?),
        Expr::Concat(a, b) => {
            let (a, b) = (eval(a, ctx)?, eval(b, ctx)?);
            if a.is_null() || b.is_null() {
                Value::Null
            } else {
                Value::text(&format!("{a}{b}"))
            }
        }
        Expr::Cmp(op, a, b, coerce) => {
            let (a, b) = coerced(eval(a, ctx)?, eval(b, ctx)?, *coerce);
            match a.sql_cmp(&b) {
                None if matches!(op, CmpOp::Is | CmpOp::IsNot) => Value::Int(i64::from(
                    (a.is_null() && b.is_null()) == (*op == CmpOp::Is),
                )),
                None => Value::Null,
                Some(o) => Value::Int(i64::from(cmp_holds(*op, o))),
            }
        }
        Expr::And(a, b) => {
            let x = eval(a, ctx)?.truth();
            if x == Some(false) {
                return Ok(Value::Int(0));
            }
            match (x, eval(b, ctx)?.truth()) {
                (_, Some(false)) => Value::Int(0),
                (Some(true), Some(true)) => Value::Int(1),
                _ => Value::Null,
            }
        }
        Expr::Or(a, b) => {
            let x = eval(a, ctx)?.truth();
            if x == Some(true) {
                return Ok(Value::Int(1));
            }
            match (x, eval(b, ctx)?.truth()) {
                (_, Some(true)) => Value::Int(1),
                (Some(false), Some(false)) => Value::Int(0),
                _ => Value::Null,
            }
        }
        Expr::IsNull(x, negated) => Value::Int(i64::from(eval(x, ctx)?.is_null() != *negated)),
        Expr::InList(x, items, negated) => {
            let left_affinity = x.affinity();
            if items.is_empty() {
                // SQLite: `x IN ()` is false and `x NOT IN ()` true, NULL x too.
                return Ok(Value::Int(i64::from(*negated)));
            }
            let v = eval(x, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for i in items {
                let item = eval(i, ctx)?;
                let (l, r) = coerced(
                    v.clone(),
                    item,
                    Coerce(None, left_affinity.filter(|_| !matches!(i, Expr::Col(..)))),
                );
                match l.sql_cmp(&r) {
                    None => saw_null = true,
                    Some(Ordering::Equal) => {
                        found = true;
                        break;
                    }
                    Some(_) => {}
                }
            }
            in_result(found, saw_null, *negated)
        }
        Expr::InSet(x, set, negated) => {
            let v = eval(x, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            in_result(set.values.contains(&v), set.has_null, *negated)
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
        } => {
            let (v, p) = (eval(expr, ctx)?, eval(pattern, ctx)?);
            if v.is_null() || p.is_null() {
                return Ok(Value::Null);
            }
            let m = like(&p.to_string(), &v.to_string(), *escape);
            Value::Int(i64::from(m != *negated))
        }
        Expr::Func(f, args) => func(*f, args, ctx)?,
        Expr::Subquery(key, values) => super::subquery::value(key.as_deref(), values, ctx)?,
    })
}

fn in_result(found: bool, saw_null: bool, negated: bool) -> Value {
    match (found, saw_null) {
        (true, _) => Value::Int(i64::from(!negated)),
        (false, true) => Value::Null,
        (false, false) => Value::Int(i64::from(negated)),
    }
}

fn coerced(a: Value, b: Value, c: Coerce) -> (Value, Value) {
    let a = match c.0 {
        Some(t) => a.with_affinity(t),
        None => a,
    };
    let b = match c.1 {
        Some(t) => b.with_affinity(t),
        None => b,
    };
    (a, b)
}

fn cmp_holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq | CmpOp::Is => o == Ordering::Equal,
        CmpOp::Ne | CmpOp::IsNot => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

pub(super) fn arith(op: ArithOp, a: &Value, b: &Value) -> Value {
    let (Some(x), Some(y)) = (a.as_number(), b.as_number()) else {
        return Value::Null;
    };
    match (x, y) {
        (Value::Int(x), Value::Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div => {
                    if y == 0 {
                        return Value::Null;
                    }
                    x.checked_div(y)
                }
                ArithOp::Mod => {
                    if y == 0 {
                        return Value::Null;
                    }
                    Some(x.checked_rem(y).unwrap_or(0))
                }
            };
            match r {
                Some(i) => Value::Int(i),
                // Overflow: SQLite goes on in floating point.
                None => real_arith(op, x as f64, y as f64),
            }
        }
        (x, y) => {
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return Value::Null;
            };
            real_arith(op, x, y)
        }
    }
}

fn real_arith(op: ArithOp, x: f64, y: f64) -> Value {
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => {
            if y == 0.0 {
                return Value::Null;
            }
            x / y
        }
        ArithOp::Mod => {
            // SQLite: both operands as integers, the result a real.
            let (a, b) = (x as i64, y as i64);
            if b == 0 {
                return Value::Null;
            }
            return Value::Real(a.checked_rem(b).unwrap_or(0) as f64);
        }
    };
    if r.is_nan() {
        Value::Null
    } else {
        Value::Real(r)
    }
}

/// SQL LIKE: `%` any run, `_` one character; ASCII letters match either
/// case; `escape` makes the next pattern character literal.
pub(super) fn like(pattern: &str, text: &str, escape: Option<char>) -> bool {
    let eq =
        |a: char, b: char| a == b || (a.is_ascii() && b.is_ascii() && a.eq_ignore_ascii_case(&b));
    wildcard(pattern, text, |p, x| match (p, x) {
        // An escape at the end of the pattern matches nothing.
        ([c, lit, ..], Some(x)) if Some(*c) == escape => {
            if eq(*lit, x) {
                Token::One(2)
            } else {
                Token::Fail
            }
        }
        ([c, ..], _) if Some(*c) == escape => Token::Fail,
        (['%', ..], _) => Token::Any,
        (['_', ..], Some(_)) => Token::One(1),
        ([c, ..], Some(x)) if eq(*c, x) => Token::One(1),
        _ => Token::Fail,
    })
}

/// What the pattern at a position matches (`wildcard`).
pub(super) enum Token {
    /// Any run of characters (`%`, `*`); one pattern character.
    Any,
    /// The text's next character, using this many pattern characters.
    One(usize),
    /// Not the text's next character (or there is none).
    Fail,
}

/// A wildcard match of LIKE and GLOB: `token(rest of pattern, next text
/// character)` reads one token. Every token but `Any` matches exactly one
/// character, so backtracking to the last `Any` alone is complete.
pub(super) fn wildcard(
    pattern: &str,
    text: &str,
    token: impl Fn(&[char], Option<char>) -> Token,
) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match token(&p[pi..], t.get(ti).copied()) {
                Token::Any => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                Token::One(n) => {
                    pi += n;
                    ti += 1;
                    continue;
                }
                Token::Fail => {}
            }
        } else if ti == t.len() {
            return true;
        }
        match star {
            Some((sp, st)) if st < t.len() => {
                star = Some((sp, st + 1));
                pi = sp + 1;
                ti = st + 1;
            }
            _ => return false,
        }
    }
}

fn func(f: Func, args: &[Expr], ctx: &Ctx) -> Result<Value, QueryError> {
    match f {
        Func::Time(t) => return super::datetime::call(t, args, ctx),
        Func::Json(j) => return super::json::call(j, args, ctx).map(|(v, _)| v),
        Func::Scalar(s) => return functions::call(s, args, ctx),
        _ => {}
    }
    if f == Func::Coalesce {
        for a in args {
            let v = eval(a, ctx)?;
            if !v.is_null() {
                return Ok(v);
            }
        }
        return Ok(Value::Null);
    }
    let v: Vec<Value> = args
        .iter()
        .map(|a| eval(a, ctx))
        .collect::<Result<_, _>>()?;
    let first = v.first().cloned().unwrap_or(Value::Null);
    if first.is_null() {
        return Ok(Value::Null);
    }
    Ok(match f {
        Func::Lower => Value::text(&first.to_string().to_ascii_lowercase()),
        Func::Upper => Value::text(&first.to_string().to_ascii_uppercase()),
        Func::Length => Value::Int(first.to_string().chars().count() as i64),
        Func::Abs => functions::abs(&first)?,
        Func::Substr => {
            let int = |v: &Value| match v.as_number() {
                Some(Value::Int(i)) => Some(i),
                Some(Value::Real(r)) => Some(r as i64),
                _ => None,
            };
            let Some(start) = v.get(1).and_then(int) else {
                return Ok(Value::Null);
            };
            let len = match v.get(2) {
                None => None,
                Some(x) => match int(x) {
                    Some(l) => Some(l),
                    None => return Ok(Value::Null),
                },
            };
            Value::text(&substr(&first.to_string(), start, len))
        }
        Func::Coalesce | Func::Time(_) | Func::Json(_) | Func::Scalar(_) => Value::Null,
    })
}

/// SQLite's substr: 1-based; 0 is a position before the first character;
/// a negative start counts from the end; a negative length takes the
/// characters before the start.
fn substr(s: &str, start: i64, len: Option<i64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let (mut p1, mut p2, neg) = match len {
        Some(l) if l < 0 => (start, l.saturating_neg(), true),
        Some(l) => (start, l, false),
        None => (start, i64::MAX / 4, false),
    };
    if p1 < 0 {
        p1 += n;
        if p1 < 0 {
            p2 = (p2 + p1).max(0);
            p1 = 0;
        }
    } else if p1 > 0 {
        p1 -= 1;
    } else if p2 > 0 {
        p2 -= 1;
    }
    if neg {
        p1 -= p2;
        if p1 < 0 {
            p2 += p1;
            p1 = 0;
        }
    }
    let from = p1.clamp(0, n) as usize;
    let to = p1.saturating_add(p2.max(0)).clamp(0, n) as usize;
    if from >= to {
        return String::new();
    }
    chars[from..to].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::value::format_real;

    #[test]
    fn like_and_substr_follow_sqlite() {
        assert!(like("ABC", "abc", None));
        assert!(!like("É", "é", None));
        assert!(like("_", "é", None));
        assert!(!like("a", "ab", None));
        assert!(like("a%b%", "axxbyy", None));
        assert!(like("a!%b", "a%b", Some('!')));
        assert!(!like("a!%b", "axb", Some('!')));
        assert!(!like("a!", "a", Some('!')));
        assert!(like("a!!", "a!", Some('!')));
        let cases = [
            (0, None, "hello"),
            (0, Some(2), "h"),
            (-2, None, "lo"),
            (-2, Some(1), "l"),
            (2, None, "ello"),
            (2, Some(-1), "h"),
            (10, None, ""),
            (1, Some(0), ""),
            (-10, Some(3), ""),
        ];
        for (start, len, want) in cases {
            assert_eq!(
                substr("hello", start, len),
                want,
                "substr(hello, {start}, {len:?})"
            );
        }
        assert_eq!(format_real(2.5), "2.5");
    }

    #[test]
    fn arithmetic_is_sqlites() {
        let i = Value::Int;
        assert_eq!(arith(ArithOp::Div, &i(5), &i(2)), i(2));
        assert_eq!(arith(ArithOp::Div, &i(-5), &i(2)), i(-2));
        assert!(arith(ArithOp::Div, &i(1), &i(0)).is_null());
        assert!(arith(ArithOp::Mod, &i(1), &i(0)).is_null());
        assert_eq!(arith(ArithOp::Mod, &i(-5), &i(3)), i(-2));
        assert_eq!(
            arith(ArithOp::Mod, &Value::Real(5.5), &i(2)),
            Value::Real(1.0)
        );
        assert_eq!(
            arith(ArithOp::Add, &i(i64::MAX), &i(1)),
            Value::Real(i64::MAX as f64 + 1.0)
        );
        assert_eq!(arith(ArithOp::Add, &i(1), &Value::text("x")), i(1));
    }
}
