//! SQLite's scalar functions beyond the few of eval.rs: CASE, CAST,
//! NULLIF, GLOB and like(), the string functions (instr, replace, trim,
//! hex, quote, char, unicode, printf in printf.rs), and the math functions
//! (abs, round, sign, multi-argument min/max, and those of SQLite 3.35+).
//! Each follows SQLite's rules for NULLs and for text used as a number:
//! functions that read "a number" take the numeric prefix of a text
//! (`sqlite3_value_double`), the math functions take only a text that is a
//! number as a whole (`sqlite3_value_numeric_type`) and give NULL for any
//! other.

use std::cmp::Ordering;

use super::super::ast::{CastTo, Expr, Math, Scalar};
use super::super::error::QueryError;
use super::super::realfmt::et_float;
use super::super::value::{Type, Value, format_real};
use super::eval::{Ctx, Token, eval, like, runtime, wildcard};
use super::printf::{printf, round};

/// The longest text a function makes (SQLite's SQLITE_MAX_LENGTH): nested
/// replace() or hex() grow exponentially, and are stopped here before the
/// text is made.
const MAX_TEXT_BYTES: usize = 1_000_000_000;

fn too_big(len: usize) -> Result<(), QueryError> {
    if len > MAX_TEXT_BYTES {
        return Err(runtime("string or blob too big"));
    }
    Ok(())
}

pub(super) fn call(f: Scalar, args: &[Expr], ctx: &Ctx) -> Result<Value, QueryError> {
    if f == Scalar::Case {
        // Lazily: a branch not taken is never evaluated (its errors neither).
        let mut pairs = args.chunks_exact(2);
        for pair in &mut pairs {
            if eval(&pair[0], ctx)?.truth() == Some(true) {
                return eval(&pair[1], ctx);
            }
        }
        return match pairs.remainder().first() {
            Some(e) => eval(e, ctx),
            None => Ok(Value::Null),
        };
    }
    let v: Vec<Value> = args
        .iter()
        .map(|a| eval(a, ctx))
        .collect::<Result<_, _>>()?;
    let arg = |i: usize| v.get(i).unwrap_or(&Value::Null);
    let any_null = v.iter().any(Value::is_null);
    Ok(match f {
        Scalar::Case => Value::Null,
        Scalar::Cast(to) => cast(arg(0), to),
        Scalar::NullIf => {
            // No affinity: function arguments compare as they are.
            if arg(0).sort_cmp(arg(1)) == Ordering::Equal {
                Value::Null
            } else {
                arg(0).clone()
            }
        }
        Scalar::Glob if any_null => Value::Null,
        Scalar::Glob => Value::Int(i64::from(glob(&arg(0).to_string(), &arg(1).to_string()))),
        Scalar::Like if any_null => Value::Null,
        Scalar::Like => {
            let escape = match v.get(2) {
                None => None,
                Some(e) => {
                    let e = e.to_string();
                    let mut cs = e.chars();
                    match (cs.next(), cs.next()) {
                        (Some(c), None) => Some(c),
                        _ => {
                            return Err(runtime("ESCAPE expression must be a single character"));
                        }
                    }
                }
            };
            Value::Int(i64::from(like(
                &arg(0).to_string(),
                &arg(1).to_string(),
                escape,
            )))
        }
        Scalar::Instr if any_null => Value::Null,
        Scalar::Instr => {
            let (h, n) = (arg(0).to_string(), arg(1).to_string());
            Value::Int(h.find(&n).map_or(0, |b| h[..b].chars().count() as i64 + 1))
        }
        Scalar::Replace if any_null => Value::Null,
        Scalar::Replace => {
            let from = arg(1).to_string();
            if from.is_empty() {
                // SQLite hands the first argument back as it is.
                arg(0).clone()
            } else {
                let (s, to) = (arg(0).to_string(), arg(2).to_string());
                let n = s.matches(&from).count();
                too_big(s.len().saturating_add(n.saturating_mul(to.len())))?;
                Value::text(&s.replace(&from, &to))
            }
        }
        Scalar::Trim(..) if any_null => Value::Null,
        Scalar::Trim(left, right) => {
            let set: Vec<char> = match v.get(1) {
                Some(c) => c.to_string().chars().collect(),
                None => vec![' '],
            };
            let s = arg(0).to_string();
            let mut t = s.as_str();
            if left {
                t = t.trim_start_matches(|c| set.contains(&c));
            }
            if right {
                t = t.trim_end_matches(|c| set.contains(&c));
            }
            Value::text(t)
        }
        Scalar::Hex => {
            let s = arg(0).to_string();
            too_big(s.len().saturating_mul(2))?;
            let mut out = String::with_capacity(s.len() * 2);
            for b in s.bytes() {
                out.push_str(&format!("{b:02X}"));
            }
            Value::text(&out)
        }
        Scalar::Quote => {
            if let Value::Text(t) = arg(0) {
                too_big(
                    t.len()
                        .saturating_add(t.matches('\'').count())
                        .saturating_add(2),
                )?;
            }
            Value::text(&quote(arg(0)))
        }
        Scalar::Char => {
            let s: String = v
                .iter()
                .map(|x| {
                    let c = to_i64(x);
                    u32::try_from(c)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{FFFD}')
                })
                .collect();
            Value::text(&s)
        }
        Scalar::Unicode => match arg(0) {
            Value::Null => Value::Null,
            x => match x.to_string().chars().next() {
                Some(c) => Value::Int(i64::from(u32::from(c))),
                None => Value::Null,
            },
        },
        Scalar::Printf => printf(&v)?,
        Scalar::Round => round(&v),
        Scalar::Sign => match numeric(arg(0)).and_then(|x| x.as_f64()) {
            Some(x) if x < 0.0 => Value::Int(-1),
            Some(x) if x > 0.0 => Value::Int(1),
            Some(_) => Value::Int(0),
            None => Value::Null,
        },
        Scalar::TypeOf => Value::text(match arg(0) {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
        }),
        Scalar::Min | Scalar::Max if any_null => Value::Null,
        Scalar::Min | Scalar::Max => {
            // SQLite keeps the last of equal minimums and the first of
            // equal maximums (its loop compares with `>=` and `<`).
            let mut best = arg(0);
            for x in v.iter().skip(1) {
                let o = best.sort_cmp(x);
                let take = match f {
                    Scalar::Min => o != Ordering::Less,
                    _ => o == Ordering::Less,
                };
                if take {
                    best = x;
                }
            }
            best.clone()
        }
        Scalar::Math(m) => math(m, &v),
    })
}

