"""What the web page does, without the web page: generate, edit, sketch and upsample on one shared Pipeline.

Everything here is plain Python (no Gradio), so it is unit-tested directly; `glide.web.app` only lays out
widgets and forwards to these methods. Each long call runs as a `Job` on a worker thread that reports every
sampler step and can be cancelled between steps.
"""

from __future__ import annotations

import io
import math
import queue
import random
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .. import defaults, samplers
from ..errors import GlideError
from ..images import fit_box, fit_square, to_pil, to_rgb
from ..pipeline import Pipeline


@dataclass
class Limits:
    """What one request may ask for. The page's sliders use these bounds; the server enforces them again,
    because API clients can send anything."""

    max_upload_mb: float = 8.0
    max_pixels: int = defaults.MAX_IMAGE_PIXELS  # checked from the header, before any pixel is decoded
    max_images: int = 8
    max_steps: int = 250
    max_guidance: float = 30.0
    history: int = 10  # undo depth of the edit loop
    canvas: int = 256  # side of the painting canvas, in screen pixels of the image


class Cancelled(Exception):
    """Raised inside the sampler when the user pressed Stop."""


@dataclass
class Step:
    """One progress report: sampling pass `stage` (0 = first) is at step `done` of `total`."""

    stage: int
    done: int
    total: int
    preview: torch.Tensor | None = None  # the current x_0 estimate, [B, 3, S, S] in [-1, 1]


class Job:
    """Runs `work(callback)` on a worker thread. Iterate `steps()` for progress; `result()` afterwards.

    `cancel()` (or closing the `steps()` iterator early) makes the sampler stop at its next step; the worker
    is then joined, so a concurrency limit of one really means one job computing at a time.
    """

    def __init__(self, work: Callable[[Callable], object], previews: bool = False):
        self._previews = previews  # copy each step's x_0 estimate off the device for live previews
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._result: object = None
        self._error: BaseException | None = None
        self._stage, self._last_i, self._total = -1, None, 0
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _callback(self, i: int, x: torch.Tensor, out) -> None:
        if self._stop.is_set():
            raise Cancelled()
        if self._last_i is None or i >= self._last_i:  # i counts down; going up means a new sampling pass
            self._stage += 1
            self._total = i + 1
        self._last_i = i
        preview = out.pred_xstart.detach().float().cpu() if self._previews else None
        self._events.put(Step(self._stage, self._total - i, self._total, preview))

    def _run(self, work) -> None:
        try:
            self._result = work(self._callback)
        except BaseException as e:  # handed to the caller's thread in result()
            self._error = e
        finally:
            self._events.put(None)

    def steps(self) -> Iterator[Step]:
        try:
            while (event := self._events.get()) is not None:
                yield event
        finally:
            if self.running:  # the reader went away before the end
                self.cancel()

    def cancel(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def result(self):
        self._thread.join()
        if isinstance(self._error, Cancelled):
            raise GlideError("cancelled")
        if self._error is not None:
            raise self._error
        return self._result


def read_upload(data: bytes | None, limits: Limits) -> Image.Image:
    """Bytes from the browser -> an RGB image, or a GlideError saying what is wrong with the upload.
    Size and pixel count are checked before decoding (Pillow's decompression-bomb guard stays on too)."""
    if not data:
        raise GlideError("the upload is empty")
    mb = len(data) / 2**20
    if mb > limits.max_upload_mb:
        raise GlideError(f"the upload is {mb:.1f} MB; the limit is {limits.max_upload_mb:g} MB")
    try:
        im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError):
        raise GlideError("the upload is not an image (PNG, JPEG, WebP, GIF, BMP ...)") from None
    except Image.DecompressionBombError:
        raise GlideError("the image has too many pixels") from None
    w, h = im.size
    if w * h > limits.max_pixels:
        raise GlideError(f"the image is {w}x{h} pixels; the limit is {limits.max_pixels / 1e6:g} megapixels")
    try:
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise GlideError(f"the image cannot be decoded: {e}") from None
    return to_rgb(im)


def canvas_image(im: Image.Image, side: int) -> Image.Image:
    """The square shown on the painting canvas: small images are enlarged with hard pixel edges, so that
    the mask painted on it maps exactly onto the image's own pixels."""
    im = fit_square(to_rgb(im), min(im.size)) if im.size[0] != im.size[1] else to_rgb(im)
    if im.size[0] == side:
        return im
    return im.resize((side, side), Image.NEAREST if im.size[0] < side else Image.LANCZOS)


def edit_source(current: Image.Image | None, background: Image.Image | None, side: int) -> Image.Image | None:
    """The image an edit applies to. Normally the one the page put on the canvas (`current`, kept at its
    own resolution); but a picture dropped straight onto the canvas replaces the canvas background, and
    then that picture is the one to edit."""
    if background is None:
        return current
    shown = np.asarray(to_rgb(background))
    if current is not None and np.array_equal(shown, np.asarray(canvas_image(current, side))):
        return current
    return canvas_image(to_rgb(background), min(min(background.size), 2 * side))


