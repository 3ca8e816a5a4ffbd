//! Nothing a user saves is lost, mangled or half-committed, whatever tool
//! saves it: regression tests through the real mount with real programs
//! (sh, cp, mv, ln, rm, truncate, stat, python3, vim -es, sed -i, rsync,
//! cp -a). They describe the behaviour of src/fs as specified for this
//! round; each test says in one line what it proves.

use super::{Mounted, head, with_name};

/// `id|name|score`, rows `k|name k|k*7` for k in 1..=50: plain rows, one
/// per line, so lines can be counted.
fn users() -> Vec<u8> {
    crate::util::rows(50)
}

/// How many lines of `content` are exactly `line`.
fn count_line(content: &[u8], line: &str) -> usize {
    content
        .split(|&b| b == b'\n')
        .filter(|l| *l == line.as_bytes())
        .count()
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every line of `lines` is in `content` exactly once.
fn assert_each_line_once<'a>(content: &[u8], lines: impl IntoIterator<Item = &'a str>) {
    let wrong: Vec<(&str, usize)> = lines
        .into_iter()
        .map(|l| (l, count_line(content, l)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} lines not there exactly once; the first (line, count): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// No NUL byte in `current.csv` nor in any stored version.
fn assert_no_nul(m: &Mounted) {
    assert!(!head(m).contains(&0), "a NUL byte in current.csv");
    for (i, v) in m.all_versions().iter().enumerate() {
        assert!(!v.contains(&0), "a NUL byte in version {}", i + 1);
    }
}

/// The head, through the mount and in the store, is still `before`, and
/// the table still has `versions` versions.
fn assert_unchanged(m: &Mounted, before: &[u8], versions: usize, what: &str) {
    assert!(head(m) == before, "{what}: the mounted head changed");
    assert!(
        m.head_on_disk() == before,
        "{what}: the stored head changed"
    );
    assert_eq!(m.versions(), versions, "{what}: no version may be added");
}

/// The names `ls <dir>` prints (run in the mount).
fn ls(m: &Mounted, dir: &str) -> Vec<String> {
    m.out(&format!("ls '{dir}'"))
        .lines()
        .map(String::from)
        .collect()
}

/// `stat -c %Y <path>` (run in the mount; `$WORK` works).
fn mtime(m: &Mounted, path: &str) -> String {
    m.out(&format!("stat -c %Y \"{path}\"")).trim().to_string()
}

/// A failed call's stderr mentions one of `errors`.
fn assert_failed_with(o: &std::process::Output, what: &str, errors: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what} must fail");
    assert!(
        errors.iter().any(|e| err.contains(e)),
        "{what}: expected one of {errors:?}, got: {err}"
    );
}

/// A held `>>` handle and a second `>>` between its writes: both rows once, no NUL anywhere.
#[test]
fn appends_through_two_open_handles_land_once_without_nul() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    m.sh_ok(
        "set -e; exec 3>>users/current.csv; echo '90|b|1' >> users/current.csv; \
         echo '91|c|2' >&3; exec 3>&-",
    );
    let content = head(&m);
    let original = String::from_utf8(users()).unwrap();
    assert_each_line_once(&content, original.lines().chain(["90|b|1", "91|c|2"]));
    assert_no_nul(&m);
}

/// 5 concurrent `>>` loops of 100 lines: every line exactly once, no NUL, `rdb verify` passes.
#[test]
fn five_concurrent_appenders_lose_no_line() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let writers = m.spawn_writers((1..=5).map(|w| {
        format!(
            "for i in $(seq 1 100); do echo \"k{w}-$i|appender {w}|$i\" >> users/current.csv; done"
        )
    }));
    for (w, c) in writers.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "appender {}: {}",
            w + 1,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let content = head(&m);
    let appended: Vec<String> = (1..=5)
        .flat_map(|w| (1..=100).map(move |i| format!("k{w}-{i}|appender {w}|{i}")))
        .collect();
    let original = String::from_utf8(users()).unwrap();
    assert_each_line_once(
        &content,
        original.lines().chain(appended.iter().map(String::as_str)),
    );
    assert!(!content.contains(&0), "a NUL byte in current.csv");
    m.verify();
}

