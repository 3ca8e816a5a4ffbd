//! Pack files: the deltas of a run of committed versions of one table in one
//! file (docs/FORMAT.md, section 4a). Pure: encoding and parsing bytes; the
//! table reads and writes them through `Io` (`table/packing.rs`), `verify`
//! with `std::fs`.
//!
//! Layout:
//!
//! ```text
//! "RDBPACK1"                         8 bytes, magic
//! entry bytes                        each delta exactly as its loose file holds it
//! index                              one line per entry: <file>|<offset>|<length>|<crc32>\n
//! trailer (20 bytes)                 index offset (u64 LE), CRC32 of the index (u32 LE), "RDBPEND1"
//! ```
//!
//! `<file>` is the entry's loose file name (`<version>.bsdiff` or
//! `<version>.bsdiff.xz`), `<offset>` and `<length>` are decimal byte
//! positions in the pack, `<crc32>` is the CRC32 (IEEE) of the entry's bytes
//! as 8 hex digits. Entries are in version order and tile the bytes between
//! the magic and the index exactly. A pack is named
//! `<first version>_<last version>.pack`.

use std::ops::Range;

pub const MAGIC: &[u8; 8] = b"RDBPACK1";
pub const END: &[u8; 8] = b"RDBPEND1";
pub const TRAILER: usize = 20;
pub const SUFFIX: &str = ".pack";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("not a pack (bad magic)")]
    Magic,
    #[error("incomplete pack: {0}")]
    Truncated(String),
    #[error("pack index fails its CRC check")]
    IndexCrc,
    #[error("pack index line {line}: {detail}")]
    Index { line: usize, detail: String },
    #[error("pack entry {file} fails its CRC check")]
    EntryCrc { file: String },
}

/// One entry of a pack's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The loose file name the bytes had (`<version>.bsdiff[.xz]`).
    pub file: String,
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

impl Entry {
    /// The version name of the entry.
    pub fn version(&self) -> &str {
        delta_stem(&self.file).unwrap_or(&self.file)
    }

    pub fn range(&self) -> Range<usize> {
        self.offset as usize..(self.offset + self.len) as usize
    }
}

/// The version name of a loose delta file name, or `None` if it is not one.
pub fn delta_stem(file: &str) -> Option<&str> {
    file.strip_suffix(".bsdiff")
        .or_else(|| file.strip_suffix(".bsdiff.xz"))
}

/// The name of the pack of the versions `first..=last`.
pub fn file_name(first: &str, last: &str) -> String {
    format!("{first}_{last}{SUFFIX}")
}

/// The first and last version names of a pack's file name.
pub fn parse_file_name(name: &str) -> Option<(&str, &str)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (first, last) = stem.split_once('_')?;
    (!first.is_empty() && !last.is_empty() && first <= last && !last.contains('_'))
        .then_some((first, last))
}

fn index_line(file: &str, offset: u64, len: u64, crc: u32) -> String {
    format!("{file}|{offset}|{len}|{crc:08x}\n")
}

/// The size of the pack of entries with these (file name length, byte
/// length) pairs, without building it.
pub fn encoded_len(entries: impl IntoIterator<Item = (usize, usize)>) -> usize {
    let mut offset = MAGIC.len();
    let mut index = 0;
    for (name, len) in entries {
        index += index_line(&"x".repeat(name), offset as u64, len as u64, 0).len();
        offset += len;
    }
    offset + index + TRAILER
}

/// The pack of `entries` (loose file name, bytes), in the order given.
pub fn encode(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let mut index = String::new();
    for (file, bytes) in entries {
        let offset = out.len() as u64;
        out.extend_from_slice(bytes);
        index.push_str(&index_line(
            file,
            offset,
            bytes.len() as u64,
            crc32fast::hash(bytes),
        ));
    }
    let index_offset = out.len() as u64;
    out.extend_from_slice(index.as_bytes());
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(index.as_bytes()).to_le_bytes());
    out.extend_from_slice(END);
    out
}

/// Parses a whole pack and checks it: magic, trailer, the index's CRC, that
/// the entries tile the data region in order, and every entry's CRC. Any
/// damage (a torn write included) is an error, never a panic.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, PackError> {
    if bytes.len() < MAGIC.len() + TRAILER {
        if bytes.len() >= MAGIC.len() && &bytes[..MAGIC.len()] != MAGIC {
            return Err(PackError::Magic);
        }
        return Err(PackError::Truncated(format!("{} bytes", bytes.len())));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(PackError::Magic);
    }
    let trailer = &bytes[bytes.len() - TRAILER..];
    if &trailer[12..] != END {
        return Err(PackError::Truncated("no trailer".into()));
    }
    let mut off = [0u8; 8];
    off.copy_from_slice(&trailer[..8]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&trailer[8..12]);
    let index_offset = u64::from_le_bytes(off);
    let index_end = bytes.len() - TRAILER;
    let index_start = usize::try_from(index_offset)
        .ok()
        .filter(|&o| o >= MAGIC.len() && o <= index_end)
        .ok_or_else(|| PackError::Truncated(format!("index offset {index_offset} out of range")))?;
    let index = &bytes[index_start..index_end];
    if crc32fast::hash(index) != u32::from_le_bytes(crc) {
        return Err(PackError::IndexCrc);
    }
    let entries = parse_index(index)?;
    let mut expect = MAGIC.len() as u64;
    for (i, e) in entries.iter().enumerate() {
        let bad = |detail: String| PackError::Index {
            line: i + 1,
            detail,
        };
        if e.offset != expect {
            return Err(bad(format!("offset {} where {expect} was due", e.offset)));
        }
        expect = e
            .offset
            .checked_add(e.len)
            .filter(|&end| end <= index_offset)
            .ok_or_else(|| bad("entry runs past the index".into()))?;
        if crc32fast::hash(&bytes[e.range()]) != e.crc {
            return Err(PackError::EntryCrc {
                file: e.file.clone(),
            });
        }
    }
    if expect != index_offset {
        return Err(PackError::Index {
            line: entries.len(),
            detail: format!("entries end at {expect}, the index starts at {index_offset}"),
        });
    }
    Ok(entries)
}

