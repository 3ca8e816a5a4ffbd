//! Saves that must lose nothing, through the core without a kernel: each
//! test is the FUSE call sequence a real tool sends (docs/MOUNT.md).

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::tests::{ME, TABLE, close, create_new, fs, head, users, versions};
use super::*;
use crate::fs::node::ROOT;
use crate::storage::RealIo;

fn current(fs: &ReedFs) -> u64 {
    fs.lookup(users(fs), OsStr::new(CURRENT), ME).unwrap().ino
}

/// A made-up process: beyond any pid_max, so no real process (whose
/// thread group would be looked up) ever has its id.
fn pid(pid: u32) -> Caller {
    Caller {
        pid: 2_000_000_000 + pid,
        ..ME
    }
}

/// A mount of a fresh `shop` whose config is changed by `config` first.
fn fs_configured(config: impl FnOnce(&mut crate::storage::Config)) -> (tempfile::TempDir, ReedFs) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::init(Arc::new(RealIo), dir.path(), "shop", '|').unwrap();
    db.create_table("users", TABLE, "t").unwrap();
    drop(db);
    Database::update_config(dir.path(), |c| {
        config(c);
        Ok(())
    })
    .unwrap();
    let db = Database::open(dir.path()).unwrap();
    let fs = ReedFs::new(
        vec![MountedDb {
            name: "shop".into(),
            db,
        }],
        true,
        MountOptions::default(),
    );
    (dir, fs)
}

#[test]
fn concurrent_appenders_each_land_once_and_never_pad_with_zeros() {
    let (_d, fs) = fs();
    let cur = current(&fs);
    let (a, b) = (pid(10), pid(11));
    // `exec 3>>current.csv`: A opens for appending and holds it.
    let (fa, _) = fs.open(cur, libc::O_WRONLY | libc::O_APPEND, a).unwrap();
    // `echo 3|Cy >> current.csv` by another process commits first.
    let (fb, _) = fs.open(cur, libc::O_WRONLY | libc::O_APPEND, b).unwrap();
    fs.flush(fb, b).unwrap(); // a shell's early close
    fs.write(fb, TABLE.len() as u64, b"3|Cy\n").unwrap();
    close(&fs, fb, b);
    // A's write comes at the offset the kernel took from the new size.
    let size = fs.getattr(cur, None).unwrap().size;
    assert_eq!(size, (TABLE.len() + 5) as u64);
    fs.write(fa, size, b"4|Dee\n").unwrap();
    close(&fs, fa, a);
    let h = head(&fs);
    assert_eq!(h, b"id|name\n1|Ann\n2|Bob\n3|Cy\n4|Dee\n");
    assert!(!h.contains(&0), "no NUL padding");
    assert_eq!(versions(&fs), 3);
}

#[test]
fn a_writer_no_program_closed_commits_nothing() {
    // With passthrough the kernel fails the open (EIO) after the daemon
    // accepted it, then releases the handle without any flush.
    let (_d, fs) = fs();
    let (fh, _) = fs
        .open(current(&fs), libc::O_WRONLY | libc::O_TRUNC, ME)
        .unwrap();
    fs.release(fh, ME).unwrap();
    assert_eq!(head(&fs), TABLE);
    assert_eq!(versions(&fs), 1);
}

#[test]
fn truncation_then_appends_give_exactly_the_appended_bytes() {
    let (_d, fs) = fs();
    let cur = current(&fs);
    // `: > current.csv`
    let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.flush(fh, ME).unwrap();
    close(&fs, fh, ME);
    assert_eq!(fs.getattr(cur, None).unwrap().size, 0, "stat says 0");
    let (fr, _) = fs.open(cur, libc::O_RDONLY, ME).unwrap();
    assert_eq!(fs.read(fr, 0, 4096).unwrap(), b"", "and readers read 0");
    fs.release(fr, ME).unwrap();
    // `cat new.csv >> current.csv`
    let new = b"id|name\n7|Gus\n";
    let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_APPEND, ME).unwrap();
    fs.flush(fh, ME).unwrap();
    fs.write(fh, 0, new).unwrap();
    close(&fs, fh, ME);
    assert_eq!(head(&fs), new);
}

