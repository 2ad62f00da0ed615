"""Inpainting quality of sampler settings, paired: held-out emoji with the middle of the tile erased (a centred box
of half the side, where the object is) are repainted from their own caption, at every setting from the same noise,
with `glide inpaint`'s defaults otherwise (the bundled base, its guidance scale, sampler and precision). The
repainted images are scored by bench/paired_bootstrap.py's comparison (FD in CLIP space against the real images,
CLIP score, caption retrieval, colour distance, precision/recall with a paired permutation test), plus the PSNR
of the repainted region against the real art, with the bootstrap spread of its difference.

    python bench/inpaint_quality.py --n 128 --reference 20 --settings 15,15@i0.5-1e9 --out evalruns/inpaint

Two models at the same setting: `--reference-model` repaints the reference (its file is OUT/reference-SPEC.npz),
`--model` the settings, e.g. a guidance-distilled base against the base it was distilled from:

    python bench/inpaint_quality.py --model my-distilled-base --reference-model bundled:base \
        --reference 20@i0.5-1e9 --settings 20@i0.5-1e9 --out evalruns/inpaint-distilled

A setting is STEPS[@iLOW-HIGH]: the step count, and optionally classifier-free guidance only where the noise level
sigma lies in (LOW, HIGH] (glide.guidance.noise_interval). Each setting's repainted images are cached as
OUT/NAME.npz, so a rerun scores without sampling.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from glide import defaults, hooks
from glide.clip.io import load_clip
from glide.evaluation.evaluate import EvalConfig, load_reference
from glide.evaluation.metrics import psnr
from glide.images import from_uint8, to_uint8
from glide.pipeline import Pipeline, default_model

sys.path.insert(0, str(Path(__file__).parent))
from paired_bootstrap import compare  # noqa: E402


def parse_setting(spec: str) -> tuple[str, tuple[float, float] | None]:
    steps, _, interval = spec.partition("@i")
    if not steps.isdigit() or (interval and interval.count("-") != 1):
        raise SystemExit(f"a setting is STEPS[@iLOW-HIGH], e.g. 15@i0.5-1e9; got {spec!r}")
    return steps, (tuple(float(v) for v in interval.split("-")) if interval else None)


def centre_keep(size: int) -> torch.Tensor:
    """1 = keep, 0 = repaint: everything but a centred box of half the side."""
    keep = torch.ones(1, 1, size, size)
    keep[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    return keep


def repaint(pipe: Pipeline, real: np.ndarray, captions: list[str], steps: str, interval, batch_size: int) -> np.ndarray:
    pipe.guidance_interval = interval
    keep = centre_keep(real.shape[1])
    out = []
    for b, s in enumerate(tqdm(range(0, len(real), batch_size), desc=f"inpaint {steps} steps", unit="batch")):
        img = from_uint8(real[s : s + batch_size]).to(pipe.device)
        known = {"inpaint_image": img, "inpaint_mask": keep.expand(len(img), -1, -1, -1).to(pipe.device)}
        x = pipe.sample(captions[s : s + batch_size], guidance_scale=defaults.INPAINT_GUIDANCE, steps=steps,
                        sampler=defaults.SAMPLER, generator=pipe.generator(100_003 * 7 + b), inputs=known,
                        denoised_fn=hooks.keep_known(known))
        out.append(to_uint8(x).numpy())
    return np.concatenate(out)


def region_psnr(x: np.ndarray, real: np.ndarray) -> np.ndarray:
    """PSNR of each image's repainted box against the real art, [N]."""
    size = real.shape[1]
    box = (slice(None), slice(size // 4, 3 * size // 4), slice(size // 4, 3 * size // 4))
    return psnr(x[box], real[box], per_image=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="base model with inpainting inputs (default: the bundled one)")
    ap.add_argument("--reference-model", default=None,
                    help="the model that repaints the reference (default: --model): two models at one setting")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--splits", default="heldout_pair,heldout_emoji")
    ap.add_argument("--reference", default=str(defaults.STEPS), help="the setting the others are paired with")
    ap.add_argument("--settings", required=True, help="comma-separated settings, STEPS[@iLOW-HIGH]")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("evalruns/inpaint"))
    args = ap.parse_args()

    pipe = Pipeline.from_pretrained(args.model or default_model("base"))
    if not pipe.cfg.inpaint:
        raise SystemExit(f"{args.model} has no inpainting inputs")
    real, captions, _ = load_reference(EvalConfig(data=args.data, n=args.n, splits=tuple(args.splits.split(","))),
                                       pipe.cfg.unet.image_size)
    args.out.mkdir(parents=True, exist_ok=True)
    ref_pipe = Pipeline.from_pretrained(args.reference_model) if args.reference_model else pipe

    def made_by(p: Pipeline, spec: str, path: Path) -> np.ndarray:
        if path.is_file():
            return np.load(path)["x"]
        t0 = time.perf_counter()
        x = repaint(p, real, captions, *parse_setting(spec), args.batch_size)
        print(f"{path.stem}: {len(real)} repainted in {time.perf_counter() - t0:.0f} s", flush=True)
        np.savez(path.with_suffix(".tmp.npz"), x=x)
        path.with_suffix(".tmp.npz").replace(path)
        return x

    prefix = "reference-" if args.reference_model else ""
    reference = made_by(ref_pipe, args.reference, args.out / f"{prefix}{args.reference}.npz")
    made = {s: made_by(pipe, s, args.out / f"{s}.npz") for s in args.settings.split(",")}
    ref_psnr = region_psnr(reference, real)

    def psnr_row(name, x, draws):
        mine = region_psnr(x, real)
        diff = np.array([mine[i].mean() - ref_psnr[i].mean() for i in draws])
        return {"region_psnr": round(float(mine.mean()), 3), "region_psnr_reference": round(float(ref_psnr.mean()), 3),
                "region_psnr_diff_std": round(float(diff.std()), 3)}

    clip = load_clip(default_model("clip"), "cpu")
    compare(clip, real, captions, prefix + args.reference, reference, made, args.resamples, args.permutations,
            extra=psnr_row)


if __name__ == "__main__":
    main()
