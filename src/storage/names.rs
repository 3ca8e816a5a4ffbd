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

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
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
