"""Scene scripts: build a picture by a written-down list of steps, and replay it bit for bit.

A scene is a TOML file. Its first step makes the starting image (`generate` from a caption, or `image` from a
file); each later step changes it (`inpaint` a box or mask, `sdedit` it towards a caption, `upsample` it to
256 px, last). `glide compose SCENE.toml --out DIR` saves every stage (DIR/00-generate.png, 01-inpaint.png,
...) and DIR/scene.toml, the script with every default filled in and its inputs copied beside it, which
replays to the same bytes with the same models on the same kind of machine.

    seed = 0                                  # each step's seed derives from it and the step's index
    [[step]]
    action = "generate"
    caption = "grinning face, twemoji style"
    [[step]]
    action = "inpaint"
    box = [16, 36, 48, 56]                    # x0, y0, x1, y1 in pixels of the current image
    caption = "smiling face with open mouth, twemoji style"
    n = 4                                     # optional: make 4 candidates in one batch, keep the third
    pick = 2
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import defaults
from .errors import GlideError
from .files import copy_atomic, write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ACTIONS = ("generate", "image", "inpaint", "sdedit", "upsample")
STARTS = ("generate", "image")
# The keys each action accepts (besides `action`); anything else is a typo worth reporting.
KEYS = {
    "generate": {"caption", "seed", "sampler", "steps", "guidance", "guidance_interval", "n", "pick"},
    "image": {"path"},
    "inpaint": {"caption", "seed", "sampler", "steps", "guidance", "guidance_interval", "box", "mask", "n", "pick"},
    "sdedit": {"caption", "seed", "sampler", "steps", "guidance", "guidance_interval", "strength", "box", "mask", "n",
               "pick"},
    "upsample": {"caption", "seed", "sampler", "steps", "temperature"},
}
SCRIPT_NAME = "scene.toml"


@dataclass
class Step:
    """One step; None = not given (the resolved script fills in every field its action uses)."""

    action: str
    caption: str | None = None
    seed: int | None = None
    sampler: str | None = None
    steps: int | str | None = None
    guidance: float | None = None
    guidance_interval: str | None = None  # "LOW,HIGH" or "all" (defaults.parse_interval); None: the model's default
    strength: float | None = None
    temperature: float | None = None
    n: int | None = None  # make n candidates in one batch (candidate k from seed + k) ...
    pick: int | None = None  # ... and keep candidate `pick`: how the web page's gallery works
    box: list[int] | None = None
    mask: str | None = None  # a mask image (WHITE = repaint), relative to the script's folder
    path: str | None = None  # the `image` step's file, relative to the script's folder

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Scene:
    seed: int = 0
    model: str = "bundled:base"
    upsampler: str = "bundled:upsampler"
    steps: list[Step] = field(default_factory=list)
    folder: Path = Path(".")  # where relative paths (images, masks) are found

    def as_dict(self) -> dict:
        d: dict = {"seed": self.seed, "model": self.model}
        if any(s.action == "upsample" for s in self.steps):
            d["upsampler"] = self.upsampler
        d["step"] = [s.as_dict() for s in self.steps]
        return d


def derive_seed(seed: int, index: int) -> int:
    """Step `index`'s default seed: a hash of the scene's seed and the index, so that neighbouring steps (and
    neighbouring scene seeds) do not share noise."""
    digest = hashlib.sha256(f"glide-compose:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


# -- reading -------------------------------------------------------------------------------------------
def _where(i: int, action: str | None = None) -> str:
    return f"step {i}" + (f" ({action})" if action else "")


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise GlideError(f"{what} must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def _number(value, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise GlideError(f"{what} must be a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def parse_scene(data: dict, folder: Path = Path(".")) -> Scene:
    """A parsed TOML table -> a Scene, with every default filled in, or a GlideError naming the problem."""
    from .pipeline import parse_steps

    unknown = set(data) - {"seed", "model", "upsampler", "step"}
    if unknown:
        raise GlideError(f"unknown top-level key {sorted(unknown)[0]!r}; a scene has seed, model, upsampler and "
                         "[[step]] tables")
    scene = Scene(folder=folder)
    scene.seed = _int(data.get("seed", 0), "seed", 0, 2**63 - 1)
    for key in ("model", "upsampler"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise GlideError(f"{key} must be a model folder or bundled:NAME, got {data[key]!r}")
            setattr(scene, key, data[key])
    raw = data.get("step", [])
    if not isinstance(raw, list) or not raw:
        raise GlideError("the scene has no steps: add [[step]] tables, the first with action = \"generate\" "
                         "or \"image\"")
    upsampled_at = None
    for i, table in enumerate(raw):
        if not isinstance(table, dict):
            raise GlideError(f"{_where(i)} must be a table ([[step]])")
        action = table.get("action")
        if action not in ACTIONS:
            raise GlideError(f"{_where(i)}: unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
        where = _where(i, action)
        extra = set(table) - KEYS[action] - {"action"}
        if extra:
            raise GlideError(f"{where}: unknown key {sorted(extra)[0]!r}; it takes {', '.join(sorted(KEYS[action]))}")
        if i == 0 and action not in STARTS:
            raise GlideError(f"{where}: the first step must make the starting image (generate or image)")
        if i > 0 and action in STARTS:
            raise GlideError(f"{where}: only the first step can start the scene; later steps change the image")
        if upsampled_at is not None:
            raise GlideError(f"{where}: step {upsampled_at} already upsampled to 256 px; upsample must be the last "
                             "step (the other steps work at the base model's 64 px)")
        step = Step(action)
        if action == "image":
            if not isinstance(table.get("path"), str):
                raise GlideError(f"{where}: give the starting image as path = \"FILE\"")
            step.path = table["path"]
            scene.steps.append(step)
            continue
        caption = table.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise GlideError(f"{where}: missing caption (caption = \"what the image should show\")")
        step.caption = caption
        step.seed = _int(table["seed"], f"{where}: seed", 0, 2**63 - 1) if "seed" in table else derive_seed(scene.seed, i)
        if action == "upsample":
            upsampled_at = i
            step.sampler = table.get("sampler", defaults.UPSAMPLE_SAMPLER)
            if step.sampler not in ("ddpm", "ddim"):
                raise GlideError(f"{where}: the upsampler samples with ddpm or ddim, got {step.sampler!r}")
            step.temperature = _number(table.get("temperature", defaults.UPSAMPLE_TEMPERATURE),
                                       f"{where}: temperature", 0, 2)
            steps = table.get("steps", defaults.UPSAMPLE_STEPS)
        else:
            step.sampler = table.get("sampler", defaults.SAMPLER)
            from .samplers import NAMES

            if step.sampler not in NAMES:
                raise GlideError(f"{where}: unknown sampler {step.sampler!r}; choose one of {', '.join(NAMES)}")
            guidance = defaults.INPAINT_GUIDANCE if action == "inpaint" else defaults.GUIDANCE
            step.guidance = _number(table.get("guidance", guidance), f"{where}: guidance", 0, 100)
            if "guidance_interval" in table:
                try:
                    text = table["guidance_interval"]
                    step.guidance_interval = defaults.interval_text(defaults.parse_interval(str(text)))
                except ValueError as e:
                    raise GlideError(f"{where}: guidance_interval: {e}") from None
            step.n = _int(table.get("n", 1), f"{where}: n", 1, 64)
            step.pick = _int(table.get("pick", 0), f"{where}: pick", 0, step.n - 1)
            steps = table.get("steps", defaults.STEPS)
        if isinstance(steps, bool) or not isinstance(steps, (int, str)):
            raise GlideError(f"{where}: steps must be a number or a respacing such as \"fast27\", got {steps!r}")
        try:
            parse_steps(steps)
        except GlideError as e:
            raise GlideError(f"{where}: {e}") from None
        step.steps = steps
        if action == "sdedit":
            step.strength = _number(table.get("strength", defaults.SKETCH_STRENGTH), f"{where}: strength", 0, 1)
        if action in ("inpaint", "sdedit"):
            if "box" in table and "mask" in table:
                raise GlideError(f"{where}: give a box or a mask, not both")
            if "box" in table:
                box = table["box"]
                if not isinstance(box, list) or len(box) != 4 or not all(
                        isinstance(v, int) and not isinstance(v, bool) for v in box):
                    raise GlideError(f"{where}: box must be [x0, y0, x1, y1] in pixels, got {box!r}")
                step.box = list(box)
            elif "mask" in table:
                if not isinstance(table["mask"], str):
                    raise GlideError(f"{where}: mask must be an image file name, got {table['mask']!r}")
                step.mask = table["mask"]
            elif action == "inpaint":
                raise GlideError(f"{where}: say what to repaint: box = [x0, y0, x1, y1] or mask = \"FILE\"")
        scene.steps.append(step)
    return scene


def load_scene(path: str | os.PathLike) -> Scene:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GlideError(f"scene not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise GlideError(f"cannot read scene {path}: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GlideError(f"{path} is not valid TOML ({e})") from None
    return parse_scene(data, path.parent)


# -- writing -------------------------------------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's string escapes are valid TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dump_scene(scene: Scene) -> str:
    d = scene.as_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if k != "step"]
    for step in d["step"]:
        lines += ["", "[[step]]"] + [f"{k} = {_toml_value(v)}" for k, v in step.items()]
    text = "\n".join(lines) + "\n"
    assert tomllib.loads(text) == d, "the scene writer lost something"  # cheap, and keeps replays honest
    return text


# -- running -------------------------------------------------------------------------------------------
def check_scene(scene: Scene, size: int, has_upsampler: bool) -> None:
    """What can only be checked with the models known: boxes and masks against the image size, input files.
    Runs before any sampling, so a bad script costs no compute."""
    from .editing import check_image_file, mask_to_repaint, open_image

    for i, step in enumerate(scene.steps):
        where = _where(i, step.action)
        if step.action == "image":
            check_image_file(scene.folder / step.path, f"{where}: image")
        if step.action == "upsample" and not has_upsampler:
            raise GlideError(f"{where}: no upsampler model")
        if step.box is not None:
            x0, y0, x1, y1 = step.box
            if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
                raise GlideError(f"{where}: box {step.box} is not inside the {size}x{size} image "
                                 "([x0, y0, x1, y1] with x0 < x1, y0 < y1)")
        if step.mask is not None:
            mask = open_image(scene.folder / step.mask, f"{where}: mask")
            if mask.size != (size, size):
                raise GlideError(f"{where}: mask {step.mask} is {mask.width}x{mask.height}; the image is "
                                 f"{size}x{size}")
            if not mask_to_repaint(mask).any():
                raise GlideError(f"{where}: mask {step.mask} repaints nothing (white marks the region to change)")


def stage_name(i: int, step: Step) -> str:
    return f"{i:02d}-{step.action}.png"


def run_scene(scene: Scene, pipe, out: str | os.PathLike, progress: bool = True) -> list[Path]:
    """Run every step on `pipe` (a Pipeline with the scene's models), saving each stage into `out` and the
    resolved script as out/scene.toml (input files copied beside it, so the folder replays on its own).
    Returns the stage files."""
    from .images import save_atomic

    size = pipe.cfg.unet.image_size
    check_scene(scene, size, pipe.upsampler is not None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The resolved script refers to copies of its inputs inside `out`.
    resolved = Scene(scene.seed, scene.model, scene.upsampler, [Step(**asdict(s)) for s in scene.steps], out)
    for i, (src, dst) in enumerate(zip(scene.steps, resolved.steps)):
        for key, suffix in (("path", "input"), ("mask", "mask")):
            name = getattr(src, key)
            if name is not None:
                copy = f"{i:02d}-{src.action}-{suffix}{Path(name).suffix.lower() or '.png'}"
                copy_atomic(scene.folder / name, out / copy)
                setattr(dst, key, copy)
        if src.action in ("generate", "inpaint", "sdedit") and src.guidance_interval is None:
            # Record the model's default, so that the folder replays the same under other defaults.
            default = pipe.inpaint_guidance_interval if src.action == "inpaint" else pipe.guidance_interval
            dst.guidance_interval = defaults.interval_text(default)
    write_text_atomic(out / SCRIPT_NAME, dump_scene(resolved))

    image = None
    files = []
    kept = pipe.guidance_interval, pipe.inpaint_guidance_interval
    try:
        for i, (step, done) in enumerate(zip(scene.steps, resolved.steps)):
            if done.guidance_interval is not None:
                interval = defaults.parse_interval(done.guidance_interval)
                pipe.guidance_interval = pipe.inpaint_guidance_interval = interval
            image = _run_step(pipe, scene, step, image, size, progress)
            files.append(save_atomic(image, out / stage_name(i, step)))
            if progress:
                print(f"{files[-1]}", file=sys.stderr)
    finally:
        pipe.guidance_interval, pipe.inpaint_guidance_interval = kept
    return files


def _run_step(pipe, scene: Scene, step: Step, image, size: int, progress: bool):
    """One step's result: the image after it."""
    import numpy as np

    from .editing import box_to_repaint, mask_to_repaint, open_image
    from .images import fit_square, to_rgb

    common = dict(steps=step.steps, sampler=step.sampler, seed=step.seed, progress=progress)
    if step.action == "image":
        im = to_rgb(open_image(scene.folder / step.path))
        image = im if im.size == (size, size) else fit_square(im, size)
    elif step.action == "generate":
        image = pipe(step.caption, step.n, guidance_scale=step.guidance, **common)[step.pick]
    else:
        repaint = None
        if step.box is not None:
            repaint = box_to_repaint(size, size, tuple(step.box))
        elif step.mask is not None:
            repaint = mask_to_repaint(open_image(scene.folder / step.mask, "mask"))
        if step.action == "inpaint":
            image = pipe.inpaint(image, repaint, step.caption, step.n, guidance_scale=step.guidance,
                                 **common)[step.pick]
        elif step.action == "sdedit":
            image = pipe.sdedit(image, step.caption, step.strength, mask=repaint, num_images=step.n,
                                guidance_scale=step.guidance, **common)[step.pick]
        else:
            image = pipe.upsample([image], step.caption, temperature=step.temperature, **common)[0]
    assert image is not None and np.asarray(image).shape[2] == 3
    return image


def compose(path: str | os.PathLike, out: str | os.PathLike, *, model: str | None = None,
            upsampler: str | None = None, device=None, dtype=None, progress: bool = True) -> list[Path]:
    """`glide compose`: read the scene at `path`, load its models (`model`, `upsampler` override the
    script's), check everything, then run it into the folder `out`."""
    from .pipeline import Pipeline

    scene = load_scene(path)
    if model is not None:
        scene.model = model
    if upsampler is not None:
        scene.upsampler = upsampler
    needs_up = any(s.action == "upsample" for s in scene.steps)
    pipe = Pipeline.from_pretrained(scene.model, device=device, dtype=dtype,
                                    upsampler=scene.upsampler if needs_up else None)
    if pipe.cfg.super_res:
        raise GlideError(f"{scene.model} is an upsampler; a scene needs a base (64 px) model")
    return run_scene(scene, pipe, out, progress)


__all__ = ["Scene", "Step", "compose", "derive_seed", "dump_scene", "load_scene", "parse_scene", "run_scene"]
