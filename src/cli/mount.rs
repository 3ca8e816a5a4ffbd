//! `rdb mount` and `rdb umount`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reedbase::fs::fuse::{FuseOptions, mount};
use reedbase::fs::{MountOptions, MountedDb, ReedFs};
use reedbase::storage::Database;

use super::{Ctx, exit, fail};

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
    /// mount(8)-style options: ro, show_virtual, allow_other, nonempty, passthrough (comma-separated).
    #[arg(short = 'o', value_delimiter = ',')]
    pub options: Vec<String>,
}

/// Mount points as the kernel lists them.
pub fn mounted_at(mp: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mp.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ').nth(4).is_some_and(|f| {
            f.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\134", "\\")
                == want
        })
    })
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
                    Err(err) => eprintln!("rdb: skipping database {name}: {err}"),
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
    let opts = MountOptions {
        read_only,
        show_virtual,
        max_file_bytes: a.max_file_size,
        passthrough,
    };
    let core = Arc::new(ReedFs::new(dbs, db_name.is_some(), opts));
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
        if let Some(sig) = wait_signal(&signals, Duration::from_millis(300)) {
            tracing::info!(signal = sig, "unmounting");
            if unmount_busy(&mp) {
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

/// Unmounts and waits for the daemon to write everything back.
pub fn umount(ctx: &Ctx, mp: &str) -> Result<i32> {
    let mp = std::fs::canonicalize(mp).unwrap_or_else(|_| PathBuf::from(mp));
    if !mounted_at(&mp) {
        return Err(fail(
            exit::NOT_FOUND,
            format!("{} is not mounted", mp.display()),
        ));
    }
    let pid: Option<i32> = std::fs::read_to_string(state_file(ctx, &mp, "pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let Some(pid) = pid {
        // SAFETY: signalling a process id we recorded; it unmounts cleanly on SIGTERM.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    } else {
        let c = std::ffi::CString::new(mp.as_os_str().as_encoded_bytes())?;
        // SAFETY: umount2 on a path we own the string for.
        if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
            let st = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg(&mp)
                .status();
            if !st.is_ok_and(|s| s.success()) {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "cannot unmount {}: {}",
                        mp.display(),
                        std::io::Error::last_os_error()
                    ),
                ));
            }
        }
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
        if !mounted_at(&mp) && !alive {
            eprintln!("unmounted {}", mp.display());
            return Ok(exit::OK);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Err(fail(
        exit::ERROR,
        format!("{} is still mounted after 30 s", mp.display()),
    ))
}