/// A cp refused under --passthrough (a reader holds the file) changes neither head nor history.
#[test]
fn passthrough_write_open_refused_while_a_reader_holds_the_file_changes_nothing() {
    let Some(m) = Mounted::with_options(&users(), &["--passthrough"]) else {
        return;
    };
    let before = head(&m);
    let versions = m.versions();
    m.work_file("new.csv", &with_name(&before, 3, "Copied"));
    let o = m.sh(
        "exec 3<users/current.csv; cp \"$WORK/new.csv\" users/current.csv; rc=$?; \
         exec 3<&-; exit $rc",
    );
    let log = m.log();
    let passthrough = !log.contains("passthrough unavailable")
        && !log.contains("does not offer FUSE passthrough");
    if passthrough {
        assert!(
            !o.status.success(),
            "cp while a passthrough reader holds the file must fail (the kernel refuses the write open)"
        );
    }
    // Without passthrough the kernel does not refuse and cp may succeed;
    // then only a failed save is checked: it must have changed nothing.
    if !o.status.success() {
        assert_unchanged(&m, &before, versions, "refused cp");
    }
}

/// `: >` and `truncate -s0` leave a 0-byte file; appending a table then gives exactly that table.
#[test]
fn truncation_is_plain_file_truncation() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    for (i, cut) in [": > users/current.csv", "truncate -s0 users/current.csv"]
        .into_iter()
        .enumerate()
    {
        m.sh_ok(cut);
        assert_eq!(m.out("stat -c %s users/current.csv"), "0\n", "{cut}: stat");
        assert_eq!(m.out("wc -c < users/current.csv"), "0\n", "{cut}: wc -c");
        let new = with_name(&users(), 4, &format!("Refilled {i}"));
        m.work_file("new.csv", &new);
        m.sh_ok("cat \"$WORK/new.csv\" >> users/current.csv");
        m.sh_ok("cmp \"$WORK/new.csv\" users/current.csv");
        assert!(head(&m) == new, "{cut}: then the appended table");
    }
}

/// mv of a symlink onto current.csv fails (EPERM/EINVAL); its target never enters a version.
#[test]
fn a_symlink_never_replaces_the_table() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let before = head(&m);
    let versions = m.versions();
    m.sh_ok("ln -s /etc/passwd users/x");
    let o = m.sh("mv users/x users/current.csv");
    assert_failed_with(
        &o,
        "mv of a symlink onto current.csv",
        &["Operation not permitted", "Invalid argument"],
    );
    assert_unchanged(&m, &before, versions, "mv of a symlink");
    let passwd = std::fs::read("/etc/passwd").unwrap();
    for (i, v) in m.all_versions().iter().enumerate() {
        assert!(!contains(v, &passwd), "/etc/passwd is in version {}", i + 1);
    }
}

/// CR-only line ends are refused at cp; @status says "carriage return" and the line; head stays.
#[test]
fn cr_only_line_endings_are_refused_with_the_line() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let before = head(&m);
    let versions = m.versions();
    m.work_file("cr.csv", b"id|name|score\r1|a|1\r");
    let o = m.sh("cp \"$WORK/cr.csv\" users/current.csv");
    assert!(!o.status.success(), "cp of CR-only content must fail");
    let status = m.status();
    let said = status.lines().find(|l| l.contains("carriage return"));
    assert!(
        said.is_some_and(|l| l
            .match_indices("line ")
            .any(|(i, _)| l[i + 5..].starts_with(|c: char| c.is_ascii_digit()))),
        "@status must say \"carriage return\" and the line: {status}"
    );
    assert_unchanged(&m, &before, versions, "CR-only content");
}

/// Opens current.csv for writing (truncating), writes the first half of
/// argv[1] cut inside a line's name field (2 fields of 3: invalid so far),
/// fsyncs, checks with `rdb version:list` from another process that no
/// version was added, writes the rest, closes.
const FSYNC_MIDWAY: &str = r#"
import os, subprocess, sys
new = open(sys.argv[1], 'rb').read()
def versions():
    out = subprocess.run([os.environ['RDB'], 'version:list', 'shop', 'users', '--format', 'csv'],
                         check=True, capture_output=True).stdout
    return len(out.splitlines())
