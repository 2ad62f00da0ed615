"""How faithful is an upsampler? Upsample held-out 64 px emoji to 256 px, then measure
  - round trip: PSNR between the input and the output downsampled back to 64 px (should be high),
  - reference: PSNR of the output against the real 256 px rendering, next to plain bicubic upsampling.

    python bench/upsampler_roundtrip.py --model MODEL_DIR --data data/emoji -n 8 [--grid out.png] [--no-consistency]

With `--dtypes fp32,fp32-nchw,bf16,mixed` each precision upsamples the same images from the same noise, and a line for each
precision after the first gives its paired difference against the first (mean and bootstrap sd over the images)
and the PSNR between their outputs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image

from glide.data.datasets import NpzSource
from glide.evaluation.metrics import psnr
from glide.images import grid
from glide.pipeline import Pipeline, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--steps", default="fast27")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", default=None)
    ap.add_argument("--no-consistency", action="store_true", help="plain sampling (no low-frequency projection)")
    ap.add_argument("--dtypes", default="", help="comma-separated precisions, e.g. fp32,bf16,mixed (default: the "
                    "model's); a -nchw suffix runs the convolutions on NCHW tensors instead of channels_last")
    args = ap.parse_args()

    up, _ = load_model(args.model)
    splits = ("heldout_pair", "heldout_emoji")
    big = NpzSource(f"{args.data}/emoji_256.npz", 256, splits=splits)
    idx = np.random.default_rng(args.seed).choice(len(big), args.n, replace=False)
    truth = [Image.fromarray(big.load(int(i))[0]) for i in idx]
    captions = [big.load(int(i))[1][0] for i in idx]
    low = [t.resize((64, 64), Image.BICUBIC, reducing_gap=None) for t in truth]
    outputs, scores = {}, {}
    for variant in args.dtypes.split(",") if args.dtypes else [None]:
        dtype, _, layout = (variant or "").partition("-")
        pipe = Pipeline(up, "cpu", dtype or None, upsampler=up)
        if layout == "nchw":  # the same maths in another memory layout: execution-only, a control
            pipe.upsampler.to(memory_format=torch.contiguous_format)
        pipe.low_res_consistency = not args.no_consistency
        t0 = time.perf_counter()
        out = outputs[variant] = pipe.upsample(low, captions, steps=args.steps, seed=args.seed, progress=False)
        seconds = time.perf_counter() - t0
        rows = []
        for lo, hi, tr in zip(low, out, truth):
            back = hi.resize((64, 64), Image.BICUBIC)
            bicubic = lo.resize((256, 256), Image.BICUBIC)
            rows.append({"roundtrip_psnr": psnr(np.asarray(lo), np.asarray(back)),
                         "psnr_vs_256": psnr(np.asarray(tr), np.asarray(hi)),
                         "bicubic_psnr_vs_256": psnr(np.asarray(tr), np.asarray(bicubic))})
        scores[variant] = rows
        summary = {k: round(float(np.mean([r[k] for r in rows])), 2) for k in rows[0]}
        name = pipe.precision.name + (f"-{layout}" if layout else "")
        print(json.dumps({"model": args.model, "n": args.n, "steps": args.steps, "dtype": name,
                          "low_res_consistency": pipe.low_res_consistency, "seconds": round(seconds, 1), **summary}),
              flush=True)
    (a, ra), *others = scores.items()
    for b, rb in others:
        paired = {}
        for k in ("roundtrip_psnr", "psnr_vs_256"):
            d = np.array([y[k] - x[k] for x, y in zip(ra, rb)])
            boot = d[np.random.default_rng(0).integers(0, len(d), (1000, len(d)))].mean(1)
            paired[k] = {"mean": round(float(d.mean()), 4), "bootstrap_sd": round(float(boot.std()), 4)}
        between = [psnr(np.asarray(x), np.asarray(y)) for x, y in zip(outputs[a], outputs[b])]
        print(json.dumps({"difference": f"{b} - {a}", **paired,
                          "psnr_between": {"median": round(float(np.median(between)), 2),
                                           "min": round(float(np.min(between)), 2)}}))
    if args.grid:
        tiles = [im for i, (lo, tr) in enumerate(zip(low, truth))
                 for im in (lo.resize((256, 256), Image.NEAREST), *(o[i] for o in outputs.values()), tr)]
        grid(tiles, cols=2 + len(outputs)).save(args.grid)


if __name__ == "__main__":
    main()
