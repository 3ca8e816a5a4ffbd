//! The real `rdb` binary, run as a user would, with a temporary
//! `REEDBASE_HOME` and working directory per test.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{OtherUser, USERS, generated, rows, set_row};

pub(crate) struct Rdb {
    pub(crate) home: tempfile::TempDir,
    pub(crate) cwd: tempfile::TempDir,
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Rdb {
    pub(crate) fn new() -> Rdb {
        Rdb {
            home: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rdb"));
        c.args(args)
            .current_dir(dir)
            .env("REEDBASE_HOME", self.home.path())
            .env("USER", "tester")
            .env_remove("REEDBASE_USER")
            .env_remove("RUST_LOG");
        c
    }

    fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        let o: Output = self.cmd(dir, args).output().expect("run rdb");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_in(self.cwd.path(), args)
    }

    /// Runs and asserts success.
    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "rdb {args:?} failed: {}", r.stderr);
        r
    }

    pub(crate) fn stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .cmd(self.cwd.path(), args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let o = child.wait_with_output().unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub(crate) fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.cwd.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub(crate) fn db_root(&self, name: &str) -> PathBuf {
        self.home.path().join("databases").join(name)
    }
}

#[test]
fn databases_init_list_info_register() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    assert!(r.db_root("shop").join("config.toml").is_file());
    // Local database in a project directory, found from a subdirectory.
    let project = r.cwd.path().join("proj");
    std::fs::create_dir_all(project.join("sub/deeper")).unwrap();
    assert_eq!(r.run_in(&project, &["db:init", "notes", "--local"]).code, 0);
    assert!(project.join(".reedbase/config.toml").is_file());
    let users = r.file("users.csv", USERS);
    let deep = project.join("sub/deeper");
    assert_eq!(
        r.run_in(&deep, &["table:create", "notes", "users", "--from", &users])
            .code,
        0
    );

    let list = r.ok(&["db:list", "--format", "csv"]).out();
    assert!(
        list.starts_with("name,mode,location,tables,versions,size\n"),
        "{list}"
    );
    assert!(
        list.lines().any(|l| l.starts_with("shop,global,")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("notes,local,") && l.contains(",1,1,")),
        "{list}"
    );
    let info = r.ok(&["db:info", "notes"]).out();
    assert!(
        info.contains("mode:            local") && info.contains("users: 3 rows, 1 versions"),
        "{info}"
    );
    assert!(info.contains("mount memory:    indices 256 MiB"), "{info}");

    // Errors: duplicate, invalid and unknown names.
    let dup = r.run(&["db:init", "shop"]);
    assert_eq!(dup.code, 5, "{}", dup.stderr);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    let bad = r.run(&["db:init", "no/slash"]);
    assert_eq!(bad.code, 4, "{}", bad.stderr);
    let unknown = r.run(&["db:info", "nope"]);
    assert_eq!(unknown.code, 3);
    assert!(
        unknown.stderr.contains("\"nope\" not found"),
        "{}",
        unknown.stderr
    );

    // Unregister keeps the files; register brings the database back.
    r.ok(&["db:unregister", "shop"]);
    assert_eq!(r.run(&["db:info", "shop"]).code, 3);
    assert!(r.db_root("shop").join("config.toml").is_file());
    r.ok(&["db:register", r.db_root("shop").to_str().unwrap()]);
    r.ok(&["db:info", "shop"]);
    let nodb = r.run(&["db:register", r.cwd.path().to_str().unwrap()]);
    assert_eq!(nodb.code, 3, "{}", nodb.stderr);
    // A registered location that vanished is named as such.
    std::fs::remove_dir_all(r.db_root("shop")).unwrap();
    let gone = r.run(&["table:list", "shop"]);
    assert_eq!(gone.code, 3);
    assert!(gone.stderr.contains("holds no database"), "{}", gone.stderr);
}

#[test]
fn tables_create_import_export_drop_restore() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let users = r.file("users.csv", USERS);
    r.ok(&["table:create", "shop", "users", "--from", &users]);
    r.ok(&["table:create", "shop", "tags", "--columns", "tag,label"]);
    assert_eq!(
        r.ok(&["table:export", "shop", "tags"]).stdout,
        b"tag|label\n"
    );
    let list = r.ok(&["table:list", "shop", "--format", "csv"]).out();
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(list.contains("users,3,1,"), "{list}");

    // Import: one new version; the same content again: none.
    let v2 = set_row(USERS, "2", "2|Bob|bob@new.org|28");
    let f2 = r.file("v2.csv", &v2);
    r.ok(&["table:import", "shop", "users", &f2]);
    let again = r.ok(&["table:import", "shop", "users", &f2]);
    assert!(again.stderr.contains("no new version"), "{}", again.stderr);
    assert_eq!(r.ok(&["table:export", "shop", "users"]).stdout, v2);
    assert_eq!(
        r.ok(&["table:export", "shop", "users", "--version", "1"])
            .stdout,
        USERS
    );
    // Import from stdin into a new table creates it.
    let empty = r.stdin(&["table:import", "shop", "items", "-"], b"");
    assert_eq!(empty.code, 4, "empty input is no table: {}", empty.stderr);
    let piped = r.stdin(&["table:import", "shop", "more", "-"], b"sku|qty\nA1|3\n");
    assert_eq!(piped.code, 0, "{}", piped.stderr);

    // Drop is recorded and reversible.
    r.ok(&["table:drop", "shop", "users"]);
    assert_eq!(r.run(&["table:export", "shop", "users"]).code, 3);
    assert!(!r.ok(&["table:list", "shop"]).out().contains("users"));
    assert!(
        r.ok(&["table:list", "shop", "--all"])
            .out()
            .contains("users (dropped)")
    );
    r.ok(&["table:restore", "shop", "users"]);
    assert_eq!(r.ok(&["table:export", "shop", "users"]).stdout, v2);
    let versions = r
        .ok(&["version:list", "shop", "users", "--format", "csv"])
        .out();
    let actions: Vec<&str> = versions
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(actions, ["create", "import", "drop", "restore"]);
}

#[test]
fn create_and_import_of_a_generated_table_round_trip_and_stay_quiet() {
    let r = Rdb::new();
    r.ok(&["db:init", "big"]);
    // 3.5 MB: the first version's delta is compressed in pieces, in parallel.
    let v1 = generated("users", 40_000, '|');
    assert!(v1.len() > 3_000_000, "{}", v1.len());
    let f1 = r.file("v1.csv", &v1);
    let created = r.ok(&["table:create", "big", "users", "--from", &f1]);
    // stderr is no terminal here: the message and nothing else (no bar).
    assert_eq!(
        created.stderr,
        "created table users (40000 rows, version 1)\n"
    );
    assert!(created.stdout.is_empty());

    // One row changed.
    let at = v1.windows(7).position(|w| w == b"\n20000|").unwrap() + 7;
    let v2 = [&v1[..at], b"X", &v1[at..]].concat();
    let f2 = r.file("v2.csv", &v2);
    let imported = r.ok(&["table:import", "big", "users", &f2]);
    assert_eq!(imported.stderr, "imported users: version 2 (40000 rows)\n");
    // From stdin, into a new table: a create.
    let piped = r.stdin(&["table:import", "big", "copy", "-"], &v2);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(piped.stderr, "created table copy (40000 rows, version 1)\n");

    // Byte-exact, read back by fresh processes from the deltas.
    assert_eq!(r.ok(&["table:export", "big", "users"]).stdout, v2);
    assert_eq!(
        r.ok(&["table:export", "big", "users", "--version", "1"])
            .stdout,
        v1
    );
    assert_eq!(r.ok(&["table:export", "big", "copy"]).stdout, v2);
    // verify applies every delta with a standard bspatch.
    let v = r.run(&["verify", "big"]);
    assert_eq!(v.code, 0, "{}{}", v.out(), v.stderr);
}

