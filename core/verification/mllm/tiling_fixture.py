#!/usr/bin/env python3
"""Dynamic-tiling and PIL-resize fixture for dev.sa2va.mllm.DynamicTiling.

Sa2VA (InternVL's dynamic_preprocess, max_num=12, use_thumbnail=True) chooses a grid of 448-px tiles from
the aspect ratio, resizes with PIL's default filter (BICUBIC, antialiased, 8-bit) and crops row-major; the
thumbnail is the original image resized to 448x448 and comes last. Then ToTensor (/255) and ImageNet
Normalize, in float32. This script re-states those steps (sa2va-reference.md §2.1) with PIL + numpy only
(no torch/torchvision needed: ToTensor/Normalize are single correctly-rounded float32 ops, which numpy
reproduces bit for bit) and records:

  tiling_grids.json        {"candidates": [[i, j], ...] in Sa2VA's iteration order,
                            "cases": [{"width", "height", "grid": [i, j], "tiles"}]}  (many sizes, incl. ties)
  resize_src_<name>.png    deterministic synthetic RGB sources (smooth shading, thin "vessels", a checker)
  resize_<name>_<W>x<H>.png  PIL Image.resize(src, (W, H)) with the default filter, as Sa2VA calls it
  resize_cases.json        [{"source", "width", "height", "output"}]
  tiles_vessels.safetensors Sa2VA preprocessing of resize_src_vessels.png (600x400 -> grid 3x2 + thumbnail):
                            "pixel_values_corner64" [7, 3, 64, 64] float32 = the normalised top-left 64x64
                            corner of each tile (metadata: grid, tile_size)

Usage: python3 tiling_fixture.py OUT_DIR [--tile-size 448]
"""
import argparse
import json
import os

import numpy as np
from PIL import Image
import PIL

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def candidate_grids(min_num=1, max_num=12):
    # Same construction as InternVL/Sa2VA: a set (CPython's order for small int tuples is fixed, hashes of
    # ints are not randomised) sorted by area with a stable sort.
    target = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                 if min_num <= i * j <= max_num)
    return sorted(target, key=lambda x: x[0] * x[1])


