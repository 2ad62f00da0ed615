"""Small trade-off plots drawn with Pillow (no plotting library needed): one panel per pair of metrics, one
polyline per series, each point labelled with its guidance scale, as in the paper's Fig. 6."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from ..images import save_atomic

COLOURS = [(40, 90, 200), (210, 70, 40), (40, 150, 70), (150, 60, 170), (120, 120, 120)]


@dataclass
class Series:
    label: str
    points: list[tuple[float, float, str]]  # (x, y, annotation)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def panel(series: list[Series], xlabel: str, ylabel: str, title: str, size: tuple[int, int] = (440, 340)) -> Image.Image:
    """One scatter-and-line panel. Axis ranges fit the points with a 10% margin."""
    w, h = size
    left, right, top, bottom = 60, 16, 34, 44
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    pts = [(x, y) for s in series for x, y, _ in s.points if math.isfinite(x) and math.isfinite(y)]
    d.text((left, 10), title, fill="black")
    if not pts:
        d.text((left, h // 2), "no data", fill="black")
        return img
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]

    def span(lo, hi):
        pad = (hi - lo) * 0.1 or abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(min(xs), max(xs)), span(min(ys), max(ys))

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right),
                h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for v in _ticks(x0, x1):
        x, _ = px(v, y0)
        d.line([x, h - bottom, x, h - bottom + 4], fill="black")
        d.text((x - 10, h - bottom + 6), _fmt(v), fill="black")
    for v in _ticks(y0, y1):
        _, y = px(x0, v)
        d.line([left - 4, y, left, y], fill="black")
        d.text((4, y - 6), _fmt(v), fill="black")
    d.text((left + (w - left - right) // 2 - 3 * len(xlabel), h - 16), xlabel, fill="black")
    d.text((left + 4, top + 4), ylabel + " (y)", fill=(90, 90, 90))
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        line = [px(x, y) for x, y, _ in s.points if math.isfinite(x) and math.isfinite(y)]
        if len(line) > 1:
            d.line(line, fill=colour, width=2)
        for (x, y), (_, _, note) in zip(line, [p for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]):
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            d.text((x + 4, y - 12), note, fill=colour)
        d.text((w - right - 150, top + 6 + 14 * i), s.label, fill=colour)
    return img


def save_panels(panels: list[Image.Image], path: str | Path) -> None:
    """Panels side by side in one PNG, written atomically."""
    w = sum(p.width for p in panels)
    h = max(p.height for p in panels)
    sheet = Image.new("RGB", (w, h), "white")
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width
    save_atomic(sheet, Path(path))
