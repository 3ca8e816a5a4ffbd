//! Errors as the mount reports them: the errno says what happened, not
//! "no such file" for everything.

use super::{Mounted, table};

#[test]
fn a_version_whose_deltas_are_gone_fails_with_eio_not_enoent() {
    let Some(m) = Mounted::prepared(&table(), &[]) else {
        return;
    };
    // A second version, committed before the mount so no cache holds it.
    let next: Vec<u8> = String::from_utf8(table())
        .unwrap()
        .replacen("\n1|", "\n1|Second", 1)
        .into_bytes();
    let src = m.work_file("next.csv", &next);
    let o = m
        .rdb()
        .args(["table:import", "shop", "users"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Version 1 is rebuilt forwards with the first delta or backwards from
    // the head with the second: with both gone, it cannot be read.
    let dir = m.home.path().join("databases/shop/tables/users");
    // Both deltas, loose or in a pack (the first commit's may be packed).
    let (packed, loose) = crate::util::packed_and_loose(&dir);
    assert_eq!(packed.len() + loose.len(), 2, "{packed:?} {loose:?}");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".bsdiff") || name.ends_with(".pack") {
            std::fs::remove_file(&p).unwrap();
            files.push(name);
        }
    }
    assert!(!files.is_empty(), "no delta found");
    let m = m.start();
    let o = m.sh("ls users/@versions");
    let first = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(first.ends_with(".csv"), "{first:?}");
    let o = m.sh(&format!("cat users/@versions/{first}"));
    assert!(
        !o.status.success(),
        "a version without its deltas must not read"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // A damaged store (EIO), not a missing file (ENOENT): the file is listed.
    assert!(err.contains("Input/output error"), "{err}");
    assert!(!err.contains("No such file"), "{err}");
}
