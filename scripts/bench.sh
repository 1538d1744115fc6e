#!/usr/bin/env bash
# The benchmark suite on a fresh machine with only the Rust toolchain:
# installs the wasm32-wasip2 target, Node.js (the peers) and the wasmtime
# CLI 48.0.8 (the `wasmtime run` peer, into target/tools: ~6 min once),
# builds the bench steps and the suite's binary (`stephost-bench`) in release
# mode, starts a throwaway durable PostgreSQL (the server rows on 1-3 nodes),
# runs the suite and writes its report into docs/BENCHMARKS.md.
# Extra arguments go to the suite (e.g. --quick, --only step); the report of
# such a partial run is printed, not written into the document.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
. scripts/lib/languages.sh
install_language_toolchains
wasmtime=target/tools/bin/wasmtime
if [ ! -x "$wasmtime" ]; then
    echo "installing wasmtime-cli 48.0.8 into target/tools (once, several minutes)"
    cargo install wasmtime-cli@48.0.8 --locked --root target/tools || echo "wasmtime-cli did not build: its row is skipped"
fi
cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
cargo build --release -p stephost --bin stephost-bench
# A durable PostgreSQL (fsync on) for the server rows on 1, 2 and 3 nodes.
. scripts/lib/postgres.sh
start_postgres durable
write=(--write docs/BENCHMARKS.md)
[ $# -eq 0 ] || write=()
target/release/stephost-bench --data target/bench-data --wasmtime "$wasmtime" \
    --database "$STEPHOST_TEST_DATABASE_URL" "${write[@]}" "$@"
