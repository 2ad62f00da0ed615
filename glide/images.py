"""Conversions between image tensors in [-1, 1] and Pillow images, and sample grids."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageColor

from .files import atomic_write


def to_rgb(im: Image.Image, background: str | tuple = "white") -> Image.Image:
    """Any Pillow image -> RGB: transparency composited on `background`, 16-bit scaled to 8-bit."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, ImageColor.getrgb(background) + (255,) if isinstance(background, str)
                       else tuple(background) + (255,))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


def fit_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The centered square (left, top, right, bottom) that fitting to a square keeps."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def fit_square(im: Image.Image, size: int, resample=Image.BICUBIC) -> Image.Image:
    """Center-crop to a square, then resize to size x size."""
    return im.crop(fit_box(*im.size)).resize((size, size), resample)


if TYPE_CHECKING:
    import torch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3], rounded as the official notebooks do."""
    import torch  # here, not at the top: the data tools and `glide --help` use this module without torch

    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def from_uint8(images, device=None) -> torch.Tensor:
    """uint8 [B, H, W, 3] (numpy or torch) -> float [B, 3, H, W] in [-1, 1], the inverse of `to_uint8`; moved to
    `device` while still 8-bit (a quarter of the bytes). The result is channels-last in memory."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return x.to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] rounded to the 256 levels a saved 8-bit image has (what an upsampler trains on)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def to_pil(x: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(a.numpy()) for a in to_uint8(x)]


def from_pil(images: list[Image.Image] | Image.Image, size: int | None = None) -> torch.Tensor:
    """Pillow images (any mode) -> [B, 3, H, W] float in [-1, 1]; resized (bicubic) when `size` is given."""
    if isinstance(images, Image.Image):
        images = [images]
    arrays = []
    for im in images:
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        arrays.append(np.asarray(im, dtype=np.float32))
    import torch

    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1


def grid(images: list[Image.Image], cols: int | None = None, pad: int = 2) -> Image.Image:
    n = len(images)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w, h = images[0].size
    sheet = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), "white")
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        sheet.paste(im, (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet


def save_atomic(image: Image.Image, path: str | os.PathLike, text: dict[str, str] | None = None) -> Path:
    """Save so that `path` either holds the whole image or does not exist. `text`: PNG text chunks (tEXt when
    the value is Latin-1, as ASCII JSON always is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {}
    if text and fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        options["pnginfo"] = info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    with atomic_write(path) as f:
        image.save(f, format=fmt, **options)
    return path
