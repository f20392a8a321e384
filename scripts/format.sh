#!/usr/bin/env bash
# Formats the Swift code in place with swift-format (part of the Swift toolchain) and the
# repository's .swift-format. With no arguments: Sources, Tests, Benchmarks and Package.swift;
# or give the files and folders to format. scripts/format-lint.sh checks the same paths.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || { echo "swift is not on PATH: install the Swift 6 toolchain (swift.org) first" >&2; exit 1; }
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(Sources Tests Benchmarks Package.swift)
swift format format --in-place --recursive --parallel --configuration .swift-format "${paths[@]}"
