"""What several commands share: the checks that run before any model is loaded, loading the pipeline,
and writing images that carry their settings (see `glide info`)."""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

from .. import __version__, defaults, samplers
from ..errors import GlideError
from .args import DTYPE_CHOICES, DTYPE_HELP, _interval, _positive_int, _seed


SAMPLER_NAMES = samplers.NAMES

# Where a PNG written by glide keeps its settings: a tEXt chunk holding ASCII JSON (see `glide info`).
PNG_KEY = "glide"


_NO_CONSISTENCY = "plain upsampling, as the official notebook (default: keep the 64 px image's low frequencies)"


def _text(s: str, what: str = "the prompt") -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 reach Python as lone surrogates
        raise GlideError(f"{what} is not valid UTF-8 text: {s.encode('utf-8', 'replace')!r}") from None
    return s


def _check_device(spec: str | None) -> None:
    if spec is None:
        return
    import torch

    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise GlideError(f"unknown --device {spec!r}: use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GlideError(f"--device {spec}: this machine has no CUDA device that torch can use")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GlideError(f"--device {spec}: there are only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise GlideError(f"--device {spec}: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise GlideError(f"--device {spec}: glide runs on cpu, cuda or mps")


def _writable_parent(path: Path) -> None:
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise GlideError(f"cannot write {path}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GlideError(f"cannot write {path}: {parent} is not writable")


def _check_out_image(out: str) -> Path:
    """The output image path: an image format PIL writes, not a folder, in a writable place."""
    from PIL import Image

    path = Path(out)
    if path.suffix and path.suffix.lower() not in Image.registered_extensions():
        raise GlideError(f"--out {out}: unknown image format {path.suffix!r} (use .png)")
    if path.is_dir():
        raise GlideError(f"--out {out} is a folder; give an image file name such as {path / 'samples.png'}")
    _writable_parent(path)
    return path


def _out_paths(out: Path, n: int) -> list[Path]:
    return [out.with_name(f"{out.stem}_{i:03d}{out.suffix or '.png'}") for i in range(n)]


def _pick_seed(seed: int | None) -> int:
    """The given seed, or a fresh one (printed with the result, so the images can be made again)."""
    return random.randrange(2**32) if seed is None else seed


def _pipeline(args, need_upsampler: bool = False, inpaint: bool = False):
    from ..pipeline import Pipeline, default_model

    model = args.model or default_model("base")
    upsampler = getattr(args, "upsampler", None)
    if need_upsampler and upsampler is None:
        upsampler = default_model("upsampler")
    clip = getattr(args, "clip_model", None)
    if clip is None and getattr(args, "clip_guidance_scale", 0):
        clip = default_model("clip")
    pipe = Pipeline.from_pretrained(model, device=args.device, dtype=args.dtype, upsampler=upsampler, clip=clip)
    pipe.low_res_consistency = not getattr(args, "no_consistency", False)
    _guidance_steps(pipe, args, inpaint)
    if pipe.cfg.super_res:
        raise GlideError(f"{model} is an upsampler; this command needs a base (64 px) model (--model)")
    return pipe


def _guidance_steps(pipe, args, inpaint: bool = False) -> None:
    """--guidance-interval and --guidance-reuse onto the pipeline (else the defaults of glide.defaults)."""
    if getattr(args, "guidance_interval", None) is not None:
        interval = args.guidance_interval or None
        if inpaint:
            pipe.inpaint_guidance_interval = interval
        else:
            pipe.guidance_interval = interval
    reuse = getattr(args, "guidance_reuse", None)
    if reuse and not (pipe.inpaint_guidance_interval if inpaint else pipe.guidance_interval):
        raise GlideError("--guidance-reuse acts outside a guidance interval, and this run guides every step; "
                         "give one with --guidance-interval LOW,HIGH")
    if reuse is not None:
        pipe.guidance_reuse = reuse
    if getattr(args, "distilled_guidance", None) is not None:
        pipe.distilled_guidance = args.distilled_guidance


def _png_text(meta: dict) -> dict[str, str]:
    return {PNG_KEY: json.dumps(meta, ensure_ascii=True), "Software": f"glide {__version__}"}


def _run_settings(pipe, upsample: bool, guided: bool = True, inpaint: bool = False) -> dict:
    """How the pipeline ran (compute precisions; with classifier-free guidance, its interval), for PNG settings
    and eval results."""
    out = {"dtype": pipe.precision.name}
    if upsample:
        out["upsample_dtype"] = pipe.precision_for(pipe.upsampler).name
    if guided:
        iv = pipe.inpaint_guidance_interval if inpaint else pipe.guidance_interval
        out["guidance_interval"] = defaults.interval_text(iv)
        if iv and pipe.guidance_reuse:
            out["guidance_reuse"] = True
        if pipe.cfg.distilled_guidance:  # one row per image (within the model's scales), or the classic two
            out["distilled_guidance"] = pipe.distilled_guidance
    return out


DISTILLED_HELP = ("with a guidance-distilled model (glide train with distill_scales), guide with one forward "
                  "pass per image and step, at scales within the model's distilled range; --no-distilled-guidance "
                  "runs classifier-free guidance's two (default: on)")


def _interval_option(s, inpaint: bool = False) -> None:
    """--guidance-interval, for the commands that take a classifier-free guidance scale."""
    default = (f"{defaults.interval_text(defaults.INPAINT_GUIDANCE_INTERVAL)} for v-prediction models such as the "
               "bundled base, all for eps models such as the official ones") if inpaint else "all"
    s.add_argument("--guidance-interval", type=_interval, default=None, metavar="LOW,HIGH",
                   help="guide only at the steps whose noise level sigma = sqrt((1-alpha_bar)/alpha_bar) lies in "
                        "(LOW, HIGH], elsewhere run the conditional model alone (one forward pass instead of two); "
                        f"'all' guides every step (default: {default})")
    s.add_argument("--guidance-reuse", action=argparse.BooleanOptionalAction, default=None,
                   help="outside the guidance interval, add the last guided step's difference instead of dropping "
                        "guidance: nearer to guidance at every step, at the same speed as the interval "
                        f"(default: {'on' if defaults.GUIDANCE_REUSE else 'off'})")
    s.add_argument("--distilled-guidance", action=argparse.BooleanOptionalAction, default=None,
                   help=DISTILLED_HELP)


def _save(images, out: Path, individual: bool, cols: int | None = None, metas: list[dict] | None = None,
          grid_meta: dict | None = None, picked_seed: int | None = None) -> None:
    """The grid (or the one image) at `out`, and with `individual` each image beside it; every PNG carries its
    settings (`metas`: one per image) for `glide info`."""
    from ..images import grid, save_atomic

    metas = metas or [{} for _ in images]
    if len(images) == 1:
        save_atomic(images[0], out, text=_png_text(metas[0]))
    else:
        save_atomic(grid(images, cols=cols), out, text=_png_text(grid_meta or {}))
        if individual:
            for im, p, m in zip(images, _out_paths(out, len(images)), metas):
                save_atomic(im, p, text=_png_text(m))
    print(f"wrote {out} ({len(images)} image{'s' * (len(images) != 1)})")
    if picked_seed is not None:
        print(f"seed {picked_seed} (picked at random; --seed {picked_seed} makes these images again)")


def _model_name(spec, role: str) -> str:
    return str(spec) if spec else f"bundled:{role}"


def _common_checks(args, prompts: list[str]) -> Path:
    """What every sampling command checks before it loads a model."""
    for p in prompts:
        _text(p)
    out = _check_out_image(args.out)
    _check_device(args.device)
    return out


def _sampler_and_steps(args) -> bool:
    """Fill in --sampler and --steps from glide.defaults (the CLIP-guided ones with --clip-guidance-scale), and
    refuse CLIP guidance with a sampler that cannot take it. Returns whether CLIP guidance is on."""
    guided = bool(args.clip_guidance_scale)
    args.sampler, args.steps = defaults.sampler_and_steps(guided, args.sampler, args.steps)
    args.steps = str(args.steps)
    samplers.check(args.sampler, guided)
    return guided


def _common(s, batch_default: int = defaults.BATCH_SIZE) -> None:
    s.add_argument("--seed", type=_seed, default=None,
                   help="image k starts from seed SEED+k, whatever the batch size (default: a random seed, printed)")
    s.add_argument("--batch-size", type=_positive_int, default=batch_default, help="images per forward batch")
    s.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    s.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help=DTYPE_HELP)
    s.add_argument("--no-individual", action="store_true", help="save only the grid")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _write_text(path: Path, text: str) -> None:
    from ..files import write_text_atomic

    write_text_atomic(path, text)
