//! Backup and restore (docs/FORMAT.md, "Backups").
//!
//! A backup directory holds the files of a database as of one moment,
//! content-addressed, and a manifest:
//!
//! ```text
//! <dir>/objects/<first 2 hex>/<sha256>   a file's bytes, named by their SHA-256
//! <dir>/backup.manifest                   what the backup holds (below)
//! ```
//!
//! ```text
//! reedbase-backup|1
//! db|<name>|<id>|<node>|<delimiter as a Unicode code point>
//! time|<UTC microseconds>
//! table|<name>|<head seq>|<head version>|<head hash>
//! file|<sha256>|<bytes>|<path relative to the database root>
//! end|<sha256 of every byte before this line>
//! ```
//!
//! Invariants:
//! - Consistent at a frame boundary: every table's lock is held (in name
//!   order, as frames take them) while its files are linked into a staging
//!   directory, so no commit or frame is half-way; the copy runs after the
//!   locks are released, from the links.
//! - Crash-safe and incremental: objects are written (temp, fsync,
//!   rename) before the manifest that names them replaces the old one
//!   durably; only then are objects no manifest names removed. An
//!   immutable file the last manifest lists with the same size is not read
//!   again. So a backup interrupted at any point leaves the previous one
//!   whole.
//! - Restore checks every object's SHA-256 while copying it, builds the
//!   database beside its final place and renames it in, then the caller
//!   verifies it whole (`Database::verify`).
//! - Local state (`state/`: indexes, mount attributes, sync replay state
//!   and access), derived files (`current.csv`, `rows.log`) and work in
//!   progress (`unsaved/`, temp files) are not backed up.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::database::{CONFIG, Database};
use super::error::{Result, StorageError};
use super::io::{Io, TEMP_MARKER, replace_file, sync_parent};
use super::table::TableSnapshot;

pub const MANIFEST: &str = "backup.manifest";
/// The flock one backup into a directory holds.
const LOCK: &str = ".lock";
const OBJECTS: &str = "objects";
const MAGIC: &str = "reedbase-backup|1";
/// Bytes read or written at a time: a file of any size is copied through
/// one buffer of this size.
const CHUNK: usize = 8 << 20;

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A backup's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub db_name: String,
    pub db_id: String,
    pub node: String,
    pub delimiter: char,
    pub time_us: u64,
    pub tables: Vec<TableSnapshot>,
    pub files: Vec<BackupFile>,
}

/// What a backup did.
#[derive(Debug, Clone, Default)]
pub struct BackupReport {
    pub manifest: Manifest,
    /// Bytes of the files the backup holds, and of those copied this time
    /// (the rest were in the backup already).
    pub bytes: u64,
    pub copied_bytes: u64,
    pub copied_files: u64,
    /// Objects of an earlier backup no longer needed, removed.
    pub removed_objects: u64,
}

