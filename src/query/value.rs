//! Values and their semantics, which follow SQLite's (docs/QUERY.md): NULL
//! sorts first, numbers compare numerically whatever their storage class and
//! before text, integer arithmetic stays integer (division truncates),
//! division by zero is NULL, text in arithmetic counts as its numeric prefix.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::realfmt::et_float;

/// A fast hasher for group and index maps (FxHash's multiply-rotate): the
/// keys are table values, not attacker-chosen in a way that matters here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let tail = chunks
            .remainder()
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.write_u64(tail);
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// One SQL value.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(Arc<str>),
}

/// A column's declared or inferred type (SQLite's affinity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Integer,
    Real,
    Text,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Integer => "INTEGER",
            Type::Real => "REAL",
            Type::Text => "TEXT",
        }
    }
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A CSV field of a column of type `ty`: empty is NULL; a numeric column
    /// keeps a value that does not parse as text (schema checks are the
    /// storage layer's).
    pub fn from_field(field: &str, ty: Type) -> Value {
        if field.is_empty() {
            return Value::Null;
        }
        match ty {
            Type::Integer => field
                .parse::<i64>()
                .map(Value::Int)
                .unwrap_or_else(|_| Value::text(field)),
            Type::Real => field
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Real)
                .unwrap_or_else(|| Value::text(field)),
            Type::Text => Value::text(field),
        }
    }

    /// A stored field of a column whose type `schema.toml` declares, with
    /// SQLite's column affinity: in an INTEGER column a numeric text becomes
    /// an integer (a real only when it is not a whole number in range), in a
    /// REAL column a real; any other text stays text. Empty is NULL.
    pub fn from_declared(field: &str, ty: Type) -> Value {
        if field.is_empty() {
            return Value::Null;
        }
        match (ty, numeric_text(field)) {
            (Type::Integer, Some(Value::Real(r)))
                if r.fract() == 0.0
                    && (-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&r) =>
            {
                Value::Int(r as i64)
            }
            (Type::Real, Some(Value::Int(i))) => Value::Real(i as f64),
            (Type::Integer | Type::Real, Some(n)) => n,
            _ => Value::text(field),
        }
    }

    /// The value with a column's affinity applied (SQLite: a text literal
    /// compared with a numeric column is read as a number when it is one).
    pub fn with_affinity(self, ty: Type) -> Value {
        match (ty, self) {
            (Type::Integer | Type::Real, Value::Text(t)) => match numeric_text(&t) {
                Some(n) => n,
                None => Value::Text(t),
            },
            (Type::Text, Value::Int(i)) => Value::text(&i.to_string()),
            (Type::Text, Value::Real(r)) => Value::text(&format_real(r)),
            (_, v) => v,
        }
    }

    /// The number a value stands for in arithmetic (text: its numeric
    /// prefix, or 0); None for NULL.
    pub fn as_number(&self) -> Option<Value> {
        match self {
            Value::Null => None,
            Value::Int(_) | Value::Real(_) => Some(self.clone()),
            Value::Text(t) => Some(numeric_prefix(t)),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.as_number()? {
            Value::Int(i) => Some(i as f64),
            Value::Real(r) => Some(r),
            _ => None,
        }
    }

    /// Truthiness in WHERE: NULL and 0 are false.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i != 0),
            Value::Real(r) => Some(*r != 0.0),
            Value::Text(_) => self.as_f64().map(|f| f != 0.0),
        }
    }

    /// Total order of ORDER BY, GROUP BY and DISTINCT (`ValueRef::sort_cmp`).
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        self.as_ref().sort_cmp(other.as_ref())
    }

    /// The value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Int(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t),
        }
    }

    /// `=`, `<` ...: NULL when either side is NULL.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        if self.is_null() || other.is_null() {
            return None;
        }
        Some(self.sort_cmp(other))
    }
}

/// Calls `f` with `values` borrowed, on the stack for rows of up to 16
/// values (no allocation per row).
pub fn with_refs<R>(values: &[Value], f: impl FnOnce(&[ValueRef]) -> R) -> R {
    const ON_STACK: usize = 16;
    if values.len() <= ON_STACK {
        let mut refs = [ValueRef::Null; ON_STACK];
        for (r, v) in refs.iter_mut().zip(values) {
            *r = v.as_ref();
        }
        return f(&refs[..values.len()]);
    }
    let refs: Vec<ValueRef> = values.iter().map(Value::as_ref).collect();
    f(&refs)
}

