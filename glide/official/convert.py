"""Convert an official GLIDE checkpoint into our model folder format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import check_finite, fp32, on_meta, read_official_checkpoint, save_model_dir
from ..config import PRESETS, ModelConfig
from ..errors import GlideError
from ..models import GLIDE
from ..keys import from_official
from .options import KIND_FLAGS, config_from_options


def kind_config(kind: str, options: dict[str, Any] | None = None) -> tuple[ModelConfig, str | None]:
    """The config of an official checkpoint kind, with optional hyperparameter overrides (official names)."""
    if kind not in KIND_FLAGS:
        raise GlideError(f"unknown --kind {kind!r}; choose one of {', '.join(KIND_FLAGS)}")
    options = dict(options or {})
    for flag, value in KIND_FLAGS[kind].items():
        if flag in options and bool(options[flag]) != value:
            raise GlideError(f"option {flag}={options[flag]!r} contradicts --kind {kind}")
        options[flag] = value
    try:
        cfg = config_from_options(**options)
    except (TypeError, ValueError) as e:  # e.g. "num_channels": "many"
        raise GlideError(f"bad official options: {e}") from None
    preset = kind if cfg == PRESETS[kind] else None
    return cfg, preset


def official_to_native(state_dict: dict[str, torch.Tensor], cfg: ModelConfig, what: str) -> dict[str, torch.Tensor]:
    return fp32(from_official(on_meta(lambda: GLIDE(cfg)), state_dict, what))


def convert_official(path: str | os.PathLike, kind: str, out: str | os.PathLike,
                     options: dict[str, Any] | None = None, force: bool = False) -> Path:
    cfg, preset = kind_config(kind, options)
    sd = read_official_checkpoint(path)
    hint = f"{Path(path).name} (as --kind {kind}" + (" with --options)" if options else "; a checkpoint of another size needs --options)")
    check_finite(sd, path)
    native = official_to_native(sd, cfg, hint)
    return save_model_dir(out, native, cfg, preset=preset, meta={"source": {"official_kind": kind, "file": Path(path).name}},
                          force=force)
