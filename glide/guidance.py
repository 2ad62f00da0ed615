"""Guidance wraps a model into a denoiser `(x_t, t) -> [B, 6, H, W]` for the samplers.

Classifier-free guidance (GLIDE §2.4, Ho & Salimans 2021): run the conditional and unconditional
inputs in one batch, push eps away from the unconditional prediction,
    eps = eps(x | empty) + s * (eps(x | caption) - eps(x | empty)),
and keep the conditional half's variance. s = 1 is plain conditional sampling (one forward pass);
s = 0 is unconditional.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

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


def classifier_free(model: GLIDE | Callable[..., torch.Tensor], cond: ModelInputs, uncond: ModelInputs, scale: float):
    """A classifier-free-guided denoiser; skips the wasted half when the scale makes it irrelevant."""
    if scale == 1.0:
        return conditional(model, cond)
    if scale == 0.0:
        return conditional(model, uncond)
    both = _cat(cond, uncond)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = model(torch.cat([x, x]), torch.cat([t, t]), **both)
        c = x.shape[1]
        cond_out, uncond_out = out.chunk(2)
        eps = uncond_out[:, :c] + scale * (cond_out[:, :c] - uncond_out[:, :c])
        return torch.cat([eps, cond_out[:, c:]], dim=1)

    return denoise
