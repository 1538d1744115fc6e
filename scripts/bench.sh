#!/usr/bin/env bash
# The benchmark suite on a fresh machine with only the Rust toolchain:
# installs the wasm32-wasip2 target, Node.js (the peers) and the wasmtime
# CLI 48.0.8 (the `wasmtime run` peer, into target/tools: ~6 min once),
# builds the bench steps and the suite's binary (`stephost-bench`) in release
# mode, runs it and writes its report into docs/BENCHMARKS.md.
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
write=(--write docs/BENCHMARKS.md)
[ $# -eq 0 ] || write=()
exec target/release/stephost-bench --data target/bench-data --wasmtime "$wasmtime" "${write[@]}" "$@"
