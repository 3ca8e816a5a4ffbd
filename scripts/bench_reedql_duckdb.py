#!/usr/bin/env python3
"""Issue 18's ReedQL constructs against duckdb and sqlite, in process.

The four queries of `benches/query.rs` (CONSTRUCTS; keep the texts in step)
over the same `users` table (`scripts/gen_table.py users N --seed 7`): duckdb
(Python module, table loaded from the CSV) and sqlite3 (Python module, typed
table), warm, median of 9, each run a distinct query text ({k}). The ReedQL
column comes from `cargo bench --bench query -- --quick --rows N` (in process,
through Engine::with_cache); pass that output with --reedql FILE to merge it.

  python3 scripts/bench_reedql_duckdb.py 100000 [--reedql bench-output.txt]
"""

import argparse
import csv
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

QUERIES = [
    ("window top-3 per city",
     "SELECT * FROM (SELECT id, city, score, ROW_NUMBER() OVER (PARTITION BY city "
     "ORDER BY score DESC) AS rn FROM users WHERE {k} >= 0) WHERE rn <= 3"),
    ("CTE + join + GROUP BY",
     "WITH c AS (SELECT country, AVG(score) AS avg_score FROM users WHERE {k} >= 0 "
     "GROUP BY country) SELECT u.city, COUNT(*) AS above FROM users u JOIN c "
     "ON u.country = c.country WHERE u.score > c.avg_score GROUP BY u.city"),
    ("correlated EXISTS",
     "SELECT id, name FROM users u WHERE u.age >= 65 AND {k} >= 0 AND EXISTS "
     "(SELECT 1 FROM users v WHERE v.city = u.city AND v.age < 20 AND v.score > 99.5)"),
    ("UNION of two GROUP BYs",
     "SELECT country AS k, COUNT(*) AS n, AVG(score) AS s FROM users "
     "WHERE active = 'true' AND {k} >= 0 GROUP BY country UNION "
     "SELECT city, COUNT(*), AVG(score) FROM users WHERE age < 30 GROUP BY city"),
]

COLUMNS = [("id", "INTEGER"), ("name", "TEXT"), ("email", "TEXT"), ("age", "INTEGER"),
           ("country", "TEXT"), ("city", "TEXT"), ("created", "TEXT"), ("score", "REAL"),
           ("active", "TEXT"), ("bio", "TEXT")]


def timed(run, shape):
    run(shape.replace("{k}", "1000"))
    times, n = [], 0
    for k in range(9):
        a = time.perf_counter()
        n = len(run(shape.replace("{k}", str(k))))
        times.append(time.perf_counter() - a)
    return statistics.median(times) * 1000, n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rows", type=int)
    p.add_argument("--no-sqlite", action="store_true", help="duckdb (and ReedQL) only")
    p.add_argument("--reedql", help="output of cargo bench --bench query for these rows")
    args = p.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "users.csv")
        with open(path, "wb") as f:
            subprocess.run([sys.executable, os.path.join(root, "scripts/gen_table.py"),
                            "users", str(args.rows), "--seed", "7"], stdout=f, check=True)
        duck = duckdb.connect()
        types = ", ".join(f"'{c}': '{'DOUBLE' if t == 'REAL' else 'VARCHAR' if t == 'TEXT' else 'BIGINT'}'"
                          for c, t in COLUMNS)
        duck.execute(f"CREATE TABLE users AS SELECT * FROM read_csv('{path}', delim='|', "
                     f"quote='\"', header=true, columns={{{types}}})")
        lite = sqlite3.connect(":memory:")
        lite.execute("CREATE TABLE users (" + ", ".join(f"{c} {t}" for c, t in COLUMNS) + ")")
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f, delimiter="|")
            next(r)
            if args.no_sqlite:
                r = []
            lite.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?,?,?,?)",
                             ([v if v != "" else None for v in row] for row in r))
        lite.commit()
    reed = {}
    if args.reedql:
        for line in open(args.reedql, encoding="utf-8"):
            m = re.match(r"\| \S+ rows: (.+?) \((\d+) rows\), parsed, p50 \| ([\d.]+) ms \|", line)
            if m:
                reed[m.group(1)] = (float(m.group(3)), int(m.group(2)))
    label = f"{args.rows // 1_000_000}M" if args.rows >= 1_000_000 else f"{args.rows // 1000}k"
    print(f"| {label} rows, warm, p50 of 9 | ReedQL (in process) | duckdb {duckdb.__version__} "
          f"| sqlite {sqlite3.sqlite_version} |")
    print("|---|---|---|---|")
    for name, shape in QUERIES:
        d, dn = timed(lambda q: duck.execute(q).fetchall(), shape)
        # sqlite runs the correlated EXISTS as a scan per outer row (no
        # index): it did not finish in 11 minutes at 100k rows.
        if args.no_sqlite or "EXISTS" in shape:
            s, sn = float("nan"), 0
        else:
            s, sn = timed(lambda q: lite.execute(q).fetchall(), shape)
        r = reed.get(name)
        rcell = f"{r[0]:.1f} ms ({r[1]} rows)" if r else "-"
        print(f"| {name} | {rcell} | {d:.1f} ms ({dn} rows) | {'-' if s != s else f'{s:.1f} ms ({sn} rows)'} |")


if __name__ == "__main__":
    main()
