"""Pipelines compose a model, a sampler and guidance into "prompt in, images out". No maths here."""

from __future__ import annotations

import contextlib
import math
import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from . import defaults, guidance, samplers
from .checkpoint import load_weights, on_meta, read_model_dir
from .config import ModelConfig
from .diffusion import Diffusion
from .errors import GlideError
from .images import from_pil, to_pil
from .models import GLIDE, TextEmbedding
from .samplers import Generator, randn
from .text import get_tokenizer

from .runtime import DTYPES, default_device, default_dtype


def resolve_model(spec: str | os.PathLike) -> Path:
    """A model folder from a path, `bundled:base|upsampler|clip` (shipped in the package) or `official:NAME`
    (fetched and converted once into the cache)."""
    spec = str(spec)
    if spec.startswith("bundled:"):
        return default_model(spec.split(":", 1)[1])
    if spec.startswith("official:"):
        from .official.hub import ensure_converted

        return ensure_converted(spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    if not path.exists():
        raise GlideError(f"model not found: {spec} (give a model folder, or official:base / official:upsample / ...)")
    return path


BUNDLED = Path(__file__).parent / "weights"


def default_model(role: str) -> Path:
    """The bundled default model for a role ("base", "upsampler", "clip")."""
    path = BUNDLED / role
    if role not in ("base", "upsampler", "clip"):
        raise GlideError(f"no bundled model {role!r}: choose bundled:base, bundled:upsampler or bundled:clip")
    if not (path / "config.json").is_file():
        raise GlideError(f"no bundled default {role} model in this installation: pass --model DIR "
                         f"(e.g. a folder from `glide convert` or `glide export`, or official:base)")
    return path


def load_model(spec: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[GLIDE, dict]:
    cfg, sd, doc = read_model_dir(resolve_model(spec))
    model = load_weights(on_meta(lambda: GLIDE(cfg)), sd, spec)
    return model.to(device).eval(), doc


def finite(value, name: str) -> float:
    """`value` as a float, refusing what is not a finite number (NaN guidance gives black images)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise GlideError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise GlideError(f"{name} must be a finite number, got {value!r}")
    return v


def check_seed(seed) -> int:
    """A seed torch accepts: a whole number from 0 to 2**64 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise GlideError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r}")
    return int(seed)


def parse_steps(steps: int | str) -> str:
    """Steps as a respacing spec: 100 -> "100"; "fast27", "ddim25" and section lists pass through."""
    if isinstance(steps, int) or (isinstance(steps, str) and steps.strip().lstrip("-").isdigit()):
        n = int(steps)
        if n <= 0:
            raise GlideError(f"steps must be a positive number, got {n}")
        return str(n)
    return str(steps)


class Pipeline:
    """Text-to-image sampling, editing and upsampling with GLIDE models.

    >>> pipe = Pipeline.from_pretrained("path/to/base", upsampler="path/to/upsampler")
    >>> images = pipe(["a red apple"], seed=0)  # glide.defaults: 20 steps of dpm++2m-sde, guidance 3
    >>> edited = pipe.inpaint(images[0], mask, "a green apple")
    >>> big = pipe.upsample(images, "a red apple")
    """

    def __init__(self, model: GLIDE, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                 upsampler: GLIDE | None = None, clip=None, compile: bool | str = False):
        """`compile`: run the U-Nets through torch.compile (True, or a mode: "reduce-overhead" also captures
        CUDA graphs, for small batches on a GPU). The first call at each batch size pays for compilation."""
        self.device = torch.device(device) if device is not None else default_device()
        if compile not in (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
            raise GlideError(f"unknown compile mode {compile!r}; use True, default, reduce-overhead or max-autotune")
        self.compile = compile
        self._compiled: dict[int, torch.nn.Module] = {}
        # Upsampling keeps the low-res image's low frequencies (see _low_res_consistency); False gives the
        # official notebook's plain sampling.
        self.low_res_consistency = True
        # On CPU, NHWC convolutions are 10-30% faster (bench/cpu_sample.py); on CUDA the default is kept.
        fmt = torch.channels_last if self.device.type == "cpu" else torch.preserve_format
        self.model = model.to(self.device, memory_format=fmt).eval()
        self.upsampler = upsampler.to(self.device, memory_format=fmt).eval() if upsampler is not None else None
        self.clip = clip.to(self.device).eval().requires_grad_(False) if clip is not None else None
        self.cfg: ModelConfig = model.cfg
        if self.upsampler is not None and not self.upsampler.cfg.super_res:
            raise GlideError("the upsampler must be a super-resolution model")
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise GlideError(f"unknown dtype {dtype!r}; choose fp32, bf16 or fp16")
            dtype = DTYPES[dtype]
        self.dtype = dtype or default_dtype(self.device)
        self._diffusions: dict[tuple, Diffusion] = {}

    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None,
                        upsampler: str | os.PathLike | None = None, clip: str | os.PathLike | None = None) -> "Pipeline":
        device = torch.device(device) if device is not None else default_device()
        model, _ = load_model(spec, device)
        up = load_model(upsampler, device)[0] if upsampler is not None else None
        noised_clip = None
        if clip is not None:
            from .clip.io import load_clip

            noised_clip = load_clip(resolve_model("official:clip" if str(clip) == "official" else clip), device)
        return cls(model, device, dtype, upsampler=up, clip=noised_clip)

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
    def autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

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
            with self.autocast():
                out = net(x, t, **kw).float()
            return out.clone() if copy else out

        return run

    def _compiled_net(self, model: GLIDE) -> torch.nn.Module:
        if id(model) not in self._compiled:
            mode = None if self.compile in (True, "default") else self.compile
            self._compiled[id(model)] = torch.compile(model, mode=mode, dynamic=False)
        return self._compiled[id(model)]

    def _generator(self, seed: int | None) -> torch.Generator:
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
        return [self._generator((seed + j) % 2**64) for _ in range(repeat) for j in range(count)]

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
    ) -> torch.Tensor:
        """One batch from `model` (default: the base model): images in [-1, 1], [len(prompts), 3, S, S].

        `x` and `start`: begin from `x` at schedule index `start` instead of from fresh noise at the last
        index (SDEdit; see `sdedit`).
        `steps` and `sampler` default to glide.defaults (the CLIP-guided ones with a `cond_fn`).
        `generator`: one torch.Generator, or a list of one per row (see `generators`).
        `inputs` are extra model inputs shared by both guidance halves (low_res, inpaint_image, inpaint_mask).
        `callback(i, x, out)` runs after every step (i counts down to 0; out.pred_xstart is the current
        x_0 estimate); raising from it stops sampling.
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
        uncond = {"text": self.encode([""] * n, model), **extra}
        denoiser = guidance.classifier_free(self._model_fn(model), cond, uncond, guidance_scale)
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
        low = ((low.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
        fns = [_keep_known(inputs)] if inputs else []
        if self.low_res_consistency:
            fns.insert(0, _low_res_consistency(low, self.upsampler.cfg.unet.image_size))
        return self.sample(prompts, model=self.upsampler, guidance_scale=1.0, steps=steps, sampler=sampler,
                           temperature=temperature, generator=generator, progress=progress,
                           inputs={"low_res": low, **(inputs or {})}, denoised_fn=_chain(fns), callback=callback)

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

    # -- inpainting --------------------------------------------------------------------------------
    def inpaint(
        self,
        image,
        mask,
        prompt: str,
        num_images: int = 1,
        *,
        box: tuple[int, int, int, int] | None = None,
        guidance_scale: float = defaults.INPAINT_GUIDANCE,
        steps: int | str = defaults.STEPS,
        sampler: str = defaults.SAMPLER,
        eta: float = 0.0,
        seed: int | None = None,
        generator: Generator = None,
        batch_size: int = defaults.BATCH_SIZE,
        upsample: bool = False,
        upsample_steps: int | str = defaults.UPSAMPLE_STEPS,
        upsample_sampler: str = defaults.UPSAMPLE_SAMPLER,
        upsample_temperature: float = defaults.UPSAMPLE_TEMPERATURE,
        composite: bool = False,
        progress: bool = True,
        callback=None,
    ) -> list[Image.Image]:
        """Repaint the white region of `mask` (an image, or None with `box` = (x0, y0, x1, y1)) following
        `prompt`; the rest of the image is kept exactly. With a model that has no inpainting inputs, the
        known region is re-imposed from the forward process at every step (RePaint), which is weaker.
        `composite` pastes the result back into the original-resolution image. Image k starts from seed
        `seed + k` (or `generator`: one, or one per image)."""
        from . import editing

        self._check(num_images, batch_size, steps, guidance_scale=guidance_scale, eta=eta,
                    upsample_temperature=upsample_temperature)
        if upsample and self.upsampler is None:
            raise GlideError("upsampling needs an upsampler model (--upsampler DIR)")
        original = editing.to_rgb(editing.open_image(image))
        if box is not None:
            repaint = editing.box_to_repaint(*original.size, box)
        elif mask is None:
            raise GlideError("give a mask image or a box")
        elif isinstance(mask, np.ndarray):
            repaint = mask.astype(bool)
        else:
            repaint = editing.mask_to_repaint(editing.open_image(mask, "mask"))
        edit = editing.prepare_edit(original, repaint, self.cfg.unet.image_size)
        gens = self.generators(num_images, seed, generator)
        images: list[Image.Image] = []
        for start in range(0, num_images, batch_size):
            n = min(batch_size, num_images - start)
            generator = self._rows(gens, start, start + n)
            img, keep = edit.image.to(self.device).repeat(n, 1, 1, 1), edit.keep.to(self.device).repeat(n, 1, 1, 1)
            known = {"inpaint_image": img, "inpaint_mask": keep}
            if self.cfg.inpaint:
                x = self.sample([prompt] * n, guidance_scale=guidance_scale, steps=steps, sampler=sampler, eta=eta,
                                generator=generator, inputs=known, denoised_fn=_keep_known(known), progress=progress,
                                callback=callback)
            else:
                diffusion = self.diffusion(steps)
                x = self.sample([prompt] * n, guidance_scale=guidance_scale, steps=diffusion, sampler=sampler,
                                eta=eta, generator=generator, denoised_fn=_keep_known(known), progress=progress,
                                project=_repaint_projection(diffusion, img, keep, generator), callback=callback)
            if upsample:
                up_inputs = None
                if self.upsampler.cfg.inpaint:
                    size = self.upsampler.cfg.unet.image_size
                    big = from_pil(editing.fit_square(edit.original, size)).to(self.device).repeat(n, 1, 1, 1)
                    big_keep = torch.nn.functional.interpolate(keep, size=(size, size), mode="nearest")
                    up_inputs = {"inpaint_image": big, "inpaint_mask": big_keep}
                x = self._upsample(x, [prompt] * n, upsample_steps, upsample_sampler, upsample_temperature, generator,
                                   progress, inputs=up_inputs, callback=callback)
            images += to_pil(x)
        if composite:
            images = [editing.composite(edit, im) for im in images]
        return images


    # -- SDEdit ------------------------------------------------------------------------------------
    def sdedit(
        self,
        image,
        prompt: str,
        strength: float = 0.5,
        *,
        mask=None,
        num_images: int = 1,
        guidance_scale: float = defaults.GUIDANCE,
        steps: int | str | None = None,
        sampler: str | None = None,
        eta: float = 0.0,
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
        """Text-conditional SDEdit (Meng et al. 2022), GLIDE's sketch editing: noise `image` to step
        round(strength * N) of the N-step respaced schedule, then sample from there following `prompt`.

        strength 0 returns the image unchanged (fitted to the model's size); 1 starts from pure noise and
        ignores it; in between, the higher, the further the result may move from the image. With `mask` (an
        image or a bool array, WHITE / True = may change) the pixels outside it are kept exactly, as `inpaint`
        keeps them, and an inpainting model also gets its mask channels. Image k starts from seed `seed + k`
        (or `generator`: one, or one per image)."""
        from . import editing

        strength = finite(strength, "strength")
        if not 0 <= strength <= 1:
            raise GlideError(f"strength must be between 0 and 1, got {strength}")
        sampler, steps = defaults.sampler_and_steps(bool(clip_guidance_scale), sampler, steps)
        self._check(num_images, batch_size, steps, guidance_scale=guidance_scale, eta=eta,
                    clip_guidance_scale=clip_guidance_scale, upsample_temperature=upsample_temperature)
        if upsample and self.upsampler is None:
            raise GlideError("upsampling needs an upsampler model (--upsampler DIR)")
        original = editing.to_rgb(editing.open_image(image))
        size = self.cfg.unet.image_size
        keep = None
        if mask is None:
            img = from_pil(editing.fit_square(original, size))
        else:
            repaint = (mask.astype(bool) if isinstance(mask, np.ndarray)
                       else editing.mask_to_repaint(editing.open_image(mask, "mask")))
            edit = editing.prepare_edit(original, repaint, size)
            img, keep = edit.image, edit.keep.to(self.device)
        img = img.to(self.device)
        diffusion = self.diffusion(steps)
        k = round(strength * diffusion.num_timesteps)
        gens = self.generators(num_images, seed, generator)
        images: list[Image.Image] = []
        for begin in range(0, num_images, batch_size):
            n = min(batch_size, num_images - begin)
            g = self._rows(gens, begin, begin + n)
            x0 = img.repeat(n, 1, 1, 1)
            if k > 0:
                noise = randn(x0.shape, g, self.device)
                if k == diffusion.num_timesteps:  # strength 1: plain sampling from pure noise
                    x = noise
                else:
                    x = diffusion.q_sample(x0, torch.full((n,), k - 1, device=self.device, dtype=torch.long), noise)
                kw: dict = {}
                if keep is not None:
                    known = {"inpaint_image": x0, "inpaint_mask": keep.repeat(n, 1, 1, 1)}
                    kw["denoised_fn"] = _keep_known(known)
                    if self.cfg.inpaint:
                        kw["inputs"] = known
                    else:
                        kw["project"] = _repaint_projection(diffusion, x0, known["inpaint_mask"], g)
                x0 = self.sample([prompt] * n, guidance_scale=guidance_scale, steps=diffusion, sampler=sampler,
                                 eta=eta, generator=g, progress=progress, callback=callback, x=x, start=k - 1,
                                 cond_fn=self.clip_guidance([prompt] * n, clip_guidance_scale), **kw)
            if upsample:
                x0 = self._upsample(x0, [prompt] * n, upsample_steps, upsample_sampler, upsample_temperature, g,
                                    progress, callback=callback)
            images += to_pil(x0)
        return images


def _chain(fns):
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]
    return lambda x0: fns[1](fns[0](x0))


def _low_res_consistency(low: torch.Tensor, size: int):
    """denoised_fn that makes the x_0 prediction agree with the 64 px input at low frequencies: replace
    what x_0 looks like downsampled by the input itself (x_0 + up(low - down(x_0))), with the downsampling
    used in training. A well-trained upsampler needs no help here, but a short-trained one drifts in
    overall colour (its x_0 at high noise is eps / sqrt(alpha_bar): tiny eps biases become colour shifts),
    and the cascade should never change the colours of the image it enlarges."""
    import torch.nn.functional as F

    def fix(x0: torch.Tensor) -> torch.Tensor:
        down = F.interpolate(x0, size=low.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
        return x0 + F.interpolate(low - down, size=(size, size), mode="bicubic", align_corners=False)

    return fix


def _keep_known(inputs: dict):
    """denoised_fn that pins the x_0 prediction to the known pixels (official inpainting notebook)."""
    image, keep = inputs["inpaint_image"], inputs["inpaint_mask"]
    return lambda x0: x0 * (1 - keep) + image * keep


def _repaint_projection(diffusion: Diffusion, image: torch.Tensor, keep: torch.Tensor, generator):
    """RePaint (Lugmayr et al. 2022): after each step, replace the known region by the image noised to
    the new step's level, so the generated region is forced to agree with it."""

    def project(x: torch.Tensor, i: int) -> torch.Tensor:
        if i == 0:
            known = image
        else:
            idx = torch.full((len(x),), i - 1, device=x.device, dtype=torch.long)
            noise = randn(x.shape, generator, x.device)
            known = diffusion.q_sample(image, idx, noise)
        return keep * known + (1 - keep) * x

    return project
