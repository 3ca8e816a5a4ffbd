#!/usr/bin/env bash
# Frame benchmarks (issue 5): frame commit overhead and @as-of reads in the
# library (cargo bench), then `cat @as-of/<time>/users.csv` through a mount
# of the same database (1000 frames over three 10k-row tables), with hyperfine.
#   bash scripts/bench_frames.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rdb="$PWD/target/release/rdb"
base=$(mktemp -d -t reedbase-frames.XXXXXX)
export REEDBASE_HOME="$base/home"
mnt="$base/mnt"; mkdir -p "$mnt"
trap '"$rdb" umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" 2>/dev/null || true; rm -rf "$base"' EXIT
cargo bench --quiet --bench storage -- --only-frames --keep "$base/db" | tail -n +1
"$rdb" db:register "$base/db" >/dev/null
"$rdb" mount bench "$mnt" --daemon >/dev/null
sleep 1  # the daemon decodes recent history in the background after mounting
# Ten frame times spread over the history, as unix seconds with microseconds.
mapfile -t picks < <(awk 'NR % 100 == 50 { printf "%d.%06d\n", $1 / 1000000, $1 % 1000000 }' "$base/db/frame-times.txt")
cmds=()
for t in "${picks[@]}"; do cmds+=("cat $mnt/@as-of/$t/users.csv"); done
# First read of each time (the daemon decodes the deltas), then warm reads.
hyperfine -N --runs 1 --export-json "$base/first.json" "${cmds[@]}" >/dev/null
hyperfine -N --warmup 2 --runs 20 --export-json "$base/warm.json" "${cmds[@]}" >/dev/null
stat() { python3 -c "
import json, statistics, sys
r = json.load(open(sys.argv[1]))['results']
m = [x['mean'] * 1000 for x in r]
print(f'{statistics.median(m):.1f} / {max(m):.1f} ms')" "$1"; }
echo "| cat @as-of/<time>/users.csv through the mount, 10 times: first read p50 / max | $(stat "$base/first.json") | <= 5 ms |"
echo "| same, warm (daemon has the deltas decoded): p50 / max of means | $(stat "$base/warm.json") | <= 5 ms |"
