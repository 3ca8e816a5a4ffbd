//! Reals printed as SQLite prints them: its printf routine for reals
//! (`et_float`, behind `%f %e %g`, `round`, `quote` and every real it shows,
//! `%!.15g`) ported step by step, over the x87 extended precision ("long
//! double" on x86-64) it computes in (`Ld`: a 64-bit mantissa, each
//! operation rounded to nearest, ties to even; only what printf needs, on
//! values that are zero or positive and finite). So every digit is SQLite's.

use std::cmp::Ordering;

/// `m * 2^e`, `m` with its top bit set (or 0 for zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ld {
    m: u64,
    e: i32,
}

/// Rounds `n * 2^e` (and, with `sticky`, something more below it) to
/// `bits` bits of mantissa, to nearest, ties to even.
fn round_to(n: u128, e: i32, sticky: bool, bits: u32) -> (u128, i32) {
    if n == 0 {
        return (0, 0);
    }
    let width = 128 - n.leading_zeros();
    if width <= bits {
        let up = bits - width;
        return (n << up, e - up as i32);
    }
    let sh = width - bits;
    let keep = n >> sh;
    let rem = n & ((1u128 << sh) - 1);
    let half = 1u128 << (sh - 1);
    let up = rem > half || (rem == half && (sticky || keep & 1 == 1));
    let keep = keep + u128::from(up);
    if keep >> bits != 0 {
        (keep >> 1, e + sh as i32 + 1)
    } else {
        (keep, e + sh as i32)
    }
}

impl Ld {
    const ZERO: Ld = Ld { m: 0, e: 0 };

    fn rounded(n: u128, e: i32, sticky: bool) -> Ld {
        let (m, e) = round_to(n, e, sticky, 64);
        Ld { m: m as u64, e }
    }

    /// A double, exactly (its absolute value; NaN and infinities are 0).
    fn from_f64(x: f64) -> Ld {
        let x = x.abs();
        if !x.is_finite() || x == 0.0 {
            return Ld::ZERO;
        }
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp - 1075)
        };
        Ld::rounded(u128::from(m), e, false)
    }

    /// The nearest double.
    fn to_f64(self) -> f64 {
        if self.m == 0 {
            return 0.0;
        }
        let (m, e) = round_to(u128::from(self.m), self.e, false, 53);
        // Two steps: 2^e alone may underflow where the product does not.
        let half = e / 2;
        (m as f64) * 2f64.powi(half) * 2f64.powi(e - half)
    }

    fn mul(self, o: Ld) -> Ld {
        if self.m == 0 || o.m == 0 {
            return Ld::ZERO;
        }
        Ld::rounded(u128::from(self.m) * u128::from(o.m), self.e + o.e, false)
    }

    fn div(self, o: Ld) -> Ld {
        if self.m == 0 || o.m == 0 {
            return Ld::ZERO;
        }
        let num = u128::from(self.m) << 64;
        let d = u128::from(o.m);
        let (q, r) = (num / d, num % d);
        let e = self.e - 64 - o.e;
        if q >> 64 != 0 {
            return Ld::rounded(q, e, r != 0);
        }
        // Exactly 64 bits of quotient: the remainder decides the rounding.
        let twice = r << 1;
        let up = twice > d || (twice == d && q & 1 == 1);
        let q = q + u128::from(up);
        Ld::rounded(q, e, false)
    }

    fn add(self, o: Ld) -> Ld {
        if self.m == 0 {
            return o;
        }
        if o.m == 0 {
            return self;
        }
        let (big, small) = if self.cmp(&o) == Ordering::Less {
            (o, self)
        } else {
            (self, o)
        };
        // Two bits of headroom for the carry, 62 guard bits below.
        let a = u128::from(big.m) << 62;
        let shift = (big.e - small.e) as u32;
        let b = u128::from(small.m) << 62;
        let (b, sticky) = if shift >= 128 {
            (0, true)
        } else {
            (b >> shift, b & ((1u128 << shift) - 1) != 0)
        };
        Ld::rounded(a + b, big.e - 62, sticky)
    }

    /// The integer part (the value is below 2^31) and the fraction, exactly.
    fn split(self) -> (i32, Ld) {
        if self.m == 0 || self.e >= 0 {
            return (0, Ld::ZERO);
        }
        let sh = (-self.e) as u32;
        if sh >= 64 {
            return (0, self);
        }
        let int = (self.m >> sh) as i32;
        let frac = self.m & ((1u64 << sh) - 1);
        (int, Ld::rounded(u128::from(frac), self.e, false))
    }
}

impl PartialOrd for Ld {
    fn partial_cmp(&self, o: &Ld) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Ld {
    fn cmp(&self, o: &Ld) -> Ordering {
        match (self.m == 0, o.m == 0) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => self.e.cmp(&o.e).then(self.m.cmp(&o.m)),
        }
    }
}

