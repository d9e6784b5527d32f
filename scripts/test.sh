#!/usr/bin/env bash
# The full test run (what CI runs): formatting, lints, unit and property tests with 10,000 cases
# per property, CRD drift and CEL tests, then the end-to-end tests on real control planes (built
# from Go modules by e2e/build on first use; cached in ~/.cache/bascule-e2e).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --features e2e -- -D warnings

step "test tools: moto (the AWS peer of tests/providers_aws.rs and the providers e2e trials)"
# Installed from PyPI when missing (pinned); it brings boto3 and cryptography, which the test
# helpers under e2e/aws and e2e/google use. The tests fail, never skip, without it.
if ! command -v moto_server >/dev/null; then
  python3 -m pip install --quiet 'moto[server]==5.2.1'
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi

step "unit, property and CRD tests (PROPTEST_CASES=10000)"
PROPTEST_CASES="${PROPTEST_CASES:-10000}" cargo test --all-targets
cargo test --doc

step "end-to-end tests on real control planes"
cargo test --features e2e --test e2e