def painted_mask(layers: list, size: int) -> np.ndarray:
    """The brush strokes of an image-editor value (RGBA layers; painted = opaque) -> bool [size, size],
    True where the user asks to repaint."""
    painted = None
    for layer in layers or []:
        if layer is None:
            continue
        if not isinstance(layer, Image.Image):
            layer = Image.fromarray(np.asarray(layer))
        layer = layer.crop(fit_box(*layer.size))  # the same center square as the image it was painted on
        a = np.asarray(layer.convert("RGBA"))[..., 3] > 0
        painted = a if painted is None else painted | a
    if painted is None or not painted.any():
        raise GlideError("paint over the region to change first")
    # Down to the image's own pixels: a pixel is repainted if any brush touched it.
    m = Image.fromarray(painted.astype(np.uint8) * 255).resize((size, size), Image.BOX)
    return np.asarray(m) > 0


def sketch_source(composite: Image.Image | None, layers: list | None, current: Image.Image | None,
                  size: int) -> Image.Image | None:
    """The image a Sketch job starts from: the canvas (`composite`: its background with the strokes drawn
    on it) at the model's resolution `size`. Without strokes it is the exact image the page put on the
    canvas (`current`), so that nothing is lost to resizing the enlarged copy back down."""
    drawn = any(layer is not None and np.asarray(layer.convert("RGBA") if isinstance(layer, Image.Image)
                                                 else layer)[..., 3].any() for layer in layers or [])
    if not drawn and current is not None:
        return current
    if composite is None:
        return current
    im = to_rgb(composite)
    # Box filter: each model pixel is the mean of the screen pixels it covers, strokes included.
    return im.crop(fit_box(*im.size)).resize((size, size), Image.BOX)


