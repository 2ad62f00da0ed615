"""Pipelines compose a model, a sampler and guidance into "prompt in, images out". No maths here."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from . import guidance
from .checkpoint import read_model_dir
from .config import ModelConfig
from .diffusion import Diffusion
from .errors import GlideError
from .images import to_pil
from .models import GLIDE, TextEmbedding
from .samplers import get_sampler
from .text import get_tokenizer

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def resolve_model(spec: str | os.PathLike) -> Path:
    """A model folder from a path or `official:NAME` (fetched and converted once into the cache)."""
    spec = str(spec)
    if spec.startswith("official:"):
        from .official.hub import ensure_converted

        return ensure_converted(spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    if not path.exists():
        raise GlideError(f"model not found: {spec} (give a model folder, or official:base / official:upsample / ...)")
    return path


def load_model(spec: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[GLIDE, dict]:
    cfg, sd, doc = read_model_dir(resolve_model(spec))
    with torch.device("meta"):
        model = GLIDE(cfg)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, assign=True)
    except RuntimeError as e:
        raise GlideError(f"weights in {spec} do not match its config: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), doc


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_steps(steps: int | str) -> str:
    """Steps as a respacing spec: 100 -> "100"; "fast27", "ddim25" and section lists pass through."""
    if isinstance(steps, int) or (isinstance(steps, str) and steps.strip().lstrip("-").isdigit()):
        n = int(steps)
        if n <= 0:
            raise GlideError(f"steps must be a positive number, got {n}")
        return str(n)
    return str(steps)


class Pipeline:
    """Text-to-image sampling with a GLIDE model.

    >>> pipe = Pipeline.from_pretrained("path/to/model")
    >>> images = pipe(["a red apple"], guidance_scale=3.0, steps=100, seed=0)
    """

    def __init__(self, model: GLIDE, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.cfg: ModelConfig = model.cfg
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise GlideError(f"unknown dtype {dtype!r}; choose fp32, bf16 or fp16")
            dtype = DTYPES[dtype]
        # fp32 on CPU; mixed precision (autocast) on CUDA unless asked otherwise.
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.tokenizer = get_tokenizer(self.cfg.text.tokenizer) if self.cfg.text else None
        self.base_diffusion = Diffusion.from_schedule(self.cfg.noise_schedule, self.cfg.diffusion_steps)

    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None) -> "Pipeline":
        device = torch.device(device) if device is not None else default_device()
        model, _ = load_model(spec, device)
        return cls(model, device, dtype)

    # -- building blocks ---------------------------------------------------------------------------
    def autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> TextEmbedding | None:
        if self.cfg.text is None:
            return None
        tokens, mask = self.tokenizer(list(prompts), self.cfg.text.context)
        with self.autocast():
            emb = self.model.encode_text(tokens.to(self.device), mask.to(self.device))
        return TextEmbedding(*(t.float() for t in emb))

    def diffusion(self, steps: int | str | Diffusion) -> Diffusion:
        """The respaced process for a step count or respacing spec (a Diffusion passes through)."""
        if isinstance(steps, Diffusion):
            return steps
        return self.base_diffusion.respace(parse_steps(steps))

    def _model_fn(self):
        def run(x, t, **kw):
            with self.autocast():
                return self.model(x, t, **kw).float()

        return run

    def _generator(self, seed: int | None) -> torch.Generator:
        g = torch.Generator(self.device)
        if seed is None:
            g.seed()
        else:
            g.manual_seed(int(seed))
        return g

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        *,
        guidance_scale: float = 3.0,
        steps: int | str | Diffusion = 100,
        sampler: str = "ddpm",
        eta: float = 0.0,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        inputs: dict | None = None,
        denoised_fn=None,
        cond_fn=None,
        progress: bool = False,
    ) -> torch.Tensor:
        """One batch: returns images in [-1, 1], [len(prompts), 3, S, S]."""
        try:
            guidance_scale = float(guidance_scale)
        except (TypeError, ValueError):
            raise GlideError(f"guidance scale must be a number, got {guidance_scale!r}") from None
        sample_fn = get_sampler(sampler)
        diffusion = self.diffusion(steps)
        n, size = len(prompts), self.cfg.unet.image_size
        extra = dict(inputs or {})
        cond = {"text": self.encode(prompts), **extra}
        uncond = {"text": self.encode([""] * n), **extra}
        denoiser = guidance.classifier_free(self._model_fn(), cond, uncond, guidance_scale)
        x = torch.randn((n, 3, size, size), generator=generator, device=self.device) * temperature
        kwargs = dict(clip_denoised=True, denoised_fn=denoised_fn, cond_fn=cond_fn, generator=generator, progress=progress)
        if sampler == "ddim":
            kwargs["eta"] = eta
        return sample_fn(denoiser, diffusion, x, **kwargs)

    def __call__(
        self,
        prompt: str | Sequence[str],
        num_images: int = 1,
        *,
        guidance_scale: float = 3.0,
        steps: int | str = 100,
        sampler: str = "ddpm",
        eta: float = 0.0,
        temperature: float = 1.0,
        seed: int | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> list[Image.Image]:
        """Generate `num_images` per prompt; large requests run in chunks of `batch_size`."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise GlideError("no prompt given")
        if num_images < 1:
            raise GlideError(f"number of images must be >= 1, got {num_images}")
        if batch_size < 1:
            raise GlideError(f"batch size must be >= 1, got {batch_size}")
        parse_steps(steps)
        todo = [p for p in prompts for _ in range(num_images)]
        generator = self._generator(seed)
        images: list[Image.Image] = []
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            x = self.sample(chunk, guidance_scale=guidance_scale, steps=steps, sampler=sampler, eta=eta,
                            temperature=temperature, generator=generator, progress=progress)
            images += to_pil(x)
        return images
