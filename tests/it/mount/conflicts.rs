//! Colliding writers become recorded conflicts, resolved by CLI or by file.

use std::process::{Command, Output};

use super::{Mounted, SCREEN_READER, head, table, with_name};
use crate::util::rows;

#[test]
fn colliding_writers_each_end_merged_or_as_a_recorded_conflict() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // 20 writers all set row 1's name (and each its own row's name too):
    // every writer either lands (its own row changed, and row 1 holds some
    // writer's value) or fails with a conflict whose bytes are kept. How
    // many land depends on the interleaving, so only what holds for every
    // interleaving is asserted; resolving is tested below on conflicts made
    // on purpose.
    let children = m.spawn_writers((1..=20u32).map(|w| {
        let own = 100 + w;
        format!(
            "sed -i -e 's/^1|[^|]*|/1|Collide {w}|/' -e 's/^{own}|[^|]*|/{own}|Own {w}|/' users/current.csv"
        )
    }));
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
    let status = m.status();
    assert_eq!(
        status.matches("conflicting cell").count(),
        refused,
        "{status}"
    );
}

/// The head through the mount and in the store is `want`, the table has
/// `versions` versions, and no conflict is left.
fn assert_resolved(m: &Mounted, want: &[u8], versions: usize, what: &str) {
    assert_eq!(
        String::from_utf8_lossy(&head(m)),
        String::from_utf8_lossy(want),
        "{what}: the mounted head"
    );
    assert!(m.head_on_disk() == want, "{what}: the stored head");
    assert_eq!(m.versions(), versions, "{what}: versions");
    assert!(m.conflict_ids().is_empty(), "{what}: the conflict is gone");
    let left: Vec<_> = std::fs::read_dir(m.mp.path().join("@conflicts"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{what}: @conflicts is empty: {left:?}");
}

fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A conflict on row 5 (theirs `Theirs`, ours `Ours`), then another commit
/// on row 9 so the head moved past the conflict; returns the conflict id
/// and the head after both.
fn conflict_then_a_later_commit(m: &Mounted) -> (String, Vec<u8>) {
    let file = m.make_conflict(5, "Theirs", "Ours");
    let id = file.strip_suffix(".csv").unwrap().to_string();
    assert_eq!(m.conflict_ids(), std::slice::from_ref(&id));
    m.sh_ok("sed -i 's/^9|[^|]*|/9|Later|/' users/current.csv");
    let now = with_name(&with_name(&rows(50), 5, "Theirs"), 9, "Later");
    assert!(head(m) == now, "the head keeps theirs and the later commit");
    assert_eq!(m.versions(), 3);
    (id, now)
}

#[test]
fn resolve_ours_applies_the_refused_cells_over_the_current_head() {
    let Some(m) = Mounted::new(&rows(50)) else {
        return;
    };
    let (id, now) = conflict_then_a_later_commit(&m);
    let o = m
        .rdb()
        .args(["conflict:resolve", "shop", &id, "--ours"])
        .output()
        .unwrap();
    assert_ok(&o, "--ours");
    assert_resolved(&m, &with_name(&now, 5, "Ours"), 4, "--ours");
}

#[test]
fn resolve_theirs_keeps_the_head_and_drops_the_conflict() {
    let Some(m) = Mounted::new(&rows(50)) else {
        return;
    };
    let (id, now) = conflict_then_a_later_commit(&m);
    let o = m
        .rdb()
        .args(["conflict:resolve", "shop", &id, "--theirs"])
        .output()
        .unwrap();
    assert_ok(&o, "--theirs");
    assert_resolved(&m, &now, 3, "--theirs");
}

/// Runs `rdb conflict:resolve` on a pseudo-terminal and answers each cell's
/// question when it is asked: argv 1 holds `key=answer` pairs joined by `;`
/// (`o`, `t`, or a value to type after `e`), the rest is the command. Every
/// wait is for the text on the screen, with a deadline.
const RESOLVE_ON_A_TERMINAL: &str = r#"
import os, pty, re, select, sys, time
answers = dict(a.split('=', 1) for a in sys.argv[1].split(';'))
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
"#;

/// The rest of `RESOLVE_ON_A_TERMINAL`, after the screen reader.
const RESOLVE_ANSWERS: &str = r#"
total = len(answers)
for _ in range(total):
    m = expect(rb'conflict (\d+) of (\d+) in users: key "(\d+)", column "name"')
    if int(m.group(2)) != total:
        sys.exit(f'{total} cells expected: {m.group(0)!r}')
    answer = answers.pop(m.group(3).decode())
    expect(rb'or \[e\]nter a value\? ')
    if answer in ('o', 't'):
        os.write(fd, answer.encode() + b'\n')
    else:
        os.write(fd, b'e\n')
        expect(rb'value: ')
        os.write(fd, answer.encode() + b'\n')
expect(rb'resolved \S+: version \d+')
deadline = time.monotonic() + 20
while read(deadline):
    pass
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn resolve_on_a_terminal_chooses_cell_by_cell() {
    let Some(m) = Mounted::new(&rows(50)) else {
        return;
    };
    let file = m.make_conflicts(&[
        (5, "Theirs5", "Ours5"),
        (6, "Theirs6", "Ours6"),
        (7, "Theirs7", "Ours7"),
    ]);
    let id = file.strip_suffix(".csv").unwrap();
    let theirs = [(5, "Theirs5"), (6, "Theirs6"), (7, "Theirs7")]
        .iter()
        .fold(rows(50), |t, (k, n)| with_name(&t, *k, n));
    assert!(head(&m) == theirs, "the head keeps theirs");
    // Row 5 keeps ours, row 6 theirs, row 7 takes a typed value.
    let o = Command::new("timeout")
        .args([
            "60",
            "python3",
            "-c",
            &format!("{RESOLVE_ON_A_TERMINAL}{SCREEN_READER}{RESOLVE_ANSWERS}"),
            "5=o;6=t;7=Typed Name",
            env!("CARGO_BIN_EXE_rdb"),
            "conflict:resolve",
            "shop",
            id,
        ])
        .env("REEDBASE_HOME", m.home.path())
        .env("USER", "tester")
        .output()
        .unwrap();
    assert_ok(&o, "interactive resolve");
    let want = with_name(&with_name(&theirs, 5, "Ours5"), 7, "Typed Name");
    assert_resolved(&m, &want, 3, "interactive resolve");
}

#[test]
fn saving_the_edited_conflict_file_through_the_mount_resolves_it() {
    let Some(m) = Mounted::new(&rows(50)) else {
        return;
    };
    let file = m.make_conflicts(&[(5, "Theirs5", "Ours5"), (6, "Theirs6", "Ours6")]);
    let path = m.mp.path().join("@conflicts").join(&file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "cell|key|column|base|ours|theirs|resolved\n\
         1|5|name|name 5|Ours5|Theirs5|Theirs5\n\
         2|6|name|name 6|Ours6|Theirs6|Theirs6\n",
        "`resolved` starts as the head's value"
    );
    // Row 5 gets a value of one's own; row 6 keeps theirs as it stands.
    let edited = text.replace("|Ours5|Theirs5|Theirs5\n", "|Ours5|Theirs5|Edited Name\n");
    std::fs::write(&path, edited).unwrap();
    let theirs = with_name(&with_name(&rows(50), 5, "Theirs5"), 6, "Theirs6");
    assert_resolved(
        &m,
        &with_name(&theirs, 5, "Edited Name"),
        3,
        "the edited conflict file",
    );
    assert!(!path.exists(), "a resolved conflict disappears");
}
