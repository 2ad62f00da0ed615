"""Training losses for learned-variance diffusion (Nichol & Dhariwal 2021, "Improved DDPM").

The hybrid loss is L_simple + lambda * L_vlb with lambda = 0.001. L_vlb sums a KL term over all T
timesteps; a uniformly sampled timestep estimates it as T * L_t, so the per-sample term below is
L_t * (T / 1000), i.e. lambda * T * L_t. The VLB term sees the mean through a stop-gradient: it trains
only the variance, while the MSE trains the mean.
"""

from __future__ import annotations

import math

import torch

from .gaussian import Diffusion


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """log p(x) for x in [-1, 1] quantised to 256 levels, under a Gaussian; elementwise, in nats."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999, log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))),
    )


def vlb_terms(diffusion: Diffusion, model_output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor,
              i: torch.Tensor) -> torch.Tensor:
    """Per-sample L_t in bits per dimension: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)), or the decoder
    NLL at t = 0."""
    true_mean, _, true_logvar = diffusion.q_posterior(x0, xt, i)
    p = diffusion.p_mean_variance(model_output, xt, i, clip_denoised=False)
    dims = tuple(range(1, x0.ndim))
    kl = normal_kl(true_mean, true_logvar, p.mean, p.log_variance).mean(dims) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x0, p.mean, 0.5 * p.log_variance).mean(dims) / math.log(2.0)
    return torch.where(i == 0, nll, kl)


def hybrid_loss(diffusion: Diffusion, model_output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor,
                i: torch.Tensor, noise: torch.Tensor, vlb_weight: float = 0.001,
                snr_gamma: float = 0.0, prediction: str = "eps") -> dict[str, torch.Tensor]:
    """Per-sample losses: {"loss", "mse", "vlb"} ("mse" is the unweighted eps MSE, whatever the weighting).

    `model_output` holds eps (a v-prediction model converts in its forward). With `prediction` "v" the MSE is
    v's: |v - v*|^2 = |eps - eps*|^2 / ab, i.e. the eps MSE weighted by (SNR + 1) / SNR.

    `snr_gamma` > 0 weights the eps MSE by min(SNR, gamma) / SNR (Min-SNR-gamma, Hang et al. 2023). The eps
    loss is dominated by low-noise timesteps, whose gradients fight those of the high-noise ones that decide
    an image's layout; capping their weight makes short runs learn layout sooner. 0 = GLIDE's plain L_simple."""
    c = x0.shape[1]
    model_output = model_output.float()
    eps, var_values = model_output[:, :c], model_output[:, c:]
    dims = tuple(range(1, x0.ndim))
    mse = ((noise - eps) ** 2).mean(dims)
    frozen = torch.cat([eps.detach(), var_values], dim=1)  # the VLB trains the variance only
    vlb = vlb_terms(diffusion, frozen, x0, xt, i)
    ab = diffusion.extract("alphas_cumprod", i, 1)
    snr = ab / (1 - ab)
    weighted = mse / ab if prediction == "v" else mse
    if snr_gamma > 0:
        # min(SNR, gamma) / SNR on the eps MSE, which is min(SNR, gamma) / (SNR + 1) on v's: the same weights
        weighted = mse * (snr.clamp(max=snr_gamma) / snr)
    loss = weighted + vlb * (vlb_weight * diffusion.num_timesteps)
    return {"loss": loss, "mse": mse, "vlb": vlb}