/// ABS: an integer stays one (ABS of the smallest integer is SQLite's
/// "integer overflow" error); anything else becomes a real.
pub(super) fn abs(v: &Value) -> Result<Value, QueryError> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(|| runtime("integer overflow"))?),
        other => Value::Real(other.as_f64().unwrap_or(0.0).abs()),
    })
}

/// A value as SQLite's `sqlite3_value_int64` reads it: a real truncated
/// (saturating), a text's leading integer (saturating), NULL 0.
pub(super) fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Null => 0,
        Value::Int(i) => *i,
        Value::Real(r) => *r as i64,
        Value::Text(t) => text_to_i64(t),
    }
}

/// The integer a text starts with (after spaces, an optional sign), 0 when
/// there is none, clamped to the 64-bit range (`CAST('1e3' AS INTEGER)` is 1).
fn text_to_i64(t: &str) -> i64 {
    let s = t.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i128 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = (n * 10 + i128::from(b - b'0')).min(i128::from(i64::MAX) + 1);
    }
    let n = if neg { -n } else { n };
    n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The number a value stands for when SQLite's numeric affinity applies:
/// numbers as they are, a text only when it is a number as a whole.
fn numeric(v: &Value) -> Option<Value> {
    match v {
        Value::Int(_) | Value::Real(_) => Some(v.clone()),
        Value::Text(_) => match v.clone().with_affinity(Type::Integer) {
            n @ (Value::Int(_) | Value::Real(_)) => Some(n),
            _ => None,
        },
        Value::Null => None,
    }
}

/// CAST with SQLite's conversions: INTEGER truncates a real and reads a
/// text's leading integer; REAL reads a text's numeric prefix; NUMERIC
/// keeps numbers and makes a text's numeric prefix an integer when it is a
/// whole number in range; TEXT prints the value.
pub(super) fn cast(v: &Value, to: CastTo) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match to {
        CastTo::Integer => Value::Int(to_i64(v)),
        CastTo::Real => Value::Real(v.as_f64().unwrap_or(0.0)),
        CastTo::Text => Value::text(&v.to_string()),
        CastTo::Numeric => match v {
            Value::Text(_) => match v.as_number() {
                Some(Value::Real(r))
                    if r.fract() == 0.0
                        && (-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&r) =>
                {
                    Value::Int(r as i64)
                }
                Some(n) => n,
                None => Value::Null,
            },
            other => other.clone(),
        },
    }
}

/// quote(): a literal that reads back as the value. A real that 15
/// significant digits do not give back exactly is printed as SQLite's
/// `%!.20e` prints it.
fn quote(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::Int(i) => i.to_string(),
        Value::Real(r) => {
            let short = format_real(*r);
            if short.parse::<f64>().ok() == Some(*r) {
                return short;
            }
            let sign = if *r < 0.0 { "-" } else { "" };
            format!("{sign}{}", et_float(*r, 'e', 20, false, true))
        }
        Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
    }
}

/// GLOB: `*` any run, `?` one character, `[...]` a set (`^` first negates,
/// `]` first is literal, `a-z` a range); case matters; no escape.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    wildcard(pattern, text, |p, x| match (p, x) {
        (['*', ..], _) => Token::Any,
        (['?', ..], Some(_)) => Token::One(1),
        (['[', set @ ..], Some(x)) => match set_matches(set, x) {
            Some((true, used)) => Token::One(used + 1),
            _ => Token::Fail,
        },
        ([c, ..], Some(x)) if *c == x => Token::One(1),
        _ => Token::Fail,
    })
}

