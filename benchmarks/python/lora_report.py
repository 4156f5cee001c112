#!/usr/bin/env python3
"""Turns the LoRA benchmark results into the tables of benchmarks/RESULTS.md (markdown on stdout).

    python3 benchmarks/python/lora_report.py --device lora-device.jsonl --baselines lora-baselines.jsonl \
        [--jmh jmh-lora.json]

--device     dev.sa2va.bench.LoraDeviceTimes output (our layer and torch.linear from Java, device time)
--baselines  benchmarks/python/lora_baselines.py output (PyTorch base / PEFT-style / Unsloth-style, device + wall)
--jmh        JMH JSON of LoraBench + LoraBaseBench (host-inclusive time per call from Java)

Goals (issue 3), with "d" the smaller of d_in and d_out: forward <= 1.10x the base GEMM at d >= 4096, <= 1.20x at
2048, <= 1.5x at 896; backward (dX + dA + dB) <= 1.20x the base dX GEMM at d >= 4096; forward + backward >= 1.3x
faster than the PEFT-style layer at every shape. Ratios to the base use the base measured from Java in the same
process (same libtorch, same cuBLAS); the PyTorch base is listed for comparison.
Plain Python (no numpy), so it runs anywhere.
"""
import argparse
import json
import os
import sys


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def key(r, *fields):
    return tuple(r[f] for f in fields)


def fwd_goal(d_in, d_out):
    d = min(d_in, d_out)
    return 1.10 if d >= 4096 else 1.20 if d >= 2048 else 1.5