#[test]
fn invalid_content_is_refused_with_its_line() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let base = rows(20);
    let f = r.file("t.csv", &base);
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    let cases: [(Vec<u8>, &str); 4] = [
        (
            set_row(&base, "10", "10|x"),
            "line 11: expected 3 fields, found 2",
        ),
        (
            set_row(&base, "10", "3|dup|1"),
            "line 11, column 1: duplicate key \"3\"",
        ),
        (
            set_row(&base, "10", "10|bad\"quote|1"),
            "line 11, column 2: quote inside an unquoted field",
        ),
        (vec![0xff, 0xfe, b'\n'], "not valid UTF-8"),
    ];
    for (content, message) in cases {
        let bad = r.file("bad.csv", &content);
        let out = r.run(&["table:import", "shop", "t", &bad]);
        assert_eq!(out.code, 4, "{}", out.stderr);
        assert!(
            out.stderr.contains(message),
            "wanted {message:?} in {}",
            out.stderr
        );
    }
    assert_eq!(r.ok(&["table:export", "shop", "t"]).stdout, base);
    let versions = r
        .ok(&["version:list", "shop", "t", "--format", "csv"])
        .out();
    assert_eq!(versions.lines().count(), 2, "only the create: {versions}");
}

#[test]
fn versions_list_show_diff_rollback() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("u.csv", USERS);
    r.ok(&["table:create", "shop", "users", "--from", &f]);
    let mut expected = vec![USERS.to_vec()];
    for i in 0..5 {
        let next = set_row(
            expected.last().unwrap(),
            "1",
            &format!("1|Alice|alice{i}@example.com|{}", 35 + i),
        );
        let f = r.file("next.csv", &next);
        r.ok(&["table:import", "shop", "users", &f]);
        expected.push(next);
    }
    for (i, want) in expected.iter().enumerate() {
        let got = r
            .ok(&["version:show", "shop", "users", &(i + 1).to_string()])
            .stdout;
        assert_eq!(&got, want, "version {}", i + 1);
    }
    assert_eq!(
        r.ok(&["version:show", "shop", "users", "head~1"]).stdout,
        expected[4]
    );
    let list = r.ok(&["version:list", "shop", "users"]).out();
    assert!(list.starts_with("seq  time"), "{list}");
    assert_eq!(list.lines().count(), 7);
    assert!(list.contains("tester"), "{list}");
    // A version by (a prefix of) its name.
    let csv = r
        .ok(&["version:list", "shop", "users", "--format", "csv"])
        .out();
    let name3 = csv
        .lines()
        .nth(3)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(!name3.contains(':'));
    assert_eq!(
        r.ok(&["version:show", "shop", "users", &name3]).stdout,
        expected[2]
    );

    let text = r.ok(&["version:diff", "shop", "users", "1", "6"]).out();
    assert!(
        text.contains("~ id=1: email: \"alice@example.com\" -> \"alice4@example.com\""),
        "{text}"
    );
    assert!(
        text.contains("0 added, 0 removed, 1 changed rows (2 cells)"),
        "{text}"
    );
    let csv = r
        .ok(&["version:diff", "shop", "users", "1", "6", "--format", "csv"])
        .out();
    assert_eq!(csv.lines().next(), Some("change,key,column,old,new"));
    assert!(csv.contains("changed,1,age,34,39"), "{csv}");

    r.ok(&["version:rollback", "shop", "users", "2"]);
    assert_eq!(r.ok(&["table:export", "shop", "users"]).stdout, expected[1]);
    assert_eq!(
        r.ok(&["version:list", "shop", "users", "--format", "csv"])
            .out()
            .lines()
            .count(),
        8
    );
    assert_eq!(r.run(&["version:show", "shop", "users", "99"]).code, 3);
}

#[test]
fn verify_names_exactly_what_is_damaged() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("t.csv", &rows(300));
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    let f2 = r.file("t2.csv", &set_row(&rows(300), "150", "150|changed|0"));
    r.ok(&["table:import", "shop", "t", &f2]);
    assert!(
        r.ok(&["verify"])
            .out()
            .contains("shop: ok (1 tables, 2 versions checked)")
    );

    let tdir = r.db_root("shop").join("tables/t");
    let mut deltas: Vec<PathBuf> = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".bsdiff"))
        .collect();
    deltas.sort();
    let second = deltas[1].clone();
    let mut bytes = std::fs::read(&second).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&second, bytes).unwrap();
    let out = r.run(&["verify", "shop"]);
    assert_eq!(out.code, 7, "{}", out.out());
    let name = second.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.out().contains(&format!("version 2: delta {name}"))
            || out.out().contains("version 2: rebuilt bytes"),
        "{}",
        out.out()
    );

    // A torn last log line is reported (and dropped on the next open).
    let r2 = Rdb::new();
    r2.ok(&["db:init", "shop"]);
    let f = r2.file("t.csv", USERS);
    r2.ok(&["table:create", "shop", "t", "--from", &f]);
    let log = r2.db_root("shop").join("tables/t/version.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"1795497330123456|abcd").unwrap();
    let out = r2.run(&["verify"]);
    assert_eq!(out.code, 7);
    assert!(out.out().contains("torn last line"), "{}", out.out());
    r2.ok(&["table:export", "shop", "t"]);
    r2.ok(&["verify"]);
}

#[test]
fn settings_are_shown_and_changed_with_checks() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    assert!(
        r.ok(&["db:config", "shop"])
            .out()
            .contains("conflict_policy = reject")
    );
    let out = r
        .ok(&["db:config", "shop", "conflict_policy", "last-writer-wins"])
        .out();
    assert!(out.contains("conflict_policy = last-writer-wins"), "{out}");
    let cfg = std::fs::read_to_string(r.db_root("shop").join("config.toml")).unwrap();
    assert!(
        cfg.contains("conflict_policy = \"last-writer-wins\""),
        "{cfg}"
    );
    assert_eq!(
        r.run(&["db:config", "shop", "conflict_policy", "maybe"])
            .code,
        4
    );
    assert_eq!(r.run(&["db:config", "shop", "keyframe_every", "0"]).code, 4);
    assert_eq!(r.run(&["db:config", "shop", "colour", "blue"]).code, 4);
    r.ok(&["db:config", "shop", "keyframe_every", "500"]);
    assert!(
        r.ok(&["db:info", "shop"])
            .out()
            .contains("keyframe every:  500 versions")
    );
}

#[test]
fn a_locked_table_names_the_holder() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    crate::util::set_config(&r.db_root("shop"), "lock_timeout_ms", 300);
    let f = r.file("t.csv", USERS);
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    // Hold the table's lock from this process, as a running daemon would.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(r.db_root("shop").join("tables/t/lock"))
        .unwrap();
    // SAFETY: flock on a valid fd we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    std::fs::write(
        r.db_root("shop").join("tables/t/lock"),
        std::process::id().to_string(),
    )
    .unwrap();
    let f2 = r.file("t2.csv", &set_row(USERS, "1", "1|A|a@b.c|1"));
    let out = r.run(&["table:import", "shop", "t", &f2]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("locked by pid {}", std::process::id())),
        "{}",
        out.stderr
    );
    drop(lock);
    r.ok(&["table:import", "shop", "t", &f2]);
}

#[test]
fn every_command_has_help() {
    let r = Rdb::new();
    let help = r.ok(&["--help"]).out();
    assert!(help.contains("Exit codes"), "{help}");
    let commands = [
        "db:init",
        "db:list",
        "db:info",
        "db:register",
        "db:unregister",
        "table:create",
        "table:list",
        "table:import",
        "table:export",
        "table:drop",
        "table:restore",
        "version:list",
        "version:show",
        "version:diff",
        "version:rollback",
        "frame:begin",
        "frame:stage",
        "frame:commit",
        "frame:abort",
        "frame:list",
        "frame:show",
        "frame:rollback",
        "restore:point-in-time",
        "db:query",
        "verify",
    ];
    for c in commands {
        assert!(help.contains(c), "{c} missing from --help");
        let out = r.ok(&[c, "--help"]).out();
        assert!(out.contains("Usage: rdb"), "{c}: {out}");
    }
    assert_eq!(r.run(&["no-such-command"]).code, 2);
}

// ---------------------------------------------------------------------------
// Frames: frame:*, restore:point-in-time
// ---------------------------------------------------------------------------

