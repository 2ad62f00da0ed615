"""Does concept balancing (glide.data.balance) buy object learning, and what does it cost the skin-tone concepts?
(docs/training.md, "Balancing concepts".)

The recipe study's slice (bench/recipe_slice.py: 128 object concepts, 384 training images) plus K person and hand
concepts drawn with all their skin-tone variants, so that, as in the whole emoji data, about half of the training
images are tone variants of about an eighth of the concepts. Two recipes with equal budgets (images seen): the
study's adopted `v-gpt2` recipe drawing images uniformly, and the same with `concept_pattern = "skin-tones"`.
Scored on the objects exactly as the recipe study scores them (held-out x_0 error, caption gain, CLIP retrieval
of samples among the 128 object captions), and on the people: the x_0 error on their held-out (emoji, style)
pairs and the *tone gain*, the error with another tone's caption minus the error with the image's own caption
(what the tone words are worth).

    python bench/recipe_slice.py --data data/emoji --out data/study          # once: the object slice
    python bench/balance_study.py slice                                       # data/study-tones
    python bench/balance_study.py train uniform balanced                      # one `glide train` each
    python bench/balance_study.py eval uniform balanced --json docs/results/balance_study.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import recipe_study  # noqa: E402

from glide.data.balance import NAMED_PATTERNS, concept_keys  # noqa: E402

TONES = ("light", "medium-light", "medium", "medium-dark", "dark")
V_GPT2 = recipe_study.RECIPES["v-gpt2"][1]
RECIPES = {
    "uniform": ("v-gpt2, images drawn uniformly (today's order)", V_GPT2),
    "balanced": ("v-gpt2, concept_pattern = \"skin-tones\": every concept equally often", {
        **V_GPT2, "concept_pattern": "skin-tones"}),
}


def cmd_slice(args) -> None:
    z = np.load(Path(args.data) / "emoji_64.npz")
    study = np.load(Path(args.study) / "slice_64.npz")
    caps, split, style = z["captions"].astype(str), z["split"].astype(str), z["style"].astype(str)
    concept = np.array([k.rsplit(", ", 1)[0] for k in concept_keys(caps, "skin-tones")])
    toned = np.array([bool(re.search(NAMED_PATTERNS["skin-tones"], c)) for c in caps])
    pool = sorted({c for c, t, s in zip(concept, toned, split) if t and s == "heldout_pair"}
                  & {c for c, s in zip(concept, split) if s == "train"})
    pool = [c for c in pool if len(set(style[(concept == c) & (split == "train")])) >= 3]
    chosen = set(np.random.default_rng(args.seed).choice(pool, args.groups, replace=False).tolist())
    people_train = [i for i in range(len(caps)) if concept[i] in chosen and split[i] == "train"]
    people_held = [i for i in range(len(caps)) if concept[i] in chosen and split[i] == "heldout_pair"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    alt = json.loads(str(z["captions_alt"]))
    keep_study = np.flatnonzero(study["split"].astype(str) == "train")

    def arrays(rows_z, rows_study=()):
        a = {k: np.concatenate([study[k][list(rows_study)], z[k][rows_z]]) for k in z.files if k != "captions_alt"}
        study_alt = json.loads(str(study["captions_alt"]))
        a["captions_alt"] = np.array(json.dumps([study_alt[i] for i in rows_study] + [alt[i] for i in rows_z]))
        return a

    np.savez(out / "slice_64.npz", **arrays(people_train, keep_study))
    np.savez(out / "people_64.npz", **arrays(people_held))
    print(f"{len(keep_study)} object images of {Path(args.study)} + {len(people_train)} images of {len(chosen)} "
          f"toned concepts (training); {len(people_held)} held-out images of them -> {out}")


def run_name(args, name: str) -> str:
    """A recipe's run folder name: NAME, or NAME-sK for training seed K (a replicate)."""
    return name if args.train_seed == 0 else f"{name}-s{args.train_seed}"


def register(args, name: str) -> str:
    """Make a recipe (and its training seed) one of bench/recipe_study.py's, so that its train and eval run it
    unchanged; returns the run's name."""
    sets = {**RECIPES[name][1], **({"seed": args.train_seed} if args.train_seed else {})}
    recipe_study.RECIPES[run_name(args, name)] = (RECIPES[name][0], sets, args.images)
    return run_name(args, name)


def cmd_train(args) -> None:
    runs = [register(args, name) for name in args.names]
    recipe_study.cmd_train(argparse.Namespace(data=args.out, runs=args.runs, names=runs))


def other_tone(caption: str, rng: np.random.Generator) -> str:
    """The caption with its (first) tone phrase replaced by another tone; an untoned caption gains one."""
    m = re.search(r"\b(medium-light|medium-dark|medium|light|dark) skin tone", caption)
    if m is None:
        name, style = caption.rsplit(", ", 1)
        return f"{name}, {TONES[rng.integers(len(TONES))]} skin tone, {style}"
    new = [t for t in TONES if t != m.group(1)][rng.integers(len(TONES) - 1)]
    return caption[: m.start(1)] + new + caption[m.end(1):]


