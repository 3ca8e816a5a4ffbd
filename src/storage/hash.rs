//! Version hashes that a commit can update in time proportional to the
//! change, not the table.
//!
//! The content is cut into chunks after every line (up to and including its
//! `\n`) whose CRC32 has its low 6 bits set (about one line in 64), and at the
//! end. The rule looks at one line only, so an edit moves no boundary outside
//! the lines it touches. The version hash is SHA-256 over the concatenated
//! SHA-256 digests of the chunks, cut to 128 bits, in hex. `rdb verify` and
//! open() compute it from scratch; a commit rehashes only the changed chunks.
//! docs/FORMAT.md gives the same definition for other implementations.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

const BOUNDARY_MASK: u32 = 63;

/// Chunk ends and digests of one content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkedHash {
    chunks: Vec<(usize, [u8; 32])>,
}

fn is_boundary(line: &[u8]) -> bool {
    crc32fast::hash(line) & BOUNDARY_MASK == BOUNDARY_MASK
}

/// The end of the first line from `from` (a line start) whose CRC makes it
/// end a chunk, before the end of `b` (which ends the last chunk anyway).
fn next_boundary(b: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while let Some(i) = memchr::memchr(b'\n', &b[pos..]) {
        let end = pos + i + 1;
        if end < b.len() && is_boundary(&b[pos..end]) {
            return Some(end);
        }
        pos = end;
    }
    None
}

/// Chunks of `b[from..]`, stopping early once `stop(chunk_end, line_start)` says so
/// (then the returned flag is true).
fn chunk(
    b: &[u8],
    from: usize,
    mut stop: impl FnMut(usize, usize) -> bool,
) -> (Vec<(usize, [u8; 32])>, bool) {
    let mut out = Vec::new();
    let mut chunk_start = from;
    let mut pos = from;
    while pos < b.len() {
        let line_end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i + 1);
        let line_start = pos;
        pos = line_end;
        if line_end == b.len() || is_boundary(&b[line_start..line_end]) {
            out.push((line_end, Sha256::digest(&b[chunk_start..line_end]).into()));
            chunk_start = line_end;
            if stop(line_end, line_start) {
                return (out, true);
            }
        }
    }
    (out, false)
}

/// Contents from this size on are hashed by two threads.
const SPLIT_MIN: usize = 4 << 20;

impl ChunkedHash {
    pub fn compute(b: &[u8]) -> ChunkedHash {
        if b.len() >= SPLIT_MIN
            && let Some(h) = Self::compute_halves(b)
        {
            return h;
        }
        ChunkedHash {
            chunks: chunk(b, 0, |_, _| false).0,
        }
    }

    /// [`Self::compute`] on two threads (at 1M rows, 89 MB, it takes a
    /// tenth of a second alone): a boundary depends on its line alone, so
    /// the first chunk end after the middle is found from there, a second
    /// thread chunks what follows it, and this one chunks up to it. `None`
    /// when there is no such boundary or no thread.
    fn compute_halves(b: &[u8]) -> Option<ChunkedHash> {
        let mid = memchr::memchr(b'\n', &b[b.len() / 2..])? + b.len() / 2 + 1;
        let split = next_boundary(b, mid)?;
        std::thread::scope(|sc| {
            let second = std::thread::Builder::new()
                .spawn_scoped(sc, || chunk(b, split, |_, _| false).0)
                .ok()?;
            let (mut chunks, stopped) = chunk(b, 0, |end, _| end == split);
            let rest = second
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            // The chunk ending at `split` is one of the whole content's.
            stopped.then(|| {
                chunks.extend(rest);
                ChunkedHash { chunks }
            })
        })
    }

