"""Image-caption sources, all read the same way: `len(ds)` items, `ds.load(i)` -> (uint8 [S, S, 3], captions).

- a folder of images with same-named `.txt` captions (`cat.png` + `cat.txt`);
- a JSONL manifest of `{"image": path, "caption": text}` lines (paths relative to the manifest);
- our compact `.npz` arrays (from `glide data emoji`);
- WebDataset tar shards (`*.tar`, read with the `webdataset` library; streamed, see `WebDatasetSource`).

Decoding is Pillow, RGB: transparent images are composited on a background colour (white by default),
then resized (shorter side) and center-cropped to the model resolution. A file that cannot be decoded
raises `BadImage`; the loader skips and counts it.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from ..errors import GlideError
from ..images import to_rgb
from .arrays import load_arrays

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class BadImage(Exception):
    """An unreadable or corrupt image."""


def decode_image(data: bytes | str | os.PathLike | Image.Image, size: int, background: str = "white") -> np.ndarray:
    """Any image -> uint8 [size, size, 3]: composite transparency, resize the short side, center-crop."""
    try:
        if isinstance(data, Image.Image):
            im = data
        else:
            im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        im.load()
        im = to_rgb(im, background)
    except Exception as e:  # Pillow raises many kinds of errors for broken files
        where = "" if isinstance(data, (bytes, Image.Image)) or str(data) in str(e) else f"{data}: "
        raise BadImage(f"{where}{e}") from None
    w, h = im.size
    scale = size / min(w, h)
    if scale != 1:
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC, reducing_gap=3.0)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)


class FolderSource:
    """image files with same-named .txt captions (images without a caption file get the empty caption)."""

    def __init__(self, root: Path, size: int, background: str = "white"):
        self.size, self.background = size, background
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        if not self.files:
            raise GlideError(f"no images found in {root}")
        bare = [p for p in self.files if not p.with_suffix(".txt").is_file()]
        if bare:
            warnings.warn(f"{len(bare)} of {len(self.files)} images in {root} have no .txt caption beside them "
                          f"(e.g. {bare[0].name}); they train with the empty caption", stacklevel=2)

    def __len__(self) -> int:
        return len(self.files)

    def caption(self, i: int) -> str:
        txt = self.files[i].with_suffix(".txt")
        return txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""

    def texts(self, i: int) -> list[str]:
        return [self.caption(i)]

    def load(self, i: int) -> tuple[np.ndarray, list[str]]:
        return decode_image(self.files[i], self.size, self.background), self.texts(i)


def read_manifest(manifest: Path) -> list[dict]:
    """The rows of a JSONL manifest: one JSON object per line, each with "image" and "caption"."""
    rows = []
    with open(manifest, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row["image"], row["caption"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise GlideError(f"{manifest}:{n}: expected a JSON object with 'image' and 'caption'") from None
            rows.append(row)
    return rows


class JsonlSource:
    """A JSONL manifest of {"image": path, "caption": text[, "captions_alt": [...]][, "split": ...]}."""

    def __init__(self, manifest: Path, size: int, background: str = "white", splits: Sequence[str] | None = ("train",)):
        self.size, self.background = size, background
        self.root = manifest.parent
        rows = [row for row in read_manifest(manifest) if splits is None or row.get("split", "train") in splits]
        if any(row.get("size") == size for row in rows):  # a manifest listing several renderings of each image
            rows = [row for row in rows if row.get("size") == size]
        if not rows:
            raise GlideError(f"{manifest} has no usable rows")
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def caption(self, i: int) -> str:
        return self.rows[i]["caption"]

    def texts(self, i: int) -> list[str]:
        return [self.rows[i]["caption"], *self.rows[i].get("captions_alt", [])]

    def load(self, i: int) -> tuple[np.ndarray, list[str]]:
        return decode_image(self.root / self.rows[i]["image"], self.size, self.background), self.texts(i)


class NpzSource:
    """Our compact array file: `images` uint8 [N, S, S, 3], `captions`, optional `captions_alt` and `split`."""

    def __init__(self, path: Path, size: int, splits: Sequence[str] | None = ("train",)):
        arrays = load_arrays(path, splits)
        self.images = arrays["images"]
        self.captions = [[c, *alt] for c, alt in zip(arrays["captions"], arrays["captions_alt"])]
        self.stored_size = arrays["size"]
        if self.stored_size < size:
            raise GlideError(f"{path} holds {self.stored_size} px images but the model trains at {size} px; "
                             f"build the data at {size} px (e.g. glide data emoji --size {size})")
        if self.stored_size != size:
            # Resize once up front; arrays are meant to be stored at the training resolution.
            self.images = np.stack([decode_image(Image.fromarray(im), size) for im in self.images])

    def __len__(self) -> int:
        return len(self.images)

    def caption(self, i: int) -> str:
        return self.captions[i][0]

    def texts(self, i: int) -> list[str]:
        return self.captions[i]

    def load(self, i: int) -> tuple[np.ndarray, list[str]]:
        return self.images[i], self.captions[i]


class CaptionFilter:
    """The items of a random-access source whose (first) caption matches a regular expression: a slice of a
    dataset, e.g. `^(red|blue) heart, twemoji style$`, without writing a new copy of it."""

    def __init__(self, source, pattern: str):
        if getattr(source, "streaming", False):
            raise GlideError("caption_filter needs a folder, a .jsonl manifest or an .npz file, not WebDataset shards")
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise GlideError(f"caption_filter {pattern!r} is not a valid regular expression: {e}") from None
        self.source = source
        self.index = [i for i in range(len(source)) if rx.search(source.caption(i))]
        if not self.index:
            raise GlideError(f"no training caption matches caption_filter {pattern!r}")

    def __len__(self) -> int:
        return len(self.index)

    def caption(self, i: int) -> str:
        return self.source.caption(self.index[i])

    def texts(self, i: int) -> list[str]:
        return self.source.texts(self.index[i])

    def load(self, i: int) -> tuple[np.ndarray, list[str]]:
        return self.source.load(self.index[i])


class WebDatasetSource:
    """WebDataset tar shards, streamed: each sample needs an image (png/jpg/webp) and a `txt` caption.

    Shards are split between ranks (and shuffled per epoch by the seed); there is no random access,
    so resuming skips the samples already consumed in the current epoch.
    """

    streaming = True

    def __init__(self, shards: list[str], size: int, background: str = "white"):
        try:
            import webdataset  # noqa: F401
        except ImportError:
            raise GlideError("WebDataset shards need the `webdataset` package: pip install webdataset") from None
        self.shards, self.size, self.background = shards, size, background

    def __len__(self) -> int:
        return 0  # unknown

    def iterate(self, seed: int, epoch: int, rank: int, world: int) -> Iterator[tuple[bytes | None, list[str], str]]:
        """(image bytes, captions, the sample's name as shard:key) for each sample of this rank's shards."""
        import webdataset as wds

        order = np.random.default_rng([seed, epoch]).permutation(len(self.shards))
        mine = [self.shards[i] for i in order[rank::world]]
        for sample in wds.WebDataset(mine, shardshuffle=False, empty_check=False):
            img = next((sample[k] for k in ("png", "jpg", "jpeg", "webp") if k in sample), None)
            cap = sample.get("txt", b"")
            name = f"{sample.get('__url__', '')}:{sample.get('__key__', '')}"
            yield img, [cap.decode("utf-8") if isinstance(cap, bytes) else str(cap)], name


def detect_format(path: str | os.PathLike):
    """(format, what to read) of a data path: the one place a data path's format is decided, for training
    (`open_source`) and `glide data filter`. Formats: "webdataset" (a list of .tar shards: a glob, a .tar or a
    folder of them), "dataset" (a folder from `glide data emoji`), "folder" (images with .txt captions),
    "jsonl" (a manifest) and "npz" (our arrays)."""
    spec = str(path)
    if any(ch in spec for ch in "*?[") or spec.endswith(".tar"):
        import glob

        shards = sorted(glob.glob(spec))
        if not shards:
            raise GlideError(f"no WebDataset shards match {spec}")
        return "webdataset", shards
    p = Path(spec)
    if not p.exists():
        raise GlideError(f"data not found: {p}")
    if p.is_dir():
        tars = sorted(p.glob("*.tar"))
        if tars and not any(q.suffix.lower() in IMAGE_EXTS for q in p.iterdir()):
            return "webdataset", [str(t) for t in tars]
        if any(p.glob("emoji_*.npz")) or (p / "manifest.jsonl").is_file():
            return "dataset", p
        return "folder", p
    if p.suffix == ".jsonl":
        return "jsonl", p
    if p.suffix == ".npz":
        return "npz", p
    raise GlideError(f"unsupported data path {p}: give a folder, a .jsonl manifest, an .npz file or .tar shards")


def open_source(path: str | os.PathLike, size: int, background: str = "white",
                splits: Sequence[str] | None = ("train",)):
    """The source for a data path (see `detect_format`)."""
    kind, what = detect_format(path)
    if kind == "webdataset":
        return WebDatasetSource(what, size, background)
    if kind in ("dataset", "folder"):
        arrays = what / f"emoji_{size}.npz"  # the compact form `glide data emoji` writes: fastest to load
        if arrays.is_file():
            return NpzSource(arrays, size, splits)
        manifest = what / "manifest.jsonl"
        if manifest.is_file():
            return JsonlSource(manifest, size, background, splits)
        return FolderSource(what, size, background)
    if kind == "jsonl":
        return JsonlSource(what, size, background, splits)
    return NpzSource(what, size, splits)
