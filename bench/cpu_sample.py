"""CPU sampling time with the bundled models: 4 images at 64 px with the default sampler (DPM++ 2M, 20 steps,
guidance 3), and the 64 -> 256 cascade (upsampler: fast27 DDIM). Each is timed with NCHW (PyTorch's default) and
NHWC (channels_last, what Pipeline uses on CPU) weights in the same process, and the ratio is printed.

    python bench/cpu_sample.py [--repeats 2] [--skip-cascade]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from glide.pipeline import Pipeline, default_model, load_model

PROMPT = "red apple, twemoji style"


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-cascade", action="store_true")
    args = ap.parse_args()
    base, _ = load_model(default_model("base"))
    up, _ = load_model(default_model("upsampler"))
    pipe = Pipeline(base, "cpu", upsampler=up)  # channels_last on CPU
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "cores": os.cpu_count(), "torch": torch.__version__}
    cases = [("64px x4", dict(upsample=False))] + ([] if args.skip_cascade else [("256px cascade x4", dict(upsample=True))])
    for name, kw in cases:
        times = {}
        for fmt in (torch.contiguous_format, torch.channels_last):
            pipe.model.to(memory_format=fmt)
            pipe.upsampler.to(memory_format=fmt)
            times[str(fmt).split(".")[-1]] = timed(
                lambda: pipe(PROMPT, 4, guidance_scale=3.0, steps=20, sampler="dpm++2m", seed=0, progress=False, **kw),
                args.repeats)
        print(json.dumps({"case": name, "seconds": {k: round(v, 2) for k, v in times.items()},
                          "speedup_channels_last": round(times["contiguous_format"] / times["channels_last"], 3),
                          **machine}))


if __name__ == "__main__":
    main()
