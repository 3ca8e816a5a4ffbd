//! Every way real tools save `current.csv`, and what a refused save leaves.

use std::path::PathBuf;

use super::{Mounted, SCREEN_READER, table};

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
    // nano in a pseudo-terminal: move to line 13, type, save (^O, Enter),
    // exit (^X); each key is sent once the screen shows nano is ready for
    // it (a deadline per step, no pause).
    let nano = r#"
import os, pty, re, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("nano", ["nano", "--ignorercfiles", "+13", "users/current.csv"])
"#;
    let nano_keys = r#"
expect(rb"\[ Read \d+ lines \]")
os.write(fd, b"Nano"); expect(rb"Modified")
os.write(fd, b"\x0f"); expect(rb"File Name to Write")
os.write(fd, b"\r"); expect(rb"\[ Wrote \d+ lines \]")
os.write(fd, b"\x18")
deadline = time.monotonic() + 20
while read(deadline):
    pass
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let o = m
        .in_mount(90, "python3")
        .env("TERM", "xterm")
        .args(["-c", &format!("{nano}{SCREEN_READER}{nano_keys}")])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "nano: {}",
        String::from_utf8_lossy(&o.stderr)
    );
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
    // truncate -s 0: the file is empty, as on any file system (a version of
    // 0 bytes); done when it returns.
    m.sh_ok("truncate -s 0 users/current.csv");
    let content = std::fs::read_to_string(&cur).unwrap();
    assert_eq!(content, "");
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
    let status = m.status();
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
