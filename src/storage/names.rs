//! Names: validation of database and table names, and the generated names of
//! versions. Generated names contain no `:` (it breaks SMB, macOS and Windows
//! clients) and sort chronologically as plain strings.

use super::error::{Result, StorageError};

/// Longest database or table name, in bytes (well under NAME_MAX = 255, so
/// every file derived from it fits too).
pub const MAX_NAME: usize = 64;

/// Checks a database or table name: ASCII letters, digits, `_` and `-`,
/// starting with a letter or digit. Such a name is safe as a directory name,
/// on the command line, and inside ReedQL without quoting.
pub fn validate(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(StorageError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME {
        return bad("longer than 64 bytes");
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return bad("must start with a letter or digit");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return bad("only letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `20261124T051530.123456Z`: UTC, microseconds, fixed width, no `:`.
pub fn format_ts(ts_us: u64) -> String {
    let secs = (ts_us / 1_000_000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ts_us % 1_000_000
    )
}

/// `2026-11-24 05:15:30` for humans (terminal output, never file names).
pub fn format_ts_human(ts_us: u64) -> String {
    let secs = (ts_us / 1_000_000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The unique, sortable name of a version: its timestamp and the node that made it.
pub fn version_name(ts_us: u64, node: &str) -> String {
    format!("{}-{node}", format_ts(ts_us))
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point in time as users write it, to UTC microseconds:
/// - RFC 3339: `2026-11-24T05:15:30Z`, `2026-11-24T06:15:30+01:00`,
///   fractions allowed; a space may replace `T`; a bare date is midnight UTC;
/// - unix seconds: `1795497330` (or `@1795497330`), fractions allowed;
/// - relative to `now_us`: `-90s`, `-15m`, `-1h`, `-2d`, `-1w`;
/// - the names of versions and keyframes (`20261124T051530.123456Z`).
pub fn parse_time(text: &str, now_us: u64) -> std::result::Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{t:?} is not a time: use RFC 3339 (2026-11-24T05:15:30Z), unix seconds, or a relative time like -1h"
        )
    };
    if let Some(rel) = t.strip_prefix('-') {
        let (num, unit) = rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        return Ok(now_us.saturating_sub(n.saturating_mul(secs).saturating_mul(1_000_000)));
    }
    let unix = t.strip_prefix('@').unwrap_or(t);
    if !unix.is_empty() && unix.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let secs: f64 = unix.parse().map_err(|_| bad())?;
        return Ok((secs * 1e6).round() as u64);
    }
    // Version names: 20261124T051530.123456Z, with or without `-<node>`.
    let b = t.as_bytes();
    if b.len() >= 23
        && b[..23].is_ascii()
        && b[8] == b'T'
        && b[15] == b'.'
        && b[22] == b'Z'
        && (b.len() == 23 || b[23] == b'-')
    {
        let t = &t[..23];
        let iso = format!(
            "{}-{}-{}T{}:{}:{}{}",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[9..11],
            &t[11..13],
            &t[13..15],
            &t[15..]
        );
        return parse_time(&iso, now_us);
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let date = t.get(..10).ok_or_else(bad)?;
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return Err(bad());
    }
    let (y, mo, d) = (i64::from(num(parts[0])?), num(parts[1])?, num(parts[2])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut frac_us = 0u64;
    let rest = &t[10..];
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
        let hms = rest.get(..8).ok_or_else(bad)?;
        let f: Vec<&str> = hms.split(':').collect();
        if f.len() != 3 {
            return Err(bad());
        }
        let (h, mi, s) = (num(f[0])?, num(f[1])?, num(f[2])?);
        if h > 23 || mi > 59 || s > 60 {
            return Err(bad());
        }
        secs += i64::from(h * 3600 + mi * 60 + s);
        let mut zone = &rest[8..];
        if let Some(fr) = zone.strip_prefix('.') {
            let digits = fr.find(|c: char| !c.is_ascii_digit()).unwrap_or(fr.len());
            let mut us = fr[..digits].to_string();
            us.truncate(6);
            while us.len() < 6 {
                us.push('0');
            }
            frac_us = us.parse().map_err(|_| bad())?;
            zone = &fr[digits..];
        }
        secs -= match zone {
            "Z" | "z" | "" => 0,
            z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
                let off = i64::from(num(&z[1..3])? * 3600 + num(&z[4..6])? * 60);
                if z.starts_with('-') { -off } else { off }
            }
            _ => return Err(bad()),
        };
    }
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    Ok(secs * 1_000_000 + frac_us)
}

/// Environment variable that shifts this process's commit clock by a
/// number of seconds (may be negative): tests give a site a skewed clock.
pub const CLOCK_SKEW_ENV: &str = "REEDBASE_CLOCK_SKEW_SECONDS";

/// Microseconds since the Unix epoch (shifted by [`CLOCK_SKEW_ENV`]).
pub fn now_us() -> u64 {
    static SKEW_US: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let skew = *SKEW_US.get_or_init(|| {
        std::env::var(CLOCK_SKEW_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(0, |s| s.saturating_mul(1_000_000))
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now.saturating_add_signed(skew)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_time_with_non_ascii_text_is_an_error_not_a_panic() {
        assert!(super::parse_time("abcé123T456789.123456Z", 0).is_err());
        assert!(super::parse_time("2026-11-2é", 0).is_err());
    }

    use super::*;

    #[test]
    fn names() {
        for ok in ["users", "a", "Order_items-2", "9lives"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            "-x",
            "_x",
            "a b",
            "a/b",
            "..",
            "a:b",
            "é",
            "a\nb",
            long.as_str(),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_parse_in_every_form() {
        let t = 1_795_497_330_000_000; // 2026-11-24 05:15:30 UTC
        let now = t + 3_600_000_000;
        for ok in [
            "2026-11-24T05:15:30Z",
            "2026-11-24 05:15:30",
            "2026-11-24T06:15:30+01:00",
            "2026-11-24T00:15:30-05:00",
            "1795497330",
            "@1795497330",
            "-1h",
            "-60m",
            "20261124T051530.000000Z",
            "20261124T051530.000000Z-ab12cd34",
        ] {
            assert_eq!(parse_time(ok, now), Ok(t), "{ok}");
        }
        assert_eq!(parse_time("2026-11-24T05:15:30.5Z", 0), Ok(t + 500_000));
        assert_eq!(parse_time("2026-11-24", 0), Ok(t - 18_930_000_000));
        for bad in [
            "",
            "yesterday",
            "-1y",
            "2026-13-01",
            "2026-11-24T25:00:00Z",
            "12:00",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_format_and_sort() {
        assert_eq!(format_ts(0), "19700101T000000.000000Z");
        // 2026-11-24 05:15:30.123456 UTC
        assert_eq!(format_ts(1_795_497_330_123_456), "20261124T051530.123456Z");
        assert_eq!(
            format_ts_human(1_795_497_330_123_456),
            "2026-11-24 05:15:30"
        );
        assert_eq!(format_ts(951_782_400_000_000), "20000229T000000.000000Z");
        let a = version_name(1_000_000, "ab12cd34");
        let b = version_name(1_000_001, "ab12cd34");
        assert!(a < b && !a.contains(':'));
    }
}
