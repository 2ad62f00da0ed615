"""Sampling speed of a GLIDE preset with random weights (speed does not depend on weight values).

Prints one JSON line per measurement, naming the device:
  forward   - one U-Net forward pass (text pre-encoded), images/s
  sample    - classifier-free-guided sampling (2 forward rows per image per step), images/s; on a CPU only
              a few steps are run and the figure is extrapolated to --steps (the line says so)

    python bench/sample_speed.py                       # base preset, batches 1, 8, 32
    python bench/sample_speed.py --dtype bf16          # CUDA autocast
    python bench/sample_speed.py --attention math      # SDPA forced to the plain math kernel, for comparison
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from glide import GLIDE, Pipeline, get_preset
from glide.runtime import device_text


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def attention_ctx(kind: str):
    if kind == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel({"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
                        "efficient": SDPBackend.EFFICIENT_ATTENTION}[kind])


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="base")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--steps", type=int, default=100, help="sampling steps to report")
    ap.add_argument("--cpu-steps", type=int, default=2, help="steps actually run on a CPU (extrapolated)")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None)
    ap.add_argument("--attention", choices=["auto", "math", "flash", "efficient"], default="auto")
    ap.add_argument("--device", default=None)
    ap.add_argument("--skip-sample", action="store_true")
    args = ap.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = get_preset(args.preset)
    with torch.device(device):
        model = GLIDE(cfg).eval()
    pipe = Pipeline(model, device, args.dtype)
    base = dict(preset=args.preset, device=device_text(device), dtype=pipe.precision.name,
                attention=args.attention, torch=torch.__version__)
    size = cfg.unet.image_size
    for b in [int(s) for s in args.batches.split(",")]:
        try:
            with torch.no_grad(), attention_ctx(args.attention):
                text = pipe.encode(["a corgi wearing a red bow tie"] * b)
                x = torch.randn(b, 3, size, size, device=device)
                t = torch.full((b,), 500, device=device)
                kw = {}
                if cfg.super_res:
                    kw["low_res"] = torch.randn(b, 3, cfg.low_res_size, cfg.low_res_size, device=device)

                def forward():
                    with pipe.autocast():
                        model(x, t, text, **kw)

                reps = 10 if device.type == "cuda" else 1
                sec = timed(forward, device, reps)
                print(json.dumps({**base, "bench": "forward", "batch": b, "seconds": round(sec, 5),
                                  "images_per_s": round(b / sec, 3)}), flush=True)
                if args.skip_sample:
                    continue
                run_steps = args.steps if device.type == "cuda" else min(args.cpu_steps, args.steps)
                prompts = ["a corgi wearing a red bow tie"] * b
                inputs = {"low_res": kw["low_res"]} if kw else None

                def sample():
                    # Respace to --steps, but on a CPU run only the first few of them.
                    d = pipe.diffusion(args.steps)
                    if run_steps < args.steps:
                        d = _truncated(d, run_steps)
                    pipe.sample(prompts, guidance_scale=3.0, steps=d, inputs=inputs)

                sec = timed(sample, device, 1) * args.steps / run_steps
                print(json.dumps({**base, "bench": "sample_cfg", "batch": b, "steps": args.steps,
                                  "steps_run": run_steps, "extrapolated": run_steps < args.steps,
                                  "seconds": round(sec, 3), "images_per_s": round(b / sec, 4)}), flush=True)
        except torch.cuda.OutOfMemoryError:
            print(json.dumps({**base, "batch": b, "error": "out of memory"}), flush=True)
            torch.cuda.empty_cache()


def _truncated(d, n):
    """The first n (noisiest) steps of a respaced schedule, to time a few steps of a long run."""
    from glide.diffusion import Diffusion

    return Diffusion(d.betas[-n:], d.timesteps[-n:])


if __name__ == "__main__":
    main()
