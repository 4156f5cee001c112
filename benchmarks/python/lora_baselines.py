#!/usr/bin/env python3
"""PyTorch baselines for issue 3 (fused LoRA), on the GPU that runs the Java benchmarks, in the same call.

    python3 benchmarks/python/lora_baselines.py OUT.jsonl [--quick]

bf16, issue 3's grid: (d_in, d_out) in {(896,896), (896,4864), (4864,896), (2048,2048), (2048,11008), (4096,4096),
(4096,14336)}, r in {8, 16, 64, 128}, T in {4096, 2600}. Implementations:
  torch    nn.Linear alone (frozen, no bias): forward x·Wᵀ, and dX = dY·W (the only backward GEMM of a frozen layer)
  peft     PEFT's eager LoRA layer, written out as PEFT's Linear.forward computes it:
           base(x) + lora_B(lora_A(dropout(x))) * scaling, dropout 0.05 (Sa2VA) and 0 (PEFT then uses Identity)
  unsloth  Unsloth-style autograd Function: out = x·Wᵀ; out.addmm_(x·Aᵀ, Bᵀ, alpha=s); backward with addmm_ and
           r-sized intermediates (its fast path requires dropout 0, so only p = 0)
Each point is measured two ways, as the Java side does:
  device  a GPU sleep gives the host a head start, CUDA events bracket 20 calls: time on the GPU per call
  wall    20 calls, one synchronize: time per call as an eager training loop sees it (host-bound at small sizes)
Median of 3 repetitions. One JSON object per line:
  {"impl", "op": fwd|fwdbwd|dx, "d_in", "d_out", "rank", "tokens", "dropout", "measure": device|wall, "us"}
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn

REPS, REPEATS = 20, 3
SHAPES = [(896, 896), (896, 4864), (4864, 896), (2048, 2048), (2048, 11008), (4096, 4096), (4096, 14336)]
RANKS = [8, 16, 64, 128]
TOKENS = [4096, 2600]
DT = torch.bfloat16


class PeftStyleLinear(nn.Module):
    """The computation of peft.tuners.lora.layer.Linear.forward for one unmerged adapter (bf16 throughout)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, p: float):
        super().__init__()
        self.base_layer = base
        d_in, d_out = base.in_features, base.out_features
        dev = base.weight.device
        self.lora_A = nn.Linear(d_in, r, bias=False, device=dev, dtype=DT)
        self.lora_B = nn.Linear(r, d_out, bias=False, device=dev, dtype=DT)
        nn.init.normal_(self.lora_B.weight, std=0.01)  # a trained adapter (PEFT starts from B = 0)
        self.lora_dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        self.scaling = alpha / r

    def forward(self, x):
        result = self.base_layer(x)
        return result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


class AddmmLora(torch.autograd.Function):
    """Unsloth-style LoRA (after unsloth/kernels/fast_lora.py's LoRA_W and utils.matmul_lora): cuBLAS calls only,
    the B-projection accumulated into the base output, r-sized intermediates in backward, x·Aᵀ recomputed."""

    @staticmethod
    def forward(ctx, x, w, a, b, s):
        out = x @ w.t()
        out.addmm_(x @ a.t(), b.t(), alpha=s)
        ctx.save_for_backward(x, w, a, b)
        ctx.s = s
        return out

    @staticmethod
    def backward(ctx, dy):
        x, w, a, b = ctx.saved_tensors
        s = ctx.s
        dy_b = dy @ b                                                                # T x r
        da = torch.addmm(a, dy_b.t(), x, beta=0, alpha=s)                           # r x d_in
        db = torch.addmm(b, dy.t(), x @ a.t(), beta=0, alpha=s)                     # d_out x r
        dx = dy @ w
        dx.addmm_(dy_b, a, alpha=s)
        return dx, None, da, db, None


def cycles_per_second():
    """Calibrates torch.cuda._sleep (it takes GPU clock cycles)."""
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(20_000_000)
    end.record()
    end.synchronize()
    return 20_000_000 / (start.elapsed_time(end) / 1000.0)


