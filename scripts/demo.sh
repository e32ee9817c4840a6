#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds libndis and its examples (Release) into build/ and runs the demo.
# Run as root, it first installs whichever of cmake, gcc, make, pkg-config is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

install_missing() {
    local missing=() tool
    for tool in cmake gcc make pkg-config; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "demo.sh: missing ${missing[*]}; install them or run this script as root on Debian/Ubuntu" >&2
        exit 1
    fi
    echo "demo.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# Quiet unless something fails: then the whole log is shown.
run_logged() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "demo.sh: failed: $*" >&2
        exit 1
    fi
    rm -f "$log"
}

install_missing
# Tests and benchmarks stay off so the demo needs nothing beyond a C compiler and CMake.
run_logged cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLIBNDIS_BUILD_EXAMPLES=ON \
    -DLIBNDIS_BUILD_TESTS=OFF -DLIBNDIS_BUILD_BENCH=OFF -DLIBNDIS_BUILD_FUZZ=OFF -DLIBNDIS_SANITIZE=
run_logged cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target demo
exec ./build/examples/demo