const FRAME_TABLES: [&str; 3] = ["accounts", "audit", "ledger"];

/// A database `shop` with the tables of `FRAME_TABLES`, each `rows(20)`.
fn frame_db() -> Rdb {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("start.csv", &rows(20));
    for t in FRAME_TABLES {
        r.ok(&["table:create", "shop", t, "--from", &f]);
    }
    r
}

impl Rdb {
    fn head(&self, table: &str) -> Vec<u8> {
        self.ok(&["table:export", "shop", table]).stdout
    }

    /// `version:list --format csv` of a table, without its header.
    fn versions(&self, table: &str) -> Vec<Vec<String>> {
        self.ok(&["version:list", "shop", table, "--format", "csv"])
            .out()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    }

    /// The time of version `seq` of `table` in RFC 3339, to the microsecond
    /// (from its name: `20261124T051530.123456Z-<node>`).
    fn version_time(&self, table: &str, seq: usize) -> String {
        let v = &self.versions(table)[seq - 1];
        let n = &v[1];
        format!(
            "{}-{}-{}T{}:{}:{}{}",
            &n[0..4],
            &n[4..6],
            &n[6..8],
            &n[9..11],
            &n[11..13],
            &n[13..15],
            &n[15..23]
        )
    }

    fn begin_frame(&self, name: &str) -> String {
        let id = self.ok(&["frame:begin", "shop", name]).out();
        let id = id.trim().to_string();
        assert_eq!(id.len(), 36, "a uuid: {id:?}");
        id
    }

    /// Stages `content` for `table` in frame `id` (through a file).
    fn stage(&self, id: &str, table: &str, content: &[u8]) {
        let f = self.file(&format!("stage-{table}.csv"), content);
        self.ok(&["frame:stage", "shop", id, table, &f]);
    }

    fn frame_list_line(&self, id: &str) -> Option<String> {
        self.ok(&["frame:list", "shop", "--format", "csv"])
            .out()
            .lines()
            .find(|l| l.starts_with(id))
            .map(str::to_string)
    }
}

fn moved(table: &str) -> Vec<u8> {
    set_row(&rows(20), "7", &format!("7|moved in {table}|1"))
}

#[test]
fn frame_begin_stage_commit_changes_every_table_at_once() {
    let r = frame_db();
    let id = r.begin_frame("transfer");
    let staging = r.db_root("shop").join("frames/open").join(&id);
    assert!(staging.join("frame.toml").is_file());
    // By a prefix of the id, from a file and from stdin.
    r.stage(&id[..8], "accounts", &moved("accounts"));
    let piped = r.stdin(
        &["frame:stage", "shop", &id, "ledger", "-"],
        &moved("ledger"),
    );
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    // Invalid content is refused when staged.
    let bad = r.file("bad.csv", b"id|name\n1|a|extra\n");
    assert_eq!(r.run(&["frame:stage", "shop", &id, "audit", &bad]).code, 4);
    assert_eq!(r.run(&["frame:stage", "shop", &id, "nosuch", &bad]).code, 3);
    let staged = r.frame_list_line(&id).expect("listed while staged");
    assert!(staged.ends_with(",\"accounts,ledger\",staged"), "{staged}");
    assert_eq!(r.head("accounts"), rows(20), "nothing committed yet");

    // Someone else changes another row of accounts meanwhile: it merges.
    let other = set_row(&rows(20), "3", "3|changed meanwhile|0");
    let f = r.file("other.csv", &other);
    r.ok(&["table:import", "shop", "accounts", &f]);

    let done = r.ok(&["frame:commit", "shop", &id[..8]]);
    let out = done.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], id, "{out}");
    assert!(lines[1].starts_with("accounts: version 3 ("), "{out}");
    assert!(lines[2].starts_with("ledger: version 2 ("), "{out}");
    assert_eq!(
        r.head("accounts"),
        set_row(&other, "7", "7|moved in accounts|1")
    );
    assert_eq!(r.head("ledger"), moved("ledger"));
    assert_eq!(r.head("audit"), rows(20));
    // One frame id and one timestamp in both tables' history.
    let (a, l) = (r.versions("accounts"), r.versions("ledger"));
    let (a, l) = (a.last().unwrap(), l.last().unwrap());
    assert_eq!((a[2].as_str(), a[7].as_str()), ("frame", id.as_str()));
    assert_eq!((l[2].as_str(), l[7].as_str()), ("frame", id.as_str()));
    assert_eq!(a[1], l[1], "one timestamp");
    assert_eq!(r.versions("audit").len(), 1);

    let listed = r.frame_list_line(&id).expect("listed");
    assert!(
        listed.starts_with(&format!("{id},transfer,"))
            && listed.ends_with(",\"accounts,ledger\",committed"),
        "{listed}"
    );
    assert!(!staging.exists(), "the staging is removed");
    let show = r.ok(&["frame:show", "shop", "transfer"]).out();
    assert!(show.contains("status:  committed"), "{show}");
    assert!(show.contains("accounts: version 3 (before: 2)"), "{show}");
    assert!(
        show.contains("~ id=7: name: \"name 7\" -> \"moved in ledger\""),
        "{show}"
    );
    assert!(!show.contains("changed meanwhile"), "{show}");
    // The frame is no longer staged.
    assert_eq!(r.run(&["frame:commit", "shop", &id]).code, 3);
    assert_eq!(r.run(&["frame:stage", "shop", &id, "audit", &f]).code, 3);
}

