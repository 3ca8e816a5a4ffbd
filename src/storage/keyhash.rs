//! The hasher of a table index's key set. A full parse (the first commit of
//! a process, a create) puts every key of the table in the set: SipHash
//! took a tenth of a 1-row import at 1M rows. Keys are short and come from
//! the table's own writers, who can already do anything to it, so a fast
//! non-keyed hash with a good final mix is enough.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// The row keys of a table.
pub type KeySet = HashSet<Vec<u8>, BuildHasherDefault<KeyHasher>>;

/// A multiply-rotate hash over 8-byte words, finished with MurmurHash3's
/// mix (hashbrown takes both the low and the high bits).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl KeyHasher {
    fn mix(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(K);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.mix(u64::from_le_bytes(a));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(a));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differing_in_one_byte_or_length_hash_apart() {
        let h = |k: &[u8]| {
            let mut s = KeyHasher::default();
            std::hash::Hash::hash(&k.to_vec(), &mut s);
            s.finish()
        };
        assert_ne!(h(b"1"), h(b"1\0"));
        assert_ne!(h(b"12345678"), h(b"12345679"));
        let set: KeySet = (0..10_000u32).map(|i| i.to_string().into_bytes()).collect();
        assert_eq!(set.len(), 10_000);
        assert!(set.contains(b"9999".as_slice()) && !set.contains(b"10000".as_slice()));
    }
}
