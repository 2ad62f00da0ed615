"""Model files: our own format (a folder with safetensors weights and a JSON config) and safe reading of
official PyTorch checkpoints.

A model folder holds `model.safetensors` (our parameter names) and `config.json`:
    {"format": "glide-diffusion", "version": 1, "preset": "base" | null, "model": {...ModelConfig...}}
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig
from .errors import GlideError
from .files import public_permissions

M = TypeVar("M", bound=torch.nn.Module)

FORMAT = "glide-diffusion"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
INDEX = "model.safetensors.index.json"


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
    except Exception as e:  # noqa: BLE001 -- a legacy pickle of random bytes fails in many ways (KeyError, ...)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = msg if isinstance(e, (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError)) else \
            f"{type(e).__name__}: {msg}"
        raise GlideError(f"cannot read {path}: truncated or not a PyTorch checkpoint ({msg})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise GlideError(f"{path} does not hold a state dict of tensors")
    return sd


def write_weights(folder: Path, state_dict: dict[str, torch.Tensor], dtype: torch.dtype | None = None,
                  max_shard_mb: float | None = None) -> None:
    """model.safetensors, or shards model-0000k-of-0000n.safetensors + an index when over max_shard_mb."""
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in state_dict.items()}
    limit = (max_shard_mb or 0) * 2**20
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if not limit or total <= limit:
        save_file(tensors, str(folder / WEIGHTS), metadata={"format": FORMAT})
        return
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][k] = t
        size += nbytes
    index = {}
    for n, shard in enumerate(shards, 1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": FORMAT})
        index.update({k: name for k in shard})
    (folder / INDEX).write_text(json.dumps({"weight_map": index}, indent=1) + "\n")


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / WEIGHTS).is_file():
        return load_file(str(folder / WEIGHTS))
    index = json.loads((folder / INDEX).read_text())["weight_map"]
    sd: dict[str, torch.Tensor] = {}
    for name in sorted(set(index.values())):
        sd.update(load_file(str(folder / name)))
    return sd


def has_weights(folder: Path) -> bool:
    return (folder / WEIGHTS).is_file() or (folder / INDEX).is_file()


def save_model_dir(out: str | os.PathLike, state_dict: dict[str, torch.Tensor], cfg: ModelConfig,
                   preset: str | None = None, meta: dict[str, Any] | None = None,
                   dtype: torch.dtype | None = None, max_shard_mb: float | None = None, force: bool = False) -> Path:
    """Write a model folder atomically: everything goes to a temporary sibling, then one rename."""
    doc = {"format": FORMAT, "version": 1, "preset": preset, "model": cfg.to_dict(), **(meta or {})}
    return write_folder(out, doc, lambda tmp: write_weights(tmp, state_dict, dtype, max_shard_mb), force=force)


def is_model_folder(path: Path) -> bool:
    """A folder that glide wrote as a model (or CLIP) folder: its config.json says so."""
    try:
        doc = json.loads((path / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def is_run_folder(path: Path) -> bool:
    """A training run folder (checkpoints, metrics): never something to overwrite with an export."""
    return (path / "checkpoints").is_dir() or (path / "metrics.jsonl").is_file()


def check_output_folder(out: str | os.PathLike, force: bool = False) -> Path:
    """Refuse an output folder whose replacement would destroy something glide did not write there: a file, a
    training run, or a non-empty folder that is not a model folder (`force` allows the last two). Checked
    before any work starts, and again just before the rename."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GlideError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        if is_run_folder(out):
            raise GlideError(f"--out {out} is a training run folder; refusing to replace it (choose another "
                             "--out, or --force)")
        if not is_model_folder(out):
            raise GlideError(f"--out {out} exists and is not a glide model folder; refusing to replace it "
                             "(choose another --out, or --force)")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GlideError(f"cannot write --out {out}: {parent} is not writable")
    return out


