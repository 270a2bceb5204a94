#!/usr/bin/env bash
# The whole test suite, as CI runs it: install test tools, then format check,
# lint and every test (the hashing ones twice: with SHA-NI, where the CPU has
# it, and without).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The hashing of a CPU without SHA-NI (the multi-lane kernels), run on this
# one whatever it has: the same tests with SHA-NI switched off.
AUDITPACK_SHA_NI=off cargo test --locked -p auditpack-bag -p auditpack-sha256x
