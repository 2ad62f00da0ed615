"""Whole commands on the CPU, as a user runs them: wall time of the process, start-up, model loading and writing
the PNGs included, with today's defaults against a baseline (by default `--dtype fp32`, the CPU default before
bf16; `--baseline "--guidance-interval all"` for guidance at every step) run alternately in the same session.

    python bench/cpu_commands.py [--repeats 3] [--baseline "--dtype fp32"] [--json docs/results/cpu_commands.jsonl]

Commands (4 images of one prompt, the bundled models): `glide sample`, the same with `--upsample` (the 64 -> 256
cascade), `glide inpaint` with a box, and `glide --help`. Each row: the median of `--repeats` runs after one
warm-up run (which fills the page cache), for both settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from glide.runtime import cpu_description

PROMPT = "red apple, twemoji style"


def glide(*args: str) -> list[str]:
    """The `glide` console script of this environment (what a user runs), else `python -m glide`."""
    script = Path(sys.executable).with_name("glide")
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "glide", *args]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated command names (default: all)")
    ap.add_argument("--json", default=None, help="append one JSON line per row to this file")
    ap.add_argument("--baseline", default="--dtype fp32", help="the options of the baseline (default: %(default)s)")
    args = ap.parse_args()
    baseline = shlex.split(args.baseline)

    tmp = Path(tempfile.mkdtemp(prefix="glide-bench-"))
    image = tmp / "apple.png"  # the inpainting input: one sample of the bundled base
    subprocess.run(glide("sample", PROMPT, "-n", "1", "--seed", "0", "-q", "--out", str(image)), check=True)
    commands = {
        "sample": ["sample", PROMPT, "-n", "4", "--seed", "0", "-q", "--out", str(tmp / "s.png")],
        "sample --upsample": ["sample", PROMPT, "-n", "4", "--seed", "0", "--upsample", "-q",
                              "--out", str(tmp / "u.png")],
        "inpaint": ["inpaint", str(image), "green apple, twemoji style", "--box", "16,16,48,48", "-n", "4",
                    "--seed", "0", "-q", "--out", str(tmp / "i.png")],
        "--help": ["--help"],
    }
    only = [c for c in args.only.split(",") if c]
    machine = {**cpu_description(), "threads": os.cpu_count(),
               "python": platform.python_version()}
    print(f"{'command':<20} {'default':>9} {args.baseline:>13} {'ratio':>7}")
    for name, argv in commands.items():
        if only and name not in only:
            continue
        variants = {"default": glide(*argv)}
        if name != "--help":
            variants["baseline"] = glide(*argv, *baseline)
        for cmd in variants.values():  # warm-up: page cache, bytecode
            timed(cmd)
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):  # alternate, so that drift in the machine hits both alike
            for k, cmd in variants.items():
                times[k].append(timed(cmd))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["baseline"] / med["default"] if "baseline" in med else None
        print(f"{name:<20} {med['default']:>8.2f}s {med.get('baseline', float('nan')):>12.2f}s "
              f"{'' if ratio is None else f'{ratio:.2f}x':>7}", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"command": "glide " + shlex.join(argv).replace(str(tmp) + "/", ""),
                                    "seconds_default": round(med["default"], 2),
                                    "baseline": args.baseline,
                                    "seconds_baseline": round(med["baseline"], 2) if "baseline" in med else None,
                                    "runs": {k: [round(x, 2) for x in v] for k, v in times.items()},
                                    **machine}) + "\n")


if __name__ == "__main__":
    main()
