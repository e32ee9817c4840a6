#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the whole benchmark suite (scripts/bench.sh) several times in a row, default 3, and
# prints per target its figure in each run and whether it held in every one, with the host
# facts once: what issue 5's "holds in three consecutive runs" is checked with.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=3
BUILD=build-bench
PASS=()
SUMMARIZE=0

usage() {
    cat <<'EOF'
usage: scripts/bench-runs.sh [--runs N] [--build-dir DIR] [scripts/bench.sh arguments...]
       scripts/bench-runs.sh --summarize [--build-dir DIR]

Runs scripts/bench.sh N times (default 3) one after the other, with the arguments given
(--dpdk, --quick, --workloads ..., -- bench_pool options: all are passed on), then prints a
table of the targets: libndis's figure in each run, whether the target held in all of them,
and the floor's figure for the same comparison (is the target within reach at all).

Files, in DIR/runs/ (DIR defaults to build-bench/; the directory is emptied first):
  run-K.out, run-K.jsonl   each run's whole output and its JSON lines
  host.txt                 CPU, cores, kernel, compiler, glibc, DPDK, commit, arguments
  summary.txt              the host facts and the table, as printed
  summary.md               the same table in Markdown
  summary.json             per target: the figures and verdicts of every run

--summarize prints the summary of the runs already in DIR/runs/ again, without running.

The exit status is non-zero only when a run fails (a self-check, a measuring process):
targets that are not met never change it.
EOF
}

ARGS=("$@")
while (($#)); do
    case "$1" in
    --runs)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 64; }
        RUNS=$2
        shift
        ;;
    --build-dir)
        [[ $# -ge 2 ]] || { usage >&2; exit 64; }
        BUILD=$2
        shift
        ;;
    --summarize) SUMMARIZE=1 ;;
    -h | --help) usage; exit 0 ;;
    --) PASS+=("$@"); break ;;
    *) PASS+=("$1") ;;
    esac
    shift
done

command -v python3 >/dev/null || { echo "bench-runs.sh: python3 is needed for the summary" >&2; exit 1; }

OUT=$BUILD/runs

# Host facts, once: what the figures depend on besides the code.
host_facts() {
    local cpu cores kernel cc compiler glibc dpdk commit dirty
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
    cores="$(nproc 2>/dev/null || echo '?') online"
    if command -v lscpu >/dev/null; then
        cores+=" ($(LC_ALL=C lscpu | awk -F: '
            /^Socket\(s\)/ { s = $2 } /^Core\(s\) per socket/ { c = $2 }
            /^Thread\(s\) per core/ { t = $2 }
            END { gsub(/ /, "", s); gsub(/ /, "", c); gsub(/ /, "", t);
                  printf "%s socket(s) x %s core(s) x %s thread(s)", s, c, t }'))"
    fi
    kernel=$(uname -srm)
    cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
    compiler=$("${cc:-cc}" --version 2>/dev/null | head -n1 || echo unknown)
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)
    if pkg-config --exists libdpdk 2>/dev/null; then
        dpdk="$(pkg-config --modversion libdpdk) (libdpdk-dev)"
    else
        dpdk="not installed"
    fi
    commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
    ((dirty == 0)) || commit+=" with uncommitted changes to $dirty tracked file(s)"
    printf 'date:     %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'cpu:      %s\n' "${cpu:-unknown}"
    printf 'cores:    %s\n' "$cores"
    printf 'kernel:   %s\n' "$kernel"
    printf 'compiler: %s\n' "$compiler"
    printf 'glibc:    %s\n' "$glibc"
    printf 'dpdk:     %s\n' "$dpdk"
    printf 'commit:   %s\n' "$commit"
    printf 'command:  scripts/bench-runs.sh%s\n' "$(printf ' %q' ${ARGS[@]+"${ARGS[@]}"})"
}

status=0
done_runs=0
if ((SUMMARIZE)); then
    while [[ -f $OUT/run-$((done_runs + 1)).jsonl ]]; do done_runs=$((done_runs + 1)); done
    ((done_runs > 0)) || { echo "bench-runs.sh: no $OUT/run-1.jsonl to summarize" >&2; exit 1; }
    RUNS=0
else
    rm -rf "$OUT"
    mkdir -p "$OUT"
fi
for ((i = 1; i <= RUNS; i++)); do
    echo "bench-runs.sh: run $i of $RUNS (output: $OUT/run-$i.out)" >&2
    start=$SECONDS
    set +e
    scripts/bench.sh --build-dir "$BUILD" ${PASS[@]+"${PASS[@]}"} >"$OUT/run-$i.log"
    status=$?
    set -e
    [[ -f $BUILD/bench.out ]] && cp "$BUILD/bench.out" "$OUT/run-$i.out"
    [[ -f $BUILD/bench.jsonl ]] && cp "$BUILD/bench.jsonl" "$OUT/run-$i.jsonl"
    rm -f "$OUT/run-$i.log"
    if ((status != 0)); then
        echo "bench-runs.sh: run $i failed (exit status $status); the runs stop here" >&2
        break
    fi
    done_runs=$i
    echo "bench-runs.sh: run $i took $((SECONDS - start)) s" >&2
    # The target lines and the lines under each (the floor's figure).
    awk '/^target:/ { t = 1; print; next } t && /^  / { print; next } { t = 0 }
        /^targets:/ { print }' "$OUT/run-$i.out"
    echo