#[test]
fn a_symlink_renamed_onto_current_is_refused_and_never_read() {
    let (_d, fs) = fs();
    let t = users(&fs);
    fs.symlink(t, OsStr::new("x"), b"/etc/passwd", ME).unwrap();
    let err = fs
        .rename(t, OsStr::new("x"), t, OsStr::new(CURRENT), false, ME)
        .unwrap_err();
    assert!(matches!(err, FsError::NotPermitted(_)), "{err:?}");
    assert_eq!(head(&fs), TABLE);
    assert_eq!(versions(&fs), 1);
    assert!(fs.lookup(t, OsStr::new("x"), ME).is_ok(), "the link stays");
}

#[test]
fn fsync_makes_a_save_durable_and_the_close_commits_it() {
    let (d, fs) = fs();
    let cur = current(&fs);
    let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.write(fh, 0, b"id|name\n1|An").unwrap();
    // Half a line: not a table yet. The fsync succeeds and commits nothing.
    fs.fsync(fh, ME).unwrap();
    assert_eq!(versions(&fs), 1);
    let unsaved = d.path().join(kept::UNSAVED_DIR);
    let copies: Vec<_> = std::fs::read_dir(&unsaved).unwrap().flatten().collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(std::fs::read(copies[0].path()).unwrap(), b"id|name\n1|An");
    fs.write(fh, 12, b"n\n2|Bo\n").unwrap();
    fs.fsync(fh, ME).unwrap();
    assert_eq!(versions(&fs), 1, "still one save in progress");
    close(&fs, fh, ME);
    assert_eq!(head(&fs), b"id|name\n1|Ann\n2|Bo\n");
    assert_eq!(versions(&fs), 2, "one version for the whole save");
    assert_eq!(
        std::fs::read_dir(&unsaved).unwrap().count(),
        0,
        "the durable copy goes once committed"
    );
}

#[test]
fn unsaved_bytes_of_a_dead_mount_reach_rejected_at_the_next_mount() {
    let (d, fs) = fs();
    let name = "users-unsaved-20260101T000000.000000Z-p2000000000-abcdef.csv";
    fs.dbs[0]
        .db
        .save_unsaved(name, b"id|name\n9|Zed\n")
        .unwrap();
    drop(fs);
    let db = Database::open(d.path()).unwrap();
    let fs = ReedFs::new(
        vec![MountedDb {
            name: "shop".into(),
            db,
        }],
        true,
        MountOptions::default(),
    );
    let rejected = fs.lookup(ROOT, OsStr::new("@rejected"), ME).unwrap().ino;
    let listed: Vec<String> = fs
        .readdir(rejected)
        .unwrap()
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(listed, [name]);
    let status = fs.lookup(ROOT, OsStr::new("@status"), ME).unwrap().ino;
    let (sh, _) = fs.open(status, libc::O_RDONLY, ME).unwrap();
    let text = String::from_utf8(fs.read(sh, 0, 1 << 16).unwrap()).unwrap();
    assert!(text.contains(name), "{text}");
}

#[test]
fn refused_bytes_are_kept_on_disk() {
    let (_d, fs) = fs();
    let bad = b"id|name\n1|Ann\n1|Dup\n";
    let (fh, _) = fs
        .open(current(&fs), libc::O_WRONLY | libc::O_TRUNC, ME)
        .unwrap();
    fs.write(fh, 0, bad).unwrap();
    assert!(matches!(fs.flush(fh, ME), Err(FsError::InvalidContent(_))));
    fs.release(fh, ME).unwrap();
    let db = &fs.dbs[0].db;
    let names = db.rejected_names().unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(db.read_rejected(&names[0]).unwrap(), bad);
    assert_eq!(head(&fs), TABLE);
}

