#!/usr/bin/env bash
# Fails when swift-format (part of the Swift toolchain) finds anything in the Swift code that
# the repository's .swift-format does not allow. With no arguments: Sources, Tests, Benchmarks
# and Package.swift, as scripts/format.sh formats them; or give the files and folders to check.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || { echo "swift is not on PATH: install the Swift 6 toolchain (swift.org) first" >&2; exit 1; }
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(Sources Tests Benchmarks Package.swift)
if ! swift format lint --strict --recursive --parallel --configuration .swift-format "${paths[@]}"; then
    echo "swift format found the problems above: scripts/format.sh fixes the layout ones; fix the others by hand" >&2
    exit 1
fi
