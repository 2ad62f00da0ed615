"""The `glide` command line.

The module top imports only the standard library, glide.errors and glide.defaults: `glide --help` and
`glide --version` answer without loading torch. Each command imports what it needs. Every check of the
user's input (output path writable, device present, seed in range, finite scales) runs before any model is
loaded, so a mistake costs no sampling time and leaves nothing on disk.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import sys
import time
import warnings
from pathlib import Path

from . import __version__, defaults
from .errors import GlideError

SAMPLER_NAMES = defaults.SAMPLER_NAMES
# Where a PNG written by glide keeps its settings: a tEXt chunk holding ASCII JSON (see `glide info`).
PNG_KEY = "glide"


# -- argument types (each failure is one line and exit 2) ----------------------------------------------------
def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _finite(s: str) -> float:
    """A float that is neither NaN nor infinite (NaN guidance samples black images)."""
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def _non_negative(s: str) -> float:
    v = _finite(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}")
    return v


def _positive(s: str) -> float:
    v = _finite(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}")
    return v


def _unit(s: str) -> float:
    v = _finite(s)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {s!r}")
    return v


def _port(s: str) -> int:
    v = _positive_int(s)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {v}")
    return v


def _seed(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if not 0 <= v < 2**64:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**64 - 1, got {s}")
    return v


def _steps(s: str) -> str:
    """A step count ("20") or a respacing ("fast27", "ddim25", "10,10,10"), checked against 1000 steps."""
    s = s.strip()
    if s.lstrip("-").isdigit():
        if int(s) <= 0:
            raise argparse.ArgumentTypeError(f"steps must be a positive number, got {s}")
        if not 2 <= int(s) <= 1000:
            raise argparse.ArgumentTypeError(f"steps must be from 2 to 1000 (the models' diffusion steps), got {s}")
        return str(int(s))
    from .diffusion import space_timesteps  # a respacing spec: let the diffusion code judge it

    try:
        kept = space_timesteps(1000, s)
    except (GlideError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if len(kept) < 2:
        raise argparse.ArgumentTypeError(f"sampling needs at least 2 steps; {s!r} keeps {len(kept)}")
    return s


def _scales(s: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None
    if not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {s!r}")
    return vals


# -- checks that run before any model is loaded --------------------------------------------------------------
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


def _pipeline(args, need_upsampler: bool = False):
    from .pipeline import Pipeline, default_model

    model = args.model or default_model("base")
    upsampler = getattr(args, "upsampler", None)
    if need_upsampler and upsampler is None:
        upsampler = default_model("upsampler")
    clip = getattr(args, "clip_model", None)
    if clip is None and getattr(args, "clip_guidance_scale", 0):
        clip = default_model("clip")
    pipe = Pipeline.from_pretrained(model, device=args.device, dtype=args.dtype, upsampler=upsampler, clip=clip)
    pipe.low_res_consistency = not getattr(args, "no_consistency", False)
    if pipe.cfg.super_res:
        raise GlideError(f"{model} is an upsampler; this command needs a base (64 px) model (--model)")
    return pipe


def _png_text(meta: dict) -> dict[str, str]:
    return {PNG_KEY: json.dumps(meta, ensure_ascii=True), "Software": f"glide {__version__}"}


def _save(images, out: Path, individual: bool, cols: int | None = None, metas: list[dict] | None = None,
          grid_meta: dict | None = None, picked_seed: int | None = None) -> None:
    """The grid (or the one image) at `out`, and with `individual` each image beside it; every PNG carries its
    settings (`metas`: one per image) for `glide info`."""
    from .images import grid, save_atomic

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
    if guided and args.sampler not in ("ddpm", "ddim"):
        raise GlideError(f"CLIP guidance works with the ddpm and ddim samplers, not {args.sampler}")
    return guided


# -- commands ---------------------------------------------------------------------------------------------------
def cmd_sample(args) -> int:
    guided = _sampler_and_steps(args)
    out = _common_checks(args, args.prompt)
    seed = _pick_seed(args.seed)
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe(args.prompt, args.num_images, guidance_scale=args.guidance_scale, steps=args.steps,
                  sampler=args.sampler, eta=args.eta, temperature=args.temperature, seed=seed,
                  batch_size=args.batch_size, upsample=args.upsample, clip_guidance_scale=args.clip_guidance_scale,
                  progress=not args.quiet)
    common = dict(model=_model_name(args.model, "base"), sampler=args.sampler, steps=args.steps,
                  guidance_scale=args.guidance_scale, clip_guidance_scale=args.clip_guidance_scale,
                  temperature=args.temperature, eta=args.eta, upsample=args.upsample)
    metas = []
    for prompt in args.prompt:  # image j of each prompt started from seed + j
        for j in range(args.num_images):
            s = (seed + j) % 2**64
            repeat = ["glide", "sample", prompt, "-n", "1", "--seed", str(s), "--steps", args.steps,
                      "--sampler", args.sampler, "--guidance-scale", f"{args.guidance_scale:g}"]
            repeat += ["--model", str(args.model)] if args.model else []
            repeat += ["--clip-guidance-scale", f"{args.clip_guidance_scale:g}"] if guided else []
            repeat += ["--temperature", f"{args.temperature:g}"] if args.temperature != 1 else []
            repeat += ["--eta", f"{args.eta:g}"] if args.eta else []
            repeat += ["--upsample"] if args.upsample else []
            metas.append({"prompt": prompt, "seed": s, **common, "command": shlex.join(repeat)})
    grid_meta = {"prompt": args.prompt if len(args.prompt) > 1 else args.prompt[0], "seed": seed,
                 "seeds": f"image j of each prompt: seed {seed} + j", "num_images": args.num_images, **common}
    # Several prompts: one row each.
    _save(images, out, not args.no_individual, cols=args.num_images if len(args.prompt) > 1 else None,
          metas=metas, grid_meta=grid_meta, picked_seed=seed if args.seed is None else None)
    if len(images) > 1 and not args.no_individual:  # each image's caption beside it: a sample folder for glide rate
        for k, p in enumerate(_out_paths(out, len(images))):
            _write_text(p.with_suffix(".txt"), args.prompt[k // args.num_images] + "\n")
    return 0


def cmd_inpaint(args) -> int:
    from .editing import box_to_repaint, check_edit, mask_to_repaint, open_image, parse_box, to_rgb

    if (args.mask is None) == (args.box is None):
        raise GlideError("give exactly one of --mask MASK.png or --box x0,y0,x1,y1")
    box = parse_box(args.box) if args.box else None
    out = _common_checks(args, [args.prompt])
    original = to_rgb(open_image(args.image, "image"))
    repaint = box_to_repaint(*original.size, box) if box else mask_to_repaint(open_image(args.mask, "mask"))
    check_edit(original, repaint)
    seed = _pick_seed(args.seed)
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe.inpaint(original, repaint, args.prompt, args.num_images,
                          guidance_scale=args.guidance_scale, steps=args.steps, sampler=args.sampler, eta=args.eta,
                          seed=seed, batch_size=args.batch_size, upsample=args.upsample,
                          composite=args.composite, progress=not args.quiet)
    common = dict(image=str(args.image), mask=str(args.mask) if args.mask else None, box=args.box,
                  model=_model_name(args.model, "base"), sampler=args.sampler, steps=args.steps,
                  guidance_scale=args.guidance_scale, eta=args.eta, upsample=args.upsample)
    metas = [{"prompt": args.prompt, "seed": (seed + k) % 2**64, **common} for k in range(args.num_images)]
    _save(images, out, not args.no_individual, metas=metas, picked_seed=seed if args.seed is None else None,
          grid_meta={"prompt": args.prompt, "seed": seed, "seeds": f"image k: seed {seed} + k", **common})
    return 0


def cmd_sdedit(args) -> int:
    from .editing import check_image_file

    _sampler_and_steps(args)
    if not 0 <= args.strength <= 1:
        raise GlideError(f"--strength must be between 0 and 1, got {args.strength:g}")
    out = _common_checks(args, [args.prompt])
    check_image_file(args.image, "image")
    if args.mask:
        check_image_file(args.mask, "mask")
    seed = _pick_seed(args.seed)
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe.sdedit(args.image, args.prompt, args.strength, mask=args.mask, num_images=args.num_images,
                         guidance_scale=args.guidance_scale, steps=args.steps, sampler=args.sampler, eta=args.eta,
                         seed=seed, batch_size=args.batch_size, clip_guidance_scale=args.clip_guidance_scale,
                         upsample=args.upsample, progress=not args.quiet)
    common = dict(image=str(args.image), mask=str(args.mask) if args.mask else None, strength=args.strength,
                  model=_model_name(args.model, "base"), sampler=args.sampler, steps=args.steps,
                  guidance_scale=args.guidance_scale, clip_guidance_scale=args.clip_guidance_scale, eta=args.eta,
                  upsample=args.upsample)
    metas = [{"prompt": args.prompt, "seed": (seed + k) % 2**64, **common} for k in range(args.num_images)]
    _save(images, out, not args.no_individual, metas=metas, picked_seed=seed if args.seed is None else None,
          grid_meta={"prompt": args.prompt, "seed": seed, "seeds": f"image k: seed {seed} + k", **common})
    return 0


def cmd_compose(args) -> int:
    from .compose import compose

    compose(args.scene, args.out, model=args.model, upsampler=args.upsampler, device=args.device, dtype=args.dtype,
            progress=not args.quiet)
    return 0


def cmd_upsample(args) -> int:
    from .editing import check_image_file

    out = _common_checks(args, [args.prompt])
    for p in args.images:
        check_image_file(p, "image")
    seed = _pick_seed(args.seed)
    from .editing import open_image
    from .pipeline import Pipeline, default_device, default_model, load_model

    up = load_model(args.model or default_model("upsampler"), args.device or default_device())[0]
    if not up.cfg.super_res:
        raise GlideError(f"{args.model} is not an upsampler")
    pipe = Pipeline(up, args.device, args.dtype, upsampler=up)
    pipe.low_res_consistency = not args.no_consistency
    images = [open_image(p) for p in args.images]
    result = pipe.upsample(images, args.prompt, steps=args.steps, sampler=args.sampler, temperature=args.temperature,
                           seed=seed, batch_size=args.batch_size, progress=not args.quiet)
    common = dict(model=_model_name(args.model, "upsampler"), sampler=args.sampler, steps=args.steps,
                  temperature=args.temperature)
    metas = [{"prompt": args.prompt, "image": str(p), "seed": (seed + k) % 2**64, **common}
             for k, p in enumerate(args.images)]
    _save(result, out, not args.no_individual, metas=metas, picked_seed=seed if args.seed is None else None,
          grid_meta={"prompt": args.prompt, "seed": seed, "seeds": f"image k: seed {seed} + k", **common})
    return 0


def cmd_info(args) -> int:
    """Print the settings a glide PNG carries (what made it, and how to make it again)."""
    from PIL import Image, UnidentifiedImageError

    for n, path in enumerate(args.images):
        try:
            with Image.open(path) as im:
                im.load()  # reads the text chunks that follow the image data
                raw = getattr(im, "text", {}).get(PNG_KEY)
        except FileNotFoundError:
            raise GlideError(f"image not found: {path}") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise GlideError(f"cannot read {path}: {e}") from None
        if raw is None:
            raise GlideError(f"{path} carries no glide settings (only images written by glide sample, inpaint "
                             "and upsample do)")
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError:
            raise GlideError(f"{path}: its glide settings are not valid JSON") from None
        if len(args.images) > 1:
            print(f"{'' if n == 0 else chr(10)}{path}")
        if args.json:
            print(json.dumps(meta, indent=1, ensure_ascii=False))
        else:
            for key, value in meta.items():
                print(f"{key}: {value}")
    return 0


def cmd_serve(args) -> int:
    _check_device(args.device)
    from .pipeline import Pipeline, default_model

    try:
        from .web.app import launch
    except ImportError as e:
        raise GlideError(f"the web page needs Gradio ({e}): pip install -e '.[web]' in a glide checkout") from None
    from .web.studio import Limits, Studio

    upsampler = None if args.no_upsampler else (args.upsampler or default_model("upsampler"))
    clip = None if args.no_clip else (args.clip_model or default_model("clip"))
    pipe = Pipeline.from_pretrained(args.model or default_model("base"), device=args.device, dtype=args.dtype,
                                    upsampler=upsampler, clip=clip)
    if pipe.cfg.super_res:
        raise GlideError(f"{args.model} is an upsampler; the page needs a base (64 px) model (--model)")
    studio = Studio(pipe, Limits(max_upload_mb=args.max_upload_mb), model=args.model or "bundled:base")
    warnings.simplefilter("ignore", ResourceWarning)  # the web server's event loops; not actionable
    warnings.filterwarnings("ignore", module=r"gradio(\..*)?$")  # its own deprecation notices
    launch(studio, host=args.host, port=args.port, concurrency=args.concurrency, queue_size=args.queue_size)
    return 0


def _common(s, batch_default: int = defaults.BATCH_SIZE) -> None:
    s.add_argument("--seed", type=_seed, default=None,
                   help="image k starts from seed SEED+k, whatever the batch size (default: a random seed, printed)")
    s.add_argument("--batch-size", type=_positive_int, default=batch_default, help="images per forward batch")
    s.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    s.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None,
                   help="default: bf16 on CUDA, fp32 on CPU (bf16 on a CPU with AVX512-BF16 or AMX: ~1.8x faster)")
    s.add_argument("--no-individual", action="store_true", help="save only the grid")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def cmd_convert(args) -> int:
    from .checkpoint import check_output_folder

    check_output_folder(args.out, args.force)  # before reading a multi-GB checkpoint
    if args.kind == "clip":
        if len(args.checkpoint) != 2:
            raise GlideError("--kind clip takes two files: clip_image_enc.pt clip_text_enc.pt")
        from .clip.io import convert_official_clip

        print(f"wrote {convert_official_clip(args.checkpoint[0], args.checkpoint[1], args.out, force=args.force)}")
        return 0
    if len(args.checkpoint) != 1:
        raise GlideError(f"--kind {args.kind} takes one checkpoint file")

    options = None
    if args.options:
        try:
            options = json.loads(Path(args.options).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GlideError(f"options file not found: {args.options}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GlideError(f"{args.options} is not valid JSON ({e})") from None
        except OSError as e:
            raise GlideError(f"cannot read {args.options}: {e.strerror}") from None
        if not isinstance(options, dict):
            raise GlideError(f"{args.options} must hold a JSON object of official hyperparameters")
    from .official.convert import convert_official

    out = convert_official(args.checkpoint[0], args.kind, args.out, options, force=args.force)
    print(f"wrote {out}")
    return 0


TRAIN_FLAGS = {  # flag -> TrainConfig field; flags override the config file
    "preset": "preset", "kind": "kind", "data": "data", "out": "out", "max_steps": "max_steps",
    "batch_size": "batch_size", "microbatch": "microbatch", "lr": "lr", "checkpoint_every": "checkpoint_every",
    "seed": "seed", "sample_every": "sample_every", "ema_rate": "ema_rate", "precision": "precision",
    "init_from": "init_from", "init_kind": "init_kind", "workers": "workers",
}


def cmd_train(args) -> int:
    from .training import TrainConfig, train
    from .training.config import find_config, load_toml

    if args.config and args.config_option and args.config != args.config_option:
        raise GlideError(f"two configs given: {args.config} and --config {args.config_option}")
    config = args.config or args.config_option
    values: dict = {}
    if config:
        config = str(find_config(config))
        values.update(load_toml(config))
    elif args.resume and args.out and (Path(args.out) / "config.json").is_file():
        try:
            saved = json.loads((Path(args.out) / "config.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GlideError(f"{Path(args.out) / 'config.json'} is not valid JSON ({e})") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("train"), dict):
            raise GlideError(f"{Path(args.out) / 'config.json'} is not a glide run config")
        values.update(saved["train"])
    for flag, field in TRAIN_FLAGS.items():
        v = getattr(args, flag)
        if v is not None:
            values[field] = v
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise GlideError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    cfg = TrainConfig.from_dict(values, where=config or "options")
    last = train(cfg, resume=args.resume)
    print(f"done: {last}")
    return 0


def _scoring_clip(spec, device, act: str):
    """A CLIP that scores samples, and its cache identity: a noised-CLIP model folder (or bundled:clip), or a
    standard CLIP's open_clip weights file (ViT, OpenAI layout)."""
    from .clip.io import load_clip
    from .evaluation.evaluate import model_key
    from .pipeline import resolve_model

    if Path(spec).is_file():
        from .clip.openclip import load_open_clip

        return load_open_clip(spec, device, quick_gelu=act == "quickgelu"), model_key(Path(spec)) + act
    folder = resolve_model(spec)
    return load_clip(folder, device), model_key(folder)


