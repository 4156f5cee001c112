#!/usr/bin/env python3
"""Markdown tables for benchmarks/RESULTS.md from the files of core/verification/e2e/run_host.sh.

  python3 core/verification/e2e/e2e_report.py OUT_DIR > e2e-results.md

Reads OUT_DIR/e2e-crosscheck.json (Java vs HF), OUT_DIR/e2e-mem-{1b,4b}-summary.json and e2e-mem-{1b,4b}.csv
(memory runs). Missing files are reported as missing. Exit status 1 when the cross-check failed or a memory run
had an out-of-memory failure (or did not finish).
"""
import csv
import json
import os
import sys

GIB = float(1 << 30)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"_{os.path.basename(path)}: not available ({e})_\n")
        return None


def crosscheck(out):
    r = load(os.path.join(out, "e2e-crosscheck.json"))
    if r is None:
        return False
    print("## Java vs HF transformers, Sa2VA-1B dims, random weights, forced answer \"Sure, [SEG].\"\n")
    print(f"{r.get('gpu')}, torch {r['versions']['torch']}, transformers {r['versions']['transformers']}; "
          f"relative error = ‖a − b‖₂ / ‖b‖₂ of the mask logits at the image resolution; Dice of logits > 0.\n")
    print("| image | size | grid | IoU top-2 margin | HF bf16 vs HF fp32 rel / Dice | Java fp32 vs HF fp32 rel / Dice "
          "| Java bf16 vs HF fp32 rel / Dice | Java bf16 vs HF bf16 rel | [SEG] J/HF | ids |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for im in r["images"]:
        h = im["hf_bf16_vs_hf_fp32"]
        cells = []
        for dt in ("fp32", "bf16"):
            c = im.get(dt, {})
            if "logits_rel_vs_hf_fp32" in c:
                flip = "" if c["same_selection_as_hf_fp32"] else " (flip)"
                cells.append(f"{c['logits_rel_vs_hf_fp32']:.2e} / {c['dice_vs_hf_fp32']:.4f}{flip}")
            else:
                cells.append("n/a")
        b = im.get("bf16", {})
        f = im.get("fp32", {})
        print(f"| {im['file']} | {im['size'][0]}x{im['size'][1]} | {im['grid'][0]}x{im['grid'][1]} "
              f"| {im['hf_fp32_iou_top2_margin']:.3f} | {h['logits_rel']:.2e} / {h['dice']:.4f} | {cells[0]} | {cells[1]} "
              f"| {b.get('logits_rel_vs_hf_bf16', float('nan')):.2e} "
              f"| {f.get('n_seg_java', '?')}/{f.get('n_seg_hf', '?')} "
              f"| {'same' if f.get('prompt_ids_equal') and b.get('prompt_ids_equal') else 'DIFFER'} |")
    v = r["verdict"]
    print(f"\nVerdict: **{'PASS' if v['pass'] else 'FAIL'}**" + ("" if v["pass"] else ": " + "; ".join(v["failures"])))
    print()
    return v["pass"]


def memory(out):
    ok = True
    print("## Memory and speed: 244 synthetic 1024x1024 images, allocator capped at 24 GB, random weights\n")
    print("Command: `EvaluateDataset --synthetic 244 --size 1024 --segmenter sa2va --model random:sa2va-XB "
          "--force-answer \"Sure, [SEG].\" --cuda-memory-cap-gb 24 --prefetch 12` (bf16, 12 tiles = 10 with the "
          "thumbnail for a square image, 2560 image tokens; forced answer: one forward pass over prompt + answer).\n")
    print("| model | evaluated / samples | failed | OOM retries | allocator OOM events | peak allocated GiB "
          "| reserved at end GiB | images/s | median s/image | CPU preprocessing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("1b", "4b"):
        s = load(os.path.join(out, f"e2e-mem-{name}-summary.json"))
        rows = []
        try:
            with open(os.path.join(out, f"e2e-mem-{name}.csv")) as f:
                rows = list(csv.DictReader(f))
        except OSError:
            pass
        if s is None:
            ok = False
            print(f"| Sa2VA-{name.upper()} | {len(rows)} rows in the CSV (run did not finish) | | | | | | | | |")
            continue
        run = s.get("run", {})
        secs = sorted(float(r["seconds"]) for r in rows if r.get("seconds"))
        med = secs[len(secs) // 2] if secs else float("nan")
        oom_fail = sum(1 for x in s.get("failures", []) if x.get("stage") == "out_of_memory")
        ok = ok and oom_fail == 0 and s["failed"] == 0
        peak = s.get("peak_cuda_allocated_bytes", -1) / GIB
        res = run.get("cuda_reserved_bytes_at_end", -1) / GIB
        print(f"| Sa2VA-{name.upper()} | {s['evaluated']} / {s['samples']} | {s['failed']} | {s['out_of_memory_retries']} "
              f"| {run.get('cuda_allocator_out_of_memory_events', '?')} | {peak:.2f} | {res:.2f} "
              f"| {s['samples_per_second']:.2f} | {med:.3f} | {run.get('sa2va', '')} |")
    print("\nGoal (issue 7): zero out-of-memory failures at 24 GB; Sa2VA-4B peak ≤ 16 GB. images/s covers the whole "
          "evaluation loop (decode → preprocess → model → scoring → CSV), the first sample's warm-up included; "
          "synthetic images are generated on 12 prefetch threads.")
    return ok


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    ok = crosscheck(out)
    ok = memory(out) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