def closest_grid(aspect, candidates, width, height, image_size):
    best_diff = float("inf")
    best = (1, 1)
    area = width * height
    for ratio in candidates:
        diff = abs(aspect - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff = diff
            best = ratio
        elif diff == best_diff:
            if area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
                best = ratio
    return best


def dynamic_preprocess(image, image_size, candidates):
    w, h = image.size
    grid = closest_grid(w / h, candidates, w, h, image_size)
    tw, th = image_size * grid[0], image_size * grid[1]
    resized = image.resize((tw, th))
    tiles = []
    cols = tw // image_size
    for k in range(grid[0] * grid[1]):
        box = ((k % cols) * image_size, (k // cols) * image_size,
               (k % cols + 1) * image_size, (k // cols + 1) * image_size)
        tiles.append(resized.crop(box))
    if len(tiles) != 1:
        tiles.append(image.resize((image_size, image_size)))
    return grid, tiles


def normalise(tile):
    x = np.asarray(tile.convert("RGB"), dtype=np.uint8).astype(np.float32)
    x = x / np.float32(255.0)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def synthetic(name, w, h):
    """Deterministic test pictures that stress the resampler but still compress well as PNG."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if name == "shade":
        r = 127.5 + 127.5 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
        g = 255.0 * xx / max(w - 1, 1)
        b = 255.0 * yy / max(h - 1, 1)
        img = np.stack([r, g, b], -1)
    elif name == "vessels":
        # dark background, thin bright curves of 1-3 px: the structures that antialiasing smears
        img = np.zeros((h, w, 3))
        img[..., 0] = 40 + 30 * yy / h
        img[..., 1] = 20
        img[..., 2] = 10
        for k in range(7):
            cy = h * (0.15 + 0.11 * k) + 0.08 * h * np.sin(xx / (17.0 + 9 * k))
            width = 0.6 + 0.4 * k
            d = np.abs(yy - cy)
            a = np.clip(width - d + 0.5, 0, 1)
            img = img * (1 - a[..., None]) + a[..., None] * np.array([230.0, 190.0 - 20 * k, 60.0])
    elif name == "checker":
        c = ((xx // 3 + yy // 3) % 2) * 255.0
        img = np.stack([c, 255.0 - c, np.full_like(c, 128.0)], -1)
    else:
        raise ValueError(name)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--tile-size", type=int, default=448)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    S = args.tile_size

    cands = candidate_grids()
    sizes = [(1024, 1024), (448, 448), (1, 1), (640, 480), (480, 640), (1920, 1080), (1080, 1920), (333, 517),
             (100, 40), (4000, 300), (300, 4000), (565, 584), (2000, 1000), (1000, 2000), (1500, 1000),
             (1250, 1000), (560, 448), (448, 560), (896, 448), (224, 224), (5000, 5000), (3, 2), (5, 4)]
    # exact ties between two candidate ratios (|a - r1| == |a - r2|) at small and large areas
    for a_num, a_den in [(5, 4), (3, 4), (7, 4), (5, 2), (5, 6), (7, 6), (9, 4), (7, 12)]:
        for scale in (1, 50, 200, 600):
            sizes.append((a_num * scale, a_den * scale))
    rng = np.random.RandomState(7)
    for _ in range(300):
        sizes.append((int(rng.randint(1, 5000)), int(rng.randint(1, 5000))))
    cases = []
    for (w, h) in sizes:
        g = closest_grid(w / h, cands, w, h, S)
        n = g[0] * g[1]
        cases.append({"width": w, "height": h, "grid": list(g), "tiles": n + (1 if n != 1 else 0)})
    with open(os.path.join(args.out_dir, "tiling_grids.json"), "w") as f:
        json.dump({"tile_size": S, "min_num": 1, "max_num": 12, "use_thumbnail": True,
                   "candidates": [list(c) for c in cands], "cases": cases}, f, indent=None)

    sources = {"shade": (517, 333), "vessels": (600, 400), "checker": (97, 61)}
    resize_targets = {"shade": [(448, 448), (896, 448), (200, 150), (1034, 666)],
                      "vessels": [(448, 448), (1344, 896), (300, 200), (150, 100)],
                      "checker": [(448, 448), (50, 31), (194, 122), (97, 200)]}
    rcases = []
    for name, (w, h) in sources.items():
        src = synthetic(name, w, h)
        src_file = "resize_src_%s.png" % name
        src.save(os.path.join(args.out_dir, src_file), optimize=True)
        for (tw, th) in resize_targets[name]:
            out = src.resize((tw, th))
            of = "resize_%s_%dx%d.png" % (name, tw, th)
            out.save(os.path.join(args.out_dir, of), optimize=True)
            rcases.append({"source": src_file, "width": tw, "height": th, "output": of})
    with open(os.path.join(args.out_dir, "resize_cases.json"), "w") as f:
        json.dump({"pillow_version": PIL.__version__, "filter": "PIL default for RGB (BICUBIC, antialiased)",
                   "cases": rcases}, f, indent=1)

    # One full Sa2VA preprocessing, for the tile order, crop boxes, thumbnail and normalisation.
    src = synthetic("vessels", 600, 400)
    grid, tiles = dynamic_preprocess(src, S, cands)
    # Tiles themselves are crops of resize_vessels_1344x896.png plus resize_vessels_448x448.png (thumbnail);
    # the normalised values are kept for the top-left 64x64 corner of every tile only (size).
    px = np.ascontiguousarray(np.stack([normalise(t) for t in tiles])[:, :, :64, :64])
    from safetensors.numpy import save_file
    save_file({"pixel_values_corner64": px}, os.path.join(args.out_dir, "tiles_vessels.safetensors"),
              metadata={"source": "resize_src_vessels.png", "grid": "%d,%d" % grid, "tile_size": str(S),
                        "pillow_version": PIL.__version__})
    print("tiling: %d grid cases, %d resize cases, vessels 600x400 -> grid %s + thumbnail = %d tiles (Pillow %s)"
          % (len(cases), len(rcases), grid, len(tiles), PIL.__version__))


if __name__ == "__main__":
    main()
