//! Direct construction of a bzip2 stream that decompresses to `n` zero bytes.
//!
//! Compressing zeros with libbzip2 costs ~7 ns/byte; here the compressed stream is
//! written directly in O(number of blocks + log n) time.
//!
//! How the stream is built (bzip2 format, level 9):
//! * RLE1 turns every 255 zeros into the 5 bytes `00 00 00 00 FB`. A remainder `r < 255`
//!   becomes `00 00 00 00 (r-4)` if `r >= 4`, else `r` bytes `00`. RLE1 state does not
//!   cross block boundaries, so a block holding whole runs, or only the remainder, is
//!   independent of its neighbours; its CRC covers exactly its own zeros.
//! * Full-run blocks hold `(00 00 00 00 c)^m` with `c = 251`, `m <= MAX_RUNS_PER_BLOCK`
//!   (5m RLE1 bytes, far below the 900_000 - 19 limit of level 9). At most one more block
//!   holds the remainder as `(00 00 00 00 c)^1` (`c = r-4`) or `00^k`.
//! * BWT of `(0000c)^m`, `c != 0`: the five rotation classes sort as
//!   `0000c < 000c0 < 00c00 < 0c000 < c0000`, so the last column is `c^m 00^(4m)` and
//!   origPtr = 0 (row 0 is the original string). For `00^k` the last column is `00^k`.
//! * MTF + RLE2 and Huffman coding are done on runs of equal bytes, O(1) per run, with
//!   one complete canonical prefix code (2 identical tables, all selectors 0).

/// Full 255-zero RLE1 runs per block: 5 * 170_000 = 850_000 RLE1 bytes < 899_981.
const MAX_RUNS_PER_BLOCK: u64 = 170_000;
/// Zeros in one full RLE1 run (`00 00 00 00 FB`).
const RUN: u64 = 255;
const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
const END_MAGIC: u64 = 0x1772_4538_5090;
const CRC_POLY: u32 = 0x04C1_1DB7;

/// MSB-first bit writer. Invariant: `nbits < 8` between calls, so `acc` holds at most
/// 7 + 32 pending bits.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    fn new(capacity: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(capacity),
            acc: 0,
            nbits: 0,
        }
    }

    /// Appends the low `count` bits of `value` (`count <= 32`), most significant first.
    fn put(&mut self, count: u32, value: u64) {
        let count = count.min(32);
        let mask = (1u64 << count) - 1;
        self.acc = (self.acc << count) | (value & mask);
        self.nbits += count;
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.out.push((self.acc >> self.nbits) as u8);
        }
        self.acc &= (1u64 << self.nbits) - 1;
    }

    /// Appends a 48-bit field (two 24-bit halves).
    fn put48(&mut self, value: u64) {
        self.put(24, value >> 24);
        self.put(24, value);
    }

    /// Appends every bit written to `other` (its bytes, then its pending bits).
    fn append(&mut self, other: &BitWriter) {
        let mut chunks = other.out.chunks_exact(4);
        for c in &mut chunks {
            self.put(32, u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])));
        }
        for &b in chunks.remainder() {
            self.put(8, u64::from(b));
        }
        self.put(other.nbits, other.acc);
    }

    /// Pads with zero bits to a byte boundary and returns the bytes.
    fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.put(8 - self.nbits, 0);
        }
        self.out
    }
}

/// Linear GF(2) operator on 32-bit CRC states: column `i` is the image of `1 << i`.
type Op = [u32; 32];

const fn apply(op: &Op, v: u32) -> u32 {
    let (mut r, mut i) = (0u32, 0);
    while i < 32 {
        r ^= op[i] & 0u32.wrapping_sub((v >> i) & 1);
        i += 1;
    }
    r
}

/// `ZERO_POW[j]` = Z^(2^j), where Z(s) = s * x^8 mod P is the (linear) effect of feeding
/// one zero byte to the CRC register. Built at compile time by repeated squaring.
const ZERO_POW: [Op; 64] = {
    let mut pows = [[0u32; 32]; 64];
    let mut i = 0;
    while i < 32 {
        let mut s = 1u32 << i;
        let mut b = 0;
        while b < 8 {
            s = if s & 0x8000_0000 != 0 {
                (s << 1) ^ CRC_POLY
            } else {
                s << 1
            };
            b += 1;
        }
        pows[0][i] = s;
        i += 1;
    }
    let mut j = 1;
    while j < 64 {
        let mut i = 0;
        while i < 32 {
            pows[j][i] = apply(&pows[j - 1], pows[j - 1][i]);
            i += 1;
        }
        j += 1;
    }
    pows
};

/// CRC-32/BZIP2 (poly 0x04C11DB7, MSB-first, init and final xor 0xFFFFFFFF) of `k` zero
/// bytes in O(log k): the result is Z^k(0xFFFFFFFF) ^ 0xFFFFFFFF, and Z^k is the product
/// of the precomputed powers Z^(2^j) for the set bits j of k (they commute).
fn crc_of_zeros(k: u64) -> u32 {
    let mut state = 0xFFFF_FFFFu32;
    for (j, op) in ZERO_POW.iter().enumerate() {
        if (k >> j) & 1 == 1 {
            state = apply(op, state);
        }
    }
    !state
}

