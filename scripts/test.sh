#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only the Rust toolchain:
# installs the wasm32-wasip2 target, builds every guest component once
# (example steps and test fixtures), starts a throwaway PostgreSQL server
# (the PostgreSQL backend's tests create their databases in it), then runs
# unit and end-to-end tests, then the server's tests again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# A CI machine builds everything once from scratch: incremental caches would
# only take disk (a run once filled CI's disk), so they are off there.
[ -z "${CI:-}" ] || export CARGO_INCREMENTAL=0
# Free space, in the log: a disk that fills mid-run fails tests far from
# the cause ("database or disk is full").
disk_free() { echo "disk free $1: $(df -h --output=avail . "${TMPDIR:-/tmp}" | tail -n +2 | xargs)"; }
disk_free "at the start (project, temp)"
rustup target add wasm32-wasip2
# `cargo component build` is one of the two ways users build steps; a test
# checks that it works.
cargo component --version 2>/dev/null | grep -q "0.21.1" || cargo install cargo-component@0.21.1 --locked
. scripts/lib/languages.sh
install_language_toolchains
. scripts/lib/browser.sh
install_browser
cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
. scripts/lib/postgres.sh
start_postgres fast
cargo test --workspace --no-run "$@"
disk_free "with everything built (project, temp)"
cargo test --workspace "$@"
# The server suite once more, on PostgreSQL: the same test binary (nothing
# is rebuilt), every in-process server and `stephost serve` a node on a
# fresh database of the throwaway server.
STEPHOST_TEST_BACKEND=postgres cargo test -p stephost --test e2e "$@" -- \
    server:: triggers:: deploy:: owner:: oauth:: inspector_api:: browser::
