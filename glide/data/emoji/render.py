"""Rendering items to RGB on white: SVGs with resvg, Noto with FreeType; the worker processes of the build."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from .captions import NOTO_PX, STYLES
from .sources import Item, image_path


def _on_white(im: Image.Image, size: int) -> Image.Image:
    """RGBA of any shape -> RGB size x size, centered on white."""
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    canvas.alpha_composite(im.convert("RGBA"), ((size - im.width) // 2, (size - im.height) // 2))
    return canvas.convert("RGB")


def render_svg(svg: str, size: int) -> Image.Image:
    """An SVG string -> RGB size x size on white; aspect kept, centered."""
    import resvg_py

    # resvg scales to the given width keeping the aspect ratio; a tall drawing is redone by height.
    # System fonts are skipped so the output does not depend on the machine (emoji SVGs have no text);
    # dpi=96 is the CSS value, without which sizes in mm or inches (old clip art) are rejected as invalid.
    def draw(**fit):
        return Image.open(io.BytesIO(resvg_py.svg_to_bytes(svg_string=svg, dpi=96, skip_system_fonts=True, **fit)))

    im = draw(width=size)
    if im.height > size:
        im = draw(height=size)
    return _on_white(im, size)


def render_noto(font, text: str) -> Image.Image | None:
    """An emoji drawn with Noto Color Emoji -> RGB square (about 136 px) on white; None if not in the font.

    The glyph cell (not the ink) is centered, so relative sizes survive. A sequence the font lacks comes
    out as several glyphs side by side (or nothing), which we detect and skip.
    """
    from PIL import ImageDraw

    if font.getlength(text) > 1.5 * font.getlength("\U0001F600"):
        return None
    left, top, right, bottom = font.getbbox(text)
    side = max(right - left, bottom - top)
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(im).text(((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top), text,
                            font=font, embedded_color=True)
    if im.getbbox() is None:
        return None
    return _on_white(im, side)


_worker: dict = {}


def _init_worker(tmp: str, sizes: list[int], noto_font: str | None) -> None:
    from PIL import ImageFont

    _worker.update(tmp=Path(tmp), sizes=sizes,
                   font=ImageFont.truetype(noto_font, NOTO_PX) if noto_font else None)


def sizes_for(style: str, sizes: list[int]) -> list[int]:
    limit = STYLES[style].max_size
    return [s for s in sizes if limit is None or s <= limit]


def _render_item(item: Item) -> dict[int, np.ndarray] | None:
    """Render one item at every size it allows, write its PNGs, and return the arrays (None on failure)."""
    sizes = sizes_for(item.style, _worker["sizes"])
    try:
        if item.style == "noto":
            big = render_noto(_worker["font"], item.src)
            if big is None:
                return None
            images = {s: big.resize((s, s), Image.LANCZOS) for s in sizes}
        else:
            svg = Path(item.src).read_text(encoding="utf-8")
            images = {s: render_svg(svg, s) for s in sizes}
    except (ValueError, OSError, UnicodeDecodeError):  # resvg raises ValueError on a bad SVG
        return None
    arrays = {s: np.asarray(im, dtype=np.uint8) for s, im in images.items()}
    if any(a.min() == 255 for a in arrays.values()):  # blank: nothing was drawn
        return None
    for s, im in images.items():
        path = _worker["tmp"] / image_path(s, item)
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path)
    return arrays
