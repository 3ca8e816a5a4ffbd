//! `rdb verify`: rebuilds every version of every table from the stored
//! deltas, and checks every CRC, hash, keyframe and the head. Read-only: it
//! repairs nothing, and so is never a second writer of a file a running
//! mount owns.
//!
//! Problems are damage: history that cannot be rebuilt or does not match
//! its log. Notes are not: a `current.csv` that differs from a head that the
//! deltas rebuild is a stale cache (a process killed between its commit
//! point and its head write, or a writer still at work), which the next open
//! that takes the table's lock rewrites, and which no read ever depends on.
//!
//! Cost: proportional to the stored bytes. Each table's log is walked
//! forwards once, in segments that start at keyframes (run in parallel,
//! tables too, with rayon); a segment keeps one version in memory and
//! applies each delta to it in place. The version hash (its chunk digests),
//! and the CSV index (record starts and keys) are updated for the changed
//! region only, so a one-row version costs about its delta, not the table.
//! None of this shares the read path's code: the patch is read and applied
//! here (only the all-zero diff block is compared with the stream the writer
//! builds, and decompressed with bzip2 when it differs), and the hash is
//! computed here from its definition (docs/FORMAT.md section 5).
//!
//! Deltas sealed into packs (docs/FORMAT.md section 4a) are read here with
//! `std::fs` and parsed with `pack::parse`, the format's one pure parser;
//! a pack that fails its checks is a problem.
//!
//! `verify --quick` checks the log's CRCs, that every file it names exists
//! with a plausible size, and the head against the log; it applies no
//! delta (a pack is read, to check its checksums).

use std::io::Read as _;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::csv::TableIndex;
use super::database::Database;
use super::delta;
use super::error::{Result, StorageError};
use super::frame;
use super::io::RealIo;
use super::log::{self, LogEntry};
use super::pack;
use super::table::{CURRENT, FLOOR, LOG, ROW_LOG, chain_start, parse_floor};
use super::zero_bzip2::zero_stream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub table: String,
    pub what: String,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub tables: usize,
    pub versions: usize,
    /// Damage: what cannot be rebuilt or does not match the log.
    pub problems: Vec<Problem>,
    /// Not damage: caches that differ from the truth and are rebuilt from it
    /// (a stale `current.csv`).
    pub notes: Vec<Problem>,
}

/// How `verify` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Only the log's CRCs, the files it names (existence and size) and the
    /// head against the log: no delta is read.
    pub quick: bool,
    /// Worker threads; `None`: one per core (rayon's global pool).
    pub threads: Option<usize>,
    /// Also compare each table's row log with its versions. This opens the
    /// tables, which repairs what a crash left when their locks are free:
    /// off for `rdb verify` unless asked (`--row-log`), which repairs nothing.
    pub row_log: bool,
}

/// What `verify_table` found in one table.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    notes: Vec<String>,
    versions: usize,
}

impl Database {
    /// A full verify, the row logs included.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(VerifyOptions {
            row_log: true,
            ..VerifyOptions::default()
        })
    }

    pub fn verify_with(&self, opts: VerifyOptions) -> Result<VerifyReport> {
        // Our own pending head writes are not damage.
        self.flush();
        let names = self.table_names()?;
        let delim = self.config().delimiter_byte();
        let root = self.root();
        let run = || -> Vec<Findings> {
            names
                .par_iter()
                .map(|name| {
                    let dir = root.join("tables").join(name);
                    verify_table(root, &dir, delim, opts.quick)
                })
                .collect()
        };
        let found = match opts.threads {
            None => run(),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| StorageError::Io {
                    op: "start the threads of verify in",
                    path: root.to_path_buf(),
                    source: std::io::Error::other(e),
                })?
                .install(run),
        };
        let mut report = VerifyReport::default();
        let mut found = found;
        for (name, f) in names.iter().zip(found.iter_mut()) {
            // The row log (derived) against the versions, once they are sound.
            if opts.quick || !opts.row_log || !f.problems.is_empty() {
                continue;
            }
            match self.table(name).and_then(|t| t.verify_row_log(20)) {
                Ok(p) => f
                    .problems
                    .extend(p.into_iter().map(|p| format!("{ROW_LOG}: {p}"))),
                Err(StorageError::NotFound { .. }) => {}
                Err(e) => f.problems.push(format!("{ROW_LOG}: {e}")),
            }
        }
        for (name, found) in names.iter().zip(found) {
            report.tables += 1;
            report.versions += found.versions;
            let named = |what| Problem {
                table: name.clone(),
                what,
            };
            report
                .problems
                .extend(found.problems.into_iter().map(named));
            report.notes.extend(found.notes.into_iter().map(named));
        }
        Ok(report)
    }
}

