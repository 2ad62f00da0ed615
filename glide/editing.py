"""Image and mask handling for text-driven editing: loading, fitting to the model, compositing back.

Masks follow the image-editing convention (diffusers, Stable Diffusion UIs): WHITE marks the region to
repaint, BLACK the region to keep. Inside glide, and in `glide.official`, the official tensor
convention holds: `keep` is 1 where the image is known and 0 where it is generated.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import defaults
from .errors import GlideError
from .images import fit_box, fit_square, from_pil, to_rgb

Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # keep Pillow's decompression-bomb guard on


def open_image(src: str | os.PathLike | Image.Image, what: str = "image",
               max_pixels: int = defaults.MAX_IMAGE_PIXELS) -> Image.Image:
    """Read an image file whole, refusing one larger than `max_pixels` (the web page's cap) from its header,
    before any pixel is decoded."""
    if isinstance(src, Image.Image):
        return src
    im = None
    try:
        im = Image.open(src)
        if im.width * im.height > max_pixels:
            raise GlideError(f"{what} {src} is {im.width}x{im.height}: over the limit of {max_pixels:,} pixels")
        im.load()
        return im
    except FileNotFoundError:
        raise GlideError(f"{what} not found: {src}") from None
    except IsADirectoryError:
        raise GlideError(f"{what} {src} is a folder, not an image file") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError, SyntaxError) as e:
        raise GlideError(f"cannot read {what} {src}: {e}") from None
    finally:
        # A file that failed to decode would otherwise stay open until garbage collection (a ResourceWarning).
        if im is not None and sys.exc_info()[0] is not None:
            im.close()


def check_image_file(src: str | os.PathLike, what: str = "image") -> None:
    """Read an input image once, before any model is loaded, so that a bad file costs nothing."""
    open_image(src, what).close()


def mask_to_repaint(mask: Image.Image) -> np.ndarray:
    """A mask image -> bool array, True where the user asks to repaint (white)."""
    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        mask = to_rgb(mask, "black")  # transparent = keep
    return np.asarray(to_rgb(mask).convert("L")) > 127


def box_to_repaint(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise GlideError(f"box {x0},{y0},{x1},{y1} is not inside the {width}x{height} image (x0,y0,x1,y1 with x0<x1, y0<y1)")
    m = np.zeros((height, width), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def parse_box(s: str) -> tuple[int, int, int, int]:
    try:
        vals = tuple(int(v) for v in s.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise GlideError(f"--box expects x0,y0,x1,y1 in pixels, got {s!r}")
    return vals  # type: ignore[return-value]


@dataclass
class EditInput:
    """An edit fitted to the model: image in [-1, 1] and the keep mask (1 = known), both [1, C, S, S]."""

    image: torch.Tensor
    keep: torch.Tensor
    original: Image.Image  # the RGB input at its own resolution
    repaint: np.ndarray  # bool [H, W] at the original resolution


def check_edit(original: Image.Image, mask_repaint: np.ndarray) -> None:
    """Refuse a mask that does not fit the image or repaints nothing (before any model is loaded)."""
    w, h = original.size
    if mask_repaint.shape != (h, w):
        mh, mw = mask_repaint.shape
        kind = "aspect ratio" if mw * h != mh * w else "size"
        raise GlideError(f"the mask's {kind} ({mw}x{mh}) differs from the image's ({w}x{h})")
    if not mask_repaint.any():
        raise GlideError("the mask keeps the whole image: nothing to repaint (white marks the region to change)")


def repaint_region(original: Image.Image, mask=None, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The region to repaint, bool [H, W] (True = repaint), from `box` (x0, y0, x1, y1), or from `mask`: a bool
    array, or a mask image or its file (WHITE = repaint)."""
    if box is not None:
        return box_to_repaint(*original.size, box)
    if mask is None:
        raise GlideError("give a mask image or a box")
    if isinstance(mask, np.ndarray):
        return mask.astype(bool)
    return mask_to_repaint(open_image(mask, "mask"))


def prepare_edit(image, mask, size: int, box: tuple[int, int, int, int] | None = None) -> EditInput:
    """The one place editing inputs are read: the image (a file or PIL image) and the region to repaint (see
    `repaint_region`), checked and fitted to a model of `size` px."""
    original = to_rgb(open_image(image))
    mask_repaint = repaint_region(original, mask, box)
    check_edit(original, mask_repaint)
    if mask_repaint.all():
        warnings.warn("the mask covers the whole image: this is plain text-to-image generation", stacklevel=2)
    img = from_pil(fit_square(original, size))
    small = fit_square(Image.fromarray(mask_repaint.astype(np.uint8) * 255), size, Image.NEAREST)
    # Any pixel of the fitted mask that touches the repaint region is repainted (never keep a stale edge).
    keep = torch.from_numpy(np.asarray(small) == 0).float()[None, None]
    if keep.min() == 1:  # the region vanished when shrinking: keep at least one pixel to repaint
        ys, xs = np.nonzero(mask_repaint)
        l, t, r, b = fit_box(*original.size)
        yy = int((ys.mean() - t) / (b - t) * size)
        xx = int((xs.mean() - l) / (r - l) * size)
        keep[..., min(max(yy, 0), size - 1), min(max(xx, 0), size - 1)] = 0
    return EditInput(img, keep, original, mask_repaint)


def composite(edit: EditInput, result: Image.Image) -> Image.Image:
    """Paste the generated pixels back into the original-resolution image, only where it was repainted."""
    w, h = edit.original.size
    l, t, r, b = fit_box(w, h)
    up = result.resize((r - l, b - t), Image.BICUBIC)
    canvas = edit.original.copy()
    patch = canvas.crop((l, t, r, b))
    region = Image.fromarray(edit.repaint[t:b, l:r].astype(np.uint8) * 255)
    patch.paste(up, (0, 0), region)
    canvas.paste(patch, (l, t))
    return canvas
