//! SQLite's date and time functions: `date`, `time`, `datetime`,
//! `julianday`, `unixepoch`, `strftime`, with its time values and modifiers.
//!
//! A port of SQLite's `date.c` (docs/QUERY.md, "Dates and times"): a moment
//! is a julian day number in milliseconds (`jd`), with the calendar fields
//! (`ymd`, `hms`) derived from it or it from them on demand, exactly as
//! SQLite does, so every rounding and every normalisation (`2024-02-30`
//! printed as written by `date()` but counted as March 1 by `julianday()`)
//! is SQLite's. Any value or modifier that SQLite cannot read makes the
//! result NULL, never an error. The local time zone is UTC: `localtime` and
//! `utc` change nothing (a query's result must not depend on the machine).

use super::super::ast::{Expr, Func};
use super::super::error::QueryError;
use super::super::value::{Value, format_real};
use super::eval::{Ctx, eval};

/// The date and time functions (`Func::Time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFunc {
    Date,
    Time,
    DateTime,
    JulianDay,
    UnixEpoch,
    Strftime,
}

impl TimeFunc {
    /// The function of an (upper-case) SQL name, with how many arguments
    /// it takes (the binder's one dispatch to this family).
    pub fn named(name: &str) -> Option<(Func, std::ops::RangeInclusive<usize>)> {
        let f = match name {
            "DATE" => TimeFunc::Date,
            "TIME" => TimeFunc::Time,
            "DATETIME" => TimeFunc::DateTime,
            "JULIANDAY" => TimeFunc::JulianDay,
            "UNIXEPOCH" => TimeFunc::UnixEpoch,
            "STRFTIME" => TimeFunc::Strftime,
            _ => return None,
        };
        Some((Func::Time(f), 0..=usize::MAX))
    }

    /// Whether a call with these arguments may read the clock ('now', or
    /// no time value at all): its result must not be cached. A literal time
    /// value other than 'now' is the only sure sign it does not.
    pub fn reads_clock(self, args: &[Expr]) -> bool {
        let value = if self == TimeFunc::Strftime {
            args.get(1)
        } else {
            args.first()
        };
        match value {
            Some(Expr::Lit(Value::Text(t))) => t.eq_ignore_ascii_case("now"),
            Some(Expr::Lit(_)) => false,
            _ => true,
        }
    }

    /// SQLite's date functions ReedQL leaves out, with the way to write
    /// what they do instead (the binder's refusal).
    pub fn refused(name: &str) -> Option<&'static str> {
        (name == "TIMEDIFF").then_some(
            "timediff() (SQLite 3.43); subtract julianday() or unixepoch() values instead",
        )
    }
}

/// Evaluates a call over a row, a group or nothing.
pub(super) fn call(f: TimeFunc, args: &[Expr], ctx: &Ctx) -> Result<Value, QueryError> {
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        values.push(eval(a, ctx)?);
    }
    Ok(apply(f, &values, now_ms()))
}

/// The current time as julian day milliseconds.
fn now_ms() -> i64 {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    unix_ms + UNIX_EPOCH_JD_MS
}

/// 1970-01-01 00:00:00 as julian day milliseconds.
const UNIX_EPOCH_JD_MS: i64 = 210_866_760_000_000;
/// 9999-12-31 23:59:59.999, the last moment SQLite represents.
const MAX_JD_MS: i64 = 464_269_060_799_999;
const DAY_MS: i64 = 86_400_000;

