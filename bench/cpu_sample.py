"""CPU sampling with the bundled models, one row per speed lever, all in one process against the previous
defaults: 4 images of one prompt at 64 px (the README's main command; DPM-Solver++(2M) SDE, guidance 3: two model
rows per image and step) and the 64 -> 256 cascade (the upsampler: fast27 DDIM).

    python bench/cpu_sample.py [--repeats 2] [--steps 20] [--fast-steps 15] [--skip-cascade] [--skip-compile]
                               [--psnr] [--model DIR] [--json docs/results/cpu_sample_levers.jsonl]

Levers, each alone against the baseline (fp32, NHWC, 20 steps, glibc's default malloc), then all adopted ones
together: NCHW instead of NHWC (channels_last), bf16 autocast (and for the cascade each model's default precision:
the base in bf16, the upsampler mixed, i.e. bf16 only at low noise; glide.runtime.default_precision),
torch.compile (inductor's C++ backend; its cache persists in the inductor cache folder, so the first-call time
shown is a warm start when the cache was filled before), fewer steps, classifier-free guidance only above a noise
level (inpainting's default interval; the baseline guides every step, as text-to-image does by default), one row
per image instead of two with a guidance-distilled base (glide.training.distill; the baseline runs classifier-free
guidance's two rows on it, the undistilled model's cost) and the allocator setting (glide.runtime.keep_freed_memory). The allocator setting cannot be undone in a process, so its
rows come last. Start-up levers (lazy imports, skipping the weight init of a model that
is about to be loaded) only show in whole commands: bench/cpu_commands.py times those.

`--psnr` also samples the same noise in fp32 and in bf16 with every sampler and prints the PSNR between them.
On a CPU without bf16 instructions (AVX512-BF16 or AMX) the bf16 rows and the PSNR are left out: bf16 is emulated
there, several times slower than fp32 (`--emulated-bf16` runs them anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from glide.defaults import INPAINT_GUIDANCE_INTERVAL
from glide.evaluation.metrics import psnr
from glide.images import to_uint8
from glide.pipeline import Pipeline, default_model, load_model
from glide.runtime import cpu_description, cpu_has_native_bf16, default_precision, keep_freed_memory

PROMPT = "red apple, twemoji style"


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call, best of the next `repeats`) in seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return first, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="the baseline's steps")
    ap.add_argument("--fast-steps", type=int, default=15, help="the 'fewer steps' lever")
    ap.add_argument("--skip-cascade", action="store_true")
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--psnr", action="store_true")
    ap.add_argument("--emulated-bf16", action="store_true",
                    help="run the bf16 rows also on a CPU without bf16 instructions (emulated: minutes per row)")
    ap.add_argument("--json", help="append the rows to this JSON-lines file")
    ap.add_argument("--model", help="the base (default: the bundled one)")
    args = ap.parse_args()
    bf16 = cpu_has_native_bf16() or args.emulated_bf16
    if not bf16:
        print("this CPU has no bf16 instructions: the bf16 rows are left out (--emulated-bf16 runs them)", flush=True)

    base, _ = load_model(args.model or default_model("base"))
    up, _ = load_model(default_model("upsampler"))
    distilled = bool(base.cfg.distilled_guidance)
    machine = {**cpu_description(), "threads": torch.get_num_threads(),
               "cores": os.cpu_count(), "torch": torch.__version__}
    rows: list[dict] = []

    def run(case: str, lever: str, *, dtype="fp32", fmt=torch.channels_last, steps=args.steps, compile=False,
            upsample=False, interval=None, distilled=False) -> dict:
        pipe = Pipeline(base, "cpu", dtype, upsampler=up, compile=compile)
        pipe.guidance_interval = interval  # None: guided at every step (the baseline)
        pipe.distilled_guidance = distilled  # off: classifier-free guidance's two rows per image (the baseline)
        pipe.model.to(memory_format=fmt)
        pipe.upsampler.to(memory_format=fmt)
        first, best = timed(lambda: pipe(PROMPT, 4, guidance_scale=3.0, steps=steps, sampler="dpm++2m-sde", seed=0,
                                         upsample=upsample, progress=False), args.repeats)
        row = {"case": case, "lever": lever, "seconds": round(best, 2), "first_call_seconds": round(first, 2)}
        ref = next((r for r in rows if r["case"] == case and r["lever"] == "baseline"), row)
        row["speedup"] = round(ref["seconds"] / row["seconds"], 2)
        rows.append(row)
        print(json.dumps({**row, **machine}), flush=True)
        return row

    cpu = torch.device("cpu")
    interval = INPAINT_GUIDANCE_INTERVAL  # inpainting's default; measured, not adopted, for text-to-image
    defaults = (f"base {default_precision(cpu, base.cfg).name}, "
                f"upsampler {default_precision(cpu, up.cfg).name}")
    cases = [("64px x4", False)] + ([] if args.skip_cascade else [("256px cascade x4", True)])
    for case, upsample in cases:
        run(case, "baseline", upsample=upsample)
        run(case, "NCHW instead of channels_last", fmt=torch.contiguous_format, upsample=upsample)
        if bf16:
            run(case, "bf16", dtype="bf16", upsample=upsample)
        if upsample:  # each model's own default: the base (v) in bf16, the upsampler (eps) mixed
            run(case, defaults, dtype=None, upsample=upsample)
        if not args.skip_compile:
            run(case, "torch.compile", compile=True, upsample=upsample)
        run(case, f"{args.fast_steps} steps", steps=args.fast_steps, upsample=upsample)
        run(case, f"guidance only above sigma {interval[0]:g}", interval=interval, upsample=upsample)
        if distilled:
            run(case, "guidance-distilled base (one row per image)", distilled=True, upsample=upsample)
    keep_freed_memory()
    for case, upsample in cases:
        run(case, "keep freed memory (malloc)", upsample=upsample)
        if bf16:
            run(case, "bf16 + malloc", dtype="bf16", upsample=upsample)
        if upsample:
            run(case, f"{defaults} + malloc", dtype=None, upsample=upsample)
        run(case, f"{'bf16' if bf16 else 'fp32'} + malloc + {args.fast_steps} steps", dtype="bf16" if bf16 else "fp32",
            steps=args.fast_steps, upsample=upsample)
        if distilled:  # today's defaults: each model's precision, malloc, the distilled base's one row
            run(case, f"{defaults} + malloc + distilled", dtype=None, upsample=upsample, distilled=True)
    if args.json:
        with open(args.json, "a") as f:
            for r in rows:
                f.write(json.dumps({**r, **machine}) + "\n")
    print(f"\n| case | lever | seconds | speedup | first call |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['lever']} | {r['seconds']:.1f} | {r['speedup']:.2f}x | {r['first_call_seconds']:.1f} |")

    if args.psnr and bf16:
        from glide.samplers import SAMPLERS

        for sampler in SAMPLERS:
            outs = {}
            for dtype in ("fp32", "bf16"):
                pipe = Pipeline(base, "cpu", dtype)
                outs[dtype] = pipe.sample([PROMPT] * 4, guidance_scale=3.0, steps=args.steps, sampler=sampler,
                                          generator=torch.Generator().manual_seed(0))
            line = {"psnr_bf16_vs_fp32_db": round(psnr(to_uint8(outs["fp32"]), to_uint8(outs["bf16"])), 1), "sampler": sampler,
                    "steps": args.steps, "images": 4}
            print(json.dumps(line), flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps({**line, **machine}) + "\n")


if __name__ == "__main__":
    main()
