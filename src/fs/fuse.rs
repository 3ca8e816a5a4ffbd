//! The thin adapter between fuser and [`ReedFs`]: the only file that names
//! fuser types, and the one place where errors become errnos.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BackingId, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, MountOption,
    OpenFlags, PollEvents, PollFlags, PollNotifier, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen,
    ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::core::{Attr, Caching, Caller, Kind, ReedFs, SetAttr};
use super::error::FsError;
use crate::storage::StorageError;

/// Attributes and entries are never cached by the kernel: sizes must be
/// exact right after any commit, by us or by another process.
const TTL: Duration = Duration::ZERO;

/// Entries and attributes that never change while mounted (a version's
/// file): cached, so `ls -l @versions/` needs no request per file.
const STABLE_TTL: Duration = Duration::from_secs(3600);

/// Directories: a path walk would otherwise ask for every directory on the
/// way at every stat (`ls -l` of 10k versions: two requests per file).
/// Their size never matters; a table dropped by `rdb` elsewhere is gone
/// from the cache within this, and its files fail at once.
const DIR_TTL: Duration = Duration::from_secs(1);

fn ttl(a: &Attr) -> &'static Duration {
    if a.stable {
        &STABLE_TTL
    } else if a.kind == Kind::Dir {
        &DIR_TTL
    } else {
        &TTL
    }
}

/// The errno a caller sees for each error (docs/MOUNT.md lists them).
pub fn errno(e: &FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::Exists => Errno::EEXIST,
        FsError::ReadOnly(_) => Errno::EROFS,
        FsError::NotPermitted(_) => Errno::EPERM,
        FsError::IsDir => Errno::EISDIR,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::NameTooLong => Errno::ENAMETOOLONG,
        FsError::InvalidName(_) => Errno::EINVAL,
        FsError::TooBig(_) => Errno::EFBIG,
        FsError::CrossDir => Errno::EXDEV,
        FsError::NotSupported => Errno::ENOTSUP,
        FsError::BadHandle => Errno::EBADF,
        FsError::InvalidContent(_) => Errno::EINVAL,
        FsError::Interrupted(_) => Errno::ETIMEDOUT,
        // Not ESTALE: the kernel retries a call that fails with ESTALE,
        // which would run (and refuse) the merge twice.
        FsError::Stale(_) => Errno::EBUSY,
        FsError::Storage(s) => match s {
            StorageError::Io { source, .. } => Errno::from(std::io::Error::from_raw_os_error(
                source.raw_os_error().unwrap_or(libc::EIO),
            )),
            StorageError::NotFound { .. } | StorageError::Pruned { .. } => Errno::ENOENT,
            StorageError::Exists { .. } => Errno::EEXIST,
            StorageError::Csv(_)
            | StorageError::Invalid { .. }
            | StorageError::InvalidName { .. } => Errno::EINVAL,
            StorageError::BaseMismatch { .. } => Errno::EBUSY,
            StorageError::Locked { .. } => Errno::EBUSY,
            StorageError::Corrupt { .. } | StorageError::Config { .. } => Errno::EIO,
        },
    }
}

fn fail(op: &str, e: &FsError) -> Errno {
    tracing::debug!(op, error = %e, "fuse op failed");
    counted(op, errno(e))
}

/// An errno answered without an `FsError` (a refusal of the adapter's
/// own), counted like those of [`fail`].
fn counted(op: &str, n: Errno) -> Errno {
    let name = errno_name(n.code());
    crate::metrics::inc(&crate::metrics::global().fuse_errors, &[op, name]);
    n
}

/// The symbolic name of the errnos the mount answers with (a label value).
fn errno_name(code: i32) -> &'static str {
    match code {
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::EROFS => "EROFS",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EISDIR => "EISDIR",
        libc::ENOTDIR => "ENOTDIR",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::EXDEV => "EXDEV",
        libc::ENOTSUP => "ENOTSUP",
        libc::EBADF => "EBADF",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EBUSY => "EBUSY",
        libc::ENOSPC => "ENOSPC",
        libc::EIO => "EIO",
        libc::EAGAIN => "EAGAIN",
        libc::ENODATA => "ENODATA",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTTY => "ENOTTY",
        libc::ENXIO => "ENXIO",
        _ => "other",
    }
}