fn verify_table(root: &Path, dir: &Path, delim: u8, quick: bool) -> Findings {
    let mut problems = Vec::new();
    let log_bytes = match std::fs::read(dir.join(LOG)) {
        Ok(b) => b,
        Err(e) => {
            return Findings {
                problems: vec![format!("{LOG}: {e}")],
                ..Findings::default()
            };
        }
    };
    let mut parsed = log::parse(&log_bytes, 0);
    // The last line of a frame without a commit record is not part of the
    // table (readers skip it; the next locked open decides its frame).
    if let Some(id) = parsed.entries.last().and_then(|e| e.frame.clone())
        && !matches!(
            frame::read_decision(&RealIo, root, &id),
            Ok(Some(frame::Decision::Commit))
        )
    {
        parsed.entries.pop();
    }
    if let Some(line) = parsed.damaged_line {
        problems.push(format!(
            "{LOG} line {line}: CRC mismatch or unreadable line"
        ));
    } else if parsed.valid_len < log_bytes.len() {
        problems.push(format!(
            "{LOG}: torn last line ({} bytes; removed on next open)",
            log_bytes.len() - parsed.valid_len
        ));
    }
    let entries = &parsed.entries;
    // A pruned table keeps the bytes of the versions from its floor on.
    let floor = match std::fs::read(dir.join(FLOOR)) {
        Ok(b) => match parse_floor(&b, entries) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("{FLOOR}: {e}"));
                0
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            problems.push(format!("{FLOOR}: {e}"));
            0
        }
    };
    let packed = read_packs(dir, &mut problems);
    let mut found = if quick {
        quick_table(dir, entries, floor, &packed)
    } else {
        full_table(dir, entries, floor, delim, &packed)
    };
    problems.append(&mut found.problems);
    found.problems = problems;
    found.versions = entries.len();
    found
}

/// The deltas held by the table's packs: loose file name -> bytes. A pack
/// that cannot be read or fails its checks is a problem.
type Packed = std::collections::HashMap<String, Vec<u8>>;

fn read_packs(dir: &Path, problems: &mut Vec<String>) -> Packed {
    let mut out = Packed::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && pack::parse_file_name(n).is_some())
        .collect();
    names.sort();
    for n in names {
        let parsed = std::fs::read(dir.join(&n))
            .map_err(|e| e.to_string())
            .and_then(|b| {
                let entries = pack::parse(&b).map_err(|e| e.to_string())?;
                Ok((b, entries))
            });
        match parsed {
            Ok((b, entries)) => {
                for e in entries {
                    let bytes = b.get(e.range()).unwrap_or_default().to_vec();
                    out.insert(e.file, bytes);
                }
            }
            Err(e) => problems.push(format!("pack {n}: {e}")),
        }
    }
    out
}

/// A delta's stored bytes: from a pack, else its loose file.
fn read_delta(dir: &Path, packed: &Packed, file: &str) -> std::io::Result<Vec<u8>> {
    match packed.get(file) {
        Some(b) => Ok(b.clone()),
        None => std::fs::read(dir.join(file)),
    }
}

/// Smallest plausible delta or keyframe: a BSDIFF40 header is 32 bytes, and
/// so is the XZ stream of nothing.
const MIN_STORED: u64 = 32;

fn quick_table(dir: &Path, entries: &[LogEntry], floor: usize, packed: &Packed) -> Findings {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for (i, e) in entries.iter().enumerate().skip(floor) {
        let seq = i + 1;
        let mut files = vec![("delta", e.delta_file())];
        if e.keyframe || (i == floor && floor > 0 && !chain_start(entries, i)) {
            files.push(("keyframe", e.keyframe_file()));
        }
        for (what, file) in files {
            if let Some(b) = packed.get(&file) {
                if (b.len() as u64) < MIN_STORED {
                    problems.push(format!(
                        "version {seq}: {what} {file} (packed): {} bytes, too short to be one",
                        b.len()
                    ));
                }
                continue;
            }
            match std::fs::metadata(dir.join(&file)) {
                Err(err) => problems.push(format!("version {seq}: {what} {file}: {err}")),
                Ok(m) if m.len() < MIN_STORED => problems.push(format!(
                    "version {seq}: {what} {file}: {} bytes, too short to be one",
                    m.len()
                )),
                Ok(_) => {}
            }
        }
    }
    if let Some(last) = entries.last()
        && let Some(stale) = head_state(dir, last, &mut problems)
    {
        notes.push(format!(
            "{stale}: not compared with the deltas (--quick); a full verify tells a stale cache from damage"
        ));
    }
    Findings {
        problems,
        notes,
        versions: 0,
    }
}

/// Compares `current.csv` with the log's head: `Some(what)` when it differs
/// or is missing; an unreadable file is a problem (open reads it too).
fn head_state(dir: &Path, last: &LogEntry, problems: &mut Vec<String>) -> Option<String> {
    match std::fs::read(dir.join(CURRENT)) {
        Ok(b) if b.len() as u64 == last.size && Chunks::full(&b).digest() == last.hash => None,
        Ok(_) => Some(format!("{CURRENT} differs from the head version")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (last.size != 0).then(|| format!("{CURRENT} is missing"))
        }
        Err(x) => {
            problems.push(format!("{CURRENT}: {x}"));
            None
        }
    }
}