impl Manifest {
    fn encode(&self) -> String {
        let mut s = format!("{MAGIC}\n");
        s.push_str(&format!(
            "db|{}|{}|{}|{}\n",
            self.db_name, self.db_id, self.node, self.delimiter as u32
        ));
        s.push_str(&format!("time|{}\n", self.time_us));
        for t in &self.tables {
            s.push_str(&format!(
                "table|{}|{}|{}|{}\n",
                t.table, t.head_seq, t.head_name, t.head_hash
            ));
        }
        for f in &self.files {
            s.push_str(&format!("file|{}|{}|{}\n", f.sha256, f.size, f.path));
        }
        let sum = hex(&Sha256::digest(s.as_bytes()));
        s.push_str(&format!("end|{sum}\n"));
        s
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let bad = |d: String| StorageError::corrupt(path, d);
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not text".into()))?;
        let body_end = text
            .rfind("end|")
            .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
            .ok_or_else(|| bad("no end line: an incomplete manifest".into()))?;
        let (body, end) = text.split_at(body_end);
        let want = end.trim_end().strip_prefix("end|").unwrap_or_default();
        if hex(&Sha256::digest(body.as_bytes())) != want {
            return Err(bad("fails its checksum".into()));
        }
        let mut m = Manifest::default();
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("not a ReedBase backup manifest (format 1)".into()));
        }
        for (n, line) in lines.enumerate() {
            let f: Vec<&str> = line.split('|').collect();
            let num = |s: &str| {
                s.parse::<u64>()
                    .map_err(|_| bad(format!("line {}: {s:?}", n + 2)))
            };
            match f.as_slice() {
                ["db", name, id, node, d] => {
                    m.db_name = name.to_string();
                    m.db_id = id.to_string();
                    m.node = node.to_string();
                    m.delimiter = char::from_u32(num(d)? as u32).unwrap_or('|');
                }
                ["time", t] => m.time_us = num(t)?,
                ["table", t, seq, name, hash] => m.tables.push(TableSnapshot {
                    table: t.to_string(),
                    head_seq: num(seq)?,
                    head_name: name.to_string(),
                    head_hash: hash.to_string(),
                }),
                ["file", sha, size, path] => {
                    let ok_sha = sha.len() == 64 && sha.bytes().all(|c| c.is_ascii_hexdigit());
                    if !ok_sha || !safe_relative(path) {
                        return Err(bad(format!("line {}: a bad file entry", n + 2)));
                    }
                    m.files.push(BackupFile {
                        path: path.to_string(),
                        sha256: sha.to_string(),
                        size: num(size)?,
                    });
                }
                _ => return Err(bad(format!("line {}: not understood", n + 2))),
            }
        }
        Ok(m)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A path a manifest may name: relative, plain components, none hidden.
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p).components().all(|c| match c {
            Component::Normal(s) => {
                let s = s.to_string_lossy();
                !s.starts_with('.') && !s.contains(TEMP_MARKER)
            }
            _ => false,
        })
}

fn object_path(dir: &Path, sha: &str) -> PathBuf {
    dir.join(OBJECTS).join(&sha[..2]).join(sha)
}

/// Reads the manifest of the backup in `dir` (None: there is none).
pub fn read_manifest(io: &dyn Io, dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    match io.read(&path) {
        Ok(b) => Manifest::decode(&b, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("read", &path, e)),
    }
}

/// Streams `src` through SHA-256, writing the bytes to `dst` as well when
/// given (created new, fsynced at the end). Returns (sha256, bytes).
fn copy_hashing(io: &dyn Io, src: &Path, dst: Option<&Path>) -> Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut off = 0u64;
    loop {
        let chunk = io
            .read_at(src, off, CHUNK)
            .map_err(|e| StorageError::io("read", src, e))?;
        let last = chunk.len() < CHUNK;
        h.update(&chunk);
        if let Some(d) = dst {
            let r = if off == 0 {
                io.write_new(d, &chunk, last)
            } else {
                io.append(d, &chunk, last)
            };
            r.map_err(|e| StorageError::io("write", d, e))?;
        }
        off += chunk.len() as u64;
        if last {
            return Ok((hex(&h.finalize()), off));
        }
    }
}

/// The files under `dir` (recursively, symlinks not followed), absolute.
/// `every`: hidden names and temp files too (the backup's own objects
/// directory); else they are skipped (what is backed up), and so are
/// entries that are neither files nor directories.
fn files_under(io: &dyn Io, dir: &Path, every: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let names = match io.list(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("list", dir, e)),
    };
    for n in names {
        if !every && (n.starts_with('.') || n.contains(TEMP_MARKER)) {
            continue;
        }
        let p = dir.join(&n);
        match io.lstat(&p).map_err(|e| StorageError::io("stat", &p, e))? {
            Some(m) if m.is_dir() => files_under(io, &p, every, out)?,
            Some(m) if every || m.is_file() => out.push(p),
            _ => {}
        }
    }
    Ok(())
}

/// Files that change in place (appended or replaced): hashed on every
/// backup. Everything else is written once under a unique name.
fn changes_in_place(rel: &str) -> bool {
    rel == CONFIG
        || rel.starts_with("registry/")
        || rel.starts_with("conflicts/")
        || rel.starts_with("frames/open/")
        || rel.ends_with("/version.log")
        || rel.ends_with("/floor")
}