/// Times a request from its arrival to the end of its handler (on drop):
/// `reedbase_fuse_operation_duration_seconds{op}`. A request answered later
/// from another thread (a query's open) counts its dispatch only.
struct Timed(&'static str, std::time::Instant);

impl Timed {
    fn start(op: &'static str) -> Timed {
        Timed(op, std::time::Instant::now())
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        let m = crate::metrics::global();
        crate::metrics::observe(&m.fuse_seconds, &[self.0], self.1.elapsed());
    }
}

fn attr(a: &Attr) -> FileAttr {
    let kind = match a.kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    };
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind,
        perm: a.perm,
        nlink: if a.kind == Kind::Dir { 2 } else { 1 },
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        flags: 0,
        // stdio sizes its buffers by st_blksize: large blocks mean few FUSE
        // round trips for tools like sed that write through stdio.
        blksize: 128 * 1024,
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn fopen(c: Caching) -> FopenFlags {
    match c {
        Caching::Keep => FopenFlags::FOPEN_KEEP_CACHE,
        Caching::Direct | Caching::Passthrough => FopenFlags::FOPEN_DIRECT_IO,
        Caching::Default => FopenFlags::empty(),
    }
}

/// Backing files registered with the kernel for passthrough reads. The
/// kernel allows one backing file per inode at a time, shared by every open.
#[derive(Default)]
struct Backing {
    /// Per inode: the registered id and the (device, inode) of its file.
    by_inode: HashMap<u64, (Weak<BackingId>, (u64, u64))>,
    /// What keeps each id alive: the handles using it.
    by_fh: HashMap<u64, Arc<BackingId>>,
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// Whether an open has already reported at WARN that the kernel refused a
/// passthrough backing file (a daemon serves one mount).
static PASSTHROUGH_REFUSED: AtomicBool = AtomicBool::new(false);

pub struct FuseFs {
    core: Arc<ReedFs>,
    /// Where opens of query results run (never on a request thread).
    queries: super::query_pool::QueryPool,
    /// Passthrough reads requested and accepted by the kernel.
    passthrough: bool,
    backing: Mutex<Backing>,
}

impl FuseFs {
    /// Serves a read of `current.csv` straight from its backing file.
    fn open_passthrough(&self, ino: u64, fh: u64, reply: ReplyOpen) {
        let Some(file) = self.core.take_backing_file(fh) else {
            // The backing file does not hold this head (yet): read through us.
            reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
            return;
        };
        let ident = match file.metadata() {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) => {
                reply.error(counted("open", Errno::from(e)));
                return;
            }
        };
        let mut b = self.backing.lock().unwrap_or_else(|p| p.into_inner());
        let live = b
            .by_inode
            .get(&ino)
            .and_then(|(w, id)| w.upgrade().map(|a| (a, *id)));
        let id = match live {
            Some((id, same)) if same == ident => id,
            Some(_) => {
                // A reader still has an older version's file open, and the
                // kernel shares one backing file per inode: we can neither
                // switch it nor serve this open another way.
                drop(b);
                let _ = self.core.release(
                    fh,
                    Caller {
                        uid: 0,
                        gid: 0,
                        pid: 0,
                    },
                );
                reply.error(counted("open", Errno::EBUSY));
                return;
            }
            None => match reply.open_backing(&file) {
                Ok(id) => {
                    let id = Arc::new(id);
                    b.by_inode.insert(ino, (Arc::downgrade(&id), ident));
                    id
                }
                Err(e) => {
                    // At WARN once per daemon: this runs for every open, and
                    // the cause (privileges, the kernel, the stacking depth)
                    // is the mount's, not the open's.
                    if PASSTHROUGH_REFUSED.swap(true, Ordering::Relaxed) {
                        tracing::debug!(error = %e, "passthrough unavailable for this open; reading through the daemon");
                    } else {
                        tracing::warn!(error = %e, "passthrough unavailable (reported once); reading through the daemon");
                    }
                    reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
                    return;
                }
            },
        };
        b.by_fh.insert(fh, Arc::clone(&id));
        reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id);
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        // O_TRUNC arrives with the open (else the kernel sends a separate
        // truncate without the handle); direct-I/O files stay mmap-able.
        let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
        let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        // Listings with attributes (readdirplus): `ls -l` of history costs
        // no request per file.
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        if self.passthrough {
            let ok = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if !ok {
                tracing::warn!(
                    "the kernel does not offer FUSE passthrough; reads go through the daemon"
                );
                self.passthrough = false;
            }
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _timed = Timed::start("lookup");
        match self.core.lookup(parent.0, name, caller(req)) {
            Ok(a) => reply.entry(ttl(&a), &attr(&a), Generation(0)),
            Err(e) => reply.error(fail("lookup", &e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _timed = Timed::start("getattr");
        match self.core.getattr(ino.0, fh.map(|f| f.0)) {
            Ok(a) => reply.attr(ttl(&a), &attr(&a)),
            Err(e) => reply.error(fail("getattr", &e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _timed = Timed::start("setattr");
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            mtime: mtime.map(time),
        };
        match self.core.setattr(ino.0, fh.map(|f| f.0), set) {
            Ok(a) => reply.attr(&TTL, &attr(&a)),
            Err(e) => reply.error(fail("setattr", &e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _timed = Timed::start("readlink");
        match self.core.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(fail("readlink", &e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let _timed = Timed::start("mkdir");
        match self.core.mkdir(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &attr(&a), Generation(0)),
            Err(e) => reply.error(fail("mkdir", &e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _timed = Timed::start("unlink");
        match self.core.unlink(parent.0, name, caller(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("unlink", &e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _timed = Timed::start("rmdir");
        match self.core.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("rmdir", &e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _timed = Timed::start("symlink");
        match self.core.symlink(
            parent.0,
            link_name,
            target.as_os_str().as_encoded_bytes(),
            caller(req),
        ) {
            Ok(a) => reply.entry(&TTL, &attr(&a), Generation(0)),
            Err(e) => reply.error(fail("symlink", &e)),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("rename");
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            reply.error(counted("rename", Errno::EINVAL));
            return;
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self
            .core
            .rename(parent.0, name, newparent.0, newname, noreplace, caller(req))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("rename", &e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _timed = Timed::start("link");
        reply.error(counted("link", Errno::EPERM));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _timed = Timed::start("open");
        if self.core.opens_a_query(ino.0) {
            // The query runs on a query thread, which replies; this request
            // thread is free at once for other callers.
            let (core, caller) = (Arc::clone(&self.core), caller(req));
            let queued = self.queries.run(reply, move |reply: ReplyOpen| {
                match core.open(ino.0, flags.0, caller) {
                    Ok((fh, c)) => reply.opened(FileHandle(fh), fopen(c)),
                    Err(e) => reply.error(fail("open", &e)),
                }
            });
            if let Err(reply) = queued {
                tracing::info!("too many queries pending: an open of a result fails with EAGAIN");
                reply.error(counted("open", Errno::EAGAIN));
            }
            return;
        }
        match self.core.open(ino.0, flags.0, caller(req)) {
            Ok((fh, Caching::Passthrough)) if self.passthrough => {
                self.open_passthrough(ino.0, fh, reply)
            }
            Ok((fh, c)) => reply.opened(FileHandle(fh), fopen(c)),
            Err(e) => reply.error(fail("open", &e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _timed = Timed::start("read");
        if self.core.is_feed(fh.0) {
            // A change feed: answered now or when data comes, never by
            // blocking this request thread.
            self.core.read_feed(
                fh.0,
                size,
                Box::new(move |r| match r {
                    Ok(d) => reply.data(&d),
                    Err(e) => reply.error(fail("read", &e)),
                }),
            );
            return;
        }
        match self.core.read(fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(fail("read", &e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _timed = Timed::start("write");
        match self.core.write_as(fh.0, offset, data, Some(caller(req))) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fail("write", &e)),
        }
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("flush");
        match self.core.flush(fh.0, caller(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("flush", &e)),
        }
    }

    fn release(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("release");
        self.backing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_fh
            .remove(&fh.0);
        // Errors here reach nobody but @status and the log (recorded by the core).
        match self.core.release(fh.0, caller(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("release", &e)),
        }
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("fsync");
        match self.core.fsync(fh.0, caller(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("fsync", &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _timed = Timed::start("readdir");
        let (entries, _) = match self.core.listing(fh.0, ino.0) {
            Ok(e) => e,
            Err(e) => {
                reply.error(fail("readdir", &e));
                return;
            }
        };
        let all = [
            (ino.0, Kind::Dir, ".".to_string()),
            (ino.0, Kind::Dir, "..".to_string()),
        ]
        .into_iter()
        .chain(entries.iter().cloned());
        for (i, (child, kind, name)) in all.enumerate().skip(offset as usize) {
            let ft = match kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
                Kind::Symlink => FileType::Symlink,
            };
            if reply.add(INodeNo(child.max(1)), (i + 1) as u64, ft, &name) {
                break;
            }
        }
        reply.ok();
    }

    /// readdir with each entry's attributes: with stable ones (history)
    /// the kernel answers `ls -l` from this listing alone. Attributes are
    /// computed only for the entries that fit in this reply.
    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _timed = Timed::start("readdirplus");
        let (entries, known) = match self.core.listing(fh.0, ino.0) {
            Ok(e) => e,
            Err(e) => {
                reply.error(fail("readdirplus", &e));
                return;
            }
        };
        let all = [ino.0, ino.0]
            .into_iter()
            .zip([".", ".."])
            .map(|(i, n)| (i, n.to_string()))
            .chain(entries.iter().map(|(i, _, n)| (*i, n.clone())));
        for (i, (child, name)) in all.enumerate().skip(offset as usize) {
            // Attributes taken with the listing, else asked for now; an
            // entry gone meanwhile (a scratch file removed) is skipped.
            let taken = i
                .checked_sub(2)
                .and_then(|k| known.get(k).cloned().flatten());
            let Some(a) = taken.or_else(|| self.core.getattr(child, None).ok()) else {
                continue;
            };
            if reply.add(
                INodeNo(child.max(1)),
                (i + 1) as u64,
                &name,
                ttl(&a),
                &attr(&a),
                Generation(0),
            ) {
                break;
            }
            // The kernel keeps a reference to every entry but . and ..
            if i >= 2 {
                self.core.looked_up(child);
            }
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _timed = Timed::start("opendir");
        match self.core.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(fail("opendir", &e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("releasedir");
        self.core.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("fsyncdir");
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _timed = Timed::start("statfs");
        match self.core.statfs() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                255,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(fail("statfs", &e)),
        }
    }

    // Extended attributes are not kept. ENOSYS (not ENOTSUP) tells the
    // kernel once for the whole mount: it stops asking, and answers
    // callers EOPNOTSUPP itself, so `ls -l` and `cp -a` cost no request per
    // file for ACLs and security labels.
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("setxattr");
        reply.error(counted("setxattr", Errno::ENOSYS));
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        let _timed = Timed::start("getxattr");
        reply.error(counted("getxattr", Errno::ENOSYS));
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        let _timed = Timed::start("listxattr");
        reply.error(counted("listxattr", Errno::ENOSYS));
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        let _timed = Timed::start("removexattr");
        reply.error(counted("removexattr", Errno::ENOSYS));
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        let _timed = Timed::start("access");
        match self.core.getattr(ino.0, None) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(fail("access", &e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _timed = Timed::start("create");
        match self.core.create(parent.0, name, mode, flags, caller(req)) {
            Ok((a, fh, c)) => {
                reply.created(&TTL, &attr(&a), Generation(0), FileHandle(fh), fopen(c))
            }
            Err(e) => reply.error(fail("create", &e)),
        }
    }

    // The handlers below replace fuser's defaults, which log every call at
    // WARN: a Python `open()` (its isatty check) or a `cp` must not grow the
    // daemon's log. Per-request outcomes are logged at debug at most.

    /// No file of ours is a terminal or takes a command: ENOTTY, which is
    /// what `isatty` (TCGETS) and `lsattr` (FS_IOC_GETFLAGS) expect.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        let _timed = Timed::start("ioctl");
        tracing::debug!(cmd, "ioctl: ENOTTY");
        reply.error(counted("ioctl", Errno::ENOTTY));
    }

    /// SEEK_DATA and SEEK_HOLE (`cp`, `tar` probing for holes). Our files
    /// have no holes: all of a file is data, and its only hole is the
    /// virtual one at its end. Offsets at or past the end (or negative)
    /// are ENXIO, as for a file on any local filesystem.
    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let _timed = Timed::start("lseek");
        if whence != libc::SEEK_DATA && whence != libc::SEEK_HOLE {
            // The kernel answers SEEK_SET, SEEK_CUR and SEEK_END itself and
            // never sends them. Not ENOSYS: that would make the kernel stop
            // asking for SEEK_DATA/SEEK_HOLE on the whole mount.
            reply.error(counted("lseek", Errno::EINVAL));
            return;
        }
        // The size this handle sees (its snapshot, or what it wrote).
        let size = match self.core.getattr(ino.0, Some(fh.0)) {
            Ok(a) => a.size,
            Err(e) => {
                reply.error(fail("lseek", &e));
                return;
            }
        };
        match u64::try_from(offset) {
            Ok(at) if at < size => {
                let to = if whence == libc::SEEK_DATA {
                    offset
                } else {
                    i64::try_from(size).unwrap_or(i64::MAX)
                };
                reply.offset(to)
            }
            _ => reply.error(counted("lseek", Errno::ENXIO)),
        }
    }

    /// Not supported, as fuser's default (the kernel then copies through
    /// read and write), without its WARN line.
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let _timed = Timed::start("copy_file_range");
        tracing::debug!("copy_file_range: ENOSYS");
        reply.error(counted("copy_file_range", Errno::ENOSYS));
    }

    /// Not supported, as fuser's default (callers see EOPNOTSUPP), quietly.
    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        let _timed = Timed::start("fallocate");
        tracing::debug!("fallocate: ENOSYS");
        reply.error(counted("fallocate", Errno::ENOSYS));
    }

    /// Not supported, as fuser's default (the kernel then treats our files
    /// as always ready, like regular files), quietly.
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let _timed = Timed::start("poll");
        tracing::debug!("poll: ENOSYS");
        reply.error(counted("poll", Errno::ENOSYS));
    }

    /// Devices, FIFOs and sockets cannot be made here (`mkfifo`): ENOSYS as
    /// fuser's default, quietly.
    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let _timed = Timed::start("mknod");
        tracing::debug!("mknod: ENOSYS");
        reply.error(counted("mknod", Errno::ENOSYS));
    }
}

/// How to mount.
#[derive(Debug, Clone, Default)]
pub struct FuseOptions {
    pub read_only: bool,
    pub allow_other: bool,
    /// Request threads (reads of one table never wait for a commit on another).
    pub threads: usize,
    /// Ask the kernel for passthrough reads of `current.csv`.
    pub passthrough: bool,
}

/// A live mount; [`Mount::unmount`] unmounts, joins the threads and writes
/// every table's head to the backing store.
pub struct Mount {
    session: Option<fuser::BackgroundSession>,
    core: Arc<ReedFs>,
}

pub fn mount(core: Arc<ReedFs>, mountpoint: &Path, opts: &FuseOptions) -> std::io::Result<Mount> {
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        MountOption::FSName("reedbase".into()),
        MountOption::Subtype("reedbase".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if opts.read_only {
        cfg.mount_options.push(MountOption::RO);
    }
    if opts.allow_other {
        cfg.acl = fuser::SessionACL::All;
        cfg.mount_options.push(MountOption::DefaultPermissions);
    }
    cfg.n_threads = Some(opts.threads.max(1));
    let fs = FuseFs {
        core: Arc::clone(&core),
        queries: super::query_pool::QueryPool::start()?,
        passthrough: opts.passthrough,
        backing: Mutex::new(Backing::default()),
    };
    let session = fuser::spawn_mount(fs, mountpoint, &cfg)?;
    // Cache invalidations go out from their own thread: sending them from a
    // request handler, or under a lock a handler needs, can deadlock.
    let notifier = session.notifier();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    core.set_invalidation_sink(tx);
    std::thread::Builder::new()
        .name("rdb-invalidate".into())
        .spawn(move || {
            while let Ok(ino) = rx.recv() {
                let _ = notifier.inval_inode(INodeNo(ino), 0, 0);
            }
        })?;
    // The change feed's poller (family/changes.rs): it holds the core only
    // while it polls, and stops when the feeds end.
    let weak = Arc::downgrade(&core);
    std::thread::Builder::new()
        .name("rdb-feed".into())
        .spawn(move || {
            while let Some(core) = weak.upgrade() {
                core.feed_wait(FEED_TICK);
                core.feed_tick();
            }
        })?;
    Ok(Mount {
        session: Some(session),
        core,
    })
}

/// How often the change feed looks for commits made outside this mount
/// (those made through it wake the poller at once).
const FEED_TICK: std::time::Duration = std::time::Duration::from_millis(20);

impl Mount {
    pub fn unmount(mut self) -> std::io::Result<()> {
        // Followers of the change feed get EOF, and close, first.
        self.core.end_feeds();
        let r = match self.session.take() {
            Some(s) => s.umount_and_join(),
            None => Ok(()),
        };
        self.core.flush_all();
        r
    }

    pub fn core(&self) -> &Arc<ReedFs> {
        &self.core
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.core.end_feeds();
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
        self.core.flush_all();
    }
}
