"""Sampler hooks for editing and upsampling: the one home of the maths the pipeline used to hold.

In the spirit of k-diffusion's `make_*_model_fn` wrappers, each function here builds a small callable the
samplers (glide.samplers) call at every step, so the sampling loops stay plain and the pipeline only
composes:

- a `denoised_fn(x0) -> x0` maps each step's x_0 estimate: `keep_known` (inpainting: pin the known pixels)
  and `low_res_consistency` (upsampling: keep the 64 px input's low frequencies); `chain` composes them;
- a `project(x, i) -> x` maps each new sample x_{i-1}: `repaint_projection` (RePaint, for a model without
  inpainting inputs).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .diffusion import Diffusion
from .samplers import Generator, randn

DenoisedFn = Callable[[torch.Tensor], torch.Tensor]


def chain(fns: list[DenoisedFn]) -> DenoisedFn | None:
    """The denoised_fns applied in order (None when there are none)."""
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]
    return lambda x0: fns[1](fns[0](x0))


def low_res_consistency(low: torch.Tensor, size: int) -> DenoisedFn:
    """denoised_fn that makes the x_0 prediction agree with the 64 px input at low frequencies: replace
    what x_0 looks like downsampled by the input itself (x_0 + up(low - down(x_0))), with the downsampling
    used in training. A well-trained upsampler needs no help here, but a short-trained one drifts in
    overall colour (its x_0 at high noise is eps / sqrt(alpha_bar): tiny eps biases become colour shifts),
    and the cascade should never change the colours of the image it enlarges."""

    def fix(x0: torch.Tensor) -> torch.Tensor:
        down = F.interpolate(x0, size=low.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
        return x0 + F.interpolate(low - down, size=(size, size), mode="bicubic", align_corners=False)

    return fix


def keep_known(inputs: dict) -> DenoisedFn:
    """denoised_fn that pins the x_0 prediction to the known pixels (official inpainting notebook)."""
    image, keep = inputs["inpaint_image"], inputs["inpaint_mask"]
    return lambda x0: x0 * (1 - keep) + image * keep


def repaint_projection(diffusion: Diffusion, image: torch.Tensor, keep: torch.Tensor, generator: Generator):
    """RePaint (Lugmayr et al. 2022): after each step, replace the known region by the image noised to
    the new step's level, so the generated region is forced to agree with it."""

    def project(x: torch.Tensor, i: int) -> torch.Tensor:
        if i == 0:
            known = image
        else:
            idx = torch.full((len(x),), i - 1, device=x.device, dtype=torch.long)
            noise = randn(x.shape, generator, x.device)
            known = diffusion.q_sample(image, idx, noise)
        return keep * known + (1 - keep) * x

    return project
