"""Is a sampler setting really worse than the reference, or is it noise? Paired bootstrap over the captions of a
bench/quality_vs_steps.py run: the same resampled captions for the reference's and the setting's samples (and the
real images), so the spread is that of the difference, not of each figure.

    python bench/paired_bootstrap.py evalruns/steps --reference ddpm-100 --settings dpm++2m-sde-20,ddpm-25

Prints one JSON line per setting: FD (CLIP) and CLIP score minus the reference's, their bootstrap standard
deviations, and the share of resamples in which the setting's FD is worse; and caption retrieval: the share of
samples whose own caption is the CLIP's first (top-1) or among its first five (top-5) of the evaluated captions,
for the setting and the reference, with the bootstrap spread of the difference (and, on a first line, the real
images' own retrieval: the check's ceiling); the colour distance: how far
the mean colour of a sample's drawn (non-white) pixels is from its real image's, averaged, for the setting and the
reference, with the spread of the difference; and precision and recall (k-NN manifolds in CLIP space) with a paired
permutation test instead of a bootstrap (glide.evaluation.metrics.paired_precision_recall_test): `recall_p` is the
one-sided p-value of "the setting covers less of the real images than the reference", `precision_p` likewise.

Settings from two runs (e.g. two models with the same captions and seeds) can be compared by linking their
setting folders into one run folder. A setting or the reference may name its own guidance scale, `NAME@gSCALE`
(e.g. `--reference dpm++2m-sde-20-bf16 --settings dpm++2m-sde-20-bf16@g5`: the same sampler at guidance 5 against
`--guidance-scale`); the samples start from the same noise at every scale, so they pair.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from glide.clip.io import load_clip
from glide.evaluation.evaluate import EvalConfig, clip_image_features, clip_text_features, load_reference
from glide.evaluation.metrics import clip_score, drawn_colour, fd_from_features, paired_precision_recall_test
from glide.pipeline import default_model


def samples(run: Path, name: str, guidance: float) -> np.ndarray:
    name, _, scale = name.partition("@g")
    folder = run / name / "samples" / f"g{float(scale) if scale else guidance:g}"
    files = sorted(folder.glob("b*.npz"))
    if not files:
        raise SystemExit(f"no cached samples for {name} under {run}")
    # The sample cache keys each batch by model and settings, so one folder can hold the batches of several runs
    # (another --model with the same --out): mixing them would pair the wrong images.
    batches = [f.name.split("-")[0] for f in files]
    if len(set(batches)) != len(batches):
        raise SystemExit(f"{folder} holds batches of more than one run (another model with the same --out?); "
                         "give each model its own --out")
    return np.concatenate([np.load(f)["x"] for f in files])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="the --out folder of bench/quality_vs_steps.py")
    ap.add_argument("--reference", default="ddpm-100")
    ap.add_argument("--settings", required=True, help="comma-separated setting folders, e.g. dpm++2m-sde-20")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=32, help="the run's -n")
    ap.add_argument("--splits", default="heldout_pair,heldout_emoji", help="the run's --splits")
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--permutations", type=int, default=1000, help="swaps for the precision/recall test")
    args = ap.parse_args()

    clip = load_clip(default_model("clip"), "cpu")
    real, captions, _ = load_reference(EvalConfig(data=args.data, n=args.n, splits=tuple(args.splits.split(","))), 64)
    settings = {name: samples(args.run, name, args.guidance_scale) for name in args.settings.split(",")}
    compare(clip, real, captions, args.reference, samples(args.run, args.reference, args.guidance_scale), settings,
            args.resamples, args.permutations)


def compare(clip, real: np.ndarray, captions: list[str], reference: str, ref_x: np.ndarray,
            settings: dict[str, np.ndarray], resamples: int, permutations: int, extra=None) -> list[dict]:
    """Print (and return) one JSON line per setting against the reference, all uint8 [N, S, S, 3] samples paired
    with `real` and `captions` by index. `extra(name, x, draws)` may add a setting's own paired figures."""
    real_f, text_f = clip_image_features(clip, real), clip_text_features(clip, captions)
    ref_f = clip_image_features(clip, ref_x)
    uniq = sorted(set(captions))
    own = np.array([uniq.index(c) for c in captions])
    uniq_f = text_f[[captions.index(c) for c in uniq]]
    uniq_f = uniq_f / np.linalg.norm(uniq_f, axis=1, keepdims=True)

    def hits(f: np.ndarray, k: int) -> np.ndarray:
        sims = f @ uniq_f.T
        return (sims > sims[np.arange(len(f)), own][:, None]).sum(1) < k

    ref_hits = {k: hits(ref_f, k) for k in (1, 5)}
    # The ceiling of the retrieval check: the real images of the same captions (held out from the CLIP's training too).
    print(json.dumps({"setting": "real images", **{f"top{k}": round(float(hits(real_f, k).mean()), 4) for k in (1, 5)},
                      "captions": len(uniq)}), flush=True)
    real_colour = drawn_colour(real)
    ref_colour = np.linalg.norm(drawn_colour(ref_x) - real_colour, axis=1)
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(real), len(real)) for _ in range(resamples)]
    rows = []
    for name, x in settings.items():
        f = clip_image_features(clip, x)
        colour = np.linalg.norm(drawn_colour(x) - real_colour, axis=1)
        dcol = np.array([colour[i].mean() - ref_colour[i].mean() for i in draws])
        dfd = np.array([fd_from_features(real_f[i], f[i]) - fd_from_features(real_f[i], ref_f[i]) for i in draws])
        dcs = np.array([clip_score(f[i], text_f[i]) - clip_score(ref_f[i], text_f[i]) for i in draws])
        row = {"setting": name, "reference": reference,
               "fd_minus_reference": round(float(fd_from_features(real_f, f) - fd_from_features(real_f, ref_f)), 4),
               "fd_diff_std": round(float(dfd.std()), 4), "share_fd_worse": round(float((dfd > 0).mean()), 3),
               "clip_minus_reference": round(float(clip_score(f, text_f) - clip_score(ref_f, text_f)), 3),
               "clip_diff_std": round(float(dcs.std()), 3),
               **{key: value for k in (1, 5) for key, value in retrieval_row(hits(f, k), ref_hits[k], draws, k).items()},
               "colour_distance": round(float(colour.mean()), 2),
               "colour_distance_reference": round(float(ref_colour.mean()), 2),
               "colour_diff_std": round(float(dcol.std()), 2),
               **{key: round(v, 4) for key, v in paired_precision_recall_test(real_f, f, ref_f, permutations).items()},
               **(extra(name, x, draws) if extra else {}),
               "captions": len(uniq)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def retrieval_row(h: np.ndarray, ref: np.ndarray, draws: list[np.ndarray], k: int) -> dict:
    diff = np.array([h[i].mean() - ref[i].mean() for i in draws])
    return {f"top{k}": round(float(h.mean()), 4), f"top{k}_reference": round(float(ref.mean()), 4),
            f"top{k}_diff_std": round(float(diff.std()), 4)}


if __name__ == "__main__":
    main()