before = versions()
cut = new.index(b'\n', len(new) // 2) + 5  # just after 'NN|n' of the next line
assert new[:cut].rsplit(b'\n', 1)[1].count(b'|') == 1, 'the cut leaves a valid table'
f = open('users/current.csv', 'wb')
f.write(new[:cut])
f.flush()
os.fsync(f.fileno())
if versions() != before:
    sys.exit('a version was added before the close (at the fsync of half a table)')
f.write(new[cut:])
f.close()
"#;

/// Writes argv[1] to current.csv line by line, fsyncing after each line.
const FSYNC_EVERY_LINE: &str = r#"
import os, sys
new = open(sys.argv[1], 'rb').read()
f = open('users/current.csv', 'wb')
for line in new.splitlines(keepends=True):
    f.write(line)
    f.flush()
    os.fsync(f.fileno())
f.close()
"#;

/// fsync of half a table succeeds and commits nothing; the close commits the full content once.
#[test]
fn an_fsync_in_the_middle_of_a_save_succeeds_and_commits_nothing_until_close() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let versions = m.versions();
    let new = with_name(&users(), 10, "Fsynced");
    let path = m.work_file("new.csv", &new);
    let o = m.py(FSYNC_MIDWAY, &[path.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(m.versions(), versions + 1, "exactly one new version");
    assert!(
        m.version_bytes(versions + 1) == new,
        "the version is the full content"
    );
    assert!(head(&m) == new);
}

/// fsync after every line, then close: exactly one version, equal to what was written.
#[test]
fn an_fsync_after_every_line_still_makes_one_version() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let versions = m.versions();
    let new = with_name(&users(), 11, "Line by line");
    let path = m.work_file("new.csv", &new);
    let o = m.py(FSYNC_EVERY_LINE, &[path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(m.versions(), versions + 1, "exactly one new version");
    assert!(m.version_bytes(versions + 1) == new);
    assert!(head(&m) == new);
}

/// A table with a UTF-8 BOM saves, the head does not start with the BOM, `id` is queryable.
#[test]
fn a_utf8_bom_is_dropped_and_queries_see_the_first_column() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    // Written from here: the printf of sh (dash) has no \x escapes.
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&with_name(&crate::util::rows(5), 2, "Bom"));
    m.work_file("bom.csv", &bom);
    m.sh_ok("cp \"$WORK/bom.csv\" users/current.csv");
    let first = m.sh("head -c3 users/current.csv").stdout;
    assert!(first != b"\xef\xbb\xbf", "the head starts with the BOM");
    let o = m.sh("cat \"@query/SELECT id FROM users\"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"id"), "{text}");
    lines.remove(0);
    lines.sort();
    assert_eq!(lines, ["1", "2", "3", "4", "5"], "{text}");
}

/// `rm current.csv` keeps the table for others (cat, sed -i); mv from another fs replaces it.
#[test]
fn rm_of_current_csv_keeps_the_table() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let before = head(&m);
    let _ = m.sh("rm users/current.csv");
    assert!(
        ls(&m, "users").iter().any(|n| n == "current.csv"),
        "ls users after rm"
    );
    let o = m.sh("cat users/current.csv");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout == before, "cat after rm gives the unchanged head");
    m.sh_ok("sed -i 's/^6|[^|]*|/6|After rm|/' users/current.csv");
    let o = m.sh("cat users/current.csv");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        contains(&o.stdout, b"\n6|After rm|42\n"),
        "another writer's save shows after rm"
    );
    // mv from another filesystem: unlink + create is a replacement.
    let x = with_name(&o.stdout, 7, "Moved in");
    m.work_file("x.csv", &x);
    m.sh_ok("mv \"$WORK/x.csv\" users/current.csv");
    assert!(
        head(&m) == x,
        "mv from another filesystem replaces the content"
    );
    assert!(m.head_on_disk() == x);
}

/// A refused cp's exact bytes are in the store's rejected/ and @rejected/, also after a remount.
#[test]
fn refused_bytes_are_kept_durably_and_survive_a_remount() {
    let Some(mut m) = Mounted::new(&users()) else {
        return;
    };
    let mut dup = users();
    dup.extend_from_slice(b"1|Duplicate|1\n");
    m.work_file("dup.csv", &dup);
    let o = m.sh("cp \"$WORK/dup.csv\" users/current.csv");
    assert!(!o.status.success(), "cp of a duplicate key must fail");
    let kept = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| std::fs::read(p).is_ok_and(|b| b == dup))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let stored = m.home.path().join("databases/shop/rejected");
    assert_eq!(kept(&stored).len(), 1, "the refused bytes in rejected/");
    let shown = kept(&m.mp.path().join("@rejected"));
    assert_eq!(shown.len(), 1, "the refused bytes under @rejected/");
    m.stop();
    let m = m.start();
    let listed = ls(&m, "@rejected");
    assert!(listed.contains(&shown[0]), "{listed:?} after a remount");
    assert!(
        std::fs::read(m.mp.path().join("@rejected").join(&shown[0])).unwrap() == dup,
        "the same bytes after a remount"
    );
}

