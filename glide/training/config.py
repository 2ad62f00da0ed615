"""Training configuration: one typed dataclass, read from TOML, overridden by command-line flags."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import KINDS, PRESETS, ModelConfig, check_scale_range, get_preset
from ..errors import GlideError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


@dataclass
class TrainConfig:
    # what to train
    preset: str = "small"
    kind: str = "text2im"  # text2im | superres | inpaint | superres-inpaint | clip
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the preset, e.g. {unet = {dropout = 0.0}}
    init_from: str | None = None  # fine-tune: a model folder, or an official .pt (with init_kind)
    init_kind: str | None = None  # official kind of init_from when it is a .pt: base, upsample, ...
    init_options: dict[str, Any] = field(default_factory=dict)  # official hyperparameters of init_from
    distill_scales: list[float] = field(default_factory=list)  # [low, high]: distil init_from's guidance (distill.py)
    fit_vocab: bool = False  # gpt2 tokenizer, new model: prune the 50257-row table to the training captions' tokens
    # data
    data: str = ""
    background: str = "white"  # RGBA images are composited on this
    hflip: bool = False  # off by default: captions can name a side
    caption_filter: str = ""  # a regular expression: train only on images whose caption matches it
    # concept balancing (glide.data.balance): captions equal once this regex's matches are removed are one concept;
    # "skin-tones" names the emoji data's tone phrases. "" = uniform draws
    concept_pattern: str = ""
    concept_power: float = 1.0  # draw an image with probability ~ (its concept's image count) ** -power; 0 = uniform
    caption_dropout: float = 0.2  # share of empty captions, for classifier-free guidance
    alt_caption_prob: float = 0.0  # chance of using an alternative caption when the data has them
    p_unmasked: float = 0.25  # inpainting kinds: share of examples with nothing known (plain text2im)
    workers: int = 2  # image-decoding threads
    # optimisation
    max_steps: int = 10_000
    batch_size: int = 32  # global batch (all processes)
    microbatch: int = 0  # per-process micro-batch for gradient accumulation; 0 = no accumulation
    lr: float = 1e-4
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    lr_schedule: str = "constant"  # constant | cosine (after warmup, to 0 at max_steps or at the time limit if sooner)
    grad_clip: float = 1.0
    ema_rate: float = 0.9999  # 0 disables the EMA
    vlb_weight: float = 0.001  # lambda of the hybrid loss
    snr_gamma: float = 0.0  # Min-SNR-gamma weighting of the eps MSE (e.g. 5); 0 = GLIDE's unweighted L_simple
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    grad_checkpointing: bool = False
    compile: bool = False  # compile forward + loss as one graph (its backward is compiled too): step.py
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs
    # the fast path (docs/training.md, "Fast GPU training"); all off by default
    resident: bool = False  # whole dataset on the device; captions, dropout, masks drawn there (resident.py)
    channels_last: bool = False  # NHWC memory format for the model's convolutions
    fused_adamw: bool = False  # AdamW's single fused kernel (torch's fused=True) instead of its foreach one
    fsdp: bool = False  # under torchrun: shard parameters, gradients, optimizer state and EMA (FSDP2) instead of DDP
    seed: int = 0
    time_limit_minutes: float = 0.0  # stop (with a checkpoint) after this much training time; 0 = none
    profile_at: int = 0  # profile the PROFILE_STEPS steps from this one into RUN/profile.txt (after the compile); 0 = off
    # outputs
    out: str = ""
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    sample_every: int = 0  # 0 = never
    sample_prompts: list[str] = field(default_factory=lambda: ["a red apple", "a smiling face with sunglasses"])
    sample_steps: int = 25
    sample_guidance: float = 3.0
    tensorboard: bool = False

    def model_config(self) -> ModelConfig:
        """The preset turned to this run's kind, with the [model] overrides: a fresh run's model (see
        glide.training.init, which decides between this, a source model and a checkpoint)."""
        base = get_preset(self.preset)
        if self.kind == "clip":
            return base
        cfg = base.with_kind(self.kind)
        if self.model:
            d = cfg.to_dict()
            for k, v in self.model.items():
                if k not in d:
                    raise GlideError(f"unknown model key {k!r} in [model]")
                if isinstance(v, dict) and isinstance(d[k], dict):
                    d[k] = {**d[k], **v}
                else:
                    d[k] = v
            cfg = ModelConfig.from_dict(d)
        return cfg.validate()

    def validate(self) -> "TrainConfig":
        if self.kind not in (*KINDS, "clip"):
            raise GlideError(f"unknown kind {self.kind!r}; choose one of {', '.join((*KINDS, 'clip'))}")
        if self.preset not in PRESETS and self.kind != "clip":
            raise GlideError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not self.data:
            raise GlideError("no training data given (--data PATH)")
        if not self.out:
            raise GlideError("no run folder given (--out RUN_DIR)")
        for name in ("max_steps", "batch_size", "checkpoint_every", "keep_checkpoints", "log_every"):
            if getattr(self, name) <= 0:
                raise GlideError(f"{name} must be positive, got {getattr(self, name)}")
        if self.microbatch < 0:
            raise GlideError("microbatch must be >= 0")
        if not 0 <= self.caption_dropout <= 1:
            raise GlideError("caption_dropout must be in [0, 1]")
        if self.concept_pattern:
            from ..data.balance import concept_regex

            concept_regex(self.concept_pattern)  # a bad pattern fails here, before any model is built
        if not 0 <= self.concept_power <= 1:
            raise GlideError(f"concept_power must be in [0, 1] (0 = uniform, 1 = every concept equally often), "
                             f"got {self.concept_power}")
        if self.snr_gamma < 0:
            raise GlideError(f"snr_gamma must be >= 0 (0 = off), got {self.snr_gamma}")
        if not 0 <= self.ema_rate < 1:
            raise GlideError("ema_rate must be in [0, 1)")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise GlideError("precision must be auto, fp32 or bf16")
        if self.fsdp and self.compile:
            raise GlideError("fsdp and compile together are not supported here; choose one")
        if self.compile_mode not in COMPILE_MODES:
            raise GlideError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        if self.resident and self.kind == "clip":
            raise GlideError("resident = true is for diffusion kinds, not clip")
        if self.fit_vocab and (self.kind == "clip" or self.init_from):
            raise GlideError("fit_vocab fits the text table of a new diffusion model; it does not go with "
                             "kind = \"clip\" or init_from")
        if self.distill_scales:
            check_scale_range(self.distill_scales, "distill_scales")
            if not self.init_from or self.kind == "clip":
                raise GlideError("distill_scales distils a teacher's guidance: it needs init_from (the teacher) "
                                 "and a diffusion kind")
        if self.profile_at < 0:
            raise GlideError("profile_at must be a step number (0 = no profile)")
        if self.lr_schedule not in ("constant", "cosine"):
            raise GlideError("lr_schedule must be constant or cosine")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "TrainConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in names]
        if unknown:
            raise GlideError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid keys: {', '.join(names)}")
        d = {k: tuple(v) if k == "adam_betas" else v for k, v in d.items()}
        return cls(**d)


PACKAGED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"  # the repository's configs/, shipped in the wheel


def packaged_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.toml"))


def find_config(spec: str | Path) -> Path:
    """A TOML config: a file path, or the name of a config shipped with glide ("emoji-base")."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name.removesuffix(".toml")
    if str(spec) in (name, f"{name}.toml", f"configs/{name}.toml") and (PACKAGED_CONFIGS / f"{name}.toml").is_file():
        return PACKAGED_CONFIGS / f"{name}.toml"
    raise GlideError(f"config file not found: {spec} (a TOML file, or one of the packaged configs: "
                     f"{', '.join(packaged_configs())})")


def load_toml(path: str | Path) -> dict[str, Any]:
    path = find_config(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GlideError(f"{path} is not valid TOML ({e})") from None
