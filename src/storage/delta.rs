//! Deltas in bsdiff format (BSDIFF40, applicable by a standard `bspatch`).
//!
//! A general bsdiff builds a suffix array of the whole old file (~40 ms at
//! 840 KB). We already know which rows changed, so [`encode`] writes the
//! patch straight from the hunks: one control triple per hunk ("copy the
//! unchanged bytes before it, insert its new bytes from the extra block, skip
//! its old bytes"). The diff block is then all zeros, and
//! [`super::zero_bzip2`] writes its bzip2 stream in microseconds.
//!
//! [`apply`] recognises such patches (their diff block is exactly the zero
//! stream for the copied length) and applies them without decompressing the
//! zeros; any other BSDIFF40 patch goes through qbsdiff.

use std::io::{Read, Write};
use std::ops::Range;

use super::csv::Hunk;
use super::zero_bzip2::zero_stream;

const MAGIC: &[u8; 8] = b"BSDIFF40";
/// Patches below this size are never XZ-compressed: XZ's fixed overhead (~60 B)
/// exceeds what it could save on bzip2 output.
const XZ_MIN: usize = 1024;
/// Patches above 4 samples are XZ-compressed only when a sample of this many
/// bytes (from the middle) shrinks to below [`XZ_WORTH`] of its size.
const XZ_SAMPLE: usize = 256 * 1024;
const XZ_WORTH: f64 = 0.97;
const XZ_MAGIC: &[u8; 6] = b"\xFD7zXZ\x00";
/// Nothing we store unpacks to more than this (a bound against damaged files).
const MAX_UNPACKED: u64 = 64 << 30;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("not a bsdiff patch: {0}")]
    Malformed(&'static str),
    #[error("patch does not fit its base: {0}")]
    Mismatch(&'static str),
    #[error("decompression failed: {0}")]
    Decompress(#[from] std::io::Error),
}

fn put_int(out: &mut Vec<u8>, x: i64) {
    // bsdiff's sign-magnitude little-endian encoding.
    let v = if x < 0 {
        x.unsigned_abs() | (1 << 63)
    } else {
        x as u64
    };
    out.extend_from_slice(&v.to_le_bytes());
}

fn get_int(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    let v = u64::from_le_bytes(a);
    let mag = (v & !(1 << 63)) as i64;
    if v >> 63 == 1 { -mag } else { mag }
}

fn bzip2(data: &[u8], done: &(dyn Fn(u64) + Sync)) -> Vec<u8> {
    // A big block (a whole table, an import) is compressed on every core.
    if data.len() >= super::par_bzip2::PARALLEL_MIN
        && let Some(z) = super::par_bzip2::compress(data, done)
    {
        return z;
    }
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    // The block size only matters once the input exceeds it; a small level keeps
    // the decoder's allocation (400 KB per 100 KB of block) small on reads.
    let level = (data.len() / 100_000 + 1).min(9) as u32;
    let mut enc = bzip2::write::BzEncoder::new(&mut out, bzip2::Compression::new(level));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    let _ = enc.finish();
    out
}

/// Decompresses a bzip2 block of a patch, reading at most `expected + 1`
/// bytes (one more reveals a block longer than its patch says).
fn unbzip2(data: &[u8], expected: usize) -> Result<Vec<u8>, DeltaError> {
    let mut out = Vec::with_capacity(expected.min(1 << 24));
    bzip2::read::BzDecoder::new(data)
        .take(expected as u64 + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A lower bound on the length of `zero_stream(n)`: every 43 MB of zeros
/// needs a block of at least 30 bytes.
fn zero_stream_min_len(n: usize) -> usize {
    (n / 43_000_000).saturating_mul(30)
}

/// Trims the bytes a hunk's old and new sides share at both ends, so the
/// extra block holds only what really changed (a cell, not the whole row).
fn trimmed(old: &[u8], new: &[u8], h: &Hunk) -> (Range<usize>, Range<usize>) {
    let (o, n) = (&old[h.old.clone()], &new[h.new.clone()]);
    let pre = o.iter().zip(n).take_while(|(a, b)| a == b).count();
    let max_suf = (o.len() - pre).min(n.len() - pre);
    let suf = o[pre..]
        .iter()
        .rev()
        .zip(n[pre..].iter().rev())
        .take(max_suf)
        .take_while(|(a, b)| a == b)
        .count();
    (
        h.old.start + pre..h.old.end - suf,
        h.new.start + pre..h.new.end - suf,
    )
}

/// Builds a BSDIFF40 patch turning `old` into `new`. `hunks` must be sorted,
/// non-overlapping, and cover every difference (bytes outside them are equal
/// and at the same distance from the end of the previous hunk).
pub fn encode(old: &[u8], new: &[u8], hunks: &[Hunk]) -> Vec<u8> {
    encode_with(old, new, hunks, &|_| {})
}

/// [`encode`], calling `done(n)` as `n` more bytes of the extra block are
/// compressed (for a progress bar; only big blocks report).
pub fn encode_with(old: &[u8], new: &[u8], hunks: &[Hunk], done: &(dyn Fn(u64) + Sync)) -> Vec<u8> {
    let mut ctrl = Vec::with_capacity(24 * (hunks.len() + 1));
    let mut extra = Vec::new();
    let mut removed = Vec::new();
    let mut old_pos = 0usize;
    let mut copied = 0u64;
    // A whole table (a first version) is compressed where it is, not copied.
    let whole = (old.is_empty() && hunks.len() == 1).then(|| hunks[0].new.clone());
    for h in hunks {
        let (o, n) = trimmed(old, new, h);
        let add = o.start - old_pos;
        put_int(&mut ctrl, add as i64);
        put_int(&mut ctrl, n.len() as i64);
        put_int(&mut ctrl, o.len() as i64);
        if whole.is_none() {
            extra.extend_from_slice(&new[n]);
        }
        removed.extend_from_slice(&old[o.clone()]);
        copied += add as u64;
        old_pos = o.end;
    }
    let tail = old.len() - old_pos;
    if tail > 0 || hunks.is_empty() {
        put_int(&mut ctrl, tail as i64);
        put_int(&mut ctrl, 0);
        put_int(&mut ctrl, 0);
        copied += tail as u64;
    }
    // The bytes each hunk removed go after the inserted ones. bspatch reads
    // the extra block only as far as the control triples say, so the patch
    // stays standard, and it can also be applied backwards ([`Patch::unapply`]).
    let bz_ctrl = bzip2(&ctrl, &|_| {});
    let bz_diff = zero_stream(copied);
    let bz_extra = match whole {
        Some(n) => bzip2(&new[n], done),
        None => {
            extra.extend_from_slice(&removed);
            bzip2(&extra, done)
        }
    };
    let mut patch = Vec::with_capacity(32 + bz_ctrl.len() + bz_diff.len() + bz_extra.len());
    patch.extend_from_slice(MAGIC);
    put_int(&mut patch, bz_ctrl.len() as i64);
    put_int(&mut patch, bz_diff.len() as i64);
    put_int(&mut patch, new.len() as i64);
    patch.extend_from_slice(&bz_ctrl);
    patch.extend_from_slice(&bz_diff);
    patch.extend_from_slice(&bz_extra);
    patch
}

/// XZ-compresses `patch` when that makes it smaller. Returns the bytes to
/// store and whether they are XZ.
pub fn pack(patch: Vec<u8>) -> (Vec<u8>, bool) {
    if patch.len() < XZ_MIN {
        return (patch, false);
    }
    // XZ over bzip2 output rarely gains anything, and on a big patch (a
    // whole table: 16 MB at 1M rows) it took longer than the bzip2 itself
    // to save 0.2%. A sample from the middle says whether it is worth it.
    if patch.len() > XZ_SAMPLE * 4 {
        let mid = patch.len() / 2 - XZ_SAMPLE / 2;
        let sample = &patch[mid..mid + XZ_SAMPLE];
        if xz(sample, 6).len() as f64 > sample.len() as f64 * XZ_WORTH {
            return (patch, false);
        }
    }
    let packed = xz(&patch, 6);
    if packed.len() < patch.len() {
        (packed, true)
    } else {
        (patch, false)
    }
}

pub fn xz(data: &[u8], preset: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4 + 64);
    let mut enc = xz2::write::XzEncoder::new(&mut out, preset);
    let _ = enc.write_all(data);
    let _ = enc.finish();
    out
}

/// Decompresses stored bytes: XZ when they carry the XZ magic, else as is.
pub fn unpack(stored: &[u8]) -> Result<Vec<u8>, DeltaError> {
    if stored.starts_with(XZ_MAGIC) {
        let mut out = Vec::with_capacity(stored.len().saturating_mul(4).min(1 << 26));
        xz2::read::XzDecoder::new(stored)
            .take(MAX_UNPACKED)
            .read_to_end(&mut out)?;
        if out.len() as u64 == MAX_UNPACKED {
            return Err(DeltaError::Malformed("unpacks to more than 64 GiB"));
        }
        Ok(out)
    } else {
        Ok(stored.to_vec())
    }
}

struct Parsed<'a> {
    ctrl: &'a [u8],
    diff: &'a [u8],
    extra: &'a [u8],
    new_len: usize,
}

fn parse(patch: &[u8]) -> Result<Parsed<'_>, DeltaError> {
    if patch.len() < 32 || &patch[..8] != MAGIC {
        return Err(DeltaError::Malformed("missing BSDIFF40 header"));
    }
    let c = get_int(&patch[8..]);
    let d = get_int(&patch[16..]);
    let n = get_int(&patch[24..]);
    if c < 0 || d < 0 || n < 0 || 32 + c as u128 + d as u128 > patch.len() as u128 {
        return Err(DeltaError::Malformed("bad block lengths"));
    }
    let (c, d) = (c as usize, d as usize);
    Ok(Parsed {
        ctrl: &patch[32..32 + c],
        diff: &patch[32 + c..32 + c + d],
        extra: &patch[32 + c + d..],
        new_len: n as usize,
    })
}

/// A decoded patch written by [`encode`]: control triples and the extra
/// block (inserted bytes, then removed bytes).
#[derive(Debug, Clone)]
pub struct Patch {
    /// (copy from base, insert from extra, skip in base), all non-negative.
    triples: Vec<(usize, usize, usize)>,
    extra: Vec<u8>,
    old_len: usize,
    new_len: usize,
    inserted: usize,
}

impl Patch {
    /// Decodes a patch of ours. `Ok(None)` for a valid BSDIFF40 patch made
    /// by another tool (apply it with [`apply_standard`]).
    pub fn decode(patch: &[u8]) -> Result<Option<Patch>, DeltaError> {
        let p = parse(patch)?;
        // A control triple per hunk: never more triples than bytes of change.
        let ctrl = unbzip2(p.ctrl, 24 * (p.new_len + p.ctrl.len() + 2).min(1 << 28))?;
        if ctrl.len() % 24 != 0 {
            return Err(DeltaError::Malformed("control block is not whole triples"));
        }
        let mut triples = Vec::with_capacity(ctrl.len() / 24);
        let (mut copied, mut inserted, mut skipped) = (0usize, 0usize, 0usize);
        for t in ctrl.chunks_exact(24) {
            let (a, c, s) = (get_int(t), get_int(&t[8..]), get_int(&t[16..]));
            if a < 0 || c < 0 || s < 0 {
                return Ok(None);
            }
            let (a, c, s) = (a as usize, c as usize, s as usize);
            copied = copied.saturating_add(a);
            inserted = inserted.saturating_add(c);
            skipped = skipped.saturating_add(s);
            triples.push((a, c, s));
        }
        // Cheap checks first: a damaged control block must not make us build
        // (or decompress) gigabytes.
        if copied.checked_add(inserted) != Some(p.new_len)
            || p.diff.len() < zero_stream_min_len(copied)
        {
            return Ok(None);
        }
        if p.diff != zero_stream(copied as u64).as_slice() {
            return Ok(None);
        }
        let extra_len = inserted.saturating_add(skipped);
        let extra = unbzip2(p.extra, extra_len)?;
        if extra.len() != extra_len {
            return Ok(None);
        }
        Ok(Some(Patch {
            triples,
            extra,
            old_len: copied + skipped,
            new_len: p.new_len,
            inserted,
        }))
    }

    /// Memory this decoded patch holds (for cache budgets).
    pub fn heap_bytes(&self) -> usize {
        self.extra.len() + self.triples.len() * 24 + 64
    }

    pub fn old_len(&self) -> usize {
        self.old_len
    }

    pub fn new_len(&self) -> usize {
        self.new_len
    }

    /// Base -> new.
    pub fn apply(&self, old: &[u8]) -> Result<Vec<u8>, DeltaError> {
        let mut out = Pieces::whole(old.len());
        out = out.apply(self)?;
        Ok(out.materialize(old, &[self]))
    }

    /// New -> base.
    pub fn unapply(&self, new: &[u8]) -> Result<Vec<u8>, DeltaError> {
        let mut out = Pieces::whole(new.len());
        out = out.unapply(self)?;
        Ok(out.materialize(new, &[self]))
    }
}

/// Applies a BSDIFF40 patch to `old` (ours without decompressing the zero
/// diff block, anybody else's through qbsdiff).
pub fn apply(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    match Patch::decode(patch)? {
        Some(p) => p.apply(old),
        None => apply_standard(old, patch),
    }
}

/// A content described as pieces of an anchor (`src == 0`) and of the extra
/// blocks of patches (`src == i` is the i-th patch handed to `materialize`).
/// Composing patches on pieces costs O(pieces) per patch instead of a copy of
/// the whole table, so reading a version K deltas away costs K small steps
/// and one final copy.
#[derive(Debug, Clone, Default)]
pub struct Pieces {
    pieces: Vec<(u32, usize, usize)>,
    len: usize,
    /// Patches applied so far; the next one is source `applied + 1`.
    applied: u32,
}

impl Pieces {
    pub fn whole(len: usize) -> Pieces {
        Pieces {
            pieces: if len > 0 {
                vec![(0, 0, len)]
            } else {
                Vec::new()
            },
            len,
            applied: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `[from, from + n)` of this content into `out`, advancing the
    /// piece cursor `(i, off)` which must point at `from`.
    fn take(&self, cur: &mut (usize, usize), mut n: usize, out: &mut Vec<(u32, usize, usize)>) {
        while n > 0 {
            let Some(&(src, start, len)) = self.pieces.get(cur.0) else {
                return;
            };
            let avail = len - cur.1;
            let k = avail.min(n);
            out.push((src, start + cur.1, k));
            n -= k;
            cur.1 += k;
            if cur.1 == len {
                *cur = (cur.0 + 1, 0);
            }
        }
    }

    fn skip(&self, cur: &mut (usize, usize), mut n: usize) {
        while n > 0 {
            let Some(&(_, _, len)) = self.pieces.get(cur.0) else {
                return;
            };
            let k = (len - cur.1).min(n);
            n -= k;
            cur.1 += k;
            if cur.1 == len {
                *cur = (cur.0 + 1, 0);
            }
        }
    }

    pub fn apply(self, p: &Patch) -> Result<Pieces, DeltaError> {
        if self.len != p.old_len {
            return Err(DeltaError::Mismatch("base length differs from the patch's"));
        }
        let src = self.applied + 1;
        let mut out = Vec::with_capacity(self.pieces.len() + 2 * p.triples.len());
        let (mut cur, mut ep) = ((0, 0), 0);
        for &(add, copy, seek) in &p.triples {
            self.take(&mut cur, add, &mut out);
            if copy > 0 {
                out.push((src, ep, copy));
            }
            ep += copy;
            self.skip(&mut cur, seek);
        }
        Ok(Pieces {
            pieces: out,
            len: p.new_len,
            applied: src,
        })
    }

    pub fn unapply(self, p: &Patch) -> Result<Pieces, DeltaError> {
        if self.len != p.new_len {
            return Err(DeltaError::Mismatch(
                "content length differs from the patch's result",
            ));
        }
        let src = self.applied + 1;
        let mut out = Vec::with_capacity(self.pieces.len() + 2 * p.triples.len());
        let (mut cur, mut rp) = ((0, 0), p.inserted);
        for &(add, copy, seek) in &p.triples {
            self.take(&mut cur, add, &mut out);
            self.skip(&mut cur, copy);
            if seek > 0 {
                out.push((src, rp, seek));
            }
            rp += seek;
        }
        Ok(Pieces {
            pieces: out,
            len: p.old_len,
            applied: src,
        })
    }

    /// Builds the bytes. `patches[i]` must be the patch applied as source `i + 1`.
    pub fn materialize(&self, anchor: &[u8], patches: &[&Patch]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for &(src, start, len) in &self.pieces {
            let bytes = if src == 0 {
                anchor
            } else {
                patches
                    .get(src as usize - 1)
                    .map_or(&[][..], |p| p.extra.as_slice())
            };
            if let Some(b) = bytes.get(start..start + len) {
                out.extend_from_slice(b);
            }
        }
        out
    }
}

/// Applies any BSDIFF40 patch with qbsdiff (decompresses every block).
pub fn apply_standard(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut out = Vec::new();
    qbsdiff::Bspatch::new(patch)?.apply(old, std::io::Cursor::new(&mut out))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunk(o: Range<usize>, n: Range<usize>) -> Hunk {
        Hunk { old: o, new: n }
    }

    #[test]
    fn encode_apply_roundtrip_fast_and_standard() {
        let old = b"id|v\n1|a\n2|b\n3|c\n".to_vec();
        let new = b"id|v\n1|a\n2|bb\n3|c\n4|d\n".to_vec();
        let hunks = [hunk(9..13, 9..14), hunk(17..17, 18..22)];
        let patch = encode(&old, &new, &hunks);
        assert_eq!(apply(&old, &patch).unwrap(), new);
        assert_eq!(apply_standard(&old, &patch).unwrap(), new);
        let p = Patch::decode(&patch).unwrap().unwrap();
        assert_eq!(p.unapply(&new).unwrap(), old);
    }

    #[test]
    fn composing_many_patches_on_pieces() {
        let mut versions = vec![b"k|v\n".to_vec()];
        let mut patches = Vec::new();
        for i in 0..50usize {
            let old = versions.last().unwrap().clone();
            let mut new = old.clone();
            let row = format!("{i}|value {i}\n").into_bytes();
            let at = if i % 3 == 0 { 4 } else { new.len() };
            new.splice(at..at, row.iter().copied());
            let h = hunk(at..at, at..at + row.len());
            patches.push(Patch::decode(&encode(&old, &new, &[h])).unwrap().unwrap());
            versions.push(new);
        }
        let refs: Vec<&Patch> = patches.iter().collect();
        let mut fwd = Pieces::whole(versions[0].len());
        for p in &patches {
            fwd = fwd.apply(p).unwrap();
        }
        assert_eq!(
            fwd.materialize(&versions[0], &refs),
            *versions.last().unwrap()
        );
        let mut back = Pieces::whole(versions.last().unwrap().len());
        let rev: Vec<&Patch> = patches.iter().rev().collect();
        for p in &rev {
            back = back.unapply(p).unwrap();
        }
        assert_eq!(
            back.materialize(versions.last().unwrap(), &rev),
            versions[0]
        );
    }

    #[test]
    fn foreign_patches_go_through_qbsdiff() {
        let old = b"hello world, hello world".repeat(50);
        let mut new = old.clone();
        new[100] = b'X';
        let mut patch = Vec::new();
        qbsdiff::Bsdiff::new(&old, &new)
            .compare(&mut patch)
            .unwrap();
        assert_eq!(apply(&old, &patch).unwrap(), new);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"BSDIFF40",
            b"BSDIFF40\xff\xff\xff\xff\xff\xff\xff\x7f",
        ] {
            assert!(apply(b"x", bad).is_err());
        }
        let patch = encode(b"abc", b"abd", &[hunk(0..3, 0..3)]);
        assert!(
            apply(b"", &patch).is_err(),
            "a patch applied to the wrong base must fail"
        );
    }

    #[test]
    fn pack_uses_xz_only_when_smaller() {
        let small = encode(b"a\n", b"b\n", &[hunk(0..2, 0..2)]);
        assert!(!pack(small.clone()).1);
        let big_new = b"0123456789abcdef|".repeat(10_000);
        let big = encode(b"", &big_new, &[hunk(0..0, 0..big_new.len())]);
        let (stored, is_xz) = pack(big.clone());
        assert_eq!(
            unpack(&stored).unwrap(),
            if is_xz { big } else { stored.clone() }
        );
    }
}
