#!/usr/bin/env bash
# The main job: builds rdb, creates a demo database from the sample tables in
# scripts/demo/, mounts it, prints a few things to try, and unmounts cleanly
# on Ctrl-C. Everything lives under a temporary directory it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
rdb="$PWD/target/release/rdb"
base=$(mktemp -d -t reedbase-demo.XXXXXX)
export REEDBASE_HOME="$base/home"
mnt="$base/mnt"
mkdir -p "$mnt"

"$rdb" db:init demo
for t in users orders products; do
  "$rdb" table:create demo "$t" --from "scripts/demo/$t.csv"
done

cat <<TRY

The demo database is mounted at $mnt (Ctrl-C unmounts). In another shell, try:

  export REEDBASE_HOME=$REEDBASE_HOME PATH="$(dirname "$rdb"):\$PATH"
  cd $mnt
  head -3 users/current.csv
  sed -i 's/|pending|/|paid|/' orders/current.csv           # one save, one version
  vim users/current.csv                                     # edit, :w -> a new version
  grep -c '|paid|' orders/current.csv
  ls orders/@versions/                                      # every version, as a file
  cat orders/@versions/log.csv
  cp orders/@versions/\$(ls orders/@versions | head -1) orders/current.csv   # roll back
  printf 'id|x\n1\n' > users/current.csv                    # refused: see @status
  cat @status
  rdb version:diff demo orders 1 2

TRY
exec "$rdb" mount demo "$mnt"
