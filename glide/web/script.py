"""The Edit tab's history as a scene script for `glide compose` (the page's "Export script" button).

The page records how its current image came to be: where it started (a generated image it can describe by
its settings, or a picture it can only include as a file) and every edit whose result was taken as the next
input. `EditScript.to_zip` writes that as scene.toml plus its image files; `glide compose scene.toml` in the
unpacked folder makes the same images again.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..compose import SCRIPT_NAME, dump_scene, parse_scene
from ..images import fit_square, to_rgb


def _batch(settings: dict, index: int) -> dict:
    # The page samples all its images in one batch, and float sums can depend on the batch size: replay the
    # same batch (n, seed) and keep the same image (pick), for the same bytes. The guidance interval the page
    # used is recorded, so that a later version's default does not change the replay.
    batch = dict(seed=settings["seed"], n=settings["n"], pick=index, sampler=settings["sampler"],
                 steps=settings["steps"], guidance=settings["guidance"])
    if "guidance_interval" in settings:
        batch["guidance_interval"] = settings["guidance_interval"]
    return batch


@dataclass(frozen=True)
class EditScript:
    """Steps as `glide compose` reads them, and the files they name. Immutable: each change returns a new
    script, so the page's undo history can hold them as they were."""

    size: int  # the base model's resolution: compose works on images of this size
    model: str = "bundled:base"
    steps: tuple[dict, ...] = ()
    files: tuple[tuple[str, Image.Image], ...] = ()

    @classmethod
    def from_generated(cls, settings: dict, index: int, image: Image.Image, size: int, model: str) -> "EditScript":
        """Image `index` of a Generate run with `settings` (prompt, n, guidance, steps, sampler, seed,
        clip_scale, upsample, and optionally guidance_interval as `Studio.guidance_interval` gives it). Runs that
        `glide compose` cannot repeat (CLIP guidance, 256 px) start from the image itself."""
        if settings.get("clip_scale") or settings.get("upsample"):
            return cls.from_image(image, size, model)
        step = dict(action="generate", caption=settings["prompt"], **_batch(settings, index))
        return cls(size, model, (step,))

    @classmethod
    def from_image(cls, image: Image.Image, size: int, model: str) -> "EditScript":
        """A picture the script can only include as a file, at the model's resolution (fitted as an edit
        fits it)."""
        image = to_rgb(image)
        if image.size != (size, size):
            image = fit_square(image, size)
        return cls(size, model, ({"action": "image", "path": "00-start.png"},), (("00-start.png", image),))

    def inpainted(self, settings: dict, repaint: np.ndarray, index: int) -> "EditScript":
        """Result `index` of an Edit with `settings` (prompt, n, guidance, steps, sampler, seed, optionally
        guidance_interval) and the painted mask `repaint` (True = repaint, at the edited image's resolution)
        taken as the next input."""
        name = f"{len(self.steps):02d}-mask.png"
        mask = Image.fromarray(repaint.astype(np.uint8) * 255)
        if mask.size != (self.size, self.size):  # as the edit fitted it to the model
            mask = fit_square(mask, self.size, Image.NEAREST)
        step = dict(action="inpaint", caption=settings["prompt"], mask=name, **_batch(settings, index))
        return EditScript(self.size, self.model, self.steps + (step,), self.files + ((name, mask),))

    def to_toml(self) -> str:
        scene = parse_scene({"seed": 0, "model": self.model, "step": [dict(s) for s in self.steps]})
        header = "# Exported from the glide web page's Edit tab. Replay: glide compose scene.toml --out DIR\n"
        return header + dump_scene(scene)

    def to_zip(self) -> bytes:
        """scene.toml and its images, as a zip archive."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(SCRIPT_NAME, self.to_toml())
            for name, image in self.files:
                png = io.BytesIO()
                image.save(png, "PNG")
                z.writestr(name, png.getvalue())
        return buf.getvalue()
