"""What filtering the training data does to a model: sample the same prompts, seeds and settings from models
trained on filtered and unfiltered data, and score the samples with a CLIP, per prompt category.

    python bench/filter_compare.py unfiltered=runs-exported/unfiltered filtered=runs-exported/filtered \\
        --policy configs/filter/emoji.toml --out docs/results/filter_compare

For each model and prompt: the mean CLIP score (bundled noised CLIP, t = 0, 100 x cosine) of the samples with
their prompt, and the share of samples the policy's CLIP rule would remove (its zero-shot "people" judgement).
Writes one JSON line per (model, prompt) to OUT.jsonl and a grid per model (a row per prompt) to OUT_NAME.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from glide.clip import clip_score, load_clip
from glide.data.policy import ClipJudge, load_policy
from glide.images import grid, save_atomic, to_pil, to_uint8
from glide.pipeline import Pipeline, default_model

PROMPTS = {  # category -> prompts; the first three categories are what the example policy removes
    "people": ["man, twemoji style", "woman, twemoji style", "person running, twemoji style",
               "woman, openmoji style"],
    "body parts": ["waving hand, twemoji style", "thumbs up, twemoji style"],
    "weapons": ["dagger, twemoji style", "bomb, twemoji style"],
    "kept (control)": ["red apple, twemoji style", "red heart, twemoji style", "sun, twemoji style",
                       "banana, twemoji style"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", metavar="NAME=DIR")
    ap.add_argument("--policy", default="configs/filter/emoji.toml", help="its first clip rule judges 'people'")
    ap.add_argument("--n", type=int, default=8, help="samples per prompt")
    ap.add_argument("--steps", default="20")
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="filter_compare")
    args = ap.parse_args()
    clip = load_clip(default_model("clip"))
    rule = next(r for r in load_policy(args.policy).rules if r.kind == "clip")
    judge = ClipJudge(rule, clip)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for spec in args.models:
        name, _, folder = spec.partition("=")
        pipe = Pipeline.from_pretrained(folder, device="cpu")
        tiles = []
        for category, prompts in PROMPTS.items():
            for p in prompts:
                x = pipe.sample([p] * args.n, guidance_scale=args.guidance_scale, steps=args.steps,
                                sampler="dpm++2m-sde", generator=pipe.generator(args.seed), progress=False)
                score = clip_score(clip, x.float(), p)
                flagged = judge(to_uint8(x).numpy()) > rule.threshold
                row = {"model": name, "category": category, "prompt": p, "n": args.n,
                       "clip_score": round(float(score.mean()), 3), "clip_score_sd": round(float(score.std()), 3),
                       "flagged_as_people": round(float(flagged.mean()), 3)}
                lines.append(row)
                print(json.dumps(row), flush=True)
                tiles += to_pil(x)
        save_atomic(grid(tiles, cols=args.n), out.with_name(f"{out.name}_{name}.png"))
    with open(out.with_suffix(".jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in lines)
    for name in dict.fromkeys(r["model"] for r in lines):
        for category in PROMPTS:
            rows = [r for r in lines if r["model"] == name and r["category"] == category]
            print(f"{name:12s} {category:15s} CLIP score {np.mean([r['clip_score'] for r in rows]):6.2f}  "
                  f"flagged as people {np.mean([r['flagged_as_people'] for r in rows]):.2f}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
