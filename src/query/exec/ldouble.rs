//! The x87 extended precision ("long double" on x86-64) that SQLite's printf
//! computes the digits of a real in: a 64-bit mantissa, each operation
//! rounded to nearest, ties to even. Only what printf needs, on values that
//! are zero or positive and finite.

use std::cmp::Ordering;

/// `m * 2^e`, `m` with its top bit set (or 0 for zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ld {
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
    pub(super) const ZERO: Ld = Ld { m: 0, e: 0 };

    fn rounded(n: u128, e: i32, sticky: bool) -> Ld {
        let (m, e) = round_to(n, e, sticky, 64);
        Ld { m: m as u64, e }
    }

    /// A double, exactly (its absolute value; NaN and infinities are 0).
    pub(super) fn from_f64(x: f64) -> Ld {
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
    pub(super) fn to_f64(self) -> f64 {
        if self.m == 0 {
            return 0.0;
        }
        let (m, e) = round_to(u128::from(self.m), self.e, false, 53);
        // Two steps: 2^e alone may underflow where the product does not.
        let half = e / 2;
        (m as f64) * 2f64.powi(half) * 2f64.powi(e - half)
    }

    pub(super) fn mul(self, o: Ld) -> Ld {
        if self.m == 0 || o.m == 0 {
            return Ld::ZERO;
        }
        Ld::rounded(u128::from(self.m) * u128::from(o.m), self.e + o.e, false)
    }

    pub(super) fn div(self, o: Ld) -> Ld {
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

    pub(super) fn add(self, o: Ld) -> Ld {
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
    pub(super) fn split(self) -> (i32, Ld) {
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
