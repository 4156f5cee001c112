#!/usr/bin/env python3
"""Reference fixtures for the Java SAM2 image path, computed with HF transformers' Sam2Model.

Builds Sam2Model at a given config with random (non-trivial) weights from a fixed seed, writes the weights
under Sa2VA key names (grounding_encoder.sam2_model.* = original SAM2 names behind a prefix), the inputs, and
HF's outputs per stage, so that the Java implementation can be compared stage by stage with an independent
implementation that uses the very same weights.

  tiny fixtures (committed to the repo, <= 3 MB; reference and fp32 run on the CPU, HF's bf16 run on CUDA so that
  the summary's hf_bfloat16_vs_ref is the baseline of the Java bf16-on-CUDA check, Sam2TinyGpuTest):
    python3 core/verification/sam2/sam2_reference.py --config tiny-random --threads 4 --bf16 --bf16-device cuda \
        --out DIR
  large verification (GPU host; weights too big to carry, generated there in the same call as the Java run):
    python3 core/verification/sam2/sam2_reference.py --config hiera-large --device cuda --batch 1 \
        --bf16 --save-bf16 --max-bytes 0 --out /tmp/sam2-large

See NOTES.md next to this file for the file layout, key names and pass criteria.

Why the reference runs in float64 by default: the Java fp32 result is then compared with something more
accurate than itself, and the HF fp32 run (also recorded, as 'hf_float32_vs_ref' in the summary) shows how far
two correct fp32 implementations can drift apart, i.e. whether the 1e-4 bound is meaningful.
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import time
import zlib

PREFIX = "grounding_encoder.sam2_model."
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# SAM 2.0 configs (Sa2VA uses sam2_hiera_l.yaml = SAM 2.0, not 2.1), plus a tiny random config for CI fixtures.
# tiny-random is chosen so that every code path of the image path is exercised at a few hundred kB:
# q-pooling at three stage changes, windowed attention with zero padding (window 6 on an 8x8 map, also in a
# q-pooled block), a global-attention block, a windowed position embedding tiled 4x4 over a bicubically resized
# background embedding, head counts that change per stage, and hidden size 32 instead of 256 everywhere after
# the trunk (FPN, prompt encoder, decoder, language embedding).
PRESETS = {
    "tiny-random": dict(
        image_size=128, dims=[8, 16, 32, 64], heads=[1, 2, 4, 8], blocks=[1, 2, 3, 2], windows=[8, 4, 6, 2],
        global_blocks=[5], bkg=[4, 4], hidden=32, dec_heads=4, dec_mlp=64, iou_hidden=32,
        orig_sizes=[(96, 160), (120, 72)]),
    "hiera-tiny": dict(
        image_size=1024, dims=[96, 192, 384, 768], heads=[1, 2, 4, 8], blocks=[1, 2, 7, 2], windows=[8, 4, 14, 7],
        global_blocks=[5, 7, 9], bkg=[7, 7], hidden=256, dec_heads=8, dec_mlp=2048, iou_hidden=256,
        orig_sizes=[(584, 565), (605, 700)]),
    "hiera-small": dict(
        image_size=1024, dims=[96, 192, 384, 768], heads=[1, 2, 4, 8], blocks=[1, 2, 11, 2], windows=[8, 4, 14, 7],
        global_blocks=[7, 10, 13], bkg=[7, 7], hidden=256, dec_heads=8, dec_mlp=2048, iou_hidden=256,
        orig_sizes=[(584, 565), (605, 700)]),
    "hiera-base-plus": dict(
        image_size=1024, dims=[112, 224, 448, 896], heads=[2, 4, 8, 16], blocks=[2, 3, 16, 3], windows=[8, 4, 14, 7],
        global_blocks=[12, 16, 20], bkg=[14, 14], hidden=256, dec_heads=8, dec_mlp=2048, iou_hidden=256,
        orig_sizes=[(584, 565), (605, 700)]),
    "hiera-large": dict(
        image_size=1024, dims=[144, 288, 576, 1152], heads=[2, 4, 8, 16], blocks=[2, 6, 36, 4], windows=[8, 4, 16, 8],
        global_blocks=[23, 33, 43], bkg=[7, 7], hidden=256, dec_heads=8, dec_mlp=2048, iou_hidden=256,
        orig_sizes=[(584, 565), (605, 700)]),
}
PRESETS["large"] = PRESETS["hiera-large"]
PRESETS["tiny"] = PRESETS["tiny-random"]

PROMPTS = ("lang", "points", "points_single", "box", "box_points")


# ----------------------------------------------------------------------------------------------------------
# Key names. Pure python (no torch) so that they can be checked anywhere.
# HF -> original SAM2 is written from the HF module structure; original -> HF follows the rules of HF's
# convert_sam2_to_hf.py. Both directions are applied to every key and must round-trip, which checks the
# inverse map against HF's own conversion rules rather than against itself.
# ----------------------------------------------------------------------------------------------------------

def _mlp_hf_to_sam2(suffix, depth):
    """HF Sam2FeedForward (proj_in, layers.i, proj_out) -> SAM2 MLP (layers.0 .. layers.depth-1)."""
    m = re.fullmatch(r"proj_in\.(weight|bias)", suffix)
    if m:
        return f"layers.0.{m[1]}"
    m = re.fullmatch(r"layers\.(\d+)\.(weight|bias)", suffix)
    if m:
        return f"layers.{int(m[1]) + 1}.{m[2]}"
    m = re.fullmatch(r"proj_out\.(weight|bias)", suffix)
    if m:
        return f"layers.{depth - 1}.{m[1]}"
    return None


def hf_to_sam2(key, iou_head_depth=3):
    """Original SAM2 name (without the Sa2VA prefix) of an HF Sam2Model state-dict key.

    Returns a str, the marker 'TIED' for HF's duplicate of the prompt encoder's Fourier matrix, the marker
    'SPLIT_POINT_EMBED' for HF's stacked point embeddings (SAM2 keeps 4 separate (1, C) embeddings), or None
    for a key this map does not know.
    """
    if key == "shared_image_embedding.positional_embedding":
        return "TIED"
    if key == "no_memory_embedding":
        return "no_mem_embed"
    m = re.fullmatch(r"vision_encoder\.backbone\.(.+)", key)
    if m:
        r = m[1]
        if r in ("pos_embed", "pos_embed_window"):
            return "image_encoder.trunk." + r
        m2 = re.fullmatch(r"patch_embed\.projection\.(weight|bias)", r)
        if m2:
            return f"image_encoder.trunk.patch_embed.proj.{m2[1]}"
        m2 = re.fullmatch(r"blocks\.(\d+)\.(.+)", r)
        if not m2:
            return None
        b, s = m2[1], m2[2]
        m3 = re.fullmatch(r"layer_norm([12])\.(weight|bias)", s)
        if m3:
            return f"image_encoder.trunk.blocks.{b}.norm{m3[1]}.{m3[2]}"
        m3 = re.fullmatch(r"mlp\.(.+)", s)
        if m3:
            t = _mlp_hf_to_sam2(m3[1], 2)
            return None if t is None else f"image_encoder.trunk.blocks.{b}.mlp.{t}"
        if re.fullmatch(r"(attn\.qkv|attn\.proj|proj)\.(weight|bias)", s):
            return f"image_encoder.trunk.blocks.{b}.{s}"
        return None
    m = re.fullmatch(r"vision_encoder\.neck\.convs\.(\d+)\.(weight|bias)", key)
    if m:
        return f"image_encoder.neck.convs.{m[1]}.conv.{m[2]}"
    m = re.fullmatch(r"prompt_encoder\.(.+)", key)
    if m:
        r = m[1]
        if r == "shared_embedding.positional_embedding":
            return "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
        if r == "point_embed.weight":
            return "SPLIT_POINT_EMBED"
        if r in ("not_a_point_embed.weight", "no_mask_embed.weight"):
            return "sam_prompt_encoder." + r
        m2 = re.fullmatch(r"mask_embed\.(conv1|layer_norm1|conv2|layer_norm2|conv3)\.(weight|bias)", r)
        if m2:
            idx = {"conv1": 0, "layer_norm1": 1, "conv2": 3, "layer_norm2": 4, "conv3": 6}[m2[1]]
            return f"sam_prompt_encoder.mask_downscaling.{idx}.{m2[2]}"
        return None
    m = re.fullmatch(r"mask_decoder\.(.+)", key)
    if m:
        r = m[1]
        if r in ("iou_token.weight", "mask_tokens.weight", "obj_score_token.weight"):
            return "sam_mask_decoder." + r
        m2 = re.fullmatch(r"(conv_s0|conv_s1)\.(weight|bias)", r)
        if m2:
            return "sam_mask_decoder." + r
        m2 = re.fullmatch(r"(upscale_conv1|upscale_layer_norm|upscale_conv2)\.(weight|bias)", r)
        if m2:
            idx = {"upscale_conv1": 0, "upscale_layer_norm": 1, "upscale_conv2": 3}[m2[1]]
            return f"sam_mask_decoder.output_upscaling.{idx}.{m2[2]}"
        m2 = re.fullmatch(r"output_hypernetworks_mlps\.(\d+)\.(.+)", r)
        if m2:
            t = _mlp_hf_to_sam2(m2[2], 3)
            return None if t is None else f"sam_mask_decoder.output_hypernetworks_mlps.{m2[1]}.{t}"
        m2 = re.fullmatch(r"iou_prediction_head\.(.+)", r)
        if m2:
            t = _mlp_hf_to_sam2(m2[1], iou_head_depth)
            return None if t is None else f"sam_mask_decoder.iou_prediction_head.{t}"
        m2 = re.fullmatch(r"pred_obj_score_head\.(.+)", r)
        if m2:
            t = _mlp_hf_to_sam2(m2[1], 3)
            return None if t is None else f"sam_mask_decoder.pred_obj_score_head.{t}"
        m2 = re.fullmatch(r"transformer\.layer_norm_final_attn\.(weight|bias)", r)
        if m2:
            return f"sam_mask_decoder.transformer.norm_final_attn.{m2[1]}"
        m2 = re.fullmatch(r"transformer\.final_attn_token_to_image\.(q_proj|k_proj|v_proj|o_proj)\.(weight|bias)", r)
        if m2:
            p = "out_proj" if m2[1] == "o_proj" else m2[1]
            return f"sam_mask_decoder.transformer.final_attn_token_to_image.{p}.{m2[2]}"
        m2 = re.fullmatch(r"transformer\.layers\.(\d+)\.(.+)", r)
        if m2:
            n, s = m2[1], m2[2]
            m3 = re.fullmatch(r"layer_norm([1-4])\.(weight|bias)", s)
            if m3:
                return f"sam_mask_decoder.transformer.layers.{n}.norm{m3[1]}.{m3[2]}"
            m3 = re.fullmatch(r"mlp\.(.+)", s)
            if m3:
                t = _mlp_hf_to_sam2(m3[1], 2)
                return None if t is None else f"sam_mask_decoder.transformer.layers.{n}.mlp.{t}"
            m3 = re.fullmatch(
                r"(self_attn|cross_attn_token_to_image|cross_attn_image_to_token)\.(q_proj|k_proj|v_proj|o_proj)"
                r"\.(weight|bias)", s)
            if m3:
                p = "out_proj" if m3[2] == "o_proj" else m3[2]
                return f"sam_mask_decoder.transformer.layers.{n}.{m3[1]}.{p}.{m3[3]}"
        return None
    return None


def sam2_to_hf(key, iou_head_depth=3):
    """HF name of an original SAM2 key, following the rules of HF's convert_sam2_to_hf.py (image path only)."""
    rules = [
        # order matters: the neck before the generic image_encoder rule, as in the converter
        (r"^image_encoder\.neck\.convs\.(\d+)\.conv\.", r"vision_encoder.neck.convs.\1."),
        (r"^image_encoder\.trunk\.", r"vision_encoder.backbone."),
        (r"^sam_prompt_encoder\.", r"prompt_encoder."),
        (r"^sam_mask_decoder\.", r"mask_decoder."),
        (r"^no_mem_embed$", r"no_memory_embedding"),
        (r"patch_embed\.proj\.", r"patch_embed.projection."),
        (r"pe_layer\.positional_encoding_gaussian_matrix", r"shared_embedding.positional_embedding"),
        (r"mask_downscaling\.0\.", r"mask_embed.conv1."),
        (r"mask_downscaling\.1\.", r"mask_embed.layer_norm1."),
        (r"mask_downscaling\.3\.", r"mask_embed.conv2."),
        (r"mask_downscaling\.4\.", r"mask_embed.layer_norm2."),
        (r"mask_downscaling\.6\.", r"mask_embed.conv3."),
        (r"output_upscaling\.0\.", r"upscale_conv1."),
        (r"output_upscaling\.1\.", r"upscale_layer_norm."),
        (r"output_upscaling\.3\.", r"upscale_conv2."),
        (r"\.out_proj\.", r".o_proj."),
        (r"\.norm", r".layer_norm"),
    ]
    k = key
    for pat, rep in rules:
        k = re.sub(pat, rep, k)
    m = re.fullmatch(r"(vision_encoder\.backbone\.blocks\.\d+\.mlp|mask_decoder\.transformer\.layers\.\d+\.mlp)"
                     r"\.layers\.([01])\.(weight|bias)", k)
    if m:
        return f"{m[1]}.{'proj_in' if m[2] == '0' else 'proj_out'}.{m[3]}"
    m = re.fullmatch(r"(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head))"
                     r"\.layers\.(\d+)\.(weight|bias)", k)
    if m:
        depth = iou_head_depth if m[1].endswith("iou_prediction_head") else 3
        i = int(m[2])
        name = "proj_in" if i == 0 else ("proj_out" if i == depth - 1 else f"layers.{i - 1}")
        return f"{m[1]}.{name}.{m[3]}"
    m = re.fullmatch(r"prompt_encoder\.point_embeddings\.(\d+)\.weight", k)
    if m:
        return "prompt_encoder.point_embed.weight"
    return k


