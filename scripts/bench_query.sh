#!/usr/bin/env bash
# ReedQL against its peers (issue 6): a 100k-row, 10-column users table and a
# 10k-row orders table from scripts/gen_table.py; five queries through
# `cat @query`, `rdb db:query`, the sqlite3 CLI and the duckdb CLI reading the
# same CSV, and duckdb (Python) with the tables already loaded.
# Needs hyperfine, sqlite3 (scripts/setup.sh) and duckdb + duckdb-cli (pip).
#   bash scripts/bench_query.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rdb="$PWD/target/release/rdb"
base=$(mktemp -d -t reedbase-query.XXXXXX)
export REEDBASE_HOME="$base/home"
mnt="$base/mnt"; mkdir -p "$mnt"
trap '"$rdb" umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" 2>/dev/null || true; rm -rf "$base"' EXIT
python3 scripts/gen_table.py users 100000 --out "$base/users.csv"
python3 scripts/gen_table.py orders 10000 --users 100000 --out "$base/orders.csv"
"$rdb" db:init bench >/dev/null 2>&1
"$rdb" table:create bench users --from "$base/users.csv" >/dev/null 2>&1
"$rdb" table:create bench orders --from "$base/orders.csv" >/dev/null 2>&1
"$rdb" mount bench "$mnt" --daemon >/dev/null

names=(point filter group join topk)
queries=(
  "SELECT * FROM users WHERE id = 54321"
  "SELECT id, name, country FROM users WHERE age > 25"
  "SELECT country, COUNT(*), AVG(age) FROM users GROUP BY country"
  "SELECT u.country, COUNT(*), AVG(o.price) FROM orders o JOIN users u ON u.id = o.user_id GROUP BY u.country"
  "SELECT id, name, score FROM users ORDER BY score DESC LIMIT 10"
)
# The same queries made unique per run (a different no-op constant), so the
# result cache cannot answer them: what a query costs after a commit.
uncached=(
  "SELECT * FROM users WHERE id = 54321 AND {n} > 0"
  "SELECT id, name, country FROM users WHERE age > 25 AND {n} > 0"
  "SELECT country, COUNT(*), AVG(age) FROM users WHERE {n} > 0 GROUP BY country"
  "SELECT u.country, COUNT(*), AVG(o.price) FROM orders o JOIN users u ON u.id = o.user_id WHERE {n} > 0 GROUP BY u.country"
  "SELECT id, name, score FROM users WHERE {n} > 0 ORDER BY score DESC LIMIT 10"
)
median_of_all() { python3 -c "import json,statistics,sys; r=json.load(open(sys.argv[1]))['results']; print(round(statistics.median([x['median'] for x in r])*1000, 1))" "$1"; }
ms() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['median']*1000, 1))" "$1"; }
load_sqlite=".mode csv
.separator |
.import $base/users.csv users
.import $base/orders.csv orders"
duck_views="CREATE VIEW users AS SELECT * FROM read_csv('$base/users.csv', delim='|', quote='\"', header=true); CREATE VIEW orders AS SELECT * FROM read_csv('$base/orders.csv', delim='|', quote='\"', header=true);"

echo "cat of a small local file: $(hyperfine -N --warmup 5 --runs 50 --export-json "$base/catself.json" "cat /etc/hostname" >/dev/null 2>&1 && ms "$base/catself.json") ms (process start)"
echo
echo "| query | cat @query, not cached | open+read @query from Python, not cached | cat @query, cached | rdb db:query | sqlite3 CLI on CSV | duckdb CLI on CSV | duckdb, tables loaded |"
echo "|---|---|---|---|---|---|---|---|"
for i in "${!queries[@]}"; do
  q="${queries[$i]}"; n="${names[$i]}"
  enc="${q//\//%2F}"
  printf '%s\n' "$load_sqlite" "$q;" > "$base/$n.sqlite"
  printf '%s\n' "$duck_views" "$q;" > "$base/$n.duck"
  hyperfine -N --warmup 3 --runs 15 --export-json "$base/cat.json" "cat '$mnt/@query/$enc'" >/dev/null 2>&1 || \
    hyperfine --warmup 3 --runs 15 --export-json "$base/cat.json" "cat \"$mnt/@query/$enc\" >/dev/null" >/dev/null
  u="${uncached[$i]//\//%2F}"
  cat "$mnt/@query/${q//\//%2F}" >/dev/null   # parse and index the tables once
  hyperfine -N --runs 1 -P n 1 12 --export-json "$base/uncached.json" "cat '$mnt/@query/$u'" >/dev/null 2>&1
  hyperfine --warmup 1 --runs 5 --export-json "$base/rdb.json" "$rdb db:query bench \"$q\" >/dev/null" >/dev/null
  hyperfine --warmup 1 --runs 5 --export-json "$base/sqlite.json" "sqlite3 :memory: < $base/$n.sqlite >/dev/null" >/dev/null
  hyperfine --warmup 1 --runs 5 --export-json "$base/duck.json" "duckdb < $base/$n.duck >/dev/null" >/dev/null
  loaded=$(python3 - "$base" "$q" <<'PY'
import statistics, sys, time, duckdb
base, q = sys.argv[1], sys.argv[2]
con = duckdb.connect()
for t in ("users", "orders"):
    con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_csv('{base}/{t}.csv', delim='|', quote='\"', header=true)")
times = []
for _ in range(15):
    a = time.perf_counter(); con.execute(q).fetchall(); times.append(time.perf_counter() - a)
print(round(statistics.median(times) * 1000, 1))
PY
)
  # The mount without a process start per query (cat alone costs about a
  # millisecond here): open, read and close from one Python process.
  inproc=$(python3 - "$mnt" "${uncached[$i]//\//%2F}" <<'PY'
import statistics, sys, time
mnt, q = sys.argv[1], sys.argv[2]
times = []
for n in range(100, 160):
    a = time.perf_counter()
    with open(f"{mnt}/@query/{q.replace('{n}', str(n))}", "rb") as f:
        f.read()
    times.append(time.perf_counter() - a)
print(round(statistics.median(times) * 1000, 2))
PY
)
  echo "| $n: \`$q\` | $(median_of_all "$base/uncached.json") ms | $inproc ms | $(ms "$base/cat.json") ms | $(ms "$base/rdb.json") ms | $(ms "$base/sqlite.json") ms | $(ms "$base/duck.json") ms | $loaded ms |"
done
# In-process (no FUSE, no process start): the engine alone, each run a distinct
# query so the result cache misses, tables already parsed and indexed.
echo
echo "| query, in-process (\`cargo bench --bench storage -- --only-query\`) | median of 30 |"
echo "|---|---|"
for i in "${!uncached[@]}"; do
  cargo bench --quiet --bench storage -- --only-query "$REEDBASE_HOME/databases/bench" "${uncached[$i]}" 2>/dev/null | tail -1 | awk -F'|' -v n="${names[$i]}" '{ print "| " n " |" $3 "|" }'
done