#[test]
fn frame_abort_leaves_nothing() {
    let r = frame_db();
    let id = r.begin_frame("mistake");
    r.stage(&id, "accounts", &moved("accounts"));
    r.stage(&id, "ledger", b"");
    let show = r.ok(&["frame:show", "shop", &id]).out();
    assert!(show.contains("status:  staged"), "{show}");
    assert!(show.contains("ledger: staged from version 1"), "{show}");
    let aborted = r.ok(&["frame:abort", "shop", &id[..6]]);
    assert!(aborted.stderr.contains("nothing was committed"));
    assert!(!r.db_root("shop").join("frames/open").join(&id).exists());
    assert_eq!(r.frame_list_line(&id), None);
    for t in FRAME_TABLES {
        assert_eq!(r.head(t), rows(20), "{t}");
        assert_eq!(r.versions(t).len(), 1, "{t}");
    }
    let records: Vec<_> = std::fs::read_dir(r.db_root("shop").join("frames"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "open")
        .collect();
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(r.run(&["frame:commit", "shop", &id]).code, 3);
    assert_eq!(r.run(&["frame:abort", "shop", &id]).code, 3);
}

#[test]
fn frame_commit_conflict_fails_the_whole_frame() {
    let r = frame_db();
    let id = r.begin_frame("transfer");
    r.stage(&id, "accounts", &moved("accounts"));
    r.stage(&id, "ledger", &moved("ledger"));
    // A concurrent change of the same cell in one of the tables.
    let theirs = set_row(&rows(20), "7", "7|theirs|1");
    let f = r.file("theirs.csv", &theirs);
    r.ok(&["table:import", "shop", "accounts", &f]);

    let out = r.run(&["frame:commit", "shop", &id]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("accounts: key \"7\", column \"name\": base \"name 7\", frame \"moved in accounts\", head \"theirs\""),
        "{}",
        out.stderr
    );
    assert!(out.out().is_empty(), "{}", out.out());
    // Nothing committed, in any table; the staging stays.
    assert_eq!(r.head("accounts"), theirs);
    assert_eq!(r.head("ledger"), rows(20));
    assert_eq!(r.versions("accounts").len(), 2);
    assert_eq!(r.versions("ledger").len(), 1);
    let listed = r.frame_list_line(&id).expect("still staged");
    assert!(listed.ends_with(",staged"), "{listed}");

    // Under last-writer-wins the frame applies and names what it overwrote.
    r.ok(&["db:config", "shop", "conflict_policy", "last-writer-wins"]);
    let done = r.ok(&["frame:commit", "shop", &id]);
    assert!(done.stderr.contains("overwritten"), "{}", done.stderr);
    assert_eq!(r.head("accounts"), moved("accounts"));
    assert_eq!(r.head("ledger"), moved("ledger"));
    assert!(r.frame_list_line(&id).unwrap().ends_with(",committed"));
}

#[test]
fn frame_rollback_undoes_a_frame_and_keeps_later_changes() {
    let r = frame_db();
    let id = r.begin_frame("transfer");
    let ledger_frame = set_row(&moved("ledger"), "8", "8|also moved|2");
    r.stage(&id, "accounts", &moved("accounts"));
    r.stage(&id, "ledger", &ledger_frame);
    r.ok(&["frame:commit", "shop", &id]);
    // A later, unrelated change in one of the frame's tables.
    let later = set_row(&moved("accounts"), "3", "3|later|0");
    let f = r.file("later.csv", &later);
    r.ok(&["table:import", "shop", "accounts", &f]);

    let out = r.ok(&["frame:rollback", "shop", &id[..8]]);
    let rollback_id = out.out().lines().next().unwrap().to_string();
    assert_eq!(
        r.head("accounts"),
        set_row(&rows(20), "3", "3|later|0"),
        "the frame's change undone, the later one kept"
    );
    assert_eq!(r.head("ledger"), rows(20));
    assert_eq!(r.head("audit"), rows(20));
    assert_eq!(r.versions("audit").len(), 1, "untouched");
    let listed = r.frame_list_line(&rollback_id).expect("a frame");
    assert!(
        listed.starts_with(&format!("{rollback_id},rollback-{},", &id[..8]))
            && listed.ends_with(",\"accounts,ledger\",committed"),
        "{listed}"
    );
    assert_eq!(
        r.versions("ledger").last().unwrap()[7],
        rollback_id,
        "committed as a frame"
    );

    // A later change to a cell the frame changed: refused under reject...
    let id2 = r.begin_frame("second");
    r.stage(
        &id2,
        "accounts",
        &set_row(&r.head("accounts"), "9", "9|g|9"),
    );
    r.stage(&id2, "ledger", &set_row(&r.head("ledger"), "9", "9|g|9"));
    r.ok(&["frame:commit", "shop", &id2]);
    let overlap = set_row(&r.head("ledger"), "9", "9|overlap|9");
    let f = r.file("overlap.csv", &overlap);
    r.ok(&["table:import", "shop", "ledger", &f]);
    let (accounts, ledger) = (r.head("accounts"), r.head("ledger"));
    let refused = r.run(&["frame:rollback", "shop", "second"]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("ledger: key \"9\", column \"name\""),
        "{}",
        refused.stderr
    );
    assert_eq!((r.head("accounts"), r.head("ledger")), (accounts, ledger));
    // ... applied under last-writer-wins, naming the cells it set back.
    r.ok(&["db:config", "shop", "conflict_policy", "last-writer-wins"]);
    let applied = r.ok(&["frame:rollback", "shop", "second"]);
    assert!(
        applied.stderr.contains("ledger: key \"9\""),
        "{}",
        applied.stderr
    );
    assert_eq!(r.head("accounts"), set_row(&rows(20), "3", "3|later|0"));
    assert_eq!(r.head("ledger"), rows(20));
}

#[test]
fn restore_point_in_time_puts_every_table_back() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    // Phase 1: two tables.
    let f = r.file("start.csv", &rows(20));
    r.ok(&["table:create", "shop", "accounts", "--from", &f]);
    r.ok(&["table:create", "shop", "ledger", "--from", &f]);
    // Phase 2: both change.
    let (a2, l2) = (
        set_row(&rows(20), "1", "1|a2|1"),
        set_row(&rows(20), "2", "2|l2|2"),
    );
    let f = r.file("a2.csv", &a2);
    r.ok(&["table:import", "shop", "accounts", &f]);
    let f = r.file("l2.csv", &l2);
    r.ok(&["table:import", "shop", "ledger", &f]);
    let phase2 = r.version_time("ledger", 2);
    // Phase 3: a frame changes both; a third table appears.
    let id = r.begin_frame("phase3");
    let (a3, l3) = (set_row(&a2, "5", "5|a3|5"), set_row(&l2, "5", "5|l3|5"));
    r.stage(&id, "accounts", &a3);
    r.stage(&id, "ledger", &l3);
    r.ok(&["frame:commit", "shop", &id]);
    let f = r.file("audit.csv", b"k|v\nx|1\n");
    r.ok(&["table:create", "shop", "audit", "--from", &f]);
    let phase3 = r.version_time("audit", 1);

    // Back to phase 2 by an RFC 3339 time: audit did not exist then.
    let out = r.ok(&["restore:point-in-time", "shop", &phase2]);
    let text = out.out();
    assert!(text.contains("accounts: version 4 ("), "{text}");
    assert!(text.contains("audit: version 2 ("), "{text}");
    assert!(text.contains("dropped: it had no version then"), "{text}");
    assert_eq!(r.head("accounts"), a2);
    assert_eq!(r.head("ledger"), l2);
    assert_eq!(r.run(&["table:export", "shop", "audit"]).code, 3);
    let restore_id = text.lines().next().unwrap();
    let listed = r.frame_list_line(restore_id).expect("a frame");
    assert!(
        listed.contains(",restore-") && listed.ends_with(",\"accounts,audit,ledger\",committed"),
        "{listed}"
    );
    // The same time again: nothing to do, no version.
    let again = r.ok(&["restore:point-in-time", "shop", &phase2]);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
    assert!(again.out().is_empty());
    assert_eq!(r.versions("accounts").len(), 4);

    // An hour ago no table existed: a relative time drops them all.
    r.ok(&["restore:point-in-time", "shop", "-1h"]);
    for t in ["accounts", "ledger", "audit"] {
        assert_eq!(r.run(&["table:export", "shop", t]).code, 3, "{t}");
    }
    // A version's full name stands for its time.
    let name2 = r.versions("ledger")[1][1].clone();
    r.ok(&["restore:point-in-time", "shop", &name2]);
    assert_eq!(r.head("accounts"), a2);
    assert_eq!(r.head("ledger"), l2);
    assert_eq!(r.run(&["table:export", "shop", "audit"]).code, 3);
    // And phase 3 brings every table back, the dropped ones included.
    r.ok(&["restore:point-in-time", "shop", &phase3]);
    assert_eq!(r.head("accounts"), a3);
    assert_eq!(r.head("ledger"), l3);
    assert_eq!(r.head("audit"), b"k|v\nx|1\n");
    assert_eq!(
        r.run(&["restore:point-in-time", "shop", "yesterday"]).code,
        4
    );
}

#[test]
fn db_query_prints_csv_json_and_tables_and_fails_bad_queries_with_exit_8() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file(
        "u.csv",
        b"id|name|city\n1|Ann|Rome\n2|Bob|Oslo\n3|Cy|Rome\n4|\"D|x\"|\n",
    );
    r.ok(&["table:create", "shop", "users", "--from", &f]);
    let csv = r
        .ok(&[
            "db:query",
            "shop",
            "SELECT city, COUNT(*) AS n FROM users GROUP BY city ORDER BY city",
        ])
        .out();
    assert_eq!(csv, "city|n\n|1\nOslo|1\nRome|2\n");
    let json = r
        .ok(&[
            "db:query",
            "shop",
            "SELECT id, name FROM users WHERE id = 4",
            "--format",
            "json",
        ])
        .out();
    assert_eq!(json, "[\n  {\"id\": 4, \"name\": \"D|x\"}\n]\n");
    let quoted = r
        .ok(&["db:query", "shop", "SELECT name FROM users WHERE id = 4"])
        .out();
    assert_eq!(quoted, "name\n\"D|x\"\n");
    let table = r
        .ok(&[
            "db:query",
            "shop",
            "SELECT id, city FROM users ORDER BY id LIMIT 2",
            "--format",
            "table",
        ])
        .out();
    assert!(
        table.starts_with("id  city\n1   Rome\n2   Oslo\n(2 rows)"),
        "{table}"
    );
    let bad = r.run(&["db:query", "shop", "SELECT nope FROM users"]);
    assert_eq!(bad.code, 8, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("1:8") && bad.stderr.contains("nope"),
        "{}",
        bad.stderr
    );
    let syntax = r.run(&["db:query", "shop", "SELECT id FROM users WHERE"]);
    assert_eq!(syntax.code, 8);
    assert!(
        syntax.stderr.contains("syntax error at 1:27"),
        "{}",
        syntax.stderr
    );
    assert_eq!(r.run(&["db:query", "nodb", "SELECT 1"]).code, 3);
}

