"""Small trade-off plots: one panel per pair of metrics, one polyline per series, each point labelled with its
guidance scale, as in the paper's Fig. 6. Drawn with matplotlib when it is installed (the `plots` extra), else
with Pillow, so `glide eval sweep` needs no plotting library."""

from __future__ import annotations

import io
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

    def finite(self) -> list[tuple[float, float, str]]:
        return [p for p in self.points if math.isfinite(p[0]) and math.isfinite(p[1])]


@dataclass
class Panel:
    series: list[Series]
    xlabel: str
    ylabel: str
    title: str


def panel(series: list[Series], xlabel: str, ylabel: str, title: str) -> Panel:
    return Panel(series, xlabel, ylabel, title)


def save_panels(panels: list[Panel], path: str | Path, backend: str | None = None) -> str:
    """Panels side by side in one PNG, written atomically. `backend`: "matplotlib", "pil", or None for matplotlib
    when it is installed. Returns the backend used."""
    if backend is None:
        try:
            import matplotlib  # noqa: F401

            backend = "matplotlib"
        except ImportError:
            backend = "pil"
    sheet = _matplotlib(panels) if backend == "matplotlib" else _pil(panels)
    save_atomic(sheet, Path(path))
    return backend


# -- matplotlib ---------------------------------------------------------------------------------------------------
def _matplotlib(panels: list[Panel]) -> Image.Image:
    # The object-oriented API with an Agg canvas: no pyplot, no global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(4.6 * len(panels), 3.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    for k, p in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel(p.xlabel)
        ax.set_ylabel(p.ylabel)
        ax.grid(True, color="0.9")
        if not any(s.finite() for s in p.series):
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        for i, s in enumerate(p.series):
            pts = s.finite()
            colour = tuple(c / 255 for c in COLOURS[i % len(COLOURS)])
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "o-", color=colour, label=s.label, markersize=4)
            for x, y, note in pts:
                ax.annotate(note, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color=colour)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=5))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.4g}"))  # 0.0005, not 5e-4 plus an offset
        ax.legend(fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


# -- Pillow fallback ------------------------------------------------------------------------------------------------
def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], int]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) inside [lo, hi], and the number of
    decimals that writes them exactly."""
    raw = (hi - lo) / max(n - 1, 1) or abs(lo) or 1.0
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = [v * step for v in range(first, math.floor(hi / step + 1e-9) + 1)]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / power, 3) == 2.5 else 0)
    return ticks, decimals


def _pil_panel(p: Panel, size: tuple[int, int] = (460, 360)) -> Image.Image:
    w, h = size
    left, right, top, bottom = 64, 16, 34, 44
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.text((left, 10), p.title, fill="black")
    pts = [(x, y) for s in p.series for x, y, _ in s.finite()]
    if not pts:
        d.text((left, h // 2), "no data", fill="black")
        return img
    xs, ys = [q[0] for q in pts], [q[1] for q in pts]

    def span(lo, hi):
        pad = (hi - lo) * 0.1 or abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(min(xs), max(xs)), span(min(ys), max(ys))

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right),
                h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    ticks, dec = nice_ticks(x0, x1)
    for v in ticks:
        x, _ = px(v, y0)
        d.line([x, h - bottom, x, h - bottom + 4], fill="black")
        d.text((x - 10, h - bottom + 6), f"{v:.{dec}f}", fill="black")
    ticks, dec = nice_ticks(y0, y1)
    for v in ticks:
        _, y = px(x0, v)
        d.line([left - 4, y, left, y], fill="black")
        d.text((4, y - 6), f"{v:.{dec}f}", fill="black")
    d.text((left + (w - left - right) // 2 - 3 * len(p.xlabel), h - 16), p.xlabel, fill="black")
    d.text((left + 4, top + 4), p.ylabel + " (y)", fill=(90, 90, 90))
    for i, s in enumerate(p.series):
        colour = COLOURS[i % len(COLOURS)]
        finite = s.finite()
        line = [px(x, y) for x, y, _ in finite]
        if len(line) > 1:
            d.line(line, fill=colour, width=2)
        for (x, y), (_, _, note) in zip(line, finite):
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            d.text((x + 4, y - 12), note, fill=colour)
        d.text((w - right - 150, top + 6 + 14 * i), s.label, fill=colour)
    return img


def _pil(panels: list[Panel]) -> Image.Image:
    images = [_pil_panel(p) for p in panels]
    sheet = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), "white")
    x = 0
    for im in images:
        sheet.paste(im, (x, 0))
        x += im.width
    return sheet
