//! printf()/format() and round(), as SQLite does them. Both rest on
//! SQLite's way of printing a real (`et_float`, realfmt.rs), ported with its
//! x87 extended-precision arithmetic, so the digits are SQLite's to the
//! last one: for `%.Nf` it adds half a unit of the last place (plus 3e-16
//! of the value when few digits are asked for, so 2.675 rounds to 2.68 as a
//! person expects) and writes at most 16 significant digits.

use super::super::error::QueryError;
use super::super::realfmt::et_float;
use super::super::value::Value;
use super::eval::runtime;
use super::functions::to_i64;

/// Widths and precisions beyond this are refused: a result stays small.
const MAX_WIDTH: i64 = 10_000;

/// `x` printed as SQLite's `%.{precision}f` prints it, without sign (the
/// caller adds one for a negative `x`).
pub(super) fn fixed(x: f64, precision: usize) -> String {
    et_float(x, 'f', precision as i64, false, false)
}

/// round(x[, n]): a real; `n` from 0 to 30 places (NULL gives NULL); halves
/// away from zero.
pub(super) fn round(v: &[Value]) -> Value {
    let n = match v.get(1) {
        None => 0,
        Some(Value::Null) => return Value::Null,
        Some(n) => to_i64(n).clamp(0, 30) as usize,
    };
    let Some(r) = v.first().and_then(Value::as_f64) else {
        return Value::Null;
    };
    let r = if !(-4503599627370496.0..=4503599627370496.0).contains(&r) {
        // Past 2^52 a double has no fraction to round.
        r
    } else if n == 0 {
        (r + if r < 0.0 { -0.5 } else { 0.5 }) as i64 as f64
    } else {
        let s = fixed(r, n);
        let a: f64 = s.parse().unwrap_or(0.0);
        if r < 0.0 { -a } else { a }
    };
    Value::Real(r)
}

/// One conversion's flags, width and precision.
#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    alt: bool,
    comma: bool,
    /// `!`: more digits for a real, characters rather than bytes for `%s`.
    bang: bool,
    width: Option<i64>,
    precision: Option<i64>,
}

/// printf(format, ...): the conversions SQLite's printf has that web
/// applications use (`%d %i %u %x %X %o %f %e %g %s %z %c %q %Q %w %%`, flags
/// `- + space 0 # ,`, widths and precisions, also as `*`); a missing
/// argument is 0 or empty; any other conversion is refused by name.
pub(super) fn printf(v: &[Value]) -> Result<Value, QueryError> {
    let Some(fmt) = v.first() else {
        return Ok(Value::Null);
    };
    if fmt.is_null() {
        return Ok(Value::Null);
    }
    let fmt = fmt.to_string();
    let mut args = v.iter().skip(1);
    let mut next = || args.next().cloned().unwrap_or(Value::Null);
    let mut out = String::new();
    let mut cs = fmt.chars().peekable();
    while let Some(c) = cs.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut s = Spec::default();
        while let Some(&f) = cs.peek() {
            match f {
                '-' => s.left = true,
                '+' => s.plus = true,
                ' ' => s.space = true,
                '0' => s.zero = true,
                '#' => s.alt = true,
                ',' => s.comma = true,
                '!' => s.bang = true,
                _ => break,
            }
            cs.next();
        }
        let mut number = |cs: &mut std::iter::Peekable<std::str::Chars>| -> Option<i64> {
            if cs.peek() == Some(&'*') {
                cs.next();
                return Some(to_i64(&next()));
            }
            let mut n: Option<i64> = None;
            while let Some(d) = cs.peek().and_then(|c| c.to_digit(10)) {
                n = Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(i64::from(d)),
                );
                cs.next();
            }
            n
        };
        s.width = number(&mut cs);
        if let Some(w) = s.width
            && w < 0
        {
            s.left = true;
            s.width = Some(w.saturating_neg());
        }
        if cs.peek() == Some(&'.') {
            cs.next();
            s.precision = Some(number(&mut cs).unwrap_or(0).max(0));
        }
        if s.width.unwrap_or(0) > MAX_WIDTH || s.precision.unwrap_or(0) > MAX_WIDTH {
            return Err(runtime(format!(
                "printf(): a width or precision over {MAX_WIDTH}"
            )));
        }
        while matches!(cs.peek(), Some('l' | 'h')) {
            cs.next();
        }
        let Some(conv) = cs.next() else {
            break;
        };
        let body = match conv {
            '%' => {
                out.push('%');
                continue;
            }
            'd' | 'i' => integer(to_i64(&next()), &s, true),
            'u' => integer(to_i64(&next()), &s, false),
            'x' | 'X' | 'o' => radix(to_i64(&next()) as u64, conv, &s),
            'f' | 'e' | 'E' | 'g' | 'G' => float(next().as_f64().unwrap_or(0.0), conv, &s),
            's' | 'z' => {
                let t = next().to_string();
                match s.precision {
                    Some(p) => cut(&t, p, s.bang).to_string(),
                    None => t,
                }
            }
            'c' => {
                let t = next().to_string();
                let c = t.chars().next().map(String::from).unwrap_or_default();
                c.repeat(s.precision.unwrap_or(1).max(1) as usize)
            }
            'q' | 'Q' | 'w' => {
                let a = next();
                let (q, null) = match conv {
                    'w' => ("\"", "(NULL)"),
                    'q' => ("'", "(NULL)"),
                    _ => ("'", "NULL"),
                };
                match a {
                    Value::Null => null.to_string(),
                    a => {
                        let t = a.to_string();
                        let t = match s.precision {
                            Some(p) => cut(&t, p, s.bang),
                            None => &t,
                        };
                        let doubled = t.replace(q, &q.repeat(2));
                        if conv == 'Q' {
                            format!("'{doubled}'")
                        } else {
                            doubled
                        }
                    }
                }
            }
            other => {
                return Err(runtime(format!(
                    "printf(): ReedQL does not support the %{other} conversion \
                     (supported: %d %i %u %x %X %o %f %e %E %g %G %s %z %c %q %Q %w %%)"
                )));
            }
        };
        pad(
            &mut out,
            &body,
            &s,
            matches!(conv, 'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'f'),
        );
    }
    Ok(Value::text(&out))
}

