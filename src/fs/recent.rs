//! Versions read lately, kept decoded: a second `cat` of an old version or
//! an `@as-of` file costs a copy from memory, not a rebuild from deltas.
//! Bounded by bytes (least recently used go first); a version never
//! changes, so an entry is never stale.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// (database, table, version sequence number).
pub type VersionKey = (usize, String, u64);

/// Oldest use first, and the bytes held.
type Held = (VecDeque<(VersionKey, Arc<Vec<u8>>)>, usize);

#[derive(Debug)]
pub struct RecentVersions {
    max_bytes: usize,
    held: Mutex<Held>,
}

impl RecentVersions {
    pub fn new(max_bytes: usize) -> RecentVersions {
        RecentVersions {
            max_bytes,
            held: Mutex::new((VecDeque::new(), 0)),
        }
    }

    pub fn get(&self, key: &VersionKey) -> Option<Arc<Vec<u8>>> {
        let mut g = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let at = g.0.iter().position(|(k, _)| k == key)?;
        let entry = g.0.remove(at)?;
        let data = Arc::clone(&entry.1);
        g.0.push_back(entry);
        Some(data)
    }

    /// Keeps `data` unless it alone would take over a quarter of the budget.
    pub fn put(&self, key: VersionKey, data: Arc<Vec<u8>>) {
        if data.len() > self.max_bytes / 4 {
            return;
        }
        let mut g = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (list, bytes) = &mut *g;
        if list.iter().any(|(k, _)| *k == key) {
            return;
        }
        *bytes += data.len();
        list.push_back((key, data));
        while *bytes > self.max_bytes {
            match list.pop_front() {
                Some((_, old)) => *bytes -= old.len(),
                None => break,
            }
        }
    }

    /// The bytes held now.
    pub fn bytes(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_go_first_and_the_budget_holds() {
        let r = RecentVersions::new(100);
        let v = |n: usize| Arc::new(vec![0u8; n]);
        let k = |s: u64| (0, "t".to_string(), s);
        r.put(k(1), v(20));
        r.put(k(2), v(20));
        r.put(k(3), v(20));
        assert!(r.get(&k(1)).is_some());
        r.put(k(4), v(20));
        r.put(k(5), v(20));
        // 6 x 20 > 100: the least recently used (2, not 1) went.
        r.put(k(6), v(20));
        assert_eq!(r.bytes(), 100);
        assert!(r.get(&k(2)).is_none());
        assert!(r.get(&k(1)).is_some());
        // Too big to keep: not kept, nothing evicted for it.
        r.put(k(7), v(26));
        assert!(r.get(&k(7)).is_none());
        assert_eq!(r.bytes(), 100);
    }
}
