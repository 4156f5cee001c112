#!/usr/bin/env python3
"""Comparison table of the MLLM at Sa2VA-1B dims (issue 6) for benchmarks/RESULTS.md.

   python3 benchmarks/mllm_report.py hf_bench.json java_bench.json [jmh-mllm.json]

hf_bench.json: core/verification/mllm/mllm_reference.py --bench-only (HF transformers, bf16, sdpa);
java_bench.json: MllmBench's replay of the same protocol (1 warm-up, 3 runs, medians, peak allocated after the
warm-up); jmh-mllm.json: MllmBench's JMH scores. Missing or broken inputs are reported, not fatal.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except Exception as e:  # a failed step upstream leaves no file: say so in the table
        return None, "%s: %s" % (path, e)


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    hf, e1 = load(argv[1])
    java, e2 = load(argv[2])
    jmh, e3 = load(argv[3]) if len(argv) > 3 else (None, None)
    g = lambda d, k: None if d is None else d.get(k)  # noqa: E731

    jmh_prefill = jmh_decode = None
    for b in jmh or []:
        name = b["benchmark"].rsplit(".", 1)[-1]
        score, err, unit = b["primaryMetric"]["score"], b["primaryMetric"]["scoreError"], b["primaryMetric"]["scoreUnit"]
        if unit != "ms/op":
            continue
        if name == "visionPrefill":
            jmh_prefill = (score, err)
        elif name == "decode":
            jmh_decode = (score, err)

    print("| Sa2VA-1B dims, bf16, 1 image 1024x1024 (%s tiles, %s prompt tokens) | HF transformers | sa2va-java "
          "(same protocol) | Java / HF | sa2va-java (JMH) |" % (g(hf, "tiles") or g(java, "tiles"),
                                                                g(hf, "prompt_tokens") or g(java, "prompt_tokens")))
    print("|---|---|---|---|---|")

    def row(label, key, spec, better, jmh_val):
        a, b = g(hf, key), g(java, key)
        ratio = "n/a" if a in (None, 0) or b is None else "%.2f" % (b / a)
        verdict = ""
        if a is not None and b is not None:
            ok = b <= a if better == "lower" else b >= a
            verdict = " (goal met)" if ok else " (goal NOT met)"
        print("| %s | %s | %s | %s%s | %s |" % (label, fmt(a, spec), fmt(b, spec), ratio, verdict, jmh_val))

    row("vision + prefill, ms (median of 3)", "vision_plus_prefill_ms_median", ".1f", "lower",
        "n/a" if jmh_prefill is None else "%.1f ± %.1f" % jmh_prefill)
    row("decode, tokens/s (64 greedy steps, median of 3)", "decode_tokens_per_s_median", ".1f", "higher",
        "n/a" if jmh_decode is None else "%.1f (%.2f ± %.2f ms/token)" % (1e3 / jmh_decode[0], *jmh_decode))
    row("peak allocated GPU memory, GiB", "peak_allocated_gib", ".3f", "lower", "")
    row("allocated between runs (weights + inputs), GiB", "weights_allocated_gib", ".3f", "lower", "")
    if java and java.get("vision_ms_median") is not None:
        print("\nJava vision alone (ViT + pixel shuffle + mlp1, 10 tiles): %.1f ms (median of 3)." % java["vision_ms_median"])
    print("\nHF: %s (attention: %s). Java: %s." % (g(hf, "impl"), g(hf, "attn_implementation"), g(java, "impl")))
    for e in (e1, e2, e3):
        if e:
            print("\nMISSING INPUT: " + e)


if __name__ == "__main__":
    main(sys.argv)