/// The first `p` bytes of `t` (characters with `!`), not splitting a
/// character.
fn cut(t: &str, p: i64, chars: bool) -> &str {
    let p = usize::try_from(p).unwrap_or(0);
    let mut end = if chars {
        t.char_indices().nth(p).map_or(t.len(), |(i, _)| i)
    } else {
        p.min(t.len())
    };
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    &t[..end]
}

fn sign(neg: bool, s: &Spec) -> &'static str {
    if neg {
        "-"
    } else if s.plus {
        "+"
    } else if s.space {
        " "
    } else {
        ""
    }
}

fn integer(i: i64, s: &Spec, signed: bool) -> String {
    let (neg, mag) = if signed {
        (i < 0, i.unsigned_abs())
    } else {
        (false, i as u64)
    };
    let mut digits = mag.to_string();
    if let Some(p) = s.precision
        && (digits.len() as i64) < p
    {
        digits = "0".repeat(p as usize - digits.len()) + &digits;
    }
    if s.comma {
        let b = digits.as_bytes();
        let mut with = String::new();
        for (k, d) in b.iter().enumerate() {
            if k > 0 && (b.len() - k) % 3 == 0 {
                with.push(',');
            }
            with.push(char::from(*d));
        }
        digits = with;
    }
    format!("{}{digits}", sign(neg, s))
}

fn radix(u: u64, conv: char, s: &Spec) -> String {
    let (mut digits, prefix) = match conv {
        'x' => (format!("{u:x}"), "0x"),
        'X' => (format!("{u:X}"), "0X"),
        _ => (format!("{u:o}"), "0"),
    };
    if let Some(p) = s.precision
        && (digits.len() as i64) < p
    {
        digits = "0".repeat(p as usize - digits.len()) + &digits;
    }
    if s.alt && u != 0 {
        digits = format!("{prefix}{digits}");
    }
    digits
}

fn float(x: f64, conv: char, s: &Spec) -> String {
    let p = s.precision.unwrap_or(6) as usize;
    let neg = x < 0.0;
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return format!("{}Inf", sign(neg, s));
    }
    let body = et_float(x, conv, p as i64, s.alt, s.bang);
    format!("{}{body}", sign(neg, s))
}

