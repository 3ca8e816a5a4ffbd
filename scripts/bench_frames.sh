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
# Ten frame times spread over the history: the first read of each (the daemon
# rebuilds the version from its nearest in-memory checkpoint) and a second read,
# timed around open+read in one process; then `cat` with hyperfine.
python3 - "$mnt" "$base/db/frame-times.txt" <<'PY'
import statistics, sys, time
mnt, times = sys.argv[1], [int(l) for l in open(sys.argv[2])]
first, again = [], []
for t in times[50::100]:
    p = f"{mnt}/@as-of/{t // 1000000}.{t % 1000000:06d}/users.csv"
    for out in (first, again):
        a = time.perf_counter()
        with open(p, "rb") as f:
            f.read()
        out.append((time.perf_counter() - a) * 1000)
print(f"| @as-of read through the mount (open + read of 870 KB), first read of a time: p50 / max over {len(first)} | {statistics.median(first):.1f} / {max(first):.1f} ms | <= 5 ms |")
print(f"| same, second read: p50 / max | {statistics.median(again):.1f} / {max(again):.1f} ms | <= 5 ms |")
PY
t=$(awk 'NR == 550 { printf "%d.%06d", $1 / 1000000, $1 % 1000000 }' "$base/db/frame-times.txt")
hyperfine -N --warmup 2 --runs 30 --export-json "$base/cat.json" "cat $mnt/@as-of/$t/users.csv" >/dev/null
echo "| \`cat @as-of/<time>/users.csv\` (process start included), mean | $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['mean']*1000, 1))" "$base/cat.json") ms | <= 5 ms |"
