"""The sampler registry: the one home of which samplers exist and what each can do.

A sampler runs a denoiser down a (respaced) diffusion schedule; the loops live in glide.samplers.loops
(k-diffusion style: small functions over a denoiser, knowing nothing about text, guidance or pipelines).
Here each name the command line, the Python API, the web page and `glide eval` accept is recorded with its
capabilities:

- `cond_fn`: takes gradient guidance (CLIP guidance). It shifts the mean of an ancestral step (DDPM) or the
  score (DDIM) (Dhariwal & Nichol 2021, Alg. 1 and 2); the DPM-Solver++ steps have neither to shift.
- `takes_eta`: the caller's eta (the noise of a DDIM step) is passed on; the others ignore it.
- `deterministic`: with eta = 0, the same start noise always gives the same image.

This module imports neither torch nor the loops, so `glide --help` and argument checks can ask it; the loop
functions load on first use (`get_sampler`, or the names below, PEP 562).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import GlideError


@dataclass(frozen=True)
class Sampler:
    name: str
    function: str  # a sample_* function of glide.samplers.loops
    cond_fn: bool  # accepts gradient (CLIP) guidance
    takes_eta: bool  # passes the caller's eta on
    deterministic: bool  # with eta = 0
    fixed: dict[str, Any] = field(default_factory=dict)  # keyword arguments this entry binds

    def load(self) -> Callable:
        """The loop function, with this entry's fixed arguments bound."""
        fn = getattr(importlib.import_module(f"{__name__}.loops"), self.function)
        return functools.partial(fn, **self.fixed) if self.fixed else fn


SAMPLERS: dict[str, Sampler] = {s.name: s for s in (
    Sampler("ddpm", "sample_ddpm", cond_fn=True, takes_eta=False, deterministic=False),
    Sampler("ddim", "sample_ddim", cond_fn=True, takes_eta=True, deterministic=True),
    # One solver, two entries: eta = 0 is the probability-flow ODE, eta = 1 the reverse SDE.
    Sampler("dpm++2m", "sample_dpmpp_2m", cond_fn=False, takes_eta=False, deterministic=True, fixed={"eta": 0.0}),
    Sampler("dpm++2m-sde", "sample_dpmpp_2m", cond_fn=False, takes_eta=False, deterministic=False,
            fixed={"eta": 1.0}),
)}

NAMES = tuple(SAMPLERS)
GUIDABLE = tuple(n for n, s in SAMPLERS.items() if s.cond_fn)  # the samplers CLIP guidance works with


def get(name: str) -> Sampler:
    """The registry entry for a sampler name (a clear error for an unknown one)."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise GlideError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}") from None


def check(name: str, clip_guided: bool = False) -> Sampler:
    """The entry for `name`, refusing CLIP guidance with a sampler that cannot take it."""
    sampler = get(name)
    if clip_guided and not sampler.cond_fn:
        raise GlideError(f"CLIP guidance works with the {' and '.join(GUIDABLE)} samplers, not {name}")
    return sampler


def get_sampler(name: str) -> Callable:
    """The loop function for a sampler name."""
    return get(name).load()


# The loops' names, loaded with torch on first use; sample_dpmpp_2m_sde is the registry's eta = 1 entry.
_LAZY = ("randn", "Generator", "Denoiser", "CondFn", "sample_ddpm", "sample_ddim", "sample_dpmpp_2m")


def __getattr__(name: str):
    if name == "sample_dpmpp_2m_sde":
        value = SAMPLERS["dpm++2m-sde"].load()
    elif name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.loops"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["Sampler", "SAMPLERS", "NAMES", "GUIDABLE", "get", "check", "get_sampler", *_LAZY, "sample_dpmpp_2m_sde"]
