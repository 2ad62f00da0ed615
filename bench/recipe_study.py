"""Which training recipe learns captioned appearance fastest on a CPU? Short runs with equal budgets on the
study slice (bench/recipe_slice.py: 128 emoji concepts, 384 training images, 128 held-out pairs), each scored
three ways (docs/training.md, "Which recipe learns most per unit of compute"):

  - held-out denoising error: x_0-prediction MSE on the held-out pairs at t = 300/500/700/900, with and without
    the caption (bench/denoising_error.py); `gain` = uncond - cond at t = 700, what the caption is worth;
  - caption retrieval: two samples per study caption (default sampler, steps and guidance), embedded by the
    bundled noised CLIP at t = 0; top-1/top-5 = share of samples whose own caption is among the CLIP's best
    1/5 of the 128 study captions (chance 0.8% / 3.9%). The real training images give the CLIP's ceiling;
  - a grid of the first 16 captions' first samples, to look at.

    python bench/recipe_study.py train bytes gpt2 ...   # one `glide train` + `glide export` per recipe
    python bench/recipe_study.py eval bytes gpt2 ...    # scores -> RUNS/NAME/scores.json, RUNS/NAME/grid.png
    python bench/recipe_study.py ceiling                # the CLIP on real images
    python bench/recipe_study.py table                  # the markdown table of every scored recipe
    python bench/recipe_study.py commands               # the glide train command of each recipe

Budgets are counted in images seen, so a run's result does not depend on what else shares the CPU; the
wall-clock of each run (one thread) is recorded beside it. Recipes that change the cost per image (resolution,
width and depth) say so in their note.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BASE = HERE / "recipes" / "base.toml"

UNET32 = {"image_size": 32, "channel_mult": [1, 1, 2, 2], "attention_resolutions": [16, 8]}
GPT2_TEXT = {"tokenizer": "gpt2", "context": 32}
IMAGES = 16_000  # images seen per recipe, at batch 8: 2,000 steps

# name -> (what it tests, `--set` overrides of bench/recipes/base.toml, images seen)
RECIPES: dict[str, tuple[str, dict, int]] = {
    "bytes": ("baseline: 32 px, byte tokens, batch 8, lr 1e-3, Min-SNR-5", {"model": {"unet": UNET32}}, IMAGES),
    "gpt2": ("GPT-2 BPE pruned to the captions' tokens (fit_vocab)",
             {"model": {"unet": UNET32, "text": GPT2_TEXT}, "fit_vocab": True}, IMAGES),
    "v": ("v-prediction with v's own MSE (no Min-SNR)", {"model": {"unet": UNET32, "prediction": "v"},
                                                       "snr_gamma": 0.0}, IMAGES),
    "v-minsnr": ("v-prediction with Min-SNR-5", {"model": {"unet": UNET32, "prediction": "v"}}, IMAGES),
    "v-gpt2": ("v-prediction (v's MSE) and the pruned GPT-2 BPE together",
               {"model": {"unet": UNET32, "text": GPT2_TEXT, "prediction": "v"}, "fit_vocab": True, "snr_gamma": 0.0},
               IMAGES),
    "no-minsnr": ("unweighted L_simple (GLIDE's loss)", {"model": {"unet": UNET32}, "snr_gamma": 0.0}, IMAGES),
    "lr3e-4": ("learning rate 3e-4", {"model": {"unet": UNET32}, "lr": 3e-4}, IMAGES),
    "batch32": ("batch 32, lr 2e-3 (sqrt scaling): 4x fewer, larger steps",
                {"model": {"unet": UNET32}, "batch_size": 32, "lr": 2e-3}, IMAGES),
    "inpaint-mixed": ("inpainting mixed in from the start (half the examples masked)",
                      {"model": {"unet": UNET32}, "kind": "inpaint", "p_unmasked": 0.5}, IMAGES),
    # Both about 4x the baseline's FLOPs per image, so a quarter of its images: equal FLOPs all round (on a CPU
    # they take about 2x the baseline's time per image: small convolutions are not FLOP-bound).
    "wide": ("width: 64 channels, 1 block per level; 1/4 of the images (equal FLOPs)",
             {"model": {"unet": {**UNET32, "channels": 64}}}, IMAGES // 4),
    "deep": ("depth: 32 channels, 4 blocks per level; 1/4 of the images (equal FLOPs)",
             {"model": {"unet": {**UNET32, "num_res_blocks": 4}}}, IMAGES // 4),
    "64px": ("64 px base, 1/4 of the images (4x the FLOPs per image: equal FLOPs)",
             {"model": {"unet": {**UNET32, "image_size": 64}}}, IMAGES // 4),
}


# Scored for reference, not trained here: the bundled base as shipped (docs/models.md has its training). The slice's
# concepts are in its training data, so its samples of their captions are of seen (emoji, style) pairs.
REFERENCE = {"bundled": ("the bundled base as shipped (stage 5): 64 px, 23.7M parameters, all the emoji data",
                         "~1,380,000")}


def run_dir(args, name: str) -> Path:
    return Path(args.runs) / name


def train_command(args, name: str) -> list[str]:
    _, sets, images = RECIPES[name]
    batch = sets.get("batch_size", 8)
    cmd = [sys.executable, "-m", "glide", "train", str(BASE), "--data", str(Path(args.data) / "slice_64.npz"),
           "--out", str(run_dir(args, name) / "run"), "--max-steps", str(images // batch)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return cmd


def shown(cmd: list[str]) -> str:
    words = ["glide" if w == "-m" else w for w in cmd[1:] if w != "glide" or cmd[cmd.index(w) - 1] != "-m"]
    return " ".join(shlex.quote(w) for w in words)


def cmd_train(args) -> None:
    for name in args.names:
        out = run_dir(args, name)
        if (out / "model" / "config.json").is_file():
            print(f"{name}: already trained ({out / 'model'})")
            continue
        cmd = train_command(args, name)
        print(f"{name}: {shown(cmd)}", flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        subprocess.run([sys.executable, "-m", "glide", "export", str(out / "run"), "--out", str(out / "model")],
                       check=True, stdout=subprocess.DEVNULL)
        (out / "train.json").write_text(json.dumps({"seconds": round(seconds, 1), "command": shown(cmd),
                                                    "images": RECIPES[name][2]}) + "\n")
        print(f"{name}: trained in {seconds / 60:.1f} min", flush=True)


def _clip():
    from glide.clip.io import load_clip
    from glide.pipeline import default_model

    return load_clip(default_model("clip"))


def caption_ranks(clip, images: np.ndarray, labels: np.ndarray, captions: list[str]) -> np.ndarray:
    """Each image's own caption's rank (0 = best) among `captions` by the CLIP's similarity; labels[i] indexes
    image i's own caption."""
    import torch
    from PIL import Image

    from glide.evaluation.evaluate import clip_image_features, clip_text_features

    size = clip.cfg.image_size
    if images.shape[1] != size:  # a 32 px sample is shown to the 64 px CLIP enlarged, as a user would see it
        images = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])
    sims = torch.from_numpy(clip_image_features(clip, images)) @ torch.from_numpy(clip_text_features(clip, captions)).T
    return (sims > sims[torch.arange(len(labels)), torch.from_numpy(labels)][:, None]).sum(1).numpy()