def mark(value, goal, higher_is_better=False):
    if value is None:
        return "–"
    ok = value >= goal if higher_is_better else value <= goal
    if ok:
        return "yes"
    miss = (goal / value - 1) if higher_is_better else (value / goal - 1)
    return f"**no** ({100 * miss:+.0f}%)"


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", required=True)
    ap.add_argument("--baselines", required=True)
    ap.add_argument("--jmh")
    ap.add_argument("--bw-tbs", type=float, default=4.3,
                    help="copy bandwidth (read + write) of the card in TB/s for the traffic floors (H200 ~4.3, H100 ~3.0)")
    a = ap.parse_args()

    dev = load_jsonl(a.device)
    py = load_jsonl(a.baselines)
    ours = {}
    base_java = {}
    nopdl = {}
    other = {}  # (impl, op, d_in, d_out, rank, tokens, p): the A/B rows (ours_fused, ours_fused_dx_cublas)
    for r in dev:
        if r["impl"] == "torch":
            base_java[(r["op"], r["d_in"], r["d_out"], r["tokens"])] = r["us"]
        elif r["impl"] != "ours":
            other[(r["impl"], r["op"], r["d_in"], r["d_out"], r["rank"], r["tokens"], round(r["dropout"], 3))] = r["us"]
        elif r["pdl"]:
            ours[(r["op"], r["d_in"], r["d_out"], r["rank"], r["tokens"], round(r["dropout"], 3))] = r["us"]
        else:
            nopdl[(r["op"], r["d_in"], r["d_out"], r["rank"], r["tokens"], round(r["dropout"], 3))] = r["us"]
    pyd = {}
    for r in py:
        pyd[(r["impl"], r["op"], r["d_in"], r["d_out"], r["rank"], r["tokens"], round(r["dropout"], 3), r["measure"])] = r["us"]

    shapes = sorted({(r["d_in"], r["d_out"]) for r in dev}, key=lambda s: (min(s), s[0] * s[1], s[0]))
    ranks = sorted({r["rank"] for r in dev if r["impl"] == "ours"})
    tokens_list = sorted({r["tokens"] for r in dev}, reverse=True)
    met = {"fwd": [0, 0], "bwd": [0, 0], "peft": [0, 0]}

    print("### Device time per call (µs), bf16, dropout 0.05 unless noted\n")
    for t in tokens_list:
        print(f"T = {t} tokens. Base = torch.linear / dY·W from Java (cuBLAS); PyTorch columns from lora_baselines.py.\n")
        print("| d_in x d_out | r | base fwd | ours fwd | fwd / base | goal | base dX | ours bwd | bwd / dX | goal | "
              "ours fwd+bwd | PEFT fwd+bwd | PEFT / ours | goal | ours p=0 fwd+bwd | Unsloth p=0 fwd+bwd | PyTorch base fwd |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for d_in, d_out in shapes:
            bf = base_java.get(("fwd", d_in, d_out, t))
            bdx = base_java.get(("dx", d_in, d_out, t))
            for rank in ranks:
                of = ours.get(("fwd", d_in, d_out, rank, t, 0.05))
                ob = ours.get(("bwd", d_in, d_out, rank, t, 0.05))
                ofb = ours.get(("fwdbwd", d_in, d_out, rank, t, 0.05))
                ofb0 = ours.get(("fwdbwd", d_in, d_out, rank, t, 0.0))
                pfb = pyd.get(("peft", "fwdbwd", d_in, d_out, rank, t, 0.05, "device"))
                ufb = pyd.get(("unsloth", "fwdbwd", d_in, d_out, rank, t, 0.0, "device"))
                pbase = pyd.get(("torch", "fwd", d_in, d_out, 0, t, 0.0, "device"))
                rf = of / bf if of and bf else None
                rb = ob / bdx if ob and bdx else None
                sp = pfb / ofb if pfb and ofb else None
                g = fwd_goal(d_in, d_out)
                mf = mark(rf, g)
                mb = mark(rb, 1.20) if min(d_in, d_out) >= 4096 else "–"
                mp = mark(sp, 1.3, True)
                if rf is not None:
                    met["fwd"][1] += 1
                    met["fwd"][0] += mf == "yes"
                if rb is not None and min(d_in, d_out) >= 4096:
                    met["bwd"][1] += 1
                    met["bwd"][0] += mb == "yes"
                if sp is not None:
                    met["peft"][1] += 1
                    met["peft"][0] += mp == "yes"
                print(f"| {d_in}x{d_out} | {rank} | {fmt(bf)} | {fmt(of)} | {fmt(rf, 2)} | <= {g:.2f}: {mf} | {fmt(bdx)} | "
                      f"{fmt(ob)} | {fmt(rb, 2)} | {mb} | {fmt(ofb)} | {fmt(pfb)} | {fmt(sp, 2)} | {mp} | {fmt(ofb0)} | "
                      f"{fmt(ufb)} | {fmt(pbase)} |")
        print()
    print(f"Goals met (device time): forward {met['fwd'][0]}/{met['fwd'][1]}, backward at d >= 4096 "
          f"{met['bwd'][0]}/{met['bwd'][1]}, >= 1.3x faster than PEFT-style {met['peft'][0]}/{met['peft'][1]}.\n")

    kern = [(k, v) for k, v in ours.items() if k[0] in ("kfwd", "kbwd")]
    if kern:
        bw = a.bw_tbs * 1e12
        print(f"### Our kernels alone vs their traffic floor (device µs, bf16, dropout 0.05; floor at {a.bw_tbs} TB/s)\n")
        print("Floor: forward reads x and writes y, (T·d_in + T·d_out)·2 B; backward reads dY and x once and writes dx, "
              "(T·d_out + 2·T·d_in)·2 B. β=1 columns: the base GEMM accumulating onto the buffer our kernels wrote "
              "(what LoraOps runs) over the plain GEMM.\n")
        print("| d_in x d_out | T | r | kernels fwd | floor fwd | x floor | kernels bwd | floor bwd | x floor | "
              "GEMM fwd β=1 / β=0 | GEMM dX β=1 / β=0 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for t in tokens_list:
            for d_in, d_out in shapes:
                bfa = base_java.get(("fwd_acc", d_in, d_out, t))
                bf = base_java.get(("fwd", d_in, d_out, t))
                bda = base_java.get(("dx_acc", d_in, d_out, t))
                bdx = base_java.get(("dx", d_in, d_out, t))
                for rank in ranks:
                    kf = ours.get(("kfwd", d_in, d_out, rank, t, 0.05))
                    kb = ours.get(("kbwd", d_in, d_out, rank, t, 0.05))
                    ff = (t * d_in + t * d_out) * 2 / bw * 1e6
                    fb = (t * d_out + 2 * t * d_in) * 2 / bw * 1e6
                    print(f"| {d_in}x{d_out} | {t} | {rank} | {fmt(kf)} | {fmt(ff)} | {fmt(kf / ff if kf else None, 2)} | "
                          f"{fmt(kb)} | {fmt(fb)} | {fmt(kb / fb if kb else None, 2)} | "
                          f"{fmt(bfa / bf if bfa and bf else None, 3)} | {fmt(bda / bdx if bda and bdx else None, 3)} |")
        print()

    if other:
        print("### Fused dropout vs cuBLAS for the products the dropout touches (device µs, T = 4096)\n")
        print("default: the layer as shipped (lora_set_fused 0: the products on cuBLAS, keep⊙x through the workspace, "
              "the in-place mask on dx). other: ours_fused = xs, dA by lowrank_kernel and, with a dropout, dx's term by "
              "masked_expand_kernel (modes 1 at p > 0, 2 at p = 0); ours_fused_dx_cublas = as ours_fused but dx's "
              "term on cuBLAS + mask (mode 3). Files from runs before the default changed (2026-12-03 run 3) name the "
              "rows ours_cublas / ours_dx_cublas and their default is the fused path. kfwd / kbwd: our kernels alone, "
              "without the base GEMMs.\n")
        print("| d_in x d_out | r | p | op | default | other | impl | other / default |")
        print("|---|---|---|---|---|---|---|---|")
        for (impl, op, d_in, d_out, rank, t, p), us in sorted(other.items(), key=lambda kv: (
                min(kv[0][2:4]), kv[0][2], kv[0][4], -kv[0][6], kv[0][1])):
            d = ours.get((op, d_in, d_out, rank, t, p))
            print(f"| {d_in}x{d_out} | {rank} | {p} | {op} | {fmt(d)} | {fmt(us)} | {impl} | "
                  f"{fmt(us / d if d else None, 2)} |")
        print()

    if nopdl:
        print("### Programmatic dependent launch (device time of fwd+bwd, µs, T = 4096, dropout 0.05)\n")
        print("| d_in x d_out | r | with PDL | without | saved |")
        print("|---|---|---|---|---|")
        for (op, d_in, d_out, rank, t, p), us in sorted(nopdl.items(), key=lambda kv: (min(kv[0][1:3]), kv[0][1], kv[0][3])):
            w = ours.get((op, d_in, d_out, rank, t, p))
            print(f"| {d_in}x{d_out} | {rank} | {fmt(w)} | {fmt(us)} | {fmt(us - w if w else None)} |")
        print()

    if a.jmh and not os.path.exists(a.jmh):
        print(f"(no JMH results: {a.jmh} not found)\n")
    elif a.jmh:
        jmh = json.load(open(a.jmh))
        j = {}
        for b in jmh:
            name = b["benchmark"].split(".")[-2] + "." + b["benchmark"].split(".")[-1]
            p = b["params"]
            d_in, d_out = map(int, p["shape"].split("x"))
            j[(name, d_in, d_out, int(p.get("rank", 0)), int(p["tokens"]))] = (b["primaryMetric"]["score"],
                                                                              b["primaryMetric"]["scoreError"])
        print("### Time per call in a 20-call loop, host included (µs): Java (JMH) vs PyTorch eager\n")
        print("Where the host needs longer per call than the GPU, this is host time: Java argument checks, JavaCPP "
              "objects and launches for us, Python dispatch for PEFT.\n")
        print("| d_in x d_out | r | T | Java base fwd | ours fwd | ratio | Java base dX | ours fwd+bwd | PEFT fwd+bwd | "
              "PEFT / ours |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for t in tokens_list:
            for d_in, d_out in shapes:
                bf = j.get(("LoraBaseBench.linear", d_in, d_out, 0, t))
                bdx = j.get(("LoraBaseBench.backwardDx", d_in, d_out, 0, t))
                for rank in ranks:
                    of = j.get(("LoraBench.forward", d_in, d_out, rank, t))
                    ofb = j.get(("LoraBench.forwardBackward", d_in, d_out, rank, t))
                    pfb = pyd.get(("peft", "fwdbwd", d_in, d_out, rank, t, 0.05, "wall"))
                    if not of and not ofb:
                        continue
                    ratio = of[0] / bf[0] if of and bf else None
                    sp = pfb / ofb[0] if pfb and ofb else None
                    print(f"| {d_in}x{d_out} | {rank} | {t} | {fmt(bf[0] if bf else None)} | "
                          f"{fmt(of[0] if of else None)} | {fmt(ratio, 2)} | {fmt(bdx[0] if bdx else None)} | "
                          f"{fmt(ofb[0] if ofb else None)} | {fmt(pfb)} | {fmt(sp, 2)} |")
        print()


if __name__ == "__main__":
    sys.exit(main())
