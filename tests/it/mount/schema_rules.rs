//! Schema rules through the mount: `schema.toml` written with the shell,
//! then saves by sed -i, python's csv module and vim -es, each checked; a
//! violating save fails (EINVAL), its bytes are kept in `@rejected/` and
//! `@status` names the violation; a valid one commits.

use super::{Mounted, table};

const RULES: &str = r#"[columns.email]
type = "text"
unique = true
required = true
[columns.age]
type = "integer"
min = 0
max = 150
"#;

#[test]
fn saves_by_real_tools_are_checked_against_the_rules() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    std::fs::write(m.work.path().join("rules.toml"), RULES).unwrap();
    m.sh_ok("cp \"$WORK/rules.toml\" users/schema.toml");
    let versions = m.versions();
    let rejected = || {
        std::fs::read_dir(m.mp.path().join("@rejected"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let kept = rejected();
    // sed -i making row 5's email row 4's: refused at the rename.
    let email4 = m.out("awk -F'|' '$1 == 4 { print $3 }' users/current.csv");
    let o = m.sh(&format!(
        "sed -i 's/^\\(5|[^|]*|\\)[^|]*/\\1{}/' users/current.csv",
        email4.trim()
    ));
    assert!(!o.status.success(), "a duplicate email must be refused");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Invalid argument"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(m.versions(), versions);
    assert_eq!(rejected(), kept + 1, "the refused bytes are kept");
    let status = m.status();
    assert!(status.contains("line 6, column email: unique"), "{status}");
    // python's csv module writing an age out of range: refused at the close.
    let o = m.py(
        "import csv\n\
         rows = list(csv.reader(open('users/current.csv', newline=''), delimiter='|'))\n\
         rows[3][3] = '200'\n\
         f = open('users/current.csv', 'w', newline='')\n\
         csv.writer(f, delimiter='|', lineterminator='\\n').writerows(rows)\n\
         f.close()\n",
        &[],
    );
    assert!(!o.status.success(), "an age of 200 must be refused");
    assert_eq!(m.versions(), versions);
    assert!(
        m.status().contains("line 4, column age: max: above 150"),
        "{}",
        m.status()
    );
    // vim -es with a valid edit commits.
    let o = m
        .in_mount(30, "vim")
        .args([
            "-es",
            "-u",
            "NONE",
            "-c",
            "%s/^7|\\([^|]*\\)|[^|]*|/7|\\1|seven@example.com|/",
            "-c",
            "wq",
            "users/current.csv",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(m.versions(), versions + 1);
    assert!(m.out("cat users/current.csv").contains("seven@example.com"));
    // A schema the data breaks is refused too, with the violation named.
    std::fs::write(
        m.work.path().join("strict.toml"),
        "[columns.age]\ntype = \"integer\"\nmax = 10\n",
    )
    .unwrap();
    let o = m.sh("cp \"$WORK/strict.toml\" users/schema.toml");
    assert!(
        !o.status.success(),
        "a schema the data breaks must be refused"
    );
    assert!(
        m.status().contains("column age: max: above 10"),
        "{}",
        m.status()
    );
    assert_eq!(m.out("cat users/schema.toml"), RULES);
    m.verify();
}
