"""Guidance wraps a model into a denoiser `(x_t, t) -> [B, 6, H, W]` for the samplers.

Classifier-free guidance (GLIDE §2.4, Ho & Salimans 2021): run the conditional and unconditional
inputs in one batch, push eps away from the unconditional prediction,
    eps = eps(x | empty) + s * (eps(x | caption) - eps(x | empty)),
and keep the conditional half's variance. s = 1 is plain conditional sampling (one forward pass);
s = 0 is unconditional.

Guidance-distilled models (ModelConfig.distilled_guidance, glide.training.distill) predict the guided output
themselves, given the scale: `distilled` runs one row per image instead of two.

Guidance interval (Kynkäänniemi et al. 2024, "Applying guidance in a limited interval improves sample and
distribution quality in diffusion models"): guide only at the noise levels where it pays, and run the
conditional half alone elsewhere, one forward pass instead of two. Which levels pay depends on the model
(docs/benchmarks.md measures it for the bundled base).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from .errors import GlideError
from .models import GLIDE, TextEmbedding

ModelInputs = dict[str, Any]  # keyword inputs of GLIDE.forward: text, low_res, inpaint_image, inpaint_mask


def _cat(a: ModelInputs, b: ModelInputs) -> ModelInputs:
    out = {}
    for k, v in a.items():
        if v is None:
            out[k] = None
        elif isinstance(v, TextEmbedding):
            out[k] = v.cat(b[k])
        else:
            out[k] = torch.cat([v, b[k]])
    return out


def conditional(model: Callable[..., torch.Tensor], inputs: ModelInputs):
    """A plain denoiser: the model with fixed conditioning inputs."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x, t, **inputs)

    return denoise


def guided_timesteps(alpha_bar: Sequence[float] | np.ndarray, interval: tuple[float, float]) -> np.ndarray:
    """bool per timestep: whether its noise level sigma = sqrt((1 - alpha_bar) / alpha_bar) lies in (low, high].
    sigma is the noise-to-signal ratio of x_t, the same scale as EDM's sigma for data in [-1, 1]."""
    low, high = (float(v) for v in interval)
    if not 0 <= low < high:
        raise GlideError(f"a guidance interval needs 0 <= low < high, got ({low:g}, {high:g})")
    ab = np.asarray(alpha_bar, dtype=np.float64)
    sigma = np.sqrt((1 - ab) / np.maximum(ab, 1e-300))
    return (sigma > low) & (sigma <= high)


def noise_interval(alpha_bar: Sequence[float] | np.ndarray,
                   interval: tuple[float, float]) -> Callable[[torch.Tensor], bool]:
    """`active(t)`: whether timesteps `t` are guided (`guided_timesteps`)."""
    inside = torch.from_numpy(guided_timesteps(alpha_bar, interval))

    def active(t: torch.Tensor) -> bool:
        # A batch is guided if any row is inside (every sampler steps all rows at the same t).
        return bool(inside[t.detach().cpu().long()].any())

    return active


def classifier_free(model: GLIDE | Callable[..., torch.Tensor], cond: ModelInputs, uncond: ModelInputs, scale: float,
                    active: Callable[[torch.Tensor], bool] | None = None, reuse: bool = False):
    """A classifier-free-guided denoiser; skips the wasted half when the scale makes it irrelevant.
    `active(t)` (see `noise_interval`): guide only at the timesteps where it is true, else run `cond` alone.
    `reuse`: at those other timesteps, once a guided step has run, add its guidance difference to the conditional
    prediction instead of dropping guidance: below the interval the pull towards the caption fades out with the
    noise (a fixed eps difference moves x_0 in proportion to sigma) instead of stopping, still at one row per
    image. The denoiser keeps that difference, so make one per sampling run (as `Pipeline.sample` does)."""
    if scale == 1.0:
        return conditional(model, cond)
    if scale == 0.0:
        return conditional(model, uncond)
    both = _cat(cond, uncond)
    plain = conditional(model, cond)
    last: list[torch.Tensor] = []  # the last guided step's eps(x | caption) - eps(x | empty), with `reuse`

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if active is not None and not active(t):
            out = plain(x, t)
            if not (reuse and last):
                return out
            return torch.cat([out[:, :c] + (scale - 1) * last[0], out[:, c:]], dim=1)
        out = model(torch.cat([x, x]), torch.cat([t, t]), **both)
        cond_out, uncond_out = out.chunk(2)
        diff = cond_out[:, :c] - uncond_out[:, :c]
        if reuse:
            last[:] = [diff]
        eps = uncond_out[:, :c] + scale * diff
        return torch.cat([eps, cond_out[:, c:]], dim=1)

    return denoise


def distilled(model: GLIDE | Callable[..., torch.Tensor], cond: ModelInputs, scale: float,
              active: Callable[[torch.Tensor], bool] | None = None):
    """The denoiser of a guidance-distilled model: the caption's row alone, asked for scale `scale` (one forward
    pass where classifier-free guidance needs two). Outside `active(t)`, scale 1: the conditional model, as
    `classifier_free` runs it there."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        w = scale if active is None or active(t) else 1.0
        return model(x, t, guidance=torch.full((len(x),), float(w), device=x.device), **cond)

    return denoise
