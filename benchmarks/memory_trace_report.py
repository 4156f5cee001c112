#!/usr/bin/env python3
"""Side-by-side table of the per-stage memory traces (benchmarks/memory_trace.sh): for each model, each stage in
Java's order, allocated MiB after the stage (cur) and the peak within it, Java vs HF; "+peak" is the peak above
what was allocated at the start of the traced call (weights and inputs), i.e. the transient memory of the stage.

  python3 benchmarks/memory_trace_report.py memtrace.jsonl
"""
import json
import sys


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    for model, batch in dict.fromkeys((r["model"], r["batch"]) for r in rows):
        sides = {}
        for r in rows:
            if r["model"] == model and r["batch"] == batch:
                sides.setdefault(r["impl"], {})[r["stage"]] = r
        order = list(dict.fromkeys([s for impl in ("java", "hf") for s in sides.get(impl, {})]))
        base = {impl: sides[impl]["start"]["cur_mib"] for impl in sides if "start" in sides[impl]}
        print("\n## %s (batch %s): MiB allocated after each stage / peak within it\n" % (model, batch))
        print("| stage | java cur | java peak | java +peak | hf cur | hf peak | hf +peak |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for st in order:
            cells = []
            for impl in ("java", "hf"):
                r = sides.get(impl, {}).get(st)
                if r is None:
                    cells += ["", "", ""]
                else:
                    cells += ["%.1f" % r["cur_mib"], "%.1f" % r["peak_mib"],
                              "%.1f" % (r["peak_mib"] - base.get(impl, 0))]
            print("| %s | %s |" % (st, " | ".join(cells)))


if __name__ == "__main__":
    main()
