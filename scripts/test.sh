#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the wasm target, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The harness's build script compiles the guest for this target; rustup does not add it by itself.
rustup target add wasm32-unknown-unknown

# Outside peers for the interop tests: Atlassian's atlassian-jwt and jco (versions pinned by the
# committed package-lock.json).
npm ci --prefix interop --no-audit --no-fund

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p jira-sync-plugin -p jira-sync-hostile --target wasm32-unknown-unknown -- -D warnings
# An embedding platform's build: the runtime alone, without server, simulator, CLI, SQLite or HTTP.
cargo clippy -p jira-sync-host --no-default-features --lib -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p jira-sync-host -p jira-sync-plugin --no-deps
cargo test --workspace