def cmd_eval(args) -> None:
    from denoising_error import denoising_error, heldout

    from glide.pipeline import Pipeline

    runs = [register(args, name) for name in args.names]
    # the object scores, as the recipe study computes them (on its slice: the object concepts' held-out pairs)
    recipe_study.cmd_eval(argparse.Namespace(data=args.study, runs=args.runs, samples=args.samples, names=runs))
    for name, run in zip(args.names, runs):
        out = Path(args.runs) / run
        pipe = Pipeline.from_pretrained(out / "model")
        x0, caps = heldout(str(Path(args.out) / "people_64.npz"), pipe.model.cfg.unet.image_size, 512)
        rng = np.random.default_rng(0)
        own = denoising_error(pipe, x0, caps, [700, 900], uncond=False)
        swapped = denoising_error(pipe, x0, [other_tone(c, rng) for c in caps], [700, 900], uncond=False)
        row = json.loads((out / "scores.json").read_text())
        row.update({"recipe": name, "run": run, "train_seed": args.train_seed, "note": RECIPES[name][0],
                    "people_n": len(x0),
                    "people_cond_t700": own["cond_t700"], "people_cond_t900": own["cond_t900"],
                    "tone_gain_t700": round(swapped["cond_t700"] - own["cond_t700"], 4),
                    "tone_gain_t900": round(swapped["cond_t900"] - own["cond_t900"], 4)})
        (out / "scores.json").write_text(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")


def cmd_compare(args) -> None:
    """Caption retrieval, balanced against uniform, paired by caption (and by sample seed: both recipes' samples
    of a caption start from the same noise), pooling the training seeds given; a bootstrap over the captions."""
    captions = json.loads((Path(args.study) / "captions.json").read_text())
    labels = np.repeat(np.arange(len(captions)), args.samples)
    clip = recipe_study._clip()
    hits = {}
    for name in RECIPES:
        per_seed = []
        for seed in args.seeds:
            run = Path(args.runs) / (name if seed == 0 else f"{name}-s{seed}")
            ranks = recipe_study.caption_ranks(clip, np.load(run / "samples.npy"), labels, captions)
            per_seed.append(np.stack([(ranks < 1), (ranks < 5)]).reshape(2, len(captions), args.samples))
        hits[name] = np.concatenate(per_seed, axis=2).mean(2)  # [top1/top5, caption]
    diff = hits["balanced"] - hits["uniform"]
    rng = np.random.default_rng(0)
    boot = np.stack([diff[:, rng.integers(0, len(captions), len(captions))].mean(1) for _ in range(args.resamples)])
    row = {"compare": "balanced - uniform", "seeds": args.seeds, "captions": len(captions),
           "samples_per_caption": args.samples * len(args.seeds)}
    for k, name in enumerate(("top1", "top5")):
        row.update({f"uniform_{name}": round(float(hits["uniform"][k].mean()), 4),
                    f"balanced_{name}": round(float(hits["balanced"][k].mean()), 4),
                    f"diff_{name}": round(float(diff[k].mean()), 4), f"diff_{name}_std": round(float(boot[:, k].std()), 4),
                    f"balanced_better_{name}": round(float((boot[:, k] > 0).mean()), 3)})
    print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["slice", "train", "eval", "compare"])
    ap.add_argument("names", nargs="*", help=f"recipes (default: all): {', '.join(RECIPES)}")
    ap.add_argument("--data", default="data/emoji", help="the emoji data folder (glide data emoji)")
    ap.add_argument("--study", default="data/study", help="bench/recipe_slice.py's output folder")
    ap.add_argument("--out", default="data/study-tones", help="this study's slice")
    ap.add_argument("--runs", default="runs/study-tones")
    ap.add_argument("--groups", type=int, default=18, help="toned concepts added to the object slice")
    ap.add_argument("--images", type=int, default=recipe_study.IMAGES, help="images seen per recipe")
    ap.add_argument("--samples", type=int, default=2, help="samples per object caption for the retrieval check")
    ap.add_argument("--seed", type=int, default=0, help="which toned concepts the slice draws")
    ap.add_argument("--train-seed", type=int, default=0, help="training seed (replicates: runs NAME-sK)")
    ap.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=[0],
                    help="compare: the training seeds to pool, e.g. 0,1")
    ap.add_argument("--resamples", type=int, default=1000, help="compare: bootstrap resamples")
    ap.add_argument("--json", help="append each recipe's scores to this JSON-lines file")
    args = ap.parse_args()
    args.names = args.names or list(RECIPES)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    {"slice": cmd_slice, "train": cmd_train, "eval": cmd_eval, "compare": cmd_compare}[args.action](args)


if __name__ == "__main__":
    main()
