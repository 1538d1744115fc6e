#!/usr/bin/env bash
# Runs the demo workflow on a fresh machine with only the Rust toolchain:
# installs the wasm32-wasip2 target, builds the example steps and the host,
# and runs examples/workflows/demo.toml with a sample event.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
cargo run -p stephost -- workflow run examples/workflows/demo.toml --event examples/events/signup.json "$@"