fn full_table(
    dir: &Path,
    entries: &[LogEntry],
    floor: usize,
    delim: u8,
    packed: &Packed,
) -> Findings {
    let mut problems = Vec::new();
    let n = entries.len();
    // Segment m covers the versions after keyframe k_m up to and including
    // the next keyframe (whose delta it applies and whose keyframe it
    // checks); the first starts from the empty content, or, in a pruned
    // table, from the floor: its keyframe, or the empty content when the
    // floor starts a chain. Versions below the floor have no bytes to check.
    let first = if floor == 0 || chain_start(entries, floor) {
        floor
    } else {
        floor + 1
    };
    let mut starts = vec![first];
    starts.extend(
        (first..n.saturating_sub(1))
            .filter(|&i| entries[i].keyframe)
            .map(|i| i + 1),
    );
    let bounds: Vec<(usize, usize)> = starts
        .iter()
        .enumerate()
        .map(|(m, &s)| (s, starts.get(m + 1).copied().unwrap_or(n)))
        .collect();
    let walk = Walk {
        dir,
        entries,
        delim,
        packed,
    };
    // The start of the segment from `from`: `None` when its keyframe is
    // missing, damaged or does not match the log.
    let start_of = |from: usize| -> Option<Cur> {
        if from == 0 || (from == floor && chain_start(entries, from)) {
            return Some(Cur::new(Vec::new()));
        }
        let (b, c) = walk.keyframe(from - 1, None).ok().flatten()?;
        Some(Cur::with_chunks(b, c))
    };
    // Each segment's keyframe is checked (against the log's hash, which the
    // version before it was checked against too) when the next one starts
    // from it, so it is unpacked once.
    if first > floor && first <= n && start_of(first).is_none() {
        problems.push(format!(
            "version {}: the keyframe {} the pruned history starts from is missing or does not match the log; versions {}-{n} cannot be rebuilt forwards",
            floor + 1,
            entries[floor].keyframe_file(),
            floor + 1
        ));
        return Findings {
            problems,
            ..Findings::default()
        };
    }
    let mut segs: Vec<Option<Segment>> = bounds
        .par_iter()
        .map(|&(from, to)| {
            let start = start_of(from)?;
            Some(walk.run(from, to, Some(start), false, to == n))
        })
        .collect();
    for m in 1..segs.len() {
        if segs[m].is_some() {
            continue;
        }
        // A damaged keyframe: the segment before names it, and this one
        // starts from that segment's last version (in order; damage only).
        let (pf, pt) = bounds[m - 1];
        let mut prev = match segs[m - 1].take() {
            Some(p) if p.checked_last => p,
            _ => walk.run(pf, pt, start_of(pf), true, true),
        };
        let start = prev.end.take().map(Cur::new);
        segs[m - 1] = Some(prev);
        let (from, to) = bounds[m];
        segs[m] = Some(walk.run(from, to, start, true, true));
    }
    // Below the floor nothing is stored: counted as checked.
    let (mut forward, mut own) = (vec![true; first], vec![true; first]);
    let mut head_rebuilt = true;
    for s in segs.into_iter().flatten() {
        problems.extend(s.problems);
        forward.extend(s.forward);
        own.extend(s.own);
        head_rebuilt = s.end_ok;
    }
    let mut notes = Vec::new();
    let Some(last) = entries.last() else {
        return Findings {
            problems,
            notes,
            versions: 0,
        };
    };
    let stale = head_state(dir, last, &mut problems);
    if let Some(upto) = forward.iter().rposition(|f| !f) {
        // Walking back from the first good keyframe after the last version
        // the forward walk missed reaches what the head would, below it.
        let anchor = (upto + 1..n)
            .filter(|&k| entries[k].keyframe)
            .find_map(|k| Some((k + 1, walk.keyframe(k, None).ok().flatten()?.0)));
        let from_file = if anchor.is_some() {
            None
        } else if stale.is_none() {
            std::fs::read(dir.join(CURRENT))
                .ok()
                .or_else(|| (last.size == 0).then(Vec::new))
        } else {
            None
        };
        let head = if anchor.is_some() || from_file.is_some() {
            from_file
        } else if head_rebuilt {
            // The head as the deltas rebuild it, again (only on damage).
            let &(from, to) = bounds.last().unwrap_or(&(first, n));
            walk.run(from, to, start_of(from), true, true).end
        } else {
            None
        };
        let (end, head) = match anchor {
            Some((end, bytes)) => (end, Some(bytes)),
            None => (n, head),
        };
        let backward = rebuilt_backwards(dir, entries, end, head, packed);
        let lost: Vec<usize> = (0..forward.len())
            .filter(|&i| !forward[i] && !backward[i])
            .collect();
        // Versions that the forward walk rebuilds from a damaged one: reads
        // from the anchor before the damage fail; backwards they rebuild.
        let after: Vec<usize> = (0..forward.len())
            .filter(|&i| !forward[i] && backward[i] && !own[i])
            .collect();
        for (first, last) in ranges(&after) {
            let broke = (0..first).rev().find(|&j| own[j]).map_or_else(
                || "earlier".to_string(),
                |j| format!("at version {}", j + 1),
            );
            let which = if first == last {
                format!("version {}", first + 1)
            } else {
                format!("versions {}-{}", first + 1, last + 1)
            };
            problems.push(format!(
                "{which}: not rebuilt forwards (the chain breaks {broke}); rebuilt backwards from the head or a later keyframe"
            ));
        }
        for (first, last) in ranges(&lost) {
            problems.push(if first == last {
                format!(
                    "version {}: cannot be rebuilt (from the start, a keyframe or the head)",
                    first + 1
                )
            } else {
                format!(
                    "versions {}-{}: cannot be rebuilt (from the start, a keyframe or the head)",
                    first + 1,
                    last + 1
                )
            });
        }
    }
    match stale {
        Some(what) if head_rebuilt => notes.push(format!(
            "{what}: a stale cache, rebuilt from the deltas on the next open (nothing is lost)"
        )),
        Some(what) => problems.push(format!(
            "{what}, and the head cannot be rebuilt from the deltas"
        )),
        None => {}
    }
    Findings {
        problems,
        notes,
        versions: 0,
    }
}

