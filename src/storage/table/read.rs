//! The read path: versions and their metadata, rebuilding an old version
//! from the nearest anchor (keyframe, chain start, checkpoint or head) with
//! a cost model, the caches that serve it (decoded deltas, checkpoints,
//! recently rebuilt versions), and the head as an open file.

use std::sync::Arc;

use super::super::delta::{self, Patch, Pieces};
use super::super::dict::Action;
use super::super::error::{Result, StorageError};
use super::super::io::read_file;
use super::super::log::{LogEntry, content_hash};
use super::prune::{chain_start, reads_keyframe};
use super::{CURRENT, State, Table, VersionInfo, lock_poisoned};

/// Decoded deltas, shared by reads: decoding costs ~25 us a delta, composing
/// a decoded one ~1 us. Bounded by bytes; cleared whole when full.
#[derive(Debug, Default)]
pub(super) struct PatchCache {
    patches: std::collections::HashMap<String, Arc<Patch>>,
    bytes: usize,
}

const PATCH_CACHE_BYTES: usize = 64 << 20;

/// Rebuilt old versions kept per table (by name, least recently used
/// first out), all together at most this many bytes, each at most half.
const RECENT_BYTES: usize = 64 << 20;

/// The largest decoded anchor (keyframe or chain start) a table keeps for
/// later reads near it; a larger one is decoded again when needed (at 1M
/// rows a keyframe is about 90 MB: kept, it would stay for the daemon's
/// life).
const ANCHOR_BYTES: usize = 32 << 20;

/// Whole old versions by log index, with the version's name.
pub(super) type Checkpoints = std::collections::BTreeMap<usize, (String, Arc<Vec<u8>>)>;

/// Versions between in-memory checkpoints, and their memory bound per table.
const CHECKPOINT_EVERY: usize = 100;
const CHECKPOINT_BYTES: usize = 64 << 20;

/// (device, inode, mtime nanoseconds, mtime seconds, head sequence number).
pub(super) type FileStamp = (u64, u64, i64, i64, u64);

impl Table {
    pub(super) fn snapshot(&self) -> Result<State> {
        self.refresh(false)?;
        Ok(lock_poisoned(self.state.read()).clone())
    }

    /// Sequence number of the head (0 when the table has no version).
    pub fn head_seq(&self) -> Result<u64> {
        Ok(self.snapshot()?.log.len() as u64)
    }

    /// The head's bytes and its sequence number.
    pub fn head(&self) -> Result<(u64, Arc<Vec<u8>>)> {
        let s = self.snapshot()?;
        Ok((s.log.len() as u64, s.head))
    }

    /// The version that was the head at time `ts_us` (UTC microseconds): the
    /// last one committed at or before it; 0 when the table had none yet.
    /// A frame's versions share one timestamp, so a time is always a frame
    /// boundary.
    pub fn seq_at(&self, ts_us: u64) -> Result<u64> {
        let s = self.snapshot()?;
        Ok(s.log.partition_point(|e| e.ts_us <= ts_us) as u64)
    }

    /// Column names of the head (empty when dropped).
    pub fn columns(&self) -> Result<Vec<String>> {
        Ok(self.snapshot()?.columns.as_ref().clone())
    }

    /// True when the last version dropped the table.
    pub fn is_dropped(&self) -> Result<bool> {
        let s = self.snapshot()?;
        Ok(s.log.last().is_none_or(|e| e.action == Action::Drop as u32))
    }

    pub fn versions(&self) -> Result<Vec<VersionInfo>> {
        let s = self.snapshot()?;
        Ok((1..=s.log.len() as u64)
            .filter_map(|q| self.info(&s.log, q))
            .collect())
    }

    pub fn version(&self, seq: u64) -> Result<VersionInfo> {
        let s = self.snapshot()?;
        self.info(&s.log, seq).ok_or_else(|| self.no_version(seq))
    }

