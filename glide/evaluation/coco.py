"""The MS-COCO zero-shot protocol (GLIDE §5.2, after DALL-E): captions drawn at random from the 2014
validation annotations, one sample each, scored against the validation images those captions describe,
center-cropped and resized to the model's resolution (64 px for the base model, as in the paper's Fig. 6).

The data cannot be downloaded here: the user supplies `captions_val2014.json` and the `val2014/` folder.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..errors import GlideError
from .evaluate import _digest, _file_key, _savez_atomic


def center_crop_resize(image: Image.Image, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: the largest centered square, resized. Large images are first halved with a box
    filter until close to the target, then resized with bicubic filtering; this is how ADM-family
    evaluations prepare reference images, and it avoids aliasing from a single big downscale."""
    image = image.convert("RGB")
    while min(image.size) >= 2 * size:
        image = image.resize(tuple(s // 2 for s in image.size), Image.BOX)
    scale = size / min(image.size)
    image = image.resize(tuple(max(size, round(s * scale)) for s in image.size), Image.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def read_annotations(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(image file name, caption) for every caption of a COCO captions file, in file order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {img["id"]: img["file_name"] for img in data["images"]}
        return [(files[a["image_id"]], " ".join(str(a["caption"]).split())) for a in data["annotations"]]
    except FileNotFoundError:
        raise GlideError(f"no captions file at {path} (captions_val2014.json from the COCO annotations)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise GlideError(f"{path} is not a COCO captions file ({type(e).__name__}: {e})") from None


def load_coco_reference(captions: str | os.PathLike, images: str | os.PathLike, n: int = 30_000, seed: int = 0,
                        size: int = 64, cache_dir: Path | None = None, progress: bool = True
                        ) -> tuple[np.ndarray, list[str], list]:
    """`n` random captions (fixed seed; all when there are fewer) and their images, prepared at `size`.

    Returns (uint8 [N, size, size, 3], captions, cache key). Images that are missing or unreadable are
    skipped with their captions and counted in one warning. The prepared array is cached in `cache_dir`.
    """
    images = Path(images)
    if not images.is_dir():
        raise GlideError(f"no image folder at {images} (the COCO val2014/ folder)")
    pairs = read_annotations(captions)
    if not pairs:
        raise GlideError(f"{captions} has no captions")
    pick = np.sort(np.random.default_rng(seed).choice(len(pairs), min(n, len(pairs)), replace=False))
    chosen = [pairs[i] for i in pick]
    key = [_file_key(captions), str(images.resolve()), n, seed, size]

    def make() -> tuple[np.ndarray, list[str]]:
        out, kept, skipped = [], [], []
        decoded: dict[str, np.ndarray | None] = {}  # an image with several drawn captions is read once
        for name, caption in tqdm(chosen, desc="reference images", unit="img", disable=not progress):
            if name not in decoded:
                try:
                    with Image.open(images / name) as im:
                        decoded[name] = center_crop_resize(im, size)
                except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
                    decoded[name] = None
            if decoded[name] is None:
                skipped.append(name)
                continue
            out.append(decoded[name])
            kept.append(caption)
        if skipped:
            warnings.warn(f"skipped {len(skipped)} of {len(chosen)} captions whose image is missing or unreadable "
                          f"(first: {skipped[0]})", stacklevel=2)
        if not out:
            raise GlideError(f"none of the {len(chosen)} drawn captions has a readable image in {images}")
        return np.stack(out), kept

    path = cache_dir / f"coco-reference-{_digest(key)}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["x"], [str(c) for c in z["captions"]], key
    arr, kept = make()
    if path is not None:
        _savez_atomic(path, x=arr, captions=np.array(kept))
    return arr, kept, key
