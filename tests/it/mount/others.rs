//! Another local user and `--allow-other`: the mount shows the owner's
//! modes (the owner's only until shared with chmod) and the kernel enforces
//! them (`default_permissions`).

use std::process::{Command, Output};

use super::{Mounted, table};
use crate::util::OtherUser;

fn as_user(m: &Mounted, user: &OtherUser, script: &str) -> Output {
    Command::new("timeout")
        .args(["30", "runuser", "-u", &user.name, "--", "sh", "-c", script])
        .current_dir(m.mp.path())
        .output()
        .unwrap()
}

fn denied(o: &Output, what: &str) {
    assert!(!o.status.success(), "{what} must be refused");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Permission denied"), "{what}: {err}");
}

#[test]
fn with_allow_other_others_see_only_what_the_owner_shares() {
    let Some(m) = Mounted::with_options(&table(), &["--allow-other"]) else {
        return;
    };
    let Some(user) = OtherUser::create() else {
        return;
    };
    // Nothing is shared by default.
    denied(
        &as_user(&m, &user, "cat users/current.csv"),
        "reading a table",
    );
    denied(&as_user(&m, &user, "ls"), "listing the database");
    // The owner shares one table, read-only.
    m.sh_ok("chmod 711 . && chmod 755 users && chmod 644 users/current.csv");
    let read = as_user(&m, &user, "cat users/current.csv");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(read.stdout, std::fs::read(m.current()).unwrap());
    let versions = m.versions();
    denied(
        &as_user(&m, &user, "echo '999|x' >> users/current.csv"),
        "writing a shared table",
    );
    denied(
        &as_user(&m, &user, "cp users/current.csv users/copy.csv"),
        "a file in someone else's table directory",
    );
    assert_eq!(m.versions(), versions, "nothing changed");
    // History, status and queries stay the owner's.
    denied(&as_user(&m, &user, "cat @status"), "@status");
    denied(&as_user(&m, &user, "ls users/@versions"), "@versions");
    denied(
        &as_user(&m, &user, "cat '@query/SELECT COUNT(*) FROM users'"),
        "@query",
    );
    // An owner change cannot be kept, not even by root.
    let chown = m.sh(&format!("chown {} users/current.csv", user.uid));
    assert!(!chown.status.success());
    assert!(String::from_utf8_lossy(&chown.stderr).contains("Operation not permitted"));
}