def cmd_eval(args) -> int:
    """`glide eval` (a table over guidance scales), `glide eval sweep` (the guidance study, with plots) and
    `glide eval coco` (the MS-COCO protocol): one flow, different defaults and reference images."""
    mode = args.eval_command or "eval"
    _apply_eval_defaults(args, mode)
    _check_device(args.device)
    from .evaluation.evaluate import (EvalConfig, Scorer, check_settings, config_dict, default_cache_dir, eval_size,
                                      evaluate, format_table, model_key)
    from .pipeline import Pipeline, default_model, resolve_model

    cfg = EvalConfig(data=args.data or "", splits=tuple((args.splits or "").split(",")), n=args.n,
                     guidance_scales=args.guidance_scales, clip_scales=args.clip_scales,
                     clip_cfg_scale=args.clip_cfg_scale, steps=args.steps, sampler=args.sampler, seed=args.seed,
                     batch_size=args.batch_size, is_splits=10 if mode == "coco" and args.n >= 10_000 else 1,
                     upsample=bool(args.upsample), upsample_steps=args.upsample_steps)
    if args.upsampler and not args.upsample:
        raise GlideError("--upsampler is for --upsample (scoring 256 px samples); add --upsample")
    upsampler = (args.upsampler or default_model("upsampler")) if args.upsample else None
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    model = args.model or default_model("base")
    clip_spec = args.clip_model or default_model("clip")
    if any(cfg.clip_scales) and Path(clip_spec).is_file():
        raise GlideError("CLIP guidance needs a noised CLIP model folder (--clip-model); a standard open_clip file "
                         "can only score (--judge-clip, or --clip-model without --clip-scales)")
    clip_dir = resolve_model(clip_spec) if not Path(clip_spec).is_file() else Path(clip_spec)
    inception, inception_key = None, ""
    if args.inception_weights:
        from .evaluation.inception import load_fid_inception

        inception = load_fid_inception(args.inception_weights, args.device or "cpu")
        inception_key = model_key(Path(args.inception_weights))
    pipe = Pipeline.from_pretrained(model, device=args.device, dtype=args.dtype, upsampler=upsampler,
                                    clip=clip_dir if any(cfg.clip_scales) else None)
    if pipe.cfg.super_res:
        raise GlideError(f"{model} is an upsampler; glide eval scores 64 px base models")
    check_settings(pipe, cfg)  # before a long COCO preparation
    reference = None
    if mode == "coco":
        from .evaluation.coco import load_coco_reference

        reference = load_coco_reference(args.captions, args.images, n=args.n, seed=args.seed,
                                        size=eval_size(pipe, cfg), cache_dir=cache_dir, progress=not args.quiet)
    pipe.model_key = model_key(resolve_model(model))
    pipe.upsampler_key = model_key(resolve_model(upsampler)) if upsampler else ""
    pipe.clip_key = model_key(clip_dir)
    clip, clip_key = (pipe.clip, pipe.clip_key) if pipe.clip is not None else \
        _scoring_clip(clip_spec, pipe.device, args.open_clip_act)
    judge, judge_key = _scoring_clip(args.judge_clip, pipe.device, args.open_clip_act) if args.judge_clip else (None, "")
    scorer = Scorer(clip, inception.to(pipe.device) if inception else None, inception_key, clip_key,
                    cache_dir, judge, judge_key)
    out = Path(args.out)
    t0 = time.perf_counter()
    rows = evaluate(pipe, scorer, cfg, out, progress=not args.quiet, reference=reference)
    table = format_table(rows)
    text = [table]
    print(table)
    files = ["results.json", "table.md", "a grid per setting (real | generated pairs)"]
    if mode == "sweep" or (cfg.clip_scales and cfg.guidance_scales):
        from .evaluation.sweep import format_gap_table, gap_rows, plot_gap, plot_tradeoffs

        plot_tradeoffs(rows, out / "tradeoffs.png")
        files.insert(2, "tradeoffs.png")
        gaps = gap_rows(rows)
        if gaps:
            gap_table = format_gap_table(gaps)
            print("\nCLIP score gains over the unguided conditional model, under the guiding CLIP and the judge:")
            print(gap_table)
            text.append(gap_table)
            plot_gap(gaps, out / "clip_gap.png")
            files.insert(3, "clip_gap.png")
    record = {"command": mode, "model": str(model), "upsampler": str(upsampler or ""), "clip": str(clip_spec), "judge_clip": str(args.judge_clip or ""),
              "inception": args.inception_weights, **config_dict(cfg), "seconds": round(time.perf_counter() - t0, 1),
              # each distinct setting once (CLIP scale 0 shares the cfg-1 samples)
              "sample_seconds": round(sum({(r["guidance_scale"], r["clip_scale"]): r["sample_seconds"]
                                           for r in rows if "sample_seconds" in r}.values()), 1)}
    if mode == "coco":
        record.update(data=None, splits=None, captions=str(args.captions), images=str(args.images))
    _write_text(out / "results.json", json.dumps({"config": record, "rows": rows}, indent=1) + "\n")
    _write_text(out / "table.md", "\n\n".join(text) + "\n")
    print(f"wrote {', '.join(files)} to {out}")
    return 0


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def cmd_export(args) -> int:
    from .pipeline import DTYPES
    from .training import export_run

    out = export_run(args.run_dir, args.out, raw=args.raw, step=args.step,
                     dtype=DTYPES[args.dtype] if args.dtype else None, max_shard_mb=args.max_shard_mb,
                     force=args.force)
    print(f"wrote {out}")
    return 0


