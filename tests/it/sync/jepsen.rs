//! A randomized convergence test in the spirit of Jepsen: four hosts over
//! SSH, a seeded schedule of saves (same-cell collisions, deletes, inserts
//! of one key on two hosts, a header change, two-table frames), rounds
//! between random pairs, partitions and heals, and a `sync:run` daemon
//! killed with SIGKILL and restarted. At the end, after a full sync: every
//! host has the same bytes, and every value an acknowledged save wrote is
//! in the final tables, was replaced by a save that had seen it, or is
//! listed as a lost value at every host.
//!
//! `REEDBASE_JEPSEN_SEEDS=1,2,3 cargo test jepsen` runs other seeds
//! (scripts/sync_jepsen.sh runs many).

use std::collections::BTreeMap;

use super::net::available;
use super::{Daemon, Host};

const ORDERS: &str = "id|product|n\n1|1|1\n";

/// xorshift64*: small, seeded, the same schedule on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A table as (header, rows by key in order).
fn parse(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .map(|h| h.split('|').map(str::to_string).collect())
        .unwrap_or_default();
    let rows = lines
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = header.join("|") + "\n";
    for r in rows {
        out.push_str(&r.join("|"));
        out.push('\n');
    }
    out
}

/// Cells (key, column) -> value.
fn cells(text: &str) -> BTreeMap<(String, String), String> {
    let (h, rows) = parse(text);
    let mut out = BTreeMap::new();
    for r in rows {
        for (c, v) in h.iter().zip(&r) {
            out.insert((r[0].clone(), c.clone()), v.clone());
        }
    }
    out
}

/// An acknowledged save: what the host had, and what it saved.
struct Save {
    table: &'static str,
    before: String,
    after: String,
}

/// A random edit of `text`: a cell, a delete, an insert of a small-range
/// key, or (rarely) a new column.
fn random_edit(rng: &mut Rng, text: &str, tag: &str) -> String {
    let (mut h, mut rows) = parse(text);
    match rng.below(10) {
        0..=4 if !rows.is_empty() => {
            let r = rng.below(rows.len());
            let c = 1 + rng.below(h.len() - 1);
            rows[r][c] = tag.to_string();
        }
        5 if rows.len() > 1 => {
            rows.remove(rng.below(rows.len()));
        }
        6 if !h.iter().any(|c| c == "note") => {
            h.push("note".into());
            for r in &mut rows {
                r.push(String::new());
            }
        }
        _ => {
            let key = (10 + rng.below(6)).to_string();
            if let Some(r) = rows.iter_mut().find(|r| r[0] == key) {
                let last = r.len() - 1;
                r[last] = tag.to_string();
            } else {
                let mut r = vec![key];
                r.extend((1..h.len()).map(|_| tag.to_string()));
                let at = rng.below(rows.len() + 1);
                rows.insert(at, r);
            }
        }
    }
    render(&h, &rows)
}

fn frame(host: &Host, contents: &[(&str, &str)]) {
    let id = host
        .ok(&["frame:begin", "shop", "both"])
        .stdout
        .trim()
        .to_string();
    for (table, content) in contents {
        let f = host.home.path().join(format!("{table}.frame.csv"));
        std::fs::write(&f, content).unwrap();
        host.ok(&["frame:stage", "shop", &id, table, f.to_str().unwrap()]);
    }
    host.ok(&["frame:commit", "shop", &id]);
}