/// A value borrowed (from a `Value` or from a table's cells): what
/// comparing needs without making a `Value` per row.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl ValueRef<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// Total order of ORDER BY, GROUP BY and DISTINCT: NULL, then numbers
    /// (numerically), then text (bytewise, SQLite's BINARY collation).
    pub fn sort_cmp(self, other: ValueRef) -> Ordering {
        use ValueRef::*;
        let rank = |v: ValueRef| match v {
            Null => 0,
            Int(_) | Real(_) => 1,
            Text(_) => 2,
        };
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(&b),
            (Int(a), Real(b)) => cmp_int_real(a, b),
            (Real(a), Int(b)) => cmp_int_real(b, a).reverse(),
            (Real(a), Real(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            (Text(a), Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

/// Compares an integer with a real exactly (no rounding of large integers).
fn cmp_int_real(i: i64, r: f64) -> Ordering {
    if r.is_nan() {
        return Ordering::Greater;
    }
    if r >= 9.3e18 {
        return Ordering::Less;
    }
    if r <= -9.3e18 {
        return Ordering::Greater;
    }
    let t = r.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(r - t)).unwrap_or(Ordering::Equal),
        o => o,
    }
}

/// The whole text as a number, if it is one (leading/trailing spaces allowed).
fn numeric_text(t: &str) -> Option<Value> {
    let s = t.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Int(i));
    }
    if s.bytes().any(|c| c.is_ascii_digit())
        && !s.contains(['x', 'X', '_'])
        && let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Some(Value::Real(f));
    }
    None
}

/// The longest numeric prefix of a text (SQLite's cast): "12ab" is 12,
/// "1.5e3x" is 1500.0, "abc" is 0.
fn numeric_prefix(t: &str) -> Value {
    let s = t.trim_start();
    let b = s.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    let digits_start = end;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    let int_end = end;
    let mut real = false;
    if end < b.len() && b[end] == b'.' {
        let mut e = end + 1;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        if e > end + 1 || int_end > digits_start {
            real = true;
            end = e;
        }
    }
    if end > digits_start && end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut e = end + 1;
        if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
            e += 1;
        }
        let exp_digits = e;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        if e > exp_digits {
            real = true;
            end = e;
        }
    }
    let text = &s[..end];
    if !real {
        return text
            .parse::<i64>()
            .map(Value::Int)
            .or_else(|_| text.parse::<f64>().map(Value::Real))
            .unwrap_or(Value::Int(0));
    }
    text.parse::<f64>()
        .map(Value::Real)
        .unwrap_or(Value::Int(0))
}

/// A real as SQLite prints it (`%!.15g`): 15 significant digits, and always
/// a decimal point or exponent, so 3.0 stays "3.0".
pub fn format_real(r: f64) -> String {
    if r.is_nan() {
        return String::new();
    }
    if r.is_infinite() {
        return if r > 0.0 { "Inf" } else { "-Inf" }.to_string();
    }
    if r == 0.0 {
        return "0.0".to_string();
    }
    // A real whose shortest exact form has more than 15 significant digits
    // is printed by SQLite's own routine, ported (realfmt.rs): its digits
    // come from x87 arithmetic, not from correct rounding. Any other real
    // prints as its shortest form, which that routine gives too (fast).
    let shortest = format!("{r:e}");
    let significant = shortest
        .split('e')
        .next()
        .map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count());
    if significant > 15 {
        let sign = if r < 0.0 { "-" } else { "" };
        return format!("{sign}{}", et_float(r, 'g', 15, false, true));
    }
    let exp = r.abs().log10().floor() as i32;
    if (-4..15).contains(&exp) {
        let decimals = (14 - exp).max(0) as usize;
        let mut s = format!("{r:.decimals$}");
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.push('0');
            }
        } else {
            s.push_str(".0");
        }
        s
    } else {
        let mut m = format!("{r:.14e}");
        // Rust prints 1.00000000000000e20: trim the mantissa, sign the exponent.
        if let Some((mant, e)) = m.clone().split_once('e') {
            let mut mant = mant.to_string();
            if mant.contains('.') {
                while mant.ends_with('0') {
                    mant.pop();
                }
                if mant.ends_with('.') {
                    mant.push('0');
                }
            }
            let e: i32 = e.parse().unwrap_or(0);
            m = format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
        }
        m
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Int(i) => write!(f, "{i}"),
            Value::Real(r) => f.write_str(&format_real(*r)),
            Value::Text(t) => f.write_str(t),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for Value {}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_ref().hash(h);
    }
}

