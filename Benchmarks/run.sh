#!/usr/bin/env bash
# Builds in release and runs the benchmarks, printing their figures. Not part of the tests.
# yamllint (from PyPI) is the baseline the lint benchmark compares against.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v yamllint >/dev/null 2>&1 || python3 -m pip install --quiet yamllint || echo "could not install yamllint; running without the comparison"
# Usage: bash Benchmarks/run.sh [lint|run|postgres|workers|dag|schedule|serve] [benchmark arguments]   (default: all)
# `postgres` is the run benchmark on PostgreSQL and `workers` the worker-scaling one, each on a
# throwaway server it starts and stops.
which="${1:-all}"
[ $# -gt 0 ] && shift
swift build -c release --product sluice
bin="$(swift build -c release --show-bin-path)"
if [ "$which" = "lint" ] || [ "$which" = "all" ]; then
    swift build -c release --product LintBenchmark
    "$bin/LintBenchmark" "$@"
fi
if [ "$which" = "run" ] || [ "$which" = "all" ]; then
    swift build -c release --product RunBenchmark
    "$bin/RunBenchmark" "$@"
fi
if [ "$which" = "postgres" ] || [ "$which" = "workers" ]; then
    product=RunBenchmark
    [ "$which" = "workers" ] && product=WorkerBenchmark
    swift build -c release --product "$product"
    SLUICE_TEST_POSTGRES_STATE="$(mktemp "${TMPDIR:-/tmp}/sluice-postgres-bench.XXXXXX")"
    rm -f "$SLUICE_TEST_POSTGRES_STATE"
    export SLUICE_TEST_POSTGRES_STATE
    trap 'bash scripts/postgres-test-server.sh stop >/dev/null 2>&1 || true' EXIT
    bash scripts/postgres-test-server.sh start >/dev/null
    eval "$(bash scripts/postgres-test-server.sh env)"
    "$bin/$product" --postgres "$SLUICE_TEST_POSTGRES_URL" "$@"
fi
if [ "$which" = "dag" ] || [ "$which" = "all" ]; then
    swift build -c release --product DAGBenchmark
    "$bin/DAGBenchmark" "$@"
fi
if [ "$which" = "schedule" ] || [ "$which" = "all" ]; then
    swift build -c release --product ScheduleBenchmark
    "$bin/ScheduleBenchmark" "$@"
fi
if [ "$which" = "serve" ] || [ "$which" = "all" ]; then
    if [ "$which" = "serve" ]; then bash Benchmarks/serve.sh "$@"; else bash Benchmarks/serve.sh; fi
fi