class Studio:
    """The shared models and the actions of the page."""

    def __init__(self, pipe: Pipeline, limits: Limits | None = None, model: str = "bundled:base",
                 prompts: Sequence[str] = ()):
        self.pipe = pipe
        self.limits = limits or Limits()
        self.model = model  # how an exported scene script names the base model
        self.prompts = list(prompts)  # example captions the page offers (a model folder's prompts.txt)
        self._running: dict[str, Job] = {}  # per browser session, for its Stop button
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The base model's image side, in pixels."""
        return self.pipe.cfg.unet.image_size

    def guidance_interval(self, action: str) -> str:
        """Where classifier-free guidance runs for `action` ("generate" or "edit"), as a scene script records it:
        the pipeline's own setting, so that an exported script replays the same under later defaults."""
        pipe = self.pipe
        return defaults.interval_text(pipe.inpaint_guidance_interval if action == "edit" else pipe.guidance_interval)

    @property
    def can_upsample(self) -> bool:
        return self.pipe.upsampler is not None

    @property
    def can_clip_guide(self) -> bool:
        return self.pipe.clip is not None

    # -- validation --------------------------------------------------------------------------------
    def _int(self, value, name: str, lo: int, hi: int) -> int:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise GlideError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(v) or v != int(v) or not lo <= v <= hi:
            raise GlideError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
        return int(v)

    def _scale(self, value, name: str) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise GlideError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(v) or not 0 <= v <= self.limits.max_guidance:
            raise GlideError(f"{name} must be from 0 to {self.limits.max_guidance:g}, got {value!r}")
        return v

    def _seed(self, seed) -> int:
        if seed is None or seed == "" or (isinstance(seed, (int, float)) and seed < 0):
            return random.randrange(2**31)  # a fresh seed, reported back so the user can repeat it
        return self._int(seed, "seed", 0, 2**63 - 1)

    def _sampler(self, sampler: str) -> str:
        return samplers.get(sampler).name

    def _settings(self, num_images, steps, guidance_scale, clip_guidance_scale, sampler, seed) -> tuple:
        """The sampling settings every action shares, checked: (n, steps, scale, clip_scale, sampler, seed)."""
        n = self._int(num_images, "number of images", 1, self.limits.max_images)
        steps = self._int(steps, "steps", 1, self.limits.max_steps)
        scale = self._scale(guidance_scale, "guidance scale")
        clip_scale = self._scale(clip_guidance_scale, "CLIP guidance scale")
        sampler = self._sampler(sampler)
        seed = self._seed(seed)
        self._check_clip(clip_scale, sampler)
        return n, steps, scale, clip_scale, sampler, seed

    def _check_clip(self, clip_scale: float, sampler: str) -> None:
        if clip_scale and not self.can_clip_guide:
            raise GlideError("CLIP guidance needs a noised CLIP model (glide serve --clip-model DIR)")
        samplers.check(sampler, clip_guided=bool(clip_scale))

    @staticmethod
    def _prompt(prompt) -> str:
        if not isinstance(prompt, str):
            raise GlideError("the prompt must be text")
        return prompt.strip()

    # -- jobs --------------------------------------------------------------------------------------
    def start(self, session: str | None, work: Callable[[Callable], object], previews: bool = False) -> Job:
        job = Job(work, previews)
        if session:
            with self._lock:
                self._running[session] = job
        return job

    def finish(self, session: str | None, job: Job) -> None:
        with self._lock:
            if session and self._running.get(session) is job:
                del self._running[session]

    def cancel(self, session: str | None) -> bool:
        """Stop the running job of a browser session; True if there was one."""
        with self._lock:
            job = self._running.pop(session, None) if session else None
        if job is None:
            return False
        job.cancel()
        return True

    # -- the actions -------------------------------------------------------------------------
    def generate(self, prompt, *, num_images=4, guidance_scale=defaults.GUIDANCE, steps=defaults.STEPS,
                 sampler=defaults.SAMPLER, seed=None, clip_guidance_scale=0.0, upsample=False,
                 session: str | None = None):
        """Returns (job, seed): the job's result is a list of images (64 px, or 256 px with `upsample`)."""
        prompt = self._prompt(prompt)
        n, steps, scale, clip_scale, sampler, seed = self._settings(num_images, steps, guidance_scale,
                                                                    clip_guidance_scale, sampler, seed)
        if upsample and not self.can_upsample:
            raise GlideError("upsampling needs an upsampler model (glide serve --upsampler DIR)")

        def work(callback):
            return self.pipe(prompt, n, guidance_scale=scale, steps=steps, sampler=sampler, seed=seed,
                             clip_guidance_scale=clip_scale, upsample=bool(upsample), progress=False,
                             callback=callback, batch_size=self.limits.max_images)

        return self.start(session, work, previews=True), seed

    def edit(self, image: Image.Image | None, repaint: np.ndarray | None, prompt, *, num_images=1,
             guidance_scale=defaults.INPAINT_GUIDANCE, steps=defaults.STEPS, sampler=defaults.SAMPLER, seed=None,
             session: str | None = None):
        """Repaint the True region of `repaint` (same size as `image`). Returns (job, seed); the job's
        result is a list of images at the model's resolution."""
        if image is None:
            raise GlideError("choose an image to edit first (upload one, or send a generated one)")
        if repaint is None or not repaint.any():
            raise GlideError("paint over the region to change first")
        if repaint.all():
            raise GlideError("the whole image is painted; leave some of it to keep (or use Generate)")
        prompt = self._prompt(prompt)
        n = self._int(num_images, "number of images", 1, self.limits.max_images)
        steps = self._int(steps, "steps", 1, self.limits.max_steps)
        scale = self._scale(guidance_scale, "guidance scale")
        sampler = self._sampler(sampler)
        seed = self._seed(seed)

        def work(callback):
            return self.pipe.inpaint(image, repaint, prompt, n, guidance_scale=scale, steps=steps, sampler=sampler,
                                     seed=seed, progress=False, callback=callback, batch_size=self.limits.max_images)

        return self.start(session, work), seed

    def sketch(self, image: Image.Image | None, prompt, *, strength=defaults.SKETCH_STRENGTH, num_images=2,
               guidance_scale=defaults.GUIDANCE, steps=defaults.STEPS, sampler=defaults.SAMPLER, seed=None,
               clip_guidance_scale=0.0, session: str | None = None):
        """SDEdit: turn a drawing (or any image) into what `prompt` describes, moving the further from it the
        higher `strength` (0: the image itself, 1: ignore it). Returns (job, seed); the job's result is a
        list of images at the model's resolution."""
        if image is None:
            raise GlideError("draw something first (on a blank canvas or an uploaded image)")
        prompt = self._prompt(prompt)
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise GlideError(f"strength must be a number, got {strength!r}") from None
        if not math.isfinite(strength) or not 0 <= strength <= 1:
            raise GlideError(f"strength must be from 0 to 1, got {strength!r}")
        n, steps, scale, clip_scale, sampler, seed = self._settings(num_images, steps, guidance_scale,
                                                                    clip_guidance_scale, sampler, seed)

        def work(callback):
            return self.pipe.sdedit(image, prompt, strength, num_images=n, guidance_scale=scale, steps=steps,
                                    sampler=sampler, seed=seed, clip_guidance_scale=clip_scale, progress=False,
                                    callback=callback, batch_size=self.limits.max_images)

        return self.start(session, work, previews=True), seed

    def upsample(self, image: Image.Image | None, prompt, *, steps=defaults.UPSAMPLE_STEPS, seed=None,
                 session: str | None = None):
        """64 -> 256 px. Returns (job, seed); the job's result is a one-image list."""
        if not self.can_upsample:
            raise GlideError("this server has no upsampler model (glide serve --upsampler DIR)")
        if image is None:
            raise GlideError("choose an image to upsample first")
        prompt = self._prompt(prompt)
        seed = self._seed(seed)

        def work(callback):
            return self.pipe.upsample([image], prompt, steps=steps, seed=seed, progress=False, callback=callback)

        return self.start(session, work), seed


def preview_images(x: torch.Tensor) -> list[Image.Image]:
    """The sampler's current x_0 estimate as images (clipped), for live previews."""
    return to_pil(x.clamp(-1, 1))
