//! Mount options, the mount helper, and refused mountpoints.

use std::path::Path;
use std::process::Command;

use super::{Mounted, mounted_at, table};

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
    // The kernel sends the release of a closed file after close returns:
    // until the daemon has it, the newer reader still waits (EBUSY).
    let start = std::time::Instant::now();
    let now = loop {
        match std::fs::read_to_string(m.current()) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => break r.unwrap(),
        }
    };
    assert!(
        now.contains("\n1|Through|") && now.contains("\n2|Renamed|"),
        "newest content after the reader closed"
    );
    assert_eq!(m.versions(), 3);
}
