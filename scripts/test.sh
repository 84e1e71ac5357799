#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the wasm target, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The harness's build script compiles the guest for this target; rustup does not add it by itself.
rustup target add wasm32-unknown-unknown

# Outside peers for the interop tests: Atlassian's atlassian-jwt, jco, jose and
# @octokit/webhooks-methods (versions pinned by the committed package-lock.json).
npm ci --prefix interop --no-audit --no-fund

# The Python host (python/): a virtual environment with the package (editable) and pytest; the
# peers suite (tests/peers/python.rs) copies the freshly built component in and runs pytest.
python3 -m venv python/.venv
python/.venv/bin/pip install --quiet --disable-pip-version-check -e 'python[test]'

# The shared backends' suites need a real PostgreSQL and Redis (README, "Two commands"). Say so
# at once when one is not reachable, rather than deep in a test; JIRA_SYNC_TEST_SERVICES=none
# runs everything else on a machine without them.
skip=()
if [ "${JIRA_SYNC_TEST_SERVICES:-}" = none ]; then
    echo "JIRA_SYNC_TEST_SERVICES=none: skipping the PostgreSQL, Redis and multi-server tests" >&2
    skip=(-- --skip postgres --skip redis --skip multinode)
else
    for url in "${JIRA_SYNC_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}" \
        "${JIRA_SYNC_TEST_REDIS:-redis://127.0.0.1:6379}"; do
        if [[ $url =~ ^[a-z]+://([^@/]*@)?([^:/?]+):([0-9]+) ]]; then
            host=${BASH_REMATCH[2]} port=${BASH_REMATCH[3]}
            if ! timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
                echo "error: $url is not reachable; start it, point JIRA_SYNC_TEST_POSTGRES /" \
                    "JIRA_SYNC_TEST_REDIS at one, or run with JIRA_SYNC_TEST_SERVICES=none" >&2
                exit 1
            fi
        fi
    done
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p jira-sync-plugin -p jira-sync-hostile --target wasm32-unknown-unknown -- -D warnings
# An embedding platform's build: the runtime alone, without server, simulator, CLI, SQLite or HTTP.
cargo clippy -p jira-sync-host --no-default-features --lib -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p jira-sync-host -p jira-sync-plugin --no-deps
cargo test --workspace "${skip[@]}"
