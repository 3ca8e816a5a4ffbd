//! Packs of a table (docs/FORMAT.md, section 4a): finding a version's delta
//! in a pack or as a loose file, sealing a run of committed versions' loose
//! deltas into a pack after a commit (maintenance after the commit point: a
//! failure never fails the commit), the bytes stored since the last anchor
//! (for the keyframe rule), and recovery of a crash while sealing.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::super::error::{Result, StorageError};
use super::super::io::{TEMP_MARKER, read_file, remove_if_exists};
use super::super::log::LogEntry;
use super::super::pack;
use super::{Table, lock_poisoned};

/// Deltas larger than this stay loose files: a pack saves the file system's
/// rounding of small files, which is nothing next to a big delta, and
/// copying it again would double the write of an import.
pub(super) const LARGE_DELTA: u64 = 16 << 10;
/// At most this many versions in one pack.
const PACK_MAX: usize = 256;
/// How far back from the head a seal looks for loose deltas.
const PACK_SCAN: usize = 512;
/// Loaded packs kept per table, by bytes; cleared whole when full.
const PACK_CACHE_BYTES: usize = 32 << 20;
/// A keyframe is due once the deltas stored since the last anchor exceed a
/// quarter of the table, but never for less than this.
pub(super) const KEYFRAME_MIN_BYTES: u64 = 32 << 10;

#[derive(Debug, Clone)]
struct PackName {
    first: String,
    last: String,
    file: String,
}

#[derive(Debug)]
struct Loaded {
    bytes: Vec<u8>,
    entries: HashMap<String, Range<usize>>,
}

/// The writer's view of the log's tail, valid while the log has `at` bytes.
#[derive(Debug, Clone)]
pub(super) struct Tail {
    at: u64,
    /// Loose deltas of at most `LARGE_DELTA` after the last pack: (log
    /// index, stored length).
    run: Vec<(usize, u64)>,
    /// Delta bytes a read from the last anchor applies to reach the head.
    pub(super) since_anchor: u64,
}

/// A table's packs: the names (listed once, again when a delta is missing or
/// the log changed under another writer), loaded packs, the writer's tail.
#[derive(Debug, Default)]
pub(super) struct Packs {
    listed: Option<Vec<PackName>>,
    loaded: HashMap<String, Arc<Loaded>>,
    loaded_bytes: usize,
    tail: Option<Tail>,
}

impl Packs {
    fn find(&self, version: &str) -> Option<&PackName> {
        let list = self.listed.as_ref()?;
        let i = list.partition_point(|p| p.first.as_str() <= version);
        let p = list.get(i.checked_sub(1)?)?;
        (version <= p.last.as_str()).then_some(p)
    }

    /// Forgets what may have changed on disk.
    pub(super) fn invalidate(&mut self) {
        self.listed = None;
        self.tail = None;
    }
}

impl Table {
    fn list_packs(&self) -> Result<Vec<PackName>> {
        let io = &*self.ctx.io;
        let names = io
            .list(&self.dir)
            .map_err(|e| StorageError::io("list", &self.dir, e))?;
        let mut packs: Vec<PackName> = names
            .iter()
            .filter(|n| !n.contains(TEMP_MARKER))
            .filter_map(|n| {
                let (first, last) = pack::parse_file_name(n)?;
                Some(PackName {
                    first: first.to_string(),
                    last: last.to_string(),
                    file: n.clone(),
                })
            })
            .collect();
        packs.sort_by(|a, b| a.first.cmp(&b.first));
        Ok(packs)
    }

    fn load_pack(&self, file: &str) -> Result<Loaded> {
        let path = self.path(file);
        let bytes = read_file(&*self.ctx.io, &path)?;
        let entries = pack::parse(&bytes)
            .map_err(|x| StorageError::corrupt(&path, x.to_string()))?
            .into_iter()
            .map(|e| {
                let r = e.range();
                (e.file, r)
            })
            .collect();
        Ok(Loaded { bytes, entries })
    }

