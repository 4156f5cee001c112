#!/usr/bin/env python3
"""Tables for benchmarks/RESULTS.md from the RL benchmarks: JMH JSON (RewardBench, GaeBench, PpoBench) and the
PyTorch baselines of benchmarks/python/rl_baselines.py, both from the same card and call.

    python3 benchmarks/rl_report.py jmh-rl.json rl-baselines.json
Bandwidth = bytes moved per call / time; a copy moving the same bytes (read + write) is the yardstick."""
import json
import sys


def load_jmh(path):
    rows = {}
    for b in json.load(open(path)):
        cls, method = b["benchmark"].split(".")[-2:]
        # JMH writes the error as the string "NaN" when there are fewer than 3 iterations
        rows[(cls, method, tuple(sorted(b["params"].items())))] = (float(b["primaryMetric"]["score"]),
                                                                  float(b["primaryMetric"]["scoreError"]))
    return rows


def get(rows, cls, method, **params):
    return rows.get((cls, method, tuple(sorted(params.items()))))


def fmt(v):
    return "—" if v is None else (f"{v[0]:.1f} ± {v[1]:.1f}" if v[1] == v[1] else f"{v[0]:.1f}")


def gbs(nbytes, us):
    return f"{nbytes / us / 1e3:.0f}" if us else "—"


def main():
    jmh = load_jmh(sys.argv[1])
    py = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else {"info": {}, "results": []}
    base = {(r["group"], r["name"], r["size"]): r for r in py["results"]}
    print("Card / versions (baselines):", json.dumps(py.get("info", {})))
    print()
    print("### Mask rewards (`RewardBench`, bf16 logits, N x P)")
    print()
    print("| N x P | targets | MB read | evaluate µs | GB/s | copy µs | copy GB/s (r+w) | evaluate / copy | "
          "evaluate, new outputs µs | sample+score µs | torch plain3 µs | torchmetrics-style µs | torchmetrics µs | "
          "torch soft3 µs | torch sample+score µs |")
    print("|" + "---|" * 15)
    for size in ("8x262144", "16x262144", "32x1048576"):
        n, p = map(int, size.split("x"))
        for form in ("bf16-u8", "bf16-bits"):
            nb = n * p * 2 + (n * p if form == "bf16-u8" else n * p // 8)
            ev = get(jmh, "RewardBench", "evaluate", size=size, form=form)
            cp = get(jmh, "RewardBench", "copyBaseline", size=size, form=form)
            al = get(jmh, "RewardBench", "evaluateAlloc", size=size, form=form)
            ss = get(jmh, "RewardBench", "sampleAndScore", size=size, form=form)
            ratio = f"{100 * (nb / ev[0]) / (2 * nb / cp[0]):.0f}%" if ev and cp else "—"
            b = lambda name, g="dice": (f"{base[(g, name, size)]['us']:.1f}" if "us" in base.get((g, name, size), {})
                                        else "—")
            torch_cols = (b("plain3"), b("torchmetrics_style"), b("torchmetrics"), b("soft3"), b("torch", "sample")) \
                if form == "bf16-u8" else ("",) * 5
            print(f"| {size} | {form[5:]} | {nb / 1e6:.1f} | {fmt(ev)} | {gbs(nb, ev and ev[0])} | {fmt(cp)} | "
                  f"{gbs(2 * nb, cp and cp[0])} | {ratio} | {fmt(al)} | {fmt(ss)} | " + " | ".join(torch_cols) + " |")
    print()
    print("### GAE (`GaeBench`, T x N, 17 B per element)")
    print()
    print("| T x N | elements | GAE µs | GB/s | copy µs (same bytes) | GAE / copy | CleanRL loop µs | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for size in ("128x8", "2048x16", "32x4096", "1024x512", "1024x1024", "2048x32768"):
        t, n = map(int, size.split("x"))
        nb = t * n * 17
        g = get(jmh, "GaeBench", "gae", size=size)
        cp = get(jmh, "GaeBench", "copyBaseline", size=size)
        cl = base.get(("gae", "cleanrl_loop", size), {}).get("us")
        ratio = f"{100 * cp[0] / g[0]:.0f}%" if g and cp else "—"
        sp = f"{cl / g[0]:.0f}x" if g and cl else "—"
        print(f"| {size} | {t * n} | {fmt(g)} | {gbs(nb, g and g[0])} | {fmt(cp)} | {ratio} | "
              f"{'—' if cl is None else f'{cl:.0f}'} | {sp} |")
    print()
    print("### PPO loss (`PpoBench`, rows x tokens; forward + gradients)")
    print()
    print("| rows x tokens | config | B/token | fused µs | GB/s | copy µs (same bytes) | fused / copy | torch ops µs "
          "(fwd+bwd) | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in ("256x4096", "4096x4096", "8192x4096"):
        b, l = map(int, size.split("x"))
        for cfg, bpt, bname in (("cleanrl", 40, "cleanrl_ops"), ("grpo", 17, "trl_grpo_ops")):
            nb = b * l * bpt
            k = get(jmh, "PpoBench", "ppoLoss", size=size, config=cfg)
            cp = get(jmh, "PpoBench", "copyBaseline", size=size, config=cfg)
            tb = base.get(("ppo", bname, size), {}).get("us")
            ratio = f"{100 * cp[0] / k[0]:.0f}%" if k and cp else "—"
            sp = f"{tb / k[0]:.1f}x" if k and tb else "—"
            print(f"| {size} | {cfg} | {bpt} | {fmt(k)} | {gbs(nb, k and k[0])} | {fmt(cp)} | {ratio} | "
                  f"{'—' if tb is None else f'{tb:.0f}'} | {sp} |")
    maskstats_table(jmh)


def maskstats_table(jmh, before_path="benchmarks/results/2026-11-25-h100-maskstats.json"):
    """MaskStatsBench.Cuda (confusion()) now vs the first H100 run (commit c0ff293: memset + two launches, ~31 us of
    host time per call)."""
    try:
        before = load_jmh(before_path)
    except OSError:
        before = {}
    print()
    print("### `MaskMetrics.confusion` (`MaskStatsBench.Cuda`), now vs the first H100 run")
    print()
    print("| logits | N x P | now µs/call | copy µs | now / copy | first run µs/call |")
    print("|---|---|---|---|---|---|")
    for dt in ("bf16", "f32"):
        for size in ("4x262144", "8x1048576", "32x1048576"):
            n, p = map(int, size.split("x"))
            nb = n * p * ((2 if dt == "bf16" else 4) + 1)
            now = get(jmh, "Cuda", "maskStats", size=size, dtype=dt)
            cp = get(jmh, "Cuda", "copyBaseline", size=size, dtype=dt)
            old = get(before, "Cuda", "maskStats", size=size, dtype=dt)
            ratio = f"{100 * (nb / now[0]) / (2 * nb / cp[0]):.0f}%" if now and cp else "—"
            print(f"| {dt} | {size} | {fmt(now)} | {fmt(cp)} | {ratio} | {fmt(old)} |")


if __name__ == "__main__":
    main()
