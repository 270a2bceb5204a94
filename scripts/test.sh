#!/usr/bin/env bash
# The whole test suite, as CI runs it: install test tools, then format check,
# lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
