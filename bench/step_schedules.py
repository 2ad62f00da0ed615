"""Which timesteps should a short sampling run spend its model calls on? A quick probe of the discretisation error
of step schedules: the deterministic solver (dpm++2m, the probability-flow ODE) run on each schedule from the same
noise and captions, against the same solver at many evenly spaced steps (close to the ODE's exact solution).

    python bench/step_schedules.py --n 16 --steps 12,14 --reference-steps 100 --json docs/results/step_schedules.jsonl

Each schedule keeps `steps` timesteps of the model's 1000, from 999 (pure noise) down to 0; the solver calls the
model once per kept timestep. Prints the median PSNR of each schedule's samples against the reference ones (higher:
closer to the exact solution) and the kept timesteps. The ODE's error is a proxy: the default sampler is the SDE
form (dpm++2m-sde), whose samples do not pair across schedules (fresh noise at every step), so a schedule this probe
favours still has to pass the paired quality check (bench/quality_vs_steps.py, then bench/paired_bootstrap.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from glide.diffusion.gaussian import Diffusion
from glide.diffusion.schedule import SCHEDULE_SHAPES, space_timesteps
from glide.evaluation.evaluate import EvalConfig, load_reference
from glide.evaluation.metrics import psnr
from glide.pipeline import Pipeline, default_model
from glide.runtime import device_text
from glide.samplers import randn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="base model (default: the bundled one)")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=16, help="images (held-out captions, one each)")
    ap.add_argument("--steps", default="12,14", help="comma-separated step counts to probe")
    ap.add_argument("--shapes", default=",".join(["even", *SCHEDULE_SHAPES]),
                    help="schedules: even (the default respacing) and the named shapes of glide.diffusion.schedule")
    ap.add_argument("--reference-steps", type=int, default=100)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", default=None, help="append one JSON line per schedule to this file")
    ap.add_argument("--reference-cache", default=None,
                    help="keep the reference samples in this .pt file and reuse them when model, captions, noise and "
                         "steps match (a second run then costs only its schedules)")
    args = ap.parse_args()

    pipe = Pipeline.from_pretrained(args.model or default_model("base"))
    captions = load_reference(EvalConfig(data=args.data, n=args.n), pipe.cfg.unet.image_size)[1]  # glide eval's draw
    full = Diffusion.from_schedule(pipe.cfg.noise_schedule, pipe.cfg.diffusion_steps)
    noise = randn((len(captions), 3, pipe.cfg.unet.image_size, pipe.cfg.unet.image_size), torch.Generator().manual_seed(0))

    def run(spec: str) -> tuple[torch.Tensor, float]:
        diffusion = full.respace(spec)
        t0, out = time.perf_counter(), []
        for i in range(0, len(captions), args.batch_size):
            out.append(pipe.sample(captions[i : i + args.batch_size], guidance_scale=args.guidance_scale,
                                   steps=diffusion, sampler="dpm++2m", x=noise[i : i + args.batch_size].clone()))
        return torch.cat(out).float(), time.perf_counter() - t0

    print(f"device: {device_text(pipe.device)}; {len(captions)} held-out captions, guidance {args.guidance_scale:g}",
          flush=True)
    key = {"model": str(args.model or default_model("base")), "captions": captions, "steps": args.reference_steps,
           "guidance": args.guidance_scale, "dtype": pipe.precision.name}
    cache = Path(args.reference_cache) if args.reference_cache else None
    if cache is not None and cache.is_file() and (saved := torch.load(cache, weights_only=True))["key"] == key:
        reference, seconds = saved["images"], 0.0
    else:
        reference, seconds = run(str(args.reference_steps))
        if cache is not None:
            torch.save({"key": key, "images": reference}, cache)
    print(f"reference: dpm++2m, {args.reference_steps} even steps ({seconds:.0f} s)", flush=True)
    print(f"{'schedule':>10} {'steps':>5} {'PSNR median':>11} {'10th pct':>8}  timesteps")
    for steps in (int(s) for s in args.steps.split(",")):
        for shape in args.shapes.split(","):
            spec = str(steps) if shape == "even" else f"{shape}{steps}"
            timesteps = space_timesteps(full.num_timesteps, spec, full.alphas_cumprod)
            images, seconds = run(spec)
            p = psnr(images, reference, peak=2.0, per_image=True)  # [-1, 1] images
            row = {"schedule": shape, "spec": spec, "steps": steps, "psnr_median": round(float(np.median(p)), 2),
                   "psnr_p10": round(float(np.percentile(p, 10)), 2), "timesteps": timesteps, "n": len(captions),
                   "reference": f"dpm++2m-{args.reference_steps}", "guidance": args.guidance_scale,
                   "seconds": round(seconds, 1), "device": device_text(pipe.device)}
            print(f"{shape:>10} {steps:>5} {row['psnr_median']:>11.2f} {row['psnr_p10']:>8.2f}  {timesteps}", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
