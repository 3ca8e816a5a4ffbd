//! The hasher of a table index's key set. A full parse (a create, a
//! handle's second commit) puts every key of the table in the set: SipHash
//! took a tenth of a 1-row import at 1M rows (when an import still parsed
//! the head; see `unindexed.rs`). foldhash is several times
//! faster on short keys and still seeded at random once per process, so
//! keys chosen to collide (by another user a mount lets write) cannot be
//! prepared in advance to slow a table's commits.

use std::collections::HashSet;

/// The row keys of a table.
pub type KeySet = HashSet<Vec<u8>, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differing_in_one_byte_or_length_are_apart() {
        let set: KeySet = (0..10_000u32).map(|i| i.to_string().into_bytes()).collect();
        assert_eq!(set.len(), 10_000);
        assert!(set.contains(b"9999".as_slice()) && !set.contains(b"10000".as_slice()));
        let pair: KeySet = [b"1".to_vec(), b"1\0".to_vec()].into_iter().collect();
        assert_eq!(pair.len(), 2);
    }
}