/// Emits a run of `z >= 1` MTF zeros as RUNA (0) / RUNB (1) digits, bijective base 2,
/// least significant first (libbzip2 compress.c, generateMTFValues).
fn push_zero_run(syms: &mut Vec<u16>, z: u64) {
    if z == 0 {
        return;
    }
    let mut z = z - 1;
    loop {
        syms.push((z & 1) as u16);
        if z < 2 {
            break;
        }
        z = (z - 2) / 2;
    }
}

/// Appends one complete block to `w`. Its BWT last column is
/// `last_col` (runs of `(byte, count)`, count >= 1), origPtr 0, block CRC `crc`.
fn write_block(w: &mut BitWriter, crc: u32, last_col: &[(u8, u64)]) {
    // Used bytes, ascending; index in `used` is the byte's MTF symbol index.
    let mut in_use = [false; 256];
    for &(b, _) in last_col {
        in_use[usize::from(b)] = true;
    }
    let used: Vec<u8> = (0..=255u8).filter(|&b| in_use[usize::from(b)]).collect();
    let seq_of = |b: u8| used.iter().position(|&u| u == b).unwrap_or(0);

    // MTF + RLE2, one step per run: only the first byte of a run can be at position > 0.
    let mut mtf: Vec<usize> = (0..used.len()).collect();
    let mut syms: Vec<u16> = Vec::new();
    let mut zpend = 0u64;
    for &(b, count) in last_col {
        let s = seq_of(b);
        let pos = mtf.iter().position(|&x| x == s).unwrap_or(0);
        if pos == 0 {
            zpend += count;
        } else {
            push_zero_run(&mut syms, zpend);
            syms.push(pos as u16 + 1);
            mtf.remove(pos);
            mtf.insert(0, s);
            zpend = count - 1;
        }
    }
    push_zero_run(&mut syms, zpend);
    let alpha = used.len() + 2; // RUNA, RUNB, MTF 1..=nInUse-1, EOB
    syms.push((alpha - 1) as u16); // EOB

    // Complete prefix code: with L = ceil(log2 alpha), the first 2^L - alpha symbols get
    // length L-1, the rest length L (3 -> 1,2,2; 4 -> 2,2,2,2). Kraft sum is exactly 1.
    let big = usize::BITS - (alpha - 1).leading_zeros(); // L
    let short = (1usize << big) - alpha;
    let lens: Vec<u32> = (0..alpha)
        .map(|i| if i < short { big - 1 } else { big })
        .collect();
    // Canonical codes in bzip2 order (BZ2_hbAssignCodes: per length, ascending symbols get
    // consecutive codes, shifted left between lengths): symbols 0..short get codes
    // 0..short of length L-1, then symbol i >= short gets 2*short + (i - short).
    let code = |i: usize| (if i < short { i } else { i + short }) as u64;

    w.put48(BLOCK_MAGIC);
    w.put(32, u64::from(crc));
    w.put(1, 0); // not randomised
    w.put(24, 0); // origPtr
    // Symbol map: 16 range bits, then 16 byte bits per used range (bit 15 = first).
    let ranges = used.iter().fold(0u64, |a, &b| a | 0x8000 >> (b >> 4));
    w.put(16, ranges);
    for r in (0..16u8).filter(|&r| ranges & (0x8000 >> r) != 0) {
        let in_range = used.iter().filter(|&&b| b >> 4 == r);
        w.put(16, in_range.fold(0u64, |a, &b| a | 0x8000 >> (b & 15)));
    }
    const GROUPS: usize = 2; // decoder minimum; both tables identical
    let selectors = syms.len().div_ceil(50); // here syms.len() <= 41: 1 selector
    w.put(3, GROUPS as u64);
    w.put(15, selectors as u64);
    for _ in 0..selectors {
        w.put(1, 0); // MTF-coded selector 0
    }
    for _ in 0..GROUPS {
        let mut cur = lens[0];
        w.put(5, u64::from(cur));
        for &len in &lens {
            while cur != len {
                w.put(2, if cur < len { 0b10 } else { 0b11 });
                cur = if cur < len { cur + 1 } else { cur - 1 };
            }
            w.put(1, 0);
        }
    }
    for &s in &syms {
        w.put(lens[usize::from(s)], code(usize::from(s)));
    }
}

