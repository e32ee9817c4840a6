#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds bench_pool in build-bench/ (RelWithDebInfo, no tests or examples), runs it with the
# arguments given, shows its table and saves its JSON lines to build-bench/bench.jsonl.
# Exits non-zero only when the benchmark fails its self-checks or cannot run: never on timings.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=build-bench
JOBS=$(nproc 2>/dev/null || echo 2)
DPDK=0
case "${LIBNDIS_BENCH_DPDK:-0}" in 1 | true | TRUE | yes) DPDK=1 ;; esac
PROGRAM=bench_pool
PASS=()

usage() {
    cat <<'EOF'
usage: scripts/bench.sh [--dpdk] [--shared] [bench_pool options...] [-- bench_pool options...]

Builds build-bench/bench/bench_pool and runs it. The readable table goes to stdout as the
program prints it; its JSON lines (one per back-end, workload, k and threads) are saved to
build-bench/bench.jsonl and echoed after the table. scripts/bench-plot.sh draws them.

  --dpdk      also build the DPDK back-end (installs dpdk-dev libdpdk-dev when run as root);
              the same as LIBNDIS_BENCH_DPDK=1
  --shared    run bench_pool_shared (libndis.so through the PLT) instead of the static build
  -h, --help  this text; `scripts/bench.sh -- --help` shows bench_pool's options

Everything else is passed to bench_pool, e.g.
  scripts/bench.sh                 full run (several minutes with every workload)
  scripts/bench.sh --quick         smoke run, seconds; not for figures
  scripts/bench.sh --workloads W1,W4 --backends libndis,floor

Run as root, it first installs what it needs and the host lacks (cmake gcc make pkg-config).
The exit status is bench_pool's: non-zero when a self-check fails or a measuring process dies.
Targets shown as NOT MET do not change it.
EOF
}

while (($#)); do
    case "$1" in
    --dpdk) DPDK=1 ;;
    --shared) PROGRAM=bench_pool_shared ;;
    -h | --help) usage; exit 0 ;;
    --) shift; PASS+=("$@"); break ;;
    *) PASS+=("$1") ;;
    esac
    shift
done

fail() {
    echo "bench.sh: $*" >&2
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

ensure_tools() {
    local missing=() tool
    for tool in cmake gcc make pkg-config; do
        have "$tool" || missing+=("$tool")
    done
    if ((DPDK)) && ! { have pkg-config && pkg-config --exists libdpdk; }; then
        missing+=(dpdk-dev libdpdk-dev)
    fi
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
        fail "missing ${missing[*]}; install them or run this script as root on Debian/Ubuntu"
    fi
    echo "bench.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

build() {
    # Configured every time: cheap, and it picks up a DPDK installed since the last run.
    mkdir -p "$BUILD"
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIBNDIS_SANITIZE= \
        -DLIBNDIS_BUILD_TESTS=OFF -DLIBNDIS_BUILD_EXAMPLES=OFF -DLIBNDIS_BUILD_BENCH=ON \
        -DLIBNDIS_BUILD_FUZZ=OFF >"$BUILD/configure.log" 2>&1 ||
        { cat "$BUILD/configure.log" >&2; fail "configuring $BUILD/ failed"; }
    cmake --build "$BUILD" -j"$JOBS" --target "$PROGRAM" >"$BUILD/build.log" 2>&1 ||
        { cat "$BUILD/build.log" >&2; fail "building $BUILD/bench/$PROGRAM failed"; }
    [[ -x "$BUILD/bench/$PROGRAM" ]] || fail "$BUILD/bench/$PROGRAM was not built"
}

ensure_tools
build
if ((DPDK)) && grep -q 'dpdk back-end not built' "$BUILD/configure.log"; then
    echo "bench.sh: DPDK was asked for but $(grep -o 'dpdk back-end not built.*' \
        "$BUILD/configure.log")" >&2
fi

RAW="$BUILD/bench.out"
JSONL="$BUILD/bench.jsonl"
echo "bench.sh: running $BUILD/bench/$PROGRAM ${PASS[*]:-}" >&2
# The table streams as the program prints it; the JSON lines are split off afterwards.
set +e
"$BUILD/bench/$PROGRAM" ${PASS[@]+"${PASS[@]}"} | tee "$RAW" | grep --line-buffered -v '^{'
status=${PIPESTATUS[0]}
set -e

if grep -q '^{' "$RAW"; then
    grep '^{' "$RAW" >"$JSONL.tmp"
    mv -f "$JSONL.tmp" "$JSONL"
    printf '\nJSON lines (saved to %s):\n' "$JSONL"
    cat "$JSONL"
    if ((status == 0)); then
        echo "bench.sh: plot them with scripts/bench-plot.sh" >&2
    fi
fi
if ((status == 64)); then
    echo "bench.sh: bench_pool rejected its arguments (exit status 64)" >&2
elif ((status != 0)); then
    echo "bench.sh: bench_pool failed (exit status $status): a self-check failed or a" \
        "measuring process died; see the messages above" >&2
fi
exit "$status"
