"""Does a base model use the object's name in its caption, or only the art style? Two probes on the recipe study's
slice (bench/recipe_slice.py: 128 object concepts, three training styles each):

1. **Name swap.** The x_0-prediction error (bench/denoising_error.py: same images, timesteps and noise for every
   caption set) on one training image per concept, captioned four ways: empty, its own caption, another concept's
   name in the same style, and the style alone. A model that uses the name predicts better with its own caption
   than with another concept's; one that uses only the style predicts the same with all three.
2. **Pooled caption embedding.** The vector added to the timestep embedding (the text transformer's last
   position, as in GLIDE) for all 384 training captions of the slice: mean cosine similarity between captions of
   the same concept in other styles, and of other concepts in the same style; and whether each caption's nearest
   neighbour shares its concept or its style.

    python bench/recipe_slice.py --data data/emoji --out data/study     # once
    python bench/caption_probe.py bundled:base --json docs/results/caption_probe.jsonl

About four minutes for the bundled base on 2 cores of an AMD EPYC Zen 3 (fp32); 8 s for a 32 px study model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from denoising_error import denoising_error  # noqa: E402

from glide.data.datasets import open_source  # noqa: E402
from glide.pipeline import Pipeline  # noqa: E402
from glide.runtime import cpu_description  # noqa: E402
from glide.training.tasks import to_tensor  # noqa: E402

TIMESTEPS = [700, 900, 950]


def name_and_style(caption: str) -> tuple[str, str]:
    """"red apple, twemoji style" -> ("red apple", "twemoji style")."""
    name, style = caption.rsplit(", ", 1)
    return name, style


def swapped_names(captions: list[str], seed: int = 0) -> list[str]:
    """Each caption with another concept's name, in its own style."""
    parts = [name_and_style(c) for c in captions]
    rng = np.random.default_rng(seed)
    out = []
    for name, style in parts:
        others = [n for n, s in parts if s == style and n != name]
        out.append(f"{others[rng.integers(len(others))]}, {style}")
    return out


def embedding_structure(pooled: torch.Tensor, captions: list[str]) -> dict[str, float]:
    parts = [name_and_style(c) for c in captions]
    names, styles = np.array([p[0] for p in parts]), np.array([p[1] for p in parts])
    f = torch.nn.functional.normalize(pooled.float(), dim=1)
    sim = (f @ f.T).numpy()
    other = ~np.eye(len(captions), dtype=bool)
    same_name = (names[:, None] == names[None]) & other
    same_style = (styles[:, None] == styles[None]) & (names[:, None] != names[None])
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(1)
    return {"cos_same_object_other_style": round(float(sim[same_name].mean()), 4),
            "cos_same_style_other_object": round(float(sim[same_style].mean()), 4),
            "nearest_same_object": round(float((names[nearest] == names).mean()), 4),
            "nearest_same_style": round(float((styles[nearest] == styles).mean()), 4)}


@torch.no_grad()
def probe(spec: str, data: Path) -> dict:
    pipe = Pipeline.from_pretrained(spec, device="cpu", dtype="fp32")
    src = open_source(str(data / "slice_64.npz"), pipe.cfg.unet.image_size)
    captions = [src.caption(i) for i in range(len(src))]
    first = {}
    for i, c in enumerate(captions):  # one training image per concept: its first style
        first.setdefault(name_and_style(c)[0], i)
    idx = list(first.values())
    x0 = to_tensor(np.stack([src.load(i)[0] for i in idx]), torch.device("cpu"))
    own = [captions[i] for i in idx]
    t0 = time.perf_counter()
    row = {"model": spec, "images": len(idx)}
    base = denoising_error(pipe, x0, own, TIMESTEPS)
    swap = denoising_error(pipe, x0, swapped_names(own), TIMESTEPS, uncond=False)
    style = denoising_error(pipe, x0, [name_and_style(c)[1] for c in own], TIMESTEPS, uncond=False)
    for t in TIMESTEPS:
        row[f"t{t}"] = {"empty": base[f"uncond_t{t}"], "own caption": base[f"cond_t{t}"],
                        "other object, same style": swap[f"cond_t{t}"], "style alone": style[f"cond_t{t}"]}
    row["pooled"] = embedding_structure(pipe.encode(captions).pooled, captions)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["device"] = cpu_description()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=["bundled:base"], help="base models (default: bundled:base)")
    ap.add_argument("--data", default="data/study", help="bench/recipe_slice.py's output folder")
    ap.add_argument("--json", help="append one JSON line per model to this file")
    args = ap.parse_args()
    for spec in args.models:
        row = probe(spec, Path(args.data))
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
