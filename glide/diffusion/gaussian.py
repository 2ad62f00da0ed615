"""The Gaussian diffusion process over a (possibly respaced) schedule.

Indices `i` passed to these methods are positions in the respaced schedule; `timesteps[i]` is the
original timestep a model sees. Arrays are derived in float64 and used in float32, as in the official
code, so that results match it to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import GlideError
from .schedule import beta_schedule, space_timesteps


@dataclass
class PMeanVar:
    """p(x_{t-1} | x_t) and the x_0 prediction it was built from."""

    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor
    pred_xstart: torch.Tensor
    eps: torch.Tensor  # the eps implied by pred_xstart (differs from the model's eps when x_0 was clipped)


class Diffusion:
    ARRAYS = (
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next", "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
        "posterior_mean_coef1", "posterior_mean_coef2", "log_betas",
    )

    def __init__(self, betas: np.ndarray, timesteps: list[int] | None = None):
        betas = np.asarray(betas, dtype=np.float64)
        self.num_timesteps = len(betas)
        self.timesteps = list(range(len(betas))) if timesteps is None else list(timesteps)
        self.betas = betas
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        self.alphas_cumprod = ac
        self.alphas_cumprod_prev = np.append(1.0, ac[:-1])
        self.alphas_cumprod_next = np.append(ac[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(ac)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - ac)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - ac)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / ac - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - ac)
        # The posterior variance is 0 at t=0: borrow the next value so that its log is finite.
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - ac)
        self.log_betas = np.log(betas)
        self._cache: dict[torch.device, dict[str, torch.Tensor]] = {}

    @classmethod
    def from_schedule(cls, name: str = "squaredcos_cap_v2", steps: int = 1000, respacing: str | int = "") -> "Diffusion":
        return cls(beta_schedule(name, steps)).respace(respacing)

    def respace(self, respacing: str | int | list[int]) -> "Diffusion":
        """A process over a subset of this one's timesteps, with betas that keep alpha_bar at each kept step."""
        keep = space_timesteps(self.num_timesteps, respacing, self.alphas_cumprod)
        if len(keep) < 2:  # the posterior variance of the first step is defined from the second
            raise GlideError(f"sampling needs at least 2 steps; {respacing!r} keeps {len(keep)}")
        new_betas, last = [], 1.0
        for i in keep:
            new_betas.append(1 - self.alphas_cumprod[i] / last)
            last = self.alphas_cumprod[i]
        return Diffusion(np.array(new_betas), [self.timesteps[i] for i in keep])

    # -- tensor access ----------------------------------------------------------------------------
    def _tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device not in self._cache:
            d = {n: torch.from_numpy(getattr(self, n)).to(device=device, dtype=torch.float32) for n in self.ARRAYS}
            d["timesteps"] = torch.tensor(self.timesteps, dtype=torch.long, device=device)
            self._cache[device] = d
        return self._cache[device]

    def extract(self, name: str, i: torch.Tensor, ndim: int = 4) -> torch.Tensor:
        """arr[i] as float32, shaped [B, 1, 1, ...] to broadcast against an ndim tensor."""
        v = self._tensors(i.device)[name][i]
        return v.view(-1, *([1] * (ndim - 1)))

    def model_timesteps(self, i: torch.Tensor) -> torch.Tensor:
        """Respaced indices -> the original timesteps the model was trained on."""
        return self._tensors(i.device)["timesteps"][i]

    # -- the forward process q --------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, i: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.extract("sqrt_alphas_cumprod", i, x0.ndim) * x0 + self.extract("sqrt_one_minus_alphas_cumprod", i, x0.ndim) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        n = xt.ndim
        mean = self.extract("posterior_mean_coef1", i, n) * x0 + self.extract("posterior_mean_coef2", i, n) * xt
        return mean, self.extract("posterior_variance", i, n), self.extract("posterior_log_variance_clipped", i, n)

    def predict_xstart(self, xt: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        n = xt.ndim
        return self.extract("sqrt_recip_alphas_cumprod", i, n) * xt - self.extract("sqrt_recipm1_alphas_cumprod", i, n) * eps

    def predict_eps(self, xt: torch.Tensor, i: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        n = xt.ndim
        return (self.extract("sqrt_recip_alphas_cumprod", i, n) * xt - x0) / self.extract("sqrt_recipm1_alphas_cumprod", i, n)

    # -- the reverse process p --------------------------------------------------------------------
    def log_variance(self, i: torch.Tensor, var_values: torch.Tensor) -> torch.Tensor:
        """Learned variance: interpolate log(beta_t) and log(posterior variance) by (v + 1) / 2."""
        frac = (var_values + 1) / 2
        n = var_values.ndim
        return frac * self.extract("log_betas", i, n) + (1 - frac) * self.extract("posterior_log_variance_clipped", i, n)

    def p_mean_variance(
        self,
        model_output: torch.Tensor,
        xt: torch.Tensor,
        i: torch.Tensor,
        clip_denoised: bool = True,
        denoised_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> PMeanVar:
        c = xt.shape[1]
        eps, var_values = model_output[:, :c], model_output[:, c:]
        log_var = self.log_variance(i, var_values)
        x0 = self.predict_xstart(xt, i, eps)
        if denoised_fn is not None:
            x0 = denoised_fn(x0)
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean, _, _ = self.q_posterior(x0, xt, i)
        return PMeanVar(mean, torch.exp(log_var), log_var, x0, self.predict_eps(xt, i, x0))
