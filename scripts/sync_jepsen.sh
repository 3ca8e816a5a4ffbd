#!/usr/bin/env bash
# The randomized convergence test of sync (tests/it/sync/jepsen.rs) over many
# seeds: four hosts in network namespaces, partitions, a killed daemon.
# Needs root.   scripts/sync_jepsen.sh [FIRST_SEED] [COUNT]   (default 1 20)
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}
count=${2:-20}
seeds=$(seq -s, "$first" $((first + count - 1)))
REEDBASE_JEPSEN_SEEDS=$seeds cargo test --release --test it sync::jepsen -- --nocapture
