"""Checks of the values a caller passes to the Python API (the command line checks its arguments in
glide.cli.args): each failure is one GlideError that says what was wrong."""

from __future__ import annotations

import math

import numpy as np

from .errors import GlideError


def finite(value, name: str) -> float:
    """`value` as a float, refusing what is not a finite number (NaN guidance gives black images)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise GlideError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise GlideError(f"{name} must be a finite number, got {value!r}")
    return v


def check_seed(seed) -> int:
    """A seed torch accepts: a whole number from 0 to 2**64 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise GlideError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r}")
    return int(seed)


def parse_steps(steps: int | str) -> str:
    """Steps as a respacing spec: 100 -> "100"; "fast27", "ddim25" and section lists pass through."""
    if isinstance(steps, int) or (isinstance(steps, str) and steps.strip().lstrip("-").isdigit()):
        n = int(steps)
        if n <= 0:
            raise GlideError(f"steps must be a positive number, got {n}")
        return str(n)
    return str(steps)
