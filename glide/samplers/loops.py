"""The sampling loops: small functions that run a denoiser down a (respaced) diffusion schedule.

Which names the rest of glide may ask for, and what each can do, is decided in glide.samplers (the registry).

A *denoiser* is any callable `(x_t, t) -> [B, 2C, H, W]` returning eps and the variance interpolation
values, where `t` holds the ORIGINAL timesteps the model was trained on. Guidance wraps a denoiser
(see `glide.guidance`); samplers know nothing about text, guidance or pipelines.

Every sampler takes `start`: the schedule index that `x` is at (default: the last, x_T). Starting part way, from
an image noised to that step, is SDEdit (Meng et al. 2022).

A `cond_fn(x_t, t) -> grad log p(y | x_t)` adds gradient guidance (CLIP guidance): DDPM shifts the mean
by variance * grad, DDIM shifts the score (Dhariwal & Nichol 2021, Alg. 1 and 2).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..diffusion import Diffusion, PMeanVar
from ..errors import GlideError

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CondFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# One generator for the whole batch, or one per row (image): with one per row, an image's noise does not depend
# on which other images share its batch, so a seed gives the same image at any batch size.
Generator = torch.Generator | Sequence[torch.Generator] | None


def randn(shape, generator: Generator, device=None, dtype=None) -> torch.Tensor:
    """Standard normal noise of `shape`; with a list of generators, row k is drawn from generator k."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if len(generator) != shape[0]:
        raise GlideError(f"{len(generator)} generators for a batch of {shape[0]}: give one per image")
    return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=device, dtype=dtype) for g in generator])


def _randn(like: torch.Tensor, generator: Generator) -> torch.Tensor:
    return randn(like.shape, generator, like.device, like.dtype)


def _step(denoiser: Denoiser, diffusion: Diffusion, x: torch.Tensor, i: int, clip_denoised: bool,
          denoised_fn) -> tuple[torch.Tensor, PMeanVar]:
    idx = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
    out = denoiser(x, diffusion.model_timesteps(idx))
    return idx, diffusion.p_mean_variance(out.float(), x, idx, clip_denoised, denoised_fn)


def _indices(diffusion: Diffusion, progress: bool, desc: str, start: int | None = None):
    """The step indices to run, from `start` (default: the noisiest step) down to 0."""
    first = diffusion.num_timesteps - 1 if start is None else start
    if not 0 <= first < diffusion.num_timesteps:
        raise GlideError(f"start step {first} is outside the schedule's {diffusion.num_timesteps} steps")
    steps = range(first, -1, -1)
    return tqdm(steps, desc=desc, leave=False, dynamic_ncols=True) if progress else steps


def _after_step(x: torch.Tensor, i: int, out: PMeanVar, project, callback) -> torch.Tensor:
    """What every sampler does with each new sample: `project(x, i)` maps it (e.g. RePaint's replacement of a
    known region), then `callback(i, x, out)` sees it."""
    if project is not None:
        x = project(x, i)
    if callback is not None:
        callback(i, x, out)
    return x


def sample_ddpm(
    denoiser: Denoiser,
    diffusion: Diffusion,
    x: torch.Tensor,
    *,
    clip_denoised: bool = True,
    denoised_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    cond_fn: CondFn | None = None,
    generator: Generator = None,
    progress: bool = False,
    callback: Callable[[int, torch.Tensor, PMeanVar], None] | None = None,
    project: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    start: int | None = None,
) -> torch.Tensor:
    """Ancestral sampling with the learned variance, starting from x = x_T (or from x at step `start`).

    `project(x, i)`, if given, maps each new sample x_{i-1} (e.g. RePaint's replacement of a known region).
    """
    for i in _indices(diffusion, progress, "ddpm", start):
        idx, out = _step(denoiser, diffusion, x, i, clip_denoised, denoised_fn)
        noise = _randn(x, generator)  # drawn after the model call, as the official sampler does
        mean = out.mean
        if cond_fn is not None:
            mean = mean.float() + out.variance * cond_fn(x, diffusion.model_timesteps(idx)).float()
        x = mean + (torch.exp(0.5 * out.log_variance) * noise if i > 0 else 0.0)
        x = _after_step(x, i, out, project, callback)
    return x


