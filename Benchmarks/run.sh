#!/usr/bin/env bash
# Builds in release and runs the benchmarks, printing their figures. Not part of the tests.
# yamllint (from PyPI) is the baseline the lint benchmark compares against.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v yamllint >/dev/null 2>&1 || python3 -m pip install --quiet yamllint || echo "could not install yamllint; running without the comparison"
swift build -c release --product sluice
swift build -c release --product LintBenchmark
"$(swift build -c release --show-bin-path)/LintBenchmark" "$@"