    /// Version `seq` without looking for newer commits first when this
    /// handle knows it already: a committed version never changes, so a
    /// listing's stat of each version costs no file system call.
    pub fn known_version(&self, seq: u64) -> Result<VersionInfo> {
        let known = {
            let st = lock_poisoned(self.state.read());
            self.info(&st.log, seq)
        };
        match known {
            Some(v) => Ok(v),
            None => self.version(seq),
        }
    }

    /// The sequence number of the version called `name`. Names sort as
    /// their commit times, which increase along the log, so this is a
    /// binary search (a listing that stats every version stays linear);
    /// a log out of order (never written by this engine) is scanned.
    pub fn seq_of(&self, name: &str) -> Result<Option<u64>> {
        let s = self.snapshot()?;
        let found = s
            .log
            .binary_search_by(|e| e.name().as_str().cmp(name))
            .ok()
            .or_else(|| s.log.iter().position(|e| e.name() == name));
        Ok(found.map(|i| i as u64 + 1))
    }

    /// Where version `seq` differs from version `seq - 1`, when this handle
    /// committed it and nothing since: (bytes of a common prefix, bytes of
    /// a common suffix). Lets a reader that holds `seq - 1` derive `seq`
    /// without comparing the two contents.
    pub fn change_from_previous(&self, seq: u64) -> Option<(usize, usize)> {
        match *lock_poisoned(self.last_change.lock()) {
            Some((s, prefix, suffix)) if s == seq => Some((prefix, suffix)),
            _ => None,
        }
    }

    /// The exact bytes of version `seq`, checked against its hash.
    pub fn read_version(&self, seq: u64) -> Result<Vec<u8>> {
        self.read_version_shared(seq)
            .map(|b| Arc::try_unwrap(b).unwrap_or_else(|shared| shared.as_ref().clone()))
    }

    /// `read_version`, sharing the bytes with the head or with the table's
    /// recently rebuilt versions (no copy): a second read of the same old
    /// version costs a lookup.
    pub fn read_version_shared(&self, seq: u64) -> Result<Arc<Vec<u8>>> {
        match self.read_version_once(seq) {
            // Another process may have pruned since this handle read the
            // floor: a missing file then means "pruned", not damage.
            Err(StorageError::Corrupt { .. } | StorageError::Io { .. }) if self.floor_moved() => {
                self.read_version_once(seq)
            }
            r => r,
        }
    }

    fn read_version_once(&self, seq: u64) -> Result<Arc<Vec<u8>>> {
        let s = self.snapshot()?;
        if seq == 0 || seq > s.log.len() as u64 {
            return Err(self.no_version(seq));
        }
        if (seq - 1) < s.floor as u64 {
            return Err(self.pruned(seq, s.floor));
        }
        if seq == s.log.len() as u64 {
            return Ok(s.head);
        }
        // Another process may have pruned: one small read (none is there
        // until a prune) keeps every handle's answer the same.
        if self.floor_moved() {
            return self.read_version_once(seq);
        }
        // A version's name is unique and its bytes never change: reads of the
        // same old version (an `@as-of` time, a version file) reuse them.
        let name = s.log[seq as usize - 1].name();
        let mut recent = lock_poisoned(self.recent.lock());
        if let Some(at) = recent.iter().position(|(n, _)| *n == name) {
            // Most recently used last.
            if let Some(entry) = recent.remove(at) {
                let bytes = Arc::clone(&entry.1);
                recent.push_back(entry);
                return Ok(bytes);
            }
        }
        drop(recent);
        // Start from the nearest whole version in memory: the head or a checkpoint.
        let target = seq as usize - 1;
        let nearest = {
            let cps = lock_poisoned(self.checkpoints.lock());
            let below = cps.range(..=target).next_back();
            let above = cps.range(target..).next();
            [below, above]
                .into_iter()
                .flatten()
                .filter(|(i, (n, _))| s.log.get(**i).is_some_and(|e| e.name() == *n))
                .min_by_key(|(i, _)| i.abs_diff(target))
                .map(|(i, (_, b))| (*i, Arc::clone(b)))
        };
        let head_index = s.log.len() - 1;
        let bytes = Arc::new(match nearest {
            Some((i, b)) if i.abs_diff(target) < head_index - target && i >= s.floor => {
                self.reconstruct(&s.log, s.floor, Some((i as u64 + 1, b.as_slice())), seq)?
            }
            _ => self.reconstruct(
                &s.log,
                s.floor,
                Some((s.log.len() as u64, s.head.as_slice())),
                seq,
            )?,
        });
        if bytes.len() <= RECENT_BYTES / 2 {
            recent = lock_poisoned(self.recent.lock());
            let mut held: usize = recent.iter().map(|(_, b)| b.len()).sum::<usize>() + bytes.len();
            while held > RECENT_BYTES {
                match recent.pop_front() {
                    Some((_, old)) => held -= old.len(),
                    None => break,
                }
            }
            recent.push_back((name, Arc::clone(&bytes)));
        }
        Ok(bytes)
    }

