"""The run's model, decided in one place (nanoGPT's `init_from` block).

`init_model` answers, for `glide train`, which architecture the run trains and which weights it starts from:

- resuming: exactly the saved architecture and weights;
- `init_from` (a model folder or an official .pt with `init_kind`): the source's architecture turned to this
  run's kind (ModelConfig.with_kind; [model] may set only `prediction`), its weights with the new input
  channels at zero, as GLIDE did for inpainting (`adapt_inputs`);
- otherwise: the preset turned to the kind, with the config's [model] overrides (TrainConfig.model_config),
  its GPT-2 table pruned to the training captions with `fit_vocab`, freshly initialised;
- a CLIP run: the CLIP preset (or the saved CLIP config), with [model] overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import ModelConfig
from ..errors import GlideError
from .config import TrainConfig


@dataclass
class ModelChoice:
    kind: str  # "clip" or "diffusion": which task trains it
    config: Any  # ModelConfig, or CLIPConfig for a CLIP run
    state: dict[str, torch.Tensor] | None = None  # the weights to start from (None: fresh, or loaded on resume)


def init_model(cfg: TrainConfig, saved: dict | None,
               fit_vocab: Callable[[ModelConfig], ModelConfig] | None = None) -> ModelChoice:
    """The run's model config and starting weights (see the module's docstring). `saved`: the checkpoint
    a resumed run continues from. `fit_vocab(config)`: the config with its GPT-2 table pruned to the training
    captions (the trainer's, which reads the data), applied to a fresh run with `fit_vocab = true`."""
    if cfg.kind == "clip" or (saved and saved["state"].get("kind") == "clip"):
        from ..clip.model import CLIPConfig, get_clip_preset

        clip_cfg = CLIPConfig.from_dict(saved["state"]["model_config"]) if saved else get_clip_preset(cfg.preset)
        if cfg.model and not saved:
            clip_cfg = CLIPConfig.from_dict({**clip_cfg.to_dict(), **cfg.model})
        return ModelChoice("clip", clip_cfg, saved["model"] if saved else None)
    if saved:
        return ModelChoice("diffusion", ModelConfig.from_dict(saved["state"]["model_config"]), saved["model"])
    if cfg.init_from:
        sd, src_cfg = load_source(cfg)
        model_cfg = source_config(cfg, src_cfg)
        sd = adapt_inputs(sd, src_cfg, model_cfg)
        if cfg.distill_scales:  # a guidance-distilled student: the source plus a zero-initialised scale embedding
            from ..models.glide import guidance_mlp

            model_cfg = model_cfg.replace(distilled_guidance=tuple(float(v) for v in cfg.distill_scales))
            if not src_cfg.distilled_guidance:
                sd = {**sd, **{f"guidance_mlp.{k}": v for k, v in guidance_mlp(model_cfg).state_dict().items()}}
        elif src_cfg.distilled_guidance:
            # Ordinary training would leave the scale embedding behind the rest of the network, and one-row
            # guidance wrong: the model trains (and exports) as an ordinary one; distil it again afterwards.
            model_cfg = model_cfg.replace(distilled_guidance=None)
            sd = {k: v for k, v in sd.items() if not k.startswith("guidance_mlp.")}
        return ModelChoice("diffusion", model_cfg, sd)
    model_cfg = cfg.model_config()
    if cfg.fit_vocab:
        if fit_vocab is None:
            raise GlideError("fit_vocab needs the training data: it is applied by the trainer")
        model_cfg = fit_vocab(model_cfg)
    return ModelChoice("diffusion", model_cfg)


def source_config(cfg: TrainConfig, src_cfg: ModelConfig) -> ModelConfig:
    """The source model's config turned to the run's kind. The source decides the architecture; [model] may
    change only what keeps every weight's shape."""
    model_cfg = src_cfg.with_kind(cfg.kind)
    unsupported = sorted(set(cfg.model) - {"prediction"})
    if unsupported:
        raise GlideError(f"with init_from the model comes from {cfg.init_from}; [model] may set only "
                         f"prediction (eps -> v fine-tuning), not {', '.join(unsupported)}")
    if "prediction" in cfg.model:
        model_cfg = model_cfg.replace(prediction=cfg.model["prediction"])
    return model_cfg.validate()


def load_source(cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The weights (our names) and config of the model to fine-tune from (`init_from`)."""
    from ..checkpoint import read_model_dir, read_official_checkpoint

    src = Path(cfg.init_from)
    if str(cfg.init_from).startswith("bundled:"):  # the shipped models, e.g. to continue training the default base
        from ..loading import resolve_model

        src = resolve_model(cfg.init_from)
    if src.is_dir():
        src_cfg, sd, _ = read_model_dir(src)
    else:
        from ..official.convert import kind_config, official_to_native

        if not cfg.init_kind:
            raise GlideError("init_from is an official checkpoint: set init_kind (base, upsample, base-inpaint, ...)")
        src_cfg, _ = kind_config(cfg.init_kind, cfg.init_options)
        sd = official_to_native(read_official_checkpoint(src), src_cfg, src.name)
    return sd, src_cfg


def adapt_inputs(sd: dict[str, torch.Tensor], src: ModelConfig, dst: ModelConfig) -> dict[str, torch.Tensor]:
    """Map the first convolution's input channels from one kind to another; channels the source lacks
    (the inpainting image and mask, or the low-res image) get zero weights, as GLIDE did for inpainting."""
    key = "unet.input_conv.weight"
    w = sd[key]

    def layout(c: ModelConfig) -> dict[str, slice]:
        parts, at = {}, 0
        for name, n in (("x", 3), ("inpaint", 4 if c.inpaint else 0), ("low_res", 3 if c.super_res else 0)):
            parts[name] = slice(at, at + n)
            at += n
        return parts

    if w.shape[1] == dst.in_channels and src.kind == dst.kind:
        return sd
    s, d = layout(src), layout(dst)
    new = torch.zeros(w.shape[0], dst.in_channels, *w.shape[2:], dtype=w.dtype)
    for name in ("x", "inpaint", "low_res"):
        n = min(s[name].stop - s[name].start, d[name].stop - d[name].start)
        if n:
            new[:, d[name].start : d[name].start + n] = w[:, s[name].start : s[name].start + n]
    return {**sd, key: new}
