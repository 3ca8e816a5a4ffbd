//! One standard bzip2 stream compressed on every core.
//!
//! libbzip2 compresses at ~7-10 MB/s on one core, so the whole table that a
//! first version's delta carries (89 MB at 1M rows) took most of a create.
//! A bzip2 stream is a header (`BZh9`), independent blocks, and a trailer
//! (end magic and a CRC combined from the blocks' CRCs). So the input is cut
//! into pieces small enough to be one block each, each piece is compressed as
//! a stream of its own (in parallel), and the blocks are spliced bit by bit
//! into one stream: what a one-stream decoder (bspatch, `bzip2 -d`) expects.
//! The blocks are cut at other places than a sequential libbzip2 would cut
//! them, so the bytes differ; the decompressed content does not.

use std::io::Write;

use rayon::prelude::*;

const END_MAGIC: u64 = 0x1772_4538_5090;
/// Input bytes per block. RLE1 grows input by at most 5/4 (a run of 4 equal
/// bytes takes a count byte), and a level-9 block holds 899_981 RLE1 bytes:
/// 700_000 * 5/4 = 875_000 keeps every piece to one block.
const PIECE: usize = 700_000;
/// Below this, one libbzip2 stream (as before): no splicing for small deltas.
pub const PARALLEL_MIN: usize = 4 * PIECE;

/// A stream of one block, level 9, of `data` (at most [`PIECE`] bytes).
fn one_block(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    let mut enc = bzip2::write::BzEncoder::new(&mut out, bzip2::Compression::new(9));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    let _ = enc.finish();
    out
}

/// `n <= 57` bits of `b` from bit `pos` (MSB first).
fn bits_at(b: &[u8], pos: usize, n: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..n as usize {
        let p = pos + i;
        v = (v << 1) | u64::from((b[p / 8] >> (7 - p % 8)) & 1);
    }
    v
}

/// The block of a one-block stream: its CRC and the bit where the end magic
/// starts (the block runs from bit 32 to there). `None` when that end cannot
/// be told without doubt.
fn block_of(stream: &[u8]) -> Option<(u32, usize)> {
    let total = stream.len() * 8;
    if total < 32 + 48 + 32 + 80 {
        return None;
    }
    let crc = bits_at(stream, 80, 32) as u32;
    let mut found = None;
    for pad in 0..8usize {
        let at = total - 80 - pad;
        if bits_at(stream, at, 48) == END_MAGIC
            && bits_at(stream, at + 48, 32) as u32 == crc
            && bits_at(stream, total - pad, pad as u32) == 0
        {
            if found.is_some() {
                return None;
            }
            found = Some(at);
        }
    }
    found.map(|at| (crc, at))
}

/// MSB-first bit writer.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 48);
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.n += n;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
    }

    /// Bits `from..to` of `b`, `from` a multiple of 8.
    fn copy(&mut self, b: &[u8], from: usize, to: usize) {
        let (whole, rest) = (to / 8, (to % 8) as u32);
        if self.n == 0 {
            self.out.extend_from_slice(&b[from / 8..whole]);
        } else {
            let keep = self.n;
            self.out.reserve(whole - from / 8);
            for &byte in &b[from / 8..whole] {
                self.acc = (self.acc << 8) | u64::from(byte);
                self.out.push((self.acc >> keep) as u8);
            }
        }
        if rest > 0 {
            self.put(u64::from(b[whole] >> (8 - rest)), rest);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put(0, pad);
        }
        self.out
    }
}

/// Compresses `data` into one bzip2 stream (level 9) on all cores; `done(n)`
/// is called as pieces of `n` input bytes are compressed. Returns `None` when
/// a piece's stream could not be read apart (the caller compresses the usual
/// way then).
pub fn compress(data: &[u8], done: &(dyn Fn(u64) + Sync)) -> Option<Vec<u8>> {
    let streams: Vec<Vec<u8>> = data
        .par_chunks(PIECE)
        .map(|piece| {
            let s = one_block(piece);
            done(piece.len() as u64);
            s
        })
        .collect();
    let mut w = Bits {
        out: Vec::with_capacity(streams.iter().map(Vec::len).sum::<usize>() + 16),
        acc: 0,
        n: 0,
    };
    w.out.extend_from_slice(b"BZh9");
    let mut combined = 0u32;
    for s in &streams {
        let (crc, end) = block_of(s)?;
        combined = combined.rotate_left(1) ^ crc;
        w.copy(s, 32, end);
    }
    w.put(END_MAGIC, 48);
    w.put(u64::from(combined), 32);
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn unbzip2(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // One stream only, as bspatch reads it.
        bzip2::read::BzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Text-like, with long runs now and then (RLE1's worst case).
                if (i / 5000) % 7 == 3 {
                    b'a'
                } else {
                    b"id|name,\"x\"\n0123456789abcdefghij"[(x % 32) as usize]
                }
            })
            .collect()
    }

    #[test]
    fn spliced_streams_decode_as_one() {
        for (n, seed) in [
            (1, 1),
            (PIECE - 1, 2),
            (PIECE, 3),
            (PIECE + 1, 4),
            (3 * PIECE + 12_345, 5),
        ] {
            let data = sample(n, seed);
            let counted = std::sync::atomic::AtomicU64::new(0);
            let z = compress(&data, &|k| {
                counted.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(unbzip2(&z), data, "n = {n}");
            assert_eq!(counted.into_inner(), n as u64);
        }
    }

    #[test]
    fn worst_case_runs_stay_one_block() {
        // Runs of exactly 4 equal bytes grow most under RLE1.
        let data: Vec<u8> = (0..PIECE).map(|i| (i / 4 % 251) as u8).collect();
        let s = one_block(&data);
        let (crc, end) = block_of(&s).unwrap();
        // One block: the stream's combined CRC is the block's own.
        assert_eq!(bits_at(&s, end + 48, 32) as u32, crc);
        let z = compress(&[data.clone(), data.clone()].concat(), &|_| {}).unwrap();
        assert_eq!(unbzip2(&z), [data.clone(), data].concat());
    }
}
