#!/usr/bin/env bash
# The full test run (what CI runs): formatting, lints, unit and property tests with 10,000 cases
# per property, CRD drift and CEL tests, then the end-to-end tests on real control planes (built
# from Go modules by e2e/build on first use; cached in ~/.cache/bascule-e2e).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --features e2e -- -D warnings

step "unit, property and CRD tests (PROPTEST_CASES=10000)"
PROPTEST_CASES="${PROPTEST_CASES:-10000}" cargo test --all-targets

step "end-to-end tests on real control planes"
cargo test --features e2e --test e2e