/// A 40 MB scratch file written with dd reads back byte for byte.
#[test]
fn a_large_scratch_file_reads_back_exactly() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    m.sh_ok(
        "dd if=/dev/urandom of=\"$WORK/big\" bs=1M count=40 iflag=fullblock status=none \
         && dd if=\"$WORK/big\" of=users/big.tmp bs=1M status=none \
         && cmp users/big.tmp \"$WORK/big\"",
    );
}

/// Past scratch_max_mb a scratch write fails with ENOSPC, and current.csv still saves.
#[test]
fn scratch_beyond_scratch_max_mb_fails_with_enospc_and_saves_still_work() {
    let Some(m) = Mounted::prepared(&users(), &[]) else {
        return;
    };
    m.config("scratch_max_mb", "16");
    let m = m.start();
    let o = m.sh("dd if=/dev/urandom of=users/big.tmp bs=1M count=20 iflag=fullblock status=none");
    assert_failed_with(&o, "a 20 MB scratch write", &["No space left on device"]);
    let new = with_name(&users(), 12, "Still saves");
    m.work_file("new.csv", &new);
    m.sh_ok("cp \"$WORK/new.csv\" users/current.csv");
    assert!(head(&m) == new && m.head_on_disk() == new);
}

/// rsync -a in and out keeps content and mtime: a second identical run transfers nothing.
#[test]
fn rsync_in_and_out_twice_transfers_nothing_the_second_time() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let mp = m.mp.path().display().to_string();
    let new = with_name(&users(), 8, "Rsynced");
    m.work_file("in/users/current.csv", &new);
    m.sh_ok("touch -d '2020-01-02 03:04:05' \"$WORK/in/users/current.csv\"");
    m.sh_ok(&format!("rsync -a \"$WORK/in/\" '{mp}/'"));
    assert!(head(&m) == new, "rsync in: the head is the file");
    let again = m.out(&format!("rsync -a --itemize-changes \"$WORK/in/\" '{mp}/'"));
    assert!(
        !again.lines().any(|l| l.contains("users/current.csv")),
        "the second rsync in transferred current.csv again:\n{again}"
    );
    assert_eq!(
        mtime(&m, "users/current.csv"),
        mtime(&m, "$WORK/in/users/current.csv"),
        "rsync in keeps the mtime"
    );
    m.sh_ok(&format!("rsync -a '{mp}/' \"$WORK/out/\""));
    m.sh_ok("cmp users/current.csv \"$WORK/out/users/current.csv\"");
    let again = m.out(&format!(
        "rsync -a --itemize-changes '{mp}/' \"$WORK/out/\""
    ));
    assert_eq!(again, "", "the second rsync out itemizes nothing");
}

/// cp -a in and out, twice each, succeeds and keeps content and mtime.
#[test]
fn cp_a_in_and_out_twice_keeps_content_and_mtime() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let mp = m.mp.path().display().to_string();
    let new = with_name(&users(), 9, "Copied with -a");
    m.work_file("in/users/current.csv", &new);
    m.sh_ok("touch -d '2020-01-02 03:04:05' \"$WORK/in/users/current.csv\"");
    for round in 1..=2 {
        m.sh_ok(&format!("cp -a \"$WORK/in/.\" '{mp}/'"));
        assert!(
            head(&m) == new,
            "cp -a in, round {round}: the head is the file"
        );
        assert_eq!(
            mtime(&m, "users/current.csv"),
            mtime(&m, "$WORK/in/users/current.csv"),
            "cp -a in, round {round}: the mtime"
        );
    }
    for round in 1..=2 {
        m.sh_ok(&format!("cp -a '{mp}/.' \"$WORK/out/\""));
        m.sh_ok("cmp users/current.csv \"$WORK/out/users/current.csv\"");
        assert_eq!(
            mtime(&m, "$WORK/out/users/current.csv"),
            mtime(&m, "users/current.csv"),
            "cp -a out, round {round}: the mtime"
        );
    }
}

