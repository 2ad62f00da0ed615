"""How well base models denoise held-out images: the x_0-prediction error at a few noise levels, with the same
images, timesteps and noise for every model. A training run's progress, in one number per noise level, long
before its samples look like anything; high noise levels decide an image's layout.

    python bench/denoising_error.py bundled:base runs-exported/cpu-10min --data data/emoji

Prints one JSON line per model: the mean squared error of the (clipped) x_0 prediction against the true image
at each timestep, unconditional (empty caption) and with the true caption, and the error of the dataset's
mean image for scale. Each model sees the held-out images at its own resolution.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from glide.data.datasets import open_source
from glide.diffusion import Diffusion
from glide.pipeline import Pipeline
from glide.training.tasks import to_tensor


def heldout(data: str, size: int, n: int) -> tuple[torch.Tensor, list[str]]:
    """The same n held-out images (and their captions) for every call, at `size` px."""
    src = open_source(data, size, splits=("heldout_pair", "heldout_emoji"))
    pick = np.random.default_rng(0).choice(len(src), min(n, len(src)), replace=False)
    items = [src.load(int(i)) for i in pick]
    return to_tensor(np.stack([im for im, _ in items]), torch.device("cpu")), [c[0] for _, c in items]


@torch.no_grad()
def denoising_error(pipe: Pipeline, x0: torch.Tensor, captions: list[str], timesteps: list[int],
                    batch_size: int = 32, uncond: bool = True) -> dict[str, float]:
    """{"uncond_t300": mse, ..., "cond_t900": mse}: noise drawn from a fixed seed, so equal across models and
    across calls (`uncond=False`: the captioned rows alone)."""
    model = pipe.model
    d = Diffusion.from_schedule(model.cfg.noise_schedule, model.cfg.diffusion_steps)
    fn = pipe._model_fn(model)
    g = torch.Generator().manual_seed(1)
    noise = {t: torch.randn(x0.shape, generator=g) for t in timesteps}
    row = {"mean_image_mse": round(((x0 - x0.mean(0, keepdim=True)) ** 2).mean().item(), 4)}
    for cond in ("uncond", "cond") if uncond else ("cond",):
        for t in timesteps:
            err = 0.0
            for s in range(0, len(x0), batch_size):
                xb, nb = x0[s : s + batch_size], noise[t][s : s + batch_size]
                caps = captions[s : s + batch_size] if cond == "cond" else [""] * len(xb)
                i = torch.full((len(xb),), t)
                xt = d.q_sample(xb, i, nb)
                out = fn(xt, d.model_timesteps(i), text=pipe.encode(caps, model))
                pred = d.p_mean_variance(out.float(), xt, i, clip_denoised=True).pred_xstart
                err += ((pred - xb) ** 2).mean((1, 2, 3)).sum().item()
            row[f"{cond}_t{t}"] = round(err / len(x0), 4)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model folders (or bundled:base)")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=128, help="held-out images")
    ap.add_argument("--timesteps", default="300,500,700,900")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.manual_seed(0)
    timesteps = [int(t) for t in args.timesteps.split(",")]
    for path in args.models:
        pipe = Pipeline.from_pretrained(path)
        x0, captions = heldout(args.data, pipe.model.cfg.unet.image_size, args.n)
        row = {"model": path, "n": len(x0),
               **denoising_error(pipe, x0, captions, timesteps, args.batch_size)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