/// The one version a segment holds: its bytes, chunk digests and CSV index.
struct Cur {
    bytes: Vec<u8>,
    chunks: Chunks,
    /// `None`: not known (re-parsed whole at the next check).
    csv: Option<TableIndex>,
}

impl Cur {
    fn new(bytes: Vec<u8>) -> Cur {
        let chunks = Chunks::full(&bytes);
        Cur::with_chunks(bytes, chunks)
    }

    fn with_chunks(bytes: Vec<u8>, chunks: Chunks) -> Cur {
        Cur {
            bytes,
            chunks,
            csv: None,
        }
    }
}

/// What a segment found.
struct Segment {
    problems: Vec<String>,
    /// Per version of the segment: rebuilt walking forwards.
    forward: Vec<bool>,
    /// Per version: its own delta is missing or damaged, or rebuilds bytes
    /// that do not match its hash.
    own: Vec<bool>,
    /// Its last version was rebuilt.
    end_ok: bool,
    /// Its last version's bytes: kept when asked to, or when that version's
    /// keyframe is damaged (the next segment then starts from them).
    end: Option<Vec<u8>>,
    /// Its last version's keyframe was checked here.
    checked_last: bool,
}

struct Walk<'a> {
    dir: &'a Path,
    entries: &'a [LogEntry],
    delim: u8,
    packed: &'a Packed,
}

impl Walk<'_> {
    /// The keyframe of version `i + 1`, unpacked, when it matches the log:
    /// its hash, or the bytes `same_as` (the version as rebuilt, whose hash
    /// matched; then the chunks returned are empty).
    fn keyframe(
        &self,
        i: usize,
        same_as: Option<&[u8]>,
    ) -> std::result::Result<Option<(Vec<u8>, Chunks)>, String> {
        let e = &self.entries[i];
        let b = std::fs::read(self.dir.join(e.keyframe_file()))
            .map_err(|x| x.to_string())
            .and_then(|s| delta::unpack(&s).map_err(|x| x.to_string()))?;
        if same_as == Some(b.as_slice()) {
            return Ok(Some((b, Chunks::default())));
        }
        let chunks = Chunks::full(&b);
        Ok((chunks.digest() == e.hash).then_some((b, chunks)))
    }

    /// Walks versions `from..to` (0-based) forwards from `start`, the
    /// version before `from` (`None`: not rebuilt).
    /// The keyframe of the last version is checked only when `check_last`,
    /// or when the deltas do not rebuild that version.
    fn run(
        &self,
        from: usize,
        to: usize,
        start: Option<Cur>,
        keep_end: bool,
        check_last: bool,
    ) -> Segment {
        let mut problems = Vec::new();
        let mut forward = Vec::with_capacity(to - from);
        let mut own = Vec::with_capacity(to - from);
        let mut cur = start;
        let mut kf_damaged = false;
        for i in from..to {
            let seq = i + 1;
            let e = &self.entries[i];
            let file = e.delta_file();
            let mut ok = false;
            let before = problems.len();
            match read_delta(self.dir, self.packed, &file) {
                Err(err) => {
                    problems.push(format!("version {seq}: delta {file}: {err}"));
                    cur = None;
                }
                Ok(stored) => {
                    if let Some(c) = cur.as_mut() {
                        match step(c, &stored, self.delim) {
                            Err(err) => {
                                problems.push(format!("version {seq}: delta {file}: {err}"));
                                cur = None;
                            }
                            Ok(()) => {
                                if c.bytes.len() as u64 == e.size && c.chunks.digest() == e.hash {
                                    ok = true;
                                } else {
                                    problems.push(format!(
                                        "version {seq}: rebuilt bytes do not match the logged hash"
                                    ));
                                    cur = None;
                                }
                            }
                        }
                    }
                }
            }
            own.push(problems.len() > before);
            kf_damaged = false;
            if e.keyframe && (check_last || i + 1 < to || !ok) {
                let rebuilt = cur.as_ref().filter(|_| ok).map(|c| c.bytes.as_slice());
                match self.keyframe(i, rebuilt) {
                    Ok(Some((b, chunks))) => match &cur {
                        Some(c) if ok => {
                            if c.bytes != b {
                                problems.push(format!(
                                    "version {seq}: keyframe differs from the version the deltas rebuild"
                                ));
                                kf_damaged = true;
                            }
                        }
                        _ => {
                            cur = Some(Cur::with_chunks(b, chunks)); // re-anchor the chain
                            ok = true;
                        }
                    },
                    Ok(None) => {
                        problems.push(format!(
                            "version {seq}: keyframe does not match the logged hash"
                        ));
                        kf_damaged = true;
                    }
                    Err(x) => {
                        problems.push(format!(
                            "version {seq}: keyframe {}: {x}",
                            e.keyframe_file()
                        ));
                        kf_damaged = true;
                    }
                }
            }
            if ok
                && let Some(c) = cur.as_mut()
                && !c.bytes.is_empty()
                && c.csv.is_none()
            {
                match TableIndex::parse(&c.bytes, self.delim) {
                    Ok(idx) => c.csv = Some(idx),
                    Err(x) => problems.push(format!(
                        "version {seq}: stored content is not valid CSV: {x}"
                    )),
                }
            }
            forward.push(ok);
        }
        let end_ok = forward.last().copied().unwrap_or(cur.is_some());
        Segment {
            problems,
            forward,
            own,
            checked_last: check_last,
            end_ok,
            end: cur
                .filter(|_| end_ok && (keep_end || kf_damaged))
                .map(|c| c.bytes),
        }
    }
}