done

# Host facts are those of the runs: --summarize keeps the file they wrote.
((SUMMARIZE)) || host_facts >"$OUT/host.txt"
if ((done_runs > 0)); then
    files=()
    for ((i = 1; i <= done_runs; i++)); do files+=("$OUT/run-$i.jsonl"); done
    python3 - "$OUT" "${files[@]}" <<'PY' | tee "$OUT/summary.txt"
import json
import sys

out, files = sys.argv[1], sys.argv[2:]
runs = []
for path in files:
    with open(path, encoding="utf-8") as f:
        recs = [json.loads(l) for l in f if l.startswith("{")]
    runs.append({r["target"]: r for r in recs if r.get("record") == "target"})

order = []
for run in runs:
    for key in run:
        if key not in order:
            order.append(key)
n = len(runs)


def fig(r, key):
    v = r.get(key) if r else None
    if v is None:
        return None
    return f"{v:.2f}x faster" if r.get("sense") == ">=" else f"{v:.2f}x"


def cell(r):
    f = fig(r, "libndis")
    if f is None:
        return "n/a"
    return f"{f} {'met' if r.get('met') else 'NOT MET'}"


def verdict(recs):
    mets = [r.get("met") if r else None for r in recs]
    if any(m is None for m in mets):
        return "n/a in some run" if any(m is not None for m in mets) else "n/a"
    held = sum(1 for m in mets if m)
    return f"held in all {n}" if held == n else f"NOT HELD ({held} of {n})"


def floor_cell(recs):
    first = next((r for r in recs if r), {})
    if first.get("against") in ("floor", "libndis"):
        return ""
    figs = [fig(r, "floor") for r in recs]
    if all(f is None for f in figs):
        return "no floor figure"
    who = first.get("floor_backend") or "floor"
    vals = " / ".join(f.replace("x faster", "x") if f else "n/a" for f in figs)
    if first.get("sense") == ">=":
        vals += " faster"
    out_of = sum(1 for r in recs if r and r.get("attainable") is False)
    # Verifier off: the floor's figure says whether the comparison resolves 5% at all.
    words = ("UNRESOLVED", "resolved") if first.get("against") == "no_verifier_build" \
        else ("UNATTAINABLE", "attainable")
    tail = f"{words[0]} in {out_of} of {n}" if out_of else words[1]
    return f"{who} {vals}: {tail}"


rows = []
summary = []
for key in order:
    recs = [run.get(key) for run in runs]
    first = next(r for r in recs if r)
    rows.append([first.get("label") or key] + [cell(r) for r in recs] + [verdict(recs), floor_cell(recs)])
    summary.append({
        "target": key, "name": first.get("name"), "label": first.get("label"),
        "sense": first.get("sense"), "threshold": first.get("threshold"),
        "libndis": [r.get("libndis") if r else None for r in recs],
        "floor": [r.get("floor") if r else None for r in recs],
        "met": [r.get("met") if r else None for r in recs],
        "attainable": [r.get("attainable") if r else None for r in recs],
        "unstable": [r.get("unstable") if r else None for r in recs],
        "held_in_all_runs": all(r and r.get("met") for r in recs),
    })

head = ["target"] + [f"run {i + 1}" for i in range(n)] + [f"all {n} runs", "floor, same comparison, run by run"]
widths = [max(len(str(row[c])) for row in rows + [head]) for c in range(len(head))]
with open(f"{out}/host.txt", encoding="utf-8") as f:
    print(f.read().rstrip())
modes = {r.get("mode") for run in runs for r in run.values()}
print(f"runs:     {n} consecutive, mode {', '.join(sorted(m for m in modes if m))}")
print()
print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
for row in rows:
    print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
held = sum(1 for s in summary if s["held_in_all_runs"])
print(f"\n{held} of {len(summary)} targets held in all {n} runs.")
print("Each figure is the run's median over repetitions of paired ratios, in the target's own "
      "terms\n(N x faster than the other back-end, or N x the reference); the last column makes "
      "the same\ncomparison with the floor (floor-cache where the floor has no such row): "
      "UNATTAINABLE where\neven the floor misses the target in that run; for verifier off, "
      "UNRESOLVED where the floor,\nthe same code in both builds, is off 1.0 by more than the "
      "5% the target allows.")
with open(f"{out}/summary.md", "w", encoding="utf-8") as f:
    f.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
    for row in rows:
        f.write("| " + " | ".join(str(c) for c in row) + " |\n")
with open(f"{out}/summary.json", "w", encoding="utf-8") as f:
    json.dump({"runs": n, "files": files, "targets": summary}, f, indent=1)
    f.write("\n")
PY
    echo "bench-runs.sh: everything is in $OUT/ (summary.txt, summary.md, summary.json, run-K.*)" >&2
else
    cat "$OUT/host.txt"
fi
exit "$status"
