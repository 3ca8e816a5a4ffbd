#!/usr/bin/env bash
# Mount benchmarks against the targets in docs/BENCHMARKS.md (which also has
# the latest figures). Needs /dev/fuse, hyperfine and python3 (scripts/setup.sh).
#   bash scripts/bench_mount.sh            # all (~3 min; the 100 MB table takes longest)
#   QUICK=1 bash scripts/bench_mount.sh    # skip the 100 MB read
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rdb="$PWD/target/release/rdb"
base=$(mktemp -d -t reedbase-bench.XXXXXX)
export REEDBASE_HOME="$base/home"
mnt="$base/mnt"; mnt2="$base/mnt2"; ext4="$base/ext4"
mkdir -p "$mnt" "$mnt2" "$ext4"
cleanup() {
  "$rdb" umount "$mnt2" >/dev/null 2>&1 || umount -l "$mnt2" 2>/dev/null || true
  "$rdb" umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" 2>/dev/null || true
  rm -rf "$base"
}
trap cleanup EXIT

"$rdb" db:init bench >/dev/null 2>&1
python3 scripts/gen_table.py users 10000 --out "$base/users.csv"
"$rdb" table:create bench users --from "$base/users.csv" >/dev/null 2>&1
for i in 1 2 3 4 5 6 7 8; do
  python3 scripts/gen_table.py products 2000 --seed "$i" --out "$base/p$i.csv"
  "$rdb" table:create bench "t$i" --from "$base/p$i.csv" >/dev/null 2>&1
done
cp "$base/users.csv" "$ext4/current.csv"
"$rdb" mount bench "$mnt" --daemon >/dev/null

mean() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['mean'])" "$1"; }
echo "| measurement | result | target |"
echo "|---|---|---|"

# sed -i of one row, 10k rows: through the mount and on ext4, one run of both.
hyperfine -N --shell=none --warmup 3 --runs 40 --export-json "$base/sed_mnt.json" \
  "sed -i s/^5000|[^|]*|/5000|Edited|/ $mnt/users/current.csv" >/dev/null 2>&1 || \
hyperfine --warmup 3 --runs 40 --export-json "$base/sed_mnt.json" \
  "sed -i 's/^5000|[^|]*|/5000|Edited|/' $mnt/users/current.csv" >/dev/null
hyperfine --warmup 3 --runs 40 --export-json "$base/sed_ext4.json" \
  "sed -i 's/^5000|[^|]*|/5000|Edited|/' $ext4/current.csv" >/dev/null
m=$(mean "$base/sed_mnt.json"); e=$(mean "$base/sed_ext4.json")
python3 -c "import sys; m,e=float(sys.argv[1]),float(sys.argv[2]); print(f'| sed -i of one row, 10k rows: mount / ext4 | {m*1e3:.2f} ms / {e*1e3:.2f} ms = {m/e:.1f}x | <= 3x |')" "$m" "$e"

# Commits per second of small edits: one writer, then 8 writers on 8 tables.
n=200
start=$(date +%s.%N)
for i in $(seq 1 $n); do
  /usr/bin/printf '%s\n' "$((900000+i))|Bench|b@x.org|30|DE|Kiel|2024-01-01|1.00|true|" >> "$mnt/users/current.csv"
done
end=$(date +%s.%N)
python3 -c "import sys; print(f'| commits/s, 1 writer, 1-row appends (>>), 10k-row table | {int(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])):.0f} | |')" "$n" "$start" "$end"
start=$(date +%s.%N)
for t in 1 2 3 4 5 6 7 8; do
  ( for i in $(seq 1 $n); do
      /usr/bin/printf '%s\n' "$((900000+i))|SKU-$i|Bench|Tools|1.00|1|2024-01-01|x" >> "$mnt/t$t/current.csv"
    done ) &
done
wait
end=$(date +%s.%N)
python3 -c "import sys; print(f'| commits/s, 8 writers on 8 tables, 2k-row tables | {8*int(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])):.0f} | |')" "$n" "$start" "$end"

# An editor's save in place (vim, nano): truncate, write, fsync, close. The
# fsync makes the bytes durable under unsaved/ and the close commits them.
cat > "$base/edit.py" <<'PY'
import os, sys
path = sys.argv[1]
with open(path, "rb") as f:
    data = f.read()
data = data.replace(b"\n5000|", b"\n5000|E", 1) if b"\n5000|E" not in data else data.replace(b"\n5000|E", b"\n5000|", 1)
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
PY
hyperfine -N --warmup 3 --runs 30 --export-json "$base/edit_mnt.json" "python3 $base/edit.py $mnt/users/current.csv" >/dev/null
hyperfine -N --warmup 3 --runs 30 --export-json "$base/edit_ext4.json" "python3 $base/edit.py $ext4/current.csv" >/dev/null
m=$(mean "$base/edit_mnt.json"); e=$(mean "$base/edit_ext4.json")
python3 -c "import sys; m,e=float(sys.argv[1]),float(sys.argv[2]); print(f'| editor save in place (write, fsync, close), 10k rows: mount / ext4 | {m*1e3:.2f} ms / {e*1e3:.2f} ms = {m/e:.1f}x | |')" "$m" "$e"

