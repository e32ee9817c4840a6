#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Draws bench_pool's JSON lines as an SVG: per workload and k, one horizontal bar per back-end
# for its ratio to the floor (and to DPDK where the run has it), then the memory per descriptor.
# Standard library only, so the plot works on any host that ran the benchmark;
# scripts/bench-plot.sh is the usual entry point.
import argparse
import json
import math
import sys
import textwrap
from html import escape

UNSTABLE = 1.3  # the table's rule: a paired ratio whose max > 1.3 x min
CLIP = 5.0      # ratios above this are cut so that the ones near 1 stay readable

# libndis's targets (performance.md and issue 5), per panel: (workload, k or variant) -> limit
# on the ratio; None as the second item means every row of the workload.
TARGETS = {
    "ratio_floor": {("W1", None): 1.5, ("W3", 4): 1.2, ("W4", 4): 1.3},
    "ratio_dpdk": {("W1", None): 1 / 2.5, ("W2", 512): 1.0, ("W3", 4): 1 / 2.5,
                   ("W4", 4): 1 / 3, ("W5", "handoff"): 1.0},
}

COLORS = {
    "libndis": "#1f6fb4",
    "libndis+verify": "#9ec5e8",
    "floor": "#555555",
    "floor-cache": "#a8a8a8",
    "malloc": "#e08a1e",
    "jemalloc": "#c4622d",
    "mimalloc": "#b8a01c",
}
DPDK_COLORS = ["#2e9e4f", "#7fcf8f", "#1b6b35", "#b5e3be"]  # the dpdk* back-ends, in order
SPARE = ["#8b5fbf", "#c85a9a", "#17a0b0", "#8c6d31", "#d62728", "#6b6ecf"]

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
BAR_H, BAR_GAP, GROUP_GAP = 14, 3, 16
LEFT, PANEL_W, LABEL_W, PANEL_GAP = 170, 400, 118, 36
RED = "#c0392b"


def text_width(s, size):
    """Rough width of sans-serif text: enough to keep labels from overlapping."""
    return len(s) * size * 0.58


def read_rows(paths):
    rows = []
    for path in paths:
        with (sys.stdin if path == "-" else open(path, encoding="utf-8")) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line.startswith("{"):
                    continue  # the table, when given bench_pool's whole output
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"plot.py: {path}:{n}: not JSON: {e}")
                # Rows only: the "target" records (one per target) are not bars.
                if rec.get("record", "row") == "row":
                    rows.append(rec)
    return rows


def num(row, key):
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def group_key(row):
    return (row.get("workload", "?"), row.get("variant") or row.get("op", ""),
            int(row.get("k", 1)), int(row.get("threads", 1)))


def group_label(key, op):
    wl, variant, k, threads = key
    if wl == "W2":
        head = f"W2 burst {k}"
    elif wl in ("W5", "W6"):
        head = f"{wl} {variant}"
    elif wl == "W1" and k == 1:
        head = wl
    else:
        head = f"{wl} k={k}"
    if threads != 1:
        head += f", {threads} threads"
    return head, op.replace("_", " ")


def target_of(field, key, rows):
    for r in rows:  # a line may carry its own target
        t = num(r, "target_" + field)
        if t:
            return t
    wl, variant, k, _ = key
    table = TARGETS.get(field, {})
    for probe in ((wl, variant), (wl, k), (wl, None)):
        if probe in table:
            return table[probe]
    return None


def nice_step(span):
    raw = span / 6
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def axis_end(values, clip, floor_end):
    """Upper end of an axis: the largest value up to `clip`, with room, rounded up."""
    kept = [v for v in values if v <= clip]
    top = max(kept) if kept else clip
    top = max(floor_end, top * 1.05)
    step = nice_step(top)
    return math.ceil(top / step - 1e-9) * step, step


def fmt(v):
    return f"{v:.2f}"


def fmt_tick(t):
    return f"{t:g}" if t < 1000 else f"{t:.0f}"