# ----------------------------------------------------------------------------------------------------------
# Small helpers without torch
# ----------------------------------------------------------------------------------------------------------

def write_png(path, rgb_bytes, height, width):
    """8-bit RGB PNG, no interlace: written by hand so that no imaging library is needed on the host."""
    stride = 3 * width
    raw = b"".join(b"\x00" + rgb_bytes[y * stride:(y + 1) * stride] for y in range(height))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def log(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Everything below needs torch + transformers (GPU host)
# ----------------------------------------------------------------------------------------------------------

def build_config(p, attn):
    from transformers import (Sam2Config, Sam2HieraDetConfig, Sam2MaskDecoderConfig, Sam2PromptEncoderConfig,
                              Sam2VisionConfig)
    s = p["image_size"]
    # lists, never tuples: transformers 5.x validates config fields strictly
    backbone = Sam2HieraDetConfig(
        hidden_size=p["dims"][0], num_attention_heads=p["heads"][0], num_channels=3, image_size=[s, s],
        patch_kernel_size=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], query_stride=[2, 2],
        window_positional_embedding_background_size=list(p["bkg"]), num_query_pool_stages=3,
        blocks_per_stage=list(p["blocks"]), embed_dim_per_stage=list(p["dims"]),
        num_attention_heads_per_stage=list(p["heads"]), window_size_per_stage=list(p["windows"]),
        global_attention_blocks=list(p["global_blocks"]), mlp_ratio=4.0, hidden_act="gelu", layer_norm_eps=1e-6)
    vision = Sam2VisionConfig(
        backbone_config=backbone, backbone_channel_list=list(reversed(p["dims"])),
        backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
        fpn_hidden_size=p["hidden"], fpn_kernel_size=1, fpn_stride=1, fpn_padding=0, fpn_top_down_levels=[2, 3],
        num_feature_levels=3, hidden_act="gelu", layer_norm_eps=1e-6)
    prompt = Sam2PromptEncoderConfig(
        hidden_size=p["hidden"], image_size=s, patch_size=16, mask_input_channels=16, num_point_embeddings=4,
        hidden_act="gelu", layer_norm_eps=1e-6, scale=1)
    decoder = Sam2MaskDecoderConfig(
        hidden_size=p["hidden"], hidden_act="gelu", mlp_dim=p["dec_mlp"], num_hidden_layers=2,
        num_attention_heads=p["dec_heads"], attention_downsample_rate=2, num_multimask_outputs=3, iou_head_depth=3,
        iou_head_hidden_dim=p["iou_hidden"], dynamic_multimask_via_stability=True,
        dynamic_multimask_stability_delta=0.05, dynamic_multimask_stability_thresh=0.98)
    cfg = Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    if attn != "default":
        cfg._attn_implementation = attn
    return cfg