/// Directories of the database root that a backup holds besides tables.
const DB_DIRS: &[&str] = &[
    "registry",
    "frames",
    "queries",
    "sync/records",
    "sync/locations",
    "sync/resolved",
    "conflicts",
    "rejected",
];

impl Database {
    /// Backs the database up into `dest` (created if needed; a backup of
    /// this database there is brought up to date, copying only what is
    /// new). The database stays usable: commits wait only while each
    /// table's files are linked.
    pub fn backup(&self, dest: &Path) -> Result<BackupReport> {
        let io = &**self.io();
        let root = self.root();
        let prev = read_manifest(io, dest)?;
        if let Some(p) = &prev
            && p.db_id != self.config().id
        {
            return Err(StorageError::Invalid {
                what: dest.display().to_string(),
                reason: format!("holds a backup of another database ({:?})", p.db_name),
            });
        }
        if prev.is_none()
            && io
                .list(dest)
                .is_ok_and(|n| n.iter().any(|n| !n.starts_with('.')))
        {
            return Err(StorageError::Invalid {
                what: dest.display().to_string(),
                reason: "is not empty and holds no backup".into(),
            });
        }
        io.create_dir(&dest.join(OBJECTS))
            .map_err(|e| StorageError::io("create", dest, e))?;
        // One backup into a directory at a time: another's removal of
        // unused objects would take this one's new objects.
        let lock = super::lock::LockFile::open(&dest.join(LOCK))?;
        let _held = lock.acquire(
            &format!("backup directory {}", dest.display()),
            std::time::Duration::from_millis(self.config().lock_timeout_ms),
        )?;
        let state_dir = root.join("state");
        remove_stale_staging(io, &state_dir);
        let staging = state_dir.join(format!(
            "backup-{}-{}",
            std::process::id(),
            super::names::now_us()
        ));
        let result = self.backup_via(dest, &staging, prev.as_ref());
        let _ = io.remove_dir_all(&staging);
        result
    }

