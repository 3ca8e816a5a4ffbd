#!/usr/bin/env bash
# A scripted tour of the rdb CLI (no mount) on a demo database.
# Everything lives under a temporary REEDBASE_HOME (printed at the end) unless
# REEDBASE_HOME is already set.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
rdb="$PWD/target/release/rdb"
export REEDBASE_HOME="${REEDBASE_HOME:-$(mktemp -d -t reedbase-demo.XXXXXX)}"
work=$(mktemp -d -t reedbase-demo-data.XXXXXX)

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

python3 scripts/gen_table.py users 1000 --out "$work/users.csv"
python3 scripts/gen_table.py orders 3000 --users 1000 --out "$work/orders.csv"

step "$rdb" db:init demo
step "$rdb" table:create demo users --from "$work/users.csv"
step "$rdb" table:create demo orders --from "$work/orders.csv"
step "$rdb" table:list demo

# An edit: one user changes city, one order ships.
sed -e 's/^7|\([^|]*\)|\([^|]*\)|\([^|]*\)|\([^|]*\)|[^|]*|/7|\1|\2|\3|\4|Lisboa|/' "$work/users.csv" > "$work/users2.csv"
step "$rdb" table:import demo users "$work/users2.csv"
step "$rdb" table:import demo users "$work/users2.csv"   # same content: no new version
step "$rdb" version:list demo users
step "$rdb" version:diff demo users 1 2
step "$rdb" version:rollback demo users 1
step "$rdb" version:list demo users
step "$rdb" table:drop demo orders
step "$rdb" table:list demo --all
step "$rdb" table:restore demo orders
step "$rdb" verify demo
step "$rdb" db:info demo

rm -rf "$work"
printf '\nDemo database under REEDBASE_HOME=%s\nTry: REEDBASE_HOME=%s %s version:show demo users 2 | head\n' \
  "$REEDBASE_HOME" "$REEDBASE_HOME" "$rdb"