def randomize_(model, gen, residual_scale):
    """Every parameter drawn at random, scaled so activations stay O(1) (no saturated softmax / GELU): a test
    cannot pass by accident on zero biases, unit LayerNorm weights or zero position embeddings."""
    import torch
    from torch import nn

    def normal(shape, std, mean=0.0):
        return torch.randn(tuple(shape), generator=gen, dtype=torch.float32) * std + mean

    done = set()
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                fan_in = mod.weight[0].numel()
                std = 1.0 / math.sqrt(fan_in)
                if name.startswith("vision_encoder.backbone.") and (name.endswith("attn.proj")
                                                                     or name.endswith("mlp.proj_out")):
                    std *= residual_scale
                mod.weight.copy_(normal(mod.weight.shape, std))
                done.add(id(mod.weight))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias.shape, 0.1))
                    done.add(id(mod.bias))
            elif isinstance(mod, nn.ConvTranspose2d):
                # (in, out, k, k) with stride == kernel: each output pixel sees one tap per input channel
                mod.weight.copy_(normal(mod.weight.shape, 1.0 / math.sqrt(mod.weight.shape[0])))
                done.add(id(mod.weight))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias.shape, 0.1))
                    done.add(id(mod.bias))
            elif isinstance(mod, nn.LayerNorm):
                if mod.weight is not None:
                    mod.weight.copy_(normal(mod.weight.shape, 0.2, 1.0))
                    done.add(id(mod.weight))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias.shape, 0.2))
                    done.add(id(mod.bias))
            elif isinstance(mod, nn.Embedding):
                mod.weight.copy_(normal(mod.weight.shape, 1.0))
                done.add(id(mod.weight))
        for name, prm in model.named_parameters():
            if id(prm) in done:
                continue
            std = 0.5
            if not any(name.endswith(x) for x in ("pos_embed", "pos_embed_window", "no_memory_embedding")):
                log(f"WARNING: parameter {name} {tuple(prm.shape)} not of a known kind; drawn N(0, 0.5)")
            prm.copy_(normal(prm.shape, std))
            done.add(id(prm))
        # the random-Fourier matrix is a buffer (HF keeps two tied copies; SAM2 one): N(0, scale^2), scale 1
        gauss = normal(model.prompt_encoder.shared_embedding.positional_embedding.shape, 1.0)
        model.prompt_encoder.shared_embedding.positional_embedding.copy_(gauss)
        model.shared_image_embedding.positional_embedding.copy_(gauss)


