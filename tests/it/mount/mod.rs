//! The real `rdb mount` daemon in a temporary directory, driven by real
//! programs (sed, sh, cp, mv, python3, vim, rsync, truncate), one file per
//! topic; this module is the one harness they share.
//!
//! The rules that keep a mount suite from hanging: every guard unmounts on
//! drop (a lazy unmount as the fallback) and reaps its daemon, also when a
//! test panics; every external program runs under a timeout; each test has
//! its own temporary directories and `REEDBASE_HOME`; a test never sleeps to
//! wait for a commit (a save is durable when its call returns); and without
//! `/dev/fuse` a test is skipped with a printed reason, except under CI where
//! it fails.

mod admin;
mod concurrent;
mod conflicts;
mod durability;
mod errors;
mod frames;
mod history;
mod limits;
mod metrics;
mod nothing_lost;
mod options;
mod others;
mod queries;
mod saves;
mod schema_rules;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::generated;

/// A mounted database `shop` with a `users` table.
struct Mounted {
    home: tempfile::TempDir,
    mp: tempfile::TempDir,
    /// A directory on another filesystem, for `mv` and scratch copies.
    work: tempfile::TempDir,
    child: Option<Child>,
    log: PathBuf,
    /// Extra `rdb mount` options.
    options: Vec<String>,
}

pub(crate) fn fuse_available() -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "/dev/fuse is required under CI"
        );
        eprintln!("skipping mount test: /dev/fuse cannot be opened");
    }
    ok
}

pub(crate) fn mounted_at(mp: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = mp.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&want))
}

impl Mounted {
    fn rdb(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rdb"));
        c.env("REEDBASE_HOME", self.home.path())
            .env("USER", "tester");
        c
    }

    fn new(table: &[u8]) -> Option<Mounted> {
        Mounted::with_options(table, &[])
    }

    fn with_options(table: &[u8], options: &[&str]) -> Option<Mounted> {
        Mounted::prepared(table, options).map(Mounted::start)
    }

    /// The database made, not mounted yet (for settings that need a mount
    /// to start with them).
    fn prepared(table: &[u8], options: &[&str]) -> Option<Mounted> {
        if !fuse_available() {
            return None;
        }
        Some(Mounted::created_in(
            tempfile::tempdir().unwrap(),
            table,
            options,
        ))
    }

