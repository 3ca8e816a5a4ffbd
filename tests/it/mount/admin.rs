//! Administering mounts: `rdb umount` touches only ReedBase mounts, cleans
//! up after a killed daemon at once, names who holds a busy mount; and the
//! daemon's log stays quiet under ordinary use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Mounted, mounted_at, table};

/// `rdb <args>` for `m`'s home, under `timeout` so a regression that waits
/// cannot hang the suite; its output and how long it took.
fn rdb_timed(m: &Mounted, args: &[&str], path: &Path) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_rdb"))
        .args(args)
        .arg(path)
        .env("REEDBASE_HOME", m.home.path())
        .env("USER", "tester")
        .output()
        .unwrap();
    (out, start.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// SIGKILLs the daemon and leaves its mount behind, dead (no unmount).
fn kill_leaving_a_dead_mount(m: &mut Mounted) {
    let mut daemon = m.child.take().unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let err = std::fs::metadata(m.mp.path()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    assert!(mounted_at(m.mp.path()));
}

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "none"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs(dir.to_path_buf()));
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "mounting a tmpfs is needed under CI (root)"
        );
        eprintln!("skipping: cannot mount a tmpfs");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if mounted_at(&self.0) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A process started with its working directory inside a mount; killed on
/// drop.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn umount_refuses_a_filesystem_that_is_not_reedbase() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(dir.path()) else {
        return;
    };
    std::fs::write(tmpfs.0.join("keep"), b"kept").unwrap();
    let (um, _) = rdb_timed(&m, &["umount"], &tmpfs.0);
    assert_eq!(um.status.code(), Some(3), "{}", stderr(&um));
    assert!(
        stderr(&um).contains("not a ReedBase mount") && stderr(&um).contains("tmpfs"),
        "{}",
        stderr(&um)
    );
    assert!(mounted_at(&tmpfs.0), "the tmpfs was unmounted");
    assert_eq!(std::fs::read(tmpfs.0.join("keep")).unwrap(), b"kept");
    // Our own mount is still unmounted as before.
    let (um, _) = rdb_timed(&m, &["umount"], m.mp.path());
    assert!(um.status.success(), "{}", stderr(&um));
    assert!(!mounted_at(m.mp.path()));
}

#[test]
fn umount_after_a_killed_daemon_detaches_the_dead_mount_at_once() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Before|/' users/current.csv");
    kill_leaving_a_dead_mount(&mut m);
    let (um, took) = rdb_timed(&m, &["umount"], m.mp.path());
    assert!(um.status.success(), "{}", stderr(&um));
    assert!(took < Duration::from_secs(10), "rdb umount took {took:?}");
    assert!(stderr(&um).contains("dead"), "{}", stderr(&um));
    assert!(!mounted_at(m.mp.path()));
    // The directory is usable again: mounting there works, and the commit
    // made before the kill is there.
    let m = m.start();
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Before|")
    );
}

#[test]
fn mount_on_a_dead_mountpoint_cleans_it_up_and_mounts() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    kill_leaving_a_dead_mount(&mut m);
    // No unmount in between: `rdb mount` detaches the dead mount itself.
    m.log = m.work.path().join("second-mount.log");
    let log = std::fs::File::create(&m.log).unwrap();
    let child = m
        .rdb()
        .args(["mount", "shop"])
        .arg(m.mp.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    m.child = Some(child);
    let start = Instant::now();
    let head = loop {
        // ENOTCONN while the dead mount is there, ENOENT once it is gone
        // and before the new one is up.
        if let Ok(head) = std::fs::read(m.current()) {
            break head;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the mount did not come back: {}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(head, table());
    assert!(m.log().contains("dead ReedBase mount"), "{}", m.log());
    m.sh_ok("sed -i 's/^2|[^|]*|/2|After|/' users/current.csv");
    assert_eq!(m.versions(), 2);
    m.stop();
}

#[test]
fn umount_of_a_busy_mount_fails_at_once_naming_the_holder() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let holder = Holder(
        Command::new("sleep")
            .arg("30")
            .current_dir(m.mp.path())
            .spawn()
            .unwrap(),
    );
    let (um, took) = rdb_timed(&m, &["umount"], m.mp.path());
    assert_eq!(um.status.code(), Some(6), "{}", stderr(&um));
    assert!(took < Duration::from_secs(5), "rdb umount took {took:?}");
    let err = stderr(&um);
    assert!(err.contains("busy"), "{err}");
    assert!(
        err.contains(&format!("pid {}: sleep 30", holder.0.id())),
        "{err}"
    );
    // Still mounted and serving.
    assert!(mounted_at(m.mp.path()));
    assert_eq!(std::fs::read(m.current()).unwrap(), table());
    drop(holder);
    let (um, _) = rdb_timed(&m, &["umount"], m.mp.path());
    assert!(um.status.success(), "{}", stderr(&um));
    assert!(!mounted_at(m.mp.path()));
}

#[test]
fn python_opens_and_cp_leave_no_warning_in_the_daemon_log() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // Each buffered open() asks the file whether it is a terminal (ioctl
    // TCGETS); SEEK_DATA/SEEK_HOLE see one extent of data as long as the
    // file.
    let py = m.py(
        r#"
import os
for _ in range(50):
    with open("users/current.csv") as f:
        f.read()
fd = os.open("users/current.csv", os.O_RDONLY)
size = os.fstat(fd).st_size
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
assert os.lseek(fd, 5, os.SEEK_DATA) == 5
assert os.lseek(fd, 0, os.SEEK_HOLE) == size
for whence in (os.SEEK_DATA, os.SEEK_HOLE):
    try:
        os.lseek(fd, size, whence)
        raise SystemExit("no ENXIO at the end")
    except OSError as e:
        assert e.errno == 6, e
"#,
        &[],
    );
    assert!(py.status.success(), "{}", stderr(&py));
    m.sh_ok(
        "cp users/current.csv \"$WORK/out.csv\" \
         && sed -i 's/^1|[^|]*|/1|Copied|/' \"$WORK/out.csv\" \
         && cp \"$WORK/out.csv\" users/current.csv",
    );
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Copied|")
    );
    let log = m.log();
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(loud.is_empty(), "{}", loud.join("\n"));
}

#[test]
fn umount_ends_the_change_feeds_readers_and_unmounts() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // A reader following the feed, from outside the mount (its working
    // directory must not hold the mount).
    let out_path = m.work.path().join("feed.out");
    let reader = Command::new("timeout")
        .arg("60")
        .arg("cat")
        .arg(m.mp.path().join("@changes"))
        .current_dir(m.work.path())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let mut seen = false;
    for i in 0..100 {
        m.sh_ok(&format!(
            "sed -i 's/^1|[^|]*|/1|Feed{i}|/' users/current.csv"
        ));
        std::thread::sleep(Duration::from_millis(100));
        if std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .contains("Feed")
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "the reader never got a line");
    let (um, took) = rdb_timed(&m, &["umount"], m.mp.path());
    assert!(um.status.success(), "{}", stderr(&um));
    assert!(took < Duration::from_secs(20), "rdb umount took {took:?}");
    assert!(!mounted_at(m.mp.path()));
    // The reader got end-of-file: cat exited by itself, with success.
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success(), "cat: {:?}", out.status);
}