/// A patch as ReedBase writes it (docs/FORMAT.md section 4), read here
/// without the read path's decoder.
struct LocalPatch {
    /// (copy from base, insert from extra, skip in base).
    triples: Vec<(usize, usize, usize)>,
    extra: Vec<u8>,
    old_len: usize,
    new_len: usize,
    inserted: usize,
}

fn offtin(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    let v = u64::from_le_bytes(a);
    let mag = (v & !(1 << 63)) as i64;
    if v >> 63 == 1 { -mag } else { mag }
}

fn bunzip2(data: &[u8], limit: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    bzip2::read::BzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

const FOREIGN: &str = "not a ReedBase delta (foreign bsdiff layout)";

/// Reads a patch for a base of `old_len` bytes or a result of `new_len`
/// bytes (whichever is known: the lengths are checked before anything of
/// their size is built).
fn read_patch(
    patch: &[u8],
    old_len: Option<usize>,
    new_len_known: Option<usize>,
) -> std::result::Result<LocalPatch, String> {
    if patch.len() < 32 || &patch[..8] != b"BSDIFF40" {
        return Err("missing BSDIFF40 header".into());
    }
    let (c, d, n) = (
        offtin(&patch[8..]),
        offtin(&patch[16..]),
        offtin(&patch[24..]),
    );
    if c < 0 || d < 0 || n < 0 || 32 + c as u128 + d as u128 > patch.len() as u128 {
        return Err("bad block lengths".into());
    }
    let (c, d, new_len) = (c as usize, d as usize, n as usize);
    let ctrl = bunzip2(&patch[32..32 + c], 24 * (new_len + c + 2).min(1 << 28))?;
    if ctrl.len() % 24 != 0 {
        return Err("control block is not whole triples".into());
    }
    let mut triples = Vec::with_capacity(ctrl.len() / 24);
    let (mut copied, mut inserted, mut skipped) = (0usize, 0usize, 0usize);
    for t in ctrl.chunks_exact(24) {
        let (a, x, s) = (offtin(t), offtin(&t[8..]), offtin(&t[16..]));
        if a < 0 || x < 0 || s < 0 {
            return Err(FOREIGN.into());
        }
        let (a, x, s) = (a as usize, x as usize, s as usize);
        copied = copied.saturating_add(a);
        inserted = inserted.saturating_add(x);
        skipped = skipped.saturating_add(s);
        triples.push((a, x, s));
    }
    if copied.checked_add(inserted) != Some(new_len) {
        return Err("control block does not add up to the new length".into());
    }
    let base_len = copied.saturating_add(skipped);
    if let Some(want) = old_len
        && want != base_len
    {
        return Err(format!(
            "base length {want} differs from the patch's {base_len}"
        ));
    }
    if new_len_known.is_some_and(|want| want != new_len) {
        return Err("result length differs from the patch's".into());
    }
    // The diff block must add nothing: `copied` zeros. The writer's stream
    // for that length is the common case; anything else is decompressed.
    let diff = &patch[32 + c..32 + c + d];
    if diff != zero_stream(copied as u64).as_slice() {
        let mut dec = bzip2::read::BzDecoder::new(diff);
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        loop {
            let k = dec
                .read(&mut buf)
                .map_err(|e| format!("diff block: bzip2: {e}"))?;
            if k == 0 {
                break;
            }
            if buf[..k].iter().any(|&b| b != 0) {
                return Err(FOREIGN.into());
            }
            total += k;
            if total > copied {
                break;
            }
        }
        if total != copied {
            return Err("diff block has the wrong length".into());
        }
    }
    let extra_len = inserted.saturating_add(skipped);
    let extra = bunzip2(&patch[32 + c + d..], extra_len)?;
    if extra.len() != extra_len {
        return Err("extra block has the wrong length".into());
    }
    Ok(LocalPatch {
        triples,
        extra,
        old_len: base_len,
        new_len,
        inserted,
    })
}

/// One change of a patch, in the base's and the new content's offsets.
struct Change {
    old_at: usize,
    removed: usize,
    new_at: usize,
    /// Range of the inserted bytes in the extra block.
    ins: std::ops::Range<usize>,
}

/// Applies one stored delta to `c` in place, checking that it applies
/// (lengths, and the removed bytes it keeps for reading backwards), and
/// updates the chunk digests and the CSV index of the changed region.
fn step(c: &mut Cur, stored: &[u8], delim: u8) -> std::result::Result<(), String> {
    let raw = delta::unpack(stored).map_err(|e| e.to_string())?;
    let p = read_patch(&raw, Some(c.bytes.len()), None)?;
    if p.old_len != c.bytes.len() {
        return Err(format!(
            "base length {} differs from the patch's {}",
            c.bytes.len(),
            p.old_len
        ));
    }
    let mut changes = Vec::new();
    let (mut op, mut np, mut ep, mut rp) = (0usize, 0usize, 0usize, p.inserted);
    for &(add, ins, skip) in &p.triples {
        op += add;
        np += add;
        if ins > 0 || skip > 0 {
            if c.bytes[op..op + skip] != p.extra[rp..rp + skip] {
                return Err("backward application does not give the previous version".into());
            }
            changes.push(Change {
                old_at: op,
                removed: skip,
                new_at: np,
                ins: ep..ep + ins,
            });
        }
        op += skip;
        np += ins;
        ep += ins;
        rp += skip;
    }
    let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
        return Ok(()); // the same content
    };
    let old_len = c.bytes.len();
    let lo = first.old_at;
    let hi_old = last.old_at + last.removed;
    let hi_new = last.new_at + last.ins.len();
    let pre = c
        .csv
        .take()
        .and_then(|idx| csv_before(idx, &c.bytes, lo, hi_old, delim));
    if changes.len() <= 16 {
        for ch in changes.iter().rev() {
            c.bytes.splice(
                ch.old_at..ch.old_at + ch.removed,
                p.extra[ch.ins.clone()].iter().copied(),
            );
        }
    } else {
        let mut out = Vec::with_capacity(p.new_len);
        let mut at = 0;
        for ch in &changes {
            out.extend_from_slice(&c.bytes[at..ch.old_at]);
            out.extend_from_slice(&p.extra[ch.ins.clone()]);
            at = ch.old_at + ch.removed;
        }
        out.extend_from_slice(&c.bytes[at..]);
        c.bytes = out;
    }
    debug_assert_eq!(c.bytes.len(), p.new_len);
    c.chunks.update(&c.bytes, old_len, lo, hi_new);
    c.csv = pre.and_then(|pre| csv_after(pre, &c.bytes, old_len, delim));
    Ok(())
}