    /// The loaded pack that covers `version` by name (listing the packs
    /// first when not listed yet, or when `relist`), if any.
    fn pack_for(&self, version: &str, relist: bool) -> Result<Option<Arc<Loaded>>> {
        let mut packs = lock_poisoned(self.packs.lock());
        if relist || packs.listed.is_none() {
            packs.listed = Some(self.list_packs()?);
        }
        let Some(file) = packs.find(version).map(|p| p.file.clone()) else {
            return Ok(None);
        };
        if let Some(l) = packs.loaded.get(&file) {
            return Ok(Some(Arc::clone(l)));
        }
        let loaded = Arc::new(self.load_pack(&file)?);
        if packs.loaded_bytes + loaded.bytes.len() > PACK_CACHE_BYTES {
            packs.loaded.clear();
            packs.loaded_bytes = 0;
        }
        packs.loaded_bytes += loaded.bytes.len();
        packs.loaded.insert(file, Arc::clone(&loaded));
        Ok(Some(loaded))
    }

    /// The stored bytes of `e`'s delta (as its loose file holds them), from
    /// a pack or the loose file. A loose file gone means another process
    /// sealed it into a pack since the packs were listed: list again.
    pub(super) fn stored_delta(&self, e: &LogEntry) -> Result<Vec<u8>> {
        let (name, file) = (e.name(), e.delta_file());
        let loose = self.path(&file);
        for relist in [false, true] {
            let pack_err = match self.pack_for(&name, relist) {
                Ok(Some(p)) => match p.entries.get(&file) {
                    Some(r) => match p.bytes.get(r.clone()) {
                        Some(b) => return Ok(b.to_vec()),
                        None => None,
                    },
                    None => None,
                },
                Ok(None) => None,
                // A pack that fails its checks: its loose files are still
                // there unless it was complete once (then this is damage).
                Err(x) => Some(x),
            };
            match self.ctx.io.read(&loose) {
                Ok(b) => return Ok(b),
                Err(x) if x.kind() == std::io::ErrorKind::NotFound && !relist => {}
                Err(x) => {
                    return Err(
                        pack_err.unwrap_or(StorageError::io("read", &loose, x).referenced())
                    );
                }
            }
        }
        Err(StorageError::corrupt(
            &loose,
            "missing, but version.log references it",
        ))
    }

    /// The stored length of `e`'s delta, `None` when it is nowhere.
    fn stored_len(&self, e: &LogEntry) -> Result<Option<u64>> {
        let file = e.delta_file();
        if let Ok(Some(p)) = self.pack_for(&e.name(), false)
            && let Some(r) = p.entries.get(&file)
        {
            return Ok(Some(r.len() as u64));
        }
        let path = self.path(&file);
        self.ctx
            .io
            .len(&path)
            .map_err(|x| StorageError::io("stat", &path, x))
    }