def to_sam2_state(model, iou_head_depth):
    """HF state dict -> {original SAM2 key: fp32 tensor}; raises listing every key it cannot map."""
    import torch
    sd = model.state_dict()
    out, unknown, hf_of = {}, [], {}
    for k, v in sd.items():
        t = hf_to_sam2(k, iou_head_depth)
        if t is None:
            unknown.append(f"{k} {tuple(v.shape)}")
        elif t == "TIED":
            continue
        elif t == "SPLIT_POINT_EMBED":
            for i in range(v.shape[0]):
                out[f"sam_prompt_encoder.point_embeddings.{i}.weight"] = v[i:i + 1]
                hf_of[f"sam_prompt_encoder.point_embeddings.{i}.weight"] = k
        else:
            if t in out:
                raise RuntimeError(f"two HF keys map to {t}: {hf_of[t]} and {k}")
            out[t] = v
            hf_of[t] = k
    pe_key = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
    if pe_key not in out:  # a version that made the Fourier matrix a non-persistent buffer
        out[pe_key] = model.prompt_encoder.shared_embedding.positional_embedding
        log("NOTE: positional_embedding is not in HF's state dict; taken from the module")
    if unknown:
        raise RuntimeError("HF state-dict keys without a SAM2 name (update hf_to_sam2):\n  " + "\n  ".join(unknown))
    # round trip through HF's own conversion rules
    back = {sam2_to_hf(k, iou_head_depth) for k in out}
    hf_keys = {k for k in sd if hf_to_sam2(k, iou_head_depth) != "TIED"}
    if back != hf_keys:
        raise RuntimeError(f"key map does not round-trip: only HF {sorted(hf_keys - back)}, "
                           f"only mapped {sorted(back - hf_keys)}")
    g1 = model.prompt_encoder.shared_embedding.positional_embedding
    g2 = model.shared_image_embedding.positional_embedding
    if not torch.equal(g1, g2):
        raise RuntimeError("the two copies of the random-Fourier matrix differ")
    return {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in out.items()}