    /// The version hash (128-bit hex).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (_, d) in &self.chunks {
            h.update(d);
        }
        let full = h.finalize();
        let mut s = String::with_capacity(32);
        for b in &full[..16] {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// Updates the chunks of `old` (of length `old_len`, which this value
    /// describes) to describe `new`, given that the two share their first
    /// `prefix` and last `suffix` bytes (non-overlapping in both).
    pub fn update(&mut self, old_len: usize, new: &[u8], prefix: usize, suffix: usize) {
        let shift = new.len() as i64 - old_len as i64;
        // Chunks that end inside the common prefix are unchanged.
        let mut k0 = self.chunks.partition_point(|c| c.0 <= prefix);
        if k0 > 0 && self.chunks[k0 - 1].0 == old_len {
            // The last chunk ends only because the content did: it grows now.
            k0 -= 1;
        }
        let from = if k0 == 0 { 0 } else { self.chunks[k0 - 1].0 };
        let suffix_start = new.len() - suffix;
        let old_ends = &self.chunks;
        let mut resume = None;
        let (fresh, stopped) = chunk(new, from, |end, line_start| {
            // A boundary whose line, and the newline before it, lie in the
            // common suffix is also a boundary of the old content; from
            // there on nothing changed.
            if line_start > suffix_start && end < new.len() {
                let old_end = (end as i64 - shift) as usize;
                if let Ok(k) = old_ends.binary_search_by(|c| c.0.cmp(&old_end)) {
                    resume = Some(k + 1);
                    return true;
                }
            }
            false
        });
        let tail: Vec<(usize, [u8; 32])> = match (stopped, resume) {
            (true, Some(k)) => self.chunks[k..]
                .iter()
                .map(|&(e, d)| ((e as i64 + shift) as usize, d))
                .collect(),
            _ => Vec::new(),
        };
        self.chunks.truncate(k0);
        self.chunks.extend(fresh);
        self.chunks.extend(tail);
    }
}

/// The version hash of `bytes`, from scratch.
pub fn content_hash(bytes: &[u8]) -> String {
    ChunkedHash::compute(bytes).digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::csv::common_ends;

    fn table(n: usize, tag: &str) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{i}|row {i} {tag}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn check_update(old: &[u8], new: &[u8]) {
        let mut h = ChunkedHash::compute(old);
        let (p, s) = common_ends(old, new);
        h.update(old.len(), new, p, s);
        assert_eq!(h, ChunkedHash::compute(new));
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let base = table(3000, "x");
        let text = String::from_utf8(base.clone()).unwrap();
        let edits: Vec<Vec<u8>> = vec![
            text.replacen("17|row 17 x", "17|row seventeen", 1)
                .into_bytes(),
            text.replacen("2999|row 2999 x\n", "", 1).into_bytes(),
            format!("{text}3000|new\n").into_bytes(),
            text.replacen("0|row 0 x\n", "", 1).into_bytes(),
            text.replacen("1500|", "1500a|", 1)
                .replacen("2500|", "2500b|", 1)
                .into_bytes(),
            Vec::new(),
            b"single line without newline".to_vec(),
            text.replace('\n', "\r\n").into_bytes(),
        ];
        for new in &edits {
            check_update(&base, new);
            check_update(new, &base);
        }
    }

    proptest::proptest! {
        #[test]
        fn random_edits_update_like_recompute(
            lines in proptest::collection::vec("[a-c|]{0,6}\n", 0..300),
            at in 0usize..2000, del in 0usize..200, ins in "[a-c|\n]{0,40}",
        ) {
            let old: Vec<u8> = lines.concat().into_bytes();
            let at = at.min(old.len());
            let end = (at + del).min(old.len());
            let mut new = old.clone();
            new.splice(at..end, ins.bytes());
            check_update(&old, &new);
        }
    }

    #[test]
    fn matches_the_python_definition_in_format_md() {
        // Values computed with the Python function of docs/FORMAT.md section 5.
        let data: String = (0..1000).map(|i| format!("{i}|row {i}\n")).collect();
        assert_eq!(
            content_hash(data.as_bytes()),
            "4fb5283d29dbdebfbde45bd60c5d2e63"
        );
        assert_eq!(content_hash(b""), "e3b0c44298fc1c149afbf4c8996fb924");
        assert_eq!(
            content_hash(b"id|a\n1|x"),
            "de0063ebada521c003c8ea6c4dc8afef"
        );
    }

    #[test]
    fn two_threads_chunk_like_one() {
        for n in [250_000, 300_001] {
            let b = table(n, "z");
            assert!(b.len() >= SPLIT_MIN);
            let halves = ChunkedHash::compute_halves(&b).unwrap();
            assert_eq!(halves.chunks, chunk(&b, 0, |_, _| false).0);
        }
        // No boundary after the middle: one thread.
        let mut b = table(1000, "w");
        b.extend(std::iter::repeat_n(b'x', SPLIT_MIN));
        assert!(ChunkedHash::compute_halves(&b).is_none());
        assert_eq!(
            ChunkedHash::compute(&b).chunks,
            chunk(&b, 0, |_, _| false).0
        );
    }

    #[test]
    fn chunks_are_small_on_average() {
        let h = ChunkedHash::compute(&table(64_000, "y"));
        let n = h.chunks.len();
        assert!((500..2000).contains(&n), "{n} chunks for 64k lines");
        assert_ne!(content_hash(b"a\n"), content_hash(b"b\n"));
        assert_eq!(content_hash(b""), ChunkedHash::default().digest());
    }
}
