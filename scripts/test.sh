#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only the Rust toolchain:
# installs the wasm32-wasip2 target, builds every guest component once
# (example steps and test fixtures), then runs unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
# `cargo component build` is one of the two ways users build steps; a test
# checks that it works.
cargo component --version 2>/dev/null | grep -q "0.21.1" || cargo install cargo-component@0.21.1 --locked
# JavaScript and Python steps are built with Node.js/npm and Python/pip
# (`stephost build` then installs componentize-js and componentize-py from the
# npm and PyPI registries on first use); take them from Debian if missing.
missing=()
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || missing+=(python3 python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (for the JavaScript and Python step tests)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
cargo test --workspace "$@"
