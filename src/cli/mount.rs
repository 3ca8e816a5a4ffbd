//! `rdb mount` and `rdb umount`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reedbase::fs::fuse::{FuseOptions, mount};
use reedbase::fs::{MountOptions, MountedDb, ReedFs};
use reedbase::storage::Database;

use super::{Ctx, exit, fail};

/// How ReedBase mounts show in mountinfo: the mount sets fsname and subtype
/// `reedbase` (src/fs/fuse.rs). Mounted through fusermount3 (not root) the
/// type is `fuse.reedbase`; the fuser crate's own mount(2) as root drops the subtype,
/// leaving type `fuse` with source `reedbase`. `rdb umount` touches nothing
/// else.
const FSTYPE: &str = "fuse.reedbase";
const FSNAME: &str = "reedbase";

/// How long the root of a mount may take to answer a stat. A dead daemon's
/// mount fails at once (ENOTCONN); one that does not answer within this is
/// stopped or hung, which is not dead: it is never detached.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long `rdb umount` retries a busy unmount: a call in flight (a close
/// that commits takes milliseconds) ends well within it, while a process
/// with a file open or its working directory inside stays.
const BUSY_GRACE: Duration = Duration::from_secs(1);

/// How long `rdb umount` waits, once the kernel let go of the mount, for the
/// daemon to write every table back and exit.
const WRITE_BACK_WAIT: Duration = Duration::from_secs(30);

/// How long `fuser -vm` may take to name the holders of a busy mount.
const FUSER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
pub struct MountArgs {
    /// `<mountpoint>` mounts every registered database (one directory each);
    /// `<db> <mountpoint>` mounts one database at the mountpoint.
    #[arg(num_args = 1..=2, required = true, value_name = "[DB] MOUNTPOINT")]
    pub args: Vec<String>,
    /// Refuse every write.
    #[arg(long)]
    pub read_only: bool,
    /// List `@versions`, `@status` and other virtual names in directories.
    #[arg(long)]
    pub show_virtual: bool,
    /// Let other users in (with default_permissions; needs user_allow_other for non-root).
    #[arg(long)]
    pub allow_other: bool,
    /// Run in the background; `rdb umount` stops it.
    #[arg(long)]
    pub daemon: bool,
    /// Where the daemon's log goes (default: $REEDBASE_HOME/mounts/<name>.log).
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Request threads.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Serve reads of current.csv from the backing file (FUSE passthrough, root only):
    /// native read speed, but while a reader has current.csv open, opening it for
    /// writing fails (EINVAL) and a reader of a newer version waits (EBUSY). Saves by
    /// rename (sed -i, rsync, editors' atomic saves) are not affected.
    #[arg(long)]
    pub passthrough: bool,
    /// Largest file a writer may build in a table directory (bytes); larger writes fail with EFBIG.
    #[arg(long, default_value_t = 1 << 30)]
    pub max_file_size: u64,
    /// Do not sync distributed databases while mounted (by default the daemon exchanges
    /// with their locations after each commit and every --sync-interval seconds).
    #[arg(long)]
    pub no_sync: bool,
    /// Seconds between sync rounds of a distributed database.
    #[arg(long, default_value_t = 30)]
    pub sync_interval: u64,
    /// Serve Prometheus metrics over HTTP at PORT (loopback) or ADDRESS:PORT
    /// (`GET /metrics`); off by default. `<db>/@metrics` and `rdb metrics` always work.
    #[arg(long, value_name = "[ADDRESS:]PORT")]
    pub metrics_listen: Option<String>,
    /// mount(8)-style options: ro, show_virtual, allow_other, nonempty, passthrough (comma-separated).
    #[arg(short = 'o', value_delimiter = ',')]
    pub options: Vec<String>,
}