    fn backup_via(
        &self,
        dest: &Path,
        staging: &Path,
        prev: Option<&Manifest>,
    ) -> Result<BackupReport> {
        let io = &**self.io();
        let root = self.root();
        io.create_dir(staging)
            .map_err(|e| StorageError::io("create", staging, e))?;
        // Every table held at once: a frame holds all of its tables' locks
        // from its intent to its commit record, so none is half-way.
        let names = self.table_names()?;
        let tables = names
            .iter()
            .map(|n| self.table(n))
            .collect::<Result<Vec<_>>>()?;
        let time_us = super::names::now_us();
        let snaps = {
            let mut held = Vec::with_capacity(tables.len());
            for t in &tables {
                held.push(t.hold()?);
            }
            let mut snaps = Vec::with_capacity(tables.len());
            for (t, h) in tables.iter().zip(held.iter_mut()) {
                let into = staging.join("tables").join(t.name());
                snaps.push(t.snapshot_into(h, &into)?);
            }
            snaps
        };
        // The rest: each file is replaced atomically or written once.
        // (path relative to the database root, where to read it)
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        let relative = |base: &Path, found: Vec<PathBuf>| -> Vec<(String, PathBuf)> {
            found
                .into_iter()
                .filter_map(|p| {
                    let rel = p.strip_prefix(base).ok()?.to_string_lossy().into_owned();
                    Some((rel, p))
                })
                .collect()
        };
        let mut found = Vec::new();
        files_under(io, &staging.join("tables"), false, &mut found)?;
        files.extend(relative(staging, std::mem::take(&mut found)));
        if io.len(&root.join(CONFIG)).ok().flatten().is_some() {
            files.push((CONFIG.to_string(), root.join(CONFIG)));
        }
        for d in DB_DIRS {
            files_under(io, &root.join(d), false, &mut found)?;
        }
        files.extend(relative(root, found));
        files.sort();
        let known: BTreeMap<&str, &BackupFile> = prev
            .map(|p| p.files.iter().map(|f| (f.path.as_str(), f)).collect())
            .unwrap_or_default();
        let mut report = BackupReport::default();
        let mut entries = Vec::with_capacity(files.len());
        let mut object_dirs: HashSet<PathBuf> = HashSet::new();
        for (rel, src) in files {
            let size = match io
                .len(&src)
                .map_err(|e| StorageError::io("stat", &src, e))?
            {
                Some(s) => s,
                // Removed since it was listed: a resolved conflict may be;
                // a table's snapshot file may not (it would go missing).
                None if !src.starts_with(staging) => continue,
                None => {
                    return Err(StorageError::io(
                        "read",
                        &src,
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    ));
                }
            };
            let reuse = known
                .get(rel.as_str())
                .filter(|f| f.size == size && !changes_in_place(&rel))
                .filter(|f| matches!(io.len(&object_path(dest, &f.sha256)), Ok(Some(_))));
            let entry = match reuse {
                Some(f) => (*f).clone(),
                None => {
                    let (sha256, size, copied) = store_object(io, dest, &src)?;
                    if let Some(d) = object_path(dest, &sha256).parent() {
                        object_dirs.insert(d.to_path_buf());
                    }
                    if copied {
                        report.copied_bytes += size;
                        report.copied_files += 1;
                    }
                    BackupFile {
                        path: rel,
                        sha256,
                        size,
                    }
                }
            };
            report.bytes += entry.size;
            entries.push(entry);
        }
        let cfg = self.config();
        let manifest = Manifest {
            db_name: cfg.name.clone(),
            db_id: cfg.id.clone(),
            node: cfg.node.clone(),
            delimiter: cfg.delimiter,
            time_us,
            tables: snaps,
            files: entries,
        };
        // Every object the manifest names is durable before it: its bytes
        // (fsynced when written), its name and its directory's name.
        object_dirs.insert(dest.join(OBJECTS));
        for d in &object_dirs {
            io.sync_dir(d)
                .map_err(|e| StorageError::io("fsync directory", d, e))?;
        }
        // The commit point of the backup.
        replace_file(io, &dest.join(MANIFEST), manifest.encode().as_bytes())?;
        report.removed_objects = remove_unused_objects(io, dest, &manifest)?;
        report.manifest = manifest;
        Ok(report)
    }
}

/// Stores `src` as an object of the backup in `dest`: (sha256, bytes,
/// whether it was copied; false when an equal object was there).
fn store_object(io: &dyn Io, dest: &Path, src: &Path) -> Result<(String, u64, bool)> {
    let tmp = dest.join(OBJECTS).join(format!(
        "incoming{TEMP_MARKER}{}-{}",
        std::process::id(),
        super::names::now_us()
    ));
    let (sha, size) = copy_hashing(io, src, Some(&tmp))?;
    let obj = object_path(dest, &sha);
    let present = matches!(io.len(&obj), Ok(Some(_)));
    if present {
        let _ = io.remove(&tmp);
        return Ok((sha, size, false));
    }
    let dir = obj.parent().unwrap_or(dest);
    io.create_dir(dir)
        .map_err(|e| StorageError::io("create", dir, e))?;
    if let Err(e) = io.rename(&tmp, &obj) {
        let _ = io.remove(&tmp);
        return Err(StorageError::io("rename", &obj, e));
    }
    Ok((sha, size, true))
}

