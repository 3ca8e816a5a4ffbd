#!/usr/bin/env bash
# Sync over real SSH between two hosts on this machine (network namespaces,
# a real sshd; needs root): figures for docs/BENCHMARKS.md, "Sync".
#
#   scripts/bench_sync.sh [VERSIONS]     (default 10000)
#
# - bytes on the wire for one 1-row commit (rsync's count, both ways);
# - a round with nothing new against a peer holding VERSIONS versions of a
#   10k-row table: `rdb db:sync` wall time (hyperfine), cold and with the
#   shared ssh connection warm;
# - propagation: a save at A (an UPDATE through `rdb db:query`) until B's
#   mounted current.csv shows it, with `rdb sync:run` at A and B's mount
#   syncing: p50 and p90 of 20 saves;
# - a routed point query (`db:query --route`) from A answered by B, cold
#   and warm, against B's own query time.
# Everything lives in a temporary directory and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${1:-10000}
[ "$(id -u)" -eq 0 ] || { echo "bench_sync: needs root (network namespaces)" >&2; exit 1; }
cargo build --release -q
cargo bench --bench sync --no-run -q 2>/dev/null || true
RDB=$PWD/target/release/rdb
BENCH=$(ls -t target/release/deps/sync-* | grep -v '\.d$' | head -1)
T=$(mktemp -d)
A=rbbA$$; B=rbbB$$
cleanup() {
  [ -f "$T/run.pid" ] && kill "$(cat "$T/run.pid")" 2>/dev/null || true
  sleep 0.5
  [ -f "$T/sshd.pid" ] && kill "$(cat "$T/sshd.pid")" 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

ip netns add $A; ip netns add $B
ip link add vbA$$ type veth peer name vbB$$
ip link set vbA$$ netns $A; ip link set vbB$$ netns $B
ip -n $A addr add 10.78.0.1/24 dev vbA$$; ip -n $B addr add 10.78.0.2/24 dev vbB$$
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set vbA$$ up; ip -n $B link set vbB$$ up
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey"; ssh-keygen -q -t ed25519 -N '' -f "$T/userkey"
cp "$T/userkey.pub" "$T/authorized_keys"
cat > "$T/sshd_config" <<EOF
Port 22
ListenAddress 10.78.0.2
HostKey $T/hostkey
AuthorizedKeysFile $T/authorized_keys
PidFile $T/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
EOF
mkdir -p /run/sshd
ip netns exec $B /usr/sbin/sshd -f "$T/sshd_config" -E "$T/sshd.log"
SSH="ssh -i $T/userkey -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$T/known_hosts -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR"
inA() { ip netns exec $A env REEDBASE_HOME="$T/a" "$@"; }
inB() { ip netns exec $B env REEDBASE_HOME="$T/b" "$@"; }

echo "building a history of $VERSIONS versions of a 10k-row table ..." >&2
mkdir -p "$T/a/databases" "$T/b/databases"
"$BENCH" --setup "$T/a/databases/shop" --rows 10000 --versions "$VERSIONS" >/dev/null
inA "$RDB" db:register "$T/a/databases/shop" >/dev/null 2>&1
inA "$RDB" location:add shop b "root@10.78.0.2:$T/b/databases/shop" --ssh "$SSH" --rdb "$RDB" --as a \
  --self-url "$T/a/databases/shop" 2> "$T/first.txt" || { cat "$T/first.txt" >&2; exit 1; }
inB "$RDB" db:register "$T/b/databases/shop" >/dev/null 2>&1

echo "| what | figure |"
echo "|---|---|"
echo "| first sync of $VERSIONS versions over SSH | $(grep -o '[0-9]* ms$' "$T/first.txt" | tail -1) |"

# One 1-row commit: the record, and rsync's bytes both ways.
inA "$RDB" db:query shop "UPDATE users SET age = 99 WHERE id = '42'" >/dev/null
out=$(inA "$RDB" db:sync shop 2>&1)
rec=$(find "$T/a/databases/shop/sync/records" -name "*.rec" -newer "$T/first.txt" | sort | tail -1)
echo "| record of a 1-row commit | $(stat -c %s "$rec") bytes |"
echo "| bytes on the wire for it (rsync, both ways, one round) | $(echo "$out" | sed -n 's/.*sent 1 (\([0-9]*\) bytes).*/\1/p') (+ $(echo "$out" | sed -n 's/.*received 0 records (\([0-9]*\) bytes).*/\1/p') pulled) |"

# A round with nothing new: cold (a new ssh connection each run) and warm.
cold=$(REEDBASE_SSH_MUX=0 hyperfine -N -w 1 -r 10 --export-json "$T/cold.json" \
  "ip netns exec $A env REEDBASE_HOME=$T/a REEDBASE_SSH_MUX=0 $RDB db:sync shop" 2>/dev/null >/dev/null; \
  python3 -c "import json;r=json.load(open('$T/cold.json'))['results'][0];print('%.0f ms' % (r['median']*1000))")
warm=$(hyperfine -N -w 2 -r 20 --export-json "$T/warm.json" \
  "ip netns exec $A env REEDBASE_HOME=$T/a $RDB db:sync shop" 2>/dev/null >/dev/null; \
  python3 -c "import json;r=json.load(open('$T/warm.json'))['results'][0];print('%.0f ms' % (r['median']*1000))")
echo "| round with nothing new, $VERSIONS versions, over SSH: p50 cold / warm connection | $cold / $warm |"

# Routed point queries (`db:query --route`): B's own query time, then the
# same query from A answered by B: named (--route b), cold (a new ssh
# connection) and warm (the shared one), and --route auto with A overloaded
# (the test-only load override), its probes fresh from `db:health`.
p50() { # p50 <name> <runs> <command>: hyperfine's median in ms
  hyperfine -N -w 2 -r "$2" --export-json "$T/$1.json" "$3" >/dev/null 2>&1
  python3 -c "import json;r=json.load(open('$T/$1.json'))['results'][0];print('%.0f' % (r['median']*1000))"
}
Q="\"SELECT name FROM users WHERE id = '42'\""
own=$(p50 own 20 "ip netns exec $B env REEDBASE_HOME=$T/b $RDB db:query shop $Q")
cold=$(p50 rcold 10 "ip netns exec $A env REEDBASE_HOME=$T/a REEDBASE_SSH_MUX=0 $RDB db:query shop $Q --route b")
warm=$(p50 rwarm 20 "ip netns exec $A env REEDBASE_HOME=$T/a $RDB db:query shop $Q --route b")
inA "$RDB" db:health shop >/dev/null
auto=$(p50 rauto 20 "ip netns exec $A env REEDBASE_HOME=$T/a REEDBASE_FAKE_CPU=9 $RDB db:query shop $Q --route auto")
echo "| point query at B itself (rdb db:query, whole process) | $own ms |"
echo "| the same from A, --route b: p50 cold / warm connection (overhead over B's own) | $cold / $warm ms (+$((cold - own)) / +$((warm - own)) ms) |"
echo "| the same, --route auto with A overloaded, warm (picks B from fresh probes) | $auto ms |"

# Propagation with continuous sync: sync:run at A, B's mount syncing. Each
# `ip netns exec` makes its own mount namespace, so B's mount and its reader
# run under one.
mkdir -p "$T/mnt"
# Not through inA: `ip netns exec` execs rdb, so $! is rdb's pid and cleanup kills it.
ip netns exec $A env REEDBASE_HOME="$T/a" "$RDB" sync:run shop --interval 30 2> "$T/run.log" & echo $! > "$T/run.pid"
cat > "$T/poll.py" <<'EOF'
import os, subprocess, sys, time
rdb, t, ns = sys.argv[1:]
cur = os.path.join(t, "mnt/users/current.csv")
for _ in range(100):
    if os.path.exists(cur):
        break
    time.sleep(0.1)
else:
    sys.exit("bench_sync: the mount did not come up: " + open(os.path.join(t, "mount.log")).read())
times = []
for i in range(20):
    age = 200 + i
    start = time.monotonic()
    subprocess.run(["ip", "netns", "exec", ns, "env", f"REEDBASE_HOME={t}/a", rdb, "db:query", "shop",
                    f"UPDATE users SET age = {age} WHERE id = '7'"], check=True, capture_output=True)
    while True:
        with open(cur) as f:
            if f"|{age}|" in next(l for l in f if l.startswith("7|")):
                break
        if time.monotonic() - start > 30:
            sys.exit("bench_sync: a save did not arrive within 30 s")
        time.sleep(0.01)
    times.append(time.monotonic() - start)
    time.sleep(0.3)
times.sort()
print("| propagation, save at A to B's mount (continuous sync): p50 / p90 of 20 | %.0f ms / %.0f ms |"
      % (times[10] * 1000, times[17] * 1000))
EOF
ip netns exec $B bash -c "REEDBASE_HOME='$T/b' '$RDB' mount shop '$T/mnt' --sync-interval 30 2> '$T/mount.log' & m=\$!; python3 '$T/poll.py' '$RDB' '$T' $A; r=\$?; kill \$m; wait \$m; exit \$r"