/// A mountinfo path field as the path it names: the kernel writes space,
/// tab, newline and backslash as three octal digits after a backslash.
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                u8::try_from(v).ok()
            });
        match (b[i], octal) {
            (b'\\', Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// One mount as mountinfo lists it.
struct MountEntry {
    path: Vec<u8>,
    fstype: String,
    source: String,
}

impl MountEntry {
    fn is_reedbase(&self) -> bool {
        self.fstype == FSTYPE || (self.fstype == "fuse" && self.source == FSNAME)
    }
}

/// The mounts of this mount namespace in the kernel's order: a later mount
/// on a path stacks over the earlier ones.
fn mounts() -> Vec<MountEntry> {
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    String::from_utf8_lossy(&info)
        .lines()
        .filter_map(|l| {
            // `<id> <parent> <dev> <root> <path> <options> [optional...] - <type> <source> <super options>`
            let (left, right) = l.split_once(" - ")?;
            let path = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            Some(MountEntry {
                path: unescape(path),
                fstype: right.next()?.to_string(),
                source: String::from_utf8_lossy(&unescape(right.next().unwrap_or(""))).into_owned(),
            })
        })
        .collect()
}

fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

/// The mount a path shows (the top-most one at it), if it is a mount point.
fn mount_at(mp: &Path) -> Option<MountEntry> {
    let want = path_bytes(mp);
    mounts().into_iter().rfind(|m| m.path == want)
}

/// Mount points as the kernel lists them.
pub fn mounted_at(mp: &Path) -> bool {
    mount_at(mp).is_some()
}

/// The absolute path of a mountpoint argument, found without asking the
/// mount itself when the path is a mount point: a dead mount fails every
/// stat (ENOTCONN) and a hung one never answers, so only the parent is
/// resolved then. Anything else (a symlink, `..`) resolves fully.
fn resolve_mountpoint(arg: &str) -> PathBuf {
    let p = Path::new(arg);
    if let (Some(parent), Some(name)) = (p.parent(), p.file_name()) {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = std::fs::canonicalize(parent) {
            let joined = dir.join(name);
            if mounted_at(&joined) {
                return joined;
            }
        }
    }
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What the root of a mount answers to a stat.
#[derive(Debug, PartialEq)]
enum Probe {
    Answers,
    /// ENOTCONN: the daemon is gone (killed, crashed) and the kernel
    /// aborted its connection; nothing can reach it any more.
    Dead,
    /// No answer within [`PROBE_TIMEOUT`]: a stopped or hung daemon.
    Silent,
}

/// Stats the root of the mount at `mp` on a thread of its own, so that a
/// daemon that never answers cannot hang the command.
fn probe(mp: &Path) -> Probe {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = mp.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("rdb-probe".into())
        .spawn(move || {
            let _ = tx.send(std::fs::metadata(&path).map(|_| ()));
        });
    if spawned.is_err() {
        // Unknown is never dead: a live mount must not be detached.
        return Probe::Answers;
    }
    match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(Err(e)) if matches!(e.raw_os_error(), Some(libc::ENOTCONN | libc::ECONNABORTED)) => {
            Probe::Dead
        }
        Ok(_) => Probe::Answers,
        Err(_) => Probe::Silent,
    }
}

/// The daemon recorded for `mp` in this home's pid file, if that process
/// is running and holds /dev/fuse: a pid file left by a killed daemon, its
/// pid since reused by an unrelated process, names nobody.
fn daemon_pid(ctx: &Ctx, mp: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(state_file(ctx, mp, "pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let holds_fuse = fds
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == Path::new("/dev/fuse")));
    holds_fuse.then_some(pid)
}

/// Whether `pid` is still running. A zombie has finished: it only waits
/// for its parent to collect its status.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the command name, which is in parentheses and
        // may itself hold spaces and parentheses.
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// A path as a shell word, for commands we tell the user to run.
fn shell_word(p: &Path) -> String {
    let s = p.to_string_lossy();
    if s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

enum Unmounted {
    Done,
    /// EBUSY: a process has a file open or its working directory inside,
    /// or something is mounted inside.
    Busy,
    Failed(String),
}

/// Unmounts `mp`: umount2 as root, else `fusermount3` (which lets the user
/// who mounted it). A plain unmount fails at once with EBUSY while anything
/// holds the mount; `lazy` detaches it anyway (MNT_DETACH), which only a
/// dead mount gets: a live daemon then writes back what it can no longer be
/// sure nobody changes.
fn unmount(mp: &Path, lazy: bool) -> Unmounted {
    let Ok(c) = std::ffi::CString::new(mp.as_os_str().as_encoded_bytes()) else {
        return Unmounted::Failed("the path holds a NUL byte".into());
    };
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: umount2 on a NUL-terminated path we own.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        return Unmounted::Done;
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EBUSY) => return Unmounted::Busy,
        // Not root: the user who mounted it may unmount with fusermount3.
        Some(libc::EPERM) => {}
        // Unmounted meanwhile (the daemon's own SIGTERM path, another umount).
        _ if !mounted_at(mp) => return Unmounted::Done,
        _ => return Unmounted::Failed(err.to_string()),
    }
    let out = std::process::Command::new("fusermount3")
        .arg(if lazy { "-uz" } else { "-u" })
        .arg(mp)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Unmounted::Done,
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr).trim().to_string();
            if why.contains("busy") {
                Unmounted::Busy
            } else {
                Unmounted::Failed(why)
            }
        }
        Err(e) => Unmounted::Failed(format!("{err} (and fusermount3: {e})")),
    }
}