/// chmod 640 on current.csv is kept (600 is the default); chown to another user fails with EPERM, changes nothing.
#[test]
fn chmod_is_kept_and_chown_is_refused() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    assert_eq!(
        m.out("stat -c %a users/current.csv"),
        "600\n",
        "the owner's only by default"
    );
    m.sh_ok("chmod 640 users/current.csv");
    assert_eq!(m.out("stat -c %a users/current.csv"), "640\n");
    let before = head(&m);
    let versions = m.versions();
    let owner = m.out("stat -c '%u %g %a' users/current.csv");
    let o = m.sh("chown 12345 users/current.csv");
    assert_failed_with(&o, "chown 12345", &["Operation not permitted"]);
    assert_eq!(m.out("stat -c '%u %g %a' users/current.csv"), owner);
    assert_unchanged(&m, &before, versions, "refused chown");
}

/// A stale save in place fails at close with EBUSY; its conflict file is 0644, mtime stable.
#[test]
fn a_stale_save_in_place_fails_with_ebusy_and_leaves_a_stable_conflict_file() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let id = m.make_conflict(5, "Theirs", "Ours");
    assert_eq!(ls(&m, "@conflicts"), std::slice::from_ref(&id));
    assert!(
        contains(&head(&m), b"\n5|Theirs|35\n"),
        "the head keeps theirs"
    );
    let file = format!("@conflicts/{id}");
    assert_eq!(m.out(&format!("stat -c %a '{file}'")), "600\n");
    let first = mtime(&m, &file);
    // Not a race: time must pass for a clock-based mtime to show (stat's
    // resolution here is one second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(mtime(&m, &file), first, "the conflict file's mtime moves");
}

/// Sets the conflict file's `resolved` cell (the last) with Python: open
/// 'w', write, close.
const RESOLVE_WITH_PYTHON: &str = r#"
import sys
p, value = sys.argv[1:3]
lines = open(p).read().split('\n')
cells = lines[1].split('|')
cells[-1] = value
lines[1] = '|'.join(cells)
f = open(p, 'w')
f.write('\n'.join(lines))
f.close()
"#;

/// Conflict files edited with vim -es, sed -i or Python commit the chosen value and disappear.
#[test]
fn conflicts_resolve_with_vim_sed_and_python() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let conflicts: Vec<(u32, String)> = [5, 6, 7]
        .into_iter()
        .map(|k| {
            (
                k,
                m.make_conflict(k, &format!("Theirs{k}"), &format!("Ours{k}")),
            )
        })
        .collect();
    for (k, id) in &conflicts {
        let file = format!("@conflicts/{id}");
        // `resolved` is the last cell and starts as theirs.
        match k {
            5 => m.sh_ok(&format!(
                "vim -es -c '%s/|Theirs{k}$/|Ours{k}/' -c 'wq' '{file}'"
            )),
            6 => m.sh_ok(&format!("sed -i 's/|Theirs{k}$/|Ours{k}/' '{file}'")),
            _ => {
                let o = m.py(RESOLVE_WITH_PYTHON, &[&file, &format!("Ours{k}")]);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
        }
        let row = format!("{k}|Ours{k}|{}", k * 7);
        assert_eq!(count_line(&head(&m), &row), 1, "the head holds {row}");
        assert!(
            !ls(&m, "@conflicts").contains(id),
            "conflict {id} is gone once resolved"
        );
    }
}

/// A query saved under an invalid name fails (`>`, cp), is not listed, @status names it.
#[test]
fn invalid_saved_query_names_are_refused_and_said_why() {
    let Some(m) = Mounted::new(&users()) else {
        return;
    };
    let o = m.sh("echo 'SELECT 1' > \"@query/x y.sql\"");
    assert!(!o.status.success(), "> @query/x y.sql must fail");
    m.work_file("q.sql", b"SELECT 1\n");
    let o = m.sh("cp \"$WORK/q.sql\" \"@query/\u{dc}ber.sql\"");
    assert!(!o.status.success(), "cp to @query/\u{dc}ber.sql must fail");
    let listed = ls(&m, "@query");
    assert!(
        !listed
            .iter()
            .any(|n| n.contains("x y") || n.contains("\u{dc}ber")),
        "{listed:?}"
    );
    let status = m.status();
    assert!(
        status.contains("x y") && status.contains("\u{dc}ber"),
        "@status must name both refused names: {status}"
    );
}
