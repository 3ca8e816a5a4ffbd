#!/usr/bin/env bash
# Auto-merge rate and save latency with 1, 5, 10 and 50 concurrent writers on a
# 10k-row table through the mount (workload in scripts/bench_merge.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rdb="$PWD/target/release/rdb"
base=$(mktemp -d -t reedbase-merge.XXXXXX)
export REEDBASE_HOME="$base/home"
mnt="$base/mnt"; mkdir -p "$mnt"
trap '"$rdb" umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" 2>/dev/null || true; rm -rf "$base"' EXIT
"$rdb" db:init bench >/dev/null 2>&1
python3 scripts/gen_table.py users 10000 --out "$base/users.csv"
"$rdb" table:create bench users --from "$base/users.csv" >/dev/null 2>&1
"$rdb" mount bench "$mnt" --daemon >/dev/null
python3 scripts/bench_merge.py "$mnt/users/current.csv" "$@"