/// Detaches the dead mount at `mp` (lazily: processes that still have
/// their working directory there cannot hold it up, and there is no daemon
/// left to write anything back) and removes its daemon's stale pid file.
fn detach_dead(ctx: &Ctx, mp: &Path) -> std::result::Result<(), String> {
    match unmount(mp, true) {
        Unmounted::Done => {
            if daemon_pid(ctx, mp).is_none() {
                let _ = std::fs::remove_file(state_file(ctx, mp, "pid"));
            }
            Ok(())
        }
        Unmounted::Busy => Err("busy".into()),
        Unmounted::Failed(why) => Err(why),
    }
}

/// Who holds the busy mount at `mp`: one line per process `fuser -vm`
/// names (`pid <n>: <command line>`), and the mounts inside it.
fn holders(mp: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    match fuser_pids(mp) {
        Ok(pids) => {
            for pid in pids {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .ok()
                    .map(|b| {
                        String::from_utf8_lossy(&b)
                            .trim_end_matches('\0')
                            .replace('\0', " ")
                    })
                    .filter(|c| !c.is_empty())
                    .or_else(|| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .ok()
                            .map(|c| c.trim().to_string())
                    })
                    .unwrap_or_else(|| "?".into());
                let cmd: String = cmd.chars().take(120).collect();
                let me = if pid == std::process::id() {
                    " (this command: run it from outside the mount)"
                } else {
                    ""
                };
                lines.push(format!("pid {pid}: {cmd}{me}"));
            }
        }
        Err(why) => lines.push(format!("(cannot ask fuser: {why})")),
    }
    let mut inside = path_bytes(mp);
    inside.push(b'/');
    for m in mounts() {
        if m.path.starts_with(&inside) {
            lines.push(format!(
                "a {} mount inside it: {}",
                m.fstype,
                String::from_utf8_lossy(&m.path)
            ));
        }
    }
    lines
}