/// Pads a conversion to its width: spaces before (after with `-`), or
/// zeros after the sign for a number with the `0` flag.
fn pad(out: &mut String, body: &str, s: &Spec, numeric: bool) {
    let width = s.width.unwrap_or(0).max(0) as usize;
    // Bytes, as SQLite counts them (`%5s` of 'é' pads with 3 spaces), or
    // characters with `!`.
    let len = if s.bang {
        body.chars().count()
    } else {
        body.len()
    };
    if len >= width {
        out.push_str(body);
        return;
    }
    let fill = width - len;
    if s.left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if s.zero && numeric {
        let signed = body.starts_with(['-', '+', ' ']);
        let (head, tail) = body.split_at(usize::from(signed));
        out.push_str(head);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(tail);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[Value]) -> String {
        printf(args).map(|v| v.to_string()).unwrap_or_default()
    }

    #[test]
    fn fixed_rounds_as_sqlite() {
        assert_eq!(fixed(2.675, 2), "2.68");
        assert_eq!(fixed(0.5, 0), "1");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(1.25, 1), "1.3");
        assert_eq!(fixed(1.23456, 6), "1.234560");
        assert_eq!(fixed(0.0, 3), "0.000");
        assert_eq!(fixed(0.001, 2), "0.00");
        assert_eq!(fixed(1e20, 0), "100000000000000000000");
        assert_eq!(fixed(0.1, 20), "0.10000000000000000000");
        assert_eq!(fixed(123.456, 1), "123.5");
    }

    #[test]
    fn round_follows_sqlite() {
        let r = |x: f64, n: i64| round(&[Value::Real(x), Value::Int(n)]).as_f64();
        assert_eq!(r(2.5, 0), Some(3.0));
        assert_eq!(r(-2.5, 0), Some(-3.0));
        assert_eq!(r(2.675, 2), Some(2.68));
        assert_eq!(r(-2.675, 2), Some(-2.68));
        assert_eq!(r(1234.5678, -2), Some(1235.0));
        assert_eq!(r(1.23456, 3), Some(1.235));
        assert!(round(&[Value::Real(1.5), Value::Null]).is_null());
        assert!(round(&[Value::Null]).is_null());
    }

    #[test]
    fn printf_conversions() {
        let (i, t) = (Value::Int, Value::text);
        assert_eq!(
            p(&[
                t("%d|%5d|%-5d|%05d|%+d|%x|%X|%o"),
                i(42),
                i(42),
                i(42),
                i(42),
                i(42),
                i(255),
                i(255),
                i(8)
            ]),
            "42|   42|42   |00042|+42|ff|FF|10"
        );
        assert_eq!(
            p(&[
                t("%s|%10s|%-10s|%.2s|%c|%%|%q|%Q"),
                t("hi"),
                t("hi"),
                t("hi"),
                t("hello"),
                t("xyz"),
                t("it's"),
                t("a'b")
            ]),
            "hi|        hi|hi        |he|x|%|it''s|'a''b'"
        );
        assert_eq!(p(&[t("%d %d"), i(1)]), "1 0");
        assert_eq!(p(&[t("%,d"), i(1234567)]), "1,234,567");
        assert_eq!(p(&[t("%x"), i(-1)]), "ffffffffffffffff");
        assert_eq!(p(&[t("%.3d|%u"), i(5), i(-1)]), "005|18446744073709551615");
        assert_eq!(
            p(&[t("%8.3f|%-8.1f|"), Value::Real(-1.5), Value::Real(1.25)]),
            "  -1.500|1.3     |"
        );
        assert_eq!(p(&[t("%q|%Q"), Value::Null, Value::Null]), "(NULL)|NULL");
        assert_eq!(p(&[t("%*d|%-*d|"), i(4), i(7), i(3), i(8)]), "   7|8  |");
        assert!(printf(&[t("%n"), i(1)]).is_err());
        assert_eq!(
            p(&[
                t("%e|%.2e|%E|%g|%g|%g|%g|%.3g|%#g|%g|%g|%10.2e|%-12g|"),
                Value::Real(1234.5),
                Value::Real(0.000123456),
                Value::Real(1e100),
                i(100000),
                i(1000000),
                Value::Real(0.0001),
                Value::Real(0.00001),
                Value::Real(3.14259),
                Value::Real(1.5),
                i(0),
                i(123456789),
                Value::Real(-5.5),
                Value::Real(2.5)
            ]),
            "1.234500e+03|1.23e-04|1.000000E+100|100000|1e+06|0.0001|1e-05|3.14|1.50000|0|1.23457e+08| -5.50e+00|2.5         |"
        );
        assert!(printf(&[t("%99999d"), i(1)]).is_err());
        assert!(printf(&[Value::Null]).map(|v| v.is_null()).unwrap_or(false));
    }
}