_NO_CONSISTENCY = "plain upsampling, as the official notebook (default: keep the 64 px image's low frequencies)"


EVAL_HELP = """Sample a base model on held-out captions and score the samples against the real images.
  glide eval         one row per classifier-free guidance scale (and CLIP scale, with --clip-scales)
  glide eval sweep   the paper's guidance study: both sweeps, tradeoffs.png, and with --judge-clip the
                     two-CLIP gap (clip_gap.png)
  glide eval coco    the MS-COCO protocol, with --captions captions_val2014.json --images val2014/
Samples are cached per batch in --out, so an interrupted run resumes. Options may stand before or after
the subcommand (glide eval -n 50 sweep = glide eval sweep -n 50)."""

def _eval_defaults(mode: str) -> dict:
    """The defaults of `glide eval` and its subcommands. They are applied after parsing (the parsers set only
    what the user gave), so that an option given before the subcommand is not overwritten by the
    subcommand's default. The sweep samples with CLIP guidance, so it uses the CLIP-guided sampler."""
    sweep, coco = mode == "sweep", mode == "coco"
    d = dict(model=None, n=30_000 if coco else 100 if sweep else 200,
             guidance_scales=defaults.SWEEP_CFG_SCALES if sweep else (defaults.GUIDANCE,) if coco else (0.0, 1.0, 2.0, 3.0, 5.0),
             clip_scales=defaults.SWEEP_CLIP_SCALES if sweep else (), clip_cfg_scale=1.0,
             steps=str(defaults.SWEEP_STEPS) if sweep else str(defaults.STEPS), sampler=defaults.CLIP_SAMPLER if sweep else defaults.SAMPLER,
             seed=0, batch_size=16, clip_model=None, judge_clip=None, open_clip_act="quickgelu",
             inception_weights=None, cache_dir=None, out={"sweep": "eval-sweep", "coco": "eval-coco"}.get(mode, "eval"),
             device=None, dtype=None, quiet=False, upsample=False, upsampler=None,
             upsample_steps=defaults.UPSAMPLE_STEPS)
    if coco:
        d.update(captions=None, images=None)
    else:
        d.update(data="data/emoji", splits="heldout_pair,heldout_emoji")
    return d


