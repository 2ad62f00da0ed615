"""Quality against sampling steps on a base model: `glide eval` metrics for fast samplers at several step
counts, next to the official notebooks' 100-step ancestral DDPM, at one guidance scale.

    python bench/quality_vs_steps.py --n 32 --out evalruns/steps
    python bench/quality_vs_steps.py --n 32 --series dpm++2m:10,25 ddpm:25 --out evalruns/steps

Samples are cached per batch under OUT (an interrupted run resumes; rows already sampled cost nothing). Writes
OUT/results.jsonl, OUT/table.md and OUT/quality_vs_steps.png (FD in CLIP space and CLIP score against steps, log
scale, one line per sampler).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from PIL import Image, ImageDraw

from glide.clip.io import load_clip
from glide.evaluation.evaluate import EvalConfig, Scorer, default_cache_dir, evaluate, model_key
from glide.pipeline import Pipeline, default_model, resolve_model
from glide.samplers import SAMPLERS

DEFAULT_SERIES = ("dpm++2m:10,15,25,50", "dpm++2m-sde:10,15,25", "ddpm:10,15,25,50")


COLOURS = {"dpm++2m": (40, 90, 200), "dpm++2m-sde": (30, 150, 60), "ddpm": (200, 60, 60), "ddim": (130, 60, 170)}


def plot(rows: list[dict], reference: dict, path: Path) -> None:
    """Two panels, FD (lower is better) and CLIP score (higher is better) against steps, one line per sampler;
    the reference (DDPM-100) is a dashed line. Drawn with Pillow to keep the benchmark free of plotting libraries."""
    w, h, pad = 420, 300, 52
    sheet = Image.new("RGB", (2 * w, h), "white")
    d = ImageDraw.Draw(sheet)
    steps = [r["steps"] for r in rows] + [reference["steps"]]
    lo, hi = math.log(min(steps)), math.log(max(steps))
    series = list(dict.fromkeys(r["sampler"] for r in rows))
    for panel, (key, title) in enumerate((("fd_clip", "FD (CLIP space), lower is better"),
                                          ("clip_score", "CLIP score, higher is better"))):
        x0 = panel * w
        vals = [r[key] for r in rows] + [reference[key]]
        vmin, vmax = min(vals), max(vals)
        span = (vmax - vmin) or 1.0
        vmin, vmax = vmin - 0.1 * span, vmax + 0.1 * span

        def px(s, v):
            x = x0 + pad + (math.log(s) - lo) / ((hi - lo) or 1) * (w - 2 * pad)
            y = h - pad - (v - vmin) / (vmax - vmin) * (h - 2 * pad)
            return x, y

        d.rectangle([x0 + pad, pad, x0 + w - pad, h - pad], outline="black")
        d.text((x0 + pad, 12), title, fill="black")
        d.text((x0 + w // 2 - 40, h - 22), "steps (log scale)", fill="black")
        for s in sorted(set(steps)):
            x, _ = px(s, vmin)
            d.text((x - 6, h - pad + 4), str(s), fill="black")
        for k in range(5):
            v = vmin + (vmax - vmin) * k / 4
            _, y = px(math.exp(lo), v)
            d.text((x0 + 4, y - 6), f"{v:.3g}" if key == "fd_clip" else f"{v:.1f}", fill="black")
        _, yref = px(math.exp(lo), reference[key])
        for xs in range(x0 + pad, x0 + w - pad, 10):
            d.line([xs, yref, xs + 5, yref], fill=(120, 120, 120), width=2)
        d.text((x0 + pad + 4, yref - 14), f"{reference['sampler']} {reference['steps']}", fill=(120, 120, 120))
        for k, name in enumerate(series):
            colour = COLOURS.get(name, (0, 0, 0))
            pts = [px(r["steps"], r[key]) for r in rows if r["sampler"] == name]
            if len(pts) > 1:
                d.line(pts, fill=colour, width=2)
            for x, y in pts:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            d.text((x0 + w - pad - 84, pad + 4 + 14 * k), name, fill=colour)
    sheet.save(path)


def parse_series(specs: list[str]) -> list[tuple[str, int]]:
    """["dpm++2m:10,15", "ddpm:25"] -> [("dpm++2m", 10), ("dpm++2m", 15), ("ddpm", 25)]"""
    out = []
    for spec in specs:
        sampler, _, steps = spec.partition(":")
        if sampler not in SAMPLERS or not steps:
            raise SystemExit(f"--series expects SAMPLER:STEPS[,STEPS...] with a sampler in {', '.join(SAMPLERS)}; "
                             f"got {spec!r}")
        out += [(sampler, int(s)) for s in steps.split(",")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="base model (default: the bundled one)")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--series", nargs="+", default=list(DEFAULT_SERIES), metavar="SAMPLER:STEPS",
                    help="samplers and their step counts (default: %(default)s)")
    ap.add_argument("--reference-steps", type=int, default=100, help="ancestral DDPM steps of the reference")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="evalruns/steps")
    args = ap.parse_args()

    model = args.model or default_model("base")
    pipe = Pipeline.from_pretrained(model)
    pipe.model_key = model_key(resolve_model(model))
    clip_dir = default_model("clip")
    scorer = Scorer(load_clip(clip_dir, pipe.device), None, "", model_key(clip_dir), default_cache_dir())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = parse_series(args.series)
    settings = [s for s in settings if s != ("ddpm", args.reference_steps)] + [("ddpm", args.reference_steps)]
    rows = []
    for sampler, steps in settings:
        cfg = EvalConfig(data=args.data, n=args.n, guidance_scales=(args.guidance_scale,), steps=str(steps),
                         sampler=sampler, batch_size=args.batch_size)
        t0 = time.perf_counter()
        row = evaluate(pipe, scorer, cfg, out / f"{sampler}-{steps}")[1]
        row = {"sampler": sampler, "steps": steps, **row, "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row))
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    lines = ["| sampler | steps | FD (CLIP) | CLIP score | precision | recall | sampling seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['fd_clip']:.3f} | {r['clip_score']:.2f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['sample_seconds']:.0f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows[:-1], rows[-1], out / "quality_vs_steps.png")
    print(f"wrote {out / 'results.jsonl'}, {out / 'table.md'}, {out / 'quality_vs_steps.png'}")


if __name__ == "__main__":
    main()
