"""Noise schedules and timestep respacing, in float64 like the official code."""

from __future__ import annotations

import math

import numpy as np

from ..errors import GlideError


def beta_schedule(name: str, steps: int = 1000) -> np.ndarray:
    """The betas of a named schedule: 'linear' (DDPM, scaled to `steps`) or 'squaredcos_cap_v2' (cosine)."""
    if name == "linear":
        scale = 1000 / steps
        return np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
    if name == "squaredcos_cap_v2":
        # Improved DDPM: alpha_bar(t) = cos^2(((t + s) / (1 + s)) * pi / 2), s = 0.008, betas capped at 0.999.
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = [min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)]
        return np.array(betas, dtype=np.float64)
    raise GlideError(f"unknown noise schedule {name!r}")


def space_timesteps(num_timesteps: int, spec: str | list[int] | int) -> list[int]:
    """Which original timesteps a respaced process keeps, sorted ascending.

    `spec` is a step count ("100"), comma-separated section counts ("10,10,3,2,2": the timesteps are
    split into equal sections and each is strided to its count), "ddimN" (the uniform stride giving
    exactly N steps, starting at 0) or "fast27" (the official upsampler schedule). Empty means all.
    """
    if isinstance(spec, int):
        spec = [spec]
    if isinstance(spec, str):
        spec = spec.strip()
        if not spec:
            return list(range(num_timesteps))
        if spec.startswith("ddim"):
            want = _positive_int(spec[4:], spec)
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == want:
                    return list(range(0, num_timesteps, stride))
            raise GlideError(f"cannot take exactly {want} evenly strided steps from {num_timesteps}")
        if spec == "fast27":
            steps = set(space_timesteps(num_timesteps, "10,10,3,2,2"))
            # Skipping the very noisiest step reduces DDIM artifacts (official upsampler schedule).
            steps.remove(num_timesteps - 1)
            steps.add(num_timesteps - 3)
            return sorted(steps)
        spec = [_positive_int(s, spec) for s in spec.split(",")]
    size_per, extra = divmod(num_timesteps, len(spec))
    start, taken = 0, []
    for i, count in enumerate(spec):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise GlideError(f"cannot take {count} steps from a section of {size} timesteps")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0  # accumulate, then round half to even, exactly as the official code does
        for _ in range(count):
            taken.append(start + round(cur))
            cur += stride
        start += size
    return sorted(set(taken))


def _positive_int(s: str, spec) -> int:
    try:
        n = int(s)
    except ValueError:
        raise GlideError(f"bad timestep respacing {spec!r}: expected e.g. '100', '10,10,3', 'ddim25' or 'fast27'") from None
    if n <= 0:
        raise GlideError(f"bad timestep respacing {spec!r}: step counts must be positive")
    return n