#[test]
fn saved_queries_save_list_show_run_and_drop() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file(
        "u.csv",
        b"id|name|city\n1|Ann|Rome\n2|Bob|Oslo\n3|Cy|Rome\n",
    );
    r.ok(&["table:create", "shop", "users", "--from", &f]);
    let sql = "SELECT city, COUNT(*) AS n FROM users GROUP BY city ORDER BY city";
    r.ok(&["query:save", "shop", "by_city", sql]);
    assert_eq!(r.ok(&["query:list", "shop"]).out(), "by_city\n");
    assert_eq!(
        r.ok(&["query:show", "shop", "by_city"]).out(),
        format!("{sql}\n")
    );
    let run = r.ok(&["query:run", "shop", "by_city"]).out();
    assert_eq!(run, r.ok(&["db:query", "shop", sql]).out());
    assert_eq!(run, "city|n\nOslo|1\nRome|2\n");
    // A bad query is never saved; the name keeps its last good text.
    let bad = r.run(&["query:save", "shop", "by_city", "SELECT nope FROM users"]);
    assert_eq!(bad.code, 8, "{}", bad.stderr);
    assert_eq!(r.run(&["query:save", "shop", "../x", "SELECT 1"]).code, 4);
    r.ok(&["query:save", "shop", "by_city", "SELECT 1 AS one"]);
    r.ok(&["query:drop", "shop", "by_city"]);
    assert_eq!(r.ok(&["query:list", "shop"]).out(), "");
    assert_eq!(r.run(&["query:run", "shop", "by_city"]).code, 3);
    assert_eq!(r.run(&["query:drop", "shop", "by_city"]).code, 3);
    // A one-shot query's indices die with it: index:list shows no built one.
    r.ok(&["db:query", "shop", "SELECT * FROM users WHERE id = 2"]);
    let listed = r.ok(&["index:list", "shop", "--format", "csv"]).out();
    assert_eq!(
        listed,
        "table,column,kind,lookups,state,memory\nusers,id,key,0,built at the first lookup,\n"
    );
    let history = r.ok(&["query:show", "shop", "by_city", "--history"]).out();
    let texts: Vec<&str> = history.lines().filter(|l| !l.starts_with("-- ")).collect();
    assert_eq!(texts, [sql, "SELECT 1 AS one", "(deleted)"], "{history}");
}

#[test]
fn schema_set_show_and_drop_type_queries() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("u.csv", b"id|zip\n1|00501\n2|10001\n");
    r.ok(&["table:create", "shop", "users", "--from", &f]);
    let q = [
        "db:query",
        "shop",
        "SELECT zip FROM users ORDER BY id",
        "--format",
        "json",
    ];
    assert!(
        r.ok(&q).out().contains("\"zip\": \"00501\""),
        "inferred TEXT (007-style)"
    );
    let s = r.file("s.toml", b"[columns]\nzip = \"integer\"\n");
    r.ok(&["schema:set", "shop", "users", &s]);
    assert_eq!(
        r.ok(&["schema:show", "shop", "users"]).out(),
        "[columns]\nzip = \"integer\"\n"
    );
    assert!(
        r.ok(&q).out().contains("\"zip\": 501"),
        "{}",
        r.ok(&q).out()
    );
    let bad = r.file("b.toml", b"[columns]\nzip = \"money\"\n");
    let refused = r.run(&["schema:set", "shop", "users", &bad]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("unknown type \"money\""),
        "{}",
        refused.stderr
    );
    r.ok(&["schema:drop", "shop", "users"]);
    assert_eq!(r.run(&["schema:show", "shop", "users"]).code, 3);
    assert_eq!(r.run(&["schema:drop", "shop", "users"]).code, 3);
    assert!(r.ok(&q).out().contains("\"zip\": \"00501\""));
}

/// A small tmpfs mounted on `dir` until dropped: a real file system that
/// fills up. Needs root (tests run as root under CI); `None` elsewhere.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        if st.is_ok_and(|s| s.success()) {
            return Some(Tmpfs(dir.to_path_buf()));
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "mounting a tmpfs is needed under CI (root)"
        );
        eprintln!("skipping: cannot mount a tmpfs");
        None
    }

    /// Writes `name` until the file system is full (ENOSPC).
    fn fill(&self, name: &str) {
        let mut f = std::fs::File::create(self.0.join(name)).unwrap();
        for chunk in [64 << 10, 4 << 10, 1] {
            let buf = vec![0u8; chunk];
            let err = loop {
                if let Err(e) = f.write_all(&buf) {
                    break e;
                }
            };
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Temp files (`.<name>.rdb-tmp-...`) left in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rdb-tmp-"))
        .collect()
}

#[test]
fn read_commands_work_on_a_full_disk_with_a_stale_current_csv() {
    let r = Rdb::new();
    // Everything of rdb (home, registry, database) on a 2 MiB file system;
    // declared after `r`, so it is unmounted before the directory goes.
    let Some(disk) = Tmpfs::mount(r.home.path(), "2m") else {
        return;
    };
    r.ok(&["db:init", "shop"]);
    let v1 = rows(200);
    let v2 = set_row(&v1, "100", "100|changed|0");
    let f1 = r.file("v1.csv", &v1);
    let f2 = r.file("v2.csv", &v2);
    r.ok(&["table:create", "shop", "t", "--from", &f1]);
    r.ok(&["table:import", "shop", "t", &f2]);
    // A daemon killed between its commit point and its head write leaves
    // current.csv at the version before: a stale cache.
    let tdir = r.db_root("shop").join("tables/t");
    let cur = tdir.join("current.csv");
    std::fs::write(&cur, &v1).unwrap();
    disk.fill("filler");

    let list = r.ok(&["version:list", "shop", "t", "--format", "csv"]);
    assert_eq!(list.out().lines().count(), 3, "{}", list.out());
    assert_eq!(r.ok(&["version:show", "shop", "t", "1"]).stdout, v1);
    assert_eq!(r.ok(&["version:show", "shop", "t", "2"]).stdout, v2);
    let export = r.ok(&["table:export", "shop", "t"]);
    assert_eq!(export.stdout, v2);
    assert!(
        export.stderr.contains("could not rewrite current.csv"),
        "the failed cache rewrite is logged: {}",
        export.stderr
    );
    let verify = r.run(&["verify", "shop"]);
    assert_eq!(verify.code, 0, "{}{}", verify.out(), verify.stderr);
    assert!(
        verify.out().contains("note: t: current.csv differs"),
        "{}",
        verify.out()
    );
    // Nothing could be written, and nothing half-written is left behind.
    assert_eq!(std::fs::read(&cur).unwrap(), v1);
    assert_eq!(temp_files(&tdir), Vec::<String>::new());

    // Space again: the next command rewrites the cache, verify has no note.
    std::fs::remove_file(r.home.path().join("filler")).unwrap();
    assert_eq!(r.ok(&["table:export", "shop", "t"]).stdout, v2);
    assert_eq!(std::fs::read(&cur).unwrap(), v2);
    let verify = r.ok(&["verify", "shop"]).out();
    assert!(!verify.contains("note"), "{verify}");
}

#[test]
fn verify_calls_a_stale_current_csv_a_note_and_damage_exit_7() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let v1 = rows(300);
    let v2 = set_row(&v1, "150", "150|changed|0");
    let f1 = r.file("v1.csv", &v1);
    let f2 = r.file("v2.csv", &v2);
    r.ok(&["table:create", "shop", "t", "--from", &f1]);
    r.ok(&["table:import", "shop", "t", &f2]);
    let tdir = r.db_root("shop").join("tables/t");
    let cur = tdir.join("current.csv");

    // The cache edited behind the store's back, truncated, or gone: a note.
    type Stale = fn(&Path, &[u8]);
    let stale: [(&str, Stale); 4] = [
        ("differs", |p, v1| std::fs::write(p, v1).unwrap()),
        ("differs", |p, _| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap()
        }),
        ("differs", |p, _| std::fs::write(p, b"").unwrap()),
        ("is missing", |p, _| std::fs::remove_file(p).unwrap()),
    ];
    for (what, make_stale) in stale {
        r.ok(&["table:export", "shop", "t"]); // rebuilds the cache
        assert_eq!(std::fs::read(&cur).unwrap(), v2);
        make_stale(&cur, &v1);
        let out = r.run(&["verify", "shop"]);
        assert_eq!(out.code, 0, "{what}: {}", out.out());
        assert!(
            out.out()
                .contains("shop: ok (1 tables, 2 versions checked)")
                && out.out().contains(&format!("note: t: current.csv {what}")),
            "{}",
            out.out()
        );
    }

    // Real damage still exits 7, stale cache or not: a hash in the log that
    // the chain does not rebuild (with a valid CRC)...
    let log = tdir.join("version.log");
    let good_log = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = good_log.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split('|').map(str::to_string).collect();
    fields[7] = "0".repeat(32);
    fields.pop();
    let body = fields.join("|");
    lines[1] = format!("{body}|{:08x}", crc32fast::hash(body.as_bytes()));
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = r.run(&["verify", "shop"]);
    assert_eq!(out.code, 7, "{}", out.out());
    assert!(
        out.out()
            .contains("version 2: rebuilt bytes do not match the logged hash"),
        "{}",
        out.out()
    );
    std::fs::write(&log, &good_log).unwrap();
    // ...and a delta that does not rebuild.
    let mut deltas: Vec<PathBuf> = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".bsdiff"))
        .collect();
    deltas.sort();
    let mut bytes = std::fs::read(&deltas[1]).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&deltas[1], bytes).unwrap();
    let out = r.run(&["verify", "shop"]);
    assert_eq!(out.code, 7, "{}", out.out());
    assert!(out.out().contains("version 2: "), "{}", out.out());
}

