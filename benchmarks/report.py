#!/usr/bin/env python3
"""Turns a JMH JSON result of MaskStatsBench into the bandwidth table of RESULTS.md.
   python3 benchmarks/report.py benchmarks/results/<file>.json"""
import json, sys

rows = {}
for b in json.load(open(sys.argv[1])):
    method = b["benchmark"].split(".")[-1]
    p = b["params"]
    n, px = map(int, p["size"].split("x"))
    elem = {"bf16": 2, "f16": 2, "f32": 4}[p["dtype"]]
    nbytes = n * px * (elem + 1)  # logits + uint8 targets, each read once
    rows[(p["dtype"], n * px, p["size"], method)] = (b["primaryMetric"]["score"], b["primaryMetric"]["scoreError"], nbytes)
print("| logits | N x P | bytes read (MB) | kernel µs/call | kernel GB/s | copy µs (same bytes) | copy GB/s (read+write) | kernel / copy |")
print("|---|---|---|---|---|---|---|---|")
for (dt, _, size, m), (s, e, nb) in sorted(rows.items()):
    if m != "maskStats":
        continue
    c = rows.get((dt, _, size, "copyBaseline"))
    bw = nb / s / 1e3
    line = f"| {dt} | {size} | {nb / 1e6:.1f} | {s:.1f} ± {e:.1f} | {bw:.0f} |"
    if c:
        cbw = 2 * nb / c[0] / 1e3
        line += f" {c[0]:.1f} ± {c[1]:.1f} | {cbw:.0f} | {100 * bw / cbw:.0f}% |"
    print(line)
