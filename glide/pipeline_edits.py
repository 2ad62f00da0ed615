"""The editing half of `Pipeline`: `inpaint` (repaint a region) and `sdedit` (start from a noised image).

A mixin so that `Pipeline` keeps one public face (`pipe.inpaint(...)`, `pipe.sdedit(...)`) while each module
stays one idea: the editing inputs are read by glide.editing.prepare_edit, the per-step maths are the hooks of
glide.hooks, and sampling itself is `Pipeline.sample`.
"""

from __future__ import annotations

import torch
from PIL import Image

from . import defaults, editing, hooks
from .errors import GlideError
from .images import from_pil, to_pil
from .samplers import Generator, randn
from .validation import finite


class EditingMixin:
    """`inpaint` and `sdedit`; mixed into glide.pipeline.Pipeline, whose sampling methods they call."""

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
        self._check(num_images, batch_size, steps, guidance_scale=guidance_scale, eta=eta,
                    upsample_temperature=upsample_temperature)
        if upsample and self.upsampler is None:
            raise GlideError("upsampling needs an upsampler model (--upsampler DIR)")
        edit = editing.prepare_edit(image, mask, self.cfg.unet.image_size, box=box)
        gens = self.generators(num_images, seed, generator)
        images: list[Image.Image] = []
        for start in range(0, num_images, batch_size):
            n = min(batch_size, num_images - start)
            generator = self._rows(gens, start, start + n)
            img, keep = edit.image.to(self.device).repeat(n, 1, 1, 1), edit.keep.to(self.device).repeat(n, 1, 1, 1)
            known = {"inpaint_image": img, "inpaint_mask": keep}
            if self.cfg.inpaint:
                x = self.sample([prompt] * n, guidance_scale=guidance_scale, steps=steps, sampler=sampler, eta=eta,
                                generator=generator, inputs=known, denoised_fn=hooks.keep_known(known), progress=progress,
                                callback=callback, guidance_interval=self.inpaint_guidance_interval)
            else:
                diffusion = self.diffusion(steps)
                x = self.sample([prompt] * n, guidance_scale=guidance_scale, steps=diffusion, sampler=sampler,
                                eta=eta, generator=generator, denoised_fn=hooks.keep_known(known), progress=progress,
                                project=hooks.repaint_projection(diffusion, img, keep, generator), callback=callback,
                                guidance_interval=self.inpaint_guidance_interval)
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
    # Same keywords as Pipeline.__call__ (less temperature, plus the image, strength and mask): the public
    # methods spell out their defaults, which all come from glide.defaults.
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
        strength = finite(strength, "strength")
        if not 0 <= strength <= 1:
            raise GlideError(f"strength must be between 0 and 1, got {strength}")
        sampler, steps = defaults.sampler_and_steps(bool(clip_guidance_scale), sampler, steps)
        self._check(num_images, batch_size, steps, guidance_scale=guidance_scale, eta=eta,
                    clip_guidance_scale=clip_guidance_scale, upsample_temperature=upsample_temperature)
        if upsample and self.upsampler is None:
            raise GlideError("upsampling needs an upsampler model (--upsampler DIR)")
        size = self.cfg.unet.image_size
        keep = None
        if mask is None:
            img = from_pil(editing.fit_square(editing.to_rgb(editing.open_image(image)), size))
        else:
            edit = editing.prepare_edit(image, mask, size)
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
                    kw["denoised_fn"] = hooks.keep_known(known)
                    if self.cfg.inpaint:
                        kw["inputs"] = known
                    else:
                        kw["project"] = hooks.repaint_projection(diffusion, x0, known["inpaint_mask"], g)
                x0 = self.sample([prompt] * n, guidance_scale=guidance_scale, steps=diffusion, sampler=sampler,
                                 eta=eta, generator=g, progress=progress, callback=callback, x=x, start=k - 1,
                                 cond_fn=self.clip_guidance([prompt] * n, clip_guidance_scale), **kw)
            if upsample:
                x0 = self._upsample(x0, [prompt] * n, upsample_steps, upsample_sampler, upsample_temperature, g,
                                    progress, callback=callback)
            images += to_pil(x0)
        return images
