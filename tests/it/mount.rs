//! The real `rdb mount` daemon in a temporary directory, driven by real
//! programs (sed, sh, cp, mv, python3, vim, rsync, truncate). Every guard
//! unmounts on drop, also when a test panics, so a failure never wedges the
//! suite (../shared/notes/testing-a-mount.md).

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

fn fuse_available() -> bool {
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

fn mounted_at(mp: &Path) -> bool {
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
        let m = Mounted {
            home: tempfile::tempdir().unwrap(),
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
        Some(m)
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

    /// Runs a shell script in the mount's directory, with a timeout.
    fn sh(&self, script: &str) -> Output {
        Command::new("timeout")
            .args(["30", "sh", "-c", script])
            .current_dir(self.mp.path())
            .env("WORK", self.work.path())
            .output()
            .unwrap()
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

fn table() -> Vec<u8> {
    generated("users", 300, '|')
}

#[test]
fn every_save_pattern_commits_exactly_one_version() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let cur = m.current();
    let mut expected_versions = 1;
    // Each step: a tool's save, and a check of the content it must leave.
    // (tool, script, a line the saved content must hold)
    let steps: [(&str, &str, &str); 12] = [
        (
            "sed -i",
            "sed -i 's/^1|[^|]*|/1|Sed Name|/' users/current.csv",
            "\n1|Sed Name|",
        ),
        (
            "shell >",
            "cat users/current.csv > \"$WORK/t.csv\" && sed 's/^2|[^|]*|/2|Redirect|/' \"$WORK/t.csv\" > users/current.csv",
            "\n2|Redirect|",
        ),
        (
            "shell >>",
            "echo '9001|Appended|a@x.org|30|DE|Berlin|2024-01-01|1.00|true|' >> users/current.csv",
            "\n9001|Appended|a@x.org|30|DE|Berlin|2024-01-01|1.00|true|\n",
        ),
        (
            "cp",
            "sed 's/^3|[^|]*|/3|Copied|/' users/current.csv > \"$WORK/c.csv\" && cp \"$WORK/c.csv\" users/current.csv",
            "\n3|Copied|",
        ),
        (
            "mv from another filesystem",
            "sed 's/^4|[^|]*|/4|Moved|/' users/current.csv > \"$WORK/m.csv\" && mv \"$WORK/m.csv\" users/current.csv",
            "\n4|Moved|",
        ),
        (
            "python temp file + os.replace",
            "python3 -c \"import os,tempfile; d=open('users/current.csv').read().replace('\\n5|','\\n5|Py',1); f=tempfile.NamedTemporaryFile('w',dir='users',prefix='.current.csv.',suffix='.tmp',delete=False); f.write(d); f.flush(); os.fsync(f.fileno()); f.close(); os.replace(f.name,'users/current.csv')\"",
            "\n5|Py",
        ),
        (
            "vim backupcopy=yes (with swap file)",
            "vim -es -N -u NONE -c 'set backupcopy=yes backup swapfile' -c '%s/^6|/6|VimYes/' -c 'wq' users/current.csv",
            "\n6|VimYes",
        ),
        (
            "vim backupcopy=no",
            "vim -es -N -u NONE -c 'set backupcopy=no backup' -c '%s/^7|/7|VimNo/' -c 'wq' users/current.csv",
            "\n7|VimNo",
        ),
        (
            "vim backupcopy=auto",
            "vim -es -N -u NONE -c 'set backupcopy=auto' -c '%s/^8|/8|VimAuto/' -c 'wq' users/current.csv",
            "\n8|VimAuto",
        ),
        (
            "emacs-style: rename away, symlink lock, new file",
            "ln -s 'user@host.1234' 'users/.#current.csv' && sed 's/^9|/9|Emacs/' users/current.csv > \"$WORK/e.csv\" && mv users/current.csv 'users/current.csv~' && cat \"$WORK/e.csv\" > users/current.csv && rm 'users/.#current.csv' 'users/current.csv~'",
            "\n9|Emacs",
        ),
        (
            "rsync (temp file + rename)",
            "sed 's/^10|/10|Rsync/' users/current.csv > \"$WORK/current.csv\" && rsync \"$WORK/current.csv\" users/current.csv",
            "\n10|Rsync",
        ),
        (
            "rsync --inplace",
            "sed 's/^11|/11|Inplace/' users/current.csv > \"$WORK/current.csv\" && touch -d '2001-01-01' \"$WORK/current.csv\" && rsync --inplace --no-whole-file -I \"$WORK/current.csv\" users/current.csv",
            "\n11|Inplace",
        ),
    ];
    for (what, script, needle) in steps {
        m.sh_ok(script);
        expected_versions += 1;
        let content = std::fs::read_to_string(&cur).unwrap();
        assert!(
            content.contains(needle),
            "{what}: {needle:?} missing from:\n{content}"
        );
        assert_eq!(
            m.versions(),
            expected_versions,
            "{what}: exactly one new version"
        );
        // The committed head is what the mount shows.
        assert!(
            m.head_on_disk() == content.as_bytes(),
            "{what}: the mount shows the committed head"
        );
        // Scratch files never linger as table content.
        let names: Vec<String> = std::fs::read_dir(m.mp.path().join("users"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n == "current.csv" || n.ends_with(".swp") || n.ends_with('~')),
            "{what}: {names:?}"
        );
    }
    // nano in a pseudo-terminal: move to line 13, type, save (^O, Enter), exit (^X).
    let nano = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("nano", ["nano", "--ignorercfiles", "+13", "users/current.csv"])
def send(b):
    os.write(fd, b); time.sleep(0.3)
def drain():
    try:
        while os.read(fd, 65536): pass
    except OSError: pass
time.sleep(0.8)
send(b"Nano")
send(b"\x0f"); send(b"\r"); send(b"\x18")
import threading; threading.Thread(target=drain, daemon=True).start()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    m.sh_ok(&format!(
        "TERM=xterm python3 -c '{}'",
        nano.replace('\'', "'\\''")
    ));
    expected_versions += 1;
    let content = std::fs::read_to_string(&cur).unwrap();
    assert!(
        content.contains("\nNano12|"),
        "nano: line 13 should start with Nano"
    );
    assert_eq!(
        m.versions(),
        expected_versions,
        "nano: exactly one new version"
    );
    // truncate -s 0: every row deleted, the header stays; done when it returns.
    m.sh_ok("truncate -s 0 users/current.csv");
    let content = std::fs::read_to_string(&cur).unwrap();
    assert_eq!(
        content,
        "id|name|email|age|country|city|created|score|active|bio\n"
    );
    assert_eq!(m.versions(), expected_versions + 1);
}

#[test]
fn refused_content_fails_the_call_keeps_the_head_and_the_bytes() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let before = std::fs::read(m.current()).unwrap();
    // A duplicate key through sed -i: the rename fails.
    let o = m.sh("sed -i 's/^5|/4|/' users/current.csv");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Invalid argument"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A wrong field count through cp: close fails.
    std::fs::write(m.work.path().join("bad.csv"), b"id|x\n1\n").unwrap();
    let o = m.sh("cp \"$WORK/bad.csv\" users/current.csv");
    assert!(!o.status.success(), "cp of invalid content must fail");
    assert!(
        std::fs::read(m.current()).unwrap() == before,
        "the head is unchanged"
    );
    assert_eq!(m.versions(), 1);
    let status = std::fs::read_to_string(m.mp.path().join("@status")).unwrap();
    assert!(status.contains("duplicate key \"4\""), "{status}");
    assert!(status.contains("expected 2 fields, found 1"), "{status}");
    // The refused bytes can be fetched back.
    let kept: Vec<PathBuf> = std::fs::read_dir(m.mp.path().join("@rejected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter()
            .any(|p| std::fs::read(p).unwrap() == b"id|x\n1\n")
    );
    // Virtual files are read-only; bad names are refused.
    assert!(!m.sh("echo x > users/@versions/new.csv").status.success());
    assert!(!m.sh("echo x > @status").status.success());
    assert!(!m.sh("mkdir users/sub").status.success());
    assert!(!m.sh("ln users/current.csv users/hard").status.success());
    assert!(!m.sh("mkdir 'bad name'").status.success());
}

#[test]
fn history_is_files_and_hidden_from_listings() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Second|/' users/current.csv");
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Third|/' users/current.csv");
    // @versions: one file per version, chronological under ls, no ':'.
    let o = m.sh("ls users/@versions");
    let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("log.csv"));
    assert!(names.iter().all(|n| !n.contains(':')));
    let mut sorted = names[..3].to_vec();
    sorted.sort();
    assert_eq!(sorted, names[..3]);
    let first = std::fs::read(m.mp.path().join("users/@versions").join(&names[0])).unwrap();
    assert!(first == table(), "the first version reads back");
    let log = std::fs::read_to_string(m.mp.path().join("users/@versions/log.csv")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    // Restore by copying a version over current.csv: a new version.
    m.sh_ok(&format!(
        "cp users/@versions/{} users/current.csv",
        names[0]
    ));
    assert!(
        std::fs::read(m.current()).unwrap() == table(),
        "restore by cp"
    );
    assert_eq!(m.versions(), 4);
    // Hidden from readdir: ls -a, find, grep -r and rsync -a see tables only.
    let ls = m.sh("ls -a users");
    assert_eq!(String::from_utf8_lossy(&ls.stdout), ".\n..\ncurrent.csv\n");
    let out = m.work.path().join("copy");
    m.sh_ok(&format!("rsync -a ./ {}/", out.display()));
    let copied = m.sh(&format!("cd {} && find . -type f | sort", out.display()));
    assert_eq!(
        String::from_utf8_lossy(&copied.stdout),
        "./users/current.csv\n"
    );
    let grep = m.sh("grep -rl Second .");
    assert_eq!(
        String::from_utf8_lossy(&grep.stdout),
        "",
        "grep -r must not walk history"
    );
    // A new table: mkdir, then write its current.csv.
    m.sh_ok("mkdir orders && printf 'id|item\\n1|pen\\n' > orders/current.csv");
    let tables = m
        .rdb()
        .args(["table:list", "shop", "--format", "csv"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tables.stdout).contains("orders,1,1,"));
    // A commit from the CLI while mounted shows at once.
    let f = m.work.path().join("cli.csv");
    std::fs::write(&f, b"id|item\n1|pen\n2|ink\n").unwrap();
    assert!(
        m.rdb()
            .args(["table:import", "shop", "orders"])
            .arg(&f)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        b"id|item\n1|pen\n2|ink\n"
    );
}

#[test]
fn sigkill_during_a_storm_of_saves_loses_no_acknowledged_save() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    // A writer that appends one numbered row per save and records each save
    // whose command returned success. coreutils' printf checks the close of
    // its stdout (where the commit happens); the shell's builtin echo would
    // not see a failed close.
    let script = "i=0; while [ $i -lt 400 ]; do i=$((i+1)); \
                  /usr/bin/printf '%s\\n' \"$((20000+i))|Storm $i|s$i@x.org|30|DE|Kiel|2024-01-01|1.00|true|\" >> users/current.csv && echo $i >> \"$WORK/acked\"; done";
    let mut writer = Command::new("timeout")
        .args(["60", "sh", "-c", script])
        .current_dir(m.mp.path())
        .env("WORK", m.work.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut daemon = m.child.take().unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let _ = writer.wait();
    let _ = Command::new("umount").arg("-l").arg(m.mp.path()).status();
    let acked: Vec<u32> = std::fs::read_to_string(m.work.path().join("acked"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(!acked.is_empty(), "the storm made no save before the kill");
    // Remount: every acknowledged save is there, and nothing half-written.
    let versions_before_remount = m.versions();
    let exported = String::from_utf8_lossy(&m.head_on_disk()).into_owned();
    let mut m = m.start();
    let content = std::fs::read_to_string(m.current()).unwrap();
    let exported_tail = &exported[exported.len().saturating_sub(130)..];
    for i in &acked {
        assert!(
            content.contains(&format!("\n{}|Storm {i}|", 20000 + i)),
            "acknowledged save {i} lost (acked up to {:?}, {versions_before_remount} versions logged, export ends {exported_tail}); content ends: {}",
            acked.last(),
            &content[content.len().saturating_sub(400)..]
        );
    }
    let v = m.rdb().args(["verify", "shop"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    m.stop();
}

#[test]
fn the_mount_helper_mounts_with_fstab_options() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    m.stop();
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("mount/mount.fuse.reedbase");
    let home = format!(
        "home={},show_virtual,defaults,_netdev",
        m.home.path().display()
    );
    let st = Command::new(&helper)
        .arg("shop")
        .arg(m.mp.path())
        .args(["-o", &home])
        .env("RDB", env!("CARGO_BIN_EXE_rdb"))
        .env_remove("REEDBASE_HOME")
        .status()
        .unwrap();
    assert!(st.success());
    assert!(mounted_at(m.mp.path()));
    // show_virtual reached the daemon: @status is listed.
    let ls = m.sh("ls");
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("@status"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Helper|/' users/current.csv");
    let um = m.rdb().arg("umount").arg(m.mp.path()).output().unwrap();
    assert!(
        um.status.success(),
        "{}",
        String::from_utf8_lossy(&um.stderr)
    );
    assert!(!mounted_at(m.mp.path()));
    assert!(String::from_utf8_lossy(&m.head_on_disk()).contains("\n1|Helper|"));
}

#[test]
fn a_commit_waiting_on_one_table_never_blocks_reads_of_another() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("mkdir orders && printf 'id|item\\n1|pen\\n' > orders/current.csv");
    // Hold users' table lock, as a slow commit from another process would.
    let lock_path = m.home.path().join("databases/shop/tables/users/lock");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    // SAFETY: flock on a valid fd we own.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    let mut blocked = Command::new("timeout")
        .args([
            "30",
            "sh",
            "-c",
            "sed -i 's/^1|[^|]*|/1|Waiting|/' users/current.csv",
        ])
        .current_dir(m.mp.path())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        blocked.try_wait().unwrap().is_none(),
        "the commit should be waiting for the lock"
    );
    // Meanwhile another table reads and writes normally (a hang here fails via timeout).
    m.sh_ok("timeout 5 cat orders/current.csv > /dev/null && timeout 5 sh -c \"echo '2|ink' >> orders/current.csv\"");
    m.sh_ok("timeout 5 head -1 users/current.csv > /dev/null");
    drop(lock);
    assert!(blocked.wait().unwrap().success());
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Waiting|")
    );
}

#[test]
fn disk_full_fails_the_save_with_enospc_and_corrupts_nothing() {
    if !fuse_available() {
        return;
    }
    // The backing store on a 3 MB tmpfs.
    let store = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(store.path())
        .status();
    if !st.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmpfs mount needed under CI (root)"
        );
        eprintln!("skipping: cannot mount a tmpfs");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _tmpfs = Unmount(store.path().to_path_buf());
    let m = Mounted {
        home: tempfile::TempDir::new_in(store.path()).unwrap(),
        mp: tempfile::tempdir().unwrap(),
        work: tempfile::tempdir().unwrap(),
        child: None,
        log: PathBuf::new(),
        options: Vec::new(),
    };
    assert!(
        m.rdb()
            .args(["db:init", "shop"])
            .status()
            .unwrap()
            .success()
    );
    let small = generated("users", 200, '|');
    let src = m.work.path().join("users.csv");
    std::fs::write(&src, &small).unwrap();
    assert!(
        m.rdb()
            .args(["table:create", "shop", "users", "--from"])
            .arg(&src)
            .status()
            .unwrap()
            .success()
    );
    let mut m = m.start();
    // Fill the store, then try to save a big, incompressible-ish table.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=1000"])
        .arg(format!("of={}/filler", store.path().display()))
        .stderr(Stdio::null())
        .status();
    let big = generated("users", 20000, '|');
    std::fs::write(m.work.path().join("big.csv"), &big).unwrap();
    let o = m.sh("cp \"$WORK/big.csv\" users/current.csv");
    assert!(!o.status.success(), "a save on a full disk must fail");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No space left on device"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let now = std::fs::read(m.current()).unwrap();
    assert!(
        now == small,
        "the head changed: {} bytes, was {}",
        now.len(),
        small.len()
    );
    // The bytes that did not fit are kept next to current.csv, in memory.
    let unsaved: Vec<String> = std::fs::read_dir(m.mp.path().join("users"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("current.csv.unsaved-"))
        .collect();
    assert_eq!(unsaved.len(), 1, "{unsaved:?}");
    assert!(std::fs::read(m.mp.path().join("users").join(&unsaved[0])).unwrap() == big);
    // Space again: the next save works and the store verifies.
    std::fs::remove_file(store.path().join("filler")).unwrap();
    m.sh_ok("sed -i 's/^1|[^|]*|/1|After|/' users/current.csv");
    m.stop();
    let v = m.rdb().args(["verify", "shop"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    assert_eq!(m.versions(), 2);
}

#[test]
fn mount_refuses_bad_mountpoints_with_clear_messages() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let run = |args: &[&str]| {
        let o = m.rdb().args(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let missing = m.work.path().join("nope");
    let (code, err) = run(&["mount", "shop", missing.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("mountpoint"), "{err}");
    let full = m.work.path();
    std::fs::write(full.join("something"), b"x").unwrap();
    let (code, err) = run(&["mount", "shop", full.to_str().unwrap()]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("not empty"), "{err}");
    let (code, err) = run(&["mount", "shop", m.mp.path().to_str().unwrap()]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("already a mount point"), "{err}");
    let (code, err) = run(&[
        "mount",
        "nodb",
        m.work.path().join("empty").to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{err}");
}

#[test]
fn passthrough_reads_are_exact_and_saves_by_rename_still_work() {
    let Some(m) = Mounted::with_options(&table(), &["--passthrough"]) else {
        return;
    };
    assert!(
        std::fs::read(m.current()).unwrap() == table(),
        "passthrough read"
    );
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Through|/' users/current.csv");
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Through|")
    );
    // With a reader holding the file open: saves by rename work; the kernel
    // keeps one backing file per inode, so a reader of the newer version
    // waits (EBUSY) until the older reader closes, and opening the file for
    // writing fails. docs/MOUNT.md documents both.
    let held = std::fs::File::open(m.current()).unwrap();
    m.sh_ok("sed -i 's/^2|[^|]*|/2|Renamed|/' users/current.csv");
    assert!(
        !m.sh("cat users/current.csv > /dev/null").status.success(),
        "newer reader while an older one is open"
    );
    assert!(
        !m.sh("echo '9|x' >> users/current.csv").status.success(),
        "writer while a passthrough reader is open"
    );
    drop(held);
    let now = std::fs::read_to_string(m.current()).unwrap();
    assert!(
        now.contains("\n1|Through|") && now.contains("\n2|Renamed|"),
        "newest content after the reader closed"
    );
    assert_eq!(m.versions(), 3);
}

#[test]
fn fifty_concurrent_writers_on_distinct_rows_all_land() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // Writers 1..=50 each change their own row's name: even ones with sed -i
    // (rename onto current.csv), odd ones with Python reading and rewriting
    // the file in place (O_TRUNC after a read in the same process).
    let mut children = Vec::new();
    for w in 1..=50u32 {
        let script = if w % 2 == 0 {
            format!("sed -i 's/^{w}|[^|]*|/{w}|Writer {w}|/' users/current.csv")
        } else {
            format!(
                "python3 -c \"p='users/current.csv'; d=open(p).read(); \
                 import re; d=re.sub(r'(?m)^{w}\\|[^|]*\\|', '{w}|Writer {w}|', d, count=1); open(p,'w').write(d)\""
            )
        };
        children.push(
            Command::new("timeout")
                .args(["60", "sh", "-c", &script])
                .current_dir(m.mp.path())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let mut failed = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        if !o.status.success() {
            failed.push((i + 1, String::from_utf8_lossy(&o.stderr).into_owned()));
        }
    }
    assert!(failed.is_empty(), "writers failed: {failed:?}");
    let content = std::fs::read_to_string(m.current()).unwrap();
    let missing: Vec<u32> = (1..=50)
        .filter(|w| !content.contains(&format!("\n{w}|Writer {w}|")))
        .collect();
    assert!(missing.is_empty(), "changes lost: {missing:?}");
    assert_eq!(m.versions(), 51, "one version per writer");
    let v = m.rdb().args(["verify", "shop"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn an_editor_saves_against_what_it_opened_not_the_new_head() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // An editor (here a Python one) reads the table; another process commits
    // while the editor holds it; then the editor rewrites the file in place
    // (O_TRUNC). Its save merges against the version it read: both changes
    // survive. (vim in batch mode reloads the file when it changed on disk,
    // so it cannot play this part.)
    m.sh_ok(
        "python3 -c \"import re, subprocess; p='users/current.csv'; d=open(p).read(); \
         subprocess.run(['sed', '-i', r's/^6|[^|]*|/6|Other|/', p], check=True); \
         d=re.sub(r'(?m)^5\\|[^|]*\\|', '5|Editor|', d, count=1); open(p, 'w').write(d)\"",
    );
    let content = std::fs::read_to_string(m.current()).unwrap();
    assert!(content.contains("\n5|Editor|"), "the editor's change");
    assert!(
        content.contains("\n6|Other|"),
        "the concurrent change survives the editor's save"
    );
    assert_eq!(m.versions(), 3);
}

#[test]
fn colliding_writers_each_end_merged_or_as_a_recorded_conflict() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // 20 writers all set row 1's name (and each its own row's name too):
    // every writer either lands (its own row changed, and row 1 holds some
    // writer's value) or fails with a conflict whose bytes are kept.
    let mut children = Vec::new();
    for w in 1..=20u32 {
        let own = 100 + w;
        let script = format!(
            "sed -i -e 's/^1|[^|]*|/1|Collide {w}|/' -e 's/^{own}|[^|]*|/{own}|Own {w}|/' users/current.csv"
        );
        children.push(
            Command::new("timeout")
                .args(["60", "sh", "-c", &script])
                .current_dir(m.mp.path())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let mut landed = 0;
    let mut refused = 0;
    for (i, c) in children.into_iter().enumerate() {
        let w = i as u32 + 1;
        let o = c.wait_with_output().unwrap();
        let content = std::fs::read_to_string(m.current()).unwrap();
        if o.status.success() {
            landed += 1;
            assert!(
                content.contains(&format!("\n{}|Own {w}|", 100 + w)),
                "writer {w} reported success but its row is missing"
            );
        } else {
            refused += 1;
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("Device or resource busy"),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                !content.contains(&format!("\n{}|Own {w}|", 100 + w)),
                "a refused writer's change must not land"
            );
        }
    }
    assert_eq!(landed + refused, 20);
    assert!(landed >= 1);
    // Every refused write is a conflict record, as data.
    let mut kept: Vec<String> = std::fs::read_dir(m.mp.path().join("@conflicts"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    kept.sort();
    assert_eq!(
        kept.len(),
        refused,
        "every refused write is recorded: {kept:?}"
    );
    for k in &kept {
        let cells = std::fs::read_to_string(m.mp.path().join("@conflicts").join(k)).unwrap();
        assert!(
            cells.starts_with("cell|key|column|base|ours|theirs|resolved\n1|1|name|"),
            "{cells}"
        );
    }
    let content = std::fs::read_to_string(m.current()).unwrap();
    assert!(
        content.contains("\n1|Collide "),
        "row 1 holds one writer's value"
    );
    assert_eq!(m.versions(), 1 + landed);
    let status = std::fs::read_to_string(m.mp.path().join("@status")).unwrap();
    assert_eq!(
        status.matches("conflicting cell").count(),
        refused,
        "{status}"
    );
    if refused < 2 {
        return;
    }
    // Resolve one with --ours (the refused writer's cells win) and one with --theirs.
    let ids = m.conflict_ids();
    assert_eq!(ids.len(), refused);
    let shown = m
        .rdb()
        .args(["conflict:show", "shop", &ids[0]])
        .output()
        .unwrap();
    let ours_value = String::from_utf8_lossy(&shown.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .split('|')
        .nth(4)
        .unwrap()
        .to_string();
    let r = m
        .rdb()
        .args(["conflict:resolve", "shop", &ids[0], "--ours"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let content = std::fs::read_to_string(m.current()).unwrap();
    assert!(
        content.contains(&format!("\n1|{ours_value}|")),
        "--ours applies the refused cell {ours_value:?}"
    );
    let before = std::fs::read(m.current()).unwrap();
    let r = m
        .rdb()
        .args(["conflict:resolve", "shop", &ids[1], "--theirs"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        std::fs::read(m.current()).unwrap() == before,
        "--theirs keeps the head"
    );
    assert_eq!(m.conflict_ids().len(), refused - 2);
    if refused < 3 {
        return;
    }
    // On a terminal, cell by cell: type a value of one's own.
    let driver = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def drain(seconds):
    end = time.time() + seconds
    out = b""
    while time.time() < end:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if b"? " in out or b"value: " in out:
            break
    return out
drain(5); os.write(fd, b"e\n")
drain(5); os.write(fd, b"Typed Name\n")
drain(5)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let st = Command::new("timeout")
        .args([
            "30",
            "python3",
            "-c",
            driver,
            env!("CARGO_BIN_EXE_rdb"),
            "conflict:resolve",
            "shop",
            &ids[2],
        ])
        .env("REEDBASE_HOME", m.home.path())
        .status()
        .unwrap();
    assert!(st.success(), "interactive resolve");
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Typed Name|"),
        "the typed value is the head's"
    );
    assert_eq!(m.conflict_ids().len(), refused - 3);
    if refused < 4 {
        return;
    }
    // Through the mount: edit the `resolved` column of the conflict file and save.
    let file =
        m.mp.path()
            .join("@conflicts")
            .join(format!("{}.csv", ids[3]));
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[1].split('|').collect();
    cells[6] = "Edited Name";
    lines[1] = cells.join("|");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Edited Name|"),
        "saving the edited conflict file resolves it"
    );
    assert!(!file.exists(), "a resolved conflict disappears");
}

#[test]
fn as_of_shows_every_table_at_a_frame_boundary() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Second|/' users/current.csv");
    let names: Vec<String> = String::from_utf8_lossy(&m.sh("ls users/@versions").stdout)
        .lines()
        .filter_map(|n| n.strip_suffix(".csv").map(String::from))
        .filter(|n| n != "log")
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A version's name is a time: the table as of then is that version.
    let first = std::fs::read(m.mp.path().join(format!("@as-of/{}/users.csv", names[0]))).unwrap();
    assert!(first == table(), "as of the first version");
    let o = m.sh(&format!(
        "cmp @as-of/{}/users.csv users/current.csv",
        names[1]
    ));
    assert!(o.status.success(), "as of the second version: the head");
    // Before the table existed there is nothing; a bad time is ENOENT.
    assert!(!m.sh("cat @as-of/-1h/users.csv").status.success());
    assert_eq!(m.sh("ls @as-of/-1h").stdout, b"");
    assert!(!m.sh("ls @as-of/yesterday").status.success());
    assert!(!m.sh("echo x > @as-of/-1s/users.csv").status.success());
    assert!(!String::from_utf8_lossy(&m.sh("ls -a").stdout).contains("@as-of"));

    // A frame over two tables, committed by another process meanwhile.
    let root = m.home.path().join("databases/shop");
    let db = reedbase::storage::Database::open(&root).expect("open the mounted database");
    db.create_table("orders", b"id|item\n1|tea\n", "test")
        .unwrap();
    let (_, users) = db.table("users").unwrap().head().unwrap();
    let users_new = String::from_utf8_lossy(&users)
        .replace("\n1|Second|", "\n1|Framed|")
        .into_bytes();
    assert!(users_new != *users);
    let mut f = reedbase::storage::Frame::begin("pair").unwrap();
    f.stage("users", reedbase::storage::Base::Head, users_new.clone())
        .unwrap();
    f.stage(
        "orders",
        reedbase::storage::Base::Head,
        b"id|item\n1|tea\n2|cake\n".to_vec(),
    )
    .unwrap();
    let done = db.commit_frame(f, "test").unwrap();
    let at = |us: u64| format!("@as-of/{}.{:06}", us / 1_000_000, us % 1_000_000);
    let after = at(done.ts_us);
    let before = at(done.ts_us - 1);
    let ls = m.sh(&format!("ls {after}"));
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "orders.csv\nusers.csv\n"
    );
    assert!(std::fs::read(m.mp.path().join(format!("{after}/users.csv"))).unwrap() == users_new);
    assert_eq!(
        std::fs::read(m.mp.path().join(format!("{after}/orders.csv"))).unwrap(),
        b"id|item\n1|tea\n2|cake\n"
    );
    assert!(std::fs::read(m.mp.path().join(format!("{before}/users.csv"))).unwrap() == *users);
    assert_eq!(
        std::fs::read(m.mp.path().join(format!("{before}/orders.csv"))).unwrap(),
        b"id|item\n1|tea\n"
    );
}

#[test]
fn frames_stage_and_commit_several_tables_with_shell_tools_only() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("mkdir orders && printf 'id|item\\n1|tea\\n' > orders/current.csv");
    let users_before = std::fs::read(m.current()).unwrap();
    m.sh_ok("mkdir @frames/pair");
    let ls = m.sh("ls @frames/pair");
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "ctl\norders.csv\nusers.csv\n"
    );
    assert!(!String::from_utf8_lossy(&m.sh("ls -a").stdout).contains("@frames"));
    // Stage with sed -i (temp file + rename) and >> (append).
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Framed|/' @frames/pair/users.csv");
    m.sh_ok("echo '2|cake' >> @frames/pair/orders.csv");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/pair/ctl").stdout).into_owned();
    assert!(ctl.contains("staged orders,users"), "{ctl}");
    // Nothing is visible before the commit.
    assert!(std::fs::read(m.current()).unwrap() == users_before);
    assert_eq!(
        std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        b"id|item\n1|tea\n"
    );
    m.sh_ok("echo commit > @frames/pair/ctl");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/pair/ctl").stdout).into_owned();
    assert!(ctl.starts_with("committed pair"), "{ctl}");
    let users = String::from_utf8(std::fs::read(m.current()).unwrap()).unwrap();
    assert!(users.contains("\n1|Framed|"), "{users}");
    assert_eq!(
        std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        b"id|item\n1|tea\n2|cake\n"
    );
    // One frame id and one time in both tables' logs.
    let logs: Vec<String> = ["users", "orders"]
        .iter()
        .map(|t| {
            let log = std::fs::read_to_string(m.mp.path().join(format!("{t}/@versions/log.csv")))
                .unwrap();
            log.lines().last().unwrap().to_string()
        })
        .collect();
    let frame_of = |l: &str| l.rsplit('|').next().unwrap().to_string();
    let time_of = |l: &str| l.split('|').nth(2).unwrap().to_string();
    assert!(
        !frame_of(&logs[0]).is_empty() && frame_of(&logs[0]) == frame_of(&logs[1]),
        "{logs:?}"
    );
    assert_eq!(time_of(&logs[0]), time_of(&logs[1]));
    m.sh_ok("rmdir @frames/pair");
    assert!(!m.sh("ls @frames/pair").status.success());

    // Bad content fails its save; the frame stays usable.
    m.sh_ok("mkdir @frames/second");
    std::fs::write(m.work.path().join("bad.csv"), b"id|item\n3\n").unwrap();
    let o = m.sh("cp \"$WORK/bad.csv\" @frames/second/orders.csv");
    assert!(
        !o.status.success(),
        "cp of invalid content into a frame must fail"
    );
    // A collision with a commit made meanwhile fails the whole frame (EBUSY),
    // keeps it staged, and changes no table; abort ends it.
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Mine|/' @frames/second/users.csv");
    m.sh_ok("echo '3|scone' >> @frames/second/orders.csv");
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Theirs|/' users/current.csv");
    let heads = || {
        (
            std::fs::read(m.current()).unwrap(),
            std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        )
    };
    let before = heads();
    let o = m.sh("/bin/echo commit > @frames/second/ctl");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("busy"),
        "{} / {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&m.sh("cat @status").stdout)
    );
    assert!(heads() == before, "a refused frame changes nothing");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/second/ctl").stdout).into_owned();
    assert!(ctl.contains("staged orders,users"), "{ctl}");
    m.sh_ok("echo abort > @frames/second/ctl");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/second/ctl").stdout).into_owned();
    assert!(ctl.starts_with("aborted"), "{ctl}");
    assert!(heads() == before);
}

#[test]
fn sigkill_during_a_storm_of_frames_leaves_every_frame_whole() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    for t in ["a", "b", "c"] {
        m.sh_ok(&format!(
            "mkdir {t} && printf 'id|v\\n1|0\\n2|0\\n' > {t}/current.csv"
        ));
    }
    // Two writers, each changing its own row of a, b and c in one frame per
    // round (sed -i into the frame, then commit); a round whose commit
    // returned success is recorded.
    let writer = |k: u32| {
        let script = format!(
            "i=0; while [ $i -lt 300 ]; do i=$((i+1)); f=w{k}-$i; mkdir @frames/$f || continue; \
             for t in a b c; do sed -i \"s/^{k}|.*/{k}|$i/\" @frames/$f/$t.csv; done; \
             /bin/echo commit > @frames/$f/ctl && echo $f >> \"$WORK/acked\"; rmdir @frames/$f; done"
        );
        Command::new("timeout")
            .args(["60", "sh", "-c", &script])
            .current_dir(m.mp.path())
            .env("WORK", m.work.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut writers = [writer(1), writer(2)];
    std::thread::sleep(Duration::from_millis(1500));
    let mut daemon = m.child.take().unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    for w in &mut writers {
        let _ = w.wait();
    }
    let _ = Command::new("umount").arg("-l").arg(m.mp.path()).status();
    let acked = std::fs::read_to_string(m.work.path().join("acked")).unwrap_or_default();
    let acked = acked.lines().count();
    assert!(acked > 0, "the storm committed no frame before the kill");
    let m = m.start();
    // Through the mount: the three tables hold the same rows, and their
    // histories name the same frames in the same order.
    let read = |t: &str| std::fs::read(m.mp.path().join(format!("{t}/current.csv"))).unwrap();
    let a = read("a");
    assert!(read("b") == a && read("c") == a, "half a frame is visible");
    let frames_of = |t: &str| -> Vec<String> {
        let log =
            std::fs::read_to_string(m.mp.path().join(format!("{t}/@versions/log.csv"))).unwrap();
        log.lines()
            .skip(2)
            .map(|l| l.rsplit('|').next().unwrap().to_string())
            .collect()
    };
    let fa = frames_of("a");
    assert_eq!(frames_of("b"), fa);
    assert_eq!(frames_of("c"), fa);
    assert!(
        fa.iter().all(|f| !f.is_empty()),
        "every change came from a frame"
    );
    assert!(
        fa.len() >= acked,
        "{} frames in history, {acked} acknowledged",
        fa.len()
    );
    let v = m.rdb().args(["verify", "shop"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn queries_are_files_under_at_query() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let o = m.sh("cat '@query/SELECT COUNT(*) AS n FROM users'");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = std::fs::read_to_string(m.current())
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("n\n{rows}\n"));
    // `/` is written %2F; a `%` of LIKE stays as it is.
    let o = m.sh("cat \"@query/SELECT id %2F 2 AS h FROM users WHERE id <= 3 ORDER BY id\"");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "h\n0\n1\n1\n");
    let like = m.sh("cat \"@query/SELECT COUNT(*) FROM users WHERE email LIKE '%@%'\"");
    assert_eq!(
        String::from_utf8_lossy(&like.stdout),
        format!("COUNT(*)\n{rows}\n")
    );
    // A commit shows in the next query.
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Queried|/' users/current.csv");
    let o = m.sh("cat \"@query/SELECT id FROM users WHERE name = 'Queried'\"");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "id\n1\n");
    // A bad query fails the read with EINVAL, never an empty success; @status has why.
    let bad = m.sh("cat '@query/SELECT nope FROM users'");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"));
    let status = std::fs::read_to_string(m.mp.path().join("@status")).unwrap();
    assert!(status.contains("no such column: nope"), "{status}");
    assert!(status.contains("1:8"), "{status}");
    assert!(!String::from_utf8_lossy(&m.sh("ls -a").stdout).contains("@query"));
    assert!(!m.sh("echo x > '@query/SELECT 1'").status.success());
    // A name that is not UTF-8 is refused (EINVAL), never run.
    let o = m.sh("python3 -c \"import os; os.open(b'@query/SELECT \\xff', os.O_RDONLY)\" 2>&1");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Invalid argument"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn saved_queries_are_versioned_files_run_as_csv_and_json() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let out = |script: &str| m.out(script);
    let sql = "SELECT id, name FROM users WHERE id <= 2 ORDER BY id";
    m.sh_ok(&format!("echo '{sql}' > @query/first.sql"));
    // The saved query's result equals the same query run by its text.
    let adhoc = out(&format!("cat '@query/{sql}'"));
    assert_eq!(adhoc.lines().count(), 3, "{adhoc}");
    assert_eq!(out("cat @query/first.csv"), adhoc);
    let json = out(
        "python3 -c 'import json; r = json.load(open(\"@query/first.json\")); print(len(r), sorted(r[0]))'",
    );
    assert_eq!(json.trim(), "2 ['id', 'name']");
    assert_eq!(out("cat @query/first.sql"), format!("{sql}\n"));
    assert_eq!(
        out("ls @query"),
        "first.sql\n",
        "listings name saved queries only"
    );
    // sed -i (a temp file renamed onto the query) saves a new version.
    m.sh_ok("sed -i 's/id <= 2/id <= 3/' @query/first.sql");
    assert_eq!(out("cat @query/first.csv").lines().count(), 4);
    assert_eq!(out("ls @query"), "first.sql\n", "sed's temp file is gone");
    // So does vim, with its swap file and backup next to the query.
    m.sh_ok("vim -es -u NONE -c '%s/id <= 3/id <= 4/' -c wq @query/first.sql");
    assert_eq!(out("cat @query/first.csv").lines().count(), 5);
    m.sh_ok("sed -i 's/id <= 4/id <= 3/' @query/first.sql");
    // A bad query fails the save where cp sees it, and the saved one stays.
    std::fs::write(m.work.path().join("bad.sql"), "SELECT nope FROM users\n").unwrap();
    let bad = m.sh("cp \"$WORK/bad.sql\" @query/first.sql");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"));
    let status = std::fs::read_to_string(m.mp.path().join("@status")).unwrap();
    assert!(
        status.contains("@query/first.sql") && status.contains("no such column: nope"),
        "{status}"
    );
    assert_eq!(out("cat @query/first.csv").lines().count(), 4);
    // Every save is a version in the backing store, as an immutable file.
    let dir = m.home.path().join("databases/shop/queries/first");
    let versions = |ext: &str| crate::util::files_ending(&dir, ext);
    assert_eq!(versions(".sql"), 4);
    // mv renames; rm deletes (a version that says so); results go with them.
    m.sh_ok("mv @query/first.sql @query/second.sql");
    assert!(!m.sh("cat @query/first.csv").status.success());
    assert_eq!(out("cat @query/second.csv").lines().count(), 4);
    m.sh_ok("rm @query/second.sql");
    assert_eq!(out("ls @query"), "");
    let gone = m.sh("cat @query/second.csv");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("No such file"));
    assert_eq!(versions(".deleted"), 1, "first's deletion by the rename");
    // Query results are read-only; the mount's read-only option covers saves.
    assert!(!m.sh("echo x > @query/second.csv").status.success());
}

#[test]
fn schema_toml_is_a_versioned_file_that_types_queries() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let out = |script: &str| m.out(script);
    assert!(!m.sh("cat users/schema.toml").status.success());
    assert_eq!(out("ls users"), "current.csv\n");
    m.sh_ok("echo 'SELECT age FROM users WHERE id = 1' > @query/age.sql");
    let age_json = || out("cat @query/age.json").replace([' ', '\n'], "");
    assert!(age_json().starts_with("[{\"age\":") && !age_json().contains("\"age\":\""));
    // Declared TEXT: the same column now reads as text.
    m.sh_ok("printf '[columns]\\nage = \"text\"\\n' > users/schema.toml");
    assert_eq!(out("cat users/schema.toml"), "[columns]\nage = \"text\"\n");
    assert_eq!(out("ls users"), "current.csv\nschema.toml\n");
    assert!(age_json().contains("\"age\":\""), "{}", age_json());
    assert!(
        !m.sh("cat '@query/SELECT age + 1 FROM users'")
            .status
            .success()
    );
    // A schema that names a missing column is refused where cp sees it.
    std::fs::write(
        m.work.path().join("bad.toml"),
        "[columns]\nnope = \"text\"\n",
    )
    .unwrap();
    let bad = m.sh("cp \"$WORK/bad.toml\" users/schema.toml");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"));
    let status = std::fs::read_to_string(m.mp.path().join("@status")).unwrap();
    assert!(
        status.contains("users/schema.toml") && status.contains("\"nope\""),
        "{status}"
    );
    assert_eq!(out("cat users/schema.toml"), "[columns]\nage = \"text\"\n");
    // sed -i saves through a rename; rm removes; inference is back.
    m.sh_ok("sed -i 's/text/integer/' users/schema.toml");
    assert!(!age_json().contains("\"age\":\""), "{}", age_json());
    m.sh_ok("vim -es -u NONE -c '%s/integer/real/' -c wq users/schema.toml");
    assert!(age_json().contains(".0"), "declared REAL: {}", age_json());
    m.sh_ok("rm users/schema.toml");
    assert!(!m.sh("cat users/schema.toml").status.success());
    let history = m
        .rdb()
        .args(["schema:show", "shop", "users", "--history"])
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout);
    let kinds: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with("age = ") || *l == "# (removed)")
        .collect();
    assert_eq!(
        kinds,
        [
            "age = \"text\"",
            "age = \"integer\"",
            "age = \"real\"",
            "# (removed)"
        ],
        "{history}"
    );
    // The table's versions are untouched by schema saves.
    assert_eq!(m.versions(), 1);
}

#[test]
fn filtered_columns_get_indices_that_index_list_and_explain_show() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let index_list = || {
        let o = m
            .rdb()
            .args(["index:list", "shop", "--format", "csv"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let listed = index_list();
    assert!(
        listed.contains("users,id,key,0,built at the first lookup"),
        "{listed}"
    );
    let explain = |sql: &str| {
        let o = m.sh(&format!("cat \"@query/EXPLAIN {sql}\""));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let q = "SELECT id FROM users WHERE country = 'DE'";
    assert!(
        explain(q).contains("no index on users.country yet: 0 of 2"),
        "{}",
        explain(q)
    );
    // Two lookups (auto_index_after = 2): the second builds the index.
    m.sh_ok(&format!("cat \"@query/{q}\" > /dev/null"));
    m.sh_ok("cat \"@query/SELECT name FROM users WHERE country = 'PL'\" > /dev/null");
    assert!(
        explain(q).contains("auto hash index on users.country ("),
        "{}",
        explain(q)
    );
    let listed = index_list();
    let row = listed
        .lines()
        .find(|l| l.starts_with("users,country,auto,2,built ("))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.ends_with("KiB"), "{row}");
    // A new mount remembers the lookups: the first query that parses the
    // table indexes the column again.
    let mut m = m;
    m.stop();
    let m = m.start();
    let o = m.out(&format!("cat \"@query/EXPLAIN {q}\""));
    assert!(o.contains("auto hash index on users.country ("), "{o}");
    // The threshold is a setting.
    let set = m
        .rdb()
        .args(["db:config", "shop", "auto_index_after", "5"])
        .output()
        .unwrap();
    assert!(set.status.success());
    let shown = m.rdb().args(["db:config", "shop"]).output().unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("auto_index_after = 5"));
}

#[test]
fn results_larger_than_memory_allows_stream_through_cat() {
    let Some(m) = Mounted::prepared(&table(), &[]) else {
        return;
    };
    let set = m
        .rdb()
        .args(["db:config", "shop", "max_rows_in_memory", "100"])
        .output()
        .unwrap();
    assert!(set.status.success());
    let m = m.start();
    // Every pair of users of one country: thousands of rows, streamed.
    let o = m.sh("cat \"@query/SELECT a.id, b.id FROM users a JOIN users b ON b.country = a.country\" | wc -l");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    let src = m.work.path().join("users.csv");
    let want = Command::new("python3")
        .arg("-c")
        .arg("import csv,sys,collections; c=collections.Counter(r['country'] for r in csv.DictReader(open(sys.argv[1], newline=''), delimiter='|')); print(sum(n*n for n in c.values()))")
        .arg(&src)
        .output()
        .unwrap();
    let want: usize = String::from_utf8_lossy(&want.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(want > 1000, "{want}");
    assert_eq!(got, want + 1, "rows plus the header");
    // Sorting that many rows would need them all in memory: refused, with why.
    let sorted = m.sh("cat \"@query/SELECT a.id, b.id FROM users a JOIN users b ON b.country = a.country ORDER BY b.id\"");
    assert!(!sorted.status.success());
    assert!(String::from_utf8_lossy(&sorted.stderr).contains("Invalid argument"));
    let status = std::fs::read_to_string(m.mp.path().join("@status")).unwrap();
    assert!(status.contains("max_rows_in_memory"), "{status}");
}