/// The function over evaluated arguments, `now` the clock (julian day ms).
pub(super) fn apply(f: TimeFunc, args: &[Value], now: i64) -> Value {
    let (format, time_args) = match f {
        TimeFunc::Strftime => match args.split_first() {
            None | Some((Value::Null, _)) => return Value::Null,
            Some((fmt, rest)) => (Some(fmt.to_string()), rest),
        },
        _ => (None, args),
    };
    let Some(mut x) = DateTime::of(time_args, now) else {
        return Value::Null;
    };
    match f {
        TimeFunc::Date => {
            x.compute_ymd_hms();
            Value::text(&format!("{}-{:02}-{:02}", year(x.y), x.mo, x.d))
        }
        TimeFunc::Time => {
            x.compute_ymd_hms();
            Value::text(&x.hms_text())
        }
        TimeFunc::DateTime => {
            x.compute_ymd_hms();
            Value::text(&format!(
                "{}-{:02}-{:02} {}",
                year(x.y),
                x.mo,
                x.d,
                x.hms_text()
            ))
        }
        TimeFunc::JulianDay => Value::Real(x.jd as f64 / DAY_MS as f64),
        TimeFunc::UnixEpoch => {
            if x.subsec {
                Value::Real((x.jd - UNIX_EPOCH_JD_MS) as f64 / 1000.0)
            } else {
                Value::Int(x.jd / 1000 - UNIX_EPOCH_JD_MS / 1000)
            }
        }
        TimeFunc::Strftime => match strftime(format.as_deref().unwrap_or(""), &mut x) {
            Some(s) => Value::text(&s),
            None => Value::Null,
        },
    }
}

/// A year as `date()` and `datetime()` print it: four digits, a minus
/// before them (`-0001`; strftime's `%Y` prints `-001`, C's `%04d`).
fn year(y: i32) -> String {
    if y < 0 {
        format!("-{:04}", y.unsigned_abs())
    } else {
        format!("{y:04}")
    }
}

/// SQLite's `DateTime`: a moment as julian day milliseconds and/or calendar
/// fields, each valid or not, and a raw number not yet given a meaning.
#[derive(Debug, Clone, Default)]
struct DateTime {
    jd: i64,
    y: i32,
    mo: i32,
    d: i32,
    h: i32,
    mi: i32,
    s: f64,
    /// Time zone offset in minutes (`+05:30`).
    tz: i32,
    valid_jd: bool,
    /// `s` holds a number given as the time value, not yet interpreted.
    raw_s: bool,
    valid_ymd: bool,
    valid_hms: bool,
    valid_tz: bool,
    tz_set: bool,
    error: bool,
    subsec: bool,
}

impl DateTime {
    /// The time value and modifiers of a call (SQLite's `isDate`); None
    /// when the result is NULL.
    fn of(args: &[Value], now: i64) -> Option<DateTime> {
        let mut p = DateTime::default();
        match args.first() {
            None => p.set_jd(now),
            Some(Value::Null) => return None,
            Some(Value::Int(i)) => p.set_raw_number(*i as f64),
            Some(Value::Real(r)) => p.set_raw_number(*r),
            Some(Value::Text(t)) => {
                if !p.parse_date_or_time(t.as_bytes(), now) {
                    return None;
                }
            }
        }
        for (i, m) in args.iter().enumerate().skip(1) {
            if m.is_null() || !p.modify(m.to_string().as_bytes(), i) {
                return None;
            }
        }
        p.compute_jd();
        if p.error || !(0..=MAX_JD_MS).contains(&p.jd) {
            return None;
        }
        Some(p)
    }

    fn set_jd(&mut self, jd: i64) {
        self.jd = jd;
        self.valid_jd = true;
    }

    fn set_raw_number(&mut self, r: f64) {
        self.s = r;
        self.raw_s = true;
        if (0.0..5_373_484.5).contains(&r) {
            self.set_jd((r * DAY_MS as f64 + 0.5) as i64);
        }
    }

    fn clear_ymd_hms_tz(&mut self) {
        self.valid_ymd = false;
        self.valid_hms = false;
        self.valid_tz = false;
    }

    fn parse_date_or_time(&mut self, z: &[u8], now: i64) -> bool {
        if self.parse_ymd(z) || self.parse_hms(z) {
            return true;
        }
        if z.eq_ignore_ascii_case(b"now") {
            self.set_jd(now);
            return true;
        }
        match ato_f(z) {
            Some(r) => {
                self.set_raw_number(r);
                true
            }
            None => false,
        }
    }