    fn load_patch(&self, e: &LogEntry) -> Result<Arc<Patch>> {
        let file = e.delta_file();
        if let Some(p) = lock_poisoned(self.patches.lock()).patches.get(&file) {
            return Ok(Arc::clone(p));
        }
        let path = self.path(&file);
        let stored = self.stored_delta(e)?;
        let bad = |d: String| StorageError::corrupt(&path, d);
        let raw = delta::unpack(&stored).map_err(|x| bad(x.to_string()))?;
        let patch = Arc::new(
            Patch::decode(&raw)
                .map_err(|x| bad(x.to_string()))?
                .ok_or_else(|| bad("not a ReedBase delta (foreign bsdiff layout)".into()))?,
        );
        if patch.new_len() as u64 != e.size {
            return Err(bad(format!(
                "makes {} bytes, the log says {}",
                patch.new_len(),
                e.size
            )));
        }
        let mut cache = lock_poisoned(self.patches.lock());
        let cost = patch.heap_bytes();
        if cache.bytes + cost > PATCH_CACHE_BYTES {
            cache.patches.clear();
            cache.bytes = 0;
        }
        cache.bytes += cost;
        cache.patches.insert(file, Arc::clone(&patch));
        Ok(patch)
    }

    /// Estimated microseconds to go through the deltas of `entries`: ~25 to
    /// decode one, ~2 to compose one already decoded.
    fn chain_cost(&self, entries: &[LogEntry]) -> usize {
        let cache = lock_poisoned(self.patches.lock());
        entries
            .iter()
            .map(|e| {
                if cache.patches.contains_key(&e.delta_file()) {
                    2
                } else {
                    25
                }
            })
            .sum()
    }

    /// Decodes the deltas of the last `versions` versions into the cache, so
    /// later reads of old versions (`@as-of`, `@versions/`) start warm. A
    /// daemon calls it in the background after mounting; bounded by the
    /// cache's byte limit. Returns how many deltas it decoded.
    pub fn prefetch_history(&self, versions: usize) -> Result<usize> {
        self.snapshot()?;
        self.floor_moved();
        let s = lock_poisoned(self.state.read()).clone();
        // Nothing below the floor is stored.
        let from = s.log.len().saturating_sub(versions).max(s.floor);
        let entries = &s.log[from..];
        let mut decoded = 0;
        for chunk in entries.chunks(256) {
            if lock_poisoned(self.patches.lock()).bytes > PATCH_CACHE_BYTES / 2 {
                break;
            }
            decoded += self.load_patches(chunk)?.len();
        }
        self.build_checkpoints(&s, s.log.len() - from)?;
        Ok(decoded)
    }

