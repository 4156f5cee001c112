#!/usr/bin/env python3
"""Side-by-side table (markdown) of the SAM2 image-path benchmark: Java (JMH Sam2ImageBench + its memory lines)
against HF transformers' Sam2Model (core/verification/sam2/hf_speed.py), same card, same call.

    python3 benchmarks/sam2_report.py JMH_JSON JAVA_MEM_JSONL HF_JSON

Any of the three may be missing (the table says so); nothing is invented for a missing side."""
import json
import os
import sys


def load_json(path):
    if not path or not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_lines(path):
    if not path or not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def gib(b):
    return "n/a" if b is None or b < 0 else f"{b / 2**30:.2f}"


def main():
    jmh = load_json(sys.argv[1] if len(sys.argv) > 1 else None) or []
    mem = load_lines(sys.argv[2] if len(sys.argv) > 2 else None)
    hf = load_json(sys.argv[3] if len(sys.argv) > 3 else None)
    java = {}
    for b in jmh:
        p = b["params"]
        if p.get("device", "cuda") != "cuda":
            continue
        java[int(p["batch"])] = {"ms": b["primaryMetric"]["score"], "err": b["primaryMetric"]["scoreError"],
                                 "dtype": p["dtype"], "config": p["config"]}
    for m in mem:
        if m.get("device", "cuda") == "cuda":
            java.setdefault(int(m["batch"]), {}).update(m)
    hfr = {}
    if hf:
        for r in hf["runs"]:
            hfr.setdefault(r["variant"], {})[int(r["batch"])] = r
    batches = sorted(set(java) | set(hfr.get("sa2va", {})) | set(hfr.get("forward", {})))
    if hf:
        print(f"HF: {hf.get('device')}, torch {hf['versions']['torch']}, transformers {hf['versions']['transformers']}, "
              f"attention {hf.get('attn_implementation')}, {hf.get('config')} {hf.get('dtype')}")
    print()
    print("| batch | Java ms/batch | Java img/s | HF ms/batch (Sa2VA path) | HF img/s | Java / HF time | "
          "Java peak alloc GiB | HF peak alloc GiB | Java peak reserved GiB | HF peak reserved GiB | Java host enqueue ms | "
          "HF forward() ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b in batches:
        j = java.get(b, {})
        h = hfr.get("sa2va", {}).get(b, {})
        f = hfr.get("forward", {}).get(b, {})
        jms = j.get("ms")
        hms = h.get("mean_ms")
        row = [str(b),
               f"{jms:.2f} ± {j['err']:.2f}" if jms is not None else "missing",
               f"{b * 1e3 / jms:.1f}" if jms else "missing",
               f"{hms:.2f} ± {h['stdev_ms']:.2f}" if hms is not None else h.get("error", "missing"),
               f"{h['images_per_s']:.1f}" if hms is not None else "missing",
               f"{jms / hms:.2f}" if jms and hms else "n/a",
               gib(j.get("peak_allocated_bytes")), gib(h.get("peak_allocated_bytes")),
               gib(j.get("peak_reserved_bytes")), gib(h.get("peak_reserved_bytes")),
               f"{j['host_enqueue_ms']:.1f}" if "host_enqueue_ms" in j else "n/a",
               f"{f['mean_ms']:.2f}" if "mean_ms" in f else f.get("error", "n/a")]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
