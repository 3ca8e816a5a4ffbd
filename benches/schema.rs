//! What schema rules cost a commit (docs/BENCHMARKS.md, "Schema rules"): a
//! 1-row change of a 100k-row table with every rule declared (`unique` on
//! two columns, a `pattern`, bounds, an enum, a boolean and a date, strict)
//! against the same change of the same table without a schema; the two
//! tables are committed in turn, so drift hits both alike. Then a migration
//! of the table without a schema: a computed column (`--map`), a declared
//! one with a default, and every `age` converted to a checked integer, as
//! one frame; its time and memory.
//!
//!   cargo bench --bench schema [-- --quick]

#[allow(dead_code)] // the generated table is for the other benchmarks
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Lcg, edit_one_row, ms, pct, status_kib};
use reedbase::query::Engine;
use reedbase::query::migrate::{self, MigrationRequest};
use reedbase::storage::{Action, Base, CommitOptions, Database, Frame, RealIo};

const RULES: &str = r#"
strict = true
[columns.id]
type = "integer"
primary_key = true
[columns.email]
type = "text"
unique = true
required = true
pattern = "[a-z0-9.]+@[a-z]+\\.[a-z]+"
max_length = 64
[columns.handle]
type = "text"
unique = true
[columns.age]
type = "integer"
min = 0
max = 150
[columns.country]
type = "enum"
values = ["DE", "FR", "PL", "US"]
[columns.score]
type = "real"
min = 0
[columns.active]
type = "boolean"
[columns.created]
type = "date"
min = "2000-01-01"
[columns.city]
type = "text"
max_length = 40
[columns.bio]
type = "text"
"#;

/// id|email|handle|age|...: age is the 4th field, as `edit_one_row` wants.
fn table(rows: usize) -> Vec<u8> {
    // Ten fields, as `edit_one_row` wants.
    let mut s = String::from("id|email|handle|age|country|score|active|created|city|bio\n");
    let countries = ["DE", "FR", "PL", "US"];
    for i in 1..=rows {
        s.push_str(&format!(
            "{i}|user{i}@example.org|h{i}|{}|{}|{}.5|{}|20{:02}-0{}-1{}|Berlin|likes tea\n",
            i % 100,
            countries[i % 4],
            i % 1000,
            i % 2 == 0,
            i % 24,
            1 + i % 9,
            i % 10
        ));
    }
    s.into_bytes()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rows, n) = if quick { (100_000, 60) } else { (100_000, 300) };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::init(Arc::new(RealIo), dir.path(), "bench", '|').expect("init");
    let base = table(rows);
    db.create_table("plain", &base, "bench").expect("create");
    db.create_table("ruled", &base, "bench").expect("create");
    let started = Instant::now();
    db.set_schema("ruled", Some(RULES), "test").expect("schema");
    let set = started.elapsed();
    let (plain, ruled) = (db.table("plain").expect("t"), db.table("ruled").expect("t"));
    let opts = CommitOptions::new(Action::Update, "bench");
    // The first commit of a handle builds the unique counts: timed apart.
    let mut rng = Lcg(11);
    let mut content = base;
    let first = edit_one_row(&content, &mut rng, 0);
    plain
        .commit(Base::Head, first.clone(), &opts)
        .expect("commit");
    let started = Instant::now();
    ruled
        .commit(Base::Head, first.clone(), &opts)
        .expect("commit");
    let first_ruled = started.elapsed();
    content = first;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 1..=n {
        let next = edit_one_row(&content, &mut rng, round);
        let start = Instant::now();
        plain
            .commit(Base::Head, next.clone(), &opts)
            .expect("commit");
        without.push(start.elapsed());
        let start = Instant::now();
        ruled
            .commit(Base::Head, next.clone(), &opts)
            .expect("commit");
        with.push(start.elapsed());
        content = next;
    }
    let (a, b) = (pct(&mut without, 0.5), pct(&mut with, 0.5));
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!(
        "| 1-row commit, {rows} rows, every rule declared / no schema, p50 over {n} | {} / {} ({:.2}x) | <= 1.5x |",
        ms(b),
        ms(a),
        b.as_secs_f64() / a.as_secs_f64()
    );
    println!(
        "| ... p90 | {} / {} | |",
        ms(pct(&mut with, 0.9)),
        ms(pct(&mut without, 0.9))
    );
    println!(
        "| first commit of a handle (builds the unique counts) | {} | |",
        ms(first_ruled)
    );
    println!(
        "| `schema:set` of those rules (checks all {rows} rows) | {} | |",
        ms(set)
    );
    drop((plain, ruled));
    let rss_before = status_kib("VmRSS:");
    let req = MigrationRequest {
        table: "plain".into(),
        schema: MIGRATED.into(),
        maps: vec![("label".into(), "upper(city) || '-' || id".into())],
        drops: Vec::new(),
    };
    let started = Instant::now();
    let plan = migrate::plan(&Engine::new(&db), &req).expect("plan");
    let planned = started.elapsed();
    let mut frame = Frame::begin("migrate-plain").expect("frame");
    frame
        .stage("plain", Base::Version(plan.base), plan.content)
        .expect("stage");
    frame
        .stage_schema("plain", Some(MIGRATED.into()))
        .expect("schema");
    db.commit_frame(frame, "bench").expect("migrate");
    let total = started.elapsed();
    println!(
        "| migration of {rows} rows: a computed column (`--map`), a default column, every age converted to integer | {} (plan {}, frame commit {}) | report |",
        ms(total),
        ms(planned),
        ms(total - planned)
    );
    println!(
        "| ... RSS before / after / peak of the process | {} / {} / {} MiB | |",
        rss_before / 1024,
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024
    );
}

/// What the migration benchmark migrates the table without a schema to.
const MIGRATED: &str = r#"
[columns.age]
type = "integer"
min = 0
[columns.label]
type = "text"
required = true
[columns.stock]
type = "integer"
default = "0"
"#;
