"""Model files: our own format (a folder with safetensors weights and a JSON config) and safe reading of
official PyTorch checkpoints.

A model folder holds `model.safetensors` (our parameter names) and `config.json`:
    {"format": "glide-diffusion", "version": 1, "preset": "base" | null, "model": {...ModelConfig...}}
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig
from .errors import GlideError

FORMAT = "glide-diffusion"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def read_official_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official .pt state dict without ever executing pickled code (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise GlideError(f"checkpoint not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        detail = next((ln for ln in first if "Unsupported" in ln or "global" in ln.lower()), first[0] if first else "")
        raise GlideError(
            f"refused to load {path}: it is not a plain tensor checkpoint (it asks to run code or build "
            f"arbitrary objects; never unpickled). {detail.strip()}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GlideError(f"cannot read {path}: truncated or not a PyTorch checkpoint ({msg})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise GlideError(f"{path} does not hold a state dict of tensors")
    return sd


def save_model_dir(out: str | os.PathLike, state_dict: dict[str, torch.Tensor], cfg: ModelConfig,
                   preset: str | None = None, meta: dict[str, Any] | None = None,
                   dtype: torch.dtype | None = None) -> Path:
    """Write a model folder atomically: everything goes to a temporary sibling, then one rename."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous().cpu()
                   for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        doc = {"format": FORMAT, "version": 1, "preset": preset, "model": cfg.to_dict(), **(meta or {})}
        (tmp / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
        if out.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, backup / "x")
            os.replace(tmp, out)
            shutil.rmtree(backup)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_model_dir(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_dir():
        raise GlideError(f"model folder not found: {path}")
    cfg_file, w_file = path / CONFIG, path / WEIGHTS
    if not cfg_file.is_file() or not w_file.is_file():
        raise GlideError(f"{path} is not a glide model folder (expected {CONFIG} and {WEIGHTS})")
    try:
        doc = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise GlideError(f"{cfg_file} is not valid JSON ({e})") from None
    if doc.get("format") != FORMAT:
        raise GlideError(f"{cfg_file} is not a {FORMAT} config")
    cfg = ModelConfig.from_dict(doc["model"])
    try:
        sd = load_file(str(w_file))
    except Exception as e:  # safetensors raises its own error types
        raise GlideError(f"cannot read {w_file}: {e}") from None
    return cfg, sd, doc