# Appenders at once on one table: 5 processes x 100 lines with >>.
start=$(date +%s.%N)
for w in 1 2 3 4 5; do
  ( for i in $(seq 1 100); do
      /usr/bin/printf '%s\n' "$((800000+w*1000+i))|Append|a@x.org|30|DE|Kiel|2024-01-01|1.00|true|" >> "$mnt/users/current.csv"
    done ) &
done
wait
end=$(date +%s.%N)
landed=$(grep -c '|Append|' "$mnt/users/current.csv")
python3 -c "import sys; print(f'| 5 concurrent appenders x 100 lines (>>), 10k-row table | {500/(float(sys.argv[2])-float(sys.argv[1])):.0f} commits/s, {sys.argv[3]} of 500 lines landed | every line once |')" "$start" "$end" "$landed"

# Listing a table's 10k versions through @versions.
"$rdb" table:create bench hist --columns id,v >/dev/null 2>&1
python3 - "$mnt/hist/current.csv" <<'PY'
import sys
path = sys.argv[1]
for i in range(1, 10000):
    with open(path, "a") as f:
        f.write(f"{i}|v{i}\n")
PY
hyperfine -N --warmup 2 --runs 20 --export-json "$base/ls.json" "ls $mnt/hist/@versions" --output=null >/dev/null
python3 -c "import sys; print(f'| ls of @versions with 10k versions | {float(sys.argv[1])*1e3:.1f} ms | < 100 ms |')" "$(mean "$base/ls.json")"
hyperfine -N --warmup 2 --runs 10 --export-json "$base/lsl.json" "ls -l $mnt/hist/@versions" --output=null >/dev/null
python3 -c "import sys; print(f'| ls -l of @versions with 10k versions (a stat each) | {float(sys.argv[1])*1e3:.1f} ms | < 100 ms |')" "$(mean "$base/lsl.json")"

# Latency of a read and a save while 8 runaway queries run (more than the
# 4 request threads): queries run on their own threads.
python3 -c "
print('id|v')
for i in range(1, 12001): print(f'{i}|{i % 7}')" > "$base/runaway.csv"
"$rdb" table:create bench runaway --from "$base/runaway.csv" >/dev/null 2>&1
pids=()
for i in 1 2 3 4 5 6 7 8; do
  cat "$mnt/@query/SELECT COUNT(*) FROM runaway a JOIN runaway b ON a.id < b.id" > /dev/null 2>&1 &
  pids+=($!)
done
sleep 1
hyperfine -N --warmup 2 --runs 20 --export-json "$base/busy_cat.json" "cat $mnt/users/current.csv" --output=null >/dev/null
hyperfine -N --warmup 2 --runs 20 --export-json "$base/busy_sed.json" \
  "sed -i s/^5000|[^|]*|/5000|Busy|/ $mnt/users/current.csv" >/dev/null
c=$(mean "$base/busy_cat.json"); w=$(mean "$base/busy_sed.json")
python3 -c "import sys; print(f'| with 8 runaway queries running: cat current.csv / sed -i of one row, 10k rows | {float(sys.argv[1])*1e3:.1f} ms / {float(sys.argv[2])*1e3:.1f} ms | < 50 ms |')" "$c" "$w"
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true

# Sequential read of a ~100 MB current.csv, warm: mount vs ext4 page cache.
if [ -z "${QUICK:-}" ]; then
  python3 scripts/gen_table.py users 1150000 --out "$base/big.csv"
  "$rdb" table:create bench big --from "$base/big.csv" >/dev/null 2>&1
  cp "$base/big.csv" "$ext4/big.csv"
  size=$(stat -c %s "$base/big.csv")
  cat "$mnt/big/current.csv" > /dev/null; cat "$ext4/big.csv" > /dev/null
  "$rdb" mount bench "$mnt2" --daemon --passthrough >/dev/null
  cat "$mnt2/big/current.csv" > /dev/null
  hyperfine -N --warmup 2 --runs 10 --export-json "$base/read_mnt.json" "cat $mnt/big/current.csv" --output=null >/dev/null
  hyperfine -N --warmup 2 --runs 10 --export-json "$base/read_pt.json" "cat $mnt2/big/current.csv" --output=null >/dev/null
  hyperfine -N --warmup 2 --runs 10 --export-json "$base/read_ext4.json" "cat $ext4/big.csv" --output=null >/dev/null
  m=$(mean "$base/read_mnt.json"); p=$(mean "$base/read_pt.json"); e=$(mean "$base/read_ext4.json")
  python3 -c "import sys; m,e,s=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(f'| sequential read of current.csv ({s/1e6:.0f} MB), warm, keep_cache (default): mount / ext4 | {s/m/1e9:.2f} / {s/e/1e9:.2f} GB/s = {e/m:.2f}x | >= 0.9x |')" "$m" "$e" "$size"
  python3 -c "import sys; m,e,s=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(f'| same, mounted with --passthrough | {s/m/1e9:.2f} / {s/e/1e9:.2f} GB/s = {e/m:.2f}x | >= 0.9x |')" "$p" "$e" "$size"
fi
