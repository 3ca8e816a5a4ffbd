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

const AGE_TEXT: &str = "[columns.age]\ntype = \"text\"\n";
const MIGRATED: &str = "[columns.years]\ntype = \"integer\"\nmin = 0\nrenamed_from = \"age\"\n[columns.city]\ntype = \"text\"\nrequired = true\n";

#[test]
fn a_migration_staged_in_a_frame_commits_schema_and_data_together() {
    let start = "id|name|age\n1|ann|30\n2|bob|41\n3|cy|7\n";
    let Some(m) = Mounted::new(start.as_bytes()) else {
        return;
    };
    std::fs::write(m.work.path().join("v1.toml"), AGE_TEXT).unwrap();
    std::fs::write(m.work.path().join("v2.toml"), MIGRATED).unwrap();
    m.sh_ok("cp \"$WORK/v1.toml\" users/schema.toml");
    m.sh_ok("mkdir @frames/mig");
    // A schema naming columns the frame's content lacks: refused at once.
    let o = m.sh("cp \"$WORK/v2.toml\" @frames/mig/users.schema.toml");
    assert!(!o.status.success(), "years is not a column yet");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Invalid argument"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Before one is staged, the frame's file shows the schema in force.
    assert_eq!(m.out("cat @frames/mig/users.schema.toml"), AGE_TEXT);
    // The data first (sed -i: rename a column, add one, a bad value), then
    // the schema: both staged, listed, nothing committed yet.
    m.sh_ok(
        "sed -i -e '1s/age/years/' -e '1s/$/|city/' -e '2,$s/$/|Oslo/' -e 's/^3|cy|7|/3|cy|-7|/' @frames/mig/users.csv",
    );
    m.sh_ok("cp \"$WORK/v2.toml\" @frames/mig/users.schema.toml");
    assert!(m.out("ls @frames/mig").contains("users.schema.toml"));
    // The schema and the content unstage apart: `rm users.csv` keeps the
    // schema (and the check then refuses the commit: years is not there).
    let staged = m.out("cat @frames/mig/users.csv");
    m.sh_ok("rm @frames/mig/users.csv");
    assert!(
        m.out("cat @frames/mig/ctl")
            .contains("staged users.schema.toml")
    );
    assert!(!m.sh("echo commit > @frames/mig/ctl").status.success());
    std::fs::write(m.work.path().join("staged.csv"), &staged).unwrap();
    m.sh_ok("cp \"$WORK/staged.csv\" @frames/mig/users.csv");
    assert!(
        m.out("cat @frames/mig/ctl")
            .contains("users,users.schema.toml")
    );
    assert_eq!(m.out("cat users/current.csv"), start);
    assert_eq!(m.out("cat users/schema.toml"), AGE_TEXT);
    // The commit checks the content against the staged schema: refused,
    // nothing changed, the frame still staged.
    let o = m.sh("echo commit > @frames/mig/ctl");
    assert!(!o.status.success(), "years = -7 breaks min = 0");
    assert!(
        m.status().contains("line 4, column years: min"),
        "{}",
        m.status()
    );
    assert_eq!(m.out("cat users/current.csv"), start);
    assert_eq!(m.out("cat users/schema.toml"), AGE_TEXT);
    // Fixed with vim -es, the frame commits schema and data at once.
    let o = m
        .in_mount(30, "vim")
        .args(["-es", "-u", "NONE", "-c", "%s/-7/7/", "-c", "wq"])
        .arg("@frames/mig/users.csv")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    m.sh_ok("echo commit > @frames/mig/ctl");
    let ctl = m.out("cat @frames/mig/ctl");
    assert!(ctl.contains("users.schema.toml set"), "{ctl}");
    let migrated = "id|name|years|city\n1|ann|30|Oslo\n2|bob|41|Oslo\n3|cy|7|Oslo\n";
    assert_eq!(m.out("cat users/current.csv"), migrated);
    assert_eq!(m.out("cat users/schema.toml"), MIGRATED);
    // @as-of the first version: the data as it was before the migration.
    let first = m.out("ls users/@versions | head -1");
    let first = first.trim().trim_end_matches(".csv");
    assert_eq!(m.out(&format!("cat @as-of/{first}/users.csv")), start);
    // frame:rollback (another process, while mounted) undoes both.
    let id = ctl
        .lines()
        .find_map(|l| l.strip_prefix("id "))
        .unwrap_or_default()
        .to_string();
    let o = m
        .rdb()
        .args(["frame:rollback", "shop", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(m.out("cat users/current.csv"), start);
    assert_eq!(m.out("cat users/schema.toml"), AGE_TEXT);
    m.verify();
}

#[test]
fn a_header_edit_adding_an_undeclared_column_is_refused_only_under_strict() {
    let start = "id|name|age\n1|ann|30\n2|bob|41\n";
    let Some(m) = Mounted::new(start.as_bytes()) else {
        return;
    };
    let add_column = "sed -i -e '1s/$/|city/' -e '2,$s/$/|Oslo/' users/current.csv";
    std::fs::write(m.work.path().join("strict.toml"), format!("strict = true\n{AGE_TEXT}[columns.id]\ntype = \"integer\"\n[columns.name]\ntype = \"text\"\n")).unwrap();
    m.sh_ok("cp \"$WORK/strict.toml\" users/schema.toml");
    let o = m.sh(add_column);
    assert!(!o.status.success(), "strict: city is not declared");
    assert!(m.status().contains("column city: strict"), "{}", m.status());
    assert_eq!(m.out("cat users/current.csv"), start);
    // Not strict: the same edit commits.
    m.sh_ok("sed -i '/^strict/d' users/schema.toml");
    m.sh_ok(add_column);
    assert!(
        m.out("head -1 users/current.csv")
            .starts_with("id|name|age|city")
    );
}