def extra_checkpoint_keys(gen, hidden):
    """Keys a real Sa2VA checkpoint has besides the image path (memory modules, the LLM side): the Java loader
    must ignore these, so the fixture carries a few of each kind."""
    import torch
    mem = 64 if hidden >= 64 else hidden // 2

    def r(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * 0.1

    return {
        PREFIX + "maskmem_tpos_enc": r(7, 1, 1, mem),
        PREFIX + "no_mem_pos_enc": r(1, 1, hidden),
        PREFIX + "no_obj_ptr": r(1, hidden),
        PREFIX + "mask_downsample.weight": r(1, 1, 4, 4),
        PREFIX + "mask_downsample.bias": r(1),
        PREFIX + "memory_attention.layers.0.self_attn.q_proj.weight": r(hidden, hidden),
        PREFIX + "memory_encoder.out_proj.weight": r(mem, hidden, 1, 1),
        PREFIX + "obj_ptr_proj.layers.0.weight": r(hidden, hidden),
        "text_hidden_fcs.2.weight": r(hidden, 16),
        "text_hidden_fcs.2.bias": r(hidden),
    }


def synth_image(gen, h, w):
    """A fundus-like RGB image with dark curved 'vessels' and mild noise, uint8 (h, w, 3)."""
    import torch
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.55 + 0.35 * xx, 0.25 + 0.30 * yy, 0.15 + 0.25 * (1 - xx) * yy], 0)
    for _ in range(6):
        a, b, c, ph = torch.rand(4, generator=gen).tolist()
        centre = 0.15 + 0.7 * a + 0.12 * torch.sin(2 * math.pi * ((1 + 2 * b) * xx + ph))
        width = 0.008 + 0.02 * c
        img = img * (1 - 0.6 * torch.exp(-((yy - centre) / width) ** 2))
    img = img + 0.03 * torch.randn(3, h, w, generator=gen)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()