    /// Walks back from the head over the decoded deltas and keeps a whole
    /// version every `CHECKPOINT_EVERY` (fewer for big tables, within
    /// `CHECKPOINT_BYTES`), so a read of any old version composes at most
    /// about half that many deltas. Stops at the first delta not decoded.
    /// `covered`: the versions back from the head whose deltas were
    /// decoded (the checkpoints' spacing is sized to those, not the log).
    fn build_checkpoints(&self, s: &State, covered: usize) -> Result<()> {
        let n = s.log.len();
        if n < 2 * CHECKPOINT_EVERY || s.head.is_empty() {
            return Ok(());
        }
        let every = CHECKPOINT_EVERY.max(covered * s.head.len() / CHECKPOINT_BYTES + 1);
        let mut anchor: Arc<Vec<u8>> = Arc::clone(&s.head);
        let mut pieces = Pieces::whole(anchor.len());
        let mut used: Vec<Arc<Patch>> = Vec::new();
        let mut made = std::collections::BTreeMap::new();
        // Entry i's delta turns version i (index i - 1) into version i + 1.
        for i in (1..n).rev() {
            let file = s.log[i].delta_file();
            let Some(patch) = lock_poisoned(self.patches.lock())
                .patches
                .get(&file)
                .cloned()
            else {
                break; // not decoded: stop here
            };
            pieces = pieces.unapply(&patch).map_err(|x| self.damaged(x))?;
            used.push(patch);
            if (n - i).is_multiple_of(every) {
                let refs: Vec<&Patch> = used.iter().map(|p| &**p).collect();
                let bytes = pieces.materialize(&anchor, &refs);
                if content_hash(&bytes) != s.log[i - 1].hash {
                    return Err(StorageError::corrupt(
                        &self.dir,
                        format!("version {i} rebuilt from the deltas does not match its hash"),
                    ));
                }
                anchor = Arc::new(bytes);
                made.insert(i - 1, (s.log[i - 1].name(), Arc::clone(&anchor)));
                pieces = Pieces::whole(anchor.len());
                used.clear();
            }
        }
        *lock_poisoned(self.checkpoints.lock()) = made;
        Ok(())
    }

    /// Loads and decodes the deltas of `entries`, in order. Decoding is
    /// independent per delta, so a long walk uses every core.
    fn load_patches(&self, entries: &[LogEntry]) -> Result<Vec<Arc<Patch>>> {
        use rayon::prelude::*;
        if entries.len() < 32 {
            return entries.iter().map(|e| self.load_patch(e)).collect();
        }
        entries.par_iter().map(|e| self.load_patch(e)).collect()
    }

    fn load_keyframe(&self, e: &LogEntry) -> Result<Vec<u8>> {
        let path = self.path(&e.keyframe_file());
        let stored = read_file(&*self.ctx.io, &path).map_err(StorageError::referenced)?;
        delta::unpack(&stored).map_err(|x| StorageError::corrupt(&path, x.to_string()))
    }

