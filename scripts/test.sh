#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds libndis and runs its test suite; stops at the first failure with a non-zero exit.
# Default: plain build + ctest + examples + install check. With --all, or when CI=true, also
# ASan+UBSan, TSan on the concurrency tests, a fuzz smoke run and a benchmark smoke run.
# Run as root, it first installs whatever tools the chosen stages need and the host lacks.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${LIBNDIS_FUZZ_SECONDS:-30}
ALL=0
case "${CI:-}" in true | TRUE | True | 1 | yes) ALL=1 ;; esac

usage() {
    cat <<'EOF'
usage: scripts/test.sh [--all]

  (default)  plain build in build/, every test with ctest, the examples, scripts/check-install.sh
  --all      also (and by default when CI=true):
               build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, every test
               build-tsan/  ThreadSanitizer, tests labelled "concurrency"
               build-fuzz/  every fuzz_* target for LIBNDIS_FUZZ_SECONDS (default 30) seconds
               bench_pool --quick  (must run; its timings never fail the suite)
               bench/callgrind_gate.sh  (instruction counts within bench/budgets.txt)
EOF
}

for arg in "$@"; do
    case "$arg" in
    --all) ALL=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

fail() {
    echo "test.sh: $*" >&2
    exit 1
}

STAGE_START=$SECONDS
stage() {
    printf '\n==== %s ====\n' "$*"
    STAGE_START=$SECONDS
}
stage_done() {
    printf -- '---- ok (%ds)\n' "$((SECONDS - STAGE_START))"
}

# ---- tools ----

have() { command -v "$1" >/dev/null 2>&1; }

have_cmocka() {
    { have pkg-config && pkg-config --exists cmocka; } ||
        [[ -e /usr/include/cmocka.h || -e /usr/local/include/cmocka.h ]]
}

# clang alone is not enough: libFuzzer and the sanitizer runtimes live in libclang-rt.
clang_runtimes_work() {
    local dir ok=0
    have clang || return 1
    dir=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, size_t n) { return d && n > 9; }' \
        >"$dir/f.c"
    printf 'int main(void) { return 0; }\n' >"$dir/t.c"
    clang -fsanitize=fuzzer,address,undefined "$dir/f.c" -o "$dir/f" >/dev/null 2>&1 &&
        clang -fsanitize=thread "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 || ok=1
    rm -rf "$dir"
    return $ok
}

ensure_tools() {
    local missing=() tool
    for tool in cmake gcc make pkg-config; do
        have "$tool" || missing+=("$tool")
    done
    have_cmocka || missing+=(libcmocka-dev)
    if ((ALL)); then
        have clang || missing+=(clang)
        clang_runtimes_work || missing+=(libclang-rt-14-dev)
    fi
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
        fail "missing ${missing[*]}; install them or run this script as root on Debian/Ubuntu"
    fi
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    if ((ALL)); then
        clang_runtimes_work || fail "clang cannot link -fsanitize=fuzzer/thread programs"
    fi
}

# ---- helpers ----

configure_and_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" || fail "configuring $dir failed"
    cmake --build "$dir" -j"$JOBS" || fail "building $dir failed"
}

run_ctest() {
    local dir=$1 timeout=$2
    shift 2
    (cd "$dir" && ctest --output-on-failure --no-tests=error -j"$JOBS" --timeout "$timeout" "$@") ||
        fail "tests failed in $dir/"
}