def preprocess(img_u8, size):
    """Sa2VA's DirectResize(size) + ImageNet normalisation. PIL's bicubic (a = -0.5, antialiased) on uint8 is
    emulated with torch's antialiased bicubic (same kernel) followed by rounding to uint8 levels."""
    import torch
    import torch.nn.functional as F
    x = img_u8.permute(2, 0, 1)[None].to(torch.float32)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.round().clamp(0, 255) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess_pil(img_u8, size):
    """The exact Sa2VA path (PIL resize), when PIL and numpy are there; informational."""
    try:
        import numpy as np
        from PIL import Image
    except Exception as e:  # noqa: BLE001
        log(f"NOTE: no PIL/numpy ({e}); pixel_values_pil not written")
        return None
    import torch
    im = Image.fromarray(img_u8.numpy()).resize((size, size))  # PIL default filter for RGB: BICUBIC
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].to(torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def _field(out, name, index=None):
    """Reads a field from an HF output that may be a ModelOutput, a dict or a tuple, depending on the version."""
    v = getattr(out, name, None)
    if v is None and isinstance(out, dict):
        v = out.get(name)
    if v is None and index is not None and isinstance(out, (tuple, list)):
        v = out[index]
    if v is None:
        keys = list(out.keys()) if hasattr(out, "keys") else type(out).__name__
        raise RuntimeError(f"HF output has no '{name}' (has {keys})")
    return v


def make_inputs(p, batch, gen, orig_sizes):
    import torch
    s, c = p["image_size"], p["hidden"]
    images = [synth_image(gen, h, w) for (h, w) in orig_sizes[:batch]]
    px = torch.cat([preprocess(im, s) for im in images], 0)
    pil = [preprocess_pil(im, s) for im in images]
    inputs = {"pixel_values": px}
    pil_stats = None
    if all(x is not None for x in pil):  # only summarised: the fixture budget is small
        d = (torch.cat(pil, 0) - px).abs() * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        pil_stats = {"max_abs_uint8_levels": d.max().item(), "mean_abs_uint8_levels": d.mean().item()}
    for i, im in enumerate(images):
        inputs[f"image.{i}"] = im
    inputs["lang_embed"] = torch.randn(batch, c, generator=gen)

    def coord(n):  # points inside the model input frame [0, s)
        return (0.1 + 0.8 * torch.rand(batch, 1, n, 2, generator=gen)) * s

    inputs["points.coords"] = coord(2)
    inputs["points.labels"] = torch.tensor([[[1, 0]]] * batch, dtype=torch.int64)
    corners = coord(2)[:, :, :, :].reshape(batch, 1, 4)
    x0 = torch.minimum(corners[..., 0], corners[..., 2])
    x1 = torch.maximum(corners[..., 0], corners[..., 2])
    y0 = torch.minimum(corners[..., 1], corners[..., 3])
    y1 = torch.maximum(corners[..., 1], corners[..., 3])
    inputs["box"] = torch.stack([x0, y0, x1, y1], -1)  # (B, 1, 4) x1 y1 x2 y2
    inputs["box_points.coords"] = coord(1)
    inputs["box_points.labels"] = torch.ones(batch, 1, 1, dtype=torch.int64)
    return inputs, pil_stats


def run_pipeline(model, inputs, dtype, device, image_size, orig_sizes):
    """HF computation of every stage, composed from Sam2Model's own submodules exactly as Sam2Model.forward
    composes them, plus Sa2VA's language prompt (two not-a-point tokens + the language embedding) and Sa2VA's
    upsampling. Returns {name: tensor} and the consistency checks against Sam2Model.forward / vision_encoder."""
    import torch
    import torch.nn.functional as F
    out, checks = {}, {}
    f = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    px = f(inputs["pixel_values"])
    b = px.shape[0]
    with torch.no_grad():
        bb = model.vision_encoder.backbone(px)
        trunk = list(_field(bb, "intermediate_hidden_states", 1))
        if len(trunk) != 4:
            raise RuntimeError(f"expected 4 trunk levels, got {len(trunk)}")
        for i, t in enumerate(trunk):  # HF: (B, H, W, C); saved as SAM2's trunk returns them, (B, C, H, W)
            out[f"trunk.level{i}"] = t.permute(0, 3, 1, 2)
        neck = model.vision_encoder.neck(tuple(trunk))
        fpn, fpn_pos = list(neck[0]), list(neck[1])
        # HF's neck returns lowest resolution first; sort by size so that level i has stride 4 * 2^i
        order = sorted(range(len(fpn)), key=lambda j: -fpn[j].shape[-1])
        fpn, fpn_pos = [fpn[j] for j in order], [fpn_pos[j] for j in order]
        for i in range(len(fpn)):
            out[f"fpn.level{i}"] = fpn[i]
            out[f"fpn_pos.level{i}"] = fpn_pos[i][:1]  # the same for every image of the batch
            if fpn[i].shape[-1] != image_size // (4 * 2 ** i):
                raise RuntimeError(f"fpn level {i} has shape {tuple(fpn[i].shape)}")
        # same features through the public entry point (scalp: only the 3 finest levels are kept)
        ve = model.vision_encoder(px)
        ve_fpn = list(_field(ve, "fpn_hidden_states", 1))
        diffs = []
        for a in ve_fpn:
            match = [t for t in fpn if t.shape == a.shape]
            diffs.append((a.float() - match[0].float()).abs().max().item() if match else float("inf"))
        checks["vision_encoder_vs_composed"] = max(diffs)
        s0 = model.mask_decoder.conv_s0(fpn[0])
        s1 = model.mask_decoder.conv_s1(fpn[1])
        out["conv_s0"], out["conv_s1"] = s0, s1
        image_embed = fpn[2] + model.no_memory_embedding.view(1, -1, 1, 1)
        out["image_embed"] = image_embed
        if hasattr(model, "get_image_wide_positional_embeddings"):
            dense_pe = model.get_image_wide_positional_embeddings()
        else:  # SAM's dense PE: Fourier features of the pixel-centre grid of the embedding, (1, C, h, w)
            h, w = image_embed.shape[-2:]
            ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
            xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
            grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) = (x, y)
            dense_pe = model.shared_image_embedding(grid).permute(2, 0, 1).unsqueeze(0)
        out["dense_pe"] = dense_pe
        pe_b = dense_pe.repeat(b, 1, 1, 1)

        def decode(sparse, dense, multimask):
            r = model.mask_decoder(
                image_embeddings=image_embed, image_positional_embeddings=pe_b, sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense, multimask_output=multimask, high_resolution_features=[s0, s1])
            if isinstance(r, (tuple, list)):
                return r[0], r[1], r[3]
            return _field(r, "pred_masks"), _field(r, "iou_scores"), _field(r, "object_score_logits")

        def prompt(points, labels, boxes):
            return model.prompt_encoder(input_points=points, input_labels=labels, input_boxes=boxes,
                                        input_masks=None)

        ints = lambda t: t.to(device=device, dtype=torch.int64)  # noqa: E731
        specs = {
            # Sa2VA: no points -> one (0, 0) point with label -1, padded with a second -> two not-a-point tokens
            "lang": (torch.zeros(b, 1, 1, 2), -torch.ones(b, 1, 1, dtype=torch.int64), None, True),
            "points": (inputs["points.coords"], inputs["points.labels"], None, True),
            "points_single": (inputs["points.coords"], inputs["points.labels"], None, False),
            "box": (None, None, inputs["box"], True),
            "box_points": (inputs["box_points.coords"], inputs["box_points.labels"], inputs["box"], True),
        }
        for name, (pts, lab, box, multi) in specs.items():
            sparse, dense = prompt(None if pts is None else f(pts), None if lab is None else ints(lab),
                                   None if box is None else f(box).clone())  # HF adds 0.5 to boxes in place
            if name == "lang":
                sparse = torch.cat([sparse, f(inputs["lang_embed"]).view(b, 1, 1, -1)], dim=2)
                out["dense_no_mask"] = dense
            masks, iou, obj = decode(sparse, dense, multi)
            out[f"{name}.sparse"] = sparse
            out[f"{name}.masks"] = masks
            out[f"{name}.iou"] = iou
            out[f"{name}.object_score"] = obj
            best = iou.float().argmax(dim=-1)  # (B, P)
            out[f"{name}.best_index"] = best
            idx = best[:, :, None, None, None].expand(-1, -1, 1, masks.shape[-2], masks.shape[-1])
            out[f"{name}.best_mask"] = torch.gather(masks, 2, idx)
            if name != "lang":
                try:  # the composition above must agree with HF's own forward
                    fw = model(pixel_values=px, input_points=None if pts is None else f(pts),
                               input_labels=None if lab is None else ints(lab),
                               input_boxes=None if box is None else f(box).clone(), multimask_output=multi)
                    checks[f"forward_vs_composed.{name}"] = max(
                        (_field(fw, "pred_masks").float() - masks.float()).abs().max().item(),
                        (_field(fw, "iou_scores").float() - iou.float()).abs().max().item())
                except Exception as e:  # noqa: BLE001
                    checks[f"forward_vs_composed.{name}"] = f"error: {type(e).__name__}: {e}"
        # Sa2VA's output path: low-res logits -> image_size (bilinear) -> original size (bilinear), in fp32
        low = out["lang.best_mask"][:, 0].float()  # (B, 1, h, w)
        sq = F.interpolate(low, size=(image_size, image_size), mode="bilinear", align_corners=False)
        out["lang.upsampled_square"] = sq
        for i in range(b):
            h, w = orig_sizes[i]
            out[f"lang.upsampled.{i}"] = F.interpolate(sq[i:i + 1], size=(h, w), mode="bilinear",
                                                      align_corners=False)
    return out, checks


