#!/usr/bin/env python3
"""Speed and peak GPU memory of HF transformers' Sam2Model on Sa2VA's SAM2 path, the baseline of the Java
benchmark dev.sa2va.bench.Sam2ImageBench (same protocol, same card, same call: core/verification/sam2/run_host.sh).

Timed per call, for a batch of B images of S x S already on the GPU (normalised, model dtype):
    image encoder (trunk + FPN + conv_s0/s1 + no_mem_embed)  ->  prompt encoder (Sa2VA: two not-a-point
    tokens + the language embedding)  ->  mask decoder (multimask)  ->  argmax-IoU mask selection,
then torch.cuda.synchronize(). Latency = mean time per call; throughput = B / latency. Peak memory =
torch.cuda.max_memory_allocated / max_memory_reserved over the timed calls after a reset (weights and inputs
included), as the Java side reads the same caching-allocator statistics.

    python3 core/verification/sam2/hf_speed.py --config hiera-large --batches 1,4,8 --out hf.json

Weights are HF's default initialisation (speed does not depend on the values). The variant 'sa2va' composes
Sam2Model's public pieces exactly as sam2_reference.py does for the verification; 'forward' is the plain
Sam2Model.forward with one point prompt (2 sparse tokens instead of 3), timed as a cross-check of the composition.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(msg, flush=True)


def build_model(config, dtype, dev, attn="default"):
    """HF Sam2Model at a preset of sam2_reference.py with HF's default initialisation, on dev in dtype, eval mode.
    Returns (model, preset). Also used by benchmarks/python/memory_trace.py, so both measure the same model."""
    import torch
    from transformers import Sam2Model

    from sam2_reference import PRESETS, build_config

    p = PRESETS[config]
    with torch.device(dev):
        model = Sam2Model(build_config(p, attn))
    return model.to(device=dev, dtype=dtype).eval(), p


def sa2va_path(model, px, lang, mark=None):
    """Sa2VA's SAM2 call composed from Sam2Model's public pieces, as sam2_reference.py does for the verification:
    image embeddings, two not-a-point tokens + the language embedding, multimask decoder, argmax-IoU selection.
    mark(stage), when given, is called between the pieces (memory_trace.py's stage boundaries).
    Returns (selected masks, iou)."""
    import torch

    mark = mark or (lambda _stage: None)
    dev, dtype, b = px.device, px.dtype, px.shape[0]
    emb = model.get_image_embeddings(px)  # [conv_s0, conv_s1, fpn2 + no_mem_embed]
    mark("sam2.conv_s0_s1")
    pts = torch.zeros(b, 1, 1, 2, device=dev, dtype=dtype)
    lab = -torch.ones(b, 1, 1, device=dev, dtype=torch.int64)
    sparse, dense = model.get_prompt_embeddings(input_points=pts, input_labels=lab)
    sparse = torch.cat([sparse, lang.view(b, 1, 1, -1)], dim=2)
    pe = model.get_image_wide_positional_embeddings().repeat(b, 1, 1, 1)
    mark("sam2.prompt")
    r = model.mask_decoder(image_embeddings=emb[-1], image_positional_embeddings=pe,
                           sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
                           high_resolution_features=emb[:-1])
    masks, iou = r[0], r[1]
    best = iou.argmax(dim=-1)
    idx = best[:, :, None, None, None].expand(-1, -1, 1, masks.shape[-2], masks.shape[-1])
    sel = torch.gather(masks, 2, idx), iou
    mark("sam2.select")
    return sel


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="hiera-large")
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls per batch size")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per batch size (at least 5 calls)")
    ap.add_argument("--variants", default="sa2va,forward")
    ap.add_argument("--attn", default="default", choices=["default", "eager", "sdpa"])
    ap.add_argument("--out", required=True, help="JSON file to write")
    args = ap.parse_args()

    import torch
    import transformers

    if not torch.cuda.is_available():
        log("ERROR: no CUDA device")
        sys.exit(2)
    dev = torch.device("cuda")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    t0 = time.time()
    model, p = build_model(args.config, dtype, dev, args.attn)
    s, hidden = p["image_size"], p["hidden"]
    n_params = sum(x.numel() for x in model.parameters())
    attn = getattr(model.config, "_attn_implementation", None)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name(0)}; "
        f"Sam2Model {args.config} {args.dtype}: {n_params} parameters, attention {attn} ({time.time() - t0:.1f}s)")

    def sa2va(px, lang):
        return sa2va_path(model, px, lang)

    def forward(px, lang):
        b = px.shape[0]
        pts = torch.full((b, 1, 1, 2), s / 2, device=dev, dtype=dtype)
        lab = torch.ones(b, 1, 1, device=dev, dtype=torch.int64)
        out = model(pixel_values=px, input_points=pts, input_labels=lab, multimask_output=True)
        return out.pred_masks, out.iou_scores

    fns = {"sa2va": sa2va, "forward": forward}
    results = {"impl": "hf", "config": args.config, "dtype": args.dtype, "device": torch.cuda.get_device_name(0),
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
               "attn_implementation": attn, "parameters": n_params, "runs": []}
    failed = False
    for variant in args.variants.split(","):
        for b in [int(x) for x in args.batches.split(",")]:
            fn = fns[variant]
            px = lang = None
            try:
                g = torch.Generator(device=dev).manual_seed(7)
                px = torch.randn(b, 3, s, s, device=dev, generator=g).to(dtype)
                lang = torch.randn(b, hidden, device=dev, generator=g).to(dtype)
                with torch.inference_mode():
                    for _ in range(args.warmup):
                        fn(px, lang)
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    times = []
                    start = time.perf_counter()
                    while len(times) < 5 or time.perf_counter() - start < args.seconds:
                        t = time.perf_counter()
                        fn(px, lang)
                        torch.cuda.synchronize()
                        times.append(time.perf_counter() - t)
                run = {"variant": variant, "batch": b, "calls": len(times),
                       "mean_ms": 1e3 * statistics.mean(times), "stdev_ms": 1e3 * statistics.stdev(times),
                       "median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
                       "images_per_s": b / statistics.mean(times),
                       "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
                       "peak_reserved_bytes": torch.cuda.max_memory_reserved()}
                log(f"HF {variant} batch {b}: {run['mean_ms']:.2f} ms/call (median {run['median_ms']:.2f}, "
                    f"{run['calls']} calls), {run['images_per_s']:.1f} img/s, peak allocated "
                    f"{run['peak_allocated_bytes'] / 2**30:.2f} GiB, reserved {run['peak_reserved_bytes'] / 2**30:.2f} GiB")
            except Exception as e:  # noqa: BLE001 - record and go on with the next size
                failed = True
                run = {"variant": variant, "batch": b, "error": f"{type(e).__name__}: {e}"}
                log(f"ERROR: HF {variant} batch {b}: {run['error']}")
            results["runs"].append(run)
            del px, lang
            torch.cuda.empty_cache()
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)
    log(f"wrote {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
