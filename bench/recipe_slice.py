"""The recipe study's data (docs/training.md, "Which recipe learns most per unit of compute"): 128 emoji concepts
from the emoji data, all their training images (three or four styles each) and one held-out (emoji, style) pair
each, the concept drawn in a style its training images never show.

    python bench/recipe_slice.py --data data/emoji --out data/study

Writes OUT/slice_64.npz (the same format as the emoji data's npz; `split` keeps train and heldout_pair) and
OUT/captions.json: one training caption per concept (styles in rotation), the prompts of the retrieval check.
Concepts are drawn with a fixed seed among those that have a held-out pair and at least three training styles,
leaving out the families that differ only in small details at 64 px (faces, hands, people, flags, keycaps,
clocks, arrows, signs, hearts, geometric shapes, the zodiac).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

NEAR_DUPLICATE_FAMILIES = re.compile(
    r"face|flag|hand|person|man|woman|keycap|skin|people|family|couple|kiss|boy|girl|adult|child|men|women|clock"
    r"|arrow|button|sign|symbol|letter|mark|square|circle|\bcat\b|heart|zodiac"
    r"|^(Aries|Taurus|Gemini|Cancer|Leo|Virgo|Libra|Scorpio|Sagittarius|Capricorn|Aquarius|Pisces|Ophiuchus"
    r"|ZZZ|antenna bars)$")
STYLES = ("twemoji", "openmoji", "noto", "openmoji-line")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/emoji", help="the emoji data folder (glide data emoji)")
    ap.add_argument("--out", default="data/study")
    ap.add_argument("--concepts", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    z = np.load(Path(args.data) / "emoji_64.npz")
    label, style, split = z["label"], z["style"], z["split"]
    train_styles, pairs = defaultdict(set), defaultdict(list)
    for i, (lab, sty, spl) in enumerate(zip(label, style, split)):
        if spl == "train":
            train_styles[lab].add(str(sty))
        elif spl == "heldout_pair":
            pairs[lab].append(i)
    pool = sorted(lab for lab, s in train_styles.items()
                  if len(s) >= 3 and pairs[lab] and not NEAR_DUPLICATE_FAMILIES.search(lab))
    concepts = sorted(np.random.default_rng(args.seed).choice(pool, args.concepts, replace=False).tolist())
    chosen = set(concepts)
    keep = [i for i, (lab, spl) in enumerate(zip(label, split)) if lab in chosen and spl == "train"]
    keep += [pairs[lab][0] for lab in concepts]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: z[k][keep] for k in z.files if k != "captions_alt"}
    alt = json.loads(str(z["captions_alt"]))
    arrays["captions_alt"] = np.array(json.dumps([alt[i] for i in keep]))
    np.savez(out / "slice_64.npz", **arrays)
    # one prompt per concept, in a style it was trained in, styles in rotation
    by = {(str(label[i]), str(style[i])): str(z["captions"][i]) for i in keep if split[i] == "train"}
    captions = []
    for k, lab in enumerate(concepts):
        styles = [s for s in STYLES if (lab, s) in by]
        captions.append(by[(lab, styles[k % len(styles)])])
    (out / "captions.json").write_text(json.dumps(captions, indent=1) + "\n")
    n_train = sum(1 for i in keep if split[i] == "train")
    print(f"{len(concepts)} concepts: {n_train} training images, {len(concepts)} held-out pairs -> {out}")


if __name__ == "__main__":
    main()