#[test]
fn a_cli_read_leaves_current_csv_to_the_holder_of_the_table_lock() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let v2 = set_row(USERS, "1", "1|A|a@b.c|1");
    let f1 = r.file("v1.csv", USERS);
    let f2 = r.file("v2.csv", &v2);
    r.ok(&["table:create", "shop", "t", "--from", &f1]);
    r.ok(&["table:import", "shop", "t", &f2]);
    let cur = r.db_root("shop").join("tables/t/current.csv");
    // A mount between its commit and its head write: it holds the table's
    // lock (as its head writer does for the rename) and current.csv is old.
    std::fs::write(&cur, USERS).unwrap();
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(r.db_root("shop").join("tables/t/lock"))
        .unwrap();
    // SAFETY: flock on a valid fd we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    assert_eq!(r.ok(&["table:export", "shop", "t"]).stdout, v2);
    assert_eq!(
        r.ok(&["version:show", "shop", "t", "1"]).stdout,
        USERS.to_vec()
    );
    assert_eq!(
        std::fs::read(&cur).unwrap(),
        USERS,
        "rewritten while another process held the lock"
    );
    drop(lock);
    assert_eq!(r.ok(&["table:export", "shop", "t"]).stdout, v2);
    assert_eq!(std::fs::read(&cur).unwrap(), v2);
}

// ---------------------------------------------------------------------------
// Safe by default: private modes, no symlinks followed, no other user's
// database used, and name resolution that says what it picked (docs/SECURITY.md).

/// Runs `rdb` with umask 022 (the usual default, under which the store was
/// world-readable), whatever this process's umask is.
fn with_umask_022(mut c: Command) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    c
}

fn output(mut c: Command) -> Run {
    let o = c.output().expect("run rdb");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Every file under `dir` that is not mode 0600 and every directory that is
/// not 0700 (symlinks are not followed), with its mode.
fn not_private(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut bad = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode() & 0o7777;
        if m.is_dir() {
            if mode != 0o700 {
                bad.push(format!("{} (dir {mode:04o})", p.display()));
            }
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        } else if m.is_file() && mode != 0o600 {
            bad.push(format!("{} (file {mode:04o})", p.display()));
        }
    }
    bad
}

/// Unmounts (and waits for the daemon) when dropped, also after a panic.
struct Unmount<'a>(&'a Rdb, PathBuf);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let mp = self.1.to_str().unwrap_or_default().to_string();
        let r = self.0.run(&["umount", &mp]);
        if r.code != 0 {
            let _ = Command::new("umount").arg("-l").arg(&self.1).status();
        }
    }
}