/// Removes the objects (and leftover temp files) `manifest` does not name.
fn remove_unused_objects(io: &dyn Io, dest: &Path, manifest: &Manifest) -> Result<u64> {
    let keep: HashSet<&str> = manifest.files.iter().map(|f| f.sha256.as_str()).collect();
    let objects = dest.join(OBJECTS);
    let mut all = Vec::new();
    files_under(io, &objects, true, &mut all)?;
    let mut removed = 0;
    for p in all {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !keep.contains(name.as_str()) && io.remove(&p).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the staging directories of backups whose process is gone.
fn remove_stale_staging(io: &dyn Io, state_dir: &Path) {
    let Ok(names) = io.list(state_dir) else {
        return;
    };
    for n in names {
        let pid = n
            .strip_prefix("backup-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid
            && !super::kept::alive(pid)
        {
            let _ = io.remove_dir_all(&state_dir.join(&n));
        }
    }
}

/// Restores the backup in `src` as a new database at `root` (which must
/// not exist), named `name`. Every object is checked against its SHA-256;
/// the database appears at `root` only once whole. The caller verifies it.
pub fn restore(io: &dyn Io, src: &Path, root: &Path, name: &str) -> Result<Manifest> {
    super::names::validate(name)?;
    let m = read_manifest(io, src)?.ok_or_else(|| StorageError::NotFound {
        kind: "backup",
        name: src.join(MANIFEST).display().to_string(),
    })?;
    if io
        .lstat(root)
        .map_err(|e| StorageError::io("stat", root, e))?
        .is_some()
    {
        return Err(StorageError::Exists {
            kind: "database directory",
            name: root.display().to_string(),
        });
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    io.create_dir(parent)
        .map_err(|e| StorageError::io("create", parent, e))?;
    let building = parent.join(format!(
        ".{name}.restoring{TEMP_MARKER}{}",
        std::process::id()
    ));
    let _ = io.remove_dir_all(&building);
    let result = restore_into(io, src, &m, &building, name);
    if let Err(e) = result {
        let _ = io.remove_dir_all(&building);
        return Err(e);
    }
    if let Err(e) = io.rename_noreplace(&building, root) {
        let _ = io.remove_dir_all(&building);
        return Err(StorageError::io("rename", root, e));
    }
    sync_parent(io, root)?;
    Ok(m)
}

fn restore_into(io: &dyn Io, src: &Path, m: &Manifest, into: &Path, name: &str) -> Result<()> {
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    for d in ["tables", "registry", "frames"] {
        let p = into.join(d);
        io.create_dir(&p)
            .map_err(|e| StorageError::io("create", &p, e))?;
        dirs.insert(p);
    }
    for f in &m.files {
        let dst = into.join(&f.path);
        let dir = dst.parent().unwrap_or(into).to_path_buf();
        if !dirs.contains(&dir) {
            io.create_dir(&dir)
                .map_err(|e| StorageError::io("create", &dir, e))?;
            // Each directory up to `into` is fsynced below (its entries).
            let mut d = dir.as_path();
            while d.starts_with(into) && dirs.insert(d.to_path_buf()) {
                match d.parent() {
                    Some(p) => d = p,
                    None => break,
                }
            }
        }
        let obj = object_path(src, &f.sha256);
        let (sha, size) = copy_hashing(io, &obj, Some(&dst)).map_err(|e| match e {
            StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                StorageError::corrupt(&obj, format!("missing: the object of {}", f.path))
            }
            e => e,
        })?;
        if sha != f.sha256 || size != f.size {
            return Err(StorageError::corrupt(
                &obj,
                format!(
                    "the object of {} does not match its checksum (damaged backup)",
                    f.path
                ),
            ));
        }
    }
    for d in &dirs {
        io.sync_dir(d)
            .map_err(|e| StorageError::io("fsync directory", d, e))?;
    }
    // Restored under another name: the config says so.
    let cfg_path = into.join(CONFIG);
    let mut cfg = super::config::Config::load(io, &cfg_path)?;
    if cfg.name != name {
        cfg.name = name.to_string();
        cfg.save(io, &cfg_path)?;
    }
    Ok(())
}

/// What a restored database lacks of its backup's manifest: each table's
/// head (sequence number and hash) must be there. Empty when whole.
pub fn missing_heads(db: &Database, m: &Manifest) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in &m.tables {
        let found = match db.table(&t.table) {
            Ok(table) => {
                let seq = table.head_seq()?;
                seq == t.head_seq && (seq == 0 || table.version(seq)?.hash == t.head_hash)
            }
            Err(StorageError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        if !found {
            out.push(format!(
                "table {}: the backup's head is version {} ({}), the restored copy differs",
                t.table, t.head_seq, t.head_hash
            ));
        }
    }
    Ok(out)
}
