"""Training checkpoints: everything needed to continue a run exactly, written atomically.

    RUN_DIR/checkpoints/step_00001000/
        model.safetensors      online weights (our names, fp32)
        ema.safetensors        EMA weights (absent when the EMA is off)
        optimizer.safetensors  optimizer tensors, plus optimizer.json for the rest of its state
        state.json             step, config, LR, and per-rank data position and RNG states

A checkpoint is built in a temporary folder and renamed into place, so a crash never leaves a
half-written one; the last `keep` are kept.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import GlideError
from ..files import write_text_atomic

STEP_DIR = re.compile(r"^step_(\d{8})$")


def _tensors(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def rng_to_str(state: torch.Tensor) -> str:
    return base64.b64encode(state.cpu().numpy().tobytes()).decode()


def rng_from_str(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def optimizer_to_files(opt: torch.optim.Optimizer | dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt if isinstance(opt, dict) else opt.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        meta["state"][str(pid)] = {}
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}.{name}"] = v
                meta["state"][str(pid)][name] = "tensor"
            else:
                meta["state"][str(pid)][name] = v
    return _tensors(tensors), meta


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {}
    for pid, st in meta["state"].items():
        state[int(pid)] = {name: tensors[f"{pid}.{name}"] if v == "tensor" else v for name, v in st.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def list_checkpoints(run_dir: Path) -> list[Path]:
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if STEP_DIR.match(p.name) and (p / "state.json").is_file()),
                  key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def begin_checkpoint(run_dir: Path, step: int) -> Path:
    """A fresh temporary folder beside the final one (same filesystem, so the rename is atomic)."""
    d = Path(run_dir) / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".step_{step:08d}.", dir=d))


def write_weights(tmp: Path, model_sd: dict, ema_sd: dict | None, opt: torch.optim.Optimizer | dict | None) -> None:
    save_file(_tensors(model_sd), str(tmp / "model.safetensors"))
    if ema_sd is not None:
        save_file(_tensors(ema_sd), str(tmp / "ema.safetensors"))
    if opt is not None:
        tensors, meta = optimizer_to_files(opt)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(meta))


def write_rank_state(tmp: Path, rank: int, state: dict[str, Any]) -> None:
    (tmp / f"rank{rank}.json").write_text(json.dumps(state))


def finish_checkpoint(tmp: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    final = tmp.parent / f"step_{step:08d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(tmp.parent.parent)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in tmp.parent.glob(".step_*"):  # temporaries of crashed writes
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return final


def read_checkpoint(ckpt: Path) -> dict[str, Any]:
    state = json.loads((ckpt / "state.json").read_text())
    out = {"state": state, "model": load_file(str(ckpt / "model.safetensors"))}
    if (ckpt / "ema.safetensors").is_file():
        out["ema"] = load_file(str(ckpt / "ema.safetensors"))
    if (ckpt / "optimizer.safetensors").is_file():
        out["optimizer"] = optimizer_from_files(load_file(str(ckpt / "optimizer.safetensors")),
                                                json.loads((ckpt / "optimizer.json").read_text()))
    out["ranks"] = {int(p.stem[4:]): json.loads(p.read_text()) for p in ckpt.glob("rank*.json")}
    return out


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike, raw: bool = False, step: int | None = None,
               dtype: torch.dtype | None = None, max_shard_mb: float | None = None, force: bool = False) -> Path:
    """Turn a run's latest checkpoint into a model folder that `glide sample --model` reads. `out` may not be
    the run folder, nor lie inside it; an existing `out` is replaced only if it is a model folder (or `force`)."""
    from ..checkpoint import check_output_folder, save_model_dir
    from ..config import ModelConfig

    run_dir = Path(run_dir)
    out_abs, run_abs = Path(out).resolve(), run_dir.resolve()
    if out_abs == run_abs or run_abs in out_abs.parents or out_abs in run_abs.parents:
        raise GlideError(f"--out {out} would replace (part of) the run folder {run_dir}; choose a folder outside it")
    check_output_folder(out, force)
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise GlideError(f"no checkpoints in {run_dir}")
    ckpt = ckpts[-1] if step is None else next((c for c in ckpts if c.name == f"step_{step:08d}"), None)
    if ckpt is None:
        raise GlideError(f"no checkpoint for step {step} in {run_dir}")
    state = json.loads((ckpt / "state.json").read_text())
    which = "model" if raw or not (ckpt / "ema.safetensors").is_file() else "ema"
    sd = load_file(str(ckpt / f"{which}.safetensors"))
    data = {"path": state.get("train_config", {}).get("data", ""), "filter": state.get("data_filter")}
    meta = {"source": {"run": str(run_dir), "step": state["step"], "weights": which}, "data": data}
    if state.get("kind") == "clip":
        from ..clip.io import save_clip_dir

        folder = save_clip_dir(out, sd, state["model_config"], meta=meta, dtype=dtype, force=force)
    else:
        cfg = ModelConfig.from_dict(state["model_config"])
        folder = save_model_dir(out, sd, cfg, preset=state.get("preset"), meta=meta, dtype=dtype,
                                max_shard_mb=max_shard_mb, force=force)
        write_prompts(folder, training_captions(data["path"], cfg.unet.image_size))
    write_model_card(folder, state, data, which)
    return folder


def training_captions(data: str, size: int, n: int = 8, seed: int = 0) -> list[str]:
    """`n` captions of the training split drawn at random (seeded), for a model folder's `prompts.txt`; none where
    the data cannot be read here (a path on another machine, or WebDataset shards, which have no random access)."""
    import numpy as np

    from ..data.datasets import WebDatasetSource, open_source

    if not data:
        return []
    try:
        source = open_source(data, size)
    except (GlideError, OSError, ValueError):
        return []
    if isinstance(source, WebDatasetSource) or not len(source):
        return []
    picks = np.random.default_rng(seed).choice(len(source), size=min(n, len(source)), replace=False)
    return [c for c in dict.fromkeys(source.caption(int(i)).strip() for i in picks) if c]


def write_prompts(folder: Path, prompts: list[str]) -> None:
    from ..checkpoint import PROMPTS

    if prompts:
        write_text_atomic(Path(folder) / PROMPTS, "\n".join(prompts) + "\n")


def write_model_card(folder: Path, state: dict[str, Any], data: dict[str, Any], weights: str) -> None:
    """README.md beside the weights: what was trained, on what data, and the data filter policy (if any)."""
    f = data.get("filter")
    filt = (f"filtered by `glide data filter` with policy `{f['policy']}` (sha256 `{f['policy_sha256']}`): "
            f"{f['kept']} items kept, {f['removed']} removed from `{f['source']}`" if f else
            "not filtered (no `glide data filter` record found with the training data)")
    text = "\n".join([
        f"# Model card: {Path(folder).name}", "",
        f"- kind: {state.get('kind')}; preset: {state.get('preset') or 'custom (fine-tuned)'}",
        f"- trained for {state['step']} steps ({weights} weights), run `{state.get('train_config', {}).get('out', '')}`",
        f"- training data: `{data['path']}`",
        f"- data filter: {filt}", ""])
    scales = state.get("model_config", {}).get("distilled_guidance")
    if scales:
        text = text.rstrip("\n") + (f"\n- guidance-distilled from `{state.get('train_config', {}).get('init_from')}` for "
                                     f"guidance scales {scales[0]:g} to {scales[1]:g}: one forward pass per image and "
                                     f"step where classifier-free guidance runs two\n")
    write_text_atomic(Path(folder) / "README.md", text)
