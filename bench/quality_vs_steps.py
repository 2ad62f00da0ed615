"""Quality against sampling steps on a base model: `glide eval` metrics for fast samplers at several step
counts, next to the official notebooks' 100-step ancestral DDPM, at one guidance scale.

    python bench/quality_vs_steps.py --n 32 --out evalruns/steps
    python bench/quality_vs_steps.py --n 32 --series dpm++2m:10,25 ddpm:25 --out evalruns/steps
    python bench/quality_vs_steps.py --n 128 --series dpm++2m-sde:12,15,20@bf16 --reference dpm++2m-sde:20@fp32

A series or reference may end in @fp32 or @bf16 (the precision it samples in; default fp32; bf16 settings are
stored under names ending in -bf16) and in @iLOW-HIGH: classifier-free guidance only at the steps whose noise level
sigma lies in (LOW, HIGH] (glide.guidance.noise_interval; names end in -iLOW-HIGH), and @r with it: outside the
interval, the last guided step's difference is reused (glide.guidance.classifier_free; names end in -reuse).
Without @i every step is guided, whatever the model's default interval. STEPS may also be a shaped schedule of
glide.diffusion.schedule (`dpm++2m-sde:karras12`: 12 model calls spaced by Karras et al.'s rule).

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
from glide.diffusion.schedule import SCHEDULE_SHAPES, space_timesteps
from glide.errors import GlideError
from glide.evaluation.evaluate import EvalConfig, Scorer, default_cache_dir, evaluate, model_key
from glide.pipeline import Pipeline, default_model, resolve_model
from glide.samplers import SAMPLERS

DEFAULT_SERIES = ("dpm++2m:10,15,25,50", "dpm++2m-sde:10,15,25", "ddpm:10,15,25,50")


COLOURS = {"dpm++2m": (40, 90, 200), "dpm++2m-sde": (30, 150, 60), "ddpm": (200, 60, 60), "ddim": (130, 60, 170)}


def _count(steps: int | str) -> int:
    """The number of model calls of a step setting: 20, or 12 for a shaped schedule such as "karras12"."""
    return int(str(steps).lstrip("abcdefghijklmnopqrstuvwxyz"))


def _label(row: dict) -> str:
    interval = row.get("interval")
    shape = str(row["steps"]).rstrip("0123456789")
    return (row["sampler"] + (f" {shape}" if shape else "") + ("" if row.get("dtype", "fp32") == "fp32" else f" {row['dtype']}")
            + (f" guided in ({interval[0]:g}, {interval[1]:g}]" if interval else "")
            + (", reused outside" if row.get("reuse") else ""))


def plot(rows: list[dict], reference: dict, path: Path) -> None:
    """Two panels, FD (lower is better) and CLIP score (higher is better) against steps, one line per sampler;
    the reference (DDPM-100) is a dashed line. Drawn with Pillow to keep the benchmark free of plotting libraries."""
    w, h, pad = 420, 300, 52
    sheet = Image.new("RGB", (2 * w, h), "white")
    d = ImageDraw.Draw(sheet)
    steps = [_count(r["steps"]) for r in rows] + [_count(reference["steps"])]
    lo, hi = math.log(min(steps)), math.log(max(steps))
    series = list(dict.fromkeys(_label(r) for r in rows))
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
        d.text((x0 + pad + 4, yref - 14), f"{_label(reference)} {_count(reference['steps'])}", fill=(120, 120, 120))
        for k, name in enumerate(series):
            colour = COLOURS.get(name.split()[0], (0, 0, 0))
            pts = [px(_count(r["steps"]), r[key]) for r in rows if _label(r) == name]
            if name.endswith("bf16"):
                colour = tuple(int(c * 0.6 + 255 * 0.4) for c in colour)
            if len(pts) > 1:
                d.line(pts, fill=colour, width=2)
            for x, y in pts:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            d.text((x0 + w - pad - 84, pad + 4 + 14 * k), name, fill=colour)
    sheet.save(path)


def parse_series(specs: list[str]) -> list[tuple[str, int | str, str, tuple[float, float] | None, bool]]:
    """["dpm++2m:10,15", "ddpm:25@bf16@i0.28-5.42@r", "dpm++2m-sde:karras12"] -> [("dpm++2m", 10, "fp32", None,
    False), ("dpm++2m", 15, "fp32", None, False), ("ddpm", 25, "bf16", (0.28, 5.42), True), ("dpm++2m-sde",
    "karras12", "fp32", None, False)]: a step count, or a shaped schedule of glide.diffusion.schedule."""
    out = []
    for spec in specs:
        head, *tails = spec.split("@")
        sampler, _, steps = head.partition(":")
        dtype, interval, reuse = "fp32", None, False
        try:
            for tail in tails:
                if tail in ("fp32", "bf16"):
                    dtype = tail
                elif tail.startswith("i"):
                    low, high = (float(v) for v in tail[1:].split("-"))
                    interval = (low, high)
                elif tail == "r":
                    reuse = True
                else:
                    raise ValueError(tail)
            if sampler not in SAMPLERS or not steps or (reuse and not interval):
                raise ValueError(head)
            counts = [int(s) if s.isdigit() else _shaped(s) for s in steps.split(",")]
        except ValueError:
            raise SystemExit(f"--series expects SAMPLER:STEPS[,STEPS...][@fp32|@bf16][@iLOW-HIGH[@r]] (STEPS: a count or "
                         f"a shaped schedule such as karras12) with a sampler "
                             f"in {', '.join(SAMPLERS)}; got {spec!r}") from None
        out += [(sampler, n, dtype, interval, reuse) for n in counts]
    return out


def _shaped(spec: str) -> str:
    if not any(spec.startswith(shape) for shape in SCHEDULE_SHAPES):
        raise ValueError(spec)
    try:
        space_timesteps(1000, spec)
    except GlideError:
        raise ValueError(spec) from None
    return spec


def setting_name(sampler: str, steps: int | str, dtype: str, interval: tuple[float, float] | None = None,
                 reuse: bool = False) -> str:
    return (f"{sampler}-{steps}" + ("" if dtype == "fp32" else f"-{dtype}")
            + (f"-i{interval[0]:g}-{interval[1]:g}" if interval else "") + ("-reuse" if reuse else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="base model (default: the bundled one)")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--splits", default="heldout_pair,heldout_emoji",
                    help="the data splits whose captions are drawn (default: %(default)s; 'train' for seen captions)")
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--series", nargs="+", default=list(DEFAULT_SERIES), metavar="SAMPLER:STEPS",
                    help="samplers and their step counts (default: %(default)s)")
    ap.add_argument("--reference", default="ddpm:100", metavar="SAMPLER:STEPS[@DTYPE]",
                    help="the setting the others are drawn against (default: %(default)s, the official notebooks')")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="evalruns/steps")
    args = ap.parse_args()

    model = args.model or default_model("base")
    base = Pipeline.from_pretrained(model)
    pipes = {}
    for dtype in ("fp32", "bf16"):  # one model, two precisions (evaluate's sample cache keys on the precision)
        pipes[dtype] = Pipeline(base.model, base.device, dtype)
        pipes[dtype].model_key = model_key(resolve_model(model))
    clip_dir = default_model("clip")
    scorer = Scorer(load_clip(clip_dir, base.device), None, "", model_key(clip_dir), default_cache_dir())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reference = parse_series([args.reference])[0]
    settings = [s for s in parse_series(args.series) if s != reference] + [reference]
    rows = []
    for sampler, steps, dtype, interval, reuse in settings:
        cfg = EvalConfig(data=args.data, n=args.n, splits=tuple(args.splits.split(",")),
                         guidance_scales=(args.guidance_scale,), steps=str(steps),
                         sampler=sampler, batch_size=args.batch_size)
        t0 = time.perf_counter()
        pipes[dtype].guidance_interval, pipes[dtype].guidance_reuse = interval, reuse
        row = evaluate(pipes[dtype], scorer, cfg, out / setting_name(sampler, steps, dtype, interval, reuse))[1]
        row = {"sampler": sampler, "steps": steps, "dtype": dtype, **({"interval": interval} if interval else {}),
               **({"reuse": True} if reuse else {}),
               **row,
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row))
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    lines = ["| sampler | steps | dtype | FD (CLIP) | CLIP score | precision | recall | sampling seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['dtype']} | {r['fd_clip']:.3f} | {r['clip_score']:.2f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['sample_seconds']:.0f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows[:-1], rows[-1], out / "quality_vs_steps.png")
    print(f"wrote {out / 'results.jsonl'}, {out / 'table.md'}, {out / 'quality_vs_steps.png'}")


if __name__ == "__main__":
    main()