#[test]
fn store_files_are_private_whatever_the_umask_and_verify_warns_when_not() {
    let r = Rdb::new();
    let rdb = |dir: &Path, args: &[&str]| {
        let out = output(with_umask_022(r.cmd(dir, args)));
        assert_eq!(out.code, 0, "rdb {args:?}: {}", out.stderr);
        out
    };
    let home = r.home.path();
    let cwd = r.cwd.path();
    // The test's own directory, not rdb's: tempfile follows the umask.
    std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // REEDBASE_HOME does not exist yet: rdb creates it (and its parents).
    let fresh_home = home.join("nested/home");
    let fresh = |args: &[&str]| {
        let mut c = with_umask_022(r.cmd(cwd, args));
        c.env("REEDBASE_HOME", &fresh_home);
        let out = output(c);
        assert_eq!(out.code, 0, "rdb {args:?}: {}", out.stderr);
    };
    fresh(&["db:init", "other"]);

    rdb(cwd, &["db:init", "shop"]);
    let users = r.file("users.csv", USERS);
    rdb(cwd, &["table:create", "shop", "users", "--from", &users]);
    let v2 = r.file("v2.csv", &set_row(USERS, "2", "2|Bob|bob@new.org|28"));
    rdb(cwd, &["table:import", "shop", "users", &v2]);
    let bad = r.file("bad.csv", &set_row(USERS, "2", "2|Bob"));
    let refused = output(with_umask_022(
        r.cmd(cwd, &["table:import", "shop", "users", &bad]),
    ));
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    let schema = r.file("s.toml", b"[columns]\nage = \"integer\"\n");
    rdb(cwd, &["schema:set", "shop", "users", &schema]);
    rdb(
        cwd,
        &["query:save", "shop", "adults", "SELECT name FROM users"],
    );
    rdb(cwd, &["db:query", "shop", "SELECT COUNT(*) FROM users"]);
    rdb(cwd, &["table:drop", "shop", "users"]);
    rdb(cwd, &["table:restore", "shop", "users"]);
    let project = cwd.join("proj");
    std::fs::create_dir(&project).unwrap();
    rdb(&project, &["db:init", "notes", "--local"]);
    rdb(
        &project,
        &["table:create", "notes", "t", "--columns", "k,v"],
    );

    // A daemon mount: its log and pid files, and a save through it, which
    // the daemon commits (a delta, the head, state files).
    let mp = cwd.join("mnt");
    std::fs::create_dir(&mp).unwrap();
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok()
    {
        rdb(cwd, &["mount", "shop", mp.to_str().unwrap(), "--daemon"]);
        let guard = Unmount(&r, mp.clone());
        let saved = set_row(USERS, "1", "1|Alice|alice@new.org|35");
        std::fs::write(mp.join("users/current.csv"), &saved).unwrap();
        assert_eq!(rdb(cwd, &["table:export", "shop", "users"]).stdout, saved);
        let logs: Vec<PathBuf> = std::fs::read_dir(home.join("mounts"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            logs.iter()
                .any(|p| p.extension().is_some_and(|e| e == "log")),
            "{logs:?}"
        );
        assert!(
            logs.iter()
                .any(|p| p.extension().is_some_and(|e| e == "pid")),
            "{logs:?}"
        );
        let offenders = not_private(home);
        assert!(offenders.is_empty(), "while mounted: {offenders:#?}");
        drop(guard);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "/dev/fuse is required under CI"
        );
        eprintln!("skipping the mount part: /dev/fuse cannot be opened");
    }

    let mut offenders = not_private(home);
    offenders.extend(not_private(&project.join(".reedbase")));
    assert!(
        offenders.is_empty(),
        "not private under umask 022: {offenders:#?}"
    );
    // The quiet case: nothing to warn about.
    let quiet = rdb(cwd, &["verify"]);
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);

    // One file opened to others: verify and db:info say so, exit unchanged.
    let cur = r.db_root("shop").join("tables/users/current.csv");
    assert!(
        Command::new("chmod")
            .arg("o+r")
            .arg(&cur)
            .status()
            .unwrap()
            .success()
    );
    for args in [&["verify"][..], &["verify", "shop"], &["db:info", "shop"]] {
        let out = r.run(args);
        assert_eq!(out.code, 0, "rdb {args:?}: {}", out.stderr);
        let fix = format!("chmod -R go-rwx {}", r.db_root("shop").display());
        assert!(
            out.stderr.contains(&cur.display().to_string()) && out.stderr.contains(&fix),
            "rdb {args:?}: {}",
            out.stderr
        );
    }
    // REEDBASE_HOME's own files (registry, daemon logs) count too.
    std::fs::set_permissions(
        home.join("registry.toml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = r.run(&["verify"]);
    assert!(
        out.stderr
            .contains(&format!("chmod -R go-rwx {}", home.display())),
        "{}",
        out.stderr
    );
}

/// Every file under `dir` with its bytes (to show nothing changed).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn another_users_database_in_a_shared_directory_is_refused_unless_allowed() {
    let r = Rdb::new();
    let Some(other) = OtherUser::create() else {
        return;
    };
    // A directory anyone may write, as /tmp is.
    let shared = r.cwd.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    // Root's registered database `shop`.
    r.ok(&["db:init", "shop"]);
    let users = r.file("users.csv", USERS);
    r.ok(&["table:create", "shop", "users", "--from", &users]);
    // The other user's local database, also called `shop` (made by rdb with
    // a home of its own, then given to that user).
    let their_home = tempfile::tempdir().unwrap();
    let theirs = |dir: &Path, args: &[&str]| {
        let mut c = r.cmd(dir, args);
        c.env("REEDBASE_HOME", their_home.path());
        assert_eq!(output(c).code, 0, "{args:?}");
    };
    theirs(&shared, &["db:init", "shop", "--local"]);
    theirs(
        &shared,
        &["table:create", "shop", "users", "--columns", "id,note"],
    );
    let planted = shared.join(".reedbase");
    other.chown_tree(&planted);
    let before = snapshot(&planted);
    let below = shared.join("work");
    std::fs::create_dir(&below).unwrap();

    // Root's secret rows, imported from below the shared directory: refused,
    // not written into the other user's store.
    let secret = r.file("secret.csv", b"id|name|email|age\n9|Root|root@secret|99\n");
    for args in [
        &["table:import", "shop", "users", &secret][..],
        &["table:list", "shop"],
        &["db:info", "shop"],
    ] {
        let out = r.run_in(&below, args);
        assert_ne!(out.code, 0, "rdb {args:?} used another user's database");
        for want in [
            planted.display().to_string(),
            format!("owned by uid {}", other.uid),
            format!("REEDBASE_SAFE_DIRECTORIES={}", planted.display()),
        ] {
            assert!(
                out.stderr.contains(&want),
                "rdb {args:?}: wanted {want:?} in {}",
                out.stderr
            );
        }
    }
    assert_eq!(snapshot(&planted), before, "the other user's store changed");
    assert_eq!(r.ok(&["table:export", "shop", "users"]).stdout, USERS);

    // Allowed when named explicitly: the database itself, its project
    // directory, or `*`.
    for allow in [
        planted.display().to_string(),
        format!("/nonexistent:{}", shared.display()),
        "*".to_string(),
    ] {
        let mut c = r.cmd(&below, &["table:export", "shop", "users"]);
        c.env("REEDBASE_SAFE_DIRECTORIES", &allow);
        let out = output(c);
        assert_eq!(out.code, 0, "allowed by {allow:?}: {}", out.stderr);
        assert_eq!(out.stdout, b"id|note\n", "allowed by {allow:?}");
    }

    // `db:init --local` refuses to build in another user's `.reedbase`.
    let shared2 = r.cwd.path().join("shared2");
    std::fs::create_dir_all(shared2.join(".reedbase")).unwrap();
    std::fs::set_permissions(
        &shared2,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    other.chown_tree(&shared2.join(".reedbase"));
    let out = r.run_in(&shared2, &["db:init", "mine", "--local"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("REEDBASE_SAFE_DIRECTORIES"),
        "{}",
        out.stderr
    );
    assert!(snapshot(&shared2).is_empty(), "{:?}", snapshot(&shared2));
    assert_eq!(
        r.run(&["db:info", "mine"]).code,
        3,
        "the registration was undone"
    );
}

#[test]
fn planted_symlinks_are_refused_and_never_followed() {
    use std::os::unix::fs::symlink;
    let r = Rdb::new();
    let cwd = r.cwd.path();
    // Root's files elsewhere, which a planted symlink points at.
    let elsewhere = cwd.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("actions.dict"), b"root's actions\n").unwrap();
    std::fs::write(elsewhere.join("precious"), b"root's precious bytes\n").unwrap();
    let before = snapshot(&elsewhere);
    let refused = |out: &Run, link: &Path| {
        assert_ne!(out.code, 0, "followed {}", link.display());
        assert!(
            out.stderr.contains(&link.display().to_string()) && out.stderr.contains("symlink"),
            "wanted {} named as a symlink in {}",
            link.display(),
            out.stderr
        );
    };

    // `.reedbase/registry` and `.reedbase/tables` symlinks at db:init --local.
    for part in ["registry", "tables"] {
        let project = cwd.join(format!("p-{part}"));
        std::fs::create_dir_all(project.join(".reedbase")).unwrap();
        let link = project.join(".reedbase").join(part);
        symlink(&elsewhere, &link).unwrap();
        let out = r.run_in(&project, &["db:init", "notes", "--local"]);
        refused(&out, &link);
        assert_eq!(snapshot(&elsewhere), before);
    }

    // `tables` replaced by a symlink in a database that exists.
    let project = cwd.join("p-open");
    std::fs::create_dir(&project).unwrap();
    assert_eq!(r.run_in(&project, &["db:init", "notes", "--local"]).code, 0);
    let users = r.file("users.csv", USERS);
    assert_eq!(
        r.run_in(
            &project,
            &["table:create", "notes", "users", "--from", &users]
        )
        .code,
        0
    );
    let tables = project.join(".reedbase/tables");
    std::fs::remove_dir_all(&tables).unwrap();
    symlink(&elsewhere, &tables).unwrap();
    refused(
        &r.run_in(&project, &["table:import", "notes", "users", &users]),
        &tables,
    );
    refused(&r.run_in(&project, &["table:list", "notes"]), &tables);
    let db_dir = project.join(".reedbase");
    refused(&r.run(&["db:register", db_dir.to_str().unwrap()]), &tables);
    assert_eq!(snapshot(&elsewhere), before);

    // A table's `lock` a symlink to a file of root's: its bytes stay.
    r.ok(&["db:init", "shop"]);
    r.ok(&["table:create", "shop", "users", "--from", &users]);
    let lock = r.db_root("shop").join("tables/users/lock");
    std::fs::remove_file(&lock).unwrap();
    symlink(elsewhere.join("precious"), &lock).unwrap();
    let v2 = r.file("v2.csv", &set_row(USERS, "2", "2|Bob|bob@new.org|28"));
    refused(&r.run(&["table:import", "shop", "users", &v2]), &lock);
    refused(&r.run(&["table:export", "shop", "users"]), &lock);
    assert_eq!(snapshot(&elsewhere), before);

    // `.reedbase` itself a symlink: to an empty directory at db:init, and to
    // another database when a name is resolved.
    let project = cwd.join("p-link");
    std::fs::create_dir(&project).unwrap();
    let link = project.join(".reedbase");
    symlink(&elsewhere, &link).unwrap();
    refused(&r.run_in(&project, &["db:init", "moved", "--local"]), &link);
    assert_eq!(snapshot(&elsewhere), before);
    std::fs::remove_file(&link).unwrap();
    symlink(cwd.join("p-open/.reedbase"), &link).unwrap();
    refused(&r.run_in(&project, &["table:list", "notes"]), &link);
    assert_eq!(snapshot(&elsewhere), before);
}

#[test]
fn a_name_both_local_and_registered_says_which_is_used() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    r.ok(&["table:create", "shop", "global_t", "--columns", "a,b"]);
    // A local `shop` in a project (made with a home of its own, as a
    // cloned project or another tool would leave it: not in this registry).
    let project = r.cwd.path().join("proj");
    std::fs::create_dir_all(project.join("sub")).unwrap();
    let other_home = tempfile::tempdir().unwrap();
    for args in [
        &["db:init", "shop", "--local"][..],
        &["table:create", "shop", "local_t", "--columns", "a,b"],
    ] {
        let mut c = r.cmd(&project, args);
        c.env("REEDBASE_HOME", other_home.path());
        assert_eq!(output(c).code, 0, "{args:?}");
    }
    let inside = r.run_in(&project.join("sub"), &["table:list", "shop"]);
    assert_eq!(inside.code, 0, "{}", inside.stderr);
    assert!(inside.out().contains("local_t"), "{}", inside.out());
    let local = project.join(".reedbase");
    let wanted = format!(
        "\"shop\" is both the local database at {} and the registered one at {}; using the local one",
        local.display(),
        r.db_root("shop").display()
    );
    assert!(inside.stderr.contains(&wanted), "{}", inside.stderr);
    // Outside the project only the registered one exists: nothing to say.
    let outside = r.ok(&["table:list", "shop"]);
    assert!(outside.out().contains("global_t"), "{}", outside.out());
    assert!(outside.stderr.is_empty(), "{}", outside.stderr);
}

