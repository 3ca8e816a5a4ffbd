//! Frames through the mount: several tables at once, or none.

use std::time::{Duration, Instant};

use super::{Mounted, table};

#[test]
fn frames_stage_and_commit_several_tables_with_shell_tools_only() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    m.sh_ok("mkdir orders && printf 'id|item\\n1|tea\\n' > orders/current.csv");
    let users_before = std::fs::read(m.current()).unwrap();
    m.sh_ok("mkdir @frames/pair");
    let ls = m.sh("ls @frames/pair");
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "ctl\norders.csv\nusers.csv\n"
    );
    assert!(!String::from_utf8_lossy(&m.sh("ls -a").stdout).contains("@frames"));
    // Stage with sed -i (temp file + rename) and >> (append).
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Framed|/' @frames/pair/users.csv");
    m.sh_ok("echo '2|cake' >> @frames/pair/orders.csv");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/pair/ctl").stdout).into_owned();
    assert!(ctl.contains("staged orders,users"), "{ctl}");
    // Nothing is visible before the commit.
    assert!(std::fs::read(m.current()).unwrap() == users_before);
    assert_eq!(
        std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        b"id|item\n1|tea\n"
    );
    m.sh_ok("echo commit > @frames/pair/ctl");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/pair/ctl").stdout).into_owned();
    assert!(ctl.starts_with("committed pair"), "{ctl}");
    let users = String::from_utf8(std::fs::read(m.current()).unwrap()).unwrap();
    assert!(users.contains("\n1|Framed|"), "{users}");
    assert_eq!(
        std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        b"id|item\n1|tea\n2|cake\n"
    );
    // One frame id and one time in both tables' logs.
    let logs: Vec<String> = ["users", "orders"]
        .iter()
        .map(|t| {
            let log = std::fs::read_to_string(m.mp.path().join(format!("{t}/@versions/log.csv")))
                .unwrap();
            log.lines().last().unwrap().to_string()
        })
        .collect();
    let frame_of = |l: &str| l.rsplit('|').next().unwrap().to_string();
    let time_of = |l: &str| l.split('|').nth(2).unwrap().to_string();
    assert!(
        !frame_of(&logs[0]).is_empty() && frame_of(&logs[0]) == frame_of(&logs[1]),
        "{logs:?}"
    );
    assert_eq!(time_of(&logs[0]), time_of(&logs[1]));
    m.sh_ok("rmdir @frames/pair");
    assert!(!m.sh("ls @frames/pair").status.success());

    // Bad content fails its save; the frame stays usable.
    m.sh_ok("mkdir @frames/second");
    std::fs::write(m.work.path().join("bad.csv"), b"id|item\n3\n").unwrap();
    let o = m.sh("cp \"$WORK/bad.csv\" @frames/second/orders.csv");
    assert!(
        !o.status.success(),
        "cp of invalid content into a frame must fail"
    );
    // A collision with a commit made meanwhile fails the whole frame (EBUSY),
    // keeps it staged, and changes no table; abort ends it.
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Mine|/' @frames/second/users.csv");
    m.sh_ok("echo '3|scone' >> @frames/second/orders.csv");
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Theirs|/' users/current.csv");
    let heads = || {
        (
            std::fs::read(m.current()).unwrap(),
            std::fs::read(m.mp.path().join("orders/current.csv")).unwrap(),
        )
    };
    let before = heads();
    let o = m.sh("/bin/echo commit > @frames/second/ctl");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("busy"),
        "{} / {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&m.sh("cat @status").stdout)
    );
    assert!(heads() == before, "a refused frame changes nothing");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/second/ctl").stdout).into_owned();
    assert!(ctl.contains("staged orders,users"), "{ctl}");
    m.sh_ok("echo abort > @frames/second/ctl");
    let ctl = String::from_utf8_lossy(&m.sh("cat @frames/second/ctl").stdout).into_owned();
    assert!(ctl.starts_with("aborted"), "{ctl}");
    assert!(heads() == before);
}

#[test]
fn sigkill_during_a_storm_of_frames_leaves_every_frame_whole() {
    let Some(mut m) = Mounted::new(&table()) else {
        return;
    };
    for t in ["a", "b", "c"] {
        m.sh_ok(&format!(
            "mkdir {t} && printf 'id|v\\n1|0\\n2|0\\n' > {t}/current.csv"
        ));
    }
    // Two writers, each changing its own row of a, b and c in one frame per
    // round (sed -i into the frame, then commit); a round whose commit
    // returned success is recorded.
    let writers = m.spawn_writers((1..=2u32).map(|k| {
        format!(
            "i=0; while [ $i -lt 300 ]; do i=$((i+1)); f=w{k}-$i; mkdir @frames/$f || continue; \
             for t in a b c; do sed -i \"s/^{k}|.*/{k}|$i/\" @frames/$f/$t.csv; done; \
             /bin/echo commit > @frames/$f/ctl && echo $f >> \"$WORK/acked\"; rmdir @frames/$f; done"
        )
    }));
    // Kill mid-storm, once a few frames are acknowledged (the storm goes on).
    let acked_file = m.work.path().join("acked");
    let acked_now = || {
        std::fs::read_to_string(&acked_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(50);
    while acked_now() < 5 {
        assert!(
            Instant::now() < deadline,
            "the storm acknowledged no 5 frames: {}",
            m.log()
        );
        // A poll interval, not a wait for a commit.
        std::thread::sleep(Duration::from_millis(10));
    }
    m.kill_daemon();
    for w in writers {
        let _ = w.wait_with_output();
    }
    let acked = std::fs::read_to_string(m.work.path().join("acked")).unwrap_or_default();
    let acked = acked.lines().count();
    assert!(acked > 0, "the storm committed no frame before the kill");
    let m = m.start();
    // Through the mount: the three tables hold the same rows, and their
    // histories name the same frames in the same order.
    let read = |t: &str| std::fs::read(m.mp.path().join(format!("{t}/current.csv"))).unwrap();
    let a = read("a");
    assert!(read("b") == a && read("c") == a, "half a frame is visible");
    let frames_of = |t: &str| -> Vec<String> {
        let log =
            std::fs::read_to_string(m.mp.path().join(format!("{t}/@versions/log.csv"))).unwrap();
        log.lines()
            .skip(2)
            .map(|l| l.rsplit('|').next().unwrap().to_string())
            .collect()
    };
    let fa = frames_of("a");
    assert_eq!(frames_of("b"), fa);
    assert_eq!(frames_of("c"), fa);
    assert!(
        fa.iter().all(|f| !f.is_empty()),
        "every change came from a frame"
    );
    assert!(
        fa.len() >= acked,
        "{} frames in history, {acked} acknowledged",
        fa.len()
    );
    m.verify();
}
