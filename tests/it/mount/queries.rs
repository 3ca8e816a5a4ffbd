//! Queries, saved queries, schemas and indices through `@query/`.

use std::process::Command;

use super::{Mounted, table};

#[test]
fn queries_are_files_under_at_query() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let o = m.sh("cat '@query/SELECT COUNT(*) AS n FROM users'");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = std::fs::read_to_string(m.current())
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("n\n{rows}\n"));
    // `/` is written %2F; a `%` of LIKE stays as it is.
    let o = m.sh("cat \"@query/SELECT id %2F 2 AS h FROM users WHERE id <= 3 ORDER BY id\"");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "h\n0\n1\n1\n");
    let like = m.sh("cat \"@query/SELECT COUNT(*) FROM users WHERE email LIKE '%@%'\"");
    assert_eq!(
        String::from_utf8_lossy(&like.stdout),
        format!("COUNT(*)\n{rows}\n")
    );
    // A commit shows in the next query.
    m.sh_ok("sed -i 's/^1|[^|]*|/1|Queried|/' users/current.csv");
    let o = m.sh("cat \"@query/SELECT id FROM users WHERE name = 'Queried'\"");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "id\n1\n");
    // A bad query fails the read with EINVAL, never an empty success; @status has why.
    let bad = m.sh("cat '@query/SELECT nope FROM users'");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"));
    let status = m.status();
    assert!(status.contains("no such column: nope"), "{status}");
    assert!(status.contains("1:8"), "{status}");
    assert!(!String::from_utf8_lossy(&m.sh("ls -a").stdout).contains("@query"));
    assert!(!m.sh("echo x > '@query/SELECT 1'").status.success());
    // A name that is not UTF-8 is refused (EINVAL), never run.
    let o = m.sh("python3 -c \"import os; os.open(b'@query/SELECT \\xff', os.O_RDONLY)\" 2>&1");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Invalid argument"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn saved_queries_are_versioned_files_run_as_csv_and_json() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let out = |script: &str| m.out(script);
    let sql = "SELECT id, name FROM users WHERE id <= 2 ORDER BY id";
    m.sh_ok(&format!("echo '{sql}' > @query/first.sql"));
    // The saved query's result equals the same query run by its text.
    let adhoc = out(&format!("cat '@query/{sql}'"));
    assert_eq!(adhoc.lines().count(), 3, "{adhoc}");
    assert_eq!(out("cat @query/first.csv"), adhoc);
    let json = out(
        "python3 -c 'import json; r = json.load(open(\"@query/first.json\")); print(len(r), sorted(r[0]))'",
    );
    assert_eq!(json.trim(), "2 ['id', 'name']");
    assert_eq!(out("cat @query/first.sql"), format!("{sql}\n"));
    assert_eq!(
        out("ls @query"),
        "first.sql\n",
        "listings name saved queries only"
    );
    // sed -i (a temp file renamed onto the query) saves a new version.
    m.sh_ok("sed -i 's/id <= 2/id <= 3/' @query/first.sql");
    assert_eq!(out("cat @query/first.csv").lines().count(), 4);
    assert_eq!(out("ls @query"), "first.sql\n", "sed's temp file is gone");
    // So does vim, with its swap file and backup next to the query.
    m.sh_ok("vim -es -u NONE -c '%s/id <= 3/id <= 4/' -c wq @query/first.sql");
    assert_eq!(out("cat @query/first.csv").lines().count(), 5);
    m.sh_ok("sed -i 's/id <= 4/id <= 3/' @query/first.sql");
    // A bad query fails the save where cp sees it, and the saved one stays.
    std::fs::write(m.work.path().join("bad.sql"), "SELECT nope FROM users\n").unwrap();
    let bad = m.sh("cp \"$WORK/bad.sql\" @query/first.sql");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"));
    let status = m.status();
    assert!(
        status.contains("@query/first.sql") && status.contains("no such column: nope"),
        "{status}"
    );
    assert_eq!(out("cat @query/first.csv").lines().count(), 4);
    // Every save is a version in the backing store, as an immutable file.
    let dir = m.home.path().join("databases/shop/queries/first");
    let versions = |ext: &str| crate::util::files_ending(&dir, ext);
    assert_eq!(versions(".sql"), 4);
    // mv renames; rm deletes (a version that says so); results go with them.
    m.sh_ok("mv @query/first.sql @query/second.sql");
    assert!(!m.sh("cat @query/first.csv").status.success());
    assert_eq!(out("cat @query/second.csv").lines().count(), 4);
    m.sh_ok("rm @query/second.sql");
    assert_eq!(out("ls @query"), "");
    let gone = m.sh("cat @query/second.csv");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("No such file"));
    assert_eq!(versions(".deleted"), 1, "first's deletion by the rename");
    // Query results are read-only; the mount's read-only option covers saves.
    assert!(!m.sh("echo x > @query/second.csv").status.success());
}

