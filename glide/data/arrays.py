"""The compact array file `emoji_{size}.npz` (written by `glide data emoji`): its one writer and one reader.

Training (glide.data.datasets.NpzSource), `glide eval` (glide.evaluation.evaluate.load_reference) and the
emoji build all go through here. The file holds `images` uint8 [N, S, S, 3] and per-image strings:
`captions`, `split`, `style`, `emoji` (the base hexcode), `hexcode`, `label`; `captions_alt` is one JSON
string (a list of lists). Only `images` and `captions` are required: a file without `split` is all "train".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import GlideError

FIELDS = ("split", "style", "emoji", "hexcode", "label")  # the per-image strings besides the captions


def arrays_path(data: str | os.PathLike, size: int) -> Path:
    """The array file for `data`: the file itself, or `emoji_{size}.npz` in a dataset folder."""
    p = Path(data)
    return p / f"emoji_{size}.npz" if p.is_dir() else p


def save_arrays(path: str | os.PathLike, images: np.ndarray, rows: list[dict]) -> None:
    """Write images uint8 [N, S, S, 3] with their rows' strings (caption, captions_alt and FIELDS)."""
    assert len(images) == len(rows), (len(images), len(rows))
    np.savez_compressed(
        path, images=images,
        captions=np.array([r["caption"] for r in rows], dtype=str),
        captions_alt=np.array(json.dumps([r["captions_alt"] for r in rows], ensure_ascii=False)),
        **{k: np.array([r[k] for r in rows], dtype=str) for k in FIELDS})


def load_arrays(path: str | os.PathLike, splits: Sequence[str] | None = None) -> dict:
    """An array file -> {'images': uint8 [M, S, S, 3], 'captions': [...], 'captions_alt': [[...]], 'split' and
    the other FIELDS the file has: lists of str, 'index': the rows' positions in the file, 'size': S}.
    With `splits`, only the rows of those splits (in file order); none there is an error."""
    with np.load(path, allow_pickle=False) as z:
        captions = [str(c) for c in z["captions"]]
        split = [str(s) for s in z["split"]] if "split" in z.files else ["train"] * len(captions)
        index = np.arange(len(captions)) if splits is None else np.flatnonzero(np.isin(split, list(splits)))
        if len(index) == 0:
            raise GlideError(f"{path} has no images in split(s) {', '.join(splits or [])}")
        alt = json.loads(str(z["captions_alt"])) if "captions_alt" in z.files else [[] for _ in captions]
        out = {k: [str(z[k][i]) for i in index] for k in FIELDS if k in z.files and k != "split"}
        out.update(images=z["images"] if splits is None else z["images"][index], index=index,
                   captions=[captions[i] for i in index], captions_alt=[alt[i] for i in index],
                   split=[split[i] for i in index])
    out["size"] = int(out["images"].shape[1])
    return out