/// The CSV index of the base, with the records an edit touches taken out.
struct CsvPre {
    idx: TableIndex,
    /// Records `i0..j1` of the base, from `region_start` to `old_end`.
    i0: usize,
    j1: usize,
    region_start: usize,
    old_end: usize,
}

/// Takes the records of `[lo, hi_old)` (widened to whole records, and past
/// one unchanged newline) out of `idx`; `None` when the header changes or the
/// region cannot be re-read (the next check then parses the whole version).
fn csv_before(
    mut idx: TableIndex,
    old: &[u8],
    lo: usize,
    hi_old: usize,
    delim: u8,
) -> Option<CsvPre> {
    if lo < idx.header_end || idx.len != old.len() {
        return None;
    }
    let i0 = idx.starts.partition_point(|&s| s <= lo).saturating_sub(1);
    let region_start = idx.starts.get(i0).copied().unwrap_or(idx.header_end);
    // The first record starting after the change: the byte before it is an
    // unchanged newline, so the new region ends where a record ends.
    let j1 = idx.starts.partition_point(|&s| s <= hi_old);
    let old_end = idx.starts.get(j1).copied().unwrap_or(old.len());
    let region = parse_region(old, idx.header_end, region_start..old_end, delim)?;
    for k in region.keys {
        idx.keys.remove(&k);
    }
    Some(CsvPre {
        idx,
        i0,
        j1,
        region_start,
        old_end,
    })
}

