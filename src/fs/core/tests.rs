//! The filesystem logic without a kernel: what each FUSE call does.
use super::*;
use crate::fs::node::ROOT;
use crate::storage::RealIo;

pub(super) const TABLE: &[u8] = b"id|name\n1|Ann\n2|Bob\n";
pub(super) const ME: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 1,
};

pub(super) fn fs_with(opts: MountOptions) -> (tempfile::TempDir, ReedFs) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::init(Arc::new(RealIo), dir.path(), "shop", '|').unwrap();
    db.create_table("users", TABLE, "t").unwrap();
    let fs = ReedFs::new(
        vec![MountedDb {
            name: "shop".into(),
            db,
        }],
        true,
        opts,
    );
    (dir, fs)
}

pub(super) fn fs() -> (tempfile::TempDir, ReedFs) {
    fs_with(MountOptions::default())
}

pub(super) fn users(fs: &ReedFs) -> u64 {
    fs.lookup(ROOT, OsStr::new("users"), ME).unwrap().ino
}

pub(super) fn versions(fs: &ReedFs) -> usize {
    fs.dbs[0]
        .db
        .table("users")
        .unwrap()
        .versions()
        .unwrap()
        .len()
}

/// Truncates through handle `fh` and writes `bytes` (as `>` does).
/// Creates file `name` in directory `dir` with O_EXCL, as `caller`:
/// (attr, handle, caching).
pub(super) fn create_new(
    fs: &ReedFs,
    dir: u64,
    name: &str,
    caller: Caller,
) -> (Attr, u64, Caching) {
    fs.create(
        dir,
        OsStr::new(name),
        0o600,
        libc::O_CREAT | libc::O_EXCL,
        caller,
    )
    .unwrap()
}

pub(super) fn rewrite(fs: &ReedFs, ino: u64, fh: u64, bytes: &[u8]) {
    fs.setattr(
        ino,
        Some(fh),
        SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    )
    .unwrap();
    fs.write(fh, 0, bytes).unwrap();
}

/// close(2) of handle `fh`: a flush, then (last close) the release.
pub(super) fn close(fs: &ReedFs, fh: u64, caller: Caller) {
    fs.flush(fh, caller).unwrap();
    fs.release(fh, caller).unwrap();
}

pub(super) fn head(fs: &ReedFs) -> Vec<u8> {
    fs.dbs[0]
        .db
        .table("users")
        .unwrap()
        .head()
        .unwrap()
        .1
        .as_ref()
        .clone()
}

#[test]
fn listing_hides_virtual_names_unless_asked() {
    let (_d, fs) = fs();
    let names = |fs: &ReedFs, ino| {
        fs.readdir(ino)
            .unwrap()
            .into_iter()
            .map(|e| e.2)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&fs, ROOT), ["users"]);
    let t = users(&fs);
    assert_eq!(names(&fs, t), ["current.csv"]);
    // Reachable by name all the same.
    assert!(fs.lookup(t, OsStr::new("@versions"), ME).is_ok());
    assert!(fs.lookup(ROOT, OsStr::new("@status"), ME).is_ok());
    assert!(fs.lookup(ROOT, OsStr::new("@metrics"), ME).is_ok());
    assert!(fs.lookup(t, OsStr::new("@rows"), ME).is_ok());
    assert!(fs.lookup(t, OsStr::new("@changes.json"), ME).is_ok());
    let (_d, fs) = fs_with(MountOptions {
        show_virtual: true,
        ..MountOptions::default()
    });
    assert_eq!(
        names(&fs, ROOT),
        [
            "users",
            "@status",
            "@changes",
            "@changes.json",
            "@metrics",
            "@rejected",
            "@conflicts",
            "@as-of",
            "@frames",
            "@query"
        ]
    );
}

#[test]
fn write_commits_at_the_flush_after_data_never_before() {
    let (_d, fs) = fs();
    let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
    // A shell `>`: O_TRUNC, an early flush with no data, then data.
    let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.flush(fh, ME).unwrap();
    assert_eq!(versions(&fs), 1, "the early flush commits nothing");
    fs.write(fh, 0, b"id|name\n1|Ann\n").unwrap();
    assert_eq!(
        fs.getattr(cur, Some(fh)).unwrap().size,
        14,
        "a writer sees its own size"
    );
    assert_eq!(
        fs.getattr(cur, None).unwrap().size,
        TABLE.len() as u64,
        "everyone else sees the head readers get"
    );
    fs.flush(fh, ME).unwrap();
    assert_eq!(versions(&fs), 2);
    close(&fs, fh, ME);
    assert_eq!(versions(&fs), 2, "nothing new to commit at release");
    assert_eq!(head(&fs), b"id|name\n1|Ann\n");
}