#[test]
fn unlinking_current_hides_it_only_from_the_process_replacing_it() {
    let (_d, fs) = fs();
    let t = users(&fs);
    let mv = pid(30);
    fs.unlink(t, OsStr::new(CURRENT), mv).unwrap();
    assert!(matches!(
        fs.lookup(t, OsStr::new(CURRENT), mv),
        Err(FsError::NotFound)
    ));
    // Everyone else still has the table, listing included.
    assert_eq!(
        fs.lookup(t, OsStr::new(CURRENT), pid(31)).unwrap().size,
        TABLE.len() as u64
    );
    assert!(fs.readdir(t).unwrap().iter().any(|e| e.2 == CURRENT));
    // Another process cannot create it anew: it exists.
    assert!(matches!(
        fs.create(
            t,
            OsStr::new(CURRENT),
            0o600,
            libc::O_CREAT | libc::O_EXCL,
            pid(31)
        ),
        Err(FsError::Exists)
    ));
    // mv's create completes the replacement.
    let (_, fh, _) = create_new(&fs, t, CURRENT, mv);
    fs.write(fh, 0, b"id|name\n5|Eve\n").unwrap();
    close(&fs, fh, mv);
    assert_eq!(head(&fs), b"id|name\n5|Eve\n");
    assert!(fs.lookup(t, OsStr::new(CURRENT), mv).is_ok());
}

#[test]
fn scratch_files_spill_to_disk_and_stop_at_their_budget() {
    let (_d, fs) = fs_configured(|c| {
        c.scratch_memory_mb = 1;
        c.scratch_max_mb = 4;
    });
    let t = users(&fs);
    let (a, fh, _) = create_new(&fs, t, "big.tmp", ME);
    let chunk = vec![7u8; 1 << 20];
    for i in 0..3 {
        fs.write(fh, i << 20, &chunk).unwrap();
    }
    assert_eq!(fs.getattr(a.ino, None).unwrap().size, 3 << 20);
    assert_eq!(fs.read(fh, (3 << 20) - 2, 10).unwrap(), [7, 7]);
    let (_, fh2, _) = create_new(&fs, t, "more.tmp", ME);
    let err = fs.write(fh2, 0, &[1u8; 2 << 20]).unwrap_err();
    assert_eq!(
        crate::fs::fuse::errno(&err),
        fuser::Errno::ENOSPC,
        "{err:?}"
    );
    // The table still takes saves.
    let (w, _) = fs
        .open(current(&fs), libc::O_WRONLY | libc::O_APPEND, ME)
        .unwrap();
    fs.write(w, 0, b"3|Cy\n").unwrap();
    close(&fs, w, ME);
    assert!(head(&fs).ends_with(b"3|Cy\n"));
    // Removing the big file gives its bytes back.
    close(&fs, fh, ME);
    fs.unlink(t, OsStr::new("big.tmp"), ME).unwrap();
    fs.write(fh2, 0, &[1u8; 2 << 20]).unwrap();
    close(&fs, fh2, ME);
}

