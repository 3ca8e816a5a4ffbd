//! Concurrent writers: table locks, merges of distinct rows, editors' bases.

use std::time::{Duration, Instant};

use super::{Mounted, syscalls, table};

/// Whether a process under `root` is inside rename(2), renameat(2) or renameat2(2).
fn in_rename(root: u32) -> bool {
    let mut rename = vec![libc::SYS_renameat, libc::SYS_renameat2];
    #[cfg(target_arch = "x86_64")]
    rename.push(libc::SYS_rename);
    syscalls(root)
        .iter()
        .any(|(_, n)| n.parse().is_ok_and(|n: libc::c_long| rename.contains(&n)))
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
    let mut blocked = m.spawn("sed -i 's/^1|[^|]*|/1|Waiting|/' users/current.csv");
    // Wait for the commit itself: sed inside its rename onto current.csv.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !in_rename(blocked.id()) {
        assert!(
            blocked.try_wait().unwrap().is_none(),
            "sed finished while the table lock was held"
        );
        assert!(
            Instant::now() < deadline,
            "sed never reached its rename: {:?}",
            syscalls(blocked.id())
        );
        // A poll interval, not a wait for a commit.
        std::thread::sleep(Duration::from_millis(10));
    }
    // Meanwhile another table reads and writes normally (a hang here fails via timeout).
    m.sh_ok("timeout 5 cat orders/current.csv > /dev/null && timeout 5 sh -c \"echo '2|ink' >> orders/current.csv\"");
    m.sh_ok("timeout 5 head -1 users/current.csv > /dev/null");
    assert!(
        blocked.try_wait().unwrap().is_none() && in_rename(blocked.id()),
        "the commit should be waiting for the lock"
    );
    drop(lock);
    assert!(blocked.wait_with_output().unwrap().status.success());
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Waiting|")
    );
}

#[test]
fn fifty_concurrent_writers_on_distinct_rows_all_land() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // Writers 1..=50 each change their own row's name: even ones with sed -i
    // (rename onto current.csv), odd ones with Python reading and rewriting
    // the file in place (O_TRUNC after a read in the same process).
    let children = m.spawn_writers((1..=50u32).map(|w| {
        if w % 2 == 0 {
            format!("sed -i 's/^{w}|[^|]*|/{w}|Writer {w}|/' users/current.csv")
        } else {
            format!(
                "python3 -c \"p='users/current.csv'; d=open(p).read(); \
                 import re; d=re.sub(r'(?m)^{w}\\|[^|]*\\|', '{w}|Writer {w}|', d, count=1); open(p,'w').write(d)\""
            )
        }
    }));
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
    m.verify();
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