    /// `[-]YYYY-MM-DD`, then optionally spaces or `T` and a time.
    fn parse_ymd(&mut self, z: &[u8]) -> bool {
        let (neg, z) = match z.first() {
            Some(b'-') => (true, &z[1..]),
            _ => (false, z),
        };
        let Some([y, m, d]) = digits(z, &[(4, 0, 9999, b'-'), (2, 1, 12, b'-'), (2, 1, 31, 0)])
        else {
            return false;
        };
        let mut rest = z.get(10..).unwrap_or(&[]);
        while let Some(&c) = rest.first() {
            if is_space(c) || c == b'T' {
                rest = &rest[1..];
            } else {
                break;
            }
        }
        if !rest.is_empty() && !self.parse_hms(rest) {
            return false;
        }
        if rest.is_empty() {
            self.valid_hms = false;
        }
        self.valid_jd = false;
        self.valid_ymd = true;
        self.y = if neg { -y } else { y };
        self.mo = m;
        self.d = d;
        if self.valid_tz {
            self.compute_jd();
        }
        true
    }

    /// `HH:MM[:SS[.FFF...]]` and an optional time zone.
    fn parse_hms(&mut self, z: &[u8]) -> bool {
        let Some([h, m]) = digits(z, &[(2, 0, 24, b':'), (2, 0, 59, 0)]) else {
            return false;
        };
        let mut i = 5;
        let mut s = 0.0;
        if at(z, i) == b':' {
            i += 1;
            let Some([sec]) = digits(&z[i..], &[(2, 0, 59, 0)]) else {
                return false;
            };
            i += 2;
            let mut ms = 0.0;
            if at(z, i) == b'.' && at(z, i + 1).is_ascii_digit() {
                let mut scale = 1.0;
                i += 1;
                while at(z, i).is_ascii_digit() {
                    ms = ms * 10.0 + f64::from(at(z, i) - b'0');
                    scale *= 10.0;
                    i += 1;
                }
                ms /= scale;
            }
            s = f64::from(sec) + ms;
        }
        self.valid_jd = false;
        self.raw_s = false;
        self.valid_hms = true;
        self.h = h;
        self.mi = m;
        self.s = s;
        if !self.parse_timezone(z.get(i..).unwrap_or(&[])) {
            return false;
        }
        self.valid_tz = self.tz != 0;
        true
    }

    /// `[+-]HH:MM` or `Z`, with spaces around; nothing at all is fine.
    fn parse_timezone(&mut self, z: &[u8]) -> bool {
        let mut i = 0;
        while is_space(at(z, i)) {
            i += 1;
        }
        self.tz = 0;
        let sign = match at(z, i) {
            b'-' => -1,
            b'+' => 1,
            b'Z' | b'z' => 0,
            c => return c == 0,
        };
        i += 1;
        if sign != 0 {
            let Some([h, m]) = digits(&z[i..], &[(2, 0, 14, b':'), (2, 0, 59, 0)]) else {
                return false;
            };
            i += 5;
            self.tz = sign * (m + h * 60);
        }
        while is_space(at(z, i)) {
            i += 1;
        }
        self.tz_set = true;
        at(z, i) == 0
    }

    fn compute_jd(&mut self) {
        if self.valid_jd {
            return;
        }
        let (mut y, mut m, d) = if self.valid_ymd {
            (self.y, self.mo, self.d)
        } else {
            (2000, 1, 1)
        };
        if !(-4713..=9999).contains(&y) || self.raw_s {
            self.error = true;
            return;
        }
        if m <= 2 {
            y -= 1;
            m += 12;
        }
        let a = y / 100;
        let b = 2 - a + a / 4;
        let x1 = 36525 * (y + 4716) / 100;
        let x2 = 306001 * (m + 1) / 10000;
        self.jd = ((f64::from(x1 + x2 + d + b) - 1524.5) * DAY_MS as f64) as i64;
        self.valid_jd = true;
        if self.valid_hms {
            self.jd += i64::from(self.h) * 3_600_000
                + i64::from(self.mi) * 60_000
                + (self.s * 1000.0 + 0.5) as i64;
            if self.valid_tz {
                self.jd -= i64::from(self.tz) * 60_000;
                self.clear_ymd_hms_tz();
            }
        }
    }