/// The pids `fuser -m` finds using the filesystem at `mp`. fuser prints the
/// pids on stdout and its table (`-v`) on stderr; the pseudo-entry
/// `kernel` (the mount itself) is not a process.
fn fuser_pids(mp: &Path) -> std::result::Result<Vec<u32>, String> {
    use std::io::Read;
    let mut child = std::process::Command::new("fuser")
        .arg("-vm")
        .arg(mp)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("fuser -vm: {e} (install psmisc)"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < FUSER_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "fuser -vm did not finish in {} s",
                    FUSER_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let mut pids: Vec<u32> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn state_file(ctx: &Ctx, mp: &Path, ext: &str) -> PathBuf {
    let key: String = mp
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    // The readable part can collide (a-b, a_b); the CRC of the path does not.
    let crc = crc32fast::hash(mp.as_os_str().as_encoded_bytes());
    ctx.home
        .join("mounts")
        .join(format!("{}-{crc:08x}.{ext}", key.trim_start_matches('_')))
}

/// glibc gives each thread that allocates under contention an arena of its
/// own (up to 8 per core), and memory freed in one arena serves only that
/// arena: a daemon whose request, query and drop threads each allocate and
/// free a table's worth grows in steps over hours. Two arenas keep its
/// resident size at what its caches hold (1M rows: 2.4x the CSV settled,
/// against 3.8x and rising slowly with the default; docs/BENCHMARKS.md).
/// `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before
        // the daemon starts its threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on a set we own. Blocking before any
    // thread starts makes every thread inherit the mask, so SIGINT/SIGTERM
    // reach only our sigtimedwait.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        // From `rdb umount`: end the change feed's readers (they hold the
        // mount open), keep serving.
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait with a valid set and timeout.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

pub fn run(ctx: &Ctx, a: MountArgs) -> Result<i32> {
    let (db_name, mp) = match a.args.as_slice() {
        [mp] => (None, mp.clone()),
        [db, mp] => (Some(db.clone()), mp.clone()),
        _ => return Err(fail(exit::USAGE, "usage: rdb mount [DB] MOUNTPOINT")),
    };
    let opt = |o: &str| a.options.iter().any(|x| x == o);
    for o in &a.options {
        if !matches!(
            o.as_str(),
            "ro" | "show_virtual" | "allow_other" | "nonempty" | "passthrough"
        ) {
            tracing::warn!(option = %o, "mount option ignored");
        }
    }
    let read_only = a.read_only || opt("ro");
    let show_virtual = a.show_virtual || opt("show_virtual");
    let allow_other = a.allow_other || opt("allow_other");
    let passthrough = a.passthrough || opt("passthrough");
    // A daemon killed without unmounting leaves its mount behind, dead:
    // every call on it fails (ENOTCONN), so nothing can use the directory
    // until it is unmounted, and nothing is left to write back. Any other
    // mount there is refused before a stat could wait on a hung daemon.
    let resolved = resolve_mountpoint(&mp);
    if let Some(entry) = mount_at(&resolved) {
        if !entry.is_reedbase() || probe(&resolved) != Probe::Dead {
            return Err(fail(
                exit::CONFLICT,
                format!("{} is already a mount point", resolved.display()),
            ));
        }
        if let Err(why) = detach_dead(ctx, &resolved) {
            return Err(fail(
                exit::CONFLICT,
                format!(
                    "{} is a dead ReedBase mount (its daemon died) and cannot be unmounted here ({why}); run `umount -l {}` as root, or `fusermount3 -uz {}` as the user who mounted it",
                    resolved.display(),
                    shell_word(&resolved),
                    shell_word(&resolved)
                ),
            ));
        }
        eprintln!(
            "rdb: {} was a dead ReedBase mount (its daemon had died); unmounted it",
            resolved.display()
        );
    }
    let mp = std::fs::canonicalize(&mp)
        .map_err(|e| fail(exit::NOT_FOUND, format!("mountpoint {mp}: {e}")))?;
    if !mp.is_dir() {
        return Err(fail(
            exit::USAGE,
            format!("mountpoint {} is not a directory", mp.display()),
        ));
    }
    if mounted_at(&mp) {
        return Err(fail(
            exit::CONFLICT,
            format!("{} is already a mount point", mp.display()),
        ));
    }
    if !opt("nonempty")
        && std::fs::read_dir(&mp)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(fail(
            exit::CONFLICT,
            format!(
                "mountpoint {} is not empty (add -o nonempty to mount over it)",
                mp.display()
            ),
        ));
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(fail(
            exit::ERROR,
            format!(
                "cannot open /dev/fuse ({e}): load the fuse module, or install fuse3 and run as a user allowed to mount"
            ),
        ));
    }
    if a.daemon && std::env::var_os("RDB_MOUNT_CHILD").is_none() {
        return daemonize(ctx, &a, &mp);
    }

    limit_malloc_arenas();
    let signals = block_signals();
    let reg = ctx.registry()?;
    let mut dbs = Vec::new();
    match &db_name {
        Some(name) => {
            let (root, _) = reg.resolve(name, &ctx.cwd)?;
            dbs.push(MountedDb {
                name: name.clone(),
                db: Database::open(&root)?,
            });
        }
        None => {
            for (name, e) in reg.entries() {
                match Database::open(&e.path) {
                    Ok(db) => dbs.push(MountedDb {
                        name: name.clone(),
                        db,
                    }),
                    Err(err) => eprintln!("rdb: skipping database {name}: {}", err.report()),
                }
            }
            if dbs.is_empty() {
                return Err(fail(
                    exit::NOT_FOUND,
                    "no database to mount: create one with `rdb db:init`",
                ));
            }
        }
    }
    let names: Vec<String> = dbs.iter().map(|d| d.name.clone()).collect();
    // Distributed databases sync from their own thread; a read-only mount
    // still receives (integrating is not a write through the mount).
    let sync_roots: Vec<PathBuf> = if a.no_sync {
        Vec::new()
    } else {
        dbs.iter()
            .filter(|d| matches!(reedbase::sync::Locations::load(&d.db), Ok(Some(_))))
            .map(|d| d.db.root().to_path_buf())
            .collect()
    };
    let opts = MountOptions {
        read_only,
        show_virtual,
        max_file_bytes: a.max_file_size,
        passthrough,
    };
    let mut health = Vec::new();
    for d in dbs
        .iter()
        .filter(|d| sync_roots.iter().any(|r| r == d.db.root()))
    {
        let every = Duration::from_secs(d.db.config().health_interval_seconds.max(1));
        match reedbase::sync::health::Prober::start(d.db.root().to_path_buf(), every) {
            Ok(p) => health.push(p),
            Err(e) => eprintln!("rdb: not probing the locations of {}: {e}", d.name),
        }
    }
    let served: Vec<&Database> = dbs.iter().map(|d| &d.db).collect();
    let metrics = super::health::serve_metrics(ctx, &served, a.metrics_listen.as_deref())?;
    let core = Arc::new(ReedFs::new(dbs, db_name.is_some(), opts));
    // Gauges read at each scrape: the query caches' memory.
    let weak = Arc::downgrade(&core);
    reedbase::metrics::global().on_render(Box::new(move || {
        if let Some(core) = weak.upgrade() {
            core.note_cache_memory();
        }
    }));
    // Decode recent history in the background, so the first `@as-of` and
    // `@versions/` reads find their deltas decoded.
    let warm = Arc::clone(&core);
    let _ = std::thread::Builder::new()
        .name("rdb-prefetch".into())
        .spawn(move || warm.prefetch_history());
    let fuse_opts = FuseOptions {
        read_only,
        allow_other,
        threads: a.threads,
        passthrough,
    };
    let m =
        mount(core, &mp, &fuse_opts).with_context(|| format!("mounting at {}", mp.display()))?;
    let mut syncers = Vec::new();
    for root in sync_roots {
        let interval = Duration::from_secs(a.sync_interval.max(1));
        match reedbase::sync::Syncer::start(root.clone(), ctx.user.clone(), interval, None) {
            Ok(s) => syncers.push(s),
            Err(e) => eprintln!("rdb: not syncing {}: {e}", root.display()),
        }
    }
    let pid_file = state_file(ctx, &mp, "pid");
    // Mode 0700/0600 whatever the umask, never through a symlink (storage::io).
    if let Some(dir) = pid_file.parent() {
        let _ = reedbase::storage::io::create_private_dir(dir);
    }
    let _ =
        reedbase::storage::io::write_private(&pid_file, std::process::id().to_string().as_bytes());
    eprintln!(
        "mounted {} at {} (Ctrl-C or `rdb umount {}` to unmount)",
        names.join(", "),
        mp.display(),
        mp.display()
    );
    // Until a signal, or until someone unmounts us from outside.
    let start = Instant::now();
    loop {
        // What this mount's readers and writers need stays out of reach of
        // `rdb version:prune`.
        m.core().publish_pins();
        if let Some(sig) = wait_signal(&signals, Duration::from_millis(300)) {
            if sig == libc::SIGUSR1 {
                tracing::info!("ending the change feed's readers for an unmount");
                m.core().end_feeds();
                continue;
            }
            tracing::info!(signal = sig, "unmounting");
            // Followers of the change feed get EOF and close first; they
            // would keep the mount busy otherwise.
            m.core().end_feeds();
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut busy = unmount_busy(&mp);
            while busy && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                busy = unmount_busy(&mp);
            }
            if busy {
                // Exiting now would leave a dead mount behind: keep serving.
                eprintln!(
                    "rdb: {} is busy (a process has files or its working directory in it; `fuser -m` names it); still mounted",
                    mp.display()
                );
                continue;
            }
            break;
        }
        if start.elapsed() > Duration::from_secs(1) && !mounted_at(&mp) {
            tracing::info!("unmounted from outside");
            break;
        }
    }
    drop(syncers);
    drop(health);
    drop(metrics);
    m.core().remove_pins();
    let r = m.unmount();
    let _ = std::fs::remove_file(&pid_file);
    match r {
        Ok(()) => {
            eprintln!("unmounted {}", mp.display());
            Ok(exit::OK)
        }
        // Already unmounted from outside: nothing left to do.
        Err(e) if !mounted_at(&mp) => {
            tracing::debug!(error = %e, "already unmounted");
            eprintln!("unmounted {}", mp.display());
            Ok(exit::OK)
        }
        Err(e) => Err(e.into()),
    }
}