    /// `shop` with `users` holding `table`, made under `home`; not mounted.
    fn created_in(home: tempfile::TempDir, table: &[u8], options: &[&str]) -> Mounted {
        let m = Mounted {
            home,
            mp: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            child: None,
            log: PathBuf::new(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        assert!(
            m.rdb()
                .args(["db:init", "shop"])
                .status()
                .unwrap()
                .success()
        );
        let src = m.work.path().join("users.csv");
        std::fs::write(&src, table).unwrap();
        assert!(
            m.rdb()
                .args(["table:create", "shop", "users", "--from"])
                .arg(&src)
                .status()
                .unwrap()
                .success()
        );
        m
    }

    fn start(mut self) -> Mounted {
        self.log = self
            .work
            .path()
            .join(format!("mount-{}.log", std::process::id()));
        let log = std::fs::File::create(&self.log).unwrap();
        let child = self
            .rdb()
            .args(["mount", "shop"])
            .arg(self.mp.path())
            .args(&self.options)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while !mounted_at(self.mp.path()) {
            if start.elapsed() > Duration::from_secs(10) {
                panic!(
                    "mount did not come up: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self
    }

    fn current(&self) -> PathBuf {
        self.mp.path().join("users/current.csv")
    }

    /// `timeout <secs> <program>` run in the mount's directory, with `WORK`
    /// (the other filesystem), `RDB` (the binary) and `REEDBASE_HOME` set.
    fn in_mount(&self, secs: u32, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg(secs.to_string())
            .arg(program)
            .current_dir(self.mp.path())
            .env("WORK", self.work.path())
            .env("RDB", env!("CARGO_BIN_EXE_rdb"))
            .env("REEDBASE_HOME", self.home.path());
        c
    }

    /// Runs a shell script in the mount's directory, with a timeout.
    fn sh(&self, script: &str) -> Output {
        self.in_mount(30, "sh")
            .args(["-c", script])
            .output()
            .unwrap()
    }

    /// Runs a Python script (`python3 -c`) in the mount's directory, with a
    /// timeout.
    fn py(&self, script: &str, args: &[&str]) -> Output {
        self.in_mount(30, "python3")
            .args(["-c", script])
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts a shell script in the mount's directory in the background,
    /// with a timeout; stdout is discarded, stderr kept for `wait_with_output`.
    fn spawn(&self, script: &str) -> Child {
        self.in_mount(60, "sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Starts every script at once (concurrent writers), in order.
    fn spawn_writers(&self, scripts: impl IntoIterator<Item = String>) -> Vec<Child> {
        scripts.into_iter().map(|s| self.spawn(&s)).collect()
    }

    /// SIGKILLs the daemon and lazily unmounts what it leaves behind.
    fn kill_daemon(&mut self) {
        let mut daemon = self.child.take().unwrap();
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mp.path())
            .status();
    }

    /// `@status` of the mounted database.
    fn status(&self) -> String {
        std::fs::read_to_string(self.mp.path().join("@status")).unwrap()
    }

    /// `rdb verify shop` must succeed.
    fn verify(&self) {
        let v = self.rdb().args(["verify", "shop"]).output().unwrap();
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    }

    /// Sets a database setting with `rdb db:config`.
    fn config(&self, key: &str, value: &str) {
        let set = self
            .rdb()
            .args(["db:config", "shop", key, value])
            .output()
            .unwrap();
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
    }

    /// Writes `bytes` to `WORK/<name>` (the other filesystem).
    fn work_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.work.path().join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The daemon's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exact bytes of version `seq` of `users` (`rdb version:show`).
    fn version_bytes(&self, seq: usize) -> Vec<u8> {
        let o = self
            .rdb()
            .args(["version:show", "shop", "users", &seq.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    /// Every stored version of `users`, oldest first.
    fn all_versions(&self) -> Vec<Vec<u8>> {
        (1..=self.versions())
            .map(|v| self.version_bytes(v))
            .collect()
    }

    /// Ids of the open conflicts (`rdb conflict:list`).
    fn conflict_ids(&self) -> Vec<String> {
        let list = self
            .rdb()
            .args(["conflict:list", "shop", "--format", "csv"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    }

    /// Makes a conflict on row `key`'s name (theirs committed by sed, ours
    /// refused); returns the name of the new file under `@conflicts/`.
    fn make_conflict(&self, key: u32, theirs: &str, ours: &str) -> String {
        self.make_conflicts(&[(key, theirs, ours)])
    }

    /// Makes one conflict on the names of several rows: for each (key,
    /// theirs, ours), theirs is committed by one `sed -i` and ours refused
    /// with EBUSY at the close of a handle that read the table before it
    /// (see `MAKE_CONFLICT`). Returns the name of the new file under
    /// `@conflicts/`.
    fn make_conflicts(&self, rows: &[(u32, &str, &str)]) -> String {
        let conflicts = || -> Vec<String> {
            std::fs::read_dir(self.mp.path().join("@conflicts"))
                .map(|d| {
                    d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let before = conflicts();
        let args: Vec<String> = rows
            .iter()
            .flat_map(|(k, t, o)| [k.to_string(), t.to_string(), o.to_string()])
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = self.py(MAKE_CONFLICT, &args);
        assert!(
            o.status.success(),
            "conflict on rows {rows:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let new: Vec<String> = conflicts()
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        assert_eq!(new.len(), 1, "one new conflict file: {new:?}");
        assert!(new[0].ends_with(".csv"), "{new:?}");
        new[0].clone()
    }

    /// Runs a shell script that must succeed; its stdout.
    fn out(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn sh_ok(&self, script: &str) {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "{script}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn versions(&self) -> usize {
        let o = self
            .rdb()
            .args(["version:list", "shop", "users", "--format", "csv"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().count() - 1
    }

    fn head_on_disk(&self) -> Vec<u8> {
        let o = self
            .rdb()
            .args(["table:export", "shop", "users"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    /// Stops the daemon with SIGTERM and waits for a clean exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "daemon exit {status}: {}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                    break;
                }
                if start.elapsed() > Duration::from_secs(15) {
                    let _ = child.kill();
                    panic!("daemon did not stop on SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        assert!(!mounted_at(self.mp.path()));
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none()
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if mounted_at(self.mp.path()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.mp.path())
                .status();
        }
    }
}

/// argv: triples of key, theirs, ours. Opens current.csv O_RDWR and reads
/// it (the base), lets one `sed -i` commit each `theirs` into row `key`'s
/// name, rewrites the file through its own handle with each `ours` there,
/// and closes: exit 0 only when the close fails with EBUSY.
const MAKE_CONFLICT: &str = r#"
import errno, os, subprocess, sys
rows = [sys.argv[i:i + 3] for i in range(1, len(sys.argv), 3)]
p = 'users/current.csv'
fd = os.open(p, os.O_RDWR)
base = b''
while True:
    chunk = os.read(fd, 1 << 16)
    if not chunk:
        break
    base += chunk
sed = ['sed', '-i']
for key, theirs, _ in rows:
    sed += ['-e', f's/^{key}|[^|]*|/{key}|{theirs}|/']
subprocess.run(sed + [p], check=True)
lines = base.split(b'\n')
for key, _, ours in rows:
    for i, line in enumerate(lines):
        if line.startswith(key.encode() + b'|'):
            cells = line.split(b'|')
            cells[1] = ours.encode()
            lines[i] = b'|'.join(cells)
mine = b'\n'.join(lines)
os.lseek(fd, 0, os.SEEK_SET)
os.ftruncate(fd, 0)
os.write(fd, mine)
try:
    os.close(fd)
except OSError as e:
    if e.errno == errno.EBUSY:
        sys.exit(0)
    sys.exit(f'close failed with {e!r}, not EBUSY')
sys.exit('close succeeded: no conflict')
"#;

/// The processes under `root` (itself included) and the system call each is
/// in (`/proc/<pid>/syscall`: a number, or `running`).
pub fn syscalls(root: u32) -> Vec<(u32, String)> {
    let stat = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let parent = |pid: u32| -> Option<u32> {
        let s = stat(pid)?;
        // pid (comm) state ppid ...
        s[s.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(all.iter().filter(|&&c| parent(c) == Some(p)));
        i += 1;
    }
    tree.into_iter()
        .filter_map(|p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/syscall")).ok()?;
            Some((p, s.split_whitespace().next()?.to_string()))
        })
        .collect()
}

/// Waits (polling, up to 20 s) until some process under each of `roots` is
/// inside one of the system calls `calls`: a test's way to know that a
/// program reached the mount, instead of sleeping and hoping it did.
pub fn wait_until_in_syscall(roots: &[u32], calls: &[libc::c_long]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for &root in roots {
        while !syscalls(root)
            .iter()
            .any(|(_, n)| n.parse().is_ok_and(|n: libc::c_long| calls.contains(&n)))
        {
            assert!(
                Instant::now() < deadline,
                "process {root} never reached {calls:?}: {:?}",
                syscalls(root)
            );
            // A poll interval, not a wait for an effect.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Python that reads a program's screen on a pseudo-terminal (`fd`, from
/// `pty.fork()`, defined before it): `read(deadline)` adds what arrives to
/// `seen`; `expect(pattern)` waits (20 s at most) until the screen shows
/// `pattern`, consumes the screen up to it and returns the match, or exits
/// saying what the screen showed.
pub const SCREEN_READER: &str = r#"
seen = b''
def read(deadline):
    global seen
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    if select.select([fd], [], [], left)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b''
        if not chunk:
            return False
        seen += chunk
    return True
def expect(pattern):
    global seen
    deadline = time.monotonic() + 20
    while True:
        m = re.search(pattern, seen)
        if m:
            seen = seen[m.end():]
            return m
        if not read(deadline):
            sys.exit(f'waiting for {pattern!r}, the screen shows {seen!r}')
"#;

/// `content` with row `key`'s name set to `name` (tables of `util::rows`).
fn with_name(content: &[u8], key: u32, name: &str) -> Vec<u8> {
    crate::util::set_row(
        content,
        &key.to_string(),
        &format!("{key}|{name}|{}", key * 7),
    )
}

/// What `users/current.csv` reads through the mount.
fn head(m: &Mounted) -> Vec<u8> {
    std::fs::read(m.current()).unwrap()
}

fn table() -> Vec<u8> {
    generated("users", 300, '|')
}