    fn compute_ymd(&mut self) {
        if self.valid_ymd {
            return;
        }
        if !self.valid_jd {
            (self.y, self.mo, self.d) = (2000, 1, 1);
        } else if !(0..=MAX_JD_MS).contains(&self.jd) {
            self.error = true;
            return;
        } else {
            let z = ((self.jd + 43_200_000) / DAY_MS) as i32;
            let a = ((f64::from(z) - 1_867_216.25) / 36524.25) as i32;
            let a = z + 1 + a - a / 4;
            let b = a + 1524;
            let c = ((f64::from(b) - 122.1) / 365.25) as i32;
            let d = (36525 * (c & 32767)) / 100;
            let e = (f64::from(b - d) / 30.6001) as i32;
            let x1 = (30.6001 * f64::from(e)) as i32;
            self.d = b - d - x1;
            self.mo = if e < 14 { e - 1 } else { e - 13 };
            self.y = if self.mo > 2 { c - 4716 } else { c - 4715 };
        }
        self.valid_ymd = true;
    }

    fn compute_hms(&mut self) {
        if self.valid_hms {
            return;
        }
        self.compute_jd();
        let mut s = ((self.jd + 43_200_000) % DAY_MS) as i32;
        self.s = f64::from(s) / 1000.0;
        s = self.s as i32;
        self.s -= f64::from(s);
        self.h = s / 3600;
        s -= self.h * 3600;
        self.mi = s / 60;
        self.s += f64::from(s - self.mi * 60);
        self.raw_s = false;
        self.valid_hms = true;
    }

    fn compute_ymd_hms(&mut self) {
        self.compute_ymd();
        self.compute_hms();
    }

    /// `HH:MM:SS`, or `HH:MM:SS.SSS` after the `subsec` modifier.
    fn hms_text(&self) -> String {
        if self.subsec {
            format!("{:02}:{:02}:{:06.3}", self.h, self.mi, self.s)
        } else {
            format!("{:02}:{:02}:{:02}", self.h, self.mi, self.s as i32)
        }
    }

    /// Days since January 1 of the moment's year.
    fn days_after_jan01(&self) -> i64 {
        let mut y = self.clone();
        y.valid_jd = false;
        y.mo = 1;
        y.d = 1;
        y.compute_jd();
        (self.jd - y.jd + 43_200_000) / DAY_MS
    }

    fn days_after_monday(&self) -> i64 {
        ((self.jd + 43_200_000) / DAY_MS) % 7
    }

    fn days_after_sunday(&self) -> i64 {
        ((self.jd + 129_600_000) / DAY_MS) % 7
    }

    /// The Thursday of the moment's ISO week (its year is the ISO year).
    fn iso_thursday(&self) -> DateTime {
        let mut y = self.clone();
        y.jd += (3 - self.days_after_monday()) * DAY_MS;
        y.valid_ymd = false;
        y.compute_ymd();
        y
    }