    /// The writer's tail for `log` (of `log_len` bytes), from the cache when
    /// this handle made the last commit, else from disk. Under the lock.
    pub(super) fn tail(&self, log: &[LogEntry], log_len: u64) -> Result<Tail> {
        {
            let packs = lock_poisoned(self.packs.lock());
            if let Some(t) = packs.tail.as_ref().filter(|t| t.at == log_len) {
                return Ok(t.clone());
            }
        }
        let listed = self.list_packs()?;
        let last_packed = listed
            .iter()
            .map(|p| p.last.clone())
            .max()
            .unwrap_or_default();
        lock_poisoned(self.packs.lock()).listed = Some(listed);
        let mut run = Vec::new();
        // Loose lengths by log index, stat'ed once for both uses below.
        let mut loose_len: HashMap<usize, Option<u64>> = HashMap::new();
        for i in (0..log.len()).rev().take(PACK_SCAN) {
            if log[i].name() <= last_packed {
                break;
            }
            let path = self.path(&log[i].delta_file());
            let len = self
                .ctx
                .io
                .len(&path)
                .map_err(|x| StorageError::io("stat", &path, x))?;
            loose_len.insert(i, len);
            if let Some(len) = len.filter(|&l| l <= LARGE_DELTA) {
                run.push((i, len));
            }
        }
        run.reverse();
        // The floor (nothing before it is stored) is an anchor too.
        let floor = lock_poisoned(self.state.read()).floor;
        let start = log
            .iter()
            .rposition(|e| e.keyframe || e.size == 0)
            .max((floor > 0).then_some(floor))
            .map_or(0, |a| a + 1);
        let mut since_anchor = 0;
        for j in start..log.len() {
            if j > 0 && log[j - 1].size != 0 {
                let len = match loose_len.get(&j) {
                    Some(len) => *len,
                    None => self.stored_len(&log[j])?,
                };
                since_anchor += len.unwrap_or(0);
            }
        }
        let tail = Tail {
            at: log_len,
            run,
            since_anchor,
        };
        lock_poisoned(self.packs.lock()).tail = Some(tail.clone());
        Ok(tail)
    }

    /// After a version's log line is durable: extends the cached tail (the
    /// log grew from `before` to `after` bytes with version index `i`,
    /// `stored` bytes of delta, `since_anchor` as the commit computed it).
    pub(super) fn note_committed(
        &self,
        before: u64,
        after: u64,
        i: usize,
        stored: u64,
        since_anchor: u64,
    ) {
        let mut packs = lock_poisoned(self.packs.lock());
        match packs.tail.as_mut().filter(|t| t.at == before) {
            Some(t) => {
                t.at = after;
                if stored <= LARGE_DELTA {
                    t.run.push((i, stored));
                }
                t.since_anchor = since_anchor;
            }
            None => packs.tail = None,
        }
    }

    /// After a commit, under the table lock: seals the loose deltas since
    /// the last pack into a pack when it would fill `pack_bytes`. Never
    /// fails the commit: a failure is logged and left to the next commit or
    /// to recovery.
    pub(super) fn seal_quietly(&self) {
        if let Err(e) = self.seal_if_due() {
            lock_poisoned(self.packs.lock()).invalidate();
            tracing::warn!(table = %self.name, error = %e.report(), "could not seal a pack; the deltas stay loose files");
        }
    }

