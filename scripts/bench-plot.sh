#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Draws the JSON lines of a benchmark run (default build-bench/bench.jsonl, from
# scripts/bench.sh) as bars of the ratios per workload: an SVG always, a PNG beside it when
# rsvg-convert (Debian: librsvg2-bin) is installed. Needs python3 and nothing else.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    cat <<'EOF'
usage: scripts/bench-plot.sh [-o OUT.svg] [--png] [FILE.jsonl ...]

  FILE.jsonl  JSON lines of bench_pool (default build-bench/bench.jsonl); bench_pool's whole
              output works too, the table lines are skipped
  -o OUT.svg  where to write the SVG (default build-bench/bench.svg)
  --png       also write OUT.png, installing librsvg2-bin first when run as root and missing
              (without --png a PNG is written whenever rsvg-convert is already there)
EOF
}

OUT=$ROOT/build-bench/bench.svg
WANT_PNG=0
INPUTS=()
while (($#)); do
    case "$1" in
    -o | --output) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; OUT=$2; shift ;;
    --png) WANT_PNG=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) INPUTS+=("$1") ;;
    esac
    shift
done
((${#INPUTS[@]})) || INPUTS=("$ROOT/build-bench/bench.jsonl")

for f in "${INPUTS[@]}"; do
    [[ -r $f ]] || { echo "bench-plot.sh: no $f; run scripts/bench.sh first" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench-plot.sh: python3 is needed" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/bench/plot.py" -o "$OUT" "${INPUTS[@]}"

if ((WANT_PNG)) && ! command -v rsvg-convert >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "bench-plot.sh: installing librsvg2-bin for the PNG" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librsvg2-bin >&2
    else
        echo "bench-plot.sh: no rsvg-convert (librsvg2-bin): no PNG, the SVG is there" >&2
        exit 1
    fi
fi
if command -v rsvg-convert >/dev/null; then
    png=${OUT%.svg}.png
    rsvg-convert --background-color=white -o "$png" "$OUT"
    echo "bench-plot.sh: wrote $png"
fi