# Same keywords as sample_ddpm, plus eta: each sampler spells out what it takes (k-diffusion style), so the
# registry's capabilities can be read off its signature.
def sample_ddim(
    denoiser: Denoiser,
    diffusion: Diffusion,
    x: torch.Tensor,
    *,
    eta: float = 0.0,
    clip_denoised: bool = True,
    denoised_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    cond_fn: CondFn | None = None,
    generator: Generator = None,
    progress: bool = False,
    callback: Callable[[int, torch.Tensor, PMeanVar], None] | None = None,
    project: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    start: int | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021); eta=0 is deterministic, eta=1 matches DDPM's marginals."""
    if not 0 <= eta <= 1:  # above 1 the noise term's variance would exceed what the step leaves: NaN
        raise GlideError(f"eta must be from 0 to 1, got {eta}")
    for i in _indices(diffusion, progress, "ddim", start):
        idx, out = _step(denoiser, diffusion, x, i, clip_denoised, denoised_fn)
        eps, x0 = out.eps, out.pred_xstart
        if cond_fn is not None:
            # Shift the score: eps <- eps - sqrt(1 - alpha_bar) * grad, then re-derive x_0.
            grad = cond_fn(x, diffusion.model_timesteps(idx)).float()
            eps = eps - diffusion.extract("sqrt_one_minus_alphas_cumprod", idx, x.ndim) * grad
            x0 = diffusion.predict_xstart(x, idx, eps)
        ab = diffusion.extract("alphas_cumprod", idx, x.ndim)
        ab_prev = diffusion.extract("alphas_cumprod_prev", idx, x.ndim)
        x = x0 * torch.sqrt(ab_prev)
        if eta > 0 and i > 0:
            sigma = eta * torch.sqrt((1 - ab_prev) / (1 - ab)) * torch.sqrt(1 - ab / ab_prev)
            x = x + torch.sqrt(1 - ab_prev - sigma**2) * eps + sigma * _randn(x, generator)
        else:
            x = x + torch.sqrt(1 - ab_prev) * eps
        x = _after_step(x, i, out, project, callback)
    return x


# Same keywords as sample_ddim, less cond_fn (see its docstring).
def sample_dpmpp_2m(
    denoiser: Denoiser,
    diffusion: Diffusion,
    x: torch.Tensor,
    *,
    eta: float = 0.0,
    clip_denoised: bool = True,
    denoised_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator: Generator = None,
    progress: bool = False,
    callback: Callable[[int, torch.Tensor, PMeanVar], None] | None = None,
    project: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    start: int | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): a multistep solver in the data (x_0) prediction on the log-SNR
    lambda = log(alpha / sigma), with the midpoint form of the second-order correction; second order from the
    second step, first order on the last step. It runs on whatever timesteps the (respaced) schedule keeps;
    evenly spaced ones ("25") are the documented default.

    eta = 0 solves the probability-flow ODE (deterministic: "dpm++2m"). eta = 1 solves the reverse SDE
    (SDE-DPM-Solver++(2M), the paper's appendix: "dpm++2m-sde"): every step adds fresh noise, and its
    first-order step is exactly the DDPM posterior q(x_t | x_s, x_0) (DDIM with eta = 1). Like ancestral DDPM
    it can correct part of a model's errors, which a deterministic ODE solver carries to the end; unlike DDPM
    it is second order. There is no cond_fn: gradient guidance shifts an ancestral step's mean, which this
    solver does not have (glide.samplers records that)."""
    name = "dpm++2m-sde" if eta else "dpm++2m"

    def coefficients(idx: torch.Tensor, prev: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ab = diffusion.extract("alphas_cumprod_prev" if prev else "alphas_cumprod", idx, x.ndim)
        alpha, sigma = ab.sqrt(), (1 - ab).sqrt()
        return alpha, sigma, torch.log(alpha) - torch.log(sigma)

    x0_prev, h_prev = None, None
    for i in _indices(diffusion, progress, name, start):
        idx, out = _step(denoiser, diffusion, x, i, clip_denoised, denoised_fn)
        x0 = out.pred_xstart
        if i == 0:  # the last step lands on the data: take the prediction itself
            x = x0
        else:
            _, s_cur, lam_cur = coefficients(idx, prev=False)
            a_next, s_next, lam_next = coefficients(idx, prev=True)
            h = lam_next - lam_cur
            # x_t = (sigma_t / sigma_s) e^{-eta h} x_s + alpha_t (1 - e^{-(1 + eta) h}) D + sigma_t sqrt(1 - e^{-2 eta h}) z
            gain = -torch.expm1(-(1 + eta) * h)
            d = x0
            if x0_prev is not None:  # second order from the second step: extrapolate x_0 along lambda
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = (s_next / s_cur) * torch.exp(-eta * h) * x + a_next * gain * d
            if eta > 0:
                x = x + s_next * torch.sqrt(-torch.expm1(-2 * eta * h)) * _randn(x, generator)
            x0_prev, h_prev = x0, h
        x = _after_step(x, i, out, project, callback)
    return x