    /// Applies modifier `idx` (1-based argument position); false: NULL.
    fn modify(&mut self, z: &[u8], idx: usize) -> bool {
        let lower = z.to_ascii_lowercase();
        let z_str = lower.as_slice();
        match z_str.first() {
            Some(b'a') if z_str == b"auto" => {
                if idx > 1 {
                    return false;
                }
                if !self.raw_s || self.valid_jd {
                    self.raw_s = false;
                    true
                } else if (-210_866_760_000.0..=253_402_300_799.0).contains(&self.s) {
                    let r = self.s * 1000.0 + UNIX_EPOCH_JD_MS as f64;
                    self.clear_ymd_hms_tz();
                    self.set_jd((r + 0.5) as i64);
                    self.raw_s = false;
                    true
                } else {
                    false
                }
            }
            Some(b'j') if z_str == b"julianday" => {
                if idx > 1 || !(self.valid_jd && self.raw_s) {
                    return false;
                }
                self.raw_s = false;
                true
            }
            Some(b'l') if z_str == b"localtime" => {
                // The local zone is UTC: the moment stays, its fields are recomputed.
                self.compute_jd();
                self.clear_ymd_hms_tz();
                true
            }
            Some(b'u') if z_str == b"unixepoch" && self.raw_s => {
                if idx > 1 {
                    return false;
                }
                let r = self.s * 1000.0 + UNIX_EPOCH_JD_MS as f64;
                if !(0.0..464_269_060_800_000.0).contains(&r) {
                    return false;
                }
                self.clear_ymd_hms_tz();
                self.set_jd((r + 0.5) as i64);
                self.raw_s = false;
                true
            }
            Some(b'u') if z_str == b"utc" => {
                if !self.tz_set {
                    // Local time is UTC: the same moment, now marked as UTC.
                    self.compute_jd();
                    let jd = self.jd;
                    *self = DateTime {
                        subsec: self.subsec,
                        ..DateTime::default()
                    };
                    self.set_jd(jd);
                    self.tz_set = true;
                }
                true
            }
            Some(b'w') if z_str.starts_with(b"weekday ") => {
                let Some(r) = ato_f(&z[8..]) else {
                    return false;
                };
                let n = r as i64;
                if n as f64 != r || !(0.0..7.0).contains(&r) {
                    return false;
                }
                self.compute_ymd_hms();
                self.valid_tz = false;
                self.valid_jd = false;
                self.compute_jd();
                let mut day = ((self.jd + 129_600_000) / DAY_MS) % 7;
                if day > n {
                    day -= 7;
                }
                self.jd += (n - day) * DAY_MS;
                self.clear_ymd_hms_tz();
                true
            }
            Some(b's') if z_str == b"subsec" || z_str == b"subsecond" => {
                self.subsec = true;
                true
            }
            Some(b's') if z_str.starts_with(b"start of ") => {
                if !self.valid_jd && !self.valid_ymd && !self.valid_hms {
                    return false;
                }
                self.compute_ymd();
                self.valid_hms = true;
                (self.h, self.mi, self.s) = (0, 0, 0.0);
                self.raw_s = false;
                self.valid_tz = false;
                self.valid_jd = false;
                match &z_str[9..] {
                    b"month" => self.d = 1,
                    b"year" => (self.mo, self.d) = (1, 1),
                    b"day" => {}
                    _ => return false,
                }
                true
            }
            Some(b'+' | b'-' | b'0'..=b'9') => self.shift(z),
            _ => false,
        }
    }

    /// `±HH:MM[:SS[.FFF]]` or `±N unit[s]` (seconds ... years).
    fn shift(&mut self, z: &[u8]) -> bool {
        let mut n = 1;
        while n < z.len() && z[n] != b':' && !is_space(z[n]) {
            n += 1;
        }
        let Some(mut r) = ato_f(&z[..n]) else {
            return false;
        };
        if at(z, n) == b':' {
            let z2 = if z[0].is_ascii_digit() { z } else { &z[1..] };
            let mut tx = DateTime::default();
            if !tx.parse_hms(z2) {
                return false;
            }
            tx.compute_jd();
            tx.jd -= 43_200_000;
            let day = tx.jd / DAY_MS;
            tx.jd -= day * DAY_MS;
            if z[0] == b'-' {
                tx.jd = -tx.jd;
            }
            self.compute_jd();
            self.clear_ymd_hms_tz();
            self.jd += tx.jd;
            return true;
        }
        let mut unit = &z[n..];
        while let Some(&c) = unit.first() {
            if !is_space(c) {
                break;
            }
            unit = &unit[1..];
        }
        if !(3..=10).contains(&unit.len()) {
            return false;
        }
        if unit.last().is_some_and(|c| c.eq_ignore_ascii_case(&b's')) {
            unit = &unit[..unit.len() - 1];
        }
        self.compute_jd();
        let rounder = if r < 0.0 { -0.5 } else { 0.5 };
        // SQLite's limits are C floats: compared after widening, as there.
        const UNITS: [(&[u8], f32, f64); 6] = [
            (b"second", 4.6427e14, 1.0),
            (b"minute", 7.7379e12, 60.0),
            (b"hour", 1.2897e11, 3600.0),
            (b"day", 5_373_485.0, 86400.0),
            (b"month", 176_546.0, 2_592_000.0),
            (b"year", 14713.0, 31_536_000.0),
        ];
        let mut ok = false;
        for (name, limit, xform) in UNITS {
            let limit = f64::from(limit);
            if !unit.eq_ignore_ascii_case(name) || r <= -limit || r >= limit {
                continue;
            }
            if name == b"month" {
                self.compute_ymd_hms();
                self.mo += r as i32;
                let x = if self.mo > 0 {
                    (self.mo - 1) / 12
                } else {
                    (self.mo - 12) / 12
                };
                self.y += x;
                self.mo -= x * 12;
                self.valid_jd = false;
                r -= f64::from(r as i32);
            } else if name == b"year" {
                self.compute_ymd_hms();
                self.y += r as i32;
                self.valid_jd = false;
                r -= f64::from(r as i32);
            }
            self.compute_jd();
            self.jd += (r * 1000.0 * xform + rounder) as i64;
            ok = true;
            break;
        }
        self.clear_ymd_hms_tz();
        ok
    }
}

