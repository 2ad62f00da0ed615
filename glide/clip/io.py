"""Noised-CLIP folders, and conversion of the released CLIP encoders into one.

A CLIP folder is like a model folder (glide.checkpoint): `model.safetensors` (our parameter names) and
    config.json: {"format": "glide-diffusion", "version": 1, "type": "clip", "clip": {...CLIPConfig...}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import (FORMAT, WEIGHTS, load_weights, on_meta, read_folder, read_official_checkpoint, write_folder,
                          write_weights)
from .model import CLIP_PRESETS, CLIPConfig, NoisedCLIP, from_official_state_dicts


def save_clip_dir(out: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: CLIPConfig | dict[str, Any],
                  meta: dict[str, Any] | None = None, dtype: torch.dtype | None = None, force: bool = False) -> Path:
    """Write a CLIP folder atomically (see glide.checkpoint.write_folder)."""
    cfg = config if isinstance(config, CLIPConfig) else CLIPConfig.from_dict(config)
    doc = {"format": FORMAT, "version": 1, "type": "clip", "clip": cfg.to_dict(), **(meta or {})}
    return write_folder(out, doc, lambda tmp: write_weights(tmp, state_dict, dtype), force=force)


def read_clip_dir(path: str | os.PathLike) -> tuple[CLIPConfig, dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if path.is_file() and path.name == WEIGHTS:
        path = path.parent
    doc, sd = read_folder(path, "CLIP", lambda d: d.get("type") == "clip" and "clip" in d)
    return CLIPConfig.from_dict(doc["clip"]), sd, doc


def build_clip(cfg: CLIPConfig, state_dict: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> NoisedCLIP:
    """A NoisedCLIP holding exactly `state_dict` (strict), in eval mode."""
    model = load_weights(on_meta(lambda: NoisedCLIP(cfg)), state_dict, "the CLIP folder")
    model.image.reset_pixel_stats("cpu")  # non-persistent buffers: made on meta above, not in the state dict
    return model.to(device).eval()


def load_clip(path: str | os.PathLike, device: str | torch.device = "cpu") -> NoisedCLIP:
    """Load a CLIP folder (`official:clip`, the released encoders, is resolved to one by
    glide.pipeline.resolve_model)."""
    cfg, sd, _ = read_clip_dir(path)
    return build_clip(cfg, sd, device)


def convert_official_clip(image_pt: str | os.PathLike, text_pt: str | os.PathLike, out: str | os.PathLike,
                          config: CLIPConfig | None = None, force: bool = False) -> Path:
    """Convert clip_image_enc.pt + clip_text_enc.pt into a CLIP folder. The files are read with
    weights_only=True: anything but plain tensors (a pickle that would run code) is refused."""
    cfg = config or CLIP_PRESETS["official"]
    image_sd, text_sd = read_official_checkpoint(image_pt), read_official_checkpoint(text_pt)
    skeleton = on_meta(lambda: NoisedCLIP(cfg))
    native = from_official_state_dicts(skeleton, image_sd, text_sd, f"{Path(image_pt).name} + {Path(text_pt).name}")
    source = {"official": "clip", "image_file": Path(image_pt).name, "text_file": Path(text_pt).name}
    return save_clip_dir(out, native, cfg, meta={"source": source}, force=force)
