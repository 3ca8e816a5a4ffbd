//! Hosts on one machine: a network namespace per host, all cabled to a
//! switch (a bridge in a namespace of its own), a real sshd in each, and
//! `rdb` run inside a host's namespace. Everything lives in a temporary
//! directory and is removed on drop, also when a test panics: sshd and
//! daemons are killed by pid, never by name, and the namespaces deleted.
//!
//! Needs root, `ip` and `sshd`; without them a test is skipped with the
//! reason, except under CI (`CI=true`), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Host, run_bounded};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub struct Net {
    pub dir: tempfile::TempDir,
    pub switch: String,
    pub hosts: Vec<Host>,
    sshd_pids: Vec<PathBuf>,
}

fn sh(args: &[&str]) -> Result<(), String> {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    let r = run_bounded(c, Duration::from_secs(20));
    if r.code == 0 {
        Ok(())
    } else {
        Err(format!("{args:?}: {}", r.stderr.trim()))
    }
}

/// A new ed25519 key pair at `path` (and `path.pub`), no passphrase.
fn keygen(path: &Path) {
    let p = path.to_str().unwrap();
    sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p]).unwrap();
}

/// Whether hosts can be made here; prints why not (and fails under CI).
pub fn available() -> bool {
    let why = if unsafe { libc::geteuid() } != 0 {
        Some("not root")
    } else if !Path::new("/usr/sbin/sshd").exists() {
        Some("no /usr/sbin/sshd (package openssh-server)")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("no ip (package iproute2)")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "sync host tests need {why} under CI"
            );
            eprintln!("skipping sync host test: {why}");
            false
        }
    }
}

impl Net {
    /// `n` hosts named h0.., at 10.77.0.1.. on one switch, each with sshd.
    pub fn new(n: usize) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let id = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let switch = format!("rbs{id}");
        let mut net = Net {
            dir,
            switch: switch.clone(),
            hosts: Vec::new(),
            sshd_pids: Vec::new(),
        };
        sh(&["ip", "netns", "add", &switch]).unwrap();
        sh(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]).unwrap();
        sh(&["ip", "-n", &switch, "link", "set", "br0", "up"]).unwrap();
        let t = net.dir.path().to_path_buf();
        let key = t.join("userkey");
        keygen(&key);
        std::fs::copy(t.join("userkey.pub"), t.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        for i in 0..n {
            let ns = format!("rbh{id}h{i}");
            // Registered first: a failure below still deletes it.
            let mut host = Host::new(&format!("h{i}"));
            host.ns = Some(ns.clone());
            net.hosts.push(host);
            let (inner, outer) = (format!("v{i}"), format!("s{id}h{i}"));
            let outer = &outer[..outer.len().min(15)];
            sh(&["ip", "netns", "add", &ns]).unwrap();
            sh(&[
                "ip", "-n", &ns, "link", "add", &inner, "type", "veth", "peer", "name", outer,
                "netns", &switch,
            ])
            .unwrap();
            sh(&["ip", "-n", &switch, "link", "set", outer, "master", "br0"]).unwrap();
            sh(&["ip", "-n", &switch, "link", "set", outer, "up"]).unwrap();
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", Net::ip(i)),
                "dev",
                &inner,
            ])
            .unwrap();
            sh(&["ip", "-n", &ns, "link", "set", &inner, "up"]).unwrap();
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]).unwrap();
            let hostkey = t.join(format!("hostkey{i}"));
            keygen(&hostkey);
            let pid = t.join(format!("sshd{i}.pid"));
            let cfg = t.join(format!("sshd{i}.conf"));
            std::fs::write(
                &cfg,
                format!(
                    "Port 22\nListenAddress {}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n",
                    Net::ip(i),
                    hostkey.display(),
                    t.join("authorized_keys").display(),
                    pid.display()
                ),
            )
            .unwrap();
            let log = t.join(format!("sshd{i}.log"));
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "/usr/sbin/sshd",
                "-f",
                cfg.to_str().unwrap(),
                "-E",
                log.to_str().unwrap(),
            ])
            .unwrap();
            net.sshd_pids.push(pid);
        }
        // How hosts reach each other when a location sets nothing (the
        // travelling list never carries commands): the test's ssh, and rdb
        // at this binary's path. h0 creates the locations; it names both
        // explicitly (or has rdb installed), so it gets only the ssh.
        let ssh = net.ssh();
        for (i, h) in net.hosts.iter_mut().enumerate() {
            h.env.push(("REEDBASE_SSH".into(), ssh.clone()));
            if i > 0 {
                h.env.push((
                    "REEDBASE_REMOTE_RDB".into(),
                    env!("CARGO_BIN_EXE_rdb").into(),
                ));
            }
        }
        // sshd writes its pid file once it listens.
        let start = Instant::now();
        while !net.sshd_pids.iter().all(|p| p.exists()) && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        net
    }

    pub fn ip(i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// The ssh command hosts use to reach each other (the test's own key
    /// and known_hosts file).
    pub fn ssh(&self) -> String {
        let t = self.dir.path();
        format!(
            "ssh -i {} -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={} -o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR",
            t.join("userkey").display(),
            t.join("known_hosts").display()
        )
    }

    /// Where host `i`'s `shop` is, as another host reaches it.
    pub fn url(&self, i: usize) -> String {
        format!("root@{}:{}", Net::ip(i), self.hosts[i].root().display())
    }

    /// Cuts host `i` off the switch (`up`: heals it).
    pub fn link(&self, i: usize, up: bool) {
        let ns = self.hosts[i].ns.as_deref().unwrap();
        sh(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            &format!("v{i}"),
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for p in &self.sshd_pids {
            if let Some(pid) = std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: a pid this test's sshd wrote; signalling it is harmless if gone.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        for h in &self.hosts {
            if let Some(ns) = &h.ns {
                let _ = sh(&["ip", "netns", "del", ns]);
            }
        }
        let _ = sh(&["ip", "netns", "del", &self.switch]);
    }
}