def write_folder(out: str | os.PathLike, doc: dict[str, Any], write, force: bool = False) -> Path:
    """Create `out` atomically: `write(tmp)` fills a temporary sibling with config.json beside it, then
    one rename puts it in place (an existing folder is replaced only once the new one is complete, and only
    if it is a model folder or empty, or with `force`: see check_output_folder)."""
    out = check_output_folder(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        public_permissions(tmp)
        (tmp / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
        check_output_folder(out, force)  # it may have changed while the weights were written
        if out.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, backup / "x")
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(backup / "x", out)  # put the old folder back
                raise
            shutil.rmtree(backup)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_folder(path: str | os.PathLike, what: str, is_kind) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config document and weights of a folder written by write_folder; one-line errors otherwise.
    `is_kind(doc)` says whether the document describes the expected kind of model."""
    path = Path(path)
    if path.is_file() and path.name == CONFIG:
        path = path.parent
    if path.is_file():
        raise GlideError(f"{path} is a file, not a {what} folder")
    if not path.is_dir():
        raise GlideError(f"{what} folder not found: {path}")
    cfg_file = path / CONFIG
    if not cfg_file.is_file() or not has_weights(path):
        raise GlideError(f"{path} is not a {what} folder (expected {CONFIG} and {WEIGHTS})")
    try:
        doc = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GlideError(f"{cfg_file} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not is_kind(doc):
        raise GlideError(f"{path} is not a {what} folder ({cfg_file} describes something else)")
    try:
        sd = read_weights(path)
    except Exception as e:  # safetensors raises its own error types
        raise GlideError(f"cannot read the weights in {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None
    check_finite(sd, path)
    return doc, sd


def check_finite(state_dict: dict[str, torch.Tensor], where) -> None:
    """Refuse weights holding NaN or Inf (they sample black images), naming the first bad tensor."""
    for name, t in state_dict.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise GlideError(f"the weights in {where} hold {bad} NaN or infinite value(s) in tensor {name}")


def check_state_dict(expected: dict[str, tuple[int, ...]], state_dict: dict[str, torch.Tensor], where) -> None:
    """Name the missing, unexpected and mis-shaped tensors when `state_dict` does not fit a model
    (`expected`: name -> shape)."""
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    shaped = [f"{k} {tuple(state_dict[k].shape)} (expected {tuple(shape)})" for k, shape in expected.items()
              if k in state_dict and tuple(state_dict[k].shape) != tuple(shape)]
    parts = []
    for label, names in (("missing", missing), ("unexpected", extra), ("mis-shaped", shaped)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{len(names)} {label}: {', '.join(names[:3])}{more}")
    if parts:
        raise GlideError(f"the weights in {where} do not match its config: " + "; ".join(parts))


def on_meta(build: Callable[[], M]) -> M:
    """`build()` on the meta device: a module's names and shapes without memory or initialisation, for
    weights that are about to be replaced (the one home of this pattern: every loader builds this way)."""
    with torch.device("meta"):
        return build()


def fp32(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors as float32 (the models compute in fp32, under autocast when asked)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def load_weights(model: M, state_dict: dict[str, torch.Tensor], where) -> M:
    """Load `state_dict` into a module built `on_meta` (strict, in float32). Any mismatch, in names, shapes
    or kinds of tensor, is one GlideError naming `where`."""
    check_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()}, state_dict, where)
    try:
        model.load_state_dict(fp32(state_dict), strict=True, assign=True)
    except RuntimeError as e:
        raise GlideError(f"the weights in {where} do not match its config: {str(e).splitlines()[0]}") from None
    return model


def read_model_dir(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    doc, sd = read_folder(path, "glide model", lambda d: "model" in d)
    return ModelConfig.from_dict(doc["model"]), sd, doc


# Example captions drawn from a model's training data, one per line (`glide export` writes them; the web page
# offers them, so that a user sees what the model was taught to draw and how its captions are phrased).
PROMPTS = "prompts.txt"

# Files of a model folder that document it and do not change what it computes.
_DOCUMENTATION = ("MODEL_CARD.md", "README.md", "NOTICE", "LICENSE", PROMPTS)


def read_prompts(folder: str | os.PathLike) -> list[str]:
    """A model folder's example captions (`PROMPTS`), or [] where it has none."""
    path = Path(folder) / PROMPTS
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def model_key(path: str | os.PathLike) -> str:
    """Identity of a model folder or weights file for caches (glide eval's samples and features): a digest of the
    names and contents of the files that define the model. Documentation (the model card, NOTICE) and file times
    are left out, so a clone or a copy of the folder, or an edited model card, keeps its caches. About 0.05 s for
    the bundled base; callers compute it only when a cache needs it."""
    path = Path(path)
    files = sorted(f for f in path.iterdir() if f.is_file() and f.name not in _DOCUMENTATION) if path.is_dir() \
        else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()


class LazyModelKey:
    """An attribute holding a `model_key`: set it to a folder (a Path) and it is digested when first read, so
    that loading a model does not pay for a key that only caches use; or set it to the key itself."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__.get(self.slot, "")
        if isinstance(value, Path):
            value = obj.__dict__[self.slot] = model_key(value)
        return value

    def __set__(self, obj, value: str | Path) -> None:
        obj.__dict__[self.slot] = value