/// A `[...]` set after its `[`: whether `x` is in it and how many pattern
/// characters it used (through the `]`); None when it is not closed.
fn set_matches(p: &[char], x: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = p.first() == Some(&'^');
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            found |= c <= x && x <= hi;
            i += 3;
        } else {
            found |= c == x;
            i += 1;
        }
    }
}

/// The math functions: a non-numeric argument gives NULL, so does a result
/// that is not a number (sqrt(-1), ln(0)); ceil, floor and trunc keep an
/// integer as it is.
fn math(m: Math, v: &[Value]) -> Value {
    let mut xs = Vec::with_capacity(v.len());
    for a in v {
        match numeric(a) {
            Some(n) => xs.push(n),
            None => return Value::Null,
        }
    }
    let f = |i: usize| xs.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    if matches!(m, Math::Ceil | Math::Floor | Math::Trunc)
        && let Some(Value::Int(i)) = xs.first()
    {
        return Value::Int(*i);
    }
    let x = f(0);
    let r = match m {
        Math::Acos => x.acos(),
        Math::Acosh => x.acosh(),
        Math::Asin => x.asin(),
        Math::Asinh => x.asinh(),
        Math::Atan => x.atan(),
        Math::Atan2 => x.atan2(f(1)),
        Math::Atanh => x.atanh(),
        Math::Ceil => x.ceil(),
        Math::Cos => x.cos(),
        Math::Cosh => x.cosh(),
        Math::Degrees => x * 180.0 / std::f64::consts::PI,
        Math::Exp => x.exp(),
        Math::Floor => x.floor(),
        Math::Ln | Math::Log10 | Math::Log2 if x <= 0.0 => return Value::Null,
        Math::Ln => x.ln(),
        Math::Log10 => x.log10(),
        Math::Log2 => x.log2(),
        Math::Log if xs.len() == 1 => {
            if x <= 0.0 {
                return Value::Null;
            }
            x.log10()
        }
        Math::Log => {
            // log(base, x)
            let y = f(1);
            if x <= 0.0 || y <= 0.0 {
                return Value::Null;
            }
            y.ln() / x.ln()
        }
        Math::Mod => x % f(1),
        Math::Pi => std::f64::consts::PI,
        Math::Pow => x.powf(f(1)),
        Math::Radians => x * std::f64::consts::PI / 180.0,
        Math::Sin => x.sin(),
        Math::Sinh => x.sinh(),
        Math::Sqrt => x.sqrt(),
        Math::Tan => x.tan(),
        Math::Tanh => x.tanh(),
        Math::Trunc => x.trunc(),
    };
    if r.is_nan() {
        Value::Null
    } else {
        Value::Real(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_follows_sqlite() {
        assert!(glob("a*", "abc"));
        assert!(!glob("A*", "abc"));
        assert!(glob("a?c", "abc"));
        assert!(glob("[a-c]bc", "abc"));
        assert!(!glob("[^a]bc", "abc"));
        assert!(glob("a[*]c", "a*c"));
        assert!(glob("[]b]", "b"));
        assert!(glob("[]b]", "]"));
        assert!(glob("?", "é"));
        assert!(!glob("[abc", "a"));
        assert!(glob("*a*b*", "xxaybz"));
        assert!(!glob("*a*b", "xxaybz"));
        assert!(glob("[a-]", "-"));
        assert!(glob("", ""));
    }

    #[test]
    fn casts_and_text_numbers_follow_sqlite() {
        let t = Value::text;
        assert_eq!(cast(&t("12abc"), CastTo::Integer), Value::Int(12));
        assert_eq!(cast(&t("1e3"), CastTo::Integer), Value::Int(1));
        assert_eq!(cast(&t(" -7x"), CastTo::Integer), Value::Int(-7));
        assert_eq!(
            cast(&t("9223372036854775808"), CastTo::Integer),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            cast(&Value::Real(-1e20), CastTo::Integer),
            Value::Int(i64::MIN)
        );
        assert_eq!(cast(&Value::Real(-2.9), CastTo::Integer), Value::Int(-2));
        assert_eq!(cast(&t("1.5x"), CastTo::Numeric), Value::Real(1.5));
        assert!(matches!(cast(&t("3.0"), CastTo::Numeric), Value::Int(3)));
        assert!(matches!(
            cast(&Value::Real(3.0), CastTo::Numeric),
            Value::Real(_)
        ));
        assert!(matches!(
            cast(&t("9223372036854775808"), CastTo::Numeric),
            Value::Real(_)
        ));
        assert!(matches!(cast(&Value::Int(5), CastTo::Real), Value::Real(_)));
        assert_eq!(cast(&Value::Real(3.0), CastTo::Text), t("3.0"));
        assert!(abs(&Value::Int(i64::MIN)).is_err());
        assert!(matches!(abs(&t("-5")), Ok(Value::Real(_))));
        assert_eq!(quote(&Value::Real(1.5)), "1.5");
        assert_eq!(quote(&t("it's")), "'it''s'");
        assert_eq!(quote(&Value::Real(0.1 + 0.2)), "3.00000000000000044408e-01");
    }
}