fn parse_region(
    b: &[u8],
    header_end: usize,
    region: std::ops::Range<usize>,
    delim: u8,
) -> Option<TableIndex> {
    let mut buf = Vec::with_capacity(header_end + region.len());
    buf.extend_from_slice(&b[..header_end]);
    buf.extend_from_slice(&b[region]);
    TableIndex::parse(&buf, delim).ok()
}

/// Re-reads the changed records of the new content into the index; `None`
/// when they are not valid on their own (then the whole version is parsed,
/// which gives the error and its line).
fn csv_after(pre: CsvPre, new: &[u8], old_len: usize, delim: u8) -> Option<TableIndex> {
    let CsvPre {
        mut idx,
        i0,
        j1,
        region_start,
        old_end,
    } = pre;
    let shift = new.len() as i64 - old_len as i64;
    let new_end = usize::try_from(old_end as i64 + shift).ok()?;
    if new_end < region_start || new_end > new.len() {
        return None;
    }
    let region = parse_region(new, idx.header_end, region_start..new_end, delim)?;
    for k in region.keys {
        if !idx.keys.insert(k) {
            return None; // a duplicate key: the whole parse names it
        }
    }
    let base = region_start as i64 - idx.header_end as i64;
    idx.starts.splice(
        i0..j1,
        region.starts.iter().map(|&s| (s as i64 + base) as usize),
    );
    let moved = i0 + region.starts.len();
    for s in &mut idx.starts[moved..] {
        *s = (*s as i64 + shift) as usize;
    }
    idx.len = new.len();
    Some(idx)
}

/// The chunk ends and digests of one content (docs/FORMAT.md section 5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Chunks(Vec<(usize, [u8; 32])>);

/// Chunks of `b[from..]`; stops after a chunk when `stop(end, line_start)`.
fn cut(
    b: &[u8],
    from: usize,
    mut stop: impl FnMut(usize, usize) -> bool,
) -> Vec<(usize, [u8; 32])> {
    let mut out = Vec::new();
    let (mut chunk_start, mut pos) = (from, from);
    while pos < b.len() {
        let end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i + 1);
        let line_start = pos;
        pos = end;
        if end == b.len() || crc32fast::hash(&b[line_start..end]) & 63 == 63 {
            out.push((end, Sha256::digest(&b[chunk_start..end]).into()));
            chunk_start = end;
            if stop(end, line_start) {
                break;
            }
        }
    }
    out
}

