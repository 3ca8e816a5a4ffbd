#!/usr/bin/env bash
# ReedBase at several table sizes against ext4, sqlite3 and duckdb (if the
# duckdb Python module is importable), one markdown table: rows are
# measurements, columns are sizes. The work is done by scripts/bench_scale.py.
# Needs /dev/fuse, hyperfine, sqlite3 and python3 (scripts/setup.sh).
#   bash scripts/bench_scale.sh                          # 10k and 100k rows
#   SIZES="10000 100000 1000000" bash scripts/bench_scale.sh   # the full run
# Environment:
#   SIZES     table sizes in rows (default "10000 100000")
#   CYCLES    save + GROUP BY cycles for the daemon's RSS series (default 30)
#   VERSIONS  1-row versions made at the largest size <= 100000 (default 1000)
#   OUT_DIR   if set: rss_<size>.csv series and bench_scale.json go there
#   NO_BUILD  if set: use target/release/rdb as it is (no cargo build)
#   MIN_AVAIL_MB  the RSS cycles stop early below this MemAvailable (default 2048)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --quiet
fi
rdb="$PWD/target/release/rdb"
[ -x "$rdb" ] || { echo "no $rdb (build it, or unset NO_BUILD)" >&2; exit 1; }
for tool in hyperfine sqlite3 python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup.sh)" >&2; exit 1; }
done
base=$(mktemp -d -t reedbase-scale.XXXXXX)
export REEDBASE_HOME="$base/home"
cleanup() {
  for m in "$base"/mnt_*; do
    [ -d "$m" ] || continue
    "$rdb" umount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
python3 scripts/bench_scale.py "$rdb" "$base"
echo
echo "(whole run: $(( $(date +%s) - start )) s)"