def retrieval(clip, images: np.ndarray, labels: np.ndarray, captions: list[str]) -> dict[str, float]:
    """Share of images whose own caption (index labels[i]) is the CLIP's best / among its best five."""
    rank = caption_ranks(clip, images, labels, captions)
    return {"top1": round(float((rank < 1).mean()), 4), "top5": round(float((rank < 5).mean()), 4)}


def cmd_ceiling(args) -> None:
    from PIL import Image

    from glide.data.datasets import open_source

    captions = json.loads((Path(args.data) / "captions.json").read_text())
    src = open_source(str(Path(args.data) / "slice_64.npz"), 64)
    index = {src.caption(i): i for i in range(len(src))}
    images = np.stack([src.load(index[c])[0] for c in captions])
    clip = _clip()
    row = {"real 64 px": retrieval(clip, images, np.arange(len(captions)), captions)}
    small = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.BICUBIC)) for im in images])
    row["real 32 px"] = retrieval(clip, small, np.arange(len(captions)), captions)
    print(json.dumps(row))
    (Path(args.runs) / "ceiling.json").write_text(json.dumps(row) + "\n")


def cmd_eval(args) -> None:
    import torch
    from PIL import Image

    sys.path.insert(0, str(HERE))
    from denoising_error import denoising_error, heldout

    from glide import defaults
    from glide.images import to_uint8
    from glide.pipeline import Pipeline

    captions = json.loads((Path(args.data) / "captions.json").read_text())
    clip = _clip()
    for name in args.names:
        out = run_dir(args, name)
        out.mkdir(parents=True, exist_ok=True)
        pipe = Pipeline.from_pretrained("bundled:base" if name in REFERENCE else out / "model")
        size = pipe.model.cfg.unet.image_size
        x0, held_caps = heldout(str(Path(args.data) / "slice_64.npz"), size, 128)
        row = {"recipe": name, **denoising_error(pipe, x0, held_caps, [300, 500, 700, 900])}
        row["gain_t700"] = round(row["uncond_t700"] - row["cond_t700"], 4)
        prompts = [c for c in captions for _ in range(args.samples)]
        images = []
        for s in range(0, len(prompts), 32):
            batch = prompts[s : s + 32]
            gens = [torch.Generator().manual_seed(1000 + s + j) for j in range(len(batch))]
            images.append(to_uint8(pipe.sample(batch, generator=gens)).numpy())
        images = np.concatenate(images)
        np.save(out / "samples.npy", images)  # for paired comparisons (bench/balance_study.py compare)
        row.update(retrieval(clip, images, np.repeat(np.arange(len(captions)), args.samples), captions))
        row["sampler"] = f"{defaults.SAMPLER} {defaults.STEPS} steps, guidance {defaults.GUIDANCE}"
        if (out / "train.json").is_file():
            row.update(json.loads((out / "train.json").read_text()))
        (out / "scores.json").write_text(json.dumps(row) + "\n")
        grid = images[:: args.samples][:16]
        tiles = [Image.fromarray(im).resize((64, 64), Image.NEAREST) for im in grid]
        sheet = Image.new("RGB", (4 * 64, 4 * 64), "white")
        for k, tile in enumerate(tiles):
            sheet.paste(tile, ((k % 4) * 64, (k // 4) * 64))
        sheet.save(out / "grid.png")
        print(json.dumps(row), flush=True)


def cmd_table(args) -> None:
    print("| recipe | what it tests | images | minutes (1 core) | x_0 error t=700 | x_0 error t=900 "
          "| caption gain t=700 | top-1 | top-5 |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [(name, note, f"{images:,}") for name, (note, _, images) in RECIPES.items()]
    for name, note, images in rows + [(name, note, images) for name, (note, images) in REFERENCE.items()]:
        path = run_dir(args, name) / "scores.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        print(f"| `{name}` | {note} | {images} | {r.get('seconds', float('nan')) / 60:.1f} | {r['cond_t700']:.4f} "
              f"| {r['cond_t900']:.4f} | {r['gain_t700']:+.4f} | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% |")


def cmd_commands(args) -> None:
    for name in RECIPES:
        print(f"{name}: {shown(train_command(args, name))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["train", "eval", "ceiling", "table", "commands"])
    ap.add_argument("names", nargs="*", help=f"recipes (default: all): {', '.join(RECIPES)}")
    ap.add_argument("--data", default="data/study", help="bench/recipe_slice.py's output folder")
    ap.add_argument("--runs", default="runs/study")
    ap.add_argument("--samples", type=int, default=2, help="samples per caption for the retrieval check")
    args = ap.parse_args()
    args.names = args.names or list(RECIPES)
    unknown = [n for n in args.names if n not in RECIPES and not (n in REFERENCE and args.action == "eval")]
    if unknown:
        ap.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    os.makedirs(args.runs, exist_ok=True)
    {"train": cmd_train, "eval": cmd_eval, "ceiling": cmd_ceiling, "table": cmd_table,
     "commands": cmd_commands}[args.action](args)


if __name__ == "__main__":
    main()