#[test]
fn an_ftruncate_commits_at_its_close_and_empties_the_file() {
    let (_d, fs) = fs();
    let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
    // A shell's `>` (O_TRUNC with the open): its early close commits nothing.
    let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.flush(fh, ME).unwrap();
    assert_eq!(versions(&fs), 1);
    fs.write(fh, 0, b"id|name\n7|Gus\n").unwrap();
    fs.flush(fh, ME).unwrap();
    close(&fs, fh, ME);
    assert_eq!(versions(&fs), 2);
    // `truncate -s 0` (ftruncate through the handle, then close): the
    // close commits, so the caller sees it done when truncate returns.
    let (fh, _) = fs.open(cur, libc::O_WRONLY, ME).unwrap();
    fs.setattr(
        cur,
        Some(fh),
        SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(versions(&fs), 2, "the truncate itself commits nothing");
    fs.flush(fh, ME).unwrap();
    assert_eq!(versions(&fs), 3);
    assert_eq!(head(&fs), b"", "emptied is 0 bytes, as on any file system");
    close(&fs, fh, ME);
    assert_eq!(versions(&fs), 3, "the release has nothing left to commit");
}

#[test]
fn rename_onto_current_commits_or_fails_keeping_the_file() {
    let (_d, fs) = fs();
    let t = users(&fs);
    let (a, fh, _) = create_new(&fs, t, "sedX1", ME);
    fs.write(fh, 0, b"id|name\n1|Ann\n1|Dup\n").unwrap();
    close(&fs, fh, ME);
    let err = fs
        .rename(t, OsStr::new("sedX1"), t, OsStr::new(CURRENT), false, ME)
        .unwrap_err();
    assert!(
        matches!(err, FsError::InvalidContent(ref m) if m.contains("duplicate key")),
        "{err:?}"
    );
    assert_eq!(
        fs.getattr(a.ino, None).unwrap().size,
        20,
        "the refused file is still there"
    );
    assert_eq!(head(&fs), TABLE);
    let (fh, _) = fs.open(a.ino, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.write(fh, 0, b"id|name\n1|Ann\n3|Cy\n").unwrap();
    close(&fs, fh, ME);
    fs.rename(t, OsStr::new("sedX1"), t, OsStr::new(CURRENT), false, ME)
        .unwrap();
    assert_eq!(head(&fs), b"id|name\n1|Ann\n3|Cy\n");
    assert!(fs.lookup(t, OsStr::new("sedX1"), ME).is_err());
    assert_eq!(versions(&fs), 2);
}

#[test]
fn renaming_current_away_then_recreating_it_is_one_replacement() {
    let (_d, fs) = fs();
    let t = users(&fs);
    fs.rename(
        t,
        OsStr::new(CURRENT),
        t,
        OsStr::new("current.csv~"),
        false,
        ME,
    )
    .unwrap();
    assert!(matches!(
        fs.lookup(t, OsStr::new(CURRENT), ME),
        Err(FsError::NotFound)
    ));
    let backup = fs.lookup(t, OsStr::new("current.csv~"), ME).unwrap();
    assert_eq!(backup.size, TABLE.len() as u64);
    let (_, fh, _) = fs
        .create(
            t,
            OsStr::new(CURRENT),
            0o644,
            libc::O_CREAT | libc::O_WRONLY,
            ME,
        )
        .unwrap();
    fs.write(fh, 0, b"id|name\n9|New\n").unwrap();
    fs.flush(fh, ME).unwrap();
    close(&fs, fh, ME);
    fs.unlink(t, OsStr::new("current.csv~"), ME).unwrap();
    assert_eq!(head(&fs), b"id|name\n9|New\n");
    assert_eq!(versions(&fs), 2);
}

#[test]
fn virtual_files_are_read_only_and_limits_hold() {
    let (_d, fs) = fs_with(MountOptions {
        max_file_bytes: 64,
        ..MountOptions::default()
    });
    let t = users(&fs);
    let vdir = fs.lookup(t, OsStr::new("@versions"), ME).unwrap().ino;
    let v1 = fs.readdir(vdir).unwrap()[0].clone();
    assert!(matches!(
        fs.open(v1.0, libc::O_WRONLY, ME),
        Err(FsError::ReadOnly(_))
    ));
    let (fh, _) = fs.open(v1.0, libc::O_RDONLY, ME).unwrap();
    assert_eq!(fs.read(fh, 0, 4096).unwrap(), TABLE);
    assert!(matches!(
        fs.create(vdir, OsStr::new("x"), 0o644, 0, ME),
        Err(FsError::ReadOnly(_))
    ));
    assert!(matches!(
        fs.mkdir(t, OsStr::new("sub")),
        Err(FsError::NotPermitted(_))
    ));
    assert!(matches!(
        fs.mkdir(ROOT, OsStr::new("bad name")),
        Err(FsError::InvalidName(_))
    ));
    assert!(matches!(
        fs.create(t, OsStr::new("bad\x01name"), 0o644, 0, ME),
        Err(FsError::InvalidName(_))
    ));
    let long = "x".repeat(300);
    assert!(matches!(
        fs.create(t, OsStr::new(&long), 0o644, 0, ME),
        Err(FsError::NameTooLong)
    ));
    let (_, fh, _) = fs.create(t, OsStr::new("big"), 0o644, 0, ME).unwrap();
    assert!(matches!(
        fs.write(fh, 60, b"0123456789"),
        Err(FsError::TooBig(64))
    ));
}

#[test]
fn concurrent_writers_merge_and_collisions_fail_stale() {
    let (_d, fs) = fs();
    let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
    let (a, b) = (Caller { pid: 10, ..ME }, Caller { pid: 11, ..ME });
    // Both open the head (version 1) for writing, each edits a different row.
    let (fa, _) = fs.open(cur, libc::O_RDWR, a).unwrap();
    let (fb, _) = fs.open(cur, libc::O_RDWR, b).unwrap();
    rewrite(&fs, cur, fa, b"id|name\n1|Anna\n2|Bob\n");
    fs.flush(fa, a).unwrap();
    rewrite(&fs, cur, fb, b"id|name\n1|Ann\n2|Bobby\n");
    fs.flush(fb, b).unwrap();
    assert_eq!(
        head(&fs),
        b"id|name\n1|Anna\n2|Bobby\n",
        "both edits merged"
    );
    close(&fs, fa, a);
    close(&fs, fb, b);
    // Now both change the same cell: the later one fails and keeps its bytes.
    let (fa, _) = fs.open(cur, libc::O_RDWR, a).unwrap();
    let (fb, _) = fs.open(cur, libc::O_RDWR, b).unwrap();
    rewrite(&fs, cur, fa, b"id|name\n1|A\n2|Bobby\n");
    fs.flush(fa, a).unwrap();
    rewrite(&fs, cur, fb, b"id|name\n1|B\n2|Bobby\n");
    assert!(matches!(fs.flush(fb, b), Err(FsError::Stale(_))));
    assert_eq!(head(&fs), b"id|name\n1|A\n2|Bobby\n");
    assert_eq!(versions(&fs), 4);
}

#[test]
fn a_rename_merges_against_what_the_same_process_read() {
    let (_d, fs) = fs();
    let t = users(&fs);
    let cur = fs.lookup(t, OsStr::new(CURRENT), ME).unwrap().ino;
    let sed = Caller { pid: 20, ..ME };
    // sed reads version 1...
    let (fr, _) = fs.open(cur, libc::O_RDONLY, sed).unwrap();
    close(&fs, fr, sed);
    // ...someone else commits version 2 meanwhile...
    let other = Caller { pid: 21, ..ME };
    let (fo, _) = fs.open(cur, libc::O_RDWR, other).unwrap();
    fs.write(fo, 0, b"id|name\n1|Ann\n2|Bob\n3|Cy\n").unwrap();
    close(&fs, fo, other);
    // ...then sed renames its edit of version 1 into place: merged, nothing lost.
    let (_, fh, _) = create_new(&fs, t, "sedX", sed);
    fs.write(fh, 0, b"id|name\n1|Ann\n2|Robert\n").unwrap();
    close(&fs, fh, sed);
    fs.rename(t, OsStr::new("sedX"), t, OsStr::new(CURRENT), false, sed)
        .unwrap();
    assert_eq!(head(&fs), b"id|name\n1|Ann\n2|Robert\n3|Cy\n");
}

#[test]
fn an_empty_redirect_commits_at_its_second_close() {
    // `: > current.csv`: O_TRUNC, the early close after dup2, then the
    // close that ends the command, with nothing written.
    let (_d, fs) = fs();
    let cur = fs.lookup(users(&fs), OsStr::new(CURRENT), ME).unwrap().ino;
    let (fh, _) = fs.open(cur, libc::O_WRONLY | libc::O_TRUNC, ME).unwrap();
    fs.flush(fh, ME).unwrap();
    assert_eq!(versions(&fs), 1);
    fs.flush(fh, ME).unwrap();
    assert_eq!(
        versions(&fs),
        2,
        "committed before close returns, not at the later release"
    );
    assert_eq!(head(&fs), b"", "emptied: 0 bytes");
    fs.release(fh, ME).unwrap();
    assert_eq!(versions(&fs), 2);
}

#[test]
fn an_unlinked_scratch_file_stays_usable_while_open() {
    let (_d, fs) = fs();
    let t = users(&fs);
    let (a, fh, _) = create_new(&fs, t, ".x.swp", ME);
    fs.write(fh, 0, b"swap data").unwrap();
    fs.unlink(t, OsStr::new(".x.swp"), ME).unwrap();
    assert!(matches!(
        fs.lookup(t, OsStr::new(".x.swp"), ME),
        Err(FsError::NotFound)
    ));
    fs.write(fh, 9, b" more").unwrap();
    assert_eq!(fs.read(fh, 0, 100).unwrap(), b"swap data more");
    assert_eq!(
        fs.getattr(a.ino, None).unwrap().size,
        14,
        "fstat of an open, unlinked file"
    );
    // The name can be reused meanwhile, for a different file.
    let (b, fh2, _) = create_new(&fs, t, ".x.swp", ME);
    assert_ne!(a.ino, b.ino);
    close(&fs, fh, ME);
    assert!(fs.getattr(a.ino, None).is_err(), "gone with the last close");
    assert_eq!(fs.getattr(b.ino, None).unwrap().size, 0);
    close(&fs, fh2, ME);
}

#[test]
fn a_new_table_is_a_directory_then_a_first_save() {
    let (_d, fs) = fs();
    let dir = fs.mkdir(ROOT, OsStr::new("orders")).unwrap();
    let (_, fh, _) = fs
        .create(
            dir.ino,
            OsStr::new(CURRENT),
            0o644,
            libc::O_CREAT | libc::O_WRONLY,
            ME,
        )
        .unwrap();
    fs.write(fh, 0, b"id|item\n1|pen\n").unwrap();
    fs.flush(fh, ME).unwrap();
    close(&fs, fh, ME);
    assert_eq!(
        fs.dbs[0]
            .db
            .table("orders")
            .unwrap()
            .head()
            .unwrap()
            .1
            .as_slice(),
        b"id|item\n1|pen\n"
    );
}

#[test]
fn inodes_of_queries_and_times_are_freed_when_the_kernel_forgets_them() {
    let (_d, fs) = fs();
    let q = fs.lookup(ROOT, OsStr::new("@query"), ME).unwrap().ino;
    let asof = fs.lookup(ROOT, OsStr::new("@as-of"), ME).unwrap().ino;
    let before = lock(&fs.inner).inodes.len();
    let mut names = Vec::new();
    for i in 0..50 {
        let sql = format!("SELECT {i} AS n");
        names.push(fs.lookup(q, OsStr::new(&sql), ME).unwrap().ino);
        let when = format!("{}", 1_700_000_000 + i);
        names.push(fs.lookup(asof, OsStr::new(&when), ME).unwrap().ino);
    }
    assert_eq!(lock(&fs.inner).inodes.len(), before + 100);
    for ino in names {
        fs.forget(ino, 1);
        assert!(
            fs.getattr(ino, None).is_err(),
            "freed: the kernel forgot it"
        );
    }
    assert_eq!(lock(&fs.inner).inodes.len(), before, "no inode kept");
    // Looked up twice, forgotten once: still there.
    let ino = fs.lookup(q, OsStr::new("SELECT 1"), ME).unwrap().ino;
    fs.lookup(q, OsStr::new("SELECT 1"), ME).unwrap();
    fs.forget(ino, 1);
    assert!(fs.getattr(ino, None).is_ok());
    fs.forget(ino, 1);
    assert!(fs.getattr(ino, None).is_err());
}