impl Chunks {
    fn full(b: &[u8]) -> Chunks {
        Chunks(cut(b, 0, |_, _| false))
    }

    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (_, d) in &self.0 {
            h.update(d);
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Describes `new`, which differs from the content these chunks
    /// describe (`old_len` bytes) only in `[lo, hi_new)` (in `new`'s
    /// offsets; the bytes after it are the old content's last ones).
    fn update(&mut self, new: &[u8], old_len: usize, lo: usize, hi_new: usize) {
        let shift = new.len() as i64 - old_len as i64;
        let mut k0 = self.0.partition_point(|c| c.0 <= lo);
        if k0 > 0 && self.0[k0 - 1].0 == old_len {
            // The last chunk ends only because the content did.
            k0 -= 1;
        }
        let from = if k0 == 0 { 0 } else { self.0[k0 - 1].0 };
        let old = &self.0;
        let mut resume = None;
        let fresh = cut(new, from, |end, line_start| {
            // This line and the newline before it are unchanged bytes: the
            // old content ended a chunk here too, and nothing after changed.
            if line_start > hi_new && end < new.len() {
                let old_end = (end as i64 - shift) as usize;
                if let Ok(k) = old.binary_search_by(|c| c.0.cmp(&old_end)) {
                    resume = Some(k + 1);
                    return true;
                }
            }
            false
        });
        let tail: Vec<(usize, [u8; 32])> = resume.map_or_else(Vec::new, |k| {
            self.0[k..]
                .iter()
                .map(|&(e, d)| ((e as i64 + shift) as usize, d))
                .collect()
        });
        self.0.truncate(k0);
        self.0.extend(fresh);
        self.0.extend(tail);
    }
}

/// Which versions can be rebuilt walking backwards: from the head (`head`,
/// when known) or a keyframe, undoing each delta with the bytes it removed.
/// A missing or damaged delta of version n breaks the walk below n only.
/// Runs only when the forward walk failed somewhere.
/// The walk starts at version `end` (1-based) with `head`, its bytes.
fn rebuilt_backwards(
    dir: &Path,
    entries: &[LogEntry],
    end: usize,
    head: Option<Vec<u8>>,
    packed: &Packed,
) -> Vec<bool> {
    let mut reached = vec![false; entries.len()];
    let hash = |b: &[u8]| Chunks::full(b).digest();
    // `cur`: the bytes of version i + 1 (1-based), when rebuilt.
    let mut cur = head;
    for (i, e) in entries[..end].iter().enumerate().rev() {
        if cur.is_none() && e.keyframe {
            cur = std::fs::read(dir.join(e.keyframe_file()))
                .ok()
                .and_then(|s| delta::unpack(&s).ok())
                .filter(|b| hash(b) == e.hash);
        }
        let Some(bytes) = cur.take() else {
            continue;
        };
        reached[i] = true;
        let Some(prev_entry) = i.checked_sub(1).and_then(|p| entries.get(p)) else {
            continue;
        };
        cur = read_delta(dir, packed, &e.delta_file())
            .ok()
            .and_then(|s| delta::unpack(&s).ok())
            .and_then(|raw| read_patch(&raw, None, Some(bytes.len())).ok())
            .and_then(|p| unapply(&p, &bytes))
            .filter(|b| b.len() as u64 == prev_entry.size && hash(b) == prev_entry.hash);
    }
    reached
}

/// New -> base, with the removed bytes the patch keeps.
fn unapply(p: &LocalPatch, new: &[u8]) -> Option<Vec<u8>> {
    if new.len() != p.new_len {
        return None;
    }
    let mut out = Vec::with_capacity(p.old_len);
    let (mut np, mut rp) = (0usize, p.inserted);
    for &(add, ins, skip) in &p.triples {
        out.extend_from_slice(new.get(np..np + add)?);
        np += add + ins;
        out.extend_from_slice(p.extra.get(rp..rp + skip)?);
        rp += skip;
    }
    Some(out)
}

/// Runs of consecutive indices in `sorted`, as (first, last).
fn ranges(sorted: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => out.push((i, i)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::content_hash;

    fn lines(n: usize, tag: &str) -> Vec<u8> {
        let mut b = b"id|name|n\n".to_vec();
        for i in 0..n {
            b.extend_from_slice(format!("{i}|{tag} {i}|{}\n", i * 7).as_bytes());
        }
        b
    }

    #[test]
    fn chunks_match_the_store_hash_from_scratch() {
        for b in [
            Vec::new(),
            b"x".to_vec(),
            b"a\nb".to_vec(),
            lines(1000, "row"),
        ] {
            assert_eq!(Chunks::full(&b).digest(), content_hash(&b));
        }
    }

    /// Every edit of a pseudo-random sequence: the updated chunks equal those
    /// computed from scratch, and the CSV index that a whole parse gives.
    #[test]
    fn incremental_chunks_and_index_match_from_scratch() {
        let mut cur = lines(3000, "row");
        let mut chunks = Chunks::full(&cur);
        let mut idx = Some(TableIndex::parse(&cur, b'|').unwrap());
        let mut seed = 12345u64;
        let mut rnd = |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % m.max(1)
        };
        for round in 0..400 {
            let idx0 = TableIndex::parse(&cur, b'|').unwrap();
            let rows = idx0.rows();
            let mut new = cur.clone();
            let (lo, hi_old, ins): (usize, usize, Vec<u8>) = match round % 4 {
                0 => {
                    // change a cell in place
                    let r = idx0.row_range(rnd(rows));
                    let bar = cur[r.clone()].iter().position(|&c| c == b'|').unwrap();
                    let at = r.start + bar + 1;
                    (at, at + 1, b"Z".to_vec())
                }
                1 => {
                    // insert a row
                    let at = idx0.starts[rnd(rows)];
                    (at, at, format!("new{round}|x|{round}\n").into_bytes())
                }
                2 => {
                    // delete a row
                    let r = idx0.row_range(rnd(rows));
                    (r.start, r.end, Vec::new())
                }
                _ => {
                    // append at the end
                    (
                        cur.len(),
                        cur.len(),
                        format!("end{round}|y|1\n").into_bytes(),
                    )
                }
            };
            new.splice(lo..hi_old, ins.iter().copied());
            let hi_new = lo + ins.len();
            chunks.update(&new, cur.len(), lo, hi_new);
            assert_eq!(chunks, Chunks::full(&new), "round {round}");
            let pre = idx
                .take()
                .and_then(|i| csv_before(i, &cur, lo, hi_old, b'|'));
            idx = pre.and_then(|p| csv_after(p, &new, cur.len(), b'|'));
            let whole = TableIndex::parse(&new, b'|').unwrap();
            let got = idx.clone().expect("incremental index");
            assert_eq!(got.starts, whole.starts, "round {round}");
            assert_eq!(got.keys, whole.keys, "round {round}");
            assert_eq!(got.len, whole.len);
            cur = new;
        }
    }

    #[test]
    fn a_duplicate_key_or_a_broken_quote_is_left_to_the_whole_parse() {
        let cur = lines(200, "row");
        let idx = TableIndex::parse(&cur, b'|').unwrap();
        let at = idx.starts[50];
        for ins in [&b"7|dup|1\n"[..], b"\"open|x|1\n"] {
            let mut new = cur.clone();
            new.splice(at..at, ins.iter().copied());
            let pre = csv_before(idx.clone(), &cur, at, at, b'|');
            assert!(
                pre.and_then(|p| csv_after(p, &new, cur.len(), b'|'))
                    .is_none()
            );
            assert!(TableIndex::parse(&new, b'|').is_err());
        }
    }
}
