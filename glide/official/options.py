"""The official hyperparameter names (glide_text2im.model_creation) mapped onto our typed config."""

from __future__ import annotations

from typing import Any

from ..config import ModelConfig, TextConfig, UNetConfig
from ..errors import GlideError

DEFAULTS: dict[str, Any] = dict(
    image_size=64, num_channels=192, num_res_blocks=3, channel_mult="", num_heads=1, num_head_channels=64,
    num_heads_upsample=-1, attention_resolutions="32,16,8", dropout=0.1, text_ctx=128, xf_width=512,
    xf_layers=16, xf_heads=8, xf_final_ln=True, xf_padding=True, diffusion_steps=1000,
    noise_schedule="squaredcos_cap_v2", use_scale_shift_norm=True, resblock_updown=True, inpaint=False,
    super_res=False,
)
UPSAMPLE_DEFAULTS = {**DEFAULTS, "image_size": 256, "num_res_blocks": 2, "noise_schedule": "linear", "super_res": True}
# Accepted for compatibility but irrelevant to the weights: precision, respacing and caching are run-time choices.
IGNORED = {"use_fp16", "timestep_respacing", "cache_text_emb"}

KIND_FLAGS = {
    "base": dict(super_res=False, inpaint=False),
    "upsample": dict(super_res=True, inpaint=False),
    "base-inpaint": dict(super_res=False, inpaint=True),
    "upsample-inpaint": dict(super_res=True, inpaint=True),
}


def _ints(v, name: str) -> tuple[int, ...]:
    if isinstance(v, str):
        try:
            return tuple(int(s) for s in v.split(",") if s.strip())
        except ValueError:
            raise GlideError(f"option {name}={v!r} is not a comma-separated list of integers") from None
    return tuple(int(s) for s in v)


def config_from_options(**options: Any) -> ModelConfig:
    """Build a ModelConfig from official keyword options; missing ones take the official defaults."""
    unknown = set(options) - set(DEFAULTS) - IGNORED
    if unknown:
        raise GlideError(f"unknown official option(s): {', '.join(sorted(unknown))}")
    o = {**(UPSAMPLE_DEFAULTS if options.get("super_res") else DEFAULTS), **options}
    size = int(o["image_size"])
    mult = o["channel_mult"]
    if mult in ("", None):
        by_size = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
        if size not in by_size:
            raise GlideError(f"no default channel_mult for image_size {size}; pass channel_mult")
        mult = by_size[size]
    else:
        mult = _ints(mult, "channel_mult")
    unet = UNetConfig(
        image_size=size,
        channels=int(o["num_channels"]),
        channel_mult=mult,
        num_res_blocks=int(o["num_res_blocks"]),
        attention_resolutions=tuple(sorted(set(_ints(o["attention_resolutions"], "attention_resolutions")), reverse=True)),
        num_heads=int(o["num_heads"]),
        head_channels=int(o["num_head_channels"]),
        num_heads_upsample=int(o["num_heads_upsample"]),
        dropout=float(o["dropout"]),
        scale_shift_norm=bool(o["use_scale_shift_norm"]),
        resblock_updown=bool(o["resblock_updown"]),
    )
    text = None
    if int(o["xf_width"]):
        text = TextConfig(
            tokenizer="gpt2", context=int(o["text_ctx"]), width=int(o["xf_width"]), layers=int(o["xf_layers"]),
            heads=int(o["xf_heads"]), final_ln=bool(o["xf_final_ln"]), padding_embedding=bool(o["xf_padding"]),
        )
    super_res = bool(o["super_res"])
    return ModelConfig(
        unet=unet, text=text, super_res=super_res, inpaint=bool(o["inpaint"]),
        low_res_size=size // 4 if super_res else None,
        noise_schedule=str(o["noise_schedule"]), diffusion_steps=int(o["diffusion_steps"]),
    ).validate()


def options_from_config(cfg: ModelConfig) -> dict[str, Any]:
    """The official options that build the same network (inverse of config_from_options)."""
    u, t = cfg.unet, cfg.text
    if t is not None and (t.tokenizer != "gpt2" or t.vocab):
        raise GlideError("only models with GPT-2's full 50257-token table have an official layout")
    if cfg.prediction != "eps":
        raise GlideError("only eps-prediction models have an official layout")
    return dict(
        image_size=u.image_size, num_channels=u.channels, num_res_blocks=u.num_res_blocks,
        channel_mult=",".join(map(str, u.channel_mult)), num_heads=u.num_heads, num_head_channels=u.head_channels,
        num_heads_upsample=u.num_heads_upsample, attention_resolutions=",".join(map(str, u.attention_resolutions)),
        dropout=u.dropout, text_ctx=t.context if t else 128, xf_width=t.width if t else 0,
        xf_layers=t.layers if t else 0, xf_heads=t.heads if t else 1, xf_final_ln=t.final_ln if t else False,
        xf_padding=t.padding_embedding if t else False, diffusion_steps=cfg.diffusion_steps,
        noise_schedule=cfg.noise_schedule, use_scale_shift_norm=u.scale_shift_norm,
        resblock_updown=u.resblock_updown, inpaint=cfg.inpaint, super_res=cfg.super_res,
    )