# Runs every example of examples/*.c built in $1; output is shown only when one fails.
run_examples() {
    local dir=$1 src name log
    for src in examples/*.c; do
        name=$(basename "$src" .c)
        [[ -x "$dir/examples/$name" ]] || fail "$dir/examples/$name was not built"
        log="$dir/examples/$name.log"
        if ! "$dir/examples/$name" >"$log" 2>&1; then
            cat "$log" >&2
            fail "example $name failed ($dir)"
        fi
        echo "example $name: ok"
    done
}

# ---- stages ----

stage_plain() {
    stage "plain build and every test (build/)"
    configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIBNDIS_SANITIZE= \
        -DLIBNDIS_BUILD_TESTS=ON -DLIBNDIS_BUILD_EXAMPLES=ON -DLIBNDIS_BUILD_BENCH=ON \
        -DLIBNDIS_BUILD_FUZZ=OFF
    run_ctest build 300
    run_examples build
    stage_done

    # Hosts without membarrier(2) run every pool through its locked depot; prove that path too.
    stage "every test again without per-thread caches (LIBNDIS_NO_THREAD_CACHE=1)"
    LIBNDIS_NO_THREAD_CACHE=1 run_ctest build 300
    stage_done

    stage "install check (scripts/check-install.sh)"
    scripts/check-install.sh || fail "the install check failed"
    stage_done
}

stage_bench() {
    stage "benchmark smoke run (bench_pool --quick; timings never gate)"
    [[ -x build/bench/bench_pool ]] || fail "build/bench/bench_pool was not built"
    if ! timeout 900 build/bench/bench_pool --quick >build/bench_pool-quick.log 2>&1; then
        tail -n 40 build/bench_pool-quick.log >&2
        fail "bench_pool --quick did not run to completion"
    fi
    tail -n 5 build/bench_pool-quick.log
    stage_done
}

stage_asan() {
    stage "AddressSanitizer + UndefinedBehaviorSanitizer, every test (build-asan/)"
    configure_and_build build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DLIBNDIS_SANITIZE=address,undefined -DLIBNDIS_BUILD_TESTS=ON \
        -DLIBNDIS_BUILD_EXAMPLES=ON -DLIBNDIS_BUILD_BENCH=OFF -DLIBNDIS_BUILD_FUZZ=OFF
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_ctest build-asan 900
    run_examples build-asan
    unset ASAN_OPTIONS UBSAN_OPTIONS
    stage_done
}

stage_tsan() {
    stage "ThreadSanitizer, tests labelled concurrency (build-tsan/)"
    configure_and_build build-tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DLIBNDIS_SANITIZE=thread -DLIBNDIS_BUILD_TESTS=ON -DLIBNDIS_BUILD_EXAMPLES=OFF \
        -DLIBNDIS_BUILD_BENCH=OFF -DLIBNDIS_BUILD_FUZZ=OFF
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_ctest build-tsan 900 -L concurrency
    stage_done
}

# Instruction counts are exact for one binary and input: unlike timings they can gate CI.
stage_gate() {
    stage "instruction-count gate (bench/callgrind_gate.sh: W1, W3 k=4, W4 k=4 within budget)"
    bench/callgrind_gate.sh || fail "libndis exceeds its instruction budget (bench/budgets.txt)"
    stage_done
}

# The library itself is built with coverage and sanitizers too, so libFuzzer is guided through
# its code and ASan sees its bugs, not only the harness's.
stage_fuzz() {
    local src name exe work seeds log runs found=0
    stage "fuzz smoke run, ${FUZZ_SECONDS}s per target (build-fuzz/)"
    configure_and_build build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
        -DLIBNDIS_SANITIZE= -DLIBNDIS_BUILD_FUZZ=ON -DLIBNDIS_BUILD_TESTS=OFF \
        -DLIBNDIS_BUILD_EXAMPLES=OFF -DLIBNDIS_BUILD_BENCH=OFF
    mkdir -p build-fuzz/artifacts
    for src in tests/fuzz/fuzz_*.c; do
        [[ -e "$src" ]] || continue
        found=1
        name=$(basename "$src" .c)
        exe="build-fuzz/tests/fuzz/$name"
        [[ -x "$exe" ]] || fail "$exe was not built"
        # New inputs go to a scratch corpus (the first directory); the seeds stay untouched.
        work="build-fuzz/corpus/$name"
        seeds="tests/fuzz/corpus_${name#fuzz_}"
        mkdir -p "$work"
        local dirs=("$work")
        [[ -d "$seeds" ]] && dirs+=("$seeds")
        log="build-fuzz/$name.log"
        if ! "$exe" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name-" \
            "${dirs[@]}" >"$log" 2>&1; then
            tail -n 60 "$log" >&2
            fail "$name found a failure (reproducer in build-fuzz/artifacts/)"
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | head -n 1)
        echo "$name: ok, ${runs:-?} runs, seeds: $([[ -d "$seeds" ]] && echo "$seeds" || echo none)"
    done
    ((found)) || fail "no tests/fuzz/fuzz_*.c targets to run"
    stage_done
}

ensure_tools
TOTAL_START=$SECONDS
stage_plain
if ((ALL)); then
    stage_asan
    stage_tsan
    stage_fuzz
    stage_bench
    stage_gate
fi
if ((ALL)); then
    printf '\ntest.sh: all stages passed in %ds\n' "$((SECONDS - TOTAL_START))"
else
    printf '\ntest.sh: default stages passed in %ds (scripts/test.sh --all runs the rest)\n' \
        "$((SECONDS - TOTAL_START))"
fi