/// Tries to unmount `mp` ourselves first (as root); true when the kernel
/// refuses because the mount is in use.
fn unmount_busy(mp: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(mp.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: umount2 on a NUL-terminated path we own.
    let rc = unsafe { libc::umount2(c.as_ptr(), 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY)
}

/// Starts the same command in the background (a new session, stdio to a log
/// file) and waits until its mount is up.
fn daemonize(ctx: &Ctx, a: &MountArgs, mp: &Path) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let log = a
        .log_file
        .clone()
        .unwrap_or_else(|| state_file(ctx, mp, "log"));
    // The log holds query texts: mode 0600 in a 0700 directory whatever the
    // umask, never opened through a symlink (storage::io).
    if let Some(dir) = log.parent() {
        reedbase::storage::io::create_private_dir(dir)?;
    }
    let out = reedbase::storage::io::open_private_append(&log)?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(std::env::args_os().skip(1))
        .env("RDB_MOUNT_CHILD", "1")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if mounted_at(mp) {
            eprintln!(
                "mounted at {} (pid {}, log {})",
                mp.display(),
                child.id(),
                log.display()
            );
            return Ok(exit::OK);
        }
        if let Some(status) = child.try_wait()? {
            return Err(fail(
                exit::ERROR,
                format!("the mount daemon exited ({status}); see {}", log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Err(fail(
        exit::ERROR,
        format!("the mount did not come up in 15 s; see {}", log.display()),
    ))
}

/// Unmounts a ReedBase mount and waits for its daemon to write everything
/// back. Refuses any other filesystem; a dead mount (its daemon killed) is
/// detached at once; a busy one fails at once, naming who holds it.
pub fn umount(ctx: &Ctx, arg: &str) -> Result<i32> {
    let mp = resolve_mountpoint(arg);
    let Some(entry) = mount_at(&mp) else {
        return Err(fail(
            exit::NOT_FOUND,
            format!("{} is not mounted", mp.display()),
        ));
    };
    if !entry.is_reedbase() {
        return Err(fail(
            exit::NOT_FOUND,
            format!(
                "{} is not a ReedBase mount (it is a {} mount of {}); rdb umount leaves it alone",
                mp.display(),
                entry.fstype,
                entry.source
            ),
        ));
    }
    // Before the unmount: afterwards the daemon may be gone.
    let pid = daemon_pid(ctx, &mp);
    match probe(&mp) {
        Probe::Answers => {}
        Probe::Dead => {
            detach_dead(ctx, &mp).map_err(|why| {
                fail(
                    exit::ERROR,
                    format!(
                        "{} is a dead ReedBase mount and cannot be unmounted: {why}",
                        mp.display()
                    ),
                )
            })?;
            eprintln!(
                "unmounted {} (a dead mount: its daemon had died)",
                mp.display()
            );
            return Ok(exit::OK);
        }
        Probe::Silent => {
            // Our own stat now waits inside the mount, so the kernel would
            // call it busy: say what is really wrong.
            let who = pid.map_or("its daemon".to_string(), |p| {
                format!("its daemon (pid {p})")
            });
            return Err(fail(
                exit::ERROR,
                format!(
                    "{} is mounted but {who} does not answer within {} s (stopped or hung); resume it (`kill -CONT`) and run `rdb umount {}` again, or kill it (`kill -9`): `rdb umount` then detaches the dead mount",
                    mp.display(),
                    PROBE_TIMEOUT.as_secs(),
                    shell_word(&mp)
                ),
            ));
        }
    }
    // The kernel refuses a plain unmount while any call is in flight or any
    // process holds the mount, so when it succeeds no save is cut off; the
    // daemon then sees its mount gone, writes back and exits.
    let start = Instant::now();
    let mut waiting = false;
    loop {
        match unmount(&mp, false) {
            Unmounted::Done => break,
            Unmounted::Busy if start.elapsed() < BUSY_GRACE => {
                if !waiting && let Some(pid) = pid {
                    // Readers of `@changes` wait for the next commit and
                    // would hold the mount for ever: the daemon ends them
                    // (EOF), as it does at its own unmount.
                    // SAFETY: kill sends a signal; `pid` is our daemon (it
                    // holds /dev/fuse and wrote the mount's pid file).
                    unsafe { libc::kill(pid, libc::SIGUSR1) };
                }
                if !waiting {
                    eprintln!(
                        "rdb: {} is in use; waiting up to {} s for calls in flight",
                        mp.display(),
                        BUSY_GRACE.as_secs()
                    );
                    waiting = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Unmounted::Busy => {
                let who = holders(&mp);
                let who = if who.is_empty() {
                    "  (fuser names no process)".to_string()
                } else {
                    who.iter()
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                return Err(fail(
                    exit::LOCKED,
                    format!(
                        "{mp} is busy, still mounted; held by:\n{who}\nclose those files or leave the directory (`fuser -vm {word}` shows how each holds it), then run `rdb umount {word}` again",
                        mp = mp.display(),
                        word = shell_word(&mp)
                    ),
                ));
            }
            Unmounted::Failed(why) => {
                return Err(fail(
                    exit::ERROR,
                    format!("cannot unmount {}: {why}", mp.display()),
                ));
            }
        }
    }
    if let Some(pid) = pid {
        let start = Instant::now();
        let mut waiting = false;
        while running(pid) {
            if start.elapsed() > WRITE_BACK_WAIT {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "{} is unmounted, but its daemon (pid {pid}) has not finished writing back after {} s; it is still running",
                        mp.display(),
                        WRITE_BACK_WAIT.as_secs()
                    ),
                ));
            }
            if !waiting && start.elapsed() > Duration::from_secs(1) {
                eprintln!("rdb: waiting for the mount daemon (pid {pid}) to write everything back");
                waiting = true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    eprintln!("unmounted {}", mp.display());
    Ok(exit::OK)
}