class Svg:
    def __init__(self):
        self.parts = []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=11, anchor="start", weight="normal", fill="#222"):
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>')

    def line(self, x1, y1, x2, y2, stroke="#222", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                 f'stroke="{stroke}" stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, fill, tip=None):
        body = f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" ' \
               f'fill="{fill}"'
        self.add(body + (f"><title>{escape(tip)}</title></rect>" if tip else "/>"))

    def axis(self, x0, width, xmax, step, y_top, y_bottom, labels_at):
        t = 0.0
        while t <= xmax + 1e-9:
            x = x0 + width * t / xmax
            self.line(x, y_top, x, y_bottom, stroke="#dde1e6")
            for ty in labels_at:
                self.text(x, ty, fmt_tick(t), size=10, anchor="middle", fill="#555")
            t += step


def host_lines(rows):
    r = next((x for x in rows if isinstance(x.get("host"), dict)), rows[0])
    h = r.get("host", {}) if isinstance(r.get("host"), dict) else {}
    commit = str(h.get("commit", "unknown"))
    first = [f"libndis {h.get('libndis', '?')} ({h.get('link', '?')} library)",
             f"commit {commit[:12]}",
             f"{h.get('cpu', '?')}, {h.get('online_cpus', '?')} CPUs",
             str(h.get("compiler", "?")),
             f"{r.get('procs', '?')} processes x {r.get('reps', '?')} repetitions"]
    if h.get("dpdk"):
        first.append(f"DPDK {h.get('dpdk_version', '?')}")
    return ", ".join(first)


def calibration_line(rows):
    parts = []
    for r in rows:
        med = num(r, "median")
        if med is None:
            continue
        what = (r.get("variant") or r.get("op", "?")).replace("_", " ")
        if int(r.get("threads", 1)) != 1:
            what += f" ({r['threads']} threads)"
        parts.append(f"{what} {med:.2f} ns")
    return "host calibration (W6): " + ", ".join(parts) if parts else None


def draw(rows, title):
    rated = [r for r in rows if num(r, "ratio_floor") or num(r, "ratio_dpdk")]
    unrated = [r for r in rows if r not in rated]
    if not rated:
        sys.exit("plot.py: no line with a ratio to plot")

    groups, backends, by_group, ops = [], [], {}, {}
    for r in rated:
        key = group_key(r)
        if key not in by_group:
            by_group[key] = []
            groups.append(key)
            ops[key] = r.get("op", "")
        by_group[key].append(r)
        if r["backend"] not in backends:
            backends.append(r["backend"])
    spare, greens = iter(SPARE), iter(DPDK_COLORS)
    color = {}
    for b in backends:
        color[b] = COLORS.get(b) or next(greens if b.startswith("dpdk") else spare, "#777777")

    panels = [("ratio_floor", "x floor", "floor")]
    if any(num(r, "ratio_dpdk") for r in rated):
        panels.append(("ratio_dpdk", "x dpdk", "dpdk"))

    memory = []  # (backend, bytes per descriptor, descriptors, large figure, large count)
    for b in backends:
        if "+" in b and b.split("+")[0] in backends:
            continue  # libndis+verify uses libndis's pools: the same figure
        r = next((x for x in rows if x.get("backend") == b and num(x, "bytes_per_descriptor")),
                 None)
        if r is not None:
            m = r.get("memory") if isinstance(r.get("memory"), dict) else {}
            memory.append((b, num(r, "bytes_per_descriptor"), m.get("descriptors"),
                           num(m, "bytes_per_descriptor_large"), m.get("descriptors_large")))

    quick = any(r.get("mode") == "quick" for r in rows)
    notes = [
        "Bar: median over repetitions of (row / reference row of the same repetition); "
        "whisker: min - max of those paired ratios. Below 1.0 is faster than the reference.",
        "Red dashed line: libndis's target for that row (performance.md, issue 5). Bars past "
        "the axis end are cut (>>) and labelled with their value.",
        f"'unstable': max > {UNSTABLE} x min, one of the pair changed speed on its own; "
        "compare instruction counts (bench/callgrind_gate.sh).",
    ]
    if quick:
        notes.insert(0, "QUICK MODE: a smoke run with few operations; do not quote these "
                        "figures.")
    # Rows with no reference in this run (W5 shared and handoff without DPDK): their ns.
    bare = {}
    for r in unrated:
        if r.get("workload") != "W6" and num(r, "median"):
            bare.setdefault(group_key(r), []).append(r)
    for key, rs in bare.items():
        head, _ = group_label(key, "")
        notes.append(f"{head}, no reference row in this run, ns per operation: "
                     + ", ".join(f"{r.get('backend', '?')} {num(r, 'median'):.2f}" for r in rs))
    calib = calibration_line([r for r in unrated if r.get("workload") == "W6"])

    width = LEFT + len(panels) * (PANEL_W + LABEL_W) + (len(panels) - 1) * PANEL_GAP + 16
    chars = int((width - 32) / (10.5 * 0.53))
    notes = [piece for n in notes for piece in textwrap.wrap(n, chars, subsequent_indent="  ")]

    # Vertical layout: header, legend, axis ticks, groups, axis ticks, memory, notes.
    top = 112 + (16 if calib else 0)
    y = top + 22
    layout = []
    for key in groups:
        n = len(by_group[key])
        h = n * BAR_H + (n - 1) * BAR_GAP
        layout.append((key, y, h))
        y += h + GROUP_GAP
    plot_bottom = y - GROUP_GAP + 8
    mem_top = plot_bottom + 60
    mem_h = (len(memory) * (BAR_H + BAR_GAP) + 50) if memory else 0
    notes_top = mem_top + mem_h + (10 if memory else -20)
    height = notes_top + 16 * len(notes) + 16

    svg = Svg()
    svg.add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">')
    svg.rect(0, 0, width, height, "#ffffff")
    svg.text(16, 26, title, size=16, weight="bold")
    svg.text(16, 46, host_lines(rows), size=11, fill="#555")
    legend_y = 60
    if calib:
        svg.text(16, 62, calib, size=11, fill="#555")
        legend_y += 16

    # Legend: one swatch per back-end, in the order the run printed them.
    lx = 16
    for b in backends:
        svg.rect(lx, legend_y, 12, 12, color[b])
        svg.text(lx + 17, legend_y + 10.5, b, size=11)
        lx += 17 + text_width(b, 11) + 18
    if quick:
        svg.text(width - 16, legend_y + 10.5, "QUICK MODE - not figures", size=11, anchor="end",
                 weight="bold", fill=RED)

    # Group bands and labels, shared by every panel.
    for i, (key, gy, gh) in enumerate(layout):
        if i % 2 == 0:
            svg.rect(8, gy - GROUP_GAP / 2 + 1, width - 16, gh + GROUP_GAP - 2, "#f3f5f8")
        head, op = group_label(key, ops[key])
        svg.text(16, gy + gh / 2 - 1, head, size=12, weight="bold")
        svg.text(16, gy + gh / 2 + 13, op, size=10, fill="#666")
        # W5 private: libndis's per-thread cost against its own single-thread W1 (target 1.1).
        lib = next((r for r in by_group[key] if r["backend"] == "libndis"), None)
        single = num(lib, "ratio_single_thread") if lib else None
        if single:
            private = key[1] == "private"
            svg.text(16, gy + gh / 2 + 27, f"libndis / its W1: {single:.2f}"
                     + (" (<= 1.1)" if private else ""), size=10,
                     fill=RED if private and single > 1.1 else "#555")

    for p, (field, axis_name, ref) in enumerate(panels):
        x0 = LEFT + p * (PANEL_W + LABEL_W + PANEL_GAP)
        draw_panel(svg, x0, field, axis_name, ref, layout, by_group, backends, color, top,
                   plot_bottom)

    if memory:
        draw_memory(svg, memory, color, mem_top, width)

    for i, n in enumerate(notes):
        svg.text(16, notes_top + 16 * i, n, size=10.5, fill=RED if n.startswith("QUICK")
                 else "#444")
    svg.add("</svg>")
    return "\n".join(svg.parts) + "\n"


def draw_panel(svg, x0, field, axis_name, ref, layout, by_group, backends, color, top,
               plot_bottom):
    values = [num(r, field) for rs in by_group.values() for r in rs if num(r, field)]
    xmax, step = axis_end(values, CLIP, 2.0)

    def X(v):
        return x0 + PANEL_W * min(v, xmax) / xmax

    svg.text(x0 + PANEL_W / 2, top - 10, f"{axis_name}: ratio to the {ref} row of the same run",
             size=12, anchor="middle", weight="bold")
    svg.axis(x0, PANEL_W, xmax, step, top, plot_bottom, (top + 12, plot_bottom + 14))
    svg.line(x0, top + 16, x0, plot_bottom, stroke="#888")

    for key, gy, gh in layout:
        rows = by_group[key]
        if not any(num(r, field) for r in rows):
            svg.text(x0 + 8, gy + gh / 2 + 4, f"no {ref} row for this workload", size=10.5,
                     fill="#888")
            continue
        by_be = {r["backend"]: r for r in rows}
        for j, b in enumerate([b for b in backends if b in by_be]):
            r = by_be[b]
            v = num(r, field)
            by = gy + j * (BAR_H + BAR_GAP)
            base = by + BAR_H - 3.5
            if v is None:
                svg.text(x0 + 4, base, f"{b}: n/a", size=10, fill="#888")
                continue
            cut = v > xmax
            head, _ = group_label(key, "")
            svg.rect(x0, by, X(v) - x0, BAR_H, color[b], tip=f"{b}, {head}: {fmt(v)}")
            if cut:  # a white zigzag through the bar's end says "longer than drawn"
                zx = X(xmax) - 12
                svg.add(f'<polyline points="{zx:.1f},{by - 1:.1f} {zx + 4:.1f},'
                        f'{by + BAR_H / 2:.1f} {zx:.1f},{by + BAR_H + 1:.1f}" fill="none" '
                        f'stroke="#fff" stroke-width="3"/>')
            lo, hi = num(r, field + "_min"), num(r, field + "_max")
            if lo and hi and not cut and hi > lo:
                cy = by + BAR_H / 2
                svg.line(X(lo), cy, X(hi), cy, stroke="#111", width=1.2)
                for e in (lo, hi):
                    svg.line(X(e), cy - 4, X(e), cy + 4, stroke="#111", width=1.2)
            label = (">> " if cut else "") + fmt(v)
            lx = max(X(v), X(hi) if hi and not cut else 0) + 5
            svg.text(lx, base, label, size=11, weight="bold" if b == "libndis" else "normal")
            if lo and hi and hi > UNSTABLE * lo:
                svg.text(lx + text_width(label, 11) + 6, base, "unstable", size=10, fill=RED)
        target = target_of(field, key, rows)
        if target and target < xmax:
            svg.line(X(target), gy - 5, X(target), gy + gh + 5, stroke=RED, width=1.6,
                     dash="5,3")
            svg.text(X(target) + 3, gy + gh + 12, f"target {target:.2g}", size=9, fill=RED)
    # The reference line goes last so no bar hides it.
    svg.line(X(1.0), top + 16, X(1.0), plot_bottom, stroke="#111", width=1.6)
    svg.text(x0 + PANEL_W / 2, plot_bottom + 28, f"{axis_name} (1.0 = as fast as the {ref})",
             size=11, anchor="middle", fill="#333")


def draw_memory(svg, memory, color, y0, width):
    n = memory[0][2]
    large = next((m[4] for m in memory if m[4]), None)
    what = f"with {n} live in one pool" if n else ""
    svg.text(16, y0, f"memory: bytes per descriptor {what}, overhead included"
             + (f" (in brackets: {large} live)" if large else ""), size=11.5, weight="bold")
    xmax, step = axis_end([m[1] for m in memory], float("inf"), 100.0)
    top, bottom = y0 + 22, y0 + 22 + len(memory) * (BAR_H + BAR_GAP) + 2
    svg.axis(LEFT, PANEL_W, xmax, step, top - 6, bottom, (top - 9,))
    for i, (b, bpd, _, big, _) in enumerate(memory):
        by = top + i * (BAR_H + BAR_GAP)
        svg.text(LEFT - 8, by + BAR_H - 3.5, b, size=11, anchor="end")
        svg.rect(LEFT, by, PANEL_W * bpd / xmax, BAR_H, color.get(b, "#777777"),
                 tip=f"{b}: {bpd:.1f} bytes per descriptor")
        label = f"{bpd:.1f} B" + (f"  ({big:.1f} B)" if big else "")
        svg.text(LEFT + PANEL_W * bpd / xmax + 5, by + BAR_H - 3.5, label, size=11)
    svg.text(LEFT + PANEL_W / 2, bottom + 16, "bytes per descriptor", size=11, anchor="middle",
             fill="#333")


def main():
    ap = argparse.ArgumentParser(description="Plot bench_pool JSON lines as an SVG bar chart.")
    ap.add_argument("inputs", nargs="*", default=["build-bench/bench.jsonl"],
                    help="JSON-lines files ('-' for stdin); default build-bench/bench.jsonl")
    ap.add_argument("-o", "--output", default="build-bench/bench.svg", help="SVG to write")
    ap.add_argument("--backends", help="comma-separated back-ends to draw (default: all)")
    ap.add_argument("--workloads", help="comma-separated workloads to draw (default: all)")
    ap.add_argument("--title", default="bench_pool: cost relative to the reference, "
                    "per workload (shorter is faster)")
    args = ap.parse_args()
    rows = read_rows(args.inputs)
    if args.backends:
        keep = set(args.backends.split(","))
        rows = [r for r in rows if r.get("backend") in keep or r.get("workload") == "W6"]
    if args.workloads:
        keep = set(args.workloads.upper().split(","))
        rows = [r for r in rows if r.get("workload") in keep]
    if not rows:
        sys.exit(f"plot.py: no JSON lines to draw in {', '.join(args.inputs)}")
    svg = draw(rows, args.title)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(svg)
    print(f"plot.py: wrote {args.output} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
