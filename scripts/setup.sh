#!/usr/bin/env bash
# Installs every system package that building and testing ReedBase needs.
# Idempotent; meant for a fresh Debian machine with Rust, run as root
# (or with sudo available).
set -euo pipefail

packages=(
  bsdiff      # the standard bspatch: tests check that our deltas apply with it
  bzip2       # the standard bzip2 decoder: tests check our hand-made streams
  xz-utils    # xz -dc: tests unpack XZ-compressed deltas with the standard tool
  python3     # scripts/gen_table.py, the table generator for tests and benchmarks
  sqlite3     # query peer (later issues compare results with it)
  hyperfine   # whole-command timings in scripts/bench*
  fuse3       # fusermount3 (mounting as a non-root user), /etc/fuse.conf
  rsync       # mount tests (rsync saves) and sync: the transport between locations
  openssh-server  # sync tests: a real sshd per simulated host, in network namespaces
  openssh-client  # sync: ssh to remote locations
  iproute2    # sync tests: ip netns, veth pairs, links cut and healed
  vim         # mount tests: vim -es saves (backupcopy yes/no/auto, swap files)
  nano        # mount tests and the demo
  psmisc      # fuser -m: who holds a mount
  prometheus  # metrics tests: promtool checks @metrics, a real Prometheus scrapes the daemon
  procps      # pgrep, kill in scripts
  pkg-config  # lets xz2 link the system liblzma
  liblzma-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
echo "setup: system packages present: ${packages[*]}"
