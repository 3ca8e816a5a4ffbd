//! Nothing acknowledged is lost: SIGKILL mid-storm, a full disk.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::generated;

use super::{Mounted, fuse_available, table};

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
    let writer = m.spawn(script);
    // Kill in the middle of the storm: once some saves are acknowledged.
    let acked_file = m.work.path().join("acked");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&acked_file).map_or(0, |a| a.lines().count()) < 20 {
        assert!(
            Instant::now() < deadline,
            "the storm saved nothing: {}",
            m.log()
        );
        // A poll interval, not a wait for a commit.
        std::thread::sleep(Duration::from_millis(10));
    }
    m.kill_daemon();
    let _ = writer.wait_with_output();
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
    m.verify();
    m.stop();
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
    let small = generated("users", 200, '|');
    let mut m = Mounted::created_in(
        tempfile::TempDir::new_in(store.path()).unwrap(),
        &small,
        &[],
    )
    .start();
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
    // `@status` says why, with the OS error, not only what failed.
    let status = m.status();
    assert!(status.contains("No space left on device"), "{status}");
    // Space again: the next save works and the store verifies.
    std::fs::remove_file(store.path().join("filler")).unwrap();
    m.sh_ok("sed -i 's/^1|[^|]*|/1|After|/' users/current.csv");
    m.stop();
    m.verify();
    assert_eq!(m.versions(), 2);
}
