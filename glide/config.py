"""Typed model configuration and named presets: the single source of truth for hyperparameters.

A GLIDE model is a text encoder (a transformer over caption tokens) feeding an ADM U-Net, optionally
with super-resolution and/or inpainting inputs, trained against a fixed noise schedule. Every size we
use (the four released checkpoints, the paper's 3.5B model, small CPU models) is a preset below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import GlideError

TOKENIZERS = ("gpt2", "bytes")


@dataclass(frozen=True)
class TextConfig:
    """The caption transformer (GLIDE §4.1; official names in brackets)."""

    tokenizer: str = "gpt2"  # "gpt2": GLIDE's BPE (50257 ids); "bytes": UTF-8 bytes (257 ids), for small models
    context: int = 128  # [text_ctx] tokens per caption; longer captions are truncated
    width: int = 512  # [xf_width]
    layers: int = 16  # [xf_layers]
    heads: int = 8  # [xf_heads]
    final_ln: bool = True  # [xf_final_ln]
    padding_embedding: bool = True  # [xf_padding] learned embedding replaces padded positions
    vocab: tuple[int, ...] = ()  # gpt2 only: the GPT-2 ids kept (a table pruned to the training captions); () = all

    @property
    def vocab_size(self) -> int:
        if self.vocab:
            return len(self.vocab) + 2  # + the unknown token and padding (glide/text/tokenizer.py)
        return 50257 if self.tokenizer == "gpt2" else 257

    @property
    def pad_token(self) -> int:
        return self.vocab_size - 1


@dataclass(frozen=True)
class UNetConfig:
    """The ADM U-Net (Dhariwal & Nichol 2021) with text cross-attention."""

    image_size: int = 64
    channels: int = 192  # [num_channels]
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = 3
    attention_resolutions: tuple[int, ...] = (32, 16, 8)  # feature-map sizes (pixels) that get attention
    num_heads: int = 1  # used when head_channels == -1
    head_channels: int = 64  # [num_head_channels]
    num_heads_upsample: int = -1  # decoder heads when head_channels == -1; -1 means num_heads
    dropout: float = 0.1
    scale_shift_norm: bool = True  # [use_scale_shift_norm] AdaGN
    resblock_updown: bool = True  # resample inside residual blocks (BigGAN style)


@dataclass(frozen=True)
class ModelConfig:
    """A whole GLIDE model: U-Net, text encoder, input variant and the noise schedule it was trained on."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    text: TextConfig | None = field(default_factory=TextConfig)
    super_res: bool = False  # input also has the bilinearly upsampled low-res image
    inpaint: bool = False  # input also has the masked image and the mask
    low_res_size: int | None = None  # super-res only: resolution of the conditioning image
    noise_schedule: str = "squaredcos_cap_v2"
    diffusion_steps: int = 1000
    # What the U-Net's first three output channels predict: "eps" (the noise, as GLIDE and every released
    # checkpoint) or "v" (sqrt(ab) eps - sqrt(1 - ab) x_0, Salimans & Ho 2022). GLIDE.forward returns eps for
    # both, so samplers and guidance never see the difference. With "v" the x_0 implied at high noise stays
    # well conditioned; docs/training.md, "Which recipe learns most per unit of compute", has why that matters.
    prediction: str = "eps"
    # Guidance-distilled (Meng et al. 2023, "On distillation of guided diffusion models", stage one): the model
    # also takes the classifier-free guidance scale w, embedded and added to the conditioning vector, and predicts
    # in ONE forward pass what its teacher predicts guided at w with two, for w in this (low, high) range (it was
    # trained there). w = 1 is the plain conditional model. None: an ordinary model.
    distilled_guidance: tuple[float, float] | None = None

    @property
    def in_channels(self) -> int:
        return 3 + (3 if self.super_res else 0) + (4 if self.inpaint else 0)

    @property
    def out_channels(self) -> int:
        return 6  # eps and the variance interpolation (learned sigma, Nichol & Dhariwal 2021)

    @property
    def kind(self) -> str:
        if self.super_res and self.inpaint:
            return "superres-inpaint"
        if self.super_res:
            return "superres"
        if self.inpaint:
            return "inpaint"
        return "text2im"

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def with_kind(self, kind: str) -> "ModelConfig":
        if kind not in KINDS:
            raise GlideError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
        cfg = self.replace(super_res="superres" in kind, inpaint="inpaint" in kind)
        if cfg.super_res and not cfg.low_res_size:  # the one default: a 4x upsampler
            cfg = cfg.replace(low_res_size=cfg.unet.image_size // 4)
        return cfg

    def validate(self) -> "ModelConfig":
        u, t = self.unet, self.text
        if u.image_size < 8 or u.image_size % 2 ** (len(u.channel_mult) - 1):
            raise GlideError(f"image_size {u.image_size} is not divisible by 2^(levels-1)")
        for m in u.channel_mult:
            if (m * u.channels) % 32:
                raise GlideError("every level's channel count must be a multiple of 32 (GroupNorm(32))")
        if u.head_channels != -1:
            for m in u.channel_mult:
                if (m * u.channels) % u.head_channels:
                    raise GlideError(f"channels {m * u.channels} are not divisible by head_channels {u.head_channels}")
        if t is not None:
            if t.tokenizer not in TOKENIZERS:
                raise GlideError(f"unknown tokenizer {t.tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
            if t.vocab and (t.tokenizer != "gpt2" or len(set(t.vocab)) != len(t.vocab)
                            or not all(isinstance(i, int) and 0 <= i < 50257 for i in t.vocab)):
                raise GlideError("text.vocab must be distinct GPT-2 ids (0..50256), with tokenizer = \"gpt2\"")
            if t.width % t.heads:
                raise GlideError(f"text width {t.width} is not divisible by {t.heads} heads")
        if self.prediction not in ("eps", "v"):
            raise GlideError(f"prediction must be \"eps\" or \"v\", got {self.prediction!r}")
        if self.noise_schedule not in ("squaredcos_cap_v2", "linear"):
            raise GlideError(f"unknown noise schedule {self.noise_schedule!r}")
        if self.super_res and not self.low_res_size:
            raise GlideError("a super-resolution model needs low_res_size")
        if self.distilled_guidance is not None:
            check_scale_range(self.distilled_guidance, "distilled_guidance")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise GlideError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        unet = _build(UNetConfig, d.pop("unet", {}))
        text = d.pop("text", {})
        text = None if text is None else _build(TextConfig, text)
        if d.get("distilled_guidance") is not None:
            d["distilled_guidance"] = tuple(float(v) for v in d["distilled_guidance"])
        return cls(unet=unet, text=text, **d).validate()


def check_scale_range(scales, name: str) -> None:
    """A (low, high) range of guidance scales, 0 <= low <= high: a distilled model's, or a distillation run's."""
    if len(scales) != 2 or not 0 <= scales[0] <= scales[1]:
        raise GlideError(f"{name} must be [low, high] guidance scales, 0 <= low <= high; got {list(scales)}")


def _build(klass, d: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = set(d) - names
    if unknown:
        raise GlideError(f"unknown {klass.__name__} keys: {', '.join(sorted(unknown))}")
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return klass(**d)


KINDS = ("text2im", "superres", "inpaint", "superres-inpaint")

_BASE = ModelConfig()
_UPSAMPLE = ModelConfig(
    unet=UNetConfig(image_size=256, channels=192, channel_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=2),
    super_res=True,
    low_res_size=64,
    noise_schedule="linear",
)

_SMALL = ModelConfig(
    unet=UNetConfig(
        image_size=64, channels=64, channel_mult=(1, 2, 3, 3), num_res_blocks=2,
        attention_resolutions=(16, 8), head_channels=32, dropout=0.1,
    ),
    text=TextConfig(context=32, width=256, layers=4, heads=4),
)
_SMALL_UPSAMPLE = ModelConfig(
    unet=UNetConfig(
        image_size=256, channels=32, channel_mult=(1, 1, 2, 2, 4), num_res_blocks=1,
        attention_resolutions=(16,), head_channels=32, dropout=0.0,
    ),
    text=TextConfig(tokenizer="bytes", context=64, width=128, layers=2, heads=4),
    super_res=True,
    low_res_size=64,
    noise_schedule="linear",
)

PRESETS: dict[str, ModelConfig] = {
    # The four released GLIDE (filtered) checkpoints, exactly as model_and_diffusion_defaults() builds them.
    "base": _BASE,
    "upsample": _UPSAMPLE,
    "base-inpaint": _BASE.replace(inpaint=True),
    "upsample-inpaint": _UPSAMPLE.replace(inpaint=True),
    # The paper's model (§4.1): ADM at 64 px widened to 512 channels; text transformer of 24 blocks, width 2048.
    "glide-3.5b": ModelConfig(
        unet=UNetConfig(channels=512),
        text=TextConfig(width=2048, layers=24, heads=32),
    ),
    # The paper's 1.5B text-conditional 64 -> 256 upsampler (§4.1 gives only its size): the released upsampler's
    # layout with every width doubled, U-Net 192 -> 384 channels and text transformer 512 -> 1024 (16 layers,
    # 64-dim heads as in both released and paper encoders). Parameters grow about 4x: 1.54B.
    "glide-3.5b-upsample": _UPSAMPLE.replace(
        unet=dataclasses.replace(_UPSAMPLE.unet, channels=384),
        text=TextConfig(width=1024, layers=16, heads=16),
    ),
    # Small models for CPU work. `tiny` reads UTF-8 bytes so that a 50257-row vocabulary does not dwarf it.
    "tiny": ModelConfig(
        unet=UNetConfig(
            image_size=32, channels=32, channel_mult=(1, 2), num_res_blocks=1,
            attention_resolutions=(16,), head_channels=32, dropout=0.0,
        ),
        text=TextConfig(tokenizer="bytes", context=32, width=64, layers=2, heads=2),
    ),
    "small": _SMALL,
    "small-upsample": _SMALL_UPSAMPLE,
    # Sized for minutes of CPU training (configs/cpu-10min.toml): 32 channels at full resolution (a 64 px
    # convolution costs 4x less than at 64 channels), one block per level, one attention level.
    "small-cpu": ModelConfig(
        unet=UNetConfig(
            image_size=64, channels=32, channel_mult=(1, 2, 4), num_res_blocks=1,
            attention_resolutions=(16,), head_channels=32, dropout=0.0,
        ),
        text=TextConfig(tokenizer="bytes", context=64, width=128, layers=2, heads=2),
    ),
    # The bundled emoji models: the small ones with byte tokens (no 50257-row table) and a 96-byte context that
    # holds the longest emoji caption with its style suffix. No dropout: they train for minutes, not days.
    "emoji": _SMALL.replace(
        unet=dataclasses.replace(_SMALL.unet, dropout=0.0),
        text=TextConfig(tokenizer="bytes", context=96, width=256, layers=4, heads=4),
        inpaint=True,
    ),
    "emoji-upsample": _SMALL_UPSAMPLE.replace(text=dataclasses.replace(_SMALL_UPSAMPLE.text, context=96)),
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise GlideError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
