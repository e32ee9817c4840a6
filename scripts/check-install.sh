#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the installed package is usable the way a client uses it: install into a scratch prefix,
# then build a driver-style program that includes only <ndis.h> through pkg-config (plain and
# under ASan) and through CMake's find_package(libndis), and run all three.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/libndis-install-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"
JOBS=$(nproc 2>/dev/null || echo 2)
CC=${CC:-cc}

fail() {
    echo "check-install.sh: $*" >&2
    exit 1
}

quiet() {
    local log="$WORK/step.log"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "failed: $*"
    fi
}

for tool in cmake pkg-config "$CC"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is required"
done

# ---- install ----
quiet cmake -S "$ROOT" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DLIBNDIS_BUILD_TESTS=OFF -DLIBNDIS_BUILD_EXAMPLES=OFF -DLIBNDIS_BUILD_BENCH=OFF \
    -DLIBNDIS_BUILD_FUZZ=OFF -DLIBNDIS_SANITIZE=
quiet cmake --build "$WORK/build" -j"$JOBS"
quiet cmake --install "$WORK/build"

pcfile=$(find "$PREFIX" -name libndis.pc -print -quit)
[[ -n "$pcfile" ]] || fail "libndis.pc was not installed"
for header in ndis.h wdm.h ntdef.h libndis.h; do
    [[ -f "$PREFIX/include/libndis/$header" ]] || fail "include/libndis/$header was not installed"
done
PKG_CONFIG_PATH=$(dirname "$pcfile")
export PKG_CONFIG_PATH
LIBDIR=$(pkg-config --variable=libdir libndis)
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ls "$LIBDIR"/libndis.so.* >/dev/null 2>&1 || fail "no versioned libndis.so in $LIBDIR"
echo "installed libndis $(pkg-config --modversion libndis) into $PREFIX"

# ---- the client program: driver code, <ndis.h> only ----
cat >"$WORK/prog.c" <<'EOF'
/* SPDX-License-Identifier: MIT */
/* Install check: maps the IPv4 header out of a two-buffer frame the way a driver would. */
#include <ndis.h>
#include <stdio.h>

#define CHECK(c) do { if (!(c)) { printf("install check FAILED: %s (line %d)\n", #c, __LINE__); return 1; } } while (0)

int main(int argc, char **argv)
{
    UCHAR Frame[64];
    NDIS_STATUS Status;
    NDIS_HANDLE Pool;
    PNDIS_BUFFER Head, Tail, Copy, Next;
    PUCHAR Va;
    UINT Length;
    NDIS_SPIN_LOCK Lock;

    for (UINT i = 0; i < sizeof(Frame); i++)
        Frame[i] = (UCHAR)i;
    NdisAllocateBufferPool(&Status, &Pool, 4);
    CHECK(Status == NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&Status, &Head, Pool, Frame, 20);
    CHECK(Status == NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&Status, &Tail, Pool, Frame + 20, 44);
    CHECK(Status == NDIS_STATUS_SUCCESS);
    NDIS_BUFFER_LINKAGE(Head) = Tail;

    /* [14, 34) crosses the boundary at 20: two partial descriptors over the frame itself. */
    NdisCopyBuffer(&Status, &Copy, Pool, Head, 14, 20);
    CHECK(Status == NDIS_STATUS_SUCCESS && Copy != NULL);
    NdisQueryBufferSafe(Copy, &Va, &Length, NormalPagePriority);
    CHECK(Va == Frame + 14 && Length == 6);
    CHECK(Copy->MdlFlags == (MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL));
    NdisGetNextBuffer(Copy, &Next);
    CHECK(Next != NULL);
    NdisQueryBuffer(Next, &Va, &Length);
    CHECK(Va == Frame + 20 && Length == 14 && Va[0] == 20);
    CHECK(Next->Next == NULL);
    NdisFreeBuffer(Next);
    NdisFreeBuffer(Copy);

    NdisCopyBuffer(&Status, &Copy, Pool, Head, 60, 5);
    CHECK(Status == NDIS_STATUS_FAILURE && Copy == NULL);

    NdisAllocateSpinLock(&Lock);
    NdisAcquireSpinLock(&Lock);
    CHECK(KeGetCurrentIrql() == DISPATCH_LEVEL);
    NdisReleaseSpinLock(&Lock);
    CHECK(KeGetCurrentIrql() == PASSIVE_LEVEL);
    NdisFreeSpinLock(&Lock);

    NdisFreeBuffer(Tail);
    NdisFreeBuffer(Head);
    NdisFreeBufferPool(Pool);
    printf("install check program (%s): ok\n", argc > 1 ? argv[1] : "?");
    return 0;
}
EOF

# shellcheck disable=SC2046 # pkg-config output is meant to split into words
quiet "$CC" -std=c11 -Wall -Wextra -Werror "$WORK/prog.c" -o "$WORK/prog" $(pkg-config --cflags --libs libndis)
if command -v readelf >/dev/null 2>&1; then
    readelf -d "$WORK/prog" | grep -q 'NEEDED.*libndis\.so' || fail "prog is not linked to libndis.so"
fi
"$WORK/prog" pkg-config || fail "pkg-config build: the program failed"

# shellcheck disable=SC2046
quiet "$CC" -std=c11 -g -fsanitize=address -fno-omit-frame-pointer "$WORK/prog.c" -o "$WORK/prog-asan" \
    $(pkg-config --cflags --libs libndis)
ASAN_OPTIONS=detect_leaks=1 "$WORK/prog-asan" "pkg-config, ASan" || fail "pkg-config build under ASan: the program failed"

# ---- CMake consumer ----
mkdir -p "$WORK/consumer"
cp "$WORK/prog.c" "$WORK/consumer/prog.c"
cat >"$WORK/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(libndis_consumer C)
find_package(libndis 0.1 REQUIRED)
add_executable(prog prog.c)
set_property(TARGET prog PROPERTY C_STANDARD 11)
target_link_libraries(prog PRIVATE libndis::ndis)
EOF
quiet cmake -S "$WORK/consumer" -B "$WORK/consumer/build" -DCMAKE_PREFIX_PATH="$PREFIX"
quiet cmake --build "$WORK/consumer/build"
"$WORK/consumer/build/prog" "find_package(libndis)" || fail "find_package(libndis) build: the program failed"

echo "check-install.sh: pkg-config, pkg-config + ASan and find_package(libndis) clients all pass"
