"""The `glide` command line.

One module per command group; each has `register(sub)`, which adds its subcommands' parsers and sets
`func` to the function that runs them. Adding a command means adding a module and naming it in COMMANDS.

The package's top imports only the standard library, glide.errors and glide.defaults: `glide --help` and
`glide --version` answer without loading torch. Each command imports what it needs. Every check of the
user's input (output path writable, device present, seed in range, finite scales) runs before any model is
loaded, so a mistake costs no sampling time and leaves nothing on disk.
"""

from __future__ import annotations

import argparse
import importlib
import os  # noqa: F401  (tests patch glide.cli.os.access)
import sys
import warnings

from .. import __version__
from ..errors import GlideError
from .args import _Parser

# The command groups, in the order `glide --help` lists them.
COMMANDS = ("sample", "compose", "models", "train", "data", "eval", "web", "info")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="glide", description="GLIDE text-guided diffusion.")
    p.add_argument("--version", action="version", version=f"glide {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..runtime import keep_freed_memory

    keep_freed_memory()  # every sampling or training step frees and reallocates the same activations
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return args.func(args)
    except GlideError as e:
        print(f"glide: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glide: interrupted", file=sys.stderr)
        return 130
