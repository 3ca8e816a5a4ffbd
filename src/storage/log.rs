//! `version.log`: one line per version, protected by a CRC32.
//!
//! ```text
//! ts|node|action|user|base|size|rows|hash|frame|store|crc
//! 1795497330123456|3fa9c2d1|2|0|4|840213|10000|9c0f...(32 hex)|-|b|1a2b3c4d
//! ```
//! - `ts`: microseconds since the Unix epoch, strictly increasing per table;
//!   with `node` it names the version's files (`names::version_name`).
//! - `action`, `user`: codes from `registry/actions.dict` / `users.dict`.
//! - `base`: sequence number (1-based line number) of the version the writer
//!   started from; 0 when there was none.
//! - `hash`: the version hash of `hash.rs` (chunked SHA-256, 128 bits, hex).
//! - `frame`: the frame id of a multi-table commit, `-` for a plain save.
//! - `store`: what files hold the version: `b` a `.bsdiff` delta, `x` a
//!   `.bsdiff.xz` delta, followed by `k` when a `.csv.xz` keyframe exists.
//! - `crc`: CRC32 of everything before `|crc`, 8 hex digits.
//!
//! A line is valid only with its newline and a matching CRC. A last line
//! without its newline is a torn append (a crash mid-write) and is cut off on
//! open; a complete line that fails its CRC, even the last, is damage and is
//! reported (never silently dropped).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    Bsdiff,
    BsdiffXz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub ts_us: u64,
    pub node: String,
    pub action: u32,
    pub user: u32,
    pub base: u64,
    pub size: u64,
    pub rows: u64,
    pub hash: String,
    pub frame: Option<String>,
    pub delta: DeltaKind,
    pub keyframe: bool,
}

pub use super::hash::content_hash;

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

impl LogEntry {
    pub fn encode(&self) -> String {
        let store = match (self.delta, self.keyframe) {
            (DeltaKind::Bsdiff, false) => "b",
            (DeltaKind::Bsdiff, true) => "bk",
            (DeltaKind::BsdiffXz, false) => "x",
            (DeltaKind::BsdiffXz, true) => "xk",
        };
        let body = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.ts_us,
            self.node,
            self.action,
            self.user,
            self.base,
            self.size,
            self.rows,
            self.hash,
            self.frame.as_deref().unwrap_or("-"),
            store
        );
        let crc = crc32fast::hash(body.as_bytes());
        format!("{body}|{crc:08x}\n")
    }

    /// Decodes one line (without its newline). `None` when the CRC or any
    /// field is wrong.
    pub fn decode(line: &str) -> Option<LogEntry> {
        let (body, crc) = line.rsplit_once('|')?;
        if crc.len() != 8 || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(body.as_bytes())
        {
            return None;
        }
        let f: Vec<&str> = body.split('|').collect();
        let hex32 = |h: &str| {
            h.len() == 32
                && h.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        };
        if f.len() != 10 || !is_token(f[1]) || !hex32(f[7]) || !is_token(f[8]) {
            return None;
        }
        let (delta, keyframe) = match f[9] {
            "b" => (DeltaKind::Bsdiff, false),
            "bk" => (DeltaKind::Bsdiff, true),
            "x" => (DeltaKind::BsdiffXz, false),
            "xk" => (DeltaKind::BsdiffXz, true),
            _ => return None,
        };
        Some(LogEntry {
            ts_us: f[0].parse().ok()?,
            node: f[1].to_string(),
            action: f[2].parse().ok()?,
            user: f[3].parse().ok()?,
            base: f[4].parse().ok()?,
            size: f[5].parse().ok()?,
            rows: f[6].parse().ok()?,
            hash: f[7].to_string(),
            frame: (f[8] != "-").then(|| f[8].to_string()),
            delta,
            keyframe,
        })
    }

    /// File name stem shared by this version's delta and keyframe.
    pub fn name(&self) -> String {
        super::names::version_name(self.ts_us, &self.node)
    }

    pub fn delta_file(&self) -> String {
        match self.delta {
            DeltaKind::Bsdiff => format!("{}.bsdiff", self.name()),
            DeltaKind::BsdiffXz => format!("{}.bsdiff.xz", self.name()),
        }
    }

    pub fn keyframe_file(&self) -> String {
        format!("{}.csv.xz", self.name())
    }
}

/// Result of reading a log file.
#[derive(Debug, Default)]
pub struct ParsedLog {
    pub entries: Vec<LogEntry>,
    /// Length of the valid prefix; bytes past it are a torn last line.
    pub valid_len: usize,
    /// 1-based line number of a damaged line that is not the last one.
    pub damaged_line: Option<usize>,
}

/// Parses log bytes starting at `offset` (a line boundary).
pub fn parse(bytes: &[u8], offset: usize) -> ParsedLog {
    let mut out = ParsedLog {
        valid_len: offset,
        ..ParsedLog::default()
    };
    let mut pos = offset;
    let mut line_no = 0;
    while pos < bytes.len() {
        line_no += 1;
        let Some(nl) = bytes[pos..].iter().position(|&c| c == b'\n') else {
            break; // no newline: torn
        };
        let line = std::str::from_utf8(&bytes[pos..pos + nl]).ok();
        match line.and_then(LogEntry::decode) {
            Some(e) => {
                out.entries.push(e);
                pos += nl + 1;
                out.valid_len = pos;
            }
            None => {
                // A whole line (with its newline) that fails is damage, even
                // at the end: only a line without newline is a torn append.
                out.damaged_line = Some(line_no);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LogEntry {
        LogEntry {
            ts_us: 1_795_497_330_123_456,
            node: "3fa9c2d1".into(),
            action: 2,
            user: 0,
            base: 4,
            size: 840_213,
            rows: 10_000,
            hash: content_hash(b"x"),
            frame: None,
            delta: DeltaKind::Bsdiff,
            keyframe: false,
        }
    }

    #[test]
    fn roundtrip_and_crc() {
        let e = entry();
        let line = e.encode();
        assert!(line.len() < 110, "{} bytes", line.len());
        assert_eq!(LogEntry::decode(line.trim_end()), Some(e.clone()));
        let flipped = line.replacen("840213", "840214", 1);
        assert_eq!(LogEntry::decode(flipped.trim_end()), None);
    }

    #[test]
    fn torn_tail_and_damage() {
        let a = entry().encode();
        let mut bytes = format!("{a}{a}").into_bytes();
        bytes.extend_from_slice(&a.as_bytes()[..20]);
        let p = parse(&bytes, 0);
        assert_eq!(
            (p.entries.len(), p.valid_len, p.damaged_line),
            (2, 2 * a.len(), None)
        );
        let mut damaged = format!("{a}{a}{a}").into_bytes();
        damaged[a.len() + 3] ^= 1;
        let p = parse(&damaged, 0);
        assert_eq!((p.entries.len(), p.damaged_line), (1, Some(2)));
    }
}
