"""Pipelines compose a model, a sampler and guidance into "prompt in, images out". No maths here."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from . import defaults, guidance, hooks, samplers
from .checkpoint import LazyModelKey
from .config import ModelConfig
from .diffusion import Diffusion
from .errors import GlideError
from .images import from_pil, quantize_8bit, to_pil
# BUNDLED and default_model are used by callers that import them from here, as before glide/loading.py existed.
from .loading import BUNDLED, default_model, load_model, resolve_model  # noqa: F401
from .models import GLIDE, TextEmbedding
from .pipeline_edits import EditingMixin
from .runtime import Precision, default_device, default_precision, warn_if_bf16_is_slow
from .samplers import Generator, randn
from .text import get_tokenizer
from .validation import check_seed, finite, parse_steps


class Pipeline(EditingMixin):
    """Text-to-image sampling, editing and upsampling with GLIDE models.

    >>> pipe = Pipeline.from_pretrained("path/to/base", upsampler="path/to/upsampler")
    >>> images = pipe(["a red apple"], seed=0)  # glide.defaults: 20 steps of dpm++2m-sde, guidance 3
    >>> edited = pipe.inpaint(images[0], mask, "a green apple")
    >>> big = pipe.upsample(images, "a red apple")
    """

    model_key = LazyModelKey()
    clip_key = LazyModelKey()

    def __init__(self, model: GLIDE, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                 upsampler: GLIDE | None = None, clip=None, compile: bool | str = False):
        """`compile`: run the U-Nets through torch.compile (True, or a mode: "reduce-overhead" also captures
        CUDA graphs, for small batches on a GPU). The first call at each batch size pays for compilation."""
        self.device = torch.device(device) if device is not None else default_device()
        if compile not in (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
            raise GlideError(f"unknown compile mode {compile!r}; use True, default, reduce-overhead or max-autotune")
        self.compile = compile
        self._compiled: dict[int, torch.nn.Module] = {}
        # Upsampling keeps the low-res image's low frequencies (see glide.hooks.low_res_consistency); False gives the
        # official notebook's plain sampling.
        self.low_res_consistency = True
        # Classifier-free guidance only where the noise level sigma lies in (low, high] (glide.guidance.noise_interval);
        # elsewhere one forward pass of the conditional half. None guides every step. One for text-to-image and
        # SDEdit, one for inpainting, whose default depends on the base model (glide.defaults).
        self.guidance_interval: tuple[float, float] | None = defaults.GUIDANCE_INTERVAL
        self.inpaint_guidance_interval = defaults.inpaint_guidance_interval(model.cfg.prediction)
        # Outside the interval, add the last guided step's difference instead of dropping guidance
        # (glide.guidance.classifier_free): closer to guidance at every step, at the speed of the interval.
        self.guidance_reuse = defaults.GUIDANCE_REUSE
        # A guidance-distilled model (ModelConfig.distilled_guidance) predicts guided output in one row per image;
        # False runs classifier-free guidance's two rows on it instead (its scale-1 predictions).
        self.distilled_guidance = True
        # On CPU, NHWC convolutions are 10-30% faster (bench/cpu_sample.py); on CUDA the default is kept.
        fmt = torch.channels_last if self.device.type == "cpu" else torch.preserve_format
        self.model = model.to(self.device, memory_format=fmt).eval()
        self.upsampler = upsampler.to(self.device, memory_format=fmt).eval() if upsampler is not None else None
        self.clip = clip.to(self.device).eval().requires_grad_(False) if clip is not None else None
        self.cfg: ModelConfig = model.cfg
        if self.upsampler is not None and not self.upsampler.cfg.super_res:
            raise GlideError("the upsampler must be a super-resolution model")
        try:
            # None: each model's own default (runtime.default_precision)
            self._precision = Precision.parse(dtype) if dtype is not None else None
        except ValueError as e:
            raise GlideError(str(e)) from None
        if self._precision is not None:
            warn_if_bf16_is_slow(self.device, self._precision.dtype, f"dtype {self._precision.name}")
        self._alpha_bars: dict[tuple, np.ndarray] = {}
        self._diffusions: dict[tuple, Diffusion] = {}
        # Identity of the loaded weights (glide.checkpoint.model_key of the folders from_pretrained loaded; empty for
        # models passed in), for caches of what they sample: glide eval keys its cached batches on them.
        self.model_key = ""
        self.clip_key = ""

    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None,
                        upsampler: str | os.PathLike | None = None, clip: str | os.PathLike | None = None) -> "Pipeline":
        device = torch.device(device) if device is not None else default_device()
        model, _ = load_model(spec, device)
        up = load_model(upsampler, device)[0] if upsampler is not None else None
        noised_clip = clip_dir = None
        if clip is not None:
            from .clip.io import load_clip

            clip_dir = resolve_model("official:clip" if str(clip) == "official" else clip)
            noised_clip = load_clip(clip_dir, device)
        pipe = cls(model, device, dtype, upsampler=up, clip=noised_clip)
        pipe.model_key, pipe.clip_key = resolve_model(spec), clip_dir or ""  # digested when first read
        return pipe

    def clip_guidance(self, prompts: Sequence[str], scale: float):
        """cond_fn for CLIP guidance (GLIDE §3.2): shift the mean by variance * scale * grad of the CLIP
        similarity between the noisy sample and its caption."""
        if not scale:
            return None
        if self.clip is None:
            raise GlideError("CLIP guidance needs a noised CLIP model (--clip-model DIR)")
        if self.clip.cfg.image_size != self.cfg.unet.image_size:
            raise GlideError(f"the CLIP sees {self.clip.cfg.image_size} px images but the model makes "
                             f"{self.cfg.unet.image_size} px ones")
        from .clip.guidance import clip_cond_fn
        from .clip.tokenizer import get_clip_tokenizer

        tokens, lens = get_clip_tokenizer()(list(prompts), self.clip.cfg.text_context)
        return clip_cond_fn(self.clip, tokens.to(self.device), lens.to(self.device), float(scale))

    # -- building blocks ---------------------------------------------------------------------------
    @property
    def precision(self) -> Precision:
        """The base model's compute precision."""
        return self.precision_for(self.model)

    def precision_for(self, model: GLIDE) -> Precision:
        """The precision `model` runs in: the one asked for, else its default on this device."""
        return self._precision or default_precision(self.device, model.cfg)

    def autocast(self, model: GLIDE | None = None, t: torch.Tensor | None = None):
        """The autocast context for one call of `model` at original timesteps `t` (None: the least noisy step).
        A mixed precision decides by the noisiest row."""
        model = model or self.model
        precision = self.precision_for(model)
        dtype = precision.dtype
        if precision.min_alpha_bar > 0 and t is not None:
            dtype = precision.at(float(self.alpha_bar(model)[int(t.max())]))
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def alpha_bar(self, model: GLIDE) -> np.ndarray:
        """alpha_bar over the model's own (unrespaced) timesteps."""
        key = (model.cfg.noise_schedule, model.cfg.diffusion_steps)
        if key not in self._alpha_bars:
            self._alpha_bars[key] = Diffusion.from_schedule(*key).alphas_cumprod
        return self._alpha_bars[key]

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], model: GLIDE | None = None) -> TextEmbedding | None:
        """The text conditioning for each prompt; each distinct prompt goes through the encoder once."""
        model = model or self.model
        if model.cfg.text is None:
            return None
        unique = {p: i for i, p in enumerate(dict.fromkeys(prompts))}
        tokens, mask = get_tokenizer(model.cfg.text.tokenizer, model.cfg.text.vocab)(list(unique), model.cfg.text.context)
        emb = model.encode_text(tokens.to(self.device), mask.to(self.device))  # once per call: full precision
        index = torch.tensor([unique[p] for p in prompts], device=self.device)
        return TextEmbedding(*(t.float()[index] for t in emb))

    def diffusion(self, steps: int | str | Diffusion, model: GLIDE | None = None) -> Diffusion:
        """The respaced process for a step count or respacing spec (a Diffusion passes through)."""
        if isinstance(steps, Diffusion):
            return steps
        cfg = (model or self.model).cfg
        key = (cfg.noise_schedule, cfg.diffusion_steps, parse_steps(steps))
        if key not in self._diffusions:
            self._diffusions[key] = Diffusion.from_schedule(*key)
        return self._diffusions[key]

    def _model_fn(self, model: GLIDE):
        net = self._compiled_net(model) if self.compile else model
        # CUDA graphs replay into the same output buffer: copy it out before the next step can overwrite it.
        copy = self.compile == "reduce-overhead"

        def run(x, t, **kw):
            with self.autocast(model, t):
                out = net(x, t, **kw).float()
            return out.clone() if copy else out

        return run

    def _compiled_net(self, model: GLIDE) -> torch.nn.Module:
        if id(model) not in self._compiled:
            mode = None if self.compile in (True, "default") else self.compile
            self._compiled[id(model)] = torch.compile(model, mode=mode, dynamic=False)
        return self._compiled[id(model)]

    def uses_distilled_guidance(self, model: GLIDE, scale: float) -> bool:
        """Whether guidance at `scale` runs as one row per image: the model is guidance-distilled for that scale,
        and `distilled_guidance` is on. Elsewhere classifier-free guidance runs two rows, as for any model."""
        scales = model.cfg.distilled_guidance
        return bool(self.distilled_guidance and scales and scale != 1.0 and scales[0] <= scale <= scales[1])

    def generator(self, seed: int | None) -> torch.Generator:
        """One torch.Generator on the pipeline's device, seeded `seed` (None: a random seed)."""
        g = torch.Generator(self.device)
        if seed is None:
            g.seed()
        else:
            g.manual_seed(check_seed(seed))
        return g

    def generators(self, count: int, seed: int | None = None, generator: Generator = None,
                   repeat: int = 1) -> torch.Generator | list[torch.Generator]:
        """The noise sources of `count * repeat` images: image j of every group of `count` gets its own
        generator seeded `seed + j`, so an image does not depend on the batch size or on how many images are
        made after it (and `--seed S -n 1` remakes image 0, `--seed S+1 -n 1` image 1). With `repeat` (one
        group per prompt) each prompt sees the same noise. `generator` instead: one torch.Generator shared by
        all images, or a list of one per image."""
        total = count * repeat
        if generator is not None:
            if seed is not None:
                raise GlideError("give a seed or a generator, not both")
            if isinstance(generator, torch.Generator):
                return generator
            generator = list(generator)
            if len(generator) != total or not all(isinstance(g, torch.Generator) for g in generator):
                raise GlideError(f"generator must be one torch.Generator or a list of {total} (one per image), "
                                 f"got {len(generator)} items")
            return generator
        seed = random.randrange(2**63) if seed is None else check_seed(seed)
        return [self.generator((seed + j) % 2**64) for _ in range(repeat) for j in range(count)]

    @staticmethod
    def _rows(generator, start: int, stop: int):
        """The generators of images start..stop-1 (a shared generator is shared by every chunk)."""
        return generator if isinstance(generator, torch.Generator) else generator[start:stop]

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        *,
        model: GLIDE | None = None,
        guidance_scale: float = defaults.GUIDANCE,
        steps: int | str | Diffusion | None = None,
        sampler: str | None = None,
        eta: float = 0.0,
        temperature: float = 1.0,
        generator: Generator = None,
        inputs: dict | None = None,
        denoised_fn=None,
        cond_fn=None,
        project=None,
        progress: bool = False,
        callback=None,
        x: torch.Tensor | None = None,
        start: int | None = None,
        guidance_interval: tuple[float, float] | None | str = "pipeline",
        guidance_reuse: bool | str = "pipeline",
    ) -> torch.Tensor:
        """One batch from `model` (default: the base model): images in [-1, 1], [len(prompts), 3, S, S].

        `x` and `start`: begin from `x` at schedule index `start` instead of from fresh noise at the last
        index (SDEdit; see `sdedit`).
        `steps` and `sampler` default to glide.defaults (the CLIP-guided ones with a `cond_fn`).
        `generator`: one torch.Generator, or a list of one per row (see `generators`).
        `inputs` are extra model inputs shared by both guidance halves (low_res, inpaint_image, inpaint_mask).
        `callback(i, x, out)` runs after every step (i counts down to 0; out.pred_xstart is the current
        x_0 estimate); raising from it stops sampling.
        `guidance_interval`: (low, high] noise levels where guidance runs, None for every step; by default
        `self.guidance_interval`. `guidance_reuse`: outside it, reuse the last guided step's difference (by
        default `self.guidance_reuse`).
        """
        guidance_scale = finite(guidance_scale, "guidance scale")
        temperature = finite(temperature, "temperature")
        model = model or self.model
        sampler, steps = defaults.sampler_and_steps(cond_fn is not None, sampler, steps)
        spec = samplers.check(sampler, clip_guided=cond_fn is not None)
        diffusion = self.diffusion(steps, model)
        n, size = len(prompts), model.cfg.unet.image_size
        extra = dict(inputs or {})
        cond = {"text": self.encode(prompts, model), **extra}
        interval = self.guidance_interval if guidance_interval == "pipeline" else guidance_interval
        active = guidance.noise_interval(self.alpha_bar(model), interval) if interval else None
        reuse = self.guidance_reuse if guidance_reuse == "pipeline" else bool(guidance_reuse)
        if self.uses_distilled_guidance(model, guidance_scale):  # no empty caption's row to encode
            denoiser = guidance.distilled(self._model_fn(model), cond, guidance_scale, active)
        else:
            uncond = {"text": self.encode([""] * n, model), **extra}
            denoiser = guidance.classifier_free(self._model_fn(model), cond, uncond, guidance_scale, active, reuse)
        if x is None:
            x = randn((n, 3, size, size), generator, self.device) * temperature
        kwargs = dict(clip_denoised=True, denoised_fn=denoised_fn, generator=generator,
                      progress=progress, project=project, callback=callback, start=start)
        if spec.cond_fn:
            kwargs["cond_fn"] = cond_fn
        if spec.takes_eta:
            kwargs["eta"] = eta
        return spec.load()(denoiser, diffusion, x, **kwargs)

    @staticmethod
    def _prompts(prompt: str | Sequence[str]) -> list[str]:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise GlideError("no prompt given")
        return prompts

    @staticmethod
    def _check(num_images: int, batch_size: int, steps, **scales) -> None:
        if num_images < 1:
            raise GlideError(f"number of images must be >= 1, got {num_images}")
        if batch_size < 1:
            raise GlideError(f"batch size must be >= 1, got {batch_size}")
        if not isinstance(steps, Diffusion):
            parse_steps(steps)  # raises a clear error for bad step counts before any work starts
        for name, value in scales.items():  # NaN or infinite scales would give black images, not an error
            finite(value, name.replace("_", " "))

    def __call__(
        self,
        prompt: str | Sequence[str],
        num_images: int = 1,
        *,
        guidance_scale: float = defaults.GUIDANCE,
        steps: int | str | None = None,
        sampler: str | None = None,
        eta: float = 0.0,
        temperature: float = 1.0,
        seed: int | None = None,
        generator: Generator = None,
        batch_size: int = defaults.BATCH_SIZE,
        clip_guidance_scale: float = 0.0,
        upsample: bool = False,
        upsample_steps: int | str = defaults.UPSAMPLE_STEPS,
        upsample_sampler: str = defaults.UPSAMPLE_SAMPLER,
        upsample_temperature: float = defaults.UPSAMPLE_TEMPERATURE,
        progress: bool = True,
        callback=None,
    ) -> list[Image.Image]:
        """Generate `num_images` per prompt (in chunks of `batch_size`); `upsample` runs the 64 -> 256 cascade.
        `clip_guidance_scale` > 0 adds CLIP guidance (needs a CLIP); it combines with classifier-free guidance.
        `steps` and `sampler` default to glide.defaults (STEPS of SAMPLER; CLIP_STEPS of CLIP_SAMPLER with
        CLIP guidance). Image j of every prompt starts from seed `seed + j` (see `generators`); or pass
        `generator`, one torch.Generator or a list of one per image."""
        prompts = self._prompts(prompt)
        sampler, steps = defaults.sampler_and_steps(bool(clip_guidance_scale), sampler, steps)
        self._check(num_images, batch_size, steps, guidance_scale=guidance_scale, temperature=temperature,
                    clip_guidance_scale=clip_guidance_scale, upsample_temperature=upsample_temperature, eta=eta)
        if upsample and self.upsampler is None:
            raise GlideError("upsampling needs an upsampler model (--upsampler DIR)")
        todo = [p for p in prompts for _ in range(num_images)]
        gens = self.generators(num_images, seed, generator, repeat=len(prompts))
        images: list[Image.Image] = []
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            g = self._rows(gens, start, start + len(chunk))
            x = self.sample(chunk, guidance_scale=guidance_scale, steps=steps, sampler=sampler, eta=eta,
                            temperature=temperature, generator=g, progress=progress, callback=callback,
                            cond_fn=self.clip_guidance(chunk, clip_guidance_scale))
            if upsample:
                x = self._upsample(x, chunk, upsample_steps, upsample_sampler, upsample_temperature, g, progress,
                                   callback=callback)
            images += to_pil(x)
        return images

    # -- upsampling --------------------------------------------------------------------------------
    def _upsample(self, low: torch.Tensor, prompts: list[str], steps, sampler, temperature, generator, progress,
                  inputs: dict | None = None, callback=None) -> torch.Tensor:
        # The upsampler was trained on 8-bit images: quantise its input like a saved 64 px image.
        low = quantize_8bit(low)
        fns = [hooks.keep_known(inputs)] if inputs else []
        if self.low_res_consistency:
            fns.insert(0, hooks.low_res_consistency(low, self.upsampler.cfg.unet.image_size))
        return self.sample(prompts, model=self.upsampler, guidance_scale=1.0, steps=steps, sampler=sampler,
                           temperature=temperature, generator=generator, progress=progress,
                           inputs={"low_res": low, **(inputs or {})}, denoised_fn=hooks.chain(fns), callback=callback)

    def upsample(self, images, prompt: str | Sequence[str], *, steps: int | str = defaults.UPSAMPLE_STEPS,
                 sampler: str = defaults.UPSAMPLE_SAMPLER, temperature: float = defaults.UPSAMPLE_TEMPERATURE,
                 seed: int | None = None, generator: Generator = None, batch_size: int = defaults.BATCH_SIZE,
                 progress: bool = True, callback=None) -> list[Image.Image]:
        """64 px images (PIL or [B, 3, 64, 64] in [-1, 1]) -> 256 px, guided by the prompt(s). Image k
        starts from seed `seed + k` (or `generator`: one, or one per image)."""
        if self.upsampler is None:
            raise GlideError("no upsampler model loaded")
        if isinstance(images, Image.Image):
            images = [images]
        if not isinstance(images, torch.Tensor):
            from .images import fit_square, to_rgb

            size = self.upsampler.cfg.low_res_size
            images = from_pil([fit_square(to_rgb(im), size) for im in images])
        prompts = self._prompts(prompt)
        if len(prompts) == 1:
            prompts = prompts * len(images)
        if len(prompts) != len(images):
            raise GlideError(f"{len(images)} images but {len(prompts)} prompts")
        self._check(1, batch_size, steps, temperature=temperature)
        gens = self.generators(len(images), seed, generator)
        out: list[Image.Image] = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(self.device)
            out += to_pil(self._upsample(x, prompts[start : start + batch_size], steps, sampler, temperature,
                                         self._rows(gens, start, start + len(x)), progress, callback=callback))
        return out