/// `strftime`'s output; None (NULL) for an unknown `%` code.
fn strftime(fmt: &str, x: &mut DateTime) -> Option<String> {
    x.compute_jd();
    x.compute_ymd_hms();
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let twelve = if x.h > 12 {
            x.h - 12
        } else if x.h == 0 {
            12
        } else {
            x.h
        };
        let piece = match chars.next()? {
            'd' => format!("{:02}", x.d),
            'e' => format!("{:2}", x.d),
            'f' => format!("{:06.3}", x.s.min(59.999)),
            'F' => format!("{:04}-{:02}-{:02}", x.y, x.mo, x.d),
            'G' => format!("{:04}", x.iso_thursday().y),
            'g' => format!("{:02}", x.iso_thursday().y % 100),
            'H' => format!("{:02}", x.h),
            'k' => format!("{:2}", x.h),
            'I' => format!("{twelve:02}"),
            'l' => format!("{twelve:2}"),
            'j' => format!("{:03}", x.days_after_jan01() + 1),
            'J' => format_g(x.jd as f64 / DAY_MS as f64, 16),
            'm' => format!("{:02}", x.mo),
            'M' => format!("{:02}", x.mi),
            'p' => if x.h >= 12 { "PM" } else { "AM" }.to_string(),
            'P' => if x.h >= 12 { "pm" } else { "am" }.to_string(),
            'R' => format!("{:02}:{:02}", x.h, x.mi),
            's' if x.subsec => format!("{:.3}", (x.jd - UNIX_EPOCH_JD_MS) as f64 / 1000.0),
            's' => (x.jd / 1000 - UNIX_EPOCH_JD_MS / 1000).to_string(),
            'S' => format!("{:02}", x.s as i32),
            'T' => format!("{:02}:{:02}:{:02}", x.h, x.mi, x.s as i32),
            'u' => match x.days_after_sunday() {
                0 => "7".to_string(),
                d => d.to_string(),
            },
            'w' => x.days_after_sunday().to_string(),
            'U' => format!(
                "{:02}",
                (x.days_after_jan01() - x.days_after_sunday() + 7) / 7
            ),
            'V' => format!("{:02}", x.iso_thursday().days_after_jan01() / 7 + 1),
            'W' => format!(
                "{:02}",
                (x.days_after_jan01() - x.days_after_monday() + 7) / 7
            ),
            'Y' => format!("{:04}", x.y),
            '%' => "%".to_string(),
            _ => return None,
        };
        out.push_str(&piece);
    }
    Some(out)
}

/// C's `%.<precision>g`: `precision` significant digits, trailing zeros
/// dropped, an exponent only for very large or small magnitudes.
fn format_g(x: f64, precision: usize) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() {
            "0".to_string()
        } else {
            format_real(x)
        };
    }
    let sci = format!("{:.*e}", precision.saturating_sub(1), x);
    let exp: i32 = sci
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exp < -4 || exp >= precision as i32 {
        let (mant, _) = sci.split_once('e').unwrap_or((&sci, ""));
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant.to_string()), exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim(format!("{x:.decimals$}"))
    }
}

