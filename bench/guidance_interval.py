"""Classifier-free guidance in a limited interval of noise levels (Kynkäänniemi et al. 2024): guide only at model
timesteps LO..HI and run the conditional model alone elsewhere, which halves the rows of those steps. A speed
lever for the CPU if it costs no quality; this measures it with the same captions, seeds and batching as
bench/quality_vs_steps.py, so bench/paired_bootstrap.py can pair it with that script's samples.

    python bench/guidance_interval.py --lo 200 --hi 870 --out evalruns/gi          # samples in evalruns/gi/gi
    python bench/paired_bootstrap.py RUN --reference FULL --settings gi --n 128     # after linking both folders

The default interval is the one that paper found best for EDM2, sigma in (0.28, 5.42], mapped to the cosine
schedule's timesteps; with 20 respaced steps it guides 13 of them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from glide import guidance
from glide.clip.io import load_clip
from glide.evaluation.evaluate import EvalConfig, Scorer, default_cache_dir, evaluate, model_key
from glide.pipeline import Pipeline, default_model


def limited(lo: float, hi: float, counts: dict):
    """A drop-in for guidance.classifier_free that guides only at timesteps in [lo, hi]."""
    full = guidance.classifier_free

    def classifier_free(model, cond, uncond, scale):
        both, plain = full(model, cond, uncond, scale), guidance.conditional(model, cond)

        def denoise(x, t):
            inside = lo <= float(t.flatten()[0]) <= hi  # every row of a sampler step shares its timestep
            counts["guided" if inside else "conditional only"] += 1
            return (both if inside else plain)(x, t)

        return denoise

    return classifier_free


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="base model (default: the bundled one)")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--lo", type=float, default=200)
    ap.add_argument("--hi", type=float, default=870)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--steps", default="20")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="evalruns/gi")
    args = ap.parse_args()

    counts = {"guided": 0, "conditional only": 0}
    guidance.classifier_free = limited(args.lo, args.hi, counts)  # the pipeline looks it up at each call
    pipe = Pipeline.from_pretrained(args.model or default_model("base"), dtype=args.dtype)
    clip_dir = default_model("clip")
    scorer = Scorer(load_clip(clip_dir, pipe.device), None, "", model_key(clip_dir), default_cache_dir())
    cfg = EvalConfig(data=args.data, n=args.n, guidance_scales=(3.0,), steps=args.steps, sampler="dpm++2m-sde",
                     batch_size=args.batch_size)
    t0 = time.perf_counter()
    row = evaluate(pipe, scorer, cfg, Path(args.out) / "gi")[1]
    print(json.dumps({"lo": args.lo, "hi": args.hi, "dtype": args.dtype, **row, "model_calls": counts,
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