    fn seal_if_due(&self) -> Result<()> {
        let (log, log_len) = {
            let st = lock_poisoned(self.state.read());
            (Arc::clone(&st.log), st.log_len)
        };
        let tail = self.tail(&log, log_len)?;
        // At most PACK_MAX in one pack (a long run, left by a store older
        // than packs or by failed seals, goes in several).
        let run = &tail.run[..tail.run.len().min(PACK_MAX)];
        let (Some(&(first, _)), Some(&(last, last_len))) = (run.first(), run.last()) else {
            return Ok(());
        };
        let size = pack::encoded_len(
            run.iter()
                .map(|&(i, len)| (log[i].delta_file().len(), len as usize)),
        );
        // Due when one more delta like the last would not fit.
        let next = pack::encoded_len([(log[last].delta_file().len(), last_len as usize)])
            - pack::encoded_len([]);
        if ((size + next) as u64) <= self.ctx.config.pack_bytes && run.len() < PACK_MAX {
            return Ok(());
        }
        let io = &*self.ctx.io;
        let mut files = Vec::with_capacity(run.len());
        for &(i, _) in run {
            let file = log[i].delta_file();
            let bytes = read_file(io, &self.path(&file))?;
            files.push((file, bytes));
        }
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(f, b)| (f.as_str(), b.as_slice()))
            .collect();
        let bytes = pack::encode(&refs);
        let name = pack::file_name(&log[first].name(), &log[last].name());
        let path = self.path(&name);
        let undo = |e: StorageError| {
            let _ = io.remove(&path);
            let _ = io.sync_dir(&self.dir);
            e
        };
        io.write_new(&path, &bytes, true)
            .map_err(|e| undo(StorageError::io("write", &path, e)))?;
        io.sync_dir(&self.dir)
            .map_err(|e| undo(StorageError::io("fsync directory", &self.dir, e)))?;
        // The pack is durable: the loose files are copies now. The last
        // goes first, so a loose file of a pack's last version shows that
        // none of its loose files was removed (recovery relies on it).
        {
            let mut packs = lock_poisoned(self.packs.lock());
            packs.invalidate();
        }
        for (file, _) in files.iter().rev() {
            remove_if_exists(io, &self.path(file))?;
        }
        io.sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        tracing::debug!(table = %self.name, pack = %name, versions = files.len(), "sealed a pack");
        let mut packs = lock_poisoned(self.packs.lock());
        packs.tail = Some(Tail {
            at: log_len,
            run: Vec::new(),
            since_anchor: tail.since_anchor,
        });
        Ok(())
    }

    /// Recovery of sealing, under the lock: a pack that fails its checks
    /// while the loose file of its last version is still there was being
    /// written (its loose files were not removed yet): it is removed. Loose
    /// deltas that a complete pack holds are removed (after an fsync of the
    /// directory, so the pack's name is durable first). A loose file whose
    /// version no complete pack holds is never removed.
    pub(super) fn settle_packs(&self) -> Result<()> {
        let io = &*self.ctx.io;
        lock_poisoned(self.packs.lock()).invalidate();
        let packs = self.list_packs()?;
        if packs.is_empty() {
            return Ok(());
        }
        let names = io
            .list(&self.dir)
            .map_err(|e| StorageError::io("list", &self.dir, e))?;
        let loose: std::collections::HashSet<&str> = names
            .iter()
            .filter(|n| !n.contains(TEMP_MARKER) && pack::delta_stem(n).is_some())
            .map(String::as_str)
            .collect();
        let has_loose = |version: &str| {
            loose.contains(format!("{version}.bsdiff").as_str())
                || loose.contains(format!("{version}.bsdiff.xz").as_str())
        };
        let mut good: HashMap<String, Loaded> = HashMap::new();
        let mut bad = Vec::new();
        for (k, p) in packs.iter().enumerate() {
            let newest = k + 1 == packs.len();
            let covers_loose = loose.iter().any(|n| {
                pack::delta_stem(n).is_some_and(|v| p.first.as_str() <= v && v <= p.last.as_str())
            });
            if !newest && !covers_loose {
                continue;
            }
            match self.load_pack(&p.file) {
                Ok(l) => {
                    good.insert(p.file.clone(), l);
                }
                Err(e) if has_loose(&p.last) => {
                    tracing::warn!(table = %self.name, pack = %p.file, error = %e.report(), "removing a pack whose sealing was interrupted");
                    bad.push(p.file.clone());
                }
                Err(e) => {
                    tracing::error!(table = %self.name, pack = %p.file, error = %e.report(), "damaged pack left in place (run `rdb verify`)");
                }
            }
        }
        let covered: Vec<&str> = loose
            .iter()
            .copied()
            .filter(|n| {
                let Some(v) = pack::delta_stem(n) else {
                    return false;
                };
                packs.iter().any(|p| {
                    p.first.as_str() <= v
                        && v <= p.last.as_str()
                        && good
                            .get(&p.file)
                            .is_some_and(|l| l.entries.contains_key(*n))
                })
            })
            .collect();
        for f in &bad {
            remove_if_exists(io, &self.path(f))?;
        }
        if bad.is_empty() && covered.is_empty() {
            return Ok(());
        }
        // The packs' names durable before any of their loose files goes.
        io.sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        if covered.is_empty() {
            return Ok(());
        }
        for n in covered {
            tracing::info!(table = %self.name, file = %n, "removing a loose delta its pack holds");
            remove_if_exists(io, &self.path(n))?;
        }
        io.sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", &self.dir, e))
    }
}