#[test]
fn modes_and_times_set_by_writers_are_kept() {
    let (d, fs) = fs();
    let cur = current(&fs);
    let when = UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    let set = |mode, mtime| SetAttr {
        mode,
        mtime,
        ..SetAttr::default()
    };
    // chmod and touch -d.
    assert_eq!(
        fs.getattr(cur, None).unwrap().perm,
        FILE_PERM,
        "the default"
    );
    fs.setattr(cur, None, set(Some(0o640), Some(when))).unwrap();
    let a = fs.getattr(cur, None).unwrap();
    assert_eq!((a.perm, a.mtime), (0o640, when));
    // Kept across a remount.
    drop(fs);
    let db = Database::open(d.path()).unwrap();
    let fs = ReedFs::new(
        vec![MountedDb {
            name: "shop".into(),
            db,
        }],
        true,
        MountOptions::default(),
    );
    let (t, cur) = (users(&fs), current(&fs));
    let a = fs.getattr(cur, None).unwrap();
    assert_eq!((a.perm, a.mtime), (0o640, when));
    // A new version shows its own time; the mode stays.
    let (w, _) = fs.open(cur, libc::O_WRONLY | libc::O_APPEND, ME).unwrap();
    fs.write(w, 0, b"3|Cy\n").unwrap();
    close(&fs, w, ME);
    let a = fs.getattr(cur, None).unwrap();
    assert_eq!(a.perm, 0o640);
    assert_ne!(a.mtime, when);
    // `cp -a`: futimens through the writer before its close.
    let (w, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.write(w, 0, b"id|name\n8|Hal\n").unwrap();
    fs.setattr(cur, Some(w), set(None, Some(when))).unwrap();
    close(&fs, w, ME);
    assert_eq!(fs.getattr(cur, None).unwrap().mtime, when);
    // rsync: the temp file's mode and time come along with the rename.
    let (s, fh, _) = create_new(&fs, t, ".current.csv.Xy", ME);
    fs.write(fh, 0, b"id|name\n9|Ivy\n").unwrap();
    close(&fs, fh, ME);
    let later = when + Duration::from_secs(60);
    fs.setattr(s.ino, None, set(Some(0o644), Some(later)))
        .unwrap();
    fs.rename(
        t,
        OsStr::new(".current.csv.Xy"),
        t,
        OsStr::new(CURRENT),
        false,
        ME,
    )
    .unwrap();
    let a = fs.getattr(cur, None).unwrap();
    assert_eq!((a.perm, a.mtime), (0o644, later));
    // Directories keep theirs; an owner change cannot be kept.
    fs.setattr(t, None, set(Some(0o700), Some(when))).unwrap();
    let a = fs.getattr(t, None).unwrap();
    assert_eq!((a.perm, a.mtime), (0o700, when));
    let chown = SetAttr {
        uid: Some(ME.uid + 12345),
        ..SetAttr::default()
    };
    assert!(matches!(
        fs.setattr(cur, None, chown),
        Err(FsError::NotPermitted(_))
    ));
    // History files take nothing.
    let vdir = fs.lookup(t, OsStr::new("@versions"), ME).unwrap().ino;
    let v1 = fs.readdir(vdir).unwrap()[0].0;
    assert!(fs.setattr(v1, None, set(Some(0o600), None)).is_err());
}

/// Two writers change the same cell from version 1: the second is refused
/// and its conflict recorded. Returns the conflict's id.
fn make_conflict(fs: &ReedFs) -> String {
    let cur = current(fs);
    let (a, b) = (pid(40), pid(41));
    let (fa, _) = fs.open(cur, libc::O_RDWR, a).unwrap();
    let (fb, _) = fs.open(cur, libc::O_RDWR, b).unwrap();
    super::tests::rewrite(fs, cur, fa, b"id|name\n1|Anna\n2|Bob\n");
    close(fs, fa, a);
    super::tests::rewrite(fs, cur, fb, b"id|name\n1|Annie\n2|Bob\n");
    assert!(matches!(fs.flush(fb, b), Err(FsError::Stale(_))));
    fs.release(fb, b).unwrap();
    let ids = merge::conflicts::list(&fs.dbs[0].db).unwrap();
    assert_eq!(ids.len(), 1);
    ids[0].id.clone()
}

#[test]
fn a_conflict_file_is_editable_by_rename_like_sed_does() {
    let (_d, fs) = fs();
    let id = make_conflict(&fs);
    let dir = fs.lookup(ROOT, OsStr::new("@conflicts"), ME).unwrap().ino;
    let file = format!("{id}.csv");
    let a = fs.lookup(dir, OsStr::new(&file), ME).unwrap();
    assert_eq!(
        a.perm, FILE_PERM,
        "writable, so editors open it for writing"
    );
    assert_eq!(
        fs.getattr(a.ino, None).unwrap().mtime,
        a.mtime,
        "a stable time, so editors do not see it changed"
    );
    let (fr, _) = fs.open(a.ino, libc::O_RDONLY, ME).unwrap();
    let cells = String::from_utf8(fs.read(fr, 0, 4096).unwrap()).unwrap();
    fs.release(fr, ME).unwrap();
    assert!(cells.ends_with("|Anna\n"), "{cells}");
    // sed -i: a temp file in the same directory, renamed onto the file.
    let (_, fh, _) = create_new(&fs, dir, "sedQ1", ME);
    let edited = cells.replace("|Anna\n", "|Annie\n");
    fs.write(fh, 0, edited.as_bytes()).unwrap();
    close(&fs, fh, ME);
    assert!(fs.readdir(dir).unwrap().iter().any(|e| e.2 == "sedQ1"));
    fs.rename(dir, OsStr::new("sedQ1"), dir, OsStr::new(&file), false, ME)
        .unwrap();
    assert_eq!(head(&fs), b"id|name\n1|Annie\n2|Bob\n");
    assert!(merge::conflicts::list(&fs.dbs[0].db).unwrap().is_empty());
    assert!(fs.readdir(dir).unwrap().is_empty(), "temp file gone too");
}

#[test]
fn an_invalid_saved_query_name_is_refused_with_the_reason() {
    let (_d, fs) = fs();
    let q = fs.lookup(ROOT, OsStr::new("@query"), ME).unwrap().ino;
    for name in ["x y.sql", "Über.sql"] {
        let err = fs
            .create(
                q,
                OsStr::new(name),
                0o644,
                libc::O_CREAT | libc::O_WRONLY,
                ME,
            )
            .unwrap_err();
        assert!(matches!(err, FsError::InvalidName(_)), "{err:?}");
    }
    assert!(fs.readdir(q).unwrap().is_empty());
    let status = fs.lookup(ROOT, OsStr::new("@status"), ME).unwrap().ino;
    let (sh, _) = fs.open(status, libc::O_RDONLY, ME).unwrap();
    let text = String::from_utf8(fs.read(sh, 0, 1 << 16).unwrap()).unwrap();
    assert!(
        text.contains("x y.sql") && text.contains("Über.sql"),
        "{text}"
    );
}

#[test]
fn a_child_closing_an_inherited_descriptor_commits_nothing() {
    // `exec 3>>current.csv`, then a command run from that shell inherits
    // fd 3 and exits (Python's subprocess, too): its close is a flush from
    // another process, and the shell's save goes on.
    let (_d, fs) = fs();
    let (shell, child) = (pid(50), pid(51));
    let (fh, _) = fs
        .open(current(&fs), libc::O_WRONLY | libc::O_TRUNC, shell)
        .unwrap();
    fs.write(fh, 0, b"id|name\n1|An").unwrap();
    fs.flush(fh, child).unwrap();
    assert_eq!(versions(&fs), 1, "half a save is not committed");
    fs.write(fh, 12, b"n\n").unwrap();
    close(&fs, fh, shell);
    assert_eq!(head(&fs), b"id|name\n1|Ann\n");
    assert_eq!(versions(&fs), 2);
}

#[test]
fn a_child_that_writes_commits_at_its_own_close() {
    // dash runs `printf ... >> f` by opening in the shell, then a child
    // writes and exits: the child's exit is the end of the save (printf's
    // status must mean durable); the shell's close after it has nothing.
    let (_d, fs) = fs();
    let (shell, child) = (pid(60), pid(61));
    let (fh, _) = fs
        .open(current(&fs), libc::O_WRONLY | libc::O_APPEND, shell)
        .unwrap();
    fs.flush(fh, shell).unwrap(); // the shell's dup2 and close
    fs.write_as(fh, 0, b"3|Cy\n", Some(child)).unwrap();
    fs.flush(fh, child).unwrap();
    assert_eq!(versions(&fs), 2, "committed when the writer closed");
    assert!(head(&fs).ends_with(b"3|Cy\n"));
    close(&fs, fh, shell);
    assert_eq!(versions(&fs), 2);
}
