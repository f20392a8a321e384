#!/usr/bin/env bash
# Runs the whole test suite, the PostgreSQL cases included: starts a throwaway PostgreSQL
# server (scripts/postgres-test-server.sh), points the tests at it, requires them (a missing
# server is a failure, not a skip), and stops the server when the tests end, fail or are
# interrupted. Arguments go to `swift test` (e.g. `--filter SluiceStorageTests`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
server="$here/postgres-test-server.sh"

# A state file of this invocation's own, so two test runs on one machine don't share a server.
SLUICE_TEST_POSTGRES_STATE="$(mktemp "${TMPDIR:-/tmp}/sluice-postgres-test.XXXXXX")"
rm -f "$SLUICE_TEST_POSTGRES_STATE"
export SLUICE_TEST_POSTGRES_STATE

stop_server() {
    "$server" stop >/dev/null 2>&1 || true
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$server" start >/dev/null
eval "$("$server" env)"
export SLUICE_TEST_POSTGRES_URL
export SLUICE_TEST_REQUIRE_POSTGRES=1

cd "$here/.."
swift test --experimental-maximum-parallelization-width 16 "$@"