/// Parses the index lines (checked for syntax and order; ranges are checked
/// by [`parse`]).
fn parse_index(index: &[u8]) -> Result<Vec<Entry>, PackError> {
    let text = std::str::from_utf8(index).map_err(|_| PackError::Index {
        line: 0,
        detail: "not UTF-8".into(),
    })?;
    let mut out: Vec<Entry> = Vec::new();
    for (i, line) in text.split_terminator('\n').enumerate() {
        let bad = |detail: &str| PackError::Index {
            line: i + 1,
            detail: detail.to_string(),
        };
        let mut f = line.split('|');
        let (Some(file), Some(offset), Some(len), Some(crc), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad("not file|offset|length|crc"));
        };
        if delta_stem(file).is_none_or(|s| s.is_empty() || s.contains('/')) {
            return Err(bad("not a delta file name"));
        }
        if out.last().is_some_and(|p| p.file.as_str() >= file) {
            return Err(bad("entries out of order"));
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad("bad number"));
        out.push(Entry {
            file: file.to_string(),
            offset: num(offset)?,
            len: num(len)?,
            crc: u32::from_str_radix(crc, 16)
                .ok()
                .filter(|_| crc.len() == 8)
                .ok_or_else(|| bad("bad crc"))?,
        });
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(PackError::Truncated(
            "last index line has no newline".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(&[
            ("20260101T000000.000001Z-0000000a.bsdiff", b"BSDIFF40 one"),
            ("20260101T000000.000002Z-0000000a.bsdiff.xz", b"two two"),
            ("20260101T000000.000003Z-0000000a.bsdiff", b""),
        ])
    }

    #[test]
    fn round_trip_and_entries_are_the_bytes() {
        let p = sample();
        let entries = parse(&p).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(&p[entries[0].range()], b"BSDIFF40 one");
        assert_eq!(&p[entries[1].range()], b"two two");
        assert_eq!(entries[1].version(), "20260101T000000.000002Z-0000000a");
        assert!(entries[2].range().is_empty());
        assert_eq!(
            encoded_len([(39, 12), (42, 7), (39, 0)]),
            p.len(),
            "encoded_len predicts the size"
        );
        assert_eq!(parse(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn names() {
        let n = file_name("a1", "b2");
        assert_eq!(n, "a1_b2.pack");
        assert_eq!(parse_file_name(&n), Some(("a1", "b2")));
        assert_eq!(parse_file_name("b_a.pack"), None);
        assert_eq!(parse_file_name("ab.pack"), None);
        assert_eq!(parse_file_name("a_b.csv"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let p = sample();
        // Every truncation (a torn write) fails.
        for n in 0..p.len() {
            assert!(parse(&p[..n]).is_err(), "truncated to {n}");
        }
        // Every single-byte change fails (magic, data, index, trailer).
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0x41;
            assert!(parse(&q).is_err(), "byte {i} changed");
        }
        assert_eq!(parse(b"hello"), Err(PackError::Truncated("5 bytes".into())));
        assert_eq!(parse(&[0u8; 64]), Err(PackError::Magic));
        // A pseudo-random mess, with and without a plausible frame.
        let mut x: u32 = 12345;
        for len in 0..300 {
            let mut junk: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse(&junk);
            if junk.len() > 28 {
                junk[..8].copy_from_slice(MAGIC);
                let n = junk.len();
                junk[n - 8..].copy_from_slice(END);
                assert!(parse(&junk).is_err());
            }
        }
        // A valid frame around a bad index.
        for index in [
            &b"x.bsdiff|8|99999999999999999999|00000000\n"[..],
            b"x.bsdiff|8|18446744073709551615|00000000\n",
        ] {
            let mut q = MAGIC.to_vec();
            q.extend_from_slice(index);
            q.extend_from_slice(&8u64.to_le_bytes());
            q.extend_from_slice(&crc32fast::hash(index).to_le_bytes());
            q.extend_from_slice(END);
            assert!(matches!(parse(&q), Err(PackError::Index { .. })));
        }
    }
}
