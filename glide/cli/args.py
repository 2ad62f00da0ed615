"""Argument types and the parser class of the command line: each failure is one line and exit 2."""

from __future__ import annotations

import argparse
import math

from .. import defaults
from ..errors import GlideError


# --dtype of the commands that run models; the defaults themselves live in glide.runtime.default_precision.
WEIGHT_DTYPES = ("fp32", "bf16", "fp16")  # what weights can be stored in
DTYPE_CHOICES = (*WEIGHT_DTYPES, "mixed")
DTYPE_HELP = ("compute precision; mixed: bf16 at low noise, fp32 at high noise (default: bf16 on CUDA; on a CPU "
              "where bf16 runs faster than fp32, as measured at start-up (AMD Zen 4: about 1.8x), bf16 for "
              "v-prediction models such as the bundled base and mixed for eps models such as the bundled upsampler; "
              "fp32 elsewhere)")


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _finite(s: str) -> float:
    """A float that is neither NaN nor infinite (NaN guidance samples black images)."""
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def _non_negative(s: str) -> float:
    v = _finite(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}")
    return v


def _positive(s: str) -> float:
    v = _finite(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}")
    return v


def _unit(s: str) -> float:
    v = _finite(s)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {s!r}")
    return v


def _port(s: str) -> int:
    v = _positive_int(s)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {v}")
    return v


def _seed(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if not 0 <= v < 2**64:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**64 - 1, got {s}")
    return v


def _steps(s: str) -> str:
    """A step count ("20") or a respacing ("fast27", "ddim25", "10,10,10"), checked against 1000 steps."""
    s = s.strip()
    if s.lstrip("-").isdigit():
        if int(s) <= 0:
            raise argparse.ArgumentTypeError(f"steps must be a positive number, got {s}")
        if not 2 <= int(s) <= 1000:
            raise argparse.ArgumentTypeError(f"steps must be from 2 to 1000 (the models' diffusion steps), got {s}")
        return str(int(s))
    from ..diffusion import space_timesteps  # a respacing spec: let the diffusion code judge it

    try:
        kept = space_timesteps(1000, s)
    except (GlideError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if len(kept) < 2:
        raise argparse.ArgumentTypeError(f"sampling needs at least 2 steps; {s!r} keeps {len(kept)}")
    return s


def _interval(s: str) -> tuple[float, ...]:
    """--guidance-interval: "LOW,HIGH" (noise levels sigma, HIGH may be inf), or "all" (every step guided: an
    empty tuple, so that None can still mean "not given")."""
    try:
        return defaults.parse_interval(s) or ()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _scales(s: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None
    if not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {s!r}")
    return vals


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (unless its help already says it, or there is none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default is None or default is False
                or default == argparse.SUPPRESS or isinstance(action, argparse._VersionAction)):
            return text
        if isinstance(default, (tuple, list)):
            default = ",".join(str(v) for v in default)
        return f"{text} (default: {default})"


class _Parser(argparse.ArgumentParser):
    """Help with defaults; errors as one line (and exit 2), like every other error of the command line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