/// SQLite's `0.5 * 10^-n` for n from 0 to 9 (`arRound`).
const AR_ROUND: [f64; 10] = [
    5.0e-01, 5.0e-02, 5.0e-03, 5.0e-04, 5.0e-05, 5.0e-06, 5.0e-07, 5.0e-08, 5.0e-09, 5.0e-10,
];

/// SQLite's printf of a real (`%f`, `%e`, `%g`; `%E`, `%G` in capitals),
/// without its sign, step by step as its C code does in x87 extended
/// precision (`Ld`): half a unit of the last place added (for `%f` plus
/// 3e-16 of the value when few digits are asked for, so 2.675 gives 2.68),
/// the value scaled to [1, 10), then digits taken one by one, at most 16
/// significant (26 with `!`, `altform2`), zeros after them.
pub(crate) fn et_float(x: f64, conv: char, precision: i64, alt: bool, altform2: bool) -> String {
    let mut precision = precision.max(0);
    let general = matches!(conv, 'g' | 'G');
    if general && precision > 0 {
        precision -= 1;
    }
    let mut idx = precision & 0xfff;
    let mut rounder = AR_ROUND[(idx % 10) as usize];
    while idx >= 10 {
        rounder *= 1.0e-10;
        idx -= 10;
    }
    let l = Ld::from_f64;
    let mut v = l(x);
    if conv == 'f' {
        let ex = ((v.to_f64().to_bits() >> 52) & 0x7ff) as i64 - 1023;
        if precision + ex / 3 < 15 {
            rounder = l(rounder).add(v.mul(l(3e-16))).to_f64();
        }
        v = v.add(l(rounder));
    }
    let mut exp: i64 = 0;
    if v > Ld::ZERO {
        let mut scale = l(1.0);
        while v >= l(1e100).mul(scale) && exp <= 350 {
            scale = scale.mul(l(1e100));
            exp += 100;
        }
        while v >= l(1e10).mul(scale) && exp <= 350 {
            scale = scale.mul(l(1e10));
            exp += 10;
        }
        while v >= l(10.0).mul(scale) && exp <= 350 {
            scale = scale.mul(l(10.0));
            exp += 1;
        }
        v = v.div(scale);
        while v < l(1e-8) {
            v = v.mul(l(1e8));
            exp -= 8;
        }
        while v < l(1.0) {
            v = v.mul(l(10.0));
            exp -= 1;
        }
        if exp > 350 {
            return "Inf".to_string();
        }
    }
    if conv != 'f' {
        v = v.add(l(rounder));
        if v >= l(10.0) {
            v = v.mul(l(0.1));
            exp += 1;
        }
    }
    let mut as_exp = conv != 'f';
    let rtz = if general {
        if exp < -4 || exp > precision {
            as_exp = true;
        } else {
            precision -= exp;
            as_exp = false;
        }
        !alt
    } else {
        altform2
    };
    let mut e2 = if as_exp { 0 } else { exp };
    let mut nsd = if altform2 { 26 } else { 16 };
    let mut digit = || -> char {
        if nsd <= 0 {
            return '0';
        }
        nsd -= 1;
        let (d, frac) = v.split();
        v = frac.mul(l(10.0));
        char::from(b'0' + d.clamp(0, 9) as u8)
    };
    let mut out = String::new();
    if e2 < 0 {
        out.push('0');
    } else {
        for _ in 0..=e2 {
            out.push(digit());
        }
    }
    let dp = precision > 0 || alt || altform2;
    if dp {
        out.push('.');
    }
    e2 += 1;
    while e2 < 0 {
        out.push('0');
        precision -= 1;
        e2 += 1;
    }
    while precision > 0 {
        out.push(digit());
        precision -= 1;
    }
    if rtz && dp {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            if altform2 {
                out.push('0');
            } else {
                out.pop();
            }
        }
    }
    if as_exp {
        out.push(if conv.is_ascii_uppercase() { 'E' } else { 'e' });
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_arithmetic_rounds_to_nearest_even() {
        let l = Ld::from_f64;
        assert_eq!(l(1.5).to_f64(), 1.5);
        assert_eq!(l(2.0).mul(l(3.0)).to_f64(), 6.0);
        assert_eq!(l(1.0).add(l(2.5)).to_f64(), 3.5);
        assert_eq!(l(7.0).div(l(2.0)).to_f64(), 3.5);
        assert!(l(10.0) > l(9.999));
        assert_eq!(l(7.25).split(), (7, l(0.25)));
        // 1/3 carries 64 bits, more than a double: times 3 rounds back to 1.
        assert_eq!(l(1.0).div(l(3.0)).mul(l(3.0)).to_f64(), 1.0);
        // 0.1 + 0.2 in extended precision, rounded to a double, is 0.3's
        // neighbour as in doubles.
        assert_eq!(l(0.1).add(l(0.2)).to_f64(), 0.1 + 0.2);
        assert_eq!(l(1e-300).to_f64(), 1e-300);
        assert_eq!(l(5e-324).to_f64(), 5e-324);
    }
}
