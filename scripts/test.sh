#!/usr/bin/env bash
# The whole test suite: set-up, tests, formatting, lints. CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
cargo test --workspace
