"""Training throughput (images/s), eager against compiled and streamed against resident data, on this machine.

Each variant is a real `Trainer` step (data, hybrid loss, backward, clipping, AdamW, EMA) on synthetic data of
the model's shape; warm-up steps (which include compiling) are timed separately from the measured steps.

    python bench/train_speed.py                 # CUDA: the bundled base's shapes (emoji, inpaint, 64 px), batch 256
    python bench/train_speed.py --preset tiny   # CPU default: tiny preset, batch 4 (a couple of minutes)
    python bench/train_speed.py --variants eager-resident,compiled-resident --batch 512 --steps 100

Variants: eager-streamed (the default training path), eager-resident, compiled-resident (torch.compile of
forward + loss), graphs-resident (compile_mode reduce-overhead: CUDA graphs). On CUDA every variant also uses
bf16 autocast, channels_last and fused AdamW; on the CPU fp32 and the default optimizer. Besides images/s
(wall clock) it prints images per CPU-second of this process: on a shared CPU the fair comparison; on a GPU a
measure of the host work per image (what the resident path and CUDA graphs remove).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glide.config import get_preset  # noqa: E402
from glide.training import TrainConfig  # noqa: E402
from glide.training.trainer import Trainer  # noqa: E402
from glide.runtime import device_text  # noqa: E402

VARIANTS = {  # name -> TrainConfig overrides
    "eager-streamed": {},
    "eager-resident": {"resident": True},
    "compiled-resident": {"resident": True, "compile": True},
    "graphs-resident": {"resident": True, "compile": True, "compile_mode": "reduce-overhead"},
    # The CPU's own levers (AVX-512 BF16): bf16 autocast, and channels_last, which oneDNN's bf16 kernels prefer.
    "bf16-resident": {"resident": True, "precision": "bf16"},
    "bf16-cl-resident": {"resident": True, "precision": "bf16", "channels_last": True},
}


def machine(device: torch.device) -> str:
    return f"{device_text(device)}, torch {torch.__version__}"


def synthetic_data(folder: Path, size: int, n: int = 512) -> Path:
    """Random images with emoji-length captions (speed does not depend on the pixels)."""
    rng = np.random.default_rng(0)
    words = ["red", "apple", "smiling", "face", "with", "sunglasses", "heart", "cat", "pizza", "blue"]
    caps = [" ".join(rng.choice(words, 4)) + ", twemoji style" for _ in range(n)]
    alt = [[c.replace("twemoji", "openmoji")] for c in caps]
    path = folder / f"synthetic_{size}.npz"
    np.savez(path, images=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), captions=np.array(caps),
             captions_alt=json.dumps(alt), split=np.array(["train"] * n))
    return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, base: dict, data: Path, work: Path, warmup: int, steps: int) -> dict:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(**{**base, **VARIANTS[name]}, data=str(data), out=str(out),
                      max_steps=warmup + steps + 1, log_every=10**9, checkpoint_every=10**9)
    trainer = Trainer(cfg)
    trainer.model.train()
    t0 = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    sync(trainer.device)
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        res = trainer.train_step()
    loss = float(res["loss"])  # waits for the last step
    sync(trainer.device)
    t2, c2 = time.perf_counter(), time.process_time()
    trainer.stream.close()
    return {"variant": name, "batch": cfg.batch_size, "warmup_s": round(t1 - t0, 1), "steps": steps,
            "step_ms": round(1000 * (t2 - t1) / steps, 1), "img_per_s": round(steps * cfg.batch_size / (t2 - t1), 1),
            # this process's CPU time: on a shared CPU, images per CPU-second is what wall time cannot show
            "img_per_cpu_s": round(steps * cfg.batch_size / max(c2 - c1, 1e-9), 1),
            "loss": round(loss, 4)}


def main() -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="emoji" if cuda else "tiny")
    p.add_argument("--kind", default="inpaint")
    p.add_argument("--batch", type=int, default=256 if cuda else 4)
    p.add_argument("--steps", type=int, default=50 if cuda else 10, help="measured steps per variant")
    p.add_argument("--warmup", type=int, default=10 if cuda else 3, help="untimed steps first (compiling happens here)")
    p.add_argument("--variants", default=",".join(VARIANTS) if cuda else "eager-streamed,eager-resident,compiled-resident")
    p.add_argument("--json", help="also append the rows to this JSON-lines file")
    a = p.parse_args()
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    device = torch.device("cuda" if cuda else "cpu")
    base = {"preset": a.preset, "kind": a.kind, "batch_size": a.batch, "lr": 3e-4, "warmup_steps": 0,
            "ema_rate": 0.999, "workers": min(8, os.cpu_count() or 1), "sample_every": 0,
            "channels_last": cuda, "fused_adamw": cuda}
    size = get_preset(a.preset).unet.image_size
    print(f"machine: {machine(device)}")
    print(f"model: preset {a.preset}, kind {a.kind}, {size} px, batch {a.batch}, "
          f"{'bf16 autocast, channels_last, fused AdamW' if cuda else 'fp32'}; {a.warmup} warm-up + {a.steps} timed steps")
    rows = []
    with tempfile.TemporaryDirectory(prefix="train_speed.") as tmp:
        work = Path(tmp)
        data = synthetic_data(work, size)
        for name in names:
            row = measure(name, base, data, work, a.warmup, a.steps)
            rows.append(row)
            print(f"  {name:18s} {row['img_per_s']:9.1f} images/s, {row['img_per_cpu_s']:9.1f} per CPU-second "
                  f"({row['step_ms']} ms/step, warm-up {row['warmup_s']} s)", flush=True)
    print("\n| variant | batch | images/s | images per CPU-s | ms/step | warm-up (s) |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['batch']} | {r['img_per_s']:,} | {r['img_per_cpu_s']:,} | {r['step_ms']} | {r['warmup_s']} |")
    if a.json:
        with open(a.json, "a") as f:
            for r in rows:
                f.write(json.dumps({"machine": machine(device), "preset": a.preset, "kind": a.kind, **r}) + "\n")


if __name__ == "__main__":
    main()