def device_us(fn, cps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(REPS):
        fn()
    host = time.perf_counter() - t0
    torch.cuda.synchronize()
    cycles = int((1.5 * host + 0.5e-3) * cps)
    res = []
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(cycles)
        start.record()
        for _ in range(REPS):
            fn()
        end.record()
        end.synchronize()
        res.append(start.elapsed_time(end) * 1000.0 / REPS)
    return statistics.median(res)


def wall_us(fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    res = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(REPS):
            fn()
        torch.cuda.synchronize()
        res.append((time.perf_counter() - t0) * 1e6 / REPS)
    return statistics.median(res)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    quick = "--quick" in sys.argv
    shapes = [(896, 896), (4096, 4096)] if quick else SHAPES
    ranks = [16] if quick else RANKS
    tokens_list = [4096] if quick else TOKENS
    dev = torch.device("cuda", 0)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    cps = cycles_per_second()
    props = torch.cuda.get_device_properties(0)
    print(f"torch {torch.__version__}, {props.name}, sleep calibration {cps / 1e9:.3f} GHz", flush=True)
    out = open(sys.argv[1], "w")

    def emit(impl, op, d_in, d_out, rank, tokens, p, measure, us):
        rec = dict(impl=impl, op=op, d_in=d_in, d_out=d_out, rank=rank, tokens=tokens, dropout=p, measure=measure,
                   us=round(us, 3))
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print(f"{impl:8s} {op:7s} {d_in:5d}x{d_out:<5d} r={rank:<3d} T={tokens:<4d} p={p:.2f} {measure:6s} {us:9.1f} us",
              flush=True)

    def both(impl, op, d_in, d_out, rank, tokens, p, fn):
        emit(impl, op, d_in, d_out, rank, tokens, p, "device", device_us(fn, cps))
        emit(impl, op, d_in, d_out, rank, tokens, p, "wall", wall_us(fn))

    for d_in, d_out in shapes:
        base = nn.Linear(d_in, d_out, bias=False, device=dev, dtype=DT)
        base.weight.requires_grad_(False)
        for tokens in tokens_list:
            x = torch.randn(tokens, d_in, device=dev, dtype=DT)
            dy = torch.randn(tokens, d_out, device=dev, dtype=DT)
            with torch.no_grad():
                both("torch", "fwd", d_in, d_out, 0, tokens, 0.0, lambda: base(x))
                both("torch", "dx", d_in, d_out, 0, tokens, 0.0, lambda: dy @ base.weight)
            xg = x.clone().requires_grad_(True)
            for rank in ranks:
                alpha = 2.0 * rank
                for p in (0.05, 0.0):
                    layer = PeftStyleLinear(base, rank, alpha, p).train()
                    params = [layer.lora_A.weight, layer.lora_B.weight, xg]

                    def peft_fwd():
                        with torch.no_grad():
                            return layer(x)

                    def peft_fwd_train():
                        return layer(xg)

                    def peft_fwdbwd():
                        for t in params:
                            t.grad = None
                        layer(xg).backward(dy)

                    # training forward (autograd graph kept, as in a training step) and forward + backward
                    both("peft", "fwd", d_in, d_out, rank, tokens, p, peft_fwd_train)
                    both("peft", "fwdbwd", d_in, d_out, rank, tokens, p, peft_fwdbwd)
                    if p == 0.0:
                        emit("peft", "fwd_nograd", d_in, d_out, rank, tokens, p, "device", device_us(peft_fwd, cps))
                    del layer
                a = (torch.randn(rank, d_in, device=dev, dtype=DT) / d_in ** 0.5).requires_grad_(True)
                b = (torch.randn(d_out, rank, device=dev, dtype=DT) * 0.01).requires_grad_(True)
                s = alpha / rank

                def uns_fwd():
                    return AddmmLora.apply(xg, base.weight, a, b, s)

                def uns_fwdbwd():
                    for t in (a, b, xg):
                        t.grad = None
                    AddmmLora.apply(xg, base.weight, a, b, s).backward(dy)

                both("unsloth", "fwd", d_in, d_out, rank, tokens, 0.0, uns_fwd)
                both("unsloth", "fwdbwd", d_in, d_out, rank, tokens, 0.0, uns_fwdbwd)
            del x, dy, xg
        del base
        torch.cuda.empty_cache()
    out.close()
    print("wrote", sys.argv[1])


if __name__ == "__main__":
    main()
