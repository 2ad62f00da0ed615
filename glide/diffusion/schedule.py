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


# The noise level above which a sampler's first step starts from pure noise anyway: EDM's sigma_max (Karras et al.
# 2022). The shaped schedules spend one model call at the last timestep and spread the rest below this level.
SIGMA_MAX = 80.0


def _sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


def _shape_quad(n: int, last: int, sigma: np.ndarray) -> list[float]:
    """Quadratic in t (DPM-Solver's "time_quadratic"): denser at low noise than even spacing."""
    return list(last * np.linspace(0, 1, n) ** 2)


def _shape_snr(n: int, last: int, sigma: np.ndarray) -> list[float]:
    """Evenly spaced in log-SNR between the least noisy timestep and SIGMA_MAX, plus the last timestep."""
    top = int(np.searchsorted(sigma, SIGMA_MAX))
    lam = np.linspace(-np.log(sigma[0]), -np.log(sigma[top]), n - 1)
    return [*np.interp(-lam, np.log(sigma), np.arange(len(sigma))), last]


def _shape_karras(n: int, last: int, sigma: np.ndarray, rho: float = 7.0) -> list[float]:
    """Karras et al. (2022): sigma^(1/rho) evenly spaced between the least noisy timestep's and SIGMA_MAX
    (rho = 7), plus the last timestep."""
    s = np.linspace(sigma[0] ** (1 / rho), SIGMA_MAX ** (1 / rho), n - 1) ** rho
    return [*np.interp(np.log(s), np.log(sigma), np.arange(len(sigma))), last]


# Named step schedules, "<shape><N>" (e.g. `--steps karras12`): N model calls, the first at the last (noisiest)
# timestep and the last at timestep 0, spaced by the shape in between. Plain counts ("20") space them evenly in t,
# and stay the default: Karras spacing solves the ODE far more accurately in few steps, but with the default SDE
# sampler on the bundled base it scored worse than even spacing (docs/benchmarks.md, "Step spacing").
SCHEDULE_SHAPES = {"quad": _shape_quad, "snr": _shape_snr, "karras": _shape_karras}


def _shaped(num_timesteps: int, shape: str, n: int, alphas_cumprod: np.ndarray | None) -> list[int]:
    if n < 2 or n > num_timesteps:
        raise GlideError(f"a {shape} schedule takes 2 to {num_timesteps} steps, not {n}")
    if alphas_cumprod is None:  # only the count matters for validation; the cosine schedule stands in
        alphas_cumprod = np.cumprod(1 - beta_schedule("squaredcos_cap_v2", num_timesteps))
    points = sorted(SCHEDULE_SHAPES[shape](n, num_timesteps - 1, _sigmas(alphas_cumprod)))
    kept = [int(round(p)) for p in points]
    for i in range(1, n):  # distinct: a crowded end moves away from its edge one timestep at a time
        kept[i] = max(kept[i], kept[i - 1] + 1)
    kept[-1] = num_timesteps - 1
    for i in range(n - 2, -1, -1):
        kept[i] = min(kept[i], kept[i + 1] - 1)
    return kept


def space_timesteps(num_timesteps: int, spec: str | list[int] | int,
                    alphas_cumprod: np.ndarray | None = None) -> list[int]:
    """Which original timesteps a respaced process keeps, sorted ascending.

    `spec` is a step count ("100": evenly spaced), comma-separated section counts ("10,10,3,2,2": the timesteps
    are split into equal sections and each is strided to its count), "ddimN" (the uniform stride giving exactly N
    steps, starting at 0), "fast27" (the official upsampler schedule) or a shaped schedule "<shape>N" of
    SCHEDULE_SHAPES ("karras12"), spaced by the noise levels of `alphas_cumprod` (the cosine schedule's when
    none is given). Empty means all.
    """
    if isinstance(spec, int):
        spec = [spec]
    if isinstance(spec, str):
        spec = spec.strip()
        if not spec:
            return list(range(num_timesteps))
        shape = next((name for name in SCHEDULE_SHAPES if spec.startswith(name)), None)
        if shape is not None:
            return _shaped(num_timesteps, shape, _positive_int(spec[len(shape):], spec), alphas_cumprod)
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
        raise GlideError(f"bad timestep respacing {spec!r}: expected e.g. '100', '10,10,3', 'ddim25', 'fast27' "
                         "or 'karras12'") from None
    if n <= 0:
        raise GlideError(f"bad timestep respacing {spec!r}: step counts must be positive")
    return n
