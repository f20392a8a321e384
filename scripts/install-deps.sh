#!/usr/bin/env bash
# Installs what building and testing Sluice needs on a fresh Debian 12 machine that has the
# Swift toolchain: the SQLite headers GRDB links against, the zlib headers (gzip inputs are
# inflated by the system zlib), time zone data, openssl (the TLS tests' certificates), and the
# Python modules the editor-schema test uses (python-jsonschema, PyYAML). Safe to run again.
set -euo pipefail

need_apt=()
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need_apt+=(libsqlite3-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
[ -d /usr/share/zoneinfo/Europe ] || need_apt+=(tzdata)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# The TLS tests make their certificates with openssl, independently of the server's TLS library.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need_apt[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

if ! python3 -c "import jsonschema, yaml" >/dev/null 2>&1; then
    echo "installing Python modules: jsonschema pyyaml"
    python3 -m pip install --quiet jsonschema pyyaml 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages jsonschema pyyaml
fi

command -v swift >/dev/null 2>&1 || { echo "swift is not on PATH: install the Swift 6 toolchain (swift.org) first" >&2; exit 1; }
