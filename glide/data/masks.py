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


def device_masks(n: int, size: int, g: torch.Generator, p_unmasked: float = 0.25, p_rect: float = 0.5,
                 max_strokes: int = 3, max_segments: int = 11) -> torch.Tensor:
    """The same three families as `random_masks`, drawn with tensor ops on `g`'s device (no Python loop over
    the batch, no host round trip), for the resident training path.

    Every example gets a rectangle and a brush drawing and keeps one of them (or neither), so the shapes
    of the work never depend on the draws. A brush stroke is a random walk of capsule-shaped segments (a
    segment of width w with round ends is every pixel within w/2 of it), which is what Pillow's wide line
    with round caps draws in `brush_mask`, up to antialiasing. Returns float [n, 1, size, size]."""
    dev = g.device
    rand = lambda *shape: torch.rand(shape, generator=g, device=dev)  # noqa: E731
    u = rand(n)
    unmasked = u < p_unmasked
    rect = u < p_unmasked + (1 - p_unmasked) * p_rect
    px = torch.arange(size, device=dev, dtype=torch.float32)
    ys, xs = px.view(1, size, 1), px.view(1, 1, size)

    a, b, c, d = rand(4, n).unbind(0)
    h, w = (size * (0.125 + 0.625 * a)).floor(), (size * (0.125 + 0.625 * b)).floor()
    top, left = ((size - h) * c).floor(), ((size - w) * d).floor()
    v = lambda t: t.view(n, 1, 1)  # noqa: E731
    in_rect = (ys >= v(top)) & (ys < v(top + h)) & (xs >= v(left)) & (xs < v(left + w))

    # Strokes [n, max_strokes]: how many, where they start, how wide, which way, how many segments.
    n_strokes = 1 + (rand(n) * max_strokes).floor()
    live = torch.arange(max_strokes, device=dev).view(1, -1) < n_strokes.view(-1, 1)
    y, x, r, angle, nseg = rand(5, n, max_strokes).unbind(0)
    y, x = y * size, x * size
    half = (size * (0.08 + 0.16 * r)).floor().clamp(min=2) / 2
    angle = angle * 2 * math.pi
    n_seg = 4 + (nseg * (max_segments - 3)).floor()  # 4..11 segments, as in brush_mask
    turns, steps = rand(2, n, max_strokes, max_segments).unbind(0)
    py, pxx = ys.unsqueeze(0), xs.unsqueeze(0)  # [1, 1, S, 1], [1, 1, 1, S]
    painted = torch.zeros(n, max_strokes, size, size, dtype=torch.bool, device=dev)
    for k in range(max_segments):
        angle = angle + (turns[..., k] - 0.5) * 2.0
        length = size * (0.05 + 0.1 * steps[..., k])
        y2 = (y + length * torch.sin(angle)).clamp(0, size - 1)
        x2 = (x + length * torch.cos(angle)).clamp(0, size - 1)
        # distance from each pixel to the segment (y, x) -> (y2, x2)
        dy, dx = (y2 - y)[..., None, None], (x2 - x)[..., None, None]
        oy, ox = py - y[..., None, None], pxx - x[..., None, None]
        t = ((oy * dy + ox * dx) / (dy * dy + dx * dx).clamp(min=1e-6)).clamp(0, 1)
        dist2 = (oy - t * dy) ** 2 + (ox - t * dx) ** 2
        on = (live & (k < n_seg))[..., None, None]
        painted |= on & (dist2 <= half[..., None, None] ** 2)
        y, x = torch.where(k < n_seg, y2, y), torch.where(k < n_seg, x2, x)
    in_brush = painted.any(1)
    erased = torch.where(rect.view(n, 1, 1), in_rect, in_brush)
    known = torch.where(unmasked.view(n, 1, 1), torch.zeros_like(erased), ~erased)
    return known.float().unsqueeze(1)