fn run_seed(seed: u64) {
    let net = super::hosts::distributed(4);
    let h0 = &net.hosts[0];
    h0.save("orders", ORDERS);
    for h in &net.hosts[1..] {
        h.ok(&["db:sync", "shop", "--peer", "h0"]);
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut saves: Vec<Save> = Vec::new();
    let mut down = [false; 4];
    let mut daemon: Option<Daemon> = Some(Daemon::spawn(
        &net.hosts[3],
        &["sync:run", "shop", "--interval", "2"],
        None,
    ));
    for step in 0..24 {
        let i = rng.below(4);
        let h = &net.hosts[i];
        let tag = format!("s{seed}x{step}h{i}");
        match rng.below(12) {
            0..=5 => {
                let table = if rng.below(4) == 0 {
                    "orders"
                } else {
                    "products"
                };
                let before = h.head(table);
                let after = random_edit(&mut rng, &before, &tag);
                h.save(table, &after);
                saves.push(Save {
                    table,
                    before,
                    after,
                });
            }
            6 => {
                let (bp, bo) = (h.head("products"), h.head("orders"));
                let (ap, ao) = (
                    random_edit(&mut rng, &bp, &tag),
                    random_edit(&mut rng, &bo, &tag),
                );
                frame(h, &[("products", &ap), ("orders", &ao)]);
                saves.push(Save {
                    table: "products",
                    before: bp,
                    after: ap,
                });
                saves.push(Save {
                    table: "orders",
                    before: bo,
                    after: ao,
                });
            }
            7..=9 => {
                let peer = format!("h{}", (i + 1 + rng.below(3)) % 4);
                // A round may fail (a partition): it must say so, not hang.
                let r = h.rdb(&["db:sync", "shop", "--peer", &peer]);
                assert!(
                    r.code == 0 || r.stderr.contains("unreachable"),
                    "{}",
                    r.stderr
                );
            }
            10 => {
                down[i] = !down[i];
                net.link(i, !down[i]);
            }
            _ => match daemon.as_mut() {
                Some(d) => {
                    d.kill9();
                    daemon = None;
                }
                None => {
                    daemon = Some(Daemon::spawn(
                        &net.hosts[3],
                        &["sync:run", "shop", "--interval", "2"],
                        None,
                    ))
                }
            },
        }
    }
    drop(daemon);
    for (i, d) in down.iter().enumerate() {
        if *d {
            net.link(i, true);
        }
    }
    // Full sync: every host with every other, twice over.
    for _ in 0..2 {
        for h in &net.hosts {
            h.ok(&["db:sync", "shop"]);
        }
    }
    for table in ["products", "orders"] {
        let want = net.hosts[0].current(table);
        for h in &net.hosts {
            assert_eq!(
                String::from_utf8_lossy(&h.current(table)),
                String::from_utf8_lossy(&want),
                "seed {seed}: {} differs in {table}",
                h.name
            );
        }
    }
    let finals: BTreeMap<&str, BTreeMap<(String, String), String>> = ["products", "orders"]
        .into_iter()
        .map(|t| (t, cells(&net.hosts[0].head(t))))
        .collect();
    let lost: Vec<String> = net
        .hosts
        .iter()
        .map(|h| h.ok(&["sync:conflicts", "shop", "--format", "csv"]).stdout)
        .collect();
    for (n, s) in saves.iter().enumerate() {
        let (before, after) = (cells(&s.before), cells(&s.after));
        for ((key, col), v) in &after {
            if before.get(&(key.clone(), col.clone())) == Some(v) || v.is_empty() {
                continue;
            }
            let here = finals[s.table]
                .iter()
                .any(|((k, _), fv)| k == key && fv == v);
            let seen = saves[n + 1..].iter().any(|later| {
                later.table == s.table
                    && cells(&later.before).get(&(key.clone(), col.clone())) == Some(v)
            });
            let kept = lost.iter().all(|l| l.contains(v.as_str()));
            assert!(
                here || seen || kept,
                "seed {seed}: {v} of {}/{key}/{col} vanished; lost lists: {lost:?}",
                s.table
            );
        }
    }
    for h in &net.hosts {
        h.ok(&["verify", "shop"]);
    }
}

fn seeds() -> Vec<u64> {
    std::env::var("REEDBASE_JEPSEN_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2])
}

#[test]
fn four_hosts_with_partitions_and_a_killed_daemon_converge_and_lose_nothing() {
    if !available() {
        return;
    }
    for seed in seeds() {
        run_seed(seed);
    }
}