#[test]
fn an_update_of_a_locked_table_exits_6_and_names_the_holder() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    crate::util::set_config(&r.db_root("shop"), "lock_timeout_ms", 300);
    let f = r.file("t.csv", USERS);
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    let lock_path = r.db_root("shop").join("tables/t/lock");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    // SAFETY: flock on a valid fd we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    std::fs::write(&lock_path, std::process::id().to_string()).unwrap();
    let sql = "UPDATE t SET age = 35 WHERE id = '1'";
    let out = r.run(&["db:query", "shop", sql]);
    // Locked (6), not "other error" (1): the query keeps the storage error.
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("locked by pid {}", std::process::id())),
        "{}",
        out.stderr
    );
    drop(lock);
    r.ok(&["db:query", "shop", sql]);
}

/// The delta files of `table`, oldest first (their names start with the
/// commit time).
fn deltas(r: &Rdb, table: &str) -> Vec<PathBuf> {
    let mut d: Vec<PathBuf> = std::fs::read_dir(r.db_root("shop").join("tables").join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".bsdiff"))
        .collect();
    d.sort();
    d
}

#[test]
fn a_deleted_delta_makes_version_show_exit_7_naming_the_file() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("t.csv", USERS);
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    let v = r.file("v.csv", &set_row(USERS, "1", "1|A|a@b.c|2"));
    r.ok(&["table:import", "shop", "t", &v]);
    let d = deltas(&r, "t");
    assert_eq!(d.len(), 2);
    // Version 1 is rebuilt forwards with the first delta or backwards from
    // the head with the second: with both gone, every path fails.
    let names: Vec<String> = d
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for p in &d {
        std::fs::remove_file(p).unwrap();
    }
    let out = r.run(&["version:show", "shop", "t", "1"]);
    // Damaged store (7), not "other error" (1), and the file is named.
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("damaged store"), "{}", out.stderr);
    assert!(
        names.iter().any(|n| out.stderr.contains(n.as_str())),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_names_only_the_versions_that_cannot_be_rebuilt() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("t.csv", USERS);
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    for age in 2..=5 {
        let v = r.file("v.csv", &set_row(USERS, "1", &format!("1|A|a@b.c|{age}")));
        r.ok(&["table:import", "shop", "t", &v]);
    }
    let d = deltas(&r, "t");
    assert_eq!(d.len(), 5);
    let third = d[2].file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_file(&d[2]).unwrap();
    // Versions 1-2 rebuild forwards, 3-5 backwards from the head: verify
    // names the missing delta, and no version as lost.
    let v = r.run(&["verify", "shop"]);
    assert_eq!(v.code, 7, "{}", v.out());
    assert!(v.out().contains(&third), "{}", v.out());
    assert!(!v.out().contains("cannot be rebuilt"), "{}", v.out());
    // Version 4's delta gone too: version 3 is reachable from neither side.
    std::fs::remove_file(&d[3]).unwrap();
    let v = r.run(&["verify", "shop"]);
    assert_eq!(v.code, 7, "{}", v.out());
    assert!(
        v.out().contains("version 3: cannot be rebuilt"),
        "{}",
        v.out()
    );
    assert!(!v.out().contains("version 4: cannot"), "{}", v.out());
    assert!(!v.out().contains("versions 3-"), "{}", v.out());
}

#[test]
fn verify_quick_checks_the_log_the_files_and_the_head_without_reading_deltas() {
    let r = Rdb::new();
    r.ok(&["db:init", "shop"]);
    let f = r.file("t.csv", &rows(300));
    r.ok(&["table:create", "shop", "t", "--from", &f]);
    let mut cur = rows(300);
    for i in 0..4 {
        cur = set_row(
            &cur,
            &(i * 50 + 1).to_string(),
            &format!("{}|v{i}|{i}", i * 50 + 1),
        );
        let v = r.file("v.csv", &cur);
        r.ok(&["table:import", "shop", "t", &v]);
    }
    let quick = r.ok(&["verify", "shop", "--quick"]).out();
    assert!(
        quick.contains("shop: ok (1 tables, 5 versions checked, quick)"),
        "{quick}"
    );
    let full = r.ok(&["verify", "shop"]).out();
    assert!(
        full.contains("shop: ok (1 tables, 5 versions checked)"),
        "{full}"
    );
    // One thread or many: the same report.
    assert_eq!(r.ok(&["verify", "shop", "--threads", "1"]).out(), full);

    // A delta's content damaged, its size kept: --quick does not read it.
    let d = deltas(&r, "t");
    let third = d[2].clone();
    let good = std::fs::read(&third).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 10] ^= 0x55;
    std::fs::write(&third, &bad).unwrap();
    r.ok(&["verify", "shop", "--quick"]);
    let out = r.run(&["verify", "shop"]);
    assert_eq!(out.code, 7, "{}", out.out());
    assert!(out.out().contains("version 3: delta"), "{}", out.out());
    let one = r.run(&["verify", "shop", "--threads", "1"]);
    assert_eq!(one.out(), out.out());
    std::fs::write(&third, &good).unwrap();

    // A missing delta: named by --quick.
    std::fs::rename(&third, r.cwd.path().join("kept")).unwrap();
    let out = r.run(&["verify", "shop", "--quick"]);
    assert_eq!(out.code, 7, "{}", out.out());
    let name = third.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.out().contains(&format!("version 3: delta {name}")),
        "{}",
        out.out()
    );
    // A truncated one too.
    std::fs::write(&third, &good[..8]).unwrap();
    let out = r.run(&["verify", "shop", "--quick"]);
    assert_eq!(out.code, 7, "{}", out.out());
    assert!(out.out().contains("too short"), "{}", out.out());
    std::fs::rename(r.cwd.path().join("kept"), &third).unwrap();
    r.ok(&["verify", "shop", "--quick"]);

    // A stale head: a note (exit 0), as in a full verify.
    let cur_csv = r.db_root("shop").join("tables/t/current.csv");
    std::fs::write(&cur_csv, rows(300)).unwrap();
    let out = r.run(&["verify", "shop", "--quick"]);
    assert_eq!(out.code, 0, "{}", out.out());
    assert!(
        out.out()
            .contains("note: t: current.csv differs from the head version"),
        "{}",
        out.out()
    );
}
