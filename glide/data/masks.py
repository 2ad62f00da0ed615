"""Random inpainting masks for training, in the official convention: 1 = known (kept), 0 = to generate.

A mix of rectangles and free-form brush strokes (as in the paper's "randomly erasing sections"), and a
share of examples with nothing known, so that one model also does plain text-to-image. Strokes are
drawn with Pillow, so a batch of masks costs milliseconds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw


def _u(g: torch.Generator, n: int = 1) -> list[float]:
    return torch.rand(n, generator=g).tolist()


def rectangle_mask(size: int, g: torch.Generator) -> np.ndarray:
    m = np.ones((size, size), np.float32)
    a, b, c, d = _u(g, 4)
    h, w = int(size * (0.125 + 0.625 * a)), int(size * (0.125 + 0.625 * b))
    top, left = int((size - h) * c), int((size - w) * d)
    m[top : top + h, left : left + w] = 0
    return m


def brush_mask(size: int, g: torch.Generator) -> np.ndarray:
    """A few random-walk strokes of a round brush."""
    im = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(im)
    n_strokes = 1 + int(_u(g)[0] * 3)
    for _ in range(n_strokes):
        y, x, r, angle, n_seg = _u(g, 5)
        y, x = y * size, x * size
        width = max(2, int(size * (0.08 + 0.16 * r)))
        angle *= 2 * math.pi
        points = [(x, y)]
        for _ in range(4 + int(n_seg * 8)):
            turn, step = _u(g, 2)
            angle += (turn - 0.5) * 2.0
            length = size * (0.05 + 0.1 * step)
            x = min(max(x + length * math.cos(angle), 0), size - 1)
            y = min(max(y + length * math.sin(angle), 0), size - 1)
            points.append((x, y))
        draw.line(points, fill=0, width=width, joint="curve")
        for px, py in points:  # round caps
            draw.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=0)
    return np.asarray(im, dtype=np.float32) / 255.0


def random_masks(n: int, size: int, g: torch.Generator, p_unmasked: float = 0.25, p_rect: float = 0.5) -> torch.Tensor:
    """[n, 1, size, size] masks: a share `p_unmasked` with nothing known (plain generation), the rest
    rectangles or brush strokes."""
    out = np.empty((n, 1, size, size), np.float32)
    for k, u in enumerate(_u(g, n)):
        if u < p_unmasked:
            out[k, 0] = 0.0
        elif u < p_unmasked + (1 - p_unmasked) * p_rect:
            out[k, 0] = rectangle_mask(size, g)
        else:
            out[k, 0] = brush_mask(size, g)
    return torch.from_numpy(out)
