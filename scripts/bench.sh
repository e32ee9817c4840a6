#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds bench_pool in build-bench/ (RelWithDebInfo, no tests or examples) and its
# LIBNDIS_BENCH_NO_VERIFIER twin in build-bench/noverifier/ (the verifier-off target's
# reference), runs it with the arguments given, shows its table and saves its JSON lines to
# build-bench/bench.jsonl. Exits non-zero only when the benchmark fails its self-checks or
# cannot run: never on timings.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=build-bench
NOVERIFIER=1
JOBS=$(nproc 2>/dev/null || echo 2)
DPDK=0
case "${LIBNDIS_BENCH_DPDK:-0}" in 1 | true | TRUE | yes) DPDK=1 ;; esac
PROGRAM=bench_pool
PASS=()

usage() {
    cat <<'EOF'
usage: scripts/bench.sh [--dpdk] [--shared] [--build-dir DIR] [--no-verifier-off] [--runs N]
                       [bench_pool options...] [-- bench_pool options...]

Builds build-bench/bench/bench_pool, and build-bench/noverifier/bench/bench_pool with
-DLIBNDIS_BENCH_NO_VERIFIER=ON for the verifier-off target, and runs the first. The readable
table and the targets go to stdout as the program prints them; its JSON lines (one per
back-end, workload, k and threads, then one per target) are saved to build-bench/bench.jsonl
and echoed after the table. scripts/bench-plot.sh draws them.

  --dpdk            also build the DPDK back-end (installs dpdk-dev libdpdk-dev when run as
                    root); the same as LIBNDIS_BENCH_DPDK=1
  --shared          run bench_pool_shared (libndis.so through the PLT) instead of the static
                    build
  --build-dir DIR   build and write there instead of build-bench/ (relative: to the
                    repository root)
  --no-verifier-off do not build the LIBNDIS_BENCH_NO_VERIFIER twin: the verifier-off target
                    prints n/a
  --runs N          the whole suite N times in a row and a per-target summary of the runs:
                    the same as scripts/bench-runs.sh --runs N (its files: DIR/runs/)
  -h, --help        this text; `scripts/bench.sh -- --help` shows bench_pool's options

Everything else is passed to bench_pool, e.g.
  scripts/bench.sh                 full run (about 2 minutes on a 2-vCPU VM)
  scripts/bench.sh --quick         smoke run, seconds; not for figures
  scripts/bench.sh --workloads W1,W4 --backends libndis,floor

Run as root, it first installs what it needs and the host lacks (cmake gcc make pkg-config).
The exit status is bench_pool's: non-zero when a self-check fails or a measuring process dies.
Targets shown as NOT MET do not change it.
EOF
}

ARGS=("$@")
while (($#)); do
    case "$1" in
    --dpdk) DPDK=1 ;;
    --shared) PROGRAM=bench_pool_shared ;;
    --build-dir)
        [[ $# -ge 2 ]] || { usage >&2; exit 64; }
        BUILD=$2
        shift
        ;;
    --no-verifier-off) NOVERIFIER=0 ;;
    --runs)
        # The whole command line goes to bench-runs.sh, which calls this script once per run.
        exec "$ROOT/scripts/bench-runs.sh" "${ARGS[@]}"
        ;;
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

# build DIR [cmake options...]: configured every time (cheap, and it picks up a DPDK installed
# since the last run), then only the program is built.
build() {
    local dir=$1
    shift
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIBNDIS_SANITIZE= \
        -DLIBNDIS_BUILD_TESTS=OFF -DLIBNDIS_BUILD_EXAMPLES=OFF -DLIBNDIS_BUILD_BENCH=ON \
        -DLIBNDIS_BUILD_FUZZ=OFF "$@" >"$dir/configure.log" 2>&1 ||
        { cat "$dir/configure.log" >&2; fail "configuring $dir/ failed"; }
    cmake --build "$dir" -j"$JOBS" --target "$PROGRAM" >"$dir/build.log" 2>&1 ||
        { cat "$dir/build.log" >&2; fail "building $dir/bench/$PROGRAM failed"; }
    [[ -x "$dir/bench/$PROGRAM" ]] || fail "$dir/bench/$PROGRAM was not built"
}

ensure_tools
build "$BUILD" -DLIBNDIS_BENCH_NO_VERIFIER=OFF
# The reference of the verifier-off target: the same program with the verifier's branch
# compiled out, in a tree of its own (the option changes every object). bench_pool alternates
# processes of the two builds on W1 and W3 k=4.
if ((NOVERIFIER)); then
    build "$BUILD/noverifier" -DLIBNDIS_BENCH_NO_VERIFIER=ON
    PASS=(--verifier-off "$BUILD/noverifier/bench/$PROGRAM" ${PASS[@]+"${PASS[@]}"})
fi
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
