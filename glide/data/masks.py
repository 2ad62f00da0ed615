"""Random inpainting masks for training, in the official convention: 1 = known (kept), 0 = to generate.

A mix of rectangles and free-form brush strokes (as in the paper's "randomly erasing sections"), and a
share of examples with nothing known, so that one model also does plain text-to-image.
"""

from __future__ import annotations

import math

import torch


def rectangle_mask(size: int, g: torch.Generator) -> torch.Tensor:
    m = torch.ones(size, size)
    h = int(torch.randint(size // 8, size * 3 // 4 + 1, (), generator=g))
    w = int(torch.randint(size // 8, size * 3 // 4 + 1, (), generator=g))
    top = int(torch.randint(0, size - h + 1, (), generator=g))
    left = int(torch.randint(0, size - w + 1, (), generator=g))
    m[top : top + h, left : left + w] = 0
    return m


def brush_mask(size: int, g: torch.Generator) -> torch.Tensor:
    """A few random-walk strokes of a round brush."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    hole = torch.zeros(size, size, dtype=torch.bool)
    for _ in range(int(torch.randint(1, 4, (), generator=g))):
        y, x = (torch.rand(2, generator=g) * size).tolist()
        radius = size * (0.04 + 0.08 * float(torch.rand((), generator=g)))
        angle = float(torch.rand((), generator=g)) * 2 * math.pi
        for _ in range(int(torch.randint(4, 12, (), generator=g))):
            angle += float(torch.randn((), generator=g)) * 0.8
            step = size * (0.05 + 0.1 * float(torch.rand((), generator=g)))
            ny, nx = y + step * math.sin(angle), x + step * math.cos(angle)
            for f in torch.linspace(0, 1, 6).tolist():
                cy, cx = y + (ny - y) * f, x + (nx - x) * f
                hole |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            y, x = min(max(ny, 0), size - 1), min(max(nx, 0), size - 1)
    return (~hole).float()


def random_masks(n: int, size: int, g: torch.Generator, p_unmasked: float = 0.25, p_rect: float = 0.5) -> torch.Tensor:
    """[n, 1, size, size] masks: a share `p_unmasked` with nothing known (plain generation), the rest
    rectangles or brush strokes."""
    out = []
    for _ in range(n):
        u = float(torch.rand((), generator=g))
        if u < p_unmasked:
            out.append(torch.zeros(size, size))
        elif u < p_unmasked + (1 - p_unmasked) * p_rect:
            out.append(rectangle_mask(size, g))
        else:
            out.append(brush_mask(size, g))
    return torch.stack(out)[:, None]
