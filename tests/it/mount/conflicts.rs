//! Colliding writers become recorded conflicts, resolved by CLI or by file.

use std::process::Command;

use super::{Mounted, table};

#[test]
fn colliding_writers_each_end_merged_or_as_a_recorded_conflict() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    // 20 writers all set row 1's name (and each its own row's name too):
    // every writer either lands (its own row changed, and row 1 holds some
    // writer's value) or fails with a conflict whose bytes are kept.
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
    if refused < 2 {
        return;
    }
    // Resolve one with --ours (the refused writer's cells win) and one with --theirs.
    let ids = m.conflict_ids();
    assert_eq!(ids.len(), refused);
    let shown = m
        .rdb()
        .args(["conflict:show", "shop", &ids[0]])
        .output()
        .unwrap();
    let ours_value = String::from_utf8_lossy(&shown.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .split('|')
        .nth(4)
        .unwrap()
        .to_string();
    let r = m
        .rdb()
        .args(["conflict:resolve", "shop", &ids[0], "--ours"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let content = std::fs::read_to_string(m.current()).unwrap();
    assert!(
        content.contains(&format!("\n1|{ours_value}|")),
        "--ours applies the refused cell {ours_value:?}"
    );
    let before = std::fs::read(m.current()).unwrap();
    let r = m
        .rdb()
        .args(["conflict:resolve", "shop", &ids[1], "--theirs"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        std::fs::read(m.current()).unwrap() == before,
        "--theirs keeps the head"
    );
    assert_eq!(m.conflict_ids().len(), refused - 2);
    if refused < 3 {
        return;
    }
    // On a terminal, cell by cell: type a value of one's own.
    let driver = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def drain(seconds):
    end = time.time() + seconds
    out = b""
    while time.time() < end:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if b"? " in out or b"value: " in out:
            break
    return out
drain(5); os.write(fd, b"e\n")
drain(5); os.write(fd, b"Typed Name\n")
drain(5)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let st = Command::new("timeout")
        .args([
            "30",
            "python3",
            "-c",
            driver,
            env!("CARGO_BIN_EXE_rdb"),
            "conflict:resolve",
            "shop",
            &ids[2],
        ])
        .env("REEDBASE_HOME", m.home.path())
        .status()
        .unwrap();
    assert!(st.success(), "interactive resolve");
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Typed Name|"),
        "the typed value is the head's"
    );
    assert_eq!(m.conflict_ids().len(), refused - 3);
    if refused < 4 {
        return;
    }
    // Through the mount: edit the `resolved` column of the conflict file and save.
    let file =
        m.mp.path()
            .join("@conflicts")
            .join(format!("{}.csv", ids[3]));
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[1].split('|').collect();
    cells[6] = "Edited Name";
    lines[1] = cells.join("|");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert!(
        std::fs::read_to_string(m.current())
            .unwrap()
            .contains("\n1|Edited Name|"),
        "saving the edited conflict file resolves it"
    );
    assert!(!file.exists(), "a resolved conflict disappears");
}