#[test]
fn schema_toml_is_a_versioned_file_that_types_queries() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let out = |script: &str| m.out(script);
    assert!(!m.sh("cat users/schema.toml").status.success());
    assert_eq!(out("ls users"), "current.csv\n");
    m.sh_ok("echo 'SELECT age FROM users WHERE id = 1' > @query/age.sql");
    let age_json = || out("cat @query/age.json").replace([' ', '\n'], "");
    assert!(age_json().starts_with("[{\"age\":") && !age_json().contains("\"age\":\""));
    // Declared TEXT: the same column now reads as text.
    m.sh_ok("printf '[columns]\\nage = \"text\"\\n' > users/schema.toml");
    assert_eq!(out("cat users/schema.toml"), "[columns]\nage = \"text\"\n");
    assert_eq!(out("ls users"), "current.csv\nschema.toml\n");
    assert!(age_json().contains("\"age\":\""), "{}", age_json());
    assert!(
        !m.sh("cat '@query/SELECT age + 1 FROM users'")
            .status
            .success()
    );
    // A schema that names a missing column is refused where cp sees it.
    std::fs::write(
        m.work.path().join("bad.toml"),
        "[columns]\nnope = \"text\"\n",
    )
    .unwrap();
    let bad = m.sh("cp \"$WORK/bad.toml\" users/schema.toml");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"));
    let status = m.status();
    assert!(
        status.contains("users/schema.toml") && status.contains("\"nope\""),
        "{status}"
    );
    assert_eq!(out("cat users/schema.toml"), "[columns]\nage = \"text\"\n");
    // sed -i saves through a rename; rm removes; inference is back.
    m.sh_ok("sed -i 's/text/integer/' users/schema.toml");
    assert!(!age_json().contains("\"age\":\""), "{}", age_json());
    m.sh_ok("vim -es -u NONE -c '%s/integer/real/' -c wq users/schema.toml");
    assert!(age_json().contains(".0"), "declared REAL: {}", age_json());
    m.sh_ok("rm users/schema.toml");
    assert!(!m.sh("cat users/schema.toml").status.success());
    let history = m
        .rdb()
        .args(["schema:show", "shop", "users", "--history"])
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout);
    let kinds: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with("age = ") || *l == "# (removed)")
        .collect();
    assert_eq!(
        kinds,
        [
            "age = \"text\"",
            "age = \"integer\"",
            "age = \"real\"",
            "# (removed)"
        ],
        "{history}"
    );
    // The table's versions are untouched by schema saves.
    assert_eq!(m.versions(), 1);
}

#[test]
fn filtered_columns_get_indices_that_index_list_and_explain_show() {
    let Some(m) = Mounted::new(&table()) else {
        return;
    };
    let index_list = || {
        let o = m
            .rdb()
            .args(["index:list", "shop", "--format", "csv"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let listed = index_list();
    assert!(
        listed.contains("users,id,key,0,built at the first lookup"),
        "{listed}"
    );
    let explain = |sql: &str| {
        let o = m.sh(&format!("cat \"@query/EXPLAIN {sql}\""));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let q = "SELECT id FROM users WHERE country = 'DE'";
    assert!(
        explain(q).contains("no index on users.country yet: 0 of 2"),
        "{}",
        explain(q)
    );
    // Two lookups (auto_index_after = 2): the second builds the index.
    m.sh_ok(&format!("cat \"@query/{q}\" > /dev/null"));
    m.sh_ok("cat \"@query/SELECT name FROM users WHERE country = 'PL'\" > /dev/null");
    assert!(
        explain(q).contains("auto hash index on users.country ("),
        "{}",
        explain(q)
    );
    let listed = index_list();
    let row = listed
        .lines()
        .find(|l| l.starts_with("users,country,auto,2,built ("))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.ends_with("KiB"), "{row}");
    // A new mount remembers the lookups: the first query that parses the
    // table indexes the column again.
    let mut m = m;
    m.stop();
    let m = m.start();
    let o = m.out(&format!("cat \"@query/EXPLAIN {q}\""));
    assert!(o.contains("auto hash index on users.country ("), "{o}");
    // The threshold is a setting.
    m.config("auto_index_after", "5");
    let shown = m.rdb().args(["db:config", "shop"]).output().unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("auto_index_after = 5"));
}

#[test]
fn results_larger_than_memory_allows_stream_through_cat() {
    let Some(m) = Mounted::prepared(&table(), &[]) else {
        return;
    };
    m.config("max_rows_in_memory", "100");
    let m = m.start();
    // Every pair of users of one country: thousands of rows, streamed.
    let o = m.sh("cat \"@query/SELECT a.id, b.id FROM users a JOIN users b ON b.country = a.country\" | wc -l");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    let src = m.work.path().join("users.csv");
    let want = Command::new("python3")
        .arg("-c")
        .arg("import csv,sys,collections; c=collections.Counter(r['country'] for r in csv.DictReader(open(sys.argv[1], newline=''), delimiter='|')); print(sum(n*n for n in c.values()))")
        .arg(&src)
        .output()
        .unwrap();
    let want: usize = String::from_utf8_lossy(&want.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(want > 1000, "{want}");
    assert_eq!(got, want + 1, "rows plus the header");
    // Sorting that many rows would need them all in memory: refused, with why.
    let sorted = m.sh("cat \"@query/SELECT a.id, b.id FROM users a JOIN users b ON b.country = a.country ORDER BY b.id\"");
    assert!(!sorted.status.success());
    assert!(String::from_utf8_lossy(&sorted.stderr).contains("Invalid argument"));
    let status = m.status();
    assert!(status.contains("max_rows_in_memory"), "{status}");
}
