//! Sync: the library (`library.rs`), the `rdb` binary with locations on
//! local paths (`local.rs`), and hosts reached over real SSH in network
//! namespaces (`hosts.rs`). This module is the harness they share: a
//! `Host` is one location with its own `REEDBASE_HOME`.

mod hosts;
mod jepsen;
mod library;
mod local;
mod net;
mod route;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// One location: its own home (registry), the `shop` database inside it,
/// and the network namespace its commands run in (none: this machine).
pub struct Host {
    pub name: String,
    pub home: tempfile::TempDir,
    pub ns: Option<String>,
    /// Extra environment (a skewed clock).
    pub env: Vec<(String, String)>,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Host {
    pub fn new(name: &str) -> Host {
        Host {
            name: name.to_string(),
            home: tempfile::tempdir().unwrap(),
            ns: None,
            env: Vec::new(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.home.path().join("databases").join("shop")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let rdb = env!("CARGO_BIN_EXE_rdb");
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, rdb]);
                c
            }
            None => Command::new(rdb),
        };
        c.args(args)
            .current_dir(self.home.path())
            .env("REEDBASE_HOME", self.home.path())
            .env("USER", &self.name)
            .env_remove("REEDBASE_USER")
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `rdb args` here, with a time limit.
    pub fn rdb(&self, args: &[&str]) -> Ran {
        run_bounded(self.cmd(args), Duration::from_secs(120))
    }

    pub fn ok(&self, args: &[&str]) -> Ran {
        let r = self.rdb(args);
        assert_eq!(
            r.code, 0,
            "{}: rdb {args:?} failed: {}{}",
            self.name, r.stderr, r.stdout
        );
        r
    }

    /// Saves `content` as table `t` of `shop` (an import: a whole new content).
    pub fn save(&self, table: &str, content: &str) {
        self.save_in("shop", table, content);
    }

    pub fn save_in(&self, db: &str, table: &str, content: &str) {
        let f = self.home.path().join(format!("{table}.import.csv"));
        std::fs::write(&f, content).unwrap();
        self.ok(&["table:import", db, table, f.to_str().unwrap()]);
    }

    /// The head of table `t`, as the CLI exports it.
    pub fn head(&self, table: &str) -> String {
        self.ok(&["table:export", "shop", table]).stdout
    }

    /// `current.csv` of table `t` in the store, byte for byte.
    pub fn current(&self, table: &str) -> Vec<u8> {
        // The head writer refreshes it off the commit path: a read through
        // the CLI settles it first.
        self.head(table);
        std::fs::read(self.root().join("tables").join(table).join("current.csv")).unwrap()
    }
}

/// Runs `cmd`, killing it past `limit`; its output is read as it comes
/// (a large output never blocks it).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Ran {
    use std::io::Read;
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ran {
        code: status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    }
}

/// Edits table `t` at `host` by a function of its head.
pub fn edit(host: &Host, table: &str, f: impl FnOnce(String) -> String) {
    let next = f(host.head(table));
    host.save(table, &next);
}

/// A background `rdb` process of a host (a mount, or `sync:run`): stopped
/// with SIGTERM on drop (killed after 10 s), its mount lazily unmounted.
pub struct Daemon {
    child: Option<std::process::Child>,
    pub mp: Option<PathBuf>,
    pub log: PathBuf,
}

impl Daemon {
    /// `rdb mount shop <mp>` at `host`, once the mount is up.
    pub fn mount(host: &Host, mp: &std::path::Path, extra: &[&str]) -> Daemon {
        let mut args = vec!["mount", "shop", mp.to_str().unwrap()];
        args.extend(extra);
        let d = Daemon::spawn(host, &args, Some(mp.to_path_buf()));
        let start = std::time::Instant::now();
        while !crate::mount::mounted_at(mp) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mount did not come up: {}",
                std::fs::read_to_string(&d.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn spawn(host: &Host, args: &[&str], mp: Option<PathBuf>) -> Daemon {
        let log = host
            .home
            .path()
            .join(format!("daemon-{}.log", args.join("_").replace('/', "_")));
        let f = std::fs::File::create(&log).unwrap();
        let child = host
            .cmd(args)
            .stdout(std::process::Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            mp,
            log: log.clone(),
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.unmount_lazily();
    }

    fn unmount_lazily(&self) {
        if let Some(mp) = &self.mp
            && crate::mount::mounted_at(mp)
        {
            let _ = Command::new("umount").arg("-l").arg(mp).status();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let start = std::time::Instant::now();
            while child.try_wait().ok().flatten().is_none()
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.unmount_lazily();
    }
}

/// Polls `f` until it holds, at most `limit` (sync is asynchronous: a
/// change arrives when a round has run, not when the save returns).
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