def _apply_eval_defaults(args, mode: str) -> None:
    if mode == "coco":
        if getattr(args, "data", None) is not None or getattr(args, "splits", None) is not None:
            raise GlideError("glide eval coco reads --captions and --images, not --data or --splits")
        missing = [f"--{k}" for k in ("captions", "images") if getattr(args, k, None) is None]
        if missing:
            raise GlideError(f"glide eval coco needs {' and '.join(missing)} (captions_val2014.json, val2014/)")
    for key, value in _eval_defaults(mode).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if mode == "coco":  # the parent parser's options that coco has no use for
        args.data = args.splits = None


def _eval_options(p: argparse.ArgumentParser, mode: str) -> None:
    """Options of `glide eval` and its subcommands: one list, defaults per mode (shown in --help, applied by
    _apply_eval_defaults)."""
    d = _eval_defaults(mode)

    def add(*flags, help: str, **kw):
        dest = kw.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        shown = d.get(dest)
        if isinstance(shown, tuple):
            shown = ",".join(f"{v:g}" for v in shown) or "none"
        if shown is not None and shown is not False and "default" not in help:
            help = f"{help} (default: {shown})"
        # A subcommand sets only what it was given: argparse copies every attribute of the subcommand's
        # namespace over the parent's, so a default there would silently undo `glide eval -n 5 sweep`.
        p.add_argument(*flags, default=None if mode == "eval" else argparse.SUPPRESS, help=help, **kw)

    add("--model", help="base model folder (default: the bundled one)")
    if mode == "coco":
        add("--captions", help="captions_val2014.json (required)")
        add("--images", help="the val2014/ image folder (required)")
    else:
        add("--data", help="emoji_64.npz or the folder holding it (glide data emoji)")
        add("--splits", help="comma-separated splits to score on")
    add("-n", type=_positive_int, help="captions drawn (one sample each per setting)")
    add("--guidance-scales", "--cfg-scales", dest="guidance_scales", type=_scales,
        help="classifier-free guidance scales, e.g. 0,1,2,3,5")
    add("--clip-scales", type=_scales, help="CLIP guidance scales (rows on the conditional model; needs ddpm or ddim)")
    add("--clip-cfg-scale", type=_finite,
        help="classifier-free scale under CLIP guidance (1: the conditional model alone, as the paper)")
    add("--steps", type=_steps, help="sampling steps, or a respacing like fast27")
    add("--sampler", choices=SAMPLER_NAMES, help="sampler")
    add("--seed", type=_seed, help="seed of the caption draw and of the noise")
    add("--batch-size", type=_positive_int, help="images per forward batch")
    add("--clip-model", help="noised CLIP folder for FD, IS, CLIP score and CLIP guidance (default: the bundled "
                             "one); or an open_clip weights file (scoring only)")
    add("--judge-clip", help="a second CLIP, trained independently (a noised-CLIP folder, or a standard CLIP's "
                             "open_clip weights file, e.g. ViT-B-32's open_clip_pytorch_model.bin): tests for "
                             "adversarial guidance (default: none)")
    add("--open-clip-act", choices=["quickgelu", "gelu"],
        help="activation of an open_clip weights file given as a CLIP: quickgelu for OpenAI's weights, gelu for "
             "LAION/DataComp ones")
    add("--inception-weights", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: adds standard FID and IS "
                                    "(default: none)")
    add("--upsample", action="store_const", const=True,
        help="score the cascade's 256 px samples (each base sample through the upsampler; references at 256 px: "
             "emoji_256.npz, or COCO images prepared at 256)")
    add("--upsampler", help="upsampler model folder for --upsample (default: the bundled one)")
    add("--upsample-steps", type=_steps, help="the upsampler's steps, or a respacing")
    add("--cache-dir", help="where real-image features (and COCO references) are cached (default ~/.cache/glide/eval)")
    add("--out", help="folder for results.json, table.md, plots, grids and cached samples")
    add("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    add("--dtype", choices=["fp32", "bf16", "fp16"], help="default: fp32 on CPU, bf16 on CUDA")
    add("-q", "--quiet", action="store_const", const=True, help="no progress bars")
    p.set_defaults(func=cmd_eval)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (unless its help already says it, or there is none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default is None or default is False
                or default == argparse.SUPPRESS or isinstance(action, argparse._VersionAction)):
            return text
        if isinstance(default, (tuple, list)):
            default = ",".join(str(v) for v in default)
        return f"{text} (default: {default})"


class _Parser(argparse.ArgumentParser):
    """Help with defaults; errors as one line (and exit 2), like every other error of the command line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="glide", description="GLIDE text-guided diffusion.")
    p.add_argument("--version", action="version", version=f"glide {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="generate images from a prompt")
    s.add_argument("prompt", nargs="+", help='caption(s), one grid row each ("" for unconditional samples)')
    s.add_argument("--model", default=None, help="model folder, or official:base (default: the bundled model)")
    s.add_argument("-n", "--num-images", type=_positive_int, default=4, help="images per prompt")
    s.add_argument("--guidance-scale", type=_finite, default=defaults.GUIDANCE, help="classifier-free guidance scale")
    s.add_argument("--steps", type=_steps, default=None,
                   help=f"sampling steps, or a respacing like fast27 (default {defaults.STEPS}; "
                        f"{defaults.CLIP_STEPS} with CLIP guidance)")
    s.add_argument("--sampler", choices=SAMPLER_NAMES, default=None,
                   help=f"dpm++2m-sde (SDE-DPM-Solver++ 2M: good in 15-25 steps), dpm++2m (its deterministic form), "
                        f"ddpm (ancestral, the official notebooks' choice at 100 steps) or ddim (default "
                        f"{defaults.SAMPLER}; {defaults.CLIP_SAMPLER} with CLIP guidance)")
    s.add_argument("--eta", type=_unit, default=0.0, help="DDIM noise, 0 to 1 (0 = deterministic)")
    s.add_argument("--temperature", type=_finite, default=1.0, help="scale of the initial noise")
    s.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    s.add_argument("--clip-guidance-scale", type=_non_negative, default=0.0, help="CLIP guidance scale (0 = off)")
    s.add_argument("--upsample", action="store_true", help="run the 64 -> 256 upsampler on the samples")
    s.add_argument("--upsampler", default=None, help="upsampler model folder (default: the bundled one)")
    s.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    s.add_argument("--out", default="samples.png", help="grid image; individual images go beside it")
    _common(s)
    s.set_defaults(func=cmd_sample)

    i = sub.add_parser("inpaint", help="repaint a region of an image following a prompt")
    i.add_argument("image", help="the image to edit")
    i.add_argument("prompt", help="what the repainted region should show")
    i.add_argument("--mask", help="mask image: WHITE = repaint, black = keep (same size as the image)")
    i.add_argument("--box", help="region to repaint, x0,y0,x1,y1 in image pixels")
    i.add_argument("--model", default=None, help="inpainting (or any base) model folder (default: bundled)")
    i.add_argument("-n", "--num-images", type=_positive_int, default=1, help="edits to make")
    i.add_argument("--guidance-scale", type=_finite, default=defaults.INPAINT_GUIDANCE,
                   help="classifier-free guidance scale")
    i.add_argument("--steps", type=_steps, default=str(defaults.STEPS), help="sampling steps, or a respacing")
    i.add_argument("--sampler", choices=SAMPLER_NAMES, default=defaults.SAMPLER, help="sampler")
    i.add_argument("--eta", type=_unit, default=0.0, help="DDIM noise, 0 to 1 (0 = deterministic)")
    i.add_argument("--upsample", action="store_true", help="edit at 256 px with the upsampler")
    i.add_argument("--upsampler", default=None, help="upsampler model folder (default: the bundled one)")
    i.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    i.add_argument("--composite", action="store_true", help="paste the result back into the original image")
    i.add_argument("--out", default="inpainted.png", help="output image (a grid with -n > 1)")
    _common(i)
    i.set_defaults(func=cmd_inpaint)

    e = sub.add_parser("sdedit", help="turn a rough image or sketch into one that follows a prompt (SDEdit)")
    e.add_argument("image", help="the image or sketch to start from")
    e.add_argument("prompt", help="what the result should show")
    e.add_argument("--strength", type=_finite, default=0.5,
                   help="how far to move from the image: 0 keeps it, 1 ignores it (noise it to strength x the steps)")
    e.add_argument("--mask", help="optional mask image: WHITE = may change, black = kept exactly")
    e.add_argument("--model", default=None, help="base model folder (default: the bundled one)")
    e.add_argument("-n", "--num-images", type=_positive_int, default=1, help="edits to make")
    e.add_argument("--guidance-scale", type=_finite, default=defaults.GUIDANCE, help="classifier-free guidance scale")
    e.add_argument("--steps", type=_steps, default=None,
                   help=f"steps of the whole schedule, of which the edit runs the last strength x steps "
                        f"(default {defaults.STEPS}; {defaults.CLIP_STEPS} with CLIP guidance)")
    e.add_argument("--sampler", choices=SAMPLER_NAMES, default=None,
                   help=f"sampler (default {defaults.SAMPLER}; {defaults.CLIP_SAMPLER} with CLIP guidance)")
    e.add_argument("--eta", type=_unit, default=0.0, help="DDIM noise, 0 to 1 (0 = deterministic)")
    e.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    e.add_argument("--clip-guidance-scale", type=_non_negative, default=0.0, help="CLIP guidance scale (0 = off)")
    e.add_argument("--upsample", action="store_true", help="run the 64 -> 256 upsampler on the results")
    e.add_argument("--upsampler", default=None, help="upsampler model folder (default: the bundled one)")
    e.add_argument("--no-consistency", action="store_true", help=_NO_CONSISTENCY)
    e.add_argument("--out", default="sdedit.png", help="output image (a grid with -n > 1)")
    _common(e)
    e.set_defaults(func=cmd_sdedit)

    cs = sub.add_parser("compose", help="build a picture by a scene script (generate, inpaint, sdedit, upsample) "
                                        "and save every stage; replays bit for bit")
    cs.add_argument("scene", help="the scene script (TOML; see docs/editing.md)")
    cs.add_argument("--out", required=True, help="folder for the stages (00-generate.png, ...) and the resolved script")
    cs.add_argument("--model", default=None, help="base model folder (default: the script's, else the bundled one)")
    cs.add_argument("--upsampler", default=None, help="upsampler folder (default: the script's, else the bundled one)")
    cs.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available, else cpu)")
    cs.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="default: bf16 on CUDA, fp32 on CPU")
    cs.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    cs.set_defaults(func=cmd_compose)

    u = sub.add_parser("upsample", help="64 -> 256 text-conditional upsampling")
    u.add_argument("images", nargs="+", metavar="IMAGE", help="64 px image(s)")
    u.add_argument("prompt", help="their caption")
    u.add_argument("--model", default=None, help="upsampler model folder (default: the bundled one)")
    u.add_argument("--steps", type=_steps, default=defaults.UPSAMPLE_STEPS, help="sampling steps, or a respacing")
    u.add_argument("--sampler", choices=["ddpm", "ddim"], default=defaults.UPSAMPLE_SAMPLER, help="sampler")
    u.add_argument("--temperature", type=_finite, default=defaults.UPSAMPLE_TEMPERATURE,
                   help="scale of the initial noise")
    u.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    u.add_argument("--out", default="upsampled.png", help="output image (a grid with several inputs)")
    _common(u)
    u.set_defaults(func=cmd_upsample)

    c = sub.add_parser("convert", help="convert an official GLIDE .pt checkpoint to a glide model folder")
    c.add_argument("checkpoint", nargs="+", help="OFFICIAL.pt (for --kind clip: clip_image_enc.pt clip_text_enc.pt)")
    c.add_argument("--kind", required=True, choices=["base", "upsample", "base-inpaint", "upsample-inpaint", "clip"],
                   help="which official model the checkpoint holds")
    c.add_argument("--options", help="JSON file of official hyperparameters, for checkpoints of another size")
    c.add_argument("--out", required=True, help="output model folder (replaced only if it is a model folder)")
    c.add_argument("--force", action="store_true", help="replace --out even if it is another, non-empty folder")
    c.set_defaults(func=cmd_convert)

    t = sub.add_parser("train", help="train a model (any kind); launch with torchrun for several processes")
    t.add_argument("config", nargs="?", help="TOML config file, or a packaged config's name such as emoji-base "
                                             "(see configs/); flags override it")
    t.add_argument("--config", dest="config_option", metavar="CONFIG", help="the same, as an option")
    t.add_argument("--preset", help="model preset (see glide/config.py)")
    t.add_argument("--kind", choices=["text2im", "superres", "inpaint", "superres-inpaint", "clip"], help="task")
    t.add_argument("--data", help="image folder, .jsonl manifest, .npz arrays, or WebDataset .tar shards")
    t.add_argument("--out", help="run folder (checkpoints, samples, metrics.jsonl)")
    t.add_argument("--max-steps", type=_positive_int, help="training steps")
    t.add_argument("--batch-size", type=_positive_int, help="global batch size")
    t.add_argument("--microbatch", type=_positive_int, help="per-process micro-batch (gradient accumulation)")
    t.add_argument("--lr", type=_positive, help="learning rate")
    t.add_argument("--checkpoint-every", type=_positive_int, help="steps between checkpoints")
    t.add_argument("--sample-every", type=int, help="steps between sample grids (0: never)")
    t.add_argument("--ema-rate", type=_non_negative, help="EMA decay of the exported weights")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="training precision")
    t.add_argument("--init-from", help="fine-tune from a model folder or an official .pt")
    t.add_argument("--init-kind", help="official kind of --init-from .pt (base, upsample, ...)")
    t.add_argument("--workers", type=int, help="data loader processes")
    t.add_argument("--seed", type=_seed, help="training seed")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other config key (JSON value)")
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.epilog = "Flags left out take the config file's values, then glide.training.TrainConfig's defaults."
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("data", help="build datasets")
    dsub = d.add_subparsers(dest="dataset", required=True)
    em = dsub.add_parser("emoji", help="the emoji artwork dataset (Twemoji, OpenMoji, Noto) with CLDR captions")
    from .data import emoji

    emoji.add_arguments(em)
    em.set_defaults(func=emoji.run)
    from .data import filter as data_filter

    fi = dsub.add_parser("filter", help="drop the images a policy names (caption, metadata and CLIP rules)")
    data_filter.add_arguments(fi)
    fi.set_defaults(func=data_filter.run)

    e = sub.add_parser("export", help="turn a training run's checkpoint into a model folder")
    e.add_argument("run_dir", help="the run folder (glide train --out)")
    e.add_argument("--out", required=True, help="output model folder (replaced only if it is a model folder)")
    e.add_argument("--force", action="store_true", help="replace --out even if it is another, non-empty folder")
    e.add_argument("--raw", action="store_true", help="export the online weights instead of the EMA")
    e.add_argument("--step", type=int, default=None, help="a specific checkpoint step (default: latest)")
    e.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="cast the weights (default: keep fp32)")
    e.add_argument("--max-shard-mb", type=_positive, default=None,
                   help="split the weights into files of at most this size (default: one file)")
    e.set_defaults(func=cmd_export)

    ev = sub.add_parser("eval", help="score a base model: FD/FID, IS, CLIP score, precision/recall "
                        "(subcommands: sweep, coco)", description=EVAL_HELP)
    _eval_options(ev, "eval")
    evsub = ev.add_subparsers(dest="eval_command", metavar="{sweep,coco}")
    sw = evsub.add_parser("sweep", help="the paper's guidance study: classifier-free vs CLIP guidance, with plots")
    _eval_options(sw, "sweep")
    co = evsub.add_parser("coco", help="the MS-COCO protocol: random val2014 captions against their images")
    _eval_options(co, "coco")

    from .rate import report as rate

    rate.add_arguments(sub.add_parser("rate", help="blind pairwise human evaluation: serve a voting page, report "
                                                   "win rates and Elo"))

    w = sub.add_parser("serve", help="start the local web page (needs the web extra: pip install -e '.[web]')")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    w.add_argument("--port", type=_port, default=7860, help="port")
    w.add_argument("--model", default=None, help="base model folder (default: the bundled one)")
    w.add_argument("--upsampler", default=None, help="upsampler folder (default: the bundled one)")
    w.add_argument("--no-upsampler", action="store_true", help="no 256 px upsampling")
    w.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    w.add_argument("--no-clip", action="store_true", help="no CLIP guidance")
    w.add_argument("--concurrency", type=_positive_int, default=1, help="jobs sampling at once")
    w.add_argument("--queue-size", type=_positive_int, default=64, help="jobs that may wait in line")
    w.add_argument("--max-upload-mb", type=_positive, default=8.0, help="largest upload accepted")
    w.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    w.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="default: fp32 on CPU, bf16 on CUDA")
    w.set_defaults(func=cmd_serve)

    f = sub.add_parser("info", help="print the settings stored in an image written by glide (prompt, seed, ...)")
    f.add_argument("images", nargs="+", metavar="IMAGE", help="PNG file(s) written by glide sample/inpaint/upsample")
    f.add_argument("--json", action="store_true", help="print the settings as JSON")
    f.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .runtime import keep_freed_memory

    keep_freed_memory()  # every sampling or training step frees and reallocates the same activations
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return args.func(args)
    except GlideError as e:
        print(f"glide: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glide: interrupted", file=sys.stderr)
        return 130
