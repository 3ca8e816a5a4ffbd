//! The result cache: results by (normalised query, versions of every table
//! the query read). A commit makes a new version, so entries for the old one
//! are never looked up again; they leave by LRU (a byte bound) or by TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ResultSet;
use super::value::Value;

/// (normalised query, [(table, version name)]).
pub type Key = (String, Vec<(String, String)>);

#[derive(Debug)]
struct Entry {
    result: Arc<ResultSet>,
    bytes: usize,
    made: Instant,
    used: u64,
}

#[derive(Debug)]
pub struct ResultCache {
    entries: Mutex<(HashMap<Key, Entry>, usize, u64)>,
    max_bytes: usize,
    ttl: Duration,
}

impl Default for ResultCache {
    fn default() -> Self {
        ResultCache::new(64 << 20, Duration::from_secs(300))
    }
}

/// Approximate memory of a result.
fn size_of(r: &ResultSet) -> usize {
    let cell = |v: &Value| match v {
        Value::Text(t) => 24 + t.len(),
        _ => 24,
    };
    r.rows
        .iter()
        .map(|row| 24 + row.iter().map(cell).sum::<usize>())
        .sum::<usize>()
        + r.columns.iter().map(|c| c.len() + 24).sum::<usize>()
}

impl ResultCache {
    pub fn new(max_bytes: usize, ttl: Duration) -> ResultCache {
        ResultCache {
            entries: Mutex::new((HashMap::new(), 0, 0)),
            max_bytes,
            ttl,
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<ResultSet>> {
        let mut g = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (map, bytes, clock) = &mut *g;
        *clock += 1;
        let now = *clock;
        match map.get_mut(key) {
            Some(e) if e.made.elapsed() < self.ttl => {
                e.used = now;
                Some(Arc::clone(&e.result))
            }
            Some(_) => {
                if let Some(e) = map.remove(key) {
                    *bytes -= e.bytes;
                }
                None
            }
            None => None,
        }
    }

    /// Keeps `result` unless it alone is over a quarter of the bound.
    pub fn put(&self, key: Key, result: Arc<ResultSet>) {
        let size = size_of(&result);
        if size > self.max_bytes / 4 {
            return;
        }
        let mut g = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (map, bytes, clock) = &mut *g;
        *clock += 1;
        while *bytes + size > self.max_bytes {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = map.remove(&oldest) {
                *bytes -= e.bytes;
            }
        }
        *bytes += size;
        if let Some(old) = map.insert(
            key,
            Entry {
                result,
                bytes: size,
                made: Instant::now(),
                used: *clock,
            },
        ) {
            *bytes -= old.bytes;
        }
    }

    /// Approximate memory the cached results hold.
    pub fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