def rel_err(a, b):
    import torch
    a, b = a.double(), b.double()
    d = torch.linalg.vector_norm(a - b).item()
    n = torch.linalg.vector_norm(b).item()
    return d / n if n > 0 else d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny-random", choices=sorted(PRESETS))
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--seed", type=int, default=20251126)
    ap.add_argument("--batch", type=int, default=2, help="images per batch (1 or 2)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--ref-dtype", default="float64", choices=["float64", "float32"],
                    help="dtype of the HF run whose outputs are saved as the reference")
    ap.add_argument("--bf16", action="store_true", help="also run HF in bf16 and record its error")
    ap.add_argument("--save-bf16", action="store_true", help="also save HF's bf16 outputs (reference_hf_bf16)")
    ap.add_argument("--bf16-device", default=None,
                    help="device of the bf16 run (default: --device); e.g. cuda for the tiny fixture, whose "
                         "reference is computed on the CPU: the summary's hf_bfloat16_vs_ref is then HF's own bf16 "
                         "error on CUDA, the baseline of the Java bf16-on-CUDA check (Sam2TinyGpuTest)")
    ap.add_argument("--attn", default="default", choices=["default", "eager", "sdpa"])
    ap.add_argument("--residual-scale", type=float, default=1.0,
                    help="extra factor on the std of the trunk's residual-branch output projections")
    ap.add_argument("--no-extra-keys", action="store_true",
                    help="omit the memory/LLM keys that a real Sa2VA checkpoint also holds")
    ap.add_argument("--max-bytes", type=int, default=3_000_000, help="fail above this total size; 0 = no limit")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args()
    if args.batch not in (1, 2):
        ap.error("--batch must be 1 or 2")

    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import Sam2Model

    t0 = time.time()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    p = dict(PRESETS[args.config])
    os.makedirs(args.out, exist_ok=True)
    device = torch.device(args.device)
    bf16_device = torch.device(args.bf16_device or args.device)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}, config {args.config}")

    # separate streams, so that e.g. --no-extra-keys does not change the weights or the inputs
    gen = torch.Generator().manual_seed(args.seed)
    gen_extra = torch.Generator().manual_seed(args.seed + 1)
    gen_inputs = torch.Generator().manual_seed(args.seed + 2)
    cfg = build_config(p, args.attn)
    torch.manual_seed(args.seed)  # anything HF draws on its own is overwritten below, but keep it repeatable
    model = Sam2Model(cfg).eval()
    attn_impl = getattr(model.config, "_attn_implementation", None)
    randomize_(model, gen, args.residual_scale)
    n_params = sum(x.numel() for x in model.parameters())
    log(f"Sam2Model built: {n_params} parameters, attention implementation {attn_impl} ({time.time() - t0:.1f}s)")

    sam2_sd = to_sam2_state(model, 3)
    weights = {PREFIX + k: v for k, v in sam2_sd.items()}
    extra = {} if args.no_extra_keys else extra_checkpoint_keys(gen_extra, p["hidden"])
    weights.update(extra)

    orig_sizes = p["orig_sizes"]
    inputs, pil_stats = make_inputs(p, args.batch, gen_inputs, orig_sizes)
    image_size = p["image_size"]

    def run(dtype, dev=device):
        m = model.to(device=dev, dtype=dtype)
        t = time.time()
        o, c = run_pipeline(m, inputs, dtype, dev, image_size, orig_sizes)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        log(f"HF run in {dtype} on {dev}: {time.time() - t:.2f}s")
        return {k: v.detach().to("cpu") for k, v in o.items()}, c

    results, checks = {}, {}
    ref_dtype = torch.float64 if args.ref_dtype == "float64" else torch.float32
    try:
        results["ref"], checks["ref"] = run(ref_dtype)
    except Exception as e:  # noqa: BLE001
        if ref_dtype != torch.float64:
            raise
        log(f"WARNING: HF in float64 failed ({type(e).__name__}: {e}); the reference is HF float32")
        ref_dtype = torch.float32
        results["ref"], checks["ref"] = run(torch.float32)
    if ref_dtype != torch.float32:
        results["float32"], checks["float32"] = run(torch.float32)
    if args.bf16:
        results["bfloat16"], checks["bfloat16"] = run(torch.bfloat16, bf16_device)
    model.to(device="cpu", dtype=torch.float32)

    ref = results["ref"]
    summary = {
        "config_name": args.config, "preset": p, "seed": args.seed, "batch": args.batch,
        "device": str(device), "reference_dtype": str(ref_dtype).replace("torch.", ""),
        "bfloat16_device": (str(bf16_device) + (" (" + torch.cuda.get_device_name(bf16_device) + ")"
                                                if bf16_device.type == "cuda" else "")) if args.bf16 else None,
        "attn_implementation": attn_impl, "residual_scale": args.residual_scale,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": sys.version.split()[0]},
        "prefix": PREFIX, "num_parameters": n_params, "ignored_extra_keys": sorted(extra),
        "relative_error_definition": "||x - ref||_2 / ||ref||_2 over the whole tensor, in float64",
        "consistency_checks_max_abs": checks,
        "pil_resize_vs_pixel_values": pil_stats,
    }
    for name, res in results.items():
        if name == "ref":
            continue
        errs, agree = {}, {}
        for k, v in ref.items():
            if k.endswith(".best_index"):
                agree[k] = bool(torch.equal(res[k], v))
            else:
                errs[k] = rel_err(res[k], v)
        summary[f"hf_{name}_vs_ref"] = {"relative_error": errs, "same_selected_mask": agree,
                                        "max_relative_error": max(errs.values())}
        log(f"HF {name} vs reference: max relative error {max(errs.values()):.3e} "
            f"({max(errs, key=errs.get)}); selected masks agree: {all(agree.values())}")

    # How robust is the argmax-IoU selection, and are the masks non-trivial?
    stats = {}
    for pname in PROMPTS:
        iou = ref[f"{pname}.iou"].double()
        top2 = iou.topk(min(2, iou.shape[-1]), dim=-1).values
        margin = (top2[..., 0] - top2[..., -1]).min().item() if iou.shape[-1] > 1 else None
        masks = ref[f"{pname}.masks"]
        stats[pname] = {"iou": iou.flatten().tolist(), "min_top2_margin": margin,
                        "positive_fraction": (masks > 0).double().mean().item(),
                        "object_score": ref[f"{pname}.object_score"].flatten().tolist()}
        if margin is not None and margin < 1e-3:
            log(f"WARNING: {pname}: IoU top-2 margin {margin:.2e}: the selected mask is fragile")
    summary["prompt_stats"] = stats
    log("prompt stats: " + json.dumps({k: (v["min_top2_margin"], round(v["positive_fraction"], 3))
                                       for k, v in stats.items()}))

    # write
    def f32(d):
        return {k: (v if v.dtype in (torch.int64, torch.uint8) else v.to(torch.float32)).contiguous().clone()
                for k, v in d.items()}

    meta = {"format": "pt", "config": json.dumps(summary["preset"]), "seed": str(args.seed),
            "generator": "core/verification/sam2/sam2_reference.py", "config_name": args.config}
    tag = "sam2_" + args.config.replace("-", "_")
    files = {
        f"{tag}_weights.safetensors": (weights, dict(meta, prefix=PREFIX)),
        f"{tag}_inputs.safetensors": (f32(inputs), meta),
        f"{tag}_reference.safetensors": (f32(ref), dict(meta, dtype=summary["reference_dtype"])),
    }
    if args.save_bf16 and "bfloat16" in results:
        files[f"{tag}_reference_hf_bf16.safetensors"] = (f32(results["bfloat16"]), dict(meta, dtype="bfloat16"))
    for fname, (tensors, md) in files.items():
        save_file(tensors, os.path.join(args.out, fname), metadata=md)
    for i in range(args.batch):
        im = inputs[f"image.{i}"]
        write_png(os.path.join(args.out, f"{tag}_image{i}.png"), bytes(im.flatten().tolist()),
                  im.shape[0], im.shape[1])
    summary["shapes"] = {fn: {k: [str(v.dtype).replace("torch.", "")] + list(v.shape) for k, v in t.items()}
                         for fn, (t, _) in files.items()}
    summary["seconds"] = round(time.time() - t0, 1)
    summary_path = os.path.join(args.out, f"{tag}_summary.json")
    with open(summary_path, "w") as fh:
        json.dump(summary, fh, indent=1, sort_keys=True)
    sizes = {fn: os.path.getsize(os.path.join(args.out, fn)) for fn in sorted(os.listdir(args.out))
             if fn.startswith(tag)}
    total = sum(sizes.values())
    for fn, sz in sizes.items():
        log(f"  {fn}: {sz} bytes")
    log(f"total {total} bytes in {args.out} ({time.time() - t0:.1f}s)")

    bad = []
    for name, c in checks.items():
        for k, v in c.items():
            if isinstance(v, str) or v > (1e-4 if name != "bfloat16" else 5e-2):
                bad.append(f"{name}/{k}: {v}")
    if bad:
        log("CONSISTENCY CHECKS FAILED (the composed HF path differs from HF's forward):\n  " + "\n  ".join(bad))
    if args.max_bytes and total > args.max_bytes:
        log(f"SIZE LIMIT EXCEEDED: {total} > {args.max_bytes}")
        bad.append("size")
    if bad:
        sys.exit(1)
    log("OK")


if __name__ == "__main__":
    main()
