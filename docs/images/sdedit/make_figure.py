"""Builds docs/images/sdedit/sketch_to_emoji.png from the `glide sdedit` grids listed in docs/editing.md."""

import sys

from PIL import Image, ImageDraw

from glide.images import grid

src, out = sys.argv[1], sys.argv[2]  # folder of the sdedit grids, output PNG
strengths, pad, scale = ("0.4", "0.6", "0.8"), 2, 2
rows = []
for name in ("apple", "face"):
    tiles = [Image.open(f"docs/images/sdedit/sketch_{name}.png")]
    for s in strengths:
        g = Image.open(f"{src}/{name}_{s}.png")  # a 2 x 2 grid of 64 px images with 2 px gaps
        tiles += [g.crop((pad + c * 66, pad + r * 66, pad + c * 66 + 64, pad + r * 66 + 64))
                  for r in range(2) for c in range(2)]
    rows.append(tiles)
body = grid([t for row in rows for t in row], cols=13, pad=pad)
sheet = Image.new("RGB", (body.width, body.height + 14), "white")
sheet.paste(body, (0, 14))
d = ImageDraw.Draw(sheet)
d.text((pad, 1), "sketch", fill="black")
for k, s in enumerate(strengths):
    d.text((pad + (1 + 4 * k) * 66 + 70, 1), f"strength {s}", fill="black")
sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST).save(out)