/// Equality is the sort order's (`sort_cmp`): an integral real equals its
/// integer, so a value borrowed from a table finds the same key as an
/// owned one.
impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &ValueRef) -> bool {
        self.sort_cmp(*other) == Ordering::Equal
    }
}

impl Eq for ValueRef<'_> {}

impl std::hash::Hash for ValueRef<'_> {
    /// Consistent with `eq`: an integral real hashes as the integer
    /// `cmp_int_real` compares it with (the same saturating conversion, over
    /// the same range; past it no integer equals a real).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match *self {
            ValueRef::Null => 0u8.hash(h),
            ValueRef::Int(i) => {
                1u8.hash(h);
                i.hash(h);
            }
            ValueRef::Real(r) => {
                1u8.hash(h);
                if r.fract() == 0.0 && r.abs() < 9.3e18 {
                    (r as i64).hash(h);
                } else {
                    r.to_bits().hash(h);
                }
            }
            ValueRef::Text(t) => {
                2u8.hash(h);
                t.hash(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_hash_alike_up_to_the_largest_integers() {
        use std::hash::{BuildHasher, RandomState};
        let state = RandomState::new();
        let pairs = [
            (Value::Int(9_210_000_000_000_000_000), Value::Real(9.21e18)),
            (
                Value::Int(-9_210_000_000_000_000_000),
                Value::Real(-9.21e18),
            ),
            (
                Value::Int(i64::MAX),
                Value::Real(9_223_372_036_854_775_808.0),
            ),
            (Value::Int(3), Value::Real(3.0)),
        ];
        for (a, b) in pairs {
            assert_eq!(a, b, "{a:?} = {b:?}");
            assert_eq!(state.hash_one(&a), state.hash_one(&b), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn reals_print_as_sqlite_does() {
        for (r, s) in [
            (2.5, "2.5"),
            (3.0, "3.0"),
            (1.0 / 3.0, "0.333333333333333"),
            (-0.5, "-0.5"),
            (1e20, "1.0e+20"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (0.00004523, "4.523e-05"),
            // SQLite's x87 digits, not the correctly rounded 4.95951584921544e+15.
            (4959515849215435.0, "4.95951584921543e+15"),
            (0.1 + 0.2, "0.3"),
        ] {
            assert_eq!(format_real(r), s, "{r}");
        }
    }

    #[test]
    fn ordering_and_coercion() {
        let (i, r, t, n) = (
            Value::Int(2),
            Value::Real(2.5),
            Value::text("a"),
            Value::Null,
        );
        assert_eq!(n.sort_cmp(&i), Ordering::Less);
        assert_eq!(i.sort_cmp(&r), Ordering::Less);
        assert_eq!(r.sort_cmp(&t), Ordering::Less);
        assert_eq!(Value::Int(3), Value::Real(3.0));
        assert_eq!(i.sql_cmp(&n), None);
        assert_eq!(
            numeric_prefix("12ab").sort_cmp(&Value::Int(12)),
            Ordering::Equal
        );
        assert_eq!(
            numeric_prefix("1.5e3x").sort_cmp(&Value::Real(1500.0)),
            Ordering::Equal
        );
        assert_eq!(
            numeric_prefix("abc").sort_cmp(&Value::Int(0)),
            Ordering::Equal
        );
        assert_eq!(
            Value::text("30")
                .with_affinity(Type::Integer)
                .sort_cmp(&Value::Int(30)),
            Ordering::Equal
        );
    }
}