    /// Rebuilds version `seq` from the nearest anchor: a keyframe, the start
    /// of a chain (a version whose base was empty), the floor (log index
    /// `floor`: nothing before it is stored), or `known` bytes of some
    /// version (the head, or a stale `current.csv`), walking backwards with
    /// the removed bytes each delta carries when that is shorter.
    pub(super) fn reconstruct(
        &self,
        log: &[LogEntry],
        floor: usize,
        known: Option<(u64, &[u8])>,
        seq: u64,
    ) -> Result<Vec<u8>> {
        let target = (seq - 1) as usize;
        if target < floor {
            return Err(self.pruned(seq, floor));
        }
        // Stored anchor: the latest i <= target that is a keyframe, follows
        // an empty version, or is the floor.
        let stored = (floor..=target)
            .rev()
            .find(|&i| i == floor || log[i].keyframe || chain_start(log, i))
            .unwrap_or(floor);
        // Bytes known below the floor cannot be walked forwards from.
        let known = known.filter(|(q, _)| *q as usize > floor);
        // Cost model, in microseconds measured on the reference machine:
        // decoding a delta ~25 (composing a decoded one ~2); decoding a whole
        // table ~1 per 100 bytes from a keyframe (XZ), ~1 per 30 bytes from a
        // chain start (bzip2).
        let chain = |range: std::ops::Range<usize>| self.chain_cost(&log[range]);
        let cached = lock_poisoned(self.anchor.lock())
            .as_ref()
            .filter(|(i, _)| *i == stored)
            .map(|(_, b)| Arc::clone(b));
        let from_keyframe = reads_keyframe(log, floor, stored);
        let decode = match (&cached, from_keyframe) {
            (Some(_), _) => 0,
            (None, true) => log[stored].size as usize / 100,
            (None, false) => log[stored].size as usize / 30,
        };
        let stored_cost = decode + chain(stored + 1..target + 1);
        let known = known.map(|(q, b)| ((q - 1) as usize, b));
        let bytes = match known {
            Some((k, bytes)) if k >= target && chain(target + 1..k + 1) < stored_cost => {
                let mut patches = self.load_patches(&log[target + 1..=k])?;
                patches.reverse();
                let mut pieces = Pieces::whole(bytes.len());
                for p in &patches {
                    pieces = pieces.unapply(p).map_err(|x| self.damaged(x))?;
                }
                pieces.materialize(bytes, &patches.iter().map(|p| &**p).collect::<Vec<_>>())
            }
            _ => {
                let (anchor, first): (Arc<Vec<u8>>, usize) = match known {
                    Some((k, bytes)) if k < target && chain(k + 1..target + 1) < stored_cost => {
                        (Arc::new(bytes.to_vec()), k + 1)
                    }
                    _ => {
                        let anchor = match cached {
                            Some(b) => b,
                            None => {
                                let b = Arc::new(if from_keyframe {
                                    self.load_keyframe(&log[stored])?
                                } else {
                                    // A chain start: its delta applies to nothing.
                                    self.load_patch(&log[stored])?
                                        .apply(&[])
                                        .map_err(|x| self.damaged(x))?
                                });
                                if b.len() <= ANCHOR_BYTES {
                                    *lock_poisoned(self.anchor.lock()) =
                                        Some((stored, Arc::clone(&b)));
                                }
                                b
                            }
                        };
                        (anchor, stored + 1)
                    }
                };
                let patches = self.load_patches(&log[first..=target])?;
                let mut pieces = Pieces::whole(anchor.len());
                for p in &patches {
                    pieces = pieces.apply(p).map_err(|x| self.damaged(x))?;
                }
                pieces.materialize(&anchor, &patches.iter().map(|p| &**p).collect::<Vec<_>>())
            }
        };
        if content_hash(&bytes) != log[target].hash {
            return Err(StorageError::corrupt(
                &self.dir,
                format!("version {seq} rebuilt from the deltas does not match its hash"),
            ));
        }
        Ok(bytes)
    }

    /// Waits until `current.csv` on disk holds the head.
    pub fn flush(&self) {
        if let Some(w) = &self.head_writer {
            w.flush();
        }
    }

    /// An open `current.csv` that holds exactly the head, with the head's
    /// sequence number; `None` when the file does not match (another
    /// process is between its commit and its file write). For serving reads
    /// from the backing file itself (FUSE passthrough).
    pub fn head_file(&self) -> Result<Option<(std::fs::File, u64)>> {
        use std::os::unix::fs::MetadataExt;
        self.flush();
        let (seq, head) = self.head()?;
        let path = self.path(CURRENT);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("open", &path, e)),
        };
        let m = file
            .metadata()
            .map_err(|e| StorageError::io("stat", &path, e))?;
        if m.len() != head.len() as u64 {
            return Ok(None);
        }
        let stamp = (m.dev(), m.ino(), m.mtime_nsec(), m.mtime(), seq);
        let mut verified = lock_poisoned(self.verified_head_file.lock());
        if *verified != Some(stamp) {
            // Compare once per file and version; the stamp remembers it.
            let on_disk = std::fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            if on_disk != *head {
                return Ok(None);
            }
            *verified = Some(stamp);
        }
        Ok(Some((file, seq)))
    }
}