/// Returns a complete bzip2 stream ("BZh9" ... end-of-stream marker, combined CRC, padding) that decompresses to `n` zero bytes.
pub fn zero_stream(n: u64) -> Vec<u8> {
    let runs = n / RUN;
    let rem = n % RUN;
    let full_blocks = runs / MAX_RUNS_PER_BLOCK;
    let partial_runs = runs % MAX_RUNS_PER_BLOCK;
    // ~31 bytes per block; saturate and cap the up-front reservation.
    let estimate = full_blocks
        .saturating_add(2)
        .saturating_mul(40)
        .saturating_add(16);
    let mut w = BitWriter::new(estimate.min(1 << 24) as usize);
    w.put(32, u64::from(u32::from_be_bytes(*b"BZh9")));
    let mut combined = 0u32;

    if full_blocks > 0 {
        // All full blocks are bit-identical: encode once, replay.
        let crc = crc_of_zeros(MAX_RUNS_PER_BLOCK * RUN);
        let mut block = BitWriter::new(64);
        write_block(
            &mut block,
            crc,
            &[(251, MAX_RUNS_PER_BLOCK), (0, 4 * MAX_RUNS_PER_BLOCK)],
        );
        for _ in 0..full_blocks {
            w.append(&block);
            combined = combined.rotate_left(1) ^ crc;
        }
    }
    if partial_runs > 0 {
        let crc = crc_of_zeros(partial_runs * RUN);
        write_block(&mut w, crc, &[(251, partial_runs), (0, 4 * partial_runs)]);
        combined = combined.rotate_left(1) ^ crc;
    }
    if rem > 0 {
        let crc = crc_of_zeros(rem);
        match rem {
            1..=3 => write_block(&mut w, crc, &[(0, rem)]), // RLE1: 00^rem
            4 => write_block(&mut w, crc, &[(0, 5)]),       // RLE1: 00 00 00 00 00
            _ => write_block(&mut w, crc, &[((rem - 4) as u8, 1), (0, 4)]), // 0000(r-4)
        }
        combined = combined.rotate_left(1) ^ crc;
    }

    w.put48(END_MAGIC);
    w.put(32, u64::from(combined));
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    fn check(n: u64) {
        let mut out = Vec::new();
        let data = zero_stream(n);
        bzip2::read::BzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .expect("decode");
        assert_eq!(out.len() as u64, n, "length for n={n}");
        assert!(out.iter().all(|&b| b == 0), "non-zero byte for n={n}");
    }

    #[test]
    fn crc_matches_bitwise() {
        let mut c = 0xFFFF_FFFFu32; // register after k zero bytes, fed bit by bit
        for k in 0..5000u64 {
            assert_eq!(crc_of_zeros(k), !c, "k={k}");
            for _ in 0..8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ CRC_POLY
                } else {
                    c << 1
                };
            }
        }
    }

    #[test]
    fn decodes_listed_sizes() {
        let per_block = MAX_RUNS_PER_BLOCK * RUN; // block boundaries
        let listed = [
            254, 255, 256, 259, 260, 509, 510, 511, 765, 1020, 840_000, 8_600_000,
        ];
        let big = [46_000_000, per_block - 1, per_block, per_block + 4];
        (0..=600).chain(listed).chain(big).for_each(check);
    }

    #[test]
    fn decodes_pseudo_random_sizes() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..200u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Mostly 8..21-bit sizes, every 20th up to 2^27.
            let bits = if i % 20 == 0 { 27 } else { 8 + i % 14 };
            check((x >> 33) & ((1u64 << bits) - 1));
        }
    }

    #[test]
    fn output_is_small() {
        // One full-run block + one remainder block fit in 120 bytes; every further block
        // (43.35 MB of zeros) costs a fixed ~33 bytes, so 2^32 needs ~3.4 KB.
        let per_block = MAX_RUNS_PER_BLOCK * RUN;
        for n in [0u64, 1, 4, 254, 255, 840_000, 8_600_000, per_block + 254] {
            assert!(zero_stream(n).len() <= 120, "n={n}");
        }
        for n in [(1u64 << 32) - 1, 1 << 40] {
            let (len, blocks) = (zero_stream(n).len() as u64, n / per_block + 2);
            println!("n={n}: {len} bytes");
            assert!(len <= 14 + 40 * blocks, "n={n} len={len}");
        }
        println!("n=840000: {} bytes", zero_stream(840_000).len());
        println!("n=8600000: {} bytes", zero_stream(8_600_000).len());
    }

    #[test]
    fn system_bzip2_decodes() {
        let probe = Command::new("bzip2")
            .arg("--help")
            .stderr(Stdio::null())
            .status();
        if probe.is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "bzip2 binary missing under CI"
            );
            println!("bzip2 binary not on PATH; skipping");
            return;
        }
        for n in [
            0u64, 1, 3, 4, 5, 254, 255, 256, 840_000, 8_600_000, 46_000_000,
        ] {
            let mut cmd = Command::new("bzip2");
            cmd.arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn bzip2");
            let (mut stdin, data) = (child.stdin.take().expect("stdin"), zero_stream(n));
            let writer = std::thread::spawn(move || stdin.write_all(&data));
            let out = child.wait_with_output().expect("bzip2 output");
            writer.join().expect("join").expect("write");
            assert!(out.status.success(), "bzip2 -dc failed for n={n}");
            assert_eq!(out.stdout.len() as u64, n, "n={n}");
            assert!(out.stdout.iter().all(|&b| b == 0), "n={n}");
        }
    }
}
