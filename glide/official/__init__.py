"""Compatibility with OpenAI's glide-text2im: the same call shapes, names and numbers.

A thin facade over our own modules. `load_model` accepts official state dicts and hyperparameter
names; `create_diffusion` reproduces `create_gaussian_diffusion` (respacing, original-timestep model
calls, p_mean_variance and the two sampling loops); `tokenize` is the official encode + pad.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..checkpoint import load_weights, on_meta
from ..diffusion import Diffusion
from ..models import GLIDE
from ..samplers import sample_ddim, sample_ddpm
from ..text import get_tokenizer
from .clip import clip_tokenize, load_clip
from ..keys import from_official, to_official
from .options import config_from_options, options_from_config

__all__ = ["OfficialModel", "OfficialDiffusion", "load_model", "create_diffusion", "tokenize",
           "config_from_options", "options_from_config", "to_official", "clip_tokenize", "load_clip"]


class OfficialModel(nn.Module):
    """Our GLIDE behind the official forward signature: returns the 6-channel output."""

    def __init__(self, model: GLIDE):
        super().__init__()
        self.model = model

    @property
    def config(self):
        return self.model.cfg

    def forward(self, x, timesteps, tokens=None, mask=None, low_res=None, inpaint_image=None, inpaint_mask=None):
        return self.model(x, timesteps, tokens=tokens, mask=mask, low_res=low_res,
                          inpaint_image=inpaint_image, inpaint_mask=inpaint_mask)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        return to_official(self.model, self.model.state_dict())


def load_model(state_dict: dict[str, torch.Tensor] | None = None, **options: Any) -> OfficialModel:
    """Build the model the official options describe and load an official-layout state dict (strict)."""
    cfg = config_from_options(**options)
    if state_dict is None:
        return OfficialModel(GLIDE(cfg)).eval()
    model = on_meta(lambda: GLIDE(cfg))
    return OfficialModel(load_weights(model, from_official(model, state_dict, "state dict"), "the state dict")).eval()


def tokenize(prompt: str, text_ctx: int = 128) -> tuple[list[int], list[bool]]:
    """Official `encode` followed by `padded_tokens_and_mask`."""
    tok = get_tokenizer("gpt2")
    return tok.padded(tok.encode(prompt), text_ctx)


class OfficialDiffusion:
    """The official SpacedDiffusion API: `t` arguments index the respaced steps; models see original ones."""

    def __init__(self, diffusion: Diffusion):
        self.diffusion = diffusion
        self.timestep_map = list(diffusion.timesteps)
        self.num_timesteps = diffusion.num_timesteps
        for name in Diffusion.ARRAYS:
            setattr(self, name, getattr(diffusion, name))

    def _denoiser(self, model_fn: Callable, model_kwargs: dict | None):
        kw = model_kwargs or {}
        return lambda x, t: model_fn(x, t, **kw)

    def _cond(self, cond_fn, model_kwargs):
        if cond_fn is None:
            return None
        kw = model_kwargs or {}
        return lambda x, t: cond_fn(x, t, **kw)

    def p_mean_variance(self, model_fn, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None) -> dict:
        out = self._denoiser(model_fn, model_kwargs)(x, self.diffusion.model_timesteps(t))
        p = self.diffusion.p_mean_variance(out, x, t, clip_denoised, denoised_fn)
        return {"mean": p.mean, "variance": p.variance, "log_variance": p.log_variance, "pred_xstart": p.pred_xstart}

    def q_sample(self, x_start, t, noise=None):
        return self.diffusion.q_sample(x_start, t, torch.randn_like(x_start) if noise is None else noise)

    def _start(self, shape, noise, device):
        if noise is not None:
            return noise
        return torch.randn(*shape, device=device or "cpu")

    def p_sample_loop(self, model_fn, shape, noise=None, clip_denoised=True, denoised_fn=None, cond_fn=None,
                      model_kwargs=None, device=None, progress=False):
        return sample_ddpm(self._denoiser(model_fn, model_kwargs), self.diffusion, self._start(shape, noise, device),
                           clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                           cond_fn=self._cond(cond_fn, model_kwargs), progress=progress)

    def ddim_sample_loop(self, model_fn, shape, noise=None, clip_denoised=True, denoised_fn=None, cond_fn=None,
                         model_kwargs=None, device=None, progress=False, eta=0.0):
        return sample_ddim(self._denoiser(model_fn, model_kwargs), self.diffusion, self._start(shape, noise, device),
                           eta=eta, clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                           cond_fn=self._cond(cond_fn, model_kwargs), progress=progress)


def create_diffusion(diffusion_steps: int = 1000, noise_schedule: str = "squaredcos_cap_v2",
                     timestep_respacing: str = "") -> OfficialDiffusion:
    return OfficialDiffusion(Diffusion.from_schedule(noise_schedule, diffusion_steps, timestep_respacing))