/// SQLite's `isspace`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The byte at `i`, or 0 past the end (C's terminating NUL).
fn at(z: &[u8], i: usize) -> u8 {
    z.get(i).copied().unwrap_or(0)
}

/// SQLite's `getDigits`: fields of fixed digit counts, each within its
/// range and followed by its separator (0: anything). All or nothing.
fn digits<const N: usize>(z: &[u8], spec: &[(usize, i32, i32, u8); N]) -> Option<[i32; N]> {
    let mut out = [0; N];
    let mut i = 0;
    for (slot, &(count, min, max, next)) in out.iter_mut().zip(spec) {
        let mut v = 0;
        for _ in 0..count {
            let c = at(z, i);
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i32::from(c - b'0');
            i += 1;
        }
        if v < min || v > max || (next != 0 && at(z, i) != next) {
            return None;
        }
        *slot = v;
        i += 1;
    }
    Some(out)
}

/// SQLite's `sqlite3AtoF` when it accepts the whole text: spaces around, a
/// sign, digits with an optional `.` (one digit at least), an optional
/// exponent with digits.
fn ato_f(z: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(z).ok()?;
    let t = s.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let mut digits_seen = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits_seen += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits_seen += 1;
        }
    }
    if digits_seen == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    // Rust reads "1." and ".5" as C does; a leading '+' too.
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-05 13:04:05.123 UTC, a Friday, as the clock.
    const NOW: i64 = 212_571_219_845_123;

    fn run(f: TimeFunc, args: &[&str]) -> String {
        let v: Vec<Value> = args.iter().map(|a| Value::text(a)).collect();
        match apply(f, &v, NOW) {
            Value::Null => "NULL".to_string(),
            x => x.to_string(),
        }
    }

    #[test]
    fn time_values_parse_as_sqlite_reads_them() {
        use TimeFunc::*;
        for (f, args, want) in [
            (DateTime, &["2024-01-05"][..], "2024-01-05 00:00:00"),
            (DateTime, &["2024-01-05T10:20"], "2024-01-05 10:20:00"),
            (DateTime, &["2024-01-05 10:20:30.5"], "2024-01-05 10:20:30"),
            (DateTime, &["2024-01-01 10:00+05:30"], "2024-01-01 04:30:00"),
            (DateTime, &["2024-01-01 12:00 Z"], "2024-01-01 12:00:00"),
            (Time, &["24:00"], "24:00:00"),
            (Time, &["12:00:59.9996"], "12:00:59"),
            (Date, &["2024-02-30"], "2024-02-30"),
            (JulianDay, &["2024-02-30"], "2460370.5"),
            (Date, &[" 2024-01-01"], "NULL"),
            (Date, &["2024-01-01 "], "2024-01-01"),
            (Date, &["2024-01-01x"], "NULL"),
            (Date, &["2024-1-01"], "NULL"),
            (Date, &["-0001-01-01"], "-0001-01-01"),
            (Date, &["2451544.5"], "2000-01-01"),
            (DateTime, &["now"], "2024-01-05 13:04:05"),
            (DateTime, &[], "2024-01-05 13:04:05"),
            (Date, &["1700000000", "unixepoch"], "2023-11-14"),
            (Date, &["1e9", "unixepoch"], "2001-09-09"),
            (Date, &["1700000000"], "NULL"),
            (Date, &["abc"], "NULL"),
            (Date, &[""], "NULL"),
            (JulianDay, &["2000-01-01"], "2451544.5"),
            (UnixEpoch, &["2024-01-05 13:04:05"], "1704459845"),
            (UnixEpoch, &["1970-01-01"], "0"),
            (UnixEpoch, &["now", "subsec"], "1704459845.123"),
            (DateTime, &["now", "subsec"], "2024-01-05 13:04:05.123"),
        ] {
            assert_eq!(run(f, args), want, "{f:?}{args:?}");
        }
        assert_eq!(
            apply(TimeFunc::DateTime, &[Value::Real(0.5)], NOW).to_string(),
            "-4713-11-25 00:00:00"
        );
        assert!(apply(TimeFunc::Date, &[Value::Int(-1)], NOW).is_null());
        assert!(apply(TimeFunc::Date, &[Value::Null], NOW).is_null());
    }

    #[test]
    fn modifiers_follow_sqlite() {
        use TimeFunc::*;
        for (f, args, want) in [
            (
                DateTime,
                &["2024-01-01", "+1.5 months"][..],
                "2024-02-16 00:00:00",
            ),
            (DateTime, &["2024-03-31", "-1 month"], "2024-03-02 00:00:00"),
            (Date, &["2024-01-31", "+1 month"], "2024-03-02"),
            (Date, &["2024-02-29", "+1 year"], "2025-03-01"),
            (Date, &["2024-01-05", "weekday 0"], "2024-01-07"),
            (Date, &["2024-01-05", "weekday 5"], "2024-01-05"),
            (Date, &["2024-01-05", "weekday 7"], "NULL"),
            (Date, &["2024-01-05", "weekday 1.0"], "2024-01-08"),
            (Date, &["2024-01-05", "  +1 day"], "NULL"),
            (Date, &["2024-01-05", "+1 day "], "NULL"),
            (Date, &["2024-01-05", "+1 DAYS"], "2024-01-06"),
            (
                DateTime,
                &["2024-01-05", "-01:30:15.5"],
                "2024-01-04 22:29:44",
            ),
            (
                DateTime,
                &["2024-01-05", "start of month", "+1 month", "-1 day"],
                "2024-01-31 00:00:00",
            ),
            (
                DateTime,
                &["2024-05-05 10:00", "start of year"],
                "2024-01-01 00:00:00",
            ),
            (
                DateTime,
                &["2024-05-05 10:00", "start of day"],
                "2024-05-05 00:00:00",
            ),
            (DateTime, &["2024-05-05", "start of week"], "NULL"),
            (DateTime, &["1700000000", "auto"], "2023-11-14 22:13:20"),
            (DateTime, &["2460000", "auto"], "2023-02-24 12:00:00"),
            (Date, &["2460000", "julianday"], "2023-02-24"),
            (Date, &["2024-01-01", "unixepoch"], "NULL"),
            (Date, &["0", "+1 day", "unixepoch"], "NULL"),
            (
                DateTime,
                &["2024-01-05 10:00", "localtime"],
                "2024-01-05 10:00:00",
            ),
            (
                DateTime,
                &["2024-01-05 10:00", "utc"],
                "2024-01-05 10:00:00",
            ),
            (DateTime, &["9999-12-31", "+1 day"], "NULL"),
            (Date, &["2024-01-05", "+10"], "NULL"),
        ] {
            assert_eq!(run(f, args), want, "{f:?}{args:?}");
        }
    }

    #[test]
    fn strftime_codes() {
        let at = "2024-01-05 13:04:05.123";
        for (fmt, want) in [
            ("%d %H %M %S %m %Y", "05 13 04 05 01 2024"),
            ("%f|%j|%w|%W|%s|%%", "05.123|005|5|01|1704459845|%"),
            ("%J", "2460315.044503739"),
            ("%e|%F|%I|%k|%l|%p|%P", " 5|2024-01-05|01|13| 1|PM|pm"),
            ("%R|%T|%u|%U|%V|%G|%g", "13:04|13:04:05|5|00|01|2024|24"),
            ("%", "NULL"),
            ("%Q", "NULL"),
            ("é%Y", "é2024"),
        ] {
            assert_eq!(run(TimeFunc::Strftime, &[fmt, at]), want, "{fmt}");
        }
        // ISO weeks at the turn of a year: 2021-01-03 is in week 53 of 2020.
        let w = |d| run(TimeFunc::Strftime, &["%G-%V %u %U %W", d]);
        assert_eq!(w("2021-01-03"), "2020-53 7 01 00");
        assert_eq!(w("2024-12-30"), "2025-01 1 52 53");
        assert_eq!(run(TimeFunc::Strftime, &["%I %p", "00:30"]), "12 AM");
        assert_eq!(format_g(2451544.5, 16), "2451544.5");
        assert_eq!(format_g(1e-7, 16), "1e-07");
    }
}
