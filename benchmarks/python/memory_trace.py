#!/usr/bin/env python3
"""HF side of the per-stage GPU memory trace (Java side: dev.sa2va.bench.MemoryTrace; both in one call:
benchmarks/memory_trace.sh). For each stage: the caching allocator's allocated bytes after it ("cur") and the peak
within it ("peak": torch.cuda.max_memory_allocated, reset at every stage boundary). Stage boundaries are forward
hooks on the HF modules that match the Java stages (same names), plus marks between the calls of the composition.

  sam2 [--batch B[,B...]]: HF Sam2Model, SAM2-L, bf16, default init, B random 1024^2 images; Sa2VA's composition as
        core/verification/sam2/hf_speed.py times it (image embeddings, 2 not-a-point tokens + language embedding,
        multimask decoder, argmax-IoU selection).
  mllm: InternVLForConditionalGeneration at Sa2VA-1B dims (mllm_reference.py's random weights), bf16, sdpa,
        10 random tiles and MllmBench's 2583-token prompt; prefill with logits_to_keep=1, then 4 greedy steps,
        as mllm_reference.py --bench-only.

One untimed warm-up first, as the benchmarks do. Output: "MEMTRACE {json}" lines on stdout and, with --out, JSON
lines appended to that file.
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MIB = float(1 << 20)


class Tracer:
    def __init__(self, torch, model, batch, out):
        self.torch, self.model, self.batch, self.out = torch, model, batch, out
        self.on = False
        self.max_peak = 0

    def start(self):
        t = self.torch
        t.cuda.synchronize()
        t.cuda.reset_peak_memory_stats()
        self.max_peak = 0
        self.on = True
        cur = t.cuda.memory_allocated()
        self.emit("start", cur, cur)

    def mark(self, stage):
        if not self.on:
            return
        t = self.torch
        cur, peak = t.cuda.memory_allocated(), t.cuda.max_memory_allocated()
        t.cuda.reset_peak_memory_stats()
        self.max_peak = max(self.max_peak, peak)
        self.emit(stage, cur, peak)

    def finish(self):
        self.on = False
        self.emit("max_peak", self.torch.cuda.memory_allocated(), self.max_peak)

    def emit(self, stage, cur, peak):
        line = json.dumps({"impl": "hf", "model": self.model, "batch": self.batch, "stage": stage,
                           "cur_mib": round(cur / MIB, 2), "peak_mib": round(peak / MIB, 2)})
        print("MEMTRACE " + line, flush=True)
        if self.out:
            with open(self.out, "a") as fh:
                fh.write(line + "\n")

    def hook(self, module, stage):
        module.register_forward_hook(lambda _m, _i, _o: self.mark(stage))


def hook_by_name(tracer, model, rules):
    """rules: [(regex over named_modules names, stage name template with \\1)]; returns how many were hooked."""
    n = 0
    for name, mod in model.named_modules():
        for pat, stage in rules:
            m = re.fullmatch(pat, name)
            if m:
                tracer.hook(mod, m.expand(stage))
                n += 1
                break
    return n


def sam2(torch, batches, out):
    sys.path.insert(0, os.path.join(ROOT, "core", "verification", "sam2"))
    from hf_speed import build_model, sa2va_path

    dev, dtype = torch.device("cuda"), torch.bfloat16
    model, p = build_model("hiera-large", dtype, dev)
    s, hidden = p["image_size"], p["hidden"]
    torch.cuda.empty_cache()
    tr = Tracer(torch, "sam2", batches[0], out)
    n = hook_by_name(tr, model, [
        (r"vision_encoder\.backbone\.patch_embed", "sam2.trunk.embed"),
        (r"vision_encoder\.backbone\.blocks\.(\d+)", r"sam2.trunk.block.\1"),
        (r"vision_encoder\.neck", "sam2.fpn"),
        (r"mask_decoder\.transformer", "sam2.decoder.transformer"),
        (r"mask_decoder", "sam2.decoder"),
    ])
    print("hooked %d HF modules; attention %s" % (n, getattr(model.config, "_attn_implementation", None)), flush=True)

    def sa2va(px, lang):
        return sa2va_path(model, px, lang, tr.mark)

    for b in batches:
        tr.batch = b
        g = torch.Generator(device=dev).manual_seed(7)
        px = torch.randn(b, 3, s, s, device=dev, generator=g).to(dtype)
        lang = torch.randn(b, hidden, device=dev, generator=g).to(dtype)
        with torch.inference_mode():
            for _ in range(2):
                sa2va(px, lang)
            tr.start()
            r = sa2va(px, lang)
            tr.mark("sam2.return")
            del r
            tr.mark("end")
            tr.finish()
        del px, lang
        torch.cuda.empty_cache()
    del model
    torch.cuda.empty_cache()


def mllm(torch, out):
    sys.path.insert(0, os.path.join(ROOT, "core", "verification", "mllm"))
    import mllm_reference as mr

    dev = torch.device("cuda")
    d = mr.dims_for("sa2va-1b", None)
    ctx = 151667
    model, _fcs, _cfg = mr.build_models(d, ctx, 20240611, dev)
    del _fcs
    model.to(torch.bfloat16)
    tc = model.config.text_config
    mr._fp32_rope(model.model.language_model.rotary_emb, {"hidden": tc.hidden_size, "heads": tc.num_attention_heads,
                                                          "rope_theta": tc.rope_parameters["rope_theta"]}, dev)
    model.set_attn_implementation("sdpa")
    torch.cuda.empty_cache()
    tr = Tracer(torch, "mllm", 1, out)
    n = hook_by_name(tr, model, [
        (r"model\.vision_tower\.embeddings", "mllm.vision.embeddings"),
        (r"model\.vision_tower\.encoder\.layer\.(\d+)", r"mllm.vision.layer.\1"),
        (r"model\.multi_modal_projector", "mllm.vision.projector"),
        (r"model\.language_model\.layers\.(\d+)", r"mllm.llm.layer.\1"),
        (r"model\.language_model\.norm", "mllm.llm.final_norm"),
        (r"lm_head", "mllm.logits"),
    ])
    print("hooked %d HF modules; attention %s" % (n, model.config._attn_implementation), flush=True)
    # MllmBench.prompt: im_start w \n <img> ctx x 2560 </img> \n w x 12 im_end \n im_start w \n
    ids = [151644, 872, 198, 151665] + [ctx] * 2560 + [151666, 198] + [1000 + 37 * i for i in range(12)] + \
        [151645, 198, 151644, 77091, 198]
    input_ids = torch.tensor([ids], dtype=torch.long, device=dev)
    g = torch.Generator(device=dev).manual_seed(1)
    px = torch.randn(10, 3, 448, 448, device=dev, generator=g).to(torch.bfloat16)

    def run(trace):
        out1 = model(input_ids=input_ids, pixel_values=px, use_cache=True, logits_to_keep=1)
        tok = out1.logits[:, -1].argmax(-1, keepdim=True)
        pkv = out1.past_key_values
        del out1
        was, tr.on = tr.on, False  # decode steps: one mark per step, not per layer
        for i in range(4):
            o = model(input_ids=tok, past_key_values=pkv, use_cache=True)
            pkv, tok = o.past_key_values, o.logits[:, -1].argmax(-1, keepdim=True)
            del o
            tr.on = was
            tr.mark("mllm.decode.%d" % i)
            tr.on = False
        tr.on = was
        return tok

    with torch.no_grad():
        run(False)
        torch.cuda.empty_cache()
        tr.start()
        r = run(True)
        del r
        tr.mark("end")
        tr.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["sam2", "mllm"], help="sam2 and/or mllm")
    ap.add_argument("--batch", default="1", help="SAM2 images per call, comma-separated for several runs")
    ap.add_argument("--out", help="JSON lines file to append to")
    args = ap.parse_args()
    import torch
    import transformers
    if not torch.cuda.is_available():
        raise SystemExit("memory_trace.py needs a CUDA device")
    print("torch %s, transformers %s, %s" % (torch.__version__, transformers.__version__,
                                             torch.cuda.get_device_name(0)), flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    for w in args.what:
        if w == "sam2":
            sam2(torch, [int(x) for x in args.batch.split(",")], args.out)
        elif w == "mllm":
            mllm(torch, args.out)
        else:
            raise SystemExit("unknown: " + w)


if __name__ == "__main__":
    main()
