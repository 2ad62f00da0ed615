"""Model specs to models: the one place a `--model` / `from_pretrained` argument is resolved.

A spec is a model folder, `bundled:ROLE` (the small models shipped in the package) or `official:NAME` (OpenAI's
released checkpoints, fetched and converted once into the cache). The GLIDE loader here and the CLIP loader
(glide.clip.io.load_clip) both read folders that `resolve_model` found.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoint import load_weights, on_meta, read_model_dir
from .errors import GlideError
from .models import GLIDE


def resolve_model(spec: str | os.PathLike) -> Path:
    """A model folder from a path, `bundled:base|upsampler|clip` (shipped in the package) or `official:NAME`
    (fetched and converted once into the cache by glide.official.hub: official:base, official:upsample, ...,
    and official:clip, the noised CLIP)."""
    spec = str(spec)
    if spec.startswith("bundled:"):
        return default_model(spec.split(":", 1)[1])
    if spec.startswith("official:"):
        from .official.hub import ensure_converted

        return ensure_converted(spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    if not path.exists():
        raise GlideError(f"model not found: {spec} (give a model folder, or official:base / official:upsample / ...)")
    return path


BUNDLED = Path(__file__).parent / "weights"


def default_model(role: str) -> Path:
    """The bundled default model for a role ("base", "upsampler", "clip")."""
    path = BUNDLED / role
    if role not in ("base", "upsampler", "clip"):
        raise GlideError(f"no bundled model {role!r}: choose bundled:base, bundled:upsampler or bundled:clip")
    if not (path / "config.json").is_file():
        raise GlideError(f"no bundled default {role} model in this installation: pass --model DIR "
                         f"(e.g. a folder from `glide convert` or `glide export`, or official:base)")
    return path


def load_model(spec: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[GLIDE, dict]:
    cfg, sd, doc = read_model_dir(resolve_model(spec))
    model = load_weights(on_meta(lambda: GLIDE(cfg)), sd, spec)
    return model.to(device).eval(), doc
